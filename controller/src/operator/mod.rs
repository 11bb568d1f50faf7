//! The operator: every accepted Gateway of Tollgate's classes gets its own
//! data plane (Deployment, Service, ServiceAccount, PodDisruptionBudget,
//! optionally a HorizontalPodAutoscaler), owned by the Gateway so that
//! deleting the Gateway deletes them.
//!
//! ```text
//!  compile loop ──(view after each compile)──► Operator (leader only) ──SSA──► API server
//!       ▲                                            ▲                             │
//!       └──── Infrastructure (available, addresses) ◄┴──── watches (managed-by) ◄──┘
//! ```
//!
//! Only the Lease holder writes, like the status writer. Every replica
//! watches the generated kinds, so whichever leads next knows them, and
//! every replica's statuses agree on availability and addresses. A change
//! to a generated object (an edit, a deletion, a status update) makes the
//! operator apply its Gateway's objects again: server-side apply with
//! force puts back exactly the fields Tollgate sets and is a no-op when
//! nothing drifted. Objects no longer desired (an autoscaler turned off, a
//! Gateway no longer accepted) are deleted; a deleted Gateway's objects go
//! by garbage collection. Failures are logged, counted, recorded as a
//! Warning Event on the Gateway and retried with exponential backoff.
//! Each Gateway's pass is a `provision` span when tracing is on
//! ([`Operator::with_traces`]).

mod apply;
mod args;
pub mod infra;
mod plan;
mod trace;
mod watch;

pub use apply::FIELD_MANAGER;
pub use args::{ProvisionArgs, otlp_files};
pub use infra::Infrastructure;

use crate::metrics::Metrics;
use crate::status::StatusStore;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ObjectReference, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use opentelemetry::trace::SpanContext;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch as channel};
use tokio::time::Instant;
use tollgate_provision::Env;
use tollgate_telemetry::{SamplerSpec, TracesPipeline};
use trace::Pass;
use tracing::{debug, info, warn};
use watch::{Fact, Observed};

/// Every object is applied again this often even without a change, in
/// case a watch event was missed.
const RESYNC: Duration = Duration::from_secs(300);
/// First retry delay after a failure; doubled up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Longest retry delay.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The operator's state and handles.
pub struct Operator {
    client: Client,
    env: Env,
    infra: Infrastructure,
    statuses: StatusStore,
    metrics: Metrics,
    recorder: Recorder,
    /// Generated objects seen, `(kind, namespace, name)` → (`ns/gateway`,
    /// content hash).
    live: BTreeMap<(&'static str, String, String), (String, u64)>,
    /// Gateways to reconcile next.
    dirty: BTreeSet<String>,
    /// Failed Gateways: attempts so far and when to retry.
    failed: BTreeMap<String, (u32, Instant)>,
    /// The last problem reported per Gateway, so an Event is not repeated.
    reported: BTreeMap<String, String>,
    /// Where each Gateway's pass is a `provision` span (off by default).
    traces: TracesPipeline,
}

impl Operator {
    /// An operator writing with `client`, reading views and facts from
    /// `infra` and acceptance from `statuses`.
    pub fn new(
        client: Client,
        env: Env,
        infra: Infrastructure,
        statuses: StatusStore,
        metrics: Metrics,
        controller_name: &str,
    ) -> Operator {
        let reporter = Reporter {
            controller: controller_name.to_string(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Operator {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            env,
            infra,
            statuses,
            metrics,
            live: BTreeMap::new(),
            dirty: BTreeSet::new(),
            failed: BTreeMap::new(),
            reported: BTreeMap::new(),
            traces: TracesPipeline::off(SamplerSpec::Ratio(0.0)),
        }
    }

    /// Writes each Gateway's pass (its objects applied, the stale ones
    /// deleted) as a `provision` span on `traces`.
    pub fn with_traces(mut self, traces: TracesPipeline) -> Operator {
        self.traces = traces;
        self
    }

    /// Runs until the compile loop goes away, writing only while
    /// `leader` is true.
    pub async fn run(mut self, mut leader: channel::Receiver<bool>) {
        let (tx, mut rx) = mpsc::channel(1024);
        let c = &self.client;
        let watches = [
            watch::spawn::<Deployment>(c.clone(), "Deployment", watch::deployment_fact, tx.clone()),
            watch::spawn::<Service>(c.clone(), "Service", watch::service_fact, tx.clone()),
            watch::spawn::<ServiceAccount>(c.clone(), "ServiceAccount", watch::no_fact, tx.clone()),
            watch::spawn::<PodDisruptionBudget>(
                c.clone(),
                "PodDisruptionBudget",
                watch::no_fact,
                tx.clone(),
            ),
            watch::spawn::<HorizontalPodAutoscaler>(
                c.clone(),
                "HorizontalPodAutoscaler",
                watch::no_fact,
                tx,
            ),
        ];
        let mut views = self.infra.views();
        let mut resync = tokio::time::interval(RESYNC);
        loop {
            let retry_at = self.failed.values().map(|(_, at)| *at).min();
            // The compile whose new view starts this round's passes.
            let mut cause = None;
            tokio::select! {
                changed = views.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    cause = views.borrow().as_ref().and_then(|v| v.cause.clone());
                    self.mark_all();
                }
                changed = leader.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    self.mark_all();
                }
                Some(observed) = rx.recv() => {
                    self.observe(observed);
                    while let Ok(more) = rx.try_recv() {
                        self.observe(more);
                    }
                }
                _ = resync.tick() => self.mark_all(),
                () = sleep_until(retry_at), if retry_at.is_some() => {
                    let now = Instant::now();
                    let due: Vec<String> = self
                        .failed
                        .iter()
                        .filter(|(_, (_, at))| *at <= now)
                        .map(|(k, _)| k.clone())
                        .collect();
                    self.dirty.extend(due);
                }
            }
            let leading = *leader.borrow();
            if leading {
                let view = views.borrow().as_ref().map(|v| Arc::clone(&v.resources));
                self.reconcile(&view, cause.as_ref()).await;
            } else {
                self.dirty.clear();
                self.failed.clear();
            }
        }
        for w in watches {
            w.abort();
        }
    }

    /// Every known Gateway (in the view or owning live objects) is dirty.
    fn mark_all(&mut self) {
        if let Some(view) = self.infra.views().borrow().as_ref() {
            self.dirty.extend(view.resources.gateways.keys().cloned());
        }
        self.dirty
            .extend(self.live.values().map(|(g, _)| g.clone()));
    }

    /// Records what a watch saw and marks its Gateway, unless only the
    /// object's status changed (nothing to repair then).
    fn observe(&mut self, o: Observed) {
        let key = (o.kind, o.namespace.clone(), o.name.clone());
        match &o.fact {
            Some(fact) => {
                let entry = (o.gateway.clone(), o.content);
                let unchanged = self.live.insert(key, entry.clone()) == Some(entry);
                match fact {
                    Fact::Available(a) => self.infra.set(&o.gateway, |f| f.available = *a),
                    Fact::Addresses(a) => self.infra.set(&o.gateway, |f| f.addresses = a.clone()),
                    Fact::Nothing => {}
                }
                if unchanged {
                    return;
                }
            }
            None => {
                self.live.remove(&key);
                match o.kind {
                    "Deployment" => self.infra.set(&o.gateway, |f| f.available = false),
                    "Service" => self.infra.set(&o.gateway, |f| f.addresses.clear()),
                    _ => {}
                }
            }
        }
        self.dirty.insert(o.gateway);
    }

    /// Brings every dirty Gateway's objects in line with `view`; the
    /// passes' spans link to the compile span `cause` when a new view
    /// started them.
    async fn reconcile(
        &mut self,
        view: &Option<Arc<tollgate_compile::resources::Resources>>,
        cause: Option<&SpanContext>,
    ) {
        let Some(view) = view else {
            return;
        };
        if self.dirty.is_empty() {
            return;
        }
        let accepted: BTreeMap<_, _> = plan::accepted_gateways(view, &self.statuses)
            .into_iter()
            .collect();
        for key in std::mem::take(&mut self.dirty) {
            let span = self.traces.root_span_linked("provision", cause);
            let pass = match accepted.get(&key) {
                Some(gateway) => match plan::objects(view, &self.statuses, gateway, &self.env) {
                    Ok(objects) => self.converge(&key, &objects).await,
                    Err(e) => Pass::refused(e.to_string()),
                },
                None => self.converge(&key, &[]).await,
            };
            let result = pass.end(span, &key, &self.traces);
            match result {
                Ok(()) => {
                    self.failed.remove(&key);
                    self.reported.remove(&key);
                }
                Err(message) => {
                    let gateway = accepted.get(&key).cloned();
                    self.fail(&key, gateway.as_deref(), message).await;
                }
            }
        }
    }

    /// Applies `objects` of Gateway `key` and deletes its other live ones.
    async fn converge(&self, key: &str, objects: &[tollgate_provision::Desired]) -> Pass {
        let mut pass = Pass::new(objects.len());
        let mut wanted = BTreeSet::new();
        for object in objects {
            let name = object_name(object);
            wanted.insert((object.kind(), name.clone()));
            let result = apply::apply(&self.client, object).await;
            let outcome = if result.is_ok() { "ok" } else { "error" };
            self.metrics
                .provision_written(object.kind(), "apply", outcome);
            match result {
                Ok(()) => pass.applied += 1,
                Err(e) => pass
                    .errors
                    .push(format!("applying {} {name}: {e}", object.kind())),
            }
        }
        let stale: Vec<_> = self
            .live
            .iter()
            .filter(|((kind, _, name), (gw, _))| {
                gw.as_str() == key && !wanted.contains(&(*kind, name.clone()))
            })
            .map(|(k, _)| k.clone())
            .collect();
        for (kind, namespace, name) in stale {
            let result = apply::delete(&self.client, kind, &namespace, &name).await;
            let outcome = if result.is_ok() { "ok" } else { "error" };
            self.metrics.provision_written(kind, "delete", outcome);
            match result {
                Ok(()) => {
                    pass.deleted += 1;
                    info!(kind, %namespace, %name, "deleted a data-plane object no longer desired")
                }
                Err(e) => pass.errors.push(format!("deleting {kind} {name}: {e}")),
            }
        }
        debug!(
            gateway = key,
            objects = objects.len(),
            "data plane reconciled"
        );
        pass
    }

    /// Schedules a retry with backoff and reports a new problem once.
    async fn fail(
        &mut self,
        key: &str,
        gateway: Option<&gateway_api::experimental::gateways::Gateway>,
        message: String,
    ) {
        let attempts = self.failed.get(key).map_or(0, |(n, _)| *n) + 1;
        let delay = FIRST_BACKOFF
            .saturating_mul(1 << attempts.min(8))
            .min(MAX_BACKOFF);
        self.failed
            .insert(key.to_string(), (attempts, Instant::now() + delay));
        warn!(gateway = key, attempts, retry_in_ms = delay.as_millis() as u64, error = %message, "provisioning the data plane failed");
        if self.reported.get(key) == Some(&message) {
            return;
        }
        self.reported.insert(key.to_string(), message.clone());
        let Some(gateway) = gateway else {
            return;
        };
        let reference = ObjectReference {
            api_version: Some("gateway.networking.k8s.io/v1".to_string()),
            kind: Some("Gateway".to_string()),
            name: gateway.metadata.name.clone(),
            namespace: gateway.metadata.namespace.clone(),
            uid: gateway.metadata.uid.clone(),
            ..ObjectReference::default()
        };
        let mut note = message;
        note.truncate(1000);
        let event = Event {
            type_: EventType::Warning,
            reason: "ProvisioningFailed".to_string(),
            note: Some(note),
            action: "Provision".to_string(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, &reference).await {
            warn!(gateway = key, %error, "could not publish an Event");
        }
    }
}

/// The generated object's name.
fn object_name(object: &tollgate_provision::Desired) -> String {
    use tollgate_provision::Desired as D;
    let meta = match object {
        D::Deployment(o) => &o.metadata,
        D::Service(o) => &o.metadata,
        D::ServiceAccount(o) => &o.metadata,
        D::PodDisruptionBudget(o) => &o.metadata,
        D::HorizontalPodAutoscaler(o) => &o.metadata,
    };
    meta.name.clone().unwrap_or_default()
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
