//! Writing a response head, and framing its body, as hyper's server does
//! (`proto/h1/role.rs` `Server::encode`, `proto/h1/conn.rs`
//! `enforce_version`), so clients see the same bytes they saw from hyper:
//! fields in the response's order and lower case, `Content-Length` or
//! `Transfer-Encoding` from the body's size hint unless the response
//! carries one, no body for HEAD, 204 and 304 (nor an implicit
//! `content-length: 0` for them), `connection: close` added when the
//! connection will close, and a `date` field unless there is one.

use super::date::put_date_line;
use crate::h1_wire::{Length, ends_chunked, has_token, put_decimal};
use bytes::{BufMut, BytesMut};
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, StatusCode, Version, response};

/// What the body's `is_end_stream` and size hint say, as hyper reads them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum BodyLength {
    /// The body is already at its end.
    Empty,
    /// Exactly this many bytes.
    Known(u64),
    /// Unknown until it ends.
    Unknown,
}

/// How the body follows the head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Framing {
    /// Exactly this many bytes (0: none; the body is not read).
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Raw bytes until the connection closes (an HTTP/1.0 response of
    /// unknown length).
    Close,
}

/// A head written, and what follows it.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Encoded {
    /// How the body is framed.
    pub(super) framing: Framing,
    /// The connection closes after this response.
    pub(super) last: bool,
    /// Trailer fields the response declared in `Trailer`, sent after a
    /// chunked body if the client accepts trailers.
    pub(super) trailers: Option<Vec<HeaderName>>,
}

/// The request a response answers, as far as its framing cares.
#[derive(Clone, Copy, Debug)]
pub(super) struct Answering<'a> {
    /// The request's method (HEAD gets no body).
    pub(super) method: &'a Method,
    /// Whether the connection stays open after this exchange, as far as
    /// the request and the connection's state go.
    pub(super) keep_alive: bool,
}

/// Why a head could not be written; the connection closes unanswered, as
/// hyper closes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct InvalidHead;

/// Writes the head of `parts` to `dst`.
///
/// # Errors
///
/// [`InvalidHead`] where hyper refuses the head too: conflicting or
/// invalid `Content-Length` values on a body of unknown length, or a
/// framing field after the length was written. `dst` is left as it was.
pub(super) fn write_head(
    parts: &mut response::Parts,
    body: BodyLength,
    req: Answering<'_>,
    dst: &mut BytesMut,
) -> Result<Encoded, InvalidHead> {
    let start = dst.len();
    let result = encode(parts, body, req, dst);
    if result.is_err() {
        dst.truncate(start);
    }
    result
}

fn encode(
    parts: &mut response::Parts,
    mut body: BodyLength,
    req: Answering<'_>,
    dst: &mut BytesMut,
) -> Result<Encoded, InvalidHead> {
    if !req.keep_alive {
        add_close(&mut parts.headers);
    }
    let mut last = !req.keep_alive;
    if parts.status.is_informational() {
        // hyper cannot send a 1xx as the final answer: 500, no fields.
        parts.status = StatusCode::INTERNAL_SERVER_ERROR;
        parts.headers.clear();
        body = BodyLength::Empty;
        last = true;
    }
    status_line(parts, dst);
    let method = req.method;
    let status = parts.status;
    let http10 = parts.version == Version::HTTP_10;
    let chunkable = !http10 && can_chunk(method, status);
    let mut framing = Framing::Length(0);
    let mut wrote_len = false;
    let mut wrote_date = false;
    let mut trailers: Option<Vec<HeaderName>> = None;
    let mut seen_length = Length::Absent;
    // Framing, `connection` and `trailer` values are joined on one line,
    // as hyper joins them; `open` is that line while it is being written.
    let mut open: Option<&HeaderName> = None;
    let mut must_chunk = false;
    for (name, value) in &parts.headers {
        if open.is_some_and(|line| line != name) {
            end_line(dst, &mut open, &mut must_chunk);
        }
        let joined = open.is_some();
        match *name {
            header::CONTENT_LENGTH => {
                if wrote_len && !joined {
                    return Err(InvalidHead);
                }
                match body {
                    BodyLength::Known(n) => {
                        if !joined {
                            framing = Framing::Length(n);
                            start_line(dst, name, value, &mut open);
                            wrote_len = true;
                        }
                        continue;
                    }
                    BodyLength::Unknown => {
                        let mut one = Length::Absent;
                        one.add(value.as_bytes());
                        let Length::One(n) = one else {
                            return Err(InvalidHead);
                        };
                        match seen_length {
                            Length::One(seen) if seen != n => return Err(InvalidHead),
                            Length::One(_) => {}
                            _ => {
                                seen_length = Length::One(n);
                                framing = Framing::Length(n);
                                start_line(dst, name, value, &mut open);
                                wrote_len = true;
                            }
                        }
                        continue;
                    }
                    BodyLength::Empty if method != Method::HEAD => continue,
                    // HEAD keeps its length, written as any field.
                    BodyLength::Empty => wrote_len = true,
                }
            }
            header::TRANSFER_ENCODING => {
                if wrote_len && !joined {
                    return Err(InvalidHead);
                }
                if !chunkable {
                    continue;
                }
                wrote_len = true;
                must_chunk = !ends_chunked(value.as_bytes());
                if joined {
                    join(dst, value);
                } else {
                    framing = Framing::Chunked;
                    start_line(dst, name, value, &mut open);
                }
                continue;
            }
            header::CONNECTION => {
                last |= has_token(value.as_bytes(), b"close");
                if joined {
                    join(dst, value);
                } else {
                    start_line(dst, name, value, &mut open);
                }
                continue;
            }
            header::TRAILER => {
                if !chunkable {
                    continue;
                }
                if joined {
                    join(dst, value);
                } else {
                    start_line(dst, name, value, &mut open);
                }
                if let Ok(text) = value.to_str() {
                    let names = text
                        .split(',')
                        .filter_map(|s| HeaderName::from_bytes(s.trim().as_bytes()).ok());
                    trailers.get_or_insert_with(Vec::new).extend(names);
                }
                continue;
            }
            header::DATE => wrote_date = true,
            _ => {}
        }
        dst.put_slice(name.as_str().as_bytes());
        dst.put_slice(b": ");
        dst.put_slice(value.as_bytes());
        dst.put_slice(b"\r\n");
    }
    end_line(dst, &mut open, &mut must_chunk);
    if !wrote_len {
        framing = match body {
            BodyLength::Unknown if !chunkable => Framing::Close,
            BodyLength::Unknown => {
                dst.put_slice(b"transfer-encoding: chunked\r\n");
                Framing::Chunked
            }
            BodyLength::Empty | BodyLength::Known(0) => {
                if can_have_length(method, status) && method != Method::HEAD {
                    dst.put_slice(b"content-length: 0\r\n");
                }
                Framing::Length(0)
            }
            BodyLength::Known(n) if can_have_length(method, status) => {
                dst.put_slice(b"content-length: ");
                put_decimal(dst, n);
                dst.put_slice(b"\r\n");
                Framing::Length(n)
            }
            BodyLength::Known(_) => Framing::Length(0),
        };
    }
    if !can_chunk(method, status) {
        framing = Framing::Length(0);
    }
    if !wrote_date {
        put_date_line(dst);
    }
    dst.put_slice(b"\r\n");
    let trailers = trailers.filter(|_| framing == Framing::Chunked);
    Ok(Encoded {
        framing,
        last: last || framing == Framing::Close,
        trailers,
    })
}

/// `Connection: close` on a connection that will close, as hyper's
/// `enforce_version` adds it.
fn add_close(headers: &mut http::HeaderMap) {
    match headers.entry(header::CONNECTION) {
        header::Entry::Occupied(mut entry) => {
            if !entry.iter().any(|v| has_token(v.as_bytes(), b"close")) {
                entry.append(HeaderValue::from_static("close"));
            }
        }
        header::Entry::Vacant(entry) => {
            entry.insert(HeaderValue::from_static("close"));
        }
    }
}

fn status_line(parts: &response::Parts, dst: &mut BytesMut) {
    let reason = parts.extensions.get::<hyper::ext::ReasonPhrase>();
    let http10 = parts.version == Version::HTTP_10;
    if !http10 && parts.status == StatusCode::OK && reason.is_none() {
        dst.put_slice(b"HTTP/1.1 200 OK\r\n");
        return;
    }
    dst.put_slice(if http10 { b"HTTP/1.0 " } else { b"HTTP/1.1 " });
    dst.put_slice(parts.status.as_str().as_bytes());
    dst.put_u8(b' ');
    match reason {
        Some(reason) => dst.put_slice(reason.as_bytes()),
        None => {
            let canonical = parts.status.canonical_reason().unwrap_or("<none>");
            dst.put_slice(canonical.as_bytes());
        }
    }
    dst.put_slice(b"\r\n");
}

/// Starts a line whose later values are joined to it.
fn start_line<'a>(
    dst: &mut BytesMut,
    name: &'a HeaderName,
    value: &HeaderValue,
    open: &mut Option<&'a HeaderName>,
) {
    dst.put_slice(name.as_str().as_bytes());
    dst.put_slice(b": ");
    dst.put_slice(value.as_bytes());
    *open = Some(name);
}

fn join(dst: &mut BytesMut, value: &HeaderValue) {
    dst.put_slice(b", ");
    dst.put_slice(value.as_bytes());
}

fn end_line(dst: &mut BytesMut, open: &mut Option<&HeaderName>, must_chunk: &mut bool) {
    if open.take().is_some() {
        if std::mem::take(must_chunk) {
            dst.put_slice(b", chunked\r\n");
        } else {
            dst.put_slice(b"\r\n");
        }
    }
}

/// hyper's `Server::can_chunked`, which is also its `can_have_body`.
fn can_chunk(method: &Method, status: StatusCode) -> bool {
    !(method == Method::HEAD
        || (method == Method::CONNECT && status.is_success())
        || status.is_informational()
        || matches!(status, StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED))
}

/// hyper's `Server::can_have_content_length`.
fn can_have_length(method: &Method, status: StatusCode) -> bool {
    !(status.is_informational()
        || (method == Method::CONNECT && status.is_success())
        || matches!(status, StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED))
}

/// Whether a trailer field may be sent (hyper's `is_valid_trailer_field`).
pub(super) fn valid_trailer(name: &HeaderName) -> bool {
    !matches!(
        *name,
        header::AUTHORIZATION
            | header::CACHE_CONTROL
            | header::CONTENT_ENCODING
            | header::CONTENT_LENGTH
            | header::CONTENT_RANGE
            | header::CONTENT_TYPE
            | header::HOST
            | header::MAX_FORWARDS
            | header::SET_COOKIE
            | header::TRAILER
            | header::TRANSFER_ENCODING
            | header::TE
    )
}

#[cfg(test)]
#[path = "response_tests.rs"]
mod tests;
