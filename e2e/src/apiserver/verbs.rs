//! The resource verbs: list, watch, get, create, update, patch, delete and
//! deletecollection, on a collection, an object or its status.
//!
//! Each verb takes the parsed request and answers a [`Reply`]; all checks
//! and writes for one request happen under one store lock, so a patch reads
//! and writes the same version.

use super::error::ApiError;
use super::handlers::{Reply, Shared, lock};
use super::kinds::ResourceType;
use super::managed::Manager;
use super::objects::meta_str;
use super::patch::{PatchKind, apply_patch};
use super::render::{self, ListMeta};
use super::request::{Format, Query, ResourcePath};
use super::selectors::{FieldSelector, LabelSelector};
use super::storage::{Ownership, Store, Write};
use super::watch::{self, WatchSpec, WatchStart};
use http::Method;
use serde_json::Value;
use std::time::Duration;
use tokio::sync::mpsc;

/// A resource request, parsed.
pub(crate) struct Call<'a> {
    pub(crate) method: &'a Method,
    pub(crate) path: ResourcePath,
    pub(crate) query: &'a Query,
    pub(crate) format: Format,
    pub(crate) content_type: &'a str,
    pub(crate) user_agent: &'a str,
    pub(crate) body: &'a [u8],
}

impl Call<'_> {
    /// The namespace of the path, empty for cluster-scoped paths.
    pub(crate) fn namespace(&self) -> &str {
        self.path.namespace.as_deref().unwrap_or_default()
    }

    /// Whether the request asks for `fieldValidation=Strict`.
    pub(crate) fn strict(&self) -> bool {
        self.query.get("fieldValidation") == Some("Strict")
    }

    /// The manager of an Update: `fieldManager`, else the user agent's
    /// program name (`kubectl/v1.33 ...` → `kubectl`).
    pub(crate) fn manager(&self, operation: &'static str) -> Manager {
        let name = match self.query.get("fieldManager") {
            Some(m) if !m.is_empty() => m.to_string(),
            _ => self
                .user_agent
                .split('/')
                .next()
                .unwrap_or_default()
                .to_string(),
        };
        Manager {
            name,
            operation,
            subresource: self.path.status.then_some("status"),
        }
    }

    /// The body as JSON. Protobuf bodies are decoded for the kinds typed
    /// clients write with them (Secrets, ConfigMaps, Namespaces: Helm's
    /// release records) and refused with 415 otherwise.
    fn json_body(&self) -> Result<Value, ApiError> {
        if super::protobuf::is_protobuf(self.content_type) {
            return super::protobuf::decode(self.body);
        }
        serde_json::from_slice(self.body)
            .map_err(|e| ApiError::BadRequest(format!("error decoding body: {e}")))
    }
}

/// Serves one resource request.
///
/// # Errors
///
/// Every failure the verbs report, as [`ApiError`].
pub(crate) fn serve(shared: &Shared, call: &Call<'_>) -> Result<Reply, ApiError> {
    if call.query.get("dryRun").is_some_and(|d| !d.is_empty()) {
        return Err(ApiError::BadRequest(
            "dryRun is not supported by the Tollgate test API server".into(),
        ));
    }
    let mut store = lock(&shared.store);
    let p = &call.path;
    let rt = store
        .kinds
        .find(&p.group, &p.version, &p.plural)
        .filter(|rt| !p.status || rt.status_subresource)
        .filter(|rt| rt.namespaced || p.namespace.is_none())
        .cloned()
        .ok_or_else(|| {
            ApiError::NotFound("the server could not find the requested resource".into())
        })?;
    let name = p.name.clone();
    match (call.method, name) {
        (&Method::GET, None) if call.query.flag("watch") => start_watch(shared, &store, &rt, call),
        (&Method::GET, None) => list(&store, &rt, call),
        (&Method::POST, None) if rt.namespaced && p.namespace.is_none() => Err(
            ApiError::MethodNotAllowed("create needs a namespace in the path".into()),
        ),
        (&Method::POST, None) => create(&mut store, &rt, call),
        (&Method::DELETE, None) => delete_collection(&mut store, &rt, call),
        (&Method::GET, Some(name)) => {
            let object = store.get(&rt, call.namespace(), &name)?;
            Ok(Reply::ok(render::object(
                call.format,
                &rt,
                object,
                store.resource_version(),
            )))
        }
        (&Method::PUT, Some(name)) => {
            let body = call.json_body()?;
            let manager = call.manager("Update");
            let write = Write {
                status: p.status,
                ownership: Ownership::Update(&manager),
                put: true,
                strict: call.strict(),
            };
            let object = store.update(&rt, call.namespace(), &name, body, write)?;
            Ok(Reply::ok(object))
        }
        (&Method::PATCH, Some(name)) => patch(&mut store, &rt, call, &name),
        (&Method::DELETE, Some(name)) => {
            Ok(Reply::ok(store.delete(&rt, call.namespace(), &name)?))
        }
        (method, _) => Err(ApiError::MethodNotAllowed(format!(
            "{method} is not allowed on this path"
        ))),
    }
}

/// Selectors of a list, watch or deletecollection.
fn selectors(query: &Query) -> Result<(LabelSelector, FieldSelector), ApiError> {
    Ok((
        LabelSelector::parse(query.get("labelSelector").unwrap_or_default())?,
        FieldSelector::parse(query.get("fieldSelector").unwrap_or_default())?,
    ))
}

/// The selected objects, in (namespace, name) order.
fn selected(store: &Store, rt: &ResourceType, call: &Call<'_>) -> Result<Vec<Value>, ApiError> {
    let (labels, fields) = selectors(call.query)?;
    Ok(store
        .list(rt, call.path.namespace.as_deref())
        .into_iter()
        .filter(|o| labels.matches(o) && fields.matches(o))
        .collect())
}

/// A list page. `continue` tokens are `<rv>|<namespace>|<name>` of the last
/// item sent; later pages show the objects as they are then (not a
/// snapshot at the first page's version) but report the first page's version.
fn list(store: &Store, rt: &ResourceType, call: &Call<'_>) -> Result<Reply, ApiError> {
    let mut items = selected(store, rt, call)?;
    let mut meta = ListMeta {
        resource_version: store.resource_version(),
        ..ListMeta::default()
    };
    if let Some(token) = call.query.get("continue").filter(|t| !t.is_empty()) {
        let mut parts = token.splitn(3, '|');
        let bad = || ApiError::BadRequest(format!("invalid continue token {token:?}"));
        meta.resource_version = parts
            .next()
            .and_then(|rv| rv.parse().ok())
            .ok_or_else(bad)?;
        let after = (parts.next().ok_or_else(bad)?, parts.next().ok_or_else(bad)?);
        items.retain(|o| (meta_str(o, "namespace"), meta_str(o, "name")) > after);
    }
    let limit: usize = call
        .query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    if limit > 0 && items.len() > limit {
        let rest = items.split_off(limit);
        if let Some(last) = items.last() {
            let (ns, name) = (meta_str(last, "namespace"), meta_str(last, "name"));
            meta.continue_token = Some(format!("{}|{ns}|{name}", meta.resource_version));
            meta.remaining = Some(rest.len());
        }
    }
    Ok(Reply::ok(render::list(call.format, rt, items, &meta)))
}

/// Starts a watch stream (see [`watch`]).
fn start_watch(
    shared: &Shared,
    store: &Store,
    rt: &ResourceType,
    call: &Call<'_>,
) -> Result<Reply, ApiError> {
    let (labels, fields) = selectors(call.query)?;
    let initial_events = call.query.flag("sendInitialEvents");
    let spec = WatchSpec {
        rt: rt.clone(),
        namespace: call.path.namespace.clone(),
        labels,
        fields,
        bookmarks: call.query.flag("allowWatchBookmarks"),
        initial_events_end: initial_events,
        timeout: call
            .query
            .get("timeoutSeconds")
            .and_then(|t| t.parse().ok())
            .map(Duration::from_secs),
        metadata_only: call.format == Format::Metadata,
    };
    let from = call.query.get("resourceVersion").unwrap_or_default();
    let current = store.resource_version();
    let start = match from.parse::<u64>() {
        Ok(rv) if rv > 0 && !initial_events => {
            let gone = (rv < store.compacted()).then(|| {
                ApiError::Gone(format!(
                    "too old resource version: {rv} ({})",
                    store.compacted()
                ))
            });
            let (replay, live) = store.subscribe(rv);
            WatchStart {
                initial: Vec::new(),
                replay,
                live,
                rv: rv.max(current),
                gone,
            }
        }
        _ => {
            let (_, live) = store.subscribe(current);
            let initial = store.list(rt, call.path.namespace.as_deref());
            WatchStart {
                initial,
                replay: Vec::new(),
                live,
                rv: current,
                gone: None,
            }
        }
    };
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(watch::run(spec, start, tx, shared.stop_watches.subscribe()));
    Ok(Reply::Stream(rx))
}

/// POST: creates the body in the path's namespace.
fn create(store: &mut Store, rt: &ResourceType, call: &Call<'_>) -> Result<Reply, ApiError> {
    let body = call.json_body()?;
    let body_ns = meta_str(&body, "namespace");
    if rt.namespaced && !body_ns.is_empty() && body_ns != call.namespace() {
        return Err(ApiError::BadRequest(
            "the namespace of the provided object does not match the namespace sent on the request"
                .into(),
        ));
    }
    let manager = call.manager("Update");
    let write = Write {
        ownership: Ownership::Update(&manager),
        strict: call.strict(),
        ..Write::server()
    };
    let object = store.create(rt, call.namespace(), body, write)?;
    Ok(Reply::Json(201, object))
}

/// PATCH in any of the four formats; server-side apply is [`super::apply`].
fn patch(
    store: &mut Store,
    rt: &ResourceType,
    call: &Call<'_>,
    name: &str,
) -> Result<Reply, ApiError> {
    let kind = PatchKind::from_content_type(call.content_type)?;
    if kind == PatchKind::Apply {
        return super::apply::serve(store, rt, call, name);
    }
    let ns = call.namespace();
    let body = call.json_body()?;
    let current = store.get(rt, ns, name)?;
    let patched = apply_patch(kind, &current, &body)?;
    let manager = call.manager("Update");
    let write = Write {
        status: call.path.status,
        ownership: Ownership::Update(&manager),
        put: false,
        strict: call.strict(),
    };
    Ok(Reply::ok(store.update(rt, ns, name, patched, write)?))
}

/// DELETE on a collection: deletes every selected object, answers the list
/// of what was deleted (or marked for deletion).
fn delete_collection(
    store: &mut Store,
    rt: &ResourceType,
    call: &Call<'_>,
) -> Result<Reply, ApiError> {
    let mut deleted = Vec::new();
    for object in selected(store, rt, call)? {
        let (ns, name) = (meta_str(&object, "namespace"), meta_str(&object, "name"));
        deleted.push(store.delete(rt, ns, name)?);
    }
    let meta = ListMeta {
        resource_version: store.resource_version(),
        ..ListMeta::default()
    };
    Ok(Reply::ok(render::list(Format::Plain, rt, deleted, &meta)))
}
