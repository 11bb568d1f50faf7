//! Authorization: allow or deny an authenticated (or anonymous) request by
//! JWT provider, scopes and claims, consumer, client address, method and
//! path.
//!
//! Rules are checked in order and the first whose conditions all hold
//! decides; with none matching, the default action does. Paths are the
//! normalized request path (the pipeline's first stage resolved `%61`,
//! `//` and `..`), compared element by element like `PathPrefix`, so
//! `/admin` covers `/admin/x` but not `/administrator`.

use super::super::proxy::parse_net;
use crate::context::{Principal, RequestContext};
use ipnet::IpNet;
use serde_json::Value;
use tollgate_snapshot::{Authorization, AuthzAction, AuthzRule, ClaimMatch, JwtPrincipal};

/// The built rules.
#[derive(Debug)]
pub(crate) struct Authorizer {
    default_allow: bool,
    rules: Vec<Rule>,
}

#[derive(Debug)]
struct Rule {
    name: String,
    allow: bool,
    jwt: Option<JwtPrincipal>,
    consumers: Vec<String>,
    cidrs: Vec<IpNet>,
    methods: Vec<String>,
    prefixes: Vec<String>,
    /// A CIDR did not parse: the rule can never match (compile reported it).
    broken: bool,
}

impl Authorizer {
    /// Builds the rules.
    pub(crate) fn build(config: &Authorization) -> Authorizer {
        let rules = config
            .rules
            .iter()
            .enumerate()
            .map(|(i, rule)| Rule::build(i, rule))
            .collect();
        Authorizer {
            default_allow: config.default_action == AuthzAction::Allow,
            rules,
        }
    }

    /// Whether some rule (or the default) could allow a request with no
    /// principal: then a missing credential is left to the rules.
    pub(crate) fn may_allow_anonymous(&self) -> bool {
        self.default_allow
            || self
                .rules
                .iter()
                .any(|r| r.allow && r.jwt.is_none() && r.consumers.is_empty())
    }

    /// `Ok` to allow; `Err` with the deciding rule's name (or `default`).
    pub(crate) fn check(&self, ctx: &RequestContext<'_>) -> Result<(), String> {
        for rule in &self.rules {
            if rule.matches(ctx) {
                return if rule.allow {
                    Ok(())
                } else {
                    Err(rule.name.clone())
                };
            }
        }
        if self.default_allow {
            Ok(())
        } else {
            Err("default".into())
        }
    }
}

impl Rule {
    fn build(index: usize, rule: &AuthzRule) -> Rule {
        let cidrs: Vec<Option<IpNet>> = rule.client_cidrs.iter().map(|c| parse_net(c)).collect();
        Rule {
            name: rule.name.clone().unwrap_or_else(|| format!("rule-{index}")),
            allow: rule.action == AuthzAction::Allow,
            jwt: rule.jwt.clone(),
            consumers: rule.consumers.clone(),
            broken: cidrs.iter().any(Option::is_none),
            cidrs: cidrs.into_iter().flatten().collect(),
            methods: rule.methods.clone(),
            prefixes: rule.path_prefixes.clone(),
        }
    }

    fn matches(&self, ctx: &RequestContext<'_>) -> bool {
        if self.broken {
            return false;
        }
        let principal = ctx.principal.as_ref();
        (self.jwt.is_none() || principal.is_some_and(|p| jwt_holds(self.jwt.as_ref(), p)))
            && (self.consumers.is_empty()
                || principal
                    .and_then(|p| p.consumer.as_deref().or(p.subject.as_deref()))
                    .is_some_and(|c| self.consumers.iter().any(|x| x == c)))
            && (self.cidrs.is_empty() || self.cidrs.iter().any(|n| n.contains(&ctx.client)))
            && (self.methods.is_empty() || self.methods.iter().any(|m| m == ctx.method.as_str()))
            && (self.prefixes.is_empty() || self.prefixes.iter().any(|p| under(&ctx.path, p)))
    }
}

fn jwt_holds(jwt: Option<&JwtPrincipal>, principal: &Principal) -> bool {
    let Some(jwt) = jwt else { return true };
    if !matches!(principal.method, "jwt" | "oidc" | "introspection") {
        return false;
    }
    if let Some(provider) = &jwt.provider
        && principal.provider.as_deref() != Some(provider.as_str())
    {
        return false;
    }
    jwt.scopes.iter().all(|s| principal.scopes.contains(s))
        && jwt.claims.iter().all(|c| claim_holds(c, principal))
}

fn claim_holds(condition: &ClaimMatch, principal: &Principal) -> bool {
    let value = principal.claim(&condition.name);
    let accepted = |s: &str| condition.values.iter().any(|v| v == s);
    match value {
        Some(Value::String(s)) => accepted(s),
        Some(Value::Array(items)) => items.iter().any(|i| i.as_str().is_some_and(accepted)),
        Some(Value::Bool(b)) => accepted(if *b { "true" } else { "false" }),
        Some(Value::Number(n)) => accepted(&n.to_string()),
        _ => false,
    }
}

/// Whether `path` is `prefix` or below it, element by element.
pub(crate) fn under(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    if prefix.is_empty() {
        return true;
    }
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::tests::context;
    use std::sync::Arc;

    fn rule(action: AuthzAction) -> AuthzRule {
        AuthzRule {
            name: None,
            action,
            jwt: None,
            consumers: vec![],
            client_cidrs: vec![],
            methods: vec![],
            path_prefixes: vec![],
        }
    }

    fn jwt_principal(scopes: &[&str], claims: Value) -> Principal {
        Principal {
            method: "jwt",
            provider: Some(Arc::from("example")),
            subject: Some("u1".into()),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            claims: claims.as_object().cloned().map(Arc::new),
            ..Principal::default()
        }
    }

    /// The example: read scope via JWT, or consumer `ci`; deny else.
    #[test]
    fn scopes_consumers_and_default_deny() {
        let authz = Authorizer::build(&Authorization {
            default_action: AuthzAction::Deny,
            rules: vec![
                AuthzRule {
                    jwt: Some(JwtPrincipal {
                        provider: Some("example".into()),
                        scopes: vec!["read".into()],
                        claims: vec![ClaimMatch {
                            name: "org.team".into(),
                            values: vec!["a".into()],
                        }],
                    }),
                    ..rule(AuthzAction::Allow)
                },
                AuthzRule {
                    consumers: vec!["ci".into()],
                    ..rule(AuthzAction::Allow)
                },
            ],
        });
        assert!(!authz.may_allow_anonymous());
        let mut ctx = context(&[], None);
        assert!(authz.check(&ctx).is_err());
        ctx.principal = Some(jwt_principal(
            &["read", "write"],
            serde_json::json!({"org": {"team": ["b", "a"]}}),
        ));
        assert!(authz.check(&ctx).is_ok());
        ctx.principal = Some(jwt_principal(
            &["write"],
            serde_json::json!({"org": {"team": "a"}}),
        ));
        assert_eq!(authz.check(&ctx), Err("default".into()));
        ctx.principal = Some(jwt_principal(
            &["read"],
            serde_json::json!({"org": {"team": "b"}}),
        ));
        assert!(authz.check(&ctx).is_err());
        ctx.principal = Some(Principal {
            method: "api-key",
            consumer: Some("ci".into()),
            ..Principal::default()
        });
        assert!(authz.check(&ctx).is_ok());
    }

    /// Path prefixes are element-wise; CIDR and method conditions.
    #[test]
    fn paths_methods_and_addresses() {
        let authz = Authorizer::build(&Authorization {
            default_action: AuthzAction::Allow,
            rules: vec![
                AuthzRule {
                    name: Some("office".into()),
                    client_cidrs: vec!["10.0.0.0/8".into()],
                    path_prefixes: vec!["/admin/".into()],
                    ..rule(AuthzAction::Allow)
                },
                AuthzRule {
                    name: Some("no-admin".into()),
                    path_prefixes: vec!["/admin".into()],
                    ..rule(AuthzAction::Deny)
                },
                AuthzRule {
                    name: Some("read-only".into()),
                    methods: vec!["DELETE".into()],
                    ..rule(AuthzAction::Deny)
                },
            ],
        });
        assert!(authz.may_allow_anonymous());
        let mut ctx = context(&[], None);
        ctx.path = "/admin/users".into();
        assert_eq!(authz.check(&ctx), Err("no-admin".into()));
        ctx.client = "10.1.2.3".parse().unwrap();
        assert!(authz.check(&ctx).is_ok());
        ctx.client = "192.0.2.1".parse().unwrap();
        ctx.path = "/administrator".into();
        assert!(authz.check(&ctx).is_ok());
        ctx.method = http::Method::DELETE;
        assert_eq!(authz.check(&ctx), Err("read-only".into()));
    }
}
