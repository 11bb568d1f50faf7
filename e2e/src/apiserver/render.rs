//! The response forms of objects and lists: plain, `PartialObjectMetadata`
//! (kube-rs `metadata_watcher`) and `Table` (`kubectl get`).
//!
//! Tables have the two columns every kind has, NAME and AGE, or NAME and a
//! CRD version's `additionalPrinterColumns`, whose JSONPath is evaluated in
//! the subset CRDs use (`jsonpath`): fields, indices and `[?(@.f=="v")]`
//! filters.

use super::kinds::ResourceType;
use super::request::Format;
use serde_json::{Map, Value, json};

/// Paging state of a list response.
#[derive(Clone, Debug, Default)]
pub(crate) struct ListMeta {
    pub(crate) resource_version: u64,
    pub(crate) continue_token: Option<String>,
    pub(crate) remaining: Option<usize>,
}

impl ListMeta {
    fn to_value(&self) -> Value {
        let mut meta = Map::new();
        meta.insert(
            "resourceVersion".into(),
            self.resource_version.to_string().into(),
        );
        if let Some(token) = &self.continue_token {
            meta.insert("continue".into(), token.clone().into());
        }
        if let Some(n) = self.remaining {
            meta.insert("remainingItemCount".into(), n.into());
        }
        Value::Object(meta)
    }
}

/// `object` metadata only.
pub(crate) fn partial(object: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

/// One object in the requested form.
pub(crate) fn object(format: Format, rt: &ResourceType, object: Value, rv: u64) -> Value {
    match format {
        Format::Plain => object,
        Format::Metadata => partial(&object),
        Format::Table => table(
            rt,
            &[object],
            &ListMeta {
                resource_version: rv,
                ..ListMeta::default()
            },
        ),
    }
}

/// A list in the requested form.
pub(crate) fn list(format: Format, rt: &ResourceType, items: Vec<Value>, meta: &ListMeta) -> Value {
    match format {
        Format::Plain => json!({
            "kind": format!("{}List", rt.kind),
            "apiVersion": rt.api_version(),
            "metadata": meta.to_value(),
            "items": items,
        }),
        Format::Metadata => json!({
            "kind": "PartialObjectMetadataList",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": meta.to_value(),
            "items": items.iter().map(partial).collect::<Vec<_>>(),
        }),
        Format::Table => table(rt, &items, meta),
    }
}

/// A `Table` with NAME and AGE columns; each row carries the object's metadata.
fn table(rt: &ResourceType, items: &[Value], meta: &ListMeta) -> Value {
    let default_columns =
        [json!({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"})];
    let columns: &[Value] = if rt.printer_columns.is_empty() {
        &default_columns
    } else {
        &rt.printer_columns
    };
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            let name = o.pointer("/metadata/name").cloned().unwrap_or_default();
            let mut cells = vec![name];
            cells.extend(columns.iter().map(|c| cell(c, o)));
            json!({"cells": cells, "object": partial(o)})
        })
        .collect();
    let mut definitions = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name of the object", "priority": 0}),
    ];
    definitions.extend(columns.iter().map(|c| {
        let text = |k: &str| {
            c.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let kind = match text("type").as_str() {
            "date" => "string".to_string(),
            other => other.to_string(),
        };
        json!({
            "name": text("name"),
            "type": kind,
            "format": "",
            "description": text("description"),
            "priority": c.get("priority").and_then(Value::as_i64).unwrap_or(0),
        })
    }));
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta.to_value(),
        "columnDefinitions": definitions,
        "rows": rows,
    })
}

/// One printer column of `object`: the first value its JSONPath finds
/// (empty when none), a `date` shown as an age.
fn cell(column: &Value, object: &Value) -> Value {
    let path = column
        .get("jsonPath")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let found = super::jsonpath::first(object, path);
    match (column.get("type").and_then(Value::as_str), found) {
        (Some("date"), Some(Value::String(t))) => age(&t).into(),
        (_, Some(Value::String(s))) => s.into(),
        (_, Some(Value::Null) | None) => "".into(),
        (_, Some(v)) => v,
    }
}

/// Time since `created` the way kubectl shows it (`12s`, `5m`, `3h`, `2d`).
fn age(created: &str) -> String {
    let Ok(then) = created.parse::<jiff::Timestamp>() else {
        return "<unknown>".into();
    };
    let secs = jiff::Timestamp::now()
        .as_second()
        .saturating_sub(then.as_second())
        .max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 3 * 3600 => format!("{}m", s / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}
