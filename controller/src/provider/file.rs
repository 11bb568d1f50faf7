//! The file provider: a folder of YAML manifests as the source of truth.
//!
//! Every `*.yaml`, `*.yml` and `*.json` file under the folder (recursively)
//! is read as a stream of YAML documents. The folder is polled for changes
//! (modification time, size and inode of each file), which works the same
//! on every file system and in containers where inotify is not available;
//! a change is acted on once the folder has been quiet for a short debounce.
//!
//! A file that fails to parse is reported with its path and line, and its
//! last good content stays in effect, so a half-saved edit never removes
//! routes. Documents of kinds Tollgate does not read are skipped with one
//! log line per file and kind.

use super::ResourcesTx;
use crate::resources::{Inserted, Resources};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use thiserror::Error;
use tracing::{info, warn};

/// How often the folder is scanned.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// How long the folder must stay unchanged before a change is applied.
const DEBOUNCE: Duration = Duration::from_millis(100);

/// Why one file could not be used.
#[derive(Debug, Error)]
pub enum FileError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The file is not valid YAML.
    #[error("{path}:{line}: {message}")]
    Yaml {
        /// The file.
        path: String,
        /// 1-based line of the error (0 when unknown).
        line: usize,
        /// What the parser said.
        message: String,
    },
    /// A document is a kind Tollgate reads but does not fit its schema.
    #[error("{path}: document {index}: {message}")]
    Document {
        /// The file.
        path: String,
        /// 1-based index of the document in the file.
        index: usize,
        /// What is wrong with it.
        message: String,
    },
}

/// Identity of a file version: changes when the file is rewritten.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

/// A folder of manifests, with the last good documents of each file.
#[derive(Debug)]
pub struct FileProvider {
    root: PathBuf,
    stamps: BTreeMap<PathBuf, Stamp>,
    documents: BTreeMap<PathBuf, Vec<serde_json::Value>>,
    skipped_logged: BTreeSet<(PathBuf, String)>,
}

impl FileProvider {
    /// A provider for `root`; nothing is read until [`FileProvider::run`]
    /// or [`FileProvider::load`].
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FileProvider {
            root: root.into(),
            stamps: BTreeMap::new(),
            documents: BTreeMap::new(),
            skipped_logged: BTreeSet::new(),
        }
    }

    /// Reads every changed file once and returns the resulting objects and
    /// the problems found. Files that failed keep their last good documents.
    pub fn load(&mut self) -> (Resources, Vec<FileError>) {
        let mut errors = Vec::new();
        let current = match scan(&self.root) {
            Ok(files) => files,
            Err(source) => {
                errors.push(FileError::Read {
                    path: self.root.display().to_string(),
                    source,
                });
                return (self.resources(&mut errors), errors);
            }
        };
        self.stamps.retain(|p, _| current.contains_key(p));
        self.documents.retain(|p, _| current.contains_key(p));
        for (path, stamp) in current {
            if self.stamps.get(&path) == Some(&stamp) {
                continue;
            }
            self.stamps.insert(path.clone(), stamp);
            match read_documents(&path) {
                Ok(docs) => match check_documents(&path, &docs) {
                    Ok(()) => {
                        self.documents.insert(path, docs);
                    }
                    Err(e) => errors.push(e),
                },
                Err(e) => errors.push(e),
            }
        }
        (self.resources(&mut errors), errors)
    }

    fn resources(&mut self, errors: &mut Vec<FileError>) -> Resources {
        let mut resources = Resources::default();
        for (path, docs) in &self.documents {
            for (i, doc) in docs.iter().enumerate() {
                match resources.insert_document(doc.clone()) {
                    Ok(Inserted::Stored { .. }) => {}
                    Ok(Inserted::Skipped { api_version, kind }) => {
                        if self.skipped_logged.insert((path.clone(), kind.clone())) {
                            info!(file = %path.display(), %api_version, %kind, "skipping a kind Tollgate does not read");
                        }
                    }
                    Err(e) => errors.push(FileError::Document {
                        path: path.display().to_string(),
                        index: i + 1,
                        message: e.to_string(),
                    }),
                }
            }
        }
        resources
    }

    /// Scans the folder forever, sending a new [`Resources`] whenever a file
    /// changes. The first value is sent after the first complete read.
    pub async fn run(mut self, tx: ResourcesTx) {
        let mut last_seen: Option<BTreeMap<PathBuf, Stamp>> = None;
        loop {
            let stamps = scan(&self.root).unwrap_or_default();
            if last_seen.as_ref() != Some(&stamps) {
                // Wait until the folder is quiet so an editor's save, or a
                // tool writing many files, lands as one change.
                tokio::time::sleep(DEBOUNCE).await;
                let settled = scan(&self.root).unwrap_or_default();
                if settled != stamps {
                    continue;
                }
                let (resources, errors) = self.load();
                for e in &errors {
                    warn!(error = %e, "manifest not applied; its last good content stays in effect");
                }
                last_seen = Some(settled);
                if tx.send(Some(Arc::new(resources))).is_err() {
                    return;
                }
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}

/// Lists manifest files under `root` with their stamps, sorted by path.
fn scan(root: &Path) -> io::Result<BTreeMap<PathBuf, Stamp>> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let path = entry.path();
            let meta = match std::fs::metadata(&path) {
                Ok(m) => m,
                // Deleted between listing and stat: it is simply gone.
                Err(_) => continue,
            };
            if meta.is_dir() {
                dirs.push(path);
            } else if is_manifest(&path) {
                out.insert(path, stamp(&meta));
            }
        }
    }
    Ok(out)
}

fn is_manifest(path: &Path) -> bool {
    let hidden = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'));
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    !hidden && matches!(ext, "yaml" | "yml" | "json")
}

#[cfg(unix)]
fn stamp(meta: &std::fs::Metadata) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    Stamp {
        modified: meta.modified().ok(),
        len: meta.len(),
        inode: meta.ino(),
    }
}

#[cfg(not(unix))]
fn stamp(meta: &std::fs::Metadata) -> Stamp {
    Stamp {
        modified: meta.modified().ok(),
        len: meta.len(),
        inode: 0,
    }
}

/// Parses a file into its non-empty YAML documents.
fn read_documents(path: &Path) -> Result<Vec<serde_json::Value>, FileError> {
    let text = std::fs::read_to_string(path).map_err(|source| FileError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse_documents(&text).map_err(|(line, message)| FileError::Yaml {
        path: path.display().to_string(),
        line,
        message,
    })
}

/// Parses multi-document YAML; an error carries its 1-based line.
pub fn parse_documents(text: &str) -> Result<Vec<serde_json::Value>, (usize, String)> {
    use serde::Deserialize;
    let mut docs = Vec::new();
    for de in serde_yaml::Deserializer::from_str(text) {
        let value = serde_json::Value::deserialize(de).map_err(|e| {
            let line = e.location().map_or(0, |l| l.line());
            (line, e.to_string())
        })?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}

/// Checks that every document of a file is usable, so a file is taken
/// whole or not at all.
fn check_documents(path: &Path, docs: &[serde_json::Value]) -> Result<(), FileError> {
    let mut scratch = Resources::default();
    for (i, doc) in docs.iter().enumerate() {
        scratch
            .insert_document(doc.clone())
            .map_err(|e| FileError::Document {
                path: path.display().to_string(),
                index: i + 1,
                message: e.to_string(),
            })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
