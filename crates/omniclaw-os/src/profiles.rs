//! Loading every profile's config from disk into one inventory.
//!
//! The inventory is what `ports`, `doctor`, `status` and the tray look at:
//! each OmniClaw profile with its paths and config state (missing,
//! unreadable, invalid or valid), and each real OpenClaw install. An
//! invalid config never stops the inventory: diagnostics must work exactly
//! when something is broken.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::Value;

use omniclaw_core::config::{self, ConfigErrors, Loaded};
use omniclaw_core::env::EnvSnapshot;
use omniclaw_core::inventory::{self, InstancePaths};
use omniclaw_core::paths::{self, Resolved};
use omniclaw_core::ports::Instance;
use omniclaw_core::profile::Profile;

use crate::discovery::{self, DiscoveryError};
use crate::runtime::RuntimeInfo;

/// The state of a config file.
#[derive(Debug)]
pub enum ConfigState {
    /// No file yet: `setup` has not run.
    Missing,
    /// The path exists but cannot be read as a file; the message says why and what to do.
    Unreadable(String),
    /// Read and parsed (or not), but not valid. `value` is there when the syntax was fine.
    Invalid {
        text: String,
        errors: ConfigErrors,
        value: Option<Value>,
    },
    Valid {
        text: String,
        loaded: Box<Loaded>,
    },
}

impl ConfigState {
    /// The raw value, when the file parsed (valid or not).
    pub fn value(&self) -> Option<&Value> {
        match self {
            ConfigState::Invalid { value, .. } => value.as_ref(),
            ConfigState::Valid { loaded, .. } => Some(loaded.doc.value()),
            ConfigState::Missing | ConfigState::Unreadable(_) => None,
        }
    }

    pub fn is_valid(&self) -> bool {
        matches!(self, ConfigState::Valid { .. })
    }

    /// The text of the file, when it could be read.
    pub fn text(&self) -> Option<&str> {
        match self {
            ConfigState::Invalid { text, .. } | ConfigState::Valid { text, .. } => Some(text),
            ConfigState::Missing | ConfigState::Unreadable(_) => None,
        }
    }
}

/// Reads and strictly validates the config at `path`.
pub fn read_config(path: &Path) -> ConfigState {
    let text = match read_text(path) {
        Ok(Some(t)) => t,
        Ok(None) => return ConfigState::Missing,
        Err(msg) => return ConfigState::Unreadable(msg),
    };
    match config::load(&text) {
        Ok(loaded) => ConfigState::Valid {
            text,
            loaded: Box::new(loaded),
        },
        Err(errors) => {
            let value = config::parse(&text).ok().map(|d| d.into_value());
            ConfigState::Invalid {
                text,
                errors,
                value,
            }
        }
    }
}

/// The text of a file; `Ok(None)` when it does not exist; `Err` says why it
/// cannot be read, naming the path and the fix.
pub fn read_text(path: &Path) -> Result<Option<String>, String> {
    read_file(path).map_err(|f| f.message(&path.display().to_string()))
}

/// Why a config file exists but cannot be read as text.
#[derive(Debug)]
pub enum ReadFailure {
    /// A directory where the file should be.
    IsDir,
    /// The file is not readable by this user.
    Denied,
    /// A symbolic link that cannot be followed.
    BrokenLink(io::Error),
    /// Any other read error.
    Other(io::Error),
    /// Not UTF-8: the first invalid byte is at `offset`.
    NotUtf8 { offset: usize },
}

impl ReadFailure {
    /// What is wrong with the file `shown`, without a fix.
    pub fn what(&self, shown: &str) -> String {
        match self {
            ReadFailure::IsDir => format!("{shown} is a directory, not a config file"),
            ReadFailure::Denied => format!("cannot read {shown}: permission denied"),
            ReadFailure::BrokenLink(e) => {
                format!("{shown} is a symbolic link that cannot be followed ({e})")
            }
            ReadFailure::Other(e) => format!("cannot read {shown}: {e}"),
            ReadFailure::NotUtf8 { offset } => {
                format!("{shown} is not UTF-8 text (invalid byte at offset {offset})")
            }
        }
    }

    /// What is wrong with a profile's config `shown`, and the fix.
    pub fn message(&self, shown: &str) -> String {
        let what = self.what(shown);
        match self {
            ReadFailure::IsDir => format!(
                "{what}: move it away or point OMNICLAW_CONFIG_PATH at a file"
            ),
            ReadFailure::Denied => {
                format!("{what}; make it readable by this user (chmod u+r)")
            }
            ReadFailure::BrokenLink(_) => {
                format!("{what}: point it at the config file or remove it")
            }
            ReadFailure::Other(_) => {
                format!("{what}; make sure it is a file this user can read")
            }
            ReadFailure::NotUtf8 { .. } => format!(
                "{what}: a config is a JSON5 text file; save it as UTF-8, or move it away and run setup again"
            ),
        }
    }
}

/// Why the file at `path` cannot be read, when it exists and cannot.
pub fn read_failure(path: &Path) -> Option<ReadFailure> {
    read_file(path).err()
}

/// The text of a file; `Ok(None)` when it does not exist.
///
/// The file is opened first and asked about itself (one path lookup per
/// config: `ports` reads a thousand of them); the path is looked at again
/// only to explain a failure.
fn read_file(path: &Path) -> Result<Option<String>, ReadFailure> {
    let unreadable = |e: io::Error| {
        if e.kind() == io::ErrorKind::PermissionDenied {
            ReadFailure::Denied
        } else {
            ReadFailure::Other(e)
        }
    };
    let mut file = match fs::File::open(path) {
        Ok(file) => file,
        // A file where a parent dir should be: the config cannot exist yet.
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(None)
        }
        // Some systems refuse to open a directory at all.
        Err(_) if fs::metadata(path).is_ok_and(|m| m.is_dir()) => return Err(ReadFailure::IsDir),
        Err(e) if is_symlink(path) => return Err(ReadFailure::BrokenLink(e)),
        Err(e) => return Err(unreadable(e)),
    };
    let meta = file.metadata().map_err(unreadable)?;
    if meta.is_dir() {
        return Err(ReadFailure::IsDir);
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    io::Read::read_to_end(&mut file, &mut bytes).map_err(unreadable)?;
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|e| ReadFailure::NotUtf8 {
            offset: e.utf8_error().valid_up_to(),
        })
}

/// `f` over `items`, in order. Reading and validating a config is
/// independent of every other one, so many of them (`ports` over a
/// thousand profiles) are spread over the available cores; a few are read
/// right here.
fn in_parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    const PER_THREAD: usize = 64;
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len() / PER_THREAD)
        .min(8);
    if threads <= 1 {
        return items.iter().map(&f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|scope| {
        let parts: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<R>>()))
            .collect();
        parts
            .into_iter()
            .flat_map(|part| {
                part.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

fn is_symlink(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// One OmniClaw profile on disk.
#[derive(Debug)]
pub struct ProfileRecord {
    pub profile: Profile,
    /// Unique name in reports: the profile name, or `name (state dir)` when
    /// two state dirs claim the same profile.
    pub label: String,
    pub state_dir: PathBuf,
    pub config_path: PathBuf,
    pub workspace: PathBuf,
    /// The profile the command was run for.
    pub is_current: bool,
    /// `setup` has run: the config or the ownership marker exists.
    pub set_up: bool,
    pub config: ConfigState,
    /// Where its gateway runs right now, when it runs (the runtime file,
    /// trusted only while its pid holds the instance lock).
    pub live: Option<RuntimeInfo>,
}

impl ProfileRecord {
    /// The base port its config asks for (the default when it sets none).
    pub fn configured_base(&self) -> Option<u16> {
        self.config
            .value()
            .map(|v| inventory::port_inputs(v, omniclaw_core::paths::DEFAULT_GATEWAY_PORT).base)
    }

    /// `(running on, config says)` when its gateway runs on another base
    /// port than its config names (`--port`, `OMNICLAW_GATEWAY_PORT`).
    pub fn moved(&self) -> Option<(u16, u16)> {
        let live = self.live.as_ref()?.port;
        let configured = self.configured_base()?;
        (live != configured).then_some((live, configured))
    }
}

/// One real OpenClaw install on disk.
#[derive(Debug)]
pub struct ForeignRecord {
    /// `openclaw:.openclaw-work`, as named in reports.
    pub label: String,
    pub dir: PathBuf,
    pub config_path: PathBuf,
    pub workspace: PathBuf,
    pub value: Option<Value>,
    /// Why its config could not be used, when it could not.
    pub problem: Option<String>,
}

/// Every profile and OpenClaw install under one home.
#[derive(Debug)]
pub struct Inventory {
    pub home: PathBuf,
    pub profiles: Vec<ProfileRecord>,
    pub foreign: Vec<ForeignRecord>,
}

impl Inventory {
    /// The instances the port plan and isolation audit compare, profiles first.
    pub fn instances(&self, env: &EnvSnapshot) -> Vec<Instance> {
        let mut out = Vec::with_capacity(self.profiles.len() + self.foreign.len());
        for p in &self.profiles {
            let paths = InstancePaths {
                config_path: p.config_path.clone(),
                state_dir: p.state_dir.clone(),
                workspace: p.workspace.clone(),
            };
            let mut instance = inventory::instance(&p.label, false, p.config.value(), &paths, env);
            if let Some(live) = &p.live {
                // Planned where it runs; its ports are known even when its
                // config cannot be read.
                instance.has_ports = true;
                inventory::apply_live(&mut instance.ports, &live.ports());
            }
            out.push(instance);
        }
        for f in &self.foreign {
            let paths = InstancePaths {
                config_path: f.config_path.clone(),
                state_dir: f.dir.clone(),
                workspace: f.workspace.clone(),
            };
            out.push(inventory::instance(
                &f.label,
                true,
                f.value.as_ref(),
                &paths,
                env,
            ));
        }
        out
    }

    pub fn current(&self) -> Option<&ProfileRecord> {
        self.profiles.iter().find(|p| p.is_current)
    }
}

/// Why the profile `resolved` may not use its state dir or config: the
/// state dir is marked for another profile, or is another profile's default
/// place, or another profile of `inv` uses the same config. The text names
/// the path and the other profile; callers add the fix that suits them.
pub fn ownership_problem(resolved: &Resolved, inv: &Inventory) -> Option<String> {
    if let Some(marker) = discovery::read_marker(&resolved.state_dir) {
        if marker.profile != resolved.profile.name() {
            return Some(format!(
                "the state dir {} belongs to profile {} (see its {}), not to {}",
                resolved.display(&resolved.state_dir),
                marker.profile,
                paths::MARKER_FILE,
                resolved.profile
            ));
        }
    } else if let Some(name) = resolved
        .state_dir
        .file_name()
        .and_then(|n| paths::profile_of_dir_name(&n.to_string_lossy()))
    {
        if name != resolved.profile && resolved.state_dir.parent() == Some(resolved.home.as_path())
        {
            return Some(format!(
                "the state dir {} is the default place of profile {}, not of {}",
                resolved.display(&resolved.state_dir),
                name,
                resolved.profile
            ));
        }
    }
    inv.profiles
        .iter()
        .filter(|p| !p.is_current)
        .find(|other| other.config_path == resolved.config_path)
        .map(|other| {
            format!(
                "the config {} is already used by profile {}: each profile needs its own config",
                resolved.display(&resolved.config_path),
                other.label
            )
        })
}

/// Loads the inventory around the profile `current` resolves to. The current
/// profile is always in it, set up or not, with the paths this shell resolved.
pub fn load(current: &Resolved, _env: &EnvSnapshot) -> Result<Inventory, DiscoveryError> {
    let home = &current.home;
    let (found, foreign_found) = discovery::scan(home)?;
    let mut records: Vec<(Profile, PathBuf, PathBuf, bool)> = found
        .into_iter()
        .map(|f| {
            let is_current = paths::normalize(&f.state_dir) == current.state_dir;
            // This shell's resolution wins for the current profile (its
            // OMNICLAW_CONFIG_PATH may point elsewhere than the marker).
            let config_path = if is_current {
                current.config_path.clone()
            } else {
                f.config_path
            };
            (f.profile, f.state_dir, config_path, is_current)
        })
        .collect();
    // The current profile joins even when it is not set up, so commands can
    // say so -- except an implicit default profile beside named ones, which
    // would only add noise.
    let implicit_default = current.profile.is_default()
        && current.profile_source == paths::Source::Default
        && current.state_dir_source == paths::Source::Default
        && !records.is_empty();
    if !records.iter().any(|r| r.3) && !implicit_default {
        records.push((
            current.profile.clone(),
            current.state_dir.clone(),
            current.config_path.clone(),
            true,
        ));
    }
    let mut claims: std::collections::HashMap<&Profile, usize> = std::collections::HashMap::new();
    for r in &records {
        *claims.entry(&r.0).or_default() += 1;
    }
    let record =
        |(profile, state_dir, config_path, is_current): &(Profile, PathBuf, PathBuf, bool)| {
            let config = read_config(config_path);
            let configured = config.value().and_then(inventory::configured_workspace);
            let workspace = paths::workspace_for(home, profile, config_path, configured);
            let shared_name = claims.get(profile).copied().unwrap_or(0) > 1;
            let label = if shared_name {
                format!("{} ({})", profile.name(), paths::tilde(state_dir, home))
            } else {
                profile.name().to_string()
            };
            ProfileRecord {
                profile: profile.clone(),
                label,
                state_dir: state_dir.clone(),
                config_path: config_path.clone(),
                workspace,
                is_current: *is_current,
                // A config in any state but missing means setup ran; only
                // then is the marker looked for.
                set_up: !matches!(config, ConfigState::Missing)
                    || state_dir.join(paths::MARKER_FILE).exists(),
                config,
                live: crate::runtime::read_live(state_dir),
            }
        };
    let profiles = in_parallel(&records, record);
    let foreign = foreign_found
        .into_iter()
        .map(|f| {
            let dir = f.config_path.parent().unwrap_or(home).to_path_buf();
            // OpenClaw's own file: said what is wrong with it, never told
            // to be moved away or rewritten by setup (callers add the fix).
            let shown = paths::tilde(&f.config_path, home);
            let (value, problem) = match read_file(&f.config_path) {
                Ok(Some(text)) => match config::parse(&text) {
                    Ok(doc) => (Some(doc.into_value()), None),
                    Err(e) => (None, Some(format!("{shown} does not parse: {e}"))),
                },
                Ok(None) => (None, Some(format!("{shown} vanished"))),
                Err(failure) => (None, Some(failure.what(&shown))),
            };
            ForeignRecord {
                label: format!("openclaw:{}", f.dir_name),
                workspace: inventory::foreign_workspace(value.as_ref(), &dir, home),
                dir,
                config_path: f.config_path,
                value,
                problem,
            }
        })
        .collect();
    Ok(Inventory {
        home: home.clone(),
        profiles,
        foreign,
    })
}
