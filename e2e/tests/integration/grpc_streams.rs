//! gRPC streams through the gateway: server, client and bidirectional
//! streams; trailers, `grpc-status` and binary (`-bin`) metadata passed
//! through untouched; and streams held open while the configuration is
//! swapped 20 times.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::write;
use crate::grpc_support::*;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tollgate_e2e::grpc::EchoRequest;
use tonic::Code;
use tonic::metadata::BinaryMetadataValue;

fn message(text: &str) -> EchoRequest {
    EchoRequest {
        message: text.to_string(),
        ..EchoRequest::default()
    }
}

/// A stream fed by the test: the sender and the request stream.
fn feed() -> (
    mpsc::UnboundedSender<EchoRequest>,
    impl futures_util::Stream<Item = EchoRequest> + Send + 'static,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let stream =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
    (tx, stream)
}

/// Every streaming kind works through the gateway; the backend's
/// trailers (a non-OK `grpc-status` after messages, `-bin` metadata) and
/// binary metadata both ways arrive untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_trailers_and_binary_metadata_pass_through() {
    let b = backends(&["echo"]).await;
    let rules = "  - backendRefs: [{name: svc-echo, port: 9000}]\n";
    let files = [
        ("gateway.yaml", gateway()),
        ("svc.yaml", grpc_service("svc-echo", &[b[0].port()])),
        (
            "route.yaml",
            grpc_route("streams", &["s.example.com"], rules),
        ),
    ];
    let (_dir, ctl) = serve("grpc-streams", &files).await;
    wait_routed(&ctl, "s.example.com", "tollgate.echo.v1.Echo").await;
    let mut c = client(&ctl, "s.example.com").await;

    // Unary: -bin metadata both ways.
    let mut request = tonic::Request::new(message("bin"));
    request
        .metadata_mut()
        .insert_bin("x-req-bin", BinaryMetadataValue::from_bytes(&[0, 1, 254]));
    let reply = c.unary("Say", request).await.unwrap();
    let echoed = reply.metadata().get_bin("x-echo-bin").unwrap();
    assert_eq!(echoed.to_bytes().unwrap().as_ref(), &[1, 2, 255]);
    assert_eq!(reply.metadata().get("x-backend").unwrap(), "echo");
    let seen = &reply.get_ref().metadata;
    assert_eq!(seen.get("x-req-bin").map(String::as_str), Some("AAH+"));

    // Server stream ending in a non-OK status: the messages, then the
    // backend's own trailers (not the gateway's).
    let request = tonic::Request::new(EchoRequest {
        count: 3,
        fail_code: Code::FailedPrecondition as i32,
        ..message("s")
    });
    let mut stream = c.count(request).await.unwrap().into_inner();
    for i in 0..3 {
        assert_eq!(stream.message().await.unwrap().unwrap().count, i);
    }
    let status = stream.message().await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(status.message(), "failed as asked");
    assert!(!is_gateway_answer(&status));
    let detail = status.metadata().get_bin("x-detail-bin").unwrap();
    assert_eq!(
        detail.to_bytes().unwrap().as_ref(),
        &[0, 159, 146, 150, 255]
    );

    // A unary failure (trailers-only from the backend) passes through too.
    let failing = tonic::Request::new(EchoRequest {
        fail_code: Code::NotFound as i32,
        ..message("x")
    });
    let status = c.unary("Say", failing).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.metadata().get_bin("x-detail-bin").is_some());
    assert!(!is_gateway_answer(&status));

    // Client stream.
    let messages = futures_util::stream::iter(["a", "b", "c"].map(message));
    let reply = c.sum(messages).await.unwrap().into_inner();
    assert_eq!((reply.message.as_str(), reply.count), ("a,b,c", 3));

    // Bidirectional stream: each message answered before the next is sent.
    let (tx, requests) = feed();
    let mut replies = c.chat(requests).await.unwrap().into_inner();
    for i in 0..5 {
        tx.send(message(&format!("m{i}"))).unwrap();
        let reply = replies.message().await.unwrap().unwrap();
        assert_eq!(reply.message, format!("m{i}"));
    }
    drop(tx);
    assert!(replies.message().await.unwrap().is_none());
}

/// Routes: the stream's rule plus one rule per swap (`swap.V<i>`).
fn swap_routes(n: usize) -> String {
    let mut rules = String::from(
        "  - matches: [{method: {service: tollgate.echo.v1.Echo}}]\n    backendRefs: [{name: svc-echo, port: 9000}]\n",
    );
    for i in 0..=n {
        rules.push_str(&format!(
            "  - matches: [{{method: {{service: swap.V{i}}}}}]\n    backendRefs: [{{name: svc-echo, port: 9000}}]\n"
        ));
    }
    grpc_route("swaps", &["swap.example.com"], &rules)
}

/// A bidirectional, a client and a server stream opened before 20
/// configuration swaps keep working through every one of them, each swap
/// confirmed served before the streams are used again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_stay_open_across_twenty_swaps() {
    let b = backends(&["echo"]).await;
    let files = [
        ("gateway.yaml", gateway()),
        ("svc.yaml", grpc_service("svc-echo", &[b[0].port()])),
        ("route.yaml", swap_routes(0)),
    ];
    let (dir, ctl) = serve("grpc-swaps", &files).await;
    wait_routed(&ctl, "swap.example.com", "swap.V0").await;
    let mut c = client(&ctl, "swap.example.com").await;

    let (chat_tx, chat_requests) = feed();
    let mut chat = c.chat(chat_requests).await.unwrap().into_inner();
    let (sum_tx, sum_requests) = feed();
    let sum = tokio::spawn({
        let mut c = c.clone();
        async move { c.sum(sum_requests).await }
    });
    let request = tonic::Request::new(EchoRequest {
        count: 22,
        delay_ms: 200,
        ..message("slow")
    });
    let mut counted = c.count(request).await.unwrap().into_inner();

    for i in 1..=20 {
        write(&dir, "route.yaml", &swap_routes(i));
        wait_routed(&ctl, "swap.example.com", &format!("swap.V{i}")).await;
        chat_tx.send(message(&format!("chat {i}"))).unwrap();
        let reply = chat.message().await.unwrap().unwrap();
        assert_eq!(reply.message, format!("chat {i}"));
        sum_tx.send(message(&i.to_string())).unwrap();
        let next = counted.message().await.unwrap().unwrap();
        assert_eq!(next.count as usize, i - 1);
    }
    drop(chat_tx);
    assert!(chat.message().await.unwrap().is_none());
    drop(sum_tx);
    let total = sum.await.unwrap().unwrap().into_inner();
    assert_eq!(total.count, 20);
    let rest: Vec<_> = counted.by_ref().collect().await;
    assert_eq!(rest.len(), 2, "{rest:?}");
    assert!(rest.iter().all(Result::is_ok));
}
