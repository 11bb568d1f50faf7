//! Reading a Prometheus `/metrics` page in tests: [`parse`] and [`Scrape`].
//!
//! Tollgate serves its metrics in the Prometheus text exposition format
//! (version 0.0.4). Tests parse the page and ask for one series' value, a
//! histogram's buckets, or how many series a prefix has (cardinality).
//! [`promql`] checks that a dashboard query's labels are on its metrics.
//!
//! The parser is written here, strict, rather than taken from crates.io:
//! `prometheus-parse` 0.2 splits label values at `,` and `=` and keeps
//! escapes undecoded, `prom_text_format_parser` 0.1 (one release, on
//! winnow 0.5) keeps escapes undecoded too, and `openmetrics-parser` is
//! LGPL. Tests must see `path="/a,b"` and `msg="say \"hi\""` exactly as
//! the gateway meant them, and a malformed page must fail the test rather
//! than lose lines. So [`parse`] rejects what Prometheus' own parser
//! rejects: bad syntax, a `TYPE` after its samples, a second `TYPE` or
//! `HELP`, a repeated series or label, a histogram without `le="+Inf"` or
//! with decreasing buckets or a `_count` that differs from `+Inf`.

use std::collections::{BTreeMap, BTreeSet};

mod parse;
pub mod promql;

pub use parse::parse;
use parse::parse_float;

/// The labels of one series, by name.
pub type Labels = BTreeMap<String, String>;

/// One sample line: a series and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The sample's name (`x_bucket` for a bucket of histogram `x`).
    pub name: String,
    /// Its labels, unescaped.
    pub labels: Labels,
    /// Its value (`NaN` and `±Inf` included).
    pub value: f64,
    /// Its timestamp in milliseconds since the epoch, if the line had one.
    pub timestamp_ms: Option<i64>,
}

/// A metric family's declared type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    /// `# TYPE x counter`.
    Counter,
    /// `# TYPE x gauge`.
    Gauge,
    /// `# TYPE x histogram`: samples `x_bucket{le}`, `x_sum`, `x_count`.
    Histogram,
    /// `# TYPE x summary`: samples `x{quantile}`, `x_sum`, `x_count`.
    Summary,
    /// `# TYPE x untyped`, or no `TYPE` line.
    Untyped,
}

/// A metric family: its `TYPE` and `HELP`.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// The family name (`x` for histogram `x`).
    pub name: String,
    /// The declared type.
    pub kind: MetricType,
    /// The `HELP` text, unescaped, if any.
    pub help: Option<String>,
}

/// A histogram series read back from its `_bucket`, `_sum` and `_count`.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// The series' labels, without `le`.
    pub labels: Labels,
    /// `(le, cumulative count)` by increasing `le`, ending at `+Inf`.
    pub buckets: Vec<(f64, f64)>,
    /// The `_sum` sample, if present.
    pub sum: Option<f64>,
    /// The `_count` sample, if present.
    pub count: Option<f64>,
}

impl Histogram {
    /// The cumulative count of the bucket with this `le`, if there is one.
    pub fn bucket(&self, le: f64) -> Option<f64> {
        self.buckets
            .iter()
            .find(|(bound, _)| *bound == le)
            .map(|(_, count)| *count)
    }
}

/// Why a page did not parse; `line` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ParseError {
    /// The offending line (0 for a check over the whole page).
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

/// A parsed `/metrics` page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scrape {
    samples: Vec<Sample>,
    families: BTreeMap<String, Family>,
}

impl Scrape {
    /// Every sample, in page order.
    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    /// The family named `name` (declared by `TYPE` or `HELP`).
    pub fn family(&self, name: &str) -> Option<&Family> {
        self.families.get(name)
    }

    /// The samples named exactly `name`, in page order.
    pub fn series(&self, name: &str) -> Vec<&Sample> {
        self.samples.iter().filter(|s| s.name == name).collect()
    }

    /// The value of the one sample named `name` whose labels include every
    /// `(label, value)` given; `None` if no sample or several match (add a
    /// label to pick one, or use [`Scrape::sum`]).
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut matching = self.matching(name, labels);
        let first = matching.next()?;
        matching.next().is_none().then_some(first.value)
    }

    /// The sum of the samples named `name` whose labels include every
    /// `(label, value)` given (0 when none match).
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).map(|s| s.value).sum()
    }

    /// How many series have a name starting with `prefix`: the cardinality
    /// of a metric (`x_bucket`, `x_sum` and `x_count` all count).
    pub fn count_series(&self, prefix: &str) -> usize {
        self.samples
            .iter()
            .filter(|s| s.name.starts_with(prefix))
            .count()
    }

    /// The distinct sample names, sorted.
    pub fn names(&self) -> BTreeSet<&str> {
        self.samples.iter().map(|s| s.name.as_str()).collect()
    }

    /// Every series of histogram `name` whose labels include every
    /// `(label, value)` given.
    pub fn histograms(&self, name: &str, labels: &[(&str, &str)]) -> Vec<Histogram> {
        let mut by_labels: BTreeMap<Labels, Vec<(f64, f64)>> = BTreeMap::new();
        for sample in self.matching(&format!("{name}_bucket"), labels) {
            let mut rest = sample.labels.clone();
            let le = rest.remove("le").and_then(|le| parse_float(&le));
            if let Some(le) = le {
                by_labels.entry(rest).or_default().push((le, sample.value));
            }
        }
        by_labels
            .into_iter()
            .map(|(labels, mut buckets)| {
                buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
                let exact = |suffix: &str| {
                    self.samples
                        .iter()
                        .find(|s| s.name == format!("{name}{suffix}") && s.labels == labels)
                        .map(|s| s.value)
                };
                Histogram {
                    sum: exact("_sum"),
                    count: exact("_count"),
                    labels,
                    buckets,
                }
            })
            .collect()
    }

    /// The one series of histogram `name` whose labels include every
    /// `(label, value)` given; `None` if none or several match.
    pub fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Option<Histogram> {
        let mut all = self.histograms(name, labels);
        (all.len() == 1).then(|| all.pop()).flatten()
    }

    fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> {
        self.samples.iter().filter(move |s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
    }
}
