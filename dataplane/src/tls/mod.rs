//! TLS termination: what a snapshot's HTTPS listeners become at run time.
//!
//! `Runtime::build` turns each TLS socket of a snapshot into a `SocketTls`
//! (`config.rs`): one rustls `ServerConfig` per listener, with that
//! listener's certificates, versions, cipher suites, groups and ALPN. A
//! connection's ClientHello picks the listener by SNI (`select.rs`), and
//! the listener's certificate by what the client can verify
//! (`resolver.rs`). Because the configs live in the runtime, a changed
//! Secret reaches new handshakes as soon as its snapshot is swapped in,
//! while connections already open keep the session they negotiated.
//!
//! A listener with client-certificate validation (mutual TLS) also gets a
//! client verifier over its CA bundles and revocation lists
//! (`client_auth.rs`), and each of its connections the details header
//! value of the certificate it verified (`client_details.rs`).
//!
//! What must outlive a swap is process-wide (`sessions.rs`): the session
//! ticket keys and the session cache, so resumption keeps working across
//! snapshots. The crypto provider is aws-lc-rs, installed once per process
//! ([`install_crypto_provider`]); see `docs/tls.md` for why and for the
//! measured handshake cost.

mod client_auth;
mod client_details;
mod config;
mod resolver;
mod select;
mod sessions;

pub(crate) use config::SocketTls;
pub use config::TlsBuildError;

/// Installs aws-lc-rs as the process's default rustls crypto provider.
///
/// Every binary that uses TLS calls this once at start, before anything
/// builds a TLS client or server (kube's client, the OTLP exporters, the
/// data plane's listeners), so exactly one provider is used everywhere.
/// Calling it again, or after another part of the process installed the
/// same provider, does nothing.
pub fn install_crypto_provider() {
    // `Err` means a provider is installed already; the workspace links
    // aws-lc-rs only, so it is this one.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
