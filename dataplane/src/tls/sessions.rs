//! Session resumption state shared by every TLS listener of the process.
//!
//! A resumed handshake skips the certificate and its signature: the part of
//! a full handshake that costs the most. Both ways of resuming need state
//! that outlives a snapshot: TLS 1.3 tickets (and TLS 1.2 tickets) are
//! sealed with the ticketer's keys, which rotate every six hours and accept
//! the previous key for as long again; TLS 1.2 session IDs are looked up in
//! the cache. If each snapshot built its own, every swap (a route edit,
//! an endpoint change) would force every client into a full handshake, so
//! both are made once per process and handed to every `ServerConfig`.

use rustls::server::{ProducesTickets, ServerSessionMemoryCache, StoresServerSessions};
use std::sync::{Arc, OnceLock};

/// Sessions remembered for TLS 1.2 session-ID resumption.
const CACHE_SIZE: usize = 16 * 1024;

/// The process's ticketer and session cache.
#[derive(Clone, Debug)]
pub(crate) struct TlsSessions {
    /// `None` when ticket keys could not be made: resumption then uses the
    /// cache only.
    pub(crate) ticketer: Option<Arc<dyn ProducesTickets>>,
    pub(crate) cache: Arc<dyn StoresServerSessions>,
}

/// The process-wide sessions, made on first use.
pub(crate) fn sessions() -> &'static TlsSessions {
    static SESSIONS: OnceLock<TlsSessions> = OnceLock::new();
    SESSIONS.get_or_init(|| {
        let ticketer = match rustls::crypto::aws_lc_rs::Ticketer::new() {
            Ok(ticketer) => Some(ticketer),
            Err(error) => {
                tracing::warn!(%error, "no TLS session tickets: ticket keys could not be made");
                None
            }
        };
        TlsSessions {
            ticketer,
            cache: ServerSessionMemoryCache::new(CACHE_SIZE),
        }
    })
}
