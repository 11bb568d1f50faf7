//! The controller's provisioning flags (the shared contract's names), and
//! what they give data planes.

use anyhow::Context;
use std::collections::BTreeMap;
use tollgate_provision::Env;
use tollgate_provision::names::{otlp_file_key, otlp_secret_key};
use tollgate_telemetry::{OtelEnv, PROXY_VARIABLES, Signal};

/// The controller's provisioning flags.
#[derive(Clone, Debug, clap::Args)]
pub struct ProvisionArgs {
    /// Provision a data plane (Deployment, Service, ...) for every accepted
    /// Gateway. Default: on in Kubernetes mode, off with --manifests or
    /// --with-dataplane (the data plane runs in this process then).
    #[arg(long, env = "TOLLGATE_PROVISION", num_args = 0..=1, default_missing_value = "true")]
    pub provision: Option<bool>,
    /// Never provision data planes.
    #[arg(long, conflicts_with = "provision")]
    pub no_provision: bool,
    /// Image of provisioned data planes whose GatewayConfig names none.
    #[arg(
        long,
        env = "TOLLGATE_DATAPLANE_IMAGE",
        default_value = concat!("ghcr.io/tollgate-dev/tollgate-dataplane:", env!("CARGO_PKG_VERSION"))
    )]
    pub dataplane_image: String,
    /// URL data planes stream their snapshots from; `$(POD_NAMESPACE)` is
    /// replaced by the controller's namespace.
    #[arg(
        long,
        env = "TOLLGATE_SNAPSHOT_URL",
        default_value = "https://tollgate-controller.$(POD_NAMESPACE).svc:9903"
    )]
    pub snapshot_url: String,
}

impl ProvisionArgs {
    /// Whether to provision, given the mode the controller runs in.
    pub fn enabled(&self, kubernetes: bool, with_dataplane: bool) -> bool {
        if self.no_provision {
            return false;
        }
        self.provision.unwrap_or(kubernetes && !with_dataplane)
    }

    /// What data planes are given: the image, the snapshot URL with
    /// `namespace` (the controller's) in it, and this process's `OTEL_*`
    /// and proxy variables, so data planes export where the controller
    /// does, the same way.
    pub fn env(&self, namespace: &str) -> Env {
        Env {
            image: self.dataplane_image.clone(),
            controller_url: self.snapshot_url.replace("$(POD_NAMESPACE)", namespace),
            otel: handed_over().collect(),
            drain_timeout_seconds: 5,
        }
    }
}

/// This process's variables that data planes get: the `OTEL_*` ones and
/// the proxy ones.
fn handed_over() -> impl Iterator<Item = (String, String)> {
    std::env::vars().filter(|(k, _)| handed(k))
}

/// Whether data planes get the variable `name`: the `OTEL_*` ones but the
/// service's name (each binary names itself, and data planes named as
/// their controller would merge with it in every backend), and the proxy
/// ones.
fn handed(name: &str) -> bool {
    (name.starts_with("OTEL_") && name != "OTEL_SERVICE_NAME") || PROXY_VARIABLES.contains(&name)
}

/// What data planes read from their client Secret instead of from their
/// Deployment, by key:
/// - the files this process's `OTEL_*` variables name (the OTLP
///   exporter's CA, client certificate and key): paths of the controller's
///   pod mean nothing in a data plane's, so the certificate issuer copies
///   the files there and the data planes' variables point at the copies;
/// - the values of the variables that may hold a secret (a collector's
///   token in the export headers, a password in a proxy URL), which the
///   data planes' Deployments reference with `secretKeyRef`: always, as
///   a missing key would keep the data plane's pod from starting.
///
/// Read at start, and again by the issuer each round, so a renewal
/// reaches data planes.
///
/// # Errors
///
/// A named file cannot be read (the controller's own exporter would have
/// refused it first).
pub fn otlp_files() -> anyhow::Result<BTreeMap<String, String>> {
    let env = OtelEnv::from_process();
    // Nothing exported: the files are not used, here or there.
    let exporting = [Signal::Traces, Signal::Metrics, Signal::Logs]
        .into_iter()
        .any(|s| env.exports(s));
    let mut files = BTreeMap::new();
    for (var, value) in handed_over() {
        if let Some(key) = otlp_secret_key(&var) {
            files.insert(key, value);
            continue;
        }
        let Some(key) = otlp_file_key(&var).filter(|_| exporting) else {
            continue;
        };
        let text = std::fs::read_to_string(&value)
            .with_context(|| format!("{var}: reading {value} for the data planes"))?;
        files.insert(key, text);
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        p: ProvisionArgs,
    }

    fn parse(args: &[&str]) -> ProvisionArgs {
        let mut all = vec!["tollgate-controller"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).expect("flags parse").p
    }

    /// On by default in a cluster only; off standalone and in-process;
    /// the flags win either way.
    /// Data planes get the export settings and proxies, not the
    /// controller's service name or anything else.
    #[test]
    fn what_data_planes_are_handed() {
        for name in [
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_RESOURCE_ATTRIBUTES",
            "HTTPS_PROXY",
            "no_proxy",
        ] {
            assert!(handed(name), "{name}");
        }
        for name in ["OTEL_SERVICE_NAME", "POD_NAME", "KUBECONFIG", "RUST_LOG"] {
            assert!(!handed(name), "{name}");
        }
    }

    #[test]
    fn provisioning_defaults_by_mode() {
        let none = parse(&[]);
        assert!(none.enabled(true, false));
        assert!(!none.enabled(false, false));
        assert!(!none.enabled(true, true));
        assert!(parse(&["--provision"]).enabled(false, true));
        assert!(!parse(&["--provision=false"]).enabled(true, false));
        assert!(!parse(&["--no-provision"]).enabled(true, false));
        assert!(Cli::try_parse_from(["c", "--provision", "--no-provision"]).is_err());
    }

    /// The snapshot URL names the controller's namespace, not the data
    /// plane's (the kubelet would expand `$(POD_NAMESPACE)` in the pod).
    #[test]
    fn the_snapshot_url_names_the_controllers_namespace() {
        let env = parse(&[]).env("tollgate-system");
        assert_eq!(
            env.controller_url,
            "https://tollgate-controller.tollgate-system.svc:9903"
        );
        assert!(
            env.image
                .starts_with("ghcr.io/tollgate-dev/tollgate-dataplane:")
        );
    }
}
