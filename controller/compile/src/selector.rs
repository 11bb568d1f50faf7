//! Label selectors over Namespaces, for listener `allowedRoutes.namespaces`
//! with `from: Selector`.
//!
//! Kubernetes labels every Namespace with `kubernetes.io/metadata.name`; the
//! label is added here too, so selectors on it work when Namespaces come
//! from a folder of manifests that does not declare them.

use crate::resources::Resources;
use gateway_api::experimental::gateways::GatewayListenersAllowedRoutesNamespacesSelector as Selector;
use std::collections::BTreeMap;

/// The labels of namespace `ns`, including `kubernetes.io/metadata.name`.
pub(crate) fn namespace_labels(resources: &Resources, ns: &str) -> BTreeMap<String, String> {
    let mut labels = resources
        .namespaces
        .get(ns)
        .and_then(|n| n.metadata.labels.clone())
        .unwrap_or_default();
    labels.insert("kubernetes.io/metadata.name".to_string(), ns.to_string());
    labels
}

/// Whether `labels` satisfy `selector` (every `matchLabels` pair and every
/// `matchExpressions` requirement). An unknown operator selects nothing, as
/// the API server would reject it.
pub(crate) fn selects(selector: &Selector, labels: &BTreeMap<String, String>) -> bool {
    let labels_ok = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let exprs_ok = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or_default();
        let value = labels.get(&e.key);
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    });
    labels_ok && exprs_ok
}

/// Whether `labels` satisfy a core `LabelSelector` (same rules as
/// `selects`; a selector that cannot be read selects nothing). For
/// AuthPolicy `apiKeyAuth.selector`, in compile and in the provider that
/// fetches the Secrets it picks.
pub fn label_selector_matches(
    selector: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
    labels: &BTreeMap<String, String>,
) -> bool {
    // The Gateway API selector has the same shape as the core one.
    serde_json::to_value(selector)
        .and_then(serde_json::from_value::<Selector>)
        .is_ok_and(|s| selects(&s, labels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_api::experimental::gateways::GatewayListenersAllowedRoutesNamespacesSelectorMatchExpressions as Expr;

    fn expr(key: &str, op: &str, values: &[&str]) -> Expr {
        Expr {
            key: key.into(),
            operator: op.into(),
            values: Some(values.iter().map(|v| v.to_string()).collect()),
        }
    }

    /// All `matchLabels` and all `matchExpressions` must hold.
    #[test]
    fn selector_table() {
        let labels: BTreeMap<String, String> = [("team".to_string(), "a".to_string())]
            .into_iter()
            .collect();
        let by_label = |k: &str, v: &str| Selector {
            match_labels: Some([(k.to_string(), v.to_string())].into_iter().collect()),
            match_expressions: None,
        };
        let by_expr = |e: Expr| Selector {
            match_labels: None,
            match_expressions: Some(vec![e]),
        };
        assert!(selects(&by_label("team", "a"), &labels));
        assert!(!selects(&by_label("team", "b"), &labels));
        assert!(selects(&by_expr(expr("team", "In", &["a", "b"])), &labels));
        assert!(!selects(&by_expr(expr("team", "NotIn", &["a"])), &labels));
        assert!(selects(&by_expr(expr("env", "NotIn", &["prod"])), &labels));
        assert!(selects(&by_expr(expr("team", "Exists", &[])), &labels));
        assert!(selects(&by_expr(expr("env", "DoesNotExist", &[])), &labels));
        assert!(!selects(&by_expr(expr("team", "Bogus", &[])), &labels));
        assert!(selects(&Selector::default(), &labels));
    }
}
