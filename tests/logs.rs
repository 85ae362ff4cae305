//! Per-profile gateway logs: JSON lines in `<state dir>/logs/`, read by
//! `logs` whether or not the gateway runs, `--lines`, `--json`, `--follow`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use omniclaw_tests::Home;

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Spawns `omniclaw ARGS` and streams its stdout lines into a channel.
fn spawn_lines(home: &Home, args: &[&str]) -> (Proc, mpsc::Receiver<String>) {
    let mut cmd = home.cmd();
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (Proc(child), rx)
}

fn wait_line(rx: &mpsc::Receiver<String>, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(l) if l.contains(what) => return l,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    panic!("no line with {what:?}");
}

#[test]
fn gateway_logs_are_json_lines_that_logs_shows_tails_and_follows() {
    let home = Home::new();
    home.setup_on_free_port("main");
    home.run(&["--profile", "main", "logs"])
        .expect_code(0)
        .expect_output("no log lines yet");

    let (_gw, gw_out) = spawn_lines(&home, &["--profile", "main", "gateway"]);
    wait_line(&gw_out, "Press Ctrl+C to stop.");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut lines = Vec::new();
    while lines.is_empty() && Instant::now() < deadline {
        let r = home.run(&["--profile", "main", "logs", "--json"]);
        lines = r.stdout.lines().map(str::to_string).collect();
        std::thread::sleep(Duration::from_millis(100));
    }
    let first: serde_json::Value = serde_json::from_str(&lines[0]).expect("a JSON line");
    assert_eq!(first["level"], "INFO");
    assert_eq!(first["message"], "gateway serving");
    assert_eq!(first["profile"], "main");
    let files: Vec<String> = std::fs::read_dir(home.path().join(".omniclaw-main/logs"))
        .expect("logs dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        files
            .iter()
            .all(|f| f.starts_with("gateway.") && f.ends_with(".log")),
        "{files:?}"
    );

    // --follow prints what the gateway logs after it started.
    let (_follow, follow_out) = spawn_lines(
        &home,
        &["--profile", "main", "logs", "--follow", "--lines", "1"],
    );
    wait_line(&follow_out, "gateway serving");
    home.config_set("main", "logging.level", "\"debug\"")
        .expect_code(0);
    let applied = wait_line(&follow_out, "config applied in place");
    assert!(applied.contains("logging.level (hot)"), "{applied}");

    let one = home.run(&["--profile", "main", "logs", "--lines", "1"]);
    one.expect_code(0);
    assert_eq!(one.stdout.lines().count(), 1, "{}", one.stdout);
}

/// The log tells starts, stops and restarts apart (INFO), and a gateway
/// started in a conflict with another instance says so there (WARN), not
/// only on a terminal a service does not have.
#[test]
fn the_log_records_stops_restarts_and_a_start_in_a_conflict() {
    let home = Home::new();
    let port = home.setup_on_free_port("main");
    let logged = |profile: &str| {
        home.run(&["--profile", profile, "logs", "--json", "--lines", "1000"])
            .stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .map(|v| {
                format!(
                    "{} {}",
                    v["level"].as_str().unwrap_or_default(),
                    v["message"].as_str().unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
    };
    let wait_logged = |profile: &str, line: &str, times: usize| {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let lines = logged(profile);
            if lines.iter().filter(|l| l.as_str() == line).count() >= times {
                return lines;
            }
            assert!(
                Instant::now() < deadline,
                "no {line:?} ({times}x) in {lines:#?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    // Started, stopped as a service manager stops it, started again.
    for round in 1..=2 {
        let gw = omniclaw_tests::GatewayProc::start(&home, &["--profile", "main", "gateway"]);
        wait_logged("main", "INFO gateway serving", round);
        gw.signal("TERM");
        let lines = wait_logged("main", "INFO gateway stopped", round);
        for line in [
            "INFO stop asked (a service manager or `gateway stop`)",
            "INFO gateway stopping",
        ] {
            assert_eq!(
                lines.iter().filter(|l| l.as_str() == line).count(),
                round,
                "{line:?} in {lines:#?}"
            );
        }
    }

    // A profile moved (by force) into main's CDP range, then started.
    let rescue = home.setup_on_free_port("rescue");
    assert_ne!(rescue, port);
    home.run(&[
        "--profile",
        "rescue",
        "config",
        "set",
        "gateway.port",
        &(port + 20).to_string(),
        "--force",
    ])
    .expect_code(0);
    let _gw = omniclaw_tests::GatewayProc::start(&home, &["--profile", "rescue", "gateway"]);
    let lines = wait_logged("rescue", "INFO gateway serving", 1);
    assert!(
        lines
            .iter()
            .any(|l| l == "WARN starting in a conflict with another instance"),
        "{lines:#?}"
    );
}
