//! One module per command; `run` dispatches.

mod audit;
mod browser;
mod config;
mod doctor;
mod gateway;
mod ports;
mod probe;
mod setup;
mod status;
mod target;

use crate::cli::{BrowserCommand, Command, GatewayCommand};
use crate::ctx::Ctx;
use crate::out::CmdResult;

pub fn run(ctx: &Ctx, command: Command) -> CmdResult {
    match command {
        Command::Setup(args) => setup::run(ctx, &args),
        Command::Config(cmd) => config::run(ctx, cmd),
        Command::Ports => ports::run(ctx),
        Command::Doctor(args) => doctor::run(ctx, &args),
        Command::Gateway(args) => match args.command {
            None => gateway::run(ctx, &args.run),
            Some(GatewayCommand::Run(run)) => gateway::run(ctx, &run),
            Some(GatewayCommand::Status(conn)) => status::gateway_status(ctx, &conn),
            Some(GatewayCommand::Probe(probe)) => probe::run(ctx, &probe),
        },
        Command::Status => status::run(ctx),
        Command::Health(conn) => status::health(ctx, &conn),
        Command::Browser(BrowserCommand::Status { browser_profile }) => {
            browser::status(ctx, browser_profile.as_deref())
        }
    }
}
