//! What attached TLSRoutes add to a Gateway: the attached route count of
//! each TLS listener, and each TLS listener's SNI table in the snapshot.
//!
//! Kept apart from `tlsroute.rs` (attachment and status) because it works
//! on the built snapshot: `build_snapshot` lays out sockets and listeners
//! as for HTTP, and [`TlsAttachments::apply`] then fills in `tlsRoutes`,
//! interning backends into the snapshot's shared table.

use crate::gateway::GatewayPlan;
use crate::hostname::most_specific_first;
use std::collections::BTreeMap;
use tollgate_snapshot::{Backend, HostMatch, Snapshot, SniBackend, SniRoute, TlsRoutes};

/// TLSRoutes attached to Tollgate's Gateways, by Gateway key.
#[derive(Debug, Default)]
pub(crate) struct TlsAttachments {
    by_gateway: BTreeMap<String, Vec<Attached>>,
}

/// One route served on one listener, with the hostnames it won.
#[derive(Debug)]
pub(crate) struct Attached {
    /// Index of the listener in the Gateway.
    pub(crate) listener: usize,
    /// The route, `namespace/name`.
    pub(crate) route_key: String,
    /// The effective hostnames it serves there (conflicts settled).
    pub(crate) hostnames: Vec<HostMatch>,
    /// Weighted backends; `None` where the reference does not resolve.
    pub(crate) backends: Vec<(Option<Backend>, u32)>,
}

impl TlsAttachments {
    /// Records `attached` on Gateway `key`.
    pub(crate) fn push(&mut self, key: String, attached: Attached) {
        self.by_gateway.entry(key).or_default().push(attached);
    }

    /// Adds the TLSRoutes attached to each listener of Gateway `key` to
    /// `counts` (indexed like its listeners), each route once per listener.
    pub(crate) fn add_counts(&self, key: &str, counts: &mut [i32]) {
        let mut seen: Vec<(usize, &str)> = Vec::new();
        for a in self.by_gateway.get(key).into_iter().flatten() {
            if seen.contains(&(a.listener, a.route_key.as_str())) {
                continue;
            }
            seen.push((a.listener, a.route_key.as_str()));
            if let Some(c) = counts.get_mut(a.listener) {
                *c = c.saturating_add(1);
            }
        }
    }

    /// Gives every TLS listener of `plan` in `snapshot` its SNI table,
    /// adding the backends it needs to the snapshot's backend table.
    pub(crate) fn apply(&self, plan: &GatewayPlan, snapshot: &mut Snapshot) {
        let key = plan.key();
        let attached = self
            .by_gateway
            .get(&key)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for (li, l) in plan.listeners.iter().enumerate() {
            let Some(mode) = l.tls_mode else {
                continue;
            };
            let name = format!("gateway/{key}/listener/{}", l.name);
            let mut routes: Vec<SniRoute> = Vec::new();
            for a in attached.iter().filter(|a| a.listener == li) {
                let backends: Vec<SniBackend> = a
                    .backends
                    .iter()
                    .map(|(b, weight)| SniBackend {
                        backend: b.as_ref().map(|b| intern(&mut snapshot.backends, b)),
                        weight: *weight,
                    })
                    .collect();
                for h in &a.hostnames {
                    if routes.iter().all(|r| r.hostname != *h) {
                        routes.push(SniRoute {
                            name: format!("tlsroute/{}", a.route_key),
                            hostname: h.clone(),
                            backends: backends.clone(),
                        });
                    }
                }
            }
            routes.sort_by(|a, b| most_specific_first(&a.hostname, &b.hostname));
            let listeners = snapshot.sockets.iter_mut().flat_map(|s| &mut s.listeners);
            for listener in listeners.filter(|x| x.name == name) {
                listener.tls_routes = Some(TlsRoutes {
                    mode,
                    routes: routes.clone(),
                });
            }
        }
    }
}

/// The index of `b` in `backends`, by name, adding it when absent.
fn intern(backends: &mut Vec<Backend>, b: &Backend) -> usize {
    match backends.iter().position(|x| x.name == b.name) {
        Some(i) => i,
        None => {
            backends.push(b.clone());
            backends.len() - 1
        }
    }
}
