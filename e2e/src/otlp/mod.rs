//! An OTLP collector double for tests: [`Receiver`].
//!
//! Tollgate exports traces, metrics and logs over OTLP. To test that end to
//! end, a test starts a [`Receiver`] on free loopback ports, points the
//! gateway at [`Receiver::grpc_endpoint`] or [`Receiver::http_endpoint`]
//! (the `OTEL_EXPORTER_OTLP_ENDPOINT` base), and asserts on what arrived:
//! [`Receiver::spans`], [`Receiver::metrics`] and [`Receiver::logs`] flatten
//! every accepted request into [`Span`]s, [`MetricPoint`]s and
//! [`LogRecord`]s; the `wait_for_*` helpers wait for them and panic with a
//! summary of what did arrive. [`Receiver::set_delay`],
//! [`Receiver::set_failing`] and [`Receiver::stop`] make it a slow, failing
//! or dead collector.
//!
//! It speaks both OTLP/gRPC (the generated tonic services of
//! `opentelemetry-proto`, in `grpc.rs`) and OTLP/HTTP with binary protobuf
//! (`http.rs`), gzip or not; both feed one store (`store.rs`).
//! [`Receiver::start_tls`] serves both over TLS, optionally requiring a
//! client certificate, as a collector outside the cluster would.

mod grpc;
mod http;
mod logs;
mod metrics;
mod serve;
mod spans;
mod store;
mod value;
mod wait;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

pub use logs::LogRecord;
pub use metrics::{
    AggregationTemporality, Bucket, ExponentialHistogram, Histogram, MetricKind, MetricPoint,
    PointValue, Summary,
};
pub use spans::{Span, SpanEvent, SpanKind, SpanLink, StatusCode};
pub use store::{Export, Payload};
pub use value::{Attributes, Origin, Protocol, hex, to_json};

use crate::HarnessError;
use crate::tls::{self, Ca, Leaf};
use store::Shared;

/// A running OTLP receiver; see the [module docs](self).
///
/// Dropping it stops it, like [`Receiver::stop`] but without waiting.
#[derive(Debug)]
pub struct Receiver {
    shared: Arc<Shared>,
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
    /// `https` for a TLS receiver, else `http`.
    scheme: &'static str,
    /// TLS handshakes that failed.
    refused: Arc<AtomicUsize>,
    tasks: Vec<JoinHandle<()>>,
}

impl Receiver {
    /// Starts a receiver on two free ports of 127.0.0.1, one per transport.
    ///
    /// Must be called inside a tokio runtime, which runs the servers.
    ///
    /// # Errors
    ///
    /// [`HarnessError::Spawn`] when a port cannot be bound.
    pub async fn start() -> Result<Self, HarnessError> {
        Self::serve(None).await
    }

    /// Starts a receiver serving both transports over TLS with the
    /// certificate `leaf` (issued for `localhost`, which the endpoints
    /// name), requiring a client certificate issued by `client_ca` when
    /// given. A client that does not trust `leaf`'s issuer, or presents
    /// no acceptable certificate, gets nothing through:
    /// [`Receiver::refused_handshakes`] counts it.
    ///
    /// # Errors
    ///
    /// As [`Receiver::start`], or the certificate does not parse.
    pub async fn start_tls(leaf: &Leaf, client_ca: Option<&Ca>) -> Result<Self, HarnessError> {
        let config = tls::server_config(leaf, &["h2", "http/1.1"], client_ca).map_err(|e| {
            HarnessError::Spawn {
                what: "the OTLP receiver's TLS".to_owned(),
                source: std::io::Error::other(e.to_string()),
            }
        })?;
        Self::serve(Some(TlsAcceptor::from(Arc::new(config)))).await
    }

    async fn serve(tls: Option<TlsAcceptor>) -> Result<Self, HarnessError> {
        let shared = Arc::new(Shared::new());
        let refused = Arc::new(AtomicUsize::new(0));
        let (grpc_listener, grpc_addr) = bind("the OTLP/gRPC receiver").await?;
        let (http_listener, http_addr) = bind("the OTLP/HTTP receiver").await?;
        let grpc = tokio::spawn(serve::serve(
            grpc_listener,
            grpc::GrpcRouter::new(Arc::clone(&shared)),
            tls.clone(),
            Arc::clone(&refused),
        ));
        let http_shared = Arc::clone(&shared);
        let http = tokio::spawn(serve::serve(
            http_listener,
            hyper::service::service_fn(move |request| {
                http::handle(Arc::clone(&http_shared), request)
            }),
            tls.clone(),
            Arc::clone(&refused),
        ));
        Ok(Self {
            shared,
            grpc_addr,
            http_addr,
            scheme: if tls.is_some() { "https" } else { "http" },
            refused,
            tasks: vec![grpc, http],
        })
    }

    /// TLS handshakes the receiver refused (an untrusted or missing
    /// client certificate, or a client that did not trust it).
    pub fn refused_handshakes(&self) -> usize {
        self.refused.load(Ordering::Relaxed)
    }

    /// The OTLP/gRPC endpoint, `http://127.0.0.1:PORT`
    /// (`https://localhost:PORT` for a TLS receiver).
    pub fn grpc_endpoint(&self) -> String {
        self.endpoint(self.grpc_addr)
    }

    /// The OTLP/HTTP base endpoint, `http://127.0.0.1:PORT`
    /// (`https://localhost:PORT` for a TLS receiver): exporters append
    /// `/v1/traces`, `/v1/metrics` and `/v1/logs` to it, as they do to
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn http_endpoint(&self) -> String {
        self.endpoint(self.http_addr)
    }

    fn endpoint(&self, addr: SocketAddr) -> String {
        match self.scheme {
            "https" => format!("https://localhost:{}", addr.port()),
            _ => format!("http://{addr}"),
        }
    }

    /// The OTLP/gRPC listening address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// The OTLP/HTTP listening address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Makes every later export wait `delay` before it is answered (zero,
    /// the default, answers at once).
    pub fn set_delay(&self, delay: Duration) {
        self.shared.set_delay(delay);
    }

    /// While `true`, refuses every export, after the delay, with HTTP 503
    /// or gRPC `UNAVAILABLE`, and keeps nothing but the count
    /// ([`Receiver::rejected`]).
    pub fn set_failing(&self, failing: bool) {
        self.shared.set_failing(failing);
    }

    /// Stops both servers: closes the listening sockets and every open
    /// connection, so exporters then get "connection refused". Waits until
    /// the sockets are closed. What was received stays readable.
    pub async fn stop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        for task in self.tasks.drain(..) {
            // Aborted: the only outcome is a cancelled JoinError.
            let _ = task.await;
        }
    }

    /// Every accepted export request, in arrival order, as decoded.
    pub fn exports(&self) -> Vec<Export> {
        self.shared.exports()
    }

    /// How many export requests were refused while failing.
    pub fn rejected(&self) -> usize {
        self.shared.rejected()
    }

    /// Forgets everything received so far (and the rejected count).
    pub fn clear(&self) {
        self.shared.clear();
    }

    /// Every received span, in arrival order.
    pub fn spans(&self) -> Vec<Span> {
        self.flatten(|protocol, payload| match payload {
            Payload::Traces(request) => spans::flatten(protocol, request),
            _ => Vec::new(),
        })
    }

    /// Every received metric data point, in arrival order. A cumulative
    /// metric exported twice appears twice; see [`Receiver::latest_metric`].
    pub fn metrics(&self) -> Vec<MetricPoint> {
        self.flatten(|protocol, payload| match payload {
            Payload::Metrics(request) => metrics::flatten(protocol, request),
            _ => Vec::new(),
        })
    }

    /// Every received log record, in arrival order.
    pub fn logs(&self) -> Vec<LogRecord> {
        self.flatten(|protocol, payload| match payload {
            Payload::Logs(request) => logs::flatten(protocol, request),
            _ => Vec::new(),
        })
    }

    /// The spans named `name`.
    pub fn spans_named(&self, name: &str) -> Vec<Span> {
        self.spans()
            .into_iter()
            .filter(|s| s.name == name)
            .collect()
    }

    /// The most recent data point of metric `name` whose attributes include
    /// every `(key, value)` of `attributes` (string values).
    pub fn latest_metric(&self, name: &str, attributes: &[(&str, &str)]) -> Option<MetricPoint> {
        self.metrics()
            .into_iter()
            .rev()
            .find(|p| p.name == name && has_attributes(p, attributes))
    }

    fn flatten<T>(&self, each: impl Fn(Protocol, &Payload) -> Vec<T>) -> Vec<T> {
        self.exports()
            .iter()
            .flat_map(|e| each(e.protocol, &e.payload))
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Whether a point's attributes include every `(key, value)` given.
fn has_attributes(point: &MetricPoint, attributes: &[(&str, &str)]) -> bool {
    attributes
        .iter()
        .all(|(key, value)| point.attributes.get(*key).and_then(|v| v.as_str()) == Some(*value))
}

async fn bind(what: &str) -> Result<(TcpListener, SocketAddr), HarnessError> {
    let spawn_error = |source| HarnessError::Spawn {
        what: what.to_owned(),
        source,
    };
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .map_err(spawn_error)?;
    let addr = listener.local_addr().map_err(spawn_error)?;
    Ok((listener, addr))
}
