//! `Upgrade: h2c` on HTTP/1.1 (RFC 7540 §3.2).
//!
//! hyper serves HTTP/1.1 and HTTP/2 but not the switch between them, so the
//! upgrade is done here: the HTTP/1.1 service answers `101 Switching
//! Protocols`, the connection loop takes the socket back from hyper (see
//! `h1.rs`), and the upgraded request is re-encoded as stream 1 (see
//! `frames`) and placed right after the client's preface and first SETTINGS
//! frame. hyper's HTTP/2 server then
//! reads a perfectly ordinary HTTP/2 connection and answers stream 1 like any
//! other. A request with a body larger than [`MAX_UPGRADE_BODY`] is served
//! over HTTP/1.1 instead: a server may always ignore an upgrade offer. So is
//! one whose head plain HTTP/1.1 would refuse (no `Host`, two of them): as
//! stream 1 it would carry `:authority` alone, and HTTP/2 has neither rule
//! left to check, so the HTTP/1.1 pipeline answers it (`h1.rs`).

use super::frames::{FRAME_HEADER_LEN, PREFACE, TYPE_SETTINGS, parse_frame_header, request_frames};
use super::h2::serve_h2;
use super::prefixed::Prefixed;
use super::service::ConnCtx;
use crate::body::{ProxyBody, empty};
use crate::proxy::collect_body;
use bytes::{Bytes, BytesMut};
use http::{
    HeaderMap, HeaderValue, Request, Response, StatusCode, Version, header, request::Parts,
};
use hyper::body::Incoming;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

/// Largest request body carried across an upgrade (one DATA frame, well
/// inside the initial flow-control window).
pub(crate) const MAX_UPGRADE_BODY: u64 = 16 * 1024;

/// Headers that describe the HTTP/1.1 hop and are not carried into HTTP/2.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "http2-settings",
    "host",
    "te",
];

/// Whether `req` is a well-formed h2c upgrade offer this server accepts.
pub(crate) fn is_upgrade<B>(req: &Request<B>) -> bool {
    let headers = req.headers();
    let small_body = match headers.get(header::CONTENT_LENGTH) {
        None => true,
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|n| n <= MAX_UPGRADE_BODY),
    };
    req.version() == Version::HTTP_11
        && has_token(headers, header::UPGRADE, "h2c")
        && has_token(headers, header::CONNECTION, "upgrade")
        && has_token(headers, header::CONNECTION, "http2-settings")
        && headers.get_all("http2-settings").iter().count() == 1
        && !headers.contains_key(header::TRANSFER_ENCODING)
        && small_body
}

fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// The upgraded request's frames, left by the HTTP/1.1 service for the
/// connection loop, which takes the socket back from hyper after `101`.
#[derive(Debug, Default)]
pub(crate) struct PendingUpgrade(Mutex<Option<Bytes>>);

impl PendingUpgrade {
    /// The frames of an accepted upgrade, once.
    pub(crate) fn take(&self) -> Option<Bytes> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

/// Answers `101` and leaves the upgraded request in `pending`; the
/// connection loop serves HTTP/2 once hyper has written the answer. The
/// body is read first, under the same read limits as any request body.
pub(crate) async fn upgrade(
    ctx: &ConnCtx,
    req: Request<Incoming>,
    pending: &PendingUpgrade,
) -> Response<ProxyBody> {
    let (parts, body) = req.into_parts();
    let runtime = ctx.runtime.load_full();
    let limit = MAX_UPGRADE_BODY as usize;
    let body = match collect_body(&runtime, &ctx.info, body, limit).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let frames = stream_one(&parts, &body);
    *pending.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(frames);
    let mut response = Response::new(empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("h2c"));
    response
}

/// Serves HTTP/2 on `io`, the socket after `101`: the client's preface and
/// SETTINGS, then the upgraded request as stream 1, then the rest.
pub(crate) async fn serve_upgraded<T>(ctx: Arc<ConnCtx>, mut io: T, frames: Bytes)
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let timeout = std::time::Duration::from_millis(ctx.settings.request_header_timeout_ms);
    let head = match tokio::time::timeout(timeout, read_preface(&mut io)).await {
        Ok(Ok(head)) => head,
        Ok(Err(error)) => {
            tracing::debug!(%error, "bad HTTP/2 preface after h2c upgrade");
            return;
        }
        Err(_) => return,
    };
    let (preface_and_settings, rest) = head;
    let mut prefix =
        BytesMut::with_capacity(preface_and_settings.len() + frames.len() + rest.len());
    prefix.extend_from_slice(&preface_and_settings);
    prefix.extend_from_slice(&frames);
    prefix.extend_from_slice(&rest);
    Box::pin(serve_h2(Prefixed::new(prefix.freeze(), io), ctx)).await;
}

/// Reads the client preface and its first frame, which must be SETTINGS.
///
/// Returns those bytes and whatever was read past them.
async fn read_preface<T: AsyncRead + Unpin>(io: &mut T) -> std::io::Result<(Bytes, Bytes)> {
    let mut buf = BytesMut::with_capacity(1024);
    let invalid =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let mut need = PREFACE.len() + FRAME_HEADER_LEN;
    while buf.len() < need {
        if io.read_buf(&mut buf).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if buf.len() >= PREFACE.len() + FRAME_HEADER_LEN {
            if !buf.starts_with(PREFACE) {
                return Err(invalid("not the HTTP/2 preface"));
            }
            let (len, kind, stream) = parse_frame_header(&buf[PREFACE.len()..])
                .ok_or_else(|| invalid("short frame header"))?;
            if kind != TYPE_SETTINGS || stream != 0 || len > 16_384 {
                return Err(invalid("first frame is not SETTINGS"));
            }
            need = PREFACE.len() + FRAME_HEADER_LEN + len;
        }
    }
    let mut head = buf;
    let rest = head.split_off(need);
    Ok((head.freeze(), rest.freeze()))
}

/// The upgraded request as HTTP/2 frames of stream 1.
fn stream_one(parts: &Parts, body: &[u8]) -> Bytes {
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let authority = parts
        .uri
        .authority()
        .map(|a| a.as_str().as_bytes())
        .or_else(|| parts.headers.get(header::HOST).map(HeaderValue::as_bytes));
    let named_in_connection: Vec<String> = parts
        .headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .collect();
    let mut fields: Vec<(&[u8], &[u8])> = vec![
        (b":method", parts.method.as_str().as_bytes()),
        (b":scheme", b"http"),
        (b":path", path.as_bytes()),
    ];
    if let Some(authority) = authority {
        fields.push((b":authority", authority));
    }
    for (name, value) in &parts.headers {
        let name = name.as_str();
        let hop = HOP_BY_HOP.contains(&name) || named_in_connection.iter().any(|n| n == name);
        let trailers_te = name == "te" && value.as_bytes().eq_ignore_ascii_case(b"trailers");
        if !hop || trailers_te {
            fields.push((name.as_bytes(), value.as_bytes()));
        }
    }
    request_frames(fields, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer() -> http::request::Builder {
        Request::get("/x")
            .header("host", "a.example")
            .header("connection", "Upgrade, HTTP2-Settings")
            .header("upgrade", "h2c")
            .header("http2-settings", "AAMAAABkAARAAAAAAAIAAAAA")
    }

    /// An offer needs Upgrade: h2c, both Connection tokens, exactly one
    /// HTTP2-Settings, and at most a small body with a known length.
    #[test]
    fn which_offers_are_accepted() {
        assert!(is_upgrade(&offer().body(()).unwrap()));
        assert!(!is_upgrade(&Request::get("/").body(()).unwrap()));
        let no_settings = Request::get("/")
            .header("connection", "Upgrade")
            .header("upgrade", "h2c")
            .body(())
            .unwrap();
        assert!(!is_upgrade(&no_settings));
        let chunked = offer()
            .header("transfer-encoding", "chunked")
            .body(())
            .unwrap();
        assert!(!is_upgrade(&chunked));
        let big = offer().header("content-length", "100000").body(()).unwrap();
        assert!(!is_upgrade(&big));
        let small = offer().header("content-length", "10").body(()).unwrap();
        assert!(is_upgrade(&small));
        let h10 = offer().version(Version::HTTP_10).body(()).unwrap();
        assert!(!is_upgrade(&h10));
    }

    #[tokio::test]
    async fn the_preface_and_first_settings_are_split_from_the_rest() {
        let mut wire = PREFACE.to_vec();
        wire.extend_from_slice(&[0, 0, 6, TYPE_SETTINGS, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 100]);
        wire.extend_from_slice(b"more");
        let (head, rest) = read_preface(&mut &wire[..]).await.unwrap();
        assert_eq!(head.len(), 24 + 9 + 6);
        assert_eq!(&rest[..], b"more");
        let mut bad = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n0123456789".to_vec();
        bad.extend_from_slice(&[0; 16]);
        assert!(read_preface(&mut &bad[..]).await.is_err());
    }
}
