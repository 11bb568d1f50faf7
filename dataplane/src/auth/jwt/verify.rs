//! The checks on one token, as pure functions of the token, a provider's
//! rules and the current time (passed in), so each rule is a table test.
//!
//! The order follows RFC 8725: the token's shape and algorithm first
//! (before any key is touched), the signature next, and only then the
//! claims, which mean nothing until the signature holds. Reading `iss` and
//! `kid` before the signature is checked is only used to choose a provider
//! and a key, never to accept anything.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde::Deserialize;
use serde_json::{Map, Value};
use tollgate_snapshot::JwtProvider;

/// Longest token accepted. Real access tokens are well under 2 KiB; a
/// larger one is refused before any base64 or JSON work is spent on it.
pub(crate) const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Largest clock skew honoured, whatever the configuration says: it keeps
/// `exp`/`nbf` arithmetic meaningful and an expired token expired.
const MAX_LEEWAY_SECONDS: u64 = 3600;

/// Algorithms accepted when a provider names none: every asymmetric one.
const ASYMMETRIC: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Why a token was refused; each a stable label for logs and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reject {
    /// Not three base64url parts of JSON, or a header with `crit`.
    Malformed,
    /// No key verifies the signature.
    BadSignature,
    /// `exp` is past (beyond the leeway), or missing.
    Expired,
    /// `nbf` is ahead (beyond the leeway).
    NotYetValid,
    /// `iss` is not the provider's issuer.
    WrongIssuer,
    /// `aud` names none of the provider's audiences.
    WrongAudience,
    /// No key has the token's `kid` (or fits it, without one).
    UnknownKid,
    /// The algorithm is `none`, HMAC, unknown, not in the allowlist, or
    /// not the named key's.
    AlgNotAllowed,
    /// Longer than [`MAX_TOKEN_BYTES`].
    Oversized,
}

impl Reject {
    /// The stable label (`ProxyError::Unauthenticated::reason`).
    pub(crate) const fn label(self) -> &'static str {
        match self {
            Reject::Malformed => "malformed",
            Reject::BadSignature => "bad-signature",
            Reject::Expired => "expired",
            Reject::NotYetValid => "not-yet-valid",
            Reject::WrongIssuer => "wrong-issuer",
            Reject::WrongAudience => "wrong-audience",
            Reject::UnknownKid => "unknown-kid",
            Reject::AlgNotAllowed => "alg-not-allowed",
            Reject::Oversized => "oversized",
        }
    }
}

/// A token split and decoded, its signature not yet checked.
#[derive(Debug)]
pub(crate) struct Token<'t> {
    /// The header's algorithm, known to be asymmetric.
    pub(crate) alg: Algorithm,
    /// The header's key id.
    pub(crate) kid: Option<String>,
    /// The payload.
    pub(crate) claims: Map<String, Value>,
    /// `header.payload`, the signed bytes.
    message: &'t str,
    signature: Vec<u8>,
}

impl Token<'_> {
    /// The signed part, `header.payload`.
    pub(crate) fn message(&self) -> &str {
        self.message
    }

    /// The decoded signature.
    pub(crate) fn signature(&self) -> &Vec<u8> {
        &self.signature
    }

    /// The unverified `iss`, to choose a provider.
    pub(crate) fn issuer(&self) -> Option<&str> {
        self.claims.get("iss").and_then(Value::as_str)
    }
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    /// Extensions the token says must be understood: Tollgate knows none
    /// (RFC 7515 §4.1.11), so any is refused.
    #[serde(default)]
    crit: Option<Value>,
}

/// Splits and decodes a compact JWS.
///
/// # Errors
///
/// [`Reject::Oversized`], [`Reject::Malformed`], or
/// [`Reject::AlgNotAllowed`] for `none`, HMAC and unknown algorithms, which
/// no key from a JWKS may verify.
pub(crate) fn parse(token: &str) -> Result<Token<'_>, Reject> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Reject::Oversized);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Reject::Malformed);
    };
    let header: Header = decode_json(header)?;
    if header.crit.is_some() {
        return Err(Reject::Malformed);
    }
    let alg = header
        .alg
        .parse::<Algorithm>()
        .ok()
        .filter(|alg| ASYMMETRIC.contains(alg))
        .ok_or(Reject::AlgNotAllowed)?;
    let claims: Map<String, Value> = decode_json(payload)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| Reject::Malformed)?;
    if signature.is_empty() {
        return Err(Reject::Malformed);
    }
    Ok(Token {
        alg,
        kid: header.kid,
        claims,
        message: &token[..token.len() - signature_len(token)],
        signature,
    })
}

/// Length of `.signature` at the end of `token`.
fn signature_len(token: &str) -> usize {
    token.rfind('.').map_or(0, |dot| token.len() - dot)
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Result<T, Reject> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| Reject::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| Reject::Malformed)
}

/// One provider's claim and algorithm rules.
#[derive(Debug)]
pub(crate) struct Rules {
    /// Required `iss`.
    pub(crate) issuer: Option<String>,
    audiences: Vec<String>,
    algorithms: Vec<Algorithm>,
    leeway: u64,
}

impl Rules {
    /// The rules of `provider`. Names in `algorithms` that are unknown or
    /// symmetric are dropped (compile warns about them); a list left empty
    /// by that allows nothing, so a typo fails closed.
    pub(crate) fn build(provider: &JwtProvider) -> Rules {
        let algorithms = if provider.algorithms.is_empty() {
            ASYMMETRIC.to_vec()
        } else {
            provider
                .algorithms
                .iter()
                .filter_map(|name| name.parse::<Algorithm>().ok())
                .filter(|alg| ASYMMETRIC.contains(alg))
                .collect()
        };
        Rules {
            issuer: provider.issuer.clone(),
            audiences: provider.audiences.clone(),
            algorithms,
            leeway: provider.clock_skew_seconds.min(MAX_LEEWAY_SECONDS),
        }
    }

    /// Whether `alg` is on the allowlist.
    pub(crate) fn allows(&self, alg: Algorithm) -> bool {
        self.algorithms.contains(&alg)
    }

    /// Checks the time and the provider's claims, once the signature held.
    /// `exp` is required; `nbf` is checked when present; `iss` and `aud`
    /// when the provider sets them (a token's `aud` is not checked against
    /// a provider that names no audience, as Envoy does).
    ///
    /// # Errors
    ///
    /// The first rule broken, in the order above.
    pub(crate) fn check_claims(&self, claims: &Map<String, Value>, now: u64) -> Result<(), Reject> {
        let exp = claims
            .get("exp")
            .and_then(numeric_date)
            .ok_or(Reject::Expired)?;
        if exp.saturating_add(self.leeway) <= now {
            return Err(Reject::Expired);
        }
        if let Some(nbf) = claims.get("nbf") {
            let nbf = numeric_date(nbf).ok_or(Reject::Malformed)?;
            if nbf > now.saturating_add(self.leeway) {
                return Err(Reject::NotYetValid);
            }
        }
        if let Some(issuer) = &self.issuer
            && claims.get("iss").and_then(Value::as_str) != Some(issuer.as_str())
        {
            return Err(Reject::WrongIssuer);
        }
        if !self.audiences.is_empty() {
            let accepted = |aud: &Value| {
                aud.as_str()
                    .is_some_and(|a| self.audiences.iter().any(|x| x == a))
            };
            let ok = match claims.get("aud") {
                Some(Value::Array(auds)) => auds.iter().any(accepted),
                Some(aud) => accepted(aud),
                None => false,
            };
            if !ok {
                return Err(Reject::WrongAudience);
            }
        }
        Ok(())
    }
}

impl Rules {
    /// Until when (exclusive) a token with these claims stays valid:
    /// `exp` plus the leeway. 0 without a usable `exp`.
    pub(crate) fn valid_until(&self, claims: &Map<String, Value>) -> u64 {
        claims
            .get("exp")
            .and_then(numeric_date)
            .map_or(0, |exp| exp.saturating_add(self.leeway))
    }
}

/// A NumericDate (RFC 7519 §2): seconds, fractions allowed, never negative.
fn numeric_date(value: &Value) -> Option<u64> {
    if let Some(secs) = value.as_u64() {
        return Some(secs);
    }
    let secs = value.as_f64()?;
    // Truncation is the intent: a fraction of a second changes nothing.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    (0.0..1e18).contains(&secs).then_some(secs as u64)
}

#[cfg(test)]
mod tests {
    use super::super::super::test_keys::{TestKey, hs256, message, unsigned};
    use super::*;
    use serde_json::json;
    use tollgate_snapshot::JwksSource;

    fn provider(algorithms: &[&str]) -> JwtProvider {
        JwtProvider {
            name: "p".into(),
            issuer: Some("https://issuer".into()),
            audiences: vec!["api".into(), "web".into()],
            algorithms: algorithms.iter().map(|a| a.to_string()).collect(),
            jwks: JwksSource::Inline { jwks: "{}".into() },
            extract_from: vec![],
            claim_to_headers: vec![],
            forward_token: false,
            clock_skew_seconds: 30,
        }
    }

    /// Shape and algorithm are refused before any key is looked at.
    #[test]
    fn shapes_and_algorithms() {
        let key = TestKey::rsa("k");
        let claims = json!({"exp": 2_000_000_000u64});
        assert!(parse(&key.sign(&claims)).is_ok());
        let table: Vec<(String, Reject)> = vec![
            (unsigned(&claims), Reject::AlgNotAllowed),
            (
                hs256(&json!({"alg": "HS256"}), &claims, &key.public_der()),
                Reject::AlgNotAllowed,
            ),
            (
                format!("{}.c2ln", message(&json!({"alg": "RS1"}), &claims)),
                Reject::AlgNotAllowed,
            ),
            ("a.b".into(), Reject::Malformed),
            ("a.b.c.d.e".into(), Reject::Malformed),
            ("!!!.e30.c2ln".into(), Reject::Malformed),
            (
                format!("{}.c2ln", message(&json!({"alg": "RS256"}), &json!([1]))),
                Reject::Malformed,
            ),
            (
                format!("{}.!!", message(&json!({"alg": "RS256"}), &claims)),
                Reject::Malformed,
            ),
            (
                format!(
                    "{}.c2ln",
                    message(&json!({"alg": "RS256", "crit": ["b64"]}), &claims)
                ),
                Reject::Malformed,
            ),
            ("a".repeat(MAX_TOKEN_BYTES + 1), Reject::Oversized),
        ];
        for (token, reject) in table {
            assert_eq!(parse(&token).err(), Some(reject), "{token:.60}");
        }
    }

    #[test]
    fn the_allowlist_drops_symmetric_and_unknown_names() {
        let rules = Rules::build(&provider(&["ES256", "HS256", "none", "XX"]));
        assert!(rules.allows(Algorithm::ES256));
        assert!(!rules.allows(Algorithm::RS256));
        assert!(!rules.allows(Algorithm::HS256));
        let nothing = Rules::build(&provider(&["HS512"]));
        assert!(!nothing.allows(Algorithm::ES256));
        let default = Rules::build(&provider(&[]));
        assert!(default.allows(Algorithm::PS256) && !default.allows(Algorithm::HS256));
    }

    /// Each claim rule, with a 30 s leeway at `now = 1000`.
    #[test]
    fn claims_table() {
        let rules = Rules::build(&provider(&[]));
        let ok = json!({"iss": "https://issuer", "aud": "api", "exp": 2000});
        let table = [
            (ok.clone(), Ok(())),
            (
                json!({"iss": "https://issuer", "aud": ["x", "web"], "exp": 1000.5}),
                Ok(()),
            ),
            (
                json!({"iss": "https://issuer", "aud": "api", "exp": 975}),
                Ok(()),
            ),
            (
                json!({"iss": "https://issuer", "aud": "api", "exp": 970}),
                Err(Reject::Expired),
            ),
            (
                json!({"iss": "https://issuer", "aud": "api"}),
                Err(Reject::Expired),
            ),
            (
                json!({"iss": "https://issuer", "aud": "api", "exp": "2000"}),
                Err(Reject::Expired),
            ),
            (
                json!({"iss": "https://issuer", "aud": "api", "exp": -5}),
                Err(Reject::Expired),
            ),
            (
                json!({"iss": "https://issuer", "aud": "api", "exp": 2000, "nbf": 1030}),
                Ok(()),
            ),
            (
                json!({"iss": "https://issuer", "aud": "api", "exp": 2000, "nbf": 1031}),
                Err(Reject::NotYetValid),
            ),
            (
                json!({"iss": "https://issuer", "aud": "api", "exp": 2000, "nbf": "x"}),
                Err(Reject::Malformed),
            ),
            (
                json!({"iss": "https://other", "aud": "api", "exp": 2000}),
                Err(Reject::WrongIssuer),
            ),
            (json!({"aud": "api", "exp": 2000}), Err(Reject::WrongIssuer)),
            (
                json!({"iss": "https://issuer", "aud": "x", "exp": 2000}),
                Err(Reject::WrongAudience),
            ),
            (
                json!({"iss": "https://issuer", "aud": [], "exp": 2000}),
                Err(Reject::WrongAudience),
            ),
            (
                json!({"iss": "https://issuer", "exp": 2000}),
                Err(Reject::WrongAudience),
            ),
        ];
        for (claims, expected) in table {
            let claims = claims.as_object().unwrap();
            assert_eq!(rules.check_claims(claims, 1000), expected, "{claims:?}");
        }
    }

    /// A huge configured skew is capped, so an old token stays expired,
    /// and no arithmetic overflows near the ends of the range.
    #[test]
    fn leeway_is_capped() {
        let mut wide = provider(&[]);
        wide.clock_skew_seconds = u64::MAX;
        wide.issuer = None;
        wide.audiences.clear();
        let rules = Rules::build(&wide);
        let old = json!({"exp": 1});
        assert_eq!(
            rules.check_claims(old.as_object().unwrap(), 10_000),
            Err(Reject::Expired)
        );
        let far = json!({"exp": u64::MAX, "nbf": u64::MAX});
        assert_eq!(
            rules.check_claims(far.as_object().unwrap(), u64::MAX - 1),
            Ok(())
        );
    }
}
