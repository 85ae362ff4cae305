//! The durable inbox of a Telegram channel: every update is stored here
//! (SQLite, `<state dir>/telegram/inbox.sqlite`) in the same transaction
//! that moves the `getUpdates` offset past it, before anything is done with
//! it. Handling then runs beside the polling — a run may take minutes while
//! `/stop` or an approval's button must get through — and an update is
//! marked handled when its reply is out. After a kill, the updates not
//! marked handled are handled again, and what their replies had reached
//! (the delivery record: the run id, the preview message, the chunks sent)
//! says how to finish them without a second answer.
//!
//! One connection behind a mutex: the channel is its only user, and every
//! statement is short. WAL with `synchronous=NORMAL`: a commit survives
//! the process being killed (only a power cut may lose the newest ones).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

/// Handled updates are kept this long (ms) below the offset, then pruned:
/// Telegram never sends them again.
const KEEP_HANDLED_MS: i64 = 7 * 24 * 3600 * 1000;

/// Why the inbox cannot be used; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    #[error("the Telegram inbox {}: {detail}", path.display())]
    Sqlite { path: PathBuf, detail: String },
    #[error("cannot create {}: {detail}", path.display())]
    Dir { path: PathBuf, detail: String },
}

/// What the reply to one update has reached, so that a restart finishes it
/// instead of answering twice.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The run that answers it (`tg:<update id>`, then `:2`, … when the
    /// model had to be asked again).
    pub run_id: String,
    pub attempt: u32,
    pub chat_id: i64,
    /// The user's message the first part replies to.
    pub reply_to: i32,
    pub session_key: String,
    /// The message edited while the run lasts (a preview or a status line).
    pub preview: Option<i32>,
    /// Whether that message shows part of the answer (not only a status).
    pub preview_has_answer: bool,
    /// What it shows now (an interrupted reply is marked on it).
    pub preview_text: String,
    /// Answer parts already sent (the first may be the preview itself);
    /// after block replies, parts of the answer's rest.
    pub parts_sent: usize,
    /// Bytes of the answer already sent as block replies
    /// (`streaming.block.enabled`).
    #[serde(default)]
    pub block_chars: usize,
    /// Set once the reply is complete or marked interrupted.
    pub finished: bool,
}

/// One stored update.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub update_id: i64,
    /// The update as Telegram sent it (JSON).
    pub body: String,
    pub delivery: Option<Delivery>,
}

/// The inbox of one channel.
pub struct Inbox {
    conn: Mutex<Connection>,
    path: PathBuf,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Inbox {
    /// `<state dir>/telegram/inbox.sqlite`.
    pub fn path_in(state_dir: &Path) -> PathBuf {
        state_dir.join("telegram").join("inbox.sqlite")
    }

    /// Opens (or creates) the inbox of `state_dir`. A channel that polled
    /// before the inbox existed kept its offset in `telegram/offset`: it is
    /// taken over once, so no update is fetched twice.
    pub fn open(state_dir: &Path) -> Result<Inbox, InboxError> {
        let path = Inbox::path_in(state_dir);
        if let Some(dir) = path.parent() {
            omniclaw_os::fsx::create_private_dir(dir).map_err(|e| InboxError::Dir {
                path: dir.to_path_buf(),
                detail: e.to_string(),
            })?;
        }
        let sql = |e: rusqlite::Error| InboxError::Sqlite {
            path: path.clone(),
            detail: e.to_string(),
        };
        let conn = Connection::open(&path).map_err(sql)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(sql)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=NORMAL;
             CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS updates (
                 update_id INTEGER PRIMARY KEY,
                 received_ms INTEGER NOT NULL,
                 body TEXT NOT NULL,
                 delivery TEXT,
                 handled_ms INTEGER,
                 result TEXT
             );
             CREATE INDEX IF NOT EXISTS updates_open ON updates (handled_ms, update_id);",
        )
        .map_err(sql)?;
        restrict(&path);
        let inbox = Inbox {
            conn: Mutex::new(conn),
            path,
        };
        if inbox.stored_offset()?.is_none() {
            if let Ok(Some(old)) = omniclaw_os::rescue::read_offset(state_dir) {
                inbox.set_offset(old)?;
            }
        }
        Ok(inbox)
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn err(&self, e: rusqlite::Error) -> InboxError {
        InboxError::Sqlite {
            path: self.path.clone(),
            detail: e.to_string(),
        }
    }

    fn stored_offset(&self) -> Result<Option<i64>, InboxError> {
        self.conn()
            .query_row("SELECT value FROM meta WHERE key = 'offset'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.err(e))
    }

    fn set_offset(&self, offset: i64) -> Result<(), InboxError> {
        self.conn()
            .execute(
                "INSERT INTO meta (key, value) VALUES ('offset', ?1)
                 ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)",
                [offset],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// The `getUpdates` offset: one past the newest stored update.
    pub fn offset(&self) -> Result<i64, InboxError> {
        Ok(self.stored_offset()?.unwrap_or(0))
    }

    /// Stores `updates` (id, JSON) and moves the offset past them, in one
    /// transaction. Returns the ids that were new (an id stored before —
    /// fetched again after a kill between Telegram's answer and this
    /// commit — is not handled twice).
    pub fn store(&self, updates: &[(i64, String)]) -> Result<Vec<i64>, InboxError> {
        let mut conn = self.conn();
        let path = self.path.clone();
        let sql = move |e: rusqlite::Error| InboxError::Sqlite {
            path: path.clone(),
            detail: e.to_string(),
        };
        let tx = conn.transaction().map_err(&sql)?;
        let mut fresh = Vec::new();
        let now = now_ms();
        let mut next = None;
        for (id, body) in updates {
            let added = tx
                .execute(
                    "INSERT OR IGNORE INTO updates (update_id, received_ms, body) VALUES (?1, ?2, ?3)",
                    params![id, now, body],
                )
                .map_err(&sql)?;
            if added == 1 {
                fresh.push(*id);
            }
            next = next.max(Some(id + 1));
        }
        if let Some(next) = next {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('offset', ?1)
                 ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)",
                [next],
            )
            .map_err(&sql)?;
        }
        tx.commit().map_err(&sql)?;
        Ok(fresh)
    }

    /// Updates not yet handled, oldest first.
    pub fn open_updates(&self) -> Result<Vec<Stored>, InboxError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT update_id, body, delivery FROM updates WHERE handled_ms IS NULL ORDER BY update_id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                let delivery: Option<String> = r.get(2)?;
                Ok(Stored {
                    update_id: r.get(0)?,
                    body: r.get(1)?,
                    delivery: delivery.and_then(|d| serde_json::from_str(&d).ok()),
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// One stored update.
    pub fn get(&self, update_id: i64) -> Result<Option<Stored>, InboxError> {
        self.conn()
            .query_row(
                "SELECT update_id, body, delivery FROM updates WHERE update_id = ?1",
                [update_id],
                |r| {
                    let delivery: Option<String> = r.get(2)?;
                    Ok(Stored {
                        update_id: r.get(0)?,
                        body: r.get(1)?,
                        delivery: delivery.and_then(|d| serde_json::from_str(&d).ok()),
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Records how far the reply to `update_id` got.
    pub fn save_delivery(&self, update_id: i64, delivery: &Delivery) -> Result<(), InboxError> {
        let text = serde_json::to_string(delivery).unwrap_or_default();
        self.conn()
            .execute(
                "UPDATE updates SET delivery = ?2 WHERE update_id = ?1",
                params![update_id, text],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// Marks `update_id` handled with a word on what became of it, and
    /// prunes handled updates old enough that Telegram is long past them.
    pub fn handled(&self, update_id: i64, result: &str) -> Result<(), InboxError> {
        let now = now_ms();
        let conn = self.conn();
        conn.execute(
            "UPDATE updates SET handled_ms = ?2, result = ?3 WHERE update_id = ?1",
            params![update_id, now, result],
        )
        .map_err(|e| self.err(e))?;
        conn.execute(
            "DELETE FROM updates WHERE handled_ms IS NOT NULL AND handled_ms < ?1
               AND update_id < (SELECT value FROM meta WHERE key = 'offset')",
            [now - KEEP_HANDLED_MS],
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Whether `update_id` was handled (tests and `status`).
    pub fn is_handled(&self, update_id: i64) -> Result<bool, InboxError> {
        self.conn()
            .query_row(
                "SELECT handled_ms IS NOT NULL FROM updates WHERE update_id = ?1",
                [update_id],
                |r| r.get(0),
            )
            .optional()
            .map(|v| v.unwrap_or(false))
            .map_err(|e| self.err(e))
    }
}

/// The inbox holds what people wrote: owner-only, like the session store.
fn restrict(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_are_stored_once_with_the_offset_and_stay_open_until_handled() {
        let dir = tempfile::tempdir().expect("tempdir");
        let inbox = Inbox::open(dir.path()).expect("open");
        assert_eq!(inbox.offset().expect("offset"), 0);
        let fresh = inbox
            .store(&[(5, "{\"a\":1}".into()), (6, "{\"b\":2}".into())])
            .expect("stored");
        assert_eq!(fresh, [5, 6]);
        assert_eq!(inbox.offset().expect("offset"), 7);
        // Fetched again (a kill before the commit the first time): not new.
        assert_eq!(
            inbox.store(&[(6, "{\"b\":2}".into())]).expect("stored"),
            Vec::<i64>::new()
        );
        let delivery = Delivery {
            run_id: "tg:5".into(),
            preview: Some(9),
            ..Delivery::default()
        };
        inbox.save_delivery(5, &delivery).expect("saved");
        inbox.handled(6, "answered").expect("handled");
        drop(inbox);

        let again = Inbox::open(dir.path()).expect("reopen");
        assert_eq!(again.offset().expect("offset"), 7);
        let open = again.open_updates().expect("open");
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].update_id, 5);
        assert_eq!(open[0].delivery.as_ref(), Some(&delivery));
        assert!(again.is_handled(6).expect("read"));
        assert!(!again.is_handled(5).expect("read"));
    }

    #[test]
    fn a_record_written_before_block_replies_reads_as_none_sent() {
        let old = r#"{"run_id":"tg:5","attempt":1,"chat_id":7,"reply_to":3,"session_key":"k","preview":null,"preview_has_answer":false,"preview_text":"","parts_sent":1,"finished":false}"#;
        let read: Delivery = serde_json::from_str(old).expect("an older record reads");
        assert_eq!(read.block_chars, 0);
        assert_eq!(read.parts_sent, 1);
    }

    #[test]
    fn the_old_offset_file_is_taken_over() {
        let dir = tempfile::tempdir().expect("tempdir");
        omniclaw_os::rescue::write_offset(dir.path(), 41).expect("old offset");
        let inbox = Inbox::open(dir.path()).expect("open");
        assert_eq!(inbox.offset().expect("offset"), 41);
    }
}
