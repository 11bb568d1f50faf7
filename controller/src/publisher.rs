//! The publisher: one versioned snapshot per Gateway, streamed to data planes.
//!
//! A snapshot is published only when its content hash changed, so a
//! recompile that changes nothing sends nothing. Versions are taken from the
//! wall clock at start-up (milliseconds) and then count up, so they keep
//! growing across controller restarts.
//!
//! Wire format of `GET /v1/snapshots/{namespace}/{name}`: a 200 response
//! with `content-type: application/x-ndjson` whose body never ends; each line
//! is one complete snapshot JSON, empty lines are heartbeats every 10 s. The
//! first line comes as soon as a snapshot for that Gateway exists. A Gateway
//! that is deleted or no longer accepted gets an empty snapshot, which
//! closes its listeners.

use crate::serve::{Body, respond};
use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use serde::Serialize;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;
use tollgate_snapshot::Snapshot;

const HEARTBEAT: Duration = Duration::from_secs(10);

type SnapshotTx = watch::Sender<Option<Arc<Snapshot>>>;

/// The latest snapshot of every Gateway, with its subscribers.
#[derive(Clone, Debug)]
pub struct Publisher {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug)]
struct Inner {
    next_version: u64,
    gateways: BTreeMap<String, Entry>,
}

#[derive(Debug)]
struct Entry {
    hash: Option<String>,
    /// Bytes of the latest snapshot's JSON.
    bytes: u64,
    /// When the latest snapshot was published, until a data plane reports
    /// it applied (then `None`: measured once).
    published_at: Option<std::time::Instant>,
    tx: SnapshotTx,
}

/// What the admin endpoint shows for one Gateway.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Published {
    /// Version of the latest snapshot.
    pub version: u64,
    /// Its content hash.
    pub hash: String,
    /// Element counts.
    pub counts: tollgate_snapshot::Counts,
    /// Size of its JSON in bytes.
    pub bytes: u64,
    /// Data planes following the Gateway's stream (in-process ones too).
    pub subscribers: usize,
}

impl Entry {
    fn new() -> Entry {
        Entry {
            hash: None,
            bytes: 0,
            published_at: None,
            tx: watch::channel(None).0,
        }
    }
}

impl Default for Publisher {
    fn default() -> Self {
        let start = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_millis() as u64);
        Publisher {
            inner: Arc::new(Mutex::new(Inner {
                next_version: start,
                gateways: BTreeMap::new(),
            })),
        }
    }
}

impl Publisher {
    /// Publishes every snapshot whose content changed; Gateways that were
    /// published before and are absent now get an empty snapshot. Returns
    /// the snapshots actually published.
    ///
    /// Content hashes are computed before the lock is taken: with 10k
    /// routes hashing takes milliseconds, and admin requests and new
    /// subscribers should not wait for it.
    pub fn publish(&self, snapshots: BTreeMap<String, Snapshot>) -> Vec<Arc<Snapshot>> {
        let hashed: Vec<(String, Snapshot, (String, u64))> = snapshots
            .into_iter()
            .map(|(gateway, snapshot)| {
                let hash = snapshot.content_hash_and_size();
                (gateway, snapshot, hash)
            })
            .collect();
        let Ok(mut inner) = self.inner.lock() else {
            return Vec::new();
        };
        let mut wanted: BTreeMap<String, (Snapshot, Option<(String, u64)>)> = inner
            .gateways
            .iter()
            .filter(|(k, e)| e.hash.is_some() && !hashed.iter().any(|(g, _, _)| g == *k))
            .map(|(k, _)| (k.clone(), (Snapshot::empty(k.clone()), None)))
            .collect();
        wanted.extend(
            hashed
                .into_iter()
                .map(|(gateway, snapshot, hash)| (gateway, (snapshot, Some(hash)))),
        );
        let mut published = Vec::new();
        for (gateway, (mut snapshot, hash)) in wanted {
            let (hash, bytes) = hash.unwrap_or_else(|| snapshot.content_hash_and_size());
            let version = inner.next_version;
            let entry = inner.gateways.entry(gateway).or_insert_with(Entry::new);
            if entry.hash.as_ref() == Some(&hash) {
                continue;
            }
            snapshot.version = version;
            snapshot.schema_version = tollgate_snapshot::schema_version();
            let snapshot = Arc::new(snapshot);
            entry.hash = Some(hash);
            entry.bytes = bytes;
            entry.published_at = Some(std::time::Instant::now());
            entry.tx.send_replace(Some(snapshot.clone()));
            inner.next_version += 1;
            published.push(snapshot);
        }
        published
    }

    /// Follows one Gateway's snapshots (`None` until it has one).
    pub fn subscribe(&self, gateway: &str) -> watch::Receiver<Option<Arc<Snapshot>>> {
        match self.inner.lock() {
            Ok(mut inner) => inner
                .gateways
                .entry(gateway.to_string())
                .or_insert_with(Entry::new)
                .tx
                .subscribe(),
            Err(_) => watch::channel(None).1,
        }
    }

    /// `gateway`'s current snapshot, if one was published: what the
    /// compiler refills endpoints into when only EndpointSlices changed.
    pub fn current(&self, gateway: &str) -> Option<Arc<Snapshot>> {
        let inner = self.inner.lock().ok()?;
        inner.gateways.get(gateway)?.tx.borrow().clone()
    }

    /// The Gateways that have a published snapshot, `namespace/name`.
    pub fn gateways(&self) -> Vec<String> {
        self.inner
            .lock()
            .map(|inner| {
                inner
                    .gateways
                    .iter()
                    .filter(|(_, e)| e.hash.is_some())
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Version, hash and counts of every published snapshot.
    pub fn published(&self) -> BTreeMap<String, Published> {
        let Ok(inner) = self.inner.lock() else {
            return BTreeMap::new();
        };
        inner
            .gateways
            .iter()
            .filter_map(|(k, e)| {
                let s = e.tx.borrow().clone()?;
                Some((
                    k.clone(),
                    Published {
                        version: s.version,
                        hash: e.hash.clone().unwrap_or_default(),
                        counts: s.counts(),
                        bytes: e.bytes,
                        subscribers: e.tx.receiver_count(),
                    },
                ))
            })
            .collect()
    }

    /// The content hash of `gateway`'s snapshot `version`, while it is the
    /// current one: an in-process data plane applies it without hashing it
    /// again.
    pub fn hash_of(&self, gateway: &str, version: u64) -> Option<String> {
        let inner = self.inner.lock().ok()?;
        let entry = inner.gateways.get(gateway)?;
        let current = entry.tx.borrow().as_ref().map(|s| s.version);
        (current == Some(version))
            .then(|| entry.hash.clone())
            .flatten()
    }

    /// How long ago `gateway`'s current snapshot was published, the first
    /// time a data plane reports applying it (`hash` is current); `None`
    /// otherwise. For the snapshot propagation metric.
    pub fn first_applied(&self, gateway: &str, hash: &str) -> Option<Duration> {
        let mut inner = self.inner.lock().ok()?;
        let entry = inner.gateways.get_mut(gateway)?;
        if entry.hash.as_deref() != Some(hash) {
            return None;
        }
        entry.published_at.take().map(|at| at.elapsed())
    }

    /// Handles `GET /v1/snapshots/{namespace}/{name}`.
    pub fn handle(&self, req: &Request<Incoming>) -> Response<Body> {
        let path = req.uri().path();
        let Some(gateway) = path.strip_prefix("/v1/snapshots/") else {
            return respond(404, "text/plain; charset=utf-8", "not found\n");
        };
        let valid = gateway.split('/').count() == 2 && !gateway.split('/').any(str::is_empty);
        if req.method() != http::Method::GET || !valid {
            return respond(
                400,
                "text/plain; charset=utf-8",
                "expected GET /v1/snapshots/{namespace}/{name}\n",
            );
        }
        stream_response(self.subscribe(gateway))
    }
}

fn stream_response(rx: watch::Receiver<Option<Arc<Snapshot>>>) -> Response<Body> {
    let frames = futures_util::stream::unfold((rx, true), |(mut rx, first)| async move {
        if first && let Some(line) = current_line(&mut rx) {
            return Some((Ok::<_, Infallible>(Frame::data(line)), (rx, false)));
        }
        loop {
            tokio::select! {
                changed = rx.changed() => {
                    changed.ok()?;
                    if let Some(line) = current_line(&mut rx) {
                        return Some((Ok(Frame::data(line)), (rx, false)));
                    }
                }
                () = tokio::time::sleep(HEARTBEAT) => {
                    return Some((Ok(Frame::data(Bytes::from_static(b"\n"))), (rx, false)));
                }
            }
        }
    });
    let mut response = Response::new(StreamBody::new(frames).boxed_unsync());
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/x-ndjson"),
    );
    response
}

fn current_line(rx: &mut watch::Receiver<Option<Arc<Snapshot>>>) -> Option<Bytes> {
    let snapshot = rx.borrow_and_update().clone()?;
    let mut line = serde_json::to_vec(&*snapshot).ok()?;
    line.push(b'\n');
    Some(Bytes::from(line))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshots(names: &[&str]) -> BTreeMap<String, Snapshot> {
        names
            .iter()
            .map(|n| (n.to_string(), Snapshot::empty(*n)))
            .collect()
    }

    /// Publishing the same content twice publishes once.
    #[test]
    fn unchanged_content_is_not_republished() {
        let p = Publisher::default();
        assert_eq!(p.publish(snapshots(&["ns/a"])).len(), 1);
        assert!(p.publish(snapshots(&["ns/a"])).is_empty());
    }

    /// Versions grow with every publication.
    #[test]
    fn versions_grow() {
        let p = Publisher::default();
        let mut s = snapshots(&["ns/a"]);
        let v1 = p.publish(s.clone())[0].version;
        s.get_mut("ns/a")
            .unwrap()
            .backends
            .push(tollgate_snapshot::Backend {
                name: "service/ns/b/port/80".into(),
                protocol: Default::default(),
                tls: None,
                endpoints: vec![],
            });
        let v2 = p.publish(s)[0].version;
        assert!(v2 > v1);
    }

    /// A Gateway that disappears gets an empty snapshot so its listeners close.
    #[test]
    fn a_removed_gateway_gets_an_empty_snapshot() {
        let p = Publisher::default();
        let mut s = snapshots(&["ns/a"]);
        s.get_mut("ns/a")
            .unwrap()
            .backends
            .push(tollgate_snapshot::Backend {
                name: "service/ns/b/port/80".into(),
                protocol: Default::default(),
                tls: None,
                endpoints: vec![],
            });
        p.publish(s);
        let rx = p.subscribe("ns/a");
        let out = p.publish(BTreeMap::new());
        assert_eq!(out.len(), 1);
        let current = rx.borrow().clone().unwrap();
        assert!(current.backends.is_empty() && current.sockets.is_empty());
    }
}
