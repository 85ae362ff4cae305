//! What a provider serves: its model list, read the way each API publishes
//! it — `GET {baseUrl}/models` (OpenAI-compatible servers, OpenRouter's
//! with names, context lengths and prices), `GET {baseUrl}/v1/models`
//! (Anthropic, paged) and `GET /api/tags` (Ollama's native API) — and an
//! Ollama model's context length from `/api/show`. The listing sends the
//! key the way a chat would, so a refused key is told by the listing the
//! same way (HTTP 401 as [`ProviderError::Unauthorized`]); OpenRouter
//! lists its models without looking at the key.

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use omniclaw_core::config::{ModelCost, ProviderApi};

use super::anthropic::VERSION;
use super::chat;
use super::http::{Endpoint, Http};
use super::ProviderError;

/// One model a provider lists.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedModel {
    /// The provider's model id (`gpt-4o-mini`, `llama3.1:8b`).
    pub id: String,
    /// A readable name, when the API gives one.
    pub name: Option<String>,
    /// The context window in tokens, when the API gives it.
    pub context_window: Option<u64>,
    /// USD per million tokens, when the API gives prices (OpenRouter).
    pub cost: Option<ModelCost>,
}

/// Most pages of Anthropic's listing read (1000 models a page).
const MAX_PAGES: usize = 10;

/// The models the provider at `endpoint` lists, in its order.
pub async fn list(
    api: ProviderApi,
    endpoint: Endpoint,
    cancel: &CancellationToken,
) -> Result<Vec<ListedModel>, ProviderError> {
    match api {
        ProviderApi::OpenaiCompletions => {
            let http = Http::new(endpoint)?;
            let key = http.key()?;
            let body = http
                .get_json(
                    "/models",
                    &chat::bearer(key.as_deref()),
                    key.as_deref(),
                    cancel,
                )
                .await?;
            entries(&http, &body, "data")
        }
        ProviderApi::AnthropicMessages => {
            let http = Http::new(endpoint)?;
            let key = http.key()?;
            let mut auth = vec![("anthropic-version", VERSION.to_string())];
            if let Some(k) = &key {
                auth.push(("x-api-key", k.clone()));
            }
            let mut out = Vec::new();
            let mut after: Option<String> = None;
            for _ in 0..MAX_PAGES {
                let path = match &after {
                    Some(id) => format!("/v1/models?limit=1000&after_id={id}"),
                    None => "/v1/models?limit=1000".to_string(),
                };
                let body = http.get_json(&path, &auth, key.as_deref(), cancel).await?;
                out.extend(entries(&http, &body, "data")?);
                let more = body.get("has_more").and_then(Value::as_bool) == Some(true);
                after = body
                    .get("last_id")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                if !more || after.is_none() {
                    break;
                }
            }
            Ok(out)
        }
        ProviderApi::Ollama => {
            let http = Http::new(super::ollama::native(endpoint))?;
            let key = http.key()?;
            let body = http
                .get_json(
                    "/api/tags",
                    &chat::bearer(key.as_deref()),
                    key.as_deref(),
                    cancel,
                )
                .await?;
            entries(&http, &body, "models")
        }
    }
}

/// The context length an Ollama model was trained for (`/api/show`'s
/// `model_info["<family>.context_length"]`); `None` when the server does
/// not say.
pub async fn ollama_context_length(
    endpoint: Endpoint,
    model: &str,
    cancel: &CancellationToken,
) -> Result<Option<u64>, ProviderError> {
    let http = Http::new(super::ollama::native(endpoint))?;
    let show = http
        .post_json("/api/show", &serde_json::json!({"model": model}), cancel)
        .await?;
    Ok(show
        .get("model_info")
        .and_then(Value::as_object)
        .and_then(|info| {
            info.iter()
                .find(|(k, _)| k.ends_with(".context_length"))
                .and_then(|(_, v)| v.as_u64())
        }))
}

/// The entries of the list at `field`: `data` (OpenAI, OpenRouter,
/// Anthropic) or `models` (Ollama). An entry without an id is skipped.
fn entries(http: &Http, body: &Value, field: &str) -> Result<Vec<ListedModel>, ProviderError> {
    let list = body
        .get(field)
        .and_then(Value::as_array)
        .ok_or_else(|| http.protocol(&format!("the model list has no `{field}` array: {body}")))?;
    Ok(list.iter().filter_map(entry).collect())
}

fn entry(item: &Value) -> Option<ListedModel> {
    let text = |key: &str| {
        item.get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .map(str::to_string)
    };
    // Ollama names a model `name` (and `model`); the others call it `id`.
    let id = text("id")
        .or_else(|| text("model"))
        .or_else(|| text("name"))?;
    let name = text("display_name")
        .or_else(|| text("name"))
        .filter(|n| *n != id);
    let context_window = ["context_length", "context_window"]
        .iter()
        .find_map(|k| item.get(*k).and_then(Value::as_u64));
    Some(ListedModel {
        id,
        name,
        context_window,
        cost: item.get("pricing").and_then(pricing),
    })
}

/// OpenRouter's `pricing`: USD per token as decimal strings (`"0.0000025"`),
/// turned into USD per million tokens.
fn pricing(p: &Value) -> Option<ModelCost> {
    let per_token = |key: &str| -> Option<f64> {
        match p.get(key)? {
            Value::String(s) => s.trim().parse().ok(),
            Value::Number(n) => n.as_f64(),
            _ => None,
        }
    };
    let per_million = |key: &str| per_token(key).map(|usd| round(usd * 1_000_000.0));
    let input = per_million("prompt")?;
    let output = per_million("completion")?;
    // A negative price is OpenRouter's "varies" marker: unknown, not free.
    if input < 0.0 || output < 0.0 {
        return None;
    }
    Some(ModelCost {
        input,
        output,
        cache_read: per_million("input_cache_read").unwrap_or(0.0),
        cache_write: per_million("input_cache_write").unwrap_or(0.0),
    })
}

/// Drops the float noise of the conversion (`0.15000000000000002`).
fn round(usd: f64) -> f64 {
    (usd * 1e9).round() / 1e9
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::clock::SystemClock;
    use crate::double::{Double, Reply};
    use crate::provider::KeySource;

    struct Key(Option<&'static str>);

    impl KeySource for Key {
        fn api_key(&self, _: &str) -> Result<Option<String>, String> {
            Ok(self.0.map(str::to_string))
        }
    }

    fn endpoint(base_url: String, key: Option<&'static str>) -> Endpoint {
        Endpoint {
            id: "p".into(),
            base_url,
            timeout: Duration::from_secs(5),
            max_tokens: None,
            headers: Vec::new(),
            keys: Arc::new(Key(key)),
            clock: Arc::new(SystemClock),
        }
    }

    #[test]
    fn entries_of_each_api() {
        let table = [
            (
                serde_json::json!({"id": "gpt-4o-mini", "object": "model"}),
                Some(ListedModel {
                    id: "gpt-4o-mini".into(),
                    name: None,
                    context_window: None,
                    cost: None,
                }),
            ),
            (
                serde_json::json!({"type": "model", "id": "claude-x", "display_name": "Claude X"}),
                Some(ListedModel {
                    id: "claude-x".into(),
                    name: Some("Claude X".into()),
                    context_window: None,
                    cost: None,
                }),
            ),
            (
                serde_json::json!({"name": "llama3.1:8b", "model": "llama3.1:8b", "size": 1}),
                Some(ListedModel {
                    id: "llama3.1:8b".into(),
                    name: None,
                    context_window: None,
                    cost: None,
                }),
            ),
            (
                serde_json::json!({"id": "openai/gpt-4o", "name": "OpenAI: GPT-4o",
                    "context_length": 128000,
                    "pricing": {"prompt": "0.0000025", "completion": "0.00001", "input_cache_read": "0.00000125"}}),
                Some(ListedModel {
                    id: "openai/gpt-4o".into(),
                    name: Some("OpenAI: GPT-4o".into()),
                    context_window: Some(128000),
                    cost: Some(ModelCost {
                        input: 2.5,
                        output: 10.0,
                        cache_read: 1.25,
                        cache_write: 0.0,
                    }),
                }),
            ),
            (
                serde_json::json!({"id": "openrouter/auto", "pricing": {"prompt": "-1", "completion": "-1"}}),
                Some(ListedModel {
                    id: "openrouter/auto".into(),
                    name: None,
                    context_window: None,
                    cost: None,
                }),
            ),
            (serde_json::json!({"object": "model"}), None),
        ];
        for (item, expected) in table {
            assert_eq!(entry(&item), expected, "{item}");
        }
    }

    #[tokio::test]
    async fn each_api_lists_from_the_double_and_a_wrong_key_is_refused() {
        let double = Double::start().await.expect("double");
        double.list_model("m1", Some((0.15, 0.6)));
        double.set_capabilities("llama3.1:8b", &["completion", "tools"]);
        double.require_key("sk-right-key-0123456789");
        let cancel = CancellationToken::new();
        let openai = list(
            ProviderApi::OpenaiCompletions,
            endpoint(
                double.base_url("openai-completions"),
                Some("sk-right-key-0123456789"),
            ),
            &cancel,
        )
        .await
        .expect("listed");
        assert_eq!(openai.len(), 1);
        assert_eq!(openai[0].id, "m1");
        assert_eq!(
            openai[0].cost.map(|c| (c.input, c.output)),
            Some((0.15, 0.6))
        );
        let anthropic = list(
            ProviderApi::AnthropicMessages,
            endpoint(
                double.base_url("anthropic-messages"),
                Some("sk-right-key-0123456789"),
            ),
            &cancel,
        )
        .await
        .expect("listed");
        assert_eq!(anthropic[0].id, "m1");
        let listing = double
            .requests()
            .into_iter()
            .rfind(|r| r.path == "/v1/models")
            .expect("recorded");
        assert_eq!(listing.header("anthropic-version"), Some(VERSION));
        assert_eq!(listing.header("x-api-key"), Some("sk-right-key-0123456789"));
        // Ollama's native root beside an OpenAI-compatible `/v1` one.
        let ollama = list(
            ProviderApi::Ollama,
            endpoint(format!("http://{}/v1", double.addr()), None),
            &cancel,
        )
        .await
        .expect("listed");
        assert_eq!(ollama[0].id, "llama3.1:8b");

        let wrong = list(
            ProviderApi::OpenaiCompletions,
            endpoint(
                double.base_url("openai-completions"),
                Some("sk-wrong-key-0123456789"),
            ),
            &cancel,
        )
        .await
        .expect_err("refused");
        match &wrong {
            ProviderError::Unauthorized { message, .. } => {
                assert!(!message.contains("0123456789"), "{message}");
            }
            other => panic!("not a 401: {other:?}"),
        }
        // A chat with that key is refused the same way.
        double.push(Reply::text("never sent"));
        let client = crate::net::client_builder().build().expect("a client");
        let chat = client
            .post(format!(
                "{}/chat/completions",
                double.base_url("openai-completions")
            ))
            .bearer_auth("sk-wrong-key-0123456789")
            .body("{}")
            .send()
            .await
            .expect("sent");
        assert_eq!(chat.status().as_u16(), 401);
    }

    #[tokio::test]
    async fn a_dead_server_is_unreachable() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = closed.local_addr().expect("addr").port();
        drop(closed);
        let err = list(
            ProviderApi::OpenaiCompletions,
            endpoint(format!("http://127.0.0.1:{port}/v1"), Some("k")),
            &CancellationToken::new(),
        )
        .await
        .expect_err("refused");
        assert!(
            matches!(&err, ProviderError::Unreachable { url, .. } if url.ends_with("/v1/models")),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn an_ollama_context_length_comes_from_show() {
        let double = Double::start().await.expect("double");
        let cancel = CancellationToken::new();
        let none = ollama_context_length(
            endpoint(double.base_url("ollama"), None),
            "llama3.1:8b",
            &cancel,
        )
        .await
        .expect("show");
        assert_eq!(none, None, "a server that does not say");
        double.set_context_length("llama3.1:8b", 131072);
        let known = ollama_context_length(
            endpoint(format!("{}/v1", double.base_url("ollama")), None),
            "llama3.1:8b",
            &cancel,
        )
        .await
        .expect("show");
        assert_eq!(known, Some(131072));
    }
}
