//! The end-to-end harness itself, exercised with the real `tollgate-echo`
//! binary (built by cargo for this crate's integration tests).

use std::net::TcpStream;
use std::time::Duration;
use tollgate_e2e::{Echo, HarnessError, Proc, bin_path, free_port, wait_http_ok};

/// `Echo::start` runs the binary on a free port with the service name
/// echoed back, and the binary logs each request.
#[tokio::test]
async fn echo_backend_starts_and_identifies_itself() {
    let mut backend = Echo::start("echo-v1").await.unwrap();
    let reply = tollgate_e2e::get(&backend.url("/hello?a=b")).await.unwrap();
    let echo = reply.echo().unwrap();
    assert_eq!(echo.service, "echo-v1");
    assert_eq!(echo.pod, "echo-v1-0");
    assert_eq!(echo.namespace, "default");
    assert_eq!(echo.http_port, backend.port().to_string());
    assert_eq!(echo.host, backend.addr().to_string());
    assert_eq!(backend.service(), "echo-v1");
    let log = backend.proc().log();
    assert!(log.contains("Starting server, listening on port"), "{log}");
    assert!(
        log.contains("Echoing back request made to /hello?a=b to client (127.0.0.1:"),
        "{log}"
    );
}

/// Dropping a `Proc` stops the process: its port stops answering.
#[tokio::test]
async fn dropping_a_proc_stops_it() {
    let port = free_port().unwrap();
    let bind = format!("127.0.0.1:{port}");
    let proc = Proc::spawn("tollgate-echo", ["--bind", &bind], [("SERVICE_NAME", "x")]).unwrap();
    let health = format!("http://{bind}/health");
    wait_http_ok(&health, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(proc.log_path().starts_with(tollgate_e2e::log_dir()));
    drop(proc);
    assert!(TcpStream::connect(&bind).is_err(), "{bind} still answers");
}

/// A process that exits is reported with its log tail.
#[tokio::test]
async fn an_exited_process_reports_its_log() {
    let mut proc = Proc::spawn("tollgate-echo", ["--no-such-flag"], [("A", "b")]).unwrap();
    let mut result = proc.check_running();
    for _ in 0..200 {
        if result.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        result = proc.check_running();
    }
    let err = result.unwrap_err().to_string();
    assert!(err.contains("tollgate-echo exited early"), "{err}");
    assert!(
        err.contains(&proc.log_path().display().to_string()),
        "{err}"
    );
    let log = proc.log();
    assert!(log.contains("unknown argument \"--no-such-flag\""), "{log}");
}

/// A binary that was never built gets an error telling how to build it.
#[test]
fn missing_binary_says_how_to_build_it() {
    let err = bin_path("tollgate-no-such-binary").unwrap_err();
    assert!(matches!(err, HarnessError::BinaryMissing { .. }));
    assert!(err.to_string().contains("cargo build --bins"), "{err}");
    assert!(bin_path("tollgate-echo").unwrap().is_file());
}

/// Polling a port nobody listens on ends in a timeout naming the URL.
#[tokio::test]
async fn wait_http_ok_times_out() {
    let url = format!("http://127.0.0.1:{}/readyz", free_port().unwrap());
    let err = wait_http_ok(&url, Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(matches!(err, HarnessError::Timeout { .. }));
    assert!(err.to_string().contains(&url), "{err}");
}
