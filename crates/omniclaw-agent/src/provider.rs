//! Model providers: one [`Provider`] per configured `models.providers.<id>`,
//! speaking its `api` (`openai-completions`, `anthropic-messages`, `ollama`).
//!
//! Each adapter parses its wire format into one internal event stream
//! ([`ProviderEvent`]); nothing outside the adapter knows which provider
//! spoke. Errors are sorted so the loop can decide: a wrong key is not a
//! reason to retry, a 429 says when to come back, a 5xx or a timeout moves on
//! to the fallbacks.

pub mod anthropic;
mod chat;
pub(crate) mod http;
pub mod models;
pub mod ollama;
pub mod openai;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use omniclaw_core::config::{ProviderApi, ProviderConfig};

use crate::clock::Clock;
use crate::message::{Message, StopReason};

pub use http::Endpoint;

/// What a provider is asked: the system prompt, the history (already cut to
/// the model's window) and the tools the model may call.
#[derive(Debug, Clone)]
pub struct CompletionRequest {
    /// The provider-local model id (`gpt-4o`, `llama3.1:8b`).
    pub model: String,
    pub system: String,
    pub messages: Arc<Vec<Message>>,
    pub tools: Arc<[ToolSpec]>,
    /// Most tokens to generate (`maxTokens` of the model or provider).
    pub max_tokens: Option<u32>,
    /// The model's context window; Ollama is sent it as `num_ctx`.
    pub context_window: Option<u32>,
}

/// A tool as the model sees it: name, description, JSON Schema of its
/// arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub parameters: Value,
}

/// One piece of a streamed completion.
#[derive(Debug, Clone, PartialEq)]
pub enum ProviderEvent {
    /// Visible text, in order.
    TextDelta(String),
    /// Part of a tool call. Calls are told apart by `index`; `id` and `name`
    /// come with the first piece of a call, `arguments` is a fragment of its
    /// JSON text (fragments are concatenated, then parsed at `Done`).
    ToolCallDelta {
        index: usize,
        id: Option<String>,
        name: Option<String>,
        arguments: String,
    },
    /// Token counts as the provider reported them (may come more than once;
    /// the last one wins).
    Usage(TokenCounts),
    /// The model finished this completion.
    Done(StopReason),
}

/// Raw token counts of one call (cost is priced later from the model's `cost`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenCounts {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
}

/// Why a provider call failed. Never holds an API key: texts a provider sent
/// back pass [`redact_key`] before they land here.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProviderError {
    #[error("{provider} refused the API key (HTTP 401): {message}; store the right key with `secrets set models.providers.{provider}.apiKey`")]
    Unauthorized { provider: String, message: String },
    /// The key could not be read (not stored, its variable unset, the
    /// store unreachable): nothing was sent. `detail` names the key and
    /// the fix.
    #[error("{provider} was not called: its API key cannot be read: {detail}")]
    KeyUnreadable { provider: String, detail: String },
    #[error("{provider} denied access (HTTP 403): {message}; check the key's permissions and the model id")]
    Forbidden { provider: String, message: String },
    #[error("{provider} is rate limiting (HTTP 429){}: {message}", retry_after.map(|d| format!(", retry after {} s", d.as_secs())).unwrap_or_default())]
    RateLimited {
        provider: String,
        retry_after: Option<Duration>,
        message: String,
    },
    #[error("{provider} failed (HTTP {status}): {message}")]
    Server {
        provider: String,
        status: u16,
        message: String,
    },
    #[error("{provider} rejected the request (HTTP {status}): {message}")]
    BadRequest {
        provider: String,
        status: u16,
        message: String,
    },
    #[error("{provider} did not answer within {} s", after.as_secs())]
    Timeout { provider: String, after: Duration },
    #[error("cannot reach {provider} at {url}: {detail}")]
    Unreachable {
        provider: String,
        url: String,
        detail: String,
    },
    #[error("{provider} cut the stream before it finished: {detail}")]
    Cut { provider: String, detail: String },
    #[error("{provider} sent something that is not its API's format: {detail}")]
    Protocol { provider: String, detail: String },
    #[error("{provider}: refusing to send the API key in clear to {host} over plain http://; set models.providers.{provider}.baseUrl to an https:// URL")]
    Insecure { provider: String, host: String },
    #[error("the run was aborted")]
    Aborted,
}

impl ProviderError {
    /// Whether the next fallback should be tried: the provider is down,
    /// slow, limiting, or refuses this key (another provider has its own);
    /// a request it rejects as malformed would fail anywhere.
    pub fn falls_over(&self) -> bool {
        matches!(
            self,
            ProviderError::RateLimited { .. }
                | ProviderError::Server { .. }
                | ProviderError::Timeout { .. }
                | ProviderError::Unreachable { .. }
                | ProviderError::Cut { .. }
                | ProviderError::Unauthorized { .. }
                | ProviderError::KeyUnreadable { .. }
                | ProviderError::Forbidden { .. }
        )
    }
}

/// The API key of a provider, asked for at each call (a rotated key applies
/// to the next call without a restart). `None`: no key (local servers).
pub trait KeySource: Send + Sync {
    fn api_key(&self, provider: &str) -> Result<Option<String>, String>;
}

/// A streamed completion.
pub type EventStream = BoxStream<'static, Result<ProviderEvent, ProviderError>>;

/// One configured provider.
#[async_trait]
pub trait Provider: Send + Sync {
    /// The configured id (`models.providers.<id>`).
    fn id(&self) -> &str;
    /// The wire format (`openai-completions`, …).
    fn api(&self) -> &str;
    /// Starts a completion. Cancelling `cancel` ends the stream at once (the
    /// HTTP request is dropped).
    async fn stream(
        &self,
        request: CompletionRequest,
        cancel: CancellationToken,
    ) -> Result<EventStream, ProviderError>;
}

/// The adapter for one configured provider, by its `api`.
pub fn build(
    config: &ProviderConfig,
    keys: Arc<dyn KeySource>,
    clock: Arc<dyn Clock>,
    headers: Vec<(String, String)>,
) -> Result<Arc<dyn Provider>, ProviderError> {
    let endpoint = Endpoint {
        id: config.id.clone(),
        base_url: config.base_url.clone(),
        timeout: Duration::from_secs(config.timeout_seconds),
        max_tokens: config.max_tokens.and_then(|n| u32::try_from(n).ok()),
        headers,
        keys,
        clock,
    };
    Ok(match config.api {
        ProviderApi::OpenaiCompletions => Arc::new(openai::OpenAi::new(endpoint)?),
        ProviderApi::AnthropicMessages => Arc::new(anthropic::Anthropic::new(endpoint)?),
        ProviderApi::Ollama => Arc::new(ollama::Ollama::new(endpoint)?),
    })
}

/// Every provider of a config, by id. `headers` resolves the secret header
/// values of a provider (the caller reads secrets; this crate never does).
pub fn build_all(
    configs: &[ProviderConfig],
    keys: Arc<dyn KeySource>,
    clock: Arc<dyn Clock>,
    headers: impl Fn(&ProviderConfig) -> Vec<(String, String)>,
) -> Result<BTreeMap<String, Arc<dyn Provider>>, ProviderError> {
    configs
        .iter()
        .map(|c| {
            Ok((
                c.id.clone(),
                build(c, keys.clone(), clock.clone(), headers(c))?,
            ))
        })
        .collect()
}

/// Replaces every fragment of `key` (8 characters or more) in `text` with
/// `[redacted]`: providers' 401 texts echo parts of the key they refused.
pub fn redact_key(text: &str, key: &str) -> String {
    const MIN: usize = 8;
    let chars: Vec<char> = key.chars().collect();
    if chars.len() < MIN {
        return text.to_string();
    }
    let mut out = text.to_string();
    // Longest fragments first, so a whole key is one marker.
    for len in (MIN..=chars.len()).rev() {
        for start in 0..=chars.len() - len {
            let frag: String = chars[start..start + len].iter().collect();
            if out.contains(&frag) {
                out = out.replace(&frag, "[redacted]");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::message::{
        AssistantBlock, AssistantMessage, TextBlock, ToolCall, ToolResultMessage, Usage,
        UserMessage,
    };

    /// Every kind of message a body writes: a system prompt, text, a reply
    /// with text and a call, a reply with only a call, an empty reply (left
    /// out), tool results (an error among them), text that needs escaping,
    /// and a tool.
    fn every_kind() -> CompletionRequest {
        let user = |text: &str| {
            Message::User(UserMessage {
                content: text.into(),
                timestamp: 1,
                idempotency_key: Some("r:user".into()),
            })
        };
        let assistant = |content: Vec<AssistantBlock>| {
            Message::Assistant(AssistantMessage {
                content,
                api: "openai-completions".into(),
                provider: "p".into(),
                model: "m".into(),
                usage: Usage::default(),
                stop_reason: StopReason::Stop,
                error_message: None,
                timestamp: 2,
            })
        };
        let call = |id: &str| {
            AssistantBlock::ToolCall(ToolCall {
                id: id.into(),
                name: "calc".into(),
                arguments: json!({"b": 7, "a": 6}),
            })
        };
        let result = |id: &str, text: &str, is_error: bool| {
            Message::ToolResult(ToolResultMessage {
                tool_call_id: id.into(),
                tool_name: "calc".into(),
                content: vec![
                    TextBlock { text: text.into() },
                    TextBlock { text: "!".into() },
                ],
                is_error,
                timestamp: 3,
            })
        };
        CompletionRequest {
            model: "m1".into(),
            system: "Be brief.".into(),
            messages: vec![
                user("what is \"6*7\"?\n"),
                assistant(vec![
                    AssistantBlock::Text {
                        text: "Let me ".into(),
                    },
                    AssistantBlock::Text {
                        text: "compute.".into(),
                    },
                    call("c1"),
                ]),
                result("c1", "42", false),
                assistant(vec![call("c2"), call("c3")]),
                result("c2", "no", true),
                result("c3", "42", false),
                assistant(Vec::new()),
                assistant(vec![AssistantBlock::Text {
                    text: String::new(),
                }]),
                assistant(vec![AssistantBlock::Text {
                    text: "6*7 = 42.".into(),
                }]),
                user("thanks"),
            ]
            .into(),
            tools: vec![ToolSpec {
                name: "calc".into(),
                description: "Multiplies.".into(),
                parameters: json!({"type": "object", "properties": {"b": {"type": "number"}, "a": {"type": "number"}}, "required": ["a", "b"]}),
            }]
            .into(),
            max_tokens: None,
            context_window: Some(8192),
        }
    }

    /// The exact bytes each API is sent, key order included.
    #[test]
    fn each_api_is_sent_its_exact_body() {
        let request = every_kind();
        assert_eq!(
            text(&openai::body(&request, Some(99))),
            r#"{"model":"m1","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"what is \"6*7\"?\n"},{"role":"assistant","content":"Let me compute.","tool_calls":[{"id":"c1","type":"function","function":{"name":"calc","arguments":"{\"b\":7,\"a\":6}"}}]},{"role":"tool","tool_call_id":"c1","content":"42!"},{"role":"assistant","content":null,"tool_calls":[{"id":"c2","type":"function","function":{"name":"calc","arguments":"{\"b\":7,\"a\":6}"}},{"id":"c3","type":"function","function":{"name":"calc","arguments":"{\"b\":7,\"a\":6}"}}]},{"role":"tool","tool_call_id":"c2","content":"no!"},{"role":"tool","tool_call_id":"c3","content":"42!"},{"role":"assistant","content":"6*7 = 42."},{"role":"user","content":"thanks"}],"stream":true,"stream_options":{"include_usage":true},"max_tokens":99,"tools":[{"type":"function","function":{"name":"calc","description":"Multiplies.","parameters":{"type":"object","properties":{"b":{"type":"number"},"a":{"type":"number"}},"required":["a","b"]}}}]}"#
        );
        assert_eq!(
            text(&ollama::body(&request, Some(99))),
            r#"{"model":"m1","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"what is \"6*7\"?\n"},{"role":"assistant","content":"Let me compute.","tool_calls":[{"function":{"name":"calc","arguments":{"b":7,"a":6}}}]},{"role":"tool","content":"42!","tool_name":"calc"},{"role":"assistant","content":"","tool_calls":[{"function":{"name":"calc","arguments":{"b":7,"a":6}}},{"function":{"name":"calc","arguments":{"b":7,"a":6}}}]},{"role":"tool","content":"no!","tool_name":"calc"},{"role":"tool","content":"42!","tool_name":"calc"},{"role":"assistant","content":"6*7 = 42."},{"role":"user","content":"thanks"}],"stream":true,"options":{"num_ctx":8192,"num_predict":99},"tools":[{"type":"function","function":{"name":"calc","description":"Multiplies.","parameters":{"type":"object","properties":{"b":{"type":"number"},"a":{"type":"number"}},"required":["a","b"]}}}]}"#
        );
        assert_eq!(
            text(&anthropic::body(&request, Some(99))),
            r#"{"model":"m1","max_tokens":99,"messages":[{"role":"user","content":[{"type":"text","text":"what is \"6*7\"?\n"}]},{"role":"assistant","content":[{"type":"text","text":"Let me "},{"type":"text","text":"compute."},{"type":"tool_use","id":"c1","name":"calc","input":{"b":7,"a":6}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"c1","content":"42!","is_error":false}]},{"role":"assistant","content":[{"type":"tool_use","id":"c2","name":"calc","input":{"b":7,"a":6}},{"type":"tool_use","id":"c3","name":"calc","input":{"b":7,"a":6}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"c2","content":"no!","is_error":true},{"type":"tool_result","tool_use_id":"c3","content":"42!","is_error":false}]},{"role":"assistant","content":[{"type":"text","text":"6*7 = 42."}]},{"role":"user","content":[{"type":"text","text":"thanks"}]}],"stream":true,"system":"Be brief.","tools":[{"name":"calc","description":"Multiplies.","input_schema":{"type":"object","properties":{"b":{"type":"number"},"a":{"type":"number"}},"required":["a","b"]}}]}"#
        );
        let bare = CompletionRequest {
            system: String::new(),
            tools: Vec::new().into(),
            messages: vec![user_only()].into(),
            context_window: None,
            ..request
        };
        assert_eq!(
            text(&openai::body(&bare, None)),
            r#"{"model":"m1","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}"#
        );
        assert_eq!(
            text(&ollama::body(&bare, None)),
            r#"{"model":"m1","messages":[{"role":"user","content":"hi"}],"stream":true}"#
        );
        assert_eq!(
            text(&anthropic::body(&bare, None)),
            r#"{"model":"m1","max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}],"stream":true}"#
        );
    }

    fn user_only() -> Message {
        Message::User(UserMessage {
            content: "hi".into(),
            timestamp: 1,
            idempotency_key: None,
        })
    }

    fn text(body: &impl serde::Serialize) -> String {
        serde_json::to_string(body).expect("a body serializes")
    }

    #[test]
    fn key_fragments_are_redacted() {
        let key = "sk-live-0123456789abcdef";
        let text = "Incorrect API key provided: sk-live-****cdef. You passed sk-live-0123456789abcdef and 0123456789ab.";
        let out = redact_key(text, key);
        assert!(!out.contains("0123456789"), "{out}");
        assert!(!out.contains(key), "{out}");
        assert!(out.contains("Incorrect API key provided"));
        assert_eq!(redact_key("nothing here", key), "nothing here");
    }
}
