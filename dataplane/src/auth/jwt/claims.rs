//! What an accepted token's claims become: the caller's [`Principal`]
//! and the headers the provider copies them into.

use super::Provider;
use crate::context::Principal;
use serde_json::{Map, Value};
use std::sync::Arc;

/// The claim `name`: a top-level claim of that exact name (names like
/// `https://example.com/roles` hold dots), else a path through objects.
pub(crate) fn claim<'c>(claims: &'c Map<String, Value>, name: &str) -> Option<&'c Value> {
    if let Some(value) = claims.get(name) {
        return Some(value);
    }
    let mut path = name.split('.');
    let first = claims.get(path.next()?)?;
    path.try_fold(first, |value, key| value.as_object()?.get(key))
}

/// A claim as header text: strings as they are, numbers and booleans
/// printed, objects and arrays as JSON; `null` is no header.
pub(super) fn header_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(text) => Some(text.clone()),
        Value::Bool(_) | Value::Number(_) => Some(value.to_string()),
        Value::Array(_) | Value::Object(_) => serde_json::to_string(value).ok(),
    }
}

pub(super) fn principal(provider: &Provider, claims: Arc<Map<String, Value>>) -> Principal {
    Principal {
        method: "jwt",
        provider: Some(provider.name.clone()),
        subject: claims
            .get("sub")
            .and_then(Value::as_str)
            .map(str::to_string),
        consumer: None,
        scopes: scopes(&claims),
        claims: Some(claims),
    }
}

/// Granted scopes: `scope` (space separated, RFC 8693), else `scp` (an
/// array, or a space-separated string as some providers send).
pub(super) fn scopes(claims: &Map<String, Value>) -> Vec<String> {
    match claims.get("scope").or_else(|| claims.get("scp")) {
        Some(Value::String(text)) => text.split_whitespace().map(str::to_string).collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}
