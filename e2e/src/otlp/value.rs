//! OTLP attribute values as test-friendly data.
//!
//! OTLP carries attributes as `KeyValue` lists of `AnyValue`s, ids as raw
//! bytes and the producer as a resource plus an instrumentation scope. The
//! flattened [`Span`](super::Span), [`MetricPoint`](super::MetricPoint) and
//! [`LogRecord`](super::LogRecord) carry them in the shapes defined here, so
//! a test writes `span.attributes["http.route"] == json!("/a")`.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use serde_json::{Number, Value};

/// Attributes by key, each value as JSON (see [`to_json`] for the mapping).
pub type Attributes = BTreeMap<String, Value>;

/// Which transport carried an export request to the receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP with a binary protobuf body.
    HttpProtobuf,
}

/// Who produced a span, data point or log record: its resource and its
/// instrumentation scope, shared by every item of one scope in a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Origin {
    /// The transport that carried it.
    pub protocol: Protocol,
    /// The resource attributes (`service.name` and friends).
    pub resource: Attributes,
    /// The instrumentation scope's name (the tracer's or meter's name).
    pub scope: String,
    /// The instrumentation scope's version, empty when not set.
    pub scope_version: String,
}

impl Origin {
    /// The origin of the items of one resource and one scope.
    pub(crate) fn new(
        protocol: Protocol,
        resource: Option<&Resource>,
        scope: Option<&InstrumentationScope>,
    ) -> Self {
        Self {
            protocol,
            resource: resource
                .map(|r| attributes(&r.attributes))
                .unwrap_or_default(),
            scope: scope.map(|s| s.name.clone()).unwrap_or_default(),
            scope_version: scope.map(|s| s.version.clone()).unwrap_or_default(),
        }
    }

    /// The `service.name` resource attribute, if it is a string.
    pub fn service_name(&self) -> Option<&str> {
        self.resource.get("service.name").and_then(Value::as_str)
    }
}

/// A `KeyValue` list as [`Attributes`]; a repeated key keeps its last value.
pub(crate) fn attributes(list: &[KeyValue]) -> Attributes {
    list.iter()
        .map(|kv| {
            (
                kv.key.clone(),
                kv.value.as_ref().map(to_json).unwrap_or(Value::Null),
            )
        })
        .collect()
}

/// One `AnyValue` as JSON.
///
/// Strings, booleans, arrays and key-value lists map to their JSON
/// counterparts; an int is a JSON integer and a double a JSON float (so
/// `json!(3)` and `json!(3.0)` stay distinct); a non-finite double becomes
/// the string `NaN`, `inf` or `-inf`; bytes become a lowercase hex string;
/// an empty `AnyValue` is `null`; a profiles string-table index (meaningless
/// outside a profile) is `{"string_value_strindex": n}`.
pub fn to_json(value: &AnyValue) -> Value {
    match &value.value {
        None => Value::Null,
        Some(any_value::Value::StringValue(s)) => Value::String(s.clone()),
        Some(any_value::Value::BoolValue(b)) => Value::Bool(*b),
        Some(any_value::Value::IntValue(i)) => Value::Number(Number::from(*i)),
        Some(any_value::Value::DoubleValue(d)) => Number::from_f64(*d)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(d.to_string())),
        Some(any_value::Value::BytesValue(bytes)) => Value::String(hex(bytes)),
        // An index into a profiles dictionary this receiver never sees.
        Some(any_value::Value::StringValueStrindex(index)) => {
            serde_json::json!({ "string_value_strindex": index })
        }
        Some(any_value::Value::ArrayValue(array)) => {
            Value::Array(array.values.iter().map(to_json).collect())
        }
        Some(any_value::Value::KvlistValue(list)) => Value::Object(
            list.values
                .iter()
                .map(|kv| {
                    (
                        kv.key.clone(),
                        kv.value.as_ref().map(to_json).unwrap_or(Value::Null),
                    )
                })
                .collect(),
        ),
    }
}

/// Bytes as a lowercase hex string, the way trace and span ids are written.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// An id as hex, or `None` when it is empty or all zeros (OTLP's "not set").
pub(crate) fn optional_id(bytes: &[u8]) -> Option<String> {
    bytes.iter().any(|b| *b != 0).then(|| hex(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};
    use serde_json::json;

    fn any(value: any_value::Value) -> AnyValue {
        AnyValue { value: Some(value) }
    }

    /// Every `AnyValue` variant has one JSON form, and ints stay ints.
    #[test]
    fn any_values_map_to_json() {
        use any_value::Value as V;
        let cases = [
            (any(V::StringValue("a".into())), json!("a")),
            (any(V::BoolValue(true)), json!(true)),
            (any(V::IntValue(-3)), json!(-3)),
            (any(V::DoubleValue(0.5)), json!(0.5)),
            (any(V::DoubleValue(f64::NAN)), json!("NaN")),
            (any(V::BytesValue(vec![0x0a, 0xff])), json!("0aff")),
            (
                any(V::ArrayValue(ArrayValue {
                    values: vec![any(V::IntValue(1))],
                })),
                json!([1]),
            ),
            (
                any(V::KvlistValue(KeyValueList {
                    values: vec![KeyValue {
                        key: "k".into(),
                        value: Some(any(V::BoolValue(false))),
                        ..KeyValue::default()
                    }],
                })),
                json!({"k": false}),
            ),
            (AnyValue { value: None }, json!(null)),
        ];
        for (value, expected) in cases {
            assert_eq!(to_json(&value), expected, "{value:?}");
        }
        assert_ne!(to_json(&any(V::IntValue(3))), json!(3.0));
    }

    /// Absent ids are empty or all-zero byte strings.
    #[test]
    fn ids_are_hex_or_absent() {
        assert_eq!(optional_id(&[0, 0]), None);
        assert_eq!(optional_id(&[]), None);
        assert_eq!(optional_id(&[0, 1, 0xab]).as_deref(), Some("0001ab"));
    }
}
