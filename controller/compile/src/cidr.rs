//! CIDR parsing shared by the GatewayConfig's trusted proxies and
//! AuthPolicy authorization rules: the data plane parses the same text, so
//! compile accepts exactly what it will, in one canonical spelling.

use ipnet::IpNet;
use std::net::IpAddr;

/// `text` as a canonical CIDR (`10.0.0.0/8`); a bare address is its
/// single-address range (`/32` or `/128`). `None` when it is neither.
pub(crate) fn parse_cidr(text: &str) -> Option<String> {
    let text = text.trim();
    if let Ok(net) = text.parse::<IpNet>() {
        return Some(net.trunc().to_string());
    }
    text.parse::<IpAddr>()
        .ok()
        .map(|ip| IpNet::from(ip).to_string())
}

#[cfg(test)]
mod tests {
    use super::parse_cidr;

    /// Ranges keep their prefix with host bits cleared; addresses become
    /// single-address ranges; anything else is refused.
    #[test]
    fn cidr_table() {
        let cases = [
            ("10.1.2.3/8", Some("10.0.0.0/8")),
            ("192.168.0.1", Some("192.168.0.1/32")),
            ("2001:db8::/32", Some("2001:db8::/32")),
            ("::1", Some("::1/128")),
            ("10.0.0.0/33", None),
            ("example.com", None),
            ("", None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_cidr(input).as_deref(), want, "{input}");
        }
    }
}
