//! Protobuf request bodies of the few kinds typed clients write with
//! them: Secrets, ConfigMaps and Namespaces.
//!
//! client-go's typed clientsets send `application/vnd.kubernetes.protobuf`
//! for built-in kinds, and Helm keeps its release records in Secrets written
//! that way (`kubectl create namespace` does the same). A real API server
//! decodes any kind; this one decodes the envelope (`k8s\0` +
//! `runtime.Unknown`) and the fields of these three kinds into the JSON
//! objects the rest of the server stores. Any other kind is still refused
//! with 415, so nothing is silently half-decoded.

use super::error::ApiError;
use base64::Engine;
use prost::Message;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// The four magic bytes before every Kubernetes protobuf message.
const MAGIC: &[u8] = b"k8s\0";

/// Whether `content_type` is Kubernetes protobuf.
pub(crate) fn is_protobuf(content_type: &str) -> bool {
    content_type.starts_with("application/vnd.kubernetes.protobuf")
}

/// `runtime.Unknown`: the envelope around every object.
#[derive(Clone, PartialEq, Message)]
struct Unknown {
    #[prost(message, optional, tag = "1")]
    type_meta: Option<TypeMeta>,
    #[prost(bytes = "vec", tag = "2")]
    raw: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
struct TypeMeta {
    #[prost(string, tag = "1")]
    api_version: String,
    #[prost(string, tag = "2")]
    kind: String,
}

/// The `ObjectMeta` fields a client sets when creating or replacing.
#[derive(Clone, PartialEq, Message)]
struct ObjectMeta {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    generate_name: String,
    #[prost(string, tag = "3")]
    namespace: String,
    #[prost(string, tag = "5")]
    uid: String,
    #[prost(string, tag = "6")]
    resource_version: String,
    #[prost(btree_map = "string, string", tag = "11")]
    labels: BTreeMap<String, String>,
    #[prost(btree_map = "string, string", tag = "12")]
    annotations: BTreeMap<String, String>,
    #[prost(string, repeated, tag = "14")]
    finalizers: Vec<String>,
}

#[derive(Clone, PartialEq, Message)]
struct Secret {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMeta>,
    #[prost(btree_map = "string, bytes", tag = "2")]
    data: BTreeMap<String, Vec<u8>>,
    #[prost(string, optional, tag = "3")]
    r#type: Option<String>,
    #[prost(btree_map = "string, string", tag = "4")]
    string_data: BTreeMap<String, String>,
    #[prost(bool, optional, tag = "5")]
    immutable: Option<bool>,
}

#[derive(Clone, PartialEq, Message)]
struct ConfigMap {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMeta>,
    #[prost(btree_map = "string, string", tag = "2")]
    data: BTreeMap<String, String>,
    #[prost(btree_map = "string, bytes", tag = "3")]
    binary_data: BTreeMap<String, Vec<u8>>,
    #[prost(bool, optional, tag = "4")]
    immutable: Option<bool>,
}

#[derive(Clone, PartialEq, Message)]
struct Namespace {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMeta>,
    #[prost(message, optional, tag = "2")]
    spec: Option<NamespaceSpec>,
}

#[derive(Clone, PartialEq, Message)]
struct NamespaceSpec {
    #[prost(string, repeated, tag = "1")]
    finalizers: Vec<String>,
}

/// Decodes a protobuf body into the object's JSON form.
///
/// # Errors
///
/// 400 for a malformed body, 415 for a kind this server does not decode.
pub(crate) fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let bad = |e: String| ApiError::BadRequest(format!("error decoding protobuf body: {e}"));
    let envelope = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| bad("missing the k8s protobuf magic".into()))?;
    let unknown = Unknown::decode(envelope).map_err(|e| bad(e.to_string()))?;
    let type_meta = unknown.type_meta.unwrap_or_default();
    let raw = unknown.raw.as_slice();
    let mut object = match (type_meta.api_version.as_str(), type_meta.kind.as_str()) {
        ("v1", "Secret") => secret(Secret::decode(raw).map_err(|e| bad(e.to_string()))?),
        ("v1", "ConfigMap") => config_map(ConfigMap::decode(raw).map_err(|e| bad(e.to_string()))?),
        ("v1", "Namespace") => namespace(Namespace::decode(raw).map_err(|e| bad(e.to_string()))?),
        (api_version, kind) => {
            return Err(ApiError::UnsupportedMediaType(format!(
                "protobuf bodies of {api_version} {kind} are not supported by the Tollgate test \
                 API server; send JSON (kubectl create -f / apply -f)"
            )));
        }
    };
    object.insert("apiVersion".into(), json!(type_meta.api_version));
    object.insert("kind".into(), json!(type_meta.kind));
    Ok(Value::Object(object))
}

fn secret(secret: Secret) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("metadata".into(), metadata(secret.metadata));
    let b64 = base64::engine::general_purpose::STANDARD;
    if !secret.data.is_empty() {
        let data: Map<String, Value> = secret
            .data
            .iter()
            .map(|(k, v)| (k.clone(), json!(b64.encode(v))))
            .collect();
        out.insert("data".into(), Value::Object(data));
    }
    if !secret.string_data.is_empty() {
        out.insert("stringData".into(), json!(secret.string_data));
    }
    if let Some(t) = secret.r#type {
        out.insert("type".into(), json!(t));
    }
    if let Some(i) = secret.immutable {
        out.insert("immutable".into(), json!(i));
    }
    out
}

fn config_map(cm: ConfigMap) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("metadata".into(), metadata(cm.metadata));
    if !cm.data.is_empty() {
        out.insert("data".into(), json!(cm.data));
    }
    if !cm.binary_data.is_empty() {
        let b64 = base64::engine::general_purpose::STANDARD;
        let data: Map<String, Value> = cm
            .binary_data
            .iter()
            .map(|(k, v)| (k.clone(), json!(b64.encode(v))))
            .collect();
        out.insert("binaryData".into(), Value::Object(data));
    }
    if let Some(i) = cm.immutable {
        out.insert("immutable".into(), json!(i));
    }
    out
}

fn namespace(ns: Namespace) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("metadata".into(), metadata(ns.metadata));
    if let Some(spec) = ns.spec.filter(|s| !s.finalizers.is_empty()) {
        out.insert("spec".into(), json!({"finalizers": spec.finalizers}));
    }
    out
}

/// The JSON `metadata`, without the empty fields protobuf cannot tell
/// from unset ones.
fn metadata(meta: Option<ObjectMeta>) -> Value {
    let meta = meta.unwrap_or_default();
    let mut out = Map::new();
    let strings = [
        ("name", meta.name),
        ("generateName", meta.generate_name),
        ("namespace", meta.namespace),
        ("uid", meta.uid),
        ("resourceVersion", meta.resource_version),
    ];
    for (key, value) in strings {
        if !value.is_empty() {
            out.insert(key.into(), json!(value));
        }
    }
    if !meta.labels.is_empty() {
        out.insert("labels".into(), json!(meta.labels));
    }
    if !meta.annotations.is_empty() {
        out.insert("annotations".into(), json!(meta.annotations));
    }
    if !meta.finalizers.is_empty() {
        out.insert("finalizers".into(), json!(meta.finalizers));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes `raw` of `kind` in the envelope, as client-go does.
    fn envelope(kind: &str, raw: Vec<u8>) -> Vec<u8> {
        let unknown = Unknown {
            type_meta: Some(TypeMeta {
                api_version: "v1".into(),
                kind: kind.into(),
            }),
            raw,
        };
        let mut out = MAGIC.to_vec();
        out.extend(unknown.encode_to_vec());
        out
    }

    fn meta(name: &str) -> Option<ObjectMeta> {
        Some(ObjectMeta {
            name: name.into(),
            namespace: "tollgate-system".into(),
            labels: [("owner".to_string(), "helm".to_string())].into(),
            ..ObjectMeta::default()
        })
    }

    /// A Helm release record decodes with its labels, type and base64 data.
    #[test]
    fn secret_decodes_to_json() {
        let secret = Secret {
            metadata: meta("sh.helm.release.v1.tollgate.v1"),
            data: [("release".to_string(), b"H4sI".to_vec())].into(),
            r#type: Some("helm.sh/release.v1".into()),
            ..Secret::default()
        };
        let object = decode(&envelope("Secret", secret.encode_to_vec())).expect("decodes");
        assert_eq!(
            object,
            json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "sh.helm.release.v1.tollgate.v1",
                    "namespace": "tollgate-system", "labels": {"owner": "helm"}},
                "data": {"release": "SDRzSQ=="}, "type": "helm.sh/release.v1"})
        );
    }

    #[test]
    fn namespace_and_config_map_decode() {
        let ns = Namespace {
            metadata: meta("team-a"),
            spec: None,
        };
        let object = decode(&envelope("Namespace", ns.encode_to_vec())).expect("decodes");
        assert_eq!(object["metadata"]["name"], "team-a");
        let cm = ConfigMap {
            metadata: meta("c"),
            data: [("k".to_string(), "v".to_string())].into(),
            ..ConfigMap::default()
        };
        let object = decode(&envelope("ConfigMap", cm.encode_to_vec())).expect("decodes");
        assert_eq!(object["data"], json!({"k": "v"}));
    }

    /// Kinds it cannot decode are refused, not half-read.
    #[test]
    fn other_kinds_are_refused() {
        let err = decode(&envelope("Pod", Vec::new())).expect_err("refused");
        assert!(matches!(err, ApiError::UnsupportedMediaType(_)), "{err:?}");
        let err = decode(b"{}").expect_err("no magic");
        assert!(matches!(err, ApiError::BadRequest(_)), "{err:?}");
    }
}
