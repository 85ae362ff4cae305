//! `omniclaw [--profile P] logs [--follow] [--lines N] [--json]`: this
//! profile's gateway log, read from its rolling files, so it works whether
//! the gateway runs here, as a service or in the tray (or not at all).
//! Text mode renders each JSON line for people; `--json` prints the lines
//! as written (one JSON object per line).

use std::io::Write;
use std::time::Duration;

use omniclaw_os::logs::{self, Follower};

use crate::cli::LogsArgs;
use crate::ctx::Ctx;
use crate::out::{CliError, CmdResult, Outcome};

/// How often `--follow` looks for new lines.
const FOLLOW_EVERY: Duration = Duration::from_millis(200);

pub fn run(ctx: &Ctx, args: &LogsArgs) -> CmdResult {
    let resolved = ctx.resolve()?;
    ctx.print_notes(&resolved);
    let dir = resolved.logs_dir();
    let read_err = |e: std::io::Error| {
        CliError::failed(format!("cannot read the logs in {}: {e}", dir.display()))
    };
    // Start following before reading the tail so no line falls in between.
    let mut follower = args.follow.then(|| Follower::from_end(&dir));
    let lines = logs::tail(&dir, args.lines).map_err(read_err)?;
    if lines.is_empty() && !ctx.json {
        eprintln!(
            "no log lines yet in {}: the gateway of profile {} writes them once it runs",
            resolved.display(&dir),
            resolved.profile
        );
    }
    let show = |line: &str| {
        let mut stdout = std::io::stdout().lock();
        let text = if ctx.json {
            line.to_string()
        } else {
            logs::render(line)
        };
        // A closed pipe (`logs | head`) ends the command quietly.
        writeln!(stdout, "{text}")
            .and_then(|()| stdout.flush())
            .is_ok()
    };
    for line in &lines {
        if !show(line) {
            return Ok(Outcome::Ok);
        }
    }
    if let Some(f) = follower.as_mut() {
        loop {
            for line in f.poll().map_err(read_err)? {
                if !show(&line) {
                    return Ok(Outcome::Ok);
                }
            }
            std::thread::sleep(FOLLOW_EVERY);
        }
    }
    Ok(Outcome::Ok)
}
