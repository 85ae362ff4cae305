//! The assistant's model, the step onboarding offers every profile: choose
//! a provider ([`probe_providers`]: every [`ProviderKind`], with a local
//! Ollama found where [`ollama_url`] says), give its key ([`ProviderDraft::new`] checks the
//! answers offline), list the models the key can use ([`list_models`]:
//! `/v1/models` for OpenAI-compatible servers and Anthropic, `/api/tags`
//! for Ollama), pick one ([`pick_model`]), send it one test message
//! through the real provider adapter and price the reply
//! ([`test_message`]), then [`model_plan`] says what the config gains and
//! which secret is stored; `write` carries it out with the other answers.
//!
//! Each step is a function the CLI and the desktop wizard call in turn,
//! any of them again after a wrong answer; none prints, reads the
//! environment or writes a file, and dropping a step's future cancels its
//! request. The API key stays
//! in memory (its `Debug` shows a fingerprint) until `write` puts it into
//! the secret store; the config only refers to it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Map, Value};
use tokio_util::sync::CancellationToken;

use omniclaw_agent::clock::{Clock, SystemClock};
use omniclaw_agent::message::{Message, UserMessage};
use omniclaw_agent::provider::models::{self, ListedModel};
use omniclaw_agent::provider::{
    self, CompletionRequest, Endpoint, KeySource, ProviderError, ProviderEvent, TokenCounts,
};
use omniclaw_agent::spend;
use omniclaw_core::advice::{host_of, NetFailure};
use omniclaw_core::config::{
    self, ModelCost, ModelDef, ModelRef, ProviderApi, ProviderConfig, KNOWN_PROVIDERS,
};
use omniclaw_os::secrets::{fingerprint, ProviderId, SecretName};

use crate::KEYCHAIN_REF;

/// Where a local Ollama listens unless told otherwise.
pub const OLLAMA_URL: &str = "http://127.0.0.1:11434";
/// What the test message asks.
pub const TEST_PROMPT: &str = "Say hello in one short sentence.";
/// The context window onboarding configures for an Ollama model at most.
/// Ollama sizes its memory for the window it is sent (`num_ctx`); the
/// whole window of a recent model (128k tokens) takes more memory than
/// most machines that run it locally have.
pub const OLLAMA_CONTEXT_CAP: u64 = 32_768;

/// How long [`detect_ollama`] waits for an answer.
const DETECT_WAIT: Duration = Duration::from_secs(2);
/// How long listing models may take.
const LIST_WAIT: Duration = Duration::from_secs(20);
/// How long the test message waits for the connection and for each next
/// piece of the reply.
const TEST_WAIT: Duration = Duration::from_secs(60);

/// The providers onboarding offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    OpenAi,
    Anthropic,
    OpenRouter,
    Ollama,
    /// Any other server speaking one of the three APIs (vLLM, LM Studio,
    /// llama.cpp's server, Groq, a remote Ollama…).
    Custom,
}

/// Whether a provider wants an API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyNeed {
    Required,
    /// Local servers usually want none; a key given is sent.
    Optional,
}

impl ProviderKind {
    /// In the order they are offered.
    pub const ALL: [ProviderKind; 5] = [
        ProviderKind::OpenAi,
        ProviderKind::Anthropic,
        ProviderKind::OpenRouter,
        ProviderKind::Ollama,
        ProviderKind::Custom,
    ];

    /// The word for flags and the config id it defaults to: `openai`,
    /// `anthropic`, `openrouter`, `ollama`, `custom`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::OpenRouter => "openrouter",
            ProviderKind::Ollama => "ollama",
            ProviderKind::Custom => "custom",
        }
    }

    pub fn parse(text: &str) -> Option<ProviderKind> {
        ProviderKind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(text.trim()))
    }

    /// For people.
    pub fn label(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "OpenAI",
            ProviderKind::Anthropic => "Anthropic",
            ProviderKind::OpenRouter => "OpenRouter",
            ProviderKind::Ollama => "Ollama (local models)",
            ProviderKind::Custom => "another server (OpenAI-compatible, Anthropic or Ollama API)",
        }
    }

    /// The API it speaks; a custom server's is chosen.
    pub fn api(self) -> Option<ProviderApi> {
        self.known().map(|(api, _)| api)
    }

    /// Its base URL; a custom server's is given.
    pub fn base_url(self) -> Option<&'static str> {
        self.known().map(|(_, url)| url)
    }

    fn known(self) -> Option<(ProviderApi, &'static str)> {
        KNOWN_PROVIDERS
            .iter()
            .find(|(id, _, _)| *id == self.as_str())
            .map(|(_, api, url)| (*api, *url))
    }

    pub fn key_need(self) -> KeyNeed {
        match self {
            ProviderKind::OpenAi | ProviderKind::Anthropic | ProviderKind::OpenRouter => {
                KeyNeed::Required
            }
            ProviderKind::Ollama | ProviderKind::Custom => KeyNeed::Optional,
        }
    }

    /// Where its keys are made, for people who have none yet.
    pub fn key_page(self) -> Option<&'static str> {
        match self {
            ProviderKind::OpenAi => Some("https://platform.openai.com/api-keys"),
            ProviderKind::Anthropic => Some("https://console.anthropic.com/settings/keys"),
            ProviderKind::OpenRouter => Some("https://openrouter.ai/keys"),
            ProviderKind::Ollama | ProviderKind::Custom => None,
        }
    }
}

impl std::fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a model step refused; each says what to do. None holds a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error("{provider} needs an API key{}", page.map_or(String::new(), |p| format!(" (create one at {p})")))]
    KeyMissing {
        provider: String,
        page: Option<&'static str>,
    },
    #[error(
        "the API key for {provider} is not one line of text without spaces: paste the key alone"
    )]
    KeyShape { provider: String },
    #[error("{0:?} is not a provider id: use lower-case letters, digits, `-` and `_`, starting with a letter (like \"local\")")]
    BadId(String),
    #[error("the base URL {url:?} {reason}")]
    BadBaseUrl { url: String, reason: String },
    #[error("{kind} speaks {api}; only a custom provider takes another API")]
    BadApi {
        kind: ProviderKind,
        api: ProviderApi,
    },
    #[error("{provider} refused the API key (HTTP 401: {message}): check the key{}", page.map_or(String::new(), |p| format!(", or create a new one at {p}")))]
    Unauthorized {
        provider: String,
        message: String,
        page: Option<&'static str>,
    },
    #[error("{provider} denied this key (HTTP 403: {message}): give the key access to the models, or use another key")]
    Forbidden { provider: String, message: String },
    /// `what` says how, for people ("127.0.0.1:11434 refused the connection").
    #[error("cannot reach {provider} at {url} ({what}): check the base URL, the network, and that the server runs")]
    Unreachable {
        provider: String,
        url: String,
        what: String,
        failure: NetFailure,
    },
    #[error("{provider} did not answer within {secs} s: try again, or check the server")]
    Timeout { provider: String, secs: u64 },
    #[error("{provider} failed: {detail}")]
    Failed { provider: String, detail: String },
    #[error("{provider} lists no models{}", if *ollama { ": download one first, e.g. `ollama pull llama3.1:8b`" } else { " this key may use: check the key's project and permissions" })]
    NoModels { provider: String, ollama: bool },
    #[error("{provider} lists no model {model:?}{}", if listed.is_empty() { String::new() } else { format!("; it has: {}", listed.join(", ")) })]
    UnknownModel {
        provider: String,
        model: String,
        /// Some of the listed ids, the closest first.
        listed: Vec<String>,
    },
    #[error("{model} answered the test message with no text: choose another model")]
    EmptyReply { model: String },
    #[error("the config already has provider {id} with {key} {have:?}, not {want:?}: choose another provider id for this one")]
    ProviderClash {
        id: String,
        key: &'static str,
        have: String,
        want: String,
    },
}

impl ModelError {
    /// A wrong answer (as opposed to a failure of the machine, the network
    /// or the provider).
    pub fn is_usage(&self) -> bool {
        !matches!(
            self,
            ModelError::Unreachable { .. }
                | ModelError::Timeout { .. }
                | ModelError::Failed { .. }
                | ModelError::EmptyReply { .. }
        )
    }
}

/// A provider as answered: which one, its config id, API, base URL and key.
#[derive(Clone, PartialEq, Eq)]
pub struct ProviderDraft {
    pub kind: ProviderKind,
    /// `models.providers.<id>`.
    pub id: String,
    pub api: ProviderApi,
    /// Without a trailing `/`.
    pub base_url: String,
    /// The API key, held until `write` stores it.
    pub key: Option<String>,
}

// The key must never reach a log line.
impl std::fmt::Debug for ProviderDraft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderDraft")
            .field("kind", &self.kind)
            .field("id", &self.id)
            .field("api", &self.api)
            .field("base_url", &self.base_url)
            .field("key", &self.key.as_deref().map(fingerprint))
            .finish()
    }
}

impl ProviderDraft {
    /// Checks the answers about a provider without asking it anything:
    /// the id (default: the provider's word), the base URL (default: the
    /// known provider's; required for a custom one; plain `http://` only
    /// to this machine or its private network, so a key never travels in
    /// clear), the API (a custom server's; default `openai-completions`)
    /// and the key (required by OpenAI, Anthropic and OpenRouter).
    pub fn new(
        kind: ProviderKind,
        id: Option<&str>,
        base_url: Option<&str>,
        api: Option<ProviderApi>,
        key: Option<String>,
    ) -> Result<ProviderDraft, ModelError> {
        let id = id
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .unwrap_or(kind.as_str())
            .to_string();
        if !config::is_provider_id(&id) || ProviderId::parse(&id).is_none() {
            return Err(ModelError::BadId(id));
        }
        let api = match (kind.api(), api) {
            (Some(own), Some(other)) if own != other => {
                return Err(ModelError::BadApi { kind, api: other })
            }
            (Some(own), _) => own,
            (None, given) => given.unwrap_or(ProviderApi::OpenaiCompletions),
        };
        let base_url = match base_url.map(str::trim).filter(|s| !s.is_empty()) {
            Some(url) => check_url(url)?,
            None => match kind.base_url() {
                Some(url) => url.to_string(),
                None => {
                    return Err(ModelError::BadBaseUrl {
                        url: String::new(),
                        reason: "is missing: a custom provider needs the server's base URL, like \"http://127.0.0.1:8000/v1\"".into(),
                    })
                }
            },
        };
        let key = key.map(|k| k.trim().to_string()).filter(|k| !k.is_empty());
        match &key {
            Some(k) if k.chars().any(char::is_whitespace) => {
                return Err(ModelError::KeyShape { provider: id })
            }
            None if kind.key_need() == KeyNeed::Required => {
                return Err(ModelError::KeyMissing {
                    provider: id,
                    page: kind.key_page(),
                })
            }
            _ => {}
        }
        Ok(ProviderDraft {
            kind,
            id,
            api,
            base_url,
            key,
        })
    }

    /// Where the key is kept: the secret `models.providers.<id>.apiKey`.
    pub fn secret(&self) -> Option<SecretName> {
        self.key.as_ref()?;
        ProviderId::parse(&self.id).map(SecretName::ProviderApiKey)
    }

    fn endpoint(&self, timeout: Duration) -> Endpoint {
        Endpoint {
            id: self.id.clone(),
            base_url: self.base_url.clone(),
            timeout,
            max_tokens: None,
            headers: Vec::new(),
            keys: Arc::new(Given(self.key.clone())),
            clock: Arc::new(SystemClock),
        }
    }

    fn error(&self, e: ProviderError) -> ModelError {
        let provider = self.id.clone();
        match e {
            ProviderError::Unauthorized { message, .. } => ModelError::Unauthorized {
                provider,
                message,
                page: self.kind.key_page(),
            },
            ProviderError::Forbidden { message, .. } => {
                ModelError::Forbidden { provider, message }
            }
            ProviderError::Unreachable { url, detail, .. } => {
                let failure = NetFailure::of_text(&detail);
                ModelError::Unreachable {
                    provider,
                    what: failure.describe(host_of(&url)),
                    url: self.base_url.clone(),
                    failure,
                }
            }
            ProviderError::Timeout { after, .. } => ModelError::Timeout {
                provider,
                secs: after.as_secs(),
            },
            ProviderError::Insecure { host, .. } => ModelError::BadBaseUrl {
                url: self.base_url.clone(),
                reason: format!("is plain http:// to {host}, outside this machine and its private network: use https://"),
            },
            other => ModelError::Failed {
                provider,
                detail: other.to_string(),
            },
        }
    }
}

/// A base URL without its trailing `/`, or why it cannot be one.
fn check_url(url: &str) -> Result<String, ModelError> {
    let bad = |reason: &str| ModelError::BadBaseUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| {
            bad("does not start with https:// (or http:// for this machine or its private network)")
        })?;
    if host_of(rest).is_empty() || url.chars().any(char::is_whitespace) {
        return Err(bad("names no host"));
    }
    if let Some(host) = config::public_http_host(url) {
        let fixed = format!("https://{}", &url["http://".len()..]);
        return Err(bad(&format!(
            "is plain http:// to {host}, outside this machine and its private network: the API key would travel in clear; use {fixed:?}"
        )));
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// The key of one draft, for the provider adapter.
struct Given(Option<String>);

impl KeySource for Given {
    fn api_key(&self, _: &str) -> Result<Option<String>, String> {
        Ok(self.0.clone())
    }
}

/// One model a provider offers, as it will be configured.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    pub id: String,
    pub name: String,
    pub context_window: Option<u64>,
    /// USD per million tokens, when the provider publishes prices
    /// (OpenRouter) or runs locally (Ollama: free).
    pub cost: Option<ModelCost>,
}

impl ModelInfo {
    fn from_listed(m: ListedModel, kind: ProviderKind) -> ModelInfo {
        let local = kind == ProviderKind::Ollama;
        ModelInfo {
            name: m.name.unwrap_or_else(|| m.id.clone()),
            id: m.id,
            context_window: m.context_window,
            cost: m.cost.or(local.then(ModelCost::default)),
        }
    }
}

/// Where the local Ollama listens: `OLLAMA_HOST` read the way Ollama's own
/// command reads it (`host`, `host:port`, `scheme://host:port/path`; the
/// port 11434 unless a scheme is given; a bind-all address means this
/// machine), [`OLLAMA_URL`] when it is unset.
pub fn ollama_url(ollama_host: Option<&str>) -> String {
    let Some(raw) = ollama_host.map(str::trim).filter(|s| !s.is_empty()) else {
        return OLLAMA_URL.to_string();
    };
    let (scheme, rest, default_port) = match raw.split_once("://") {
        None => ("http", raw, "11434"),
        Some(("https", rest)) => ("https", rest, "443"),
        Some((_, rest)) => ("http", rest, "80"),
    };
    let (hostport, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (host, port) = match hostport.rsplit_once(':') {
        // `[::1]:11434`, `host:11434`, `:11434`; a bare IPv6 address has
        // more than one colon and no brackets.
        Some((h, p)) if p.parse::<u16>().is_ok() && (h.starts_with('[') || !h.contains(':')) => {
            (h, p)
        }
        _ => (hostport, default_port),
    };
    let host = match host.trim_matches(|c| c == '[' || c == ']') {
        "" | "0.0.0.0" => "127.0.0.1".to_string(),
        "::" => "[::1]".to_string(),
        h if h.contains(':') => format!("[{h}]"),
        h => h.to_string(),
    };
    let path = path.trim_end_matches('/');
    if path.is_empty() {
        format!("{scheme}://{host}:{port}")
    } else {
        format!("{scheme}://{host}:{port}/{path}")
    }
}

/// One provider as onboarding offers it, with what the user needs to know
/// before choosing: whether it wants a key and where keys are made, its
/// base URL, and for Ollama whether one runs here and with which models.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderOffer {
    pub kind: ProviderKind,
    pub key: KeyNeed,
    pub key_page: Option<&'static str>,
    /// The base URL used unless another is given; `None` for a custom
    /// server, whose URL must be given.
    pub base_url: Option<String>,
    /// The Ollama that answered at `base_url` (only for Ollama).
    pub running: Option<LocalOllama>,
}

impl ProviderOffer {
    /// The provider to suggest: a local Ollama that has models.
    pub fn suggested(offers: &[ProviderOffer]) -> Option<ProviderKind> {
        offers
            .iter()
            .find(|o| o.running.as_ref().is_some_and(|r| !r.models.is_empty()))
            .map(|o| o.kind)
    }
}

/// Every provider of [`ProviderKind::ALL`], in order, with a local Ollama
/// looked for at `ollama_url` (see [`ollama_url`]); takes at most 2 s.
pub async fn probe_providers(ollama_url: &str) -> Vec<ProviderOffer> {
    let running = detect_ollama(ollama_url).await;
    ProviderKind::ALL
        .into_iter()
        .map(|kind| {
            let local = kind == ProviderKind::Ollama;
            ProviderOffer {
                kind,
                key: kind.key_need(),
                key_page: kind.key_page(),
                base_url: if local {
                    Some(ollama_url.trim_end_matches('/').to_string())
                } else {
                    kind.base_url().map(str::to_string)
                },
                running: if local { running.clone() } else { None },
            }
        })
        .collect()
}

/// A local Ollama that answered.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalOllama {
    pub base_url: String,
    pub models: Vec<ModelInfo>,
}

/// Looks for an Ollama server at `base_url` ([`OLLAMA_URL`] unless the
/// caller knows better); `None` when nothing answers there within 2 s.
pub async fn detect_ollama(base_url: &str) -> Option<LocalOllama> {
    let draft = ProviderDraft::new(ProviderKind::Ollama, None, Some(base_url), None, None).ok()?;
    let listed = tokio::time::timeout(
        DETECT_WAIT,
        models::list(
            ProviderApi::Ollama,
            draft.endpoint(DETECT_WAIT),
            &CancellationToken::new(),
        ),
    )
    .await
    .ok()?
    .ok()?;
    let models = with_details(&draft, listed).await;
    Some(LocalOllama {
        base_url: draft.base_url,
        models,
    })
}

/// The models the provider lists for this key, sorted by id. This is the
/// key's check too: a refused key is [`ModelError::Unauthorized`]
/// (OpenRouter lists without looking at the key: its test message tells).
pub async fn list_models(draft: &ProviderDraft) -> Result<Vec<ModelInfo>, ModelError> {
    let listed = models::list(
        draft.api,
        draft.endpoint(LIST_WAIT),
        &CancellationToken::new(),
    )
    .await
    .map_err(|e| draft.error(e))?;
    if listed.is_empty() {
        return Err(ModelError::NoModels {
            provider: draft.id.clone(),
            ollama: draft.api == ProviderApi::Ollama,
        });
    }
    Ok(with_details(draft, listed).await)
}

/// Sorted, and Ollama's context windows asked for (capped at
/// [`OLLAMA_CONTEXT_CAP`]): without one, Ollama cuts every prompt to its
/// small default window.
async fn with_details(draft: &ProviderDraft, listed: Vec<ListedModel>) -> Vec<ModelInfo> {
    let mut out: Vec<ModelInfo> = listed
        .into_iter()
        .map(|m| ModelInfo::from_listed(m, draft.kind))
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out.dedup_by(|a, b| a.id == b.id);
    if draft.api == ProviderApi::Ollama {
        let cancel = CancellationToken::new();
        for m in out.iter_mut().filter(|m| m.context_window.is_none()) {
            if let Ok(Some(n)) =
                models::ollama_context_length(draft.endpoint(DETECT_WAIT), &m.id, &cancel).await
            {
                m.context_window = Some(n.min(OLLAMA_CONTEXT_CAP));
            }
        }
    }
    out
}

/// The model `wanted` names among `models`: its id, or its number in the
/// list (from 1). Otherwise the error lists the closest ids.
pub fn pick_model(
    draft: &ProviderDraft,
    models: &[ModelInfo],
    wanted: &str,
) -> Result<ModelInfo, ModelError> {
    let wanted = wanted.trim();
    if let Some(m) = models.iter().find(|m| m.id == wanted) {
        return Ok(m.clone());
    }
    if let Some(m) = wanted
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_sub(1))
        .and_then(|i| models.get(i))
    {
        return Ok(m.clone());
    }
    Err(ModelError::UnknownModel {
        provider: draft.id.clone(),
        model: wanted.to_string(),
        listed: closest(models, wanted, 10),
    })
}

/// Up to `n` ids, those containing `text` first.
pub fn closest(models: &[ModelInfo], text: &str, n: usize) -> Vec<String> {
    let text = text.to_ascii_lowercase();
    let (near, far): (Vec<&ModelInfo>, Vec<&ModelInfo>) = models
        .iter()
        .partition(|m| !text.is_empty() && m.id.to_ascii_lowercase().contains(&text));
    near.into_iter()
        .chain(far)
        .take(n)
        .map(|m| m.id.clone())
        .collect()
}

/// The model's answer to the test message.
#[derive(Debug, Clone, PartialEq)]
pub struct TestReply {
    pub text: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// What it cost in USD; `None` when the model's price is unknown.
    pub cost_usd: Option<f64>,
    pub elapsed: Duration,
}

/// Sends [`TEST_PROMPT`] to `model` through the provider adapter the
/// gateway uses, and prices the reply with the model's cost.
pub async fn test_message(
    draft: &ProviderDraft,
    model: &ModelInfo,
) -> Result<TestReply, ModelError> {
    let config = ProviderConfig {
        id: draft.id.clone(),
        api: draft.api,
        base_url: draft.base_url.clone(),
        api_key: None,
        timeout_seconds: TEST_WAIT.as_secs(),
        max_tokens: None,
        headers: Vec::new(),
        models: vec![def(model)],
        lists_models: true,
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let adapter = provider::build(
        &config,
        Arc::new(Given(draft.key.clone())),
        clock.clone(),
        Vec::new(),
    )
    .map_err(|e| draft.error(e))?;
    let request = CompletionRequest {
        model: model.id.clone(),
        system: String::new(),
        messages: vec![Message::User(UserMessage {
            content: TEST_PROMPT.to_string(),
            timestamp: clock.now_ms(),
            idempotency_key: None,
        })]
        .into(),
        tools: Vec::new().into(),
        max_tokens: None,
        context_window: model.context_window.and_then(|n| u32::try_from(n).ok()),
    };
    let started = Instant::now();
    let mut stream = adapter
        .stream(request, CancellationToken::new())
        .await
        .map_err(|e| draft.error(e))?;
    let mut text = String::new();
    let mut tokens = TokenCounts::default();
    while let Some(event) = stream.next().await {
        match event.map_err(|e| draft.error(e))? {
            ProviderEvent::TextDelta(t) => text.push_str(&t),
            ProviderEvent::Usage(u) => tokens = u,
            ProviderEvent::ToolCallDelta { .. } => {}
            ProviderEvent::Done(_) => break,
        }
    }
    let text = text.trim().to_string();
    if text.is_empty() {
        return Err(ModelError::EmptyReply {
            model: format!("{}/{}", draft.id, model.id),
        });
    }
    let usage = spend::price(tokens, model.cost.as_ref());
    Ok(TestReply {
        text,
        input_tokens: usage.input,
        output_tokens: usage.output,
        cost_usd: model.cost.map(|_| usage.cost.total),
        elapsed: started.elapsed(),
    })
}

fn def(model: &ModelInfo) -> ModelDef {
    ModelDef {
        id: model.id.clone(),
        name: model.name.clone(),
        context_window: model.context_window,
        max_tokens: None,
        cost: model.cost,
    }
}

/// The answers of the model step, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelAnswers {
    pub provider: ProviderDraft,
    pub model: ModelInfo,
}

impl ModelAnswers {
    /// `provider/model`, as `agents.defaults.model` names it.
    pub fn model_ref(&self) -> String {
        ModelRef {
            provider: self.provider.id.clone(),
            model: self.model.id.clone(),
        }
        .to_string()
    }
}

/// What the model step changes in a config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelPlan {
    /// Config edits as (path, JSON5 value), applied in order with the
    /// core's comment-keeping `set`; nothing the config has is dropped.
    pub edits: Vec<(String, String)>,
    /// The secret the key goes to (`models.providers.<id>.apiKey`).
    pub secret: Option<SecretName>,
    /// `provider/model`, the new primary model.
    pub model_ref: String,
    /// The primary it replaces, kept as the first fallback.
    pub replaced: Option<String>,
}

/// What `answers` change in the config `text` (`None`: a new profile).
/// A new provider is added whole; an existing one with the same id must
/// have the same base URL and API, and gains the key's reference and the
/// model (when it lists its models). The model becomes the primary; a
/// primary it replaces becomes the first fallback.
pub fn model_plan(text: Option<&str>, answers: &ModelAnswers) -> Result<ModelPlan, ModelError> {
    let root = text
        .and_then(|t| config::parse(t).ok())
        .map(|d| d.into_value())
        .unwrap_or(Value::Null);
    let draft = &answers.provider;
    let id = &draft.id;
    let at = format!("models.providers.{id}");
    let mut edits: Vec<(String, String)> = Vec::new();
    let entry = model_entry(&answers.model);
    let known = KNOWN_PROVIDERS.iter().find(|(k, _, _)| k == id);
    match root.pointer(&format!("/models/providers/{id}")) {
        None => {
            let mut p = Map::new();
            if known.map(|(_, _, url)| *url) != Some(draft.base_url.as_str()) {
                p.insert("baseUrl".into(), json!(draft.base_url));
            }
            if known.map(|(_, api, _)| *api) != Some(draft.api) {
                p.insert("api".into(), json!(draft.api.as_str()));
            }
            if draft.key.is_some() {
                p.insert("apiKey".into(), json!({"source": "keychain"}));
            }
            p.insert("models".into(), json!([entry]));
            edits.push((at.clone(), Value::Object(p).to_string()));
        }
        Some(existing) => {
            let have_url = existing
                .get("baseUrl")
                .and_then(Value::as_str)
                .or(known.map(|(_, _, url)| *url))
                .unwrap_or_default()
                .trim_end_matches('/');
            if have_url != draft.base_url {
                return Err(ModelError::ProviderClash {
                    id: id.clone(),
                    key: "baseUrl",
                    have: have_url.to_string(),
                    want: draft.base_url.clone(),
                });
            }
            let have_api = existing
                .get("api")
                .and_then(Value::as_str)
                .and_then(ProviderApi::parse)
                .or(known.map(|(_, api, _)| *api))
                .unwrap_or(ProviderApi::OpenaiCompletions);
            if have_api != draft.api {
                return Err(ModelError::ProviderClash {
                    id: id.clone(),
                    key: "api",
                    have: have_api.as_str().to_string(),
                    want: draft.api.as_str().to_string(),
                });
            }
            let keyed = existing.get("apiKey") == Some(&json!({"source": "keychain"}));
            if draft.key.is_some() && !keyed {
                edits.push((format!("{at}.apiKey"), KEYCHAIN_REF.to_string()));
            }
            if let Some(list) = existing.get("models").and_then(Value::as_array) {
                let listed = list
                    .iter()
                    .any(|m| m.get("id").and_then(Value::as_str) == Some(&answers.model.id));
                if !listed {
                    edits.push((format!("{at}.models[{}]", list.len()), entry.to_string()));
                }
            }
        }
    }
    let model_ref = answers.model_ref();
    let (primary, fallbacks): (Option<String>, Vec<String>) =
        match root.pointer("/agents/defaults/model") {
            Some(Value::String(s)) => (Some(s.clone()), Vec::new()),
            Some(obj @ Value::Object(_)) => (
                obj.get("primary")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                obj.get("fallbacks")
                    .and_then(Value::as_array)
                    .map(|f| {
                        f.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
            _ => (None, Vec::new()),
        };
    let replaced = primary.filter(|p| *p != model_ref);
    if let Some(old) = &replaced {
        let mut chain = vec![old.clone()];
        chain.extend(
            fallbacks
                .into_iter()
                .filter(|f| *f != model_ref && f != old),
        );
        edits.push((
            "agents.defaults.model".into(),
            json!({"primary": model_ref, "fallbacks": chain}).to_string(),
        ));
    } else if root.pointer("/agents/defaults/model/primary").is_none()
        && !matches!(
            root.pointer("/agents/defaults/model"),
            Some(Value::String(_))
        )
    {
        edits.push((
            "agents.defaults.model.primary".into(),
            json!(model_ref).to_string(),
        ));
    }
    Ok(ModelPlan {
        edits,
        secret: draft.secret(),
        model_ref,
        replaced,
    })
}

/// `models.providers.<id>.models[]`'s entry for `model`.
fn model_entry(model: &ModelInfo) -> Value {
    let mut entry = json!({"id": model.id, "name": model.name});
    if let Some(n) = model.context_window {
        entry["contextWindow"] = json!(n);
    }
    if let Some(c) = model.cost {
        let mut cost = json!({"input": c.input, "output": c.output});
        if c.cache_read > 0.0 {
            cost["cacheRead"] = json!(c.cache_read);
        }
        if c.cache_write > 0.0 {
            cost["cacheWrite"] = json!(c.cache_write);
        }
        entry["cost"] = cost;
    }
    entry
}

/// The primary model a config names, if any.
pub fn configured_model(config: &config::Config) -> Option<String> {
    config.agents.defaults.model.primary.clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use omniclaw_agent::double::{Double, Reply};

    const KEY: &str = "sk-onboard-right-key-0123456789";
    const WRONG: &str = "sk-onboard-wrong-key-9876543210";

    fn draft(kind: ProviderKind, base_url: &str, key: Option<&str>) -> ProviderDraft {
        ProviderDraft::new(kind, None, Some(base_url), None, key.map(str::to_string))
            .expect("a draft")
    }

    fn dead_url() -> String {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = closed.local_addr().expect("addr").port();
        drop(closed);
        format!("http://127.0.0.1:{port}")
    }

    #[test]
    fn drafts_are_checked_before_anything_is_asked() {
        let ok = ProviderDraft::new(
            ProviderKind::OpenAi,
            None,
            None,
            None,
            Some(format!(" {KEY}\n")),
        )
        .expect("openai");
        assert_eq!(ok.id, "openai");
        assert_eq!(ok.base_url, "https://api.openai.com/v1");
        assert_eq!(ok.api, ProviderApi::OpenaiCompletions);
        assert_eq!(ok.key.as_deref(), Some(KEY), "trimmed");
        assert!(
            !format!("{ok:?}").contains(KEY),
            "Debug shows a fingerprint"
        );
        assert_eq!(
            ok.secret().map(|s| s.path().into_owned()),
            Some("models.providers.openai.apiKey".to_string())
        );
        let custom = ProviderDraft::new(
            ProviderKind::Custom,
            Some("vllm"),
            Some("http://10.0.0.5:8000/v1/"),
            Some(ProviderApi::OpenaiCompletions),
            None,
        )
        .expect("custom");
        assert_eq!(custom.base_url, "http://10.0.0.5:8000/v1");
        assert_eq!(custom.secret(), None, "no key, no secret");

        let table: Vec<(ProviderDraftInput, &str)> = vec![
            ((ProviderKind::Anthropic, None, None, None, None), "anthropic needs an API key (create one at https://console.anthropic.com/settings/keys)"),
            ((ProviderKind::OpenAi, None, None, None, Some("sk two words")), "the API key for openai is not one line"),
            ((ProviderKind::Custom, None, None, None, None), "a custom provider needs the server's base URL"),
            ((ProviderKind::Custom, None, Some("http://api.example.com/v1"), None, None), "is plain http:// to api.example.com"),
            ((ProviderKind::Custom, None, Some("ftp://x"), None, None), "does not start with https://"),
            ((ProviderKind::Custom, Some("My Server"), Some("http://127.0.0.1:1"), None, None), "\"My Server\" is not a provider id"),
            ((ProviderKind::OpenAi, None, None, Some(ProviderApi::Ollama), Some(KEY)), "openai speaks ollama; only a custom provider"),
        ];
        for ((kind, id, url, api, key), expected) in table {
            let err = ProviderDraft::new(kind, id, url, api, key.map(str::to_string))
                .expect_err(expected);
            assert!(err.to_string().contains(expected), "{err} ≠ {expected}");
            assert!(err.is_usage());
        }
    }

    type ProviderDraftInput = (
        ProviderKind,
        Option<&'static str>,
        Option<&'static str>,
        Option<ProviderApi>,
        Option<&'static str>,
    );

    #[tokio::test]
    async fn the_key_is_checked_by_listing_and_the_reply_is_priced() {
        let double = Double::start().await.expect("double");
        double.list_model("small", Some((1.0, 2.0)));
        double.list_model("big", None);
        double.require_key(KEY);
        let base = double.base_url("openai-completions");

        let wrong = draft(ProviderKind::OpenAi, &base, Some(WRONG));
        let err = list_models(&wrong).await.expect_err("401");
        assert!(matches!(err, ModelError::Unauthorized { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("openai refused the API key (HTTP 401"),
            "{text}"
        );
        assert!(
            text.contains("https://platform.openai.com/api-keys"),
            "{text}"
        );
        assert!(!text.contains("9876543210"), "the key is redacted: {text}");
        assert!(err.is_usage());

        let right = draft(ProviderKind::OpenAi, &base, Some(KEY));
        let models = list_models(&right).await.expect("listed");
        let ids: Vec<&str> = models.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, vec!["big", "small"], "sorted");
        let small = pick_model(&right, &models, "small").expect("by id");
        assert_eq!(pick_model(&right, &models, "2").expect("by number"), small);
        assert_eq!(small.name, "Double small");
        assert_eq!(small.context_window, Some(32768));
        let missing = pick_model(&right, &models, "smal").expect_err("no such model");
        assert_eq!(
            missing.to_string(),
            "openai lists no model \"smal\"; it has: small, big"
        );

        double.push(Reply::text("Hello from the double.").usage(1000, 500));
        let reply = test_message(&right, &small).await.expect("replied");
        assert_eq!(reply.text, "Hello from the double.");
        assert_eq!((reply.input_tokens, reply.output_tokens), (1000, 500));
        let cost = reply.cost_usd.expect("priced");
        assert!((cost - 0.002).abs() < 1e-12, "{cost}");
        let chat = double.chats().pop().expect("a chat");
        assert_eq!(chat.body["model"], "small");
        assert_eq!(chat.body["messages"][0]["content"], TEST_PROMPT);
        assert_eq!(
            chat.header("authorization"),
            Some(format!("Bearer {KEY}").as_str())
        );

        // No price known: the cost is unknown, not zero.
        let big = pick_model(&right, &models, "big").expect("big");
        double.push(Reply::text("Hi."));
        assert_eq!(
            test_message(&right, &big).await.expect("replied").cost_usd,
            None
        );

        // A refusal at the test message (OpenRouter lists without the key).
        let err = test_message(&wrong, &small).await.expect_err("401");
        assert!(matches!(err, ModelError::Unauthorized { .. }), "{err:?}");
        double.push(Reply::text(""));
        assert!(matches!(
            test_message(&right, &small).await,
            Err(ModelError::EmptyReply { .. })
        ));
    }

    #[tokio::test]
    async fn anthropic_and_ollama_speak_their_own_apis() {
        let double = Double::start().await.expect("double");
        double.list_model("claude-test", None);
        let anthropic = draft(
            ProviderKind::Anthropic,
            &double.base_url("anthropic-messages"),
            Some(KEY),
        );
        let models = list_models(&anthropic).await.expect("listed");
        double.push(Reply::text("Hello from Claude.").usage(10, 5));
        let reply = test_message(&anthropic, &models[0]).await.expect("replied");
        assert_eq!(reply.text, "Hello from Claude.");
        let chat = double.chats().pop().expect("a chat");
        assert_eq!(chat.path, "/v1/messages");
        assert_eq!(chat.header("x-api-key"), Some(KEY));

        assert_eq!(detect_ollama(&dead_url()).await, None, "nothing there");
        let base = double.base_url("ollama");
        let empty = detect_ollama(&base).await.expect("found");
        assert!(empty.models.is_empty());
        let ollama = draft(ProviderKind::Ollama, &base, None);
        let err = list_models(&ollama).await.expect_err("no models");
        assert!(err.to_string().contains("ollama pull"), "{err}");
        double.set_capabilities("llama3.1:8b", &["completion", "tools"]);
        double.set_context_length("llama3.1:8b", 131_072);
        let found = detect_ollama(&base).await.expect("found");
        assert_eq!(found.base_url, base);
        let llama = &found.models[0];
        assert_eq!(llama.id, "llama3.1:8b");
        assert_eq!(llama.context_window, Some(OLLAMA_CONTEXT_CAP));
        assert_eq!(llama.cost, Some(ModelCost::default()), "local is free");
        double.push(Reply::text("Hello from llama.").usage(30, 6));
        let reply = test_message(&ollama, llama).await.expect("replied");
        assert_eq!(reply.cost_usd, Some(0.0));
        let chat = double.chats().pop().expect("a chat");
        assert_eq!(chat.path, "/api/chat");
        assert_eq!(chat.body["options"]["num_ctx"], OLLAMA_CONTEXT_CAP);
    }

    #[test]
    fn ollama_host_is_read_as_ollama_reads_it() {
        let table = [
            (None, "http://127.0.0.1:11434"),
            (Some(""), "http://127.0.0.1:11434"),
            (Some("0.0.0.0"), "http://127.0.0.1:11434"),
            (Some("0.0.0.0:9999"), "http://127.0.0.1:9999"),
            (Some(":9999"), "http://127.0.0.1:9999"),
            (Some("gpu-box"), "http://gpu-box:11434"),
            (Some("10.0.0.7:8080"), "http://10.0.0.7:8080"),
            (Some("http://10.0.0.7"), "http://10.0.0.7:80"),
            (
                Some("https://ollama.example.com/"),
                "https://ollama.example.com:443",
            ),
            (
                Some("https://example.com:8443/ollama/"),
                "https://example.com:8443/ollama",
            ),
            (Some("[::1]:9999"), "http://[::1]:9999"),
            (Some("::1"), "http://[::1]:11434"),
            (Some("[::]"), "http://[::1]:11434"),
        ];
        for (host, expected) in table {
            assert_eq!(ollama_url(host), expected, "{host:?}");
        }
    }

    #[tokio::test]
    async fn probing_offers_every_provider_and_suggests_a_running_ollama() {
        let dead = dead_url();
        let offers = probe_providers(&dead).await;
        let kinds: Vec<ProviderKind> = offers.iter().map(|o| o.kind).collect();
        assert_eq!(kinds, ProviderKind::ALL.to_vec());
        assert_eq!(ProviderOffer::suggested(&offers), None);
        assert_eq!(offers[0].key, KeyNeed::Required);
        assert_eq!(
            offers[0].base_url.as_deref(),
            Some("https://api.openai.com/v1")
        );
        assert_eq!(offers[3].base_url.as_deref(), Some(dead.as_str()));
        assert_eq!(offers[4].base_url, None, "a custom server's URL is given");

        let double = Double::start().await.expect("double");
        let base = double.base_url("ollama");
        let offers = probe_providers(&base).await;
        assert!(offers[3].running.is_some(), "it answers");
        assert_eq!(ProviderOffer::suggested(&offers), None, "but has no model");
        double.set_capabilities("qwen3:4b", &["completion", "tools"]);
        let offers = probe_providers(&base).await;
        assert_eq!(
            ProviderOffer::suggested(&offers),
            Some(ProviderKind::Ollama)
        );
    }

    #[tokio::test]
    async fn an_unreachable_server_is_one_sentence() {
        let url = dead_url();
        let d = draft(ProviderKind::Custom, &format!("{url}/v1"), None);
        let err = list_models(&d).await.expect_err("refused");
        let host = url.trim_start_matches("http://");
        assert_eq!(
            err.to_string(),
            format!("cannot reach custom at {url}/v1 ({host} refused the connection): check the base URL, the network, and that the server runs")
        );
        assert!(!err.is_usage());
    }

    fn answers(
        kind: ProviderKind,
        id: &str,
        base: &str,
        key: Option<&str>,
        model: &str,
    ) -> ModelAnswers {
        ModelAnswers {
            provider: ProviderDraft::new(kind, Some(id), Some(base), None, key.map(str::to_string))
                .expect("draft"),
            model: ModelInfo {
                id: model.into(),
                name: format!("Model {model}"),
                context_window: None,
                cost: Some(ModelCost {
                    input: 0.15,
                    output: 0.6,
                    ..ModelCost::default()
                }),
            },
        }
    }

    fn openai_mini() -> ModelAnswers {
        answers(
            ProviderKind::OpenAi,
            "openai",
            "https://api.openai.com/v1",
            Some(KEY),
            "gpt-4o-mini",
        )
    }

    /// The primary model and its fallbacks, as the config names them.
    fn chain_of(text: &str) -> Vec<String> {
        let loaded = config::load(text).expect("valid");
        loaded
            .config
            .agent()
            .model_chain
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn applied(text: &str, plan: &ModelPlan) -> String {
        plan.edits
            .iter()
            .fold(text.to_string(), |t, (path, value)| {
                config::set(&t, path, value).unwrap_or_else(|e| panic!("{path} = {value}: {e}"))
            })
    }

    #[test]
    fn a_plan_adds_a_provider_and_makes_its_model_the_primary() {
        let start = "// mine\n{ gateway: { port: 18789 } }\n";
        let a = openai_mini();
        let plan = model_plan(Some(start), &a).expect("plan");
        assert_eq!(plan.model_ref, "openai/gpt-4o-mini");
        assert_eq!(plan.replaced, None);
        let text = applied(start, &plan);
        assert!(text.starts_with("// mine"), "comments kept: {text}");
        assert!(!text.contains(KEY));
        let loaded = config::load(&text).expect("valid");
        let agent = loaded.config.agent();
        let openai = agent.provider("openai").expect("provider");
        assert_eq!(openai.api_key, Some(config::SecretRef::Keychain));
        assert_eq!(openai.base_url, "https://api.openai.com/v1");
        assert!(
            !text.contains("baseUrl"),
            "a known provider's own URL is not written: {text}"
        );
        assert_eq!(openai.models[0].cost.map(|c| c.output), Some(0.6));
        assert_eq!(agent.model_chain[0].to_string(), "openai/gpt-4o-mini");
        assert_eq!(
            model_plan(Some(&text), &a).expect("again").edits,
            Vec::<(String, String)>::new(),
            "nothing twice"
        );

        // A second model on another server: primary now, the first kept as fallback.
        let local = answers(
            ProviderKind::Custom,
            "local",
            "http://127.0.0.1:8000/v1",
            None,
            "qwen",
        );
        let plan = model_plan(Some(&text), &local).expect("plan");
        assert_eq!(plan.replaced.as_deref(), Some("openai/gpt-4o-mini"));
        let text = applied(&text, &plan);
        let agent = config::load(&text).expect("valid").config.agent();
        let chain: Vec<String> = agent.model_chain.iter().map(ToString::to_string).collect();
        assert_eq!(chain, vec!["local/qwen", "openai/gpt-4o-mini"]);
        assert_eq!(
            agent.provider("local").expect("local").api,
            ProviderApi::OpenaiCompletions
        );

        // The same provider id with another URL is refused, naming both.
        let elsewhere = answers(
            ProviderKind::Custom,
            "local",
            "http://127.0.0.1:9000/v1",
            None,
            "qwen",
        );
        let err = model_plan(Some(&text), &elsewhere).expect_err("clash");
        assert_eq!(err.to_string(), "the config already has provider local with baseUrl \"http://127.0.0.1:8000/v1\", not \"http://127.0.0.1:9000/v1\": choose another provider id for this one");

        // Another model of a listed provider is appended to its list.
        let more = answers(
            ProviderKind::Custom,
            "local",
            "http://127.0.0.1:8000/v1",
            None,
            "llama",
        );
        let plan = model_plan(Some(&text), &more).expect("plan");
        assert!(
            plan.edits
                .iter()
                .any(|(p, _)| p == "models.providers.local.models[1]"),
            "{:?}",
            plan.edits
        );
        let text = applied(&text, &plan);
        let chain = chain_of(&text);
        assert_eq!(
            chain,
            vec!["local/llama", "local/qwen", "openai/gpt-4o-mini"]
        );
    }

    #[test]
    fn a_model_written_as_a_string_becomes_a_fallback() {
        let start = "{ models: { providers: { openai: { apiKey: { source: \"keychain\" } } } }, agents: { defaults: { model: \"openai/gpt-4o\" } } }";
        let a = openai_mini();
        let plan = model_plan(Some(start), &a).expect("plan");
        // A known provider without a list takes any model: no list is added.
        assert_eq!(plan.edits.len(), 1, "{:?}", plan.edits);
        let text = applied(start, &plan);
        let chain = chain_of(&text);
        assert_eq!(chain, vec!["openai/gpt-4o-mini", "openai/gpt-4o"]);
    }
}
