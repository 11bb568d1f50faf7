//! Attribute values prepared off the request path, and the closed sets a
//! request's own values are mapped onto.
//!
//! A route's name, a backend's name and the Gateway's name become
//! `opentelemetry::Value`s once, when the runtime is built, so recording a
//! request clones reference-counted strings instead of formatting new ones.

use crate::error::ErrorKind;
use http::Method;
use opentelemetry::{KeyValue, StringValue, Value};
use std::sync::Arc;

/// Attribute values of one route rule.
#[derive(Clone, Debug)]
pub(crate) struct RouteLabels {
    /// The HTTPRoute, `namespace/name`.
    pub(crate) route: Value,
    /// The rule's index within the HTTPRoute.
    pub(crate) rule: i64,
    /// The rule's `name`, when the manifest gives one.
    pub(crate) rule_name: Option<Value>,
}

impl RouteLabels {
    /// The labels of rule `name` (`httproute/<ns>/<name>/rule/<i>`).
    pub(crate) fn new(name: &str, rule_name: Option<&str>) -> RouteLabels {
        let mut parts = name.split('/');
        let (_, ns, route, _, rule) = (
            parts.next(),
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
            parts.next(),
            parts.next().and_then(|i| i.parse().ok()).unwrap_or(0),
        );
        RouteLabels {
            route: shared(format!("{ns}/{route}")),
            rule,
            rule_name: rule_name.map(|n| shared(n.to_string())),
        }
    }
}

/// A string attribute value whose clones share one allocation.
pub(crate) fn shared(text: String) -> Value {
    Value::String(StringValue::from(Arc::<str>::from(text)))
}

/// The `http.request.method` values: the known methods, then `_OTHER`.
pub(crate) const METHODS: [&str; 10] = [
    "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "TRACE", "_OTHER",
];

/// The `url.scheme` values a listener serves, in index order.
pub(crate) const SCHEMES: [&str; 2] = ["http", "https"];

/// The index of `method`'s `http.request.method` label in [`METHODS`]:
/// the method when it is a known one, else `_OTHER`, as the semantic
/// conventions ask (a client cannot mint series).
pub(crate) fn method_index(method: &Method) -> u8 {
    match *method {
        Method::GET => 0,
        Method::POST => 1,
        Method::PUT => 2,
        Method::DELETE => 3,
        Method::HEAD => 4,
        Method::OPTIONS => 5,
        Method::PATCH => 6,
        Method::CONNECT => 7,
        Method::TRACE => 8,
        _ => 9,
    }
}

/// `network.protocol.version` of an HTTP version.
pub(crate) fn protocol_version(version: http::Version) -> &'static str {
    match version {
        http::Version::HTTP_09 => "0.9",
        http::Version::HTTP_10 => "1.0",
        http::Version::HTTP_2 => "2",
        http::Version::HTTP_3 => "3",
        _ => "1.1",
    }
}

/// A small number for an `error.type` value, for cache keys: 0 for none,
/// then the gateway's labels in order, then one for a backend's 5xx
/// (whose status is in the key already).
pub(crate) fn error_index(error: Option<&str>) -> u8 {
    match error {
        None => 0,
        Some(e) => LABELS
            .iter()
            .position(|l| *l == e)
            .map_or(u8::MAX, |i| i as u8 + 1),
    }
}

/// The gateway's own error labels (`x-tollgate-error`), one per kind.
const LABELS: [&str; ErrorKind::ALL.len()] = {
    let mut labels = [""; ErrorKind::ALL.len()];
    let mut i = 0;
    while i < labels.len() {
        labels[i] = ErrorKind::ALL[i].label();
        i += 1;
    }
    labels
};

/// Appends `key = value` when there is a value.
pub(crate) fn push_opt(attrs: &mut Vec<KeyValue>, key: &'static str, value: Option<&Value>) {
    if let Some(value) = value {
        attrs.push(KeyValue::new(key, value.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Route labels come from the source name; the rule name is optional.
    #[test]
    fn route_labels_from_the_source_name() {
        let labels = RouteLabels::new("httproute/shop/cart/rule/2", Some("checkout"));
        assert_eq!(labels.route, Value::from("shop/cart"));
        assert_eq!(labels.rule, 2);
        assert_eq!(labels.rule_name, Some(Value::from("checkout")));
    }

    /// Unknown methods collapse to `_OTHER`; unknown error labels share one index.
    #[test]
    fn closed_sets() {
        assert_eq!(METHODS[usize::from(method_index(&Method::GET))], "GET");
        let odd = Method::from_bytes(b"BREW").unwrap_or(Method::GET);
        assert_eq!(METHODS[usize::from(method_index(&odd))], "_OTHER");
        assert_eq!(error_index(None), 0);
        assert_eq!(error_index(Some("routing")), 1);
        assert_eq!(error_index(Some("made-up")), u8::MAX);
    }
}
