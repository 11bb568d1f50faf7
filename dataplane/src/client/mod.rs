//! The snapshot stream client: follows the controller and applies what it sends.
//!
//! `GET {controller}/v1/snapshots/{namespace}/{name}` over HTTP/2 (cleartext
//! with prior knowledge standalone, mutual TLS in a cluster: `tls`)
//! answers a never-ending NDJSON body: one complete snapshot per line,
//! newest last, and empty lines as heartbeats every 10 s. The client
//! applies each snapshot newer than the applied one. On any error, end of
//! stream or 30 s of silence it keeps serving what it has and reconnects
//! after a capped exponential backoff with full jitter, so a controller
//! restart never interrupts traffic and a thousand data planes do not
//! reconnect in step.
//!
//! A snapshot is read tolerantly: fields this data plane does not know are
//! ignored, and its `schemaVersion` must have this data plane's major
//! (`tollgate_snapshot::check_schema`); another major is refused and the
//! refusal reported. With a state directory (`state`) each applied
//! snapshot is kept on disk and served at start when the controller
//! cannot be reached. Reports (`report`) tell the controller what was
//! applied or refused.

mod report;
mod state;
mod tls;

pub use tls::{ClientTls, TlsDirError};

use crate::server::{Dataplane, Rejected};
use bytes::{Buf, Bytes, BytesMut};
use http_body_util::{BodyExt, Empty};
use report::{Reporter, pod_name};
use serde::Deserialize;
use state::StateDir;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tls::{CachedClient, HttpClient};
use tollgate_snapshot::{Snapshot, check_schema};

/// First reconnect delay ceiling.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Largest reconnect delay ceiling.
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// Silence (no snapshot, no heartbeat) after which the stream is presumed dead.
const SILENCE: Duration = Duration::from_secs(30);
/// Longest line accepted, so a broken stream cannot exhaust memory.
const MAX_LINE: usize = 256 * 1024 * 1024;
/// The stream response header naming where to POST reports.
const REPORT_PATH_HEADER: &str = "tollgate-report-path";

/// Why one stream attempt ended.
#[derive(Debug, Error)]
enum StreamError {
    #[error("bad url {0}")]
    Url(String),
    #[error("client certificate: {0}")]
    Tls(#[source] TlsDirError),
    #[error("request failed: {0}")]
    Request(#[source] hyper_util::client::legacy::Error),
    #[error("controller answered {0}")]
    Status(http::StatusCode),
    #[error("stream broke: {0}")]
    Body(#[source] hyper::Error),
    #[error("no data for {0:?}")]
    Silent(Duration),
    #[error("line longer than {MAX_LINE} bytes")]
    LineTooLong,
    #[error("stream ended")]
    Ended,
}

impl StreamError {
    /// Its `error.type`, as counted in `tollgate.dataplane.controller.disconnects`.
    fn kind(&self) -> &'static str {
        match self {
            StreamError::Url(_) => "url",
            StreamError::Tls(_) => "tls",
            StreamError::Request(_) => "connect",
            StreamError::Status(_) => "status",
            StreamError::Body(_) => "broken",
            StreamError::Silent(_) => "silent",
            StreamError::LineTooLong => "too-long",
            StreamError::Ended => "ended",
        }
    }
}

/// How to follow the controller.
#[derive(Clone, Debug)]
pub struct SubscribeOptions {
    /// The controller's base URL (`http://` standalone, `https://` with TLS).
    pub url: String,
    /// Plain HTTP, or mutual TLS with the files of a directory.
    pub tls: ClientTls,
    /// Where the last applied snapshot is kept (`--state-dir`).
    pub state_dir: Option<PathBuf>,
}

/// Follows the controller's snapshot stream over plain HTTP, keeping no
/// state on disk; see [`subscribe_with`].
pub async fn subscribe(controller_url: String, dataplane: Dataplane) {
    let options = SubscribeOptions {
        url: controller_url,
        tls: ClientTls::plain(),
        state_dir: None,
    };
    subscribe_with(options, dataplane).await;
}

/// Follows the controller's snapshot stream for `dataplane`'s Gateway until
/// the data plane shuts down, reconnecting after every failure. When the
/// first connection fails and nothing is applied yet, the snapshot kept in
/// the state directory (if any) is served meanwhile.
pub async fn subscribe_with(options: SubscribeOptions, dataplane: Dataplane) {
    let mut clients: CachedClient<Empty<Bytes>> = CachedClient::new(options.tls.clone(), true);
    let base = options.url.trim_end_matches('/').to_string();
    let url = format!("{base}/v1/snapshots/{}", dataplane.status().gateway);
    let reporter = Arc::new(Reporter::new(base, pod_name()));
    tokio::spawn(reporter.clone().run(dataplane.clone(), options.tls.clone()));
    let state = options.state_dir.map(StateDir::new);
    dataplane.controller_link(|_| {});
    let mut restored = false;
    let mut ceiling = BACKOFF_MIN;
    loop {
        let mut received = false;
        let attempt = follow(
            &mut clients,
            &url,
            &dataplane,
            &reporter,
            state.as_ref(),
            &mut received,
        );
        let error = tokio::select! {
            () = dataplane.shutdown_begun() => return,
            Err(error) = attempt => error,
        };
        dataplane.controller_link(|link| {
            link.connected = false;
            *link.disconnects.entry(error.kind()).or_default() += 1;
            link.last_error = Some(error.to_string());
        });
        if received {
            ceiling = BACKOFF_MIN;
        }
        // New connections next time: a follower replica's refusal (503) or
        // a lost leader's ended stream came over a pooled connection that
        // would lead back to the same replica.
        clients.reset();
        if !restored && let Some(state) = &state {
            restored = true;
            restore(state, &dataplane, &reporter).await;
        }
        let delay = full_jitter(ceiling, fastrand::u64(..=u64::MAX));
        tracing::warn!(%url, %error, retry_in = ?delay, "snapshot stream interrupted");
        tokio::select! {
            () = dataplane.shutdown_begun() => return,
            () = tokio::time::sleep(delay) => {}
        }
        ceiling = (ceiling * 2).min(BACKOFF_MAX);
    }
}

/// A delay drawn uniformly from `[0, ceiling]` ("full jitter") with the
/// random number `random`: reconnecting data planes spread out instead of
/// hitting a restarted controller together.
fn full_jitter(ceiling: Duration, random: u64) -> Duration {
    let ceiling_us = ceiling.as_micros().max(1) as u64;
    Duration::from_micros(random % (ceiling_us + 1))
}

/// Serves the kept snapshot when nothing is applied yet.
async fn restore(state: &StateDir, dataplane: &Dataplane, reporter: &Reporter) {
    if dataplane.status().version.is_some() {
        return;
    }
    let Some(mut snapshot) = state.load(&dataplane.status().gateway).await else {
        return;
    };
    // Served from disk, not part of the change that published it.
    snapshot.traceparent = None;
    let version = snapshot.version;
    match dataplane.apply(snapshot).await {
        Ok(()) => {
            dataplane.mark_from_state_file();
            tracing::info!(
                version,
                "controller unreachable: serving the snapshot kept on disk"
            );
            reporter.notify.notify_one();
        }
        Err(error) => tracing::warn!(version, %error, "the snapshot kept on disk was refused"),
    }
}

/// One connection: applies snapshots until the stream fails.
async fn follow(
    clients: &mut CachedClient<Empty<Bytes>>,
    url: &str,
    dataplane: &Dataplane,
    reporter: &Reporter,
    state: Option<&StateDir>,
    received: &mut bool,
) -> Result<(), StreamError> {
    let uri: http::Uri = url.parse().map_err(|_| StreamError::Url(url.to_string()))?;
    let client: HttpClient<Empty<Bytes>> = clients.get().map_err(StreamError::Tls)?;
    let response = client.get(uri).await.map_err(StreamError::Request)?;
    if !response.status().is_success() {
        return Err(StreamError::Status(response.status()));
    }
    tracing::info!(%url, "following snapshot stream");
    dataplane.controller_link(|link| link.connected = true);
    reporter.report_to(
        response
            .headers()
            .get(REPORT_PATH_HEADER)
            .and_then(|v| v.to_str().ok()),
    );
    let mut body = response.into_body();
    let mut lines = Lines::default();
    loop {
        let frame = tokio::time::timeout(SILENCE, body.frame())
            .await
            .map_err(|_| StreamError::Silent(SILENCE))?
            .ok_or(StreamError::Ended)?
            .map_err(StreamError::Body)?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        lines.push(&data)?;
        while let Some(line) = lines.next_line() {
            *received = true;
            match offer(dataplane, &line).await {
                Offered::Applied => {
                    reporter.notify.notify_one();
                    if let Some(state) = state {
                        state.save(line).await;
                    }
                }
                Offered::Rejected => reporter.notify.notify_one(),
                Offered::Skipped => {}
            }
        }
    }
}

/// What became of one line of the stream.
#[derive(Debug, PartialEq, Eq)]
enum Offered {
    Applied,
    Rejected,
    Skipped,
}

/// The fields read before the whole snapshot: which schema and version.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Head {
    #[serde(default)]
    schema_version: String,
    #[serde(default)]
    version: u64,
}

/// Applies one NDJSON line if it is a snapshot newer than the applied one.
async fn offer(dataplane: &Dataplane, line: &[u8]) -> Offered {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Offered::Skipped; // heartbeat
    }
    let head: Head = match serde_json::from_slice(line) {
        Ok(head) => head,
        Err(error) => {
            tracing::warn!(%error, "unreadable snapshot line skipped");
            return Offered::Skipped;
        }
    };
    let status = dataplane.status();
    let newer = status.version.is_none_or(|applied| head.version > applied);
    let refused_before = status
        .last_rejected
        .as_ref()
        .is_some_and(|r| r.version == head.version);
    if !newer || refused_before {
        return Offered::Skipped;
    }
    // The schema first: a snapshot of another major may not even parse,
    // and when it does its fields may mean something else.
    let parsed = check_schema(&head.schema_version)
        .map_err(|e| e.to_string())
        .and_then(|_| serde_json::from_slice::<Snapshot>(line).map_err(|e| e.to_string()));
    let snapshot = match parsed {
        Ok(snapshot) => snapshot,
        Err(error) => {
            tracing::warn!(version = head.version, %error, "snapshot refused");
            dataplane.refuse(Rejected {
                version: head.version,
                hash: String::new(),
                error,
            });
            return Offered::Rejected;
        }
    };
    let version = snapshot.version;
    match dataplane.apply(snapshot).await {
        Ok(()) => {
            tracing::info!(version, "snapshot applied");
            Offered::Applied
        }
        Err(error) => {
            tracing::warn!(version, %error, "snapshot rejected");
            Offered::Rejected
        }
    }
}

/// Splits a byte stream into `\n`-terminated lines.
#[derive(Default)]
struct Lines {
    buf: BytesMut,
}

impl Lines {
    fn push(&mut self, data: &Bytes) -> Result<(), StreamError> {
        self.buf.extend_from_slice(data);
        if self.buf.len() > MAX_LINE && !self.buf.contains(&b'\n') {
            return Err(StreamError::LineTooLong);
        }
        Ok(())
    }

    fn next_line(&mut self) -> Option<Bytes> {
        let end = self.buf.iter().position(|b| *b == b'\n')?;
        let line = self.buf.split_to(end).freeze();
        self.buf.advance(1);
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines are cut at `\n` whatever the chunking; a partial line waits.
    #[test]
    fn lines_survive_any_chunking() {
        let mut lines = Lines::default();
        lines.push(&Bytes::from_static(b"{\"a\"")).unwrap();
        assert_eq!(lines.next_line(), None);
        lines.push(&Bytes::from_static(b":1}\n\n{\"b")).unwrap();
        assert_eq!(lines.next_line().as_deref(), Some(&b"{\"a\":1}"[..]));
        assert_eq!(lines.next_line().as_deref(), Some(&b""[..]));
        assert_eq!(lines.next_line(), None);
    }

    /// Full jitter stays within `[0, ceiling]` and uses the whole range.
    #[test]
    fn jitter_spans_zero_to_the_ceiling() {
        let ceiling = Duration::from_secs(10);
        assert_eq!(full_jitter(ceiling, 0), Duration::ZERO);
        assert_eq!(full_jitter(ceiling, 10_000_000), ceiling);
        assert!(full_jitter(ceiling, u64::MAX) <= ceiling);
        let spread: std::collections::BTreeSet<_> = (0..100)
            .map(|_| full_jitter(ceiling, fastrand::u64(..)).as_secs())
            .collect();
        assert!(spread.len() > 5, "{spread:?}");
    }
}
