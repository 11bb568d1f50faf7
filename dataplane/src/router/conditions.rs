//! Per-match conditions beyond the path: method, headers and query parameters.
//!
//! They are compiled once per snapshot (header names parsed, regular
//! expressions built and anchored) so that testing a candidate at request time
//! is a few comparisons. The router only tests them on the handful of
//! candidates its path index returns.

use super::error::RouterError;
use http::{HeaderMap, HeaderName, Method};
use percent_encoding::percent_decode_str;
use regex::{Regex, RegexBuilder};
use std::borrow::Cow;
use tollgate_snapshot::{
    HeaderMatch, QueryMatch, REGEX_MAX_PATTERN_LEN, REGEX_SIZE_LIMIT, RouteMatch, StringMatch,
    anchored_regex,
};

/// Compiles a user regular expression the way the Gateway API asks: anchored
/// at both ends, within the shared pattern-length and size limits.
pub(crate) fn compile_regex(at: &str, pattern: &str) -> Result<Regex, RouterError> {
    check_pattern_len(at, pattern)?;
    RegexBuilder::new(&anchored_regex(pattern))
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| regex_error(at, pattern, e.to_string()))
}

/// Refuses patterns longer than [`REGEX_MAX_PATTERN_LEN`].
pub(crate) fn check_pattern_len(at: &str, pattern: &str) -> Result<(), RouterError> {
    if pattern.len() > REGEX_MAX_PATTERN_LEN {
        return Err(regex_error(
            at,
            pattern,
            format!("longer than {REGEX_MAX_PATTERN_LEN} bytes"),
        ));
    }
    Ok(())
}

/// Builds a [`RouterError::Regex`].
pub(crate) fn regex_error(at: &str, pattern: &str, message: String) -> RouterError {
    RouterError::Regex {
        at: at.to_string(),
        pattern: pattern.to_string(),
        message,
    }
}

/// A compiled condition on a string value (also used by rate-limit
/// conditions).
#[derive(Debug)]
pub(crate) enum ValueMatcher {
    Exact(Box<str>),
    Regex(Regex),
}

impl ValueMatcher {
    pub(crate) fn compile(at: &str, m: &StringMatch) -> Result<Self, RouterError> {
        Ok(match m {
            StringMatch::Exact(v) => ValueMatcher::Exact(v.as_str().into()),
            StringMatch::RegularExpression(p) => ValueMatcher::Regex(compile_regex(at, p)?),
        })
    }

    pub(crate) fn matches(&self, value: &str) -> bool {
        match self {
            ValueMatcher::Exact(v) => **v == *value,
            ValueMatcher::Regex(r) => r.is_match(value),
        }
    }
}

/// A compiled header condition. A name the `http` crate refuses can never be
/// present on a request, so such a condition never holds.
#[derive(Debug)]
struct HeaderCondition {
    name: Option<HeaderName>,
    value: ValueMatcher,
}

/// A compiled query-parameter condition.
#[derive(Debug)]
struct QueryCondition {
    name: Box<str>,
    value: ValueMatcher,
}

/// The method, header and query conditions of one route match; all must hold.
#[derive(Debug)]
pub(crate) struct Conditions {
    method: Option<Box<str>>,
    headers: Box<[HeaderCondition]>,
    query: Box<[QueryCondition]>,
}

impl Conditions {
    /// Compiles the non-path conditions of `m`; `at` names it in errors.
    pub(crate) fn compile(at: &str, m: &RouteMatch) -> Result<Self, RouterError> {
        let headers = m
            .headers
            .iter()
            .map(|h: &HeaderMatch| {
                Ok(HeaderCondition {
                    name: HeaderName::from_bytes(h.name.as_bytes()).ok(),
                    value: ValueMatcher::compile(at, &h.value)?,
                })
            })
            .collect::<Result<_, RouterError>>()?;
        let query = m
            .query
            .iter()
            .map(|q: &QueryMatch| {
                Ok(QueryCondition {
                    name: q.name.as_str().into(),
                    value: ValueMatcher::compile(at, &q.value)?,
                })
            })
            .collect::<Result<_, RouterError>>()?;
        Ok(Conditions {
            method: m.method.as_deref().map(Into::into),
            headers,
            query,
        })
    }

    /// Whether there is no condition at all, so every request holds.
    pub(crate) fn is_empty(&self) -> bool {
        self.method.is_none() && self.headers.is_empty() && self.query.is_empty()
    }

    /// Whether the request satisfies every condition.
    pub(crate) fn hold(&self, method: &Method, headers: &HeaderMap, query: Option<&str>) -> bool {
        if self.method.as_deref().is_some_and(|m| m != method.as_str()) {
            return false;
        }
        let headers_hold = self.headers.iter().all(|c| {
            c.name
                .as_ref()
                .and_then(|name| headers.get(name))
                .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
                .is_some_and(|v| c.value.matches(v))
        });
        headers_hold
            && self.query.iter().all(|c| {
                query
                    .and_then(|q| query_value(q, &c.name))
                    .is_some_and(|v| c.value.matches(&v))
            })
    }
}

/// The percent-decoded value of the first occurrence of parameter `name`
/// (compared after decoding, case-sensitively) in a raw query string.
///
/// A parameter without `=` has the empty value. `+` is kept as is: the
/// Gateway API matches query parameters, not HTML form fields.
pub(crate) fn query_value<'q>(query: &'q str, name: &str) -> Option<Cow<'q, str>> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .find(|(k, _)| percent_decode_str(k).decode_utf8_lossy() == name)
        .map(|(_, v)| percent_decode_str(v).decode_utf8_lossy())
}
