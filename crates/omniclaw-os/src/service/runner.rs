//! Running the service managers' command-line tools.
//!
//! Must never run a shell: a command is a program and its arguments, so no
//! path or name is ever re-split or expanded.

use std::fmt;
use std::io;
use std::process::{Command, Stdio};

/// A program and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    pub program: String,
    pub args: Vec<String>,
}

impl Cmd {
    pub fn new<I, S>(program: &str, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Cmd {
            program: program.to_string(),
            args: args.into_iter().map(Into::into).collect(),
        }
    }

    /// Program and arguments as one list.
    pub fn argv(&self) -> Vec<String> {
        std::iter::once(self.program.clone())
            .chain(self.args.iter().cloned())
            .collect()
    }
}

/// Shows the command as a POSIX shell would take it (words with spaces or
/// quotes in single quotes), for messages and `--dry-run`.
impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words: Vec<String> = self.argv().iter().map(|w| shell_word(w)).collect();
        f.write_str(&words.join(" "))
    }
}

fn shell_word(w: &str) -> String {
    let plain = !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if plain {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', r"'\''"))
    }
}

/// What a command printed and how it exited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdOutput {
    /// `None` when it was killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl CmdOutput {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// The text that explains a failure: stderr, else stdout, trimmed.
    pub fn detail(&self) -> String {
        let s = if self.stderr.trim().is_empty() {
            self.stdout.trim()
        } else {
            self.stderr.trim()
        };
        if s.is_empty() {
            "no output".to_string()
        } else {
            s.to_string()
        }
    }
}

/// Runs commands; tests substitute one that records them.
pub trait CommandRunner {
    fn run(&self, cmd: &Cmd) -> io::Result<CmdOutput>;
}

/// Runs commands for real, with no stdin and output captured.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemRunner;

impl CommandRunner for SystemRunner {
    fn run(&self, cmd: &Cmd) -> io::Result<CmdOutput> {
        let out = Command::new(&cmd.program)
            .args(&cmd.args)
            .stdin(Stdio::null())
            .output()?;
        Ok(CmdOutput {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// A runner that refuses every command (service managers turned off).
#[derive(Debug, Clone)]
pub struct NoRunner {
    reason: String,
}

impl NoRunner {
    pub fn new(reason: impl Into<String>) -> NoRunner {
        NoRunner {
            reason: reason.into(),
        }
    }
}

impl CommandRunner for NoRunner {
    fn run(&self, _cmd: &Cmd) -> io::Result<CmdOutput> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            self.reason.clone(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(argv: &[&str], expected: &str) {
        let cmd = Cmd::new(argv[0], argv[1..].iter().copied());
        assert_eq!(cmd.to_string(), expected);
    }

    #[test]
    fn display_quotes_for_a_shell() {
        check(
            &[
                "systemctl",
                "--user",
                "enable",
                "--now",
                "omniclaw-gateway.service",
            ],
            "systemctl --user enable --now omniclaw-gateway.service",
        );
        check(
            &["schtasks", "/Run", "/TN", "OmniClaw Gateway (rescue)"],
            "schtasks /Run /TN 'OmniClaw Gateway (rescue)'",
        );
        check(&["x", "it's"], r"x 'it'\''s'");
        check(&["x", ""], "x ''");
    }

    #[test]
    fn real_runner_reports_missing_programs() {
        let err = SystemRunner
            .run(&Cmd::new("omniclaw-no-such-program", ["x"]))
            .expect_err("missing");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[cfg(unix)]
    #[test]
    fn real_runner_captures_output() {
        let out = SystemRunner
            .run(&Cmd::new("sh", ["-c", "echo out; echo err >&2; exit 3"]))
            .expect("runs");
        assert_eq!(out.code, Some(3));
        assert_eq!(out.stdout, "out\n");
        assert_eq!(out.detail(), "err");
    }
}
