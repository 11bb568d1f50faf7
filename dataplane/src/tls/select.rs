//! Which listener of a TLS socket a ClientHello is for, by its SNI.
//!
//! The same order as the router uses for Host: an exact hostname, then the
//! longest matching wildcard, then a listener without a hostname. A client
//! that sends no SNI (one that connects by IP address) gets the hostname-less
//! listener, or else the socket's first listener; so does a name no listener
//! covers, as nginx's default server would — the request that follows is
//! then answered by Host (404, or 421 when its Host belongs to another
//! listener).

use tollgate_snapshot::HostMatch;

/// The index in `hosts` of the listener for `sni`; `None` only when there
/// are no listeners.
pub(crate) fn select_listener(hosts: &[HostMatch], sni: Option<&str>) -> Option<usize> {
    let fallback = || {
        hosts
            .iter()
            .position(|h| *h == HostMatch::Any)
            .or((!hosts.is_empty()).then_some(0))
    };
    let Some(sni) = sni else {
        return fallback();
    };
    let sni = sni.strip_suffix('.').unwrap_or(sni).to_ascii_lowercase();
    let rank = |h: &HostMatch| match h {
        HostMatch::Exact(name) => (*name == sni).then_some(usize::MAX),
        HostMatch::Wildcard(suffix) => h.matches(&sni).then_some(suffix.len()),
        HostMatch::Any => Some(0),
    };
    hosts
        .iter()
        .enumerate()
        .filter_map(|(i, h)| Some((rank(h)?, i)))
        // Highest rank; among equals (impossible without a conflict) the first.
        .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))
        .map(|(_, i)| i)
        .or_else(fallback)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(list: &[&str]) -> Vec<HostMatch> {
        list.iter().map(|h| HostMatch::parse(h)).collect()
    }

    /// Exact beats the longest wildcard, which beats a shorter one, which
    /// beats a hostname-less listener; no SNI or an unknown name gets the
    /// hostname-less listener, else the first. Listener order does not
    /// matter.
    #[test]
    fn sni_selects_the_most_specific_listener() {
        let order = ["*.example.com", "*", "a.b.example.com", "*.b.example.com"];
        let h = hosts(&order);
        let cases: &[(Option<&str>, Option<usize>)] = &[
            (Some("a.b.example.com"), Some(2)),
            (Some("A.B.Example.COM."), Some(2)),
            (Some("c.b.example.com"), Some(3)),
            (Some("c.example.com"), Some(0)),
            (Some("example.com"), Some(1)),
            (Some("other.test"), Some(1)),
            (None, Some(1)),
        ];
        for (sni, want) in cases {
            assert_eq!(select_listener(&h, *sni), *want, "sni {sni:?}");
        }
        let no_default = hosts(&["b.example.com", "*.example.com"]);
        let cases: &[(Option<&str>, Option<usize>)] = &[
            (None, Some(0)),
            (Some("other.test"), Some(0)),
            (Some("x.example.com"), Some(1)),
        ];
        for (sni, want) in cases {
            assert_eq!(select_listener(&no_default, *sni), *want, "sni {sni:?}");
        }
        assert_eq!(select_listener(&[], Some("a")), None);
    }
}
