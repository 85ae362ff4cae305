//! Remote gateways on disk and their SSH tunnels.
//!
//! `~/.omniclaw/remotes.json` lists them (read and changed under its lock,
//! written atomically, as configs are); `~/.omniclaw/remotes/NAME/` holds a
//! remote's own `known_hosts` (the one host key accepted for it) and, when
//! the user keeps secrets in files, its `secrets.json`. A tunnel is an
//! `ssh -N -L` child process started from an argument vector (never
//! through a shell); [`Tunnel::open`] starts one and waits for its local
//! port, [`Supervisor`] keeps one up, restarting it with the core's
//! backoff when `ssh` dies; the clock and the way a tunnel is started are
//! handed in, so the restart timing is tested without waiting.
//!
//! This module never holds a secret: the token is in the secret store.

use std::fs;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use omniclaw_core::remote::SshTarget;
use omniclaw_core::remotes::{RemoteError, Remotes, SshTunnel, FILE};
use omniclaw_core::tunnel::{ssh_args, TunnelAction, TunnelEvent, TunnelState};

use crate::fsx;
use crate::secrets::Scope;

/// `<home>/.omniclaw`, where OmniClaw keeps what belongs to no profile.
pub fn omniclaw_dir(home: &Path) -> PathBuf {
    home.join(".omniclaw")
}

/// `<home>/.omniclaw/remotes.json`.
pub fn file(home: &Path) -> PathBuf {
    omniclaw_dir(home).join(FILE)
}

/// `<home>/.omniclaw/remotes/NAME`: the remote's known-hosts file and, in
/// file mode, its secrets.
pub fn dir(home: &Path, name: &str) -> PathBuf {
    omniclaw_dir(home).join("remotes").join(name)
}

/// The remote's own known-hosts file.
pub fn known_hosts(home: &Path, name: &str) -> PathBuf {
    dir(home, name).join("known_hosts")
}

/// The secret store scope of a remote: its own, beside no profile's
/// (account `remote-NAME/…`, file store in its directory).
pub fn scope(home: &Path, name: &str) -> Scope {
    Scope::new(format!("remote-{name}"), dir(home, name))
}

/// Why the remotes file could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Remote(#[from] RemoteError),
    #[error("cannot {action} {path}: {source}; check that the directory is writable", path = path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        source: io::Error,
    },
}

/// Every remote; none when the file does not exist.
pub fn load(home: &Path) -> Result<Remotes, StoreError> {
    let path = file(home);
    match fs::read_to_string(&path) {
        Ok(text) => Ok(Remotes::parse(&text, &path.display().to_string())?),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Remotes::default()),
        Err(source) => Err(StoreError::Io {
            path,
            action: "read",
            source,
        }),
    }
}

/// Changes the remotes under the file's lock: `change` gets them as they
/// are now (read under the lock) and either changes them, which is
/// written atomically, or refuses, which writes nothing.
pub fn update<T>(
    home: &Path,
    change: impl FnOnce(&mut Remotes) -> Result<T, RemoteError>,
) -> Result<T, StoreError> {
    let path = file(home);
    let shown = path.display().to_string();
    let dir = omniclaw_dir(home);
    fsx::create_private_dir(&dir).map_err(|source| StoreError::Io {
        path: dir,
        action: "create",
        source,
    })?;
    let result = fsx::update(&path, fsx::Options::with_backup(), |current| {
        let mut remotes = match current {
            None => Remotes::default(),
            Some(bytes) => Remotes::parse(&String::from_utf8_lossy(bytes), &shown)?,
        };
        let value = change(&mut remotes)?;
        Ok::<_, RemoteError>((Some(remotes.render().into_bytes()), value))
    });
    result.map_err(|e| match e {
        fsx::UpdateError::Refused(e) => StoreError::Remote(e),
        fsx::UpdateError::Io {
            path,
            action,
            source,
        } => StoreError::Io {
            path,
            action,
            source,
        },
    })
}

/// The local ports the remotes' tunnels take: a new profile's ports step
/// over them. A remotes file that cannot be read reserves nothing (the
/// `remote` commands say what is wrong with it).
pub fn tunnel_ports(home: &Path) -> Vec<u16> {
    load(home)
        .map(|r| r.tunnel_ports().iter().map(|(p, _)| *p).collect())
        .unwrap_or_default()
}

/// One host key a server offered: its known-hosts line and fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKey {
    /// `[host]:port ssh-ed25519 AAAA…` (`host ssh-ed25519 …` on port 22).
    pub line: String,
    /// `SHA256:…`, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
    /// `ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`.
    pub key_type: String,
}

/// Why a server's host keys could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("cannot run {program}: {source}; install OpenSSH's client tools (Debian: apt install openssh-client)")]
    Spawn {
        program: &'static str,
        source: io::Error,
    },
    #[error("{target} offered no host key (ssh-keyscan said: {said}): check that an SSH server listens there and the port is right")]
    NoKey { target: String, said: String },
}

/// The host keys `target` offers, each with its SHA256 fingerprint
/// (`ssh-keyscan`, then `ssh-keygen -l` on each key).
pub fn scan(target: &SshTarget) -> Result<Vec<HostKey>, ScanError> {
    let out = Command::new("ssh-keyscan")
        .args(["-T", "5", "-p", &target.port.to_string(), &target.host])
        .stdin(Stdio::null())
        .output()
        .map_err(|source| ScanError::Spawn {
            program: "ssh-keyscan",
            source,
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut keys = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let Some(key_type) = line.split_whitespace().nth(1) else {
            continue;
        };
        if let Some(fingerprint) = fingerprint(line)? {
            keys.push(HostKey {
                line: line.to_string(),
                fingerprint,
                key_type: key_type.to_string(),
            });
        }
    }
    if keys.is_empty() {
        let said = String::from_utf8_lossy(&out.stderr);
        let said: Vec<&str> = said
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .collect();
        return Err(ScanError::NoKey {
            target: target.to_string(),
            said: if said.is_empty() {
                "nothing".into()
            } else {
                said.join("; ")
            },
        });
    }
    Ok(keys)
}

/// The SHA256 fingerprint of one known-hosts line, by `ssh-keygen -l`.
fn fingerprint(line: &str) -> Result<Option<String>, ScanError> {
    let spawn = |source| ScanError::Spawn {
        program: "ssh-keygen",
        source,
    };
    let mut child = Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(spawn)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .map_err(spawn)?;
    }
    let out = child.wait_with_output().map_err(spawn)?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .find(|w| w.starts_with("SHA256:"))
        .map(str::to_string))
}

/// Writes the remote's known-hosts file (0600, in its 0700 dir) with the
/// accepted key lines.
pub fn write_known_hosts(home: &Path, name: &str, keys: &[HostKey]) -> io::Result<PathBuf> {
    let dir = dir(home, name);
    fsx::create_private_dir(&dir)?;
    let path = known_hosts(home, name);
    let text: String = keys.iter().map(|k| format!("{}\n", k.line)).collect();
    fsx::update(&path, fsx::Options::private(), |_| {
        Ok::<_, io::Error>((Some(text.into_bytes()), ()))
    })
    .map_err(fsx::UpdateError::into_io)?;
    Ok(path)
}

/// Removes the remote's directory (known hosts, lock and secrets file).
pub fn remove_dir(home: &Path, name: &str) -> io::Result<()> {
    match fs::remove_dir_all(dir(home, name)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The lock a process holds while it keeps a remote's tunnel up (the
/// app, or `omniclaw remote tunnel`); released when it exits or dies.
#[derive(Debug)]
pub struct KeepLock {
    _file: fs::File,
}

/// Takes the keep lock of `name`'s tunnel; `None` when another process
/// keeps that tunnel up already (its local port is then that tunnel).
pub fn try_keep(home: &Path, name: &str) -> io::Result<Option<KeepLock>> {
    let dir = dir(home, name);
    fsx::create_private_dir(&dir)?;
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join("tunnel.lock"))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(KeepLock { _file: file })),
        Err(fs::TryLockError::WouldBlock) => Ok(None),
        Err(fs::TryLockError::Error(e)) => Err(e),
    }
}

/// Whether another process keeps `name`'s tunnel up right now.
pub fn kept_elsewhere(home: &Path, name: &str) -> bool {
    if !dir(home, name).join("tunnel.lock").exists() {
        return false;
    }
    matches!(try_keep(home, name), Ok(None))
}

/// Why a tunnel did not come up.
#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    #[error("the tunnel's local port 127.0.0.1:{port} is in use by another program: stop it, or add the remote again with another --local-port (the port is never picked anew behind your back)")]
    PortBusy { port: u16 },
    #[error("cannot run ssh: {0}; install OpenSSH's client (Debian: apt install openssh-client)")]
    Spawn(io::Error),
    #[error("the host key of {target} does not match the one accepted when the remote was added (ssh: {said}); if the server's key was changed on purpose, check its new fingerprint on the server, then `omniclaw remote remove {name}` and add it again")]
    HostKeyChanged {
        name: String,
        target: String,
        said: String,
    },
    #[error("ssh to {target} was refused: {said}; check the user, the key (--identity-file) and that the server allows TCP forwarding")]
    Refused { target: String, said: String },
    #[error("ssh to {target} exited before the tunnel was up: {said}")]
    Exited { target: String, said: String },
    #[error("the tunnel to {target} did not open 127.0.0.1:{port} within {secs} s: check that the server is reachable")]
    Timeout {
        target: String,
        port: u16,
        secs: u64,
    },
}

/// What starting a tunnel needs: the tunnel, the remote's name and its
/// known-hosts file.
#[derive(Debug, Clone)]
pub struct TunnelSpec {
    pub name: String,
    pub tunnel: SshTunnel,
    pub known_hosts: PathBuf,
    /// The `ssh` program (`ssh` on the PATH unless a test hands another).
    pub program: PathBuf,
}

impl TunnelSpec {
    pub fn new(home: &Path, name: &str, tunnel: &SshTunnel) -> TunnelSpec {
        TunnelSpec {
            name: name.to_string(),
            tunnel: tunnel.clone(),
            known_hosts: known_hosts(home, name),
            program: PathBuf::from("ssh"),
        }
    }

    fn local(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.tunnel.local_port))
    }
}

/// On Linux, `ssh` gets SIGTERM when the thread that started it ends, the
/// whole process killed included (`PR_SET_PDEATHSIG`): a tunnel never
/// outlives its keeper, even one killed with SIGKILL that could not drop
/// it. Callers keep a tunnel on the thread that opened it.
#[cfg(target_os = "linux")]
fn end_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the hook runs in the child between fork and exec; it only
    // calls prctl(2), which is async-signal-safe, and allocates nothing.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn end_with_parent(_command: &mut Command) {}

/// A running `ssh -N -L` process; killed when dropped.
#[derive(Debug)]
pub struct Tunnel {
    child: Child,
    said: Arc<Mutex<String>>,
    spec: TunnelSpec,
}

/// How long [`Tunnel::open`] waits for the local port.
pub const OPEN_WAIT: Duration = Duration::from_secs(15);

impl Tunnel {
    /// Starts `ssh` for `spec` after checking that its local port is free.
    pub fn spawn(spec: &TunnelSpec) -> Result<Tunnel, TunnelError> {
        if TcpListener::bind(spec.local()).is_err() {
            return Err(TunnelError::PortBusy {
                port: spec.tunnel.local_port,
            });
        }
        let mut command = Command::new(&spec.program);
        command
            .args(ssh_args(&spec.tunnel, &spec.known_hosts))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        end_with_parent(&mut command);
        let mut child = command.spawn().map_err(TunnelError::Spawn)?;
        let said = Arc::new(Mutex::new(String::new()));
        if let Some(mut stderr) = child.stderr.take() {
            let said = said.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 1024];
                while let Ok(n @ 1..) = stderr.read(&mut buf) {
                    said.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        Ok(Tunnel {
            child,
            said,
            spec: spec.clone(),
        })
    }

    /// Starts the tunnel and waits until its local port answers.
    pub fn open(spec: &TunnelSpec) -> Result<Tunnel, TunnelError> {
        let mut tunnel = Tunnel::spawn(spec)?;
        let deadline = Instant::now() + OPEN_WAIT;
        loop {
            if let Some(err) = tunnel.exited() {
                return Err(err);
            }
            if tunnel.ready() {
                return Ok(tunnel);
            }
            if Instant::now() >= deadline {
                return Err(TunnelError::Timeout {
                    target: spec.tunnel.target.to_string(),
                    port: spec.tunnel.local_port,
                    secs: OPEN_WAIT.as_secs(),
                });
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// The `ssh` process's id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the local port answers.
    pub fn ready(&self) -> bool {
        TcpStream::connect_timeout(&self.spec.local(), Duration::from_millis(200)).is_ok()
    }

    /// Why `ssh` exited, if it has.
    pub fn exited(&mut self) -> Option<TunnelError> {
        let status = self.child.try_wait().ok().flatten()?;
        // Let the stderr reader catch up with what ssh said last.
        std::thread::sleep(Duration::from_millis(20));
        let said = self.said.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Some(classify(&self.spec, &said, &status.to_string()))
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What `ssh`'s stderr says went wrong.
fn classify(spec: &TunnelSpec, said: &str, status: &str) -> TunnelError {
    let lines: Vec<&str> = said
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("@@@"))
        .collect();
    let said_text = if lines.is_empty() {
        format!("no message, {status}")
    } else {
        lines.join(" ")
    };
    let target = spec.tunnel.target.to_string();
    if said.contains("Host key verification failed")
        || said.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
        || said.contains("No ED25519 host key is known")
        || said.contains("host key is known for")
    {
        TunnelError::HostKeyChanged {
            name: spec.name.clone(),
            target,
            said: said_text,
        }
    } else if said.contains("Address already in use") || said.contains("cannot listen to port") {
        TunnelError::PortBusy {
            port: spec.tunnel.local_port,
        }
    } else if said.contains("Permission denied") || said.contains("administratively prohibited") {
        TunnelError::Refused {
            target,
            said: said_text,
        }
    } else {
        TunnelError::Exited {
            target,
            said: said_text,
        }
    }
}

/// The supervisor's time, in milliseconds from any fixed start.
pub trait Clock {
    fn now_ms(&self) -> u64;
}

/// The real clock: milliseconds since the supervisor was made.
pub struct SystemClock(Instant);

impl SystemClock {
    pub fn new() -> SystemClock {
        SystemClock(Instant::now())
    }
}

impl Default for SystemClock {
    fn default() -> SystemClock {
        SystemClock::new()
    }
}

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.0.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// A tunnel process as the supervisor sees it.
pub trait TunnelProc {
    /// Why it exited, if it has.
    fn exited(&mut self) -> Option<String>;
    /// Whether its local port answers.
    fn ready(&mut self) -> bool;
    fn pid(&self) -> u32;
}

impl TunnelProc for Tunnel {
    fn exited(&mut self) -> Option<String> {
        Tunnel::exited(self).map(|e| e.to_string())
    }
    fn ready(&mut self) -> bool {
        Tunnel::ready(self)
    }
    fn pid(&self) -> u32 {
        Tunnel::pid(self)
    }
}

/// Starts tunnel processes.
pub trait Launch {
    type Proc: TunnelProc;
    fn launch(&mut self) -> Result<Self::Proc, String>;
}

/// Starts real `ssh` tunnels for a spec.
pub struct SshLaunch(pub TunnelSpec);

impl Launch for SshLaunch {
    type Proc = Tunnel;
    fn launch(&mut self) -> Result<Tunnel, String> {
        Tunnel::spawn(&self.0).map_err(|e| e.to_string())
    }
}

/// Keeps one tunnel up: [`Supervisor::poll`] checks the process, restarts
/// it when the core's state machine says so, and reports each change.
pub struct Supervisor<L: Launch, C: Clock> {
    launch: L,
    clock: C,
    state: TunnelState,
    proc: Option<L::Proc>,
}

impl<L: Launch, C: Clock> Supervisor<L, C> {
    /// Starts the first tunnel process.
    pub fn start(mut launch: L, clock: C) -> Supervisor<L, C> {
        let now = clock.now_ms();
        let (state, proc) = match launch.launch() {
            Ok(p) => (TunnelState::started(), Some(p)),
            Err(reason) => (
                TunnelState::started()
                    .step(TunnelEvent::Exited { reason }, now)
                    .0,
                None,
            ),
        };
        Supervisor {
            launch,
            clock,
            state,
            proc,
        }
    }

    pub fn state(&self) -> &TunnelState {
        &self.state
    }

    /// The running tunnel process's id.
    pub fn pid(&self) -> Option<u32> {
        self.proc.as_ref().map(TunnelProc::pid)
    }

    /// One look at the tunnel; `true` when its state changed.
    pub fn poll(&mut self) -> bool {
        let now = self.clock.now_ms();
        let event = match self.proc.as_mut() {
            Some(p) => match p.exited() {
                Some(reason) => {
                    self.proc = None;
                    TunnelEvent::Exited { reason }
                }
                None if matches!(self.state, TunnelState::Starting { .. }) && p.ready() => {
                    TunnelEvent::Ready
                }
                None => TunnelEvent::Tick,
            },
            None => TunnelEvent::Tick,
        };
        let before = self.state.clone();
        let (mut next, action) = self.state.clone().step(event, now);
        if action == TunnelAction::Spawn {
            match self.launch.launch() {
                Ok(p) => self.proc = Some(p),
                Err(reason) => next = next.step(TunnelEvent::Exited { reason }, now).0,
            }
        }
        self.state = next;
        self.state != before
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    /// A clock the test moves.
    #[derive(Clone, Default)]
    struct FakeClock(Rc<Cell<u64>>);

    impl Clock for FakeClock {
        fn now_ms(&self) -> u64 {
            self.0.get()
        }
    }

    /// What the fake tunnel processes do, shared with the test.
    #[derive(Default)]
    struct Script {
        launched: Cell<u32>,
        ready: Cell<bool>,
        dead: Cell<bool>,
        refuse: Cell<bool>,
    }

    struct FakeProc(Rc<Script>, u32);

    impl TunnelProc for FakeProc {
        fn exited(&mut self) -> Option<String> {
            self.0.dead.get().then(|| "killed".to_string())
        }
        fn ready(&mut self) -> bool {
            self.0.ready.get()
        }
        fn pid(&self) -> u32 {
            self.1
        }
    }

    struct FakeLaunch(Rc<Script>);

    impl Launch for FakeLaunch {
        type Proc = FakeProc;
        fn launch(&mut self) -> Result<FakeProc, String> {
            if self.0.refuse.get() {
                return Err("cannot run ssh".into());
            }
            self.0.launched.set(self.0.launched.get() + 1);
            self.0.dead.set(false);
            Ok(FakeProc(self.0.clone(), 100 + self.0.launched.get()))
        }
    }

    #[test]
    fn restarts_a_killed_tunnel_after_its_backoff() {
        let script = Rc::new(Script::default());
        let clock = FakeClock::default();
        let mut sup = Supervisor::start(FakeLaunch(script.clone()), clock.clone());
        assert_eq!(sup.state().word(), "starting");
        assert!(!sup.poll(), "not ready yet");
        script.ready.set(true);
        assert!(sup.poll());
        assert_eq!(sup.state().word(), "up");
        assert_eq!(sup.pid(), Some(101));

        // Killed after a good while up: restarted 250 ms later, not before.
        clock.0.set(10_000);
        script.dead.set(true);
        assert!(sup.poll());
        assert_eq!(sup.state().word(), "restarting");
        assert_eq!(sup.pid(), None);
        clock.0.set(10_249);
        assert!(!sup.poll());
        assert_eq!(script.launched.get(), 1);
        clock.0.set(10_250);
        assert!(sup.poll());
        assert_eq!((sup.state().word(), script.launched.get()), ("starting", 2));
        assert!(sup.poll());
        assert_eq!((sup.state().word(), sup.pid()), ("up", Some(102)));

        // Killed again at once: the wait doubles.
        clock.0.set(10_300);
        script.dead.set(true);
        sup.poll();
        clock.0.set(10_799);
        sup.poll();
        assert_eq!(script.launched.get(), 2);
        clock.0.set(10_800);
        sup.poll();
        assert_eq!(script.launched.get(), 3);
    }

    #[test]
    fn a_launch_that_fails_is_retried_with_backoff() {
        let script = Rc::new(Script::default());
        script.refuse.set(true);
        let clock = FakeClock::default();
        let mut sup = Supervisor::start(FakeLaunch(script.clone()), clock.clone());
        assert!(matches!(
            sup.state(),
            TunnelState::Waiting { until_ms: 250, reason, .. } if reason == "cannot run ssh"
        ));
        clock.0.set(250);
        sup.poll();
        assert!(matches!(
            sup.state(),
            TunnelState::Waiting { until_ms: 750, .. }
        ));
        script.refuse.set(false);
        clock.0.set(750);
        sup.poll();
        assert_eq!((sup.state().word(), script.launched.get()), ("starting", 1));
    }

    #[test]
    fn paths() {
        let home = Path::new("/h");
        assert_eq!(file(home), Path::new("/h/.omniclaw/remotes.json"));
        assert_eq!(
            known_hosts(home, "vps"),
            Path::new("/h/.omniclaw/remotes/vps/known_hosts")
        );
    }

    #[test]
    fn a_refused_update_writes_nothing() {
        let home = tempfile::tempdir().expect("home");
        update(home.path(), |r| {
            r.list.push(omniclaw_core::remotes::Remote {
                name: "a".into(),
                kind: omniclaw_core::remotes::Kind::Direct(
                    omniclaw_core::remote::parse_url("wss://a.example.com").expect("url"),
                ),
            });
            Ok(())
        })
        .expect("first");
        let before = fs::read(file(home.path())).expect("file");
        let err = update(home.path(), |r| {
            r.list.clear();
            Err::<(), _>(RemoteError::Unknown { name: "b".into() })
        })
        .expect_err("refused");
        assert!(err.to_string().contains("no remote named \"b\""), "{err}");
        assert_eq!(fs::read(file(home.path())).expect("file"), before);
        assert_eq!(load(home.path()).expect("load").list.len(), 1);
    }
}
