//! Remote gateway targets, checked before anything connects to them, as
//! careful clients do: `--url ws(s)://HOST:PORT` of a gateway reached
//! directly (over a tailnet, a LAN) and `--ssh USER@HOST[:PORT]` of one
//! reached through an SSH tunnel.
//!
//! A URL may say `http(s)` (mapped to `ws(s)`); user info, a query or a
//! fragment is refused (credentials go to the secret store, never into a
//! URL); plain `ws` is allowed only to addresses that do not leave the
//! machine, the LAN or the tailnet: loopback, private, link-local,
//! CGNAT/tailnet (`100.64.0.0/10`, Tailscale's `fd7a:115c:a1e0::/48` is
//! inside the private `fc00::/7`), `localhost`, `*.ts.net` and `*.local`.
//! An SSH target is handed to `ssh` as an argument, so anything `ssh` could
//! read as an option (a leading `-`), or that a shell or config would
//! split (whitespace, control characters), is refused.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// A checked `ws(s)://` URL of a remote gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsTarget {
    /// The URL with `http(s)` mapped to `ws(s)`, as the client dials it.
    pub url: String,
    pub secure: bool,
    pub host: String,
    pub port: u16,
}

/// Why a `--url` is refused; each message names the URL and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("--url {url:?} is not a URL ({reason}): give ws://HOST:PORT or wss://HOST:PORT")]
    Unparsable { url: String, reason: String },
    #[error("--url {url:?} has the scheme {scheme}: a gateway speaks WebSocket, give ws://, wss:// (or http://, https://, which map to them)")]
    Scheme { url: String, scheme: String },
    #[error("--url {url:?} carries a user name or password: remove it and give the token or password on stdin, which keeps it in the secret store")]
    UserInfo { url: String },
    #[error("--url {url:?} has a query (?...): remove it; credentials go on stdin into the secret store")]
    Query { url: String },
    #[error("--url {url:?} has a fragment (#...): remove it")]
    Fragment { url: String },
    #[error("--url {url:?} names no host: give ws://HOST:PORT")]
    NoHost { url: String },
    #[error("--url {url:?} sends the gateway's token unencrypted to {host}, which is not a loopback, private, link-local or tailnet address: use wss://, a tailnet name (*.ts.net) or address, or --ssh USER@HOST")]
    PlainToPublic { url: String, host: String },
}

/// Checks a remote gateway's URL; `http(s)` becomes `ws(s)`.
pub fn parse_url(raw: &str) -> Result<WsTarget, UrlError> {
    let url_text = raw.to_string();
    let mut url = Url::parse(raw.trim()).map_err(|e| UrlError::Unparsable {
        url: url_text.clone(),
        reason: e.to_string(),
    })?;
    let secure = match url.scheme() {
        "ws" | "http" => false,
        "wss" | "https" => true,
        other => {
            return Err(UrlError::Scheme {
                url: url_text,
                scheme: other.to_string(),
            })
        }
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlError::UserInfo { url: url_text });
    }
    if url.query().is_some() {
        return Err(UrlError::Query { url: url_text });
    }
    if url.fragment().is_some() {
        return Err(UrlError::Fragment { url: url_text });
    }
    // Between special schemes the switch cannot fail.
    let _ = url.set_scheme(if secure { "wss" } else { "ws" });
    let host = match url.host() {
        Some(Host::Domain(d)) if !d.is_empty() => d.trim_end_matches('.').to_ascii_lowercase(),
        Some(Host::Ipv4(ip)) => ip.to_string(),
        Some(Host::Ipv6(ip)) => ip.to_string(),
        _ => return Err(UrlError::NoHost { url: url_text }),
    };
    if !secure && !stays_local(&host) {
        return Err(UrlError::PlainToPublic {
            url: url_text,
            host,
        });
    }
    let port = url
        .port_or_known_default()
        .unwrap_or(if secure { 443 } else { 80 });
    Ok(WsTarget {
        url: url.to_string(),
        secure,
        host,
        port,
    })
}

/// Whether plain `ws` to `host` stays on this machine, the LAN or the tailnet.
pub fn stays_local(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return local_ip(ip);
    }
    let under = |suffix: &str| {
        host.strip_suffix(suffix)
            .is_some_and(|label| !label.is_empty() && !label.ends_with('.'))
    };
    host == "localhost" || under(".localhost") || under(".ts.net") || under(".local")
}

fn local_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => local_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => local_v4(v4),
            None => local_v6(v6),
        },
    }
}

fn local_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        // CGNAT, which Tailscale gives its nodes: 100.64.0.0/10.
        || (a == 100 && (64..128).contains(&b))
}

fn local_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        // Unique local fc00::/7 (Tailscale's fd7a:115c:a1e0::/48 among them).
        || (first & 0xfe00) == 0xfc00
        // Link-local fe80::/10.
        || (first & 0xffc0) == 0xfe80
}

/// A checked `--ssh USER@HOST[:PORT]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    pub user: String,
    /// A host name or an IP address (IPv6 without brackets).
    pub host: String,
    pub port: u16,
}

impl SshTarget {
    /// `USER@HOST`, as `ssh` takes it (the port goes to `-p`).
    pub fn destination(&self) -> String {
        format!("{}@{}", self.user, self.host)
    }
}

impl fmt::Display for SshTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}@[{}]:{}", self.user, self.host, self.port)
        } else {
            write!(f, "{}@{}:{}", self.user, self.host, self.port)
        }
    }
}

/// The port `ssh` uses when the target names none.
pub const SSH_PORT: u16 = 22;

/// Why a `--ssh` target is refused; each message names it and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SshError {
    #[error("--ssh {target:?} starts with '-', which ssh would read as an option: give USER@HOST[:PORT]")]
    OptionLike { target: String },
    #[error("--ssh {target:?} contains whitespace or a control character: give USER@HOST[:PORT] without them")]
    Whitespace { target: String },
    #[error("--ssh {target:?} names no user: give USER@HOST[:PORT]")]
    NoUser { target: String },
    #[error("--ssh {target:?} has a user name ssh would misread: use letters, digits, '.', '_' and '-' (not first)")]
    BadUser { target: String },
    #[error("--ssh {target:?} has no valid host: give a host name (letters, digits, '.', '-'), an IPv4 address or [IPv6]")]
    BadHost { target: String },
    #[error("--ssh {target:?} has the port {port:?}: give a number from 1 to 65535")]
    BadPort { target: String, port: String },
}

/// Checks `USER@HOST[:PORT]` (`USER@[IPv6]:PORT` for an IPv6 address).
pub fn parse_ssh(raw: &str) -> Result<SshTarget, SshError> {
    let target = raw.to_string();
    if raw.starts_with('-') {
        return Err(SshError::OptionLike { target });
    }
    if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(SshError::Whitespace { target });
    }
    let Some((user, rest)) = raw.split_once('@') else {
        return Err(SshError::NoUser { target });
    };
    if user.is_empty() {
        return Err(SshError::NoUser { target });
    }
    let user_ok = !user.starts_with('-')
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !user_ok {
        return Err(SshError::BadUser { target });
    }
    let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
        let Some((inside, after)) = bracketed.split_once(']') else {
            return Err(SshError::BadHost { target });
        };
        if inside.parse::<Ipv6Addr>().is_err() {
            return Err(SshError::BadHost { target });
        }
        let port = match after {
            "" => None,
            p => match p.strip_prefix(':') {
                Some(p) => Some(p),
                None => return Err(SshError::BadHost { target }),
            },
        };
        (inside, port)
    } else {
        match rest.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    let host_ok = !host.is_empty()
        && !host.starts_with(['-', '.'])
        && (host.contains(':')
            || host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-')));
    if !host_ok {
        return Err(SshError::BadHost { target });
    }
    let port = match port {
        None => SSH_PORT,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n != 0 && p.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => {
                return Err(SshError::BadPort {
                    target,
                    port: p.to_string(),
                })
            }
        },
    };
    Ok(SshTarget {
        user: user.to_string(),
        host: host.to_string(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A refusal names what was given and says `fragment`.
    fn refused(raw: &str, e: &dyn std::error::Error, fragment: &str) {
        let m = e.to_string();
        assert!(m.contains(fragment), "{raw}: {m}");
        assert!(m.contains(&format!("{raw:?}")), "names the input: {m}");
    }

    fn check_url(raw: &str, expected: Result<(&str, u16), &str>) {
        let got = parse_url(raw);
        match (&got, expected) {
            (Ok(t), Ok((url, port))) => {
                assert_eq!((t.url.as_str(), t.port), (url, port), "{raw}");
                assert_eq!(t.secure, url.starts_with("wss:"), "{raw}");
            }
            (Err(e), Err(fragment)) => refused(raw, e, fragment),
            _ => panic!("{raw}: got {got:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn urls() {
        for (raw, expected) in [
            (
                "wss://gw.example.com:8443",
                Ok(("wss://gw.example.com:8443/", 8443)),
            ),
            ("wss://gw.example.com", Ok(("wss://gw.example.com/", 443))),
            (
                "https://gw.example.com/",
                Ok(("wss://gw.example.com/", 443)),
            ),
            (
                "http://192.168.1.5:18789",
                Ok(("ws://192.168.1.5:18789/", 18789)),
            ),
            ("ws://127.0.0.1:18789", Ok(("ws://127.0.0.1:18789/", 18789))),
            ("ws://localhost:18789", Ok(("ws://localhost:18789/", 18789))),
            ("ws://[::1]:18789", Ok(("ws://[::1]:18789/", 18789))),
            ("ws://10.1.2.3:1", Ok(("ws://10.1.2.3:1/", 1))),
            ("ws://172.31.255.1:2", Ok(("ws://172.31.255.1:2/", 2))),
            ("ws://169.254.9.9:3", Ok(("ws://169.254.9.9:3/", 3))),
            ("ws://100.64.0.1:4", Ok(("ws://100.64.0.1:4/", 4))),
            ("ws://100.127.255.254:5", Ok(("ws://100.127.255.254:5/", 5))),
            (
                "ws://[fd7a:115c:a1e0::1]:6",
                Ok(("ws://[fd7a:115c:a1e0::1]:6/", 6)),
            ),
            ("ws://[fe80::1]:7", Ok(("ws://[fe80::1]:7/", 7))),
            (
                "ws://[::ffff:192.168.0.1]:8",
                Ok(("ws://[::ffff:c0a8:1]:8/", 8)),
            ),
            (
                "ws://box.tail1234.ts.net:18789",
                Ok(("ws://box.tail1234.ts.net:18789/", 18789)),
            ),
            ("ws://Printer.LOCAL:9", Ok(("ws://printer.local:9/", 9))),
            ("ws://box.local.:9", Ok(("ws://box.local.:9/", 9))),
            // Plain ws that would leave the LAN or the tailnet.
            ("ws://8.8.8.8:18789", Err("not a loopback, private")),
            ("ws://100.128.0.1:1", Err("not a loopback, private")),
            ("ws://172.32.0.1:1", Err("not a loopback, private")),
            ("ws://[2001:db8::1]:1", Err("not a loopback, private")),
            ("ws://[::ffff:8.8.8.8]:1", Err("not a loopback, private")),
            ("ws://gw.example.com:18789", Err("use wss://")),
            ("ws://ts.net:1", Err("unencrypted")),
            ("ws://evil-ts.net:1", Err("unencrypted")),
            ("ws://local:1", Err("unencrypted")),
            ("http://example.local.evil.com", Err("unencrypted")),
            // Credentials, queries and fragments never ride in a URL.
            (
                "wss://user:pw@gw.example.com",
                Err("carries a user name or password"),
            ),
            (
                "ws://user@127.0.0.1:1",
                Err("carries a user name or password"),
            ),
            ("wss://gw.example.com/?token=abc", Err("has a query")),
            ("wss://gw.example.com/?", Err("has a query")),
            ("wss://gw.example.com/#x", Err("has a fragment")),
            // Not a gateway URL at all.
            ("ftp://gw.example.com", Err("has the scheme ftp")),
            ("file:///tmp/x", Err("has the scheme file")),
            ("gw.example.com:18789", Err("has the scheme gw.example.com")),
            ("not a url", Err("is not a URL")),
            ("", Err("is not a URL")),
        ] {
            check_url(raw, expected);
        }
    }

    fn check_ssh(raw: &str, expected: Result<(&str, &str, u16), &str>) {
        let got = parse_ssh(raw);
        match (&got, expected) {
            (Ok(t), Ok((user, host, port))) => {
                assert_eq!(
                    (t.user.as_str(), t.host.as_str(), t.port),
                    (user, host, port),
                    "{raw}"
                );
                assert_eq!(parse_ssh(&t.to_string()).as_ref(), Ok(t), "round trip");
            }
            (Err(e), Err(fragment)) => refused(raw, e, fragment),
            _ => panic!("{raw}: got {got:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn ssh_targets() {
        for (raw, expected) in [
            ("me@home.example.com", Ok(("me", "home.example.com", 22))),
            (
                "me@home.example.com:2222",
                Ok(("me", "home.example.com", 2222)),
            ),
            ("deploy_1.x@10.0.0.2:22", Ok(("deploy_1.x", "10.0.0.2", 22))),
            ("me@[::1]:2022", Ok(("me", "::1", 2022))),
            ("me@[fe80::1]", Ok(("me", "fe80::1", 22))),
            // Option injection.
            ("-oProxyCommand=sh -c 'id'", Err("starts with '-'")),
            ("-oProxyCommand=id", Err("starts with '-'")),
            ("me@-oProxyCommand=id", Err("no valid host")),
            ("-me@host", Err("starts with '-'")),
            (
                "me@host -oProxyCommand=id",
                Err("whitespace or a control character"),
            ),
            ("me@host\n-oX=y", Err("whitespace or a control character")),
            ("me@ho\tst", Err("whitespace or a control character")),
            ("me@host\u{0}", Err("whitespace or a control character")),
            // Malformed.
            ("home.example.com", Err("names no user")),
            ("@home.example.com", Err("names no user")),
            ("a@b@c", Err("no valid host")),
            ("m;e@host", Err("user name ssh would misread")),
            ("me@", Err("no valid host")),
            ("me@.host", Err("no valid host")),
            ("me@ho%st", Err("no valid host")),
            ("me@[not-ip]:22", Err("no valid host")),
            ("me@[::1]22", Err("no valid host")),
            ("me@host:0", Err("the port \"0\"")),
            ("me@host:65536", Err("the port \"65536\"")),
            ("me@host:+22", Err("the port \"+22\"")),
            ("me@host:", Err("the port \"\"")),
        ] {
            check_ssh(raw, expected);
        }
        let t = parse_ssh("me@[::1]:2022").expect("valid");
        assert_eq!(t.destination(), "me@::1");
        assert_eq!(t.to_string(), "me@[::1]:2022");
    }
}
