//! `omniclaw [--profile P] gateway install|uninstall|start|stop|restart`, and
//! the service part of `gateway status [--deep]`.
//!
//! Install checks everything before it writes anything: a valid config, no
//! port conflict with another instance, secrets a service can read, an
//! existing binary, a reachable service manager. The service manager is
//! chosen from the environment (`OMNICLAW_SERVICE_MANAGER`) and used only
//! through its trait. Never copies a secret into a service file, and never
//! signals a process the instance lock does not confirm as this profile's
//! terminal-run gateway. A gateway the desktop app runs in-process is
//! started, stopped and restarted by asking that app over its control
//! socket (`omniclaw_os::desktopctl`), so its tray stays in step.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use omniclaw_core::config;
use omniclaw_core::heal::StopBy;
use omniclaw_core::inventory::{self, InstancePaths};
use omniclaw_core::paths::{self, Resolved};
use omniclaw_core::ports;
use omniclaw_core::profile::ServiceNames;
use omniclaw_core::service::{
    self, Lookup, Owner as ServiceOwner, Platform, SecretAccess, ServiceFile, ServiceSpec,
};
use omniclaw_os::desktopctl::{self, Op};
use omniclaw_os::fsx;
use omniclaw_os::intent::{self, StopIntent};
use omniclaw_os::live::{self, PortState};
use omniclaw_os::lock::{Holder, InstanceLock, Owner};
use omniclaw_os::portowner;
use omniclaw_os::profiles::{self, ConfigState};
use omniclaw_os::secrets::{Routed, SecretName, SecretStore};
use omniclaw_os::service::{
    self as manager, Before, Notice, ServiceError, ServiceManager, ServiceState, Step, Tolerate,
    Unit,
};

use crate::cli::{InstallArgs, StopArgs, UninstallArgs};
use crate::ctx::Ctx;
use crate::out::{self, CliError, CmdResult, Outcome};

use super::setup::command;

/// How long `stop` waits for a terminal-run gateway to exit after SIGTERM.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// The lowest port a user's service can bind on Linux (below it needs root).
const FIRST_UNPRIVILEGED_PORT: u16 = 1024;

/// The service manager; an unknown `OMNICLAW_SERVICE_MANAGER` is bad input.
pub(super) fn select(ctx: &Ctx) -> Result<Box<dyn ServiceManager>, CliError> {
    manager::select(&ctx.env).map_err(|e| match e {
        ServiceError::UnknownManager { .. } => CliError::usage(e),
        other => CliError::failed(other),
    })
}

/// The unit of `resolved`'s profile on `platform`.
fn unit_of(platform: Platform, resolved: &Resolved) -> Unit {
    let names = resolved.service_names();
    Unit {
        name: platform.service_name(&names).to_string(),
        definition: platform.definition_path(&resolved.home, &names),
    }
}

/// The service files of a profile that exist on disk (definition first).
fn existing_files(platform: Platform, home: &Path, names: &ServiceNames) -> Vec<PathBuf> {
    let mut files = vec![platform.definition_path(home, names)];
    let cmd = platform.command_path(home, names);
    if !files.contains(&cmd) {
        files.push(cmd);
    }
    files.into_iter().filter(|p| p.is_file()).collect()
}

/// A login session keyring exists for a service to read keychain secrets
/// from. Linux: the session D-Bus bus the Secret Service lives on. macOS:
/// launch agents run inside the GUI login session, whose login keychain is
/// open while it lasts. Windows: Credential Manager needs no session.
fn session_keyring(ctx: &Ctx, platform: Platform) -> bool {
    match platform {
        Platform::Systemd => {
            ctx.env.get("DBUS_SESSION_BUS_ADDRESS").is_some()
                || ctx
                    .env
                    .get("XDG_RUNTIME_DIR")
                    .is_some_and(|d| Path::new(d).join("bus").exists())
        }
        Platform::Launchd | Platform::TaskScheduler => true,
    }
}

/// The binary `gateway install` picks without `--binary`: the installed
/// package's CLI, else the path this one was run as (see
/// `omniclaw_core::executable`), absolute; `None` when nothing names one.
fn chosen_binary(ctx: &Ctx) -> Option<PathBuf> {
    let path_var = ctx.env.get("PATH").map(std::ffi::OsStr::new);
    omniclaw_os::executable::choose("omniclaw", path_var, ctx.cwd.as_deref())
        .map(|c| paths::normalize(&c.into_path()))
}

/// The binary a service runs: `--binary`, else [`chosen_binary`]; absolute and present.
fn binary(ctx: &Ctx, flag: Option<&Path>) -> Result<PathBuf, CliError> {
    let path = match flag {
        Some(p) if p.is_relative() => match &ctx.cwd {
            Some(cwd) => cwd.join(p),
            None => {
                return Err(CliError::usage(format!(
                    "--binary {} is relative and the working directory is unknown: give an absolute path",
                    p.display()
                )))
            }
        },
        Some(p) => p.to_path_buf(),
        None => chosen_binary(ctx).ok_or_else(|| {
            CliError::failed(
                "cannot tell where this omniclaw binary is: give its absolute path with --binary",
            )
        })?,
    };
    let path = paths::normalize(&path);
    if !path.is_file() {
        return Err(CliError::usage(format!(
            "the binary {} does not exist: a service must run an installed omniclaw; give its path with --binary",
            path.display()
        )));
    }
    Ok(path)
}

/// `DOMAIN\user` for the Windows task, from the environment.
fn windows_user(ctx: &Ctx) -> Option<String> {
    let user = ctx.env.get("USERNAME")?;
    Some(match ctx.env.get("USERDOMAIN") {
        Some(domain) => format!("{domain}\\{user}"),
        None => user.to_string(),
    })
}

/// A port problem: bad input when the port came from `--port`, a problem
/// found (exit 1) when it came from the saved config.
fn port_error(from_flag: bool, msg: String) -> CliError {
    if from_flag {
        CliError::usage(msg)
    } else {
        CliError::failed(msg)
    }
}

/// Refuses a port plan in which this profile collides with another
/// instance, or with a process that listens on one of its ports right now
/// (`running`: the pid of this profile's own gateway, whose ports are its own).
fn check_conflicts(
    ctx: &Ctx,
    resolved: &Resolved,
    value: &Value,
    port: u16,
    from_flag: bool,
    running: Option<u32>,
) -> Result<(), CliError> {
    let inv = ctx.inventory(resolved)?;
    let me = inv
        .current()
        .map_or_else(|| resolved.profile.name().to_string(), |c| c.label.clone());
    let mut all: Vec<ports::Instance> = inv
        .instances(&ctx.env)
        .into_iter()
        .filter(|i| i.name != me)
        .collect();
    let others = all.clone();
    let (workspace, _) = resolved.workspace(inventory::configured_workspace(value));
    let mut candidate = inventory::instance(
        &me,
        false,
        Some(value),
        &InstancePaths {
            config_path: resolved.config_path.clone(),
            state_dir: resolved.state_dir.clone(),
            workspace,
        },
        &ctx.env,
    );
    candidate.ports.base = port;
    ports::allocate(&candidate.ports).map_err(|e| port_error(from_flag, e.to_string()))?;
    all.push(candidate);
    let plan = ports::plan(&all);
    let listening = portowner::listening();
    // One free base for the whole message: clear of every other instance
    // and of the ports processes hold now.
    let free = || {
        ports::free_base(&others, ports::preferred_base(&resolved.profile), |p| {
            listening.contains_key(&p)
        })
    };
    let free_hint = || {
        free()
            .map(|p| {
                format!(
                    "\na free base port is {p}: `{} gateway install --port {p}`",
                    command(resolved)
                )
            })
            .unwrap_or_default()
    };
    let lines: Vec<String> = plan
        .conflicts
        .iter()
        .filter(|c| {
            let (a, b) = c.instances();
            a == me || b == me
        })
        .map(|c| {
            // Install moves this profile's base, whichever instance the
            // plan would move, and to the one free base the message names.
            let fix = match (c, free().ok()) {
                (
                    ports::Conflict::PortOverlap {
                        b_key: ports::PortKey::GatewayPort,
                        ..
                    },
                    Some(base),
                ) => format!(
                    "move {me} to base {base}: `{} gateway install --port {base}`",
                    command(resolved)
                ),
                _ => c.fix(),
            };
            format!("  - {c}\n    fix: {fix}")
        })
        .collect();
    if !lines.is_empty() {
        return Err(port_error(
            from_flag,
            format!(
                "refusing to install the service of profile {}: its ports collide with other instances; nothing was changed:\n{}{}",
                resolved.profile,
                lines.join("\n"),
                free_hint()
            ),
        ));
    }
    // The ports the gateway binds at start (CDP ports bind later, on
    // demand), checked as `ports` checks every row: this profile's own
    // running gateway holds its ports as its own.
    let rows: Vec<ports::Row> = plan
        .rows
        .iter()
        .filter(|r| {
            r.instance == me
                && !matches!(
                    r.surface,
                    ports::Surface::CdpRange | ports::Surface::CdpPinned(_)
                )
        })
        .cloned()
        .collect();
    let own: HashMap<String, u32> = running.map(|pid| (me.clone(), pid)).into_iter().collect();
    let held: Vec<String> = rows
        .iter()
        .zip(live::check_with(&rows, &own, &listening))
        .filter_map(|(row, state)| match state {
            PortState::Held { port, holder } => Some(format!(
                "  - port {port} ({}) is held by {holder}",
                row.surface
            )),
            PortState::Free | PortState::Listening { .. } => None,
        })
        .collect();
    if !held.is_empty() {
        return Err(port_error(
            from_flag,
            format!(
                "refusing to install the service of profile {}: ports it needs are in use by other processes, so the service would fail at start; nothing was changed:\n{}\nstop those processes, or choose another base port{}",
                resolved.profile,
                held.join("\n"),
                free_hint()
            ),
        ));
    }
    Ok(())
}

/// Refuses a base port a user's service cannot bind: below 1024 on Linux
/// (macOS and Windows let users bind those).
fn check_privileged(
    platform: Platform,
    resolved: &Resolved,
    port: u16,
    from_flag: bool,
) -> Result<(), CliError> {
    if platform != Platform::Systemd || port >= FIRST_UNPRIVILEGED_PORT {
        return Ok(());
    }
    Err(port_error(
        from_flag,
        format!(
            "refusing to install the service of profile {}: port {port} is privileged (below {FIRST_UNPRIVILEGED_PORT}) and a user service cannot bind it; nothing was changed: choose a base port of {FIRST_UNPRIVILEGED_PORT} or above (`{} gateway install --port N`; `{} ports` shows the taken ones)",
            resolved.profile,
            command(resolved),
            command(resolved)
        ),
    ))
}

/// Refuses to install while the profile runs outside its own service: the
/// service's copy would fail on the instance lock and restart forever.
fn check_not_running(
    platform: Platform,
    resolved: &Resolved,
    holder: Option<&Holder>,
) -> Result<(), CliError> {
    let Some(h) = holder else {
        return Ok(());
    };
    if h.owner == Some(Owner::Service) && installed(platform, resolved) {
        return Ok(());
    }
    let cmd = command(resolved);
    let who = match h.owner {
        Some(Owner::Cli) => "from a terminal",
        Some(Owner::Embedded) => "inside the desktop app",
        Some(Owner::Service) => "under a service this profile did not install here",
        None => "by an unknown owner",
    };
    // `gateway stop` can stop only what this profile runs itself.
    let stop = match h.owner {
        Some(Owner::Cli | Owner::Embedded) => format!("stop it first: `{cmd} gateway stop`"),
        _ => format!(
            "stop it with the service manager that runs it ({})",
            foreign_hint()
        ),
    };
    Err(CliError::failed(format!(
        "refusing to install the service of profile {}: it is already running {who} (pid {}, {}), and the service's copy would fail on the instance lock and restart over and over; nothing was changed: {stop}, then install again",
        resolved.profile,
        h.pid,
        owner_word(h)
    )))
}

/// Where to find a service this profile did not install here.
fn foreign_hint() -> &'static str {
    "`omniclaw gateway status --deep` lists OpenClaw's and stale gateway services with their cleanup commands"
}

fn show_step(step: &Step) -> Option<String> {
    match step {
        Step::Run { cmd, tolerate } => Some(format!(
            "{cmd}{}",
            match tolerate {
                Tolerate::Nothing => "",
                Tolerate::Absent => "  (fine if already gone)",
                Tolerate::Any => "  (may fail: nothing loaded yet)",
            }
        )),
        Step::WriteFiles | Step::RemoveFiles | Step::RestoreFiles => None,
    }
}

fn step_argv(steps: &[Step]) -> Vec<Vec<String>> {
    steps
        .iter()
        .filter_map(|s| match s {
            Step::Run { cmd, .. } => Some(cmd.argv()),
            _ => None,
        })
        .collect()
}

/// What was on disk before a write, to put back when a later step fails.
struct Undo {
    files: Vec<(PathBuf, Option<Vec<u8>>)>,
    /// The config's text and its `.bak` (which the write replaces) before.
    config: Option<(PathBuf, String, Option<Vec<u8>>)>,
    /// Directories the install created, parents first.
    dirs: Vec<PathBuf>,
}

impl Undo {
    /// Puts the service files back; the ones that could not be, with why.
    fn restore_files(&mut self) -> Vec<String> {
        let mut failed = Vec::new();
        for (path, before) in self.files.drain(..) {
            let result = match before {
                Some(bytes) => fsx::atomic_replace(&path, &bytes),
                None => match fs::remove_file(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                    _ => Ok(()),
                },
            };
            if let Err(e) = result {
                failed.push(format!("{}: {e}", path.display()));
            }
        }
        failed
    }

    /// Puts the config and its `.bak` back, then removes the directories
    /// the install created (only empty ones: nothing else is lost).
    fn restore_rest(&mut self) -> Vec<String> {
        let mut failed = Vec::new();
        if let Some((path, text, bak)) = self.config.take() {
            if let Err(e) = fsx::atomic_replace(&path, text.as_bytes()) {
                failed.push(format!("{}: {e}", path.display()));
            }
            let bak_path = fsx::backup_path(&path);
            let result = match bak {
                Some(bytes) => fsx::atomic_replace(&bak_path, &bytes),
                None => fs::remove_file(&bak_path),
            };
            if let Err(e) = result {
                failed.push(format!("{}: {e}", bak_path.display()));
            }
        }
        for dir in self.dirs.drain(..).rev() {
            let _ = fs::remove_dir(&dir);
        }
        failed
    }

    /// Creates `dir` and its missing parents, remembering each one created.
    fn create_dir(&mut self, dir: &Path, private: bool) -> Result<(), CliError> {
        let missing: Vec<PathBuf> = dir
            .ancestors()
            .take_while(|d| !d.as_os_str().is_empty() && !d.exists())
            .map(Path::to_path_buf)
            .collect();
        let created = if private {
            fsx::create_private_dir(dir)
        } else {
            fs::create_dir_all(dir)
        };
        self.dirs.extend(missing.into_iter().rev());
        created.map_err(|e| CliError::failed(format!("cannot create {}: {e}", dir.display())))
    }
}

/// Undoes an install whose steps failed: the manager's side (planned by the
/// adapter) when a manager command ran, the files and the config always.
/// Every step runs, best-effort; returns what to tell the user.
fn undo_install(
    manager: &dyn ServiceManager,
    unit: &Unit,
    before: Before,
    mut undo: Undo,
    manager_touched: bool,
    fix_cmd: &str,
) -> String {
    let plan = if manager_touched {
        manager.undo_install_plan(unit, before)
    } else {
        vec![Step::RestoreFiles]
    };
    let mut ran = Vec::new();
    let mut failed = Vec::new();
    for step in &plan {
        match step {
            Step::RestoreFiles => failed.extend(undo.restore_files()),
            Step::Run { cmd, tolerate } => match manager.run_step(cmd, *tolerate) {
                Ok(_) => ran.push(format!("`{cmd}`")),
                Err(e) => failed.push(e.to_string()),
            },
            Step::WriteFiles | Step::RemoveFiles => {}
        }
    }
    failed.extend(undo.restore_rest());
    let mut out =
        String::from("undone: the service files and the config were put back as they were");
    if !ran.is_empty() {
        out.push_str(&format!(", and {} ran", ran.join(", ")));
    }
    if !failed.is_empty() {
        out.push_str(&format!(
            "\ncould not undo everything:\n{}\nput these right by hand; `{fix_cmd} gateway uninstall` removes what is left of the service",
            failed
                .iter()
                .map(|f| format!("  - {f}"))
                .collect::<Vec<_>>()
                .join("\n")
        ));
    }
    out
}

/// Reads each secret the service's gateway needs from the store the
/// service will use: the profile's secrets file when it has one, else the
/// OS keychain (the service is not given `--secrets-file`).
fn lookup_secret(store: &Routed, resolved: &Resolved, key: &str) -> Lookup {
    let scope = Ctx::scope(resolved);
    let shown = store.mode(&scope).to_string();
    let name = match SecretName::parse(key) {
        Ok(n) => n,
        Err(e) => {
            return Lookup::Unreadable {
                store: shown,
                reason: e.to_string(),
            }
        }
    };
    match store.get(&scope, name) {
        Ok(Some(_)) => Lookup::Stored,
        Ok(None) => Lookup::NotStored { store: shown },
        Err(e) => Lookup::Unreadable {
            store: shown,
            reason: e.to_string(),
        },
    }
}

/// `gateway install [--port N] [--force] [--dry-run]`.
pub fn install(ctx: &Ctx, args: &InstallArgs) -> CmdResult {
    let resolved = ctx.resolve()?;
    ctx.print_notes(&resolved);
    let cmd = command(&resolved);
    let manager = select(ctx)?;
    let platform = manager.platform();
    let shown_config = resolved.display(&resolved.config_path);

    let text = match profiles::read_config(&resolved.config_path) {
        ConfigState::Valid { text, .. } => text,
        ConfigState::Missing => {
            return Err(CliError::failed(format!(
                "no config at {shown_config}: run `{cmd} setup` first (it picks a collision-free port), then install"
            )))
        }
        ConfigState::Invalid { errors, .. } => {
            return Err(CliError::failed(format!(
                "refusing to install: the config {shown_config} is invalid and the service would fail at start:\n{errors}\nfix these keys (`{cmd} config validate` shows them again)"
            )))
        }
        ConfigState::Unreadable(msg) => return Err(CliError::failed(msg)),
    };
    let current_port = config::load(&text)
        .ok()
        .and_then(|l| l.config.gateway_port());
    let new_text = match args.port {
        Some(p) if Some(p) != current_port => Some(
            config::set(&text, "gateway.port", &p.to_string())
                .map_err(|e| CliError::usage(format!("{shown_config} was not changed: {e}")))?,
        ),
        _ => None,
    };
    let loaded = config::load(new_text.as_deref().unwrap_or(&text)).map_err(|e| {
        CliError::usage(format!(
            "refusing to install: gateway.port would make {shown_config} invalid:\n{e}"
        ))
    })?;
    if let Some(far) = omniclaw_gateway::profile::remote_of(&loaded.config) {
        return Err(CliError::usage(format!(
            "refusing to install: profile {} has gateway.mode \"remote\" in {shown_config}: its gateway runs at {}, not here, so a service here would have nothing to run. To run one here instead: `{cmd} config set gateway.mode '\"local\"'`",
            resolved.profile, far.url
        )));
    }
    let port = args
        .port
        .unwrap_or_else(|| service::config_port(&loaded.config));
    let mut warnings = Vec::new();
    if let Some(env_port) = resolved
        .env_port
        .filter(|p| *p != port && args.port.is_none())
    {
        warnings.push(format!(
            "OMNICLAW_GATEWAY_PORT={env_port} is set in this shell but the service runs gateway.port {port}; pass --port {env_port} to change the config"
        ));
    }

    let from_flag = args.port.is_some();
    let running = holder(&resolved);
    // A dry run shows the unit even when the install would refuse, and
    // says why; a real install stops at the first refusal.
    let mut refusals: Vec<CliError> = Vec::new();
    let mut refuse = |checked: Result<(), CliError>| match checked {
        Err(e) if args.dry_run => {
            refusals.push(e);
            Ok(())
        }
        other => other,
    };
    refuse(check_not_running(platform, &resolved, running.as_ref()))?;
    refuse(check_privileged(platform, &resolved, port, from_flag))?;
    refuse(check_conflicts(
        ctx,
        &resolved,
        loaded.doc.value(),
        port,
        from_flag,
        running.as_ref().map(|h| h.pid),
    ))?;

    // The store the service will read: its secrets file when the profile
    // has one, else the keychain (`--secrets-file` does not reach a service).
    let store = Routed::system(false);
    let access = SecretAccess {
        platform,
        session_keyring: session_keyring(ctx, platform),
        secrets_file: omniclaw_os::secrets::uses_file(&resolved.state_dir),
    };
    let problems = service::secret_problems(&loaded.config, &access, &mut |key| {
        lookup_secret(&store, &resolved, key)
    });
    if !problems.is_empty() {
        let lines: Vec<String> = problems
            .iter()
            .map(|p| format!("  - {}", p.explain(&cmd)))
            .collect();
        refuse(Err(CliError::failed(format!(
            "refusing to install the service of profile {}: it could not read its secrets; nothing was changed:\n{}",
            resolved.profile,
            lines.join("\n")
        ))))?;
    }

    let binary = match binary(ctx, args.binary.as_deref()) {
        Ok(b) => b,
        Err(e) => {
            refuse(Err(e))?;
            // Shown as given: the refusal says what is wrong with it.
            args.binary
                .clone()
                .unwrap_or_else(|| PathBuf::from("omniclaw"))
        }
    };
    let mut spec = ServiceSpec::for_profile(&resolved, &binary, port);
    if platform == Platform::TaskScheduler {
        spec.windows_user = windows_user(ctx);
    }
    // A dry run for another system's manager shows that system's files
    // around this system's binary path; an install renders strictly.
    let files = if args.dry_run && Platform::native() != Some(platform) {
        spec.preview(platform)
    } else {
        spec.render(platform)
    }
    .map_err(CliError::usage)?;
    let unit = Unit {
        name: platform.service_name(&spec.names).to_string(),
        definition: files[0].path.clone(),
    };
    let before: Vec<Option<Vec<u8>>> = files.iter().map(|f| fs::read(&f.path).ok()).collect();
    let unchanged = files
        .iter()
        .zip(&before)
        .all(|(f, b)| b.as_deref() == Some(f.bytes().as_slice()));
    let replacing = !unchanged && before.iter().any(Option::is_some);
    if replacing && !args.force {
        refuse(Err(CliError::usage(format!(
            "profile {} already has a {platform} at {} that differs from what install would write now: \
             pass --force to replace it (`{cmd} gateway install --force --dry-run` shows the new file), or `{cmd} gateway uninstall` first",
            resolved.profile,
            resolved.display(&files[0].path)
        ))))?;
    }
    let plan = manager.install_plan(&unit, replacing);

    if args.dry_run {
        print_dry_run(
            ctx,
            &resolved,
            platform,
            &unit,
            &spec,
            &files,
            &plan,
            new_text.is_some(),
            &warnings,
            &refusals,
        );
        // The exit code the install itself would end with.
        return Ok(match refusals.iter().map(CliError::exit_code).max() {
            None => Outcome::Ok,
            Some(2) => Outcome::BadInput,
            Some(_) => Outcome::Problem,
        });
    }

    // Everything is checked; the manager must be reachable before any write.
    let notices = manager
        .preflight()
        .map_err(|e| CliError::failed(format!("{e}\nnothing was changed")))?;
    let session_secrets = service::session_secrets(&loaded.config, &access);
    warnings.extend(
        notices
            .iter()
            .map(|n| notice_text(n, &session_secrets, &cmd)),
    );
    let before_state = if before.iter().any(Option::is_some) {
        Before::Installed {
            running: matches!(
                manager.state(&unit),
                Ok(ServiceState::Running { .. } | ServiceState::Starting)
            ),
        }
    } else {
        Before::Nothing
    };

    let mut undo = Undo {
        files: Vec::new(),
        config: None,
        dirs: Vec::new(),
    };
    if let Some(new) = &new_text {
        let bak = fs::read(fsx::backup_path(&resolved.config_path)).ok();
        fsx::replace_if_unchanged(
            &resolved.config_path,
            Some(text.as_bytes()),
            new.as_bytes(),
            fsx::Options::with_backup(),
        )
        .map_err(|e| {
            CliError::failed(format!(
                "cannot write {}: {e}; nothing was changed",
                resolved.config_path.display()
            ))
        })?;
        undo.config = Some((resolved.config_path.clone(), text.clone(), bak));
    }
    let logs = resolved.logs_dir();
    let mut manager_touched = false;
    let result = (|| -> Result<(), CliError> {
        undo.create_dir(&resolved.state_dir, true)?;
        undo.create_dir(&logs, true)?;
        for step in &plan {
            match step {
                Step::WriteFiles if !unchanged => {
                    for (f, b) in files.iter().zip(&before) {
                        if let Some(dir) = f.path.parent() {
                            undo.create_dir(dir, false)?;
                        }
                        // Recorded first: a half-written file is put back too.
                        undo.files.push((f.path.clone(), b.clone()));
                        write_service_file(f)?;
                    }
                }
                Step::Run { cmd: c, tolerate } => {
                    manager_touched = true;
                    manager.run_step(c, *tolerate).map_err(|e| {
                        let logs = match platform {
                            Platform::Systemd => String::new(),
                            _ => format!(
                                " ({}, {})",
                                resolved.display(&spec.stdout_log),
                                resolved.display(&spec.stderr_log)
                            ),
                        };
                        let again = match e {
                            ServiceError::LaunchdBusy { .. } => {
                                format!("\nthen: `{cmd} gateway install`")
                            }
                            _ => String::new(),
                        };
                        CliError::failed(format!(
                            "{e}{again}\n{}{logs}",
                            manager.diagnose_hint(&unit)
                        ))
                    })?;
                }
                _ => {}
            }
        }
        Ok(())
    })();
    if let Err(e) = result {
        let report = undo_install(
            manager.as_ref(),
            &unit,
            before_state,
            undo,
            manager_touched,
            &cmd,
        );
        return Err(CliError::failed(format!("{}\n{report}", e.message())));
    }

    let state = manager.state(&unit);
    if ctx.json {
        out::json(&json!({
            "ok": true,
            "profile": resolved.profile.name(),
            "platform": platform.as_str(),
            "name": unit.name,
            "files": files.iter().map(|f| &f.path).collect::<Vec<_>>(),
            "port": port,
            "binary": binary,
            "changed": !unchanged || new_text.is_some(),
            "state": state.as_ref().map(ToString::to_string).ok(),
            "warnings": warnings,
        }));
    } else {
        let verb = if unchanged {
            "Already installed:"
        } else if replacing {
            "Replaced"
        } else {
            "Installed"
        };
        println!(
            "{verb} {platform} {} for profile {}",
            unit.name, resolved.profile
        );
        for f in &files {
            println!("  file     {}", resolved.display(&f.path));
        }
        println!("  runs     {} gateway --port {port}", binary.display());
        if new_text.is_some() {
            println!("  config   gateway.port = {port} in {shown_config}");
        }
        match &state {
            Ok(s) => println!("  state    {s}"),
            Err(e) => println!("  state    unknown: {e}"),
        }
        for w in &warnings {
            println!("warning: {w}");
        }
    }
    Ok(Outcome::Ok)
}

/// Words a manager's notice for this service: lingering keeps a service
/// running without a session only when it reads its secrets without one
/// (`session_secrets` empty); keychain secrets wait for the login.
fn notice_text(notice: &Notice, session_secrets: &[String], cmd: &str) -> String {
    match notice {
        Notice::LingerOff { user } if session_secrets.is_empty() => format!(
            "lingering is off for {user}: the gateway starts when you log in and stops when your last session ends; \
             to keep it running without a session: loginctl enable-linger {user}"
        ),
        Notice::LingerOff { user } => {
            let moves: Vec<String> = session_secrets
                .iter()
                .map(|key| format!("`{cmd} --secrets-file secrets set {key}`"))
                .collect();
            format!(
                "lingering is off for {user}: the gateway starts when you log in, when the keychain opens ({} in it), and stops when your last session ends; \
                 lingering alone would not start it earlier, because a service cannot open the keychain before you log in; \
                 to make it independent of login, keep the profile's secrets in its own file ({}), then `loginctl enable-linger {user}`",
                session_secrets.join(" and "),
                moves.join(", ")
            )
        }
    }
}

fn write_service_file(f: &ServiceFile) -> Result<(), CliError> {
    fsx::atomic_replace(&f.path, &f.bytes())
        .map_err(|e| CliError::failed(format!("cannot write {}: {e}", f.path.display())))
}

#[allow(clippy::too_many_arguments)]
fn print_dry_run(
    ctx: &Ctx,
    resolved: &Resolved,
    platform: Platform,
    unit: &Unit,
    spec: &ServiceSpec,
    files: &[ServiceFile],
    plan: &[Step],
    config_change: bool,
    warnings: &[String],
    refusals: &[CliError],
) {
    if ctx.json {
        out::json(&json!({
            "ok": refusals.is_empty(),
            "dryRun": true,
            "wouldRefuse": refusals.iter().map(CliError::message).collect::<Vec<_>>(),
            "profile": resolved.profile.name(),
            "platform": platform.as_str(),
            "name": unit.name,
            "port": spec.port,
            "binary": spec.binary,
            "configChange": config_change.then(|| json!({"path": resolved.config_path, "key": "gateway.port", "value": spec.port})),
            "files": files.iter().map(|f| json!({"path": f.path, "contents": f.contents})).collect::<Vec<_>>(),
            "commands": step_argv(plan),
            "warnings": warnings,
        }));
        return;
    }
    println!(
        "Dry run for profile {}: nothing is written or run.",
        resolved.profile
    );
    if config_change {
        println!(
            "Would set gateway.port = {} in {}",
            spec.port,
            resolved.display(&resolved.config_path)
        );
    }
    for f in files {
        println!("Would write {}:", resolved.display(&f.path));
        for line in f.contents.lines() {
            println!("    {line}");
        }
    }
    println!("Would run:");
    for s in plan.iter().filter_map(show_step) {
        println!("    {s}");
    }
    for w in warnings {
        println!("warning: {w}");
    }
    for r in refusals {
        println!("The install would refuse, as it is now:\n  {}", r.message());
    }
}

/// `gateway uninstall [--dry-run]`.
pub fn uninstall(ctx: &Ctx, args: &UninstallArgs) -> CmdResult {
    let resolved = ctx.resolve()?;
    ctx.print_notes(&resolved);
    let manager = select(ctx)?;
    let platform = manager.platform();
    let unit = unit_of(platform, &resolved);
    let files = existing_files(platform, &resolved.home, &resolved.service_names());
    let plan = manager.uninstall_plan(&unit);
    if args.dry_run {
        if ctx.json {
            out::json(&json!({
                "ok": true,
                "dryRun": true,
                "profile": resolved.profile.name(),
                "platform": platform.as_str(),
                "name": unit.name,
                "files": files,
                "commands": step_argv(&plan),
            }));
        } else {
            println!(
                "Dry run for profile {}: nothing is removed or run.",
                resolved.profile
            );
            println!("Would run:");
            for s in plan.iter().filter_map(show_step) {
                println!("    {s}");
            }
            for f in &files {
                println!("Would remove {}", resolved.display(f));
            }
        }
        return Ok(Outcome::Ok);
    }
    // Removing the service stops its gateway: on purpose.
    let recorded = installed(platform, &resolved) && record_stop(&resolved, StopBy::Cli)?;
    let removed = remove_service(manager.as_ref(), &resolved).inspect_err(|_| {
        if recorded {
            let _ = intent::clear(&resolved.state_dir);
        }
    })?;
    let Some(removed) = removed else {
        if ctx.json {
            out::json(&json!({"ok": true, "profile": resolved.profile.name(), "removed": false}));
        } else {
            println!(
                "Profile {} has no {platform} installed ({}); nothing to remove.",
                resolved.profile, unit.name
            );
        }
        return Ok(Outcome::Ok);
    };
    if ctx.json {
        out::json(
            &json!({"ok": true, "profile": resolved.profile.name(), "removed": true, "name": removed.name, "files": removed.files}),
        );
    } else {
        println!(
            "Removed {platform} {} of profile {}",
            removed.name, resolved.profile
        );
        for f in &removed.files {
            println!("  removed  {}", resolved.display(f));
        }
    }
    Ok(Outcome::Ok)
}

/// A service [`remove_service`] took away.
pub struct RemovedService {
    pub platform: Platform,
    pub name: String,
    pub files: Vec<PathBuf>,
}

/// Stops and removes `resolved`'s service through `manager` (its steps,
/// then its files); `Ok(None)` when none is installed or loaded.
pub fn remove_service(
    manager: &dyn ServiceManager,
    resolved: &Resolved,
) -> Result<Option<RemovedService>, CliError> {
    let platform = manager.platform();
    let unit = unit_of(platform, resolved);
    let files = existing_files(platform, &resolved.home, &resolved.service_names());
    if files.is_empty() {
        let loaded = matches!(manager.state(&unit), Ok(s) if s != ServiceState::NotLoaded);
        if !loaded {
            return Ok(None);
        }
    }
    for step in &manager.uninstall_plan(&unit) {
        match step {
            Step::Run { cmd, tolerate } => {
                manager.run_step(cmd, *tolerate).map_err(|e| {
                    CliError::failed(format!(
                        "{e}\nnothing was removed yet besides what the steps before it did; fix that, then run `{} gateway uninstall` again",
                        command(resolved)
                    ))
                })?;
            }
            Step::RemoveFiles => {
                for f in &files {
                    fs::remove_file(f).map_err(|e| {
                        CliError::failed(format!("cannot remove {}: {e}", f.display()))
                    })?;
                }
            }
            Step::WriteFiles | Step::RestoreFiles => {}
        }
    }
    Ok(Some(RemovedService {
        platform,
        name: unit.name,
        files,
    }))
}

fn holder(resolved: &Resolved) -> Option<Holder> {
    InstanceLock::probe(&resolved.lock_path()).ok().flatten()
}

fn no_service(resolved: &Resolved) -> CliError {
    let cmd = command(resolved);
    CliError::failed(format!(
        "profile {} has no gateway service installed: run it in the foreground with `{cmd} gateway`, or install a service with `{cmd} gateway install`",
        resolved.profile
    ))
}

fn done(ctx: &Ctx, resolved: &Resolved, action: &str, message: &str) -> CmdResult {
    if ctx.json {
        out::json(
            &json!({"ok": true, "profile": resolved.profile.name(), "action": action, "message": message}),
        );
    } else {
        println!("{message}");
    }
    Ok(Outcome::Ok)
}

pub(super) fn installed(platform: Platform, resolved: &Resolved) -> bool {
    !existing_files(platform, &resolved.home, &resolved.service_names()).is_empty()
}

fn owner_word(h: &Holder) -> &'static str {
    h.owner.map_or("unknown owner", Owner::as_str)
}

/// Asks the desktop app (over its control socket) to `op` this profile's
/// gateway, as a click on its tray menu would.
fn via_desktop(ctx: &Ctx, resolved: &Resolved, op: Op) -> CmdResult {
    let path = desktopctl::socket_path(&resolved.home);
    let request = desktopctl::Request::new(op, resolved.profile.name());
    let reply =
        desktopctl::call(&path, &request, desktopctl::REPLY_WAIT).map_err(|e| match e {
            desktopctl::CtlError::NotRunning { .. } if op != Op::Start => CliError::failed(format!(
                "profile {} is held by a desktop app that does not answer on {}: quit that app and start it again, then retry",
                resolved.profile,
                path.display()
            )),
            other => CliError::failed(other),
        })?;
    if !reply.ok {
        return Err(CliError::failed(format!(
            "the desktop app did not {} profile {}: {}",
            op.as_str(),
            resolved.profile,
            reply.message
        )));
    }
    done(ctx, resolved, op.as_str(), &reply.message)
}

/// A failed `start` / `restart` (`action`) of the service; one launchd
/// was too busy to take says which command to run again.
fn manager_error(e: ServiceError, resolved: &Resolved, action: &str) -> CliError {
    match e {
        ServiceError::LaunchdBusy { .. } => CliError::failed(format!(
            "{e}\nthen: `{} gateway {action}`",
            command(resolved)
        )),
        other => CliError::failed(other),
    }
}

fn embedded(h: &Holder) -> bool {
    h.owner == Some(Owner::Embedded)
}

/// `gateway start`: through the service; never a second copy.
pub fn start(ctx: &Ctx) -> CmdResult {
    let resolved = ctx.resolve()?;
    ctx.print_notes(&resolved);
    let manager = select(ctx)?;
    let platform = manager.platform();
    if let Some(h) = holder(&resolved) {
        return done(
            ctx,
            &resolved,
            "start",
            &format!(
                "profile {} is already running (pid {}, {}); not starting another copy",
                resolved.profile,
                h.pid,
                owner_word(&h)
            ),
        );
    }
    if !installed(platform, &resolved) {
        // A running desktop app runs it in-process, like its Start item.
        if desktopctl::running(&desktopctl::socket_path(&resolved.home)) {
            return via_desktop(ctx, &resolved, Op::Start);
        }
        return Err(no_service(&resolved));
    }
    let unit = unit_of(platform, &resolved);
    manager
        .start(&unit)
        .map_err(|e| manager_error(e, &resolved, "start"))?;
    let state = manager
        .state(&unit)
        .map_or_else(|e| format!("unknown: {e}"), |s| s.to_string());
    done(
        ctx,
        &resolved,
        "start",
        &format!(
            "started {platform} {} of profile {} ({state})",
            unit.name, resolved.profile
        ),
    )
}

/// `gateway stop`: the service, or a gateway the lock says runs from a
/// terminal. The stop is recorded as on purpose first (the gateway may be
/// gone the moment it is asked), and forgotten again when it fails.
pub fn stop(ctx: &Ctx, args: &StopArgs) -> CmdResult {
    let resolved = ctx.resolve()?;
    ctx.print_notes(&resolved);
    let by = StopBy::parse(&args.by).unwrap_or(StopBy::Cli);
    let recorded = record_stop(&resolved, by)?;
    let result = stop_now(ctx, &resolved);
    if result.is_err() && recorded {
        let _ = intent::clear(&resolved.state_dir);
    }
    result
}

/// Records in the state dir that `by` stops this profile's gateway on
/// purpose, naming the gateway that runs now; whether it wrote (a profile
/// without a state dir has nothing to stop and nothing to record).
fn record_stop(resolved: &Resolved, by: StopBy) -> Result<bool, CliError> {
    if !resolved.state_dir.is_dir() {
        return Ok(false);
    }
    let running = holder(resolved);
    let stop = StopIntent {
        by,
        owner: running
            .as_ref()
            .and_then(|h| h.owner)
            .map(|o| o.as_str().to_string()),
        pid: running.as_ref().map(|h| h.pid),
        at_ms: intent::now_ms(),
    };
    intent::record(&resolved.state_dir, &stop).map_err(|e| {
        CliError::failed(format!(
            "cannot record the stop in {}: {e}; nothing was stopped",
            resolved.display(&resolved.state_dir.join(intent::FILE))
        ))
    })?;
    Ok(true)
}

fn stop_now(ctx: &Ctx, resolved: &Resolved) -> CmdResult {
    let resolved = resolved.clone();
    let manager = select(ctx)?;
    let platform = manager.platform();
    let has_service = installed(platform, &resolved);
    if has_service {
        let unit = unit_of(platform, &resolved);
        manager.stop(&unit).map_err(CliError::failed)?;
        if !matches!(
            holder(&resolved),
            Some(Holder {
                owner: Some(Owner::Cli | Owner::Embedded),
                ..
            })
        ) {
            return done(
                ctx,
                &resolved,
                "stop",
                &format!(
                    "stopped {platform} {} of profile {}",
                    unit.name, resolved.profile
                ),
            );
        }
    }
    match holder(&resolved) {
        None => done(
            ctx,
            &resolved,
            "stop",
            &format!("profile {} is not running", resolved.profile),
        ),
        Some(h) if h.owner == Some(Owner::Cli) => {
            omniclaw_os::service::terminate_cli_gateway(&resolved.lock_path(), h.pid, STOP_WAIT)
                .map_err(CliError::failed)?;
            done(
                ctx,
                &resolved,
                "stop",
                &format!(
                    "stopped the gateway of profile {} that ran from a terminal (pid {}, sent SIGTERM)",
                    resolved.profile, h.pid
                ),
            )
        }
        Some(h) if embedded(&h) => act_embedded(ctx, &resolved, &h, Op::Stop),
        Some(h) => Err(CliError::failed(format!(
            "profile {} runs as pid {} ({}) under a service this profile did not install here: stop it with the service manager that runs it ({})",
            resolved.profile,
            h.pid,
            owner_word(&h),
            foreign_hint()
        ))),
    }
}

/// Stops or restarts (`op`) a gateway the desktop app runs, through the app.
#[cfg(unix)]
fn act_embedded(ctx: &Ctx, resolved: &Resolved, _holder: &Holder, op: Op) -> CmdResult {
    via_desktop(ctx, resolved, op)
}

#[cfg(not(unix))]
fn act_embedded(_ctx: &Ctx, resolved: &Resolved, holder: &Holder, op: Op) -> CmdResult {
    Err(CliError::failed(format!(
        "profile {} runs inside the desktop app (pid {}): {} it from the tray menu",
        resolved.profile,
        holder.pid,
        op.as_str()
    )))
}

/// `gateway restart`: through the service, or the desktop app running it.
pub fn restart(ctx: &Ctx) -> CmdResult {
    let resolved = ctx.resolve()?;
    ctx.print_notes(&resolved);
    if let Some(h) = holder(&resolved).filter(embedded) {
        return act_embedded(ctx, &resolved, &h, Op::Restart);
    }
    let manager = select(ctx)?;
    let platform = manager.platform();
    if !installed(platform, &resolved) {
        return match holder(&resolved) {
            Some(h) if h.owner == Some(Owner::Cli) => Err(CliError::failed(format!(
                "profile {} runs from a terminal (pid {}): restart it there (Ctrl+C, then run it again), or install a service with `{} gateway install`",
                resolved.profile,
                h.pid,
                command(&resolved)
            ))),
            _ => Err(no_service(&resolved)),
        };
    }
    if let Some(h) = holder(&resolved).filter(|h| h.owner != Some(Owner::Service)) {
        return Err(CliError::failed(format!(
            "profile {} runs outside its service (pid {}, {}): stop it first (`{} gateway stop`), then restart",
            resolved.profile,
            h.pid,
            owner_word(&h),
            command(&resolved)
        )));
    }
    let unit = unit_of(platform, &resolved);
    manager
        .restart(&unit)
        .map_err(|e| manager_error(e, &resolved, "restart"))?;
    done(
        ctx,
        &resolved,
        "restart",
        &format!(
            "restarted {platform} {} of profile {}",
            unit.name, resolved.profile
        ),
    )
}

/// A part of `gateway status`: JSON, text lines (the service's own fact,
/// or the `--deep` listing), and warnings (which make it exit 1).
pub struct Section {
    pub json: Value,
    pub lines: Vec<String>,
    pub warnings: Vec<String>,
}

/// The service manager for `gateway status`: an unknown
/// `OMNICLAW_SERVICE_MANAGER` is bad input (exit 2), as for install; an
/// unreachable one is reported as `Err(Section)` and the status goes on.
fn select_for_status(
    ctx: &Ctx,
    unavailable: impl FnOnce(&CliError) -> Section,
) -> Result<Result<Box<dyn ServiceManager>, Section>, CliError> {
    match select(ctx) {
        Ok(m) => Ok(Ok(m)),
        Err(e @ CliError::Usage(_)) => Err(e),
        Err(e) => Ok(Err(unavailable(&e))),
    }
}

/// This profile's service: installed or not, what the manager says, stale
/// or not; with `deep`, also whether it differs from what `gateway install`
/// would write now.
pub fn status_section(ctx: &Ctx, resolved: &Resolved, deep: bool) -> Result<Section, CliError> {
    let manager = match select_for_status(ctx, |e| Section {
        json: json!({"installed": false, "error": e.message()}),
        lines: vec![format!("unavailable: {e}")],
        warnings: Vec::new(),
    })? {
        Ok(m) => m,
        Err(section) => return Ok(section),
    };
    let platform = manager.platform();
    let names = resolved.service_names();
    let unit = unit_of(platform, resolved);
    let command_file = platform.command_path(&resolved.home, &names);
    if !installed(platform, resolved) {
        return Ok(Section {
            json: json!({"installed": false, "platform": platform.as_str(), "name": unit.name}),
            lines: vec![format!(
                "not installed (`{} gateway install` adds a {platform})",
                command(resolved)
            )],
            warnings: Vec::new(),
        });
    }
    let binary_now = deep.then(|| chosen_binary(ctx)).flatten();
    let now = omniclaw_os::service::Now {
        binary: binary_now.as_deref(),
        resolved: deep.then_some(resolved),
    };
    let (installed, stale) = omniclaw_os::service::inspect(
        platform,
        &resolved.home,
        &resolved.profile,
        &command_file,
        now,
    );
    let state = manager.state(&unit);
    let (state_text, pid) = match &state {
        Ok(s @ ServiceState::Running { pid }) => (s.to_string(), *pid),
        Ok(s) => (s.to_string(), None),
        Err(e) => (format!("unknown ({e})"), None),
    };
    let mut warnings = Vec::new();
    if !stale.is_empty() {
        let reasons: Vec<String> = stale.iter().map(ToString::to_string).collect();
        warnings.push(format!(
            "the {platform} {} is stale: {}; {}",
            unit.name,
            reasons.join("; "),
            service::stale_fix(&resolved.profile, &stale)
        ));
    }
    let active = matches!(
        state,
        Ok(ServiceState::Running { .. }) | Ok(ServiceState::Starting)
    );
    Ok(Section {
        json: json!({
            "installed": true,
            "platform": platform.as_str(),
            "name": unit.name,
            "file": unit.definition,
            "port": installed.port,
            "active": active,
            "state": state_text,
            "mainPid": pid,
            "stale": stale.iter().map(ToString::to_string).collect::<Vec<_>>(),
        }),
        lines: vec![format!(
            "{platform} {} · {state_text}{}",
            unit.name,
            installed
                .port
                .map(|p| format!(" · port {p}"))
                .unwrap_or_default()
        )],
        warnings,
    })
}

/// `gateway status --deep`: OmniClaw services of every profile, stale ones,
/// and OpenClaw's gateway services with cleanup hints. Its warnings leave
/// out the current profile's service, which [`status_section`] covers.
pub fn deep_section(ctx: &Ctx, resolved: &Resolved) -> Result<Section, CliError> {
    let manager = match select_for_status(ctx, |e| Section {
        json: json!([]),
        lines: vec![format!("services: unavailable: {e}")],
        warnings: Vec::new(),
    })? {
        Ok(m) => m,
        Err(section) => return Ok(section),
    };
    let platform = manager.platform();
    let home = &resolved.home;
    let dir = platform.service_dir(home);
    let mut entries: Vec<(String, Option<PathBuf>)> = fs::read_dir(&dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| (e.file_name().to_string_lossy().into_owned(), Some(e.path())))
                .collect()
        })
        .unwrap_or_default();
    let mut notes = Vec::new();
    if platform == Platform::TaskScheduler {
        match manager.registered() {
            Ok(names) => entries.extend(names.into_iter().map(|n| (n, None))),
            Err(e) => notes.push(format!("cannot list scheduled tasks: {e}")),
        }
    }
    entries.sort();
    let binary_now = chosen_binary(ctx);
    let mut rows = Vec::new();
    let mut lines = vec![format!(
        "services ({platform}s under {}):",
        resolved.display(&dir)
    )];
    let mut warnings = Vec::new();
    for (name, path) in entries {
        let Some(owner) = service::classify(platform, &name) else {
            continue;
        };
        match owner {
            ServiceOwner::OpenClaw => {
                // Task Scheduler names come without a file.
                let hint = service::foreign_cleanup(platform, &name, path.as_deref());
                lines.push(format!(
                    "  {name}  OpenClaw gateway (not managed by OmniClaw)\n    cleanup: {hint}"
                ));
                rows.push(
                    json!({"name": name, "owner": "openclaw", "file": path, "cleanup": hint}),
                );
            }
            ServiceOwner::OmniClaw(profile) => {
                let names = ServiceNames::for_profile(&profile);
                let Some(path) = path else {
                    // A task known to Task Scheduler: its launcher script is what we read.
                    if platform.command_path(home, &names).is_file() {
                        continue;
                    }
                    let fix = format!("{} gateway uninstall", profile_cmd(&profile));
                    warnings.push(format!(
                        "the task {name} has no launcher script in {}: `{fix}` removes it",
                        resolved.display(&dir)
                    ));
                    rows.push(json!({"name": name, "owner": "omniclaw", "profile": profile.name(), "stale": ["launcher script missing"]}));
                    continue;
                };
                // On Windows the launcher script carries the command; skip the XML twin.
                if path != platform.command_path(home, &names) {
                    continue;
                }
                let now = omniclaw_os::service::Now {
                    binary: binary_now.as_deref(),
                    resolved: (profile == resolved.profile).then_some(resolved),
                };
                let (installed, stale) =
                    omniclaw_os::service::inspect(platform, home, &profile, &path, now);
                let unit = Unit {
                    name: platform.service_name(&names).to_string(),
                    definition: platform.definition_path(home, &names),
                };
                let state = manager
                    .state(&unit)
                    .map_or_else(|e| format!("unknown ({e})"), |s| s.to_string());
                let reasons: Vec<String> = stale.iter().map(ToString::to_string).collect();
                let fix = (!stale.is_empty()).then(|| service::stale_fix(&profile, &stale));
                lines.push(format!(
                    "  {}  profile {} · port {} · {state}{}",
                    unit.name,
                    profile,
                    installed.port.map_or("?".into(), |p| p.to_string()),
                    if stale.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "\n    stale: {}\n    fix: {}",
                            reasons.join("; "),
                            fix.clone().unwrap_or_default()
                        )
                    }
                ));
                // The current profile's own service is warned about by
                // `status_section` already.
                if let Some(fix) = fix.as_ref().filter(|_| profile != resolved.profile) {
                    warnings.push(format!(
                        "the {platform} {} of profile {profile} is stale: {}; {fix}",
                        unit.name,
                        reasons.join("; ")
                    ));
                }
                rows.push(json!({
                    "name": unit.name,
                    "owner": "omniclaw",
                    "profile": profile.name(),
                    "file": path,
                    "port": installed.port,
                    "binary": installed.binary,
                    "state": state,
                    "stale": reasons,
                    "fix": fix,
                }));
            }
        }
    }
    if rows.is_empty() {
        lines.push("  none".into());
    }
    for n in notes {
        lines.push(format!("  note: {n}"));
    }
    Ok(Section {
        json: Value::Array(rows),
        lines,
        warnings,
    })
}

fn profile_cmd(profile: &omniclaw_core::profile::Profile) -> String {
    match profile.suffix() {
        None => "omniclaw".into(),
        Some(n) => format!("omniclaw --profile {n}"),
    }
}
