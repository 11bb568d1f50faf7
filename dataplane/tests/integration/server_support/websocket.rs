//! WebSocket backends and clients for the upgrade tests.

use futures_util::{SinkExt, StreamExt};
use http::Request;
use http_body_util::Empty;
use hyper::ext::Protocol;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request as WsRequest};
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::{WebSocketStream, client_async};

/// A WebSocket that speaks over any byte stream.
pub type Ws<T> = WebSocketStream<T>;

/// Starts a WebSocket echo backend behind TLS (`acceptor`); otherwise
/// like [`ws_echo`].
pub async fn wss_echo(acceptor: tokio_rustls::TlsAcceptor) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(stream).await {
                    serve_ws(tls).await;
                }
            });
        }
    });
    addr
}

/// Starts a WebSocket echo backend. Paths: `/refuse` answers the handshake
/// 403; every other path accepts, sends first the handshake's headers as a
/// JSON text message, then echoes every text and binary message; the text
/// `close` makes it close the WebSocket itself.
pub async fn ws_echo() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve_ws(stream));
        }
    });
    addr
}

// The handshake callback's error type is tungstenite's.
#[allow(clippy::result_large_err)]
async fn serve_ws<S>(stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut seen = serde_json::Map::new();
    let callback = |req: &WsRequest, response| {
        if req.uri().path() == "/refuse" {
            let mut refused = ErrorResponse::new(Some("refused by backend".into()));
            *refused.status_mut() = http::StatusCode::FORBIDDEN;
            return Err(refused);
        }
        for (name, value) in req.headers() {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            seen.insert(name.to_string(), value.into());
        }
        seen.insert("path".into(), req.uri().to_string().into());
        Ok(response)
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
        return;
    };
    let hello = serde_json::Value::Object(seen).to_string();
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

/// Opens an HTTP/1.1 WebSocket to `path` on the data plane at `port`;
/// returns it and the first message (the backend's view of the handshake).
pub async fn ws_connect(port: u16, path: &str) -> (Ws<TcpStream>, serde_json::Value) {
    let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let url = format!("ws://127.0.0.1:{port}{path}");
    let (mut ws, response) = client_async(url, stream).await.unwrap();
    assert_eq!(response.status(), 101);
    let hello = first_json(&mut ws).await;
    (ws, hello)
}

/// The next message, as JSON.
pub async fn first_json<T>(ws: &mut Ws<T>) -> serde_json::Value
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    match ws.next().await {
        Some(Ok(Message::Text(text))) => serde_json::from_str(text.as_str()).unwrap(),
        other => panic!("expected the handshake description, got {other:?}"),
    }
}

/// Sends `message` and expects it back unchanged.
pub async fn round_trip<T>(ws: &mut Ws<T>, message: Message)
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    ws.send(message.clone()).await.unwrap();
    let echoed = ws.next().await.unwrap().unwrap();
    assert_eq!(echoed, message);
}

/// An HTTP/2 connection to the data plane at `port`, for extended CONNECT.
pub async fn h2_connection(
    port: u16,
) -> hyper::client::conn::http2::SendRequest<Empty<bytes::Bytes>> {
    let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    sender
}

/// Opens a WebSocket over an HTTP/2 extended CONNECT stream (RFC 8441) to
/// `path`; returns it and the first message. `Err` carries the status of a
/// refused stream.
pub async fn h2_ws_connect(
    sender: &mut hyper::client::conn::http2::SendRequest<Empty<bytes::Bytes>>,
    port: u16,
    path: &str,
) -> Result<(Ws<TokioIo<hyper::upgrade::Upgraded>>, serde_json::Value), u16> {
    let request = Request::connect(format!("http://127.0.0.1:{port}{path}"))
        .version(http::Version::HTTP_2)
        .header("sec-websocket-version", "13")
        .extension(Protocol::from_static("websocket"))
        .body(Empty::new())
        .unwrap();
    sender.ready().await.unwrap();
    let response = sender.send_request(request).await.unwrap();
    if response.status() != 200 {
        return Err(response.status().as_u16());
    }
    let upgraded = hyper::upgrade::on(response).await.unwrap();
    let mut ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Client, None).await;
    let hello = first_json(&mut ws).await;
    Ok((ws, hello))
}
