//! What an AuthPolicy refers to, resolved: Secret and ConfigMap values,
//! its CA bundle, and the call targets (URI or Service) of JWKS, token,
//! introspection and external-auth calls.
//!
//! Secrets and ConfigMaps are read from the policy's own namespace only,
//! so a policy can never read credentials its author could not; Services
//! in another namespace need a ReferenceGrant from `tollgate.dev`
//! AuthPolicies, as routes need one for their backends. A failure is a
//! [`Problem`] with reason `Invalid` that names the field.

use crate::backends::{BackendTarget, Referrer, resolve_backend_from};
use crate::conditions::{Problem, reasons};
use crate::resources::Resources;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tollgate_crds::{CallBackendRef, GROUP, LocalObjectRef};
use tollgate_snapshot::{Backend, CallTarget};

/// The key of CA bundles in ConfigMaps and Secrets.
const CA_KEY: &str = "ca.crt";

/// Resolves the references of one policy, collecting the Services its
/// calls go to (indexed by `CallTarget::backend`) and warnings.
#[derive(Debug)]
pub(crate) struct PolicyRefs<'a> {
    resources: &'a Resources,
    /// The policy's namespace.
    pub(crate) namespace: &'a str,
    /// The PEM bundle of `caCertificateRefs`, for every `https` call.
    pub(crate) ca_pem: Option<String>,
    /// Services calls go to; `CallTarget::backend` indexes this.
    pub(crate) backends: Vec<Backend>,
    /// Accepted but risky settings, e.g. plain `http://` JWKS.
    pub(crate) warnings: Vec<String>,
}

/// A `Problem` with reason `Invalid`.
pub(crate) fn invalid(message: impl Into<String>) -> Problem {
    Problem::new(reasons::INVALID, message)
}

impl<'a> PolicyRefs<'a> {
    /// A resolver for a policy in `namespace`.
    pub(crate) fn new(resources: &'a Resources, namespace: &'a str) -> Self {
        PolicyRefs {
            resources,
            namespace,
            ca_pem: None,
            backends: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// The objects this resolver reads.
    pub(crate) fn resources(&self) -> &'a Resources {
        self.resources
    }

    /// The value under `key` of the Secret `r` names (kind Secret only).
    ///
    /// # Errors
    ///
    /// A reference to another kind, a missing Secret or key, or a value
    /// that is not UTF-8.
    pub(crate) fn secret_value(
        &self,
        field: &str,
        r: &LocalObjectRef,
        key: &str,
    ) -> Result<String, Problem> {
        let (group, kind) = (
            r.group.as_deref().unwrap_or(""),
            r.kind.as_deref().unwrap_or("Secret"),
        );
        if !group.is_empty() || kind != "Secret" {
            return Err(invalid(format!(
                "{field}: {kind} {} is not a Secret",
                r.name
            )));
        }
        self.value(field, "Secret", &r.name, key)
    }

    /// The value under `key` of the ConfigMap or Secret `r` names, kind
    /// defaulting to `default_kind`.
    ///
    /// # Errors
    ///
    /// As [`Self::secret_value`], for either kind.
    pub(crate) fn object_value(
        &self,
        field: &str,
        r: &LocalObjectRef,
        default_kind: &str,
        key: &str,
    ) -> Result<String, Problem> {
        let group = r.group.as_deref().unwrap_or("");
        let kind = r.kind.as_deref().unwrap_or(default_kind);
        if !group.is_empty() || !matches!(kind, "Secret" | "ConfigMap") {
            return Err(invalid(format!(
                "{field}: {kind} {} is neither a ConfigMap nor a Secret",
                r.name
            )));
        }
        self.value(field, kind, &r.name, key)
    }

    fn value(&self, field: &str, kind: &str, name: &str, key: &str) -> Result<String, Problem> {
        let ns = self.namespace;
        let id = format!("{ns}/{name}");
        let missing = || invalid(format!("{field}: {kind} {id} does not exist"));
        let no_key = || invalid(format!("{field}: {kind} {id} has no key {key}"));
        let bytes: Vec<u8> = if kind == "Secret" {
            let secret = self.resources.secrets.get(&id).ok_or_else(missing)?;
            // `stringData` counts too: a manifest folder is read as written.
            let text = secret.string_data.as_ref().and_then(|d| d.get(key));
            let data = secret.data.as_ref().and_then(|d| d.get(key));
            text.map(|t| t.as_bytes().to_vec())
                .or_else(|| data.map(|d| d.0.clone()))
                .ok_or_else(no_key)?
        } else {
            let map = self.resources.config_maps.get(&id).ok_or_else(missing)?;
            let text = map.data.as_ref().and_then(|d| d.get(key));
            let binary = map.binary_data.as_ref().and_then(|d| d.get(key));
            text.map(|t| t.as_bytes().to_vec())
                .or_else(|| binary.map(|d| d.0.clone()))
                .ok_or_else(no_key)?
        };
        String::from_utf8(bytes)
            .map_err(|_| invalid(format!("{field}: {kind} {id} key {key} is not UTF-8")))
    }

    /// Every key and value of Secret `name` (for API keys).
    pub(crate) fn secret_entries(
        &self,
        field: &str,
        r: &LocalObjectRef,
    ) -> Result<Vec<(String, String)>, Problem> {
        let kind = r.kind.as_deref().unwrap_or("Secret");
        if r.group.as_deref().is_some_and(|g| !g.is_empty()) || kind != "Secret" {
            return Err(invalid(format!(
                "{field}: {kind} {} is not a Secret",
                r.name
            )));
        }
        let id = format!("{}/{}", self.namespace, r.name);
        let secret = self
            .resources
            .secrets
            .get(&id)
            .ok_or_else(|| invalid(format!("{field}: Secret {id} does not exist")))?;
        Ok(secret_map(secret))
    }

    /// Resolves `caCertificateRefs` (ConfigMap by default, or Secret) into
    /// one PEM bundle for the policy's calls.
    ///
    /// # Errors
    ///
    /// A missing object or key, or a value holding no PEM certificate.
    pub(crate) fn load_ca(&mut self, refs: &[LocalObjectRef]) -> Result<(), Problem> {
        let mut bundle = String::new();
        for r in refs {
            let pem = self.object_value("caCertificateRefs", r, "ConfigMap", CA_KEY)?;
            // Parsed here as the data plane will, so a bundle it would
            // refuse is this policy's status, not a rejected snapshot.
            let parsed = CertificateDer::pem_slice_iter(pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    invalid(format!(
                        "caCertificateRefs: {} {CA_KEY} is not PEM: {e}",
                        r.name
                    ))
                })?;
            if parsed.is_empty() {
                return Err(invalid(format!(
                    "caCertificateRefs: {} {CA_KEY} holds no certificate",
                    r.name
                )));
            }
            bundle.push_str(pem.trim_end());
            bundle.push('\n');
        }
        self.ca_pem = (!bundle.is_empty()).then_some(bundle);
        Ok(())
    }

    /// A call to `uri`, through the Service of `backend_refs` when one is
    /// named.
    ///
    /// # Errors
    ///
    /// A URI that is not absolute `http`/`https`, or a Service that does
    /// not resolve (missing, no port, no ReferenceGrant).
    pub(crate) fn target(
        &mut self,
        field: &str,
        uri: &str,
        backend_refs: Option<&[CallBackendRef]>,
        timeout_ms: u64,
    ) -> Result<CallTarget, Problem> {
        check_uri(field, uri)?;
        if uri.starts_with("http://") {
            self.warnings.push(format!(
                "{field} {uri} is plain http: keys and tokens can be read or changed on the way"
            ));
        }
        let backend = match backend_refs.and_then(<[CallBackendRef]>::first) {
            Some(r) => Some(self.backend(field, r)?),
            None => None,
        };
        Ok(CallTarget {
            uri: uri.to_string(),
            backend,
            ca_pem: self.ca_pem.clone(),
            timeout_ms,
        })
    }

    /// A call to the Service `r`, at `path`: the URI is made from the
    /// Service's name (`https` when a BackendTLSPolicy covers the port).
    ///
    /// # Errors
    ///
    /// A Service that does not resolve.
    pub(crate) fn service_target(
        &mut self,
        field: &str,
        r: &CallBackendRef,
        path: &str,
        timeout_ms: u64,
    ) -> Result<CallTarget, Problem> {
        let index = self.backend(field, r)?;
        let tls = self.backends.get(index).is_some_and(|b| b.tls.is_some());
        let ns = r.namespace.as_deref().unwrap_or(self.namespace);
        let port = r.port.unwrap_or_default();
        let scheme = if tls { "https" } else { "http" };
        Ok(CallTarget {
            uri: format!("{scheme}://{}.{ns}:{port}{path}", r.name),
            backend: Some(index),
            ca_pem: self.ca_pem.clone(),
            timeout_ms,
        })
    }

    fn backend(&mut self, field: &str, r: &CallBackendRef) -> Result<usize, Problem> {
        let from = Referrer {
            group: GROUP,
            kind: "AuthPolicy",
            namespace: self.namespace,
        };
        let target = BackendTarget {
            group: r.group.as_deref(),
            kind: r.kind.as_deref(),
            name: &r.name,
            namespace: r.namespace.as_deref(),
            port: r.port,
        };
        let backend = resolve_backend_from(self.resources, &from, target)
            .map_err(|p| invalid(format!("{field}: {}", p.message)))?;
        Ok(
            match self.backends.iter().position(|b| b.name == backend.name) {
                Some(i) => i,
                None => {
                    self.backends.push(backend);
                    self.backends.len() - 1
                }
            },
        )
    }
}

/// Every key of `secret` with its value (`stringData` over `data`), keys
/// sorted; values that are not UTF-8 are skipped.
pub(crate) fn secret_map(secret: &k8s_openapi::api::core::v1::Secret) -> Vec<(String, String)> {
    let mut out = std::collections::BTreeMap::new();
    for (k, v) in secret.data.iter().flatten() {
        if let Ok(text) = String::from_utf8(v.0.clone()) {
            out.insert(k.clone(), text);
        }
    }
    for (k, v) in secret.string_data.iter().flatten() {
        out.insert(k.clone(), v.clone());
    }
    out.into_iter().collect()
}

/// An absolute `http` or `https` URI with a host and no whitespace.
fn check_uri(field: &str, uri: &str) -> Result<(), Problem> {
    let rest = uri
        .strip_prefix("https://")
        .or_else(|| uri.strip_prefix("http://"));
    let host = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or_default());
    match host {
        Some(h) if !h.is_empty() && !uri.chars().any(char::is_whitespace) => Ok(()),
        _ => Err(invalid(format!(
            "{field}: {uri:?} is not an absolute http or https URI"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::check_uri;

    /// Only absolute http(s) URIs with a host pass.
    #[test]
    fn uri_table() {
        for ok in [
            "https://issuer.example/jwks",
            "http://127.0.0.1:9000/jwks.json",
        ] {
            assert!(check_uri("f", ok).is_ok(), "{ok}");
        }
        for bad in [
            "issuer.example/jwks",
            "https:///jwks",
            "ftp://x/",
            "https://a b/",
        ] {
            assert!(check_uri("f", bad).is_err(), "{bad}");
        }
    }
}
