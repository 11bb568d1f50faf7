//! The `PathPrefix` index of one virtual host.
//!
//! The Gateway API matches prefixes element by element: `/foo` matches
//! `/foo` and `/foo/bar` but not `/foobar`, and a trailing `/` in the prefix
//! is ignored. So a prefix, trailing slashes trimmed, matches a path exactly
//! when it equals the path cut at a `/` or at its end. The index keys each
//! trimmed prefix once and looks up those cuts of the path: one lookup per
//! path segment, however many prefixes exist, and one map entry per distinct
//! prefix rather than one node per segment (most virtual hosts have one or
//! two prefixes, so this is most of the router's memory).

use super::table::{Positions, StrMap, insert_position};

/// Bit `n` of [`PrefixIndex::lengths`] for a key of `n` bytes; keys of 63
/// bytes or more share the top bit.
fn length_bit(len: usize) -> u64 {
    1 << len.min(63)
}

/// The prefixes of one virtual host.
#[derive(Debug, Default)]
pub(crate) struct PrefixIndex {
    /// Trimmed prefix (`/` becomes `""`) → match positions, ascending.
    map: StrMap<Positions>,
    /// Which key lengths exist, so that cuts of other lengths skip the map.
    lengths: u64,
    /// The longest key, past which no cut can match.
    longest: usize,
}

impl PrefixIndex {
    /// Records that match position `at` has prefix `prefix`. Positions must
    /// be inserted in ascending order.
    pub(crate) fn insert(&mut self, prefix: &str, at: u32) {
        let key = prefix.trim_end_matches('/');
        insert_position(&mut self.map, key, at);
        self.lengths |= length_bit(key.len());
        self.longest = self.longest.max(key.len());
    }

    /// Whether no prefix was inserted.
    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Calls `visit` with the match positions of every prefix of `path`,
    /// shortest prefix first.
    pub(crate) fn for_each_prefix(&self, path: &str, mut visit: impl FnMut(&[u32])) {
        // A byte scan: paths are short, and a `/` is never inside a
        // multi-byte character, so every cut is a character boundary.
        let cuts = path
            .bytes()
            .enumerate()
            .filter_map(|(i, b)| (b == b'/').then_some(i))
            .chain(std::iter::once(path.len()));
        for cut in cuts {
            if cut > self.longest {
                return;
            }
            if self.lengths & length_bit(cut) == 0 {
                continue;
            }
            if let Some(positions) = path.get(..cut).and_then(|key| self.map.get(key)) {
                visit(positions.as_slice());
            }
        }
    }

    /// Releases spare capacity once the index is built.
    pub(crate) fn shrink_to_fit(&mut self) {
        self.map.values_mut(Positions::shrink_to_fit);
        self.map.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::PrefixIndex;

    fn found(index: &PrefixIndex, path: &str) -> Vec<u32> {
        let mut out = Vec::new();
        index.for_each_prefix(path, |here| out.extend_from_slice(here));
        out
    }

    /// Prefixes match on element boundaries; a trailing `/` is ignored; `/`
    /// matches every path; an empty segment is a segment like any other.
    #[test]
    fn element_wise_prefixes() {
        let mut index = PrefixIndex::default();
        let prefixes = ["/", "/foo", "/foo/bar/", "/foo/bar", "/foo//baz"];
        for (i, p) in (0..).zip(prefixes) {
            index.insert(p, i);
        }
        let cases: [(&str, &[u32]); 10] = [
            ("/", &[0]),
            ("/foo", &[0, 1]),
            ("/foo/", &[0, 1]),
            ("/foobar", &[0]),
            ("/foo/bar", &[0, 1, 2, 3]),
            ("/foo/bar/baz", &[0, 1, 2, 3]),
            ("/foo/barn", &[0, 1]),
            ("/foo//baz/x", &[0, 1, 4]),
            ("/foo/baz", &[0, 1]),
            ("", &[0]),
        ];
        for (path, want) in cases {
            assert_eq!(found(&index, path), want, "{path}");
        }
        assert!(found(&index, "foo").is_empty());
    }

    /// Keys of 63 bytes or more share one length bit and still match only
    /// their own cut.
    #[test]
    fn long_prefixes() {
        let long = format!("/{}", "a".repeat(70));
        let longer = format!("{long}/{}", "b".repeat(10));
        let mut index = PrefixIndex::default();
        index.insert(&long, 0);
        index.insert(&longer, 1);
        assert_eq!(found(&index, &format!("{longer}/c")), [0, 1]);
        assert_eq!(found(&index, &format!("{long}b")), Vec::<u32>::new());
    }
}
