//! What a scrape offers a query: each sample name's label names.

use std::collections::{BTreeMap, BTreeSet};

use super::Selector;
use crate::prometheus::Scrape;

/// Labels every stored series has although no `/metrics` page shows them:
/// the metric name itself, and the target labels Prometheus adds at
/// scrape time.
const IMPLICIT: &[&str] = &["__name__", "job", "instance"];

/// The label names each sample name carries, over one or more scrapes.
///
/// Keyed by sample name, not family: `x_bucket` has `le`, `x_count` does
/// not, and a counter is only ever selected as `y_total`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exported {
    labels: BTreeMap<String, BTreeSet<String>>,
}

/// Why a [`Selector`] would select nothing, or lose a label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    /// No sample has this name.
    #[error("{metric} is not exported")]
    NoMetric {
        /// The sample name.
        metric: String,
    },
    /// No series of the metric carries this label.
    #[error("{metric} has no label {label} (its series carry: {carried})")]
    NoLabel {
        /// The sample name.
        metric: String,
        /// The label the query needs.
        label: String,
        /// The labels its series do carry, comma-separated.
        carried: String,
    },
}

impl Exported {
    /// The sample names and their labels in `scrapes` (a union: a label
    /// counts if any series of the name has it).
    pub fn new<'a>(scrapes: impl IntoIterator<Item = &'a Scrape>) -> Exported {
        let mut labels: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for sample in scrapes.into_iter().flat_map(Scrape::samples) {
            labels
                .entry(sample.name.clone())
                .or_default()
                .extend(sample.labels.keys().cloned());
        }
        Exported { labels }
    }

    /// What `selector` needs that no series offers; empty if all is there.
    pub fn check(&self, selector: &Selector) -> Vec<Mismatch> {
        let metric = &selector.metric;
        let Some(carried) = self.labels.get(metric) else {
            return vec![Mismatch::NoMetric {
                metric: metric.clone(),
            }];
        };
        selector
            .labels
            .iter()
            .filter(|label| !carried.contains(*label) && !IMPLICIT.contains(&label.as_str()))
            .map(|label| Mismatch::NoLabel {
                metric: metric.clone(),
                label: label.clone(),
                carried: carried.iter().cloned().collect::<Vec<_>>().join(", "),
            })
            .collect()
    }
}
