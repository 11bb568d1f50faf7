//! External auth over gRPC (Envoy's `Authorization/Check`): an h2c auth
//! service in the test decodes the check and answers allow (headers set and
//! removed), deny (status, headers, body to the client) or a gRPC error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use bytes::{Bytes, BytesMut};
use http::{Request, Response};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use prost::Message;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tollgate_snapshot::{AuthConfig, ExtAuth, ExtAuthProtocol};

// The parts of the Envoy messages the test reads and writes.
#[derive(Clone, PartialEq, Message)]
struct CheckRequest {
    #[prost(message, optional, tag = "1")]
    attributes: Option<Attributes>,
}
#[derive(Clone, PartialEq, Message)]
struct Attributes {
    #[prost(message, optional, tag = "4")]
    request: Option<AttrRequest>,
}
#[derive(Clone, PartialEq, Message)]
struct AttrRequest {
    #[prost(message, optional, tag = "2")]
    http: Option<HttpRequest>,
}
#[derive(Clone, PartialEq, Message)]
struct HttpRequest {
    #[prost(string, tag = "2")]
    method: String,
    #[prost(map = "string, string", tag = "3")]
    headers: HashMap<String, String>,
    #[prost(string, tag = "4")]
    path: String,
}
#[derive(Clone, PartialEq, Message)]
struct CheckResponse {
    #[prost(message, optional, tag = "1")]
    status: Option<RpcStatus>,
    #[prost(message, optional, tag = "2")]
    denied_response: Option<Denied>,
    #[prost(message, optional, tag = "3")]
    ok_response: Option<OkResponse>,
}
#[derive(Clone, PartialEq, Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
}
#[derive(Clone, PartialEq, Message)]
struct Denied {
    #[prost(message, optional, tag = "1")]
    status: Option<RpcStatus>,
    #[prost(message, repeated, tag = "2")]
    headers: Vec<HeaderOption>,
    #[prost(string, tag = "3")]
    body: String,
}
#[derive(Clone, PartialEq, Message)]
struct OkResponse {
    #[prost(message, repeated, tag = "2")]
    headers: Vec<HeaderOption>,
    #[prost(string, repeated, tag = "5")]
    headers_to_remove: Vec<String>,
}
#[derive(Clone, PartialEq, Message)]
struct HeaderOption {
    #[prost(message, optional, tag = "1")]
    header: Option<Header>,
}
#[derive(Clone, PartialEq, Message)]
struct Header {
    #[prost(string, tag = "1")]
    key: String,
    #[prost(string, tag = "2")]
    value: String,
}

fn header(key: &str, value: &str) -> HeaderOption {
    HeaderOption {
        header: Some(Header {
            key: key.into(),
            value: value.into(),
        }),
    }
}

type Checks = Arc<Mutex<Vec<(String, HttpRequest)>>>;

/// The auth service: `x-token: good` allows as alice and consumes the
/// token; `x-token: broken` is a gRPC UNAVAILABLE; anything else is sent
/// to a sign-in page. Records each check with its HTTP/2 path.
async fn service() -> (String, Checks) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("http://{}", listener.local_addr().unwrap());
    let checks: Checks = Arc::default();
    let seen = checks.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let seen = seen.clone();
                    async move { Ok::<_, Infallible>(check(req, &seen).await) }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (uri, checks)
}

type GrpcBody =
    StreamBody<futures_util::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;

async fn check(req: Request<hyper::body::Incoming>, seen: &Checks) -> Response<GrpcBody> {
    let path = req.uri().path().to_string();
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let asked = CheckRequest::decode(&body[5..]).unwrap();
    let http = asked.attributes.unwrap().request.unwrap().http.unwrap();
    seen.lock().unwrap().push((path, http.clone()));
    let (grpc_status, answer) = match http.headers.get("x-token").map(String::as_str) {
        Some("good") => (
            0,
            CheckResponse {
                status: Some(RpcStatus { code: 0 }),
                ok_response: Some(OkResponse {
                    headers: vec![header("x-auth-user", "alice")],
                    headers_to_remove: vec!["x-token".into()],
                }),
                denied_response: None,
            },
        ),
        Some("broken") => (14, CheckResponse::default()),
        _ => (
            0,
            CheckResponse {
                status: Some(RpcStatus { code: 16 }),
                denied_response: Some(Denied {
                    status: Some(RpcStatus { code: 302 }),
                    headers: vec![
                        header("location", "https://sso.example/"),
                        header("set-cookie", "s=1"),
                    ],
                    body: "sign in".into(),
                }),
                ok_response: None,
            },
        ),
    };
    let payload = answer.encode_to_vec();
    let mut framed = BytesMut::from(&[0u8][..]);
    framed.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_be_bytes());
    framed.extend_from_slice(&payload);
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", grpc_status.to_string().parse().unwrap());
    let frames = vec![
        Ok(Frame::data(framed.freeze())),
        Ok(Frame::trailers(trailers)),
    ];
    Response::builder()
        .header("content-type", "application/grpc")
        .body(StreamBody::new(futures_util::stream::iter(frames)))
        .unwrap()
}

fn grpc(uri: &str, fail_open: bool) -> AuthConfig {
    AuthConfig {
        sources: vec!["httproute/default/app/rule/0/filter/0".into()],
        ext_auth: vec![ExtAuth {
            target: call_target(uri, 1000),
            protocol: ExtAuthProtocol::Grpc,
            headers_to_auth: vec![],
            headers_to_backend: vec![],
            fail_open,
            source: "httproute/default/app/rule/0/filter/0".into(),
        }],
        ..AuthConfig::default()
    }
}

fn with_token(path: &str, token: &str) -> Request<Full<Bytes>> {
    Request::post(path)
        .header("host", "app.example")
        .header("x-token", token)
        .header("x-auth-user", "mallory")
        .body(Full::from("payload"))
        .unwrap()
}

/// An OK check sets the service's header (over the client's forgery),
/// removes the one it consumed, and the body still reaches the backend.
#[tokio::test]
async fn an_ok_check_sets_and_removes_headers() {
    let echo = Echo::start("app").await;
    let (uri, checks) = service().await;
    let gateway = gateway_with_auth(&echo, grpc(&uri, false)).await;
    let answer = gateway.send(with_token("/app?x=1", "good")).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let seen = answer.echo();
    assert_eq!(seen["headers"]["x-auth-user"], "alice");
    assert!(seen["headers"].get("x-token").is_none());
    assert_eq!(seen["body"], "payload");
    let checks = checks.lock().unwrap();
    let (path, http) = &checks[0];
    assert_eq!(path, "/envoy.service.auth.v3.Authorization/Check");
    assert_eq!(
        (http.method.as_str(), http.path.as_str()),
        ("POST", "/app?x=1")
    );
}

/// A denial is the client's answer: status, headers, body.
#[tokio::test]
async fn a_denied_check_answers_the_client() {
    let echo = Echo::start("app").await;
    let (uri, _) = service().await;
    let gateway = gateway_with_auth(&echo, grpc(&uri, false)).await;
    let answer = gateway.send(with_token("/app", "nope")).await;
    assert_eq!(answer.status, 302);
    assert_eq!(answer.headers["location"], "https://sso.example/");
    assert_eq!(answer.headers["set-cookie"], "s=1");
    assert_eq!(answer.text(), "sign in");
    assert!(echo.received().is_empty());
}

/// A gRPC error fails closed (503), or open with `failOpen`.
#[tokio::test]
async fn a_grpc_error_fails_closed_unless_fail_open() {
    let echo = Echo::start("app").await;
    let (uri, _) = service().await;
    let closed = gateway_with_auth(&echo, grpc(&uri, false)).await;
    assert_eq!(closed.send(with_token("/", "broken")).await.status, 503);
    assert!(echo.received().is_empty());
    let open = gateway_with_auth(&echo, grpc(&uri, true)).await;
    assert_eq!(open.send(with_token("/", "broken")).await.status, 200);
}
