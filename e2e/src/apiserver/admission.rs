//! Admission of custom resources: what a write of an object of a CRD goes
//! through before it is stored, in the real server's order.
//!
//! 1. Prune fields the schema does not declare (refused with 400 under
//!    `fieldValidation=Strict`), and non-nullable nulls.
//! 2. Apply `default`s.
//! 3. Validate against the OpenAPI schema (422 with every field error).
//! 4. Evaluate the `x-kubernetes-validations` CEL rules, only when the
//!    schema validation passed (422).
//!
//! Built-in kinds are not checked here: the test server has no schemas for
//! them beyond their keyed lists.

use super::cel::Rules;
use super::error::ApiError;
use super::kinds::ResourceType;
use super::objects::meta_str;
use super::{prune, validation};
use serde_json::Value;

/// Prunes, defaults and validates `object` of `rt` (`old`: the stored
/// object of an update); `strict` is `fieldValidation=Strict`.
///
/// # Errors
///
/// `BadRequest` for unknown fields under `strict`; `Invalid` with the
/// field errors of the schema or the failed CEL rules.
pub(crate) fn admit(
    rules: &mut Rules,
    rt: &ResourceType,
    object: &mut Value,
    old: Option<&Value>,
    strict: bool,
) -> Result<(), ApiError> {
    if !rt.custom {
        return Ok(());
    }
    let unknown = prune::prune(object, &rt.schema);
    if strict && !unknown.is_empty() {
        let fields: Vec<String> = unknown
            .iter()
            .map(|f| format!("unknown field \"{f}\""))
            .collect();
        return Err(ApiError::BadRequest(format!(
            "strict decoding error: {}",
            fields.join(", ")
        )));
    }
    prune::default(object, &rt.schema);
    let mut errors = validation::validate(object, &rt.schema);
    if errors.is_empty() {
        errors = rules.check(rt, object, old);
    }
    match errors.as_slice() {
        [] => Ok(()),
        [one] => Err(invalid(rt, object, one.clone())),
        many => Err(invalid(rt, object, format!("[{}]", many.join(", ")))),
    }
}

fn invalid(rt: &ResourceType, object: &Value, detail: String) -> ApiError {
    ApiError::Invalid(format!(
        "{}.{} \"{}\" is invalid: {detail}",
        rt.kind,
        rt.group,
        meta_str(object, "name")
    ))
}
