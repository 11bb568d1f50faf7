//! Scenario 12: the controller's memory in Kubernetes mode.
//!
//! The controller runs alone (`--no-provision`, no data plane) against the
//! in-memory API server of the end-to-end tests, holding N HTTPRoutes and
//! M Secrets: R of them referenced as listener certificates of the Gateway
//! (one real ECDSA certificate each), the rest unreferenced Opaque Secrets
//! of 4 KiB each, as service-account tokens, Helm release records and
//! application credentials fill a real cluster.
//!
//! - Ceiling: resident memory once every route and referenced Secret is in
//!   the controller's view (its `tollgate_controller_objects` gauge) and
//!   every route's status is written. Goal ≤ [`CEILING_MIB`].
//! - Churn soak: routes created and deleted continuously (one of each per
//!   `plan.ctl_churn_every`, keeping [`CHURN_WINDOW`] extra routes alive),
//!   an unreferenced Secret rewritten every 10th step and a referenced one
//!   every 50th, resident memory sampled every `plan.ctl_sample_every`. A
//!   warm-up of a sixth of the soak (at most a minute) comes first, so the
//!   step from idle to churning is not counted as growth. Goal: the median
//!   of the last quarter of the samples ≤ [`MAX_GROWTH_PERCENT`] above the
//!   median of the first quarter.

use super::{Bench, Goal};
use crate::endpoints::{api_server, http_error, objects, route};
use crate::error::BenchError;
use crate::probe;
use crate::procs::{Child, Launch, PROXY_CPU, free_port};
use crate::stats::median;
use crate::tls;
use base64::Engine as _;
use serde::Serialize;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tollgate_e2e::apiserver::ApiServer;

/// The resident-memory ceiling at 10k routes and 5k Secrets, MiB (see
/// `bench/README.md` for the measurement it was chosen from).
pub const CEILING_MIB: f64 = 352.0;

/// The largest rise from the soak's first to its last quarter, percent.
pub const MAX_GROWTH_PERCENT: f64 = 5.0;

/// Churn routes alive at once during the soak.
pub const CHURN_WINDOW: usize = 20;

/// How long the controller may take to load everything, or to catch up
/// with the churn at the end of the soak.
const LOAD_TIMEOUT: Duration = Duration::from_secs(300);

/// Bytes of data of an unreferenced Secret.
const UNREFERENCED_BYTES: usize = 4096;

/// The scenario's outcome.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CtlMemory {
    /// HTTPRoutes loaded.
    pub routes: usize,
    /// Secrets in the cluster.
    pub secrets: usize,
    /// Secrets referenced as listener certificates.
    pub referenced: usize,
    /// Controller start to every route and referenced Secret in its view, ms.
    pub load_ms: f64,
    /// Resident bytes once loaded and every route status written.
    pub loaded_rss: u64,
    /// Peak resident bytes (`VmHWM`) up to then.
    pub loaded_peak: u64,
    /// The churn soak.
    pub soak: Soak,
}

/// The churn soak's samples and counts.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Soak {
    /// Seconds sampled (after the warm-up).
    pub seconds: f64,
    /// Routes created (as many deleted, less the last window).
    pub route_changes: usize,
    /// Secrets rewritten.
    pub secret_changes: usize,
    /// `(seconds since sampling began, resident bytes)`.
    pub samples: Vec<(f64, u64)>,
    /// Whether the controller's view held the final set of routes at the end.
    pub converged: bool,
    /// Peak resident bytes (`VmHWM`) at the end.
    pub peak: u64,
}

impl Soak {
    /// Medians of the first and the last quarter of the samples, bytes.
    pub fn quarters(&self) -> (f64, f64) {
        let rss: Vec<f64> = self.samples.iter().map(|s| s.1 as f64).collect();
        let quarter = (rss.len() / 4).max(1);
        if rss.is_empty() {
            return (0.0, 0.0);
        }
        (median(&rss[..quarter]), median(&rss[rss.len() - quarter..]))
    }

    /// How much the last quarter's median is above the first's, percent.
    pub fn growth_percent(&self) -> f64 {
        let (first, last) = self.quarters();
        if first <= 0.0 {
            return 0.0;
        }
        (last - first) / first * 100.0
    }
}

/// Runs the scenario.
///
/// # Errors
///
/// When the API server or the controller does not start, or the controller
/// never loads everything.
pub fn run(bench: &Bench) -> Result<CtlMemory, BenchError> {
    let plan = &bench.plan;
    let (_rt, server) = api_server()?;
    let cert = tls::generate(&bench.env.dir("ctl-memory")?)?;
    let referenced = plan.ctl_referenced.min(plan.ctl_secrets);
    for object in cluster(plan.ctl_routes, plan.ctl_secrets, referenced, &cert) {
        server
            .create(object)
            .map_err(|e| http_error("creating objects", e))?;
    }
    let mut out = CtlMemory {
        routes: plan.ctl_routes,
        secrets: plan.ctl_secrets,
        referenced,
        ..CtlMemory::default()
    };
    let started = Instant::now();
    let (controller, admin) = start_controller(bench, &server)?;
    wait_view(&controller, admin, plan.ctl_routes, referenced)?;
    out.load_ms = started.elapsed().as_secs_f64() * 1000.0;
    wait_statuses(&controller, &server, plan.ctl_routes)?;
    std::thread::sleep(Duration::from_secs(if plan.smoke { 0 } else { 2 }));
    out.loaded_rss = controller.rss_bytes();
    out.loaded_peak = controller.peak_rss_bytes();
    bench.progress(format!(
        "controller, {} routes, {} Secrets ({referenced} referenced): loaded in {:.0} ms, {} KiB (peak {} KiB)",
        out.routes,
        out.secrets,
        out.load_ms,
        out.loaded_rss / 1024,
        out.loaded_peak / 1024
    ));
    out.soak = soak(bench, (&server, &cert), &controller, admin, &out)?;
    let (first, last) = out.soak.quarters();
    bench.progress(format!(
        "churn soak {:.0} s, {} route changes: first quarter {:.0} KiB, last {:.0} KiB ({:+.1}%)",
        out.soak.seconds,
        out.soak.route_changes,
        first / 1024.0,
        last / 1024.0,
        out.soak.growth_percent()
    ));
    Ok(out)
}

/// The class, a Gateway with one HTTPS listener per referenced Secret,
/// the backend Service, `routes` routes (on the HTTP listener only, so the
/// route count, not routes × listeners, is what grows) and `secrets`
/// Secrets.
fn cluster(routes: usize, secrets: usize, referenced: usize, cert: &tls::TlsFiles) -> Vec<Value> {
    let mut out = objects(routes, 9);
    for object in out.iter_mut().filter(|o| o["kind"] == "HTTPRoute") {
        on_http_listener(object);
    }
    let listeners = (0..referenced).map(|i| {
        json!({"name": format!("https-{i}"), "port": 443, "protocol": "HTTPS",
               "hostname": format!("h{i}.example.com"),
               "tls": {"certificateRefs": [{"name": format!("cert-{i}")}]}})
    });
    if let Some(list) = out[1]["spec"]["listeners"].as_array_mut() {
        list.extend(listeners);
    }
    out.extend((0..secrets).map(|i| secret(i, referenced, cert, 0)));
    out
}

/// Attaches a route to the Gateway's HTTP listener alone.
fn on_http_listener(route: &mut Value) {
    route["spec"]["parentRefs"] = json!([{"name": "gw", "sectionName": "http"}]);
}

/// Secret `i`: a listener certificate when `i < referenced`, else 4 KiB of
/// opaque data; `version` changes the data.
fn secret(i: usize, referenced: usize, cert: &tls::TlsFiles, version: usize) -> Value {
    let b64 = |text: &[u8]| base64::engine::general_purpose::STANDARD.encode(text);
    if i < referenced {
        return json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": format!("cert-{i}"), "namespace": "default",
                         "annotations": {"bench/version": version.to_string()}},
            "data": {"tls.crt": b64(cert.chain_pem.as_bytes()), "tls.key": b64(cert.key_pem.as_bytes())}});
    }
    let blob: Vec<u8> = (0..UNREFERENCED_BYTES)
        .map(|k| (k * 31 + i * 7 + version) as u8)
        .collect();
    json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": format!("other-{i}"), "namespace": "default"},
        "data": {"blob": b64(&blob)}})
}

/// Starts the controller alone against `server`; its admin address.
fn start_controller(bench: &Bench, server: &ApiServer) -> Result<(Child, SocketAddr), BenchError> {
    let work = bench.env.dir("ctl-memory")?;
    let ports = [free_port()?, free_port()?, free_port()?];
    let admin = SocketAddr::from(([127, 0, 0, 1], ports[0]));
    let launch = Launch::new("tollgate-controller", bench.env.bin("tollgate-controller"))
        .args(["--no-provision", "--report-grace-seconds", "0"])
        .args(["--admin-address", &admin.to_string()])
        .args([
            "--dataplane-admin-address",
            &format!("127.0.0.1:{}", ports[1]),
        ])
        .args(["--snapshot-address", &format!("127.0.0.1:{}", ports[2])])
        .env("KUBECONFIG", &server.kubeconfig().display().to_string())
        .env("POD_NAME", "bench")
        .env("TOKIO_WORKER_THREADS", "1")
        .env(
            "RUST_LOG",
            &std::env::var("TOLLGATE_BENCH_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .cpu(PROXY_CPU);
    Ok((Child::spawn(&launch, &work, bench.env.pin)?, admin))
}

/// The controller's `tollgate_controller_objects` gauge for `kind`.
fn objects_in_view(admin: SocketAddr, kind: &str) -> Option<u64> {
    let text = probe::body(admin, "/metrics")?;
    let label = format!("kind=\"{kind}\"");
    let line = text
        .lines()
        .find(|l| l.starts_with("tollgate_controller_objects{") && l.contains(&label))?;
    line.rsplit(' ')
        .next()?
        .parse::<f64>()
        .ok()
        .map(|v| v as u64)
}

/// Waits until the controller's view holds `routes` HTTPRoutes and
/// `secrets` Secrets.
fn wait_view(
    controller: &Child,
    admin: SocketAddr,
    routes: usize,
    secrets: usize,
) -> Result<(), BenchError> {
    let deadline = Instant::now() + LOAD_TIMEOUT;
    while Instant::now() < deadline {
        let seen = (
            objects_in_view(admin, "HTTPRoute"),
            objects_in_view(admin, "Secret"),
        );
        if seen == (Some(routes as u64), Some(secrets as u64)) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(controller.not_ready(LOAD_TIMEOUT))
}

/// Waits until the last route's status names its parent: the controller
/// has written every route status (it writes them in one round).
fn wait_statuses(controller: &Child, server: &ApiServer, routes: usize) -> Result<(), BenchError> {
    let last = format!("r{}", routes.saturating_sub(1));
    let deadline = Instant::now() + LOAD_TIMEOUT;
    while Instant::now() < deadline {
        let route = server.get(
            "gateway.networking.k8s.io/v1",
            "HTTPRoute",
            Some("default"),
            &last,
        );
        if route.is_ok_and(|r| r.pointer("/status/parents/0").is_some()) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(controller.not_ready(LOAD_TIMEOUT))
}

/// Churns routes and Secrets while sampling the controller's memory.
fn soak(
    bench: &Bench,
    (server, cert): (&ApiServer, &tls::TlsFiles),
    controller: &Child,
    admin: SocketAddr,
    loaded: &CtlMemory,
) -> Result<Soak, BenchError> {
    let plan = &bench.plan;
    let warm_up = (plan.ctl_soak / 6).min(Duration::from_secs(60));
    let mut out = Soak::default();
    let started = Instant::now();
    let sampling = started + warm_up;
    let end = sampling + plan.ctl_soak;
    let mut next_sample = sampling;
    let mut step = 0usize;
    while Instant::now() < end {
        churn(server, step, loaded, cert, &mut out)?;
        step += 1;
        let now = Instant::now();
        if now >= next_sample {
            let rss = controller.rss_bytes();
            if rss == 0 {
                return Err(controller.not_ready(now - started));
            }
            out.samples.push(((now - sampling).as_secs_f64(), rss));
            next_sample += plan.ctl_sample_every;
        }
        std::thread::sleep(plan.ctl_churn_every);
    }
    out.seconds = (Instant::now() - sampling).as_secs_f64();
    let expected = loaded.routes + step.min(CHURN_WINDOW);
    out.converged = wait_view(controller, admin, expected, loaded.referenced).is_ok();
    out.peak = controller.peak_rss_bytes();
    Ok(out)
}

/// One churn step: route `churn-<step>` created and the one
/// [`CHURN_WINDOW`] steps older deleted; every 10th step an unreferenced
/// Secret rewritten, every 50th a referenced one.
fn churn(
    server: &ApiServer,
    step: usize,
    loaded: &CtlMemory,
    cert: &tls::TlsFiles,
    out: &mut Soak,
) -> Result<(), BenchError> {
    let mut new = route(&format!("churn-{step}"));
    on_http_listener(&mut new);
    server
        .create(new)
        .map_err(|e| http_error("creating a churn route", e))?;
    out.route_changes += 1;
    if step >= CHURN_WINDOW {
        let old = format!("churn-{}", step - CHURN_WINDOW);
        server
            .delete(
                "gateway.networking.k8s.io/v1",
                "HTTPRoute",
                Some("default"),
                &old,
            )
            .map_err(|e| http_error("deleting a churn route", e))?;
    }
    let unreferenced = loaded.secrets.saturating_sub(loaded.referenced);
    let rewrite = match step % 50 {
        0 if loaded.referenced > 0 => Some((step / 50) % loaded.referenced),
        s if s % 10 == 0 && unreferenced > 0 => {
            Some(loaded.referenced + (step / 10) % unreferenced)
        }
        _ => None,
    };
    if let Some(i) = rewrite {
        server
            .replace(secret(i, loaded.referenced, cert, step))
            .map_err(|e| http_error("rewriting a Secret", e))?;
        out.secret_changes += 1;
    }
    Ok(())
}

/// The scenario's goals.
pub fn goals(m: &CtlMemory) -> Vec<Goal> {
    let s = "12 controller memory";
    vec![
        Goal::at_most(
            s,
            &format!(
                "controller RSS, {} routes and {} Secrets ({} referenced)",
                m.routes, m.secrets, m.referenced
            ),
            m.loaded_rss as f64 / (1024.0 * 1024.0),
            CEILING_MIB,
            "MiB",
        ),
        Goal::at_most(
            s,
            &format!(
                "RSS growth over a {:.0} s churn soak, last vs first quarter",
                m.soak.seconds
            ),
            m.soak.growth_percent(),
            MAX_GROWTH_PERCENT,
            "%",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::Soak;

    /// Growth compares the medians of the first and last quarter, so one
    /// spike in between does not count and a steady climb does.
    #[test]
    fn growth_is_between_quarter_medians() {
        let soak = |rss: &[u64]| Soak {
            samples: rss
                .iter()
                .enumerate()
                .map(|(i, r)| (i as f64, *r))
                .collect(),
            ..Soak::default()
        };
        let flat = soak(&[100, 101, 100, 400, 100, 99, 100, 101]);
        assert!(
            flat.growth_percent().abs() < 1.0,
            "{}",
            flat.growth_percent()
        );
        let climbing = soak(&[100, 100, 110, 120, 130, 140, 150, 150]);
        assert!((climbing.growth_percent() - 50.0).abs() < 1e-9);
        assert_eq!(soak(&[]).growth_percent(), 0.0);
    }
}
