//! The request head Tollgate writes upstream and the response head it
//! reads back.
//!
//! Both follow hyper's client (`proto/h1/role.rs`), so the bytes on the
//! wire and the responses accepted stay what they were: the request's
//! framing comes from its body's size hint unless it carries a valid
//! `Content-Length`, and the response's from RFC 9112 §6.3.

use super::H1Error;
use crate::h1_wire::{
    Length, Span, ends_chunked, has_control, has_token, put_decimal, record_spans,
};
use crate::upstream::Added;
use bytes::{BufMut, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, HeaderName, HeaderValue, TRANSFER_ENCODING};
use http::{HeaderMap, Method, Response, StatusCode, Version, request};
use std::mem::MaybeUninit;
use tollgate_telemetry::{TRACESTATE, TraceLine};

/// The longest response head accepted, status line and fields together.
pub(super) const MAX_HEAD: usize = 64 * 1024;

/// The most header fields in a response head (hyper's default).
pub(super) const MAX_HEADERS: usize = 100;

/// How the request body follows the head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Framing {
    /// Nothing: the body is empty, or of unknown length on a GET, HEAD or
    /// CONNECT without a `Content-Length` (hyper sends no body then).
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
}

/// Writes the head of `parts` to `dst`, with the `added` fields after the
/// request's own, and tells how the body follows. `empty` is the body's
/// `is_end_stream()`, `exact` its exact size hint.
///
/// The target is origin-form (the pool's requests carry no scheme), the
/// version HTTP/1.1, the fields in the request's order. Framing as hyper
/// did it: an empty body sends no `Transfer-Encoding` (a `Content-Length`
/// the request carries stays); a `Transfer-Encoding` the request carries
/// means chunked (with `chunked` added if it is not last); a valid
/// `Content-Length` is trusted; otherwise the exact size hint becomes
/// `Content-Length` and an unknown size becomes chunked, except on GET,
/// HEAD and CONNECT, which send no body.
///
/// # Errors
///
/// [`H1Error::InvalidRequestHeader`] when a value holds a control
/// character other than tab (the `http` types never let one in; this is a
/// cheap check that a header can never split the request). The added
/// trace context replaces the request's `traceparent` and `tracestate`.
pub(super) fn write_request(
    parts: &request::Parts,
    added: Added<'_>,
    (empty, exact): (bool, Option<u64>),
    dst: &mut BytesMut,
) -> Result<Framing, H1Error> {
    let headers = &parts.headers;
    let has_te = headers.contains_key(TRANSFER_ENCODING);
    let has_cl = headers.contains_key(CONTENT_LENGTH);
    let user_length = if has_cl {
        content_length(headers)
    } else {
        None
    };
    // What to send, whether to drop the request's TE and CL fields, and
    // which framing field to add.
    let (framing, drop_te, drop_cl, add_chunked, add_length) = if empty {
        (Framing::None, true, false, false, None)
    } else if has_te {
        let chunked = is_chunked(headers);
        (Framing::Chunked, false, true, !chunked, None)
    } else if let Some(length) = user_length {
        (Framing::Length(length), false, false, false, None)
    } else if let Some(length) = exact {
        (Framing::Length(length), false, true, false, Some(length))
    } else if matches!(parts.method, Method::GET | Method::HEAD | Method::CONNECT) {
        (Framing::None, false, false, false, None)
    } else {
        (Framing::Chunked, false, true, true, None)
    };

    let target = parts
        .uri
        .path_and_query()
        .map_or("/", |target| target.as_str());
    // `traceparent: ` and its 55 bytes, a trace state, line ends.
    let added_len = added.map_or(0, |line| 72 + line.state().map_or(0, |s| s.len() + 14));
    dst.reserve(32 + target.len() + headers.len() * 32 + added_len);
    dst.put_slice(parts.method.as_str().as_bytes());
    dst.put_u8(b' ');
    dst.put_slice(target.as_bytes());
    dst.put_slice(b" HTTP/1.1\r\n");
    // The added fields replace the request's own of the same names: a
    // length comparison, mostly, per field (cheaper than removing them
    // from the map by hash).
    for (name, value) in headers {
        if (drop_te && name == TRANSFER_ENCODING)
            || (drop_cl && name == CONTENT_LENGTH)
            || (added.is_some() && TraceLine::replaces(name))
        {
            continue;
        }
        let value = value.as_bytes();
        if has_control(value) {
            return Err(H1Error::InvalidRequestHeader(name.clone()));
        }
        put_field(dst, name.as_str().as_bytes(), value);
    }
    // Hex digits and dashes, and a `HeaderValue`'s bytes: no control
    // character to look for.
    if let Some(line) = added {
        dst.put_slice(&line.ids().field_line());
        if let Some(state) = line.state() {
            put_field(dst, TRACESTATE.as_str().as_bytes(), state);
        }
    }
    if add_chunked {
        dst.put_slice(b"transfer-encoding: chunked\r\n");
    }
    if let Some(length) = add_length {
        dst.put_slice(b"content-length: ");
        put_decimal(dst, length);
        dst.put_slice(b"\r\n");
    }
    dst.put_slice(b"\r\n");
    Ok(framing)
}

/// Appends `name: value` and the line end.
#[inline]
fn put_field(dst: &mut BytesMut, name: &[u8], value: &[u8]) {
    dst.put_slice(name);
    dst.put_slice(b": ");
    dst.put_slice(value);
    dst.put_slice(b"\r\n");
}

/// The one length all `Content-Length` values (comma-separated lists
/// included) agree on; `None` when any is not a number or two differ.
pub(super) fn content_length(headers: &HeaderMap) -> Option<u64> {
    let mut length = Length::Absent;
    for value in headers.get_all(CONTENT_LENGTH) {
        length.add(value.as_bytes());
    }
    match length {
        Length::One(n) => Some(n),
        Length::Absent | Length::Invalid => None,
    }
}

/// Whether the last transfer coding of the last `Transfer-Encoding` field
/// is `chunked`, as hyper decides it.
fn is_chunked(headers: &HeaderMap) -> bool {
    headers
        .get_all(TRANSFER_ENCODING)
        .iter()
        .next_back()
        .is_some_and(|value| ends_chunked(value.as_bytes()))
}

/// Where a response body ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum BodyKind {
    /// There is none (HEAD, 1xx, 204, 304, or a `101`/CONNECT success).
    Empty,
    /// After this many bytes.
    Length(u64),
    /// At the last chunk and the trailer section.
    Chunked,
    /// When the upstream closes the connection.
    Close,
}

/// A final response head and what it says about the rest.
#[derive(Debug)]
pub(super) struct ResponseHead {
    /// Status, version, fields and a non-standard reason phrase.
    pub(super) response: Response<()>,
    /// How the body is framed.
    pub(super) body: BodyKind,
    /// Whether the upstream keeps the connection open after the body.
    pub(super) keep_alive: bool,
}

/// Parses the response to a `method` request from the front of `buf`,
/// skipping interim (1xx but 101) responses. `None` while the head is
/// incomplete; the head's bytes are split off `buf` and shared by the
/// header values.
///
/// # Errors
///
/// [`H1Error::HeadTooLarge`] past [`MAX_HEAD`] bytes; the other
/// [`H1Error`] head variants for a head hyper would refuse too.
pub(super) fn parse_response(
    buf: &mut BytesMut,
    method: &Method,
) -> Result<Option<ResponseHead>, H1Error> {
    loop {
        if buf.is_empty() {
            return Ok(None);
        }
        let Some((head, fields)) = parse_one(buf)? else {
            return Ok(None);
        };
        let (head, body, upgrade) = match framing(head, &fields, method)? {
            Some(final_head) => final_head,
            None => continue,
        };
        // HTTP/1.1 unless a `Connection` field says `close`, HTTP/1.0 only
        // if one says `keep-alive`.
        let keep_alive =
            !upgrade && !fields.close && (head.version() == Version::HTTP_11 || fields.keep_alive);
        return Ok(Some(ResponseHead {
            response: head,
            body,
            keep_alive,
        }));
    }
}

/// What a head's framing fields say, gathered while its fields are read
/// so no field is looked up again.
#[derive(Debug, Default)]
struct Fields {
    length: Length,
    /// Whether the last `Transfer-Encoding` ends in `chunked`; `None`
    /// without one.
    chunked: Option<bool>,
    /// A `Connection` field said `close` (no later one can undo it).
    close: bool,
    /// A `Connection` field said `keep-alive`.
    keep_alive: bool,
}

impl Fields {
    fn add(&mut self, name: &HeaderName, value: &[u8]) {
        if name == CONTENT_LENGTH {
            self.length.add(value);
        } else if name == TRANSFER_ENCODING {
            self.chunked = Some(ends_chunked(value));
        } else if name == CONNECTION {
            self.close |= has_token(value, b"close");
            self.keep_alive |= has_token(value, b"keep-alive");
        }
    }
}

/// Parses one response head off the front of `buf`.
fn parse_one(buf: &mut BytesMut) -> Result<Option<(Response<()>, Fields)>, H1Error> {
    let mut fields = [MaybeUninit::<httparse::Header<'_>>::uninit(); MAX_HEADERS];
    let mut spans: [Span; MAX_HEADERS] = [[0; 4]; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut []);
    let config = httparse::ParserConfig::default();
    let (len, code, version, reason, count) =
        match config.parse_response_with_uninit_headers(&mut parsed, buf, &mut fields) {
            Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD => {
                let code = parsed.code.unwrap_or_default();
                let status = StatusCode::from_u16(code).map_err(|_| H1Error::Status(code))?;
                let start = buf.as_ptr() as usize;
                let offset = |s: &[u8]| (s.as_ptr() as usize - start) as u32;
                // A reason phrase that is not the status's standard one is
                // kept, as hyper did, so the server side writes it back.
                let reason = parsed
                    .reason
                    .filter(|&reason| Some(reason) != status.canonical_reason())
                    .map(|reason| {
                        let at = offset(reason.as_bytes());
                        at..at + reason.len() as u32
                    });
                record_spans(buf, parsed.headers, &mut spans);
                let version = match parsed.version {
                    Some(1) => Version::HTTP_11,
                    _ => Version::HTTP_10,
                };
                (len, status, version, reason, parsed.headers.len())
            }
            Ok(httparse::Status::Partial) if buf.len() <= MAX_HEAD => return Ok(None),
            Ok(_) => return Err(H1Error::HeadTooLarge),
            Err(error) => return Err(H1Error::Parse(error)),
        };
    let head = buf.split_to(len).freeze();
    let mut headers = HeaderMap::with_capacity(count);
    let mut fields = Fields::default();
    for &[name_start, name_end, value_start, value_end] in &spans[..count] {
        let name = head
            .get(name_start as usize..name_end as usize)
            .and_then(|name| HeaderName::from_bytes(name).ok())
            .ok_or(H1Error::InvalidResponseHeader)?;
        let value =
            HeaderValue::from_maybe_shared(head.slice(value_start as usize..value_end as usize))
                .map_err(|_| H1Error::InvalidResponseHeader)?;
        fields.add(&name, value.as_bytes());
        headers.append(name, value);
    }
    let mut response = Response::new(());
    *response.status_mut() = code;
    *response.version_mut() = version;
    *response.headers_mut() = headers;
    if let Some(reason) = reason
        && let Ok(reason) = hyper::ext::ReasonPhrase::try_from(
            head.slice(reason.start as usize..reason.end as usize),
        )
    {
        response.extensions_mut().insert(reason);
    }
    Ok(Some((response, fields)))
}

/// The body framing of a final response, and whether the connection stops
/// being HTTP after it; `None` for an interim response to skip.
fn framing(
    head: Response<()>,
    fields: &Fields,
    method: &Method,
) -> Result<Option<(Response<()>, BodyKind, bool)>, H1Error> {
    let body = match head.status().as_u16() {
        101 => return Ok(Some((head, BodyKind::Empty, true))),
        100..=199 => return Ok(None),
        204 | 304 => BodyKind::Empty,
        _ if method == Method::HEAD => BodyKind::Empty,
        200..=299 if method == Method::CONNECT => {
            return Ok(Some((head, BodyKind::Empty, true)));
        }
        _ => body_kind(&head, fields)?,
    };
    Ok(Some((head, body, false)))
}

/// RFC 9112 §6.3 for a response that may have a body.
fn body_kind(head: &Response<()>, fields: &Fields) -> Result<BodyKind, H1Error> {
    match (fields.chunked, fields.length) {
        (Some(_), _) if head.version() == Version::HTTP_10 => {
            Err(H1Error::TransferEncodingInHttp10)
        }
        (Some(true), _) => Ok(BodyKind::Chunked),
        (Some(false), _) | (None, Length::Absent) => Ok(BodyKind::Close),
        (None, Length::One(n)) => Ok(BodyKind::Length(n)),
        (None, Length::Invalid) => Err(H1Error::ContentLength),
    }
}

#[cfg(test)]
#[path = "head_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "head_props.rs"]
mod props;
