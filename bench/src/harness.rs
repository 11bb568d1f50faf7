//! One harness run: start the backend, run the scenarios in order (or
//! the ones asked for), then write `results.json`, the charts and
//! `report.md` into the output folder.
//!
//! Scenario 2 and 6 send load at half of nginx's maximum throughput, which
//! scenario 1 measures first; when `wrk` or nginx is missing (smoke runs on
//! a machine without peers) a fixed modest rate is used and noted.

use crate::charts;
use crate::configs;
use crate::error::BenchError;
use crate::machine;
use crate::peers::{self, Env, Target};
use crate::plan::Plan;
use crate::report;
use crate::results::Results;
use crate::scenarios::{
    Bench, auth, ctl_memory, grpc, latency, memory, ratelimit, routes, scaling, telemetry,
    throughput, tls, updates,
};
use std::path::Path;

/// The rate used in smoke runs and when no throughput could be measured.
pub(crate) const FALLBACK_RATE: f64 = 200.0;

/// The scenarios' names, in the order they run (for `run --only`).
pub const SCENARIOS: [&str; 12] = [
    "throughput",
    "latency",
    "scaling",
    "memory",
    "routes",
    "updates",
    "telemetry",
    "tls",
    "grpc",
    "auth",
    "ratelimit",
    "ctl-memory",
];

/// Runs the scenarios of `plan` named in `only` (all when empty) and
/// writes the outputs into `out`.
///
/// # Errors
///
/// When a process does not start, a tool fails, or an output cannot be written.
pub fn run(env: Env, plan: Plan, out: &Path, only: &[String]) -> Result<Results, BenchError> {
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    std::fs::create_dir_all(out).map_err(BenchError::io(format!("creating {}", out.display())))?;
    std::fs::create_dir_all(&env.work).map_err(BenchError::io("creating the work folder"))?;
    let mut results = Results {
        started: jiff::Timestamp::now().to_string(),
        smoke: plan.smoke,
        runs: plan.runs,
        pinned: env.pin,
        machine: machine::read(),
        configs: peer_configs(only),
        ..Results::default()
    };
    let (_backend, backend) = peers::start_backend(&env)?;
    let bench = Bench::new(env, plan, backend);

    let mut clock = Stopwatch::start();
    if wanted("throughput") {
        println!("scenario 1: throughput");
        results.throughput = throughput::run(&bench)?;
        clock.lap("throughput");
    }
    let rate = if bench.plan.smoke || !(wanted("latency") || wanted("updates")) {
        FALLBACK_RATE
    } else {
        load_rate(&bench, results.throughput.as_ref())
    };
    if wanted("latency") {
        println!("scenario 2: latency at {rate:.0} rps");
        results.latency = Some(latency::run(&bench, rate)?);
        clock.lap("latency");
    }
    if wanted("scaling") {
        println!("scenario 3: connection scaling");
        results.scaling = scaling::run(&bench)?;
        clock.lap("connection scaling");
    }
    if wanted("memory") {
        println!("scenario 4: memory");
        results.memory = Some(memory::run(&bench)?);
        clock.lap("memory");
    }
    if wanted("routes") {
        println!("scenario 5: routes at scale");
        results.routes = Some(routes::run(&bench)?);
        clock.lap("routes at scale");
    }
    if wanted("updates") {
        println!("scenario 6: updates under load at {rate:.0} rps");
        results.updates = Some(updates::run(&bench, rate)?);
        clock.lap("updates under load");
    }
    if wanted("telemetry") {
        println!("scenario 7: request telemetry cost");
        results.telemetry = telemetry::run(&bench)?;
        clock.lap("telemetry cost");
    }
    if wanted("tls") {
        println!("scenario 8: TLS handshakes, HTTPS throughput, idle TLS memory");
        results.tls = Some(tls::run(&bench)?);
        clock.lap("tls");
    }
    if wanted("grpc") {
        println!("scenario 9: gRPC unary calls");
        results.grpc = Some(grpc::run(&bench)?);
        clock.lap("grpc");
    }
    if wanted("auth") {
        println!("scenario 10: authentication cost (API key, JWT RS256, JWT ES256)");
        results.auth = auth::run(&bench)?;
        clock.lap("auth");
    }
    if wanted("ratelimit") {
        println!("scenario 11: a global rate limit that never trips (Redis, hot key)");
        results.ratelimit = ratelimit::run(&bench)?;
        clock.lap("ratelimit");
    }
    if wanted("ctl-memory") {
        println!("scenario 12: controller memory (routes, Secrets, churn soak)");
        results.ctl_memory = Some(ctl_memory::run(&bench)?);
        clock.lap("controller memory");
    }
    results.durations = clock.laps;

    results.goals = goals(&results);
    results.notes = bench.notes();
    write_outputs(&mut results, out)?;
    Ok(results)
}

/// The peers' configs for the report, with example ports; the TLS ones
/// too when the TLS scenario runs.
fn peer_configs(only: &[String]) -> Vec<(String, String)> {
    let mut configs = vec![
        ("nginx.conf".into(), configs::nginx(8080, 9000, "<work>")),
        ("haproxy.cfg".into(), configs::haproxy(8080, 9000)),
    ];
    if only.is_empty() || only.iter().any(|o| o == "tls") {
        configs.push((
            "nginx.conf (TLS scenario)".into(),
            configs::nginx_tls(8443, 9000, "<work>", "<work>/cert.pem", "<work>/key.pem"),
        ));
        configs.push((
            "haproxy.cfg (TLS scenario)".into(),
            configs::haproxy_tls(8443, 9000, "<work>/combined.pem"),
        ));
    }
    if only.is_empty() || only.iter().any(|o| o == "grpc") {
        configs.push((
            "nginx.conf (gRPC scenario)".into(),
            configs::nginx_grpc(8080, 9000, "<work>"),
        ));
    }
    configs
}

/// Time per scenario, for the report.
struct Stopwatch {
    since: std::time::Instant,
    laps: Vec<(String, f64)>,
}

impl Stopwatch {
    fn start() -> Stopwatch {
        Stopwatch {
            since: std::time::Instant::now(),
            laps: Vec::new(),
        }
    }

    /// Records the time since the previous lap as `name`'s.
    fn lap(&mut self, name: &str) {
        let now = std::time::Instant::now();
        let seconds = (now - std::mem::replace(&mut self.since, now)).as_secs_f64();
        println!("{name}: {seconds:.0} s");
        self.laps.push((name.into(), seconds));
    }
}

/// Half of nginx's median throughput, else Tollgate's, else a fixed rate.
fn load_rate(bench: &Bench, t: Option<&throughput::Throughput>) -> f64 {
    let measured = t.and_then(|t| t.rps(Target::Nginx).or_else(|| t.rps(Target::Tollgate)));
    match measured {
        Some(rps) if rps > 0.0 => {
            if t.and_then(|t| t.rps(Target::Nginx)).is_none() {
                bench.note("nginx missing: load rate is 50% of Tollgate's throughput instead");
            }
            rps / 2.0
        }
        _ => {
            bench.note(format!(
                "no throughput measured: load rate fixed at {FALLBACK_RATE} rps"
            ));
            FALLBACK_RATE
        }
    }
}

fn goals(r: &Results) -> Vec<crate::scenarios::Goal> {
    let mut goals = Vec::new();
    goals.extend(
        r.throughput
            .as_ref()
            .map(throughput::goals)
            .unwrap_or_default(),
    );
    goals.extend(r.latency.as_ref().map(latency::goals).unwrap_or_default());
    goals.extend(r.scaling.as_ref().map(scaling::goals).unwrap_or_default());
    goals.extend(r.memory.as_ref().map(memory::goals).unwrap_or_default());
    goals.extend(r.routes.as_ref().map(routes::goals).unwrap_or_default());
    goals.extend(r.updates.as_ref().map(updates::goals).unwrap_or_default());
    goals.extend(
        r.telemetry
            .as_ref()
            .map(telemetry::goals)
            .unwrap_or_default(),
    );
    goals.extend(r.tls.as_ref().map(tls::goals).unwrap_or_default());
    goals.extend(r.grpc.as_ref().map(grpc::goals).unwrap_or_default());
    goals.extend(r.auth.as_ref().map(auth::goals).unwrap_or_default());
    goals.extend(
        r.ratelimit
            .as_ref()
            .map(ratelimit::goals)
            .unwrap_or_default(),
    );
    goals.extend(
        r.ctl_memory
            .as_ref()
            .map(ctl_memory::goals)
            .unwrap_or_default(),
    );
    goals
}

fn write_outputs(results: &mut Results, out: &Path) -> Result<(), BenchError> {
    match charts::draw(results, out) {
        Ok(files) => results.charts = files,
        Err(error) => results.notes.push(format!("charts not drawn: {error}")),
    }
    let json = serde_json::to_string_pretty(results).map_err(|source| BenchError::Json {
        what: "the results".into(),
        source,
    })?;
    let path = out.join("results.json");
    std::fs::write(&path, json).map_err(BenchError::io(format!("writing {}", path.display())))?;
    let path = out.join("report.md");
    std::fs::write(&path, report::render(results))
        .map_err(BenchError::io(format!("writing {}", path.display())))?;
    println!("wrote {}", path.display());
    Ok(())
}
