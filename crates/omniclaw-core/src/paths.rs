//! Where a profile lives: home, state dir, config path, workspace, base port.
//!
//! Resolution is a pure function of the `--profile` flag, an environment
//! snapshot and the working directory. Precedence for every setting is
//! explicit flag > environment > config > default, and an explicit
//! `--profile` beats *inherited* path variables: `OMNICLAW_STATE_DIR`,
//! `OMNICLAW_CONFIG_PATH` and `OMNICLAW_GATEWAY_PORT` are honoured together
//! with `--profile P` only when `OMNICLAW_PROFILE` says `P` too (as the
//! service units set it). Otherwise a variable set for one profile would
//! silently redirect another.

use std::path::{Component, Path, PathBuf};

use crate::env::{self, EnvSnapshot};
use crate::profile::{Profile, ProfileError, ServiceNames};

/// The base port of the default profile when nothing else is set.
pub const DEFAULT_GATEWAY_PORT: u16 = 18789;
/// File name of a profile's config inside its state dir.
pub const CONFIG_FILE: &str = "omniclaw.json";
/// File in the state dir that records which profile owns it.
pub const MARKER_FILE: &str = "profile.json";

/// Where a resolved value came from; shown by `status` and `doctor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Flag,
    Env(&'static str),
    Config,
    /// The state dir's `profile.json`, written by `setup`.
    Marker,
    Default,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Flag => f.write_str("flag"),
            Source::Env(name) => write!(f, "env {name}"),
            Source::Config => f.write_str("config"),
            Source::Marker => f.write_str(MARKER_FILE),
            Source::Default => f.write_str("default"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error("{var}: {source}")]
    ProfileEnv {
        var: &'static str,
        source: ProfileError,
    },
    #[error(
        "no home directory: set OMNICLAW_HOME (or {PLATFORM_HOME}) to the directory that holds .omniclaw"
    )]
    NoHome,
    #[error("{var}={value:?} is not a port: use a whole number from 1 to 65535, or unset {var}")]
    BadPortEnv { var: &'static str, value: String },
    #[error("{what} {value:?} is relative and there is no working directory to resolve it against: give an absolute path")]
    Relative { what: &'static str, value: String },
}

/// What resolution starts from: nothing here is read from the process.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// The value of `--profile`, when given.
    pub profile_flag: Option<&'a str>,
    pub env: &'a EnvSnapshot,
    /// Working directory, for relative paths in variables. `None` refuses them.
    pub cwd: Option<&'a Path>,
}

/// The paths of one profile, each with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub profile: Profile,
    pub profile_source: Source,
    pub home: PathBuf,
    pub state_dir: PathBuf,
    pub state_dir_source: Source,
    pub config_path: PathBuf,
    pub config_path_source: Source,
    /// `OMNICLAW_GATEWAY_PORT`, when it applies to this profile.
    pub env_port: Option<u16>,
    /// Variables that were set but ignored, with the reason; print them as notes.
    pub notes: Vec<String>,
}

/// Resolves the paths of the profile a command speaks about.
pub fn resolve(inputs: Inputs<'_>) -> Result<Resolved, PathError> {
    let env = inputs.env;
    let (profile, profile_source) = match (inputs.profile_flag, env.get(env::PROFILE)) {
        (Some(flag), _) => (Profile::parse(flag)?, Source::Flag),
        (None, Some(var)) => (
            Profile::parse(var).map_err(|source| PathError::ProfileEnv {
                var: env::PROFILE,
                source,
            })?,
            Source::Env(env::PROFILE),
        ),
        (None, None) => (Profile::Default, Source::Default),
    };
    let home = home_dir(env, inputs.cwd)?;

    // Path variables belong to the profile named by OMNICLAW_PROFILE (or to the
    // default one when that is unset). An explicit --profile for another
    // profile must not inherit them.
    let env_profile = env
        .get(env::PROFILE)
        .and_then(|p| Profile::parse(p).ok())
        .unwrap_or(Profile::Default);
    let env_applies = profile_source != Source::Flag || env_profile == profile;
    let mut notes = Vec::new();
    let mut scoped = |var: &'static str| -> Option<&str> {
        let value = env.get(var)?;
        if env_applies {
            Some(value)
        } else {
            notes.push(format!(
                "ignoring inherited {var}={value} because --profile {profile} was given; \
                 set OMNICLAW_PROFILE={profile} as well if it is meant for this profile"
            ));
            None
        }
    };
    let state_var = scoped(env::STATE_DIR).map(str::to_owned);
    let config_var = scoped(env::CONFIG_PATH).map(str::to_owned);
    let port_var = scoped(env::GATEWAY_PORT).map(str::to_owned);

    let (state_dir, state_dir_source) = match state_var {
        Some(v) => (
            absolute(&v, &home, inputs.cwd, env::STATE_DIR)?,
            Source::Env(env::STATE_DIR),
        ),
        None => (default_state_dir(&home, &profile), Source::Default),
    };
    // Without any profile given, a state dir named like a profile's
    // (`OMNICLAW_STATE_DIR=~/.omniclaw-main`, as in the manual's env
    // example) makes this that profile, so its workspace and service names
    // stay apart from the default profile's.
    let (profile, profile_source) = match (&profile_source, state_dir_source) {
        (Source::Default, Source::Env(_)) => state_dir
            .file_name()
            .and_then(|n| profile_of_dir_name(&n.to_string_lossy()))
            .map_or((profile, profile_source), |p| {
                (p, Source::Env(env::STATE_DIR))
            }),
        _ => (profile, profile_source),
    };
    let (config_path, config_path_source) = match config_var {
        Some(v) => (
            absolute(&v, &home, inputs.cwd, env::CONFIG_PATH)?,
            Source::Env(env::CONFIG_PATH),
        ),
        None => (state_dir.join(CONFIG_FILE), Source::Default),
    };
    let env_port = match port_var {
        None => None,
        Some(v) => Some(parse_port(&v).ok_or(PathError::BadPortEnv {
            var: env::GATEWAY_PORT,
            value: v,
        })?),
    };
    Ok(Resolved {
        profile,
        profile_source,
        home,
        state_dir,
        state_dir_source,
        config_path,
        config_path_source,
        env_port,
        notes,
    })
}

impl Resolved {
    /// The workspace: `agents.defaults.workspace` when configured (with `~`
    /// expanded and relative paths taken from the config's folder), else
    /// `~/.omniclaw/workspace` or `~/.omniclaw/workspace-NAME`.
    pub fn workspace(&self, configured: Option<&str>) -> (PathBuf, Source) {
        let source = if configured.is_some() {
            Source::Config
        } else {
            Source::Default
        };
        (
            workspace_for(&self.home, &self.profile, &self.config_path, configured),
            source,
        )
    }

    /// Applies the config path recorded in the state dir's marker (read by
    /// the caller) when no variable chose one: a profile set up with
    /// `OMNICLAW_CONFIG_PATH` keeps finding its config without it.
    pub fn with_marker(mut self, marker_profile: &str, marker_config: &Path) -> Resolved {
        if self.config_path_source == Source::Default && marker_profile == self.profile.name() {
            self.config_path = normalize(marker_config);
            self.config_path_source = Source::Marker;
        }
        self
    }

    /// Base port: `--port` > `OMNICLAW_GATEWAY_PORT` > `gateway.port` > 18789.
    pub fn base_port(&self, flag: Option<u16>, configured: Option<u16>) -> (u16, Source) {
        if let Some(p) = flag {
            (p, Source::Flag)
        } else if let Some(p) = self.env_port {
            (p, Source::Env(env::GATEWAY_PORT))
        } else if let Some(p) = configured {
            (p, Source::Config)
        } else {
            (DEFAULT_GATEWAY_PORT, Source::Default)
        }
    }

    pub fn service_names(&self) -> ServiceNames {
        ServiceNames::for_profile(&self.profile)
    }

    pub fn logs_dir(&self) -> PathBuf {
        self.state_dir.join("logs")
    }

    /// The instance lock, one per config path (kept in the state dir).
    pub fn lock_path(&self) -> PathBuf {
        self.state_dir.join("gateway.lock")
    }

    pub fn marker_path(&self) -> PathBuf {
        self.state_dir.join(MARKER_FILE)
    }

    /// A path for display, with the home directory shown as `~`.
    pub fn display(&self, path: &Path) -> String {
        tilde(path, &self.home)
    }
}

/// `~/.omniclaw` for the default profile, `~/.omniclaw-NAME` for a named one.
pub fn default_state_dir(home: &Path, profile: &Profile) -> PathBuf {
    match profile.suffix() {
        None => home.join(".omniclaw"),
        Some(name) => home.join(format!(".omniclaw-{name}")),
    }
}

/// `~/.omniclaw/workspace`, or `~/.omniclaw/workspace-NAME` (postfixed, per the manual).
pub fn default_workspace(home: &Path, profile: &Profile) -> PathBuf {
    match profile.suffix() {
        None => home.join(".omniclaw").join("workspace"),
        Some(name) => home.join(".omniclaw").join(format!("workspace-{name}")),
    }
}

/// The workspace of any profile: `configured` (with `~` expanded and a
/// relative path taken from the config's folder), else the default one.
pub fn workspace_for(
    home: &Path,
    profile: &Profile,
    config_path: &Path,
    configured: Option<&str>,
) -> PathBuf {
    match configured {
        Some(raw) => normalize(&expand_home(raw, home, config_path.parent())),
        None => default_workspace(home, profile),
    }
}

/// The profile a state dir name stands for: `.omniclaw` → default,
/// `.omniclaw-rescue` → rescue; anything else → `None`.
pub fn profile_of_dir_name(name: &str) -> Option<Profile> {
    if name == ".omniclaw" {
        return Some(Profile::Default);
    }
    let suffix = name.strip_prefix(".omniclaw-")?;
    match Profile::parse(suffix) {
        // `.omniclaw-default` is not the default profile's dir; do not adopt it.
        Ok(Profile::Named(n)) if n.as_str() == suffix => Some(Profile::Named(n)),
        _ => None,
    }
}

/// Expands a leading `~` to `home`; a relative result is joined to `base`
/// when one is given.
pub fn expand_home(raw: &str, home: &Path, base: Option<&Path>) -> PathBuf {
    let expanded = if raw == "~" {
        home.to_path_buf()
    } else if let Some(rest) = raw.strip_prefix("~/").or_else(|| raw.strip_prefix("~\\")) {
        home.join(rest)
    } else {
        PathBuf::from(raw)
    };
    match base {
        Some(b) if expanded.is_relative() => b.join(expanded),
        _ => expanded,
    }
}

/// Shows `path` with `home` replaced by `~`.
pub fn tilde(path: &Path, home: &Path) -> String {
    match path.strip_prefix(home) {
        Ok(rest) if rest.as_os_str().is_empty() => "~".to_string(),
        Ok(rest) => format!("~/{}", rest.display()),
        Err(_) => path.display().to_string(),
    }
}

/// Removes `.` and resolves `..` lexically, so two spellings of one path compare equal.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

fn parse_port(raw: &str) -> Option<u16> {
    raw.trim().parse::<u16>().ok().filter(|p| *p != 0)
}

/// The system's own variable for the home directory.
const PLATFORM_HOME: &str = if cfg!(windows) { "USERPROFILE" } else { "HOME" };

fn home_dir(env: &EnvSnapshot, cwd: Option<&Path>) -> Result<PathBuf, PathError> {
    let raw = env
        .get(env::HOME)
        .or_else(|| env.get(PLATFORM_HOME))
        .ok_or(PathError::NoHome)?;
    let path = PathBuf::from(raw);
    match (path.is_relative(), cwd) {
        (false, _) => Ok(normalize(&path)),
        (true, Some(cwd)) => Ok(normalize(&cwd.join(path))),
        (true, None) => Err(PathError::Relative {
            what: "home directory",
            value: raw.to_string(),
        }),
    }
}

fn absolute(
    raw: &str,
    home: &Path,
    cwd: Option<&Path>,
    what: &'static str,
) -> Result<PathBuf, PathError> {
    let p = expand_home(raw, home, cwd);
    if p.is_relative() {
        return Err(PathError::Relative {
            what,
            value: raw.to_string(),
        });
    }
    Ok(normalize(&p))
}

/// `s` as an absolute path of this system, for tests: their tables are
/// written with Unix paths, which get a drive on Windows.
#[cfg(test)]
pub(crate) fn abs_here(s: &str) -> String {
    if cfg!(windows) && s.starts_with('/') {
        format!("C:{s}")
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::paths::abs_here as abs;

    /// `vars` as this system spells them: `HOME` is the platform's home
    /// variable, absolute paths get a drive on Windows.
    fn here(vars: &[(&str, &str)]) -> EnvSnapshot {
        EnvSnapshot::from_vars(vars.iter().map(|(k, v)| {
            let k = if *k == "HOME" { PLATFORM_HOME } else { k };
            (k.to_string(), abs(v))
        }))
    }

    fn env(vars: &[(&str, &str)]) -> EnvSnapshot {
        let mut all = vars.to_vec();
        all.push(("HOME", "/home/u"));
        here(&all)
    }

    struct Want {
        profile: &'static str,
        state: &'static str,
        config: &'static str,
        workspace: &'static str,
    }

    fn check(flag: Option<&str>, vars: &[(&str, &str)], want: Want) {
        let env = env(vars);
        let cwd = abs("/cwd");
        let r = resolve(Inputs {
            profile_flag: flag,
            env: &env,
            cwd: Some(Path::new(&cwd)),
        })
        .unwrap_or_else(|e| panic!("{flag:?} {vars:?}: {e}"));
        assert_eq!(r.profile.name(), want.profile, "{flag:?} {vars:?}");
        assert_eq!(
            r.state_dir,
            PathBuf::from(abs(want.state)),
            "{flag:?} {vars:?}"
        );
        assert_eq!(
            r.config_path,
            PathBuf::from(abs(want.config)),
            "{flag:?} {vars:?}"
        );
        assert_eq!(
            r.workspace(None).0,
            PathBuf::from(abs(want.workspace)),
            "{flag:?} {vars:?}"
        );
    }

    #[test]
    fn resolution_table() {
        check(
            None,
            &[],
            Want {
                profile: "default",
                state: "/home/u/.omniclaw",
                config: "/home/u/.omniclaw/omniclaw.json",
                workspace: "/home/u/.omniclaw/workspace",
            },
        );
        check(
            Some("rescue"),
            &[],
            Want {
                profile: "rescue",
                state: "/home/u/.omniclaw-rescue",
                config: "/home/u/.omniclaw-rescue/omniclaw.json",
                workspace: "/home/u/.omniclaw/workspace-rescue",
            },
        );
        check(
            Some("default"),
            &[],
            Want {
                profile: "default",
                state: "/home/u/.omniclaw",
                config: "/home/u/.omniclaw/omniclaw.json",
                workspace: "/home/u/.omniclaw/workspace",
            },
        );
        check(
            None,
            &[("OMNICLAW_PROFILE", "main")],
            Want {
                profile: "main",
                state: "/home/u/.omniclaw-main",
                config: "/home/u/.omniclaw-main/omniclaw.json",
                workspace: "/home/u/.omniclaw/workspace-main",
            },
        );
        // The manual's env example.
        check(
            None,
            &[
                ("OMNICLAW_CONFIG_PATH", "~/.omniclaw/main.json"),
                ("OMNICLAW_STATE_DIR", "~/.omniclaw-main"),
            ],
            Want {
                profile: "main",
                state: "/home/u/.omniclaw-main",
                config: "/home/u/.omniclaw/main.json",
                workspace: "/home/u/.omniclaw/workspace-main",
            },
        );
        // OMNICLAW_HOME beats HOME; relative variables resolve against cwd.
        check(
            None,
            &[
                ("OMNICLAW_HOME", "/srv/oc"),
                ("OMNICLAW_STATE_DIR", "state/../st"),
            ],
            Want {
                profile: "default",
                state: "/cwd/st",
                config: "/cwd/st/omniclaw.json",
                workspace: "/srv/oc/.omniclaw/workspace",
            },
        );
        // A flag beats the profile variable.
        check(
            Some("rescue"),
            &[("OMNICLAW_PROFILE", "main")],
            Want {
                profile: "rescue",
                state: "/home/u/.omniclaw-rescue",
                config: "/home/u/.omniclaw-rescue/omniclaw.json",
                workspace: "/home/u/.omniclaw/workspace-rescue",
            },
        );
        // Inherited path variables do not redirect an explicit --profile ...
        check(
            Some("rescue"),
            &[("OMNICLAW_STATE_DIR", "/home/u/.omniclaw-main")],
            Want {
                profile: "rescue",
                state: "/home/u/.omniclaw-rescue",
                config: "/home/u/.omniclaw-rescue/omniclaw.json",
                workspace: "/home/u/.omniclaw/workspace-rescue",
            },
        );
        // ... unless they were set for that very profile, as service units do.
        check(
            Some("rescue"),
            &[
                ("OMNICLAW_PROFILE", "rescue"),
                ("OMNICLAW_STATE_DIR", "/var/lib/rescue"),
            ],
            Want {
                profile: "rescue",
                state: "/var/lib/rescue",
                config: "/var/lib/rescue/omniclaw.json",
                workspace: "/home/u/.omniclaw/workspace-rescue",
            },
        );
    }

    #[test]
    fn ignored_variables_are_noted() {
        let env = env(&[
            ("OMNICLAW_STATE_DIR", "/x"),
            ("OMNICLAW_GATEWAY_PORT", "1234"),
        ]);
        let r = resolve(Inputs {
            profile_flag: Some("rescue"),
            env: &env,
            cwd: None,
        })
        .expect("resolves");
        assert_eq!(r.env_port, None);
        assert_eq!(r.notes.len(), 2);
        let note = format!("ignoring inherited OMNICLAW_STATE_DIR={}", abs("/x"));
        assert!(r.notes[0].contains(&note), "{:?}", r.notes);
        assert!(r.notes[1].contains("OMNICLAW_GATEWAY_PORT=1234"));
    }

    #[test]
    fn port_precedence() {
        let with_env = env(&[("OMNICLAW_GATEWAY_PORT", "19001")]);
        let plain = env(&[]);
        let r = |e| {
            resolve(Inputs {
                profile_flag: None,
                env: e,
                cwd: None,
            })
            .expect("resolves")
        };
        assert_eq!(r(&with_env).base_port(Some(1), Some(2)), (1, Source::Flag));
        assert_eq!(
            r(&with_env).base_port(None, Some(2)),
            (19001, Source::Env("OMNICLAW_GATEWAY_PORT"))
        );
        assert_eq!(r(&plain).base_port(None, Some(2)), (2, Source::Config));
        assert_eq!(r(&plain).base_port(None, None), (18789, Source::Default));
    }

    fn check_err(flag: Option<&str>, vars: &[(&str, &str)], fragment: &str) {
        let env = here(vars);
        let err = resolve(Inputs {
            profile_flag: flag,
            env: &env,
            cwd: None,
        })
        .expect_err("must fail");
        assert!(err.to_string().contains(fragment), "{err} lacks {fragment}");
    }

    #[test]
    fn errors() {
        check_err(Some("a b"), &[("HOME", "/h")], "\"a b\" is invalid");
        check_err(
            None,
            &[("HOME", "/h"), ("OMNICLAW_PROFILE", "-x")],
            "OMNICLAW_PROFILE: profile name \"-x\"",
        );
        check_err(None, &[], "no home directory");
        check_err(
            None,
            &[("HOME", "/h"), ("OMNICLAW_GATEWAY_PORT", "abc")],
            "OMNICLAW_GATEWAY_PORT=\"abc\" is not a port",
        );
        check_err(
            None,
            &[("HOME", "/h"), ("OMNICLAW_GATEWAY_PORT", "0")],
            "is not a port",
        );
        check_err(
            None,
            &[("HOME", "/h"), ("OMNICLAW_GATEWAY_PORT", "65536")],
            "is not a port",
        );
        check_err(
            None,
            &[("HOME", "/h"), ("OMNICLAW_STATE_DIR", "rel")],
            "is relative",
        );
    }

    #[test]
    fn workspace_from_config() {
        let env = env(&[]);
        let r = resolve(Inputs {
            profile_flag: Some("main"),
            env: &env,
            cwd: None,
        })
        .expect("resolves");
        let at = |p: &str| PathBuf::from(abs(p));
        assert_eq!(r.workspace(Some("~/ws")).0, at("/home/u/ws"));
        assert_eq!(r.workspace(Some(&abs("/abs/ws"))).0, at("/abs/ws"));
        assert_eq!(r.workspace(Some("ws")).0, at("/home/u/.omniclaw-main/ws"));
    }

    #[test]
    fn dir_names() {
        assert_eq!(profile_of_dir_name(".omniclaw"), Some(Profile::Default));
        assert_eq!(
            profile_of_dir_name(".omniclaw-rescue").map(|p| p.name().to_string()),
            Some("rescue".into())
        );
        assert_eq!(profile_of_dir_name(".omniclaw-Rescue"), None);
        assert_eq!(profile_of_dir_name(".omniclaw-default"), None);
        assert_eq!(profile_of_dir_name(".omniclawx"), None);
        assert_eq!(profile_of_dir_name(".openclaw"), None);
    }

    #[test]
    fn marker_config_applies_only_by_default() {
        let plain = env(&[]);
        let r = resolve(Inputs {
            profile_flag: Some("main"),
            env: &plain,
            cwd: None,
        })
        .expect("resolves");
        let marked = abs("/home/u/.omniclaw/main.json");
        let m = r.clone().with_marker("main", Path::new(&marked));
        assert_eq!(m.config_path, PathBuf::from(&marked));
        assert_eq!(m.config_path_source, Source::Marker);
        let x = abs("/x.json");
        let other = r.clone().with_marker("rescue", Path::new(&x));
        assert_eq!(
            other.config_path, r.config_path,
            "a marker of another profile is ignored"
        );
        let with_var = env(&[("OMNICLAW_CONFIG_PATH", "/y.json")]);
        let r = resolve(Inputs {
            profile_flag: None,
            env: &with_var,
            cwd: None,
        })
        .expect("resolves");
        assert_eq!(
            r.clone().with_marker("default", Path::new(&x)).config_path,
            PathBuf::from(abs("/y.json"))
        );
    }

    #[test]
    fn tilde_display() {
        assert_eq!(
            tilde(Path::new("/home/u/.omniclaw"), Path::new("/home/u")),
            "~/.omniclaw"
        );
        assert_eq!(tilde(Path::new("/etc/x"), Path::new("/home/u")), "/etc/x");
    }
}
