//! The Kubernetes provider: the cluster as the source of truth.
//!
//! One kube-runtime watcher and reflector store per kind (see `watch`)
//! keeps a complete copy of the objects `compile` reads. Secrets and
//! ConfigMaps are watched by metadata only and fetched in full only when a
//! Gateway references them ([`referenced`], `fetch`), so the controller's
//! memory does not grow with the cluster's unrelated Secrets.
//!
//! The provider sends its first [`Resources`] only after every kind's first
//! list is complete, so no data plane ever gets a half-listed view. After
//! that, changes are coalesced for a short debounce and each burst produces
//! one new `Resources`. Changes `compile` cannot see (status writes,
//! resourceVersion and managedFields churn, unreferenced Secrets) produce
//! nothing, which keeps status writes from causing recompiles.
//!
//! ```text
//!  watch task per kind ──Signal──► KubeProvider::run ──debounce──► assemble
//!  (reflector store)                                  (stores + referenced
//!                                                      Secrets/ConfigMaps) ──► ResourcesTx
//! ```

mod fetch;
mod fingerprint;
mod lenient;
pub mod proxy;
pub mod referenced;
mod share;
mod stores;
mod watch;

use super::ResourcesTx;
use crate::metrics::Metrics;
use fetch::FullObjects;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use referenced::{
    NamespacedName, referenced_config_maps, referenced_secrets, selected_secrets, selects_secrets,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use stores::Stores;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};
use tollgate_compile::resources::Resources;
use tracing::{debug, info, warn};
use watch::{Kind, Signal, WatchId};

/// How the Kubernetes provider batches and retries.
#[derive(Clone, Debug)]
pub struct KubeProviderConfig {
    /// A burst of changes is sent as one `Resources` once no change has
    /// arrived for this long. Default 5 ms: watch events of one burst
    /// (an `kubectl apply` of many objects) arrive within a millisecond or
    /// two of each other, and every millisecond waited here is a
    /// millisecond before an EndpointSlice change reaches traffic (20 ms
    /// was half of an endpoint change's 40 ms at 10k routes). A burst
    /// spread wider costs one more compile, never a lost change.
    pub debounce: Duration,
    /// A continuous stream of changes still sends at least this often.
    /// Default 1 s.
    pub max_delay: Duration,
    /// Consecutive "not found" answers to a kind's list after which the kind
    /// (a CRD that is not installed) counts as empty. Default 2: one retry.
    pub missing_kind_after: u32,
    /// First wait before retrying a failed fetch of a referenced Secret or
    /// ConfigMap; doubles up to 30 s. Default 1 s.
    pub fetch_retry: Duration,
    /// Watch namespaced objects only in these namespaces (one watch per
    /// namespace and kind). Default `None`: every namespace, one watch per
    /// kind. GatewayClasses and Namespaces are always watched cluster-wide.
    pub namespaces: Option<BTreeSet<String>>,
}

impl Default for KubeProviderConfig {
    fn default() -> Self {
        KubeProviderConfig {
            debounce: Duration::from_millis(5),
            max_delay: Duration::from_secs(1),
            missing_kind_after: 2,
            fetch_retry: Duration::from_secs(1),
            namespaces: None,
        }
    }
}

/// Longest wait between retries of failed fetches.
const MAX_FETCH_RETRY: Duration = Duration::from_secs(30);

/// Reads Tollgate's objects from a Kubernetes API server.
pub struct KubeProvider {
    client: ::kube::Client,
    config: KubeProviderConfig,
    metrics: Metrics,
}

impl KubeProvider {
    /// A provider reading through `client` (in-cluster config or kubeconfig,
    /// as `kube::Client::try_default()` finds them). Nothing is requested
    /// until [`KubeProvider::run`].
    pub fn new(client: ::kube::Client, config: KubeProviderConfig) -> KubeProvider {
        KubeProvider {
            client,
            config,
            metrics: Metrics::default(),
        }
    }

    /// Counts watch restarts in `metrics`.
    pub fn with_metrics(mut self, metrics: Metrics) -> KubeProvider {
        self.metrics = metrics;
        self
    }

    /// Watches the cluster and sends a new [`Resources`] on `tx` after every
    /// change `compile` can see.
    ///
    /// # Guarantees
    ///
    /// - The first value is sent once every kind's first list is complete
    ///   (a kind the API server does not serve counts as empty after a
    ///   retry).
    /// - A relist (dropped watch, `410 Gone`, restarted API server) keeps
    ///   the previous objects in every view until the new list is complete.
    /// - Runs until `tx` has no receivers; errors are logged and retried,
    ///   never returned.
    pub async fn run(self, tx: ResourcesTx) {
        let (signals, mut rx) = unbounded_channel();
        let mut tasks = JoinSet::new();
        let stores = Stores::spawn(
            &self.client,
            &signals,
            &mut tasks,
            self.config.missing_kind_after,
            self.config.namespaces.as_ref(),
            &self.metrics,
        );
        drop(signals);
        let mut state = State::new(self.client, self.config, &stores.watches);
        tokio::select! {
            _ = tx.closed() => {}
            _ = state.serve(&stores, &mut rx, &tx) => {}
        }
        tasks.shutdown().await;
        debug!("kubernetes provider stopped");
    }
}

/// The provider's loop state.
struct State {
    client: ::kube::Client,
    config: KubeProviderConfig,
    /// Watches whose first list is not complete yet.
    unlisted: BTreeSet<WatchId>,
    /// A change `compile` can see has not been sent yet.
    dirty: bool,
    /// Referenced objects as of the last view sent.
    secret_refs: BTreeSet<NamespacedName>,
    /// Whether an AuthPolicy picks Secrets by label.
    secrets_by_label: bool,
    config_map_refs: BTreeSet<NamespacedName>,
    secrets: FullObjects<Secret>,
    config_maps: FullObjects<ConfigMap>,
    /// When to retry failed fetches, and the wait after that.
    retry: Option<(Instant, Duration)>,
    /// The error of every undecodable object already logged.
    logged_failures: BTreeMap<(String, String), String>,
}

impl State {
    fn new(client: ::kube::Client, config: KubeProviderConfig, watches: &[WatchId]) -> State {
        State {
            client,
            config,
            unlisted: watches.iter().cloned().collect(),
            dirty: true,
            secret_refs: BTreeSet::new(),
            secrets_by_label: false,
            config_map_refs: BTreeSet::new(),
            secrets: FullObjects::default(),
            config_maps: FullObjects::default(),
            retry: None,
            logged_failures: BTreeMap::new(),
        }
    }

    /// Sends views until the watch tasks end (they end only when the
    /// receivers are gone).
    async fn serve(
        &mut self,
        stores: &Stores,
        rx: &mut UnboundedReceiver<Signal>,
        tx: &ResourcesTx,
    ) {
        loop {
            let retry_at = self.retry.map(|(at, _)| at);
            tokio::select! {
                signal = rx.recv() => match signal {
                    Some(signal) => self.note(signal),
                    None => return,
                },
                _ = sleep_until(retry_at.unwrap_or_else(Instant::now)), if retry_at.is_some() => {
                    self.dirty = true;
                }
            }
            if !self.unlisted.is_empty() || !self.dirty {
                continue;
            }
            if !self.settle(rx).await {
                return;
            }
            let resources = self.assemble(stores).await;
            self.dirty = false;
            if tx.send(Some(Arc::new(resources))).is_err() {
                return;
            }
        }
    }

    /// Records what a signal means for the next view.
    fn note(&mut self, signal: Signal) {
        match signal {
            Signal::Ready(id) => {
                self.unlisted.remove(&id);
                if self.unlisted.is_empty() {
                    info!("every kind listed");
                }
            }
            Signal::Changed(Kind::Secret, keys) => {
                // A Secret an AuthPolicy selector may pick is no name we
                // know in advance: then any Secret change counts.
                self.dirty |= self.secrets_by_label || touches(&self.secret_refs, &keys);
            }
            Signal::Changed(Kind::ConfigMap, keys) => {
                self.dirty |= touches(&self.config_map_refs, &keys);
            }
            Signal::Changed(_, _) => self.dirty = true,
        }
    }

    /// Waits until no signal arrives for the debounce (or the maximum delay
    /// passes), taking in the signals that do. False when the tasks ended.
    async fn settle(&mut self, rx: &mut UnboundedReceiver<Signal>) -> bool {
        let deadline = Instant::now() + self.config.max_delay;
        loop {
            let quiet = (Instant::now() + self.config.debounce).min(deadline);
            tokio::select! {
                signal = rx.recv() => match signal {
                    Some(signal) => self.note(signal),
                    None => return false,
                },
                _ = sleep_until(quiet) => return true,
            }
        }
    }

    /// The current view: every store, plus the referenced Secrets and
    /// ConfigMaps fetched as needed.
    async fn assemble(&mut self, stores: &Stores) -> Resources {
        let mut resources = stores.resources();
        self.log_failures(&resources);
        self.secret_refs = referenced_secrets(&resources);
        self.secrets_by_label = selects_secrets(&resources);
        if self.secrets_by_label {
            let metas: Vec<_> = stores.secrets.iter().flat_map(|s| s.state()).collect();
            let empty = BTreeMap::new();
            let candidates = metas.iter().filter_map(|m| {
                let meta = &m.metadata;
                let labels = meta.labels.as_ref().unwrap_or(&empty);
                Some((meta.namespace.as_deref()?, meta.name.as_deref()?, labels))
            });
            self.secret_refs
                .extend(selected_secrets(&resources, candidates));
        }
        self.config_map_refs = referenced_config_maps(&resources);
        let failed = self
            .secrets
            .sync(&self.client, &self.secret_refs, &stores.secrets)
            .await
            + self
                .config_maps
                .sync(&self.client, &self.config_map_refs, &stores.config_maps)
                .await;
        self.retry = (failed > 0).then(|| {
            let wait = self.retry.map_or(self.config.fetch_retry, |(_, w)| {
                (w * 2).min(MAX_FETCH_RETRY)
            });
            (Instant::now() + wait, wait)
        });
        resources.secrets = self.secrets.objects();
        resources.config_maps = self.config_maps.objects();
        debug!(
            gateways = resources.gateways.len(),
            http_routes = resources.http_routes.len(),
            secrets = resources.secrets.len(),
            "view assembled"
        );
        resources
    }
}

impl State {
    /// Logs each undecodable object once per distinct error.
    fn log_failures(&mut self, resources: &Resources) {
        let mut logged = BTreeMap::new();
        for (key, failure) in &resources.undecodable {
            if self.logged_failures.get(key) != Some(&failure.error) {
                warn!(
                    kind = %failure.kind,
                    namespace = failure.namespace.as_deref().unwrap_or(""),
                    name = %failure.name,
                    error = %failure.error,
                    "cannot decode this object; it is left out until it changes (its status says why)"
                );
            }
            logged.insert(key.clone(), failure.error.clone());
        }
        self.logged_failures = logged;
    }
}

/// Whether any changed key is referenced.
fn touches(referenced: &BTreeSet<NamespacedName>, keys: &[String]) -> bool {
    keys.iter().any(|k| {
        k.split_once('/')
            .is_some_and(|(ns, name)| referenced.contains(&(ns.to_string(), name.to_string())))
    })
}
