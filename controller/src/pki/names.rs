//! Names of the objects generated for a Gateway, and its data plane's
//! certificate identity.
//!
//! Kubernetes names are at most 63 characters for some kinds (a Service
//! becomes a DNS label), and generated names get suffixes (`-client`, a
//! ReplicaSet's hash, a pod's random tail), so a long Gateway name is
//! shortened to a prefix plus a hash: still unique, still recognisable.

use sha2::{Digest, Sha256};

/// Suffix of every generated object's base name.
const SUFFIX: &str = "-tollgate";
/// Longest base name kept as is.
const MAX_BASE: usize = 56;
/// Characters of the Gateway name kept in a shortened base name.
const KEPT: usize = 38;

/// Base name of the objects generated for Gateway `name` (Deployment,
/// Service, ServiceAccount, PodDisruptionBudget, HorizontalPodAutoscaler):
/// `NAME-tollgate`, or when that is longer than 56 characters the first 38
/// characters of the name, `-`, 8 hex characters of its SHA-256 and
/// `-tollgate`.
pub fn base_name(name: &str) -> String {
    let plain = format!("{name}{SUFFIX}");
    if plain.len() <= MAX_BASE {
        return plain;
    }
    let digest = Sha256::digest(name.as_bytes());
    let hex: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    // Gateway names are DNS subdomains (ASCII), so any byte is a boundary.
    let kept: String = name.chars().take(KEPT).collect();
    format!("{kept}-{hex}{SUFFIX}")
}

/// Name of the Secret holding the data plane's client certificate.
pub fn client_secret_name(name: &str) -> String {
    format!("{}-client", base_name(name))
}

/// The URI SAN naming Gateway `namespace/name` in its data plane's client
/// certificate; the snapshot server maps it back to the Gateway.
pub fn identity(namespace: &str, name: &str) -> String {
    format!("urn:tollgate:gateway:{namespace}:{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Short names get the suffix; long ones a prefix and a hash, never
    /// more than 56 characters, and different long names stay different.
    #[test]
    fn base_names_fit_and_stay_unique() {
        assert_eq!(base_name("gw"), "gw-tollgate");
        assert_eq!(client_secret_name("gw"), "gw-tollgate-client");
        let edge = "a".repeat(MAX_BASE - SUFFIX.len());
        assert_eq!(base_name(&edge), format!("{edge}{SUFFIX}"));
        let long_a = "a".repeat(60);
        let long_b = format!("{}b", "a".repeat(59));
        let (a, b) = (base_name(&long_a), base_name(&long_b));
        assert_eq!(a.len(), KEPT + 1 + 8 + SUFFIX.len());
        assert!(a.starts_with(&"a".repeat(KEPT)) && a.ends_with(SUFFIX));
        assert_ne!(a, b);
        let digest = Sha256::digest(long_a.as_bytes());
        assert!(a.contains(&format!("-{:02x}{:02x}", digest[0], digest[1])));
        assert_eq!(identity("ns", "gw"), "urn:tollgate:gateway:ns:gw");
    }
}
