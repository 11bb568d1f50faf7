//! Spans through the real binaries: `tollgate-controller --with-dataplane`
//! exporting to a test OTLP receiver, a client with its own trace context,
//! the echo backend showing what the gateway propagated.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::telemetry_support::*;
use tollgate_e2e::otlp::{Protocol, Receiver, Span, SpanKind, StatusCode};
use tollgate_e2e::{Echo, HttpClient};

/// The one span of `kind` among `spans`.
fn one(spans: &[Span], kind: SpanKind) -> Span {
    let found: Vec<&Span> = spans.iter().filter(|s| s.kind == kind).collect();
    assert_eq!(found.len(), 1, "one {kind:?} span wanted: {spans:#?}");
    found[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_over_http_protobuf() {
    traces_end_to_end("http/protobuf", Protocol::HttpProtobuf).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_over_grpc() {
    traces_end_to_end("grpc", Protocol::Grpc).await;
}

/// A traced request, a gateway-made 404 and a 503, exported over `name`.
async fn traces_end_to_end(name: &str, protocol: Protocol) {
    let receiver = Receiver::start().await.unwrap();
    let echo = Echo::start("echo").await.unwrap();
    let settings = "{requestHeaders: [X-Tenant, Authorization]}";
    let manifests = shop_manifests(&echo, settings);
    let service = format!("gw-traces-{}", name.replace('/', "-"));
    let env = otel_env(&receiver, name, &service);
    let ctl = start(&service, &manifests, &env).await;
    let client = HttpClient::http1();

    // A routed request with the client's own trace context and baggage.
    let trace = ClientTrace::new();
    let traceparent = trace.traceparent(true);
    let reply = send(
        &client,
        &format!("{}/shop/cart?token=secret", ctl.gateway),
        &[
            ("traceparent", traceparent.as_str()),
            ("baggage", "tenant=acme,user=42"),
            ("user-agent", "telemetry-test/1.0"),
            ("x-tenant", "acme"),
            ("authorization", "Bearer hunter2"),
        ],
    )
    .await;
    assert_eq!(reply.status, 200);
    let seen = reply.echo().unwrap();

    let spans = wait_trace(&receiver, &trace.trace_id, 2).await;
    assert_eq!(spans.len(), 2, "{spans:#?}");
    let server = one(&spans, SpanKind::Server);
    let upstream = one(&spans, SpanKind::Client);
    assert_eq!(server.origin.protocol, protocol);
    assert_eq!(server.origin.service_name(), Some(service.as_str()));

    // The server span: a child of the client's span, named by the template.
    assert_eq!(server.name, "GET /shop");
    assert_eq!(server.trace_id, trace.trace_id);
    assert_eq!(
        server.parent_span_id.as_deref(),
        Some(trace.span_id.as_str())
    );
    assert_eq!(server.status, StatusCode::Unset, "{server:#?}");
    let s = |key: &str| server.str_attr(key).map(str::to_string);
    assert_eq!(s("http.request.method").as_deref(), Some("GET"));
    assert_eq!(s("url.path").as_deref(), Some("/shop/cart"));
    assert_eq!(s("url.scheme").as_deref(), Some("http"));
    assert_eq!(s("http.route").as_deref(), Some("/shop"));
    assert_eq!(server.int_attr("http.response.status_code"), Some(200));
    assert_eq!(s("server.address").as_deref(), Some("127.0.0.1"));
    assert_eq!(server.int_attr("server.port"), Some(i64::from(ctl.port)));
    assert_eq!(s("client.address").as_deref(), Some("127.0.0.1"));
    assert_eq!(s("network.protocol.version").as_deref(), Some("1.1"));
    assert_eq!(
        s("user_agent.original").as_deref(),
        Some("telemetry-test/1.0")
    );
    assert_eq!(s("tollgate.gateway").as_deref(), Some("default/gw"));
    assert_eq!(s("tollgate.route").as_deref(), Some("default/shop"));
    assert_eq!(server.int_attr("tollgate.rule"), Some(0));
    assert_eq!(
        s("tollgate.listener").as_deref(),
        Some("gateway/default/gw/listener/http")
    );
    let backend = s("tollgate.backend").unwrap_or_default();
    assert!(backend.contains("echo"), "tollgate.backend {backend:?}");
    assert!(
        server.int_attr("tollgate.snapshot.version").unwrap_or(0) >= 1,
        "{server:#?}"
    );
    assert!(
        !server.attributes.contains_key("url.query"),
        "recordQuery is off: {server:#?}"
    );
    // Allowlisted headers: as sent, except credentials.
    assert_eq!(
        server.attributes.get("http.request.header.x-tenant"),
        Some(&serde_json::json!(["acme"]))
    );
    assert_eq!(
        server.attributes.get("http.request.header.authorization"),
        Some(&serde_json::json!(["REDACTED"]))
    );
    assert!(!format!("{server:?}").contains("hunter2"));
    assert!(server.start_time_unix_nano <= upstream.start_time_unix_nano);
    assert!(upstream.end_time_unix_nano <= server.end_time_unix_nano);

    // The client span: the upstream attempt, to the echo endpoint.
    assert!(upstream.is_child_of(&server), "{upstream:#?}\n{server:#?}");
    assert_eq!(upstream.str_attr("server.address"), Some("127.0.0.1"));
    assert_eq!(
        upstream.int_attr("server.port"),
        Some(i64::from(echo.port()))
    );
    assert_eq!(upstream.int_attr("http.response.status_code"), Some(200));
    assert_eq!(upstream.str_attr("http.request.method"), Some("GET"));
    // The URL sent: the endpoint and path, without the query (recordQuery
    // is off).
    let full = format!("http://127.0.0.1:{}/shop/cart", echo.port());
    assert_eq!(upstream.str_attr("url.full"), Some(full.as_str()));
    assert_eq!(upstream.status, StatusCode::Unset, "{upstream:#?}");

    // The backend saw the gateway's client span as its parent, and the baggage.
    let upstream_parent = seen.header("traceparent").unwrap_or_default().to_string();
    assert_eq!(
        upstream_parent,
        format!("00-{}-{}-01", trace.trace_id, upstream.span_id),
        "{seen:#?}"
    );
    // Baggage entries may be re-serialised in another order.
    let mut baggage: Vec<&str> = seen
        .header("baggage")
        .unwrap_or_default()
        .split(',')
        .collect();
    baggage.sort_unstable();
    assert_eq!(baggage, ["tenant=acme", "user=42"], "{seen:#?}");

    // Gateway-made answers are traced with their error.type.
    for (path, status, error, name) in [
        ("/nothing-here", 404, "routing", "GET"),
        ("/empty/x", 503, "no-endpoints", "GET /empty"),
    ] {
        let trace = ClientTrace::new();
        let traceparent = trace.traceparent(true);
        let url = format!("{}{path}", ctl.gateway);
        let reply = send(&client, &url, &[("traceparent", traceparent.as_str())]).await;
        assert_eq!(reply.status, status, "{path}");
        let spans = wait_trace(&receiver, &trace.trace_id, 1).await;
        assert_eq!(spans.len(), 1, "no upstream attempt for {path}: {spans:#?}");
        let span = one(&spans, SpanKind::Server);
        assert_eq!(span.name, name);
        assert_eq!(span.parent_span_id.as_deref(), Some(trace.span_id.as_str()));
        assert_eq!(span.str_attr("error.type"), Some(error), "{span:#?}");
        assert_eq!(span.status, StatusCode::Error, "{span:#?}");
        assert_eq!(
            span.int_attr("http.response.status_code"),
            Some(i64::from(status))
        );
        assert_eq!(span.str_attr("url.path"), Some(path));
    }
}

/// `samplingRatio: 0` on the Gateway: no spans for new traces, but a
/// client's sampled context is followed, a route annotated with ratio 1
/// samples all; `recordQuery: true` records `url.query`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampling_ratios_and_recorded_query() {
    let receiver = Receiver::start().await.unwrap();
    let echo = Echo::start("echo").await.unwrap();
    let settings = "{tracing: {samplingRatio: 0}, recordQuery: true}";
    let manifests = [
        ("base.yaml", base_with_telemetry(&[&echo], settings)),
        (
            "routes.yaml",
            format!("{SHOP_ROUTES}{ALWAYS_SAMPLED_ROUTE}"),
        ),
    ];
    let env = otel_env(&receiver, "http/protobuf", "gw-sampling");
    let ctl = start("sampling", &manifests, &env).await;
    let client = HttpClient::http1();

    // Unsampled first: spans leave in order, so once the later sampled
    // spans are in, these would be too.
    for i in 0..20 {
        let reply = send(&client, &format!("{}/shop/{i}", ctl.gateway), &[]).await;
        assert_eq!(reply.status, 200);
        // The backend still gets a (consistent, unsampled) context.
        let parent = reply
            .echo()
            .unwrap()
            .header("traceparent")
            .unwrap()
            .to_string();
        assert!(parent.ends_with("-00"), "{parent}");
    }
    let unsampled = ClientTrace::new();
    let header = unsampled.traceparent(false);
    send(
        &client,
        &format!("{}/shop/u", ctl.gateway),
        &[("traceparent", &header)],
    )
    .await;

    let followed = ClientTrace::new();
    let header = followed.traceparent(true);
    send(
        &client,
        &format!("{}/shop/f", ctl.gateway),
        &[("traceparent", &header)],
    )
    .await;
    let reply = send(&client, &format!("{}/always/x?q=1&r=2", ctl.gateway), &[]).await;
    let parent = reply
        .echo()
        .unwrap()
        .header("traceparent")
        .unwrap()
        .to_string();
    let always_trace = parent.split('-').nth(1).unwrap().to_string();
    assert!(parent.ends_with("-01"), "{parent}");

    let spans = wait_trace(&receiver, &followed.trace_id, 2).await;
    assert_eq!(spans.len(), 2);
    let always = wait_trace(&receiver, &always_trace, 2).await;
    let server = one(&always, SpanKind::Server);
    assert_eq!(server.name, "GET /always");
    assert_eq!(server.parent_span_id, None, "a new trace");
    assert_eq!(server.str_attr("url.query"), Some("q=1&r=2"));
    assert_eq!(server.str_attr("tollgate.route"), Some("default/always"));
    // Four request spans; the rest are the configuration's own
    // (`compile`, `publish`, `apply snapshot`).
    let requests = receiver
        .spans()
        .into_iter()
        .filter(|s| !CHANGE_SPANS.contains(&s.name.as_str()));
    assert_eq!(requests.count(), 4, "{}", receiver.summary());
    assert!(spans_of(&receiver, &unsampled.trace_id).is_empty());
}

/// `OTEL_PROPAGATORS=b3multi`: the client's B3 context is continued and the
/// upstream gets `X-B3-*` headers naming the gateway's client span.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b3_multi_header_propagation() {
    let receiver = Receiver::start().await.unwrap();
    let echo = Echo::start("echo").await.unwrap();
    let manifests = shop_manifests(&echo, "{}");
    let mut env = otel_env(&receiver, "http/protobuf", "gw-b3");
    env.push(("OTEL_PROPAGATORS".into(), "b3multi".into()));
    let ctl = start("b3", &manifests, &env).await;
    let client = HttpClient::http1();

    let trace = ClientTrace::new();
    let reply = send(
        &client,
        &format!("{}/shop/b3", ctl.gateway),
        &[
            ("x-b3-traceid", trace.trace_id.as_str()),
            ("x-b3-spanid", trace.span_id.as_str()),
            ("x-b3-sampled", "1"),
        ],
    )
    .await;
    assert_eq!(reply.status, 200);
    let seen = reply.echo().unwrap();
    let spans = wait_trace(&receiver, &trace.trace_id, 2).await;
    let server = one(&spans, SpanKind::Server);
    let upstream = one(&spans, SpanKind::Client);
    assert_eq!(
        server.parent_span_id.as_deref(),
        Some(trace.span_id.as_str())
    );
    assert!(upstream.is_child_of(&server));
    assert_eq!(
        seen.header("x-b3-traceid"),
        Some(trace.trace_id.as_str()),
        "{seen:#?}"
    );
    assert_eq!(
        seen.header("x-b3-spanid"),
        Some(upstream.span_id.as_str()),
        "{seen:#?}"
    );
    assert_eq!(seen.header("x-b3-sampled"), Some("1"), "{seen:#?}");
    assert_eq!(seen.header("traceparent"), None, "only B3 was asked for");
}
