//! The client address of a request, decided by configuration.
//!
//! A client can write anything into `X-Forwarded-For`, so the header is
//! believed only as far as the operator says proxies in front of the
//! gateway append to it (`ClientAddress` in the snapshot settings). Walking
//! from the right — the entry the nearest proxy wrote — is the only order
//! that a client cannot forge: entries left of the last trusted one are
//! the client's own words.

use http::HeaderMap;
use ipnet::IpNet;
use std::net::IpAddr;
use tollgate_snapshot::ClientAddress;

/// The built client-address rule of a snapshot.
#[derive(Clone, Debug, Default)]
pub(crate) struct ClientAddressRule {
    trusted_hops: usize,
    trusted: Box<[IpNet]>,
}

impl ClientAddressRule {
    /// Builds the rule; a CIDR that does not parse is skipped with a
    /// warning (`compile` has reported it on the GatewayConfig already).
    pub(crate) fn build(settings: &ClientAddress) -> ClientAddressRule {
        let trusted = settings
            .trusted_cidrs
            .iter()
            .filter_map(|cidr| match parse_net(cidr) {
                Some(net) => Some(net),
                None => {
                    tracing::warn!(cidr, "trusted proxy range does not parse; ignored");
                    None
                }
            })
            .collect();
        ClientAddressRule {
            trusted_hops: usize::try_from(settings.trusted_hops).unwrap_or(usize::MAX),
            trusted,
        }
    }

    /// The client address of a request from `peer` with `headers`.
    pub(crate) fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if self.trusted.is_empty() && self.trusted_hops == 0 {
            return peer;
        }
        let forwarded = forwarded_for(headers);
        if !self.trusted.is_empty() {
            // Walk left from the peer past every trusted proxy.
            let mut client = peer;
            for addr in std::iter::once(Some(peer)).chain(forwarded.iter().rev().copied()) {
                let Some(addr) = addr else { return client };
                client = addr;
                if !self.is_trusted(addr) {
                    return addr;
                }
            }
            return client;
        }
        // `trusted_hops` proxies each appended the address they saw; the
        // n-th from the right is the client. Too few entries: the request
        // did not come through them, so the peer is the client.
        match forwarded.len().checked_sub(self.trusted_hops) {
            Some(i) => forwarded.get(i).copied().flatten().unwrap_or(peer),
            None => peer,
        }
    }

    fn is_trusted(&self, addr: IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(&addr))
    }
}

/// Parses `a.b.c.d/n`, or a bare address as a one-address range.
pub(crate) fn parse_net(text: &str) -> Option<IpNet> {
    let text = text.trim();
    text.parse::<IpNet>()
        .ok()
        .or_else(|| text.parse::<IpAddr>().ok().map(IpNet::from))
}

/// Every `X-Forwarded-For` entry, left to right, across header lines;
/// `None` for an entry that is not an address (`unknown`, garbage).
fn forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|entry| parse_entry(entry.trim()))
        .collect()
}

/// An entry: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:80`.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    if let Ok(addr) = entry.parse::<IpAddr>() {
        return Some(addr);
    }
    if let Ok(socket) = entry.parse::<std::net::SocketAddr>() {
        return Some(socket.ip());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for line in xff {
            map.append("x-forwarded-for", HeaderValue::from_str(line).unwrap());
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// With nothing trusted, a forged header changes nothing.
    #[test]
    fn nothing_trusted_means_the_peer() {
        let rule = ClientAddressRule::build(&ClientAddress::default());
        let forged = headers(&["10.0.0.1"]);
        assert_eq!(rule.client(ip("192.0.2.9"), &forged), ip("192.0.2.9"));
    }

    /// One trusted hop: the load balancer appended the real client last;
    /// what the client wrote before it is ignored.
    #[test]
    fn trusted_hops_take_the_nth_from_the_right() {
        let rule = ClientAddressRule::build(&ClientAddress {
            trusted_hops: 1,
            trusted_cidrs: vec![],
        });
        let h = headers(&["10.0.0.1, 203.0.113.7"]);
        assert_eq!(rule.client(ip("192.0.2.1"), &h), ip("203.0.113.7"));
        let two = ClientAddressRule::build(&ClientAddress {
            trusted_hops: 2,
            trusted_cidrs: vec![],
        });
        let h = headers(&["10.0.0.1", "203.0.113.7, 198.51.100.2"]);
        assert_eq!(two.client(ip("192.0.2.1"), &h), ip("203.0.113.7"));
        // Fewer entries than hops: not through the proxies; the peer.
        assert_eq!(
            two.client(ip("192.0.2.1"), &headers(&["203.0.113.7"])),
            ip("192.0.2.1")
        );
        assert_eq!(
            two.client(ip("192.0.2.1"), &HeaderMap::new()),
            ip("192.0.2.1")
        );
    }

    /// Trusted ranges: walk left past every trusted proxy; the first
    /// untrusted address is the client, even if more entries follow.
    #[test]
    fn trusted_cidrs_stop_at_the_first_untrusted_address() {
        let rule = ClientAddressRule::build(&ClientAddress {
            trusted_hops: 0,
            trusted_cidrs: vec!["10.0.0.0/8".into(), "192.168.1.1".into(), "bad".into()],
        });
        let h = headers(&["6.6.6.6, 203.0.113.7, 10.1.2.3"]);
        assert_eq!(rule.client(ip("192.168.1.1"), &h), ip("203.0.113.7"));
        // An untrusted peer is the client whatever the header says.
        assert_eq!(rule.client(ip("198.51.100.1"), &h), ip("198.51.100.1"));
        // A garbage entry stops the walk at the last good address.
        let junk = headers(&["unknown, 10.9.9.9"]);
        assert_eq!(rule.client(ip("10.0.0.1"), &junk), ip("10.9.9.9"));
        // Ports and brackets are accepted.
        let ported = headers(&["[2001:db8::1]:443, 10.0.0.2:80"]);
        assert_eq!(rule.client(ip("10.0.0.1"), &ported), ip("2001:db8::1"));
    }
}
