//! The accept loop both transports run on: hyper, HTTP/1 and HTTP/2, over
//! plain TCP or, for a TLS receiver, rustls.
//!
//! Each listener runs in one task that owns its connections in a
//! [`JoinSet`], so aborting that task closes the listening socket and every
//! open connection at once: that is how the receiver "goes down" for tests
//! that check a dead collector never slows the gateway.

use std::error::Error as StdError;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::{Body, Incoming};
use hyper::service::Service;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

/// Serves `service` on every connection `listener` accepts, over TLS when
/// `tls` is given, until the task running it is aborted. A connection
/// whose handshake fails (an untrusted or missing client certificate) is
/// closed and counted in `refused`.
pub(crate) async fn serve<S, B>(
    listener: TcpListener,
    service: S,
    tls: Option<TlsAcceptor>,
    refused: Arc<AtomicUsize>,
) where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let service = service.clone();
                    let tls = tls.clone();
                    let refused = Arc::clone(&refused);
                    connections.spawn(async move {
                        // A connection error (a client gone mid-request) only
                        // ends that connection.
                        let builder = auto::Builder::new(TokioExecutor::new());
                        match tls {
                            None => {
                                let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                            }
                            Some(tls) => match tls.accept(stream).await {
                                Ok(stream) => {
                                    let io = TokioIo::new(stream);
                                    let _ = builder.serve_connection(io, service).await;
                                }
                                Err(_) => {
                                    refused.fetch_add(1, Ordering::Relaxed);
                                }
                            },
                        }
                    });
                }
                // Out of file descriptors and the like: back off, keep serving.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}
