//! The benchmark backend: a minimal current-thread hyper server.
//!
//! Every proxy in the comparison forwards to this same server, so the
//! backend's cost is identical for all of them and "direct" (load generator
//! straight to the backend) is the ceiling. It answers `200` with an empty
//! body, or with 1 KiB when the path ends in `/1k`; it reads and ignores
//! request bodies and keeps connections alive.

use crate::error::BenchError;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use tokio::net::TcpListener;

/// The path suffix that asks for a 1 KiB body.
pub const ONE_KIB_SUFFIX: &str = "/1k";

/// The 1 KiB body.
static ONE_KIB: [u8; 1024] = [b'x'; 1024];

/// Serves forever on `addr` on a current-thread runtime.
///
/// # Errors
///
/// When the runtime cannot start or the address cannot be bound.
pub fn run(addr: SocketAddr) -> Result<(), BenchError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(BenchError::io("starting the backend runtime"))?;
    runtime.block_on(serve(addr))
}

async fn serve(addr: SocketAddr) -> Result<(), BenchError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(BenchError::io(format!("binding the backend on {addr}")))?;
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service_fn(answer))
                .await;
        });
    }
}

async fn answer(req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let big = req.uri().path().ends_with(ONE_KIB_SUFFIX);
    let _ = req.into_body().collect().await;
    let body = if big {
        Bytes::from_static(&ONE_KIB)
    } else {
        Bytes::new()
    };
    Ok(Response::new(Full::new(body)))
}
