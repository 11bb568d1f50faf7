//! Request path normalization, run before routing.
//!
//! Routing and every policy after it see one canonical spelling of a path,
//! so `/public/../admin`, `/%61dmin` or `//admin` cannot slip past a rule
//! written for `/admin`. The steps follow RFC 3986: percent-escapes of
//! unreserved characters are decoded and the others uppercased (section
//! 6.2.2.1–2), dot segments are removed (section 5.2.4, also when spelled
//! `%2e`), and empty segments are merged. Encoded slashes (`%2F`, `%5C`) and a
//! raw `\` are refused because backends disagree on whether they separate
//! segments, unless the Gateway's settings allow them.

use std::borrow::Cow;
use thiserror::Error;

/// Why a request path was refused; the caller answers 400.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NormalizeError {
    /// The path does not start with `/`.
    #[error("path must start with '/'")]
    NotAbsolute,
    /// A `%` is not followed by two hexadecimal digits.
    #[error("invalid percent-escape at byte {0}")]
    InvalidEscape(usize),
    /// `%2F`, `%5C` or `\` appears while encoded slashes are not allowed.
    #[error("encoded slash or backslash at byte {0}")]
    EncodedSlash(usize),
}

/// Normalizes the path part of a request target (no query).
///
/// # Errors
///
/// [`NormalizeError`] when the path is not absolute, has an invalid escape,
/// or (unless `allow_encoded_slashes`) contains `%2F`, `%5C` or `\`.
///
/// # Guarantees
///
/// The result starts with `/`, has no empty, `.` or `..` segments, keeps a
/// trailing `/` (also the one a final `.` or `..` implies), and normalizing it
/// again returns it unchanged. When nothing changes the input is borrowed.
/// With `allow_encoded_slashes`, `%2F` and `%5C` are kept encoded (in
/// uppercase) and a raw `\` becomes `%5C`.
pub fn normalize_path(
    raw: &str,
    allow_encoded_slashes: bool,
) -> Result<Cow<'_, str>, NormalizeError> {
    if !raw.starts_with('/') {
        return Err(NormalizeError::NotAbsolute);
    }
    if is_canonical(raw) {
        return Ok(Cow::Borrowed(raw));
    }
    let decoded = decode_escapes(raw, allow_encoded_slashes)?;
    let out = remove_dot_segments(&decoded);
    Ok(if out == raw {
        Cow::Borrowed(raw)
    } else {
        Cow::Owned(out)
    })
}

/// A quick check that needs no allocation: no escapes, backslashes, empty
/// or dot segments.
fn is_canonical(raw: &str) -> bool {
    if raw.bytes().any(|b| b == b'%' || b == b'\\') {
        return false;
    }
    let body = &raw[1..];
    let body = body.strip_suffix('/').unwrap_or(body);
    if body.is_empty() {
        return raw == "/";
    }
    body.split('/').all(|seg| !matches!(seg, "" | "." | ".."))
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Decodes escapes of unreserved characters, uppercases the rest, and
/// refuses or keeps encoded slashes.
fn decode_escapes(raw: &str, allow_encoded_slashes: bool) -> Result<String, NormalizeError> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let (hi, lo) = bytes
                    .get(i + 1)
                    .and_then(|&h| hex_value(h))
                    .zip(bytes.get(i + 2).and_then(|&l| hex_value(l)))
                    .ok_or(NormalizeError::InvalidEscape(i))?;
                let byte = hi << 4 | lo;
                if is_unreserved(byte) {
                    out.push(char::from(byte));
                } else if matches!(byte, b'/' | b'\\') && !allow_encoded_slashes {
                    return Err(NormalizeError::EncodedSlash(i));
                } else {
                    out.push('%');
                    out.push(char::from(HEX[usize::from(hi)]));
                    out.push(char::from(HEX[usize::from(lo)]));
                }
                i += 3;
            }
            b'\\' if !allow_encoded_slashes => return Err(NormalizeError::EncodedSlash(i)),
            b'\\' => {
                out.push_str("%5C");
                i += 1;
            }
            _ => {
                // Copy the run up to the next byte needing attention; `%` and
                // `\` are ASCII, so the run ends on a character boundary.
                let end = bytes[i..]
                    .iter()
                    .position(|&b| b == b'%' || b == b'\\')
                    .map_or(bytes.len(), |n| i + n);
                out.push_str(&raw[i..end]);
                i = end;
            }
        }
    }
    Ok(out)
}

/// Removes `.` and `..` segments and merges empty ones (RFC 3986 5.2.4).
fn remove_dot_segments(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    let mut trailing_slash = false;
    for seg in path.split('/').skip(1) {
        trailing_slash = true;
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            _ => {
                segments.push(seg);
                trailing_slash = false;
            }
        }
    }
    let mut out = String::with_capacity(path.len());
    for seg in &segments {
        out.push('/');
        out.push_str(seg);
    }
    if trailing_slash || out.is_empty() {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{NormalizeError, normalize_path};
    use proptest::prelude::*;

    /// Dot segments are removed (also when percent-encoded), escapes of
    /// unreserved characters decoded, other escapes uppercased, empty
    /// segments merged, and a trailing `/` kept.
    #[test]
    fn canonical_forms() {
        let cases = [
            ("/", "/"),
            ("/a/b", "/a/b"),
            ("/public/../admin", "/admin"),
            ("/public/%2e%2e/admin", "/admin"),
            ("/public/%2E./admin", "/admin"),
            ("/%61dmin", "/admin"),
            ("/a//b", "/a/b"),
            ("//a///b//", "/a/b/"),
            ("/a/./b/", "/a/b/"),
            ("/a/b/.", "/a/b/"),
            ("/a/b/..", "/a/"),
            ("/a/..", "/"),
            ("/../../x", "/x"),
            ("/..", "/"),
            ("/.", "/"),
            ("//", "/"),
            ("/a%7e%2D%5f%2e", "/a~-_."),
            ("/%e2%82%ac", "/%E2%82%AC"),
            ("/a%20b", "/a%20b"),
            ("/...", "/..."),
            ("/.a/..b", "/.a/..b"),
            ("/a;x=1/b", "/a;x=1/b"),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize_path(raw, false).as_deref(), Ok(want), "{raw}");
        }
    }

    /// Encoded slashes and backslashes are refused unless allowed; then
    /// they stay encoded in uppercase and never split segments.
    #[test]
    fn encoded_slashes() {
        let cases = [
            ("/a%2Fb", NormalizeError::EncodedSlash(2), "/a%2Fb"),
            ("/a%2fb", NormalizeError::EncodedSlash(2), "/a%2Fb"),
            ("/a%5cb", NormalizeError::EncodedSlash(2), "/a%5Cb"),
            ("/a\\b", NormalizeError::EncodedSlash(2), "/a%5Cb"),
            (
                "/x/..%2f..%2fetc",
                NormalizeError::EncodedSlash(5),
                "/x/..%2F..%2Fetc",
            ),
        ];
        for (raw, refused, allowed) in cases {
            assert_eq!(normalize_path(raw, false), Err(refused), "{raw}");
            assert_eq!(normalize_path(raw, true).as_deref(), Ok(allowed), "{raw}");
        }
    }

    /// A path must start with `/` and every `%` needs two hex digits.
    #[test]
    fn refused_paths() {
        let cases = [
            ("", NormalizeError::NotAbsolute),
            ("a/b", NormalizeError::NotAbsolute),
            ("*", NormalizeError::NotAbsolute),
            ("/a%", NormalizeError::InvalidEscape(2)),
            ("/a%2", NormalizeError::InvalidEscape(2)),
            ("/a%zz", NormalizeError::InvalidEscape(2)),
            ("/%%41", NormalizeError::InvalidEscape(1)),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize_path(raw, true), Err(want), "{raw}");
        }
    }

    /// An already canonical path is returned borrowed.
    #[test]
    fn canonical_input_is_borrowed() {
        for raw in ["/", "/a", "/a/b/", "/a%20b"] {
            assert!(
                matches!(
                    normalize_path(raw, false),
                    Ok(std::borrow::Cow::Borrowed(_))
                ),
                "{raw}"
            );
        }
    }

    fn raw_path() -> impl Strategy<Value = String> {
        let piece = prop::sample::select(
            &[
                "/", "/", ".", "..", "a", "b~", "%2e", "%2E", "%2f", "%5C", "\\", "%41", "%7e",
                "%e2", "%", "%zz", "-",
            ][..],
        );
        prop::collection::vec(piece, 0..12).prop_map(|ps| format!("/{}", ps.concat()))
    }

    proptest! {
        /// Normalizing twice changes nothing, and the output never holds an
        /// empty, `.`, `..` or encoded-dot segment.
        #[test]
        fn idempotent_and_clean(raw in raw_path(), allow in any::<bool>()) {
            if let Ok(once) = normalize_path(&raw, allow) {
                let twice = normalize_path(&once, allow).unwrap();
                prop_assert_eq!(&once, &twice);
                prop_assert!(once.starts_with('/'));
                let body = once[1..].strip_suffix('/').unwrap_or(&once[1..]);
                for seg in body.split('/').filter(|_| !body.is_empty()) {
                    prop_assert!(!matches!(seg, "" | "." | ".."), "{:?} in {}", seg, once);
                }
                prop_assert!(!once.to_ascii_lowercase().contains("%2e"), "{}", once);
                prop_assert!(!once.contains('\\'));
            }
        }
    }
}
