//! Retries: a rule's `retry` policy applied to its upstream attempts.
//!
//! The pipeline hands [`send`] the request's first endpoint and a way to
//! make one attempt; `send` makes it, and after each failure decides, in
//! this order, whether to try again:
//!
//! ```text
//!   reason     a status in the rule's codes, or a failure before any
//!              response (connect refused/reset, pool error: `connect`;
//!              the per-attempt `backendRequest` timeout: `timeout`)
//!   body       the request body is kept: none, or a known length within
//!              `max_buffered_body_bytes`; a larger or chunked body
//!              streamed upstream once and cannot be sent again
//!   attempts   retries made < the rule's `attempts`
//!   deadline   the backoff ends before `timeouts.request`, which covers
//!              every attempt and every wait
//!   budget     the rule's retry budget has a retry left (upstream/budget.rs)
//! ```
//!
//! A retry goes to another endpoint of the same backend reference when
//! there is one (a refused connection usually means that pod is going
//! away); the backend reference and its filters stay as chosen, so filters
//! are applied once. A retry that is not made returns the last attempt's
//! response or error unchanged. Every decision is counted
//! (`tollgate.upstream.retries{reason, outcome}`) and every attempt is its
//! own client span, with `http.request.resend_count` from the first retry.
//!
//! The decisions are pure functions ([`reason`], [`plan`], [`backoff`]) so
//! their tables are tested without sockets or clocks.

use super::body::client_fault;
use crate::body::{ProxyBody, empty, full};
use crate::error::{ErrorKind, ProxyError};
use crate::runtime::RouteRetry;
use crate::telemetry::Exchange;
use crate::upstream::{BuiltBackend, Endpoint};
use bytes::Bytes;
use http::Response;
use http_body::Body as _;
use http_body_util::BodyExt;
use std::time::{Duration, Instant};
use tollgate_snapshot::Retry;

/// The longest backoff, as a multiple of the rule's: exponential growth
/// stops there (Envoy's default cap too).
const MAX_BACKOFF_FACTOR: u64 = 10;

/// The result of one upstream attempt.
pub(crate) type Sent = Result<Response<ProxyBody>, ProxyError>;

/// Why a failed attempt is worth another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reason {
    /// The response status is one of the rule's codes.
    Status,
    /// The connection failed before any response.
    Connect,
    /// The attempt's `backendRequest` timeout passed without a response.
    Timeout,
}

impl Reason {
    fn label(self) -> &'static str {
        match self {
            Reason::Status => "status",
            Reason::Connect => "connect",
            Reason::Timeout => "timeout",
        }
    }
}

/// Why a retry the policy asked for was not made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The request body was streamed and is gone.
    BodyNotReplayable,
    /// The rule's `attempts` are used up.
    AttemptsExhausted,
    /// The request timeout would pass before the backoff ends.
    Deadline,
    /// The rule's retry budget is spent.
    BudgetExhausted,
}

impl Refused {
    fn label(self) -> &'static str {
        match self {
            Refused::BodyNotReplayable => "body_not_replayable",
            Refused::AttemptsExhausted => "attempts_exhausted",
            Refused::Deadline => "deadline",
            Refused::BudgetExhausted => "budget_exhausted",
        }
    }
}

/// Why `sent` is worth retrying under `policy`; `None` when it is an
/// answer to pass on (a success, a status not listed, the client's fault).
pub(crate) fn reason(policy: &Retry, sent: &Sent) -> Option<Reason> {
    match sent {
        Ok(response) => policy
            .retries_status(response.status().as_u16())
            .then_some(Reason::Status),
        Err(error) => match error.kind() {
            ErrorKind::UpstreamConnect | ErrorKind::UpstreamProtocol => Some(Reason::Connect),
            ErrorKind::UpstreamTimeout => Some(Reason::Timeout),
            _ => None,
        },
    }
}

/// Whether a retry may follow `retries_done` retries, after `delay`, with
/// `remaining` of the request timeout left; the budget is asked last, by
/// the caller, so a refused retry never spends it.
///
/// # Errors
///
/// The first rule of the module docs' table that refuses it.
pub(crate) fn plan(
    policy: &Retry,
    retries_done: u32,
    replayable: bool,
    delay: Duration,
    remaining: Option<Duration>,
) -> Result<(), Refused> {
    if !replayable {
        return Err(Refused::BodyNotReplayable);
    }
    if retries_done >= policy.attempts {
        return Err(Refused::AttemptsExhausted);
    }
    if remaining.is_some_and(|left| left <= delay) {
        return Err(Refused::Deadline);
    }
    Ok(())
}

/// The wait before retry number `n` (1 for the first): the rule's backoff
/// doubled per retry up to [`MAX_BACKOFF_FACTOR`] times it, plus up to half
/// again of random `jitter` (0..1) so that clients failed together do not
/// retry together. Never less than the rule's backoff, as the spec asks.
pub(crate) fn backoff(base_ms: u64, n: u32, jitter: f64) -> Duration {
    let doublings = n.saturating_sub(1).min(16);
    let cap = base_ms.saturating_mul(MAX_BACKOFF_FACTOR);
    let grown = base_ms.saturating_mul(1 << doublings).min(cap);
    let extra = (grown as f64 * jitter.clamp(0.0, 1.0) / 2.0) as u64;
    Duration::from_millis(grown.saturating_add(extra))
}

/// The request body, kept whole so it can be sent again, or not.
enum Replay {
    Kept(Bytes),
    Once(Option<ProxyBody>),
}

impl Replay {
    /// Reads `body` into memory when it is empty or its length is known
    /// and at most `limit`; otherwise leaves it to stream once.
    async fn read(body: ProxyBody, limit: usize) -> Result<Replay, ProxyError> {
        if body.is_end_stream() {
            return Ok(Replay::Kept(Bytes::new()));
        }
        match body.size_hint().exact() {
            Some(len) if len <= limit as u64 => {
                match body.collect().await {
                    Ok(collected) => Ok(Replay::Kept(collected.to_bytes())),
                    Err(error) => Err(client_fault(error)
                        .unwrap_or_else(|source| ProxyError::RequestBody { source })),
                }
            }
            _ => Ok(Replay::Once(Some(body))),
        }
    }

    fn replayable(&self) -> bool {
        matches!(self, Replay::Kept(_))
    }

    /// The body for the next attempt. A streamed body is taken once;
    /// [`plan`] refuses a second attempt before it would be asked again.
    fn take(&mut self) -> ProxyBody {
        match self {
            Replay::Kept(bytes) if bytes.is_empty() => empty(),
            Replay::Kept(bytes) => full(bytes.clone()),
            Replay::Once(body) => body.take().unwrap_or_else(empty),
        }
    }
}

/// One upstream attempt, as the pipeline makes it: to `endpoint`, with
/// `body`, the request sent `resend_count` times before, told to
/// `exchange` (its own client span).
pub(crate) trait Attempt {
    fn attempt(
        &mut self,
        exchange: &mut Exchange,
        endpoint: &Endpoint,
        body: ProxyBody,
        resend_count: u32,
    ) -> impl Future<Output = Sent> + Send;
}

/// Sends a request under `retry`, each attempt made by `leg`; `first` is
/// the endpoint the balancer chose, and retries choose again from
/// `backend`. `deadline` is when the rule's request timeout passes.
///
/// # Errors
///
/// The last attempt's error when no attempt got a response, or the
/// client's when its body could not be read.
pub(crate) async fn send(
    retry: &RouteRetry,
    backend: &BuiltBackend,
    first: &Endpoint,
    body: ProxyBody,
    deadline: Option<Instant>,
    exchange: &mut Exchange,
    mut leg: impl Attempt,
) -> Sent {
    retry.budget.deposit();
    let mut body = Replay::read(body, retry.max_body).await?;
    let mut endpoint = first;
    let mut retries = 0;
    loop {
        let sent = leg.attempt(exchange, endpoint, body.take(), retries).await;
        let Some(reason) = reason(&retry.policy, &sent) else {
            return sent;
        };
        let delay = backoff(retry.policy.backoff_ms, retries + 1, fastrand::f64());
        let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let step =
            plan(&retry.policy, retries, body.replayable(), delay, remaining).and_then(|()| {
                retry
                    .budget
                    .try_withdraw()
                    .then_some(())
                    .ok_or(Refused::BudgetExhausted)
            });
        let outcome = step.err().map_or("retried", Refused::label);
        exchange.retry_decided(reason.label(), outcome);
        if step.is_err() {
            return sent;
        }
        // The failed response's body is not read: its connection is closed
        // rather than drained for reuse, which a failing backend can spare.
        drop(sent);
        tokio::time::sleep(delay).await;
        retries += 1;
        endpoint = backend.select_other(endpoint.address()).unwrap_or(endpoint);
    }
}

#[cfg(test)]
#[path = "retry_tests.rs"]
mod tests;
