//! The data plane's Deployment (see the shared contract in
//! `docs/operator.md`).
//!
//! Rolling restarts fail no request: a new pod must be ready before an old
//! one stops (`maxUnavailable: 0`); a stopping pod first sleeps in preStop
//! (load balancers and kube-proxy still send it traffic meanwhile), then
//! on SIGTERM its `/readyz` turns 503 while it keeps accepting for the
//! drain delay, then it stops accepting and drains. The grace period
//! covers all three plus a margin, so the kubelet never kills it early.

use crate::service::listener_ports;
use crate::{ADMIN_PORT, Context, PRE_STOP_SECONDS, ProvisionError, STATE_DIR, TLS_DIR, names};
use crate::{others, patched};
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource,
    HTTPGetAction, Lifecycle, LifecycleHandler, ObjectFieldSelector, PodSecurityContext, PodSpec,
    PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile, SecretKeySelector,
    SecretVolumeSource, SecurityContext, SleepAction, Sysctl, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

/// Default pod count: two, so one can restart while the other serves.
const REPLICAS: i32 = 2;
/// Default drain delay (seconds listeners keep accepting after SIGTERM).
const DRAIN_DELAY: u32 = 5;
/// Slack on top of preStop + drain delay + drain timeout.
const GRACE_MARGIN: i64 = 5;
/// The non-root user and group of the data plane (distroless `nonroot`).
const USER: i64 = 65532;

/// The Deployment.
pub(crate) fn deployment(ctx: &Context<'_>) -> Result<Deployment, ProvisionError> {
    let settings = ctx.config.deployment.clone().unwrap_or_default();
    let drain_delay = settings.drain_delay_seconds.unwrap_or(DRAIN_DELAY);
    let grace = PRE_STOP_SECONDS
        + i64::from(drain_delay)
        + i64::from(ctx.env.drain_timeout_seconds)
        + GRACE_MARGIN;
    let mut pod_labels = settings.pod_labels.clone().unwrap_or_default();
    pod_labels.extend(names::selector(&ctx.name));
    let topology = settings.topology_spread_constraints.clone().map(|list| {
        list.into_iter()
            .map(|mut c| {
                c.label_selector.get_or_insert_with(|| selector(ctx));
                c
            })
            .collect()
    });
    let pod = PodSpec {
        service_account_name: Some(ctx.base()),
        automount_service_account_token: Some(false),
        termination_grace_period_seconds: Some(grace),
        security_context: Some(pod_security()),
        containers: vec![container(ctx, drain_delay)],
        volumes: Some(volumes(ctx)),
        image_pull_secrets: settings.image_pull_secrets.clone(),
        node_selector: settings.node_selector.clone(),
        tolerations: settings.tolerations.clone(),
        affinity: settings.affinity.clone(),
        topology_spread_constraints: topology,
        ..PodSpec::default()
    };
    let replicas = (!others::autoscaling(ctx)).then(|| settings.replicas.unwrap_or(REPLICAS));
    let deployment = Deployment {
        metadata: ctx.meta(None, None),
        spec: Some(DeploymentSpec {
            replicas,
            selector: selector(ctx),
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".to_string()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_unavailable: Some(IntOrString::Int(0)),
                    max_surge: Some(IntOrString::Int(1)),
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(ctx.labels(Some(&pod_labels))),
                    annotations: ctx.annotations(settings.pod_annotations.as_ref()),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    };
    let patch = ctx
        .config
        .patches
        .as_ref()
        .and_then(|p| p.deployment.as_ref());
    patched(deployment, patch, "deployment")
}

fn selector(ctx: &Context<'_>) -> LabelSelector {
    LabelSelector {
        match_labels: Some(names::selector(&ctx.name)),
        match_expressions: None,
    }
}

/// Non-root, RuntimeDefault seccomp, and listener ports below 1024
/// bindable without any capability (a namespaced, safe sysctl).
fn pod_security() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(USER),
        run_as_group: Some(USER),
        fs_group: Some(USER),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_string(),
            localhost_profile: None,
        }),
        sysctls: Some(vec![Sysctl {
            name: "net.ipv4.ip_unprivileged_port_start".to_string(),
            value: "0".to_string(),
        }]),
        ..PodSecurityContext::default()
    }
}

/// The `dataplane` container.
fn container(ctx: &Context<'_>, drain_delay: u32) -> Container {
    let settings = ctx.config.deployment.clone().unwrap_or_default();
    let args = [
        "--controller",
        "$(TOLLGATE_CONTROLLER)",
        "--gateway",
        &format!("{}/{}", ctx.namespace, ctx.name),
        "--admin-address",
        &format!("0.0.0.0:{ADMIN_PORT}"),
        "--tls-dir",
        TLS_DIR,
        "--state-dir",
        STATE_DIR,
        "--drain-delay-seconds",
        &drain_delay.to_string(),
        "--log-format",
        "json",
    ]
    .map(String::from)
    .to_vec();
    let mut ports: Vec<ContainerPort> = listener_ports(ctx)
        .into_iter()
        .map(|(name, port)| ContainerPort {
            name: Some(name),
            container_port: port,
            protocol: Some("TCP".to_string()),
            ..ContainerPort::default()
        })
        .collect();
    ports.push(ContainerPort {
        name: Some("admin".to_string()),
        container_port: ADMIN_PORT,
        protocol: Some("TCP".to_string()),
        ..ContainerPort::default()
    });
    let probe = |path: &str, period: i32, failures: i32| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_string()),
            port: IntOrString::Int(ADMIN_PORT),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        ..Probe::default()
    };
    Container {
        name: "dataplane".to_string(),
        image: Some(
            settings
                .image
                .clone()
                .unwrap_or_else(|| ctx.env.image.clone()),
        ),
        image_pull_policy: settings.image_pull_policy.clone(),
        args: Some(args),
        env: Some(env(ctx)),
        ports: Some(ports),
        // Readiness is asked often and fails at once: a draining pod must
        // leave the endpoints quickly.
        readiness_probe: Some(probe("/readyz", 2, 1)),
        liveness_probe: Some(probe("/healthz", 10, 3)),
        lifecycle: Some(Lifecycle {
            pre_stop: Some(LifecycleHandler {
                sleep: Some(SleepAction {
                    seconds: PRE_STOP_SECONDS,
                }),
                ..LifecycleHandler::default()
            }),
            ..Lifecycle::default()
        }),
        resources: Some(settings.resources.clone().unwrap_or_else(default_resources)),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_string()]),
                add: None,
            }),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(vec![
            mount("client", TLS_DIR, true),
            mount("state", STATE_DIR, false),
            mount("tmp", "/tmp", false),
        ]),
        ..Container::default()
    }
}

/// Requests that let the scheduler place the pods; no limits by default
/// (a CPU limit throttles a proxy at the worst moment).
fn default_resources() -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_string(), Quantity("100m".to_string())),
            ("memory".to_string(), Quantity("128Mi".to_string())),
        ])),
        ..ResourceRequirements::default()
    }
}

fn env(ctx: &Context<'_>) -> Vec<EnvVar> {
    let field = |path: &str| EnvVarSource {
        field_ref: Some(ObjectFieldSelector {
            field_path: path.to_string(),
            api_version: None,
        }),
        ..EnvVarSource::default()
    };
    let mut env = vec![
        EnvVar {
            name: "POD_NAME".to_string(),
            value_from: Some(field("metadata.name")),
            value: None,
        },
        EnvVar {
            name: "POD_NAMESPACE".to_string(),
            value_from: Some(field("metadata.namespace")),
            value: None,
        },
        EnvVar {
            name: "TOLLGATE_CONTROLLER".to_string(),
            value: Some(ctx.env.controller_url.clone()),
            value_from: None,
        },
    ];
    let mut otel = ctx.env.otel.clone();
    otel.sort();
    env.extend(otel.into_iter().map(|(name, value)| {
        // A secret value (a collector's token) is read from the client
        // Secret, not written here.
        if let Some(key) = names::otlp_secret_key(&name) {
            let from_secret = SecretKeySelector {
                name: names::client_secret(&ctx.name),
                key,
                optional: None,
            };
            return EnvVar {
                name,
                value: None,
                value_from: Some(EnvVarSource {
                    secret_key_ref: Some(from_secret),
                    ..EnvVarSource::default()
                }),
            };
        }
        EnvVar {
            // A file the controller's variable names is in the client Secret.
            value: Some(match names::otlp_file_key(&name) {
                Some(key) => format!("{}/{key}", crate::TLS_DIR),
                None => value,
            }),
            name,
            value_from: None,
        }
    }));
    env
}

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.to_string(),
        mount_path: path.to_string(),
        read_only: read_only.then_some(true),
        ..VolumeMount::default()
    }
}

fn volumes(ctx: &Context<'_>) -> Vec<Volume> {
    let empty = |name: &str| Volume {
        name: name.to_string(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    };
    vec![
        Volume {
            name: "client".to_string(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(names::client_secret(&ctx.name)),
                // Readable by the pod's group (fsGroup), nobody else.
                default_mode: Some(0o440),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        },
        empty("state"),
        empty("tmp"),
    ]
}
