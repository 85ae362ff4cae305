//! What calls cost and whether the next one may happen.
//!
//! Token counts are priced with the model's `cost` (USD per million
//! tokens). Before every provider call, tool rounds included, today's spend
//! (since local midnight, from the store) is held against `budget.dailyUsd`
//! and `budget.perProvider.<id>.dailyUsd`; a call past a cap is refused
//! with the cap, what was spent and when it resets.

use omniclaw_core::config::{Budget, ModelCost};

use crate::clock::{local_day, Clock, Millis};
use crate::message::{Cost, Usage};
use crate::provider::TokenCounts;
use crate::session::{SessionStore, StoreError};

/// Prices one call's tokens; no `cost` prices them at zero.
pub fn price(tokens: TokenCounts, cost: Option<&ModelCost>) -> Usage {
    let per = |n: u64, usd: f64| n as f64 * usd / 1_000_000.0;
    let c = cost.copied().unwrap_or_default();
    let cost = Cost {
        input: per(tokens.input, c.input),
        output: per(tokens.output, c.output),
        cache_read: per(tokens.cache_read, c.cache_read),
        cache_write: per(tokens.cache_write, c.cache_write),
        total: 0.0,
    };
    Usage {
        input: tokens.input,
        output: tokens.output,
        cache_read: tokens.cache_read,
        cache_write: tokens.cache_write,
        total_tokens: tokens.input + tokens.output + tokens.cache_read + tokens.cache_write,
        cost: Cost {
            total: cost.input + cost.output + cost.cache_read + cost.cache_write,
            ..cost
        },
    }
}

/// Why a call may not happen.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BudgetError {
    #[error("the daily budget is spent: {cap} is ${limit:.2} and ${spent:.2} was spent today; it resets at local midnight ({resets}). Raise {cap} to go on today")]
    Exceeded {
        /// The config key of the cap (`budget.dailyUsd`,
        /// `budget.perProvider.openai.dailyUsd`).
        cap: String,
        limit: f64,
        spent: f64,
        /// When the cap resets, epoch ms (local midnight).
        resets_at: Millis,
        /// `2026-12-06 00:00 (UTC+02:00)`.
        resets: String,
    },
    #[error("today's spend cannot be read, so no model is called: {0}")]
    Store(String),
}

impl BudgetError {
    /// Whether only this provider is capped (another may still be called).
    pub fn is_per_provider(&self) -> bool {
        matches!(self, BudgetError::Exceeded { cap, .. } if cap.starts_with("budget.perProvider."))
    }
}

/// Checks today's spend against the caps before a call to `provider`.
/// Without caps it reads nothing.
pub fn check(
    budget: &Budget,
    provider: &str,
    store: &dyn SessionStore,
    clock: &dyn Clock,
) -> Result<(), BudgetError> {
    let provider_cap = budget.per_provider.get(provider).copied();
    if budget.daily_usd.is_none() && provider_cap.is_none() {
        return Ok(());
    }
    let now = clock.now_ms();
    let (start, next) = local_day(clock, now);
    let spend = store
        .spend_since(start)
        .map_err(|e: StoreError| BudgetError::Store(e.to_string()))?;
    let exceeded = |cap: String, limit: f64, spent: f64| BudgetError::Exceeded {
        cap,
        limit,
        spent,
        resets_at: next,
        resets: local_time(clock, next),
    };
    if let Some(limit) = budget.daily_usd {
        if spend.usd >= limit {
            return Err(exceeded("budget.dailyUsd".into(), limit, spend.usd));
        }
    }
    if let Some(limit) = provider_cap {
        let spent = spend.by_provider.get(provider).copied().unwrap_or(0.0);
        if spent >= limit {
            return Err(exceeded(
                format!("budget.perProvider.{provider}.dailyUsd"),
                limit,
                spent,
            ));
        }
    }
    Ok(())
}

/// `YYYY-MM-DD HH:MM (UTC±HH:MM)` of `at` in the clock's local time.
pub fn local_time(clock: &dyn Clock, at: Millis) -> String {
    let offset = clock.utc_offset_secs(at);
    let local = at.div_euclid(1000) + i64::from(offset);
    let days = local.div_euclid(86_400);
    let secs = local.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let sign = if offset < 0 { '-' } else { '+' };
    let off = offset.unsigned_abs();
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} (UTC{sign}{:02}:{:02})",
        secs / 3600,
        secs % 3600 / 60,
        off / 3600,
        off % 3600 / 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn tokens_are_priced_per_million() {
        let cost = ModelCost {
            input: 2.5,
            output: 10.0,
            cache_read: 1.25,
            cache_write: 0.0,
        };
        let usage = price(
            TokenCounts {
                input: 1_000_000,
                output: 200_000,
                cache_read: 400_000,
                cache_write: 7,
            },
            Some(&cost),
        );
        assert_eq!(usage.total_tokens, 1_600_007);
        assert!((usage.cost.input - 2.5).abs() < 1e-9);
        assert!((usage.cost.output - 2.0).abs() < 1e-9);
        assert!((usage.cost.cache_read - 0.5).abs() < 1e-9);
        assert!((usage.cost.total - 5.0).abs() < 1e-9);
        let free = price(
            TokenCounts {
                input: 5,
                output: 5,
                ..Default::default()
            },
            None,
        );
        assert_eq!(free.cost.total, 0.0);
        assert_eq!(free.total_tokens, 10);
    }

    #[test]
    fn local_times_are_shown_with_their_offset() {
        // 2026-12-05T22:00:00Z.
        let at = 1_796_508_000_000;
        assert_eq!(
            local_time(&ManualClock::new(at, 2 * 3600), at),
            "2026-12-06 00:00 (UTC+02:00)"
        );
        assert_eq!(
            local_time(&ManualClock::new(at, -(5 * 3600 + 30 * 60)), at),
            "2026-12-05 16:30 (UTC-05:30)"
        );
        assert_eq!(
            local_time(&ManualClock::new(0, 0), 0),
            "1970-01-01 00:00 (UTC+00:00)"
        );
        // A leap day.
        assert_eq!(
            local_time(&ManualClock::new(0, 0), 1_709_164_800_000),
            "2024-02-29 00:00 (UTC+00:00)"
        );
    }
}
