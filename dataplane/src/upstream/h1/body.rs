//! Response body framing: where the body's bytes end in the stream the
//! upstream sends.
//!
//! [`Decoder`] is a pure state machine over the connection's read buffer:
//! it takes what is there, never waits, and never copies body bytes (they
//! are split off the buffer as `Bytes`). The chunked rules are hyper's
//! (`proto/h1/decode.rs`): a size line needs a hex digit, may carry spaces
//! or tabs and an extension (ignored, at most 16 KiB over the body, no bare
//! LF), ends in CRLF, and chunk data ends in CRLF. Trailer fields are
//! parsed and handed on as a trailers frame.

use super::H1Error;
use super::head::{BodyKind, MAX_HEADERS};
use bytes::{Buf, Bytes, BytesMut};
use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};
use http_body::SizeHint;

/// Chunk extension bytes allowed over one body (hyper's limit).
const EXTENSIONS_LIMIT: u64 = 16 * 1024;

/// Trailer section bytes allowed (hyper's limit).
const TRAILERS_LIMIT: usize = 16 * 1024;

/// Where the body is in its framing.
#[derive(Debug)]
pub(super) enum Decoder {
    /// This many bytes are still to come.
    Length(u64),
    /// Chunked, at this point of its framing.
    Chunked(Chunked),
    /// Everything until the upstream closes.
    Close,
    /// The body has ended; the connection is past it.
    Done,
}

/// The chunked decoder's position.
#[derive(Debug, Default)]
pub(super) struct Chunked {
    state: State,
    /// The current chunk's size, then what is left of it.
    size: u64,
    /// Extension bytes seen so far in this body.
    extensions: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum State {
    /// Before a size line: a hex digit must come.
    #[default]
    Start,
    /// In the size's hex digits.
    Size,
    /// Spaces or tabs after the size.
    Space,
    /// In an extension, until CR.
    Extension,
    /// After the size line's CR.
    SizeLf,
    /// In chunk data.
    Data,
    /// After chunk data: CR.
    DataCr,
    /// After chunk data: LF.
    DataLf,
    /// After the last chunk: the trailer section.
    Trailers,
}

/// What the buffer gave.
#[derive(Debug)]
pub(super) enum Decoded {
    /// Body bytes.
    Data(Bytes),
    /// The trailer fields; the body has ended.
    Trailers(HeaderMap),
    /// The body has ended.
    End,
    /// More bytes are needed.
    More,
}

impl Decoder {
    /// The decoder for a body framed as `kind`.
    pub(super) fn new(kind: BodyKind) -> Decoder {
        match kind {
            BodyKind::Empty | BodyKind::Length(0) => Decoder::Done,
            BodyKind::Length(n) => Decoder::Length(n),
            BodyKind::Chunked => Decoder::Chunked(Chunked::default()),
            BodyKind::Close => Decoder::Close,
        }
    }

    /// Whether the body has ended.
    pub(super) fn is_done(&self) -> bool {
        matches!(self, Decoder::Done)
    }

    /// What is known of the bytes still to come.
    pub(super) fn size_hint(&self) -> SizeHint {
        match self {
            Decoder::Length(n) => SizeHint::with_exact(*n),
            Decoder::Done => SizeHint::with_exact(0),
            Decoder::Chunked(_) | Decoder::Close => SizeHint::default(),
        }
    }

    /// Takes the next piece of the body off the front of `buf`.
    ///
    /// # Errors
    ///
    /// [`H1Error::Chunked`] for broken chunked framing or trailers.
    pub(super) fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, H1Error> {
        match self {
            Decoder::Done => Ok(Decoded::End),
            Decoder::Length(left) => {
                if buf.is_empty() {
                    return Ok(Decoded::More);
                }
                let take = usize::try_from(*left).map_or(buf.len(), |left| left.min(buf.len()));
                *left -= take as u64;
                if *left == 0 {
                    *self = Decoder::Done;
                }
                Ok(Decoded::Data(buf.split_to(take).freeze()))
            }
            Decoder::Close if buf.is_empty() => Ok(Decoded::More),
            Decoder::Close => Ok(Decoded::Data(buf.split().freeze())),
            Decoder::Chunked(chunked) => {
                let decoded = chunked.decode(buf)?;
                if matches!(decoded, Decoded::End | Decoded::Trailers(_)) {
                    *self = Decoder::Done;
                }
                Ok(decoded)
            }
        }
    }

    /// The connection reached end of file: the end of a close-delimited
    /// body, an error for any other unfinished one.
    ///
    /// # Errors
    ///
    /// [`H1Error::ClosedBeforeBodyEnd`] unless the body may end here.
    pub(super) fn eof(&mut self) -> Result<(), H1Error> {
        match self {
            Decoder::Close | Decoder::Done => {
                *self = Decoder::Done;
                Ok(())
            }
            Decoder::Length(_) | Decoder::Chunked(_) => Err(H1Error::ClosedBeforeBodyEnd),
        }
    }
}

impl Chunked {
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, H1Error> {
        loop {
            match self.state {
                State::Data => {
                    if buf.is_empty() {
                        return Ok(Decoded::More);
                    }
                    let take =
                        usize::try_from(self.size).map_or(buf.len(), |size| size.min(buf.len()));
                    self.size -= take as u64;
                    if self.size == 0 {
                        self.state = State::DataCr;
                    }
                    return Ok(Decoded::Data(buf.split_to(take).freeze()));
                }
                State::Trailers => return trailers(buf),
                _ => {
                    // Framing bytes: step through them, then drop them at once.
                    let mut used = 0;
                    for &byte in buf.iter() {
                        used += 1;
                        self.step(byte)?;
                        if matches!(self.state, State::Data | State::Trailers) {
                            break;
                        }
                    }
                    buf.advance(used);
                    if !matches!(self.state, State::Data | State::Trailers) {
                        return Ok(Decoded::More);
                    }
                }
            }
        }
    }

    /// One framing byte.
    fn step(&mut self, byte: u8) -> Result<(), H1Error> {
        self.state = match (self.state, byte) {
            (State::Start, _) => {
                let digit = hex(byte).ok_or(H1Error::Chunked("missing chunk size"))?;
                self.size = u64::from(digit);
                State::Size
            }
            (State::Size, _) if hex(byte).is_some() => {
                let digit = hex(byte).unwrap_or_default();
                self.size = self
                    .size
                    .checked_mul(16)
                    .and_then(|size| size.checked_add(u64::from(digit)))
                    .ok_or(H1Error::Chunked("chunk size overflows"))?;
                State::Size
            }
            (State::Size | State::Space, b' ' | b'\t') => State::Space,
            (State::Size | State::Space, b';') => State::Extension,
            (State::Size | State::Space | State::Extension, b'\r') => State::SizeLf,
            (State::Extension, b'\n') => return Err(H1Error::Chunked("LF in a chunk extension")),
            (State::Extension, _) => {
                self.extensions += 1;
                if self.extensions >= EXTENSIONS_LIMIT {
                    return Err(H1Error::Chunked("chunk extensions over 16 KiB"));
                }
                State::Extension
            }
            (State::SizeLf, b'\n') if self.size == 0 => State::Trailers,
            (State::SizeLf, b'\n') => State::Data,
            (State::DataCr, b'\r') => State::DataLf,
            (State::DataLf, b'\n') => State::Start,
            (State::Size | State::Space, _) => {
                return Err(H1Error::Chunked("invalid chunk size line"));
            }
            (State::SizeLf, _) => return Err(H1Error::Chunked("chunk size line without LF")),
            (State::DataCr | State::DataLf, _) => {
                return Err(H1Error::Chunked("chunk data without CRLF"));
            }
            (State::Data | State::Trailers, _) => {
                return Err(H1Error::Chunked("framing byte in data"));
            }
        };
        Ok(())
    }
}

fn hex(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// The trailer section after the last chunk: field lines, each ending in
/// CRLF, then CRLF. Taken whole once it is all in `buf`.
fn trailers(buf: &mut BytesMut) -> Result<Decoded, H1Error> {
    match buf.first() {
        None => return Ok(Decoded::More),
        Some(b'\r') => match buf.get(1) {
            None => return Ok(Decoded::More),
            Some(b'\n') => {
                buf.advance(2);
                return Ok(Decoded::End);
            }
            Some(_) => return Err(H1Error::Chunked("trailer section without CRLF")),
        },
        Some(_) => {}
    }
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buf.len() > TRAILERS_LIMIT {
            return Err(H1Error::Chunked("trailers over 16 KiB"));
        }
        return Ok(Decoded::More);
    };
    let section = buf.split_to(end + 4);
    if end + 4 > TRAILERS_LIMIT || bare_lf(&section) {
        return Err(H1Error::Chunked("invalid trailer section"));
    }
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let Ok(httparse::Status::Complete((len, fields))) =
        httparse::parse_headers(&section, &mut fields)
    else {
        return Err(H1Error::Chunked("invalid trailer section"));
    };
    if len != section.len() {
        return Err(H1Error::Chunked("invalid trailer section"));
    }
    let mut map = HeaderMap::with_capacity(fields.len());
    for field in fields.iter() {
        let name = HeaderName::from_bytes(field.name.as_bytes());
        let value = HeaderValue::from_bytes(field.value);
        let (Ok(name), Ok(value)) = (name, value) else {
            return Err(H1Error::Chunked("invalid trailer field"));
        };
        map.append(name, value);
    }
    Ok(Decoded::Trailers(map))
}

/// Whether `bytes` holds an LF not preceded by CR.
fn bare_lf(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .enumerate()
        .any(|(at, &b)| b == b'\n' && (at == 0 || bytes[at - 1] != b'\r'))
}

#[cfg(test)]
#[path = "body_tests.rs"]
mod tests;
