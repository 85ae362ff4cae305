//! Helpers shared by the integration tests: gateways on ephemeral ports in
//! temp dirs, a raw WebSocket peer for protocol conformance, and a tiny
//! HTTP/1.1 client that sends paths exactly as written.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use omniclaw_gateway::{Addrs, Auth, Gateway, GatewaySpec};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const TOKEN: &str = "oc-test-token-0123456789abcdef";

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A spec in `dir` with every port ephemeral and token auth.
pub fn spec(dir: &Path, profile: &str) -> GatewaySpec {
    let state = dir.join(format!("state-{profile}"));
    let mut s = GatewaySpec::new(
        profile,
        state.join("omniclaw.json"),
        state.clone(),
        dir.join(format!("workspace-{profile}")),
        0,
    );
    s.auth = Auth::Token(TOKEN.into());
    s.browser.control_port = 0;
    // Far from anything ephemeral binds, so no collision with port 0 picks.
    s.browser.cdp_range = 1..=2;
    s.canvas.port = 0;
    s.limits.shutdown_grace = Duration::from_millis(800);
    s
}

/// A gateway serving in the background.
pub struct Running {
    pub addrs: Addrs,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), omniclaw_gateway::ServeError>>,
}

impl Running {
    pub fn url(&self) -> String {
        format!("ws://{}", self.addrs.gateway)
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let r = tokio::time::timeout(Duration::from_secs(3), &mut self.task)
            .await
            .expect("gateway stops in time")
            .expect("no panic");
        r.expect("serve ends without error");
    }
}

pub fn start(spec: GatewaySpec) -> Running {
    let bound = Gateway::bind(spec).expect("bind");
    let addrs = bound.addrs();
    let (stop, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(bound.serve(async {
        let _ = rx.await;
    }));
    Running {
        addrs,
        stop: Some(stop),
        task,
    }
}

/// A raw WebSocket peer, connected, with the challenge already read.
pub async fn raw(addr: SocketAddr) -> (Ws, Value) {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}"))
        .await
        .expect("ws connect");
    let challenge = recv_json(&mut ws).await;
    (ws, challenge)
}

pub async fn send_json(ws: &mut Ws, v: &Value) {
    ws.send(Message::text(v.to_string())).await.expect("send");
}

pub async fn recv_json(ws: &mut Ws) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("frame in time")
            .expect("stream open")
            .expect("frame");
        match m {
            Message::Text(t) => return serde_json::from_str(t.as_str()).expect("json"),
            Message::Close(f) => panic!("closed: {f:?}"),
            _ => continue,
        }
    }
}

/// Reads until the close frame; returns its code and reason.
pub async fn recv_close(ws: &mut Ws) -> (u16, String) {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(15), ws.next())
            .await
            .expect("close in time");
        match m {
            Some(Ok(Message::Close(Some(f)))) => return (u16::from(f.code), f.reason.to_string()),
            Some(Ok(Message::Close(None))) => return (1005, String::new()),
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("error instead of close frame: {e}"),
            None => panic!("stream ended without close frame"),
        }
    }
}

pub fn connect_params(auth: Value, scopes: &[&str], mode: &str) -> Value {
    json!({
        "minProtocol": 4,
        "maxProtocol": 4,
        "client": {"id": "cli", "version": "2026.9.6", "platform": "linux", "mode": mode, "instanceId": "t"},
        "caps": [],
        "auth": auth,
        "role": "operator",
        "scopes": scopes,
    })
}

pub fn connect_req(params: Value) -> Value {
    json!({"type": "req", "id": "1", "method": "connect", "params": params})
}

/// A raw peer that completed the handshake; returns hello-ok and health event too.
pub async fn raw_connected(addr: SocketAddr, scopes: &[&str], mode: &str) -> (Ws, Value) {
    let (mut ws, _) = raw(addr).await;
    send_json(
        &mut ws,
        &connect_req(connect_params(json!({"token": TOKEN}), scopes, mode)),
    )
    .await;
    let hello = recv_json(&mut ws).await;
    assert_eq!(hello["ok"], true, "{hello}");
    let health = recv_json(&mut ws).await;
    assert_eq!(health["event"], "health", "{health}");
    (ws, hello)
}

/// A plain HTTP/1.1 request, the path sent exactly as given.
pub async fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String, String) {
    http_with(addr, method, path, &[("Host", &addr.to_string())]).await
}

/// `Authorization: Bearer` with the test token.
pub fn bearer() -> (&'static str, String) {
    ("Authorization", format!("Bearer {TOKEN}"))
}

/// An HTTP/1.1 request to the browser control service with the gateway's
/// credentials, as the CLI sends it.
pub async fn control(addr: SocketAddr, method: &str, path: &str) -> (u16, String, String) {
    let (k, v) = bearer();
    http_with(addr, method, path, &[("Host", &addr.to_string()), (k, &v)]).await
}

/// A plain HTTP/1.1 request with exactly these headers (plus `Connection:
/// close`), the path sent exactly as given.
pub async fn http_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).await.expect("tcp connect");
    let mut req = format!("{method} {path} HTTP/1.1\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut buf))
        .await
        .expect("http answer in time")
        .expect("read");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    (status, head.to_lowercase(), body.to_string())
}

/// A port nobody listens on right now.
/// A free port below the OS's ephemeral range (32768+ on Linux), so no
/// port-0 bind of a concurrent test can take it after it is released.
pub fn free_fixed_port() -> u16 {
    let start = 20000 + (std::process::id() % 5000) as u16;
    (0..10000u16)
        .map(|i| 20000 + (start - 20000 + i) % 10000)
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free port in 20000..30000")
}

pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}
