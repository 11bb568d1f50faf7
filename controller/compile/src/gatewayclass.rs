//! `compile_gateway_class`: decides whether Tollgate accepts a GatewayClass
//! and which data-plane [`Settings`] its Gateways get.
//!
//! Only classes whose `controllerName` is Tollgate's are looked at; others
//! belong to another controller and get no status from Tollgate. A class is
//! refused (`InvalidParameters`) when its `parametersRef` names anything but
//! an existing `tollgate.dev/GatewayConfig`, because its Gateways would
//! otherwise run with settings the user did not ask for.

use crate::conditions::{Problem, Stamp, reasons, types};
use crate::resources::Resources;
use crate::tls_options::defaults_from;
use gateway_api::experimental::gatewayclasses::{
    GatewayClass, GatewayClassStatus, GatewayClassStatusSupportedFeatures,
};
use std::sync::Arc;
use tollgate_crds::{
    GROUP, GatewayConfig, GatewayConfigSpec, RetryConfig, TelemetryConfig, TracingSampler,
};
use tollgate_snapshot::{PER_MILLION, RetrySettings, Settings, TelemetrySettings, TlsOptions};

/// What compile knows about one of Tollgate's GatewayClasses.
#[derive(Clone, Debug)]
pub(crate) struct ClassOutcome {
    /// Why the class is not accepted; `None` when it is.
    pub(crate) problem: Option<Problem>,
    /// Settings for every Gateway of the class that names no GatewayConfig
    /// of its own.
    pub(crate) settings: Settings,
    /// The class's GatewayConfig when the class is accepted with one. A
    /// Gateway's own GatewayConfig is laid over it field by field
    /// (`gateway_parameters`); `settings` cannot serve for that, since they
    /// no longer tell a default from a value that was set.
    pub(crate) config: Option<Arc<GatewayConfig>>,
    /// TLS defaults for the HTTPS listeners of the class's Gateways.
    pub(crate) tls_defaults: TlsOptions,
    /// The class's status.
    pub(crate) status: GatewayClassStatus,
}

/// Accepts or refuses `class` and resolves its settings.
pub(crate) fn compile_gateway_class(
    resources: &Resources,
    class: &GatewayClass,
    stamp: &Stamp,
) -> ClassOutcome {
    let stamp = stamp.for_generation(class.metadata.generation);
    let resolved = resolve_parameters(resources, class);
    let accepted = match &resolved {
        Ok(_) => stamp.condition(
            types::ACCEPTED,
            true,
            reasons::ACCEPTED,
            "Tollgate handles Gateways of this class",
        ),
        Err(p) => stamp.condition(types::ACCEPTED, false, p.reason, &p.message),
    };
    let supported = stamp.condition(
        types::SUPPORTED_VERSION,
        true,
        reasons::SUPPORTED_VERSION,
        "Gateway API version is supported",
    );
    let (problem, (settings, tls_defaults, config)) = match resolved {
        Ok(resolved) => (None, resolved),
        Err(p) => (Some(p), (Settings::default(), TlsOptions::default(), None)),
    };
    ClassOutcome {
        problem,
        settings,
        config,
        tls_defaults,
        status: GatewayClassStatus {
            conditions: Some(vec![accepted, supported]),
            supported_features: Some(
                SUPPORTED_FEATURES
                    .iter()
                    .map(|name| GatewayClassStatusSupportedFeatures {
                        name: name.to_string(),
                    })
                    .collect(),
            ),
        },
    }
}

/// The Gateway API conformance features Tollgate implements, as named in
/// the Gateway API's `pkg/features` (v1.6), sorted as the spec requires.
/// Conformance tooling reads this list from the class status to decide what
/// to test, so it names only what is served end to end. TLSRoute
/// Terminate listeners are
/// served, but `TLSRouteModeTerminate` is not claimed: with
/// `BackendTLSPolicy` claimed too, conformance then expects a Terminate
/// listener to re-encrypt to a policy's backend, which Tollgate does not
/// do yet (docs/tls.md). HTTPS listeners are core `Gateway`;
/// `GatewayHTTPSListenerDetectMisdirectedRequests` is the 421 a request
/// gets when its Host selects another listener than its connection's SNI.
/// Connection errors are retried, but `HTTPRouteRetryConnectionError`
/// expects 500 or 503 once retries run out after resets, where Tollgate
/// answers a reset 502; it joins when that answer is settled
/// (docs/retries.md). `HTTPRouteExternalAuthHTTP`: the filter is compiled
/// into the rule's auth (`auth_authz`) and enforced by the data plane's
/// external-auth stage; the gRPC protocol compiles too but is not claimed
/// until conformance covers it here.
pub(crate) const SUPPORTED_FEATURES: &[&str] = &[
    "BackendTLSPolicy",
    "BackendTLSPolicySANValidation",
    "GRPCRoute",
    "Gateway",
    "GatewayFrontendClientCertificateValidation",
    "GatewayFrontendClientCertificateValidationInsecureFallback",
    "GatewayHTTPSListenerDetectMisdirectedRequests",
    "GatewayPort8080",
    "GatewayStaticAddresses",
    "HTTPRoute",
    "HTTPRoute303RedirectStatusCode",
    "HTTPRoute307RedirectStatusCode",
    "HTTPRoute308RedirectStatusCode",
    "HTTPRouteBackendProtocolH2C",
    "HTTPRouteBackendProtocolWebSocket",
    "HTTPRouteBackendRequestHeaderModification",
    "HTTPRouteBackendTimeout",
    "HTTPRouteCORS",
    "HTTPRouteExternalAuthHTTP",
    "HTTPRouteHostRewrite",
    "HTTPRouteMethodMatching",
    "HTTPRouteNamedRouteRule",
    "HTTPRouteParentRefPort",
    "HTTPRoutePathRedirect",
    "HTTPRoutePathRewrite",
    "HTTPRoutePortRedirect",
    "HTTPRouteQueryParamMatching",
    "HTTPRouteRequestMirror",
    "HTTPRouteRequestMultipleMirrors",
    "HTTPRouteRequestPercentageMirror",
    "HTTPRouteRequestTimeout",
    "HTTPRouteResponseHeaderModification",
    "HTTPRouteRetry",
    "HTTPRouteRetryBackendTimeout",
    "HTTPRouteSchemeRedirect",
    "ListenerSet",
    "ReferenceGrant",
    "TLSRoute",
];

/// The class's settings, TLS defaults and GatewayConfig.
type Resolved = (Settings, TlsOptions, Option<Arc<GatewayConfig>>);

fn resolve_parameters(resources: &Resources, class: &GatewayClass) -> Result<Resolved, Problem> {
    let Some(r) = &class.spec.parameters_ref else {
        return Ok((Settings::default(), TlsOptions::default(), None));
    };
    let invalid = |m: String| Problem::new(reasons::INVALID_PARAMETERS, m);
    if r.group != GROUP || r.kind != "GatewayConfig" {
        return Err(invalid(format!(
            "parametersRef must name a GatewayConfig of group {GROUP}, not kind {} of group {:?}",
            r.kind, r.group
        )));
    }
    let Some(ns) = &r.namespace else {
        return Err(invalid(format!(
            "parametersRef to GatewayConfig {} needs a namespace",
            r.name
        )));
    };
    let key = format!("{ns}/{}", r.name);
    match resources.gateway_configs.get(&key) {
        Some(config) => {
            let tls = defaults_from(config.spec.tls.as_ref()).map_err(invalid)?;
            let mut settings = settings_from(&config.spec)?;
            let redis = config
                .spec
                .rate_limit
                .as_ref()
                .and_then(|r| r.redis.as_ref());
            settings.redis = redis
                .map(|r| crate::redis_settings::redis_from(resources, ns, r))
                .transpose()?;
            Ok((settings, tls, Some(Arc::clone(config))))
        }
        None => Err(invalid(format!("GatewayConfig {key} does not exist"))),
    }
}

/// Maps a GatewayConfig onto snapshot settings (seconds to milliseconds);
/// absent fields keep the defaults.
pub(crate) fn settings_from(spec: &GatewayConfigSpec) -> Result<Settings, Problem> {
    let d = Settings::default();
    let ms = |s: Option<u32>, default: u64| s.map_or(default, |s| u64::from(s) * 1000);
    Ok(Settings {
        request_header_timeout_ms: ms(
            spec.request_header_timeout_seconds,
            d.request_header_timeout_ms,
        ),
        idle_timeout_ms: ms(spec.idle_timeout_seconds, d.idle_timeout_ms),
        max_request_header_bytes: spec
            .max_request_header_bytes
            .unwrap_or(d.max_request_header_bytes),
        max_request_headers: spec.max_request_headers.unwrap_or(d.max_request_headers),
        max_connections: spec.max_connections.unwrap_or(d.max_connections),
        upstream_connect_timeout_ms: ms(
            spec.upstream_connect_timeout_seconds,
            d.upstream_connect_timeout_ms,
        ),
        drain_timeout_ms: ms(spec.drain_timeout_seconds, d.drain_timeout_ms),
        allow_encoded_slashes: spec
            .allow_encoded_slashes
            .unwrap_or(d.allow_encoded_slashes),
        request_body_timeout_ms: ms(spec.request_body_timeout_seconds, d.request_body_timeout_ms),
        request_body_min_bytes_per_second: spec
            .request_body_min_bytes_per_second
            .unwrap_or(d.request_body_min_bytes_per_second),
        max_concurrent_streams: spec
            .max_concurrent_streams
            .unwrap_or(d.max_concurrent_streams),
        tunnel_idle_timeout_ms: spec
            .tunnel_idle_timeout_seconds
            .map(|s| u64::from(s) * 1000),
        telemetry: telemetry_from(spec.telemetry.as_ref())?,
        retry: retry_from(spec.retry.as_ref())?,
        client_cert_header: crate::client_cert_header::client_cert_header_from(
            spec.tls
                .as_ref()
                .and_then(|t| t.client_certificate_header.as_ref()),
        )?,
        client_address: client_address_from(spec.client_address.as_ref())?,
        redis: None,
    })
}

/// The trusted proxies of a GatewayConfig.
///
/// # Errors
///
/// A `trustedCIDRs` entry that is not a CIDR (`InvalidParameters`): a
/// range the data plane would skip could make it trust the wrong hop.
fn client_address_from(
    config: Option<&tollgate_crds::ClientAddressConfig>,
) -> Result<tollgate_snapshot::ClientAddress, Problem> {
    let Some(config) = config else {
        return Ok(tollgate_snapshot::ClientAddress::default());
    };
    let trusted_cidrs = config
        .trusted_cidrs
        .iter()
        .flatten()
        .map(|c| {
            crate::cidr::parse_cidr(c).ok_or_else(|| {
                Problem::new(
                    reasons::INVALID_PARAMETERS,
                    format!("clientAddress.trustedCIDRs: {c:?} is not a CIDR"),
                )
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(tollgate_snapshot::ClientAddress {
        trusted_hops: config.trusted_hops.unwrap_or(0),
        trusted_cidrs,
    })
}

/// The retry budget of a GatewayConfig; absent fields keep the defaults.
///
/// # Errors
///
/// A percentage above 100 or an interval outside 1 to 3600 seconds
/// (`InvalidParameters`), which the CRD schema refuses too; a manifest
/// folder has no schema to refuse them.
fn retry_from(config: Option<&RetryConfig>) -> Result<RetrySettings, Problem> {
    let d = RetrySettings::default();
    let Some(config) = config else {
        return Ok(d);
    };
    let percent = config.budget_percent.unwrap_or(d.budget_percent);
    let interval_s = config
        .budget_interval_seconds
        .map_or(d.budget_interval_ms / 1000, u64::from);
    if percent > 100 || !(1..=3600).contains(&interval_s) {
        return Err(Problem::new(
            reasons::INVALID_PARAMETERS,
            format!(
                "retry.budgetPercent must be at most 100 ({percent}) and \
                 retry.budgetIntervalSeconds from 1 to 3600 ({interval_s})"
            ),
        ));
    }
    Ok(RetrySettings {
        budget_percent: percent,
        budget_interval_ms: interval_s * 1000,
        min_retries_per_second: config
            .min_retries_per_second
            .unwrap_or(d.min_retries_per_second),
        max_buffered_body_bytes: config
            .max_buffered_body_bytes
            .unwrap_or(d.max_buffered_body_bytes),
    })
}

/// The telemetry settings of a GatewayConfig.
///
/// # Errors
///
/// A ratio outside 0 to 1 (`InvalidParameters`).
fn telemetry_from(config: Option<&TelemetryConfig>) -> Result<TelemetrySettings, Problem> {
    let d = TelemetrySettings::default();
    let Some(config) = config else {
        return Ok(d);
    };
    let per_million = |ratio: f64, field: &str| {
        if (0.0..=1.0).contains(&ratio) {
            Ok((ratio * f64::from(PER_MILLION)).round() as u32)
        } else {
            Err(Problem::new(
                reasons::INVALID_PARAMETERS,
                format!("telemetry.{field} must be from 0 to 1, not {ratio}"),
            ))
        }
    };
    let tracing = config.tracing.clone().unwrap_or_default();
    let access = config.access_log.clone().unwrap_or_default();
    let lower = |names: &Option<Vec<String>>| -> Vec<String> {
        names
            .iter()
            .flatten()
            .map(|n| n.trim().to_ascii_lowercase())
            .filter(|n| !n.is_empty())
            .collect()
    };
    Ok(TelemetrySettings {
        tracing: tracing.enabled.unwrap_or(d.tracing),
        sampling_per_million: tracing
            .sampling_ratio
            .map(|r| per_million(r, "tracing.samplingRatio"))
            .transpose()?,
        sampling_parent_based: tracing
            .sampler
            .map(|s| s == TracingSampler::ParentBasedTraceIdRatio),
        access_log: access.enabled.unwrap_or(d.access_log),
        access_log_per_million: access
            .sample_ratio
            .map_or(Ok(d.access_log_per_million), |r| {
                per_million(r, "accessLog.sampleRatio")
            })?,
        access_log_otlp: access.otlp.unwrap_or(d.access_log_otlp),
        request_headers: lower(&config.request_headers),
        response_headers: lower(&config.response_headers),
        record_query: config.record_query.unwrap_or(d.record_query),
    })
}

#[cfg(test)]
mod tests {
    use super::SUPPORTED_FEATURES;

    /// The spec asks for the list sorted by name (a list-map keyed by name,
    /// so no duplicates), and allows at most 64 entries.
    #[test]
    fn supported_features_are_sorted_unique_and_few() {
        assert!(SUPPORTED_FEATURES.windows(2).all(|w| w[0] < w[1]));
        assert!(SUPPORTED_FEATURES.len() <= 64);
    }
}
