//! Sockets, Gateway listeners and virtual hosts.
//!
//! A request arriving on a [`Socket`] is matched against that socket's
//! listeners only, whatever port its Host header names: first the listener
//! whose hostname matches most specifically, then the virtual host inside it,
//! then the route matches of that virtual host in precedence order.

use crate::route::RouteMatch;
use crate::tls::ListenerTls;
use crate::tls_route::TlsRoutes;
use serde::{Deserialize, Serialize};
use std::fmt;

/// One bound address and port, shared by every listener of the Gateway on it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Socket {
    /// IP address to bind (from the Gateway's `spec.addresses`, else the
    /// controller's `--bind-address`).
    pub address: String,
    /// Port to bind: the manifest port plus `--listener-port-offset`.
    pub bind_port: u16,
    /// The port written in the manifest, used for redirects.
    pub port: u16,
    /// Listeners on this socket, most specific hostname first.
    pub listeners: Vec<Listener>,
    /// Every connection starts with a PROXY protocol header (v1 or v2),
    /// whose source address becomes the peer. Connections without one are
    /// refused. Set by the Gateway annotation `tollgate.dev/proxy-protocol`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub proxy_protocol: bool,
}

/// One Gateway listener.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Listener {
    /// Source name, `gateway/<ns>/<name>/listener/<section>`.
    pub name: String,
    /// The listener's hostname (`*` when it has none).
    pub hostname: HostMatch,
    /// Virtual hosts: the attached routes grouped by effective hostname.
    #[serde(default)]
    pub virtual_hosts: Vec<VirtualHost>,
    /// TLS termination (HTTPS listeners); `None` for plain HTTP. The
    /// listeners of one socket are all TLS or all plain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ListenerTls>,
    /// TLSRoutes of a `protocol: TLS` listener, which relays connections
    /// by SNI instead of serving HTTP; `None` on HTTP and HTTPS listeners.
    /// A socket's listeners all have it or none does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_routes: Option<TlsRoutes>,
}

/// The route matches that apply to one effective hostname of a listener.
///
/// The controller merges into each virtual host every route whose hostnames
/// cover it (an exact host also gets the rules of matching wildcard and
/// hostless routes), so the data plane picks one virtual host and never falls
/// through to another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualHost {
    /// The hostname this virtual host serves.
    pub hostname: HostMatch,
    /// Route matches in the Gateway API precedence order: the first that
    /// matches a request wins.
    #[serde(default)]
    pub matches: Vec<RouteMatch>,
}

/// A hostname pattern: any host, one exact host, or a wildcard.
///
/// Serialised as a string: `*`, `foo.example.com` or `*.example.com`.
/// A wildcard matches one or more labels in front of its suffix, never the
/// bare suffix itself (`*.example.com` does not match `example.com`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", from = "String")]
pub enum HostMatch {
    /// Every host.
    Any,
    /// Exactly this host (lowercase, no port).
    Exact(String),
    /// Any host ending in `.<suffix>`; holds the suffix without the dot.
    Wildcard(String),
}

impl HostMatch {
    /// Parses `*`, `*.suffix` or an exact name; lowercases it.
    pub fn parse(s: &str) -> Self {
        let s = s.to_ascii_lowercase();
        if s.is_empty() || s == "*" {
            HostMatch::Any
        } else if let Some(suffix) = s.strip_prefix("*.") {
            HostMatch::Wildcard(suffix.to_string())
        } else {
            HostMatch::Exact(s)
        }
    }

    /// Whether `host` (lowercase, without port) matches this pattern.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostMatch::Any => true,
            HostMatch::Exact(h) => h == host,
            HostMatch::Wildcard(suffix) => host
                .strip_suffix(suffix.as_str())
                .and_then(|head| head.strip_suffix('.'))
                .is_some_and(|head| !head.is_empty()),
        }
    }
}

impl HostMatch {
    /// How specifically this pattern matches `host` (lowercase, no trailing
    /// dot): `None` when it does not; an exact name ranks above every
    /// wildcard, a longer wildcard above a shorter one, `*` lowest. Picks
    /// among listeners or SNI entries for a ClientHello.
    pub fn rank(&self, host: &str) -> Option<usize> {
        match self {
            HostMatch::Exact(h) => (h == host).then_some(usize::MAX),
            HostMatch::Wildcard(suffix) => self.matches(host).then_some(suffix.len() + 1),
            HostMatch::Any => Some(0),
        }
    }
}

impl fmt::Display for HostMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostMatch::Any => f.write_str("*"),
            HostMatch::Exact(h) => f.write_str(h),
            HostMatch::Wildcard(s) => write!(f, "*.{s}"),
        }
    }
}

impl From<HostMatch> for String {
    fn from(h: HostMatch) -> String {
        h.to_string()
    }
}

impl From<String> for HostMatch {
    fn from(s: String) -> HostMatch {
        HostMatch::parse(&s)
    }
}

#[cfg(test)]
mod tests {
    use super::HostMatch;

    /// A wildcard covers one or more labels, never the bare suffix.
    #[test]
    fn wildcard_needs_a_label() {
        let w = HostMatch::parse("*.example.com");
        assert!(w.matches("foo.example.com"));
        assert!(w.matches("a.b.example.com"));
        assert!(!w.matches("example.com"));
        assert!(!w.matches("fooexample.com"));
        assert!(HostMatch::parse("*").matches("anything"));
        assert!(HostMatch::parse("Foo.COM").matches("foo.com"));
    }

    #[test]
    fn round_trips_as_string() {
        for s in ["*", "a.example.com", "*.example.com"] {
            let h: HostMatch = serde_json::from_value(serde_json::json!(s)).unwrap();
            assert_eq!(serde_json::to_value(&h).unwrap(), serde_json::json!(s));
        }
    }
}
