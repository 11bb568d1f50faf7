//! The operator's provisioning passes as spans: the real controller, with
//! an OTLP receiver, provisions a Gateway's data plane against the
//! in-memory API server. Each pass is a `provision` span counting the
//! objects it applied, the passes a compile starts link to its span, and a
//! configuration that yields no objects (a patch that breaks the
//! Deployment) is an error span with its reason.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use crate::kubernetes_operator::{BROKEN_CONFIG, controller_with_env, gateway, with_broken_config};
use crate::telemetry_support::{env_refs, otel_env};

use common::k8s::*;
use std::time::Duration;
use tollgate_e2e::free_port;
use tollgate_e2e::otlp::{Receiver, Span, StatusCode};

/// The first `provision` span that `check` accepts.
async fn provision_span(receiver: &Receiver, what: &str, check: impl Fn(&Span) -> bool) -> Span {
    receiver
        .wait_until(what, Duration::from_secs(15), |r| {
            r.spans()
                .into_iter()
                .find(|s| s.name == "provision" && check(s))
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_provisioning_pass_is_a_span() {
    let receiver = Receiver::start().await.unwrap();
    let server = cluster().await;
    let manifest = gateway(80, "");
    apply(&server, &manifest).await;
    let env = otel_env(&receiver, "http/protobuf", "tollgate-controller");
    let offset = free_port().unwrap() - 80;
    let (ctl, _) = controller_with_env(&server, &["--provision"], offset, &env_refs(&env)).await;

    let applied = provision_span(&receiver, "a pass that applied the objects", |s| {
        s.int_attr("tollgate.provision.applied") > Some(0)
    })
    .await;
    assert_eq!(applied.str_attr("tollgate.gateway"), Some("default/gw"));
    // Deployment, Service, ServiceAccount, PodDisruptionBudget.
    assert_eq!(applied.int_attr("tollgate.provision.objects"), Some(4));
    assert_eq!(applied.int_attr("tollgate.provision.applied"), Some(4));
    assert_eq!(applied.int_attr("tollgate.provision.errors"), Some(0));
    assert_eq!(applied.parent_span_id, None, "a pass starts its own trace");
    assert_ne!(applied.status, StatusCode::Error);
    assert_eq!(applied.origin.service_name(), Some("tollgate-controller"));

    // A change to the Gateway is compiled into a new view, and the passes
    // that view starts link to that compile.
    let more = manifest.replace(
        "  - {name: http, port: 80, protocol: HTTP}",
        "  - {name: http, port: 80, protocol: HTTP}\n  - {name: more, port: 81, protocol: HTTP}",
    );
    assert_ne!(more, manifest);
    apply(&server, &more).await;
    let linked = receiver
        .wait_until("a pass linked to a compile", Duration::from_secs(15), |r| {
            let spans = r.spans();
            let compile = |l: &tollgate_e2e::otlp::SpanLink| {
                spans.iter().any(|c| {
                    c.name == "compile" && c.trace_id == l.trace_id && c.span_id == l.span_id
                })
            };
            spans
                .iter()
                .find(|s| s.name == "provision" && s.links.iter().any(compile))
                .cloned()
        })
        .await;
    assert_eq!(linked.links.len(), 1);
    assert_ne!(linked.links[0].trace_id, linked.trace_id);

    // A patch that breaks the Deployment: nothing is applied, and the
    // pass fails with the reason.
    apply(&server, BROKEN_CONFIG).await;
    // Whichever the controller sees first, once it has both the Gateway
    // is Accepted and its objects cannot be made.
    apply(&server, &with_broken_config(&manifest)).await;
    let failed = provision_span(&receiver, "a refused pass", |s| {
        s.status == StatusCode::Error
    })
    .await;
    assert_eq!(failed.str_attr("tollgate.gateway"), Some("default/gw"));
    assert_eq!(failed.str_attr("error.type"), Some("invalid-configuration"));
    assert!(
        failed.status_message.contains("patches.deployment"),
        "{}\n{}",
        failed.status_message,
        ctl.tail(20)
    );
    assert_eq!(failed.int_attr("tollgate.provision.applied"), Some(0));
}
