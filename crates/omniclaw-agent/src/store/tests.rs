use std::sync::Arc;

use serde_json::{json, Value};

use super::*;
use crate::clock::ManualClock;
use crate::message::{Cost, ToolCall};

const T0: Millis = 1_796_509_800_000;

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
    clock: Arc<ManualClock>,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("agent").join("sessions.sqlite");
        Fixture {
            _dir: dir,
            path,
            clock: Arc::new(ManualClock::new(T0, 0)),
        }
    }

    fn open(&self) -> SqliteStore {
        self.open_with(StoreSettings::default())
    }

    fn open_with(&self, settings: StoreSettings) -> SqliteStore {
        SqliteStore::open(&self.path, settings, self.clock.clone()).expect("open")
    }
}

fn key(k: &str) -> SessionKey {
    SessionKey::parse(k, "main").expect("key")
}

fn user(text: &str, at: Millis) -> UserMessage {
    UserMessage {
        content: text.into(),
        timestamp: at,
        idempotency_key: None,
    }
}

fn assistant(text: &str, provider: &str, usd: f64, calls: &[(&str, &str)]) -> Message {
    let mut content = Vec::new();
    if !text.is_empty() {
        content.push(AssistantBlock::Text { text: text.into() });
    }
    for (id, name) in calls {
        content.push(AssistantBlock::ToolCall(ToolCall {
            id: (*id).into(),
            name: (*name).into(),
            arguments: json!({}),
        }));
    }
    Message::Assistant(AssistantMessage {
        content,
        api: "openai-completions".into(),
        provider: provider.into(),
        model: "m".into(),
        usage: Usage {
            input: 10,
            output: 5,
            total_tokens: 15,
            cost: Cost {
                total: usd,
                ..Cost::default()
            },
            ..Usage::default()
        },
        stop_reason: if calls.is_empty() {
            StopReason::Stop
        } else {
            StopReason::ToolUse
        },
        error_message: None,
        timestamp: T0,
    })
}

fn tool_result(id: &str, text: &str) -> Message {
    Message::ToolResult(ToolResultMessage {
        tool_call_id: id.into(),
        tool_name: "calc".into(),
        content: vec![TextBlock { text: text.into() }],
        is_error: false,
        timestamp: T0,
    })
}

fn outcome(status: RunStatus, text: &str) -> RunOutcome {
    RunOutcome {
        status,
        text: text.into(),
        usage: Usage::default(),
        provider: Some("openai".into()),
        model: Some("m".into()),
        error: None,
        started_at: T0,
        ended_at: T0 + 5,
    }
}

fn started(b: Begin) -> (String, u64) {
    match b {
        Begin::Started {
            session_id,
            message_seq,
            ..
        } => (session_id, message_seq),
        other => panic!("expected Started, got {other:?}"),
    }
}

fn texts(messages: &[StoredMessage]) -> Vec<String> {
    messages
        .iter()
        .map(|m| match &m.message {
            Message::User(u) => format!("user:{}", u.content),
            Message::Assistant(a) => format!("assistant:{}", a.text()),
            Message::ToolResult(r) => format!("tool:{}", r.text()),
        })
        .collect()
}

/// One whole turn: user, assistant asking for a tool, its result, answer.
fn turn(store: &SqliteStore, k: &SessionKey, run: &str, text: &str) {
    started(store.begin_run(k, run, &user(text, T0)).expect("begin"));
    store
        .append(k, run, &assistant("", "openai", 0.01, &[("c1", "calc")]))
        .expect("append");
    store
        .append(k, run, &tool_result("c1", "42"))
        .expect("append");
    store
        .append(k, run, &assistant("42", "openai", 0.02, &[]))
        .expect("append");
    store
        .finish_run(k, run, &outcome(RunStatus::Ok, "42"))
        .expect("finish");
}

#[test]
fn the_user_message_is_stored_before_begin_run_returns_and_survives_a_reopen() {
    let f = Fixture::new();
    let k = key("main");
    let (session_id, seq) = {
        let store = f.open();
        started(
            store
                .begin_run(&k, "R1", &user("hello", T0))
                .expect("begin"),
        )
    };
    assert_eq!(seq, 1);
    let id = uuid::Uuid::parse_str(&session_id).expect("uuid");
    assert_eq!(
        id.get_version_num(),
        7,
        "sessionId is a UUIDv7 like OpenClaw's"
    );

    // The process "went away" with the run open: the reopened store has the
    // user message and closes the run as interrupted.
    let store = f.open();
    let history = store.history(&k, 10).expect("history");
    let Message::User(u) = &history[0].message else {
        panic!("first is the user message: {history:?}");
    };
    assert_eq!(u.content, "hello");
    assert_eq!(u.idempotency_key.as_deref(), Some("R1:user"));
    assert_eq!(history[0].run_id.as_deref(), Some("R1"));
}

#[test]
fn a_retried_run_id_is_in_flight_then_replays_its_outcome_and_other_input_conflicts() {
    let f = Fixture::new();
    let store = f.open();
    let k = key("main");
    started(store.begin_run(&k, "R1", &user("hi", T0)).expect("begin"));
    assert_eq!(
        store
            .begin_run(&k, "R1", &user("hi", T0 + 9))
            .expect("retry"),
        Begin::InFlight
    );
    assert_eq!(
        store
            .begin_run(&k, "R1", &user("other", T0))
            .expect("reuse"),
        Begin::Conflict
    );
    assert_eq!(
        store
            .begin_run(&key("work"), "R1", &user("hi", T0))
            .expect("reuse"),
        Begin::Conflict,
        "the same id in another session is a different request"
    );
    store
        .append(&k, "R1", &assistant("hello!", "openai", 0.0, &[]))
        .expect("append");
    let done = outcome(RunStatus::Ok, "hello!");
    store.finish_run(&k, "R1", &done).expect("finish");
    assert_eq!(
        store.begin_run(&k, "R1", &user("hi", T0)).expect("retry"),
        Begin::Done(done.clone())
    );
    // Retries stored nothing.
    assert_eq!(
        texts(&store.history(&k, 10).expect("history")),
        ["user:hi", "assistant:hello!"]
    );
    // A repeated finish with the same ending is a no-op; another ending is refused.
    store.finish_run(&k, "R1", &done).expect("same finish");
    let err = store
        .finish_run(&k, "R1", &outcome(RunStatus::Error, ""))
        .expect_err("ended");
    assert!(matches!(err, StoreError::RunEnded { .. }), "{err}");
}

#[test]
fn appends_are_checked_against_the_run() {
    let f = Fixture::new();
    let store = f.open();
    let k = key("main");
    let msg = assistant("x", "openai", 0.0, &[]);
    let err = store.append(&k, "nope", &msg).expect_err("unknown");
    assert!(err.to_string().contains("begin_run first"), "{err}");
    started(store.begin_run(&k, "R1", &user("hi", T0)).expect("begin"));
    let err = store.append(&key("work"), "R1", &msg).expect_err("wrong");
    assert!(
        err.to_string()
            .contains("belongs to session agent:main:main"),
        "{err}"
    );
    store
        .finish_run(&k, "R1", &outcome(RunStatus::Aborted, ""))
        .expect("finish");
    let err = store.append(&k, "R1", &msg).expect_err("ended");
    assert!(err.to_string().contains("already ended (aborted)"), "{err}");
}

#[test]
fn a_run_cut_by_a_kill_is_closed_as_interrupted_when_the_store_opens() {
    let f = Fixture::new();
    let k = key("main");
    {
        let store = f.open();
        turn(&store, &k, "R0", "first");
        started(
            store
                .begin_run(&k, "R1", &user("second", T0))
                .expect("begin"),
        );
        store
            .append(
                &k,
                "R1",
                &assistant(
                    "Let me look.",
                    "openai",
                    0.03,
                    &[("c1", "read"), ("c2", "ls")],
                ),
            )
            .expect("append");
        store
            .append(&k, "R1", &tool_result("c1", "file text"))
            .expect("append");
        // Killed here: c2 never answered, the run never finished.
    }
    f.clock.advance(1000);
    let store = f.open();
    let history = store.history(&k, 100).expect("history");
    let tail: Vec<&Message> = history.iter().rev().take(2).map(|m| &m.message).collect();
    let Message::Assistant(marker) = tail[0] else {
        panic!("the last entry is the marker: {tail:?}");
    };
    assert!(is_interruption_marker(marker));
    assert!(marker.text().contains("interrupted"), "{}", marker.text());
    assert_eq!(marker.stop_reason, StopReason::Aborted);
    assert_eq!(marker.timestamp, T0 + 1000);
    let Message::ToolResult(r) = tail[1] else {
        panic!("the unanswered call got a result: {tail:?}");
    };
    assert_eq!((r.tool_call_id.as_str(), r.is_error), ("c2", true));
    // The earlier, completed turn is untouched.
    assert_eq!(history.len(), 4 + 3 + 2);

    let info = store.get(&k).expect("get").expect("row");
    assert!(info.interrupted);
    assert_eq!(info.last_run_status, Some(RunStatus::Interrupted));
    assert!(!info.running);
    match store
        .begin_run(&k, "R1", &user("second", T0))
        .expect("retry")
    {
        Begin::Done(o) => {
            assert_eq!(o.status, RunStatus::Interrupted);
            assert_eq!(o.text, "Let me look.");
        }
        other => panic!("expected Done(interrupted), got {other:?}"),
    }
    // Opening again adds nothing: the run is closed.
    drop(store);
    let store = f.open();
    assert_eq!(
        store.history(&k, 100).expect("history").len(),
        history.len()
    );
    // What the cut call cost still counts.
    let spend = store.spend_since(0).expect("spend");
    assert!((spend.usd - 0.06).abs() < 1e-9, "{spend:?}");
}

#[test]
fn sessions_are_listed_newest_first_with_their_counters() {
    let f = Fixture::new();
    let store = f.open();
    turn(&store, &key("main"), "R1", "first question");
    f.clock.advance(10);
    turn(&store, &key("work"), "R2", "second");
    f.clock.advance(10);
    started(
        store
            .begin_run(&key("agent:ops:main"), "R3", &user("  many\n words  ", T0))
            .expect("begin"),
    );
    store
        .set_label(&key("work"), Some("Work chat"))
        .expect("label")
        .expect("exists");
    assert_eq!(
        store.set_label(&key("nope"), Some("x")).expect("label"),
        None
    );

    let page = store.list(&ListQuery::default()).expect("list");
    assert_eq!(page.total, 3);
    let keys: Vec<&str> = page.sessions.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(
        keys,
        ["agent:ops:main", "agent:main:work", "agent:main:main"]
    );
    let ops = &page.sessions[0];
    assert!(ops.running);
    assert_eq!(ops.last_run_status, None);
    assert_eq!(ops.last_message_preview.as_deref(), Some("many words"));
    let work = &page.sessions[1];
    assert_eq!(work.label.as_deref(), Some("Work chat"));
    assert_eq!(work.message_count, 4);
    assert_eq!((work.tokens_in, work.tokens_out), (20, 10));
    assert!((work.spend_usd - 0.03).abs() < 1e-9);
    assert_eq!(work.last_message_preview.as_deref(), Some("42"));
    assert_eq!(work.last_run_id.as_deref(), Some("R2"));
    assert_eq!(work.last_run_status, Some(RunStatus::Ok));
    assert!(!work.interrupted && !work.running);
    assert_eq!(work.created_at, T0 + 10);

    let main_only = store
        .list(&ListQuery {
            agent_id: Some("main".into()),
            limit: 1,
            offset: 1,
        })
        .expect("list");
    assert_eq!(main_only.total, 2);
    assert_eq!(main_only.sessions.len(), 1);
    assert_eq!(main_only.sessions[0].key.as_str(), "agent:main:main");
}

#[test]
fn history_pages_count_back_from_the_newest_message() {
    let f = Fixture::new();
    let store = f.open();
    let k = key("main");
    for i in 0..5 {
        let run = format!("R{i}");
        started(
            store
                .begin_run(&k, &run, &user(&format!("q{i}"), T0))
                .expect("begin"),
        );
        store
            .append(&k, &run, &assistant(&format!("a{i}"), "openai", 0.0, &[]))
            .expect("append");
        store
            .finish_run(&k, &run, &outcome(RunStatus::Ok, ""))
            .expect("finish");
    }
    let page = store.history_page(&k, 3, 0).expect("page");
    assert_eq!(
        texts(&page.messages),
        ["assistant:a3", "user:q4", "assistant:a4"]
    );
    assert_eq!((page.total, page.has_more), (10, true));
    let seqs: Vec<u64> = page.messages.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, [8, 9, 10]);
    let page = store.history_page(&k, 3, 8).expect("page");
    assert_eq!(texts(&page.messages), ["user:q0", "assistant:a0"]);
    assert!(!page.has_more);
    let none = store.history_page(&key("nope"), 3, 0).expect("page");
    assert_eq!(none.session_id, None);
    assert!(none.messages.is_empty());
}

#[test]
fn a_reset_keeps_the_session_id_and_starts_the_history_after_it() {
    let f = Fixture::new();
    let store = f.open();
    let k = key("main");
    turn(&store, &k, "R1", "before");
    let before = store.get(&k).expect("get").expect("row");
    let after = store.reset(&k, ResetReason::Reset).expect("reset");
    assert_eq!(after.session_id, before.session_id);
    assert_eq!(after.message_count, 0);
    assert_eq!(after.last_message_preview, None);
    assert!(store.history(&k, 10).expect("history").is_empty());
    turn(&store, &k, "R2", "after");
    assert_eq!(
        texts(&store.history(&k, 10).expect("history"))[0],
        "user:after"
    );
    // A run in progress must be aborted first.
    started(store.begin_run(&k, "R3", &user("x", T0)).expect("begin"));
    let err = store.reset(&k, ResetReason::New).expect_err("running");
    assert!(err.to_string().contains("abort it first"), "{err}");
    let err = store.delete(&k).expect_err("running");
    assert!(matches!(err, StoreError::RunInFlight { .. }), "{err}");
    // A reset of a session nobody used creates it.
    let fresh = store.reset(&key("new"), ResetReason::New).expect("reset");
    assert_eq!(fresh.message_count, 0);
}

#[test]
fn a_deleted_session_is_gone_but_its_spend_still_counts() {
    let f = Fixture::new();
    let store = f.open();
    let k = key("work");
    turn(&store, &k, "R1", "q");
    assert!(store.delete(&k).expect("delete"));
    assert!(!store.delete(&k).expect("again"));
    assert_eq!(store.get(&k).expect("get"), None);
    assert!(store.history(&k, 10).expect("history").is_empty());
    assert_eq!(store.run("R1").expect("run"), None);
    let spend = store.spend_since(T0).expect("spend");
    assert!((spend.usd - 0.03).abs() < 1e-9, "{spend:?}");
    // The id is free again.
    started(store.begin_run(&k, "R1", &user("q", T0)).expect("begin"));
}

#[test]
fn spend_is_summed_per_provider_since_a_moment() {
    let f = Fixture::new();
    let store = f.open();
    let k = key("main");
    started(store.begin_run(&k, "R1", &user("q", T0)).expect("begin"));
    store
        .append(&k, "R1", &assistant("a", "openai", 0.25, &[]))
        .expect("append");
    f.clock.advance(1000);
    store
        .append(&k, "R1", &assistant("b", "anthropic", 0.5, &[]))
        .expect("append");
    store
        .append(&k, "R1", &assistant("c", "openai", 0.125, &[]))
        .expect("append");
    let all = store.spend_since(T0).expect("spend");
    assert_eq!(all.usd, 0.875);
    assert_eq!(all.tokens, 45);
    assert_eq!(all.by_provider.get("openai"), Some(&0.375));
    assert_eq!(all.by_provider.get("anthropic"), Some(&0.5));
    let later = store.spend_since(T0 + 1).expect("spend");
    assert_eq!(later.usd, 0.625);
    assert_eq!(
        store.spend_since(T0 + 5000).expect("spend"),
        Spend::default()
    );
}

#[test]
fn an_export_is_openclaws_transcript_format() {
    let f = Fixture::new();
    let store = f.open();
    let k = key("main");
    turn(&store, &k, "R1", "hi");
    store.reset(&k, ResetReason::New).expect("reset");
    let info = store.get(&k).expect("get").expect("row");
    let mut out = Vec::new();
    assert!(store.export(&k, "/home/u/ws", &mut out).expect("export"));
    let lines: Vec<Value> = String::from_utf8(out)
        .expect("utf8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(
        lines[0],
        json!({"type": "session", "version": 4, "id": info.session_id,
               "timestamp": "2026-12-05T22:30:00.000Z", "cwd": "/home/u/ws"})
    );
    assert_eq!(lines.len(), 1 + 4 + 1);
    assert_eq!(lines[1]["type"], "message");
    assert_eq!(lines[1]["parentId"], Value::Null);
    assert_eq!(lines[1]["timestamp"], "2026-12-05T22:30:00.000Z");
    assert_eq!(
        lines[1]["message"],
        json!({"role": "user", "content": "hi", "timestamp": T0, "idempotencyKey": "R1:user"})
    );
    assert_eq!(lines[2]["message"]["content"][0]["type"], "toolCall");
    for pair in lines[1..].windows(2) {
        assert_eq!(pair[1]["parentId"], pair[0]["id"], "ids are chained");
        let id = pair[1]["id"].as_str().expect("id");
        assert_eq!(
            uuid::Uuid::parse_str(id).expect("uuid").get_version_num(),
            4
        );
    }
    assert_eq!(lines[5]["type"], "reset");
    assert_eq!(lines[5]["reason"], "new");
    let mut none = Vec::new();
    assert!(!store.export(&key("nope"), "/", &mut none).expect("export"));
    assert!(none.is_empty());
}

#[test]
fn retention_prunes_old_sessions_but_not_one_in_progress() {
    let f = Fixture::new();
    {
        let store = f.open();
        turn(&store, &key("old"), "R1", "q");
    }
    f.clock.advance(10 * 86_400_000);
    let settings = StoreSettings {
        retention_days: Some(7),
    };
    let store = f.open_with(settings.clone());
    assert_eq!(store.get(&key("old")).expect("get"), None, "pruned at open");
    assert_eq!(store.spend_since(0).expect("spend"), Spend::default());
    turn(&store, &key("fresh"), "R2", "q");
    started(
        store
            .begin_run(&key("busy"), "R3", &user("q", T0))
            .expect("begin"),
    );
    f.clock.advance(8 * 86_400_000);
    assert_eq!(store.prune().expect("prune"), 1);
    assert_eq!(store.get(&key("fresh")).expect("get"), None);
    assert!(store.get(&key("busy")).expect("get").is_some());
    // Without a retention nothing goes.
    let keep = Fixture::new();
    let store = keep.open();
    turn(&store, &key("old"), "R1", "q");
    keep.clock.advance(1000 * 86_400_000);
    assert_eq!(store.prune().expect("prune"), 0);
}

#[test]
fn a_store_from_a_newer_version_is_refused_and_left_byte_for_byte() {
    let f = Fixture::new();
    {
        let store = f.open();
        turn(&store, &key("main"), "R1", "q");
    }
    {
        let conn = Connection::open(&f.path).expect("db");
        conn.pragma_update(None, "user_version", schema::VERSION + 1)
            .expect("bump");
        // Leave a plain rollback-journal file with everything in it.
        conn.query_row("PRAGMA journal_mode = DELETE", [], |_| Ok(()))
            .expect("mode");
    }
    let before = std::fs::read(&f.path).expect("read");
    let err =
        SqliteStore::open(&f.path, StoreSettings::default(), f.clock.clone()).expect_err("too new");
    let text = err.to_string();
    assert!(text.contains(&f.path.display().to_string()), "{text}");
    assert!(
        text.contains(&format!("schema version {}", schema::VERSION + 1)),
        "{text}"
    );
    assert!(text.contains("upgrade OmniClaw"), "{text}");
    assert_eq!(std::fs::read(&f.path).expect("read"), before);
}

#[test]
fn a_file_that_is_not_a_database_is_named() {
    let f = Fixture::new();
    std::fs::create_dir_all(f.path.parent().expect("dir")).expect("mkdir");
    std::fs::write(
        &f.path,
        "this is no SQLite file, just text that is long enough ".repeat(40),
    )
    .expect("write");
    let err = SqliteStore::open(&f.path, StoreSettings::default(), f.clock.clone())
        .expect_err("not a db");
    assert!(matches!(err, StoreError::NotADatabase { .. }), "{err}");
    assert!(err.to_string().contains(&f.path.display().to_string()));
    assert!(err.to_string().contains("move it away"));
}

#[test]
fn a_full_disk_fails_the_call_names_the_file_and_leaves_the_store_whole() {
    let f = Fixture::new();
    let store = f.open();
    let k = key("main");
    turn(&store, &k, "R1", "small");
    let before = store.history(&k, 100).expect("history");
    {
        // Cap the file at the pages it has now: the next page cannot be had.
        let conn = lock(store.writer.as_ref().expect("a writable store"));
        let pages: i64 = conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .expect("pages");
        conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))
            .expect("cap");
    }
    let big = "x".repeat(64 * 1024);
    let err = store
        .begin_run(&k, "R2", &user(&big, T0))
        .expect_err("full");
    assert!(matches!(err, StoreError::DiskFull { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains(&f.path.display().to_string()), "{text}");
    assert!(text.contains("free space"), "{text}");
    // Nothing of the failed call is there; the rest is.
    assert_eq!(store.history(&k, 100).expect("history"), before);
    assert_eq!(store.run("R2").expect("run"), None);
    {
        let conn = lock(store.writer.as_ref().expect("a writable store"));
        conn.query_row("PRAGMA max_page_count = 1073741823", [], |_| Ok(()))
            .expect("uncap");
        let ok: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .expect("check");
        assert_eq!(ok, "ok");
    }
    // Space is back: the same run id starts afresh.
    started(store.begin_run(&k, "R2", &user(&big, T0)).expect("begin"));
}

#[test]
fn a_second_owner_is_refused_while_the_first_holds_the_store() {
    let f = Fixture::new();
    let store = f.open();
    let err =
        SqliteStore::open(&f.path, StoreSettings::default(), f.clock.clone()).expect_err("locked");
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    assert!(err.to_string().contains("open in another process"));
    drop(store);
    f.open();
}

#[cfg(unix)]
#[test]
fn the_database_file_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new();
    let store = f.open();
    turn(&store, &key("main"), "R1", "q");
    for suffix in ["", "-wal"] {
        let mut p = f.path.clone().into_os_string();
        p.push(suffix);
        let mode = std::fs::metadata(&p).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{p:?}");
    }
}

#[test]
fn concurrent_callers_each_get_all_their_messages_stored_once() {
    let f = Fixture::new();
    let store = Arc::new(f.open());
    let threads: Vec<_> = (0..6)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                let k = key(&format!("s{t}"));
                for i in 0..20 {
                    turn(&store, &k, &format!("R{t}-{i}"), &format!("q{i}"));
                    // Readers run beside the writers.
                    store.list(&ListQuery::default()).expect("list");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    for t in 0..6 {
        let k = key(&format!("s{t}"));
        let history = store.history(&k, 1000).expect("history");
        assert_eq!(history.len(), 80);
        let seqs: Vec<u64> = history.iter().map(|m| m.seq).collect();
        assert_eq!(seqs, (1..=80).collect::<Vec<u64>>());
        assert_eq!(store.get(&k).expect("get").expect("row").message_count, 80);
    }
    let spend = store.spend_since(0).expect("spend");
    assert!((spend.usd - 6.0 * 20.0 * 0.03).abs() < 1e-6, "{spend:?}");
}

#[test]
fn create_returns_the_existing_session_and_a_run_record_tells_its_state() {
    let f = Fixture::new();
    let store = f.open();
    let k = key("dashboard:1");
    let made = store.create(&k, Some("Board")).expect("create");
    assert_eq!(made.label.as_deref(), Some("Board"));
    assert_eq!(made.message_count, 0);
    let again = store.create(&k, None).expect("create");
    assert_eq!(again.session_id, made.session_id);
    assert_eq!(again.label.as_deref(), Some("Board"));
    let (session_id, _) = started(store.begin_run(&k, "R1", &user("q", T0)).expect("begin"));
    assert_eq!(session_id, made.session_id);
    let record = store.run("R1").expect("run").expect("known");
    assert_eq!(record.key, k);
    assert_eq!(record.outcome, None);
    store
        .finish_run(&k, "R1", &outcome(RunStatus::Error, ""))
        .expect("finish");
    let record = store.run("R1").expect("run").expect("known");
    assert_eq!(record.outcome.map(|o| o.status), Some(RunStatus::Error));
}

#[test]
fn a_read_only_view_beside_the_owner_reads_and_refuses_writes() {
    let f = Fixture::new();
    let owner = f.open();
    assert!(matches!(
        SqliteStore::open(&f.path, StoreSettings::default(), f.clock.clone()),
        Err(StoreError::Locked { .. })
    ));
    let k = key("main");
    owner.begin_run(&k, "R1", &user("hi", T0)).expect("begin");
    owner
        .append(&k, "R1", &assistant("hello", "openai", 0.0, &[]))
        .expect("append");
    let view = SqliteStore::open_read_only(&f.path, f.clock.clone())
        .expect("open read-only")
        .expect("the store exists");
    assert_eq!(view.list(&ListQuery::default()).expect("list").total, 1);
    assert_eq!(
        view.history_page(&k, 10, 0)
            .expect("history")
            .messages
            .len(),
        2
    );
    assert!(matches!(
        view.reset(&k, ResetReason::Reset),
        Err(StoreError::ReadOnly { .. })
    ));
    assert!(
        SqliteStore::open_read_only(f.path.with_file_name("none.sqlite"), f.clock.clone())
            .expect("no error")
            .is_none(),
        "no store yet"
    );
}

#[test]
fn the_history_a_turn_reads_always_equals_a_whole_read() {
    let f = Fixture::new();
    let store = f.open();
    let k = key("main");
    let whole = |limit: usize| store.history_page(&k, limit, 0).expect("page").messages;
    let check = |limit: usize, why: &str| {
        let got = store.history(&k, limit).expect("history");
        assert_eq!(texts(&got), texts(&whole(limit)), "{why}");
        assert_eq!(
            got.iter().map(|m| m.seq).collect::<Vec<_>>(),
            whole(limit).iter().map(|m| m.seq).collect::<Vec<_>>(),
            "{why}"
        );
        got
    };
    assert!(check(6, "no session yet").is_empty());
    for i in 0..5 {
        turn(&store, &k, &format!("A{i}"), &format!("q{i}"));
        // Read twice: from the database, then from the kept tail plus
        // nothing new.
        assert_eq!(check(6, "after a turn").len(), (4 * (i + 1)).min(6));
        check(6, "again");
    }
    // Another limit is a read of its own.
    assert_eq!(check(3, "a smaller limit").len(), 3);
    assert_eq!(check(100, "a larger limit").len(), 20);
    // A turn's first half only, then the rest: each read sees what is stored.
    started(store.begin_run(&k, "B", &user("half", T0)).expect("begin"));
    assert_eq!(texts(&check(100, "mid-turn")).last().unwrap(), "user:half");
    store
        .append(&k, "B", &assistant("done", "openai", 0.0, &[]))
        .expect("append");
    store
        .finish_run(&k, "B", &outcome(RunStatus::Ok, "done"))
        .expect("finish");
    assert_eq!(
        texts(&check(100, "turn ended")).last().unwrap(),
        "assistant:done"
    );
    // A reset starts the history again, though the session id stays.
    store.reset(&k, ResetReason::Reset).expect("reset");
    assert!(check(100, "after a reset").is_empty());
    turn(&store, &k, "C", "after reset");
    assert_eq!(
        texts(&check(100, "a turn after the reset"))[0],
        "user:after reset"
    );
    // A deleted and re-created session has none of the old messages.
    store.delete(&k).expect("delete");
    assert!(check(100, "deleted").is_empty());
    turn(&store, &k, "D", "new life");
    assert_eq!(check(100, "re-created").len(), 4);
    // A second store over the same file (a read-only view) agrees too.
    drop(store);
    let store = f.open();
    assert_eq!(
        texts(&store.history(&k, 100).expect("reopened"))[0],
        "user:new life"
    );
}

#[test]
fn a_lookup_by_run_id_is_planned_once_whatever_the_id() {
    let f = Fixture::new();
    let store = f.open();
    let k = key("main");
    for i in 0..4 {
        turn(&store, &k, &format!("R{i}"), "q");
        assert!(store.run(&format!("R{i}")).expect("run").is_some());
    }
    let reprepared = |conn: &Connection| {
        let stmt = conn.prepare_cached(RUN_RECORD).expect("prepare");
        stmt.get_status(rusqlite::StatementStatus::RePrepare)
    };
    // The store's own reader: each new id reused the plan.
    let reader = lock(&store.readers).pop().expect("an idle reader");
    assert_eq!(reprepared(&reader), 0);
    // Without stable plans SQLite compiles the statement again for every
    // new id (the partial index on runs.status might apply to one): what
    // `stable_plans` is there to prevent.
    let plain = Connection::open(&f.path).expect("open");
    for i in 0..4 {
        let found = plain
            .prepare_cached(RUN_RECORD)
            .expect("prepare")
            .exists([format!("R{i}")])
            .expect("query");
        assert!(found);
    }
    assert!(
        reprepared(&plain) > 0,
        "SQLite no longer re-prepares here; stable_plans may go"
    );
}

/// The size of the database file itself (not its WAL).
fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Waits up to 10 s for the WAL to be copied into the file: the file grows.
fn copied_into_file(path: &Path, before: u64) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if file_len(path) > before {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    false
}

#[test]
fn a_busy_store_copies_its_wal_off_the_writers_path() {
    let f = Fixture::new();
    let store = f.open();
    let before = file_len(&f.path);
    // 100 commits: far fewer pages than SQLite's own checkpoint waits for.
    for i in 0..20 {
        turn(
            &store,
            &key("busy"),
            &format!("r{i}"),
            "what is six times seven?",
        );
    }
    assert!(
        copied_into_file(&f.path, before),
        "the WAL was not copied into {} ({before} bytes)",
        f.path.display()
    );
    assert_eq!(
        store.history(&key("busy"), 1000).expect("history").len(),
        80
    );
}

#[test]
fn a_quiet_store_copies_its_last_commits_within_a_second_or_two() {
    let f = Fixture::new();
    let store = f.open();
    let before = file_len(&f.path);
    turn(&store, &key("quiet"), "r1", "hello");
    assert!(
        copied_into_file(&f.path, before),
        "one turn was not copied into {} ({before} bytes)",
        f.path.display()
    );
    drop(store);
    // Dropping the store stopped its thread: the file opens again at once.
    assert_eq!(
        f.open().history(&key("quiet"), 10).expect("history").len(),
        4
    );
}
