//! What a web page, a local process or a peer on the network can try
//! against a gateway's surfaces, and what each gets: the canvas never serves
//! a file outside its root, even under a racing symlink swap, and streams
//! what it serves; browser control and the WebSocket refuse web pages and
//! want credentials; wrong tokens are slowed down for all of loopback at
//! once but never lock out the right one; idle and dripping connections are
//! cut off, and a flood on one surface leaves the control plane reachable.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use omniclaw_gateway::client::Client;
use omniclaw_gateway::Auth;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Swaps `<root>/sub` between a real directory and a symlink to a directory
/// outside the root, as fast as it can, until `stop` is set.
#[cfg(unix)]
fn swap_sub_until(root: &Path, outside: &Path, stop: &AtomicBool) {
    let sub = root.join("sub");
    let real = root.join(".real");
    let link = root.join(".link");
    std::os::unix::fs::symlink(outside, &link).expect("symlink");
    while !stop.load(Ordering::Relaxed) {
        let _ = std::fs::rename(&real, &sub);
        let _ = std::fs::rename(&sub, &real);
        let _ = std::fs::rename(&link, &sub);
        let _ = std::fs::rename(&sub, &link);
    }
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canvas_never_serves_an_outside_file_swapped_in_during_requests() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = spec(dir.path(), "main");
    let root = s.canvas.root.clone();
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(root.join(".real")).expect("mkdir");
    std::fs::create_dir_all(&outside).expect("mkdir");
    std::fs::write(root.join(".real/f.txt"), "inside").expect("write");
    std::fs::write(outside.join("f.txt"), "OUTSIDE").expect("write");
    let gw = start(s);
    let canvas = gw.addrs.canvas.expect("canvas enabled");

    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (root, outside, stop) = (root.clone(), outside.clone(), stop.clone());
        std::thread::spawn(move || swap_sub_until(&root, &outside, &stop))
    };
    let (mut inside, mut leaked) = (0, 0);
    for _ in 0..3000 {
        let (status, _, body) = http(canvas, "GET", "/sub/f.txt").await;
        match (status, body.as_str()) {
            (200, "inside") => inside += 1,
            (_, b) if b.contains("OUTSIDE") => leaked += 1,
            (403 | 404, _) => {}
            other => panic!("unexpected answer {other:?}"),
        }
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().expect("swapper");
    assert_eq!(
        leaked, 0,
        "the outside file was served {leaked} times of 3000"
    );
    assert!(
        inside > 0,
        "the inside file was never served: the race was not exercised"
    );
    gw.stop().await;
}

/// Resident memory of this process, in MiB.
#[cfg(target_os = "linux")]
fn rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("VmRSS");
    kib / 1024
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn canvas_streams_a_large_file_instead_of_reading_it_whole() {
    const SIZE: u64 = 256 * 1024 * 1024;
    let dir = tempfile::tempdir().expect("tempdir");
    let s = spec(dir.path(), "main");
    std::fs::create_dir_all(&s.canvas.root).expect("mkdir");
    // Sparse: no disk used, but every byte is read as a zero.
    let big = std::fs::File::create(s.canvas.root.join("big.bin")).expect("create");
    big.set_len(SIZE).expect("set_len");
    drop(big);
    let gw = start(s);
    let canvas = gw.addrs.canvas.expect("canvas enabled");

    let before = rss_mib();
    let mut tcp = TcpStream::connect(canvas).await.expect("connect");
    tcp.write_all(format!("GET /big.bin HTTP/1.1\r\nHost: {canvas}\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut first = vec![0u8; 256 * 1024];
    let mut got = 0;
    while got < first.len() {
        let n = tokio::time::timeout(Duration::from_secs(30), tcp.read(&mut first[got..]))
            .await
            .expect("bytes in time")
            .expect("read");
        assert!(n > 0, "closed early");
        got += n;
    }
    let head = String::from_utf8_lossy(&first[..1024]).to_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains(&format!("content-length: {SIZE}")), "{head}");
    let grown = rss_mib().saturating_sub(before);
    assert!(
        grown < 64,
        "serving the first 256 KiB of a 256 MiB file grew the process by {grown} MiB"
    );
    drop(tcp);
    gw.stop().await;
}

/// A browser executable that only leaves a mark that it was started.
#[cfg(unix)]
fn marking_browser(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let exe = dir.join("fake-chromium");
    let mark = dir.join("started");
    std::fs::write(
        &exe,
        format!("#!/bin/sh\ntouch '{}'\nexit 3\n", mark.display()),
    )
    .expect("write");
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    (exe, mark)
}

#[cfg(unix)]
#[tokio::test]
async fn browser_control_refuses_web_pages_foreign_hosts_and_missing_credentials() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = spec(dir.path(), "main");
    let (exe, mark) = marking_browser(dir.path());
    s.browser.executable = exe;
    s.browser.cdp_range = 40300..=40399;
    let gw = start(s);
    let ctl = gw.addrs.browser_control.expect("control enabled");
    let host = ctl.to_string();
    let (auth, token) = bearer();

    // A page the user visits: fetch('http://127.0.0.1:PORT/start', {method: 'POST'}).
    for origin in ["https://evil.example", "null", "http://127.0.0.1:1"] {
        let (status, _, body) = http_with(
            ctl,
            "POST",
            "/start?profile=default",
            &[("Host", &host), ("Origin", origin), (auth, &token)],
        )
        .await;
        assert_eq!(status, 403, "{origin}: {body}");
        assert!(body.contains("not web pages"), "{body}");
    }
    // A no-cors request a page makes (no Origin on GET, but Sec-Fetch-Site).
    let (status, _, _) = http_with(
        ctl,
        "GET",
        "/profiles",
        &[
            ("Host", &host),
            ("Sec-Fetch-Site", "cross-site"),
            (auth, &token),
        ],
    )
    .await;
    assert_eq!(status, 403);
    // DNS rebinding: a name of the attacker's that resolves to 127.0.0.1.
    let rebound = format!("rebind.evil.example:{}", ctl.port());
    let (status, _, body) = http_with(
        ctl,
        "POST",
        "/start?profile=default",
        &[("Host", &rebound), (auth, &token)],
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("rebind.evil.example"), "{body}");
    // A program without the gateway's credentials, or with wrong ones.
    for headers in [
        vec![("Host", host.as_str())],
        vec![("Host", host.as_str()), (auth, "Bearer nope")],
    ] {
        let (status, head, body) = http_with(ctl, "POST", "/stop?profile=default", &headers).await;
        assert_eq!(status, 401, "{body}");
        assert!(head.contains("www-authenticate: bearer"), "{head}");
        assert!(
            body.contains("Authorization: Bearer <gateway.auth.token>"),
            "{body}"
        );
    }
    assert!(!mark.exists(), "a refused request started a browser");

    // The gateway's own client (the CLI) with its token is served.
    let (status, _, body) = control(ctl, "GET", "/").await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = control(ctl, "POST", "/start?profile=default").await;
    assert_eq!(status, 500, "the fake browser exits at once: {body}");
    assert!(mark.exists(), "an authorized start ran the browser");
    gw.stop().await;
}

#[tokio::test]
async fn the_websocket_refuses_web_pages_and_serves_programs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gw = start(spec(dir.path(), "main"));
    for origin in [
        "https://evil.example",
        "null",
        &format!("http://{}", gw.addrs.gateway),
    ] {
        let mut req = gw.url().into_client_request().expect("request");
        req.headers_mut()
            .insert("Origin", origin.parse().expect("header value"));
        match tokio_tungstenite::connect_async(req).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
                assert_eq!(res.status(), 403, "{origin}");
                let body =
                    String::from_utf8_lossy(res.body().as_deref().unwrap_or_default()).into_owned();
                assert!(body.contains("from web pages"), "{body}");
            }
            Err(e) => panic!("{origin}: unexpected error {e}"),
            Ok(_) => panic!("{origin}: a web page's WebSocket was accepted"),
        }
    }
    // Programs send no Origin: the CLI's client connects as before.
    let c = Client::connect(&gw.url(), Auth::Token(TOKEN.into()), &["operator.read"])
        .await
        .expect("a program connects");
    c.call("health", Value::Null).await.expect("health");
    gw.stop().await;
}

/// A WebSocket to `addr` from the local address `from`, challenge read.
async fn ws_from(from: IpAddr, addr: SocketAddr) -> Ws {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(from, 0))
        .expect("bind the source address");
    let tcp = socket.connect(addr).await.expect("connect");
    let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}"), MaybeTls::Plain(tcp))
        .await
        .expect("handshake");
    let challenge = recv_json(&mut ws).await;
    assert_eq!(challenge["event"], "connect.challenge");
    ws
}

type MaybeTls = tokio_tungstenite::MaybeTlsStream<TcpStream>;

/// Sends `connect` with `token` and returns the answer and how long it took.
async fn try_token(ws: &mut Ws, token: &str) -> (Value, Duration) {
    let t0 = Instant::now();
    send_json(
        ws,
        &connect_req(connect_params(
            json!({"token": token}),
            &["operator.read"],
            "cli",
        )),
    )
    .await;
    (recv_json(ws).await, t0.elapsed())
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn wrong_tokens_slow_all_of_loopback_down_but_never_lock_the_right_token_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = spec(dir.path(), "main");
    s.limits.max_auth_failures = 3;
    s.limits.max_auth_delay = Duration::from_millis(600);
    let gw = start(s);
    let addr = gw.addrs.gateway;
    let one: IpAddr = "127.0.0.1".parse().expect("ip");

    // A local page or process uses up the free wrong answers.
    for _ in 0..3 {
        let mut ws = ws_from(one, addr).await;
        let (res, took) = try_token(&mut ws, "wrong").await;
        assert_eq!(
            res["error"]["details"]["code"], "AUTH_TOKEN_MISMATCH",
            "{res}"
        );
        assert!(
            took < Duration::from_millis(200),
            "free failures answer at once: {took:?}"
        );
    }
    // Moving to another loopback address does not start afresh: the wrong
    // answers now come late.
    for (i, from) in ["127.0.0.2", "127.0.0.3"].into_iter().enumerate() {
        let mut ws = ws_from(from.parse().expect("ip"), addr).await;
        let (res, took) = try_token(&mut ws, "wrong").await;
        assert_eq!(
            res["error"]["details"]["code"], "AUTH_TOKEN_MISMATCH",
            "{res}"
        );
        let floor = Duration::from_millis(250 << i) - Duration::from_millis(20);
        assert!(
            took >= floor,
            "wrong answer {i} from {from} after {took:?}, want >= {floor:?}"
        );
    }
    // The CLI, the app or the rescue bot with the right token: in at once.
    let mut ws = ws_from(one, addr).await;
    let (res, took) = try_token(&mut ws, TOKEN).await;
    assert_eq!(res["ok"], true, "{res}");
    assert!(
        took < Duration::from_millis(200),
        "the right token waited {took:?}"
    );
    gw.stop().await;
}

/// Reads from `tcp` until the peer closes; `Err` when it stays open past `within`.
async fn closed_within(tcp: &mut TcpStream, within: Duration) -> Result<Duration, Duration> {
    let t0 = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout_at((t0 + within).into(), tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(t0.elapsed()),
            Ok(Ok(_)) => continue,
            Err(_) => return Err(t0.elapsed()),
        }
    }
}

#[tokio::test]
async fn idle_and_dripping_connections_are_cut_off_on_every_surface() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = spec(dir.path(), "main");
    s.limits.header_timeout = Duration::from_millis(500);
    let gw = start(s);
    let surfaces = [
        gw.addrs.gateway,
        gw.addrs.browser_control.expect("control"),
        gw.addrs.canvas.expect("canvas"),
    ];
    for addr in surfaces {
        // Connects and says nothing.
        let mut idle = TcpStream::connect(addr).await.expect("connect");
        let took = closed_within(&mut idle, Duration::from_secs(5)).await;
        assert!(
            took.is_ok(),
            "{addr}: an idle connection was still open after {took:?}"
        );

        // Drips a header line every 100 ms, never finishing the head.
        let mut drip = TcpStream::connect(addr).await.expect("connect");
        drip.write_all(b"GET /healthz HTTP/1.1\r\n")
            .await
            .expect("write");
        let t0 = Instant::now();
        let mut cut = false;
        while t0.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if drip.write_all(b"X-Drip: 1\r\n").await.is_err() {
                cut = true;
                break;
            }
            let mut probe = [0u8; 256];
            if let Ok(Ok(0)) =
                tokio::time::timeout(Duration::from_millis(1), drip.read(&mut probe)).await
            {
                cut = true;
                break;
            }
        }
        assert!(cut, "{addr}: dripping headers for 5 s were never cut off");
    }
    // A complete request is still answered.
    assert_eq!(http(gw.addrs.gateway, "GET", "/healthz").await.0, 200);
    gw.stop().await;
}

#[tokio::test]
async fn a_flood_of_idle_canvas_connections_leaves_the_control_plane_reachable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = spec(dir.path(), "main");
    s.limits.max_unauthenticated = 8;
    std::fs::create_dir_all(&s.canvas.root).expect("mkdir");
    std::fs::write(s.canvas.root.join("index.html"), "hi").expect("write");
    let gw = start(s);
    let canvas = gw.addrs.canvas.expect("canvas");
    let mut flood = Vec::new();
    for _ in 0..40 {
        flood.push(TcpStream::connect(canvas).await.expect("connect"));
    }
    // The canvas serves no more than its cap of connections at once …
    let waiting = tokio::time::timeout(Duration::from_millis(500), http(canvas, "GET", "/")).await;
    assert!(
        waiting.is_err(),
        "a 41st canvas connection was served beside 40 idle ones"
    );
    // … while the control plane answers, and authenticated clients beyond
    // the gateway's own cap of 8 all get in.
    assert_eq!(http(gw.addrs.gateway, "GET", "/healthz").await.0, 200);
    let mut clients = Vec::new();
    for _ in 0..20 {
        let c = tokio::time::timeout(
            Duration::from_secs(5),
            Client::connect(&gw.url(), Auth::Token(TOKEN.into()), &["operator.read"]),
        )
        .await
        .expect("connected in time")
        .expect("connects");
        clients.push(c);
    }
    clients[19]
        .call("health", Value::Null)
        .await
        .expect("health");
    drop(flood);
    let (status, _, body) = http(canvas, "GET", "/").await;
    assert_eq!((status, body.as_str()), (200, "hi"));
    gw.stop().await;
}
