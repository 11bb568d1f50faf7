//! One configuration change is one trace across processes: the
//! controller's `compile` span, a `publish` child per Gateway whose
//! snapshot changed, and under it one `apply snapshot` span from every
//! data plane that received it, applied or rejected.
//!
//! Real binaries: a standalone controller exporting over HTTP/protobuf and
//! two `tollgate-dataplane` processes of one Gateway (one over gRPC, one
//! over HTTP/protobuf), all to one OTLP receiver. A listener added on a
//! port the test holds for the first data plane makes that one reject the
//! snapshot while the other applies it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use crate::telemetry_support::otel_env;

use common::*;
use std::net::{Ipv4Addr, TcpListener};
use std::time::{Duration, Instant};
use tollgate_e2e::controller::{ControllerPorts, start_controller_at_with_env};
use tollgate_e2e::dataplane::{DataplaneArgs, DataplaneProc};
use tollgate_e2e::otlp::{Receiver, Span, StatusCode};
use tollgate_e2e::{Echo, free_port};

/// The route, tagging every answer with `x-edit: {edit}`.
fn route(edit: usize) -> String {
    tagged_route("echo", edit)
}

/// A data plane of `default/gw` named `service` in its spans, serving the
/// manifests' port 80 on `port` (so 81 on `port + 1`).
async fn dataplane(
    controller: &str,
    port: u16,
    receiver: &Receiver,
    protocol: &str,
    service: &str,
) -> DataplaneProc {
    let args = DataplaneArgs {
        controller: controller.to_string(),
        gateway: "default/gw".into(),
        port_offset: port - MANIFEST_PORT,
        state_dir: None,
        drain_delay_seconds: 0,
        env: otel_env(receiver, protocol, service),
    };
    DataplaneProc::start(&args, Duration::from_secs(20))
        .await
        .unwrap()
}

/// A free port whose next port is free too and is now held by the
/// returned listener.
fn port_with_next_held() -> (u16, TcpListener) {
    for _ in 0..100 {
        let port = free_port().unwrap();
        if let Ok(held) = TcpListener::bind((Ipv4Addr::LOCALHOST, port + 1)) {
            return (port, held);
        }
    }
    panic!("no two consecutive free ports");
}

/// Waits until the data plane's `/status` reports a `version` other than
/// `old` (applied) or a `lastRejected` one; returns that version.
async fn next_version(dp: &DataplaneProc, old: u64) -> u64 {
    let newer = |status: &serde_json::Value| {
        let applied = status["version"].as_u64().filter(|v| *v != old);
        let rejected = status["lastRejected"]["version"].as_u64();
        applied.or(rejected.filter(|v| *v > old))
    };
    let status = dp
        .wait_status("took a new snapshot", Duration::from_secs(10), |s| {
            newer(s).is_some()
        })
        .await
        .unwrap();
    newer(&status).unwrap_or_default()
}

/// The spans of the change that published `version`: its `publish` span,
/// the `compile` root above it and the `apply snapshot` spans of
/// `services` (one each), once all have arrived.
async fn change_trace(
    receiver: &Receiver,
    version: i64,
    services: &[&str],
) -> (Span, Span, Vec<Span>) {
    let start = Instant::now();
    loop {
        let spans = receiver.spans();
        let of_version = |s: &&Span| s.int_attr("tollgate.snapshot.version") == Some(version);
        let publish = spans
            .iter()
            .filter(of_version)
            .find(|s| s.name == "publish");
        let compile = publish.and_then(|p| {
            spans
                .iter()
                .find(|s| s.name == "compile" && p.is_child_of(s))
        });
        let applies: Vec<Span> = services
            .iter()
            .filter_map(|service| {
                spans.iter().filter(of_version).find(|s| {
                    s.name == "apply snapshot" && s.origin.service_name() == Some(service)
                })
            })
            .cloned()
            .collect();
        if let (Some(publish), Some(compile)) = (publish, compile)
            && applies.len() == services.len()
        {
            return (publish.clone(), compile.clone(), applies);
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the change of version {version} was not traced whole; spans:\n{spans:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_is_one_trace_from_compile_to_every_data_plane() {
    let receiver = Receiver::start().await.unwrap();
    let echo = Echo::start("echo").await.unwrap();
    let dir = manifest_dir("change-trace");
    let gateway = base("gw", "127.0.0.1", &[&echo]);
    write(&dir, "all.yaml", &(gateway.clone() + &route(0)));
    let ports = ControllerPorts::free(0).unwrap();
    let env = otel_env(&receiver, "http/protobuf", "tollgate-controller");
    let controller = start_controller_at_with_env(&dir, &ports, &env)
        .await
        .unwrap();
    let url = ports.snapshot_url();
    let (one_port, _held) = port_with_next_held();
    let one = dataplane(&url, one_port, &receiver, "grpc", "dp-one").await;
    // The second one's port 81 stays free for it: reserved until needed,
    // so no port handed out meanwhile (an admin port) takes it.
    let (two_port, reserved) = port_with_next_held();
    let two = dataplane(&url, two_port, &receiver, "http/protobuf", "dp-two").await;
    let first = one.status().await.unwrap()["version"].as_u64().unwrap();

    // An edit of the route: both apply it, under the compile that made it.
    write(&dir, "all.yaml", &(gateway.clone() + &route(1)));
    let version = next_version(&one, first).await;
    assert_eq!(next_version(&two, first).await, version);
    let (publish, compile, applies) =
        change_trace(&receiver, version as i64, &["dp-one", "dp-two"]).await;
    assert_eq!(compile.parent_span_id, None, "the compile starts the trace");
    assert_eq!(compile.origin.service_name(), Some("tollgate-controller"));
    assert_eq!(compile.int_attr("tollgate.compile.published"), Some(1));
    assert_eq!(publish.str_attr("tollgate.gateway"), Some("default/gw"));
    let instance = |s: &Span| s.origin.resource.get("service.instance.id").cloned();
    assert!(instance(&applies[0]).is_some());
    assert_ne!(
        instance(&applies[0]),
        instance(&applies[1]),
        "each process names itself"
    );
    for apply in &applies {
        assert!(apply.is_child_of(&publish), "{apply:#?} under {publish:#?}");
        assert_eq!(apply.str_attr("tollgate.gateway"), Some("default/gw"));
        assert_eq!(apply.str_attr("tollgate.snapshot.result"), Some("applied"));
        assert_ne!(apply.status, StatusCode::Error);
        assert!(apply.start_time_unix_nano >= compile.start_time_unix_nano);
    }
    // The controller's log lines of that compile name its trace.
    let log = controller.log();
    let traced = format!("trace_id={}", compile.trace_id);
    assert!(
        log.lines()
            .any(|l| l.contains("snapshot published") && l.contains(&traced)),
        "no log line of the compile carries {traced}:\n{}",
        controller.tail(20)
    );

    // A listener on a port the first data plane cannot bind: it rejects
    // the snapshot (and keeps serving the last), the second applies it;
    // both report into the same change.
    let with_second_listener = gateway.replace(
        "  - {name: http, port: 80,",
        "  - {name: extra, port: 81, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}\n  - {name: http, port: 80,",
    );
    assert_ne!(with_second_listener, gateway, "base() changed its listener");
    drop(reserved);
    write(&dir, "all.yaml", &(with_second_listener + &route(2)));
    let rejected_version = next_version(&one, version).await;
    assert_eq!(next_version(&two, version).await, rejected_version);
    let (publish, _, applies) =
        change_trace(&receiver, rejected_version as i64, &["dp-one", "dp-two"]).await;
    let (rejected, applied) = (&applies[0], &applies[1]);
    assert!(rejected.is_child_of(&publish) && applied.is_child_of(&publish));
    assert_eq!(rejected.status, StatusCode::Error);
    assert_eq!(rejected.str_attr("error.type"), Some("snapshot-rejected"));
    assert_eq!(
        rejected.str_attr("tollgate.snapshot.result"),
        Some("rejected")
    );
    assert!(
        rejected.status_message.contains("cannot bind"),
        "{}",
        rejected.status_message
    );
    assert_eq!(
        applied.str_attr("tollgate.snapshot.result"),
        Some("applied")
    );
    assert_ne!(applied.status, StatusCode::Error);
}
