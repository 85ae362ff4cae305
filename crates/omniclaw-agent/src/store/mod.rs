//! The session store: every transcript of a gateway in one SQLite file
//! (`<state dir>/agent/sessions.sqlite`).
//!
//! Durability rules, which the kill test checks for real:
//! - each call is one transaction: a message is stored whole, with the
//!   session's counters and the spend ledger, or not at all;
//! - `begin_run` commits the user message before it returns, so it is
//!   durable before any model call, and a retried run id changes nothing;
//! - a run found unfinished when the store opens (its process was killed)
//!   is closed as interrupted: unanswered tool calls get an error result and
//!   a visible marker message ends the turn, so the transcript stays one a
//!   provider accepts.
//!
//! The file is WAL with `synchronous=NORMAL`: a killed process loses no
//! committed call; a power cut may lose the last calls, never the file.
//! The WAL is copied into the file by a thread of the store's own
//! ([`checkpoint`]), not by whichever commit fills it.
//! One process owns the file (a lock file beside it): opening it closes
//! unfinished runs, which would be wrong while another process runs them.
//!
//! Calls block; the gateway runs them on its blocking pool. Writes go
//! through one connection behind a mutex (SQLite has one writer anyway);
//! reads take a connection of their own from a small pool, so a long
//! listing never holds up a `begin_run`.

mod checkpoint;
mod export;
mod schema;
mod tails;

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use rusqlite::config::DbConfig;
use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension};
use serde_json::json;

use crate::clock::{Clock, Millis};
use crate::message::{
    AssistantBlock, AssistantMessage, Message, StopReason, TextBlock, ToolResultMessage, Usage,
    UserMessage,
};
use crate::session::{
    Appended, Begin, RunOutcome, RunStatus, SessionKey, SessionStore, Spend, StoreError,
    StoredMessage,
};

/// The model name of the marker message that closes an interrupted run.
pub const INTERRUPTED_MODEL: &str = "interrupted";
/// The provider and api of messages the store writes itself.
pub const STORE_PROVIDER: &str = "omniclaw";

/// The longest `last_message_preview`, in characters.
const PREVIEW_CHARS: usize = 120;
/// Idle read connections kept open.
const MAX_IDLE_READERS: usize = 4;
/// How long a call waits for SQLite's own locks (a checkpoint, a reader
/// opening) before it fails.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Settings of the store (`session.*`, OmniClaw's own keys).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreSettings {
    /// `session.retentionDays`: sessions untouched for longer are deleted
    /// when the store opens and at each [`SqliteStore::prune`]; `None` keeps
    /// them forever.
    pub retention_days: Option<u32>,
}

/// One row of `sessions.list`.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionInfo {
    pub key: SessionKey,
    /// UUIDv7, kept across resets.
    pub session_id: String,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub label: Option<String>,
    /// Messages in the active history (since the last reset).
    pub message_count: u64,
    /// Tokens and USD of the active history's provider calls.
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub spend_usd: f64,
    pub last_message_preview: Option<String>,
    pub last_run_id: Option<String>,
    /// How the last run ended; `None` while it runs or before the first.
    pub last_run_status: Option<RunStatus>,
    /// A run of this session is in progress.
    pub running: bool,
    /// The last run was cut by a kill or a restart.
    pub interrupted: bool,
}

/// Which page of `sessions.list`: newest activity first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub limit: usize,
    pub offset: usize,
    /// Only the sessions of this agent.
    pub agent_id: Option<String>,
}

impl Default for ListQuery {
    fn default() -> ListQuery {
        ListQuery {
            limit: 100,
            offset: 0,
            agent_id: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SessionPage {
    /// Sessions matching the query, all pages together.
    pub total: u64,
    pub sessions: Vec<SessionInfo>,
}

/// A page of `chat.history`: `offset` counts back from the newest message.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPage {
    /// `None` when the session does not exist (not an error: an empty page).
    pub session_id: Option<String>,
    /// Oldest first.
    pub messages: Vec<StoredMessage>,
    /// Messages in the active history.
    pub total: u64,
    pub offset: u64,
    pub has_more: bool,
}

/// Why a session was reset (`sessions.reset {reason}`, `/new`, `/reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetReason {
    New,
    Reset,
}

impl ResetReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ResetReason::New => "new",
            ResetReason::Reset => "reset",
        }
    }
}

/// What the store knows of a run (`agent.wait`, a replayed `agent`).
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    pub key: SessionKey,
    pub session_id: String,
    /// The user message that started it (a retried id with other text is a
    /// conflict).
    pub input: String,
    pub started_at: Millis,
    /// `None` while it runs.
    pub outcome: Option<RunOutcome>,
}

/// The SQLite session store.
pub struct SqliteStore {
    path: PathBuf,
    clock: Arc<dyn Clock>,
    settings: RwLock<StoreSettings>,
    /// `None` for a view opened read-only beside the process that owns
    /// the store ([`SqliteStore::open_read_only`]).
    writer: Option<Mutex<Connection>>,
    readers: Mutex<Vec<Connection>>,
    /// Decoded histories of the sessions used last ([`tails`]).
    tails: Mutex<tails::Tails>,
    /// Copies the WAL into the file off the writer's path; `None` for a
    /// read-only view (or when its thread could not start: SQLite then
    /// checkpoints in the writer as it does by default).
    checkpointer: Option<checkpoint::Checkpointer>,
    /// Held for the store's life; the OS drops it when the process dies.
    _owner: Option<File>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (or creates) the store at `path`: takes the lock file beside it,
    /// refuses a file of a newer schema without writing to it, migrates an
    /// older one, closes runs a killed process left unfinished and prunes
    /// sessions past `retentionDays`.
    pub fn open(
        path: impl Into<PathBuf>,
        settings: StoreSettings,
        clock: Arc<dyn Clock>,
    ) -> Result<SqliteStore, StoreError> {
        let path = path.into();
        let open_err = |detail: String| StoreError::Open {
            path: path.clone(),
            detail,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| open_err(format!("cannot create {}: {e}", dir.display())))?;
        }
        let owner = take_owner_lock(&path)?;
        create_private(&path).map_err(|e| open_err(e.to_string()))?;

        let mut conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| map_err(&path, e))?;
        // Nothing is written before the version is known: a newer file stays
        // byte for byte as it was.
        match schema::inspect(&conn).map_err(|e| map_err(&path, e))? {
            schema::Found::TooNew(found) => {
                return Err(StoreError::TooNew {
                    path,
                    found,
                    supported: schema::VERSION,
                })
            }
            schema::Found::Foreign(found) => {
                return Err(StoreError::NotADatabase {
                    path,
                    detail: format!("schema version {found} is not one OmniClaw writes"),
                })
            }
            schema::Found::Usable(_) => {}
        }
        configure(&path, &conn)?;
        schema::migrate(&mut conn).map_err(|e| map_err(&path, e))?;
        let checkpointer = match checkpoint::Checkpointer::start(&path) {
            Ok(c) => {
                conn.pragma_update(None, "wal_autocheckpoint", checkpoint::WRITER_BOUND_PAGES)
                    .map_err(|e| map_err(&path, e))?;
                Some(c)
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "the session store's checkpoint thread did not start: SQLite copies its WAL as the writer commits");
                None
            }
        };

        let store = SqliteStore {
            path,
            clock,
            settings: RwLock::new(settings),
            writer: Some(Mutex::new(conn)),
            readers: Mutex::new(Vec::new()),
            tails: Mutex::default(),
            checkpointer,
            _owner: Some(owner),
        };
        store.close_interrupted_runs()?;
        store.prune()?;
        Ok(store)
    }

    /// Opens a store another process owns (a running gateway) to read it:
    /// sessions, history, export. Writes are refused with
    /// [`StoreError::ReadOnly`]; a file of a newer version is refused as
    /// by [`SqliteStore::open`]. `None` when there is no store yet.
    pub fn open_read_only(
        path: impl Into<PathBuf>,
        clock: Arc<dyn Clock>,
    ) -> Result<Option<SqliteStore>, StoreError> {
        let path = path.into();
        if !path.exists() {
            return Ok(None);
        }
        let conn = open_reader(&path).map_err(|e| map_err(&path, e))?;
        match schema::inspect(&conn).map_err(|e| map_err(&path, e))? {
            schema::Found::TooNew(found) => {
                return Err(StoreError::TooNew {
                    path,
                    found,
                    supported: schema::VERSION,
                })
            }
            schema::Found::Foreign(found) => {
                return Err(StoreError::NotADatabase {
                    path,
                    detail: format!("schema version {found} is not one OmniClaw writes"),
                })
            }
            schema::Found::Usable(_) => {}
        }
        Ok(Some(SqliteStore {
            path,
            clock,
            settings: RwLock::new(StoreSettings::default()),
            writer: None,
            readers: Mutex::new(vec![conn]),
            tails: Mutex::default(),
            checkpointer: None,
            _owner: None,
        }))
    }

    /// New settings (a reloaded `session.retentionDays`), used from the
    /// next [`SqliteStore::prune`] on.
    pub fn set_settings(&self, settings: StoreSettings) {
        *self.settings.write().unwrap_or_else(|p| p.into_inner()) = settings;
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Deletes the sessions nobody touched for `retentionDays` (never one
    /// with a run in progress) and ledger rows as old. Returns how many
    /// sessions went.
    pub fn prune(&self) -> Result<usize, StoreError> {
        let retention = self
            .settings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .retention_days;
        let Some(days) = retention else {
            return Ok(0);
        };
        let cutoff = self.clock.now_ms() - i64::from(days) * 86_400_000;
        self.write(|tx| {
            let n = tx.execute(
                "DELETE FROM sessions WHERE updated_at < ?1 AND NOT EXISTS
                   (SELECT 1 FROM runs WHERE runs.session = sessions.id AND runs.status = 'running')",
                [cutoff],
            )?;
            tx.execute("DELETE FROM usage WHERE at < ?1", [cutoff])?;
            Ok(n)
        })
    }

    /// Creates the session if it is missing (`sessions.create`); an existing
    /// one is returned as it is, with its label set when one is given.
    pub fn create(&self, key: &SessionKey, label: Option<&str>) -> Result<SessionInfo, StoreError> {
        let now = self.clock.now_ms();
        self.write(|tx| {
            let s = match session_row(tx, key.as_str())? {
                Some(s) => s,
                None => new_session(tx, key.as_str(), now)?,
            };
            if let Some(label) = label {
                tx.execute(
                    "UPDATE sessions SET label = ?2 WHERE id = ?1",
                    params![s.id, label],
                )?;
            }
            Ok(())
        })?;
        self.get(key)?.ok_or_else(|| {
            StoreError::Message(format!("session {key} vanished while it was created"))
        })
    }

    /// Sets or clears a session's label (`sessions.patch {label}`). `None`
    /// when there is no such session.
    pub fn set_label(
        &self,
        key: &SessionKey,
        label: Option<&str>,
    ) -> Result<Option<SessionInfo>, StoreError> {
        let n = self.write(|tx| {
            tx.execute(
                "UPDATE sessions SET label = ?2 WHERE key = ?1",
                params![key.as_str(), label],
            )
        })?;
        if n == 0 {
            return Ok(None);
        }
        self.get(key)
    }

    /// One session's row (`sessions.describe`).
    pub fn get(&self, key: &SessionKey) -> Result<Option<SessionInfo>, StoreError> {
        self.read(|conn| {
            let sql = format!("{INFO_SELECT} WHERE s.key = ?1");
            conn.prepare_cached(&sql)?
                .query_row([key.as_str()], info_from_row)
                .optional()
        })
    }

    /// A page of sessions, the most recently active first (`sessions.list`).
    pub fn list(&self, query: &ListQuery) -> Result<SessionPage, StoreError> {
        let prefix = query.agent_id.as_ref().map(|a| format!("agent:{a}:"));
        self.read(|conn| {
            let total: i64 = conn.prepare_cached(
                "SELECT count(*) FROM sessions s WHERE ?1 IS NULL OR substr(s.key, 1, length(?1)) = ?1",
            )?
            .query_row([&prefix], |r| r.get(0))?;
            let sql = format!(
                "{INFO_SELECT} WHERE ?1 IS NULL OR substr(s.key, 1, length(?1)) = ?1
                 ORDER BY s.updated_at DESC, s.id DESC LIMIT ?2 OFFSET ?3"
            );
            let sessions = conn
                .prepare_cached(&sql)?
                .query_map(params![prefix, to_i64(query.limit), to_i64(query.offset)], info_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(SessionPage {
                total: to_u64(total),
                sessions,
            })
        })
    }

    /// A page of the active history: up to `limit` messages before the
    /// newest `offset` ones, oldest first (`chat.history`).
    pub fn history_page(
        &self,
        key: &SessionKey,
        limit: usize,
        offset: usize,
    ) -> Result<HistoryPage, StoreError> {
        let path = self.path.clone();
        let rows = self.read(|conn| {
            let Some(s) = session_row(conn, key.as_str())? else {
                return Ok(None);
            };
            let total: i64 = conn
                .prepare_cached(
                    "SELECT count(*) FROM entries WHERE session = ?1 AND seq > ?2 AND kind = 'message'",
                )?
                .query_row(params![s.id, s.reset_seq], |r| r.get(0))?;
            let mut rows = conn
                .prepare_cached(
                    "SELECT id, seq, run_id, body FROM entries
                     WHERE session = ?1 AND seq > ?2 AND kind = 'message'
                     ORDER BY seq DESC LIMIT ?3 OFFSET ?4",
                )?
                .query_map(params![s.id, s.reset_seq, to_i64(limit), to_i64(offset)], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, Option<String>>(2)?, r.get::<_, String>(3)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows.reverse();
            Ok(Some((s.session_id, total, rows)))
        })?;
        let Some((session_id, total, rows)) = rows else {
            return Ok(HistoryPage {
                session_id: None,
                messages: Vec::new(),
                total: 0,
                offset: offset as u64,
                has_more: false,
            });
        };
        let messages = rows
            .into_iter()
            .map(|(id, seq, run_id, body)| {
                let message = decode(&path, &body)?;
                Ok(StoredMessage {
                    id,
                    seq: to_u64(seq),
                    run_id,
                    message,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let total = to_u64(total);
        let offset = offset as u64;
        let has_more = offset + (messages.len() as u64) < total;
        Ok(HistoryPage {
            session_id: Some(session_id),
            messages,
            total,
            offset,
            has_more,
        })
    }

    /// [`SessionStore::history`]'s read: after the cached tail when
    /// `use_tail`, else whole. `None` when the tail moved on meanwhile.
    fn history_tail(
        &self,
        key: &SessionKey,
        limit: usize,
        use_tail: bool,
    ) -> Result<Option<Vec<StoredMessage>>, StoreError> {
        let read = self.read(|conn| {
            let Some(s) = session_row(conn, key.as_str())? else {
                return Ok(None);
            };
            let stamp = tails::Stamp {
                session_id: s.session_id,
                reset_seq: s.reset_seq,
                limit,
            };
            let after = use_tail
                .then(|| lock(&self.tails).read_after(key.as_str(), &stamp))
                .flatten();
            let since = after.map_or(s.reset_seq, to_i64);
            let mut rows = conn
                .prepare_cached(
                    "SELECT id, seq, run_id, body FROM entries
                     WHERE session = ?1 AND seq > ?2 AND kind = 'message'
                     ORDER BY seq DESC LIMIT ?3",
                )?
                .query_map(params![s.id, since, to_i64(limit)], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, String>(3)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows.reverse();
            Ok(Some((stamp, after, rows)))
        })?;
        let Some((stamp, after, rows)) = read else {
            return Ok(Some(Vec::new()));
        };
        let fresh = rows
            .into_iter()
            .map(|(id, seq, run_id, body)| {
                let message = decode(&self.path, &body)?;
                let stored = StoredMessage {
                    id,
                    seq: to_u64(seq),
                    run_id,
                    message,
                };
                Ok((stored, body.len()))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(lock(&self.tails).extend(key.as_str(), stamp, after, fresh))
    }

    /// Resets a session (`sessions.reset`, `/new`): the sessionId stays, a
    /// reset entry is written and the active history starts after it. A
    /// missing session is created.
    pub fn reset(&self, key: &SessionKey, reason: ResetReason) -> Result<SessionInfo, StoreError> {
        let now = self.clock.now_ms();
        self.write(|tx| {
            let mut s = match session_row(tx, key.as_str())? {
                Some(s) => s,
                None => new_session(tx, key.as_str(), now)?,
            };
            if let Some(run_id) = running_run(tx, s.id)? {
                return Ok(Err(StoreError::RunInFlight {
                    key: key.to_string(),
                    run_id,
                }));
            }
            let body = json!({ "reason": reason.as_str() }).to_string();
            let (seq, _) = insert_entry(tx, &mut s, "reset", None, now, &body)?;
            tx.execute(
                "UPDATE sessions SET reset_seq = ?2, message_count = 0, tokens_in = 0, tokens_out = 0,
                   cost_usd = 0, last_preview = NULL, updated_at = ?3 WHERE id = ?1",
                params![s.id, to_i64(seq), now],
            )?;
            Ok(Ok(()))
        })??;
        self.get(key)?.ok_or_else(|| {
            StoreError::Message(format!("session {key} vanished while it was reset"))
        })
    }

    /// Deletes a session with its transcript and runs (`sessions.delete`).
    /// Its spend stays in the ledger: the day's budget does not forget it.
    /// Returns whether there was one.
    pub fn delete(&self, key: &SessionKey) -> Result<bool, StoreError> {
        self.write(|tx| {
            let Some(s) = session_row(tx, key.as_str())? else {
                return Ok(Ok(false));
            };
            if let Some(run_id) = running_run(tx, s.id)? {
                return Ok(Err(StoreError::RunInFlight {
                    key: key.to_string(),
                    run_id,
                }));
            }
            tx.execute("DELETE FROM sessions WHERE id = ?1", [s.id])?;
            Ok(Ok(true))
        })?
    }

    /// What the store knows of `run_id`.
    pub fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        let path = self.path.clone();
        let found = self.read(|conn| {
            conn.prepare_cached(RUN_RECORD)?
                .query_row([run_id], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        run_from_row(r, 3)?,
                    ))
                })
                .optional()
        })?;
        let Some((key, session_id, input, run)) = found else {
            return Ok(None);
        };
        Ok(Some(RunRecord {
            key: parse_key(&path, &key)?,
            session_id,
            input,
            started_at: run.started_at,
            outcome: run.outcome(&path)?,
        }))
    }

    /// Writes the session as OpenClaw's transcript JSON lines (a `session`
    /// header, then every entry with `id`/`parentId` chained); `cwd` goes
    /// into the header. Returns `false` (and writes nothing) when there is
    /// no such session.
    pub fn export(
        &self,
        key: &SessionKey,
        cwd: &str,
        out: &mut dyn std::io::Write,
    ) -> Result<bool, StoreError> {
        let rows = self.read(|conn| {
            let Some(s) = session_row(conn, key.as_str())? else {
                return Ok(None);
            };
            let created: i64 = conn.query_row("SELECT created_at FROM sessions WHERE id = ?1", [s.id], |r| r.get(0))?;
            let entries = conn
                .prepare_cached(
                    "SELECT id, parent_id, kind, at, body FROM entries WHERE session = ?1 ORDER BY seq",
                )?
                .query_map([s.id], |r| {
                    Ok(export::Entry {
                        id: r.get(0)?,
                        parent_id: r.get(1)?,
                        kind: r.get(2)?,
                        at: r.get(3)?,
                        body: r.get(4)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(Some((s.session_id, created, entries)))
        })?;
        let Some((session_id, created, entries)) = rows else {
            return Ok(false);
        };
        export::write(&self.path, &session_id, created, cwd, &entries, out)?;
        Ok(true)
    }

    /// Runs `f` in one write transaction, committed when it returns `Ok`.
    fn write<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let Some(writer) = &self.writer else {
            return Err(StoreError::ReadOnly {
                path: self.path.clone(),
            });
        };
        let conn = lock(writer);
        let out =
            in_transaction(&conn, "BEGIN IMMEDIATE", f).map_err(|e| map_err(&self.path, e))?;
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.committed();
        }
        Ok(out)
    }

    /// Runs `f` on a read connection, in one read transaction: one
    /// snapshot for the whole call, so counts and rows agree.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        let conn = match lock(&self.readers).pop() {
            Some(c) => c,
            None => open_reader(&self.path).map_err(|e| map_err(&self.path, e))?,
        };
        let out = in_transaction(&conn, "BEGIN DEFERRED", f);
        if conn.is_autocommit() {
            let mut idle = lock(&self.readers);
            if idle.len() < MAX_IDLE_READERS {
                idle.push(conn);
            }
        }
        out.map_err(|e| map_err(&self.path, e))
    }

    /// Closes every run a killed process left running: unanswered tool
    /// calls get an error result, a marker message ends the turn, and the
    /// run is recorded as interrupted.
    fn close_interrupted_runs(&self) -> Result<(), StoreError> {
        let now = self.clock.now_ms();
        let path = self.path.clone();
        self.write(|tx| {
            let cut: Vec<(String, i64)> = tx
                .prepare("SELECT run_id, session FROM runs WHERE status = 'running'")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            for (run_id, session) in cut {
                let mut s = session_row_by_id(tx, session)?;
                let bodies: Vec<String> = tx
                    .prepare("SELECT body FROM entries WHERE session = ?1 AND run_id = ?2 AND kind = 'message' ORDER BY seq")?
                    .query_map(params![session, run_id], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                let mut open_calls: Vec<(String, String)> = Vec::new();
                let mut text = String::new();
                for body in &bodies {
                    // An undecodable entry cannot hold a call to answer; the
                    // run is closed all the same.
                    match decode(&path, body) {
                        Ok(Message::Assistant(a)) => {
                            text.push_str(&a.text());
                            open_calls.extend(a.tool_calls().map(|c| (c.id.clone(), c.name.clone())));
                        }
                        Ok(Message::ToolResult(r)) => open_calls.retain(|(id, _)| *id != r.tool_call_id),
                        Ok(Message::User(_)) | Err(_) => {}
                    }
                }
                for (id, name) in open_calls {
                    let result = Message::ToolResult(ToolResultMessage {
                        tool_call_id: id,
                        tool_name: name,
                        content: vec![TextBlock {
                            text: "interrupted: the gateway stopped before this tool returned".into(),
                        }],
                        is_error: true,
                        timestamp: now,
                    });
                    insert_message(tx, &mut s, Some(&run_id), &result, now)?;
                }
                insert_message(tx, &mut s, Some(&run_id), &Message::Assistant(interruption_marker(now)), now)?;
                tx.execute(
                    "UPDATE runs SET status = 'interrupted', ended_at = ?2, text = ?3, error = ?4
                     WHERE run_id = ?1",
                    params![run_id, now, text, INTERRUPTED_ERROR],
                )?;
            }
            Ok(())
        })
    }
}

const INTERRUPTED_ERROR: &str = "interrupted: the gateway stopped before this run finished";

/// The message that ends a cut turn: visible to clients, and an assistant
/// turn so that the next user message does not follow a user message.
fn interruption_marker(now: Millis) -> AssistantMessage {
    AssistantMessage {
        content: vec![AssistantBlock::Text {
            text: "(This reply was interrupted: the gateway stopped before it finished. Send the message again to retry.)".into(),
        }],
        api: STORE_PROVIDER.into(),
        provider: STORE_PROVIDER.into(),
        model: INTERRUPTED_MODEL.into(),
        usage: Usage::default(),
        stop_reason: StopReason::Aborted,
        error_message: Some(INTERRUPTED_ERROR.into()),
        timestamp: now,
    }
}

/// Whether a stored assistant message is the store's interruption marker.
pub fn is_interruption_marker(m: &AssistantMessage) -> bool {
    m.provider == STORE_PROVIDER && m.model == INTERRUPTED_MODEL
}

impl SessionStore for SqliteStore {
    fn begin_run(
        &self,
        key: &SessionKey,
        run_id: &str,
        user: &UserMessage,
    ) -> Result<Begin, StoreError> {
        let now = self.clock.now_ms();
        let path = self.path.clone();
        let mut user = user.clone();
        if user.idempotency_key.is_none() {
            user.idempotency_key = Some(format!("{run_id}:user"));
        }
        self.write(|tx| {
            let earlier = tx
                .prepare_cached(
                    "SELECT s.key, r.input, r.started_at, r.status, r.ended_at, r.text, r.usage,
                            r.provider, r.model, r.error
                     FROM runs r JOIN sessions s ON s.id = r.session WHERE r.run_id = ?1",
                )?
                .query_row([run_id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, run_from_row(r, 2)?)))
                .optional()?;
            if let Some((earlier_key, input, run)) = earlier {
                if earlier_key != key.as_str() || input != user.content {
                    return Ok(Ok(Begin::Conflict));
                }
                return Ok(match run.outcome(&path) {
                    Ok(None) => Ok(Begin::InFlight),
                    Ok(Some(outcome)) => Ok(Begin::Done(outcome)),
                    Err(e) => Err(e),
                });
            }
            let mut s = match session_row(tx, key.as_str())? {
                Some(s) => s,
                None => new_session(tx, key.as_str(), now)?,
            };
            let (seq, message_id) =
                insert_message(tx, &mut s, Some(run_id), &Message::User(user.clone()), now)?;
            tx.prepare_cached(
                "INSERT INTO runs (run_id, session, input, status, started_at) VALUES (?1, ?2, ?3, 'running', ?4)",
            )?
            .execute(params![run_id, s.id, user.content, now])?;
            tx.prepare_cached("UPDATE sessions SET last_run_id = ?2 WHERE id = ?1")?
                .execute(params![s.id, run_id])?;
            Ok(Ok(Begin::Started {
                session_id: s.session_id,
                message_seq: seq,
                message_id,
            }))
        })?
    }

    fn append(
        &self,
        key: &SessionKey,
        run_id: &str,
        message: &Message,
    ) -> Result<Appended, StoreError> {
        let now = self.clock.now_ms();
        self.write(|tx| {
            let Some((session, status)) = tx
                .prepare_cached("SELECT session, status FROM runs WHERE run_id = ?1")?
                .query_row([run_id], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                })
                .optional()?
            else {
                return Ok(Err(StoreError::UnknownRun {
                    run_id: run_id.into(),
                }));
            };
            let mut s = session_row_by_id(tx, session)?;
            if s.key != key.as_str() {
                return Ok(Err(StoreError::WrongSession {
                    run_id: run_id.into(),
                    asked: key.to_string(),
                    actual: s.key,
                }));
            }
            if let Some(ended) = parse_status(&status) {
                return Ok(Err(StoreError::RunEnded {
                    run_id: run_id.into(),
                    status: ended,
                }));
            }
            let (seq, id) = insert_message(tx, &mut s, Some(run_id), message, now)?;
            Ok(Ok(Appended { seq, id }))
        })?
    }

    fn finish_run(
        &self,
        key: &SessionKey,
        run_id: &str,
        outcome: &RunOutcome,
    ) -> Result<(), StoreError> {
        let now = self.clock.now_ms();
        let usage = serde_json::to_string(&outcome.usage).map_err(|e| {
            StoreError::Message(format!("cannot encode the usage of run {run_id}: {e}"))
        })?;
        self.write(|tx| {
            let Some((session_key, status)) = tx
                .prepare_cached("SELECT s.key, r.status FROM runs r JOIN sessions s ON s.id = r.session WHERE r.run_id = ?1")?
                .query_row([run_id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .optional()?
            else {
                return Ok(Err(StoreError::UnknownRun { run_id: run_id.into() }));
            };
            if session_key != key.as_str() {
                return Ok(Err(StoreError::WrongSession {
                    run_id: run_id.into(),
                    asked: key.to_string(),
                    actual: session_key,
                }));
            }
            match parse_status(&status) {
                None => {}
                // A retried finish with the same ending changes nothing.
                Some(ended) if ended == outcome.status => return Ok(Ok(())),
                Some(ended) => {
                    return Ok(Err(StoreError::RunEnded {
                        run_id: run_id.into(),
                        status: ended,
                    }))
                }
            }
            tx.prepare_cached(
                "UPDATE runs SET status = ?2, ended_at = ?3, text = ?4, usage = ?5, provider = ?6,
                   model = ?7, error = ?8 WHERE run_id = ?1",
            )?
            .execute(params![
                run_id,
                outcome.status.as_str(),
                outcome.ended_at,
                outcome.text,
                usage,
                outcome.provider,
                outcome.model,
                outcome.error
            ])?;
            tx.prepare_cached("UPDATE sessions SET updated_at = max(updated_at, ?2) WHERE key = ?1")?
                .execute(params![key.as_str(), now])?;
            Ok(Ok(()))
        })?
    }

    /// The newest `limit` messages of the active history, oldest first:
    /// what a turn sends the model. Only the messages stored since the
    /// session's last turn are read and decoded ([`tails`]).
    fn history(&self, key: &SessionKey, limit: usize) -> Result<Vec<StoredMessage>, StoreError> {
        if let Some(messages) = self.history_tail(key, limit, true)? {
            return Ok(messages);
        }
        // The tail moved on while it was read (another reader of the same
        // session): read the whole history.
        Ok(self.history_tail(key, limit, false)?.unwrap_or_default())
    }

    fn spend_since(&self, since: Millis) -> Result<Spend, StoreError> {
        let rows = self.read(|conn| {
            conn.prepare_cached("SELECT provider, sum(usd), sum(tokens) FROM usage WHERE at >= ?1 GROUP BY provider")?
                .query_map([since], |r| Ok((r.get::<_, String>(0)?, r.get::<_, f64>(1)?, r.get::<_, i64>(2)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })?;
        let mut spend = Spend {
            usd: 0.0,
            tokens: 0,
            by_provider: BTreeMap::new(),
        };
        for (provider, usd, tokens) in rows {
            spend.usd += usd;
            spend.tokens += to_u64(tokens);
            spend.by_provider.insert(provider, usd);
        }
        Ok(spend)
    }
}

/// The columns of a [`SessionInfo`], read by [`info_from_row`].
const INFO_SELECT: &str =
    "SELECT s.key, s.session_id, s.created_at, s.updated_at, s.label, s.message_count,
        s.tokens_in, s.tokens_out, s.cost_usd, s.last_preview, s.last_run_id, r.status
    FROM sessions s LEFT JOIN runs r ON r.run_id = s.last_run_id";

fn info_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SessionInfo> {
    let key: String = r.get(0)?;
    let key = SessionKey::parse(&key, crate::session::DEFAULT_AGENT).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
    })?;
    let status: Option<String> = r.get(11)?;
    let last_run_status = status.as_deref().and_then(parse_status);
    Ok(SessionInfo {
        key,
        session_id: r.get(1)?,
        created_at: r.get(2)?,
        updated_at: r.get(3)?,
        label: r.get(4)?,
        message_count: to_u64(r.get(5)?),
        tokens_in: to_u64(r.get(6)?),
        tokens_out: to_u64(r.get(7)?),
        spend_usd: r.get(8)?,
        last_message_preview: r.get(9)?,
        last_run_id: r.get(10)?,
        last_run_status,
        running: status.as_deref() == Some("running"),
        interrupted: last_run_status == Some(RunStatus::Interrupted),
    })
}

/// A run row as stored.
struct RunRow {
    started_at: Millis,
    status: String,
    ended_at: Option<Millis>,
    text: String,
    usage: Option<String>,
    provider: Option<String>,
    model: Option<String>,
    error: Option<String>,
}

impl RunRow {
    /// `None` while the run is in progress.
    fn outcome(self, path: &Path) -> Result<Option<RunOutcome>, StoreError> {
        let Some(status) = parse_status(&self.status) else {
            return Ok(None);
        };
        let usage = match self.usage {
            Some(u) => serde_json::from_str(&u).map_err(|e| StoreError::Corrupt {
                path: path.to_path_buf(),
                detail: format!("usage of a run: {e}"),
            })?,
            None => Usage::default(),
        };
        Ok(Some(RunOutcome {
            status,
            text: self.text,
            usage,
            provider: self.provider,
            model: self.model,
            error: self.error,
            started_at: self.started_at,
            ended_at: self.ended_at.unwrap_or(self.started_at),
        }))
    }
}

/// Reads `started_at, status, ended_at, text, usage, provider, model,
/// error` from column `at` on.
fn run_from_row(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<RunRow> {
    Ok(RunRow {
        started_at: r.get(at)?,
        status: r.get(at + 1)?,
        ended_at: r.get(at + 2)?,
        text: r.get(at + 3)?,
        usage: r.get(at + 4)?,
        provider: r.get(at + 5)?,
        model: r.get(at + 6)?,
        error: r.get(at + 7)?,
    })
}

/// A finished status; `None` for `running` (the only other value the
/// schema allows).
fn parse_status(s: &str) -> Option<RunStatus> {
    match s {
        "ok" => Some(RunStatus::Ok),
        "error" => Some(RunStatus::Error),
        "aborted" => Some(RunStatus::Aborted),
        "interrupted" => Some(RunStatus::Interrupted),
        _ => None,
    }
}

/// The parts of a session row the writers need.
struct SessionRow {
    id: i64,
    key: String,
    session_id: String,
    next_seq: i64,
    reset_seq: i64,
    last_entry_id: Option<String>,
}

/// A run with its session, by run id ([`SqliteStore::run`]).
const RUN_RECORD: &str =
    "SELECT s.key, s.session_id, r.input, r.started_at, r.status, r.ended_at, r.text,
            r.usage, r.provider, r.model, r.error
     FROM runs r JOIN sessions s ON s.id = r.session WHERE r.run_id = ?1";

const SESSION_ROW: &str =
    "SELECT id, key, session_id, next_seq, reset_seq, last_entry_id FROM sessions";

fn session_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SessionRow> {
    Ok(SessionRow {
        id: r.get(0)?,
        key: r.get(1)?,
        session_id: r.get(2)?,
        next_seq: r.get(3)?,
        reset_seq: r.get(4)?,
        last_entry_id: r.get(5)?,
    })
}

fn session_row(conn: &Connection, key: &str) -> rusqlite::Result<Option<SessionRow>> {
    conn.prepare_cached(&format!("{SESSION_ROW} WHERE key = ?1"))?
        .query_row([key], session_from_row)
        .optional()
}

fn session_row_by_id(conn: &Connection, id: i64) -> rusqlite::Result<SessionRow> {
    conn.prepare_cached(&format!("{SESSION_ROW} WHERE id = ?1"))?
        .query_row([id], session_from_row)
}

fn new_session(conn: &Connection, key: &str, now: Millis) -> rusqlite::Result<SessionRow> {
    let session_id = session_id_at(now);
    conn.prepare_cached(
        "INSERT INTO sessions (key, session_id, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)",
    )?
    .execute(params![key, session_id, now])?;
    Ok(SessionRow {
        id: conn.last_insert_rowid(),
        key: key.into(),
        session_id,
        next_seq: 1,
        reset_seq: 0,
        last_entry_id: None,
    })
}

/// A UUIDv7 (as OpenClaw's session ids) stamped with the store's clock.
fn session_id_at(now: Millis) -> String {
    let ms = u64::try_from(now).unwrap_or(0);
    let ts =
        uuid::Timestamp::from_unix(uuid::NoContext, ms / 1000, ((ms % 1000) as u32) * 1_000_000);
    uuid::Uuid::new_v7(ts).to_string()
}

fn running_run(conn: &Connection, session: i64) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached(
        "SELECT run_id FROM runs WHERE session = ?1 AND status = 'running' LIMIT 1",
    )?
    .query_row([session], |r| r.get(0))
    .optional()
}

/// Appends one entry at the session's next position and moves the chain.
fn insert_entry(
    conn: &Connection,
    s: &mut SessionRow,
    kind: &str,
    run_id: Option<&str>,
    at: Millis,
    body: &str,
) -> rusqlite::Result<(u64, String)> {
    let id = uuid::Uuid::new_v4().to_string();
    let seq = s.next_seq;
    conn.prepare_cached(
        "INSERT INTO entries (session, seq, id, parent_id, kind, run_id, at, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        s.id,
        seq,
        id,
        s.last_entry_id,
        kind,
        run_id,
        at,
        body
    ])?;
    conn.prepare_cached(
        "UPDATE sessions SET next_seq = ?2, last_entry_id = ?3, updated_at = ?4 WHERE id = ?1",
    )?
    .execute(params![s.id, seq + 1, id, at])?;
    s.next_seq = seq + 1;
    s.last_entry_id = Some(id.clone());
    Ok((to_u64(seq), id))
}

/// Stores a message with the session's counters and, for a provider call,
/// its spend — all in the caller's transaction.
fn insert_message(
    conn: &Connection,
    s: &mut SessionRow,
    run_id: Option<&str>,
    message: &Message,
    now: Millis,
) -> rusqlite::Result<(u64, String)> {
    let body = serde_json::to_string(message)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    let (seq, id) = insert_entry(conn, s, "message", run_id, now, &body)?;
    let (tokens_in, tokens_out, usd) = match message {
        Message::Assistant(a) => (a.usage.input, a.usage.output, a.usage.cost.total),
        _ => (0, 0, 0.0),
    };
    conn.prepare_cached(
        "UPDATE sessions SET message_count = message_count + 1, tokens_in = tokens_in + ?2,
           tokens_out = tokens_out + ?3, cost_usd = cost_usd + ?4,
           last_preview = coalesce(?5, last_preview) WHERE id = ?1",
    )?
    .execute(params![
        s.id,
        to_i64(tokens_in),
        to_i64(tokens_out),
        usd,
        preview(message)
    ])?;
    if let Message::Assistant(a) = message {
        if !is_interruption_marker(a) {
            let u = &a.usage;
            let tokens = if u.total_tokens > 0 {
                u.total_tokens
            } else {
                u.input + u.output + u.cache_read + u.cache_write
            };
            conn.prepare_cached(
                "INSERT INTO usage (at, provider, usd, tokens) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![now, a.provider, u.cost.total, to_i64(tokens)])?;
        }
    }
    Ok((seq, id))
}

/// The line `sessions.list` shows: the text of a user or assistant message,
/// whitespace folded, cut at [`PREVIEW_CHARS`].
fn preview(message: &Message) -> Option<String> {
    let text = match message {
        Message::User(u) => u.content.clone(),
        Message::Assistant(a) => a.text(),
        Message::ToolResult(_) => return None,
    };
    let folded = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if folded.is_empty() {
        return None;
    }
    let mut chars = folded.chars();
    let cut: String = chars.by_ref().take(PREVIEW_CHARS).collect();
    Some(if chars.next().is_some() {
        format!("{cut}…")
    } else {
        cut
    })
}

fn decode(path: &Path, body: &str) -> Result<Message, StoreError> {
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt {
        path: path.to_path_buf(),
        detail: format!("message: {e}"),
    })
}

fn parse_key(path: &Path, key: &str) -> Result<SessionKey, StoreError> {
    SessionKey::parse(key, crate::session::DEFAULT_AGENT).map_err(|e| StoreError::Corrupt {
        path: path.to_path_buf(),
        detail: format!("session key: {e}"),
    })
}

fn to_i64(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Runs `f` between `begin` and `COMMIT`, rolled back when `f` fails or
/// panics. The three statements are prepared once per connection (as
/// `rusqlite`'s `Transaction` would parse them anew on every call, and a
/// turn makes several calls).
fn in_transaction<T>(
    conn: &Connection,
    begin: &str,
    f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    /// Rolls back whatever is still open when dropped: after an error, a
    /// failed commit, or a panic in `f`.
    struct Open<'c>(&'c Connection);
    impl Drop for Open<'_> {
        fn drop(&mut self) {
            if !self.0.is_autocommit() {
                let _ = self
                    .0
                    .prepare_cached("ROLLBACK")
                    .and_then(|mut s| s.execute([]));
            }
        }
    }
    conn.prepare_cached(begin)?.execute([])?;
    let open = Open(conn);
    let out = f(conn)?;
    conn.prepare_cached("COMMIT")?.execute([])?;
    drop(open);
    Ok(out)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding it left no transaction open (the guard of
    // `in_transaction` rolls back on drop), so the connection is still good.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The lock file beside the database: one owning process at a time.
fn take_owner_lock(path: &Path) -> Result<File, StoreError> {
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock_path = PathBuf::from(lock_path);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| StoreError::Open {
            path: path.to_path_buf(),
            detail: format!("cannot open the lock file {}: {e}", lock_path.display()),
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Locked {
            path: path.to_path_buf(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(StoreError::Open {
            path: path.to_path_buf(),
            detail: format!("cannot lock {}: {e}", lock_path.display()),
        }),
    }
}

/// Creates the database file readable by its owner only (transcripts are
/// private; SQLite gives its -wal and -shm files the same mode).
fn create_private(path: &Path) -> std::io::Result<()> {
    let mut options = OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).map(drop)
}

fn configure(path: &Path, conn: &Connection) -> Result<(), StoreError> {
    let set = || -> rusqlite::Result<String> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        stable_plans(conn)?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(mode)
    };
    let mode = set().map_err(|e| map_err(path, e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Open {
            path: path.to_path_buf(),
            detail: format!(
                "its file system does not support SQLite's WAL mode (journal mode stays {mode}); \
                 put the state dir on a local disk"
            ),
        });
    }
    Ok(())
}

fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    stable_plans(&conn)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// One plan per statement, whatever its bound values. Without it a SQLite
/// built with STAT4 (ours was, before `.cargo/config.toml` dropped it)
/// marks a statement to be compiled again whenever a value bound to it
/// changes and a partial index (`runs_running`) might apply: every lookup
/// by run id was parsed and planned anew on each call, the cached
/// statements notwithstanding.
fn stable_plans(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(())
}

/// Sorts SQLite's failures into the errors a user can act on.
fn map_err(path: &Path, e: rusqlite::Error) -> StoreError {
    let path = path.to_path_buf();
    if let rusqlite::Error::SqliteFailure(f, _) = &e {
        match f.code {
            ErrorCode::DiskFull => return StoreError::DiskFull { path },
            ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt => {
                return StoreError::NotADatabase {
                    path,
                    detail: e.to_string(),
                }
            }
            ErrorCode::CannotOpen | ErrorCode::PermissionDenied | ErrorCode::ReadOnly => {
                return StoreError::Sqlite {
                    path,
                    detail: format!(
                        "{e}; check that the file and its directory are writable by this user"
                    ),
                }
            }
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
                return StoreError::Sqlite {
                    path,
                    detail: format!(
                        "{e}; the file stayed locked for {} s",
                        BUSY_TIMEOUT.as_secs()
                    ),
                }
            }
            _ => {}
        }
    }
    StoreError::Sqlite {
        path,
        detail: e.to_string(),
    }
}

#[cfg(test)]
mod tests;
