//! What the one config edit path costs `config set`: the whole command's
//! wall time, and the part of it the checks take (the plan of every other
//! profile, new conflicts, held ports), over homes of 2 and 100 profiles.
//! An edit that moves no port reads no socket table; one that moves the
//! base port does.
//!
//! Run with `cargo bench -p omniclaw-cli --bench config_set`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const RUNS: usize = 40;

fn main() {
    for profiles in [2, 100] {
        let home = tempfile::tempdir().expect("temp home");
        populate(home.path(), profiles);
        let bin = &omniclaw_tests::bench_bin(env!("CARGO_BIN_EXE_omniclaw"));
        let set = |key: &str, value: &str| {
            let start = Instant::now();
            let out = Command::new(bin)
                .args(["--profile", "p0000", "config", "set", key, value])
                .env("HOME", home.path())
                .env_remove("OMNICLAW_PROFILE")
                .env_remove("OMNICLAW_STATE_DIR")
                .env_remove("OMNICLAW_CONFIG_PATH")
                .output()
                .expect("run omniclaw");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            start.elapsed()
        };
        let level: Vec<Duration> = (0..RUNS)
            .map(|i| {
                set(
                    "logging.level",
                    if i % 2 == 0 { "\"debug\"" } else { "\"info\"" },
                )
            })
            .collect();
        let port: Vec<Duration> = (0..RUNS)
            .map(|i| set("gateway.port", if i % 2 == 0 { "61000" } else { "61200" }))
            .collect();
        let validate: Vec<Duration> = (0..RUNS)
            .map(|_| {
                let start = Instant::now();
                let out = Command::new(bin)
                    .args(["--profile", "p0000", "config", "validate"])
                    .env("HOME", home.path())
                    .output()
                    .expect("run omniclaw");
                assert!(out.status.success());
                start.elapsed()
            })
            .collect();
        println!(
            "{profiles} profiles: config set logging.level median {:.1} ms (p90 {:.1}); config set gateway.port median {:.1} ms (p90 {:.1}); config validate (no plan, no write) median {:.1} ms",
            ms(median(&level)),
            ms(p90(&level)),
            ms(median(&port)),
            ms(p90(&port)),
            ms(median(&validate)),
        );
    }
}

fn sorted(v: &[Duration]) -> Vec<Duration> {
    let mut v = v.to_vec();
    v.sort();
    v
}

fn median(v: &[Duration]) -> Duration {
    sorted(v)[v.len() / 2]
}

fn p90(v: &[Duration]) -> Duration {
    let s = sorted(v);
    s[(s.len() - 1) * 9 / 10]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `n` set-up profiles, 200 ports apart, none colliding.
fn populate(home: &Path, n: usize) {
    for i in 0..n {
        let name = format!("p{i:04}");
        let dir = home.join(format!(".omniclaw-{name}"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let config = dir.join("omniclaw.json");
        let base = 20000 + i * 200;
        std::fs::write(
            &config,
            format!("{{\n  gateway: {{ port: {base}, auth: {{ mode: 'none' }} }},\n}}\n"),
        )
        .expect("config");
        let marker = serde_json::json!({"profile": name, "configPath": config});
        std::fs::write(dir.join("profile.json"), marker.to_string()).expect("marker");
    }
}
