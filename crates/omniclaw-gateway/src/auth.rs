//! Authentication of `connect`: constant-time secret comparison, the
//! strength a secret needs on a network bind, and the per-IP failure rate
//! limit. The clock is passed in, so all of it is pure.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde_json::json;
use subtle::ConstantTimeEq;

use crate::protocol::{ErrorShape, Presented, Refusal};
use crate::spec::Auth;

/// Compares two secrets without leaking where they differ.
pub fn secrets_equal(expected: &str, presented: &str) -> bool {
    bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
}

/// The fewest characters a secret may have when the gateway is reachable
/// from other machines.
pub const MIN_REMOTE_SECRET_CHARS: usize = 16;

/// Why `secret` is too weak to guard a gateway that other machines can
/// reach, or `None`. Anyone who can reach the port may try secrets, and
/// over a network they can try many: such a secret needs at least
/// [`MIN_REMOTE_SECRET_CHARS`] characters and must be rated "very
/// unguessable" by zxcvbn (score 4 of 4: more than 10^10 guesses), which
/// a random token or a long passphrase is and a word, a name or a
/// keyboard walk is not.
pub fn weakness(secret: &str) -> Option<String> {
    let chars = secret.chars().count();
    if chars < MIN_REMOTE_SECRET_CHARS {
        return Some(format!(
            "it has {chars} characters, fewer than {MIN_REMOTE_SECRET_CHARS}"
        ));
    }
    let score = u8::from(zxcvbn::zxcvbn(secret, &[]).score());
    (score < 4).then(|| format!("it is easy to guess (strength {score} of 4)"))
}

/// The outcome of checking presented credentials against the gateway's auth.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Accepted,
    /// Refused; `counts` says whether it is a failed attempt for the rate limit.
    Refused {
        refusal: Refusal,
        counts: bool,
    },
}

/// Checks `presented` against `auth`.
pub fn verify(auth: &Auth, presented: &Presented) -> Verdict {
    let (expected, given, kind) = match auth {
        Auth::None => return Verdict::Accepted,
        Auth::Token(t) => (t, presented.token.as_deref(), "token"),
        Auth::Password(p) => (p, presented.password.as_deref(), "password"),
    };
    match given {
        Some(given) if secrets_equal(expected, given) => Verdict::Accepted,
        Some(_) => Verdict::Refused {
            refusal: mismatch(kind),
            counts: true,
        },
        None if presented.token.is_none() && presented.password.is_none() => Verdict::Refused {
            refusal: Refusal::policy(
                ErrorShape {
                    code: "NOT_PAIRED",
                    message: "device identity required".into(),
                    details: None,
                }
                .with_details(json!({"code": "DEVICE_IDENTITY_REQUIRED"})),
            ),
            counts: false,
        },
        // A token offered to a password gateway (or the reverse) is a wrong secret.
        None => Verdict::Refused {
            refusal: mismatch(kind),
            counts: true,
        },
    }
}

fn mismatch(kind: &str) -> Refusal {
    let (message, code, reason) = if kind == "token" {
        (
            "unauthorized: gateway token mismatch (use this gateway's gateway.auth.token or pair the device)",
            "AUTH_TOKEN_MISMATCH",
            "token_mismatch",
        )
    } else {
        (
            "unauthorized: gateway password mismatch (use this gateway's gateway.auth.password)",
            "AUTH_PASSWORD_MISMATCH",
            "password_mismatch",
        )
    };
    Refusal::policy(ErrorShape::invalid_request(message).with_details(json!({
        "code": code,
        "authReason": reason,
        "canRetryWithDeviceToken": false,
        "recommendedNextStep": "update_auth_credentials",
    })))
}

/// The refusal sent while an IP is rate limited.
pub fn rate_limited(ip: IpAddr, retry_after: Duration) -> Refusal {
    let secs = retry_after.as_secs().max(1);
    Refusal::policy(
        ErrorShape::invalid_request(format!(
            "unauthorized: too many failed authentication attempts from {ip}; retry in {secs} s with this gateway's credentials"
        ))
        .with_details(json!({
            "code": "AUTH_RATE_LIMITED",
            "retryAfterMs": u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX),
        })),
    )
}

/// Failed authentications per client IP in a sliding window.
#[derive(Debug)]
pub struct RateLimiter {
    max: u32,
    window: Duration,
    failures: HashMap<IpAddr, VecDeque<Instant>>,
}

/// Beyond this many tracked IPs, stale entries are swept on the next failure.
const SWEEP_AT: usize = 4096;

impl RateLimiter {
    pub fn new(max: u32, window: Duration) -> RateLimiter {
        RateLimiter {
            max,
            window,
            failures: HashMap::new(),
        }
    }

    /// `Err(retry_after)` while `ip` has used up its failures.
    pub fn check(&mut self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let window = self.window;
        let Some(q) = self.failures.get_mut(&ip) else {
            return Ok(());
        };
        while q.front().is_some_and(|t| now.duration_since(*t) >= window) {
            q.pop_front();
        }
        if q.len() >= self.max as usize {
            let oldest = q.front().copied().unwrap_or(now);
            Err(window.saturating_sub(now.duration_since(oldest)))
        } else {
            Ok(())
        }
    }

    pub fn record_failure(&mut self, ip: IpAddr, now: Instant) {
        if self.failures.len() >= SWEEP_AT {
            let window = self.window;
            self.failures
                .retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < window));
        }
        self.failures.entry(ip).or_default().push_back(now);
    }

    /// A successful authentication clears the IP's record.
    pub fn reset(&mut self, ip: IpAddr) {
        self.failures.remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(v: &Verdict) -> Option<String> {
        match v {
            Verdict::Accepted => None,
            Verdict::Refused { refusal, .. } => Some(
                refusal
                    .error
                    .details
                    .as_ref()
                    .and_then(|d| d["code"].as_str())
                    .unwrap_or_default()
                    .to_string(),
            ),
        }
    }

    fn check(auth: Auth, token: Option<&str>, password: Option<&str>, expected: Option<&str>) {
        let presented = Presented {
            token: token.map(String::from),
            password: password.map(String::from),
        };
        let got = verify(&auth, &presented);
        assert_eq!(
            code_of(&got).as_deref(),
            expected,
            "{auth:?} {token:?} {password:?}"
        );
    }

    #[test]
    fn verify_table() {
        check(Auth::None, None, None, None);
        check(Auth::None, Some("x"), None, None);
        check(Auth::Token("t".into()), Some("t"), None, None);
        check(
            Auth::Token("t".into()),
            Some("u"),
            None,
            Some("AUTH_TOKEN_MISMATCH"),
        );
        check(
            Auth::Token("t".into()),
            Some("tt"),
            None,
            Some("AUTH_TOKEN_MISMATCH"),
        );
        check(
            Auth::Token("t".into()),
            None,
            None,
            Some("DEVICE_IDENTITY_REQUIRED"),
        );
        check(
            Auth::Token("t".into()),
            None,
            Some("t"),
            Some("AUTH_TOKEN_MISMATCH"),
        );
        check(Auth::Password("p".into()), None, Some("p"), None);
        check(
            Auth::Password("p".into()),
            None,
            Some("q"),
            Some("AUTH_PASSWORD_MISMATCH"),
        );
    }

    #[test]
    fn mismatch_matches_capture() {
        let Verdict::Refused { refusal, counts } = verify(
            &Auth::Token("a".into()),
            &Presented {
                token: Some("b".into()),
                password: None,
            },
        ) else {
            panic!("must refuse");
        };
        assert!(counts);
        assert_eq!(refusal.close_code, 1008);
        assert_eq!(
            refusal.reason(),
            "unauthorized: gateway token mismatch (use this gateway's gateway.auth.token or pair the device)"
        );
    }

    #[test]
    fn limiter_blocks_after_max_failures_and_recovers() {
        let ip: IpAddr = "127.0.0.1".parse().expect("ip");
        let other: IpAddr = "127.0.0.2".parse().expect("ip");
        let t0 = Instant::now();
        let mut l = RateLimiter::new(3, Duration::from_secs(60));
        for i in 0..3 {
            assert_eq!(l.check(ip, t0), Ok(()), "attempt {i}");
            l.record_failure(ip, t0 + Duration::from_secs(i));
        }
        assert_eq!(
            l.check(ip, t0 + Duration::from_secs(10)),
            Err(Duration::from_secs(50))
        );
        assert_eq!(l.check(other, t0), Ok(()), "other IPs are unaffected");
        assert_eq!(l.check(ip, t0 + Duration::from_secs(61)), Ok(()));
        l.record_failure(ip, t0);
        l.reset(ip);
        assert_eq!(l.check(ip, t0), Ok(()));
    }

    #[test]
    fn weak_secrets_are_named() {
        fn check(secret: &str, weak: bool) {
            assert_eq!(weakness(secret).is_some(), weak, "{secret:?}");
        }
        check("x", true);
        check("   ", true);
        check(&" ".repeat(40), true);
        check("password12345678", true);
        check("qwertyuiopasdfgh", true);
        check("aaaaaaaaaaaaaaaaaaaaaaaa", true);
        check("0123456789abcdef0123", true);
        // The token `setup` generates: 48 random hex characters.
        check("3f9c2a7be1d04c58a6f2e9b07d1c4a3e85b2f6d9c0e7a4b1", false);
        check("correct horse battery staple", false);
        check("Vq7#mR2!xK9@pL4$", false);
        assert_eq!(
            weakness("x").as_deref(),
            Some("it has 1 characters, fewer than 16")
        );
    }

    #[test]
    fn rate_limited_message_names_ip_and_wait() {
        let r = rate_limited("10.0.0.1".parse().expect("ip"), Duration::from_millis(1500));
        assert!(r.error.message.contains("10.0.0.1"), "{}", r.error.message);
        assert!(
            r.error.message.contains("retry in 1 s"),
            "{}",
            r.error.message
        );
        assert_eq!(r.close_code, 1008);
    }
}
