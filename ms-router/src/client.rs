//! Who is asking: the client address the throttles count by.
//!
//! ```text
//! socket peer ── not in TRUSTED_PROXIES ──▶ the peer is the client
//!      │
//!      └─ a trusted proxy ──▶ X-Forwarded-For, right to left: skip hops that are trusted
//!                             proxies themselves; the first other hop is the client
//! ```
//!
//! Only a proxy we trust may speak for a client, and each proxy appends the address it saw
//! on the right, so the right-most hop no trusted proxy vouches for is the first one a
//! client could have written. Everything left of it is the client's word and is ignored.

use axum::http::HeaderMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// At most this many `X-Forwarded-For` hops are looked at, from the right.
const MAX_HOPS: usize = 32;

/// One address or network of `TRUSTED_PROXIES` (`10.0.0.7`, `10.0.0.0/8`, `fd00::/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// Parses `ip` or `ip/prefix`; the address is cut to its prefix.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let (ip, prefix) = match raw.split_once('/') {
            Some((ip, p)) => (ip, Some(p)),
            None => (raw, None),
        };
        let addr: IpAddr = ip
            .trim()
            .parse()
            .map_err(|_| format!("{raw:?} is not an IP address or CIDR"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{raw:?} has a bad prefix length"))?,
        };
        Ok(Self {
            addr: mask(addr, prefix),
            prefix,
        })
    }

    /// Whether `ip` lies in this network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.prefix) == self.addr
    }
}

/// `ip` with every bit after the first `prefix` cleared.
fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let bits = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(prefix))
            };
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & bits))
        }
        IpAddr::V6(a) => {
            let bits = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(prefix))
            };
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & bits))
        }
    }
}

/// The proxies whose `X-Forwarded-For` is believed (`TRUSTED_PROXIES`, plus the private
/// networks with the older `TRUST_PROXY=true`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Network>);

impl TrustedProxies {
    /// Parses a comma-separated list of addresses and CIDRs (empty: nobody is trusted).
    pub fn parse(list: &str) -> Result<Self, String> {
        list.split(',')
            .filter(|s| !s.trim().is_empty())
            .map(Network::parse)
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// What `TRUST_PROXY=true` trusts: loopback and private networks (where an ingress
    /// inside a cluster or on the same host connects from).
    pub fn private_networks() -> Self {
        Self::parse("127.0.0.0/8,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,::1/128,fc00::/7")
            .unwrap_or_default()
    }

    /// Adds another list's networks.
    pub fn extend(&mut self, other: TrustedProxies) {
        self.0.extend(other.0);
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }
}

/// One `X-Forwarded-For` hop: an address, optionally with a port (`1.2.3.4:5`, `[::1]:5`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
}

/// The client's address: the peer, unless the peer is a trusted proxy; then the right-most
/// `X-Forwarded-For` hop that is not a trusted proxy. When every hop is trusted, the
/// left-most one; when a hop cannot be read, the last trusted address before it.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted.contains(peer) {
        return peer;
    }
    // Several X-Forwarded-For headers are one list, in order.
    let values: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let mut client = peer;
    for hop in values
        .iter()
        .rev()
        .flat_map(|v| v.rsplit(','))
        .take(MAX_HOPS)
    {
        let Some(ip) = parse_hop(hop) else {
            break;
        };
        client = ip.to_canonical();
        if !trusted.contains(client) {
            break;
        }
    }
    client
}

/// The bytes a client address is counted by: an IPv4 address, or the /64 network of an
/// IPv6 one (one subscriber usually holds a whole /64, so counting single IPv6 addresses
/// would let one client take 2^64 allowances).
pub fn address_key(ip: IpAddr) -> Vec<u8> {
    match ip.to_canonical() {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets()[..8].to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn xff(values: &[&'static str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn networks_parse_and_match() {
        let t = TrustedProxies::parse(" 10.1.2.3 , 192.168.0.0/16,fd00::/8 ,").unwrap();
        assert!(t.contains(ip("10.1.2.3")));
        assert!(!t.contains(ip("10.1.2.4")));
        assert!(t.contains(ip("192.168.200.1")));
        assert!(t.contains(ip("::ffff:192.168.1.1")), "IPv4-mapped");
        assert!(t.contains(ip("fd12::1")));
        assert!(!t.contains(ip("fe80::1")));
        assert!(TrustedProxies::parse("").unwrap().is_empty());
        assert!(
            TrustedProxies::parse("0.0.0.0/0")
                .unwrap()
                .contains(ip("8.8.8.8"))
        );
        for bad in ["10.0.0.0/33", "nope", "10.0.0.1/x", "::/129"] {
            assert!(TrustedProxies::parse(bad).is_err(), "{bad} accepted");
        }
        let p = TrustedProxies::private_networks();
        assert!(p.contains(ip("127.0.0.1")) && p.contains(ip("172.20.0.5")));
        assert!(!p.contains(ip("203.0.113.9")));
    }

    #[test]
    fn a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored() {
        let trusted = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let h = xff(&["1.1.1.1, 2.2.2.2"]);
        assert_eq!(
            client_ip(ip("203.0.113.9"), &h, &trusted),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_ip(ip("203.0.113.9"), &h, &TrustedProxies::default()),
            ip("203.0.113.9"),
            "nobody trusted: the header never counts"
        );
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client() {
        let trusted = TrustedProxies::parse("10.0.0.0/8,192.0.2.1").unwrap();
        // The client forged "6.6.6.6"; the edge proxy 192.0.2.1 appended the client's real
        // address, the ingress 10.0.0.2 appended the edge's; the peer is 10.0.0.3.
        let h = xff(&["6.6.6.6, 198.51.100.7, 192.0.2.1", "10.0.0.2"]);
        assert_eq!(client_ip(ip("10.0.0.3"), &h, &trusted), ip("198.51.100.7"));
        // One proxy, the usual case.
        let h = xff(&["198.51.100.7"]);
        assert_eq!(client_ip(ip("10.0.0.3"), &h, &trusted), ip("198.51.100.7"));
        // Ports and IPv6 in brackets.
        let h = xff(&["[2001:db8::5]:4711"]);
        assert_eq!(client_ip(ip("10.0.0.3"), &h, &trusted), ip("2001:db8::5"));
        // No header: the proxy itself.
        assert_eq!(
            client_ip(ip("10.0.0.3"), &HeaderMap::new(), &trusted),
            ip("10.0.0.3")
        );
        // Garbage left of trusted hops: the last trusted address, never the garbage.
        let h = xff(&["not-an-ip, 10.0.0.2"]);
        assert_eq!(client_ip(ip("10.0.0.3"), &h, &trusted), ip("10.0.0.2"));
        // Every hop trusted: the left-most.
        let h = xff(&["10.9.9.9, 10.0.0.2"]);
        assert_eq!(client_ip(ip("10.0.0.3"), &h, &trusted), ip("10.9.9.9"));
    }

    #[test]
    fn ipv6_clients_count_by_their_64_network() {
        assert_eq!(
            address_key(ip("2001:db8:1:2:aaaa::1")),
            address_key(ip("2001:db8:1:2:bbbb::2"))
        );
        assert_ne!(
            address_key(ip("2001:db8:1:2::1")),
            address_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            address_key(ip("::ffff:1.2.3.4")),
            address_key(ip("1.2.3.4"))
        );
    }
}
