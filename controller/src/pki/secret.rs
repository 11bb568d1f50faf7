//! The Secrets of the snapshot PKI: the CA Secret in the controller's
//! namespace, and each Gateway's client-certificate Secret.
//!
//! The CA Secret is created if absent, never overwritten: when two
//! replicas start together both may generate a CA, one create wins, and
//! the other reads the winner's (`AlreadyExists`), so all agree.

use super::ca::{Ca, Issued, PkiError};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, PostParams};
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// Secret type of both kinds of Secret.
const TLS_TYPE: &str = "kubernetes.io/tls";
/// Annotation: the identity a client certificate carries.
pub const IDENTITY_ANNOTATION: &str = "tollgate.dev/identity";
/// Annotation: start of the certificate's validity (Unix seconds).
pub const NOT_BEFORE_ANNOTATION: &str = "tollgate.dev/not-before";
/// Annotation: end of the certificate's validity (Unix seconds).
pub const NOT_AFTER_ANNOTATION: &str = "tollgate.dev/not-after";

/// The CA kept in Secret `name` of `namespace`, made on first use.
///
/// # Errors
///
/// The API failed, or the Secret exists without a usable CA.
pub async fn ensure_ca(client: kube::Client, namespace: &str, name: &str) -> Result<Ca, PkiError> {
    let api: Api<Secret> = Api::namespaced(client, namespace);
    if let Some(secret) = api.get_opt(name).await? {
        return ca_of(&secret, namespace, name);
    }
    let ca = Ca::generate()?;
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".to_string(),
                "tollgate".to_string(),
            )])),
            ..ObjectMeta::default()
        },
        type_: Some(TLS_TYPE.to_string()),
        data: Some(files(ca.cert_pem(), ca.key_pem(), ca.cert_pem())),
        ..Secret::default()
    };
    match api.create(&PostParams::default(), &secret).await {
        Ok(_) => {
            tracing::info!(%namespace, %name, "created the snapshot CA");
            Ok(ca)
        }
        Err(kube::Error::Api(status)) if status.is_already_exists() => {
            tracing::info!(%namespace, %name, "another replica created the snapshot CA; using it");
            ca_of(&api.get(name).await?, namespace, name)
        }
        Err(e) => Err(e.into()),
    }
}

fn ca_of(secret: &Secret, namespace: &str, name: &str) -> Result<Ca, PkiError> {
    let cert = text(secret, "tls.crt");
    let key = text(secret, "tls.key");
    match (cert, key) {
        (Some(cert), Some(key)) => Ca::from_pem(&cert, &key),
        _ => Err(PkiError::Invalid(format!(
            "Secret {namespace}/{name} has no tls.crt and tls.key; delete it to make a new CA"
        ))),
    }
}

/// The UTF-8 text of `key` in the Secret's data.
pub fn text(secret: &Secret, key: &str) -> Option<String> {
    let bytes = secret.data.as_ref()?.get(key)?;
    String::from_utf8(bytes.0.clone()).ok()
}

/// `tls.crt`, `tls.key` and `ca.crt` as Secret data.
fn files(crt: &str, key: &str, ca: &str) -> BTreeMap<String, ByteString> {
    [("tls.crt", crt), ("tls.key", key), ("ca.crt", ca)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
        .collect()
}

/// Unix seconds of `t`.
fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The client-certificate Secret's content: the files, the `extra` files
/// data planes also read from it (the OTLP exporter's certificates, by
/// key), and the annotations renewal reads (`identity`, validity).
pub fn client_secret(
    issued: &Issued,
    ca_pem: &str,
    identity: &str,
    extra: &BTreeMap<String, String>,
) -> Secret {
    let mut data = files(&issued.cert_pem, &issued.key_pem, ca_pem);
    data.extend(
        extra
            .iter()
            .map(|(k, v)| (k.clone(), ByteString(v.as_bytes().to_vec()))),
    );
    Secret {
        metadata: ObjectMeta {
            annotations: Some(BTreeMap::from([
                (IDENTITY_ANNOTATION.to_string(), identity.to_string()),
                (
                    NOT_BEFORE_ANNOTATION.to_string(),
                    unix(issued.not_before).to_string(),
                ),
                (
                    NOT_AFTER_ANNOTATION.to_string(),
                    unix(issued.not_after).to_string(),
                ),
            ])),
            ..ObjectMeta::default()
        },
        type_: Some(TLS_TYPE.to_string()),
        data: Some(data),
        ..Secret::default()
    }
}

/// Whether `existing` must be (re)issued: missing, for another identity
/// or CA, unreadable, with `extra` files other than these, or with less
/// than a third of its life left.
///
/// Pure: reads the annotations [`client_secret`] writes and the files.
pub fn needs_renewal(
    existing: Option<&Secret>,
    identity: &str,
    ca_pem: &str,
    extra: &BTreeMap<String, String>,
    now: SystemTime,
) -> bool {
    let Some(secret) = existing else {
        return true;
    };
    let annotations = secret.metadata.annotations.clone().unwrap_or_default();
    let seconds = |key: &str| annotations.get(key).and_then(|v| v.parse::<u64>().ok());
    let (Some(from), Some(to)) = (
        seconds(NOT_BEFORE_ANNOTATION),
        seconds(NOT_AFTER_ANNOTATION),
    ) else {
        return true;
    };
    let complete = ["tls.crt", "tls.key"]
        .iter()
        .all(|k| text(secret, k).is_some_and(|v| !v.is_empty()));
    let others: BTreeMap<String, String> = secret
        .data
        .iter()
        .flatten()
        .filter(|(k, _)| !matches!(k.as_str(), "tls.crt" | "tls.key" | "ca.crt"))
        .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
        .collect();
    if annotations.get(IDENTITY_ANNOTATION).map(String::as_str) != Some(identity)
        || text(secret, "ca.crt").as_deref() != Some(ca_pem)
        || others != *extra
        || !complete
        || to <= from
    {
        return true;
    }
    let renew_at = from + (to - from) * 2 / 3;
    unix(now) >= renew_at
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn issued(now: SystemTime, lifetime: Duration) -> Issued {
        Issued {
            cert_pem: "CERT".into(),
            key_pem: "KEY".into(),
            not_before: now,
            not_after: now + lifetime,
        }
    }

    /// The rule: renew when missing, for another identity or CA, or with
    /// less than a third of its life left; keep otherwise.
    #[test]
    fn renewal_at_two_thirds_of_life() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let life = Duration::from_secs(300);
        let none = BTreeMap::new();
        let secret = client_secret(&issued(t0, life), "CA", "urn:a", &none);
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert!(needs_renewal(None, "urn:a", "CA", &none, t0));
        assert!(!needs_renewal(Some(&secret), "urn:a", "CA", &none, at(0)));
        assert!(!needs_renewal(Some(&secret), "urn:a", "CA", &none, at(199)));
        assert!(needs_renewal(Some(&secret), "urn:a", "CA", &none, at(200)));
        assert!(needs_renewal(Some(&secret), "urn:b", "CA", &none, at(0)));
        assert!(needs_renewal(
            Some(&secret),
            "urn:a",
            "OTHER CA",
            &none,
            at(0)
        ));
        let mut emptied = secret.clone();
        emptied.data = None;
        assert!(needs_renewal(Some(&emptied), "urn:a", "CA", &none, at(0)));
    }

    /// The OTLP files travel with the certificate: a Secret without them,
    /// with other contents, or with one no longer configured is written
    /// again; one that matches is kept.
    #[test]
    fn extra_files_are_kept_in_step() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let life = Duration::from_secs(300);
        let files = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let otlp = files(&[("otlp-ca.crt", "COLLECTOR CA")]);
        let secret = client_secret(&issued(t0, life), "CA", "urn:a", &otlp);
        assert_eq!(
            text(&secret, "otlp-ca.crt").as_deref(),
            Some("COLLECTOR CA")
        );
        assert_eq!(text(&secret, "ca.crt").as_deref(), Some("CA"));
        assert!(!needs_renewal(Some(&secret), "urn:a", "CA", &otlp, t0));
        let rotated = files(&[("otlp-ca.crt", "NEW CA")]);
        assert!(needs_renewal(Some(&secret), "urn:a", "CA", &rotated, t0));
        let more = files(&[("otlp-ca.crt", "COLLECTOR CA"), ("otlp-client.key", "K")]);
        assert!(needs_renewal(Some(&secret), "urn:a", "CA", &more, t0));
        assert!(needs_renewal(
            Some(&secret),
            "urn:a",
            "CA",
            &BTreeMap::new(),
            t0
        ));
    }
}
