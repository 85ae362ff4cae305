//! What a gateway is asked to be: plain data the caller computes.
//!
//! Nothing here reads files or the environment; the CLI and the tray resolve
//! profile, paths, ports and secrets with `omniclaw-core` and fill this in.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use omniclaw_core::env::ChildEnv;

/// How clients prove they may talk to the gateway.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    Token(String),
    Password(String),
    None,
}

impl Auth {
    /// The name used on the wire (`hello-ok.auth.method`) and in config.
    pub fn mode(&self) -> &'static str {
        match self {
            Auth::Token(_) => "token",
            Auth::Password(_) => "password",
            Auth::None => "none",
        }
    }
}

// Secrets never reach a log line, not even through `{:?}`.
impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Token(_) => f.write_str("Token(<redacted>)"),
            Auth::Password(_) => f.write_str("Password(<redacted>)"),
            Auth::None => f.write_str("None"),
        }
    }
}

/// The browser control service and the CDP ports of its browser profiles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserSpec {
    /// Whether the control service runs at all.
    pub enabled: bool,
    /// Port of the control service; always bound on loopback.
    pub control_port: u16,
    /// Ports handed to browser profiles in order (`control + 9 ..= control + 108` by default).
    pub cdp_range: RangeInclusive<u16>,
    /// Browser profiles named in config, with a pinned CDP port when set.
    pub profiles: BTreeMap<String, Option<u16>>,
    /// The Chromium executable to start.
    pub executable: PathBuf,
}

/// The canvas host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanvasSpec {
    pub enabled: bool,
    pub port: u16,
    /// Directory served; `<workspace>/canvas` unless `canvasHost.root` says otherwise.
    pub root: PathBuf,
}

/// Protocol and lifecycle limits. Defaults suit production; tests shorten them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// A client that sends no `connect` within this time is closed.
    pub handshake_timeout: Duration,
    /// Largest inbound frame; larger ones close the connection with 1009.
    pub max_payload: usize,
    /// Outbound bytes buffered per connection before back-pressure.
    pub max_buffered_bytes: usize,
    /// Interval of the `tick` event.
    pub tick_interval: Duration,
    /// Failed authentications per client (all of loopback is one) within
    /// `auth_failure_window` that are answered at once; later wrong answers
    /// wait, longer each time, up to `max_auth_delay`. Right credentials
    /// are always let in at once.
    pub max_auth_failures: u32,
    pub auth_failure_window: Duration,
    pub max_auth_delay: Duration,
    /// Time a client has to send a complete HTTP request head, on every
    /// surface; an idle or dripping connection is closed after it.
    pub header_timeout: Duration,
    /// Connections per surface that have not authenticated (every canvas
    /// and browser-control connection, a WebSocket until its `connect` is
    /// accepted); more wait to be accepted. Three surfaces at 256 stay well
    /// within the common 1024 open-file limit, leaving the rest to
    /// authenticated clients.
    pub max_unauthenticated: usize,
    /// How long a graceful stop may take before connections are cut.
    pub shutdown_grace: Duration,
    /// How long a started browser may take until its CDP endpoint answers.
    pub browser_start_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            handshake_timeout: Duration::from_secs(10),
            max_payload: 1024 * 1024,
            max_buffered_bytes: 4 * 1024 * 1024,
            tick_interval: Duration::from_secs(30),
            max_auth_failures: 10,
            auth_failure_window: Duration::from_secs(60),
            max_auth_delay: Duration::from_secs(5),
            header_timeout: Duration::from_secs(10),
            max_unauthenticated: 256,
            shutdown_grace: Duration::from_millis(1500),
            browser_start_timeout: Duration::from_secs(20),
        }
    }
}

/// Everything one gateway needs to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewaySpec {
    /// Profile name (`default` for the default profile).
    pub profile: String,
    pub config_path: PathBuf,
    pub state_dir: PathBuf,
    pub workspace: PathBuf,
    /// Address of the gateway and canvas listeners (`gateway.bind`).
    pub bind: IpAddr,
    /// The base port: WebSocket protocol and HTTP probes.
    pub port: u16,
    pub auth: Auth,
    pub browser: BrowserSpec,
    pub canvas: CanvasSpec,
    pub limits: Limits,
    /// The whole environment of every process the gateway starts (browsers,
    /// rescue commands): see [`ChildEnv::minimal`]. Empty unless the caller
    /// fills it in from its environment snapshot.
    pub child_env: ChildEnv,
}

impl GatewaySpec {
    /// A loopback gateway without auth on `port`, with the derived ports of
    /// the manual (control = base + 2, canvas = base + 4, CDP = control + 9
    /// ..= control + 108) and the default chromium. Callers that hold a port
    /// plan overwrite the fields they resolved differently.
    pub fn new(
        profile: impl Into<String>,
        config_path: PathBuf,
        state_dir: PathBuf,
        workspace: PathBuf,
        port: u16,
    ) -> GatewaySpec {
        let control = port.saturating_add(2);
        let canvas_root = workspace.join("canvas");
        GatewaySpec {
            profile: profile.into(),
            config_path,
            state_dir,
            workspace,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port,
            auth: Auth::None,
            browser: BrowserSpec {
                enabled: true,
                control_port: control,
                cdp_range: control.saturating_add(9)..=control.saturating_add(108),
                profiles: BTreeMap::new(),
                executable: PathBuf::from("chromium"),
            },
            canvas: CanvasSpec {
                enabled: true,
                port: port.saturating_add(4),
                root: canvas_root,
            },
            limits: Limits::default(),
            child_env: ChildEnv::default(),
        }
    }

    /// `<state dir>/logs`, where the rolling log files of this profile live.
    pub fn logs_dir(&self) -> PathBuf {
        self.state_dir.join("logs")
    }

    /// `<state dir>/browser`, holding profile allocations and user data dirs.
    pub fn browser_dir(&self) -> PathBuf {
        self.state_dir.join("browser")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(port: u16, expected: (u16, u16, u16, u16)) {
        let spec = GatewaySpec::new(
            "main",
            PathBuf::from("/c.json"),
            PathBuf::from("/s"),
            PathBuf::from("/w"),
            port,
        );
        let got = (
            spec.browser.control_port,
            spec.canvas.port,
            *spec.browser.cdp_range.start(),
            *spec.browser.cdp_range.end(),
        );
        assert_eq!(got, expected, "base {port}");
    }

    #[test]
    fn derived_ports_follow_the_manual() {
        check(18789, (18791, 18793, 18800, 18899));
        check(19001, (19003, 19005, 19012, 19111));
    }

    #[test]
    fn defaults_are_loopback_and_canvas_in_workspace() {
        let spec = GatewaySpec::new(
            "main",
            PathBuf::from("/c.json"),
            PathBuf::from("/s"),
            PathBuf::from("/w"),
            18789,
        );
        assert!(spec.bind.is_loopback());
        assert_eq!(spec.canvas.root, PathBuf::from("/w/canvas"));
        assert_eq!(spec.logs_dir(), PathBuf::from("/s/logs"));
    }

    #[test]
    fn debug_never_shows_secrets() {
        let shown = format!("{:?}", Auth::Token("s3cret".into()));
        assert!(!shown.contains("s3cret"), "{shown}");
        assert_eq!(Auth::Password("x".into()).mode(), "password");
    }
}
