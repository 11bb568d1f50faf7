//! What the telemetry of a gRPC call adds, as the OpenTelemetry RPC
//! conventions name it: `rpc.system` `grpc`, `rpc.service`, `rpc.method`
//! and `rpc.grpc.status_code`.
//!
//! A gRPC call's outcome is its `grpc-status`, not its HTTP status (which
//! is 200 for most failures): it comes from the response headers of a
//! trailers-only answer (the gateway's own, or a backend's), else from the
//! trailers at the end of the body. Spans and the access log carry the
//! service and method; metrics carry only `rpc.system` and the status code,
//! because the service and method of a call routed by prefix or regular
//! expression are whatever the client sends, and a metric series per
//! client-chosen name would let clients grow the series without bound
//! (`http.route` already names the rule).

use crate::grpc::GRPC_STATUS;
use http::HeaderMap;
use opentelemetry::KeyValue;

/// The largest gRPC status code (UNAUTHENTICATED).
const MAX_CODE: u16 = 16;

/// What a status that is not a gRPC code counts as.
const UNKNOWN: u16 = 2;

/// The gRPC side of one exchange.
#[derive(Debug)]
pub(crate) struct GrpcCall {
    service: String,
    method: String,
    /// `grpc-status`, once seen.
    status: Option<u16>,
}

impl GrpcCall {
    /// The call to `path` of a request known to be a gRPC call (by its
    /// `Content-Type`), when the path names a service and a method.
    pub(crate) fn read(path: &str) -> Option<GrpcCall> {
        let (service, method) = path.strip_prefix('/')?.rsplit_once('/')?;
        Some(GrpcCall {
            service: service.to_string(),
            method: method.to_string(),
            status: None,
        })
    }

    /// Notes the `grpc-status` in `headers` (response headers or trailers).
    /// A code outside gRPC's 0-16 counts as UNKNOWN (2), as gRPC clients
    /// read it, which also keeps the metric label a closed set whatever a
    /// backend sends.
    pub(crate) fn observe(&mut self, headers: &HeaderMap) {
        if let Some(value) = headers.get(GRPC_STATUS) {
            let code = value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u16>().ok())
                .filter(|c| *c <= MAX_CODE)
                .unwrap_or(UNKNOWN);
            self.status = Some(code);
        }
    }

    /// The status code, once known.
    pub(crate) fn status(&self) -> Option<u16> {
        self.status
    }

    /// Part of the metric series key: 0 before a status, else code + 1.
    pub(crate) fn key(&self) -> u8 {
        self.status.map_or(0, |c| {
            u8::try_from(c.min(MAX_CODE)).map_or(u8::MAX, |c| c + 1)
        })
    }

    /// Whether the status is a server error by the RPC conventions
    /// (UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE,
    /// DATA_LOSS), which makes the server span an error.
    pub(crate) fn server_error(&self) -> bool {
        matches!(self.status, Some(2 | 4 | 12 | 13 | 14 | 15))
    }

    /// The server span's name by the RPC conventions: `pkg.Service/Method`.
    pub(crate) fn span_name(&self) -> String {
        format!("{}/{}", self.service, self.method)
    }

    /// The metric attributes: the system and the status code.
    pub(crate) fn push_metric_attributes(&self, attrs: &mut Vec<KeyValue>) {
        attrs.push(KeyValue::new("rpc.system", "grpc"));
        if let Some(code) = self.status {
            attrs.push(KeyValue::new("rpc.grpc.status_code", i64::from(code)));
        }
    }

    /// The span's own attributes (it has the metric ones already): the
    /// service and the method.
    pub(crate) fn push_span_attributes(&self, attrs: &mut Vec<KeyValue>) {
        attrs.push(KeyValue::new("rpc.service", self.service.clone()));
        attrs.push(KeyValue::new("rpc.method", self.method.clone()));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use http::HeaderValue;

    #[test]
    fn reads_service_method_and_status() {
        let mut call = GrpcCall::read("/pkg.Svc/Call").unwrap();
        assert_eq!(
            (call.service.as_str(), call.method.as_str()),
            ("pkg.Svc", "Call")
        );
        assert_eq!(call.key(), 0);
        let mut trailers = HeaderMap::new();
        trailers.insert(GRPC_STATUS, HeaderValue::from_static("14"));
        call.observe(&trailers);
        assert_eq!(call.status(), Some(14));
        assert_eq!(call.key(), 15);
        assert!(call.server_error());
        for odd in ["99", "-1", "OK"] {
            trailers.insert(GRPC_STATUS, HeaderValue::from_static(odd));
            call.observe(&trailers);
            assert_eq!(call.status(), Some(2), "{odd}");
        }
        assert!(GrpcCall::read("/nopath").is_none());
    }
}
