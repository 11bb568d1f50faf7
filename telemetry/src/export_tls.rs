//! How the OTLP exporters reach a collector: plain or TLS, from the
//! standard variables.
//!
//! A collector at an `https://` endpoint is verified against the system's
//! CA certificates, or against `OTEL_EXPORTER_OTLP_CERTIFICATE` (a PEM
//! bundle, which then replaces them: a private CA's collector). With
//! `OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE` and
//! `OTEL_EXPORTER_OTLP_CLIENT_KEY` the exporter presents a client
//! certificate (mutual TLS). Each has a per-signal form
//! (`OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE`, ...) that wins, as the
//! OpenTelemetry exporter specification says. `http://` endpoints stay
//! plain; over gRPC, a scheme-less endpoint is TLS unless
//! `OTEL_EXPORTER_OTLP_INSECURE` is true (the exporter's own rule).
//!
//! An `http://` endpoint (and the default one, `http://localhost:4318`
//! or `:4317`) gets no TLS settings at all, so the system's CA
//! certificates are not read for an exporter that never verifies one.
//!
//! The files are read once, when the exporters are built; a path that
//! cannot be read, or holds no certificate or key, is a start-up error
//! naming the variable, not a collector that silently never gets data.
//! Both transports use rustls with the process's one crypto provider
//! (aws-lc-rs): tonic's TLS for gRPC, and `hyper-rustls` under the OTLP
//! exporter's hyper client for HTTP/protobuf.

use crate::env::{self, OtelEnv, Signal, Transport};
use crate::export_proxy::ProxyConnector;
use hyper_rustls::HttpsConnector;
use opentelemetry_http::hyper::HyperClient;
use opentelemetry_otlp::ExporterBuildError;
use opentelemetry_otlp::tonic_types::transport::{Certificate, ClientTlsConfig, Identity};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};

/// The exporters' request timeout when no variable sets one (the
/// specification's 10 s).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The OTLP/HTTP client: hyper over a connector that speaks TLS to
/// `https://` endpoints and plain TCP to `http://` ones, through a proxy
/// when the proxy variables say so ([`crate::export_proxy`]).
pub(crate) type HttpClient = HyperClient<HttpsConnector<ProxyConnector>>;

/// How a gRPC exporter reaches its collector.
pub(crate) enum GrpcTransport {
    /// The exporter builds its channel, with these TLS settings (`None`
    /// for a plain endpoint).
    Direct(Option<ClientTlsConfig>),
    /// Through a proxy: a channel built here over the tunnelling connector.
    Channel(Channel),
}

/// One signal's transport settings, read from the environment.
#[derive(Clone, Debug)]
pub(crate) struct ExportTls {
    /// The CA bundle (PEM) that verifies the collector; `None`: the
    /// system's CA certificates.
    ca: Option<Vec<u8>>,
    /// The client certificate chain and key (PEM), for mutual TLS.
    identity: Option<(Vec<u8>, Vec<u8>)>,
    /// How long one export request may take.
    timeout: Duration,
}

impl ExportTls {
    /// The settings of `signal`'s exporter in `env`.
    ///
    /// # Errors
    ///
    /// A certificate or key file that cannot be read or holds nothing
    /// usable, or a client certificate without its key (or the reverse).
    pub(crate) fn from_env(env: &OtelEnv, signal: Signal) -> Result<ExportTls, ExporterBuildError> {
        let ca = match env.for_signal(signal, "CERTIFICATE") {
            Some((name, path)) => {
                let pem = read(&name, path)?;
                certificates(&name, path, &pem)?;
                Some(pem)
            }
            None => None,
        };
        let cert = env.for_signal(signal, "CLIENT_CERTIFICATE");
        let key = env.for_signal(signal, "CLIENT_KEY");
        let identity = match (cert, key) {
            (None, None) => None,
            (Some((cert_name, cert_path)), Some((key_name, key_path))) => {
                let chain = read(&cert_name, cert_path)?;
                certificates(&cert_name, cert_path, &chain)?;
                let key = read(&key_name, key_path)?;
                PrivateKeyDer::from_pem_slice(&key).map_err(|error| {
                    invalid(
                        &key_name,
                        format!("{key_path} holds no private key: {error}"),
                    )
                })?;
                Some((chain, key))
            }
            (Some((name, _)), None) | (None, Some((name, _))) => {
                return Err(invalid(
                    &name,
                    "a client certificate and its key go together: set both \
                     OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_CLIENT_KEY \
                     (or both per-signal forms)",
                ));
            }
        };
        // As the exporter reads it: a value that does not parse is passed
        // over for the next.
        let own = format!("OTEL_EXPORTER_OTLP_{}_TIMEOUT", signal.upper());
        let timeout = [own.as_str(), "OTEL_EXPORTER_OTLP_TIMEOUT"]
            .into_iter()
            .find_map(|name| env.get(name)?.parse().ok())
            .map_or(DEFAULT_TIMEOUT, Duration::from_millis);
        Ok(ExportTls {
            ca,
            identity,
            timeout,
        })
    }

    /// The TLS settings of a gRPC channel (used only when the endpoint
    /// is TLS).
    pub(crate) fn grpc(&self) -> ClientTlsConfig {
        let config = ClientTlsConfig::new();
        let config = match &self.ca {
            Some(pem) => config.ca_certificate(Certificate::from_pem(pem)),
            None => config.with_native_roots(),
        };
        match &self.identity {
            Some((chain, key)) => config.identity(Identity::from_pem(chain, key)),
            None => config,
        }
    }

    /// The HTTP client of an OTLP/HTTP exporter; `plain` when its
    /// endpoint is `http://`, which needs no trusted certificates.
    ///
    /// # Errors
    ///
    /// rustls refuses the client certificate and key (a key that does
    /// not match the certificate's algorithm).
    pub(crate) fn http(
        &self,
        plain: bool,
        connector: ProxyConnector,
    ) -> Result<HttpClient, ExporterBuildError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| internal(format!("TLS protocol versions: {error}")))?
            .with_root_certificates(self.roots(plain));
        let config = match &self.identity {
            Some((chain, key)) => {
                let chain = CertificateDer::pem_slice_iter(chain)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|error| internal(format!("client certificate: {error}")))?;
                let key = PrivateKeyDer::from_pem_slice(key)
                    .map_err(|error| internal(format!("client key: {error}")))?;
                builder.with_client_auth_cert(chain, key).map_err(|error| {
                    invalid(
                        "OTEL_EXPORTER_OTLP_CLIENT_KEY",
                        format!("the key does not fit the certificate: {error}"),
                    )
                })?
            }
            None => builder.with_no_client_auth(),
        };
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http()
            // HTTP/1.1, as the exporter's plain client speaks (and ALPN says).
            .enable_http1()
            .wrap_connector(connector);
        Ok(HyperClient::new(connector, self.timeout, None))
    }

    /// The certificates a collector's is verified against: none for a
    /// `plain` endpoint.
    fn roots(&self, plain: bool) -> RootCertStore {
        match &self.ca {
            _ if plain => RootCertStore::empty(),
            Some(pem) => {
                let mut roots = RootCertStore::empty();
                let certs = CertificateDer::pem_slice_iter(pem).filter_map(Result::ok);
                roots.add_parsable_certificates(certs);
                roots
            }
            None => system_roots().clone(),
        }
    }
}

/// The system's CA certificates, read once per process: every signal's
/// exporter, and each rebuild, would otherwise read the whole folder.
fn system_roots() -> &'static RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for error in &found.errors {
            tracing::warn!(%error, "reading system CA certificates for OTLP export");
        }
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(found.certs);
        roots
    })
}

/// A gRPC channel to `endpoint` over `connector`, with `tls` when the
/// endpoint is TLS (tonic puts it over the tunnel) and the exporter's
/// `timeout`.
///
/// # Errors
///
/// The endpoint is not a URL, or tonic refuses the TLS settings.
fn grpc_channel(
    endpoint: String,
    tls: Option<ClientTlsConfig>,
    timeout: Duration,
    connector: ProxyConnector,
) -> Result<Channel, ExporterBuildError> {
    let channel = Endpoint::from_shared(endpoint.clone()).map_err(|error| {
        invalid(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("{endpoint}: {error}"),
        )
    })?;
    let channel = match tls {
        Some(tls) => channel
            .tls_config(tls)
            .map_err(|error| internal(format!("gRPC TLS settings: {error}")))?,
        None => channel,
    };
    Ok(channel
        .timeout(timeout)
        .connect_with_connector_lazy(connector))
}

/// Builds `signal`'s exporter for the protocol `env` names: `grpc` with
/// the gRPC channel's TLS settings (none for a plain endpoint), `http`
/// with the HTTP client.
///
/// # Errors
///
/// As [`ExportTls::from_env`], or the exporter's own.
pub(crate) fn build_exporter<E>(
    env: &OtelEnv,
    signal: Signal,
    grpc: impl FnOnce(GrpcTransport) -> Result<E, ExporterBuildError>,
    http: impl FnOnce(HttpClient, HashMap<String, String>) -> Result<E, ExporterBuildError>,
) -> Result<E, ExporterBuildError> {
    let tls = ExportTls::from_env(env, signal)?;
    let transport = env.transport(signal);
    let endpoint = env.endpoint(signal, transport);
    let plain = env::is_plain(&endpoint);
    let connector = ProxyConnector::new(env, &endpoint)?;
    match transport {
        Transport::Grpc => {
            let settings = (!plain).then(|| tls.grpc());
            grpc(if connector.proxies(&endpoint) {
                let channel = grpc_channel(endpoint, settings, tls.timeout, connector)?;
                GrpcTransport::Channel(channel)
            } else {
                GrpcTransport::Direct(settings)
            })
        }
        Transport::HttpProtobuf => {
            let connector = connector.forwarding();
            let headers = connector.request_headers(&endpoint);
            http(tls.http(plain, connector)?, headers)
        }
    }
}

/// `signal`'s exporter of type `opentelemetry_otlp::$ty` (`SpanExporter`,
/// `LogExporter`, `MetricExporter`) from `env`, through
/// [`build_exporter`].
macro_rules! otlp_exporter {
    ($ty:ident, $env:expr, $signal:expr) => {
        $crate::export_tls::build_exporter(
            $env,
            $signal,
            |grpc| {
                use $crate::export_tls::GrpcTransport;
                let builder = opentelemetry_otlp::$ty::builder().with_tonic();
                match grpc {
                    GrpcTransport::Direct(Some(tls)) => builder.with_tls_config(tls).build(),
                    GrpcTransport::Direct(None) => builder.build(),
                    GrpcTransport::Channel(channel) => builder.with_channel(channel).build(),
                }
            },
            |client, headers| {
                opentelemetry_otlp::$ty::builder()
                    .with_http()
                    .with_http_client(client)
                    .with_headers(headers)
                    .build()
            },
        )
    };
}
pub(crate) use otlp_exporter;

fn read(name: &str, path: &str) -> Result<Vec<u8>, ExporterBuildError> {
    std::fs::read(path).map_err(|error| invalid(name, format!("cannot read {path}: {error}")))
}

/// Checks that `pem` holds at least one certificate.
fn certificates(name: &str, path: &str, pem: &[u8]) -> Result<(), ExporterBuildError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| invalid(name, format!("{path}: {error}")))?;
    if certs.is_empty() {
        return Err(invalid(name, format!("{path} holds no PEM certificate")));
    }
    Ok(())
}

fn invalid(name: &str, reason: impl std::fmt::Display) -> ExporterBuildError {
    ExporterBuildError::InvalidConfiguration(format!("{name}: {reason}"))
}

fn internal(reason: String) -> ExporterBuildError {
    ExporterBuildError::InternalFailure(reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> OtelEnv {
        OtelEnv::from_pairs(pairs.iter().copied())
    }

    /// A missing file, a file without a certificate, and half a client
    /// identity are errors that name the variable.
    #[test]
    fn bad_files_are_named() {
        let dir = std::env::temp_dir().join(format!("tollgate-otlp-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_default();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap_or_default();
        let empty = empty.to_string_lossy().into_owned();
        let cases: [(&[(&str, &str)], &str); 4] = [
            (
                &[("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/ca.pem")],
                "OTEL_EXPORTER_OTLP_CERTIFICATE: cannot read /nonexistent/ca.pem",
            ),
            (
                &[("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", &empty)],
                "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE:",
            ),
            (&[("OTEL_EXPORTER_OTLP_CLIENT_KEY", &empty)], "go together"),
            (
                &[
                    ("OTEL_EXPORTER_OTLP_CLIENT_KEY", &empty),
                    (
                        "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
                        "/nonexistent/c.pem",
                    ),
                ],
                "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: cannot read",
            ),
        ];
        for (vars, want) in cases {
            let error = ExportTls::from_env(&env(vars), Signal::Traces)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(error.contains(want), "{vars:?}: {error:?}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Only `http://` endpoints and the default one are plain, and a
    /// plain endpoint's client trusts nothing (the system's certificates
    /// are not read for it).
    #[test]
    fn plain_endpoints_skip_the_roots() {
        let plain = |pairs: &[(&str, &str)]| {
            env::is_plain(
                &env(pairs).endpoint(Signal::Traces, env(pairs).transport(Signal::Traces)),
            )
        };
        assert!(plain(&[]));
        assert!(plain(&[(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "HTTP://collector:4318"
        )]));
        assert!(!plain(&[(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "https://collector"
        )]));
        assert!(!plain(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317")]));
        assert!(!plain(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "https://traces/v1/traces"
            ),
        ]));
        let tls = ExportTls::from_env(&env(&[]), Signal::Traces);
        assert!(tls.as_ref().is_ok_and(|t| t.roots(true).is_empty()));
        let pem = rcgen::generate_simple_self_signed(vec!["collector".to_string()])
            .map(|c| c.cert.pem())
            .unwrap_or_default();
        let with_ca = ExportTls {
            ca: Some(pem.into_bytes()),
            ..tls.unwrap_or_else(|e| panic!("{e}"))
        };
        assert_eq!(with_ca.roots(false).len(), 1);
        assert!(with_ca.roots(true).is_empty());
    }

    /// The per-signal variables win over the general ones, and the
    /// timeout is in milliseconds.
    #[test]
    fn signal_variables_win() {
        let vars = env(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
            ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "700"),
            ("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "soon"),
        ]);
        assert_eq!(vars.transport(Signal::Traces), Transport::Grpc);
        assert_eq!(vars.transport(Signal::Logs), Transport::HttpProtobuf);
        assert_eq!(env(&[]).transport(Signal::Traces), Transport::HttpProtobuf);
        let timeout = |signal| ExportTls::from_env(&vars, signal).map(|t| t.timeout).ok();
        assert_eq!(timeout(Signal::Traces), Some(Duration::from_millis(2500)));
        assert_eq!(timeout(Signal::Metrics), Some(Duration::from_millis(700)));
        assert_eq!(timeout(Signal::Logs), Some(Duration::from_millis(2500)));
        assert_eq!(
            ExportTls::from_env(&env(&[]), Signal::Logs)
                .map(|t| t.timeout)
                .ok(),
            Some(DEFAULT_TIMEOUT)
        );
    }
}
