//! An SSH tunnel to a remote gateway, as data: the `ssh` command line, and
//! the state machine that keeps the tunnel up (restart with backoff when
//! the `ssh` process dies), with time passed in as milliseconds so its
//! table tests need no clock.
//!
//! The command line is a vector handed to the OS, never a shell string:
//! the target was checked by [`crate::remote::parse_ssh`], host keys are
//! checked strictly against the remote's own known-hosts file, and `ssh`
//! never asks anything (`BatchMode=yes`).

use std::path::Path;

use crate::remotes::SshTunnel;

/// `ssh -N -L 127.0.0.1:L:127.0.0.1:R …` for `tunnel`, with its known-hosts
/// file; the program name is not included.
pub fn ssh_args(tunnel: &SshTunnel, known_hosts: &Path) -> Vec<String> {
    let mut args = vec![
        "-N".to_string(),
        "-L".to_string(),
        format!(
            "127.0.0.1:{}:127.0.0.1:{}",
            tunnel.local_port, tunnel.remote_port
        ),
        "-o".to_string(),
        "BatchMode=yes".to_string(),
        "-o".to_string(),
        "StrictHostKeyChecking=yes".to_string(),
        "-o".to_string(),
        format!("UserKnownHostsFile={}", known_hosts.display()),
        "-o".to_string(),
        "GlobalKnownHostsFile=/dev/null".to_string(),
        "-o".to_string(),
        "ExitOnForwardFailure=yes".to_string(),
        // A dead link is noticed in about 30 s, and the tunnel restarted.
        "-o".to_string(),
        "ServerAliveInterval=10".to_string(),
        "-o".to_string(),
        "ServerAliveCountMax=3".to_string(),
        "-o".to_string(),
        "ConnectTimeout=10".to_string(),
    ];
    if let Some(identity) = &tunnel.identity {
        args.extend([
            "-i".to_string(),
            identity.display().to_string(),
            "-o".to_string(),
            "IdentitiesOnly=yes".to_string(),
        ]);
    }
    args.extend([
        "-p".to_string(),
        tunnel.target.port.to_string(),
        // Nothing after this is read as an option.
        "--".to_string(),
        tunnel.target.destination(),
    ]);
    args
}

/// How long to wait before the n-th restart in a row (0-based); the last
/// entry repeats.
pub const BACKOFF_MS: [u64; 8] = [250, 500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000];

/// A tunnel that stayed up this long was good: its next exit restarts it
/// after the first, shortest wait again.
pub const STABLE_MS: u64 = 3_000;

/// The wait before a restart after `failures` exits in a row.
pub fn backoff_ms(failures: u32) -> u64 {
    let at = usize::try_from(failures).unwrap_or(usize::MAX);
    BACKOFF_MS[at.min(BACKOFF_MS.len() - 1)]
}

/// Where a kept-up tunnel is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TunnelState {
    /// `ssh` runs; its local port does not answer yet.
    Starting { failures: u32 },
    /// The local port answers: the tunnel carries connections.
    Up { since_ms: u64, failures: u32 },
    /// `ssh` exited; it is started again at `until_ms`.
    Waiting {
        until_ms: u64,
        failures: u32,
        reason: String,
    },
}

/// What happened to the tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TunnelEvent {
    /// The local port answered.
    Ready,
    /// The `ssh` process exited, with what it said.
    Exited { reason: String },
    /// Time passed (the supervisor's poll).
    Tick,
}

/// What the supervisor must do after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelAction {
    Nothing,
    /// Start `ssh` again.
    Spawn,
}

impl TunnelState {
    /// The state of a tunnel whose `ssh` was just started.
    pub fn started() -> TunnelState {
        TunnelState::Starting { failures: 0 }
    }

    /// The next state after `event` at `now_ms`, and what to do.
    pub fn step(self, event: TunnelEvent, now_ms: u64) -> (TunnelState, TunnelAction) {
        use TunnelAction::{Nothing, Spawn};
        match (self, event) {
            (TunnelState::Starting { failures }, TunnelEvent::Ready) => (
                TunnelState::Up {
                    since_ms: now_ms,
                    failures,
                },
                Nothing,
            ),
            (TunnelState::Starting { failures }, TunnelEvent::Exited { reason }) => {
                (wait(failures, now_ms, reason), Nothing)
            }
            (TunnelState::Up { since_ms, failures }, TunnelEvent::Exited { reason }) => {
                let failures = if now_ms.saturating_sub(since_ms) >= STABLE_MS {
                    0
                } else {
                    failures
                };
                (wait(failures, now_ms, reason), Nothing)
            }
            (
                TunnelState::Waiting {
                    until_ms, failures, ..
                },
                TunnelEvent::Tick,
            ) if now_ms >= until_ms => (TunnelState::Starting { failures }, Spawn),
            (state, _) => (state, Nothing),
        }
    }

    /// `up`, `starting` or `restarting`, for lists and JSON.
    pub fn word(&self) -> &'static str {
        match self {
            TunnelState::Starting { .. } => "starting",
            TunnelState::Up { .. } => "up",
            TunnelState::Waiting { .. } => "restarting",
        }
    }
}

fn wait(failures: u32, now_ms: u64, reason: String) -> TunnelState {
    TunnelState::Waiting {
        until_ms: now_ms + backoff_ms(failures),
        failures: failures.saturating_add(1),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::parse_ssh;
    use std::path::PathBuf;

    #[test]
    fn command_line() {
        let mut tunnel = SshTunnel {
            target: parse_ssh("ada@vps.example.com:2222").expect("target"),
            remote_port: 18789,
            local_port: 28789,
            host_key: String::new(),
            identity: None,
        };
        let kh = Path::new("/h/.omniclaw/remotes/vps/known_hosts");
        let args = ssh_args(&tunnel, kh).join(" ");
        assert_eq!(
            args,
            "-N -L 127.0.0.1:28789:127.0.0.1:18789 -o BatchMode=yes -o StrictHostKeyChecking=yes \
             -o UserKnownHostsFile=/h/.omniclaw/remotes/vps/known_hosts -o GlobalKnownHostsFile=/dev/null \
             -o ExitOnForwardFailure=yes -o ServerAliveInterval=10 -o ServerAliveCountMax=3 \
             -o ConnectTimeout=10 -p 2222 -- ada@vps.example.com"
        );
        tunnel.identity = Some(PathBuf::from("/h/key"));
        let args = ssh_args(&tunnel, kh);
        let at = args.iter().position(|a| a == "-i").expect("-i");
        assert_eq!(args[at + 1], "/h/key");
        assert_eq!(args.last().map(String::as_str), Some("ada@vps.example.com"));
    }

    #[test]
    fn backoff_grows_and_caps() {
        let waits: Vec<u64> = (0..10).map(backoff_ms).collect();
        assert_eq!(
            waits,
            [250, 500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]
        );
        assert_eq!(backoff_ms(u32::MAX), 30_000);
    }

    fn exited() -> TunnelEvent {
        TunnelEvent::Exited {
            reason: "Connection refused".into(),
        }
    }

    /// Runs `events` (with their times) from a fresh start and checks the
    /// state and action after each.
    fn check(steps: &[(u64, TunnelEvent, &str, Option<u64>, TunnelAction)]) {
        let mut state = TunnelState::started();
        for (i, (now, event, word, until, action)) in steps.iter().enumerate() {
            let (next, got) = state.step(event.clone(), *now);
            assert_eq!(next.word(), *word, "step {i}: {next:?}");
            assert_eq!(got, *action, "step {i}");
            if let TunnelState::Waiting { until_ms, .. } = &next {
                assert_eq!(Some(*until_ms), *until, "step {i}");
            }
            state = next;
        }
    }

    #[test]
    fn a_killed_tunnel_comes_back_quickly() {
        use TunnelAction::{Nothing, Spawn};
        check(&[
            (0, TunnelEvent::Ready, "up", None, Nothing),
            (60_000, exited(), "restarting", Some(60_250), Nothing),
            (
                60_100,
                TunnelEvent::Tick,
                "restarting",
                Some(60_250),
                Nothing,
            ),
            (60_250, TunnelEvent::Tick, "starting", None, Spawn),
            (60_400, TunnelEvent::Ready, "up", None, Nothing),
            // Up long enough again: the wait starts from the shortest.
            (70_000, exited(), "restarting", Some(70_250), Nothing),
        ]);
    }

    #[test]
    fn a_failing_tunnel_backs_off() {
        use TunnelAction::{Nothing, Spawn};
        check(&[
            (0, exited(), "restarting", Some(250), Nothing),
            (250, TunnelEvent::Tick, "starting", None, Spawn),
            (300, exited(), "restarting", Some(800), Nothing),
            (800, TunnelEvent::Tick, "starting", None, Spawn),
            (900, exited(), "restarting", Some(1_900), Nothing),
            (1_900, TunnelEvent::Tick, "starting", None, Spawn),
            // Up, but not for long: the failures still count.
            (2_000, TunnelEvent::Ready, "up", None, Nothing),
            (2_500, exited(), "restarting", Some(4_500), Nothing),
            // Events that do not apply change nothing.
            (
                2_600,
                TunnelEvent::Ready,
                "restarting",
                Some(4_500),
                Nothing,
            ),
        ]);
    }
}
