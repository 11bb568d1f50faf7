//! The `Date` field of every response, formatted once a second.
//!
//! hyper's server adds a `Date` to each response that lacks one (RFC 9110
//! §6.6.1: an origin with a clock must), from a per-thread cache, because
//! formatting a date costs more than writing the rest of a small head. The
//! codec keeps that: same field, same cache, one clock read per response.

use bytes::{BufMut, BytesMut};
use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

/// Length of an IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`.
const DATE_LEN: usize = 29;

/// The formatted date and the second it is for.
struct Cached {
    second: u64,
    text: [u8; DATE_LEN],
}

thread_local! {
    static CACHED: RefCell<Cached> = const {
        RefCell::new(Cached { second: u64::MAX, text: [b' '; DATE_LEN] })
    };
}

/// Appends the `date: …\r\n` field line for now.
pub(super) fn put_date_line(dst: &mut BytesMut) {
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    CACHED.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.second != second {
            let text = httpdate::fmt_http_date(now);
            if text.len() == DATE_LEN {
                cached.text.copy_from_slice(text.as_bytes());
            }
            cached.second = second;
        }
        dst.put_slice(b"date: ");
        dst.put_slice(&cached.text);
        dst.put_slice(b"\r\n");
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line is a field line with an HTTP date hyper would parse back.
    #[test]
    fn writes_an_imf_fixdate() {
        let mut dst = BytesMut::new();
        put_date_line(&mut dst);
        let line = std::str::from_utf8(&dst).unwrap();
        let value = line
            .strip_prefix("date: ")
            .unwrap()
            .strip_suffix("\r\n")
            .unwrap();
        assert!(value.ends_with(" GMT"), "{value}");
        assert!(httpdate::parse_http_date(value).is_ok(), "{value}");
    }
}
