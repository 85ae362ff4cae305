//! Gateway services: one description of a profile's service, rendered as a
//! systemd user unit, a launchd LaunchAgent or a Windows scheduled task, and
//! read back for `gateway status --deep`.
//!
//! A service runs `omniclaw gateway --port N` with `OMNICLAW_HOME`,
//! `OMNICLAW_PROFILE`, `OMNICLAW_STATE_DIR`, `OMNICLAW_CONFIG_PATH` and
//! `OMNICLAW_GATEWAY_PORT` set explicitly, plus `OMNICLAW_SERVICE=1`, the
//! marker that tells the gateway (and the instance lock) that a service
//! manager owns it. This module must never do IO and never put a secret into
//! a service file: the spec carries no secret at all, and
//! [`secret_problems`] is the one rule for which secrets a service can read.

mod launchd;
mod systemd;
mod windows;

use std::fmt;
use std::path::{Path, PathBuf};

use crate::config::{AuthMode, Config, SecretRef};
use crate::env;
use crate::paths::{Resolved, DEFAULT_GATEWAY_PORT};
use crate::profile::{Profile, ServiceNames};

/// The variable that marks a gateway as started by a service manager.
pub const SERVICE_MARKER: &str = "OMNICLAW_SERVICE";
/// Seconds a service manager waits before restarting a gateway that exited.
pub const RESTART_SECS: u32 = 5;
/// The exit code of `omniclaw gateway` for bad input (usage, a secret the
/// config refers to but the store lacks): a service is not restarted after it.
pub const BAD_INPUT_EXIT: i32 = 2;
/// File names of the service's own output in the profile's log dir.
pub const STDOUT_LOG: &str = "service.out.log";
pub const STDERR_LOG: &str = "service.err.log";

/// The service managers OmniClaw can install a gateway under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Platform {
    /// `systemctl --user` on Linux.
    Systemd,
    /// `launchctl` LaunchAgents on macOS.
    Launchd,
    /// Task Scheduler (`schtasks`) on Windows.
    TaskScheduler,
}

impl Platform {
    /// The service manager of the operating system this binary was built for.
    pub fn native() -> Option<Platform> {
        if cfg!(target_os = "linux") {
            Some(Platform::Systemd)
        } else if cfg!(target_os = "macos") {
            Some(Platform::Launchd)
        } else if cfg!(windows) {
            Some(Platform::TaskScheduler)
        } else {
            None
        }
    }

    /// `systemd`, `launchd` or `schtasks`: the names `OMNICLAW_SERVICE_MANAGER` accepts.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Systemd => "systemd",
            Platform::Launchd => "launchd",
            Platform::TaskScheduler => "schtasks",
        }
    }

    pub fn parse(raw: &str) -> Option<Platform> {
        match raw.to_ascii_lowercase().as_str() {
            "systemd" | "systemctl" => Some(Platform::Systemd),
            "launchd" | "launchctl" => Some(Platform::Launchd),
            "schtasks" | "taskscheduler" | "task-scheduler" => Some(Platform::TaskScheduler),
            _ => None,
        }
    }

    /// The name the service manager knows the service by: the unit file
    /// name, the launchd label or the task name.
    pub fn service_name(self, names: &ServiceNames) -> &str {
        match self {
            Platform::Systemd => &names.systemd_unit,
            Platform::Launchd => &names.launchd_label,
            Platform::TaskScheduler => &names.windows_task,
        }
    }

    /// `base` with `parts` appended, with the separator `base` itself uses:
    /// `\` after a drive letter or UNC path, `/` after a path starting
    /// with `/`, else the platform's own. Never the host's: the same home
    /// gives the same service paths whichever system renders them.
    pub fn join(self, base: &Path, parts: &[&str]) -> PathBuf {
        let sep = if Platform::TaskScheduler.is_absolute(base) {
            '\\'
        } else if Platform::Systemd.is_absolute(base) {
            '/'
        } else {
            match self {
                Platform::Systemd | Platform::Launchd => '/',
                Platform::TaskScheduler => '\\',
            }
        };
        let mut out = base.as_os_str().to_os_string();
        for part in parts {
            if !out.to_string_lossy().ends_with(sep) {
                out.push(sep.to_string());
            }
            out.push(part);
        }
        PathBuf::from(out)
    }

    /// Whether `path` is absolute on the target platform: a leading `/` for
    /// systemd and launchd; a drive letter (`C:\`) or a UNC path
    /// (`\\server\share`) for Task Scheduler. The host's own rule does not
    /// count.
    pub fn is_absolute(self, path: &Path) -> bool {
        let s = path.to_string_lossy();
        match self {
            Platform::Systemd | Platform::Launchd => s.starts_with('/'),
            Platform::TaskScheduler => {
                let b = s.as_bytes();
                (b.len() > 2
                    && b[0].is_ascii_alphabetic()
                    && b[1] == b':'
                    && matches!(b[2], b'\\' | b'/'))
                    || s.starts_with("\\\\")
            }
        }
    }

    /// Where this platform's service definitions live under `home`.
    pub fn service_dir(self, home: &Path) -> PathBuf {
        match self {
            Platform::Systemd => self.join(home, &[".config", "systemd", "user"]),
            Platform::Launchd => self.join(home, &["Library", "LaunchAgents"]),
            // Task Scheduler keeps its own copy of a task; the XML handed to
            // it and the launcher script it runs are kept here.
            Platform::TaskScheduler => {
                self.join(home, &["AppData", "Local", "OmniClaw", "services"])
            }
        }
    }

    /// The file the service manager is handed (unit, plist or task XML).
    pub fn definition_path(self, home: &Path, names: &ServiceNames) -> PathBuf {
        let dir = self.service_dir(home);
        match self {
            Platform::Systemd => self.join(&dir, &[&names.systemd_unit]),
            Platform::Launchd => self.join(&dir, &[&format!("{}.plist", names.launchd_label)]),
            Platform::TaskScheduler => self.join(&dir, &[&format!("{}.xml", windows::stem(names))]),
        }
    }

    /// The file that carries the service's command line and environment:
    /// the definition itself, or on Windows the launcher script the task runs.
    pub fn command_path(self, home: &Path, names: &ServiceNames) -> PathBuf {
        match self {
            Platform::TaskScheduler => self.join(
                &self.service_dir(home),
                &[&format!("{}.cmd", windows::stem(names))],
            ),
            _ => self.definition_path(home, names),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Platform::Systemd => "systemd user unit",
            Platform::Launchd => "launchd agent",
            Platform::TaskScheduler => "scheduled task",
        })
    }
}

/// Why a service cannot be described.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("the {what} {path:?} is not valid UTF-8: service files are text; move it to a path without such characters")]
    NotUtf8 { what: &'static str, path: PathBuf },
    #[error("the {what} {path:?} contains a control character (newline, tab, ...), which a service file cannot hold: use a path without one")]
    ControlCharacter { what: &'static str, path: String },
    #[error(
        "the binary path {path:?} is not an absolute path for a {platform} ({}): a service needs the absolute path of `omniclaw`; give it with --binary",
        absolute_form(*platform)
    )]
    RelativeBinary { path: PathBuf, platform: Platform },
    #[error("profile `gateway` would get the launchd label ai.omniclaw.gateway, which belongs to the default profile: use another profile name on macOS")]
    LabelClash,
}

fn absolute_form(platform: Platform) -> &'static str {
    match platform {
        Platform::Systemd | Platform::Launchd => "one starting with /",
        Platform::TaskScheduler => {
            "one with a drive letter, C:\\..., or a UNC path, \\\\server\\share\\..."
        }
    }
}

/// Everything a service of one profile needs; it holds no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    pub profile: Profile,
    pub names: ServiceNames,
    /// Absolute path of the `omniclaw` binary the service runs.
    pub binary: PathBuf,
    pub port: u16,
    pub home: PathBuf,
    pub state_dir: PathBuf,
    pub config_path: PathBuf,
    pub stdout_log: PathBuf,
    pub stderr_log: PathBuf,
    /// Windows only: `DOMAIN\user` the task runs as (at that user's log on).
    pub windows_user: Option<String>,
}

/// Text encodings of service files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    /// UTF-16 little endian with a byte-order mark, as Task Scheduler writes its own XML.
    Utf16Le,
}

/// One file of a rendered service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceFile {
    pub path: PathBuf,
    pub contents: String,
    pub encoding: Encoding,
}

impl ServiceFile {
    /// The bytes to write.
    pub fn bytes(&self) -> Vec<u8> {
        match self.encoding {
            Encoding::Utf8 => self.contents.as_bytes().to_vec(),
            Encoding::Utf16Le => {
                let mut out = vec![0xFF, 0xFE];
                out.extend(self.contents.encode_utf16().flat_map(u16::to_le_bytes));
                out
            }
        }
    }

    /// Reads bytes written by [`ServiceFile::bytes`] (or by hand) back to text.
    pub fn decode(bytes: &[u8]) -> Option<String> {
        match bytes {
            [0xFF, 0xFE, rest @ ..] => {
                let units: Vec<u16> = rest
                    .chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]))
                    .collect();
                String::from_utf16(&units).ok()
            }
            [0xEF, 0xBB, 0xBF, rest @ ..] => String::from_utf8(rest.to_vec()).ok(),
            other => String::from_utf8(other.to_vec()).ok(),
        }
    }
}

impl ServiceSpec {
    /// The service of `resolved`'s profile running `binary` on base `port`.
    pub fn for_profile(resolved: &Resolved, binary: &Path, port: u16) -> ServiceSpec {
        let logs = resolved.logs_dir();
        ServiceSpec {
            profile: resolved.profile.clone(),
            names: resolved.service_names(),
            binary: binary.to_path_buf(),
            port,
            home: resolved.home.clone(),
            state_dir: resolved.state_dir.clone(),
            config_path: resolved.config_path.clone(),
            stdout_log: logs.join(STDOUT_LOG),
            stderr_log: logs.join(STDERR_LOG),
            windows_user: None,
        }
    }

    /// The arguments after the binary.
    pub fn args(&self) -> Vec<String> {
        vec!["gateway".into(), "--port".into(), self.port.to_string()]
    }

    /// The environment every service sets, in this order.
    pub fn env(&self) -> Result<Vec<(&'static str, String)>, SpecError> {
        Ok(vec![
            (env::HOME, text("home directory", &self.home)?),
            (env::PROFILE, self.profile.name().to_string()),
            (env::STATE_DIR, text("state dir", &self.state_dir)?),
            (env::CONFIG_PATH, text("config path", &self.config_path)?),
            (env::GATEWAY_PORT, self.port.to_string()),
            (SERVICE_MARKER, "1".to_string()),
        ])
    }

    /// Human description shown by the service manager.
    pub fn description(&self) -> String {
        format!("OmniClaw gateway (profile {})", self.profile)
    }

    /// The `omniclaw` command line that manages this service, for comments.
    pub fn command(&self) -> String {
        match self.profile.suffix() {
            None => "omniclaw".to_string(),
            Some(n) => format!("omniclaw --profile {n}"),
        }
    }

    /// Refuses what `platform` (the target, not the host) cannot run;
    /// `preview` lets a binary path of another system through.
    fn checked(&self, platform: Platform, preview: bool) -> Result<(), SpecError> {
        if !preview && !platform.is_absolute(&self.binary) {
            return Err(SpecError::RelativeBinary {
                path: self.binary.clone(),
                platform,
            });
        }
        text("binary path", &self.binary)?;
        text("log file", &self.stdout_log)?;
        text("log file", &self.stderr_log)?;
        self.env().map(|_| ())
    }

    /// Renders the files of this service for `platform`, the definition first.
    pub fn render(&self, platform: Platform) -> Result<Vec<ServiceFile>, SpecError> {
        self.render_checked(platform, false)
    }

    /// Renders like [`ServiceSpec::render`] for showing another system's
    /// service from this one (`--dry-run` with another service manager
    /// chosen): the binary is this system's, so its path need not be
    /// absolute on `platform`. Never for files that are installed.
    pub fn preview(&self, platform: Platform) -> Result<Vec<ServiceFile>, SpecError> {
        self.render_checked(platform, true)
    }

    fn render_checked(
        &self,
        platform: Platform,
        preview: bool,
    ) -> Result<Vec<ServiceFile>, SpecError> {
        self.checked(platform, preview)?;
        match platform {
            Platform::Systemd => Ok(vec![ServiceFile {
                path: platform.definition_path(&self.home, &self.names),
                contents: systemd::render(self)?,
                encoding: Encoding::Utf8,
            }]),
            Platform::Launchd => {
                if self.profile.name() == "gateway" {
                    return Err(SpecError::LabelClash);
                }
                Ok(vec![ServiceFile {
                    path: platform.definition_path(&self.home, &self.names),
                    contents: launchd::render(self)?,
                    encoding: Encoding::Utf8,
                }])
            }
            Platform::TaskScheduler => {
                let script = platform.command_path(&self.home, &self.names);
                Ok(vec![
                    ServiceFile {
                        path: platform.definition_path(&self.home, &self.names),
                        contents: windows::render_task(self, &text("launcher", &script)?)?,
                        encoding: Encoding::Utf16Le,
                    },
                    ServiceFile {
                        path: script,
                        contents: windows::render_script(self)?,
                        encoding: Encoding::Utf8,
                    },
                ])
            }
        }
    }
}

/// A path as text, refusing what no service file can hold.
fn text(what: &'static str, path: &Path) -> Result<String, SpecError> {
    let s = path.to_str().ok_or_else(|| SpecError::NotUtf8 {
        what,
        path: path.to_path_buf(),
    })?;
    if s.chars().any(char::is_control) {
        return Err(SpecError::ControlCharacter {
            what,
            path: s.escape_debug().to_string(),
        });
    }
    Ok(s.to_string())
}

/// What an installed service file says, read back by [`parse`]. Every field
/// is optional: a hand-edited or foreign file may lack any of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Installed {
    pub binary: Option<PathBuf>,
    /// `OMNICLAW_HOME`.
    pub home: Option<PathBuf>,
    /// `--port` of the command line, else `OMNICLAW_GATEWAY_PORT`.
    pub port: Option<u16>,
    pub profile: Option<String>,
    pub state_dir: Option<PathBuf>,
    pub config_path: Option<PathBuf>,
    /// `OMNICLAW_SERVICE` is set: OmniClaw wrote it.
    pub marked: bool,
}

impl Installed {
    fn from_parts(argv: Vec<String>, vars: Vec<(String, String)>) -> Installed {
        let get = |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let flag_port = argv
            .windows(2)
            .find(|w| w[0] == "--port")
            .and_then(|w| w[1].parse().ok());
        Installed {
            binary: argv.first().map(PathBuf::from),
            home: get(env::HOME).map(PathBuf::from),
            port: flag_port.or_else(|| get(env::GATEWAY_PORT).and_then(|p| p.parse().ok())),
            profile: get(env::PROFILE),
            state_dir: get(env::STATE_DIR).map(PathBuf::from),
            config_path: get(env::CONFIG_PATH).map(PathBuf::from),
            marked: get(SERVICE_MARKER).is_some(),
        }
    }
}

/// Reads the command line and environment back from a service's command file
/// (unit, plist or launcher script).
pub fn parse(platform: Platform, text: &str) -> Installed {
    let (argv, vars) = match platform {
        Platform::Systemd => systemd::parse(text),
        Platform::Launchd => launchd::parse(text),
        Platform::TaskScheduler => windows::parse_script(text),
    };
    Installed::from_parts(argv, vars)
}

/// Whose service a file or task is, by its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// An OmniClaw gateway service of this profile.
    OmniClaw(Profile),
    /// A gateway service of OpenClaw (the peer system), not ours to manage.
    OpenClaw,
}

/// Classifies a service by its file name (systemd unit, plist, launcher
/// script) or, for Task Scheduler, by its task name. `None`: not a gateway.
pub fn classify(platform: Platform, name: &str) -> Option<Owner> {
    let named = |suffix: &str| match Profile::parse(suffix) {
        // `default` spelled out is not the default profile's name for a service.
        Ok(p @ Profile::Named(_)) if p.name() == suffix => Some(Owner::OmniClaw(p)),
        _ => None,
    };
    match platform {
        Platform::Systemd => {
            let stem = name.strip_suffix(".service")?;
            if stem.starts_with("openclaw-gateway") {
                return Some(Owner::OpenClaw);
            }
            match stem.strip_prefix("omniclaw-gateway")? {
                "" => Some(Owner::OmniClaw(Profile::Default)),
                rest => named(rest.strip_prefix('-')?),
            }
        }
        Platform::Launchd => {
            let label = name.strip_suffix(".plist").unwrap_or(name);
            if label.starts_with("ai.openclaw.") {
                return Some(Owner::OpenClaw);
            }
            match label.strip_prefix("ai.omniclaw.")? {
                "gateway" => Some(Owner::OmniClaw(Profile::Default)),
                rest => named(rest),
            }
        }
        Platform::TaskScheduler => {
            let task = name.trim_start_matches('\\');
            if task.starts_with("OpenClaw Gateway") {
                return Some(Owner::OpenClaw);
            }
            if let Some(stem) = task.strip_suffix(".cmd") {
                return match stem.strip_prefix("omniclaw-gateway")? {
                    "" => Some(Owner::OmniClaw(Profile::Default)),
                    rest => named(rest.strip_prefix('-')?),
                };
            }
            match task.strip_prefix("OmniClaw Gateway")? {
                "" => Some(Owner::OmniClaw(Profile::Default)),
                rest => named(rest.strip_prefix(" (")?.strip_suffix(')')?),
            }
        }
    }
}

/// How to remove a foreign (OpenClaw) gateway service that is no longer used.
pub fn foreign_cleanup(platform: Platform, name: &str, path: Option<&Path>) -> String {
    let file = path.map(|p| p.display().to_string());
    match platform {
        Platform::Systemd => format!(
            "if that OpenClaw gateway is no longer used: `systemctl --user disable --now {name}`, remove {}, then `systemctl --user daemon-reload`",
            file.unwrap_or_else(|| format!("~/.config/systemd/user/{name}"))
        ),
        Platform::Launchd => {
            let label = name.strip_suffix(".plist").unwrap_or(name);
            format!(
                "if that OpenClaw gateway is no longer used: `launchctl bootout gui/$(id -u)/{label}`, then remove {}",
                file.unwrap_or_else(|| format!("~/Library/LaunchAgents/{label}.plist"))
            )
        }
        Platform::TaskScheduler => format!(
            "if that OpenClaw gateway is no longer used: `schtasks /End /TN \"{name}\"` and `schtasks /Delete /TN \"{name}\" /F`"
        ),
    }
}

/// What the caller found on disk about an installed OmniClaw service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// The profile the file name says.
    pub profile: Profile,
    /// The profile's state dir (from the file, else the default place) exists.
    pub state_dir_exists: bool,
    /// The binary the service runs exists.
    pub binary_exists: bool,
    /// The base port the profile's config gives (`None`: config unreadable or missing).
    pub config_port: Option<u16>,
}

/// Why an installed service no longer fits its profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stale {
    /// The state dir the service points at is gone.
    ProfileGone { state_dir: Option<PathBuf> },
    /// The service runs another port than the config says.
    PortDrift { service: u16, config: u16 },
    /// The binary the service runs does not exist.
    BinaryMissing { binary: Option<PathBuf> },
    /// The file names one profile but its environment says another.
    ProfileMismatch { file: String, env: String },
    /// No `OMNICLAW_SERVICE` marker: not written by `gateway install`.
    Unmarked,
    /// It runs another binary than `gateway install` would write now (an
    /// older build folder, a binary since installed from a package).
    BinaryDiffers { service: PathBuf, now: PathBuf },
    /// Its command and environment match, but the file differs from what
    /// `gateway install` writes now: an older OmniClaw wrote it (without
    /// `ConditionPathExists=`, say), or it was edited by hand.
    Outdated,
    /// An environment variable differs from what `gateway install` would write now.
    EnvDiffers {
        key: &'static str,
        service: Option<PathBuf>,
        now: PathBuf,
    },
}

impl fmt::Display for Stale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |p: &Option<PathBuf>| p.as_ref().map_or("?".into(), |p| p.display().to_string());
        match self {
            Stale::ProfileGone { state_dir } => {
                write!(
                    f,
                    "its state dir {} is gone (profile removed)",
                    show(state_dir)
                )
            }
            Stale::PortDrift { service, config } => write!(
                f,
                "it runs port {service} but the config says gateway.port {config}"
            ),
            Stale::BinaryMissing { binary } => {
                write!(f, "the binary {} it runs does not exist", show(binary))
            }
            Stale::ProfileMismatch { file, env } => write!(
                f,
                "its file is named for profile {file} but it sets OMNICLAW_PROFILE={env}"
            ),
            Stale::Unmarked => f.write_str(
                "it lacks OMNICLAW_SERVICE=1, so it was not written by `gateway install`",
            ),
            Stale::BinaryDiffers { service, now } => write!(
                f,
                "it runs {} but `gateway install` would now write {}",
                service.display(),
                now.display()
            ),
            Stale::Outdated => f.write_str(
                "its file differs from what `gateway install` writes now (an older OmniClaw wrote it, or it was edited)",
            ),
            Stale::EnvDiffers { key, service, now } => write!(
                f,
                "it sets {key}={} but `gateway install` would now write {}",
                show(service),
                now.display()
            ),
        }
    }
}

/// Every reason an installed OmniClaw service is stale; empty when it fits.
pub fn stale_reasons(installed: &Installed, facts: &Facts) -> Vec<Stale> {
    let mut out = Vec::new();
    if let Some(env_profile) = &installed.profile {
        let same = Profile::parse(env_profile).is_ok_and(|p| p == facts.profile);
        if !same {
            out.push(Stale::ProfileMismatch {
                file: facts.profile.name().to_string(),
                env: env_profile.clone(),
            });
        }
    }
    if !installed.marked {
        out.push(Stale::Unmarked);
    }
    if !facts.state_dir_exists {
        out.push(Stale::ProfileGone {
            state_dir: installed.state_dir.clone(),
        });
    } else if let (Some(service), Some(config)) = (installed.port, facts.config_port) {
        if service != config {
            out.push(Stale::PortDrift { service, config });
        }
    }
    if !facts.binary_exists {
        out.push(Stale::BinaryMissing {
            binary: installed.binary.clone(),
        });
    }
    out
}

/// How an installed service differs from what `gateway install` would
/// write now: its binary against `binary` (the one the install rule picks
/// today, see [`crate::executable`]), and, given the spec `gateway install`
/// would render for this profile, its home, state dir and config path. The
/// port is [`Stale::PortDrift`]'s (see [`stale_reasons`]). A value the file
/// lacks is not compared: [`stale_reasons`] reports an unmarked file.
pub fn drift(
    installed: &Installed,
    binary: Option<&Path>,
    spec: Option<&ServiceSpec>,
) -> Vec<Stale> {
    let mut out = Vec::new();
    if let (Some(service), Some(now)) = (&installed.binary, binary) {
        if crate::paths::normalize(service) != crate::paths::normalize(now) {
            out.push(Stale::BinaryDiffers {
                service: service.clone(),
                now: now.to_path_buf(),
            });
        }
    }
    let Some(spec) = spec else {
        return out;
    };
    for (key, service, now) in [
        (env::HOME, &installed.home, &spec.home),
        (env::STATE_DIR, &installed.state_dir, &spec.state_dir),
        (env::CONFIG_PATH, &installed.config_path, &spec.config_path),
    ] {
        if service.as_ref().is_some_and(|s| s != now) {
            out.push(Stale::EnvDiffers {
                key,
                service: service.clone(),
                now: now.clone(),
            });
        }
    }
    out
}

/// [`Stale::Outdated`] when `installed_text`, the service's command file
/// (unit, plist or launcher script), is not what `spec` renders for
/// `platform` now. Meant for a service [`drift`] and [`stale_reasons`] find
/// nothing wrong with, so `spec` carries its binary, port and paths.
pub fn outdated(spec: &ServiceSpec, platform: Platform, installed_text: &str) -> Option<Stale> {
    let command = platform.command_path(&spec.home, &spec.names);
    let files = spec.render(platform).ok()?;
    let now = files.iter().find(|f| f.path == command)?;
    (now.contents != installed_text).then_some(Stale::Outdated)
}

/// The fix for stale services: reinstall (or uninstall) through the profile.
pub fn stale_fix(profile: &Profile, reasons: &[Stale]) -> String {
    let cmd = match profile.suffix() {
        None => "omniclaw".to_string(),
        Some(n) => format!("omniclaw --profile {n}"),
    };
    if reasons
        .iter()
        .any(|r| matches!(r, Stale::ProfileGone { .. }))
    {
        format!("`{cmd} gateway uninstall` removes it")
    } else {
        format!("`{cmd} gateway install --force` rewrites it from the config (or `{cmd} gateway uninstall`)")
    }
}

/// The base port a profile's service should run, from its config alone
/// (the environment of the shell that installed it does not count).
pub fn config_port(config: &Config) -> u16 {
    config.gateway_port().unwrap_or(DEFAULT_GATEWAY_PORT)
}

/// What decides whether a service can read a keychain secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretAccess {
    pub platform: Platform,
    /// A login session keyring is there now (Linux: a session D-Bus bus for
    /// the Secret Service; macOS: the user's GUI login session).
    pub session_keyring: bool,
    /// The profile keeps its secrets in its own 0600 file in the state dir
    /// (headless machines) instead of the OS keychain.
    pub secrets_file: bool,
}

/// A secret the service's gateway needs but could not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretProblem {
    /// `"${VAR}"`: a service does not inherit the installing shell's variables.
    EnvReference { key: String, var: String },
    /// A keychain reference with no login session keyring to read it from.
    KeychainUnavailable { key: String },
    /// The auth mode needs a secret and none is configured (the service cannot take `--token`).
    Missing { key: String },
    /// The config refers to the store, and the store holds no value for the key.
    NotStored { key: String, store: String },
    /// The store the service would read could not be read now (unreachable
    /// keychain, a secrets file with the wrong mode, ...).
    Unreadable {
        key: String,
        store: String,
        reason: String,
    },
}

impl SecretProblem {
    pub fn key(&self) -> &str {
        match self {
            SecretProblem::EnvReference { key, .. }
            | SecretProblem::KeychainUnavailable { key }
            | SecretProblem::Missing { key }
            | SecretProblem::NotStored { key, .. }
            | SecretProblem::Unreadable { key, .. } => key,
        }
    }

    /// The message with its fix; `command` is `omniclaw [--profile P]`.
    pub fn explain(&self, command: &str) -> String {
        let key = self.key();
        match self {
            SecretProblem::EnvReference { var, .. } => format!(
                "{key} refers to the environment variable {var}, which a service does not inherit from your shell; \
                 store the secret in the keychain (`{command} config set {key} '{{source: \"keychain\"}}'` once the keychain holds it) \
                 or write it into the config (`{command} config set {key} '\"…\"'`; `{command} doctor` will flag it)"
            ),
            SecretProblem::KeychainUnavailable { .. } => format!(
                "{key} is in the keychain, and a service can read it only while a login session keyring exists, \
                 which this session lacks; install from a desktop session of this user, \
                 keep the profile's secrets in its own file (`{command} --secrets-file secrets set {key}`), \
                 or write the secret into the config (`{command} config set {key} '\"…\"'`)"
            ),
            SecretProblem::Missing { .. } => format!(
                "{key} is not set, and a service cannot be given --token or OMNICLAW_GATEWAY_TOKEN; \
                 set it in the config (`{command} config set {key} '\"…\"'`) or the keychain"
            ),
            SecretProblem::NotStored { store, .. } => format!(
                "{key} refers to the {store}, which holds no value for it, so the service would fail at every start; \
                 store it with `{command} secrets set {key}`, then install again"
            ),
            SecretProblem::Unreadable { store, reason, .. } => format!(
                "{key} refers to the {store}, which cannot be read now ({reason}); \
                 the service would fail at every start: fix the store (or store the secret with `{command} secrets set {key}`), then install again"
            ),
        }
    }
}

/// What the store a service will use says about one secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// A value is stored (the value itself is never handed in).
    Stored,
    /// No value is stored; `store` names the store (`OS keychain`, `secrets file …`).
    NotStored { store: String },
    /// The store could not be read, and why.
    Unreadable { store: String, reason: String },
}

/// Whether a service can read `secret`. The rule, in one place so it can be
/// refined: plaintext in the config always (doctor flags it); an
/// environment reference never (the service's environment is only what its
/// unit sets); a keychain reference on Windows always (Credential Manager
/// belongs to the user the task runs as), on Linux and macOS only while a
/// login session keyring exists; a profile that keeps its secrets in its
/// own secrets file instead of the keychain always. Whether the store holds
/// the value is asked separately (see [`secret_problems`]).
pub fn service_can_read(secret: &SecretRef, access: &SecretAccess) -> bool {
    match secret {
        SecretRef::Plain(_) => true,
        SecretRef::Env(_) => false,
        SecretRef::Keychain if access.secrets_file => true,
        SecretRef::Keychain => match access.platform {
            Platform::TaskScheduler => true,
            Platform::Systemd | Platform::Launchd => access.session_keyring,
        },
    }
}

/// The secret keys the gateway of `config` reads at start, with how the
/// config refers to each (`None`: the auth mode needs one and none is set).
fn needed_secrets(config: &Config) -> Vec<(String, Option<&SecretRef>)> {
    let mut needed: Vec<(String, Option<&SecretRef>)> = Vec::new();
    match config.auth_mode() {
        AuthMode::None => {}
        AuthMode::Token => needed.push((
            "gateway.auth.token".into(),
            config.gateway.auth.token.as_ref(),
        )),
        AuthMode::Password => needed.push((
            "gateway.auth.password".into(),
            config.gateway.auth.password.as_ref(),
        )),
    }
    let telegram = &config.channels.telegram;
    if telegram.enabled != Some(false) {
        if let Some(t) = telegram.bot_token.as_ref() {
            needed.push(("channels.telegram.botToken".into(), Some(t)));
        }
    }
    // Model providers' keys and headers: read at each call, needed all the same.
    needed.extend(
        config
            .provider_secrets()
            .into_iter()
            .map(|(path, secret)| (path, Some(secret))),
    );
    needed
}

/// The secrets the gateway of `config` reads at start from a keychain that
/// opens only with the user's login session (Linux's Secret Service, the
/// macOS login keychain): until the user logs in, its service cannot start,
/// lingering or not. Empty when it reads them without a session (its
/// secrets file, plaintext, no auth, or Windows' Credential Manager).
pub fn session_secrets(config: &Config, access: &SecretAccess) -> Vec<String> {
    if access.secrets_file || access.platform == Platform::TaskScheduler {
        return Vec::new();
    }
    needed_secrets(config)
        .into_iter()
        .filter(|(_, secret)| matches!(secret, Some(SecretRef::Keychain)))
        .map(|(key, _)| key)
        .collect()
}

/// The secrets the gateway of `config` reads at start that a service could
/// not read. A keychain reference the service can reach is looked up with
/// `lookup` (the caller asks the store the service will use: its secrets
/// file, else the keychain), so a reference to nothing is refused too.
/// Empty: the service can start.
pub fn secret_problems(
    config: &Config,
    access: &SecretAccess,
    lookup: &mut dyn FnMut(&str) -> Lookup,
) -> Vec<SecretProblem> {
    needed_secrets(config)
        .into_iter()
        .filter_map(|(key, secret)| match secret {
            None => Some(SecretProblem::Missing { key }),
            Some(SecretRef::Plain(_)) => None,
            Some(SecretRef::Env(var)) => Some(SecretProblem::EnvReference {
                key,
                var: var.clone(),
            }),
            Some(s @ SecretRef::Keychain) if !service_can_read(s, access) => {
                Some(SecretProblem::KeychainUnavailable { key })
            }
            Some(SecretRef::Keychain) => match lookup(&key) {
                Lookup::Stored => None,
                Lookup::NotStored { store } => Some(SecretProblem::NotStored { key, store }),
                Lookup::Unreadable { store, reason } => {
                    Some(SecretProblem::Unreadable { key, store, reason })
                }
            },
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config;

    #[test]
    fn session_secrets_are_keychain_secrets_outside_windows_and_secrets_files() {
        let check = |text: &str, platform: Platform, secrets_file: bool, expected: &[&str]| {
            let loaded = config::load(text).expect("valid");
            let access = SecretAccess {
                platform,
                session_keyring: true,
                secrets_file,
            };
            assert_eq!(
                session_secrets(&loaded.config, &access),
                expected,
                "{text} {platform:?} file={secrets_file}"
            );
        };
        let keychain = "{gateway: {auth: {token: {source: 'keychain'}}}, channels: {telegram: {botToken: {source: 'keychain'}}}}";
        let both = ["gateway.auth.token", "channels.telegram.botToken"];
        check(keychain, Platform::Systemd, false, &both);
        check(keychain, Platform::Launchd, false, &both);
        check(keychain, Platform::Systemd, true, &[]);
        check(keychain, Platform::TaskScheduler, false, &[]);
        check(
            "{gateway: {auth: {token: 't'}}}",
            Platform::Systemd,
            false,
            &[],
        );
        check(
            "{gateway: {auth: {token: 't'}}, channels: {telegram: {botToken: {source: 'keychain'}}}}",
            Platform::Systemd,
            false,
            &["channels.telegram.botToken"],
        );
    }

    /// A spec with literal paths, so the rendered files are the same on every OS.
    pub(crate) fn spec(profile: &str, unix: bool) -> ServiceSpec {
        let profile = Profile::parse(profile).expect("valid profile");
        let names = ServiceNames::for_profile(&profile);
        let dir = match profile.suffix() {
            None => ".omniclaw".to_string(),
            Some(n) => format!(".omniclaw-{n}"),
        };
        let port = if profile.is_default() { 18789 } else { 19789 };
        if unix {
            ServiceSpec {
                profile,
                names,
                binary: PathBuf::from("/opt/omni claw/bin/omniclaw"),
                port,
                home: PathBuf::from("/home/u"),
                state_dir: PathBuf::from(format!("/home/u/{dir}")),
                config_path: PathBuf::from(format!("/home/u/{dir}/omniclaw.json")),
                stdout_log: PathBuf::from(format!("/home/u/{dir}/logs/service.out.log")),
                stderr_log: PathBuf::from(format!("/home/u/{dir}/logs/service.err.log")),
                windows_user: None,
            }
        } else {
            ServiceSpec {
                profile,
                names,
                binary: PathBuf::from(r"C:\Program Files\OmniClaw\omniclaw.exe"),
                port,
                home: PathBuf::from(r"C:\Users\u"),
                state_dir: PathBuf::from(format!(r"C:\Users\u\{dir}")),
                config_path: PathBuf::from(format!(r"C:\Users\u\{dir}\omniclaw.json")),
                stdout_log: PathBuf::from(format!(r"C:\Users\u\{dir}\logs\service.out.log")),
                stderr_log: PathBuf::from(format!(r"C:\Users\u\{dir}\logs\service.err.log")),
                windows_user: Some(r"HOST\u".into()),
            }
        }
    }

    #[test]
    fn environment_is_explicit_and_marked() {
        let s = spec("rescue", true);
        let env = s.env().expect("env");
        let names: Vec<&str> = env.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            names,
            [
                "OMNICLAW_HOME",
                "OMNICLAW_PROFILE",
                "OMNICLAW_STATE_DIR",
                "OMNICLAW_CONFIG_PATH",
                "OMNICLAW_GATEWAY_PORT",
                "OMNICLAW_SERVICE"
            ]
        );
        assert_eq!(env[1].1, "rescue");
        assert_eq!(env[4].1, "19789");
        assert_eq!(s.args(), ["gateway", "--port", "19789"]);
    }

    #[test]
    fn bad_paths_are_refused() {
        let mut s = spec("rescue", true);
        s.state_dir = PathBuf::from("/home/u/x\ny");
        assert!(matches!(
            s.render(Platform::Systemd),
            Err(SpecError::ControlCharacter {
                what: "state dir",
                ..
            })
        ));
        let mut s = spec("rescue", true);
        s.binary = PathBuf::from("omniclaw");
        assert!(matches!(
            s.render(Platform::Launchd),
            Err(SpecError::RelativeBinary { .. })
        ));
        let s = spec("gateway", true);
        assert_eq!(s.render(Platform::Launchd), Err(SpecError::LabelClash));
        assert!(s.render(Platform::Systemd).is_ok());
    }

    #[test]
    fn file_locations() {
        let r = ServiceNames::for_profile(&Profile::parse("rescue").expect("valid"));
        let d = ServiceNames::for_profile(&Profile::Default);
        // Paths are compared as text: the same separators on every host.
        let check = |p: Platform, home: &str, names: &ServiceNames, def: &str, cmd: &str| {
            let home = Path::new(home);
            assert_eq!(p.definition_path(home, names).to_str(), Some(def));
            assert_eq!(p.command_path(home, names).to_str(), Some(cmd));
        };
        let unit = "/h/.config/systemd/user/omniclaw-gateway-rescue.service";
        check(Platform::Systemd, "/h", &r, unit, unit);
        check(Platform::Systemd, "/h/", &r, unit, unit);
        let plist = "/h/Library/LaunchAgents/ai.omniclaw.gateway.plist";
        check(Platform::Launchd, "/h", &d, plist, plist);
        check(
            Platform::TaskScheduler,
            r"C:\Users\u",
            &r,
            r"C:\Users\u\AppData\Local\OmniClaw\services\omniclaw-gateway-rescue.xml",
            r"C:\Users\u\AppData\Local\OmniClaw\services\omniclaw-gateway-rescue.cmd",
        );
        // A home in the other style keeps its own separators (dry runs of
        // another platform's service).
        check(
            Platform::TaskScheduler,
            "/h",
            &d,
            "/h/AppData/Local/OmniClaw/services/omniclaw-gateway.xml",
            "/h/AppData/Local/OmniClaw/services/omniclaw-gateway.cmd",
        );
        check(
            Platform::Systemd,
            r"C:\Users\u",
            &r,
            r"C:\Users\u\.config\systemd\user\omniclaw-gateway-rescue.service",
            r"C:\Users\u\.config\systemd\user\omniclaw-gateway-rescue.service",
        );
        check(
            Platform::TaskScheduler,
            r"\\srv\home\u\",
            &d,
            r"\\srv\home\u\AppData\Local\OmniClaw\services\omniclaw-gateway.xml",
            r"\\srv\home\u\AppData\Local\OmniClaw\services\omniclaw-gateway.cmd",
        );
    }

    fn check_absolute(platform: Platform, path: &str, expected: bool) {
        assert_eq!(
            platform.is_absolute(Path::new(path)),
            expected,
            "{platform:?} {path:?}"
        );
    }

    #[test]
    fn absolute_means_absolute_on_the_target() {
        use Platform::*;
        for unix in [Systemd, Launchd] {
            check_absolute(unix, "/opt/omni claw/bin/omniclaw", true);
            check_absolute(unix, r"C:\Program Files\OmniClaw\omniclaw.exe", false);
            check_absolute(unix, r"\\srv\share\omniclaw.exe", false);
            check_absolute(unix, "bin/omniclaw", false);
        }
        check_absolute(
            TaskScheduler,
            r"C:\Program Files\OmniClaw\omniclaw.exe",
            true,
        );
        check_absolute(TaskScheduler, "D:/tools/omniclaw.exe", true);
        check_absolute(TaskScheduler, r"\\srv\share\omniclaw.exe", true);
        check_absolute(TaskScheduler, "/opt/omniclaw", false);
        check_absolute(TaskScheduler, r"C:omniclaw.exe", false);
        check_absolute(TaskScheduler, "omniclaw.exe", false);
    }

    #[test]
    fn a_windows_binary_fits_a_task_only() {
        let mut s = spec("rescue", true);
        s.binary = PathBuf::from(r"C:\Program Files\OmniClaw\omniclaw.exe");
        for p in [Platform::Systemd, Platform::Launchd] {
            let err = s.render(p).expect_err("not absolute on a unix target");
            assert_eq!(
                err,
                SpecError::RelativeBinary {
                    path: s.binary.clone(),
                    platform: p
                }
            );
            assert!(err.to_string().contains("one starting with /"), "{err}");
        }
        // Shown from another system, it renders (and is never installed).
        assert!(s.preview(Platform::Systemd).is_ok());
        let task = spec("rescue", false);
        assert!(task.render(Platform::TaskScheduler).is_ok());
        let mut unix_binary = spec("rescue", false);
        unix_binary.binary = PathBuf::from("/opt/omniclaw");
        let err = unix_binary
            .render(Platform::TaskScheduler)
            .expect_err("not absolute on Windows");
        assert!(err.to_string().contains("drive letter"), "{err}");
    }

    #[test]
    fn utf16_round_trip() {
        let f = ServiceFile {
            path: PathBuf::from("x"),
            contents: "<Task>ä (rescue)</Task>".into(),
            encoding: Encoding::Utf16Le,
        };
        let bytes = f.bytes();
        assert_eq!(&bytes[..2], &[0xFF, 0xFE]);
        assert_eq!(
            ServiceFile::decode(&bytes).as_deref(),
            Some(f.contents.as_str())
        );
        assert_eq!(ServiceFile::decode(b"plain").as_deref(), Some("plain"));
    }

    fn check_classify(platform: Platform, name: &str, expected: Option<&str>) {
        let got = classify(platform, name).map(|o| match o {
            Owner::OmniClaw(p) => format!("omniclaw:{p}"),
            Owner::OpenClaw => "openclaw".to_string(),
        });
        assert_eq!(got.as_deref(), expected, "{platform:?} {name:?}");
    }

    #[test]
    fn classification() {
        use Platform::*;
        check_classify(
            Systemd,
            "omniclaw-gateway.service",
            Some("omniclaw:default"),
        );
        check_classify(
            Systemd,
            "omniclaw-gateway-rescue.service",
            Some("omniclaw:rescue"),
        );
        check_classify(Systemd, "omniclaw-gateway-default.service", None);
        check_classify(Systemd, "omniclaw-gateway-Bad.service", None);
        check_classify(Systemd, "omniclaw-gatewayx.service", None);
        check_classify(Systemd, "openclaw-gateway.service", Some("openclaw"));
        check_classify(Systemd, "openclaw-gateway-work.service", Some("openclaw"));
        check_classify(Systemd, "sshd.service", None);
        check_classify(Systemd, "omniclaw-gateway.timer", None);
        check_classify(
            Launchd,
            "ai.omniclaw.gateway.plist",
            Some("omniclaw:default"),
        );
        check_classify(Launchd, "ai.omniclaw.rescue.plist", Some("omniclaw:rescue"));
        check_classify(Launchd, "ai.openclaw.gateway.plist", Some("openclaw"));
        check_classify(Launchd, "com.apple.x.plist", None);
        check_classify(TaskScheduler, "OmniClaw Gateway", Some("omniclaw:default"));
        check_classify(
            TaskScheduler,
            "\\OmniClaw Gateway (main)",
            Some("omniclaw:main"),
        );
        check_classify(TaskScheduler, "OmniClaw Gateway (a b)", None);
        check_classify(TaskScheduler, "OpenClaw Gateway (work)", Some("openclaw"));
        check_classify(
            TaskScheduler,
            "omniclaw-gateway-rescue.cmd",
            Some("omniclaw:rescue"),
        );
        check_classify(TaskScheduler, "Other", None);
    }

    fn facts(profile: &str, state: bool, binary: bool, port: Option<u16>) -> Facts {
        Facts {
            profile: Profile::parse(profile).expect("valid"),
            state_dir_exists: state,
            binary_exists: binary,
            config_port: port,
        }
    }

    fn check_stale(installed: &Installed, facts: &Facts, expected: &[&str]) {
        let got: Vec<String> = stale_reasons(installed, facts)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, expected, "{installed:?} {facts:?}");
    }

    #[test]
    fn staleness() {
        let ok = Installed {
            binary: Some("/bin/omniclaw".into()),
            home: None,
            port: Some(19789),
            profile: Some("rescue".into()),
            state_dir: Some("/h/.omniclaw-rescue".into()),
            config_path: None,
            marked: true,
        };
        check_stale(&ok, &facts("rescue", true, true, Some(19789)), &[]);
        check_stale(&ok, &facts("rescue", true, true, None), &[]);
        check_stale(
            &ok,
            &facts("rescue", true, true, Some(19800)),
            &["it runs port 19789 but the config says gateway.port 19800"],
        );
        check_stale(
            &ok,
            &facts("rescue", false, false, Some(19800)),
            &[
                "its state dir /h/.omniclaw-rescue is gone (profile removed)",
                "the binary /bin/omniclaw it runs does not exist",
            ],
        );
        check_stale(
            &Installed::default(),
            &facts("main", true, true, Some(1)),
            &["it lacks OMNICLAW_SERVICE=1, so it was not written by `gateway install`"],
        );
        check_stale(
            &ok,
            &facts("main", true, true, None),
            &["its file is named for profile main but it sets OMNICLAW_PROFILE=rescue"],
        );
        let fix = stale_fix(
            &Profile::parse("rescue").expect("valid"),
            &[Stale::ProfileGone { state_dir: None }],
        );
        assert_eq!(
            fix,
            "`omniclaw --profile rescue gateway uninstall` removes it"
        );
    }

    #[test]
    fn drift_from_what_install_would_write_now() {
        let now = spec("rescue", true);
        let files = now.render(Platform::Systemd).expect("renders");
        let fresh = parse(Platform::Systemd, &files[0].contents);
        let texts = |installed: &Installed, binary: &str, full: bool| -> Vec<String> {
            drift(installed, Some(Path::new(binary)), full.then_some(&now))
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        // What install writes now does not drift from itself.
        assert_eq!(
            texts(&fresh, "/opt/omni claw/bin/omniclaw", true),
            Vec::<String>::new()
        );
        // Written by an older build folder.
        let old = Installed {
            binary: Some("/home/u/old/target/debug/omniclaw".into()),
            ..fresh.clone()
        };
        let binary_text = "it runs /home/u/old/target/debug/omniclaw but `gateway install` would now write /opt/omni claw/bin/omniclaw";
        assert_eq!(
            texts(&old, "/opt/omni claw/bin/omniclaw", false),
            [binary_text]
        );
        // `.` and `..` do not make a difference.
        assert_eq!(
            texts(&fresh, "/opt/omni claw/bin/../bin/omniclaw", false),
            Vec::<String>::new()
        );
        let moved = Installed {
            state_dir: Some("/srv/rescue".into()),
            config_path: Some("/srv/rescue/omniclaw.json".into()),
            ..old.clone()
        };
        assert_eq!(
            texts(&moved, "/opt/omni claw/bin/omniclaw", true),
            [
                binary_text,
                "it sets OMNICLAW_STATE_DIR=/srv/rescue but `gateway install` would now write /home/u/.omniclaw-rescue",
                "it sets OMNICLAW_CONFIG_PATH=/srv/rescue/omniclaw.json but `gateway install` would now write /home/u/.omniclaw-rescue/omniclaw.json",
            ]
        );
        // Without a spec only the binary counts; without a binary, nothing.
        assert_eq!(
            texts(&moved, "/opt/omni claw/bin/omniclaw", false),
            [binary_text]
        );
        assert_eq!(drift(&moved, None, None), []);
        // A file that names no value is not compared.
        assert_eq!(
            drift(&Installed::default(), Some(Path::new("/x")), Some(&now)),
            []
        );
        let fix = stale_fix(
            &Profile::parse("rescue").expect("valid"),
            &drift(&old, Some(Path::new("/x")), None),
        );
        assert!(
            fix.starts_with("`omniclaw --profile rescue gateway install --force`"),
            "{fix}"
        );
    }

    #[test]
    fn a_file_an_older_omniclaw_wrote_is_outdated() {
        for (platform, s) in [
            (Platform::Systemd, spec("rescue", true)),
            (Platform::Launchd, spec("rescue", true)),
            (Platform::TaskScheduler, spec("rescue", false)),
        ] {
            let files = s.render(platform).expect("renders");
            let command = files.last().expect("a command file");
            assert_eq!(
                outdated(&s, platform, &command.contents),
                None,
                "{platform:?}"
            );
            // The same command and environment without the condition line.
            let older: String = command
                .contents
                .split_inclusive('\n')
                .filter(|l| {
                    !l.starts_with("ConditionPathExists=") && !l.starts_with("if not exist")
                })
                .collect();
            let expected = (platform != Platform::Launchd).then_some(Stale::Outdated);
            assert_eq!(outdated(&s, platform, &older), expected, "{platform:?}");
            assert_eq!(
                outdated(&s, platform, &format!("{}\n# edited", command.contents)),
                Some(Stale::Outdated)
            );
        }
    }

    fn problem_text(p: &SecretProblem) -> String {
        match p {
            SecretProblem::EnvReference { key, var } => format!("{key}: env {var}"),
            SecretProblem::KeychainUnavailable { key } => format!("{key}: keychain"),
            SecretProblem::Missing { key } => format!("{key}: missing"),
            SecretProblem::NotStored { key, store } => format!("{key}: not in {store}"),
            SecretProblem::Unreadable { key, store, reason } => {
                format!("{key}: {store} unreadable: {reason}")
            }
        }
    }

    fn check_secrets(config_text: &str, session: bool, platform: Platform, expected: &[&str]) {
        let loaded = config::load(config_text).expect("valid config");
        let access = SecretAccess {
            platform,
            session_keyring: session,
            secrets_file: false,
        };
        let got: Vec<String> = secret_problems(&loaded.config, &access, &mut |_| Lookup::Stored)
            .iter()
            .map(problem_text)
            .collect();
        assert_eq!(
            got, expected,
            "{config_text} session={session} {platform:?}"
        );
    }

    #[test]
    fn secrets_a_service_can_read() {
        use Platform::*;
        check_secrets("{gateway: {auth: {token: 'plain'}}}", false, Systemd, &[]);
        check_secrets(
            "{gateway: {auth: {token: '${GW}'}}}",
            true,
            Systemd,
            &["gateway.auth.token: env GW"],
        );
        check_secrets(
            "{gateway: {auth: {token: {source: 'keychain'}}}}",
            false,
            Systemd,
            &["gateway.auth.token: keychain"],
        );
        check_secrets(
            "{gateway: {auth: {token: {source: 'keychain'}}}}",
            true,
            Launchd,
            &[],
        );
        check_secrets(
            "{gateway: {auth: {token: {source: 'keychain'}}}}",
            false,
            TaskScheduler,
            &[],
        );
        check_secrets("{}", true, Systemd, &["gateway.auth.token: missing"]);
        check_secrets("{gateway: {auth: {mode: 'none'}}}", true, Systemd, &[]);
        check_secrets(
            "{gateway: {auth: {mode: 'password', token: '${T}'}}}",
            true,
            Systemd,
            &["gateway.auth.password: missing"],
        );
        check_secrets(
            "{gateway: {auth: {token: 't'}}, channels: {telegram: {botToken: '${BOT}'}}}",
            true,
            Systemd,
            &["channels.telegram.botToken: env BOT"],
        );
        check_secrets(
            "{gateway: {auth: {token: 't'}}, channels: {telegram: {enabled: false, botToken: '${BOT}'}}}",
            true,
            Systemd,
            &[],
        );
        // A remote token is not read by a local gateway.
        check_secrets(
            "{gateway: {auth: {token: 't'}, remote: {token: '${R}'}}}",
            true,
            Systemd,
            &[],
        );
    }

    #[test]
    fn a_secrets_file_is_readable_without_a_session() {
        let loaded =
            config::load("{gateway: {auth: {token: {source: 'keychain'}}}}").expect("valid");
        let access = SecretAccess {
            platform: Platform::Systemd,
            session_keyring: false,
            secrets_file: true,
        };
        assert_eq!(
            secret_problems(&loaded.config, &access, &mut |_| Lookup::Stored),
            []
        );
    }

    #[test]
    fn a_reference_to_nothing_is_refused() {
        let loaded = config::load(
            "{gateway: {auth: {token: {source: 'keychain'}}}, channels: {telegram: {botToken: {source: 'keychain'}}}}",
        )
        .expect("valid");
        let access = SecretAccess {
            platform: Platform::Systemd,
            session_keyring: true,
            secrets_file: false,
        };
        let mut asked = Vec::new();
        let got: Vec<String> = secret_problems(&loaded.config, &access, &mut |key| {
            asked.push(key.to_string());
            if key == "gateway.auth.token" {
                Lookup::NotStored {
                    store: "OS keychain".into(),
                }
            } else {
                Lookup::Unreadable {
                    store: "OS keychain".into(),
                    reason: "no D-Bus".into(),
                }
            }
        })
        .iter()
        .map(problem_text)
        .collect();
        assert_eq!(
            got,
            [
                "gateway.auth.token: not in OS keychain",
                "channels.telegram.botToken: OS keychain unreadable: no D-Bus"
            ]
        );
        assert_eq!(asked, ["gateway.auth.token", "channels.telegram.botToken"]);
        // Plaintext and environment references are never looked up; an
        // unreachable keychain is not asked either.
        let no_session = SecretAccess {
            session_keyring: false,
            ..access
        };
        let mut calls = 0;
        let problems = secret_problems(&loaded.config, &no_session, &mut |_| {
            calls += 1;
            Lookup::Stored
        });
        assert_eq!(problems.len(), 2);
        assert_eq!(calls, 0);
        let m = SecretProblem::NotStored {
            key: "gateway.auth.token".into(),
            store: "OS keychain".into(),
        }
        .explain("omniclaw --profile rescue");
        assert!(
            m.contains("refers to the OS keychain, which holds no value for it")
                && m.contains("`omniclaw --profile rescue secrets set gateway.auth.token`"),
            "{m}"
        );
    }

    #[test]
    fn secret_messages_name_key_and_fix() {
        let m = SecretProblem::EnvReference {
            key: "gateway.auth.token".into(),
            var: "GW".into(),
        }
        .explain("omniclaw --profile rescue");
        assert!(m.contains("gateway.auth.token refers to the environment variable GW"));
        assert!(m.contains("omniclaw --profile rescue config set gateway.auth.token"));
    }

    #[test]
    fn platform_names() {
        for p in [
            Platform::Systemd,
            Platform::Launchd,
            Platform::TaskScheduler,
        ] {
            assert_eq!(Platform::parse(p.as_str()), Some(p));
        }
        assert_eq!(Platform::parse("upstart"), None);
    }
}
