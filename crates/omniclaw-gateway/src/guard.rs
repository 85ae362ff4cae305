//! Requests that come from web pages rather than programs, and requests
//! that were aimed at another host: both are refused before any handler
//! runs. Pure checks over the request headers.
//!
//! No OmniClaw surface is meant for a web page: the desktop dashboard talks
//! to gateways through the app's Rust side, never from its web view, and
//! the CLI, the desktop app, the rescue bot and OpenClaw's clients send no
//! `Origin`. A browser always sends `Origin` with a WebSocket handshake and
//! with every POST, and marks every other request it makes on a page's
//! behalf with `Sec-Fetch-Site`, so either header means a web page is
//! asking. A `Host` that is not this service's loopback name and port means
//! a page reached it through a name that resolves to loopback (DNS
//! rebinding).

use axum::http::{header, HeaderMap};
use subtle::ConstantTimeEq;

use crate::spec::Auth;

/// Why a request is refused, in words that name what was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A web page asked (`Origin` or `Sec-Fetch-Site` present).
    WebPage(String),
    /// `Host` is not this service's loopback name and port.
    ForeignHost(String),
    /// No credentials, or the wrong ones.
    Unauthorized { presented: bool },
}

/// `Some(what the browser said)` when the request was made by a web page.
pub fn web_page(headers: &HeaderMap) -> Option<String> {
    if let Some(origin) = headers.get(header::ORIGIN) {
        return Some(format!(
            "Origin {}",
            String::from_utf8_lossy(origin.as_bytes())
        ));
    }
    // "none" is a navigation the user typed or bookmarked, not a page's request.
    match headers.get("sec-fetch-site").map(|v| v.as_bytes()) {
        None | Some(b"none") => None,
        Some(site) => Some(format!("Sec-Fetch-Site {}", String::from_utf8_lossy(site))),
    }
}

/// Whether `Host` names this loopback service: `127.0.0.1`, `localhost` or
/// `[::1]`, with `port`.
pub fn loopback_host(headers: &HeaderMap, port: u16) -> Result<(), Refusal> {
    let host = headers
        .get(header::HOST)
        .map(|h| String::from_utf8_lossy(h.as_bytes()).to_ascii_lowercase());
    let ok = host.as_deref().is_some_and(|h| {
        ["127.0.0.1", "localhost", "[::1]"]
            .iter()
            .any(|name| h == format!("{name}:{port}"))
    });
    if ok {
        Ok(())
    } else {
        Err(Refusal::ForeignHost(
            host.unwrap_or_else(|| "(none)".into()),
        ))
    }
}

/// The secret of `Authorization: Bearer <secret>`, if sent.
pub fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, secret) = value.split_at_checked(7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| secret.trim_ascii())
}

/// Whether the request carries this gateway's secret (token or password)
/// as a bearer credential; constant time in the secret.
pub fn credentials(headers: &HeaderMap, auth: &Auth) -> Result<(), Refusal> {
    let expected = match auth {
        Auth::None => return Ok(()),
        Auth::Token(s) | Auth::Password(s) => s.as_bytes(),
    };
    match bearer(headers) {
        Some(given) if bool::from(expected.ct_eq(given)) => Ok(()),
        given => Err(Refusal::Unauthorized {
            presented: given.is_some(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn web_pages_are_recognised() {
        fn check(pairs: &[(&'static str, &'static str)], expected: Option<&str>) {
            assert_eq!(web_page(&headers(pairs)).as_deref(), expected, "{pairs:?}");
        }
        check(&[], None);
        check(
            &[("origin", "https://evil.example")],
            Some("Origin https://evil.example"),
        );
        check(&[("origin", "null")], Some("Origin null"));
        check(
            &[("sec-fetch-site", "cross-site")],
            Some("Sec-Fetch-Site cross-site"),
        );
        check(
            &[("sec-fetch-site", "same-origin")],
            Some("Sec-Fetch-Site same-origin"),
        );
        check(&[("sec-fetch-site", "none")], None);
    }

    #[test]
    fn only_the_loopback_name_and_port_are_this_host() {
        fn check(host: Option<&'static str>, ok: bool) {
            let h = match host {
                Some(v) => headers(&[("host", v)]),
                None => HeaderMap::new(),
            };
            assert_eq!(loopback_host(&h, 18791).is_ok(), ok, "{host:?}");
        }
        check(Some("127.0.0.1:18791"), true);
        check(Some("localhost:18791"), true);
        check(Some("LOCALHOST:18791"), true);
        check(Some("[::1]:18791"), true);
        check(Some("127.0.0.1:18792"), false);
        check(Some("127.0.0.1"), false);
        check(Some("evil.example:18791"), false);
        check(Some("localhost.evil.example:18791"), false);
        check(None, false);
    }

    #[test]
    fn credentials_are_bearer_secrets() {
        let token = Auth::Token("s3cret".into());
        let check = |pairs: &[(&'static str, &'static str)], auth: &Auth| {
            credentials(&headers(pairs), auth)
        };
        assert_eq!(check(&[("authorization", "Bearer s3cret")], &token), Ok(()));
        assert_eq!(
            check(&[("authorization", "bearer  s3cret ")], &token),
            Ok(())
        );
        assert_eq!(
            check(&[("authorization", "Bearer s3cre")], &token),
            Err(Refusal::Unauthorized { presented: true })
        );
        assert_eq!(
            check(&[("authorization", "Basic s3cret")], &token),
            Err(Refusal::Unauthorized { presented: false })
        );
        assert_eq!(
            check(&[], &token),
            Err(Refusal::Unauthorized { presented: false })
        );
        assert_eq!(
            check(
                &[("authorization", "Bearer pw")],
                &Auth::Password("pw".into())
            ),
            Ok(())
        );
        assert_eq!(check(&[], &Auth::None), Ok(()));
    }
}
