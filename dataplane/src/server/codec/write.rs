//! Writing a response on the connection: the head as `response` encodes
//! it, then the body framed as the head says, small pieces gathered into
//! one write buffer, large ones written from their own.

use super::response::{self, Answering, BodyLength, Framing};
use crate::body::ProxyBody;
use crate::server::prefixed::Prefixed;
use crate::server::transport::Transport;
use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderName, Response};
use http_body::{Body, Frame};
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::Poll;
use tokio::io::AsyncWriteExt;

/// Body data up to this size is copied behind the head or chunk line, so
/// a small response goes out in one write.
const COPY_MAX: usize = 8 * 1024;

/// Buffered response bytes are written once they pass this.
const WRITE_HIGH: usize = 64 * 1024;

/// Writes `response`; `Ok(true)` when the connection may serve another
/// request.
///
/// # Errors
///
/// A write that failed, a head hyper would refuse, or a body that failed
/// or ended short of its length: the connection closes (hyper closes it
/// too, without ending the body's framing).
pub(super) async fn respond<T: Transport>(
    io: &mut Prefixed<T>,
    out: &mut BytesMut,
    response: Response<ProxyBody>,
    req: Answering<'_>,
    trailers_ok: bool,
) -> io::Result<bool> {
    let (mut parts, mut body) = response.into_parts();
    let length = if body.is_end_stream() {
        BodyLength::Empty
    } else {
        body.size_hint()
            .exact()
            .map_or(BodyLength::Unknown, BodyLength::Known)
    };
    // Room for the head and, when it is small and known, the body, so a
    // small response is one small allocation.
    let small_body = match length {
        BodyLength::Known(n) if n <= COPY_MAX as u64 => n as usize,
        _ => 0,
    };
    let room = 256 + parts.headers.len() * 32 + small_body;
    if out.capacity() == 0 {
        // A connection at rest holds no buffer: allocate the room at once
        // rather than grow an empty one (a growth path per response).
        *out = BytesMut::with_capacity(room);
    } else {
        out.reserve(room);
    }
    let encoded = response::write_head(&mut parts, length, req, out)
        .map_err(|_| io::Error::other("response head hyper would refuse"))?;
    drop(parts);
    let trailers = encoded.trailers.filter(|_| trailers_ok);
    let mut left = match encoded.framing {
        Framing::Length(0) => {
            drop(body);
            flush(io, out).await?;
            return Ok(!encoded.last);
        }
        Framing::Length(n) => Some(n),
        Framing::Chunked | Framing::Close => None,
    };
    let chunked = encoded.framing == Framing::Chunked;
    loop {
        let polled = poll_fn(|cx| Poll::Ready(Pin::new(&mut body).poll_frame(cx))).await;
        let frame = match polled {
            Poll::Ready(frame) => frame,
            Poll::Pending => {
                // Nothing more now: send what is ready, then wait.
                flush(io, out).await?;
                poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
            }
        };
        let frame = match frame {
            None => break,
            Some(Ok(frame)) => frame,
            Some(Err(error)) => return Err(io::Error::other(error)),
        };
        let data = match frame.into_data() {
            Ok(data) => data,
            Err(frame) => {
                if chunked
                    && let Some(allowed) = &trailers
                    && put_trailers(out, frame, allowed)
                {
                    flush(io, out).await?;
                    return Ok(!encoded.last);
                }
                continue;
            }
        };
        if data.is_empty() {
            continue;
        }
        match &mut left {
            Some(left) => {
                let take = usize::try_from(*left).map_or(data.len(), |l| l.min(data.len()));
                *left -= take as u64;
                push(io, out, data.slice(..take), b"").await?;
                if *left == 0 {
                    // The length is met: hyper stops reading the body here.
                    drop(body);
                    flush(io, out).await?;
                    return Ok(!encoded.last);
                }
            }
            None if chunked => {
                crate::h1_wire::put_hex(out, data.len());
                out.put_slice(b"\r\n");
                push(io, out, data, b"\r\n").await?;
            }
            None => push(io, out, data, b"").await?,
        }
        if body.is_end_stream() {
            break;
        }
    }
    if left.is_some_and(|left| left > 0) {
        flush(io, out).await?;
        return Err(io::Error::other("response body shorter than its length"));
    }
    if chunked {
        out.put_slice(b"0\r\n\r\n");
    }
    flush(io, out).await?;
    Ok(!encoded.last)
}

/// Queues `data` and `tail`, copying small data behind what waits.
async fn push<T: Transport>(
    io: &mut Prefixed<T>,
    out: &mut BytesMut,
    data: Bytes,
    tail: &[u8],
) -> io::Result<()> {
    if data.len() <= COPY_MAX {
        out.put_slice(&data);
        out.put_slice(tail);
        if out.len() >= WRITE_HIGH {
            flush(io, out).await?;
        }
        return Ok(());
    }
    flush(io, out).await?;
    io.write_all(&data).await?;
    out.put_slice(tail);
    Ok(())
}

/// Writes everything waiting in `out`.
async fn flush<T: Transport>(io: &mut Prefixed<T>, out: &mut BytesMut) -> io::Result<()> {
    if !out.is_empty() {
        io.write_all(out).await?;
        out.clear();
    }
    io.flush().await
}

/// Ends a chunked body with the trailer fields `allowed` names, as hyper
/// writes them; `false` (nothing written) when none is left to send.
fn put_trailers(out: &mut BytesMut, frame: Frame<Bytes>, allowed: &[HeaderName]) -> bool {
    let Ok(fields) = frame.into_trailers() else {
        return false;
    };
    let start = out.len();
    out.put_slice(b"0\r\n");
    let mut wrote = false;
    for (name, value) in &fields {
        if allowed.contains(name) && response::valid_trailer(name) {
            out.put_slice(name.as_str().as_bytes());
            out.put_slice(b": ");
            out.put_slice(value.as_bytes());
            out.put_slice(b"\r\n");
            wrote = true;
        }
    }
    if !wrote {
        out.truncate(start);
        return false;
    }
    out.put_slice(b"\r\n");
    true
}
