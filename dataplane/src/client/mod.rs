//! The snapshot stream client: follows the controller and applies what it sends.
//!
//! `GET {controller}/v1/snapshots/{namespace}/{name}` over HTTP/2 cleartext
//! with prior knowledge answers a never-ending NDJSON body: one complete
//! snapshot per line, newest last, and empty lines as heartbeats every 10 s.
//! The client applies each snapshot newer than the applied one. On any error,
//! end of stream or 30 s of silence it keeps serving what it has and
//! reconnects with capped exponential backoff, so a controller restart never
//! interrupts traffic.
//!
//! When the stream response names a report path (header
//! `tollgate-report-path`, e.g. `/v1/reports/{namespace}/{name}`), the client
//! also POSTs a JSON report `{version, hash, pod, ready}` of what it applied
//! there after every successful apply and every 10 s, so the controller can
//! tell when the Gateway is really programmed. A failed report is logged
//! and simply sent again with the next apply or period; a controller that
//! names no report path gets none.

use crate::server::Dataplane;
use bytes::{Buf, Bytes, BytesMut};
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thiserror::Error;
use tokio::sync::Notify;
use tollgate_snapshot::Snapshot;

/// First reconnect delay.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest reconnect delay.
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Silence (no snapshot, no heartbeat) after which the stream is presumed dead.
const SILENCE: Duration = Duration::from_secs(30);
/// Longest line accepted, so a broken stream cannot exhaust memory.
const MAX_LINE: usize = 256 * 1024 * 1024;
/// The stream response header naming where to POST reports.
const REPORT_PATH_HEADER: &str = "tollgate-report-path";
/// Period of re-sending the report when nothing new was applied.
const REPORT_EVERY: Duration = Duration::from_secs(10);
/// Longest wait for the controller to take one report.
const REPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why one stream attempt ended.
#[derive(Debug, Error)]
enum StreamError {
    #[error("bad url {0}")]
    Url(String),
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

/// Follows the controller's snapshot stream for `dataplane`'s Gateway until
/// the data plane shuts down, reconnecting after every failure.
pub async fn subscribe(controller_url: String, dataplane: Dataplane) {
    let client: Client<HttpConnector, Empty<Bytes>> = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    let base = controller_url.trim_end_matches('/').to_string();
    let url = format!("{base}/v1/snapshots/{}", dataplane.status().gateway);
    let reporter = Arc::new(Reporter::new(base, pod_name()));
    tokio::spawn(reporter.clone().run(dataplane.clone()));
    let mut backoff = BACKOFF_MIN;
    loop {
        let mut received = false;
        let attempt = follow(&client, &url, &dataplane, &reporter, &mut received);
        let error = tokio::select! {
            () = dataplane.shutdown_begun() => return,
            Err(error) = attempt => error,
        };
        if received {
            backoff = BACKOFF_MIN;
        }
        tracing::warn!(%url, %error, retry_in = ?backoff, "snapshot stream interrupted");
        tokio::select! {
            () = dataplane.shutdown_begun() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// One connection: applies snapshots until the stream fails.
async fn follow(
    client: &Client<HttpConnector, Empty<Bytes>>,
    url: &str,
    dataplane: &Dataplane,
    reporter: &Reporter,
    received: &mut bool,
) -> Result<(), StreamError> {
    let uri: http::Uri = url.parse().map_err(|_| StreamError::Url(url.to_string()))?;
    let response = client.get(uri).await.map_err(StreamError::Request)?;
    if !response.status().is_success() {
        return Err(StreamError::Status(response.status()));
    }
    tracing::info!(%url, "following snapshot stream");
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
            if offer(dataplane, &line).await {
                reporter.notify.notify_one();
            }
        }
    }
}

/// Applies one NDJSON line if it is a snapshot newer than the applied one;
/// returns whether it was applied.
async fn offer(dataplane: &Dataplane, line: &[u8]) -> bool {
    if line.iter().all(u8::is_ascii_whitespace) {
        return false; // heartbeat
    }
    let snapshot: Snapshot = match serde_json::from_slice(line) {
        Ok(snapshot) => snapshot,
        Err(error) => {
            tracing::warn!(%error, "unreadable snapshot line skipped");
            return false;
        }
    };
    let status = dataplane.status();
    let newer = status
        .version
        .is_none_or(|applied| snapshot.version > applied);
    let rejected_before = status
        .last_rejected
        .is_some_and(|r| r.version == snapshot.version && r.hash == snapshot.content_hash());
    if !newer || rejected_before {
        return false;
    }
    let version = snapshot.version;
    match dataplane.apply(snapshot).await {
        Ok(()) => {
            tracing::info!(version, "snapshot applied");
            true
        }
        Err(error) => {
            tracing::warn!(version, %error, "snapshot rejected");
            false
        }
    }
}

/// What the data plane tells the controller it applied.
#[derive(Debug, PartialEq, Eq, Serialize)]
struct Report<'a> {
    version: u64,
    hash: &'a str,
    pod: &'a str,
    ready: bool,
}

/// Sends reports to the path the controller named, after each apply and
/// every [`REPORT_EVERY`].
struct Reporter {
    base: String,
    pod: String,
    /// Full URL to POST to; `None` while the controller named no path.
    url: Mutex<Option<String>>,
    /// Woken after each successful apply.
    notify: Notify,
}

impl Reporter {
    fn new(base: String, pod: String) -> Reporter {
        Reporter {
            base,
            pod,
            url: Mutex::new(None),
            notify: Notify::new(),
        }
    }

    /// Reports go to `path` on the controller from now on (none when
    /// `None`, or when it is not an absolute path).
    fn report_to(&self, path: Option<&str>) {
        let url = path
            .filter(|p| p.starts_with('/') && !p.starts_with("//"))
            .map(|p| format!("{}{p}", self.base));
        if let Ok(mut current) = self.url.lock() {
            *current = url;
        }
    }

    /// Reports until the data plane shuts down.
    async fn run(self: Arc<Self>, dataplane: Dataplane) {
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        loop {
            tokio::select! {
                () = dataplane.shutdown_begun() => return,
                () = self.notify.notified() => {}
                () = tokio::time::sleep(REPORT_EVERY) => {}
            }
            let url = self.url.lock().ok().and_then(|u| u.clone());
            let status = dataplane.status();
            let (Some(url), Some(version), Some(hash)) = (url, status.version, status.hash) else {
                continue;
            };
            let report = Report {
                version,
                hash: &hash,
                pod: &self.pod,
                ready: status.ready,
            };
            if let Err(error) = post(&client, &url, &report).await {
                tracing::warn!(%url, version, %error, "report not delivered; will report again");
            }
        }
    }
}

/// POSTs one report; any answer but 2xx is an error.
async fn post(
    client: &Client<HttpConnector, Full<Bytes>>,
    url: &str,
    report: &Report<'_>,
) -> Result<(), String> {
    let body = serde_json::to_vec(report).map_err(|e| e.to_string())?;
    let request = http::Request::post(url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let response = tokio::time::timeout(REPORT_TIMEOUT, client.request(request))
        .await
        .map_err(|_| format!("no answer within {REPORT_TIMEOUT:?}"))?
        .map_err(|e| e.to_string())?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("controller answered {}", response.status()))
    }
}

/// This data plane's name in reports: `POD_NAME`, else the host name.
fn pod_name() -> String {
    let from_env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    from_env("POD_NAME")
        .or_else(|| from_env("HOSTNAME"))
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "unknown".to_string())
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

    /// Reports go only to an absolute path the controller named, on the
    /// controller itself.
    #[test]
    fn reports_go_only_to_a_named_path() {
        let r = Reporter::new("http://c:1".into(), "pod".into());
        let url = |r: &Reporter| r.url.lock().unwrap().clone();
        assert_eq!(url(&r), None);
        r.report_to(Some("/v1/reports/ns/gw"));
        assert_eq!(url(&r).as_deref(), Some("http://c:1/v1/reports/ns/gw"));
        for bad in [
            None,
            Some("http://elsewhere/x"),
            Some("//elsewhere/x"),
            Some(""),
        ] {
            r.report_to(bad);
            assert_eq!(url(&r), None, "{bad:?}");
        }
        assert!(!pod_name().is_empty());
    }
}
