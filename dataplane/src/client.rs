//! The snapshot stream client: follows the controller and applies what it sends.
//!
//! `GET {controller}/v1/snapshots/{namespace}/{name}` over HTTP/2 cleartext
//! with prior knowledge answers a never-ending NDJSON body: one complete
//! snapshot per line, newest last, and empty lines as heartbeats every 10 s.
//! The client applies each snapshot newer than the applied one. On any error,
//! end of stream or 30 s of silence it keeps serving what it has and
//! reconnects with capped exponential backoff, so a controller restart never
//! interrupts traffic.

use crate::Dataplane;
use bytes::{Buf, Bytes, BytesMut};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;
use thiserror::Error;
use tollgate_snapshot::Snapshot;

/// First reconnect delay.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest reconnect delay.
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Silence (no snapshot, no heartbeat) after which the stream is presumed dead.
const SILENCE: Duration = Duration::from_secs(30);
/// Longest line accepted, so a broken stream cannot exhaust memory.
const MAX_LINE: usize = 256 * 1024 * 1024;

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
    let url = format!(
        "{}/v1/snapshots/{}",
        controller_url.trim_end_matches('/'),
        dataplane.status().gateway
    );
    let mut backoff = BACKOFF_MIN;
    loop {
        let mut received = false;
        let attempt = follow(&client, &url, &dataplane, &mut received);
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
    received: &mut bool,
) -> Result<(), StreamError> {
    let uri: http::Uri = url.parse().map_err(|_| StreamError::Url(url.to_string()))?;
    let response = client.get(uri).await.map_err(StreamError::Request)?;
    if !response.status().is_success() {
        return Err(StreamError::Status(response.status()));
    }
    tracing::info!(%url, "following snapshot stream");
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
            offer(dataplane, &line).await;
        }
    }
}

/// Applies one NDJSON line if it is a snapshot newer than the applied one.
async fn offer(dataplane: &Dataplane, line: &[u8]) {
    if line.iter().all(u8::is_ascii_whitespace) {
        return; // heartbeat
    }
    let snapshot: Snapshot = match serde_json::from_slice(line) {
        Ok(snapshot) => snapshot,
        Err(error) => {
            tracing::warn!(%error, "unreadable snapshot line skipped");
            return;
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
        return;
    }
    let version = snapshot.version;
    match dataplane.apply(snapshot).await {
        Ok(()) => tracing::info!(version, "snapshot applied"),
        Err(error) => tracing::warn!(version, %error, "snapshot rejected"),
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
}
