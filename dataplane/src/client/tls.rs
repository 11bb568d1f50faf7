//! The snapshot client's connections: plain HTTP, or mutual TLS with the
//! certificate files of `--tls-dir`.
//!
//! In a cluster the controller's certificate issuer writes the data
//! plane's client certificate into a Secret mounted read-only at
//! `--tls-dir` (`tls.crt`, `tls.key`, `ca.crt`), and rotates it before it
//! expires: the kubelet then swaps the files under the running process.
//! So the files are read again before every new connection and the HTTP
//! client rebuilt when their content changed; a connection already
//! established keeps the certificate it was made with, which is fine (a
//! TLS session is not re-verified), and the next one presents the new one.

use bytes::Bytes;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;

/// The files of a TLS directory, as the Secret's keys name them.
const FILES: [&str; 3] = ["tls.crt", "tls.key", "ca.crt"];

/// Why the client's TLS material could not be used.
#[derive(Debug, Error)]
pub enum TlsDirError {
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A file does not hold what it should.
    #[error("{0}")]
    Invalid(String),
    /// `--tls-dir` needs an `https://` controller URL (and the other way round).
    #[error("{0}")]
    Scheme(String),
}

/// Where the client's certificate, key and trusted CA come from.
#[derive(Clone, Debug, Default)]
pub struct ClientTls {
    dir: Option<PathBuf>,
}

impl ClientTls {
    /// Plain HTTP (standalone mode, tests).
    pub fn plain() -> ClientTls {
        ClientTls { dir: None }
    }

    /// Mutual TLS with `tls.crt`, `tls.key` and `ca.crt` from `dir`.
    pub fn from_dir(dir: impl Into<PathBuf>) -> ClientTls {
        ClientTls {
            dir: Some(dir.into()),
        }
    }

    /// Checks that `url`'s scheme fits: https with a TLS directory, http
    /// without one.
    ///
    /// # Errors
    ///
    /// [`TlsDirError::Scheme`] when they do not fit.
    pub fn check_url(&self, url: &str) -> Result<(), TlsDirError> {
        let https = url.starts_with("https://");
        match (&self.dir, https) {
            (Some(_), true) | (None, false) => Ok(()),
            (Some(dir), false) => Err(TlsDirError::Scheme(format!(
                "--tls-dir {} needs an https:// controller URL, got {url}",
                dir.display()
            ))),
            (None, true) => Err(TlsDirError::Scheme(format!(
                "the controller URL {url} is https: give --tls-dir with the client certificate"
            ))),
        }
    }

    /// The files' content now (empty without a directory).
    fn read(&self) -> Result<Vec<Vec<u8>>, TlsDirError> {
        let Some(dir) = &self.dir else {
            return Ok(Vec::new());
        };
        FILES.iter().map(|f| read(&dir.join(f))).collect()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsDirError> {
    std::fs::read(path).map_err(|source| TlsDirError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// A rustls client configuration from `tls.crt`, `tls.key`, `ca.crt`.
fn client_config(files: &[Vec<u8>]) -> Result<ClientConfig, TlsDirError> {
    let [crt, key, ca] = files else {
        return Err(TlsDirError::Invalid("expected three files".into()));
    };
    let invalid =
        |what: &str, e: &dyn std::fmt::Display| TlsDirError::Invalid(format!("{what}: {e}"));
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca) {
        let cert = cert.map_err(|e| invalid("ca.crt", &e))?;
        roots.add(cert).map_err(|e| invalid("ca.crt", &e))?;
    }
    if roots.is_empty() {
        return Err(TlsDirError::Invalid("ca.crt: no certificate".into()));
    }
    let chain = CertificateDer::pem_slice_iter(crt)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid("tls.crt", &e))?;
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| invalid("tls.key", &e))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("protocol versions", &e))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| invalid("tls.crt/tls.key", &e))
}

/// The HTTP client type of the snapshot stream and the reports.
pub(crate) type HttpClient<B> = Client<HttpsConnector<HttpConnector>, B>;

/// An HTTP client rebuilt whenever the TLS files change.
pub(crate) struct CachedClient<B> {
    tls: ClientTls,
    /// HTTP/2 only (the snapshot stream) or HTTP/1.1 and HTTP/2 (reports).
    h2_only: bool,
    current: Option<(Vec<Vec<u8>>, HttpClient<B>)>,
}

impl<B> CachedClient<B>
where
    B: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    pub(crate) fn new(tls: ClientTls, h2_only: bool) -> Self {
        CachedClient {
            tls,
            h2_only,
            current: None,
        }
    }

    /// The client for the next request: the same as before while the TLS
    /// files are unchanged, a new one (new connections, new certificate)
    /// once they changed.
    ///
    /// # Errors
    ///
    /// The files cannot be read or used; the caller retries later (a
    /// rotation in progress may have left them half-written).
    pub(crate) fn get(&mut self) -> Result<HttpClient<B>, TlsDirError> {
        let files = self.tls.read()?;
        if let Some((seen, client)) = &self.current
            && *seen == files
        {
            return Ok(client.clone());
        }
        let client = self.build(&files)?;
        if self.current.is_some() {
            tracing::info!("client certificate files changed; new connections use them");
        }
        self.current = Some((files, client.clone()));
        Ok(client)
    }

    /// Forgets the client, so the next [`get`](Self::get) opens new
    /// connections: after a refusal, the next attempt may reach another
    /// controller replica behind the same Service.
    pub(crate) fn reset(&mut self) {
        self.current = None;
    }

    fn build(&self, files: &[Vec<u8>]) -> Result<HttpClient<B>, TlsDirError> {
        let config = if self.tls.dir.is_some() {
            client_config(files)?
        } else {
            // Never used for https (checked up front); plain http needs
            // only the type.
            ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::aws_lc_rs::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsDirError::Invalid(e.to_string()))?
            .with_root_certificates(RootCertStore::empty())
            .with_no_client_auth()
        };
        let builder = HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http();
        let connector = if self.h2_only {
            builder.enable_http2().build()
        } else {
            builder.enable_all_versions().build()
        };
        let mut client = Client::builder(TokioExecutor::new());
        client.http2_only(self.h2_only);
        Ok(client.build(connector))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// https goes with a TLS directory, http without one.
    #[test]
    fn the_scheme_must_fit_the_tls_setting() {
        let tls = ClientTls::from_dir("/etc/tollgate/client");
        assert!(tls.check_url("https://c:9903").is_ok());
        assert!(tls.check_url("http://c:9903").is_err());
        assert!(ClientTls::plain().check_url("http://c:9903").is_ok());
        assert!(ClientTls::plain().check_url("https://c:9903").is_err());
    }
}
