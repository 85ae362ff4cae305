//! kill -9 in the middle of turns, for real: this test re-runs its own
//! binary as a child that streams turns into the store and reports each
//! call that returned; the parent kills it with SIGKILL at a random moment,
//! many times, then checks that every reported message is stored exactly
//! once and that every cut run is closed as interrupted.
#![cfg(unix)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use omniclaw_agent::message::{
    AssistantBlock, AssistantMessage, Message, StopReason, TextBlock, ToolCall, ToolResultMessage,
    Usage, UserMessage,
};
use omniclaw_agent::session::{Begin, RunStatus, SessionKey, SessionStore};
use omniclaw_agent::store::{is_interruption_marker, ListQuery, SqliteStore, StoreSettings};

mod support;
use support::{ok_outcome, SystemClock};

/// Set in the child: the database it writes to.
const CHILD_DB: &str = "OMNICLAW_KILL_TEST_DB";
/// Set in the child: which round it is (run ids are unique across rounds).
const CHILD_ROUND: &str = "OMNICLAW_KILL_TEST_ROUND";
const TEST_NAME: &str = "kill_nine_mid_turn_loses_and_duplicates_nothing";
const ROUNDS: u32 = 100;
const KEYS: [&str; 3] = ["main", "work", "telegram:direct:42"];

fn key(i: usize) -> SessionKey {
    SessionKey::parse(KEYS[i % KEYS.len()], "main").expect("key")
}

fn assistant(text: &str, call: Option<&str>) -> Message {
    let mut content = vec![AssistantBlock::Text { text: text.into() }];
    if let Some(id) = call {
        content.push(AssistantBlock::ToolCall(ToolCall {
            id: id.into(),
            name: "read".into(),
            arguments: serde_json::json!({"path": "a.txt"}),
        }));
    }
    Message::Assistant(AssistantMessage {
        content,
        api: "openai-completions".into(),
        provider: "openai".into(),
        model: "m".into(),
        usage: Usage::default(),
        stop_reason: if call.is_some() {
            StopReason::ToolUse
        } else {
            StopReason::Stop
        },
        error_message: None,
        timestamp: 0,
    })
}

/// The child: open (closing what the last kill cut), then stream turns
/// until killed, reporting each call that returned.
fn child(db: &Path, round: &str) {
    let store =
        SqliteStore::open(db, StoreSettings::default(), Arc::new(SystemClock)).expect("child open");
    println!("@@ready");
    // Bounded, so a child whose parent died stops by itself.
    for i in 0..20_000 {
        let run = format!("r{round}-{i}");
        let k = key(i);
        let u = UserMessage {
            content: format!("u {run}"),
            timestamp: 0,
            idempotency_key: None,
        };
        match store.begin_run(&k, &run, &u).expect("begin") {
            Begin::Started { .. } => println!("@@begin {run} {}", k.as_str()),
            other => panic!("fresh run {run} was {other:?}"),
        }
        let call = format!("c-{run}");
        let msgs = [
            assistant(&format!("a1 {run}"), Some(&call)),
            Message::ToolResult(ToolResultMessage {
                tool_call_id: call.clone(),
                tool_name: "read".into(),
                content: vec![TextBlock {
                    text: format!("t {run}"),
                }],
                is_error: false,
                timestamp: 0,
            }),
            assistant(&format!("a2 {run}"), None),
        ];
        for (n, m) in msgs.iter().enumerate() {
            store.append(&k, &run, m).expect("append");
            println!("@@msg {run} {n}");
        }
        store
            .finish_run(&k, &run, &ok_outcome(&format!("a2 {run}")))
            .expect("finish");
        println!("@@finish {run}");
    }
}

/// xorshift64*: enough to spread the kill moments; the seed is printed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// What the children reported per run: its key, the messages that were
/// stored (by index: 0 = user, 1..=3 = the appends) and whether it finished.
#[derive(Default)]
struct Reported {
    key: String,
    messages: BTreeSet<usize>,
    finished: bool,
}

fn content_of(m: &Message) -> String {
    match m {
        Message::User(u) => u.content.clone(),
        Message::Assistant(a) => a.text(),
        Message::ToolResult(r) => r.text(),
    }
}

#[test]
fn kill_nine_mid_turn_loses_and_duplicates_nothing() {
    if let Some(db) = std::env::var_os(CHILD_DB) {
        let round = std::env::var(CHILD_ROUND).unwrap_or_default();
        child(Path::new(&db), &round);
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let db: PathBuf = dir.path().join("sessions.sqlite");
    let exe = std::env::current_exe().expect("test binary");
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        | 1;
    eprintln!("kill test seed {seed}");
    let mut rng = Rng(seed);
    let mut runs: BTreeMap<String, Reported> = BTreeMap::new();

    for round in 0..ROUNDS {
        let mut proc = Command::new(&exe)
            .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_DB, &db)
            .env(CHILD_ROUND, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = proc.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // The harness prints "test <name> ... " before the test's
                // own output, on the same line.
                let Some(at) = line.find("@@") else { continue };
                if tx.send(line[at..].to_string()).is_err() {
                    break;
                }
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the child opens the store and says ready");
        assert_eq!(line, "@@ready");
        let mut lines = Vec::new();
        // Somewhere between a few calls and a few hundred.
        std::thread::sleep(Duration::from_micros(500 + rng.below(40_000)));
        proc.kill().expect("SIGKILL");
        let status = proc.wait().expect("wait");
        assert!(
            status.code().is_none(),
            "round {round}: the child ended before the kill ({status}); its output: {lines:?}"
        );
        reader.join().expect("reader");
        lines.extend(rx.try_iter());
        for line in lines {
            let parts: Vec<&str> = line.split(' ').collect();
            match parts.as_slice() {
                ["@@begin", run, key] => {
                    let r = runs.entry((*run).into()).or_default();
                    r.key = (*key).into();
                    r.messages.insert(0);
                }
                ["@@msg", run, n] => {
                    let n: usize = n.parse().expect("index");
                    runs.entry((*run).into())
                        .or_default()
                        .messages
                        .insert(n + 1);
                }
                ["@@finish", run] => runs.entry((*run).into()).or_default().finished = true,
                _ => {}
            }
        }
    }

    let store = SqliteStore::open(&db, StoreSettings::default(), Arc::new(SystemClock))
        .expect("open after the kills");
    // Every stored message, by its unique text, with its position.
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut histories = BTreeMap::new();
    for i in 0..KEYS.len() {
        let k = key(i);
        let history = store.history(&k, 1_000_000).expect("history");
        for m in &history {
            if let Message::Assistant(a) = &m.message {
                if is_interruption_marker(a) {
                    continue;
                }
            }
            if let Message::ToolResult(r) = &m.message {
                if r.is_error {
                    continue;
                }
            }
            *seen.entry(content_of(&m.message)).or_default() += 1;
        }
        histories.insert(k.as_str().to_string(), history);
    }
    let duplicated: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(duplicated.is_empty(), "stored twice: {duplicated:?}");

    let mut interrupted = 0;
    let mut finished = 0;
    for (run, r) in &runs {
        let texts = [
            format!("u {run}"),
            format!("a1 {run}"),
            format!("t {run}"),
            format!("a2 {run}"),
        ];
        for n in &r.messages {
            assert_eq!(
                seen.get(&texts[*n]),
                Some(&1),
                "reported message {:?} of {run} must be stored once",
                texts[*n]
            );
        }
        let record = store.run(run).expect("run").expect("a begun run is known");
        let outcome = record.outcome.expect("no run is left running");
        if r.finished {
            finished += 1;
            assert_eq!(outcome.status, RunStatus::Ok, "{run}");
            continue;
        }
        // Not reported finished: either the finish committed just before
        // the kill, or the run was cut and is now closed as interrupted.
        if outcome.status == RunStatus::Ok {
            continue;
        }
        assert_eq!(outcome.status, RunStatus::Interrupted, "{run}");
        interrupted += 1;
        let history = &histories[&r.key];
        let mine: Vec<&Message> = history
            .iter()
            .filter(|m| m.run_id.as_deref() == Some(run.as_str()))
            .map(|m| &m.message)
            .collect();
        let Some(Message::Assistant(last)) = mine.last() else {
            panic!("{run} ends with a marker: {mine:?}");
        };
        assert!(is_interruption_marker(last), "{run}: {last:?}");
        // Every call the cut run made has a result.
        let calls: BTreeSet<String> = mine
            .iter()
            .filter_map(|m| match m {
                Message::Assistant(a) => Some(a.tool_calls().map(|c| c.id.clone())),
                _ => None,
            })
            .flatten()
            .collect();
        let answered: BTreeSet<String> = mine
            .iter()
            .filter_map(|m| match m {
                Message::ToolResult(r) => Some(r.tool_call_id.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(calls, answered, "{run}");
        let k = SessionKey::parse(&r.key, "main").expect("key");
        let retry = UserMessage {
            content: format!("u {run}"),
            timestamp: 0,
            idempotency_key: None,
        };
        match store.begin_run(&k, run, &retry).expect("retry") {
            Begin::Done(o) => assert_eq!(o.status, RunStatus::Interrupted),
            other => panic!("a retried cut run replays its end, got {other:?}"),
        }
    }
    let running = store
        .list(&ListQuery::default())
        .expect("list")
        .sessions
        .iter()
        .filter(|s| s.running)
        .count();
    assert_eq!(running, 0);
    assert!(finished > 0, "the children finished no turn at all");
    assert!(
        interrupted > 0,
        "no kill landed inside a run in {ROUNDS} rounds (seed {seed})"
    );
    drop(store);
    let conn = rusqlite::Connection::open(&db).expect("db");
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("check");
    assert_eq!(check, "ok");
    eprintln!(
        "kill test: {ROUNDS} kills, {} runs, {finished} finished, {interrupted} interrupted",
        runs.len()
    );
}
