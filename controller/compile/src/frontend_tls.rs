//! Client-certificate validation (mutual TLS) from the Gateway's
//! `spec.tls.frontend`, and revocation lists from a Tollgate annotation.
//!
//! `default.validation` applies to every HTTPS listener; a `perPort` entry
//! replaces it, validation or none, for the HTTPS listeners on its
//! (manifest) port. Each `caCertificateRefs` entry names a ConfigMap (Core)
//! or a Secret (implementation-specific) whose `ca.crt` holds PEM CA
//! certificates; one in another namespace needs a ReferenceGrant. A bad
//! entry is the listener's `ResolvedRefs=False` with the spec's reason
//! (`InvalidCACertificateKind`, `RefNotPermitted`,
//! `InvalidCACertificateRef`), and the good ones still serve; when none is
//! good the listener is not accepted (`NoValidCACertificate`) rather than
//! served without the client check the user asked for.
//!
//! Revocation is not in the Gateway API. A Gateway may name a Secret in its
//! own namespace in the annotation [`CRL_ANNOTATION`]; its `ca.crl` holds
//! one or more PEM CRLs that every validating listener of the Gateway
//! checks. A CRL that cannot be loaded fails closed: the validating
//! listeners are not accepted (`InvalidRevocationList`), since serving
//! them would let revoked certificates in.
//!
//! Everything is checked by building the same rustls verifier the data
//! plane builds, with the same crypto provider, so what compile accepts
//! loads there.

use crate::backends::{Referrer, reference_granted};
use crate::conditions::{Problem, reasons};
use crate::resources::Resources;
use gateway_api::experimental::gateways::{
    Gateway, GatewayTlsFrontendDefaultValidationMode as DefaultMode,
    GatewayTlsFrontendPerPortTlsValidationMode as PortMode,
};
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer};
use std::sync::Arc;
use tollgate_snapshot::{ClientValidation, ClientValidationMode};

/// The Gateway annotation naming the Secret (in the Gateway's namespace)
/// whose `ca.crl` holds the revocation lists for client certificates.
pub const CRL_ANNOTATION: &str = "tollgate.dev/client-crl-secret";

/// The key holding a CA bundle, in a ConfigMap or a Secret.
const CA_KEY: &str = "ca.crt";

/// The key holding PEM CRLs in the annotation's Secret.
const CRL_KEY: &str = "ca.crl";

/// One `caCertificateRefs` entry, whichever struct it came from.
struct CaRef<'a> {
    group: &'a str,
    kind: &'a str,
    name: &'a str,
    namespace: Option<&'a str>,
}

/// One validation block, default or per port.
struct Validation<'a> {
    refs: Vec<CaRef<'a>>,
    mode: ClientValidationMode,
}

/// A Gateway's frontend TLS, read once and applied per listener.
pub(crate) struct FrontendTls<'a> {
    resources: &'a Resources,
    namespace: &'a str,
    default: Option<Validation<'a>>,
    per_port: Vec<(i32, Option<Validation<'a>>)>,
    /// The revocation lists, or why they cannot be loaded.
    crls: Result<Vec<String>, Problem>,
}

/// What one listener gets.
#[derive(Debug, Default)]
pub(crate) struct ListenerFrontend {
    /// The validation to serve; `None` when none applies or none can.
    pub(crate) validation: Option<ClientValidation>,
    /// The first reference that does not resolve (`ResolvedRefs=False`).
    pub(crate) unresolved: Option<Problem>,
    /// Why the listener is not accepted.
    pub(crate) not_accepted: Option<Problem>,
}

impl<'a> FrontendTls<'a> {
    /// Reads `gateway`'s `spec.tls.frontend` and CRL annotation.
    pub(crate) fn new(resources: &'a Resources, gateway: &'a Gateway) -> FrontendTls<'a> {
        let namespace = gateway.metadata.namespace.as_deref().unwrap_or_default();
        let frontend = gateway.spec.tls.as_ref().and_then(|t| t.frontend.as_ref());
        let default = frontend
            .and_then(|f| f.default.validation.as_ref())
            .map(|v| Validation {
                refs: v
                    .ca_certificate_refs
                    .iter()
                    .map(|r| CaRef {
                        group: &r.group,
                        kind: &r.kind,
                        name: &r.name,
                        namespace: r.namespace.as_deref(),
                    })
                    .collect(),
                mode: match v.mode {
                    Some(DefaultMode::AllowInsecureFallback) => {
                        ClientValidationMode::AllowInsecureFallback
                    }
                    _ => ClientValidationMode::AllowValidOnly,
                },
            });
        let per_port = frontend
            .and_then(|f| f.per_port.as_ref())
            .into_iter()
            .flatten()
            .map(|p| {
                let validation = p.tls.validation.as_ref().map(|v| Validation {
                    refs: v
                        .ca_certificate_refs
                        .iter()
                        .map(|r| CaRef {
                            group: &r.group,
                            kind: &r.kind,
                            name: &r.name,
                            namespace: r.namespace.as_deref(),
                        })
                        .collect(),
                    mode: match v.mode {
                        Some(PortMode::AllowInsecureFallback) => {
                            ClientValidationMode::AllowInsecureFallback
                        }
                        _ => ClientValidationMode::AllowValidOnly,
                    },
                });
                (p.port, validation)
            })
            .collect();
        let crl_secret = gateway
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(CRL_ANNOTATION));
        let crls = match crl_secret {
            None => Ok(Vec::new()),
            Some(name) => revocation_lists(resources, namespace, name),
        };
        FrontendTls {
            resources,
            namespace,
            default,
            per_port,
            crls,
        }
    }

    /// Whether any validation in effect lets clients in without a valid
    /// certificate (the Gateway's `InsecureFrontendValidationMode`).
    pub(crate) fn insecure_fallback(&self) -> bool {
        self.default
            .iter()
            .chain(self.per_port.iter().filter_map(|(_, v)| v.as_ref()))
            .any(|v| v.mode == ClientValidationMode::AllowInsecureFallback)
    }

    /// The validation of an HTTPS listener on manifest port `port`.
    pub(crate) fn for_port(&self, port: i32) -> ListenerFrontend {
        let validation = match self.per_port.iter().find(|(p, _)| *p == port) {
            Some((_, v)) => v.as_ref(),
            None => self.default.as_ref(),
        };
        let Some(validation) = validation else {
            return ListenerFrontend::default();
        };
        let mut out = ListenerFrontend::default();
        let mut bundles = Vec::new();
        for r in &validation.refs {
            match self.ca_bundle(r) {
                Ok(pem) => bundles.push(pem),
                Err(problem) => {
                    out.unresolved.get_or_insert(problem);
                }
            }
        }
        if bundles.is_empty() {
            out.not_accepted = Some(Problem::new(
                reasons::NO_VALID_CA_CERTIFICATE,
                "no caCertificateRef of spec.tls.frontend resolves to a usable CA certificate",
            ));
            return out;
        }
        let crls = match &self.crls {
            Ok(crls) => crls.clone(),
            Err(problem) => {
                out.not_accepted = Some(problem.clone());
                out.unresolved.get_or_insert(problem.clone());
                return out;
            }
        };
        if let Err(why) = check_verifier(&bundles, &crls) {
            out.not_accepted = Some(Problem::new(reasons::INVALID_REVOCATION_LIST, why));
            return out;
        }
        out.validation = Some(ClientValidation {
            ca_certificates: bundles,
            mode: validation.mode,
            crls,
        });
        out
    }

    /// The PEM bundle one reference names.
    fn ca_bundle(&self, r: &CaRef<'_>) -> Result<String, Problem> {
        let ns = r.namespace.unwrap_or(self.namespace);
        let name = r.name;
        let kind = match (r.group, r.kind) {
            ("", "ConfigMap") => "ConfigMap",
            ("", "Secret") => "Secret",
            (group, kind) => {
                let kind = if group.is_empty() {
                    kind.to_string()
                } else {
                    format!("{kind}.{group}")
                };
                return Err(Problem::new(
                    reasons::INVALID_CA_CERTIFICATE_KIND,
                    format!(
                        "caCertificateRef to {kind} {ns}/{name}: only ConfigMaps and Secrets are supported"
                    ),
                ));
            }
        };
        let gateway = Referrer {
            group: crate::listeners::GATEWAY_GROUP,
            kind: "Gateway",
            namespace: self.namespace,
        };
        if ns != self.namespace
            && !reference_granted(self.resources, &gateway, ("", kind), ns, name)
        {
            return Err(Problem::new(
                reasons::REF_NOT_PERMITTED,
                format!(
                    "{kind} {ns}/{name} is in another namespace and no ReferenceGrant there allows Gateways from {}",
                    self.namespace
                ),
            ));
        }
        let invalid = |why: &str| {
            Problem::new(
                reasons::INVALID_CA_CERTIFICATE_REF,
                format!("{kind} {ns}/{name} {why}"),
            )
        };
        let key = format!("{ns}/{name}");
        let pem = if kind == "ConfigMap" {
            let map = self
                .resources
                .config_maps
                .get(&key)
                .ok_or_else(|| invalid("does not exist"))?;
            let text = map.data.as_ref().and_then(|d| d.get(CA_KEY)).cloned();
            let binary = || {
                let bytes = map.binary_data.as_ref()?.get(CA_KEY)?;
                String::from_utf8(bytes.0.clone()).ok()
            };
            text.or_else(binary)
        } else {
            let secret = self
                .resources
                .secrets
                .get(&key)
                .ok_or_else(|| invalid("does not exist"))?;
            secret_text(secret, CA_KEY)
        };
        let pem = pem.ok_or_else(|| invalid(&format!("has no {CA_KEY}")))?;
        let mut roots = RootCertStore::empty();
        let certificates = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| invalid(&format!("has a {CA_KEY} that is not valid PEM")))?;
        if certificates.is_empty() {
            return Err(invalid(&format!("has no certificate in {CA_KEY}")));
        }
        for c in certificates {
            roots.add(c).map_err(|_| {
                invalid(&format!(
                    "has a certificate in {CA_KEY} that cannot be a trust anchor"
                ))
            })?;
        }
        Ok(pem)
    }
}

/// The PEM CRLs in Secret `ns/name`, key `ca.crl`.
fn revocation_lists(resources: &Resources, ns: &str, name: &str) -> Result<Vec<String>, Problem> {
    let invalid = |why: String| {
        Problem::new(
            reasons::INVALID_REVOCATION_LIST,
            format!("Secret {ns}/{name} (annotation {CRL_ANNOTATION}) {why}"),
        )
    };
    let secret = resources
        .secrets
        .get(&format!("{ns}/{name}"))
        .ok_or_else(|| invalid("does not exist".into()))?;
    let pem = secret_text(secret, CRL_KEY).ok_or_else(|| invalid(format!("has no {CRL_KEY}")))?;
    let crls = CertificateRevocationListDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| invalid(format!("has a {CRL_KEY} that is not valid PEM")))?;
    if crls.is_empty() {
        return Err(invalid(format!("has no X509 CRL in {CRL_KEY}")));
    }
    Ok(vec![pem])
}

/// Builds the verifier the data plane will build.
///
/// # Errors
///
/// Why it cannot be built (in practice: a CRL that does not parse).
fn check_verifier(bundles: &[String], crls: &[String]) -> Result<(), String> {
    let mut roots = RootCertStore::empty();
    for pem in bundles {
        for c in CertificateDer::pem_slice_iter(pem.as_bytes()).flatten() {
            // Each was added on its own already; a failure here is impossible.
            let _ = roots.add(c);
        }
    }
    let crls = crls
        .iter()
        .flat_map(|pem| CertificateRevocationListDer::pem_slice_iter(pem.as_bytes()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| "a revocation list is not valid PEM".to_string())?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .with_crls(crls)
        .build()
        .map(|_| ())
        .map_err(|e| format!("the revocation list cannot be loaded: {e}"))
}

/// A Secret value as text, from `data` or (in a manifest folder) `stringData`.
fn secret_text(secret: &k8s_openapi::api::core::v1::Secret, key: &str) -> Option<String> {
    let data = secret.data.as_ref().and_then(|d| d.get(key));
    let text = secret.string_data.as_ref().and_then(|d| d.get(key));
    data.and_then(|v| String::from_utf8(v.0.clone()).ok())
        .or_else(|| text.cloned())
        .filter(|v| !v.is_empty())
}
