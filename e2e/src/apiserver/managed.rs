//! `metadata.managedFields`: who owns which fields, and the two ways a
//! write changes that, as structured-merge-diff's `Updater` does.
//!
//! * An **update** (create, PUT, merge/JSON/strategic patch) gives its
//!   manager every field it added or changed, takes those from every other
//!   manager, and takes removed fields from everyone. It never conflicts.
//! * An **apply** (server-side apply) merges the applied configuration into
//!   the live object ([`merge`]), makes the applied fields the manager's
//!   whole set, removes the fields the manager applied last time but no
//!   longer does and nobody else owns, and then refuses (409) to change a
//!   field another manager owns, unless `force`, which takes it over.
//!
//! Identity of a manager is (name, operation, subresource). The fields the
//! server owns (`apiVersion`, `kind`, `metadata.name`, `uid`, ...) are never
//! in a set; writes through the main endpoint of a kind with a status
//! subresource own nothing under `status`, writes through `/status` only
//! fields under it.

use super::error::ApiError;
use super::fieldset::FieldSet;
use super::merge::{compare, merge, remove};
use super::objects::{now, with_meta};
use serde_json::{Value, json};

/// A field manager.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Manager {
    /// `fieldManager`, or the client's user agent up to the first `/`.
    pub(crate) name: String,
    /// `Apply` for server-side apply, `Update` otherwise.
    pub(crate) operation: &'static str,
    /// `status` for writes through the status subresource.
    pub(crate) subresource: Option<&'static str>,
}

/// Which fields a write through one endpoint may own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    /// The main endpoint; `status` excluded when the kind has the subresource.
    Main { status_subresource: bool },
    /// The `/status` subresource: only `status`.
    Status,
}

impl Scope {
    /// `set` without server-owned fields and fields outside this scope.
    pub(crate) fn restrict(self, set: &FieldSet) -> FieldSet {
        let set = set.without(&["f:apiVersion", "f:kind"]);
        let set = match self {
            Scope::Main {
                status_subresource: true,
            } => set.without(&["f:status"]),
            Scope::Main { .. } => set,
            Scope::Status => set.only("f:status"),
        };
        let mut server_owned = FieldSet::default();
        for field in [
            "name",
            "namespace",
            "creationTimestamp",
            "selfLink",
            "uid",
            "generation",
            "managedFields",
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ] {
            server_owned.insert(&["f:metadata".to_string(), format!("f:{field}")]);
        }
        server_owned.insert(&["f:metadata".to_string()]);
        set.difference(&server_owned)
    }
}

/// One `managedFields` entry.
#[derive(Clone, Debug)]
struct Entry {
    manager: Manager,
    api_version: String,
    time: String,
    set: FieldSet,
}

/// The entries of `object`'s `managedFields`.
fn entries(object: &Value) -> Vec<Entry> {
    let text = |e: &Value, k: &str| {
        e.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|e| Entry {
            manager: Manager {
                name: text(e, "manager"),
                operation: if text(e, "operation") == "Apply" {
                    "Apply"
                } else {
                    "Update"
                },
                subresource: (text(e, "subresource") == "status").then_some("status"),
            },
            api_version: text(e, "apiVersion"),
            time: text(e, "time"),
            set: FieldSet::from_fields_v1(e.get("fieldsV1").unwrap_or(&Value::Null)),
        })
        .collect()
}

/// Writes `list` as `object`'s `managedFields` (dropping empty sets).
fn store_entries(object: &mut Value, list: Vec<Entry>) {
    let values: Vec<Value> = list
        .into_iter()
        .filter(|e| !e.set.is_empty())
        .map(|e| {
            let mut v = json!({"manager": e.manager.name, "operation": e.manager.operation,
                "apiVersion": e.api_version, "time": e.time, "fieldsType": "FieldsV1",
                "fieldsV1": e.set.to_fields_v1()});
            if let (Some(sub), Some(map)) = (e.manager.subresource, v.as_object_mut()) {
                map.insert("subresource".into(), sub.into());
            }
            v
        })
        .collect();
    with_meta(object, |meta| match values.is_empty() {
        true => meta.remove("managedFields"),
        false => meta.insert("managedFields".into(), Value::Array(values)),
    });
}

/// The set of `me` (inserted, empty, when missing) in `list`.
fn entry_of<'a>(list: &'a mut Vec<Entry>, me: &Manager, api_version: &str) -> &'a mut Entry {
    let index = match list.iter().position(|e| e.manager == *me) {
        Some(i) => i,
        None => {
            list.push(Entry {
                manager: me.clone(),
                api_version: api_version.to_string(),
                time: String::new(),
                set: FieldSet::default(),
            });
            list.len() - 1
        }
    };
    &mut list[index]
}

/// Records an update by `me` from `old` to `new` in `new`'s `managedFields`
/// (`new` carries `old`'s entries).
pub(crate) fn record_update(
    old: &Value,
    new: &mut Value,
    schema: &Value,
    me: &Manager,
    scope: Scope,
    api_version: &str,
) {
    let mut list = entries(new);
    let (added, removed, modified) = compare(old, new, Some(schema));
    let changed = scope.restrict(&added.union(&modified));
    for entry in list.iter_mut().filter(|e| e.manager != *me) {
        entry.set = entry.set.difference(&changed).difference(&removed);
    }
    let mine = entry_of(&mut list, me, api_version);
    mine.set = mine.set.difference(&removed).union(&changed);
    mine.api_version = api_version.to_string();
    if !changed.is_empty() || !removed.is_empty() || mine.time.is_empty() {
        mine.time = now();
    }
    store_entries(new, list);
}

/// How an apply was asked for.
#[derive(Clone, Debug)]
pub(crate) struct ApplyRequest<'a> {
    pub(crate) manager: &'a Manager,
    pub(crate) force: bool,
    pub(crate) scope: Scope,
    pub(crate) api_version: &'a str,
}

/// The object after `applied` is applied to `live` (`{}` for a create), with
/// its `managedFields` updated.
///
/// # Errors
///
/// `Conflict` when the apply changes fields other managers own and is not forced.
pub(crate) fn apply(
    live: &Value,
    applied: &Value,
    schema: &Value,
    request: &ApplyRequest<'_>,
) -> Result<Value, ApiError> {
    let me = request.manager;
    let mut list = entries(live);
    let mut merged = merge(live, applied, Some(schema));
    let applied_set = request.scope.restrict(&FieldSet::of(applied, Some(schema)));
    let mine = entry_of(&mut list, me, request.api_version);
    let last = std::mem::replace(&mut mine.set, applied_set);
    mine.api_version = request.api_version.to_string();
    let owned = list
        .iter()
        .fold(FieldSet::default(), |all, e| all.union(&e.set));
    remove(&mut merged, Some(schema), &last.difference(&owned), &owned);

    let (added, removed, modified) = compare(live, &merged, Some(schema));
    let changed = added.union(&modified);
    let conflicts: Vec<(String, FieldSet)> = list
        .iter()
        .filter(|e| e.manager != *me)
        .map(|e| (e.manager.name.clone(), e.set.intersection(&changed)))
        .filter(|(_, set)| !set.is_empty())
        .collect();
    if !conflicts.is_empty() && !request.force {
        return Err(ApiError::Conflict(conflict_message(
            &conflicts,
            request.api_version,
        )));
    }
    for entry in list.iter_mut().filter(|e| e.manager != *me) {
        entry.set = entry.set.difference(&changed).difference(&removed);
    }
    let mine = entry_of(&mut list, me, request.api_version);
    if mine.time.is_empty() || !changed.is_empty() || !removed.is_empty() || mine.set != last {
        mine.time = now();
    }
    store_entries(&mut merged, list);
    Ok(merged)
}

/// `Apply failed with 1 conflict: conflict with "kubectl" using v1: .spec.x`,
/// the real server's wording.
fn conflict_message(conflicts: &[(String, FieldSet)], api_version: &str) -> String {
    let lines: Vec<(String, String)> = conflicts
        .iter()
        .flat_map(|(name, set)| {
            set.paths()
                .into_iter()
                .map(move |p| (name.clone(), path_text(&p)))
        })
        .collect();
    match lines.as_slice() {
        [(name, path)] => {
            format!(
                "Apply failed with 1 conflict: conflict with \"{name}\" using {api_version}: {path}"
            )
        }
        _ => {
            let mut text = format!("Apply failed with {} conflicts:", lines.len());
            for (name, path) in &lines {
                text.push_str(&format!(
                    " conflict with \"{name}\" using {api_version}: {path};"
                ));
            }
            text.trim_end_matches(';').to_string()
        }
    }
}

/// `.status.conditions[type="Ready"].status` for a field-set path.
pub(crate) fn path_text(path: &[String]) -> String {
    let mut out = String::new();
    for element in path {
        if let Some(field) = element.strip_prefix("f:") {
            out.push('.');
            out.push_str(field);
        } else if let Some(keys) = element.strip_prefix("k:") {
            let parsed: Value = serde_json::from_str(keys).unwrap_or(Value::Null);
            let parts: Vec<String> = parsed
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            out.push_str(&format!("[{}]", parts.join(",")));
        } else if let Some(value) = element.strip_prefix("v:") {
            out.push_str(&format!("[={value}]"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manager(name: &str, operation: &'static str) -> Manager {
        Manager {
            name: name.into(),
            operation,
            subresource: None,
        }
    }

    fn request(m: &Manager, force: bool) -> ApplyRequest<'_> {
        ApplyRequest {
            manager: m,
            force,
            scope: Scope::Main {
                status_subresource: false,
            },
            api_version: "v1",
        }
    }

    fn schema() -> Value {
        json!({"type": "object", "properties": {"data": {"type": "object", "additionalProperties": {"type": "string"}}}})
    }

    /// Two appliers share equal values, conflict on different ones, and
    /// a field one stops applying is removed unless the other owns it.
    #[test]
    fn apply_conflicts_and_removal() {
        let (a, b) = (manager("a", "Apply"), manager("b", "Apply"));
        let live = json!({"metadata": {"name": "x"}});
        let applied_a = json!({"metadata": {"name": "x"}, "data": {"k": "1", "only-a": "1"}});
        let live = apply(&live, &applied_a, &schema(), &request(&a, false)).unwrap();
        let applied_b = json!({"data": {"k": "1", "only-b": "2"}});
        let live = apply(&live, &applied_b, &schema(), &request(&b, false)).unwrap();
        let clash = json!({"data": {"k": "2"}});
        let err = apply(&live, &clash, &schema(), &request(&b, false)).unwrap_err();
        assert_eq!(
            err,
            ApiError::Conflict(
                "Apply failed with 1 conflict: conflict with \"a\" using v1: .data.k".into()
            )
        );
        let live = apply(
            &live,
            &json!({"data": {"k": "1"}}),
            &schema(),
            &request(&a, false),
        )
        .unwrap();
        assert_eq!(
            live["data"],
            json!({"k": "1", "only-b": "2"}),
            "only-a is gone"
        );
        let live = apply(&live, &json!({"data": {}}), &schema(), &request(&a, false)).unwrap();
        assert_eq!(
            live["data"],
            json!({"k": "1", "only-b": "2"}),
            "b still owns k"
        );
        let forced = apply(&live, &clash, &schema(), &request(&b, true)).unwrap();
        assert_eq!(forced["data"]["k"], "2");
    }

    /// Updates take changed fields from other managers.
    #[test]
    fn update_takes_ownership() {
        let a = manager("a", "Apply");
        let live = apply(
            &json!({}),
            &json!({"data": {"k": "1"}}),
            &schema(),
            &request(&a, false),
        )
        .unwrap();
        let mut next = live.clone();
        next["data"]["k"] = json!("2");
        let scope = Scope::Main {
            status_subresource: false,
        };
        record_update(
            &live,
            &mut next,
            &schema(),
            &manager("u", "Update"),
            scope,
            "v1",
        );
        let owners: Vec<&str> = next["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["manager"].as_str())
            .collect();
        assert_eq!(owners, ["u"], "a lost its only field");
        let again = apply(
            &next,
            &json!({"data": {"k": "1"}}),
            &schema(),
            &request(&a, false),
        );
        assert!(matches!(again, Err(ApiError::Conflict(_))));
    }
}
