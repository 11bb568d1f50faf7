//! TLSRoutes at run time: a relay socket's SNI tables, built once per
//! snapshot, answering "which backend endpoint does this connection go to".
//!
//! `Runtime::build` turns each socket whose listeners carry TLSRoutes into
//! a [`SocketRelay`]. A connection is routed once, when its ClientHello is
//! read (`server/passthrough.rs`) or its handshake done: the listener by
//! SNI, the route by SNI within it (exact, then the longest wildcard), the
//! backend by the route's weights, the endpoint round robin. After that the
//! connection holds only its two sockets, so a later snapshot never cuts
//! it.

use crate::upstream::{BackendSet, Balancer};
use std::net::SocketAddr;
use std::sync::Arc;
use tollgate_snapshot::{HostMatch, Socket, TlsMode, TlsRoutes};

/// The TLSRoutes of one socket.
#[derive(Debug)]
pub(crate) struct SocketRelay {
    /// Passthrough or Terminate, the same for every listener.
    pub(crate) mode: TlsMode,
    listeners: Box<[ListenerRelay]>,
}

/// One TLS listener's SNI table.
#[derive(Debug)]
struct ListenerRelay {
    name: Arc<str>,
    hostname: HostMatch,
    routes: Box<[RelayRoute]>,
}

/// One SNI entry with its balancer.
#[derive(Debug)]
pub(crate) struct RelayRoute {
    /// Source name, `tlsroute/<ns>/<name>`.
    pub(crate) name: Arc<str>,
    hostname: HostMatch,
    /// Backend indices into `Snapshot::backends`, `None` when invalid.
    backends: Box<[Option<usize>]>,
    balancer: Balancer,
}

/// Why a connection has no endpoint to go to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NoRoute {
    /// No listener or SNI entry covers the name (or no SNI was sent).
    UnknownSni,
    /// The route chose an invalid reference, or a backend without ready
    /// endpoints.
    NoBackend,
}

impl NoRoute {
    /// The `result` label of the relay counter.
    pub(crate) fn label(self) -> &'static str {
        match self {
            NoRoute::UnknownSni => "unknown_sni",
            NoRoute::NoBackend => "no_backend",
        }
    }
}

impl SocketRelay {
    /// The relay of `socket`, or `None` when its listeners serve HTTP.
    /// (`Snapshot::validate` made sure all or none carry TLSRoutes, in
    /// one mode.)
    pub(crate) fn build(socket: &Socket) -> Option<SocketRelay> {
        let mode = socket.listeners.first()?.tls_routes.as_ref()?.mode;
        let listeners = socket
            .listeners
            .iter()
            .filter_map(|l| Some((l, l.tls_routes.as_ref()?)))
            .map(|(l, routes)| ListenerRelay {
                name: l.name.as_str().into(),
                hostname: l.hostname.clone(),
                routes: build_routes(routes),
            })
            .collect();
        Some(SocketRelay { mode, listeners })
    }

    /// The route for `sni` on the listener that covers it most
    /// specifically (Passthrough: nothing else has chosen a listener).
    pub(crate) fn find(&self, sni: Option<&str>) -> Option<&RelayRoute> {
        let sni = normalize(sni?);
        let listener = self
            .listeners
            .iter()
            .filter_map(|l| Some((l.hostname.rank(&sni)?, l)))
            .max_by_key(|(rank, _)| *rank)?
            .1;
        listener.find(&sni)
    }

    /// The route for `sni` on the listener named `listener` (Terminate:
    /// the handshake chose the listener and its certificate).
    pub(crate) fn find_on(&self, listener: &str, sni: Option<&str>) -> Option<&RelayRoute> {
        let sni = normalize(sni?);
        let found = self.listeners.iter().find(|l| &*l.name == listener)?;
        found.find(&sni)
    }
}

impl ListenerRelay {
    fn find(&self, sni: &str) -> Option<&RelayRoute> {
        self.routes
            .iter()
            .filter_map(|r| Some((r.hostname.rank(sni)?, r)))
            .max_by_key(|(rank, _)| *rank)
            .map(|(_, r)| r)
    }
}

impl RelayRoute {
    /// The endpoint address for the next connection: a backend by
    /// weight, then its next endpoint.
    ///
    /// # Errors
    ///
    /// [`NoRoute::NoBackend`] when the weights choose nothing, an invalid
    /// reference, or a backend without ready endpoints.
    pub(crate) fn select(&self, backends: &BackendSet) -> Result<SocketAddr, NoRoute> {
        self.balancer
            .select()
            .and_then(|i| self.backends.get(i).copied().flatten())
            .and_then(|b| backends.get(b))
            .and_then(|b| b.select())
            .map(|e| e.address())
            .ok_or(NoRoute::NoBackend)
    }
}

fn build_routes(table: &TlsRoutes) -> Box<[RelayRoute]> {
    table
        .routes
        .iter()
        .map(|r| RelayRoute {
            name: r.name.as_str().into(),
            hostname: r.hostname.clone(),
            backends: r.backends.iter().map(|b| b.backend).collect(),
            balancer: Balancer::new(r.backends.iter().map(|b| b.weight)),
        })
        .collect()
}

/// SNI as compared: lowercase, without a trailing dot.
fn normalize(sni: &str) -> String {
    sni.strip_suffix('.').unwrap_or(sni).to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tollgate_snapshot::{Listener, SniBackend, SniRoute};

    fn listener(host: &str, routes: &[(&str, &str)]) -> Listener {
        Listener {
            name: format!("gateway/ns/gw/listener/{host}"),
            hostname: HostMatch::parse(host),
            virtual_hosts: Vec::new(),
            tls: None,
            tls_routes: Some(TlsRoutes {
                mode: TlsMode::Passthrough,
                routes: routes
                    .iter()
                    .map(|(h, name)| SniRoute {
                        name: format!("tlsroute/ns/{name}"),
                        hostname: HostMatch::parse(h),
                        backends: vec![SniBackend {
                            backend: None,
                            weight: 1,
                        }],
                    })
                    .collect(),
            }),
        }
    }

    /// The most specific listener decides, then the most specific entry
    /// in it; no SNI, or a name no entry covers, finds nothing (no
    /// fallback: the bytes are someone else's TLS).
    #[test]
    fn sni_picks_listener_then_route() {
        let socket = Socket {
            address: "127.0.0.1".into(),
            bind_port: 443,
            port: 443,
            listeners: vec![
                listener("a.example.com", &[("a.example.com", "exact")]),
                listener(
                    "*.example.com",
                    &[("*.example.com", "wild"), ("b.example.com", "b")],
                ),
            ],
            proxy_protocol: false,
        };
        let relay = SocketRelay::build(&socket).unwrap();
        let found = |sni: Option<&str>| relay.find(sni).map(|r| r.name.to_string());
        assert_eq!(found(Some("A.example.com.")).unwrap(), "tlsroute/ns/exact");
        assert_eq!(found(Some("b.example.com")).unwrap(), "tlsroute/ns/b");
        assert_eq!(found(Some("c.example.com")).unwrap(), "tlsroute/ns/wild");
        assert_eq!(found(Some("example.org")), None);
        assert_eq!(found(None), None);
        let on = relay.find_on(
            "gateway/ns/gw/listener/*.example.com",
            Some("a.example.com"),
        );
        assert_eq!(on.unwrap().name.to_string(), "tlsroute/ns/wild");
        let route = relay.find(Some("b.example.com")).unwrap();
        assert_eq!(
            route.select(&BackendSet::default()),
            Err(NoRoute::NoBackend)
        );
    }
}
