//! The `ObjectMeta` rules every write passes, as `ValidateObjectMeta` and
//! `ValidateObjectMetaUpdate` of the real server check them: names by kind
//! (DNS subdomain, DNS label, RFC 1035 label for Services, `<plural>.<group>`
//! for CRDs), label keys and values, and no new finalizers on an object
//! that is being deleted.

use super::error::ApiError;
use super::kinds::ResourceType;
use super::objects::{finalizers, meta_str};
use serde_json::Value;

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric \
    characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', \
    regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters \
    or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex \
    used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1035_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', \
    start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or \
    'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

/// Whether `s` is an RFC 1123 label: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63.
pub(crate) fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    let inner = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-';
    let edge = |c: Option<&u8>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    !s.is_empty() && s.len() <= 63 && b.iter().all(inner) && edge(b.first()) && edge(b.last())
}

/// Whether `s` is an RFC 1123 subdomain: dot-separated labels, at most 253.
pub(crate) fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// Whether `s` is an RFC 1035 label (starts with a letter).
fn is_dns1035_label(s: &str) -> bool {
    is_dns_label(s) && s.as_bytes().first().is_some_and(u8::is_ascii_lowercase)
}

/// A qualified name (`[prefix/]name`) as label keys and finalizers use.
fn is_qualified_name(s: &str) -> bool {
    let (prefix, name) = match s.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    let b = name.as_bytes();
    let alnum = |c: Option<&u8>| c.is_some_and(u8::is_ascii_alphanumeric);
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && alnum(b.first())
        && alnum(b.last())
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
    name_ok && prefix.is_none_or(is_dns_subdomain)
}

/// A label value: empty, or a qualified name part of at most 63 characters.
fn is_label_value(s: &str) -> bool {
    s.is_empty() || (!s.contains('/') && is_qualified_name(s))
}

fn invalid(rt: &ResourceType, name: &str, detail: String) -> ApiError {
    ApiError::Invalid(format!("{} \"{name}\" is invalid: {detail}", rt.kind))
}

/// Checks the name and labels of `object` of type `rt`.
///
/// # Errors
///
/// `Invalid` with the real server's wording.
pub(crate) fn check(rt: &ResourceType, object: &Value) -> Result<(), ApiError> {
    let name = meta_str(object, "name");
    let name_error = match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Namespace") => (!is_dns_label(name)).then_some(LABEL_MSG.to_string()),
        ("", "Service") => (!is_dns1035_label(name)).then_some(DNS1035_MSG.to_string()),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            let want = format!(
                "{}.{}",
                object
                    .pointer("/spec/names/plural")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
                object
                    .pointer("/spec/group")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            );
            (name != want).then(|| format!("must be spec.names.plural+\".\"+spec.group ({want})"))
        }
        _ => (!is_dns_subdomain(name)).then_some(SUBDOMAIN_MSG.to_string()),
    };
    if let Some(msg) = name_error {
        return Err(invalid(
            rt,
            name,
            format!("metadata.name: Invalid value: \"{name}\": {msg}"),
        ));
    }
    let labels = object
        .pointer("/metadata/labels")
        .and_then(Value::as_object);
    for (key, value) in labels.into_iter().flatten() {
        if !is_qualified_name(key) {
            return Err(invalid(
                rt,
                name,
                format!(
                    "metadata.labels: Invalid value: \"{key}\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
                ),
            ));
        }
        let text = value.as_str().unwrap_or_default();
        if !is_label_value(text) {
            return Err(invalid(
                rt,
                name,
                format!(
                    "metadata.labels: Invalid value: \"{text}\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
                ),
            ));
        }
    }
    Ok(())
}

/// Refuses finalizers added to an object that is being deleted.
///
/// # Errors
///
/// `Invalid` (a `Forbidden` field error), as the real server answers.
pub(crate) fn check_update(rt: &ResourceType, old: &Value, new: &Value) -> Result<(), ApiError> {
    if meta_str(old, "deletionTimestamp").is_empty() {
        return Ok(());
    }
    let before = finalizers(old);
    let added: Vec<String> = finalizers(new)
        .iter()
        .filter(|f| !before.contains(f))
        .filter_map(|f| f.as_str().map(|s| format!("{s:?}")))
        .collect();
    if added.is_empty() {
        return Ok(());
    }
    Err(invalid(
        rt,
        meta_str(old, "name"),
        format!(
            "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
            added.join(", ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DNS names as Kubernetes defines them.
    #[test]
    fn dns_names() {
        for ok in ["a", "a-b", "a.b-c", "0abc"] {
            assert!(is_dns_subdomain(ok), "{ok}");
        }
        for bad in ["", "A", "-a", "a-", "a..b", "a_b", &"a".repeat(254)] {
            assert!(!is_dns_subdomain(bad), "{bad}");
        }
        assert!(!is_dns_label("a.b") && !is_dns_label(&"a".repeat(64)));
        assert!(!is_dns1035_label("0abc") && is_dns1035_label("abc"));
        assert!(is_qualified_name("tollgate.dev/x_y.z") && !is_qualified_name("a/b/c"));
    }
}
