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

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    let ctx = ctx::Ctx::from_process(&args);
    match cmd::run(&ctx, args.command) {
        Ok(code) => code.into(),
        Err(err) => {
            out::print_error(&ctx, &err);
            err.exit_code().into()
        }
    }
}
