//! Application logs: `tracing` events, formatted as text or JSON lines on
//! stderr, through a filter that can be changed while the process runs.
//!
//! Both binaries set logs up here, once. The filter starts from `RUST_LOG`
//! (default `info`) and is replaced through [`LogControl::set`], which the
//! admin ports expose as `PUT /log-level` (as kube-rs controller-rs does):
//! turning on `debug` for one module during an incident needs no restart.

use std::sync::Arc;
use thiserror::Error;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("log format {other:?}: use text or json")),
        }
    }
}

/// Why the log filter could not be changed.
#[derive(Debug, Error)]
pub enum LogLevelError {
    /// The directive does not parse (`RUST_LOG` syntax).
    #[error("invalid log filter {filter:?}: {source}")]
    Invalid {
        /// What was given.
        filter: String,
        /// The parser's complaint.
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    /// The subscriber is gone (the process is shutting down).
    #[error("the log filter can no longer be changed")]
    Gone,
}

/// Changes the log filter of the running process.
#[derive(Clone)]
pub struct LogControl {
    handle: Option<Arc<reload::Handle<EnvFilter, Registry>>>,
    current: Arc<std::sync::Mutex<String>>,
}

impl std::fmt::Debug for LogControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogControl")
            .field("current", &self.current())
            .finish()
    }
}

impl Default for LogControl {
    /// A control with no subscriber behind it (tests, libraries): `set`
    /// validates and remembers the filter but changes nothing.
    fn default() -> Self {
        LogControl {
            handle: None,
            current: Arc::new(std::sync::Mutex::new(String::from("info"))),
        }
    }
}

impl LogControl {
    /// The filter in force, as last set.
    pub fn current(&self) -> String {
        self.current.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Replaces the filter with `filter` (`RUST_LOG` syntax, e.g.
    /// `info,tollgate_controller::writer=debug`).
    ///
    /// # Errors
    ///
    /// [`LogLevelError::Invalid`] when `filter` does not parse; the old
    /// filter stays.
    pub fn set(&self, filter: &str) -> Result<(), LogLevelError> {
        let filter = filter.trim();
        let parsed = EnvFilter::try_new(filter).map_err(|source| LogLevelError::Invalid {
            filter: filter.to_string(),
            source,
        })?;
        if let Some(handle) = &self.handle {
            handle.reload(parsed).map_err(|_| LogLevelError::Gone)?;
        }
        if let Ok(mut current) = self.current.lock() {
            *current = filter.to_string();
        }
        Ok(())
    }
}

/// Installs the process's log subscriber; returns the control of its
/// filter. Call once, first thing in `main`; a second call keeps the first
/// subscriber and returns a control that changes nothing.
pub fn init_logs(format: LogFormat) -> LogControl {
    let initial = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_string());
    let filter = EnvFilter::try_new(&initial).unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    let registry = tracing_subscriber::registry().with(filter);
    // Colours only for a terminal: in a file or a log shipper they are noise.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let installed = match format {
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(ansi)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    LogControl {
        handle: installed.is_ok().then(|| Arc::new(handle)),
        current: Arc::new(std::sync::Mutex::new(initial)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bad filter is refused and the old one stays; a good one is kept.
    #[test]
    fn set_validates_and_remembers() {
        let control = LogControl::default();
        assert!(matches!(
            control.set("info,[unclosed"),
            Err(LogLevelError::Invalid { .. })
        ));
        assert_eq!(control.current(), "info");
        assert!(control.set(" debug,hyper=warn ").is_ok());
        assert_eq!(control.current(), "debug,hyper=warn");
    }
}
