//! The data plane's instruments, created once per process.
//!
//! Names and units follow the OpenTelemetry HTTP semantic conventions
//! (`http.server.request.duration` in seconds with the convention's
//! buckets, body sizes in bytes); Tollgate's own are `tollgate.*`. Every
//! attribute value comes from configuration (route, listener, backend and
//! Gateway names, the matched path template) or from a small closed set
//! (methods, status codes, error kinds), never from the request itself, so
//! the number of series is bounded by configuration, not traffic.

use opentelemetry::metrics::{Counter, Histogram, Meter};

/// The bucket boundaries the HTTP semantic conventions give for durations.
pub(crate) const DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Body-size buckets: one per factor of ten from 100 B to 100 MB.
const SIZE_BUCKETS: [f64; 8] = [0.0, 100.0, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8];

/// Every instrument the request path and the data plane record into.
#[derive(Clone, Debug)]
pub(crate) struct Instruments {
    pub(crate) request_duration: Histogram<f64>,
    pub(crate) request_body_size: Histogram<u64>,
    pub(crate) response_body_size: Histogram<u64>,
    pub(crate) client_duration: Histogram<f64>,
    pub(crate) connect_errors: Counter<u64>,
    pub(crate) retries: Counter<u64>,
    pub(crate) auth_refusals: Counter<u64>,
    pub(crate) rate_limit_decisions: Counter<u64>,
    pub(crate) snapshot_apply_duration: Histogram<f64>,
    pub(crate) snapshots: Counter<u64>,
    /// `tollgate.dataplane.tls.handshake.failures`, by `error.type`.
    pub(crate) tls_handshake_failures: Counter<u64>,
    /// `tollgate.dataplane.relay.connections`, by `result`.
    pub(crate) relay_connections: Counter<u64>,
    /// `tollgate.dataplane.relay.bytes`, by `direction`.
    pub(crate) relay_bytes: Counter<u64>,
}

impl Instruments {
    /// Creates the instruments on `meter`.
    pub(crate) fn new(meter: &Meter) -> Instruments {
        Instruments {
            request_duration: meter
                .f64_histogram("http.server.request.duration")
                .with_unit("s")
                .with_description(
                    "Duration of HTTP server requests, until the response is complete",
                )
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build(),
            request_body_size: meter
                .u64_histogram("http.server.request.body.size")
                .with_unit("By")
                .with_description("Size of HTTP server request bodies")
                .with_boundaries(SIZE_BUCKETS.to_vec())
                .build(),
            response_body_size: meter
                .u64_histogram("http.server.response.body.size")
                .with_unit("By")
                .with_description("Size of HTTP server response bodies")
                .with_boundaries(SIZE_BUCKETS.to_vec())
                .build(),
            client_duration: meter
                .f64_histogram("http.client.request.duration")
                .with_unit("s")
                .with_description("Duration of each upstream attempt, until the response headers")
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build(),
            connect_errors: meter
                .u64_counter("tollgate.upstream.connect.errors")
                .with_description("Upstream connections that could not be opened, per backend")
                .build(),
            retries: meter
                .u64_counter("tollgate.upstream.retries")
                .with_unit("{retry}")
                .with_description(
                    "Retries a rule's retry policy asked for, by reason and outcome \
                     (retried, or why not: budget_exhausted, attempts_exhausted, deadline, \
                     body_not_replayable)",
                )
                .build(),
            auth_refusals: meter
                .u64_counter("tollgate.auth.refusals")
                .with_unit("{request}")
                .with_description(
                    "Requests refused by authentication (401) or authorization (403), \
                     by reason (missing, expired, bad-signature, unknown-api-key, denied, ...)",
                )
                .build(),
            rate_limit_decisions: meter
                .u64_counter("tollgate.ratelimit.decisions")
                .with_unit("{request}")
                .with_description(
                    "Rate-limit decisions by outcome: allowed, limited, shadow_limited, \
                     failed_open, failed_closed",
                )
                .build(),
            snapshot_apply_duration: meter
                .f64_histogram("tollgate.dataplane.snapshot.apply.duration")
                .with_unit("s")
                .with_description("Time to build and swap in a snapshot")
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build(),
            snapshots: meter
                .u64_counter("tollgate.dataplane.snapshots")
                .with_description("Snapshots received, by result (applied or rejected)")
                .build(),
            tls_handshake_failures: meter
                .u64_counter("tollgate.dataplane.tls.handshake.failures")
                .with_description(
                    "TLS connections that ended before the handshake completed, by error.type",
                )
                .build(),
            relay_connections: meter
                .u64_counter("tollgate.dataplane.relay.connections")
                .with_unit("{connection}")
                .with_description(
                    "Connections on TLS listeners (TLSRoute), by result: relayed, or why not",
                )
                .build(),
            relay_bytes: meter
                .u64_counter("tollgate.dataplane.relay.bytes")
                .with_unit("By")
                .with_description(
                    "Bytes relayed for TLSRoutes, by direction (upstream: client to backend)",
                )
                .build(),
        }
    }
}
