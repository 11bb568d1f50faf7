//! Which controller replica serves data planes.
//!
//! Every replica compiles the same snapshots, but a data plane's reports
//! (what it applied, what it refused) decide its Gateway's `Programmed`
//! condition, and only the leader writes status. Reports kept by another
//! replica would never reach a status write, so with several replicas
//! behind one Service a Gateway could stay `Pending` for ever. So only the
//! leader serves snapshot streams and takes reports: another replica
//! answers 503 with `Retry-After`, the data plane backs off with jitter and
//! reconnects (the Service soon lands it on the leader), serving its last
//! snapshot meanwhile; and a replica that loses the lead ends its streams,
//! so their data planes move to the new leader.
//!
//! Without leader election (`--manifests`) the gate stays open.

use crate::serve::{Body, respond};
use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::Response;
use hyper::body::Frame;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::sync::watch;

/// Seconds a refused data plane is asked to wait before reconnecting.
const RETRY_AFTER_SECONDS: &str = "1";

/// Open while this replica serves data planes.
#[derive(Clone, Debug)]
pub struct ServingGate {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for ServingGate {
    /// Open: a lone controller serves.
    fn default() -> Self {
        ServingGate {
            tx: Arc::new(watch::channel(true).0),
        }
    }
}

impl ServingGate {
    /// Keeps the gate open exactly while `leader` says this replica leads;
    /// returns when leadership is no longer reported (shutdown).
    pub async fn follow(self, mut leader: watch::Receiver<bool>) {
        loop {
            let leads = *leader.borrow_and_update();
            self.tx.send_replace(leads);
            if leader.changed().await.is_err() {
                self.tx.send_replace(false);
                return;
            }
        }
    }

    /// Whether this replica serves data planes now.
    pub fn is_open(&self) -> bool {
        *self.tx.borrow()
    }

    /// The answer to a data plane while the gate is closed.
    pub fn refusal(&self) -> Option<Response<Body>> {
        if self.is_open() {
            return None;
        }
        let mut response = respond(
            503,
            "text/plain; charset=utf-8",
            "this controller replica is not the leader; reconnect\n",
        );
        response.headers_mut().insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static(RETRY_AFTER_SECONDS),
        );
        Some(response)
    }

    /// `response` whose body ends when the gate closes.
    pub fn guard(&self, response: Response<Body>) -> Response<Body> {
        let (parts, body) = response.into_parts();
        let closed = {
            let mut rx = self.tx.subscribe();
            async move {
                // Also ends when the gate itself is dropped.
                let _ = rx.wait_for(|open| !open).await;
            }
        };
        let frames = futures_util::stream::unfold(
            (body, Box::pin(closed)),
            |(mut body, mut closed)| async move {
                tokio::select! {
                    frame = body.frame() => {
                        let frame: Frame<Bytes> = frame?.ok()?;
                        Some((Ok::<_, Infallible>(frame), (body, closed)))
                    }
                    () = &mut closed => None,
                }
            },
        );
        Response::from_parts(parts, StreamBody::new(frames).boxed_unsync())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The gate follows leadership: closed answers 503 with Retry-After,
    /// and an open stream ends when the lead is lost.
    #[tokio::test]
    async fn follows_leadership_and_ends_streams() {
        let gate = ServingGate::default();
        assert!(gate.refusal().is_none(), "a lone controller serves");
        let (leader_tx, leader_rx) = watch::channel(false);
        let task = tokio::spawn(gate.clone().follow(leader_rx));
        tokio::time::sleep(Duration::from_millis(20)).await;
        let refused = gate.refusal().expect("a follower refuses");
        assert_eq!(refused.status(), 503);
        assert_eq!(refused.headers()[http::header::RETRY_AFTER], "1");

        leader_tx.send_replace(true);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(gate.is_open());
        let endless = futures_util::stream::pending::<Result<Frame<Bytes>, Infallible>>();
        let guarded = gate.guard(Response::new(StreamBody::new(endless).boxed_unsync()));
        let body = tokio::spawn(guarded.into_body().collect());
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!body.is_finished(), "the stream stays open while leading");
        leader_tx.send_replace(false);
        let ended = tokio::time::timeout(Duration::from_secs(2), body).await;
        assert!(
            ended.is_ok(),
            "the stream did not end when the lead was lost"
        );
        drop(leader_tx);
        tokio::time::timeout(Duration::from_secs(2), task)
            .await
            .expect("follow returns when leadership is no longer reported")
            .expect("follow task");
        assert!(!gate.is_open());
    }
}
