//! Shared by the integration tests and the benchmarks.

use std::time::{SystemTime, UNIX_EPOCH};

use omniclaw_agent::clock::{Clock, Millis};

/// The wall clock, in UTC (the day boundary does not matter here).
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> Millis {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as Millis)
            .unwrap_or(0)
    }

    fn utc_offset_secs(&self, _at: Millis) -> i32 {
        0
    }
}

/// A run that ended well, saying `text`.
pub fn ok_outcome(text: &str) -> omniclaw_agent::session::RunOutcome {
    omniclaw_agent::session::RunOutcome {
        status: omniclaw_agent::session::RunStatus::Ok,
        text: text.into(),
        usage: Default::default(),
        provider: None,
        model: None,
        error: None,
        started_at: 0,
        ended_at: 0,
    }
}
