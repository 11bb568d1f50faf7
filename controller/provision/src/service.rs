//! The Service exposing a Gateway's listener ports.
//!
//! The pods bind the listener ports themselves, so each Service port
//! targets the same port number. Ports are deduplicated: several listeners
//! (different hostnames, or HTTP and TLS on one port) share one socket.
//! `spec.addresses` of type IPAddress become the Service's `externalIPs`:
//! a pod cannot bind a load balancer's address, and `externalIPs` is the
//! one Service field every type honours (the deprecated `loadBalancerIP`
//! is ignored by many load balancers and means nothing to NodePort or
//! ClusterIP).

use crate::{Context, ProvisionError, names, patched};
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The Service's default type.
const LOAD_BALANCER: &str = "LoadBalancer";

/// One port the data plane listens on: (name, port).
pub(crate) fn listener_ports(ctx: &Context<'_>) -> Vec<(String, i32)> {
    let mut ports: Vec<(String, i32)> = Vec::new();
    for listener in &ctx.gateway.spec.listeners {
        if listener.protocol == "UDP" || ports.iter().any(|(_, p)| *p == listener.port) {
            continue;
        }
        let scheme = match listener.protocol.as_str() {
            "HTTP" => "http",
            "HTTPS" => "https",
            "TLS" => "tls",
            _ => "tcp",
        };
        ports.push((format!("{scheme}-{}", listener.port), listener.port));
    }
    ports
}

/// The Gateway's IPAddress `spec.addresses` (the valid ones; compile
/// reports the rest).
fn external_ips(ctx: &Context<'_>) -> Option<Vec<String>> {
    let ips: Vec<String> = ctx
        .gateway
        .spec
        .addresses
        .iter()
        .flatten()
        .filter(|a| a.r#type.as_deref().unwrap_or("IPAddress") == "IPAddress")
        .filter_map(|a| a.value.clone())
        .filter(|v| v.parse::<std::net::IpAddr>().is_ok())
        .collect();
    (!ips.is_empty()).then_some(ips)
}

/// The Service.
pub(crate) fn service(ctx: &Context<'_>) -> Result<Service, ProvisionError> {
    let settings = ctx.config.service.clone().unwrap_or_default();
    let type_ = settings
        .type_
        .clone()
        .unwrap_or_else(|| LOAD_BALANCER.to_string());
    let external = type_ != "ClusterIP";
    let load_balancer = type_ == LOAD_BALANCER;
    let ports = listener_ports(ctx)
        .into_iter()
        .map(|(name, port)| ServicePort {
            name: Some(name),
            port,
            target_port: Some(IntOrString::Int(port)),
            protocol: Some("TCP".to_string()),
            ..ServicePort::default()
        })
        .collect();
    let service = Service {
        metadata: ctx.meta(settings.labels.as_ref(), settings.annotations.as_ref()),
        spec: Some(ServiceSpec {
            type_: Some(type_),
            selector: Some(names::selector(&ctx.name)),
            ports: Some(ports),
            external_ips: external_ips(ctx),
            external_traffic_policy: settings
                .external_traffic_policy
                .clone()
                .filter(|_| external),
            load_balancer_class: settings
                .load_balancer_class
                .clone()
                .filter(|_| load_balancer),
            load_balancer_source_ranges: settings
                .load_balancer_source_ranges
                .clone()
                .filter(|_| load_balancer),
            ..ServiceSpec::default()
        }),
        status: None,
    };
    let patch = ctx.config.patches.as_ref().and_then(|p| p.service.as_ref());
    patched(service, patch, "service")
}
