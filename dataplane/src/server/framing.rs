//! Spotting HTTP/1.1 requests that carry both Content-Length and
//! Transfer-Encoding, which hyper accepts but Tollgate refuses.
//!
//! hyper frames such a request by Transfer-Encoding, drops the
//! Content-Length and closes the connection afterwards (RFC 9112 §6.3) —
//! safe, but the request still reaches the upstream, and both headers
//! together are a request-smuggling probe that Tollgate answers with 400.
//! hyper removes the evidence before the service sees the request, so
//! [`FramingWatch`] reads the same bytes on their way into hyper: it finds
//! each request head (HTTP/1.1 and HTTP/1.0, with or without an `Upgrade`
//! offer: hyper keeps serving the connection after all of them), notes
//! whether it declared both, and skips the body by the same rules hyper
//! uses. The service takes one verdict per request, in order.
//!
//! The rule must hold for every request on every connection, so a request
//! the watch cannot vouch for is refused rather than waved through. The
//! watch stops at what hyper refuses itself (a malformed head or body,
//! which ends the connection); should hyper ever serve a request after
//! that, it finds no verdict and is answered 400 ([`Framing::Unfollowed`]).
//! Verdicts taken before the watch stopped still count. An accepted h2c
//! upgrade leaves HTTP/1.1 altogether and takes the socket out of the watch.

use super::headclock::HeadClock;
use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};

/// Longest head the watch buffers; hyper refuses longer ones anyway.
const MAX_HEAD: usize = 1024 * 1024;

/// Headers the quick path reads in place; longer heads take the slow path.
const QUICK_HEADERS: usize = 32;

/// Per-request verdicts, shared between the watch and the service.
#[derive(Debug, Default)]
pub(crate) struct Verdicts {
    inner: Mutex<VerdictQueue>,
}

#[derive(Debug, Default)]
struct VerdictQueue {
    ambiguous: VecDeque<bool>,
    /// Complete request heads seen on the connection.
    seen: u64,
}

/// What the watch saw of one request's framing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// One framing header at most: serve it.
    Clear,
    /// Both Content-Length and Transfer-Encoding: refuse it.
    Ambiguous,
    /// The watch had stopped before this request's head: refuse it.
    Unfollowed,
}

impl Verdicts {
    /// The framing of the next request, in arrival order. Heads the watch
    /// saw before it stopped keep their verdict; any request past them is
    /// [`Framing::Unfollowed`].
    pub(crate) fn next(&self) -> Framing {
        let mut queue = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        match queue.ambiguous.pop_front() {
            Some(false) => Framing::Clear,
            Some(true) => Framing::Ambiguous,
            None => Framing::Unfollowed,
        }
    }

    /// How many request heads the watch has seen, and whether the service
    /// has taken every one of them.
    pub(crate) fn seen(&self) -> (u64, bool) {
        let queue = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        (queue.seen, queue.ambiguous.is_empty())
    }

    fn push(&self, ambiguous: bool) {
        let mut queue = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        queue.ambiguous.push_back(ambiguous);
        queue.seen += 1;
    }
}

/// Where the inbound stream is.
#[derive(Debug)]
enum Scan {
    /// In a request head, collected in the watch's buffer.
    Head,
    Body(u64),
    ChunkSize {
        size: u64,
        digits: usize,
        in_ext: bool,
    },
    ChunkData(u64),
    ChunkEnd,
    /// In the trailer section; the current line is in the watch's buffer.
    Trailers,
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
    /// The head or trailer line being read; kept across requests so its
    /// allocation is reused.
    buf: Vec<u8>,
    verdicts: Arc<Verdicts>,
    clock: Arc<HeadClock>,
}

impl<T> FramingWatch<T> {
    /// Watches `inner`, reporting verdicts to `verdicts` and head timing
    /// to `clock`.
    pub(crate) fn new(inner: T, verdicts: Arc<Verdicts>, clock: Arc<HeadClock>) -> FramingWatch<T> {
        FramingWatch {
            inner,
            scan: Scan::Head,
            buf: Vec::new(),
            verdicts,
            clock,
        }
    }

    /// Between requests: no head or body partly read, and still watching.
    pub(crate) fn at_rest(&self) -> bool {
        matches!(self.scan, Scan::Head) && self.buf.is_empty()
    }

    /// Gives back the head buffer's memory while the connection waits.
    pub(crate) fn shrink(&mut self) {
        if self.buf.is_empty() {
            self.buf = Vec::new();
        }
    }

    /// The watched stream.
    pub(crate) fn get_ref(&self) -> &T {
        &self.inner
    }

    /// The watched stream, to change.
    pub(crate) fn get_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// The stream, no longer watched (after an h2c upgrade).
    pub(crate) fn into_inner(self) -> T {
        self.inner
    }

    fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let reports = Reports {
                verdicts: &self.verdicts,
                clock: &self.clock,
            };
            let (used, next) = step(&mut self.scan, &mut self.buf, bytes, &reports);
            bytes = &bytes[used..];
            if let Some(next) = next {
                if matches!(next, Scan::Head | Scan::Trailers) {
                    self.buf.clear();
                }
                self.scan = next;
            }
            if matches!(self.scan, Scan::Stopped) {
                self.clock.untrack();
                return;
            }
        }
    }
}

/// Consumes a prefix of `bytes`; returns how much and the next state, if it changes.
///
/// Heads and trailer lines are taken a whole run of bytes at a time (up to
/// the next line feed), not byte by byte: every request byte passes here.
fn step(
    scan: &mut Scan,
    buf: &mut Vec<u8>,
    bytes: &[u8],
    to: &Reports<'_>,
) -> (usize, Option<Scan>) {
    match scan {
        Scan::Stopped => (bytes.len(), None),
        Scan::Head => step_head(buf, bytes, to),
        Scan::Body(left) | Scan::ChunkData(left) => {
            let take = usize::try_from(*left)
                .unwrap_or(usize::MAX)
                .min(bytes.len());
            *left -= take as u64;
            let done = *left == 0;
            let next = match scan {
                Scan::Body(_) if done => Some(Scan::Head),
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
                (b'\n', _) if *size == 0 => Some(Scan::Trailers),
                (b'\n', _) => Some(Scan::ChunkData(*size)),
                (_, true) | (b'\r' | b';' | b' ' | b'\t', _) => {
                    *in_ext = true;
                    None
                }
                // Leading zeros are allowed, as hyper allows them; a size
                // past u64 is not.
                _ => match (b as char)
                    .to_digit(16)
                    .and_then(|d| size.checked_mul(16)?.checked_add(u64::from(d)))
                {
                    Some(next) => {
                        *size = next;
                        *digits += 1;
                        None
                    }
                    None => Some(Scan::Stopped),
                },
            };
            (1, next)
        }
        Scan::ChunkEnd => match bytes[0] {
            b'\r' => (1, None),
            b'\n' => (1, Some(chunk_size())),
            _ => (1, Some(Scan::Stopped)),
        },
        Scan::Trailers => {
            let Some(at) = bytes.iter().position(|&b| b == b'\n') else {
                buf.extend_from_slice(bytes);
                let next = (buf.len() > MAX_HEAD).then_some(Scan::Stopped);
                return (bytes.len(), next);
            };
            buf.extend_from_slice(&bytes[..=at]);
            let next = if buf.len() > MAX_HEAD {
                Some(Scan::Stopped)
            } else if buf == b"\n" || buf == b"\r\n" {
                Some(Scan::Head)
            } else {
                buf.clear();
                None
            };
            (at + 1, next)
        }
    }
}

/// Where the watch reports what it sees.
struct Reports<'a> {
    verdicts: &'a Verdicts,
    clock: &'a HeadClock,
}

/// Collects a request head up to its empty line, then reads it.
fn step_head(buf: &mut Vec<u8>, bytes: &[u8], to: &Reports<'_>) -> (usize, Option<Scan>) {
    if buf.is_empty() {
        // Empty lines before a request line are skipped.
        let blank = bytes
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .count();
        if blank > 0 {
            return (blank, None);
        }
        if let Some((end, info)) = quick_head(bytes) {
            to.verdicts.push(info.ambiguous);
            return (end, Some(info.next));
        }
        to.clock.head_started();
    }
    let Some(end) = head_end(buf, bytes) else {
        buf.extend_from_slice(bytes);
        let next = (buf.len() > MAX_HEAD).then_some(Scan::Stopped);
        return (bytes.len(), next);
    };
    buf.extend_from_slice(&bytes[..end]);
    if buf.len() > MAX_HEAD {
        return (end, Some(Scan::Stopped));
    }
    let info = read_head(buf);
    to.clock.head_done();
    if let Some(info) = &info {
        to.verdicts.push(info.ambiguous);
    }
    (end, Some(info.map_or(Scan::Stopped, |i| i.next)))
}

/// How many bytes of `bytes` complete the head whose start is in `buf`: up
/// to and including the line feed of `\n\n` or `\n\r\n`; `None` if the head
/// does not end in `bytes`.
fn head_end(buf: &[u8], bytes: &[u8]) -> Option<usize> {
    // The byte `back` places before `bytes[i]`, looking into `buf` as needed.
    let before = |i: usize, back: usize| -> Option<u8> {
        match i.checked_sub(back) {
            Some(j) => bytes.get(j).copied(),
            None => buf
                .len()
                .checked_sub(back - i)
                .and_then(|j| buf.get(j).copied()),
        }
    };
    let mut from = 0;
    while let Some(at) = bytes[from..].iter().position(|&b| b == b'\n') {
        let i = from + at;
        match (before(i, 1), before(i, 2)) {
            (Some(b'\n'), _) | (Some(b'\r'), Some(b'\n')) => return Some(i + 1),
            _ => from = i + 1,
        }
    }
    None
}

/// The common case: a whole head at the start of `bytes`, read in place by
/// httparse with room for [`QUICK_HEADERS`] headers. Anything else (a head
/// split across reads, more headers) returns `None` and is collected first.
fn quick_head(bytes: &[u8]) -> Option<(usize, HeadInfo)> {
    let mut headers = [httparse::EMPTY_HEADER; QUICK_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(end) = request.parse(bytes).ok()? else {
        return None;
    };
    Some((end, judge(&request)?))
}

fn chunk_size() -> Scan {
    Scan::ChunkSize {
        size: 0,
        digits: 0,
        in_ext: false,
    }
}

/// Reads a complete head collected in the watch's buffer; `None` when the
/// watch should stop. The same parser as hyper's and as the quick path, so
/// both paths and hyper agree on where a head ends and what it says.
fn read_head(head: &[u8]) -> Option<HeadInfo> {
    let lines = head.iter().filter(|&&b| b == b'\n').count();
    let mut headers = vec![httparse::EMPTY_HEADER; lines];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(head).ok()? {
        httparse::Status::Complete(_) => judge(&request),
        httparse::Status::Partial => None,
    }
}

/// The framing a parsed head declares, by hyper's rules (RFC 9112 §6.3):
/// Transfer-Encoding wins and must end in `chunked`; otherwise one
/// Content-Length value, repeated lines equal; otherwise no body. HTTP/1.0
/// and `Upgrade` offers are framed the same way: unless the answer is
/// `101`, hyper reads the next request right after this one.
///
/// `None` for what hyper refuses (and then closes the connection on).
fn judge(request: &httparse::Request<'_, '_>) -> Option<HeadInfo> {
    if !matches!(request.version, Some(0 | 1)) {
        return None;
    }
    let (mut length, mut has_length, mut te) = (None::<u64>, false, None::<&[u8]>);
    for header in request.headers.iter() {
        let name = header.name.as_bytes();
        if name.eq_ignore_ascii_case(b"transfer-encoding") {
            te = Some(header.value);
        } else if name.eq_ignore_ascii_case(b"content-length") {
            has_length = true;
            if te.is_some() {
                continue; // hyper ignores a length after Transfer-Encoding
            }
            let value = digits(header.value.trim_ascii())?;
            if length.is_some_and(|l| l != value) {
                return None;
            }
            length = Some(value);
        }
    }
    let next = match (te, length) {
        (Some(te), _) => {
            let last = te.rsplit(|&b| b == b',').next().unwrap_or(te);
            if !last.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                return None;
            }
            chunk_size()
        }
        (None, None | Some(0)) => Scan::Head,
        (None, Some(len)) => Scan::Body(len),
    };
    Some(HeadInfo {
        ambiguous: te.is_some() && has_length,
        next,
    })
}

/// A Content-Length value: ASCII digits only (no sign, no list).
fn digits(value: &[u8]) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    value.iter().try_fold(0u64, |n, &b| {
        let digit = char::from(b).to_digit(10)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
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
super::delegate::delegate_async_write!(FramingWatch);

#[cfg(test)]
#[path = "framing_tests.rs"]
mod tests;
