//! Support for the desktop app's end-to-end tests: a private desktop
//! session (D-Bus session bus, X display, a StatusNotifierWatcher), the tray
//! read and clicked over D-Bus (`com.canonical.dbusmenu`), a minimal
//! WebDriver client for the dashboard, and homes with profiles on free ports.
//!
//! Needs `dbus-daemon`, `Xvfb` (unless `DISPLAY` is set) and Python with the
//! `dbus` module (`scripts/install-deps.sh` installs them); the desktop
//! binary must be built next to the test executable (`cargo test --workspace`
//! does it, or `cargo build -p omniclaw-desktop`).
use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::{omniclaw_bin, Home};
use serde_json::Value;

/// Longest wait for anything the app does.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub fn desktop_bin() -> PathBuf {
    let cli = omniclaw_bin();
    let bin = cli.with_file_name(format!("omniclaw-desktop{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p omniclaw-desktop` (cargo test --workspace does)",
        bin.display()
    );
    bin
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Python that has the `dbus` module: the system one when there is one
/// (version managers put interpreters without system packages first on PATH).
pub fn python() -> PathBuf {
    let system = PathBuf::from("/usr/bin/python3");
    if system.exists() {
        system
    } else {
        PathBuf::from("python3")
    }
}

/// A child process killed (and reaped) when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Lines of a child's stdout, read on a thread so waits can time out.
pub fn lines_of(stdout: ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// A private desktop session: a D-Bus session bus, an X display, and a
/// StatusNotifierWatcher for tray icons to register with.
pub struct Session {
    pub bus: String,
    pub display: String,
    pub registrations: mpsc::Receiver<String>,
    /// `TMPDIR` of the apps of this session.
    tmp: tempfile::TempDir,
    // Dropped in reverse order of start: the watcher, then the display, then the bus.
    pub _watcher: Proc,
    pub _xvfb: Option<Proc>,
    pub _dbus: Proc,
}

/// A session bus that starts no service on demand: a name nobody owns
/// (the Secret Service, here) is unknown at once, as on a desktop without
/// it, instead of a daemon being launched that never answers.
const BARE_BUS: &str = r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:tmpdir=/tmp</listen>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#;

impl Session {
    pub fn start() -> Session {
        Session::start_bus(None)
    }

    /// A session whose bus starts no service on demand (see [`BARE_BUS`]).
    pub fn without_activation() -> Session {
        let config =
            std::env::temp_dir().join(format!("omniclaw-bare-bus-{}.conf", std::process::id()));
        std::fs::write(&config, BARE_BUS).expect("write the bus config");
        Session::start_bus(Some(&config))
    }

    fn start_bus(config: Option<&Path>) -> Session {
        let mut dbus = Command::new("dbus-daemon");
        match config {
            Some(file) => dbus.arg(format!("--config-file={}", file.display())),
            None => dbus.arg("--session"),
        };
        let mut dbus = dbus
            .args(["--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon runs (install it with scripts/install-deps.sh)");
        let mut first = String::new();
        BufReader::new(dbus.stdout.take().expect("dbus stdout"))
            .read_line(&mut first)
            .expect("dbus-daemon prints its address");
        let bus = first.trim().to_string();
        if let Some(file) = config {
            // Read at start; not needed any more.
            let _ = std::fs::remove_file(file);
        }
        assert!(bus.starts_with("unix:"), "dbus-daemon address {bus:?}");
        let dbus = Proc(dbus);

        let (display, xvfb) = match std::env::var("DISPLAY") {
            Ok(d) if !d.is_empty() => (d, None),
            _ => {
                let mut xvfb = Command::new("Xvfb")
                    .args([
                        "-displayfd",
                        "1",
                        "-screen",
                        "0",
                        "1280x800x24",
                        "-nolisten",
                        "tcp",
                    ])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("Xvfb runs (install it with scripts/install-deps.sh)");
                let mut number = String::new();
                BufReader::new(xvfb.stdout.take().expect("xvfb stdout"))
                    .read_line(&mut number)
                    .expect("Xvfb prints its display number");
                (format!(":{}", number.trim()), Some(Proc(xvfb)))
            }
        };

        let mut watcher = Command::new(python())
            .arg(repo_root().join("scripts/tray-dbus.py"))
            .arg("watch")
            .env("DBUS_SESSION_BUS_ADDRESS", &bus)
            .stdout(Stdio::piped())
            .spawn()
            .expect("the watcher stand-in starts (needs python3-dbus and python3-gi)");
        let registrations = lines_of(watcher.stdout.take().expect("watcher stdout"));
        let watcher = Proc(watcher);
        let ready = registrations
            .recv_timeout(PATIENCE)
            .expect("the watcher says it is ready");
        assert_eq!(ready, "ready");
        Session {
            bus,
            display,
            registrations,
            tmp: tempfile::tempdir().expect("a temporary directory for the apps"),
            _watcher: watcher,
            _xvfb: xvfb,
            _dbus: dbus,
        }
    }

    /// Starts the desktop app (tray only) for `home` and waits until its
    /// tray icon has registered, the point a user sees it.
    pub fn launch(&self, home: &Home) -> Proc {
        self.launch_from(home, &desktop_bin())
    }

    /// [`Session::launch`] with the app at `bin` (an installed one).
    pub fn launch_from(&self, home: &Home, bin: &Path) -> Proc {
        self.launch_with(home, bin, &[])
    }

    /// [`Session::launch_from`] with `extra` variables set (a `PATH` with
    /// a stand-in service manager first).
    pub fn launch_with(&self, home: &Home, bin: &Path, extra: &[(&str, &std::ffi::OsStr)]) -> Proc {
        let mut command = self.desktop_from(home, bin);
        command.envs(extra.iter().copied());
        let mut app = Proc(
            command
                .spawn()
                .unwrap_or_else(|e| panic!("start {}: {e}", bin.display())),
        );
        let registered = self
            .registrations
            .recv_timeout(PATIENCE)
            .unwrap_or_else(|_| {
                panic!(
                    "the tray icon never registered; app stderr:\n{}",
                    stderr_of(&mut app.0)
                )
            });
        assert!(registered.starts_with("registered "), "{registered}");
        app
    }

    /// The X window id of the visible dashboard, once one is shown.
    pub fn dashboard_window(&self) -> Option<String> {
        let out = Command::new("xdotool")
            .args(["search", "--onlyvisible", "--name", "^OmniClaw$"])
            .env("DISPLAY", &self.display)
            .output()
            .expect("xdotool runs (install it with scripts/install-deps.sh)");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .map(str::to_string)
    }

    /// Closes an X window as a window manager's close button does.
    pub fn close_window(&self, window: &str) {
        let status = Command::new(python())
            .arg(repo_root().join("scripts/x11-close.py"))
            .arg(window)
            .env("DISPLAY", &self.display)
            .status()
            .expect("run x11-close.py");
        assert!(status.success(), "closing window {window} failed");
    }

    /// Starts the desktop app with its dashboard under WebDriver
    /// (tauri-driver + WebKitWebDriver) for `home`, on ports clear of `avoid`.
    pub fn dashboard(&self, home: &Home, avoid: &[u16]) -> Dashboard {
        self.dashboard_with(home, avoid, &[])
    }

    /// [`Session::dashboard`] with some of the app's variables replaced
    /// (`PATH` without a file manager opener, …).
    pub fn dashboard_with(
        &self,
        home: &Home,
        avoid: &[u16],
        vars: &[(&str, std::ffi::OsString)],
    ) -> Dashboard {
        let mut env = self.app_env(home);
        for (key, value) in vars {
            env.retain(|(k, _)| k != key);
            env.push((key.to_string(), value.clone()));
        }
        // Another test's process may take a picked port before the driver
        // binds it: the driver then exits, and is started again on others.
        let mut tries = 0;
        let (driver, port, native) = loop {
            tries += 1;
            let port = free_base(avoid);
            let native = free_base(&[avoid, &[port]].concat());
            // The driver starts the app itself, which inherits this environment.
            let driver = Command::new(tauri_driver())
                .args(["--port", &port.to_string(), "--native-port", &native.to_string()])
                .env_clear()
                .envs(env.clone())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!(
                        "tauri-driver does not start ({e}): install it with `cargo install tauri-driver --locked --root .tools/cargo` (scripts/test.sh does)"
                    )
                });
            let mut driver = Proc(driver);
            let start = Instant::now();
            let exited = loop {
                if let Ok(Some(status)) = driver.0.try_wait() {
                    break Some(status);
                }
                if listening(port) || start.elapsed() > PATIENCE {
                    break None;
                }
                std::thread::sleep(Duration::from_millis(50));
            };
            match exited {
                None => break (driver, port, native),
                Some(status) if tries == 5 => {
                    panic!("tauri-driver exited ({status}) five times on free ports")
                }
                Some(_) => continue,
            }
        };
        Dashboard {
            web: WebDriver::start(port, &desktop_bin()),
            driver_ports: [port, native],
            _driver: driver,
        }
    }

    /// Starts a notification daemon stand-in on this session's bus; every
    /// notification an app shows from now on is recorded.
    pub fn notifications(&self) -> Notifications {
        let mut daemon = Command::new(python())
            .arg(repo_root().join("scripts/tray-dbus.py"))
            .arg("notifications")
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus)
            .stdout(Stdio::piped())
            .spawn()
            .expect("the notification stand-in starts (needs python3-dbus and python3-gi)");
        let lines = lines_of(daemon.stdout.take().expect("daemon stdout"));
        let daemon = Proc(daemon);
        let ready = lines
            .recv_timeout(PATIENCE)
            .expect("the notification stand-in says it is ready");
        assert_eq!(ready, "ready");
        Notifications {
            lines,
            seen: std::cell::RefCell::new(Vec::new()),
            _daemon: daemon,
        }
    }

    /// The text on this session's clipboard (the `CLIPBOARD` selection), as
    /// a paste would get it: read through GTK by a separate client.
    pub fn clipboard(&self) -> Option<String> {
        let script = "import gi\ngi.require_version('Gtk', '3.0')\n\
                      from gi.repository import Gtk, Gdk\n\
                      t = Gtk.Clipboard.get(Gdk.SELECTION_CLIPBOARD).wait_for_text()\n\
                      print(t if t is not None else '', end='')\n";
        let out = Command::new(python())
            .args(["-c", script])
            .env("DISPLAY", &self.display)
            .env("NO_AT_BRIDGE", "1")
            .output()
            .expect("python3 with GTK reads the clipboard (python3-gi, gir1.2-gtk-3.0)");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.success() && !text.is_empty()).then_some(text)
    }

    /// The tray icon's properties (`org.kde.StatusNotifierItem`).
    pub fn icon(&self) -> Result<Value, String> {
        let text = self.tray(&["icon"])?;
        serde_json::from_str(&text).map_err(|e| format!("icon is not JSON ({e}): {text}"))
    }

    /// The tray icon's badge colour as (r, g, b): the pixel at (48, 48) of
    /// its 64×64 image (green ok, orange warning, red error).
    pub fn icon_badge(&self) -> (u8, u8, u8) {
        let icon = self.icon().expect("the icon's properties");
        let path = icon["IconName"].as_str().unwrap_or_default().to_string();
        assert!(
            std::path::Path::new(&path).is_file(),
            "the icon is a file: {icon}"
        );
        let out = Command::new("convert")
            .args([
                &path,
                "-format",
                "%[fx:round(p{48,48}.r*255)] %[fx:round(p{48,48}.g*255)] %[fx:round(p{48,48}.b*255)]",
                "info:",
            ])
            .output()
            .expect("ImageMagick convert");
        let text = String::from_utf8_lossy(&out.stdout);
        let rgb: Vec<u8> = text
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        match rgb[..] {
            [r, g, b] => (r, g, b),
            _ => panic!("not a colour from {path}: {text}"),
        }
    }

    /// Runs the tray reader with `args`; its stdout on success.
    pub fn tray(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new(python())
            .arg(repo_root().join("scripts/tray-dbus.py"))
            .args(args)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus)
            .output()
            .expect("run tray-dbus.py");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// The tray menu as read over D-Bus.
    pub fn layout(&self) -> Result<Tray, String> {
        let text = self.tray(&["layout"])?;
        serde_json::from_str(&text)
            .map(Tray)
            .map_err(|e| format!("layout is not JSON ({e}): {text}"))
    }

    /// Clicks the item `label` under `parent` of the menu as it is now.
    /// The app rebuilds its menu as gateways change, which renumbers the
    /// items: an id read a moment ago may be gone, so it is read again.
    pub fn click_item(&self, parent: &str, label: &str) {
        let start = Instant::now();
        loop {
            let id = self
                .layout()
                .unwrap_or_else(|e| panic!("the tray menu cannot be read: {e}"))
                .id(parent, label);
            match self.tray(&["click", &id.to_string()]) {
                Ok(_) => return,
                Err(e)
                    if e.contains("does not refer to a menu item")
                        && start.elapsed() < PATIENCE =>
                {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("clicking {label:?} under {parent:?} (item {id}) failed: {e}"),
            }
        }
    }

    /// Clicks the menu item with this D-Bus id.
    pub fn click(&self, id: i64) {
        self.tray(&["click", &id.to_string()])
            .unwrap_or_else(|e| panic!("clicking item {id} failed: {e}"));
    }

    /// Waits until the menu satisfies `ok`, returning it.
    pub fn wait_for(&self, what: &str, ok: impl Fn(&Tray) -> bool) -> Tray {
        let start = Instant::now();
        let mut last = Err("never read".to_string());
        while start.elapsed() < PATIENCE {
            last = self.layout();
            if let Ok(tray) = &last {
                if ok(tray) {
                    return tray.clone();
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        match last {
            Ok(tray) => panic!(
                "tray never showed {what}; it shows:\n{}",
                tray.labels().join("\n")
            ),
            Err(e) => panic!("tray never showed {what}; reading it failed: {e}"),
        }
    }

    /// The whole environment of an app in this session and `home`: none of
    /// the caller's OMNICLAW_* variables or XDG dirs.
    pub fn app_env(&self, home: &Home) -> Vec<(String, std::ffi::OsString)> {
        // The tray icon's image is written to `$TMPDIR/tray-icon/`, a name
        // shared by every app on the machine: each session's apps get their
        // own, or one that exits takes another's icon file with it. Outside
        // the home, whose files the tests compare.
        let tmp = self
            .tmp
            .path()
            .join(home.path().file_name().unwrap_or_default());
        std::fs::create_dir_all(&tmp).expect("the app's temporary directory");
        vec![
            ("HOME".into(), home.path().into()),
            ("TMPDIR".into(), tmp.into()),
            ("PATH".into(), std::env::var_os("PATH").unwrap_or_default()),
            ("DISPLAY".into(), self.display.clone().into()),
            ("DBUS_SESSION_BUS_ADDRESS".into(), self.bus.clone().into()),
            ("NO_AT_BRIDGE".into(), "1".into()),
            ("GDK_BACKEND".into(), "x11".into()),
            ("WEBKIT_DISABLE_COMPOSITING_MODE".into(), "1".into()),
        ]
    }

    /// A command for the desktop app (tray only, `--hidden`) in this session.
    pub fn desktop(&self, home: &Home) -> Command {
        self.desktop_from(home, &desktop_bin())
    }

    /// [`Session::desktop`] with the app at `bin`.
    pub fn desktop_from(&self, home: &Home, bin: &Path) -> Command {
        let mut c = Command::new(bin);
        c.env_clear()
            .envs(self.app_env(home))
            .arg("--hidden")
            .current_dir(home.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c
    }
}

/// The desktop app driven through its dashboard; the WebDriver session
/// ends before its driver stops.
pub struct Dashboard {
    pub web: WebDriver,
    /// The ports tauri-driver and WebKitWebDriver listen on.
    pub driver_ports: [u16; 2],
    _driver: Proc,
}

impl std::ops::Deref for Dashboard {
    type Target = WebDriver;

    fn deref(&self) -> &WebDriver {
        &self.web
    }
}

/// The command names (`/proc/PID/comm`) of the live child processes of `pid`.
pub fn children_of(pid: u32) -> Vec<String> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let mut rest = stat[close + 1..].split_whitespace();
        let state = rest.next();
        let ppid = rest.next().and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) && state != Some("Z") {
            let open = stat.find('(').unwrap_or(close);
            names.push(stat[open + 1..close].to_string());
        }
    }
    names
}

/// The notifications shown in a session, as `{"app", "summary", "body"}`.
pub struct Notifications {
    lines: mpsc::Receiver<String>,
    seen: std::cell::RefCell<Vec<Value>>,
    _daemon: Proc,
}

impl Notifications {
    /// Every notification shown so far.
    pub fn all(&self) -> Vec<Value> {
        while let Ok(line) = self.lines.try_recv() {
            let value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("notification line is not JSON ({e}): {line}"));
            self.seen.borrow_mut().push(value);
        }
        self.seen.borrow().clone()
    }

    /// Waits until a notification satisfies `ok` and returns it.
    pub fn wait_for(&self, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        while start.elapsed() < PATIENCE {
            if let Some(found) = self.all().into_iter().find(|n| ok(n)) {
                return found;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("no notification {what}; shown so far: {:#?}", self.all());
    }
}

/// The tray menu tree from `GetLayout`.
#[derive(Clone)]
pub struct Tray(pub Value);

impl Tray {
    pub fn walk<'a>(node: &'a Value, out: &mut Vec<&'a Value>) {
        for child in node["children"].as_array().into_iter().flatten() {
            out.push(child);
            Tray::walk(child, out);
        }
    }

    pub fn items(&self) -> Vec<&Value> {
        let mut out = Vec::new();
        Tray::walk(&self.0, &mut out);
        out
    }

    /// Every label, depth first.
    pub fn labels(&self) -> Vec<String> {
        self.items()
            .iter()
            .filter_map(|i| i["label"].as_str())
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }

    pub fn has(&self, label: &str) -> bool {
        self.labels().iter().any(|l| l == label)
    }

    pub fn has_prefix(&self, prefix: &str) -> bool {
        self.labels().iter().any(|l| l.starts_with(prefix))
    }

    /// The item labelled `label` directly under the submenu whose label
    /// starts with `parent` (or at the top when `parent` is empty).
    pub fn find(&self, parent: &str, label: &str) -> Option<&Value> {
        let children = |node: &'_ Value| node["children"].as_array().cloned().unwrap_or_default();
        let top = &self.0;
        let scope: Vec<Value> = if parent.is_empty() {
            children(top)
        } else {
            let sub = top["children"]
                .as_array()?
                .iter()
                .find(|c| c["label"].as_str().is_some_and(|l| l.starts_with(parent)))?;
            children(sub)
        };
        let id = scope.iter().find(|c| c["label"] == label)?["id"].as_i64()?;
        self.items()
            .into_iter()
            .find(|i| i["id"].as_i64() == Some(id))
    }

    /// The D-Bus id of an item that must exist.
    pub fn id(&self, parent: &str, label: &str) -> i64 {
        self.find(parent, label)
            .and_then(|i| i["id"].as_i64())
            .unwrap_or_else(|| {
                panic!(
                    "no item {label:?} under {parent:?}:\n{}",
                    self.labels().join("\n")
                )
            })
    }

    pub fn enabled(&self, parent: &str, label: &str) -> bool {
        self.find(parent, label)
            .and_then(|i| i["enabled"].as_bool())
            .unwrap_or_else(|| panic!("no item {label:?} under {parent:?}"))
    }
}

/// A base port whose gateway, browser control and canvas ports are free.
pub fn free_base(avoid: &[u16]) -> u16 {
    crate::free_base_avoiding(avoid, 250)
}

pub fn listening(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)).is_ok()
}

pub fn wait_until(what: &str, ok: impl Fn() -> bool) {
    let start = Instant::now();
    while start.elapsed() < PATIENCE {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

/// A home with a `main` and a `rescue` profile on free ports. Their tokens
/// live in each profile's secrets file (a bare test bus has no keychain):
/// embedded gateways read them from the store, never from the environment.
pub fn two_profiles() -> (Home, u16, u16) {
    let home = Home::new();
    let main = profile_on_free_port(&home, "main", &[]);
    let rescue = profile_on_free_port(&home, "rescue", &[main]);
    (home, main, rescue)
}

/// Sets up `profile` in `home` (its token in its secrets file) on a free
/// base port clear of `avoid`; the port.
pub fn profile_on_free_port(home: &Home, profile: &str, avoid: &[u16]) -> u16 {
    home.run(&["--profile", profile, "--secrets-file", "setup"])
        .expect_code(0);
    // Other tests' processes (a WebDriver, an app) take ports between the
    // pick and the edit; the edit then rightly refuses a base whose span
    // another process holds, and another free base is picked.
    let mut tries = 0;
    loop {
        let port = free_base(avoid);
        let set = home.run(&[
            "--profile",
            profile,
            "config",
            "set",
            "gateway.port",
            &port.to_string(),
        ]);
        tries += 1;
        if set.code == 0 {
            return port;
        }
        if tries == 5 || !set.stderr.contains("is held by pid") {
            set.expect_code(0);
        }
    }
}

pub fn label(name: &str, state: &str, port: u16) -> String {
    format!("{name} — {state} — port {port}")
}

/// Stderr of an app that exited, for failure messages.
pub fn stderr_of(child: &mut Child) -> String {
    let mut text = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut text);
    }
    text
}

pub fn wait_exit(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < within {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

pub fn tauri_driver() -> PathBuf {
    if let Some(path) = std::env::var_os("TAURI_DRIVER") {
        return PathBuf::from(path);
    }
    let local = repo_root().join(".tools/cargo/bin/tauri-driver");
    if local.exists() {
        return local;
    }
    PathBuf::from("tauri-driver")
}

/// How long a WebDriver session may take to start (it starts the app).
pub const SESSION_PATIENCE: Duration = Duration::from_secs(90);

/// Whether a failed session request may succeed when tried again: the
/// driver is not listening yet, dropped the connection while its own
/// WebKitWebDriver starts, or answered that the browser is not up yet.
fn transient(error: &str) -> bool {
    [
        "Connection refused",
        "Connection reset",
        "Resource temporarily unavailable",
        "timed out",
        "not an HTTP response",
        NO_ANSWER,
        "no JSON in response",
        "HTTP/1.1 5",
    ]
    .iter()
    .any(|t| error.contains(t))
}

/// What a request gets when the driver closes the connection unanswered.
const NO_ANSWER: &str = "the driver closed the connection without an answer";

/// A minimal WebDriver client: JSON over HTTP/1.1 on loopback.
pub struct WebDriver {
    pub port: u16,
    pub session: String,
}

impl WebDriver {
    pub fn request(
        port: u16,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, String> {
        WebDriver::request_within(port, method, path, body, PATIENCE)
    }

    /// [`WebDriver::request`], waiting at most `within` for the answer.
    fn request_within(
        port: u16,
        method: &str,
        path: &str,
        body: Option<&Value>,
        within: Duration,
    ) -> Result<Value, String> {
        use std::io::Write;
        let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(within.max(Duration::from_millis(100))))
            .map_err(|e| e.to_string())?;
        let body = body.map(Value::to_string).unwrap_or_default();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream
            .write_all(head.as_bytes())
            .and_then(|()| stream.write_all(body.as_bytes()))
            .map_err(|e| e.to_string())?;
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .map_err(|e| e.to_string())?;
        if response.is_empty() {
            return Err(NO_ANSWER.to_string());
        }
        let (head, rest) = response
            .split_once("\r\n\r\n")
            .ok_or_else(|| format!("not an HTTP response: {response:?}"))?;
        // Bodies may come chunked; the JSON is the part between the braces.
        let json = match (rest.find('{'), rest.rfind('}')) {
            (Some(a), Some(b)) if a <= b => &rest[a..=b],
            _ => return Err(format!("no JSON in response: {head}\n{rest}")),
        };
        let value: Value = serde_json::from_str(json).map_err(|e| format!("{e}: {json}"))?;
        if head.starts_with("HTTP/1.1 2") {
            Ok(value["value"].clone())
        } else {
            Err(format!("{head}\n{value}"))
        }
    }

    pub fn start(port: u16, app: &Path) -> WebDriver {
        let capabilities = serde_json::json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "wry",
                    "tauri:options": { "application": app, "args": [] }
                }
            }
        });
        // Creating the session starts the app, which takes long on a
        // loaded machine: the request may wait for the whole deadline (a
        // read timeout shows as EAGAIN, "Resource temporarily
        // unavailable"), and is tried again while tauri-driver or
        // WebKitWebDriver is still starting (refused, reset, EAGAIN).
        let deadline = Instant::now() + SESSION_PATIENCE;
        let value = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match WebDriver::request_within(port, "POST", "/session", Some(&capabilities), left) {
                Ok(v) => break v,
                Err(e) if Instant::now() >= deadline || !transient(&e) => {
                    panic!("no WebDriver session within {SESSION_PATIENCE:?}: {e}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        };
        let session = value["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session id in {value}"))
            .to_string();
        WebDriver { port, session }
    }

    /// A command of this session. tauri-driver forwards it to
    /// WebKitWebDriver over a pooled keep-alive connection; when
    /// WebKitWebDriver closes that idle connection as the command goes
    /// out, tauri-driver fails the forward and closes ours with no answer.
    /// A connection closed as idle carried no command out, so the command
    /// is sent again.
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
        let path = format!("/session/{}{path}", self.session);
        let mut tries = 0;
        loop {
            match WebDriver::request(self.port, method, &path, body) {
                Err(e) if e == NO_ANSWER && tries < 3 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
                other => return other,
            }
        }
    }

    /// The element matching a CSS selector, once it exists.
    pub fn find(&self, css: &str) -> Result<String, String> {
        let body = serde_json::json!({"using": "css selector", "value": css});
        let value = self.call("POST", "/element", Some(&body))?;
        value
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| format!("no element id in {value}"))
    }

    pub fn text(&self, css: &str) -> Result<String, String> {
        let id = self.find(css)?;
        let value = self.call("GET", &format!("/element/{id}/text"), None)?;
        Ok(value.as_str().unwrap_or_default().to_string())
    }

    /// Clicks `css`. The dashboard re-renders its cards on every state
    /// event, so a reference can go stale between finding and clicking:
    /// find it again and retry.
    pub fn click(&self, css: &str) {
        let start = Instant::now();
        loop {
            let clicked = self.find(css).and_then(|id| {
                self.call(
                    "POST",
                    &format!("/element/{id}/click"),
                    Some(&serde_json::json!({})),
                )
            });
            match clicked {
                Ok(_) => return,
                Err(e) if start.elapsed() > PATIENCE => panic!("clicking {css} failed: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// The text of `css`, retrying while references go stale (see `click`).
    pub fn eventually_text(&self, css: &str) -> String {
        let start = Instant::now();
        loop {
            match self.text(css) {
                Ok(text) => return text,
                Err(e) if start.elapsed() > PATIENCE => panic!("no text of {css}: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Waits until the text of `css` is `expected`.
    pub fn wait_text(&self, css: &str, expected: &str) {
        let start = Instant::now();
        let mut last = Err(String::new());
        while start.elapsed() < PATIENCE {
            last = self.text(css);
            if last.as_deref() == Ok(expected) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("{css} never read {expected:?}; last: {last:?}");
    }
}

impl Drop for WebDriver {
    fn drop(&mut self) {
        let _ = self.call("DELETE", "", None);
    }
}

/// An unlocked Secret Service (gnome-keyring) on a [`Session`]'s bus, its
/// files in a directory of its own (never under a test's home). Stopped
/// when dropped.
pub struct Keyring {
    pub _daemon: Proc,
    pub dir: tempfile::TempDir,
}

impl Session {
    /// Starts gnome-keyring on this session's bus with an unlocked login
    /// keyring, and waits until it owns `org.freedesktop.secrets`.
    pub fn keyring(&self) -> Keyring {
        self.keyring_with(b"omniclaw-test")
    }

    /// A Secret Service that answers but has no default collection (no
    /// login keyring): gnome-keyring started without a password, as on a
    /// desktop that never created one. Reading works; storing is refused.
    pub fn keyring_without_default(&self) -> Keyring {
        self.keyring_with(b"")
    }

    fn keyring_with(&self, password: &[u8]) -> Keyring {
        use std::io::Write;
        let dir = tempfile::tempdir().expect("keyring dir");
        let run = dir.path().join("run");
        std::fs::create_dir_all(&run).expect("mkdir run");
        let mut daemon = Command::new("gnome-keyring-daemon")
            .args(["--foreground", "--unlock", "--components=secrets"])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", dir.path())
            .env("XDG_DATA_HOME", dir.path().join("data"))
            .env("XDG_RUNTIME_DIR", &run)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("gnome-keyring-daemon runs (install it with scripts/install-deps.sh)");
        // The password protects nothing here (a throwaway dir); gnome-keyring
        // creates the login keyring only for a non-empty one.
        let mut stdin = daemon.stdin.take().expect("keyring stdin");
        stdin.write_all(password).expect("write password");
        drop(stdin);
        let daemon = Proc(daemon);
        let bus = self.bus.clone();
        wait_until("gnome-keyring to own org.freedesktop.secrets", || {
            Command::new("dbus-send")
                .args([
                    "--session",
                    "--print-reply",
                    "--dest=org.freedesktop.DBus",
                    "/org/freedesktop/DBus",
                    "org.freedesktop.DBus.NameHasOwner",
                    "string:org.freedesktop.secrets",
                ])
                .env("DBUS_SESSION_BUS_ADDRESS", &bus)
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("boolean true"))
        });
        Keyring {
            _daemon: daemon,
            dir,
        }
    }
}

impl WebDriver {
    /// Sets the input `css` to `text` as typing would: its value, then the
    /// `input` and `change` events the page listens to.
    pub fn fill(&self, css: &str, text: &str) {
        let script = format!(
            "const e = document.querySelector({}); if (!e) return false; e.focus(); e.value = {}; \
             e.dispatchEvent(new Event('input', {{bubbles: true}})); \
             e.dispatchEvent(new Event('change', {{bubbles: true}})); return true;",
            serde_json::json!(css),
            serde_json::json!(text)
        );
        let body = serde_json::json!({ "script": script, "args": [] });
        let start = Instant::now();
        // Retried: the element may not exist yet, and a busy page can drop
        // a request without an answer.
        loop {
            match self.call("POST", "/execute/sync", Some(&body)) {
                Ok(Value::Bool(true)) => return,
                Ok(_) | Err(_) if start.elapsed() < PATIENCE => {
                    std::thread::sleep(Duration::from_millis(100))
                }
                other => panic!("filling {css} failed: {other:?}"),
            }
        }
    }

    /// Runs `script` (a function body) in the page and returns its value.
    pub fn script(&self, script: &str) -> Result<Value, String> {
        let body = serde_json::json!({ "script": script, "args": [] });
        self.call("POST", "/execute/sync", Some(&body))
    }

    /// The page's HTML as it is now.
    pub fn source(&self) -> String {
        self.call("GET", "/source", None)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// A DOM property (`value`, `open`, …) of the element matching `css`.
    /// The dashboard re-renders its cards on every state event, so a
    /// reference can go stale (or the driver drop the answer) between
    /// finding and reading: find it again and retry, as `click` does.
    pub fn property(&self, css: &str, name: &str) -> Result<Value, String> {
        let start = Instant::now();
        loop {
            let got = self
                .find(css)
                .and_then(|id| self.call("GET", &format!("/element/{id}/property/{name}"), None));
            match got {
                Ok(v) => return Ok(v),
                Err(e) if start.elapsed() > PATIENCE => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Waits until `ok` holds for the text of `css` (missing: empty).
    pub fn wait_until_text(&self, css: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        let mut last = String::new();
        while start.elapsed() < PATIENCE {
            last = self.text(css).unwrap_or_default();
            if ok(&last) {
                return last;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("{css} never showed {what}; last: {last:?}");
    }

    /// Waits until the text of `css` contains `fragment`; returns the text.
    pub fn wait_contains(&self, css: &str, fragment: &str, within: Duration) -> String {
        let start = Instant::now();
        let mut last = Err(String::new());
        while start.elapsed() < within {
            last = self.text(css);
            if let Ok(text) = &last {
                if text.contains(fragment) {
                    return text.clone();
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("{css} never contained {fragment:?}; last: {last:?}");
    }
}
