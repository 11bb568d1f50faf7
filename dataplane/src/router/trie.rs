//! A segment trie for `PathPrefix` matches.
//!
//! The Gateway API matches prefixes element by element: `/foo` matches
//! `/foo` and `/foo/bar` but not `/foobar`, and a trailing `/` in the prefix
//! is ignored. Splitting both the prefix and the path on `/` turns that into a
//! walk down a trie of segments; every node on the walk holds the matches
//! whose prefix ends there, so a lookup costs one step per path segment no
//! matter how many prefixes exist.

use std::collections::HashMap;

/// One trie node: its children by segment and the matches ending here.
#[derive(Debug, Default)]
struct Node {
    children: HashMap<Box<str>, usize>,
    /// Match positions (ascending) whose prefix ends at this node.
    here: Vec<usize>,
}

/// The prefix trie of one virtual host.
#[derive(Debug)]
pub(crate) struct PrefixTrie {
    nodes: Vec<Node>,
}

impl Default for PrefixTrie {
    fn default() -> Self {
        PrefixTrie {
            nodes: vec![Node::default()],
        }
    }
}

impl PrefixTrie {
    /// Records that match position `at` has prefix `prefix`. Positions must
    /// be inserted in ascending order.
    ///
    /// `/` becomes the single segment `""`, which every path starting with
    /// `/` shares, so it matches everything.
    pub(crate) fn insert(&mut self, prefix: &str, at: usize) {
        let mut node = 0usize;
        for seg in prefix.trim_end_matches('/').split('/') {
            node = match self.nodes[node].children.get(seg) {
                Some(&child) => child,
                None => {
                    let child = self.nodes.len();
                    self.nodes.push(Node::default());
                    self.nodes[node].children.insert(seg.into(), child);
                    child
                }
            };
        }
        self.nodes[node].here.push(at);
    }

    /// Whether no prefix was inserted.
    pub(crate) fn is_empty(&self) -> bool {
        self.nodes.len() == 1
    }

    /// Calls `visit` with the match positions of every prefix of `path`,
    /// shortest prefix first.
    pub(crate) fn for_each_prefix(&self, path: &str, mut visit: impl FnMut(&[usize])) {
        let mut node = &self.nodes[0];
        for seg in path.split('/') {
            match node.children.get(seg) {
                Some(&child) => node = &self.nodes[child],
                None => return,
            }
            if !node.here.is_empty() {
                visit(&node.here);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PrefixTrie;

    fn found(trie: &PrefixTrie, path: &str) -> Vec<usize> {
        let mut out = Vec::new();
        trie.for_each_prefix(path, |here| out.extend_from_slice(here));
        out
    }

    /// Prefixes match on element boundaries; a trailing `/` is ignored; `/`
    /// matches every path.
    #[test]
    fn element_wise_prefixes() {
        let mut trie = PrefixTrie::default();
        for (i, p) in ["/", "/foo", "/foo/bar/", "/foo/bar"].iter().enumerate() {
            trie.insert(p, i);
        }
        let cases: [(&str, &[usize]); 7] = [
            ("/", &[0]),
            ("/foo", &[0, 1]),
            ("/foo/", &[0, 1]),
            ("/foobar", &[0]),
            ("/foo/bar", &[0, 1, 2, 3]),
            ("/foo/bar/baz", &[0, 1, 2, 3]),
            ("/foo/barn", &[0, 1]),
        ];
        for (path, want) in cases {
            assert_eq!(found(&trie, path), want, "{path}");
        }
        assert!(found(&trie, "foo").is_empty());
    }
}
