//! Host lookup: which listener (or virtual host) serves a request's Host.
//!
//! The Gateway API picks the most specific hostname: an exact name, then the
//! wildcard with the longest suffix, then `*`. An index answers that with at
//! most one hash lookup per label of the request's host, however many
//! hostnames the socket has.

use std::collections::HashMap;
use tollgate_snapshot::HostMatch;

/// Maps hostname patterns to values (listener or virtual-host positions).
#[derive(Debug)]
pub(crate) struct HostIndex<T> {
    exact: HashMap<Box<str>, T>,
    /// Keyed by the suffix without the leading `*.`.
    wildcard: HashMap<Box<str>, T>,
    any: Option<T>,
}

impl<T> Default for HostIndex<T> {
    fn default() -> Self {
        HostIndex {
            exact: HashMap::new(),
            wildcard: HashMap::new(),
            any: None,
        }
    }
}

impl<T> HostIndex<T> {
    /// Adds a pattern. When the same pattern is added twice the first value
    /// is kept, as the snapshot lists the preferred one first.
    pub(crate) fn insert(&mut self, pattern: &HostMatch, value: T) {
        match pattern {
            HostMatch::Exact(h) => {
                self.exact.entry(h.as_str().into()).or_insert(value);
            }
            HostMatch::Wildcard(s) => {
                self.wildcard.entry(s.as_str().into()).or_insert(value);
            }
            HostMatch::Any => {
                self.any.get_or_insert(value);
            }
        }
    }

    /// The value of the most specific pattern matching `host` (lowercase,
    /// without port).
    pub(crate) fn get(&self, host: &str) -> Option<&T> {
        if let Some(v) = self.exact.get(host) {
            return Some(v);
        }
        if !self.wildcard.is_empty() {
            // Left to right, so the first suffix found is the longest; a
            // wildcard needs at least one label in front (`i > 0`).
            let found = host
                .match_indices('.')
                .filter(|&(i, _)| i > 0)
                .find_map(|(i, _)| self.wildcard.get(&host[i + 1..]));
            if found.is_some() {
                return found;
            }
        }
        self.any.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::HostIndex;
    use tollgate_snapshot::HostMatch;

    fn index(patterns: &[&str]) -> HostIndex<usize> {
        let mut idx = HostIndex::default();
        for (i, p) in patterns.iter().enumerate() {
            idx.insert(&HostMatch::parse(p), i);
        }
        idx
    }

    /// An exact name beats the longest wildcard, which beats a shorter one,
    /// which beats `*`; a wildcard never matches its bare suffix.
    #[test]
    fn most_specific_pattern_wins() {
        let idx = index(&[
            "*",
            "*.com",
            "*.example.com",
            "api.example.com",
            "*.api.example.com",
        ]);
        let cases = [
            ("api.example.com", Some(3)),
            ("v1.api.example.com", Some(4)),
            ("a.b.api.example.com", Some(4)),
            ("www.example.com", Some(2)),
            ("example.com", Some(1)),
            ("com", Some(0)),
            (".example.com", Some(1)),
            ("[::1]", Some(0)),
            ("", Some(0)),
        ];
        for (host, want) in cases {
            assert_eq!(idx.get(host).copied(), want, "{host}");
        }
    }

    /// Without `*`, a host no pattern covers finds nothing; the first of two
    /// equal patterns is kept.
    #[test]
    fn no_fallback_without_any() {
        let idx = index(&["*.example.com", "a.example.com", "*.example.com"]);
        assert_eq!(idx.get("example.com"), None);
        assert_eq!(idx.get("other.org"), None);
        assert_eq!(idx.get("b.example.com"), Some(&0));
        assert_eq!(idx.get("a.example.com"), Some(&1));
    }
}
