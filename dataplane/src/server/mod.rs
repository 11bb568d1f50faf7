//! Downstream serving: sockets, connections, HTTP/1.1, HTTP/2 and h2c, and
//! the [`Dataplane`] handle that ties them to the current runtime.
//!
//! The flow: [`Dataplane::apply`] builds a runtime and binds sockets
//! (`handle`, `listener`); each accepted connection picks its protocol and
//! limits (`conn`, `h2c`); each request is counted for the idle timeout
//! (`activity`), checked and handed to the proxy with the runtime loaded
//! once (`service`). `drain` carries shutdown and socket-removal signals.

/// Implements `AsyncWrite` for an IO wrapper `$wrapper<T>` with an `inner: T`
/// field by passing every call straight to `inner`: the wrappers here only
/// look at what is read.
macro_rules! delegate_async_write {
    ($wrapper:ident) => {
        impl<T: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for $wrapper<T> {
            fn poll_write(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
            }

            fn poll_write_vectored(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                self.inner.is_write_vectored()
            }

            fn poll_flush(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut self.inner).poll_flush(cx)
            }

            fn poll_shutdown(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
            }
        }
    };
}
use delegate_async_write;

mod activity;
mod conn;
mod drain;
mod frames;
mod framing;
mod gate;
mod h1;
mod h2c;
mod handle;
mod headclock;
mod listener;
mod prefixed;
mod rest;
mod service;
mod status;

pub use handle::{ApplyError, Dataplane, DataplaneOptions};
pub use status::{ConnectionCounts, DataplaneStatus, Rejected};

/// The request pipeline the server hands requests to.
mod pipeline {
    pub(crate) use crate::proxy::{ConnInfo, ProxyBody, collect_body, handle, head_is_valid};
    pub(crate) use crate::runtime::Runtime;
    pub(crate) use crate::upstream::Clients;
}
