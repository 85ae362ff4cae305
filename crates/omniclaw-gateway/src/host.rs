//! The host ("supervisor"): any number of gateways in one process, each
//! with its own lifecycle.
//!
//! [`Host::start`] serves a fixed spec in a task of the caller's runtime.
//! [`Host::start_reloading`] runs a gateway the way `omniclaw gateway` does
//! (hot reload of its config, the Telegram channel, see
//! [`crate::reload::serve_reloading`]) on a thread of its own with its own
//! current-thread Tokio runtime. A panic marks only that gateway `Failed`
//! and the others keep serving. State changes go through the pure
//! [`transition`] function and are published on a watch channel per
//! gateway, so the tray can render them without polling.
//!
//! # Whose log file an event lands in
//!
//! Several gateways of different profiles share this process, and each must
//! log into its own profile's `<state dir>/logs/` with its own redactor and
//! level, so one global tracing dispatcher cannot serve them. A reloading
//! gateway is handed its logger's dispatch and runs everything on threads
//! that carry it as their default: the gateway's thread holds
//! `tracing::dispatcher::set_default` for its whole life, and its runtime's
//! blocking threads (config checks, secret lookups, rescue commands) take it
//! when they start and drop it when they stop. Every task of that gateway
//! is spawned on its own runtime, so every event it emits reaches its own
//! files and no other gateway's, whatever span (or none) it is in; nothing
//! depends on code remembering to enter a span. The cost is one thread (plus
//! idle blocking threads) per embedded gateway, which a tray with a handful
//! of profiles can afford.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::error::StartError;
use crate::reload::{self, Candidate, Rebuild};
use crate::server::{Addrs, Bound, Gateway};
use crate::spec::GatewaySpec;

/// Where a gateway is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayState {
    Stopped,
    Starting,
    Running,
    Failed { reason: String },
}

/// What happened to a gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    StartRequested,
    /// Every listener is bound and serving began.
    Bound,
    BindFailed(String),
    StopRequested,
    /// The serve task ended on its own without error.
    Exited,
    /// The serve task panicked or returned an error.
    Crashed(String),
}

/// A transition the lifecycle does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("gateway cannot go from {from:?} on {event:?}")]
pub struct InvalidTransition {
    pub from: GatewayState,
    pub event: Event,
}

/// The lifecycle as a pure function.
pub fn transition(from: &GatewayState, event: &Event) -> Result<GatewayState, InvalidTransition> {
    use GatewayState::*;
    let next = match (from, event) {
        (Stopped | Failed { .. }, Event::StartRequested) => Starting,
        (Starting, Event::Bound) => Running,
        (Starting, Event::BindFailed(r)) => Failed { reason: r.clone() },
        (_, Event::StopRequested) => Stopped,
        (Running, Event::Exited) => Stopped,
        (Running | Starting, Event::Crashed(r)) => Failed { reason: r.clone() },
        // A task ending after its gateway was stopped changes nothing.
        (Stopped, Event::Exited | Event::Crashed(_)) => Stopped,
        _ => {
            return Err(InvalidTransition {
                from: from.clone(),
                event: event.clone(),
            })
        }
    };
    Ok(next)
}

/// Why a host operation failed.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("gateway {id:?} is already {state}: stop it first or use restart")]
    AlreadyRunning { id: String, state: &'static str },
    #[error("no gateway {0:?} was ever started in this host: start it with its spec first")]
    Unknown(String),
    #[error("gateway {id:?} failed to start: {source}")]
    Start {
        id: String,
        #[source]
        source: StartError,
    },
    #[error("cannot start a thread for gateway {id:?}: {reason}; the system is out of threads or memory, stop something and start it again")]
    Thread { id: String, reason: String },
}

type Fault = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What [`Host::start_reloading`] runs: the first config, the caller's
/// half of reloading, and where the gateway's events go.
#[derive(Clone)]
pub struct Reloading {
    pub first: Candidate,
    pub rebuild: Arc<dyn Rebuild>,
    pub options: reload::Options,
    /// The gateway's own logger (see the module docs); `None` leaves its
    /// events to whatever dispatcher is the process's global default.
    pub dispatch: Option<tracing::Dispatch>,
}

/// How a gateway was started, to start it again the same way. One per
/// gateway, kept while the host lives: its size does not matter.
#[derive(Clone)]
#[allow(clippy::large_enum_variant)]
enum Launch {
    Plain(GatewaySpec),
    Reloading(Reloading),
}

/// What runs a gateway, and how to end it when asking nicely fails.
enum Runner {
    /// A serve task on the caller's runtime, followed by a monitor task.
    Task(JoinHandle<()>),
    /// A thread with its own runtime; `done` fires when it has ended and its
    /// state was published, `kill` drops the gateway without waiting.
    Thread {
        done: oneshot::Receiver<()>,
        kill: oneshot::Sender<()>,
    },
}

impl Runner {
    /// Waits `within` for the gateway to end, then ends it by force.
    async fn finish(self, within: Duration) {
        match self {
            Runner::Task(mut monitor) => {
                if tokio::time::timeout(within, &mut monitor).await.is_err() {
                    monitor.abort();
                }
            }
            Runner::Thread { mut done, kill } => {
                if tokio::time::timeout(within, &mut done).await.is_err() {
                    let _ = kill.send(());
                    let _ = tokio::time::timeout(STOP_SLACK, done).await;
                }
            }
        }
    }

    fn abort(self) {
        match self {
            Runner::Task(monitor) => monitor.abort(),
            Runner::Thread { kill, .. } => {
                let _ = kill.send(());
            }
        }
    }
}

struct Task {
    stop: oneshot::Sender<()>,
    runner: Runner,
    /// Where the gateway listens now (a reload may move it).
    addrs: Arc<Mutex<Addrs>>,
    /// How long a graceful stop may take.
    grace: Duration,
}

struct Entry {
    launch: Option<Launch>,
    /// The newest config a reloading gateway applied: a restart runs it.
    latest: Arc<Mutex<Option<Candidate>>>,
    state: Arc<watch::Sender<GatewayState>>,
    task: Option<Task>,
}

impl Entry {
    fn new() -> Entry {
        Entry {
            launch: None,
            latest: Arc::new(Mutex::new(None)),
            state: Arc::new(watch::channel(GatewayState::Stopped).0),
            task: None,
        }
    }

    /// Refuses a start while this gateway runs.
    fn check_idle(&self, id: &str) -> Result<(), HostError> {
        let current = self.state.borrow().clone();
        if self.task.is_some() || matches!(current, GatewayState::Running | GatewayState::Starting)
        {
            let state = match current {
                GatewayState::Starting => "starting",
                _ => "running",
            };
            return Err(HostError::AlreadyRunning {
                id: id.to_string(),
                state,
            });
        }
        Ok(())
    }
}

fn lock_of<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain data behind every one of these locks: a panic cannot tear it.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The caller's [`Rebuild`], also recording what each applied config runs
/// on, so [`Host::addrs`] follows a gateway a reload moved and a restart
/// runs the newest good config.
struct Tracked {
    inner: Arc<dyn Rebuild>,
    addrs: Arc<Mutex<Addrs>>,
    latest: Arc<Mutex<Option<Candidate>>>,
}

impl Rebuild for Tracked {
    fn build(&self, text: &str) -> Result<Candidate, String> {
        self.inner.build(text)
    }

    fn edit_target(&self) -> Option<omniclaw_os::edit::Target> {
        self.inner.edit_target()
    }

    fn admit(&self, old: &str, new: &str) -> Result<(), String> {
        self.inner.admit(old, new)
    }

    fn secrets(&self) -> Option<Arc<dyn crate::assistant::SecretResolver>> {
        self.inner.secrets()
    }

    fn known_secrets(&self) -> Arc<dyn omniclaw_channels::telegram::SecretSource> {
        self.inner.known_secrets()
    }

    fn applied(&self, candidate: &Candidate, addrs: &Addrs) {
        *lock_of(&self.addrs) = *addrs;
        *lock_of(&self.latest) = Some(candidate.clone());
        self.inner.applied(candidate, addrs);
    }

    fn telegram(
        &self,
        candidate: &Candidate,
    ) -> Result<Option<omniclaw_channels::telegram::Settings>, String> {
        self.inner.telegram(candidate)
    }
}

thread_local! {
    /// The gateway logger a blocking thread of an embedded gateway's runtime
    /// carries (set on thread start, dropped on thread stop).
    static THREAD_LOG: RefCell<Option<tracing::dispatcher::DefaultGuard>> = const { RefCell::new(None) };
}

/// A current-thread runtime whose blocking threads log to `dispatch`.
fn gateway_runtime(
    dispatch: Option<tracing::Dispatch>,
) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_current_thread();
    builder.enable_all();
    if let Some(dispatch) = dispatch {
        builder
            .on_thread_start(move || {
                let guard = tracing::dispatcher::set_default(&dispatch);
                THREAD_LOG.with(|slot| *slot.borrow_mut() = Some(guard));
            })
            .on_thread_stop(|| {
                THREAD_LOG.with(|slot| slot.borrow_mut().take());
            });
    }
    builder.build()
}

/// Binds `spec`'s listeners; a failure marks the gateway failed (with the
/// reason) and names it in the error.
fn bind_or_fail(
    state: &watch::Sender<GatewayState>,
    id: &str,
    spec: GatewaySpec,
) -> Result<Bound, HostError> {
    Gateway::bind(spec).map_err(|source| {
        apply(state, &Event::BindFailed(source.to_string()));
        HostError::Start {
            id: id.to_string(),
            source,
        }
    })
}

fn apply(state: &watch::Sender<GatewayState>, event: &Event) {
    state.send_if_modified(|s| match transition(s, event) {
        Ok(next) if next != *s => {
            *s = next;
            true
        }
        _ => false,
    });
}

fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// Extra time over a gateway's own grace before its task is aborted.
const STOP_SLACK: Duration = Duration::from_millis(300);
/// `shutdown_all` finishes within this, whatever the gateways do.
pub const SHUTDOWN_BUDGET: Duration = Duration::from_secs(2);

/// Runs gateways in this process. Cheap to clone; clones share the gateways.
#[derive(Clone, Default)]
pub struct Host {
    entries: Arc<Mutex<HashMap<String, Entry>>>,
}

impl Host {
    pub fn new() -> Host {
        Host::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        // The map holds plain data; a panic elsewhere cannot leave it torn.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Binds and starts gateway `id`. Must run inside a Tokio runtime.
    pub fn start(&self, id: &str, spec: GatewaySpec) -> Result<Addrs, HostError> {
        self.start_inner(id, spec, None)
    }

    fn start_inner(
        &self,
        id: &str,
        spec: GatewaySpec,
        fault: Option<Fault>,
    ) -> Result<Addrs, HostError> {
        let mut map = self.lock();
        let entry = map.entry(id.to_string()).or_insert_with(Entry::new);
        entry.check_idle(id)?;
        entry.launch = Some(Launch::Plain(spec.clone()));
        apply(&entry.state, &Event::StartRequested);
        let grace = spec.limits.shutdown_grace;
        let bound = bind_or_fail(&entry.state, id, spec)?;
        let addrs = bound.addrs();
        let (stop, stop_rx) = oneshot::channel::<()>();
        let serve = async move {
            let serving = bound.serve(async {
                // A dropped sender also means stop.
                let _ = stop_rx.await;
            });
            match fault {
                Some(fault) => {
                    tokio::select! {
                        r = serving => r,
                        () = fault => Ok(()),
                    }
                }
                None => serving.await,
            }
        };
        let handle = tokio::spawn(serve);
        apply(&entry.state, &Event::Bound);
        let state = entry.state.clone();
        let monitor = tokio::spawn(async move {
            let event = match handle.await {
                Ok(Ok(())) => Event::Exited,
                Ok(Err(e)) => Event::Crashed(e.to_string()),
                Err(e) if e.is_panic() => Event::Crashed(format!(
                    "gateway task panicked: {}",
                    panic_text(e.into_panic())
                )),
                Err(_) => Event::Exited,
            };
            apply(&state, &event);
        });
        entry.task = Some(Task {
            stop,
            runner: Runner::Task(monitor),
            addrs: Arc::new(Mutex::new(addrs)),
            grace,
        });
        Ok(addrs)
    }

    /// Binds gateway `id` from `launch.first` and serves it with hot reload
    /// and its Telegram channel on a thread of its own whose events go to
    /// `launch.dispatch` (see the module docs). Binding happens here, so a
    /// taken port fails this call and leaves nothing bound. Needs no
    /// runtime; [`Host::stop`] and [`Host::restart`] still need one.
    pub fn start_reloading(&self, id: &str, launch: Reloading) -> Result<Addrs, HostError> {
        let mut map = self.lock();
        let entry = map.entry(id.to_string()).or_insert_with(Entry::new);
        entry.check_idle(id)?;
        entry.launch = Some(Launch::Reloading(launch.clone()));
        apply(&entry.state, &Event::StartRequested);
        // The channel's own grace on top: a stopping rescue bot may finish
        // the update in hand before the listeners close.
        let grace = launch.first.spec.limits.shutdown_grace + reload::CHANNEL_GRACE;
        let bound = bind_or_fail(&entry.state, id, launch.first.spec.clone())?;
        let addrs = Arc::new(Mutex::new(bound.addrs()));
        *lock_of(&entry.latest) = Some(launch.first.clone());
        let tracked: Arc<dyn Rebuild> = Arc::new(Tracked {
            inner: launch.rebuild,
            addrs: addrs.clone(),
            latest: entry.latest.clone(),
        });
        let (stop, stop_rx) = oneshot::channel::<()>();
        let (kill, mut kill_rx) = oneshot::channel::<()>();
        let (done_tx, done) = oneshot::channel::<()>();
        let state = entry.state.clone();
        let dispatch = launch.dispatch;
        let first = launch.first;
        let options = launch.options;
        let name = id.to_string();
        let thread = std::thread::Builder::new()
            .name(format!("gateway-{id}"))
            .spawn(move || {
                let _log = dispatch.as_ref().map(tracing::dispatcher::set_default);
                let event = match gateway_runtime(dispatch.clone()) {
                    Err(e) => Event::Crashed(format!(
                        "cannot start the async runtime of gateway {name}: {e}"
                    )),
                    Ok(runtime) => {
                        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            runtime.block_on(async move {
                                let serving = reload::serve_reloading(
                                    bound,
                                    first,
                                    tracked,
                                    options,
                                    async {
                                        // A dropped sender also means stop.
                                        let _ = stop_rx.await;
                                    },
                                );
                                tokio::select! {
                                    r = serving => r.map_err(|e| e.to_string()),
                                    Ok(()) = &mut kill_rx => Ok(()),
                                }
                            })
                        }));
                        // Tasks still running (a kill) are dropped, their listeners with them.
                        runtime.shutdown_timeout(STOP_SLACK);
                        match run {
                            Ok(Ok(())) => Event::Exited,
                            Ok(Err(e)) => Event::Crashed(e),
                            Err(panic) => Event::Crashed(format!(
                                "gateway task panicked: {}",
                                panic_text(panic)
                            )),
                        }
                    }
                };
                apply(&state, &event);
                let _ = done_tx.send(());
            });
        if let Err(e) = thread {
            // The closure (and with it every listener) was dropped.
            let reason = e.to_string();
            apply(&entry.state, &Event::BindFailed(reason.clone()));
            return Err(HostError::Thread {
                id: id.to_string(),
                reason,
            });
        }
        apply(&entry.state, &Event::Bound);
        let now = *lock_of(&addrs);
        entry.task = Some(Task {
            stop,
            runner: Runner::Thread { done, kill },
            addrs,
            grace,
        });
        Ok(now)
    }

    /// Stops gateway `id` gracefully and waits until it has stopped.
    pub async fn stop(&self, id: &str) -> Result<(), HostError> {
        let (task, state) = {
            let mut map = self.lock();
            let entry = map
                .get_mut(id)
                .ok_or_else(|| HostError::Unknown(id.to_string()))?;
            (entry.task.take(), entry.state.clone())
        };
        if let Some(task) = task {
            let _ = task.stop.send(());
            task.runner.finish(task.grace + STOP_SLACK).await;
        }
        apply(&state, &Event::StopRequested);
        Ok(())
    }

    /// Stops gateway `id` and starts it again the way it was started: the
    /// same spec, or for a reloading gateway the newest config it applied.
    pub async fn restart(&self, id: &str) -> Result<Addrs, HostError> {
        let launch = {
            let map = self.lock();
            let entry = map
                .get(id)
                .ok_or_else(|| HostError::Unknown(id.to_string()))?;
            match entry.launch.clone() {
                Some(Launch::Reloading(mut r)) => {
                    if let Some(latest) = lock_of(&entry.latest).clone() {
                        r.first = latest;
                    }
                    Launch::Reloading(r)
                }
                Some(plain) => plain,
                None => return Err(HostError::Unknown(id.to_string())),
            }
        };
        self.stop(id).await?;
        match launch {
            Launch::Plain(spec) => self.start(id, spec),
            Launch::Reloading(r) => self.start_reloading(id, r),
        }
    }

    /// State updates of gateway `id`; subscribing before the first start is fine.
    pub fn subscribe(&self, id: &str) -> watch::Receiver<GatewayState> {
        self.lock()
            .entry(id.to_string())
            .or_insert_with(Entry::new)
            .state
            .subscribe()
    }

    /// The current state of gateway `id` (`Stopped` when unknown).
    pub fn state(&self, id: &str) -> GatewayState {
        self.lock()
            .get(id)
            .map(|e| e.state.borrow().clone())
            .unwrap_or(GatewayState::Stopped)
    }

    /// Where gateway `id` listens while it runs.
    pub fn addrs(&self, id: &str) -> Option<Addrs> {
        self.lock()
            .get(id)
            .and_then(|e| e.task.as_ref().map(|t| *lock_of(&t.addrs)))
    }

    /// Every gateway this host knows, sorted.
    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.lock().keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Stops every gateway at once, within [`SHUTDOWN_BUDGET`].
    pub async fn shutdown_all(&self) {
        let ids = self.ids();
        let stops = ids.iter().map(|id| self.stop(id));
        let all = futures_util::future::join_all(stops);
        if tokio::time::timeout(SHUTDOWN_BUDGET, all).await.is_err() {
            let mut map = self.lock();
            for entry in map.values_mut() {
                if let Some(task) = entry.task.take() {
                    task.runner.abort();
                }
                apply(&entry.state, &Event::StopRequested);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use GatewayState::*;

    fn failed(r: &str) -> GatewayState {
        Failed { reason: r.into() }
    }

    fn check(from: GatewayState, event: Event, expected: Option<GatewayState>) {
        assert_eq!(
            transition(&from, &event).ok(),
            expected,
            "{from:?} on {event:?}"
        );
    }

    #[test]
    fn lifecycle_table() {
        check(Stopped, Event::StartRequested, Some(Starting));
        check(failed("x"), Event::StartRequested, Some(Starting));
        check(Running, Event::StartRequested, None);
        check(Starting, Event::StartRequested, None);
        check(Starting, Event::Bound, Some(Running));
        check(
            Starting,
            Event::BindFailed("port".into()),
            Some(failed("port")),
        );
        check(Running, Event::StopRequested, Some(Stopped));
        check(failed("x"), Event::StopRequested, Some(Stopped));
        check(Stopped, Event::StopRequested, Some(Stopped));
        check(Running, Event::Exited, Some(Stopped));
        check(Running, Event::Crashed("boom".into()), Some(failed("boom")));
        check(Stopped, Event::Crashed("late".into()), Some(Stopped));
        check(Stopped, Event::Bound, None);
        check(Running, Event::Bound, None);
        check(failed("x"), Event::Exited, None);
    }

    fn spec(dir: &std::path::Path, name: &str) -> GatewaySpec {
        let mut s = GatewaySpec::new(
            name,
            dir.join(name).join("omniclaw.json"),
            dir.join(name),
            dir.join(name).join("workspace"),
            0,
        );
        s.browser.control_port = 0;
        s.browser.cdp_range = 1..=2;
        s.canvas.port = 0;
        s.limits.shutdown_grace = Duration::from_millis(500);
        s
    }

    /// Waits (at most `within`) until the state is `Failed`; its reason.
    async fn failure(state: &mut watch::Receiver<GatewayState>, within: Duration) -> String {
        let failed = tokio::time::timeout(within, state.wait_for(|s| matches!(s, Failed { .. })))
            .await
            .expect("the gateway fails in time")
            .expect("state channel")
            .clone();
        match failed {
            Failed { reason } => reason,
            other => panic!("unexpected {other:?}"),
        }
    }

    async fn healthz(addr: std::net::SocketAddr) -> bool {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
            return false;
        };
        let req = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        if s.write_all(req.as_bytes()).await.is_err() {
            return false;
        }
        let mut out = String::new();
        let _ = s.read_to_string(&mut out).await;
        out.starts_with("HTTP/1.1 200")
    }

    #[tokio::test]
    async fn a_panic_in_one_gateway_leaves_the_other_serving() {
        let dir = tempfile::tempdir().expect("tempdir");
        let host = Host::new();
        let main = host
            .start("main", spec(dir.path(), "main"))
            .expect("main starts");
        let (fire, fired) = oneshot::channel::<()>();
        let fault: Fault = Box::pin(async move {
            let _ = fired.await;
            panic!("injected fault");
        });
        let rescue = host
            .start_inner("rescue", spec(dir.path(), "rescue"), Some(fault))
            .expect("rescue starts");
        let mut rescue_state = host.subscribe("rescue");
        assert_eq!(host.state("main"), Running);
        assert_eq!(*rescue_state.borrow(), Running);
        assert!(healthz(rescue.gateway).await);

        fire.send(()).expect("fire");
        let reason = failure(&mut rescue_state, Duration::from_secs(5)).await;
        assert!(reason.contains("injected fault"), "{reason}");
        assert_eq!(host.state("main"), Running);
        assert!(healthz(main.gateway).await, "main still serves");
        assert!(
            !healthz(rescue.gateway).await,
            "rescue's listener is closed"
        );

        // A failed gateway can be restarted.
        host.stop("rescue").await.expect("stop");
        let again = host.restart("rescue").await.expect("restart");
        assert!(healthz(again.gateway).await);

        let t0 = std::time::Instant::now();
        host.shutdown_all().await;
        assert!(t0.elapsed() < SHUTDOWN_BUDGET + Duration::from_millis(200));
        assert_eq!(host.state("main"), Stopped);
        assert_eq!(host.state("rescue"), Stopped);
        assert!(!healthz(main.gateway).await);
    }

    #[tokio::test]
    async fn start_twice_and_unknown_ids_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let host = Host::new();
        host.start("main", spec(dir.path(), "main")).expect("start");
        let err = host
            .start("main", spec(dir.path(), "main"))
            .expect_err("twice");
        assert!(err.to_string().contains("already running"), "{err}");
        let err = host.restart("ghost").await.expect_err("unknown");
        assert!(matches!(err, HostError::Unknown(_)), "{err}");
        host.shutdown_all().await;
    }
    /// A profile in `home` with a config on free ports and no auth, run
    /// the way the desktop app runs it: its own logger, hot reload.
    struct Profile {
        resolved: omniclaw_core::paths::Resolved,
        port: u16,
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind port 0")
            .local_addr()
            .expect("addr")
            .port()
    }

    fn config_text(port: u16, level: &str) -> String {
        format!(
            "{{\n  // written by the test\n  gateway: {{ port: {port}, auth: {{ mode: \"none\" }} }},\n  browser: {{ enabled: false }},\n  canvasHost: {{ enabled: false }},\n  logging: {{ level: \"{level}\" }},\n}}\n"
        )
    }

    fn profile(home: &std::path::Path, name: &str) -> Profile {
        let env =
            omniclaw_core::env::EnvSnapshot::default().with("HOME", &home.display().to_string());
        let resolved = omniclaw_core::paths::resolve(omniclaw_core::paths::Inputs {
            profile_flag: Some(name),
            env: &env,
            cwd: None,
        })
        .expect("resolves");
        std::fs::create_dir_all(&resolved.state_dir).expect("state dir");
        let port = free_port();
        std::fs::write(&resolved.config_path, config_text(port, "info")).expect("config");
        Profile { resolved, port }
    }

    fn launch(
        p: &Profile,
        wrap: impl FnOnce(Arc<crate::rebuild::ProfileRebuild>) -> Arc<dyn Rebuild>,
    ) -> Reloading {
        use crate::rebuild::ProfileRebuild;
        let env = omniclaw_core::env::EnvSnapshot::default()
            .with("HOME", &p.resolved.home.display().to_string());
        let logger =
            omniclaw_os::logs::file_logger(&p.resolved.logs_dir(), "info").expect("logger");
        let dispatch = logger.dispatch.clone();
        let rebuild = Arc::new(ProfileRebuild::new(
            p.resolved.clone(),
            crate::profile::Overrides::default(),
            env,
            Arc::new(omniclaw_os::secrets::MemoryStore::default()),
            logger,
            omniclaw_os::lock::Owner::Embedded,
        ));
        let text = std::fs::read_to_string(&p.resolved.config_path).expect("read config");
        let first = rebuild.build(&text).expect("valid config");
        Reloading {
            first,
            rebuild: wrap(rebuild),
            options: reload::Options {
                debounce: Duration::from_millis(50),
                healthy_after: Duration::from_secs(60),
            },
            dispatch: Some(dispatch),
        }
    }

    fn log_text(p: &Profile) -> String {
        omniclaw_os::logs::tail(&p.resolved.logs_dir(), 1000)
            .unwrap_or_default()
            .join("\n")
    }

    async fn eventually(what: &str, ok: impl Fn() -> bool) {
        for _ in 0..200 {
            if ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("timed out waiting for {what}");
    }

    #[tokio::test]
    async fn reloading_gateways_log_into_their_own_profiles_files() {
        let home = tempfile::tempdir().expect("tempdir");
        let main = profile(home.path(), "main");
        let rescue = profile(home.path(), "rescue");
        let host = Host::new();
        for (name, p) in [("main", &main), ("rescue", &rescue)] {
            let addrs = host
                .start_reloading(name, launch(p, |r| r))
                .expect("starts");
            assert_eq!(addrs.gateway.port(), p.port);
            assert_eq!(host.state(name), Running);
        }
        for p in [&main, &rescue] {
            eventually("a gateway serving line", || {
                log_text(p).contains("gateway serving")
            })
            .await;
        }
        let (main_log, rescue_log) = (log_text(&main), log_text(&rescue));
        let main_config = main.resolved.config_path.display().to_string();
        let rescue_config = rescue.resolved.config_path.display().to_string();
        assert!(main_log.contains(&main_config), "{main_log}");
        assert!(
            !main_log.contains(&rescue_config),
            "rescue's line in main's file:\n{main_log}"
        );
        assert!(rescue_log.contains(&rescue_config), "{rescue_log}");
        assert!(
            !rescue_log.contains(&main_config),
            "main's line in rescue's file:\n{rescue_log}"
        );
        // The runtime file says where each one listens, and who runs it.
        let info = omniclaw_os::runtime::read_live(&main.resolved.state_dir);
        assert_eq!(
            info.map(|i| i.port),
            None,
            "no lock held: the file is not trusted"
        );
        let raw = std::fs::read_to_string(main.resolved.state_dir.join(omniclaw_os::runtime::FILE))
            .expect("runtime file written");
        assert!(raw.contains("\"embedded\""), "{raw}");

        // An edit that moves main's port restarts only main, on the new port.
        let moved = free_port();
        std::fs::write(&main.resolved.config_path, config_text(moved, "debug")).expect("edit");
        eventually("main on its new port", || {
            host.addrs("main").map(|a| a.gateway.port()) == Some(moved)
        })
        .await;
        assert!(
            healthz(([127, 0, 0, 1], moved).into()).await,
            "new port serves"
        );
        assert!(
            !healthz(([127, 0, 0, 1], main.port).into()).await,
            "old port is free"
        );
        assert!(
            healthz(([127, 0, 0, 1], rescue.port).into()).await,
            "rescue untouched"
        );
        eventually("the restart in main's log", || {
            log_text(&main).contains("gateway restarted with the new config")
        })
        .await;
        assert!(
            !log_text(&rescue).contains("gateway restarted"),
            "{}",
            log_text(&rescue)
        );

        // An invalid edit keeps main serving.
        std::fs::write(
            &main.resolved.config_path,
            "{ gateway: { port: \"nope\" } }",
        )
        .expect("edit");
        eventually("the refusal in main's log", || {
            log_text(&main).contains("edit refused")
        })
        .await;
        assert_eq!(host.state("main"), Running);
        assert!(
            healthz(([127, 0, 0, 1], moved).into()).await,
            "still serving"
        );

        // A restart runs the newest good config again.
        let again = host.restart("main").await.expect("restart");
        assert_eq!(again.gateway.port(), moved);
        assert!(healthz(again.gateway).await);

        host.stop("rescue").await.expect("stop");
        assert_eq!(host.state("rescue"), Stopped);
        assert!(
            !healthz(([127, 0, 0, 1], rescue.port).into()).await,
            "rescue's port is free"
        );
        host.shutdown_all().await;
        assert_eq!(host.state("main"), Stopped);
        assert!(!healthz(([127, 0, 0, 1], moved).into()).await);
    }

    /// A rebuild that knows one secret value.
    struct KnowsOne;

    impl Rebuild for KnowsOne {
        fn build(&self, _: &str) -> Result<Candidate, String> {
            Err("unused".into())
        }
        fn applied(&self, _: &Candidate, _: &Addrs) {}
        fn known_secrets(&self) -> Arc<dyn omniclaw_channels::telegram::SecretSource> {
            Arc::new(vec!["the-one-secret".to_string()])
        }
    }

    #[test]
    fn tracking_keeps_the_secrets_a_rescue_bot_masks() {
        let tracked = Tracked {
            inner: Arc::new(KnowsOne),
            addrs: Arc::new(Mutex::new(Addrs {
                gateway: ([127, 0, 0, 1], 0).into(),
                browser_control: None,
                canvas: None,
            })),
            latest: Arc::new(Mutex::new(None)),
        };
        assert_eq!(tracked.known_secrets().values(), ["the-one-secret"]);
    }

    /// Panics the first time a config is applied after the start.
    struct PanicOnReload {
        inner: Arc<crate::rebuild::ProfileRebuild>,
        applied: std::sync::atomic::AtomicUsize,
    }

    impl Rebuild for PanicOnReload {
        fn build(&self, text: &str) -> Result<Candidate, String> {
            self.inner.build(text)
        }
        fn applied(&self, c: &Candidate, addrs: &Addrs) {
            if self
                .applied
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                > 0
            {
                panic!("injected reload fault");
            }
            self.inner.applied(c, addrs);
        }
    }

    #[tokio::test]
    async fn a_panic_in_a_reloading_gateway_leaves_the_other_serving() {
        let home = tempfile::tempdir().expect("tempdir");
        let main = profile(home.path(), "main");
        let rescue = profile(home.path(), "rescue");
        let host = Host::new();
        host.start_reloading("main", launch(&main, |r| r))
            .expect("main starts");
        host.start_reloading(
            "rescue",
            launch(&rescue, |inner| {
                Arc::new(PanicOnReload {
                    inner,
                    applied: std::sync::atomic::AtomicUsize::new(0),
                })
            }),
        )
        .expect("rescue starts");
        let mut rescue_state = host.subscribe("rescue");
        // Serving (and watching its config) before the edit.
        eventually("rescue serving", || {
            log_text(&rescue).contains("gateway serving")
        })
        .await;
        std::fs::write(
            &rescue.resolved.config_path,
            config_text(rescue.port, "warn"),
        )
        .expect("edit");
        let reason = failure(&mut rescue_state, Duration::from_secs(10)).await;
        assert!(reason.contains("injected reload fault"), "{reason}");
        assert_eq!(host.state("main"), Running);
        assert!(
            healthz(([127, 0, 0, 1], main.port).into()).await,
            "main still serves"
        );
        assert!(
            !healthz(([127, 0, 0, 1], rescue.port).into()).await,
            "rescue's port is closed"
        );
        host.shutdown_all().await;
    }
}
