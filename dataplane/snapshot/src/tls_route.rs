//! TLSRoutes on a `protocol: TLS` listener: the table of SNI hostnames to
//! weighted backends the data plane relays connections to.
//!
//! A TLS listener serves no HTTP: a connection is routed once, by the SNI
//! of its ClientHello, and then relayed as bytes. In `Passthrough` mode the
//! gateway never decrypts (the client talks TLS to the backend); in
//! `Terminate` mode the listener's certificates (`Listener::tls`) end TLS
//! and the plaintext goes to the backend over TCP. Backend indices point
//! into `Snapshot::backends`, shared with HTTPRoutes.

use crate::listener::HostMatch;
use serde::{Deserialize, Serialize};

/// What a TLS listener does with the TLS it receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TlsMode {
    /// Relay the encrypted bytes untouched; the backend terminates TLS.
    Passthrough,
    /// Terminate TLS with the listener's certificates; relay plaintext.
    Terminate,
}

/// The TLSRoutes of one TLS listener.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsRoutes {
    /// Passthrough or Terminate; all listeners of a socket share it.
    pub mode: TlsMode,
    /// One entry per effective SNI hostname, most specific first; at most
    /// one entry per hostname (the controller resolves conflicts).
    #[serde(default)]
    pub routes: Vec<SniRoute>,
}

/// Where connections for one SNI hostname go.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SniRoute {
    /// Source name, `tlsroute/<ns>/<name>`.
    pub name: String,
    /// The SNI hostname (exact or wildcard) this entry serves.
    pub hostname: HostMatch,
    /// Weighted backends; a connection picks one per the weights.
    #[serde(default)]
    pub backends: Vec<SniBackend>,
}

/// One weighted backend of an [`SniRoute`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SniBackend {
    /// Index into `Snapshot::backends`; `None` when the reference is
    /// invalid: a connection that picks it is closed.
    pub backend: Option<usize>,
    /// Relative weight; 0 means never chosen.
    pub weight: u32,
}

impl TlsRoutes {
    /// The entry for `sni` (lowercase, no trailing dot): an exact hostname,
    /// else the longest matching wildcard, else a `*` entry.
    pub fn find(&self, sni: &str) -> Option<&SniRoute> {
        self.routes
            .iter()
            .filter_map(|r| Some((r.hostname.rank(sni)?, r)))
            .max_by_key(|(rank, _)| *rank)
            .map(|(_, r)| r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(hosts: &[&str]) -> TlsRoutes {
        TlsRoutes {
            mode: TlsMode::Passthrough,
            routes: hosts
                .iter()
                .map(|h| SniRoute {
                    name: format!("tlsroute/ns/{h}"),
                    hostname: HostMatch::parse(h),
                    backends: Vec::new(),
                })
                .collect(),
        }
    }

    /// Exact beats the longest wildcard, which beats a shorter one and
    /// `*`; a name nothing covers finds nothing.
    #[test]
    fn exact_then_longest_wildcard() {
        let t = table(&["*.example.com", "a.b.example.com", "*.b.example.com"]);
        let found = |sni: &str| t.find(sni).map(|r| r.hostname.to_string());
        assert_eq!(found("a.b.example.com").as_deref(), Some("a.b.example.com"));
        assert_eq!(found("c.b.example.com").as_deref(), Some("*.b.example.com"));
        assert_eq!(found("c.example.com").as_deref(), Some("*.example.com"));
        assert_eq!(found("example.com"), None);
        assert_eq!(found("other.test"), None);
        let any = table(&["*", "a.test"]);
        assert_eq!(
            any.find("b.test")
                .map(|r| r.hostname.to_string())
                .as_deref(),
            Some("*")
        );
    }
}
