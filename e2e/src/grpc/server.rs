//! The echo backend's server side: a hyper server (h2c, or TLS with ALPN
//! `h2`) whose one service hands each call to tonic's `server::Grpc` by
//! method name.

use super::{EchoReply, EchoRequest};
use crate::tls::{Leaf, server_config};
use futures_util::{Stream, StreamExt, stream};
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tonic::metadata::{BinaryMetadataValue, MetadataMap, MetadataValue};
use tonic::server::{
    ClientStreamingService, Grpc, ServerStreamingService, StreamingService, UnaryService,
};
use tonic::{Code, Status, Streaming};
use tonic_prost::ProstCodec;

type Codec = ProstCodec<EchoReply, EchoRequest>;
type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type Replies = Pin<Box<dyn Stream<Item = Result<EchoReply, Status>> + Send>>;

/// A running gRPC echo backend; it stops with the test's runtime.
#[derive(Debug)]
pub struct GrpcEcho {
    /// Where it listens.
    pub addr: SocketAddr,
    calls: Arc<AtomicUsize>,
}

impl GrpcEcho {
    /// Starts a cleartext HTTP/2 (h2c) backend named `name` on 127.0.0.1.
    ///
    /// # Errors
    ///
    /// No port could be bound.
    pub async fn start(name: &str) -> std::io::Result<GrpcEcho> {
        Self::start_at(name, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts a cleartext HTTP/2 (h2c) backend named `name` on `addr` (the
    /// benchmark's backend, on a port chosen beforehand).
    ///
    /// # Errors
    ///
    /// The address could not be bound.
    pub async fn start_at(name: &str, addr: SocketAddr) -> std::io::Result<GrpcEcho> {
        Self::spawn(name, None, addr).await
    }

    /// Starts a TLS backend named `name` serving `leaf` with ALPN `h2`.
    ///
    /// # Errors
    ///
    /// The certificate does not load or no port could be bound.
    pub async fn start_tls(name: &str, leaf: &Leaf) -> std::io::Result<GrpcEcho> {
        let config = server_config(leaf, &["h2"], None).map_err(std::io::Error::other)?;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        Self::spawn(name, Some(acceptor), SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    async fn spawn(
        name: &str,
        tls: Option<TlsAcceptor>,
        addr: SocketAddr,
    ) -> std::io::Result<GrpcEcho> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let calls = Arc::new(AtomicUsize::new(0));
        let service = EchoService {
            name: Arc::from(name),
            calls: Arc::clone(&calls),
        };
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let _ = tcp.set_nodelay(true);
                let (service, tls) = (service.clone(), tls.clone());
                tokio::spawn(async move {
                    match tls {
                        None => serve(tcp, service).await,
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(tcp).await {
                                serve(stream, service).await;
                            }
                        }
                    }
                });
            }
        });
        Ok(GrpcEcho { addr, calls })
    }

    /// Calls received so far, of any method.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(io: S, service: EchoService) {
    let _ = auto::Builder::new(TokioExecutor::new())
        .http2_only()
        .serve_connection(TokioIo::new(io), service)
        .await;
}

#[derive(Clone, Debug)]
struct EchoService {
    name: Arc<str>,
    calls: Arc<AtomicUsize>,
}

impl hyper::service::Service<Request<Incoming>> for EchoService {
    type Response = Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let call = Call {
            backend: Arc::clone(&self.name),
            path: req.uri().path().to_string(),
        };
        let method = call.path.rsplit('/').next().unwrap_or_default().to_string();
        Box::pin(async move {
            let mut grpc = Grpc::new(Codec::default());
            Ok(match method.as_str() {
                "Count" => grpc.server_streaming(call, req).await,
                "Sum" => grpc.client_streaming(call, req).await,
                "Chat" => grpc.streaming(call, req).await,
                _ => grpc.unary(call, req).await,
            })
        })
    }
}

/// One call: who answers, on which path.
#[derive(Clone, Debug)]
struct Call {
    backend: Arc<str>,
    path: String,
}

impl Call {
    fn reply(&self, metadata: &MetadataMap, message: String, count: u32) -> EchoReply {
        EchoReply {
            message,
            backend: self.backend.to_string(),
            path: self.path.clone(),
            metadata: text_metadata(metadata),
            count,
        }
    }
}

fn text_metadata(metadata: &MetadataMap) -> HashMap<String, String> {
    metadata
        .clone()
        .into_headers()
        .iter()
        .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_string())))
        .collect()
}

/// The status a request asks to fail with, carrying binary metadata so
/// tests can see `-bin` trailers pass through.
fn failure(code: i32) -> Status {
    let mut status = Status::new(Code::from_i32(code), "failed as asked");
    status.metadata_mut().insert_bin(
        "x-detail-bin",
        BinaryMetadataValue::from_bytes(&[0, 159, 146, 150, 255]),
    );
    status
}

impl UnaryService<EchoRequest> for Call {
    type Response = EchoReply;
    type Future = BoxFuture<Result<tonic::Response<EchoReply>, Status>>;

    fn call(&mut self, request: tonic::Request<EchoRequest>) -> Self::Future {
        let call = self.clone();
        Box::pin(async move {
            let (metadata, _, message) = request.into_parts();
            tokio::time::sleep(Duration::from_millis(message.delay_ms.into())).await;
            if message.fail_code != 0 {
                return Err(failure(message.fail_code));
            }
            let mut response = tonic::Response::new(call.reply(&metadata, message.message, 0));
            if let Ok(name) = MetadataValue::try_from(&*call.backend) {
                response.metadata_mut().insert("x-backend", name);
            }
            response
                .metadata_mut()
                .insert_bin("x-echo-bin", BinaryMetadataValue::from_bytes(&[1, 2, 255]));
            Ok(response)
        })
    }
}

impl ServerStreamingService<EchoRequest> for Call {
    type Response = EchoReply;
    type ResponseStream = Replies;
    type Future = BoxFuture<Result<tonic::Response<Replies>, Status>>;

    fn call(&mut self, request: tonic::Request<EchoRequest>) -> Self::Future {
        let call = self.clone();
        Box::pin(async move {
            let (metadata, _, message) = request.into_parts();
            let delay = Duration::from_millis(message.delay_ms.into());
            let fail = message.fail_code;
            let replies = stream::iter(0..message.count).then(move |i| {
                let reply = call.reply(&metadata, message.message.clone(), i);
                async move {
                    if i > 0 {
                        tokio::time::sleep(delay).await;
                    }
                    Ok(reply)
                }
            });
            let end = stream::iter((fail != 0).then(|| Err(failure(fail))));
            Ok(tonic::Response::new(Box::pin(replies.chain(end)) as Replies))
        })
    }
}

impl ClientStreamingService<EchoRequest> for Call {
    type Response = EchoReply;
    type Future = BoxFuture<Result<tonic::Response<EchoReply>, Status>>;

    fn call(&mut self, request: tonic::Request<Streaming<EchoRequest>>) -> Self::Future {
        let call = self.clone();
        Box::pin(async move {
            let (metadata, _, mut messages) = request.into_parts();
            let mut seen = Vec::new();
            while let Some(m) = messages.message().await? {
                seen.push(m.message);
            }
            let count = u32::try_from(seen.len()).unwrap_or(u32::MAX);
            Ok(tonic::Response::new(call.reply(
                &metadata,
                seen.join(","),
                count,
            )))
        })
    }
}

impl StreamingService<EchoRequest> for Call {
    type Response = EchoReply;
    type ResponseStream = Replies;
    type Future = BoxFuture<Result<tonic::Response<Replies>, Status>>;

    fn call(&mut self, request: tonic::Request<Streaming<EchoRequest>>) -> Self::Future {
        let call = self.clone();
        Box::pin(async move {
            let (metadata, _, messages) = request.into_parts();
            let replies = messages.enumerate().map(move |(i, m)| {
                let i = u32::try_from(i).unwrap_or(u32::MAX);
                m.map(|m| call.reply(&metadata, m.message, i))
            });
            Ok(tonic::Response::new(Box::pin(replies) as Replies))
        })
    }
}
