//! The Kubernetes provider and AuthPolicies: the policies are watched, and
//! the Secrets they name or pick by label are fetched, and no others.

#![allow(clippy::unwrap_used)]

use crate::kube_provider::{Provider, secret, server_with_crds, setup};
use serde_json::json;

const GW_GROUP: &str = "gateway.networking.k8s.io";

/// AuthPolicies are watched, and the Secrets they name or select by label
/// are fetched in full (only those); a Secret labelled later joins the
/// view, since a selector can pick any Secret.
#[tokio::test]
async fn auth_policy_secrets_by_name_and_label_are_fetched() {
    let server = server_with_crds(&[]).await;
    setup(&server);
    let labelled = |name: &str| {
        let mut s = secret("app", name, "MQ==");
        s["metadata"]["labels"] = json!({"tollgate.dev/api-keys": "true"});
        s
    };
    for object in [
        secret("app", "named", "MQ=="),
        secret("app", "unrelated", "MQ=="),
        labelled("team-a"),
        json!({"apiVersion": "tollgate.dev/v1alpha1", "kind": "AuthPolicy",
               "metadata": {"namespace": "app", "name": "p"},
               "spec": {"targetRefs": [{"group": GW_GROUP, "kind": "Gateway", "name": "gw"}],
                        "apiKeyAuth": {"credentialRefs": [{"name": "named"}],
                                       "selector": {"matchLabels": {"tollgate.dev/api-keys": "true"}}}}}),
    ] {
        server.create(object).unwrap();
    }
    let mut provider = Provider::start(&server).await;
    let view = provider
        .until("the policy and its secrets", |r| {
            r.auth_policies.contains_key("app/p") && r.secrets.len() == 2
        })
        .await;
    assert_eq!(
        view.secrets.keys().collect::<Vec<_>>(),
        ["app/named", "app/team-a"]
    );
    server.create(labelled("team-b")).unwrap();
    provider
        .until("the newly labelled secret", |r| {
            r.secrets.contains_key("app/team-b")
        })
        .await;
}
