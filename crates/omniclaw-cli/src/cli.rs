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

    /// Keep this profile's secrets in `<state dir>/secrets.json` (mode 0600) instead of the OS
    /// keychain: for headless machines without a Secret Service. Once that file exists the
    /// profile keeps using it without the flag.
    #[arg(long, global = true)]
    pub secrets_file: bool,

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
    /// This profile's secrets in the OS keychain (or the --secrets-file): set, get, status, remove, move.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// The assistant's conversations of this profile: list, show, reset, delete, export.
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// Show this profile's gateway log (rolling files in `<state dir>/logs/`).
    Logs(LogsArgs),
    /// Set this profile up, or complete it, step by step: port, the assistant's model (provider, key,
    /// model, a priced test message), a Telegram bot (optional for a main bot; with the operator and,
    /// for a rescue bot, its targets).
    Onboard(OnboardArgs),
    /// Take this profile off this machine: its service, its secrets, its name in other profiles'
    /// rescue.targets; its state dir and config are kept as a backup beside them (the path is
    /// printed), its workspace is left alone. Refused while its gateway runs.
    Remove,
    /// Telegram users waiting for access to this profile's bot: list, approve or deny their codes.
    #[command(subcommand)]
    Pairing(PairingCommand),
    /// Gateways on other machines, reached directly (a tailnet, a LAN, wss://) or through an SSH
    /// tunnel: add, list, remove, test, or keep a tunnel up.
    #[command(subcommand)]
    Remote(RemoteCommand),
}

#[derive(Debug, Subcommand)]
pub enum RemoteCommand {
    /// Add a remote gateway; its token (or password) is read from stdin into the secret store.
    Add(RemoteAddArgs),
    /// Every remote gateway: name, kind, URL or SSH target, the tunnel's local port, and its state
    /// (each one is reached, through a short-lived tunnel when no other process keeps one up).
    List,
    /// Take a remote gateway off this machine: its entry, its secret and its known-hosts file.
    Remove {
        /// The remote's name.
        name: String,
    },
    /// Reach a remote gateway, prove it is the gateway with the stored token, print its version;
    /// exit 1 when it cannot be reached or refuses the token.
    Test {
        /// The remote's name.
        name: String,
    },
    /// Keep an SSH remote's tunnel up in the foreground, starting ssh again (with backoff) when
    /// it dies; other commands then use this tunnel. Ctrl+C stops it.
    Tunnel {
        /// The remote's name.
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct RemoteAddArgs {
    /// The remote's name (letters, digits, '-', '_'); not a local profile's.
    pub name: String,
    /// The gateway's URL: wss://HOST:PORT, or ws://HOST:PORT on loopback, a private or link-local
    /// address, a tailnet (100.64.0.0/10, *.ts.net) or *.local; http(s) is taken as ws(s).
    #[arg(
        long,
        value_name = "URL",
        required_unless_present = "ssh",
        conflicts_with = "ssh"
    )]
    pub url: Option<String>,
    /// Reach the gateway through an SSH tunnel to USER@HOST[:PORT] (it listens on that host's
    /// loopback, at --remote-port).
    #[arg(long, value_name = "USER@HOST[:PORT]", allow_hyphen_values = true)]
    pub ssh: Option<String>,
    /// The gateway's port on the SSH host (required with --ssh).
    #[arg(long, value_name = "N", value_parser = parse_port, requires = "ssh")]
    pub remote_port: Option<u16>,
    /// The port on this machine's loopback the tunnel listens on. Default: a free port no local
    /// profile plans. Kept: when it is busy later, commands say so rather than pick another.
    #[arg(long, value_name = "L", value_parser = parse_port, requires = "ssh")]
    pub local_port: Option<u16>,
    /// Accept the SSH host key only if its fingerprint is this (SHA256:..., as `ssh-keygen -lf`
    /// prints it on the server); without it the fingerprint is shown and asked about.
    #[arg(long, value_name = "SHA256:...", requires = "ssh")]
    pub host_key_fingerprint: Option<String>,
    /// The private key ssh logs in with (default: ssh's own choice, e.g. ~/.ssh/id_ed25519 or the agent).
    #[arg(long, value_name = "PATH", requires = "ssh")]
    pub identity_file: Option<PathBuf>,
    /// Read the gateway's token from stdin (never from the command line).
    #[arg(long)]
    pub token_stdin: bool,
    /// Read the gateway's password from stdin instead of a token.
    #[arg(long, conflicts_with = "token_stdin")]
    pub password_stdin: bool,
}

#[derive(Debug, Args)]
pub struct OnboardArgs {
    /// Ask nothing: take every answer from the flags (and one secret from stdin, others from files).
    #[arg(long)]
    pub non_interactive: bool,
    /// Base port of the gateway. Default: a free slot (19789 for `rescue` when free).
    #[arg(long, value_name = "N", value_parser = parse_port)]
    pub port: Option<u16>,
    /// Read the BotFather token from stdin (never from the command line).
    #[arg(long)]
    pub telegram_token_stdin: bool,
    /// Read the BotFather token from this file (its first line).
    #[arg(long, value_name = "PATH", conflicts_with = "telegram_token_stdin")]
    pub telegram_token_file: Option<PathBuf>,
    /// The assistant's model provider: openai, anthropic, openrouter, ollama or custom (any server
    /// speaking the OpenAI, Anthropic or Ollama API).
    #[arg(long, value_name = "NAME", value_parser = parse_provider)]
    pub provider: Option<omniclaw_onboard::ProviderKind>,
    /// The provider's id in the config (models.providers.ID). Default: the provider's name.
    #[arg(long, value_name = "ID")]
    pub provider_id: Option<String>,
    /// The provider's base URL; required for custom (e.g. http://127.0.0.1:8000/v1). Default: the
    /// known provider's own.
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// The API a custom provider speaks: openai-completions (default), anthropic-messages or ollama.
    #[arg(long, value_name = "API", value_parser = parse_api)]
    pub api: Option<omniclaw_core::config::ProviderApi>,
    /// Read the provider's API key from stdin (never from the command line).
    #[arg(long)]
    pub api_key_stdin: bool,
    /// Read the provider's API key from this file (its first line).
    #[arg(long, value_name = "PATH", conflicts_with = "api_key_stdin")]
    pub api_key_file: Option<PathBuf>,
    /// The model, by the id its provider lists (e.g. gpt-4o-mini); it becomes the primary model.
    #[arg(long, value_name = "ID")]
    pub model: Option<String>,
    /// Where to look for a local Ollama. Default: OLLAMA_HOST (read as Ollama reads it), else
    /// http://127.0.0.1:11434.
    #[arg(long, value_name = "URL")]
    pub ollama_url: Option<String>,
    /// Telegram user id allowed to operate the bot (repeatable).
    #[arg(long = "allow-from", value_name = "ID")]
    pub allow_from: Vec<u64>,
    /// Profiles the rescue bot may act on (repeatable). Default: every other profile.
    #[arg(long = "target", value_name = "PROFILE")]
    pub targets: Vec<String>,
    /// Let the rescue's watch roll a target back to its last good config when a bad edit brought it
    /// down (adds "rollback" to rescue.watch.actions; restarting is always allowed). Needs --target.
    #[arg(long)]
    pub watch_rollback: bool,
    /// Install the gateway as a service, start it, and wait (up to 60 s) until it answers `health` and
    /// its bot polls; exit 1 with the reason otherwise. Without it nothing is started: the command
    /// that starts the gateway is printed.
    #[arg(long)]
    pub install_service: bool,
    /// Telegram Bot API root (for a self-hosted Bot API server). Default: https://api.telegram.org.
    #[arg(long, value_name = "URL")]
    pub api_root: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum PairingCommand {
    /// Pending requests: code, Telegram user, age.
    List,
    /// Let the user who got CODE operate the bot.
    Approve {
        /// The code the bot sent the user.
        code: String,
    },
    /// Drop the request with CODE.
    Deny {
        /// The code the bot sent the user.
        code: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Store a secret; the value is read from stdin or a hidden prompt, never from the command line.
    Set {
        /// gateway.auth.token, gateway.auth.password, gateway.remote.token or channels.telegram.botToken.
        name: String,
    },
    /// Print the value of one secret asked for by name, e.g. the gateway token a client needs
    /// (`--json`: `{"name", "value"}` of that secret only). Goes to the terminal or a pipe, never
    /// into a log or any other command's output. A value on a command line (`--token T`) is
    /// visible to every user in `ps`: hand it over in a variable or a file.
    Get {
        /// The secret's config path, e.g. gateway.auth.token.
        name: String,
    },
    /// Which secrets are stored (present / missing, with a fingerprint); never their values.
    Status {
        /// Only this secret.
        name: Option<String>,
    },
    /// Remove a secret from the store.
    Rm {
        /// The secret's config path, e.g. gateway.auth.token.
        name: String,
    },
    /// Move every secret of the profile between the OS keychain and its 0600 secrets file,
    /// keeping their values (clients keep working).
    Move {
        /// Where the secrets go.
        #[arg(long, value_enum)]
        to: StoreChoice,
    },
}

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// Every session: messages, tokens, spend, how its last run ended.
    List {
        /// Show at most this many (newest activity first).
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// One session's transcript (`main` is the main session).
    Show {
        /// Session key: `main`, `work`, or a full `agent:main:…` key.
        key: String,
        /// Show at most the last this many messages.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Start the session afresh (same session id; the transcript so far is kept).
    Reset {
        /// Session key.
        key: String,
    },
    /// Delete the session and its transcript.
    Delete {
        /// Session key.
        key: String,
    },
    /// Print the session as OpenClaw's transcript JSON lines.
    Export {
        /// Session key.
        key: String,
    },
}

/// A secret store `secrets move` can move to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreChoice {
    /// The profile's `secrets.json` in its state dir, mode 0600.
    File,
    /// The OS keychain (Secret Service, macOS Keychain, Windows Credential Manager).
    Keychain,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Keep printing new lines as the gateway writes them (Ctrl+C stops).
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// How many of the newest lines to show first.
    #[arg(long, short = 'n', value_name = "N", default_value_t = 100)]
    pub lines: usize,
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
    /// This profile's gateway: running or not, pid, ports, its service, and an RPC probe.
    Status(GatewayStatusArgs),
    /// Probe every known profile's port (and --url), proving identity from the handshake.
    Probe(ProbeArgs),
    /// Install this profile's gateway as a user service (systemd, launchd or Task Scheduler) and start it.
    Install(InstallArgs),
    /// Stop and remove this profile's gateway service.
    Uninstall(UninstallArgs),
    /// Start this profile's gateway through its service.
    Start,
    /// Stop this profile's gateway (its service, or a gateway run from a terminal).
    Stop(StopArgs),
    /// Restart this profile's gateway through its service.
    Restart,
}

#[derive(Debug, Args, Default)]
pub struct GatewayStatusArgs {
    #[command(flatten)]
    pub conn: ConnectArgs,
    /// Also list the gateway services of every profile, stale ones (profile gone, port drifted,
    /// binary missing) and OpenClaw's, with cleanup hints.
    #[arg(long)]
    pub deep: bool,
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Base port of the service; also written to gateway.port (validated and conflict-checked).
    #[arg(long, value_name = "N", value_parser = parse_port)]
    pub port: Option<u16>,
    /// Replace an installed service of this profile that differs.
    #[arg(long)]
    pub force: bool,
    /// Print the files it would write and the commands it would run; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The `omniclaw` binary the service runs (default: this one); give an installed one's path.
    #[arg(long, value_name = "PATH")]
    pub binary: Option<PathBuf>,
}

#[derive(Debug, Args, Default)]
pub struct StopArgs {
    /// Who asks for the stop: `cli` (a person) or `rescue` (the rescue bot's /stop). Recorded in
    /// the state dir with the stop, so the rescue's watch never restarts a gateway stopped on
    /// purpose; starting it again clears the record.
    #[arg(long, value_name = "WHO", default_value = "cli", value_parser = ["cli", "rescue"])]
    pub by: String,
}

#[derive(Debug, Args)]
pub struct UninstallArgs {
    /// Print the commands it would run and the files it would remove; change nothing.
    #[arg(long)]
    pub dry_run: bool,
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
pub struct DoctorArgs {
    /// Repair what can be repaired: back up, remove unknown keys, move plaintext secrets into the
    /// keychain, move the profile set up last off a port conflict. Lists every change.
    #[arg(long)]
    pub fix: bool,
    /// With --fix: do not ask for confirmation (needed without a terminal).
    #[arg(long, requires = "fix")]
    pub yes: bool,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check the config strictly and list every problem as `path: message (line:col)`.
    Validate,
    /// Print the value at a dotted path (e.g. `gateway.port`); secrets are redacted.
    Get {
        /// Dotted key path, e.g. `gateway.port` or `browser.profiles.work.cdpPort`.
        path: String,
    },
    /// Set the value at a dotted path; the new config is validated (and checked against every
    /// other profile's ports and paths) before it is written.
    // A negative number is a value (refused by validation, naming the
    // key), not an unknown flag.
    #[command(allow_negative_numbers = true)]
    Set {
        /// Dotted key path, e.g. `gateway.port`.
        path: String,
        /// The value, in JSON5 (e.g. `19789`, `"lan"`, `{enabled: true}`).
        value: String,
        /// Write the edit even when it collides with another profile, an OpenClaw install or a
        /// port another process holds.
        #[arg(long)]
        force: bool,
    },
    /// Remove the key at a dotted path (the default then applies).
    Unset {
        /// Dotted key path.
        path: String,
        /// Write the edit even when it brings a conflict.
        #[arg(long)]
        force: bool,
    },
    /// Print the JSON Schema of omniclaw.json, for editors.
    Schema,
    /// Restore the last known good config (saved after 10 s of healthy running); the current one
    /// is kept as omniclaw.json.rejected.<timestamp>.
    Rollback,
}

/// A provider onboarding offers, by its word.
fn parse_provider(raw: &str) -> Result<omniclaw_onboard::ProviderKind, String> {
    omniclaw_onboard::ProviderKind::parse(raw).ok_or_else(|| {
        let names: Vec<&str> = omniclaw_onboard::ProviderKind::ALL
            .iter()
            .map(|k| k.as_str())
            .collect();
        format!("{raw:?} is not a provider: use one of {}", names.join(", "))
    })
}

/// A provider API, by its config word.
fn parse_api(raw: &str) -> Result<omniclaw_core::config::ProviderApi, String> {
    use omniclaw_core::config::ProviderApi;
    ProviderApi::parse(raw.trim()).ok_or_else(|| {
        format!(
            "{raw:?} is not an API: use one of {}",
            ProviderApi::NAMES.join(", ")
        )
    })
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
