//! IP and socket addresses as text, IPv4 written without `core::fmt`.
//!
//! Addresses become text on request paths: the forwarding fields of every
//! proxied request, a client-address rate-limit key, the client address
//! sent to an external authorizer, and a sampled span's or an access-log
//! line's addresses. Through `Display` an `Ipv4Addr` costs about 1,200
//! instructions (scenario 7's callgrind: two of them were 6% of a sampled
//! request); written digit by digit it is a few dozen. IPv6, rare here and
//! with its `::` compression rules, keeps `Display`. The output is
//! `Display`'s exactly (a property test checks it), so text that ends up
//! in keys or hashes is the same as before.

use crate::h1_wire::decimal;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

/// Appends `ip` as `Display` writes it.
pub(crate) fn write_ip(out: &mut String, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                push_decimal(out, u16::from(octet));
            }
        }
        IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
}

/// `ip` as `Display` writes it.
pub(crate) fn ip_string(ip: IpAddr) -> String {
    let mut out = String::with_capacity(if ip.is_ipv4() { 15 } else { 39 });
    write_ip(&mut out, ip);
    out
}

/// `addr` as `Display` writes it (`1.2.3.4:80`, `[::1]:80`).
pub(crate) fn socket_string(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(v4) => {
            let mut out = String::with_capacity(21);
            write_ip(&mut out, IpAddr::V4(*v4.ip()));
            out.push(':');
            push_decimal(&mut out, v4.port());
            out
        }
        SocketAddr::V6(_) => addr.to_string(),
    }
}

/// Appends `n` in decimal, without leading zeros.
fn push_decimal(out: &mut String, n: u16) {
    for &d in decimal(u64::from(n), &mut [0; 20]) {
        out.push(char::from(d));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV6};

    proptest! {
        /// Every IPv4 address and port is written as `Display` writes it.
        #[test]
        fn ipv4_like_display(bits in any::<u32>(), port in any::<u16>()) {
            let ip = Ipv4Addr::from(bits);
            prop_assert_eq!(ip_string(ip.into()), ip.to_string());
            let addr = SocketAddr::from((ip, port));
            prop_assert_eq!(socket_string(addr), addr.to_string());
        }

        /// IPv6 goes through `Display` itself.
        #[test]
        fn ipv6_like_display(bits in any::<u128>(), port in any::<u16>()) {
            let ip = Ipv6Addr::from(bits);
            prop_assert_eq!(ip_string(ip.into()), ip.to_string());
            let addr = SocketAddr::V6(SocketAddrV6::new(ip, port, 0, 0));
            prop_assert_eq!(socket_string(addr), addr.to_string());
        }
    }

    /// The edges of each octet's width, and the port's.
    #[test]
    fn edges() {
        for (ip, port, text) in [
            ("0.0.0.0", 0, "0.0.0.0:0"),
            ("9.10.99.100", 65535, "9.10.99.100:65535"),
            ("255.255.255.255", 10, "255.255.255.255:10"),
        ] {
            let ip: IpAddr = ip.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
            assert_eq!(socket_string(SocketAddr::new(ip, port)), text);
        }
    }
}
