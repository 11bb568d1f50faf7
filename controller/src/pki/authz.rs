//! Who may read a Gateway's snapshots and post its reports.
//!
//! A request that came over the mutual-TLS snapshot server carries the
//! client certificate's URI SANs ([`PeerIdentity`]); it may use the paths
//! of Gateway `NS/NAME` only when they include
//! `urn:tollgate:gateway:NS:NAME`. A request without a `PeerIdentity` came
//! over the plain server, which runs only standalone (`--manifests`, bound
//! to loopback) where every local process is trusted, as before.

use super::names::identity;
use crate::serve::{Body, PeerIdentity, respond};
use hyper::Response;
use std::sync::atomic::{AtomicU64, Ordering};

/// Requests refused for a certificate of another Gateway, since start.
static DENIED: AtomicU64 = AtomicU64::new(0);

/// How many requests were refused since start (for `/status` and tests).
pub fn denied() -> u64 {
    DENIED.load(Ordering::Relaxed)
}

/// `None` when the request may act for `gateway` (`namespace/name`); the
/// 403 to send otherwise, counted and logged.
pub fn refusal(identity_of_peer: Option<&PeerIdentity>, gateway: &str) -> Option<Response<Body>> {
    let peer = identity_of_peer?;
    let allowed = gateway
        .split_once('/')
        .is_some_and(|(namespace, name)| peer.uris.contains(&identity(namespace, name)));
    if allowed {
        return None;
    }
    DENIED.fetch_add(1, Ordering::Relaxed);
    tracing::warn!(%gateway, presented = ?peer.uris, "refused: client certificate is for another Gateway");
    Some(forbidden())
}

fn forbidden() -> Response<Body> {
    respond(
        403,
        "text/plain; charset=utf-8",
        "this client certificate is not for that Gateway\n",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plain requests pass; TLS requests pass only for their own Gateway.
    #[test]
    fn a_certificate_opens_only_its_own_gateway() {
        let a = PeerIdentity {
            uris: vec!["urn:tollgate:gateway:ns:a".into()],
        };
        assert!(refusal(None, "ns/a").is_none());
        assert!(refusal(Some(&a), "ns/a").is_none());
        let before = denied();
        for other in ["ns/b", "other/a", "nsa", "ns/a/x"] {
            assert_eq!(
                refusal(Some(&a), other).map(|r| r.status().as_u16()),
                Some(403),
                "{other}"
            );
        }
        assert!(refusal(Some(&PeerIdentity::default()), "ns/a").is_some());
        assert!(denied() >= before + 4);
    }
}
