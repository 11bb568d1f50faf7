//! Reaching a collector through an HTTP proxy, from the variables curl
//! and the OpenTelemetry Collector read: `HTTPS_PROXY`, `HTTP_PROXY`,
//! `ALL_PROXY` (or their lower-case forms) name the proxy for `https://`
//! and `http://` endpoints, and `NO_PROXY` the hosts reached directly.
//! Clusters whose egress goes through a proxy, the usual way to a hosted
//! collector, need nothing else.
//!
//! For an `https://` collector both protocols open a `CONNECT` tunnel
//! through the proxy and speak TLS to the collector inside it, end to end
//! (the proxy sees only the host and port). An `http://` collector over
//! HTTP/protobuf gets its requests through the proxy as a forward proxy
//! serves plain HTTP, in absolute form (`POST http://collector:4318/v1/traces`),
//! as curl and Go's clients send them: a proxy that allows `CONNECT` only
//! to port 443 (squid's default) still serves them. gRPC to an `http://`
//! collector needs HTTP/2 end to end, which only a tunnel carries. A proxy
//! URL's user and password go in `Proxy-Authorization` (Basic): on the
//! `CONNECT`, or on every forwarded request. Only `http://` proxies are spoken to;
//! an `https://` or SOCKS proxy for an endpoint is a start-up error
//! naming the variable, not a collector that silently never gets data.
//!
//! A collector on the loopback interface (`localhost`, `127.0.0.0/8`,
//! `::1`: an agent beside the process) is always reached directly, as Go's
//! `ProxyFromEnvironment` does for the collectors written in Go.
//!
//! Only the OTLP exporters read these variables: the data plane's own
//! upstream connections never go through a proxy.

use crate::env::OtelEnv;
use http::Uri;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::proxy::matcher::{Intercept, Matcher};
use hyper_util::rt::TokioIo;
use opentelemetry_otlp::ExporterBuildError;
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::net::TcpStream;
use tower_service::Service;

/// The proxy variables, in the order they are read (upper case first).
pub const PROXY_VARIABLES: [&str; 8] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
];

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The first of a variable's two forms that is set.
fn first<'a>(env: &'a OtelEnv, upper: &str) -> Option<(&'a str, String)> {
    [upper.to_string(), upper.to_ascii_lowercase()]
        .into_iter()
        .find_map(|name| Some((env.get(&name)?, name)))
}

/// The proxy rules of `env`; `None` when no proxy is named.
fn matcher(env: &OtelEnv) -> Option<Matcher> {
    let value = |upper| first(env, upper).map(|(v, _)| v).unwrap_or_default();
    let (all, http, https) = (
        value("ALL_PROXY"),
        value("HTTP_PROXY"),
        value("HTTPS_PROXY"),
    );
    if all.is_empty() && http.is_empty() && https.is_empty() {
        return None;
    }
    let builder = Matcher::builder().all(all).http(http).https(https);
    Some(builder.no(value("NO_PROXY")).build())
}

/// A connector that opens a `CONNECT` tunnel through the proxy the rules
/// name for a destination (or, [`ProxyConnector::forwarding`], a
/// connection to the proxy itself for plain HTTP), and connects directly
/// otherwise.
#[derive(Clone)]
pub(crate) struct ProxyConnector {
    http: HttpConnector,
    rules: Option<Arc<Matcher>>,
    /// `http://` destinations go to the proxy as requests in absolute
    /// form, not through a tunnel (HTTP/1.1 clients only).
    forward_plain: bool,
}

impl std::fmt::Debug for ProxyConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The rules may hold a proxy password: never printed.
        f.debug_struct("ProxyConnector")
            .field("proxied", &self.rules.is_some())
            .finish()
    }
}

impl ProxyConnector {
    /// The connector of an exporter sending to `endpoint`, with the proxy
    /// rules of `env`.
    ///
    /// # Errors
    ///
    /// The proxy that `endpoint` would go through is not an `http://` one.
    pub(crate) fn new(env: &OtelEnv, endpoint: &str) -> Result<ProxyConnector, ExporterBuildError> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        let connector = ProxyConnector {
            http,
            rules: matcher(env).map(Arc::new),
            forward_plain: false,
        };
        let proxy = endpoint
            .parse::<Uri>()
            .ok()
            .and_then(|uri| connector.proxy_for(&uri));
        if let Some(proxy) = proxy.filter(|p| p.uri().scheme_str() != Some("http")) {
            let name = ["HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"]
                .into_iter()
                .find_map(|upper| first(env, upper).map(|(_, name)| name))
                .unwrap_or_else(|| "HTTPS_PROXY".to_string());
            return Err(ExporterBuildError::InvalidConfiguration(format!(
                "{name}: the proxy for {endpoint} is {}; OTLP export speaks only to \
                 http:// proxies (a CONNECT tunnel, or forwarded plain-HTTP requests)",
                proxy.uri()
            )));
        }
        Ok(connector)
    }

    /// This connector for an HTTP/1.1 client: `http://` destinations are
    /// forwarded by the proxy, not tunnelled.
    pub(crate) fn forwarding(self) -> ProxyConnector {
        ProxyConnector {
            forward_plain: true,
            ..self
        }
    }

    /// The headers each request to `endpoint` must carry for the proxy:
    /// its credentials, when the proxy forwards the requests (a tunnel
    /// carries them on its `CONNECT` instead).
    pub(crate) fn request_headers(&self, endpoint: &str) -> HashMap<String, String> {
        let Ok(uri) = endpoint.parse::<Uri>() else {
            return HashMap::new();
        };
        let proxy = self.proxy_for(&uri).filter(|_| self.forwards(&uri));
        proxy
            .as_ref()
            .and_then(Intercept::basic_auth)
            .and_then(|auth| auth.to_str().ok())
            .map(|auth| HashMap::from([("proxy-authorization".to_string(), auth.to_string())]))
            .unwrap_or_default()
    }

    /// Whether requests to `dst`, when proxied, are forwarded by the
    /// proxy rather than tunnelled.
    fn forwards(&self, dst: &Uri) -> bool {
        self.forward_plain && dst.scheme_str() == Some("http")
    }

    /// Whether `endpoint` goes through a proxy.
    pub(crate) fn proxies(&self, endpoint: &str) -> bool {
        endpoint
            .parse::<Uri>()
            .is_ok_and(|uri| self.proxy_for(&uri).is_some())
    }

    /// The proxy `dst` goes through, if any.
    fn proxy_for(&self, dst: &Uri) -> Option<Intercept> {
        intercept(self.rules.as_deref(), dst)
    }
}

/// The proxy `rules` send `dst` through; never one for this machine.
fn intercept(rules: Option<&Matcher>, dst: &Uri) -> Option<Intercept> {
    if dst.host().is_none_or(is_loopback) {
        return None;
    }
    rules?.intercept(dst)
}

/// Whether the proxy variables of `env` send requests to `url` through a
/// proxy, by the rules the exporters follow (and Go's clients, kubectl
/// among them): `NO_PROXY` hosts and this machine are reached directly.
pub fn env_proxies(env: &OtelEnv, url: &str) -> bool {
    url.parse::<Uri>()
        .is_ok_and(|uri| intercept(matcher(env).as_ref(), &uri).is_some())
}

/// Whether `host` (a URI's host, IPv6 in brackets) is this machine.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.to_ascii_lowercase().ends_with(".localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `uri` with its scheme's port written out: a tunnel is opened to a
/// host and port, and `http://` means 80, not the tunnel's default 443.
fn with_port(uri: Uri) -> Uri {
    let (Some(host), None) = (uri.host(), uri.port_u16()) else {
        return uri;
    };
    let port = if uri.scheme_str() == Some("http") {
        80
    } else {
        443
    };
    let authority = format!("{host}:{port}");
    let mut parts = uri.clone().into_parts();
    match authority.parse() {
        Ok(authority) => {
            parts.authority = Some(authority);
            Uri::from_parts(parts).unwrap_or(uri)
        }
        Err(_) => uri,
    }
}

/// A connection an exporter speaks over: to the collector (directly or
/// through a tunnel), or to a proxy that forwards its requests, which
/// hyper's client must then write in absolute form.
#[derive(Debug)]
pub(crate) struct ExportIo {
    io: TokioIo<TcpStream>,
    forwarded: bool,
}

impl Connection for ExportIo {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.forwarded)
    }
}

impl hyper::rt::Read for ExportIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for ExportIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}

impl Service<Uri> for ProxyConnector {
    type Response = ExportIo;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let proxy = self.proxy_for(&dst);
        let forward = self.forwards(&dst);
        let mut http = self.http.clone();
        Box::pin(async move {
            let direct = |io| ExportIo {
                io,
                forwarded: false,
            };
            let Some(proxy) = proxy else {
                return Ok(direct(http.call(dst).await?));
            };
            if forward {
                let io = http.call(proxy.uri().clone()).await?;
                return Ok(ExportIo {
                    io,
                    forwarded: true,
                });
            }
            let mut tunnel = Tunnel::new(proxy.uri().clone(), http);
            if let Some(auth) = proxy.basic_auth() {
                tunnel = tunnel.with_auth(auth.clone());
            }
            std::future::poll_fn(|cx| tunnel.poll_ready(cx)).await?;
            Ok(direct(tunnel.call(with_port(dst)).await?))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> OtelEnv {
        OtelEnv::from_pairs(pairs.iter().copied())
    }

    /// Which endpoints go through which proxy: by scheme, `ALL_PROXY` as
    /// the fallback, `NO_PROXY` hosts directly, nothing without a proxy.
    #[test]
    fn endpoints_follow_the_proxy_rules() {
        let vars = env(&[
            ("https_proxy", "http://user:secret@proxy:3128"),
            ("ALL_PROXY", "http://other:8080"),
            ("NO_PROXY", "collector.internal,10.0.0.0/8"),
        ]);
        let connector = ProxyConnector::new(&vars, "https://saas.example:443");
        let connector = connector.unwrap_or_else(|e| panic!("{e}"));
        assert!(connector.proxies("https://saas.example/v1/traces"));
        assert!(connector.proxies("http://plain.example:4318"));
        assert!(!connector.proxies("http://collector.internal:4318"));
        assert!(!connector.proxies("http://10.1.2.3:4318"));
        for local in [
            "http://localhost:4318",
            "https://127.0.0.2",
            "http://[::1]:4317",
        ] {
            assert!(!connector.proxies(local), "{local} is reached directly");
        }
        let rules = matcher(&vars).map(|m| m.intercept(&Uri::from_static("https://a.b")));
        let proxy = rules
            .flatten()
            .map(|p| (p.uri().to_string(), p.basic_auth().cloned()));
        assert_eq!(
            proxy.map(|(uri, auth)| (uri, auth.is_some())),
            Some(("http://proxy:3128/".to_string(), true))
        );
        let direct = ProxyConnector::new(&env(&[]), "https://saas.example");
        assert!(direct.is_ok_and(|c| !c.proxies("https://saas.example")));
        assert!(format!("{:?}", connector).contains("proxied: true"));
        assert!(!format!("{:?}", connector).contains("secret"));
    }

    /// A proxy that is not `http://` is refused at start, naming the
    /// variable; one that does not apply to the endpoint is not.
    #[test]
    fn only_http_proxies() {
        let socks = env(&[("HTTPS_PROXY", "socks5://proxy:1080")]);
        let error = ProxyConnector::new(&socks, "https://saas.example").err();
        let error = error.map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("HTTPS_PROXY:"), "{error}");
        assert!(error.contains("http:// proxies"), "{error}");
        assert!(ProxyConnector::new(&socks, "http://plain.example:4318").is_ok());
        assert!(ProxyConnector::new(&socks, "https://localhost:4318").is_ok());
    }

    /// The rules as a question about any URL: the proxy's scheme, no
    /// proxy for `NO_PROXY` hosts or this machine, none without variables.
    #[test]
    fn env_proxies_answers_for_any_url() {
        let vars = env(&[
            ("HTTPS_PROXY", "http://proxy:3128"),
            ("no_proxy", ".svc,10.0.0.0/8"),
        ]);
        assert!(env_proxies(&vars, "https://api.example:6443"));
        assert!(!env_proxies(&vars, "https://kubernetes.default.svc"));
        assert!(!env_proxies(&vars, "https://10.96.0.1:443"));
        assert!(!env_proxies(&vars, "https://127.0.0.1:6443"));
        assert!(!env_proxies(&vars, "https://localhost:6443"));
        assert!(!env_proxies(&env(&[]), "https://api.example:6443"));
    }

    /// A forwarding connector sends the proxy's credentials with each
    /// request to an `http://` collector; a tunnel (an `https://` one, or
    /// a connector that does not forward) carries them on its `CONNECT`.
    #[test]
    fn forwarded_requests_carry_the_credentials() {
        let vars = env(&[
            ("HTTP_PROXY", "http://gw:s3cret@proxy:3128"),
            ("HTTPS_PROXY", "http://gw:s3cret@proxy:3128"),
        ]);
        let plain = "http://collector.example:4318";
        let connector = ProxyConnector::new(&vars, plain).unwrap_or_else(|e| panic!("{e}"));
        assert!(connector.request_headers(plain).is_empty());
        let forwarding = connector.forwarding();
        let headers = forwarding.request_headers(plain);
        assert_eq!(
            headers.get("proxy-authorization").map(String::as_str),
            Some("Basic Z3c6czNjcmV0")
        );
        assert!(
            forwarding
                .request_headers("https://collector.example")
                .is_empty()
        );
        assert!(
            forwarding
                .request_headers("http://127.0.0.1:4318")
                .is_empty()
        );
    }

    /// Ports are written out for the tunnel.
    #[test]
    fn tunnels_get_explicit_ports() {
        let port = |uri: &'static str| with_port(Uri::from_static(uri)).to_string();
        assert_eq!(port("http://c/v1/traces"), "http://c:80/v1/traces");
        assert_eq!(port("https://c"), "https://c:443/");
        assert_eq!(port("https://c:4318/x"), "https://c:4318/x");
    }
}
