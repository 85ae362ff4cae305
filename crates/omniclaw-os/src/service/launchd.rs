//! `launchctl`: LaunchAgents in the user's GUI domain (`gui/UID`) on macOS.
//!
//! Never touches the system domain. A stopped agent is unloaded (`bootout`),
//! because `KeepAlive` would restart a killed one.

use std::time::Duration;

use omniclaw_core::service::Platform;

use super::{
    checked, Before, Cmd, CmdOutput, CommandRunner, Notice, ServiceError, ServiceManager,
    ServiceState, Step, Unit,
};

const MISSING: (&str, &str) = (
    "launchctl",
    "launch agents need macOS; choose this system's manager with OMNICLAW_SERVICE_MANAGER, or run `omniclaw gateway` in the foreground",
);

/// How often a `bootstrap` launchd answers with an I/O error is tried.
const BOOTSTRAP_TRIES: u32 = 4;

/// The wait between those tries.
const BOOTSTRAP_WAIT: Duration = Duration::from_millis(750);

pub struct Launchd {
    runner: Box<dyn CommandRunner>,
    uid: u32,
    retry_wait: Duration,
}

impl Launchd {
    pub fn new(runner: Box<dyn CommandRunner>, uid: u32) -> Launchd {
        Launchd {
            runner,
            uid,
            retry_wait: BOOTSTRAP_WAIT,
        }
    }

    fn domain(&self) -> String {
        format!("gui/{}", self.uid)
    }

    fn target(&self, unit: &Unit) -> String {
        format!("gui/{}/{}", self.uid, unit.name)
    }

    fn launchctl(args: &[&str]) -> Cmd {
        Cmd::new("launchctl", args.iter().copied())
    }

    fn bootstrap(&self, unit: &Unit) -> Cmd {
        Launchd::launchctl(&[
            "bootstrap",
            &self.domain(),
            &unit.definition.to_string_lossy(),
        ])
    }
}

fn classify(command: &str, detail: &str) -> Option<ServiceError> {
    let lower = detail.to_ascii_lowercase();
    if lower.contains("could not find domain")
        || lower.contains("domain does not support specified action")
        || lower.contains("bootstrap failed: 125")
    {
        return Some(ServiceError::NoGuiSession {
            command: command.to_string(),
            detail: detail.to_string(),
        });
    }
    if lower.contains("operation not permitted") || lower.contains("permission denied") {
        return Some(ServiceError::PermissionDenied {
            command: command.to_string(),
            detail: detail.to_string(),
            fix: "run it as the logged-in user the gateway belongs to, without sudo",
        });
    }
    None
}

/// launchctl's answer to a `bootstrap` right after a `bootout` of the same
/// agent, while launchd still unloads it: "Bootstrap failed: 5:
/// Input/output error". It passes once the unload is done.
fn busy(err: &ServiceError) -> bool {
    match err {
        ServiceError::Failed { code, detail, .. } => {
            *code == Some(5) || detail.contains("Input/output error")
        }
        _ => false,
    }
}

/// launchctl's answers for an agent that is not loaded: exit 113 ("Could
/// not find service ..."), or `bootout`'s "Boot-out failed: 3: No such process".
fn not_found(err: &ServiceError) -> bool {
    match err {
        ServiceError::Failed { code, detail, .. } => {
            *code == Some(113)
                || detail.contains("Could not find service")
                || detail.contains("Could not find specified service")
                || detail.contains("No such process")
        }
        _ => false,
    }
}

impl ServiceManager for Launchd {
    fn platform(&self) -> Platform {
        Platform::Launchd
    }

    fn preflight(&self) -> Result<Vec<Notice>, ServiceError> {
        self.run(&Launchd::launchctl(&["print", &self.domain()]))?;
        Ok(Vec::new())
    }

    fn install_plan(&self, unit: &Unit, _replacing: bool) -> Vec<Step> {
        vec![
            Step::WriteFiles,
            // Unload a previous version (fails when none is loaded).
            Step::tolerant(Launchd::launchctl(&["bootout", &self.target(unit)])),
            Step::run(Launchd::launchctl(&["enable", &self.target(unit)])),
            // RunAtLoad starts it.
            Step::run(self.bootstrap(unit)),
        ]
    }

    fn undo_install_plan(&self, unit: &Unit, before: Before) -> Vec<Step> {
        let mut steps = vec![
            Step::tolerant(Launchd::launchctl(&["bootout", &self.target(unit)])),
            Step::RestoreFiles,
        ];
        // A previous version that was loaded is loaded again (RunAtLoad starts it).
        if before != Before::Nothing {
            steps.push(Step::run(self.bootstrap(unit)));
        }
        steps
    }

    fn uninstall_plan(&self, unit: &Unit) -> Vec<Step> {
        vec![
            Step::unless_absent(Launchd::launchctl(&["bootout", &self.target(unit)])),
            Step::RemoveFiles,
        ]
    }

    /// Runs `cmd`; a `bootstrap` that fails with launchd's I/O error is
    /// tried again, [`BOOTSTRAP_TRIES`] times in all.
    fn run(&self, cmd: &Cmd) -> Result<CmdOutput, ServiceError> {
        let bootstrap = cmd.args.first().is_some_and(|a| a == "bootstrap");
        let mut tries = 1;
        loop {
            match checked(self.runner.as_ref(), cmd, MISSING, classify) {
                Err(e) if bootstrap && busy(&e) => {
                    if tries == BOOTSTRAP_TRIES {
                        let ServiceError::Failed { detail, .. } = e else {
                            return Err(e);
                        };
                        return Err(ServiceError::LaunchdBusy {
                            command: cmd.to_string(),
                            detail,
                            target: format!(
                                "{}/{}",
                                self.domain(),
                                label_of(cmd).unwrap_or_default()
                            ),
                            tries,
                        });
                    }
                    tries += 1;
                    std::thread::sleep(self.retry_wait);
                }
                other => return other,
            }
        }
    }

    fn is_absent(&self, err: &ServiceError) -> bool {
        not_found(err)
    }

    fn diagnose_hint(&self, unit: &Unit) -> String {
        format!(
            "see why with `launchctl print {}` and the agent's log files",
            self.target(unit)
        )
    }

    fn start(&self, unit: &Unit) -> Result<(), ServiceError> {
        match self.state(unit)? {
            ServiceState::NotLoaded => self.run(&self.bootstrap(unit)).map(drop),
            _ => self
                .run(&Launchd::launchctl(&["kickstart", &self.target(unit)]))
                .map(drop),
        }
    }

    fn stop(&self, unit: &Unit) -> Result<(), ServiceError> {
        match self.run(&Launchd::launchctl(&["bootout", &self.target(unit)])) {
            Err(e) if not_found(&e) => Ok(()),
            other => other.map(drop),
        }
    }

    fn restart(&self, unit: &Unit) -> Result<(), ServiceError> {
        match self.state(unit)? {
            ServiceState::NotLoaded => self.run(&self.bootstrap(unit)).map(drop),
            _ => self
                .run(&Launchd::launchctl(&[
                    "kickstart",
                    "-k",
                    &self.target(unit),
                ]))
                .map(drop),
        }
    }

    fn state(&self, unit: &Unit) -> Result<ServiceState, ServiceError> {
        match self.run(&Launchd::launchctl(&["print", &self.target(unit)])) {
            Ok(out) => Ok(parse_print(&out.stdout)),
            Err(e) if not_found(&e) => Ok(ServiceState::NotLoaded),
            Err(e) => Err(e),
        }
    }

    fn registered(&self) -> Result<Vec<String>, ServiceError> {
        Ok(Vec::new())
    }
}

/// The label of a `bootstrap DOMAIN PLIST` command: the plist's file stem.
fn label_of(cmd: &Cmd) -> Option<String> {
    let plist = cmd.args.last()?;
    let name = plist.rsplit('/').next()?;
    Some(name.strip_suffix(".plist").unwrap_or(name).to_string())
}

/// Reads `launchctl print gui/UID/LABEL` into a state.
fn parse_print(text: &str) -> ServiceState {
    let get = |key: &str| {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once(" = ")?;
            (k.trim() == key).then(|| v.trim().to_string())
        })
    };
    let pid = get("pid").and_then(|p| p.parse::<u32>().ok());
    match get("state").as_deref() {
        Some("running") => ServiceState::Running { pid },
        Some("spawn scheduled") | Some("spawning") => ServiceState::Starting,
        _ => match get("last exit code").as_deref() {
            Some("0") | Some("(never exited)") | None => ServiceState::Stopped,
            Some(code) => ServiceState::Failed {
                reason: format!("last exit code {code} (see the service logs in the state dir)"),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::super::fake::{out, Fake};
    use super::*;

    fn unit() -> Unit {
        Unit {
            name: "ai.omniclaw.rescue".into(),
            definition: PathBuf::from("/Users/u/Library/LaunchAgents/ai.omniclaw.rescue.plist"),
        }
    }

    fn commands(plan: &[Step]) -> Vec<String> {
        plan.iter().map(Step::label).collect()
    }

    #[test]
    fn plans() {
        let m = Launchd::new(Box::new(Fake::ok()), 501);
        assert_eq!(
            commands(&m.install_plan(&unit(), false)),
            [
                "<write>",
                "launchctl bootout gui/501/ai.omniclaw.rescue",
                "launchctl enable gui/501/ai.omniclaw.rescue",
                "launchctl bootstrap gui/501 /Users/u/Library/LaunchAgents/ai.omniclaw.rescue.plist",
            ]
        );
        assert_eq!(
            commands(&m.uninstall_plan(&unit())),
            ["launchctl bootout gui/501/ai.omniclaw.rescue", "<remove>"]
        );
        assert_eq!(
            commands(&m.undo_install_plan(&unit(), Before::Nothing)),
            ["launchctl bootout gui/501/ai.omniclaw.rescue", "<restore>"]
        );
        assert_eq!(
            commands(&m.undo_install_plan(&unit(), Before::Installed { running: false })),
            [
                "launchctl bootout gui/501/ai.omniclaw.rescue",
                "<restore>",
                "launchctl bootstrap gui/501 /Users/u/Library/LaunchAgents/ai.omniclaw.rescue.plist",
            ]
        );
        // Unloading an agent that is not loaded counts as done when uninstalling.
        let unloaded = Fake::answering(|_| Ok(out(3, "", "Boot-out failed: 3: No such process")));
        let m = Launchd::new(Box::new(unloaded), 501);
        let bootout = Launchd::launchctl(&["bootout", "gui/501/ai.omniclaw.rescue"]);
        assert!(!m
            .run_step(&bootout, super::super::Tolerate::Absent)
            .expect("absent is done"));
    }

    #[test]
    fn start_loads_an_unloaded_agent_and_kicks_a_loaded_one() {
        let unloaded = Fake::answering(|cmd| {
            Ok(if cmd.args[0] == "print" {
                out(
                    113,
                    "",
                    "Could not find service \"ai.omniclaw.rescue\" in domain for user gui: 501",
                )
            } else {
                out(0, "", "")
            })
        });
        Launchd::new(Box::new(unloaded.clone()), 501)
            .start(&unit())
            .expect("start");
        assert_eq!(
            unloaded.commands(),
            [
                "launchctl print gui/501/ai.omniclaw.rescue",
                "launchctl bootstrap gui/501 /Users/u/Library/LaunchAgents/ai.omniclaw.rescue.plist",
            ]
        );
        let loaded = Fake::answering(|_| Ok(out(0, "\tstate = not running\n", "")));
        let m = Launchd::new(Box::new(loaded.clone()), 501);
        m.start(&unit()).expect("start");
        m.restart(&unit()).expect("restart");
        m.stop(&unit()).expect("stop");
        assert_eq!(
            loaded.commands(),
            [
                "launchctl print gui/501/ai.omniclaw.rescue",
                "launchctl kickstart gui/501/ai.omniclaw.rescue",
                "launchctl print gui/501/ai.omniclaw.rescue",
                "launchctl kickstart -k gui/501/ai.omniclaw.rescue",
                "launchctl bootout gui/501/ai.omniclaw.rescue",
            ]
        );
    }

    /// A runner whose `bootstrap` fails with launchd's I/O error the first
    /// `failures` times.
    fn flaky_bootstrap(failures: u32) -> Fake {
        let left = std::cell::Cell::new(failures);
        Fake::answering(move |cmd| {
            Ok(if cmd.args[0] == "bootstrap" && left.get() > 0 {
                left.set(left.get() - 1);
                out(5, "", "Bootstrap failed: 5: Input/output error")
            } else {
                out(0, "", "")
            })
        })
    }

    fn run_plan(m: &Launchd, plan: &[Step]) -> Result<(), ServiceError> {
        for step in plan {
            if let Step::Run { cmd, tolerate } = step {
                m.run_step(cmd, *tolerate)?;
            }
        }
        Ok(())
    }

    #[test]
    fn a_bootstrap_right_after_a_bootout_is_tried_again() {
        let fake = flaky_bootstrap(1);
        let m = Launchd::new(Box::new(fake.clone()), 501);
        let m = Launchd {
            retry_wait: Duration::ZERO,
            ..m
        };
        run_plan(&m, &m.install_plan(&unit(), true)).expect("installs on the second try");
        assert_eq!(
            fake.commands(),
            [
                "launchctl bootout gui/501/ai.omniclaw.rescue",
                "launchctl enable gui/501/ai.omniclaw.rescue",
                "launchctl bootstrap gui/501 /Users/u/Library/LaunchAgents/ai.omniclaw.rescue.plist",
                "launchctl bootstrap gui/501 /Users/u/Library/LaunchAgents/ai.omniclaw.rescue.plist",
            ]
        );

        let fake = flaky_bootstrap(u32::MAX);
        let m = Launchd {
            retry_wait: Duration::ZERO,
            ..Launchd::new(Box::new(fake.clone()), 501)
        };
        let err = run_plan(&m, &m.install_plan(&unit(), true)).expect_err("never loads");
        let text = err.to_string();
        assert!(
            text.contains("still failed after 4 tries (Bootstrap failed: 5: Input/output error)"),
            "{text}"
        );
        assert!(
            text.contains("`launchctl print gui/501/ai.omniclaw.rescue`"),
            "{text}"
        );
        assert_eq!(
            fake.commands()
                .iter()
                .filter(|c| c.starts_with("launchctl bootstrap"))
                .count(),
            4
        );
        // Other failures are not retried.
        let fake = Fake::answering(|_| Ok(out(17, "", "Bootstrap failed: 17: File exists")));
        let m = Launchd::new(Box::new(fake.clone()), 501);
        assert!(m.run(&m.bootstrap(&unit())).is_err());
        assert_eq!(fake.commands().len(), 1);
    }

    fn check_state(print: &str, expected: ServiceState) {
        assert_eq!(parse_print(print), expected, "{print:?}");
    }

    #[test]
    fn states() {
        check_state(
            "gui/501/ai.omniclaw.rescue = {\n\tstate = running\n\tpid = 812\n}",
            ServiceState::Running { pid: Some(812) },
        );
        check_state(
            "\tstate = not running\n\tlast exit code = (never exited)\n",
            ServiceState::Stopped,
        );
        check_state("\tstate = spawn scheduled\n", ServiceState::Starting);
        check_state(
            "\tstate = not running\n\tlast exit code = 78: EX_CONFIG\n",
            ServiceState::Failed {
                reason: "last exit code 78: EX_CONFIG (see the service logs in the state dir)"
                    .into(),
            },
        );
    }

    #[test]
    fn no_gui_session_is_explained() {
        let fake = Fake::answering(|_| {
            Ok(out(
                125,
                "",
                "Bootstrap failed: 125: Domain does not support specified action",
            ))
        });
        let err = Launchd::new(Box::new(fake), 501)
            .preflight()
            .expect_err("fails");
        assert!(
            err.to_string()
                .contains("log in to the Mac's desktop as this user"),
            "{err}"
        );
    }
}
