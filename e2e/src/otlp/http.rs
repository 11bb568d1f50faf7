//! The OTLP/HTTP side of the receiver: `POST /v1/{traces,metrics,logs}`
//! with a binary protobuf body.
//!
//! It answers as a collector does: 200 with the protobuf
//! `Export*ServiceResponse`, 503 when the test made it fail, and a 4xx
//! naming the problem for anything an exporter should never send (wrong
//! method, path, content type or encoding, an undecodable body), so a
//! misconfigured exporter shows up in the test's failure message.

use std::convert::Infallible;
use std::io::Read as _;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;

use super::store::{Export, Payload, Shared};
use super::value::Protocol;

/// Largest request body accepted, compressed or not.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;
const PROTOBUF: &str = "application/x-protobuf";

/// Which signal a path names.
#[derive(Clone, Copy)]
enum Signal {
    Traces,
    Metrics,
    Logs,
}

/// Answers one request; never fails, every problem is a response.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(match receive(&shared, request).await {
        Ok(response) => response,
        Err((status, reason)) => plain(status, reason),
    })
}

type Rejection = (StatusCode, String);

async fn receive(
    shared: &Shared,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Rejection> {
    let signal = match request.uri().path() {
        "/v1/traces" => Signal::Traces,
        "/v1/metrics" => Signal::Metrics,
        "/v1/logs" => Signal::Logs,
        other => return Err((StatusCode::NOT_FOUND, format!("no OTLP signal at {other}"))),
    };
    if request.method() != Method::POST {
        return Err((
            StatusCode::METHOD_NOT_ALLOWED,
            "OTLP/HTTP takes POST".to_owned(),
        ));
    }
    let headers = request.headers().clone();
    check_content_type(&headers)?;
    let body = Limited::new(request.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("reading the body: {e}")))?
        .to_bytes();
    let body = decompress(&headers, body)?;
    let payload = decode(signal, &body)?;
    shared.admit().await.map_err(|_| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the test receiver is set to fail".to_owned(),
        )
    })?;
    shared.record(Export {
        protocol: Protocol::HttpProtobuf,
        headers: flat(&headers),
        payload,
    });
    let answer = match signal {
        Signal::Traces => ExportTraceServiceResponse::default().encode_to_vec(),
        Signal::Metrics => ExportMetricsServiceResponse::default().encode_to_vec(),
        Signal::Logs => ExportLogsServiceResponse::default().encode_to_vec(),
    };
    Response::builder()
        .header(header::CONTENT_TYPE, PROTOBUF)
        .body(Full::new(Bytes::from(answer)))
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// Only binary protobuf: OTLP/JSON is a different encoding that Tollgate
/// does not use, so a JSON body means a misconfigured exporter.
fn check_content_type(headers: &HeaderMap) -> Result<(), Rejection> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if essence.eq_ignore_ascii_case(PROTOBUF) {
        Ok(())
    } else {
        Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("content type {content_type:?}; this receiver takes {PROTOBUF}"),
        ))
    }
}

fn decompress(headers: &HeaderMap, body: Bytes) -> Result<Bytes, Rejection> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    match encoding.as_str() {
        "" | "identity" => Ok(body),
        "gzip" => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(body.as_ref())
                .take(u64::try_from(MAX_BODY_BYTES).unwrap_or(u64::MAX))
                .read_to_end(&mut out)
                .map_err(|e| (StatusCode::BAD_REQUEST, format!("gunzipping the body: {e}")))?;
            Ok(Bytes::from(out))
        }
        other => Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("content encoding {other:?}; this receiver takes gzip or none"),
        )),
    }
}

fn decode(signal: Signal, body: &[u8]) -> Result<Payload, Rejection> {
    let bad = |e: prost::DecodeError| (StatusCode::BAD_REQUEST, format!("decoding protobuf: {e}"));
    Ok(match signal {
        Signal::Traces => Payload::Traces(ExportTraceServiceRequest::decode(body).map_err(bad)?),
        Signal::Metrics => {
            Payload::Metrics(ExportMetricsServiceRequest::decode(body).map_err(bad)?)
        }
        Signal::Logs => Payload::Logs(ExportLogsServiceRequest::decode(body).map_err(bad)?),
    })
}

fn flat(headers: &HeaderMap) -> std::collections::BTreeMap<String, String> {
    headers
        .iter()
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect()
}

fn plain(status: StatusCode, reason: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(reason)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain"),
    );
    response
}
