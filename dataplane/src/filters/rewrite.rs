//! Path changes of `URLRewrite` and `RequestRedirect`.
//!
//! `ReplacePrefixMatch` swaps the part of the path the route's `PathPrefix`
//! matched, element by element, following the table in the Gateway API's
//! `HTTPPathModifier` documentation; the result is always a non-empty path
//! starting with `/` and without `//` at the seam.

use tollgate_snapshot::PathModifier;

/// The path to send upstream (or to redirect to).
///
/// `matched_prefix` is the `PathPrefix` value the router matched
/// (`Found::matched_prefix`). Without one, or when the path does not start
/// with it, `ReplacePrefixMatch` leaves the path unchanged: the controller
/// only accepts it on `PathPrefix` matches.
pub fn rewrite_path(m: &PathModifier, path: &str, matched_prefix: Option<&str>) -> String {
    match m {
        PathModifier::ReplaceFullPath(full) => with_leading_slash(full),
        PathModifier::ReplacePrefixMatch(replacement) => {
            let Some(rest) = matched_prefix.and_then(|p| strip_prefix_elementwise(path, p)) else {
                return path.to_string();
            };
            let mut out = with_leading_slash(replacement.trim_end_matches('/'));
            if out == "/" {
                out.clear();
            }
            out.push_str(rest);
            if out.is_empty() {
                out.push('/');
            }
            out
        }
    }
}

/// `path` after `prefix` (trailing `/` ignored) when the prefix ends on an
/// element boundary: empty or starting with `/`.
fn strip_prefix_elementwise<'p>(path: &'p str, prefix: &str) -> Option<&'p str> {
    path.strip_prefix(prefix.trim_end_matches('/'))
        .filter(|rest| rest.is_empty() || rest.starts_with('/'))
}

fn with_leading_slash(p: &str) -> String {
    if p.starts_with('/') {
        p.to_string()
    } else {
        format!("/{p}")
    }
}

#[cfg(test)]
mod tests {
    use super::rewrite_path;
    use tollgate_snapshot::PathModifier::{ReplaceFullPath, ReplacePrefixMatch};

    /// `ReplacePrefixMatch` replaces the matched prefix element-wise, as the
    /// Gateway API's `HTTPPathModifier` table shows: trailing slashes of the
    /// prefix and replacement are ignored, the rest of the path is kept, and
    /// the result is never empty nor holds `//`.
    #[test]
    fn replace_prefix_match() {
        let cases = [
            ("/foo/bar", "/foo", "/xyz", "/xyz/bar"),
            ("/foo/bar", "/foo", "/xyz/", "/xyz/bar"),
            ("/foo/bar", "/foo/", "/xyz", "/xyz/bar"),
            ("/foo/bar", "/foo/", "/xyz/", "/xyz/bar"),
            ("/foo", "/foo", "/xyz", "/xyz"),
            ("/foo/", "/foo", "/xyz", "/xyz/"),
            ("/foo/bar", "/foo", "", "/bar"),
            ("/foo/", "/foo", "", "/"),
            ("/foo", "/foo", "", "/"),
            ("/foo/", "/foo", "/", "/"),
            ("/foo", "/foo", "/", "/"),
            ("/foo/x", "/foo", "/", "/x"),
            ("/x/y", "/", "/api", "/api/x/y"),
            ("/", "/", "/api", "/api/"),
            ("/foo/x", "/foo", "bar", "/bar/x"),
        ];
        for (path, prefix, replacement, want) in cases {
            let got = rewrite_path(&ReplacePrefixMatch(replacement.into()), path, Some(prefix));
            assert_eq!(got, want, "{path} {prefix} -> {replacement}");
        }
    }

    /// Without a matched prefix, or when it does not cover the path on an
    /// element boundary, the path is unchanged.
    #[test]
    fn prefix_rewrite_needs_a_matching_prefix() {
        let m = ReplacePrefixMatch("/bar".into());
        assert_eq!(rewrite_path(&m, "/foo/x", None), "/foo/x");
        assert_eq!(rewrite_path(&m, "/foobar", Some("/foo")), "/foobar");
    }

    /// `ReplaceFullPath` replaces the whole path, always starting with `/`.
    #[test]
    fn replace_full_path() {
        let cases = [("/new", "/new"), ("", "/"), ("a/b", "/a/b"), ("/", "/")];
        for (full, want) in cases {
            assert_eq!(
                rewrite_path(&ReplaceFullPath(full.into()), "/old/x", None),
                want
            );
        }
    }
}
