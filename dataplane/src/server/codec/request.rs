//! Reading a request head off the front of the connection's read buffer.
//!
//! The fast path takes only the plain case: an HTTP/1.1 request that is
//! not `CONNECT`, offers no upgrade, expects no `100 Continue`, carries no
//! `Transfer-Encoding` and at most one valid `Content-Length`, whose body
//! (if any) is already whole in the buffer. Everything else is
//! [`Parsed::Rare`] and goes to hyper with the bytes untouched, so every
//! refusal (malformed head, too many or too large header fields, both
//! framing headers, a bad length) stays hyper's and the framing watch's,
//! status code for status code.
//!
//! The head is parsed in place with `httparse` as hyper does
//! (`proto/h1/role.rs`): its bytes are split off the buffer once and the
//! URI and header values are slices of them, so a head costs one
//! `HeaderMap` and no copies.

use crate::body::DownstreamBody;
use crate::h1_wire::{Length, Span, has_token, record_spans};
use crate::proxy::FORWARDING_FIELDS;
use crate::server::conn_settings::ConnSettings;
use bytes::BytesMut;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, Uri, Version};
use std::mem::MaybeUninit;

/// Header slots on the stack: hyper's default limit. A connection allowed
/// more leaves longer heads to hyper.
const SLOTS: usize = 100;

/// The longest head the fast path buffers; longer ones (up to the
/// configured limit) are hyper's to take or refuse.
const MAX_FAST_HEAD: usize = 64 * 1024;

/// How much of a head the fast path reads and how many fields it takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Limits {
    /// Header fields parsed before a head is left to hyper.
    pub(super) headers: usize,
    /// Head bytes buffered before a head is left to hyper.
    pub(super) head: usize,
}

impl Limits {
    /// The limits for a connection under `settings`: never looser than
    /// hyper's, so whatever hyper would refuse reaches hyper.
    pub(super) fn from_settings(settings: &ConnSettings) -> Limits {
        let headers = match settings.max_request_headers as usize {
            0 => SLOTS,
            n => n.min(SLOTS),
        };
        let head = match settings.max_request_header_bytes as usize {
            0 => MAX_FAST_HEAD,
            n => n.min(MAX_FAST_HEAD),
        };
        Limits { headers, head }
    }
}

/// What the front of the buffer holds.
// Moved once per request; boxing the request would cost an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(super) enum Parsed {
    /// Part of a head: read more.
    Partial,
    /// A plain request, split off the buffer with its body.
    Plain(Plain),
    /// Something for hyper; the buffer is as it was.
    Rare,
}

/// A plain request and what its head says about the connection.
#[derive(Debug)]
pub(super) struct Plain {
    /// The request as the pipeline takes it.
    pub(super) request: Request<DownstreamBody>,
    /// No `Connection: close`: the connection may serve another request.
    pub(super) keep_alive: bool,
    /// The client sent `TE: trailers` (hyper then sends response trailers).
    pub(super) trailers: bool,
}

/// What the fields of a head say about framing and the connection.
#[derive(Debug, Default)]
struct Fields {
    length: Length,
    /// `Content-Length` fields seen.
    lengths: u32,
    /// A field that makes the request rare.
    rare: bool,
    close: bool,
    trailers: bool,
}

impl Fields {
    fn add(&mut self, name: &[u8], value: &[u8]) {
        if name.eq_ignore_ascii_case(b"content-length") {
            self.lengths += 1;
            self.length.add(value);
        } else if name.eq_ignore_ascii_case(b"connection") {
            self.close |= has_token(value, b"close");
        } else if name.eq_ignore_ascii_case(b"te") {
            self.trailers |= has_token(value, b"trailers");
        } else if name.eq_ignore_ascii_case(b"transfer-encoding")
            || name.eq_ignore_ascii_case(b"upgrade")
            || name.eq_ignore_ascii_case(b"expect")
        {
            self.rare = true;
        }
    }

    /// The body length of a plain request; `None` makes it rare.
    fn body_length(&self) -> Option<u64> {
        match (self.rare, self.lengths, self.length) {
            (false, 0, _) => Some(0),
            (false, 1, Length::One(n)) => Some(n),
            _ => None,
        }
    }
}

/// Parses the request at the front of `buf`; see [`Parsed`].
pub(super) fn parse(buf: &mut BytesMut, limits: Limits) -> Parsed {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; SLOTS];
    let mut spans: [Span; SLOTS] = [[0; 4]; SLOTS];
    let mut parsed = httparse::Request::new(&mut []);
    let config = httparse::ParserConfig::default();
    let slots = &mut slots[..limits.headers.min(SLOTS)];
    let (len, method, target, count, fields) =
        match config.parse_request_with_uninit_headers(&mut parsed, buf, slots) {
            Ok(httparse::Status::Complete(len)) if len <= limits.head => {
                if parsed.version != Some(1) || parsed.method == Some("CONNECT") {
                    return Parsed::Rare;
                }
                let start = buf.as_ptr() as usize;
                let offset = |s: &[u8]| (s.as_ptr() as usize - start) as u32;
                let mut fields = Fields::default();
                for field in parsed.headers.iter() {
                    fields.add(field.name.as_bytes(), field.value);
                }
                record_spans(buf, parsed.headers, &mut spans);
                let (Some(method), Some(path)) = (parsed.method, parsed.path) else {
                    return Parsed::Rare;
                };
                let from = offset(method.as_bytes()) as usize;
                let method = from..from + method.len();
                let at = offset(path.as_bytes()) as usize;
                (
                    len,
                    method,
                    at..at + path.len(),
                    parsed.headers.len(),
                    fields,
                )
            }
            Ok(httparse::Status::Partial) if buf.len() < limits.head => return Parsed::Partial,
            Ok(_) | Err(_) => return Parsed::Rare,
        };
    let method = match Method::from_bytes(&buf[method]) {
        Ok(method) => method,
        Err(_) => return Parsed::Rare,
    };
    let Some(body_len) = fields.body_length() else {
        return Parsed::Rare;
    };
    let whole = usize::try_from(body_len)
        .ok()
        .and_then(|body| len.checked_add(body))
        .filter(|&whole| whole <= buf.len());
    let Some(whole) = whole else {
        // The body is not all here: hyper streams it.
        return Parsed::Rare;
    };
    let head = buf.split_to(len).freeze();
    let body = buf.split_to(whole - len).freeze();
    let built = build(&head, target, &spans[..count]);
    let Some((uri, headers)) = built else {
        // Put the bytes back as they were for hyper to refuse.
        let mut rest = BytesMut::with_capacity(head.len() + body.len() + buf.len());
        rest.extend_from_slice(&head);
        rest.extend_from_slice(&body);
        rest.extend_from_slice(buf);
        *buf = rest;
        return Parsed::Rare;
    };
    let mut request = Request::new(DownstreamBody::whole(body));
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = headers;
    Parsed::Plain(Plain {
        request,
        keep_alive: !fields.close,
        trailers: fields.trailers,
    })
}

/// The URI and header map of a head, as slices of it; `None` for a target
/// or field the `http` types refuse.
fn build(
    head: &bytes::Bytes,
    target: std::ops::Range<usize>,
    spans: &[Span],
) -> Option<(Uri, HeaderMap)> {
    let uri = Uri::from_maybe_shared(head.slice(target)).ok()?;
    // With room for the forwarding fields the proxy adds to every request.
    let mut headers = HeaderMap::with_capacity(spans.len() + FORWARDING_FIELDS);
    for &[name_start, name_end, value_start, value_end] in spans {
        let name = head.get(name_start as usize..name_end as usize)?;
        let name = HeaderName::from_bytes(name).ok()?;
        let value = head.slice(value_start as usize..value_end as usize);
        let value = HeaderValue::from_maybe_shared(value).ok()?;
        headers.append(name, value);
    }
    Some((uri, headers))
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "request_props.rs"]
mod props;
