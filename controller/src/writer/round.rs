//! One writing round: what a leadership term remembers, and how a round
//! uses it to touch only what changed.

use super::compare::{is_ours, without_nulls, without_times};
use super::error::WriteError;
use super::finalizer::sync_finalizers;
use super::handle::StatusWriter;
use super::kinds::{Key, Kind, Mode};
use super::write::{Outcome, Target, write_status};
use futures_util::StreamExt;
use kube::Client;
use kube::api::ListParams;
use opentelemetry::KeyValue;
use opentelemetry::trace::SpanContext;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tollgate_compile::ObjectStatus;
use tollgate_telemetry::WorkSpan;
use tracing::warn;

/// Objects written at the same time.
const CONCURRENCY: usize = 8;

/// What one leadership term knows about the API server.
#[derive(Debug, Default)]
pub(super) struct Term {
    /// The status (without times and nulls) each object is known to hold,
    /// with the desired value it was last found equal to: the same shared
    /// value again (a route status compile kept) needs no comparison.
    confirmed: BTreeMap<Key, (Value, Arc<Value>)>,
    /// Shared-list objects known to carry an entry of Tollgate.
    ours: BTreeSet<Key>,
    /// Whether `ours` was filled from a list of all routes.
    discovered: bool,
    /// The classes and Gateways whose finalizers were last brought in line.
    finalized: Option<BTreeSet<Key>>,
}

impl Term {
    /// Forgets what objects hold, so the next round reads each once more.
    pub(super) fn forget_confirmed(&mut self) {
        self.confirmed.clear();
        self.finalized = None;
    }
}

/// One object to bring in line.
struct Job {
    key: Key,
    kind: Kind,
    desired: Arc<Value>,
    meaning: Value,
}

impl StatusWriter {
    /// Writes what changed since the term's last round; returns whether
    /// everything succeeded (else the round is retried later).
    pub(super) async fn round(
        &self,
        term: &mut Term,
        desired: &[ObjectStatus],
        cause: Option<&SpanContext>,
    ) -> bool {
        let mut ok = true;
        if !term.discovered {
            match discover(&self.client, &self.controller_name).await {
                Ok(found) => {
                    term.ours.extend(found);
                    term.discovered = true;
                }
                Err(error) => {
                    warn!(%error, "could not list routes carrying Tollgate's status");
                    ok = false;
                }
            }
        }
        let jobs = jobs(term, desired);
        let mut span = (!jobs.is_empty())
            .then(|| self.traces.root_span_linked("write status", cause))
            .flatten();
        let target = Target {
            client: &self.client,
            recorder: &self.recorder,
            controller: &self.controller_name,
        };
        let results: Vec<(Job, Result<Outcome, WriteError>)> = futures_util::stream::iter(jobs)
            .map(|job| {
                let target = &target;
                async move {
                    let (_, ns, name) = &job.key;
                    let r = write_status(target, job.kind, ns.as_deref(), name, &job.desired).await;
                    (job, r)
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let mut counts = BTreeMap::<&str, i64>::new();
        let objects = results.len();
        for (job, result) in results {
            let outcome = match &result {
                Ok(Outcome::Written) => Some("written"),
                Ok(_) => None,
                Err(WriteError::Conflicts(_)) => Some("conflict"),
                Err(_) => Some("error"),
            };
            if let Some(outcome) = outcome {
                self.metrics.status_written(job.kind.kind, outcome);
                *counts.entry(outcome).or_default() += 1;
            }
            ok &= record(term, job, result);
        }
        if let Some(span) = span.take() {
            self.end_round_span(span, objects, &counts);
        }
        ok & self.finalize(term, desired).await
    }

    /// Ends a round's span (see [`round_summary`]).
    fn end_round_span(&self, mut span: WorkSpan, objects: usize, counts: &BTreeMap<&str, i64>) {
        let (attributes, failure) = round_summary(objects, counts);
        for attribute in attributes {
            span.set(attribute);
        }
        if let Some(description) = failure {
            span.fail("status-write-failed", description);
        }
        span.end(&self.traces);
    }

    /// Brings the class finalizers in line when the set of classes and
    /// Gateways changed.
    async fn finalize(&self, term: &mut Term, desired: &[ObjectStatus]) -> bool {
        let scope: BTreeSet<Key> = desired
            .iter()
            .filter(|s| s.kind == "GatewayClass" || s.kind == "Gateway")
            .map(key_of)
            .collect();
        if term.finalized.as_ref() == Some(&scope) {
            return true;
        }
        let classes: BTreeSet<String> = scope
            .iter()
            .filter(|(kind, _, _)| kind == "GatewayClass")
            .map(|(_, _, name)| name.clone())
            .collect();
        match sync_finalizers(&self.client, &classes).await {
            Ok(()) => {
                term.finalized = Some(scope);
                true
            }
            Err(error) => {
                warn!(%error, "could not update GatewayClass finalizers");
                false
            }
        }
    }
}

/// What a round's span says: how many objects it looked at and what
/// became of their writes (by outcome, as `tollgate.controller.status.writes`
/// counts them), and, when writes failed (they are retried later), why
/// the span is an error.
fn round_summary(objects: usize, counts: &BTreeMap<&str, i64>) -> (Vec<KeyValue>, Option<String>) {
    let count = |outcome| counts.get(outcome).copied().unwrap_or(0);
    let attributes = vec![
        KeyValue::new("tollgate.status.objects", objects as i64),
        KeyValue::new("tollgate.status.written", count("written")),
        KeyValue::new("tollgate.status.conflicts", count("conflict")),
        KeyValue::new("tollgate.status.errors", count("error")),
    ];
    let failed = count("conflict") + count("error");
    let failure =
        (failed > 0).then(|| format!("{failed} of {objects} status writes failed; retried later"));
    (attributes, failure)
}

/// The writes a round needs: every desired status not confirmed yet, and
/// an empty list of ours for every shared-list object no longer desired.
fn jobs(term: &mut Term, desired: &[ObjectStatus]) -> Vec<Job> {
    let mut jobs = Vec::new();
    let mut wanted = BTreeSet::new();
    for status in desired {
        let Some(kind) = Kind::find(&status.kind) else {
            continue;
        };
        let key = key_of(status);
        let confirmed = term.confirmed.get_mut(&key);
        if let Some((_, seen)) = &confirmed
            && Arc::ptr_eq(seen, &status.status)
        {
            wanted.insert(key);
            continue;
        }
        let meaning = without_times(&without_nulls(&status.status));
        if let Some((held, seen)) = confirmed
            && *held == meaning
        {
            *seen = Arc::clone(&status.status);
            wanted.insert(key);
            continue;
        }
        wanted.insert(key.clone());
        jobs.push(Job {
            key,
            kind,
            desired: Arc::clone(&status.status),
            meaning,
        });
    }
    term.confirmed.retain(|k, _| wanted.contains(k));
    for key in term.ours.iter().filter(|k| !wanted.contains(*k)) {
        let Some(kind) = Kind::find(&key.0) else {
            continue;
        };
        let Mode::SharedList(field) = kind.mode else {
            continue;
        };
        jobs.push(Job {
            key: key.clone(),
            kind,
            desired: Arc::new(json!({ field: [] })),
            meaning: Value::Null,
        });
    }
    jobs
}

/// Remembers the outcome of one job; returns whether it succeeded.
fn record(term: &mut Term, job: Job, result: Result<Outcome, WriteError>) -> bool {
    let stale = job.meaning.is_null();
    match result {
        Ok(Outcome::Gone) => {
            term.ours.remove(&job.key);
            term.confirmed.remove(&job.key);
            true
        }
        Ok(_) if stale => {
            term.ours.remove(&job.key);
            true
        }
        Ok(_) => {
            if matches!(job.kind.mode, Mode::SharedList(_)) {
                term.ours.insert(job.key.clone());
            }
            term.confirmed.insert(job.key, (job.meaning, job.desired));
            true
        }
        Err(error) => {
            let (kind, ns, name) = &job.key;
            warn!(kind, namespace = ns.as_deref(), name, %error, "status write failed; will retry");
            false
        }
    }
}

fn key_of(status: &ObjectStatus) -> Key {
    (
        status.kind.clone(),
        status.namespace.clone(),
        status.name.clone(),
    )
}

/// Every shared-list object (routes, policies) that carries an entry of
/// `controller`. Kinds whose CRD is not installed are skipped.
async fn discover(client: &Client, controller: &str) -> Result<BTreeSet<Key>, WriteError> {
    let mut found = BTreeSet::new();
    for kind in Kind::shared() {
        let Mode::SharedList(field) = kind.mode else {
            continue;
        };
        let list = match kind.api_all(client).list(&ListParams::default()).await {
            Ok(list) => list,
            Err(kube::Error::Api(s)) if s.code == 404 => continue,
            Err(e) => return Err(e.into()),
        };
        for object in list.items {
            let carries = object
                .data
                .get("status")
                .and_then(|s| s.get(field))
                .and_then(Value::as_array)
                .is_some_and(|entries| entries.iter().any(|e| is_ours(e, controller)));
            if carries && let Some(name) = object.metadata.name {
                found.insert((kind.kind.to_string(), object.metadata.namespace, name));
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A round's span counts each outcome; failures make it an error that
    /// says how many of how many.
    #[test]
    fn a_round_summary_counts_and_fails() {
        let value = |attrs: &[KeyValue], key: &str| {
            tollgate_telemetry::attribute(attrs, key).map(|v| v.to_string())
        };
        let clean = BTreeMap::from([("written", 3)]);
        let (attrs, failure) = round_summary(5, &clean);
        assert_eq!(
            value(&attrs, "tollgate.status.objects").as_deref(),
            Some("5")
        );
        assert_eq!(
            value(&attrs, "tollgate.status.written").as_deref(),
            Some("3")
        );
        assert_eq!(
            value(&attrs, "tollgate.status.errors").as_deref(),
            Some("0")
        );
        assert_eq!(failure, None);
        let failed = BTreeMap::from([("written", 1), ("conflict", 1), ("error", 2)]);
        let (attrs, failure) = round_summary(4, &failed);
        assert_eq!(
            value(&attrs, "tollgate.status.conflicts").as_deref(),
            Some("1")
        );
        assert_eq!(
            failure.as_deref(),
            Some("3 of 4 status writes failed; retried later")
        );
    }
}
