//! Copies the WAL into the database file on a thread of its own.
//!
//! SQLite checkpoints on its own in the connection that commits once the WAL
//! holds 1000 pages: one turn in about fifty then waited for the copy and
//! its fsync, a few milliseconds, which was the whole p99 of a turn. Here the
//! writer's automatic checkpoint is pushed far out (it stays as a bound on
//! the WAL should this thread fall behind) and a connection of this thread
//! runs a PASSIVE checkpoint, which never blocks the writer or a reader:
//! after every [`EVERY`] commits, and once a second when commits were made
//! since the last one.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// Commits between checkpoints (a turn commits three times, each a few
/// pages).
const EVERY: u32 = 64;
/// A quiet store's last commits are copied this long after.
const IDLE: Duration = Duration::from_secs(1);
/// The writer's own checkpoint, only if this thread falls behind: the WAL
/// then holds at most this many pages (4 KiB each).
pub(super) const WRITER_BOUND_PAGES: u32 = 10_000;

/// The checkpoint thread of one store; stopped (and joined) when dropped.
#[derive(Debug)]
pub(super) struct Checkpointer {
    commits: Arc<AtomicU32>,
    kick: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread with a connection of its own to `path`.
    pub(super) fn start(path: &Path) -> rusqlite::Result<Checkpointer> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        let commits = Arc::new(AtomicU32::new(0));
        let (kick, kicked) = mpsc::sync_channel::<()>(1);
        let pending = commits.clone();
        let thread = std::thread::Builder::new()
            .name("omniclaw-store-checkpoint".into())
            .spawn(move || loop {
                let stop = matches!(
                    kicked.recv_timeout(IDLE),
                    Err(RecvTimeoutError::Disconnected)
                );
                if pending.swap(0, Ordering::Relaxed) > 0 {
                    // Busy (another checkpoint runs) or failed: the next
                    // round tries again, and the writer's bound holds.
                    let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                }
                if stop {
                    return;
                }
            })
            .map_err(|e| {
                rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
                    Some(format!("cannot start the checkpoint thread: {e}")),
                )
            })?;
        Ok(Checkpointer {
            commits,
            kick: Some(kick),
            thread: Some(thread),
        })
    }

    /// Counts a commit; every [`EVERY`]th wakes the thread.
    pub(super) fn committed(&self) {
        if self.commits.fetch_add(1, Ordering::Relaxed) + 1 >= EVERY {
            if let Some(kick) = &self.kick {
                // Full means a kick is already waiting.
                let _ = kick.try_send(());
            }
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        // Disconnecting wakes the thread for its last checkpoint.
        self.kick = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
