//! One module per command; `run` dispatches.

mod audit;
mod browser;
mod config;
mod doctor;
mod fix;
mod gateway;
mod logs;
mod onboard;
mod pairing;
mod ports;
mod probe;
mod remote;
mod remove;
mod secrets;
mod service;
mod sessions;
mod setup;
mod status;
mod target;
pub mod versions;
mod watchers;

use crate::cli::{BrowserCommand, Command, GatewayCommand};
use crate::ctx::Ctx;
use crate::out::CmdResult;

pub fn run(ctx: &Ctx, command: Command) -> CmdResult {
    match command {
        Command::Setup(args) => setup::run(ctx, &args),
        Command::Config(cmd) => config::run(ctx, cmd),
        Command::Ports => ports::run(ctx),
        Command::Doctor(args) if args.fix => fix::run(ctx, args.yes),
        Command::Doctor(args) => doctor::run(ctx, &args),
        Command::Gateway(args) => match args.command {
            None => gateway::run(ctx, &args.run),
            Some(GatewayCommand::Run(run)) => gateway::run(ctx, &run),
            Some(GatewayCommand::Status(args)) => status::gateway_status(ctx, &args),
            Some(GatewayCommand::Probe(probe)) => probe::run(ctx, &probe),
            Some(GatewayCommand::Install(args)) => service::install(ctx, &args),
            Some(GatewayCommand::Uninstall(args)) => service::uninstall(ctx, &args),
            Some(GatewayCommand::Start) => service::start(ctx),
            Some(GatewayCommand::Stop(args)) => service::stop(ctx, &args),
            Some(GatewayCommand::Restart) => service::restart(ctx),
        },
        Command::Status => status::run(ctx),
        Command::Health(conn) => status::health(ctx, &conn),
        Command::Browser(BrowserCommand::Status { browser_profile }) => {
            browser::status(ctx, browser_profile.as_deref())
        }
        Command::Secrets(cmd) => secrets::run(ctx, cmd),
        Command::Sessions(cmd) => sessions::run(ctx, cmd),
        Command::Logs(args) => logs::run(ctx, &args),
        Command::Onboard(args) => onboard::run(ctx, &args),
        Command::Pairing(cmd) => pairing::run(ctx, cmd),
        Command::Remove => remove::run(ctx),
        Command::Remote(cmd) => remote::run(ctx, cmd),
    }
}
