//! What an exchange records about retries: the resend count of each
//! attempt's client span, and the `tollgate.upstream.retries` counter.
//!
//! The retry logic lives in `proxy::retry`; it names reasons and outcomes
//! as the small closed set of labels this counter takes, so the number of
//! series stays bounded by the number of routes.

use super::{Attempt, Exchange};
use opentelemetry::KeyValue;

impl Attempt {
    /// This attempt is the request sent again for the `resend_count`th time
    /// (`http.request.resend_count` on its client span).
    pub(crate) fn resent(mut self, resend_count: u32) -> Attempt {
        self.resend_count = resend_count;
        self
    }
}

impl Exchange {
    /// Counts one retry the rule's policy asked for: `reason` (`status`,
    /// `connect`, `timeout`) and what came of it (`retried`, or the reason
    /// it was not made).
    pub(crate) fn retry_decided(&self, reason: &'static str, outcome: &'static str) {
        let (Some(obs), Some(t)) = (&self.obs, self.telemetry()) else {
            return;
        };
        let mut attrs = vec![
            KeyValue::new("tollgate.gateway", t.gateway.clone()),
            KeyValue::new("tollgate.retry.reason", reason),
            KeyValue::new("tollgate.retry.outcome", outcome),
        ];
        if let Some(labels) = self.route_labels() {
            attrs.push(KeyValue::new("tollgate.route", labels.route.clone()));
            attrs.push(KeyValue::new("tollgate.rule", labels.rule));
        }
        obs.instruments.retries.add(1, &attrs);
    }
}
