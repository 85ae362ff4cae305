//! Hot reload of a running gateway: watch its config, validate each edit,
//! apply what can be applied in place, restart for the rest, refuse what is
//! invalid while the last good config keeps serving.
//!
//! [`serve_reloading`] owns one gateway for its whole life. On an edit
//! (debounced by the OS watcher) it asks the caller's [`Rebuild`] to turn
//! the new text into a [`Candidate`] (validation and secret lookup are the
//! caller's, so this crate still never resolves profiles or reads the
//! environment), classifies the change with `omniclaw_core::reload`, and:
//!
//! - nothing changed that matters → nothing happens;
//! - invalid, or secrets missing → refused: logged, kept in [`Live`] for
//!   `status` / `health`, and pushed as a `health` event; the gateway keeps
//!   serving the previous config and every client stays connected;
//! - `gateway.reload.mode: off` → only reported;
//! - hot keys only → applied in place (auth swapped under a lock, the
//!   caller's `applied` hook for logging and redaction);
//! - otherwise → the gateway is stopped and bound again with the new spec;
//!   if the new ports cannot be bound the previous spec is bound again.
//!
//! Once a config has served for [`Options::healthy_after`] (10 s by default)
//! it is saved next to the config as `omniclaw.json.last-good`, which
//! `config rollback` restores. Nothing here logs or stores a secret value.
//!
//! The Telegram channel lives as long as the gateway: it starts with the
//! first config that enables it, and an applied edit that changes its
//! settings (token, API root, policy, allowlist, targets) restarts only the
//! channel — its persisted offset makes that lose and repeat nothing.

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use omniclaw_core::config::{self, Config, ReloadMode, SecretRef};
use omniclaw_os::watch::ConfigWatcher;

use crate::server::{Addrs, Bound, Broadcast, Gateway, ServeError};
use crate::spec::{Auth, GatewaySpec};
use omniclaw_channels::telegram::{self, Channel, ChannelState};

use crate::approvals::{Approvals, GatewayApprover};
use crate::assistant::{self as assistant_mod, Assistant, SecretResolver};
use crate::hub::Hub;

/// How long a stopping Telegram channel may finish the update in hand.
pub(crate) const CHANNEL_GRACE: Duration = Duration::from_secs(3);

/// The Telegram channel as `status` sees it.
enum TelegramSlot {
    Off,
    /// The config enables it but it cannot run (no token, …).
    Refused(String),
    On(watch::Receiver<ChannelState>),
}

// The last known good config's name is the one `config rollback` restores.
pub use omniclaw_os::edit::{last_good_path, LAST_GOOD_SUFFIX};

/// What the reloader reports through `status` and `health`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Report {
    mode: Option<ReloadMode>,
    /// Hash of the config text the gateway runs on.
    config_hash: Option<String>,
    last_applied_ms: Option<u64>,
    /// Why the newest edit was refused; cleared by the next good one.
    last_error: Option<String>,
    /// Changes seen but not applied (`reload.mode: off`).
    pending: Vec<String>,
}

/// The part of a gateway a reload changes while it serves. Shared between
/// the reloader and the server; cheap to read on every connect.
pub struct Live {
    auth: RwLock<Auth>,
    report: RwLock<Report>,
    telegram: RwLock<TelegramSlot>,
    /// The profile `config.patch` edits are checked against (set by
    /// `serve_reloading` from its `Rebuild`).
    edit_target: RwLock<Option<omniclaw_os::edit::Target>>,
    /// The connections, for events and later answers (across rebinds).
    pub(crate) hub: Arc<Hub>,
    /// Tool calls waiting for an operator's yes.
    pub(crate) approvals: Arc<Approvals>,
    /// Why the assistant does not run, when it does not.
    assistant_problem: RwLock<Option<String>>,
    /// The assistant, once a config with one applied (`None` when its
    /// store could not be opened: `status` says why).
    assistant: RwLock<Option<Arc<Assistant>>>,
    pub(crate) events: broadcast::Sender<Broadcast>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Live {
    pub fn new(auth: Auth) -> Arc<Live> {
        let (events, _) = broadcast::channel(16);
        let hub = Arc::new(Hub::default());
        Arc::new(Live {
            auth: RwLock::new(auth),
            report: RwLock::new(Report::default()),
            telegram: RwLock::new(TelegramSlot::Off),
            edit_target: RwLock::new(None),
            approvals: Arc::new(Approvals::new(hub.clone())),
            hub,
            assistant_problem: RwLock::new(None),
            assistant: RwLock::new(None),
            events,
        })
    }

    /// The approvals waiting for an operator (channels show them).
    pub fn approvals(&self) -> Arc<Approvals> {
        self.approvals.clone()
    }

    /// The gateway's assistant, when it runs one.
    pub fn assistant(&self) -> Option<Arc<Assistant>> {
        self.assistant
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Why the assistant does not run, when it does not.
    pub fn assistant_problem(&self) -> Option<String> {
        self.assistant_problem
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set_assistant_problem(&self, why: Option<String>) {
        *self
            .assistant_problem
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = why;
    }

    fn set_assistant(&self, a: Option<Arc<Assistant>>) {
        *self
            .assistant
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = a;
    }

    /// The profile whose config `config.patch` edits, when known.
    pub fn edit_target(&self) -> Option<omniclaw_os::edit::Target> {
        self.edit_target
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set_edit_target(&self, target: Option<omniclaw_os::edit::Target>) {
        *self
            .edit_target
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = target;
    }

    /// The credentials clients must present now.
    pub fn auth(&self) -> Auth {
        self.auth
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set_auth(&self, auth: Auth) {
        *self
            .auth
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = auth;
    }

    /// The Telegram channel's state; `None` when the config does not enable it.
    pub fn telegram(&self) -> Option<ChannelState> {
        match &*self
            .telegram
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
        {
            TelegramSlot::Off => None,
            TelegramSlot::Refused(reason) => Some(ChannelState::Failed {
                reason: reason.clone(),
            }),
            TelegramSlot::On(rx) => Some(rx.borrow().clone()),
        }
    }

    fn set_telegram(&self, slot: TelegramSlot) {
        *self
            .telegram
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = slot;
        let _ = self.events.send(Broadcast::Health);
    }

    fn update(&self, f: impl FnOnce(&mut Report)) {
        f(&mut self
            .report
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner));
        // No receivers is fine: nobody is connected.
        let _ = self.events.send(Broadcast::Health);
    }

    /// The `reload` object of `status` and `health`.
    pub fn report(&self) -> Value {
        let r = self
            .report
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        json!({
            "mode": r.mode.map(ReloadMode::as_str),
            "configHash": r.config_hash,
            "lastAppliedMs": r.last_applied_ms,
            "lastError": r.last_error,
            "pending": r.pending,
        })
    }

    /// The reason the newest edit was refused, if it was.
    pub fn last_error(&self) -> Option<String> {
        self.report
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .last_error
            .clone()
    }
}

/// A config turned into what a gateway runs.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub spec: GatewaySpec,
    pub config: Config,
    /// The validated config value (for classifying the next edit).
    pub value: Value,
    /// The config text it came from.
    pub text: String,
}

/// The caller's half of a reload: validation, secret lookup and side
/// effects outside the gateway (logging level, redaction, runtime file).
pub trait Rebuild: Send + Sync + 'static {
    /// Validates `text` and builds the gateway it describes. `Err` refuses
    /// the edit; its message names the key and the fix, never a secret.
    fn build(&self, text: &str) -> Result<Candidate, String>;
    /// The profile this gateway runs, for the isolation check of edits
    /// (`config.patch` and files edited by hand): `None` for a gateway that
    /// runs no profile, whose edits are only validated.
    fn edit_target(&self) -> Option<omniclaw_os::edit::Target> {
        None
    }
    /// Whether the running gateway may move from `old` to `new` (both
    /// valid): never into a conflict with another profile or a port another
    /// process holds. `Err` says which, with the fix.
    fn admit(&self, old: &str, new: &str) -> Result<(), String> {
        let Some(target) = self.edit_target() else {
            return Ok(());
        };
        let clashes = omniclaw_os::edit::check_isolation(&target, Some(old), new);
        if clashes.is_empty() {
            return Ok(());
        }
        Err(clashes
            .iter()
            .map(|c| format!("{} (fix: {})", c.message, c.fix))
            .collect::<Vec<_>>()
            .join("\n"))
    }
    /// Called once a candidate runs (hot-applied or restarted) on `addrs`.
    fn applied(&self, candidate: &Candidate, addrs: &Addrs);
    /// Reads the profile's secrets the assistant needs (provider keys);
    /// `None` for a gateway that runs no profile: its assistant takes only
    /// keys written in its config.
    fn secrets(&self) -> Option<Arc<dyn SecretResolver>> {
        None
    }
    /// Every secret value this gateway knows of, read at each use: what a
    /// rescue bot masks in the logs, configs and reports of other gateways
    /// before its model or Telegram sees them. The default knows none (the
    /// bot's own token is masked anyway).
    fn known_secrets(&self) -> Arc<dyn telegram::SecretSource> {
        Arc::new(Vec::<String>::new())
    }
    /// The Telegram channel `candidate` runs: `Ok(None)` when its config
    /// does not enable one, `Err` (shown in `status`) when it cannot run.
    /// The default reads the bot token from the profile's secret store (its
    /// secrets file when it has one, the OS keychain otherwise) and runs
    /// rescue commands through the `omniclaw` binary.
    fn telegram(&self, candidate: &Candidate) -> Result<Option<telegram::Settings>, String> {
        let store = omniclaw_os::secrets::Routed::system(false);
        telegram::settings(
            &candidate.spec.profile,
            &candidate.spec.state_dir,
            &candidate.config,
            &candidate.value,
            &store,
            telegram::default_program(),
            candidate.spec.child_env.clone(),
        )
    }
}

/// Brings the Telegram channel in line with `c`: keeps `old` when its
/// settings did not change, else stops it and starts what `c` asks for.
async fn sync_channel(
    live: &Arc<Live>,
    rebuild: &Arc<dyn Rebuild>,
    c: &Candidate,
    mut old: Option<Channel>,
) -> Option<Channel> {
    let wanted = {
        let rebuild = rebuild.clone();
        let c = c.clone();
        match tokio::task::spawn_blocking(move || rebuild.telegram(&c)).await {
            Ok(r) => r,
            Err(e) => Err(format!("reading the telegram settings failed: {e}")),
        }
    };
    if let (Some(ch), Ok(Some(s))) = (&mut old, &wanted) {
        // `rescue.watch.*` alone applies to the running watch.
        if ch.settings() == s || ch.rewatch(s) {
            return old;
        }
    }
    if let Some(ch) = old {
        ch.stop(CHANNEL_GRACE).await;
        tracing::info!("telegram channel stopped");
    }
    match wanted {
        Ok(Some(settings)) => {
            let hooks = crate::telegram::hooks(live, &settings, rebuild.known_secrets());
            let ch = Channel::start(settings, hooks);
            live.set_telegram(TelegramSlot::On(ch.state()));
            Some(ch)
        }
        Ok(None) => {
            live.set_telegram(TelegramSlot::Off);
            None
        }
        Err(why) => {
            tracing::error!(reason = %why, "telegram channel cannot run");
            live.set_telegram(TelegramSlot::Refused(why));
            None
        }
    }
}

/// Timings of the reloader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Quiet time after the last file event before an edit is read.
    pub debounce: Duration,
    /// How long a config must serve before it becomes the last good one.
    pub healthy_after: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            debounce: Duration::from_millis(100),
            healthy_after: Duration::from_secs(10),
        }
    }
}

struct Running {
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), ServeError>>,
    addrs: Addrs,
}

fn start(bound: Bound, live: Arc<Live>) -> Running {
    let (stop, mut stop_rx) = watch::channel(false);
    let addrs = bound.addrs();
    let task = tokio::spawn(bound.serve_live(
        async move {
            let _ = stop_rx.wait_for(|s| *s).await;
        },
        live,
    ));
    Running { stop, task, addrs }
}

impl Running {
    async fn stop(self) -> Result<(), ServeError> {
        let _ = self.stop.send(true);
        match self.task.await {
            Ok(r) => r,
            // A panicked serve task has dropped its listeners: nothing left to stop.
            Err(_) => Ok(()),
        }
    }
}

/// The spec without its credentials, to tell whether a restart changes anything.
fn layout_of(spec: &GatewaySpec) -> GatewaySpec {
    let mut s = spec.clone();
    s.auth = Auth::None;
    s
}

/// Serves `bound` (built from `first`) until `shutdown` resolves, applying
/// edits of `first.spec.config_path` as the module docs describe.
pub async fn serve_reloading(
    bound: Bound,
    first: Candidate,
    rebuild: Arc<dyn Rebuild>,
    options: Options,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let live = Live::new(first.spec.auth.clone());
    live.set_edit_target(rebuild.edit_target());
    let config_path = first.spec.config_path.clone();
    let last_good = last_good_path(&config_path);
    let (tx, mut edits) = tokio::sync::mpsc::unbounded_channel::<()>();
    let _watcher = match ConfigWatcher::start(&config_path, options.debounce, move || {
        let _ = tx.send(());
    }) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, "hot reload is off");
            None
        }
    };
    let mut current = first;
    // The assistant first: the listeners already queue connections, and a
    // client that comes at once must find it (not "runs no assistant").
    sync_assistant(&live, &rebuild, &current);
    let mut running = start(bound, live.clone());
    mark_applied(&live, &current);
    rebuild.applied(&current, &running.addrs);
    tracing::info!(
        profile = %current.spec.profile,
        port = running.addrs.gateway.port(),
        config = %config_path.display(),
        "gateway serving"
    );
    let mut good_due = Some(Instant::now() + options.healthy_after);
    let mut channel = sync_channel(&live, &rebuild, &current, None).await;
    tokio::pin!(shutdown);

    loop {
        let due = good_due;
        tokio::select! {
            () = &mut shutdown => {
                // Stops are logged like starts, so the log tells a restart
                // (a stop, then "gateway serving") from a crash.
                tracing::info!(profile = %current.spec.profile, "gateway stopping");
                if let Some(ch) = channel.take() {
                    ch.stop(CHANNEL_GRACE).await;
                }
                // Turns going on end as aborted, their text kept; the
                // store closes with the last run.
                if let Some(a) = live.assistant() {
                    a.abort_all();
                }
                live.set_assistant(None);
                let stopped = running.stop().await;
                tracing::info!(profile = %current.spec.profile, "gateway stopped");
                return stopped;
            }
            result = &mut running.task => {
                // Serving ended without being asked to: a listener failed,
                // or the serve task panicked, which the caller must see
                // (a host marks the gateway failed) rather than a clean stop.
                return match result {
                    Ok(r) => r,
                    Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                    Err(_) => Ok(()),
                };
            }
            edit = edits.recv() => {
                if edit.is_none() {
                    // The watcher is gone; serve on without reloads.
                    std::future::pending::<()>().await;
                }
                let next = handle_edit(&live, &rebuild, &mut current, running).await;
                running = next.0?;
                if next.1 {
                    good_due = Some(Instant::now() + options.healthy_after);
                    channel = sync_channel(&live, &rebuild, &current, channel.take()).await;
                }
            }
            () = sleep_until(due) => {
                good_due = None;
                save_last_good(&last_good, &current.text);
            }
        }
    }
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

/// Keys written in the config itself: all a gateway without a profile can read.
struct PlainSecrets;

impl SecretResolver for PlainSecrets {
    fn resolve(&self, path: &str, secret: &SecretRef) -> Result<Option<String>, String> {
        match secret {
            SecretRef::Plain(v) => Ok(Some(v.clone())),
            _ => Err(format!(
                "{path} refers to a secret store this gateway cannot read: write the key into its config"
            )),
        }
    }
}

/// Brings the assistant in line with `c`: opened with the first config,
/// reconfigured by every later one (runs going on keep their setup). A
/// store that cannot be opened leaves the gateway serving without one and
/// is reported.
fn sync_assistant(live: &Live, rebuild: &Arc<dyn Rebuild>, c: &Candidate) {
    let resolver = rebuild.secrets().unwrap_or_else(|| Arc::new(PlainSecrets));
    let target = rebuild.edit_target();
    live.approvals
        .set_timeout(c.config.agent().tools.exec.approval_timeout_seconds.map_or(
            crate::approvals::DEFAULT_TIMEOUT,
            std::time::Duration::from_secs,
        ));
    let approver = Arc::new(GatewayApprover {
        approvals: live.approvals.clone(),
        allow_always: Arc::new(move |line: &str| match &target {
            Some(t) => crate::approvals::allow_always(t, line),
            None => Err("this gateway runs no profile whose config could take it".into()),
        }),
    });
    let rescue = telegram::rescue_tools(
        &c.spec.profile,
        &c.spec.state_dir,
        &c.config,
        &c.value,
        telegram::default_program(),
        c.spec.child_env.clone(),
        rebuild.known_secrets(),
    )
    .map(|(tools, prompt)| assistant_mod::RescueTools { tools, prompt });
    let parts = match assistant_mod::parts(&c.config, &c.spec, resolver, Some(approver), rescue) {
        Ok(p) => p,
        Err(why) => {
            tracing::warn!(reason = %why, "the assistant cannot run with this config");
            live.set_assistant_problem(Some(why));
            return;
        }
    };
    if let Some(a) = live.assistant() {
        a.reconfigure(parts);
        live.set_assistant_problem(None);
        return;
    }
    match Assistant::open(&c.spec.state_dir, parts, live.hub.clone()) {
        Ok(a) => {
            live.set_assistant(Some(Arc::new(a)));
            live.set_assistant_problem(None);
        }
        Err(why) => {
            tracing::error!(reason = %why, "the assistant's session store cannot be opened; chat is off");
            live.set_assistant_problem(Some(why));
        }
    }
}

fn mark_applied(live: &Live, c: &Candidate) {
    let hash = config::hash(&c.text);
    let mode = c.config.reload_mode();
    live.update(|r| {
        r.mode = Some(mode);
        r.config_hash = Some(hash);
        r.last_applied_ms = Some(now_ms());
        r.last_error = None;
        r.pending.clear();
    });
}

fn refuse(live: &Live, why: String) {
    tracing::warn!(reason = %why, "config edit refused; still serving the last good config");
    live.update(|r| r.last_error = Some(why));
}

fn save_last_good(path: &Path, text: &str) {
    if std::fs::read_to_string(path).ok().as_deref() == Some(text) {
        return;
    }
    match omniclaw_os::fsx::atomic_replace(path, text.as_bytes()) {
        Ok(()) => tracing::info!(file = %path.display(), "config saved as last known good"),
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "cannot save the last known good config")
        }
    }
}

/// Reads and applies one edit. Returns the gateway now running and whether
/// a new config took effect (which restarts the last-good clock).
async fn handle_edit(
    live: &Arc<Live>,
    rebuild: &Arc<dyn Rebuild>,
    current: &mut Candidate,
    running: Running,
) -> (Result<Running, ServeError>, bool) {
    let path = current.spec.config_path.clone();
    let text = match tokio::fs::read_to_string(&path).await {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            refuse(
                live,
                format!(
                    "the config {} was removed; restore it (or `config rollback`)",
                    path.display()
                ),
            );
            return (Ok(running), false);
        }
        Err(e) => {
            refuse(
                live,
                format!("cannot read the config {}: {e}", path.display()),
            );
            return (Ok(running), false);
        }
    };
    if text == current.text {
        // Saved unchanged, or an invalid edit was reverted.
        if live.last_error().is_some() {
            mark_applied(live, current);
            tracing::info!("config is back to the running version");
        }
        return (Ok(running), false);
    }
    let next = {
        let rebuild = rebuild.clone();
        let text = text.clone();
        let old = current.text.clone();
        let shown = path.display().to_string();
        let checked = tokio::task::spawn_blocking(move || {
            let next = rebuild
                .build(&text)
                .map_err(|why| format!("invalid config {shown}, edit refused:\n{why}"))?;
            rebuild.admit(&old, &text).map_err(|why| {
                format!("the edit would collide with another instance, so it is refused:\n{why}")
            })?;
            Ok::<_, String>(next)
        });
        match checked.await {
            Ok(r) => r,
            Err(e) => Err(format!("checking the config failed: {e}")),
        }
    };
    let next = match next {
        Ok(n) => n,
        Err(why) => {
            refuse(live, why);
            return (Ok(running), false);
        }
    };
    let plan = omniclaw_core::reload::classify(&current.value, &next.value);
    // Turning reload off is itself applied; anything else under `off` is only reported.
    let only_mode_switch = plan.changes.iter().all(|c| c.path == "gateway.reload.mode")
        && current.config.reload_mode() != ReloadMode::Off;
    if next.config.reload_mode() == ReloadMode::Off && !only_mode_switch {
        let pending: Vec<String> = plan.changes.iter().map(|c| c.path.clone()).collect();
        tracing::warn!(changes = %plan.summary(), "config changed but gateway.reload.mode is off: restart the gateway to apply");
        live.update(|r| r.pending = pending);
        return (Ok(running), false);
    }
    // A rebind checks the spec itself; an in-place apply (a new token on a
    // LAN bind) must pass the same checks.
    if let Err(e) = crate::server::check_spec(&next.spec) {
        refuse(live, format!("config {} refused: {e}", path.display()));
        return (Ok(running), false);
    }
    let restart = layout_of(&next.spec) != layout_of(&current.spec)
        || next.spec.auth.mode() != current.spec.auth.mode();
    if !restart {
        live.set_auth(next.spec.auth.clone());
        *current = next;
        mark_applied(live, current);
        sync_assistant(live, rebuild, current);
        rebuild.applied(current, &running.addrs);
        tracing::info!(changes = %plan.summary(), "config applied in place");
        return (Ok(running), true);
    }
    tracing::info!(changes = %plan.summary(), "config needs a restart of the gateway");
    if let Err(e) = running.stop().await {
        tracing::warn!(error = %e, "the gateway stopped with an error");
    }
    match Gateway::bind(next.spec.clone()) {
        Ok(bound) => {
            live.set_auth(next.spec.auth.clone());
            let running = start(bound, live.clone());
            *current = next;
            mark_applied(live, current);
            sync_assistant(live, rebuild, current);
            rebuild.applied(current, &running.addrs);
            tracing::info!(
                port = running.addrs.gateway.port(),
                "gateway restarted with the new config"
            );
            (Ok(running), true)
        }
        Err(e) => {
            let why = format!("restart refused: {e}; still serving the previous config");
            // Bind the previous spec again: the old ports were ours a moment ago.
            match Gateway::bind(current.spec.clone()) {
                Ok(bound) => {
                    let running = start(bound, live.clone());
                    refuse(live, why);
                    (Ok(running), false)
                }
                Err(again) => {
                    tracing::error!(error = %again, "cannot bind the previous config again; the gateway is down");
                    (
                        Err(ServeError::Rebind {
                            reason: format!("{why}; binding it again failed too: {again}"),
                        }),
                        false,
                    )
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_good_sits_next_to_the_config() {
        assert_eq!(
            last_good_path(Path::new("/s/omniclaw.json")),
            std::path::PathBuf::from("/s/omniclaw.json.last-good")
        );
    }

    #[test]
    fn report_shows_refusals_until_the_next_apply() {
        let live = Live::new(Auth::Token("t".into()));
        let mut rx = live.events.subscribe();
        refuse(&live, "gateway.port: expected an integer".into());
        assert_eq!(rx.try_recv().ok(), Some(Broadcast::Health));
        assert_eq!(
            live.report()["lastError"],
            json!("gateway.port: expected an integer")
        );
        let loaded = config::load("{}").expect("valid");
        let c = Candidate {
            spec: GatewaySpec::new("main", "/c".into(), "/s".into(), "/w".into(), 1),
            config: loaded.config,
            value: loaded.doc.into_value(),
            text: "{}".into(),
        };
        mark_applied(&live, &c);
        let r = live.report();
        assert_eq!(r["lastError"], Value::Null);
        assert_eq!(r["mode"], json!("hybrid"));
        assert_eq!(r["configHash"], json!(config::hash("{}")));
        assert_eq!(live.auth(), Auth::Token("t".into()));
    }
}
