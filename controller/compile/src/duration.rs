//! Gateway API durations (`10s`, `500ms`, `1h30m`), read by rule timeouts
//! and retry backoffs alike.

use crate::conditions::{Problem, reasons};
use std::str::FromStr;

/// Parses a Gateway API duration (`10s`, `500ms`, `1h30m`) into milliseconds.
///
/// # Errors
///
/// `UnsupportedValue` when `s` is not a Gateway API duration.
pub(crate) fn parse_duration_ms(s: &str) -> Result<u64, Problem> {
    gateway_api::Duration::from_str(s)
        .ok()
        .and_then(|d| u64::try_from(d.as_millis()).ok())
        .ok_or_else(|| {
            Problem::new(
                reasons::UNSUPPORTED_VALUE,
                format!("invalid duration {s:?}"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Gateway API durations are one to four `<number><unit>` parts with
    /// units h, m, s, ms; anything else is refused.
    #[test]
    fn duration_table() {
        let ok = [
            ("10s", 10_000),
            ("500ms", 500),
            ("1h30m", 5_400_000),
            ("0s", 0),
            ("1h1m1s1ms", 3_661_001),
        ];
        for (s, want) in ok {
            assert_eq!(parse_duration_ms(s), Ok(want), "{s}");
        }
        for bad in ["", "10", "1.5s", "-1s", "1d", "10 s", "1h1m1s1ms1h"] {
            assert!(parse_duration_ms(bad).is_err(), "{bad}");
        }
    }
}
