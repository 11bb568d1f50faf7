//! The status writer: brings Kubernetes in line with what `compile` decided.
//!
//! It runs in every replica but acts only while [leading](crate::leader):
//! statuses, the GatewayClass finalizer and Events are written by exactly
//! one replica. Each round takes the newest statuses, skips every object
//! whose desired status is the one already confirmed on the API server, and
//! for the rest reads the live object and writes only what differs
//! (module `compare`). Routes that held an entry of Tollgate and are no longer
//! among the statuses (they left Tollgate's Gateways) get that entry
//! removed. With nothing changing, a converged cluster sees no writes at all.
//!
//! A new leadership term starts from nothing: it lists the routes that
//! carry Tollgate's entries and re-reads every object once, so a new leader
//! repairs whatever the previous one left undone. Every
//! [`resync`](StatusWriter::with_resync) period the reads are repeated to
//! notice statuses someone else changed.

mod compare;
mod error;
mod events;
pub mod finalizer;
mod handle;
mod kinds;
mod round;
mod write;

pub use error::WriteError;
pub use handle::StatusWriter;
pub use write::FIELD_MANAGER;

use crate::controller::{Desired, DesiredStatuses};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::info;

/// First and longest delay before retrying failed writes.
const RETRY_MIN: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(30);

impl StatusWriter {
    /// Writes the newest `statuses` whenever they change, while
    /// `is_leader` says so; returns when either sender is gone.
    ///
    /// # Guarantees
    ///
    /// Nothing is written while `statuses` holds `None` (no complete
    /// compile yet): a leader that starts before its first compile waits.
    pub async fn run(
        self,
        mut statuses: watch::Receiver<Desired>,
        mut is_leader: watch::Receiver<bool>,
    ) {
        loop {
            while !*is_leader.borrow_and_update() {
                if is_leader.changed().await.is_err() {
                    return;
                }
            }
            info!("leading: writing status");
            self.metrics.set_leader(true);
            let ended = self.lead(&mut statuses, &mut is_leader).await;
            self.metrics.set_leader(false);
            if ended == Leadership::Closed {
                return;
            }
            info!("no longer leading: status writes stop");
        }
    }

    /// One leadership term; returns when it ends.
    async fn lead(
        &self,
        statuses: &mut watch::Receiver<Desired>,
        is_leader: &mut watch::Receiver<bool>,
    ) -> Leadership {
        let mut term = round::Term::default();
        let mut retry = RETRY_MIN;
        let mut resync_at = Instant::now() + self.resync;
        loop {
            let desired = statuses.borrow_and_update().clone();
            let done = tokio::select! {
                done = self.round_if_complete(&mut term, desired.as_ref()) => done,
                changed = is_leader.changed() => match leadership(changed, is_leader) {
                    Leadership::Leading => continue,
                    other => return other,
                },
            };
            let retry_at = (!done).then(|| Instant::now() + retry);
            retry = if done {
                RETRY_MIN
            } else {
                (retry * 2).min(RETRY_MAX)
            };
            tokio::select! {
                changed = statuses.changed() => if changed.is_err() {
                    return Leadership::Closed;
                },
                changed = is_leader.changed() => match leadership(changed, is_leader) {
                    Leadership::Leading => {}
                    other => return other,
                },
                () = sleep_until(retry_at) => {}
                () = tokio::time::sleep_until(resync_at) => {
                    term.forget_confirmed();
                    resync_at = Instant::now() + self.resync;
                }
            }
        }
    }
}

impl StatusWriter {
    /// A round over `desired`, or nothing (successfully) while no complete
    /// compile exists.
    async fn round_if_complete(
        &self,
        term: &mut round::Term,
        desired: Option<&DesiredStatuses>,
    ) -> bool {
        match desired {
            Some(desired) => self.round(term, &desired.all, desired.cause.as_ref()).await,
            None => true,
        }
    }
}

/// Where a leadership term stands.
#[derive(Debug, PartialEq, Eq)]
enum Leadership {
    Leading,
    Lost,
    Closed,
}

fn leadership(
    changed: Result<(), watch::error::RecvError>,
    is_leader: &mut watch::Receiver<bool>,
) -> Leadership {
    match changed {
        Err(_) => Leadership::Closed,
        Ok(()) if *is_leader.borrow_and_update() => Leadership::Leading,
        Ok(()) => Leadership::Lost,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;
