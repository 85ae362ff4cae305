//! Why a gateway could not start, in words that name the port and the fix.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};

use omniclaw_os::lock::LockError;
use omniclaw_os::portowner::Holder;

use crate::server::ServeError;

/// One listener of a gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Surface {
    Gateway,
    BrowserControl,
    Canvas,
}

impl Surface {
    /// The key used in JSON payloads (`/readyz`, `health`).
    pub fn key(self) -> &'static str {
        match self {
            Surface::Gateway => "gateway",
            Surface::BrowserControl => "browserControl",
            Surface::Canvas => "canvas",
        }
    }

    /// The config key that moves this surface's port.
    pub fn port_key(self) -> &'static str {
        match self {
            Surface::Gateway => "gateway.port (or --port)",
            Surface::BrowserControl => "browser.controlPort",
            Surface::Canvas => "canvasHost.port",
        }
    }
}

impl fmt::Display for Surface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Surface::Gateway => "gateway",
            Surface::BrowserControl => "browser control service",
            Surface::Canvas => "canvas host",
        })
    }
}

fn holder_text(holder: &Option<Holder>) -> String {
    match holder {
        Some(h) => format!("held by {h}"),
        None => "held by another process".to_string(),
    }
}

/// Why [`crate::Gateway::bind`] refused; nothing stays bound after any of these.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("port {port} for the {surface} is already in use ({}): stop that process or move the port with {}", holder_text(holder), surface.port_key())]
    PortInUse {
        port: u16,
        surface: Surface,
        holder: Option<Holder>,
    },
    #[error("cannot listen on {addr} for the {surface}: {source}; check the address and {}", surface.port_key())]
    Bind {
        addr: SocketAddr,
        surface: Surface,
        source: io::Error,
    },
    #[error("refusing to bind the gateway to {addr} without authentication: set gateway.auth.mode to token or password (with gateway.auth.token or gateway.auth.password), or use gateway.bind: loopback")]
    InsecureBind { addr: IpAddr },
    #[error("gateway.auth.{mode} is too weak for a gateway bound to {addr}: {why}. Anyone who can reach that address can try {mode}s, so a non-loopback bind needs one of at least 16 random characters (or a long passphrase): generate one with `openssl rand -hex 24` and pass it (--{mode}) or store it in gateway.auth.{mode}, or use gateway.bind: loopback")]
    WeakSecret {
        mode: &'static str,
        addr: IpAddr,
        why: String,
    },
    #[error("gateway.auth.{mode} is empty: set a non-empty {mode}, or use gateway.auth.mode: none on a loopback bind")]
    EmptySecret { mode: &'static str },
    #[error("the {first} and the {second} are both set to port {port}: give each surface its own port ({} / {})", first.port_key(), second.port_key())]
    SamePort {
        port: u16,
        first: Surface,
        second: Surface,
    },
    #[error("browser CDP range {start}..={end} is empty or contains port {port} of the {surface}: move browser.cdpPortRangeStart")]
    CdpRange {
        start: u16,
        end: u16,
        port: u16,
        surface: Surface,
    },
}

/// Why [`crate::run`] (lock, bind, serve) stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("gateway for profile {profile}: {source}")]
    Locked {
        profile: String,
        #[source]
        source: LockError,
    },
    #[error(transparent)]
    Start(#[from] StartError),
    #[error(transparent)]
    Serve(#[from] ServeError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(err: StartError, expected: &str) {
        assert_eq!(err.to_string(), expected);
    }

    #[test]
    fn messages_name_port_surface_holder_and_fix() {
        check(
            StartError::PortInUse {
                port: 18791,
                surface: Surface::BrowserControl,
                holder: Some(Holder {
                    pid: 42,
                    name: "node".into(),
                }),
            },
            "port 18791 for the browser control service is already in use (held by pid 42 (node)): stop that process or move the port with browser.controlPort",
        );
        check(
            StartError::PortInUse {
                port: 18789,
                surface: Surface::Gateway,
                holder: None,
            },
            "port 18789 for the gateway is already in use (held by another process): stop that process or move the port with gateway.port (or --port)",
        );
        check(
            StartError::InsecureBind {
                addr: "0.0.0.0".parse().expect("ip"),
            },
            "refusing to bind the gateway to 0.0.0.0 without authentication: set gateway.auth.mode to token or password (with gateway.auth.token or gateway.auth.password), or use gateway.bind: loopback",
        );
        check(
            StartError::SamePort {
                port: 5,
                first: Surface::Gateway,
                second: Surface::Canvas,
            },
            "the gateway and the canvas host are both set to port 5: give each surface its own port (gateway.port (or --port) / canvasHost.port)",
        );
    }

    #[test]
    fn surface_keys() {
        assert_eq!(Surface::BrowserControl.key(), "browserControl");
        assert_eq!(Surface::Canvas.to_string(), "canvas host");
    }
}
