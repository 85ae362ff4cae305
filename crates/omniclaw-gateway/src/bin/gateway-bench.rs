//! Measures a gateway on this machine: start time, `health` latency and
//! throughput, handshake time, and memory with many idle connections.
//! Everything runs on loopback in one process and stops by itself.
//!
//! Usage: `gateway-bench [IDLE_CONNECTIONS]` (default 10000). Run in release.
//! The idle connections are opened by a child copy of this binary
//! (`--idle-clients URL N`), so the RSS reported is the gateway's own.

use std::path::Path;
use std::time::{Duration, Instant};

use omniclaw_gateway::client::Client;
use omniclaw_gateway::{Auth, Gateway, GatewaySpec};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::sync::oneshot;

const TOKEN: &str = "bench-token-0123456789abcdef";

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

async fn connect(url: &str) -> Client {
    match Client::connect(url, Auth::Token(TOKEN.into()), &["operator.read"]).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("connect failed: {e}");
            std::process::exit(1);
        }
    }
}

async fn health(c: &Client) {
    if let Err(e) = c.call("health", Value::Null).await {
        eprintln!("health failed: {e}");
        std::process::exit(1);
    }
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

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--idle-clients") {
        let url = args.get(2).cloned().unwrap_or_default();
        let n = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(0);
        idle_clients(&url, n).await;
        return;
    }
    let idle: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    raise_nofile(idle as u64 + 4096);
    let dir = match tempfile_dir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("cannot create a temp dir: {e}");
            std::process::exit(1);
        }
    };

    // 1. start → all surfaces listening.
    let mut starts = Vec::new();
    for _ in 0..50 {
        let t0 = Instant::now();
        let bound = match Gateway::bind(spec(&dir)) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("bind failed: {e}");
                std::process::exit(1);
            }
        };
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
    starts.sort();

    let bound = match Gateway::bind(spec(&dir)) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("bind failed: {e}");
            std::process::exit(1);
        }
    };
    let url = format!("ws://{}", bound.addrs().gateway);
    let (stop, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(bound.serve(async {
        let _ = rx.await;
    }));

    // 2. health round trip on one connection.
    let c = connect(&url).await;
    for _ in 0..500 {
        health(&c).await;
    }
    let mut rtt = Vec::with_capacity(10_000);
    for _ in 0..10_000 {
        let t0 = Instant::now();
        health(&c).await;
        rtt.push(t0.elapsed());
    }
    rtt.sort();
    c.close().await;

    // 3. throughput over 64 connections.
    let mut clients = Vec::new();
    for _ in 0..64 {
        clients.push(connect(&url).await);
    }
    let per_conn = 2_000;
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for c in clients {
        tasks.push(tokio::spawn(async move {
            for _ in 0..per_conn {
                health(&c).await;
            }
            c
        }));
    }
    let mut clients = Vec::new();
    for t in tasks {
        if let Ok(c) = t.await {
            clients.push(c);
        }
    }
    let elapsed = t0.elapsed();
    let throughput = (64 * per_conn) as f64 / elapsed.as_secs_f64();
    for c in clients {
        c.close().await;
    }

    // 4. connect handshake.
    let mut hs = Vec::new();
    for _ in 0..1_000 {
        let t0 = Instant::now();
        let c = connect(&url).await;
        hs.push(t0.elapsed());
        drop(c);
    }
    hs.sort();
    tokio::time::sleep(Duration::from_millis(200)).await;

    // 5. idle authenticated connections, opened by a child process so this
    // process's RSS is the gateway's own and each side has its own fd limit.
    let rss_before = rss_mb();
    let t0 = Instant::now();
    let mut child = match tokio::process::Command::new(std::env::current_exe().unwrap_or_default())
        .args(["--idle-clients", &url, &idle.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cannot start the client process: {e}");
            std::process::exit(1);
        }
    };
    let mut lines = child.stdout.take().map(|o| BufReader::new(o).lines());
    let ready = match lines.as_mut() {
        Some(l) => l.next_line().await.ok().flatten(),
        None => None,
    };
    if ready.as_deref() != Some("connected") {
        eprintln!("client process failed: {ready:?}");
        std::process::exit(1);
    }
    let connect_all = t0.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_after = rss_mb();
    // A fresh connection still gets answers with all of them open.
    let c = connect(&url).await;
    health(&c).await;
    drop(c);

    let stop_t0 = Instant::now();
    let _ = stop.send(());
    let _ = server.await;
    let stop_time = stop_t0.elapsed();
    drop(child.stdin.take());
    let _ = child.wait().await;
    let _ = std::fs::remove_dir_all(&dir);

    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("gateway-bench (release: {})", !cfg!(debug_assertions));
    println!(
        "start -> all surfaces listening: p50 {:.2} ms, p99 {:.2} ms (50 starts)      goal p50 <= 20 ms",
        ms(pct(&starts, 0.5)),
        ms(pct(&starts, 0.99))
    );
    println!(
        "health round trip, 1 connection: p50 {:.1} us, p99 {:.1} us (10000 calls)   goal p50 <= 100 us, p99 <= 1 ms",
        us(pct(&rtt, 0.5)),
        us(pct(&rtt, 0.99))
    );
    println!(
        "health throughput, 64 connections: {:.0} req/s ({} calls in {:.2} s)       goal >= 50000 req/s",
        throughput,
        64 * per_conn,
        elapsed.as_secs_f64()
    );
    println!(
        "connect handshake: p50 {:.3} ms, p99 {:.3} ms (1000 connects)              goal p50 <= 0.5 ms",
        ms(pct(&hs, 0.5)),
        ms(pct(&hs, 0.99))
    );
    println!(
        "{idle} idle authenticated connections: gateway RSS {:.1} MB (before {:.1} MB, +{:.1} MB; clients in a child process), connected in {:.2} s   goal <= 300 MB",
        rss_after,
        rss_before,
        rss_after - rss_before,
        connect_all.as_secs_f64()
    );
    println!(
        "graceful stop with {idle} connections: {:.0} ms",
        ms(stop_time)
    );
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
}
