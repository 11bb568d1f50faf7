//! TLS listeners (TLSRoute) in the data plane: a Passthrough socket
//! replays the ClientHello byte for byte to the backend its SNI routes
//! to, closes an unknown SNI, survives swaps, and ends relays on the
//! tunnel idle timeout and on shutdown after the drain timeout.

#![allow(clippy::unwrap_used)]

use crate::server_support;

use server_support::*;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tollgate_snapshot::{
    Backend, BackendProtocol, Endpoint, HostMatch, Listener, Settings, Snapshot, SniBackend,
    SniRoute, Socket, TlsMode, TlsRoutes,
};

/// A TCP server echoing what it reads.
async fn tcp_echo() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = tcp.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// A Passthrough socket on `port` routing `sni` to `backend`.
fn passthrough(version: u64, port: u16, sni: &str, backend: SocketAddr) -> Snapshot {
    Snapshot {
        version,
        gateway: "default/gw".into(),
        sockets: vec![Socket {
            address: "127.0.0.1".into(),
            bind_port: port,
            port: 443,
            listeners: vec![Listener {
                name: "gateway/default/gw/listener/tls".into(),
                hostname: HostMatch::Any,
                virtual_hosts: vec![],
                tls: None,
                tls_routes: Some(TlsRoutes {
                    mode: TlsMode::Passthrough,
                    routes: vec![SniRoute {
                        name: "tlsroute/default/r".into(),
                        hostname: HostMatch::parse(sni),
                        backends: vec![SniBackend {
                            backend: Some(0),
                            weight: 1,
                        }],
                    }],
                }),
            }],
            proxy_protocol: false,
        }],
        backends: vec![Backend {
            name: "service/default/echo/port/443".into(),
            protocol: BackendProtocol::Http1,
            tls: None,
            endpoints: vec![Endpoint {
                address: backend.ip().to_string(),
                port: backend.port(),
            }],
        }],
        ..Snapshot::default()
    }
}

/// What a rustls client sends first for `sni`.
fn client_hello(sni: &str) -> Vec<u8> {
    tollgate_dataplane::install_crypto_provider();
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(sni.to_string()).unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut out = Vec::new();
    conn.write_tls(&mut out).unwrap();
    out
}

/// Sends a ClientHello for `sni` and reads the echo of it back: the
/// backend got the very bytes the client sent.
async fn open(port: u16, sni: &str) -> TcpStream {
    let hello = client_hello(sni);
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    tcp.write_all(&hello).await.unwrap();
    let mut back = vec![0; hello.len()];
    tcp.read_exact(&mut back).await.unwrap();
    assert_eq!(back, hello, "the ClientHello is replayed untouched");
    tcp
}

async fn round_trip(tcp: &mut TcpStream, text: &[u8]) {
    tcp.write_all(text).await.unwrap();
    let mut back = vec![0; text.len()];
    tcp.read_exact(&mut back).await.unwrap();
    assert_eq!(back, text);
}

async fn closes(tcp: &mut TcpStream) -> bool {
    let mut buf = [0; 64];
    matches!(
        tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

/// The ClientHello reaches the backend untouched and bytes flow both
/// ways; an unknown SNI is closed; a swap that removes the route stops
/// new connections but not the open relay.
#[tokio::test]
async fn passthrough_replays_and_survives_swaps() {
    let backend = tcp_echo().await;
    let port = free_port();
    let dp = dataplane();
    dp.apply(passthrough(1, port, "a.example.com", backend))
        .await
        .unwrap();
    let mut tcp = open(port, "a.example.com").await;
    round_trip(&mut tcp, b"ping").await;

    let mut unknown = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    unknown
        .write_all(&client_hello("b.example.com"))
        .await
        .unwrap();
    assert!(closes(&mut unknown).await, "unknown SNI closed");

    dp.apply(passthrough(2, port, "b.example.com", backend))
        .await
        .unwrap();
    round_trip(&mut tcp, b"still here").await;
    let mut gone = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    gone.write_all(&client_hello("a.example.com"))
        .await
        .unwrap();
    assert!(
        closes(&mut gone).await,
        "the removed route takes no new connection"
    );
    let _b = open(port, "b.example.com").await;
}

/// A relay idle for the tunnel idle timeout is closed.
#[tokio::test]
async fn idle_relays_are_closed() {
    let backend = tcp_echo().await;
    let port = free_port();
    let mut snap = passthrough(1, port, "a.example.com", backend);
    snap.settings = Settings {
        tunnel_idle_timeout_ms: Some(300),
        ..Settings::default()
    };
    let dp = dataplane();
    dp.apply(snap).await.unwrap();
    let mut tcp = open(port, "a.example.com").await;
    let started = Instant::now();
    assert!(closes(&mut tcp).await);
    assert!(started.elapsed() >= Duration::from_millis(250));
}

/// On shutdown a relay keeps working for the drain timeout, then is
/// closed.
#[tokio::test]
async fn shutdown_drains_relays() {
    let backend = tcp_echo().await;
    let port = free_port();
    let mut snap = passthrough(1, port, "a.example.com", backend);
    snap.settings = Settings {
        drain_timeout_ms: 500,
        ..Settings::default()
    };
    let dp = dataplane();
    dp.apply(snap).await.unwrap();
    let mut tcp = open(port, "a.example.com").await;
    let started = Instant::now();
    dp.shutdown();
    round_trip(&mut tcp, b"draining").await;
    tokio::time::timeout(Duration::from_secs(5), dp.closed())
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert!(closes(&mut tcp).await);
    assert_eq!(dp.status().connections.tunnels, 0);
}
