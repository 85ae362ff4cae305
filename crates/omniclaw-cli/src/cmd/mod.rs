//! One module per command; `run` dispatches.

mod audit;
mod config;
mod doctor;
mod ports;
mod setup;

use crate::cli::Command;
use crate::ctx::Ctx;
use crate::out::CmdResult;

pub fn run(ctx: &Ctx, command: Command) -> CmdResult {
    match command {
        Command::Setup(args) => setup::run(ctx, &args),
        Command::Config(cmd) => config::run(ctx, cmd),
        Command::Ports => ports::run(ctx),
        Command::Doctor(args) => doctor::run(ctx, &args),
    }
}
