//! Request stages: the one contract every policy on the request path
//! implements (authentication, authorization, external auth, rate limits,
//! and later caching and transformation).
//!
//! A stage is built once per snapshot in `Runtime::build` and shared by the
//! rules it applies to. On each request the pipeline runs the rule's stages
//! in order after routing (and after a CORS preflight is answered), before
//! the rule's filters: a stage sees the request as the client sent it, and
//! its effects (a principal, headers for the backend) are in the
//! [`RequestContext`] the filters and the upstream read. Response hooks run
//! in reverse order; completion hooks run when the exchange is recorded.
//!
//! A stage that calls out (JWKS, introspection, external auth, Redis)
//! declares its timeout and its failure mode itself and reports a failed
//! dependency as [`ProxyError::Dependency`] when it fails closed.

use crate::body::ProxyBody;
use crate::context::RequestContext;
use crate::error::ProxyError;
use http::Response;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// What a stage decided about a request.
pub(crate) enum Flow {
    /// Go on to the next stage.
    Continue,
    /// Answer the client with this response; later stages, filters and the
    /// upstream are skipped (an OIDC redirect, an external auth service's
    /// own denial passed through unchanged).
    Answer(Response<ProxyBody>),
}

/// The future of [`Stage::on_request`].
pub(crate) type StageFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Flow, ProxyError>> + Send + 'a>>;

/// One step of the request path; see the module docs.
pub(crate) trait Stage: Send + Sync + fmt::Debug {
    /// A short name for logs (`auth`, `ratelimit`).
    fn name(&self) -> &'static str;

    /// Runs on the request: continue, answer, or fail.
    fn on_request<'a, 'r: 'a>(&'a self, ctx: &'a mut RequestContext<'r>) -> StageFuture<'a>;

    /// Runs on the response head before it goes to the client (in reverse
    /// stage order): add headers, count the outcome.
    fn on_response(&self, _ctx: &RequestContext<'_>, _head: &mut http::response::Parts) {}
}

/// A rule's stages, in the order they run. Empty for most rules, and then
/// the pipeline pays nothing for them.
#[derive(Clone, Debug, Default)]
pub(crate) struct Stages {
    stages: Box<[Arc<dyn Stage>]>,
}

impl Stages {
    /// The stages `stages`, in order.
    pub(crate) fn new(stages: Vec<Arc<dyn Stage>>) -> Stages {
        Stages {
            stages: stages.into_boxed_slice(),
        }
    }

    /// Whether there is nothing to run.
    pub(crate) fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    /// Runs every stage's request hook in order; stops at the first answer
    /// or failure.
    pub(crate) async fn on_request(
        &self,
        ctx: &mut RequestContext<'_>,
    ) -> Result<Flow, ProxyError> {
        for stage in &self.stages {
            match stage.on_request(ctx).await? {
                Flow::Continue => {}
                answer @ Flow::Answer(_) => return Ok(answer),
            }
        }
        Ok(Flow::Continue)
    }

    /// Runs every stage's response hook, last stage first.
    pub(crate) fn on_response(&self, ctx: &RequestContext<'_>, head: &mut http::response::Parts) {
        for stage in self.stages.iter().rev() {
            stage.on_response(ctx, head);
        }
    }
}
