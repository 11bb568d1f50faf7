//! The kinds whose status Tollgate writes, and how each is written.
//!
//! GatewayClass, Gateway and ListenerSet statuses belong to Tollgate alone
//! once the class (of the ListenerSet's parent Gateway) is Tollgate's, so
//! they are written whole with server-side apply. A route's `status.parents` (and a policy's `status.ancestors`) is one atomic
//! list shared by every controller whose Gateway the object names, so only
//! Tollgate's entries of it are replaced, by read-modify-write.

use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::{Api, Client};

/// The Gateway API group.
pub(crate) const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

/// How the status of one kind is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The whole status, server-side applied.
    Apply,
    /// Tollgate's entries of the shared list `status.<field>`, by
    /// read-modify-write with the resourceVersion as precondition.
    SharedList(&'static str),
}

/// One kind Tollgate writes status for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Kind {
    /// The kind, as `ObjectStatus::kind` names it.
    pub(crate) kind: &'static str,
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    namespaced: bool,
    /// How its status is written.
    pub(crate) mode: Mode,
}

const KINDS: &[Kind] = &[
    Kind {
        kind: "GatewayClass",
        group: GATEWAY_GROUP,
        version: "v1",
        plural: "gatewayclasses",
        namespaced: false,
        mode: Mode::Apply,
    },
    Kind {
        kind: "Gateway",
        group: GATEWAY_GROUP,
        version: "v1",
        plural: "gateways",
        namespaced: true,
        mode: Mode::Apply,
    },
    // A ListenerSet's status belongs to the controller of its one parent
    // Gateway; compile reports only those whose parent is Tollgate's.
    Kind {
        kind: "ListenerSet",
        group: GATEWAY_GROUP,
        version: "v1",
        plural: "listenersets",
        namespaced: true,
        mode: Mode::Apply,
    },
    Kind {
        kind: "HTTPRoute",
        group: GATEWAY_GROUP,
        version: "v1",
        plural: "httproutes",
        namespaced: true,
        mode: Mode::SharedList("parents"),
    },
    Kind {
        kind: "GRPCRoute",
        group: GATEWAY_GROUP,
        version: "v1",
        plural: "grpcroutes",
        namespaced: true,
        mode: Mode::SharedList("parents"),
    },
    Kind {
        kind: "TLSRoute",
        group: GATEWAY_GROUP,
        version: "v1",
        plural: "tlsroutes",
        namespaced: true,
        mode: Mode::SharedList("parents"),
    },
    Kind {
        kind: "BackendTLSPolicy",
        group: GATEWAY_GROUP,
        version: "v1",
        plural: "backendtlspolicies",
        namespaced: true,
        mode: Mode::SharedList("ancestors"),
    },
    // Tollgate's own policy; its `ancestors` list is still shared in
    // principle (another implementation may read AuthPolicies), so only
    // Tollgate's entries are replaced.
    Kind {
        kind: "AuthPolicy",
        group: tollgate_crds::GROUP,
        version: "v1alpha1",
        plural: "authpolicies",
        namespaced: true,
        mode: Mode::SharedList("ancestors"),
    },
    Kind {
        kind: "RateLimitPolicy",
        group: tollgate_crds::GROUP,
        version: "v1alpha1",
        plural: "ratelimitpolicies",
        namespaced: true,
        mode: Mode::SharedList("ancestors"),
    },
];

impl Kind {
    /// The kind named `kind`, if Tollgate writes its status.
    pub(crate) fn find(kind: &str) -> Option<Kind> {
        KINDS.iter().find(|k| k.kind == kind).copied()
    }

    /// Kinds whose status is a list shared with other controllers.
    pub(crate) fn shared() -> impl Iterator<Item = Kind> {
        KINDS
            .iter()
            .filter(|k| matches!(k.mode, Mode::SharedList(_)))
            .copied()
    }

    /// The API resource, for dynamic requests.
    pub(crate) fn resource(&self) -> ApiResource {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(self.group, self.version, self.kind),
            self.plural,
        )
    }

    /// The API for objects of this kind in `namespace` (ignored when
    /// cluster-scoped).
    pub(crate) fn api(&self, client: &Client, namespace: Option<&str>) -> Api<DynamicObject> {
        let resource = self.resource();
        match (self.namespaced, namespace) {
            (true, Some(ns)) => Api::namespaced_with(client.clone(), ns, &resource),
            _ => Api::all_with(client.clone(), &resource),
        }
    }

    /// The API across all namespaces, for lists.
    pub(crate) fn api_all(&self, client: &Client) -> Api<DynamicObject> {
        Api::all_with(client.clone(), &self.resource())
    }
}

/// Identifies one object: kind, namespace, name.
pub(crate) type Key = (String, Option<String>, String);

#[cfg(test)]
mod tests {
    use super::*;

    /// Whole statuses are applied only where Tollgate is the sole writer.
    #[test]
    fn only_class_gateway_and_listener_set_are_applied_whole() {
        let applied: Vec<&str> = KINDS
            .iter()
            .filter(|k| k.mode == Mode::Apply)
            .map(|k| k.kind)
            .collect();
        assert_eq!(applied, ["GatewayClass", "Gateway", "ListenerSet"]);
        assert_eq!(
            Kind::find("HTTPRoute").map(|k| k.mode),
            Some(Mode::SharedList("parents"))
        );
        assert_eq!(Kind::find("Service"), None);
        assert_eq!(
            Kind::find("Gateway").map(|k| k.resource().api_version),
            Some("gateway.networking.k8s.io/v1".into())
        );
    }
}
