//! Backend references: a route's `backendRefs` and mirror targets resolved
//! to a Service port (its endpoints are added when the snapshot is
//! assembled, see `endpoints`).
//!
//! Resolution checks, in order: the kind (only core `Service`), the
//! ReferenceGrant for a cross-namespace reference, the port, the Service and
//! its port, the port's `appProtocol`, and the port's TLS settings from the
//! BackendTLSPolicy that targets it (`backend_tls`). A failure is a [`Problem`] with the route
//! `ResolvedRefs` reason; the reference then points at no backend, so the
//! data plane answers 500 for its share of requests. A Service without
//! ready endpoints is valid and resolves to a backend with no endpoints
//! (503).

use crate::backend_tls::backend_tls;
use crate::conditions::{Problem, reasons};
use crate::resources::Resources;
use tollgate_snapshot::{Backend, BackendProtocol};

/// A backend reference, whatever filter or rule it came from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BackendTarget<'a> {
    /// `group`; core when absent.
    pub(crate) group: Option<&'a str>,
    /// `kind`; `Service` when absent.
    pub(crate) kind: Option<&'a str>,
    /// `name`.
    pub(crate) name: &'a str,
    /// `namespace`; the route's when absent.
    pub(crate) namespace: Option<&'a str>,
    /// `port`.
    pub(crate) port: Option<i32>,
}

/// Resolves `target`, referenced from `from` (the group and kind a
/// ReferenceGrant must name, and the referrer's namespace).
pub(crate) fn resolve_backend_from(
    resources: &Resources,
    from: &Referrer<'_>,
    target: BackendTarget<'_>,
) -> Result<Backend, Problem> {
    let (route_kind, route_ns) = (from.kind, from.namespace);
    let group = target.group.unwrap_or("");
    let kind = target.kind.unwrap_or("Service");
    if !group.is_empty() || kind != "Service" {
        return Err(Problem::new(
            reasons::INVALID_KIND,
            format!("backend kind {group}/{kind} is not supported; use a Service"),
        ));
    }
    let ns = target.namespace.unwrap_or(route_ns);
    let name = target.name;
    if ns != route_ns && !reference_granted(resources, from, ("", "Service"), ns, name) {
        return Err(Problem::new(
            reasons::REF_NOT_PERMITTED,
            format!(
                "no ReferenceGrant in namespace {ns} allows {route_kind}s from {route_ns} to Service {name}"
            ),
        ));
    }
    let Some(port) = target.port else {
        return Err(Problem::new(
            reasons::UNSUPPORTED_VALUE,
            format!("backendRef to Service {ns}/{name} has no port"),
        ));
    };
    let service = resources
        .services
        .get(&format!("{ns}/{name}"))
        .ok_or_else(|| {
            Problem::new(
                reasons::BACKEND_NOT_FOUND,
                format!("Service {ns}/{name} does not exist"),
            )
        })?;
    let service_port = service
        .spec
        .iter()
        .flat_map(|s| s.ports.iter().flatten())
        .find(|p| p.port == port)
        .ok_or_else(|| {
            Problem::new(
                reasons::BACKEND_NOT_FOUND,
                format!("Service {ns}/{name} has no port {port}"),
            )
        })?;
    let tls = backend_tls(resources, ns, name, service_port.name.as_deref());
    let app = service_port.app_protocol.as_deref();
    let protocol = backend_protocol(app, tls.is_some()).ok_or_else(|| {
        let app = app.unwrap_or_default();
        Problem::new(
            reasons::UNSUPPORTED_PROTOCOL,
            format!(
                "Service {ns}/{name} port {port} has appProtocol {app}, which Tollgate cannot speak{}",
                unsupported_protocol_hint(app),
            ),
        )
    })?;
    Ok(Backend {
        name: format!("service/{ns}/{name}/port/{port}"),
        protocol,
        // Filled when the snapshot is assembled (`endpoints`), so that
        // compiled routes do not depend on EndpointSlices.
        endpoints: Vec::new(),
        tls,
    })
}

/// The wire protocol for a Service port's `appProtocol`: plain HTTP/1.1
/// (also for `kubernetes.io/ws`: a WebSocket starts as an HTTP/1.1
/// request with `Upgrade: websocket`, which the data plane relays) or h2c;
/// `None` when Tollgate cannot speak it.
///
/// `kubernetes.io/wss` is the same HTTP/1.1 over TLS: TLS to a backend is
/// what a BackendTLSPolicy configures and verifies, so it is accepted only
/// for a port such a policy targets (`tls`), never as unverified TLS.
fn backend_protocol(app_protocol: Option<&str>, tls: bool) -> Option<BackendProtocol> {
    match app_protocol.map(str::to_ascii_lowercase).as_deref() {
        None | Some("http" | "kubernetes.io/http" | "kubernetes.io/ws") => {
            Some(BackendProtocol::Http1)
        }
        Some("kubernetes.io/wss") if tls => Some(BackendProtocol::Http1),
        Some("kubernetes.io/h2c") => Some(BackendProtocol::H2c),
        Some(_) => None,
    }
}

/// Why an `appProtocol` Tollgate cannot speak is refused, for the route's
/// `ResolvedRefs` message.
fn unsupported_protocol_hint(app_protocol: &str) -> &'static str {
    if app_protocol.eq_ignore_ascii_case("kubernetes.io/wss") {
        " without a BackendTLSPolicy for the port (TLS to a backend is verified by one)"
    } else {
        ""
    }
}

/// An object that refers across namespaces.
pub(crate) struct Referrer<'a> {
    /// Its API group, e.g. `gateway.networking.k8s.io` or `tollgate.dev`.
    pub(crate) group: &'a str,
    /// Its kind, e.g. `HTTPRoute`.
    pub(crate) kind: &'a str,
    /// Its namespace.
    pub(crate) namespace: &'a str,
}

/// Whether a ReferenceGrant in `to_ns` lets `from` refer to the object of
/// `(group, kind)` named `name` (a grant without `to.name` covers every
/// object of that kind).
pub(crate) fn reference_granted(
    resources: &Resources,
    from: &Referrer<'_>,
    (to_group, to_kind): (&str, &str),
    to_ns: &str,
    name: &str,
) -> bool {
    resources
        .reference_grants
        .values()
        .filter(|g| g.metadata.namespace.as_deref() == Some(to_ns))
        .any(|g| {
            let from_ok = g.spec.from.iter().any(|f| {
                f.group == from.group && f.kind == from.kind && f.namespace == from.namespace
            });
            let to_ok = g.spec.to.iter().any(|t| {
                t.group == to_group
                    && t.kind == to_kind
                    && t.name.as_deref().is_none_or(|n| n == name)
            });
            from_ok && to_ok
        })
}
