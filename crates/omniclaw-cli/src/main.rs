//! `omniclaw`: the command-line interface and headless gateway host.
//!
//! A thin binary: it parses arguments, captures the environment once, asks
//! the core for plans and the OS adapters to carry them out, and prints the
//! result for people or, with `--json`, for programs. It never links GUI
//! libraries. Exit codes: 0 ok, 1 problem found, 2 usage or bad input.

mod cli;
mod cmd;
mod ctx;
mod out;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

/// mimalloc rather than the system's allocator: a gateway's turn makes and
/// drops many small values (protocol frames, messages, rows), and glibc's
/// malloc and free were a quarter of its CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    out::quiet_on_closed_stdout();
    let argv: Vec<OsString> = std::env::args_os().collect();
    let args = match cli::Cli::try_parse_from(&argv) {
        Ok(args) => args,
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayVersion => return version(&argv),
        Err(e) => {
            if let Some(err) = profile_without_name(&argv) {
                return usage_before_parse(&argv, &err);
            }
            e.exit()
        }
    };
    if args.profile.as_deref().is_some_and(|p| p.starts_with("--")) {
        if let Some(err) = profile_without_name(&argv) {
            return usage_before_parse(&argv, &err);
        }
    }
    let ctx = ctx::Ctx::from_process(&args);
    match cmd::run(&ctx, args.command) {
        Ok(code) => code.into(),
        Err(err) => {
            out::print_error(&ctx, &err);
            err.exit_code().into()
        }
    }
}

/// `--profile` given without a name, so that what follows it was taken as
/// the name: another option (`--profile --json ports`) or the command
/// itself (`omniclaw --profile setup`). The message shows the command line
/// with the name in its place.
fn profile_without_name(argv: &[OsString]) -> Option<out::CliError> {
    let args: Vec<String> = argv
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let end = args.iter().position(|a| a == "--").unwrap_or(args.len());
    let at = args[..end].iter().position(|a| a == "--profile")?;
    let value = args.get(at + 1).filter(|_| at + 1 < end)?;
    let command = cli::Cli::command();
    let is_command = command.find_subcommand(value).is_some();
    // `--profile setup setup` names a profile "setup": only a command word
    // with no command after it is a missing name.
    let command_follows = args[at + 2..end]
        .iter()
        .any(|a| command.find_subcommand(a).is_some());
    if !(value.starts_with("--") || (is_command && !command_follows)) {
        return None;
    }
    let mut shown = vec!["omniclaw".to_string()];
    shown.extend(args[..=at].iter().cloned());
    shown.push("NAME".to_string());
    shown.extend(args[at + 1..].iter().cloned());
    Some(out::CliError::usage(format!(
        "--profile needs a profile name before the command: `{}`",
        shown.join(" ")
    )))
}

/// Prints a usage error found before the arguments could be parsed, as
/// text or (when `--json` was asked for) as JSON; exit 2.
fn usage_before_parse(argv: &[OsString], err: &out::CliError) -> ExitCode {
    let json = argv.iter().skip(1).any(|a| a == "--json");
    out::print_error_as(json, err);
    ExitCode::from(err.exit_code())
}

/// `omniclaw --version`: this CLI's, the app's beside it and each running
/// gateway's version side by side; exit 1 when one is out of step.
fn version(argv: &[OsString]) -> ExitCode {
    let has = |flag: &str| argv.iter().skip(1).any(|a| a == flag);
    let ctx = ctx::Ctx::of_process(None, has("--json"), has("--secrets-file"));
    match cmd::versions::print(&ctx) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(err) => {
            out::print_error(&ctx, &err);
            err.exit_code().into()
        }
    }
}
