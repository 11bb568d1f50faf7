//! Patch formats: JSON merge patch, JSON patch, strategic merge patch and
//! server-side apply bodies.
//!
//! * `application/merge-patch+json`: RFC 7386 (`null` deletes a key, arrays
//!   are replaced whole).
//! * `application/json-patch+json`: RFC 6902 (`add`, `remove`, `replace`,
//!   `move`, `copy`, `test`).
//! * `application/strategic-merge-patch+json`: treated as a merge patch, so
//!   lists are replaced rather than merged by key and `$patch` directives
//!   are not understood. Tollgate's writers use merge patches and apply.
//! * `application/apply-patch+yaml`: server-side apply, served by the
//!   `apply` module; only its body parsing is here.

use super::error::ApiError;
use serde_json::{Map, Value};

/// The patch formats a PATCH request may carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PatchKind {
    Merge,
    Json,
    Strategic,
    Apply,
}

impl PatchKind {
    /// The format named by a `Content-Type` header.
    pub(crate) fn from_content_type(content_type: &str) -> Result<PatchKind, ApiError> {
        let mime = content_type.split(';').next().unwrap_or_default().trim();
        match mime {
            "application/merge-patch+json" => Ok(PatchKind::Merge),
            "application/json-patch+json" => Ok(PatchKind::Json),
            "application/strategic-merge-patch+json" => Ok(PatchKind::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Ok(PatchKind::Apply),
            other => Err(ApiError::UnsupportedMediaType(format!(
                "the body of the request was in an unknown format - accepted media types include: \
                 application/json-patch+json, application/merge-patch+json, \
                 application/apply-patch+yaml (got {other:?})"
            ))),
        }
    }
}

/// Parses a body that is JSON or YAML (apply bodies may be either).
pub(crate) fn parse_json_or_yaml(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).or_else(|_| {
        serde_yaml::from_slice(body)
            .map_err(|e| ApiError::BadRequest(format!("error decoding body: {e}")))
    })
}

/// Applies `patch` of `kind` to `target`.
pub(crate) fn apply_patch(
    kind: PatchKind,
    target: &Value,
    patch: &Value,
) -> Result<Value, ApiError> {
    match kind {
        PatchKind::Merge | PatchKind::Strategic => Ok(merge_patch(target, patch)),
        PatchKind::Apply => Err(ApiError::BadRequest(
            "apply patches are served by server-side apply".into(),
        )),
        PatchKind::Json => json_patch(target, patch),
    }
}

/// RFC 7386 JSON merge patch.
pub(crate) fn merge_patch(target: &Value, patch: &Value) -> Value {
    let Value::Object(patch) = patch else {
        return patch.clone();
    };
    let mut out = match target {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    for (key, value) in patch {
        if value.is_null() {
            out.remove(key);
        } else {
            let merged = merge_patch(out.get(key).unwrap_or(&Value::Null), value);
            out.insert(key.clone(), merged);
        }
    }
    Value::Object(out)
}

/// RFC 6902 JSON patch.
fn json_patch(target: &Value, patch: &Value) -> Result<Value, ApiError> {
    let ops = patch.as_array().ok_or_else(|| {
        ApiError::BadRequest("a JSON patch must be an array of operations".into())
    })?;
    let mut doc = target.clone();
    for op in ops {
        let field = |name: &str| {
            op.get(name)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let value = || {
            op.get("value")
                .cloned()
                .ok_or_else(|| bad_op(op, "missing value"))
        };
        let path = field("path");
        match field("op").as_str() {
            "add" => add(&mut doc, &path, value()?)?,
            "remove" => drop_at(&mut doc, &path).map(|_| ())?,
            "replace" => {
                drop_at(&mut doc, &path)?;
                add(&mut doc, &path, value()?)?;
            }
            "move" => {
                let moved = drop_at(&mut doc, &field("from"))?;
                add(&mut doc, &path, moved)?;
            }
            "copy" => {
                let copied = doc
                    .pointer(&field("from"))
                    .cloned()
                    .ok_or_else(|| bad_op(op, "no such from"))?;
                add(&mut doc, &path, copied)?;
            }
            "test" => {
                if doc.pointer(&path) != Some(&value()?) {
                    return Err(ApiError::Invalid(format!(
                        "test operation failed at {path}"
                    )));
                }
            }
            _ => return Err(bad_op(op, "unknown op")),
        }
    }
    Ok(doc)
}

fn bad_op(op: &Value, why: &str) -> ApiError {
    ApiError::BadRequest(format!("invalid JSON patch operation {op}: {why}"))
}

/// Splits a JSON pointer into its parent pointer and unescaped last token.
fn split_pointer(path: &str) -> Result<(&str, String), ApiError> {
    let (parent, last) = path
        .rsplit_once('/')
        .ok_or_else(|| ApiError::BadRequest(format!("invalid JSON pointer {path:?}")))?;
    Ok((parent, last.replace("~1", "/").replace("~0", "~")))
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), ApiError> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (parent, key) = split_pointer(path)?;
    let missing = || ApiError::Invalid(format!("JSON patch path {path:?} does not exist"));
    match doc.pointer_mut(parent).ok_or_else(missing)? {
        Value::Object(map) => {
            map.insert(key, value);
        }
        Value::Array(items) if key == "-" => items.push(value),
        Value::Array(items) => {
            let index: usize = key.parse().map_err(|_| missing())?;
            if index > items.len() {
                return Err(missing());
            }
            items.insert(index, value);
        }
        _ => return Err(missing()),
    }
    Ok(())
}

fn drop_at(doc: &mut Value, path: &str) -> Result<Value, ApiError> {
    let (parent, key) = split_pointer(path)?;
    let missing = || ApiError::Invalid(format!("JSON patch path {path:?} does not exist"));
    match doc.pointer_mut(parent).ok_or_else(missing)? {
        Value::Object(map) => map.remove(&key).ok_or_else(missing),
        Value::Array(items) => {
            let index: usize = key.parse().map_err(|_| missing())?;
            (index < items.len())
                .then(|| items.remove(index))
                .ok_or_else(missing)
        }
        _ => Err(missing()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Merge patches replace, add and (with null) delete keys, recursively; arrays are replaced.
    #[test]
    fn merge_patch_rfc7386() {
        let target = json!({"a": 1, "b": {"c": 2, "d": 3}, "l": [1, 2]});
        let patch = json!({"a": null, "b": {"c": 5}, "l": [3], "n": "x"});
        assert_eq!(
            merge_patch(&target, &patch),
            json!({"b": {"c": 5, "d": 3}, "l": [3], "n": "x"})
        );
    }

    /// JSON patch operations apply in order; a failing test aborts the patch.
    #[test]
    fn json_patch_rfc6902() {
        let target = json!({"a": {"b": [1, 2]}, "c": "x"});
        let ok = json!([
            {"op": "add", "path": "/a/b/-", "value": 3},
            {"op": "replace", "path": "/c", "value": "y"},
            {"op": "copy", "from": "/c", "path": "/d"},
            {"op": "move", "from": "/d", "path": "/e"},
            {"op": "remove", "path": "/a/b/0"},
            {"op": "test", "path": "/e", "value": "y"},
        ]);
        assert_eq!(
            json_patch(&target, &ok),
            Ok(json!({"a": {"b": [2, 3]}, "c": "y", "e": "y"}))
        );
        let failing = json!([{"op": "test", "path": "/c", "value": "nope"}]);
        assert!(matches!(
            json_patch(&target, &failing),
            Err(ApiError::Invalid(_))
        ));
        let missing = json!([{"op": "remove", "path": "/zzz"}]);
        assert!(json_patch(&target, &missing).is_err());
    }

    /// Apply bodies may be JSON or YAML.
    #[test]
    fn apply_bodies_parse_as_json_or_yaml() {
        let yaml = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n";
        assert_eq!(
            parse_json_or_yaml(yaml)
                .ok()
                .and_then(|v| v.pointer("/metadata/name").cloned()),
            Some(json!("a"))
        );
        assert!(parse_json_or_yaml(b"{\"a\": 1}").is_ok());
    }
}
