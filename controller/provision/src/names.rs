//! Names and labels of the objects generated for a Gateway.
//!
//! Every part of Tollgate that finds these objects (the operator, the
//! certificate issuer writing the client Secret, the Helm chart's RBAC and
//! tests) uses these functions, so the names agree by construction.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Suffix of every generated object's name.
const SUFFIX: &str = "-tollgate";
/// Longest base name kept whole; longer ones are shortened with a hash, so
/// that derived names (`base-client`, pod names with their hash suffixes)
/// stay within Kubernetes' 63-character limits.
const MAX_BASE: usize = 56;
/// Characters of a long Gateway name kept before the hash.
const KEPT: usize = 38;

/// `app.kubernetes.io/name` of every generated object.
pub const NAME_LABEL: &str = "app.kubernetes.io/name";
/// `app.kubernetes.io/instance`: the Gateway's name.
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
/// `app.kubernetes.io/managed-by`.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// The Gateway API's label naming the Gateway an object serves.
pub const GATEWAY_LABEL: &str = "gateway.networking.k8s.io/gateway-name";
/// The Gateway API's label naming the GatewayClass of that Gateway
/// (GEP-1762). It tells one controller's data planes from another's: a
/// Helm release's PodMonitor selects its own classes by it.
pub const GATEWAY_CLASS_LABEL: &str = "gateway.networking.k8s.io/gateway-class-name";
/// Value of [`NAME_LABEL`].
pub const DATAPLANE: &str = "tollgate-dataplane";
/// Value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY: &str = "tollgate";
/// Label selector matching every object the operator generates.
pub const MANAGED_SELECTOR: &str = "app.kubernetes.io/managed-by=tollgate";

/// The name of the Deployment, Service, ServiceAccount, PodDisruptionBudget
/// and HorizontalPodAutoscaler of Gateway `gateway`: `GW-tollgate`, or,
/// when that is longer than 56 characters, the first 38 characters of the
/// name, `-`, the first 8 hex digits of its SHA-256 and `-tollgate`.
pub fn base(gateway: &str) -> String {
    let whole = format!("{gateway}{SUFFIX}");
    if whole.len() <= MAX_BASE {
        return whole;
    }
    let hash = Sha256::digest(gateway.as_bytes());
    let hex: String = hash[..4].iter().map(|b| format!("{b:02x}")).collect();
    // Gateway names are DNS subdomains (ASCII), so byte slicing is safe;
    // `get` keeps it panic-free for anything else.
    let kept = gateway.get(..KEPT).unwrap_or(gateway);
    format!("{kept}-{hex}{SUFFIX}")
}

/// The data plane's client-certificate Secret (`base-client`), written by
/// the controller's certificate issuer and mounted by the Deployment.
pub fn client_secret(gateway: &str) -> String {
    format!("{}-client", base(gateway))
}

/// The OpenTelemetry variables that name a file (a collector's CA, the
/// exporter's client certificate and key), by the end of their name, with
/// the file's name in the client Secret. `CLIENT_CERTIFICATE` comes before
/// `CERTIFICATE`, which it ends with.
const OTLP_FILES: [(&str, &str); 3] = [
    ("CLIENT_CERTIFICATE", "client.crt"),
    ("CLIENT_KEY", "client.key"),
    ("CERTIFICATE", "ca.crt"),
];

/// The key under which the certificate issuer copies the file that the
/// controller's variable `var` names into a data plane's client Secret
/// ([`client_secret`], mounted at [`crate::TLS_DIR`]): `otlp-ca.crt` for
/// `OTEL_EXPORTER_OTLP_CERTIFICATE`, `otlp-traces-client.key` for
/// `OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY`. `None` for a variable that does
/// not name a file: the controller's paths mean nothing in a data plane's
/// pod, so these files travel in the Secret and the variables are pointed
/// at them.
pub fn otlp_file_key(var: &str) -> Option<String> {
    otlp_key(var, &OTLP_FILES)
}

/// The key under which the *value* of the controller's variable `var`
/// travels in a data plane's client Secret, for the variables that carry
/// secrets: `OTEL_EXPORTER_OTLP_HEADERS` and its per-signal forms hold a
/// collector's API key or token, which must not be written as plain text
/// into a Deployment in every Gateway's namespace. The data plane reads
/// the variable from the Secret (`secretKeyRef`). `None` for the rest.
///
/// The proxy variables the exporters follow (`HTTPS_PROXY`, `no_proxy`:
/// any name ending in `_PROXY` in either case) go the same way, under
/// `env-<name>`: a proxy URL may hold a password.
pub fn otlp_secret_key(var: &str) -> Option<String> {
    let proxy = var
        .strip_suffix("_PROXY")
        .or_else(|| var.strip_suffix("_proxy"));
    if proxy.is_some_and(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphabetic())) {
        return Some(format!("env-{var}"));
    }
    otlp_key(var, &[("HEADERS", "headers")])
}

/// `otlp-<name>` for `OTEL_EXPORTER_OTLP_<END>`, `otlp-<signal>-<name>`
/// for its per-signal form, with the first `(END, name)` of `ends` that
/// `var` is; `None` when it is none of them.
fn otlp_key(var: &str, ends: &[(&str, &str)]) -> Option<String> {
    let rest = var.strip_prefix("OTEL_EXPORTER_OTLP_")?;
    ends.iter().find_map(|(end, name)| {
        if rest == *end {
            return Some(format!("otlp-{name}"));
        }
        let signal = rest.strip_suffix(end)?.strip_suffix('_')?;
        ["TRACES", "METRICS", "LOGS"]
            .contains(&signal)
            .then(|| format!("otlp-{}-{name}", signal.to_ascii_lowercase()))
    })
}

/// Longest label value Kubernetes accepts.
const MAX_LABEL_VALUE: usize = 63;

/// A Gateway's or GatewayClass's name as a label value: whole when it
/// fits in 63 characters, else its [`base`] name (such a name may be 253
/// characters long; a label value may not). The Helm chart's PodMonitor
/// computes the same for the classes it selects.
pub fn label_value(name: &str) -> String {
    if name.len() <= MAX_LABEL_VALUE {
        name.to_string()
    } else {
        base(name)
    }
}

/// The labels of every generated object of Gateway `gateway`, of
/// GatewayClass `class`.
pub fn labels(gateway: &str, class: &str) -> BTreeMap<String, String> {
    let value = label_value(gateway);
    BTreeMap::from([
        (NAME_LABEL.to_string(), DATAPLANE.to_string()),
        (INSTANCE_LABEL.to_string(), value.clone()),
        (MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string()),
        (GATEWAY_LABEL.to_string(), value),
        (GATEWAY_CLASS_LABEL.to_string(), label_value(class)),
    ])
}

/// The pod selector of Gateway `gateway`'s data plane.
pub fn selector(gateway: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (NAME_LABEL.to_string(), DATAPLANE.to_string()),
        (GATEWAY_LABEL.to_string(), label_value(gateway)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The file and header variables map to Secret keys, per signal
    /// too; the rest, and look-alikes, do not.
    #[test]
    fn otlp_file_keys() {
        let key = |v: &str| otlp_file_key(v);
        assert_eq!(
            key("OTEL_EXPORTER_OTLP_CERTIFICATE").as_deref(),
            Some("otlp-ca.crt")
        );
        assert_eq!(
            key("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE").as_deref(),
            Some("otlp-client.crt")
        );
        assert_eq!(
            key("OTEL_EXPORTER_OTLP_CLIENT_KEY").as_deref(),
            Some("otlp-client.key")
        );
        assert_eq!(
            key("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY").as_deref(),
            Some("otlp-traces-client.key")
        );
        assert_eq!(
            key("OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE").as_deref(),
            Some("otlp-metrics-ca.crt")
        );
        assert_eq!(
            otlp_secret_key("OTEL_EXPORTER_OTLP_HEADERS").as_deref(),
            Some("otlp-headers")
        );
        for proxy in ["HTTPS_PROXY", "https_proxy", "NO_PROXY", "all_proxy"] {
            assert_eq!(otlp_secret_key(proxy), Some(format!("env-{proxy}")));
        }
        assert_eq!(otlp_secret_key("_PROXY"), None);
        assert_eq!(otlp_secret_key("MY_HTTP_PROXY"), None);
        assert_eq!(
            otlp_secret_key("OTEL_EXPORTER_OTLP_LOGS_HEADERS").as_deref(),
            Some("otlp-logs-headers")
        );
        assert_eq!(otlp_secret_key("OTEL_EXPORTER_OTLP_CERTIFICATE"), None);
        assert_eq!(otlp_secret_key("OTEL_EXPORTER_OTLP_SPANS_HEADERS"), None);
        for other in [
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_SPANS_CERTIFICATE",
            "OTEL_EXPORTER_OTLP_TRACESCERTIFICATE",
            "OTEL_SERVICE_NAME",
        ] {
            assert_eq!(key(other), None, "{other}");
        }
    }

    /// A Gateway or class name too long for a label value is labelled
    /// with its (unique, shortened) base name.
    #[test]
    fn label_values_fit() {
        assert_eq!(labels("gw", "tollgate")[GATEWAY_LABEL], "gw");
        assert_eq!(labels("gw", "tollgate")[GATEWAY_CLASS_LABEL], "tollgate");
        let long = "g".repeat(100);
        let value = &labels(&long, &long)[GATEWAY_LABEL];
        assert_eq!(&labels("gw", &long)[GATEWAY_CLASS_LABEL], value);
        assert!(value.len() <= MAX_LABEL_VALUE, "{value}");
        assert_eq!(value, &base(&long));
        assert_eq!(&selector(&long)[GATEWAY_LABEL], value);
    }

    /// Short names are kept whole; the limit is inclusive.
    #[test]
    fn short_names_are_kept() {
        assert_eq!(base("gw"), "gw-tollgate");
        let limit = "a".repeat(MAX_BASE - SUFFIX.len());
        assert_eq!(base(&limit), format!("{limit}-tollgate"));
        assert_eq!(client_secret("gw"), "gw-tollgate-client");
    }

    /// A long name keeps 38 characters and a hash, so two long names that
    /// share a prefix still differ, and the result is 56 characters.
    #[test]
    fn long_names_are_hashed() {
        let a = format!("{}-a", "x".repeat(60));
        let b = format!("{}-b", "x".repeat(60));
        assert_eq!(base(&a).len(), MAX_BASE);
        assert_ne!(base(&a), base(&b));
        assert!(base(&a).starts_with(&"x".repeat(KEPT)));
        assert!(base(&a).ends_with("-tollgate"));
        // sha256("") starts e3b0c442: the hash is of the name, hex, 8 digits.
        let hex = &base(&a)[KEPT + 1..KEPT + 9];
        assert!(hex.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
