//! Support for the assistant's black-box tests: the model-provider double
//! serving on a runtime of its own, a profile wired to it, and a protocol
//! client that keeps every frame it received (for ordering checks and for
//! proving that no payload carried a secret).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub use omniclaw_agent::double::{Double, Recorded, Reply};

use crate::{free_base, GatewayProc, Home};

/// How long a test waits for a frame before it fails.
pub const WAIT: Duration = Duration::from_secs(20);

/// The provider double on a thread and runtime of its own, so that tests
/// may block (run a command, start a gateway) or run their own runtime
/// while it answers.
pub struct Provider {
    double: Option<Double>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Provider {
    pub fn start() -> Provider {
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime of the provider double");
            runtime.block_on(async move {
                let double = Double::start().await.expect("start the provider double");
                let _ = tx.send(double);
                let _ = stopped.await;
            });
        });
        let double = rx.recv().expect("the provider double started");
        Provider {
            double: Some(double),
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        drop(self.double.take());
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl std::ops::Deref for Provider {
    type Target = Double;
    fn deref(&self) -> &Double {
        self.double.as_ref().expect("the double runs until dropped")
    }
}

/// Where a provider's API key comes from.
#[derive(Debug, Clone)]
pub enum Key {
    /// None configured.
    None,
    /// `{source: "keychain"}`, stored with `secrets set` (the value).
    Keychain(String),
    /// `"${VAR}"`, the variable set for the gateway (name, value).
    Env(String, String),
    /// `{source: "keychain"}` with nothing stored.
    Missing,
}

/// One custom provider of the profile, served by the double.
#[derive(Debug, Clone)]
pub struct ProviderConf {
    pub id: String,
    pub api: String,
    pub models: Vec<String>,
    pub key: Key,
    /// Extra fields of `models.providers.<id>`, JSON5 (`timeoutSeconds: 1`).
    pub extra: String,
    /// Extra fields of each model entry, JSON5 (`cost: {input: 1, output: 1}`).
    pub model_extra: String,
}

impl ProviderConf {
    pub fn new(id: &str, api: &str, model: &str) -> ProviderConf {
        ProviderConf {
            id: id.into(),
            api: api.into(),
            models: vec![model.into()],
            key: Key::None,
            extra: String::new(),
            model_extra: String::new(),
        }
    }

    pub fn key(mut self, key: Key) -> ProviderConf {
        self.key = key;
        self
    }

    pub fn extra(mut self, extra: &str) -> ProviderConf {
        self.extra = extra.into();
        self
    }

    pub fn model_extra(mut self, extra: &str) -> ProviderConf {
        self.model_extra = extra.into();
        self
    }

    /// The JSON5 value of `models.providers.<id>` pointing at `double`.
    pub fn value(&self, double: &Double) -> String {
        let models: Vec<String> = self
            .models
            .iter()
            .map(|m| format!("{{ id: {m:?}, name: {m:?}, {} }}", self.model_extra))
            .collect();
        let key = match &self.key {
            Key::None => String::new(),
            Key::Keychain(_) | Key::Missing => "apiKey: { source: \"keychain\" },".into(),
            Key::Env(var, _) => format!("apiKey: \"${{{var}}}\","),
        };
        format!(
            "{{ baseUrl: {:?}, api: {:?}, {key} models: [{}], {} }}",
            double.base_url(&self.api),
            self.api,
            models.join(", "),
            self.extra
        )
    }
}

/// The gateway token every assistant test uses (passed as `--token`).
pub const TOKEN: &str = "chat-test-token-5d1f0e";

/// A profile set up in a home, with its assistant pointed at the double.
pub struct Assistant {
    pub profile: String,
    pub port: u16,
    /// Variables the gateway runs with (the `${VAR}` keys).
    pub env: Vec<(String, String)>,
}

impl Assistant {
    /// `setup` on a free port, then the providers and the model chain
    /// (`primary`, then `fallbacks`), then each `settings` pair
    /// (`config set PATH VALUE`); every step must succeed.
    pub fn wire(
        home: &Home,
        profile: &str,
        double: &Double,
        providers: &[ProviderConf],
        chain: &[&str],
        settings: &[(&str, &str)],
    ) -> Assistant {
        let port = free_base();
        home.run(&["--profile", profile, "setup", "--port", &port.to_string()])
            .expect_code(0);
        let mut env = Vec::new();
        for p in providers {
            if let Key::Keychain(value) = &p.key {
                let path = format!("models.providers.{}.apiKey", p.id);
                home.run_stdin(&["--profile", profile, "secrets", "set", &path], value, &[])
                    .expect_code(0);
            }
            if let Key::Env(var, value) = &p.key {
                env.push((var.clone(), value.clone()));
            }
            home.config_set(
                profile,
                &format!("models.providers.{}", p.id),
                &p.value(double),
            )
            .expect_code(0);
        }
        if let Some((primary, fallbacks)) = chain.split_first() {
            let fallbacks: Vec<String> = fallbacks.iter().map(|f| format!("{f:?}")).collect();
            home.config_set(
                profile,
                "agents.defaults.model",
                &format!(
                    "{{ primary: {primary:?}, fallbacks: [{}] }}",
                    fallbacks.join(", ")
                ),
            )
            .expect_code(0);
        }
        for (path, value) in settings {
            home.config_set(profile, path, value).expect_code(0);
        }
        Assistant {
            profile: profile.into(),
            port,
            env,
        }
    }

    /// Starts `omniclaw --profile P gateway --token TOKEN` with the
    /// assistant's variables.
    pub fn start(&self, home: &Home) -> GatewayProc {
        let mut cmd = home.cmd();
        cmd.args(["--profile", &self.profile, "gateway", "--token", TOKEN]);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        GatewayProc::spawn(cmd).unwrap_or_else(|r| panic!("gateway did not start: {r:?}"))
    }

    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    /// An operator connection with every operator scope and `caps`.
    pub async fn operator(&self, caps: &[&str]) -> Conn {
        Conn::connect(
            self.port,
            TOKEN,
            &[
                "operator.admin",
                "operator.read",
                "operator.write",
                "operator.approvals",
            ],
            caps,
        )
        .await
        .unwrap_or_else(|e| panic!("connect refused: {e}"))
    }

    /// The workspace of the profile in `home`.
    pub fn workspace(&self, home: &Home) -> std::path::PathBuf {
        home.path()
            .join(".omniclaw")
            .join(format!("workspace-{}", self.profile))
    }

    /// The state dir of the profile in `home`.
    pub fn state_dir(&self, home: &Home) -> std::path::PathBuf {
        home.path().join(format!(".omniclaw-{}", self.profile))
    }
}

/// A home with one profile wired to its own provider double, and the
/// profile's gateway once started. Dropped in order: the gateway, then the
/// home, then the double.
pub struct Rig {
    pub gateway: Option<GatewayProc>,
    pub assistant: Assistant,
    pub home: Home,
    pub double: Provider,
}

impl Rig {
    /// Wires `profile` (see [`Assistant::wire`]); the gateway is not started.
    pub fn wire(
        profile: &str,
        providers: &[ProviderConf],
        chain: &[&str],
        settings: &[(&str, &str)],
    ) -> Rig {
        let double = Provider::start();
        let home = Home::new();
        let assistant = Assistant::wire(&home, profile, &double, providers, chain, settings);
        Rig {
            gateway: None,
            assistant,
            home,
            double,
        }
    }

    /// Wired and started.
    pub fn running(
        profile: &str,
        providers: &[ProviderConf],
        chain: &[&str],
        settings: &[(&str, &str)],
    ) -> Rig {
        let mut rig = Rig::wire(profile, providers, chain, settings);
        rig.start();
        rig
    }

    /// Profile `chat` with one provider `dbl` (model `m1`) speaking `api`,
    /// started.
    pub fn one(api: &str, settings: &[(&str, &str)]) -> Rig {
        Rig::running(
            "chat",
            &[ProviderConf::new("dbl", api, "m1")],
            &["dbl/m1"],
            settings,
        )
    }

    /// Starts the gateway (again, after a stop).
    pub fn start(&mut self) {
        self.gateway = Some(self.assistant.start(&self.home));
    }

    /// The running gateway, taken (to signal or kill it).
    pub fn take_gateway(&mut self) -> GatewayProc {
        self.gateway.take().expect("the gateway runs")
    }

    pub async fn operator(&self, caps: &[&str]) -> Conn {
        self.assistant.operator(caps).await
    }
}

type Sink = SplitSink<WebSocketStream<MaybeTlsStream<TcpStream>>, Message>;

/// A protocol client that keeps every frame it received, in order.
pub struct Conn {
    sink: tokio::sync::Mutex<Sink>,
    frames: Arc<Mutex<Vec<Value>>>,
    /// Bumped on every frame and when the connection ends.
    changed: watch::Receiver<usize>,
    next_id: std::sync::atomic::AtomicU64,
    pub hello: Value,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

fn lock(frames: &Mutex<Vec<Value>>) -> MutexGuard<'_, Vec<Value>> {
    frames.lock().unwrap_or_else(|p| p.into_inner())
}

impl Conn {
    /// Connects as the TUI does (`client.id` "openclaw-tui", mode "ui");
    /// `Err` with the `connect` error frame when refused.
    pub async fn connect(
        port: u16,
        token: &str,
        scopes: &[&str],
        caps: &[&str],
    ) -> Result<Conn, Value> {
        let url = format!("ws://127.0.0.1:{port}");
        let (socket, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
        let (mut sink, mut stream) = socket.split();
        let next = |v: Option<Result<Message, _>>| -> Option<Value> {
            match v? {
                Ok(Message::Text(t)) => serde_json::from_str(t.as_str()).ok(),
                _ => None,
            }
        };
        let challenge = next(stream.next().await).expect("connect.challenge");
        assert_eq!(challenge["event"], "connect.challenge", "{challenge}");
        let connect = json!({
            "type": "req", "id": "c1", "method": "connect",
            "params": {
                "minProtocol": 4, "maxProtocol": 4,
                "client": {"id": "openclaw-tui", "displayName": "test", "version": "1.0.0",
                           "platform": "linux", "mode": "ui", "instanceId": "test-instance"},
                "caps": caps, "auth": {"token": token}, "role": "operator", "scopes": scopes,
            },
        });
        sink.send(Message::text(connect.to_string()))
            .await
            .expect("send connect");
        let hello = loop {
            let frame = next(stream.next().await).expect("answer to connect");
            if frame["type"] == "res" && frame["id"] == "c1" {
                if frame["ok"] != true {
                    return Err(frame);
                }
                break frame["payload"].clone();
            }
        };
        let frames = Arc::new(Mutex::new(Vec::new()));
        let (tx, changed) = watch::channel(0usize);
        let kept = frames.clone();
        let reader = tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                if let Message::Text(t) = msg {
                    let v: Value = serde_json::from_str(t.as_str()).unwrap_or(Value::Null);
                    let n = {
                        let mut f = lock(&kept);
                        f.push(v);
                        f.len()
                    };
                    let _ = tx.send(n);
                }
            }
            // Dropping `tx` tells the waiters that no frame will come.
        });
        Ok(Conn {
            sink: tokio::sync::Mutex::new(sink),
            frames,
            changed,
            next_id: std::sync::atomic::AtomicU64::new(1),
            hello,
            reader,
        })
    }

    /// Sends a request; returns its id.
    pub async fn send(&self, method: &str, params: Value) -> String {
        let n = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("r{n}");
        let frame = json!({"type": "req", "id": id, "method": method, "params": params});
        self.sink
            .lock()
            .await
            .send(Message::text(frame.to_string()))
            .await
            .expect("send request");
        id
    }

    /// Calls `method`; its (first) `res` frame.
    pub async fn call(&self, method: &str, params: Value) -> Value {
        let id = self.send(method, params).await;
        self.wait(&format!("res {id}"), |f| is_res(f, &id)).await
    }

    /// Calls `method`, which must succeed; its payload.
    pub async fn ok(&self, method: &str, params: Value) -> Value {
        let res = self.call(method, params).await;
        assert_eq!(res["ok"], true, "{method} failed: {res}");
        res["payload"].clone()
    }

    /// Every frame received so far.
    pub fn frames(&self) -> Vec<Value> {
        lock(&self.frames).clone()
    }

    /// How many frames were received so far.
    pub fn len(&self) -> usize {
        lock(&self.frames).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first frame matching `pred`, waiting up to [`WAIT`].
    pub async fn wait(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        self.wait_from(0, what, pred).await.1
    }

    /// The first frame at or after index `from` matching `pred`, with its
    /// index, waiting up to [`WAIT`].
    pub async fn wait_from(
        &self,
        from: usize,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> (usize, Value) {
        let mut changed = self.changed.clone();
        let mut scanned = from;
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut open = true;
        loop {
            {
                let frames = lock(&self.frames);
                for (i, f) in frames.iter().enumerate().skip(scanned) {
                    if pred(f) {
                        return (i, f.clone());
                    }
                }
                scanned = frames.len().max(scanned);
            }
            if !open {
                panic!(
                    "the connection ended before {what}; the last frames:\n{}",
                    self.tail(12)
                );
            }
            match tokio::time::timeout_at(deadline, changed.changed()).await {
                Ok(Ok(())) => {}
                // Closed: one more look at what arrived, then give up.
                Ok(Err(_)) => open = false,
                Err(_) => panic!(
                    "no {what} within {WAIT:?}; the last frames:\n{}",
                    self.tail(12)
                ),
            }
        }
    }

    /// The last `n` frames, one per line (for failure messages).
    pub fn tail(&self, n: usize) -> String {
        let frames = lock(&self.frames);
        let start = frames.len().saturating_sub(n);
        frames[start..]
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The payloads of the `event` frames named `name` so far.
    pub fn events(&self, name: &str) -> Vec<Value> {
        lock(&self.frames)
            .iter()
            .filter(|f| is_event(f, name))
            .map(|f| f["payload"].clone())
            .collect()
    }

    /// The `chat` payloads of run `run_id` so far.
    pub fn chats(&self, run_id: &str) -> Vec<Value> {
        self.events("chat")
            .into_iter()
            .filter(|p| p["runId"] == run_id)
            .collect()
    }

    /// Waits for the terminal `chat` event (final, error or aborted) of
    /// `run_id`.
    pub async fn terminal(&self, run_id: &str) -> Value {
        let frame = self
            .wait(&format!("the terminal chat event of {run_id}"), |f| {
                is_event(f, "chat") && f["payload"]["runId"] == run_id && is_terminal(&f["payload"])
            })
            .await;
        frame["payload"].clone()
    }
}

pub fn is_res(frame: &Value, id: &str) -> bool {
    frame["type"] == "res" && frame["id"] == id
}

pub fn is_event(frame: &Value, name: &str) -> bool {
    frame["type"] == "event" && frame["event"] == name
}

/// A `chat` payload that ends its run.
pub fn is_terminal(chat: &Value) -> bool {
    matches!(chat["state"].as_str(), Some("final" | "error" | "aborted"))
}

/// The text of a message in transcript shape (`content` a string or text
/// blocks).
pub fn text_of(message: &Value) -> String {
    match &message["content"] {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

/// A `chat.send` with a fresh idempotency key; returns the key (the run id).
pub fn send_params(session: &str, message: &str, run_id: &str) -> Value {
    json!({"sessionKey": session, "message": message, "idempotencyKey": run_id})
}

/// Every substring of `secret` of `len` characters: a fragment of a key
/// that must appear nowhere.
pub fn fragments(secret: &str, len: usize) -> Vec<String> {
    let chars: Vec<char> = secret.chars().collect();
    chars
        .windows(len.min(chars.len()).max(1))
        .map(|w| w.iter().collect())
        .collect()
}

/// The first fragment of `secret` (see [`fragments`]) found in `text`.
pub fn leaked(text: &str, secret: &str, len: usize) -> Option<String> {
    fragments(secret, len)
        .into_iter()
        .find(|f| text.contains(f.as_str()))
}

/// Chat requests of the double whose body mentions `needle`.
pub fn requests_mentioning(double: &Double, needle: &str) -> usize {
    double
        .chats()
        .iter()
        .filter(|r| r.body.to_string().contains(needle))
        .count()
}
