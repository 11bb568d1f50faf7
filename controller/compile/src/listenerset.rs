//! ListenerSets (GEP-1713): listeners that application teams add to a
//! shared Gateway from their own namespace, with their own certificates.
//!
//! A Gateway's owner decides who may add listeners (`spec.allowedListeners`,
//! none by default); an application team then owns a ListenerSet with its
//! HTTPS listeners and Secrets, without write access to the Gateway. Compile
//! treats an allowed ListenerSet's listeners as the Gateway's own, appended
//! after them in the spec's precedence (the Gateway, then ListenerSets by
//! creation time, then `namespace/name`), so attachment, TLS and snapshot
//! building need no second code path. Three things differ, and are decided
//! here:
//!
//! - a listener that conflicts with an earlier one (same port with another
//!   protocol, or the same hostname) is `Conflicted` and left out; the
//!   earlier one keeps serving, so a team cannot take a port or hostname
//!   from the Gateway or from an older ListenerSet;
//! - certificate references resolve in the ListenerSet's namespace (in a
//!   third namespace only with a ReferenceGrant from `ListenerSet`), and
//!   `allowedRoutes.namespaces: Same` means the ListenerSet's namespace;
//! - routes reach a ListenerSet's listeners only through a parentRef of
//!   `kind: ListenerSet`, and a Gateway parentRef only the Gateway's own.
//!
//! Statuses: the ListenerSet gets `Accepted`/`Programmed` and one entry per
//! listener; a ListenerSet the Gateway does not allow gets both `False`
//! with reason `NotAllowed`; the Gateway counts attached ListenerSets.

use crate::backends::Referrer;
use crate::conditions::{Problem, Stamp, reasons, types};
use crate::frontend_tls::FrontendTls;
use crate::gateway::{GatewayPlan, TlsInputs, plan_tls};
use crate::listeners::{GATEWAY_GROUP, ListenerPlan, plan_listeners};
use crate::resources::Resources;
use crate::selector::{namespace_labels, selects};
use gateway_api::experimental::gateways::{
    Gateway, GatewayAllowedListenersNamespacesFrom as ListenersFrom, GatewayListeners,
};
use gateway_api::experimental::httproutes::HttpRouteParentRefs;
use gateway_api::experimental::listenersets::{
    ListenerSet, ListenerSetListeners, ListenerSetStatus, ListenerSetStatusListeners,
    ListenerSetStatusListenersSupportedKinds,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use tollgate_snapshot::TlsOptions;

/// The kind routes and status use for a ListenerSet.
pub(crate) const LISTENER_SET: &str = "ListenerSet";
const NOT_ALLOWED: &str = "NotAllowed";
const PARENT_NOT_ACCEPTED: &str = "ParentNotAccepted";
const PARENT_NOT_PROGRAMMED: &str = "ParentNotProgrammed";

/// The ListenerSet a listener comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ListenerSetRef {
    /// `metadata.namespace`.
    pub(crate) namespace: String,
    /// `metadata.name`.
    pub(crate) name: String,
}

impl ListenerSetRef {
    /// `namespace/name`.
    pub(crate) fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// One ListenerSet whose parentRef names a Tollgate Gateway.
#[derive(Clone, Debug)]
pub(crate) struct SetPlan {
    /// The ListenerSet.
    pub(crate) set: ListenerSetRef,
    /// Stamp for its conditions.
    pub(crate) stamp: Stamp,
    /// Why the Gateway does not take it, if it does not.
    pub(crate) not_allowed: Option<Problem>,
    /// Indices of its listeners in the Gateway plan's listeners.
    pub(crate) listeners: Vec<usize>,
}

/// Appends the listeners of every ListenerSet `gateway` allows to `plan`
/// (TLS resolved with the class's `tls_defaults`), in precedence order,
/// and returns one [`SetPlan`] per ListenerSet naming the Gateway.
pub(crate) fn merge_listener_sets(
    resources: &Resources,
    gateway: &Gateway,
    tls_defaults: &TlsOptions,
    port_offset: u16,
    stamp: &Stamp,
    plan: &mut GatewayPlan,
) -> Vec<SetPlan> {
    let mut protocols: Vec<String> = gateway
        .spec
        .listeners
        .iter()
        .map(|l| l.protocol.clone())
        .collect();
    let mut out = Vec::new();
    let frontend = FrontendTls::new(resources, gateway);
    for set in sets_naming(resources, &plan.namespace, &plan.name) {
        let set_ref = ListenerSetRef {
            namespace: set.metadata.namespace.clone().unwrap_or_default(),
            name: set.metadata.name.clone().unwrap_or_default(),
        };
        let mut set_plan = SetPlan {
            set: set_ref.clone(),
            stamp: stamp.for_generation(set.metadata.generation),
            not_allowed: not_allowed(resources, gateway, &set_ref.namespace),
            listeners: Vec::new(),
        };
        if set_plan.not_allowed.is_none() {
            let specs: Vec<GatewayListeners> = set.spec.listeners.iter().map(as_listener).collect();
            let first = plan.listeners.len();
            for (mut listener, spec) in plan_listeners(&specs, port_offset).into_iter().zip(&specs)
            {
                listener.set = Some(set_ref.clone());
                if listener.conflict.is_none() {
                    listener.conflict = conflict(&plan.listeners, &protocols, &listener, spec);
                }
                // ReferenceGrants name ListenerSets, not the Gateway, as
                // the ones that may read a Secret in a third namespace.
                let owner = Referrer {
                    group: crate::listeners::GATEWAY_GROUP,
                    kind: LISTENER_SET,
                    namespace: &set_ref.namespace,
                };
                let tls = TlsInputs {
                    resources,
                    owner: &owner,
                    defaults: tls_defaults,
                    frontend: &frontend,
                };
                plan_tls(&tls, &mut listener, spec);
                protocols.push(spec.protocol.clone());
                plan.listeners.push(listener);
            }
            set_plan.listeners = (first..plan.listeners.len()).collect();
        }
        out.push(set_plan);
    }
    out
}

/// The ListenerSets whose parentRef names Gateway `ns/name`, oldest first,
/// then by `namespace/name`.
fn sets_naming<'a>(resources: &'a Resources, ns: &str, name: &str) -> Vec<&'a ListenerSet> {
    let mut sets: Vec<(&String, &ListenerSet)> = resources
        .listener_sets
        .iter()
        .filter(|(_, s)| {
            let p = &s.spec.parent_ref;
            let set_ns = s.metadata.namespace.as_deref().unwrap_or_default();
            p.group.as_deref().unwrap_or(GATEWAY_GROUP) == GATEWAY_GROUP
                && p.kind.as_deref().unwrap_or("Gateway") == "Gateway"
                && p.namespace.as_deref().unwrap_or(set_ns) == ns
                && p.name == name
        })
        .map(|(k, s)| (k, &**s))
        .collect();
    sets.sort_by_key(|(key, s)| (s.metadata.creation_timestamp.as_ref().map(|t| t.0), *key));
    sets.into_iter().map(|(_, s)| s).collect()
}

/// `spec.allowedListeners.namespaces` of the Gateway against the
/// ListenerSet's namespace: `None` when allowed, else why not.
fn not_allowed(resources: &Resources, gateway: &Gateway, set_ns: &str) -> Option<Problem> {
    let namespaces = gateway
        .spec
        .allowed_listeners
        .as_ref()
        .and_then(|a| a.namespaces.as_ref());
    let gateway_ns = gateway.metadata.namespace.as_deref().unwrap_or_default();
    let allowed = match namespaces.and_then(|n| n.from.clone()) {
        None | Some(ListenersFrom::None) => false,
        Some(ListenersFrom::All) => true,
        Some(ListenersFrom::Same) => set_ns == gateway_ns,
        Some(ListenersFrom::Selector) => namespaces
            .and_then(|n| n.selector.as_ref())
            .and_then(|s| serde_json::to_value(s).ok())
            .and_then(|s| serde_json::from_value(s).ok())
            .is_some_and(|s| selects(&s, &namespace_labels(resources, set_ns))),
    };
    (!allowed).then(|| {
        Problem::new(
            NOT_ALLOWED,
            format!(
                "the Gateway's allowedListeners does not allow ListenerSets from namespace {set_ns}"
            ),
        )
    })
}

/// A ListenerSet listener as a Gateway listener: the API gives both the
/// same schema, so the fields carry over by name.
fn as_listener(entry: &ListenerSetListeners) -> GatewayListeners {
    serde_json::to_value(entry)
        .ok()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_else(|| GatewayListeners {
            name: entry.name.clone(),
            port: entry.port,
            // Planned as an unsupported protocol: never served.
            protocol: format!("{} (unreadable)", entry.protocol),
            ..GatewayListeners::default()
        })
}

/// Whether `new` conflicts with a listener merged before it that is not
/// itself conflicted: earlier listeners win.
fn conflict(
    earlier: &[ListenerPlan],
    protocols: &[String],
    new: &ListenerPlan,
    spec: &GatewayListeners,
) -> Option<Problem> {
    let live = earlier
        .iter()
        .zip(protocols)
        .filter(|(l, _)| l.conflict.is_none() && l.port == new.port);
    let is_http = spec.protocol == "HTTP";
    let mut hostname_clash = None;
    for (l, protocol) in live {
        if (protocol == "HTTP") != is_http {
            return Some(Problem::new(
                reasons::PROTOCOL_CONFLICT,
                format!(
                    "port {} is already used with protocol {protocol} by listener {}",
                    new.port,
                    owner(l)
                ),
            ));
        }
        if l.hostname == new.hostname && hostname_clash.is_none() {
            hostname_clash = Some(Problem::new(
                reasons::HOSTNAME_CONFLICT,
                format!(
                    "listener {} already uses port {} with hostname {}",
                    owner(l),
                    new.port,
                    new.hostname
                ),
            ));
        }
    }
    hostname_clash
}

/// `name` of a Gateway listener, `ListenerSet ns/name listener name` else.
fn owner(l: &ListenerPlan) -> String {
    match &l.set {
        None => format!("{} of the Gateway", l.name),
        Some(s) => format!("{} of ListenerSet {}", l.name, s.key()),
    }
}

/// The ListenerSet `parent` names (`namespace/name`), or `None` when it
/// names a Gateway: the listeners a route may attach to through it.
pub(crate) fn parent_scope(parent: &HttpRouteParentRefs, route_ns: &str) -> Option<String> {
    let group = parent.group.as_deref().unwrap_or(GATEWAY_GROUP);
    (group == GATEWAY_GROUP && parent.kind.as_deref() == Some(LISTENER_SET)).then(|| {
        let ns = parent.namespace.as_deref().unwrap_or(route_ns);
        format!("{ns}/{}", parent.name)
    })
}

/// Whether `listener` belongs to `scope` (see [`parent_scope`]).
pub(crate) fn in_scope(listener: &ListenerPlan, scope: Option<&str>) -> bool {
    listener.set.as_ref().map(ListenerSetRef::key).as_deref() == scope
}

impl SetPlan {
    /// The ListenerSet's status on `gateway`; `attached[i]` counts routes
    /// on the Gateway plan's listener `i`.
    pub(crate) fn status(&self, gateway: &GatewayPlan, attached: &[i32]) -> ListenerSetStatus {
        let s = &self.stamp;
        let both = |reason: &'static str, accepted: bool, message: String| -> Vec<Condition> {
            vec![
                s.condition(types::ACCEPTED, accepted, reason, &message),
                s.condition(types::PROGRAMMED, accepted, reason, message),
            ]
        };
        if let Some(p) = &self.not_allowed {
            return ListenerSetStatus {
                conditions: Some(both(p.reason, false, p.message.clone())),
                listeners: None,
            };
        }
        let gateway_problem = gateway.not_programmed();
        let listeners: Vec<(&ListenerPlan, i32)> = self
            .listeners
            .iter()
            .filter_map(|&i| Some((gateway.listeners.get(i)?, attached.get(i).copied()?)))
            .collect();
        let invalid: Vec<&str> = listeners
            .iter()
            .filter(|(l, _)| l.not_programmed().is_some())
            .map(|(l, _)| l.name.as_str())
            .collect();
        let conditions = if let Some(p) = &gateway_problem {
            vec![
                s.condition(types::ACCEPTED, false, PARENT_NOT_ACCEPTED, &p.message),
                s.condition(types::PROGRAMMED, false, PARENT_NOT_PROGRAMMED, &p.message),
            ]
        } else if invalid.len() == listeners.len() {
            both(
                reasons::LISTENERS_NOT_VALID,
                false,
                "no listener is valid".into(),
            )
        } else if invalid.is_empty() {
            vec![
                s.condition(
                    types::ACCEPTED,
                    true,
                    reasons::ACCEPTED,
                    "ListenerSet is accepted",
                ),
                s.condition(
                    types::PROGRAMMED,
                    true,
                    reasons::PROGRAMMED,
                    "ListenerSet is programmed",
                ),
            ]
        } else {
            let message = format!("listener(s) {} are not valid", invalid.join(", "));
            vec![
                s.condition(types::ACCEPTED, true, reasons::LISTENERS_NOT_VALID, message),
                s.condition(
                    types::PROGRAMMED,
                    true,
                    reasons::PROGRAMMED,
                    "the valid listeners are programmed",
                ),
            ]
        };
        let entries = listeners
            .iter()
            .map(|(l, count)| entry_status(l.status(s, *count, gateway_problem.as_ref())))
            .collect();
        ListenerSetStatus {
            conditions: Some(conditions),
            listeners: Some(entries),
        }
    }

    /// Whether the ListenerSet counts as attached to its Gateway.
    pub(crate) fn attached(&self, gateway: &GatewayPlan) -> bool {
        self.not_allowed.is_none()
            && gateway.not_programmed().is_none()
            && self.listeners.iter().any(|&i| {
                gateway
                    .listeners
                    .get(i)
                    .is_some_and(|l| l.not_programmed().is_none())
            })
    }
}

fn entry_status(
    l: gateway_api::experimental::gateways::GatewayStatusListeners,
) -> ListenerSetStatusListeners {
    ListenerSetStatusListeners {
        attached_routes: l.attached_routes,
        conditions: l.conditions,
        name: l.name,
        supported_kinds: l.supported_kinds.map(|kinds| {
            kinds
                .into_iter()
                .map(|k| ListenerSetStatusListenersSupportedKinds {
                    group: k.group,
                    kind: k.kind,
                })
                .collect()
        }),
    }
}

/// Whether the Gateway takes ListenerSets at all (then its status reports
/// how many are attached, zero included, as it does when one names it).
pub(crate) fn allows_any(gateway: &Gateway) -> bool {
    gateway
        .spec
        .allowed_listeners
        .as_ref()
        .and_then(|a| a.namespaces.as_ref())
        .and_then(|n| n.from.clone())
        .is_some_and(|f| f != ListenersFrom::None)
}
