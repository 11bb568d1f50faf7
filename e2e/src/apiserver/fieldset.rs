//! Field sets: which fields of an object a manager owns, in the
//! `FieldsV1` shape of `metadata.managedFields`.
//!
//! A set is a tree whose edges are path elements encoded as the real server
//! encodes them: `f:<field>` for an object field, `k:{"type":"Ready"}` for
//! an item of a list merged by key, `v:"x"` for an item of a set. A node is
//! a *member* when the set owns that field or item itself; in `FieldsV1` a
//! member with children carries a `"."` entry. [`FieldSet::of`] builds the
//! set of an object the way structured-merge-diff's `ToFieldSet` does:
//! scalars, atomic lists and atomic maps are members; keyed and set list
//! items are members; entries of a map (`additionalProperties`) are members;
//! struct fields only when empty or null.

use super::schema::{self, ListType};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A set of field paths.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct FieldSet {
    member: bool,
    children: BTreeMap<String, FieldSet>,
}

/// The path element of `item` in a list of `list_type`, if items are owned
/// one by one.
pub(crate) fn item_element(list_type: &ListType, item: &Value) -> Option<String> {
    match list_type {
        ListType::Atomic => None,
        ListType::Set => Some(format!("v:{item}")),
        ListType::Map(keys) => {
            // Keys in name order, as encoding/json writes a Go map.
            let mut sorted: Vec<&String> = keys.iter().collect();
            sorted.sort();
            let fields: Vec<String> = sorted
                .iter()
                .map(|k| {
                    let value = item.get(k.as_str()).cloned().unwrap_or(Value::Null);
                    format!("{}:{value}", Value::String((*k).clone()))
                })
                .collect();
            Some(format!("k:{{{}}}", fields.join(",")))
        }
    }
}

impl FieldSet {
    /// Whether the set has no member.
    pub(crate) fn is_empty(&self) -> bool {
        !self.member && self.children.values().all(FieldSet::is_empty)
    }

    /// Whether this node is itself owned.
    pub(crate) fn is_member(&self) -> bool {
        self.member
    }

    /// The child at path element `element`.
    pub(crate) fn child(&self, element: &str) -> Option<&FieldSet> {
        self.children.get(element)
    }

    /// The children, by path element.
    pub(crate) fn children(&self) -> impl Iterator<Item = (&String, &FieldSet)> {
        self.children.iter()
    }

    /// Adds the path `elements` as a member.
    pub(crate) fn insert(&mut self, elements: &[String]) {
        match elements.split_first() {
            None => self.member = true,
            Some((first, rest)) => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    /// Members of `self` or `other`.
    pub(crate) fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.member |= other.member;
        for (k, v) in &other.children {
            let merged = match out.children.get(k) {
                Some(mine) => mine.union(v),
                None => v.clone(),
            };
            out.children.insert(k.clone(), merged);
        }
        out
    }

    /// Members of `self` that are not members of `other`.
    pub(crate) fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && !other.member,
            children: BTreeMap::new(),
        };
        for (k, v) in &self.children {
            let rest = match other.children.get(k) {
                Some(o) => v.difference(o),
                None => v.clone(),
            };
            if !rest.is_empty() {
                out.children.insert(k.clone(), rest);
            }
        }
        out
    }

    /// Members of both.
    pub(crate) fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && other.member,
            children: BTreeMap::new(),
        };
        for (k, v) in &self.children {
            if let Some(o) = other.children.get(k) {
                let both = v.intersection(o);
                if !both.is_empty() {
                    out.children.insert(k.clone(), both);
                }
            }
        }
        out
    }

    /// The set without the subtrees at these top-level elements.
    pub(crate) fn without(&self, elements: &[&str]) -> FieldSet {
        let mut out = self.clone();
        out.children.retain(|k, _| !elements.contains(&k.as_str()));
        out
    }

    /// Only the subtree at top-level `element` (empty when absent).
    pub(crate) fn only(&self, element: &str) -> FieldSet {
        let mut out = FieldSet::default();
        if let Some(child) = self.children.get(element) {
            out.children.insert(element.to_string(), child.clone());
        }
        out
    }

    /// Every member path, as element lists, for messages.
    pub(crate) fn paths(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        self.collect(&mut Vec::new(), &mut out);
        out
    }

    fn collect(&self, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        if self.member {
            out.push(prefix.clone());
        }
        for (k, v) in &self.children {
            prefix.push(k.clone());
            v.collect(prefix, out);
            prefix.pop();
        }
    }

    /// The `FieldsV1` JSON of this set.
    pub(crate) fn to_fields_v1(&self) -> Value {
        let mut map = Map::new();
        if self.member && !self.children.is_empty() {
            map.insert(".".into(), Value::Object(Map::new()));
        }
        for (k, v) in &self.children {
            if !v.is_empty() {
                map.insert(k.clone(), v.to_fields_v1());
            }
        }
        Value::Object(map)
    }

    /// Parses `FieldsV1` JSON (anything else is an empty set).
    pub(crate) fn from_fields_v1(value: &Value) -> FieldSet {
        let mut out = FieldSet::default();
        let Some(map) = value.as_object() else {
            return out;
        };
        if map.is_empty() {
            out.member = true;
        }
        for (k, v) in map {
            if k == "." {
                out.member = true;
            } else {
                out.children.insert(k.clone(), FieldSet::from_fields_v1(v));
            }
        }
        out
    }

    /// The fields of `value` (an object with `schema`).
    pub(crate) fn of(value: &Value, schema: Option<&Value>) -> FieldSet {
        let mut out = FieldSet::default();
        walk(value, schema, &mut out);
        out
    }
}

/// Adds the members under `value` to `node` (the node of `value` itself).
fn walk(value: &Value, schema: Option<&Value>, node: &mut FieldSet) {
    match value {
        Value::Object(map) if !schema::atomic_map(schema) => {
            for (key, child) in map {
                let child_schema = schema::child(schema, key);
                let entry = node.children.entry(format!("f:{key}")).or_default();
                walk(child, child_schema, entry);
                let empty = child.is_null() || child.as_object().is_some_and(Map::is_empty);
                if empty || !schema::is_declared(schema, key) || is_leaf(child, child_schema) {
                    entry.member = true;
                }
            }
        }
        Value::Array(list) => {
            let list_type = schema::list_type(schema);
            let item_schema = schema::items(schema);
            for item in list {
                if let Some(element) = item_element(&list_type, item) {
                    let entry = node.children.entry(element).or_default();
                    walk(item, item_schema, entry);
                    entry.member = true;
                }
            }
        }
        _ => {}
    }
}

/// Whether `value` is owned as one field: a scalar, an atomic list or an atomic map.
fn is_leaf(value: &Value, schema: Option<&Value>) -> bool {
    match value {
        Value::Object(_) => schema::atomic_map(schema),
        Value::Array(_) => schema::list_type(schema) == ListType::Atomic,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conditions_schema() -> Value {
        json!({"type": "object", "properties": {
            "status": {"type": "object", "properties": {
                "conditions": {"type": "array", "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["type"],
                    "items": {"type": "object", "properties": {"type": {"type": "string"}, "status": {"type": "string"}}}},
                "tags": {"type": "array", "items": {"type": "string"}},
            }},
            "data": {"type": "object", "additionalProperties": {"type": "string"}},
        }})
    }

    /// Keyed items and map entries are members (with "."), struct fields are
    /// not, scalars and atomic lists are leaves, as the real server writes them.
    #[test]
    fn fields_v1_of_an_object() {
        let object = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}], "tags": ["a"]},
            "data": {"k": "v"}});
        let set = FieldSet::of(&object, Some(&conditions_schema()));
        assert_eq!(
            set.to_fields_v1(),
            json!({
                "f:data": {"f:k": {}},
                "f:status": {"f:conditions": {"k:{\"type\":\"Ready\"}": {".": {}, "f:status": {}, "f:type": {}}},
                    "f:tags": {}},
            })
        );
        assert_eq!(FieldSet::from_fields_v1(&set.to_fields_v1()), set);
    }

    /// Union, difference and intersection work member by member.
    #[test]
    fn set_algebra() {
        let path = |p: &[&str]| p.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
        let mut a = FieldSet::default();
        a.insert(&path(&["f:spec", "f:x"]));
        a.insert(&path(&["f:spec", "f:y"]));
        let mut b = FieldSet::default();
        b.insert(&path(&["f:spec", "f:y"]));
        b.insert(&path(&["f:spec", "f:z"]));
        assert_eq!(a.difference(&b).paths(), [path(&["f:spec", "f:x"])]);
        assert_eq!(a.intersection(&b).paths(), [path(&["f:spec", "f:y"])]);
        assert_eq!(a.union(&b).paths().len(), 3);
        assert!(a.difference(&a).is_empty());
    }
}
