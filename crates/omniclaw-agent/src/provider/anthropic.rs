//! `anthropic-messages`: `POST {baseUrl}/v1/messages` with `x-api-key` and
//! `anthropic-version`, the system prompt as a top-level field, tool calls
//! as `tool_use` blocks and their results as `tool_result` blocks in a user
//! turn. The stream is SSE: `message_start` (input usage),
//! `content_block_start` / `content_block_delta` (`text_delta`,
//! `input_json_delta`), `message_delta` (`stop_reason`, output usage),
//! `message_stop`.

use std::collections::HashMap;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;
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

/// The request body, written straight from the request (a turn's body
/// holds the whole history; see `chat` for why no `Value` tree is built).
/// Turns alternate, so consecutive messages of one role (tool results of
/// several calls) are merged into one turn.
#[derive(Serialize)]
pub(crate) struct Body<'a> {
    model: &'a str,
    max_tokens: u32,
    messages: Vec<Turn<'a>>,
    stream: bool,
    #[serde(skip_serializing_if = "str::is_empty")]
    system: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<Tool<'a>>,
}

#[derive(Serialize)]
struct Turn<'a> {
    role: &'static str,
    content: Vec<Block<'a>>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block<'a> {
    Text {
        text: &'a str,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: &'a Value,
    },
    ToolResult {
        tool_use_id: &'a str,
        content: String,
        is_error: bool,
    },
}

#[derive(Serialize)]
struct Tool<'a> {
    name: &'a str,
    description: &'a str,
    input_schema: &'a Value,
}

pub(crate) fn body(request: &CompletionRequest, default_max: Option<u32>) -> Body<'_> {
    let mut turns: Vec<Turn> = Vec::new();
    for m in request.messages.iter() {
        let (role, blocks) = match m {
            Message::User(u) => ("user", vec![Block::Text { text: &u.content }]),
            Message::Assistant(a) => {
                let blocks: Vec<Block> = a
                    .content
                    .iter()
                    .filter_map(|b| match b {
                        AssistantBlock::Text { text } if text.is_empty() => None,
                        AssistantBlock::Text { text } => Some(Block::Text { text }),
                        AssistantBlock::ToolCall(c) => Some(Block::ToolUse {
                            id: &c.id,
                            name: &c.name,
                            input: &c.arguments,
                        }),
                    })
                    .collect();
                ("assistant", blocks)
            }
            Message::ToolResult(r) => (
                "user",
                vec![Block::ToolResult {
                    tool_use_id: &r.tool_call_id,
                    content: r.text(),
                    is_error: r.is_error,
                }],
            ),
        };
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some(last) if last.role == role => last.content.extend(blocks),
            _ => turns.push(Turn {
                role,
                content: blocks,
            }),
        }
    }
    Body {
        model: &request.model,
        max_tokens: request
            .max_tokens
            .or(default_max)
            .unwrap_or(DEFAULT_MAX_TOKENS),
        messages: turns,
        stream: true,
        system: &request.system,
        tools: request
            .tools
            .iter()
            .map(|t| Tool {
                name: &t.name,
                description: &t.description,
                input_schema: &t.parameters,
            })
            .collect(),
    }
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
