//! A [`Call`] as a child span of the request it is made for: the HTTP
//! client conventions' attributes, and the span's `traceparent` on the
//! call, so the auth service's own spans join the request's trace.

use super::{Call, CallError};
use crate::telemetry::{SpanEnd, StageTrace};
use bytes::Bytes;
use http::{Request, Response};
use opentelemetry::KeyValue;
use opentelemetry::trace::SpanKind;
use tollgate_telemetry::TRACEPARENT;

/// What a traced call's span is named and adds to the HTTP attributes
/// (a gRPC call's `rpc.*`).
pub(crate) struct CallSpan {
    /// The span's name; `None`: the method, as the HTTP conventions name
    /// client spans.
    pub(crate) name: Option<String>,
    /// What the call is for (`tollgate.call`: `external-auth`, ...).
    pub(crate) purpose: &'static str,
    pub(crate) attributes: Vec<KeyValue>,
}

impl Call {
    /// [`Call::send`], recorded as a child span of the request in `trace`
    /// when the request is sampled (`None`: just the call).
    ///
    /// # Errors
    ///
    /// As [`Call::send`].
    pub(crate) async fn send_traced(
        &self,
        mut request: Request<Bytes>,
        trace: Option<&mut StageTrace>,
        described: CallSpan,
    ) -> Result<Response<Bytes>, CallError> {
        let Some(trace) = trace else {
            return self.send(request).await;
        };
        let span = trace.open();
        request
            .headers_mut()
            .insert(TRACEPARENT.clone(), span.traceparent());
        let method = request.method().to_string();
        let path = request
            .uri()
            .path_and_query()
            .map_or(self.inner.path.as_str(), |p| p.path())
            .to_string();
        let sent = self.send(request).await;
        let mut attributes = described.attributes;
        attributes.extend(self.span_attributes(&method, &path, described.purpose));
        let error = match &sent {
            Ok(answer) => {
                let status = answer.status().as_u16();
                attributes.push(KeyValue::new(
                    "http.response.status_code",
                    i64::from(status),
                ));
                (status >= 400).then(|| status.to_string())
            }
            Err(error) => Some(error.kind().to_string()),
        };
        let end = SpanEnd {
            name: described.name.unwrap_or(method),
            kind: SpanKind::Client,
            attributes,
            error,
        };
        trace.close(span, end);
        sent
    }

    /// The HTTP client conventions' attributes of a `method` call to
    /// `path` of this target, made for `purpose` (`tollgate.call`).
    pub(crate) fn span_attributes(
        &self,
        method: &str,
        path: &str,
        purpose: &'static str,
    ) -> Vec<KeyValue> {
        let inner = &self.inner;
        let mut attributes = vec![
            KeyValue::new("http.request.method", method.to_string()),
            KeyValue::new(
                "url.full",
                format!("{}://{}{path}", inner.scheme, inner.authority),
            ),
            KeyValue::new("server.address", inner.authority.host().to_string()),
            KeyValue::new("tollgate.call", purpose),
        ];
        if let Some(port) = inner.authority.port_u16() {
            attributes.push(KeyValue::new("server.port", i64::from(port)));
        }
        attributes
    }
}

impl CallError {
    /// A short, stable `error.type` for the span of a failed call.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            CallError::Target(_) => "invalid-target",
            CallError::NoEndpoint(_) => "no-endpoints",
            CallError::Timeout(_) => "timeout",
            CallError::Failed(_) => "call-failed",
            CallError::TooLarge => "response-too-large",
        }
    }
}
