//! Providers: where the objects `compile` reads come from.
//!
//! A provider keeps a complete, current [`Resources`] and announces every
//! change through a `watch` channel. The channel holds `None` until the
//! provider has read everything once, so nothing downstream ever compiles a
//! half-listed view. The file provider reads a folder of YAML manifests; the
//! Kubernetes provider (watching an API server) implements the same shape.

pub mod file;
pub mod kube;

use std::sync::Arc;
use tokio::sync::watch;
use tollgate_compile::resources::Resources;

/// The latest complete view of the objects, `None` until the first full read.
pub type ResourcesRx = watch::Receiver<Option<Arc<Resources>>>;

/// The sending side a provider owns.
pub type ResourcesTx = watch::Sender<Option<Arc<Resources>>>;
