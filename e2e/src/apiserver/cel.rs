//! `x-kubernetes-validations`: the CEL rules of each CRD version, compiled
//! when the CRD is written and evaluated on every write of its objects with
//! the `kube-cel` crate (the `cel` interpreter plus the Kubernetes CEL
//! libraries: `isURL`, `url()`, `quantity`, `ip`, string and list
//! extensions, `format.*`, ...), `self` bound to each node and `oldSelf` to
//! the stored value for transition rules.
//!
//! A rule the crate cannot evaluate (it does not parse, or it uses what the
//! crate lacks: `cel.bind`, `sortBy`, two-variable comprehensions,
//! `transformList`/`transformMap`) is not held against the object, but it is
//! never silently passed either: every such rule is recorded, found by a
//! scan when its CRD is written and whenever an evaluation reports an
//! unsupported reference, and [`ApiServer::unevaluable_rules`] lists them.
//!
//! [`ApiServer::unevaluable_rules`]: super::ApiServer::unevaluable_rules

use super::kinds::ResourceType;
use kube_cel::{ErrorKind, RootContext, Validator, compile_schema};
use regex::Regex;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, LazyLock};

/// A CRD rule the server cannot evaluate, and why.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct UnevaluableRule {
    /// `<plural>.<group>/<version>`.
    pub resource: String,
    /// Where the rule sits in the schema (`spec.listeners[*]`).
    pub path: String,
    /// The rule's CEL text.
    pub rule: String,
    /// Why it can't be evaluated.
    pub reason: String,
}

/// Constructs the `cel` crate (and so `kube-cel`) does not implement.
static UNSUPPORTED: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        (r"\bcel\.bind\(", "cel.bind is not implemented"),
        (r"\.sortBy\(", "sortBy is not implemented"),
        (
            r"\.transform(List|Map|MapEntry)\(",
            "transformList/transformMap are not implemented",
        ),
        (
            r"\.(all|exists|existsOne|exists_one)\(\s*\w+\s*,\s*\w+\s*,",
            "two-variable comprehensions are not implemented",
        ),
    ]
    .into_iter()
    .filter_map(|(re, why)| Regex::new(re).ok().map(|r| (r, why)))
    .collect()
});

/// Compiled rules of every served custom type, and what could not be evaluated.
#[derive(Debug, Default)]
pub(crate) struct Rules {
    validator: Option<Validator>,
    compiled: HashMap<(String, String, String), Arc<kube_cel::CompiledSchema>>,
    unevaluable: BTreeSet<UnevaluableRule>,
}

impl Rules {
    /// Compiles the rules of every version of `crd` (replacing older ones)
    /// and records those that cannot be evaluated.
    pub(crate) fn register(&mut self, types: &[ResourceType], crd: &Value) {
        let versions = crd.pointer("/spec/versions").and_then(Value::as_array);
        for rt in types {
            let schema = versions
                .into_iter()
                .flatten()
                .find(|v| v.get("name").and_then(Value::as_str) == Some(rt.version.as_str()))
                .and_then(|v| v.pointer("/schema/openAPIV3Schema"));
            let Some(schema) = schema else { continue };
            let resource = format!("{}/{}", rt.qualified(), rt.version);
            self.unevaluable.retain(|u| u.resource != resource);
            scan(schema, "", &resource, &mut self.unevaluable);
            let key = (rt.group.clone(), rt.version.clone(), rt.plural.clone());
            self.compiled.insert(key, Arc::new(compile_schema(schema)));
        }
    }

    /// Every rule recorded as unevaluable, sorted.
    pub(crate) fn unevaluable(&self) -> Vec<UnevaluableRule> {
        self.unevaluable.iter().cloned().collect()
    }

    /// Evaluates the rules of `rt` on `object` (`old`: the stored object of
    /// an update); returns the field errors of the rules that failed.
    pub(crate) fn check(
        &mut self,
        rt: &ResourceType,
        object: &Value,
        old: Option<&Value>,
    ) -> Vec<String> {
        let key = (rt.group.clone(), rt.version.clone(), rt.plural.clone());
        let Some(compiled) = self.compiled.get(&key).cloned() else {
            return Vec::new();
        };
        let validator = self.validator.get_or_insert_with(Validator::new);
        let root = RootContext {
            api_version: rt.api_version(),
            api_group: rt.group.clone(),
            kind: rt.kind.clone(),
        };
        let Err(failures) =
            validator.validate_compiled_with_context(&compiled, object, old, Some(&root))
        else {
            return Vec::new();
        };
        let mut errors = Vec::new();
        for failure in failures.into_vec() {
            match failure.kind {
                ErrorKind::ValidationFailure
                | ErrorKind::InvalidResult
                | ErrorKind::EvaluationError => {
                    let path = if failure.field_path.is_empty() {
                        "<root>"
                    } else {
                        &failure.field_path
                    };
                    errors.push(format!(
                        "{path}: Invalid value: \"object\": {}",
                        failure.message
                    ));
                }
                _ => {
                    let resource = format!("{}/{}", rt.qualified(), rt.version);
                    let known = self
                        .unevaluable
                        .iter()
                        .any(|u| u.resource == resource && u.rule == failure.rule);
                    if known {
                        continue;
                    }
                    self.unevaluable.insert(UnevaluableRule {
                        resource,
                        path: failure.field_path.clone(),
                        rule: failure.rule.clone(),
                        reason: failure.message.clone(),
                    });
                }
            }
        }
        errors
    }
}

/// Records the rules under `schema` that use what the crate lacks or do not parse.
fn scan(schema: &Value, path: &str, resource: &str, out: &mut BTreeSet<UnevaluableRule>) {
    let rules = schema
        .get("x-kubernetes-validations")
        .and_then(Value::as_array);
    for rule in rules.into_iter().flatten() {
        let text = rule.get("rule").and_then(Value::as_str).unwrap_or_default();
        let reason = UNSUPPORTED
            .iter()
            .find(|(re, _)| re.is_match(text))
            .map(|(_, why)| (*why).to_string())
            .or_else(|| {
                kube_cel::cel::Program::compile(text)
                    .err()
                    .map(|e| format!("does not parse: {e}"))
            });
        if let Some(reason) = reason {
            out.insert(UnevaluableRule {
                resource: resource.to_string(),
                path: path.to_string(),
                rule: text.to_string(),
                reason,
            });
        }
    }
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (key, child) in props {
            scan(child, &join(key), resource, out);
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(child) = schema.get(key).filter(|c| c.is_object()) {
            scan(child, &format!("{path}[*]"), resource, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Every function the Gateway API v1.6 CRD rules call evaluates
    /// (`exists_one`, `filter`, `duration`, `isIP`, `format.dns1123Label`,
    /// `split`, `substring`, ...), and a failing rule is a field error.
    #[test]
    fn gateway_api_rule_functions_evaluate() {
        let rule = |r: &str| json!({"rule": r, "message": format!("failed: {r}")});
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
            "x-kubernetes-validations": [
                rule("self.l.exists_one(x, x == 'a') && self.l.filter(x, x != 'a').size() == 1"),
                rule("self.l.all(x, x.matches('^[a-z]$')) && self.l.exists(x, x.startsWith('b'))"),
                rule("duration(self.d) >= duration('1s') && isIP(self.ip)"),
                rule("!format.dns1123Label().validate(self.name).hasValue()"),
                rule("self.k.split('/').size() == 2 && self.k.substring(0, 1) == 'x'"),
                rule("size(self.l) == 2 && self.name.endsWith('e') && self.name.contains('am')"),
            ],
            "properties": {"l": {"type": "array", "items": {"type": "string"}},
                "d": {"type": "string"}, "ip": {"type": "string"},
                "name": {"type": "string"}, "k": {"type": "string"}}}}});
        let crd = json!({"spec": {"group": "g.io", "names": {"plural": "things", "kind": "Thing"},
            "versions": [{"name": "v1", "schema": {"openAPIV3Schema": schema}}]}});
        let types = crate::apiserver::kinds::crd_types(&crd);
        let mut rules = Rules::default();
        rules.register(&types, &crd);
        let good = json!({"spec": {"l": ["a", "b"], "d": "2s", "ip": "10.0.0.1", "name": "name", "k": "x/y"}});
        assert_eq!(rules.check(&types[0], &good, None), Vec::<String>::new());
        assert!(rules.unevaluable().is_empty(), "{:?}", rules.unevaluable());
        let bad =
            json!({"spec": {"l": ["a", "a"], "d": "2s", "ip": "nope", "name": "Name", "k": "x/y"}});
        assert_eq!(rules.check(&types[0], &bad, None).len(), 4);
    }
}
