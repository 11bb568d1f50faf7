//! Label and field selectors, parsed from list and watch queries.
//!
//! Lists and watches filter objects with `labelSelector` (`=`, `==`, `!=`,
//! `in`, `notin`, exists, `!`exists) and `fieldSelector` (`=`, `==`, `!=` on a
//! dotted field path such as `metadata.name` or `type`). Field selectors are
//! more lenient than the real server's, which only accepts a fixed set of
//! fields per kind: any dotted path to a string works here.

use super::error::ApiError;
use serde_json::Value;

/// One label requirement.
#[derive(Clone, Debug, PartialEq, Eq)]
enum LabelReq {
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed `labelSelector`: every requirement must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct LabelSelector(Vec<LabelReq>);

impl LabelSelector {
    /// Parses `a=b,c!=d,e in (x,y),f notin (z),g,!h`.
    pub(crate) fn parse(text: &str) -> Result<LabelSelector, ApiError> {
        split_top_level(text)
            .into_iter()
            .map(|term| parse_label_term(term.trim()))
            .collect::<Result<Vec<_>, _>>()
            .map(LabelSelector)
    }

    /// Whether `object`'s labels satisfy every requirement.
    pub(crate) fn matches(&self, object: &Value) -> bool {
        let label = |key: &str| {
            object
                .pointer("/metadata/labels")
                .and_then(|l| l.get(key))
                .and_then(Value::as_str)
        };
        self.0.iter().all(|req| match req {
            LabelReq::In(k, vals) => label(k).is_some_and(|v| vals.iter().any(|x| x == v)),
            LabelReq::NotIn(k, vals) => label(k).is_none_or(|v| !vals.iter().any(|x| x == v)),
            LabelReq::Exists(k) => label(k).is_some(),
            LabelReq::NotExists(k) => label(k).is_none(),
        })
    }
}

/// Splits on commas outside parentheses, dropping empty terms.
fn split_top_level(text: &str) -> Vec<&str> {
    let (mut terms, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                terms.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&text[start..]);
    terms.into_iter().filter(|t| !t.trim().is_empty()).collect()
}

fn parse_label_term(term: &str) -> Result<LabelReq, ApiError> {
    let invalid = || ApiError::BadRequest(format!("unable to parse requirement: {term:?}"));
    if let Some(key) = term.strip_prefix('!') {
        return Ok(LabelReq::NotExists(key.trim().to_string()));
    }
    for (op, negate) in [("!=", true), ("==", false), ("=", false)] {
        if let Some((k, v)) = term.split_once(op) {
            let (k, v) = (k.trim().to_string(), vec![v.trim().to_string()]);
            return Ok(if negate {
                LabelReq::NotIn(k, v)
            } else {
                LabelReq::In(k, v)
            });
        }
    }
    let set = |rest: &str| -> Result<Vec<String>, ApiError> {
        let inner = rest
            .trim()
            .strip_prefix('(')
            .and_then(|r| r.strip_suffix(')'))
            .ok_or_else(invalid)?;
        Ok(inner
            .split(',')
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect())
    };
    let mut words = term.splitn(2, char::is_whitespace);
    let key = words.next().unwrap_or_default().to_string();
    let rest = words.next().unwrap_or_default().trim_start();
    if let Some(values) = rest.strip_prefix("notin") {
        Ok(LabelReq::NotIn(key, set(values)?))
    } else if let Some(values) = rest.strip_prefix("in") {
        Ok(LabelReq::In(key, set(values)?))
    } else if rest.is_empty() && !key.is_empty() {
        Ok(LabelReq::Exists(key))
    } else {
        Err(invalid())
    }
}

/// A parsed `fieldSelector`: (dotted path, wanted value, negated).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct FieldSelector(Vec<(String, String, bool)>);

impl FieldSelector {
    /// Parses `metadata.name=x,type!=y`.
    pub(crate) fn parse(text: &str) -> Result<FieldSelector, ApiError> {
        let mut reqs = Vec::new();
        for term in text.split(',').filter(|t| !t.trim().is_empty()) {
            let (path, value, negate) = if let Some((p, v)) = term.split_once("!=") {
                (p, v, true)
            } else if let Some((p, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                (p, v, false)
            } else {
                return Err(ApiError::BadRequest(format!(
                    "invalid field selector: {term:?}"
                )));
            };
            reqs.push((path.trim().to_string(), value.trim().to_string(), negate));
        }
        Ok(FieldSelector(reqs))
    }

    /// Whether every requirement holds; a missing field reads as empty.
    pub(crate) fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|(path, want, negate)| {
            let pointer = format!("/{}", path.replace('.', "/"));
            let have = object
                .pointer(&pointer)
                .and_then(Value::as_str)
                .unwrap_or_default();
            (have == want) != *negate
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Each label operator keeps exactly the objects the Kubernetes rules select.
    #[test]
    fn label_selector_operators() {
        let obj = json!({"metadata": {"labels": {"app": "web", "tier": "front"}}});
        let cases = [
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app in (api, web)", true),
            ("app notin (web)", false),
            ("tier", true),
            ("!tier", false),
            ("!missing", true),
            ("missing!=x", true),
            ("app=web,tier in (back)", false),
            ("", true),
        ];
        for (text, want) in cases {
            let sel = LabelSelector::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(sel.matches(&obj), want, "{text}");
        }
    }

    /// Field selectors compare dotted paths; missing fields read as empty.
    #[test]
    fn field_selector_paths() {
        let obj =
            json!({"metadata": {"name": "a", "namespace": "ns"}, "type": "kubernetes.io/tls"});
        let cases = [
            ("metadata.name=a", true),
            ("metadata.name!=a", false),
            ("metadata.namespace==ns,type=kubernetes.io/tls", true),
            ("type=Opaque", false),
            ("spec.missing=", true),
        ];
        for (text, want) in cases {
            let sel = FieldSelector::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(sel.matches(&obj), want, "{text}");
        }
    }
}
