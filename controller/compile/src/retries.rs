//! An HTTPRoute rule's `retry` into the snapshot's [`Retry`].
//!
//! The Gateway API leaves `attempts` and `backoff` to the implementation
//! when absent (Tollgate: [`DEFAULT_RETRY_ATTEMPTS`] retry after
//! [`DEFAULT_RETRY_BACKOFF_MS`]) and bounds codes to 400–599. Values the
//! CRD schema would refuse can still arrive from a manifest folder or an
//! older CRD; they drop the rule with `UnsupportedValue`, like any other
//! rule the data plane could not serve as written, and the route's other
//! rules keep working.

use crate::conditions::{Problem, reasons};
use crate::duration::parse_duration_ms;
use gateway_api::experimental::httproutes::HttpRouteRulesRetry;
use tollgate_snapshot::{
    DEFAULT_RETRY_ATTEMPTS, DEFAULT_RETRY_BACKOFF_MS, MAX_RETRY_ATTEMPTS, Retry,
};

/// Compiles a rule's `retry`: codes sorted and deduplicated, defaults
/// filled in.
///
/// # Errors
///
/// `UnsupportedValue` for a code outside 400–599, attempts outside
/// 1–[`MAX_RETRY_ATTEMPTS`], or a backoff that is not a Gateway API
/// duration.
pub(crate) fn compile_retry(retry: &HttpRouteRulesRetry) -> Result<Retry, Problem> {
    let unsupported = |m: String| Problem::new(reasons::UNSUPPORTED_VALUE, m);
    let mut codes = Vec::new();
    for &code in retry.codes.iter().flatten() {
        match u16::try_from(code) {
            Ok(c) if (400..=599).contains(&c) => codes.push(c),
            _ => {
                return Err(unsupported(format!("retry code {code} is outside 400-599")));
            }
        }
    }
    codes.sort_unstable();
    codes.dedup();
    let attempts = match retry.attempts {
        None => DEFAULT_RETRY_ATTEMPTS,
        Some(n) => u32::try_from(n)
            .ok()
            .filter(|n| (1..=MAX_RETRY_ATTEMPTS).contains(n))
            .ok_or_else(|| {
                unsupported(format!(
                    "retry attempts {n} is outside 1-{MAX_RETRY_ATTEMPTS}"
                ))
            })?,
    };
    let backoff_ms = match retry.backoff.as_deref() {
        None => DEFAULT_RETRY_BACKOFF_MS,
        Some(text) => parse_duration_ms(text)
            .map_err(|p| unsupported(format!("retry backoff: {}", p.message)))?,
    };
    Ok(Retry {
        codes,
        attempts,
        backoff_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry(codes: &[i64], attempts: Option<i64>, backoff: Option<&str>) -> HttpRouteRulesRetry {
        HttpRouteRulesRetry {
            codes: Some(codes.to_vec()),
            attempts,
            backoff: backoff.map(Into::into),
        }
    }

    /// Absent attempts and backoff take Tollgate's defaults; codes come out
    /// sorted and distinct whatever order the manifest lists them in.
    #[test]
    fn defaults_and_normalised_codes() {
        assert_eq!(
            compile_retry(&retry(&[503, 500, 503], None, None)),
            Ok(Retry {
                codes: vec![500, 503],
                attempts: DEFAULT_RETRY_ATTEMPTS,
                backoff_ms: DEFAULT_RETRY_BACKOFF_MS,
            })
        );
        assert_eq!(
            compile_retry(&HttpRouteRulesRetry::default()).map(|r| r.codes),
            Ok(vec![])
        );
        assert_eq!(
            compile_retry(&retry(&[502], Some(3), Some("100ms"))),
            Ok(Retry {
                codes: vec![502],
                attempts: 3,
                backoff_ms: 100,
            })
        );
    }

    /// What the spec's schema refuses is refused here too, with the value
    /// in the message.
    #[test]
    fn out_of_range_values_are_unsupported() {
        let cases = [
            (retry(&[399], None, None), "retry code 399"),
            (retry(&[600], None, None), "retry code 600"),
            (retry(&[-1], None, None), "retry code -1"),
            (retry(&[503], Some(0), None), "retry attempts 0"),
            (retry(&[503], Some(11), None), "retry attempts 11"),
            (retry(&[503], None, Some("1.5s")), "retry backoff"),
        ];
        for (input, message) in cases {
            let problem = compile_retry(&input).expect_err(message);
            assert_eq!(problem.reason, reasons::UNSUPPORTED_VALUE);
            assert!(problem.message.starts_with(message), "{}", problem.message);
        }
    }
}
