//! The server-side apply verb: `PATCH` with `application/apply-patch+yaml`.
//!
//! The applied configuration is cut to what the endpoint may change (the
//! main endpoint of a kind with a status subresource drops `status`;
//! `/status` keeps only `status`), applied with [`managed::apply`] against
//! the live object, and stored as an update whose `managedFields` the apply
//! computed. A missing object is created (not through `/status`).

use super::error::ApiError;
use super::handlers::Reply;
use super::kinds::ResourceType;
use super::managed::{self, ApplyRequest, Scope};
use super::objects::{meta_str, with_meta};
use super::patch::parse_json_or_yaml;
use super::storage::{Ownership, Store, Write};
use super::verbs::Call;
use serde_json::{Map, Value, json};

/// Serves a server-side apply of `name`.
///
/// # Errors
///
/// `Invalid` without `fieldManager`; `BadRequest` without `apiVersion` and
/// `kind` or with another name; `Conflict` on fields other managers own
/// (unless `force=true`); whatever the write itself fails with.
pub(crate) fn serve(
    store: &mut Store,
    rt: &ResourceType,
    call: &Call<'_>,
    name: &str,
) -> Result<Reply, ApiError> {
    let body = parse_json_or_yaml(call.body)?;
    let field_manager = call.query.get("fieldManager").unwrap_or_default();
    if field_manager.is_empty() {
        return Err(ApiError::Invalid(
            "fieldManager: Required value: is required for apply patch".into(),
        ));
    }
    if body.get("apiVersion").is_none() || body.get("kind").is_none() {
        return Err(ApiError::BadRequest(
            "apply patches need apiVersion and kind".into(),
        ));
    }
    let body_name = meta_str(&body, "name");
    if !body_name.is_empty() && body_name != name {
        return Err(ApiError::BadRequest(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    let status = call.path.status;
    let scope = match status {
        true => Scope::Status,
        false => Scope::Main {
            status_subresource: rt.status_subresource,
        },
    };
    let mut manager = call.manager("Apply");
    manager.name = field_manager.to_string();
    let api_version = rt.api_version();
    let request = ApplyRequest {
        manager: &manager,
        force: call.query.flag("force"),
        scope,
        api_version: &api_version,
    };
    let applied = scoped(body, scope);
    let ns = call.namespace();
    match store.get(rt, ns, name) {
        Ok(live) => {
            let merged = managed::apply(&live, &applied, &rt.schema, &request)?;
            let write = Write {
                status,
                ownership: Ownership::Applied,
                put: false,
                strict: call.strict(),
            };
            Ok(Reply::ok(store.update(rt, ns, name, merged, write)?))
        }
        Err(ApiError::NotFound(_)) if !status => {
            let mut applied = applied;
            with_meta(&mut applied, |m| m.insert("name".into(), name.into()));
            let made = managed::apply(&json!({}), &applied, &rt.schema, &request)?;
            Ok(Reply::Json(
                201,
                store.create(
                    rt,
                    ns,
                    made,
                    Write {
                        ownership: Ownership::Applied,
                        strict: call.strict(),
                        ..Write::server()
                    },
                )?,
            ))
        }
        Err(err) => Err(err),
    }
}

/// The part of an applied configuration the endpoint of `scope` may change.
fn scoped(mut body: Value, scope: Scope) -> Value {
    let Value::Object(map) = &mut body else {
        return body;
    };
    match scope {
        Scope::Main {
            status_subresource: true,
        } => {
            map.remove("status");
        }
        Scope::Main { .. } => {}
        Scope::Status => {
            let mut meta = Map::new();
            for key in ["name", "namespace"] {
                if let Some(v) = map.get("metadata").and_then(|m| m.get(key)) {
                    meta.insert(key.into(), v.clone());
                }
            }
            map.retain(|k, _| matches!(k.as_str(), "apiVersion" | "kind" | "status"));
            map.insert("metadata".into(), Value::Object(meta));
        }
    }
    body
}
