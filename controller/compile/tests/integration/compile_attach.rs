//! `Compiler::recompile` against `Compiler::compile`: while the Gateway
//! side of the view stays the same objects, routes compiled to the same
//! result keep their attachments and statuses from the previous compile;
//! the output must be exactly what a compile gives, condition times
//! included.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may unwrap

use crate::compile_memo::{
    KEYS, ROUTE_B, Step, auth_policy, base, edit, options, step_options, steps,
};
use crate::compile_refill::Published;
use tollgate_compile::resources::Resources;
use tollgate_compile::{Compiler, Recompiled};

/// Feeds `steps` to a compiler through `recompile` and to another through
/// `compile`; after each step, and again with the clock moved on, the two
/// agree (on the snapshots alone when `recompile` only refilled endpoints).
fn assert_recompile_equals_compile(start: Resources, steps: &[Step]) {
    let mut plain = Compiler::default();
    let mut incremental = Compiler::default();
    let mut published = Published::default();
    let mut resources = start;
    let first = options("2025-01-01T00:00:00Z");
    published.recompile(&mut incremental, &resources, &first);
    plain.compile(&resources, &first);
    for (i, (name, step)) in steps.iter().enumerate() {
        for view in 0..2 {
            if view == 0 {
                resources = step(&resources);
            }
            let opts = step_options(i + view);
            let expected = plain.compile(&resources, &opts);
            match published.recompile(&mut incremental, &resources, &opts) {
                Recompiled::Full(got) => assert_eq!(got, expected, "after {name} ({view})"),
                Recompiled::Endpoints(snapshots) => {
                    assert_eq!(snapshots, expected.snapshots, "after {name} ({view})")
                }
            }
        }
    }
}

/// Every kind of edit the memo tests make.
#[test]
fn recompile_equals_compile_after_each_edit() {
    assert_recompile_equals_compile(edit(&Resources::default(), &base()), &steps());
}

/// Routes added, edited and deleted among HTTPRoutes only (where outcomes
/// are reused), with Gateway-side changes in between (where they are not).
#[test]
fn route_edits_with_the_gateway_side_unchanged() {
    let route_steps: Vec<Step> = vec![
        ("grpc route deleted", |r| {
            changed(r, |next| next.grpc_routes.remove("apps/a"))
        }),
        ("route added", |r| edit(r, ROUTE_B)),
        ("route edited", |r| {
            let two_parents = "parentRefs: [{name: gw}, {name: gw, sectionName: shop}]\n  \
                               hostnames: [a.example.com]";
            let a = ROUTE_B
                .replace("name: b", "name: a, generation: 2")
                .replace("parentRefs: [{name: gw}]", two_parents);
            edit(r, &a)
        }),
        ("route deleted", |r| {
            changed(r, |next| next.http_routes.remove("shop/c"))
        }),
        ("route of another Gateway added", |r| {
            let elsewhere = ROUTE_B
                .replace("name: b", "name: elsewhere")
                .replace("{name: gw}", "{name: other}");
            edit(r, &elsewhere)
        }),
        ("namespace labels change", |r| {
            let labels =
                "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {team: other}}\n";
            edit(r, labels)
        }),
        ("route added after it", |r| {
            edit(r, &ROUTE_B.replace("name: b", "name: b2"))
        }),
        ("policy on a route added", |r| {
            edit(&edit(r, KEYS), &auth_policy("HTTPRoute", "b", "keys"))
        }),
        ("route under the policy edited", |r| {
            edit(r, &ROUTE_B.replace("value: /b", "value: /b3"))
        }),
        ("route beside it deleted", |r| {
            changed(r, |next| next.http_routes.remove("apps/b2"))
        }),
    ];
    assert_recompile_equals_compile(edit(&Resources::default(), &base()), &route_steps);
}

/// `r` with `change` made to a copy of it (the objects stay shared).
fn changed<T>(r: &Resources, change: impl FnOnce(&mut Resources) -> T) -> Resources {
    let mut next = r.clone();
    change(&mut next);
    next
}
