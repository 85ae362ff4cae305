//! The rescue's watch of its targets: every `rescue.watch.intervalSeconds`
//! each target is checked once, the check is fed to the pure state machine
//! of [`omniclaw_core::heal`], and the actions it returns are carried out —
//! a restart through the target's owner, a rollback through `config
//! rollback`, a report to the operators — each written to the audit log.
//!
//! The seams are small traits so the loop runs in tests without waiting:
//! the [`Clock`], the [`Prober`] (the gateway implements it: this crate
//! cannot name the gateway's protocol client), the [`Repairs`] (the
//! `omniclaw` CLI and the desktop app's control socket in production) and
//! the [`Tell`] of operators (the bot's chats). The state of each target is
//! written to `<state dir>/rescue/watch.json` after every check, so
//! `status` (another process) can show it. Nothing here decides what to
//! repair: that is the core's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};
use tokio::sync::watch;

use omniclaw_core::config::WatchSettings;
use omniclaw_core::heal::{Action, Check, Facts, Notice, Owner, Phase, Watch};
use omniclaw_core::profile::Profile;
use omniclaw_os::desktopctl::{self, Op, Request};
use omniclaw_os::discovery;
use omniclaw_os::rescue::{append_audit, incident_json, write_watch_state, AuditEntry};

use super::exec::Executor;

/// Milliseconds since the Unix epoch, from whoever keeps time.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> u64;
}

/// The wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

/// One check of a target, as the core judges it, with what else is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub check: Check,
    pub facts: Facts,
}

/// Checks a target once: health over the protocol with its identity
/// proven, its process and lock, its config, its owner.
#[async_trait]
pub trait Prober: Send + Sync {
    async fn probe(&self, target: &Profile) -> Probe;
}

/// Carries out the repairs; each returns what happened, for the report.
#[async_trait]
pub trait Repairs: Send + Sync {
    async fn restart(&self, target: &Profile, owner: Owner) -> Result<String, String>;
    async fn rollback(&self, target: &Profile) -> Result<String, String>;
}

/// The profiles an empty `rescue.targets` means: every other local
/// profile, looked up again at each check, so one set up later is watched
/// from then on.
pub trait Profiles: Send + Sync {
    fn others(&self) -> Vec<Profile>;
}

/// A fixed list (tests, benches).
impl Profiles for Vec<Profile> {
    fn others(&self) -> Vec<Profile> {
        self.clone()
    }
}

/// Every profile set up under a home but the rescue's own.
pub struct OtherProfiles {
    pub home: PathBuf,
    pub own: Profile,
}

impl Profiles for OtherProfiles {
    fn others(&self) -> Vec<Profile> {
        match discovery::scan(&self.home) {
            Ok((found, _)) => found
                .into_iter()
                .map(|f| f.profile)
                .filter(|p| *p != self.own)
                .collect(),
            Err(e) => {
                tracing::error!(error = %e, "cannot list the profiles to watch");
                Vec::new()
            }
        }
    }
}

/// Where a message to the operators went: (chat, message id) per operator.
pub type Sent = Vec<(i64, i32)>;

/// Tells the operators.
#[async_trait]
pub trait Tell: Send + Sync {
    async fn send(&self, text: &str) -> Sent;
    async fn edit(&self, sent: &Sent, text: &str);
}

/// Repairs through the `omniclaw` CLI (the same code as the operator's
/// `/restart` and `/rollback`, with its backups) and, for a gateway
/// embedded in the desktop app, the app's control socket.
pub struct CliRepairs {
    pub exec: Executor,
    /// The home whose desktop app control socket is asked.
    pub home: PathBuf,
}

/// How long the desktop app may take to answer a restart.
const APP_WAIT: Duration = Duration::from_secs(30);

#[async_trait]
impl Repairs for CliRepairs {
    async fn restart(&self, target: &Profile, owner: Owner) -> Result<String, String> {
        match owner {
            Owner::Service => self.cli(target, &["gateway", "restart"]).await,
            Owner::Embedded => {
                let socket = desktopctl::socket_path(&self.home);
                let request = Request::new(Op::Restart, target.name());
                let reply = tokio::task::spawn_blocking(move || {
                    desktopctl::call(&socket, &request, APP_WAIT)
                })
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
                match reply.ok {
                    true => Ok(reply.message),
                    false => Err(reply.message),
                }
            }
            Owner::Terminal => Err(format!(
                "{target} runs from a terminal: the rescue does not restart it"
            )),
        }
    }

    async fn rollback(&self, target: &Profile) -> Result<String, String> {
        self.cli(target, &["config", "rollback"]).await
    }
}

impl CliRepairs {
    /// `omniclaw --profile TARGET ARGS…`.
    async fn cli(&self, target: &Profile, rest: &[&str]) -> Result<String, String> {
        let mut args = vec!["--profile".to_string(), target.name().to_string()];
        args.extend(rest.iter().map(|s| (*s).to_string()));
        match self.exec.call(&args).await {
            (true, text) => Ok(text),
            (false, text) => Err(text),
        }
    }
}

/// The watch of one target, with what the loop keeps beside the core's
/// state: whether an operator paused it, and where its incident's message
/// went.
#[derive(Debug, Clone)]
struct Target {
    watch: Watch,
    paused: bool,
    /// The incident the message is about (its `opened_ms`), and the message.
    message: Option<(u64, Sent)>,
    /// What each repair said (the keys a rollback restored), shown under
    /// the incident.
    notes: Vec<String>,
}

/// The watcher of one rescue profile.
pub struct Watcher {
    /// The rescue profile's state dir (audit log, watch.json).
    state_dir: PathBuf,
    settings: WatchSettings,
    /// `rescue.targets` as configured; empty means every other profile.
    named: Vec<Profile>,
    profiles: Arc<dyn Profiles>,
    targets: BTreeMap<Profile, Target>,
    clock: Arc<dyn Clock>,
    prober: Arc<dyn Prober>,
    repairs: Arc<dyn Repairs>,
    tell: Arc<dyn Tell>,
    /// What `watch.json` holds now (its time left out): a check that
    /// changes nothing writes nothing.
    persisted: Option<Value>,
}

/// What the watcher is handed.
pub struct Parts {
    pub clock: Arc<dyn Clock>,
    /// What an empty `rescue.targets` means.
    pub profiles: Arc<dyn Profiles>,
    pub prober: Arc<dyn Prober>,
    pub repairs: Arc<dyn Repairs>,
    pub tell: Arc<dyn Tell>,
}

impl Watcher {
    pub fn new(
        state_dir: &Path,
        settings: WatchSettings,
        targets: &[Profile],
        parts: Parts,
    ) -> Watcher {
        let mut w = Watcher {
            state_dir: state_dir.to_path_buf(),
            settings,
            named: targets.to_vec(),
            profiles: parts.profiles,
            targets: BTreeMap::new(),
            clock: parts.clock,
            prober: parts.prober,
            repairs: parts.repairs,
            tell: parts.tell,
            persisted: None,
        };
        w.set_targets();
        w
    }

    /// A reload of `rescue.targets` / `rescue.watch.*`: new targets start
    /// fresh, removed ones are dropped, the others keep their state.
    pub fn reconfigure(&mut self, settings: WatchSettings, targets: &[Profile]) {
        self.settings = settings;
        self.named = targets.to_vec();
        self.set_targets();
        self.persist();
    }

    /// The targets named, or every other profile when none is.
    fn set_targets(&mut self) {
        let targets = match self.named.is_empty() {
            true => self.profiles.others(),
            false => self.named.clone(),
        };
        self.targets.retain(|p, _| targets.contains(p));
        for t in targets {
            self.targets.entry(t.clone()).or_insert_with(|| Target {
                watch: Watch::new(t.clone()),
                paused: false,
                message: None,
                notes: Vec::new(),
            });
        }
    }

    pub fn settings(&self) -> &WatchSettings {
        &self.settings
    }

    /// Checks every target that is not paused once.
    pub async fn tick(&mut self) {
        if self.named.is_empty() {
            self.set_targets();
        }
        let names: Vec<Profile> = self
            .targets
            .iter()
            .filter(|(_, t)| !t.paused)
            .map(|(p, _)| p.clone())
            .collect();
        for target in names {
            self.check(&target).await;
        }
        self.persist();
    }

    /// One check of `target` fed to its watch, and its actions carried out.
    async fn check(&mut self, target: &Profile) {
        let probe = self.prober.probe(target).await;
        let now = self.clock.now_ms();
        let Some(t) = self.targets.get_mut(target) else {
            return;
        };
        let (next, actions) =
            t.watch
                .clone()
                .on_check(&self.settings, &probe.check, &probe.facts, now);
        t.watch = next;
        self.carry_out(target, actions).await;
    }

    async fn carry_out(&mut self, target: &Profile, actions: Vec<Action>) {
        let mut rolled_back = true;
        for action in actions {
            match action {
                // Starting it again on the config it failed on cannot help.
                Action::Restart { .. } if !rolled_back => {
                    self.audit_line(
                        &format!("watch: restart {target}"),
                        "skipped: the rollback before it failed",
                    );
                }
                Action::Restart { owner } => {
                    let result = self.repairs.restart(target, owner).await;
                    self.audit(&format!("watch: restart {target} ({owner:?})"), &result);
                    self.note(target, "restart", &result);
                }
                Action::Rollback => {
                    let result = self.repairs.rollback(target).await;
                    rolled_back = result.is_ok();
                    self.audit(&format!("watch: rollback {target}"), &result);
                    self.note(target, "rollback", &result);
                }
                Action::Report(notice) => self.report(target, notice).await,
            }
        }
    }

    fn note(&mut self, target: &Profile, what: &str, result: &Result<String, String>) {
        if let Some(t) = self.targets.get_mut(target) {
            let line = match result {
                Ok(text) => format!("{what}: {text}"),
                Err(text) => format!("{what} failed: {text}"),
            };
            t.notes.push(line);
        }
    }

    async fn report(&mut self, target: &Profile, notice: Notice) {
        let Some(t) = self.targets.get_mut(target) else {
            return;
        };
        match notice {
            Notice::Incident(incident) => {
                let text = incident.render_with(&t.notes);
                let ended = incident.outcome.is_some();
                let same = t
                    .message
                    .as_ref()
                    .is_some_and(|(opened, _)| *opened == incident.opened_ms);
                if same {
                    if let Some((_, sent)) = &t.message {
                        self.tell.edit(sent, &text).await;
                    }
                } else {
                    let sent = self.tell.send(&text).await;
                    t.message = Some((incident.opened_ms, sent));
                }
                let rendered = incident.render();
                let summary = rendered.lines().last().unwrap_or_default().to_string();
                if ended {
                    t.notes.clear();
                }
                self.audit_line(&format!("watch: report {target}"), &summary);
            }
            Notice::Unknown { target, reason } => {
                let text = format!("{target}: cannot tell whether it is healthy: {reason}. The rescue repairs nothing until it can authenticate.");
                self.tell.send(&text).await;
                self.audit_line(
                    &format!("watch: report {target}"),
                    &format!("unknown: {reason}"),
                );
            }
            Notice::RefusedEdit { target, refused } => {
                let text = format!(
                    "{target} runs on its last good config; its file was edited and refused (nothing restarted, nothing rolled back):\n{}",
                    refused.join("\n")
                );
                self.tell.send(&text).await;
                self.audit_line(
                    &format!("watch: report {target}"),
                    &format!("edit refused: {}", refused.join("; ")),
                );
            }
        }
    }

    fn audit(&self, command: &str, result: &Result<String, String>) {
        let result = match result {
            Ok(_) => "ok".to_string(),
            Err(e) => format!("failed: {}", e.lines().last().unwrap_or_default()),
        };
        self.audit_line(command, &result);
    }

    fn audit_line(&self, command: &str, result: &str) {
        let entry = AuditEntry {
            ts_ms: self.clock.now_ms(),
            user_id: 0,
            who: "watch".into(),
            command: command.into(),
            result: result.into(),
        };
        if let Err(e) = append_audit(&self.state_dir, &entry) {
            tracing::error!(error = %e, "cannot append to the rescue audit log");
        }
    }

    /// `/watch off|on PROFILE`. Resuming forgets a halt: a person acted.
    pub fn pause(&mut self, target: &Profile, paused: bool) -> Result<(), String> {
        let t = self
            .targets
            .get_mut(target)
            .ok_or_else(|| format!("{target} is not watched (rescue.targets)"))?;
        t.paused = paused;
        if !paused {
            t.watch = t.watch.clone().person_acted();
        }
        self.persist();
        Ok(())
    }

    /// `/heal PROFILE`: the ladder now — the budget and any halt forgotten
    /// (a person acted), and the target judged as down at once.
    pub async fn heal_now(&mut self, target: &Profile) -> Result<String, String> {
        let Some(t) = self.targets.get_mut(target) else {
            return Err(format!("{target} is not watched (rescue.targets)"));
        };
        t.watch = t.watch.clone().person_acted();
        let settings = WatchSettings {
            fail_after: 1,
            ..self.settings.clone()
        };
        let probe = self.prober.probe(target).await;
        let now = self.clock.now_ms();
        let Some(t) = self.targets.get_mut(target) else {
            return Err(format!("{target} is not watched (rescue.targets)"));
        };
        let (next, actions) = t
            .watch
            .clone()
            .on_check(&settings, &probe.check, &probe.facts, now);
        t.watch = next;
        let summary = t.watch.summary(&self.settings);
        self.carry_out(target, actions).await;
        self.persist();
        Ok(summary)
    }

    /// Whether a repair waits for the check that judges it.
    pub fn repairing(&self) -> bool {
        self.targets
            .values()
            .any(|t| matches!(t.watch.phase, Phase::Repairing(_)))
    }

    /// `/watch`: one line per target.
    pub fn summary(&self) -> String {
        let mut lines = vec![format!(
            "watching every {} s; down after {} failed checks; repairs allowed: {}; at most {} an hour",
            self.settings.interval_seconds,
            self.settings.fail_after,
            if self.settings.actions.is_empty() {
                "none".to_string()
            } else {
                self.settings
                    .actions
                    .iter()
                    .map(|a| a.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            self.settings.max_repairs_per_hour
        )];
        for t in self.targets.values() {
            lines.push(line_of(t, &self.settings));
        }
        lines.join("\n")
    }

    /// Writes `watch.json` for `status`.
    fn persist(&mut self) {
        let targets: serde_json::Map<String, Value> = self
            .targets
            .iter()
            .map(|(p, t)| {
                (
                    p.name().to_string(),
                    json!({
                        "summary": line_of(t, &self.settings),
                        "paused": t.paused,
                        "repairs": t.watch.repairs.len(),
                        "incident": t.watch.incident.as_ref().map(incident_json),
                    }),
                )
            })
            .collect();
        let mut state = json!({
            "intervalSeconds": self.settings.interval_seconds,
            "maxRepairsPerHour": self.settings.max_repairs_per_hour,
            "targets": targets,
        });
        // At idle every check says "healthy" again: the file (written
        // and synced to disk) is left as it is.
        if self.persisted.as_ref() == Some(&state) {
            return;
        }
        let unchanged = state.clone();
        state["updatedMs"] = json!(self.clock.now_ms());
        match write_watch_state(&self.state_dir, &state) {
            Ok(()) => self.persisted = Some(unchanged),
            Err(e) => tracing::error!(error = %e, "cannot record the watch state"),
        }
    }
}

fn line_of(t: &Target, settings: &WatchSettings) -> String {
    if !settings.enabled {
        return format!(
            "{} — not watched (rescue.watch.enabled is false)",
            t.watch.target
        );
    }
    match t.paused {
        true => format!(
            "{} — watch paused (/watch on {} resumes it)",
            t.watch.target, t.watch.target
        ),
        false => t.watch.summary(settings),
    }
}

/// How soon a repair is judged: a restarted gateway serves within about
/// a second, and waiting a whole interval would add it to every outage.
pub const RECHECK_AFTER_REPAIR: Duration = Duration::from_secs(2);

/// Runs `watcher` every `intervalSeconds` (every [`RECHECK_AFTER_REPAIR`]
/// while a repair waits for its judgement) until `stop` turns true; a new
/// `(settings, targets)` on `config` applies at the next check, without a
/// restart. `commands` carries `/watch` and `/heal` from the bot.
pub async fn run(
    watcher: Arc<tokio::sync::Mutex<Watcher>>,
    mut config: watch::Receiver<(WatchSettings, Vec<Profile>)>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let interval = {
            let mut w = watcher.lock().await;
            if config.has_changed().unwrap_or(false) {
                let (settings, targets) = config.borrow_and_update().clone();
                w.reconfigure(settings, &targets);
            }
            if w.settings.enabled {
                w.tick().await;
            }
            let interval = Duration::from_secs(w.settings.interval_seconds.max(1));
            match w.repairing() {
                true => interval.min(RECHECK_AFTER_REPAIR),
                false => interval,
            }
        };
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = config.changed() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Mutex;

    use omniclaw_core::config::WatchAction;
    use omniclaw_core::heal::{Failure, StopBy, Unknown, HOUR_MS};
    use omniclaw_os::rescue::{read_audit, read_watch_state};

    use super::*;

    struct ManualClock(AtomicU64);
    impl Clock for ManualClock {
        fn now_ms(&self) -> u64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    /// Answers the checks queued, then repeats the last one.
    struct Script(Mutex<VecDeque<Probe>>);
    #[async_trait]
    impl Prober for Script {
        async fn probe(&self, _target: &Profile) -> Probe {
            let mut q = self.0.lock().expect("lock");
            if q.len() > 1 {
                q.pop_front().expect("queued")
            } else {
                q.front().cloned().expect("a probe queued")
            }
        }
    }

    #[derive(Default)]
    struct Record(Mutex<Vec<String>>, std::sync::atomic::AtomicBool);
    #[async_trait]
    impl Repairs for Record {
        async fn restart(&self, target: &Profile, owner: Owner) -> Result<String, String> {
            self.0
                .lock()
                .expect("lock")
                .push(format!("restart {target} {owner:?}"));
            Ok("restarted".into())
        }
        async fn rollback(&self, target: &Profile) -> Result<String, String> {
            self.0
                .lock()
                .expect("lock")
                .push(format!("rollback {target}"));
            match self.1.load(Ordering::SeqCst) {
                true => Err("no last known good config".into()),
                false => Ok("restored gateway.port".into()),
            }
        }
    }
    #[async_trait]
    impl Tell for Record {
        async fn send(&self, text: &str) -> Sent {
            let mut v = self.0.lock().expect("lock");
            v.push(format!("send: {text}"));
            vec![(1, i32::try_from(v.len()).expect("small"))]
        }
        async fn edit(&self, sent: &Sent, text: &str) {
            self.0
                .lock()
                .expect("lock")
                .push(format!("edit {}: {text}", sent[0].1));
        }
    }

    fn main() -> Profile {
        Profile::parse("main").expect("profile")
    }

    fn probe(check: Check, owner: Option<Owner>) -> Probe {
        Probe {
            check,
            facts: Facts {
                owner,
                ..Facts::default()
            },
        }
    }

    fn down() -> Check {
        Check::Failed(Failure::NotListening { port: 18789 })
    }

    struct Rig {
        watcher: Watcher,
        clock: Arc<ManualClock>,
        repairs: Arc<Record>,
        tell: Arc<Record>,
        dir: tempfile::TempDir,
    }

    fn rig(probes: Vec<Probe>, actions: Vec<WatchAction>) -> Rig {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = Arc::new(ManualClock(AtomicU64::new(1_000_000)));
        let repairs = Arc::new(Record::default());
        let tell = Arc::new(Record::default());
        let settings = WatchSettings {
            enabled: true,
            actions,
            ..WatchSettings::default()
        };
        let watcher = Watcher::new(
            dir.path(),
            settings,
            &[main()],
            Parts {
                clock: clock.clone(),
                profiles: Arc::new(Vec::<Profile>::new()),
                prober: Arc::new(Script(Mutex::new(probes.into()))),
                repairs: repairs.clone(),
                tell: tell.clone(),
            },
        );
        Rig {
            watcher,
            clock,
            repairs,
            tell,
            dir,
        }
    }

    impl Rig {
        async fn ticks(&mut self, n: usize) {
            for _ in 0..n {
                self.watcher.tick().await;
                self.clock.0.fetch_add(10_000, Ordering::SeqCst);
            }
        }
        fn repaired(&self) -> Vec<String> {
            self.repairs.0.lock().expect("lock").clone()
        }
        fn told(&self) -> Vec<String> {
            self.tell.0.lock().expect("lock").clone()
        }
        fn status_line(&self) -> String {
            read_watch_state(self.dir.path()).expect("watch.json")["targets"]["main"]["summary"]
                .as_str()
                .expect("summary")
                .to_string()
        }
    }

    /// Profiles that can change between checks.
    struct Changing(Mutex<Vec<Profile>>);
    impl Profiles for Changing {
        fn others(&self) -> Vec<Profile> {
            self.0.lock().expect("lock").clone()
        }
    }

    #[tokio::test]
    async fn no_target_named_watches_every_other_profile_as_it_is_then() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ops = Profile::parse("ops").expect("profile");
        let profiles = Arc::new(Changing(Mutex::new(vec![main()])));
        let healthy = || probe(Check::Healthy, Some(Owner::Service));
        let mut watcher = Watcher::new(
            dir.path(),
            WatchSettings {
                enabled: true,
                ..WatchSettings::default()
            },
            &[],
            Parts {
                clock: Arc::new(ManualClock(AtomicU64::new(0))),
                profiles: profiles.clone(),
                prober: Arc::new(Script(Mutex::new(vec![healthy(); 3].into()))),
                repairs: Arc::new(Record::default()),
                tell: Arc::new(Record::default()),
            },
        );
        watcher.tick().await;
        let watched = |dir: &Path| -> Vec<String> {
            omniclaw_os::rescue::read_watched(dir)
                .into_iter()
                .map(|w| w.summary)
                .collect()
        };
        assert_eq!(watched(dir.path()), ["main — healthy"]);
        // A profile set up since is watched from the next check on.
        profiles.0.lock().expect("lock").push(ops.clone());
        watcher.tick().await;
        assert_eq!(watched(dir.path()), ["main — healthy", "ops — healthy"]);
        // Named targets are the list, whatever else exists.
        watcher.reconfigure(watcher.settings().clone(), &[ops]);
        assert_eq!(watched(dir.path()), ["ops — healthy"]);
    }

    #[test]
    fn every_other_profile_is_every_profile_of_the_home_but_the_rescue() {
        let home = tempfile::tempdir().expect("tempdir");
        for dir in [
            ".omniclaw-main",
            ".omniclaw-rescue",
            ".omniclaw-ops",
            ".openclaw",
        ] {
            std::fs::create_dir(home.path().join(dir)).expect("mkdir");
        }
        let others = OtherProfiles {
            home: home.path().to_path_buf(),
            own: Profile::parse("rescue").expect("profile"),
        };
        let names: Vec<String> = others
            .others()
            .iter()
            .map(|p| p.name().to_string())
            .collect();
        assert_eq!(names, ["main", "ops"]);
    }

    /// At idle the watch writes its state once, not at every check; a
    /// change is written again.
    #[tokio::test]
    async fn checks_that_change_nothing_write_nothing() {
        let healthy = || probe(Check::Healthy, Some(Owner::Service));
        let mut r = rig(
            vec![
                healthy(),
                healthy(),
                healthy(),
                probe(down(), Some(Owner::Service)),
            ],
            vec![WatchAction::Restart],
        );
        r.ticks(1).await;
        let file = r.dir.path().join("rescue/watch.json");
        assert!(
            r.status_line().ends_with("— healthy"),
            "{}",
            r.status_line()
        );
        std::fs::remove_file(&file).expect("remove watch.json");
        r.ticks(2).await;
        assert!(!file.exists(), "rewritten though nothing changed");
        r.ticks(1).await;
        assert!(file.exists(), "a failed check is written");
        assert!(
            !r.status_line().ends_with("— healthy"),
            "{}",
            r.status_line()
        );
    }

    #[tokio::test]
    async fn a_service_that_is_down_is_restarted_and_one_message_ends_recovered() {
        let mut r = rig(
            vec![
                probe(down(), Some(Owner::Service)),
                probe(down(), Some(Owner::Service)),
                probe(down(), Some(Owner::Service)),
                probe(Check::Healthy, Some(Owner::Service)),
            ],
            vec![WatchAction::Restart],
        );
        r.ticks(3).await;
        assert_eq!(r.repaired(), ["restart main Service"]);
        assert!(
            r.watcher.repairing(),
            "judged soon, not a whole interval later"
        );
        assert_eq!(r.status_line(), "main — down · rescue repairing (1/3)");
        r.ticks(1).await;
        assert!(!r.watcher.repairing());
        let told = r.told();
        assert_eq!(told.len(), 2, "{told:?}");
        assert!(told[0].starts_with("send: main is down: nothing listens on port 18789"));
        assert!(told[1].starts_with("edit 1: "), "{told:?}");
        assert!(told[1].contains("\nrecovered (+10 s)"), "{}", told[1]);
        assert_eq!(r.status_line(), "main — healthy");
        // The incident is in watch.json too, for the desktop app's notices.
        let watched = omniclaw_os::rescue::read_watched(r.dir.path());
        let incident = watched[0].incident.as_ref().expect("the incident");
        assert_eq!(
            incident.headline,
            "main is down: nothing listens on port 18789"
        );
        assert_eq!(incident.steps.len(), 1, "{incident:?}");
        let ended = incident.outcome.as_ref().expect("ended");
        assert!(ended.recovered);
        assert_eq!(ended.lines, ["recovered (+10 s)"]);
        let audit: Vec<String> = read_audit(r.dir.path())
            .expect("audit")
            .into_iter()
            .map(|e| format!("{} {} -> {}", e.who, e.command, e.result))
            .collect();
        assert_eq!(audit.len(), 3, "{audit:?}");
        assert_eq!(audit[0], "watch watch: restart main (Service) -> ok");
        assert!(audit[2].ends_with("recovered (+10 s)"), "{audit:?}");
    }

    #[tokio::test]
    async fn an_invalid_config_is_rolled_back_only_when_allowed_and_the_keys_are_told() {
        let invalid = Check::Failed(Failure::ConfigInvalid {
            errors: vec!["gateway.port: expected a number (3:12)".into()],
        });
        let probes = vec![
            probe(invalid.clone(), Some(Owner::Service)),
            probe(invalid.clone(), Some(Owner::Service)),
            probe(invalid.clone(), Some(Owner::Service)),
            probe(Check::Healthy, Some(Owner::Service)),
        ];
        let mut with = rig(
            probes.clone(),
            vec![WatchAction::Restart, WatchAction::Rollback],
        );
        with.ticks(4).await;
        assert_eq!(with.repaired(), ["rollback main", "restart main Service"]);
        let last = with.told().last().cloned().expect("told");
        assert!(last.contains("rollback: restored gateway.port"), "{last}");
        assert!(last.contains("recovered"), "{last}");

        // A rollback that fails is not followed by a restart on the bad config.
        let mut failing = rig(
            probes.clone(),
            vec![WatchAction::Restart, WatchAction::Rollback],
        );
        failing.repairs.1.store(true, Ordering::SeqCst);
        failing.ticks(3).await;
        assert_eq!(failing.repaired(), ["rollback main"]);
        let told = failing.told();
        assert!(
            told[0].contains("rollback failed: no last known good config"),
            "{told:?}"
        );
        let audit = read_audit(failing.dir.path()).expect("audit");
        assert!(audit
            .iter()
            .any(|e| e.result == "skipped: the rollback before it failed"));

        let mut without = rig(probes, vec![WatchAction::Restart]);
        without.ticks(3).await;
        assert!(without.repaired().is_empty());
        let told = without.told();
        assert_eq!(told.len(), 1, "{told:?}");
        assert!(
            told[0].contains("gateway.port: expected a number (3:12)"),
            "{}",
            told[0]
        );
        assert!(
            told[0].contains("does not allow \"rollback\""),
            "{}",
            told[0]
        );
    }

    #[tokio::test]
    async fn stopped_on_purpose_terminal_run_and_unknown_are_never_repaired() {
        let stopped = Probe {
            check: down(),
            facts: Facts {
                owner: Some(Owner::Service),
                stopped_on_purpose: Some(StopBy::Cli),
                ..Facts::default()
            },
        };
        let mut r = rig(vec![stopped], vec![WatchAction::Restart]);
        r.ticks(5).await;
        assert!(r.repaired().is_empty());
        assert!(r.told().is_empty());
        assert_eq!(r.status_line(), "main — stopped on purpose (cli)");

        let mut r = rig(
            vec![probe(down(), Some(Owner::Terminal))],
            vec![WatchAction::Restart],
        );
        r.ticks(6).await;
        assert!(r.repaired().is_empty());
        assert_eq!(r.told().len(), 1, "reported once: {:?}", r.told());
        assert!(r.told()[0].contains("runs from a terminal"));

        let mut r = rig(
            vec![probe(
                Check::Unknown(Unknown::WrongToken),
                Some(Owner::Service),
            )],
            vec![WatchAction::Restart],
        );
        r.ticks(6).await;
        assert!(r.repaired().is_empty());
        assert_eq!(r.told().len(), 1, "{:?}", r.told());
        assert!(r.told()[0].contains("refused the rescue's token"));
    }

    #[tokio::test]
    async fn a_target_failing_after_every_repair_stops_at_the_budget_and_says_so_once() {
        // Each restart brings it up for one check, then it falls again.
        let cycle = [down(), down(), down(), Check::Healthy];
        let checks = usize::try_from(HOUR_MS / 10_000).expect("small");
        let probes = (0..checks)
            .map(|i| probe(cycle[i % cycle.len()].clone(), Some(Owner::Service)))
            .collect();
        let mut r = rig(probes, vec![WatchAction::Restart]);
        // An hour of checks every 10 s, in no time, ending on a failed one.
        r.ticks(checks - 1).await;
        let restarts = r.repaired().len();
        assert_eq!(restarts, 3, "{:?}", r.repaired());
        let gave_up: Vec<_> = r
            .told()
            .into_iter()
            .filter(|t| t.contains("gave up after 3 repairs"))
            .collect();
        assert_eq!(gave_up.len(), 1, "said once");
        assert!(r.status_line().contains("gave up"), "{}", r.status_line());
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn an_embedded_target_is_restarted_through_the_apps_control_socket() {
        use std::io::{BufRead, BufReader, Write};
        let home = tempfile::tempdir().expect("tempdir");
        let listener = desktopctl::listen(&desktopctl::socket_path(home.path())).expect("listen");
        // The app: answers one request and hands it back to the test.
        let app = std::thread::spawn(move || {
            let (stream, _) = listener.accept().expect("accept");
            let mut line = String::new();
            BufReader::new(&stream).read_line(&mut line).expect("read");
            let reply = desktopctl::Reply::ok("main restarted", Some("running".into()));
            (&stream)
                .write_all(reply.to_line().as_bytes())
                .expect("reply");
            Request::parse(&line).expect("a request")
        });
        let repairs = CliRepairs {
            exec: Executor {
                program: PathBuf::from("omniclaw-not-called"),
                own: Profile::parse("rescue").expect("profile"),
                targets: vec![main()],
                secrets: Arc::new(Vec::<String>::new()),
                env: omniclaw_core::env::ChildEnv::default(),
            },
            home: home.path().to_path_buf(),
        };
        let done = repairs.restart(&main(), Owner::Embedded).await;
        assert_eq!(done, Ok("main restarted".to_string()));
        assert_eq!(
            app.join().expect("app thread"),
            Request::new(Op::Restart, "main")
        );
        // A terminal-run gateway is never restarted behind its user's back.
        let refused = repairs.restart(&main(), Owner::Terminal).await;
        assert!(refused.is_err_and(|e| e.contains("runs from a terminal")));
    }

    #[tokio::test]
    async fn a_paused_target_is_not_checked_and_heal_runs_the_ladder_at_once() {
        let mut r = rig(
            vec![probe(down(), Some(Owner::Service))],
            vec![WatchAction::Restart],
        );
        r.watcher.pause(&main(), true).expect("watched");
        r.ticks(5).await;
        assert!(r.repaired().is_empty());
        assert!(r.status_line().contains("watch paused"));
        let other = Profile::parse("other").expect("profile");
        assert!(r.watcher.pause(&other, true).is_err());
        let line = r.watcher.heal_now(&main()).await.expect("watched");
        assert_eq!(line, "main — down · rescue repairing (1/3)");
        assert_eq!(r.repaired(), ["restart main Service"]);
        assert!(r.watcher.summary().contains("repairs allowed: restart"));
        // Turned off by a reload: status no longer claims it watches.
        let off = WatchSettings {
            enabled: false,
            ..r.watcher.settings().clone()
        };
        r.watcher.reconfigure(off, &[main()]);
        assert_eq!(
            r.status_line(),
            "main — not watched (rescue.watch.enabled is false)"
        );
    }
}
