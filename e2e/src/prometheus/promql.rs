//! Which labels a PromQL query needs each of its metrics to carry.
//!
//! A dashboard query that filters or groups on a label its metric does not
//! have still runs: it just plots nothing (a matcher) or one unlabelled
//! line (a grouping). So a dashboard test checks every query's
//! [`selectors`] against a real scrape with [`Exported::check`].
//!
//! A selected metric needs the labels of its own matchers, of every
//! `by (...)`/`without (...)` clause of the aggregations around it, and
//! `le` under `histogram_quantile`. The walk follows only those grouping
//! rules; constructs that make or match labels some other way
//! (`label_replace`, `on (...)`, `count_values`, ...) are refused rather
//! than half-checked.

use std::collections::BTreeSet;

mod exported;
mod lex;
#[cfg(test)]
mod tests;

pub use exported::{Exported, Mismatch};
use lex::Token;

/// One metric a query selects, and the label names the query needs it to
/// carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// The sample name, as written (`x_bucket`, `y_total`).
    pub metric: String,
    /// The label names.
    pub labels: BTreeSet<String>,
}

/// Aggregation operators: they take a grouping clause.
const AGGREGATIONS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "quantile",
    "topk",
    "bottomk",
    "limitk",
    "limit_ratio",
];

/// Aggregations that keep each input series' labels instead of reducing
/// them to the grouping labels.
const KEEP_LABELS: &[&str] = &["topk", "bottomk", "limitk", "limit_ratio"];

/// Names that make labels or match series on them: the labels they need
/// depend on more than the selected metric, so they are refused.
const UNSUPPORTED: &[&str] = &[
    "label_replace",
    "label_join",
    "count_values",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// Names that are neither a metric nor a call.
const KEYWORDS: &[&str] = &[
    "and", "or", "unless", "bool", "offset", "atan2", "inf", "nan",
];

/// A `by (...)` or `without (...)` clause.
#[derive(Debug, Clone)]
enum Grouping {
    By(Vec<String>),
    Without(Vec<String>),
}

/// A parenthesised group: a call's arguments or a plain sub-expression.
#[derive(Debug, Default)]
struct Group {
    /// The aggregation whose argument this is.
    aggregation: Option<String>,
    /// Its grouping clause.
    grouping: Option<Grouping>,
    /// Whether these are `histogram_quantile`'s arguments.
    quantile: bool,
}

impl Group {
    /// Whether series leave this group with their `le` label.
    fn keeps_le(&self) -> bool {
        match (&self.aggregation, &self.grouping) {
            (None, _) => true,
            (Some(name), _) if KEEP_LABELS.contains(&name.as_str()) => true,
            (Some(_), Some(Grouping::By(labels))) => labels.iter().any(|l| l == "le"),
            (Some(_), Some(Grouping::Without(labels))) => !labels.iter().any(|l| l == "le"),
            (Some(_), None) => false,
        }
    }
}

/// A metric found in the walk: its name, its matchers' labels, and the
/// groups around it (outermost first).
type Found = (String, Vec<String>, Vec<usize>);

/// The metrics `expr` selects, each with the labels it needs.
///
/// # Errors
///
/// A message if `expr` does not parse, or uses a construct the check does
/// not follow (see the module docs), or a `histogram_quantile` whose input
/// has lost `le`.
pub fn selectors(expr: &str) -> Result<Vec<Selector>, String> {
    let tokens = lex::tokens(expr)?;
    let (found, groups) = walk(&tokens)?;
    found
        .into_iter()
        .map(|(metric, matchers, around)| {
            let mut labels: BTreeSet<String> = matchers.into_iter().collect();
            let mut in_quantile = false;
            for group in around.iter().filter_map(|id| groups.get(*id)) {
                if let Some(Grouping::By(names) | Grouping::Without(names)) = &group.grouping {
                    labels.extend(names.iter().cloned());
                }
                if in_quantile && !group.keeps_le() {
                    return Err(format!(
                        "histogram_quantile over {metric}: an aggregation inside drops `le`"
                    ));
                }
                if group.quantile {
                    in_quantile = true;
                    labels.insert("le".to_owned());
                }
            }
            Ok(Selector { metric, labels })
        })
        .collect()
}

/// The selectors of a Grafana variable query `label_values(metric{...},
/// label)`: the metric needs `label` too.
///
/// # Errors
///
/// A message if `query` is not of that form (the metric-less
/// `label_values(label)` included: it names no metric to check).
pub fn label_values(query: &str) -> Result<Vec<Selector>, String> {
    let not_supported = || format!("not a label_values(metric, label) query: {query}");
    let inner = query
        .trim()
        .strip_prefix("label_values(")
        .and_then(|q| q.strip_suffix(')'))
        .ok_or_else(not_supported)?;
    // The label name holds no comma, so the last one separates it.
    let (expr, label) = inner.rsplit_once(',').ok_or_else(not_supported)?;
    let label = label.trim();
    // Grafana takes a bare selector there, not an expression.
    let bare = matches!(
        lex::tokens(expr)?.as_slice(),
        [Token::Ident(_)] | [Token::Ident(_), Token::Matchers(_)]
    );
    let mut found = selectors(expr)?;
    match (found.as_mut_slice(), lex::tokens(label)?.as_slice()) {
        ([selector], [Token::Ident(_)]) if bare => {
            selector.labels.insert(label.to_owned());
            Ok(found)
        }
        _ => Err(not_supported()),
    }
}

/// One pass over the tokens: the metrics, and the groups around them.
fn walk(tokens: &[Token]) -> Result<(Vec<Found>, Vec<Group>), String> {
    let mut groups: Vec<Group> = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    let mut found: Vec<Found> = Vec::new();
    // `sum by (l)` waiting for its `(`.
    let mut pending: Option<(String, Grouping)> = None;
    // The group the previous token closed, for `sum (x) by (l)`.
    let mut closed: Option<usize> = None;
    let mut i = 0;
    while let Some(token) = tokens.get(i) {
        let previous = i.checked_sub(1).and_then(|p| tokens.get(p));
        let next = tokens.get(i + 1);
        let just_closed = closed.take();
        match token {
            Token::Ident(name) if name == "by" || name == "without" => {
                let (names, after) = label_list(tokens, i + 1)?;
                let grouping = if name == "by" {
                    Grouping::By(names)
                } else {
                    Grouping::Without(names)
                };
                match (previous, just_closed.and_then(|id| groups.get_mut(id))) {
                    (Some(Token::Ident(agg)), _) if AGGREGATIONS.contains(&agg.as_str()) => {
                        pending = Some((agg.clone(), grouping));
                    }
                    (Some(Token::Close), Some(group)) if group.aggregation.is_some() => {
                        group.grouping = Some(grouping);
                    }
                    _ => return Err(format!("`{name}` not after an aggregation")),
                }
                i = after;
                continue;
            }
            Token::Ident(name) if UNSUPPORTED.contains(&name.as_str()) => {
                return Err(format!(
                    "`{name}` makes or matches labels this check does not follow"
                ));
            }
            Token::Ident(name) if KEYWORDS.contains(&name.as_str()) => {}
            // A call: its arguments open next.
            Token::Ident(_) if next == Some(&Token::Open) => {}
            Token::Ident(name) if AGGREGATIONS.contains(&name.as_str()) => {
                // `sum by (l) (...)`: the clause comes first.
                let clause = matches!(next, Some(Token::Ident(k)) if k == "by" || k == "without");
                if !clause {
                    return Err(format!("`{name}` without its argument"));
                }
            }
            Token::Ident(metric) => {
                let matchers = match next {
                    Some(Token::Matchers(labels)) => {
                        i += 1;
                        labels.clone()
                    }
                    _ => Vec::new(),
                };
                found.push((metric.clone(), matchers, open.clone()));
            }
            Token::Matchers(_) => return Err("a selector without a metric name".into()),
            Token::Open => {
                let caller = match previous {
                    Some(Token::Ident(name)) => Some(name.as_str()),
                    _ => None,
                };
                let mut group = Group {
                    quantile: caller == Some("histogram_quantile"),
                    ..Group::default()
                };
                if let Some((agg, grouping)) = pending.take() {
                    group.aggregation = Some(agg);
                    group.grouping = Some(grouping);
                } else if let Some(agg) = caller.filter(|c| AGGREGATIONS.contains(c)) {
                    group.aggregation = Some(agg.to_owned());
                }
                open.push(groups.len());
                groups.push(group);
            }
            Token::Close => closed = Some(open.pop().ok_or("unbalanced `)`")?),
            Token::Number | Token::Str | Token::Range | Token::Comma | Token::Operator => {}
        }
        i += 1;
    }
    if !open.is_empty() || pending.is_some() {
        return Err("unclosed `(`".into());
    }
    Ok((found, groups))
}

/// Reads `(a, b, ...)` from `start`: the names, and the index past `)`.
fn label_list(tokens: &[Token], start: usize) -> Result<(Vec<String>, usize), String> {
    if tokens.get(start) != Some(&Token::Open) {
        return Err("`(` expected after `by`/`without`".into());
    }
    let mut names: Vec<String> = Vec::new();
    let mut i = start + 1;
    // Names and commas alternate; a trailing comma is allowed.
    let mut after_name = false;
    loop {
        match tokens.get(i) {
            Some(Token::Close) => return Ok((names, i + 1)),
            Some(Token::Ident(name)) if !after_name => names.push(name.clone()),
            Some(Token::Comma) if after_name => {}
            other => return Err(format!("unexpected {other:?} in a grouping clause")),
        }
        after_name = !after_name;
        i += 1;
    }
}
