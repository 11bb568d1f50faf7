//! Hostname rules shared by listeners and routes: validation, the
//! listener/route intersection of the Gateway API (`HTTPRouteSpec.hostnames`),
//! coverage between effective hostnames, and specificity ordering.
//!
//! Everything works on [`HostMatch`], the snapshot's own hostname pattern, so
//! what compile decides here is exactly what the data plane matches.

use std::cmp::Ordering;
use tollgate_snapshot::HostMatch;

/// Whether `s` (already lowercase) is a Gateway API `Hostname`: RFC 1123
/// labels, optionally prefixed by a `*.` wildcard label, and not an IP.
pub(crate) fn is_valid_hostname(s: &str) -> bool {
    let body = s.strip_prefix("*.").unwrap_or(s);
    if body.is_empty() || s.len() > 253 || body.parse::<std::net::IpAddr>().is_ok() {
        return false;
    }
    body.split('.').all(is_valid_label)
}

fn is_valid_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes.first().is_some_and(alnum)
        && bytes.last().is_some_and(alnum)
        && bytes.iter().all(|b| alnum(b) || *b == b'-')
}

/// The hostnames served when a route hostname meets a listener hostname
/// (Gateway API `HTTPRouteSpec.hostnames`):
///
/// - a listener without hostname takes the route's hostname, and the
///   other way round;
/// - an exact and a wildcard intersect in the exact name the wildcard
///   matches (route `*.example.com` on listener `foo.example.com` serves
///   `foo.example.com`);
/// - two wildcards intersect in the narrower one.
///
/// `None` when they have no host in common.
pub(crate) fn intersect(listener: &HostMatch, route: &HostMatch) -> Option<HostMatch> {
    use HostMatch::{Any, Exact, Wildcard};
    match (listener, route) {
        (Any, r) => Some(r.clone()),
        (l, Any) => Some(l.clone()),
        (Exact(l), Exact(r)) => (l == r).then(|| Exact(l.clone())),
        (Exact(l), w @ Wildcard(_)) => w.matches(l).then(|| Exact(l.clone())),
        (w @ Wildcard(_), Exact(r)) => w.matches(r).then(|| Exact(r.clone())),
        (lw @ Wildcard(l), rw @ Wildcard(r)) => {
            if l == r || lw.matches(r) {
                Some(rw.clone())
            } else if rw.matches(l) {
                Some(lw.clone())
            } else {
                None
            }
        }
    }
}

/// The effective hostnames of a route on a listener: the intersections of
/// each route hostname with the listener's, or the listener's own hostname
/// when the route names none. Sorted most specific first, without
/// duplicates; empty when nothing intersects.
pub(crate) fn effective_hostnames(listener: &HostMatch, route: &[HostMatch]) -> Vec<HostMatch> {
    let mut out: Vec<HostMatch> = if route.is_empty() {
        vec![listener.clone()]
    } else {
        route
            .iter()
            .filter_map(|r| intersect(listener, r))
            .collect()
    };
    out.sort_by(most_specific_first);
    out.dedup();
    out
}

/// Whether every host matched by `inner` is also matched by `outer`, so a
/// route serving `outer` also serves requests for `inner`.
pub(crate) fn covers(outer: &HostMatch, inner: &HostMatch) -> bool {
    use HostMatch::{Any, Exact, Wildcard};
    match (outer, inner) {
        (Any, _) => true,
        (Exact(o), Exact(i)) => o == i,
        (w @ Wildcard(o), Wildcard(i)) => o == i || w.matches(i),
        (w @ Wildcard(_), Exact(i)) => w.matches(i),
        (Exact(_) | Wildcard(_), Any) | (Exact(_), Wildcard(_)) => false,
    }
}

/// Specificity of a hostname for precedence: exact names beat wildcards,
/// which beat "any host"; within a kind, more characters win.
pub(crate) fn specificity(h: &HostMatch) -> (u8, usize) {
    match h {
        HostMatch::Exact(s) => (2, s.len()),
        HostMatch::Wildcard(s) => (1, s.len()),
        HostMatch::Any => (0, 0),
    }
}

/// Ordering used for listeners in a socket and virtual hosts in a listener:
/// exact names first, then wildcards by suffix length descending, then `*`;
/// ties alphabetically so the output is deterministic.
pub(crate) fn most_specific_first(a: &HostMatch, b: &HostMatch) -> Ordering {
    specificity(b)
        .cmp(&specificity(a))
        .then_with(|| name(a).cmp(name(b)))
}

/// The name part of a pattern; kinds are already told apart by specificity.
fn name(h: &HostMatch) -> &str {
    match h {
        HostMatch::Exact(s) | HostMatch::Wildcard(s) => s,
        HostMatch::Any => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> HostMatch {
        HostMatch::parse(s)
    }

    /// Intersection keeps the narrower of the two patterns, or nothing when
    /// they share no host (Gateway API `HTTPRouteSpec.hostnames`).
    #[test]
    fn intersection_table() {
        let cases = [
            ("*", "foo.example.com", Some("foo.example.com")),
            ("foo.example.com", "*", Some("foo.example.com")),
            (
                "foo.example.com",
                "foo.example.com",
                Some("foo.example.com"),
            ),
            ("foo.example.com", "bar.example.com", None),
            ("foo.example.com", "*.example.com", Some("foo.example.com")),
            ("*.example.com", "foo.example.com", Some("foo.example.com")),
            ("*.example.com", "example.com", None),
            ("*.example.com", "*.example.com", Some("*.example.com")),
            (
                "*.example.com",
                "*.foo.example.com",
                Some("*.foo.example.com"),
            ),
            (
                "*.foo.example.com",
                "*.example.com",
                Some("*.foo.example.com"),
            ),
            ("*.example.com", "*.example.org", None),
            ("*.bar.com", "foo.bar.com", Some("foo.bar.com")),
        ];
        for (listener, route, want) in cases {
            assert_eq!(
                intersect(&h(listener), &h(route)),
                want.map(h),
                "listener {listener} route {route}"
            );
        }
    }

    /// A wildcard covers exact names and narrower wildcards under it; `*`
    /// covers everything; an exact name covers only itself.
    #[test]
    fn coverage_table() {
        let cases = [
            ("*", "a.example.com", true),
            ("*", "*", true),
            ("*.example.com", "a.example.com", true),
            ("*.example.com", "*.a.example.com", true),
            ("*.example.com", "*.example.com", true),
            ("*.example.com", "example.com", false),
            ("*.example.com", "*", false),
            ("a.example.com", "a.example.com", true),
            ("a.example.com", "*.example.com", false),
        ];
        for (outer, inner, want) in cases {
            assert_eq!(covers(&h(outer), &h(inner)), want, "{outer} covers {inner}");
        }
    }

    /// Exact names sort before wildcards, longer wildcards before shorter,
    /// and `*` last.
    #[test]
    fn specificity_order() {
        let mut hosts: Vec<HostMatch> = [
            "*",
            "*.example.com",
            "b.example.com",
            "*.a.example.com",
            "a.example.com",
        ]
        .into_iter()
        .map(h)
        .collect();
        hosts.sort_by(most_specific_first);
        let got: Vec<String> = hosts.iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            [
                "a.example.com",
                "b.example.com",
                "*.a.example.com",
                "*.example.com",
                "*"
            ]
        );
    }

    /// Listener hostnames follow RFC 1123 with an optional leading wildcard
    /// label; IP addresses are not hostnames.
    #[test]
    fn hostname_validation() {
        for ok in ["example.com", "*.example.com", "a-b.c", "x"] {
            assert!(is_valid_hostname(ok), "{ok}");
        }
        for bad in [
            "",
            "*",
            "1.2.3.4",
            "a..b",
            "-a.com",
            "a_b.com",
            "*.*.com",
            "foo.*.com",
        ] {
            assert!(!is_valid_hostname(bad), "{bad}");
        }
    }
}
