//! OpenAPI v3 value validation of custom resources, with the field errors
//! the real server reports: `type`, `nullable`, `required`, `enum`,
//! `pattern`, `format` is not checked, `minLength`/`maxLength`,
//! `minItems`/`maxItems`, `minProperties`/`maxProperties`,
//! `minimum`/`maximum` (and their exclusive forms), `multipleOf`,
//! `x-kubernetes-int-or-string`, `allOf`/`anyOf`/`oneOf`/`not`, and unique
//! items of `set` lists and unique keys of `map` lists.
//!
//! Messages follow `k8s.io/kube-openapi/pkg/validation` wording
//! (`spec.size in body should be greater than or equal to 1`).

use super::schema::{self, ListType};
use regex::Regex;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, PoisonError};

/// Compiled `pattern`s, shared by every server (CRD schemas repeat them).
static PATTERNS: LazyLock<Mutex<HashMap<String, Option<Regex>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn matches_pattern(pattern: &str, text: &str) -> bool {
    let mut cache = PATTERNS.lock().unwrap_or_else(PoisonError::into_inner);
    let regex = cache
        .entry(pattern.to_string())
        .or_insert_with(|| Regex::new(pattern).ok());
    // A pattern this engine cannot compile is not held against the object.
    regex.as_ref().is_none_or(|r| r.is_match(text))
}

/// The field errors of `value` against `schema` (empty when valid).
pub(crate) fn validate(value: &Value, schema: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check(value, schema, "", &mut errors);
    errors
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_ok(value: &Value, want: &str) -> bool {
    match (want, value) {
        ("number", Value::Number(_)) => true,
        (want, v) => type_name(v) == want,
    }
}

fn shown(path: &str) -> &str {
    if path.is_empty() { "<root>" } else { path }
}

fn check(value: &Value, schema: &Value, path: &str, errors: &mut Vec<String>) {
    let at = shown(path);
    let int_or_string = schema.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
    if value.is_null() {
        if schema.get("nullable") != Some(&Value::Bool(true)) && schema.get("type").is_some() {
            errors.push(format!(
                "{at}: Invalid value: \"null\": {at} in body must be of type {}: \"null\"",
                schema["type"].as_str().unwrap_or_default()
            ));
        }
        return;
    }
    if let Some(want) = schema.get("type").and_then(Value::as_str)
        && !int_or_string
        && !type_ok(value, want)
    {
        let got = type_name(value);
        errors.push(format!(
            "{at}: Invalid value: \"{got}\": {at} in body must be of type {want}: \"{got}\""
        ));
        return;
    }
    if int_or_string && !matches!(type_name(value), "integer" | "string") {
        errors.push(format!(
            "{at}: Invalid value: \"{}\": {at} in body must be of type int-or-string",
            type_name(value)
        ));
        return;
    }
    check_enum(value, schema, at, errors);
    match value {
        Value::String(s) => check_string(s, schema, at, errors),
        Value::Number(n) => check_number(n.as_f64().unwrap_or_default(), value, schema, at, errors),
        Value::Array(items) => check_array(items, schema, path, errors),
        Value::Object(map) => check_object(map, schema, path, errors),
        _ => {}
    }
    check_combinators(value, schema, path, errors);
}

fn check_enum(value: &Value, schema: &Value, at: &str, errors: &mut Vec<String>) {
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
        errors.push(format!(
            "{at}: Unsupported value: {value}: supported values: {}",
            list.join(", ")
        ));
    }
}

fn check_string(s: &str, schema: &Value, at: &str, errors: &mut Vec<String>) {
    let len = s.chars().count() as u64;
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
        && len > max
    {
        errors.push(format!("{at}: Too long: may not be more than {max} bytes"));
    }
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
        && len < min
    {
        errors.push(format!(
            "{at}: Invalid value: \"{s}\": {at} in body should be at least {min} chars long"
        ));
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
        && !matches_pattern(pattern, s)
    {
        errors.push(format!(
            "{at}: Invalid value: \"{s}\": {at} in body should match '{pattern}'"
        ));
    }
}

fn check_number(n: f64, value: &Value, schema: &Value, at: &str, errors: &mut Vec<String>) {
    let flag = |k: &str| schema.get(k) == Some(&Value::Bool(true));
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
        let (bad, word) = match flag("exclusiveMinimum") {
            true => (n <= min, "greater than"),
            false => (n < min, "greater than or equal to"),
        };
        if bad {
            errors.push(format!(
                "{at}: Invalid value: {value}: {at} in body should be {word} {}",
                schema["minimum"]
            ));
        }
    }
    if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
        let (bad, word) = match flag("exclusiveMaximum") {
            true => (n >= max, "less than"),
            false => (n > max, "less than or equal to"),
        };
        if bad {
            errors.push(format!(
                "{at}: Invalid value: {value}: {at} in body should be {word} {}",
                schema["maximum"]
            ));
        }
    }
    if let Some(m) = schema.get("multipleOf").and_then(Value::as_f64)
        && m != 0.0
        && (n / m).fract() != 0.0
    {
        errors.push(format!(
            "{at}: Invalid value: {value}: {at} in body should be a multiple of {}",
            schema["multipleOf"]
        ));
    }
}

fn check_array(items: &[Value], schema: &Value, path: &str, errors: &mut Vec<String>) {
    let at = shown(path);
    let n = items.len() as u64;
    if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
        && n > max
    {
        errors.push(format!(
            "{at}: Too many: {n}: must have at most {max} items"
        ));
    }
    if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
        && n < min
    {
        errors.push(format!(
            "{at}: Invalid value: {n}: {at} in body should have at least {min} items"
        ));
    }
    let list_type = schema::list_type(Some(schema));
    let mut seen: Vec<Value> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let key = match &list_type {
            ListType::Atomic => None,
            ListType::Set => Some(item.clone()),
            ListType::Map(keys) => Some(Value::Array(
                keys.iter()
                    .map(|k| item.get(k).cloned().unwrap_or(Value::Null))
                    .collect(),
            )),
        };
        if let Some(key) = key {
            if seen.contains(&key) {
                errors.push(format!("{path}[{i}]: Duplicate value: {key}"));
            }
            seen.push(key);
        }
        if let Some(item_schema) = schema.get("items") {
            check(item, item_schema, &format!("{path}[{i}]"), errors);
        }
    }
}

fn check_object(
    map: &serde_json::Map<String, Value>,
    schema: &Value,
    path: &str,
    errors: &mut Vec<String>,
) {
    let at = shown(path);
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    for required in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(key) = required.as_str()
            && !map.contains_key(key)
        {
            errors.push(format!("{}: Required value", join(key)));
        }
    }
    let n = map.len() as u64;
    if let Some(max) = schema.get("maxProperties").and_then(Value::as_u64)
        && n > max
    {
        errors.push(format!(
            "{at}: Too many: {n}: must have at most {max} items"
        ));
    }
    if let Some(min) = schema.get("minProperties").and_then(Value::as_u64)
        && n < min
    {
        errors.push(format!(
            "{at}: Invalid value: {n}: {at} in body should have at least {min} properties"
        ));
    }
    let properties = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties").filter(|a| a.is_object());
    for (key, value) in map {
        if let Some(child) = properties.and_then(|p| p.get(key)) {
            check(value, child, &join(key), errors);
        } else if let Some(child) = additional {
            check(value, child, &format!("{path}[{key}]"), errors);
        }
    }
}

/// `allOf`, `anyOf`, `oneOf` and `not`, whose branches only constrain values.
fn check_combinators(value: &Value, schema: &Value, path: &str, errors: &mut Vec<String>) {
    let at = shown(path);
    let branches = |k: &str| {
        schema
            .get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    for branch in branches("allOf") {
        check(value, &branch, path, errors);
    }
    let passing = |list: &[Value]| {
        list.iter()
            .filter(|b| validate_at(value, b, path).is_empty())
            .count()
    };
    let any = branches("anyOf");
    if !any.is_empty() && passing(&any) == 0 {
        errors.push(format!(
            "{at}: Invalid value: \"{}\": {at} in body must match at least one schema in anyOf",
            type_name(value)
        ));
    }
    let one = branches("oneOf");
    if !one.is_empty() && passing(&one) != 1 {
        errors.push(format!(
            "{at}: Invalid value: \"{}\": {at} in body must match exactly one schema in oneOf",
            type_name(value)
        ));
    }
    if let Some(not) = schema.get("not")
        && validate_at(value, not, path).is_empty()
    {
        errors.push(format!(
            "{at}: Invalid value: \"{}\": {at} in body must not match the schema in not",
            type_name(value)
        ));
    }
}

fn validate_at(value: &Value, schema: &Value, path: &str) -> Vec<String> {
    let mut errors = Vec::new();
    check(value, schema, path, &mut errors);
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Each keyword reports the real server's field error.
    #[test]
    fn keywords_report_field_errors() {
        let schema = json!({"type": "object", "required": ["size"], "properties": {
            "size": {"type": "integer", "minimum": 1},
            "color": {"type": "string", "enum": ["red"]},
            "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 3},
            "tags": {"type": "array", "maxItems": 1, "x-kubernetes-list-type": "set", "items": {"type": "string"}},
            "port": {"x-kubernetes-int-or-string": true}}});
        assert!(validate(&json!({"size": 1, "port": "http"}), &schema).is_empty());
        let errors = validate(
            &json!({"color": "blue", "name": "ABCD", "tags": ["a", "a"], "port": true}),
            &schema,
        );
        assert_eq!(
            errors,
            [
                "size: Required value",
                "color: Unsupported value: \"blue\": supported values: \"red\"",
                "name: Too long: may not be more than 3 bytes",
                "name: Invalid value: \"ABCD\": name in body should match '^[a-z]+$'",
                "port: Invalid value: \"boolean\": port in body must be of type int-or-string",
                "tags: Too many: 2: must have at most 1 items",
                "tags[1]: Duplicate value: \"a\"",
            ]
        );
        assert_eq!(
            validate(&json!({"size": "1"}), &schema),
            ["size: Invalid value: \"string\": size in body must be of type integer: \"string\""]
        );
        assert_eq!(
            validate(&json!({"size": 0}), &schema),
            ["size: Invalid value: 0: size in body should be greater than or equal to 1"]
        );
    }
}
