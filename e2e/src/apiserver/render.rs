//! The response forms of objects and lists: plain, `PartialObjectMetadata`
//! (kube-rs `metadata_watcher`) and `Table` (`kubectl get`).
//!
//! Tables have the two columns every kind has, NAME and AGE; a CRD's
//! `additionalPrinterColumns` are not evaluated.

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
fn table(_rt: &ResourceType, items: &[Value], meta: &ListMeta) -> Value {
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            let name = o.pointer("/metadata/name").cloned().unwrap_or_default();
            let created = o
                .pointer("/metadata/creationTimestamp")
                .and_then(Value::as_str)
                .unwrap_or_default();
            json!({"cells": [name, age(created)], "object": partial(o)})
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta.to_value(),
        "columnDefinitions": [
            {"name": "Name", "type": "string", "format": "name", "description": "Name of the object", "priority": 0},
            {"name": "Age", "type": "string", "format": "", "description": "Time since creation", "priority": 0},
        ],
        "rows": rows,
    })
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
