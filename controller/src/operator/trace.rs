//! One Gateway's provisioning pass, as its result and as a span.
//!
//! Every pass applies all of a Gateway's objects (server-side apply is a
//! no-op when nothing drifted), so the span shows the API server's latency
//! and refusals for the data plane's objects, as `write status` does for
//! statuses: `tollgate.gateway`, `tollgate.provision.objects` (desired),
//! `.applied`, `.deleted` and `.errors`. A pass whose configuration yields
//! no objects (a patch that breaks the Deployment) fails with `error.type`
//! `invalid-configuration`; one the API server refused, with `api-error`.
//! A pass that a compile's new view started links to that compile's span.

use opentelemetry::KeyValue;
use tollgate_telemetry::{TracesPipeline, WorkSpan};

/// What one pass over a Gateway's objects did.
#[derive(Debug, Default)]
pub(super) struct Pass {
    /// Objects desired.
    objects: usize,
    /// Objects applied.
    pub(super) applied: usize,
    /// Stale objects deleted.
    pub(super) deleted: usize,
    /// Writes that failed, as messages.
    pub(super) errors: Vec<String>,
    /// Why no objects could be made, when they could not.
    refused: Option<String>,
}

impl Pass {
    /// A pass over `objects` desired objects, nothing written yet.
    pub(super) fn new(objects: usize) -> Pass {
        Pass {
            objects,
            ..Pass::default()
        }
    }

    /// A pass that wrote nothing: the configuration yields no objects.
    pub(super) fn refused(why: String) -> Pass {
        Pass {
            refused: Some(why),
            ..Pass::default()
        }
    }

    /// Ends `span` (when traced) for Gateway `key` with what the pass did;
    /// the pass's result, every problem in one message.
    pub(super) fn end(
        self,
        span: Option<WorkSpan>,
        key: &str,
        traces: &TracesPipeline,
    ) -> Result<(), String> {
        let result = match (self.refused, self.errors.is_empty()) {
            (Some(why), _) => Err(("invalid-configuration", why)),
            (None, true) => Ok(()),
            (None, false) => Err(("api-error", self.errors.join("; "))),
        };
        if let Some(mut span) = span {
            span.set(KeyValue::new("tollgate.gateway", key.to_string()));
            let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
            span.set(KeyValue::new(
                "tollgate.provision.objects",
                count(self.objects),
            ));
            span.set(KeyValue::new(
                "tollgate.provision.applied",
                count(self.applied),
            ));
            span.set(KeyValue::new(
                "tollgate.provision.deleted",
                count(self.deleted),
            ));
            span.set(KeyValue::new(
                "tollgate.provision.errors",
                count(self.errors.len()),
            ));
            if let Err((error_type, message)) = &result {
                span.fail(error_type, message.clone());
            }
            span.end(traces);
        }
        result.map_err(|(_, message)| message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_telemetry::SamplerSpec;

    /// A pass's result: fine when every write went through; otherwise
    /// every problem in one message, or why no objects could be made.
    #[test]
    fn results() {
        let off = TracesPipeline::off(SamplerSpec::Ratio(1.0));
        let mut fine = Pass::new(2);
        fine.applied = 2;
        assert_eq!(fine.end(None, "ns/gw", &off), Ok(()));
        let mut failed = Pass::new(2);
        failed.errors = vec!["applying Service a: 422".into(), "deleting X b: 500".into()];
        assert_eq!(
            failed.end(None, "ns/gw", &off),
            Err("applying Service a: 422; deleting X b: 500".into())
        );
        let refused = Pass::refused("patches.deployment: invalid".into());
        assert_eq!(
            refused.end(None, "ns/gw", &off),
            Err("patches.deployment: invalid".into())
        );
    }
}
