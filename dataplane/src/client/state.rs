//! Static stability: the last applied snapshot, kept on local disk.
//!
//! A data plane restarted while the controller is unreachable (a control
//! plane outage, a network partition, the controller's own rollout) would
//! otherwise come up empty and stay unready. With `--state-dir DIR` each
//! applied snapshot line is written to `DIR/snapshot.json`, atomically (a
//! temporary file renamed over the old one, so a crash never leaves half a
//! snapshot), and when the first connection to the controller fails the
//! data plane serves that file while it keeps retrying.
//!
//! The file holds the Gateway's TLS private keys and credentials, so it is
//! created `0600`, and in a cluster `DIR` is an `emptyDir`: it lives as
//! long as the pod, survives container restarts, and is never shared.

use bytes::Bytes;
use std::io::Write;
use std::path::PathBuf;
use tollgate_snapshot::{Snapshot, check_schema};

/// File name of the kept snapshot.
pub(crate) const FILE: &str = "snapshot.json";

/// The state directory.
#[derive(Clone, Debug)]
pub(crate) struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    pub(crate) fn new(dir: PathBuf) -> StateDir {
        StateDir { dir }
    }

    /// Replaces the kept snapshot with `line` (one applied snapshot's
    /// JSON). Failures are logged: keeping state must never stop serving.
    pub(crate) async fn save(&self, line: Bytes) {
        let dir = self.dir.clone();
        let written = tokio::task::spawn_blocking(move || write_atomically(&dir, &line)).await;
        match written {
            Ok(Ok(())) => tracing::debug!(dir = %self.dir.display(), "snapshot kept on disk"),
            Ok(Err(error)) => {
                tracing::warn!(dir = %self.dir.display(), %error, "cannot keep the snapshot on disk")
            }
            Err(error) => tracing::warn!(%error, "keeping the snapshot on disk failed"),
        }
    }

    /// The kept snapshot, if there is one for `gateway` in a schema this
    /// data plane reads. Anything else is logged and ignored.
    pub(crate) async fn load(&self, gateway: &str) -> Option<Snapshot> {
        let path = self.dir.join(FILE);
        let bytes = match tokio::fs::read(&path).await {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return None,
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "cannot read the kept snapshot");
                return None;
            }
        };
        let snapshot: Snapshot = match serde_json::from_slice(&bytes) {
            Ok(snapshot) => snapshot,
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "kept snapshot unreadable; ignored");
                return None;
            }
        };
        if let Err(error) = check_schema(&snapshot.schema_version) {
            tracing::warn!(path = %path.display(), %error, "kept snapshot ignored");
            return None;
        }
        if snapshot.gateway != gateway {
            tracing::warn!(path = %path.display(), found = %snapshot.gateway, %gateway, "kept snapshot is for another Gateway; ignored");
            return None;
        }
        Some(snapshot)
    }
}

/// Writes `bytes` to `dir/snapshot.json` through a `0600` temporary file
/// and a rename.
fn write_atomically(dir: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = dir.join(format!(".{FILE}.tmp"));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, dir.join(FILE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A saved snapshot loads back for its Gateway only, from a 0600 file.
    #[tokio::test]
    async fn saved_snapshots_load_for_their_gateway() {
        let dir = std::env::temp_dir().join(format!("tollgate-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let state = StateDir::new(dir.clone());
        assert!(state.load("ns/gw").await.is_none());
        let mut snapshot = Snapshot::empty("ns/gw");
        snapshot.version = 9;
        state
            .save(Bytes::from(serde_json::to_vec(&snapshot).unwrap()))
            .await;
        assert_eq!(state.load("ns/gw").await, Some(snapshot));
        assert!(state.load("ns/other").await.is_none());
        let mode = std::fs::metadata(dir.join(FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
