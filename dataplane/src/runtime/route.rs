//! A snapshot rule built for the request path: its filter chains, weighted
//! backend references, timeouts, retries, telemetry labels and stages.

use super::reuse::SharedStages;
use crate::auth::{AuthStage, BuildContext};
use crate::chain::Chain;
use crate::ratelimit::RateLimitStage;
use crate::stage::{Stage, Stages};
use crate::telemetry::RouteLabels;
use crate::upstream::{BackendSet, Balancer, Clients, RetryBudget};
use std::sync::Arc;
use tollgate_snapshot::{Retry, Route, Settings, Snapshot, Timeouts};

/// One route rule with its chain, weighted backends and timeouts.
#[derive(Debug)]
pub(crate) struct RouteRuntime {
    /// Source name, `httproute/<ns>/<name>/rule/<i>`.
    pub(crate) name: Box<str>,
    /// The rule's filters.
    pub(crate) chain: Chain,
    /// Backend references, indexed like `Route::backends`.
    pub(crate) backends: Box<[BackendChoice]>,
    /// Smooth weighted round robin over `backends`.
    pub(crate) balancer: Balancer,
    /// Request and per-try timeouts.
    pub(crate) timeouts: Timeouts,
    /// The rule's retry policy, when it has one.
    pub(crate) retry: Option<RouteRetry>,
    /// Route and rule labels of telemetry.
    pub(crate) labels: RouteLabels,
    /// The rule's own trace sampler, when it sets a ratio.
    pub(crate) sampler: Option<crate::telemetry::RatioSampler>,
    /// The rule's request stages (auth), in order.
    pub(crate) stages: Stages,
    /// Whether the rule is a GRPCRoute's (its errors are gRPC answers).
    pub(crate) grpc: bool,
}

/// A rule's retry policy, with the budget its retries spend.
#[derive(Debug)]
pub(crate) struct RouteRetry {
    /// Codes, attempts and backoff.
    pub(crate) policy: Retry,
    /// Shared by every request of the rule, kept across swaps.
    pub(crate) budget: Arc<RetryBudget>,
    /// Largest request body kept to send again, in bytes.
    pub(crate) max_body: usize,
}

/// One weighted backend reference of a rule.
#[derive(Debug)]
pub(crate) struct BackendChoice {
    /// Index into `Snapshot::backends`; `None` when the reference is invalid.
    pub(crate) backend: Option<usize>,
    /// Filters applied only when this reference is chosen.
    pub(crate) chain: Chain,
}

/// One stage per auth and rate-limit configuration of `snapshot`.
pub(super) fn build_stages(
    snapshot: &Snapshot,
    backends: &BackendSet,
    clients: &Clients,
) -> SharedStages {
    let cx = BuildContext {
        clients: clients.auth(),
        backends,
    };
    let auth = snapshot
        .auth
        .iter()
        .map(|config| Arc::new(AuthStage::build(config, &cx)) as Arc<dyn Stage>)
        .collect();
    let global = clients
        .rate_limits()
        .global(snapshot.settings.redis.as_ref());
    let rate_limits = snapshot
        .rate_limits
        .iter()
        .map(|config| {
            let stage = RateLimitStage::build(config, clients.rate_limits(), global.clone());
            Arc::new(stage) as Arc<dyn Stage>
        })
        .collect();
    SharedStages { auth, rate_limits }
}

pub(super) fn build_route(
    route: &Route,
    backends: &BackendSet,
    clients: &Clients,
    settings: &Settings,
    shared: &SharedStages,
) -> RouteRuntime {
    // The order of the stages, written down once: who the caller is
    // first, then how much they may do.
    let stages: Vec<Arc<dyn Stage>> = [
        route.auth.and_then(|i| shared.auth.get(i)),
        route.rate_limit.and_then(|i| shared.rate_limits.get(i)),
    ]
    .into_iter()
    .flatten()
    .cloned()
    .collect();
    let stages = if stages.is_empty() {
        Stages::default()
    } else {
        Stages::new(stages)
    };
    RouteRuntime {
        name: route.name.as_str().into(),
        chain: Chain::build(&route.name, &route.filters, backends),
        backends: route
            .backends
            .iter()
            .map(|b| BackendChoice {
                backend: b.backend,
                chain: Chain::build(&route.name, &b.filters, backends),
            })
            .collect(),
        balancer: Balancer::new(route.backends.iter().map(|b| b.weight)),
        timeouts: route.timeouts.clone(),
        retry: route.retry.as_ref().map(|policy| RouteRetry {
            policy: policy.clone(),
            budget: clients.retry_budget(&route.name, &settings.retry),
            max_body: usize::try_from(settings.retry.max_buffered_body_bytes).unwrap_or(usize::MAX),
        }),
        labels: RouteLabels::new(&route.name, route.rule_name.as_deref()),
        sampler: route
            .sampling_per_million
            .map(crate::telemetry::RatioSampler::per_million),
        stages,
        grpc: route.grpc,
    }
}
