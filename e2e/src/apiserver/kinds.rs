//! The resource types the test API server serves, and how a
//! CustomResourceDefinition adds more at runtime.
//!
//! A [`ResourceType`] is one served group/version/plural: its kind, scope,
//! short names and whether it has a `status` subresource. The [`Registry`]
//! starts with the built-in kinds Tollgate and its tests touch and grows
//! when a CRD object is written, exactly as discovery and routing do on a
//! real server, so `kubectl apply` of the Gateway API CRDs makes
//! `kubectl get gateways` work.

use super::schema;
use serde_json::Value;
use std::cmp::Ordering;
use std::sync::Arc;

/// One served resource: a group/version/plural and what it looks like.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceType {
    /// API group; empty for the core group.
    pub group: String,
    /// Version (`v1`, `v1beta1`).
    pub version: String,
    /// Kind (`Gateway`).
    pub kind: String,
    /// Lower-case plural, the path segment (`gateways`).
    pub plural: String,
    /// Lower-case singular (`gateway`).
    pub singular: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Short names (`gtw`).
    pub short_names: Vec<String>,
    /// Categories (`gateway-api`, `all`).
    pub categories: Vec<String>,
    /// Whether `<plural>/status` is a subresource: the main endpoint then
    /// ignores `.status` and `/status` changes only `.status`.
    pub status_subresource: bool,
    /// The schema of whole objects (see `schema::object`): a CRD version's
    /// `openAPIV3Schema`, or the keyed lists of a built-in kind.
    pub(crate) schema: Arc<Value>,
    /// Whether a CRD defines this type (its schema is then enforced).
    pub(crate) custom: bool,
    /// A CRD version's `additionalPrinterColumns` (`kubectl get` columns
    /// after NAME); empty: NAME and AGE only.
    pub(crate) printer_columns: Vec<Value>,
}

impl ResourceType {
    /// `apiVersion` of objects served by this type (`v1`, `apps/v1`).
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `<plural>.<group>` (or the plural alone in the core group), as in messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// The group objects of this type are stored under: `events.k8s.io`
    /// Events are core Events.
    pub(crate) fn storage_group(&self) -> &str {
        if self.group == "events.k8s.io" && self.plural == "events" {
            ""
        } else {
            &self.group
        }
    }

    /// Whether `name` is this type's kind, plural, singular or a short name
    /// (case-insensitive for the kind).
    pub fn answers_to(&self, name: &str) -> bool {
        self.kind.eq_ignore_ascii_case(name)
            || self.plural == name
            || self.singular == name
            || self.short_names.iter().any(|s| s == name)
    }
}

/// Shorthand for the built-in table.
struct Builtin(
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    bool,
    &'static [&'static str],
    bool,
);

/// Built-in kinds: (group, version, kind, plural, namespaced, short names, status).
const BUILTINS: &[Builtin] = &[
    Builtin("", "v1", "Namespace", "namespaces", false, &["ns"], true),
    Builtin("", "v1", "Service", "services", true, &["svc"], true),
    Builtin("", "v1", "Endpoints", "endpoints", true, &["ep"], false),
    Builtin("", "v1", "Secret", "secrets", true, &[], false),
    Builtin("", "v1", "ConfigMap", "configmaps", true, &["cm"], false),
    Builtin("", "v1", "Event", "events", true, &["ev"], false),
    Builtin(
        "",
        "v1",
        "ServiceAccount",
        "serviceaccounts",
        true,
        &["sa"],
        false,
    ),
    Builtin("", "v1", "Pod", "pods", true, &["po"], true),
    Builtin(
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        "endpointslices",
        true,
        &[],
        false,
    ),
    Builtin(
        "coordination.k8s.io",
        "v1",
        "Lease",
        "leases",
        true,
        &[],
        false,
    ),
    Builtin(
        "events.k8s.io",
        "v1",
        "Event",
        "events",
        true,
        &["ev"],
        false,
    ),
    Builtin(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        false,
        &["crd", "crds"],
        true,
    ),
    Builtin(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        true,
        &["deploy"],
        true,
    ),
    Builtin(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        true,
        &["pdb"],
        true,
    ),
    Builtin(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        true,
        &["hpa"],
        true,
    ),
    Builtin(
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        "networkpolicies",
        true,
        &["netpol"],
        false,
    ),
    Builtin(
        "rbac.authorization.k8s.io",
        "v1",
        "Role",
        "roles",
        true,
        &[],
        false,
    ),
    Builtin(
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        true,
        &[],
        false,
    ),
    Builtin(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        false,
        &[],
        false,
    ),
    Builtin(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        false,
        &[],
        false,
    ),
];

/// All served resource types.
#[derive(Clone, Debug)]
pub(crate) struct Registry {
    types: Vec<ResourceType>,
}

impl Registry {
    /// The built-in kinds only.
    pub(crate) fn builtin() -> Registry {
        let types = BUILTINS
            .iter()
            .map(
                |Builtin(group, version, kind, plural, namespaced, short, status)| ResourceType {
                    group: (*group).to_string(),
                    version: (*version).to_string(),
                    kind: (*kind).to_string(),
                    plural: (*plural).to_string(),
                    singular: kind.to_ascii_lowercase(),
                    namespaced: *namespaced,
                    short_names: short.iter().map(|s| (*s).to_string()).collect(),
                    // `kubectl get all` lists the kinds in category `all`.
                    categories: match *plural {
                        "services" | "pods" | "deployments" => vec!["all".to_string()],
                        _ => Vec::new(),
                    },
                    status_subresource: *status,
                    schema: Arc::new(schema::object(schema::builtin(group, kind).as_ref())),
                    custom: false,
                    printer_columns: Vec::new(),
                },
            )
            .collect();
        Registry { types }
    }

    /// Every type, built-ins first.
    pub(crate) fn all(&self) -> &[ResourceType] {
        &self.types
    }

    /// The type served at `group`/`version`/`plural`.
    pub(crate) fn find(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
    }

    /// The type for `api_version` (`apps/v1`) and a kind, plural or short name.
    pub(crate) fn lookup(&self, api_version: &str, name: &str) -> Option<&ResourceType> {
        let (group, version) = split_api_version(api_version);
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.answers_to(name))
    }

    /// Groups with their versions, most preferred version first, groups in
    /// registration order.
    pub(crate) fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for t in &self.types {
            match groups.iter_mut().find(|(g, _)| *g == t.group) {
                Some((_, versions)) if !versions.contains(&t.version) => {
                    versions.push(t.version.clone())
                }
                Some(_) => {}
                None => groups.push((t.group.clone(), vec![t.version.clone()])),
            }
        }
        for (_, versions) in &mut groups {
            versions.sort_by(|a, b| version_priority(a, b));
        }
        groups
    }

    /// Replaces the types a CRD object declares (all served versions).
    pub(crate) fn register_crd(&mut self, crd: &Value) {
        let types = crd_types(crd);
        if let Some(first) = types.first() {
            let (group, plural) = (first.group.clone(), first.plural.clone());
            self.types
                .retain(|t| !(t.group == group && t.plural == plural));
        }
        self.types.extend(types);
    }

    /// Removes the types a CRD object declares; returns (group, plural).
    pub(crate) fn unregister_crd(&mut self, crd: &Value) -> Option<(String, String)> {
        let group = crd.pointer("/spec/group")?.as_str()?.to_string();
        let plural = crd.pointer("/spec/names/plural")?.as_str()?.to_string();
        self.types
            .retain(|t| !(t.group == group && t.plural == plural));
        Some((group, plural))
    }
}

/// `apps/v1` → (`apps`, `v1`); `v1` → (``, `v1`).
pub(crate) fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.split_once('/').unwrap_or(("", api_version))
}

/// The served resource types a CRD object declares.
pub(crate) fn crd_types(crd: &Value) -> Vec<ResourceType> {
    let text = |p: &str| {
        crd.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let list = |p: &str| -> Vec<String> {
        crd.pointer(p)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let kind = text("/spec/names/kind");
    let singular = match text("/spec/names/singular") {
        s if s.is_empty() => kind.to_ascii_lowercase(),
        s => s,
    };
    let versions = crd.pointer("/spec/versions").and_then(Value::as_array);
    versions
        .into_iter()
        .flatten()
        .filter(|v| v.get("served").and_then(Value::as_bool).unwrap_or(true))
        .filter_map(|v| {
            Some(ResourceType {
                group: text("/spec/group"),
                version: v.get("name")?.as_str()?.to_string(),
                kind: kind.clone(),
                plural: text("/spec/names/plural"),
                singular: singular.clone(),
                namespaced: text("/spec/scope") != "Cluster",
                short_names: list("/spec/names/shortNames"),
                categories: list("/spec/names/categories"),
                status_subresource: v.pointer("/subresources/status").is_some(),
                schema: Arc::new(schema::object(v.pointer("/schema/openAPIV3Schema"))),
                custom: true,
                printer_columns: v
                    .get("additionalPrinterColumns")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Kubernetes version order: GA before beta before alpha, higher numbers
/// first, then anything else alphabetically (`v1`, `v1beta2`, `v1beta1`,
/// `v1alpha1`, `foo`).
pub(crate) fn version_priority(a: &str, b: &str) -> Ordering {
    match (parse_version(a), parse_version(b)) {
        (Some(x), Some(y)) => y.cmp(&x),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

/// `v2beta3` → (stability 1, major 2, minor 3); GA is stability 2.
fn parse_version(v: &str) -> Option<(u8, u64, u64)> {
    let rest = v.strip_prefix('v')?;
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let major = rest[..digits].parse().ok()?;
    let tail = &rest[digits..];
    let (stability, minor) = if tail.is_empty() {
        (2, 0)
    } else if let Some(n) = tail.strip_prefix("beta") {
        (1, n.parse().ok()?)
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (0, n.parse().ok()?)
    } else {
        return None;
    };
    Some((stability, major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Versions sort GA first, then beta, then alpha, newest first within each.
    #[test]
    fn versions_sort_by_kubernetes_priority() {
        let mut v = vec!["v1alpha1", "foo", "v1beta1", "v2", "v1", "v1beta2", "v10"];
        v.sort_by(|a, b| version_priority(a, b));
        assert_eq!(
            v,
            ["v10", "v2", "v1", "v1beta2", "v1beta1", "v1alpha1", "foo"]
        );
    }
}
