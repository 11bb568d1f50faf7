//! End-to-end tests: the real binaries, echo backends, the in-memory API
//! server and the real kubectl.
//!
//! One test binary for the whole crate: each file under `tests/` used to
//! link its own copy of every dependency, which cost gigabytes of disk and
//! minutes of linking in a clean build. Run one file's tests with
//! `cargo nextest run -p tollgate-e2e --test integration <file>::`.

mod apiserver_support;
mod common;

mod apiserver_apply;
mod apiserver_kube;
mod apiserver_kubectl;
mod apiserver_protocol;
mod apiserver_rules;
mod apiserver_schema;
mod apiserver_upstream;
mod apiserver_watch;
mod dashboard;
mod echo;
mod grpc_errors;
mod grpc_kubernetes;
mod grpc_routing;
mod grpc_streams;
mod grpc_support;
mod grpc_telemetry;
mod grpc_tls;
mod harness;
mod helm_install;
mod helm_kubelet;
mod helm_kubelet_otlp;
mod helm_support;
mod helm_template;
mod kubernetes_api_proxy;
mod kubernetes_auth_policy;
mod kubernetes_backend_tls;
mod kubernetes_cluster;
mod kubernetes_listenerset;
mod kubernetes_operator;
mod kubernetes_otlp_tls;
mod kubernetes_replicas;
mod kubernetes_rollout;
mod kubernetes_status;
mod kubernetes_tls;
mod kubernetes_tlsroute;
mod otlp_receiver;
mod quickstart;
mod standalone_acme;
mod standalone_auth_policy;
mod standalone_listenerset;
mod standalone_mtls;
mod standalone_processes;
mod standalone_reload;
mod standalone_retry;
mod standalone_rolling;
mod standalone_routing;
mod standalone_static_stability;
mod standalone_tls;
mod standalone_tls_reload;
mod standalone_tls_sessions;
mod standalone_tls_streams;
mod standalone_tlsroute;
mod standalone_tunnels;
mod standalone_websocket;
mod telemetry_change_trace;
mod telemetry_collector;
mod telemetry_config;
mod telemetry_config_export;
mod telemetry_controller;
mod telemetry_dataplane;
mod telemetry_edges;
mod telemetry_export_proxy;
mod telemetry_export_tls;
mod telemetry_logs;
mod telemetry_metrics;
mod telemetry_provision;
mod telemetry_stages;
mod telemetry_support;
mod telemetry_traces;
