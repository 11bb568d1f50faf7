//! TLS options of an HTTPS listener: the Gateway API `tls.options` map with
//! Tollgate's keys, over the defaults of the class's GatewayConfig.
//!
//! The Gateway API leaves `tls.options` to implementations. Tollgate reads
//! the keys in [`KEYS`]; a key it does not know, or a value it cannot
//! serve, makes the listener `Accepted: False` (`UnsupportedValue`) with a
//! message naming the key, rather than silently serving something the user
//! did not ask for. The GatewayConfig's `tls` block gives the same options
//! for every HTTPS listener of the class's Gateways; a listener's own keys
//! replace them one by one.

use std::collections::BTreeMap;
use tollgate_crds::TlsConfig;
use tollgate_snapshot::{ALPN, CIPHER_SUITES, KX_GROUPS, TlsOptions, TlsVersion};

/// Oldest TLS version accepted: `1.2` or `1.3`.
pub(crate) const MIN_VERSION: &str = "tollgate.dev/min-tls-version";
/// Newest TLS version accepted: `1.2` or `1.3`.
pub(crate) const MAX_VERSION: &str = "tollgate.dev/max-tls-version";
/// Comma-separated cipher suites, in preference order.
pub(crate) const CIPHER_SUITES_KEY: &str = "tollgate.dev/cipher-suites";
/// Comma-separated key-exchange groups ("curves"), in preference order.
pub(crate) const CURVES: &str = "tollgate.dev/curves";
/// Comma-separated ALPN protocols (`h2`, `http/1.1`), in preference order.
pub(crate) const ALPN_KEY: &str = "tollgate.dev/alpn";
/// Whether sessions may be resumed: `on` (default) or `off`.
pub(crate) const RESUMPTION: &str = "tollgate.dev/session-resumption";

/// Every key Tollgate reads from `tls.options`.
pub(crate) const KEYS: [&str; 6] = [
    MIN_VERSION,
    MAX_VERSION,
    CIPHER_SUITES_KEY,
    CURVES,
    ALPN_KEY,
    RESUMPTION,
];

/// The class-wide defaults from a GatewayConfig's `tls` block.
///
/// # Errors
///
/// What is wrong with a value, naming its field.
pub(crate) fn defaults_from(config: Option<&TlsConfig>) -> Result<TlsOptions, String> {
    let Some(c) = config else {
        return Ok(TlsOptions::default());
    };
    let list = |v: &Option<Vec<String>>| v.as_ref().map(|v| v.join(","));
    let mut options = TlsOptions::default();
    let fields = [
        (MIN_VERSION, "tls.minVersion", c.min_version.clone()),
        (MAX_VERSION, "tls.maxVersion", c.max_version.clone()),
        (
            CIPHER_SUITES_KEY,
            "tls.cipherSuites",
            list(&c.cipher_suites),
        ),
        (CURVES, "tls.curves", list(&c.curves)),
        (ALPN_KEY, "tls.alpn", list(&c.alpn)),
        (
            RESUMPTION,
            "tls.sessionResumption",
            c.session_resumption
                .map(|on| if on { "on" } else { "off" }.to_string()),
        ),
    ];
    for (key, field, value) in fields {
        if let Some(value) = value {
            set(&mut options, key, &value).map_err(|e| format!("{field}: {e}"))?;
        }
    }
    options.check()?;
    Ok(options)
}

/// A listener's options: `defaults`, with each key of `map` replacing
/// its field.
///
/// # Errors
///
/// An unknown key or a value that cannot be served, naming the key.
pub(crate) fn listener_options(
    defaults: &TlsOptions,
    map: Option<&BTreeMap<String, String>>,
) -> Result<TlsOptions, String> {
    let mut options = defaults.clone();
    for (key, value) in map.into_iter().flatten() {
        if !KEYS.contains(&key.as_str()) {
            return Err(format!(
                "TLS option {key:?} is not supported; Tollgate reads {}",
                KEYS.join(", ")
            ));
        }
        set(&mut options, key, value).map_err(|e| format!("TLS option {key}: {e}"))?;
    }
    options
        .check()
        .map_err(|e| format!("TLS options cannot be served: {e}"))?;
    Ok(options)
}

fn set(options: &mut TlsOptions, key: &str, value: &str) -> Result<(), String> {
    match key {
        MIN_VERSION => options.min_version = Some(version(value)?),
        MAX_VERSION => options.max_version = Some(version(value)?),
        CIPHER_SUITES_KEY => options.cipher_suites = names(value, cipher_suite)?,
        CURVES => options.groups = names(value, group)?,
        ALPN_KEY => options.alpn = names(value, alpn)?,
        RESUMPTION => options.session_resumption = Some(on_off(value)?),
        _ => return Err("unknown key".into()),
    }
    Ok(())
}

fn on_off(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "on" | "true" => Ok(true),
        "off" | "false" => Ok(false),
        _ => Err(format!("{value:?} is neither on nor off")),
    }
}

fn version(value: &str) -> Result<TlsVersion, String> {
    TlsVersion::parse(value).ok_or_else(|| format!("{value:?} is not a TLS version (1.2 or 1.3)"))
}

/// A comma-separated list, each item canonicalised by `one`; empty is an
/// error (an empty list would mean "the defaults", which is not what a user
/// writing the key asked for).
fn names(value: &str, one: fn(&str) -> Option<&'static str>) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let name = one(item).ok_or_else(|| format!("{item:?} is not supported"))?;
        if !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
    }
    if out.is_empty() {
        return Err("the list is empty".into());
    }
    Ok(out)
}

fn cipher_suite(item: &str) -> Option<&'static str> {
    CIPHER_SUITES
        .iter()
        .copied()
        .find(|s| s.eq_ignore_ascii_case(item))
}

/// Groups by their TLS name, with the usual aliases (`P-256`, `prime256v1`).
fn group(item: &str) -> Option<&'static str> {
    let alias = match item.to_ascii_lowercase().as_str() {
        "p-256" | "p256" | "prime256v1" => "secp256r1",
        "p-384" | "p384" => "secp384r1",
        _ => item,
    };
    KX_GROUPS
        .iter()
        .copied()
        .find(|g| g.eq_ignore_ascii_case(alias))
}

fn alpn(item: &str) -> Option<&'static str> {
    ALPN.iter().copied().find(|a| a.eq_ignore_ascii_case(item))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Keys replace the defaults one by one; names are canonicalised.
    #[test]
    fn keys_override_defaults() {
        let defaults = TlsOptions {
            min_version: Some(TlsVersion::Tls12),
            alpn: vec!["http/1.1".into()],
            ..TlsOptions::default()
        };
        let m = map(&[
            (MIN_VERSION, "1.3"),
            (CURVES, "x25519, P-256"),
            (CIPHER_SUITES_KEY, "tls13_aes_128_gcm_sha256"),
        ]);
        let got = listener_options(&defaults, Some(&m)).unwrap();
        assert_eq!(got.min_version, Some(TlsVersion::Tls13));
        assert_eq!(got.groups, ["X25519", "secp256r1"]);
        assert_eq!(got.cipher_suites, ["TLS13_AES_128_GCM_SHA256"]);
        assert_eq!(got.alpn, ["http/1.1"]);
    }

    /// Unknown keys, unknown names and unservable combinations are refused
    /// with the key in the message.
    #[test]
    fn bad_options_are_refused() {
        let d = TlsOptions::default();
        let err = |pairs: &[(&str, &str)]| listener_options(&d, Some(&map(pairs))).unwrap_err();
        assert!(err(&[("tollgate.dev/ocsp", "on")]).contains("tollgate.dev/ocsp"));
        assert!(err(&[(MIN_VERSION, "1.1")]).contains(MIN_VERSION));
        assert!(err(&[(CURVES, "brainpool")]).contains("brainpool"));
        assert!(err(&[(ALPN_KEY, "")]).contains("empty"));
        assert!(err(&[(MIN_VERSION, "1.3"), (MAX_VERSION, "1.2")]).contains("above"));
        // TLS 1.2 still allowed, but only a TLS 1.3 suite named.
        assert!(err(&[(CIPHER_SUITES_KEY, "TLS13_AES_128_GCM_SHA256")]).contains("1.2"));
    }

    #[test]
    fn gateway_config_defaults() {
        let config = TlsConfig {
            min_version: Some("1.3".into()),
            curves: Some(vec!["X25519".into()]),
            ..TlsConfig::default()
        };
        let got = defaults_from(Some(&config)).unwrap();
        assert_eq!(got.min_version, Some(TlsVersion::Tls13));
        assert_eq!(got.groups, ["X25519"]);
        let bad = TlsConfig {
            alpn: Some(vec!["h3".into()]),
            ..TlsConfig::default()
        };
        assert!(defaults_from(Some(&bad)).unwrap_err().contains("tls.alpn"));
    }
}
