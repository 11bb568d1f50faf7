//! Discovery and OpenAPI documents, built from the registry on each request
//! so a CRD written a moment ago is visible.
//!
//! Clients find resources through `/api`, `/apis` and the per-version
//! `APIResourceList`s (the unaggregated discovery format; clients that ask
//! for aggregated discovery fall back to it). kubectl's validation asks
//! `/openapi/v3` whether each kind's PATCH accepts `fieldValidation`; the
//! per-version documents here declare exactly that and nothing else (no
//! schemas), so kubectl leaves validation to the server (`fieldValidation`
//! on each write, which the server enforces for custom resources) and works
//! without `--validate=false`. `/openapi/v2` answers an
//! empty protobuf document, which kubectl decodes as "no models".

use super::error::ApiError;
use super::kinds::{Registry, ResourceType};
use serde_json::{Value, json};

/// The version this server claims to be.
pub(crate) const GIT_VERSION: &str = "v1.33.0";

/// `/version`.
pub(crate) fn version() -> Value {
    json!({
        "major": "1", "minor": "33", "gitVersion": GIT_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24.0", "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// `/api`.
pub(crate) fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

/// `/apis`: every non-core group, preferred version first.
pub(crate) fn groups(registry: &Registry) -> Value {
    let groups: Vec<Value> = registry
        .groups()
        .into_iter()
        .filter(|(group, _)| !group.is_empty())
        .map(|(group, versions)| {
            let entry = |v: &String| json!({"groupVersion": format!("{group}/{v}"), "version": v});
            json!({
                "name": group,
                "versions": versions.iter().map(entry).collect::<Vec<_>>(),
                "preferredVersion": versions.first().map(entry),
            })
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// The types served at `group`/`version`.
fn served<'a>(
    registry: &'a Registry,
    group: &'a str,
    version: &'a str,
) -> impl Iterator<Item = &'a ResourceType> {
    registry
        .all()
        .iter()
        .filter(move |t| t.group == group && t.version == version)
}

/// `/api/v1` or `/apis/<group>/<version>`.
///
/// # Errors
///
/// `NotFound` when nothing is served at that group/version.
pub(crate) fn resources(
    registry: &Registry,
    group: &str,
    version: &str,
) -> Result<Value, ApiError> {
    let mut resources = Vec::new();
    for t in served(registry, group, version) {
        resources.push(json!({
            "name": t.plural, "singularName": t.singular, "namespaced": t.namespaced, "kind": t.kind,
            "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
            "shortNames": t.short_names, "categories": t.categories,
        }));
        if t.status_subresource {
            resources.push(json!({
                "name": format!("{}/status", t.plural), "singularName": "", "namespaced": t.namespaced,
                "kind": t.kind, "verbs": ["get", "patch", "update"],
            }));
        }
    }
    if resources.is_empty() {
        return Err(ApiError::NotFound(
            "the server could not find the requested resource".into(),
        ));
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Ok(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}),
    )
}

/// `/openapi/v3`: one entry per served group/version.
pub(crate) fn openapi_v3_index(registry: &Registry) -> Value {
    let mut paths = serde_json::Map::new();
    for (group, versions) in registry.groups() {
        for version in versions {
            let path = if group.is_empty() {
                format!("api/{version}")
            } else {
                format!("apis/{group}/{version}")
            };
            // The hash changes whenever the set of kinds does, so clients
            // caching by URL refetch after a CRD is added.
            let hash = served(registry, &group, &version)
                .map(|t| t.plural.len() + t.kind.len())
                .sum::<usize>();
            let url = format!("/openapi/v3/{path}?hash={hash:016X}");
            paths.insert(path, json!({"serverRelativeURL": url}));
        }
    }
    json!({"paths": paths})
}

/// `/openapi/v3/<api|apis>/...`: a PATCH operation per kind that accepts
/// `fieldValidation`, tagged with its group/version/kind.
///
/// # Errors
///
/// `NotFound` when nothing is served at that group/version.
pub(crate) fn openapi_v3(
    registry: &Registry,
    group: &str,
    version: &str,
) -> Result<Value, ApiError> {
    let prefix = if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    };
    let mut paths = serde_json::Map::new();
    for t in served(registry, group, version) {
        let scope = if t.namespaced {
            "/namespaces/{namespace}"
        } else {
            ""
        };
        let path = format!("{prefix}{scope}/{}/{{name}}", t.plural);
        let operation = json!({
            "operationId": format!("patch{}", t.kind),
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": {"group": t.group, "version": t.version, "kind": t.kind},
            "parameters": [
                {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}, "uniqueItems": true},
                {"name": "fieldManager", "in": "query", "schema": {"type": "string"}, "uniqueItems": true},
            ],
            "responses": {"200": {"description": "OK"}},
        });
        paths.insert(path, json!({"patch": operation}));
    }
    if paths.is_empty() {
        return Err(ApiError::NotFound(
            "the server could not find the requested resource".into(),
        ));
    }
    Ok(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": GIT_VERSION},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}
