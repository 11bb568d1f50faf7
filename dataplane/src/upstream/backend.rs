//! Backends as the request path uses them: endpoints resolved once, with
//! their connection pools, the protocol, and a round-robin cursor.

use super::balance::RoundRobin;
use super::clients::{Clients, Endpoint, UpstreamTls};
use super::error::InvalidEndpoint;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tollgate_snapshot::{Backend, BackendProtocol, ClientCertificate};

/// One snapshot backend, ready to send to.
#[derive(Debug)]
pub struct BuiltBackend {
    /// Source name, `service/<ns>/<name>/port/<port>`.
    pub name: String,
    /// Wire protocol spoken to the endpoints.
    pub protocol: BackendProtocol,
    /// Endpoints with their connections, in snapshot order.
    pub endpoints: Vec<Endpoint>,
    cursor: RoundRobin,
}

impl BuiltBackend {
    /// Parses a snapshot backend's endpoints.
    ///
    /// # Errors
    ///
    /// [`InvalidEndpoint`] when an address is not an IP address.
    pub fn build(
        backend: &Backend,
        clients: &Clients,
        connect_timeout: Duration,
        client_certificate: Option<&ClientCertificate>,
    ) -> Result<BuiltBackend, InvalidEndpoint> {
        let tls = backend.tls.as_ref().map(|tls| UpstreamTls {
            backend: tls.clone(),
            client_certificate: client_certificate.cloned(),
        });
        let endpoints = backend
            .endpoints
            .iter()
            .map(|e| {
                let ip: IpAddr = e.address.parse().map_err(|_| InvalidEndpoint {
                    backend: backend.name.clone(),
                    address: e.address.clone(),
                })?;
                let addr = SocketAddr::new(ip, e.port);
                Ok(clients.endpoint(addr, backend.protocol, connect_timeout, tls.as_ref()))
            })
            .collect::<Result<_, InvalidEndpoint>>()?;
        Ok(BuiltBackend {
            name: backend.name.clone(),
            protocol: backend.protocol,
            endpoints,
            cursor: RoundRobin::default(),
        })
    }

    /// The next endpoint in round-robin order, or `None` when the backend
    /// has no ready endpoint.
    pub fn select(&self) -> Option<&Endpoint> {
        self.cursor
            .select(self.endpoints.len())
            .and_then(|i| self.endpoints.get(i))
    }

    /// The next endpoint in round-robin order that is not at `avoid`, for
    /// a retry: the same endpoint only when it is the only one.
    pub fn select_other(&self, avoid: SocketAddr) -> Option<&Endpoint> {
        let mut last = None;
        for _ in 0..self.endpoints.len() {
            let endpoint = self.select()?;
            if endpoint.address() != avoid {
                return Some(endpoint);
            }
            last = Some(endpoint);
        }
        last
    }
}

/// Every backend of a snapshot, indexed like `Snapshot::backends`.
#[derive(Debug, Default)]
pub struct BackendSet {
    backends: Vec<BuiltBackend>,
}

impl BackendSet {
    /// Builds every backend of a snapshot; TLS backends present
    /// `client_certificate` when the Gateway names one.
    ///
    /// # Errors
    ///
    /// The first backend whose endpoints cannot be parsed.
    pub fn build(
        backends: &[Backend],
        clients: &Clients,
        connect_timeout: Duration,
        client_certificate: Option<&ClientCertificate>,
    ) -> Result<BackendSet, InvalidEndpoint> {
        let backends = backends
            .iter()
            .map(|b| BuiltBackend::build(b, clients, connect_timeout, client_certificate))
            .collect::<Result<_, _>>()?;
        Ok(BackendSet { backends })
    }

    /// The backend at `index` in `Snapshot::backends`.
    pub fn get(&self, index: usize) -> Option<&BuiltBackend> {
        self.backends.get(index)
    }
}
