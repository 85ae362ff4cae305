//! Time, handed in: budgets reset at local midnight and tests must not wait
//! for one.

use std::sync::atomic::{AtomicI64, Ordering};

/// Milliseconds since the Unix epoch, as every transcript timestamp is.
pub type Millis = i64;

/// Where the agent gets "now" from.
pub trait Clock: Send + Sync {
    /// Now, in milliseconds since the Unix epoch.
    fn now_ms(&self) -> Millis;
    /// The offset of local time from UTC at `at`, in seconds (east positive),
    /// so that a day starts at local midnight.
    fn utc_offset_secs(&self, at: Millis) -> i32;
}

/// The wall clock, with the local time zone's offset (so a daily cap
/// resets at local midnight, daylight saving included).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> Millis {
        chrono::Utc::now().timestamp_millis()
    }

    fn utc_offset_secs(&self, at: Millis) -> i32 {
        use chrono::{Local, Offset, TimeZone};
        match Local.timestamp_millis_opt(at) {
            chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
                t.offset().fix().local_minus_utc()
            }
            chrono::LocalResult::None => 0,
        }
    }
}

/// A clock tests move by hand; its offset is fixed.
#[derive(Debug)]
pub struct ManualClock {
    now: AtomicI64,
    offset_secs: i32,
}

impl ManualClock {
    pub fn new(now_ms: Millis, offset_secs: i32) -> ManualClock {
        ManualClock {
            now: AtomicI64::new(now_ms),
            offset_secs,
        }
    }

    pub fn set(&self, now_ms: Millis) {
        self.now.store(now_ms, Ordering::SeqCst);
    }

    pub fn advance(&self, ms: i64) {
        self.now.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> Millis {
        self.now.load(Ordering::SeqCst)
    }

    fn utc_offset_secs(&self, _at: Millis) -> i32 {
        self.offset_secs
    }
}

/// The start of the local day that contains `at`, and the start of the next
/// one (when a daily cap resets), both in epoch milliseconds.
pub fn local_day(clock: &dyn Clock, at: Millis) -> (Millis, Millis) {
    const DAY: i64 = 86_400_000;
    let offset = i64::from(clock.utc_offset_secs(at)) * 1000;
    let local = at + offset;
    let start_local = local.div_euclid(DAY) * DAY;
    let start = start_local - offset;
    // The offset may differ tomorrow (daylight saving): ask again there.
    let next_offset = i64::from(clock.utc_offset_secs(start + DAY)) * 1000;
    let next = start_local + DAY - next_offset;
    (start, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_starts_at_local_midnight() {
        // 2026-12-05T22:30:00Z in UTC+2 is 00:30 on the 6th locally.
        let at = 1_796_509_800_000;
        let clock = ManualClock::new(at, 2 * 3600);
        let (start, next) = local_day(&clock, at);
        assert_eq!(start, 1_796_508_000_000, "2026-12-05T22:00:00Z");
        assert_eq!(next - start, 86_400_000);
        assert!(start <= at && at < next);
    }

    #[test]
    fn the_system_clock_is_now_and_its_day_holds_now() {
        let clock = SystemClock;
        let now = clock.now_ms();
        assert!(now > 1_796_000_000_000, "{now}");
        let (start, next) = local_day(&clock, now);
        assert!(start <= now && now < next);
        assert!((23 * 3_600_000..=25 * 3_600_000).contains(&(next - start)));
    }

    #[test]
    fn west_of_greenwich_the_day_starts_later_in_utc() {
        let at = 1_796_509_800_000; // 22:30Z = 17:30 in UTC-5
        let clock = ManualClock::new(at, -5 * 3600);
        let (start, _) = local_day(&clock, at);
        assert_eq!(start, 1_796_446_800_000, "2026-12-05T05:00:00Z");
    }
}
