//! The request body's size for a log line or span: the declared
//! `Content-Length`, else, for a chunked body, the bytes counted on their
//! way upstream.

use super::Exchange;
use crate::body::ProxyBody;
use crate::telemetry::body::CountedBody;
use http_body::Body as _;
use http_body_util::BodyExt as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

impl Exchange {
    /// `body`, counted on its way upstream when its request declared no
    /// length (chunked) and a log line or sampled span will say how many
    /// bytes came in; any other body passes through as it is.
    ///
    /// The details are copied exactly when a log line or sampled span
    /// wants them, so their presence is the test (and the count lives
    /// there, costing other requests nothing).
    #[inline]
    pub(crate) fn count_request_body(&mut self, body: ProxyBody) -> ProxyBody {
        match &mut self.detail {
            Some(detail) if self.bytes_in.is_none() && !body.is_end_stream() => {
                let count = Arc::new(AtomicU64::new(0));
                detail.counted_in = Some(Arc::clone(&count));
                CountedBody::new(body, count).boxed_unsync()
            }
            _ => body,
        }
    }

    /// The request body bytes a log line or span reports: the declared
    /// length (plus a tunnel's bytes), else what was counted.
    pub(super) fn bytes_received(&self) -> u64 {
        let counted = self.detail.as_ref().and_then(|d| d.counted_in.as_ref());
        match (self.bytes_in, counted) {
            (Some(bytes), _) => bytes,
            (None, Some(count)) => count.load(Ordering::Relaxed),
            (None, None) => 0,
        }
    }
}
