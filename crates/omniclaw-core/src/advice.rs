//! One wording per problem, for every surface that meets it.
//!
//! The same failure reaches people through several doors — `omniclaw
//! onboard`, the desktop wizard, `status`, `health` — and used to get
//! different advice at each. The words live here; each surface adds only
//! the part that is its own (a flag in the CLI, a field in the wizard).
//! Sentences for people: no error chain, no library internals.

use std::fmt;

/// Why a network connection failed, as far as people need to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetFailure {
    /// The host name did not resolve (no network, no DNS, a wrong name).
    Dns,
    /// Nothing listens there (or a firewall rejects the connection).
    Refused,
    /// No answer in time.
    Timeout,
    /// The secure connection could not be set up (a proxy, a wrong clock,
    /// plain HTTP where HTTPS was expected).
    Tls,
    /// Anything else on the way.
    Other,
}

impl NetFailure {
    /// What happened, naming `host`: "DNS lookup for api.telegram.org failed".
    pub fn describe(self, host: &str) -> String {
        match self {
            NetFailure::Dns => format!("DNS lookup for {host} failed"),
            NetFailure::Refused => format!("{host} refused the connection"),
            NetFailure::Timeout => format!("{host} did not answer in time"),
            NetFailure::Tls => format!("the secure connection to {host} failed"),
            NetFailure::Other => format!("the connection to {host} failed"),
        }
    }

    /// The failure an error text names (an HTTP client's error with its
    /// causes, as one string): the resolver's, the socket's and the TLS
    /// layer's own words.
    pub fn of_text(text: &str) -> NetFailure {
        let words = text.to_ascii_lowercase();
        let says = |any: &[&str]| any.iter().any(|w| words.contains(w));
        if says(&[
            "dns error",
            "failed to lookup address",
            "name or service not known",
        ]) {
            NetFailure::Dns
        } else if says(&["connection refused"]) {
            NetFailure::Refused
        } else if says(&["timed out", "deadline has elapsed"]) {
            NetFailure::Timeout
        } else if says(&["certificate", "tls", "handshake", "corrupt message"]) {
            NetFailure::Tls
        } else {
            NetFailure::Other
        }
    }

    /// A word for machines (`--json`, the wizard).
    pub fn word(self) -> &'static str {
        match self {
            NetFailure::Dns => "dns",
            NetFailure::Refused => "refused",
            NetFailure::Timeout => "timeout",
            NetFailure::Tls => "tls",
            NetFailure::Other => "other",
        }
    }
}

impl fmt::Display for NetFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

/// The host of a URL (`https://api.telegram.org/bot…` → `api.telegram.org`,
/// `http://127.0.0.1:8081` → `127.0.0.1:8081`), for messages.
pub fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let host = &rest[..end];
    // Credentials before `@` are never shown.
    host.rsplit_once('@').map_or(host, |(_, h)| h)
}

/// The Telegram Bot API could not be reached: "Can't reach Telegram (DNS
/// lookup for api.telegram.org failed): check the network, or {elsewhere}".
/// `elsewhere` is the surface's own way to name another Bot API server
/// ("give your own Bot API server with --api-root URL", "enter your own
/// Bot API server below").
pub fn telegram_unreachable(what: &str, elsewhere: &str) -> String {
    format!("Can't reach Telegram ({what}): check the network, or {elsewhere}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(host_of("https://api.telegram.org"), "api.telegram.org");
        assert_eq!(
            host_of("https://api.telegram.org/bot123:abc/getMe"),
            "api.telegram.org"
        );
        assert_eq!(host_of("http://127.0.0.1:8081/"), "127.0.0.1:8081");
        assert_eq!(host_of("http://u:p@h.example:1"), "h.example:1");
        assert_eq!(host_of("h.example"), "h.example");
    }

    #[test]
    fn failures_are_read_from_error_texts() {
        let table = [
            ("error sending request: client error (Connect): dns error: failed to lookup address information: Name or service not known", NetFailure::Dns),
            ("error sending request: client error (Connect): tcp connect error: Connection refused (os error 111)", NetFailure::Refused),
            ("operation timed out", NetFailure::Timeout),
            ("client error (Connect): invalid peer certificate: UnknownIssuer", NetFailure::Tls),
            ("connection reset by peer", NetFailure::Other),
        ];
        for (text, expected) in table {
            assert_eq!(NetFailure::of_text(text), expected, "{text}");
        }
    }

    #[test]
    fn the_sentence_names_the_failure_and_the_way_out() {
        assert_eq!(
            telegram_unreachable(
                &NetFailure::Dns.describe("api.telegram.org"),
                "enter your own Bot API server below"
            ),
            "Can't reach Telegram (DNS lookup for api.telegram.org failed): check the network, or enter your own Bot API server below"
        );
        for f in [
            NetFailure::Dns,
            NetFailure::Refused,
            NetFailure::Timeout,
            NetFailure::Tls,
            NetFailure::Other,
        ] {
            let text = f.describe("h");
            assert!(text.contains('h') && !text.contains(':'), "{text}");
        }
    }
}
