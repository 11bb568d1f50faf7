//! External auth over gRPC: Envoy's `envoy.service.auth.v3.Authorization`
//! `Check`, the protocol the Gateway API filter's `GRPC` mode names.
//!
//! Only the fields the gateway fills or reads are declared, by hand, with
//! their numbers from the Envoy protos (`external_auth.proto`,
//! `attribute_context.proto`, `base.proto`, `address.proto`,
//! `http_status.proto`, `google/rpc/status.proto`); protobuf skips the
//! rest. The call is one unary gRPC request: a 5-byte frame header, the
//! message, `grpc-status` in the trailers.
//!
//! The check carries the client's address, the method, path and query,
//! host, scheme and the selected headers (lowercase, repeated values joined
//! with `,` as the proto asks). An `OK` status allows: the answer's headers
//! are set on the request (appended when it says `append`), limited to
//! `headersToBackend` when that is set, and its `headers_to_remove` go. Any
//! other status denies with the answer's status (403 when it names none),
//! headers and body. A gRPC error (a non-zero `grpc-status`) is a failed
//! call, like a timeout.

use crate::ip_text::ip_string;
use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use prost::Message;
use std::collections::HashMap;

/// The method path of `Check`.
pub(crate) const CHECK_PATH: &str = "/envoy.service.auth.v3.Authorization/Check";

/// The RPC conventions' attributes of a check's span.
pub(crate) fn span_attributes() -> Vec<opentelemetry::KeyValue> {
    use opentelemetry::KeyValue;
    vec![
        KeyValue::new("rpc.system", "grpc"),
        KeyValue::new("rpc.service", "envoy.service.auth.v3.Authorization"),
        KeyValue::new("rpc.method", "Check"),
    ]
}

#[derive(Clone, PartialEq, Message)]
struct CheckRequest {
    #[prost(message, optional, tag = "1")]
    attributes: Option<AttributeContext>,
}

#[derive(Clone, PartialEq, Message)]
struct AttributeContext {
    #[prost(message, optional, tag = "1")]
    source: Option<Peer>,
    #[prost(message, optional, tag = "4")]
    request: Option<AttributeRequest>,
}

#[derive(Clone, PartialEq, Message)]
struct Peer {
    #[prost(message, optional, tag = "1")]
    address: Option<Address>,
}

#[derive(Clone, PartialEq, Message)]
struct Address {
    #[prost(message, optional, tag = "1")]
    socket_address: Option<SocketAddress>,
}

#[derive(Clone, PartialEq, Message)]
struct SocketAddress {
    #[prost(string, tag = "2")]
    address: String,
    #[prost(uint32, tag = "3")]
    port_value: u32,
}

#[derive(Clone, PartialEq, Message)]
struct AttributeRequest {
    #[prost(message, optional, tag = "2")]
    http: Option<HttpRequest>,
}

#[derive(Clone, PartialEq, Message)]
struct HttpRequest {
    #[prost(string, tag = "1")]
    id: String,
    #[prost(string, tag = "2")]
    method: String,
    #[prost(map = "string, string", tag = "3")]
    headers: HashMap<String, String>,
    #[prost(string, tag = "4")]
    path: String,
    #[prost(string, tag = "5")]
    host: String,
    #[prost(string, tag = "6")]
    scheme: String,
    #[prost(int64, tag = "9")]
    size: i64,
}

#[derive(Clone, PartialEq, Message)]
struct CheckResponse {
    #[prost(message, optional, tag = "1")]
    status: Option<RpcStatus>,
    #[prost(message, optional, tag = "2")]
    denied_response: Option<DeniedHttpResponse>,
    #[prost(message, optional, tag = "3")]
    ok_response: Option<OkHttpResponse>,
}

#[derive(Clone, PartialEq, Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
}

#[derive(Clone, PartialEq, Message)]
struct DeniedHttpResponse {
    #[prost(message, optional, tag = "1")]
    status: Option<HttpStatus>,
    #[prost(message, repeated, tag = "2")]
    headers: Vec<HeaderValueOption>,
    #[prost(string, tag = "3")]
    body: String,
}

#[derive(Clone, PartialEq, Message)]
struct HttpStatus {
    #[prost(int32, tag = "1")]
    code: i32,
}

#[derive(Clone, PartialEq, Message)]
struct OkHttpResponse {
    #[prost(message, repeated, tag = "2")]
    headers: Vec<HeaderValueOption>,
    #[prost(string, repeated, tag = "5")]
    headers_to_remove: Vec<String>,
}

#[derive(Clone, PartialEq, Message)]
struct HeaderValueOption {
    #[prost(message, optional, tag = "1")]
    header: Option<ProtoHeader>,
    #[prost(message, optional, tag = "2")]
    append: Option<BoolValue>,
}

#[derive(Clone, PartialEq, Message)]
struct ProtoHeader {
    #[prost(string, tag = "1")]
    key: String,
    #[prost(string, tag = "2")]
    value: String,
    #[prost(bytes = "vec", tag = "3")]
    raw_value: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
struct BoolValue {
    #[prost(bool, tag = "1")]
    value: bool,
}

/// What the gateway tells the service about a request.
#[derive(Debug)]
pub(crate) struct Check<'a> {
    pub(crate) client: std::net::IpAddr,
    pub(crate) method: &'a str,
    pub(crate) path_and_query: &'a str,
    pub(crate) host: &'a str,
    pub(crate) scheme: &'a str,
    pub(crate) headers: &'a HeaderMap,
}

/// The service's decision.
#[derive(Debug)]
pub(crate) enum Decision {
    /// Allowed: headers to set (name, value, append) and to remove.
    Allow {
        set: Vec<(HeaderName, HeaderValue, bool)>,
        remove: Vec<HeaderName>,
    },
    /// Denied: the response for the client.
    Deny {
        status: StatusCode,
        headers: Vec<(HeaderName, HeaderValue)>,
        body: Bytes,
    },
}

/// The gRPC request body (one length-prefixed message) for `check`.
pub(crate) fn encode(check: &Check<'_>) -> Bytes {
    let mut headers: HashMap<String, String> = HashMap::new();
    for (name, value) in check.headers {
        let Ok(value) = value.to_str() else { continue };
        headers
            .entry(name.as_str().to_string())
            .and_modify(|joined| {
                joined.push(',');
                joined.push_str(value);
            })
            .or_insert_with(|| value.to_string());
    }
    let id = headers.get("x-request-id").cloned().unwrap_or_default();
    let message = CheckRequest {
        attributes: Some(AttributeContext {
            source: Some(Peer {
                address: Some(Address {
                    socket_address: Some(SocketAddress {
                        address: ip_string(check.client),
                        port_value: 0,
                    }),
                }),
            }),
            request: Some(AttributeRequest {
                http: Some(HttpRequest {
                    id,
                    method: check.method.to_string(),
                    headers,
                    path: check.path_and_query.to_string(),
                    host: check.host.to_string(),
                    scheme: check.scheme.to_string(),
                    size: -1,
                }),
            }),
        }),
    };
    let payload = message.encode_to_vec();
    let mut framed = BytesMut::with_capacity(payload.len() + 5);
    framed.put_u8(0);
    framed.put_u32(u32::try_from(payload.len()).unwrap_or(u32::MAX));
    framed.put_slice(&payload);
    framed.freeze()
}

/// The decision in a `Check` answer (`grpc-status` already found `0`).
///
/// # Errors
///
/// When the body is not one well-formed, uncompressed message.
pub(crate) fn decode(body: &[u8]) -> Result<Decision, &'static str> {
    let (&[compressed, a, b, c, d], payload) = body.split_at_checked(5).ok_or("short frame")?
    else {
        return Err("short frame");
    };
    if compressed != 0 {
        return Err("compressed answers are not supported");
    }
    let len = usize::try_from(u32::from_be_bytes([a, b, c, d])).map_err(|_| "frame too long")?;
    let payload = payload.get(..len).ok_or("truncated frame")?;
    let answer = CheckResponse::decode(payload).map_err(|_| "malformed CheckResponse")?;
    if answer.status.map_or(0, |s| s.code) == 0 {
        let ok = answer.ok_response.unwrap_or_default();
        let set = ok
            .headers
            .iter()
            .filter_map(|option| {
                let (name, value) = header(option.header.as_ref()?)?;
                Some((name, value, option.append.as_ref().is_some_and(|a| a.value)))
            })
            .collect();
        let remove = ok
            .headers_to_remove
            .iter()
            .filter_map(|n| HeaderName::from_bytes(n.to_ascii_lowercase().as_bytes()).ok())
            .filter(|n| n != http::header::HOST)
            .collect();
        return Ok(Decision::Allow { set, remove });
    }
    let denied = answer.denied_response.unwrap_or_default();
    let status = denied
        .status
        .and_then(|s| u16::try_from(s.code).ok())
        .and_then(|c| StatusCode::from_u16(c).ok())
        .filter(|c| c.as_u16() >= 200)
        .unwrap_or(StatusCode::FORBIDDEN);
    let headers = denied
        .headers
        .iter()
        .filter_map(|o| header(o.header.as_ref()?))
        .collect();
    Ok(Decision::Deny {
        status,
        headers,
        body: Bytes::from(denied.body),
    })
}

/// A header from the proto: `raw_value` when set (newer Envoy), else `value`.
fn header(proto: &ProtoHeader) -> Option<(HeaderName, HeaderValue)> {
    let name = HeaderName::from_bytes(proto.key.to_ascii_lowercase().as_bytes()).ok()?;
    let value = if proto.raw_value.is_empty() {
        HeaderValue::from_str(&proto.value).ok()?
    } else {
        HeaderValue::from_bytes(&proto.raw_value).ok()?
    };
    Some((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(message: &impl Message) -> Vec<u8> {
        let payload = message.encode_to_vec();
        let mut out = vec![0];
        out.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_be_bytes());
        out.extend_from_slice(&payload);
        out
    }

    fn option(key: &str, value: &str, append: bool) -> HeaderValueOption {
        HeaderValueOption {
            header: Some(ProtoHeader {
                key: key.into(),
                value: value.into(),
                raw_value: vec![],
            }),
            append: append.then_some(BoolValue { value: true }),
        }
    }

    #[test]
    fn the_check_carries_the_request_with_joined_headers() {
        let mut headers = HeaderMap::new();
        headers.append("x-a", HeaderValue::from_static("1"));
        headers.append("x-a", HeaderValue::from_static("2"));
        headers.append("x-request-id", HeaderValue::from_static("r1"));
        let check = Check {
            client: std::net::Ipv4Addr::new(192, 0, 2, 7).into(),
            method: "POST",
            path_and_query: "/a?b=1",
            host: "api.example",
            scheme: "https",
            headers: &headers,
        };
        let body = encode(&check);
        assert_eq!(
            usize::try_from(u32::from_be_bytes(body[1..5].try_into().unwrap())).unwrap(),
            body.len() - 5
        );
        let sent = CheckRequest::decode(&body[5..])
            .unwrap()
            .attributes
            .unwrap();
        let http = sent.request.unwrap().http.unwrap();
        assert_eq!(
            (http.method.as_str(), http.path.as_str()),
            ("POST", "/a?b=1")
        );
        assert_eq!(
            (http.host.as_str(), http.id.as_str()),
            ("api.example", "r1")
        );
        assert_eq!(http.headers["x-a"], "1,2");
        let source = sent
            .source
            .unwrap()
            .address
            .unwrap()
            .socket_address
            .unwrap();
        assert_eq!(source.address, "192.0.2.7");
    }

    #[test]
    fn ok_answers_set_and_remove_headers() {
        let answer = CheckResponse {
            status: Some(RpcStatus { code: 0 }),
            denied_response: None,
            ok_response: Some(OkHttpResponse {
                headers: vec![
                    option("X-User", "alice", false),
                    option("x-tag", "t", true),
                    option("bad name", "v", false),
                ],
                headers_to_remove: vec!["authorization".into(), "host".into()],
            }),
        };
        let Decision::Allow { set, remove } = decode(&frame(&answer)).unwrap() else {
            panic!("not allowed");
        };
        assert_eq!(set.len(), 2);
        assert_eq!((set[0].0.as_str(), set[0].2), ("x-user", false));
        assert_eq!((set[1].0.as_str(), set[1].2), ("x-tag", true));
        assert_eq!(remove, [http::header::AUTHORIZATION]);
    }

    #[test]
    fn denials_keep_their_status_headers_and_body() {
        let answer = CheckResponse {
            status: Some(RpcStatus { code: 7 }),
            denied_response: Some(DeniedHttpResponse {
                status: Some(HttpStatus { code: 302 }),
                headers: vec![option("location", "https://sso.example/", false)],
                body: "bye".into(),
            }),
            ok_response: None,
        };
        let Decision::Deny {
            status,
            headers,
            body,
        } = decode(&frame(&answer)).unwrap()
        else {
            panic!("not denied");
        };
        assert_eq!((status, body.as_ref()), (StatusCode::FOUND, &b"bye"[..]));
        assert_eq!(headers[0].0, http::header::LOCATION);
        let bare = CheckResponse {
            status: Some(RpcStatus { code: 16 }),
            ..CheckResponse::default()
        };
        assert!(matches!(
            decode(&frame(&bare)),
            Ok(Decision::Deny {
                status: StatusCode::FORBIDDEN,
                ..
            })
        ));
    }

    #[test]
    fn malformed_frames_are_errors() {
        assert!(decode(b"").is_err());
        assert!(decode(&[0, 0, 0, 0, 9, 1]).is_err());
        assert!(decode(&[1, 0, 0, 0, 0]).is_err());
        assert!(decode(&[0, 0, 0, 0, 2, 0xff, 0xff]).is_err());
        // An empty message is an OK status with nothing to change.
        assert!(matches!(
            decode(&[0, 0, 0, 0, 0]),
            Ok(Decision::Allow { .. })
        ));
    }
}
