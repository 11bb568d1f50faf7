//! The PROXY protocol (v1 text and v2 binary, as HAProxy specifies it): a
//! load balancer in front of the gateway that terminates TCP sends the
//! client's address in a header before any other byte, so the gateway
//! sees the real client instead of the balancer.
//!
//! On a socket whose Gateway asks for it, every connection must start with
//! one; a connection without a valid header is closed, since accepting it
//! would let any client that reaches the socket directly pass for the
//! balancer. The header is read with `peek` and then consumed byte-exact,
//! so nothing of what follows (a TLS ClientHello, an HTTP request) is lost.
//! `LOCAL` commands (v2, the balancer's own health checks) keep the peer.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// The v2 signature.
const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// A v1 header is at most 107 bytes, CRLF included.
const V1_MAX: usize = 107;
/// Longest v2 header accepted (addresses plus TLVs).
const V2_MAX: usize = 16 + 1024;

/// What a complete header says.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Header {
    /// The connection is proxied for this client.
    Proxied(SocketAddr),
    /// The balancer's own connection (`LOCAL`, `UNKNOWN`): keep the peer.
    Local,
}

/// Why a connection's header was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ProxyHeaderError {
    /// The bytes are not a PROXY header.
    #[error("not a PROXY protocol header")]
    Invalid,
    /// The connection closed or the header did not arrive in time.
    #[error("no PROXY protocol header in time")]
    Incomplete,
}

/// Parses a header at the start of `buf`: `Ok(None)` when more bytes are
/// needed, else the header and its length.
pub(crate) fn parse(buf: &[u8]) -> Result<Option<(Header, usize)>, ProxyHeaderError> {
    if buf.len() < V2_SIGNATURE.len() {
        let v1 = b"PROXY ".starts_with(&buf[..buf.len().min(6)]);
        let v2 = V2_SIGNATURE.starts_with(buf);
        return if v1 || v2 {
            Ok(None)
        } else {
            Err(ProxyHeaderError::Invalid)
        };
    }
    if buf.starts_with(&V2_SIGNATURE) {
        parse_v2(buf)
    } else if buf.starts_with(b"PROXY ") {
        parse_v1(buf)
    } else {
        Err(ProxyHeaderError::Invalid)
    }
}

fn parse_v1(buf: &[u8]) -> Result<Option<(Header, usize)>, ProxyHeaderError> {
    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
        return if buf.len() >= V1_MAX {
            Err(ProxyHeaderError::Invalid)
        } else {
            Ok(None)
        };
    };
    let line = std::str::from_utf8(&buf[..end]).map_err(|_| ProxyHeaderError::Invalid)?;
    let fields: Vec<&str> = line.split(' ').collect();
    let header = match fields.as_slice() {
        ["PROXY", "UNKNOWN", ..] => Header::Local,
        [
            "PROXY",
            family @ ("TCP4" | "TCP6"),
            src,
            _dst,
            sport,
            _dport,
        ] => {
            let ip: IpAddr = src.parse().map_err(|_| ProxyHeaderError::Invalid)?;
            if (*family == "TCP4") != ip.is_ipv4() {
                return Err(ProxyHeaderError::Invalid);
            }
            let port: u16 = sport.parse().map_err(|_| ProxyHeaderError::Invalid)?;
            Header::Proxied(SocketAddr::new(ip, port))
        }
        _ => return Err(ProxyHeaderError::Invalid),
    };
    Ok(Some((header, end + 2)))
}

fn parse_v2(buf: &[u8]) -> Result<Option<(Header, usize)>, ProxyHeaderError> {
    if buf.len() < 16 {
        return Ok(None);
    }
    let version_command = buf[12];
    if version_command >> 4 != 2 {
        return Err(ProxyHeaderError::Invalid);
    }
    let len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    let total = 16 + len;
    if total > V2_MAX {
        return Err(ProxyHeaderError::Invalid);
    }
    if buf.len() < total {
        return Ok(None);
    }
    let body = &buf[16..total];
    let header = match (version_command & 0x0f, buf[13]) {
        (0x0, _) => Header::Local,
        // PROXY over TCP (or UDP) / IPv4: 4+4+2+2 bytes.
        (0x1, 0x11 | 0x12) if body.len() >= 12 => {
            let ip = Ipv4Addr::new(body[0], body[1], body[2], body[3]);
            let port = u16::from_be_bytes([body[8], body[9]]);
            Header::Proxied(SocketAddr::new(ip.into(), port))
        }
        // IPv6: 16+16+2+2 bytes.
        (0x1, 0x21 | 0x22) if body.len() >= 36 => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&body[..16]);
            let port = u16::from_be_bytes([body[32], body[33]]);
            Header::Proxied(SocketAddr::new(Ipv6Addr::from(octets).into(), port))
        }
        // Unix sockets or unspecified: nothing usable; the peer stays.
        (0x1, 0x00 | 0x31 | 0x32) => Header::Local,
        _ => return Err(ProxyHeaderError::Invalid),
    };
    Ok(Some((header, total)))
}

/// Reads the header off `stream` within `timeout`, consuming exactly its
/// bytes.
pub(crate) async fn read(
    stream: &mut TcpStream,
    timeout: Option<Duration>,
) -> Result<Header, ProxyHeaderError> {
    let read = async {
        let mut buf = vec![0u8; V2_MAX];
        loop {
            let n = stream
                .peek(&mut buf)
                .await
                .map_err(|_| ProxyHeaderError::Incomplete)?;
            if n == 0 {
                return Err(ProxyHeaderError::Incomplete);
            }
            if let Some((header, len)) = parse(&buf[..n])? {
                stream
                    .read_exact(&mut buf[..len])
                    .await
                    .map_err(|_| ProxyHeaderError::Incomplete)?;
                return Ok(header);
            }
            // Not all there yet: wait for more before peeking again.
            stream
                .readable()
                .await
                .map_err(|_| ProxyHeaderError::Incomplete)?;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    match timeout {
        Some(limit) => tokio::time::timeout(limit, read)
            .await
            .map_err(|_| ProxyHeaderError::Incomplete)?,
        None => read.await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(command: u8, family: u8, body: &[u8]) -> Vec<u8> {
        let mut out = V2_SIGNATURE.to_vec();
        out.push(0x20 | command);
        out.push(family);
        out.extend_from_slice(&(body.len() as u16).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn v1_headers() {
        let text = b"PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\r\nGET / HTTP/1.1\r\n";
        assert_eq!(
            parse(text),
            Ok(Some((
                Header::Proxied("203.0.113.7:51234".parse().unwrap()),
                43
            )))
        );
        let six = b"PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n";
        assert!(matches!(parse(six), Ok(Some((Header::Proxied(a), _))) if a.port() == 1));
        assert_eq!(parse(b"PROXY UNKNOWN\r\n"), Ok(Some((Header::Local, 15))));
        assert_eq!(parse(b"PROXY TCP4 1.2.3"), Ok(None));
        assert_eq!(parse(b"PROX"), Ok(None));
        for bad in [
            &b"GET / HTTP/1.1\r\n"[..],
            b"PROXY TCP4 2001:db8::1 1.1.1.1 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 2\r\n",
            b"PROXY TCP9 1.2.3.4 5.6.7.8 1 2\r\n",
        ] {
            assert_eq!(parse(bad), Err(ProxyHeaderError::Invalid), "{bad:?}");
        }
        let long = [b'P', b'R', b'O', b'X', b'Y', b' ']
            .iter()
            .copied()
            .chain(std::iter::repeat_n(b'1', 200))
            .collect::<Vec<_>>();
        assert_eq!(parse(&long), Err(ProxyHeaderError::Invalid));
    }

    #[test]
    fn v2_headers() {
        let mut body = vec![203, 0, 113, 7, 10, 0, 0, 1];
        body.extend_from_slice(&51234u16.to_be_bytes());
        body.extend_from_slice(&443u16.to_be_bytes());
        body.extend_from_slice(&[0x04, 0, 1, 0]); // a TLV, skipped
        let header = v2(1, 0x11, &body);
        assert_eq!(
            parse(&header),
            Ok(Some((
                Header::Proxied("203.0.113.7:51234".parse().unwrap()),
                header.len()
            )))
        );
        assert_eq!(parse(&header[..20]), Ok(None));
        let local = v2(0, 0x00, &[]);
        assert_eq!(parse(&local), Ok(Some((Header::Local, 16))));
        let mut v6 = [0u8; 36];
        v6[15] = 1;
        v6[33] = 80;
        let header = v2(1, 0x21, &v6);
        assert_eq!(
            parse(&header),
            Ok(Some((Header::Proxied("[::1]:80".parse().unwrap()), 52)))
        );
        // Version 1 in a v2 signature, and an unknown command.
        let mut bad = v2(1, 0x11, &body);
        bad[12] = 0x11;
        assert_eq!(parse(&bad), Err(ProxyHeaderError::Invalid));
        assert_eq!(parse(&v2(5, 0x11, &body)), Err(ProxyHeaderError::Invalid));
    }

    /// Over a real socket: the header is consumed byte-exact, the request
    /// after it is left for the server; a connection without one fails.
    #[tokio::test]
    async fn reads_exactly_the_header() {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(b"PROXY TCP4 198.51.100.9 10.0.0.1 4000 80\r")
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
            s.write_all(b"\nGET /").await.unwrap();
            s
        });
        let (mut server, _) = listener.accept().await.unwrap();
        let header = read(&mut server, Some(Duration::from_secs(5)))
            .await
            .unwrap();
        assert_eq!(
            header,
            Header::Proxied("198.51.100.9:4000".parse().unwrap())
        );
        let _client = client.await.unwrap();
        let mut rest = [0u8; 5];
        server.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"GET /");

        let plain = tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
            s
        });
        let (mut server, _) = listener.accept().await.unwrap();
        let refused = read(&mut server, Some(Duration::from_secs(5))).await;
        assert_eq!(refused, Err(ProxyHeaderError::Invalid));
        drop(plain.await.unwrap());
    }
}
