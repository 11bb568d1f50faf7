//! The per-request context: everything the stages read and change about one
//! request on its way upstream, apart from the body.
//!
//! One object owned by the pipeline and lent to each stage in turn, so a
//! stage's effect (a new `Host`, a rewritten path, a mirror to send) is a
//! field, not a side channel.

use crate::filters::MirrorStage;
use http::{HeaderMap, HeaderValue, Method, Uri};
use std::net::IpAddr;
use std::sync::Arc;

/// The request head as the pipeline carries it.
pub(crate) struct RequestContext<'r> {
    /// Request method.
    pub(crate) method: Method,
    /// Headers to send upstream; filters change them in place.
    pub(crate) headers: HeaderMap,
    /// Scheme the client used (`http`).
    pub(crate) scheme: &'static str,
    /// Host as routed: lowercase, without port; empty when the request named none.
    pub(crate) host: String,
    /// `Host` to send upstream: as received (port included) unless a
    /// URLRewrite changed it; `None` when the request named no host.
    pub(crate) host_header: Option<HeaderValue>,
    /// The host the client asked for, for `X-Forwarded-Host` and `Forwarded`.
    pub(crate) original_host: Option<HeaderValue>,
    /// Normalized path; URLRewrite may replace it.
    pub(crate) path: String,
    /// Query string as received, without `?`.
    pub(crate) query: Option<String>,
    /// The request target as received: sent upstream as it is while the
    /// path and query are unchanged ([`RequestContext::unchanged_target`]).
    pub(crate) target: Uri,
    /// The manifest port of the socket, used by redirects.
    pub(crate) listener_port: u16,
    /// The `PathPrefix` value the route matched on.
    pub(crate) matched_prefix: Option<&'r str>,
    /// Mirrors picked for this request, sent once the rule's filters ran.
    pub(crate) mirrors: Vec<&'r MirrorStage>,
    /// The client's address, as the snapshot's `ClientAddress` rule decides
    /// (the peer unless proxies in front are trusted).
    pub(crate) client: IpAddr,
    /// Who the request is from, once an authentication stage said so.
    pub(crate) principal: Option<Principal>,
    /// The route rule's source name (rate-limit keys, logs).
    pub(crate) route: &'r str,
    /// What the rate-limit stage decided (`allowed`, `limited`,
    /// `shadow_limited`, `failed_open`, `failed_closed`), for telemetry.
    pub(crate) rate_limit: Option<&'static str>,
    /// Headers stages add to the response (rate-limit standing).
    pub(crate) response_headers: Option<Box<HeaderMap>>,
    /// Hooks to run once the response is complete.
    pub(crate) completions: Vec<crate::stage::CompletionHook>,
    /// Where stages that call out put their spans; `Some` only when the
    /// request is sampled (`crate::telemetry::StageTrace`; boxed, as every
    /// request's context moves with its future).
    pub(crate) trace: Option<Box<crate::telemetry::StageTrace>>,
}

/// An authenticated caller: what authorization, rate-limit keys, access
/// logs and spans know about who sent a request.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Principal {
    /// How the caller was authenticated: `jwt`, `oidc`, `introspection`,
    /// `api-key`, `basic`.
    pub(crate) method: &'static str,
    /// The JWT provider (or OIDC issuer) that vouched for the caller.
    pub(crate) provider: Option<Arc<str>>,
    /// `sub` of a token, or the user name.
    pub(crate) subject: Option<String>,
    /// The consumer (API key owner, basic user, introspected client).
    pub(crate) consumer: Option<String>,
    /// Granted scopes (`scope` split on spaces, or `scp`).
    pub(crate) scopes: Vec<String>,
    /// The token's claims, for authorization by claim.
    pub(crate) claims: Option<Arc<serde_json::Map<String, serde_json::Value>>>,
}

impl Principal {
    /// The name logs and rate-limit keys use: consumer, else subject.
    pub(crate) fn name(&self) -> Option<&str> {
        self.consumer.as_deref().or(self.subject.as_deref())
    }

    /// The claim `name` of the caller's token; dots reach into objects
    /// (`realm.role`).
    pub(crate) fn claim(&self, name: &str) -> Option<&serde_json::Value> {
        let mut path = name.split('.');
        let mut value = self.claims.as_ref()?.get(path.next()?);
        for part in path {
            value = value?.get(part);
        }
        value
    }
}

impl RequestContext<'_> {
    /// The received target, when it is origin-form and the path and query
    /// routing saw (normalized) and the filters left are exactly its own:
    /// then the upstream request reuses it, shared, instead of a copy
    /// parsed again (most requests).
    pub(crate) fn unchanged_target(&self) -> Option<&Uri> {
        let t = &self.target;
        let origin_form = t.scheme().is_none() && t.authority().is_none();
        (origin_form && t.path() == self.path && t.query() == self.query.as_deref()).then_some(t)
    }

    /// The path and query to send upstream.
    pub(crate) fn path_and_query(&self) -> String {
        match &self.query {
            Some(query) => format!("{}?{query}", self.path),
            None => self.path.clone(),
        }
    }
}

impl std::fmt::Debug for RequestContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestContext")
            .field("method", &self.method)
            .field("host", &self.host)
            .field("path", &self.path)
            .field("route", &self.route)
            .field("client", &self.client)
            .field("principal", &self.principal)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::RequestContext;
    use http::{HeaderMap, HeaderValue, Method, Uri};

    /// A bare context for unit tests of the stages.
    pub(crate) fn context(
        headers: &[(&str, &str)],
        query: Option<&str>,
    ) -> RequestContext<'static> {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        RequestContext {
            method: Method::GET,
            headers: map,
            scheme: "http",
            host: "api.example".into(),
            host_header: None,
            original_host: None,
            path: "/".into(),
            query: query.map(str::to_string),
            target: http::Uri::from_static("/"),
            listener_port: 80,
            matched_prefix: None,
            mirrors: Vec::new(),
            client: std::net::Ipv4Addr::LOCALHOST.into(),
            principal: None,
            route: "httproute/default/api/rule/0",
            rate_limit: None,
            response_headers: None,
            completions: Vec::new(),
            trace: None,
        }
    }

    /// The received target is reused only while it is origin-form and the
    /// path and query are still its own.
    #[test]
    fn unchanged_target_only_when_nothing_changed() {
        let mut ctx = context(&[], Some("a=1"));
        ctx.target = Uri::from_static("/?a=1");
        assert_eq!(ctx.unchanged_target(), Some(&ctx.target));
        ctx.query = None;
        assert_eq!(ctx.unchanged_target(), None);
        ctx.target = Uri::from_static("/");
        assert!(ctx.unchanged_target().is_some());
        ctx.path = "/rewritten".into();
        assert_eq!(ctx.unchanged_target(), None);
        ctx.path = "/".into();
        ctx.target = Uri::from_static("http://example.com/");
        assert_eq!(ctx.unchanged_target(), None);
    }
}
