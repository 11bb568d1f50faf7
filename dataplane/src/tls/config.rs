//! A TLS socket's listeners as rustls server configurations.
//!
//! Built by `Runtime::build`, off the request path: certificates are
//! parsed and keys loaded once per snapshot, never per handshake. Each
//! listener gets its own `ServerConfig` because versions, cipher suites and
//! groups are per listener and rustls fixes them per config; the config is
//! picked after the ClientHello is read (`server/tls.rs`), by SNI.

use super::client_auth::ClientAuth;
use super::resolver::CertificateChooser;
use super::select::select_listener;
use super::sessions::sessions;
use rustls::crypto::CryptoProvider;
use rustls::crypto::aws_lc_rs;
use rustls::server::{NoServerSessionStorage, ServerConfig};
use rustls::sign::CertifiedKey;
use rustls::version::{TLS12, TLS13};
use rustls::{SupportedCipherSuite, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;
use thiserror::Error;
use tollgate_snapshot::{
    Certificate, ClientCertHeader, HostMatch, ListenerTls, Socket, TlsOptions, TlsVersion,
};

/// Why a listener's TLS could not be built. The controller checks
/// certificates and options before publishing, so this means a snapshot
/// that did not come from it (or a bug); the snapshot is refused.
#[derive(Debug, Error)]
#[error("{listener}: {message}")]
pub struct TlsBuildError {
    /// The listener, `gateway/<ns>/<name>/listener/<l>`.
    pub listener: String,
    /// What is wrong; never quotes key material.
    pub message: String,
}

/// The TLS listeners of one socket.
#[derive(Debug)]
pub(crate) struct SocketTls {
    /// Listener hostnames, indexed like `listeners`.
    hosts: Box<[HostMatch]>,
    listeners: Box<[ListenerTlsRuntime]>,
}

/// One listener's TLS.
#[derive(Debug)]
pub(crate) struct ListenerTlsRuntime {
    /// Source name, compared with the listener a request's Host selects.
    pub(crate) name: Arc<str>,
    /// The configuration handshakes for this listener use.
    pub(crate) config: Arc<ServerConfig>,
    /// Client-certificate validation (mutual TLS), if the listener has it.
    pub(crate) client_auth: Option<Arc<ClientAuth>>,
}

impl SocketTls {
    /// The TLS of `socket`'s listeners, or `None` for a plain socket;
    /// `header` chooses the fields of the client-certificate details.
    ///
    /// # Errors
    ///
    /// [`TlsBuildError`] when a certificate or key does not load or the
    /// options cannot be served.
    pub(crate) fn build(
        socket: &Socket,
        header: &ClientCertHeader,
    ) -> Result<Option<SocketTls>, TlsBuildError> {
        if socket.listeners.iter().all(|l| l.tls.is_none()) {
            return Ok(None);
        }
        let mut hosts = Vec::with_capacity(socket.listeners.len());
        let mut listeners = Vec::with_capacity(socket.listeners.len());
        for listener in &socket.listeners {
            let error = |message: String| TlsBuildError {
                listener: listener.name.clone(),
                message,
            };
            let tls = listener
                .tls
                .as_ref()
                .ok_or_else(|| error("a plain listener on a TLS socket".into()))?;
            hosts.push(listener.hostname.clone());
            let client_auth = match &tls.client_validation {
                Some(v) => Some(Arc::new(ClientAuth::build(v, header).map_err(error)?)),
                None => None,
            };
            listeners.push(ListenerTlsRuntime {
                name: listener.name.as_str().into(),
                config: Arc::new(server_config(tls, client_auth.as_deref()).map_err(error)?),
                client_auth,
            });
        }
        Ok(Some(SocketTls {
            hosts: hosts.into_boxed_slice(),
            listeners: listeners.into_boxed_slice(),
        }))
    }

    /// The listener a ClientHello with `sni` is for (see `select.rs`).
    pub(crate) fn select(&self, sni: Option<&str>) -> Option<&ListenerTlsRuntime> {
        self.listeners.get(select_listener(&self.hosts, sni)?)
    }
}

/// A rustls configuration for one listener.
fn server_config(tls: &ListenerTls, client: Option<&ClientAuth>) -> Result<ServerConfig, String> {
    let options = &tls.options;
    let keys = tls
        .certificates
        .iter()
        .map(certified_key)
        .collect::<Result<Vec<_>, _>>()?;
    let versions: Vec<&'static SupportedProtocolVersion> = options
        .versions()
        .into_iter()
        .map(|v| match v {
            TlsVersion::Tls12 => &TLS12,
            TlsVersion::Tls13 => &TLS13,
        })
        .collect();
    let builder = ServerConfig::builder_with_provider(Arc::new(provider(options)?))
        .with_protocol_versions(&versions)
        .map_err(|e| format!("TLS options cannot be served: {e}"))?;
    let builder = match client {
        Some(client) => builder.with_client_cert_verifier(client.handshake_verifier()),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(Arc::new(CertificateChooser::new(keys)));
    config.alpn_protocols = if options.alpn.is_empty() {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        options.alpn.iter().map(|p| p.as_bytes().to_vec()).collect()
    };
    // No resumption on a mutual-TLS listener: the process-wide tickets and
    // cache would let a session made on another listener with the same SNI
    // (without client validation, or under a CRL since updated) skip the
    // client check here. Its clients pay a full handshake each time. A
    // listener may also turn resumption off: two TLS 1.3 tickets are sealed
    // and sent after every full handshake, wasted on clients that never
    // come back.
    if client.is_some() || options.session_resumption == Some(false) {
        config.session_storage = Arc::new(NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
    } else {
        let shared = sessions();
        config.session_storage = Arc::clone(&shared.cache);
        if let Some(ticketer) = &shared.ticketer {
            config.ticketer = Arc::clone(ticketer);
        }
    }
    // The server's order decides, as the options list them.
    config.ignore_client_order = true;
    Ok(config)
}

/// aws-lc-rs with the listener's cipher suites and groups, in its order.
fn provider(options: &TlsOptions) -> Result<CryptoProvider, String> {
    let mut provider = aws_lc_rs::default_provider();
    if !options.cipher_suites.is_empty() {
        let all: Vec<SupportedCipherSuite> = aws_lc_rs::ALL_CIPHER_SUITES.to_vec();
        provider.cipher_suites = options
            .cipher_suites
            .iter()
            .map(|name| {
                all.iter()
                    .find(|s| s.suite().as_str() == Some(name.as_str()))
                    .copied()
                    .ok_or_else(|| format!("cipher suite {name} is not available"))
            })
            .collect::<Result<_, _>>()?;
    }
    if !options.groups.is_empty() {
        provider.kx_groups = options
            .groups
            .iter()
            .map(|name| {
                aws_lc_rs::ALL_KX_GROUPS
                    .iter()
                    .find(|g| g.name().as_str() == Some(name.as_str()))
                    .copied()
                    .ok_or_else(|| format!("key-exchange group {name} is not available"))
            })
            .collect::<Result<_, _>>()?;
    }
    Ok(provider)
}

/// Parses one certificate chain and loads its key.
fn certified_key(certificate: &Certificate) -> Result<Arc<CertifiedKey>, String> {
    let name = &certificate.name;
    let chain = CertificateDer::pem_slice_iter(certificate.chain_pem.expose().as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| format!("{name}: the certificate chain is not valid PEM"))?;
    if chain.is_empty() {
        return Err(format!("{name}: no certificate in the chain"));
    }
    let key = PrivateKeyDer::from_pem_slice(certificate.key_pem.expose().as_bytes())
        .map_err(|_| format!("{name}: the private key is not valid PEM"))?;
    let signer = aws_lc_rs::sign::any_supported_type(&key)
        .map_err(|_| format!("{name}: the private key's type is not supported"))?;
    let key = CertifiedKey::new(chain, signer);
    key.keys_match()
        .map_err(|_| format!("{name}: the private key does not match the certificate"))?;
    Ok(Arc::new(key))
}
