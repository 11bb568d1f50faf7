//! The labels of what served a request, looked up in the runtime when
//! they are written (a metric series bound for the first time, a sampled
//! span, a log line), never copied per request.

use super::{Exchange, shared_str};
use crate::telemetry::labels::{self, RouteLabels, SCHEMES, push_opt};
use opentelemetry::{KeyValue, Value};

impl Exchange {
    /// The labels of the rule that took the request.
    pub(super) fn route_labels(&self) -> Option<&RouteLabels> {
        let route = self.routed.as_ref()?.route;
        Some(&self.settings.as_ref()?.route(route as usize)?.labels)
    }

    /// The `tollgate.listener` label of the listener that took the request.
    pub(super) fn listener_label(&self) -> Option<&Value> {
        let routed = self.routed.as_ref()?;
        let socket = self.settings.as_ref()?.socket(&routed.local)?;
        socket.listener_labels.get(routed.listener as usize)
    }

    /// The label of the backend of the last upstream attempt.
    pub(super) fn backend_label(&self) -> Option<&Value> {
        let backend = self.upstream.as_ref()?.backend;
        self.settings.as_ref()?.backend_label(backend)
    }

    /// `http.request.method`, from the closed set.
    pub(super) fn method_attribute(&self) -> KeyValue {
        let methods = &labels::METHODS;
        let method = methods[usize::from(self.method_index) % methods.len()];
        KeyValue::new("http.request.method", method)
    }

    /// The request's metric attributes (also the base of its span's).
    pub(super) fn metric_attributes(&self) -> Vec<KeyValue> {
        let mut attrs = Vec::with_capacity(10);
        attrs.push(self.method_attribute());
        attrs.push(KeyValue::new(
            "url.scheme",
            SCHEMES[usize::from(self.scheme_index) % SCHEMES.len()],
        ));
        // Absent when no response was sent (the client went away first).
        if self.status != 0 {
            attrs.push(KeyValue::new(
                "http.response.status_code",
                i64::from(self.status),
            ));
        }
        attrs.push(KeyValue::new(
            "network.protocol.version",
            labels::protocol_version(self.version),
        ));
        if let Some(t) = self.telemetry() {
            attrs.push(KeyValue::new("tollgate.gateway", t.gateway.clone()));
        }
        if let Some(error) = self.error {
            attrs.push(KeyValue::new("error.type", error));
        }
        if let Some(r) = &self.routed {
            attrs.push(KeyValue::new("http.route", shared_str(&r.template)));
            if let Some(labels) = self.route_labels() {
                attrs.push(KeyValue::new("tollgate.route", labels.route.clone()));
            }
            push_opt(&mut attrs, "tollgate.listener", self.listener_label());
        }
        if let Some(call) = &self.grpc {
            call.push_metric_attributes(&mut attrs);
        }
        attrs
    }
}
