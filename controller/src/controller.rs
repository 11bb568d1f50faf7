//! The compile loop: every new view of the objects is compiled, published
//! and reported.
//!
//! Compiling, publishing (which hashes every snapshot) and status
//! bookkeeping run on blocking threads at background priority: with
//! `--with-dataplane` the same runtime (and, pinned, the same core) serves
//! traffic, and with 10k routes each of these takes tens of milliseconds
//! that would otherwise stall every connection and delay the data plane
//! applying the snapshot just published. Views that arrive while
//! a compile runs are coalesced: only the newest is compiled next.
//! Statuses are recomputed also when a data plane reports a snapshot
//! applied, since that is what turns a Gateway `Programmed`; such a report
//! can only change Gateway statuses, so only those are recomputed; so is a
//! change of a provisioned data plane's Deployment or Service (see
//! `operator::infra`). A view that differs from the last compiled one only
//! in EndpointSlices is not compiled at all: the last snapshots get their
//! endpoints filled in again (`Compiler::recompile`), and since no status
//! reads endpoints, only the Gateways' (whose `Programmed` follows the
//! published snapshots) are brought up to date, as after a report.

use crate::admin::Admin;
use crate::operator::Infrastructure;
use crate::provider::ResourcesRx;
use crate::reports::apply_programmed;
use opentelemetry::KeyValue;
use opentelemetry::trace::SpanContext;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tollgate_compile::resources::Resources;
use tollgate_compile::{CompileOptions, Compiler, ObjectStatus, Recompiled};
use tollgate_dataplane::priority::in_background;
use tollgate_snapshot::Snapshot;
use tollgate_telemetry::WorkSpan;
use tracing::field::display;
use tracing::{debug, info, warn};

/// The kind whose status depends on data-plane reports.
const GATEWAY: &str = "Gateway";

/// What the status writer is sent: `None` until a complete compile exists
/// (and its Gateways had their chance to be reported), then every status.
/// A writer that saw `None` writes nothing: writing from an empty desired
/// state would strip Tollgate's entries off every route.
pub type Desired = Option<DesiredStatuses>;

/// Every object's status, and the compile they come from.
#[derive(Clone, Debug, Default)]
pub struct DesiredStatuses {
    /// Every status, data-plane reports applied.
    pub all: Vec<ObjectStatus>,
    /// The span of the last compile, when it was traced: the status
    /// writer's spans link to it, so a change's trace leads to the writes
    /// that report it.
    pub cause: Option<SpanContext>,
}

impl From<Vec<ObjectStatus>> for DesiredStatuses {
    fn from(all: Vec<ObjectStatus>) -> DesiredStatuses {
        DesiredStatuses { all, cause: None }
    }
}

/// How long after start-up the first statuses wait for data planes to
/// report the snapshots they serve. Data planes report after every apply
/// and every 10 s, so a restarted controller hears from running data
/// planes well within this; without the wait, every Gateway would be
/// written `Programmed: False/Pending` and back on each restart.
pub const REPORT_GRACE: Duration = Duration::from_secs(15);

/// What a compile gave the loop besides the snapshots it published.
enum Compile {
    /// Every status of a full compile.
    Statuses(Vec<ObjectStatus>),
    /// Only endpoints changed: every status is the last compile's.
    EndpointsOnly,
}

/// Statuses to bring into the store.
enum Update {
    /// Every status of a new compile.
    All(Vec<ObjectStatus>),
    /// Gateway statuses only, after a data-plane report.
    Gateways(Vec<ObjectStatus>),
    /// Nothing new: the report grace ran out.
    GraceOver,
}

/// Compiles every view `rx` announces until the provider goes away.
///
/// `options.now` is replaced by the wall-clock time of each compile. Every
/// change of the statuses (after data-plane reports are taken into
/// account) is sent on `statuses`, for the Kubernetes status writer.
///
/// # Guarantees
///
/// - `statuses` stays `None` until the first compile, and then until every
///   published Gateway was reported applied by a data plane or
///   `report_grace` passed since the start, whichever comes first.
/// - After that, every change is sent, removals included.
/// - With `infra` (provisioning on), Gateway statuses carry the provisioned
///   Service's addresses and wait for its Deployment, and the operator is
///   handed each view once its statuses are stored.
pub async fn run(
    mut rx: ResourcesRx,
    options: CompileOptions,
    admin: Admin,
    statuses: watch::Sender<Desired>,
    report_grace: Duration,
    infra: Option<Infrastructure>,
) {
    let mut reports = admin.reports.changed();
    let mut infra_changed = infra.as_ref().map(Infrastructure::changed);
    let mut compiled_view = None;
    // Gateway statuses as the last compile produced them, before reports.
    let mut compiled_gateways: Option<Vec<ObjectStatus>> = None;
    // Route results of the previous compile, reused for unchanged routes.
    let compiler = Arc::new(Mutex::new(Compiler::default()));
    let grace_over = tokio::time::Instant::now() + report_grace;
    let mut released = false;
    // The last compile's span, which the statuses sent next come from.
    let mut cause = None;
    loop {
        let waiting = !released && compiled_gateways.is_some();
        let update = tokio::select! {
            changed = rx.changed() => {
                if changed.is_err() {
                    return;
                }
                let Some(resources) = rx.borrow_and_update().clone() else {
                    continue;
                };
                admin.metrics.set_view(
                    resources.counts(),
                    resources.undecodable.values().map(|u| u.kind.as_str()),
                );
                let mut options = options.clone();
                options.now = now_rfc3339();
                let view = Arc::clone(&resources);
                let Some((compile, span)) = compile_and_publish(resources, options, &compiler, &admin).await else {
                    continue;
                };
                cause = span;
                compiled_view = Some(view);
                match compile {
                    Compile::Statuses(all) => {
                        compiled_gateways = Some(all.iter().filter(|s| s.kind == GATEWAY).cloned().collect());
                        Update::All(all)
                    }
                    // New snapshots were published: their Gateways are
                    // Programmed anew once reported, as after a report.
                    Compile::EndpointsOnly => match &compiled_gateways {
                        Some(gateways) => Update::Gateways(gateways.clone()),
                        None => continue,
                    },
                }
            }
            changed = reports.changed() => {
                if changed.is_err() {
                    return;
                }
                let Some(gateways) = &compiled_gateways else {
                    continue;
                };
                Update::Gateways(gateways.clone())
            }
            changed = infra_signal(&mut infra_changed) => {
                if changed.is_err() {
                    infra_changed = None;
                    continue;
                }
                let Some(gateways) = &compiled_gateways else {
                    continue;
                };
                Update::Gateways(gateways.clone())
            }
            () = tokio::time::sleep_until(grace_over), if waiting => Update::GraceOver,
        };
        // Whether the statuses about to be computed carry every data
        // plane's report: taken before computing them, so a report that
        // lands meanwhile cannot release statuses made without it (its
        // own wake-up computes and releases them again).
        let reported = every_gateway_reported(&admin);
        let store = admin.clone();
        let facts = infra.clone();
        // At background priority, like the data plane's runtime builds: on
        // a single core the in-process data plane applying the snapshot
        // just published must not wait behind the bookkeeping.
        let updated = in_background(move || update_statuses(&store, facts.as_ref(), update));
        let changed = match updated.await {
            Ok(changed) => changed,
            Err(e) => {
                warn!(error = %e, "status update failed");
                continue;
            }
        };
        admin.ready.store(true, Ordering::Release);
        if let (Some(infra), Some(view)) = (&infra, compiled_view.take()) {
            infra.compiled(view, cause.clone());
        }
        if statuses.is_closed() {
            continue;
        }
        let release = released || tokio::time::Instant::now() >= grace_over || reported;
        if release && (changed || !released) {
            if !released {
                info!("first statuses complete: the status writer may write");
            }
            released = true;
            let store = admin.clone();
            let all = in_background(move || store.statuses.all()).await;
            if let Ok(all) = all {
                let cause = cause.clone();
                let previous = statuses.send_replace(Some(DesiredStatuses { all, cause }));
                // Freeing 10k statuses is not free either.
                tokio::task::spawn_blocking(move || drop(previous));
            }
        }
    }
}

/// Brings `update` into the store, with data-plane reports applied.
/// Returns whether any status changed or left.
fn update_statuses(admin: &Admin, infra: Option<&Infrastructure>, update: Update) -> bool {
    let started = Instant::now();
    let published = admin.publisher.published();
    for (gateway, p) in &published {
        if admin.reports.applied(gateway, &p.hash)
            && let Some(took) = admin.publisher.first_applied(gateway, &p.hash)
        {
            admin.metrics.propagated(took);
        }
    }
    let changes = match update {
        Update::All(mut all) => {
            apply_programmed(&mut all, &published, &admin.reports);
            if let Some(infra) = infra {
                infra.apply(&mut all);
            }
            admin.statuses.update(all)
        }
        Update::Gateways(mut gateways) => {
            // Conditions that turn over now (Programmed, once a data plane
            // reported) turned over now, not when the compile ran.
            restamp(&mut gateways, &now_rfc3339());
            apply_programmed(&mut gateways, &published, &admin.reports);
            if let Some(infra) = infra {
                infra.apply(&mut gateways);
            }
            admin.statuses.update_kind(GATEWAY, gateways)
        }
        Update::GraceOver => return false,
    };
    debug!(
        elapsed_us = started.elapsed().as_micros() as u64,
        changed = changes.len(),
        "statuses updated"
    );
    !changes.is_empty()
}

/// The next change of the provisioned objects' facts; never without them.
async fn infra_signal(
    rx: &mut Option<watch::Receiver<u64>>,
) -> Result<(), watch::error::RecvError> {
    match rx {
        Some(rx) => rx.changed().await,
        None => std::future::pending().await,
    }
}

/// Whether some data plane reported applying the current snapshot of every
/// published Gateway.
fn every_gateway_reported(admin: &Admin) -> bool {
    admin
        .publisher
        .published()
        .iter()
        .all(|(gateway, p)| admin.reports.applied(gateway, &p.hash))
}

/// Sets every condition's `lastTransitionTime` in `statuses` to `now`; the
/// store keeps the stored time of every condition that did not change.
fn restamp(statuses: &mut [ObjectStatus], now: &str) {
    fn walk(value: &mut Value, now: &str) {
        match value {
            Value::Object(map) => {
                if let Some(time) = map.get_mut("lastTransitionTime") {
                    *time = Value::from(now);
                }
                map.values_mut().for_each(|v| walk(v, now));
            }
            Value::Array(items) => items.iter_mut().for_each(|v| walk(v, now)),
            _ => {}
        }
    }
    for status in statuses {
        walk(Arc::make_mut(&mut status.status), now);
    }
}

/// Compiles one view (or only refills its endpoints) and publishes its
/// snapshots; returns compile's statuses and its span's context (when
/// traced), or `None` when the compile task failed.
async fn compile_and_publish(
    resources: Arc<Resources>,
    options: CompileOptions,
    compiler: &Arc<Mutex<Compiler>>,
    admin: &Admin,
) -> Option<(Compile, Option<SpanContext>)> {
    let publisher = admin.publisher.clone();
    let metrics = admin.metrics.clone();
    let traces = admin.telemetry.traces.clone();
    let shared = Arc::clone(compiler);
    // Background priority: with --with-dataplane, requests come first.
    let task = in_background(move || {
        let started = Instant::now();
        let mut span = traces.root_span("compile");
        // Compiles run one at a time; a compile that panicked leaves
        // memos whose every entry is still a complete, valid result.
        let recompiled = shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .recompile(&resources, &options, |gateway| publisher.current(gateway));
        metrics.compiled(started.elapsed());
        let compiled_us = started.elapsed().as_micros() as u64;
        let (mut snapshots, compile) = match recompiled {
            Recompiled::Full(compiled) => {
                (compiled.snapshots, Compile::Statuses(compiled.statuses))
            }
            Recompiled::Endpoints(snapshots) => (snapshots, Compile::EndpointsOnly),
        };
        let endpoints_only = matches!(compile, Compile::EndpointsOnly);
        let gateways = snapshots.len();
        let mut publishing = trace_publication(span.as_ref(), &mut snapshots);
        let published = publisher.publish(snapshots);
        let trace_id = span.as_ref().map(|s| display(s.trace_id()));
        debug!(
            compile_us = compiled_us,
            endpoints_only,
            publish_us = started.elapsed().as_micros() as u64 - compiled_us,
            "compiled and published"
        );
        for s in &published {
            info!(gateway = %s.gateway, version = s.version, counts = ?s.counts(), trace_id, "snapshot published");
            if let Some(mut publish) = publishing.remove(&s.gateway) {
                publish.set(KeyValue::new("tollgate.gateway", s.gateway.clone()));
                publish.set(KeyValue::new("tollgate.snapshot.version", s.version as i64));
                publish.end(&traces);
            }
        }
        info!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            gateways,
            published = published.len(),
            endpoints_only,
            trace_id,
            "compiled"
        );
        let context = span.as_ref().map(|s| s.context().clone());
        if let Some(mut span) = span.take() {
            span.set(KeyValue::new(
                "tollgate.compile.endpoints_only",
                endpoints_only,
            ));
            span.set(KeyValue::new("tollgate.compile.gateways", gateways as i64));
            span.set(KeyValue::new(
                "tollgate.compile.published",
                published.len() as i64,
            ));
            span.end(&traces);
        }
        (compile, context)
    });
    match task.await {
        Ok(compiled) => Some(compiled),
        Err(e) => {
            warn!(error = %e, "compile task failed; keeping the previous snapshots");
            // Its output may not have been published, nor its statuses
            // kept: the next view must not be refilled from it.
            compiler
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .forget_view();
            None
        }
    }
}

/// Stamps each of `snapshots` with the `traceparent` of a `publish` span,
/// a child of the compile's `span`, so each data plane's apply joins the
/// trace under its Gateway's publication; returns those spans by Gateway,
/// for the ones really published to be ended. Without a span, any stamp
/// a refilled snapshot kept from an earlier compile is cleared.
fn trace_publication(
    span: Option<&WorkSpan>,
    snapshots: &mut BTreeMap<String, Snapshot>,
) -> BTreeMap<String, WorkSpan> {
    let mut publishing = BTreeMap::new();
    for (gateway, snapshot) in snapshots {
        let publish = span.map(|s| s.child("publish"));
        snapshot.traceparent = publish.as_ref().map(WorkSpan::traceparent);
        if let Some(publish) = publish {
            publishing.insert(gateway.clone(), publish);
        }
    }
    publishing
}

/// The current time as Kubernetes writes it (RFC 3339, whole seconds, UTC).
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn gateway(programmed: &str, time: &str) -> ObjectStatus {
        ObjectStatus {
            kind: GATEWAY.into(),
            namespace: Some("ns".into()),
            name: "gw".into(),
            status: json!({"conditions": [
                {"type": "Accepted", "status": "True", "lastTransitionTime": time},
                {"type": "Programmed", "status": programmed, "lastTransitionTime": time},
            ]})
            .into(),
        }
    }

    /// When a data plane's report turns a Gateway Programmed, the new
    /// condition takes the time of the report, not of the compile that
    /// produced the statuses; the unchanged condition keeps its time.
    #[test]
    fn programmed_takes_the_time_of_the_report() {
        let admin = Admin::default();
        admin
            .statuses
            .update(vec![gateway("False", "compile-time")]);
        let mut reported = vec![gateway("True", "compile-time")];
        restamp(&mut reported, "report-time");
        admin.statuses.update_kind(GATEWAY, reported);
        let stored = &admin.statuses.all()[0].status["conditions"];
        assert_eq!(stored[0]["lastTransitionTime"], "compile-time");
        assert_eq!(stored[1]["lastTransitionTime"], "report-time");
    }
}
