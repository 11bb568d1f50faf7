//! The configurations every proxy runs with, written so they are equivalent.
//!
//! One worker each, upstream keep-alive on, access logs off, no limits that
//! would cut a benchmark connection short (nginx's `keepalive_requests`
//! defaults to 1000, so it is raised for both sides, as Tollgate and HAProxy
//! have no such limit). The texts are copied verbatim into the report so a
//! reader can check the comparison is fair.

use std::fmt::Write as _;
use tollgate_snapshot::{
    Backend, BackendProtocol, BackendRef, Certificate, Endpoint, HostMatch, Listener, ListenerTls,
    PathMatch, Redacted, Route, RouteMatch, Snapshot, Socket, TlsOptions, TlsVersion, VirtualHost,
};

/// The Gateway the benchmark snapshots and manifests describe.
pub const GATEWAY: &str = "bench/gw";

/// The path prefix of route `i` in the route-scale snapshots.
pub fn route_path(i: usize) -> String {
    format!("/svc-{i}")
}

/// A snapshot serving `port` on 127.0.0.1 that forwards to `backend_port`.
///
/// `routes == 0` gives one catch-all `PathPrefix /` route; otherwise
/// `routes` rules `PathPrefix /svc-<i>` in Gateway API precedence order
/// (longer prefix first, then creation order).
pub fn snapshot(port: u16, backend_port: u16, routes: usize) -> Snapshot {
    let paths: Vec<String> = if routes == 0 {
        vec!["/".to_string()]
    } else {
        (0..routes).map(route_path).collect()
    };
    let mut order: Vec<usize> = (0..paths.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(paths[i].len()), i));
    let matches = order
        .iter()
        .map(|&i| RouteMatch {
            route: i,
            path: PathMatch::Prefix(paths[i].clone()),
            method: None,
            headers: Vec::new(),
            query: Vec::new(),
        })
        .collect();
    let routes = (0..paths.len())
        .map(|i| Route {
            name: format!("httproute/bench/r{i}/rule/0"),
            rule_name: None,
            filters: Vec::new(),
            backends: vec![BackendRef {
                backend: Some(0),
                weight: 1,
                filters: Vec::new(),
            }],
            timeouts: Default::default(),
            retry: None,
            sampling_per_million: None,
            auth: None,
            rate_limit: None,
            grpc: false,
        })
        .collect();
    Snapshot {
        version: 1,
        gateway: GATEWAY.to_string(),
        settings: Default::default(),
        sockets: vec![Socket {
            address: "127.0.0.1".to_string(),
            bind_port: port,
            port,
            listeners: vec![Listener {
                tls: None,
                tls_routes: None,
                name: "gateway/bench/gw/listener/http".to_string(),
                hostname: HostMatch::Any,
                virtual_hosts: vec![VirtualHost {
                    hostname: HostMatch::Any,
                    matches,
                }],
            }],
            proxy_protocol: false,
        }],
        routes,
        backends: vec![Backend {
            name: "service/bench/backend/port/80".to_string(),
            protocol: BackendProtocol::Http1,
            tls: None,
            endpoints: vec![Endpoint {
                address: "127.0.0.1".to_string(),
                port: backend_port,
            }],
        }],
        backend_client_certificate: None,
        auth: Vec::new(),
        rate_limits: Vec::new(),
        ..Snapshot::empty(GATEWAY)
    }
}

/// Makes every route of `snapshot` count against `limits`, kept in `redis`.
pub fn limit_rate(
    snapshot: &mut Snapshot,
    limits: tollgate_snapshot::RateLimits,
    redis: tollgate_snapshot::RedisSettings,
) {
    snapshot.rate_limits = vec![limits];
    snapshot.settings.redis = Some(redis);
    for route in &mut snapshot.routes {
        route.rate_limit = Some(0);
    }
}

/// Makes every route of `snapshot` require `auth`.
pub fn require_auth(snapshot: &mut Snapshot, auth: tollgate_snapshot::AuthConfig) {
    snapshot.auth = vec![auth];
    for route in &mut snapshot.routes {
        route.auth = Some(0);
    }
}

/// [`snapshot`] with its listener terminating TLS 1.3 with `chain_pem` and
/// `key_pem`, offering ALPN `http/1.1` only and no session resumption,
/// like the peers' TLS configs (no tickets, no session cache).
pub fn snapshot_tls(port: u16, backend_port: u16, chain_pem: &str, key_pem: &str) -> Snapshot {
    let mut snapshot = snapshot(port, backend_port, 0);
    for listener in snapshot.sockets.iter_mut().flat_map(|s| &mut s.listeners) {
        listener.name = "gateway/bench/gw/listener/https".to_string();
        listener.tls = Some(ListenerTls {
            certificates: vec![Certificate {
                name: "secret/bench/bench-ecdsa".to_string(),
                chain_pem: Redacted::new(chain_pem),
                key_pem: Redacted::new(key_pem),
            }],
            options: TlsOptions {
                min_version: Some(TlsVersion::Tls13),
                alpn: vec!["http/1.1".to_string()],
                session_resumption: Some(false),
                ..TlsOptions::default()
            },
            client_validation: None,
        });
    }
    snapshot
}

/// [`snapshot`] for the gRPC scenario: the catch-all rule is a GRPCRoute's
/// and the backend speaks h2c, as `appProtocol: kubernetes.io/h2c` makes it.
pub fn snapshot_grpc(port: u16, backend_port: u16) -> Snapshot {
    let mut snapshot = snapshot(port, backend_port, 0);
    for route in &mut snapshot.routes {
        route.name = "grpcroute/bench/r0/rule/0".to_string();
        route.grpc = true;
    }
    for backend in &mut snapshot.backends {
        backend.name = "service/bench/grpc-backend/port/9000".to_string();
        backend.protocol = BackendProtocol::H2c;
    }
    snapshot
}

/// nginx in front of the gRPC backend: one worker, h2c with prior knowledge
/// on the listener (`listen ... http2`), `grpc_pass` with upstream
/// keep-alive, access log off, request limits per connection raised as for
/// HTTP/1.1.
pub fn nginx_grpc(port: u16, backend_port: u16, work: &str) -> String {
    // The HTTP/1.1 configuration with the gRPC listener and location.
    nginx_with(port, backend_port, work, " http2", "")
        .replacen("upstream backend {", "upstream grpc_backend {", 1)
        .replacen(
            "proxy_pass http://backend;\n            proxy_http_version 1.1;\n            proxy_set_header Connection \"\";\n            proxy_buffering on;",
            "grpc_pass grpc://grpc_backend;",
            1,
        )
}

/// nginx: one worker, upstream keep-alive, access log off.
pub fn nginx(port: u16, backend_port: u16, work: &str) -> String {
    nginx_with(port, backend_port, work, "", "")
}

/// [`nginx`] with `limit_req` at `per_minute` on one zone keyed by the
/// server name, so every request counts against the same key (no burst,
/// no delay: a request over the rate would be refused with 503).
pub fn nginx_limit_req(port: u16, backend_port: u16, work: &str, per_minute: u64) -> String {
    let zone = format!(
        "limit_req_zone $server_name zone=bench:1m rate={per_minute}r/m;\n    limit_req zone=bench;\n    "
    );
    nginx(port, backend_port, work).replacen(
        "access_log off;",
        &format!("{zone}access_log off;"),
        1,
    )
}

/// [`nginx`] terminating TLS 1.3 with `cert` and `key`, with neither a
/// session cache nor tickets, so every new connection is a full handshake.
pub fn nginx_tls(port: u16, backend_port: u16, work: &str, cert: &str, key: &str) -> String {
    let directives = format!(
        "
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.3;
        ssl_session_cache off;
        ssl_session_tickets off;"
    );
    nginx_with(port, backend_port, work, " ssl", &directives)
}

/// nginx with `listen_flags` after the address and `server` directives
/// before the location.
fn nginx_with(
    port: u16,
    backend_port: u16,
    work: &str,
    listen_flags: &str,
    server: &str,
) -> String {
    format!(
        "worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {work}/nginx-body;
    proxy_temp_path {work}/nginx-proxy;
    fastcgi_temp_path {work}/nginx-fastcgi;
    uwsgi_temp_path {work}/nginx-uwsgi;
    scgi_temp_path {work}/nginx-scgi;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    upstream backend {{
        server 127.0.0.1:{backend_port};
        keepalive 1024;
        keepalive_requests 1000000;
    }}
    server {{
        listen 127.0.0.1:{port}{listen_flags} backlog=4096;{server}
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_buffering on;
        }}
    }}
}}
"
    )
}

/// HAProxy: one thread, HTTP mode, keep-alive both sides, no logging.
pub fn haproxy(port: u16, backend_port: u16) -> String {
    haproxy_with(backend_port, "", &format!("127.0.0.1:{port}"))
}

/// [`haproxy`] terminating TLS 1.3 with `pem` (certificate and key), ALPN
/// `http/1.1`, without tickets or a session cache: every new connection is
/// a full handshake.
pub fn haproxy_tls(port: u16, backend_port: u16, pem: &str) -> String {
    haproxy_with(
        backend_port,
        "\n    tune.ssl.cachesize 0",
        &format!("127.0.0.1:{port} ssl crt {pem} alpn http/1.1 ssl-min-ver TLSv1.3 no-tls-tickets"),
    )
}

/// HAProxy with `global` lines added and `bind` as the frontend's bind line.
fn haproxy_with(backend_port: u16, global: &str, bind: &str) -> String {
    format!(
        "global
    nbthread 1
    maxconn 8000{global}

defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
    option http-keep-alive
    http-reuse always

frontend bench
    bind {bind}
    default_backend backend

backend backend
    server backend 127.0.0.1:{backend_port}
"
    )
}

/// Manifests for `tollgate-controller --manifests`: GatewayClass, Gateway on
/// `port`, the backend Service and EndpointSlice. Routes come from [`routes_yaml`].
pub fn base_manifests(port: u16, backend_port: u16) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: tollgate}}
spec: {{controllerName: tollgate.dev/gateway-controller}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: bench}}
spec:
  gatewayClassName: tollgate
  addresses: [{{type: IPAddress, value: 127.0.0.1}}]
  listeners:
    - {{name: http, protocol: HTTP, port: {port}, allowedRoutes: {{namespaces: {{from: Same}}}}}}
---
apiVersion: v1
kind: Service
metadata: {{name: backend, namespace: bench}}
spec:
  ports: [{{name: http, protocol: TCP, port: 80, targetPort: {backend_port}}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: backend-local
  namespace: bench
  labels: {{kubernetes.io/service-name: backend}}
addressType: IPv4
ports: [{{name: http, protocol: TCP, port: {backend_port}}}]
endpoints:
  - addresses: [127.0.0.1]
    conditions: {{ready: true}}
"
    )
}

/// One HTTPRoute per `(name, path)`: `PathPrefix path` to the backend Service.
pub fn routes_yaml(names: impl IntoIterator<Item = (String, String)>) -> String {
    let mut out = String::new();
    for (name, path) in names {
        let _ = write!(
            out,
            "---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: bench}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
    - matches: [{{path: {{type: PathPrefix, value: {path}}}}}]
      backendRefs: [{{name: backend, port: 80}}]
"
        );
    }
    out
}

/// The route-scale HTTPRoutes: `r<i>` matching [`route_path`]`(i)`.
pub fn scale_routes(count: usize) -> String {
    routes_yaml((0..count).map(|i| (format!("r{i}"), route_path(i))))
}

#[cfg(test)]
mod nginx_tests {
    use super::*;

    /// The gRPC configuration is the HTTP one with an h2c listener and
    /// `grpc_pass` in place of `proxy_pass`.
    #[test]
    fn grpc_config_passes_grpc() {
        let text = nginx_grpc(8080, 9000, "/w");
        assert!(
            text.contains("listen 127.0.0.1:8080 http2 backlog=4096;"),
            "{text}"
        );
        assert!(
            text.contains("upstream grpc_backend {\n        server 127.0.0.1:9000;"),
            "{text}"
        );
        assert!(text.contains("grpc_pass grpc://grpc_backend;"), "{text}");
        assert!(!text.contains("proxy_pass"), "{text}");
    }
}
