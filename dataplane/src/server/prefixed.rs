//! An IO that replays bytes already read before reading from the stream.
//!
//! The listener reads a connection's first bytes itself to choose between
//! HTTP/1.1 and HTTP/2, and the h2c upgrade reads the client's preface and
//! injects the upgraded request; both then hand hyper a [`Prefixed`] IO so it
//! sees the stream exactly as if nothing had been read.

use bytes::{Buf, Bytes};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};

/// `prefix` first, then `inner`; writes go straight to `inner`.
#[derive(Debug)]
pub(crate) struct Prefixed<T> {
    prefix: Bytes,
    inner: T,
}

impl<T> Prefixed<T> {
    /// Reads return `prefix` before anything from `inner`.
    pub(crate) fn new(prefix: Bytes, inner: T) -> Prefixed<T> {
        Prefixed { prefix, inner }
    }

    /// The stream under the prefix.
    pub(crate) fn get_ref(&self) -> &T {
        &self.inner
    }

    /// The stream under the prefix, mutably.
    pub(crate) fn get_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// Frees the prefix's memory once it has all been read.
    pub(crate) fn release(&mut self) {
        if self.prefix.is_empty() {
            self.prefix = Bytes::new();
        }
    }

    /// The stream, dropping whatever of the prefix was not read.
    pub(crate) fn into_inner(self) -> T {
        self.inner
    }

    /// The prefix not read yet, and the stream.
    pub(crate) fn into_parts(self) -> (Bytes, T) {
        (self.prefix, self.inner)
    }

    /// Whether bytes remain to be replayed.
    pub(crate) fn has_prefix(&self) -> bool {
        !self.prefix.is_empty()
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Prefixed<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.prefix.has_remaining() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

// Writes pass straight through; only reads are watched.
super::delegate::delegate_async_write!(Prefixed);

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn replays_the_prefix_then_the_stream() {
        let inner: &[u8] = b" world";
        let mut io = Prefixed::new(Bytes::from_static(b"hello"), inner);
        let mut out = String::new();
        io.read_to_string(&mut out).await.unwrap();
        assert_eq!(out, "hello world");
    }
}
