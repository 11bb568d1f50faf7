//! Merging AuthPolicy sections: each section of a rule's effective
//! configuration comes whole from one policy (the first candidate, in
//! precedence order, that sets it), never a blend of two, so what a rule
//! enforces is always what one author wrote for that section.

use crate::auth_policies::CompiledPolicy;
use tollgate_snapshot::{AuthConfig, Authorization, AuthzAction, Backend, CallTarget, JwksSource};

/// `AuthConfig` that refuses every request, for rules whose policy is
/// invalid.
pub(crate) fn deny_all(sources: Vec<String>) -> AuthConfig {
    AuthConfig {
        sources,
        authorization: Some(Authorization {
            default_action: AuthzAction::Deny,
            rules: Vec::new(),
        }),
        ..AuthConfig::default()
    }
}

/// The merged sections and what they drew on.
pub(crate) struct Merged {
    /// The sections.
    pub(crate) config: AuthConfig,
    /// Services of their calls (`CallTarget::backend`).
    pub(crate) backends: Vec<Backend>,
    /// Sources of the policies a section was taken from.
    pub(crate) used: Vec<String>,
}

/// Whether a configuration sets each section, in the order `section`
/// numbers them.
const SECTIONS: [fn(&AuthConfig) -> bool; 7] = [
    |c| c.jwt.is_some(),
    |c| c.oidc.is_some(),
    |c| c.introspection.is_some(),
    |c| c.api_keys.is_some(),
    |c| c.basic.is_some(),
    |c| !c.ext_auth.is_empty(),
    |c| c.authorization.is_some(),
];

/// The sources of the candidates `merge` would take a section from.
pub(crate) fn contributors<'a>(candidates: &[(&'a CompiledPolicy, &AuthConfig)]) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for has in &SECTIONS {
        if let Some((policy, _)) = candidates.iter().find(|(_, c)| has(c))
            && !out.contains(&policy.source.as_str())
        {
            out.push(&policy.source);
        }
    }
    out
}

/// Takes each section from the first candidate that sets it, moving its
/// call targets' backends into one table.
pub(crate) fn merge(candidates: &[(&CompiledPolicy, &AuthConfig)]) -> Merged {
    let mut out = Merged {
        config: AuthConfig::default(),
        backends: Vec::new(),
        used: Vec::new(),
    };
    for (i, has) in SECTIONS.iter().enumerate() {
        let Some((policy, config)) = candidates.iter().find(|(_, c)| has(c)) else {
            continue;
        };
        let mut fragment = section(config, i);
        let backends = &mut out.backends;
        remap_targets(&mut fragment, &mut |local| {
            let b = policy.backends.get(local)?;
            Some(match backends.iter().position(|x| x.name == b.name) {
                Some(j) => j,
                None => {
                    backends.push(b.clone());
                    backends.len() - 1
                }
            })
        });
        absorb(&mut out.config, fragment);
        if !out.used.contains(&policy.source) {
            out.used.push(policy.source.clone());
        }
    }
    out
}

/// Section `i` (in `merge`'s order) of `config`, alone.
fn section(config: &AuthConfig, i: usize) -> AuthConfig {
    let mut out = AuthConfig::default();
    match i {
        0 => out.jwt = config.jwt.clone(),
        1 => out.oidc = config.oidc.clone(),
        2 => out.introspection = config.introspection.clone(),
        3 => out.api_keys = config.api_keys.clone(),
        4 => out.basic = config.basic.clone(),
        5 => out.ext_auth = config.ext_auth.clone(),
        _ => out.authorization = config.authorization.clone(),
    }
    out
}

/// Moves every section `fragment` sets into `into`.
fn absorb(into: &mut AuthConfig, fragment: AuthConfig) {
    into.jwt = fragment.jwt.or(into.jwt.take());
    into.oidc = fragment.oidc.or(into.oidc.take());
    into.introspection = fragment.introspection.or(into.introspection.take());
    into.api_keys = fragment.api_keys.or(into.api_keys.take());
    into.basic = fragment.basic.or(into.basic.take());
    into.ext_auth.extend(fragment.ext_auth);
    into.authorization = fragment.authorization.or(into.authorization.take());
}

/// Rewrites every `CallTarget::backend` of `config` through `map`.
pub(crate) fn remap_targets(config: &mut AuthConfig, map: &mut dyn FnMut(usize) -> Option<usize>) {
    let mut fix = |t: &mut CallTarget| t.backend = t.backend.and_then(&mut *map);
    let fix_jwks = |j: &mut JwksSource, fix: &mut dyn FnMut(&mut CallTarget)| {
        if let JwksSource::Remote { target, .. } = j {
            fix(target);
        }
    };
    if let Some(jwt) = &mut config.jwt {
        for p in &mut jwt.providers {
            fix_jwks(&mut p.jwks, &mut fix);
        }
    }
    if let Some(oidc) = &mut config.oidc {
        fix(&mut oidc.token_endpoint);
        fix_jwks(&mut oidc.jwks, &mut fix);
    }
    if let Some(i) = &mut config.introspection {
        fix(&mut i.endpoint);
    }
    for e in &mut config.ext_auth {
        fix(&mut e.target);
    }
}
