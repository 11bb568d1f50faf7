//! JWTs for the auth scenario: a key pair made at run time, its JWKS for
//! the snapshot (inline, so the key set is warm from the first request),
//! and a token valid for the whole run.

use crate::error::BenchError;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use sha2::{Digest, Sha256};
use std::time::{SystemTime, UNIX_EPOCH};
use tollgate_snapshot::{JwksSource, Jwt, JwtProvider};

/// The issuer and audience of every bench token.
const ISSUER: &str = "https://issuer.bench";
const AUDIENCE: &str = "bench";

/// A signing key and the provider that trusts it.
pub struct Signer {
    algorithm: Algorithm,
    key: EncodingKey,
    jwks: String,
}

impl Signer {
    /// A fresh RSA-2048 key, RS256.
    ///
    /// # Errors
    ///
    /// When the key cannot be made.
    pub fn rs256() -> Result<Signer, BenchError> {
        Signer::new(&rcgen::PKCS_RSA_SHA256, Algorithm::RS256)
    }

    /// A fresh P-256 key, ES256.
    ///
    /// # Errors
    ///
    /// When the key cannot be made.
    pub fn es256() -> Result<Signer, BenchError> {
        Signer::new(&rcgen::PKCS_ECDSA_P256_SHA256, Algorithm::ES256)
    }

    fn new(
        alg: &'static rcgen::SignatureAlgorithm,
        algorithm: Algorithm,
    ) -> Result<Signer, BenchError> {
        let fail = |detail: String| BenchError::Http {
            what: format!("making a {algorithm:?} key"),
            detail,
        };
        let pair = rcgen::KeyPair::generate_for(alg).map_err(|e| fail(e.to_string()))?;
        let pem = pair.serialize_pem();
        let key = match algorithm {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(pem.as_bytes()),
            _ => EncodingKey::from_ec_pem(pem.as_bytes()),
        }
        .map_err(|e| fail(e.to_string()))?;
        let mut jwk = Jwk::from_encoding_key(&key, algorithm).map_err(|e| fail(e.to_string()))?;
        jwk.common.key_id = Some(format!("bench-{algorithm:?}").to_lowercase());
        let jwks =
            serde_json::to_string(&JwkSet { keys: vec![jwk] }).map_err(|e| fail(e.to_string()))?;
        Ok(Signer {
            algorithm,
            key,
            jwks,
        })
    }

    /// The JWT configuration trusting this key (issuer and audience
    /// checked, like a production provider).
    pub fn jwt_config(&self) -> Jwt {
        Jwt {
            providers: vec![JwtProvider {
                name: "bench".into(),
                issuer: Some(ISSUER.into()),
                audiences: vec![AUDIENCE.into()],
                algorithms: vec![format!("{:?}", self.algorithm)],
                jwks: JwksSource::Inline {
                    jwks: self.jwks.clone(),
                },
                extract_from: vec![],
                claim_to_headers: vec![],
                forward_token: false,
                clock_skew_seconds: 30,
            }],
            optional: false,
        }
    }

    /// A token valid for a day.
    ///
    /// # Errors
    ///
    /// When signing fails.
    pub fn token(&self) -> Result<String, BenchError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let claims = serde_json::json!({
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "bench-user",
            "scope": "read write",
            "iat": now,
            "exp": now + 86_400,
        });
        let mut header = Header::new(self.algorithm);
        header.kid = Some(format!("bench-{:?}", self.algorithm).to_lowercase());
        jsonwebtoken::encode(&header, &claims, &self.key).map_err(|e| BenchError::Http {
            what: "signing a bench token".into(),
            detail: e.to_string(),
        })
    }
}

/// Lowercase hex SHA-256, as API-key hashes travel in the snapshot.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
