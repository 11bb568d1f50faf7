//! One AuthPolicy's sections (`spec` or `spec.overrides`) compiled into the
//! snapshot's [`AuthConfig`] shape, with every reference resolved.
//!
//! The compiled value is a set of sections, not yet an effective
//! configuration: `auth_policies` picks each section from the level that
//! wins it. Only SHA-256 hashes of API keys are kept; htpasswd files,
//! client secrets and cookie keys travel as [`Redacted`].

use crate::auth_authz::{compile_authorization, compile_ext_auth, compile_introspection};
use crate::auth_refs::{PolicyRefs, invalid, secret_map};
use crate::conditions::Problem;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use tollgate_crds::AuthSections;
use tollgate_crds::auth_methods::{
    ApiKeyAuth, BasicAuth, Jwt, JwtExtractor, LocalJwks, LocalJwksType, Oidc,
};
use tollgate_snapshot::{
    ApiKey, ApiKeys, AuthConfig, BasicAuth as SnapshotBasic, ClaimToHeader, CredentialSource,
    JwksSource, Jwt as SnapshotJwt, JwtProvider, Oidc as SnapshotOidc, Redacted,
};

/// Timeout of JWKS and token calls, in milliseconds.
pub(crate) const CALL_TIMEOUT_MS: u64 = 5_000;
/// JWKS cache lifetime when the response names none, in seconds.
const JWKS_DEFAULT_TTL_SECONDS: u64 = 300;
/// Clock skew allowed on `exp`/`nbf` by default, in seconds.
const DEFAULT_CLOCK_SKEW_SECONDS: u64 = 30;
/// Signature algorithms a provider may allow: asymmetric only, so a
/// public key can never serve as an HMAC secret, and never `none`.
const ALGORITHMS: [&str; 9] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

/// Compiles `sections` of the policy `refs` resolves for; `source` names
/// the policy (`authpolicy/<ns>/<name>`).
///
/// # Errors
///
/// The first invalid section: a missing Secret or key, a bad URI, CIDR or
/// duration, or a provider named twice.
pub(crate) fn compile_sections(
    refs: &mut PolicyRefs<'_>,
    sections: &AuthSections,
    source: &str,
) -> Result<AuthConfig, Problem> {
    Ok(AuthConfig {
        sources: Vec::new(),
        jwt: sections
            .jwt
            .as_ref()
            .map(|j| compile_jwt(refs, j))
            .transpose()?,
        oidc: sections
            .oidc
            .as_ref()
            .map(|o| compile_oidc(refs, o))
            .transpose()?,
        introspection: sections
            .introspection
            .as_ref()
            .map(|i| compile_introspection(refs, i))
            .transpose()?,
        api_keys: sections
            .api_key_auth
            .as_ref()
            .map(|k| compile_api_keys(refs, k))
            .transpose()?,
        basic: sections
            .basic_auth
            .as_ref()
            .map(|b| compile_basic(refs, b))
            .transpose()?,
        ext_auth: sections
            .ext_auth
            .as_ref()
            .map(|e| compile_ext_auth(refs, e, source))
            .transpose()?
            .into_iter()
            .collect(),
        authorization: sections
            .authorization
            .as_ref()
            .map(compile_authorization)
            .transpose()?,
    })
}

fn compile_jwt(refs: &mut PolicyRefs<'_>, jwt: &Jwt) -> Result<SnapshotJwt, Problem> {
    let mut providers = Vec::new();
    for (i, p) in jwt.providers.iter().enumerate() {
        let field = format!("jwt.providers[{i}]");
        if jwt.providers[..i].iter().any(|q| q.name == p.name) {
            return Err(invalid(format!(
                "{field}: provider name {} is repeated",
                p.name
            )));
        }
        let algorithms = p.algorithms.iter().flatten();
        if let Some(a) = algorithms
            .clone()
            .find(|a| !ALGORITHMS.contains(&a.as_str()))
        {
            return Err(invalid(format!(
                "{field}.algorithms: {a:?} is not one of {}",
                ALGORITHMS.join(", ")
            )));
        }
        let jwks = match (&p.remote_jwks, &p.local_jwks) {
            (Some(remote), None) => JwksSource::Remote {
                target: refs.target(
                    &format!("{field}.remoteJWKS"),
                    &remote.uri,
                    remote.backend_refs.as_deref(),
                    CALL_TIMEOUT_MS,
                )?,
                default_ttl_seconds: remote
                    .cache_duration_seconds
                    .map_or(JWKS_DEFAULT_TTL_SECONDS, u64::from),
            },
            (None, Some(local)) => JwksSource::Inline {
                jwks: local_jwks(refs, &field, local)?,
            },
            _ => {
                return Err(invalid(format!(
                    "{field}: set exactly one of remoteJWKS and localJWKS"
                )));
            }
        };
        providers.push(JwtProvider {
            name: p.name.clone(),
            issuer: p.issuer.clone(),
            audiences: p.audiences.clone().unwrap_or_default(),
            algorithms: p.algorithms.clone().unwrap_or_default(),
            jwks,
            extract_from: p.extract_from.as_ref().map(jwt_sources).unwrap_or_default(),
            claim_to_headers: p
                .claim_to_headers
                .iter()
                .flatten()
                .map(|c| ClaimToHeader {
                    claim: c.claim.clone(),
                    header: c.header.to_ascii_lowercase(),
                })
                .collect(),
            forward_token: p.forward_access_token.unwrap_or(false),
            clock_skew_seconds: p
                .clock_skew_seconds
                .map_or(DEFAULT_CLOCK_SKEW_SECONDS, u64::from),
        });
    }
    Ok(SnapshotJwt {
        providers,
        optional: jwt.optional.unwrap_or(false),
    })
}

/// The JWKS document of `localJWKS`, checked to be a JSON object with a
/// `keys` array (the data plane needs one to build the provider).
fn local_jwks(refs: &PolicyRefs<'_>, field: &str, local: &LocalJwks) -> Result<String, Problem> {
    let field = format!("{field}.localJWKS");
    let jwks = match (local.type_, &local.inline, &local.value_ref) {
        (LocalJwksType::Inline, Some(text), _) => text.clone(),
        (LocalJwksType::ValueRef, _, Some(r)) => {
            refs.object_value(&field, r, "ConfigMap", "jwks")?
        }
        (t, _, _) => return Err(invalid(format!("{field}: type {t:?} needs its field set"))),
    };
    let parsed: serde_json::Value =
        serde_json::from_str(&jwks).map_err(|e| invalid(format!("{field} is not JSON: {e}")))?;
    if parsed.get("keys").is_some_and(serde_json::Value::is_array) {
        Ok(jwks)
    } else {
        Err(invalid(format!("{field} has no keys array")))
    }
}

fn jwt_sources(e: &JwtExtractor) -> Vec<CredentialSource> {
    let headers = e
        .headers
        .iter()
        .flatten()
        .map(|h| CredentialSource::Header {
            name: h.name.to_ascii_lowercase(),
            prefix: h.value_prefix.clone(),
        });
    let cookies = e
        .cookies
        .iter()
        .flatten()
        .map(|name| CredentialSource::Cookie { name: name.clone() });
    let params = e
        .params
        .iter()
        .flatten()
        .map(|name| CredentialSource::Query { name: name.clone() });
    headers.chain(cookies).chain(params).collect()
}

/// API keys of the named Secrets and of those the selector picks, each
/// Secret key a consumer; only the SHA-256 of each key is kept.
fn compile_api_keys(refs: &mut PolicyRefs<'_>, auth: &ApiKeyAuth) -> Result<ApiKeys, Problem> {
    let mut entries = Vec::new();
    for r in auth.credential_refs.iter().flatten() {
        entries.extend(refs.secret_entries("apiKeyAuth.credentialRefs", r)?);
    }
    if let Some(selector) = &auth.selector {
        entries.extend(refs.selected_secret_entries(selector));
    }
    if entries.is_empty() {
        return Err(invalid("apiKeyAuth: the Secrets hold no keys"));
    }
    let mut keys: Vec<ApiKey> = entries
        .into_iter()
        .map(|(consumer, key)| ApiKey {
            consumer,
            sha256: sha256_hex(key.trim()),
        })
        .collect();
    keys.sort_by(|a, b| (&a.consumer, &a.sha256).cmp(&(&b.consumer, &b.sha256)));
    keys.dedup();
    let extract_from = auth
        .extract_from
        .iter()
        .flatten()
        .flat_map(|e| {
            let headers = e
                .headers
                .iter()
                .flatten()
                .map(|h| CredentialSource::Header {
                    name: h.to_ascii_lowercase(),
                    prefix: None,
                });
            let params = e
                .params
                .iter()
                .flatten()
                .map(|name| CredentialSource::Query { name: name.clone() });
            let cookies = e
                .cookies
                .iter()
                .flatten()
                .map(|name| CredentialSource::Cookie { name: name.clone() });
            headers.chain(params).chain(cookies).collect::<Vec<_>>()
        })
        .collect();
    Ok(ApiKeys {
        keys,
        extract_from,
        forward_credential: auth.forward_credential.unwrap_or(false),
    })
}

/// Lowercase hex SHA-256 of `text`.
fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn compile_basic(refs: &mut PolicyRefs<'_>, basic: &BasicAuth) -> Result<SnapshotBasic, Problem> {
    let htpasswd = refs.secret_value("basicAuth.users", &basic.users, ".htpasswd")?;
    let bad_line = htpasswd
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .find(|l| {
            l.split_once(':')
                .is_none_or(|(user, hash)| user.is_empty() || hash.is_empty())
        });
    if let Some(line) = bad_line {
        let user = line.split(':').next().unwrap_or_default();
        return Err(invalid(format!(
            "basicAuth.users: .htpasswd line for {user:?} is not user:hash"
        )));
    }
    Ok(SnapshotBasic {
        htpasswd: Redacted::new(htpasswd),
        forward_credential: basic.forward_credential.unwrap_or(false),
    })
}

fn compile_oidc(refs: &mut PolicyRefs<'_>, oidc: &Oidc) -> Result<SnapshotOidc, Problem> {
    let p = &oidc.provider;
    let backend_refs = p.backend_refs.as_deref();
    let token_endpoint = refs.target(
        "oidc.provider.tokenEndpoint",
        &p.token_endpoint,
        backend_refs,
        CALL_TIMEOUT_MS,
    )?;
    let jwks = JwksSource::Remote {
        target: refs.target(
            "oidc.provider.jwksURI",
            &p.jwks_uri,
            backend_refs,
            CALL_TIMEOUT_MS,
        )?,
        default_ttl_seconds: JWKS_DEFAULT_TTL_SECONDS,
    };
    let client_secret =
        refs.secret_value("oidc.clientSecret", &oidc.client_secret, "client-secret")?;
    let cookie_key = refs.secret_value("oidc.cookieKeyRef", &oidc.cookie_key_ref, "cookie-key")?;
    let key_len = base64::engine::general_purpose::STANDARD
        .decode(cookie_key.trim())
        .map(|k| k.len());
    if key_len != Ok(32) {
        return Err(invalid(
            "oidc.cookieKeyRef: cookie-key must be 32 bytes, base64-encoded",
        ));
    }
    let mut scopes = vec!["openid".to_string()];
    for s in oidc.scopes.iter().flatten() {
        if !scopes.contains(s) {
            scopes.push(s.clone());
        }
    }
    Ok(SnapshotOidc {
        issuer: p.issuer.clone(),
        authorization_endpoint: p.authorization_endpoint.clone(),
        token_endpoint,
        jwks,
        end_session_endpoint: p.end_session_endpoint.clone(),
        client_id: oidc.client_id.clone(),
        client_secret: Redacted::new(client_secret.trim()),
        scopes,
        redirect_uri: oidc
            .redirect_url
            .clone()
            .unwrap_or_else(|| "/oauth2/callback".into()),
        logout_path: oidc.logout_path.clone().unwrap_or_else(|| "/logout".into()),
        cookie_key: Redacted::new(cookie_key.trim()),
        cookie_name: oidc
            .cookie_name
            .clone()
            .unwrap_or_else(|| "tollgate-session".into()),
    })
}

impl PolicyRefs<'_> {
    /// Keys of every Secret in the policy's namespace `selector` picks,
    /// sorted by Secret name.
    fn selected_secret_entries(
        &self,
        selector: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
    ) -> Vec<(String, String)> {
        let prefix = format!("{}/", self.namespace);
        self.resources()
            .secrets
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter(|(_, s)| {
                let labels = s.metadata.labels.clone().unwrap_or_default();
                crate::selector::label_selector_matches(selector, &labels)
            })
            .flat_map(|(_, s)| secret_map(s))
            .collect()
    }
}
