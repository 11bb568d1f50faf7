//! One watch per kind: a kube-runtime `watcher` feeding a `reflector` store.
//!
//! Each kind runs in its own task. The reflector store serves the last
//! complete list while a relist is in progress (it swaps in the new list at
//! `InitDone`), so a dropped watch, an expired resourceVersion (`410 Gone`)
//! or a restarted API server never shows up as missing objects. The task
//! tells the provider when the kind's first list is complete
//! ([`Signal::Ready`]) and, afterwards, which objects changed in ways
//! `compile` can see ([`Signal::Changed`]).
//!
//! A kind the API server does not serve (a CRD that is not installed, such
//! as the experimental GRPCRoute) answers the list with 404. After a short
//! retry the kind counts as listed and empty, so it cannot hold back every
//! other kind; the watcher keeps retrying with backoff and the objects
//! appear once the CRD is installed.

use super::fingerprint::Fingerprints;
use super::share::{Shared, Shares};
use crate::metrics::Metrics;
use ::kube::runtime::reflector::{self, store::Writer};
use ::kube::runtime::watcher::{self, Event, watcher};
use ::kube::runtime::{WatchStreamExt, reflector::Lookup};
use ::kube::{Api, Resource};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use tokio::sync::mpsc::UnboundedSender;
use tracing::{debug, info, warn};

/// The kinds the provider watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Kind {
    GatewayClass,
    Gateway,
    ListenerSet,
    HttpRoute,
    GrpcRoute,
    TlsRoute,
    ReferenceGrant,
    BackendTlsPolicy,
    Namespace,
    Service,
    EndpointSlice,
    GatewayConfig,
    AuthPolicy,
    RateLimitPolicy,
    /// Secrets, metadata only.
    Secret,
    /// ConfigMaps, metadata only.
    ConfigMap,
}

impl Kind {
    /// The kind's name as Kubernetes spells it (a metric label).
    pub(super) fn label(self) -> &'static str {
        match self {
            Kind::GatewayClass => "GatewayClass",
            Kind::Gateway => "Gateway",
            Kind::ListenerSet => "ListenerSet",
            Kind::HttpRoute => "HTTPRoute",
            Kind::GrpcRoute => "GRPCRoute",
            Kind::TlsRoute => "TLSRoute",
            Kind::ReferenceGrant => "ReferenceGrant",
            Kind::BackendTlsPolicy => "BackendTLSPolicy",
            Kind::Namespace => "Namespace",
            Kind::Service => "Service",
            Kind::EndpointSlice => "EndpointSlice",
            Kind::GatewayConfig => "GatewayConfig",
            Kind::AuthPolicy => "AuthPolicy",
            Kind::RateLimitPolicy => "RateLimitPolicy",
            Kind::Secret => "Secret",
            Kind::ConfigMap => "ConfigMap",
        }
    }
}

/// One watch: a kind, and the namespace it is limited to (`None`: all).
pub(super) type WatchId = (Kind, Option<String>);

/// What a kind's task reports to the provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Signal {
    /// The watch's first list is complete (or the kind is not served).
    Ready(WatchId),
    /// These objects (`namespace/name` or `name`) changed after the kind was
    /// ready.
    Changed(Kind, Vec<String>),
}

/// How one kind is watched.
pub(super) struct WatchKind<K> {
    /// Which kind and namespace, for logs and signals.
    pub(super) id: WatchId,
    /// The API to list and watch.
    pub(super) api: Api<K>,
    /// Drops fields never read (managedFields, and more for metadata-only
    /// kinds) before an object is stored.
    pub(super) trim: fn(&mut K),
    /// What counts as a change of an object.
    pub(super) fingerprint: fn(&K) -> u64,
    /// Consecutive 404s on the list before the kind counts as empty.
    pub(super) missing_after: u32,
    /// Counts watch restarts.
    pub(super) metrics: Metrics,
}

impl<K> WatchKind<K>
where
    K: Resource<DynamicType = ()> + Lookup<DynamicType = ()> + Shares,
    K: Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    /// Watches until the provider stops listening, keeping `writer`'s store
    /// current. Errors are logged and retried with kube-runtime's default
    /// backoff; this never returns on its own while `signals` is open.
    pub(super) async fn run(self, writer: Writer<K>, signals: UnboundedSender<Signal>) {
        let (trim, print) = (self.trim, self.fingerprint);
        // Unchanged objects keep their shared copy (see `share.rs`).
        let mut shared = Shared::default();
        let events = watcher(self.api, watcher::Config::default())
            .default_backoff()
            .map(move |r| {
                r.map(|e| {
                    let mut e = e.modify(trim);
                    shared.on_event(&mut e, print);
                    e
                })
            });
        let mut events = std::pin::pin!(reflector::reflector(writer, events));
        let kind = self.id.0;
        let mut state = KindState::new(self.id, self.missing_after);
        while let Some(item) = events.next().await {
            let signal = match item {
                Ok(event) => state.on_event(&event, self.fingerprint),
                Err(e) => {
                    if !is_not_found(&e) {
                        self.metrics.watch_restarted(kind.label());
                    }
                    state.on_error(&e)
                }
            };
            if let Some(signal) = signal
                && signals.send(signal).is_err()
            {
                return;
            }
            if signals.is_closed() {
                return;
            }
        }
    }
}

/// What one kind's task knows: its fingerprints, whether its first list is
/// complete, and how many lists in a row found the kind missing.
#[derive(Debug)]
pub(super) struct KindState {
    id: WatchId,
    missing_after: u32,
    prints: Fingerprints,
    ready: bool,
    not_found: u32,
}

impl KindState {
    /// A kind nothing has been heard of yet.
    pub(super) fn new(id: WatchId, missing_after: u32) -> KindState {
        KindState {
            id,
            missing_after: missing_after.max(1),
            prints: Fingerprints::default(),
            ready: false,
            not_found: 0,
        }
    }

    /// The signal, if any, a watch event means.
    pub(super) fn on_event<K: Resource>(
        &mut self,
        event: &Event<K>,
        fingerprint: impl Fn(&K) -> u64,
    ) -> Option<Signal> {
        let (kind, namespace) = (self.id.0, self.id.1.as_deref());
        let changed = self.prints.apply(event, fingerprint);
        if matches!(event, Event::InitDone) {
            if self.not_found >= self.missing_after {
                info!(?kind, ?namespace, "the kind is served now; listed");
            }
            self.not_found = 0;
            if !self.ready {
                self.ready = true;
                debug!(
                    ?kind,
                    ?namespace,
                    objects = changed.len(),
                    "initial list complete"
                );
                return Some(Signal::Ready(self.id.clone()));
            }
        }
        (self.ready && !changed.is_empty()).then_some(Signal::Changed(kind, changed))
    }

    /// The signal, if any, a watch error means: a kind that keeps answering
    /// "not found" becomes ready (empty) after `missing_after` answers.
    pub(super) fn on_error(&mut self, e: &watcher::Error) -> Option<Signal> {
        let (kind, namespace) = (self.id.0, self.id.1.as_deref());
        if !is_not_found(e) {
            warn!(?kind, ?namespace, error = %e, "watch failed; retrying with backoff, serving the last complete list");
            return None;
        }
        self.not_found += 1;
        if self.not_found == self.missing_after {
            warn!(
                ?kind,
                "the API server does not serve this kind (CRD not installed?); treating it as empty and retrying in the background"
            );
        } else {
            debug!(?kind, ?namespace, "kind not found; retrying");
        }
        if self.ready || self.not_found < self.missing_after {
            return None;
        }
        self.ready = true;
        Some(Signal::Ready(self.id.clone()))
    }
}

/// Whether a watcher error means the API server does not know the kind.
fn is_not_found(e: &watcher::Error) -> bool {
    match e {
        watcher::Error::InitialListFailed(err)
        | watcher::Error::WatchStartFailed(err)
        | watcher::Error::WatchFailed(err) => {
            matches!(err, ::kube::Error::Api(status) if status.is_not_found())
        }
        watcher::Error::WatchError(status) => status.is_not_found(),
        watcher::Error::NoResourceVersion => false,
    }
}

/// Drops managedFields: never read, often the largest part of an object.
pub(super) fn trim_managed_fields<K: Resource>(obj: &mut K) {
    obj.meta_mut().managed_fields = None;
}

/// For metadata-only kinds, keeps name, namespace, labels and
/// resourceVersion: annotations can carry a copy of a Secret's data
/// (`kubectl.kubernetes.io/last-applied-configuration`).
pub(super) fn trim_to_identity<K: Resource>(obj: &mut K) {
    let meta = obj.meta_mut();
    meta.managed_fields = None;
    meta.annotations = None;
    meta.owner_references = None;
    meta.finalizers = None;
}

#[cfg(test)]
mod tests;
