//! The HTTP clients' common ground: TLS through rustls with the `ring`
//! provider, installed once for the process, and `Retry-After` read one way.
//!
//! reqwest is built without a provider of its own (its default would link
//! aws-lc, about 1.5 MB of C, beside the `ring` the WebSocket client
//! already uses). Every reqwest client in OmniClaw starts from
//! [`client_builder`], which installs `ring` first: a client built
//! without a provider would panic.

use std::sync::Once;
use std::time::{Duration, UNIX_EPOCH};

/// `ring` as the process's rustls provider, unless one is installed.
fn install_tls_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // An error means a provider is already installed: that one serves.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A reqwest client builder, with the TLS provider in place.
pub fn client_builder() -> reqwest::ClientBuilder {
    install_tls_provider();
    reqwest::Client::builder()
}

/// A response's `Retry-After`: seconds, or an HTTP date (turned into a
/// wait from `now_ms`).
pub fn retry_after(headers: &reqwest::header::HeaderMap, now_ms: i64) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    wait_of(value, now_ms)
}

fn wait_of(value: &str, now_ms: i64) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let at_ms = i64::try_from(at.duration_since(UNIX_EPOCH).ok()?.as_millis()).ok()?;
    let wait = u64::try_from(at_ms.saturating_sub(now_ms)).unwrap_or(0);
    Some(Duration::from_millis(wait))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Epoch ms of a `SystemTime`.
    fn ms(t: std::time::SystemTime) -> i64 {
        i64::try_from(
            t.duration_since(UNIX_EPOCH)
                .expect("after epoch")
                .as_millis(),
        )
        .expect("fits")
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        let now = ms(httpdate::parse_http_date("Sun, 06 Dec 2026 10:00:00 GMT").expect("date"));
        assert_eq!(wait_of("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            wait_of("Sun, 06 Dec 2026 10:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            wait_of("Sun, 06 Dec 2026 09:00:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        assert_eq!(wait_of("soon", now), None);
        let mut headers = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&headers, now), None);
        headers.insert(reqwest::header::RETRY_AFTER, "12".parse().expect("a value"));
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(12)));
    }

    #[test]
    fn a_client_builds_with_ring_as_the_provider() {
        client_builder().build().expect("a client");
        let provider = rustls::crypto::CryptoProvider::get_default().expect("installed");
        assert!(
            provider
                .cipher_suites
                .iter()
                .any(|s| format!("{:?}", s.suite()).contains("TLS13_AES_128_GCM_SHA256")),
            "ring's suites"
        );
    }
}
