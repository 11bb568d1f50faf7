//! The spans of the request stages that called out ([`StageTrace`]),
//! written as children of the server span once the stages are done.

use super::Exchange;
use crate::telemetry::spans::{self, Finished, Planned};
use crate::telemetry::stage_trace::StageTrace;

impl Exchange {
    /// Where the request's stages put the spans of their calls: `Some`
    /// only when the server span is sampled.
    #[inline]
    pub(crate) fn stage_trace(&self) -> Option<Box<StageTrace>> {
        self.server_span
            .filter(Planned::sampled)
            .map(|span| Box::new(StageTrace::new(span.ids)))
    }

    /// Writes the spans the stages closed, as children of the server span
    /// on its wall clock.
    pub(crate) fn stage_spans(&mut self, trace: StageTrace) {
        if trace.spans.is_empty() {
            return;
        }
        let anchor = self.wall_start();
        let Some(obs) = &self.obs else {
            return;
        };
        let StageTrace { parent, spans } = trace;
        for span in spans {
            let start = anchor + span.started.since(self.started);
            spans::write(
                &obs.traces,
                Finished {
                    planned: Planned {
                        ids: span.ids,
                        parent: parent.span_id,
                        parent_remote: false,
                    },
                    kind: span.kind,
                    name: span.name,
                    start,
                    end: start + span.took,
                    attributes: span.attributes,
                    error: span.error,
                },
                &self.parent,
            );
        }
    }
}
