//! The echo backend's WebSocket endpoint: accepts a handshake on the
//! connection hyper serves, then describes the handshake and echoes.
//!
//! Tests put it behind the data plane to see what a relayed upgrade
//! carried (path, headers a filter added) and that messages of every kind
//! cross both ways. Once the handshake is answered `101`, the connection is
//! a WebSocket (RFC 6455) until either side closes it:
//!
//! - first the server sends one text message, the handshake request's echo
//!   answer (the JSON an ordinary request to the same path would get);
//! - then every text and binary message is sent back as it came; pings are
//!   answered by the WebSocket library;
//! - the text `close` makes the server close with code 1000, reason `bye`.

use super::EchoContext;
use super::handler::{describe, to_json};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::header::{CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, UPGRADE};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};

/// Whether `req` is a WebSocket handshake: `GET` with `Connection:
/// upgrade`, `Upgrade: websocket` and a key.
pub(super) fn is_offer<B>(req: &Request<B>) -> bool {
    let headers = req.headers();
    req.method() == Method::GET
        && has_token(headers, &CONNECTION, "upgrade")
        && has_token(headers, &UPGRADE, "websocket")
        && headers.contains_key(SEC_WEBSOCKET_KEY)
}

fn has_token(headers: &HeaderMap, name: &http::header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Answers the handshake `101` and serves the WebSocket on a task of its
/// own once hyper hands the connection over.
pub(super) fn accept<B>(mut req: Request<B>, ctx: &EchoContext) -> Response<Full<Bytes>> {
    let accept_key = req
        .headers()
        .get(SEC_WEBSOCKET_KEY)
        .map(|key| derive_accept_key(key.as_bytes()));
    let on_upgrade = hyper::upgrade::on(&mut req);
    let (parts, _body) = req.into_parts();
    let hello = to_json(&describe(&parts, ctx)).unwrap_or_default();
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => serve(TokioIo::new(upgraded), hello).await,
            Err(error) => log_failed_upgrade(&error),
        }
    });
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    if let Some(Ok(value)) = accept_key.map(HeaderValue::try_from) {
        headers.insert(SEC_WEBSOCKET_ACCEPT, value);
    }
    response
}

/// Best effort: the echo backend logs to stdout and must not fail on it.
fn log_failed_upgrade(error: &dyn std::error::Error) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stdout(), "WebSocket upgrade failed: {error}");
}

/// Describes the handshake, then echoes until either side closes.
async fn serve<T>(io: T, hello: Vec<u8>)
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let mut ws = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
    let hello = String::from_utf8_lossy(&hello).into_owned();
    if ws.send(Message::text(hello)).await.is_err() {
        return;
    }
    while let Some(Ok(message)) = ws.next().await {
        let sent = match message {
            Message::Text(text) if text.as_str() == "close" => {
                let frame = CloseFrame {
                    code: 1000.into(),
                    reason: "bye".into(),
                };
                ws.close(Some(frame)).await
            }
            Message::Text(_) | Message::Binary(_) => ws.send(message).await,
            _ => Ok(()),
        };
        if sent.is_err() {
            return;
        }
    }
}
