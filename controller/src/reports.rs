//! Data-plane reports: which snapshot each data plane says it applied.
//!
//! A Gateway is only `Programmed` once its configuration actually serves
//! traffic, which the controller cannot see by itself: publishing a snapshot
//! says nothing about whether a data plane built and swapped it. So every
//! data plane POSTs a [`Report`] after each apply (and every 10 s) to
//! `/v1/reports/{namespace}/{name}`, and [`apply_programmed`] holds the
//! Gateway's `Programmed` condition at `False`/`Pending` until a report's
//! content hash equals the hash the publisher holds for that Gateway.
//!
//! The snapshot stream response carries a `tollgate-report-path` header
//! naming the report endpoint ([`Reports::serve`] adds it), so a data plane
//! reports only to a controller that takes reports.

use crate::pki::authz::refusal;
use crate::publisher::{Published, Publisher};
use crate::serve::{Body, PeerIdentity, respond};
use crate::serving::ServingGate;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use tollgate_compile::ObjectStatus;

/// Header on the snapshot stream response naming where to POST reports.
pub const REPORT_PATH_HEADER: &str = "tollgate-report-path";
/// Largest report body accepted.
const MAX_REPORT_BYTES: usize = 64 * 1024;
/// The reason the Gateway API gives a Programmed condition still in progress.
const PENDING: &str = "Pending";
/// The reason of a Programmed condition whose snapshot a data plane refused.
const INVALID: &str = "Invalid";

/// What one data plane says it applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Version of the applied snapshot.
    pub version: u64,
    /// Content hash of the applied snapshot.
    pub hash: String,
    /// The reporting pod (or host) name.
    pub pod: String,
    /// Whether the data plane serves: snapshot applied, sockets bound, not draining.
    pub ready: bool,
    /// The last snapshot the data plane refused since its last apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected: Option<Rejection>,
}

/// A snapshot a data plane refused, and why (it keeps serving the
/// previous one).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rejection {
    /// Version of the refused snapshot.
    pub version: u64,
    /// The data plane's reason.
    pub reason: String,
}

/// The latest report of every data plane, per Gateway (`namespace/name`).
#[derive(Clone, Debug)]
pub struct Reports {
    inner: Arc<Mutex<BTreeMap<String, BTreeMap<String, Report>>>>,
    changed: watch::Sender<u64>,
    /// Open while this replica serves data planes (the leader, or a lone
    /// controller).
    pub gate: ServingGate,
}

impl Default for Reports {
    fn default() -> Self {
        Reports {
            inner: Arc::default(),
            changed: watch::channel(0).0,
            gate: ServingGate::default(),
        }
    }
}

impl Reports {
    /// Stores `report` as the latest of its pod for `gateway`; bumps the
    /// [`changed`](Self::changed) counter when it differs from the pod's
    /// previous report.
    pub fn record(&self, gateway: &str, report: Report) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let pods = inner.entry(gateway.to_string()).or_default();
        if pods.get(&report.pod) == Some(&report) {
            return;
        }
        pods.insert(report.pod.clone(), report);
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A counter that grows whenever a report changes what is known, so the
    /// compile loop can re-run [`apply_programmed`].
    pub fn changed(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The latest report of every pod of `gateway`, by pod name.
    pub fn of(&self, gateway: &str) -> BTreeMap<String, Report> {
        self.inner
            .lock()
            .ok()
            .and_then(|inner| inner.get(gateway).cloned())
            .unwrap_or_default()
    }

    /// Whether some data plane of `gateway` applied the snapshot with `hash`.
    pub fn applied(&self, gateway: &str, hash: &str) -> bool {
        self.inner.lock().is_ok_and(|inner| {
            inner
                .get(gateway)
                .is_some_and(|pods| pods.values().any(|r| r.hash == hash))
        })
    }

    /// A refusal of snapshot `version` of `gateway` by some data plane:
    /// the pod and its reason.
    pub fn rejected(&self, gateway: &str, version: u64) -> Option<(String, String)> {
        let inner = self.inner.lock().ok()?;
        inner.get(gateway)?.values().find_map(|r| {
            r.rejected
                .as_ref()
                .filter(|x| x.version == version)
                .map(|x| (r.pod.clone(), x.reason.clone()))
        })
    }

    /// Handles `POST /v1/reports/{namespace}/{name}` with a JSON [`Report`]:
    /// 204 when recorded, 400 for a bad path or body, 405 for another method.
    pub fn handle(&self, req: Request<Incoming>) -> impl Future<Output = Response<Body>> + use<> {
        let reports = self.clone();
        async move {
            let Some(gateway) = gateway_of(req.uri().path(), "/v1/reports/") else {
                return respond(
                    400,
                    "text/plain; charset=utf-8",
                    "expected POST /v1/reports/{namespace}/{name}\n",
                );
            };
            if req.method() != http::Method::POST {
                return respond(405, "text/plain; charset=utf-8", "use POST\n");
            }
            if let Some(refused) = refusal(req.extensions().get::<PeerIdentity>(), &gateway) {
                return refused;
            }
            let body = match Limited::new(req.into_body(), MAX_REPORT_BYTES)
                .collect()
                .await
            {
                Ok(body) => body.to_bytes(),
                Err(e) => return respond(400, "text/plain; charset=utf-8", format!("{e}\n")),
            };
            match serde_json::from_slice::<Report>(&body) {
                Ok(report) => {
                    reports.record(&gateway, report);
                    respond(204, "text/plain; charset=utf-8", "")
                }
                Err(e) => respond(400, "text/plain; charset=utf-8", format!("{e}\n")),
            }
        }
    }

    /// The whole snapshot server: reports go to [`handle`](Self::handle),
    /// everything else to [`Publisher::handle`], whose snapshot streams get
    /// the [`REPORT_PATH_HEADER`] so data planes know to report here.
    pub fn serve(
        &self,
        publisher: &Publisher,
        req: Request<Incoming>,
    ) -> impl Future<Output = Response<Body>> + use<> {
        let (report, stream) = if let Some(refused) = self.gate.refusal() {
            (None, Some(refused))
        } else if req.uri().path().starts_with("/v1/reports/") {
            (Some(self.handle(req)), None)
        } else if let Some(refused) = gateway_of(req.uri().path(), "/v1/snapshots/")
            .and_then(|g| refusal(req.extensions().get::<PeerIdentity>(), &g))
        {
            (None, Some(refused))
        } else {
            let mut response = publisher.handle(&req);
            advertise(&mut response, req.uri().path());
            (None, Some(self.gate.guard(response)))
        };
        async move {
            match (report, stream) {
                (Some(report), _) => report.await,
                (None, Some(response)) => response,
                (None, None) => respond(500, "text/plain; charset=utf-8", "no handler\n"),
            }
        }
    }
}

/// Names the report endpoint on a successful snapshot stream response.
fn advertise(response: &mut Response<Body>, path: &str) {
    if response.status().is_success()
        && let Some(gateway) = gateway_of(path, "/v1/snapshots/")
        && let Ok(value) = http::HeaderValue::from_str(&format!("/v1/reports/{gateway}"))
    {
        response.headers_mut().insert(REPORT_PATH_HEADER, value);
    }
}

/// `namespace/name` after `prefix` in `path`, if it has exactly that shape.
fn gateway_of(path: &str, prefix: &str) -> Option<String> {
    let rest = path.strip_prefix(prefix)?;
    let mut parts = rest.split('/');
    let (ns, name) = (parts.next()?, parts.next()?);
    (parts.next().is_none() && !ns.is_empty() && !name.is_empty()).then(|| rest.to_string())
}

/// Holds `Programmed` at `False`/`Pending` on every published Gateway whose
/// data planes have not reported applying its current snapshot, or at
/// `False`/`Invalid` with the data plane's reason when one reported
/// refusing it (it keeps serving the previous snapshot meanwhile).
///
/// Call it on compile's statuses before [`StatusStore::update`], so the
/// pending condition gets its own transition time.
///
/// # Guarantees
///
/// - Pure: reads `published` and `reports`, changes only `statuses`.
/// - Only a `Programmed` condition that is `True` changes — on the Gateway
///   and on each of its listeners; a Gateway that is not published, or not
///   programmed for another reason, keeps its status.
///
/// [`StatusStore::update`]: crate::status::StatusStore::update
pub fn apply_programmed(
    statuses: &mut [ObjectStatus],
    published: &BTreeMap<String, Published>,
    reports: &Reports,
) {
    for status in statuses.iter_mut().filter(|s| s.kind == "Gateway") {
        let key = format!(
            "{}/{}",
            status.namespace.as_deref().unwrap_or_default(),
            status.name
        );
        let Some(published) = published.get(&key) else {
            continue;
        };
        if reports.applied(&key, &published.hash) {
            continue;
        }
        let (reason, message) = match reports.rejected(&key, published.version) {
            Some((pod, why)) => (
                INVALID,
                format!(
                    "data plane {pod} rejected snapshot {}: {why}",
                    published.version
                ),
            ),
            None => (
                PENDING,
                format!(
                    "waiting for the data plane to apply snapshot {}",
                    published.version
                ),
            ),
        };
        let status = Arc::make_mut(&mut status.status);
        mark_pending(status.get_mut("conditions"), reason, &message);
        if let Some(Value::Array(listeners)) = status.get_mut("listeners") {
            for listener in listeners {
                mark_pending(listener.get_mut("conditions"), reason, &message);
            }
        }
    }
}

/// Turns a `Programmed: True` condition in `conditions` into `False`
/// with `reason` (`Pending`, or `Invalid` when a data plane refused it).
fn mark_pending(conditions: Option<&mut Value>, reason: &str, message: &str) {
    let Some(Value::Array(conditions)) = conditions else {
        return;
    };
    for c in conditions {
        if c.get("type").and_then(Value::as_str) == Some("Programmed")
            && c.get("status").and_then(Value::as_str) == Some("True")
            && let Value::Object(c) = c
        {
            c.insert("status".into(), "False".into());
            c.insert("reason".into(), reason.into());
            c.insert("message".into(), message.into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn report(pod: &str, hash: &str) -> Report {
        Report {
            version: 7,
            hash: hash.into(),
            pod: pod.into(),
            ready: true,
            rejected: None,
        }
    }

    fn gateway(name: &str, programmed: &str) -> ObjectStatus {
        let condition = |status: &str| {
            json!([
                {"type": "Accepted", "status": "True", "reason": "Accepted", "message": "ok"},
                {"type": "Programmed", "status": status, "reason": "Programmed", "message": "ok"}
            ])
        };
        ObjectStatus {
            kind: "Gateway".into(),
            namespace: Some("ns".into()),
            name: name.into(),
            status: json!({
                "conditions": condition(programmed),
                "listeners": [{"name": "http", "conditions": condition(programmed)}]
            })
            .into(),
        }
    }

    fn published(hash: &str) -> Published {
        Published {
            version: 7,
            hash: hash.into(),
            counts: tollgate_snapshot::Snapshot::empty("ns/gw").counts(),
            bytes: 0,
            subscribers: 0,
        }
    }

    /// The rule: a published Gateway is Programmed only once some data plane
    /// reported the published hash; other Gateways and other kinds keep
    /// their status, and a Programmed already False keeps its reason.
    #[test]
    fn programmed_waits_for_a_matching_report() {
        struct Case {
            name: &'static str,
            programmed: &'static str,
            published: Option<&'static str>,
            reported: &'static [&'static str],
            want: (&'static str, &'static str),
        }
        let cases = [
            Case {
                name: "no report yet",
                programmed: "True",
                published: Some("h2"),
                reported: &[],
                want: ("False", "Pending"),
            },
            Case {
                name: "report of an older snapshot",
                programmed: "True",
                published: Some("h2"),
                reported: &["h1"],
                want: ("False", "Pending"),
            },
            Case {
                name: "one of several pods applied it",
                programmed: "True",
                published: Some("h2"),
                reported: &["h1", "h2"],
                want: ("True", "Programmed"),
            },
            Case {
                name: "not published: nothing to wait for",
                programmed: "True",
                published: None,
                reported: &[],
                want: ("True", "Programmed"),
            },
            Case {
                name: "already not programmed for its own reason",
                programmed: "False",
                published: Some("h2"),
                reported: &[],
                want: ("False", "Programmed"),
            },
        ];
        for case in cases {
            let reports = Reports::default();
            for (i, hash) in case.reported.iter().enumerate() {
                reports.record("ns/gw", report(&format!("pod-{i}"), hash));
            }
            let published: BTreeMap<String, Published> = case
                .published
                .map(|h| ("ns/gw".to_string(), published(h)))
                .into_iter()
                .collect();
            let mut statuses = vec![gateway("gw", case.programmed)];
            apply_programmed(&mut statuses, &published, &reports);
            let s = &statuses[0].status;
            for conditions in [&s["conditions"], &s["listeners"][0]["conditions"]] {
                let p = &conditions[1];
                assert_eq!(
                    (p["status"].as_str(), p["reason"].as_str()),
                    (Some(case.want.0), Some(case.want.1)),
                    "{}",
                    case.name
                );
                assert_eq!(conditions[0]["status"], "True", "{}", case.name);
            }
            if case.want.1 == "Pending" {
                assert_eq!(
                    s["conditions"][1]["message"],
                    "waiting for the data plane to apply snapshot 7"
                );
            }
        }
    }

    /// Only a report that changes what is known bumps the change counter.
    #[test]
    fn repeated_reports_do_not_signal_a_change() {
        let reports = Reports::default();
        let rx = reports.changed();
        reports.record("ns/gw", report("a", "h1"));
        assert_eq!(*rx.borrow(), 1);
        reports.record("ns/gw", report("a", "h1"));
        assert_eq!(*rx.borrow(), 1);
        reports.record("ns/gw", report("a", "h2"));
        assert_eq!(*rx.borrow(), 2);
        assert_eq!(reports.of("ns/gw")["a"].hash, "h2");
        assert!(!reports.applied("ns/gw", "h1") && reports.applied("ns/gw", "h2"));
    }

    /// Report and snapshot paths name exactly a namespace and a name.
    #[test]
    fn paths_name_a_namespace_and_a_name() {
        let p = "/v1/reports/";
        assert_eq!(gateway_of("/v1/reports/ns/gw", p).as_deref(), Some("ns/gw"));
        for bad in [
            "/v1/reports/ns",
            "/v1/reports/ns/",
            "/v1/reports//gw",
            "/v1/reports/a/b/c",
            "/x",
        ] {
            assert_eq!(gateway_of(bad, p), None, "{bad}");
        }
    }

    /// Over a real socket: a report is recorded, a bad one refused, and the
    /// snapshot stream advertises where to report.
    #[tokio::test]
    async fn serves_reports_next_to_snapshot_streams() {
        use http_body_util::Full;
        use hyper_util::client::legacy::Client;
        let reports = Reports::default();
        let publisher = Publisher::default();
        let (r, p) = (reports.clone(), publisher.clone());
        let addr = crate::serve::spawn("127.0.0.1:0".parse().unwrap(), move |req| r.serve(&p, req))
            .await
            .unwrap();
        let client = Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http::<Full<bytes::Bytes>>();
        let post = |body: &str| {
            Request::post(format!("http://{addr}/v1/reports/ns/gw"))
                .body(Full::new(bytes::Bytes::from(body.to_string())))
                .unwrap()
        };
        let body = serde_json::to_string(&report("pod-a", "h1")).unwrap();
        assert_eq!(client.request(post(&body)).await.unwrap().status(), 204);
        assert_eq!(reports.of("ns/gw")["pod-a"], report("pod-a", "h1"));
        assert_eq!(client.request(post("{}")).await.unwrap().status(), 400);
        let get = Request::get(format!("http://{addr}/v1/snapshots/ns/gw"))
            .body(Full::default())
            .unwrap();
        let stream = client.request(get).await.unwrap();
        assert_eq!(stream.status(), 200);
        assert_eq!(stream.headers()[REPORT_PATH_HEADER], "/v1/reports/ns/gw");
    }
}
