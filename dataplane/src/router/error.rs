//! Why a socket's routes could not be indexed; raised while a runtime is
//! built, never on the request path.

use thiserror::Error;

/// A socket's routes could not be indexed.
#[derive(Debug, Error)]
pub enum RouterError {
    /// A user regular expression does not compile or exceeds the size limit.
    #[error("{at}: invalid regular expression {pattern:?}: {message}")]
    Regex {
        /// Listener or route the regex belongs to.
        at: String,
        /// The pattern.
        pattern: String,
        /// Why it was refused.
        message: String,
    },
    /// A virtual host has more matches than positions fit in 32 bits.
    #[error("{at}: too many route matches in one virtual host")]
    TooManyMatches {
        /// The listener.
        at: String,
    },
}
