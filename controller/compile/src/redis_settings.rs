//! `GatewayConfig.spec.rateLimit.redis` into the snapshot's Redis settings.
//!
//! Only what the data plane serves is accepted: a standalone server, a
//! master found through Redis Sentinel, or a Redis Cluster, over
//! `redis://` or `rediss://` (TLS, with an optional private CA). Sentinel
//! mode without `masterName` is refused with `InvalidParameters` rather
//! than guessed, so a GatewayClass never says `Accepted` for counters that
//! would not be shared as written.

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
/// `InvalidParameters` for a URL that is not `redis://` or `rediss://`,
/// an unknown mode, Sentinel mode without `masterName`, a bad timeout, or
/// a password Secret or CA that cannot be read.
pub(crate) fn redis_from(
    resources: &Resources,
    namespace: &str,
    config: &RedisConfig,
) -> Result<RedisSettings, Problem> {
    let invalid =
        |m: String| Problem::new(reasons::INVALID_PARAMETERS, format!("rateLimit.redis: {m}"));
    let urls: Vec<String> = std::iter::once(config.url.clone())
        .chain(config.urls.iter().flatten().cloned())
        .collect();
    let tls = config.url.starts_with("rediss://");
    for url in &urls {
        let scheme_ok = url.starts_with("redis://") || url.starts_with("rediss://");
        if !scheme_ok || url.starts_with("rediss://") != tls {
            return Err(invalid(format!(
                "url {url:?} must be redis://host:port or rediss://host:port, all alike"
            )));
        }
    }
    let refs = PolicyRefs::new(resources, namespace);
    let mode = match config.mode.as_deref() {
        None | Some("Standalone") if urls.len() == 1 => RedisMode::Standalone,
        None | Some("Standalone") => {
            return Err(invalid(
                "several urls are cluster seeds: set mode Cluster".into(),
            ));
        }
        Some("Cluster") => RedisMode::Cluster,
        Some("Sentinel") => sentinel_mode(&refs, config).map_err(invalid)?,
        Some(other) => {
            return Err(invalid(format!(
                "mode {other}: Standalone, Sentinel or Cluster"
            )));
        }
    };
    if !matches!(mode, RedisMode::Sentinel { .. })
        && (config.master_name.is_some()
            || config.sentinel_username.is_some()
            || config.sentinel_password_secret_ref.is_some())
    {
        return Err(invalid(
            "masterName and the sentinel credentials need mode Sentinel".into(),
        ));
    }
    let refs = PolicyRefs::new(resources, namespace);
    let ca_pem = match &config.ca_certificate_ref {
        Some(_) if !tls => {
            return Err(invalid("caCertificateRef needs a rediss:// url".into()));
        }
        Some(r) => Some(
            refs.object_value("caCertificateRef", r, "ConfigMap", "ca.crt")
                .map_err(|p| invalid(p.message))?,
        ),
        None => None,
    };
    let timeout_ms = match &config.timeout {
        Some(t) => parse_duration_ms(t).map_err(|p| invalid(p.message))?,
        None => DEFAULT_TIMEOUT_MS,
    };
    let password = match &config.password_secret_ref {
        Some(r) => {
            let value = refs
                .secret_value("passwordSecretRef", r, "password")
                .map_err(|p| invalid(p.message))?;
            Some(Redacted::new(value))
        }
        None => None,
    };
    Ok(RedisSettings {
        urls,
        mode,
        username: config.username.clone(),
        password,
        ca_pem,
        pool_size: config.pool_size.unwrap_or(4),
        timeout_ms: timeout_ms.max(1),
        key_prefix: config
            .key_prefix
            .clone()
            .unwrap_or_else(|| "tollgate:rl:".into()),
    })
}

/// Sentinel mode: the master's name (required) and the sentinels' own
/// credentials.
fn sentinel_mode(refs: &PolicyRefs<'_>, config: &RedisConfig) -> Result<RedisMode, String> {
    let master_name = match config.master_name.as_deref().map(str::trim) {
        Some(name) if !name.is_empty() => name.to_string(),
        _ => {
            return Err(
                "mode Sentinel needs masterName, the name the sentinels monitor the master under"
                    .into(),
            );
        }
    };
    let sentinel_password = match &config.sentinel_password_secret_ref {
        Some(r) => Some(Redacted::new(
            refs.secret_value("sentinelPasswordSecretRef", r, "password")
                .map_err(|p| p.message)?,
        )),
        None => None,
    };
    Ok(RedisMode::Sentinel {
        master_name,
        sentinel_username: config.sentinel_username.clone(),
        sentinel_password,
    })
}
