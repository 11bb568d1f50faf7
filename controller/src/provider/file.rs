//! The file provider: a folder of YAML manifests as the source of truth.
//!
//! Every `*.yaml`, `*.yml` and `*.json` file under the folder (recursively)
//! is read as a stream of YAML documents. The folder is watched with the
//! platform's file notifications (inotify on Linux); a change is acted on
//! once the folder has been quiet for a few milliseconds, so an editor's
//! save or a tool writing many files lands as one change without adding
//! much to the time from save to traffic. Where notifications are not
//! available (some network and container file systems), the folder is
//! polled instead (see `watch`).
//!
//! Only files whose stamp (modification time, size, inode) changed are read
//! again; every file keeps its own parsed, typed objects, and a new view is
//! those objects merged in path order (a later path wins a duplicate key),
//! shared rather than copied. A file that fails to parse is reported with
//! its path and line, and its last good content stays in effect, so a
//! half-saved edit never removes routes. Documents of kinds Tollgate does
//! not read are skipped with one log line per file and kind. Secrets
//! nothing references are kept as their identity only and left out of the
//! view (see `held`).

mod error;
mod held;
mod read;
mod watch;

use read::{Stamp, read_file, scan};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Instant;
use tollgate_compile::resources::Resources;
use tracing::debug;

pub use error::FileError;
pub use read::parse_documents;

/// A folder of manifests, with the last good objects of each file.
#[derive(Debug)]
pub struct FileProvider {
    root: PathBuf,
    stamps: BTreeMap<PathBuf, Stamp>,
    files: BTreeMap<PathBuf, Resources>,
    /// Per file, the Secrets cut down to their identity (not referenced
    /// when last looked at).
    stripped: BTreeMap<PathBuf, BTreeSet<String>>,
    skipped_logged: BTreeSet<(PathBuf, String)>,
}

impl FileProvider {
    /// A provider for `root`; nothing is read until [`FileProvider::run`]
    /// or [`FileProvider::load`].
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FileProvider {
            root: root.into(),
            stamps: BTreeMap::new(),
            files: BTreeMap::new(),
            stripped: BTreeMap::new(),
            skipped_logged: BTreeSet::new(),
        }
    }

    /// Reads every changed file once and returns the resulting objects and
    /// the problems found. Files that failed keep their last good objects.
    pub fn load(&mut self) -> (Resources, Vec<FileError>) {
        let (_, errors) = self.refresh();
        (self.resources(), errors)
    }

    /// Reads the files whose stamp changed and forgets deleted ones.
    /// Returns whether the objects in effect may have changed (a file was
    /// deleted or a new version read cleanly), and the problems found.
    fn refresh(&mut self) -> (bool, Vec<FileError>) {
        let started = Instant::now();
        let current = match scan(&self.root) {
            Ok(files) => files,
            Err(source) => {
                let path = self.root.display().to_string();
                return (false, vec![FileError::Read { path, source }]);
            }
        };
        let scanned_us = started.elapsed().as_micros() as u64;
        let before = self.files.len();
        self.stamps.retain(|p, _| current.contains_key(p));
        self.files.retain(|p, _| current.contains_key(p));
        self.stripped.retain(|p, _| current.contains_key(p));
        let mut changed = self.files.len() != before;
        let mut errors = Vec::new();
        let mut read = 0usize;
        for (path, stamp) in current {
            if self.stamps.get(&path) == Some(&stamp) {
                continue;
            }
            self.stamps.insert(path.clone(), stamp);
            read += 1;
            match read_file(&path, &mut self.skipped_logged) {
                Ok(objects) => {
                    self.stripped.remove(&path);
                    self.files.insert(path, objects);
                    changed = true;
                }
                Err(e) => errors.push(e),
            }
        }
        debug!(
            scanned_us,
            files = read,
            elapsed_us = started.elapsed().as_micros() as u64,
            "manifest folder scanned and changed files read"
        );
        (changed, errors)
    }

    /// The objects in effect: every file's, in path order, with only the
    /// referenced Secrets.
    fn resources(&mut self) -> Resources {
        let started = Instant::now();
        let merged = self.merge();
        let resources = self.hold_wanted_secrets(merged);
        debug!(
            elapsed_us = started.elapsed().as_micros() as u64,
            "resources assembled"
        );
        resources
    }

    /// Every file's objects, in path order (a later path wins a duplicate).
    fn merge(&self) -> Resources {
        let mut resources = Resources::default();
        for objects in self.files.values() {
            resources.extend_from(objects);
        }
        resources
    }
}

#[cfg(test)]
mod tests;
