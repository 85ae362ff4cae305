//! Versions side by side, read from outside: another program's
//! `--version` (the CLI beside the app, the app beside the CLI) and a
//! running gateway's `hello-ok`. Shared by `omniclaw --version` / `status`
//! and the desktop app's About and tray, so both read them alike.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The longest a program gets to print its `--version`.
const ANSWER_WAIT: Duration = Duration::from_secs(5);

/// `PROGRAM --version` of the binary at `path`: its first line is
/// `NAME VERSION`. Never waits more than a few seconds; `Err` says why no
/// version was read, naming the path.
pub fn of_program(path: &Path, name: &str) -> Result<String, String> {
    let mut child = Command::new(path)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", path.display()))?;
    let deadline = Instant::now() + ANSWER_WAIT;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{} --version did not answer", path.display()));
            }
        }
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    first_line_version(&String::from_utf8_lossy(&out.stdout), name)
        .ok_or_else(|| format!("{} --version printed no version", path.display()))
}

/// `VERSION` of a first line `NAME VERSION`.
fn first_line_version(text: &str, name: &str) -> Option<String> {
    text.lines()
        .next()
        .and_then(|l| l.strip_prefix(name))
        .filter(|rest| rest.starts_with(' '))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// The version a gateway reports: `hello-ok.server.version`.
pub fn from_hello(hello: &Value) -> Option<String> {
    hello
        .pointer("/server/version")
        .and_then(Value::as_str)
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_version_is_read_from_hello_ok() {
        let hello = json!({"type": "hello-ok", "server": {"version": "2026.9.6", "connId": "c1"}});
        assert_eq!(from_hello(&hello).as_deref(), Some("2026.9.6"));
        assert_eq!(from_hello(&json!({"server": {}})), None);
        assert_eq!(from_hello(&json!({"server": {"version": 3}})), None);
    }

    #[test]
    fn the_first_line_names_the_program_then_its_version() {
        let cases = [
            ("omniclaw 0.1.0\n  app 0.1.0\n", Some("0.1.0")),
            ("omniclaw 0.2.0-rc.1", Some("0.2.0-rc.1")),
            ("omniclaw-desktop 0.1.0", None),
            ("omniclaw\n", None),
            ("", None),
            ("error: no such flag", None),
        ];
        for (text, expected) in cases {
            assert_eq!(
                first_line_version(text, "omniclaw").as_deref(),
                expected,
                "{text:?}"
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_program_is_asked_for_its_version() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let script = |name: &str, body: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).expect("write");
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
            p
        };
        let good = script("good", "echo \"omniclaw 9.8.7\"");
        assert_eq!(of_program(&good, "omniclaw"), Ok("9.8.7".to_string()));
        let mute = script("mute", "exit 0");
        let err = of_program(&mute, "omniclaw").expect_err("no version");
        assert!(err.contains("printed no version"), "{err}");
        assert!(err.contains(&mute.display().to_string()), "{err}");
        let missing = dir.path().join("missing");
        let err = of_program(&missing, "omniclaw").expect_err("not there");
        assert!(err.starts_with("cannot run "), "{err}");
    }
}
