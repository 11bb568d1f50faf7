//! Watch streams: newline-delimited JSON events, replayed from history and
//! then live.
//!
//! A watch starts from a `resourceVersion`: empty or `0` sends the current
//! objects as `ADDED` first; a number replays the history after it; a number
//! older than the compacted history gets one `ERROR` event with a 410
//! `Expired` Status, as the real server does. With selectors an object that
//! starts or stops matching is reported as `ADDED` or `DELETED`.
//! `allowWatchBookmarks` adds periodic `BOOKMARK` events carrying the latest
//! version; `sendInitialEvents` ends the initial objects with the
//! `k8s.io/initial-events-end` bookmark. The stream ends on
//! `timeoutSeconds`, when the client hangs up, on [`ApiServer::drop_watches`]
//! and restarts.
//!
//! [`ApiServer::drop_watches`]: super::ApiServer::drop_watches

use super::error::ApiError;
use super::kinds::ResourceType;
use super::render::partial;
use super::selectors::{FieldSelector, LabelSelector};
use super::storage::{Event, EventKind};
use bytes::Bytes;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};

/// How often a watch with `allowWatchBookmarks` gets a bookmark. Much more
/// often than the real server (about a minute) so tests see them quickly.
pub(crate) const BOOKMARK_INTERVAL: Duration = Duration::from_secs(1);

/// What a watch selects and how it reports.
#[derive(Clone, Debug)]
pub(crate) struct WatchSpec {
    pub(crate) rt: ResourceType,
    pub(crate) namespace: Option<String>,
    pub(crate) labels: LabelSelector,
    pub(crate) fields: FieldSelector,
    pub(crate) bookmarks: bool,
    pub(crate) initial_events_end: bool,
    pub(crate) timeout: Option<Duration>,
    pub(crate) metadata_only: bool,
}

/// Where a watch starts, decided under the store lock.
#[derive(Debug)]
pub(crate) struct WatchStart {
    /// Current objects to send as `ADDED` first.
    pub(crate) initial: Vec<Value>,
    /// History to replay after the initial objects.
    pub(crate) replay: Vec<Arc<Event>>,
    /// Later events.
    pub(crate) live: broadcast::Receiver<Arc<Event>>,
    /// The version the stream is at before the live events.
    pub(crate) rv: u64,
    /// Set when the start version is too old: send 410 and stop.
    pub(crate) gone: Option<ApiError>,
}

impl WatchSpec {
    /// Whether `object` is in this watch's scope and selection.
    fn selects(&self, object: &Value) -> bool {
        let ns = object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default();
        self.namespace
            .as_deref()
            .is_none_or(|want| !self.rt.namespaced || want == ns)
            && self.labels.matches(object)
            && self.fields.matches(object)
    }

    /// The event line for `event`, if this watch reports it.
    fn translate(&self, event: &Event) -> Option<Bytes> {
        if event.group != self.rt.storage_group() || event.plural != self.rt.plural {
            return None;
        }
        let view = |o: &Value| super::objects::view(&self.rt, o);
        let now = self.selects(&view(&event.object));
        let before = event
            .previous
            .as_ref()
            .is_some_and(|p| self.selects(&view(p)));
        let kind = match (event.kind, before, now) {
            (EventKind::Added, _, true) => "ADDED",
            (EventKind::Deleted, _, true) => "DELETED",
            (EventKind::Modified, true, true) => "MODIFIED",
            (EventKind::Modified, false, true) => "ADDED",
            (EventKind::Modified, true, false) => "DELETED",
            _ => return None,
        };
        Some(self.line(kind, &event.object))
    }

    /// One `{"type": ..., "object": ...}` line, in the requested form.
    fn line(&self, kind: &str, object: &Value) -> Bytes {
        let mut object = super::objects::view(&self.rt, object);
        if self.metadata_only {
            object = partial(&object);
        }
        encode(&json!({"type": kind, "object": object}))
    }

    /// A bookmark at version `rv`, optionally marking the end of initial events.
    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let object = json!({"kind": self.rt.kind, "apiVersion": self.rt.api_version(), "metadata": metadata});
        encode(&json!({"type": "BOOKMARK", "object": object}))
    }
}

fn encode(value: &Value) -> Bytes {
    let mut line = value.to_string();
    line.push('\n');
    Bytes::from(line)
}

/// Feeds the event lines of one watch into `out` until the watch ends.
pub(crate) async fn run(
    spec: WatchSpec,
    start: WatchStart,
    out: mpsc::Sender<Bytes>,
    mut stop: watch::Receiver<u64>,
) {
    let WatchStart {
        initial,
        replay,
        mut live,
        mut rv,
        gone,
    } = start;
    if let Some(err) = gone {
        let _ = out
            .send(encode(&json!({"type": "ERROR", "object": err.to_status()})))
            .await;
        return;
    }
    let first = initial
        .iter()
        .filter(|o| spec.selects(o))
        .map(|o| spec.line("ADDED", o));
    let replayed = replay.iter().filter_map(|e| spec.translate(e));
    for line in first.chain(replayed) {
        if out.send(line).await.is_err() {
            return;
        }
    }
    if spec.initial_events_end && spec.bookmarks && out.send(spec.bookmark(rv, true)).await.is_err()
    {
        return;
    }
    let deadline = spec.timeout.map(|t| tokio::time::Instant::now() + t);
    let mut ticks = tokio::time::interval(BOOKMARK_INTERVAL);
    ticks.tick().await;
    loop {
        // Biased: once the watch is told to stop it sends nothing more.
        let line = tokio::select! {
            biased;
            _ = stop.changed() => return,
            _ = out.closed() => return,
            _ = sleep_until(deadline) => return,
            event = live.recv() => match event {
                Ok(event) => {
                    rv = event.rv;
                    spec.translate(&event)
                }
                // Too slow or server gone: end the stream, the client rewatches.
                Err(_) => return,
            },
            _ = ticks.tick(), if spec.bookmarks => Some(spec.bookmark(rv, false)),
        };
        if let Some(line) = line
            && out.send(line).await.is_err()
        {
            return;
        }
    }
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
