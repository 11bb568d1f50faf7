//! The OTLP test receiver against the real OpenTelemetry SDK and OTLP
//! exporters ([`sdk`]), over gRPC and HTTP/protobuf, with and without
//! gzip; its bad-collector controls (fail, delay, stop) seen both raw and
//! through the SDK; and the Prometheus text parser ([`prometheus_text`]).

#![allow(clippy::unwrap_used)]

mod prometheus_text;
mod sdk;

use std::time::{Duration, Instant};

use opentelemetry_otlp::Compression;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use tollgate_e2e::HttpClient;
use tollgate_e2e::otlp::{Protocol, Receiver};

use sdk::{Providers, Transport, WAIT, assert_received, emit, emit_many};

/// The tonic exporters' requests arrive over gRPC, decoded whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_exports_arrive_decoded() {
    let receiver = Receiver::start().await.unwrap();
    let providers = Providers::new(&receiver, Transport::Grpc, None);
    let sent = emit(&providers);
    providers.shutdown().await;
    assert_received(&receiver, &sent, Protocol::Grpc).await;
    assert!(
        receiver
            .exports()
            .iter()
            .all(|e| e.headers["content-type"] == "application/grpc")
    );
}

/// The HTTP/protobuf exporters (hyper client) arrive at `/v1/*`, decoded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_protobuf_exports_arrive_decoded() {
    let receiver = Receiver::start().await.unwrap();
    let providers = Providers::new(&receiver, Transport::Http, None);
    let sent = emit(&providers);
    providers.shutdown().await;
    assert_received(&receiver, &sent, Protocol::HttpProtobuf).await;
    let types: Vec<_> = receiver
        .exports()
        .iter()
        .map(|e| e.headers["content-type"].clone())
        .collect();
    assert_eq!(types, ["application/x-protobuf"; 3]);
}

/// gzip-compressed exports are decompressed on both transports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_exports_are_decompressed() {
    for (transport, protocol) in [
        (Transport::Grpc, Protocol::Grpc),
        (Transport::Http, Protocol::HttpProtobuf),
    ] {
        let receiver = Receiver::start().await.unwrap();
        let providers = Providers::new(&receiver, transport, Some(Compression::Gzip));
        let sent = emit(&providers);
        providers.shutdown().await;
        assert_received(&receiver, &sent, protocol).await;
        let encodings: Vec<_> = receiver
            .exports()
            .iter()
            .map(|e| {
                e.headers
                    .get("grpc-encoding")
                    .or(e.headers.get("content-encoding"))
                    .cloned()
            })
            .collect();
        assert_eq!(encodings, vec![Some("gzip".to_owned()); 3], "{transport:?}");
    }
}

/// A raw OTLP/gRPC trace export of one empty request.
async fn grpc_export(receiver: &Receiver) -> Result<(), tonic::Status> {
    let mut client = TraceServiceClient::connect(receiver.grpc_endpoint())
        .await
        .unwrap();
    client
        .export(ExportTraceServiceRequest::default())
        .await
        .map(|_| ())
}

/// A raw OTLP/HTTP trace export of one empty request; returns the status.
async fn http_export(receiver: &Receiver) -> u16 {
    let url = format!("{}/v1/traces", receiver.http_endpoint());
    let request = http::Request::post(url)
        .header("content-type", "application/x-protobuf")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    HttpClient::http1()
        .send(request)
        .await
        .unwrap()
        .status
        .as_u16()
}

/// While failing, both transports refuse (503, UNAVAILABLE), keep nothing
/// and count the refusals; afterwards they accept again.
#[tokio::test]
async fn failing_receiver_refuses_on_both_transports() {
    let receiver = Receiver::start().await.unwrap();
    receiver.set_failing(true);
    let status = grpc_export(&receiver).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert_eq!(http_export(&receiver).await, 503);
    assert_eq!(receiver.rejected(), 2);
    assert!(receiver.exports().is_empty());

    receiver.set_failing(false);
    grpc_export(&receiver).await.unwrap();
    assert_eq!(http_export(&receiver).await, 200);
    let protocols: Vec<_> = receiver.exports().iter().map(|e| e.protocol).collect();
    assert_eq!(protocols, [Protocol::Grpc, Protocol::HttpProtobuf]);
}

/// A delay holds each answer back by that long, on both transports.
#[tokio::test]
async fn delayed_receiver_answers_late() {
    let receiver = Receiver::start().await.unwrap();
    let delay = Duration::from_millis(300);
    receiver.set_delay(delay);
    let started = Instant::now();
    grpc_export(&receiver).await.unwrap();
    assert!(started.elapsed() >= delay, "{:?}", started.elapsed());
    let started = Instant::now();
    assert_eq!(http_export(&receiver).await, 200);
    assert!(started.elapsed() >= delay, "{:?}", started.elapsed());
    assert_eq!(receiver.exports().len(), 2);
}

/// A stopped receiver refuses connections at once on both ports, and what
/// it received stays readable.
#[tokio::test]
async fn stopped_receiver_refuses_connections() {
    let mut receiver = Receiver::start().await.unwrap();
    grpc_export(&receiver).await.unwrap();
    receiver.stop().await;
    for addr in [receiver.grpc_addr(), receiver.http_addr()] {
        let started = Instant::now();
        let error = tokio::net::TcpStream::connect(addr).await.unwrap_err();
        assert_eq!(
            error.kind(),
            std::io::ErrorKind::ConnectionRefused,
            "{addr}"
        );
        assert!(started.elapsed() < Duration::from_secs(1));
    }
    assert_eq!(receiver.exports().len(), 1);
}

/// A dead collector never slows the code that emits telemetry (the batch
/// processors queue), and a flush to it gives up with an error: the OTLP
/// exporters retry a refused connection 3 times with backoff, about 1.4 s
/// per signal, which is also what shutting down each provider costs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_receiver_never_slows_emitting() {
    for transport in [Transport::Grpc, Transport::Http] {
        let mut dead = Receiver::start().await.unwrap();
        dead.stop().await;
        let providers = Providers::new(&dead, transport, None);
        let took = emit_many(&providers);
        assert!(took < Duration::from_secs(1), "{transport:?}: {took:?}");
        let started = Instant::now();
        let flushed = tokio::task::spawn_blocking(move || {
            let flushed = providers.traces.force_flush();
            let _ = providers.metrics.shutdown();
            let _ = providers.logs.shutdown();
            flushed
        });
        let flushed = flushed.await.unwrap();
        assert!(
            flushed.is_err(),
            "{transport:?}: a flush to nowhere succeeded"
        );
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(8),
            "{transport:?}: flush and shutdown {took:?}"
        );
    }
}

/// A slow collector does not slow emitting either, even while full batches
/// are being exported to it, and it loses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_receiver_never_slows_emitting() {
    for transport in [Transport::Grpc, Transport::Http] {
        let slow = Receiver::start().await.unwrap();
        slow.set_delay(Duration::from_millis(300));
        let providers = Providers::new(&slow, transport, None);
        let took = emit_many(&providers);
        assert!(took < Duration::from_secs(1), "{transport:?}: {took:?}");
        providers.shutdown().await;
        assert_eq!(slow.spans().len(), 1200, "{transport:?}");
        assert_eq!(slow.logs().len(), 600, "{transport:?}");
    }
}

/// The exporters retry a refused export (503, UNAVAILABLE); once the
/// receiver recovers the retry lands, and each refusal was counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_retries_a_failing_receiver_until_it_recovers() {
    for (transport, protocol) in [
        (Transport::Grpc, Protocol::Grpc),
        (Transport::Http, Protocol::HttpProtobuf),
    ] {
        let receiver = Receiver::start().await.unwrap();
        receiver.set_failing(true);
        let providers = Providers::new(&receiver, transport, None);
        let sent = emit(&providers);
        let flush = tokio::task::spawn_blocking(move || {
            let flushed = providers.traces.force_flush();
            (flushed, providers)
        });
        receiver
            .wait_until("a refused export", WAIT, |r| {
                (r.rejected() >= 1).then_some(())
            })
            .await;
        receiver.set_failing(false);
        let (flushed, providers) = flush.await.unwrap();
        flushed.unwrap();
        providers.shutdown().await;
        assert!(receiver.rejected() >= 1);
        assert_received(&receiver, &sent, protocol).await;
    }
}

/// The HTTP side names what an exporter got wrong.
#[tokio::test]
async fn http_rejects_what_no_exporter_should_send() {
    let receiver = Receiver::start().await.unwrap();
    let base = receiver.http_endpoint();
    let client = HttpClient::http1();
    let send = |method: &str, path: &str, content_type: &str, body: &'static [u8]| {
        http::Request::builder()
            .method(method)
            .uri(format!("{base}{path}"))
            .header("content-type", content_type)
            .body(http_body_util::Full::new(bytes::Bytes::from_static(body)))
            .unwrap()
    };
    let cases = [
        (
            send("POST", "/v1/spans", "application/x-protobuf", b""),
            404,
        ),
        (
            send("GET", "/v1/traces", "application/x-protobuf", b""),
            405,
        ),
        (send("POST", "/v1/traces", "application/json", b"{}"), 415),
        (
            send("POST", "/v1/metrics", "application/x-protobuf", b"\xff\xff"),
            400,
        ),
        (
            send(
                "POST",
                "/v1/logs",
                "application/x-protobuf; charset=binary",
                b"",
            ),
            200,
        ),
    ];
    for (request, expected) in cases {
        let what = format!("{} {}", request.method(), request.uri());
        let reply = client.send(request).await.unwrap();
        assert_eq!(reply.status.as_u16(), expected, "{what}: {}", reply.text());
    }
    assert_eq!(receiver.exports().len(), 1);
}

/// A wait that times out panics with what did arrive.
#[tokio::test]
#[should_panic(
    expected = "waiting for a span named \"missing\"; received 0 spans [], 0 metric points [], 0 log records [], 1 refused requests"
)]
async fn waits_panic_with_what_was_received() {
    let receiver = Receiver::start().await.unwrap();
    receiver.set_failing(true);
    assert_eq!(http_export(&receiver).await, 503);
    receiver
        .wait_for_span("missing", Duration::from_millis(50))
        .await;
}
