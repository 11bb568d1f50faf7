//! The compile loop: every new view of the objects is compiled, published
//! and reported.
//!
//! Compiling runs on a blocking thread so a large recompile never stalls the
//! snapshot streams. Views that arrive while a compile runs are coalesced:
//! only the newest is compiled next. Statuses are recomputed also when a
//! data plane reports a snapshot applied, since that is what turns a
//! Gateway `Programmed`.

use crate::admin::Admin;
use crate::compile::{CompileOptions, ObjectStatus, compile};
use crate::provider::ResourcesRx;
use crate::reports::apply_programmed;
use std::sync::atomic::Ordering;
use std::time::Instant;
use tokio::sync::watch;
use tracing::{info, warn};

/// Compiles every view `rx` announces until the provider goes away.
///
/// `options.now` is replaced by the wall-clock time of each compile. Every
/// change of the statuses (after data-plane reports are taken into
/// account) is sent on `statuses`, for the Kubernetes status writer.
pub async fn run(
    mut rx: ResourcesRx,
    options: CompileOptions,
    admin: Admin,
    statuses: watch::Sender<Vec<ObjectStatus>>,
) {
    let mut reports = admin.reports.changed();
    let mut compiled_statuses: Option<Vec<ObjectStatus>> = None;
    loop {
        tokio::select! {
            changed = rx.changed() => {
                if changed.is_err() {
                    return;
                }
                let Some(resources) = rx.borrow_and_update().clone() else {
                    continue;
                };
                let mut options = options.clone();
                options.now = now_rfc3339();
                if let Some(s) = compile_and_publish(resources, options, &admin).await {
                    compiled_statuses = Some(s);
                }
            }
            changed = reports.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
        let Some(raw) = &compiled_statuses else {
            continue;
        };
        let mut current = raw.clone();
        apply_programmed(&mut current, &admin.publisher.published(), &admin.reports);
        let changed = admin.statuses.update(current);
        if !changed.is_empty() || !admin.ready.load(Ordering::Acquire) {
            statuses.send_replace(admin.statuses.all());
        }
        admin.ready.store(true, Ordering::Release);
    }
}

/// Compiles one view and publishes its snapshots; returns compile's
/// statuses, or `None` when the compile task failed.
async fn compile_and_publish(
    resources: std::sync::Arc<crate::resources::Resources>,
    options: CompileOptions,
    admin: &Admin,
) -> Option<Vec<ObjectStatus>> {
    let started = Instant::now();
    let compiled = match tokio::task::spawn_blocking(move || compile(&resources, &options)).await {
        Ok(c) => c,
        Err(e) => {
            warn!(error = %e, "compile task failed; keeping the previous snapshots");
            return None;
        }
    };
    let published = admin.publisher.publish(&compiled.snapshots);
    for s in &published {
        info!(gateway = %s.gateway, version = s.version, counts = ?s.counts(), "snapshot published");
    }
    info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        gateways = compiled.snapshots.len(),
        published = published.len(),
        "compiled"
    );
    Some(compiled.statuses)
}

/// The current time as Kubernetes writes it (RFC 3339, whole seconds, UTC).
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}
