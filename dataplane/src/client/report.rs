//! Reports to the controller: what this data plane applied, and what it
//! refused and why.
//!
//! A report goes after each apply or refusal and every [`REPORT_EVERY`],
//! to the path the controller named on the stream response (header
//! `tollgate-report-path`), over the same kind of connection as the stream
//! (mutual TLS in a cluster: the controller accepts a Gateway's reports
//! only from that Gateway's certificate).

use super::tls::{CachedClient, ClientTls, HttpClient};
use crate::server::Dataplane;
use bytes::Bytes;
use http_body_util::Full;
use serde::Serialize;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Notify;

/// Period of re-sending the report when nothing new was applied.
const REPORT_EVERY: Duration = Duration::from_secs(10);
/// Longest wait for the controller to take one report.
const REPORT_TIMEOUT: Duration = Duration::from_secs(5);
/// Ceiling of the (fully jittered) wait before a report that was not taken
/// is sent again, on a new connection.
const RETRY_WITHIN: Duration = Duration::from_secs(1);

/// What the data plane tells the controller.
#[derive(Debug, PartialEq, Eq, Serialize)]
struct Report<'a> {
    /// Version of the applied snapshot (0: none yet).
    version: u64,
    /// Its content hash (empty: none yet).
    hash: &'a str,
    pod: &'a str,
    ready: bool,
    /// The last snapshot refused since the last apply, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    rejected: Option<Rejection<'a>>,
}

/// A refused snapshot in a report.
#[derive(Debug, PartialEq, Eq, Serialize)]
struct Rejection<'a> {
    version: u64,
    reason: &'a str,
}

/// Sends reports to the path the controller named, after each apply and
/// every [`REPORT_EVERY`].
pub(super) struct Reporter {
    base: String,
    pod: String,
    /// Full URL to POST to; `None` while the controller named no path.
    url: Mutex<Option<String>>,
    /// Woken after each apply or refusal.
    pub(super) notify: Notify,
}

impl Reporter {
    pub(super) fn new(base: String, pod: String) -> Reporter {
        Reporter {
            base,
            pod,
            url: Mutex::new(None),
            notify: Notify::new(),
        }
    }

    /// Reports go to `path` on the controller from now on (none when
    /// `None`, or when it is not an absolute path).
    pub(super) fn report_to(&self, path: Option<&str>) {
        let url = path
            .filter(|p| p.starts_with('/') && !p.starts_with("//"))
            .map(|p| format!("{}{p}", self.base));
        if let Ok(mut current) = self.url.lock() {
            *current = url;
        }
    }

    #[cfg(test)]
    fn url(&self) -> Option<String> {
        self.url.lock().ok().and_then(|u| u.clone())
    }

    /// Reports until the data plane shuts down.
    pub(super) async fn run(self: std::sync::Arc<Self>, dataplane: Dataplane, tls: ClientTls) {
        let mut clients: CachedClient<Full<Bytes>> = CachedClient::new(tls, false);
        let mut undelivered = false;
        loop {
            // A report that was not taken goes again soon: Programmed waits
            // for it.
            let wait = if undelivered {
                super::full_jitter(RETRY_WITHIN, fastrand::u64(..))
            } else {
                REPORT_EVERY
            };
            tokio::select! {
                () = dataplane.shutdown_begun() => return,
                () = self.notify.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
            let url = self.url.lock().ok().and_then(|u| u.clone());
            let status = dataplane.status();
            let Some(url) = url else { continue };
            if status.version.is_none() && status.last_rejected.is_none() {
                continue;
            }
            let hash = status.hash.unwrap_or_default();
            let report = Report {
                version: status.version.unwrap_or_default(),
                hash: &hash,
                pod: &self.pod,
                ready: status.ready,
                rejected: status.last_rejected.as_ref().map(|r| Rejection {
                    version: r.version,
                    reason: &r.error,
                }),
            };
            let client = match clients.get() {
                Ok(client) => client,
                Err(error) => {
                    tracing::warn!(%error, "cannot report: client certificate unusable");
                    continue;
                }
            };
            undelivered = match post(&client, &url, &report).await {
                Ok(()) => false,
                Err(error) => {
                    // A follower replica refuses reports (503); new
                    // connections reach the leader through the Service.
                    tracing::warn!(%url, version = report.version, %error, "report not delivered; will report again");
                    clients.reset();
                    true
                }
            };
        }
    }
}

/// POSTs one report; any answer but 2xx is an error.
async fn post(
    client: &HttpClient<Full<Bytes>>,
    url: &str,
    report: &Report<'_>,
) -> Result<(), String> {
    let body = serde_json::to_vec(report).map_err(|e| e.to_string())?;
    let request = http::Request::post(url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let response = tokio::time::timeout(REPORT_TIMEOUT, client.request(request))
        .await
        .map_err(|_| format!("no answer within {REPORT_TIMEOUT:?}"))?
        .map_err(|e| e.to_string())?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("controller answered {}", response.status()))
    }
}

/// This data plane's name in reports: `POD_NAME`, else the host name.
pub(super) fn pod_name() -> String {
    let from_env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    from_env("POD_NAME")
        .or_else(|| from_env("HOSTNAME"))
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "unknown".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reports go only to an absolute path the controller named, on the
    /// controller itself.
    #[test]
    fn reports_go_only_to_a_named_path() {
        let r = Reporter::new("http://c:1".into(), "pod".into());
        assert_eq!(r.url(), None);
        r.report_to(Some("/v1/reports/ns/gw"));
        assert_eq!(r.url().as_deref(), Some("http://c:1/v1/reports/ns/gw"));
        for bad in [
            None,
            Some("http://elsewhere/x"),
            Some("//elsewhere/x"),
            Some(""),
        ] {
            r.report_to(bad);
            assert_eq!(r.url(), None, "{bad:?}");
        }
        assert!(!pod_name().is_empty());
    }

    /// A refusal travels with its reason.
    #[test]
    fn a_rejection_carries_its_reason() {
        let report = Report {
            version: 0,
            hash: "",
            pod: "p",
            ready: false,
            rejected: Some(Rejection {
                version: 7,
                reason: "snapshot schema 2.0 is not supported by this data plane (1.x)",
            }),
        };
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["rejected"]["version"], 7);
        assert_eq!(
            json["rejected"]["reason"],
            "snapshot schema 2.0 is not supported by this data plane (1.x)"
        );
    }
}
