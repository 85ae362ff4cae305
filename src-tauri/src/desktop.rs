//! The app's state and every gateway action: embedded gateways run in the
//! in-process [`Host`], service-owned ones go through the service manager
//! (the `omniclaw` binary's `gateway install|uninstall|start|stop|restart`).
//!
//! Gateways are resolved from an environment snapshot holding only `HOME` /
//! `OMNICLAW_HOME`: an embedded gateway never inherits the tray's own
//! environment. An embedded gateway holds its profile's instance lock as
//! `embedded`, so the CLI and other tools see who runs it, and a profile
//! someone else runs is never started a second time. Nothing here touches a
//! window or a menu; callers render [`crate::view::View`]s.
//!
//! Embedded gateways run like `omniclaw gateway` does: hot reload of their
//! config (an invalid edit keeps the last good one serving), the Telegram
//! channel of a rescue profile, the runtime file, and log lines in their own
//! profile's `<state dir>/logs/` (each on its own thread with its own
//! logger, see `omniclaw_gateway::host`). Other processes reach the same
//! actions over the control socket `~/.omniclaw/desktop.sock`
//! ([`Desktop::serve_control`]): `omniclaw gateway start|stop|restart` of a
//! gateway this app runs, and through them the rescue bot, act exactly like
//! a click on the tray menu.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, MutexGuard};

use omniclaw_core::env::{self, EnvSnapshot};
use omniclaw_core::heal::StopBy;
use omniclaw_core::paths::{self, Resolved};
use omniclaw_core::tray::{self, Action, Via};
use omniclaw_gateway::host::Reloading;
use omniclaw_gateway::profile::{Overrides, SpecError};
use omniclaw_gateway::rebuild::{self, ProfileRebuild};
use omniclaw_gateway::reload::{self, Rebuild};
use omniclaw_gateway::{Auth, GatewayState, Host};
#[cfg(unix)]
use omniclaw_os::desktopctl::{self, Op, Reply, Request};
use omniclaw_os::intent::{self, StopIntent};
use omniclaw_os::lock::{InstanceLock, Owner};
use omniclaw_os::profiles::{self, ConfigState};
use omniclaw_os::runtime;
use omniclaw_os::secrets::SecretStore;
use omniclaw_os::{discovery, fsx, logs};
use tokio::sync::Notify;

use crate::settings::{self, Settings, SettingsError};
use crate::tray::Folder;

/// The highest daily cap the card sets (a typo guard, not a policy: the
/// config takes any amount).
const MAX_DAILY_CAP: f64 = 100_000.0;
/// Lines of activity kept per gateway for the dashboard.
const ACTIVITY_LINES: usize = 50;
/// How long a control client may take to send its request line.
#[cfg(unix)]
const CONTROL_READ_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
/// The longest request line read (requests are tiny).
#[cfg(unix)]
const CONTROL_LINE_MAX: u64 = 4096;

/// Why an action on a gateway failed; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("{0:?} is not a profile: profile names are lowercase letters, digits, '-' and '_'")]
    BadProfile(String),
    #[error("no profile {0:?} is set up: create it with `omniclaw --profile {0} setup`")]
    UnknownProfile(String),
    #[error(transparent)]
    Refused(#[from] tray::Refusal),
    #[error("{name}: {message}")]
    Failed { name: String, message: String },
    #[error(transparent)]
    Settings(#[from] SettingsError),
}

impl ActionError {
    fn failed(name: &str, message: impl std::fmt::Display) -> ActionError {
        ActionError::Failed {
            name: name.to_string(),
            message: message.to_string(),
        }
    }
}

/// The CLI's `--version` (or why it was not read, or that it is being
/// read), and the file's modification time it is for.
struct CliVersion {
    modified: Option<std::time::SystemTime>,
    version: Result<String, String>,
}

/// A folder "Open logs" / "Open config folder" could not open: its path
/// is shown on the card instead, to select and copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unopened {
    pub folder: Folder,
    pub path: String,
    pub why: String,
}

/// A gateway this app runs: its lock is held as long as it runs.
struct Embedded {
    _lock: InstanceLock,
    state_dir: PathBuf,
}

/// The desktop app's state, shared by the tray, the commands and the
/// background refresher. Cheap to share behind an `Arc`.
pub struct Desktop {
    env: EnvSnapshot,
    home: PathBuf,
    host: Host,
    /// Where embedded gateways' credentials come from (the OS keychain, or a
    /// profile's secrets file): never the tray's environment.
    store: Arc<dyn SecretStore>,
    embedded: Mutex<HashMap<String, Embedded>>,
    /// The last failed action per gateway (shown on its card, and as the
    /// `failed` state when the start failed before the host saw it).
    errors: Mutex<HashMap<String, String>>,
    /// Starts that failed before the host took the gateway (bad config,
    /// missing credentials): the gateway shows as `failed` until the next
    /// successful action.
    start_failures: Mutex<HashMap<String, String>>,
    activity: Mutex<HashMap<String, VecDeque<String>>>,
    settings: Mutex<Settings>,
    settings_path: PathBuf,
    /// Problems with the app itself (unreadable settings), for the dashboard.
    app_problems: Mutex<Vec<String>>,
    /// Poked whenever something changed; the refresher wakes up at once.
    pub changed: Notify,
    cli: PathBuf,
    /// The CLI's version as last read, with the file's modification time
    /// it was read at (an upgrade replaces the file).
    cli_version: Arc<Mutex<Option<CliVersion>>>,
    /// The control socket this app bound, removed on quit.
    control: Mutex<Option<PathBuf>>,
    /// Per running gateway, why it refused the newest edit of its config
    /// (its `health.reload.lastError`), kept by [`crate::link`].
    refused: Mutex<HashMap<String, String>>,
    /// The app's connection to each running gateway and what it tells.
    pub links: crate::link::Links,
    /// The remote gateways and the SSH tunnels the app keeps up to them.
    pub remotes: crate::remotes::Remotes,
    /// Profiles whose keychain refused (or could not be reached) when
    /// this app last needed one of their secrets.
    keychain_problems: Mutex<HashMap<String, String>>,
    unopened: Mutex<HashMap<String, Unopened>>,
    /// What the CLI said when it installed or uninstalled a service (its
    /// advice on lingering and the user session among it), per profile.
    service_notes: Mutex<HashMap<String, Vec<String>>>,
    /// Owns what "Copy token" put on the clipboard: on X11 the selection
    /// is served by its owner for as long as it lives.
    clipboard: Mutex<Option<arboard::Clipboard>>,
}

fn guard<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every mutex here holds plain data; a panic elsewhere cannot tear it.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The environment embedded gateways resolve from: `HOME` and
/// `OMNICLAW_HOME` (plus `USERPROFILE` on Windows), and what the processes
/// they start may inherit ([`env::inheritable`]: `PATH`, the session's
/// D-Bus, the locale, …); no profile variable and no credential.
pub fn gateway_env<I>(process: I) -> EnvSnapshot
where
    I: IntoIterator<Item = (String, String)>,
{
    let keep = ["HOME", env::HOME, "USERPROFILE"];
    EnvSnapshot::from_vars(
        process
            .into_iter()
            .filter(|(k, _)| keep.contains(&k.as_str()) || env::inheritable(k)),
    )
}

impl Desktop {
    /// The state for `env` (see [`gateway_env`]) with credentials from
    /// `store`; reads the settings file.
    pub fn new(env: EnvSnapshot, store: Box<dyn SecretStore>) -> Result<Desktop, ActionError> {
        let home = resolve(&env, None)?.home;
        let settings_path = settings::path(&home);
        let (settings, problems) = match settings::load(&settings_path) {
            Ok(s) => (s, Vec::new()),
            Err(e) => (Settings::default(), vec![e.to_string()]),
        };
        Ok(Desktop {
            env,
            home,
            host: Host::new(),
            store: Arc::from(store),
            embedded: Mutex::new(HashMap::new()),
            errors: Mutex::new(HashMap::new()),
            start_failures: Mutex::new(HashMap::new()),
            activity: Mutex::new(HashMap::new()),
            settings: Mutex::new(settings),
            settings_path,
            app_problems: Mutex::new(problems),
            changed: Notify::new(),
            cli: cli_path(),
            cli_version: Arc::new(Mutex::new(None)),
            control: Mutex::new(None),
            refused: Mutex::new(HashMap::new()),
            links: crate::link::Links::default(),
            remotes: crate::remotes::Remotes::default(),
            keychain_problems: Mutex::new(HashMap::new()),
            unopened: Mutex::new(HashMap::new()),
            service_notes: Mutex::new(HashMap::new()),
            clipboard: Mutex::new(None),
        })
    }

    pub fn env(&self) -> &EnvSnapshot {
        &self.env
    }

    pub fn home(&self) -> &Path {
        &self.home
    }

    pub fn host(&self) -> &Host {
        &self.host
    }

    pub fn settings(&self) -> Settings {
        guard(&self.settings).clone()
    }

    pub fn app_problems(&self) -> Vec<String> {
        guard(&self.app_problems).clone()
    }

    /// The last error of an action on `name`, if the last action failed.
    pub fn last_error(&self, name: &str) -> Option<String> {
        guard(&self.errors).get(name).cloned()
    }

    /// Why the last start of `name` in this app failed, if it did.
    pub fn start_failure(&self, name: &str) -> Option<String> {
        guard(&self.start_failures).get(name).cloned()
    }

    /// Why the running gateway `name` refused its newest config edit, if it did.
    pub fn refused(&self, name: &str) -> Option<String> {
        guard(&self.refused).get(name).cloned()
    }

    /// Records `name`'s `reload.lastError` (`None`: the last edit applied,
    /// or it stopped); wakes the refresher when it changed.
    pub fn set_refused(&self, name: &str, why: Option<String>) {
        if crate::link::replace(&self.refused, name, why) {
            self.changed.notify_one();
        }
    }

    /// Why the keychain did not serve `name`'s secrets the last time.
    pub fn keychain_problem(&self, name: &str) -> Option<String> {
        guard(&self.keychain_problems).get(name).cloned()
    }

    fn set_keychain_problem(&self, name: &str, problem: Option<String>) {
        match problem {
            Some(p) => guard(&self.keychain_problems).insert(name.to_string(), p),
            None => guard(&self.keychain_problems).remove(name),
        };
        self.changed.notify_one();
    }

    /// The folder of `name` that could not be opened, if any.
    pub fn unopened(&self, name: &str) -> Option<Unopened> {
        guard(&self.unopened).get(name).cloned()
    }

    /// Records (or, with `None`, clears) a folder of `name` that could not
    /// be opened: `(path, why)`.
    pub fn unopened_folder(&self, name: &str, folder: Folder, failed: Option<(String, String)>) {
        match failed {
            Some((path, why)) => {
                guard(&self.unopened).insert(name.to_string(), Unopened { folder, path, why });
            }
            None => {
                guard(&self.unopened).remove(name);
            }
        }
        self.changed.notify_one();
    }

    /// What the last successful service install or uninstall of `name` said.
    pub fn service_notes(&self, name: &str) -> Vec<String> {
        guard(&self.service_notes)
            .get(name)
            .cloned()
            .unwrap_or_default()
    }

    /// Forgets a message the user closed on `name`'s card.
    pub fn dismiss(&self, name: &str, what: &str) {
        match what {
            "folder" => {
                guard(&self.unopened).remove(name);
            }
            "service" => {
                guard(&self.service_notes).remove(name);
            }
            _ => {}
        }
        self.changed.notify_one();
    }

    /// Recent activity lines of `name`, oldest first.
    pub fn activity(&self, name: &str) -> Vec<String> {
        guard(&self.activity)
            .get(name)
            .map(|lines| lines.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn note(&self, name: &str, line: impl Into<String>) {
        let mut all = guard(&self.activity);
        let lines = all.entry(name.to_string()).or_default();
        if lines.len() == ACTIVITY_LINES {
            lines.pop_front();
        }
        lines.push_back(line.into());
    }

    fn fail(&self, name: &str, error: ActionError) -> ActionError {
        let message = error.to_string();
        self.note(name, format!("error: {message}"));
        guard(&self.errors).insert(name.to_string(), message);
        self.changed.notify_one();
        error
    }

    fn succeed(&self, name: &str, line: String) {
        self.note(name, line);
        guard(&self.errors).remove(name);
        guard(&self.start_failures).remove(name);
        self.changed.notify_one();
    }

    /// Carries out `action` on gateway `name` as [`tray::route`] decides for
    /// its current state. Errors are also kept as the gateway's last error.
    /// A stop (or a service's removal, which stops it) asked by a person,
    /// `by` the tray or the dashboard, is recorded as on purpose in the
    /// gateway's state dir first, so a rescue's watch leaves it stopped; it
    /// is forgotten again when the action fails. `by` is `None` for a
    /// caller that records its own stop (`omniclaw gateway stop` over the
    /// control socket) or stops only to start again.
    pub async fn act(
        self: &Arc<Self>,
        name: &str,
        action: Action,
        by: Option<StopBy>,
    ) -> Result<(), ActionError> {
        let stops = matches!(action, Action::Stop | Action::UninstallService);
        let recorded = match by {
            Some(by) if stops => self.record_stop(name, by).map_err(|e| self.fail(name, e))?,
            _ => None,
        };
        let result = self.act_now(name, action).await;
        if let Some((state_dir, stop)) = recorded {
            match &result {
                Err(_) => {
                    let _ = intent::clear(&state_dir);
                }
                Ok(()) => keep_stop(&state_dir, &stop),
            }
        }
        result
    }

    /// Records in `name`'s state dir that `by` stops its gateway on
    /// purpose, naming the gateway that runs now; the state dir written and
    /// the record, or `None` for a profile that has none (nothing ran,
    /// nothing to stop).
    fn record_stop(
        &self,
        name: &str,
        by: StopBy,
    ) -> Result<Option<(PathBuf, StopIntent)>, ActionError> {
        let resolved = resolve(&self.env, Some(name))?;
        if !resolved.state_dir.is_dir() {
            return Ok(None);
        }
        let (owner, pid) = if guard(&self.embedded).contains_key(name) {
            (Some(Owner::Embedded), Some(std::process::id()))
        } else {
            match InstanceLock::probe(&resolved.lock_path()) {
                Ok(Some(holder)) => (holder.owner, Some(holder.pid)),
                _ => (None, None),
            }
        };
        let stop = StopIntent {
            by,
            owner: owner.map(|o| o.as_str().to_string()),
            pid,
            at_ms: intent::now_ms(),
        };
        intent::record(&resolved.state_dir, &stop).map_err(|e| {
            ActionError::failed(
                name,
                format!(
                    "cannot record the stop in {}: {e}; nothing was stopped",
                    resolved.state_dir.join(intent::FILE).display()
                ),
            )
        })?;
        Ok(Some((resolved.state_dir, stop)))
    }

    /// Whether `name`'s gateway runs outside this app right now (a
    /// service, a terminal): its instance lock is held by someone else.
    pub fn runs_elsewhere(&self, name: &str) -> bool {
        if guard(&self.embedded).contains_key(name) {
            return false;
        }
        resolve(&self.env, Some(name))
            .ok()
            .and_then(|r| InstanceLock::probe(&r.lock_path()).ok().flatten())
            .is_some()
    }

    async fn act_now(self: &Arc<Self>, name: &str, action: Action) -> Result<(), ActionError> {
        let me = Arc::clone(self);
        let view = tauri::async_runtime::spawn_blocking(move || crate::view::gather(&me, false))
            .await
            .map_err(|e| {
                ActionError::failed(name, format!("reading the gateways' state failed: {e}"))
            })?;
        let gateway = view
            .snapshot
            .gateways
            .iter()
            .find(|g| g.name == name)
            .ok_or_else(|| ActionError::UnknownProfile(name.to_string()))?;
        let via = tray::route(gateway, action).map_err(|e| self.fail(name, e.into()))?;
        let result = match (via, action) {
            (Via::Host, Action::Start) => self.start_embedded(name).inspect_err(|e| {
                if let ActionError::Failed { message, .. } = e {
                    guard(&self.start_failures).insert(name.to_string(), message.clone());
                }
            }),
            (Via::Host, Action::Stop) => self.stop_embedded(name).await,
            (Via::Host, Action::Restart) => {
                self.stop_embedded(name).await?;
                self.start_embedded(name)
            }
            // `route` sends service registration to the service manager only;
            // should that ever change, refuse instead of guessing.
            (Via::Host, Action::InstallService | Action::UninstallService) => Err(
                ActionError::failed(name, "services are managed by the service manager"),
            ),
            (Via::ServiceManager, action) => self.service(name, action).await,
        };
        result.map_err(|e| self.fail(name, e))
    }

    /// Starts `name` in this process: valid config, credentials, instance
    /// lock as `embedded`, every listener bound, or nothing at all. It then
    /// serves with hot reload (and its Telegram channel) and logs into its
    /// own profile's log files.
    fn start_embedded(self: &Arc<Self>, name: &str) -> Result<(), ActionError> {
        let resolved = resolve(&self.env, Some(name))?;
        let text = config_text(&resolved).map_err(|m| ActionError::failed(name, m))?;
        fsx::create_private_dir(&resolved.state_dir).map_err(|e| {
            ActionError::failed(
                name,
                format!(
                    "cannot create the state dir {}: {e}",
                    resolved.state_dir.display()
                ),
            )
        })?;
        // The credentials first: a keychain that refuses is told apart, so
        // the card can offer the private file instead of a command.
        if let Err(problem) = self.keychain_check(name, &resolved, &text) {
            return Err(ActionError::failed(name, problem));
        }
        let logger = logs::file_logger(&resolved.logs_dir(), "info")
            .map_err(|e| ActionError::failed(name, e))?;
        let dispatch = logger.dispatch.clone();
        let rebuild = ProfileRebuild::new(
            resolved.clone(),
            Overrides::default(),
            self.env.clone(),
            Arc::clone(&self.store),
            logger,
            Owner::Embedded,
        );
        let first = rebuild.build(&text).map_err(|m| {
            ActionError::failed(
                name,
                format!(
                    "the config {} is invalid:\n{m}",
                    resolved.config_path.display()
                ),
            )
        })?;
        rebuild.redact(&first);
        // Someone may have started it since the menu was drawn: the lock,
        // not the menu, guarantees it never runs twice.
        let lock = InstanceLock::acquire(&resolved.lock_path(), Owner::Embedded)
            .map_err(|e| ActionError::failed(name, e))?;
        let launch = Reloading {
            first,
            rebuild: Arc::new(rebuild),
            options: reload::Options::default(),
            dispatch: Some(dispatch),
        };
        let addrs = self
            .host
            .start_reloading(name, launch)
            .map_err(|e| ActionError::failed(name, e))?;
        // Recorded once the host says it runs: a watcher of the previous run
        // that looks now sees it running and leaves this lock alone.
        guard(&self.embedded).insert(
            name.to_string(),
            Embedded {
                _lock: lock,
                state_dir: resolved.state_dir.clone(),
            },
        );
        self.watch(name);
        self.succeed(name, format!("started in the app on {}", addrs.gateway));
        Ok(())
    }

    /// Follows the host's state of `name`: every change wakes the refresher,
    /// and a gateway that stopped or failed on its own gives its lock back.
    fn watch(self: &Arc<Self>, name: &str) {
        let mut states = self.host.subscribe(name);
        let me = Arc::clone(self);
        let name = name.to_string();
        tauri::async_runtime::spawn(async move {
            loop {
                // The current state first: the gateway may have ended before
                // this task subscribed.
                let state = states.borrow_and_update().clone();
                me.changed.notify_one();
                use GatewayState::*;
                match state {
                    Running | Starting => {}
                    Failed { reason } => {
                        me.note(&name, format!("failed: {reason}"));
                        me.release_if_down(&name, true);
                        break;
                    }
                    Stopped => {
                        me.release_if_down(&name, false);
                        break;
                    }
                }
                if states.changed().await.is_err() {
                    break;
                }
            }
        });
    }

    /// Drops the instance lock of `name`, if we hold it, and marks its
    /// runtime file stopped: the record keeps who ran it (`embedded`), so a
    /// rescue's watch still knows its owner.
    fn release(&self, name: &str) {
        if let Some(embedded) = guard(&self.embedded).remove(name) {
            mark_stopped(&embedded.state_dir);
        }
    }

    /// Like [`Desktop::release`], unless the gateway was started again
    /// meanwhile (the new run owns the lock now). A gateway that failed
    /// leaves its runtime file as it was, like `omniclaw gateway` does.
    fn release_if_down(&self, name: &str, failed: bool) {
        let mut embedded = guard(&self.embedded);
        let down = !matches!(
            self.host.state(name),
            GatewayState::Running | GatewayState::Starting
        );
        if down {
            if let Some(gone) = embedded.remove(name) {
                if !failed {
                    mark_stopped(&gone.state_dir);
                }
            }
        }
    }

    async fn stop_embedded(&self, name: &str) -> Result<(), ActionError> {
        self.host
            .stop(name)
            .await
            .map_err(|e| ActionError::failed(name, e))?;
        self.release(name);
        self.succeed(name, "stopped".to_string());
        Ok(())
    }

    /// Stops every embedded gateway gracefully (services keep running) and
    /// removes the control socket.
    pub async fn shutdown(&self) {
        if let Some(path) = guard(&self.control).take() {
            let _ = std::fs::remove_file(path);
        }
        let names: Vec<String> = guard(&self.embedded).keys().cloned().collect();
        let mut recorded = Vec::new();
        for name in &names {
            match self.record_stop(name, StopBy::AppQuit) {
                Ok(stop) => recorded.extend(stop),
                Err(e) => eprintln!("omniclaw-desktop: {e}; a rescue's watch may start it again"),
            }
        }
        self.host.shutdown_all().await;
        // No tunnel outlives the app.
        self.remotes.stop();
        for (state_dir, stop) in &recorded {
            keep_stop(state_dir, stop);
        }
        for name in names {
            self.release(&name);
        }
    }

    /// Listens on the control socket (`~/.omniclaw/desktop.sock`) for as
    /// long as the app runs; see [`omniclaw_os::desktopctl`]. A socket
    /// that cannot be bound is shown as a problem of the app; the tray
    /// works without it.
    #[cfg(unix)]
    pub fn serve_control(self: &Arc<Self>) {
        let path = desktopctl::socket_path(&self.home);
        let listener = desktopctl::listen(&path).and_then(|l| {
            l.set_nonblocking(true)
                .map(|()| l)
                .map_err(|source| desktopctl::CtlError::Io {
                    path: path.clone(),
                    source,
                })
        });
        let listener = match listener {
            Ok(l) => l,
            Err(e) => {
                self.control_problem(format!(
                    "`omniclaw gateway start|stop|restart` cannot reach this app: {e}"
                ));
                return;
            }
        };
        *guard(&self.control) = Some(path.clone());
        let me = Arc::clone(self);
        tauri::async_runtime::spawn(async move {
            let listener = match tokio::net::UnixListener::from_std(listener) {
                Ok(l) => l,
                Err(e) => {
                    me.control_problem(format!(
                        "cannot listen on {}: {e}; quit the app and start it again",
                        path.display()
                    ));
                    return;
                }
            };
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        let me = Arc::clone(&me);
                        tauri::async_runtime::spawn(async move { me.control_client(stream).await });
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: try again soon.
                        eprintln!("omniclaw-desktop: control socket {}: {e}", path.display());
                        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    }
                }
            }
        });
    }

    /// Non-Unix platforms have no control socket: the CLI says to use the tray.
    #[cfg(not(unix))]
    pub fn serve_control(self: &Arc<Self>) {}

    #[cfg(unix)]
    fn control_problem(&self, problem: String) {
        eprintln!("omniclaw-desktop: {problem}");
        guard(&self.app_problems).push(problem);
        self.changed.notify_one();
    }

    /// One request line in, one reply line out.
    #[cfg(unix)]
    async fn control_client(self: Arc<Self>, stream: tokio::net::UnixStream) {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
        let (read, mut write) = stream.into_split();
        let mut line = String::new();
        let mut reader = BufReader::new(read).take(CONTROL_LINE_MAX);
        let read = tokio::time::timeout(CONTROL_READ_WAIT, reader.read_line(&mut line)).await;
        if !matches!(read, Ok(Ok(n)) if n > 0) {
            // A probe (is an app running?) or a silent client.
            return;
        }
        let reply = match Request::parse(&line) {
            Ok(request) => self.control(&request).await,
            Err(e) => Reply::refused(e, None),
        };
        let _ = write.write_all(reply.to_line().as_bytes()).await;
        let _ = write.shutdown().await;
    }

    /// Carries out a control request like the tray's item of the same name.
    #[cfg(unix)]
    pub async fn control(self: &Arc<Self>, request: &Request) -> Reply {
        let name = request.profile.as_str();
        let action = match request.op {
            Op::Start => Action::Start,
            Op::Stop => Action::Stop,
            // A rescue's watch asks to restart a gateway that failed.
            Op::Restart => self
                .gateway_of(name)
                .await
                .map_or(Action::Restart, |g| tray::restart_request(&g)),
            Op::Status => {
                return match self.status_of(name).await {
                    Some(status) => Reply::ok(
                        format!(
                            "profile {name} is {status} (desktop app pid {})",
                            std::process::id()
                        ),
                        Some(status),
                    ),
                    None => Reply::refused(
                        ActionError::UnknownProfile(name.to_string()).to_string(),
                        None,
                    ),
                }
            }
        };
        // `omniclaw gateway stop` recorded its own stop before it asked.
        let result = self.act(name, action, None).await;
        let status = self.status_of(name).await;
        match result {
            Ok(()) => {
                let verb = match action {
                    Action::Start => "started",
                    Action::Stop => "stopped",
                    _ => "restarted",
                };
                let place = match self.host.addrs(name) {
                    Some(addrs) if request.op != Op::Stop => format!(" on {}", addrs.gateway),
                    _ => String::new(),
                };
                Reply::ok(
                    format!(
                        "{verb} profile {name} in the desktop app{place} (pid {})",
                        std::process::id()
                    ),
                    status,
                )
            }
            Err(e) => Reply::refused(e.to_string(), status),
        }
    }

    /// `name`'s state as the tray shows it, `None` for an unknown profile.
    #[cfg(unix)]
    async fn status_of(self: &Arc<Self>, name: &str) -> Option<String> {
        self.gateway_of(name).await.map(|g| g.status.label())
    }

    /// `name`'s gateway as the tray shows it, `None` for an unknown profile.
    #[cfg(unix)]
    async fn gateway_of(self: &Arc<Self>, name: &str) -> Option<tray::Gateway> {
        let me = Arc::clone(self);
        let view = tauri::async_runtime::spawn_blocking(move || crate::view::gather(&me, false))
            .await
            .ok()?;
        view.snapshot.gateways.into_iter().find(|g| g.name == name)
    }

    /// The app's version and the CLI's it runs services with. The CLI's
    /// `--version` (which also asks the running gateways) is read on its
    /// own thread, once per change of its file: a gathering never waits on
    /// it, and the next one shows it.
    pub fn versions(&self) -> tray::Versions {
        let app = env!("CARGO_PKG_VERSION").to_string();
        if !self.cli.is_file() {
            return tray::Versions { app, cli: None };
        }
        let modified = std::fs::metadata(&self.cli).and_then(|m| m.modified()).ok();
        let mut cached = guard(&self.cli_version);
        let version = match cached.as_ref() {
            Some(read) if read.modified == modified => read.version.clone(),
            _ => {
                let reading = Err("its version is being read".to_string());
                *cached = Some(CliVersion {
                    modified,
                    version: reading.clone(),
                });
                let slot = Arc::clone(&self.cli_version);
                let cli = self.cli.clone();
                std::thread::spawn(move || {
                    let version = omniclaw_os::version::of_program(&cli, "omniclaw");
                    // Kept only if the file did not change meanwhile.
                    if let Some(read) = guard(&slot).as_mut().filter(|r| r.modified == modified) {
                        read.version = version;
                    }
                });
                reading
            }
        };
        tray::Versions {
            app,
            cli: Some(tray::Cli {
                // Shown as the dashboard shows every path: `~` for the home.
                path: paths::tilde(&self.cli, &self.home),
                version,
            }),
        }
    }

    /// Why `name`'s installed service differs from what `gateway install`
    /// run by this app would write now (the CLI it runs is the binary the
    /// unit would name), as `gateway status --deep` says it; empty when it
    /// fits, when there is none, or when no service manager is native here.
    pub fn service_drift(&self, name: &str) -> Vec<String> {
        let (Some(platform), Ok(resolved)) = (
            omniclaw_core::service::Platform::native(),
            resolve(&self.env, Some(name)),
        ) else {
            return Vec::new();
        };
        let file = platform.command_path(&resolved.home, &resolved.service_names());
        if !file.is_file() {
            return Vec::new();
        }
        let binary = self.cli.is_absolute().then(|| paths::normalize(&self.cli));
        let now = omniclaw_os::service::Now {
            binary: binary.as_deref(),
            resolved: Some(&resolved),
        };
        let (_, stale) =
            omniclaw_os::service::inspect(platform, &resolved.home, &resolved.profile, &file, now);
        stale
            .iter()
            // A removed profile's service is uninstalled, not updated; it
            // has no entry in the tray anyway.
            .filter(|s| !matches!(s, omniclaw_core::service::Stale::ProfileGone { .. }))
            .map(ToString::to_string)
            .collect()
    }

    /// "Update service": runs the CLI's fix for `name`'s service as the
    /// current view decides it (`gateway install --force`, which restarts
    /// it, for a unit that drifted; `gateway restart` for a service that
    /// runs another version). `Ok` with what the CLI said, `Err` with the
    /// CLI's own error text.
    pub async fn update_service(self: &Arc<Self>, name: &str) -> Result<String, String> {
        let me = Arc::clone(self);
        let view = tauri::async_runtime::spawn_blocking(move || crate::view::gather(&me, false))
            .await
            .map_err(|e| format!("could not read the state of {name}: {e}"))?;
        let gateway = view
            .snapshot
            .gateways
            .iter()
            .find(|g| g.name == name)
            .ok_or_else(|| ActionError::UnknownProfile(name.to_string()).to_string())?;
        let update = tray::service_update(gateway, view.snapshot.versions.cli_version())
            .ok_or_else(|| {
                format!("the service of {name} is in step with omniclaw: nothing to update")
            })?;
        let result = self.run_cli(update.args(name)).await;
        match &result {
            Ok(said) => self.succeed(name, format!("service updated: {said}")),
            Err(e) => {
                self.fail(name, ActionError::failed(name, e));
            }
        }
        result
    }

    /// Runs `omniclaw --profile NAME gateway <verb>` for the service manager.
    async fn service(&self, name: &str, action: Action) -> Result<(), ActionError> {
        let verb = match action {
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Restart => "restart",
            Action::InstallService => "install",
            Action::UninstallService => "uninstall",
        };
        let args = vec![
            "--profile".to_string(),
            name.to_string(),
            "gateway".to_string(),
            verb.to_string(),
        ];
        let run = self
            .run_cli_output(args)
            .await
            .map_err(|m| ActionError::failed(name, m))?;
        let lines = run.lines();
        if !run.success {
            // Every line the CLI said: its advice (lingering, the user
            // session, the command to run) is the point, not the exit code.
            return Err(ActionError::failed(name, lines.join("\n")));
        }
        let installs = matches!(action, Action::InstallService | Action::UninstallService);
        if installs {
            guard(&self.service_notes).insert(name.to_string(), lines.clone());
        }
        self.succeed(name, format!("service {verb}: {}", lines.join(" ")));
        Ok(())
    }

    /// Runs the `omniclaw` CLI like [`Desktop::run_cli_output`]: its output
    /// when it succeeds, else what it said as the error.
    pub async fn run_cli(&self, args: Vec<String>) -> Result<String, String> {
        let shown = format!("omniclaw {}", args.join(" "));
        let run = self.run_cli_output(args).await?;
        if run.success {
            Ok(run.lines().join("\n"))
        } else {
            Err(format!("`{shown}` failed:\n{}", run.lines().join("\n")))
        }
    }

    /// Runs the `omniclaw` CLI with the app's gateway environment (plus
    /// `PATH` so it can reach the service manager), off the async threads.
    /// `Err` only when it could not run at all.
    pub async fn run_cli_output(&self, args: Vec<String>) -> Result<CliRun, String> {
        let cli = self.cli.clone();
        let env = self.env.clone();
        let shown = format!("omniclaw {}", args.join(" "));
        let run = move || {
            let mut command = Command::new(&cli);
            command.args(&args).env_clear();
            for key in ["HOME", env::HOME, "USERPROFILE"] {
                if let Some(value) = env.get(key) {
                    command.env(key, value);
                }
            }
            for key in [
                "PATH",
                "XDG_RUNTIME_DIR",
                "DBUS_SESSION_BUS_ADDRESS",
                "SYSTEMROOT",
            ] {
                if let Some(value) = std::env::var_os(key) {
                    command.env(key, value);
                }
            }
            command.output()
        };
        let output = tauri::async_runtime::spawn_blocking(run)
            .await
            .map_err(|e| format!("`{shown}` did not finish: {e}"))?
            .map_err(|e| {
                format!(
                    "cannot run `{shown}` ({}): {e}; install the omniclaw CLI next to the app or on PATH",
                    self.cli.display()
                )
            })?;
        Ok(CliRun {
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }

    /// Starts every gateway the settings mark "start with the app" that is
    /// not running anywhere yet; failures show on their cards.
    pub async fn start_marked(self: &Arc<Self>) {
        let marked = self.settings().start_with_app;
        let view = crate::view::gather(self, false);
        for gateway in view.snapshot.gateways {
            if marked.contains(&gateway.name)
                && tray::route(&gateway, Action::Start) == Ok(Via::Host)
            {
                let _ = self.act(&gateway.name, Action::Start, None).await;
            }
        }
    }

    /// Marks or unmarks `name` to start with the app, and saves.
    pub fn set_start_with_app(&self, name: &str, on: bool) -> Result<(), ActionError> {
        let next = settings::update(&self.settings_path, |s| {
            if on {
                s.start_with_app.insert(name.to_string());
            } else {
                s.start_with_app.remove(name);
            }
        })?;
        *guard(&self.settings) = next;
        guard(&self.app_problems).clear();
        self.changed.notify_one();
        Ok(())
    }

    /// Applies the suggested fix of a port conflict: sets the key that moves
    /// the conflicting surface in that profile's config (validated, atomic,
    /// previous version kept as `.bak`).
    pub fn apply_fix(&self, profile_name: &str, key: &str, port: u16) -> Result<(), ActionError> {
        let resolved = resolve(&self.env, Some(profile_name))?;
        let path = resolved.config_path.clone();
        let target = omniclaw_os::edit::Target {
            resolved,
            env: self.env.clone(),
        };
        // The one edit path of every writer: under the file's lock, validated,
        // refused when it would bring another conflict.
        omniclaw_os::edit::edit_config(&target, &omniclaw_os::edit::Options::default(), |text| {
            omniclaw_core::config::set(text, key, &port.to_string())
        })
        .map_err(|e| ActionError::failed(profile_name, e.to_string()))?;
        self.succeed(
            profile_name,
            format!("set {key} to {port} in {}", path.display()),
        );
        Ok(())
    }
}

impl Desktop {
    /// Sets `budget.dailyUsd` of `name` to `usd` through the one config
    /// edit path (validated whole, atomic, `.bak` kept); a running gateway
    /// applies it by hot reload, without a restart.
    pub fn set_daily_cap(&self, name: &str, usd: f64) -> Result<String, ActionError> {
        if !(usd.is_finite() && usd > 0.0 && usd <= MAX_DAILY_CAP) {
            return Err(self.fail(
                name,
                ActionError::failed(
                    name,
                    format!("a daily cap is an amount of US dollars above 0 and at most {MAX_DAILY_CAP}: {usd} is not"),
                ),
            ));
        }
        // As a person writes it: `1`, `2.5` (a finite f64 displays without
        // exponent or trailing `.0`).
        let value = usd.to_string();
        let resolved = resolve(&self.env, Some(name))?;
        let path = resolved.config_path.clone();
        let target = omniclaw_os::edit::Target {
            resolved,
            env: self.env.clone(),
        };
        omniclaw_os::edit::edit_config(&target, &omniclaw_os::edit::Options::default(), |text| {
            omniclaw_core::config::set(text, "budget.dailyUsd", &value)
        })
        .map_err(|e| self.fail(name, ActionError::failed(name, e.to_string())))?;
        let line = format!("set budget.dailyUsd to ${usd:.2} in {}", path.display());
        self.succeed(name, line.clone());
        Ok(line)
    }
}

/// Why "Copy token" copied nothing; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("profile {0} has no gateway token: its gateway.auth.mode is not token")]
    NotToken(String),
    #[error(transparent)]
    Action(#[from] ActionError),
    #[error("cannot put the token on the clipboard: {0}")]
    Clipboard(String),
}

impl Desktop {
    /// The gateway credentials of `name` from its config: the file, or the
    /// last good config when the file does not validate (a running gateway
    /// that refused an edit still serves those). A keychain that refuses
    /// or cannot be reached is recorded for the card.
    pub fn credentials(&self, name: &str) -> Result<(Resolved, Auth), ActionError> {
        let resolved = resolve(&self.env, Some(name))?;
        let text = match config_text(&resolved) {
            Ok(text) => text,
            Err(invalid) => {
                let good = omniclaw_os::edit::last_good_path(&resolved.config_path);
                profiles::read_text(&good)
                    .ok()
                    .flatten()
                    .ok_or_else(|| ActionError::failed(name, invalid))?
            }
        };
        let loaded = omniclaw_core::config::load(&text).map_err(|e| {
            ActionError::failed(
                name,
                format!(
                    "the config {} is invalid:\n{e}",
                    resolved.display(&resolved.config_path)
                ),
            )
        })?;
        let auth = self.read_credentials(name, &resolved, &loaded.config)?;
        Ok((resolved, auth))
    }

    fn read_credentials(
        &self,
        name: &str,
        resolved: &Resolved,
        config: &omniclaw_core::config::Config,
    ) -> Result<Auth, ActionError> {
        let found = omniclaw_gateway::profile::credentials(
            resolved,
            config,
            &Overrides::default(),
            &self.env,
            self.store.as_ref(),
        );
        match found {
            Err(e @ SpecError::Store { .. })
                if !omniclaw_os::secrets::uses_file(&resolved.state_dir) =>
            {
                let message = e.to_string();
                self.set_keychain_problem(name, Some(message.clone()));
                Err(ActionError::failed(name, message))
            }
            Err(e) => Err(ActionError::failed(name, e)),
            Ok(auth) => {
                if self.keychain_problem(name).is_some() {
                    self.set_keychain_problem(name, None);
                }
                Ok(auth)
            }
        }
    }

    /// Whether the secret store serves `name`'s credentials for `text`.
    fn keychain_check(&self, name: &str, resolved: &Resolved, text: &str) -> Result<(), String> {
        let Ok(loaded) = omniclaw_core::config::load(text) else {
            // The build that follows names every problem of the config.
            return Ok(());
        };
        match self.read_credentials(name, resolved, &loaded.config) {
            Err(e) if self.keychain_problem(name).is_some() => Err(match e {
                ActionError::Failed { message, .. } => message,
                other => other.to_string(),
            }),
            _ => Ok(()),
        }
    }

    /// Puts `name`'s gateway token on the clipboard, straight from the
    /// secret store: it never reaches the page, a log or the activity.
    pub fn copy_token(&self, name: &str) -> Result<(), TokenError> {
        let (_, auth) = self.credentials(name)?;
        let Auth::Token(token) = auth else {
            return Err(TokenError::NotToken(name.to_string()));
        };
        let mut held = guard(&self.clipboard);
        if held.is_none() {
            *held =
                Some(arboard::Clipboard::new().map_err(|e| TokenError::Clipboard(e.to_string()))?);
        }
        let clipboard = held
            .as_mut()
            .ok_or_else(|| TokenError::Clipboard("no clipboard".into()))?;
        set_secret_text(clipboard, token).map_err(|e| TokenError::Clipboard(e.to_string()))?;
        self.note(name, "gateway token copied to the clipboard");
        self.changed.notify_one();
        Ok(())
    }

    /// Puts a folder's path (or any plain text) on the clipboard.
    pub fn copy_text(&self, text: String) -> Result<(), String> {
        let mut held = guard(&self.clipboard);
        if held.is_none() {
            *held = Some(arboard::Clipboard::new().map_err(|e| e.to_string())?);
        }
        let clipboard = held.as_mut().ok_or("no clipboard")?;
        clipboard.set_text(text).map_err(|e| e.to_string())
    }

    /// "Roll back": restores `name`'s last good config with the same
    /// logic as `config rollback`; a running gateway hot-reloads it.
    pub fn roll_back(&self, name: &str) -> Result<String, ActionError> {
        let resolved = resolve(&self.env, Some(name))?;
        let done = omniclaw_os::edit::rollback(&resolved)
            .map_err(|e| self.fail(name, ActionError::failed(name, e)))?;
        let file = resolved.display(&resolved.config_path);
        let line = match &done.rejected {
            Some(kept) => format!(
                "{file}: restored the last known good config; the rejected one is kept as {}",
                resolved.display(kept)
            ),
            None if done.changed => format!("{file}: restored the last known good config"),
            None => format!("{file} already is the last known good config"),
        };
        self.succeed(name, line.clone());
        Ok(line)
    }

    /// "Keep this profile's secrets in a private file": `omniclaw
    /// --profile NAME --secrets-file setup`, which moves a set-up
    /// profile's secrets out of the keychain into its 0600 file
    /// (`Routed::move_to`, token unchanged) — or, when no keychain can be
    /// read at all, gives it a new token there.
    pub async fn use_secrets_file(&self, name: &str) -> Result<String, ActionError> {
        let args = vec![
            "--profile".to_string(),
            name.to_string(),
            "--secrets-file".to_string(),
            "setup".to_string(),
        ];
        let run = self
            .run_cli_output(args)
            .await
            .map_err(|m| self.fail(name, ActionError::failed(name, m)))?;
        let lines = run.lines();
        if !run.success {
            return Err(self.fail(name, ActionError::failed(name, lines.join("\n"))));
        }
        self.set_keychain_problem(name, None);
        guard(&self.start_failures).remove(name);
        self.succeed(
            name,
            format!("secrets now in a private file: {}", lines.join(" ")),
        );
        Ok(lines.join("\n"))
    }
}

/// Sets `text` as the clipboard's content, marked as a secret for
/// clipboard managers where the platform has such a mark.
fn set_secret_text(clipboard: &mut arboard::Clipboard, text: String) -> Result<(), arboard::Error> {
    #[cfg(all(unix, not(target_os = "macos")))]
    {
        use arboard::SetExtLinux;
        clipboard.set().exclude_from_history().text(text)
    }
    #[cfg(not(all(unix, not(target_os = "macos"))))]
    {
        clipboard.set_text(text)
    }
}

impl Desktop {
    /// Approves or denies the pending pairing request `code` of gateway
    /// `name`'s Telegram bot and tells the user through the bot, as
    /// `omniclaw --profile NAME pairing approve|deny CODE` does. The decision
    /// lands in the gateway's activity; a refusal is its last error.
    pub async fn decide_pairing(
        &self,
        name: &str,
        code: &str,
        approve: bool,
    ) -> Result<omniclaw_channels::telegram::PairingDecision, ActionError> {
        let code = omniclaw_core::rescue::PairingCode::parse(code)
            .map_err(|e| self.fail(name, ActionError::failed(name, e)))?;
        let resolved = resolve(&self.env, Some(name))?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let decision = omniclaw_channels::telegram::decide_pairing(
            &resolved,
            self.store.as_ref(),
            &code,
            approve,
            now,
        )
        .await
        .map_err(|e| self.fail(name, ActionError::failed(name, e)))?;
        let request = &decision.request;
        let verb = if approve { "approved" } else { "denied" };
        let line = format!(
            "pairing: {verb} {} (user id {}, code {code})",
            request.who, request.user_id
        );
        // Only noted: a pairing decision says nothing about the gateway's
        // own state, so an earlier failure stays shown.
        match &decision.told {
            Ok(()) => self.note(name, format!("{line}; told them through the bot")),
            Err(why) => self.note(name, format!("{line}; they were not told: {why}")),
        }
        self.changed.notify_one();
        Ok(decision)
    }
}

/// What a run of the `omniclaw` CLI said.
#[derive(Debug, Clone)]
pub struct CliRun {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl CliRun {
    /// Its non-empty lines, standard output first: a command's result and
    /// its notes and advice (which go to stderr) together.
    pub fn lines(&self) -> Vec<String> {
        self.stdout
            .lines()
            .chain(self.stderr.lines())
            .map(str::trim_end)
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// Resolves `profile` (or the default profile) from the gateway environment,
/// honouring the state dir's ownership marker like the CLI does.
/// Writes `stop` again once the gateway stopped, unless a record is there:
/// a gateway stopped the moment it started may clear the first record as
/// it serves its first config.
fn keep_stop(state_dir: &Path, stop: &StopIntent) {
    if intent::read(state_dir).is_none() {
        if let Err(e) = intent::record(state_dir, stop) {
            eprintln!(
                "omniclaw-desktop: cannot record the stop in {}: {e}; a rescue's watch may start it again",
                state_dir.join(intent::FILE).display()
            );
        }
    }
}

/// Marks the runtime file of the app's own gateway in `state_dir` stopped.
fn mark_stopped(state_dir: &Path) {
    if let Err(e) = runtime::mark_stopped(state_dir, std::process::id(), intent::now_ms()) {
        eprintln!(
            "omniclaw-desktop: cannot mark {} stopped: {e}",
            state_dir.join(runtime::FILE).display()
        );
    }
}

pub fn resolve(env: &EnvSnapshot, profile: Option<&str>) -> Result<Resolved, ActionError> {
    let resolved = paths::resolve(paths::Inputs {
        profile_flag: profile,
        env,
        cwd: None,
    })
    .map_err(|_| ActionError::BadProfile(profile.unwrap_or("default").to_string()))?;
    Ok(match discovery::read_marker(&resolved.state_dir) {
        Some(m) => resolved.with_marker(&m.profile, &m.config_path),
        None => resolved,
    })
}

/// Where `name`'s running gateway listens (its runtime file) and the
/// credentials to connect with: `(ws://HOST:PORT, auth)`. A remote
/// gateway is dialled at its URL (an SSH tunnel's local end) with the
/// credentials `omniclaw remote add` stored.
pub fn endpoint(desktop: &Desktop, name: &str) -> Result<(String, Auth), ActionError> {
    if let Some(entry) = desktop.remotes.get(name) {
        // A profile in remote mode presents its `gateway.remote.token`.
        let auth = if entry.configured {
            desktop.credentials(name)?.1
        } else {
            omniclaw_gateway::profile::remote_auth(&*desktop.store, &desktop.home, name)
                .map_err(|why| ActionError::failed(name, why))?
        };
        return Ok((entry.remote.dial_url(), auth));
    }
    let (resolved, auth) = desktop.credentials(name)?;
    let live = runtime::read_live(&resolved.state_dir)
        .ok_or_else(|| ActionError::failed(name, "it is not running"))?;
    let host = match live.bind.parse::<std::net::IpAddr>() {
        Ok(ip) if ip.is_unspecified() => "127.0.0.1".to_string(),
        Ok(std::net::IpAddr::V6(ip)) => format!("[{ip}]"),
        Ok(ip) => ip.to_string(),
        Err(_) => "127.0.0.1".to_string(),
    };
    Ok((format!("ws://{host}:{}", live.port), auth))
}

/// The config text a profile's gateway starts from: the file, or the
/// defaults when there is none; an invalid or unreadable file refuses.
fn config_text(resolved: &Resolved) -> Result<String, String> {
    match profiles::read_config(&resolved.config_path) {
        ConfigState::Valid { text, .. } => Ok(text),
        ConfigState::Missing => Ok(rebuild::EMPTY_CONFIG.to_string()),
        ConfigState::Invalid { errors, .. } => Err(format!(
            "the config {} is invalid:\n{errors}",
            resolved.config_path.display()
        )),
        ConfigState::Unreadable(message) => Err(message),
    }
}

/// The `omniclaw` CLI installed with this app (the package's, else the
/// one beside the path the app was started by, else beside its resolved
/// executable: see [`omniclaw_os::executable::beside`]), else whatever
/// `PATH` finds.
fn cli_path() -> PathBuf {
    let path_var = std::env::var_os("PATH");
    let cwd = std::env::current_dir().ok();
    omniclaw_os::executable::beside("omniclaw", path_var.as_deref(), cwd.as_deref())
        .map(|p| paths::normalize(&p))
        .unwrap_or_else(|| PathBuf::from(format!("omniclaw{}", std::env::consts::EXE_SUFFIX)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(process: &[(&str, &str)], expected: &[(&str, Option<&str>)]) {
        let env = gateway_env(process.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        for (key, value) in expected {
            assert_eq!(env.get(key), *value, "{key}");
        }
    }

    #[test]
    fn gateways_see_the_home_and_what_children_inherit() {
        check(
            &[
                ("HOME", "/home/u"),
                ("OMNICLAW_HOME", "/srv/oc"),
                ("OMNICLAW_PROFILE", "rescue"),
                ("OMNICLAW_STATE_DIR", "/srv/elsewhere"),
                ("OMNICLAW_GATEWAY_TOKEN", "secret"),
                ("OMNICLAW_GATEWAY_PORT", "1"),
                ("PATH", "/usr/bin"),
                ("AWS_SECRET_ACCESS_KEY", "k"),
            ],
            &[
                ("HOME", Some("/home/u")),
                ("OMNICLAW_HOME", Some("/srv/oc")),
                ("OMNICLAW_PROFILE", None),
                ("OMNICLAW_STATE_DIR", None),
                ("OMNICLAW_GATEWAY_TOKEN", None),
                ("OMNICLAW_GATEWAY_PORT", None),
                ("PATH", Some("/usr/bin")),
                ("AWS_SECRET_ACCESS_KEY", None),
            ],
        );
    }

    #[test]
    fn profiles_resolve_under_the_snapshot_home() {
        let env = EnvSnapshot::default().with("HOME", "/home/u");
        let resolved = resolve(&env, Some("rescue")).expect("resolves");
        assert_eq!(
            resolved.state_dir,
            PathBuf::from("/home/u/.omniclaw-rescue")
        );
        assert_eq!(
            resolve(&env, Some("Bad Name")).map(|_| ()).map_err(|e| e.to_string()),
            Err("\"Bad Name\" is not a profile: profile names are lowercase letters, digits, '-' and '_'".to_string())
        );
    }
}
