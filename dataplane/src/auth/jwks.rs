//! JSON Web Key Sets: the public keys a JWT provider's tokens are checked
//! against, parsed once when they arrive (inline at build, or fetched by
//! [`remote`]) so a request only looks a key up and verifies.
//!
//! Only public signature keys are kept: RSA, EC P-256 / P-384 and Ed25519.
//! Symmetric (`oct`) keys are dropped, so an HMAC algorithm can never be
//! paired with a key from a set (the RSA/HMAC confusion attack needs one);
//! keys marked `use: enc` and keys that do not parse are dropped one by
//! one, so one odd key does not take the provider's other keys with it.

pub(crate) mod remote;

use super::jwt::verify::{Reject, Token};
use jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use std::sync::Arc;
use thiserror::Error;

pub(crate) use remote::{JwksCache, RemoteJwks};

/// Why a key set could not be had.
#[derive(Debug, Error)]
pub(crate) enum JwksError {
    /// The document is not a JWKS (`{"keys": [...]}`).
    #[error("not a JWKS document")]
    Parse(#[source] serde_json::Error),
    /// The document holds no usable signature key.
    #[error("the JWKS holds no usable signature key")]
    NoKeys,
    /// The endpoint could not be called.
    #[error("JWKS fetch from {uri} failed")]
    Call {
        /// The endpoint.
        uri: String,
        /// The call's error.
        #[source]
        source: super::call::CallError,
    },
    /// The endpoint answered with an error status.
    #[error("JWKS endpoint {uri} answered {status}")]
    Status {
        /// The endpoint.
        uri: String,
        /// The status it answered.
        status: u16,
    },
    /// The provider's keys cannot be had at all (an invalid call target or
    /// inline document), so its tokens can never be checked.
    #[error("{0}")]
    Unusable(String),
}

/// Which family and curve a key belongs to: what decides the algorithms it
/// may verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyType {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl KeyType {
    /// Whether a key of this type may verify `alg`. HMAC fits no key.
    fn fits(self, alg: Algorithm) -> bool {
        use Algorithm::*;
        match self {
            KeyType::Rsa => matches!(alg, RS256 | RS384 | RS512 | PS256 | PS384 | PS512),
            KeyType::P256 => alg == ES256,
            KeyType::P384 => alg == ES384,
            KeyType::Ed25519 => alg == EdDSA,
        }
    }
}

/// One public key of a set.
struct Key {
    kid: Option<String>,
    /// The key's own `alg`, when it names one: then only that is accepted.
    alg: Option<Algorithm>,
    kind: KeyType,
    key: DecodingKey,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl Key {
    fn parse(jwk: &Jwk) -> Option<Key> {
        if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
            return None;
        }
        let (kind, key) = match &jwk.algorithm {
            AlgorithmParameters::RSA(rsa) => (
                KeyType::Rsa,
                DecodingKey::from_rsa_components(&rsa.n, &rsa.e).ok()?,
            ),
            AlgorithmParameters::EllipticCurve(ec) => {
                let kind = match ec.curve {
                    EllipticCurve::P256 => KeyType::P256,
                    EllipticCurve::P384 => KeyType::P384,
                    _ => return None,
                };
                (kind, DecodingKey::from_ec_components(&ec.x, &ec.y).ok()?)
            }
            AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => (
                KeyType::Ed25519,
                DecodingKey::from_ed_components(&okp.x).ok()?,
            ),
            _ => return None,
        };
        let alg = match jwk.common.key_algorithm {
            Some(alg) => Some(alg.to_string().parse::<Algorithm>().ok()?),
            None => None,
        };
        Some(Key {
            kid: jwk.common.key_id.clone(),
            alg,
            kind,
            key,
        })
    }

    fn fits(&self, alg: Algorithm) -> bool {
        self.kind.fits(alg) && self.alg.is_none_or(|own| own == alg)
    }

    fn verifies(&self, token: &Token<'_>) -> bool {
        let Ok(verifier) = (DEFAULT_PROVIDER.verifier_factory)(&token.alg, &self.key) else {
            return false;
        };
        verifier
            .verify(token.message().as_bytes(), token.signature())
            .is_ok()
    }
}

/// A parsed key set; immutable, replaced whole on refresh.
#[derive(Debug, Default)]
pub(crate) struct KeySet {
    keys: Vec<Key>,
}

#[derive(Deserialize)]
struct Document {
    keys: Vec<serde_json::Value>,
}

impl KeySet {
    /// Parses a JWKS document, keeping every usable signature key.
    ///
    /// # Errors
    ///
    /// [`JwksError::Parse`] when it is not `{"keys": [...]}`;
    /// [`JwksError::NoKeys`] when no key in it is usable: a set that
    /// suddenly holds nothing is more likely a broken endpoint than a
    /// provider revoking every key, so the keys held before are kept.
    pub(crate) fn parse(json: &[u8]) -> Result<KeySet, JwksError> {
        let document: Document = serde_json::from_slice(json).map_err(JwksError::Parse)?;
        let keys: Vec<Key> = document
            .keys
            .into_iter()
            .filter_map(|value| Key::parse(&serde_json::from_value(value).ok()?))
            .collect();
        if keys.is_empty() {
            return Err(JwksError::NoKeys);
        }
        Ok(KeySet { keys })
    }

    /// Checks `token`'s signature with the key it names (`kid`), or with
    /// every key that fits its algorithm when it names none.
    ///
    /// # Errors
    ///
    /// [`Reject::UnknownKid`] when no key is named or fits (a refetch may
    /// help); [`Reject::AlgNotAllowed`] when the named key is of another
    /// type or algorithm than the token says; [`Reject::BadSignature`]
    /// when the keys tried do not verify it.
    pub(crate) fn verify(&self, token: &Token<'_>) -> Result<(), Reject> {
        if let Some(kid) = token.kid.as_deref() {
            let key = self
                .keys
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid))
                .ok_or(Reject::UnknownKid)?;
            if !key.fits(token.alg) {
                return Err(Reject::AlgNotAllowed);
            }
            return if key.verifies(token) {
                Ok(())
            } else {
                Err(Reject::BadSignature)
            };
        }
        let mut fitting = self.keys.iter().filter(|k| k.fits(token.alg)).peekable();
        if fitting.peek().is_none() {
            return Err(Reject::UnknownKid);
        }
        if fitting.any(|k| k.verifies(token)) {
            Ok(())
        } else {
            Err(Reject::BadSignature)
        }
    }

    /// How many keys the set holds.
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }
}

/// Where a provider's keys are: fixed, fetched and cached, or unusable.
#[derive(Debug, Clone)]
pub(crate) enum Keys {
    /// Inline or from a Secret, parsed at build.
    Inline(Arc<KeySet>),
    /// From a JWKS endpoint, shared across snapshots.
    Remote(Arc<RemoteJwks>),
    /// The configuration gives no way to get keys; every token of the
    /// provider fails as a dependency (503), never as the caller's fault.
    Unusable(Arc<str>),
}

impl Keys {
    /// The keys to check a token with now.
    ///
    /// # Errors
    ///
    /// When there are none at all (a remote set never fetched and its
    /// endpoint failing, or an unusable configuration).
    pub(crate) async fn current(&self) -> Result<Arc<KeySet>, JwksError> {
        match self {
            Keys::Inline(set) => Ok(set.clone()),
            Keys::Remote(remote) => remote.keys().await,
            Keys::Unusable(why) => Err(JwksError::Unusable(why.to_string())),
        }
    }

    /// Whether `set` is still the one the provider holds (not replaced by
    /// a refresh since).
    pub(crate) fn holds(&self, set: &Arc<KeySet>) -> bool {
        match self {
            Keys::Inline(own) => Arc::ptr_eq(own, set),
            Keys::Remote(remote) => remote.holds(set),
            Keys::Unusable(_) => false,
        }
    }

    /// After an unknown `kid`: the keys of a refetch, when one was allowed
    /// (see [`RemoteJwks::refetch_for_unknown_kid`]); `None` otherwise.
    pub(crate) async fn refetched(&self) -> Option<Arc<KeySet>> {
        match self {
            Keys::Remote(remote) => remote.refetch_for_unknown_kid().await,
            Keys::Inline(_) | Keys::Unusable(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_keys::{TestKey, jwks};
    use super::*;
    use crate::auth::jwt::verify::parse;
    use serde_json::json;

    #[test]
    fn unusable_keys_are_dropped_one_by_one() {
        let rsa = TestKey::rsa("r1");
        let document = json!({"keys": [
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {"kty": "RSA", "n": "!!", "e": "AQAB", "kid": "broken"},
            {"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA", "kid": "p521"},
            {"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB", "kid": "enc"},
            {"kty": "weird"},
            rsa.jwk(),
        ]});
        let set = KeySet::parse(document.to_string().as_bytes()).unwrap();
        assert_eq!(set.len(), 1);
        assert!(matches!(
            KeySet::parse(br#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#),
            Err(JwksError::NoKeys)
        ));
        assert!(matches!(KeySet::parse(b"<html>"), Err(JwksError::Parse(_))));
    }

    #[test]
    fn a_key_verifies_only_its_own_type_and_kid() {
        let rsa = TestKey::rsa("r1");
        let ec = TestKey::ec("e1");
        let set = KeySet::parse(jwks(&[&rsa, &ec]).as_bytes()).unwrap();
        let claims = json!({"sub": "a", "exp": 4_000_000_000u64});
        let good = rsa.sign(&claims);
        assert_eq!(set.verify(&parse(&good).unwrap()), Ok(()));
        assert_eq!(set.verify(&parse(&ec.sign(&claims)).unwrap()), Ok(()));
        // The EC key's kid on an RS256 token: the key does not fit.
        let swapped = rsa.sign_with_header(&json!({"alg": "RS256", "kid": "e1"}), &claims);
        assert_eq!(
            set.verify(&parse(&swapped).unwrap()),
            Err(Reject::AlgNotAllowed)
        );
        let unknown = rsa.sign_with_header(&json!({"alg": "RS256", "kid": "nope"}), &claims);
        assert_eq!(
            set.verify(&parse(&unknown).unwrap()),
            Err(Reject::UnknownKid)
        );
        // Without a kid every fitting key is tried.
        let kidless = rsa.sign_with_header(&json!({"alg": "RS256"}), &claims);
        assert_eq!(set.verify(&parse(&kidless).unwrap()), Ok(()));
        let other = TestKey::rsa("r1");
        assert_eq!(
            set.verify(&parse(&other.sign(&claims)).unwrap()),
            Err(Reject::BadSignature)
        );
    }
}
