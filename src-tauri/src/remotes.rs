//! Remote gateways (`omniclaw remote add`) in the app: their SSH tunnels
//! kept up, their state for the tray and the dashboard.
//!
//! One background thread ([`keep_tunnels`]) owns every tunnel the app
//! keeps: it re-reads `~/.omniclaw/remotes.json` when the file changes
//! (an added remote's tunnel starts, a removed one's stops), takes each SSH
//! remote's keep lock (`omniclaw_os::remote::try_keep`) and drives one
//! [`Supervisor`] per remote, which starts `ssh` again with the core's
//! backoff when it dies. When `omniclaw remote tunnel NAME` keeps a
//! tunnel up already, the app uses that one and starts none (it takes over
//! once that command ends). A tunnel's saved local port that another
//! program holds is shown as the tunnel's error, never replaced by
//! another. On quit ([`Remotes::stop`]) the thread ends and every `ssh` it
//! started is killed with it. The tray never waits on any of this: it
//! reads the last [`Remotes::entries`].
//!
//! The protocol side (state, version, health, chat, `logs.tail`) goes
//! through [`crate::link`], which connects to a remote at its URL (the
//! tunnel's local end for SSH) with the credentials `remote add` stored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use omniclaw_core::remotes::{Kind, Remote, SshTunnel};
use omniclaw_core::tray::{self, RemoteState, TunnelView};
use omniclaw_core::tunnel::TunnelState;
use omniclaw_os::remote::{
    self as store, KeepLock, SshLaunch, Supervisor, SystemClock, TunnelSpec,
};
use serde::Serialize;
use serde_json::{json, Value};

use crate::desktop::Desktop;

/// How often the thread looks at its tunnels.
const TICK: Duration = Duration::from_millis(50);
/// How often a tunnel another process keeps is asked for again (it may
/// have ended, and then the app keeps it).
const RETAKE_EVERY: Duration = Duration::from_secs(1);
/// Lines `logs.tail` is asked for.
const LOG_LINES: u64 = 200;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every mutex here holds plain data; a panic elsewhere cannot tear it.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One remote as last seen: its entry and its tunnel.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub remote: Remote,
    pub tunnel: Option<TunnelView>,
    /// A profile in `gateway.mode: "remote"` (named by the profile, its
    /// credentials `gateway.remote.token`), not a `remote add`.
    pub configured: bool,
}

impl Entry {
    /// Whether its URL can be dialled now: always for a direct remote,
    /// for an SSH one while its tunnel is up (ours or another process's).
    pub fn reachable(&self) -> bool {
        match &self.tunnel {
            None => true,
            Some(t) => matches!(t, TunnelView::Up { .. } | TunnelView::KeptElsewhere),
        }
    }
}

/// The remotes the app knows, shared by the tunnel thread, the view and
/// the commands.
#[derive(Default)]
pub struct Remotes {
    entries: Mutex<Vec<Entry>>,
    /// The profiles in `gateway.mode: "remote"`, from the last gathering.
    configured: Mutex<Vec<Remote>>,
    /// Why `remotes.json` could not be read, while it cannot.
    problem: Mutex<Option<String>>,
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// The remote whose log the tray's "Logs…" asked the dashboard for.
    logs_target: Mutex<Option<String>>,
}

impl Remotes {
    /// Every remote: the profiles in remote mode, then the file's, in its
    /// order.
    pub fn entries(&self) -> Vec<Entry> {
        let mut all: Vec<Entry> = lock(&self.configured)
            .iter()
            .map(|r| Entry {
                remote: r.clone(),
                tunnel: None,
                configured: true,
            })
            .collect();
        all.extend(lock(&self.entries).iter().cloned());
        all
    }

    /// The remote called `name`, if there is one.
    pub fn get(&self, name: &str) -> Option<Entry> {
        self.entries().into_iter().find(|e| e.remote.name == name)
    }

    /// The profiles in `gateway.mode: "remote"` as the last gathering
    /// found them.
    pub fn set_configured(&self, remotes: Vec<Remote>) {
        *lock(&self.configured) = remotes;
    }

    pub fn problem(&self) -> Option<String> {
        lock(&self.problem).clone()
    }

    /// "Logs…" in the tray: the dashboard opens `name`'s log.
    pub fn set_logs_target(&self, name: &str) {
        *lock(&self.logs_target) = Some(name.to_string());
    }

    pub fn take_logs_target(&self) -> Option<String> {
        lock(&self.logs_target).take()
    }

    /// Ends the tunnel thread; every `ssh` it started ends with it.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = lock(&self.thread).take() {
            let _ = thread.join();
        }
    }
}

/// A tunnel the thread looks after.
enum Keep {
    /// The app holds the keep lock and runs `ssh` itself.
    Own {
        _lock: KeepLock,
        supervisor: Box<Supervisor<SshLaunch, SystemClock>>,
    },
    /// Another process holds the keep lock: its tunnel is used.
    Elsewhere { asked: Instant },
    /// The keep lock could not be taken (its directory is not writable).
    Broken { reason: String, asked: Instant },
}

struct Kept {
    tunnel: SshTunnel,
    keep: Keep,
}

/// Takes `name`'s keep lock and starts its tunnel, or notes who keeps it.
fn take(home: &Path, name: &str, tunnel: &SshTunnel) -> Keep {
    match store::try_keep(home, name) {
        Ok(Some(keep_lock)) => Keep::Own {
            _lock: keep_lock,
            supervisor: Box::new(Supervisor::start(
                SshLaunch(TunnelSpec::new(home, name, tunnel)),
                SystemClock::new(),
            )),
        },
        Ok(None) => Keep::Elsewhere {
            asked: Instant::now(),
        },
        Err(e) => Keep::Broken {
            reason: format!(
                "cannot take the tunnel's lock in {}: {e}",
                store::dir(home, name).display()
            ),
            asked: Instant::now(),
        },
    }
}

impl Kept {
    /// One look: restarts `ssh` when due, asks again for a lock another
    /// process held.
    fn poll(&mut self, home: &Path, name: &str) {
        let retake = match &mut self.keep {
            Keep::Own { supervisor, .. } => {
                supervisor.poll();
                false
            }
            Keep::Elsewhere { asked } | Keep::Broken { asked, .. } => {
                asked.elapsed() >= RETAKE_EVERY
            }
        };
        if retake {
            self.keep = take(home, name, &self.tunnel);
        }
    }

    fn view(&self) -> TunnelView {
        match &self.keep {
            Keep::Own { supervisor, .. } => match supervisor.state() {
                TunnelState::Up { .. } => TunnelView::Up {
                    pid: supervisor.pid(),
                },
                TunnelState::Starting { .. } => TunnelView::Starting,
                TunnelState::Waiting {
                    reason, failures, ..
                } => TunnelView::Reconnecting {
                    attempt: *failures,
                    reason: reason.clone(),
                },
            },
            Keep::Elsewhere { .. } => TunnelView::KeptElsewhere,
            Keep::Broken { reason, .. } => TunnelView::Failed {
                reason: reason.clone(),
            },
        }
    }
}

/// When the remotes file was last changed (`None`: it does not exist).
fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Starts the thread that keeps the SSH remotes' tunnels up while the app
/// runs (see the module's docs).
pub fn keep_tunnels(desktop: &Arc<Desktop>) {
    let me = Arc::clone(desktop);
    let stop = Arc::clone(&desktop.remotes.stop);
    let spawned = std::thread::Builder::new()
        .name("remote-tunnels".into())
        .spawn(move || run(&me, &stop));
    match spawned {
        Ok(thread) => *lock(&desktop.remotes.thread) = Some(thread),
        Err(e) => {
            *lock(&desktop.remotes.problem) = Some(format!(
                "cannot start the thread that keeps SSH tunnels up: {e}"
            ))
        }
    }
}

fn run(desktop: &Desktop, stop: &AtomicBool) {
    let home: PathBuf = desktop.home().to_path_buf();
    let file = store::file(&home);
    let mut seen: Option<Option<(SystemTime, u64)>> = None;
    let mut list: Vec<Remote> = Vec::new();
    let mut kept: BTreeMap<String, Kept> = BTreeMap::new();
    while !stop.load(Ordering::SeqCst) {
        let now = stamp(&file);
        if seen != Some(now) {
            seen = Some(now);
            let problem = match store::load(&home) {
                Ok(remotes) => {
                    list = remotes.list;
                    None
                }
                // A broken file keeps what runs: the remote commands and
                // the dashboard say what is wrong with it.
                Err(e) => Some(e.to_string()),
            };
            *lock(&desktop.remotes.problem) = problem;
            // Removed remotes, and those whose tunnel changed, stop.
            kept.retain(|name, k| {
                list.iter()
                    .any(|r| &r.name == name && matches!(&r.kind, Kind::Ssh(t) if *t == k.tunnel))
            });
            for remote in &list {
                if let Kind::Ssh(t) = &remote.kind {
                    kept.entry(remote.name.clone()).or_insert_with(|| Kept {
                        tunnel: t.clone(),
                        keep: take(&home, &remote.name, t),
                    });
                }
            }
        }
        for (name, k) in kept.iter_mut() {
            k.poll(&home, name);
        }
        let entries: Vec<Entry> = list
            .iter()
            .map(|r| Entry {
                remote: r.clone(),
                tunnel: kept.get(&r.name).map(Kept::view),
                configured: false,
            })
            .collect();
        let changed = {
            let mut shown = lock(&desktop.remotes.entries);
            let changed = *shown != entries;
            if changed {
                *shown = entries;
            }
            changed
        };
        if changed {
            desktop.changed.notify_one();
        }
        std::thread::sleep(TICK);
    }
    // Dropping each supervisor kills its ssh; each lock is released.
    drop(kept);
    lock(&desktop.remotes.entries).clear();
}

/// The tray's view of each remote: the tunnel from the thread, the rest
/// from the app's connection to it.
pub fn snapshot(desktop: &Desktop) -> Vec<tray::Remote> {
    desktop
        .remotes
        .entries()
        .into_iter()
        .map(|e| {
            let name = e.remote.name.clone();
            let links = &desktop.links;
            let state = if links.connected(&name) {
                RemoteState::Running
            } else if let Some(
                TunnelView::Reconnecting { reason, .. } | TunnelView::Failed { reason },
            ) = &e.tunnel
            {
                RemoteState::Unreachable {
                    reason: format!("its SSH tunnel is down: {reason}"),
                }
            } else if let Some(reason) = links.failure(&name) {
                RemoteState::Unreachable { reason }
            } else {
                RemoteState::Connecting
            };
            let running = state == RemoteState::Running;
            tray::Remote {
                version: running.then(|| links.version(&name)).flatten(),
                healthy: running.then(|| links.healthy(&name)).flatten(),
                name,
                state,
                tunnel: e.tunnel,
            }
        })
        .collect()
}

/// One remote's card on the dashboard.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Card {
    pub name: String,
    /// `ssh`, `url`, or `gateway.mode` for a profile in remote mode.
    pub kind: &'static str,
    /// Its URL, or `USER@HOST:PORT → port R` for SSH.
    pub target: String,
    pub local_port: Option<u16>,
    /// `connecting`, `running` or `unreachable`.
    pub state: &'static str,
    /// The tray's wording: `remote · running · v0.1.0`.
    pub status: String,
    pub version: Option<String>,
    pub healthy: Option<bool>,
    pub reason: Option<String>,
    /// `tunnel up (ssh pid 4242)`, `tunnel reconnecting (attempt 2): …`.
    pub tunnel: Option<String>,
}

/// The dashboard's cards, from the tray's view of each remote.
pub fn cards(desktop: &Desktop, remotes: &[tray::Remote]) -> Vec<Card> {
    remotes
        .iter()
        .map(|r| {
            let entry = desktop.remotes.get(&r.name);
            Card {
                name: r.name.clone(),
                kind: entry.as_ref().map_or("url", |e| match e.configured {
                    true => "gateway.mode",
                    false => e.remote.kind_word(),
                }),
                target: entry
                    .as_ref()
                    .map(|e| e.remote.target())
                    .unwrap_or_default(),
                local_port: entry.as_ref().and_then(|e| e.remote.local_port()),
                state: r.state.word(),
                status: tray::remote_status(r),
                version: r.version.clone(),
                healthy: r.healthy,
                reason: match &r.state {
                    RemoteState::Unreachable { reason } => Some(reason.clone()),
                    _ => None,
                },
                tunnel: r.tunnel.as_ref().map(TunnelView::label),
            }
        })
        .collect()
}

/// The newest lines of remote `name`'s log, by the protocol's `logs.tail`
/// over the app's connection to it.
pub async fn logs(desktop: &Desktop, name: &str) -> Result<Vec<String>, String> {
    if desktop.remotes.get(name).is_none() {
        return Err(format!(
            "no remote gateway named {name:?}: add it with `omniclaw remote add {name} …`"
        ));
    }
    let client = desktop.links.client(name)?;
    let tail = client
        .call("logs.tail", json!({"limit": LOG_LINES}))
        .await
        .map_err(|e| format!("{name}: logs.tail failed: {e}"))?;
    Ok(log_lines(&tail))
}

/// The lines of a `logs.tail` answer.
fn log_lines(tail: &Value) -> Vec<String> {
    tail["lines"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| match l.as_str() {
            Some(s) => s.to_string(),
            None => l.to_string(),
        })
        .collect()
}

/// "Test connection": connects anew with the stored credentials, reads
/// `health`; a summary (`running · v0.1.0 · healthy (12.3 ms)`) or why not.
pub async fn test(desktop: &Arc<Desktop>, name: &str) -> Result<String, String> {
    let entry = desktop
        .remotes
        .get(name)
        .ok_or_else(|| format!("no remote gateway named {name:?}"))?;
    if let Some(TunnelView::Reconnecting { reason, .. } | TunnelView::Failed { reason }) =
        &entry.tunnel
    {
        return Err(format!("its SSH tunnel is down: {reason}"));
    }
    let me = Arc::clone(desktop);
    let who = name.to_string();
    let endpoint =
        tauri::async_runtime::spawn_blocking(move || crate::desktop::endpoint(&me, &who))
            .await
            .map_err(|e| e.to_string())?;
    let (url, auth) = endpoint.map_err(|e| e.to_string())?;
    let start = Instant::now();
    let mut opts = omniclaw_gateway::client::ConnectOptions::new(auth, &["operator.read"]);
    opts.timeout = Duration::from_secs(10);
    opts.mode = "probe".into();
    let client = omniclaw_gateway::client::Client::connect_with(&url, opts)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let health = client.call("health", json!({})).await.ok();
    let version = omniclaw_os::version::from_hello(client.hello());
    client.close().await;
    let mut parts = vec!["running".to_string()];
    if let Some(v) = version {
        parts.push(format!("v{v}"));
    }
    match health.as_ref().map(|h| h["ok"] == true) {
        Some(true) => parts.push("healthy".into()),
        Some(false) => parts.push("unhealthy".into()),
        None => {}
    }
    Ok(format!(
        "{} ({:.1} ms)",
        parts.join(" · "),
        start.elapsed().as_secs_f64() * 1000.0
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_tunnel_that_is_up_makes_a_remote_reachable() {
        let remote = Remote {
            name: "far".into(),
            kind: Kind::Direct(
                omniclaw_core::remote::parse_url("wss://gw.example.com").expect("url"),
            ),
        };
        let cases = [
            (None, true),
            (Some(TunnelView::Up { pid: Some(7) }), true),
            (Some(TunnelView::KeptElsewhere), true),
            (Some(TunnelView::Starting), false),
            (
                Some(TunnelView::Failed {
                    reason: "lock".into(),
                }),
                false,
            ),
            (
                Some(TunnelView::Reconnecting {
                    attempt: 1,
                    reason: "ssh exited".into(),
                }),
                false,
            ),
        ];
        for (tunnel, expected) in cases {
            let entry = Entry {
                remote: remote.clone(),
                tunnel: tunnel.clone(),
                configured: false,
            };
            assert_eq!(entry.reachable(), expected, "{tunnel:?}");
        }
    }

    #[test]
    fn log_lines_are_read_from_the_tail() {
        let tail = json!({"lines": ["a", {"level": "info"}], "cursor": 9});
        assert_eq!(log_lines(&tail), vec!["a", r#"{"level":"info"}"#]);
        assert!(log_lines(&json!({"file": null})).is_empty());
    }

    #[test]
    fn a_changed_remotes_file_has_a_new_stamp() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("remotes.json");
        assert_eq!(stamp(&path), None);
        std::fs::write(&path, "{}").expect("write");
        let first = stamp(&path);
        assert!(first.is_some());
        std::fs::write(&path, "{\"remotes\": []}").expect("write");
        assert_ne!(stamp(&path), first, "the length moved");
    }
}
