//! TLS of a listener: its certificates and the protocol options it allows.
//!
//! Certificates travel in the snapshot as PEM so that the data plane needs
//! nothing but the snapshot to terminate TLS. The private key, and the
//! chain, are held in [`Redacted`]: serde carries the value (the snapshot
//! goes to the data plane as JSON, and is kept on disk as last-known-good),
//! but `Debug` prints only its size, so a snapshot in a log line or a panic
//! message never shows key material. [`crate::Snapshot::redacted`] gives the
//! copy the admin endpoints serve.
//!
//! The option names (cipher suites, key-exchange groups) are the ones the
//! controller accepts and the data plane maps onto its crypto provider; both
//! use the lists here so a value the controller let through always builds.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A string that must not be printed: `Debug` shows `<redacted N bytes>`.
///
/// Serialised as the plain string, so the snapshot still carries it.
#[derive(Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Redacted(String);

impl Redacted {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Redacted {
        Redacted(value.into())
    }

    /// The value itself, for the one place that needs it (building the
    /// TLS configuration).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A stand-in that says what was removed and keeps nothing of it.
    pub(crate) fn placeholder(&self) -> Redacted {
        Redacted(format!("<redacted {} bytes>", self.0.len()))
    }
}

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<redacted {} bytes>", self.0.len())
    }
}

/// TLS termination on one listener.
///
/// Later additions come as further optional fields (like
/// `client_validation`), so snapshots without them keep their form and
/// hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenerTls {
    /// Certificates in the order of the listener's `certificateRefs`. The
    /// data plane offers each client the first one whose signature scheme
    /// the client supports (say an ECDSA one, falling back to RSA).
    pub certificates: Vec<Certificate>,
    /// Protocol versions, cipher suites, groups and ALPN.
    #[serde(default, skip_serializing_if = "TlsOptions::is_default")]
    pub options: TlsOptions,
    /// Client-certificate validation (mutual TLS) from the Gateway's
    /// `spec.tls.frontend`; `None`: no client certificate is asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_validation: Option<crate::ClientValidation>,
}

/// One certificate chain and its private key, from one Secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Certificate {
    /// Source name, `secret/<ns>/<name>`.
    pub name: String,
    /// The certificate chain, leaf first, as PEM.
    pub chain_pem: Redacted,
    /// The private key (PKCS#8, SEC1 or PKCS#1) as PEM.
    pub key_pem: Redacted,
}

/// A TLS protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TlsVersion {
    /// TLS 1.2.
    #[serde(rename = "1.2")]
    Tls12,
    /// TLS 1.3.
    #[serde(rename = "1.3")]
    Tls13,
}

impl TlsVersion {
    /// Parses `1.2` or `1.3` (also `TLSv1.2`, `TLS1.3`, any case).
    pub fn parse(s: &str) -> Option<TlsVersion> {
        let s = s.trim().to_ascii_lowercase();
        let s = s
            .strip_prefix("tlsv")
            .or_else(|| s.strip_prefix("tls"))
            .unwrap_or(&s);
        match s {
            "1.2" => Some(TlsVersion::Tls12),
            "1.3" => Some(TlsVersion::Tls13),
            _ => None,
        }
    }
}

impl fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsVersion::Tls12 => "1.2",
            TlsVersion::Tls13 => "1.3",
        })
    }
}

/// What a listener's TLS allows; empty or absent means the default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TlsOptions {
    /// Oldest version accepted; default TLS 1.2.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_version: Option<TlsVersion>,
    /// Newest version accepted; default TLS 1.3.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_version: Option<TlsVersion>,
    /// Cipher suites in preference order, named as in [`CIPHER_SUITES`];
    /// empty: the provider's defaults.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cipher_suites: Vec<String>,
    /// Key-exchange groups in preference order, named as in
    /// [`KX_GROUPS`]; empty: the provider's defaults.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// ALPN protocols offered, in preference order, from [`ALPN`]; empty:
    /// `h2`, then `http/1.1`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alpn: Vec<String>,
    /// Whether sessions may be resumed (tickets, session IDs); `None`: yes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_resumption: Option<bool>,
}

impl TlsOptions {
    /// Whether every option is the default.
    pub fn is_default(&self) -> bool {
        *self == TlsOptions::default()
    }

    /// Whether the options can be served: a version range that is not
    /// upside down, known names only, and (when suites are named) a cipher
    /// suite for every version allowed.
    ///
    /// # Errors
    ///
    /// What is wrong, for a status message or a rejected snapshot.
    pub fn check(&self) -> Result<(), String> {
        let versions = self.versions();
        if versions.is_empty() {
            return Err("the minimum TLS version is above the maximum".into());
        }
        let unknown = |names: &[String], known: &[&str]| {
            names.iter().find(|n| !known.contains(&n.as_str())).cloned()
        };
        if let Some(n) = unknown(&self.cipher_suites, CIPHER_SUITES) {
            return Err(format!("unknown cipher suite {n}"));
        }
        if let Some(n) = unknown(&self.groups, KX_GROUPS) {
            return Err(format!("unknown key-exchange group {n}"));
        }
        if let Some(n) = unknown(&self.alpn, ALPN) {
            return Err(format!("unsupported ALPN protocol {n}"));
        }
        if !self.cipher_suites.is_empty() {
            for version in versions {
                let tls13 = version == TlsVersion::Tls13;
                if !self
                    .cipher_suites
                    .iter()
                    .any(|s| is_tls13_suite(s) == tls13)
                {
                    return Err(format!(
                        "no cipher suite named for TLS {version}, which is allowed"
                    ));
                }
            }
        }
        Ok(())
    }

    /// The versions accepted, oldest first; empty when min is above max.
    pub fn versions(&self) -> Vec<TlsVersion> {
        let min = self.min_version.unwrap_or(TlsVersion::Tls12);
        let max = self.max_version.unwrap_or(TlsVersion::Tls13);
        [TlsVersion::Tls12, TlsVersion::Tls13]
            .into_iter()
            .filter(|v| (min..=max).contains(v))
            .collect()
    }
}

/// Cipher suites a listener may name: TLS 1.3 suites (`TLS13_*`) and the
/// ECDHE AEAD suites of TLS 1.2.
pub const CIPHER_SUITES: &[&str] = &[
    "TLS13_AES_128_GCM_SHA256",
    "TLS13_AES_256_GCM_SHA384",
    "TLS13_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
];

/// Key-exchange groups ("curves") a listener may name.
pub const KX_GROUPS: &[&str] = &["X25519MLKEM768", "X25519", "secp256r1", "secp384r1"];

/// ALPN protocols a listener may offer.
pub const ALPN: &[&str] = &["h2", "http/1.1"];

/// Whether `suite` is a TLS 1.3 suite.
pub fn is_tls13_suite(suite: &str) -> bool {
    suite.starts_with("TLS13_")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key is printed as its size only, and still serialised whole.
    #[test]
    fn redacted_hides_the_value_from_debug_only() {
        let key = Redacted::new("-----BEGIN PRIVATE KEY-----\nsecret\n");
        assert_eq!(format!("{key:?}"), "<redacted 35 bytes>");
        let cert = Certificate {
            name: "secret/ns/a".into(),
            chain_pem: Redacted::new("chain"),
            key_pem: key.clone(),
        };
        assert!(!format!("{cert:?}").contains("secret\n"));
        let json = serde_json::to_value(&cert).unwrap();
        assert_eq!(json["keyPem"], key.expose());
        assert_eq!(key.placeholder().expose(), "<redacted 35 bytes>");
    }

    #[test]
    fn versions_parse_and_order() {
        assert_eq!(TlsVersion::parse("1.3"), Some(TlsVersion::Tls13));
        assert_eq!(TlsVersion::parse("TLSv1.2"), Some(TlsVersion::Tls12));
        assert_eq!(TlsVersion::parse("1.1"), None);
        let only13 = TlsOptions {
            min_version: Some(TlsVersion::Tls13),
            ..TlsOptions::default()
        };
        assert_eq!(only13.versions(), [TlsVersion::Tls13]);
        assert_eq!(TlsOptions::default().versions().len(), 2);
        let upside_down = TlsOptions {
            min_version: Some(TlsVersion::Tls13),
            max_version: Some(TlsVersion::Tls12),
            ..TlsOptions::default()
        };
        assert!(upside_down.versions().is_empty());
    }
}
