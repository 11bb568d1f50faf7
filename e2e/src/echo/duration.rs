//! Go-style durations (`500ms`, `1.5s`, `1h2m`) for the echo backend's `?delay=`.
//!
//! The Gateway API conformance tests ask the echo backend to stall with
//! `?delay=<duration>` written in Go's `time.ParseDuration` syntax, so the
//! echo backend accepts exactly that syntax, and refuses the rest with Go's
//! error wording.

use std::time::Duration;

/// Why a duration string was refused; the text matches Go's messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not a sequence of `<number><unit>` pairs.
    #[error("time: invalid duration \"{0}\"")]
    Invalid(String),
    /// A number with no unit after it (only a bare `0` may omit the unit).
    #[error("time: missing unit in duration \"{0}\"")]
    MissingUnit(String),
    /// A unit other than `ns`, `us`, `µs`, `ms`, `s`, `m` or `h`.
    #[error("time: unknown unit \"{unit}\" in duration \"{input}\"")]
    UnknownUnit {
        /// The unit as written.
        unit: String,
        /// The whole input.
        input: String,
    },
}

/// Nanoseconds per unit, longest unit names first so `ms` wins over `m`.
const UNITS: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("\u{00b5}s", 1_000),
    ("\u{03bc}s", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Parses a Go duration such as `300ms`, `-1.5h` or `2h45m`.
///
/// A negative duration parses to [`Duration::ZERO`]: the echo backend only
/// uses durations to sleep, and Go's `time.Sleep` returns at once for them.
///
/// # Errors
///
/// [`DurationError`] for anything `time.ParseDuration` refuses.
pub fn parse_go_duration(input: &str) -> Result<Duration, DurationError> {
    let invalid = || DurationError::Invalid(input.to_string());
    let (negative, mut rest) = match input.as_bytes().first() {
        Some(b'-') => (true, &input[1..]),
        Some(b'+') => (false, &input[1..]),
        _ => (false, input),
    };
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let (whole, frac, after) = split_number(rest).ok_or_else(invalid)?;
        let unit_len = after
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(after.len());
        let unit = &after[..unit_len];
        if unit.is_empty() {
            return Err(DurationError::MissingUnit(input.to_string()));
        }
        let per_unit = lookup_unit(unit).ok_or_else(|| DurationError::UnknownUnit {
            unit: unit.to_string(),
            input: input.to_string(),
        })?;
        total = total
            .checked_add(scale(whole, frac, per_unit).ok_or_else(invalid)?)
            .ok_or_else(invalid)?;
        rest = &after[unit_len..];
    }
    if total > i64::MAX as u128 {
        return Err(invalid());
    }
    if negative {
        return Ok(Duration::ZERO);
    }
    let nanos = u64::try_from(total).map_err(|_| invalid())?;
    Ok(Duration::from_nanos(nanos))
}

/// Splits a leading `digits[.digits]` off `s`; needs at least one digit.
fn split_number(s: &str) -> Option<(&str, &str, &str)> {
    let int_len = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (whole, after) = s.split_at(int_len);
    let (frac, after) = match after.strip_prefix('.') {
        Some(tail) => {
            let frac_len = tail
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(tail.len());
            tail.split_at(frac_len)
        }
        None => ("", after),
    };
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    Some((whole, frac, after))
}

fn lookup_unit(unit: &str) -> Option<u128> {
    UNITS
        .iter()
        .find(|(name, _)| *name == unit)
        .map(|(_, n)| *n)
}

/// `whole.frac` units in nanoseconds, truncated like Go; `None` on overflow.
fn scale(whole: &str, frac: &str, per_unit: u128) -> Option<u128> {
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut nanos = whole.checked_mul(per_unit)?;
    let mut place = per_unit;
    for digit in frac.bytes() {
        place /= 10;
        if place == 0 {
            break;
        }
        nanos = nanos.checked_add(u128::from(digit - b'0') * place)?;
    }
    Some(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Accepted durations follow Go's grammar: `0`, or signed
    /// `<number><unit>` pairs with optional fractions; negatives clamp to zero.
    #[test]
    fn parses_go_syntax() {
        let ms = Duration::from_millis;
        let cases = [
            ("0", ms(0)),
            ("1s", ms(1000)),
            ("500ms", ms(500)),
            ("+2s", ms(2000)),
            ("1.5s", ms(1500)),
            (".5s", ms(500)),
            ("1.s", ms(1000)),
            ("1m30s", ms(90_000)),
            ("1h", ms(3_600_000)),
            ("10us", Duration::from_micros(10)),
            ("10\u{00b5}s", Duration::from_micros(10)),
            ("7ns", Duration::from_nanos(7)),
            ("-1s", Duration::ZERO),
        ];
        for (input, want) in cases {
            assert_eq!(parse_go_duration(input), Ok(want), "{input}");
        }
    }

    /// Refused inputs get Go's error message for the same mistake.
    #[test]
    fn refuses_like_go() {
        let cases = [
            ("", "time: invalid duration \"\""),
            ("abc", "time: invalid duration \"abc\""),
            ("-", "time: invalid duration \"-\""),
            (".s", "time: invalid duration \".s\""),
            ("1", "time: missing unit in duration \"1\""),
            ("1s2", "time: missing unit in duration \"1s2\""),
            ("1x", "time: unknown unit \"x\" in duration \"1x\""),
            ("3000000h", "time: invalid duration \"3000000h\""),
        ];
        for (input, want) in cases {
            let got = parse_go_duration(input).map_err(|e| e.to_string());
            assert_eq!(got, Err(want.to_string()), "{input}");
        }
    }
}
