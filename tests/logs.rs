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
