//! Authentication: constant-time secret comparison, the strength a secret
//! needs on a network bind, and the slow-down of wrong answers per client.
//! The clock is passed in, so all of it is pure.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
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

/// Who failed authentications are counted against. All of loopback is one
/// client: the CLI, the desktop app, the rescue bot and any local process
/// share it, so a limit per loopback address would let 127.0.0.2, .3, …
/// each start afresh. An IPv4 address is one client (a NAT'd network shares
/// it), and an IPv6 client is its /64 (one host's many addresses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Client {
    Loopback,
    V4(Ipv4Addr),
    V6Net(u64),
}

impl Client {
    pub fn of(ip: IpAddr) -> Client {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match ip {
            ip if ip.is_loopback() => Client::Loopback,
            IpAddr::V4(v4) => Client::V4(v4),
            IpAddr::V6(v6) => Client::V6Net((v6.to_bits() >> 64) as u64),
        }
    }
}

impl fmt::Display for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Client::Loopback => f.write_str("loopback"),
            Client::V4(ip) => write!(f, "{ip}"),
            Client::V6Net(net) => {
                let prefix = Ipv6Addr::from_bits(u128::from(*net) << 64);
                write!(f, "{prefix}/64")
            }
        }
    }
}

/// What a failed authentication costs its client, and whether to log it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// How long the wrong answer waits before it is sent.
    pub delay: Duration,
    /// Failures of this client within the window, this one included.
    pub recent: usize,
    /// `Some(n)`: log this failure, with the `n` failures not logged since
    /// the client's last line; `None`: stay quiet (at most one line per
    /// client every [`LOG_EVERY`]).
    pub log: Option<u32>,
}

/// At most one log line per client this often; the ones between are counted.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// Failed authentications per [`Client`] in a sliding window. Wrong answers
/// are slowed down, never refused unchecked: a caller who then presents the
/// right credentials is let in at once, so a web page or a local process
/// sending wrong tokens cannot lock the CLI, the desktop app or the rescue
/// bot out. Within the window the first `free` failures answer at once;
/// each one after waits `step` doubled per failure beyond, up to
/// `max_delay`.
#[derive(Debug)]
pub struct Limiter {
    free: usize,
    window: Duration,
    step: Duration,
    max_delay: Duration,
    clients: HashMap<Client, Record>,
}

#[derive(Debug, Default)]
struct Record {
    failures: VecDeque<Instant>,
    logged: Option<Instant>,
    quiet: u32,
}

/// The limiter behind `m`: a panic while it was held leaves plain data
/// behind, so it is used on.
pub(crate) fn lock(m: &std::sync::Mutex<Limiter>) -> std::sync::MutexGuard<'_, Limiter> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Logs a failed authentication on `surface` when `failure` says to: who
/// (the client, never the secret tried), with what kind of secret, how
/// often lately, and how many failures went unlogged since the last line.
pub(crate) fn log_failure(surface: &str, client: Client, mode: &str, failure: &Failure) {
    if let Some(unlogged) = failure.log {
        tracing::warn!(
            surface,
            client = %client,
            failures_in_window = failure.recent,
            unlogged_since_last_line = unlogged,
            answer_delay_ms = u64::try_from(failure.delay.as_millis()).unwrap_or(u64::MAX),
            "authentication failed: wrong {mode}"
        );
    }
}

/// Beyond this many tracked clients, stale entries are swept on the next failure.
const SWEEP_AT: usize = 4096;

impl Limiter {
    pub fn new(free: u32, window: Duration, max_delay: Duration) -> Limiter {
        Limiter {
            free: free as usize,
            window,
            step: Duration::from_millis(250),
            max_delay,
            clients: HashMap::new(),
        }
    }

    /// Records a failed authentication of `client` at `now`.
    pub fn fail(&mut self, client: Client, now: Instant) -> Failure {
        let window = self.window;
        if self.clients.len() >= SWEEP_AT {
            self.clients.retain(|_, r| {
                r.failures
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < window)
            });
        }
        let r = self.clients.entry(client).or_default();
        while r
            .failures
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            r.failures.pop_front();
        }
        r.failures.push_back(now);
        let recent = r.failures.len();
        let delay = match recent.checked_sub(self.free + 1) {
            None => Duration::ZERO,
            Some(beyond) => {
                let factor = 1u32 << beyond.min(16);
                self.step.saturating_mul(factor).min(self.max_delay)
            }
        };
        let log = match r.logged {
            Some(t) if now.duration_since(t) < LOG_EVERY => {
                r.quiet = r.quiet.saturating_add(1);
                None
            }
            _ => {
                r.logged = Some(now);
                Some(std::mem::take(&mut r.quiet))
            }
        };
        Failure { delay, recent, log }
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
    fn loopback_is_one_client_and_ipv6_hosts_their_64() {
        fn check(ip: &str, expected: Client) {
            assert_eq!(Client::of(ip.parse().expect("ip")), expected, "{ip}");
        }
        check("127.0.0.1", Client::Loopback);
        check("127.0.0.2", Client::Loopback);
        check("127.255.0.9", Client::Loopback);
        check("::1", Client::Loopback);
        check("::ffff:127.0.0.3", Client::Loopback);
        check("10.0.0.7", Client::V4("10.0.0.7".parse().expect("ip")));
        check(
            "::ffff:10.0.0.7",
            Client::V4("10.0.0.7".parse().expect("ip")),
        );
        check("2001:db8:1:2::5", Client::V6Net(0x2001_0db8_0001_0002));
        check("2001:db8:1:2:aaaa::9", Client::V6Net(0x2001_0db8_0001_0002));
        assert_eq!(
            Client::V6Net(0x2001_0db8_0001_0002).to_string(),
            "2001:db8:1:2::/64"
        );
        assert_eq!(Client::Loopback.to_string(), "loopback");
    }

    #[test]
    fn wrong_answers_slow_down_after_the_free_ones_and_recover() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut l = Limiter::new(3, Duration::from_secs(60), Duration::from_secs(5));
        let delays: Vec<u128> = (0..9)
            .map(|_| l.fail(Client::Loopback, t0).delay.as_millis())
            .collect();
        assert_eq!(delays, [0, 0, 0, 250, 500, 1000, 2000, 4000, 5000]);
        // Another client is not slowed by this one's failures.
        let other = Client::V4("10.0.0.1".parse().expect("ip"));
        assert_eq!(l.fail(other, t0).delay, Duration::ZERO);
        // Once the window has passed, the first failures are free again.
        assert_eq!(l.fail(Client::Loopback, at(61)).delay, Duration::ZERO);
        assert_eq!(l.fail(Client::Loopback, at(61)).recent, 2);
    }

    #[test]
    fn failures_are_logged_at_most_once_per_client_every_ten_seconds() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut l = Limiter::new(10, Duration::from_secs(60), Duration::from_secs(5));
        let logs: Vec<Option<u32>> = [0, 100, 200, 9_999, 10_000, 10_001, 25_000]
            .into_iter()
            .map(|t| l.fail(Client::Loopback, ms(t)).log)
            .collect();
        assert_eq!(logs, [Some(0), None, None, None, Some(3), None, Some(1)]);
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
}
