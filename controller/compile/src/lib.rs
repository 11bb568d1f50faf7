//! `compile`: Kubernetes objects in, routing snapshots and statuses out.
//!
//! A pure function: no I/O, no clock (the time stamped on conditions is
//! [`CompileOptions::now`]), no randomness, deterministic output order. All
//! Gateway API semantics — class acceptance, listener validation, route
//! attachment, hostname intersection, match precedence, ReferenceGrant
//! checks, backend resolution — are decided here so the data plane only
//! executes a resolved plan. A user mistake becomes a status condition on
//! the object that holds it, never an error: the rest still compiles.

mod attach_memo;
mod auth_authz;
mod auth_merge;
mod auth_policies;
mod auth_refs;
mod auth_sections;
mod auth_status;
mod backend_client;
mod backend_tls;
mod backend_tls_status;
mod backends;
mod certificate_pem;
mod certificates;
mod cidr;
mod client_cert_header;
mod compiler;
mod conditions;
mod duration;
mod endpoints;
mod filters;
mod frontend_tls;
mod gateway;
mod gateway_parameters;
mod gatewayclass;
mod grpcroute;
mod hostname;
mod httproute;
mod kind_conflicts;
mod listeners;
mod listenerset;
mod matches;
mod memo;
mod options;
mod output;
mod ratelimit_policies;
mod redis_settings;
mod refill;
pub mod resources;
mod retries;
mod route_attach;
mod rule_context;
mod rules;
mod selector;
mod snapshot;
mod status_memo;
mod tls_options;
mod tlsroute;
mod tlsroute_snapshot;
mod unserved;

pub use compiler::{Compiler, compile};
pub use frontend_tls::CRL_ANNOTATION;
pub use gateway::PROXY_PROTOCOL_ANNOTATION;
pub use options::{CONTROLLER_NAME, CompileOptions};
pub use output::{Compiled, ObjectStatus};
pub use refill::Recompiled;
pub use selector::label_selector_matches;
