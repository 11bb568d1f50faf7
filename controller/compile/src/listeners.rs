//! Listener validation: protocol, port, hostname, route kinds and conflicts
//! between the listeners of one Gateway, and each listener's status.
//!
//! A listener that is not programmed is left out of the snapshot; routes may
//! still attach to it (the Gateway API counts attachment from `allowedRoutes`
//! and `parentRefs` alone), they are just not served there.

use crate::conditions::{Problem, Stamp, reasons, types};
use crate::hostname::is_valid_hostname;
use crate::listenerset::ListenerSetRef;
use gateway_api::experimental::gateways::{
    GatewayListeners, GatewayListenersAllowedRoutesNamespaces, GatewayListenersTlsMode,
    GatewayStatusListeners, GatewayStatusListenersSupportedKinds,
};
use std::collections::BTreeMap;
use tollgate_snapshot::{HostMatch, ListenerTls, TlsMode};

/// The Gateway API group.
pub(crate) const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

/// One listener as compile sees it.
#[derive(Clone, Debug)]
pub(crate) struct ListenerPlan {
    /// `spec.listeners[].name`.
    pub(crate) name: String,
    /// The manifest port.
    pub(crate) port: i32,
    /// The listener hostname (`Any` when absent).
    pub(crate) hostname: HostMatch,
    /// `allowedRoutes.namespaces`.
    pub(crate) namespaces: Option<GatewayListenersAllowedRoutesNamespaces>,
    /// Route kinds the listener accepts (HTTPRoute and GRPCRoute on HTTP
    /// and HTTPS listeners, TLSRoute on TLS ones).
    pub(crate) supported_kinds: Vec<GatewayStatusListenersSupportedKinds>,
    /// Why some requested route kinds are not supported.
    pub(crate) kinds_problem: Option<Problem>,
    /// Why the certificate references do not resolve (HTTPS and TLS).
    pub(crate) certificate_problem: Option<Problem>,
    /// Why a client-validation CA reference does not resolve
    /// (`spec.tls.frontend`); the listener may still serve with the others.
    pub(crate) frontend_problem: Option<Problem>,
    /// Certificates and options of an HTTPS listener whose references
    /// resolve and whose options can be served.
    pub(crate) tls: Option<ListenerTls>,
    /// Why the listener is not accepted.
    pub(crate) accept_problem: Option<Problem>,
    /// Why the listener conflicts with another one.
    pub(crate) conflict: Option<Problem>,
    /// The ListenerSet it comes from; `None` for the Gateway's own.
    pub(crate) set: Option<ListenerSetRef>,
    /// The mode of a `protocol: TLS` listener (TLSRoutes); `None` for
    /// HTTP and HTTPS.
    pub(crate) tls_mode: Option<TlsMode>,
}

impl ListenerPlan {
    /// The listener's name in the snapshot, unique across the Gateway and
    /// its ListenerSets (whose listener names may repeat the Gateway's).
    pub(crate) fn snapshot_name(&self, gateway_key: &str) -> String {
        match &self.set {
            None => format!("gateway/{gateway_key}/listener/{}", self.name),
            Some(s) => format!("listenerset/{}/listener/{}", s.key(), self.name),
        }
    }

    /// Whether routes of `kind` may attach to this listener.
    pub(crate) fn supports(&self, kind: &str) -> bool {
        self.supported_kinds.iter().any(|k| k.kind == kind)
    }

    /// Why the listener is not programmed, or `None` when it is.
    pub(crate) fn not_programmed(&self) -> Option<Problem> {
        if let Some(p) = self
            .accept_problem
            .as_ref()
            .or(self.conflict.as_ref())
            .or(self.certificate_problem.as_ref())
        {
            return Some(Problem::new(reasons::INVALID, &p.message));
        }
        if self.supported_kinds.is_empty() {
            return Some(Problem::new(
                reasons::INVALID,
                "listener allows no supported route kind",
            ));
        }
        None
    }

    /// The listener's status with `attached` routes; `gateway_problem` is
    /// why the whole Gateway is not programmed, if it is not.
    pub(crate) fn status(
        &self,
        stamp: &Stamp,
        attached: i32,
        gateway_problem: Option<&Problem>,
    ) -> GatewayStatusListeners {
        let accepted = match (&self.accept_problem, &self.conflict) {
            (Some(p), _) => stamp.condition(types::ACCEPTED, false, p.reason, &p.message),
            (None, Some(c)) => {
                stamp.condition(types::ACCEPTED, false, reasons::INVALID, &c.message)
            }
            (None, None) => stamp.condition(
                types::ACCEPTED,
                true,
                reasons::ACCEPTED,
                "listener is valid",
            ),
        };
        let not_programmed = self.not_programmed().or_else(|| {
            gateway_problem.map(|p| {
                Problem::new(
                    reasons::INVALID,
                    format!("the Gateway is not programmed: {}", p.message),
                )
            })
        });
        let programmed = match not_programmed {
            Some(p) => stamp.condition(types::PROGRAMMED, false, p.reason, &p.message),
            None => stamp.condition(
                types::PROGRAMMED,
                true,
                reasons::PROGRAMMED,
                "listener is programmed",
            ),
        };
        let resolved = match self
            .certificate_problem
            .as_ref()
            .or(self.frontend_problem.as_ref())
            .or(self.kinds_problem.as_ref())
        {
            Some(p) => stamp.condition(types::RESOLVED_REFS, false, p.reason, &p.message),
            None => stamp.condition(
                types::RESOLVED_REFS,
                true,
                reasons::RESOLVED_REFS,
                "all references are resolved",
            ),
        };
        let conflicted = match &self.conflict {
            Some(c) => stamp.condition(types::CONFLICTED, true, c.reason, &c.message),
            None => stamp.condition(
                types::CONFLICTED,
                false,
                reasons::NO_CONFLICTS,
                "no conflicts with other listeners",
            ),
        };
        GatewayStatusListeners {
            attached_routes: attached,
            conditions: vec![accepted, programmed, resolved, conflicted],
            name: self.name.clone(),
            supported_kinds: Some(self.supported_kinds.clone()),
        }
    }
}

/// Validates every listener of a Gateway and marks conflicts between them.
pub(crate) fn plan_listeners(
    listeners: &[GatewayListeners],
    port_offset: u16,
) -> Vec<ListenerPlan> {
    let mut plans: Vec<ListenerPlan> = listeners
        .iter()
        .map(|l| plan_listener(l, port_offset))
        .collect();
    mark_conflicts(listeners, &mut plans);
    plans
}

fn plan_listener(l: &GatewayListeners, port_offset: u16) -> ListenerPlan {
    let hostname_raw = l.hostname.as_deref().map(str::to_ascii_lowercase);
    let hostname = hostname_raw
        .as_deref()
        .map_or(HostMatch::Any, HostMatch::parse);
    let mode = l.tls.as_ref().and_then(|t| t.mode.clone());
    let passthrough = mode == Some(GatewayListenersTlsMode::Passthrough);
    // HTTP and HTTPS listeners serve gRPC too (HTTP/2 by ALPN or prior
    // knowledge), so GRPCRoutes attach wherever HTTPRoutes do.
    let route_kinds_served: &[&str] = match l.protocol.as_str() {
        "HTTP" | "HTTPS" => &["HTTPRoute", "GRPCRoute"],
        "TLS" => &["TLSRoute"],
        _ => &[],
    };
    let (supported_kinds, kinds_problem) = if route_kinds_served.is_empty() {
        (Vec::new(), None)
    } else {
        route_kinds(l, route_kinds_served)
    };
    let tls_mode = (l.protocol == "TLS").then_some(if passthrough {
        TlsMode::Passthrough
    } else {
        TlsMode::Terminate
    });
    let accept_problem = if route_kinds_served.is_empty() {
        Some(unsupported_protocol(&l.protocol))
    } else if l.protocol == "TLS" && l.tls.is_none() {
        Some(Problem::new(
            reasons::UNSUPPORTED_VALUE,
            "protocol TLS needs tls: mode Passthrough, or Terminate with certificateRefs",
        ))
    } else if l.protocol == "HTTPS" && passthrough {
        Some(Problem::new(
            reasons::UNSUPPORTED_VALUE,
            "tls.mode Passthrough needs protocol TLS; HTTPS listeners terminate TLS",
        ))
    } else if bind_port(l.port, port_offset).is_none() {
        Some(Problem::new(
            reasons::PORT_UNAVAILABLE,
            format!(
                "port {} plus the listener port offset {port_offset} is not a usable port",
                l.port
            ),
        ))
    } else if hostname_raw
        .as_deref()
        .is_some_and(|h| !is_valid_hostname(h))
    {
        Some(Problem::new(
            reasons::UNSUPPORTED_VALUE,
            format!(
                "hostname {:?} is not a valid DNS name",
                l.hostname.as_deref().unwrap_or("")
            ),
        ))
    } else {
        None
    };
    ListenerPlan {
        name: l.name.clone(),
        port: l.port,
        hostname,
        namespaces: l.allowed_routes.as_ref().and_then(|a| a.namespaces.clone()),
        supported_kinds,
        kinds_problem,
        certificate_problem: None,
        frontend_problem: None,
        tls: None,
        accept_problem,
        conflict: None,
        set: None,
        tls_mode,
    }
}

/// The port to bind for manifest `port`: `port + offset`, when both fit.
pub(crate) fn bind_port(port: i32, offset: u16) -> Option<u16> {
    let port = u16::try_from(port).ok().filter(|p| *p != 0)?;
    port.checked_add(offset)
}

fn unsupported_protocol(protocol: &str) -> Problem {
    Problem::new(
        reasons::UNSUPPORTED_PROTOCOL,
        format!(
            "protocol {protocol} is not supported: Tollgate serves HTTP, HTTPS and TLS listeners only"
        ),
    )
}

fn route_kind_status(kind: &str) -> GatewayStatusListenersSupportedKinds {
    GatewayStatusListenersSupportedKinds {
        group: Some(GATEWAY_GROUP.to_string()),
        kind: kind.to_string(),
    }
}

/// Supported kinds of a listener: `served` (HTTPRoute and GRPCRoute on
/// HTTP and HTTPS, TLSRoute on TLS), or those of them `allowedRoutes.kinds`
/// names; the other kinds it names are reported as `InvalidRouteKinds`.
fn route_kinds(
    l: &GatewayListeners,
    served: &[&str],
) -> (Vec<GatewayStatusListenersSupportedKinds>, Option<Problem>) {
    let kinds = l
        .allowed_routes
        .as_ref()
        .and_then(|a| a.kinds.as_deref())
        .unwrap_or_default();
    if kinds.is_empty() {
        return (served.iter().map(|k| route_kind_status(k)).collect(), None);
    }
    let mut supported: Vec<GatewayStatusListenersSupportedKinds> = Vec::new();
    let mut invalid = Vec::new();
    for k in kinds {
        let group = k.group.as_deref().unwrap_or(GATEWAY_GROUP);
        if group == GATEWAY_GROUP && served.contains(&k.kind.as_str()) {
            if !supported.iter().any(|s| s.kind == k.kind) {
                supported.push(route_kind_status(&k.kind));
            }
        } else {
            invalid.push(format!("{group}/{}", k.kind));
        }
    }
    let problem = (!invalid.is_empty()).then(|| {
        Problem::new(
            reasons::INVALID_ROUTE_KINDS,
            format!(
                "route kinds {} are not supported on {} listeners",
                invalid.join(", "),
                if served.contains(&"TLSRoute") {
                    "TLS"
                } else {
                    "HTTP"
                }
            ),
        )
    });
    (supported, problem)
}

/// Listeners sharing a port must be distinct: an HTTP listener cannot share
/// its port with another protocol (`ProtocolConflict`: a plain and a TLS
/// connection cannot be told apart before reading them), and two listeners
/// on one port need different hostnames (`HostnameConflict`).
fn mark_conflicts(listeners: &[GatewayListeners], plans: &mut [ListenerPlan]) {
    let mut by_port: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
    for (i, l) in listeners.iter().enumerate() {
        by_port.entry(l.port).or_default().push(i);
    }
    for (port, group) in by_port {
        let http = group
            .iter()
            .filter(|&&i| listeners[i].protocol == "HTTP")
            .count();
        if http > 0 && http < group.len() {
            for &i in &group {
                let others = other_names(listeners, &group, i);
                plans[i].conflict = Some(Problem::new(
                    reasons::PROTOCOL_CONFLICT,
                    format!(
                        "port {port} is also used with another protocol by listener(s) {others}"
                    ),
                ));
            }
            continue;
        }
        if mixes_tls_relay(&group, plans) {
            for &i in &group {
                let others = other_names(listeners, &group, i);
                plans[i].conflict = Some(Problem::new(
                    reasons::PROTOCOL_CONFLICT,
                    format!(
                        "port {port} is also used by listener(s) {others} with another protocol or TLS mode; Tollgate does not mix them on one port"
                    ),
                ));
            }
            continue;
        }
        for &i in &group {
            let same: Vec<usize> = group
                .iter()
                .copied()
                .filter(|&j| j != i && plans[j].hostname == plans[i].hostname)
                .collect();
            if !same.is_empty() {
                let names: Vec<&str> = same.iter().map(|&j| listeners[j].name.as_str()).collect();
                plans[i].conflict = Some(Problem::new(
                    reasons::HOSTNAME_CONFLICT,
                    format!(
                        "listener(s) {} also use port {port} with hostname {}",
                        names.join(", "),
                        plans[i].hostname
                    ),
                ));
            }
        }
    }
}

/// Whether a port holds a `protocol: TLS` listener beside a listener of
/// another protocol or TLS mode. Passthrough needs the raw ClientHello and
/// Terminate (or HTTPS) the handshake, and Tollgate keeps one per socket
/// (the Gateway API's `TLSRouteModeMixed` is not supported).
fn mixes_tls_relay(group: &[usize], plans: &[ListenerPlan]) -> bool {
    let relays = group.iter().filter(|&&i| plans[i].tls_mode.is_some());
    let modes: std::collections::HashSet<_> = relays.clone().map(|&i| plans[i].tls_mode).collect();
    relays.count() > 0 && (modes.len() > 1 || group.iter().any(|&i| plans[i].tls_mode.is_none()))
}

fn other_names(listeners: &[GatewayListeners], group: &[usize], me: usize) -> String {
    let names: Vec<&str> = group
        .iter()
        .filter(|&&j| j != me)
        .map(|&j| listeners[j].name.as_str())
        .collect();
    names.join(", ")
}
