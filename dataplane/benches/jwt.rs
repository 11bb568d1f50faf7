//! JWT verification time with warm keys: RS256 (RSA-2048) and ES256
//! (P-256), one verification each (parse, algorithm, signature, claims),
//! as the auth stage runs it for every request carrying a token. The
//! key set holds both keys, so the `kid` lookup is part of the time.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "../src/auth/test_keys.rs"]
mod test_keys;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use std::hint::black_box;
use test_keys::{TestKey, jwks, now};
use tollgate_dataplane::auth::TokenVerifier;
use tollgate_snapshot::{JwksSource, JwtProvider};

fn verify(c: &mut Criterion) {
    let (rsa, ec) = (TestKey::rsa("rsa"), TestKey::ec("ec"));
    let document = jwks(&[&rsa, &ec]);
    let provider = JwtProvider {
        name: "bench".into(),
        issuer: Some("https://issuer.example".into()),
        audiences: vec!["api".into()],
        algorithms: vec![],
        jwks: JwksSource::Inline {
            jwks: document.clone(),
        },
        extract_from: vec![],
        claim_to_headers: vec![],
        forward_token: false,
        clock_skew_seconds: 30,
    };
    let verifier = TokenVerifier::new(&provider, &document).unwrap();
    let t = now();
    let claims = json!({"iss": "https://issuer.example", "aud": "api", "sub": "alice",
                        "exp": t + 3600, "scope": "read write"});
    let mut group = c.benchmark_group("jwt_verify");
    for key in [&rsa, &ec] {
        let token = key.sign(&claims);
        assert_eq!(verifier.verify(&token, t), Ok(()));
        group.bench_function(key.alg(), |b| {
            b.iter(|| verifier.verify(black_box(&token), t))
        });
    }
    group.finish();
}

criterion_group!(benches, verify);
criterion_main!(benches);
