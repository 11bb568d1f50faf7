//! Integration tests of the data plane: the proxy pipeline and the server
//! over real sockets.
//!
//! One test binary for the whole crate: each file under `tests/` used to
//! link its own copy of every dependency, which cost gigabytes of disk and
//! minutes of linking in a clean build. Run one file's tests with
//! `cargo nextest run -p tollgate-dataplane --test integration <file>::`.

mod common;
mod server_support;

mod auth_ext;
mod auth_ext_grpc;
mod auth_introspection;
mod auth_jwt;
mod auth_oidc;
mod proxy_auth;
mod proxy_backend_tls;
mod proxy_filters;
mod proxy_ratelimit;
mod proxy_ratelimit_sentinel;
mod proxy_retry;
mod proxy_routing;
mod proxy_upstream;
mod server_binary;
mod server_bodies;
mod server_client;
mod server_lifecycle;
mod server_limits;
mod server_parking;
mod server_protocols;
mod server_relay;
mod server_streams;
mod server_tunnels;
mod server_websocket;
mod version_skew;
