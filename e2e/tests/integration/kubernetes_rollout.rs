//! A backend rolled the way Kubernetes rolls a Deployment, under load: the
//! old pod's endpoint turns terminating (still serving) before its
//! replacement is ready, the new endpoint appears, the old one leaves and
//! its process stops. Tollgate must answer every request: the terminating
//! endpoint carries traffic only while nothing else is ready, new requests
//! leave it as soon as the new endpoint is ready, and it is gone before its
//! process stops.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::k8s::*;
use common::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tollgate_e2e::{Echo, HttpClient};

/// The EndpointSlice `name` of Service `app`: one endpoint at 127.0.0.1
/// `port` with the given conditions.
fn slice(name: &str, port: u16, conditions: &str) -> String {
    format!(
        "apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {name}
  namespace: default
  labels: {{kubernetes.io/service-name: app}}
addressType: IPv4
ports: [{{name: http, port: {port}}}]
endpoints: [{{addresses: [127.0.0.1], conditions: {conditions}}}]
"
    )
}

/// What the load saw: each answer's status and, for a 200, which backend
/// answered, with when it arrived.
type Seen = Arc<Mutex<Vec<(Instant, u16, String)>>>;

/// Sends requests back to back on `workers` keep-alive clients until `stop`.
fn load(
    url: &str,
    workers: usize,
    stop: &Arc<AtomicBool>,
    seen: &Seen,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..workers)
        .map(|_| {
            let (url, stop, seen) = (url.to_string(), stop.clone(), seen.clone());
            tokio::spawn(async move {
                let client = HttpClient::http1();
                while !stop.load(Ordering::Relaxed) {
                    let answer = match client.get(&url).await {
                        Ok(r) => {
                            let service = r.echo().map(|e| e.service).unwrap_or_default();
                            (r.status.as_u16(), service)
                        }
                        Err(e) => (0, e.to_string()),
                    };
                    seen.lock()
                        .unwrap()
                        .push((Instant::now(), answer.0, answer.1));
                }
            })
        })
        .collect()
}

/// Waits until `n` answers in a row after `since` came from `service`.
async fn wait_for_backend(seen: &Seen, since: usize, service: &str, n: usize) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        {
            let seen = seen.lock().unwrap();
            let mut run = 0;
            for (at, _, s) in seen.iter().skip(since) {
                run = if s == service { run + 1 } else { 0 };
                if run >= n {
                    return *at;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "{service} never took the traffic"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Old endpoint terminating (alone, then beside a ready new one), removed,
/// its process stopped: no request fails, and once the new endpoint is
/// ready the terminating one gets no new request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_backend_answers_every_request() {
    let (old, new) = (
        Echo::start("app-old").await.unwrap(),
        Echo::start("app-new").await.unwrap(),
    );
    let server = cluster().await;
    apply(&server, &base("gw", "127.0.0.1", &[])).await;
    apply(
        &server,
        "apiVersion: v1
kind: Service
metadata: {name: app, namespace: default}
spec:
  ports: [{name: http, port: 80, targetPort: 3000}]
",
    )
    .await;
    apply(&server, &slice("app-old", old.port(), "{ready: true}")).await;
    apply(&server, &http_route("r", "/app", "app")).await;
    let ctl = start_kube_controller(&server, "replica-a", true, PORT).await;
    let url = format!("{}/app", ctl.gateway);
    wait_status(&url, 200, Duration::from_secs(10)).await;

    let stop = Arc::new(AtomicBool::new(false));
    let seen: Seen = Arc::default();
    let workers = load(&url, 4, &stop, &seen);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The old pod is terminating and its replacement is not ready yet: the
    // terminating endpoint still serves, as nothing else can.
    let terminating = "{ready: false, serving: true, terminating: true}";
    apply(&server, &slice("app-old", old.port(), terminating)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The new pod is ready: new requests go there only.
    let before_new = seen.lock().unwrap().len();
    apply(&server, &slice("app-new", new.port(), "{ready: true}")).await;
    let moved = wait_for_backend(&seen, before_new, "app-new", 10).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The old endpoint leaves, then its process stops.
    kubectl(&server, &["delete", "endpointslice", "app-old"]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(old);
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }

    let seen = seen.lock().unwrap();
    let failed: Vec<_> = seen
        .iter()
        .filter(|(_, status, _)| *status != 200)
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed, first: {:?}",
        failed.len(),
        seen.len(),
        failed.first()
    );
    // A request already sent when traffic moved may still come back from
    // the old backend; one sent 100 ms later may not.
    let late_old = seen
        .iter()
        .filter(|(at, _, s)| *at > moved + Duration::from_millis(100) && s == "app-old")
        .count();
    assert_eq!(
        late_old, 0,
        "the terminating endpoint kept getting requests"
    );
    assert!(seen.len() > 50, "only {} requests", seen.len());
}
