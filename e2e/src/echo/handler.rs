//! The echo backend's request handler: describe the request back as JSON.
//!
//! Routes: `/health` answers `OK`; `/status/NNN` answers status NNN (400 when
//! NNN is not three digits) with the echo body; every other path echoes,
//! after sleeping for `?delay=<Go duration>` when asked. Request bodies are
//! read to the end and discarded so keep-alive connections stay usable. A
//! request with `x-echo-fail` fails on purpose first (`failures.rs`).
//! A WebSocket handshake on any path but `/status/NNN` is accepted
//! (`websocket.rs`); on `/status/NNN` it is refused with that status.

use super::duration::parse_go_duration;
use super::failures::{FAIL_HEADER, parse_fail, record, status_for};
use super::headers::{echoed_headers, requested_response_headers};
use super::websocket;
use super::{EchoContext, EchoResponse};
use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use http::request::Parts;
use http::{Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Body;
use serde::Serialize;
use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;

/// Answers one request. Never fails: problems become 4xx/5xx answers.
pub async fn handle<B>(
    req: Request<B>,
    client: SocketAddr,
    ctx: &EchoContext,
) -> Result<Response<Full<Bytes>>, Infallible>
where
    B: Body,
{
    if websocket::is_offer(&req) && !req.uri().path().starts_with("/status/") {
        return Ok(websocket::accept(req, ctx));
    }
    let (parts, body) = req.into_parts();
    let fail = (parts.headers.get(FAIL_HEADER)).and_then(|v| parse_fail(v.to_str().ok()?));
    let Some(plan) = fail else {
        drain(body).await;
        return Ok(answer(&parts, client, ctx).await);
    };
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let key = (parts.headers.get("x-request-id"))
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let (attempt, same_body) = record(&key, &body);
    let delay = query_value(parts.uri.query().unwrap_or(""), "delay");
    if let Some(wait) = delay.and_then(|d| parse_go_duration(&d).ok()) {
        tokio::time::sleep(wait).await;
    }
    let status = StatusCode::from_u16(status_for(plan, attempt)).unwrap_or(StatusCode::OK);
    let mut resp = echo(&parts, ctx, status);
    let headers = resp.headers_mut();
    headers.insert("x-echo-attempt", HeaderValue::from(attempt));
    let same = if same_body { "true" } else { "false" };
    headers.insert("x-echo-same-body", HeaderValue::from_static(same));
    Ok(resp)
}

/// The answer to a request that did not ask to fail.
async fn answer(parts: &Parts, client: SocketAddr, ctx: &EchoContext) -> Response<Full<Bytes>> {
    let path = parts.uri.path();
    if path == "/health" {
        return plain(StatusCode::OK, "OK");
    }
    if path.starts_with("/status/") {
        let status = requested_status(&request_target(parts));
        return echo(parts, ctx, status);
    }
    // Best effort: a closed stdout must not fail the request.
    let _ = writeln!(
        std::io::stdout(),
        "Echoing back request made to {} to client ({client})",
        request_target(parts)
    );
    let delay = query_value(parts.uri.query().unwrap_or(""), "delay");
    if let Some(delay) = delay.filter(|d| !d.is_empty()) {
        match parse_go_duration(&delay) {
            Ok(wait) => tokio::time::sleep(wait).await,
            Err(err) => return error_json(StatusCode::INTERNAL_SERVER_ERROR, &err),
        }
    }
    echo(parts, ctx, StatusCode::OK)
}

/// Reads and drops the request body, stopping at the first error.
async fn drain<B: Body>(body: B) {
    let mut body = std::pin::pin!(body);
    while let Some(Ok(_)) = body.frame().await {}
}

/// The request target as the client sent it: path and query for origin-form
/// and HTTP/2 (`:path`), the full URI for absolute-form HTTP/1 requests.
fn request_target(parts: &Parts) -> String {
    if parts.version == Version::HTTP_2 {
        return parts
            .uri
            .path_and_query()
            .map_or_else(|| "/".to_string(), ToString::to_string);
    }
    parts.uri.to_string()
}

/// The host as received: the URI authority (HTTP/2 `:authority`, or an
/// absolute-form target), else the `Host` header.
fn request_host(parts: &Parts) -> String {
    if let Some(authority) = parts.uri.authority() {
        return authority.to_string();
    }
    parts
        .headers
        .get(HOST)
        .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned())
        .unwrap_or_default()
}

fn proto(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

/// The status asked for by `/status/NNN`: exactly three digits naming a
/// final (non-1xx) status, else 400 as the conformance server answers.
fn requested_status(target: &str) -> StatusCode {
    target
        .strip_prefix("/status/")
        .filter(|code| code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|code| code.parse::<u16>().ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .filter(|code| !code.is_informational())
        .unwrap_or(StatusCode::BAD_REQUEST)
}

/// The first value of query parameter `name`, `+` and `%XX` decoded.
fn query_value(query: &str, name: &str) -> Option<String> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    query
        .split('&')
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .find(|(key, _)| decode(key) == name)
        .map(|(_, value)| decode(value))
}

/// What an echo answer says about the request of `parts`.
pub(super) fn describe(parts: &Parts, ctx: &EchoContext) -> EchoResponse {
    EchoResponse {
        path: request_target(parts),
        host: request_host(parts),
        method: parts.method.to_string(),
        proto: proto(parts.version).to_string(),
        headers: echoed_headers(&parts.headers, parts.version == Version::HTTP_2),
        namespace: ctx.namespace.clone(),
        ingress: ctx.ingress.clone(),
        service: ctx.service.clone(),
        pod: ctx.pod.clone(),
        http_port: ctx.http_port.clone(),
    }
}

/// The echo answer for `parts` with `status`.
fn echo(parts: &Parts, ctx: &EchoContext, status: StatusCode) -> Response<Full<Bytes>> {
    let body = describe(parts, ctx);
    let json = match to_json(&body) {
        Ok(json) => json,
        Err(err) => return error_json(StatusCode::INTERNAL_SERVER_ERROR, &err),
    };
    // 204 and 304 must not carry a body.
    let json = match status {
        StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED => Vec::new(),
        _ => json,
    };
    let mut resp = Response::new(Full::new(Bytes::from(json)));
    *resp.status_mut() = status;
    for (name, value) in requested_response_headers(&parts.headers) {
        let name = HeaderName::from_bytes(name.as_bytes());
        let value = HeaderValue::from_str(&value);
        if let (Ok(name), Ok(value)) = (name, value) {
            resp.headers_mut().append(name, value);
        }
    }
    set_json_headers(&mut resp);
    resp
}

/// JSON indented by one space, as the conformance echo server writes it.
pub(super) fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b" ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    value.serialize(&mut ser)?;
    Ok(out)
}

/// `{"message": "<err>"}` with `status`.
fn error_json(status: StatusCode, err: &dyn std::error::Error) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "message": err.to_string() }).to_string();
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    set_json_headers(&mut resp);
    resp
}

fn set_json_headers(resp: &mut Response<Full<Bytes>>) {
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `/status/NNN` takes exactly three digits of a final status; anything
    /// else (a query, more digits, 1xx) is 400.
    #[test]
    fn status_paths() {
        let cases = [
            ("/status/200", 200),
            ("/status/503", 503),
            ("/status/418", 418),
            ("/status/20", 400),
            ("/status/2000", 400),
            ("/status/abc", 400),
            ("/status/200?x=1", 400),
            ("/status/101", 400),
            ("/status/", 400),
        ];
        for (target, want) in cases {
            assert_eq!(requested_status(target).as_u16(), want, "{target}");
        }
    }

    /// Query values are found by decoded name; the first occurrence wins.
    #[test]
    fn query_values() {
        let cases = [
            ("delay=1s", Some("1s")),
            ("a=b&delay=500ms&delay=2s", Some("500ms")),
            ("d%65lay=1s", Some("1s")),
            ("delay", Some("")),
            ("x=1", None),
            ("", None),
        ];
        for (query, want) in cases {
            assert_eq!(query_value(query, "delay").as_deref(), want, "{query}");
        }
    }
}
