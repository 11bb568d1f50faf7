//! Compile and `Runtime::build` cost at scale.
//!
//! Generates N HTTPRoutes (each with its own hostname and two path
//! matches) attached to one Gateway, then measures `compile` and the data
//! plane's `Runtime::build` on the resulting snapshot. Before the timed
//! runs it prints the snapshot's JSON size and the heap the built
//! runtime retains (snapshot included), per 1k routes.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use serde_json::json;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use std::alloc::System;
use tollgate_compile::resources::Resources;
use tollgate_compile::{CompileOptions, compile};
use tollgate_dataplane::runtime::Runtime;
use tollgate_dataplane::upstream::Clients;

/// Counts allocations so the bench can report the heap a runtime retains.
#[global_allocator]
static ALLOC: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes allocated and not freed since `region` started. (The allocator
/// already counts a reallocation's growth as allocated and its shrinking
/// as freed, so `bytes_reallocated` must not be added again.)
fn retained(region: &Region<'_, System>) -> i64 {
    let c = region.change();
    c.bytes_allocated as i64 - c.bytes_deallocated as i64
}

fn resources(routes: usize) -> Resources {
    let mut r = Resources::default();
    let docs = [
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
               "metadata": {"name": "tollgate"},
               "spec": {"controllerName": "tollgate.dev/gateway-controller"}}),
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
               "metadata": {"name": "gw", "namespace": "default"},
               "spec": {"gatewayClassName": "tollgate",
                        "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]}}),
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "echo", "namespace": "default"},
               "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 3000}]}}),
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
               "metadata": {"name": "echo-1", "namespace": "default",
                            "labels": {"kubernetes.io/service-name": "echo"}},
               "addressType": "IPv4",
               "ports": [{"name": "http", "port": 3000}],
               "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": true}}]}),
    ];
    for d in docs {
        let _ = r.insert_document(d);
    }
    for i in 0..routes {
        let _ = r.insert_document(json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": format!("route-{i}"), "namespace": "default"},
            "spec": {
                "parentRefs": [{"name": "gw"}],
                "hostnames": [format!("host-{i}.example.com")],
                "rules": [{
                    "matches": [
                        {"path": {"type": "PathPrefix", "value": format!("/api/{i}")}},
                        {"path": {"type": "Exact", "value": format!("/exact/{i}")},
                         "headers": [{"name": "x-tenant", "value": format!("t{i}")}]}
                    ],
                    "backendRefs": [{"name": "echo", "port": 80}]
                }]
            }
        }));
    }
    r
}

fn report_sizes(routes: usize) {
    let res = resources(routes);
    let compiled = compile(&res, &CompileOptions::default());
    let Some(snapshot) = compiled.snapshots.get("default/gw") else {
        eprintln!("no snapshot compiled for {routes} routes");
        return;
    };
    let json_len = serde_json::to_vec(snapshot).map_or(0, |v| v.len());
    let clients = Clients::new();
    let region = Region::new(ALLOC);
    let snapshot = snapshot.clone();
    let snapshot_heap = retained(&region);
    let runtime = Runtime::build(snapshot, &clients);
    let total = retained(&region);
    let mib_per_1k = |bytes: i64| bytes as f64 / (routes as f64 / 1000.0) / (1024.0 * 1024.0);
    println!(
        "routes={routes} snapshot_json_bytes={json_len} snapshot_heap_bytes={snapshot_heap} \
         runtime_heap_bytes={total} (snapshot included) mib_per_1k_routes={:.3} \
         (snapshot {:.3}, index and chains {:.3}) built={}",
        mib_per_1k(total),
        mib_per_1k(snapshot_heap),
        mib_per_1k(total - snapshot_heap),
        runtime.is_ok()
    );
}

fn bench(c: &mut Criterion) {
    for n in [1_000, 10_000] {
        report_sizes(n);
    }
    let mut group = c.benchmark_group("compile");
    group.sample_size(10);
    for n in [1_000usize, 10_000] {
        let res = resources(n);
        group.bench_with_input(BenchmarkId::new("compile", n), &res, |b, res| {
            b.iter(|| compile(res, &CompileOptions::default()))
        });
        let snapshot = compile(&res, &CompileOptions::default())
            .snapshots
            .remove("default/gw")
            .unwrap_or_default();
        let clients = Clients::new();
        group.bench_with_input(BenchmarkId::new("runtime_build", n), &snapshot, |b, s| {
            b.iter(|| Runtime::build(s.clone(), &clients))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
