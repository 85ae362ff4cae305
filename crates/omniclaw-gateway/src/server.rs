//! Binding and serving one gateway: all listeners first, then the servers.
//!
//! [`Gateway::bind`] takes every port before anything serves, so a clash
//! leaves nothing half-started. [`Bound::serve`] runs the three servers
//! until the shutdown future resolves, then stops gracefully: a `shutdown`
//! event and a close frame to every client, listeners closed, browsers we
//! started stopped, all within [`crate::Limits::shutdown_grace`].

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener as StdListener};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use omniclaw_os::lock::{InstanceLock, Owner};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::auth::Limiter;
use crate::browser::Manager;
use crate::error::{RunError, StartError, Surface};
use crate::listen::Admission;
use crate::reload::Live;
use crate::spec::{Auth, GatewaySpec};

/// Where each surface actually listens (port 0 in a spec becomes a real port here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addrs {
    pub gateway: SocketAddr,
    pub browser_control: Option<SocketAddr>,
    pub canvas: Option<SocketAddr>,
}

/// Why a running gateway stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("the {surface} listener on {addr} failed: {source}")]
    Listener {
        surface: Surface,
        addr: SocketAddr,
        source: io::Error,
    },
    #[error("the gateway is down after a config change: {reason}; fix the config (or `config rollback`) and start it again")]
    Rebind { reason: String },
}

/// Entry point for binding a gateway.
pub struct Gateway;

/// A gateway whose listeners are all bound; nothing is served yet.
#[derive(Debug)]
pub struct Bound {
    spec: GatewaySpec,
    addrs: Addrs,
    gateway: StdListener,
    control: Option<StdListener>,
    canvas: Option<StdListener>,
}

impl Gateway {
    /// The checks [`Gateway::bind`] makes before it takes a port, for
    /// callers that want to refuse bad input before anything else.
    pub fn check(spec: &GatewaySpec) -> Result<(), StartError> {
        check_spec(spec)
    }

    /// Checks the spec and binds every listener. On any failure every
    /// listener bound so far is closed again before the error returns.
    pub fn bind(spec: GatewaySpec) -> Result<Bound, StartError> {
        check_spec(&spec)?;
        let gateway_addr = SocketAddr::new(spec.bind, spec.port);
        let gateway = listen(gateway_addr, Surface::Gateway)?;
        let control = if spec.browser.enabled {
            let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), spec.browser.control_port);
            Some(listen(addr, Surface::BrowserControl)?)
        } else {
            None
        };
        let canvas = if spec.canvas.enabled {
            Some(listen(
                SocketAddr::new(spec.bind, spec.canvas.port),
                Surface::Canvas,
            )?)
        } else {
            None
        };
        let local = |l: &StdListener, surface: Surface, fallback: SocketAddr| {
            l.local_addr().map_err(|source| StartError::Bind {
                addr: fallback,
                surface,
                source,
            })
        };
        let addrs = Addrs {
            gateway: local(&gateway, Surface::Gateway, gateway_addr)?,
            browser_control: match &control {
                Some(l) => Some(local(l, Surface::BrowserControl, gateway_addr)?),
                None => None,
            },
            canvas: match &canvas {
                Some(l) => Some(local(l, Surface::Canvas, gateway_addr)?),
                None => None,
            },
        };
        Ok(Bound {
            spec,
            addrs,
            gateway,
            control,
            canvas,
        })
    }
}

/// What makes a spec unservable before a port is taken: missing or weak
/// credentials for its bind, ports that clash. Also checked before a
/// reloaded config is applied in place.
pub(crate) fn check_spec(spec: &GatewaySpec) -> Result<(), StartError> {
    if !spec.bind.is_loopback() {
        if let Auth::Token(s) | Auth::Password(s) = &spec.auth {
            if let Some(why) = crate::auth::weakness(s) {
                return Err(StartError::WeakSecret {
                    mode: spec.auth.mode(),
                    addr: spec.bind,
                    why,
                });
            }
        }
    }
    match &spec.auth {
        Auth::Token(s) if s.is_empty() => return Err(StartError::EmptySecret { mode: "token" }),
        Auth::Password(s) if s.is_empty() => {
            return Err(StartError::EmptySecret { mode: "password" })
        }
        Auth::None if !spec.bind.is_loopback() => {
            return Err(StartError::InsecureBind { addr: spec.bind })
        }
        _ => {}
    }
    let mut ports = vec![(Surface::Gateway, spec.port)];
    if spec.browser.enabled {
        ports.push((Surface::BrowserControl, spec.browser.control_port));
    }
    if spec.canvas.enabled {
        ports.push((Surface::Canvas, spec.canvas.port));
    }
    for (i, (first, a)) in ports.iter().enumerate() {
        for (second, b) in &ports[i + 1..] {
            if *a != 0 && a == b {
                return Err(StartError::SamePort {
                    port: *a,
                    first: *first,
                    second: *second,
                });
            }
        }
    }
    if spec.browser.enabled {
        let range = &spec.browser.cdp_range;
        let (start, end) = (*range.start(), *range.end());
        if range.is_empty() {
            return Err(StartError::CdpRange {
                start,
                end,
                port: start,
                surface: Surface::BrowserControl,
            });
        }
        if let Some((surface, port)) = ports.iter().find(|(_, p)| *p != 0 && range.contains(p)) {
            return Err(StartError::CdpRange {
                start,
                end,
                port: *port,
                surface: *surface,
            });
        }
    }
    Ok(())
}

fn listen(addr: SocketAddr, surface: Surface) -> Result<StdListener, StartError> {
    bind_listener(addr).map_err(|source| {
        if source.kind() == io::ErrorKind::AddrInUse {
            StartError::PortInUse {
                port: addr.port(),
                surface,
                holder: omniclaw_os::portowner::holder(addr.port()),
            }
        } else {
            StartError::Bind {
                addr,
                surface,
                source,
            }
        }
    })
}

/// Connections the kernel may queue on a listener before `accept` (capped
/// by the system's own limit, `net.core.somaxconn` on Linux).
const BACKLOG: i32 = 1024;

/// A non-blocking listener on `addr` with a backlog of [`BACKLOG`]. The
/// standard library listens with 128: a burst of clients connecting at once
/// (many reconnecting after a restart) overflows it, and every dropped SYN
/// costs its client a 1 s retransmit. Like the standard library, Unix
/// listeners reuse an address still in TIME_WAIT; on Windows that option
/// would let another program take the port, so it stays off there.
fn bind_listener(addr: SocketAddr) -> io::Result<StdListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Gateway-wide events fanned out to every connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Broadcast {
    Tick,
    /// Health changed (a reload applied or was refused): push a `health` event.
    Health,
}

/// State shared by every handler of one gateway.
pub(crate) struct Shared {
    pub spec: GatewaySpec,
    /// What a hot reload may change while serving: auth, reload status.
    pub live: Arc<Live>,
    pub addrs: Addrs,
    pub started: Instant,
    pub boot_id: String,
    pub events: tokio::sync::broadcast::Sender<Broadcast>,
    /// Failed authentications per client, shared with the browser control.
    pub limiter: Arc<Mutex<Limiter>>,
    pub gateway_up: AtomicBool,
    pub control_up: AtomicBool,
    pub canvas_up: AtomicBool,
    pub connections: AtomicUsize,
    pub health_version: AtomicU64,
    /// Serializes `config.patch` so two patches never race on one base hash.
    pub config_lock: tokio::sync::Mutex<()>,
    /// Flips to `true` on graceful stop; its sender drops if the gateway dies.
    pub stopping: watch::Receiver<bool>,
}

impl Shared {
    pub fn uptime_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Surfaces that are enabled but not serving.
    pub fn failing(&self) -> Vec<Surface> {
        let mut out = Vec::new();
        if !self.gateway_up.load(Ordering::Relaxed) {
            out.push(Surface::Gateway);
        }
        if self.addrs.browser_control.is_some() && !self.control_up.load(Ordering::Relaxed) {
            out.push(Surface::BrowserControl);
        }
        if self.addrs.canvas.is_some() && !self.canvas_up.load(Ordering::Relaxed) {
            out.push(Surface::Canvas);
        }
        out
    }

    fn set_up(&self, up: bool) {
        self.gateway_up.store(up, Ordering::Relaxed);
        self.control_up.store(
            up && self.addrs.browser_control.is_some(),
            Ordering::Relaxed,
        );
        self.canvas_up
            .store(up && self.addrs.canvas.is_some(), Ordering::Relaxed);
    }
}

/// What every gateway handler gets: the shared state and a guard whose
/// clones tell the graceful stop when the last connection has ended.
#[derive(Clone)]
pub(crate) struct AppState {
    pub shared: Arc<Shared>,
    pub tracker: mpsc::Sender<()>,
}

impl Bound {
    /// Where each surface listens.
    pub fn addrs(&self) -> Addrs {
        self.addrs
    }

    pub fn spec(&self) -> &GatewaySpec {
        &self.spec
    }

    /// Serves until `shutdown` resolves, then stops gracefully.
    ///
    /// Must run inside a Tokio runtime. Dropping the returned future instead
    /// (for example when its task panics or is aborted) closes the
    /// listeners, makes every open connection close itself, and kills the
    /// browsers this gateway started.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), ServeError> {
        let live = Live::new(self.spec.auth.clone());
        self.serve_live(shutdown, live).await
    }

    /// Like [`Bound::serve`], with the hot-reloadable state handed in: a
    /// reloader keeps `live` and changes auth or reports a refused edit
    /// while this serves. `live`'s auth replaces the spec's.
    pub async fn serve_live(
        self,
        shutdown: impl Future<Output = ()> + Send,
        live: Arc<Live>,
    ) -> Result<(), ServeError> {
        let Bound {
            spec,
            addrs,
            gateway,
            control,
            canvas,
        } = self;
        let to_tokio = |l: StdListener, surface: Surface, addr: SocketAddr| {
            TcpListener::from_std(l).map_err(|source| ServeError::Listener {
                surface,
                addr,
                source,
            })
        };
        let gateway = to_tokio(gateway, Surface::Gateway, addrs.gateway)?;
        let control = match (control, addrs.browser_control) {
            (Some(l), Some(a)) => Some(to_tokio(l, Surface::BrowserControl, a)?),
            _ => None,
        };
        let canvas = match (canvas, addrs.canvas) {
            (Some(l), Some(a)) => Some(to_tokio(l, Surface::Canvas, a)?),
            _ => None,
        };

        let (stop_tx, stop_rx) = watch::channel(false);
        let events = live.events.clone();
        let (tracker, mut tracked) = mpsc::channel::<()>(1);
        let browser = spec.browser.enabled.then(|| {
            Arc::new(Manager::new(
                spec.browser.clone(),
                spec.browser_dir(),
                spec.limits.browser_start_timeout,
                spec.child_env.clone(),
            ))
        });
        let limiter = Arc::new(Mutex::new(Limiter::new(
            spec.limits.max_auth_failures,
            spec.limits.auth_failure_window,
            spec.limits.max_auth_delay,
        )));
        let admission = Admission {
            cap: spec.limits.max_unauthenticated,
            header_timeout: spec.limits.header_timeout,
        };
        let tick = spec.limits.tick_interval;
        let grace = spec.limits.shutdown_grace;
        let canvas_root = spec.canvas.root.clone();
        let shared = Arc::new(Shared {
            spec,
            live,
            addrs,
            started: Instant::now(),
            boot_id: uuid::Uuid::new_v4().to_string(),
            events,
            limiter: limiter.clone(),
            gateway_up: AtomicBool::new(false),
            control_up: AtomicBool::new(false),
            canvas_up: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
            health_version: AtomicU64::new(1),
            config_lock: tokio::sync::Mutex::new(()),
            stopping: stop_rx.clone(),
        });

        let app = crate::http::router(AppState {
            shared: shared.clone(),
            tracker: tracker.clone(),
        });
        // Frames are small request/response pairs: never wait to coalesce them.
        let gateway_server = crate::listen::serve(gateway, app, admission, true, stop_rx.clone());
        let control_server = control.map(|l| {
            let guard = Arc::new(crate::browser::Guard {
                live: shared.live.clone(),
                limiter: limiter.clone(),
                port: addrs.browser_control.map_or(0, |a| a.port()),
            });
            let router = crate::browser::router(browser.clone(), guard);
            crate::listen::serve(l, router, admission, false, stop_rx.clone())
        });
        let canvas_server = canvas.map(|l| {
            let router = crate::canvas::router(canvas_root);
            crate::listen::serve(l, router, admission, false, stop_rx.clone())
        });
        let servers = async move {
            let control = async {
                if let Some(f) = control_server {
                    f.await;
                }
            };
            let canvas = async {
                if let Some(f) = canvas_server {
                    f.await;
                }
            };
            tokio::join!(gateway_server, control, canvas);
        };
        tokio::pin!(servers);

        let ticker = {
            let shared = shared.clone();
            async move {
                let mut every = tokio::time::interval_at(tokio::time::Instant::now() + tick, tick);
                loop {
                    every.tick().await;
                    // No receivers is fine: nobody is connected.
                    let _ = shared.events.send(Broadcast::Tick);
                }
            }
        };

        shared.set_up(true);
        // The servers end only once told to stop, so this waits for the
        // shutdown future (the ticker never ends).
        let ended = tokio::select! {
            () = &mut servers => true,
            () = shutdown => false,
            () = ticker => false,
        };
        shared.set_up(false);
        let _ = stop_tx.send(true);
        drop(tracker);
        let drain = async {
            if !ended {
                (&mut servers).await;
            }
            while tracked.recv().await.is_some() {}
        };
        let _ = tokio::time::timeout(grace, drain).await;
        if let Some(b) = &browser {
            b.stop_all().await;
        }
        Ok(())
    }
}

/// Takes the instance lock at `lock_path` (a second start of the same
/// profile fails with "already running (pid N, owner)"), binds, and serves
/// until `shutdown` resolves. The lock is released when this returns.
pub async fn run(
    spec: GatewaySpec,
    lock_path: &Path,
    owner: Owner,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), RunError> {
    let lock = InstanceLock::acquire(lock_path, owner).map_err(|source| RunError::Locked {
        profile: spec.profile.clone(),
        source,
    })?;
    let bound = Gateway::bind(spec)?;
    let result = bound.serve(shutdown).await;
    drop(lock);
    Ok(result?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn spec(port: u16) -> GatewaySpec {
        GatewaySpec::new(
            "main",
            PathBuf::from("/nonexistent/c.json"),
            PathBuf::from("/nonexistent/s"),
            PathBuf::from("/nonexistent/w"),
            port,
        )
    }

    fn check(mutate: impl FnOnce(&mut GatewaySpec), expected: Result<(), &str>) {
        let mut s = spec(18789);
        mutate(&mut s);
        let got = check_spec(&s).map_err(|e| e.to_string());
        assert_eq!(got, expected.map_err(str::to_string));
    }

    #[test]
    fn spec_checks() {
        check(|_| {}, Ok(()));
        check(
            |s| s.bind = "0.0.0.0".parse().expect("ip"),
            Err("refusing to bind the gateway to 0.0.0.0 without authentication: set gateway.auth.mode to token or password (with gateway.auth.token or gateway.auth.password), or use gateway.bind: loopback"),
        );
        check(
            |s| {
                s.bind = "0.0.0.0".parse().expect("ip");
                s.auth = Auth::Token("3f9c2a7be1d04c58a6f2e9b07d1c4a3e85b2f6d9c0e7a4b1".into());
            },
            Ok(()),
        );
        check(
            |s| {
                s.bind = "0.0.0.0".parse().expect("ip");
                s.auth = Auth::Token("x".into());
            },
            Err("gateway.auth.token is too weak for a gateway bound to 0.0.0.0: it has 1 characters, fewer than 16. Anyone who can reach that address can try tokens, so a non-loopback bind needs one of at least 16 random characters (or a long passphrase): generate one with `openssl rand -hex 24` and pass it (--token) or store it in gateway.auth.token, or use gateway.bind: loopback"),
        );
        check(
            |s| {
                s.bind = "192.168.1.10".parse().expect("ip");
                s.auth = Auth::Password("   ".into());
            },
            Err("gateway.auth.password is too weak for a gateway bound to 192.168.1.10: it has 3 characters, fewer than 16. Anyone who can reach that address can try passwords, so a non-loopback bind needs one of at least 16 random characters (or a long passphrase): generate one with `openssl rand -hex 24` and pass it (--password) or store it in gateway.auth.password, or use gateway.bind: loopback"),
        );
        // Loopback: the user's own choice.
        check(|s| s.auth = Auth::Token("x".into()), Ok(()));
        check(
            |s| s.auth = Auth::Token(String::new()),
            Err("gateway.auth.token is empty: set a non-empty token, or use gateway.auth.mode: none on a loopback bind"),
        );
        check(
            |s| s.canvas.port = 18789,
            Err("the gateway and the canvas host are both set to port 18789: give each surface its own port (gateway.port (or --port) / canvasHost.port)"),
        );
        check(|s| s.canvas.enabled = false, Ok(()));
        check(
            |s| s.browser.cdp_range = 18780..=18800,
            Err("browser CDP range 18780..=18800 is empty or contains port 18789 of the gateway: move browser.cdpPortRangeStart"),
        );
        check(
            |s| {
                s.browser.enabled = false;
                s.browser.cdp_range = 18780..=18800;
            },
            Ok(()),
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn listeners_queue_a_burst_of_connections() {
        let l = listen("127.0.0.1:0".parse().expect("addr"), Surface::Gateway).expect("listen");
        let port = l.local_addr().expect("addr").port();
        // For a listening socket, `ss -lt` shows the backlog as its Send-Q.
        let out = std::process::Command::new("ss")
            .args(["-ltnH", &format!("sport = :{port}")])
            .output();
        let Ok(out) = out else {
            // No `ss` on this machine: nothing to read the backlog with.
            return;
        };
        let text = String::from_utf8_lossy(&out.stdout);
        let backlog: Option<u32> = text.split_whitespace().nth(2).and_then(|n| n.parse().ok());
        let cap = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .unwrap_or(128);
        assert_eq!(backlog, Some(cap.min(BACKLOG as u32)), "ss said: {text}");
    }

    #[test]
    fn bind_failure_releases_every_listener() {
        let blocker = StdListener::bind("127.0.0.1:0").expect("bind");
        let taken = blocker.local_addr().expect("addr").port();
        let free = |_: ()| {
            let l = StdListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let mut s = spec(free(()));
        s.browser.control_port = free(());
        s.browser.cdp_range = 1..=2;
        s.canvas.port = taken;
        let err = Gateway::bind(s.clone()).expect_err("canvas port is taken");
        match err {
            StartError::PortInUse { port, surface, .. } => {
                assert_eq!((port, surface), (taken, Surface::Canvas));
            }
            other => panic!("unexpected {other}"),
        }
        // The two ports bound before the failure are free again.
        StdListener::bind(("127.0.0.1", s.port)).expect("gateway port released");
        StdListener::bind(("127.0.0.1", s.browser.control_port)).expect("control port released");
    }
}
