//! Writing one object's status, and the Events its new problems deserve.
//!
//! Every write starts from the live object, so what is written is always
//! "the desired status, merged with what is there", and nothing is written
//! when that equals what is there. Whole statuses are server-side applied
//! under Tollgate's field manager; shared lists are replaced with the
//! `resourceVersion` just read as precondition, and re-read and retried
//! when another writer got there first (409 Conflict).

use super::compare::{ref_field, shared_list, whole_status};
use super::error::WriteError;
use super::events::{event, new_problems};
use super::kinds::{Kind, Mode};
use kube::api::{DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::events::Recorder;
use kube::{Client, Resource};
use serde_json::{Value, json};
use tracing::{debug, warn};

/// The field manager of every status write.
pub const FIELD_MANAGER: &str = "tollgate.dev/gateway-controller";

/// Attempts of one read-modify-write before giving up until the next round.
const MAX_ATTEMPTS: usize = 5;

/// What writing one status did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The object already held it.
    Unchanged,
    /// The status was written.
    Written,
    /// The object does not exist (any more).
    Gone,
}

/// What a write needs besides the object.
pub(crate) struct Target<'a> {
    pub(crate) client: &'a Client,
    pub(crate) recorder: &'a Recorder,
    pub(crate) controller: &'a str,
}

/// Brings the status of `kind` `namespace/name` to `desired`.
///
/// For shared-list kinds `desired` holds only Tollgate's entries (an empty
/// list removes them all).
///
/// # Errors
///
/// API errors other than 404, and a shared list that kept conflicting.
pub(crate) async fn write_status(
    target: &Target<'_>,
    kind: Kind,
    namespace: Option<&str>,
    name: &str,
    desired: &Value,
) -> Result<Outcome, WriteError> {
    let api = kind.api(target.client, namespace);
    for _ in 0..MAX_ATTEMPTS {
        let Some(mut live) = api.get_opt(name).await? else {
            return Ok(Outcome::Gone);
        };
        let live_status = live.data.get("status").cloned();
        let Some(next) = next_status(target, kind, live_status.as_ref(), desired) else {
            return Ok(Outcome::Unchanged);
        };
        let result = match kind.mode {
            Mode::Apply => {
                let mut metadata = json!({ "name": name });
                if let Some(ns) = namespace {
                    metadata["namespace"] = ns.into();
                }
                let body = json!({
                    "apiVersion": kind.resource().api_version,
                    "kind": kind.kind,
                    "metadata": metadata,
                    "status": next,
                });
                let params = PatchParams::apply(FIELD_MANAGER).force();
                api.patch_status(name, &params, &Patch::Apply(&body)).await
            }
            Mode::SharedList(_) => {
                live.data["status"] = next.clone();
                let params = PostParams {
                    field_manager: Some(FIELD_MANAGER.to_string()),
                    ..PostParams::default()
                };
                api.replace_status(name, &params, &live).await
            }
        };
        match result {
            Ok(_) => {
                debug!(kind = kind.kind, namespace, name, "status written");
                publish_events(target, kind, &live, live_status.as_ref(), &next).await;
                return Ok(Outcome::Written);
            }
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(Outcome::Gone),
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(WriteError::Conflicts(MAX_ATTEMPTS))
}

/// The status to write given the live one, or `None` when it holds it.
fn next_status(
    target: &Target<'_>,
    kind: Kind,
    live: Option<&Value>,
    desired: &Value,
) -> Option<Value> {
    match kind.mode {
        Mode::Apply => whole_status(live, desired),
        Mode::SharedList(field) => {
            let list = |v: Option<&Value>| {
                v.and_then(|v| v.get(field))
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            };
            let entries = shared_list(
                &list(live),
                &list(Some(desired)),
                target.controller,
                ref_field(field),
            )?;
            let mut next = live.cloned().unwrap_or_else(|| json!({}));
            if !next.is_object() {
                next = json!({});
            }
            next[field] = Value::Array(entries);
            Some(next)
        }
    }
}

/// One Warning Event per problem `next` has that `live` did not.
async fn publish_events(
    target: &Target<'_>,
    kind: Kind,
    object: &DynamicObject,
    live: Option<&Value>,
    next: &Value,
) {
    let problems = new_problems(live, next, target.controller);
    if problems.is_empty() {
        return;
    }
    let reference = object.object_ref(&kind.resource());
    for problem in problems {
        if let Err(error) = target
            .recorder
            .publish(&event(&reference, &problem), &reference)
            .await
        {
            warn!(kind = kind.kind, name = ?reference.name, reason = %problem.reason, %error, "could not publish an Event");
        }
    }
}
