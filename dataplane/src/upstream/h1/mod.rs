//! Tollgate's own HTTP/1.1 client codec, for the pooled upstream
//! connections of [`Http1Pool`](super::http1::Http1Pool).
//!
//! Why not hyper's client? Callgrind put hyper's HTTP/1 client at about 11k
//! instructions of a ~48k-instruction proxied request, when nginx's whole
//! request costs 15–17k. A general-purpose client has to be: it keeps a
//! dispatcher, a `MessageHead` with extensions, a header map rebuilt for
//! every message, a generic write-buffer strategy and a state machine for
//! every role and protocol variant. The proxy needs one narrow thing: write
//! a request head that is already validated, stream its body, read one
//! response head and relay its body. So, as pingora does
//! (`pingora-core/src/protocols/http/v1/client.rs` and `body.rs`), this
//! module writes the head straight into the connection's reused write
//! buffer ([`head::write_request`]), parses the response head with
//! `httparse` in the reused read buffer and hands the header values out as
//! slices of it ([`head::parse_response`]), and decodes the body into
//! `Bytes` split off the same buffer ([`body::Decoder`]): no allocation per
//! chunk, no task, no channel.
//!
//! The framing rules are hyper's, so nothing the proxy sends or accepts
//! changes: the request's framing follows the body's size hint as hyper's
//! `Client::set_length` does, the response's follows RFC 9112 §6.3 as
//! hyper's `Client::decoder` does, with the same limits (100 header fields,
//! chunk extensions and trailers up to 16 KiB) and one stricter one: a
//! response head over [`MAX_HEAD`] bytes is refused (hyper buffered up to
//! about 400 KiB; nginx's `proxy_buffer_size` refuses anything over 4–8
//! KiB). HTTP upgrades keep using hyper (`upgrade.rs`): they need a
//! connection that stops being HTTP after `101`.

mod body;
mod conn;
mod head;
mod upload;

pub(crate) use conn::{Conn, Home, exchange};
use head::MAX_HEAD;

use crate::body::BoxError;
use thiserror::Error;

/// Why an exchange on an upstream connection failed. Each one leaves the
/// connection unusable: it is closed, never pooled.
#[derive(Debug, Error)]
pub(crate) enum H1Error {
    /// A request header value holds a byte no header may carry (CR, LF,
    /// NUL, other controls): writing it would split the request.
    #[error("request header {0} holds a control character")]
    InvalidRequestHeader(http::HeaderName),
    /// Reading the client's request body failed. The client's error is
    /// the source, so the pipeline answers the client (400, 408), not 502.
    #[error("reading the request body failed")]
    RequestBody(#[source] BoxError),
    /// The request body held more or less than its `Content-Length`.
    #[error("the request body does not match its Content-Length")]
    RequestBodyLength,
    /// Writing to the upstream failed.
    #[error("writing to the upstream failed")]
    Write(#[source] std::io::Error),
    /// Reading from the upstream failed.
    #[error("reading from the upstream failed")]
    Read(#[source] std::io::Error),
    /// The upstream closed the connection before a complete response head.
    #[error("the upstream closed the connection before a response head")]
    ClosedBeforeHead,
    /// The upstream closed the connection before the body's framing ended.
    #[error("the upstream closed the connection before the response body ended")]
    ClosedBeforeBodyEnd,
    /// The response head is not valid HTTP/1.x.
    #[error("invalid response head")]
    Parse(#[source] httparse::Error),
    /// The response head is longer than [`MAX_HEAD`].
    #[error("response head over {MAX_HEAD} bytes")]
    HeadTooLarge,
    /// A response header name or value the `http` types refuse.
    #[error("invalid response header")]
    InvalidResponseHeader,
    /// A status code outside 100–999.
    #[error("invalid response status {0}")]
    Status(u16),
    /// `Content-Length` values that are not one number.
    #[error("invalid Content-Length in the response")]
    ContentLength,
    /// `Transfer-Encoding` in an HTTP/1.0 response.
    #[error("Transfer-Encoding in an HTTP/1.0 response")]
    TransferEncodingInHttp10,
    /// The chunked framing of the response body is broken.
    #[error("invalid chunked response body: {0}")]
    Chunked(&'static str),
}
