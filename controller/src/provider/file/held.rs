//! Which Secrets the file provider keeps whole.
//!
//! A manifest folder can hold many Secrets nothing points at (an export of
//! a namespace, a shared folder of credentials). As the Kubernetes provider
//! does, the file provider keeps whole only the Secrets the objects
//! reference ([`crate::provider::kube::referenced`]): every other Secret is
//! kept as its identity alone (namespace, name, labels, which an
//! AuthPolicy's `apiKeyAuth.selector` reads) and left out of the view, so
//! its data is freed as soon as the file is read.
//!
//! # Guarantees
//!
//! The view never carries a Secret without its data: when an edit makes a
//! Secret referenced whose copy was cut down to its identity, the file that
//! holds it is read again before the view is sent.

use super::FileProvider;
use super::read::read_file;
use crate::provider::kube::referenced::{referenced_secrets, selected_secrets, selects_secrets};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use tollgate_compile::resources::Resources;
use tracing::{debug, warn};

/// The keys (`namespace/name`) of the Secrets `resources` reference by name
/// or pick by label.
pub(super) fn wanted_secrets(resources: &Resources) -> BTreeSet<String> {
    let mut wanted = referenced_secrets(resources);
    if selects_secrets(resources) {
        let empty = BTreeMap::new();
        let candidates = resources.secrets.values().filter_map(|s| {
            let meta = &s.metadata;
            let labels = meta.labels.as_ref().unwrap_or(&empty);
            Some((meta.namespace.as_deref()?, meta.name.as_deref()?, labels))
        });
        wanted.extend(selected_secrets(resources, candidates));
    }
    wanted
        .into_iter()
        .map(|(ns, name)| format!("{ns}/{name}"))
        .collect()
}

/// A Secret cut down to what deciding whether it is wanted reads.
fn identity_of(secret: &Secret) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: secret.metadata.name.clone(),
            namespace: secret.metadata.namespace.clone(),
            labels: secret.metadata.labels.clone(),
            ..ObjectMeta::default()
        },
        ..Secret::default()
    }
}

impl FileProvider {
    /// The merged view with only the wanted Secrets, whole: files holding
    /// a wanted Secret as its identity are read again first, then every
    /// unwanted Secret still held whole is cut down to its identity.
    pub(super) fn hold_wanted_secrets(&mut self, mut merged: Resources) -> Resources {
        let mut wanted = wanted_secrets(&merged);
        let reread: Vec<PathBuf> = self
            .stripped
            .iter()
            .filter(|(_, keys)| keys.iter().any(|k| wanted.contains(k)))
            .map(|(path, _)| path.clone())
            .collect();
        if !reread.is_empty() {
            for path in reread {
                self.stripped.remove(&path);
                match read_file(&path, &mut self.skipped_logged) {
                    Ok(objects) => {
                        debug!(file = %path.display(), "read again for a Secret now referenced");
                        self.files.insert(path, objects);
                    }
                    // Changed since its last good read and broken now:
                    // the Secret stays out until the file is fixed.
                    Err(e) => {
                        warn!(error = %e, "a file holding a referenced Secret cannot be read again")
                    }
                }
            }
            merged = self.merge();
            wanted = wanted_secrets(&merged);
        }
        for (path, objects) in &mut self.files {
            for (key, secret) in &mut objects.secrets {
                let stripped = self.stripped.entry(path.clone()).or_default();
                if !wanted.contains(key) && !stripped.contains(key) {
                    *secret = Arc::new(identity_of(secret));
                    stripped.insert(key.clone());
                }
            }
        }
        self.stripped.retain(|_, keys| !keys.is_empty());
        merged.secrets.retain(|key, _| wanted.contains(key));
        merged
    }
}

#[cfg(test)]
mod tests;
