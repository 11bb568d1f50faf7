//! The JSONPath subset CRD printer columns use: `.field`, `[index]`, and
//! `[?(@.field=="value")]` filters, e.g.
//! `.status.ancestors[0].conditions[?(@.type=="Accepted")].status`.
//! Anything else finds nothing, as a column the real server cannot
//! evaluate prints empty.

use serde_json::Value;

/// One step of a path.
#[derive(Debug, PartialEq)]
enum Step {
    Field(String),
    Index(usize),
    /// Keep array items whose field equals the value.
    Filter(String, String),
}

/// The first value `path` finds in `object`.
pub(crate) fn first(object: &Value, path: &str) -> Option<Value> {
    let steps = parse(path)?;
    let mut current = vec![object];
    for step in &steps {
        current = current
            .into_iter()
            .flat_map(|v| -> Vec<&Value> {
                match step {
                    Step::Field(f) => v.get(f).into_iter().collect(),
                    Step::Index(i) => v.get(*i).into_iter().collect(),
                    Step::Filter(f, want) => v
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|item| item.get(f).and_then(Value::as_str) == Some(want))
                        .collect(),
                }
            })
            .collect();
    }
    current.first().map(|v| (*v).clone())
}

fn parse(path: &str) -> Option<Vec<Step>> {
    let mut steps = Vec::new();
    let mut rest = path.trim();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            steps.push(Step::Field(r[..end].to_string()));
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix("[?(@.") {
            let close = r.find(")]")?;
            let (field, value) = r[..close].split_once("==")?;
            let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
            steps.push(Step::Filter(field.trim().to_string(), value.to_string()));
            rest = &r[close + 2..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let close = r.find(']')?;
            steps.push(Step::Index(r[..close].parse().ok()?));
            rest = &r[close + 1..];
        } else {
            return None;
        }
    }
    Some(steps)
}

#[cfg(test)]
mod tests {
    use super::first;
    use serde_json::json;

    /// Fields, indices and equality filters; unknown syntax finds nothing.
    #[test]
    fn printer_column_paths() {
        let o = json!({"metadata": {"name": "a"}, "status": {"ancestors": [
            {"conditions": [{"type": "Ready", "status": "False"}, {"type": "Accepted", "status": "True"}]}
        ]}});
        let accepted = r#".status.ancestors[0].conditions[?(@.type=="Accepted")].status"#;
        assert_eq!(first(&o, accepted), Some(json!("True")));
        assert_eq!(first(&o, ".metadata.name"), Some(json!("a")));
        assert_eq!(first(&o, ".status.ancestors[1]"), None);
        assert_eq!(first(&o, "status..x"), None);
    }
}
