//! Trace context across the gateway: extracted from a client's request
//! headers, injected into the upstream request (and mirrors).
//!
//! W3C `traceparent`/`tracestate` and `baggage` by default; B3 single
//! (`b3`) and multi-header (`b3multi`) when `OTEL_PROPAGATORS` names them.
//! The propagators work on `http::HeaderMap` directly, so the data plane
//! needs no copy of its headers.

use crate::b3::{B3Form, B3Propagator};
use crate::env::OtelEnv;
use crate::trace_line::{TRACEPARENT, TRACESTATE, TraceIds, TraceLine};
use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};
use opentelemetry::Context;
use opentelemetry::propagation::{
    Extractor, Injector, TextMapCompositePropagator, TextMapPropagator,
};
use opentelemetry::trace::{SpanContext, TraceContextExt, TraceFlags, TraceState};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use std::sync::Arc;

/// The process's propagators, as `OTEL_PROPAGATORS` chose them.
#[derive(Clone)]
pub struct Propagation {
    inner: Arc<TextMapCompositePropagator>,
    /// Every header any of them reads or writes.
    fields: Arc<Vec<HeaderName>>,
    /// W3C trace context (and baggage, passed through untouched) only: the
    /// common case, handled without the generic propagators' allocations.
    w3c: bool,
}

impl std::fmt::Debug for Propagation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Propagation")
            .field("fields", &self.fields)
            .finish()
    }
}

impl Default for Propagation {
    fn default() -> Self {
        Propagation::from_env(&OtelEnv::default())
    }
}

impl Propagation {
    /// The propagators `env` names; unknown names are skipped (`none` and
    /// an empty list mean no propagation at all).
    pub fn from_env(env: &OtelEnv) -> Propagation {
        let mut propagators: Vec<Box<dyn TextMapPropagator + Send + Sync>> = Vec::new();
        for name in env.propagators() {
            match name.as_str() {
                "tracecontext" => propagators.push(Box::new(TraceContextPropagator::new())),
                "baggage" => propagators.push(Box::new(BaggagePropagator::new())),
                "b3" => propagators.push(Box::new(B3Propagator::new(B3Form::Single))),
                "b3multi" => propagators.push(Box::new(B3Propagator::new(B3Form::Multi))),
                _ => {
                    tracing::warn!(propagator = %name, "unknown propagator in OTEL_PROPAGATORS; skipped")
                }
            }
        }
        let names = env.propagators();
        let w3c = names.iter().any(|n| n == "tracecontext")
            && names.iter().all(|n| n == "tracecontext" || n == "baggage");
        let inner = TextMapCompositePropagator::new(propagators);
        let fields = inner
            .fields()
            .filter_map(|f| HeaderName::from_bytes(f.as_bytes()).ok())
            .collect();
        Propagation {
            inner: Arc::new(inner),
            fields: Arc::new(fields),
            w3c,
        }
    }

    /// The context a client's `headers` carry (empty when none). With W3C
    /// propagation only, just the trace context is read: `baggage` is left
    /// in the headers and passes through as it came. Never inlined into
    /// [`Propagation::extract_seen`], whose caller runs it for every
    /// request and mostly returns at once.
    #[inline(never)]
    pub fn extract(&self, headers: &HeaderMap) -> Context {
        if !self.w3c {
            return self.inner.extract(&HeaderExtractor(headers));
        }
        if !headers.contains_key(&TRACEPARENT) {
            return Context::new();
        }
        TraceContextPropagator::new().extract(&HeaderExtractor(headers))
    }

    /// [`Propagation::extract`] for a caller that already knows whether
    /// `headers` hold `traceparent` or `tracestate` (`sent`), from a pass
    /// over them it makes anyway: with W3C propagation only and neither
    /// sent, the headers are not looked at again.
    pub fn extract_seen(&self, headers: &HeaderMap, sent: bool) -> Context {
        if self.w3c && !sent {
            return Context::new();
        }
        self.extract(headers)
    }

    /// Makes `span` the parent in `headers` for what is sent upstream on
    /// behalf of a client whose context was `client` (its baggage goes on).
    ///
    /// With W3C propagation only this writes `traceparent` (and
    /// `tracestate` when there is one) directly and leaves `baggage` as the
    /// client sent it: no context, no string formatting, one header value.
    pub fn inject_span(&self, span: &SpanContext, client: &Context, headers: &mut HeaderMap) {
        if let Some(line) = self.take_for_upstream(span, client, headers) {
            line.insert_into(headers);
        }
    }

    /// Makes `span` the parent of an upstream request whose header fields
    /// are `headers`, like [`Propagation::inject_span`], but hands the W3C
    /// fields back as a [`TraceLine`] for the HTTP/1.1 client to write
    /// straight into the request head, replacing the client's
    /// `traceparent` and `tracestate` as it goes, instead of inserting
    /// them: that saves a header value's allocation and validation, two
    /// removals and an insert (with the map's growth) on every proxied
    /// request. Other propagators inject into `headers` and give `None`;
    /// so does an invalid span, after removing the client's fields.
    pub fn take_for_upstream(
        &self,
        span: &SpanContext,
        client: &Context,
        headers: &mut HeaderMap,
    ) -> Option<TraceLine> {
        self.upstream_line(TraceIds::of(span), span.trace_state(), client, headers)
    }

    /// [`Propagation::take_for_upstream`] for the span of `ids` in a trace
    /// whose vendor state is `state`, for a caller that keeps spans as
    /// their ids: no `SpanContext` is made on the W3C path.
    pub fn upstream_line(
        &self,
        ids: TraceIds,
        state: &TraceState,
        client: &Context,
        headers: &mut HeaderMap,
    ) -> Option<TraceLine> {
        if !self.w3c {
            self.inject_ids(ids, state, client, headers);
            return None;
        }
        let line = TraceLine::from_ids(ids, state);
        if line.is_none() {
            headers.remove(&TRACEPARENT);
            headers.remove(&TRACESTATE);
        }
        line
    }

    /// [`Propagation::upstream_line`] with other propagators than W3C:
    /// through the generic propagator, with a context. Out of line, so
    /// the W3C path every proxied request takes stays small.
    #[inline(never)]
    fn inject_ids(
        &self,
        ids: TraceIds,
        state: &TraceState,
        client: &Context,
        headers: &mut HeaderMap,
    ) {
        let flags = TraceFlags::default().with_sampled(ids.sampled);
        let span = SpanContext::new(ids.trace_id, ids.span_id, flags, false, state.clone());
        let cx = client.with_remote_span_context(span);
        self.inject(&cx, headers);
    }

    /// Writes `cx` into `headers`, replacing what the client sent in the
    /// same fields (the upstream must see the gateway's span as parent).
    pub fn inject(&self, cx: &Context, headers: &mut HeaderMap) {
        if self.w3c {
            return self.inject_span(&cx.span().span_context().clone(), cx, headers);
        }
        for field in self.fields.iter() {
            headers.remove(field);
        }
        self.inner.inject_context(cx, &mut HeaderInjector(headers));
    }

    /// Every header the propagators use.
    pub fn fields(&self) -> &[HeaderName] {
        &self.fields
    }
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::TraceContextExt;

    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            if let (Ok(k), Ok(v)) = (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(v),
            ) {
                map.append(k, v);
            }
        }
        map
    }

    /// W3C by default: the client's trace id survives extract and inject,
    /// baggage passes through, and a stale client header is replaced.
    #[test]
    fn w3c_round_trip() {
        let p = Propagation::default();
        let cx = p.extract(&headers(&[
            ("traceparent", TRACEPARENT),
            ("baggage", "user=42"),
        ]));
        let span = cx.span();
        let sc = span.span_context();
        assert_eq!(
            sc.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert!(sc.is_remote() && sc.is_sampled());
        // Upstream headers are the client's: baggage is in them already and
        // passes through as it came.
        let mut out = headers(&[
            (
                "traceparent",
                "00-ffffffffffffffffffffffffffffffff-ffffffffffffffff-01",
            ),
            ("baggage", "user=42"),
        ]);
        p.inject(&cx, &mut out);
        assert_eq!(out.get_all("traceparent").iter().count(), 1);
        assert_eq!(out["traceparent"], TRACEPARENT);
        assert_eq!(out["baggage"], "user=42");
    }

    /// A caller that saw the trace fields gets the client's context; one
    /// that saw none gets an empty one without a lookup, unless other
    /// propagators (whose fields it did not look for) are configured.
    #[test]
    fn extract_seen_trusts_only_the_w3c_fields() {
        let p = Propagation::default();
        let sent = headers(&[("traceparent", TRACEPARENT)]);
        let valid = |cx: Context| cx.span().span_context().is_valid();
        assert!(valid(p.extract_seen(&sent, true)));
        assert!(!valid(p.extract_seen(&sent, false)));
        let env = OtelEnv::from_pairs([("OTEL_PROPAGATORS", "b3")]);
        let b3 = Propagation::from_env(&env);
        let sent = headers(&[("b3", "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1")]);
        assert!(valid(b3.extract_seen(&sent, false)));
    }

    /// The W3C fast path writes exactly what the generic propagator
    /// writes, replaces the client's trace headers, and leaves baggage as
    /// it came.
    #[test]
    fn w3c_fast_path_matches_the_generic_one() {
        let p = Propagation::default();
        let client = p.extract(&headers(&[("traceparent", TRACEPARENT)]));
        let span = client.span().span_context().clone();
        let mut fast = headers(&[
            (
                "traceparent",
                "00-ffffffffffffffffffffffffffffffff-ffffffffffffffff-01",
            ),
            ("tracestate", "stale=1"),
            ("baggage", "user=42,tenant=acme"),
        ]);
        p.inject_span(&span, &client, &mut fast);
        assert_eq!(fast["traceparent"], TRACEPARENT);
        assert!(fast.get("tracestate").is_none());
        assert_eq!(fast["baggage"], "user=42,tenant=acme");
        let mut generic = HeaderMap::new();
        TraceContextPropagator::new().inject_context(&client, &mut HeaderInjector(&mut generic));
        assert_eq!(fast["traceparent"], generic["traceparent"]);
        let unsampled = SpanContext::new(
            span.trace_id(),
            span.span_id(),
            opentelemetry::trace::TraceFlags::default(),
            false,
            Default::default(),
        );
        p.inject_span(&unsampled, &client, &mut fast);
        assert!(
            fast["traceparent"]
                .to_str()
                .unwrap_or_default()
                .ends_with("-00")
        );
        assert!(
            p.extract(&HeaderMap::new())
                .span()
                .span_context()
                .trace_id()
                == opentelemetry::trace::TraceId::INVALID
        );
    }

    fn line_into(p: &Propagation, cx: &Context, map: &mut HeaderMap) {
        let span = cx.span().span_context().clone();
        if let Some(line) = p.take_for_upstream(&span, cx, &mut HeaderMap::new()) {
            line.insert_into(map);
        }
    }

    /// The fields handed to the HTTP/1.1 client are what `inject_span`
    /// inserts: the client's trace fields leave the headers, `tracestate`
    /// comes along when the span carries one, and an invalid span adds
    /// nothing.
    #[test]
    fn upstream_fields_match_the_inserted_ones() {
        let p = Propagation::default();
        let client = p.extract(&headers(&[
            ("traceparent", TRACEPARENT),
            ("tracestate", "vendor=1"),
        ]));
        let span = client.span().span_context().clone();
        let mut taken = headers(&[
            ("traceparent", TRACEPARENT),
            ("tracestate", "vendor=1"),
            ("baggage", "user=42"),
        ]);
        let line = p.take_for_upstream(&span, &client, &mut taken);
        let line = line.expect("a valid span gives fields");
        // The writer replaces them; the map is left as it was.
        assert_eq!(taken.len(), 3);
        assert_eq!(&line.ids().traceparent()[..], TRACEPARENT.as_bytes());
        assert_eq!(line.state(), Some(&b"vendor=1"[..]));
        let mut inserted = HeaderMap::new();
        p.inject_span(&span, &client, &mut inserted);
        let mut from_line = HeaderMap::new();
        line.insert_into(&mut from_line);
        assert_eq!(inserted, from_line);
        // Without a trace state, `tracestate` is named with no value: the
        // client's is replaced by nothing.
        let bare = p.extract(&headers(&[("traceparent", TRACEPARENT)]));
        let bare_span = bare.span().span_context().clone();
        let line = p.take_for_upstream(&bare_span, &bare, &mut HeaderMap::new());
        let line = line.expect("valid");
        assert_eq!(line.state(), None);
        let mut map = headers(&[("tracestate", "stale=1")]);
        line_into(&p, &bare, &mut map);
        assert!(map.get("tracestate").is_none());

        let mut none = headers(&[("traceparent", TRACEPARENT)]);
        let invalid = p.take_for_upstream(&SpanContext::NONE, &client, &mut none);
        assert!(invalid.is_none() && none.is_empty());
    }

    /// B3 single and multi-header when asked for; W3C headers are then ignored.
    #[test]
    fn b3_when_configured() {
        let single = Propagation::from_env(&OtelEnv::from_pairs([("OTEL_PROPAGATORS", "b3")]));
        let cx = single.extract(&headers(&[(
            "b3",
            "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        )]));
        assert_eq!(
            cx.span().span_context().trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert!(
            !single
                .extract(&headers(&[("traceparent", TRACEPARENT)]))
                .has_active_span()
        );
        let multi = Propagation::from_env(&OtelEnv::from_pairs([("OTEL_PROPAGATORS", "b3multi")]));
        let mut out = HeaderMap::new();
        multi.inject(&cx, &mut out);
        assert_eq!(out["x-b3-traceid"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(out["x-b3-spanid"], "00f067aa0ba902b7");
    }
}
