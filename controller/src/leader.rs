//! Leader election on a `coordination.k8s.io/v1` Lease.
//!
//! Every controller replica compiles and serves snapshots (hot standby), but
//! only one may write status, finalizers and Events, or replicas would fight
//! over transition times and emit every Event twice. The replica whose
//! identity the Lease holds is the leader; it renews the Lease every
//! [`LeaderConfig::renew_every`], and the others take it over once
//! `renewTime + leaseDurationSeconds` has passed.
//!
//! Every write to the Lease carries the `resourceVersion` that was read, so
//! two replicas racing for it cannot both win: the API server refuses the
//! second with 409 Conflict. A leader that cannot renew steps down before
//! the Lease can expire for the others, so there is never a moment with two
//! leaders (given clocks that agree to well within the renewal period).

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use std::time::Duration;
use thiserror::Error;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{info, warn};

/// Where and how to hold the Lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderConfig {
    /// Namespace of the Lease (the controller's own).
    pub namespace: String,
    /// Name of the Lease, shared by all replicas.
    pub name: String,
    /// This replica's identity (its pod name); unique among replicas.
    pub identity: String,
    /// How long the Lease stays valid after a renewal (whole seconds are written).
    pub lease_duration: Duration,
    /// How often the leader renews and the others check.
    pub renew_every: Duration,
}

impl LeaderConfig {
    /// A config with the usual timing: 15 s lease, renewed every 5 s.
    pub fn new(namespace: &str, name: &str, identity: &str) -> LeaderConfig {
        LeaderConfig {
            namespace: namespace.to_string(),
            name: name.to_string(),
            identity: identity.to_string(),
            lease_duration: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
        }
    }

    /// The lease duration as the Lease stores it: whole seconds, at least 1.
    fn lease_seconds(&self) -> i32 {
        i32::try_from(self.lease_duration.as_secs_f64().ceil() as u64)
            .unwrap_or(i32::MAX)
            .max(1)
    }

    /// How long a leader keeps leading without a successful renewal: one
    /// renewal period short of the lease duration, so it steps down before
    /// anyone else may take over.
    fn renew_deadline(&self) -> Duration {
        self.lease_duration.saturating_sub(self.renew_every)
    }
}

/// Why one acquire-or-renew attempt failed.
#[derive(Debug, Error)]
enum LeaseError {
    #[error("Lease request failed: {0}")]
    Api(#[from] kube::Error),
    #[error("Lease request timed out")]
    Timeout,
}

/// Campaigns for the Lease until every receiver of `is_leader` is gone,
/// publishing `true` while this replica leads and `false` otherwise.
///
/// # Guarantees
///
/// - Acquires the Lease only when it has no holder or has expired
///   (`renewTime + leaseDurationSeconds < now`), with the read
///   `resourceVersion` as precondition.
/// - Steps down at once when another replica holds the Lease, and after
///   [`LeaderConfig::renew_every`] short of the lease duration without a
///   successful renewal.
/// - When the receivers are gone it releases the Lease (clears the holder)
///   so another replica takes over without waiting for expiry.
pub async fn run_leader_election(
    client: Client,
    config: LeaderConfig,
    is_leader: watch::Sender<bool>,
) {
    let api: Api<Lease> = Api::namespaced(client, &config.namespace);
    let mut renewed_at: Option<Instant> = None;
    loop {
        let started = Instant::now();
        let attempt = tokio::time::timeout(config.renew_every, campaign(&api, &config)).await;
        let wait = match attempt.unwrap_or(Err(LeaseError::Timeout)) {
            Ok(true) => {
                renewed_at = Some(started);
                config.renew_every
            }
            Ok(false) => {
                renewed_at = None;
                config.renew_every
            }
            Err(error) => {
                let expired = renewed_at.is_none_or(|t| t.elapsed() >= config.renew_deadline());
                if expired {
                    renewed_at = None;
                }
                warn!(lease = %config.name, %error, leading = renewed_at.is_some(), "Lease renewal failed");
                config.renew_every / 4
            }
        };
        set_leader(&is_leader, &config, renewed_at.is_some());
        tokio::select! {
            () = is_leader.closed() => break,
            () = tokio::time::sleep(wait) => {}
        }
    }
    if renewed_at.is_some()
        && let Err(error) = release(&api, &config).await
    {
        warn!(lease = %config.name, %error, "could not release the Lease");
    }
}

fn set_leader(is_leader: &watch::Sender<bool>, config: &LeaderConfig, leading: bool) {
    is_leader.send_if_modified(|current| {
        if *current == leading {
            return false;
        }
        *current = leading;
        info!(lease = %config.name, identity = %config.identity, leading, "leadership changed");
        true
    });
}

/// One round: renews a Lease this replica holds, takes over a free or
/// expired one, creates a missing one. Returns whether this replica leads.
async fn campaign(api: &Api<Lease>, config: &LeaderConfig) -> Result<bool, LeaseError> {
    let now = Timestamp::now();
    let Some(mut lease) = api.get_opt(&config.name).await? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(config.name.clone()),
                namespace: Some(config.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(held_spec(config, now, None)),
        };
        return accepted(api.create(&PostParams::default(), &lease).await);
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.as_deref().unwrap_or_default();
    let next = if holder == config.identity {
        LeaseSpec {
            renew_time: Some(MicroTime(now)),
            lease_duration_seconds: Some(config.lease_seconds()),
            ..spec
        }
    } else if holder.is_empty() || expired(&spec, now) {
        held_spec(config, now, Some(&spec))
    } else {
        return Ok(false);
    };
    lease.spec = Some(next);
    // `lease` still carries the resourceVersion just read: the precondition.
    accepted(
        api.replace(&config.name, &PostParams::default(), &lease)
            .await,
    )
}

/// A Lease spec naming this replica as a new holder.
fn held_spec(config: &LeaderConfig, now: Timestamp, previous: Option<&LeaseSpec>) -> LeaseSpec {
    let transitions = previous
        .and_then(|p| p.lease_transitions)
        .map_or(0, |t| t.saturating_add(1));
    LeaseSpec {
        holder_identity: Some(config.identity.clone()),
        lease_duration_seconds: Some(config.lease_seconds()),
        acquire_time: Some(MicroTime(now)),
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(transitions),
        ..LeaseSpec::default()
    }
}

/// Whether a Lease held by someone else may be taken over at `now`.
fn expired(spec: &LeaseSpec, now: Timestamp) -> bool {
    let Some(renewed) = spec.renew_time.as_ref().or(spec.acquire_time.as_ref()) else {
        return true;
    };
    let duration = SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(0)));
    renewed
        .0
        .checked_add(duration)
        .is_ok_and(|expiry| expiry < now)
}

/// Success leads; a conflict (someone else wrote first) or an existing Lease
/// on create means another replica won this round.
fn accepted(result: Result<Lease, kube::Error>) -> Result<bool, LeaseError> {
    match result {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Clears the holder of a Lease this replica holds.
async fn release(api: &Api<Lease>, config: &LeaderConfig) -> Result<(), kube::Error> {
    let Some(mut lease) = api.get_opt(&config.name).await? else {
        return Ok(());
    };
    let Some(spec) = lease.spec.as_mut() else {
        return Ok(());
    };
    if spec.holder_identity.as_deref() != Some(config.identity.as_str()) {
        return Ok(());
    }
    spec.holder_identity = None;
    api.replace(&config.name, &PostParams::default(), &lease)
        .await
        .map(|_| info!(lease = %config.name, "Lease released"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(renewed_secs_ago: i64, duration: i32) -> LeaseSpec {
        let now = Timestamp::from_second(1_000_000).unwrap();
        LeaseSpec {
            holder_identity: Some("other".into()),
            renew_time: Some(MicroTime(
                now.checked_sub(SignedDuration::from_secs(renewed_secs_ago))
                    .unwrap(),
            )),
            lease_duration_seconds: Some(duration),
            ..LeaseSpec::default()
        }
    }

    /// A Lease expires strictly after `renewTime + leaseDurationSeconds`; one
    /// without any time is free.
    #[test]
    fn expiry_follows_renew_time_plus_duration() {
        let now = Timestamp::from_second(1_000_000).unwrap();
        let cases = [
            ("renewed just now", spec(0, 15), false),
            ("inside the lease", spec(14, 15), false),
            ("exactly at expiry", spec(15, 15), false),
            ("past expiry", spec(16, 15), true),
            ("no times at all", LeaseSpec::default(), true),
        ];
        for (name, spec, want) in cases {
            assert_eq!(expired(&spec, now), want, "{name}");
        }
    }

    /// Whole seconds are written, rounded up, never zero; the leader's own
    /// deadline is one renewal period short of the lease.
    #[test]
    fn durations_round_up_and_the_deadline_comes_first() {
        let mut c = LeaderConfig::new("ns", "lease", "me");
        assert_eq!(
            (c.lease_seconds(), c.renew_deadline()),
            (15, Duration::from_secs(10))
        );
        c.lease_duration = Duration::from_millis(1500);
        c.renew_every = Duration::from_millis(250);
        assert_eq!(
            (c.lease_seconds(), c.renew_deadline()),
            (2, Duration::from_millis(1250))
        );
        c.lease_duration = Duration::ZERO;
        assert_eq!(c.lease_seconds(), 1);
    }
}
