//! Kubernetes Events for mistakes a user must fix, one per transition.
//!
//! Conditions already say what is wrong, but only to someone who looks;
//! Events show up in `kubectl describe` and in alerting. They are derived
//! from the status being written: a problem (a condition whose reason names
//! a user error) that the object's live status did not have yet becomes one
//! Warning Event. A recompile that changes nothing writes nothing and so
//! emits nothing, and a new leader, comparing with the live status, does not
//! repeat what the previous one reported.

use super::compare::is_ours;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType};
use serde_json::Value;
use std::collections::BTreeSet;

/// Reasons that mean the user's manifest must change: unsupported values,
/// references that resolve to nothing or are not permitted, conflicts.
const PROBLEM_REASONS: &[&str] = &[
    "UnsupportedValue",
    "IncompatibleFilters",
    "BackendNotFound",
    "RefNotPermitted",
    "InvalidKind",
    "InvalidCertificateRef",
    "InvalidParameters",
    "HostnameConflict",
    "ProtocolConflict",
    "NotAllowedByListeners",
    "NoMatchingListenerHostname",
    "UnsupportedProtocol",
    "UnsupportedAddress",
    "AddressNotUsable",
];
/// Longest Event note the API server accepts.
const MAX_NOTE: usize = 1024;

/// One user error found in a status.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Problem {
    /// Where in the object: empty, `listener http`, `parent Gateway ns/gw`.
    pub(crate) scope: String,
    /// The condition reason.
    pub(crate) reason: String,
    /// The condition type.
    pub(crate) condition: String,
    /// The condition message: what is wrong.
    pub(crate) message: String,
}

/// Problems in `next` that `live` does not have (same scope, reason and
/// message), counting only the shared-list entries of `controller`.
pub(crate) fn new_problems(live: Option<&Value>, next: &Value, controller: &str) -> Vec<Problem> {
    let before = live.map(|l| problems(l, controller)).unwrap_or_default();
    problems(next, controller)
        .into_iter()
        .filter(|p| {
            !before
                .iter()
                .any(|b| (&b.scope, &b.reason, &b.message) == (&p.scope, &p.reason, &p.message))
        })
        .collect()
}

/// Every problem in a status, once per scope, reason and message.
fn problems(status: &Value, controller: &str) -> BTreeSet<Problem> {
    let mut out = BTreeSet::new();
    collect(&mut out, "", status.get("conditions"));
    for listener in items(status.get("listeners")) {
        let name = listener.get("name").and_then(Value::as_str).unwrap_or("?");
        collect(
            &mut out,
            &format!("listener {name}"),
            listener.get("conditions"),
        );
    }
    for (field, target) in [("parents", "parentRef"), ("ancestors", "ancestorRef")] {
        for entry in items(status.get(field)).filter(|e| is_ours(e, controller)) {
            let scope = describe_ref(entry.get(target));
            collect(&mut out, &scope, entry.get("conditions"));
        }
    }
    let mut seen = BTreeSet::new();
    out.retain(|p| seen.insert((p.scope.clone(), p.reason.clone(), p.message.clone())));
    out
}

fn items(value: Option<&Value>) -> impl Iterator<Item = &Value> {
    value.and_then(Value::as_array).into_iter().flatten()
}

fn collect(out: &mut BTreeSet<Problem>, scope: &str, conditions: Option<&Value>) {
    for c in items(conditions) {
        let field = |k: &str| {
            c.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let reason = field("reason");
        if PROBLEM_REASONS.contains(&reason.as_str()) {
            out.insert(Problem {
                scope: scope.to_string(),
                reason,
                condition: field("type"),
                message: field("message"),
            });
        }
    }
}

/// `parent Gateway ns/gw listener http` from a parentRef.
fn describe_ref(reference: Option<&Value>) -> String {
    let field = |k: &str| reference.and_then(|r| r.get(k)).and_then(Value::as_str);
    let mut out = format!("parent {}", field("kind").unwrap_or("Gateway"));
    match field("namespace") {
        Some(ns) => out.push_str(&format!(" {ns}/{}", field("name").unwrap_or("?"))),
        None => out.push_str(&format!(" {}", field("name").unwrap_or("?"))),
    }
    if let Some(section) = field("sectionName") {
        out.push_str(&format!(" listener {section}"));
    }
    out
}

/// The Warning Event for `problem` on the object `reference` names.
pub(crate) fn event(reference: &ObjectReference, problem: &Problem) -> Event {
    let object = match &reference.namespace {
        Some(ns) => format!("{ns}/{}", reference.name.as_deref().unwrap_or_default()),
        None => reference.name.clone().unwrap_or_default(),
    };
    let kind = reference.kind.as_deref().unwrap_or_default();
    let mut note = if problem.scope.is_empty() {
        format!("{kind} {object}: {}", problem.message)
    } else {
        format!("{kind} {object} ({}): {}", problem.scope, problem.message)
    };
    if note.len() > MAX_NOTE {
        let mut end = MAX_NOTE;
        while !note.is_char_boundary(end) {
            end -= 1;
        }
        note.truncate(end);
    }
    Event {
        type_: EventType::Warning,
        reason: problem.reason.clone(),
        note: Some(note),
        action: problem.condition.clone(),
        secondary: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const US: &str = "tollgate.dev/gateway-controller";

    fn route(entries: &[(&str, &str, &str, &str)]) -> Value {
        let parents: Vec<Value> = entries
            .iter()
            .map(|(gw, controller, reason, message)| {
                json!({"parentRef": {"name": gw, "namespace": "ns"}, "controllerName": controller,
                       "conditions": [
                           {"type": "Accepted", "status": "True", "reason": "Accepted", "message": "ok"},
                           {"type": "ResolvedRefs", "status": if *reason == "ResolvedRefs" { "True" } else { "False" },
                            "reason": reason, "message": message}]})
            })
            .collect();
        json!({ "parents": parents })
    }

    /// An Event is due when a problem appears or its message changes; not
    /// for a problem the live status already shows, not for healthy
    /// conditions, not for other controllers' entries.
    #[test]
    fn one_event_per_new_problem() {
        let missing = ("gw", US, "BackendNotFound", "Service ns/a does not exist");
        let healthy = ("gw", US, "ResolvedRefs", "ok");
        let cases: [(&str, Option<Value>, Value, &[&str]); 5] = [
            (
                "first sighting",
                None,
                route(&[missing]),
                &["BackendNotFound"],
            ),
            (
                "already shown",
                Some(route(&[missing])),
                route(&[missing]),
                &[],
            ),
            (
                "another Service now",
                Some(route(&[missing])),
                route(&[("gw", US, "BackendNotFound", "Service ns/b does not exist")]),
                &["BackendNotFound"],
            ),
            ("healthy", Some(route(&[missing])), route(&[healthy]), &[]),
            (
                "another controller's problem",
                None,
                route(&[("gw", "example.com/other", "RefNotPermitted", "no grant")]),
                &[],
            ),
        ];
        for (name, live, next, want) in cases {
            let got: Vec<String> = new_problems(live.as_ref(), &next, US)
                .into_iter()
                .map(|p| p.reason)
                .collect();
            assert_eq!(got, want, "{name}");
        }
    }

    /// The note names the object, where in it, and the condition's message.
    #[test]
    fn note_names_object_scope_and_fix() {
        let gateway = json!({"listeners": [{"name": "https", "conditions": [
            {"type": "ResolvedRefs", "status": "False", "reason": "RefNotPermitted",
             "message": "Secret other/cert needs a ReferenceGrant"}]}]});
        let problems = new_problems(None, &gateway, US);
        assert_eq!(problems.len(), 1);
        let reference = ObjectReference {
            kind: Some("Gateway".into()),
            namespace: Some("ns".into()),
            name: Some("gw".into()),
            ..ObjectReference::default()
        };
        let e = event(&reference, &problems[0]);
        assert_eq!(e.reason, "RefNotPermitted");
        assert_eq!(e.type_, EventType::Warning);
        assert_eq!(
            e.note.as_deref(),
            Some("Gateway ns/gw (listener https): Secret other/cert needs a ReferenceGrant")
        );
        let regex = json!({"parents": [{"parentRef": {"name": "gw", "sectionName": "http"}, "controllerName": US,
            "conditions": [{"type": "PartiallyInvalid", "status": "True", "reason": "UnsupportedValue", "message": "bad regex"}]}]});
        assert_eq!(
            new_problems(None, &regex, US)[0].scope,
            "parent Gateway gw listener http"
        );
    }
}
