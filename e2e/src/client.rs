//! A small async HTTP client for tests, and readiness polling.
//!
//! Tests talk to the data plane and admin ports over real sockets. The
//! client never follows redirects and never retries, so a test sees exactly
//! what the server answered; [`Reply::echo`] holds the parsed echo JSON when
//! the answer came from `tollgate-echo` through the gateway.

use crate::echo::EchoResponse;
use crate::error::HarnessError;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::{Duration, Instant};

/// Pause between readiness polls.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// One answer, fully read.
#[derive(Clone, Debug)]
pub struct Reply {
    /// The status code.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
    /// The body parsed as echo JSON, when it is echo JSON.
    pub echo: Option<EchoResponse>,
}

impl Reply {
    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The first value of response header `name`, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The echo JSON, or an error quoting the body when it is not echo JSON.
    ///
    /// # Errors
    ///
    /// [`HarnessError::NotEcho`] when the body does not parse.
    pub fn echo(&self) -> Result<EchoResponse, HarnessError> {
        serde_json::from_slice(&self.body).map_err(HarnessError::NotEcho)
    }
}

/// An HTTP/1.1 or h2c (prior knowledge) client over plain TCP.
#[derive(Clone, Debug)]
pub struct HttpClient {
    inner: Client<HttpConnector, Full<Bytes>>,
}

impl Default for HttpClient {
    fn default() -> Self {
        HttpClient::http1()
    }
}

impl HttpClient {
    /// An HTTP/1.1 client with keep-alive.
    pub fn http1() -> Self {
        HttpClient {
            inner: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// An HTTP/2 client that speaks h2c with prior knowledge.
    pub fn h2c() -> Self {
        HttpClient {
            inner: Client::builder(TokioExecutor::new())
                .http2_only(true)
                .build_http(),
        }
    }

    /// `GET url`.
    ///
    /// # Errors
    ///
    /// When the URL is invalid or the exchange fails (not for 4xx/5xx).
    pub async fn get(&self, url: &str) -> Result<Reply, HarnessError> {
        self.request(Method::GET, url, &[]).await
    }

    /// A bodiless request with extra headers (`Host` may be among them).
    ///
    /// # Errors
    ///
    /// When the URL or a header is invalid or the exchange fails.
    pub async fn request(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
    ) -> Result<Reply, HarnessError> {
        let mut builder = Request::builder().method(method).uri(url);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let req = builder
            .body(Full::new(Bytes::new()))
            .map_err(|e| HarnessError::InvalidRequest(e.to_string()))?;
        self.send(req).await
    }

    /// Sends a prepared request and reads the whole answer.
    ///
    /// # Errors
    ///
    /// When the exchange fails or the body can't be read.
    pub async fn send(&self, req: Request<Full<Bytes>>) -> Result<Reply, HarnessError> {
        let url = req.uri().to_string();
        let failed = |source: Box<dyn std::error::Error + Send + Sync>| HarnessError::Request {
            url: url.clone(),
            source,
        };
        let resp = self
            .inner
            .request(req)
            .await
            .map_err(|e| failed(e.into()))?;
        let (parts, body) = resp.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| failed(e.into()))?
            .to_bytes();
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            echo: serde_json::from_slice(&body).ok(),
            body,
        })
    }
}

/// `GET url` with a fresh HTTP/1.1 client.
///
/// # Errors
///
/// See [`HttpClient::get`].
pub async fn get(url: &str) -> Result<Reply, HarnessError> {
    HttpClient::http1().get(url).await
}

/// Polls `url` until it answers 2xx or `timeout` passes.
///
/// # Errors
///
/// [`HarnessError::Timeout`] with the last status or error seen.
pub async fn wait_http_ok(url: &str, timeout: Duration) -> Result<(), HarnessError> {
    let client = HttpClient::http1();
    let deadline = Instant::now() + timeout;
    loop {
        let last = match client.get(url).await {
            Ok(reply) if reply.status.is_success() => return Ok(()),
            Ok(reply) => reply.status.to_string(),
            Err(err) => error_chain(&err),
        };
        if Instant::now() >= deadline {
            return Err(HarnessError::Timeout {
                url: url.to_string(),
                timeout,
                last,
            });
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// An error and its sources on one line.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}
