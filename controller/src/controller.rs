//! The compile loop: every new view of the objects is compiled, published
//! and reported.
//!
//! Compiling runs on a blocking thread so a large recompile never stalls the
//! snapshot streams. Views that arrive while a compile runs are coalesced:
//! only the newest is compiled next.

use crate::admin::Admin;
use crate::compile::{CompileOptions, compile};
use crate::provider::ResourcesRx;
use std::sync::atomic::Ordering;
use std::time::Instant;
use tracing::{info, warn};

/// Compiles every view `rx` announces until the provider goes away.
///
/// `options.now` is replaced by the wall-clock time of each compile.
pub async fn run(mut rx: ResourcesRx, options: CompileOptions, admin: Admin) {
    loop {
        if rx.changed().await.is_err() {
            return;
        }
        let Some(resources) = rx.borrow_and_update().clone() else {
            continue;
        };
        let mut options = options.clone();
        options.now = now_rfc3339();
        let started = Instant::now();
        let compiled =
            match tokio::task::spawn_blocking(move || compile(&resources, &options)).await {
                Ok(c) => c,
                Err(e) => {
                    warn!(error = %e, "compile task failed; keeping the previous snapshots");
                    continue;
                }
            };
        let published = admin.publisher.publish(&compiled.snapshots);
        let changed = admin.statuses.update(compiled.statuses);
        for s in &published {
            info!(gateway = %s.gateway, version = s.version, counts = ?s.counts(), "snapshot published");
        }
        info!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            gateways = compiled.snapshots.len(),
            published = published.len(),
            status_changes = changed.len(),
            "compiled"
        );
        admin.ready.store(true, Ordering::Release);
    }
}

/// The current time as Kubernetes writes it (RFC 3339, whole seconds, UTC).
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}
