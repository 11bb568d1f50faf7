//! The AuthPolicy manifest from the documentation (docs/policies.md,
//! `examples/auth/`) decodes as written.

#![allow(clippy::unwrap_used)]

use serde::Deserialize;
use tollgate_crds::AuthPolicy;
use tollgate_crds::authorization::AuthorizationAction;

/// The documented example (docs/policies.md): a Secret, then the policy.
const EXAMPLE: &str = include_str!("../../examples/auth/api-policy.yaml");

/// The sections under `spec` are the defaults; nothing lands in overrides.
#[test]
fn the_documented_example_decodes() {
    let policy: AuthPolicy = serde_yaml::Deserializer::from_str(EXAMPLE)
        .map(|doc| serde_yaml::Value::deserialize(doc).unwrap())
        .find(|doc| doc["kind"] == "AuthPolicy")
        .map(|doc| serde_yaml::from_value(doc).unwrap())
        .unwrap();
    let spec = &policy.spec;
    assert_eq!(spec.target_refs[0].kind, "HTTPRoute");
    let jwt = spec.sections.jwt.as_ref().unwrap();
    assert_eq!(
        jwt.providers[0].remote_jwks.as_ref().unwrap().uri,
        "http://127.0.0.1:9000/jwks.json"
    );
    let keys = spec.sections.api_key_auth.as_ref().unwrap();
    assert_eq!(keys.credential_refs.as_ref().unwrap()[0].name, "api-keys");
    let authz = spec.sections.authorization.as_ref().unwrap();
    assert_eq!(authz.default_action, Some(AuthorizationAction::Deny));
    assert_eq!(authz.rules.as_ref().unwrap().len(), 2);
    assert!(spec.overrides.is_none());
    assert_eq!(
        spec.sections.names(),
        ["jwt", "apiKeyAuth", "authorization"]
    );
}
