//! `Compiler::recompile` against `compile` from scratch: a view that
//! changed only in EndpointSlices is refilled, not compiled, and gives the
//! snapshots a compile would; any other change still compiles.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may unwrap

use crate::compile_memo::{base, edit, options, slice, without_times};
use std::collections::BTreeMap;
use std::sync::Arc;
use tollgate_compile::resources::Resources;
use tollgate_compile::{CompileOptions, Compiled, Compiler, Recompiled, compile};
use tollgate_snapshot::Snapshot;

/// The publisher's side of a controller: the current snapshot of each
/// Gateway, stamped with a version as the real publisher stamps them.
#[derive(Default)]
pub(crate) struct Published(BTreeMap<String, Arc<Snapshot>>);

impl Published {
    fn publish(&mut self, snapshots: &BTreeMap<String, Snapshot>) {
        for (gateway, snapshot) in snapshots {
            let mut snapshot = snapshot.clone();
            snapshot.version = self.0.len() as u64 + 7;
            snapshot.schema_version = "1.0".into();
            self.0.insert(gateway.clone(), Arc::new(snapshot));
        }
    }

    pub(crate) fn recompile(
        &mut self,
        compiler: &mut Compiler,
        resources: &Resources,
        options: &CompileOptions,
    ) -> Recompiled {
        let resources = Arc::new(resources.clone());
        let out = compiler.recompile(&resources, options, |g| self.0.get(g).cloned());
        match &out {
            Recompiled::Full(compiled) => self.publish(&compiled.snapshots),
            Recompiled::Endpoints(snapshots) => self.publish(snapshots),
        }
        out
    }
}

/// The statuses of `compiled` without condition times, for comparison.
fn statuses(compiled: &Compiled) -> serde_json::Value {
    without_times(serde_json::to_value(&compiled.statuses).unwrap())
}

/// A change of EndpointSlices only (readiness flips, slices added and
/// removed, a Service no route uses, the clock moving) is refilled into the
/// published snapshots; each time they equal a compile from scratch
/// exactly, and a compile's statuses equal the last full compile's.
#[test]
fn endpoint_only_changes_refill_the_last_snapshots() {
    let steps: Vec<(&str, String)> = vec![
        (
            "endpoint turns unready",
            slice("apps", "echo-1", "echo", "10.0.0.1", false),
        ),
        (
            "second slice added",
            slice("apps", "echo-2", "echo", "10.0.0.2", true),
        ),
        (
            "first slice ready again",
            slice("apps", "echo-1", "echo", "10.0.0.1", true),
        ),
        (
            "other namespace's backend moves",
            slice("backends", "echo-1", "echo", "10.0.1.9", true),
        ),
        (
            "slice of an unrouted Service",
            slice("apps", "idle-1", "idle", "10.0.9.1", true),
        ),
    ];
    let mut compiler = Compiler::default();
    let mut published = Published::default();
    let mut resources = edit(&Resources::default(), &base());
    let first = options("2025-01-01T00:00:00Z");
    let Recompiled::Full(full) = published.recompile(&mut compiler, &resources, &first) else {
        panic!("the first view must be compiled");
    };
    assert_eq!(full, compile(&resources, &first));
    let mut before = full.snapshots.clone();
    for (i, (name, yaml)) in steps.iter().enumerate() {
        resources = edit(&resources, yaml);
        let opts = options(&format!("2025-01-01T00:00:0{}Z", i + 1));
        let scratch = compile(&resources, &opts);
        let Recompiled::Endpoints(snapshots) =
            published.recompile(&mut compiler, &resources, &opts)
        else {
            panic!("after {name}: an endpoint-only change must not compile");
        };
        assert_eq!(snapshots, scratch.snapshots, "after {name}");
        assert_eq!(statuses(&scratch), statuses(&full), "after {name}");
        before = snapshots;
    }
    // The refills did change endpoints: the data plane saw every step.
    assert_ne!(before, full.snapshots);
    // Removing a slice is an endpoint-only change too.
    let mut next = resources.clone();
    next.endpoint_slices.remove("apps/echo-2");
    let Recompiled::Endpoints(snapshots) = published.recompile(&mut compiler, &next, &first) else {
        panic!("a removed slice must not compile");
    };
    assert_eq!(snapshots, compile(&next, &first).snapshots);
}

/// Anything but EndpointSlices changing takes the full compile, also when
/// EndpointSlices change with it, and so does a change of options or a
/// snapshot the caller no longer has; the output equals a compile from
/// scratch either way.
#[test]
fn other_changes_still_compile() {
    let mut compiler = Compiler::default();
    let mut published = Published::default();
    let resources = edit(&Resources::default(), &base());
    let opts = options("2025-01-01T00:00:00Z");
    published.recompile(&mut compiler, &resources, &opts);

    let route = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n\
                 metadata: {name: new, namespace: apps}\n\
                 spec:\n  parentRefs: [{name: gw}]\n  rules:\n  - backendRefs: [{name: echo, port: 80}]\n";
    let mixed = edit(
        &resources,
        &format!(
            "{route}{}",
            slice("apps", "echo-1", "echo", "10.0.0.5", true)
        ),
    );
    let out = published.recompile(&mut compiler, &mixed, &opts);
    assert_eq!(
        out,
        Recompiled::Full(compile(&mixed, &opts)),
        "route and slice"
    );

    let service = edit(
        &mixed,
        "apiVersion: v1\nkind: Service\nmetadata: {name: echo, namespace: apps}\n\
         spec: {ports: [{name: http, port: 80}]}\n",
    );
    let out = published.recompile(&mut compiler, &service, &opts);
    assert_eq!(out, Recompiled::Full(compile(&service, &opts)), "service");

    let offset = CompileOptions {
        listener_port_offset: 10_000,
        ..opts.clone()
    };
    let out = published.recompile(&mut compiler, &service, &offset);
    assert_eq!(out, Recompiled::Full(compile(&service, &offset)), "options");

    let flipped = edit(&service, &slice("apps", "echo-1", "echo", "10.0.0.6", true));
    published.0.clear();
    let out = published.recompile(&mut compiler, &flipped, &offset);
    assert_eq!(
        out,
        Recompiled::Full(compile(&flipped, &offset)),
        "nothing published"
    );

    // A plain `compile` in between forgets the last view.
    compiler.compile(&flipped, &offset);
    let out = published.recompile(&mut compiler, &flipped, &offset);
    assert!(matches!(out, Recompiled::Full(_)), "after a plain compile");
}
