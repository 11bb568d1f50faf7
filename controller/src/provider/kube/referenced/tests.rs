//! Table tests for the Secret and ConfigMap reference sets.

use super::*;
use serde_json::json;

fn set(items: &[(&str, &str)]) -> BTreeSet<NamespacedName> {
    items
        .iter()
        .map(|(ns, n)| (ns.to_string(), n.to_string()))
        .collect()
}

fn gateway(ns: &str, name: &str, spec: serde_json::Value) -> serde_json::Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"namespace": ns, "name": name},
        "spec": spec,
    })
}

fn https(refs: serde_json::Value) -> serde_json::Value {
    json!({
        "gatewayClassName": "tollgate",
        "listeners": [{"name": "https", "port": 443, "protocol": "HTTPS",
                       "tls": {"mode": "Terminate", "certificateRefs": refs}}],
    })
}

struct Case {
    name: &'static str,
    docs: Vec<serde_json::Value>,
    secrets: &'static [(&'static str, &'static str)],
    config_maps: &'static [(&'static str, &'static str)],
}

/// A listener certificate reference names a Secret unless it says
/// otherwise, in the Gateway's namespace unless it names one; references to
/// other groups or kinds are not fetched; objects other than Gateways
/// reference nothing yet.
#[test]
fn listener_certificate_refs() {
    let cases = vec![
        Case {
            name: "no gateways, nothing referenced",
            docs: vec![json!({"apiVersion": "v1", "kind": "Secret",
                               "metadata": {"namespace": "a", "name": "unrelated"}})],
            secrets: &[],
            config_maps: &[],
        },
        Case {
            name: "kind and namespace default to Secret and the Gateway's namespace",
            docs: vec![gateway("a", "g", https(json!([{"name": "cert"}])))],
            secrets: &[("a", "cert")],
            config_maps: &[],
        },
        Case {
            name: "explicit core group and kind, other namespace",
            docs: vec![gateway(
                "a",
                "g",
                https(
                    json!([{"group": "", "kind": "Secret", "name": "c", "namespace": "certs"},
                             {"group": "core", "kind": "Secret", "name": "d"}]),
                ),
            )],
            secrets: &[("a", "d"), ("certs", "c")],
            config_maps: &[],
        },
        Case {
            name: "other groups and kinds are not Secrets",
            docs: vec![gateway(
                "a",
                "g",
                https(
                    json!([{"group": "example.com", "kind": "Secret", "name": "x"},
                             {"kind": "Certificate", "name": "y"}]),
                ),
            )],
            secrets: &[],
            config_maps: &[],
        },
        Case {
            name: "two gateways sharing a Secret name it once",
            docs: vec![
                gateway("a", "g1", https(json!([{"name": "cert"}]))),
                gateway(
                    "a",
                    "g2",
                    https(json!([{"name": "cert"}, {"name": "other"}])),
                ),
            ],
            secrets: &[("a", "cert"), ("a", "other")],
            config_maps: &[],
        },
    ];
    run(cases);
}

/// Gateway-level TLS: the backend client certificate is a Secret by
/// default; CA bundles for client validation name their kind, ConfigMap or
/// Secret, default and per port.
#[test]
fn gateway_tls_refs() {
    let spec = json!({
        "gatewayClassName": "tollgate",
        "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}],
        "tls": {
            "backend": {"clientCertificateRef": {"name": "client"}},
            "frontend": {
                "default": {"validation": {"caCertificateRefs": [
                    {"group": "", "kind": "ConfigMap", "name": "ca"},
                    {"group": "", "kind": "Secret", "name": "ca-secret", "namespace": "pki"},
                ]}},
                "perPort": [{"port": 443, "tls": {"validation": {"caCertificateRefs": [
                    {"group": "", "kind": "ConfigMap", "name": "ca-443", "namespace": "pki"},
                ]}}}],
            },
        },
    });
    let cases = vec![Case {
        name: "backend client certificate and CA bundles",
        docs: vec![gateway("a", "g", spec)],
        secrets: &[("a", "client"), ("pki", "ca-secret")],
        config_maps: &[("a", "ca"), ("pki", "ca-443")],
    }];
    run(cases);
}

/// A ListenerSet's listener certificates are Secrets in the ListenerSet's
/// namespace unless the reference names another, whether or not any
/// Gateway allows the ListenerSet (compile decides that).
#[test]
fn listener_set_certificate_refs() {
    let set = json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "ListenerSet",
        "metadata": {"namespace": "team-a", "name": "apps"},
        "spec": {
            "parentRef": {"name": "shared", "namespace": "infra"},
            "listeners": [
                {"name": "app", "port": 443, "protocol": "HTTPS",
                 "tls": {"certificateRefs": [{"name": "app-cert"},
                                             {"name": "shared", "namespace": "pki"},
                                             {"kind": "Certificate", "name": "not-a-secret"}]}},
                {"name": "http", "port": 80, "protocol": "HTTP"},
            ],
        },
    });
    run(vec![Case {
        name: "ListenerSet certificates in its own namespace",
        docs: vec![set],
        secrets: &[("pki", "shared"), ("team-a", "app-cert")],
        config_maps: &[],
    }]);
}

/// A BackendTLSPolicy's CA bundles are ConfigMaps in its own namespace;
/// a reference of another kind is not fetched.
#[test]
fn backend_tls_policy_ca_bundles() {
    let policy = json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "BackendTLSPolicy",
        "metadata": {"namespace": "apps", "name": "p"},
        "spec": {
            "targetRefs": [{"group": "", "kind": "Service", "name": "api"}],
            "validation": {
                "hostname": "api.example.com",
                "caCertificateRefs": [
                    {"group": "", "kind": "ConfigMap", "name": "ca"},
                    {"group": "", "kind": "Secret", "name": "not-fetched"},
                ],
            },
        },
    });
    run(vec![Case {
        name: "backend TLS policy",
        docs: vec![policy],
        secrets: &[],
        config_maps: &[("apps", "ca")],
    }]);
}

/// The revocation-list annotation names a Secret in the Gateway's
/// namespace, fetched like the CA references beside it.
#[test]
fn client_crl_annotation() {
    let mut gw = gateway("a", "g", https(json!([{"name": "cert"}])));
    gw["metadata"]["annotations"] = json!({"tollgate.dev/client-crl-secret": "crl"});
    run(vec![Case {
        name: "CRL Secret from the annotation",
        docs: vec![gw],
        secrets: &[("a", "cert"), ("a", "crl")],
        config_maps: &[],
    }]);
}

fn run(cases: Vec<Case>) {
    for case in cases {
        let mut resources = Resources::default();
        for doc in case.docs {
            resources.insert_document(doc).unwrap();
        }
        assert_eq!(
            referenced_secrets(&resources),
            set(case.secrets),
            "{}: secrets",
            case.name
        );
        assert_eq!(
            referenced_config_maps(&resources),
            set(case.config_maps),
            "{}: config maps",
            case.name
        );
    }
}

/// An AuthPolicy's Secrets (API keys, htpasswd, client secrets, cookie
/// key) and ConfigMaps (CA bundle, local JWKS by default) are fetched from
/// its own namespace, in defaults and overrides alike.
#[test]
fn auth_policy_refs() {
    let policy = json!({
        "apiVersion": "tollgate.dev/v1alpha1",
        "kind": "AuthPolicy",
        "metadata": {"namespace": "apps", "name": "p"},
        "spec": {
            "targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"}],
            "caCertificateRefs": [{"name": "corp-ca"}, {"kind": "Secret", "name": "ca-secret"}],
            "apiKeyAuth": {"credentialRefs": [{"name": "keys"}]},
            "basicAuth": {"users": {"name": "htpasswd"}},
            "jwt": {"providers": [{"name": "local", "localJWKS": {"type": "ValueRef", "valueRef": {"name": "jwks"}}}]},
            "overrides": {
                "introspection": {"uri": "https://idp/introspect", "clientID": "gw",
                                  "clientSecret": {"name": "idp-client"}},
                "oidc": {"provider": {"issuer": "https://idp", "authorizationEndpoint": "https://idp/auth",
                                      "tokenEndpoint": "https://idp/token", "jwksURI": "https://idp/jwks"},
                         "clientID": "gw", "clientSecret": {"name": "oidc-client"},
                         "cookieKeyRef": {"name": "cookie-key"}}
            }
        }
    });
    run(vec![Case {
        name: "AuthPolicy references",
        docs: vec![policy],
        secrets: &[
            ("apps", "ca-secret"),
            ("apps", "cookie-key"),
            ("apps", "htpasswd"),
            ("apps", "idp-client"),
            ("apps", "keys"),
            ("apps", "oidc-client"),
        ],
        config_maps: &[("apps", "corp-ca"), ("apps", "jwks")],
    }]);
}

/// Secrets an `apiKeyAuth.selector` picks, in the policy's namespace only.
#[test]
fn auth_policy_selected_secrets() {
    let mut resources = Resources::default();
    resources
        .insert_document(json!({
            "apiVersion": "tollgate.dev/v1alpha1",
            "kind": "AuthPolicy",
            "metadata": {"namespace": "apps", "name": "p"},
            "spec": {
                "targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"}],
                "apiKeyAuth": {"selector": {"matchLabels": {"tollgate.dev/api-keys": "true"}}}
            }
        }))
        .unwrap();
    assert!(selects_secrets(&resources));
    let yes: BTreeMap<String, String> =
        [("tollgate.dev/api-keys".to_string(), "true".to_string())].into();
    let no = BTreeMap::new();
    let candidates = [
        ("apps", "team-a", &yes),
        ("apps", "unrelated", &no),
        ("other", "team-b", &yes),
    ];
    assert_eq!(
        selected_secrets(&resources, candidates.into_iter()),
        set(&[("apps", "team-a")])
    );
}

/// A GatewayConfig's Redis password Secrets (master and sentinels) are
/// fetched from its own namespace; its CA bundle is a ConfigMap unless it
/// says Secret. Without them a Kubernetes-mode GatewayClass could never
/// accept a password-protected Redis.
#[test]
fn gateway_config_redis_refs() {
    let config = |name: &str, redis: serde_json::Value| {
        json!({"apiVersion": "tollgate.dev/v1alpha1", "kind": "GatewayConfig",
               "metadata": {"namespace": "infra", "name": name},
               "spec": {"rateLimit": {"redis": redis}}})
    };
    run(vec![
        Case {
            name: "sentinel mode with every reference",
            docs: vec![config(
                "sentinel",
                json!({"url": "rediss://s-0:26379", "mode": "Sentinel", "masterName": "m",
                       "caCertificateRef": {"name": "redis-ca"},
                       "passwordSecretRef": {"name": "redis-auth"},
                       "sentinelPasswordSecretRef": {"name": "sentinel-auth"}}),
            )],
            secrets: &[("infra", "redis-auth"), ("infra", "sentinel-auth")],
            config_maps: &[("infra", "redis-ca")],
        },
        Case {
            name: "a CA bundle kept in a Secret",
            docs: vec![config(
                "ca-secret",
                json!({"url": "rediss://r:6379",
                       "caCertificateRef": {"kind": "Secret", "name": "redis-ca"}}),
            )],
            secrets: &[("infra", "redis-ca")],
            config_maps: &[],
        },
        Case {
            name: "no Redis, no references",
            docs: vec![
                json!({"apiVersion": "tollgate.dev/v1alpha1", "kind": "GatewayConfig",
                              "metadata": {"namespace": "infra", "name": "plain"}, "spec": {}}),
            ],
            secrets: &[],
            config_maps: &[],
        },
    ]);
}
