//! The AuthPolicy manifest from the documentation (docs/policies.md)
//! decodes as written, and unknown sections stay errors only at the API
//! server (the Rust types ignore them, like every kube type).

#![allow(clippy::unwrap_used)]

use tollgate_crds::AuthPolicy;
use tollgate_crds::authorization::AuthorizationAction;

const EXAMPLE: &str = r#"
apiVersion: tollgate.dev/v1alpha1
kind: AuthPolicy
metadata: {name: api, namespace: default}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: api}]
  jwt:
    providers:
    - name: example
      issuer: https://issuer.example
      audiences: [api]
      remoteJWKS: {uri: "http://127.0.0.1:9000/jwks.json"}
      claimToHeaders: [{claim: sub, header: x-jwt-sub}]
  apiKeyAuth:
    credentialRefs: [{kind: Secret, name: api-keys}]   # key: consumer name, value: the key
    extractFrom: [{headers: [x-api-key]}]
  authorization:
    defaultAction: Deny
    rules:
    - action: Allow
      principal: {jwt: {provider: example, scopes: [read]}}
    - action: Allow
      principal: {consumers: [ci]}
"#;

/// The sections under `spec` are the defaults; nothing lands in overrides.
#[test]
fn the_documented_example_decodes() {
    let policy: AuthPolicy = serde_yaml::from_str(EXAMPLE).unwrap();
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
