//! Table tests of match conversion and precedence; each doc comment
//! states the rule.

use super::*;

fn m(path: PathMatch, method: bool, headers: usize, query: usize) -> RouteMatch {
    let sm = || StringMatch::Exact("v".into());
    RouteMatch {
        route: 0,
        path,
        method: method.then(|| "GET".to_string()),
        headers: (0..headers)
            .map(|i| HeaderMatch {
                name: format!("h{i}"),
                value: sm(),
            })
            .collect(),
        query: (0..query)
            .map(|i| QueryMatch {
                name: format!("q{i}"),
                value: sm(),
            })
            .collect(),
    }
}

fn exact(p: &str) -> PathMatch {
    PathMatch::Exact(p.into())
}
fn prefix(p: &str) -> PathMatch {
    PathMatch::Prefix(p.into())
}
fn regex(p: &str) -> PathMatch {
    PathMatch::RegularExpression(p.into())
}

/// Each row: the first match must be tried before the second, for the
/// criterion named in the row.
#[test]
fn precedence_table() {
    let any = HostMatch::Any;
    let exact_host = HostMatch::parse("a.example.com");
    let wild_host = HostMatch::parse("*.example.com");
    let t1: Timestamp = "2024-01-01T00:00:00Z".parse().unwrap();
    let t2: Timestamp = "2024-06-01T00:00:00Z".parse().unwrap();
    let base = |host, m| Ranked {
        host,
        m,
        grpc: None,
        created: None,
        route_key: "ns/r",
        rule: 0,
        index: 0,
    };
    let m_prefix_root = m(prefix("/"), false, 0, 0);
    let m_exact = m(exact("/a"), false, 0, 0);
    let m_regex_long = m(regex("/a/[0-9]+"), false, 0, 0);
    let m_regex_short = m(regex("/a.*"), false, 0, 0);
    let m_prefix_long = m(prefix("/abc"), false, 0, 0);
    let m_prefix_short = m(prefix("/ab"), false, 0, 0);
    let m_method = m(prefix("/ab"), true, 0, 0);
    let m_headers2 = m(prefix("/ab"), false, 2, 0);
    let m_headers1 = m(prefix("/ab"), false, 1, 5);
    let m_query = m(prefix("/ab"), false, 0, 1);
    let rows: Vec<(&str, Ranked<'_>, Ranked<'_>)> = vec![
        (
            "exact host beats wildcard",
            base(&exact_host, &m_prefix_root),
            base(&wild_host, &m_exact),
        ),
        (
            "wildcard host beats any",
            base(&wild_host, &m_prefix_root),
            base(&any, &m_exact),
        ),
        (
            "exact path beats regex",
            base(&any, &m_exact),
            base(&any, &m_regex_long),
        ),
        (
            "longer regex first",
            base(&any, &m_regex_long),
            base(&any, &m_regex_short),
        ),
        (
            "regex beats prefix",
            base(&any, &m_regex_short),
            base(&any, &m_prefix_long),
        ),
        (
            "longer prefix first",
            base(&any, &m_prefix_long),
            base(&any, &m_prefix_short),
        ),
        (
            "method beats no method",
            base(&any, &m_method),
            base(&any, &m_headers2),
        ),
        (
            "more headers first",
            base(&any, &m_headers2),
            base(&any, &m_headers1),
        ),
        (
            "headers beat query",
            base(&any, &m_headers1),
            base(&any, &m_query),
        ),
        (
            "more query first",
            base(&any, &m_query),
            base(&any, &m_prefix_short),
        ),
        (
            "older route first",
            Ranked {
                created: Some(&t1),
                route_key: "z/z",
                ..base(&any, &m_prefix_short)
            },
            Ranked {
                created: Some(&t2),
                route_key: "a/a",
                ..base(&any, &m_prefix_short)
            },
        ),
        (
            "a timestamp beats none",
            Ranked {
                created: Some(&t2),
                route_key: "z/z",
                ..base(&any, &m_prefix_short)
            },
            base(&any, &m_prefix_short),
        ),
        (
            "alphabetical namespace/name",
            Ranked {
                route_key: "a/b",
                ..base(&any, &m_prefix_short)
            },
            Ranked {
                route_key: "b/a",
                ..base(&any, &m_prefix_short)
            },
        ),
        (
            "earlier rule first",
            base(&any, &m_prefix_short),
            Ranked {
                rule: 1,
                ..base(&any, &m_prefix_short)
            },
        ),
        (
            "earlier match first",
            Ranked {
                rule: 1,
                ..base(&any, &m_prefix_short)
            },
            Ranked {
                rule: 1,
                index: 1,
                ..base(&any, &m_prefix_short)
            },
        ),
    ];
    for (why, a, b) in rows {
        assert_eq!(precedence(&a, &b), Ordering::Less, "{why}");
        assert_eq!(precedence(&b, &a), Ordering::Greater, "{why} (reversed)");
    }
}

/// GRPCRoute matches rank by characters in the service, then in the
/// method, then header count, whatever their path match types; the
/// hostname still comes first.
#[test]
fn grpc_precedence_table() {
    let any = HostMatch::Any;
    let exact_host = HostMatch::parse("a.example.com");
    let rank = |service, method| GrpcRank { service, method };
    let grpc = |host, m, r| Ranked {
        host,
        m,
        grpc: Some(r),
        created: None,
        route_key: "ns/r",
        rule: 0,
        index: 0,
    };
    let service_only = m(prefix("/pkg.Service"), false, 0, 0);
    let regex_both = m(regex("/(?:pkg\\..*)/(?:Get.*)"), false, 0, 0);
    let exact_both = m(exact("/pkg.Svc/Get"), false, 0, 0);
    let with_headers = m(exact("/pkg.Svc/Get"), false, 1, 0);
    let everything = m(prefix("/"), false, 0, 0);
    let rows: Vec<(&str, Ranked<'_>, Ranked<'_>)> = vec![
        (
            "longer service first, even as a prefix over an exact path",
            grpc(&any, &service_only, rank(11, 0)),
            grpc(&any, &exact_both, rank(7, 3)),
        ),
        (
            "same service: longer method first",
            grpc(&any, &regex_both, rank(7, 6)),
            grpc(&any, &exact_both, rank(7, 3)),
        ),
        (
            "same service and method: more headers first",
            grpc(&any, &with_headers, rank(7, 3)),
            grpc(&any, &exact_both, rank(7, 3)),
        ),
        (
            "any method match beats none",
            grpc(&any, &exact_both, rank(7, 3)),
            grpc(&any, &everything, rank(0, 0)),
        ),
        (
            "the hostname still comes first",
            grpc(&exact_host, &everything, rank(0, 0)),
            grpc(&any, &service_only, rank(11, 0)),
        ),
        (
            "an HTTPRoute match before a GRPCRoute one (never on one hostname)",
            Ranked {
                grpc: None,
                ..grpc(&any, &everything, rank(0, 0))
            },
            grpc(&any, &service_only, rank(11, 0)),
        ),
    ];
    for (why, a, b) in rows {
        assert_eq!(precedence(&a, &b), Ordering::Less, "{why}");
        assert_eq!(precedence(&b, &a), Ordering::Greater, "{why} (reversed)");
    }
}

/// Header names are lowercased and only the first entry of a name counts.
#[test]
fn header_names_lowercased_first_wins() {
    let m: HttpRouteRulesMatches = serde_json::from_value(serde_json::json!({
        "headers": [
            {"name": "X-Env", "value": "a"},
            {"name": "x-env", "value": "b"}
        ]
    }))
    .unwrap();
    let got = convert_match(&m).unwrap();
    assert_eq!(
        got.headers,
        vec![HeaderMatch {
            name: "x-env".into(),
            value: StringMatch::Exact("a".into())
        }]
    );
}

/// Path values are refused where the CRD validation refuses them, and
/// otherwise normalized the way request paths are.
#[test]
fn path_values_are_validated_and_normalized() {
    assert_eq!(absolute("/%7euser/a".into()).unwrap(), "/~user/a");
    assert_eq!(absolute("/api/".into()).unwrap(), "/api/");
    for bad in [
        "api", "/a//b", "/a/../b", "/a/./b", "/a#b", "/a%2Fb", "/a/..",
    ] {
        assert!(absolute(bad.into()).is_err(), "{bad} accepted");
    }
}

/// Patterns the data plane would refuse are refused here.
#[test]
fn regex_limits() {
    assert!(check_regex("/a/[0-9]+".into()).is_ok());
    assert!(check_regex("(".into()).is_err());
    assert!(check_regex("a".repeat(REGEX_MAX_PATTERN_LEN + 1)).is_err());
    assert!(check_regex("\\w{1000}\\w{1000}".into()).is_err());
}
