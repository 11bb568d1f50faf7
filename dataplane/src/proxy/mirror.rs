//! Request mirroring: fire-and-forget copies of a request to another backend.
//!
//! A mirror must never delay or change the main exchange. Its copy is sent
//! from a spawned task; a request body is teed chunk by chunk into a small
//! bounded channel per mirror, and a mirror that falls behind is cut off (its
//! copy then fails) instead of slowing the client's upload.

use crate::body::{BoxError, ProxyBody, empty};
use crate::upstream::{Endpoint, UpstreamError};
use bytes::Bytes;
use http::Request;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::sync::mpsc;

/// Chunks a mirror may fall behind the main upload before it is dropped.
const MIRROR_BUFFER_CHUNKS: usize = 16;

/// Longest a mirror copy may take in total.
const MIRROR_TIMEOUT: Duration = Duration::from_secs(30);

/// The main request body, copying each data chunk to every mirror tap.
pub(crate) struct Tee {
    inner: ProxyBody,
    taps: Vec<Tap>,
}

struct Tap {
    sender: Option<mpsc::Sender<Bytes>>,
    complete: Arc<AtomicBool>,
}

impl Tee {
    /// Wraps `inner`; taps are added with [`Tee::tap`].
    pub(crate) fn new(inner: ProxyBody) -> Tee {
        Tee {
            inner,
            taps: Vec::new(),
        }
    }

    /// A new mirror copy of the body. An empty body needs no tap.
    pub(crate) fn tap(&mut self) -> ProxyBody {
        if self.inner.is_end_stream() {
            return empty();
        }
        let (sender, receiver) = mpsc::channel(MIRROR_BUFFER_CHUNKS);
        let complete = Arc::new(AtomicBool::new(false));
        self.taps.push(Tap {
            sender: Some(sender),
            complete: complete.clone(),
        });
        MirrorBody { receiver, complete }.boxed_unsync()
    }

    /// The main body, to send upstream.
    pub(crate) fn into_body(self) -> ProxyBody {
        if self.taps.is_empty() {
            self.inner
        } else {
            self.boxed_unsync()
        }
    }

    fn finish(&mut self) {
        for tap in &mut self.taps {
            tap.complete.store(true, Ordering::Release);
            tap.sender = None;
        }
    }
}

impl Body for Tee {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        match &frame {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    for tap in &mut this.taps {
                        let lagging = tap
                            .sender
                            .as_ref()
                            .is_some_and(|s| s.try_send(data.clone()).is_err());
                        if lagging {
                            tap.sender = None;
                        }
                    }
                }
                if this.inner.is_end_stream() {
                    this.finish();
                }
            }
            Some(Err(_)) => this.taps.iter_mut().for_each(|t| t.sender = None),
            None => this.finish(),
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

/// A mirror's copy of the body: ends cleanly only if the main body did, and
/// fails if the tap was cut off.
struct MirrorBody {
    receiver: mpsc::Receiver<Bytes>,
    complete: Arc<AtomicBool>,
}

impl Body for MirrorBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match ready!(self.receiver.poll_recv(cx)) {
            Some(data) => Poll::Ready(Some(Ok(Frame::data(data)))),
            None if self.complete.load(Ordering::Acquire) => Poll::Ready(None),
            None => Poll::Ready(Some(Err("mirror fell behind the request body".into()))),
        }
    }
}

/// Sends one mirror copy in the background and discards the answer.
pub(crate) fn spawn(endpoint: Endpoint, backend: &str, request: Request<ProxyBody>) {
    let backend = backend.to_string();
    tokio::spawn(async move {
        let exchange = async {
            let response = endpoint.send(request).await.map_err(|e| match e {
                UpstreamError::Connect(e) | UpstreamError::Protocol(e) | UpstreamError::Tls(e) => e,
            })?;
            response.into_body().collect().await?;
            Ok::<(), BoxError>(())
        };
        match tokio::time::timeout(MIRROR_TIMEOUT, exchange).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::debug!(backend, %error, "mirror failed"),
            Err(_) => tracing::debug!(backend, "mirror timed out"),
        }
    });
}
