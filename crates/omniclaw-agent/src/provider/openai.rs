//! `openai-completions`: `POST {baseUrl}/chat/completions` with
//! `stream: true`, answered as SSE `data:` chunks ending in `data: [DONE]`.
//! Tool calls arrive as deltas keyed by `index`, their argument JSON split
//! across chunks; usage comes in a last chunk with empty `choices` when
//! `stream_options.include_usage` is set.

use async_trait::async_trait;
use serde::Serialize;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::chat::{self, FunctionTools, Messages, Shape};
use super::http::{self, Decoder, Endpoint, Http};
use super::{CompletionRequest, EventStream, Provider, ProviderError, ProviderEvent, TokenCounts};
use crate::message::StopReason;

pub struct OpenAi {
    http: Http,
}

impl OpenAi {
    pub fn new(endpoint: Endpoint) -> Result<OpenAi, ProviderError> {
        Ok(OpenAi {
            http: Http::new(endpoint)?,
        })
    }
}

#[async_trait]
impl Provider for OpenAi {
    fn id(&self) -> &str {
        self.http.id()
    }

    fn api(&self) -> &str {
        "openai-completions"
    }

    async fn stream(
        &self,
        request: CompletionRequest,
        cancel: CancellationToken,
    ) -> Result<EventStream, ProviderError> {
        let key = self.http.key()?;
        let body = body(&request, self.http.endpoint.max_tokens);
        let auth = chat::bearer(key.as_deref());
        let response = self
            .http
            .post("/chat/completions", &auth, &body, key.as_deref(), &cancel)
            .await?;
        let frames = http::sse_frames(&self.http, response);
        Ok(http::drive(
            &self.http,
            frames,
            Chunks::new(&self.http),
            cancel,
        ))
    }
}

/// How OpenAI writes a call (arguments as JSON text) and a result.
static SHAPE: Shape = Shape {
    call: |c| {
        json!({
            "id": c.id,
            "type": "function",
            "function": {"name": c.name, "arguments": c.arguments.to_string()},
        })
    },
    result: |r| json!({"role": "tool", "tool_call_id": r.tool_call_id, "content": r.text()}),
    no_text: Value::Null,
};

/// The request body, written straight from the request (see [`chat`]).
#[derive(Serialize)]
pub(crate) struct Body<'a> {
    model: &'a str,
    messages: Messages<'a>,
    stream: bool,
    stream_options: StreamOptions,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tools: Option<FunctionTools<'a>>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

pub(crate) fn body(request: &CompletionRequest, default_max: Option<u32>) -> Body<'_> {
    Body {
        model: &request.model,
        messages: Messages::new(request, &SHAPE),
        stream: true,
        stream_options: StreamOptions {
            include_usage: true,
        },
        max_tokens: request.max_tokens.or(default_max),
        tools: chat::function_tools(request),
    }
}

/// Reads the chunks of one completion.
struct Chunks {
    http: Http,
    stop: Option<StopReason>,
    saw_tool_call: bool,
    done: bool,
}

impl Chunks {
    fn new(http: &Http) -> Chunks {
        Chunks {
            http: http.clone(),
            stop: None,
            saw_tool_call: false,
            done: false,
        }
    }
}

impl Decoder for Chunks {
    type Frame = (String, String);

    fn frame(&mut self, (_, data): (String, String)) -> Result<Vec<ProviderEvent>, ProviderError> {
        let data = data.trim();
        if data == "[DONE]" {
            self.done = true;
            let stop = match self.stop {
                _ if self.saw_tool_call => StopReason::ToolUse,
                Some(stop) => stop,
                None => StopReason::Stop,
            };
            return Ok(vec![ProviderEvent::Done(stop)]);
        }
        if data.is_empty() {
            return Ok(Vec::new());
        }
        let chunk: Value = serde_json::from_str(data).map_err(|e| {
            self.http
                .protocol(&format!("a chunk is not JSON ({e}): {data}"))
        })?;
        if let Some(error) = chunk.get("error") {
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("an error in the stream");
            return Err(ProviderError::Server {
                provider: self.http.id().to_string(),
                status: 200,
                message: message.to_string(),
            });
        }
        let mut events = Vec::new();
        for choice in chunk
            .get("choices")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let delta = choice.get("delta");
            if let Some(text) = delta.and_then(|d| d.get("content")).and_then(Value::as_str) {
                if !text.is_empty() {
                    events.push(ProviderEvent::TextDelta(text.to_string()));
                }
            }
            for call in delta
                .and_then(|d| d.get("tool_calls"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                self.saw_tool_call = true;
                let function = call.get("function");
                let index = call
                    .get("index")
                    .and_then(Value::as_u64)
                    .and_then(|i| usize::try_from(i).ok())
                    .unwrap_or(0);
                events.push(ProviderEvent::ToolCallDelta {
                    index,
                    id: call.get("id").and_then(Value::as_str).map(str::to_string),
                    name: function
                        .and_then(|f| f.get("name"))
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    arguments: function
                        .and_then(|f| f.get("arguments"))
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                });
            }
            if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
                self.stop = Some(match reason {
                    "length" => StopReason::Length,
                    "tool_calls" | "function_call" => StopReason::ToolUse,
                    "content_filter" => StopReason::Error,
                    _ => StopReason::Stop,
                });
            }
        }
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            let n = |p: &str| usage.pointer(p).and_then(Value::as_u64).unwrap_or(0);
            let cached = n("/prompt_tokens_details/cached_tokens");
            events.push(ProviderEvent::Usage(TokenCounts {
                // OpenAI counts cached prompt tokens inside prompt_tokens.
                input: n("/prompt_tokens").saturating_sub(cached),
                output: n("/completion_tokens"),
                cache_read: cached,
                cache_write: 0,
            }));
        }
        Ok(events)
    }

    fn finished(&self) -> bool {
        self.done
    }
}
