//! Reading the manifest folder: listing files with their stamps, and one
//! file's text into typed objects.

use super::error::FileError;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use tollgate_compile::resources::{Inserted, Resources};
use tracing::info;

/// Identity of a file version: changes when the file is rewritten.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

/// Lists manifest files under `root` with their stamps, sorted by path.
pub(super) fn scan(root: &Path) -> io::Result<BTreeMap<PathBuf, Stamp>> {
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

/// Whether `path` names a file the provider reads: a visible `*.yaml`,
/// `*.yml` or `*.json`.
pub(super) fn is_manifest(path: &Path) -> bool {
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

/// Reads one file into its objects. The file is taken whole or not at
/// all: one bad document rejects this version of the file. Kinds Tollgate
/// does not read are logged once per file and kind (`logged` remembers).
pub(super) fn read_file(
    path: &Path,
    logged: &mut BTreeSet<(PathBuf, String)>,
) -> Result<Resources, FileError> {
    let text = std::fs::read_to_string(path).map_err(|source| FileError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let docs = parse_documents(&text).map_err(|(line, message)| FileError::Yaml {
        path: path.display().to_string(),
        line,
        message,
    })?;
    let mut objects = Resources::default();
    let mut skipped = Vec::new();
    for (i, doc) in docs.into_iter().enumerate() {
        match objects.insert_document(doc) {
            Ok(Inserted::Stored { .. }) => {}
            Ok(Inserted::Skipped { api_version, kind }) => skipped.push((api_version, kind)),
            Err(e) => {
                return Err(FileError::Document {
                    path: path.display().to_string(),
                    index: i + 1,
                    message: e.to_string(),
                });
            }
        }
    }
    for (api_version, kind) in skipped {
        if logged.insert((path.to_path_buf(), kind.clone())) {
            info!(file = %path.display(), %api_version, %kind, "skipping a kind Tollgate does not read");
        }
    }
    Ok(objects)
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
