//! The few settings a connection reads, copied when it is accepted.
//!
//! The snapshot's `Settings` has grown with every feature (telemetry,
//! retries, Redis, client addresses, certificate headers) to several
//! hundred bytes and a few heap allocations; a clone of it in every
//! connection's context cost about 1.5 KiB per idle keep-alive connection.
//! A connection needs only its limits and timeouts: this is them, `Copy`,
//! a few words.

use std::time::Duration;
use tollgate_snapshot::Settings;

/// Limits and timeouts of one connection, as they were when it was
/// accepted (a snapshot swap changes them for new connections only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ConnSettings {
    /// Time for a request head, from its first byte; 0 = none.
    pub(crate) request_header_timeout_ms: u64,
    /// Time a connection may sit with nothing in flight; 0 = none.
    pub(crate) idle_timeout_ms: u64,
    /// Time to open an upstream connection (TLSRoute relays).
    pub(crate) upstream_connect_timeout_ms: u64,
    /// Head size limit; 0 = hyper's default.
    pub(crate) max_request_header_bytes: u32,
    /// Header count limit; 0 = hyper's default.
    pub(crate) max_request_headers: u32,
    /// HTTP/2 streams per connection; 0 = the default.
    pub(crate) max_concurrent_streams: u32,
    /// Connections per socket; 0 = no limit.
    pub(crate) max_connections: u32,
    /// A tunnel's idle timeout; `None` = none.
    tunnel_idle_timeout: Option<Duration>,
}

impl ConnSettings {
    /// How long a WebSocket or other tunnel may stay silent both ways.
    pub(crate) fn tunnel_idle_timeout(&self) -> Option<Duration> {
        self.tunnel_idle_timeout
    }
}

impl From<&Settings> for ConnSettings {
    fn from(s: &Settings) -> ConnSettings {
        ConnSettings {
            request_header_timeout_ms: s.request_header_timeout_ms,
            idle_timeout_ms: s.idle_timeout_ms,
            upstream_connect_timeout_ms: s.upstream_connect_timeout_ms,
            max_request_header_bytes: s.max_request_header_bytes,
            max_request_headers: s.max_request_headers,
            max_concurrent_streams: s.max_concurrent_streams,
            max_connections: s.max_connections,
            tunnel_idle_timeout: s.tunnel_idle_timeout(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The copy is a few words, whatever the snapshot's settings hold.
    #[test]
    fn a_connection_keeps_a_few_words() {
        let mut settings = Settings::default();
        settings.client_address.trusted_cidrs = vec!["10.0.0.0/8".into(); 100];
        settings.tunnel_idle_timeout_ms = Some(0);
        let copied = ConnSettings::from(&settings);
        assert!(std::mem::size_of::<ConnSettings>() <= 64);
        assert_eq!(copied.tunnel_idle_timeout(), None);
        assert_eq!(
            copied.request_header_timeout_ms,
            settings.request_header_timeout_ms
        );
    }
}
