//! WebSocket clients for the end-to-end tests: HTTP/1.1 upgrades and
//! HTTP/2 extended CONNECT (RFC 8441) through the gateway.

use futures_util::{SinkExt, StreamExt};
use http::Request;
use http_body_util::Empty;
use hyper::client::conn::http2::SendRequest;
use hyper::ext::Protocol;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{WebSocketStream, client_async};
use tollgate_e2e::echo::EchoResponse;

/// A WebSocket over an HTTP/1.1 connection.
pub type H1Ws = WebSocketStream<TcpStream>;
/// A WebSocket over an HTTP/2 stream.
pub type H2Ws = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// Opens a WebSocket to `path` on the gateway listening at `port`, with
/// extra handshake `headers`; returns it and the echo backend's description
/// of the handshake request it received. `Err` is the answer of a refused
/// handshake.
pub async fn ws_open(
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<(H1Ws, EchoResponse), http::Response<Option<Vec<u8>>>> {
    use tungstenite::client::IntoClientRequest;
    let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut request = format!("ws://127.0.0.1:{port}{path}")
        .into_client_request()
        .unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            http::HeaderValue::from_str(value).unwrap(),
        );
    }
    match client_async(request, stream).await {
        Ok((mut ws, response)) => {
            assert_eq!(response.status(), 101);
            let hello = described(&mut ws).await;
            Ok((ws, hello))
        }
        Err(tungstenite::Error::Http(response)) => Err(*response),
        Err(other) => panic!("WebSocket handshake to {path} failed: {other}"),
    }
}

/// [`ws_open`] for a handshake that must succeed.
pub async fn ws_connect(port: u16, path: &str) -> (H1Ws, EchoResponse) {
    ws_open(port, path, &[])
        .await
        .unwrap_or_else(|r| panic!("handshake to {path} refused: {}", r.status()))
}

/// The echo backend's first message: its echo answer for the handshake.
pub async fn described<T: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<T>,
) -> EchoResponse {
    match ws.next().await {
        Some(Ok(Message::Text(text))) => serde_json::from_str(text.as_str()).unwrap(),
        other => panic!("expected the handshake description, got {other:?}"),
    }
}

/// Sends `message` and expects it back unchanged.
pub async fn round_trip<T: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<T>,
    message: Message,
) {
    ws.send(message.clone()).await.unwrap();
    let echoed = ws.next().await.unwrap().unwrap();
    assert_eq!(echoed, message);
}

/// Whether the WebSocket has ended (closed, reset or EOF) rather than
/// delivering another data message.
pub async fn ended<T: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<T>) -> bool {
    loop {
        match ws.next().await {
            None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return true,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(_)) => return false,
        }
    }
}

/// An HTTP/2 (prior knowledge) connection to the gateway at `port`.
pub async fn h2_connection(port: u16) -> SendRequest<Empty<bytes::Bytes>> {
    let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    sender
}

/// Opens a WebSocket over an extended CONNECT stream on `sender` to
/// `path`; `Err` is the status of a refused stream.
pub async fn h2_ws_open(
    sender: &mut SendRequest<Empty<bytes::Bytes>>,
    port: u16,
    path: &str,
) -> Result<(H2Ws, EchoResponse), u16> {
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
    let hello = described(&mut ws).await;
    Ok((ws, hello))
}
