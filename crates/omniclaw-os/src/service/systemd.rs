//! `systemctl --user`: the user's systemd manager on Linux.
//!
//! Never touches the system manager (no `sudo`, no `--system`).

use omniclaw_core::service::Platform;

use super::{
    checked, current_uid, Before, Cmd, CmdOutput, CommandRunner, Notice, ServiceError,
    ServiceManager, ServiceState, Step, Unit,
};

const MISSING: (&str, &str) = (
    "systemctl",
    "this system does not run systemd; run the gateway in the foreground (`omniclaw gateway`) under a supervisor of your own",
);

pub struct Systemd {
    runner: Box<dyn CommandRunner>,
    /// The login name, for the lingering check.
    user: Option<String>,
}

impl Systemd {
    pub fn new(runner: Box<dyn CommandRunner>, user: Option<String>) -> Systemd {
        Systemd { runner, user }
    }

    fn systemctl(args: &[&str]) -> Cmd {
        Cmd::new(
            "systemctl",
            std::iter::once("--user").chain(args.iter().copied()),
        )
    }

    fn call(&self, args: &[&str]) -> Result<CmdOutput, ServiceError> {
        self.run(&Systemd::systemctl(args))
    }

    /// The login name, for messages and the lingering check: the
    /// environment's, else the OS's (`id -un`), else the uid (which
    /// `loginctl` takes as well).
    fn user_name(&self) -> String {
        if let Some(user) = &self.user {
            return user.clone();
        }
        let id = Cmd::new("id", ["-un"]);
        if let Ok(out) = self.runner.run(&id) {
            let name = out.stdout.trim();
            if out.success() && !name.is_empty() {
                return name.to_string();
            }
        }
        match current_uid() {
            Some(uid) => uid.to_string(),
            None => "the user the gateway belongs to".to_string(),
        }
    }
}

/// `user` is asked only when a message names the user.
fn classify(user: &dyn Fn() -> String, command: &str, detail: &str) -> Option<ServiceError> {
    let lower = detail.to_ascii_lowercase();
    if lower.contains("failed to connect to bus")
        || lower.contains("dbus_session_bus_address")
        || lower.contains("xdg_runtime_dir")
        || lower.contains("no medium found")
    {
        return Some(ServiceError::NoUserBus {
            command: command.to_string(),
            detail: detail.to_string(),
            user: user(),
        });
    }
    if lower.contains("access denied")
        || lower.contains("permission denied")
        || lower.contains("interactive authentication required")
    {
        return Some(ServiceError::PermissionDenied {
            command: command.to_string(),
            detail: detail.to_string(),
            fix: "run it as the user the gateway belongs to, without sudo",
        });
    }
    None
}

impl ServiceManager for Systemd {
    fn platform(&self) -> Platform {
        Platform::Systemd
    }

    fn preflight(&self) -> Result<Vec<Notice>, ServiceError> {
        self.call(&["show", "--property=Version"])?;
        let mut notices = Vec::new();
        let user = self.user_name();
        let linger = Cmd::new(
            "loginctl",
            ["show-user", user.as_str(), "--property=Linger", "--value"],
        );
        // loginctl missing or the user unknown to logind: nothing to warn about.
        if let Ok(out) = self.runner.run(&linger) {
            if out.success() && out.stdout.trim() == "no" {
                notices.push(Notice::LingerOff { user });
            }
        }
        Ok(notices)
    }

    fn install_plan(&self, unit: &Unit, replacing: bool) -> Vec<Step> {
        let mut steps = vec![
            Step::WriteFiles,
            Step::run(Systemd::systemctl(&["daemon-reload"])),
            Step::run(Systemd::systemctl(&["enable", "--now", &unit.name])),
        ];
        if replacing {
            // `enable --now` leaves a running old version running.
            steps.push(Step::run(Systemd::systemctl(&["restart", &unit.name])));
        }
        steps
    }

    fn undo_install_plan(&self, unit: &Unit, before: Before) -> Vec<Step> {
        match before {
            Before::Nothing => vec![
                Step::tolerant(Systemd::systemctl(&["disable", "--now", &unit.name])),
                Step::RestoreFiles,
                Step::run(Systemd::systemctl(&["daemon-reload"])),
                Step::tolerant(Systemd::systemctl(&["reset-failed", &unit.name])),
            ],
            Before::Installed { running } => {
                let mut steps = vec![
                    Step::RestoreFiles,
                    Step::run(Systemd::systemctl(&["daemon-reload"])),
                    Step::run(Systemd::systemctl(&["enable", &unit.name])),
                ];
                if running {
                    steps.push(Step::run(Systemd::systemctl(&["restart", &unit.name])));
                }
                steps
            }
        }
    }

    fn uninstall_plan(&self, unit: &Unit) -> Vec<Step> {
        vec![
            Step::unless_absent(Systemd::systemctl(&["disable", "--now", &unit.name])),
            Step::RemoveFiles,
            Step::run(Systemd::systemctl(&["daemon-reload"])),
            Step::tolerant(Systemd::systemctl(&["reset-failed", &unit.name])),
        ]
    }

    fn run(&self, cmd: &Cmd) -> Result<CmdOutput, ServiceError> {
        checked(self.runner.as_ref(), cmd, MISSING, |c, d| {
            classify(&|| self.user_name(), c, d)
        })
    }

    fn is_absent(&self, err: &ServiceError) -> bool {
        match err {
            ServiceError::Failed { detail, .. } => {
                let d = detail.to_ascii_lowercase();
                d.contains("does not exist") || d.contains("not loaded") || d.contains("not found")
            }
            _ => false,
        }
    }

    fn diagnose_hint(&self, unit: &Unit) -> String {
        format!(
            "see why with `journalctl --user -u {0} -n 50` and `systemctl --user status {0}`",
            unit.name
        )
    }

    fn start(&self, unit: &Unit) -> Result<(), ServiceError> {
        self.call(&["start", &unit.name]).map(drop)
    }

    fn stop(&self, unit: &Unit) -> Result<(), ServiceError> {
        self.call(&["stop", &unit.name]).map(drop)
    }

    fn restart(&self, unit: &Unit) -> Result<(), ServiceError> {
        self.call(&["restart", &unit.name]).map(drop)
    }

    fn state(&self, unit: &Unit) -> Result<ServiceState, ServiceError> {
        let out = self.call(&[
            "show",
            &unit.name,
            "--property=LoadState,ActiveState,SubState,MainPID,Result",
        ])?;
        Ok(parse_show(&out.stdout, &unit.name))
    }

    fn registered(&self) -> Result<Vec<String>, ServiceError> {
        Ok(Vec::new())
    }
}

/// Reads `systemctl show` properties of the unit `name` into a state.
fn parse_show(text: &str, name: &str) -> ServiceState {
    let get = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(str::trim)
            .unwrap_or("")
    };
    if get("LoadState") == "not-found" {
        return ServiceState::NotLoaded;
    }
    let pid = get("MainPID").parse::<u32>().ok().filter(|p| *p > 0);
    match get("ActiveState") {
        "active" => ServiceState::Running { pid },
        "activating" | "reloading" => ServiceState::Starting,
        "failed" => ServiceState::Failed {
            reason: match get("Result") {
                "" | "success" => "failed".to_string(),
                r => format!("{r} (see `journalctl --user -u {name}`)"),
            },
        },
        _ => ServiceState::Stopped,
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::path::PathBuf;

    use super::super::fake::{out, Fake};
    use super::super::Tolerate;
    use super::*;

    fn unit() -> Unit {
        Unit {
            name: "omniclaw-gateway-rescue.service".into(),
            definition: PathBuf::from("/h/.config/systemd/user/omniclaw-gateway-rescue.service"),
        }
    }

    fn plan_text(steps: &[Step]) -> Vec<String> {
        steps
            .iter()
            .map(|s| match s {
                Step::Run { cmd, tolerate } => format!(
                    "{cmd}{}",
                    match tolerate {
                        Tolerate::Nothing => "",
                        Tolerate::Absent => " (done if absent)",
                        Tolerate::Any => " (may fail)",
                    }
                ),
                Step::WriteFiles => "<write files>".into(),
                Step::RemoveFiles => "<remove files>".into(),
                Step::RestoreFiles => "<restore files>".into(),
            })
            .collect()
    }

    #[test]
    fn plans() {
        let m = Systemd::new(Box::new(Fake::ok()), None);
        assert_eq!(
            plan_text(&m.install_plan(&unit(), false)),
            [
                "<write files>",
                "systemctl --user daemon-reload",
                "systemctl --user enable --now omniclaw-gateway-rescue.service",
            ]
        );
        assert_eq!(
            plan_text(&m.install_plan(&unit(), true))
                .last()
                .map(String::as_str),
            Some("systemctl --user restart omniclaw-gateway-rescue.service")
        );
        assert_eq!(
            plan_text(&m.uninstall_plan(&unit())),
            [
                "systemctl --user disable --now omniclaw-gateway-rescue.service (done if absent)",
                "<remove files>",
                "systemctl --user daemon-reload",
                "systemctl --user reset-failed omniclaw-gateway-rescue.service (may fail)",
            ]
        );
    }

    #[test]
    fn undo_plans() {
        let m = Systemd::new(Box::new(Fake::ok()), None);
        assert_eq!(
            plan_text(&m.undo_install_plan(&unit(), Before::Nothing)),
            [
                "systemctl --user disable --now omniclaw-gateway-rescue.service (may fail)",
                "<restore files>",
                "systemctl --user daemon-reload",
                "systemctl --user reset-failed omniclaw-gateway-rescue.service (may fail)",
            ]
        );
        assert_eq!(
            plan_text(&m.undo_install_plan(&unit(), Before::Installed { running: true })),
            [
                "<restore files>",
                "systemctl --user daemon-reload",
                "systemctl --user enable omniclaw-gateway-rescue.service",
                "systemctl --user restart omniclaw-gateway-rescue.service",
            ]
        );
        assert_eq!(
            plan_text(&m.undo_install_plan(&unit(), Before::Installed { running: false })).len(),
            3
        );
    }

    #[test]
    fn a_missing_unit_counts_as_removed() {
        let fake = Fake::answering(|_| {
            Ok(out(
                1,
                "",
                "Failed to disable unit: Unit file omniclaw-gateway-rescue.service does not exist.",
            ))
        });
        let m = Systemd::new(Box::new(fake), None);
        let disable = Systemd::systemctl(&["disable", "--now", "omniclaw-gateway-rescue.service"]);
        assert!(!m
            .run_step(&disable, Tolerate::Absent)
            .expect("absent is done"));
        assert!(m.run_step(&disable, Tolerate::Nothing).is_err());
        let denied = Fake::answering(|_| Ok(out(1, "", "Failed to disable unit: Access denied")));
        let m = Systemd::new(Box::new(denied), None);
        assert!(m.run_step(&disable, Tolerate::Absent).is_err());
        let hint = m.diagnose_hint(&unit());
        assert!(hint.contains("journalctl --user -u omniclaw-gateway-rescue.service"));
    }

    #[test]
    fn operations_run_exact_commands() {
        let fake = Fake::answering(|cmd| {
            Ok(if cmd.args.get(1).map(String::as_str) == Some("show") {
                out(0, "LoadState=loaded\nActiveState=active\nSubState=running\nMainPID=4242\nResult=success\n", "")
            } else {
                out(0, "", "")
            })
        });
        let m = Systemd::new(Box::new(fake.clone()), Some("ann".into()));
        m.start(&unit()).expect("start");
        m.stop(&unit()).expect("stop");
        m.restart(&unit()).expect("restart");
        assert_eq!(
            m.state(&unit()).expect("state"),
            ServiceState::Running { pid: Some(4242) }
        );
        assert_eq!(
            fake.commands(),
            [
                "systemctl --user start omniclaw-gateway-rescue.service",
                "systemctl --user stop omniclaw-gateway-rescue.service",
                "systemctl --user restart omniclaw-gateway-rescue.service",
                "systemctl --user show omniclaw-gateway-rescue.service --property=LoadState,ActiveState,SubState,MainPID,Result",
            ]
        );
    }

    fn check_state(show: &str, expected: ServiceState) {
        assert_eq!(
            parse_show(show, "omniclaw-gateway-rescue.service"),
            expected,
            "{show:?}"
        );
    }

    #[test]
    fn states() {
        check_state(
            "LoadState=not-found\nActiveState=inactive\nMainPID=0",
            ServiceState::NotLoaded,
        );
        check_state(
            "LoadState=loaded\nActiveState=inactive\nMainPID=0",
            ServiceState::Stopped,
        );
        check_state(
            "LoadState=loaded\nActiveState=activating\nMainPID=7",
            ServiceState::Starting,
        );
        check_state(
            "LoadState=loaded\nActiveState=active\nMainPID=0",
            ServiceState::Running { pid: None },
        );
        check_state(
            "LoadState=loaded\nActiveState=failed\nResult=exit-code",
            ServiceState::Failed {
                reason: "exit-code (see `journalctl --user -u omniclaw-gateway-rescue.service`)"
                    .into(),
            },
        );
    }

    #[test]
    fn preflight_warns_when_linger_is_off() {
        let fake = Fake::answering(|cmd| {
            Ok(if cmd.program == "loginctl" {
                out(0, "no\n", "")
            } else {
                out(0, "Version=252\n", "")
            })
        });
        let m = Systemd::new(Box::new(fake.clone()), Some("ann".into()));
        assert_eq!(
            m.preflight().expect("preflight"),
            [Notice::LingerOff { user: "ann".into() }]
        );
        assert_eq!(
            fake.commands(),
            [
                "systemctl --user show --property=Version",
                "loginctl show-user ann --property=Linger --value",
            ]
        );
    }

    #[test]
    fn without_user_variables_the_os_names_the_user() {
        let fake = Fake::answering(|cmd| {
            Ok(match cmd.program.as_str() {
                "id" => out(0, "bea\n", ""),
                "loginctl" => out(0, "no\n", ""),
                _ => out(1, "", "Failed to connect to bus: No medium found"),
            })
        });
        let m = Systemd::new(Box::new(fake.clone()), None);
        let err = m.start(&unit()).expect_err("no bus");
        let text = err.to_string();
        assert!(text.contains("`loginctl enable-linger bea`"), "{text}");
        assert!(!text.contains('$'), "{text}");
        // `id` unusable: the uid, never a placeholder.
        let fake = Fake::answering(|cmd| {
            Ok(match cmd.program.as_str() {
                "id" => out(1, "", "id: cannot find name for user ID"),
                _ => out(1, "", "Failed to connect to bus: No medium found"),
            })
        });
        let text = Systemd::new(Box::new(fake), None)
            .start(&unit())
            .expect_err("no bus")
            .to_string();
        let uid = current_uid().map_or("the user the gateway belongs to".into(), |u| u.to_string());
        assert!(
            text.contains(&format!("`loginctl enable-linger {uid}`")),
            "{text}"
        );
    }

    fn check_error(answer: io::Result<CmdOutput>, fragment: &str) {
        let answer = std::cell::RefCell::new(Some(answer));
        let fake = Fake::answering(move |_| {
            answer
                .borrow_mut()
                .take()
                .unwrap_or_else(|| Ok(out(0, "", "")))
        });
        let err = Systemd::new(Box::new(fake), Some("ann".into()))
            .start(&unit())
            .expect_err("fails");
        assert!(err.to_string().contains(fragment), "{err}");
    }

    #[test]
    fn errors_say_what_to_do() {
        check_error(
            Err(io::Error::from(io::ErrorKind::NotFound)),
            "`systemctl` was not found: this system does not run systemd",
        );
        check_error(
            Ok(out(1, "", "Failed to connect to bus: No medium found")),
            "`machinectl shell ann@`); to keep gateways running without a session, enable lingering with `loginctl enable-linger ann`",
        );
        check_error(
            Ok(out(1, "", "Failed to start x: Access denied")),
            "was denied (Failed to start x: Access denied): run it as the user",
        );
        check_error(
            Ok(out(5, "", "Unit omniclaw-gateway-rescue.service not found.")),
            "`systemctl --user start omniclaw-gateway-rescue.service` failed (exit 5): Unit omniclaw-gateway-rescue.service not found.",
        );
    }
}
