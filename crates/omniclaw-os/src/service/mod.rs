//! Service managers: `systemctl --user`, `launchctl` and `schtasks` behind
//! one [`ServiceManager`] trait.
//!
//! Each adapter turns an operation into the exact commands to run and runs
//! them through a [`CommandRunner`], so tests assert the argv without
//! running anything, and black-box tests can put the manager out of reach
//! (`OMNICLAW_SERVICE_MANAGER=none`). Adapters never write service files
//! (the caller does, at the [`Step::WriteFiles`] of a plan) and never decide
//! policy; every failure names the command and the fix.

mod inspect;
mod launchd;
mod process;
mod runner;
mod schtasks;
mod systemd;

use std::fmt;
use std::io;
use std::path::PathBuf;

use omniclaw_core::env::EnvSnapshot;
use omniclaw_core::service::Platform;

pub use inspect::{inspect, Now};
pub use launchd::Launchd;
pub use process::{current_uid, terminate_cli_gateway, TerminateError};
pub use runner::{Cmd, CmdOutput, CommandRunner, NoRunner, SystemRunner};
pub use schtasks::Schtasks;
pub use systemd::Systemd;

/// Chooses the service manager: `systemd`, `launchd`, `schtasks` or `none`.
pub const MANAGER_ENV: &str = "OMNICLAW_SERVICE_MANAGER";

/// One registered service: its name with the manager and its definition file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// Unit file name, launchd label or task name.
    pub name: String,
    /// The unit file, plist or task XML.
    pub definition: PathBuf,
}

/// Which failures of a plan's command still count as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tolerate {
    /// Any failure stops the plan.
    Nothing,
    /// The manager saying the service does not exist or is not loaded
    /// counts as done (removing what is already gone); other failures stop.
    Absent,
    /// Any failure is fine: a best-effort step (unloading a previous
    /// version that may not be loaded, stopping before a removal).
    Any,
}

/// One step of installing, uninstalling or undoing an install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Run a command; `tolerate` says which failures still count as done.
    Run { cmd: Cmd, tolerate: Tolerate },
    /// The caller writes the service files here.
    WriteFiles,
    /// The caller removes the service files here.
    RemoveFiles,
    /// The caller puts the service files back as they were before an
    /// install (removes new ones, rewrites replaced ones).
    RestoreFiles,
}

impl Step {
    /// The command a step runs, or `<write>` / `<remove>` / `<restore>`
    /// for the caller's file steps: how tests compare plans.
    #[cfg(test)]
    fn label(&self) -> String {
        match self {
            Step::Run { cmd, .. } => cmd.to_string(),
            Step::WriteFiles => "<write>".into(),
            Step::RemoveFiles => "<remove>".into(),
            Step::RestoreFiles => "<restore>".into(),
        }
    }

    fn run(cmd: Cmd) -> Step {
        Step::Run {
            cmd,
            tolerate: Tolerate::Nothing,
        }
    }

    fn unless_absent(cmd: Cmd) -> Step {
        Step::Run {
            cmd,
            tolerate: Tolerate::Absent,
        }
    }

    fn tolerant(cmd: Cmd) -> Step {
        Step::Run {
            cmd,
            tolerate: Tolerate::Any,
        }
    }
}

/// What was installed before an install began, for undoing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Before {
    /// No version of the service was installed.
    Nothing,
    /// A previous version was installed; `running` when the manager ran it.
    Installed { running: bool },
}

/// What the service manager says about a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceState {
    /// The manager does not know it (not installed, or unloaded).
    NotLoaded,
    Stopped,
    Starting,
    Running {
        pid: Option<u32>,
    },
    Failed {
        reason: String,
    },
}

impl fmt::Display for ServiceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceState::NotLoaded => f.write_str("not loaded"),
            ServiceState::Stopped => f.write_str("stopped"),
            ServiceState::Starting => f.write_str("starting"),
            ServiceState::Running { pid: Some(p) } => write!(f, "running (pid {p})"),
            ServiceState::Running { pid: None } => f.write_str("running"),
            ServiceState::Failed { reason } => write!(f, "failed: {reason}"),
        }
    }
}

/// Why a service manager call failed, with the fix.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("`{program}` was not found: {fix}")]
    MissingManager {
        program: &'static str,
        fix: &'static str,
    },
    #[error("`{command}` cannot reach the systemd manager of {user} ({detail}): log in to a session of {user} (desktop or `ssh`) so its manager runs (from sudo or su use `machinectl shell {user}@`); to keep gateways running without a session, enable lingering with `loginctl enable-linger {user}`")]
    NoUserBus {
        command: String,
        detail: String,
        user: String,
    },
    #[error("`{command}` found no GUI login session of this user ({detail}): log in to the Mac's desktop as this user; launch agents run in that session")]
    NoGuiSession { command: String, detail: String },
    #[error("`{command}` was denied ({detail}): {fix}")]
    PermissionDenied {
        command: String,
        detail: String,
        fix: &'static str,
    },
    #[error("`{command}` failed{}: {detail}", code.map(|c| format!(" (exit {c})")).unwrap_or_default())]
    Failed {
        command: String,
        code: Option<i32>,
        detail: String,
    },
    #[error("`{command}` still failed after {tries} tries ({detail}): launchd often refuses to load an agent right after unloading it; see the agent with `launchctl print {target}`, and try again in a few seconds")]
    LaunchdBusy {
        command: String,
        detail: String,
        target: String,
        tries: u32,
    },
    #[error("no service manager: {reason}")]
    Unavailable { reason: String },
    #[error("{MANAGER_ENV}={value:?} is not a service manager: use systemd, launchd, schtasks or none (or unset it to use this system's own)")]
    UnknownManager { value: String },
    #[error("cannot run `{command}`: {source}")]
    Spawn { command: String, source: io::Error },
}

/// Something the manager's set-up means for an installed service, found
/// by [`ServiceManager::preflight`]; the caller words the advice, since it
/// depends on where the service's secrets are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// systemd lingering is off for `user`: the user's manager, and with it
    /// the service, runs only while the user has a session.
    LingerOff { user: String },
}

/// A platform's service manager.
pub trait ServiceManager {
    fn platform(&self) -> Platform;

    /// Checks that the manager can be used now; returns what the caller
    /// should tell the user (for example: lingering is off, so the gateway
    /// stops at log out).
    fn preflight(&self) -> Result<Vec<Notice>, ServiceError>;

    /// The steps of installing `unit`; `replacing` when a previous version is installed.
    fn install_plan(&self, unit: &Unit, replacing: bool) -> Vec<Step>;

    /// The steps that undo an install of `unit` whose manager steps failed
    /// after its files were written: the manager forgets the new version
    /// (or takes the previous one back, as it ran), with the files put back
    /// at [`Step::RestoreFiles`]. Run best-effort, every step.
    fn undo_install_plan(&self, unit: &Unit, before: Before) -> Vec<Step>;

    /// The steps of uninstalling `unit`.
    fn uninstall_plan(&self, unit: &Unit) -> Vec<Step>;

    /// Runs one command of a plan.
    fn run(&self, cmd: &Cmd) -> Result<CmdOutput, ServiceError>;

    /// Whether `err` says the service does not exist or is not loaded.
    fn is_absent(&self, err: &ServiceError) -> bool;

    /// Runs one command of a plan, applying its [`Tolerate`]: `Ok(false)`
    /// when it failed in a way the step allows.
    fn run_step(&self, cmd: &Cmd, tolerate: Tolerate) -> Result<bool, ServiceError> {
        match self.run(cmd) {
            Ok(_) => Ok(true),
            Err(_) if tolerate == Tolerate::Any => Ok(false),
            Err(e) if tolerate == Tolerate::Absent && self.is_absent(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Where to look when `unit` does not start: the manager's own view
    /// (the journal, `launchctl print`, the task's last result).
    fn diagnose_hint(&self, unit: &Unit) -> String;

    fn start(&self, unit: &Unit) -> Result<(), ServiceError>;
    fn stop(&self, unit: &Unit) -> Result<(), ServiceError>;
    fn restart(&self, unit: &Unit) -> Result<(), ServiceError>;
    fn state(&self, unit: &Unit) -> Result<ServiceState, ServiceError>;

    /// Names of the services the manager itself lists, for managers that
    /// keep no files the caller can scan (Task Scheduler); empty otherwise.
    fn registered(&self) -> Result<Vec<String>, ServiceError>;
}

/// The service manager `env` asks for (`OMNICLAW_SERVICE_MANAGER`), else
/// the native one. `none` keeps the native platform's files and plans but
/// fails every call, so nothing reaches a real manager.
pub fn select(env: &EnvSnapshot) -> Result<Box<dyn ServiceManager>, ServiceError> {
    let requested = env.get(MANAGER_ENV);
    let (platform, runner): (Option<Platform>, Box<dyn CommandRunner>) = match requested {
        None => (Platform::native(), Box::new(SystemRunner)),
        Some(raw) if raw.eq_ignore_ascii_case("none") => (
            Platform::native().or(Some(Platform::Systemd)),
            Box::new(NoRunner::new(format!(
                "{MANAGER_ENV}=none turns service managers off; unset it to use this system's"
            ))),
        ),
        Some(raw) => match Platform::parse(raw) {
            Some(p) => (Some(p), Box::new(SystemRunner)),
            None => {
                return Err(ServiceError::UnknownManager {
                    value: raw.to_string(),
                })
            }
        },
    };
    let platform = platform.ok_or_else(|| ServiceError::Unavailable {
        reason: "this operating system has no supported service manager (systemd, launchd, Task Scheduler): run `omniclaw gateway` under your own supervisor".into(),
    })?;
    Ok(match platform {
        Platform::Systemd => Box::new(Systemd::new(
            runner,
            env.get("USER")
                .or_else(|| env.get("LOGNAME"))
                .map(str::to_owned),
        )),
        Platform::Launchd => Box::new(Launchd::new(runner, current_uid().unwrap_or(0))),
        Platform::TaskScheduler => Box::new(Schtasks::new(runner)),
    })
}

/// Runs `cmd` through `runner`; a missing program, a refused spawn and a
/// non-zero exit become errors, the last classified by `classify`.
fn checked(
    runner: &dyn CommandRunner,
    cmd: &Cmd,
    missing: (&'static str, &'static str),
    classify: impl Fn(&str, &str) -> Option<ServiceError>,
) -> Result<CmdOutput, ServiceError> {
    let out = runner.run(cmd).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => ServiceError::MissingManager {
            program: missing.0,
            fix: missing.1,
        },
        io::ErrorKind::Unsupported => ServiceError::Unavailable {
            reason: e.to_string(),
        },
        _ => ServiceError::Spawn {
            command: cmd.to_string(),
            source: e,
        },
    })?;
    if out.success() {
        return Ok(out);
    }
    let detail = out.detail();
    Err(
        classify(&cmd.to_string(), &detail).unwrap_or_else(|| ServiceError::Failed {
            command: cmd.to_string(),
            code: out.code,
            detail,
        }),
    )
}

#[cfg(test)]
pub(crate) mod fake {
    //! A recording runner that answers from a script.

    use std::cell::RefCell;
    use std::io;
    use std::rc::Rc;

    use super::{Cmd, CmdOutput, CommandRunner};

    type Answer = Box<dyn Fn(&Cmd) -> io::Result<CmdOutput>>;

    #[derive(Clone)]
    pub struct Fake {
        pub log: Rc<RefCell<Vec<String>>>,
        answer: Rc<Answer>,
    }

    impl Fake {
        /// Every command succeeds with empty output.
        pub fn ok() -> Fake {
            Fake::answering(|_| Ok(out(0, "", "")))
        }

        pub fn answering(f: impl Fn(&Cmd) -> io::Result<CmdOutput> + 'static) -> Fake {
            Fake {
                log: Rc::default(),
                answer: Rc::new(Box::new(f)),
            }
        }

        pub fn commands(&self) -> Vec<String> {
            self.log.borrow().clone()
        }
    }

    pub fn out(code: i32, stdout: &str, stderr: &str) -> CmdOutput {
        CmdOutput {
            code: Some(code),
            stdout: stdout.into(),
            stderr: stderr.into(),
        }
    }

    impl CommandRunner for Fake {
        fn run(&self, cmd: &Cmd) -> io::Result<CmdOutput> {
            self.log.borrow_mut().push(cmd.to_string());
            (self.answer)(cmd)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(var: Option<&str>, expected: Result<Platform, &str>) {
        let env = match var {
            Some(v) => EnvSnapshot::default().with(MANAGER_ENV, v),
            None => EnvSnapshot::default(),
        };
        match (select(&env), expected) {
            (Ok(m), Ok(p)) => assert_eq!(m.platform(), p, "{var:?}"),
            (Err(e), Err(fragment)) => {
                assert!(e.to_string().contains(fragment), "{var:?}: {e}")
            }
            (Ok(m), Err(_)) => panic!("{var:?}: got {:?}", m.platform()),
            (Err(e), Ok(_)) => panic!("{var:?}: {e}"),
        }
    }

    #[test]
    fn selection() {
        check(Some("systemd"), Ok(Platform::Systemd));
        check(Some("launchd"), Ok(Platform::Launchd));
        check(Some("schtasks"), Ok(Platform::TaskScheduler));
        check(Some("upstart"), Err("\"upstart\" is not a service manager"));
        if let Some(native) = Platform::native() {
            check(None, Ok(native));
            check(Some("none"), Ok(native));
        }
    }

    #[test]
    fn none_fails_every_call() {
        let env = EnvSnapshot::default().with(MANAGER_ENV, "none");
        let m = select(&env).expect("selects");
        let unit = Unit {
            name: "omniclaw-gateway.service".into(),
            definition: PathBuf::from("/x"),
        };
        let err = m.state(&unit).expect_err("no manager");
        assert!(
            err.to_string()
                .starts_with("no service manager: OMNICLAW_SERVICE_MANAGER=none"),
            "{err}"
        );
        assert!(m.preflight().is_err());
        assert!(!m.install_plan(&unit, false).is_empty());
    }
}
