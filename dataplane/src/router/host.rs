//! Host lookup: which listener (or virtual host) serves a request's Host.
//!
//! The Gateway API picks the most specific hostname: an exact name, then the
//! wildcard with the longest suffix, then `*`. An index answers that with at
//! most one map lookup per label of the request's host, however many
//! hostnames the socket has. The maps are short lists while they hold few
//! names (a listener's handful of hostnames) and hash maps above that.

use super::table::StrMap;
use tollgate_snapshot::HostMatch;

/// Maps hostname patterns to values (listener or virtual-host positions).
#[derive(Debug)]
pub(crate) struct HostIndex<T> {
    exact: StrMap<T>,
    /// Keyed by the suffix without the leading `*.`.
    wildcard: StrMap<T>,
    any: Option<T>,
}

impl<T> Default for HostIndex<T> {
    fn default() -> Self {
        HostIndex {
            exact: StrMap::default(),
            wildcard: StrMap::default(),
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
                self.exact.get_or_insert_with(h, || value);
            }
            HostMatch::Wildcard(s) => {
                self.wildcard.get_or_insert_with(s, || value);
            }
            HostMatch::Any => {
                self.any.get_or_insert(value);
            }
        }
    }

    /// Releases spare capacity once every pattern is in.
    pub(crate) fn shrink_to_fit(&mut self) {
        self.exact.shrink_to_fit();
        self.wildcard.shrink_to_fit();
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
