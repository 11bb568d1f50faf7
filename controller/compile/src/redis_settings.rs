//! `GatewayConfig.spec.rateLimit.redis` into the snapshot's Redis settings.
//!
//! Only what the data plane serves is accepted: a standalone server over
//! `redis://`. Sentinel, Cluster and TLS are refused with
//! `InvalidParameters` rather than silently ignored, so a GatewayClass never
//! says `Accepted` for counters that would not be shared as written.

use crate::auth_refs::PolicyRefs;
use crate::conditions::{Problem, reasons};
use crate::duration::parse_duration_ms;
use crate::resources::Resources;
use tollgate_crds::RedisConfig;
use tollgate_snapshot::{Redacted, RedisMode, RedisSettings};

/// Default per-call timeout: a Redis on the same network answers in well
/// under a millisecond, and a dead one must not hold requests for long.
const DEFAULT_TIMEOUT_MS: u64 = 50;

/// The Redis settings of a GatewayConfig in `namespace`.
///
/// # Errors
///
/// `InvalidParameters` for a URL that is not `redis://`, a mode other
/// than Standalone, a bad timeout, or a password Secret that cannot be
/// read.
pub(crate) fn redis_from(
    resources: &Resources,
    namespace: &str,
    config: &RedisConfig,
) -> Result<RedisSettings, Problem> {
    let invalid =
        |m: String| Problem::new(reasons::INVALID_PARAMETERS, format!("rateLimit.redis: {m}"));
    if !config.url.starts_with("redis://") {
        return Err(invalid(format!(
            "url {:?} must be redis://host:port (TLS, rediss://, is not supported yet)",
            config.url
        )));
    }
    match config.mode.as_deref() {
        None | Some("Standalone") => {}
        Some(other) => {
            return Err(invalid(format!(
                "mode {other}: only Standalone is supported yet"
            )));
        }
    }
    let timeout_ms = match &config.timeout {
        Some(t) => parse_duration_ms(t).map_err(|p| invalid(p.message))?,
        None => DEFAULT_TIMEOUT_MS,
    };
    let password = match &config.password_secret_ref {
        Some(r) => {
            let refs = PolicyRefs::new(resources, namespace);
            let value = refs
                .secret_value("passwordSecretRef", r, "password")
                .map_err(|p| invalid(p.message))?;
            Some(Redacted::new(value))
        }
        None => None,
    };
    Ok(RedisSettings {
        urls: vec![config.url.clone()],
        mode: RedisMode::Standalone,
        username: config.username.clone(),
        password,
        ca_pem: None,
        pool_size: config.pool_size.unwrap_or(4),
        timeout_ms: timeout_ms.max(1),
        key_prefix: config
            .key_prefix
            .clone()
            .unwrap_or_else(|| "tollgate:rl:".into()),
    })
}
