//! Which signals leave the process, decided from the standard `OTEL_*`
//! variables, read once at start-up.
//!
//! A signal is exported over OTLP when its `OTEL_<SIGNAL>_EXPORTER` says
//! `otlp`, or when that variable is unset and an OTLP endpoint is
//! configured (`OTEL_EXPORTER_OTLP_ENDPOINT` or the signal's own
//! `OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT`); `none` turns it off. Unlike
//! the SDK default (export to `localhost:4318` always), nothing is sent
//! anywhere unless asked: a gateway must not log export errors forever
//! because no collector was ever meant to exist. `OTEL_SDK_DISABLED=true`
//! turns every signal's export off whatever else is set (the Prometheus
//! `/metrics` of the admin ports stays: it is the gateway's own endpoint,
//! not an export). Endpoint, headers, compression, service name and
//! resource attributes are read by the OpenTelemetry crates themselves,
//! as the specification names them. The protocol and the endpoint are
//! resolved here too, as the exporters resolve them, for
//! [`crate::export_tls`], which builds the transports (and reads the
//! timeouts and TLS files).

use crate::export_proxy::PROXY_VARIABLES;
use crate::resource::POD_VARIABLES;
use std::collections::BTreeMap;

/// The three OpenTelemetry signals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Signal {
    /// Spans.
    Traces,
    /// Instruments.
    Metrics,
    /// Log records (the access log).
    Logs,
}

impl Signal {
    /// The signal's name in variable names (`TRACES`).
    pub(crate) fn upper(self) -> &'static str {
        match self {
            Signal::Traces => "TRACES",
            Signal::Metrics => "METRICS",
            Signal::Logs => "LOGS",
        }
    }

    /// The signal's name as a metric label (`traces`).
    pub fn label(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Metrics => "metrics",
            Signal::Logs => "logs",
        }
    }
}

/// A snapshot of the environment's `OTEL_*` variables, of the proxy
/// variables the OTLP exporters follow
/// ([`crate::export_proxy::PROXY_VARIABLES`]), and of the pod's name and
/// namespace that name this instance ([`crate::resource::POD_VARIABLES`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OtelEnv {
    vars: BTreeMap<String, String>,
}

impl OtelEnv {
    /// The process's variables.
    pub fn from_process() -> OtelEnv {
        OtelEnv::from_pairs(std::env::vars())
    }

    /// Variables from `pairs` (tests); only `OTEL_*`, proxy and pod ones
    /// are kept.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> OtelEnv {
        OtelEnv {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .filter(|(k, _)| {
                    k.starts_with("OTEL_")
                        || PROXY_VARIABLES.contains(&k.as_str())
                        || POD_VARIABLES.contains(&k.as_str())
                })
                .collect(),
        }
    }

    /// A variable, when set and not blank.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// `OTEL_EXPORTER_OTLP_{SIGNAL}_{suffix}` when set, else
    /// `OTEL_EXPORTER_OTLP_{suffix}`, with the name of the one that was.
    pub(crate) fn for_signal(&self, signal: Signal, suffix: &str) -> Option<(String, &str)> {
        let own = format!("OTEL_EXPORTER_OTLP_{}_{suffix}", signal.upper());
        let general = format!("OTEL_EXPORTER_OTLP_{suffix}");
        [own, general]
            .into_iter()
            .find_map(|name| self.get(&name).map(|value| (name.clone(), value)))
    }

    /// Whether `signal` is exported over OTLP (see the module docs).
    pub fn exports(&self, signal: Signal) -> bool {
        if self
            .get("OTEL_SDK_DISABLED")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            return false;
        }
        let exporter = format!("OTEL_{}_EXPORTER", signal.upper());
        match self.get(&exporter).map(str::to_ascii_lowercase).as_deref() {
            Some(list) => list.split(',').any(|e| e.trim() == "otlp"),
            None => {
                let own = format!("OTEL_EXPORTER_OTLP_{}_ENDPOINT", signal.upper());
                self.get("OTEL_EXPORTER_OTLP_ENDPOINT").is_some() || self.get(&own).is_some()
            }
        }
    }

    /// The propagators `OTEL_PROPAGATORS` names (default `tracecontext`,
    /// `baggage`), lower-cased, in order.
    pub fn propagators(&self) -> Vec<String> {
        match self.get("OTEL_PROPAGATORS") {
            Some(list) => list
                .split(',')
                .map(|p| p.trim().to_ascii_lowercase())
                .filter(|p| !p.is_empty())
                .collect(),
            None => vec!["tracecontext".into(), "baggage".into()],
        }
    }
}

/// Which protocol a signal is exported with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transport {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP with binary protobuf.
    HttpProtobuf,
}

impl OtelEnv {
    /// The protocol `signal` is exported with: its own variable, then
    /// `OTEL_EXPORTER_OTLP_PROTOCOL`, else the exporter's default,
    /// HTTP/protobuf.
    pub(crate) fn transport(&self, signal: Signal) -> Transport {
        let own = format!("OTEL_EXPORTER_OTLP_{}_PROTOCOL", signal.upper());
        // An unknown value is passed over, as the exporter itself does.
        [own.as_str(), "OTEL_EXPORTER_OTLP_PROTOCOL"]
            .into_iter()
            .find_map(|name| match self.get(name)?.to_ascii_lowercase().as_str() {
                "grpc" => Some(Transport::Grpc),
                "http/protobuf" | "http/json" => Some(Transport::HttpProtobuf),
                _ => None,
            })
            .unwrap_or(Transport::HttpProtobuf)
    }

    /// The URL `signal`'s exporter sends to, as the exporter resolves it
    /// (its own variable, `OTEL_EXPORTER_OTLP_ENDPOINT`, the default
    /// `http://localhost:4318`, or `:4317` for gRPC; a scheme-less gRPC
    /// endpoint is TLS unless `..._INSECURE` says true). The HTTP signal
    /// path is left off: only the scheme and authority are read from it.
    pub(crate) fn endpoint(&self, signal: Signal, transport: Transport) -> String {
        let default = match transport {
            Transport::Grpc => "http://localhost:4317",
            Transport::HttpProtobuf => "http://localhost:4318",
        };
        let url = self
            .for_signal(signal, "ENDPOINT")
            .map_or(default, |(_, url)| url)
            .to_string();
        let has_scheme = url
            .split_once("://")
            .is_some_and(|(scheme, _)| !scheme.contains(['/', '?', '#']));
        if has_scheme || transport == Transport::HttpProtobuf {
            return url;
        }
        let insecure = self
            .for_signal(signal, "INSECURE")
            .is_some_and(|(_, v)| v.eq_ignore_ascii_case("true"));
        format!("{}://{url}", if insecure { "http" } else { "https" })
    }
}

/// Whether `url` is plain `http://`, which needs no TLS settings.
pub(crate) fn is_plain(url: &str) -> bool {
    url.get(..7)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("http://"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rule of the module docs, case by case.
    #[test]
    fn a_signal_is_exported_only_when_asked() {
        type Vars = &'static [(&'static str, &'static str)];
        let cases: &[(Vars, Signal, bool)] = &[
            (&[], Signal::Traces, false),
            (
                &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")],
                Signal::Traces,
                true,
            ),
            (
                &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")],
                Signal::Logs,
                true,
            ),
            (
                &[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c")],
                Signal::Traces,
                true,
            ),
            (
                &[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c")],
                Signal::Metrics,
                false,
            ),
            (
                &[
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"),
                    ("OTEL_METRICS_EXPORTER", "none"),
                ],
                Signal::Metrics,
                false,
            ),
            (&[("OTEL_TRACES_EXPORTER", "otlp")], Signal::Traces, true),
            (
                &[("OTEL_TRACES_EXPORTER", "console,OTLP")],
                Signal::Traces,
                true,
            ),
            (
                &[("OTEL_EXPORTER_OTLP_ENDPOINT", "  ")],
                Signal::Traces,
                false,
            ),
            (
                &[
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"),
                    ("OTEL_TRACES_EXPORTER", "otlp"),
                    ("OTEL_SDK_DISABLED", "TRUE"),
                ],
                Signal::Traces,
                false,
            ),
            (
                &[
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"),
                    ("OTEL_SDK_DISABLED", "false"),
                ],
                Signal::Logs,
                true,
            ),
        ];
        for (vars, signal, want) in cases {
            let env = OtelEnv::from_pairs(vars.iter().copied());
            assert_eq!(env.exports(*signal), *want, "{vars:?} {signal:?}");
        }
    }

    /// W3C trace context and baggage unless `OTEL_PROPAGATORS` says otherwise.
    #[test]
    fn propagators_default_to_w3c() {
        assert_eq!(
            OtelEnv::default().propagators(),
            ["tracecontext", "baggage"]
        );
        let env = OtelEnv::from_pairs([("OTEL_PROPAGATORS", "B3, tracecontext")]);
        assert_eq!(env.propagators(), ["b3", "tracecontext"]);
    }

    /// The endpoint as each exporter resolves it.
    #[test]
    fn endpoints_as_the_exporters_resolve_them() {
        let env = |pairs: &[(&str, &str)]| OtelEnv::from_pairs(pairs.iter().copied());
        let grpc = |pairs: &[(&str, &str)]| env(pairs).endpoint(Signal::Traces, Transport::Grpc);
        assert_eq!(grpc(&[]), "http://localhost:4317");
        assert_eq!(
            grpc(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317")]),
            "https://collector:4317"
        );
        assert_eq!(
            grpc(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317"),
                ("OTEL_EXPORTER_OTLP_TRACES_INSECURE", "true"),
            ]),
            "http://collector:4317"
        );
        let http = env(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://c/v1/traces")])
            .endpoint(Signal::Traces, Transport::HttpProtobuf);
        assert_eq!(http, "https://c/v1/traces");
    }
}
