//! The command line, as clap types. Parsing only: no behaviour here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "omniclaw",
    version,
    about = "Run several isolated AI-assistant gateways on one host",
    long_about = "Run several isolated AI-assistant gateways (a main one and a rescue one, typically) on one host \
                  and keep them from colliding: separate config, state, workspace, ports and tokens.\n\n\
                  Exit codes: 0 ok, 1 problem found, 2 usage or bad input."
)]
pub struct Cli {
    /// Profile to act on (e.g. `main`, `rescue`); scopes the state dir, config, workspace and service
    /// names. Defaults to OMNICLAW_PROFILE, else the default profile.
    #[arg(long, global = true, value_name = "NAME", allow_hyphen_values = true)]
    pub profile: Option<String>,

    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create this profile's state dir, config and workspace, with a collision-free base port.
    Setup(SetupArgs),
    /// Read, change, check or describe this profile's config (omniclaw.json).
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Show the ports of every profile and OpenClaw install; exit 1 on any conflict.
    Ports,
    /// Run the isolation checklist across all profiles; exit 1 when anything fails.
    Doctor(DoctorArgs),
    /// Run this profile's gateway in the foreground, or manage and probe gateways.
    Gateway(GatewayArgs),
    /// Every profile: running or not, ports, config, conflicts; exit 1 on problems.
    Status,
    /// Ask this profile's running gateway for its health; exit 1 when unreachable or unhealthy.
    Health(ConnectArgs),
    /// The browser control service of this profile's gateway.
    #[command(subcommand)]
    Browser(BrowserCommand),
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct GatewayArgs {
    #[command(subcommand)]
    pub command: Option<GatewayCommand>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum GatewayCommand {
    /// Run the gateway in the foreground (the default when no subcommand is given).
    Run(RunArgs),
    /// This profile's gateway: running or not, pid, ports, and an RPC probe.
    Status(ConnectArgs),
    /// Probe every known profile's port (and --url), proving identity from the handshake.
    Probe(ProbeArgs),
}

#[derive(Debug, Args, Default)]
pub struct RunArgs {
    /// Base port (overrides OMNICLAW_GATEWAY_PORT and gateway.port).
    #[arg(long, value_name = "N", value_parser = parse_port)]
    pub port: Option<u16>,
    /// Where the gateway and canvas listen (overrides gateway.bind).
    #[arg(long, value_name = "MODE", value_parser = ["loopback", "lan", "custom"])]
    pub bind: Option<String>,
    /// Token clients must present (overrides OMNICLAW_GATEWAY_TOKEN and gateway.auth.token).
    #[arg(long, value_name = "T", conflicts_with = "password")]
    pub token: Option<String>,
    /// Password clients must present (overrides OMNICLAW_GATEWAY_PASSWORD and gateway.auth.password).
    #[arg(long, value_name = "P")]
    pub password: Option<String>,
}

#[derive(Debug, Args, Default)]
pub struct ConnectArgs {
    /// Token to authenticate with (default: this profile's own).
    #[arg(long, value_name = "T", conflicts_with = "password")]
    pub token: Option<String>,
    /// Password to authenticate with (default: this profile's own).
    #[arg(long, value_name = "P")]
    pub password: Option<String>,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Also probe this gateway URL (ws://host:port); needs --token or --password,
    /// stored credentials are never sent to an explicit URL.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Token for --url.
    #[arg(long, value_name = "T", conflicts_with = "password", requires = "url")]
    pub token: Option<String>,
    /// Password for --url.
    #[arg(long, value_name = "P", requires = "url")]
    pub password: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum BrowserCommand {
    /// The browser control service: running, CDP range, browser profiles and their CDP ports.
    Status {
        /// Show only this browser profile.
        #[arg(long, value_name = "NAME")]
        browser_profile: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct SetupArgs {
    /// Base port of the gateway (derived ports follow from it). Default: a free slot.
    #[arg(long, value_name = "N", value_parser = parse_port)]
    pub port: Option<u16>,
    /// Workspace directory (default: ~/.omniclaw/workspace or ~/.omniclaw/workspace-NAME).
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check the config strictly and list every problem as `path: message (line:col)`.
    Validate,
    /// Print the value at a dotted path (e.g. `gateway.port`); secrets are redacted.
    Get {
        /// Dotted key path, e.g. `gateway.port` or `browser.profiles.work.cdpPort`.
        path: String,
    },
    /// Set the value at a dotted path; the new config is validated before it is written.
    Set {
        /// Dotted key path, e.g. `gateway.port`.
        path: String,
        /// The value, in JSON5 (e.g. `19789`, `"lan"`, `{enabled: true}`).
        value: String,
    },
    /// Remove the key at a dotted path (the default then applies).
    Unset {
        /// Dotted key path.
        path: String,
    },
    /// Print the JSON Schema of omniclaw.json, for editors.
    Schema,
}

/// A TCP port 1–65535, with a message that says so.
pub fn parse_port(raw: &str) -> Result<u16, String> {
    match raw.trim().parse::<u32>() {
        Ok(0) => Err("port 0 is not allowed: use a port from 1 to 65535".into()),
        Ok(n) if n > 65535 => Err(format!("{n} is not a port: use a port from 1 to 65535")),
        Ok(n) => u16::try_from(n).map_err(|e| e.to_string()),
        Err(_) => Err(format!(
            "{raw:?} is not a port: use a whole number from 1 to 65535"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn ports() {
        assert_eq!(parse_port("18789"), Ok(18789));
        assert!(parse_port("0").unwrap_err().contains("port 0"));
        assert!(parse_port("65536")
            .unwrap_err()
            .contains("65536 is not a port"));
        assert!(parse_port("abc")
            .unwrap_err()
            .contains("\"abc\" is not a port"));
        assert!(parse_port("-1").is_err());
    }
}
