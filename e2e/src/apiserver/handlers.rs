//! HTTP plumbing: one request in, one response out, and the request log.
//!
//! [`handle`] reads the whole body, routes discovery and OpenAPI paths
//! itself, hands resource paths to [`verbs::serve`], turns errors into
//! `Status` responses in one place and appends a [`RequestRecord`] to the
//! log tests assert on.

use super::discovery;
use super::error::ApiError;
use super::request::{Format, Query, Target};
use super::storage::Store;
use super::verbs::{self, Call};
use bytes::Bytes;
use futures_util::stream;
use http::header::{ACCEPT, CONTENT_TYPE, USER_AGENT};
use http::{HeaderMap, Method, Request, Response};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use serde_json::Value;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::{mpsc, watch};

/// The response body: whole, or a stream of watch events.
pub(crate) type Body = UnsyncBoxBody<Bytes, Infallible>;

/// One request the server received, for tests to assert API-call scenarios.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// `GET`, `PATCH`, ...
    pub method: String,
    /// The path (`/apis/gateway.networking.k8s.io/v1/namespaces/default/gateways/a/status`).
    pub path: String,
    /// The raw query string, empty when none.
    pub query: String,
    /// The `User-Agent` header.
    pub user_agent: String,
    /// The `Accept` header (`as=PartialObjectMetadata` asks for metadata only).
    pub accept: String,
    /// The `fieldManager` query parameter, if any.
    pub field_manager: Option<String>,
    /// The response status code.
    pub status: u16,
}

impl RequestRecord {
    /// Whether the request could change an object (POST, PUT, PATCH, DELETE).
    pub fn is_write(&self) -> bool {
        matches!(self.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE")
    }

    /// Whether this is a write to a `status` subresource.
    pub fn is_status_write(&self) -> bool {
        self.is_write() && self.path.ends_with("/status")
    }

    /// Whether this is a watch request.
    pub fn is_watch(&self) -> bool {
        self.query
            .split('&')
            .any(|p| p == "watch=true" || p == "watch=1")
    }
}

/// State shared by every connection.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) store: Mutex<Store>,
    /// Bumped to end every open watch.
    pub(crate) stop_watches: watch::Sender<u64>,
    pub(crate) requests: Mutex<Vec<RequestRecord>>,
    /// `127.0.0.1:PORT`, for `/api`'s server address.
    pub(crate) address: String,
}

/// Locks `mutex`, ignoring poisoning (a panicked test thread must not wedge the server).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a handler answers.
pub(crate) enum Reply {
    /// A JSON document with a status code.
    Json(u16, Value),
    /// Raw bytes with a content type.
    Raw(&'static str, Bytes),
    /// A watch: event lines as they come.
    Stream(mpsc::Receiver<Bytes>),
}

impl Reply {
    /// 200 with `value`.
    pub(crate) fn ok(value: Value) -> Reply {
        Reply::Json(200, value)
    }

    fn status(&self) -> u16 {
        match self {
            Reply::Json(code, _) => *code,
            _ => 200,
        }
    }

    fn into_response(self) -> Response<Body> {
        let (status, content_type, body) = match self {
            Reply::Json(code, value) => (
                code,
                "application/json",
                Full::new(Bytes::from(value.to_string())).boxed_unsync(),
            ),
            Reply::Raw(content_type, bytes) => (200, content_type, Full::new(bytes).boxed_unsync()),
            Reply::Stream(rx) => {
                let frames = stream::unfold(rx, |mut rx| async move {
                    let line = rx.recv().await?;
                    Some((Ok::<_, Infallible>(Frame::data(line)), rx))
                });
                (
                    200,
                    "application/json",
                    StreamBody::new(frames).boxed_unsync(),
                )
            }
        };
        let mut response = Response::new(body);
        *response.status_mut() =
            http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        if let Ok(value) = http::HeaderValue::from_str(content_type) {
            response.headers_mut().insert(CONTENT_TYPE, value);
        }
        response
    }
}

fn header(headers: &HeaderMap, name: http::header::HeaderName) -> &str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// Serves one request.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let query = Query::parse(parts.uri.query());
    let reply = route(
        &shared,
        &parts.method,
        parts.uri.path(),
        &parts.headers,
        &query,
        &body,
    )
    .unwrap_or_else(|err| Reply::Json(err.code(), err.to_status()));
    lock(&shared.requests).push(RequestRecord {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or_default().to_string(),
        user_agent: header(&parts.headers, USER_AGENT).to_string(),
        accept: header(&parts.headers, ACCEPT).to_string(),
        field_manager: query.get("fieldManager").map(str::to_string),
        status: reply.status(),
    });
    Ok(reply.into_response())
}

/// Dispatches on the path.
fn route(
    shared: &Shared,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    query: &Query,
    body: &[u8],
) -> Result<Reply, ApiError> {
    let not_found =
        || ApiError::NotFound("the server could not find the requested resource".into());
    let target = Target::parse(path).ok_or_else(not_found)?;
    if !matches!(target, Target::Resource(_)) && method != Method::GET {
        return Err(ApiError::MethodNotAllowed(format!(
            "{method} is not allowed on {path}"
        )));
    }
    let kinds = || lock(&shared.store).kinds.clone();
    match target {
        Target::Version => Ok(Reply::ok(discovery::version())),
        Target::Health => Ok(Reply::Raw("text/plain", Bytes::from_static(b"ok"))),
        Target::CoreVersions => Ok(Reply::ok(discovery::core_versions(&shared.address))),
        Target::Groups => Ok(Reply::ok(discovery::groups(&kinds()))),
        Target::GroupVersion { group, version } => {
            Ok(Reply::ok(discovery::resources(&kinds(), &group, &version)?))
        }
        // An empty protobuf message is a valid, empty OpenAPI v2 document.
        Target::OpenApiV2 => Ok(Reply::Raw(
            "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
            Bytes::new(),
        )),
        Target::OpenApiV3Index => Ok(Reply::ok(discovery::openapi_v3_index(&kinds()))),
        Target::OpenApiV3 { group, version } => Ok(Reply::ok(discovery::openapi_v3(
            &kinds(),
            &group,
            &version,
        )?)),
        Target::Resource(path) => verbs::serve(
            shared,
            &Call {
                method,
                path,
                query,
                format: Format::from_accept(header(headers, ACCEPT)),
                content_type: header(headers, CONTENT_TYPE),
                user_agent: header(headers, USER_AGENT),
                body,
            },
        ),
    }
}
