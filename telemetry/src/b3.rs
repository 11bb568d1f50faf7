//! The B3 propagator (Zipkin's headers), single and multi-header.
//!
//! OpenTelemetry's own B3 propagator shipped in the Zipkin exporter crate,
//! which is deprecated with the exporter, so Tollgate carries this small
//! one, written from the B3 specification (openzipkin/b3-propagation):
//! single header `b3: {trace}-{span}[-{sampled}[-{parent}]]` with sampled
//! `1`, `0` or `d` (debug), or `X-B3-TraceId`, `X-B3-SpanId`,
//! `X-B3-Sampled`, `X-B3-Flags` (`1` = debug). Extraction accepts both
//! forms, single first; injection writes the configured one. 64-bit trace
//! ids are left-padded to 128 bits.

use opentelemetry::Context;
use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};

const B3: &str = "b3";
const TRACE_ID: &str = "x-b3-traceid";
const SPAN_ID: &str = "x-b3-spanid";
const SAMPLED: &str = "x-b3-sampled";
const FLAGS: &str = "x-b3-flags";

/// Which B3 form is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum B3Form {
    /// One `b3` header.
    Single,
    /// The `X-B3-*` headers.
    Multi,
}

/// Extracts and injects B3 trace context.
#[derive(Clone, Debug)]
pub(crate) struct B3Propagator {
    form: B3Form,
    fields: Vec<String>,
}

impl B3Propagator {
    /// A propagator writing `form`.
    pub(crate) fn new(form: B3Form) -> B3Propagator {
        let fields = match form {
            B3Form::Single => vec![B3.to_string()],
            B3Form::Multi => [TRACE_ID, SPAN_ID, SAMPLED, FLAGS]
                .iter()
                .map(|s| s.to_string())
                .collect(),
        };
        B3Propagator { form, fields }
    }
}

fn trace_id(hex: &str) -> Option<TraceId> {
    let valid = matches!(hex.len(), 16 | 32) && hex.bytes().all(|b| b.is_ascii_hexdigit());
    let id = TraceId::from_hex(hex)
        .ok()
        .filter(|id| valid && *id != TraceId::INVALID)?;
    Some(id)
}

fn span_id(hex: &str) -> Option<SpanId> {
    let valid = hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    SpanId::from_hex(hex)
        .ok()
        .filter(|id| valid && *id != SpanId::INVALID)
}

/// Sampled flags from a B3 sampling state; `None` for a malformed one.
fn flags(sampled: Option<&str>, debug: bool) -> Option<TraceFlags> {
    if debug {
        return Some(TraceFlags::SAMPLED);
    }
    match sampled {
        Some("1" | "true" | "d") => Some(TraceFlags::SAMPLED),
        Some("0" | "false") | None => Some(TraceFlags::default()),
        Some(_) => None,
    }
}

fn single(value: &str) -> Option<SpanContext> {
    let mut parts = value.trim().split('-');
    let trace = trace_id(parts.next()?)?;
    let span = span_id(parts.next()?)?;
    let flags = flags(parts.next(), false)?;
    Some(SpanContext::new(
        trace,
        span,
        flags,
        true,
        TraceState::default(),
    ))
}

fn multi(extractor: &dyn Extractor) -> Option<SpanContext> {
    let trace = trace_id(extractor.get(TRACE_ID)?.trim())?;
    let span = span_id(extractor.get(SPAN_ID)?.trim())?;
    let debug = extractor.get(FLAGS).is_some_and(|f| f.trim() == "1");
    let flags = flags(extractor.get(SAMPLED).map(str::trim), debug)?;
    Some(SpanContext::new(
        trace,
        span,
        flags,
        true,
        TraceState::default(),
    ))
}

impl TextMapPropagator for B3Propagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let span = cx.span();
        let sc = span.span_context();
        if !sc.is_valid() {
            return;
        }
        let sampled = if sc.is_sampled() { "1" } else { "0" };
        match self.form {
            B3Form::Single => {
                injector.set(B3, format!("{}-{}-{sampled}", sc.trace_id(), sc.span_id()))
            }
            B3Form::Multi => {
                injector.set(TRACE_ID, sc.trace_id().to_string());
                injector.set(SPAN_ID, sc.span_id().to_string());
                injector.set(SAMPLED, sampled.to_string());
            }
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let found = extractor
            .get(B3)
            .and_then(single)
            .or_else(|| multi(extractor));
        match found {
            Some(sc) => cx.with_remote_span_context(sc),
            None => cx.clone(),
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(&self.fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn extract(pairs: &[(&str, &str)]) -> Option<SpanContext> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let cx = B3Propagator::new(B3Form::Single).extract(&map);
        let span = cx.span();
        let sc = span.span_context().clone();
        sc.is_valid().then_some(sc)
    }

    /// The forms of the specification: single with and without sampling
    /// state, debug, 64-bit trace ids; multi-header; malformed values
    /// give no context.
    #[test]
    fn extraction_follows_the_specification() {
        let long = "80f198ee56343ba864fe8b2a57d3eff7";
        let sc =
            extract(&[("b3", &format!("{long}-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90"))]).unwrap();
        assert_eq!(sc.trace_id().to_string(), long);
        assert!(sc.is_sampled());
        let sc = extract(&[("b3", "64fe8b2a57d3eff7-e457b5a2e4d86bd1-d")]).unwrap();
        assert_eq!(
            sc.trace_id().to_string(),
            "000000000000000064fe8b2a57d3eff7"
        );
        assert!(sc.is_sampled());
        assert!(
            !extract(&[("b3", &format!("{long}-e457b5a2e4d86bd1"))])
                .unwrap()
                .is_sampled()
        );
        let multi = extract(&[
            ("x-b3-traceid", long),
            ("x-b3-spanid", "e457b5a2e4d86bd1"),
            ("x-b3-flags", "1"),
        ])
        .unwrap();
        assert!(multi.is_sampled());
        for bad in [
            "0",
            "xyz-e457b5a2e4d86bd1",
            &format!("{long}-e457"),
            &format!("{long}-e457b5a2e4d86bd1-7"),
        ] {
            assert!(extract(&[("b3", bad)]).is_none(), "{bad}");
        }
    }
}
