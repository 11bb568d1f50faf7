//! WebSocket upgrades through the pipeline: which requests are relayed as
//! upgrades, what the backend is sent, and what the client gets back.
//!
//! A WebSocket opens with an ordinary request (HTTP/1.1 `GET` with
//! `Connection: upgrade` and `Upgrade: websocket`, or, over HTTP/2, an
//! RFC 8441 extended `CONNECT` with `:protocol websocket`), so it is routed
//! and filtered like any request. Hop-by-hop hygiene removes `Connection`
//! and `Upgrade` before routing; an [`Offer`] read before that puts back
//! exactly what Tollgate relays (`websocket`, no other token) on the
//! request to the backend, which always goes over a fresh HTTP/1.1
//! connection (`upstream::Endpoint::send_upgrade`). An extended CONNECT
//! becomes the HTTP/1.1 handshake the backend expects (a
//! `Sec-WebSocket-Key` made up here, since RFC 8441 clients send none),
//! and the backend's `101` becomes the `200` RFC 8441 asks for.
//!
//! The pipeline relays nothing itself: on `101` it leaves a
//! [`BackendUpgrade`] in the response's extensions and the server, which
//! owns the client's connection, runs the tunnel. The server marks the
//! requests it can do that for with [`Relayable`]; without the mark an
//! `Upgrade` header is dropped as before and the request served plainly.
//! A backend that refuses (any answer but `101`) has its answer relayed as
//! a normal response. An h2c backend cannot take an HTTP/1.1 upgrade: the
//! request is answered 502 `upgrade-unsupported` rather than sent over an
//! HTTP/1.1 connection the backend never declared it speaks.

use crate::body::ProxyBody;
use crate::error::ProxyError;
use http::header::{
    CONNECTION, HeaderMap, HeaderName, HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_VERSION, UPGRADE,
};
use http::{Method, Request, StatusCode, Version, request, response};
use hyper::upgrade::OnUpgrade;
use tollgate_snapshot::BackendProtocol;

/// The one upgrade token Tollgate relays (h2c is the server's own business).
const WEBSOCKET: &str = "websocket";

/// Marks a request whose connection can carry a relayed upgrade; set by
/// the server on the requests it will run a tunnel for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Relayable;

/// The backend's side of an accepted upgrade, left in the response's
/// extensions for the server to relay once the client has its answer.
#[derive(Clone, Debug)]
pub(crate) struct BackendUpgrade(pub(crate) OnUpgrade);

/// How the client asked for the upgrade.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    /// HTTP/1.1 `Upgrade: websocket`.
    Http1,
    /// HTTP/2 extended CONNECT (RFC 8441) with `:protocol websocket`.
    ExtendedConnect,
}

/// A WebSocket upgrade the client asked for and Tollgate relays.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Offer {
    via: Via,
}

impl Offer {
    /// The offer `parts` make, read before hop-by-hop headers are removed;
    /// `None` for requests that are not relayed as upgrades (no
    /// [`Relayable`] mark, another token, not a `GET`).
    pub(crate) fn read(parts: &request::Parts) -> Option<Offer> {
        parts.extensions.get::<Relayable>()?;
        if is_extended_connect(&parts.method, parts.version, &parts.extensions) {
            return Some(Offer {
                via: Via::ExtendedConnect,
            });
        }
        let offered = parts.version == Version::HTTP_11
            && parts.method == Method::GET
            && has_token(&parts.headers, &CONNECTION, "upgrade")
            && has_token(&parts.headers, &UPGRADE, WEBSOCKET);
        offered.then_some(Offer { via: Via::Http1 })
    }

    /// Makes `request`, built for `protocol`, the HTTP/1.1 upgrade request
    /// the backend is sent.
    ///
    /// # Errors
    ///
    /// [`ProxyError::UpgradeUnsupported`] for an h2c backend, which speaks
    /// no HTTP/1.1.
    pub(crate) fn prepare(
        &self,
        request: &mut Request<ProxyBody>,
        protocol: BackendProtocol,
        backend: &str,
    ) -> Result<(), ProxyError> {
        match protocol {
            BackendProtocol::Http1 => {}
            BackendProtocol::H2c => {
                return Err(ProxyError::UpgradeUnsupported {
                    backend: backend.to_string(),
                });
            }
        }
        *request.method_mut() = Method::GET;
        *request.version_mut() = Version::HTTP_11;
        let headers = request.headers_mut();
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(UPGRADE, HeaderValue::from_static(WEBSOCKET));
        if self.via == Via::ExtendedConnect {
            // RFC 8441 §5: no key travels over HTTP/2; HTTP/1.1 needs one.
            headers.insert(SEC_WEBSOCKET_KEY, websocket_key());
            headers
                .entry(SEC_WEBSOCKET_VERSION)
                .or_insert(HeaderValue::from_static("13"));
        }
        Ok(())
    }

    /// Makes the backend's answer the client's: after `101` the
    /// `Connection`/`Upgrade` pair goes back to an HTTP/1.1 client (hop-by-hop
    /// hygiene removed it) and an extended CONNECT gets `200` instead, and
    /// the backend's side of the tunnel is left in the extensions as a
    /// [`BackendUpgrade`]. Any other answer is left as it is.
    ///
    /// # Errors
    ///
    /// [`ProxyError::UpstreamProtocol`] for a `101` whose connection
    /// cannot be taken over (never expected from the upgrade client).
    pub(crate) fn respond(&self, head: &mut response::Parts) -> Result<(), ProxyError> {
        if head.status != StatusCode::SWITCHING_PROTOCOLS {
            return Ok(());
        }
        let backend =
            head.extensions
                .remove::<OnUpgrade>()
                .ok_or_else(|| ProxyError::UpstreamProtocol {
                    endpoint: String::from("upgrade"),
                    source: "101 without an upgradable connection".into(),
                })?;
        head.extensions.insert(BackendUpgrade(backend));
        match self.via {
            Via::Http1 => {
                head.headers
                    .insert(CONNECTION, HeaderValue::from_static("upgrade"));
                head.headers
                    .insert(UPGRADE, HeaderValue::from_static(WEBSOCKET));
            }
            Via::ExtendedConnect => {
                head.status = StatusCode::OK;
                head.headers.remove(SEC_WEBSOCKET_ACCEPT);
            }
        }
        Ok(())
    }
}

/// Whether a request is an RFC 8441 extended CONNECT for a WebSocket.
pub(crate) fn is_extended_connect(
    method: &Method,
    version: Version,
    extensions: &http::Extensions,
) -> bool {
    version == Version::HTTP_2
        && *method == Method::CONNECT
        && extensions
            .get::<hyper::ext::Protocol>()
            .is_some_and(|p| p.as_str().eq_ignore_ascii_case(WEBSOCKET))
}

/// Whether the HTTP/1.1 request `req` offers a WebSocket upgrade.
pub(crate) fn offers_websocket<B>(req: &Request<B>) -> bool {
    req.version() == Version::HTTP_11
        && req.method() == Method::GET
        && has_token(req.headers(), &CONNECTION, "upgrade")
        && has_token(req.headers(), &UPGRADE, WEBSOCKET)
}

fn has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// A fresh `Sec-WebSocket-Key`: 16 random bytes in base64 (RFC 6455 §4.1).
fn websocket_key() -> HeaderValue {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bytes = [0u8; 18];
    fastrand::fill(&mut bytes[..16]);
    let mut out = Vec::with_capacity(24);
    for chunk in bytes.chunks(3) {
        let n = u32::from(chunk[0]) << 16 | u32::from(chunk[1]) << 8 | u32::from(chunk[2]);
        for shift in [18, 12, 6, 0] {
            out.push(ALPHABET[(n >> shift & 63) as usize]);
        }
    }
    // 16 bytes are 22 characters and `==`.
    out.truncate(22);
    out.extend_from_slice(b"==");
    HeaderValue::from_bytes(&out).unwrap_or(HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(req: http::request::Builder) -> request::Parts {
        req.extension(Relayable).body(()).unwrap().into_parts().0
    }

    /// Only a marked HTTP/1.1 `GET` with both tokens, or an extended
    /// CONNECT for `websocket`, is relayed as an upgrade.
    #[test]
    fn which_requests_are_offers() {
        let ws = || {
            Request::get("/chat")
                .header("connection", "keep-alive, Upgrade")
                .header("upgrade", "WebSocket")
        };
        assert!(Offer::read(&parts(ws())).is_some());
        let unmarked = ws().body(()).unwrap().into_parts().0;
        assert!(Offer::read(&unmarked).is_none());
        let h2c = Request::get("/")
            .header("connection", "upgrade")
            .header("upgrade", "h2c");
        assert!(Offer::read(&parts(h2c)).is_none());
        let no_connection = Request::get("/").header("upgrade", "websocket");
        assert!(Offer::read(&parts(no_connection)).is_none());
        let post = ws().method(Method::POST);
        assert!(Offer::read(&parts(post)).is_none());
        let connect = Request::connect("http://a.example/chat")
            .version(Version::HTTP_2)
            .extension(hyper::ext::Protocol::from_static("websocket"));
        assert!(Offer::read(&parts(connect)).is_some());
        let plain_connect = Request::connect("a.example:443").version(Version::HTTP_2);
        assert!(Offer::read(&parts(plain_connect)).is_none());
    }

    /// An extended CONNECT goes to the backend as an HTTP/1.1 handshake
    /// with a key; h2c backends are refused.
    #[test]
    fn extended_connect_becomes_a_handshake() {
        let offer = Offer {
            via: Via::ExtendedConnect,
        };
        let mut request = Request::new(crate::body::empty());
        *request.method_mut() = Method::CONNECT;
        offer
            .prepare(&mut request, BackendProtocol::Http1, "b")
            .unwrap();
        assert_eq!(request.method(), Method::GET);
        assert_eq!(request.version(), Version::HTTP_11);
        assert_eq!(request.headers()[UPGRADE], "websocket");
        assert_eq!(request.headers()[SEC_WEBSOCKET_VERSION], "13");
        let key = request.headers()[SEC_WEBSOCKET_KEY].to_str().unwrap();
        assert_eq!(key.len(), 24);
        assert!(key.ends_with("=="));
        let error = offer
            .prepare(&mut request, BackendProtocol::H2c, "b")
            .unwrap_err();
        assert_eq!(error.kind().label(), "upgrade-unsupported");
    }

    /// `101` goes back with the upgrade headers (HTTP/1.1) or as `200`
    /// (extended CONNECT); anything else is a plain answer.
    #[test]
    fn answers() {
        let head = |status: u16| {
            let mut response = http::Response::new(());
            *response.status_mut() = StatusCode::from_u16(status).unwrap();
            response
                .headers_mut()
                .insert(SEC_WEBSOCKET_ACCEPT, HeaderValue::from_static("x"));
            let mut request = Request::new(());
            response
                .extensions_mut()
                .insert(hyper::upgrade::on(&mut request));
            response.into_parts().0
        };
        let h1 = Offer { via: Via::Http1 };
        let mut switched = head(101);
        h1.respond(&mut switched).unwrap();
        assert_eq!(switched.headers[UPGRADE], "websocket");
        assert_eq!(switched.headers[CONNECTION], "upgrade");
        assert!(switched.extensions.get::<BackendUpgrade>().is_some());
        let mut refused = head(403);
        h1.respond(&mut refused).unwrap();
        assert!(!refused.headers.contains_key(UPGRADE));
        assert!(refused.extensions.get::<BackendUpgrade>().is_none());
        let h2 = Offer {
            via: Via::ExtendedConnect,
        };
        let mut switched = head(101);
        h2.respond(&mut switched).unwrap();
        assert_eq!(switched.status, StatusCode::OK);
        assert!(!switched.headers.contains_key(SEC_WEBSOCKET_ACCEPT));
        let mut without = head(101);
        without.extensions.clear();
        assert!(h2.respond(&mut without).is_err());
    }
}
