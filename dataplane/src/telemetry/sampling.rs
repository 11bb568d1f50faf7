//! The sampling decision and the ids of a traced request, made for every
//! request while only about one in a hundred is sampled: both must cost a
//! few instructions, not an SDK call.
//!
//! [`RatioSampler`] decides exactly as the SDK's `TraceIdRatioBased`
//! (inside `ParentBased` when the configuration asks for it) decides: the
//! same bound from the same ratio, compared with the same 63 bits of the
//! trace id, so `OTEL_TRACES_SAMPLER`, a Gateway's `samplingRatio` and a
//! route's `tollgate.dev/tracing-sampling-ratio` sample the very requests
//! they sampled through the SDK. It does not build a `SamplingResult`
//! (attributes, trace state): Tollgate's samplers add no attributes and
//! the trace state is the parent's, which the caller has.
//!
//! Ids come from `fastrand`'s per-thread wyrand generator: fast and not
//! cryptographic, like the SDK's own `RandomIdGenerator` (a per-thread
//! xoshiro). Trace and span ids must be unique, not unpredictable; a trace
//! id's low bits must be uniform for ratio sampling, which wyrand's are.

use opentelemetry::trace::{SpanContext, SpanId, TraceId};
use tollgate_telemetry::SamplerSpec;

/// A trace-id-ratio sampler that may follow the parent's decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RatioSampler {
    /// Follow a valid parent's sampled flag (`parentbased_*`).
    parent_based: bool,
    /// A trace is sampled when its id's low 64 bits, shifted right once,
    /// are below this (`u64::MAX`: every trace).
    bound: u64,
}

impl RatioSampler {
    /// Samples `ratio` of the traces (clamped to 0..=1 as the SDK does;
    /// NaN samples none), following the parent when `parent_based`.
    pub(crate) fn new(ratio: f64, parent_based: bool) -> RatioSampler {
        // The SDK's own arithmetic (`sample_based_on_probability`), kept
        // bit for bit so the same trace ids are sampled.
        let bound = if ratio >= 1.0 {
            u64::MAX
        } else {
            (ratio.max(0.0) * (1u64 << 63) as f64) as u64
        };
        RatioSampler {
            parent_based,
            bound,
        }
    }

    /// The sampler the environment configured.
    pub(crate) fn from_spec(spec: SamplerSpec) -> RatioSampler {
        match spec {
            SamplerSpec::ParentBasedRatio(ratio) => RatioSampler::new(ratio, true),
            SamplerSpec::Ratio(ratio) => RatioSampler::new(ratio, false),
        }
    }

    /// The same ratio, following the parent's decision or not (a
    /// Gateway's sampler kind, else the environment's).
    #[inline]
    pub(crate) fn parent_based(self, parent_based: bool) -> RatioSampler {
        RatioSampler {
            parent_based,
            ..self
        }
    }

    /// Whether the parent's decision is followed.
    #[inline]
    pub(crate) fn follows_parent(&self) -> bool {
        self.parent_based
    }

    /// The parent-based sampler of a ratio in parts per million (a
    /// Gateway's or a route's; [`RatioSampler::parent_based`] sets the
    /// kind).
    pub(crate) fn per_million(per_million: u32) -> RatioSampler {
        let ratio = f64::from(per_million) / f64::from(tollgate_snapshot::PER_MILLION);
        RatioSampler::new(ratio, true)
    }

    /// Whether a span of trace `trace_id` is sampled; `parent` is the
    /// client's valid span context, when it sent one.
    #[inline]
    pub(crate) fn samples(&self, trace_id: TraceId, parent: Option<&SpanContext>) -> bool {
        match parent {
            Some(parent) if self.parent_based => parent.is_sampled(),
            _ => {
                let [.., a, b, c, d, e, f, g, h] = trace_id.to_bytes();
                (u64::from_be_bytes([a, b, c, d, e, f, g, h]) >> 1) < self.bound
            }
        }
    }
}

/// A new, valid (non-zero) trace id.
#[inline]
pub(crate) fn new_trace_id() -> TraceId {
    loop {
        let id = fastrand::u128(..);
        if id != 0 {
            return TraceId::from(id);
        }
    }
}

/// A new, valid (non-zero) span id.
#[inline]
pub(crate) fn new_span_id() -> SpanId {
    loop {
        let id = fastrand::u64(..);
        if id != 0 {
            return SpanId::from(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::Context;
    use opentelemetry::trace::{SpanKind, TraceContextExt, TraceFlags, TraceState};
    use opentelemetry_sdk::trace::{Sampler, SamplingDecision, ShouldSample};
    use proptest::prelude::*;

    fn sdk(ratio: f64, parent_based: bool) -> Sampler {
        let ratio = Sampler::TraceIdRatioBased(ratio);
        if parent_based {
            Sampler::ParentBased(Box::new(ratio))
        } else {
            ratio
        }
    }

    fn parent(trace_id: u128, sampled: bool) -> SpanContext {
        SpanContext::new(
            TraceId::from(trace_id),
            SpanId::from(7),
            TraceFlags::default().with_sampled(sampled),
            true,
            TraceState::default(),
        )
    }

    proptest! {
        /// Every decision is the SDK's, with and without a parent, for
        /// ratios across the whole range and at its ends.
        #[test]
        fn decides_as_the_sdk(
            id in 1u128..,
            ratio in prop_oneof![0.0f64..=1.0, Just(0.0), Just(1.0), Just(0.01), Just(-1.0), Just(2.0)],
            parent_based in any::<bool>(),
            with_parent in any::<bool>(),
            parent_sampled in any::<bool>(),
        ) {
            let ours = RatioSampler::new(ratio, parent_based);
            let remote = parent(id, parent_sampled);
            let cx = if with_parent {
                Context::new().with_remote_span_context(remote.clone())
            } else {
                Context::new()
            };
            let theirs = sdk(ratio, parent_based)
                .should_sample(Some(&cx), TraceId::from(id), "", &SpanKind::Server, &[], &[])
                .decision;
            let expected = matches!(theirs, SamplingDecision::RecordAndSample);
            let parent = with_parent.then_some(&remote);
            prop_assert_eq!(ours.samples(TraceId::from(id), parent), expected);
        }
    }

    /// The environment's and the configured ratios map onto samplers.
    #[test]
    fn samplers_from_configuration() {
        assert_eq!(
            RatioSampler::from_spec(SamplerSpec::Ratio(0.25)),
            RatioSampler::new(0.25, false)
        );
        assert_eq!(
            RatioSampler::per_million(10_000),
            RatioSampler::new(0.01, true)
        );
        let all = RatioSampler::per_million(1_000_000);
        assert!(all.samples(TraceId::from(u128::MAX), None));
        assert!(!RatioSampler::per_million(0).samples(TraceId::from(1), None));
        // A Gateway's kind: the same ratio, the client followed or not.
        let none = RatioSampler::per_million(0);
        let sampled = parent(1, true);
        assert!(none.samples(TraceId::from(1), Some(&sampled)));
        let plain = none.parent_based(false);
        assert!(!plain.follows_parent());
        assert!(!plain.samples(TraceId::from(1), Some(&sampled)));
        assert_eq!(plain.parent_based(true), none);
    }

    /// Ids are valid and differ.
    #[test]
    fn ids_are_valid() {
        assert_ne!(new_trace_id(), TraceId::INVALID);
        assert_ne!(new_span_id(), SpanId::INVALID);
        assert_ne!(new_span_id(), new_span_id());
    }
}
