//! `schtasks`: Task Scheduler on Windows.
//!
//! Tasks are created from the XML the core renders; they run as the
//! installing user at log on. Never creates a task for another user.

use omniclaw_core::service::Platform;

use super::{
    checked, Before, Cmd, CmdOutput, CommandRunner, Notice, ServiceError, ServiceManager,
    ServiceState, Step, Unit,
};

const MISSING: (&str, &str) = (
    "schtasks",
    "scheduled tasks need Windows; choose this system's manager with OMNICLAW_SERVICE_MANAGER, or run `omniclaw gateway` in the foreground",
);

pub struct Schtasks {
    runner: Box<dyn CommandRunner>,
}

impl Schtasks {
    pub fn new(runner: Box<dyn CommandRunner>) -> Schtasks {
        Schtasks { runner }
    }

    fn schtasks(args: &[&str]) -> Cmd {
        Cmd::new("schtasks", args.iter().copied())
    }

    fn create(unit: &Unit) -> Cmd {
        let xml = unit.definition.to_string_lossy();
        Schtasks::schtasks(&["/Create", "/XML", &xml, "/TN", &unit.name, "/F"])
    }
}

fn classify(command: &str, detail: &str) -> Option<ServiceError> {
    detail
        .to_ascii_lowercase()
        .contains("access is denied")
        .then(|| ServiceError::PermissionDenied {
            command: command.to_string(),
            detail: detail.to_string(),
            fix: "run it in the gateway user's own session; a task for another user needs an administrator",
        })
}

/// schtasks' answer for a task that does not exist: "ERROR: The system
/// cannot find the file specified." (or "... does not exist ...").
fn not_found(err: &ServiceError) -> bool {
    matches!(err, ServiceError::Failed { detail, .. }
        if detail.to_ascii_lowercase().contains("cannot find")
            || detail.to_ascii_lowercase().contains("does not exist"))
}

impl ServiceManager for Schtasks {
    fn platform(&self) -> Platform {
        Platform::TaskScheduler
    }

    fn preflight(&self) -> Result<Vec<Notice>, ServiceError> {
        self.run(&Schtasks::schtasks(&["/Query", "/FO", "CSV", "/NH"]))?;
        Ok(Vec::new())
    }

    fn install_plan(&self, unit: &Unit, _replacing: bool) -> Vec<Step> {
        vec![
            Step::WriteFiles,
            // /F replaces a previous version of the task.
            Step::run(Schtasks::create(unit)),
            Step::run(Schtasks::schtasks(&["/Run", "/TN", &unit.name])),
        ]
    }

    fn undo_install_plan(&self, unit: &Unit, before: Before) -> Vec<Step> {
        let mut steps = vec![Step::tolerant(Schtasks::schtasks(&[
            "/End", "/TN", &unit.name,
        ]))];
        match before {
            Before::Nothing => {
                steps.push(Step::unless_absent(Schtasks::schtasks(&[
                    "/Delete", "/TN", &unit.name, "/F",
                ])));
                steps.push(Step::RestoreFiles);
            }
            Before::Installed { running } => {
                // The previous task comes back from its restored XML.
                steps.push(Step::RestoreFiles);
                steps.push(Step::run(Schtasks::create(unit)));
                if running {
                    steps.push(Step::run(Schtasks::schtasks(&["/Run", "/TN", &unit.name])));
                }
            }
        }
        steps
    }

    fn uninstall_plan(&self, unit: &Unit) -> Vec<Step> {
        vec![
            Step::tolerant(Schtasks::schtasks(&["/End", "/TN", &unit.name])),
            // A task deleted already (by hand, in Task Scheduler) is removed.
            Step::unless_absent(Schtasks::schtasks(&["/Delete", "/TN", &unit.name, "/F"])),
            Step::RemoveFiles,
        ]
    }

    fn run(&self, cmd: &Cmd) -> Result<CmdOutput, ServiceError> {
        checked(self.runner.as_ref(), cmd, MISSING, classify)
    }

    fn is_absent(&self, err: &ServiceError) -> bool {
        not_found(err)
    }

    fn diagnose_hint(&self, unit: &Unit) -> String {
        format!(
            "see why with `schtasks /Query /TN \"{}\" /V /FO LIST` (Last Result) and the task's log files",
            unit.name
        )
    }

    fn start(&self, unit: &Unit) -> Result<(), ServiceError> {
        self.run(&Schtasks::schtasks(&["/Run", "/TN", &unit.name]))
            .map(drop)
    }

    fn stop(&self, unit: &Unit) -> Result<(), ServiceError> {
        self.run(&Schtasks::schtasks(&["/End", "/TN", &unit.name]))
            .map(drop)
    }

    fn restart(&self, unit: &Unit) -> Result<(), ServiceError> {
        // /End fails when the task is not running; that is fine before /Run.
        let _ = self.stop(unit);
        self.start(unit)
    }

    fn state(&self, unit: &Unit) -> Result<ServiceState, ServiceError> {
        match self.run(&Schtasks::schtasks(&[
            "/Query", "/TN", &unit.name, "/FO", "LIST",
        ])) {
            Ok(out) => Ok(parse_query(&out.stdout)),
            Err(e) if not_found(&e) => Ok(ServiceState::NotLoaded),
            Err(e) => Err(e),
        }
    }

    fn registered(&self) -> Result<Vec<String>, ServiceError> {
        let out = self.run(&Schtasks::schtasks(&["/Query", "/FO", "CSV", "/NH"]))?;
        Ok(parse_csv_names(&out.stdout))
    }
}

fn parse_query(text: &str) -> ServiceState {
    let status = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Status:"))
        .map(str::trim)
        .unwrap_or("");
    match status {
        "Running" => ServiceState::Running { pid: None },
        "Queued" => ServiceState::Starting,
        "Disabled" => ServiceState::Failed {
            reason: "the task is disabled (enable it in Task Scheduler)".into(),
        },
        _ => ServiceState::Stopped,
    }
}

/// Task names (without the leading `\`) from `schtasks /Query /FO CSV /NH`.
fn parse_csv_names(text: &str) -> Vec<String> {
    let mut names: Vec<String> = text
        .lines()
        .filter_map(|l| {
            let first = l.trim().strip_prefix('"')?;
            let name = &first[..first.find('"')?];
            Some(name.trim_start_matches('\\').to_string())
        })
        .filter(|n| !n.is_empty() && n != "TaskName")
        .collect();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::super::fake::{out, Fake};
    use super::*;

    fn unit() -> Unit {
        Unit {
            name: "OmniClaw Gateway (rescue)".into(),
            definition: PathBuf::from(
                r"C:\Users\u\AppData\Local\OmniClaw\services\omniclaw-gateway-rescue.xml",
            ),
        }
    }

    #[test]
    fn plans_and_operations_run_exact_argv() {
        let fake = Fake::answering(|cmd| {
            Ok(if cmd.args[0] == "/Query" {
                out(0, "\r\nFolder: \\\r\nTaskName:      \\OmniClaw Gateway (rescue)\r\nStatus:        Running\r\n", "")
            } else {
                out(0, "SUCCESS", "")
            })
        });
        let m = Schtasks::new(Box::new(fake.clone()));
        let argv: Vec<Vec<String>> = m
            .install_plan(&unit(), false)
            .iter()
            .filter_map(|s| match s {
                Step::Run { cmd, .. } => Some(cmd.argv()),
                _ => None,
            })
            .collect();
        assert_eq!(
            argv,
            [
                vec![
                    "schtasks",
                    "/Create",
                    "/XML",
                    r"C:\Users\u\AppData\Local\OmniClaw\services\omniclaw-gateway-rescue.xml",
                    "/TN",
                    "OmniClaw Gateway (rescue)",
                    "/F"
                ],
                vec!["schtasks", "/Run", "/TN", "OmniClaw Gateway (rescue)"],
            ]
        );
        m.restart(&unit()).expect("restart");
        assert_eq!(
            m.state(&unit()).expect("state"),
            ServiceState::Running { pid: None }
        );
        assert_eq!(
            fake.commands(),
            [
                "schtasks /End /TN 'OmniClaw Gateway (rescue)'",
                "schtasks /Run /TN 'OmniClaw Gateway (rescue)'",
                "schtasks /Query /TN 'OmniClaw Gateway (rescue)' /FO LIST",
            ]
        );
    }

    #[test]
    fn undo_and_uninstall_of_a_task_that_is_gone() {
        let gone = Fake::answering(|_| {
            Ok(out(
                1,
                "",
                "ERROR: The system cannot find the file specified.",
            ))
        });
        let m = Schtasks::new(Box::new(gone));
        let texts = |steps: Vec<Step>| -> Vec<String> { steps.iter().map(Step::label).collect() };
        assert_eq!(
            texts(m.undo_install_plan(&unit(), Before::Nothing)),
            [
                "schtasks /End /TN 'OmniClaw Gateway (rescue)'",
                "schtasks /Delete /TN 'OmniClaw Gateway (rescue)' /F",
                "<restore>",
            ]
        );
        assert_eq!(
            texts(m.undo_install_plan(&unit(), Before::Installed { running: true })),
            [
                "schtasks /End /TN 'OmniClaw Gateway (rescue)'",
                "<restore>",
                r"schtasks /Create /XML 'C:\Users\u\AppData\Local\OmniClaw\services\omniclaw-gateway-rescue.xml' /TN 'OmniClaw Gateway (rescue)' /F",
                "schtasks /Run /TN 'OmniClaw Gateway (rescue)'",
            ]
        );
        for step in m.uninstall_plan(&unit()) {
            if let Step::Run { cmd, tolerate } = step {
                assert!(!m.run_step(&cmd, tolerate).expect("gone counts as removed"));
            }
        }
    }

    #[test]
    fn missing_task_is_not_loaded() {
        let fake = Fake::answering(|_| {
            Ok(out(
                1,
                "",
                "ERROR: The system cannot find the file specified.",
            ))
        });
        assert_eq!(
            Schtasks::new(Box::new(fake)).state(&unit()).expect("state"),
            ServiceState::NotLoaded
        );
    }

    #[test]
    fn lists_task_names() {
        let csv = "\"\\OmniClaw Gateway\",\"N/A\",\"Ready\"\r\n\"\\OpenClaw Gateway (work)\",\"N/A\",\"Running\"\r\n\"\\Microsoft\\Windows\\X\",\"N/A\",\"Ready\"\r\n";
        assert_eq!(
            parse_csv_names(csv),
            [
                "OmniClaw Gateway",
                "OpenClaw Gateway (work)",
                r"Microsoft\Windows\X"
            ]
        );
    }

    #[test]
    fn access_denied_is_explained() {
        let fake = Fake::answering(|_| Ok(out(1, "", "ERROR: Access is denied.")));
        let err = Schtasks::new(Box::new(fake))
            .start(&unit())
            .expect_err("denied");
        assert!(
            err.to_string()
                .contains("a task for another user needs an administrator"),
            "{err}"
        );
    }
}
