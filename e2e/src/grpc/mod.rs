//! A gRPC echo backend and client for tests, on tonic without code
//! generation: the messages are hand-written prost structs ([`EchoRequest`],
//! [`EchoReply`]) and the service is dispatched by method name, so one
//! backend answers any `/<service>/<method>` path. That is what routing
//! tests need: the reply says which backend got the call, on which path,
//! with which metadata.
//!
//! Methods (the last path segment; the service part is free):
//!
//! - `Say` (unary): the request's message back, after `delay_ms`; a
//!   `fail_code` makes it fail with that status (and metadata
//!   `x-detail-bin` in the trailers).
//! - `Count` (server streaming): `count` replies, `delay_ms` apart, then
//!   `fail_code` as the final status if set.
//! - `Sum` (client streaming): one reply whose message joins every
//!   message received and whose `count` says how many.
//! - `Chat` (bidirectional): each message back as it arrives.
//!
//! Any other method is answered like `Say`, so routing tests may call
//! methods of any name. Every reply names the backend,
//! the path and the request's metadata; each unary reply carries response
//! metadata `x-backend` and `x-echo-bin` (binary).

mod client;
mod server;

pub use client::GrpcClient;
pub use server::GrpcEcho;

use std::collections::HashMap;

/// The `package.Service` the tests call by default.
pub const ECHO_SERVICE: &str = "tollgate.echo.v1.Echo";

/// A call to the echo service.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EchoRequest {
    /// Echoed back.
    #[prost(string, tag = "1")]
    pub message: String,
    /// `Count`: how many replies to stream.
    #[prost(uint32, tag = "2")]
    pub count: u32,
    /// Wait before answering (`Say`) or between replies (`Count`), in ms.
    #[prost(uint32, tag = "3")]
    pub delay_ms: u32,
    /// A gRPC status code to end the call with (0: succeed).
    #[prost(int32, tag = "4")]
    pub fail_code: i32,
}

/// What the echo backend answers.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EchoReply {
    /// The request's message (`Sum`: every message, joined by `,`).
    #[prost(string, tag = "1")]
    pub message: String,
    /// The name the backend was started with.
    #[prost(string, tag = "2")]
    pub backend: String,
    /// The request path, `/<service>/<method>`.
    #[prost(string, tag = "3")]
    pub path: String,
    /// The request's metadata (text values; `-bin` values base64 as sent).
    #[prost(map = "string, string", tag = "4")]
    pub metadata: HashMap<String, String>,
    /// `Count`: the index of this reply; `Sum`: how many messages came.
    #[prost(uint32, tag = "5")]
    pub count: u32,
}
