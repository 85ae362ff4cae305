//! What every command starts from: the environment captured once, the
//! working directory, the global flags, and the profile they resolve to.

use std::path::PathBuf;

use omniclaw_core::env::EnvSnapshot;
use omniclaw_core::paths::{self, Resolved};
use omniclaw_os::profiles::{self, Inventory};

use crate::cli::Cli;
use crate::out::CliError;

pub struct Ctx {
    pub env: EnvSnapshot,
    pub cwd: Option<PathBuf>,
    pub profile_flag: Option<String>,
    pub json: bool,
}

impl Ctx {
    pub fn from_process(cli: &Cli) -> Ctx {
        Ctx {
            env: EnvSnapshot::from_vars(
                std::env::vars_os()
                    .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
            ),
            cwd: std::env::current_dir().ok(),
            profile_flag: cli.profile.clone(),
            json: cli.json,
        }
    }

    /// The paths of the profile this command speaks about. Bad input here
    /// (a bad profile name, a bad port variable) is a usage error.
    pub fn resolve(&self) -> Result<Resolved, CliError> {
        paths::resolve(paths::Inputs {
            profile_flag: self.profile_flag.as_deref(),
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
