//! Scenario 10: what authentication costs Tollgate.
//!
//! Tollgate against itself: the same route without auth, with an API key
//! (one of 1,000, found by its SHA-256), and with JWTs signed RS256 and ES256 verified against a warm key
//! set ([`crate::jwt`]). Throughput as in scenario 1 (`wrk`, 64
//! connections, empty bodies), the modes alternated run by run, every
//! request carrying its credential; each mode's instructions per request
//! under callgrind beside it, since requests per second are noisy on a
//! shared machine. Goal: every auth mode keeps ≥ 85% of the throughput
//! without auth.

use super::modes::{self, Instructions, ModeRow};
use super::{Bench, Goal};
use crate::callgrind::{self, Caches, Load};
use crate::error::BenchError;
use crate::jwt::Signer;
use crate::peers::{self, Running, Target, Tweaks};
use crate::stats::ratio;
use crate::wrk;
use serde::Serialize;
use tollgate_snapshot::{ApiKey, ApiKeys, AuthConfig};

/// The API key every API-key request sends.
const API_KEY: &str = "bench-key-0123456789abcdef";

/// One way of guarding the route.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// No auth stage at all.
    None,
    /// `x-api-key`.
    ApiKey,
    /// `Authorization: Bearer` with an RS256 token.
    JwtRs256,
    /// `Authorization: Bearer` with an ES256 token.
    JwtEs256,
}

impl Mode {
    /// Every mode, in the order they run.
    pub const ALL: [Mode; 4] = [Mode::None, Mode::ApiKey, Mode::JwtRs256, Mode::JwtEs256];

    /// The name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Mode::None => "no auth",
            Mode::ApiKey => "API key",
            Mode::JwtRs256 => "JWT RS256",
            Mode::JwtEs256 => "JWT ES256",
        }
    }

    /// How Tollgate starts in this mode, and what each request carries.
    fn tweaks(self, signers: &Signers) -> Result<Tweaks, BenchError> {
        let label = match self {
            Mode::None => "tollgate-no-auth",
            Mode::ApiKey => "tollgate-api-key",
            Mode::JwtRs256 => "tollgate-jwt-rs256",
            Mode::JwtEs256 => "tollgate-jwt-es256",
        };
        let (auth, headers) = match self {
            Mode::None => (None, vec![]),
            Mode::ApiKey => (
                Some(AuthConfig {
                    sources: vec!["authpolicy/bench/api-key".into()],
                    api_keys: Some(api_keys()),
                    ..AuthConfig::default()
                }),
                vec![format!("x-api-key: {API_KEY}")],
            ),
            Mode::JwtRs256 | Mode::JwtEs256 => {
                let signer = if self == Mode::JwtRs256 {
                    &signers.rs256
                } else {
                    &signers.es256
                };
                (
                    Some(AuthConfig {
                        sources: vec!["authpolicy/bench/jwt".into()],
                        jwt: Some(signer.jwt_config()),
                        ..AuthConfig::default()
                    }),
                    vec![format!("authorization: Bearer {}", signer.token()?)],
                )
            }
        };
        Ok(Tweaks {
            label: Some(label.into()),
            auth,
            headers,
            ..Tweaks::default()
        })
    }
}

/// The two JWT signers, made once per run.
struct Signers {
    rs256: Signer,
    es256: Signer,
}

/// A thousand consumers, as a real key set has: the key is found among
/// them, not first in a list of one.
fn api_keys() -> ApiKeys {
    let hash = |key: &str| crate::jwt::sha256_hex(key.as_bytes());
    let mut keys: Vec<ApiKey> = (0..999)
        .map(|i| ApiKey {
            consumer: format!("consumer-{i}"),
            sha256: hash(&format!("other-key-{i}")),
        })
        .collect();
    keys.push(ApiKey {
        consumer: "bench".into(),
        sha256: hash(API_KEY),
    });
    ApiKeys {
        keys,
        extract_from: vec![],
        forward_credential: false,
    }
}

/// The scenario's outcome.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AuthCost {
    /// Connections used by wrk.
    pub connections: usize,
    /// One row per mode.
    pub rows: Vec<ModeRow<Mode>>,
    /// Instructions per request per mode.
    pub instructions: Vec<Instructions<Mode>>,
}

impl AuthCost {
    /// Median requests per second of `mode`.
    pub fn rps(&self, mode: Mode) -> Option<f64> {
        modes::rps(&self.rows, &mode)
    }

    /// Callgrind instructions per request of `mode`.
    pub fn per_request(&self, mode: Mode) -> Option<f64> {
        modes::per_request(&self.instructions, &mode)
    }
}

/// Runs the scenario; `None` when `wrk` is missing.
///
/// # Errors
///
/// When Tollgate does not start, `wrk` fails, a key cannot be made, or a
/// callgrind run fails.
pub fn run(bench: &Bench) -> Result<Option<AuthCost>, BenchError> {
    if !wrk::available() {
        bench.note("auth: wrk is not installed; skipped");
        return Ok(None);
    }
    let signers = Signers {
        rs256: Signer::rs256()?,
        es256: Signer::es256()?,
    };
    let tweaks: Vec<(Mode, Tweaks)> = Mode::ALL
        .iter()
        .map(|&m| m.tweaks(&signers).map(|t| (m, t)))
        .collect::<Result<_, _>>()?;
    let mut out = AuthCost {
        connections: bench.plan.throughput_connections,
        ..AuthCost::default()
    };
    out.rows = throughput(bench, &tweaks)?;
    if callgrind::available() {
        let modes = if bench.plan.smoke {
            &tweaks[..2]
        } else {
            &tweaks[..]
        };
        for (mode, tweaks) in modes {
            let count = callgrind::count(
                &bench.env,
                Target::Tollgate,
                bench.backend,
                tweaks,
                Load::Requests(bench.plan.callgrind_requests),
                Caches::Off,
            )?;
            bench.progress(format!(
                "auth callgrind {}: {:.0} instructions per request",
                mode.name(),
                count.per_request
            ));
            out.instructions.push(Instructions { mode: *mode, count });
        }
    } else {
        bench.note("auth: valgrind is not installed; no instruction counts");
    }
    Ok(Some(out))
}

/// The modes' wrk runs, alternated.
fn throughput(bench: &Bench, tweaks: &[(Mode, Tweaks)]) -> Result<Vec<ModeRow<Mode>>, BenchError> {
    let running: Vec<(Mode, &Tweaks, Running)> = tweaks
        .iter()
        .map(|(m, t)| {
            peers::start_tweaked(&bench.env, Target::Tollgate, bench.backend, 0, t)
                .map(|r| (*m, t, r))
        })
        .collect::<Result<_, _>>()?;
    let mut rows: Vec<ModeRow<Mode>> = running
        .iter()
        .map(|(mode, _, _)| ModeRow::new(*mode))
        .collect();
    for run in 0..bench.plan.runs {
        for ((mode, tweaks, r), row) in running.iter().zip(rows.iter_mut()) {
            let (result, busy) = r.busy_during(|| {
                wrk::run_with_headers(
                    &format!("http://{}/", r.addr),
                    bench.plan.throughput_connections,
                    bench.plan.throughput,
                    bench.env.pin,
                    &tweaks.headers,
                )
            });
            let result = result?;
            row.record(&result, busy);
            bench.progress(format!(
                "auth run {run} {}: {:.0} rps",
                mode.name(),
                result.rps
            ));
        }
    }
    Ok(rows)
}

/// The scenario's goals: each auth mode keeps ≥ 85% of the throughput
/// without auth.
pub fn goals(t: &AuthCost) -> Vec<Goal> {
    let Some(none) = t.rps(Mode::None) else {
        return vec![];
    };
    Mode::ALL[1..]
        .iter()
        .filter_map(|&mode| {
            let rps = t.rps(mode)?;
            Some(Goal::at_least(
                "10 auth",
                &format!(
                    "throughput {} / no auth (0 B, {} conns)",
                    mode.name(),
                    t.connections
                ),
                ratio(rps, none),
                0.85,
                "x",
            ))
        })
        .collect()
}
