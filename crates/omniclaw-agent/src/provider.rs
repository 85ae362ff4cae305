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
    pub messages: Vec<Message>,
    pub tools: Vec<ToolSpec>,
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
    use super::*;

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
