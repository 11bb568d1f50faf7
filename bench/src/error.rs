//! The harness's error type.
//!
//! Every failure of the harness ends here: a process that did not start or
//! never became ready, a load generator whose output could not be read, a
//! result file that could not be written. The binary turns them into one
//! message; a scenario never panics on them.

use std::path::PathBuf;

/// Why a benchmark step failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Reading or writing a file, or talking to a socket, failed.
    #[error("{what}: {source}")]
    Io {
        /// What the harness was doing.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A process did not answer on its port in time.
    #[error("{name} exited or did not become ready within {seconds} s (log: {})", log.display())]
    NotReady {
        /// The process's label.
        name: String,
        /// How long the harness waited.
        seconds: u64,
        /// Its log file.
        log: PathBuf,
    },
    /// A load generator's output could not be understood.
    #[error("cannot read the output of {tool}: {detail}")]
    ToolOutput {
        /// The tool (`wrk`).
        tool: String,
        /// What was wrong.
        detail: String,
    },
    /// Serialising results or configs failed.
    #[error("serialising {what}: {source}")]
    Json {
        /// What was being serialised.
        what: String,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// Drawing a chart failed.
    #[error("drawing {chart}: {detail}")]
    Chart {
        /// The chart's file name.
        chart: String,
        /// The plotting library's message.
        detail: String,
    },
    /// An HTTP request of the harness itself failed.
    #[error("{what}: {detail}")]
    Http {
        /// What the harness was doing.
        what: String,
        /// The error's text.
        detail: String,
    },
}

impl BenchError {
    /// An [`BenchError::Io`] saying what was being done.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BenchError {
        let what = what.into();
        move |source| BenchError::Io { what, source }
    }
}
