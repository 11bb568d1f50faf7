//! Why a status, finalizer or Event write failed; retried in a later round.

use thiserror::Error;

/// Why writing something failed (retried in a later round).
#[derive(Debug, Error)]
pub enum WriteError {
    /// The API server refused or could not be reached.
    #[error("API request failed: {0}")]
    Api(#[from] kube::Error),
    /// Another writer kept changing the object between read and write.
    #[error("the object changed under {0} attempts to write it")]
    Conflicts(usize),
}
