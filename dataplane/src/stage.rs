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
//! A stage that wants to know how a request ended (a rate limit that
//! debits a cost the response names) registers a [`CompletionHook`] in the
//! context while it handles the request, with whatever it needs (the key
//! it counted under); the response body is then watched and the hooks run
//! when its last byte is out or the client goes away. Requests that
//! register none pay nothing for it.
//!
//! A stage that calls out (JWKS, introspection, external auth, Redis)
//! declares its timeout and its failure mode itself and reports a failed
//! dependency as [`ProxyError::Dependency`] when it fails closed. A call
//! made for this one request is traced through the context's
//! `trace` (`crate::telemetry::StageTrace`, present only when the request
//! is sampled): open a span, send its `traceparent` when the protocol
//! carries one, close it with the call's attributes; the exchange writes
//! it as a child of the server span.

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

/// Runs once with how the request ended.
pub(crate) type CompletionHook = Box<dyn FnOnce(&Completion) + Send + Sync>;

/// How a request ended, for [`CompletionHook`]s.
#[derive(Clone, Debug)]
pub(crate) struct Completion {
    /// The response headers as sent.
    pub(crate) headers: http::HeaderMap,
    /// Response body bytes sent.
    pub(crate) sent: u64,
    /// Whether the body was sent whole (false: the client went away or
    /// the backend broke off).
    pub(crate) finished: bool,
    /// From the request's arrival to the end of the response.
    pub(crate) elapsed: std::time::Duration,
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
            match stage.on_request(ctx).await {
                Ok(Flow::Continue) => {}
                Ok(answer @ Flow::Answer(_)) => return Ok(answer),
                Err(error) => {
                    tracing::debug!(stage = stage.name(), %error, "stage refused the request");
                    return Err(error);
                }
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

/// `body`, watched for the completion hooks the stages registered in
/// `ctx`; `body` itself when there are none.
pub(crate) fn completing(
    body: ProxyBody,
    head: &http::response::Parts,
    ctx: &mut RequestContext<'_>,
    started: crate::clock::Ticks,
) -> ProxyBody {
    if ctx.completions.is_empty() {
        return body;
    }
    let done = Completion {
        headers: head.headers.clone(),
        sent: 0,
        finished: false,
        elapsed: std::time::Duration::ZERO,
    };
    http_body_util::BodyExt::boxed_unsync(Completing {
        inner: body,
        hooks: std::mem::take(&mut ctx.completions),
        done: Some(done),
        started,
    })
}

/// A response body that runs its completion hooks at its end.
struct Completing {
    inner: ProxyBody,
    hooks: Vec<CompletionHook>,
    done: Option<Completion>,
    started: crate::clock::Ticks,
}

impl Completing {
    fn complete(&mut self, finished: bool) {
        if let Some(mut done) = self.done.take() {
            done.finished = finished;
            done.elapsed = self.started.elapsed();
            for hook in self.hooks.drain(..) {
                hook(&done);
            }
        }
    }
}

impl http_body::Body for Completing {
    type Data = bytes::Bytes;
    type Error = crate::body::BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        use std::task::Poll;
        let frame = std::task::ready!(std::pin::Pin::new(&mut self.inner).poll_frame(cx));
        match &frame {
            Some(Ok(f)) => {
                if let (Some(data), Some(done)) = (f.data_ref(), self.done.as_mut()) {
                    done.sent += data.len() as u64;
                }
                if self.inner.is_end_stream() {
                    self.complete(true);
                }
            }
            Some(Err(_)) => self.complete(false),
            None => self.complete(true),
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Completing {
    fn drop(&mut self) {
        self.complete(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::full;
    use http_body_util::BodyExt;
    use std::sync::Mutex;

    fn head() -> http::response::Parts {
        let mut head = Response::new(()).into_parts().0;
        head.headers
            .insert("x-cost", http::HeaderValue::from_static("7"));
        head
    }

    /// Hooks run once, with the bytes sent and the response headers, when
    /// the body ends; with `finished: false` when it is dropped unread.
    #[tokio::test]
    async fn hooks_run_once_at_the_end_or_on_drop() {
        type Seen = Arc<Mutex<Vec<(u64, bool, String)>>>;
        let seen: Seen = Arc::default();
        let hook = |seen: &Seen| -> CompletionHook {
            let seen = seen.clone();
            Box::new(move |done: &Completion| {
                let cost = done.headers["x-cost"].to_str().unwrap().to_string();
                seen.lock().unwrap().push((done.sent, done.finished, cost));
            })
        };
        let started = crate::clock::Ticks::now();
        let mut ctx = crate::auth::tests_support::context();
        ctx.completions.push(hook(&seen));
        let body = completing(full("hello".into()), &head(), &mut ctx, started);
        assert!(ctx.completions.is_empty(), "the hooks moved to the body");
        assert_eq!(body.collect().await.unwrap().to_bytes(), "hello");
        ctx.completions.push(hook(&seen));
        drop(completing(
            full("abandoned".into()),
            &head(),
            &mut ctx,
            started,
        ));
        assert_eq!(
            *seen.lock().unwrap(),
            vec![(5, true, "7".into()), (0, false, "7".into())]
        );
    }
}
