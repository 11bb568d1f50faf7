//! Table tests for when a kind counts as listed and what it reports.

use super::*;
use ::kube::core::Status;
use k8s_openapi::api::core::v1::Service;
use serde_json::json;

/// One step of a kind's stream.
enum Step {
    Event(Box<Event<Service>>),
    NotFound,
    Forbidden,
}

fn svc(name: &str, port: u16) -> Service {
    serde_json::from_value(json!({"metadata": {"namespace": "a", "name": name},
                                  "spec": {"ports": [{"port": port}]}}))
    .unwrap()
}

fn api_error(code: u16, reason: &str) -> watcher::Error {
    let status = Status::failure("test", reason).with_code(code);
    watcher::Error::InitialListFailed(::kube::Error::Api(status.boxed()))
}

fn ev(e: Event<Service>) -> Step {
    Step::Event(Box::new(e))
}

/// A named sequence of steps, each with the signal it must produce.
type Case = (&'static str, Vec<(Step, Option<Signal>)>);

fn changed(keys: &[&str]) -> Option<Signal> {
    Some(Signal::Changed(
        Kind::Service,
        keys.iter().map(|k| k.to_string()).collect(),
    ))
}

/// A kind is ready at its first InitDone and reports nothing before; after
/// that, real changes are reported. Two "not found" answers in a row make a
/// kind ready and empty; any other error never does. A kind found later
/// reports its objects as changes.
#[test]
fn readiness_and_changes() {
    let ready = Some(Signal::Ready((Kind::Service, None)));
    let cases: Vec<Case> = vec![
        (
            "first list",
            vec![
                (ev(Event::Init), None),
                (ev(Event::InitApply(svc("s", 80))), None),
                (ev(Event::InitDone), ready.clone()),
                (ev(Event::Apply(svc("s", 81))), changed(&["a/s"])),
                (ev(Event::Apply(svc("s", 81))), None),
            ],
        ),
        (
            "missing CRD, installed later",
            vec![
                (Step::NotFound, None),
                (Step::NotFound, ready.clone()),
                (Step::NotFound, None),
                (ev(Event::Init), None),
                (ev(Event::InitApply(svc("s", 80))), None),
                (ev(Event::InitDone), changed(&["a/s"])),
            ],
        ),
        (
            "forbidden never counts as listed",
            vec![
                (Step::Forbidden, None),
                (Step::Forbidden, None),
                (Step::Forbidden, None),
                (ev(Event::Init), None),
                (ev(Event::InitDone), ready.clone()),
            ],
        ),
    ];
    for (name, steps) in cases {
        let mut state = KindState::new((Kind::Service, None), 2);
        for (i, (step, want)) in steps.into_iter().enumerate() {
            let got = match step {
                Step::Event(e) => state.on_event(&*e, crate::provider::kube::fingerprint::content),
                Step::NotFound => state.on_error(&api_error(404, "NotFound")),
                Step::Forbidden => state.on_error(&api_error(403, "Forbidden")),
            };
            assert_eq!(got, want, "{name}: step {i}");
        }
    }
}
