//! The body types every layer of the data plane shares.
//!
//! A leaf: request and response bodies cross the server, the proxy, the
//! filters, error responses and the upstream clients as one boxed type, so
//! the type lives below all of them and imports nothing of the crate.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

/// The error type of bodies flowing through the proxy.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Request and response bodies as the proxy streams them.
pub type ProxyBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// A complete in-memory body as a [`ProxyBody`].
pub(crate) fn full(bytes: Bytes) -> ProxyBody {
    Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// An empty body.
pub(crate) fn empty() -> ProxyBody {
    full(Bytes::new())
}

/// A downstream request's body as the pipeline takes it: hyper's stream,
/// or the bytes the server's own HTTP/1.1 codec read whole with the head
/// (`server/codec`).
///
/// An enum rather than a type parameter so the pipeline is compiled once,
/// and rather than a [`ProxyBody`] so hyper's body is not boxed twice.
#[derive(Debug)]
pub(crate) enum DownstreamBody {
    /// Streamed by hyper.
    Hyper(hyper::body::Incoming),
    /// Already read; `None` once taken (or empty).
    Whole(Option<Bytes>),
}

impl DownstreamBody {
    /// A body of exactly `bytes`.
    pub(crate) fn whole(bytes: Bytes) -> DownstreamBody {
        DownstreamBody::Whole((!bytes.is_empty()).then_some(bytes))
    }
}

impl From<hyper::body::Incoming> for DownstreamBody {
    fn from(body: hyper::body::Incoming) -> DownstreamBody {
        DownstreamBody::Hyper(body)
    }
}

impl http_body::Body for DownstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            DownstreamBody::Hyper(body) => std::pin::Pin::new(body).poll_frame(cx),
            DownstreamBody::Whole(bytes) => {
                std::task::Poll::Ready(bytes.take().map(|b| Ok(http_body::Frame::data(b))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            DownstreamBody::Hyper(body) => body.is_end_stream(),
            DownstreamBody::Whole(bytes) => bytes.is_none(),
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match self {
            DownstreamBody::Hyper(body) => body.size_hint(),
            DownstreamBody::Whole(bytes) => {
                http_body::SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
        }
    }
}
