//! What a new runtime takes over from the one serving, so that the cost of
//! a swap follows what the snapshot changed rather than its size.
//!
//! A built rule depends on its snapshot `Route`, the snapshot settings (its
//! retry budget and buffering limit) and the auth and rate-limit stages it
//! names; a backend reference by index is resolved against the new
//! runtime's backends at request time, so the backends' content does not
//! enter it. A built socket depends on its snapshot `Socket` and the
//! settings (the client-certificate header of its TLS). Both are reused
//! whole when those inputs are equal; the stages are reused when the auth
//! and rate-limit tables are equal and, for auth (whose calls carry their
//! backend's endpoints), the backends too. Reused parts keep their state:
//! a rule's balancer goes on where it was.

use super::{RouteRuntime, SocketRuntime};
use crate::stage::Stage;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;
use tollgate_snapshot::{Route, Snapshot, Socket};

/// The stages of one snapshot, shared by index by its rules.
#[derive(Debug, Default)]
pub(super) struct SharedStages {
    /// One per `Snapshot::auth` entry.
    pub(super) auth: Box<[Arc<dyn Stage>]>,
    /// One per `Snapshot::rate_limits` entry.
    pub(super) rate_limits: Box<[Arc<dyn Stage>]>,
}

/// The parts of the runtime serving now that a new snapshot may reuse.
pub(super) struct Reuse<'a> {
    previous: Option<Previous<'a>>,
}

struct Previous<'a> {
    snapshot: &'a Snapshot,
    routes: &'a [Arc<RouteRuntime>],
    stages: Option<&'a SharedStages>,
    /// The first position in `routes` of each rule name.
    by_name: HashMap<&'a str, usize>,
    /// The further positions of the few names that repeat (a rule served
    /// with different policies on different listeners): apart, so that
    /// 10k unique names cost no list each.
    repeated: HashMap<&'a str, Vec<usize>>,
    sockets: Vec<(&'a Socket, &'a Arc<SocketRuntime>)>,
}

impl<'a> Reuse<'a> {
    /// Nothing to reuse: the first build.
    pub(super) fn none() -> Reuse<'a> {
        Reuse { previous: None }
    }

    /// What `snapshot` may take over from the runtime built from
    /// `previous`, whose routes, stages and sockets are given.
    pub(super) fn from(
        previous: &'a Snapshot,
        routes: &'a [Arc<RouteRuntime>],
        stages: &'a SharedStages,
        sockets: Vec<(&'a Socket, &'a Arc<SocketRuntime>)>,
        snapshot: &Snapshot,
    ) -> Reuse<'a> {
        if previous.settings != snapshot.settings || previous.routes.len() != routes.len() {
            return Reuse::none();
        }
        let stages_same = previous.auth == snapshot.auth
            && previous.rate_limits == snapshot.rate_limits
            && (snapshot.auth.is_empty() || previous.backends == snapshot.backends);
        let mut by_name: HashMap<&str, usize> = HashMap::with_capacity(routes.len());
        let mut repeated: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, route) in previous.routes.iter().enumerate() {
            let name = route.name.as_str();
            match by_name.entry(name) {
                Entry::Vacant(first) => {
                    first.insert(i);
                }
                Entry::Occupied(_) => repeated.entry(name).or_default().push(i),
            }
        }
        Reuse {
            previous: Some(Previous {
                snapshot: previous,
                routes,
                stages: stages_same.then_some(stages),
                by_name,
                repeated,
                sockets,
            }),
        }
    }

    /// The previous stages, when the new snapshot's are the same.
    pub(super) fn stages(&self) -> Option<&'a SharedStages> {
        self.previous.as_ref()?.stages
    }

    /// The built rule of an equal previous `route`, when its stages are
    /// the same too.
    pub(super) fn route(&self, route: &Route) -> Option<Arc<RouteRuntime>> {
        let previous = self.previous.as_ref()?;
        let uses_stages = route.auth.is_some() || route.rate_limit.is_some();
        if uses_stages && previous.stages.is_none() {
            return None;
        }
        let name = route.name.as_str();
        let first = previous.by_name.get(name)?;
        let more = previous.repeated.get(name).map(Vec::as_slice);
        std::iter::once(first)
            .chain(more.unwrap_or_default())
            .find(|&&i| previous.snapshot.routes.get(i) == Some(route))
            .and_then(|&i| previous.routes.get(i))
            .cloned()
    }

    /// The built socket of an equal previous `socket`.
    pub(super) fn socket(&self, socket: &Socket) -> Option<Arc<SocketRuntime>> {
        let previous = self.previous.as_ref()?;
        previous
            .sockets
            .iter()
            .find(|(s, _)| *s == socket)
            .map(|(_, built)| Arc::clone(built))
    }
}
