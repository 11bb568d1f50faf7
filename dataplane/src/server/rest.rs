//! The IO hyper serves HTTP/1.1 on, and what it tells about the connection
//! being at rest between requests (see `h1.rs`).
//!
//! hyper keeps its buffers to itself, so the connection loop learns from the
//! IO under it: [`RestIo`] notes whether the framing watch is between
//! requests after every read and whether every written byte was flushed,
//! in [`Rest`]. It also replays the bytes a previous hyper connection on the
//! same socket had read but not used, which the watch has already seen.

use super::framing::FramingWatch;
use super::prefixed::Prefixed;
use bytes::Bytes;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Shared between the IO inside hyper and the connection loop. Both run in
/// the connection's task, so relaxed atomics suffice.
#[derive(Debug, Default)]
pub(crate) struct Rest {
    /// A head or body is partly read, or the watch stopped following.
    reading: AtomicBool,
    /// Bytes were written since the last completed flush.
    unflushed: AtomicBool,
}

impl Rest {
    /// Nothing partly read and nothing written but unflushed.
    pub(crate) fn quiet(&self) -> bool {
        !self.reading.load(Ordering::Relaxed) && !self.unflushed.load(Ordering::Relaxed)
    }
}

/// Open and parked downstream connections of one data plane, and the
/// tunnels they relay, for `/status` and the gauges.
#[derive(Debug, Default)]
pub(crate) struct Connections {
    open: AtomicUsize,
    parked: AtomicUsize,
    tunnels: AtomicUsize,
}

impl Connections {
    /// Counts a connection as open until the guard drops.
    pub(crate) fn open(self: &Arc<Self>) -> OpenGuard {
        self.open.fetch_add(1, Ordering::Relaxed);
        OpenGuard(Arc::clone(self))
    }

    /// Open connections, and how many of them are parked.
    pub(crate) fn counts(&self) -> (usize, usize) {
        (
            self.open.load(Ordering::Relaxed),
            self.parked.load(Ordering::Relaxed),
        )
    }

    /// Tunnels (relayed upgrades) open now.
    pub(crate) fn tunnels(&self) -> usize {
        self.tunnels.load(Ordering::Relaxed)
    }
}

/// One open connection.
#[derive(Debug)]
pub(crate) struct OpenGuard(Arc<Connections>);

impl OpenGuard {
    /// Counts the connection as parked until the guard drops.
    pub(crate) fn park(&self) -> ParkedGuard<'_> {
        self.0.parked.fetch_add(1, Ordering::Relaxed);
        ParkedGuard(&self.0)
    }

    /// Counts one tunnel relayed on the connection until the guard drops.
    pub(crate) fn tunnel(&self) -> TunnelGuard<'_> {
        self.0.tunnels.fetch_add(1, Ordering::Relaxed);
        TunnelGuard(&self.0)
    }
}

/// One open tunnel.
#[derive(Debug)]
pub(crate) struct TunnelGuard<'a>(&'a Connections);

impl Drop for TunnelGuard<'_> {
    fn drop(&mut self) {
        self.0.tunnels.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One parked connection.
#[derive(Debug)]
pub(crate) struct ParkedGuard<'a>(&'a Connections);

impl Drop for ParkedGuard<'_> {
    fn drop(&mut self) {
        self.0.parked.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Replays `replay`, then reads through the framing watch; see the module docs.
#[derive(Debug)]
pub(crate) struct RestIo<T> {
    /// The replay in front of the watch.
    inner: Prefixed<FramingWatch<T>>,
    rest: Arc<Rest>,
}

impl<T> RestIo<T> {
    /// Serves `replay` (already seen by `watch`) before reading on.
    pub(crate) fn new(replay: Bytes, watch: FramingWatch<T>, rest: Arc<Rest>) -> RestIo<T> {
        RestIo {
            inner: Prefixed::new(replay, watch),
            rest,
        }
    }

    /// The watch, dropping whatever of the replay was not read.
    pub(crate) fn into_watch(self) -> FramingWatch<T> {
        self.inner.into_inner()
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for RestIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.as_mut().get_mut();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if polled.is_ready() {
            let reading = !this.inner.get_ref().at_rest();
            this.rest.reading.store(reading, Ordering::Relaxed);
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for RestIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.as_mut().get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.note_write(&polled);
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.as_mut().get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.note_write(&polled);
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.as_mut().get_mut();
        let polled = Pin::new(&mut this.inner).poll_flush(cx);
        if let Poll::Ready(Ok(())) = polled {
            this.rest.unflushed.store(false, Ordering::Relaxed);
        }
        polled
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<T> RestIo<T> {
    fn note_write(&self, polled: &Poll<io::Result<usize>>) {
        if let Poll::Ready(Ok(n)) = polled
            && *n > 0
        {
            self.rest.unflushed.store(true, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::framing::Verdicts;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    type Io = RestIo<tokio::io::DuplexStream>;

    fn io(
        replay: &'static [u8],
        stream: tokio::io::DuplexStream,
    ) -> (Io, Arc<Rest>, Arc<Verdicts>) {
        let rest = Arc::new(Rest::default());
        let verdicts = Arc::new(Verdicts::default());
        let watch = FramingWatch::new(stream, Arc::clone(&verdicts), Arc::default());
        let io = RestIo::new(Bytes::from_static(replay), watch, Arc::clone(&rest));
        (io, rest, verdicts)
    }

    /// Quiet only between requests: not with half a head or body read, and
    /// not with written bytes that were not flushed.
    #[tokio::test]
    async fn quiet_between_requests_and_after_flushes() {
        let (near, mut far) = tokio::io::duplex(1024);
        let (mut io, rest, _) = io(b"", near);
        let mut buf = [0u8; 256];
        far.write_all(b"POST / HTTP/1.1\r\ncontent-length: 4\r\n\r\nab")
            .await
            .unwrap();
        let _ = io.read(&mut buf).await.unwrap();
        assert!(!rest.quiet(), "body partly read");
        far.write_all(b"cd").await.unwrap();
        let _ = io.read(&mut buf).await.unwrap();
        assert!(rest.quiet(), "request complete");
        io.write_all(b"HTTP/1.1 200 OK\r\n").await.unwrap();
        assert!(!rest.quiet(), "written, not flushed");
        io.flush().await.unwrap();
        assert!(rest.quiet(), "flushed");
        far.write_all(b"GET / HT").await.unwrap();
        let _ = io.read(&mut buf).await.unwrap();
        assert!(!rest.quiet(), "head partly read");
    }

    /// Replayed bytes come first and are not fed to the watch again.
    #[tokio::test]
    async fn replays_before_reading_on() {
        let (near, mut far) = tokio::io::duplex(64);
        let (mut io, rest, verdicts) = io(b"GET / HTTP/1.1\r\nhost: a\r\n", near);
        far.write_all(b"\r\n").await.unwrap();
        drop(far);
        let mut out = Vec::new();
        io.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, b"GET / HTTP/1.1\r\nhost: a\r\n\r\n");
        // The watch saw only the final line, an empty line between
        // requests, and no head.
        assert!(rest.quiet());
        assert_eq!(verdicts.seen(), (0, true));
    }
}
