//! The host ("supervisor"): any number of gateways in one process, each
//! with its own lifecycle.
//!
//! Each gateway serves in its own task; a panic there marks only that
//! gateway `Failed` and the others keep serving. State changes go through
//! the pure [`transition`] function and are published on a watch channel
//! per gateway, so the tray can render them without polling.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::error::StartError;
use crate::server::{Addrs, Gateway};
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
}

type Fault = Pin<Box<dyn Future<Output = ()> + Send>>;

struct Task {
    stop: oneshot::Sender<()>,
    monitor: JoinHandle<()>,
    addrs: Addrs,
    grace: Duration,
}

struct Entry {
    spec: Option<GatewaySpec>,
    state: Arc<watch::Sender<GatewayState>>,
    task: Option<Task>,
}

impl Entry {
    fn new() -> Entry {
        Entry {
            spec: None,
            state: Arc::new(watch::channel(GatewayState::Stopped).0),
            task: None,
        }
    }
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
        let current = entry.state.borrow().clone();
        if entry.task.is_some() || matches!(current, GatewayState::Running | GatewayState::Starting)
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
        entry.spec = Some(spec.clone());
        apply(&entry.state, &Event::StartRequested);
        let grace = spec.limits.shutdown_grace;
        let bound = match Gateway::bind(spec) {
            Ok(b) => b,
            Err(source) => {
                apply(&entry.state, &Event::BindFailed(source.to_string()));
                return Err(HostError::Start {
                    id: id.to_string(),
                    source,
                });
            }
        };
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
            monitor,
            addrs,
            grace,
        });
        Ok(addrs)
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
            let mut monitor = task.monitor;
            if tokio::time::timeout(task.grace + STOP_SLACK, &mut monitor)
                .await
                .is_err()
            {
                monitor.abort();
            }
        }
        apply(&state, &Event::StopRequested);
        Ok(())
    }

    /// Stops gateway `id` and starts it again with its last spec.
    pub async fn restart(&self, id: &str) -> Result<Addrs, HostError> {
        let spec = self
            .lock()
            .get(id)
            .and_then(|e| e.spec.clone())
            .ok_or_else(|| HostError::Unknown(id.to_string()))?;
        self.stop(id).await?;
        self.start(id, spec)
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
            .and_then(|e| e.task.as_ref().map(|t| t.addrs))
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
                    task.monitor.abort();
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
        let failed_state = tokio::time::timeout(
            Duration::from_secs(5),
            rescue_state.wait_for(|s| matches!(s, Failed { .. })),
        )
        .await
        .expect("rescue fails in time")
        .expect("state channel")
        .clone();
        match failed_state {
            Failed { reason } => assert!(reason.contains("injected fault"), "{reason}"),
            other => panic!("unexpected {other:?}"),
        }
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
}
