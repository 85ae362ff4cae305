//! `omniclaw ports` over 1000 profiles: wall time of the whole command
//! (discovery, 1000 config reads and validations, the plan, the live port
//! check), median and p90 over repeated runs. Goal: ≤ 50 ms.
//!
//! Run with `cargo bench -p omniclaw-cli --bench ports`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const PROFILES: usize = 1000;
const RUNS: usize = 30;

fn main() {
    let home = tempfile::tempdir().expect("temp home");
    populate(home.path());
    let bin = &omniclaw_tests::bench_bin(env!("CARGO_BIN_EXE_omniclaw"));
    let run = || {
        let start = Instant::now();
        let out = Command::new(bin)
            .args(["ports", "--json"])
            .env("HOME", home.path())
            .env_remove("OMNICLAW_PROFILE")
            .env_remove("OMNICLAW_STATE_DIR")
            .env_remove("OMNICLAW_CONFIG_PATH")
            .output()
            .expect("run omniclaw");
        let took = start.elapsed();
        (took, out)
    };
    let (_, first) = run();
    let v: serde_json::Value = serde_json::from_slice(&first.stdout).expect("json output");
    let rows = v["rows"].as_array().map_or(0, Vec::len);
    assert!(
        rows >= 2 * PROFILES,
        "every profile is in the plan ({rows} rows)"
    );
    assert_eq!(v["ok"], true, "the generated profiles do not collide");
    let mut times: Vec<Duration> = (0..RUNS).map(|_| run().0).collect();
    times.sort();
    let p = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    println!(
        "ports over {PROFILES} profiles ({rows} rows): median {:.1} ms, p90 {:.1} ms, min {:.1} ms ({RUNS} runs)",
        ms(p(0.5)),
        ms(p(0.9)),
        ms(times[0])
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// 1000 set-up profiles, as `setup` leaves them: state dir, marker, config.
/// Most run without a browser (10 ports apart); every tenth has one, placed
/// clear of the rest.
fn populate(home: &Path) {
    for i in 0..PROFILES {
        let name = format!("p{i:04}");
        let dir = home.join(format!(".omniclaw-{name}"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let config = dir.join("omniclaw.json");
        let text = if i % 10 == 0 {
            let base = 40000 + (i / 10) * 120;
            format!("// profile {name}\n{{\n  gateway: {{ port: {base}, bind: 'loopback', auth: {{ mode: 'token' }} }},\n}}\n")
        } else {
            let base = 20000 + i * 10;
            format!(
                "// profile {name}\n{{\n  gateway: {{ port: {base}, bind: 'loopback', auth: {{ mode: 'token' }} }},\n  browser: {{ enabled: false }},\n}}\n"
            )
        };
        std::fs::write(&config, text).expect("config");
        let marker = serde_json::json!({"profile": name, "configPath": config});
        std::fs::write(dir.join("profile.json"), marker.to_string()).expect("marker");
    }
}
