//! The store's schema and its migrations.
//!
//! `PRAGMA user_version` is the schema version. Migrations only go forward,
//! each in the transaction that also moves the version, so a kill halfway
//! leaves the previous version whole. A file written by a newer OmniClaw is
//! refused before anything is written to it.

use rusqlite::Connection;

/// The version this build writes; `MIGRATIONS[n]` moves a file from `n` to
/// `n + 1`.
pub const VERSION: i64 = MIGRATIONS.len() as i64;

const MIGRATIONS: &[&str] = &[
    // 0 → 1: sessions, their entries (messages and reset markers), runs for
    // idempotency and outcome replay, and the spend ledger.
    r#"
    CREATE TABLE sessions (
        id            INTEGER PRIMARY KEY,
        key           TEXT NOT NULL UNIQUE,
        session_id    TEXT NOT NULL,
        created_at    INTEGER NOT NULL,
        updated_at    INTEGER NOT NULL,
        label         TEXT,
        -- The next entry's position, and the position of the last reset
        -- (the active history starts after it).
        next_seq      INTEGER NOT NULL DEFAULT 1,
        reset_seq     INTEGER NOT NULL DEFAULT 0,
        -- The parent of the next entry: entries form OpenClaw's id/parentId chain.
        last_entry_id TEXT,
        -- Counters of the active history, kept in step with each insert so
        -- that listing thousands of sessions reads one row each.
        message_count INTEGER NOT NULL DEFAULT 0,
        tokens_in     INTEGER NOT NULL DEFAULT 0,
        tokens_out    INTEGER NOT NULL DEFAULT 0,
        cost_usd      REAL NOT NULL DEFAULT 0,
        last_preview  TEXT,
        last_run_id   TEXT
    );
    CREATE INDEX sessions_updated ON sessions(updated_at);

    CREATE TABLE entries (
        session   INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        seq       INTEGER NOT NULL,
        id        TEXT NOT NULL,
        parent_id TEXT,
        kind      TEXT NOT NULL CHECK (kind IN ('message', 'reset')),
        run_id    TEXT,
        at        INTEGER NOT NULL,
        body      TEXT NOT NULL,
        PRIMARY KEY (session, seq)
    ) WITHOUT ROWID;

    CREATE TABLE runs (
        run_id     TEXT PRIMARY KEY,
        session    INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        -- The user message text: a retried id with other text is a conflict.
        input      TEXT NOT NULL,
        status     TEXT NOT NULL
                   CHECK (status IN ('running', 'ok', 'error', 'aborted', 'interrupted')),
        started_at INTEGER NOT NULL,
        ended_at   INTEGER,
        text       TEXT NOT NULL DEFAULT '',
        usage      TEXT,
        provider   TEXT,
        model      TEXT,
        error      TEXT
    ) WITHOUT ROWID;
    CREATE INDEX runs_session ON runs(session);
    CREATE INDEX runs_running ON runs(status) WHERE status = 'running';

    -- One row per provider call. Not tied to a session: deleting a session
    -- must not give its money back to the daily budget.
    CREATE TABLE usage (
        at       INTEGER NOT NULL,
        provider TEXT NOT NULL,
        usd      REAL NOT NULL,
        tokens   INTEGER NOT NULL
    );
    CREATE INDEX usage_at ON usage(at);
    "#,
];

/// What the file's version says about it.
#[derive(Debug, PartialEq, Eq)]
pub enum Found {
    /// At `VERSION` or older: migrate (or nothing to do).
    Usable(i64),
    /// Written by a newer build.
    TooNew(i64),
    /// A negative version: not a file any OmniClaw wrote.
    Foreign(i64),
}

/// Reads the version without writing anything.
pub fn inspect(conn: &Connection) -> rusqlite::Result<Found> {
    let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    Ok(if v > VERSION {
        Found::TooNew(v)
    } else if v < 0 {
        Found::Foreign(v)
    } else {
        Found::Usable(v)
    })
}

/// Brings the file to `VERSION`. Each step commits with its version number.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    loop {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // Read again inside the write lock: another opener may have moved it.
        let v: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if v >= VERSION {
            return Ok(());
        }
        // `inspect` refused negative versions before any migration runs.
        let Some(step) = usize::try_from(v).ok().and_then(|i| MIGRATIONS.get(i)) else {
            return Ok(());
        };
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", v + 1)?;
        tx.commit()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_migrates_to_the_current_version_and_is_then_left_alone() {
        let mut conn = Connection::open_in_memory().expect("db");
        assert_eq!(inspect(&conn).expect("inspect"), Found::Usable(0));
        migrate(&mut conn).expect("migrate");
        assert_eq!(inspect(&conn).expect("inspect"), Found::Usable(VERSION));
        // A second run has nothing to do (it would fail re-creating tables).
        migrate(&mut conn).expect("again");
        conn.pragma_update(None, "user_version", VERSION + 1)
            .expect("set");
        assert_eq!(inspect(&conn).expect("inspect"), Found::TooNew(VERSION + 1));
    }
}
