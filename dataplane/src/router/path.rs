//! The path index of one virtual host: which route matches a request.
//!
//! Route matches arrive in Gateway API precedence order and the first that
//! holds wins. Rather than testing them all, the index gathers candidates
//! from three structures (a map for `Exact`, a map of prefixes looked up
//! at each `/` of the path for `PathPrefix`, one regex set for
//! `RegularExpression`) and tests the method, header and query conditions
//! of those candidates only, lowest position first.

use super::conditions::{Conditions, compile_regex, regex_error};
use super::error::RouterError;
use super::prefix::PrefixIndex;
use super::request::{Found, RequestView};
use super::table::{Positions, StrMap, insert_position};
use regex::{RegexSet, RegexSetBuilder};
use std::borrow::Cow;
use std::sync::Arc;
use tollgate_snapshot::{PathMatch, REGEX_SIZE_LIMIT, RouteMatch, anchored_regex};

/// What the index keeps of one route match.
#[derive(Debug)]
struct Entry {
    route: usize,
    /// The path value of the match, reported as `Found::path_template`
    /// (shared, so telemetry keeps it without copying).
    template: Arc<str>,
    /// Whether it is a `PathPrefix` (then also `Found::matched_prefix`).
    is_prefix: bool,
    /// Boxed and absent when the match has none, as most have none.
    conditions: Option<Box<Conditions>>,
}

/// All `RegularExpression` path matches of a virtual host in one set.
#[derive(Debug)]
struct RegexPaths {
    set: RegexSet,
    /// Match position of each pattern of the set, ascending.
    positions: Box<[u32]>,
}

/// The route matches of one virtual host, indexed by path.
#[derive(Debug)]
pub(crate) struct PathIndex {
    entries: Box<[Entry]>,
    exact: StrMap<Positions>,
    prefixes: PrefixIndex,
    regexes: Option<Box<RegexPaths>>,
}

impl PathIndex {
    /// Indexes `matches` (in precedence order); `at` names the listener in
    /// errors.
    pub(crate) fn build(at: &str, matches: &[RouteMatch]) -> Result<Self, RouterError> {
        let mut entries = Vec::with_capacity(matches.len());
        let mut exact = StrMap::default();
        let mut prefixes = PrefixIndex::default();
        let mut patterns = Vec::new();
        let mut positions = Vec::new();
        for (pos, m) in matches.iter().enumerate() {
            let pos = u32::try_from(pos)
                .map_err(|_| RouterError::TooManyMatches { at: at.to_string() })?;
            // Only errors name the match, and only a regular expression
            // can fail: 10k plain matches need not each format a name.
            let can_fail = matches!(m.path, PathMatch::RegularExpression(_))
                || !m.headers.is_empty()
                || !m.query.is_empty();
            let at: Cow<'_, str> = if can_fail {
                Cow::Owned(format!("{at}: route {}", m.route))
            } else {
                Cow::Borrowed(at)
            };
            let (template, is_prefix) = match &m.path {
                PathMatch::Exact(p) | PathMatch::RegularExpression(p) => (p, false),
                PathMatch::Prefix(p) => (p, true),
            };
            match &m.path {
                PathMatch::Exact(p) => insert_position(&mut exact, p, pos),
                PathMatch::Prefix(p) => prefixes.insert(p, pos),
                PathMatch::RegularExpression(p) => {
                    // Compiled alone first so each pattern meets the
                    // per-pattern size limit and errors name it.
                    compile_regex(&at, p)?;
                    patterns.push(anchored_regex(p));
                    positions.push(pos);
                }
            }
            let conditions = Conditions::compile(&at, m)?;
            entries.push(Entry {
                route: m.route,
                template: Arc::from(template.as_str()),
                is_prefix,
                conditions: (!conditions.is_empty()).then(|| Box::new(conditions)),
            });
        }
        exact.values_mut(Positions::shrink_to_fit);
        exact.shrink_to_fit();
        prefixes.shrink_to_fit();
        Ok(PathIndex {
            entries: entries.into_boxed_slice(),
            exact,
            prefixes,
            regexes: regex_paths(at, &patterns, positions)?,
        })
    }

    /// The first match, in precedence order, that the request satisfies.
    pub(crate) fn find<'a>(&'a self, listener: usize, r: &RequestView<'_>) -> Option<Found<'a>> {
        let mut best: Option<u32> = None;
        if let Some(list) = self.exact.get(r.path) {
            self.consider(&mut best, list.as_slice(), r);
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
        let entry = self.entries.get(usize::try_from(best?).ok()?)?;
        Some(Found {
            listener,
            route: entry.route,
            matched_prefix: entry.is_prefix.then_some(&*entry.template),
            path_template: &entry.template,
        })
    }

    /// Lowers `best` to the first position of the ascending `list` whose
    /// conditions hold, stopping as soon as a position cannot beat `best`.
    fn consider(&self, best: &mut Option<u32>, list: &[u32], r: &RequestView<'_>) {
        for &pos in list {
            if best.is_some_and(|b| pos >= b) {
                return;
            }
            let Some(entry) = usize::try_from(pos).ok().and_then(|i| self.entries.get(i)) else {
                return;
            };
            if entry
                .conditions
                .as_ref()
                .is_none_or(|c| c.hold(r.method, r.headers, r.query))
            {
                *best = Some(pos);
                return;
            }
        }
    }
}

/// Builds the regex set of a virtual host's `RegularExpression` paths, or
/// nothing when it has none.
fn regex_paths(
    at: &str,
    patterns: &[String],
    positions: Vec<u32>,
) -> Result<Option<Box<RegexPaths>>, RouterError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let set = RegexSetBuilder::new(patterns)
        .size_limit(REGEX_SIZE_LIMIT.saturating_mul(patterns.len()))
        .build()
        .map_err(|e| regex_error(at, "<path regex set>", e.to_string()))?;
    Ok(Some(Box::new(RegexPaths {
        set,
        positions: positions.into_boxed_slice(),
    })))
}
