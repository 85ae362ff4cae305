//! The rescue's self-healing rules: how it judges each check of a target,
//! when a target is down, which repair comes next, when it stops trying,
//! and what it tells people.
//!
//! Pure: the watcher's adapter probes a target (health over the protocol
//! with its identity proven, its process and instance lock, its config,
//! its owner) and hands the result in as a [`Check`] with [`Facts`] and
//! the time in milliseconds; [`Watch::on_check`] returns the next state
//! and the [`Action`]s to carry out. Nothing here restarts, rolls back or
//! sends anything, and nothing reads a clock, so a test runs an hour of
//! watching in microseconds.
//!
//! The ladder for a target that is down, one rung at a time, each judged
//! by the next check:
//! 1. restart it through its owner (the service manager, or the desktop
//!    app's control socket for an embedded gateway); a gateway run from a
//!    terminal is only reported. Skipped when its config is invalid
//!    (a restart cannot fix that) and for a service that exited with code 2
//!    (bad input) when neither its config nor its secrets changed since it
//!    stopped.
//! 2. roll back to the last good config, then restart — only with
//!    `"rollback"` in `rescue.watch.actions`, and only when the config is
//!    invalid or was changed since the target last ran healthy.
//! 3. stop and report, with the diagnostics.
//!
//! No flapping: at most `maxRepairsPerHour` repairs of one target in any
//! sliding hour, spaced by [`BACKOFF_MS`]; then the rescue says once that it
//! gave up and only reports until a person acts ([`Watch::person_acted`]).

use std::fmt;

use crate::config::{WatchAction, WatchSettings};
use crate::profile::Profile;

/// The sliding window of `maxRepairsPerHour`.
pub const HOUR_MS: u64 = 60 * 60 * 1000;

/// The wait before a repair after the one before it, by how many repairs
/// the last hour already holds: the first at once, the second 30 s after
/// the first, every later one 2 min after the one before. A restart that
/// takes effect and fails again within seconds is a loop the backoff
/// breaks, not one more try.
pub const BACKOFF_MS: [u64; 3] = [0, 30_000, 120_000];

/// Who runs a target's gateway, and so who may start it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// The platform's service manager.
    Service,
    /// The desktop app, in-process.
    Embedded,
    /// `omniclaw gateway` run by hand in a terminal: never restarted
    /// behind the user's back.
    Terminal,
}

impl Owner {
    /// From the owner word of `gateway.json` and the instance lock
    /// (`service`, `embedded`, `cli`).
    pub fn parse(word: &str) -> Option<Owner> {
        match word {
            "service" => Some(Owner::Service),
            "embedded" => Some(Owner::Embedded),
            "cli" => Some(Owner::Terminal),
            _ => None,
        }
    }

    fn restart_words(self) -> &'static str {
        match self {
            Owner::Service => "restart through the service manager",
            Owner::Embedded => "restart through the desktop app",
            Owner::Terminal => "restart from its terminal",
        }
    }
}

/// Which stop path recorded that a gateway was stopped on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopBy {
    /// `omniclaw gateway stop` (or `gateway uninstall`).
    Cli,
    /// The rescue bot's `/stop`.
    Rescue,
    /// Ctrl+C at the terminal that runs it.
    CtrlC,
    /// SIGTERM: the service manager's stop, or a `kill`.
    Signal,
    /// The tray's Stop.
    Tray,
    /// The dashboard's Stop.
    Dashboard,
    /// Quitting the desktop app.
    AppQuit,
}

impl StopBy {
    pub const NAMES: &'static [&'static str] = &[
        "cli",
        "rescue",
        "ctrl-c",
        "signal",
        "tray",
        "dashboard",
        "app-quit",
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StopBy::Cli => "cli",
            StopBy::Rescue => "rescue",
            StopBy::CtrlC => "ctrl-c",
            StopBy::Signal => "signal",
            StopBy::Tray => "tray",
            StopBy::Dashboard => "dashboard",
            StopBy::AppQuit => "app-quit",
        }
    }

    pub fn parse(word: &str) -> Option<StopBy> {
        Some(match word {
            "cli" => StopBy::Cli,
            "rescue" => StopBy::Rescue,
            "ctrl-c" => StopBy::CtrlC,
            "signal" => StopBy::Signal,
            "tray" => StopBy::Tray,
            "dashboard" => StopBy::Dashboard,
            "app-quit" => StopBy::AppQuit,
            _ => return None,
        })
    }

    /// For people: "stopped with `gateway stop`".
    pub fn words(self) -> &'static str {
        match self {
            StopBy::Cli => "with `gateway stop`",
            StopBy::Rescue => "with the rescue bot's /stop",
            StopBy::CtrlC => "with Ctrl+C",
            StopBy::Signal => "by SIGTERM (its service manager or a kill)",
            StopBy::Tray => "from the tray",
            StopBy::Dashboard => "from the dashboard",
            StopBy::AppQuit => "by quitting the desktop app",
        }
    }
}

impl fmt::Display for StopBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why one check of a target failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Nothing answers on its port.
    NotListening { port: u16 },
    /// Another process holds its port.
    PortTaken { port: u16, pid: u32, name: String },
    /// Something answers on its port but does not prove the target's
    /// identity (another gateway, another program speaking the protocol).
    NotOurIdentity { port: u16, detail: String },
    /// The process its lock and `gateway.json` name is gone.
    ProcessGone { pid: u32 },
    /// Nobody holds its instance lock.
    LockNotHeld,
    /// Its config does not validate: each error as
    /// `path: message (line:col)`.
    ConfigInvalid { errors: Vec<String> },
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::NotListening { port } => write!(f, "nothing listens on port {port}"),
            Failure::PortTaken { port, pid, name } => {
                write!(
                    f,
                    "port {port} is held by another process: {name} (pid {pid})"
                )
            }
            Failure::NotOurIdentity { port, detail } => {
                write!(f, "the answer on port {port} is not this gateway: {detail}")
            }
            Failure::ProcessGone { pid } => write!(f, "its process (pid {pid}) is gone"),
            Failure::LockNotHeld => f.write_str("no process holds its instance lock"),
            Failure::ConfigInvalid { errors } => {
                write!(f, "its config is invalid:")?;
                for e in errors {
                    write!(f, "\n  {e}")?;
                }
                Ok(())
            }
        }
    }
}

/// Why a check could not tell whether the target is healthy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unknown {
    /// The gateway refused the token the rescue presented (rotated).
    WrongToken,
    /// The rescue cannot read the target's secret store.
    KeychainUnreadable { detail: String },
    /// The answer was slowed the way a gateway slows wrong credentials.
    SlowedWrongToken,
}

impl fmt::Display for Unknown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unknown::WrongToken => f.write_str("the gateway refused the rescue's token (rotated?)"),
            Unknown::KeychainUnreadable { detail } => {
                write!(
                    f,
                    "the rescue cannot read the target's secret store: {detail}"
                )
            }
            Unknown::SlowedWrongToken => {
                f.write_str("the gateway slowed its answer as it does for a wrong token")
            }
        }
    }
}

/// The result of one check of a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    Healthy,
    Failed(Failure),
    /// Cannot authenticate: reported once, never a reason to repair.
    Unknown(Unknown),
    /// Serving its last good config while its file is invalid (a refused
    /// edit): not down; reported once, nothing touched. Each refused key
    /// as `path: message (line:col)`.
    RunningOnLastGood {
        refused: Vec<String>,
    },
}

/// What else the adapter knows about a target at a check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// Who runs it, or ran it last (`gateway.json` keeps the last owner).
    pub owner: Option<Owner>,
    /// A stop on purpose recorded in its state dir since it last started.
    pub stopped_on_purpose: Option<StopBy>,
    /// The exit code of its service's last run, when it has stopped.
    pub exit_code: Option<i32>,
    /// Its config or secrets changed since it stopped.
    pub changed_since_stop: bool,
    /// Its config changed since it last ran healthy.
    pub config_changed_since_healthy: bool,
    /// The last lines of its log, for the report.
    pub log_tail: Vec<String>,
}

/// A rung of the ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rung {
    Restart,
    Rollback,
}

/// What the adapter carries out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start or restart the target through its owner.
    Restart { owner: Owner },
    /// Restore the last good config (`config rollback`); a `Restart`
    /// follows in the same plan.
    Rollback,
    /// Tell the operators (Telegram, the app, the audit log).
    Report(Notice),
}

/// What the operators are told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The incident as it stands: one message per incident, edited as it
    /// moves on (its `opened_ms` identifies it).
    Incident(Incident),
    /// A check that cannot authenticate, said once.
    Unknown { target: Profile, reason: Unknown },
    /// A running target refused an edit of its file, said once.
    RefusedEdit {
        target: Profile,
        refused: Vec<String>,
    },
}

/// Why the ladder stopped without the target recovering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Halt {
    /// Run from a terminal: only reported, never restarted.
    TerminalRun,
    /// Its owner is not known (no `gateway.json` was ever written).
    OwnerUnknown,
    /// A service that exited with code 2 (bad input) with nothing changed
    /// since: restarting it cannot help.
    BadInputUnchanged,
    /// The config is invalid and rolling back is not allowed.
    InvalidNoRollback,
    /// `rescue.watch.actions` allows no rung that fits.
    NotAllowed,
    /// Every allowed rung was tried.
    Exhausted,
    /// `maxRepairsPerHour` repairs in the last hour: reports only until a
    /// person acts.
    GaveUp { max: u32 },
}

impl fmt::Display for Halt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Halt::TerminalRun => f.write_str(
                "it runs from a terminal: restart it there (the rescue never restarts it behind your back)",
            ),
            Halt::OwnerUnknown => f.write_str(
                "nobody is known to run it (no gateway.json): start it with `gateway start` or from the app",
            ),
            Halt::BadInputUnchanged => f.write_str(
                "its service exited with code 2 (bad input) and neither its config nor its secrets changed since: fix the cause, then start it",
            ),
            Halt::InvalidNoRollback => f.write_str(
                "its config is invalid and rescue.watch.actions does not allow \"rollback\": fix the config, or roll back with /rollback",
            ),
            Halt::NotAllowed => {
                f.write_str("rescue.watch.actions allows no repair for this: reporting only")
            }
            Halt::Exhausted => f.write_str("every allowed repair was tried"),
            Halt::GaveUp { max } => write!(
                f,
                "gave up after {max} repairs in an hour: reports only until a person acts (start, restart or a config change)"
            ),
        }
    }
}

/// The result of one rung, judged by the check after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepResult {
    Pending,
    Healthy,
    Failed(Failure),
}

/// One rung tried in an incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub rung: Rung,
    pub owner: Owner,
    pub at_ms: u64,
    pub result: StepResult,
}

/// How an incident ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Recovered {
        at_ms: u64,
    },
    /// A person stopped it on purpose meanwhile.
    StoppedOnPurpose {
        by: StopBy,
    },
    Halted {
        why: Halt,
        log_tail: Vec<String>,
    },
}

/// One outage of one target, from down to recovered or halted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    pub target: Profile,
    pub opened_ms: u64,
    pub cause: Failure,
    pub steps: Vec<Step>,
    pub outcome: Option<Outcome>,
}

impl Incident {
    /// The message for people (one Telegram message, edited as the incident
    /// moves on): the cause with the target's real errors, each rung with
    /// its result and time since the outage began, and how it ended.
    pub fn render(&self) -> String {
        self.render_with(&[])
    }

    /// [`Incident::render`] with what the repairs said (`notes`, such as
    /// the keys a rollback restored) under the steps: the outcome stays
    /// the last line, so the message ends with how the incident ended.
    pub fn render_with(&self, notes: &[String]) -> String {
        let mut out = vec![self.headline()];
        out.extend(self.step_lines());
        if !notes.is_empty() {
            out.push(String::new());
            out.extend(notes.iter().cloned());
        }
        out.extend(self.outcome_lines());
        out.join("\n")
    }

    /// "main is down: nothing listens on port 18789".
    pub fn headline(&self) -> String {
        format!("{} is down: {}", self.target, self.cause)
    }

    /// One line per rung tried, with its result and the time since the
    /// outage began.
    pub fn step_lines(&self) -> Vec<String> {
        self.steps
            .iter()
            .enumerate()
            .map(|(i, step)| {
                let what = match step.rung {
                    Rung::Restart => step.owner.restart_words().to_string(),
                    Rung::Rollback => format!(
                        "roll back to the last good config, then {}",
                        step.owner.restart_words()
                    ),
                };
                let result = match &step.result {
                    StepResult::Pending => "checking…".to_string(),
                    StepResult::Healthy => "healthy".to_string(),
                    StepResult::Failed(f) => format!("still down: {f}"),
                };
                format!("{}. {what} ({}) — {result}", i + 1, self.since(step.at_ms))
            })
            .collect()
    }

    /// How it ended (with the log's last lines when the ladder stopped);
    /// empty while it is open.
    pub fn outcome_lines(&self) -> Vec<String> {
        match &self.outcome {
            None => Vec::new(),
            Some(Outcome::Recovered { at_ms }) => {
                vec![format!("recovered ({})", self.since(*at_ms))]
            }
            Some(Outcome::StoppedOnPurpose { by }) => {
                vec![format!("stopped on purpose {}: not repaired", by.words())]
            }
            Some(Outcome::Halted { why, log_tail }) => {
                let mut out = vec![format!("stopped trying: {why}")];
                if !log_tail.is_empty() {
                    out.push("last log lines:".to_string());
                    out.extend(log_tail.iter().map(|l| format!("  {l}")));
                }
                out
            }
        }
    }

    fn since(&self, ms: u64) -> String {
        format!("+{} s", ms.saturating_sub(self.opened_ms) / 1000)
    }

    fn tried(&self, rung: Rung) -> bool {
        self.steps.iter().any(|s| s.rung == rung)
    }
}

/// Where the watch of one target stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Healthy, or fewer than `failAfter` failed checks in a row.
    Watching { failures: u32 },
    /// The last check could not authenticate (already told).
    Unknown(Unknown),
    /// Serving the last good config with its file invalid (already told).
    ServingLastGood,
    /// Stopped on purpose: never repaired.
    StoppedOnPurpose(StopBy),
    /// A rung ran; the next check judges it.
    Repairing(Rung),
    /// Down, the next rung waits for the backoff until `until_ms`.
    Waiting { until_ms: u64 },
    /// Down; the ladder stopped: reports only until it recovers or a person
    /// acts.
    Halted(Halt),
}

/// The watch of one target: a state machine fed checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watch {
    pub target: Profile,
    pub phase: Phase,
    /// When each repair of the last hour was made.
    pub repairs: Vec<u64>,
    /// The open incident (or the last one, with its outcome).
    pub incident: Option<Incident>,
    /// It gave up (and said so): later outages of this target are only
    /// recorded, never repaired nor told again, until a person acts.
    pub gave_up: bool,
}

impl Watch {
    pub fn new(target: Profile) -> Watch {
        Watch {
            target,
            phase: Phase::Watching { failures: 0 },
            repairs: Vec::new(),
            incident: None,
            gave_up: false,
        }
    }

    fn open(&self) -> Option<&Incident> {
        self.incident.as_ref().filter(|i| i.outcome.is_none())
    }

    /// The next state after one check at `now_ms`, and what to do.
    pub fn on_check(
        mut self,
        settings: &WatchSettings,
        check: &Check,
        facts: &Facts,
        now_ms: u64,
    ) -> (Watch, Vec<Action>) {
        let mut actions = Vec::new();
        self.repairs
            .retain(|&at| now_ms.saturating_sub(at) < HOUR_MS);
        if let Some(by) = facts.stopped_on_purpose {
            if !matches!(check, Check::Healthy) {
                self.close(Outcome::StoppedOnPurpose { by }, &mut actions);
                self.phase = Phase::StoppedOnPurpose(by);
                return (self, actions);
            }
        }
        match check {
            Check::Healthy => {
                self.judge_step(StepResult::Healthy);
                self.close(Outcome::Recovered { at_ms: now_ms }, &mut actions);
                self.phase = Phase::Watching { failures: 0 };
            }
            Check::RunningOnLastGood { refused } => {
                self.judge_step(StepResult::Healthy);
                self.close(Outcome::Recovered { at_ms: now_ms }, &mut actions);
                if self.phase != Phase::ServingLastGood {
                    actions.push(Action::Report(Notice::RefusedEdit {
                        target: self.target.clone(),
                        refused: refused.clone(),
                    }));
                }
                self.phase = Phase::ServingLastGood;
            }
            Check::Unknown(reason) => {
                if self.phase != Phase::Unknown(reason.clone()) {
                    actions.push(Action::Report(Notice::Unknown {
                        target: self.target.clone(),
                        reason: reason.clone(),
                    }));
                }
                self.phase = Phase::Unknown(reason.clone());
            }
            Check::Failed(failure) => match self.phase.clone() {
                Phase::Halted(_) => {}
                Phase::Repairing(_) => {
                    self.judge_step(StepResult::Failed(failure.clone()));
                    self.climb(settings, facts, now_ms, &mut actions);
                }
                Phase::Waiting { until_ms } => {
                    if now_ms >= until_ms {
                        self.climb(settings, facts, now_ms, &mut actions);
                    }
                }
                Phase::Watching { failures } => {
                    self.failed(settings, failure, facts, failures, now_ms, &mut actions)
                }
                Phase::Unknown(_) | Phase::ServingLastGood | Phase::StoppedOnPurpose(_) => {
                    self.failed(settings, failure, facts, 0, now_ms, &mut actions)
                }
            },
        }
        (self, actions)
    }

    /// A person started, restarted or reconfigured the target: the repair
    /// budget and any halt are forgotten, the open incident closed.
    pub fn person_acted(mut self) -> Watch {
        self.repairs.clear();
        self.incident = None;
        self.gave_up = false;
        self.phase = Phase::Watching { failures: 0 };
        self
    }

    fn failed(
        &mut self,
        settings: &WatchSettings,
        failure: &Failure,
        facts: &Facts,
        before: u32,
        now_ms: u64,
        actions: &mut Vec<Action>,
    ) {
        let failures = before.saturating_add(1);
        if failures < settings.fail_after {
            self.phase = Phase::Watching { failures };
            return;
        }
        self.incident = Some(Incident {
            target: self.target.clone(),
            opened_ms: now_ms,
            cause: failure.clone(),
            steps: Vec::new(),
            outcome: None,
        });
        self.climb(settings, facts, now_ms, actions);
    }

    /// Takes the next rung, or halts; reports the incident either way
    /// (unless only a backoff is pending).
    fn climb(
        &mut self,
        settings: &WatchSettings,
        facts: &Facts,
        now_ms: u64,
        actions: &mut Vec<Action>,
    ) {
        let Some(incident) = self.open() else {
            return;
        };
        let rung = match next_rung(settings, facts, incident) {
            Ok(rung) => rung,
            Err(why) => return self.halt(why, facts, actions),
        };
        let max = settings.max_repairs_per_hour;
        if self.gave_up {
            // Said once already: this outage is recorded, not told.
            self.halt(Halt::GaveUp { max }, facts, &mut Vec::new());
            return;
        }
        let done = u32::try_from(self.repairs.len()).unwrap_or(u32::MAX);
        if done >= max {
            self.gave_up = true;
            return self.halt(Halt::GaveUp { max }, facts, actions);
        }
        let wait = BACKOFF_MS[self.repairs.len().min(BACKOFF_MS.len() - 1)];
        if let Some(&last) = self.repairs.last() {
            if now_ms < last.saturating_add(wait) {
                self.phase = Phase::Waiting {
                    until_ms: last + wait,
                };
                return;
            }
        }
        // `next_rung` never picks a rung without an owner that restarts.
        let Some(owner) = facts.owner else {
            return self.halt(Halt::OwnerUnknown, facts, actions);
        };
        self.repairs.push(now_ms);
        if rung == Rung::Rollback {
            actions.push(Action::Rollback);
        }
        actions.push(Action::Restart { owner });
        if let Some(incident) = self.incident.as_mut() {
            incident.steps.push(Step {
                rung,
                owner,
                at_ms: now_ms,
                result: StepResult::Pending,
            });
            actions.push(Action::Report(Notice::Incident(incident.clone())));
        }
        self.phase = Phase::Repairing(rung);
    }

    fn halt(&mut self, why: Halt, facts: &Facts, actions: &mut Vec<Action>) {
        self.phase = Phase::Halted(why.clone());
        self.close(
            Outcome::Halted {
                why,
                log_tail: facts.log_tail.clone(),
            },
            actions,
        );
    }

    fn judge_step(&mut self, result: StepResult) {
        let pending = self
            .incident
            .as_mut()
            .filter(|i| i.outcome.is_none())
            .and_then(|i| i.steps.last_mut())
            .filter(|s| s.result == StepResult::Pending);
        if let Some(step) = pending {
            step.result = result;
        }
    }

    fn close(&mut self, outcome: Outcome, actions: &mut Vec<Action>) {
        if let Some(incident) = self.incident.as_mut().filter(|i| i.outcome.is_none()) {
            incident.outcome = Some(outcome);
            actions.push(Action::Report(Notice::Incident(incident.clone())));
        }
    }

    /// One line for `status` and the tray: "main — down · rescue repairing
    /// (2/3)", where 2 is this hour's repairs and 3 `maxRepairsPerHour`.
    pub fn summary(&self, settings: &WatchSettings) -> String {
        let budget = format!("{}/{}", self.repairs.len(), settings.max_repairs_per_hour);
        let state = match &self.phase {
            Phase::Watching { failures: 0 } => "healthy".to_string(),
            Phase::Watching { failures } => {
                format!("failing ({failures}/{} checks)", settings.fail_after)
            }
            Phase::Unknown(_) => "unknown · the rescue cannot authenticate".to_string(),
            Phase::ServingLastGood => "running on its last good config · edit refused".to_string(),
            Phase::StoppedOnPurpose(by) => format!("stopped on purpose ({by})"),
            Phase::Repairing(_) => format!("down · rescue repairing ({budget})"),
            Phase::Waiting { .. } => format!("down · rescue waiting to retry ({budget})"),
            Phase::Halted(Halt::GaveUp { .. }) => {
                format!("down · rescue gave up ({budget}), reports only")
            }
            Phase::Halted(Halt::TerminalRun) => "down · run from a terminal, reported".to_string(),
            Phase::Halted(_) => "down · rescue stopped, reported".to_string(),
        };
        format!("{} — {state}", self.target)
    }
}

/// The next rung for an open incident, or why there is none.
fn next_rung(settings: &WatchSettings, facts: &Facts, incident: &Incident) -> Result<Rung, Halt> {
    match facts.owner {
        None => return Err(Halt::OwnerUnknown),
        Some(Owner::Terminal) => return Err(Halt::TerminalRun),
        Some(Owner::Service | Owner::Embedded) => {}
    }
    let invalid = matches!(incident.cause, Failure::ConfigInvalid { .. });
    let bad_input_unchanged = facts.exit_code == Some(2) && !facts.changed_since_stop;
    let restart = settings.allows(WatchAction::Restart)
        && !invalid
        && !bad_input_unchanged
        && !incident.tried(Rung::Restart);
    if restart {
        return Ok(Rung::Restart);
    }
    let rollback_fits = invalid || facts.config_changed_since_healthy;
    if rollback_fits && settings.allows(WatchAction::Rollback) && !incident.tried(Rung::Rollback) {
        return Ok(Rung::Rollback);
    }
    Err(if !incident.steps.is_empty() {
        Halt::Exhausted
    } else if invalid {
        Halt::InvalidNoRollback
    } else if bad_input_unchanged {
        Halt::BadInputUnchanged
    } else {
        Halt::NotAllowed
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1000;

    fn main() -> Profile {
        Profile::parse("main").expect("valid")
    }

    fn settings(actions: &[WatchAction]) -> WatchSettings {
        WatchSettings {
            actions: actions.to_vec(),
            ..WatchSettings::default()
        }
    }

    fn service() -> Facts {
        Facts {
            owner: Some(Owner::Service),
            ..Facts::default()
        }
    }

    fn down() -> Check {
        Check::Failed(Failure::NotListening { port: 18789 })
    }

    fn invalid() -> Check {
        Check::Failed(Failure::ConfigInvalid {
            errors: vec!["gateway.port: expected an integer 1–65535, got \"x\" (3:11)".into()],
        })
    }

    /// Feeds `checks` one interval apart from t = 0; returns the final
    /// watch and every action, each with its time in seconds.
    fn run(
        settings: &WatchSettings,
        facts: &Facts,
        checks: &[Check],
    ) -> (Watch, Vec<(u64, Action)>) {
        let mut watch = Watch::new(main());
        let mut all = Vec::new();
        for (i, check) in checks.iter().enumerate() {
            let now = i as u64 * settings.interval_seconds * S;
            let (next, actions) = watch.on_check(settings, check, facts, now);
            watch = next;
            all.extend(actions.into_iter().map(|a| (now / S, a)));
        }
        (watch, all)
    }

    /// The actions without the reports, with their time in seconds.
    fn repairs(actions: &[(u64, Action)]) -> Vec<(u64, Action)> {
        actions
            .iter()
            .filter(|(_, a)| !matches!(a, Action::Report(_)))
            .cloned()
            .collect()
    }

    fn last_incident(actions: &[(u64, Action)]) -> Incident {
        actions
            .iter()
            .rev()
            .find_map(|(_, a)| match a {
                Action::Report(Notice::Incident(i)) => Some(i.clone()),
                _ => None,
            })
            .expect("an incident was reported")
    }

    #[test]
    fn down_only_after_fail_after_checks_in_a_row() {
        let s = settings(&[WatchAction::Restart]);
        let (watch, actions) = run(&s, &service(), &[down(), down()]);
        assert_eq!(watch.phase, Phase::Watching { failures: 2 });
        assert!(actions.is_empty());
        // A healthy check between failures starts the count again.
        let (watch, actions) = run(
            &s,
            &service(),
            &[down(), down(), Check::Healthy, down(), down()],
        );
        assert_eq!(watch.phase, Phase::Watching { failures: 2 });
        assert!(actions.is_empty());
        let (watch, actions) = run(&s, &service(), &[down(), down(), down()]);
        assert_eq!(watch.phase, Phase::Repairing(Rung::Restart));
        assert_eq!(
            repairs(&actions),
            [(
                20,
                Action::Restart {
                    owner: Owner::Service
                }
            )]
        );
    }

    #[test]
    fn a_restart_that_works_ends_the_incident_recovered() {
        let s = settings(&[WatchAction::Restart]);
        let (watch, actions) = run(&s, &service(), &[down(), down(), down(), Check::Healthy]);
        assert_eq!(watch.phase, Phase::Watching { failures: 0 });
        let incident = last_incident(&actions);
        assert_eq!(incident.outcome, Some(Outcome::Recovered { at_ms: 30 * S }));
        assert_eq!(
            incident.render(),
            "main is down: nothing listens on port 18789\n\
             1. restart through the service manager (+0 s) — healthy\n\
             recovered (+10 s)"
        );
        // What the repair said goes under the steps; the outcome stays last.
        assert_eq!(
            incident.render_with(&["restart: restarted omniclaw-gateway-main.service".into()]),
            "main is down: nothing listens on port 18789\n\
             1. restart through the service manager (+0 s) — healthy\n\
             \n\
             restart: restarted omniclaw-gateway-main.service\n\
             recovered (+10 s)"
        );
        // The same incident, reported as it opened and as it ended.
        let reported: Vec<u64> = actions
            .iter()
            .filter_map(|(_, a)| match a {
                Action::Report(Notice::Incident(i)) => Some(i.opened_ms),
                _ => None,
            })
            .collect();
        assert_eq!(reported, [20 * S, 20 * S]);
    }

    #[test]
    fn the_ladder_by_cause_owner_and_allowed_actions() {
        use WatchAction::{Restart as R, Rollback as B};
        let embedded = Facts {
            owner: Some(Owner::Embedded),
            ..Facts::default()
        };
        let edited = Facts {
            config_changed_since_healthy: true,
            ..service()
        };
        let exit2 = Facts {
            exit_code: Some(2),
            ..service()
        };
        let exit2_changed = Facts {
            changed_since_stop: true,
            ..exit2.clone()
        };
        let terminal = Facts {
            owner: Some(Owner::Terminal),
            ..Facts::default()
        };
        let restart = |owner| Action::Restart { owner };
        // (allowed, facts, the check after each rung, repairs, the phase at the end)
        type Row<'a> = (&'a [WatchAction], Facts, Check, Vec<Action>, Phase);
        let table: Vec<Row> = vec![
            (
                &[R],
                embedded.clone(),
                down(),
                vec![restart(Owner::Embedded)],
                Phase::Halted(Halt::Exhausted),
            ),
            (
                &[R, B],
                service(),
                down(),
                vec![restart(Owner::Service)],
                Phase::Halted(Halt::Exhausted),
            ),
            (
                &[R, B],
                edited.clone(),
                down(),
                vec![
                    restart(Owner::Service),
                    Action::Rollback,
                    restart(Owner::Service),
                ],
                Phase::Halted(Halt::Exhausted),
            ),
            (
                &[R],
                edited,
                down(),
                vec![restart(Owner::Service)],
                Phase::Halted(Halt::Exhausted),
            ),
            (
                &[R, B],
                service(),
                invalid(),
                vec![Action::Rollback, restart(Owner::Service)],
                Phase::Halted(Halt::Exhausted),
            ),
            (
                &[R],
                service(),
                invalid(),
                vec![],
                Phase::Halted(Halt::InvalidNoRollback),
            ),
            (
                &[B],
                service(),
                down(),
                vec![],
                Phase::Halted(Halt::NotAllowed),
            ),
            (
                &[],
                service(),
                down(),
                vec![],
                Phase::Halted(Halt::NotAllowed),
            ),
            (
                &[R, B],
                terminal,
                down(),
                vec![],
                Phase::Halted(Halt::TerminalRun),
            ),
            (
                &[R, B],
                Facts::default(),
                down(),
                vec![],
                Phase::Halted(Halt::OwnerUnknown),
            ),
            (
                &[R],
                exit2.clone(),
                down(),
                vec![],
                Phase::Halted(Halt::BadInputUnchanged),
            ),
            (
                &[R],
                exit2_changed,
                down(),
                vec![restart(Owner::Service)],
                Phase::Halted(Halt::Exhausted),
            ),
        ];
        for (allowed, facts, check, expected, phase) in table {
            let s = WatchSettings {
                fail_after: 1,
                ..settings(allowed)
            };
            // Far apart, so the backoff never holds a rung back.
            let mut watch = Watch::new(main());
            let mut done = Vec::new();
            for i in 0..4 {
                let (next, actions) = watch.on_check(&s, &check, &facts, i * HOUR_MS / 8);
                watch = next;
                done.extend(
                    actions
                        .into_iter()
                        .filter(|a| !matches!(a, Action::Report(_))),
                );
            }
            assert_eq!(done, expected, "{allowed:?} {facts:?} {check:?}");
            assert_eq!(watch.phase, phase, "{allowed:?} {facts:?} {check:?}");
        }
    }

    #[test]
    fn unknown_is_told_once_and_never_repaired() {
        let s = settings(&[WatchAction::Restart]);
        let wrong = Check::Unknown(Unknown::WrongToken);
        let (watch, actions) = run(
            &s,
            &service(),
            &[wrong.clone(), wrong.clone(), wrong.clone(), wrong],
        );
        assert_eq!(watch.phase, Phase::Unknown(Unknown::WrongToken));
        assert_eq!(
            actions,
            [(
                0,
                Action::Report(Notice::Unknown {
                    target: main(),
                    reason: Unknown::WrongToken
                })
            )]
        );
        assert_eq!(
            watch.summary(&s),
            "main — unknown · the rescue cannot authenticate"
        );
    }

    #[test]
    fn a_refused_edit_is_reported_once_and_nothing_is_touched() {
        let s = settings(&[WatchAction::Restart, WatchAction::Rollback]);
        let serving = Check::RunningOnLastGood {
            refused: vec!["gateway.port: expected an integer 1–65535, got \"x\" (3:11)".into()],
        };
        let (watch, actions) = run(&s, &service(), &[serving.clone(), serving.clone(), serving]);
        assert_eq!(watch.phase, Phase::ServingLastGood);
        assert_eq!(actions.len(), 1);
        assert!(matches!(
            actions[0].1,
            Action::Report(Notice::RefusedEdit { .. })
        ));
    }

    #[test]
    fn a_target_stopped_on_purpose_is_never_repaired() {
        let s = settings(&[WatchAction::Restart, WatchAction::Rollback]);
        for by in [
            StopBy::Cli,
            StopBy::Rescue,
            StopBy::CtrlC,
            StopBy::Signal,
            StopBy::Tray,
            StopBy::Dashboard,
            StopBy::AppQuit,
        ] {
            let facts = Facts {
                stopped_on_purpose: Some(by),
                ..service()
            };
            let (watch, actions) = run(&s, &facts, &[down(), down(), down(), down(), down()]);
            assert_eq!(watch.phase, Phase::StoppedOnPurpose(by));
            assert!(actions.is_empty(), "{by}: {actions:?}");
            assert_eq!(StopBy::parse(by.as_str()), Some(by));
        }
        // Stopped while the rescue was repairing: the incident ends there.
        let mut watch = Watch::new(main());
        for i in 0..3 {
            watch = watch.on_check(&s, &down(), &service(), i * 10 * S).0;
        }
        let stopped = Facts {
            stopped_on_purpose: Some(StopBy::Tray),
            ..service()
        };
        let (watch, actions) = watch.on_check(&s, &down(), &stopped, 40 * S);
        assert_eq!(actions.len(), 1);
        let incident = watch.incident.expect("kept");
        assert!(incident
            .render()
            .ends_with("stopped on purpose from the tray: not repaired"));
    }

    #[test]
    fn no_flapping_backoff_then_gave_up_said_once() {
        let s = WatchSettings {
            fail_after: 1,
            ..settings(&[WatchAction::Restart])
        };
        // It comes back after each restart, then fails again at once.
        let mut watch = Watch::new(main());
        let mut restarts = Vec::new();
        let mut reports = 0;
        for second in (0..3600).step_by(10) {
            let check = if matches!(watch.phase, Phase::Repairing(_)) {
                Check::Healthy
            } else {
                down()
            };
            let (next, actions) = watch.on_check(&s, &check, &service(), second * S);
            watch = next;
            for a in actions {
                match a {
                    Action::Restart { .. } => restarts.push(second),
                    Action::Report(Notice::Incident(i))
                        if matches!(
                            i.outcome,
                            Some(Outcome::Halted {
                                why: Halt::GaveUp { .. },
                                ..
                            })
                        ) =>
                    {
                        reports += 1
                    }
                    _ => {}
                }
            }
            if second == 200 {
                assert_eq!(
                    watch.summary(&s),
                    "main — down · rescue gave up (3/3), reports only"
                );
            }
        }
        // 0 s; 30 s after it; 2 min after that; then nothing until the
        // first leaves the hour.
        assert_eq!(restarts, [0, 30, 150]);
        assert_eq!(reports, 1, "gave up is said once");
        assert_eq!(watch.phase, Phase::Halted(Halt::GaveUp { max: 3 }));
        // It comes back by itself and falls again: recorded, not told,
        // not repaired, even once the hour has let the budget go.
        let (watch, actions) = watch.on_check(&s, &Check::Healthy, &service(), 3600 * S);
        assert_eq!(actions, [], "the incident was closed when it gave up");
        assert_eq!(watch.phase, Phase::Watching { failures: 0 });
        let (watch, actions) = watch.on_check(&s, &down(), &service(), 3700 * S);
        assert_eq!(actions, []);
        assert_eq!(watch.phase, Phase::Halted(Halt::GaveUp { max: 3 }));
        // A person acts: the budget starts again.
        let watch = watch.person_acted();
        let (watch, actions) = watch.on_check(&s, &down(), &service(), 3600 * S);
        assert_eq!(
            repairs(&actions.into_iter().map(|a| (0, a)).collect::<Vec<_>>()),
            [(
                0,
                Action::Restart {
                    owner: Owner::Service
                }
            )]
        );
        assert_eq!(watch.summary(&s), "main — down · rescue repairing (1/3)");
    }

    #[test]
    fn a_target_that_fails_after_every_repair_stops_at_the_limit() {
        let s = WatchSettings {
            fail_after: 1,
            max_repairs_per_hour: 2,
            ..settings(&[WatchAction::Restart, WatchAction::Rollback])
        };
        let facts = Facts {
            config_changed_since_healthy: true,
            log_tail: vec!["ERROR bind 127.0.0.1:18789: address in use".into()],
            ..service()
        };
        let taken = Check::Failed(Failure::PortTaken {
            port: 18789,
            pid: 4242,
            name: "nginx".into(),
        });
        let checks: Vec<Check> = std::iter::repeat_n(taken, 40).collect();
        let (watch, actions) = run(&s, &facts, &checks);
        assert_eq!(
            repairs(&actions),
            [
                (
                    0,
                    Action::Restart {
                        owner: Owner::Service
                    }
                ),
                (30, Action::Rollback),
                (
                    30,
                    Action::Restart {
                        owner: Owner::Service
                    }
                ),
            ]
        );
        assert_eq!(watch.phase, Phase::Halted(Halt::Exhausted));
        assert_eq!(
            last_incident(&actions).render(),
            "main is down: port 18789 is held by another process: nginx (pid 4242)\n\
             1. restart through the service manager (+0 s) — still down: port 18789 is held by another process: nginx (pid 4242)\n\
             2. roll back to the last good config, then restart through the service manager (+30 s) — still down: port 18789 is held by another process: nginx (pid 4242)\n\
             stopped trying: every allowed repair was tried\n\
             last log lines:\n  ERROR bind 127.0.0.1:18789: address in use"
        );
    }

    #[test]
    fn validation_errors_reach_the_report() {
        let s = settings(&[WatchAction::Restart]);
        let (_, actions) = run(&s, &service(), &[invalid(), invalid(), invalid()]);
        assert_eq!(
            last_incident(&actions).render(),
            "main is down: its config is invalid:\n  gateway.port: expected an integer 1–65535, got \"x\" (3:11)\n\
             stopped trying: its config is invalid and rescue.watch.actions does not allow \"rollback\": fix the config, or roll back with /rollback"
        );
    }

    #[test]
    fn summaries() {
        let s = settings(&[WatchAction::Restart]);
        let table: &[(&[Check], &str)] = &[
            (&[], "main — healthy"),
            (
                &[Check::Failed(Failure::LockNotHeld)],
                "main — failing (1/3 checks)",
            ),
            (
                &[down(), down(), down()],
                "main — down · rescue repairing (1/3)",
            ),
            (
                &[down(), down(), down(), down()],
                "main — down · rescue stopped, reported",
            ),
        ];
        for (checks, expected) in table {
            let (watch, _) = run(&s, &service(), checks);
            assert_eq!(watch.summary(&s), *expected, "{checks:?}");
        }
        let terminal = Facts {
            owner: Some(Owner::Terminal),
            ..Facts::default()
        };
        let (watch, _) = run(&s, &terminal, &[down(), down(), down()]);
        assert_eq!(
            watch.summary(&s),
            "main — down · run from a terminal, reported"
        );
        assert_eq!(Owner::parse("cli"), Some(Owner::Terminal));
        assert_eq!(Owner::parse("nope"), None);
    }
}
