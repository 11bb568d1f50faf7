//! HTTP Basic authentication (RFC 7617) against an htpasswd file.
//!
//! bcrypt is slow on purpose (tens of milliseconds a check), so a caller
//! sending the same good credentials on every request would cost a core.
//! Successful checks are remembered by a SHA-256 of `user:password` for a
//! while; failures are never remembered, so a wrong password always pays
//! the full bcrypt cost.

use super::{Method, MethodFuture, Outcome};
use crate::context::{Principal, RequestContext};
use crate::error::ProxyError;
use base64::Engine;
use http::header::AUTHORIZATION;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tollgate_snapshot::BasicAuth as BasicConfig;

/// How long a verified credential is remembered.
const REMEMBER: Duration = Duration::from_secs(300);
/// Most credentials remembered; the cache is cleared when full.
const REMEMBER_MAX: usize = 10_000;

/// The built Basic method.
#[derive(Debug)]
pub(crate) struct BasicAuth {
    /// User name to its hash line (`$2y$…` or `{SHA}…`).
    users: HashMap<String, String>,
    forward: bool,
    verified: Arc<Mutex<HashMap<[u8; 32], Instant>>>,
}

impl BasicAuth {
    /// Builds the method from the htpasswd lines; malformed lines are
    /// skipped (`compile` reported them).
    pub(crate) fn build(config: &BasicConfig) -> BasicAuth {
        let users = config
            .htpasswd
            .expose()
            .lines()
            .filter_map(|line| {
                let (user, hash) = line.trim().split_once(':')?;
                Some((user.to_string(), hash.to_string()))
            })
            .collect();
        BasicAuth {
            users,
            forward: config.forward_credential,
            verified: Arc::default(),
        }
    }

    async fn check(&self, ctx: &mut RequestContext<'_>) -> Result<Outcome, ProxyError> {
        let Some(header) = ctx.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
            return Ok(Outcome::NoCredential);
        };
        let Some(encoded) = header
            .get(..6)
            .filter(|s| s.eq_ignore_ascii_case("basic "))
            .map(|_| header[6..].trim())
        else {
            return Ok(Outcome::NoCredential);
        };
        let refused = |reason| ProxyError::Unauthenticated {
            reason,
            challenge: super::challenge("Basic", &ctx.host, None),
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| refused("malformed"))?;
        let (user, password) = decoded
            .split_once(':')
            .ok_or_else(|| refused("malformed"))?;
        let hash = self
            .users
            .get(user)
            .ok_or_else(|| refused("bad-credentials"))?;
        let key: [u8; 32] = Sha256::digest(decoded.as_bytes()).into();
        if !self.remembered(&key) {
            let (password, hash) = (password.to_string(), hash.clone());
            // bcrypt blocks for its whole cost: off the reactor.
            let good = tokio::task::spawn_blocking(move || verify(&password, &hash))
                .await
                .unwrap_or(false);
            if !good {
                return Err(refused("bad-credentials"));
            }
            self.remember(key);
        }
        let user = user.to_string();
        if !self.forward {
            ctx.headers.remove(AUTHORIZATION);
        }
        Ok(Outcome::Authenticated(Principal {
            method: "basic",
            subject: Some(user.clone()),
            consumer: Some(user),
            ..Principal::default()
        }))
    }

    fn remembered(&self, key: &[u8; 32]) -> bool {
        let Ok(verified) = self.verified.lock() else {
            return false;
        };
        verified.get(key).is_some_and(|at| at.elapsed() < REMEMBER)
    }

    fn remember(&self, key: [u8; 32]) {
        if let Ok(mut verified) = self.verified.lock() {
            if verified.len() >= REMEMBER_MAX {
                verified.clear();
            }
            verified.insert(key, Instant::now());
        }
    }
}

impl Method for BasicAuth {
    fn authenticate<'a, 'r: 'a>(&'a self, ctx: &'a mut RequestContext<'r>) -> MethodFuture<'a> {
        Box::pin(self.check(ctx))
    }

    fn challenge_scheme(&self) -> Option<&'static str> {
        Some("Basic")
    }
}

/// Checks `password` against an htpasswd hash: bcrypt, or `{SHA}` (SHA-1,
/// base64) which old files still hold.
fn verify(password: &str, hash: &str) -> bool {
    if let Some(sha) = hash.strip_prefix("{SHA}") {
        use subtle::ConstantTimeEq;
        let Ok(expected) = base64::engine::general_purpose::STANDARD.decode(sha) else {
            return false;
        };
        let actual = sha1_digest(password.as_bytes());
        return bool::from(actual.as_slice().ct_eq(&expected));
    }
    bcrypt::verify(password, hash).unwrap_or(false)
}

fn sha1_digest(data: &[u8]) -> [u8; 20] {
    use sha1::Digest as _;
    sha1::Sha1::digest(data).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::tests::context;
    use tollgate_snapshot::Redacted;

    fn auth() -> BasicAuth {
        let hash = bcrypt::hash("pa:ss", 4).unwrap();
        let sha = base64::engine::general_purpose::STANDARD.encode(sha1_digest(b"old"));
        BasicAuth::build(&BasicConfig {
            htpasswd: Redacted::new(format!("alice:{hash}\nbob:{{SHA}}{sha}\nnot a line\n")),
            forward_credential: false,
        })
    }

    fn header(user_pass: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(user_pass)
        )
    }

    #[tokio::test]
    async fn good_credentials_pass_and_are_removed() {
        let auth = auth();
        for _ in 0..2 {
            let mut ctx = context(&[("authorization", &header("alice:pa:ss"))], None);
            let Ok(Outcome::Authenticated(p)) = auth.check(&mut ctx).await else {
                panic!("alice refused");
            };
            assert_eq!(p.consumer.as_deref(), Some("alice"));
            assert!(ctx.headers.get(AUTHORIZATION).is_none());
        }
        let mut ctx = context(&[("authorization", &header("bob:old"))], None);
        assert!(matches!(
            auth.check(&mut ctx).await,
            Ok(Outcome::Authenticated(_))
        ));
    }

    #[tokio::test]
    async fn bad_credentials_are_refused_with_a_challenge() {
        let auth = auth();
        for bad in [
            header("alice:wrong"),
            header("mallory:x"),
            header("nocolon"),
            "Basic !!!".into(),
        ] {
            let mut ctx = context(&[("authorization", &bad)], None);
            match auth.check(&mut ctx).await {
                Err(ProxyError::Unauthenticated {
                    challenge: Some(c), ..
                }) => {
                    assert!(
                        c.to_str()
                            .unwrap()
                            .starts_with("Basic realm=\"api.example\"")
                    );
                }
                other => panic!("{bad}: {:?}", other.map(|_| ())),
            }
        }
        let mut ctx = context(&[("authorization", "Bearer x")], None);
        assert!(matches!(
            auth.check(&mut ctx).await,
            Ok(Outcome::NoCredential)
        ));
    }
}
