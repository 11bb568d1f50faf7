//! Proxy hygiene: hop-by-hop header removal and the forwarding headers.
//!
//! Hop-by-hop headers describe one connection (RFC 9110 §7.6.1) and must not
//! cross the gateway in either direction; the forwarding headers
//! (`X-Forwarded-*`, RFC 7239 `Forwarded`) tell the upstream who the client
//! was, since the upstream only sees the gateway's address.

use crate::ip_text::write_ip;
use http::HeaderMap;
use http::header::Entry;
use http::header::{
    CONNECTION, FORWARDED, HeaderName, HeaderValue, TE, TRAILER, TRANSFER_ENCODING, UPGRADE,
};
use std::net::IpAddr;

const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// How many fields [`add_forwarding`] may add to a request's header map:
/// a parser that sizes the map for them up front spares every request the
/// map's growth (a reallocation and a rehash of every field, about 750
/// instructions measured).
pub(crate) const FORWARDING_FIELDS: usize = 4;

/// Whether `name` is always hop-by-hop (apart from the ones `Connection` names).
fn is_hop_by_hop(name: &HeaderName) -> bool {
    name == CONNECTION
        || name == KEEP_ALIVE
        || name == PROXY_CONNECTION
        || name == TE
        || name == TRAILER
        || name == TRANSFER_ENCODING
        || name == UPGRADE
}

/// Whether a `Connection` token needs no removal of its own: an option
/// (`close`) or a header removed in any case.
fn removed_anyway(token: &str) -> bool {
    [
        "close",
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ]
    .iter()
    .any(|known| token.eq_ignore_ascii_case(known))
}

/// Removes hop-by-hop headers: `Connection` and every header it names,
/// `Keep-Alive`, `Proxy-Connection`, `Trailer`, `Transfer-Encoding`,
/// `Upgrade`, and `TE` unless its value is exactly `trailers` (the one `TE`
/// value meaningful end to end, required by gRPC).
///
/// The pipeline calls it on a request before routing and filters, and on a
/// response before response filters, so a header named in `Connection` is
/// neither routed on nor able to take away a header a filter adds.
///
/// Most messages carry none of them, so one pass over the names decides
/// whether anything has to be removed at all; `Connection: keep-alive`,
/// `close` or `upgrade` alone allocates nothing either.
pub(crate) fn remove_hop_by_hop(headers: &mut HeaderMap) {
    if !headers.keys().any(is_hop_by_hop) {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|token| !removed_anyway(token))
        .filter_map(|name| HeaderName::from_bytes(name.as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    let te_trailers = headers
        .get_all(TE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("trailers"));
    for name in [
        CONNECTION,
        KEEP_ALIVE,
        PROXY_CONNECTION,
        TE,
        TRAILER,
        TRANSFER_ENCODING,
        UPGRADE,
    ] {
        headers.remove(name);
    }
    if te_trailers {
        headers.insert(TE, HeaderValue::from_static("trailers"));
    }
}

/// The forwarding values that depend only on the connection, made once when
/// it is accepted so each request only copies them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ClientForwarding {
    /// The client address as `X-Forwarded-For` lists it.
    for_value: HeaderValue,
    /// `X-Forwarded-Proto`.
    proto: HeaderValue,
    /// `for=<node>`, the start of the `Forwarded` element.
    node: String,
    /// `;proto=<scheme>`, the end of the `Forwarded` element.
    proto_param: String,
}

impl ClientForwarding {
    /// The values for a client at `peer` using `scheme`.
    pub(crate) fn new(peer: IpAddr, scheme: &str) -> ClientForwarding {
        let mut ip = String::with_capacity(48);
        write_ip(&mut ip, peer);
        let for_value =
            HeaderValue::from_str(&ip).unwrap_or_else(|_| HeaderValue::from_static("unknown"));
        if peer.is_ipv6() {
            ip.insert(0, '[');
            ip.push(']');
        }
        let mut node = String::from("for=");
        push_forwarded_value(&mut node, &ip);
        let mut proto_param = String::from(";proto=");
        push_forwarded_value(&mut proto_param, scheme);
        ClientForwarding {
            for_value,
            proto: HeaderValue::from_str(scheme)
                .unwrap_or_else(|_| HeaderValue::from_static("http")),
            node,
            proto_param,
        }
    }
}

/// Appends the client to `X-Forwarded-For` and `Forwarded`, and sets
/// `X-Forwarded-Proto` and `X-Forwarded-Host` to the scheme and the host the
/// client asked for, as received (replacing client-sent values: the gateway
/// is the edge that knows them).
pub(crate) fn add_forwarding(
    headers: &mut HeaderMap,
    fwd: &ClientForwarding,
    host: Option<&HeaderValue>,
) {
    // Room for the four names at once: a map sized to fit exactly what the
    // client sent would otherwise grow step by step. Tollgate's own parser
    // leaves this room already, and then this is a comparison.
    headers.reserve(FORWARDING_FIELDS);
    append_value(headers, X_FORWARDED_FOR, fwd.for_value.clone());
    headers.insert(X_FORWARDED_PROTO, fwd.proto.clone());
    let host_text = host.and_then(|h| h.to_str().ok());
    match (host, host_text) {
        (Some(host), Some(_)) => {
            headers.insert(X_FORWARDED_HOST, host.clone());
        }
        _ => {
            headers.remove(X_FORWARDED_HOST);
        }
    }
    // Sized exactly, so the value takes the string's bytes as they are
    // (bytes with room to spare would be shared through an allocation of
    // their own, and a copy is one too).
    let host_len = host_text.map_or(0, |h| ";host=".len() + forwarded_value_len(h));
    let mut element = String::with_capacity(fwd.node.len() + host_len + fwd.proto_param.len());
    element.push_str(&fwd.node);
    if let Some(host) = host_text {
        element.push_str(";host=");
        push_forwarded_value(&mut element, host);
    }
    element.push_str(&fwd.proto_param);
    match HeaderValue::from_maybe_shared(bytes::Bytes::from(element.into_bytes())) {
        Ok(value) => append_value(headers, FORWARDED, value),
        Err(_) => {
            headers.remove(FORWARDED);
        }
    }
}

/// Whether `b` is a token character (RFC 9110 §5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// How long [`push_forwarded_value`] makes `value`.
fn forwarded_value_len(value: &str) -> usize {
    if !value.is_empty() && value.bytes().all(is_tchar) {
        return value.len();
    }
    let escapes = value.bytes().filter(|b| matches!(b, b'\\' | b'"')).count();
    value.len() + escapes + 2
}

/// Appends a `Forwarded` parameter value: a token as is, anything else as a
/// quoted-string (RFC 7239 §4; IPv6 nodes and `host:port` need quotes).
fn push_forwarded_value(out: &mut String, value: &str) {
    if !value.is_empty() && value.bytes().all(is_tchar) {
        out.push_str(value);
        return;
    }
    out.push('"');
    if value.bytes().any(|b| matches!(b, b'\\' | b'"')) {
        for c in value.chars() {
            if matches!(c, '\\' | '"') {
                out.push('\\');
            }
            out.push(c);
        }
    } else {
        out.push_str(value);
    }
    out.push('"');
}

/// Joins every existing line of a list header and appends `item` as one
/// line; most requests carry none, and then `item` is inserted as is.
///
/// `item` is taken, not cloned: a value made for this request is backed
/// by bytes of its own, and its first clone would allocate to share them.
fn append_value(headers: &mut HeaderMap, name: HeaderName, item: HeaderValue) {
    let mut existing = match headers.entry(name) {
        Entry::Vacant(vacant) => {
            vacant.insert(item);
            return;
        }
        Entry::Occupied(occupied) => occupied,
    };
    let mut joined = Vec::with_capacity(item.len() + 64);
    for value in existing.iter() {
        joined.extend_from_slice(value.as_bytes());
        joined.extend_from_slice(b", ");
    }
    joined.extend_from_slice(item.as_bytes());
    match HeaderValue::from_bytes(&joined) {
        // Replaces every line with the joined one.
        Ok(value) => {
            existing.insert(value);
        }
        Err(_) => {
            existing.remove();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    /// Connection-scoped headers never cross the gateway; `TE: trailers` does.
    #[test]
    fn hop_by_hop_headers_are_removed() {
        // (request headers, kept, removed)
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str], &'a [&'a str]);
        let table: &[Case<'_>] = &[
            (
                &[
                    ("connection", "close, x-secret"),
                    ("x-secret", "1"),
                    ("x-keep", "1"),
                ],
                &["x-keep"],
                &["connection", "x-secret"],
            ),
            (
                &[
                    ("keep-alive", "5"),
                    ("proxy-connection", "x"),
                    ("upgrade", "h2c"),
                ],
                &[],
                &["keep-alive", "proxy-connection", "upgrade"],
            ),
            (&[("te", "trailers, deflate")], &["te"], &[]),
            // `TE` is announced in `Connection` (RFC 9110 §10.1.4); its
            // `trailers` still crosses.
            (
                &[("connection", "keep-alive, TE"), ("te", "trailers")],
                &["te"],
                &["connection"],
            ),
            (&[("te", "gzip")], &[], &["te"]),
            (
                &[("trailer", "x"), ("transfer-encoding", "chunked")],
                &[],
                &["trailer", "transfer-encoding"],
            ),
        ];
        for (input, kept, removed) in table {
            let mut map = headers(input);
            remove_hop_by_hop(&mut map);
            for name in *kept {
                assert!(map.contains_key(*name), "{name} kept in {input:?}");
            }
            for name in *removed {
                assert!(!map.contains_key(*name), "{name} removed in {input:?}");
            }
        }
        let mut te = headers(&[("te", "trailers, deflate")]);
        remove_hop_by_hop(&mut te);
        assert_eq!(te["te"], "trailers");
    }

    /// Tokens pass as they are; anything else is quoted, with `"` and `\\`
    /// escaped (RFC 7239 §4).
    #[test]
    fn forwarded_values_are_quoted_when_needed() {
        for (value, written) in [
            ("a.example", "a.example"),
            ("a.example:8080", "\"a.example:8080\""),
            ("[2001:db8::1]", "\"[2001:db8::1]\""),
            ("a\"b\\c", "\"a\\\"b\\\\c\""),
            ("", "\"\""),
        ] {
            let mut out = String::new();
            push_forwarded_value(&mut out, value);
            assert_eq!(out, written, "{value}");
            assert_eq!(forwarded_value_len(value), written.len(), "{value}");
        }
    }

    /// Several lines of a list header become one, with the client last.
    #[test]
    fn list_lines_are_joined() {
        let mut map = headers(&[
            ("x-forwarded-for", "10.0.0.1"),
            ("x-forwarded-for", "10.0.0.2"),
        ]);
        add_forwarding(
            &mut map,
            &ClientForwarding::new("192.0.2.7".parse().unwrap(), "http"),
            None,
        );
        let lines: Vec<_> = map.get_all("x-forwarded-for").iter().collect();
        assert_eq!(lines, ["10.0.0.1, 10.0.0.2, 192.0.2.7"]);
    }

    /// Messages without hop-by-hop headers are left as they are.
    #[test]
    fn messages_without_hop_by_hop_headers_are_untouched() {
        let mut map = headers(&[("host", "a"), ("x-keep", "1")]);
        remove_hop_by_hop(&mut map);
        assert_eq!(map.len(), 2);
    }

    /// The client is appended to existing chains; IPv6 and ports are quoted.
    #[test]
    fn forwarding_headers() {
        let mut map = headers(&[
            ("x-forwarded-for", "10.0.0.1"),
            ("forwarded", "for=10.0.0.1"),
        ]);
        let host = HeaderValue::from_static("a.example:8080");
        add_forwarding(
            &mut map,
            &ClientForwarding::new("2001:db8::1".parse().unwrap(), "http"),
            Some(&host),
        );
        assert_eq!(map["x-forwarded-for"], "10.0.0.1, 2001:db8::1");
        assert_eq!(map["x-forwarded-proto"], "http");
        assert_eq!(map["x-forwarded-host"], "a.example:8080");
        assert_eq!(
            map["forwarded"],
            "for=10.0.0.1, for=\"[2001:db8::1]\";host=\"a.example:8080\";proto=http"
        );

        let mut map = HeaderMap::new();
        let host = HeaderValue::from_static("a.example");
        let client = ClientForwarding::new("192.0.2.7".parse().unwrap(), "http");
        add_forwarding(&mut map, &client, Some(&host));
        assert_eq!(map["x-forwarded-for"], "192.0.2.7");
        assert_eq!(map["forwarded"], "for=192.0.2.7;host=a.example;proto=http");

        // No host named: X-Forwarded-Host sent by the client is dropped.
        let mut map = headers(&[("x-forwarded-host", "evil.example")]);
        add_forwarding(&mut map, &client, None);
        assert!(!map.contains_key("x-forwarded-host"));
        assert_eq!(map["forwarded"], "for=192.0.2.7;proto=http");
    }
}
