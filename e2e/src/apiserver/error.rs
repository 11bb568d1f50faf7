//! API errors as the Kubernetes API reports them: `Status` objects.
//!
//! Every failed request of the test API server ends in one [`ApiError`],
//! and [`ApiError::to_status`] is the one place that turns it into the
//! `Status` body clients (kube-rs, kubectl) parse: `code`, `reason` and
//! `message` follow the real server, so client error handling (409 retry,
//! 404 ignore, 410 relist) is exercised for real.

use serde_json::{Value, json};

/// Why an API request failed, with the HTTP code and `Status` reason it maps to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// 404 `NotFound`: no such object, resource or path.
    #[error("{0}")]
    NotFound(String),
    /// 403 `Forbidden`: the write is not allowed (a namespace being deleted).
    #[error("{0}")]
    Forbidden(String),
    /// 409 `AlreadyExists`: create of an existing name.
    #[error("{0}")]
    AlreadyExists(String),
    /// 409 `Conflict`: stale `resourceVersion` on update.
    #[error("{0}")]
    Conflict(String),
    /// 422 `Invalid`: the object breaks a rule the server enforces.
    #[error("{0}")]
    Invalid(String),
    /// 400 `BadRequest`: the request itself is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// 405 `MethodNotAllowed`: the verb is not served on this path.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 415 `UnsupportedMediaType`: an unknown patch content type.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 410 `Expired`: the resource version is older than the kept history.
    #[error("{0}")]
    Gone(String),
}

impl ApiError {
    /// The HTTP status code.
    pub fn code(&self) -> u16 {
        match self {
            ApiError::NotFound(_) => 404,
            ApiError::Forbidden(_) => 403,
            ApiError::AlreadyExists(_) | ApiError::Conflict(_) => 409,
            ApiError::Invalid(_) => 422,
            ApiError::BadRequest(_) => 400,
            ApiError::MethodNotAllowed(_) => 405,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::Gone(_) => 410,
        }
    }

    /// The `Status.reason` the real server uses for this failure.
    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::NotFound(_) => "NotFound",
            ApiError::Forbidden(_) => "Forbidden",
            ApiError::AlreadyExists(_) => "AlreadyExists",
            ApiError::Conflict(_) => "Conflict",
            ApiError::Invalid(_) => "Invalid",
            ApiError::BadRequest(_) => "BadRequest",
            ApiError::MethodNotAllowed(_) => "MethodNotAllowed",
            ApiError::UnsupportedMediaType(_) => "UnsupportedMediaType",
            ApiError::Gone(_) => "Expired",
        }
    }

    /// The `Status` object (kind `Status`, `status: Failure`).
    pub fn to_status(&self) -> Value {
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code(),
        })
    }

    /// `<plural>.<group> "<name>" not found`, the real server's wording.
    pub(crate) fn not_found(resource: &str, name: &str) -> ApiError {
        ApiError::NotFound(format!("{resource} \"{name}\" not found"))
    }
}
