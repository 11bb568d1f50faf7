//! `Snapshot::validate`: structural checks a data plane runs before building.
//!
//! The controller only publishes valid snapshots; the data plane checks again
//! because a snapshot also arrives from disk (last-known-good) or over the
//! network, and a bad one must be rejected while the old one keeps serving.

use crate::{Filter, ListenerTls, PER_MILLION, Snapshot, Socket, TlsMode};
use std::collections::HashSet;
use thiserror::Error;

/// Why a snapshot was rejected.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ValidationError {
    /// An index points past the end of `routes` or `backends`.
    #[error("{at}: {what} index {index} out of range (len {len})")]
    IndexOutOfRange {
        /// Where the index was found.
        at: String,
        /// Which table it indexes.
        what: &'static str,
        /// The index.
        index: usize,
        /// The table's length.
        len: usize,
    },
    /// Two sockets bind the same address and port.
    #[error("socket {0} is declared twice")]
    DuplicateSocket(String),
    /// A value is outside what the data plane accepts.
    #[error("{at}: {message}")]
    Invalid {
        /// Where the value was found.
        at: String,
        /// What is wrong with it.
        message: String,
    },
}

const REDIRECT_CODES: [u16; 5] = [301, 302, 303, 307, 308];

impl Snapshot {
    /// Checks indices, ports, redirect codes, mirror fractions, telemetry
    /// ratios, retry policies and listener TLS (certificates present,
    /// options servable).
    ///
    /// # Errors
    ///
    /// The first problem found, naming the element it is in.
    pub fn validate(&self) -> Result<(), ValidationError> {
        let mut seen = HashSet::new();
        for socket in &self.sockets {
            let key = format!("{}:{}", socket.address, socket.bind_port);
            if socket.bind_port == 0 || socket.port == 0 {
                return Err(invalid(&key, "port 0"));
            }
            if !seen.insert(key.clone()) {
                return Err(ValidationError::DuplicateSocket(key));
            }
            check_socket_tls(&key, socket)?;
            check_socket_tls_routes(&key, socket)?;
            for listener in &socket.listeners {
                for route in listener.tls_routes.iter().flat_map(|t| &t.routes) {
                    for b in route.backends.iter().filter_map(|b| b.backend) {
                        self.check_index(&route.name, "backend", b, self.backends.len())?;
                    }
                }
                for vhost in &listener.virtual_hosts {
                    for m in &vhost.matches {
                        self.check_index(&listener.name, "route", m.route, self.routes.len())?;
                    }
                }
            }
        }
        let telemetry = &self.settings.telemetry;
        let ratios = [
            telemetry.sampling_per_million,
            Some(telemetry.access_log_per_million),
        ];
        if ratios.iter().flatten().any(|r| *r > PER_MILLION) {
            return Err(invalid(
                "settings.telemetry",
                "a ratio is above one million per million",
            ));
        }
        if !self.settings.client_cert_header.is_valid_name() {
            return Err(invalid(
                "settings.clientCertHeader",
                "the header name is not a lowercase HTTP token",
            ));
        }
        let retry = &self.settings.retry;
        if retry.budget_percent > 100 || retry.budget_interval_ms < 1000 {
            return Err(invalid(
                "settings.retry",
                "budget percent must be at most 100 and the interval at least 1000 ms",
            ));
        }
        for route in &self.routes {
            self.check_filters(&route.name, &route.filters)?;
            if let Some(problem) = route.retry.as_ref().and_then(|r| r.problem()) {
                return Err(invalid(&route.name, &problem));
            }
            if route.sampling_per_million.is_some_and(|r| r > PER_MILLION) {
                return Err(invalid(
                    &route.name,
                    "sampling ratio above one million per million",
                ));
            }
            if let Some(i) = route.auth {
                self.check_index(&route.name, "auth", i, self.auth.len())?;
            }
            if let Some(i) = route.rate_limit {
                self.check_index(&route.name, "rate limits", i, self.rate_limits.len())?;
            }
            for backend in &route.backends {
                if let Some(i) = backend.backend {
                    self.check_index(&route.name, "backend", i, self.backends.len())?;
                }
                self.check_filters(&route.name, &backend.filters)?;
            }
        }
        for limit in self.rate_limits.iter().flat_map(|l| &l.limits) {
            if limit.requests == 0 || limit.interval_ms == 0 {
                return Err(invalid(
                    &limit.source,
                    "a limit needs requests and an interval above 0",
                ));
            }
        }
        for (i, auth) in self.auth.iter().enumerate() {
            let at = format!("auth[{i}]");
            for target in auth.targets() {
                if let Some(b) = target.backend {
                    self.check_index(&at, "backend", b, self.backends.len())?;
                }
            }
        }
        for backend in &self.backends {
            if backend.endpoints.iter().any(|e| e.port == 0) {
                return Err(invalid(&backend.name, "endpoint port 0"));
            }
        }
        Ok(())
    }

    fn check_index(
        &self,
        at: &str,
        what: &'static str,
        index: usize,
        len: usize,
    ) -> Result<(), ValidationError> {
        if index < len {
            Ok(())
        } else {
            Err(ValidationError::IndexOutOfRange {
                at: at.to_string(),
                what,
                index,
                len,
            })
        }
    }

    fn check_filters(&self, at: &str, filters: &[Filter]) -> Result<(), ValidationError> {
        for filter in filters {
            match filter {
                Filter::RequestRedirect(r) if !REDIRECT_CODES.contains(&r.status_code) => {
                    return Err(invalid(at, &format!("redirect status {}", r.status_code)));
                }
                Filter::RequestMirror(m) => {
                    if m.denominator == 0 || m.numerator > m.denominator {
                        return Err(invalid(at, "mirror fraction must be within 0..=1"));
                    }
                    if let Some(i) = m.backend {
                        self.check_index(at, "backend", i, self.backends.len())?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// A socket's listeners are all TLS or all plain: the first bytes of a
/// connection cannot tell which listener it is for.
fn check_socket_tls(at: &str, socket: &Socket) -> Result<(), ValidationError> {
    let tls = socket.listeners.iter().filter(|l| l.tls.is_some()).count();
    if tls != 0 && tls != socket.listeners.len() {
        return Err(invalid(at, "mixes TLS and plain listeners"));
    }
    for listener in &socket.listeners {
        if let Some(tls) = &listener.tls {
            check_tls(&listener.name, tls)?;
        }
    }
    Ok(())
}

/// A socket relays TLS (TLSRoutes) on every listener or on none, all in
/// one mode (the first bytes cannot tell a passthrough connection from one
/// to terminate before the SNI is read, and Tollgate does not mix them);
/// a Terminate listener has certificates, a Passthrough one none; one SNI
/// hostname appears once per listener.
fn check_socket_tls_routes(at: &str, socket: &Socket) -> Result<(), ValidationError> {
    let modes: HashSet<Option<TlsMode>> = socket
        .listeners
        .iter()
        .map(|l| l.tls_routes.as_ref().map(|t| t.mode))
        .collect();
    if modes.len() > 1 {
        return Err(invalid(
            at,
            "mixes TLS relay modes or relay and HTTP listeners",
        ));
    }
    for listener in &socket.listeners {
        let Some(routes) = &listener.tls_routes else {
            continue;
        };
        match (routes.mode, listener.tls.is_some()) {
            (TlsMode::Terminate, false) => {
                return Err(invalid(&listener.name, "Terminate listener without TLS"));
            }
            (TlsMode::Passthrough, true) => {
                return Err(invalid(&listener.name, "Passthrough listener with TLS"));
            }
            _ => {}
        }
        let mut hosts = HashSet::new();
        if let Some(r) = routes.routes.iter().find(|r| !hosts.insert(&r.hostname)) {
            return Err(invalid(
                &r.name,
                &format!("SNI {} routed twice", r.hostname),
            ));
        }
    }
    Ok(())
}

/// What can be checked of a listener's TLS without a crypto library: at
/// least one certificate with a chain and a key, a non-empty version
/// range, known cipher-suite, group and ALPN names, and a cipher suite for
/// every version allowed.
fn check_tls(at: &str, tls: &ListenerTls) -> Result<(), ValidationError> {
    if tls.certificates.is_empty() {
        return Err(invalid(at, "TLS listener without certificates"));
    }
    if let Some(c) = tls
        .certificates
        .iter()
        .find(|c| c.chain_pem.is_empty() || c.key_pem.is_empty())
    {
        return Err(invalid(at, &format!("{}: empty chain or key", c.name)));
    }
    tls.options
        .check()
        .map_err(|message| invalid(at, &message))?;
    if tls
        .client_validation
        .as_ref()
        .is_some_and(|v| v.ca_certificates.is_empty())
    {
        return Err(invalid(at, "client validation without a CA certificate"));
    }
    Ok(())
}

fn invalid(at: &str, message: &str) -> ValidationError {
    ValidationError::Invalid {
        at: at.to_string(),
        message: message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use crate::*;

    fn one_route() -> Snapshot {
        Snapshot {
            gateway: "default/gw".into(),
            sockets: vec![Socket {
                address: "127.0.0.1".into(),
                bind_port: 8080,
                port: 80,
                listeners: vec![Listener {
                    tls: None,
                    tls_routes: None,
                    name: "gateway/default/gw/listener/http".into(),
                    hostname: HostMatch::Any,
                    virtual_hosts: vec![VirtualHost {
                        hostname: HostMatch::Any,
                        matches: vec![RouteMatch {
                            route: 0,
                            path: PathMatch::Prefix("/".into()),
                            method: None,
                            headers: vec![],
                            query: vec![],
                        }],
                    }],
                }],
                proxy_protocol: false,
            }],
            routes: vec![Route {
                name: "httproute/default/r/rule/0".into(),
                rule_name: None,
                filters: vec![],
                backends: vec![BackendRef {
                    backend: Some(0),
                    weight: 1,
                    filters: vec![],
                }],
                timeouts: Timeouts::default(),
                retry: None,
                sampling_per_million: None,
                auth: None,
                rate_limit: None,
                grpc: false,
            }],
            backends: vec![Backend {
                name: "service/default/echo/port/80".into(),
                protocol: BackendProtocol::Http1,
                tls: None,
                endpoints: vec![Endpoint {
                    address: "127.0.0.1".into(),
                    port: 3000,
                }],
            }],
            ..Snapshot::default()
        }
    }

    #[test]
    fn a_consistent_snapshot_is_valid() {
        assert_eq!(one_route().validate(), Ok(()));
    }

    #[test]
    fn a_dangling_backend_index_is_rejected() {
        let mut s = one_route();
        s.routes[0].backends[0].backend = Some(3);
        assert!(matches!(
            s.validate(),
            Err(ValidationError::IndexOutOfRange {
                what: "backend",
                index: 3,
                ..
            })
        ));
    }

    #[test]
    fn a_bad_redirect_code_is_rejected() {
        let mut s = one_route();
        s.routes[0].filters.push(Filter::RequestRedirect(Redirect {
            scheme: None,
            hostname: None,
            path: None,
            port: None,
            status_code: 200,
        }));
        assert!(matches!(s.validate(), Err(ValidationError::Invalid { .. })));
    }

    /// Ratios are parts per million: more than a million is refused, on the
    /// Gateway and on a rule.
    #[test]
    fn telemetry_ratios_stay_within_one() {
        let mut s = one_route();
        s.settings.telemetry.sampling_per_million = Some(1_000_000);
        s.routes[0].sampling_per_million = Some(0);
        assert_eq!(s.validate(), Ok(()));
        s.settings.telemetry.access_log_per_million = 1_000_001;
        assert!(matches!(s.validate(), Err(ValidationError::Invalid { .. })));
        let mut s = one_route();
        s.routes[0].sampling_per_million = Some(2_000_000);
        assert!(matches!(s.validate(), Err(ValidationError::Invalid { .. })));
    }

    /// Retry codes are 400..=599, sorted and distinct; attempts 1..=10;
    /// the budget's percentage at most 100 over at least a second.
    #[test]
    fn retry_policies_and_budget_are_checked() {
        let retry = |codes: Vec<u16>, attempts| Retry {
            codes,
            attempts,
            backoff_ms: 25,
        };
        let cases = [
            (retry(vec![500, 503], 3), true),
            (retry(vec![], 1), true),
            (retry(vec![400, 599], MAX_RETRY_ATTEMPTS), true),
            (retry(vec![399], 1), false),
            (retry(vec![600], 1), false),
            (retry(vec![503, 500], 1), false),
            (retry(vec![503, 503], 1), false),
            (retry(vec![503], 0), false),
            (retry(vec![503], MAX_RETRY_ATTEMPTS + 1), false),
        ];
        for (policy, ok) in cases {
            let mut s = one_route();
            s.routes[0].retry = Some(policy.clone());
            assert_eq!(s.validate().is_ok(), ok, "{policy:?}");
        }
        let mut s = one_route();
        s.settings.retry.budget_percent = 101;
        assert!(s.validate().is_err());
        let mut s = one_route();
        s.settings.retry.budget_interval_ms = 999;
        assert!(s.validate().is_err());
    }

    fn tls() -> ListenerTls {
        ListenerTls {
            certificates: vec![Certificate {
                name: "secret/default/cert".into(),
                chain_pem: Redacted::new("-----BEGIN CERTIFICATE-----"),
                key_pem: Redacted::new("-----BEGIN PRIVATE KEY-----"),
            }],
            options: TlsOptions::default(),
            client_validation: None,
        }
    }

    /// TLS needs a certificate, a version range that is not upside down,
    /// known names, and a cipher suite for each version it allows; a socket
    /// is all TLS or all plain.
    #[test]
    fn listener_tls_is_checked() {
        let with = |f: &dyn Fn(&mut ListenerTls)| {
            let mut s = one_route();
            let mut t = tls();
            f(&mut t);
            s.sockets[0].listeners[0].tls = Some(t);
            s.validate()
        };
        assert_eq!(with(&|_| {}), Ok(()));
        assert!(with(&|t| t.certificates.clear()).is_err());
        assert!(with(&|t| t.certificates[0].key_pem = Redacted::default()).is_err());
        assert!(
            with(&|t| {
                t.options.min_version = Some(TlsVersion::Tls13);
                t.options.max_version = Some(TlsVersion::Tls12);
            })
            .is_err()
        );
        assert!(with(&|t| t.options.groups = vec!["P-521".into()]).is_err());
        assert!(with(&|t| t.options.alpn = vec!["spdy/3".into()]).is_err());
        // TLS 1.2 allowed but only TLS 1.3 suites named.
        assert!(
            with(&|t| t.options.cipher_suites = vec!["TLS13_AES_128_GCM_SHA256".into()]).is_err()
        );
        assert_eq!(
            with(&|t| {
                t.options.min_version = Some(TlsVersion::Tls13);
                t.options.cipher_suites = vec!["TLS13_AES_128_GCM_SHA256".into()];
            }),
            Ok(())
        );
        let mut s = one_route();
        let mut plain = s.sockets[0].listeners[0].clone();
        plain.name.push_str("-plain");
        plain.hostname = HostMatch::parse("a.example");
        s.sockets[0].listeners[0].tls = Some(tls());
        s.sockets[0].listeners.push(plain);
        assert!(s.validate().is_err());
    }

    /// The redacted copy keeps everything but the keys.
    #[test]
    fn redacted_drops_only_keys() {
        let mut s = one_route();
        s.sockets[0].listeners[0].tls = Some(tls());
        let json = serde_json::to_string(&s.redacted()).unwrap();
        assert!(!json.contains("BEGIN PRIVATE KEY"));
        assert!(json.contains("<redacted 27 bytes>"));
        assert!(json.contains("BEGIN CERTIFICATE"));
        assert!(!format!("{s:?}").contains("BEGIN PRIVATE KEY"));
    }

    #[test]
    fn the_hash_ignores_the_version() {
        let a = one_route();
        let mut b = a.clone();
        b.version = 42;
        assert_eq!(a.content_hash(), b.content_hash());
        b.routes[0].backends[0].weight = 2;
        assert_ne!(a.content_hash(), b.content_hash());
    }

    #[test]
    fn json_round_trip() {
        let s = one_route();
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Snapshot>(&json).unwrap(), s);
    }

    /// A relay listener's backends must exist, its mode must agree with
    /// its TLS (Terminate has certificates, Passthrough none), and a socket
    /// does not mix relay modes or relay and HTTP listeners.
    #[test]
    fn tls_routes_are_checked() {
        let mut s = one_route();
        let routes = |mode, backend| TlsRoutes {
            mode,
            routes: vec![SniRoute {
                name: "tlsroute/default/r".into(),
                hostname: HostMatch::parse("a.example.com"),
                backends: vec![SniBackend { backend, weight: 1 }],
            }],
        };
        s.sockets[0].listeners[0].tls_routes = Some(routes(TlsMode::Passthrough, Some(0)));
        s.validate().unwrap();
        s.sockets[0].listeners[0].tls_routes = Some(routes(TlsMode::Passthrough, Some(9)));
        assert!(s.validate().is_err(), "dangling backend");
        s.sockets[0].listeners[0].tls_routes = Some(routes(TlsMode::Terminate, Some(0)));
        assert!(s.validate().is_err(), "Terminate without TLS");
        s.sockets[0].listeners[0].tls = Some(tls());
        s.validate().unwrap();
        let mut other = s.sockets[0].listeners[0].clone();
        other.tls = None;
        other.tls_routes = Some(routes(TlsMode::Passthrough, Some(0)));
        s.sockets[0].listeners.push(other);
        assert!(s.validate().is_err(), "mixed modes");
    }
}
