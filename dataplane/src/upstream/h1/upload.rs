//! The request body on its way upstream: framed as the head announced
//! (`Content-Length` or chunked), small frames gathered behind the head so
//! a small request is one write, large ones written from their own
//! buffers with `writev`.

use super::H1Error;
use super::conn::Conn;
use crate::body::ProxyBody;
pub(super) use crate::h1_wire::put_hex;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use http_body::Body;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

/// Body data up to this size is copied behind the head or chunk line, so
/// a small request goes out in one write; larger data is written from its
/// own buffer.
const COPY_MAX: usize = 8 * 1024;

/// Request body frames are taken while fewer bytes than this wait to be
/// written, so small frames share a write.
const COALESCE: usize = 64 * 1024;

/// Bytes waiting to be written: framing (and small data) in `head`, then
/// a large data frame, then the CRLF that ends its chunk.
#[derive(Default)]
pub(super) struct Out {
    pub(super) head: BytesMut,
    pub(super) data: Bytes,
    pub(super) tail: &'static [u8],
}

impl Out {
    pub(super) fn consume(&mut self, mut n: usize) {
        let from_head = n.min(self.head.len());
        self.head.advance(from_head);
        n -= from_head;
        let from_data = n.min(self.data.len());
        self.data.advance(from_data);
        n -= from_data;
        self.tail = self.tail.get(n..).unwrap_or_default();
    }

    /// Whether another body frame may be queued.
    fn has_room(&self) -> bool {
        self.data.is_empty() && self.head.len() < COALESCE
    }

    /// Queues `data` followed by `tail`.
    fn push(&mut self, data: Bytes, tail: &'static [u8]) {
        if data.len() <= COPY_MAX {
            self.head.put_slice(&data);
            self.head.put_slice(tail);
        } else {
            self.data = data;
            self.tail = tail;
        }
    }
}

/// The request body still on its way upstream.
pub(super) struct Upload {
    body: ProxyBody,
    /// Bytes still owed under `Content-Length`; `None` when chunked.
    left: Option<u64>,
    ended: bool,
}

/// Why an upload stopped.
pub(super) enum UploadError {
    /// The client's body failed, or did not match its length.
    Body(H1Error),
    /// The upstream stopped taking bytes.
    Write(io::Error),
}

impl Upload {
    /// The upload of `body`, owing `left` bytes, or chunked when `None`.
    pub(super) fn new(body: ProxyBody, left: Option<u64>) -> Upload {
        Upload {
            body,
            left,
            ended: false,
        }
    }

    /// Sends body frames until the body has ended and is written, or
    /// nothing more can happen now.
    pub(super) fn poll(
        &mut self,
        conn: &mut Conn,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), UploadError>> {
        loop {
            let mut waiting = false;
            while !self.ended && conn.out.has_room() {
                match Pin::new(&mut self.body).poll_frame(cx) {
                    Poll::Pending => {
                        waiting = true;
                        break;
                    }
                    Poll::Ready(None) => self.end(&mut conn.out)?,
                    Poll::Ready(Some(Err(error))) => {
                        return Poll::Ready(Err(UploadError::Body(H1Error::RequestBody(error))));
                    }
                    Poll::Ready(Some(Ok(frame))) => {
                        // Trailers are not sent, as hyper sent none without
                        // a `Trailer` field (which hygiene removes).
                        if let Ok(data) = frame.into_data() {
                            self.send(data, &mut conn.out)?;
                        }
                        if self.body.is_end_stream() {
                            self.end(&mut conn.out)?;
                        }
                    }
                }
            }
            ready!(conn.poll_flush(cx)).map_err(UploadError::Write)?;
            if self.ended {
                return Poll::Ready(Ok(()));
            }
            if waiting {
                return Poll::Pending;
            }
        }
    }

    fn send(&mut self, data: Bytes, out: &mut Out) -> Result<(), UploadError> {
        if data.is_empty() {
            // An empty chunk would end a chunked body.
            return Ok(());
        }
        match &mut self.left {
            Some(left) => {
                *left = left
                    .checked_sub(data.len() as u64)
                    .ok_or(UploadError::Body(H1Error::RequestBodyLength))?;
                out.push(data, b"");
            }
            None => {
                put_hex(&mut out.head, data.len());
                out.head.put_slice(b"\r\n");
                out.push(data, b"\r\n");
            }
        }
        Ok(())
    }

    fn end(&mut self, out: &mut Out) -> Result<(), UploadError> {
        self.ended = true;
        match self.left {
            Some(0) => Ok(()),
            Some(_) => Err(UploadError::Body(H1Error::RequestBodyLength)),
            None => {
                out.head.put_slice(b"0\r\n\r\n");
                Ok(())
            }
        }
    }
}
