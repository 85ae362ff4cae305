//! The model chain and provider cooldowns.
//!
//! A run tries `agents.defaults.model.primary`, then each fallback. A
//! provider that failed in a way that falls over cools down: for a 429 as
//! long as its `retry-after` says, otherwise 30 s, doubling with each
//! further failure up to 10 min; a success resets it. A cooling provider's
//! models are skipped (and the run says so) unless every model of the chain
//! is cooling: then they are all tried, soonest-ready first, rather than
//! refusing the user.

use std::collections::HashMap;
use std::sync::Mutex;

use omniclaw_core::config::ModelRef;

use crate::clock::Millis;
use crate::provider::ProviderError;

/// The first cooldown after a failure without `retry-after`.
pub const FIRST_COOLDOWN_MS: i64 = 30_000;
/// The longest cooldown.
pub const MAX_COOLDOWN_MS: i64 = 600_000;

/// Cooldowns by provider id, shared by every run of an agent.
#[derive(Debug, Default)]
pub struct Cooldowns {
    by_provider: Mutex<HashMap<String, Cooldown>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cooldown {
    until: Millis,
    /// Failures in a row.
    failures: u32,
}

/// One entry of the order a run tries models in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub model: ModelRef,
    /// Set when the provider is cooling down: until when (epoch ms).
    pub cooling_until: Option<Millis>,
}

impl Cooldowns {
    /// The order to try `chain` in at `now`: ready models in chain order,
    /// each cooling one after them as skipped (`cooling_until` set) — or,
    /// when every one is cooling, all of them to try, soonest-ready first.
    pub fn order(&self, chain: &[ModelRef], now: Millis) -> Vec<Candidate> {
        let cooling = |m: &ModelRef| {
            self.lock()
                .get(&m.provider)
                .map(|c| c.until)
                .filter(|until| *until > now)
        };
        let mut candidates: Vec<Candidate> = chain
            .iter()
            .map(|m| Candidate {
                cooling_until: cooling(m),
                model: m.clone(),
            })
            .collect();
        if candidates.iter().all(|c| c.cooling_until.is_some()) {
            candidates.sort_by_key(|c| c.cooling_until);
            for c in &mut candidates {
                c.cooling_until = None;
            }
        }
        candidates
    }

    /// Records a failure of `provider`; returns until when it cools down.
    pub fn failed(&self, provider: &str, error: &ProviderError, now: Millis) -> Millis {
        let mut map = self.lock();
        let entry = map.entry(provider.to_string()).or_insert(Cooldown {
            until: now,
            failures: 0,
        });
        let wait = match error {
            ProviderError::RateLimited {
                retry_after: Some(after),
                ..
            } => i64::try_from(after.as_millis()).unwrap_or(MAX_COOLDOWN_MS),
            _ => FIRST_COOLDOWN_MS
                .saturating_mul(1 << entry.failures.min(8))
                .min(MAX_COOLDOWN_MS),
        };
        entry.failures = entry.failures.saturating_add(1);
        entry.until = now + wait;
        entry.until
    }

    /// A call to `provider` succeeded: it is ready again, its schedule reset.
    pub fn succeeded(&self, provider: &str) {
        self.lock().remove(provider);
    }

    /// Until when `provider` cools down, if it does at `now`.
    pub fn cooling_until(&self, provider: &str, now: Millis) -> Option<Millis> {
        self.lock()
            .get(provider)
            .map(|c| c.until)
            .filter(|u| *u > now)
    }

    /// A poisoned lock only means a run panicked holding it; the map is
    /// still whole.
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cooldown>> {
        self.by_provider.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn m(text: &str) -> ModelRef {
        ModelRef::parse(text).expect("ref")
    }

    fn server(provider: &str) -> ProviderError {
        ProviderError::Server {
            provider: provider.into(),
            status: 500,
            message: "x".into(),
        }
    }

    #[test]
    fn the_schedule_doubles_to_ten_minutes_and_resets_on_success() {
        let c = Cooldowns::default();
        let waits: Vec<i64> = (0..8).map(|_| c.failed("a", &server("a"), 0)).collect();
        assert_eq!(
            waits,
            [30_000, 60_000, 120_000, 240_000, 480_000, 600_000, 600_000, 600_000]
        );
        c.succeeded("a");
        assert_eq!(c.failed("a", &server("a"), 1_000), 31_000);
    }

    #[test]
    fn a_429_cools_for_its_retry_after() {
        let c = Cooldowns::default();
        let limited = ProviderError::RateLimited {
            provider: "a".into(),
            retry_after: Some(Duration::from_secs(7)),
            message: "slow down".into(),
        };
        assert_eq!(c.failed("a", &limited, 1_000), 8_000);
        assert_eq!(c.cooling_until("a", 7_999), Some(8_000));
        assert_eq!(c.cooling_until("a", 8_000), None);
    }

    #[test]
    fn cooling_models_are_skipped_unless_all_are() {
        let c = Cooldowns::default();
        let chain = [m("a/1"), m("b/2"), m("a/3"), m("c/4")];
        c.failed("a", &server("a"), 0);
        let order = c.order(&chain, 10);
        let cooling: Vec<(String, bool)> = order
            .iter()
            .map(|x| (x.model.to_string(), x.cooling_until.is_some()))
            .collect();
        assert_eq!(
            cooling,
            [
                ("a/1".into(), true),
                ("b/2".into(), false),
                ("a/3".into(), true),
                ("c/4".into(), false)
            ]
        );
        c.failed("b", &server("b"), 5);
        c.failed("c", &server("c"), 1);
        // Every one cools: all are tried, the soonest ready first.
        let all: Vec<String> = c
            .order(&chain, 10)
            .iter()
            .map(|x| x.model.to_string())
            .collect();
        assert_eq!(all, ["a/1", "a/3", "c/4", "b/2"]);
        assert!(c
            .order(&chain, 10)
            .iter()
            .all(|x| x.cooling_until.is_none()));
        // Past the cooldown, back in chain order.
        let later: Vec<String> = c
            .order(&chain, 60_000)
            .iter()
            .map(|x| x.model.to_string())
            .collect();
        assert_eq!(later, ["a/1", "b/2", "a/3", "c/4"]);
    }
}
