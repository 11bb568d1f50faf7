//! What an exchange records about who sent the request: the client address
//! the snapshot's trusted-proxy rule decided, the authenticated principal,
//! and why authentication or authorization refused it.
//!
//! Kept out of the common path: a rule without auth stages whose client is
//! its peer records nothing here. A refusal's reason goes to the span
//! (`tollgate.auth.reason`), the access log (`auth_reason`) and the
//! `tollgate.auth.refusals` counter, never to the response body.

use super::Exchange;
use crate::context::Principal;
use opentelemetry::KeyValue;
use std::net::IpAddr;

/// Who the request came from, as far as the stages found out.
#[derive(Debug, Default)]
pub(crate) struct Identity {
    /// The client, when it is not the connection's peer.
    pub(crate) client: Option<IpAddr>,
    /// The principal's name (consumer, else subject).
    pub(crate) user: Option<String>,
    /// How the principal was authenticated.
    pub(crate) method: Option<&'static str>,
    /// Why the request was refused.
    pub(crate) reason: Option<&'static str>,
    /// What the rate-limit stage decided.
    pub(crate) rate_limit: Option<&'static str>,
}

impl Exchange {
    /// Records the client address the pipeline decided and the principal
    /// its stages found.
    pub(crate) fn identified(&mut self, client: IpAddr, principal: Option<&Principal>) {
        let forwarded = self.peer.is_some_and(|p| p.ip() != client);
        // Only a span or a log line reads these: nothing is copied for a
        // request that writes neither.
        if !(self.tracing || self.logged) || (!forwarded && principal.is_none()) {
            return;
        }
        let identity = self.identity.get_or_insert_with(Box::default);
        identity.client = forwarded.then_some(client);
        if let Some(principal) = principal {
            identity.user = principal.name().map(str::to_string);
            identity.method = Some(principal.method);
        }
    }

    /// Records a refusal's reason and counts it.
    pub(crate) fn refused(&mut self, reason: &'static str, kind: &'static str) {
        self.identity.get_or_insert_with(Box::default).reason = Some(reason);
        let (Some(obs), Some(t)) = (&self.obs, self.telemetry()) else {
            return;
        };
        let mut attrs = vec![
            KeyValue::new("tollgate.gateway", t.gateway.clone()),
            KeyValue::new("tollgate.auth.reason", reason),
            KeyValue::new("error.type", kind),
        ];
        if let Some(labels) = self.route_labels() {
            attrs.push(KeyValue::new("tollgate.route", labels.route.clone()));
        }
        obs.instruments.auth_refusals.add(1, &attrs);
    }

    /// The client address to record: the decided one, else the peer's.
    pub(super) fn client_address(&self) -> Option<IpAddr> {
        self.identity
            .as_ref()
            .and_then(|i| i.client)
            .or_else(|| self.peer.map(|p| p.ip()))
    }

    /// The span attributes of the identity.
    pub(super) fn push_identity(&self, attrs: &mut Vec<KeyValue>) {
        let Some(identity) = &self.identity else {
            return;
        };
        if let Some(user) = &identity.user {
            attrs.push(KeyValue::new("user.id", user.clone()));
        }
        if let Some(method) = identity.method {
            attrs.push(KeyValue::new("tollgate.auth.method", method));
        }
        if let Some(reason) = identity.reason {
            attrs.push(KeyValue::new("tollgate.auth.reason", reason));
        }
        if let Some(decision) = identity.rate_limit {
            attrs.push(KeyValue::new("tollgate.ratelimit.decision", decision));
        }
    }
}

impl Exchange {
    /// Records what the rate-limit stage decided: on the span
    /// (`tollgate.ratelimit.decision`) and in `tollgate.ratelimit.decisions`.
    pub(crate) fn rate_limited(&mut self, decision: &'static str) {
        self.identity.get_or_insert_with(Box::default).rate_limit = Some(decision);
        let (Some(obs), Some(t)) = (&self.obs, self.telemetry()) else {
            return;
        };
        let mut attrs = vec![
            KeyValue::new("tollgate.gateway", t.gateway.clone()),
            KeyValue::new("tollgate.ratelimit.decision", decision),
        ];
        if let Some(labels) = self.route_labels() {
            attrs.push(KeyValue::new("tollgate.route", labels.route.clone()));
        }
        obs.instruments.rate_limit_decisions.add(1, &attrs);
    }
}
