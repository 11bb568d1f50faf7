//! What the data plane reports about itself on the admin `/status` endpoint.

use serde::Serialize;
use std::collections::BTreeMap;
use tollgate_snapshot::Counts;

/// The data plane's state: what it serves and what it last refused.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DataplaneStatus {
    /// The Gateway served, `namespace/name`.
    pub gateway: String,
    /// Version of the applied snapshot; `None` before the first apply.
    pub version: Option<u64>,
    /// Content hash of the applied snapshot.
    pub hash: Option<String>,
    /// Element counts of the applied snapshot.
    pub counts: Counts,
    /// Addresses currently accepting connections (as bound: with
    /// `--listener-port-offset` added).
    pub sockets: Vec<String>,
    /// A complete snapshot is applied, all its sockets are bound and the
    /// data plane is not shutting down.
    pub ready: bool,
    /// The applied snapshot was read from `--state-dir` because the
    /// controller could not be reached; cleared by the next applied one.
    pub from_state_file: bool,
    /// Shutdown has begun; connections are draining.
    pub draining: bool,
    /// The last snapshot refused, and why; cleared by the next success.
    pub last_rejected: Option<Rejected>,
    /// Downstream connections now.
    pub connections: ConnectionCounts,
    /// The snapshot stream from the controller, when this data plane
    /// follows one (not when the controller runs it in-process or it
    /// serves a file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub controller: Option<ControllerLink>,
}

/// A data plane's link to its controller: the snapshot stream.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ControllerLink {
    /// The stream is open now: a new snapshot would arrive.
    pub connected: bool,
    /// Streams that ended or could not be opened, by why (`error.type`):
    /// `connect`, `status` (the controller refused, e.g. a follower
    /// replica), `broken`, `silent` (no heartbeat for 30 s), `ended`,
    /// `tls` (the client certificate files), `too-long`, `url`.
    pub disconnects: BTreeMap<&'static str, u64>,
    /// Why the last one ended.
    pub last_error: Option<String>,
}

/// Downstream connections of a data plane.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct ConnectionCounts {
    /// Open connections.
    pub open: usize,
    /// Open HTTP/1.1 connections waiting for their next request without
    /// buffers (parked).
    pub parked: usize,
    /// Relayed upgrades (WebSocket tunnels) open now: an HTTP/1.1
    /// connection each, or one stream of an HTTP/2 connection.
    pub tunnels: usize,
}

/// A snapshot that was refused while the previous one kept serving.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rejected {
    /// Its version.
    pub version: u64,
    /// Its content hash.
    pub hash: String,
    /// Why it was refused.
    pub error: String,
}
