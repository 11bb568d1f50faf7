//! What a request asks for: the target path, the query parameters and the
//! response form from `Accept`.
//!
//! Resource paths follow the Kubernetes layout: `/api/v1/...` for the core
//! group, `/apis/<group>/<version>/...` otherwise, then
//! `[namespaces/<ns>/]<plural>[/<name>[/status]]`.

use percent_encoding::percent_decode_str;

/// The thing a request path names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// `/version`.
    Version,
    /// `/healthz`, `/livez`, `/readyz`.
    Health,
    /// `/api`: the core group's versions.
    CoreVersions,
    /// `/apis`: every other group.
    Groups,
    /// `/api/v1` or `/apis/<group>/<version>`: that version's resources.
    GroupVersion { group: String, version: String },
    /// `/openapi/v2`.
    OpenApiV2,
    /// `/openapi/v3`: the index of group-version documents.
    OpenApiV3Index,
    /// `/openapi/v3/api/v1` or `/openapi/v3/apis/<group>/<version>`.
    OpenApiV3 { group: String, version: String },
    /// A collection, object or status subresource.
    Resource(ResourcePath),
}

/// A resource path, split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ResourcePath {
    pub(crate) group: String,
    pub(crate) version: String,
    pub(crate) plural: String,
    pub(crate) namespace: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) status: bool,
}

impl Target {
    /// Parses a request path; `None` when nothing is served there.
    pub(crate) fn parse(path: &str) -> Option<Target> {
        let segs: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
            .collect();
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        let gv = |g: &str, v: &str| (g.to_string(), v.to_string());
        match segs.as_slice() {
            ["version"] => Some(Target::Version),
            ["healthz" | "livez" | "readyz", ..] => Some(Target::Health),
            ["api"] => Some(Target::CoreVersions),
            ["apis"] => Some(Target::Groups),
            ["openapi", "v2"] => Some(Target::OpenApiV2),
            ["openapi", "v3"] => Some(Target::OpenApiV3Index),
            ["openapi", "v3", "api", v] => Some(Target::OpenApiV3 {
                group: String::new(),
                version: (*v).to_string(),
            }),
            ["openapi", "v3", "apis", g, v] => {
                let (group, version) = gv(g, v);
                Some(Target::OpenApiV3 { group, version })
            }
            ["api", v] => Some(Target::GroupVersion {
                group: String::new(),
                version: (*v).to_string(),
            }),
            ["apis", g, v] => {
                let (group, version) = gv(g, v);
                Some(Target::GroupVersion { group, version })
            }
            ["api", v, rest @ ..] => resource("", v, rest),
            ["apis", g, v, rest @ ..] => resource(g, v, rest),
            _ => None,
        }
    }
}

/// `[namespaces/<ns>/]<plural>[/<name>[/status]]` under group/version.
fn resource(group: &str, version: &str, rest: &[&str]) -> Option<Target> {
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, tail @ ..] if !matches!(*plural, "status" | "finalize") => {
            (Some((*ns).to_string()), [&[*plural][..], tail].concat())
        }
        _ => (None, rest.to_vec()),
    };
    let (plural, name, status) = match rest.as_slice() {
        [plural] => (*plural, None, false),
        [plural, name] => (*plural, Some((*name).to_string()), false),
        [plural, name, "status"] => (*plural, Some((*name).to_string()), true),
        _ => return None,
    };
    Some(Target::Resource(ResourcePath {
        group: group.to_string(),
        version: version.to_string(),
        plural: plural.to_string(),
        namespace,
        name,
        status,
    }))
}

/// Decoded query parameters, in order.
#[derive(Clone, Debug, Default)]
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    /// Parses `a=b&c=d` (form encoding: `+` is a space).
    pub(crate) fn parse(query: Option<&str>) -> Query {
        let decode = |s: &str| {
            percent_decode_str(&s.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        };
        Query(
            query
                .unwrap_or_default()
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (decode(k), decode(v))
                })
                .collect(),
        )
    }

    /// The first value of `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether `key` is `true` or `1`.
    pub(crate) fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }
}

/// The response form an `Accept` header asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// The objects themselves.
    Plain,
    /// A `meta.k8s.io/v1` `Table` (what `kubectl get` prints).
    Table,
    /// `PartialObjectMetadata` (`List`): metadata only.
    Metadata,
}

impl Format {
    /// The first alternative of `accept` this server can produce.
    pub(crate) fn from_accept(accept: &str) -> Format {
        for alternative in accept.split(',') {
            let params: Vec<&str> = alternative.split(';').map(str::trim).collect();
            let as_param = params.iter().find_map(|p| p.strip_prefix("as="));
            match as_param {
                Some("Table") => return Format::Table,
                Some("PartialObjectMetadata" | "PartialObjectMetadataList") => {
                    return Format::Metadata;
                }
                Some(_) => continue,
                None => return Format::Plain,
            }
        }
        Format::Plain
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(
        group: &str,
        plural: &str,
        ns: Option<&str>,
        name: Option<&str>,
        status: bool,
    ) -> Option<Target> {
        Some(Target::Resource(ResourcePath {
            group: group.into(),
            version: "v1".into(),
            plural: plural.into(),
            namespace: ns.map(Into::into),
            name: name.map(Into::into),
            status,
        }))
    }

    /// Paths split into group, version, namespace, plural, name and status
    /// the way the Kubernetes API lays them out; `namespaces/<n>/status` is
    /// the namespace object's status, not a collection.
    #[test]
    fn paths_parse_like_kubernetes() {
        let cases = [
            ("/api/v1/secrets", res("", "secrets", None, None, false)),
            (
                "/api/v1/namespaces/a/secrets",
                res("", "secrets", Some("a"), None, false),
            ),
            (
                "/api/v1/namespaces/a/secrets/s",
                res("", "secrets", Some("a"), Some("s"), false),
            ),
            (
                "/api/v1/namespaces/a",
                res("", "namespaces", None, Some("a"), false),
            ),
            (
                "/api/v1/namespaces/a/status",
                res("", "namespaces", None, Some("a"), true),
            ),
            (
                "/apis/g.io/v1/namespaces/a/gws/x/status",
                res("g.io", "gws", Some("a"), Some("x"), true),
            ),
            (
                "/apis/g.io/v1/gwcs/x",
                res("g.io", "gwcs", None, Some("x"), false),
            ),
            (
                "/apis/g.io/v1",
                Some(Target::GroupVersion {
                    group: "g.io".into(),
                    version: "v1".into(),
                }),
            ),
            (
                "/openapi/v3/apis/g.io/v1",
                Some(Target::OpenApiV3 {
                    group: "g.io".into(),
                    version: "v1".into(),
                }),
            ),
            ("/nope", None),
            ("/api/v1/a/b/c/d", None),
        ];
        for (path, want) in cases {
            assert_eq!(Target::parse(path), want, "{path}");
        }
    }

    /// The first producible `Accept` alternative wins.
    #[test]
    fn accept_picks_first_known_form() {
        let cases = [
            ("application/json", Format::Plain),
            (
                "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
                Format::Table,
            ),
            (
                "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
                Format::Metadata,
            ),
            (
                "application/json;as=Unknown;g=x,application/json",
                Format::Plain,
            ),
            ("", Format::Plain),
        ];
        for (accept, want) in cases {
            assert_eq!(Format::from_accept(accept), want, "{accept}");
        }
    }
}
