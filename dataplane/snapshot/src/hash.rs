//! `Snapshot::content_hash`: the identity the publisher and data planes
//! agree on.
//!
//! Both sides hash on the path from a manifest change to traffic (the
//! publisher to skip unchanged snapshots, the data plane before it swaps one
//! in), so the hash streams the snapshot's JSON straight into SHA-256
//! through a borrowed view: no copy of the snapshot and no JSON buffer. The
//! bytes hashed are exactly those of the snapshot serialised with
//! `version` 0, so hashes stay equal to earlier releases'.

use crate::{
    AuthConfig, Backend, ClientCertificate, RateLimits, Route, Settings, Snapshot, Socket,
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::io;

/// The snapshot's fields in the order and spelling of its serde form, with
/// `version` fixed at 0. Every field is here: one left out would let a
/// change to it alone (a rotated client certificate, an edited AuthPolicy)
/// look unchanged, so it would never be published.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Unversioned<'a> {
    version: u64,
    gateway: &'a str,
    settings: &'a Settings,
    sockets: &'a [Socket],
    routes: &'a [Route],
    backends: &'a [Backend],
    #[serde(skip_serializing_if = "Option::is_none")]
    backend_client_certificate: &'a Option<ClientCertificate>,
    #[serde(skip_serializing_if = "<[AuthConfig]>::is_empty")]
    auth: &'a [AuthConfig],
    #[serde(skip_serializing_if = "<[RateLimits]>::is_empty")]
    rate_limits: &'a [RateLimits],
}

/// Feeds written bytes to the hasher, counting them.
struct HashWriter<'a>(&'a mut Sha256, &'a mut u64);

impl io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        *self.1 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Hex SHA-256 of `snapshot`'s JSON with `version` 0, and that JSON's
/// length in bytes.
pub(crate) fn content_hash(snapshot: &Snapshot) -> (String, u64) {
    // Destructured without `..`: a field added to `Snapshot` fails to
    // compile here until it is hashed too.
    let Snapshot {
        schema_version: _,
        version: _,
        traceparent: _,
        gateway,
        settings,
        sockets,
        routes,
        backends,
        backend_client_certificate,
        auth,
        rate_limits,
    } = snapshot;
    let view = Unversioned {
        version: 0,
        gateway,
        settings,
        sockets,
        routes,
        backends,
        backend_client_certificate,
        auth,
        rate_limits,
    };
    let mut hasher = Sha256::new();
    let mut size = 0;
    // Serialising plain data with derived impls into a writer that never
    // fails cannot fail; on the impossible error the digest of what was
    // written is still deterministic.
    let _ = serde_json::to_writer(
        io::BufWriter::with_capacity(64 * 1024, HashWriter(&mut hasher, &mut size)),
        &view,
    );
    let hash = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    (hash, size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BackendProtocol, Endpoint};

    /// The streamed hash equals SHA-256 of the serialised copy with version
    /// 0, which is what earlier releases published and reported.
    #[test]
    fn equals_the_hash_of_the_unversioned_json() {
        let mut s = Snapshot::empty("ns/gw");
        s.version = 42;
        s.backends.push(Backend {
            name: "service/ns/b/port/80".into(),
            protocol: BackendProtocol::default(),
            tls: None,
            endpoints: vec![Endpoint {
                address: "10.0.0.1".into(),
                port: 8080,
            }],
        });
        let mut copy = s.clone();
        copy.version = 0;
        let json = serde_json::to_vec(&copy).unwrap_or_default();
        let want: String = Sha256::digest(&json)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(content_hash(&s), (want, json.len() as u64));
    }

    /// A change to the auth table alone (a rotated API key) changes the
    /// hash, and the hash is still that of the serialised copy.
    #[test]
    fn auth_is_part_of_the_content() {
        let mut s = Snapshot::empty("ns/gw");
        let before = content_hash(&s).0;
        s.auth.push(crate::AuthConfig {
            sources: vec!["authpolicy/ns/p".into()],
            ..crate::AuthConfig::default()
        });
        assert_hash_of_json(&s, &before);
    }

    /// So does a change to the rate limit table alone (an edited
    /// RateLimitPolicy).
    #[test]
    fn rate_limits_are_part_of_the_content() {
        let mut s = Snapshot::empty("ns/gw");
        let before = content_hash(&s).0;
        s.rate_limits.push(crate::RateLimits::default());
        assert_hash_of_json(&s, &before);
    }

    fn assert_hash_of_json(s: &Snapshot, before: &str) {
        let json = serde_json::to_vec(s).unwrap_or_default();
        let want: String = Sha256::digest(&json)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let (hash, size) = content_hash(s);
        assert_eq!((hash.as_str(), size), (want.as_str(), json.len() as u64));
        assert_ne!(hash, before);
    }
}
