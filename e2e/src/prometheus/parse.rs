//! The strict line parser behind [`parse`](super::parse).
//!
//! One pass over the lines: comments declare families (`HELP`, `TYPE`),
//! every other line is a sample, read by hand (no regex) so that label
//! values may hold any character and escapes are decoded exactly as
//! Prometheus' Go parser does. Checks that need the whole page (histogram
//! buckets) run once at the end.

use std::collections::{BTreeSet, HashMap};

use super::ParseError;
use super::{Family, Labels, MetricType, Sample, Scrape};

/// Parses a page in the Prometheus text format, strictly (see the module
/// docs for what is rejected).
///
/// # Errors
///
/// [`ParseError`] naming the first offending line.
pub fn parse(text: &str) -> Result<Scrape, ParseError> {
    let mut scrape = Scrape::default();
    let mut typed: HashMap<String, MetricType> = HashMap::new();
    let mut seen_samples: BTreeSet<String> = BTreeSet::new();
    let mut series: BTreeSet<(String, Labels)> = BTreeSet::new();
    for (index, line) in text.lines().enumerate() {
        let fail = |reason: String| ParseError {
            line: index + 1,
            reason,
        };
        let line = line.trim_matches([' ', '\t']);
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment
                .trim_start_matches([' ', '\t'])
                .splitn(3, [' ', '\t']);
            let (keyword, name) = (words.next().unwrap_or_default(), words.next());
            let rest = words.next().unwrap_or_default();
            let Some(name) = name.filter(|_| keyword == "HELP" || keyword == "TYPE") else {
                continue; // an ordinary comment
            };
            if !is_metric_name(name) {
                return Err(fail(format!("invalid metric name {name:?}")));
            }
            let family = scrape
                .families
                .entry(name.to_owned())
                .or_insert_with(|| Family {
                    name: name.to_owned(),
                    kind: MetricType::Untyped,
                    help: None,
                });
            if keyword == "HELP" {
                if family.help.is_some() {
                    return Err(fail(format!("second HELP for {name}")));
                }
                family.help = Some(unescape(rest, false).map_err(fail)?);
                continue;
            }
            let kind = match rest.trim() {
                "counter" => MetricType::Counter,
                "gauge" => MetricType::Gauge,
                "histogram" => MetricType::Histogram,
                "summary" => MetricType::Summary,
                "untyped" => MetricType::Untyped,
                other => return Err(fail(format!("unknown type {other:?} for {name}"))),
            };
            if typed.insert(name.to_owned(), kind).is_some() {
                return Err(fail(format!("second TYPE for {name}")));
            }
            if seen_samples.contains(name) {
                return Err(fail(format!("TYPE for {name} after its samples")));
            }
            family.kind = kind;
            continue;
        }
        let sample = parse_sample(line).map_err(fail)?;
        seen_samples.insert(family_of(&sample.name, &typed).to_owned());
        if !series.insert((sample.name.clone(), sample.labels.clone())) {
            return Err(fail(format!(
                "repeated series {}{:?}",
                sample.name, sample.labels
            )));
        }
        scrape.samples.push(sample);
    }
    check_histograms(&scrape, &typed)?;
    Ok(scrape)
}

/// The family a sample belongs to: `x` for `x_bucket` of histogram `x`.
fn family_of<'a>(name: &'a str, typed: &HashMap<String, MetricType>) -> &'a str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            let kind = typed.get(base);
            let histogram = kind == Some(&MetricType::Histogram);
            if histogram || (kind == Some(&MetricType::Summary) && suffix != "_bucket") {
                return base;
            }
        }
    }
    name
}

fn check_histograms(
    scrape: &Scrape,
    typed: &HashMap<String, MetricType>,
) -> Result<(), ParseError> {
    let fail = |reason: String| ParseError { line: 0, reason };
    for (name, _) in typed
        .iter()
        .filter(|(_, kind)| **kind == MetricType::Histogram)
    {
        for sample in scrape.series(&format!("{name}_bucket")) {
            if sample
                .labels
                .get("le")
                .is_none_or(|le| parse_float(le).is_none())
            {
                return Err(fail(format!(
                    "{name}_bucket{:?} has no numeric le",
                    sample.labels
                )));
            }
        }
        for histogram in scrape.histograms(name, &[]) {
            let what = format!("histogram {name}{:?}", histogram.labels);
            if histogram.buckets.last().map(|b| b.0) != Some(f64::INFINITY) {
                return Err(fail(format!("{what} has no le=\"+Inf\" bucket")));
            }
            if histogram.buckets.windows(2).any(|w| w[1].1 < w[0].1) {
                return Err(fail(format!("{what} has decreasing buckets")));
            }
            let infinite = histogram.buckets.last().map(|b| b.1);
            if histogram.count.is_some() && histogram.count != infinite {
                return Err(fail(format!("{what} has _count != +Inf bucket")));
            }
        }
    }
    Ok(())
}

/// `name{label="value",...} value [timestamp]`.
fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ', '\t']).unwrap_or(line.len());
    let (name, mut rest) = line.split_at(name_end);
    if !is_metric_name(name) {
        return Err(format!("invalid metric name {name:?}"));
    }
    let mut labels = Labels::new();
    if let Some(body) = rest.strip_prefix('{') {
        rest = parse_labels(body, &mut labels)?;
    }
    let mut fields = rest.split([' ', '\t']).filter(|f| !f.is_empty());
    let value = fields.next().ok_or("missing value")?;
    let value = parse_float(value).ok_or_else(|| format!("invalid value {value:?}"))?;
    let timestamp_ms = match fields.next() {
        None => None,
        Some(t) => Some(
            t.parse::<i64>()
                .map_err(|_| format!("invalid timestamp {t:?}"))?,
        ),
    };
    if let Some(extra) = fields.next() {
        return Err(format!("unexpected {extra:?} after the timestamp"));
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
        timestamp_ms,
    })
}

/// Reads `a="x",b="y"}` (after the `{`); returns what follows the `}`.
fn parse_labels<'a>(mut rest: &'a str, labels: &mut Labels) -> Result<&'a str, String> {
    loop {
        rest = rest.trim_start_matches([' ', '\t']);
        if let Some(after) = rest.strip_prefix('}') {
            return Ok(after);
        }
        let (name, after) = rest.split_once('=').ok_or("label without '='")?;
        let name = name.trim_end_matches([' ', '\t']);
        if !is_label_name(name) {
            return Err(format!("invalid label name {name:?}"));
        }
        let after = after.trim_start_matches([' ', '\t']);
        let quoted = after
            .strip_prefix('"')
            .ok_or_else(|| format!("label {name} not quoted"))?;
        let end = closing_quote(quoted).ok_or_else(|| format!("label {name} not closed"))?;
        let value = unescape(&quoted[..end], true)?;
        if labels.insert(name.to_owned(), value).is_some() {
            return Err(format!("repeated label {name}"));
        }
        rest = quoted[end + 1..].trim_start_matches([' ', '\t']);
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if !rest.starts_with('}') {
            return Err(format!("expected ',' or '}}' after label {name}"));
        }
    }
}

/// The byte index of the first unescaped `"`.
fn closing_quote(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some(i),
            _ => {}
        }
    }
    None
}

/// Decodes `\\` and `\n` (and `\"` in label values); any other escape is an
/// error, as in Prometheus' parser.
fn unescape(s: &str, quotes: bool) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if quotes => out.push('"'),
            other => return Err(format!("invalid escape \\{}", other.unwrap_or(' '))),
        }
    }
    Ok(out)
}

/// Go's `ParseFloat` spellings as Prometheus writes them.
pub(super) fn parse_float(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        // Like Go's ParseFloat: decimal and exponent forms, inf and nan in
        // any case.
        _ => s.parse().ok(),
    }
}

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
