//! The router: finds the route for a request on one socket.
//!
//! Built once per snapshot (off the request path) from a [`Socket`]; `find`
//! picks the listener by Host, the virtual host inside it, then the first
//! route match in precedence order. Cost does not grow with the number of
//! routes: hosts are a map plus wildcard suffixes, paths a map for Exact, a
//! map of prefixes looked up at each `/` for PathPrefix and a regex set for
//! RegularExpression. Memory is kept to a few hundred bytes per route: the
//! maps stay short lists until they grow (see `table`), since most virtual
//! hosts carry one or two matches.

mod conditions;
mod error;
mod host;
#[cfg(test)]
mod linear;
mod path;
mod prefix;
mod request;
mod table;

pub(crate) use conditions::ValueMatcher;
pub use error::RouterError;
pub use request::{Found, RequestView};

use host::HostIndex;
use path::PathIndex;

use std::borrow::Cow;
use tollgate_snapshot::{Listener, Socket};

/// The routing index of one socket.
#[derive(Debug)]
pub struct SocketRouter {
    /// Listener hostname → position in `listeners`.
    hosts: HostIndex<u32>,
    listeners: Box<[ListenerIndex]>,
}

/// One listener: virtual-host hostname → that virtual host's path index.
#[derive(Debug)]
struct ListenerIndex {
    vhosts: HostIndex<u32>,
    paths: Box<[PathIndex]>,
}

impl ListenerIndex {
    fn build(listener: &Listener) -> Result<Self, RouterError> {
        let mut vhosts = HostIndex::default();
        let mut paths = Vec::with_capacity(listener.virtual_hosts.len());
        for (i, vhost) in (0..).zip(&listener.virtual_hosts) {
            vhosts.insert(&vhost.hostname, i);
            paths.push(PathIndex::build(&listener.name, &vhost.matches)?);
        }
        vhosts.shrink_to_fit();
        Ok(ListenerIndex {
            vhosts,
            paths: paths.into_boxed_slice(),
        })
    }
}

impl SocketRouter {
    /// Indexes a socket's listeners, virtual hosts and matches.
    ///
    /// # Errors
    ///
    /// [`RouterError`] when a regular expression cannot be compiled.
    pub fn build(socket: &Socket) -> Result<SocketRouter, RouterError> {
        let mut hosts = HostIndex::default();
        let mut listeners = Vec::with_capacity(socket.listeners.len());
        for (i, listener) in (0..).zip(&socket.listeners) {
            hosts.insert(&listener.hostname, i);
            listeners.push(ListenerIndex::build(listener)?);
        }
        hosts.shrink_to_fit();
        Ok(SocketRouter {
            hosts,
            listeners: listeners.into_boxed_slice(),
        })
    }

    /// Finds the route for a request, or `None` (the caller answers 404).
    ///
    /// The host is expected lowercase and without port; an uppercase host or
    /// a trailing dot (`example.com.`) is tolerated. An IPv6 literal such as
    /// `[::1]` is an ordinary string here and can only match `*` listeners
    /// and virtual hosts (or an exact hostname spelled the same way).
    ///
    /// # Guarantees
    ///
    /// The result equals testing the most specific listener's most specific
    /// virtual host's matches one by one in snapshot order (the property
    /// tests check this against such a linear router). Once a listener and
    /// virtual host are chosen there is no fall-through to less specific
    /// ones. The work is a few map lookups per host label and path segment
    /// plus the conditions of the candidates on the path, independent of
    /// the number of routes (regex paths run as one set per virtual host).
    pub fn find<'a>(&'a self, request: &RequestView<'_>) -> Option<Found<'a>> {
        let host = host_key(request.host);
        let li = usize::try_from(*self.hosts.get(&host)?).ok()?;
        let listener = self.listeners.get(li)?;
        let vi = usize::try_from(*listener.vhosts.get(&host)?).ok()?;
        listener.paths.get(vi)?.find(li, request)
    }
}

impl SocketRouter {
    /// The index of the listener `host` selects, as [`SocketRouter::find`]
    /// would choose it; `None` when no listener covers `host`.
    pub fn listener_for(&self, host: &str) -> Option<usize> {
        usize::try_from(*self.hosts.get(&host_key(host))?).ok()
    }
}

/// The form of a Host used for lookups: lowercase, without a trailing dot.
fn host_key(host: &str) -> Cow<'_, str> {
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    }
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
