//! API keys: a key from a header (or cookie, or query parameter) names its
//! consumer.
//!
//! The snapshot carries only SHA-256 hashes of the keys, so a snapshot (or
//! a data plane's memory dump) does not give the keys away. A request's key
//! is hashed and looked up by its hash: what the lookup's time can depend
//! on is the hash of the guess, which says nothing about how close the
//! guess is to a real key (finding a key from its hash is a preimage
//! attack on SHA-256). The match found is then confirmed in constant time.
//! One hash and one map lookup per request, however many consumers.

use super::credential::{self, Found};
use super::{Method, MethodFuture, Outcome};
use crate::context::{Principal, RequestContext};
use crate::error::ProxyError;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use subtle::ConstantTimeEq;
use tollgate_snapshot::{ApiKeys, CredentialSource};

/// The built API-key method.
#[derive(Debug)]
pub(crate) struct ApiKeyAuth {
    /// Consumer by key hash; hashes that do not decode are dropped at build.
    keys: HashMap<[u8; 32], String>,
    sources: Vec<CredentialSource>,
    forward: bool,
}

impl ApiKeyAuth {
    /// Builds the method; `x-api-key` when no source is named.
    pub(crate) fn build(config: &ApiKeys) -> ApiKeyAuth {
        let keys = config
            .keys
            .iter()
            .filter_map(|key| Some((decode_hex(&key.sha256)?, key.consumer.clone())))
            .collect();
        let sources = if config.extract_from.is_empty() {
            vec![CredentialSource::Header {
                name: "x-api-key".into(),
                prefix: None,
            }]
        } else {
            config.extract_from.clone()
        };
        ApiKeyAuth {
            keys,
            sources,
            forward: config.forward_credential,
        }
    }

    /// The consumer of `key`.
    fn consumer(&self, key: &str) -> Option<&str> {
        let hash: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let (known, consumer) = self.keys.get_key_value(&hash)?;
        bool::from(known.ct_eq(&hash)).then_some(consumer.as_str())
    }

    fn check(&self, ctx: &mut RequestContext<'_>) -> Result<Outcome, ProxyError> {
        let Some(found) = credential::find(&self.sources, ctx) else {
            return Ok(Outcome::NoCredential);
        };
        let Found { value, .. } = &found;
        let consumer = self
            .consumer(value)
            .ok_or(ProxyError::Unauthenticated {
                reason: "unknown-api-key",
                challenge: None,
            })?
            .to_string();
        if !self.forward {
            credential::remove(&found, ctx);
        }
        Ok(Outcome::Authenticated(Principal {
            method: "api-key",
            consumer: Some(consumer),
            ..Principal::default()
        }))
    }
}

impl Method for ApiKeyAuth {
    fn authenticate<'a, 'r: 'a>(&'a self, ctx: &'a mut RequestContext<'r>) -> MethodFuture<'a> {
        let outcome = self.check(ctx);
        Box::pin(std::future::ready(outcome))
    }
}

fn decode_hex(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let high = char::from(pair[0]).to_digit(16)?;
        let low = char::from(pair[1]).to_digit(16)?;
        out[i] = u8::try_from(high * 16 + low).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::tests::context;
    use tollgate_snapshot::ApiKey;

    fn hex(key: &str) -> String {
        Sha256::digest(key.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn auth_with(forward: bool) -> ApiKeyAuth {
        ApiKeyAuth::build(&ApiKeys {
            keys: vec![
                ApiKey {
                    consumer: "ci".into(),
                    sha256: hex("k-ci"),
                },
                ApiKey {
                    consumer: "ops".into(),
                    sha256: hex("k-ops"),
                },
                ApiKey {
                    consumer: "broken".into(),
                    sha256: "zz".into(),
                },
            ],
            extract_from: vec![],
            forward_credential: forward,
        })
    }

    #[test]
    fn a_known_key_names_its_consumer_and_is_removed() {
        let auth = auth_with(false);
        let mut ctx = context(&[("x-api-key", "k-ops")], None);
        let Outcome::Authenticated(p) = auth.check(&mut ctx).unwrap() else {
            panic!("not authenticated");
        };
        assert_eq!(p.consumer.as_deref(), Some("ops"));
        assert!(ctx.headers.get("x-api-key").is_none());
        let kept = auth_with(true);
        let mut ctx = context(&[("x-api-key", "k-ci")], None);
        assert!(matches!(
            kept.check(&mut ctx),
            Ok(Outcome::Authenticated(_))
        ));
        assert_eq!(ctx.headers["x-api-key"], "k-ci");
    }

    #[test]
    fn unknown_or_absent_keys() {
        let auth = auth_with(false);
        let mut ctx = context(&[("x-api-key", "k-cj")], None);
        assert!(matches!(
            auth.check(&mut ctx),
            Err(ProxyError::Unauthenticated {
                reason: "unknown-api-key",
                ..
            })
        ));
        let mut ctx = context(&[], None);
        assert!(matches!(auth.check(&mut ctx), Ok(Outcome::NoCredential)));
    }
}
