//! Who is on the other end: the client's address, for the brute-force
//! defence and the logs.
//!
//! A reverse proxy in front of berth makes every request come from the
//! proxy's address; it says the client's in `X-Forwarded-For`. Anyone can
//! send that header, so it is read only from the proxies the configuration
//! trusts (`http.trustedProxies`), and only as far as they vouch for it.

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;

static X_FORWARDED_FOR: &str = "x-forwarded-for";

/// The networks whose `X-Forwarded-For` headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(networks: Vec<IpNet>) -> Self {
        TrustedProxies(networks)
    }

    fn trusts(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        self.0.iter().any(|net| net.contains(&address))
    }

    /// The client's address: the peer's, unless the peer is a trusted
    /// proxy; then `X-Forwarded-For` is read from its right end (the hop
    /// nearest berth) leftwards, past every trusted proxy, and the first
    /// address not trusted is the client. An entry that is not an address
    /// ends the walk: the last hop believed is taken.
    pub fn client(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let mut client = peer.map(canonical)?;
        if !self.trusts(client) {
            return Some(client);
        }
        let hops: Vec<&str> = headers
            .get_all(X_FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        for hop in hops.into_iter().rev() {
            let Some(address) = parse_hop(hop) else {
                break;
            };
            client = address;
            if !self.trusts(address) {
                break;
            }
        }
        Some(client)
    }
}

/// An `X-Forwarded-For` entry: an address, possibly with a port
/// (`1.2.3.4:5678`, `[::1]:5678`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(address) = hop.parse::<IpAddr>() {
        return Some(canonical(address));
    }
    hop.parse::<std::net::SocketAddr>()
        .ok()
        .map(|s| canonical(s.ip()))
}

/// IPv4 clients of a dual-stack listener appear as `::ffff:a.b.c.d`.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// `10.0.0.0/8`, or a single address (`10.0.0.1` is `10.0.0.1/32`).
pub fn parse_network(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{text:?} is not an address or network (CIDR such as 10.0.0.0/8)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::new(list.iter().map(|n| parse_network(n).unwrap()).collect())
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(X_FORWARDED_FOR, HeaderValue::from_str(v).unwrap());
        }
        headers
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let none = TrustedProxies::default();
        let headers = forwarded(&["203.0.113.9"]);
        assert_eq!(none.client(ip("10.0.0.1"), &headers), ip("10.0.0.1"));
        assert_eq!(none.client(None, &headers), None);
    }

    #[test]
    fn a_trusted_proxy_vouches_for_the_hop_before_it() {
        let trusted = proxies(&["10.0.0.0/8", "192.168.1.1"]);
        // A client's own header is kept on the left; only what the trusted
        // proxy appended counts.
        let headers = forwarded(&["6.6.6.6, 203.0.113.9"]);
        assert_eq!(trusted.client(ip("10.1.2.3"), &headers), ip("203.0.113.9"));
        // Through two trusted proxies.
        let headers = forwarded(&["6.6.6.6", "203.0.113.9, 192.168.1.1"]);
        assert_eq!(trusted.client(ip("10.1.2.3"), &headers), ip("203.0.113.9"));
        // An untrusted peer's header is not believed.
        assert_eq!(
            trusted.client(ip("198.51.100.7"), &headers),
            ip("198.51.100.7")
        );
        // Without a header, the proxy itself.
        assert_eq!(
            trusted.client(ip("10.1.2.3"), &HeaderMap::new()),
            ip("10.1.2.3")
        );
        // Garbage ends the walk at the last hop believed.
        let headers = forwarded(&["203.0.113.9, not-an-address"]);
        assert_eq!(trusted.client(ip("10.1.2.3"), &headers), ip("10.1.2.3"));
        // Ports and mapped IPv4 addresses.
        let headers = forwarded(&["203.0.113.9:4444"]);
        assert_eq!(
            trusted.client(ip("::ffff:10.1.2.3"), &headers),
            ip("203.0.113.9")
        );
        let headers = forwarded(&["[2001:db8::1]:4444"]);
        assert_eq!(trusted.client(ip("10.1.2.3"), &headers), ip("2001:db8::1"));
    }

    #[test]
    fn networks_parse() {
        assert!(parse_network("10.0.0.0/8").is_ok());
        assert!(parse_network("::1").is_ok());
        assert!(parse_network(" 192.168.0.1 ").is_ok());
        let err = parse_network("10.0.0.0/33").unwrap_err();
        assert!(err.contains("CIDR"), "{err}");
        assert!(parse_network("proxy.local").is_err());
    }
}
