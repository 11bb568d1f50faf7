//! The path index of one virtual host: which route matches a request.
//!
//! Route matches arrive in Gateway API precedence order and the first that
//! holds wins. Rather than testing them all, the index gathers candidates
//! from three structures (a hash map for `Exact`, a segment trie for
//! `PathPrefix`, one regex set for `RegularExpression`) and tests the
//! method, header and query conditions of those candidates only, lowest
//! position first.

use super::conditions::{Conditions, compile_regex, regex_error};
use super::trie::PrefixTrie;
use super::{Found, RequestView, RouterError};
use regex::{RegexSet, RegexSetBuilder};
use std::collections::HashMap;
use tollgate_snapshot::{PathMatch, REGEX_SIZE_LIMIT, RouteMatch, anchored_regex};

/// What the index keeps of one route match.
#[derive(Debug)]
struct Entry {
    route: usize,
    /// The `PathPrefix` value, reported as `Found::matched_prefix`.
    prefix: Option<Box<str>>,
    conditions: Conditions,
}

/// All `RegularExpression` path matches of a virtual host in one set.
#[derive(Debug)]
struct RegexPaths {
    set: RegexSet,
    /// Match position of each pattern of the set, ascending.
    positions: Vec<usize>,
}

/// The route matches of one virtual host, indexed by path.
#[derive(Debug)]
pub(crate) struct PathIndex {
    entries: Vec<Entry>,
    exact: HashMap<Box<str>, Vec<usize>>,
    prefixes: PrefixTrie,
    regexes: Option<RegexPaths>,
}

impl PathIndex {
    /// Indexes `matches` (in precedence order); `at` names the listener in
    /// errors.
    pub(crate) fn build(at: &str, matches: &[RouteMatch]) -> Result<Self, RouterError> {
        let mut index = PathIndex {
            entries: Vec::with_capacity(matches.len()),
            exact: HashMap::new(),
            prefixes: PrefixTrie::default(),
            regexes: None,
        };
        let mut patterns = Vec::new();
        let mut positions = Vec::new();
        for (pos, m) in matches.iter().enumerate() {
            let at = format!("{at}: route {}", m.route);
            let mut prefix = None;
            match &m.path {
                PathMatch::Exact(p) => index.exact.entry(p.as_str().into()).or_default().push(pos),
                PathMatch::Prefix(p) => {
                    index.prefixes.insert(p, pos);
                    prefix = Some(p.as_str().into());
                }
                PathMatch::RegularExpression(p) => {
                    // Compiled alone first so each pattern meets the
                    // per-pattern size limit and errors name it.
                    compile_regex(&at, p)?;
                    patterns.push(anchored_regex(p));
                    positions.push(pos);
                }
            }
            index.entries.push(Entry {
                route: m.route,
                prefix,
                conditions: Conditions::compile(&at, m)?,
            });
        }
        if !patterns.is_empty() {
            let set = RegexSetBuilder::new(&patterns)
                .size_limit(REGEX_SIZE_LIMIT.saturating_mul(patterns.len()))
                .build()
                .map_err(|e| regex_error(at, "<path regex set>", e.to_string()))?;
            index.regexes = Some(RegexPaths { set, positions });
        }
        Ok(index)
    }

    /// The first match, in precedence order, that the request satisfies.
    pub(crate) fn find<'a>(&'a self, listener: usize, r: &RequestView<'_>) -> Option<Found<'a>> {
        let mut best: Option<usize> = None;
        if let Some(list) = self.exact.get(r.path) {
            self.consider(&mut best, list, r);
        }
        if !self.prefixes.is_empty() {
            self.prefixes
                .for_each_prefix(r.path, |list| self.consider(&mut best, list, r));
        }
        if let Some(rx) = &self.regexes
            && best.is_none_or(|b| rx.positions.first().is_some_and(|&first| first < b))
        {
            for pattern in rx.set.matches(r.path).iter() {
                self.consider(&mut best, &rx.positions[pattern..=pattern], r);
            }
        }
        let entry = &self.entries[best?];
        Some(Found {
            listener,
            route: entry.route,
            matched_prefix: entry.prefix.as_deref(),
        })
    }

    /// Lowers `best` to the first position of the ascending `list` whose
    /// conditions hold, stopping as soon as a position cannot beat `best`.
    fn consider(&self, best: &mut Option<usize>, list: &[usize], r: &RequestView<'_>) {
        for &pos in list {
            if best.is_some_and(|b| pos >= b) {
                return;
            }
            if self.entries[pos]
                .conditions
                .hold(r.method, r.headers, r.query)
            {
                *best = Some(pos);
                return;
            }
        }
    }
}
