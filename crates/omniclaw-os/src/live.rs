//! The live side of the port plan: which process holds each planned port now.

use std::collections::HashMap;
use std::path::Path;

use omniclaw_core::ports::{Row, Surface};

use crate::lock::InstanceLock;
use crate::portowner::{self, Holder};

/// What is listening on the ports of one plan row right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortState {
    /// Nobody listens there.
    Free,
    /// The instance itself (its running gateway, or browsers it started).
    Listening { pid: u32 },
    /// Another process holds a port the instance needs.
    Held { port: u16, holder: Holder },
}

impl PortState {
    /// A port needed by an OmniClaw instance is taken by someone else.
    pub fn is_problem(&self) -> bool {
        matches!(self, PortState::Held { .. })
    }
}

impl std::fmt::Display for PortState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PortState::Free => f.write_str("free"),
            PortState::Listening { pid } => write!(f, "listening (pid {pid})"),
            PortState::Held { port, holder } => write!(f, "port {port} held by {holder}"),
        }
    }
}

/// The pid of the gateway running for the state dir, from its instance lock.
pub fn running_pid(state_dir: &Path) -> Option<u32> {
    InstanceLock::probe(&state_dir.join("gateway.lock"))
        .ok()
        .flatten()
        .map(|h| h.pid)
}

/// Checks every row against the OS's listening sockets, in one scan.
/// `running` maps instance names to the pid of their running gateway.
/// Foreign instances' ports count as theirs whoever holds them: OmniClaw
/// cannot tell an OpenClaw gateway from anything else and never flags it.
pub fn check(rows: &[Row], running: &HashMap<String, u32>) -> Vec<PortState> {
    check_with(rows, running, &portowner::listening())
}

/// [`check`] against a given table of listeners (for tests).
pub fn check_with(
    rows: &[Row],
    running: &HashMap<String, u32>,
    listening: &HashMap<u16, Holder>,
) -> Vec<PortState> {
    rows.iter()
        .map(|row| {
            let own = running.get(&row.instance).copied();
            let mut first_foreign = None;
            let mut any_own = None;
            for port in row.range.start()..=row.range.end() {
                let Some(h) = listening.get(&port) else {
                    continue;
                };
                // Browsers a running gateway started listen in its CDP
                // range under their own pids.
                let ours = row.foreign
                    || own == Some(h.pid)
                    || (own.is_some()
                        && matches!(row.surface, Surface::CdpRange | Surface::CdpPinned(_)));
                if ours {
                    any_own.get_or_insert(h.pid);
                } else if first_foreign.is_none() {
                    first_foreign = Some(PortState::Held {
                        port,
                        holder: h.clone(),
                    });
                }
            }
            first_foreign.unwrap_or(match any_own {
                Some(pid) => PortState::Listening { pid },
                None => PortState::Free,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use omniclaw_core::ports::{BindScope, PortKey, PortRange};

    fn row(instance: &str, surface: Surface, start: u16, end: u16, foreign: bool) -> Row {
        Row {
            instance: instance.into(),
            foreign,
            surface,
            range: PortRange::new(start, end).expect("range"),
            bind: BindScope::Loopback,
            key: PortKey::GatewayPort,
        }
    }

    fn holder(pid: u32) -> Holder {
        Holder {
            pid,
            name: format!("p{pid}"),
        }
    }

    #[test]
    fn classifies_holders() {
        let rows = vec![
            row("main", Surface::Gateway, 100, 100, false),
            row("main", Surface::CdpRange, 200, 299, false),
            row("rescue", Surface::Gateway, 300, 300, false),
            row("rescue", Surface::CdpRange, 400, 499, false),
            row("openclaw:.openclaw", Surface::Gateway, 500, 500, true),
            row("rescue", Surface::Canvas, 600, 600, false),
        ];
        let running = HashMap::from([("main".to_string(), 10)]);
        let listening = HashMap::from([
            (100, holder(10)),
            (250, holder(11)),
            (300, holder(99)),
            (450, holder(98)),
            (500, holder(97)),
        ]);
        let got = check_with(&rows, &running, &listening);
        assert_eq!(got[0], PortState::Listening { pid: 10 });
        assert_eq!(
            got[1],
            PortState::Listening { pid: 11 },
            "a browser of running main"
        );
        assert_eq!(
            got[2],
            PortState::Held {
                port: 300,
                holder: holder(99)
            }
        );
        assert!(got[2].is_problem());
        assert_eq!(
            got[3],
            PortState::Held {
                port: 450,
                holder: holder(98)
            },
            "rescue is not running"
        );
        assert_eq!(got[4], PortState::Listening { pid: 97 });
        assert_eq!(got[5], PortState::Free);
        assert_eq!(got[2].to_string(), "port 300 held by pid 99 (p99)");
    }
}
