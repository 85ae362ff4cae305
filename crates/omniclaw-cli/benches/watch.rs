//! The rescue watch, two measurements (`cargo bench -p omniclaw-cli
//! --bench watch -- [idle|restart] [--hours N] [--samples N | --quick]`,
//! both without a mode):
//!
//! `idle` — the watch's own cost at idle: three healthy `omniclaw gateway`
//! processes, watched by the real watcher with the real probe (identity
//! over the protocol, the port's holder, the lock, the config, the log's
//! tail), for an hour (or `--hours N`) of checks at the default interval
//! (10 s) — 360 checks of each target an hour — run back to back with an
//! injected clock that moves 10 s a check. Prints the CPU time of the watching process, what
//! it comes to as a share of one core at the real pace, the time one round
//! of three checks takes, and the RSS after each half hour (growth would
//! show there). Goal: CPU ≤ 0.1 % of a core, no RSS growth.
//!
//! `restart` — target down → restarted and healthy, with the defaults and
//! the real clock: `main` runs as a service behind a stand-in `systemctl`,
//! a real rescue gateway onboarded with `--target main` watches it (every
//! 10 s, down after 3 failed checks), main's process is killed, and the
//! bench times the kill → the restart call reaching the service manager →
//! main answering `health` → the operator's message saying "recovered"
//! (the watch's probe saw it healthy). Each sample is a fresh home, its
//! kill placed at an even share of the 10 s interval after the watch's
//! first healthy check, so the samples cover every phase. `--samples N`
//! (default 5), `--quick` (2). Goal: p50 ≤ 35 s.
//!
//! Linux only (reads `/proc/self`); run inside `scripts/session.sh` (the
//! gateway tokens live in the keychain), after `cargo build -p
//! omniclaw-cli`.

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
use omniclaw_tests::botapi::{onboard_rescue_at, BotApiDouble};
use omniclaw_tests::service::fake_systemctl;
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
    omniclaw_tests::cpu_time("self").expect("/proc/self/stat")
}

/// Resident set size in kB.
fn rss_kb() -> u64 {
    omniclaw_tests::status_kb("self", "VmRSS:").expect("VmRSS")
}

fn idle(hours: usize) {
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
            profiles: Arc::new(Vec::<Profile>::new()),
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
    let mut rounds = Vec::with_capacity(CHECKS_PER_HOUR * hours);
    // RSS at every half hour of watching.
    let mut rss_marks = Vec::new();
    for i in 0..CHECKS_PER_HOUR * hours {
        rounds.push(round(&mut watcher));
        if (i + 1) % (CHECKS_PER_HOUR / 2) == 0 {
            rss_marks.push(rss_kb());
        }
    }
    let cpu_hour = (cpu() - cpu_start) / u32::try_from(hours).unwrap_or(1);
    rounds.sort();
    let pct = |p: usize| rounds[(rounds.len() - 1) * p / 100];
    let share = cpu_hour.as_secs_f64() / 3600.0 * 100.0;
    println!(
        "watch of {} healthy gateways, {} checks each ({hours} h at {} s):",
        TARGETS.len(),
        CHECKS_PER_HOUR * hours,
        INTERVAL_MS / 1000
    );
    println!(
        "  CPU {:.2} s an hour = {:.4} % of one core at the real pace (goal ≤ {GOAL_CPU_PERCENT} %)",
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
    let marks: Vec<String> = rss_marks.iter().map(|kb| format!("{kb}")).collect();
    println!(
        "  RSS after warm-up {rss_start} kB, then every 30 min: {} kB",
        marks.join(" / ")
    );
    if share > GOAL_CPU_PERCENT {
        println!("  goal NOT met: CPU share {share:.4} %");
    }
    drop(gateways);
}

const RESCUE_TOKEN: &str = "987654321:AAHwatch-bench-token_abcdefghijklmn";
const OPERATOR: i64 = 4545;
const RESTART_GOAL: Duration = Duration::from_secs(35);
const PATIENCE: Duration = Duration::from_secs(120);

/// Polls `ready` every 100 ms until it holds; the time it took.
fn until(what: &str, start: Instant, mut ready: impl FnMut() -> bool) -> Duration {
    while !ready() {
        assert!(start.elapsed() < PATIENCE, "no {what} after {PATIENCE:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    start.elapsed()
}

/// One kill → recovered, `phase` into the watch's interval after its first
/// healthy check. Returns (restart called, main healthy, operator told
/// "recovered"), each from the kill.
fn one_restart(phase: Duration) -> (Duration, Duration, Duration) {
    let api = BotApiDouble::start();
    api.add_bot(RESCUE_TOKEN, "watch_bench_bot");
    let home = Home::new();
    let main_port = home.setup_on_free_port("main");
    let rescue_port = loop {
        let p = free_base();
        if p.abs_diff(main_port) > 300 {
            break p;
        }
    };
    let op = OPERATOR.to_string();
    onboard_rescue_at(
        &home,
        &api,
        RESCUE_TOKEN,
        rescue_port,
        false,
        &["--allow-from", &op, "--target", "main"],
    );
    let fakebin = home.path().join("fakebin");
    std::fs::create_dir_all(&fakebin).expect("mkdir");
    fake_systemctl(&fakebin);
    let env = [
        (
            "PATH".to_string(),
            format!("{}:/usr/bin:/bin", fakebin.display()),
        ),
        ("USER".to_string(), "bench".to_string()),
        (
            "OMNICLAW_SERVICE_MANAGER".to_string(),
            "systemd".to_string(),
        ),
    ];
    let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    home.run_env(&["--profile", "main", "gateway", "install"], &env_ref)
        .expect_code(0);
    let healthy = || home.run(&["--profile", "main", "health"]).code == 0;
    until("healthy main", Instant::now(), healthy);
    let mut cmd = home.cmd();
    cmd.args(["--profile", "rescue", "gateway"]);
    for (k, v) in &env {
        cmd.env(k, v);
    }
    let rescue = GatewayProc::spawn(cmd).expect("the rescue starts");
    let watched = || {
        home.run(&["status"])
            .stdout
            .lines()
            .any(|l| l.contains("watch: main — healthy"))
    };
    until("healthy main in the watch", Instant::now(), watched);
    std::thread::sleep(phase);

    let pid_file = fakebin.join("main.pid");
    let pid = std::fs::read_to_string(&pid_file).expect("main's pid");
    let calls = || std::fs::read_to_string(fakebin.join("calls.log")).unwrap_or_default();
    let restarts_before = calls().matches("restart").count();
    std::process::Command::new("kill")
        .args(["-9", pid.trim()])
        .status()
        .expect("kill");
    let killed = Instant::now();
    let restarted = until("restart through the service manager", killed, || {
        calls().matches("restart").count() > restarts_before
    });
    let up = until("main healthy again", killed, healthy);
    let told = until("\"recovered\" told", killed, || {
        api.sent_to(OPERATOR).iter().any(|m| {
            api.text_now(m.message_id)
                .is_some_and(|t| t.contains("recovered"))
        })
    });
    drop(rescue);
    if let Ok(pid) = std::fs::read_to_string(&pid_file) {
        let _ = std::process::Command::new("kill").arg(pid.trim()).status();
    }
    (restarted, up, told)
}

fn restart(samples: usize) {
    let interval = Duration::from_millis(INTERVAL_MS);
    let mut runs = Vec::with_capacity(samples);
    for i in 0..samples {
        let phase = interval * u32::try_from(i).expect("samples")
            / u32::try_from(samples).expect("samples");
        let (restarted, up, told) = one_restart(phase);
        println!(
            "  sample {}: killed {:.1} s after a healthy check → restart called {:.1} s, main healthy {:.1} s, \"recovered\" told {:.1} s",
            i + 1,
            phase.as_secs_f64(),
            restarted.as_secs_f64(),
            up.as_secs_f64(),
            told.as_secs_f64()
        );
        runs.push((restarted, up, told));
    }
    let median = |pick: fn(&(Duration, Duration, Duration)) -> Duration| {
        let mut v: Vec<Duration> = runs.iter().map(pick).collect();
        v.sort();
        (v[(v.len() - 1) / 2], v[0], v[v.len() - 1])
    };
    println!(
        "target down → restarted and healthy, defaults (10 s, down after 3), {samples} samples:"
    );
    for (what, (p50, min, max)) in [
        ("restart called", median(|r| r.0)),
        ("main healthy", median(|r| r.1)),
        (
            "recovered told (the watch's probe saw it healthy)",
            median(|r| r.2),
        ),
    ] {
        println!(
            "  {what}: p50 {:.1} s, min {:.1} s, max {:.1} s",
            p50.as_secs_f64(),
            min.as_secs_f64(),
            max.as_secs_f64()
        );
    }
    let (p50, _, _) = median(|r| r.2);
    if p50 > RESTART_GOAL {
        println!(
            "  goal NOT met: p50 {:.1} s > {RESTART_GOAL:?}",
            p50.as_secs_f64()
        );
    }
}

fn main() {
    // `cargo bench` adds `--bench`.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let mut samples = 5;
    let mut hours = 1;
    let mut modes: Vec<&str> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "idle" | "restart" => modes.push(a.as_str()),
            "--quick" => samples = 2,
            "--hours" => {
                hours = it
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|n| *n > 0)
                    .unwrap_or_else(|| panic!("--hours takes a count of 1 or more"));
            }
            "--samples" => {
                samples = it
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|n| *n > 0)
                    .unwrap_or_else(|| panic!("--samples takes a count of 1 or more"));
            }
            other => {
                panic!("unknown argument {other:?}: idle, restart, --hours N, --samples N, --quick")
            }
        }
    }
    if modes.is_empty() {
        modes = vec!["idle", "restart"];
    }
    for mode in modes {
        match mode {
            "idle" => idle(hours),
            _ => restart(samples),
        }
    }
}
