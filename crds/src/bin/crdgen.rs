//! `crdgen`: writes the CRD YAML under `crds/generated/` (`make crds`).
//!
//! Usage: `cargo run -p tollgate-crds --features generate --bin crdgen [DIR]`.
//! Writes every file of `tollgate_crds::generate::all()` into DIR (default
//! the crate's `generated/` folder) and removes generated YAML files that no
//! longer correspond to a CRD, so the folder always equals the code.

use std::collections::BTreeSet;
use std::error::Error;
use std::path::{Path, PathBuf};

fn main() -> Result<(), Box<dyn Error>> {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("generated"));
    let files = tollgate_crds::generate::all()?;
    let mut wanted = BTreeSet::new();
    for file in &files {
        let path = dir.join(&file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let current = std::fs::read_to_string(&path).ok();
        if current.as_deref() != Some(file.yaml.as_str()) {
            std::fs::write(&path, &file.yaml)?;
            println!("wrote {}", path.display());
        }
        wanted.insert(path);
    }
    remove_stale(&dir, &wanted)?;
    println!("{} CRDs current in {}", files.len(), dir.display());
    Ok(())
}

/// Deletes `*.yaml` files under `dir` (one level of subfolders) not in `wanted`.
fn remove_stale(dir: &Path, wanted: &BTreeSet<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            remove_stale(&path, wanted)?;
        } else if path.extension().is_some_and(|e| e == "yaml") && !wanted.contains(&path) {
            std::fs::remove_file(&path)?;
            println!("removed {}", path.display());
        }
    }
    Ok(())
}
