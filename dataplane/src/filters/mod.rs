//! The Gateway API HTTPRoute filters that change a request or answer it, as
//! pure functions.
//!
//! The proxy calls them at the right stage of the request pipeline; keeping
//! them free of I/O and of hyper types beyond `http` makes every rule of the
//! specification a table test. Each file holds one filter:
//! [`apply_header_modifier`] (request and response header modifiers),
//! [`rewrite_path`] (`URLRewrite` and redirect paths), [`redirect_location`]
//! (`RequestRedirect`), [`cors::preflight`] / [`cors::decorate`] (`CORS`),
//! and `MirrorStage` (which requests a `RequestMirror` copies).

pub mod cors;
mod headers;
mod mirror;
mod redirect;
mod rewrite;

pub use headers::apply_header_modifier;
pub(crate) use mirror::MirrorStage;
pub use redirect::{RedirectInput, redirect_location};
pub use rewrite::rewrite_path;
