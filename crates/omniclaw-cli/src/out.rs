//! Outcomes, errors and their exit codes, printed for people or as JSON.

use std::fmt;

use crate::ctx::Ctx;

/// How a command ended when it did not fail outright.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything is fine: exit 0.
    Ok,
    /// The command ran and found a problem (a conflict, an invalid config): exit 1.
    Problem,
    /// The command ran, and what it was asked would be refused as bad
    /// input (a dry run of a refused install): exit 2, as the real one.
    BadInput,
}

impl From<Outcome> for std::process::ExitCode {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Ok => std::process::ExitCode::SUCCESS,
            Outcome::Problem => std::process::ExitCode::from(1),
            Outcome::BadInput => std::process::ExitCode::from(2),
        }
    }
}

/// A failed command. `Usage` is bad input (exit 2); `Failed` is anything else (exit 1).
#[derive(Debug)]
pub enum CliError {
    Usage(String),
    Failed(String),
}

impl CliError {
    pub fn usage(msg: impl fmt::Display) -> CliError {
        CliError::Usage(msg.to_string())
    }

    pub fn failed(msg: impl fmt::Display) -> CliError {
        CliError::Failed(msg.to_string())
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Failed(_) => 1,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            CliError::Usage(m) | CliError::Failed(m) => m,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

pub type CmdResult = Result<Outcome, CliError>;

pub fn print_error(ctx: &Ctx, err: &CliError) {
    print_error_as(ctx.json, err);
}

/// Prints `err` as JSON on stdout or as text on stderr.
pub fn print_error_as(json: bool, err: &CliError) {
    if json {
        let kind = match err {
            CliError::Usage(_) => "usage",
            CliError::Failed(_) => "failed",
        };
        println!(
            "{}",
            serde_json::json!({"ok": false, "error": {"kind": kind, "message": err.message()}})
        );
    } else {
        eprintln!("error: {}", err.message());
    }
}

/// Makes a closed stdout (`omniclaw ports | head -3`) end the process
/// quietly, as it ends other Unix tools, instead of with a panic.
///
/// The Rust runtime ignores SIGPIPE, so a write to a closed pipe fails
/// with `BrokenPipe` and `println!` panics on it; every command prints
/// through `println!`, so the panic is where it is caught. Exit status 0:
/// the reader chose to stop reading, nothing went wrong here.
pub fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if is_closed_stdout(message) {
            std::process::exit(0);
        }
        default(info);
    }));
}

/// Whether a panic message is `println!` failing on a closed stdout.
fn is_closed_stdout(message: &str) -> bool {
    let broken_pipe = std::io::Error::from(std::io::ErrorKind::BrokenPipe).to_string();
    let epipe = std::io::Error::from_raw_os_error(32).to_string();
    message.starts_with("failed printing to stdout")
        && (message.contains(&broken_pipe) || (cfg!(unix) && message.contains(&epipe)))
}

/// Prints a JSON document on stdout.
pub fn json(value: &serde_json::Value) {
    match serde_json::to_string_pretty(value) {
        Ok(s) => println!("{s}"),
        // Serializing a Value cannot fail; keep the output valid anyway.
        Err(e) => println!(
            "{{\"ok\":false,\"error\":{{\"message\":{:?}}}}}",
            e.to_string()
        ),
    }
}

/// Renders rows as an aligned text table with a header.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let mut s = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut l = String::new();
        for (i, c) in cells.enumerate() {
            if i > 0 {
                l.push_str("  ");
            }
            l.push_str(c);
            let pad = widths
                .get(i)
                .copied()
                .unwrap_or(0)
                .saturating_sub(c.chars().count());
            l.extend(std::iter::repeat_n(' ', pad));
        }
        s.push_str(l.trim_end());
        s.push('\n');
    };
    line(&mut header.iter().copied());
    for r in rows {
        line(&mut r.iter().map(String::as_str));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns() {
        let t = table(
            &["A", "BB"],
            &[
                vec!["long".into(), "x".into()],
                vec!["s".into(), "yy".into()],
            ],
        );
        assert_eq!(t, "A     BB\nlong  x\ns     yy\n");
    }

    #[test]
    fn closed_stdout_is_recognised() {
        let epipe = std::io::Error::from_raw_os_error(32);
        assert!(is_closed_stdout(&format!(
            "failed printing to stdout: {epipe}"
        )));
        assert!(!is_closed_stdout("failed printing to stdout: disk full"));
        assert!(!is_closed_stdout("index out of bounds"));
    }

    #[test]
    fn exit_codes() {
        assert_eq!(CliError::usage("x").exit_code(), 2);
        assert_eq!(CliError::failed("x").exit_code(), 1);
    }
}
