//! Route attachments and statuses kept between compiles whose Gateway side
//! did not change, so adding one route to 10k does not attach the other
//! 10k again.
//!
//! What attachment decides for a route (which listeners of which Gateways
//! take it, with which hostnames, and its parent statuses, policy
//! conditions included) depends on the compiled route and on everything
//! but the routes: Gateways and their classes, ListenerSets, namespaces,
//! policies, the options. [`Compiler::recompile`] knows whether all of that
//! is the same objects as in the previous compile (`refill` decides
//! "same" as the route memos do, by pointer); when it is, a route whose
//! compiled form is the same `Arc` as then gets the same outcome, and its
//! status is the value the status memo would hand out again (equal apart
//! from times, so the previous one, times included).
//!
//! One thing crosses routes: the HTTPRoute/GRPCRoute conflict
//! (`kind_conflicts`). Entries are only used and kept while every route
//! is of one kind, when that rule cannot apply.
//!
//! [`Compiler::recompile`]: crate::Compiler::recompile

use crate::httproute::CompiledRoute;
use serde_json::Value;
use std::sync::Arc;
use tollgate_snapshot::HostMatch;

/// `(listener, effective hostnames)` for each listener of a Gateway a
/// route is served on.
pub(crate) type ListenerHosts = Vec<(usize, Vec<HostMatch>)>;

/// One route's attachment on each Gateway it reached, and its status.
#[derive(Clone, Debug)]
pub(crate) struct Attached {
    /// Per parentRef that reached a Gateway, in parentRef order: the
    /// Gateway's key and `(listener, effective hostnames)` per listener.
    pub(crate) parents: Vec<(String, ListenerHosts)>,
    /// The route's status as the status memo handed it out.
    pub(crate) status: Arc<Value>,
}

/// The last compile's [`Attached`] of each route, by the address of its
/// compiled form: an outcome is only valid for that very `Arc` anyway, and
/// looking up 10k addresses is cheaper than 10k keys. The entry holds the
/// `Arc`, so no other route can be compiled to the same address meanwhile.
#[derive(Debug, Default)]
pub(crate) struct AttachMemos {
    /// By address, hashed with foldhash: one lookup per route per compile.
    entries: foldhash::HashMap<usize, Entry>,
    /// Counts compiles (see [`AttachMemos::retain_used`]).
    epoch: u64,
}

#[derive(Debug)]
struct Entry {
    /// The compiled route the outcome is for.
    compiled: Arc<CompiledRoute>,
    attached: Attached,
    /// The `epoch` of the last compile that used or stored it.
    used: u64,
}

impl AttachMemos {
    /// Forgets everything: for a compile whose Gateway side changed.
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }

    /// The outcome kept for `route`, when it was stored for this very
    /// compiled route.
    pub(crate) fn get(&mut self, route: &Arc<CompiledRoute>) -> Option<&Attached> {
        let entry = self.entries.get_mut(&Arc::as_ptr(route).addr())?;
        if !Arc::ptr_eq(&entry.compiled, route) {
            return None;
        }
        entry.used = self.epoch;
        Some(&entry.attached)
    }

    /// Keeps `attached` as the outcome of `route`.
    pub(crate) fn insert(&mut self, route: &Arc<CompiledRoute>, attached: Attached) {
        let entry = Entry {
            compiled: Arc::clone(route),
            attached,
            used: self.epoch,
        };
        self.entries.insert(Arc::as_ptr(route).addr(), entry);
    }

    /// Ends a compile: forgets the routes it neither used nor stored.
    pub(crate) fn retain_used(&mut self) {
        let epoch = self.epoch;
        self.entries.retain(|_, e| e.used == epoch);
        self.epoch += 1;
    }
}
