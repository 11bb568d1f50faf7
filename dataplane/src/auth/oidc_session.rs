//! The cookies of an OIDC login: a sealed state cookie per login attempt
//! and a sealed session cookie once logged in.
//!
//! Both are AES-256-GCM sealed with the policy's `cookie_key`, the cookie's
//! name as associated data (a state cookie cannot be replayed as a session
//! or under another state's name), a random 96-bit nonce each time, and an
//! expiry inside. A state cookie holds the PKCE verifier, the nonce and the
//! URL to return to; it is named after its state, and scoped to the
//! callback path, so several tabs logging in at once each keep their own
//! and ordinary requests do not carry them. A session holds only what the
//! gateway needs (a trimmed set of ID-token claims, the refresh token, the
//! expiry) and is trimmed further to stay under browsers' 4 KB limit.

use super::oidc_provider::unavailable;
use crate::context::RequestContext;
use crate::error::ProxyError;
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::fmt;

/// Largest sealed session value; the name and attributes fit in the rest
/// of the 4096 bytes browsers keep per cookie.
const MAX_SESSION_VALUE: usize = 3800;

/// Claims that only served to check the token; sessions do not keep them.
const BOOKKEEPING: [&str; 12] = [
    "aud",
    "azp",
    "iat",
    "nbf",
    "exp",
    "nonce",
    "at_hash",
    "c_hash",
    "auth_time",
    "jti",
    "sid",
    "typ",
];

/// Claims kept when a session would otherwise be too large.
const ESSENTIAL: [&str; 6] = [
    "sub",
    "iss",
    "email",
    "name",
    "preferred_username",
    "groups",
];

/// Longest return URL a state cookie holds, in bytes: with the state,
/// verifier, nonce and sealing it stays well under 4 KB.
const MAX_RETURN_URL: usize = 2048;

/// How long a session cookie outlives its ID token, so its refresh token
/// can still be used, in seconds.
const REFRESH_GRACE_SECONDS: u64 = 86_400;

/// Seals and opens cookie values.
pub(crate) struct Sealer {
    key: LessSafeKey,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer")
    }
}

impl Sealer {
    /// The sealer of a 32-byte key given in base64 (standard or URL-safe);
    /// `None` for anything else.
    pub(crate) fn new(key: &str) -> Option<Sealer> {
        let key = key.trim();
        let bytes = STANDARD
            .decode(key)
            .or_else(|_| URL_SAFE_NO_PAD.decode(key.trim_end_matches('=')))
            .ok()?;
        if bytes.len() != 32 {
            return None;
        }
        let unbound = UnboundKey::new(&AES_256_GCM, &bytes).ok()?;
        Some(Sealer {
            key: LessSafeKey::new(unbound),
        })
    }

    /// `value` as JSON, sealed for the cookie `name`.
    pub(crate) fn seal<T: Serialize>(&self, name: &str, value: &T) -> Option<String> {
        let mut data = serde_json::to_vec(value).ok()?;
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).ok()?;
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(name.as_bytes()),
                &mut data,
            )
            .ok()?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Some(URL_SAFE_NO_PAD.encode(out))
    }

    /// The value sealed for `name`, if `sealed` is one of ours, intact.
    pub(crate) fn open<T: DeserializeOwned>(&self, name: &str, sealed: &str) -> Option<T> {
        let mut data = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        if data.len() < NONCE_LEN {
            return None;
        }
        let nonce = Nonce::try_assume_unique_for_key(&data[..NONCE_LEN]).ok()?;
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(name.as_bytes()), &mut data[NONCE_LEN..])
            .ok()?;
        serde_json::from_slice(plain).ok()
    }
}

/// One login attempt, kept in its state cookie until the callback.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct LoginState {
    /// The state sent to the provider.
    pub(crate) state: String,
    /// The PKCE code verifier.
    pub(crate) verifier: String,
    /// The nonce the ID token must carry.
    pub(crate) nonce: String,
    /// Where to return: a path and query on this host.
    pub(crate) url: String,
    /// Unix seconds after which the attempt is void.
    pub(crate) expires: u64,
}

/// A logged-in browser's session.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Session {
    /// The ID token's claims, trimmed.
    pub(crate) claims: Map<String, Value>,
    /// The refresh token, when the provider gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) refresh: Option<String>,
    /// Unix seconds after which the session must be refreshed.
    pub(crate) expires: u64,
}

/// The session sealed for `name`, trimmed until it fits a cookie: first to
/// the essential claims, then to `sub` alone, then without the refresh
/// token. `None` only when even that does not fit.
pub(crate) fn seal_session(sealer: &Sealer, name: &str, mut session: Session) -> Option<String> {
    session
        .claims
        .retain(|k, _| !BOOKKEEPING.contains(&k.as_str()));
    for step in 0..4 {
        match step {
            1 => session
                .claims
                .retain(|k, _| ESSENTIAL.contains(&k.as_str())),
            2 => session.claims.retain(|k, _| k == "sub"),
            3 => session.refresh = None,
            _ => {}
        }
        let sealed = sealer.seal(name, &session)?;
        if sealed.len() <= MAX_SESSION_VALUE {
            return Some(sealed);
        }
    }
    None
}

/// `bytes` random bytes, base64url: states, nonces, PKCE verifiers.
pub(crate) fn random(bytes: usize) -> Option<String> {
    let mut buf = vec![0u8; bytes];
    aws_lc_rs::rand::fill(&mut buf).ok()?;
    Some(URL_SAFE_NO_PAD.encode(buf))
}

/// The PKCE S256 challenge of `verifier` (RFC 7636 §4.2).
pub(crate) fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// The name of the state cookie of `state`: the prefix and the state's
/// first 16 characters (96 random bits), so attempts do not collide.
pub(crate) fn state_cookie(prefix: &str, state: &str) -> String {
    let suffix: String = state
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(16)
        .collect();
    format!("{prefix}-state-{suffix}")
}

/// A `Set-Cookie` value; `max_age` 0 deletes the cookie.
pub(crate) fn set_cookie(name: &str, value: &str, path: &str, max_age: u64) -> String {
    format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; Secure; SameSite=Lax")
}

/// Where to return after login: the request's path and query, without the
/// query (then `/`) when that would make the state cookie larger than
/// browsers keep.
pub(crate) fn return_url(ctx: &RequestContext<'_>) -> String {
    let full = ctx.path_and_query();
    if full.len() <= MAX_RETURN_URL {
        full
    } else if ctx.path.len() <= MAX_RETURN_URL {
        ctx.path.clone()
    } else {
        "/".into()
    }
}

/// The `Set-Cookie` of a new session, named `name`.
pub(crate) fn session_cookie(
    sealer: &Sealer,
    name: &str,
    claims: Map<String, Value>,
    refresh: Option<String>,
    now: u64,
) -> Result<String, ProxyError> {
    let expires = claims.get("exp").and_then(Value::as_u64).unwrap_or(now);
    let session = Session {
        claims,
        refresh,
        expires,
    };
    let sealed = seal_session(sealer, name, session)
        .ok_or_else(|| unavailable("session too large".into()))?;
    let max_age = expires.saturating_sub(now) + REFRESH_GRACE_SECONDS;
    Ok(set_cookie(name, &sealed, "/", max_age))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::tests::context;

    fn sealer() -> Sealer {
        Sealer::new(&STANDARD.encode([7u8; 32])).unwrap()
    }

    #[test]
    fn sealed_values_open_only_under_their_name_and_key() {
        let s = sealer();
        let sealed = s.seal("sess", &"hello").unwrap();
        assert_eq!(s.open::<String>("sess", &sealed).as_deref(), Some("hello"));
        assert!(s.open::<String>("other", &sealed).is_none());
        let other = Sealer::new(&URL_SAFE_NO_PAD.encode([8u8; 32])).unwrap();
        assert!(other.open::<String>("sess", &sealed).is_none());
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert!(
            s.open::<String>("sess", &String::from_utf8(tampered).unwrap())
                .is_none()
        );
        assert!(s.open::<String>("sess", "").is_none());
        assert!(s.open::<String>("sess", "!!").is_none());
        assert_ne!(
            s.seal("sess", &"hello").unwrap(),
            sealed,
            "a fresh nonce each time"
        );
        assert!(Sealer::new("c2hvcnQ=").is_none());
    }

    #[test]
    fn sessions_are_trimmed_to_fit_a_cookie() {
        let s = sealer();
        let mut claims = Map::new();
        claims.insert("sub".into(), "u1".into());
        claims.insert("email".into(), "u1@example.com".into());
        claims.insert("nonce".into(), "n".into());
        claims.insert("bio".into(), "x".repeat(5000).into());
        let session = Session {
            claims: claims.clone(),
            refresh: Some("r".into()),
            expires: 9,
        };
        let sealed = seal_session(&s, "sess", session).unwrap();
        assert!(sealed.len() <= MAX_SESSION_VALUE);
        let opened: Session = s.open("sess", &sealed).unwrap();
        assert_eq!(opened.claims.keys().collect::<Vec<_>>(), ["email", "sub"]);
        assert_eq!(opened.refresh.as_deref(), Some("r"));
        claims.insert("groups".into(), "g".repeat(5000).into());
        let session = Session {
            claims,
            refresh: None,
            expires: 9,
        };
        let opened: Session = s
            .open("sess", &seal_session(&s, "sess", session).unwrap())
            .unwrap();
        assert_eq!(opened.claims.keys().collect::<Vec<_>>(), ["sub"]);
    }

    #[test]
    fn pkce_and_state_cookie_names() {
        // RFC 7636 appendix B.
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert_eq!(
            state_cookie("tg", "abcdefghijklmnopqrstuvwxyz"),
            "tg-state-abcdefghijklmnop"
        );
        assert_eq!(state_cookie("tg", "a;b=c"), "tg-state-abc");
        assert_eq!(random(32).unwrap().len(), 43);
    }
    #[test]
    fn long_return_urls_are_shortened() {
        let mut ctx = context(&[], Some("q=1"));
        ctx.path = "/app".into();
        assert_eq!(return_url(&ctx), "/app?q=1");
        ctx.query = Some("q=".repeat(2000));
        assert_eq!(return_url(&ctx), "/app");
        ctx.path = "/a".repeat(2000);
        assert_eq!(return_url(&ctx), "/");
    }
}
