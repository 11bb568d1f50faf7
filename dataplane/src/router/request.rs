//! What the router reads about a request and what it returns: the types
//! every part of the router shares, in a leaf below them.

use http::{HeaderMap, Method};
use std::sync::Arc;

/// What the router needs to know about a request.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    /// Host without port, lowercase.
    pub host: &'a str,
    /// Normalized path (no query).
    pub path: &'a str,
    /// Raw query string, without `?`.
    pub query: Option<&'a str>,
    /// Request method.
    pub method: &'a Method,
    /// Request headers.
    pub headers: &'a HeaderMap,
}

/// The route chosen for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found<'a> {
    /// Index of the listener in the socket (`Socket::listeners`).
    pub listener: usize,
    /// Index into `Snapshot::routes`.
    pub route: usize,
    /// The `PathPrefix` value that matched, for `ReplacePrefixMatch`.
    pub matched_prefix: Option<&'a str>,
    /// The path value of the match that held (exact path, prefix or
    /// pattern): the `http.route` of telemetry, never the request's path.
    pub path_template: &'a Arc<str>,
}
