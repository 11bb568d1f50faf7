//! The bodies telemetry watches. The response body counts the bytes sent
//! and finishes the request's [`Exchange`] when the last frame is out, or
//! when the body is dropped early (the client went away), so duration and
//! size cover the whole response. A chunked request body is counted when
//! its bytes will be written down ([`CountedBody`]).

use super::exchange::Exchange;
use crate::body::BoxError;
use bytes::Buf;
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

/// A response body that finishes its exchange at its end.
pub(crate) struct ObservedBody<B> {
    inner: B,
    exchange: Option<Exchange>,
    sent: u64,
}

impl<B> ObservedBody<B> {
    /// Watches `inner` for `exchange`.
    pub(crate) fn new(inner: B, exchange: Exchange) -> ObservedBody<B> {
        ObservedBody {
            inner,
            exchange: Some(exchange),
            sent: 0,
        }
    }

    fn finish(&mut self) {
        if let Some(exchange) = self.exchange.take() {
            exchange.finish(self.sent);
        }
    }
}

impl<B> Body for ObservedBody<B>
where
    B: Body<Error = BoxError> + Unpin,
    B::Data: Buf,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        match &frame {
            Some(Ok(f)) => {
                if let Some(data) = f.data_ref() {
                    self.sent += data.remaining() as u64;
                }
                if let (Some(trailers), Some(exchange)) = (f.trailers_ref(), &mut self.exchange) {
                    exchange.trailers(trailers);
                }
                if self.inner.is_end_stream() {
                    self.finish();
                }
            }
            Some(Err(_)) | None => self.finish(),
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for ObservedBody<B> {
    fn drop(&mut self) {
        self.finish();
    }
}

/// A request body of undeclared length (chunked) whose bytes are counted
/// for its request's access-log line and span: the declared
/// `Content-Length` is all a request with one needs.
pub(crate) struct CountedBody<B> {
    inner: B,
    count: Arc<AtomicU64>,
}

impl<B> CountedBody<B> {
    /// Counts what `inner` yields into `count`.
    pub(crate) fn new(inner: B, count: Arc<AtomicU64>) -> CountedBody<B> {
        CountedBody { inner, count }
    }
}

impl<B> Body for CountedBody<B>
where
    B: Body<Error = BoxError> + Unpin,
    B::Data: Buf,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if let Some(Ok(f)) = &frame
            && let Some(data) = f.data_ref()
        {
            self.count
                .fetch_add(data.remaining() as u64, Ordering::Relaxed);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
