//! One upstream connection and one exchange on it: the request head and
//! body out, the response head and body in, both driven by whoever awaits
//! them (the request's future, then the response body), never by a task.
//!
//! The request body keeps streaming while the response arrives, as it did
//! under hyper (an upstream may answer before it has read the whole body,
//! an echo service does): [`ResponseBody`] keeps sending it as it is
//! polled. A response that ends before the request body was sent leaves
//! the connection unusable; so does anything but a clean end.

use super::H1Error;
use super::body::{Decoded, Decoder};
use super::head::{self, Framing};
use super::upload::{Out, Upload, UploadError};
use crate::body::{BoxError, ProxyBody};
use crate::upstream::Added;
use bytes::{Bytes, BytesMut};
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker, ready};
use tokio::io::AsyncWrite;
use tokio::net::TcpStream;

/// Room reserved for a read when the read buffer runs low.
const READ_RESERVE: usize = 16 * 1024;

/// A write buffer larger than this is dropped when its connection goes idle.
const TRIM_ABOVE: usize = 16 * 1024;

/// A read is not started into less room than this.
const READ_MIN: usize = 2 * 1024;

/// Where a connection goes after a clean exchange.
pub(crate) trait Home: Send + Sync {
    /// Takes `conn` back for another exchange.
    fn put(&self, conn: Conn);
}

/// One HTTP/1.1 connection to an upstream with its reused buffers.
pub(crate) struct Conn {
    io: TcpStream,
    read: BytesMut,
    /// What waits to be written; the upload fills it.
    pub(super) out: Out,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("buffered", &self.read.len())
            .finish_non_exhaustive()
    }
}

impl Conn {
    /// A fresh connection over `io`.
    pub(crate) fn new(io: TcpStream) -> Conn {
        Conn {
            io,
            read: BytesMut::new(),
            out: Out::default(),
        }
    }

    /// Whether an idle connection can take a request: the upstream has
    /// neither closed it nor sent anything. Never waits, and reads only
    /// when the socket became readable since the last exchange drained it
    /// (a close or stray bytes), as nginx learns of a cached upstream
    /// connection's close from its read event.
    pub(crate) fn is_usable(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        match self.io.poll_read_ready(&mut cx) {
            Poll::Pending => return true,
            Poll::Ready(Err(_)) => return false,
            Poll::Ready(Ok(())) => {}
        }
        let mut probe = [0u8; 1];
        matches!(self.io.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// The connection without a write buffer a large upload grew, so an
    /// idle connection keeps only what a typical head needs.
    fn trimmed(mut self) -> Conn {
        if self.out.head.capacity() > TRIM_ABOVE {
            self.out.head = BytesMut::new();
        }
        self
    }

    /// Reads what the upstream sent into the read buffer; `0` at its end.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.read.capacity() - self.read.len() < READ_MIN {
            self.read.reserve(READ_RESERVE);
        }
        // Through `AsyncRead`, not `try_read_buf`: a read that leaves room
        // in the buffer drained the socket, and Tokio then forgets the
        // read readiness. So the next checkout's `is_usable` sees no
        // readiness unless the upstream closed or sent something since,
        // and needs no probing read (one `recvfrom` a request fewer).
        tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.read)
    }

    /// Writes everything waiting in `out`.
    pub(super) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let out = &mut self.out;
        loop {
            let n = if out.data.is_empty() && out.tail.is_empty() {
                if out.head.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                ready!(Pin::new(&mut self.io).poll_write(cx, &out.head))?
            } else {
                let slices = [
                    IoSlice::new(&out.head),
                    IoSlice::new(&out.data),
                    IoSlice::new(out.tail),
                ];
                ready!(Pin::new(&mut self.io).poll_write_vectored(cx, &slices))?
            };
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            out.consume(n);
        }
    }
}

/// Sends `request` (origin-form target, `Host` set, the `added` fields
/// after its own) on `conn` and waits
/// for the final response head. The response's body reads the rest and
/// gives the connection to `home` after a clean end.
///
/// # Errors
///
/// Any [`H1Error`] before a final response head; the connection is
/// closed. A request body that fails is [`H1Error::RequestBody`], with
/// the body's error as its source.
pub(crate) async fn exchange(
    mut conn: Conn,
    request: Request<ProxyBody>,
    added: Added<'_>,
    home: Arc<dyn Home>,
) -> Result<Response<ProxyBody>, H1Error> {
    let (parts, body) = request.into_parts();
    let empty = body.is_end_stream();
    let exact = body.size_hint().exact();
    let framing = head::write_request(&parts, added, (empty, exact), &mut conn.out.head)?;
    let mut upload = match framing {
        Framing::None | Framing::Length(0) => None,
        Framing::Length(n) => Some(Upload::new(body, Some(n))),
        Framing::Chunked => Some(Upload::new(body, None)),
    };
    let mut unsent: Option<io::Error> = None;
    let head = poll_fn(|cx| {
        loop {
            if unsent.is_none() {
                let progress = match upload.as_mut() {
                    Some(upload) => upload.poll(&mut conn, cx),
                    None => conn.poll_flush(cx).map_err(UploadError::Write),
                };
                match progress {
                    Poll::Ready(Ok(())) => upload = None,
                    Poll::Ready(Err(UploadError::Body(error))) => return Poll::Ready(Err(error)),
                    // The upstream may have answered and closed: read on.
                    Poll::Ready(Err(UploadError::Write(error))) => {
                        unsent = Some(error);
                        upload = None;
                    }
                    Poll::Pending => {}
                }
            }
            if let Some(head) = head::parse_response(&mut conn.read, &parts.method)? {
                return Poll::Ready(Ok(head));
            }
            match ready!(conn.poll_fill(cx)) {
                Ok(0) => {
                    let error = unsent
                        .take()
                        .map_or(H1Error::ClosedBeforeHead, H1Error::Write);
                    return Poll::Ready(Err(error));
                }
                Ok(_) => {}
                Err(error) => return Poll::Ready(Err(H1Error::Read(error))),
            }
        }
    })
    .await?;
    let mut body = ResponseBody {
        conn: Some(conn),
        decoder: Decoder::new(head.body),
        upload,
        reusable: head.keep_alive && unsent.is_none(),
        home,
    };
    if body.decoder.is_done() {
        body.finish();
    }
    Ok(head.response.map(|()| body.boxed_unsync()))
}

/// A response body read off its connection, which it hands back to its
/// home after a clean end.
struct ResponseBody {
    /// `None` once the body has ended or failed.
    conn: Option<Conn>,
    decoder: Decoder,
    /// The request body, while it is still being sent.
    upload: Option<Upload>,
    /// Whether the connection may serve another exchange after this one.
    reusable: bool,
    home: Arc<dyn Home>,
}

impl ResponseBody {
    /// The body has ended: the connection goes home if the whole exchange
    /// was clean, else it closes.
    fn finish(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        let clean = self.reusable
            && self.upload.take().is_none()
            && conn.read.is_empty()
            && conn.out.head.is_empty()
            && conn.out.data.is_empty();
        if clean {
            self.home.put(conn.trimmed());
        }
    }

    /// Lets the request body make progress; an error from the client's
    /// body ends the response with it.
    fn poll_upload(&mut self, cx: &mut Context<'_>) -> Result<(), H1Error> {
        let (Some(upload), Some(conn)) = (self.upload.as_mut(), self.conn.as_mut()) else {
            return Ok(());
        };
        match upload.poll(conn, cx) {
            Poll::Pending => Ok(()),
            Poll::Ready(Ok(())) => {
                self.upload = None;
                Ok(())
            }
            Poll::Ready(Err(UploadError::Body(error))) => Err(error),
            Poll::Ready(Err(UploadError::Write(error))) => {
                tracing::debug!(%error, "upstream stopped taking the request body");
                self.upload = None;
                self.reusable = false;
                Ok(())
            }
        }
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Result<Decoded, H1Error>> {
        self.poll_upload(cx)?;
        let Some(conn) = self.conn.as_mut() else {
            return Poll::Ready(Ok(Decoded::End));
        };
        loop {
            match self.decoder.decode(&mut conn.read)? {
                Decoded::More => {}
                decoded => return Poll::Ready(Ok(decoded)),
            }
            match ready!(conn.poll_fill(cx)) {
                Ok(0) => {
                    self.decoder.eof()?;
                    self.reusable = false;
                    return Poll::Ready(Ok(Decoded::End));
                }
                Ok(_) => {}
                Err(error) => return Poll::Ready(Err(H1Error::Read(error))),
            }
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.conn.is_none() {
            return Poll::Ready(None);
        }
        let frame = match ready!(this.poll_next(cx)) {
            Ok(Decoded::Data(data)) => Some(Ok(Frame::data(data))),
            Ok(Decoded::Trailers(trailers)) => Some(Ok(Frame::trailers(trailers))),
            Ok(Decoded::End | Decoded::More) => None,
            Err(error) => {
                this.conn = None;
                this.upload = None;
                return Poll::Ready(Some(Err(error.into())));
            }
        };
        if this.decoder.is_done() {
            this.finish();
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.decoder.is_done()
    }

    fn size_hint(&self) -> SizeHint {
        self.decoder.size_hint()
    }
}

#[cfg(test)]
#[path = "conn_tests.rs"]
mod tests;
