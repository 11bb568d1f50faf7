//! A forward proxy, as squid or a corporate egress proxy is: for
//! `https://` destinations it reads the `CONNECT host:port` head, checks
//! `Proxy-Authorization` when it requires one, opens a TCP connection to
//! the destination and relays bytes both ways; a plain-HTTP request in
//! absolute form (`POST http://host:port/path`) it forwards in origin
//! form. Like squid's default configuration it can refuse `CONNECT` to
//! ports other than 443. Destination names are resolved by the proxy,
//! through a table the test gives (a collector's name that only the proxy
//! can resolve), and every tunnel and forwarded request is recorded.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One `CONNECT` the proxy was asked for, or one plain-HTTP request it
/// was asked to forward.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TunnelRequest {
    /// `CONNECT`, or the forwarded request's method.
    pub method: String,
    /// The `host:port` asked for (`CONNECT`), or the absolute URL.
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
    /// The only ports `CONNECT` may reach, when limited (squid allows
    /// only 443 by default).
    connect_ports: Option<Vec<u16>>,
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
        ConnectProxy::start_with(hosts, authorization, None).await
    }

    /// [`ConnectProxy::start`] allowing `CONNECT` only to `connect_ports`
    /// (others are refused with 403, as squid refuses them), when given.
    ///
    /// # Errors
    ///
    /// No port can be bound.
    pub async fn start_with(
        hosts: &[(&str, &str)],
        authorization: Option<&str>,
        connect_ports: Option<&[u16]>,
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
            connect_ports: connect_ports.map(<[u16]>::to_vec),
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

    /// Every tunnel (and forwarded request) asked for so far.
    pub fn tunnels(&self) -> Vec<TunnelRequest> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Serves one client connection: a `CONNECT` head and then the relay, or
/// a plain-HTTP request in absolute form, forwarded in origin form (the
/// rest of the connection is relayed as it comes: the collector accepts
/// absolute-form requests too).
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
    let request = lines.next().unwrap_or_default().to_string();
    let mut parts = request.split(' ');
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        let _ = client.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        return;
    };
    let authorization = lines.find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("proxy-authorization")
            .then(|| value.trim().to_string())
    });
    let allowed = rules.authorization.is_none() || rules.authorization == authorization;
    let forwarded = target
        .strip_prefix("http://")
        .filter(|_| method != "CONNECT");
    let authority = match forwarded {
        Some(rest) => rest.split('/').next().unwrap_or_default(),
        None if method == "CONNECT" => target,
        None => {
            let _ = client
                .write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
                .await;
            return;
        }
    };
    let port_allowed = forwarded.is_some()
        || authority
            .rsplit_once(':')
            .and_then(|(_, port)| port.parse::<u16>().ok())
            .is_some_and(|port| {
                rules
                    .connect_ports
                    .as_ref()
                    .is_none_or(|ports| ports.contains(&port))
            });
    let upstream = match authority.rsplit_once(':') {
        Some((host, port)) if allowed && port_allowed => {
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
            method: method.to_string(),
            target: target.to_string(),
            authorization,
            opened: upstream.is_some(),
        });
    let Some(mut upstream) = upstream else {
        let refusal: &[u8] = match (allowed, port_allowed) {
            (false, _) => {
                b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n"
            }
            (true, false) => b"HTTP/1.1 403 Forbidden\r\n\r\n",
            (true, true) => b"HTTP/1.1 502 Bad Gateway\r\n\r\n",
        };
        let _ = client.write_all(refusal).await;
        return;
    };
    let relayed = match forwarded {
        // The head in origin form; the rest of what was read goes as read.
        Some(rest) => {
            let path = rest.find('/').map_or("/", |i| &rest[i..]);
            let origin = request.replacen(target, path, 1);
            let mut out = origin.into_bytes();
            out.extend_from_slice(&head[request.len()..]);
            upstream.write_all(&out).await
        }
        None => {
            client
                .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .await
        }
    };
    if relayed.is_ok() {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    }
}
