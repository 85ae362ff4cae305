//! Stopping a gateway that runs in a terminal, and the user id launchd needs.
//!
//! Must never signal a process the instance lock does not name as a
//! terminal-run gateway of the profile at that very moment.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::lock::{Holder, InstanceLock, Owner};

/// Why a terminal-run gateway was not stopped.
#[derive(Debug, thiserror::Error)]
pub enum TerminateError {
    #[error("the instance lock {} no longer names pid {pid} as a terminal-run gateway (now: {now}); nothing was signalled", lock.display())]
    NotConfirmed {
        lock: std::path::PathBuf,
        pid: u32,
        now: String,
    },
    #[error("cannot signal pid {pid}: {source}")]
    Signal { pid: u32, source: std::io::Error },
    #[error("pid {pid} did not stop within {secs} s after SIGTERM: look at it with `ps -p {pid}`; stop it yourself only if it is that gateway")]
    StillRunning { pid: u32, secs: u64 },
    #[error("stopping another process is not supported on this system: press Ctrl+C in the terminal that runs the gateway (pid {pid})")]
    Unsupported { pid: u32 },
}

/// Sends SIGTERM to `pid` only if the lock at `lock_path` is held right now
/// by `pid` as a terminal-run (`cli`) gateway, then waits up to `wait` for
/// the lock to be released.
pub fn terminate_cli_gateway(
    lock_path: &Path,
    pid: u32,
    wait: Duration,
) -> Result<(), TerminateError> {
    let holder = InstanceLock::probe(lock_path).ok().flatten();
    let confirmed =
        matches!(holder, Some(Holder { pid: p, owner: Some(Owner::Cli) }) if p == pid && p != 0);
    if !confirmed {
        return Err(TerminateError::NotConfirmed {
            lock: lock_path.to_path_buf(),
            pid,
            now: holder.map_or("not held".to_string(), |h| {
                format!(
                    "pid {}, {}",
                    h.pid,
                    h.owner.map_or("unknown owner", Owner::as_str)
                )
            }),
        });
    }
    signal_term(pid)?;
    let start = Instant::now();
    while start.elapsed() < wait {
        match InstanceLock::probe(lock_path) {
            Ok(Some(h)) if h.pid == pid => std::thread::sleep(Duration::from_millis(50)),
            _ => return Ok(()),
        }
    }
    Err(TerminateError::StillRunning {
        pid,
        secs: wait.as_secs(),
    })
}

#[cfg(unix)]
fn signal_term(pid: u32) -> Result<(), TerminateError> {
    let raw = libc::pid_t::try_from(pid).map_err(|_| TerminateError::Signal {
        pid,
        source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
    })?;
    // SAFETY: kill(2) has no memory-safety preconditions; `raw` is a
    // positive pid the instance lock confirmed just before.
    let rc = unsafe { libc::kill(raw, libc::SIGTERM) };
    if rc == 0 {
        Ok(())
    } else {
        Err(TerminateError::Signal {
            pid,
            source: std::io::Error::last_os_error(),
        })
    }
}

#[cfg(not(unix))]
fn signal_term(pid: u32) -> Result<(), TerminateError> {
    Err(TerminateError::Unsupported { pid })
}

/// The real user id of this process (launchd's `gui/UID` domain).
#[cfg(unix)]
pub fn current_uid() -> Option<u32> {
    // SAFETY: getuid(2) always succeeds and touches no memory of ours.
    Some(unsafe { libc::getuid() })
}

#[cfg(not(unix))]
pub fn current_uid() -> Option<u32> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_without_a_confirming_lock() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lock = dir.path().join("gateway.lock");
        let err = terminate_cli_gateway(&lock, 12345, Duration::from_millis(10))
            .expect_err("no lock, no signal");
        assert!(err.to_string().contains("now: not held"), "{err}");

        // Held by this process as a service: still not ours to signal.
        let held = InstanceLock::acquire(&lock, Owner::Service).expect("lock");
        let err = terminate_cli_gateway(&lock, std::process::id(), Duration::from_millis(10))
            .expect_err("service-owned");
        assert!(err.to_string().contains("service"), "{err}");
        drop(held);
    }

    #[cfg(unix)]
    #[test]
    fn uid_is_known() {
        assert!(current_uid().is_some());
    }
}
