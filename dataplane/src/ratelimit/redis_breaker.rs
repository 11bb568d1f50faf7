//! The circuit breaker in front of Redis: a dead Redis costs one timeout,
//! then nothing. After [`TRIP_AFTER`] failures in a row the circuit opens
//! and decisions fail at once (each limit's `failOpen` decides) for a
//! cool-down that doubles from 1 s up to 30 s; then one call probes, and
//! its success closes the circuit.

use super::redis::GlobalError;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Consecutive failures that open the circuit.
pub(crate) const TRIP_AFTER: u32 = 3;
const COOL_MIN: Duration = Duration::from_secs(1);
const COOL_MAX: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
struct State {
    failures: u32,
    open_until: Option<Instant>,
    cool: Duration,
    probing: bool,
}

/// The breaker of one Redis client.
#[derive(Debug, Default)]
pub(crate) struct Breaker(Mutex<State>);

impl Breaker {
    /// Whether a call may be made now: always while closed; once the
    /// cool-down is over, one probe at a time.
    ///
    /// # Errors
    ///
    /// [`GlobalError::CircuitOpen`] while the circuit is open.
    pub(crate) fn admit(&self, now: Instant) -> Result<(), GlobalError> {
        let Ok(mut state) = self.0.lock() else {
            return Ok(());
        };
        match state.open_until {
            Some(until) if until > now => Err(GlobalError::CircuitOpen),
            Some(_) if state.probing => Err(GlobalError::CircuitOpen),
            Some(_) => {
                state.probing = true;
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// A call failed (or timed out).
    pub(crate) fn failed(&self, now: Instant) {
        if let Ok(mut state) = self.0.lock() {
            state.failures += 1;
            state.probing = false;
            if state.failures >= TRIP_AFTER {
                state.cool = if state.open_until.is_some() {
                    (state.cool * 2).min(COOL_MAX)
                } else {
                    COOL_MIN
                };
                state.open_until = Some(now + state.cool);
                tracing::warn!(cool_down = ?state.cool, "Redis failing; global limits follow their failure mode");
            }
        }
    }

    /// A call succeeded: the circuit closes.
    pub(crate) fn succeeded(&self) {
        if let Ok(mut state) = self.0.lock() {
            if state.open_until.is_some() {
                tracing::info!("Redis answers again; global limits resume");
            }
            *state = State::default();
        }
    }
}
