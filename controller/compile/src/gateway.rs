//! `compile_gateway`: a Gateway of an accepted Tollgate class becomes a
//! [`GatewayPlan`] (addresses, listeners, settings) that routes attach to,
//! and, once attachments are counted, its status.
//!
//! A Gateway is served (gets a snapshot) only when it is programmed: its
//! class is accepted, its addresses are usable, and at least one listener is
//! programmed.

use crate::backend_client::backend_client_certificate;
use crate::backends::Referrer;
use crate::certificates::resolve_certificates;
use crate::conditions::{Problem, Stamp, reasons, types};
use crate::frontend_tls::FrontendTls;
use crate::gateway_parameters::gateway_settings;
use crate::gatewayclass::ClassOutcome;
use crate::listeners::{ListenerPlan, plan_listeners};
use crate::options::CompileOptions;
use crate::resources::Resources;
use crate::tls_options::listener_options;
use gateway_api::experimental::gateways::{
    Gateway, GatewayListeners, GatewayStatus, GatewayStatusAddresses,
};
use std::net::IpAddr;
use tollgate_snapshot::{ClientCertificate, ListenerTls, Settings, TlsMode, TlsOptions};

/// The address type Tollgate binds.
const IP_ADDRESS: &str = "IPAddress";

/// One Gateway as compile sees it.
#[derive(Clone, Debug)]
pub(crate) struct GatewayPlan {
    /// `metadata.namespace`.
    pub(crate) namespace: String,
    /// `metadata.name`.
    pub(crate) name: String,
    /// Stamp for this Gateway's conditions.
    pub(crate) stamp: Stamp,
    /// The class's problem when it is not accepted.
    pub(crate) class_problem: Option<Problem>,
    /// A `spec.infrastructure.parametersRef` that does not resolve, or
    /// whose GatewayConfig holds a value that cannot be served
    /// (`InvalidParameters`: Accepted False).
    pub(crate) parameters_problem: Option<Problem>,
    /// Settings from the class, overridden by the Gateway's own
    /// GatewayConfig (`gateway_parameters`).
    pub(crate) settings: Settings,
    /// IP addresses to bind, in manifest order without duplicates.
    pub(crate) addresses: Vec<String>,
    /// An address of an unsupported type (Accepted False).
    pub(crate) address_unsupported: Option<Problem>,
    /// An address that cannot be bound (Programmed False).
    pub(crate) address_unusable: Option<Problem>,
    /// Listeners in manifest order.
    pub(crate) listeners: Vec<ListenerPlan>,
    /// The client certificate for TLS backends (`spec.tls.backend`):
    /// `Ok(None)` when none is named, `Err` when it does not resolve.
    pub(crate) backend_client: Result<Option<ClientCertificate>, Problem>,
    /// Whether `spec.tls.frontend` lets clients in without a valid
    /// certificate somewhere (`InsecureFrontendValidationMode`).
    pub(crate) insecure_frontend: bool,
    /// Whether the Gateway's sockets expect a PROXY protocol (v1 or v2)
    /// header first ([`PROXY_PROTOCOL_ANNOTATION`]).
    pub(crate) proxy_protocol: bool,
}

/// The Gateway annotation that makes every socket of the Gateway read a
/// PROXY protocol header before anything else: set it to `"true"` only
/// when a load balancer that sends the header sits in front, since a
/// client that reaches the socket directly could otherwise claim any
/// address. Any other value leaves it off.
pub const PROXY_PROTOCOL_ANNOTATION: &str = "tollgate.dev/proxy-protocol";

/// Plans `gateway`, whose class Tollgate owns.
pub(crate) fn compile_gateway(
    resources: &Resources,
    gateway: &Gateway,
    class_name: &str,
    class: &ClassOutcome,
    options: &CompileOptions,
    stamp: &Stamp,
) -> GatewayPlan {
    let (settings, parameters_problem) = gateway_settings(resources, gateway, class);
    let mut plan = GatewayPlan {
        namespace: gateway.metadata.namespace.clone().unwrap_or_default(),
        name: gateway.metadata.name.clone().unwrap_or_default(),
        stamp: stamp.for_generation(gateway.metadata.generation),
        class_problem: class.problem.as_ref().map(|p| {
            Problem::new(
                reasons::INVALID,
                format!("GatewayClass {class_name} is not accepted: {}", p.message),
            )
        }),
        parameters_problem,
        settings,
        addresses: Vec::new(),
        address_unsupported: None,
        address_unusable: None,
        listeners: plan_listeners(&gateway.spec.listeners, options.listener_port_offset),
        backend_client: backend_client_certificate(resources, gateway),
        insecure_frontend: false,
        proxy_protocol: gateway
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(PROXY_PROTOCOL_ANNOTATION))
            .is_some_and(|v| v.trim() == "true"),
    };
    let frontend = FrontendTls::new(resources, gateway);
    plan.insecure_frontend = frontend.insecure_fallback();
    for (listener, spec) in plan.listeners.iter_mut().zip(&gateway.spec.listeners) {
        let owner = Referrer {
            group: crate::listeners::GATEWAY_GROUP,
            kind: "Gateway",
            namespace: &plan.namespace,
        };
        let tls = TlsInputs {
            resources,
            owner: &owner,
            defaults: &class.tls_defaults,
            frontend: &frontend,
        };
        plan_tls(&tls, listener, spec);
    }
    plan_addresses(&mut plan, gateway, &options.bind_address);
    if options.provisioned {
        // The addresses were checked above; they belong to the Service
        // now (the operator makes them its externalIPs), and a pod binds
        // the wildcard address.
        plan.addresses = vec![options.bind_address.clone()];
    }
    plan
}

/// What `plan_tls` reads besides the listener.
pub(crate) struct TlsInputs<'a> {
    pub(crate) resources: &'a Resources,
    /// Who reads the certificate Secrets: the Gateway, or a ListenerSet
    /// (ReferenceGrants name it).
    pub(crate) owner: &'a Referrer<'a>,
    pub(crate) defaults: &'a TlsOptions,
    /// The Gateway's `spec.tls.frontend`, which covers every listener on
    /// its ports, a ListenerSet's too.
    pub(crate) frontend: &'a FrontendTls<'a>,
}

/// Certificates, options and client validation of an HTTPS listener. A
/// reference that does not resolve is the listener's `ResolvedRefs`
/// problem; options that cannot be served make it not accepted
/// (`UnsupportedValue`), as does client validation with no usable CA
/// (`frontend_tls.rs`). Either way only this listener is left out.
pub(crate) fn plan_tls(
    inputs: &TlsInputs<'_>,
    listener: &mut ListenerPlan,
    spec: &GatewayListeners,
) {
    let TlsInputs {
        resources,
        owner,
        defaults,
        frontend,
    } = *inputs;
    let certificates = match resolve_certificates(resources, owner, spec) {
        Ok(certificates) => certificates,
        Err(problem) => {
            listener.certificate_problem = Some(problem);
            return;
        }
    };
    // TLS listeners in Terminate mode end TLS like HTTPS ones do.
    if spec.protocol != "HTTPS" && listener.tls_mode != Some(TlsMode::Terminate) {
        return;
    }
    let map = spec.tls.as_ref().and_then(|t| t.options.as_ref());
    match listener_options(defaults, map) {
        Ok(options) => {
            let client = frontend.for_port(spec.port);
            listener.frontend_problem = client.unresolved;
            if let Some(problem) = client.not_accepted {
                listener.accept_problem.get_or_insert(problem);
                return;
            }
            listener.tls = Some(ListenerTls {
                certificates,
                options,
                client_validation: client.validation,
            })
        }
        Err(message) => {
            if listener.accept_problem.is_none() {
                listener.accept_problem = Some(Problem::new(reasons::UNSUPPORTED_VALUE, message));
            }
        }
    }
}

/// `spec.addresses`: only `IPAddress` is supported; an address without a
/// value, or no addresses at all, means the controller's bind address.
fn plan_addresses(plan: &mut GatewayPlan, gateway: &Gateway, bind_address: &str) {
    let push = |a: String, plan: &mut GatewayPlan| {
        if !plan.addresses.contains(&a) {
            plan.addresses.push(a);
        }
    };
    for a in gateway.spec.addresses.iter().flatten() {
        let kind = a.r#type.as_deref().unwrap_or(IP_ADDRESS);
        if kind != IP_ADDRESS {
            plan.address_unsupported = Some(Problem::new(
                reasons::UNSUPPORTED_ADDRESS,
                format!("address type {kind} is not supported; use IPAddress"),
            ));
            continue;
        }
        match a.value.as_deref() {
            None | Some("") => push(bind_address.to_string(), plan),
            Some(v) => match v.parse::<IpAddr>() {
                Ok(ip) => push(ip.to_string(), plan),
                Err(_) => {
                    plan.address_unusable = Some(Problem::new(
                        reasons::ADDRESS_NOT_USABLE,
                        format!("address {v:?} is not an IP address"),
                    ))
                }
            },
        }
    }
    if plan.addresses.is_empty() && plan.address_unsupported.is_none() {
        push(bind_address.to_string(), plan);
    }
}

impl GatewayPlan {
    /// `namespace/name`.
    pub(crate) fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Why the Gateway is not accepted (`Err`), or the reason it is
    /// accepted with (`Accepted` or `ListenersNotValid`).
    fn acceptance(&self) -> Result<Problem, Problem> {
        if let Some(p) = self
            .class_problem
            .clone()
            .or(self.parameters_problem.clone())
            .or(self.address_unsupported.clone())
        {
            return Err(p);
        }
        // ListenerSet listeners speak for their ListenerSet only.
        let own = self.listeners.iter().filter(|l| l.set.is_none());
        let invalid: Vec<&str> = own
            .clone()
            .filter(|l| l.not_programmed().is_some())
            .map(|l| l.name.as_str())
            .collect();
        if invalid.len() == own.count() {
            return Err(Problem::new(
                reasons::LISTENERS_NOT_VALID,
                "no listener is valid",
            ));
        }
        if invalid.is_empty() {
            Ok(Problem::new(reasons::ACCEPTED, "Gateway is accepted"))
        } else {
            Ok(Problem::new(
                reasons::LISTENERS_NOT_VALID,
                format!("listener(s) {} are not valid", invalid.join(", ")),
            ))
        }
    }

    /// Why the Gateway is not programmed, or `None` when it is served.
    pub(crate) fn not_programmed(&self) -> Option<Problem> {
        match self.acceptance() {
            Err(p) => Some(Problem::new(reasons::INVALID, p.message)),
            Ok(_) => self.address_unusable.clone(),
        }
    }

    /// The Gateway's status; `attached[i]` counts routes on listener `i`.
    pub(crate) fn status(&self, attached: &[i32]) -> GatewayStatus {
        let s = &self.stamp;
        let accepted = match self.acceptance() {
            Ok(p) => s.condition(types::ACCEPTED, true, p.reason, p.message),
            Err(p) => s.condition(types::ACCEPTED, false, p.reason, p.message),
        };
        let not_programmed = self.not_programmed();
        let programmed = match &not_programmed {
            Some(p) => s.condition(types::PROGRAMMED, false, p.reason, &p.message),
            None => s.condition(
                types::PROGRAMMED,
                true,
                reasons::PROGRAMMED,
                "Gateway is programmed",
            ),
        };
        // A wildcard bind address (0.0.0.0, ::) is no address a client can
        // use: such a Gateway reports none rather than a false one.
        let addresses: Vec<GatewayStatusAddresses> = self
            .addresses
            .iter()
            .filter(|a| a.parse::<IpAddr>().is_ok_and(|ip| !ip.is_unspecified()))
            .map(|a| GatewayStatusAddresses {
                r#type: Some(IP_ADDRESS.to_string()),
                value: a.clone(),
            })
            .collect();
        let addresses = (not_programmed.is_none() && !addresses.is_empty()).then_some(addresses);
        let listeners = self
            .listeners
            .iter()
            .enumerate()
            .filter(|(_, l)| l.set.is_none())
            .map(|(i, l)| {
                let count = attached.get(i).copied().unwrap_or(0);
                l.status(s, count, not_programmed.as_ref())
            })
            .collect();
        let mut conditions = vec![accepted, programmed];
        // ResolvedRefs speaks of `spec.tls.backend.clientCertificateRef`
        // only, so a Gateway without one carries no such condition.
        match &self.backend_client {
            Ok(None) => {}
            Ok(Some(_)) => conditions.push(s.condition(
                types::RESOLVED_REFS,
                true,
                reasons::RESOLVED_REFS,
                "The backend client certificate resolved",
            )),
            Err(p) => {
                conditions.push(s.condition(types::RESOLVED_REFS, false, p.reason, &p.message))
            }
        }
        if self.insecure_frontend {
            conditions.push(s.condition(
                types::INSECURE_FRONTEND_VALIDATION_MODE,
                true,
                reasons::CONFIGURATION_CHANGED,
                "spec.tls.frontend uses AllowInsecureFallback: clients without a valid certificate are let in",
            ));
        }
        GatewayStatus {
            addresses,
            attached_listener_sets: None,
            conditions: Some(conditions),
            listeners: Some(listeners),
        }
    }
}
