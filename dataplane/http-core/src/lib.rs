//! What Tollgate's controller and data plane must agree on about HTTP.
//!
//! The data plane normalizes every request path before routing; the
//! controller's `compile` normalizes path match values the same way, so a
//! rule written for `/%7Euser` matches a request for `/~user`. Both link this
//! crate instead of the controller linking the data plane: it holds pure
//! functions on strings and depends on no HTTP stack, runtime or Kubernetes
//! client.

pub mod normalize;
