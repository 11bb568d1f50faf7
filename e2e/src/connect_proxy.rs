//! A forward proxy that speaks `CONNECT`, as squid or a corporate egress
//! proxy does for `https://` destinations: it reads the `CONNECT
//! host:port` head, checks `Proxy-Authorization` when it requires one,
//! opens a TCP connection to the destination and relays bytes both ways.
//! Destination names are resolved by the proxy, through a table the test
//! gives (a collector's name that only the proxy can resolve), and every
//! tunnel asked for is recorded.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One `CONNECT` the proxy was asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TunnelRequest {
    /// The `host:port` asked for.
    pub target: String,
    /// The `Proxy-Authorization` header's value, if sent.
    pub authorization: Option<String>,
    /// Whether the proxy opened the tunnel.
    pub opened: bool,
}

/// A running proxy; stops when dropped.
#[derive(Debug)]
pub struct ConnectProxy {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<TunnelRequest>>>,
    task: JoinHandle<()>,
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What the proxy needs to serve a connection.
#[derive(Debug)]
struct Rules {
    /// Names the proxy resolves itself: `host` → address.
    hosts: BTreeMap<String, String>,
    /// The `Proxy-Authorization` value required, if any.
    authorization: Option<String>,
    seen: Arc<Mutex<Vec<TunnelRequest>>>,
}

impl ConnectProxy {
    /// Starts a proxy on a free loopback port that resolves the names of
    /// `hosts` (to IP addresses) and requires `authorization` when given.
    ///
    /// # Errors
    ///
    /// No port can be bound.
    pub async fn start(
        hosts: &[(&str, &str)],
        authorization: Option<&str>,
    ) -> std::io::Result<ConnectProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let rules = Arc::new(Rules {
            hosts: hosts
                .iter()
                .map(|(name, ip)| ((*name).to_string(), (*ip).to_string()))
                .collect(),
            authorization: authorization.map(str::to_string),
            seen: Arc::clone(&seen),
        });
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, Arc::clone(&rules)));
            }
        });
        Ok(ConnectProxy { addr, seen, task })
    }

    /// The proxy's URL, `http://127.0.0.1:<port>`, with `user:password@`
    /// when given.
    pub fn url(&self, credentials: Option<&str>) -> String {
        match credentials {
            Some(credentials) => format!("http://{credentials}@{}", self.addr),
            None => format!("http://{}", self.addr),
        }
    }

    /// Every tunnel asked for so far.
    pub fn tunnels(&self) -> Vec<TunnelRequest> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Serves one client connection: the `CONNECT` head, then the relay.
async fn serve(mut client: TcpStream, rules: Arc<Rules>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match client.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 16 * 1024 {
            return;
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let request = lines.next().unwrap_or_default();
    let mut parts = request.split(' ');
    let (Some("CONNECT"), Some(target)) = (parts.next(), parts.next()) else {
        let _ = client
            .write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
            .await;
        return;
    };
    let authorization = lines.find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("proxy-authorization")
            .then(|| value.trim().to_string())
    });
    let allowed = rules.authorization.is_none() || rules.authorization == authorization;
    let upstream = match target.rsplit_once(':') {
        Some((host, port)) if allowed => {
            let host = rules.hosts.get(host).map_or(host, String::as_str);
            TcpStream::connect(format!("{host}:{port}")).await.ok()
        }
        _ => None,
    };
    rules
        .seen
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(TunnelRequest {
            target: target.to_string(),
            authorization,
            opened: upstream.is_some(),
        });
    let Some(mut upstream) = upstream else {
        let refusal: &[u8] = if allowed {
            b"HTTP/1.1 502 Bad Gateway\r\n\r\n"
        } else {
            b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n"
        };
        let _ = client.write_all(refusal).await;
        return;
    };
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await
        .is_ok()
    {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    }
}
