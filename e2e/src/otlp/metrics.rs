//! Received metric exports, flattened to one [`MetricPoint`] per data point.
//!
//! OTLP nests data points under resource, scope and metric, with a
//! different point type per metric kind. Tests ask "what is the value of
//! metric X with attributes Y", so each point carries its metric's name,
//! kind and origin, and a [`PointValue`] that holds the number or the
//! histogram.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
pub use opentelemetry_proto::tonic::metrics::v1::AggregationTemporality;
use opentelemetry_proto::tonic::metrics::v1::{
    self as proto, exponential_histogram_data_point::Buckets, metric::Data, number_data_point,
};

use super::value::{Attributes, Origin, Protocol, attributes};

/// One received data point of one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPoint {
    /// Its resource, scope and transport.
    pub origin: Origin,
    /// The metric name.
    pub name: String,
    /// The metric description, empty when not set.
    pub description: String,
    /// The metric unit, empty when not set.
    pub unit: String,
    /// Gauge, sum, histogram, ...
    pub kind: MetricKind,
    /// Whether a sum only goes up (always `false` for other kinds).
    pub monotonic: bool,
    /// Cumulative or delta (unspecified for gauges).
    pub temporality: AggregationTemporality,
    /// The data point's attributes.
    pub attributes: Attributes,
    /// Start of the aggregation window, nanoseconds since the Unix epoch.
    pub start_time_unix_nano: u64,
    /// When the point was recorded, nanoseconds since the Unix epoch.
    pub time_unix_nano: u64,
    /// The value.
    pub value: PointValue,
}

/// The OTLP metric kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// A last-value gauge.
    Gauge,
    /// A sum: a counter when monotonic, an up-down counter otherwise.
    Sum,
    /// An explicit-bucket histogram.
    Histogram,
    /// A base-2 exponential histogram.
    ExponentialHistogram,
    /// A summary with quantiles.
    Summary,
}

/// A data point's value.
#[derive(Debug, Clone, PartialEq)]
pub enum PointValue {
    /// An integer gauge or sum.
    Int(i64),
    /// A floating-point gauge or sum.
    Double(f64),
    /// An explicit-bucket histogram.
    Histogram(Histogram),
    /// An exponential histogram.
    ExponentialHistogram(ExponentialHistogram),
    /// A summary.
    Summary(Summary),
}

/// An explicit-bucket histogram point.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// How many values were recorded.
    pub count: u64,
    /// Their sum, if recorded.
    pub sum: Option<f64>,
    /// The smallest value, if recorded.
    pub min: Option<f64>,
    /// The largest value, if recorded.
    pub max: Option<f64>,
    /// The buckets in order; counts are per bucket, not cumulative, and the
    /// last bucket's upper bound is `f64::INFINITY`.
    pub buckets: Vec<Bucket>,
}

/// One histogram bucket: values in (previous bound, `upper_bound`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// The inclusive upper bound.
    pub upper_bound: f64,
    /// How many values fell in this bucket alone.
    pub count: u64,
}

/// An exponential histogram point, as sent.
#[derive(Debug, Clone, PartialEq)]
pub struct ExponentialHistogram {
    /// How many values were recorded.
    pub count: u64,
    /// Their sum, if recorded.
    pub sum: Option<f64>,
    /// The resolution: bucket bounds are powers of `2^(2^-scale)`.
    pub scale: i32,
    /// How many values were (about) zero.
    pub zero_count: u64,
    /// Index of the first positive bucket.
    pub positive_offset: i32,
    /// Counts of the positive buckets.
    pub positive_counts: Vec<u64>,
    /// Index of the first negative bucket.
    pub negative_offset: i32,
    /// Counts of the negative buckets.
    pub negative_counts: Vec<u64>,
}

/// A summary point.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// How many values were recorded.
    pub count: u64,
    /// Their sum.
    pub sum: f64,
    /// `(quantile, value)` pairs.
    pub quantiles: Vec<(f64, f64)>,
}

impl PointValue {
    /// The number of a gauge or sum point, `None` for distributions.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            // Test values are small; the cast is exact below 2^53.
            #[allow(clippy::cast_precision_loss)]
            Self::Int(i) => Some(*i as f64),
            Self::Double(d) => Some(*d),
            _ => None,
        }
    }

    /// The histogram of a histogram point.
    pub fn as_histogram(&self) -> Option<&Histogram> {
        match self {
            Self::Histogram(h) => Some(h),
            _ => None,
        }
    }
}

impl Histogram {
    /// How many values were at most `upper_bound` (the cumulative count of
    /// Prometheus' `le` bucket); `None` if no bucket has that bound.
    pub fn cumulative(&self, upper_bound: f64) -> Option<u64> {
        let index = self
            .buckets
            .iter()
            .position(|b| b.upper_bound == upper_bound)?;
        Some(self.buckets.iter().take(index + 1).map(|b| b.count).sum())
    }
}

/// The data points of one request, in the order they were sent.
pub(crate) fn flatten(
    protocol: Protocol,
    request: &ExportMetricsServiceRequest,
) -> Vec<MetricPoint> {
    let mut out = Vec::new();
    for resource_metrics in &request.resource_metrics {
        for scope_metrics in &resource_metrics.scope_metrics {
            let origin = Origin::new(
                protocol,
                resource_metrics.resource.as_ref(),
                scope_metrics.scope.as_ref(),
            );
            for metric in &scope_metrics.metrics {
                flatten_metric(&origin, metric, &mut out);
            }
        }
    }
    out
}

/// What every point of one metric shares.
struct Shape {
    kind: MetricKind,
    monotonic: bool,
    temporality: i32,
}

fn flatten_metric(origin: &Origin, metric: &proto::Metric, out: &mut Vec<MetricPoint>) {
    let point = |shape: &Shape, attrs, start, time, value| MetricPoint {
        origin: origin.clone(),
        name: metric.name.clone(),
        description: metric.description.clone(),
        unit: metric.unit.clone(),
        kind: shape.kind,
        monotonic: shape.monotonic,
        temporality: AggregationTemporality::try_from(shape.temporality)
            .unwrap_or(AggregationTemporality::Unspecified),
        attributes: attributes(attrs),
        start_time_unix_nano: start,
        time_unix_nano: time,
        value,
    };
    let shape = |kind, monotonic, temporality| Shape {
        kind,
        monotonic,
        temporality,
    };
    match &metric.data {
        None => {}
        Some(Data::Gauge(gauge)) => {
            let s = shape(MetricKind::Gauge, false, 0);
            out.extend(gauge.data_points.iter().map(|p| {
                point(
                    &s,
                    &p.attributes,
                    p.start_time_unix_nano,
                    p.time_unix_nano,
                    number(p),
                )
            }));
        }
        Some(Data::Sum(sum)) => {
            let s = shape(
                MetricKind::Sum,
                sum.is_monotonic,
                sum.aggregation_temporality,
            );
            out.extend(sum.data_points.iter().map(|p| {
                point(
                    &s,
                    &p.attributes,
                    p.start_time_unix_nano,
                    p.time_unix_nano,
                    number(p),
                )
            }));
        }
        Some(Data::Histogram(histogram)) => {
            let s = shape(
                MetricKind::Histogram,
                false,
                histogram.aggregation_temporality,
            );
            out.extend(histogram.data_points.iter().map(|p| {
                let value = PointValue::Histogram(explicit_histogram(p));
                point(
                    &s,
                    &p.attributes,
                    p.start_time_unix_nano,
                    p.time_unix_nano,
                    value,
                )
            }));
        }
        Some(Data::ExponentialHistogram(histogram)) => {
            let s = shape(
                MetricKind::ExponentialHistogram,
                false,
                histogram.aggregation_temporality,
            );
            out.extend(histogram.data_points.iter().map(|p| {
                let value = PointValue::ExponentialHistogram(exponential_histogram(p));
                point(
                    &s,
                    &p.attributes,
                    p.start_time_unix_nano,
                    p.time_unix_nano,
                    value,
                )
            }));
        }
        Some(Data::Summary(summary)) => {
            let s = shape(MetricKind::Summary, false, 0);
            out.extend(summary.data_points.iter().map(|p| {
                let value = PointValue::Summary(Summary {
                    count: p.count,
                    sum: p.sum,
                    quantiles: p
                        .quantile_values
                        .iter()
                        .map(|q| (q.quantile, q.value))
                        .collect(),
                });
                point(
                    &s,
                    &p.attributes,
                    p.start_time_unix_nano,
                    p.time_unix_nano,
                    value,
                )
            }));
        }
    }
}

fn number(point: &proto::NumberDataPoint) -> PointValue {
    match point.value {
        Some(number_data_point::Value::AsInt(i)) => PointValue::Int(i),
        Some(number_data_point::Value::AsDouble(d)) => PointValue::Double(d),
        // A point without a value is malformed; NaN makes any assertion on it fail.
        None => PointValue::Double(f64::NAN),
    }
}

/// OTLP sends n bounds and n + 1 counts; the last count is the +Inf bucket.
fn explicit_histogram(point: &proto::HistogramDataPoint) -> Histogram {
    let bounds = point
        .explicit_bounds
        .iter()
        .copied()
        .chain(std::iter::once(f64::INFINITY));
    Histogram {
        count: point.count,
        sum: point.sum,
        min: point.min,
        max: point.max,
        buckets: bounds
            .zip(point.bucket_counts.iter())
            .map(|(upper_bound, count)| Bucket {
                upper_bound,
                count: *count,
            })
            .collect(),
    }
}

fn exponential_histogram(point: &proto::ExponentialHistogramDataPoint) -> ExponentialHistogram {
    let side = |buckets: Option<&Buckets>| {
        buckets
            .map(|b| (b.offset, b.bucket_counts.clone()))
            .unwrap_or_default()
    };
    let (positive_offset, positive_counts) = side(point.positive.as_ref());
    let (negative_offset, negative_counts) = side(point.negative.as_ref());
    ExponentialHistogram {
        count: point.count,
        sum: point.sum,
        scale: point.scale,
        zero_count: point.zero_count,
        positive_offset,
        positive_counts,
        negative_offset,
        negative_counts,
    }
}
