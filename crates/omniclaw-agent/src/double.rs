//! A model-provider double: one local HTTP server that speaks the three APIs
//! the way the real servers do (`/v1/chat/completions`, `/v1/models`,
//! `/v1/messages`, `/api/chat`, `/api/show`, `/api/tags`), driven by a queue
//! of scripted replies, recording every request for assertions.
//!
//! A reply is rendered in the wire format of the endpoint that asked: text
//! in small deltas, tool-call arguments split across deltas (whole objects
//! for Ollama, as it sends them), usage, the end marker. The rendered body
//! can be cut into chunks at arbitrary byte boundaries (inside a UTF-8
//! character, across `data:` lines) with a delay per chunk. Failures: any
//! status with a body (a 401 echoes part of the key, as OpenAI does), 429
//! with `retry-after`, a body cut before its end, a server that accepts and
//! never answers. With the queue empty every call gets the instant default
//! reply, for benchmarks.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use futures_util::stream;
use serde_json::{json, Value};

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    kind: Kind,
    /// Bytes per body chunk (`None`: the whole body at once).
    chunk_bytes: Option<usize>,
    /// Wait before each chunk.
    delay: Duration,
    /// Characters per text delta.
    piece_chars: usize,
    usage: (u64, u64),
}

/// Where a cut body ends.
#[derive(Debug, Clone, Copy)]
enum Keep {
    /// After this many bytes (maybe inside a frame).
    Bytes(usize),
    /// After this many whole frames (SSE events, NDJSON lines).
    Frames(usize),
}

#[derive(Debug, Clone)]
enum Kind {
    Answer {
        text: String,
        tool_calls: Vec<(String, Value)>,
    },
    Status {
        status: u16,
        body: String,
        retry_after: Option<String>,
        /// Put part of the key the request carried into the body.
        echo_key: bool,
    },
    /// The answer's body, ended early (before its end marker).
    Cut { text: String, keep: Keep },
    /// Accepts the request and never answers.
    Hang,
}

/// An answer in six paragraphs of about 120 characters each, ending in
/// `END-OF-BLOCKS`: the text streaming tests cut and show a paragraph at a
/// time.
pub fn six_paragraphs() -> String {
    (1..=6)
        .map(|i| {
            format!(
                "Block {i} says {}done.",
                "something worth reading. ".repeat(4)
            )
        })
        .collect::<Vec<_>>()
        .join("\n\n")
        + "END-OF-BLOCKS"
}

impl Reply {
    fn new(kind: Kind) -> Reply {
        Reply {
            kind,
            chunk_bytes: None,
            delay: Duration::ZERO,
            piece_chars: 4,
            usage: (10, 5),
        }
    }

    /// A streamed text answer.
    pub fn text(text: impl Into<String>) -> Reply {
        Reply::new(Kind::Answer {
            text: text.into(),
            tool_calls: Vec::new(),
        })
    }

    /// An answer that calls `name` with `arguments` (add text with
    /// [`Reply::with_text`], more calls with [`Reply::and_call`]).
    pub fn tool_call(name: &str, arguments: Value) -> Reply {
        Reply::text("").and_call(name, arguments)
    }

    pub fn and_call(mut self, name: &str, arguments: Value) -> Reply {
        if let Kind::Answer { tool_calls, .. } = &mut self.kind {
            tool_calls.push((name.to_string(), arguments));
        }
        self
    }

    pub fn with_text(mut self, new: &str) -> Reply {
        if let Kind::Answer { text, .. } = &mut self.kind {
            *text = new.to_string();
        }
        self
    }

    /// Any status with this body.
    pub fn status(status: u16, body: impl Into<String>) -> Reply {
        Reply::new(Kind::Status {
            status,
            body: body.into(),
            retry_after: None,
            echo_key: false,
        })
    }

    /// 401 whose body quotes the key it got, as OpenAI's does.
    pub fn unauthorized() -> Reply {
        Reply::new(Kind::Status {
            status: 401,
            body: String::new(),
            retry_after: None,
            echo_key: true,
        })
    }

    pub fn forbidden() -> Reply {
        Reply::status(
            403,
            json!({"error": {"message": "this key may not use the model", "type": "permission_error"}}).to_string(),
        )
    }

    /// 429 with `retry-after` (seconds or an HTTP date).
    pub fn rate_limited(retry_after: &str) -> Reply {
        Reply::new(Kind::Status {
            status: 429,
            body: json!({"error": {"message": "Rate limit reached", "type": "rate_limit_error"}})
                .to_string(),
            retry_after: Some(retry_after.to_string()),
            echo_key: false,
        })
    }

    pub fn server_error() -> Reply {
        Reply::status(
            500,
            json!({"error": {"message": "The server had an error", "type": "server_error"}})
                .to_string(),
        )
    }

    /// The answer's body ended at byte `keep`, before its end marker.
    pub fn cut(text: &str, keep: usize) -> Reply {
        Reply::new(Kind::Cut {
            text: text.to_string(),
            keep: Keep::Bytes(keep),
        })
    }

    /// The answer's body ended cleanly after `frames` whole frames (SSE
    /// events or NDJSON lines), before its end marker.
    pub fn cut_after_frames(text: &str, frames: usize) -> Reply {
        Reply::new(Kind::Cut {
            text: text.to_string(),
            keep: Keep::Frames(frames),
        })
    }

    /// Accepts the request, never answers.
    pub fn hang() -> Reply {
        Reply::new(Kind::Hang)
    }

    /// Sends the body in chunks of `bytes` bytes.
    pub fn chunked(mut self, bytes: usize) -> Reply {
        self.chunk_bytes = Some(bytes.max(1));
        self
    }

    /// Waits `delay` before each chunk.
    pub fn delayed(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }

    /// Input and output tokens reported.
    pub fn usage(mut self, input: u64, output: u64) -> Reply {
        self.usage = (input, output);
        self
    }
}

/// One request the double received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    /// Header names lower case.
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Shared {
    replies: VecDeque<Reply>,
    /// The answer when the queue is empty (the instant "ok" unless set).
    default_reply: Option<Reply>,
    /// Off for long benchmarks, whose requests nobody looks at.
    not_recording: bool,
    requests: Vec<Recorded>,
    /// Ollama model → capabilities (`/api/show`); unknown models can call tools.
    capabilities: HashMap<String, Vec<String>>,
    /// Ollama model → its context length (`/api/show`'s `model_info`).
    context_lengths: HashMap<String, u64>,
    /// What `/v1/models` lists: id and USD per million input and output
    /// tokens (OpenRouter's `pricing`); a lone `double` when empty.
    listed: Vec<(String, Option<(f64, f64)>)>,
    /// The one API key the OpenAI and Anthropic endpoints accept.
    required_key: Option<String>,
}

/// The running double. Dropping it stops the server.
pub struct Double {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    server: tokio::task::JoinHandle<()>,
}

impl Double {
    /// Binds 127.0.0.1:0 and serves until dropped.
    pub async fn start() -> std::io::Result<Double> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Mutex::new(Shared::default()));
        let app = Router::new()
            .route("/v1/chat/completions", post(answer))
            .route("/v1/messages", post(answer))
            .route("/api/chat", post(answer))
            .route("/api/show", post(show))
            .route("/api/tags", get(tags))
            .route("/v1/models", get(models))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!("the provider double stopped: {e}");
            }
        });
        Ok(Double {
            addr,
            shared,
            server,
        })
    }

    /// The base URL a provider of `api` is configured with.
    pub fn base_url(&self, api: &str) -> String {
        match api {
            "openai-completions" => format!("http://{}/v1", self.addr),
            _ => format!("http://{}", self.addr),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queues the reply to the next chat request.
    pub fn push(&self, reply: Reply) {
        lock(&self.shared).replies.push_back(reply);
    }

    /// The reply every request gets while the queue is empty.
    pub fn set_default(&self, reply: Reply) {
        lock(&self.shared).default_reply = Some(reply);
    }

    /// Whether requests are kept for [`Double::requests`] (on by default).
    pub fn set_recording(&self, on: bool) {
        lock(&self.shared).not_recording = !on;
    }

    /// What Ollama's `/api/show` says `model` can do.
    pub fn set_capabilities(&self, model: &str, capabilities: &[&str]) {
        lock(&self.shared).capabilities.insert(
            model.to_string(),
            capabilities.iter().map(|c| c.to_string()).collect(),
        );
    }

    /// Ollama's `/api/show` gives `model`'s context length.
    pub fn set_context_length(&self, model: &str, tokens: u64) {
        lock(&self.shared)
            .context_lengths
            .insert(model.to_string(), tokens);
    }

    /// `/v1/models` lists `id` (after the ones listed before), with
    /// OpenRouter's `name`, `context_length` and, given USD per million
    /// input and output tokens, `pricing`.
    pub fn list_model(&self, id: &str, price: Option<(f64, f64)>) {
        lock(&self.shared).listed.push((id.to_string(), price));
    }

    /// From now on the OpenAI and Anthropic endpoints (chats and the model
    /// list) answer any other key, or none, with the 401 OpenAI sends.
    pub fn require_key(&self, key: &str) {
        lock(&self.shared).required_key = Some(key.to_string());
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.shared).requests.clone()
    }

    /// The chat requests so far (not `/api/show` and the listings).
    pub fn chats(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| is_chat(&r.path))
            .collect()
    }
}

impl Drop for Double {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn is_chat(path: &str) -> bool {
    matches!(path, "/v1/chat/completions" | "/v1/messages" | "/api/chat")
}

/// A poisoned lock only means a test panicked while holding it.
fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

fn record(shared: &Mutex<Shared>, uri: &Uri, headers: &HeaderMap, body: &Bytes) {
    if lock(shared).not_recording {
        return;
    }
    let recorded = Recorded {
        path: uri.path().to_string(),
        headers: headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: serde_json::from_slice(body).unwrap_or(Value::Null),
    };
    lock(shared).requests.push(recorded);
}

async fn answer(
    State(shared): State<Arc<Mutex<Shared>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(&shared, &uri, &headers, &body);
    if let Some(refused) = wrong_key(&shared, &uri, &headers) {
        return refused;
    }
    let reply = {
        let mut s = lock(&shared);
        match s.replies.pop_front() {
            Some(r) => r,
            None => s.default_reply.clone().unwrap_or_else(|| Reply::text("ok")),
        }
    };
    let wire = Wire::of(uri.path());
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let model = request
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("model")
        .to_string();
    match &reply.kind {
        Kind::Hang => std::future::pending().await,
        Kind::Status {
            status,
            body,
            retry_after,
            echo_key,
        } => {
            let body = if *echo_key {
                unauthorized_body(&headers)
            } else {
                body.clone()
            };
            let mut response = Response::builder()
                .status(StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
                .header("content-type", "application/json");
            if let Some(after) = retry_after {
                response = response.header("retry-after", after.as_str());
            }
            response
                .body(Body::from(body))
                .unwrap_or_else(|_| Response::new(Body::empty()))
        }
        Kind::Answer { text, tool_calls } => {
            let wire_body = wire.render(&model, text, tool_calls, &reply);
            stream_body(wire, wire_body, &reply)
        }
        Kind::Cut { text, keep } => {
            let mut wire_body = wire.render(&model, text, &[], &reply);
            let end = match *keep {
                Keep::Bytes(n) => n,
                Keep::Frames(n) => {
                    let sep: &[u8] = match wire {
                        Wire::Ollama => b"\n",
                        _ => b"\n\n",
                    };
                    let mut end = 0;
                    for _ in 0..n {
                        match wire_body[end..].windows(sep.len()).position(|w| w == sep) {
                            Some(at) => end += at + sep.len(),
                            None => break,
                        }
                    }
                    end
                }
            };
            wire_body.truncate(end.min(wire_body.len()));
            stream_body(wire, wire_body, &reply)
        }
    }
}

/// OpenAI's 401 body, quoting the key the request carried.
fn unauthorized_body(headers: &HeaderMap) -> String {
    let key = key_of(headers).unwrap_or_default();
    let shown: String = key.chars().take(12).collect();
    json!({"error": {
        "message": format!("Incorrect API key provided: {shown}****. You passed {key}."),
        "type": "invalid_request_error",
        "code": "invalid_api_key",
    }})
    .to_string()
}

/// The 401 for a request to an endpoint that takes a key, when a key is
/// required and the request carried another one (or none).
fn wrong_key(shared: &Mutex<Shared>, uri: &Uri, headers: &HeaderMap) -> Option<Response> {
    let required = lock(shared).required_key.clone()?;
    if uri.path().starts_with("/api/") || key_of(headers).as_deref() == Some(required.as_str()) {
        return None;
    }
    Some(
        Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .header("content-type", "application/json")
            .body(Body::from(unauthorized_body(headers)))
            .unwrap_or_else(|_| Response::new(Body::empty())),
    )
}

/// The key a request carried (bearer token or `x-api-key`).
fn key_of(headers: &HeaderMap) -> Option<String> {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    bearer
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .map(str::to_string)
}

fn stream_body(wire: Wire, bytes: Vec<u8>, reply: &Reply) -> Response {
    let size = reply.chunk_bytes.unwrap_or(bytes.len().max(1));
    let chunks: VecDeque<Bytes> = bytes.chunks(size).map(Bytes::copy_from_slice).collect();
    let delay = reply.delay;
    let body = stream::unfold(chunks, move |mut chunks| async move {
        let chunk = chunks.pop_front()?;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Some((Ok::<_, Infallible>(chunk), chunks))
    });
    Response::builder()
        .header("content-type", wire.content_type())
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

/// Which API's format an endpoint answers in.
#[derive(Debug, Clone, Copy)]
enum Wire {
    OpenAi,
    Anthropic,
    Ollama,
}

impl Wire {
    fn of(path: &str) -> Wire {
        match path {
            "/v1/messages" => Wire::Anthropic,
            "/api/chat" => Wire::Ollama,
            _ => Wire::OpenAi,
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Wire::Ollama => "application/x-ndjson",
            _ => "text/event-stream",
        }
    }

    /// The whole body of an answer in this wire format.
    fn render(self, model: &str, text: &str, calls: &[(String, Value)], reply: &Reply) -> Vec<u8> {
        let texts = pieces(text, reply.piece_chars);
        let (input, output) = reply.usage;
        let mut out = String::new();
        let mut sse = |event: Option<&str>, data: &Value| {
            if let Some(e) = event {
                out.push_str(&format!("event: {e}\n"));
            }
            out.push_str(&format!("data: {data}\n\n"));
        };
        match self {
            Wire::OpenAi => {
                let chunk = |delta: Value, finish: Value| {
                    json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": model,
                           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
                };
                sse(
                    None,
                    &chunk(json!({"role": "assistant", "content": ""}), Value::Null),
                );
                for p in &texts {
                    sse(None, &chunk(json!({"content": p}), Value::Null));
                }
                for (i, (name, args)) in calls.iter().enumerate() {
                    sse(
                        None,
                        &chunk(
                            json!({"tool_calls": [{"index": i, "id": format!("call_{i}"), "type": "function",
                                                   "function": {"name": name, "arguments": ""}}]}),
                            Value::Null,
                        ),
                    );
                    for part in pieces(&args.to_string(), 5) {
                        sse(
                            None,
                            &chunk(
                                json!({"tool_calls": [{"index": i, "function": {"arguments": part}}]}),
                                Value::Null,
                            ),
                        );
                    }
                }
                let finish = if calls.is_empty() {
                    "stop"
                } else {
                    "tool_calls"
                };
                sse(None, &chunk(json!({}), json!(finish)));
                sse(
                    None,
                    &json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [],
                            "usage": {"prompt_tokens": input, "completion_tokens": output,
                                      "total_tokens": input + output}}),
                );
                out.push_str("data: [DONE]\n\n");
            }
            Wire::Anthropic => {
                sse(
                    Some("message_start"),
                    &json!({"type": "message_start", "message": {"id": "msg_1", "type": "message",
                            "role": "assistant", "model": model, "content": [],
                            "usage": {"input_tokens": input, "output_tokens": 1}}}),
                );
                // One content block: its start, its deltas, its stop.
                let mut blocks: Vec<(Value, Vec<Value>)> = Vec::new();
                if !texts.is_empty() {
                    let deltas = texts
                        .iter()
                        .map(|p| json!({"type": "text_delta", "text": p}))
                        .collect();
                    blocks.push((json!({"type": "text", "text": ""}), deltas));
                }
                for (i, (name, args)) in calls.iter().enumerate() {
                    let deltas = pieces(&args.to_string(), 5)
                        .into_iter()
                        .map(|part| json!({"type": "input_json_delta", "partial_json": part}))
                        .collect();
                    blocks.push((
                        json!({"type": "tool_use", "id": format!("toolu_{i}"), "name": name, "input": {}}),
                        deltas,
                    ));
                }
                for (index, (block, deltas)) in blocks.into_iter().enumerate() {
                    sse(
                        Some("content_block_start"),
                        &json!({"type": "content_block_start", "index": index, "content_block": block}),
                    );
                    sse(Some("ping"), &json!({"type": "ping"}));
                    for delta in deltas {
                        sse(
                            Some("content_block_delta"),
                            &json!({"type": "content_block_delta", "index": index, "delta": delta}),
                        );
                    }
                    sse(
                        Some("content_block_stop"),
                        &json!({"type": "content_block_stop", "index": index}),
                    );
                }
                let stop = if calls.is_empty() {
                    "end_turn"
                } else {
                    "tool_use"
                };
                sse(
                    Some("message_delta"),
                    &json!({"type": "message_delta", "delta": {"stop_reason": stop},
                            "usage": {"output_tokens": output}}),
                );
                sse(Some("message_stop"), &json!({"type": "message_stop"}));
            }
            Wire::Ollama => {
                let line = |message: Value, done: bool| {
                    json!({"model": model, "created_at": "2026-12-05T22:00:00Z",
                           "message": message, "done": done})
                };
                for p in &texts {
                    out.push_str(
                        &line(json!({"role": "assistant", "content": p}), false).to_string(),
                    );
                    out.push('\n');
                }
                if !calls.is_empty() {
                    let calls: Vec<Value> = calls
                        .iter()
                        .map(|(name, args)| json!({"function": {"name": name, "arguments": args}}))
                        .collect();
                    out.push_str(
                        &line(
                            json!({"role": "assistant", "content": "", "tool_calls": calls}),
                            false,
                        )
                        .to_string(),
                    );
                    out.push('\n');
                }
                let mut last = line(json!({"role": "assistant", "content": ""}), true);
                last["done_reason"] = json!("stop");
                last["prompt_eval_count"] = json!(input);
                last["eval_count"] = json!(output);
                out.push_str(&last.to_string());
                out.push('\n');
            }
        }
        out.into_bytes()
    }
}

/// `text` in pieces of `n` characters.
fn pieces(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars.chunks(n.max(1)).map(|c| c.iter().collect()).collect()
}

async fn show(
    State(shared): State<Arc<Mutex<Shared>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(&shared, &uri, &headers, &body);
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let model = request
        .get("model")
        .or_else(|| request.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let (caps, context) = {
        let s = lock(&shared);
        (
            s.capabilities
                .get(model)
                .cloned()
                .unwrap_or_else(|| vec!["completion".into(), "tools".into()]),
            s.context_lengths.get(model).copied(),
        )
    };
    let mut answer = json!({"modelfile": "", "parameters": "", "template": "",
                            "details": {"family": "llama"}, "capabilities": caps});
    if let Some(tokens) = context {
        answer["model_info"] =
            json!({"general.architecture": "llama", "llama.context_length": tokens});
    }
    json_response(answer)
}

async fn tags(State(shared): State<Arc<Mutex<Shared>>>, uri: Uri, headers: HeaderMap) -> Response {
    record(&shared, &uri, &headers, &Bytes::new());
    let models: Vec<Value> = lock(&shared)
        .capabilities
        .keys()
        .map(|m| json!({"name": m, "model": m}))
        .collect();
    json_response(json!({"models": models}))
}

async fn models(
    State(shared): State<Arc<Mutex<Shared>>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    record(&shared, &uri, &headers, &Bytes::new());
    if let Some(refused) = wrong_key(&shared, &uri, &headers) {
        return refused;
    }
    let listed = lock(&shared).listed.clone();
    let data: Vec<Value> = if listed.is_empty() {
        vec![json!({"id": "double", "object": "model"})]
    } else {
        listed
            .iter()
            .map(|(id, price)| {
                let mut m = json!({"id": id, "object": "model", "name": format!("Double {id}"),
                                   "context_length": 32768});
                if let Some((input, output)) = price {
                    m["pricing"] = json!({"prompt": (input / 1e6).to_string(),
                                          "completion": (output / 1e6).to_string()});
                }
                m
            })
            .collect()
    };
    json_response(json!({"object": "list", "data": data}))
}

fn json_response(value: Value) -> Response {
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from(value.to_string()))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}
