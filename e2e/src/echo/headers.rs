//! Header handling of the echo backend: canonical names and `X-Echo-Set-Header`.
//!
//! Conformance tests compare the echoed `headers` object by the canonical
//! MIME names Go's `net/http` uses (`X-Forwarded-For`), and ask the backend
//! to add response headers through `X-Echo-Set-Header`, so both rules live
//! here as small pure functions.

use http::HeaderMap;
use std::collections::BTreeMap;

/// The canonical MIME form of a header name: the first letter and every
/// letter after a `-` in upper case, the rest in lower case.
///
/// Like Go's `textproto.CanonicalMIMEHeaderKey`, a name holding a byte that
/// is not a header token character (a space, for example) is returned as is.
pub fn canonical_name(name: &str) -> String {
    if !name.bytes().all(is_token_byte) {
        return name.to_string();
    }
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = c == '-';
            out
        })
        .collect()
}

/// RFC 9110 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The request headers as the echo body shows them: canonical name → one
/// value per header line, in arrival order, without `Host` (which the body
/// reports separately) and without `Transfer-Encoding` (framing, which Go's
/// server strips too).
///
/// Over HTTP/2 several `cookie` fields are joined with `; ` into one value,
/// as Go's HTTP/2 server does, so both protocols echo cookies alike.
pub fn echoed_headers(headers: &HeaderMap, http2: bool) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in headers {
        if name == http::header::HOST || name == http::header::TRANSFER_ENCODING {
            continue;
        }
        out.entry(canonical_name(name.as_str()))
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    if http2 && let Some(cookies) = out.get_mut("Cookie").filter(|c| c.len() > 1) {
        *cookies = vec![cookies.join("; ")];
    }
    out
}

/// The response headers requested with `X-Echo-Set-Header: name:value,…`.
///
/// Every request header line is split on `,`; each item is trimmed and cut
/// at its first `:`. A name given twice gets one header whose values are
/// joined with `,` (names compare case-sensitively, as in the conformance
/// echo server). Items with an empty name are skipped. Names keep the case
/// they were given in.
pub fn requested_response_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in headers.get_all("x-echo-set-header") {
        let line = String::from_utf8_lossy(line.as_bytes());
        for item in line.split(',') {
            let (name, value) = item.trim().split_once(':').unwrap_or((item.trim(), ""));
            let value = value.trim();
            if name.is_empty() {
                continue;
            }
            match out.iter_mut().find(|(n, _)| n == name) {
                Some((_, existing)) => {
                    existing.push(',');
                    existing.push_str(value);
                }
                None => out.push((name.to_string(), value.to_string())),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    /// Canonical names capitalise each `-`-separated word; names with
    /// non-token bytes stay untouched.
    #[test]
    fn canonical_names() {
        let cases = [
            ("x-forwarded-for", "X-Forwarded-For"),
            ("CONTENT-TYPE", "Content-Type"),
            ("x-b3-traceid", "X-B3-Traceid"),
            ("accept", "Accept"),
            ("-x", "-X"),
            ("bad name", "bad name"),
        ];
        for (input, want) in cases {
            assert_eq!(canonical_name(input), want, "{input}");
        }
    }

    /// One value per header line, Host and Transfer-Encoding dropped; only
    /// HTTP/2 joins cookies.
    #[test]
    fn echoed_headers_group_lines() {
        let mut h = HeaderMap::new();
        h.append("host", HeaderValue::from_static("example.com"));
        h.append("x-a", HeaderValue::from_static("1"));
        h.append("x-a", HeaderValue::from_static("2"));
        h.append("transfer-encoding", HeaderValue::from_static("chunked"));
        h.append("cookie", HeaderValue::from_static("a=1"));
        h.append("cookie", HeaderValue::from_static("b=2"));
        let h1 = echoed_headers(&h, false);
        assert_eq!(h1.keys().collect::<Vec<_>>(), ["Cookie", "X-A"]);
        assert_eq!(h1["X-A"], ["1", "2"]);
        assert_eq!(h1["Cookie"], ["a=1", "b=2"]);
        assert_eq!(echoed_headers(&h, true)["Cookie"], ["a=1; b=2"]);
    }

    /// `X-Echo-Set-Header` items are trimmed, cut at the first `:`, and
    /// repeated names are joined with `,`.
    #[test]
    fn set_header_requests() {
        let mut h = HeaderMap::new();
        h.append(
            "x-echo-set-header",
            HeaderValue::from_static("X-Foo: bar , X-Url:http://a:1"),
        );
        h.append(
            "x-echo-set-header",
            HeaderValue::from_static("X-Foo:baz,,Empty"),
        );
        let got = requested_response_headers(&h);
        let want = [("X-Foo", "bar,baz"), ("X-Url", "http://a:1"), ("Empty", "")];
        let got: Vec<(&str, &str)> = got.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        assert_eq!(got, want);
    }
}
