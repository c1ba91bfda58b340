//! `--allow-targets`: the address ranges an agent may send load to.

use std::fmt;
use std::net::IpAddr;

/// One range: an address and a prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` is inside (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The ranges, any of which admits a target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowList(pub Vec<Cidr>);

impl AllowList {
    /// Loopback only: 127.0.0.0/8 and ::1.
    pub fn loopback() -> AllowList {
        AllowList(vec![
            Cidr {
                addr: IpAddr::from([127, 0, 0, 0]),
                prefix: 8,
            },
            Cidr {
                addr: IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
                prefix: 128,
            },
        ])
    }

    /// Whether `ip` is in one of the ranges.
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }
}

impl fmt::Display for AllowList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

/// Parses `ADDR[/PREFIX][,ADDR[/PREFIX]...]` (a bare address is one host).
pub fn parse_allow(s: &str) -> Result<AllowList, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (addr, prefix) = match part.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (part, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("'{part}' is not an address range (like 10.0.0.0/8)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= max)
                .ok_or_else(|| format!("'{part}': the prefix must be 0 to {max}"))?,
            None => max,
        };
        out.push(Cidr { addr, prefix });
    }
    if out.is_empty() {
        return Err("no address range given".into());
    }
    Ok(AllowList(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn loopback_allows_only_loopback() {
        let l = AllowList::loopback();
        assert!(l.allows(ip("127.0.0.1")));
        assert!(l.allows(ip("127.9.8.7")));
        assert!(l.allows(ip("::1")));
        assert!(l.allows(ip("::ffff:127.0.0.1")));
        assert!(!l.allows(ip("10.0.0.1")));
        assert!(!l.allows(ip("128.0.0.1")));
        assert!(!l.allows(ip("::2")));
    }

    #[test]
    fn ranges_parse_and_match_at_their_edges() {
        let l = parse_allow("10.1.0.0/16, 192.168.5.7,fd00::/8").unwrap();
        assert!(l.allows(ip("10.1.255.255")));
        assert!(!l.allows(ip("10.2.0.0")));
        assert!(l.allows(ip("192.168.5.7")));
        assert!(!l.allows(ip("192.168.5.8")));
        assert!(l.allows(ip("fd12::1")));
        assert!(!l.allows(ip("fe80::1")));
        assert!(parse_allow("0.0.0.0/0").unwrap().allows(ip("8.8.8.8")));
        assert_eq!(l.to_string(), "10.1.0.0/16,192.168.5.7/32,fd00::/8");
    }

    #[test]
    fn bad_ranges_are_refused() {
        for bad in ["", "10.0.0.0/33", "::/129", "host/8", "10.0.0.0/x"] {
            assert!(parse_allow(bad).is_err(), "{bad}");
        }
    }
}
