//! The rescue watch's own cost at idle: three healthy `omniclaw gateway`
//! processes, watched by the real watcher with the real probe (identity
//! over the protocol, the port's holder, the lock, the config, the log's
//! tail), for an hour of checks at the default interval (10 s) — 360
//! checks of each target — run back to back with an injected clock that
//! moves 10 s a check. Prints the CPU time of the watching process, what
//! it comes to as a share of one core at the real pace, the time one round
//! of three checks takes, and the RSS after each half hour (growth would
//! show there). Goal: CPU ≤ 0.1 % of a core, no RSS growth.
//!
//! Linux only (reads `/proc/self`); run inside `scripts/session.sh` (the
//! gateway tokens live in the keychain), after `cargo build -p
//! omniclaw-cli`: `cargo bench -p omniclaw-cli --bench watch`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use omniclaw_channels::telegram::heal::{Clock, Parts, Repairs, Sent, Tell, Watcher};
use omniclaw_core::config::WatchSettings;
use omniclaw_core::env::EnvSnapshot;
use omniclaw_core::heal::Owner;
use omniclaw_core::profile::Profile;
use omniclaw_gateway::heal::TargetProber;
use omniclaw_os::secrets::{Routed, SecretStore};
use omniclaw_tests::{free_base, GatewayProc, Home};

const TARGETS: [&str; 3] = ["main", "work", "lab"];
const INTERVAL_MS: u64 = 10_000;
const CHECKS_PER_HOUR: usize = 360;
const GOAL_CPU_PERCENT: f64 = 0.1;

/// Moves 10 s at each round.
struct Accelerated(AtomicU64);

impl Clock for Accelerated {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Nothing must be repaired or told at idle: either would be a failure.
struct Idle;

#[async_trait]
impl Repairs for Idle {
    async fn restart(&self, target: &Profile, _owner: Owner) -> Result<String, String> {
        panic!("{target} was restarted while healthy")
    }
    async fn rollback(&self, target: &Profile) -> Result<String, String> {
        panic!("{target} was rolled back while healthy")
    }
}

#[async_trait]
impl Tell for Idle {
    async fn send(&self, text: &str) -> Sent {
        panic!("an idle watch told the operators: {text}")
    }
    async fn edit(&self, _sent: &Sent, text: &str) {
        panic!("an idle watch edited a message: {text}")
    }
}

/// User + system CPU time of this process.
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the command name, which is in parentheses.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    // The kernel's USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
}

/// Resident set size in kB.
fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .expect("/proc/self/status")
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

fn main() {
    let home = Home::new();
    let mut bases: Vec<u16> = Vec::new();
    for name in TARGETS {
        // Each profile's browser CDP range spans 100 ports above its base.
        let port = loop {
            let p = free_base();
            if bases.iter().all(|b| b.abs_diff(p) > 300) {
                break p;
            }
        };
        bases.push(port);
        home.run(&["--profile", name, "setup", "--port", &port.to_string()])
            .expect_code(0);
    }
    let gateways: Vec<GatewayProc> = TARGETS
        .iter()
        .map(|name| GatewayProc::start(&home, &["--profile", name, "gateway"]))
        .collect();

    let state = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(Accelerated(AtomicU64::new(1_000_000)));
    let env = EnvSnapshot::from_vars(
        std::env::vars()
            .filter(|(k, _)| !k.starts_with("OMNICLAW_"))
            .chain([("HOME".to_string(), home.path().display().to_string())]),
    );
    let store: Arc<dyn SecretStore> = Arc::new(Routed::system(false));
    let targets: Vec<Profile> = TARGETS
        .iter()
        .map(|t| Profile::parse(t).expect("profile"))
        .collect();
    let settings = WatchSettings {
        enabled: true,
        ..WatchSettings::default()
    };
    let mut watcher = Watcher::new(
        state.path(),
        settings,
        &targets,
        Parts {
            clock: clock.clone(),
            prober: Arc::new(TargetProber::new(env, store)),
            repairs: Arc::new(Idle),
            tell: Arc::new(Idle),
        },
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");

    let round = |watcher: &mut Watcher| {
        let start = Instant::now();
        runtime.block_on(watcher.tick());
        clock.0.fetch_add(INTERVAL_MS, Ordering::SeqCst);
        start.elapsed()
    };
    // Warm up: the first checks open the keychain and read every file.
    for _ in 0..6 {
        round(&mut watcher);
    }
    let summary = watcher.summary();
    assert!(
        summary.lines().skip(1).all(|l| l.ends_with("— healthy")),
        "{summary}"
    );
    let rss_start = rss_kb();
    let cpu_start = cpu();
    let mut rounds = Vec::with_capacity(CHECKS_PER_HOUR);
    let mut rss_half = 0;
    for i in 0..CHECKS_PER_HOUR {
        rounds.push(round(&mut watcher));
        if i + 1 == CHECKS_PER_HOUR / 2 {
            rss_half = rss_kb();
        }
    }
    let cpu_hour = cpu() - cpu_start;
    let rss_end = rss_kb();
    rounds.sort();
    let pct = |p: usize| rounds[(rounds.len() - 1) * p / 100];
    let share = cpu_hour.as_secs_f64() / 3600.0 * 100.0;
    println!(
        "watch of {} healthy gateways, {} checks each (an hour at {} s):",
        TARGETS.len(),
        CHECKS_PER_HOUR,
        INTERVAL_MS / 1000
    );
    println!(
        "  CPU {:.2} s for the hour = {:.4} % of one core at the real pace (goal ≤ {GOAL_CPU_PERCENT} %)",
        cpu_hour.as_secs_f64(),
        share
    );
    println!(
        "  one round of {} checks: p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms",
        TARGETS.len(),
        pct(50).as_secs_f64() * 1000.0,
        pct(90).as_secs_f64() * 1000.0,
        rounds[rounds.len() - 1].as_secs_f64() * 1000.0
    );
    println!(
        "  RSS after warm-up {rss_start} kB, after 30 min {rss_half} kB, after 60 min {rss_end} kB"
    );
    if share > GOAL_CPU_PERCENT {
        println!("  goal NOT met: CPU share {share:.4} %");
    }
    drop(gateways);
}
