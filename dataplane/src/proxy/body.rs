//! The client's request body on its way upstream: whose fault a failure
//! is, and how long the gateway waits for it.
//!
//! The upstream client reads the request body while it sends the request,
//! so a body that cannot be read (malformed chunked framing, cut short,
//! reset) surfaces as a failed upstream exchange. It is the client's error,
//! not the backend's: [`RequestBody`] turns every read error into a
//! [`RequestBodyError`], and [`client_fault`] finds it inside the upstream
//! error so the pipeline answers 400 (or 408) and logs a refused request
//! instead of a failing backend (502).
//!
//! A client sending its body one byte a second would otherwise hold a
//! downstream and an upstream connection for as long as it likes: the
//! header timeout ends with the head. [`BodyLimits`] bounds it like a
//! leaky bucket: the body starts with `timeout` of credit; time spent
//! waiting on the client uses it up, each byte received earns back
//! `1 / min_rate` seconds, never more than `timeout`. At zero the body
//! fails with [`RequestBodyError::TimedOut`]. So a stall ends after
//! `timeout` (nginx's `client_body_timeout`), a body slower than
//! `min_rate` on average ends soon after (Apache's `MinRate`), and a body
//! at or above it never does. Only time the body is polled and waiting
//! counts: while the upstream is not reading (back-pressure), the client is
//! not to blame.

use crate::body::BoxError;
use bytes::{Buf, Bytes};
use http_body::{Body, Frame, SizeHint};
use std::error::Error;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use thiserror::Error;
use tokio::time::{Instant, Sleep};
use tollgate_snapshot::Settings;

/// How long a request body may keep the gateway waiting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BodyLimits {
    /// Longest wait at a stretch, and the most credit a body holds.
    pub(crate) timeout: Duration,
    /// Bytes per second that earn back one second of credit; 0 gives the
    /// whole `timeout` back on every read.
    pub(crate) min_rate: u32,
}

impl BodyLimits {
    /// The limits `settings` ask for; `None` when the timeout is off.
    pub(crate) fn from_settings(settings: &Settings) -> Option<BodyLimits> {
        (settings.request_body_timeout_ms > 0).then(|| BodyLimits {
            timeout: Duration::from_millis(settings.request_body_timeout_ms),
            min_rate: settings.request_body_min_bytes_per_second,
        })
    }

    /// The credit `bytes` earn back.
    fn earned(&self, bytes: usize) -> Duration {
        if self.min_rate == 0 {
            return self.timeout;
        }
        let nanos = (bytes as u128) * 1_000_000_000 / u128::from(self.min_rate);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

/// Why the client's request body could not be read.
#[derive(Debug, Error)]
pub(crate) enum RequestBodyError {
    /// The body was malformed, cut short or reset by the client.
    #[error("reading the request body failed")]
    Read(#[source] BoxError),
    /// The body did not arrive fast enough.
    #[error("the request body stalled or arrived too slowly")]
    TimedOut,
}

/// A downstream request body; see the module docs.
pub(crate) struct RequestBody<B> {
    inner: B,
    limits: Option<BodyLimits>,
    /// Credit left.
    credit: Duration,
    /// Since when the body has been waiting on the client, if it is.
    waiting_since: Option<Instant>,
    /// Made on the first wait and reset afterwards: bodies that arrive with
    /// their head never need one.
    timer: Option<Pin<Box<Sleep>>>,
}

impl<B> RequestBody<B> {
    /// Wraps `inner`; `None` lets it wait forever.
    pub(crate) fn new(inner: B, limits: Option<BodyLimits>) -> RequestBody<B> {
        RequestBody {
            inner,
            credit: limits.map_or(Duration::ZERO, |l| l.timeout),
            limits,
            waiting_since: None,
            timer: None,
        }
    }

    /// Counts a received frame of `bytes` against the limits.
    fn received(&mut self, bytes: usize) {
        let Some(limits) = self.limits else {
            return;
        };
        if let Some(since) = self.waiting_since.take() {
            self.credit = self.credit.saturating_sub(since.elapsed());
        }
        self.credit = (self.credit + limits.earned(bytes)).min(limits.timeout);
    }

    /// The body is waiting on the client: `Pending` while it has credit,
    /// else the timeout error (once; the body ends after it).
    fn wait(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.limits.is_none() {
            return Poll::Pending;
        }
        let since = *self.waiting_since.get_or_insert_with(Instant::now);
        let deadline = since + self.credit;
        let timer = match &mut self.timer {
            Some(timer) => {
                if timer.deadline() != deadline {
                    timer.as_mut().reset(deadline);
                }
                timer
            }
            None => self
                .timer
                .insert(Box::pin(tokio::time::sleep_until(deadline))),
        };
        ready!(timer.as_mut().poll(cx));
        self.limits = None;
        self.timer = None;
        Poll::Ready(Some(Err(Box::new(RequestBodyError::TimedOut))))
    }
}

impl<B> Body for RequestBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.received(frame.data_ref().map_or(0, Buf::remaining));
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => {
                Poll::Ready(Some(Err(Box::new(RequestBodyError::Read(error.into())))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => this.wait(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The request body's failure inside `error` (an upstream exchange's, or a
/// body read's), if that is what failed.
pub(crate) fn find<'e>(error: &'e (dyn Error + 'static)) -> Option<&'e RequestBodyError> {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(found) = error.downcast_ref::<RequestBodyError>() {
            return Some(found);
        }
        next = error.source();
    }
    None
}

/// Whether `error`, an upstream exchange's failure, was the client's
/// request body failing: `Ok` with the client's error if so, else `Err`
/// with `error` as it was.
pub(crate) fn client_fault(error: BoxError) -> Result<crate::error::ProxyError, BoxError> {
    use crate::error::ProxyError;
    match find(&*error) {
        Some(RequestBodyError::TimedOut) => Ok(ProxyError::RequestBodyTimeout),
        Some(RequestBodyError::Read(_)) => Ok(ProxyError::RequestBody { source: error }),
        None => Err(error),
    }
}

#[cfg(test)]
#[path = "body_tests.rs"]
mod tests;
