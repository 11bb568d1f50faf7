//! The status writer's handle: the client, the class it answers to, the
//! Event recorder and the resync period. The leadership loop (`mod.rs`) and
//! the rounds (`round.rs`) add their methods to it; both sit above this
//! leaf.

use crate::metrics::Metrics;
use kube::Client;
use kube::runtime::events::{Recorder, Reporter};
use std::time::Duration;
use tollgate_telemetry::TracesPipeline;

/// Default period of re-reading every object.
const RESYNC: Duration = Duration::from_secs(300);

/// Writes statuses, finalizers and Events while this replica leads.
pub struct StatusWriter {
    pub(super) client: Client,
    pub(super) controller_name: String,
    pub(super) recorder: Recorder,
    pub(super) resync: Duration,
    pub(super) metrics: Metrics,
    pub(super) traces: TracesPipeline,
}

impl StatusWriter {
    /// A writer for the objects of classes whose `controllerName` is
    /// `controller_name`. Events name the pod from `POD_NAME` as instance.
    pub fn new(client: Client, controller_name: String) -> StatusWriter {
        let reporter = Reporter {
            controller: controller_name.clone(),
            instance: std::env::var("POD_NAME").ok(),
        };
        StatusWriter {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            controller_name,
            resync: RESYNC,
            metrics: Metrics::default(),
            traces: TracesPipeline::off(tollgate_telemetry::SamplerSpec::Ratio(0.0)),
        }
    }

    /// Counts writes in `metrics` (`tollgate.controller.status.writes`).
    pub fn with_metrics(mut self, metrics: Metrics) -> StatusWriter {
        self.metrics = metrics;
        self
    }

    /// Writes each round that writes anything as a span (`write status`)
    /// on `traces`.
    pub fn with_traces(mut self, traces: TracesPipeline) -> StatusWriter {
        self.traces = traces;
        self
    }

    /// Re-reads every object this often (default 5 minutes).
    pub fn with_resync(mut self, every: Duration) -> StatusWriter {
        self.resync = every;
        self
    }
}
