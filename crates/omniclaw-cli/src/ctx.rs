//! What every command starts from: the environment captured once, the
//! working directory, the global flags, the secret store (built once: the OS
//! keychain, or the 0600 secrets file with `--secrets-file`), and the
//! profile they resolve to.

use std::path::PathBuf;

use omniclaw_core::env::EnvSnapshot;
use omniclaw_core::paths::{self, Resolved};
use omniclaw_os::profiles::{self, Inventory};
use omniclaw_os::secrets::{Routed, Scope, SecretStore};

use crate::cli::Cli;
use crate::out::CliError;

pub struct Ctx {
    pub env: EnvSnapshot,
    pub cwd: Option<PathBuf>,
    pub profile_flag: Option<String>,
    pub json: bool,
    /// Where secrets live: per profile, its secrets file when it has one
    /// (or `--secrets-file` was given), the OS keychain otherwise.
    pub store: Routed,
    /// `--secrets-file` was given.
    pub secrets_file: bool,
}

impl Ctx {
    pub fn from_process(cli: &Cli) -> Ctx {
        Ctx::of_process(cli.profile.clone(), cli.json, cli.secrets_file)
    }

    /// The context of this process with these global flags (`--version`
    /// has no parsed command line to take them from).
    pub fn of_process(profile_flag: Option<String>, json: bool, secrets_file: bool) -> Ctx {
        Ctx {
            env: EnvSnapshot::from_vars(
                std::env::vars_os()
                    .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
            ),
            cwd: std::env::current_dir().ok(),
            profile_flag,
            json,
            store: Routed::system(secrets_file),
            secrets_file,
        }
    }

    /// What the config edit path needs to check an edit of `resolved`'s
    /// config against every other profile.
    pub fn edit_target(&self, resolved: &Resolved) -> omniclaw_os::edit::Target {
        omniclaw_os::edit::Target {
            resolved: resolved.clone(),
            env: self.env.clone(),
        }
    }

    /// The secret store scope of a resolved profile.
    pub fn scope(resolved: &Resolved) -> Scope {
        omniclaw_gateway::profile::scope(resolved)
    }

    /// Makes sure a profile kept in the secrets file has its state dir, so
    /// the file can be written (the keychain needs no directory).
    pub fn prepare_store(&self, resolved: &Resolved) -> Result<(), CliError> {
        if self.store.mode(&Ctx::scope(resolved)).kind() != "file" {
            return Ok(());
        }
        omniclaw_os::fsx::create_private_dir(&resolved.state_dir).map_err(|e| {
            CliError::failed(format!(
                "cannot create the state dir {}: {e}",
                resolved.display(&resolved.state_dir)
            ))
        })
    }

    /// The paths of the profile this command speaks about. Bad input here
    /// (a bad profile name, a bad port variable) is a usage error.
    pub fn resolve(&self) -> Result<Resolved, CliError> {
        self.resolve_as(self.profile_flag.as_deref())
    }

    /// The paths of the profile named `name` (`default` for the default
    /// one), as `--profile NAME` would resolve them here.
    pub fn resolve_profile(&self, name: &str) -> Result<Resolved, CliError> {
        self.resolve_as(Some(name))
    }

    fn resolve_as(&self, profile_flag: Option<&str>) -> Result<Resolved, CliError> {
        paths::resolve(paths::Inputs {
            profile_flag,
            env: &self.env,
            cwd: self.cwd.as_deref(),
        })
        .map_err(CliError::usage)
        .map(
            |r| match omniclaw_os::discovery::read_marker(&r.state_dir) {
                Some(m) => r.with_marker(&m.profile, &m.config_path),
                None => r,
            },
        )
    }

    /// Every profile on disk plus this one, and the OpenClaw installs beside them.
    pub fn inventory(&self, current: &Resolved) -> Result<Inventory, CliError> {
        profiles::load(current, &self.env).map_err(CliError::failed)
    }

    /// Prints the resolution notes (ignored inherited variables) on stderr.
    pub fn print_notes(&self, resolved: &Resolved) {
        for note in &resolved.notes {
            eprintln!("note: {note}");
        }
    }
}
