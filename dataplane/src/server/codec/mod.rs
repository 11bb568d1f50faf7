//! Tollgate's own HTTP/1.1 server codec: the common case of a downstream
//! HTTP/1.1 connection, served without hyper.
//!
//! Why: callgrind put hyper's HTTP/1 server, plus the framing watch that
//! re-parses every head to catch a request carrying both `Content-Length`
//! and `Transfer-Encoding` (hyper hides that), at about 11k of the ~31k
//! instructions a proxied keep-alive request cost; nginx's whole request
//! costs ~15k. The upstream side already left hyper for the same reason
//! (`upstream/h1`). Like it, this loop reads into one buffer, parses the
//! head in place with `httparse` ([`request`]), hands the pipeline a
//! request whose URI and header values are slices of that buffer, and
//! writes the response head and body straight into one write buffer
//! ([`response`]), framed as hyper frames it. No task, no channel, no
//! dispatcher.
//!
//! It serves plain exchanges only. The first request it cannot vouch for
//! — HTTP/1.0, `CONNECT`, an `Upgrade` offer (WebSocket, h2c), `Expect`,
//! `Transfer-Encoding` (with or without a `Content-Length`), a body not
//! yet whole in the buffer, a head hyper would refuse or one over 64 KiB —
//! hands the connection to the hyper path in `h1.rs` with every byte read
//! so far replayed ([`Prefixed`]); the connection stays there. So every
//! refusal, limit and status code on those paths is still hyper's and the
//! framing watch's, and the fast path never needs a rule of its own to be
//! as strict.
//!
//! Between requests the loop holds no buffer: once nothing is left to
//! parse it drops both and waits for the next bytes by reading onto the
//! stack ([`STACK_READ`]), counted as parked, as the hyper path parks.
//! Timeouts and draining follow `lifecycle.rs`: the request-header timeout
//! runs from a head's first byte, the idle timeout and drain come from
//! [`stop_signal`], and a drain lets the request in flight finish (with
//! `connection: close`) within the drain timeout.

mod date;
mod request;
mod response;
mod write;

use super::lifecycle::{Stop, millis, stop_signal};
use super::prefixed::Prefixed;
use super::service::{ConnCtx, dispatch};
use super::transport::Transport;
use crate::boxed::pin_in_place;
use bytes::BytesMut;
use request::{Limits, Parsed, Plain};
use response::Answering;
use std::future::poll_fn;
use std::io;
use std::mem::MaybeUninit;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Poll, ready};
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::time::Instant;
use write::respond;

/// Bytes read onto the stack at a time. Reads land on the stack and are
/// then copied into a buffer of their own size: a connection waiting for
/// its next request holds no buffer, needs no peek to wait, and a small
/// head costs a small allocation rather than a large read buffer.
const STACK_READ: usize = 4 * 1024;

/// Serves plain HTTP/1.1 exchanges on `io` until the connection ends, or
/// returns it, with everything read and not served replayed, for hyper.
pub(super) async fn serve<T: Transport>(
    mut io: Prefixed<T>,
    ctx: &Arc<ConnCtx>,
) -> Option<Prefixed<T>> {
    let limits = Limits::from_settings(&ctx.settings);
    let header_timeout = millis(ctx.settings.request_header_timeout_ms);
    let mut stop = pin!(stop_signal(ctx, None));
    let mut read = BytesMut::new();
    let mut out = BytesMut::new();
    let mut served = 0u64;
    loop {
        if read.is_empty() && !io.has_prefix() {
            // At rest: give the buffers back and wait for the next bytes,
            // reading onto the stack so no buffer is held meanwhile.
            (read, out) = (BytesMut::new(), BytesMut::new());
            io.release();
            let _parked = (served > 0).then(|| ctx.open.park());
            tokio::select! {
                biased;
                n = poll_fn(|cx| poll_read_into(&mut io, &mut read, cx)) => match n {
                    Ok(0) => return None,
                    Ok(_) => {}
                    Err(error) => {
                        ended(ctx, &error);
                        return None;
                    }
                },
                reason = stop.as_mut() => {
                    tracing::debug!(peer = %ctx.info.peer, ?reason, "closing an idle connection");
                    let _ = io.shutdown().await;
                    return None;
                }
            }
        }
        let plain = match read_head(&mut io, &mut read, limits, header_timeout, &mut stop).await {
            Head::Plain(plain) => plain,
            Head::Rare => return Some(handoff(io, read)),
            Head::End => return None,
        };
        served += 1;
        match exchange(&mut io, &mut read, &mut out, plain, ctx, &mut stop).await {
            Next::Serve => {}
            Next::Close => {
                let _ = io.shutdown().await;
                return None;
            }
            Next::End => return None,
        }
    }
}

/// How the connection goes on after an exchange.
enum Next {
    /// Keep-alive: on to the next request.
    Serve,
    /// The exchange was the last: shut the connection down.
    Close,
    /// The connection is gone, failed or timed out draining: drop it.
    End,
}

/// Serves one plain request: the pipeline's answer, written back. A drain
/// that starts meanwhile lets the exchange finish within the drain timeout
/// (with `connection: close` if the head is not written yet) and ends the
/// connection after it.
async fn exchange<T: Transport>(
    io: &mut Prefixed<T>,
    read: &mut BytesMut,
    out: &mut BytesMut,
    plain: Plain,
    ctx: &Arc<ConnCtx>,
    stop: &mut Pin<&mut impl Future<Output = Stop>>,
) -> Next {
    let Plain {
        request,
        keep_alive,
        trailers,
    } = plain;
    let method = request.method().clone();
    // Boxed, as the hyper path boxes it: inline, the whole pipeline's
    // future would be room in every connection's task, idle or not.
    // (Built in its box, not copied into it: `crate::boxed`.)
    let mut answer = pin_in_place(|| dispatch(Arc::clone(ctx), request));
    // As hyper does, a client that closes its end with a request in
    // flight ends the connection and the request; bytes it sends meanwhile
    // (a pipelined request) wait in the buffer.
    let mut watching = read.is_empty();
    let answered = loop {
        tokio::select! {
            biased;
            response = answer.as_mut() => break Some(response),
            n = poll_fn(|cx| poll_read_into(io, read, cx)), if watching => match n {
                Ok(0) => {
                    tracing::debug!(peer = %ctx.info.peer, "client closed with a request in flight");
                    return Next::End;
                }
                Ok(_) => watching = false,
                Err(error) => return ended(ctx, &error),
            },
            _ = stop.as_mut() => break None,
        }
    };
    let mut drain_by = None;
    let response = match answered {
        Some(response) => response,
        None => {
            let deadline = Instant::now() + ctx.drain_timeout();
            drain_by = Some(deadline);
            match tokio::time::timeout_at(deadline, answer).await {
                Ok(response) => response,
                Err(_) => return drained(ctx),
            }
        }
    };
    let req = Answering {
        method: &method,
        keep_alive: keep_alive && drain_by.is_none(),
    };
    // Boxed: inline, its room would stay in the task of every idle
    // connection (see the module docs of `h1.rs` on idle memory).
    let mut write = pin_in_place(|| respond(io, out, response, req, trailers));
    let written = match drain_by {
        Some(deadline) => tokio::time::timeout_at(deadline, write).await.ok(),
        None => tokio::select! {
            biased;
            written = write.as_mut() => Some(written),
            _ = stop.as_mut() => {
                let deadline = Instant::now() + ctx.drain_timeout();
                drain_by = Some(deadline);
                tokio::time::timeout_at(deadline, write).await.ok()
            }
        },
    };
    match written {
        Some(Ok(true)) if drain_by.is_none() => Next::Serve,
        Some(Ok(_)) => Next::Close,
        Some(Err(error)) => ended(ctx, &error),
        None => drained(ctx),
    }
}

/// What reading a head came to.
// Moved once per request; boxing the request would cost an allocation.
#[allow(clippy::large_enum_variant)]
enum Head {
    Plain(Plain),
    /// For hyper, with the bytes read so far.
    Rare,
    /// The connection ended (closed, timed out, told to stop).
    End,
}

/// Reads until the buffer holds a plain request, something for hyper, or
/// the connection must end. The header timeout runs from the first wait
/// for more of the head: its first byte is here or has just become
/// readable.
async fn read_head<T: Transport>(
    io: &mut Prefixed<T>,
    read: &mut BytesMut,
    limits: Limits,
    timeout: Option<std::time::Duration>,
    stop: &mut Pin<&mut impl Future<Output = Stop>>,
) -> Head {
    let mut sleep = pin!(OptionalSleep::new(timeout));
    loop {
        if !read.is_empty() {
            match request::parse(read, limits) {
                Parsed::Plain(plain) => return Head::Plain(plain),
                Parsed::Rare => return Head::Rare,
                Parsed::Partial => {}
            }
        }
        tokio::select! {
            biased;
            n = poll_fn(|cx| poll_read_into(io, read, cx)) => match n {
                // A cut head is hyper's to judge, as it was before.
                Ok(0) if !read.is_empty() => return Head::Rare,
                Ok(0) => return Head::End,
                Ok(_) => {}
                Err(error) => {
                    tracing::debug!(%error, "read failed");
                    return Head::End;
                }
            },
            reason = stop.as_mut() => {
                tracing::debug!(?reason, "stopping before a whole request head");
                return Head::End;
            }
            () = sleep.as_mut() => {
                tracing::debug!("no complete request head in time");
                return Head::End;
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// A sleep that is only made (and registered with the timer) once a
    /// head needs a second read: most heads arrive whole in one, and then
    /// neither the timer nor the clock is touched. The deadline counts
    /// from that first wait, which follows the head's first bytes within
    /// the same poll.
    struct OptionalSleep {
        timeout: Option<std::time::Duration>,
        #[pin]
        sleep: Option<tokio::time::Sleep>,
    }
}

impl OptionalSleep {
    fn new(timeout: Option<std::time::Duration>) -> OptionalSleep {
        OptionalSleep {
            timeout,
            sleep: None,
        }
    }
}

impl Future for OptionalSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<()> {
        let mut this = self.project();
        let Some(timeout) = *this.timeout else {
            return Poll::Pending;
        };
        if this.sleep.is_none() {
            this.sleep
                .set(Some(tokio::time::sleep_until(Instant::now() + timeout)));
        }
        match this.sleep.as_pin_mut() {
            Some(sleep) => sleep.poll(cx),
            None => Poll::Pending,
        }
    }
}

/// Reads what the stream has (at most [`STACK_READ`] bytes) onto the
/// stack and appends it to `read`; `0` at the end of the stream.
fn poll_read_into<T: Transport>(
    io: &mut Prefixed<T>,
    read: &mut BytesMut,
    cx: &mut std::task::Context<'_>,
) -> Poll<io::Result<usize>> {
    let mut stack = [const { MaybeUninit::<u8>::uninit() }; STACK_READ];
    let mut buf = ReadBuf::uninit(&mut stack);
    ready!(Pin::new(io).poll_read(cx, &mut buf))?;
    let filled = buf.filled();
    if read.capacity() == 0 {
        // The first bytes after rest: one allocation of their size, not
        // an empty buffer grown.
        *read = BytesMut::from(filled);
    } else {
        read.extend_from_slice(filled);
    }
    Poll::Ready(Ok(filled.len()))
}

/// The connection for hyper, replaying what was read and not served.
fn handoff<T>(io: Prefixed<T>, read: BytesMut) -> Prefixed<T> {
    let (prefix, inner) = io.into_parts();
    let replay = if prefix.is_empty() {
        read.freeze()
    } else {
        let mut all = read;
        all.extend_from_slice(&prefix);
        all.freeze()
    };
    Prefixed::new(replay, inner)
}

fn ended(ctx: &ConnCtx, error: &io::Error) -> Next {
    tracing::debug!(peer = %ctx.info.peer, %error, "connection ended with an error");
    Next::End
}

fn drained(ctx: &ConnCtx) -> Next {
    tracing::debug!(peer = %ctx.info.peer, "drain timeout, closing");
    Next::End
}
