//! `ollama`: the native `POST {baseUrl}/api/chat`, answered as NDJSON (one
//! JSON object per line, the last with `done: true` and the token counts).
//! Tool calls come whole in `message.tool_calls` with their arguments as an
//! object. Whether a model can call tools is asked once per model with
//! `POST /api/show` (its `capabilities`) and remembered: a model that
//! cannot is sent no tools instead of failing. The model's context window
//! is sent as `options.num_ctx`, or Ollama silently cuts the prompt to its
//! small default.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::chat::{self, FunctionTools, Messages, Shape};
use super::http::{self, Decoder, Endpoint, Http};
use super::{CompletionRequest, EventStream, Provider, ProviderError, ProviderEvent, TokenCounts};
use crate::message::StopReason;

pub struct Ollama {
    http: Http,
    /// Model id → whether it can call tools.
    tool_support: Mutex<HashMap<String, bool>>,
}

impl Ollama {
    pub fn new(endpoint: Endpoint) -> Result<Ollama, ProviderError> {
        Ok(Ollama {
            http: Http::new(native(endpoint))?,
            tool_support: Mutex::new(HashMap::new()),
        })
    }

    /// Whether `model` can call tools, asked once.
    async fn supports_tools(
        &self,
        model: &str,
        cancel: &CancellationToken,
    ) -> Result<bool, ProviderError> {
        if let Some(known) = self.cached(model) {
            return Ok(known);
        }
        let show = self
            .http
            .post_json("/api/show", &json!({"model": model}), cancel)
            .await?;
        // Servers older than capabilities: assume tools, as they did.
        let supports = show
            .get("capabilities")
            .and_then(Value::as_array)
            .is_none_or(|caps| caps.iter().any(|c| c == "tools"));
        if let Ok(mut cache) = self.tool_support.lock() {
            cache.insert(model.to_string(), supports);
        }
        Ok(supports)
    }

    fn cached(&self, model: &str) -> Option<bool> {
        self.tool_support.lock().ok()?.get(model).copied()
    }
}

#[async_trait]
impl Provider for Ollama {
    fn id(&self) -> &str {
        self.http.id()
    }

    fn api(&self) -> &str {
        "ollama"
    }

    async fn stream(
        &self,
        mut request: CompletionRequest,
        cancel: CancellationToken,
    ) -> Result<EventStream, ProviderError> {
        if !request.tools.is_empty() && !self.supports_tools(&request.model, &cancel).await? {
            tracing::info!(
                provider = self.http.id(),
                model = request.model,
                "the model cannot call tools; asking without them"
            );
            request.tools = Vec::new().into();
        }
        let key = self.http.key()?;
        let auth = chat::bearer(key.as_deref());
        let body = body(&request, self.http.endpoint.max_tokens);
        let response = self
            .http
            .post("/api/chat", &auth, &body, key.as_deref(), &cancel)
            .await?;
        let frames = http::ndjson_frames(&self.http, response);
        Ok(http::drive(
            &self.http,
            frames,
            Lines::new(&self.http),
            cancel,
        ))
    }
}

/// The endpoint of the native API: OpenClaw configs often carry the
/// OpenAI-compatible `/v1` root, and the native API lives beside it.
pub(crate) fn native(mut endpoint: Endpoint) -> Endpoint {
    if let Some(root) = endpoint.base_url.strip_suffix("/v1") {
        endpoint.base_url = root.to_string();
    }
    endpoint
}

/// How Ollama writes a call (arguments as an object) and a result.
static SHAPE: Shape = Shape {
    call: |c| json!({"function": {"name": c.name, "arguments": c.arguments}}),
    result: |r| json!({"role": "tool", "content": r.text(), "tool_name": r.tool_name}),
    no_text: Value::String(String::new()),
};

/// The request body, written straight from the request (see [`chat`]).
#[derive(Serialize)]
pub(crate) struct Body<'a> {
    model: &'a str,
    messages: Messages<'a>,
    stream: bool,
    #[serde(skip_serializing_if = "Options::is_empty")]
    options: Options,
    #[serde(skip_serializing_if = "Option::is_none")]
    tools: Option<FunctionTools<'a>>,
}

#[derive(Serialize)]
struct Options {
    #[serde(skip_serializing_if = "Option::is_none")]
    num_ctx: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    num_predict: Option<u32>,
}

impl Options {
    fn is_empty(&self) -> bool {
        self.num_ctx.is_none() && self.num_predict.is_none()
    }
}

pub(crate) fn body(request: &CompletionRequest, default_max: Option<u32>) -> Body<'_> {
    Body {
        model: &request.model,
        messages: Messages::new(request, &SHAPE),
        stream: true,
        options: Options {
            num_ctx: request.context_window,
            num_predict: request.max_tokens.or(default_max),
        },
        tools: chat::function_tools(request),
    }
}

/// Reads the lines of one answer.
struct Lines {
    http: Http,
    calls: usize,
    done: bool,
}

impl Lines {
    fn new(http: &Http) -> Lines {
        Lines {
            http: http.clone(),
            calls: 0,
            done: false,
        }
    }
}

impl Decoder for Lines {
    type Frame = String;

    fn frame(&mut self, line: String) -> Result<Vec<ProviderEvent>, ProviderError> {
        let line = line.trim();
        if line.is_empty() {
            return Ok(Vec::new());
        }
        let chunk: Value = serde_json::from_str(line).map_err(|e| {
            // The last line of a body that ended early is half a line.
            if e.is_eof() {
                self.http.cut("the body ended inside a line")
            } else {
                self.http
                    .protocol(&format!("a line is not JSON ({e}): {line}"))
            }
        })?;
        if let Some(error) = chunk.get("error").and_then(Value::as_str) {
            return Err(ProviderError::Server {
                provider: self.http.id().to_string(),
                status: 200,
                message: error.to_string(),
            });
        }
        let mut events = Vec::new();
        let message = chunk.get("message");
        if let Some(text) = message
            .and_then(|m| m.get("content"))
            .and_then(Value::as_str)
        {
            if !text.is_empty() {
                events.push(ProviderEvent::TextDelta(text.to_string()));
            }
        }
        for call in message
            .and_then(|m| m.get("tool_calls"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let function = call.get("function");
            let arguments = match function.and_then(|f| f.get("arguments")) {
                Some(Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
                None => "{}".to_string(),
            };
            // Ollama gives calls no id (newer versions may): the transcript
            // needs one to pair each result with its call.
            let id = call
                .get("id")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| format!("call_{}", uuid::Uuid::new_v4().simple()));
            events.push(ProviderEvent::ToolCallDelta {
                index: self.calls,
                id: Some(id),
                name: function
                    .and_then(|f| f.get("name"))
                    .and_then(Value::as_str)
                    .map(str::to_string),
                arguments,
            });
            self.calls += 1;
        }
        if chunk.get("done").and_then(Value::as_bool) == Some(true) {
            self.done = true;
            let n = |k: &str| chunk.get(k).and_then(Value::as_u64).unwrap_or(0);
            events.push(ProviderEvent::Usage(TokenCounts {
                input: n("prompt_eval_count"),
                output: n("eval_count"),
                cache_read: 0,
                cache_write: 0,
            }));
            let stop = match chunk.get("done_reason").and_then(Value::as_str) {
                _ if self.calls > 0 => StopReason::ToolUse,
                Some("length") => StopReason::Length,
                _ => StopReason::Stop,
            };
            events.push(ProviderEvent::Done(stop));
        }
        Ok(events)
    }

    fn finished(&self) -> bool {
        self.done
    }
}
