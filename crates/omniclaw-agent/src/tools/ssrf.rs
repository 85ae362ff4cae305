//! Which hosts and addresses `web_fetch` may reach
//! (`tools.web.fetch.ssrfPolicy`, OpenClaw's keys).
//!
//! Only public addresses, by default: loopback, private, link-local, CGNAT,
//! multicast, unspecified, documentation, benchmarking and the other
//! special-use ranges are refused — on every hop and after DNS resolution.
//! The resolver that checks the answer is the one the HTTP client connects
//! with ([`Guarded`]), so the address that was checked is the address that
//! is dialled; an answer cannot change between the two.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use futures_util::future::BoxFuture;

/// `tools.web.fetch.ssrfPolicy`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SsrfPolicy {
    /// Every address is allowed (the checks are off).
    pub dangerously_allow_private_network: bool,
    /// 198.18.0.0/15 is allowed.
    pub allow_rfc2544_benchmark_range: bool,
    /// fc00::/7 is allowed.
    pub allow_ipv6_unique_local_range: bool,
    /// Host names (exact) whose addresses are not checked: the user's own
    /// services on a private network.
    pub allowed_hostnames: Vec<String>,
    /// Host names never fetched: exact, or `*.example.com` for every
    /// subdomain.
    pub blocked_hostnames: Vec<String>,
}

/// Why a host or an address was refused. The text names the rule and the
/// key that would allow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub host: String,
    pub address: Option<IpAddr>,
    pub message: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Refusal {}

/// Lower case, without brackets or a final dot: how names are compared.
pub fn normalize_host(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

fn matches_pattern(host: &str, pattern: &str) -> bool {
    let pattern = normalize_host(pattern);
    match pattern.strip_prefix("*.") {
        Some(suffix) => !suffix.is_empty() && host.ends_with(&format!(".{suffix}")),
        None => host == pattern,
    }
}

/// Names that point at this machine or a local network by convention.
fn is_internal_name(host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host.ends_with(".local")
        || host.ends_with(".internal")
        || host == "metadata"
}

impl SsrfPolicy {
    /// Whether the address checks are off for `host` (normalized).
    fn trusts(&self, host: &str) -> bool {
        self.dangerously_allow_private_network
            || self
                .allowed_hostnames
                .iter()
                .any(|h| normalize_host(h) == host)
    }

    /// The checks on the name alone (before any lookup).
    pub fn check_name(&self, host: &str) -> Result<(), Refusal> {
        let host = normalize_host(host);
        if let Some(p) = self
            .blocked_hostnames
            .iter()
            .find(|p| matches_pattern(&host, p))
        {
            return Err(Refusal {
                message: format!(
                    "web_fetch refused {host}: it is blocked by tools.web.fetch.ssrfPolicy.blockedHostnames ({p}); \
                     try a URL on another host"
                ),
                host,
                address: None,
            });
        }
        if !self.trusts(&host) && is_internal_name(&host) {
            return Err(Refusal {
                message: format!(
                    "web_fetch refused {host}: it names this machine or a local network (localhost, *.local, \
                     *.internal), and web_fetch reaches only public hosts; if the user trusts it, they can add \
                     {host:?} to tools.web.fetch.ssrfPolicy.allowedHostnames"
                ),
                host,
                address: None,
            });
        }
        Ok(())
    }

    /// The check on one address `host` resolved to (or is, for a literal).
    pub fn check_address(&self, host: &str, ip: IpAddr) -> Result<(), Refusal> {
        let host = normalize_host(host);
        if self.trusts(&host) {
            return Ok(());
        }
        let Some(range) = special_range(ip, self) else {
            return Ok(());
        };
        let is_literal = host.parse::<IpAddr>().is_ok();
        let what = if is_literal {
            format!("{ip} is {range}")
        } else {
            format!("{host} resolves to {ip}, {range}")
        };
        let fix = if range.contains("198.18.0.0/15") {
            "set tools.web.fetch.ssrfPolicy.allowRfc2544BenchmarkRange to allow that range"
                .to_string()
        } else if range.contains("fc00::/7") {
            "set tools.web.fetch.ssrfPolicy.allowIpv6UniqueLocalRange to allow that range"
                .to_string()
        } else {
            format!("if the user trusts it, they can add {host:?} to tools.web.fetch.ssrfPolicy.allowedHostnames")
        };
        Err(Refusal {
            message: format!("web_fetch refused {host}: {what}, and web_fetch reaches only public addresses; {fix}"),
            host,
            address: Some(ip),
        })
    }
}

fn in_v4(ip: u32, net: [u8; 4], bits: u32) -> bool {
    let net = u32::from_be_bytes(net);
    bits == 0 || (ip >> (32 - bits)) == (net >> (32 - bits))
}

fn in_v6(ip: u128, net: u128, bits: u32) -> bool {
    bits == 0 || (ip >> (128 - bits)) == (net >> (128 - bits))
}

/// The special-use range `ip` is in, worded for an error ("a loopback
/// address (127.0.0.0/8)"), unless the policy allows that range.
pub fn special_range(ip: IpAddr, policy: &SsrfPolicy) -> Option<String> {
    match ip {
        IpAddr::V4(v4) => v4_range(v4, policy).map(str::to_string),
        IpAddr::V6(v6) => v6_range(v6, policy),
    }
}

fn v4_range(ip: Ipv4Addr, policy: &SsrfPolicy) -> Option<&'static str> {
    let n = u32::from(ip);
    let table: &[([u8; 4], u32, &'static str)] = &[
        (
            [0, 0, 0, 0],
            8,
            "an unspecified (\"this network\") address (0.0.0.0/8)",
        ),
        ([10, 0, 0, 0], 8, "a private address (10.0.0.0/8)"),
        (
            [100, 64, 0, 0],
            10,
            "a carrier-grade NAT address (100.64.0.0/10)",
        ),
        ([127, 0, 0, 0], 8, "a loopback address (127.0.0.0/8)"),
        (
            [169, 254, 0, 0],
            16,
            "a link-local address (169.254.0.0/16, where cloud metadata services answer)",
        ),
        ([172, 16, 0, 0], 12, "a private address (172.16.0.0/12)"),
        (
            [192, 0, 0, 0],
            24,
            "an IETF protocol address (192.0.0.0/24)",
        ),
        ([192, 0, 2, 0], 24, "a documentation address (192.0.2.0/24)"),
        (
            [192, 88, 99, 0],
            24,
            "a 6to4 relay address (192.88.99.0/24)",
        ),
        ([192, 168, 0, 0], 16, "a private address (192.168.0.0/16)"),
        (
            [198, 18, 0, 0],
            15,
            "a benchmarking address (198.18.0.0/15)",
        ),
        (
            [198, 51, 100, 0],
            24,
            "a documentation address (198.51.100.0/24)",
        ),
        (
            [203, 0, 113, 0],
            24,
            "a documentation address (203.0.113.0/24)",
        ),
        ([224, 0, 0, 0], 4, "a multicast address (224.0.0.0/4)"),
        (
            [240, 0, 0, 0],
            4,
            "a reserved or broadcast address (240.0.0.0/4)",
        ),
    ];
    table
        .iter()
        .find(|(net, bits, _)| in_v4(n, *net, *bits))
        .map(|(_, _, name)| *name)
        .filter(|name| !(policy.allow_rfc2544_benchmark_range && name.contains("198.18.0.0/15")))
}

fn v6_range(ip: Ipv6Addr, policy: &SsrfPolicy) -> Option<String> {
    let n = u128::from(ip);
    // Addresses that carry an IPv4 address: judged by that address.
    let embedded = |v4: u32, how: &str| {
        v4_range(Ipv4Addr::from(v4), policy).map(|r| format!("{r}, {how} in {ip}"))
    };
    if in_v6(n, 0xffff << 32, 96) {
        return embedded(n as u32, "IPv4-mapped");
    }
    if in_v6(n, 0x0064_ff9b << 96, 96) {
        return embedded(n as u32, "NAT64-embedded");
    }
    if in_v6(n, 0x2002 << 112, 16) {
        return embedded((n >> 80) as u32, "6to4-embedded");
    }
    let table: &[(u128, u32, &str)] = &[
        (0, 128, "the unspecified address (::)"),
        (1, 128, "the loopback address (::1)"),
        (0, 96, "an IPv4-compatible address (::/96, deprecated)"),
        (
            0x0064_ff9b_0001 << 80,
            48,
            "a local-use NAT64 address (64:ff9b:1::/48)",
        ),
        (0x0100 << 112, 64, "a discard-only address (100::/64)"),
        (
            0x2001_0db8 << 96,
            32,
            "a documentation address (2001:db8::/32)",
        ),
        (
            0x2001 << 112,
            23,
            "an IETF protocol address (2001::/23, Teredo included)",
        ),
        (0xfc00 << 112, 7, "a unique local address (fc00::/7)"),
        (0xfe80 << 112, 10, "a link-local address (fe80::/10)"),
        (
            0xfec0 << 112,
            10,
            "a site-local address (fec0::/10, deprecated)",
        ),
        (0xff00 << 112, 8, "a multicast address (ff00::/8)"),
    ];
    table
        .iter()
        .find(|(net, bits, _)| in_v6(n, *net, *bits))
        .map(|(_, _, name)| *name)
        .filter(|name| !(policy.allow_ipv6_unique_local_range && name.contains("fc00::/7")))
        .map(str::to_string)
}

/// Turns a host name into addresses. The system's resolver by default;
/// tests and embedders hand in their own.
pub trait NameResolver: Send + Sync {
    fn lookup(&self, host: &str) -> BoxFuture<'static, io::Result<Vec<IpAddr>>>;
}

/// The operating system's resolver (`getaddrinfo`).
#[derive(Debug, Default)]
pub struct SystemResolver;

impl NameResolver for SystemResolver {
    fn lookup(&self, host: &str) -> BoxFuture<'static, io::Result<Vec<IpAddr>>> {
        let host = host.to_string();
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .map(|a| a.ip())
                .collect())
        })
    }
}

/// The resolver the HTTP client connects through: it answers only with
/// addresses the policy allows, and refuses the whole name when any
/// answer is not (a mixed answer is how rebinding attacks look).
pub(crate) struct Guarded {
    pub resolver: Arc<dyn NameResolver>,
    pub policy: Arc<SsrfPolicy>,
}

impl reqwest::dns::Resolve for Guarded {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = normalize_host(name.as_str());
        let resolver = self.resolver.clone();
        let policy = self.policy.clone();
        Box::pin(async move {
            policy.check_name(&host)?;
            let addrs = resolver.lookup(&host).await?;
            if addrs.is_empty() {
                return Err(format!("{host} has no address").into());
            }
            for ip in &addrs {
                policy.check_address(&host, *ip)?;
            }
            let addrs: reqwest::dns::Addrs =
                Box::new(addrs.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(ip: &str, policy: &SsrfPolicy) -> Option<String> {
        special_range(ip.parse().expect("ip"), policy)
    }

    #[test]
    fn special_addresses_are_refused_and_public_ones_pass() {
        let p = SsrfPolicy::default();
        for (ip, rule) in [
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("0.0.0.0", "unspecified"),
            ("10.1.2.3", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("100.64.0.1", "carrier-grade NAT"),
            ("169.254.169.254", "link-local"),
            ("224.0.0.251", "multicast"),
            ("255.255.255.255", "broadcast"),
            ("198.19.0.1", "benchmarking"),
            ("192.0.2.7", "documentation"),
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:10.0.0.1", "IPv4-mapped"),
            ("64:ff9b::a9fe:a9fe", "link-local"),
            ("2002:7f00:1::", "6to4-embedded"),
            ("fd00::1", "unique local"),
            ("fe80::1", "link-local"),
            ("ff02::1", "multicast"),
            ("2001:db8::1", "documentation"),
            ("2001:0:1::1", "Teredo"),
        ] {
            let got = check(ip, &p);
            assert!(
                got.as_deref().is_some_and(|r| r.contains(rule)),
                "{ip}: expected {rule}, got {got:?}"
            );
        }
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "2a00:1450::1",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(check(ip, &p), None, "{ip} is public");
        }
    }

    #[test]
    fn the_policy_opens_only_what_it_names() {
        let p = SsrfPolicy {
            allow_rfc2544_benchmark_range: true,
            allow_ipv6_unique_local_range: true,
            ..SsrfPolicy::default()
        };
        assert_eq!(check("198.18.0.1", &p), None);
        assert_eq!(check("fd12::1", &p), None);
        assert!(check("10.0.0.1", &p).is_some());

        let p = SsrfPolicy {
            allowed_hostnames: vec!["Intranet.Example.".into()],
            blocked_hostnames: vec!["*.ads.example".into(), "evil.example".into()],
            ..SsrfPolicy::default()
        };
        let loopback: IpAddr = "127.0.0.1".parse().expect("ip");
        assert!(p.check_address("intranet.example", loopback).is_ok());
        let err = p
            .check_address("other.example", loopback)
            .expect_err("refused");
        assert!(
            err.message
                .contains("other.example resolves to 127.0.0.1, a loopback address"),
            "{err}"
        );
        assert!(err.message.contains("allowedHostnames"), "{err}");
        let err = p.check_address("127.0.0.1", loopback).expect_err("refused");
        assert!(
            err.message.contains("127.0.0.1 is a loopback address"),
            "{err}"
        );
        assert!(p
            .check_name("x.ads.example")
            .expect_err("blocked")
            .message
            .contains("blockedHostnames"));
        assert!(
            p.check_name("ads.example").is_ok(),
            "*. matches subdomains only"
        );
        assert!(p.check_name("EVIL.example.").is_err());
        for name in ["localhost", "a.localhost", "printer.local", "db.internal"] {
            let err = p.check_name(name).expect_err("internal");
            assert!(err.message.contains("names this machine"), "{err}");
        }
        let open = SsrfPolicy {
            dangerously_allow_private_network: true,
            ..SsrfPolicy::default()
        };
        assert!(open.check_name("localhost").is_ok());
        assert!(open.check_address("x", loopback).is_ok());
    }
}
