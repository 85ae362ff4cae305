//! A small client of the gateway protocol (v4): connect with a token or
//! password and requested scopes, then call methods and watch events.
//!
//! The CLI's `status`, `health` and `probe` use it, and so do the tests. It
//! introduces itself like the real CLI does (`client.id = "cli"`), so the
//! gateway treats both alike.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::{broadcast, oneshot, watch};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::protocol::{PROTOCOL_VERSION, SCOPE_READ};
use crate::spec::Auth;
use crate::VERSION;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<Result<Value, RpcError>>>>>;

/// Why a connect or call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RpcError {
    /// The gateway answered with an error.
    #[error("{code}: {message}")]
    Remote {
        code: String,
        message: String,
        details: Option<Value>,
    },
    /// The connection ended; `code`/`reason` come from the close frame.
    #[error("connection closed{}", match code { Some(c) if reason.is_empty() => format!(" ({c})"), Some(c) => format!(" ({c}: {reason})"), None => String::new() })]
    Closed { code: Option<u16>, reason: String },
    #[error("cannot connect to {url}: {message}")]
    Connect { url: String, message: String },
    #[error("no answer to {what} within {} ms", timeout.as_millis())]
    Timeout { what: String, timeout: Duration },
    #[error("unexpected frame from the gateway: {0}")]
    Protocol(String),
}

/// How to introduce ourselves in `connect`.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub auth: Auth,
    pub scopes: Vec<String>,
    /// `client.mode`: `cli` for commands, `probe` for `gateway probe`.
    pub mode: String,
    /// Limit for the handshake and, by default, each call.
    pub timeout: Duration,
    /// Capabilities announced in `connect` (`tool-events`: the tool
    /// stream of the runs this client starts).
    pub caps: Vec<String>,
    /// How many events wait for a slow reader before it lags.
    pub event_buffer: usize,
}

impl ConnectOptions {
    pub fn new(auth: Auth, scopes: &[&str]) -> ConnectOptions {
        ConnectOptions {
            auth,
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            mode: "cli".into(),
            timeout: Duration::from_secs(10),
            caps: Vec::new(),
            event_buffer: 64,
        }
    }
}

/// A connected, authenticated client.
pub struct Client {
    sink: tokio::sync::Mutex<SplitSink<Socket, Message>>,
    pending: Pending,
    next_id: AtomicU64,
    hello: Value,
    events: broadcast::Sender<Value>,
    closed: watch::Receiver<Option<(Option<u16>, String)>>,
    timeout: Duration,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(Some(64 << 20))
        .max_frame_size(Some(64 << 20))
}

fn remote(frame: &Value) -> RpcError {
    let e = &frame["error"];
    RpcError::Remote {
        code: e["code"].as_str().unwrap_or("UNKNOWN").to_string(),
        message: e["message"].as_str().unwrap_or_default().to_string(),
        details: e.get("details").cloned(),
    }
}

async fn next_json(read: &mut SplitStream<Socket>) -> Result<Value, RpcError> {
    loop {
        match read.next().await {
            Some(Ok(Message::Text(t))) => {
                return serde_json::from_str(t.as_str())
                    .map_err(|e| RpcError::Protocol(format!("not JSON: {e}")))
            }
            Some(Ok(Message::Close(frame))) => {
                return Err(RpcError::Closed {
                    code: frame.as_ref().map(|f| u16::from(f.code)),
                    reason: frame
                        .map(|f| f.reason.as_str().to_string())
                        .unwrap_or_default(),
                })
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                return Err(RpcError::Closed {
                    code: None,
                    reason: e.to_string(),
                })
            }
            None => {
                return Err(RpcError::Closed {
                    code: None,
                    reason: String::new(),
                })
            }
        }
    }
}

/// Why a connection failed, with where to look: a TLS failure is about the
/// certificate (which a `wss://` server must prove), anything else about
/// whether a gateway listens there.
fn connect_failure(e: &tokio_tungstenite::tungstenite::Error) -> String {
    use tokio_tungstenite::tungstenite::Error;
    // rustls reports a refused certificate as an I/O error of the stream.
    let tls = match e {
        Error::Tls(_) => true,
        Error::Io(io) => io
            .get_ref()
            .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some()),
        _ => false,
    };
    match tls {
        true => format!(
            "{e}: the server's certificate must name its host and come from an authority this machine trusts (the system's, or those in the file SSL_CERT_FILE names)"
        ),
        false => format!("{e}; is the gateway running on that port?"),
    }
}

impl Client {
    /// Connects to `url` (`ws://127.0.0.1:PORT`) with `auth` and `scopes`.
    pub async fn connect(url: &str, auth: Auth, scopes: &[&str]) -> Result<Client, RpcError> {
        Client::connect_with(url, ConnectOptions::new(auth, scopes)).await
    }

    /// Connects with full options.
    pub async fn connect_with(url: &str, opts: ConnectOptions) -> Result<Client, RpcError> {
        let timeout = opts.timeout;
        let handshake = async {
            let (socket, _) =
                tokio_tungstenite::connect_async_with_config(url, Some(ws_config()), true)
                    .await
                    .map_err(|e| RpcError::Connect {
                        url: url.to_string(),
                        message: connect_failure(&e),
                    })?;
            let (mut sink, mut read) = socket.split();
            let challenge = next_json(&mut read).await?;
            if challenge["event"] != "connect.challenge" {
                return Err(RpcError::Protocol(format!(
                    "expected connect.challenge, got {challenge}"
                )));
            }
            let auth = match &opts.auth {
                Auth::Token(t) => json!({"token": t}),
                Auth::Password(p) => json!({"password": p}),
                Auth::None => json!({}),
            };
            let id = format!("1:{}", uuid::Uuid::new_v4());
            let connect = json!({
                "type": "req",
                "id": id,
                "method": "connect",
                "params": {
                    "minProtocol": PROTOCOL_VERSION,
                    "maxProtocol": PROTOCOL_VERSION,
                    "client": {
                        "id": "cli",
                        "version": VERSION,
                        "platform": std::env::consts::OS,
                        "mode": opts.mode,
                        "instanceId": uuid::Uuid::new_v4().to_string(),
                    },
                    "caps": opts.caps,
                    "auth": auth,
                    "role": "operator",
                    "scopes": opts.scopes,
                },
            });
            sink.send(Message::text(connect.to_string()))
                .await
                .map_err(|e| RpcError::Closed {
                    code: None,
                    reason: e.to_string(),
                })?;
            loop {
                let frame = next_json(&mut read).await?;
                if frame["type"] == "res" && frame["id"] == id.as_str() {
                    if frame["ok"] == true {
                        return Ok((sink, read, frame["payload"].clone()));
                    }
                    return Err(remote(&frame));
                }
            }
        };
        let (sink, read, hello) =
            tokio::time::timeout(timeout, handshake)
                .await
                .map_err(|_| RpcError::Timeout {
                    what: format!("connect to {url}"),
                    timeout,
                })??;
        let pending: Pending = Arc::default();
        let (events, _) = broadcast::channel(opts.event_buffer.max(1));
        let (closed_tx, closed) = watch::channel(None);
        let reader = tokio::spawn(read_loop(read, pending.clone(), events.clone(), closed_tx));
        Ok(Client {
            sink: tokio::sync::Mutex::new(sink),
            pending,
            next_id: AtomicU64::new(2),
            hello,
            events,
            closed,
            timeout,
            reader,
        })
    }

    /// The `hello-ok` payload: server, features, snapshot, auth, policy.
    pub fn hello(&self) -> &Value {
        &self.hello
    }

    /// Event frames (`{"type":"event",...}`) arriving from now on.
    pub fn events(&self) -> broadcast::Receiver<Value> {
        self.events.subscribe()
    }

    /// Waits until the connection ends; returns the close code and reason.
    pub async fn closed(&self) -> (Option<u16>, String) {
        let mut rx = self.closed.clone();
        let end = match rx.wait_for(Option::is_some).await {
            Ok(v) => v.clone().unwrap_or((None, String::new())),
            Err(_) => (None, String::new()),
        };
        end
    }

    /// Calls `method` with `params` and waits for its answer.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed).to_string();
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), tx);
        let frame = json!({"type": "req", "id": id, "method": method, "params": params});
        let sent = self
            .sink
            .lock()
            .await
            .send(Message::text(frame.to_string()))
            .await;
        if let Err(e) = sent {
            self.pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
            return Err(RpcError::Closed {
                code: None,
                reason: e.to_string(),
            });
        }
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(self.close_error()),
            Err(_) => {
                self.pending
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
                Err(RpcError::Timeout {
                    what: method.to_string(),
                    timeout: self.timeout,
                })
            }
        }
    }

    fn close_error(&self) -> RpcError {
        let (code, reason) = self
            .closed
            .borrow()
            .clone()
            .unwrap_or((None, String::new()));
        RpcError::Closed { code, reason }
    }

    /// Closes the connection normally.
    pub async fn close(self) {
        let _ = self.sink.lock().await.send(Message::Close(None)).await;
        let _ = tokio::time::timeout(Duration::from_secs(1), self.closed()).await;
    }
}

/// Reads frames until the connection ends, routing answers and events.
async fn read_loop(
    mut read: SplitStream<Socket>,
    pending: Pending,
    events: broadcast::Sender<Value>,
    closed: watch::Sender<Option<(Option<u16>, String)>>,
) {
    let end = loop {
        match next_json(&mut read).await {
            Ok(frame) => match frame["type"].as_str() {
                Some("res") => {
                    let id = match &frame["id"] {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    let waiter = pending
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&id);
                    if let Some(tx) = waiter {
                        let answer = if frame["ok"] == true {
                            Ok(frame.get("payload").cloned().unwrap_or(Value::Null))
                        } else {
                            Err(remote(&frame))
                        };
                        let _ = tx.send(answer);
                    }
                }
                Some("event") => {
                    // Nobody listening is fine.
                    let _ = events.send(frame);
                }
                _ => {}
            },
            Err(RpcError::Closed { code, reason }) => break (code, reason),
            Err(e) => break (None, e.to_string()),
        }
    };
    let _ = closed.send(Some(end));
    // Dropping the senders wakes every waiting call with "closed".
    pending.lock().unwrap_or_else(|p| p.into_inner()).clear();
}

/// Scopes for read-only commands (`status`, `health`, `logs`).
pub const READ_SCOPES: &[&str] = &[SCOPE_READ];

#[cfg(test)]
mod tests {
    use super::*;

    fn check(err: RpcError, expected: &str) {
        assert_eq!(err.to_string(), expected);
    }

    #[test]
    fn error_messages() {
        check(
            RpcError::Closed {
                code: Some(1008),
                reason: "x".into(),
            },
            "connection closed (1008: x)",
        );
        check(
            RpcError::Closed {
                code: Some(1000),
                reason: String::new(),
            },
            "connection closed (1000)",
        );
        check(
            RpcError::Remote {
                code: "FORBIDDEN".into(),
                message: "missing scope: operator.admin".into(),
                details: None,
            },
            "FORBIDDEN: missing scope: operator.admin",
        );
        check(
            RpcError::Timeout {
                what: "health".into(),
                timeout: Duration::from_millis(5),
            },
            "no answer to health within 5 ms",
        );
    }

    #[tokio::test]
    async fn connect_to_nothing_says_so() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        drop(l);
        let err = Client::connect(&format!("ws://127.0.0.1:{port}"), Auth::None, READ_SCOPES)
            .await
            .err()
            .expect("nothing listens");
        assert!(matches!(err, RpcError::Connect { .. }), "{err}");
    }
}
