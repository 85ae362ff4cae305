//! The assistant of an `omniclaw gateway` process pointed at the provider
//! double (`provider-double`, a process of its own that answers at once):
//!
//! 1. overhead per turn: `chat.send` → the first `chat` delta at the client,
//!    and → the final event (goal p50 ≤ 1 ms, p99 ≤ 5 ms; the user message
//!    is committed to the store before the model is called);
//! 2. `agent` → its final answer, side by side with the real OpenClaw
//!    gateway pointed at the same double (goal: at least ×100 faster);
//! 3. 1,000 sessions streaming at once (a second double that streams each
//!    answer over about a second): all complete, peak RSS ≤ 150 MB;
//! 4. idle RSS with 10,000 stored sessions (goal ≤ 20 MB).
//!
//! Build the double first, then run:
//! `cargo build --release -p omniclaw-agent --features double --bin provider-double`
//! `cargo bench -p omniclaw-cli --bench chat [-- --openclaw-turns N | --no-openclaw]`
//!
//! The OpenClaw side needs its CLI (`scripts/install-openclaw.sh
//! .tools/openclaw`, or `OPENCLAW_BIN`); without it that part is skipped.
//! The measuring client runs on one thread with a current-thread runtime and
//! one request at a time per connection.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use omniclaw_agent::clock::SystemClock;
use omniclaw_agent::message::{
    AssistantBlock, AssistantMessage, Message, StopReason, Usage, UserMessage,
};
use omniclaw_agent::session::{RunOutcome, RunStatus, SessionKey, SessionStore};
use omniclaw_agent::store::{SqliteStore, StoreSettings};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const TOKEN: &str = "bench-token-0123456789abcdef";
/// Turns per session in the overhead run, and sessions.
const TURNS_PER_SESSION: usize = 100;
const SESSIONS: usize = 20;
const WARM_UP: usize = 100;
/// `agent` turns on our side (OpenClaw's count is an argument).
const AGENT_TURNS: usize = 200;
const STREAMING_SESSIONS: usize = 1_000;
const STREAMING_CONNECTIONS: usize = 10;
const STORED_SESSIONS: usize = 10_000;
/// What the streaming double says, about 60 SSE events of 4 characters.
const LONG_REPLY: &str = "This answer streams in small pieces, the way a model writes it: a few characters at a time, for about a second, so that a thousand of them are under way at once and the gateway holds them all.";

/// Ends the bench with `what`; a panic, so that the processes it started
/// are stopped on the way out.
fn fail(what: impl std::fmt::Display) -> ! {
    panic!("chat bench: {what}");
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn summary(name: &str, mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    println!(
        "{name}: p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms ({} samples)",
        ms(pct(&xs, 0.5)),
        ms(pct(&xs, 0.9)),
        ms(pct(&xs, 0.99)),
        ms(*xs.last().unwrap_or(&Duration::ZERO)),
        xs.len()
    );
    pct(&xs, 0.5)
}

/// A field of `pid`'s `/proc/PID/status`, in MB (0 when unreadable).
fn status_mb(pid: u32, field: &str) -> f64 {
    omniclaw_tests::status_kb(pid, field).map_or(0.0, |kb| kb as f64 / 1024.0)
}

/// `VmRSS` and `VmHWM` (peak) of `pid`, in MB.
fn rss_mb(pid: u32) -> (f64, f64) {
    (status_mb(pid, "VmRSS:"), status_mb(pid, "VmHWM:"))
}

/// CPU time `pid` has used so far (user and system).
fn cpu_time(pid: u32) -> Duration {
    omniclaw_tests::cpu_time(pid).unwrap_or_default()
}

/// The RSS of `pid` and of every process below it, in MB.
fn tree_rss_mb(pid: u32) -> f64 {
    let mut total = rss_mb(pid).0;
    let children =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
        total += tree_rss_mb(child);
    }
    total
}

/// A child process, stopped (with its process group) when dropped.
struct Proc(Child);

impl Proc {
    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.0.id())])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.0.wait();
    }
}

fn spawn(mut cmd: Command) -> Proc {
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    Proc(
        cmd.spawn()
            .unwrap_or_else(|e| fail(format!("spawn {cmd:?}: {e}"))),
    )
}

/// Starts `provider-double ARGS`; its process and address.
fn double(bin: &Path, args: &[&str]) -> (Proc, String) {
    use std::io::BufRead;
    let mut cmd = Command::new(bin);
    cmd.args(args).stdout(Stdio::piped());
    let mut p = spawn(cmd);
    let stdout = p.0.stdout.take().expect("stdout");
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the double's address");
    (p, line.trim().to_string())
}

fn wait_listening(port: u16, within: Duration) -> Duration {
    let t0 = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if t0.elapsed() > within {
            fail(format!("nothing listens on {port} after {within:?}"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    t0.elapsed()
}

/// One profile of `omniclaw` in `home` pointed at the double at `addr`.
fn omniclaw_profile(bin: &str, home: &Path, profile: &str, addr: &str) -> u16 {
    let port = omniclaw_tests::free_base();
    let run = |args: &[&str]| {
        let out = Command::new(bin)
            .args(["--profile", profile])
            .args(args)
            .env("HOME", home)
            .output()
            .expect("run omniclaw");
        if !out.status.success() {
            fail(format!(
                "omniclaw {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    };
    run(&["setup", "--port", &port.to_string()]);
    run(&[
        "config",
        "set",
        "models.providers.dbl",
        &format!(
            "{{ baseUrl: 'http://{addr}/v1', api: 'openai-completions', models: [{{ id: 'm1', name: 'M1' }}] }}"
        ),
    ]);
    run(&["config", "set", "agents.defaults.model", "\"dbl/m1\""]);
    port
}

fn omniclaw_gateway(bin: &str, home: &Path, profile: &str, port: u16) -> Proc {
    let mut cmd = Command::new(bin);
    cmd.args(["--profile", profile, "gateway", "--token", TOKEN])
        .env("HOME", home)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let p = spawn(cmd);
    wait_listening(port, Duration::from_secs(10));
    p
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A bare protocol client: one socket, read and written by its one task.
struct Ws {
    socket: Socket,
    next: u64,
}

impl Ws {
    /// Connects, waiting as a gateway that is still starting asks
    /// (OpenClaw answers `UNAVAILABLE`, retryable, until its sidecars run).
    async fn connect(port: u16, token: &str) -> Ws {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            match Ws::try_connect(port, token).await {
                Ok(ws) => return ws,
                Err(f) if f["error"]["retryable"] == true && Instant::now() < deadline => {
                    let wait = f["error"]["retryAfterMs"].as_u64().unwrap_or(500);
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                }
                Err(f) => fail(format!("connect refused: {f}")),
            }
        }
    }

    /// One connect; the refusal frame when the gateway says no.
    async fn try_connect(port: u16, token: &str) -> Result<Ws, Value> {
        let (socket, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}"))
            .await
            .unwrap_or_else(|e| fail(format!("connect to {port}: {e}")));
        let mut ws = Ws { socket, next: 0 };
        let challenge = ws.recv().await;
        if challenge["event"] != "connect.challenge" {
            fail(format!("no challenge: {challenge}"));
        }
        ws.send(
            json!({"type": "req", "id": "c", "method": "connect", "params": {
                "minProtocol": 4, "maxProtocol": 4,
                "client": {"id": "cli", "version": "1.0.0", "platform": "linux", "mode": "cli"},
                "caps": [], "auth": {"token": token}, "role": "operator",
                "scopes": ["operator.admin", "operator.read", "operator.write"],
            }}),
        )
        .await;
        loop {
            let f = ws.recv().await;
            if f["type"] == "res" && f["id"] == "c" {
                return if f["ok"] == true { Ok(ws) } else { Err(f) };
            }
        }
    }

    async fn send(&mut self, frame: Value) {
        self.socket
            .send(WsMessage::text(frame.to_string()))
            .await
            .unwrap_or_else(|e| fail(format!("send: {e}")));
    }

    async fn recv(&mut self) -> Value {
        serde_json::from_str(&self.recv_text().await).unwrap_or(Value::Null)
    }

    /// The next text frame, unparsed.
    async fn recv_text(&mut self) -> String {
        loop {
            match self.socket.next().await {
                Some(Ok(WsMessage::Text(t))) => return t.as_str().to_string(),
                Some(Ok(_)) => continue,
                other => fail(format!("the connection ended: {other:?}")),
            }
        }
    }

    /// Sends a request; its id.
    async fn request(&mut self, method: &str, params: Value) -> String {
        self.next += 1;
        let id = format!("r{}", self.next);
        self.send(json!({"type": "req", "id": id, "method": method, "params": params}))
            .await;
        id
    }

    /// A request's (first) answer; events before it are dropped.
    async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.request(method, params).await;
        loop {
            let f = self.recv().await;
            if f["type"] == "res" && f["id"] == id.as_str() {
                if f["ok"] != true {
                    fail(format!("{method}: {f}"));
                }
                return f["payload"].clone();
            }
        }
    }

    /// `agent` → its final `res` (the second on the request's id).
    async fn agent_turn(&mut self, session: &str, run: &str) -> Duration {
        let t0 = Instant::now();
        let id = self
            .request(
                "agent",
                json!({"message": "hello", "sessionKey": session, "idempotencyKey": run}),
            )
            .await;
        loop {
            let f = self.recv().await;
            if f["type"] == "res" && f["id"] == id.as_str() {
                if f["ok"] != true {
                    fail(format!("agent: {f}"));
                }
                if f["payload"]["status"] == "accepted" {
                    continue;
                }
                if f["payload"]["status"] != "ok" {
                    fail(format!("agent did not finish: {f}"));
                }
                return t0.elapsed();
            }
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// 1. `chat.send` → first delta and → final, turn after turn.
fn overhead(port: u16, gateway: u32, double: u32) {
    let cpu_before = (cpu_time(gateway), cpu_time(double));
    let started = Instant::now();
    runtime().block_on(async {
        let mut ws = Ws::connect(port, TOKEN).await;
        let mut first = Vec::new();
        let mut whole = Vec::new();
        for i in 0..(WARM_UP + SESSIONS * TURNS_PER_SESSION) {
            let session = if i < WARM_UP {
                "warm-up".to_string()
            } else {
                format!("s{}", (i - WARM_UP) / TURNS_PER_SESSION)
            };
            let run = format!("turn-{i}");
            let t0 = Instant::now();
            ws.request(
                "chat.send",
                json!({"sessionKey": session, "message": format!("message {i}"), "idempotencyKey": run}),
            )
            .await;
            let mut delta_at = None;
            loop {
                let f = ws.recv().await;
                if f["type"] == "res" && f["ok"] != true {
                    fail(format!("chat.send: {f}"));
                }
                if f["event"] != "chat" || f["payload"]["runId"] != run.as_str() {
                    continue;
                }
                match f["payload"]["state"].as_str() {
                    Some("delta") => {
                        delta_at.get_or_insert_with(|| t0.elapsed());
                    }
                    Some("final") => {
                        if i >= WARM_UP {
                            first.push(delta_at.unwrap_or_else(|| fail("a final without a delta")));
                            whole.push(t0.elapsed());
                        }
                        break;
                    }
                    _ => fail(format!("turn {i}: {f}")),
                }
            }
        }
        summary("chat.send → first chat delta", first);
        summary("chat.send → final chat event", whole);
    });
    let turns = (WARM_UP + SESSIONS * TURNS_PER_SESSION) as u32;
    let per_turn = |before: Duration, pid: u32| cpu_time(pid).saturating_sub(before) / turns;
    println!(
        "CPU per turn (user + system): gateway {:.3} ms, provider double {:.3} ms; {:.0} turns/s",
        ms(per_turn(cpu_before.0, gateway)),
        ms(per_turn(cpu_before.1, double)),
        f64::from(turns) / started.elapsed().as_secs_f64()
    );
}

/// 2. `agent` → final, on one session: the first turn, then warm turns.
fn agent_turns(port: u16, token: &str, turns: usize, label: &str) -> Duration {
    runtime().block_on(async {
        let mut ws = Ws::connect(port, token).await;
        let session = format!("agent:main:bench-{label}");
        let t_first = ws.agent_turn(&session, &format!("{label}-first")).await;
        let mut warm = Vec::new();
        for i in 0..turns {
            warm.push(ws.agent_turn(&session, &format!("{label}-{i}")).await);
        }
        println!("{label}: first agent turn {:.1} ms", ms(t_first));
        summary(&format!("{label}: agent → final, warm turns"), warm)
    })
}

/// 3. Many sessions streaming at once over a few connections.
fn streaming(port: u16, gateway_pid: u32) {
    // One task per connection reads its frames; all on this thread.
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime(), async {
        let per = STREAMING_SESSIONS / STREAMING_CONNECTIONS;
        let mut conns = Vec::new();
        for _ in 0..STREAMING_CONNECTIONS {
            conns.push(Ws::connect(port, TOKEN).await);
        }
        let mut probe = Ws::connect(port, TOKEN).await;
        let t0 = Instant::now();
        let mut sent = Vec::new();
        for (c, ws) in conns.iter_mut().enumerate() {
            let mut runs = HashSet::new();
            for i in 0..per {
                let run = format!("stream-{c}-{i}");
                ws.request(
                    "chat.send",
                    json!({"sessionKey": format!("stream-{c}-{i}"), "message": "tell me a long story", "idempotencyKey": run}),
                )
                .await;
                runs.insert(run);
            }
            sent.push(runs);
        }
        let sending = t0.elapsed();
        tokio::time::sleep(Duration::from_millis(400)).await;
        let health = probe.call("health", json!({})).await;
        let active = health["assistant"]["activeRuns"].as_u64().unwrap_or(0);
        let mid_rss = rss_mb(gateway_pid).0;
        // Each connection reads until it saw the end of each of its runs.
        let mut tasks = Vec::new();
        for (mut ws, mut runs) in conns.into_iter().zip(sent) {
            tasks.push(tokio::task::spawn_local(async move {
                let mut frames = 0u64;
                while !runs.is_empty() {
                    let text = ws.recv_text().await;
                    frames += 1;
                    // Only the ends of runs (and failed requests) are read
                    // closely: the client must not be what limits the run.
                    let end = ["\"final\"", "\"error\"", "\"aborted\"", "\"ok\":false"]
                        .iter()
                        .any(|s| text.contains(s));
                    if !end {
                        continue;
                    }
                    let f: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    if f["type"] == "res" && f["ok"] != true {
                        fail(format!("chat.send: {f}"));
                    }
                    if f["event"] != "chat" {
                        continue;
                    }
                    let p = &f["payload"];
                    match p["state"].as_str() {
                        Some("final") => {
                            let run = p["runId"].as_str().unwrap_or_default();
                            if runs.remove(run) {
                                let text = p["message"]["content"][0]["text"].as_str();
                                if text != Some(LONG_REPLY) {
                                    fail(format!("{run} ended with other text: {p}"));
                                }
                            }
                        }
                        Some("error" | "aborted") => fail(format!("a run failed: {p}")),
                        _ => {}
                    }
                }
                frames
            }));
        }
        let mut frames = 0;
        for t in tasks {
            frames += t.await.unwrap_or_else(|e| fail(e));
        }
        let all = t0.elapsed();
        let (rss, peak) = rss_mb(gateway_pid);
        println!(
            "{STREAMING_SESSIONS} sessions streaming at once over {STREAMING_CONNECTIONS} connections: all {STREAMING_SESSIONS} final in {:.2} s (sent in {:.1} ms; {active} runs active 0.4 s after), {frames} frames read by the clients; gateway RSS {mid_rss:.1} MB while streaming, {rss:.1} MB after, peak {peak:.1} MB",
            all.as_secs_f64(),
            ms(sending)
        );
    });
}

/// A store with `n` sessions of one turn each, written as the gateway
/// writes them (for part 4).
fn fill_store(state_dir: &Path, n: usize) {
    let store = SqliteStore::open(
        state_dir.join("agent").join("sessions.sqlite"),
        StoreSettings::default(),
        Arc::new(SystemClock),
    )
    .unwrap_or_else(|e| fail(e));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    for i in 0..n {
        let key = SessionKey::parse(&format!("stored-{i}"), "main").unwrap_or_else(|e| fail(e));
        let run = format!("stored-run-{i}");
        let user = UserMessage {
            content: format!("stored message {i}"),
            timestamp: now,
            idempotency_key: Some(format!("{run}:user")),
        };
        store
            .begin_run(&key, &run, &user)
            .unwrap_or_else(|e| fail(e));
        let answer = AssistantMessage {
            content: vec![AssistantBlock::Text {
                text: format!("stored answer {i}"),
            }],
            api: "openai-completions".into(),
            provider: "dbl".into(),
            model: "m1".into(),
            usage: Usage::default(),
            stop_reason: StopReason::Stop,
            error_message: None,
            timestamp: now,
        };
        store
            .append(&key, &run, &Message::Assistant(answer))
            .unwrap_or_else(|e| fail(e));
        let outcome = RunOutcome {
            status: RunStatus::Ok,
            text: format!("stored answer {i}"),
            usage: Usage::default(),
            provider: Some("dbl".into()),
            model: Some("m1".into()),
            error: None,
            started_at: now,
            ended_at: now,
        };
        store
            .finish_run(&key, &run, &outcome)
            .unwrap_or_else(|e| fail(e));
    }
}

fn idle_with_stored(bin: &str, home: &Path, addr: &str) {
    let port = omniclaw_profile(bin, home, "stored", addr);
    let t0 = Instant::now();
    fill_store(&home.join(".omniclaw-stored"), STORED_SESSIONS);
    let filled = t0.elapsed();
    let gw = omniclaw_gateway(bin, home, "stored", port);
    std::thread::sleep(Duration::from_secs(2));
    let (idle, _) = rss_mb(gw.pid());
    // The rest of the RSS is pages of the binary and its libraries.
    let own = status_mb(gw.pid(), "RssAnon:");
    let listed = runtime().block_on(async {
        let mut ws = Ws::connect(port, TOKEN).await;
        let list = ws.call("sessions.list", json!({"limit": 100})).await;
        let h = ws
            .call("chat.history", json!({"sessionKey": "stored-42"}))
            .await;
        if h["messages"].as_array().map(Vec::len) != Some(2) {
            fail(format!("stored-42 lost its turn: {h}"));
        }
        list["totalCount"].as_u64().unwrap_or(0)
    });
    std::thread::sleep(Duration::from_secs(1));
    let (after, peak) = rss_mb(gw.pid());
    if listed != STORED_SESSIONS as u64 {
        fail(format!(
            "sessions.list counts {listed}, not {STORED_SESSIONS}"
        ));
    }
    println!(
        "idle gateway with {STORED_SESSIONS} stored sessions (written in {:.1} s): RSS {idle:.1} MB 2 s after start (its own memory, RssAnon, {own:.1} MB); {after:.1} MB after sessions.list and chat.history (peak {peak:.1} MB)",
        filled.as_secs_f64()
    );
}

/// The real OpenClaw gateway in `home`, pointed at the double at `addr`.
fn openclaw_gateway(launcher: &Path, home: &Path, addr: &str) -> (Proc, u16, Duration) {
    let port = omniclaw_tests::free_base();
    let dir = home.join(".openclaw");
    std::fs::create_dir_all(&dir).expect("openclaw dir");
    let config = format!(
        r#"{{
  gateway: {{ mode: "local", port: {port}, bind: "loopback", auth: {{ mode: "token", token: "{TOKEN}" }} }},
  models: {{ mode: "replace", providers: {{ dbl: {{ baseUrl: "http://{addr}/v1", api: "openai-completions", apiKey: "sk-double",
    models: [{{ id: "m1", name: "M1", input: ["text"], contextWindow: 128000, maxTokens: 4096, cost: {{ input: 0, output: 0, cacheRead: 0, cacheWrite: 0 }} }}] }} }} }},
  agents: {{ defaults: {{ model: {{ primary: "dbl/m1" }}, workspace: "{}" }} }},
}}
"#,
        home.join("openclaw-workspace").display()
    );
    std::fs::write(dir.join("openclaw.json"), config).expect("openclaw config");
    let mut cmd = Command::new(launcher);
    cmd.args(["gateway", "--port", &port.to_string()])
        .env("HOME", home)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let p = spawn(cmd);
    let listening = wait_listening(port, Duration::from_secs(120));
    (p, port, listening)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let openclaw_turns = args
        .iter()
        .position(|a| a == "--openclaw-turns")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(30usize);
    let with_openclaw = !args.iter().any(|a| a == "--no-openclaw");
    let built = env!("CARGO_BIN_EXE_omniclaw");
    let bin = &omniclaw_tests::bench_bin(built);
    let double_bin = Path::new(built).with_file_name("provider-double");
    if !double_bin.exists() {
        fail(format!(
            "{} is missing: cargo build --release -p omniclaw-agent --features double --bin provider-double",
            double_bin.display()
        ));
    }
    // A thousand provider connections and as many clients need descriptors.
    let _ = omniclaw_os::limits::raise_open_files();
    let home = tempfile::tempdir().expect("home");
    let (instant, addr) = double(&double_bin, &[]);
    let (_slow, slow_addr) = double(
        &double_bin,
        &[LONG_REPLY, "--chunk-bytes", "256", "--delay-ms", "50"],
    );

    // 1 and 2, our side.
    let port = omniclaw_profile(bin, home.path(), "bench", &addr);
    let gw = omniclaw_gateway(bin, home.path(), "bench", port);
    overhead(port, gw.pid(), instant.pid());
    let ours = agent_turns(port, TOKEN, AGENT_TURNS, "omniclaw");
    let (rss, peak) = rss_mb(gw.pid());
    println!(
        "omniclaw gateway after {} turns: RSS {rss:.1} MB (peak {peak:.1} MB)",
        WARM_UP + SESSIONS * TURNS_PER_SESSION + AGENT_TURNS + 1
    );
    drop(gw);

    // 2, OpenClaw's side, against the same double process.
    if with_openclaw {
        let launcher = std::env::var_os("OPENCLAW_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/openclaw/bin/openclaw")
            });
        if launcher.exists() {
            let peer_home = tempfile::tempdir().expect("openclaw home");
            let (oc, oc_port, listening) = openclaw_gateway(&launcher, peer_home.path(), &addr);
            println!(
                "openclaw gateway listening after {:.1} s",
                listening.as_secs_f64()
            );
            let theirs = agent_turns(oc_port, TOKEN, openclaw_turns, "openclaw");
            println!(
                "openclaw gateway after {} turns: RSS {:.1} MB (its process tree)",
                openclaw_turns + 1,
                tree_rss_mb(oc.pid())
            );
            println!(
                "agent → final, warm p50: omniclaw {:.3} ms, openclaw {:.1} ms: ×{:.0}",
                ms(ours),
                ms(theirs),
                theirs.as_secs_f64() / ours.as_secs_f64().max(1e-9)
            );
        } else {
            println!(
                "openclaw side skipped: {} is missing (scripts/install-openclaw.sh .tools/openclaw)",
                launcher.display()
            );
        }
    }

    // 3.
    let port = omniclaw_profile(bin, home.path(), "streaming", &slow_addr);
    let gw = omniclaw_gateway(bin, home.path(), "streaming", port);
    streaming(port, gw.pid());
    drop(gw);

    // 4.
    idle_with_stored(bin, home.path(), &addr);
}
