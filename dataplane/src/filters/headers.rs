//! `RequestHeaderModifier` and `ResponseHeaderModifier`: set, add, remove.
//!
//! The controller validates names and values, so a name or value the `http`
//! crate refuses (including any value with CR, LF or NUL, which could split
//! a header) is skipped here rather than failing the request.

use http::{HeaderMap, HeaderName, HeaderValue};
use tollgate_snapshot::{Header, HeaderModifier};

/// Applies a header modifier in the Gateway API order: `set` replaces every
/// value of a header, `add` appends a value, `remove` deletes every value.
pub fn apply_header_modifier(m: &HeaderModifier, headers: &mut HeaderMap) {
    for (name, value) in m.set.iter().filter_map(parse) {
        headers.insert(name, value);
    }
    for (name, value) in m.add.iter().filter_map(parse) {
        headers.append(name, value);
    }
    for name in &m.remove {
        if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
            headers.remove(name);
        }
    }
}

fn parse(h: &Header) -> Option<(HeaderName, HeaderValue)> {
    let name = HeaderName::from_bytes(h.name.as_bytes()).ok()?;
    // `from_str` refuses every control character but tab, so CR, LF and
    // NUL can never reach the wire.
    let value = HeaderValue::from_str(&h.value).ok()?;
    Some((name, value))
}

#[cfg(test)]
mod tests {
    use super::apply_header_modifier;
    use http::HeaderMap;
    use tollgate_snapshot::{Header, HeaderModifier};

    fn header(name: &str, value: &str) -> Header {
        Header {
            name: name.into(),
            value: value.into(),
        }
    }

    fn values(h: &HeaderMap, name: &str) -> Vec<String> {
        h.get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect()
    }

    /// `set` replaces all values, `add` appends to existing ones, `remove`
    /// drops every value; names match case-insensitively.
    #[test]
    fn set_add_remove() {
        let mut h = HeaderMap::new();
        h.append("x-set", "old1".parse().unwrap());
        h.append("x-set", "old2".parse().unwrap());
        h.append("x-add", "old".parse().unwrap());
        h.append("x-gone", "v".parse().unwrap());
        let m = HeaderModifier {
            set: vec![header("x-set", "new"), header("x-fresh", "1")],
            add: vec![header("x-add", "more"), header("x-new", "a")],
            remove: vec!["X-Gone".into(), "x-missing".into()],
        };
        apply_header_modifier(&m, &mut h);
        assert_eq!(values(&h, "x-set"), ["new"]);
        assert_eq!(values(&h, "x-fresh"), ["1"]);
        assert_eq!(values(&h, "x-add"), ["old", "more"]);
        assert_eq!(values(&h, "x-new"), ["a"]);
        assert!(h.get("x-gone").is_none());
    }

    /// Invalid names and values (CR, LF, NUL) are skipped, the rest applies.
    #[test]
    fn invalid_entries_are_skipped() {
        let mut h = HeaderMap::new();
        let m = HeaderModifier {
            set: vec![
                header("bad name", "v"),
                header("x-crlf", "a\r\nx-evil: 1"),
                header("x-ok", "v"),
            ],
            add: vec![header("x-nul", "a\0b"), header("x-lf", "a\nb")],
            remove: vec!["bad name".into()],
        };
        apply_header_modifier(&m, &mut h);
        assert_eq!(h.len(), 1);
        assert_eq!(values(&h, "x-ok"), ["v"]);
    }
}
