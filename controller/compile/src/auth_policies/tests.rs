//! Table tests of GEP-713 precedence: which level's policy supplies each
//! section of a rule's effective auth.

use super::*;
use serde_json::json;

/// A policy named `name` on `target` (`(kind, name, section)`) whose
/// `authorization` (under `spec`, or `spec.overrides` when `overrides`)
/// holds one rule named after the policy, so the winner is readable.
fn policy(name: &str, target: (&str, &str, Option<&str>), overrides: bool) -> serde_json::Value {
    let (kind, target_name, section) = target;
    let authorization = json!({"authorization": {"rules": [{"name": name, "action": "Allow"}]}});
    let mut spec =
        json!({"targetRefs": [{"group": GATEWAY_GROUP, "kind": kind, "name": target_name}]});
    if let Some(section) = section {
        spec["targetRefs"][0]["sectionName"] = json!(section);
    }
    if overrides {
        spec["overrides"] = authorization;
    } else if let (Some(spec), Some(a)) = (spec.as_object_mut(), authorization.as_object()) {
        spec.extend(a.clone());
    }
    json!({"apiVersion": "tollgate.dev/v1alpha1", "kind": "AuthPolicy",
           "metadata": {"namespace": "ns", "name": name}, "spec": spec})
}

const GATEWAY: (&str, &str, Option<&str>) = ("Gateway", "gw", None);
const LISTENER: (&str, &str, Option<&str>) = ("Gateway", "gw", Some("http"));
const ROUTE: (&str, &str, Option<&str>) = ("HTTPRoute", "r", None);
const RULE: (&str, &str, Option<&str>) = ("HTTPRoute", "r", Some("admin"));

/// The authorization winner for rule `admin` of `ns/r` on listener `http`
/// of `ns/gw`, and the sources.
fn winner(policies: Vec<serde_json::Value>) -> (Option<String>, Vec<String>) {
    let mut resources = Resources::default();
    for p in policies {
        resources
            .insert_document(p)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let at = RuleAt {
        gateway: "ns/gw",
        listener: Some("http"),
        route: "ns/r",
        rule: Some("admin"),
    };
    let policies = AuthPolicies::compile(&resources);
    let winners = policies.winners(&at);
    let effective = policies.effective_of(&winners);
    let sources = effective.as_ref().map(|e| e.config.sources.clone());
    assert_eq!(sources.unwrap_or_default(), policies.sources_of(&winners));
    match effective {
        None => (None, Vec::new()),
        Some(e) => {
            let rules = e.config.authorization.map(|a| a.rules).unwrap_or_default();
            let name = rules.first().and_then(|r| r.name.clone());
            (name, e.config.sources)
        }
    }
}

/// The most specific default wins; a Gateway or listener override wins
/// over every default, the Gateway's over the listener's; a route's
/// overrides are ignored; sources list only contributing policies.
#[test]
fn precedence_table() {
    let cases: Vec<(&str, Vec<serde_json::Value>, Option<&str>)> = vec![
        ("nothing applies", vec![], None),
        (
            "gateway default alone",
            vec![policy("g", GATEWAY, false)],
            Some("g"),
        ),
        (
            "route beats gateway",
            vec![policy("g", GATEWAY, false), policy("r", ROUTE, false)],
            Some("r"),
        ),
        (
            "rule beats route and listener",
            vec![
                policy("l", LISTENER, false),
                policy("r", ROUTE, false),
                policy("x", RULE, false),
            ],
            Some("x"),
        ),
        (
            "listener beats gateway",
            vec![policy("g", GATEWAY, false), policy("l", LISTENER, false)],
            Some("l"),
        ),
        (
            "gateway override beats rule",
            vec![policy("g", GATEWAY, true), policy("x", RULE, false)],
            Some("g"),
        ),
        (
            "gateway override beats listener override",
            vec![policy("g", GATEWAY, true), policy("l", LISTENER, true)],
            Some("g"),
        ),
        (
            "a route's overrides are ignored",
            vec![policy("g", GATEWAY, false), policy("r", ROUTE, true)],
            Some("g"),
        ),
    ];
    for (name, policies, want) in cases {
        let (got, sources) = winner(policies);
        assert_eq!(got.as_deref(), want, "{name}");
        let want_sources: Vec<String> = want
            .map(|w| format!("authpolicy/ns/{w}"))
            .into_iter()
            .collect();
        assert_eq!(sources, want_sources, "{name}: sources");
    }
}

/// Only Gateways, HTTPRoutes and GRPCRoutes of the Gateway API group are
/// targets; GRPCRoute keys carry their kind so they never meet an HTTPRoute
/// of the same name.
#[test]
fn target_kinds() {
    let t = |group: &str, kind: &str, section: Option<&str>| PolicyTargetRef {
        group: group.into(),
        kind: kind.into(),
        name: "x".into(),
        section_name: section.map(Into::into),
    };
    assert_eq!(
        Target::of("ns", &t(GATEWAY_GROUP, "Gateway", None)),
        Ok(Target::Gateway("ns/x".into()))
    );
    assert_eq!(
        Target::of("ns", &t(GATEWAY_GROUP, "HTTPRoute", Some("a"))),
        Ok(Target::Rule("ns/x".into(), "a".into()))
    );
    assert!(Target::of("ns", &t("", "Service", None)).is_err());
    assert_eq!(
        Target::of("ns", &t(GATEWAY_GROUP, "GRPCRoute", None)),
        Ok(Target::Route("grpcroute:ns/x".into()))
    );
    assert!(Target::of("ns", &t(GATEWAY_GROUP, "TCPRoute", None)).is_err());
}

/// Each invalid section makes the policy `Invalid` with a message naming
/// the field, so the author can find it.
#[test]
fn invalid_sections_name_their_field() {
    let cases = [
        (
            json!({"jwt": {"providers": [{"name": "a", "algorithms": ["none"],
                "remoteJWKS": {"uri": "https://i/jwks"}}]}}),
            "jwt.providers[0].algorithms",
        ),
        (
            json!({"jwt": {"providers": [{"name": "a", "algorithms": ["HS256"],
                "remoteJWKS": {"uri": "https://i/jwks"}}]}}),
            "\"HS256\" is not one of",
        ),
        (
            json!({"jwt": {"providers": [{"name": "a"}]}}),
            "set exactly one of remoteJWKS and localJWKS",
        ),
        (
            json!({"jwt": {"providers": [{"name": "a", "localJWKS": {"type": "Inline", "inline": "[]"}}]}}),
            "jwt.providers[0].localJWKS has no keys array",
        ),
        (
            json!({"jwt": {"providers": [{"name": "a", "remoteJWKS": {"uri": "issuer/jwks"}}]}}),
            "is not an absolute http or https URI",
        ),
        (
            json!({"basicAuth": {"users": {"name": "missing"}}}),
            "basicAuth.users: Secret ns/missing does not exist",
        ),
        (
            json!({"extAuth": {"timeout": "soon", "http": {"backendRefs": [{"name": "x", "port": 1}]}}}),
            "extAuth.timeout",
        ),
        (
            json!({"extAuth": {}}),
            "extAuth: set exactly one of http and grpc",
        ),
        (
            json!({"authorization": {"rules": [{"action": "Allow", "operation": {"paths": ["admin"]}}]}}),
            "operation.paths: \"admin\" does not start with /",
        ),
        (
            json!({"caCertificateRefs": [{"name": "missing"}]}),
            "caCertificateRefs: ConfigMap ns/missing does not exist",
        ),
    ];
    for (sections, want) in cases {
        let mut spec =
            json!({"targetRefs": [{"group": GATEWAY_GROUP, "kind": "Gateway", "name": "gw"}]});
        if let (Some(spec), Some(s)) = (spec.as_object_mut(), sections.as_object()) {
            spec.extend(s.clone());
        }
        let mut resources = Resources::default();
        resources
            .insert_document(
                json!({"apiVersion": "tollgate.dev/v1alpha1", "kind": "AuthPolicy",
                                    "metadata": {"namespace": "ns", "name": "p"}, "spec": spec}),
            )
            .unwrap_or_else(|e| panic!("{want}: {e}"));
        let policies = AuthPolicies::compile(&resources);
        let problem = policies.policies[0]
            .problem
            .as_ref()
            .map(|p| (p.reason, p.message.clone()));
        let (reason, message) = problem.unwrap_or_else(|| panic!("{want}: accepted"));
        assert_eq!(reason, "Invalid", "{want}");
        assert!(message.contains(want), "{message:?} lacks {want:?}");
    }
}
