//! An in-memory Kubernetes API server for tests.
//!
//! No kube-apiserver binary is available to the tests, so this module serves
//! the real Kubernetes HTTP protocol from memory, generic over
//! group/version/resource: discovery, CRUD, patches, server-side apply, the
//! `status` subresource, finalizers, list paging and selectors, and watches
//! with bookmarks and 410 Gone. The controller's kube-rs client and the real
//! `kubectl` both run against it (see [`ApiServer::kubeconfig`]), and tests
//! can break it on purpose ([`ApiServer::restart`],
//! [`ApiServer::drop_watches`], [`ApiServer::expire_resource_versions`]) and
//! read back every call it received ([`ApiServer::requests`]).
//!
//! # What it enforces, as a real server does
//!
//! * Custom resources are admitted against their CRD version's
//!   `openAPIV3Schema`: unknown fields pruned (400 under
//!   `fieldValidation=Strict`), `default`s applied, OpenAPI keywords
//!   checked, then `x-kubernetes-validations` CEL rules evaluated with
//!   `kube-cel`, `oldSelf` included. Rules it cannot evaluate are listed by
//!   [`ApiServer::unevaluable_rules`], never silently passed.
//! * Server-side apply keeps real `managedFields`: a change to a field
//!   another manager owns is a 409 unless `force=true`; fields a manager
//!   stops applying are removed unless someone else owns them; lists merge
//!   by `x-kubernetes-list-type` (`map` by its keys, `set` by value), and
//!   built-in kinds merge `conditions` by `type`, Service ports by port and
//!   protocol, containers by name. Updates take the fields they change.
//! * A PUT of a custom resource without `resourceVersion` is 422; names
//!   are checked per kind; namespaced objects need their Namespace (404;
//!   403 while it is being deleted); no finalizer may be added to an object
//!   being deleted (422). `default`, `kube-system`, `kube-public` and
//!   `kube-node-lease` exist from the start.
//! * Core `v1` and `events.k8s.io/v1` Events are one collection, converted
//!   between the two shapes (`note`↔`message`, `regarding`↔`involvedObject`, ...).
//!
//! # What is simplified
//!
//! * No authentication, authorization or admission webhooks; built-in kinds
//!   have no schema (any fields are accepted, nothing is defaulted), and
//!   `fieldValidation=Warn` sends no warnings. `format` is not checked, a
//!   `pattern` the Rust regex engine cannot compile is not enforced, and
//!   there is no validation ratcheting.
//! * No version conversion beyond Events: an object is stored as written
//!   and served under whichever version of its group/resource is asked for.
//!   `managedFields` of Events are kept in the core shape.
//! * Manager identity is (manager, operation, subresource), without the
//!   `apiVersion` of Update managers; a client's own `managedFields` in a
//!   write are ignored. The order of merged keyed lists is the live order
//!   with new items appended.
//! * Strategic merge patches are JSON merge patches.
//! * Garbage collection by `ownerReferences` is immediate and in the
//!   background (`gc.rs`); deleting a namespace deletes its objects at
//!   once (finalizers still hold).
//! * Lists always serve the latest state (`resourceVersion` on lists is
//!   ignored); `dryRun` is refused.
//! * Tables (`kubectl get`) have NAME and AGE columns, or NAME and a CRD's
//!   `additionalPrinterColumns` (a JSONPath subset).
//! * Request bodies must be JSON (or YAML for apply), except protobuf
//!   bodies of Secrets, ConfigMaps and Namespaces (Helm's release records,
//!   `kubectl create namespace x`); other protobuf bodies get 415.
//!   Responses are always JSON, which every client accepts.

mod admission;
mod apply;
mod cel;
mod discovery;
mod error;
mod events;
mod fieldset;
mod gc;
mod handlers;
mod jsonpath;
mod kinds;
mod managed;
mod merge;
mod meta_rules;
mod names;
mod objects;
mod patch;
mod protobuf;
mod prune;
mod render;
mod request;
mod schema;
mod selectors;
mod storage;
mod validation;
mod verbs;
mod watch;

pub use cel::UnevaluableRule;
pub use error::ApiError;
pub use handlers::RequestRecord;
pub use kinds::ResourceType;

use crate::error::HarnessError;
use handlers::{Shared, handle, lock};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use managed::Manager;
use objects::meta_str;
use serde_json::Value;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use storage::{Ownership, Store, Write};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// A running in-memory API server on 127.0.0.1; it stops when dropped.
#[derive(Debug)]
pub struct ApiServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    kubeconfig: PathBuf,
    acceptor: Mutex<Option<JoinHandle<()>>>,
}

impl ApiServer {
    /// Starts a server on a free port of 127.0.0.1.
    ///
    /// # Errors
    ///
    /// When no port can be bound or the kubeconfig can't be written.
    pub async fn start() -> Result<ApiServer, HarnessError> {
        ApiServer::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
    }

    /// Starts a server on `addr` (port 0 picks a free port) and writes its
    /// kubeconfig under the harness log directory.
    ///
    /// # Errors
    ///
    /// When `addr` can't be bound or the kubeconfig can't be written.
    pub async fn start_on(addr: SocketAddr) -> Result<ApiServer, HarnessError> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::new()),
            stop_watches: tokio::sync::watch::channel(0).0,
            requests: Mutex::new(Vec::new()),
            address: addr.to_string(),
        });
        let dir = crate::log_dir();
        std::fs::create_dir_all(&dir)?;
        let kubeconfig = dir.join(format!(
            "apiserver-{}-{}.kubeconfig",
            std::process::id(),
            addr.port()
        ));
        let server = ApiServer {
            acceptor: Mutex::new(Some(tokio::spawn(accept(listener, Arc::clone(&shared))))),
            shared,
            addr,
            kubeconfig,
        };
        std::fs::write(&server.kubeconfig, server.kubeconfig_yaml())?;
        Ok(server)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A kubeconfig file for this server: cluster `tollgate-test` at
    /// [`ApiServer::url`] (TLS verification off), a dummy token user, and
    /// namespace `default`.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The kubeconfig's text.
    pub fn kubeconfig_yaml(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: tollgate-test\n  cluster:\n    server: {}\n    \
             insecure-skip-tls-verify: true\nusers:\n- name: tollgate-test\n  user:\n    token: tollgate-test-token\n\
             contexts:\n- name: tollgate-test\n  context:\n    cluster: tollgate-test\n    user: tollgate-test\n    \
             namespace: default\ncurrent-context: tollgate-test\n",
            self.url()
        )
    }

    /// Simulates an API server restart: closes every connection and watch,
    /// then serves again on the same port with the same data and versions.
    ///
    /// # Guarantees
    ///
    /// When this returns, the port accepts connections again (retried for a
    /// few seconds if the old socket is slow to go).
    pub async fn restart(&self) {
        let old = lock(&self.acceptor).take();
        if let Some(old) = old {
            old.abort();
            let _ = old.await;
        }
        self.drop_watches();
        for _ in 0..100 {
            if let Ok(listener) = TcpListener::bind(self.addr).await {
                let task = tokio::spawn(accept(listener, Arc::clone(&self.shared)));
                *lock(&self.acceptor) = Some(task);
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Ends every open watch stream; connections stay up.
    pub fn drop_watches(&self) {
        self.shared.stop_watches.send_modify(|n| *n += 1);
    }

    /// Compacts the history: watches from any version before the current
    /// one get 410 Gone. Open watches continue; combine with
    /// [`ApiServer::drop_watches`] to make them restart from an old version.
    pub fn expire_resource_versions(&self) {
        lock(&self.shared.store).compact();
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.shared.requests).clone()
    }

    /// Forgets the request log (to assert on what happens next).
    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }

    /// The `x-kubernetes-validations` rules of the CRDs written so far that
    /// this server cannot evaluate (see the `cel` module), sorted. They
    /// are not held against objects, so a test can print and bound them.
    pub fn unevaluable_rules(&self) -> Vec<UnevaluableRule> {
        lock(&self.shared.store).unevaluable_rules()
    }

    /// The current global resource version.
    pub fn resource_version(&self) -> u64 {
        lock(&self.shared.store).resource_version()
    }

    /// The served type for `api_version` and a kind, plural or short name.
    fn resource_type(&self, api_version: &str, kind: &str) -> Result<ResourceType, ApiError> {
        lock(&self.shared.store)
            .kinds
            .lookup(api_version, kind)
            .cloned()
            .ok_or_else(|| {
                ApiError::NotFound(format!("no resource {kind:?} is served in {api_version}"))
            })
    }

    /// Creates `object` (its `apiVersion`, `kind`, and `metadata.namespace`,
    /// default `default`), as a POST would.
    ///
    /// # Errors
    ///
    /// As the API would answer: `NotFound` for an unserved kind,
    /// `AlreadyExists`, `Invalid`.
    pub fn create(&self, object: Value) -> Result<Value, ApiError> {
        let (rt, ns) = self.target_of(&object)?;
        let manager = test_manager(None);
        let write = Write {
            ownership: Ownership::Update(&manager),
            ..Write::server()
        };
        lock(&self.shared.store).create(&rt, &ns, object, write)
    }

    /// Replaces `object` as a PUT would (its `resourceVersion`, if set, must
    /// be current); `.status` is ignored for kinds with a status subresource.
    ///
    /// # Errors
    ///
    /// `NotFound`, `Conflict`.
    pub fn replace(&self, object: Value) -> Result<Value, ApiError> {
        self.write(object, false)
    }

    /// Makes installed CRD `crd` (e.g. `httproutes.gateway.networking.k8s.io`)
    /// accept `added` wherever an enum lists `existing`, as a newer release
    /// of the CRD would: how tests put objects the controller's types do
    /// not know into the server.
    ///
    /// # Errors
    ///
    /// `NotFound` when the CRD is not installed.
    pub fn extend_crd_enums(&self, crd: &str, existing: &str, added: &str) -> Result<(), ApiError> {
        fn extend(value: &mut Value, existing: &str, added: &str) {
            match value {
                Value::Object(map) => {
                    if let Some(Value::Array(values)) = map.get_mut("enum")
                        && values.iter().any(|v| v == existing)
                    {
                        values.push(Value::from(added));
                    }
                    map.values_mut().for_each(|v| extend(v, existing, added));
                }
                Value::Array(items) => items.iter_mut().for_each(|v| extend(v, existing, added)),
                _ => {}
            }
        }
        let mut object = self.get(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            None,
            crd,
        )?;
        extend(&mut object, existing, added);
        self.replace(object).map(drop)
    }

    /// Replaces the `.status` of `object`, as a PUT to `/status` would.
    ///
    /// # Errors
    ///
    /// `NotFound`, `Conflict`.
    pub fn replace_status(&self, object: Value) -> Result<Value, ApiError> {
        self.write(object, true)
    }

    fn write(&self, object: Value, status: bool) -> Result<Value, ApiError> {
        let (rt, ns) = self.target_of(&object)?;
        let name = meta_str(&object, "name").to_string();
        let manager = test_manager(status.then_some("status"));
        let write = Write {
            status,
            ownership: Ownership::Update(&manager),
            put: true,
            strict: false,
        };
        lock(&self.shared.store).update(&rt, &ns, &name, object, write)
    }

    /// One object; `ns` is ignored for cluster-scoped kinds.
    ///
    /// # Errors
    ///
    /// `NotFound`.
    pub fn get(
        &self,
        api_version: &str,
        kind: &str,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        let rt = self.resource_type(api_version, kind)?;
        lock(&self.shared.store).get(&rt, ns.unwrap_or_default(), name)
    }

    /// All objects of a kind, in one namespace or (with `None`) everywhere.
    ///
    /// # Errors
    ///
    /// `NotFound` for an unserved kind.
    pub fn list(
        &self,
        api_version: &str,
        kind: &str,
        ns: Option<&str>,
    ) -> Result<Vec<Value>, ApiError> {
        let rt = self.resource_type(api_version, kind)?;
        Ok(lock(&self.shared.store).list(&rt, ns))
    }

    /// Deletes an object as a DELETE would: with finalizers it only gets a
    /// `deletionTimestamp`. Returns its last state.
    ///
    /// # Errors
    ///
    /// `NotFound`.
    pub fn delete(
        &self,
        api_version: &str,
        kind: &str,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        let rt = self.resource_type(api_version, kind)?;
        lock(&self.shared.store).delete(&rt, ns.unwrap_or_default(), name)
    }

    /// The type and namespace an object names.
    fn target_of(&self, object: &Value) -> Result<(ResourceType, String), ApiError> {
        let text = |field: &str| {
            object
                .get(field)
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        let rt = self.resource_type(text("apiVersion"), text("kind"))?;
        let ns = match meta_str(object, "namespace") {
            "" => "default".to_string(),
            ns => ns.to_string(),
        };
        Ok((rt, ns))
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        if let Some(task) = lock(&self.acceptor).take() {
            task.abort();
        }
        self.drop_watches();
        let _ = std::fs::remove_file(&self.kubeconfig);
    }
}

/// The manager recorded for writes made through the in-process helpers.
fn test_manager(subresource: Option<&'static str>) -> Manager {
    Manager {
        name: "tollgate-test".into(),
        operation: "Update",
        subresource,
    }
}

/// Accepts connections until aborted; aborting drops every connection too,
/// since they live in this task's `JoinSet`.
async fn accept(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let shared = Arc::clone(&shared);
                connections.spawn(async move {
                    let service = service_fn(move |req| handle(Arc::clone(&shared), req));
                    // A connection error only ends that connection.
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = connections.join_next() => {}
        }
    }
}
