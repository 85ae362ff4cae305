//! The `omniclaw gateway` process as a service runs it: time from spawn until
//! every surface accepts connections (p50 over repeated starts), and the
//! resident memory of an idle gateway. Goals: start p50 ≤ 20 ms (the
//! in-process bind is measured by `gateway-bench`), idle RSS ≤ 15 MB.
//!
//! Run with `cargo bench -p omniclaw-cli --bench gateway_process`.

use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const STARTS: usize = 30;

fn main() {
    let bin = &omniclaw_tests::bench_bin(env!("CARGO_BIN_EXE_omniclaw"));
    let home = tempfile::tempdir().expect("home");
    let setup = Command::new(bin)
        .args(["--profile", "bench", "setup"])
        .env("HOME", home.path())
        .output()
        .expect("setup");
    assert!(setup.status.success(), "setup failed: {setup:?}");

    let mut starts = Vec::new();
    let mut rss = Vec::new();
    for i in 0..STARTS {
        let base = omniclaw_tests::free_base();
        let t0 = Instant::now();
        let mut child = Command::new(bin)
            .args([
                "--profile",
                "bench",
                "gateway",
                "--port",
                &base.to_string(),
                "--token",
                "bench-token",
            ])
            .env("HOME", home.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let deadline = t0 + Duration::from_secs(10);
        // All three surfaces accept connections.
        for port in [base, base + 2, base + 4] {
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(Instant::now() < deadline, "surface on {port} never came up");
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        starts.push(t0.elapsed());
        if i < 3 {
            std::thread::sleep(Duration::from_secs(2));
            if let (Some(all), Some(own)) = (
                omniclaw_tests::status_kb(child.id(), "VmRSS:"),
                omniclaw_tests::status_kb(child.id(), "RssAnon:"),
            ) {
                rss.push((all, own));
            }
        }
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let _ = child.wait();
    }
    starts.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "omniclaw gateway spawn → all surfaces accepting: p50 {:.1} ms, p90 {:.1} ms, min {:.1} ms ({STARTS} starts)",
        ms(starts[STARTS / 2]),
        ms(starts[STARTS * 9 / 10]),
        ms(starts[0])
    );
    if let Some((all, own)) = rss.iter().max() {
        println!(
            "omniclaw gateway idle RSS after 2 s: {:.1} MB, of which its own memory (RssAnon) {:.1} MB and the rest pages of its binary and libraries (max of {} runs)",
            *all as f64 / 1024.0,
            *own as f64 / 1024.0,
            rss.len()
        );
    }
}
