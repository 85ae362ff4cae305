//! `anthropic-messages`: `POST {baseUrl}/v1/messages` with `x-api-key` and
//! `anthropic-version`, the system prompt as a top-level field, tool calls
//! as `tool_use` blocks and their results as `tool_result` blocks in a user
//! turn. The stream is SSE: `message_start` (input usage),
//! `content_block_start` / `content_block_delta` (`text_delta`,
//! `input_json_delta`), `message_delta` (`stop_reason`, output usage),
//! `message_stop`.

use std::collections::HashMap;

use async_trait::async_trait;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::http::{self, Decoder, Endpoint, Http};
use super::{CompletionRequest, EventStream, Provider, ProviderError, ProviderEvent, TokenCounts};
use crate::message::{AssistantBlock, Message, StopReason};

/// The API version this adapter speaks.
pub const VERSION: &str = "2023-06-01";
/// `max_tokens` is required by this API; used when neither the model nor
/// the provider sets one.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

pub struct Anthropic {
    http: Http,
}

impl Anthropic {
    pub fn new(endpoint: Endpoint) -> Result<Anthropic, ProviderError> {
        Ok(Anthropic {
            http: Http::new(endpoint)?,
        })
    }
}

#[async_trait]
impl Provider for Anthropic {
    fn id(&self) -> &str {
        self.http.id()
    }

    fn api(&self) -> &str {
        "anthropic-messages"
    }

    async fn stream(
        &self,
        request: CompletionRequest,
        cancel: CancellationToken,
    ) -> Result<EventStream, ProviderError> {
        let key = self.http.key()?;
        let body = body(&request, self.http.endpoint.max_tokens);
        let mut auth = vec![("anthropic-version", VERSION.to_string())];
        if let Some(k) = &key {
            auth.push(("x-api-key", k.clone()));
        }
        let response = self
            .http
            .post("/v1/messages", &auth, &body, key.as_deref(), &cancel)
            .await?;
        let frames = http::sse_frames(&self.http, response);
        Ok(http::drive(
            &self.http,
            frames,
            Events::new(&self.http),
            cancel,
        ))
    }
}

/// The request body. Turns alternate, so consecutive messages of one role
/// (tool results of several calls) are merged into one turn.
pub(crate) fn body(request: &CompletionRequest, default_max: Option<u32>) -> Value {
    let mut turns: Vec<(&str, Vec<Value>)> = Vec::new();
    for m in &request.messages {
        let (role, blocks) = match m {
            Message::User(u) => ("user", vec![json!({"type": "text", "text": u.content})]),
            Message::Assistant(a) => {
                let blocks: Vec<Value> = a
                    .content
                    .iter()
                    .filter_map(|b| match b {
                        AssistantBlock::Text { text } if text.is_empty() => None,
                        AssistantBlock::Text { text } => {
                            Some(json!({"type": "text", "text": text}))
                        }
                        AssistantBlock::ToolCall(c) => Some(json!({
                            "type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments,
                        })),
                    })
                    .collect();
                ("assistant", blocks)
            }
            Message::ToolResult(r) => (
                "user",
                vec![json!({
                    "type": "tool_result",
                    "tool_use_id": r.tool_call_id,
                    "content": r.text(),
                    "is_error": r.is_error,
                })],
            ),
        };
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((last, content)) if *last == role => content.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    let messages: Vec<Value> = turns
        .into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect();
    let mut body = json!({
        "model": request.model,
        "max_tokens": request.max_tokens.or(default_max).unwrap_or(DEFAULT_MAX_TOKENS),
        "messages": messages,
        "stream": true,
    });
    if !request.system.is_empty() {
        body["system"] = json!(request.system);
    }
    if !request.tools.is_empty() {
        body["tools"] = json!(request
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.parameters}))
            .collect::<Vec<_>>());
    }
    body
}

/// Reads the events of one message.
struct Events {
    http: Http,
    /// Content block index → tool call index.
    tools: HashMap<u64, usize>,
    usage: TokenCounts,
    stop: StopReason,
    done: bool,
}

impl Events {
    fn new(http: &Http) -> Events {
        Events {
            http: http.clone(),
            tools: HashMap::new(),
            usage: TokenCounts::default(),
            stop: StopReason::Stop,
            done: false,
        }
    }

    fn tool_index(&mut self, block: u64) -> usize {
        let next = self.tools.len();
        *self.tools.entry(block).or_insert(next)
    }
}

impl Decoder for Events {
    type Frame = (String, String);

    fn frame(&mut self, (_, data): (String, String)) -> Result<Vec<ProviderEvent>, ProviderError> {
        if data.trim().is_empty() {
            return Ok(Vec::new());
        }
        let event: Value = serde_json::from_str(&data).map_err(|e| {
            self.http
                .protocol(&format!("an event is not JSON ({e}): {data}"))
        })?;
        let n = |v: &Value, p: &str| v.pointer(p).and_then(Value::as_u64);
        let block = n(&event, "/index").unwrap_or(0);
        let mut events = Vec::new();
        match event
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
        {
            "message_start" => {
                let u = event.pointer("/message/usage").cloned().unwrap_or_default();
                self.usage.input = n(&u, "/input_tokens").unwrap_or(0);
                self.usage.output = n(&u, "/output_tokens").unwrap_or(0);
                self.usage.cache_read = n(&u, "/cache_read_input_tokens").unwrap_or(0);
                self.usage.cache_write = n(&u, "/cache_creation_input_tokens").unwrap_or(0);
            }
            "content_block_start" => {
                let b = event.get("content_block").cloned().unwrap_or_default();
                match b.get("type").and_then(Value::as_str) {
                    Some("tool_use") => {
                        let index = self.tool_index(block);
                        events.push(ProviderEvent::ToolCallDelta {
                            index,
                            id: b.get("id").and_then(Value::as_str).map(str::to_string),
                            name: b.get("name").and_then(Value::as_str).map(str::to_string),
                            // The input comes as input_json_delta pieces.
                            arguments: String::new(),
                        });
                    }
                    Some("text") => {
                        if let Some(text) = b
                            .get("text")
                            .and_then(Value::as_str)
                            .filter(|t| !t.is_empty())
                        {
                            events.push(ProviderEvent::TextDelta(text.to_string()));
                        }
                    }
                    _ => {}
                }
            }
            "content_block_delta" => {
                let d = event.get("delta").cloned().unwrap_or_default();
                match d.get("type").and_then(Value::as_str) {
                    Some("text_delta") => {
                        if let Some(text) = d.get("text").and_then(Value::as_str) {
                            events.push(ProviderEvent::TextDelta(text.to_string()));
                        }
                    }
                    Some("input_json_delta") => {
                        let index = self.tool_index(block);
                        events.push(ProviderEvent::ToolCallDelta {
                            index,
                            id: None,
                            name: None,
                            arguments: d
                                .get("partial_json")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_string(),
                        });
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(reason) = event.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.stop = match reason {
                        "tool_use" => StopReason::ToolUse,
                        "max_tokens" => StopReason::Length,
                        "refusal" => StopReason::Error,
                        _ => StopReason::Stop,
                    };
                }
                if let Some(out) = n(&event, "/usage/output_tokens") {
                    self.usage.output = out;
                }
                if let Some(input) = n(&event, "/usage/input_tokens") {
                    self.usage.input = input;
                }
            }
            "message_stop" => {
                self.done = true;
                events.push(ProviderEvent::Usage(self.usage));
                let stop = if self.tools.is_empty() {
                    self.stop
                } else {
                    StopReason::ToolUse
                };
                events.push(ProviderEvent::Done(stop));
            }
            "error" => {
                let kind = event
                    .pointer("/error/type")
                    .and_then(Value::as_str)
                    .unwrap_or("error");
                let message = event
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .unwrap_or("an error in the stream");
                // Mid-stream errors are the server's (overloaded_error, api_error).
                return Err(ProviderError::Server {
                    provider: self.http.id().to_string(),
                    status: if kind == "overloaded_error" { 529 } else { 500 },
                    message: format!("{kind}: {message}"),
                });
            }
            // ping, content_block_stop and anything newer.
            _ => {}
        }
        Ok(events)
    }

    fn finished(&self) -> bool {
        self.done
    }
}
