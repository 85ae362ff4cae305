//! Session store numbers: `cargo bench -p omniclaw-agent --bench store`.
//!
//! - `begin_run` latency (the user message is durable before the first
//!   delta; the whole `chat.send` → first delta targets p50 ≤ 1 ms), alone
//!   and with readers listing and paging history beside it;
//! - `append` latency (each streamed message of a turn);
//! - with 10 000 stored sessions: the open time and the idle RSS of a fresh
//!   process that opens the store, and a `sessions.list` page.
//!
//! Numbers are printed; nothing is asserted.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use omniclaw_agent::message::{
    AssistantBlock, AssistantMessage, Message, StopReason, Usage, UserMessage,
};
use omniclaw_agent::session::{SessionKey, SessionStore};
use omniclaw_agent::store::{ListQuery, SqliteStore, StoreSettings};

#[path = "../tests/support/mod.rs"]
mod support;
use support::{ok_outcome, SystemClock};

fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(path, StoreSettings::default(), Arc::new(SystemClock)).expect("open")
}

fn key(i: usize) -> SessionKey {
    SessionKey::parse(&format!("telegram:direct:{i}"), "main").expect("key")
}

fn user(i: usize) -> UserMessage {
    UserMessage {
        content: format!("question number {i}: what is the weather like today, and tomorrow?"),
        timestamp: 0,
        idempotency_key: None,
    }
}

fn reply(i: usize) -> Message {
    Message::Assistant(AssistantMessage {
        content: vec![AssistantBlock::Text {
            text: format!("answer {i}: ").repeat(20),
        }],
        api: "openai-completions".into(),
        provider: "openai".into(),
        model: "gpt-x".into(),
        usage: Usage {
            input: 900,
            output: 120,
            total_tokens: 1020,
            ..Usage::default()
        },
        stop_reason: StopReason::Stop,
        error_message: None,
        timestamp: 0,
    })
}

fn turn(store: &SqliteStore, session: usize, run: &str) -> (Duration, Duration) {
    let k = key(session);
    let t = Instant::now();
    store.begin_run(&k, run, &user(session)).expect("begin");
    let begin = t.elapsed();
    let t = Instant::now();
    store.append(&k, run, &reply(session)).expect("append");
    let append = t.elapsed();
    store.finish_run(&k, run, &ok_outcome("")).expect("finish");
    (begin, append)
}

fn percentiles(label: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "{label:<44} n={:<6} p50={:>8.1} µs  p99={:>8.1} µs  max={:>8.1} µs",
        samples.len(),
        at(0.50).as_secs_f64() * 1e6,
        at(0.99).as_secs_f64() * 1e6,
        at(1.0).as_secs_f64() * 1e6
    );
}

fn latency(dir: &Path) {
    const TURNS: usize = 3000;
    let store = Arc::new(open(&dir.join("latency.sqlite")));
    let (mut begins, mut appends) = (Vec::new(), Vec::new());
    for i in 0..TURNS {
        let (b, a) = turn(&store, i % 100, &format!("warm-{i}"));
        begins.push(b);
        appends.push(a);
    }
    percentiles("begin_run (100 sessions, no readers)", begins);
    percentiles("append (100 sessions, no readers)", appends);

    // Readers beside the writer: two threads listing and paging history.
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let store = store.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    store.list(&ListQuery::default()).expect("list");
                    store.history_page(&key(n % 100), 200, 0).expect("history");
                    n += 1 + r;
                }
                n
            })
        })
        .collect();
    let mut begins = Vec::new();
    for i in 0..TURNS {
        begins.push(turn(&store, i % 100, &format!("busy-{i}")).0);
    }
    stop.store(true, Ordering::Relaxed);
    let reads: usize = readers.into_iter().map(|h| h.join().expect("reader")).sum();
    percentiles("begin_run (2 reader threads beside it)", begins);
    println!("{:<44} {reads} list+history calls meanwhile", "");
}

/// Fills a store with `n` sessions of one turn (user + reply) each.
fn fill(path: &Path, n: usize) {
    let store = open(path);
    let t = Instant::now();
    for i in 0..n {
        turn(&store, i, &format!("fill-{i}"));
    }
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    println!(
        "filled {n} sessions in {:.1} s ({:.1} MiB before checkpoint)",
        t.elapsed().as_secs_f64(),
        size as f64 / (1024.0 * 1024.0)
    );
}

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn fmt_rss(kib: Option<u64>) -> String {
    kib.map_or("n/a".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

/// Runs in a fresh process: open, idle RSS, one page of the list.
fn child_open(path: &Path) {
    let before = rss_kib();
    let t = Instant::now();
    let store = open(path);
    let opened = t.elapsed();
    let idle = rss_kib();
    let t = Instant::now();
    let page = store
        .list(&ListQuery {
            limit: 100,
            ..ListQuery::default()
        })
        .expect("list");
    let listed = t.elapsed();
    let t = Instant::now();
    let all = store
        .list(&ListQuery {
            limit: 100_000,
            ..ListQuery::default()
        })
        .expect("list");
    let listed_all = t.elapsed();
    println!(
        "open with {} sessions: {:.2} ms; RSS {} before open, {} open and idle, {} after listing all",
        page.total,
        opened.as_secs_f64() * 1e3,
        fmt_rss(before),
        fmt_rss(idle),
        fmt_rss(rss_kib())
    );
    println!(
        "sessions.list page of 100: {:.2} ms; all {} rows: {:.1} ms",
        listed.as_secs_f64() * 1e3,
        all.sessions.len(),
        listed_all.as_secs_f64() * 1e3
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child-open") {
        child_open(Path::new(&args[i + 1]));
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    latency(dir.path());

    let big = dir.path().join("10k.sqlite");
    fill(&big, 10_000);
    let out = std::process::Command::new(std::env::current_exe().expect("exe"))
        .arg("--child-open")
        .arg(&big)
        .output()
        .expect("child");
    print!("{}", String::from_utf8_lossy(&out.stdout));
    if !out.status.success() {
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
    }
}
