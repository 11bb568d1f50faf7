//! The one error type of the test harness.
//!
//! Harness failures are test-setup failures, so every variant says what to
//! do about it (build the binaries, read the process log) rather than only
//! what went wrong.

use std::path::PathBuf;
use std::time::Duration;

/// Why a harness step failed.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// A workspace binary has not been built.
    #[error("binary {name} not found at {path}; run `cargo build --bins` first")]
    BinaryMissing {
        /// The binary's name.
        name: String,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// Creating a log file or starting a process failed.
    #[error("starting {what}")]
    Spawn {
        /// The program or file involved.
        what: String,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A process exited while the test still needed it.
    #[error("{name} exited early ({status}); log {log}:\n{tail}")]
    Exited {
        /// The process name.
        name: String,
        /// Its exit status.
        status: String,
        /// Its log file.
        log: PathBuf,
        /// The last lines of its log.
        tail: String,
    },
    /// A URL did not answer 2xx in time.
    #[error("{url} did not answer 2xx within {timeout:?} (last: {last})")]
    Timeout {
        /// The URL polled.
        url: String,
        /// How long was waited.
        timeout: Duration,
        /// The last status or error seen.
        last: String,
    },
    /// A URL or request could not be built.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The HTTP exchange failed.
    #[error("request to {url} failed")]
    Request {
        /// The request URL.
        url: String,
        /// The client error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An answer was not the echo backend's JSON.
    #[error("answer is not echo JSON: {0}")]
    NotEcho(#[source] serde_json::Error),
    /// Another I/O failure (binding a port, reading a log).
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
