//! The OTLP/gRPC side of the receiver: the three collector services.
//!
//! The generated tonic servers of `opentelemetry-proto` do the gRPC framing,
//! decompression and decoding; [`Collector`] implements their traits by
//! handing each request to the shared store. [`GrpcRouter`] picks the
//! service by path so that the plain hyper server of [`super::serve`] can
//! run them without tonic's transport (and its router dependencies).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::{Request, Response};
use hyper::body::Incoming;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tonic::codec::CompressionEncoding;
use tonic::codegen::Service as _;
use tonic::{Status, metadata::MetadataMap};

use super::store::{Export, Payload, Shared};
use super::value::Protocol;

/// Large enough for any batch a test sends; tonic's default is 4 MiB.
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Implements the three collector services over the shared store.
#[derive(Debug)]
struct Collector {
    shared: Arc<Shared>,
}

impl Collector {
    /// Applies the test's controls, then keeps the request.
    async fn accept(&self, metadata: &MetadataMap, payload: Payload) -> Result<(), Status> {
        self.shared
            .admit()
            .await
            .map_err(|_| Status::unavailable("the test receiver is set to fail"))?;
        let headers = metadata
            .clone()
            .into_headers()
            .iter()
            .filter_map(|(name, value)| {
                Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
            })
            .collect();
        self.shared.record(Export {
            protocol: Protocol::Grpc,
            headers,
            payload,
        });
        Ok(())
    }
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, Status> {
        let (metadata, _, message) = request.into_parts();
        self.accept(&metadata, Payload::Traces(message)).await?;
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, Status> {
        let (metadata, _, message) = request.into_parts();
        self.accept(&metadata, Payload::Metrics(message)).await?;
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, Status> {
        let (metadata, _, message) = request.into_parts();
        self.accept(&metadata, Payload::Logs(message)).await?;
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}

/// The three services behind one hyper service, chosen by the request path
/// (`/<package>.<Service>/<Method>`).
#[derive(Debug, Clone)]
pub(crate) struct GrpcRouter {
    traces: TraceServiceServer<Collector>,
    metrics: MetricsServiceServer<Collector>,
    logs: LogsServiceServer<Collector>,
}

impl GrpcRouter {
    /// Services that keep what they receive in `shared`; each accepts gzip.
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        let collector = Arc::new(Collector { shared });
        Self {
            traces: TraceServiceServer::from_arc(Arc::clone(&collector))
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
            metrics: MetricsServiceServer::from_arc(Arc::clone(&collector))
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
            logs: LogsServiceServer::from_arc(collector)
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
        }
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = Result<T, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for GrpcRouter {
    type Response = Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let path = request.uri().path();
        // The generated servers answer UNIMPLEMENTED to a path they do not
        // know, so anything that is neither traces nor metrics goes to logs.
        if path.starts_with("/opentelemetry.proto.collector.trace.v1.TraceService/") {
            let mut service = self.traces.clone();
            Box::pin(async move { service.call(request).await })
        } else if path.starts_with("/opentelemetry.proto.collector.metrics.v1.MetricsService/") {
            let mut service = self.metrics.clone();
            Box::pin(async move { service.call(request).await })
        } else {
            let mut service = self.logs.clone();
            Box::pin(async move { service.call(request).await })
        }
    }
}
