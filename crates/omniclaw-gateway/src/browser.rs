//! The browser control service: browser profiles, their CDP ports, and the
//! Chromium processes this gateway starts for them.
//!
//! A profile's CDP port is pinned in config or taken from the gateway's CDP
//! range in order; the allocation is kept in `<state dir>/browser/profiles.json`
//! so a profile keeps its port across restarts. Only processes started here
//! are ever stopped, and all of them are stopped when the gateway stops.
//! The service listens on loopback only, and every request must carry the
//! gateway's credentials (`Authorization: Bearer <token or password>`),
//! name this service as its `Host` and not come from a web page
//! ([`crate::guard`]): a page the user visits can neither start browsers
//! nor reach the service through a rebinding DNS name.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::Mutex;

use omniclaw_core::env::ChildEnv;

use crate::auth::{Client, Limiter};
use crate::guard::{self, Refusal};
use crate::reload::Live;
use crate::spec::{Auth, BrowserSpec};

/// The profile used when a request names none.
pub const DEFAULT_PROFILE: &str = "default";
/// File holding the CDP port allocations, inside the browser dir.
pub const PROFILES_FILE: &str = "profiles.json";
const STDERR_LINES: usize = 20;

/// Why a browser request failed.
#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    #[error("browser profile name {0:?} is invalid: use 1–64 lower-case letters, digits, `-` or `_`, starting with a letter or digit")]
    BadName(String),
    #[error("no free CDP port for browser profile {name:?}: all of {start}..={end} are taken; move browser.cdpPortRangeStart or pin browser.profiles.{name}.cdpPort")]
    RangeExhausted { name: String, start: u16, end: u16 },
    #[error("browser profile {name:?} is pinned to CDP port {port}, which profile {other:?} already uses: give each profile its own browser.profiles.<name>.cdpPort")]
    PinnedClash {
        name: String,
        other: String,
        port: u16,
    },
    #[error("cannot start {} for browser profile {name:?}: {source}; install Chromium or set the browser executable", executable.display())]
    Spawn {
        name: String,
        executable: PathBuf,
        source: std::io::Error,
    },
    #[error("chromium for browser profile {name:?} exited ({status}) before CDP answered on port {port}: {stderr}")]
    Exited {
        name: String,
        port: u16,
        status: String,
        stderr: String,
    },
    #[error("chromium for browser profile {name:?} did not answer on CDP port {port} within {} ms; is the port free?", timeout.as_millis())]
    Timeout {
        name: String,
        port: u16,
        timeout: Duration,
    },
    #[error("browser profile {0:?} is not running (only browsers started by this gateway can be stopped)")]
    NotRunning(String),
    #[error("cannot write {}: {source}", path.display())]
    Persist {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl BrowserError {
    fn status(&self) -> StatusCode {
        match self {
            BrowserError::BadName(_) => StatusCode::BAD_REQUEST,
            BrowserError::NotRunning(_) => StatusCode::NOT_FOUND,
            BrowserError::RangeExhausted { .. } | BrowserError::PinnedClash { .. } => {
                StatusCode::CONFLICT
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// Browser profile names follow the profile-name rule.
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-' || *c == b'_')
}

/// The CDP port of profile `name`: pinned in config, else kept from an earlier
/// allocation, else the first port of `range` that no other profile holds
/// (pinned or allocated).
pub fn allocate(
    name: &str,
    pinned: &BTreeMap<String, Option<u16>>,
    allocated: &BTreeMap<String, u16>,
    range: &RangeInclusive<u16>,
) -> Result<u16, BrowserError> {
    let pins = || pinned.iter().filter_map(|(n, p)| p.map(|p| (n, p)));
    if let Some(Some(port)) = pinned.get(name) {
        if let Some((other, _)) = pins().find(|(n, p)| n.as_str() != name && p == port) {
            return Err(BrowserError::PinnedClash {
                name: name.to_string(),
                other: other.clone(),
                port: *port,
            });
        }
        return Ok(*port);
    }
    let taken = |port: u16, me: &str| {
        pins().any(|(_, p)| p == port)
            || allocated
                .iter()
                .any(|(n, p)| n != me && *p == port && !matches!(pinned.get(n), Some(Some(_))))
    };
    if let Some(port) = allocated.get(name) {
        if range.contains(port) && !taken(*port, name) {
            return Ok(*port);
        }
    }
    range
        .clone()
        .find(|p| !taken(*p, name))
        .ok_or_else(|| BrowserError::RangeExhausted {
            name: name.to_string(),
            start: *range.start(),
            end: *range.end(),
        })
}

/// The command line that starts Chromium for a profile. Chromium's sandbox
/// cannot run as root, so `--no-sandbox` is passed only when `as_root`.
pub fn chromium_args(user_data_dir: &Path, port: u16, as_root: bool) -> Vec<String> {
    let sandbox = as_root.then(|| "--no-sandbox".to_string());
    ["--headless=new".to_string()]
        .into_iter()
        .chain(sandbox)
        .chain([
            "--disable-gpu".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            format!("--user-data-dir={}", user_data_dir.display()),
            "--remote-debugging-address=127.0.0.1".into(),
            format!("--remote-debugging-port={port}"),
            "about:blank".into(),
        ])
        .collect()
}

/// Whether this process runs as root (where Chromium needs `--no-sandbox`).
fn running_as_root() -> bool {
    #[cfg(unix)]
    return rustix::process::geteuid().is_root();
    #[cfg(not(unix))]
    return false;
}

struct Running {
    child: Child,
    pid: Option<u32>,
    port: u16,
}

struct Inner {
    allocated: BTreeMap<String, u16>,
    loaded: bool,
    running: HashMap<String, Running>,
}

/// The browsers of one gateway.
pub struct Manager {
    spec: BrowserSpec,
    dir: PathBuf,
    start_timeout: Duration,
    /// The whole environment each browser starts with.
    env: ChildEnv,
    inner: Mutex<Inner>,
}

impl Manager {
    pub fn new(spec: BrowserSpec, dir: PathBuf, start_timeout: Duration, env: ChildEnv) -> Manager {
        Manager {
            spec,
            dir,
            start_timeout,
            env,
            inner: Mutex::new(Inner {
                allocated: BTreeMap::new(),
                loaded: false,
                running: HashMap::new(),
            }),
        }
    }

    fn profiles_path(&self) -> PathBuf {
        self.dir.join(PROFILES_FILE)
    }

    async fn load(&self, inner: &mut Inner) {
        if inner.loaded {
            return;
        }
        inner.loaded = true;
        // A missing or unreadable file means no allocations yet; ports are
        // then handed out again in order.
        if let Ok(text) = tokio::fs::read_to_string(self.profiles_path()).await {
            if let Ok(v) = serde_json::from_str::<Value>(&text) {
                if let Some(m) = v.get("profiles").and_then(Value::as_object) {
                    for (name, p) in m {
                        if let Some(port) = p
                            .get("cdpPort")
                            .and_then(Value::as_u64)
                            .and_then(|n| u16::try_from(n).ok())
                        {
                            inner.allocated.insert(name.clone(), port);
                        }
                    }
                }
            }
        }
    }

    async fn persist(&self, inner: &Inner) -> Result<(), BrowserError> {
        let profiles: serde_json::Map<String, Value> = inner
            .allocated
            .iter()
            .map(|(n, p)| (n.clone(), json!({"cdpPort": p})))
            .collect();
        let text = serde_json::to_string_pretty(&json!({"profiles": profiles}))
            .unwrap_or_else(|_| "{}".into());
        let path = self.profiles_path();
        let dir = self.dir.clone();
        let p2 = path.clone();
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            omniclaw_os::fsx::atomic_replace(&p2, text.as_bytes())
        })
        .await
        .map_err(|e| BrowserError::Persist {
            path: path.clone(),
            source: std::io::Error::other(e.to_string()),
        })?
        .map_err(|source| BrowserError::Persist { path, source })
    }

    /// Every known profile (configured, allocated, or running) with its port.
    pub async fn profiles(&self) -> Result<Vec<Value>, BrowserError> {
        let mut inner = self.inner.lock().await;
        self.load(&mut inner).await;
        let mut names: Vec<String> = self.spec.profiles.keys().cloned().collect();
        names.extend(inner.allocated.keys().cloned());
        if names.is_empty() {
            names.push(DEFAULT_PROFILE.to_string());
        }
        names.sort();
        names.dedup();
        let mut out = Vec::new();
        let mut changed = false;
        for name in names {
            let port = allocate(
                &name,
                &self.spec.profiles,
                &inner.allocated,
                &self.spec.cdp_range,
            )?;
            let pinned = matches!(self.spec.profiles.get(&name), Some(Some(_)));
            if !pinned && inner.allocated.get(&name) != Some(&port) {
                inner.allocated.insert(name.clone(), port);
                changed = true;
            }
            let running = inner.running.get(&name);
            out.push(json!({
                "name": name,
                "cdpPort": port,
                "pinned": pinned,
                "running": running.is_some(),
                "pid": running.and_then(|r| r.pid),
                "userDataDir": self.user_data_dir(&name).to_string_lossy(),
            }));
        }
        if changed {
            self.persist(&inner).await?;
        }
        Ok(out)
    }

    fn user_data_dir(&self, name: &str) -> PathBuf {
        self.dir.join(name).join("user-data")
    }

    /// Names of the profiles whose browser runs.
    pub async fn running(&self) -> Vec<String> {
        let mut inner = self.inner.lock().await;
        inner
            .running
            .retain(|_, r| matches!(r.child.try_wait(), Ok(None)));
        let mut names: Vec<String> = inner.running.keys().cloned().collect();
        names.sort();
        names
    }

    /// Starts Chromium for `name` (or returns the one already running) and
    /// waits until its CDP endpoint answers.
    pub async fn start(&self, name: &str) -> Result<Value, BrowserError> {
        if !valid_name(name) {
            return Err(BrowserError::BadName(name.to_string()));
        }
        let mut inner = self.inner.lock().await;
        self.load(&mut inner).await;
        if let Some(r) = inner.running.get_mut(name) {
            if matches!(r.child.try_wait(), Ok(None)) {
                let (port, pid) = (r.port, r.pid);
                let version = cdp_version(port).await.unwrap_or(Value::Null);
                return Ok(started_json(name, port, pid, version, true));
            }
            inner.running.remove(name);
        }
        let port = allocate(
            name,
            &self.spec.profiles,
            &inner.allocated,
            &self.spec.cdp_range,
        )?;
        if !matches!(self.spec.profiles.get(name), Some(Some(_)))
            && inner.allocated.get(name) != Some(&port)
        {
            inner.allocated.insert(name.to_string(), port);
            self.persist(&inner).await?;
        }
        let user_data = self.user_data_dir(name);
        tokio::fs::create_dir_all(&user_data)
            .await
            .map_err(|source| BrowserError::Persist {
                path: user_data.clone(),
                source,
            })?;
        let spawn_err = |source| BrowserError::Spawn {
            name: name.to_string(),
            executable: self.spec.executable.clone(),
            source,
        };
        let as_root = running_as_root();
        if as_root {
            tracing::warn!(
                profile = name,
                "the gateway runs as root, where Chromium's sandbox cannot run: starting it with --no-sandbox; run the gateway as a normal user to keep the sandbox"
            );
        }
        let mut cmd = Command::new(&self.spec.executable);
        cmd.args(chromium_args(&user_data, port, as_root))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        self.env.apply(cmd.as_std_mut());
        #[cfg(unix)]
        cmd.process_group(0);
        let mut child = cmd.spawn().map_err(spawn_err)?;
        let pid = child.id();
        let stderr_tail = Arc::new(StdMutex::new(VecDeque::new()));
        if let Some(stderr) = child.stderr.take() {
            let tail = stderr_tail.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Ok(mut t) = tail.lock() {
                        if t.len() == STDERR_LINES {
                            t.pop_front();
                        }
                        t.push_back(line);
                    }
                }
            });
        }
        let deadline = tokio::time::Instant::now() + self.start_timeout;
        let version = loop {
            if let Ok(Some(status)) = child.try_wait() {
                let stderr = stderr_tail
                    .lock()
                    .map(|t| t.iter().cloned().collect::<Vec<_>>().join("\n"))
                    .unwrap_or_default();
                return Err(BrowserError::Exited {
                    name: name.to_string(),
                    port,
                    status: status.to_string(),
                    stderr,
                });
            }
            if let Ok(v) = cdp_version(port).await {
                break v;
            }
            if tokio::time::Instant::now() >= deadline {
                terminate(&mut child, pid).await;
                return Err(BrowserError::Timeout {
                    name: name.to_string(),
                    port,
                    timeout: self.start_timeout,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        inner
            .running
            .insert(name.to_string(), Running { child, pid, port });
        Ok(started_json(name, port, pid, version, false))
    }

    /// Stops the browser this gateway started for `name`.
    pub async fn stop(&self, name: &str) -> Result<Value, BrowserError> {
        let running = self.inner.lock().await.running.remove(name);
        match running {
            Some(mut r) => {
                terminate(&mut r.child, r.pid).await;
                Ok(json!({"profile": name, "stopped": true, "pid": r.pid, "cdpPort": r.port}))
            }
            None => Err(BrowserError::NotRunning(name.to_string())),
        }
    }

    /// Stops every browser this gateway started.
    pub async fn stop_all(&self) {
        let all: Vec<Running> = self
            .inner
            .lock()
            .await
            .running
            .drain()
            .map(|(_, r)| r)
            .collect();
        let stops = all
            .into_iter()
            .map(|mut r| async move { terminate(&mut r.child, r.pid).await });
        futures_util::future::join_all(stops).await;
    }
}

fn started_json(name: &str, port: u16, pid: Option<u32>, version: Value, already: bool) -> Value {
    json!({
        "profile": name,
        "cdpPort": port,
        "cdpUrl": format!("http://127.0.0.1:{port}"),
        "pid": pid,
        "alreadyRunning": already,
        "version": version,
    })
}

#[cfg(unix)]
fn signal_group(pid: u32, signal: i32) {
    if let Ok(pid) = i32::try_from(pid) {
        // SAFETY: kill(2) with a negative pid signals the process group we
        // created for this browser (process_group(0) at spawn); it touches no
        // memory of ours.
        unsafe {
            libc::kill(-pid, signal);
        }
    }
}

/// Asks the browser (and its helper processes) to exit, then kills them.
async fn terminate(child: &mut Child, pid: Option<u32>) {
    #[cfg(unix)]
    if let Some(pid) = pid {
        signal_group(pid, libc::SIGTERM);
        if tokio::time::timeout(Duration::from_millis(800), child.wait())
            .await
            .is_ok()
        {
            // Helpers may outlive the main process briefly; make sure.
            signal_group(pid, libc::SIGKILL);
            return;
        }
        signal_group(pid, libc::SIGKILL);
    }
    #[cfg(not(unix))]
    let _ = pid;
    let _ = child.kill().await;
}

/// `GET /json/version` on a CDP port.
pub async fn cdp_version(port: u16) -> std::io::Result<Value> {
    let (status, body) = http_get(port, "/json/version", &Auth::None).await?;
    if status != 200 {
        return Err(std::io::Error::other(format!("CDP answered {status}")));
    }
    serde_json::from_slice(&body).map_err(std::io::Error::other)
}

/// A minimal HTTP/1.1 GET on loopback, for CDP's JSON endpoints and the
/// browser control service (which needs the gateway's `auth`).
pub async fn http_get(port: u16, path: &str, auth: &Auth) -> std::io::Result<(u16, Vec<u8>)> {
    let authorization = match auth {
        Auth::Token(s) | Auth::Password(s) => format!("Authorization: Bearer {s}\r\n"),
        Auth::None => String::new(),
    };
    let work = async {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{authorization}Connection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = s.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some((head, body)) = split_response(&buf) {
                if let Some(len) = content_length(head) {
                    if body.len() >= len {
                        break;
                    }
                }
            }
        }
        let bad = || std::io::Error::other("malformed HTTP response");
        let (head, body) = split_response(&buf).ok_or_else(bad)?;
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(bad)?;
        let body = match content_length(head) {
            Some(len) => body[..len.min(body.len())].to_vec(),
            None => body.to_vec(),
        };
        Ok((status, body))
    };
    tokio::time::timeout(Duration::from_secs(2), work)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "CDP did not answer"))?
}

fn split_response(buf: &[u8]) -> Option<(&str, &[u8])> {
    let at = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&buf[..at]).ok()?;
    Some((head, &buf[at + 4..]))
}

fn content_length(head: &str) -> Option<usize> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse().ok())?
    })
}

#[derive(Deserialize)]
struct ProfileParam {
    profile: Option<String>,
}

type Shared = Option<Arc<Manager>>;

/// What the guard of the control service checks requests against.
pub(crate) struct Guard {
    /// The gateway's credentials as they are now (a reload may change them).
    pub live: Arc<Live>,
    /// The gateway's failed-authentication record, shared with the WebSocket.
    pub limiter: Arc<StdMutex<Limiter>>,
    /// The port this service listens on (its `Host` must name it).
    pub port: u16,
}

/// The control service's routes, behind [`guard`].
pub(crate) fn router(manager: Shared, guard: Arc<Guard>) -> Router {
    Router::new()
        .route("/", get(status))
        .route("/profiles", get(profiles))
        .route("/start", post(start))
        .route("/stop", post(stop))
        .fallback(crate::http::not_found)
        .with_state(manager)
        .layer(axum::middleware::from_fn_with_state(guard, check))
}

fn refused(status: StatusCode, message: String) -> Response {
    let mut res = (status, Json(json!({"ok": false, "error": message}))).into_response();
    if status == StatusCode::UNAUTHORIZED {
        res.headers_mut().insert(
            axum::http::header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Bearer"),
        );
    }
    res
}

/// Refuses web pages, foreign hosts and requests without the gateway's
/// credentials; wrong credentials are answered late, as on the WebSocket.
async fn check(
    State(g): State<Arc<Guard>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    let headers = req.headers();
    if let Some(what) = guard::web_page(headers) {
        return refused(
            StatusCode::FORBIDDEN,
            format!("refused: the browser control service answers programs on this machine, not web pages ({what})"),
        );
    }
    if let Err(Refusal::ForeignHost(host)) = guard::loopback_host(headers, g.port) {
        return refused(
            StatusCode::FORBIDDEN,
            format!(
                "refused: Host {host} is not this browser control service; address it as 127.0.0.1:{}",
                g.port
            ),
        );
    }
    if let Err(Refusal::Unauthorized { presented }) = guard::credentials(headers, &g.live.auth()) {
        let mode = g.live.auth().mode();
        if presented {
            let failure = crate::auth::lock(&g.limiter).fail(Client::of(peer.ip()), Instant::now());
            crate::auth::log_failure("browser control", Client::of(peer.ip()), mode, &failure);
            tokio::time::sleep(failure.delay).await;
        }
        return refused(
            StatusCode::UNAUTHORIZED,
            format!(
                "unauthorized: the browser control service needs this gateway's {mode}: send `Authorization: Bearer <gateway.auth.{mode}>`"
            ),
        );
    }
    next.run(req).await
}

fn error(e: BrowserError) -> Response {
    (
        e.status(),
        Json(json!({"ok": false, "error": e.to_string()})),
    )
        .into_response()
}

fn disabled() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"ok": false, "error": "the browser is disabled: set browser.enabled: true"})),
    )
        .into_response()
}

async fn status(State(m): State<Shared>) -> Response {
    let Some(m) = m else {
        return Json(json!({"enabled": false})).into_response();
    };
    Json(json!({
        "enabled": true,
        "running": m.running().await,
        "cdpPortRange": {"start": m.spec.cdp_range.start(), "end": m.spec.cdp_range.end()},
        "executable": m.spec.executable.to_string_lossy(),
    }))
    .into_response()
}

async fn profiles(State(m): State<Shared>) -> Response {
    let Some(m) = m else { return disabled() };
    match m.profiles().await {
        Ok(p) => Json(json!({"profiles": p})).into_response(),
        Err(e) => error(e),
    }
}

async fn start(State(m): State<Shared>, Query(q): Query<ProfileParam>) -> Response {
    let Some(m) = m else { return disabled() };
    let name = q.profile.unwrap_or_else(|| DEFAULT_PROFILE.to_string());
    match m.start(&name).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => error(e),
    }
}

async fn stop(State(m): State<Shared>, Query(q): Query<ProfileParam>) -> Response {
    let Some(m) = m else { return disabled() };
    let name = q.profile.unwrap_or_else(|| DEFAULT_PROFILE.to_string());
    match m.stop(&name).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(
        name: &str,
        pinned: &[(&str, Option<u16>)],
        allocated: &[(&str, u16)],
        expected: Result<u16, &str>,
    ) {
        let pinned: BTreeMap<String, Option<u16>> =
            pinned.iter().map(|(n, p)| (n.to_string(), *p)).collect();
        let allocated: BTreeMap<String, u16> =
            allocated.iter().map(|(n, p)| (n.to_string(), *p)).collect();
        let got = allocate(name, &pinned, &allocated, &(100..=102)).map_err(|e| e.to_string());
        assert_eq!(got, expected.map_err(str::to_string), "{name}");
    }

    #[test]
    fn allocation_table() {
        check("a", &[], &[], Ok(100));
        check("b", &[], &[("a", 100)], Ok(101));
        check("a", &[], &[("a", 102)], Ok(102));
        check("b", &[("a", Some(100))], &[], Ok(101));
        check("a", &[("a", Some(5000))], &[], Ok(5000));
        check("b", &[], &[("b", 100), ("a", 100)], Ok(101));
        check("x", &[], &[("a", 90)], Ok(100));
        check(
            "d",
            &[],
            &[("a", 100), ("b", 101), ("c", 102)],
            Err("no free CDP port for browser profile \"d\": all of 100..=102 are taken; move browser.cdpPortRangeStart or pin browser.profiles.d.cdpPort"),
        );
        check(
            "b",
            &[("a", Some(7)), ("b", Some(7))],
            &[],
            Err("browser profile \"b\" is pinned to CDP port 7, which profile \"a\" already uses: give each profile its own browser.profiles.<name>.cdpPort"),
        );
    }

    #[test]
    fn names() {
        for (name, ok) in [
            ("default", true),
            ("work-2", true),
            ("", false),
            ("Work", false),
            ("../x", false),
            ("-a", false),
        ] {
            assert_eq!(valid_name(name), ok, "{name}");
        }
    }

    #[test]
    fn chromium_flags() {
        let args = chromium_args(Path::new("/s/browser/default/user-data"), 18800, false);
        assert!(args.contains(&"--headless=new".to_string()));
        assert!(!args.contains(&"--no-sandbox".to_string()), "{args:?}");
        assert!(args.contains(&"--user-data-dir=/s/browser/default/user-data".to_string()));
        assert!(args.contains(&"--remote-debugging-port=18800".to_string()));
        assert!(args.contains(&"--remote-debugging-address=127.0.0.1".to_string()));
    }

    #[test]
    fn the_sandbox_is_off_only_as_root() {
        let dir = Path::new("/root/.omniclaw/browser/default/user-data");
        let as_root = chromium_args(dir, 18800, true);
        assert_eq!(
            as_root.iter().filter(|a| *a == "--no-sandbox").count(),
            1,
            "{as_root:?}"
        );
        let mut without = as_root.clone();
        without.retain(|a| a != "--no-sandbox");
        assert_eq!(without, chromium_args(dir, 18800, false));
    }

    #[test]
    fn http_parsing() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}extra";
        let (head, body) = split_response(raw).expect("split");
        assert_eq!(content_length(head), Some(2));
        assert_eq!(&body[..2], b"{}");
        assert_eq!(split_response(b"HTTP/1.1 200"), None);
    }

    #[tokio::test]
    async fn allocations_persist_across_managers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spec = BrowserSpec {
            enabled: true,
            control_port: 1,
            cdp_range: 200..=300,
            profiles: [
                ("work".to_string(), None),
                ("pinned".to_string(), Some(9000)),
            ]
            .into_iter()
            .collect(),
            executable: PathBuf::from("chromium"),
        };
        let m = Manager::new(
            spec.clone(),
            dir.path().to_path_buf(),
            Duration::from_secs(1),
            ChildEnv::default(),
        );
        let first = m.profiles().await.expect("profiles");
        let ports: Vec<(String, u64)> = first
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().expect("n").to_string(),
                    p["cdpPort"].as_u64().expect("p"),
                )
            })
            .collect();
        assert_eq!(ports, vec![("pinned".into(), 9000), ("work".into(), 200)]);
        let saved = std::fs::read_to_string(dir.path().join(PROFILES_FILE)).expect("saved");
        assert!(saved.contains("\"work\""), "{saved}");
        assert!(
            !saved.contains("pinned"),
            "pinned ports are config, not state: {saved}"
        );

        // A new profile allocated later keeps its port in a new manager even
        // when config now names an earlier one.
        let mut spec2 = spec;
        spec2.profiles.insert("alpha".into(), None);
        std::fs::write(
            dir.path().join(PROFILES_FILE),
            r#"{"profiles":{"work":{"cdpPort":200},"zed":{"cdpPort":201}}}"#,
        )
        .expect("write");
        let m2 = Manager::new(
            spec2,
            dir.path().to_path_buf(),
            Duration::from_secs(1),
            ChildEnv::default(),
        );
        let got: BTreeMap<String, u64> = m2
            .profiles()
            .await
            .expect("profiles")
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().expect("n").to_string(),
                    p["cdpPort"].as_u64().expect("p"),
                )
            })
            .collect();
        assert_eq!(got.get("work"), Some(&200));
        assert_eq!(got.get("zed"), Some(&201));
        assert_eq!(got.get("alpha"), Some(&202));
    }

    #[tokio::test]
    async fn stopping_an_unknown_profile_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let m = Manager::new(
            BrowserSpec {
                enabled: true,
                control_port: 1,
                cdp_range: 200..=300,
                profiles: BTreeMap::new(),
                executable: PathBuf::from("chromium"),
            },
            dir.path().to_path_buf(),
            Duration::from_secs(1),
            ChildEnv::default(),
        );
        let err = m.stop("default").await.expect_err("nothing runs");
        assert_eq!(err.status(), StatusCode::NOT_FOUND);
        let err = m.start("Bad Name").await.expect_err("bad name");
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    }
}
