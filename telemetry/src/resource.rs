//! The resource every span, metric and record of the process carries:
//! which service, which version, and which instance of it.
//!
//! `service.instance.id` matters most when there are replicas. Three data
//! planes of one Gateway export the same metric series under the same
//! name; without an attribute that tells them apart, a metrics backend
//! sees one series whose cumulative counts jump between three processes'
//! values. So each process names itself: its pod (`POD_NAME`, which the
//! provisioned Deployments and the Helm chart set from the downward API)
//! else host name and process id, with `k8s.pod.name` and
//! `k8s.namespace.name` where it runs in a pod, as the OpenTelemetry
//! Operator's injection sets them.
//!
//! Precedence follows the SDK specification: `OTEL_RESOURCE_ATTRIBUTES`
//! (percent-decoded) wins over what the process detects, and the name is
//! `OTEL_SERVICE_NAME`, else a `service.name` in `OTEL_RESOURCE_ATTRIBUTES`,
//! else the binary's own (`tollgate-controller`, `tollgate-dataplane`).

use crate::env::OtelEnv;
use opentelemetry::KeyValue;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::resource::{ResourceDetector, TelemetryResourceDetector};
use percent_encoding::percent_decode_str;

/// The variables naming the pod a process runs in, read for the resource.
pub const POD_VARIABLES: [&str; 2] = ["POD_NAME", "POD_NAMESPACE"];

/// The resource of the process `service` (its default `service.name`)
/// configured by `env`.
pub(crate) fn resource(service: &'static str, env: &OtelEnv) -> Resource {
    let nonempty = |name| env.get(name).filter(|v| !v.is_empty());
    let pod = nonempty("POD_NAME");
    let instance = pod.map_or_else(host_and_pid, str::to_string);
    let mut detected = vec![
        KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
        KeyValue::new("service.instance.id", instance),
    ];
    if let Some(pod) = pod {
        detected.push(KeyValue::new("k8s.pod.name", pod.to_string()));
    }
    if let Some(namespace) = nonempty("POD_NAMESPACE") {
        detected.push(KeyValue::new("k8s.namespace.name", namespace.to_string()));
    }
    let configured = configured(env);
    let named = configured
        .iter()
        .find(|kv| kv.key.as_str() == "service.name")
        .map(|kv| kv.value.to_string());
    let name = nonempty("OTEL_SERVICE_NAME")
        .map(str::to_string)
        .or(named)
        .unwrap_or_else(|| service.to_string());
    Resource::builder_empty()
        .with_attributes(
            TelemetryResourceDetector
                .detect()
                .iter()
                .map(|(k, v)| KeyValue::new(k.clone(), v.clone())),
        )
        .with_attributes(detected)
        .with_attributes(configured)
        .with_service_name(name)
        .build()
}

/// `OTEL_RESOURCE_ATTRIBUTES`: `key=value` pairs separated by commas, the
/// values percent-encoded; malformed pairs are skipped.
fn configured(env: &OtelEnv) -> Vec<KeyValue> {
    env.get("OTEL_RESOURCE_ATTRIBUTES")
        .unwrap_or_default()
        .split(',')
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            let key = key.trim();
            (!key.is_empty()).then(|| {
                KeyValue::new(
                    key.to_string(),
                    percent_decode_str(value.trim())
                        .decode_utf8_lossy()
                        .into_owned(),
                )
            })
        })
        .collect()
}

/// This process outside a pod: its host name and process id.
fn host_and_pid() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{}-{}", host.trim(), std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::{Key, Value};

    fn attribute(resource: &Resource, key: &'static str) -> Option<String> {
        resource.get(&Key::new(key)).as_ref().map(Value::to_string)
    }

    fn of(pairs: &[(&str, &str)]) -> Resource {
        resource(
            "tollgate-dataplane",
            &OtelEnv::from_pairs(pairs.iter().copied()),
        )
    }

    /// In a pod: the pod names the instance and is named in the k8s
    /// attributes; the binary names the service.
    #[test]
    fn a_pod_names_the_instance() {
        let r = of(&[
            ("POD_NAME", "gw-tollgate-6d9f-x2x"),
            ("POD_NAMESPACE", "edge"),
        ]);
        assert_eq!(
            attribute(&r, "service.name").as_deref(),
            Some("tollgate-dataplane")
        );
        assert_eq!(
            attribute(&r, "service.instance.id").as_deref(),
            Some("gw-tollgate-6d9f-x2x")
        );
        assert_eq!(
            attribute(&r, "k8s.pod.name").as_deref(),
            Some("gw-tollgate-6d9f-x2x")
        );
        assert_eq!(attribute(&r, "k8s.namespace.name").as_deref(), Some("edge"));
        assert_eq!(
            attribute(&r, "service.version").as_deref(),
            Some(env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(
            attribute(&r, "telemetry.sdk.name").as_deref(),
            Some("opentelemetry")
        );
    }

    /// Outside a pod: host and process id, no k8s attributes.
    #[test]
    fn a_process_names_itself() {
        let r = of(&[]);
        let instance = attribute(&r, "service.instance.id").unwrap_or_default();
        assert!(
            instance.ends_with(&format!("-{}", std::process::id())),
            "{instance}"
        );
        assert_eq!(attribute(&r, "k8s.pod.name"), None);
    }

    /// `OTEL_RESOURCE_ATTRIBUTES` wins over what is detected, values are
    /// percent-decoded; `OTEL_SERVICE_NAME` wins over its `service.name`,
    /// which wins over the binary's name.
    #[test]
    fn configured_attributes_and_name_precedence() {
        let r = of(&[
            ("POD_NAME", "p"),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "service.instance.id=edge-1, deployment.environment=prod%2Ceu,service.name=from-attrs,broken",
            ),
        ]);
        assert_eq!(
            attribute(&r, "service.instance.id").as_deref(),
            Some("edge-1")
        );
        assert_eq!(
            attribute(&r, "deployment.environment").as_deref(),
            Some("prod,eu")
        );
        assert_eq!(attribute(&r, "service.name").as_deref(), Some("from-attrs"));
        let r = of(&[
            ("OTEL_SERVICE_NAME", "edge"),
            ("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs"),
        ]);
        assert_eq!(attribute(&r, "service.name").as_deref(), Some("edge"));
    }
}
