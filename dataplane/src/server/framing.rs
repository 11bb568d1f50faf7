//! Spotting HTTP/1.1 requests that carry both Content-Length and
//! Transfer-Encoding, which hyper accepts but Tollgate refuses.
//!
//! hyper frames such a request by Transfer-Encoding, drops the
//! Content-Length and closes the connection afterwards (RFC 9112 §6.3) —
//! safe, but the request still reaches the upstream, and both headers
//! together are a request-smuggling probe that Tollgate answers with 400.
//! hyper removes the evidence before the service sees the request, so
//! [`FramingWatch`] reads the same bytes on their way into hyper: it finds
//! each request head, notes whether it declared both, and skips the body by
//! the same rules hyper uses. The service takes one verdict per request, in
//! order. Anything the watch does not understand (a malformed head, an
//! upgrade) makes it stop watching; hyper's own safe handling then applies.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};

/// Longest head the watch buffers; hyper refuses longer ones anyway.
const MAX_HEAD: usize = 1024 * 1024;

/// Per-request verdicts, shared between the watch and the service.
#[derive(Debug, Default)]
pub(crate) struct Verdicts {
    inner: Mutex<VerdictQueue>,
}

#[derive(Debug, Default)]
struct VerdictQueue {
    ambiguous: VecDeque<bool>,
    stopped: bool,
}

impl Verdicts {
    /// Whether the next request (in arrival order) declared both
    /// Content-Length and Transfer-Encoding. `false` once the watch stopped.
    pub(crate) fn next_is_ambiguous(&self) -> bool {
        let mut queue = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        !queue.stopped && queue.ambiguous.pop_front().unwrap_or(false)
    }

    fn push(&self, ambiguous: bool) {
        let mut queue = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        queue.ambiguous.push_back(ambiguous);
    }

    fn stop(&self) {
        let mut queue = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        queue.stopped = true;
        queue.ambiguous.clear();
    }
}

/// Where the inbound stream is.
#[derive(Debug)]
enum Scan {
    Head(Vec<u8>),
    Body(u64),
    ChunkSize {
        size: u64,
        digits: usize,
        in_ext: bool,
    },
    ChunkData(u64),
    ChunkEnd,
    Trailers(Vec<u8>),
    Stopped,
}

/// The framing a head declares.
struct HeadInfo {
    ambiguous: bool,
    next: Scan,
}

/// An IO that watches inbound HTTP/1.1 framing; see the module docs.
#[derive(Debug)]
pub(crate) struct FramingWatch<T> {
    inner: T,
    scan: Scan,
    verdicts: Arc<Verdicts>,
}

impl<T> FramingWatch<T> {
    /// Watches `inner`, reporting to `verdicts`.
    pub(crate) fn new(inner: T, verdicts: Arc<Verdicts>) -> FramingWatch<T> {
        FramingWatch {
            inner,
            scan: Scan::Head(Vec::new()),
            verdicts,
        }
    }

    fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let (used, next) = step(&mut self.scan, bytes, &self.verdicts);
            bytes = &bytes[used..];
            if let Some(next) = next {
                self.scan = next;
            }
            if matches!(self.scan, Scan::Stopped) {
                self.verdicts.stop();
                return;
            }
        }
    }
}

/// Consumes a prefix of `bytes`; returns how much and the next state, if it changes.
fn step(scan: &mut Scan, bytes: &[u8], verdicts: &Verdicts) -> (usize, Option<Scan>) {
    match scan {
        Scan::Stopped => (bytes.len(), None),
        Scan::Head(buf) => {
            if buf.is_empty() && matches!(bytes[0], b'\r' | b'\n') {
                return (1, None); // empty lines before a request line are skipped
            }
            buf.push(bytes[0]);
            if buf.len() > MAX_HEAD {
                return (1, Some(Scan::Stopped));
            }
            if !(buf.ends_with(b"\n\r\n") || buf.ends_with(b"\n\n")) {
                return (1, None);
            }
            let info = read_head(buf);
            if info.is_some() {
                verdicts.push(info.as_ref().is_some_and(|i| i.ambiguous));
            }
            (1, Some(info.map_or(Scan::Stopped, |i| i.next)))
        }
        Scan::Body(left) | Scan::ChunkData(left) => {
            let take = usize::try_from(*left)
                .unwrap_or(usize::MAX)
                .min(bytes.len());
            *left -= take as u64;
            let done = *left == 0;
            let next = match scan {
                Scan::Body(_) if done => Some(Scan::Head(Vec::new())),
                Scan::ChunkData(_) if done => Some(Scan::ChunkEnd),
                _ => None,
            };
            (take, next)
        }
        Scan::ChunkSize {
            size,
            digits,
            in_ext,
        } => {
            let b = bytes[0];
            let next = match (b, *in_ext) {
                (b'\n', _) if *digits == 0 => Some(Scan::Stopped),
                (b'\n', _) if *size == 0 => Some(Scan::Trailers(Vec::new())),
                (b'\n', _) => Some(Scan::ChunkData(*size)),
                (_, true) | (b'\r' | b';' | b' ' | b'\t', _) => {
                    *in_ext = true;
                    None
                }
                _ => match (b as char).to_digit(16) {
                    Some(d) if *digits < 16 => {
                        *size = *size * 16 + u64::from(d);
                        *digits += 1;
                        None
                    }
                    _ => Some(Scan::Stopped),
                },
            };
            (1, next)
        }
        Scan::ChunkEnd => match bytes[0] {
            b'\r' => (1, None),
            b'\n' => (1, Some(chunk_size())),
            _ => (1, Some(Scan::Stopped)),
        },
        Scan::Trailers(line) => {
            line.push(bytes[0]);
            if line.len() > MAX_HEAD {
                return (1, Some(Scan::Stopped));
            }
            let ended = line == b"\n" || line == b"\r\n";
            match (bytes[0], ended) {
                (b'\n', true) => (1, Some(Scan::Head(Vec::new()))),
                (b'\n', false) => {
                    line.clear();
                    (1, None)
                }
                _ => (1, None),
            }
        }
    }
}

fn chunk_size() -> Scan {
    Scan::ChunkSize {
        size: 0,
        digits: 0,
        in_ext: false,
    }
}

/// Reads a complete head; `None` when the watch should stop.
fn read_head(head: &[u8]) -> Option<HeadInfo> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let request_line = lines.next()?;
    if !request_line.ends_with("HTTP/1.1") {
        return None; // HTTP/1.0 keep-alive and oddities: leave them to hyper
    }
    let (mut lengths, mut te, mut upgrade) = (Vec::new(), None::<&str>, false);
    for line in lines.filter(|l| !l.is_empty()) {
        if line.starts_with([' ', '\t']) {
            return None;
        }
        let (name, value) = line.split_once(':')?;
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => lengths.push(value),
            "transfer-encoding" => te = Some(value),
            "upgrade" => upgrade = true,
            _ => {}
        }
    }
    if upgrade {
        return None;
    }
    let ambiguous = te.is_some() && !lengths.is_empty();
    let next = match (te, lengths.first()) {
        (Some(te), _) if te.to_ascii_lowercase().trim_end().ends_with("chunked") => chunk_size(),
        (Some(_), _) => return None,
        (None, Some(first)) => {
            let len: u64 = first
                .parse()
                .ok()
                .filter(|_| first.bytes().all(|b| b.is_ascii_digit()))?;
            if lengths.iter().any(|l| *l != *first) {
                return None;
            }
            if len == 0 {
                Scan::Head(Vec::new())
            } else {
                Scan::Body(len)
            }
        }
        (None, None) => Scan::Head(Vec::new()),
    };
    Some(HeadInfo { ambiguous, next })
}

impl<T: AsyncRead + Unpin> AsyncRead for FramingWatch<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled
            && !matches!(self.scan, Scan::Stopped)
        {
            self.as_mut().get_mut().feed(&buf.filled()[before..]);
        }
        polled
    }
}

// Writes pass straight through; only reads are watched.
super::delegate_async_write!(FramingWatch);

#[cfg(test)]
#[path = "framing_tests.rs"]
mod tests;
