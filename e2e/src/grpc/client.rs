//! The echo client: tonic's generic `client::Grpc` over one HTTP/2
//! connection (prior knowledge) to a fixed address, so a test can call
//! through the gateway with any `:authority` (a route hostname) while
//! connecting to 127.0.0.1.

use super::{ECHO_SERVICE, EchoReply, EchoRequest};
use futures_util::Stream;
use http::uri::PathAndQuery;
use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tonic::client::Grpc;
use tonic::{Status, Streaming};
use tonic_prost::ProstCodec;

type Codec = ProstCodec<EchoRequest, EchoReply>;

/// A gRPC client of the echo service; clones share the connection.
#[derive(Clone, Debug)]
pub struct GrpcClient {
    grpc: Grpc<Connection>,
    service: String,
}

impl GrpcClient {
    /// Connects to `addr` over h2c; calls carry `authority` as `:authority`.
    ///
    /// # Errors
    ///
    /// The connection or the HTTP/2 handshake failed.
    pub async fn connect(addr: SocketAddr, authority: &str) -> std::io::Result<GrpcClient> {
        let tcp = TcpStream::connect(addr).await?;
        // Small frames (a unary call's HEADERS, DATA, END_STREAM) must not
        // wait for delayed ACKs.
        tcp.set_nodelay(true)?;
        Self::over(tcp, &format!("http://{authority}")).await
    }

    /// Speaks HTTP/2 over `io`, an established connection (a TLS stream
    /// that negotiated `h2`, say); calls go to `origin`
    /// (`https://grpc.example.com`).
    ///
    /// # Errors
    ///
    /// `origin` is not a URI or the HTTP/2 handshake failed.
    pub async fn over<S>(io: S, origin: &str) -> std::io::Result<GrpcClient>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, connection) =
            hyper::client::conn::http2::handshake::<_, _, tonic::body::Body>(
                TokioExecutor::new(),
                TokioIo::new(io),
            )
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(connection);
        let origin: Uri = origin.parse().map_err(std::io::Error::other)?;
        Ok(GrpcClient {
            grpc: Grpc::with_origin(Connection { sender }, origin),
            service: ECHO_SERVICE.to_string(),
        })
    }

    /// The same connection, calling methods of `service` instead.
    pub fn with_service(&self, service: &str) -> GrpcClient {
        GrpcClient {
            grpc: self.grpc.clone(),
            service: service.to_string(),
        }
    }

    fn path(&self, method: &str) -> Result<PathAndQuery, Status> {
        format!("/{}/{method}", self.service)
            .parse()
            .map_err(|e| Status::internal(format!("bad path: {e}")))
    }

    async fn ready(&mut self) -> Result<(), Status> {
        self.grpc
            .ready()
            .await
            .map_err(|e| Status::unavailable(format!("connection not ready: {e}")))
    }

    /// A unary call of `method` (normally `Say`).
    ///
    /// # Errors
    ///
    /// The call's status, when not OK.
    pub async fn unary(
        &mut self,
        method: &str,
        request: tonic::Request<EchoRequest>,
    ) -> Result<tonic::Response<EchoReply>, Status> {
        let path = self.path(method)?;
        self.ready().await?;
        self.grpc.unary(request, path, Codec::default()).await
    }

    /// `Say` with `message` and nothing else.
    ///
    /// # Errors
    ///
    /// The call's status, when not OK.
    pub async fn say(&mut self, message: &str) -> Result<EchoReply, Status> {
        let request = EchoRequest {
            message: message.to_string(),
            ..EchoRequest::default()
        };
        let reply = self.unary("Say", tonic::Request::new(request)).await?;
        Ok(reply.into_inner())
    }

    /// `Count`: a server stream.
    ///
    /// # Errors
    ///
    /// The call's status, when it fails before the stream starts.
    pub async fn count(
        &mut self,
        request: tonic::Request<EchoRequest>,
    ) -> Result<tonic::Response<Streaming<EchoReply>>, Status> {
        let path = self.path("Count")?;
        self.ready().await?;
        self.grpc
            .server_streaming(request, path, Codec::default())
            .await
    }

    /// `Sum`: a client stream.
    ///
    /// # Errors
    ///
    /// The call's status, when not OK.
    pub async fn sum<S>(&mut self, messages: S) -> Result<tonic::Response<EchoReply>, Status>
    where
        S: Stream<Item = EchoRequest> + Send + 'static,
    {
        let path = self.path("Sum")?;
        self.ready().await?;
        let request = tonic::Request::new(messages);
        self.grpc
            .client_streaming(request, path, Codec::default())
            .await
    }

    /// `Chat`: a bidirectional stream.
    ///
    /// # Errors
    ///
    /// The call's status, when it fails before the stream starts.
    pub async fn chat<S>(
        &mut self,
        messages: S,
    ) -> Result<tonic::Response<Streaming<EchoReply>>, Status>
    where
        S: Stream<Item = EchoRequest> + Send + 'static,
    {
        let path = self.path("Chat")?;
        self.ready().await?;
        let request = tonic::Request::new(messages);
        self.grpc.streaming(request, path, Codec::default()).await
    }
}

/// One HTTP/2 connection as the service tonic's client calls.
#[derive(Clone, Debug)]
struct Connection {
    sender: SendRequest<tonic::body::Body>,
}

type ResponseFuture = Pin<Box<dyn Future<Output = hyper::Result<Response<Incoming>>> + Send>>;

impl tower_service::Service<Request<tonic::body::Body>> for Connection {
    type Response = Response<Incoming>;
    type Error = hyper::Error;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.sender.poll_ready(cx)
    }

    fn call(&mut self, request: Request<tonic::body::Body>) -> Self::Future {
        let mut sender = self.sender.clone();
        Box::pin(async move { sender.send_request(request).await })
    }
}
