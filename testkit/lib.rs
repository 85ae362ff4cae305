//! Support for the black-box tests in `tests/`: they run the built binaries
//! against a temporary home directory, never the real one.

pub mod botapi;
pub mod chat;
pub mod desktop;
pub mod service;
pub mod sshd;
pub mod tls;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// User + system CPU time process `pid` (`"self"` for this one) has used,
/// from `/proc/PID/stat`; `None` when it cannot be read.
pub fn cpu_time(pid: impl std::fmt::Display) -> Option<std::time::Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // The kernel's USER_HZ is 100 on Linux.
    Some(std::time::Duration::from_millis(ticks * 10))
}

/// A field of `/proc/PID/status` in kB (`pid` may be `"self"`): `VmRSS:`
/// (all resident pages), `VmHWM:` (their peak), `RssAnon:` (the process's
/// own memory, without the pages of its binary and libraries).
pub fn status_kb(pid: impl std::fmt::Display, field: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(field))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The `omniclaw` a bench measures: `OMNICLAW_BENCH_BIN` when set (a
/// packaged or differently built binary), else `built`, the one cargo
/// built for the bench.
pub fn bench_bin(built: &'static str) -> String {
    std::env::var("OMNICLAW_BENCH_BIN").unwrap_or_else(|_| built.to_string())
}

/// The built `omniclaw` binary, next to the test executable's deps folder.
pub fn omniclaw_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/omniclaw
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps");
    let bin = dir.join(format!("omniclaw{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p omniclaw-cli` (`cargo test --workspace` does too)",
        bin.display()
    );
    bin
}

/// A temporary home directory and a way to run `omniclaw` inside it with a
/// clean environment (no OMNICLAW_* variable leaks in from the caller).
pub struct Home {
    dir: tempfile::TempDir,
}

/// What a run printed and how it exited.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// stdout parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// Asserts the exit code, showing the output when it differs.
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "exit code {} (wanted {code})\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    /// Asserts that stdout or stderr contains `fragment`.
    pub fn expect_output(&self, fragment: &str) -> &Run {
        assert!(
            self.stdout.contains(fragment) || self.stderr.contains(fragment),
            "output lacks {fragment:?}\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

impl Default for Home {
    fn default() -> Self {
        Home::new()
    }
}

impl Home {
    pub fn new() -> Home {
        Home {
            dir: tempfile::tempdir().expect("temp home"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A command for `omniclaw` with HOME set to this home and every
    /// OMNICLAW_* variable of the caller removed.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(omniclaw_bin());
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("OMNICLAW_") {
                c.env_remove(k);
            }
        }
        c.env("HOME", self.path()).current_dir(self.path());
        c
    }

    /// Runs `omniclaw ARGS...`.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    /// Runs `omniclaw ARGS...` with extra environment variables.
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut c = self.cmd();
        c.args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        Run::from(c.output().expect("run omniclaw"))
    }

    /// Runs `omniclaw ARGS...` with `input` on its stdin (how secrets and
    /// tokens are given) and extra environment variables.
    pub fn run_stdin(&self, args: &[&str], input: &str, env: &[(&str, &str)]) -> Run {
        use std::io::Write;
        use std::process::Stdio;
        let mut c = self.cmd();
        c.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            c.env(k, v);
        }
        let mut child = c.spawn().expect("spawn omniclaw");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
        Run::from(child.wait_with_output().expect("wait"))
    }

    /// `omniclaw --profile PROFILE setup --port N` on a free base port N,
    /// which must succeed; returns N.
    pub fn setup_on_free_port(&self, profile: &str) -> u16 {
        let port = free_base();
        self.run(&["--profile", profile, "setup", "--port", &port.to_string()])
            .expect_code(0);
        port
    }

    /// [`Home::setup_on_free_port`] with the profile's secrets in its
    /// 0600 secrets file (`--secrets-file`), for tests about something
    /// other than the keychain.
    pub fn setup_file_secrets_on_free_port(&self, profile: &str) -> u16 {
        let port = free_base();
        let port_arg = port.to_string();
        let args = [
            "--profile",
            profile,
            "--secrets-file",
            "setup",
            "--port",
            &port_arg,
        ];
        self.run(&args).expect_code(0);
        port
    }

    /// `omniclaw --profile PROFILE config set PATH VALUE` (VALUE in JSON5).
    pub fn config_set(&self, profile: &str, path: &str, value: &str) -> Run {
        self.run(&["--profile", profile, "config", "set", path, value])
    }

    /// Every file under the home, as text (lossy): for checking that a
    /// secret reached no file.
    pub fn all_text(&self) -> String {
        self.snapshot()
            .values()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Runs a shell command line the way a user types it (for the manual's
    /// commands, verbatim), with `omniclaw` on PATH.
    pub fn shell(&self, line: &str) -> Run {
        Run::from(self.shell_cmd(line).output().expect("run sh"))
    }

    /// The command `shell` runs: `sh -c LINE` in this home, with `omniclaw`
    /// first on PATH and every OMNICLAW_* variable of the caller removed.
    pub fn shell_cmd(&self, line: &str) -> Command {
        let bin_dir = omniclaw_bin().parent().expect("bin dir").to_path_buf();
        let path = format!(
            "{}:{}",
            bin_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut c = Command::new("sh");
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("OMNICLAW_") {
                c.env_remove(k);
            }
        }
        c.arg("-c")
            .arg(line)
            .env("HOME", self.path())
            .env("PATH", path)
            .current_dir(self.path());
        c
    }

    /// Every file under the home with its content, to prove a failed
    /// command changed nothing. The empty `.<name>.lock` files that
    /// serialize the writers of a file hold no state and are left out.
    pub fn snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        let mut stack = vec![self.path().to_path_buf()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                let name = e.file_name().to_string_lossy().into_owned();
                if p.is_dir() {
                    out.insert(p.clone(), b"<dir>".to_vec());
                    stack.push(p);
                } else if name.starts_with('.') && name.ends_with(".lock") {
                    continue;
                } else {
                    out.insert(p.clone(), std::fs::read(&p).unwrap_or_default());
                }
            }
        }
        out
    }

    /// Writes a file under the home, creating parents.
    pub fn write(&self, rel: &str, content: &str) -> PathBuf {
        let p = self.path().join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, content).expect("write");
        p
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }
}

/// Another machine's home with its main gateway running (file secrets):
/// the home, the gateway, its port and its token. A remote gateway for
/// tests that reach one directly.
pub fn over_there() -> (Home, GatewayProc, u16, String) {
    let home = Home::new();
    let port = home.setup_file_secrets_on_free_port("main");
    let token = home
        .run(&["--profile", "main", "secrets", "get", "gateway.auth.token"])
        .expect_code(0)
        .stdout
        .trim()
        .to_string();
    let gateway = GatewayProc::start(&home, &["--profile", "main", "gateway"]);
    (home, gateway, port, token)
}

/// A gateway process started by a test; killed (with its whole process
/// group, so a shell that started it takes it along) when dropped.
pub struct GatewayProc {
    child: std::process::Child,
    /// What it printed on stdout up to "Press Ctrl+C to stop.".
    pub output: String,
    /// Everything it printed on stdout and stderr, kept as it comes.
    printed: std::sync::Arc<std::sync::Mutex<String>>,
}

impl GatewayProc {
    /// Starts `cmd` and waits until it says it listens; `Err` with what it
    /// printed when it exits (or stays silent for 20 s) instead.
    pub fn spawn(mut cmd: Command) -> Result<GatewayProc, Run> {
        use std::io::{BufRead, BufReader};
        use std::process::Stdio;
        use std::time::{Duration, Instant};
        // Its own process group, so a test's kill reaches the gateway's children too.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn gateway");
        let printed = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut output = String::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            match lines.next() {
                Some(Ok(line)) => {
                    output.push_str(&line);
                    output.push('\n');
                    if line.contains("Press Ctrl+C to stop.") {
                        // Keep draining stdout and stderr so the gateway never
                        // blocks on a full pipe; what they carry is kept.
                        keep(&printed, &output);
                        let out = printed.clone();
                        std::thread::spawn(move || {
                            for line in lines.by_ref().map_while(Result::ok) {
                                keep(&out, &format!("{line}\n"));
                            }
                        });
                        if let Some(stderr) = child.stderr.take() {
                            let err = printed.clone();
                            std::thread::spawn(move || {
                                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                                    keep(&err, &format!("{line}\n"));
                                }
                            });
                        }
                        return Ok(GatewayProc {
                            child,
                            output,
                            printed,
                        });
                    }
                }
                _ => break,
            }
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", child.id())])
            .status();
        let out = child.wait_with_output().expect("wait");
        Err(Run {
            code: out.status.code().unwrap_or(-1),
            stdout: output,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// `omniclaw ARGS...` in `home` as a gateway; panics with its stderr
    /// when it does not start.
    pub fn start(home: &Home, args: &[&str]) -> GatewayProc {
        let mut cmd = home.cmd();
        cmd.args(args);
        GatewayProc::spawn(cmd).unwrap_or_else(|r| panic!("gateway did not start: {r:?}"))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the gateway printed (stdout and stderr) so far.
    pub fn printed(&self) -> String {
        self.printed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Kills the gateway (and its process group) with SIGKILL, no chance
    /// to clean up, and waits for it.
    pub fn kill9(mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.pid())])
            .status();
        let _ = self.child.wait();
    }

    /// Sends `signal` (e.g. "TERM") and returns how long the process took to exit.
    pub fn signal(mut self, signal: &str) -> std::time::Duration {
        let start = std::time::Instant::now();
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal} failed");
        self.child.wait().expect("wait");
        start.elapsed()
    }
}

fn keep(printed: &std::sync::Mutex<String>, text: &str) {
    printed
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push_str(text);
}

impl Drop for GatewayProc {
    fn drop(&mut self) {
        // The group may be gone already (`kill9`): nothing to say then.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.pid())])
            .stderr(std::process::Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A base port `p` such that p, p+2 and p+4 are free right now (CDP ports
/// bind lazily, so they are not checked).
/// Asserts that `path` has exactly the permission bits `mode` (Unix only;
/// elsewhere the OS's own ACLs apply and nothing is checked).
pub fn assert_mode(path: &Path, mode: u32) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let got = std::fs::metadata(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(
            got,
            mode,
            "mode of {}: {got:o}, want {mode:o}",
            path.display()
        );
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
}

/// `out` of the command `what`, which must have succeeded: else a panic
/// with its status and everything it printed.
#[track_caller]
pub fn succeeded(what: impl std::fmt::Display, out: Output) -> Output {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn free_base() -> u16 {
    free_base_avoiding(&[], 0)
}

/// Bases handed out in this test process. The tests of one binary run at
/// once, and a port the kernel lent one of them for a moment (a bind to
/// port 0) may be lent to another before the first test's gateway binds
/// it: a base is never handed out twice, nor one within a profile's span
/// of ports (its derived ports, its browser's CDP range) of another.
static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());

/// How far apart two handed-out bases stay.
const SPAN: u16 = 120;

/// A base port `p` such that p, p+2 and p+4 are free right now, at least
/// `apart` from each port of `avoid` and clear of every base this process
/// handed out before.
pub fn free_base_avoiding(avoid: &[u16], apart: u16) -> u16 {
    let mut handed = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    for attempt in 0..400 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let p = l.local_addr().expect("addr").port();
        drop(l);
        // After many tries the ephemeral range may be crowded with bases
        // handed out long ago (their tests are over): those are let go.
        let clear_of_handed = attempt >= 300 || handed.iter().all(|h| p.abs_diff(*h) >= SPAN);
        if p < 64000
            && clear_of_handed
            && avoid.iter().all(|a| p.abs_diff(*a) >= apart)
            && [p, p + 2, p + 4].iter().all(|q| port_is_free(*q))
        {
            handed.push(p);
            return p;
        }
    }
    panic!("no free base port found");
}

/// Serializes the tests of one binary that use the manual's well-known
/// ports (18789, 19789, 19001 and the ranges derived from them): setting
/// profiles up the default way, running their gateways, or installing
/// their services, whose preflight refuses ports another test holds.
pub fn well_known_ports() -> std::sync::MutexGuard<'static, ()> {
    static PORTS: std::sync::Mutex<()> = std::sync::Mutex::new(());
    PORTS.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn port_is_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}
