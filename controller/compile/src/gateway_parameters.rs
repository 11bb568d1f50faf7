//! A Gateway's own GatewayConfig (`spec.infrastructure.parametersRef`) and
//! the data-plane [`Settings`] the Gateway gets from it and its class's.
//!
//! The class's GatewayConfig gives every Gateway of the class its settings;
//! a Gateway that names a GatewayConfig of its own has them overridden for
//! itself alone, so two Gateways of one class can differ (one traced at the
//! class's ratio, another at its own with an access log). How the two
//! combine, section by section:
//!
//! - The top-level timeouts and limits, `telemetry` and `retry` merge field
//!   by field at every depth: a field the Gateway's config sets wins, a
//!   field it leaves out keeps the class's value. Every field of these
//!   sections is optional, so "not set" is told apart from "set to the
//!   default"; a list (`telemetry.requestHeaders`) is one field, replaced
//!   whole. Envoy Gateway replaces a class's EnvoyProxy whole with a
//!   Gateway's instead; field by field lets a Gateway change its sampling
//!   ratio without copying the rest of the class's telemetry, and is how
//!   the operator already merges `kubernetes` and `drainTimeoutSeconds`.
//! - `clientAddress` is replaced whole when the Gateway's config has one:
//!   `trustedHops` and `trustedCIDRs` are two descriptions of one proxy
//!   chain (the CIDRs win when both are set), so the class's CIDRs mixed
//!   with the Gateway's hops would silently overrule the Gateway.
//! - `tls` and `rateLimit` stay the class's: TLS defaults also reach
//!   ListenerSet listeners through the class, and the Redis credentials are
//!   Secrets resolved in the class config's namespace.
//! - `kubernetes` is the operator's to merge (`controller/src/operator`).
//!
//! A value the class would be refused for (a sampling ratio outside 0 to 1,
//! a retry budget above 100%) makes only this Gateway `Accepted: False`
//! (`InvalidParameters`), so it is not served rather than served with
//! settings its owner did not ask for.

use crate::conditions::{Problem, reasons};
use crate::gatewayclass::{ClassOutcome, settings_from};
use crate::resources::Resources;
use gateway_api::experimental::gateways::Gateway;
use std::sync::Arc;
use tollgate_crds::{
    AccessLogConfig, GROUP, GatewayConfig, GatewayConfigSpec, RetryConfig, TelemetryConfig,
    TracingConfig,
};
use tollgate_snapshot::Settings;

/// The settings of `gateway`, a Gateway of `class`, and why its
/// `spec.infrastructure.parametersRef` is refused (`InvalidParameters`),
/// if it is. A refused Gateway keeps the class's settings; it is not
/// served anyway.
pub(crate) fn gateway_settings(
    resources: &Resources,
    gateway: &Gateway,
    class: &ClassOutcome,
) -> (Settings, Option<Problem>) {
    let (key, own) = match own_config(resources, gateway) {
        Ok(Some(own)) => own,
        Ok(None) => return (class.settings.clone(), None),
        Err(p) => return (class.settings.clone(), Some(p)),
    };
    let none = GatewayConfigSpec::default();
    let class_spec = class.config.as_deref().map_or(&none, |c| &c.spec);
    match settings_from(&overlay(class_spec, &own.spec)) {
        Ok(settings) => (
            Settings {
                redis: class.settings.redis.clone(),
                ..settings
            },
            None,
        ),
        Err(p) => (
            class.settings.clone(),
            Some(Problem::new(
                p.reason,
                format!(
                    "GatewayConfig {key} (infrastructure.parametersRef): {}",
                    p.message
                ),
            )),
        ),
    }
}

/// The GatewayConfig `gateway` names in `spec.infrastructure.parametersRef`,
/// with its `namespace/name`: `Ok(None)` when it names none. It must be a
/// `tollgate.dev` GatewayConfig in the Gateway's namespace that exists (the
/// Gateway API asks for `Accepted: False`, reason `InvalidParameters`,
/// otherwise).
fn own_config(
    resources: &Resources,
    gateway: &Gateway,
) -> Result<Option<(String, Arc<GatewayConfig>)>, Problem> {
    let Some(r) = gateway
        .spec
        .infrastructure
        .as_ref()
        .and_then(|i| i.parameters_ref.as_ref())
    else {
        return Ok(None);
    };
    let invalid = |m: String| Problem::new(reasons::INVALID_PARAMETERS, m);
    if r.group != GROUP || r.kind != "GatewayConfig" {
        return Err(invalid(format!(
            "infrastructure.parametersRef must name a GatewayConfig of group {GROUP}, not kind {} of group {:?}",
            r.kind, r.group
        )));
    }
    let namespace = gateway.metadata.namespace.as_deref().unwrap_or_default();
    let key = format!("{namespace}/{}", r.name);
    match resources.gateway_configs.get(&key) {
        Some(config) => Ok(Some((key, Arc::clone(config)))),
        None => Err(invalid(format!("GatewayConfig {key} does not exist"))),
    }
}

/// `own` laid over `class` as the module comment says. Every field is
/// named, so a field added to GatewayConfig does not compile until it is
/// given its merge here.
fn overlay(class: &GatewayConfigSpec, own: &GatewayConfigSpec) -> GatewayConfigSpec {
    macro_rules! pick {
        ($field:ident) => {
            own.$field.clone().or_else(|| class.$field.clone())
        };
    }
    GatewayConfigSpec {
        request_header_timeout_seconds: pick!(request_header_timeout_seconds),
        idle_timeout_seconds: pick!(idle_timeout_seconds),
        max_request_header_bytes: pick!(max_request_header_bytes),
        max_request_headers: pick!(max_request_headers),
        max_connections: pick!(max_connections),
        upstream_connect_timeout_seconds: pick!(upstream_connect_timeout_seconds),
        drain_timeout_seconds: pick!(drain_timeout_seconds),
        allow_encoded_slashes: pick!(allow_encoded_slashes),
        request_body_timeout_seconds: pick!(request_body_timeout_seconds),
        request_body_min_bytes_per_second: pick!(request_body_min_bytes_per_second),
        max_concurrent_streams: pick!(max_concurrent_streams),
        tunnel_idle_timeout_seconds: pick!(tunnel_idle_timeout_seconds),
        telemetry: merge(&own.telemetry, &class.telemetry, telemetry),
        retry: merge(&own.retry, &class.retry, retry),
        client_address: pick!(client_address),
        tls: class.tls.clone(),
        rate_limit: class.rate_limit.clone(),
        kubernetes: class.kubernetes.clone(),
    }
}

/// `own` over `class` with `both` when both are set, else whichever is.
fn merge<T: Clone>(own: &Option<T>, class: &Option<T>, both: fn(&T, &T) -> T) -> Option<T> {
    match (own, class) {
        (Some(own), Some(class)) => Some(both(own, class)),
        _ => own.clone().or_else(|| class.clone()),
    }
}

fn telemetry(own: &TelemetryConfig, class: &TelemetryConfig) -> TelemetryConfig {
    TelemetryConfig {
        tracing: merge(&own.tracing, &class.tracing, |own, class| TracingConfig {
            enabled: own.enabled.or(class.enabled),
            sampling_ratio: own.sampling_ratio.or(class.sampling_ratio),
            sampler: own.sampler.or(class.sampler),
        }),
        access_log: merge(&own.access_log, &class.access_log, |own, class| {
            AccessLogConfig {
                enabled: own.enabled.or(class.enabled),
                sample_ratio: own.sample_ratio.or(class.sample_ratio),
                otlp: own.otlp.or(class.otlp),
            }
        }),
        request_headers: own
            .request_headers
            .clone()
            .or_else(|| class.request_headers.clone()),
        response_headers: own
            .response_headers
            .clone()
            .or_else(|| class.response_headers.clone()),
        record_query: own.record_query.or(class.record_query),
    }
}

fn retry(own: &RetryConfig, class: &RetryConfig) -> RetryConfig {
    RetryConfig {
        budget_percent: own.budget_percent.or(class.budget_percent),
        budget_interval_seconds: own
            .budget_interval_seconds
            .or(class.budget_interval_seconds),
        min_retries_per_second: own.min_retries_per_second.or(class.min_retries_per_second),
        max_buffered_body_bytes: own
            .max_buffered_body_bytes
            .or(class.max_buffered_body_bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> GatewayConfigSpec {
        serde_json::from_value(serde_yaml::from_str(yaml).unwrap()).unwrap()
    }

    /// Fields the Gateway sets win at every depth, the rest are the
    /// class's; lists and `clientAddress` are replaced whole.
    #[test]
    fn own_fields_win_one_by_one() {
        let class = spec(
            "idleTimeoutSeconds: 30
drainTimeoutSeconds: 9
telemetry:
  tracing: {enabled: true, samplingRatio: 0.5}
  accessLog: {sampleRatio: 0.2, otlp: true}
  requestHeaders: [X-A, X-B]
  recordQuery: true
retry: {budgetPercent: 30, minRetriesPerSecond: 2}
clientAddress: {trustedCIDRs: [10.0.0.0/8]}
tls: {minVersion: '1.3'}
",
        );
        let own = spec(
            "drainTimeoutSeconds: 2
telemetry:
  tracing: {samplingRatio: 0.1}
  accessLog: {enabled: true}
  requestHeaders: [X-C]
retry: {budgetPercent: 10}
clientAddress: {trustedHops: 1}
tls: {minVersion: '1.2'}
",
        );
        let want = spec(
            "idleTimeoutSeconds: 30
drainTimeoutSeconds: 2
telemetry:
  tracing: {enabled: true, samplingRatio: 0.1}
  accessLog: {enabled: true, sampleRatio: 0.2, otlp: true}
  requestHeaders: [X-C]
  recordQuery: true
retry: {budgetPercent: 10, minRetriesPerSecond: 2}
clientAddress: {trustedHops: 1}
tls: {minVersion: '1.3'}
",
        );
        assert_eq!(overlay(&class, &own), want);
    }

    /// An empty GatewayConfig of the Gateway's changes nothing, and one
    /// over a class without a config is itself.
    #[test]
    fn absent_sides_change_nothing() {
        let config =
            spec("telemetry: {tracing: {samplingRatio: 0.5}}\nretry: {budgetPercent: 5}\n");
        let empty = GatewayConfigSpec::default();
        assert_eq!(overlay(&config, &empty), config);
        assert_eq!(overlay(&empty, &config), config);
    }
}
