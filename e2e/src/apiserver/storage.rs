//! The object store: every object, the global resource version, and the
//! event history watches replay from.
//!
//! Each successful write bumps one global `resourceVersion` (like etcd's
//! revision), stores the object under (group, plural, namespace, name) —
//! whatever version wrote it, since the test server does no conversion —
//! and appends an [`Event`] to a bounded history that is also broadcast to
//! live watches. A watch from version N replays history after N; N older
//! than the compacted point gets 410 Gone.

use super::admission::admit;
use super::cel::{Rules, UnevaluableRule};
use super::error::ApiError;
use super::kinds::{Registry, ResourceType, crd_types};
use super::managed::{self, Manager, Scope};
use super::meta_rules;
use super::names::Names;
use super::objects::{
    crd_status, finalizers, merge_write, meta_str, now, same_content, spec_changed, stored, view,
    with_meta,
};
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use tokio::sync::broadcast;

/// Events kept for watches to replay.
const HISTORY: usize = 10_000;

/// Events buffered per live watch before it is ended as too slow.
const BROADCAST: usize = 4_096;

/// How a write changes `managedFields`.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Ownership<'a> {
    /// A write of the server itself: nobody gains fields.
    Server,
    /// An update by this manager (create, PUT, non-apply patches).
    Update(&'a Manager),
    /// A server-side apply: the object carries its new `managedFields`.
    Applied,
}

/// How an update was asked for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Write<'a> {
    /// Through the `/status` subresource.
    pub(crate) status: bool,
    /// Who gains which fields.
    pub(crate) ownership: Ownership<'a>,
    /// A PUT (custom resources then need a `resourceVersion`).
    pub(crate) put: bool,
    /// `fieldValidation=Strict`: unknown fields are an error, not pruned.
    pub(crate) strict: bool,
}

impl Write<'_> {
    /// A write of the server itself.
    pub(crate) fn server() -> Write<'static> {
        Write {
            status: false,
            ownership: Ownership::Server,
            put: false,
            strict: false,
        }
    }
}

/// What happened to an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EventKind {
    Added,
    Modified,
    Deleted,
}

/// One write, as watches see it.
#[derive(Clone, Debug)]
pub(crate) struct Event {
    pub(crate) rv: u64,
    pub(crate) kind: EventKind,
    pub(crate) group: String,
    pub(crate) plural: String,
    /// The object after the write (for deletes: the last state, new version).
    pub(crate) object: Value,
    /// The object before the write, for watches with selectors.
    pub(crate) previous: Option<Value>,
}

/// Where an object lives.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ObjKey {
    group: String,
    plural: String,
    namespace: String,
    name: String,
}

impl ObjKey {
    pub(crate) fn new(rt: &ResourceType, namespace: &str, name: &str) -> ObjKey {
        let namespace = if rt.namespaced { namespace } else { "" };
        ObjKey {
            group: rt.storage_group().to_string(),
            plural: rt.plural.clone(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }
}

/// All objects, the resource version, the history and the resource types.
#[derive(Debug)]
pub(crate) struct Store {
    rv: u64,
    compacted: u64,
    objects: BTreeMap<ObjKey, Value>,
    history: VecDeque<Arc<Event>>,
    events: broadcast::Sender<Arc<Event>>,
    pub(crate) kinds: Registry,
    names: Names,
    rules: Rules,
}

impl Store {
    /// An empty store with the built-in kinds and the usual namespaces.
    pub(crate) fn new() -> Store {
        let mut store = Store {
            rv: 0,
            compacted: 0,
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            events: broadcast::channel(BROADCAST).0,
            kinds: Registry::builtin(),
            names: Names::new(),
            rules: Rules::default(),
        };
        let namespaces = store.kinds.lookup("v1", "Namespace").cloned();
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            if let Some(rt) = &namespaces {
                let object = json!({"metadata": {"name": ns}, "spec": {"finalizers": ["kubernetes"]},
                                    "status": {"phase": "Active"}});
                let _ = store.create(rt, "", object, Write::server());
            }
        }
        store
    }

    /// The current global resource version.
    pub(crate) fn resource_version(&self) -> u64 {
        self.rv
    }

    /// The oldest version a watch may start from.
    pub(crate) fn compacted(&self) -> u64 {
        self.compacted
    }

    /// Forgets the history: watches from any older version get 410 Gone.
    pub(crate) fn compact(&mut self) {
        self.compacted = self.rv;
        self.history.clear();
    }

    /// Events after version `rv`, oldest first, and a receiver for later ones.
    pub(crate) fn subscribe(&self, rv: u64) -> (Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>) {
        let replay = self.history.iter().filter(|e| e.rv > rv).cloned().collect();
        (replay, self.events.subscribe())
    }

    /// One object, as `rt` serves it.
    pub(crate) fn get(&self, rt: &ResourceType, ns: &str, name: &str) -> Result<Value, ApiError> {
        self.objects
            .get(&ObjKey::new(rt, ns, name))
            .map(|o| view(rt, o))
            .ok_or_else(|| ApiError::not_found(&rt.qualified(), name))
    }

    /// Objects of `rt` (in namespace `ns`, or everywhere), in key order, as
    /// `rt` serves them.
    pub(crate) fn list(&self, rt: &ResourceType, ns: Option<&str>) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|(k, _)| k.group == rt.storage_group() && k.plural == rt.plural)
            .filter(|(k, _)| ns.is_none_or(|ns| !rt.namespaced || k.namespace == ns))
            .map(|(_, o)| view(rt, o))
            .collect()
    }

    /// Creates `object` in namespace `ns` (ignored for cluster-scoped kinds).
    ///
    /// # Errors
    ///
    /// `AlreadyExists`; `NotFound` when the namespace does not exist;
    /// `Forbidden` when it is being deleted; `Invalid` without a name, with
    /// a resource version or with a name the kind does not allow.
    pub(crate) fn create(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        object: Value,
        write: Write<'_>,
    ) -> Result<Value, ApiError> {
        let mut object = stored(rt, object);
        let name = self.names.pick_name(&object)?;
        if !meta_str(&object, "resourceVersion").is_empty() {
            return Err(ApiError::Invalid(format!(
                "{} \"{name}\" is invalid: metadata.resourceVersion: Invalid value: resourceVersion should not be set on objects to be created",
                rt.kind
            )));
        }
        if rt.namespaced {
            self.check_namespace(ns)?;
        }
        let key = ObjKey::new(rt, ns, &name);
        if self.objects.contains_key(&key) {
            return Err(ApiError::AlreadyExists(format!(
                "{} \"{name}\" already exists",
                rt.qualified()
            )));
        }
        let uid = self.names.uid();
        let applied_fields = object.pointer("/metadata/managedFields").cloned();
        with_meta(&mut object, |meta| {
            meta.insert("name".into(), name.clone().into());
            meta.remove("generateName");
            match rt.namespaced {
                true => meta.insert("namespace".into(), ns.into()),
                false => meta.remove("namespace"),
            };
            meta.insert("uid".into(), uid.into());
            meta.insert("creationTimestamp".into(), now().into());
            meta.insert("generation".into(), 1.into());
            for server_owned in [
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "managedFields",
            ] {
                meta.remove(server_owned);
            }
        });
        if let (true, Value::Object(map)) = (rt.status_subresource, &mut object) {
            map.remove("status");
        }
        admit(&mut self.rules, rt, &mut object, None, write.strict)?;
        meta_rules::check(rt, &object)?;
        if is_crd(rt) {
            let status = crd_status(&object);
            if let Value::Object(map) = &mut object {
                map.insert("status".into(), status);
            }
        }
        self.record_fields(
            rt,
            &json!({}),
            &mut object,
            write.ownership,
            Scope::Main {
                status_subresource: rt.status_subresource,
            },
            applied_fields,
        );
        if is_crd(rt) {
            self.register_crd(&object);
        }
        Ok(view(
            rt,
            &self.commit(rt, key, EventKind::Added, object, None),
        ))
    }

    /// Serves the types of `crd` and compiles their CEL rules.
    fn register_crd(&mut self, crd: &Value) {
        self.kinds.register_crd(crd);
        self.rules.register(&crd_types(crd), crd);
    }

    /// The CEL rules of served CRDs that could not be evaluated.
    pub(crate) fn unevaluable_rules(&self) -> Vec<UnevaluableRule> {
        self.rules.unevaluable()
    }

    /// Fails unless namespace `ns` exists and is not being deleted.
    fn check_namespace(&self, ns: &str) -> Result<(), ApiError> {
        let key = ObjKey {
            group: String::new(),
            plural: "namespaces".into(),
            namespace: String::new(),
            name: ns.to_string(),
        };
        match self.objects.get(&key) {
            None => Err(ApiError::not_found("namespaces", ns)),
            Some(n) if !meta_str(n, "deletionTimestamp").is_empty() => {
                Err(ApiError::Forbidden(format!(
                    "unable to create new content in namespace {ns} because it is being terminated"
                )))
            }
            Some(_) => Ok(()),
        }
    }

    /// Sets the `managedFields` of `next` (a write over `old`) for `ownership`;
    /// `applied` are the entries an apply computed.
    fn record_fields(
        &self,
        rt: &ResourceType,
        old: &Value,
        next: &mut Value,
        ownership: Ownership<'_>,
        scope: Scope,
        applied: Option<Value>,
    ) {
        match ownership {
            Ownership::Server => {}
            Ownership::Update(manager) => {
                managed::record_update(old, next, &rt.schema, manager, scope, &rt.api_version())
            }
            Ownership::Applied => with_meta(next, |meta| {
                match applied {
                    Some(fields) => meta.insert("managedFields".into(), fields),
                    None => meta.remove("managedFields"),
                };
            }),
        }
    }

    /// Replaces an existing object with `new` (status only when `status` is
    /// set), following the server-owned metadata rules; a write that changes
    /// nothing is not stored and keeps the resource version.
    ///
    /// # Errors
    ///
    /// `NotFound`; `Conflict` when `new` carries a stale resource version;
    /// `Invalid` for a PUT of a custom resource without one, a name the kind
    /// does not allow or a finalizer added during deletion; `BadRequest`
    /// when its name differs from `name`.
    pub(crate) fn update(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        new: Value,
        write: Write<'_>,
    ) -> Result<Value, ApiError> {
        let new = stored(rt, new);
        let key = ObjKey::new(rt, ns, name);
        let old = self
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&rt.qualified(), name))?;
        let body_name = meta_str(&new, "name");
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let wanted_rv = meta_str(&new, "resourceVersion");
        if write.put && rt.custom && wanted_rv.is_empty() {
            return Err(ApiError::Invalid(format!(
                "{}.{} \"{name}\" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update",
                rt.kind, rt.group
            )));
        }
        if !wanted_rv.is_empty() && wanted_rv != meta_str(&old, "resourceVersion") {
            return Err(ApiError::Conflict(format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                rt.qualified()
            )));
        }
        let applied_fields = new.pointer("/metadata/managedFields").cloned();
        let mut next = merge_write(rt, &old, new, write.status);
        admit(&mut self.rules, rt, &mut next, Some(&old), write.strict)?;
        meta_rules::check(rt, &next)?;
        meta_rules::check_update(rt, &old, &next)?;
        if spec_changed(&old, &next) {
            let generation = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            with_meta(&mut next, |m| {
                m.insert("generation".into(), (generation + 1).into())
            });
        }
        let scope = match write.status {
            true => Scope::Status,
            false => Scope::Main {
                status_subresource: rt.status_subresource,
            },
        };
        self.record_fields(rt, &old, &mut next, write.ownership, scope, applied_fields);
        if is_crd(rt) {
            self.register_crd(&next);
        }
        if same_content(&old, &next) {
            return Ok(view(rt, &old));
        }
        if !meta_str(&next, "deletionTimestamp").is_empty() && finalizers(&next).is_empty() {
            return Ok(view(rt, &self.remove(rt, key, next)));
        }
        Ok(view(
            rt,
            &self.commit(rt, key, EventKind::Modified, next, Some(old)),
        ))
    }

    /// Deletes an object: with finalizers it only gets a `deletionTimestamp`
    /// (and stays until they are removed); without, it is removed. Deleting
    /// a namespace deletes its contents; deleting a CRD its objects and types.
    ///
    /// # Errors
    ///
    /// `NotFound`.
    pub(crate) fn delete(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
    ) -> Result<Value, ApiError> {
        let key = ObjKey::new(rt, ns, name);
        let old = self
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&rt.qualified(), name))?;
        if !finalizers(&old).is_empty() {
            if !meta_str(&old, "deletionTimestamp").is_empty() {
                return Ok(view(rt, &old));
            }
            let mut next = old.clone();
            let generation = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            with_meta(&mut next, |m| {
                m.insert("deletionTimestamp".into(), now().into());
                m.insert("deletionGracePeriodSeconds".into(), 0.into());
                m.insert("generation".into(), (generation + 1).into());
            });
            return Ok(view(
                rt,
                &self.commit(rt, key, EventKind::Modified, next, Some(old)),
            ));
        }
        if rt.group.is_empty() && rt.plural == "namespaces" {
            self.delete_contents(|k| k.namespace == name);
        }
        if is_crd(rt)
            && let Some((group, plural)) = self.kinds.unregister_crd(&old)
        {
            self.delete_contents(|k| k.group == group && k.plural == plural);
        }
        Ok(view(rt, &self.remove(rt, key, old)))
    }

    /// Deletes (finalizers respected) every object whose key matches.
    fn delete_contents(&mut self, matches: impl Fn(&ObjKey) -> bool) {
        let keys: Vec<ObjKey> = self
            .objects
            .keys()
            .filter(|k| matches(k))
            .cloned()
            .collect();
        for key in keys {
            self.delete_key(&key);
        }
    }

    /// Deletes (finalizers respected) the object at `key`, if still there.
    fn delete_key(&mut self, key: &ObjKey) {
        let rt = self
            .kinds
            .all()
            .iter()
            .find(|t| t.group == key.group && t.plural == key.plural)
            .cloned();
        if let Some(rt) = rt {
            let _ = self.delete(&rt, &key.namespace, &key.name);
        }
    }

    /// Removes the object at `key`, announcing `last` as deleted.
    /// Its dependents (by `ownerReferences`) are deleted after it.
    fn remove(&mut self, rt: &ResourceType, key: ObjKey, last: Value) -> Value {
        let previous = self.objects.remove(&key);
        let gone = self.commit(rt, key, EventKind::Deleted, last, previous);
        let uid = meta_str(&gone, "uid").to_string();
        for dependent in super::gc::dependents(&self.objects, &uid) {
            self.delete_key(&dependent);
        }
        gone
    }

    /// Stamps a new resource version on `object`, stores it (unless
    /// deleted), records and broadcasts the event.
    fn commit(
        &mut self,
        rt: &ResourceType,
        key: ObjKey,
        kind: EventKind,
        mut object: Value,
        previous: Option<Value>,
    ) -> Value {
        self.rv += 1;
        let rv = self.rv;
        with_meta(&mut object, |m| {
            m.insert("resourceVersion".into(), rv.to_string().into())
        });
        if kind != EventKind::Deleted {
            self.objects.insert(key, object.clone());
        }
        let event = Arc::new(Event {
            rv,
            kind,
            group: rt.storage_group().to_string(),
            plural: rt.plural.clone(),
            object: object.clone(),
            previous,
        });
        self.history.push_back(Arc::clone(&event));
        while self.history.len() > HISTORY {
            if let Some(old) = self.history.pop_front() {
                self.compacted = old.rv;
            }
        }
        // No receivers is fine: nobody is watching.
        let _ = self.events.send(event);
        object
    }
}

/// Whether `rt` is the CustomResourceDefinition type.
fn is_crd(rt: &ResourceType) -> bool {
    rt.group == "apiextensions.k8s.io" && rt.plural == "customresourcedefinitions"
}
