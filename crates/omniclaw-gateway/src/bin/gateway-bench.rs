//! Measures a gateway on this machine: start time, `health` latency and
//! throughput, handshake time, and memory with many idle connections, plus
//! two baselines (a bare TCP echo and a bare WebSocket echo) measured the
//! same way, so the gateway's numbers can be read against the floor of the
//! machine. Everything runs on loopback and stops by itself.
//!
//! Usage: `gateway-bench [IDLE_CONNECTIONS]` (default 10000; 0 skips the
//! idle-connection part). Run in release.
//!
//! The gateway (and each baseline server) runs on a multi-thread runtime of
//! its own, built like the one `omniclaw gateway` runs on. The measuring
//! client runs on one separate thread with a current-thread runtime, calls
//! one request at a time per connection and reads its answer on the same
//! task: the client adds no thread hand-offs of its own to a round trip.
//! The one-connection round trip is also measured from a plain blocking
//! socket (no event loop at all) and through `client::Client`, the client
//! the CLI uses.
//! The idle connections are opened by a child copy of this binary
//! (`--idle-clients URL N`), so the RSS reported is the gateway's own.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use omniclaw_gateway::client::Client;
use omniclaw_gateway::{Auth, Gateway, GatewaySpec};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

const TOKEN: &str = "bench-token-0123456789abcdef";
/// Calls per connection in the throughput runs.
const PER_CONN: usize = 2_000;
/// Connections in the throughput runs.
const CONNS: usize = 64;
/// Requests in flight on the pipelined connection.
const WINDOW: usize = 32;
/// Round trips timed on one connection (after a warm-up of 500).
const CALLS: usize = 10_000;

fn spec(dir: &Path) -> GatewaySpec {
    let mut s = GatewaySpec::new(
        "bench",
        dir.join("omniclaw.json"),
        dir.to_path_buf(),
        dir.join("workspace"),
        0,
    );
    s.auth = Auth::Token(TOKEN.into());
    s.browser.control_port = 0;
    s.browser.cdp_range = 1..=2;
    s.canvas.port = 0;
    s.limits.shutdown_grace = Duration::from_millis(500);
    s
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn fail(what: impl std::fmt::Display) -> ! {
    eprintln!("gateway-bench: {what}");
    std::process::exit(1);
}

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// CPU time a `schedstat` file reports (its first field, in ns).
fn schedstat(path: &Path) -> Option<Duration> {
    let text = std::fs::read_to_string(path).ok()?;
    let ns = text.split_whitespace().next()?.parse::<u64>().ok()?;
    Some(Duration::from_nanos(ns))
}

/// CPU time of the calling thread so far (Linux; zero elsewhere).
fn thread_cpu() -> Duration {
    schedstat(Path::new("/proc/thread-self/schedstat")).unwrap_or_default()
}

/// CPU time of every thread of this process so far (Linux; zero elsewhere).
fn process_cpu() -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    tasks
        .flatten()
        .filter_map(|t| schedstat(&t.path().join("schedstat")))
        .sum()
}

#[cfg(unix)]
// `rlim_t` is u64 on Linux and macOS but not on every unix: keep the casts.
#[allow(clippy::unnecessary_cast)]
fn raise_nofile(want: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if (lim.rlim_cur as u64) < want {
            // Raising the hard limit needs privileges; without them, go up
            // to the hard limit only.
            let raised = libc::rlimit {
                rlim_cur: want as libc::rlim_t,
                rlim_max: (lim.rlim_max as u64).max(want) as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 {
                lim.rlim_cur = lim.rlim_max;
                libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            }
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        }
    }
    lim.rlim_cur as u64
}

#[cfg(not(unix))]
fn raise_nofile(_: u64) -> u64 {
    0
}

/// The runtime the servers run on: the one `omniclaw gateway` builds.
fn server_runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("server")
        .build()
        .unwrap_or_else(|e| fail(format!("cannot start the server runtime: {e}")))
}

/// Runs `f` on a thread of its own with a current-thread runtime: the client side.
fn on_client_thread<F, Fut, T>(f: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    let thread = std::thread::Builder::new()
        .name("client".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap_or_else(|e| fail(format!("cannot start the client runtime: {e}")));
            rt.block_on(f())
        })
        .unwrap_or_else(|e| fail(format!("cannot start the client thread: {e}")));
    thread
        .join()
        .unwrap_or_else(|_| fail("the client thread panicked"))
}

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
}

/// The fields of a frame the client looks at; the payload is skipped.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(default)]
    id: Option<&'a str>,
    #[serde(default)]
    ok: Option<bool>,
}

/// What one client connection speaks: the gateway protocol, or one of the
/// baselines (the request's bytes echoed back).
enum Conn {
    Gateway {
        ws: WebSocketStream<TcpStream>,
        next: u64,
    },
    WsEcho {
        ws: WebSocketStream<TcpStream>,
        frame: String,
    },
    TcpEcho {
        tcp: TcpStream,
        frame: Vec<u8>,
        buf: Vec<u8>,
    },
}

/// The `connect` request (id `"0"`) of an operator with read scope.
fn connect_request() -> Value {
    json!({
        "type": "req",
        "id": "0",
        "method": "connect",
        "params": {
            "minProtocol": 4,
            "maxProtocol": 4,
            "client": {"id": "cli", "version": "bench", "platform": std::env::consts::OS, "mode": "cli"},
            "auth": {"token": TOKEN},
            "role": "operator",
            "scopes": ["operator.read"],
        },
    })
}

/// A `health` request as the client sends it, for sizing the echo baselines.
fn health_request(id: u64) -> String {
    format!(r#"{{"type":"req","id":"{id}","method":"health","params":{{}}}}"#)
}

async fn tcp(addr: SocketAddr) -> Result<TcpStream, String> {
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    tcp.set_nodelay(true)
        .map_err(|e| format!("cannot set TCP_NODELAY on {addr}: {e}"))?;
    Ok(tcp)
}

async fn ws(addr: SocketAddr) -> Result<WebSocketStream<TcpStream>, String> {
    let url = format!("ws://{addr}");
    tokio_tungstenite::client_async_with_config(url.as_str(), tcp(addr).await?, Some(ws_config()))
        .await
        .map(|(ws, _)| ws)
        .map_err(|e| format!("WebSocket handshake with {url} failed: {e}"))
}

async fn next_text(ws: &mut WebSocketStream<TcpStream>) -> Result<String, String> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return Ok(t.as_str().to_owned()),
            Some(Ok(Message::Close(f))) => return Err(format!("closed by the server: {f:?}")),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(format!("read failed: {e}")),
            None => return Err("connection ended".into()),
        }
    }
}

/// Whether `text` is the `res` with `id` (`Some`, with its outcome) or
/// something else to skip (`None`: an event, another answer).
fn answer_in(text: &str, id: &str) -> Result<Option<Result<(), String>>, String> {
    let head: Head =
        serde_json::from_str(text).map_err(|e| format!("not a frame ({e}): {text}"))?;
    if head.kind != "res" || head.id != Some(id) {
        return Ok(None);
    }
    Ok(Some(match head.ok {
        Some(true) => Ok(()),
        _ => Err(format!("refused: {text}")),
    }))
}

/// Reads frames until the `res` with `id`; events in between are skipped.
async fn answer(ws: &mut WebSocketStream<TcpStream>, id: &str) -> Result<(), String> {
    loop {
        if let Some(outcome) = answer_in(&next_text(ws).await?, id)? {
            return outcome;
        }
    }
}

async fn send(ws: &mut WebSocketStream<TcpStream>, text: String) -> Result<(), String> {
    ws.send(Message::text(text))
        .await
        .map_err(|e| format!("write failed: {e}"))
}

impl Conn {
    /// Connects and authenticates like an operator client does.
    async fn gateway(addr: SocketAddr) -> Result<Conn, String> {
        let mut ws = ws(addr).await?;
        let challenge = next_text(&mut ws).await?;
        if !challenge.contains("connect.challenge") {
            return Err(format!("expected connect.challenge, got {challenge}"));
        }
        send(&mut ws, connect_request().to_string()).await?;
        answer(&mut ws, "0").await?;
        Ok(Conn::Gateway { ws, next: 0 })
    }

    async fn ws_echo(addr: SocketAddr) -> Result<Conn, String> {
        Ok(Conn::WsEcho {
            ws: ws(addr).await?,
            frame: health_request(1_000_000),
        })
    }

    async fn tcp_echo(addr: SocketAddr) -> Result<Conn, String> {
        let frame = health_request(1_000_000).into_bytes();
        Ok(Conn::TcpEcho {
            tcp: tcp(addr).await?,
            buf: vec![0; frame.len()],
            frame,
        })
    }

    /// `window` requests written at once, then their answers, in order.
    async fn burst(&mut self, window: usize) -> Result<(), String> {
        let Conn::Gateway { ws, next } = self else {
            return Err("bursts are measured on the gateway only".into());
        };
        let first = *next + 1;
        for _ in 0..window {
            *next += 1;
            ws.feed(Message::text(health_request(*next)))
                .await
                .map_err(|e| format!("write failed: {e}"))?;
        }
        ws.flush().await.map_err(|e| format!("write failed: {e}"))?;
        for id in first..=*next {
            answer(ws, &id.to_string()).await?;
        }
        Ok(())
    }

    /// One request and its answer.
    async fn round_trip(&mut self) -> Result<(), String> {
        match self {
            Conn::Gateway { ws, next } => {
                *next += 1;
                let id = next.to_string();
                send(ws, health_request(*next)).await?;
                answer(ws, &id).await
            }
            Conn::WsEcho { ws, frame } => {
                send(ws, frame.clone()).await?;
                let back = next_text(ws).await?;
                if back.len() != frame.len() {
                    return Err(format!(
                        "echo of {} bytes came back as {}",
                        frame.len(),
                        back.len()
                    ));
                }
                Ok(())
            }
            Conn::TcpEcho { tcp, frame, buf } => {
                tcp.write_all(frame)
                    .await
                    .map_err(|e| format!("write failed: {e}"))?;
                tcp.read_exact(buf)
                    .await
                    .map_err(|e| format!("read failed: {e}"))?;
                Ok(())
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Gateway,
    WsEcho,
    TcpEcho,
}

impl Kind {
    async fn connect(self, addr: SocketAddr) -> Conn {
        let conn = match self {
            Kind::Gateway => Conn::gateway(addr).await,
            Kind::WsEcho => Conn::ws_echo(addr).await,
            Kind::TcpEcho => Conn::tcp_echo(addr).await,
        };
        conn.unwrap_or_else(|e| fail(e))
    }
}

/// Round-trip times of `CALLS` sequential requests on one connection.
fn latency(kind: Kind, addr: SocketAddr) -> Vec<Duration> {
    on_client_thread(move || async move {
        let mut c = kind.connect(addr).await;
        for _ in 0..500 {
            c.round_trip().await.unwrap_or_else(|e| fail(e));
        }
        let mut rtt = Vec::with_capacity(CALLS);
        for _ in 0..CALLS {
            let t0 = Instant::now();
            c.round_trip().await.unwrap_or_else(|e| fail(e));
            rtt.push(t0.elapsed());
        }
        rtt.sort();
        rtt
    })
}

struct Throughput {
    per_sec: f64,
    elapsed: Duration,
    /// CPU time of the client thread, of the whole process.
    client_cpu: Duration,
    process_cpu: Duration,
}

impl Throughput {
    fn calls() -> usize {
        CONNS * PER_CONN
    }

    fn cpu_us_per_call(&self) -> (f64, f64) {
        let n = Throughput::calls() as f64;
        let client = self.client_cpu.as_secs_f64() * 1e6 / n;
        let server = self
            .process_cpu
            .saturating_sub(self.client_cpu)
            .as_secs_f64()
            * 1e6
            / n;
        (client, server)
    }
}

/// `CONNS` connections, each calling `PER_CONN` times in a row, all at once.
fn throughput(kind: Kind, addr: SocketAddr) -> Throughput {
    on_client_thread(move || async move {
        let mut conns = Vec::with_capacity(CONNS);
        for _ in 0..CONNS {
            let mut c = kind.connect(addr).await;
            c.round_trip().await.unwrap_or_else(|e| fail(e));
            conns.push(c);
        }
        let (cpu0, all0, t0) = (thread_cpu(), process_cpu(), Instant::now());
        let runs = conns.into_iter().map(|mut c| {
            tokio::spawn(async move {
                for _ in 0..PER_CONN {
                    c.round_trip().await.unwrap_or_else(|e| fail(e));
                }
                c
            })
        });
        let done = futures_util::future::join_all(runs.collect::<Vec<_>>()).await;
        let elapsed = t0.elapsed();
        let (client_cpu, process_cpu) = (thread_cpu() - cpu0, process_cpu() - all0);
        drop(done);
        Throughput {
            per_sec: Throughput::calls() as f64 / elapsed.as_secs_f64(),
            elapsed,
            client_cpu,
            process_cpu,
        }
    })
}

/// A client on a plain blocking socket: it sleeps in `read` itself, with no
/// event loop between the kernel and the answer.
struct Blocking {
    ws: tokio_tungstenite::tungstenite::WebSocket<std::net::TcpStream>,
    next: u64,
}

impl Blocking {
    fn text(&mut self) -> Result<String, String> {
        loop {
            match self.ws.read() {
                Ok(Message::Text(t)) => return Ok(t.as_str().to_owned()),
                Ok(Message::Close(f)) => return Err(format!("closed by the server: {f:?}")),
                Ok(_) => continue,
                Err(e) => return Err(format!("read failed: {e}")),
            }
        }
    }

    fn send(&mut self, text: String) -> Result<(), String> {
        self.ws
            .send(Message::text(text))
            .map_err(|e| format!("write failed: {e}"))
    }

    fn answer(&mut self, id: &str) -> Result<(), String> {
        loop {
            if let Some(outcome) = answer_in(&self.text()?, id)? {
                return outcome;
            }
        }
    }

    fn connect(addr: SocketAddr) -> Result<Blocking, String> {
        let tcp = std::net::TcpStream::connect(addr)
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        tcp.set_nodelay(true)
            .map_err(|e| format!("cannot set TCP_NODELAY on {addr}: {e}"))?;
        let url = format!("ws://{addr}");
        let (ws, _) = tokio_tungstenite::tungstenite::client::client_with_config(
            url.as_str(),
            tcp,
            Some(ws_config()),
        )
        .map_err(|e| format!("WebSocket handshake with {url} failed: {e}"))?;
        let mut c = Blocking { ws, next: 0 };
        let challenge = c.text()?;
        if !challenge.contains("connect.challenge") {
            return Err(format!("expected connect.challenge, got {challenge}"));
        }
        c.send(connect_request().to_string())?;
        c.answer("0")?;
        Ok(c)
    }

    fn health(&mut self) -> Result<(), String> {
        self.next += 1;
        self.send(health_request(self.next))?;
        self.answer(&self.next.to_string())
    }
}

/// Like [`latency`] for the gateway, from a blocking socket.
fn latency_blocking(addr: SocketAddr) -> Vec<Duration> {
    let thread = std::thread::Builder::new()
        .name("client".into())
        .spawn(move || {
            let mut c = Blocking::connect(addr).unwrap_or_else(|e| fail(e));
            for _ in 0..500 {
                c.health().unwrap_or_else(|e| fail(e));
            }
            let mut rtt = Vec::with_capacity(CALLS);
            for _ in 0..CALLS {
                let t0 = Instant::now();
                c.health().unwrap_or_else(|e| fail(e));
                rtt.push(t0.elapsed());
            }
            rtt.sort();
            rtt
        })
        .unwrap_or_else(|e| fail(format!("cannot start the client thread: {e}")));
    thread
        .join()
        .unwrap_or_else(|_| fail("the client thread panicked"))
}

/// One connection writing `WINDOW` requests at a time before reading the
/// answers: what answering a burst before one flush is worth.
fn pipelined(addr: SocketAddr) -> Throughput {
    on_client_thread(move || async move {
        let mut c = Kind::Gateway.connect(addr).await;
        c.burst(WINDOW).await.unwrap_or_else(|e| fail(e));
        let (cpu0, all0, t0) = (thread_cpu(), process_cpu(), Instant::now());
        for _ in 0..Throughput::calls() / WINDOW {
            c.burst(WINDOW).await.unwrap_or_else(|e| fail(e));
        }
        let elapsed = t0.elapsed();
        let (client_cpu, process_cpu) = (thread_cpu() - cpu0, process_cpu() - all0);
        Throughput {
            per_sec: Throughput::calls() as f64 / elapsed.as_secs_f64(),
            elapsed,
            client_cpu,
            process_cpu,
        }
    })
}

/// A bare TCP echo on the server runtime: the floor of a loopback round trip.
async fn tcp_echo_server() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| fail(format!("cannot bind the echo server: {e}")));
    let addr = l.local_addr().unwrap_or_else(|e| fail(e));
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// A bare WebSocket echo (tokio-tungstenite) on the server runtime: the
/// floor of a round trip through the WebSocket framing the gateway uses.
async fn ws_echo_server() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| fail(format!("cannot bind the echo server: {e}")));
    let addr = l.local_addr().unwrap_or_else(|e| fail(e));
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                let Ok(mut ws) =
                    tokio_tungstenite::accept_async_with_config(s, Some(ws_config())).await
                else {
                    return;
                };
                while let Some(Ok(m)) = ws.next().await {
                    if m.is_text() && ws.send(m).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

async fn connect(url: &str) -> Client {
    Client::connect(url, Auth::Token(TOKEN.into()), &["operator.read"])
        .await
        .unwrap_or_else(|e| fail(format!("connect failed: {e}")))
}

/// Child mode: open `n` authenticated connections to `url`, say so, and
/// hold them until stdin closes.
async fn idle_clients(url: &str, n: usize) {
    raise_nofile(n as u64 + 1024);
    let mut clients = Vec::with_capacity(n);
    while clients.len() < n {
        let batch = (n - clients.len()).min(200);
        let futs =
            (0..batch).map(|_| Client::connect(url, Auth::Token(TOKEN.into()), &["operator.read"]));
        for r in futures_util::future::join_all(futs).await {
            match r {
                Ok(c) => clients.push(c),
                Err(e) => {
                    println!("failed after {} connections: {e}", clients.len());
                    std::process::exit(1);
                }
            }
        }
    }
    println!("connected");
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 64];
    while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
    drop(clients);
}

struct Idle {
    rss_before: f64,
    rss_after: f64,
    connect_all: Duration,
    stop: Duration,
}

/// Opens `n` idle connections from a child process, measures the RSS, and
/// stops the gateway with them open.
async fn idle_run(
    url: &str,
    n: usize,
    stop: oneshot::Sender<()>,
    server: tokio::task::JoinHandle<Result<(), omniclaw_gateway::ServeError>>,
) -> Idle {
    let rss_before = rss_mb();
    let t0 = Instant::now();
    let exe =
        std::env::current_exe().unwrap_or_else(|e| fail(format!("cannot find this binary: {e}")));
    let mut child = tokio::process::Command::new(exe)
        .args(["--idle-clients", url, &n.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| fail(format!("cannot start the client process: {e}")));
    let mut lines = child.stdout.take().map(|o| BufReader::new(o).lines());
    let ready = match lines.as_mut() {
        Some(l) => l.next_line().await.ok().flatten(),
        None => None,
    };
    if ready.as_deref() != Some("connected") {
        fail(format!("client process failed: {ready:?}"));
    }
    let connect_all = t0.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_after = rss_mb();
    // A fresh connection still gets answers with all of them open.
    let c = connect(url).await;
    c.call("health", Value::Null)
        .await
        .unwrap_or_else(|e| fail(format!("health failed: {e}")));
    drop(c);

    let stop_t0 = Instant::now();
    let _ = stop.send(());
    let _ = server.await;
    let stop_time = stop_t0.elapsed();
    drop(child.stdin.take());
    let _ = child.wait().await;
    Idle {
        rss_before,
        rss_after,
        connect_all,
        stop: stop_time,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--idle-clients") {
        let url = args.get(2).cloned().unwrap_or_default();
        let n = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(0);
        let rt = tokio::runtime::Runtime::new()
            .unwrap_or_else(|e| fail(format!("cannot start the runtime: {e}")));
        rt.block_on(idle_clients(&url, n));
        return;
    }
    let idle: usize = match args.get(1) {
        None => 10_000,
        Some(a) => a.parse().unwrap_or_else(|_| {
            fail(format!(
                "usage: gateway-bench [IDLE_CONNECTIONS] (a number, 0 skips that part), got {a:?}"
            ))
        }),
    };
    raise_nofile(idle as u64 + 4096);
    let dir = tempfile_dir().unwrap_or_else(|e| fail(format!("cannot create a temp dir: {e}")));
    let rt = server_runtime();

    // 1. start → all surfaces listening.
    let mut starts = rt.block_on(async {
        let mut starts = Vec::new();
        for _ in 0..50 {
            let t0 = Instant::now();
            let bound =
                Gateway::bind(spec(&dir)).unwrap_or_else(|e| fail(format!("bind failed: {e}")));
            let addrs = bound.addrs();
            let (stop, rx) = oneshot::channel::<()>();
            let task = tokio::spawn(bound.serve(async {
                let _ = rx.await;
            }));
            for addr in [Some(addrs.gateway), addrs.browser_control, addrs.canvas]
                .into_iter()
                .flatten()
            {
                while tokio::net::TcpStream::connect(addr).await.is_err() {
                    tokio::task::yield_now().await;
                }
            }
            starts.push(t0.elapsed());
            let _ = stop.send(());
            let _ = task.await;
        }
        starts
    });
    starts.sort();

    let bound = Gateway::bind(spec(&dir)).unwrap_or_else(|e| fail(format!("bind failed: {e}")));
    let addr = bound.addrs().gateway;
    let url = format!("ws://{addr}");
    let (stop, rx) = oneshot::channel::<()>();
    let server = rt.spawn(bound.serve(async {
        let _ = rx.await;
    }));
    let (tcp_echo, ws_echo) =
        rt.block_on(async { (tcp_echo_server().await, ws_echo_server().await) });

    // 2. round trips on one connection: the baselines, then the gateway.
    let tcp_rtt = latency(Kind::TcpEcho, tcp_echo);
    let ws_rtt = latency(Kind::WsEcho, ws_echo);
    let rtt = latency(Kind::Gateway, addr);
    let blocking_rtt = latency_blocking(addr);
    // The same through `client::Client` (a reader task per connection that
    // hands each answer to the caller), as the CLI and the tests use it.
    let client_rtt = {
        let url = url.clone();
        on_client_thread(move || async move {
            let c = connect(&url).await;
            let mut rtt = Vec::with_capacity(CALLS);
            for i in 0..CALLS + 500 {
                let t0 = Instant::now();
                c.call("health", Value::Null)
                    .await
                    .unwrap_or_else(|e| fail(format!("health failed: {e}")));
                if i >= 500 {
                    rtt.push(t0.elapsed());
                }
            }
            c.close().await;
            rtt.sort();
            rtt
        })
    };

    // 3. throughput over 64 connections: the baselines, then the gateway.
    let tcp_tp = throughput(Kind::TcpEcho, tcp_echo);
    let ws_tp = throughput(Kind::WsEcho, ws_echo);
    let tp = throughput(Kind::Gateway, addr);
    let piped = pipelined(addr);

    // 4. connect handshake.
    let mut hs = on_client_thread(move || async move {
        let mut hs = Vec::new();
        for _ in 0..1_000 {
            let t0 = Instant::now();
            let c = Kind::Gateway.connect(addr).await;
            hs.push(t0.elapsed());
            drop(c);
        }
        hs
    });
    hs.sort();

    // 5. idle authenticated connections, opened by a child process so this
    // process's RSS is the gateway's own and each side has its own fd limit.
    let idle_result = if idle > 0 {
        rt.block_on(async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            Some(idle_run(&url, idle, stop, server).await)
        })
    } else {
        let _ = stop.send(());
        let _ = rt.block_on(server);
        None
    };
    let _ = std::fs::remove_dir_all(&dir);

    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let round_trip = |what: &str, rtt: &[Duration], goal: &str| {
        println!(
            "{what}: p50 {:.1} us, p99 {:.1} us, min {:.1} us ({CALLS} calls){goal}",
            us(pct(rtt, 0.5)),
            us(pct(rtt, 0.99)),
            us(pct(rtt, 0.0)),
        );
    };
    let rate = |what: &str, t: &Throughput, goal: &str| {
        let (client, server) = t.cpu_us_per_call();
        println!(
            "{what}: {:.0} req/s ({} calls in {:.2} s; CPU per call: client {client:.1} us, server {server:.1} us){goal}",
            t.per_sec,
            Throughput::calls(),
            t.elapsed.as_secs_f64(),
        );
    };
    println!("gateway-bench (release: {})", !cfg!(debug_assertions));
    println!(
        "start -> all surfaces listening: p50 {:.2} ms, p99 {:.2} ms (50 starts)   goal p50 <= 20 ms",
        ms(pct(&starts, 0.5)),
        ms(pct(&starts, 0.99))
    );
    round_trip("baseline: TCP echo round trip, 1 connection", &tcp_rtt, "");
    round_trip(
        "baseline: WebSocket echo round trip, 1 connection",
        &ws_rtt,
        "",
    );
    round_trip(
        "health round trip, 1 connection",
        &rtt,
        "   goal p50 <= 100 us, p99 <= 1 ms",
    );
    round_trip(
        "health round trip from a blocking socket, 1 connection",
        &blocking_rtt,
        "",
    );
    round_trip(
        "health round trip through client::Client, 1 connection",
        &client_rtt,
        "",
    );
    rate("baseline: TCP echo throughput, 64 connections", &tcp_tp, "");
    rate(
        "baseline: WebSocket echo throughput, 64 connections",
        &ws_tp,
        "",
    );
    rate(
        "health throughput, 64 connections",
        &tp,
        "   goal >= 50000 req/s",
    );
    rate(
        &format!("health throughput, 1 connection, {WINDOW} requests in flight"),
        &piped,
        "",
    );
    println!(
        "connect handshake: p50 {:.3} ms, p99 {:.3} ms (1000 connects)   goal p50 <= 0.5 ms",
        ms(pct(&hs, 0.5)),
        ms(pct(&hs, 0.99))
    );
    if let Some(i) = idle_result {
        println!(
            "{idle} idle authenticated connections: gateway RSS {:.1} MB (before {:.1} MB, +{:.1} MB; clients in a child process), connected in {:.2} s   goal <= 300 MB",
            i.rss_after,
            i.rss_before,
            i.rss_after - i.rss_before,
            i.connect_all.as_secs_f64()
        );
        println!(
            "graceful stop with {idle} connections: {:.0} ms",
            ms(i.stop)
        );
    }
}

fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("omniclaw-gateway-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(samples_us: &[u64], p: f64, expected_us: u64) {
        let sorted: Vec<Duration> = samples_us
            .iter()
            .map(|u| Duration::from_micros(*u))
            .collect();
        assert_eq!(pct(&sorted, p), Duration::from_micros(expected_us), "p{p}");
    }

    #[test]
    fn percentiles() {
        check(&[], 0.5, 0);
        check(&[7], 0.99, 7);
        check(&[1, 2, 3, 4, 5], 0.5, 3);
        check(&[1, 2, 3, 4, 5], 0.99, 5);
        check(&[1, 2, 3, 4, 5], 0.0, 1);
    }

    #[test]
    fn frame_heads_are_read_without_the_payload() {
        let head: Head =
            serde_json::from_str(r#"{"type":"res","id":"7","ok":true,"payload":{"a":[1,2]}}"#)
                .expect("frame");
        assert_eq!(
            (head.kind, head.id, head.ok),
            ("res", Some("7"), Some(true))
        );
        let head: Head =
            serde_json::from_str(r#"{"type":"event","event":"tick","payload":{},"seq":3}"#)
                .expect("frame");
        assert_eq!((head.kind, head.id, head.ok), ("event", None, None));
    }
}
