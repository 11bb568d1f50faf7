//! Filters: the Gateway API core and extended HTTPRoute filters as plain data.
//!
//! The data plane builds each into a small type with one `apply`; the set is
//! closed so it is an enum with one variant per filter.

use serde::{Deserialize, Serialize};

/// One filter of a rule or of a backend reference.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "PascalCase")]
pub enum Filter {
    /// Change request headers before forwarding.
    RequestHeaderModifier(HeaderModifier),
    /// Change response headers before returning them.
    ResponseHeaderModifier(HeaderModifier),
    /// Answer with a redirect instead of forwarding.
    RequestRedirect(Redirect),
    /// Rewrite the host or path sent upstream.
    UrlRewrite(UrlRewrite),
    /// Send a copy of the request to another backend, fire-and-forget.
    RequestMirror(Mirror),
    /// Answer CORS preflights and decorate CORS responses.
    Cors(Cors),
}

/// Set, add and remove headers. Names are lowercase.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeaderModifier {
    /// Replace any existing values with this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set: Vec<Header>,
    /// Append a value, keeping existing ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add: Vec<Header>,
    /// Remove every value of these headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
}

/// A header name (lowercase) and value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]

pub struct Header {
    /// Header name, lowercase.
    pub name: String,
    /// Header value.
    pub value: String,
}

/// A path change used by redirects and rewrites.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value")]
pub enum PathModifier {
    /// Replace the whole path.
    ReplaceFullPath(String),
    /// Replace the part matched by the route's `PathPrefix` match.
    ReplacePrefixMatch(String),
}

/// `RequestRedirect`: the gateway answers with a `Location`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Redirect {
    /// `http` or `https`; the request's scheme when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// The host; the request's host when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// The path change; the request's path when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathModifier>,
    /// The port. When absent: the well-known port of `scheme` if that is
    /// set, else the listener's port; a well-known port is left out of
    /// `Location`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// 301, 302, 303, 307 or 308.
    pub status_code: u16,
}

/// `URLRewrite`: change what is sent upstream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UrlRewrite {
    /// New `Host` header value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Path change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathModifier>,
}

/// `RequestMirror`: copy a share of requests to another backend.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mirror {
    /// Index into `Snapshot::backends`; `None` when the reference is invalid
    /// (the mirror is then skipped, the main request is unaffected).
    pub backend: Option<usize>,
    /// Share of requests mirrored: `numerator / denominator`.
    pub numerator: u32,
    /// Denominator of the share; never 0.
    pub denominator: u32,
}

/// The `CORS` filter (Gateway API v1.6).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cors {
    /// Allowed origins: `*`, exact `scheme://host[:port]`, or with a `*`
    /// wildcard for the leftmost host labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_origins: Vec<String>,
    /// Whether responses may carry `Access-Control-Allow-Credentials: true`.
    #[serde(default)]
    pub allow_credentials: bool,
    /// Allowed methods (`*` allowed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_methods: Vec<String>,
    /// Allowed request headers (`*` allowed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_headers: Vec<String>,
    /// Response headers exposed to the page.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expose_headers: Vec<String>,
    /// Seconds a preflight answer may be cached.
    #[serde(default)]
    pub max_age_seconds: u32,
}
