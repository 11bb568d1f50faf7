//! Endpoints: which addresses of a Service port receive new requests.
//!
//! Endpoints are filled into a snapshot's backend table when the snapshot
//! is assembled, not when a route is compiled: a route's compiled rules
//! name a backend (`service/<ns>/<name>/port/<port>`) and never read the
//! EndpointSlices, so an endpoint change reuses every memoized route and
//! costs one lookup per backend of the snapshot (see `memo`).
//!
//! An endpoint receives new requests when it is ready: `ready` (unknown
//! counts as ready), `serving` (unknown defers to `ready`) and not
//! `terminating` (unknown counts as not terminating), as the Kubernetes
//! `EndpointConditions` define them. When no endpoint of the Service port
//! is ready, the endpoints that are terminating but still serving take the
//! traffic instead (as kube-proxy, Envoy Gateway and Linkerd do), so a pod
//! that starts terminating before its replacement is ready does not turn a
//! rollout into 503s. An endpoint that is neither gets nothing.

use crate::resources::Resources;
use k8s_openapi::api::discovery::v1::{EndpointConditions, EndpointSlice};
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use tollgate_snapshot::{Endpoint, Snapshot};

/// The label that ties an EndpointSlice to its Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The EndpointSlices of one view by namespace and Service, in key order.
#[derive(Debug)]
pub(crate) struct EndpointIndex<'a> {
    resources: &'a Resources,
    slices: HashMap<(&'a str, &'a str), Vec<&'a Arc<EndpointSlice>>>,
}

impl<'a> EndpointIndex<'a> {
    /// Indexes the EndpointSlices of `resources`: one pass.
    pub(crate) fn new(resources: &'a Resources) -> Self {
        let mut slices: HashMap<(&str, &str), Vec<&Arc<EndpointSlice>>> = HashMap::new();
        for slice in resources.endpoint_slices.values() {
            let meta = &slice.metadata;
            let service = meta.labels.as_ref().and_then(|l| l.get(SERVICE_NAME_LABEL));
            if let (Some(ns), Some(service)) = (meta.namespace.as_deref(), service) {
                slices.entry((ns, service)).or_default().push(slice);
            }
        }
        EndpointIndex { resources, slices }
    }

    /// Gives every backend of `snapshot` the endpoints of its Service port.
    pub(crate) fn fill(&self, snapshot: &mut Snapshot) {
        for backend in &mut snapshot.backends {
            backend.endpoints = self.of_backend(&backend.name).unwrap_or_default();
        }
    }

    /// The endpoints of the backend named `name`
    /// (`service/<ns>/<name>/port/<port>`, as `backends` names them), or
    /// `None` for a name of another form or a Service port that is gone.
    pub(crate) fn of_backend(&self, name: &str) -> Option<Vec<Endpoint>> {
        let rest = name.strip_prefix("service/")?;
        let (service, port) = rest.rsplit_once("/port/")?;
        let (ns, service) = service.split_once('/')?;
        let port: i32 = port.parse().ok()?;
        let object = self.resources.services.get(&format!("{ns}/{service}"))?;
        let port_name = object
            .spec
            .iter()
            .flat_map(|s| s.ports.iter().flatten())
            .find(|p| p.port == port)
            .map(|p| p.name.as_deref().unwrap_or(""))?;
        Some(self.of_service_port(ns, service, port_name))
    }

    /// The endpoints of Service `ns/name`'s port named `port_name`.
    fn of_service_port(&self, ns: &str, name: &str, port_name: &str) -> Vec<Endpoint> {
        let slices = self.slices.get(&(ns, name)).map_or(&[][..], Vec::as_slice);
        select(slices.iter().map(|s| s.as_ref()), port_name)
    }
}

/// How an endpoint may be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Usable {
    /// Ready: receives new requests.
    Ready,
    /// Terminating but serving: receives new requests only when no
    /// endpoint of the Service port is ready.
    Draining,
    /// Neither.
    No,
}

/// What `conditions` allow, by the Kubernetes defaults for unknown values.
fn usable(conditions: Option<&EndpointConditions>) -> Usable {
    let ready = conditions.and_then(|c| c.ready).unwrap_or(true);
    let serving = conditions.and_then(|c| c.serving).unwrap_or(ready);
    let terminating = conditions.and_then(|c| c.terminating).unwrap_or(false);
    match (ready && serving, serving, terminating) {
        (true, _, false) => Usable::Ready,
        (_, true, true) => Usable::Draining,
        _ => Usable::No,
    }
}

/// The endpoints of `slices` (one Service's) for the port named
/// `port_name`, sorted: the ready ones, else the draining ones.
fn select<'s>(slices: impl Iterator<Item = &'s EndpointSlice>, port_name: &str) -> Vec<Endpoint> {
    let mut ready: BTreeSet<(IpAddr, u16)> = BTreeSet::new();
    let mut draining: BTreeSet<(IpAddr, u16)> = BTreeSet::new();
    for slice in slices {
        if !matches!(slice.address_type.as_str(), "IPv4" | "IPv6") {
            continue;
        }
        let slice_port = slice
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref().unwrap_or("") == port_name)
            .and_then(|p| p.port)
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p != 0);
        let Some(slice_port) = slice_port else {
            continue;
        };
        for ep in &slice.endpoints {
            let Some(address) = ep.addresses.first().and_then(|a| a.parse::<IpAddr>().ok()) else {
                continue;
            };
            match usable(ep.conditions.as_ref()) {
                Usable::Ready => ready.insert((address, slice_port)),
                Usable::Draining => draining.insert((address, slice_port)),
                Usable::No => false,
            };
        }
    }
    let chosen = if ready.is_empty() { draining } else { ready };
    chosen
        .into_iter()
        .map(|(address, port)| Endpoint {
            address: address.to_string(),
            port,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::discovery::v1::{Endpoint as SliceEndpoint, EndpointPort};

    fn conditions(
        ready: Option<bool>,
        serving: Option<bool>,
        terminating: Option<bool>,
    ) -> Option<EndpointConditions> {
        Some(EndpointConditions {
            ready,
            serving,
            terminating,
        })
    }

    /// Unknown conditions count as ready; `serving` defers to `ready`; a
    /// terminating endpoint is never ready, and drains only while serving.
    #[test]
    fn conditions_table() {
        let (t, f) = (Some(true), Some(false));
        let cases = [
            (None, Usable::Ready),
            (conditions(None, None, None), Usable::Ready),
            (conditions(t, None, None), Usable::Ready),
            (conditions(t, t, f), Usable::Ready),
            (conditions(f, None, None), Usable::No),
            (conditions(f, f, f), Usable::No),
            (conditions(t, f, None), Usable::No),
            (conditions(f, t, t), Usable::Draining),
            (conditions(f, f, t), Usable::No),
            (conditions(t, t, t), Usable::Draining),
            (conditions(None, None, t), Usable::Draining),
            (conditions(f, None, t), Usable::No),
        ];
        for (c, want) in cases {
            assert_eq!(usable(c.as_ref()), want, "{c:?}");
        }
    }

    fn slice(endpoints: &[(&str, Option<EndpointConditions>)]) -> EndpointSlice {
        EndpointSlice {
            address_type: "IPv4".into(),
            ports: Some(vec![EndpointPort {
                name: Some("http".into()),
                port: Some(8080),
                ..EndpointPort::default()
            }]),
            endpoints: endpoints
                .iter()
                .map(|(a, c)| SliceEndpoint {
                    addresses: vec![a.to_string()],
                    conditions: c.clone(),
                    ..SliceEndpoint::default()
                })
                .collect(),
            ..EndpointSlice::default()
        }
    }

    fn addresses(slices: &[EndpointSlice]) -> Vec<String> {
        select(slices.iter(), "http")
            .into_iter()
            .map(|e| e.address)
            .collect()
    }

    /// Terminating endpoints take traffic only while no endpoint of the
    /// Service port (across its slices) is ready; not-serving ones never.
    #[test]
    fn draining_endpoints_are_a_fallback() {
        let (t, f) = (Some(true), Some(false));
        let old = ("10.0.0.1", conditions(f, t, t));
        let dead = ("10.0.0.2", conditions(f, f, t));
        let new = ("10.0.0.3", conditions(t, t, f));
        let starting = ("10.0.0.4", conditions(f, f, f));
        assert_eq!(
            addresses(&[slice(&[old.clone(), dead.clone()])]),
            ["10.0.0.1"]
        );
        assert_eq!(
            addresses(&[slice(&[old.clone(), starting.clone()]), slice(&[new])]),
            ["10.0.0.3"]
        );
        assert!(addresses(&[slice(&[dead, starting])]).is_empty());
    }
}
