//! The assistant's settings: `models`, the assistant keys of
//! `agents.defaults`, `session`, `tools` and `budget`.
//!
//! Their typed form, the rules that span several keys (model references,
//! base URLs, custom providers, budgets) and [`AgentConfig`], the resolved
//! view a gateway builds its assistant from: defaults applied, known
//! providers' endpoints filled in, the model chain checked.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde_json::Value;

use super::document::{Diagnostic, Document};
use super::model::{Config, DmScope, ExecMode, ModelsMode, ProviderApi, SecretRef};
use super::path::{render, Segment};
use super::schema;

/// `bootstrapMaxChars` when unset (OpenClaw's default).
pub const DEFAULT_BOOTSTRAP_MAX_CHARS: usize = 20_000;
/// `bootstrapTotalMaxChars` when unset (OpenClaw's default).
pub const DEFAULT_BOOTSTRAP_TOTAL_MAX_CHARS: usize = 60_000;
/// `agents.defaults.timeoutSeconds` when unset.
pub const DEFAULT_RUN_TIMEOUT_SECONDS: u64 = 600;
/// `models.providers.<id>.timeoutSeconds` when unset.
pub const DEFAULT_PROVIDER_TIMEOUT_SECONDS: u64 = 120;

/// Providers OmniClaw knows the endpoint of: they need no `baseUrl` and no
/// `models` list (any model id is then accepted).
pub const KNOWN_PROVIDERS: &[(&str, ProviderApi, &str)] = &[
    (
        "openai",
        ProviderApi::OpenaiCompletions,
        "https://api.openai.com/v1",
    ),
    (
        "anthropic",
        ProviderApi::AnthropicMessages,
        "https://api.anthropic.com",
    ),
    ("ollama", ProviderApi::Ollama, "http://127.0.0.1:11434"),
    (
        "openrouter",
        ProviderApi::OpenaiCompletions,
        "https://openrouter.ai/api/v1",
    ),
];

fn known(id: &str) -> Option<(ProviderApi, &'static str)> {
    KNOWN_PROVIDERS
        .iter()
        .find(|(known, _, _)| *known == id)
        .map(|(_, api, url)| (*api, *url))
}

/// `models`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Models {
    pub mode: Option<ModelsMode>,
    pub providers: BTreeMap<String, ModelProvider>,
}

/// `models.providers.<id>` as written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelProvider {
    pub base_url: Option<String>,
    pub api: Option<ProviderApi>,
    pub api_key: Option<SecretRef>,
    pub timeout_seconds: Option<u64>,
    pub max_tokens: Option<u64>,
    pub headers: BTreeMap<String, SecretRef>,
    /// `None` when the key is absent (only a known provider may leave it out).
    pub models: Option<Vec<ModelDef>>,
}

/// One entry of `models.providers.<id>.models`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelDef {
    pub id: String,
    pub name: String,
    pub context_window: Option<u64>,
    pub max_tokens: Option<u64>,
    pub cost: Option<ModelCost>,
}

/// USD per million tokens; a missing price counts as 0.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ModelCost {
    pub input: f64,
    pub output: f64,
    pub cache_read: f64,
    pub cache_write: f64,
}

/// `agents.defaults.model`: a string is a primary without fallbacks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentModel {
    pub primary: Option<String>,
    pub fallbacks: Vec<String>,
}

/// `session`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Session {
    pub dm_scope: Option<DmScope>,
    pub retention_days: Option<u64>,
}

/// `tools`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tools {
    pub allow: Vec<String>,
    pub deny: Vec<String>,
    pub exec: Exec,
    pub web_fetch: WebFetch,
}

/// `tools.exec`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exec {
    pub mode: Option<ExecMode>,
    pub allowlist: Vec<String>,
    pub timeout_seconds: Option<u64>,
    pub max_output_chars: Option<u64>,
    /// How long an approval waits (OmniClaw's own).
    pub approval_timeout_seconds: Option<u64>,
}

impl Exec {
    /// Commands are refused unless the config says otherwise.
    pub fn mode(&self) -> ExecMode {
        self.mode.unwrap_or(ExecMode::Deny)
    }
}

/// `tools.web.fetch`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WebFetch {
    pub enabled: Option<bool>,
    pub max_chars: Option<u64>,
    pub max_response_bytes: Option<u64>,
    pub timeout_seconds: Option<u64>,
    pub max_redirects: Option<u64>,
    pub user_agent: Option<String>,
    pub ssrf_policy: SsrfPolicy,
}

impl WebFetch {
    pub fn enabled(&self) -> bool {
        self.enabled.unwrap_or(true)
    }
}

/// `tools.web.fetch.ssrfPolicy`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SsrfPolicy {
    pub dangerously_allow_private_network: bool,
    pub allow_rfc2544_benchmark_range: bool,
    pub allow_ipv6_unique_local_range: bool,
    pub allowed_hostnames: Vec<String>,
    pub blocked_hostnames: Vec<String>,
}

/// `budget` (OmniClaw's own).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Budget {
    pub daily_usd: Option<f64>,
    /// Daily caps by provider id.
    pub per_provider: BTreeMap<String, f64>,
}

impl Budget {
    pub fn is_capped(&self) -> bool {
        self.daily_usd.is_some() || !self.per_provider.is_empty()
    }
}

/// `provider/model`: the provider id up to the first `/`, the provider's
/// model id after it (`openrouter/qwen/qwen-2.5` is provider `openrouter`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelRef {
    pub provider: String,
    pub model: String,
}

impl ModelRef {
    pub fn parse(text: &str) -> Option<ModelRef> {
        let (provider, model) = text.split_once('/')?;
        (schema::is_provider_id(provider) && !model.trim().is_empty()).then(|| ModelRef {
            provider: provider.to_string(),
            model: model.to_string(),
        })
    }
}

impl fmt::Display for ModelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.provider, self.model)
    }
}

/// The assistant's settings, resolved: what a gateway builds its assistant
/// from. Built only from a validated config, so every model of the chain
/// names a configured provider.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentConfig {
    pub providers: Vec<ProviderConfig>,
    /// `primary`, then `fallbacks`; empty when no model is configured.
    pub model_chain: Vec<ModelRef>,
    /// As written (`~` not expanded).
    pub workspace: Option<String>,
    pub bootstrap_max_chars: usize,
    pub bootstrap_total_max_chars: usize,
    /// 0: no limit.
    pub timeout_seconds: u64,
    pub dm_scope: DmScope,
    pub retention_days: Option<u64>,
    pub tools: Tools,
    pub budget: Budget,
}

impl AgentConfig {
    pub fn provider(&self, id: &str) -> Option<&ProviderConfig> {
        self.providers.iter().find(|p| p.id == id)
    }
}

/// One provider, with its endpoint and API resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderConfig {
    pub id: String,
    pub api: ProviderApi,
    /// Without a trailing `/`.
    pub base_url: String,
    pub api_key: Option<SecretRef>,
    pub timeout_seconds: u64,
    pub max_tokens: Option<u64>,
    pub headers: Vec<(String, SecretRef)>,
    pub models: Vec<ModelDef>,
    /// Whether `models` was given: a known provider without it takes any
    /// model id.
    pub lists_models: bool,
}

impl ProviderConfig {
    /// The model's entry; a known provider without a list gives a bare one.
    pub fn model(&self, id: &str) -> Option<ModelDef> {
        match self.models.iter().find(|m| m.id == id) {
            Some(m) => Some(m.clone()),
            None if !self.lists_models => Some(ModelDef {
                id: id.to_string(),
                name: id.to_string(),
                ..ModelDef::default()
            }),
            None => None,
        }
    }
}

impl Config {
    /// The assistant's settings with every default applied.
    pub fn agent(&self) -> AgentConfig {
        let providers = self
            .models
            .providers
            .iter()
            .map(|(id, p)| {
                let known = known(id);
                let api = p
                    .api
                    .or(known.map(|(api, _)| api))
                    .unwrap_or(ProviderApi::OpenaiCompletions);
                let base_url = p
                    .base_url
                    .clone()
                    .or(known.map(|(_, url)| url.to_string()))
                    .unwrap_or_default();
                ProviderConfig {
                    id: id.clone(),
                    api,
                    base_url: base_url.trim_end_matches('/').to_string(),
                    api_key: p.api_key.clone(),
                    timeout_seconds: p
                        .timeout_seconds
                        .unwrap_or(DEFAULT_PROVIDER_TIMEOUT_SECONDS),
                    max_tokens: p.max_tokens,
                    headers: p
                        .headers
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    models: p.models.clone().unwrap_or_default(),
                    lists_models: p.models.is_some(),
                }
            })
            .collect();
        let defaults = &self.agents.defaults;
        let model_chain = defaults
            .model
            .primary
            .iter()
            .chain(&defaults.model.fallbacks)
            .filter_map(|r| ModelRef::parse(r))
            .collect();
        let chars = |v: Option<u64>, default: usize| {
            v.and_then(|n| usize::try_from(n).ok()).unwrap_or(default)
        };
        AgentConfig {
            providers,
            model_chain,
            workspace: defaults.workspace.clone(),
            bootstrap_max_chars: chars(defaults.bootstrap_max_chars, DEFAULT_BOOTSTRAP_MAX_CHARS),
            bootstrap_total_max_chars: chars(
                defaults.bootstrap_total_max_chars,
                DEFAULT_BOOTSTRAP_TOTAL_MAX_CHARS,
            ),
            timeout_seconds: defaults
                .timeout_seconds
                .unwrap_or(DEFAULT_RUN_TIMEOUT_SECONDS),
            dm_scope: self.session.dm_scope.unwrap_or(DmScope::Main),
            retention_days: self.session.retention_days,
            tools: self.tools.clone(),
            budget: self.budget.clone(),
        }
    }

    /// Every provider API key and header that is set, with its dotted path
    /// (`models.providers.openai.apiKey`): secrets like those of
    /// [`Config::secrets`], under paths the config chooses.
    pub fn provider_secrets(&self) -> Vec<(String, &SecretRef)> {
        let mut out = Vec::new();
        for (id, p) in &self.models.providers {
            if let Some(key) = &p.api_key {
                out.push((format!("models.providers.{id}.apiKey"), key));
            }
            for (name, value) in &p.headers {
                let path = render(&[
                    Segment::Key("models".into()),
                    Segment::Key("providers".into()),
                    Segment::Key(id.clone()),
                    Segment::Key("headers".into()),
                    Segment::Key(name.clone()),
                ]);
                out.push((path, value));
            }
        }
        out
    }
}

/// The host of `url` when it is plain `http://` to a host that is neither
/// loopback nor on a private network: a key sent there travels in clear
/// over the internet. `None` for https, or for a local or LAN host.
pub fn public_http_host(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("http://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map_or(v6, |(h, _)| h),
        None => host_port.rsplit_once(':').map_or(host_port, |(h, _)| h),
    };
    (!is_local_host(host)).then_some(host)
}

/// Loopback, private, link-local or carrier-grade NAT addresses, and names
/// that only resolve inside a network (`localhost`, single labels,
/// `.local`, `.lan`, `.internal`, `.home.arpa`).
fn is_local_host(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => is_local_v4(ip),
        Ok(IpAddr::V6(ip)) => is_local_v6(ip),
        Err(_) => {
            host == "localhost"
                || !host.contains('.')
                || [".localhost", ".local", ".lan", ".internal", ".home.arpa"]
                    .iter()
                    .any(|suffix| host.ends_with(suffix))
        }
    }
}

fn is_local_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        // 100.64.0.0/10: carrier-grade NAT, also what Tailscale hands out.
        || (a == 100 && (64..128).contains(&b))
}

fn is_local_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || ip.to_ipv4_mapped().is_some_and(is_local_v4)
}

/// Builds the assistant sections of the typed config from a validated value.
pub(crate) fn sections_from(root: &Value, config: &mut Config) {
    let at = |path: &[&str]| path.iter().try_fold(root, |v, key| v.get(key));
    let count = |v: Option<&Value>| v.and_then(Value::as_u64);
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let choice = |path: &[&str]| at(path).and_then(Value::as_str);

    config.models.mode = choice(&["models", "mode"]).and_then(ModelsMode::parse);
    if let Some(providers) = at(&["models", "providers"]).and_then(Value::as_object) {
        for (id, p) in providers {
            let models = p.get("models").and_then(Value::as_array).map(|list| {
                list.iter()
                    .map(|m| ModelDef {
                        id: text(m.get("id")),
                        name: text(m.get("name")),
                        context_window: count(m.get("contextWindow")),
                        max_tokens: count(m.get("maxTokens")),
                        cost: m.get("cost").map(|c| {
                            let usd = |k: &str| c.get(k).and_then(Value::as_f64).unwrap_or(0.0);
                            ModelCost {
                                input: usd("input"),
                                output: usd("output"),
                                cache_read: usd("cacheRead"),
                                cache_write: usd("cacheWrite"),
                            }
                        }),
                    })
                    .collect()
            });
            let headers = p
                .get("headers")
                .and_then(Value::as_object)
                .map(|h| {
                    h.iter()
                        .filter_map(|(k, v)| SecretRef::from_value(v).map(|s| (k.clone(), s)))
                        .collect()
                })
                .unwrap_or_default();
            let provider = ModelProvider {
                base_url: p.get("baseUrl").and_then(Value::as_str).map(str::to_string),
                api: p
                    .get("api")
                    .and_then(Value::as_str)
                    .and_then(ProviderApi::parse),
                api_key: p.get("apiKey").and_then(SecretRef::from_value),
                timeout_seconds: count(p.get("timeoutSeconds")),
                max_tokens: count(p.get("maxTokens")),
                headers,
                models,
            };
            config.models.providers.insert(id.clone(), provider);
        }
    }

    let defaults = &mut config.agents.defaults;
    defaults.model = match at(&["agents", "defaults", "model"]) {
        Some(Value::String(s)) => AgentModel {
            primary: Some(s.clone()),
            fallbacks: Vec::new(),
        },
        Some(obj @ Value::Object(_)) => AgentModel {
            primary: obj
                .get("primary")
                .and_then(Value::as_str)
                .map(str::to_string),
            fallbacks: strings(obj.get("fallbacks")),
        },
        _ => AgentModel::default(),
    };
    defaults.bootstrap_max_chars = count(at(&["agents", "defaults", "bootstrapMaxChars"]));
    defaults.bootstrap_total_max_chars =
        count(at(&["agents", "defaults", "bootstrapTotalMaxChars"]));
    defaults.timeout_seconds = count(at(&["agents", "defaults", "timeoutSeconds"]));

    config.session = Session {
        dm_scope: choice(&["session", "dmScope"]).and_then(DmScope::parse),
        retention_days: count(at(&["session", "retentionDays"])),
    };

    let flag = |path: &[&str]| at(path).and_then(Value::as_bool);
    let fetch_at = |key: &str| at(&["tools", "web", "fetch", key]);
    let ssrf = |key: &str| at(&["tools", "web", "fetch", "ssrfPolicy", key]);
    config.tools = Tools {
        allow: strings(at(&["tools", "allow"])),
        deny: strings(at(&["tools", "deny"])),
        exec: Exec {
            mode: choice(&["tools", "exec", "mode"]).and_then(ExecMode::parse),
            allowlist: strings(at(&["tools", "exec", "allowlist"])),
            timeout_seconds: count(at(&["tools", "exec", "timeoutSeconds"])),
            max_output_chars: count(at(&["tools", "exec", "maxOutputChars"])),
            approval_timeout_seconds: count(at(&["tools", "exec", "approvalTimeoutSeconds"])),
        },
        web_fetch: WebFetch {
            enabled: flag(&["tools", "web", "fetch", "enabled"]),
            max_chars: count(fetch_at("maxChars")),
            max_response_bytes: count(fetch_at("maxResponseBytes")),
            timeout_seconds: count(fetch_at("timeoutSeconds")),
            max_redirects: count(fetch_at("maxRedirects")),
            user_agent: fetch_at("userAgent")
                .and_then(Value::as_str)
                .map(str::to_string),
            ssrf_policy: SsrfPolicy {
                dangerously_allow_private_network: ssrf("dangerouslyAllowPrivateNetwork")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                allow_rfc2544_benchmark_range: ssrf("allowRfc2544BenchmarkRange")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                allow_ipv6_unique_local_range: ssrf("allowIpv6UniqueLocalRange")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                allowed_hostnames: strings(ssrf("allowedHostnames")),
                blocked_hostnames: strings(ssrf("blockedHostnames")),
            },
        },
    };

    config.budget = Budget {
        daily_usd: at(&["budget", "dailyUsd"]).and_then(Value::as_f64),
        per_provider: at(&["budget", "perProvider"])
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(id, b)| {
                        b.get("dailyUsd")
                            .and_then(Value::as_f64)
                            .map(|usd| (id.clone(), usd))
                    })
                    .collect()
            })
            .unwrap_or_default(),
    };
}

fn text(v: Option<&Value>) -> String {
    v.and_then(Value::as_str).unwrap_or_default().to_string()
}

/// What the cross-key rules found: errors refuse the config, warnings do not.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

/// The rules that span keys of the assistant's sections. Values of the wrong
/// type are skipped: the schema errors already name them.
pub(crate) fn cross_checks(doc: &Document) -> Findings {
    let root = doc.value();
    let mut found = Findings::default();
    let providers = root
        .get("models")
        .and_then(|m| m.get("providers"))
        .and_then(Value::as_object);
    let empty = serde_json::Map::new();
    let providers = providers.unwrap_or(&empty);

    for (id, p) in providers {
        let Some(fields) = p.as_object() else {
            continue;
        };
        if !schema::is_provider_id(id) {
            continue;
        }
        let base = format!("models.providers.{id}");
        let is_known = known(id).is_some();
        match fields.get("baseUrl").and_then(Value::as_str) {
            Some(url) => {
                if let Some(host) = public_http_host(url) {
                    let fixed = format!("https://{}", &url["http://".len()..]);
                    found.errors.push(Diagnostic::new(
                        format!("{base}.baseUrl"),
                        format!(
                            "{url:?} is plain http:// to {host}, a host outside this machine and its private network: the API key would travel in clear; use {fixed:?} (plain http:// only to loopback or private-network hosts)"
                        ),
                        doc.value_pos(&format!("{base}.baseUrl")),
                    ));
                }
            }
            None if !is_known => found.errors.push(Diagnostic::new(
                format!("{base}.baseUrl"),
                format!(
                    "required: OmniClaw knows no endpoint for provider {id:?}; set its base URL (like \"https://api.example.com/v1\"), or use a known provider id ({})",
                    known_ids()
                ),
                doc.key_pos(&base),
            )),
            None => {}
        }
        match fields.get("models") {
            None if !is_known => found.errors.push(Diagnostic::new(
                format!("{base}.models"),
                "required for a custom provider: list the models it serves, like [{ id: \"my-model\", name: \"My model\" }]",
                doc.key_pos(&base),
            )),
            Some(Value::Array(models)) => {
                let mut seen: HashMap<&str, usize> = HashMap::new();
                for (i, m) in models.iter().enumerate() {
                    let Some(entry) = m.as_object() else {
                        continue;
                    };
                    let at = format!("{base}.models[{i}]");
                    for (key, what) in [("id", "the provider's model id, like \"gpt-4o\""), ("name", "a readable name")] {
                        if !entry.contains_key(key) {
                            found.errors.push(Diagnostic::new(
                                format!("{at}.{key}"),
                                format!("required: set {key} to {what}"),
                                doc.value_pos(&at),
                            ));
                        }
                    }
                    if let Some(model_id) = entry.get("id").and_then(Value::as_str) {
                        match seen.get(model_id) {
                            Some(first) => found.errors.push(Diagnostic::new(
                                format!("{at}.id"),
                                format!("{model_id:?} is listed twice (also at [{first}]); keep one"),
                                doc.value_pos(&format!("{at}.id")),
                            )),
                            None => {
                                seen.insert(model_id, i);
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }

    let capped_all = root
        .get("budget")
        .and_then(|b| b.get("dailyUsd"))
        .is_some_and(Value::is_number);
    let per_provider = root
        .get("budget")
        .and_then(|b| b.get("perProvider"))
        .and_then(Value::as_object);
    for ref_at in model_refs(root) {
        let Some(r) = ModelRef::parse(&ref_at.text) else {
            continue;
        };
        let pos = doc.value_pos(&ref_at.path);
        let Some(provider) = providers.get(&r.provider).and_then(Value::as_object) else {
            let configured: Vec<&str> = providers.keys().map(String::as_str).collect();
            let hint = if configured.is_empty() {
                format!(
                    "add models.providers.{} with its apiKey (and models)",
                    r.provider
                )
            } else {
                format!(
                    "add models.providers.{} or use one of: {}",
                    r.provider,
                    configured.join(", ")
                )
            };
            found.errors.push(Diagnostic::new(
                ref_at.path.clone(),
                format!(
                    "{:?} names provider {:?}, which models.providers does not define; {hint}",
                    ref_at.text, r.provider
                ),
                pos,
            ));
            continue;
        };
        let listed = provider.get("models").and_then(Value::as_array);
        let entry = listed.and_then(|models| {
            models
                .iter()
                .find(|m| m.get("id").and_then(Value::as_str) == Some(r.model.as_str()))
        });
        if let (Some(models), None) = (listed, entry) {
            let ids: Vec<&str> = models
                .iter()
                .filter_map(|m| m.get("id").and_then(Value::as_str))
                .collect();
            let choices = if ids.is_empty() {
                String::new()
            } else {
                format!(" or use one of: {}", ids.join(", "))
            };
            found.errors.push(Diagnostic::new(
                ref_at.path.clone(),
                format!(
                    "{:?} names model {:?}, which models.providers.{}.models does not list; add {{ id: {:?}, name: ... }} there{choices}",
                    ref_at.text, r.model, r.provider, r.model
                ),
                pos,
            ));
            continue;
        }
        let capped_provider = per_provider.is_some_and(|m| m.contains_key(&r.provider));
        let priced = entry.is_some_and(|m| m.get("cost").is_some_and(Value::is_object));
        if (capped_all || capped_provider) && !priced {
            let cap = if capped_all {
                "budget.dailyUsd".to_string()
            } else {
                format!("budget.perProvider.{}.dailyUsd", r.provider)
            };
            let fix = if entry.is_some() {
                format!(
                    "add cost: {{ input, output }} (USD per million tokens) to its entry in models.providers.{}.models",
                    r.provider
                )
            } else {
                format!(
                    "list it in models.providers.{}.models with cost: {{ input, output }} (USD per million tokens)",
                    r.provider
                )
            };
            found.warnings.push(Diagnostic::new(
                ref_at.path.clone(),
                format!(
                    "{:?} has no cost, so its calls count as $0 against {cap}; {fix}",
                    ref_at.text
                ),
                pos,
            ));
        }
    }

    if let Some(Value::Object(model)) = root
        .get("agents")
        .and_then(|a| a.get("defaults"))
        .and_then(|d| d.get("model"))
    {
        if model.contains_key("fallbacks") && !model.contains_key("primary") {
            found.errors.push(Diagnostic::new(
                "agents.defaults.model.primary",
                "required when fallbacks are set: fallbacks are tried only after a primary model fails; set primary to \"provider/model\"",
                doc.key_pos("agents.defaults.model"),
            ));
        }
    }

    if let Some(caps) = per_provider {
        for id in caps.keys() {
            if schema::is_provider_id(id) && !providers.contains_key(id) {
                let path = format!("budget.perProvider.{id}");
                found.errors.push(Diagnostic::new(
                    path.clone(),
                    format!(
                        "no provider {id:?} in models.providers: a cap on it would never apply; use a configured provider id or remove the entry"
                    ),
                    doc.key_pos(&path),
                ));
            }
        }
    }
    found
}

fn known_ids() -> String {
    KNOWN_PROVIDERS
        .iter()
        .map(|(id, _, _)| *id)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A model reference found in the config, with its path.
struct RefAt {
    path: String,
    text: String,
}

/// Every model reference: `agents.defaults.model` (string), or its
/// `primary` and `fallbacks[i]`.
fn model_refs(root: &Value) -> Vec<RefAt> {
    let base = "agents.defaults.model";
    let Some(model) = root
        .get("agents")
        .and_then(|a| a.get("defaults"))
        .and_then(|d| d.get("model"))
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    match model {
        Value::String(s) => out.push(RefAt {
            path: base.into(),
            text: s.clone(),
        }),
        Value::Object(m) => {
            if let Some(s) = m.get("primary").and_then(Value::as_str) {
                out.push(RefAt {
                    path: format!("{base}.primary"),
                    text: s.into(),
                });
            }
            if let Some(list) = m.get("fallbacks").and_then(Value::as_array) {
                for (i, item) in list.iter().enumerate() {
                    if let Some(s) = item.as_str() {
                        out.push(RefAt {
                            path: format!("{base}.fallbacks[{i}]"),
                            text: s.into(),
                        });
                    }
                }
            }
        }
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load;
    use crate::config::validate::tests::check;

    const OPENAI: &str = "openai: { apiKey: { source: 'keychain' }, models: [{ id: 'gpt-4o', name: 'GPT-4o', contextWindow: 128000, cost: { input: 2.5, output: 10 } }, { id: 'mini', name: 'Mini' }] }";

    #[test]
    fn valid_assistant_configs_pass() {
        let table = [
            format!("{{ models: {{ providers: {{ {OPENAI} }} }}, agents: {{ defaults: {{ model: 'openai/gpt-4o' }} }} }}"),
            format!("{{ models: {{ mode: 'merge', providers: {{ {OPENAI}, local: {{ baseUrl: 'http://127.0.0.1:8080/v1', models: [{{ id: 'qwen/qwen-2.5', name: 'Qwen' }}] }} }} }}, agents: {{ defaults: {{ model: {{ primary: 'openai/gpt-4o', fallbacks: ['local/qwen/qwen-2.5', 'openai/mini'] }}, bootstrapMaxChars: 5000, bootstrapTotalMaxChars: 9000, timeoutSeconds: 0 }} }} }}"),
            // Known providers need no baseUrl or models, and take any model id.
            "{ models: { providers: { anthropic: { apiKey: '${ANTHROPIC_API_KEY}' }, ollama: {} } }, agents: { defaults: { model: { primary: 'anthropic/claude-x', fallbacks: ['ollama/llama3.1:8b'] } } } }".to_string(),
            "{ models: { providers: { lan: { baseUrl: 'http://192.168.1.20:11434', api: 'ollama', models: [] }, ts: { baseUrl: 'http://100.101.102.103:11434', api: 'ollama', models: [] }, box: { baseUrl: 'http://gpu-box:8000/v1', models: [] }, mdns: { baseUrl: 'http://gpu.local:8000', models: [] }, v6: { baseUrl: 'http://[fd00::5]:8000', models: [] } } } }".to_string(),
            "{ models: { providers: { openai: { headers: { 'X-Org': '${ORG}', OpenAI_Project: { source: 'keychain' } }, timeoutSeconds: 30, maxTokens: 4096 } } } }".to_string(),
            "{ session: { dmScope: 'per-channel-peer', retentionDays: 30 } }".to_string(),
            "{ tools: { allow: ['read', 'exec'], deny: ['write'], exec: { mode: 'allowlist', allowlist: ['ls', 'git status'], timeoutSeconds: 30, maxOutputChars: 4000 }, web: { fetch: { enabled: true, maxChars: 1000, maxResponseBytes: 100000, timeoutSeconds: 10, maxRedirects: 0, userAgent: 'x', ssrfPolicy: { dangerouslyAllowPrivateNetwork: false, allowRfc2544BenchmarkRange: true, allowIpv6UniqueLocalRange: false, allowedHostnames: ['intranet'], blockedHostnames: ['evil.example'] } } } } }".to_string(),
            format!("{{ models: {{ providers: {{ {OPENAI} }} }}, budget: {{ dailyUsd: 2.5, perProvider: {{ openai: {{ dailyUsd: 0 }} }} }} }}"),
        ];
        for text in &table {
            check(text, &[]);
        }
    }

    #[test]
    fn bad_assistant_settings_name_the_key_and_the_fix() {
        let table: &[(&str, &[&str])] = &[
            ("{ models: { providers: { openai: { api: 'openai-responses' } } } }", &["models.providers.openai.api: invalid value \"openai-responses\": expected one of \"openai-completions\", \"anthropic-messages\", \"ollama\" (1:41)"]),
            ("{ models: { providers: { OpenAI: {} } } }", &["models.providers.OpenAI: invalid model provider name \"OpenAI\": use 1–64 lower-case letters, digits, `-` or `_`, starting with a letter (like \"openai\" or \"local-llm\") (1:26)"]),
            ("{ models: { providers: { acme: { models: [] } } } }", &["models.providers.acme.baseUrl: required: OmniClaw knows no endpoint for provider \"acme\"; set its base URL (like \"https://api.example.com/v1\"), or use a known provider id (openai, anthropic, ollama, openrouter) (1:26)"]),
            ("{ models: { providers: { acme: { baseUrl: 'https://acme.example/v1' } } } }", &["models.providers.acme.models: required for a custom provider: list the models it serves, like [{ id: \"my-model\", name: \"My model\" }] (1:26)"]),
            ("{ models: { providers: { acme: { baseUrl: 'acme.example', models: [] } } } }", &["models.providers.acme.baseUrl: expected an http:// or https:// URL, got \"acme.example\" (1:43)"]),
            ("{ models: { providers: { acme: { baseUrl: 'http://api.acme.example/v1', models: [] } } } }", &["models.providers.acme.baseUrl: \"http://api.acme.example/v1\" is plain http:// to api.acme.example, a host outside this machine and its private network: the API key would travel in clear; use \"https://api.acme.example/v1\" (plain http:// only to loopback or private-network hosts) (1:43)"]),
            ("{ models: { providers: { openai: { baseUrl: 'http://8.8.8.8/v1' } } } }", &["models.providers.openai.baseUrl: \"http://8.8.8.8/v1\" is plain http:// to 8.8.8.8, a host outside this machine and its private network: the API key would travel in clear; use \"https://8.8.8.8/v1\" (plain http:// only to loopback or private-network hosts) (1:45)"]),
            ("{ models: { providers: { openai: { models: [{ id: 'a' }, { name: 'B' }, { id: 'a', name: 'A2' }] } } } }", &[
                "models.providers.openai.models[0].name: required: set name to a readable name (1:45)",
                "models.providers.openai.models[1].id: required: set id to the provider's model id, like \"gpt-4o\" (1:58)",
                "models.providers.openai.models[2].id: \"a\" is listed twice (also at [0]); keep one (1:79)",
            ]),
            ("{ models: { providers: { openai: { timeoutSeconds: 0, maxTokens: 1.5, models: [{ id: 'm', name: 'M', cost: { input: -1 } }] } } } }", &[
                "models.providers.openai.timeoutSeconds: expected a whole number, 1 or more, got 0 (1:52)",
                "models.providers.openai.maxTokens: expected a whole number, 1 or more, got 1.5 (1:66)",
                "models.providers.openai.models[0].cost.input: expected an amount in US dollars (a number, 0 or more, like 2.5), got -1 (1:117)",
            ]),
            ("{ agents: { defaults: { model: 'gpt-4o' } } }", &["agents.defaults.model: expected \"provider/model\" (a models.providers id, a `/`, then the model id, like \"openai/gpt-4o\"), got \"gpt-4o\" (1:32)"]),
            ("{ agents: { defaults: { model: 'openai/' } } }", &["agents.defaults.model: expected \"provider/model\" (a models.providers id, a `/`, then the model id, like \"openai/gpt-4o\"), got \"openai/\" (1:32)"]),
            ("{ agents: { defaults: { model: 5 } } }", &["agents.defaults.model: expected \"provider/model\" or an object { primary, fallbacks }, got 5 (1:32)"]),
            ("{ agents: { defaults: { model: 'openai/gpt-4o' } } }", &["agents.defaults.model: \"openai/gpt-4o\" names provider \"openai\", which models.providers does not define; add models.providers.openai with its apiKey (and models) (1:32)"]),
            (&"{ models: { providers: { OPENAI } }, agents: { defaults: { model: { primary: 'openai/gpt-5', fallbacks: ['anthropic/claude', 'openai/mini'] } } } }".replace("OPENAI", OPENAI), &[
                "agents.defaults.model.primary: \"openai/gpt-5\" names model \"gpt-5\", which models.providers.openai.models does not list; add { id: \"gpt-5\", name: ... } there or use one of: gpt-4o, mini (1:245)",
                "agents.defaults.model.fallbacks[0]: \"anthropic/claude\" names provider \"anthropic\", which models.providers does not define; add models.providers.anthropic or use one of: openai (1:273)",
            ]),
            ("{ agents: { defaults: { model: { fallbacks: [] } } } }", &["agents.defaults.model.primary: required when fallbacks are set: fallbacks are tried only after a primary model fails; set primary to \"provider/model\" (1:25)"]),
            ("{ agents: { defaults: { model: { primary: 'a/b', fallback: [] } } } }", &[
                "agents.defaults.model.primary: \"a/b\" names provider \"a\", which models.providers does not define; add models.providers.a with its apiKey (and models) (1:43)",
                "agents.defaults.model.fallback: unknown key \"fallback\"; did you mean \"fallbacks\"? (1:50)",
            ]),
            ("{ session: { dmScope: 'per-user' } }", &["session.dmScope: invalid value \"per-user\": expected one of \"main\", \"per-peer\", \"per-channel-peer\", \"per-account-channel-peer\"; did you mean \"per-peer\"? (1:23)"]),
            ("{ tools: { exec: { mode: 'yolo' }, allow: 'read' } }", &[
                "tools.exec.mode: invalid value \"yolo\": expected one of \"deny\", \"allowlist\", \"ask\", \"full\" (1:26)",
                "tools.allow: expected an array `[ ... ]`, got \"read\" (1:43)",
            ]),
            ("{ budget: { dailyUsd: '5', perProvider: { nobody: { dailyUsd: 1 } } } }", &[
                "budget.dailyUsd: expected an amount in US dollars (a number, 0 or more, like 2.5), got \"5\" (1:23)",
                "budget.perProvider.nobody: no provider \"nobody\" in models.providers: a cap on it would never apply; use a configured provider id or remove the entry (1:43)",
            ]),
            ("{ models: { providers: { openai: { headers: { 'X Org': 'a' } } } } }", &["models.providers.openai.headers[\"X Org\"]: invalid header name \"X Org\": use 1–128 letters, digits, `-` or `_` (like \"X-Title\") (1:47)"]),
        ];
        for (text, expected) in table {
            check(text, expected);
        }
    }

    #[test]
    fn a_capped_gateway_using_an_unpriced_model_is_a_warning_not_an_error() {
        let text = format!(
            "{{\n  models: {{ providers: {{ {OPENAI}, ollama: {{}} }} }},\n  agents: {{ defaults: {{ model: {{ primary: 'openai/gpt-4o', fallbacks: ['openai/mini', 'ollama/llama3'] }} }} }},\n  budget: {{ dailyUsd: 1 }},\n}}"
        );
        let loaded = load(&text).expect("valid: warnings never refuse");
        let got: Vec<String> = loaded.warnings().iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            [
                "agents.defaults.model.fallbacks[0]: \"openai/mini\" has no cost, so its calls count as $0 against budget.dailyUsd; add cost: { input, output } (USD per million tokens) to its entry in models.providers.openai.models (3:72)",
                "agents.defaults.model.fallbacks[1]: \"ollama/llama3\" has no cost, so its calls count as $0 against budget.dailyUsd; list it in models.providers.ollama.models with cost: { input, output } (USD per million tokens) (3:87)",
            ]
        );
        // A per-provider cap warns only for that provider's models.
        let per = text.replace(
            "budget: { dailyUsd: 1 }",
            "budget: { perProvider: { ollama: { dailyUsd: 1 } } }",
        );
        let got: Vec<String> = load(&per)
            .expect("valid")
            .warnings()
            .iter()
            .map(|d| d.message.clone())
            .collect();
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].contains("budget.perProvider.ollama.dailyUsd"),
            "{got:?}"
        );
        // No cap, no warning.
        let uncapped = text.replace("budget: { dailyUsd: 1 },", "");
        assert!(load(&uncapped).expect("valid").warnings().is_empty());
    }

    #[test]
    fn the_agent_view_applies_defaults_and_known_endpoints() {
        let loaded = load(&format!(
            "{{ models: {{ providers: {{ {OPENAI}, ollama: {{ baseUrl: 'http://gpu.local:11434/' }}, local: {{ baseUrl: 'http://127.0.0.1:8080/v1', models: [] }} }} }}, agents: {{ defaults: {{ model: {{ primary: 'openai/gpt-4o', fallbacks: ['ollama/qwen3'] }}, workspace: '~/w' }} }}, budget: {{ dailyUsd: 3, perProvider: {{ openai: {{ dailyUsd: 1.5 }} }} }}, tools: {{ deny: ['exec'] }} }}"
        ))
        .expect("valid");
        let agent = loaded.config.agent();
        let chain: Vec<String> = agent.model_chain.iter().map(ToString::to_string).collect();
        assert_eq!(chain, ["openai/gpt-4o", "ollama/qwen3"]);
        let openai = agent.provider("openai").expect("openai");
        assert_eq!(openai.api, ProviderApi::OpenaiCompletions);
        assert_eq!(openai.base_url, "https://api.openai.com/v1");
        assert_eq!(openai.timeout_seconds, DEFAULT_PROVIDER_TIMEOUT_SECONDS);
        assert_eq!(openai.api_key, Some(SecretRef::Keychain));
        let gpt = openai.model("gpt-4o").expect("listed");
        assert_eq!(gpt.context_window, Some(128_000));
        assert_eq!(
            gpt.cost,
            Some(ModelCost {
                input: 2.5,
                output: 10.0,
                cache_read: 0.0,
                cache_write: 0.0
            })
        );
        assert_eq!(
            openai.model("gpt-5"),
            None,
            "a listed provider takes only its models"
        );
        let ollama = agent.provider("ollama").expect("ollama");
        assert_eq!(
            ollama.api,
            ProviderApi::Ollama,
            "a known id keeps its api with its own baseUrl"
        );
        assert_eq!(ollama.base_url, "http://gpu.local:11434");
        assert_eq!(
            ollama.model("anything").map(|m| m.id),
            Some("anything".to_string())
        );
        let local = agent.provider("local").expect("local");
        assert_eq!(
            local.api,
            ProviderApi::OpenaiCompletions,
            "a custom baseUrl defaults to openai-completions"
        );
        assert_eq!(agent.bootstrap_max_chars, DEFAULT_BOOTSTRAP_MAX_CHARS);
        assert_eq!(
            agent.bootstrap_total_max_chars,
            DEFAULT_BOOTSTRAP_TOTAL_MAX_CHARS
        );
        assert_eq!(agent.timeout_seconds, DEFAULT_RUN_TIMEOUT_SECONDS);
        assert_eq!(agent.dm_scope, DmScope::Main);
        assert_eq!(agent.workspace.as_deref(), Some("~/w"));
        assert_eq!(agent.tools.exec.mode(), ExecMode::Deny);
        assert_eq!(agent.tools.deny, ["exec"]);
        assert!(agent.tools.web_fetch.enabled());
        assert_eq!(agent.budget.daily_usd, Some(3.0));
        assert_eq!(agent.budget.per_provider.get("openai"), Some(&1.5));
        assert_eq!(
            loaded.config.provider_secrets(),
            vec![(
                "models.providers.openai.apiKey".to_string(),
                &SecretRef::Keychain
            )]
        );
    }

    #[test]
    fn public_http_hosts() {
        let table: &[(&str, Option<&str>)] = &[
            ("https://api.openai.com/v1", None),
            ("http://api.openai.com/v1", Some("api.openai.com")),
            (
                "http://user:pw@api.example.com:8080/x",
                Some("api.example.com"),
            ),
            ("http://8.8.8.8", Some("8.8.8.8")),
            ("http://[2001:db8::1]:80/", Some("2001:db8::1")),
            ("http://127.0.0.1:11434", None),
            ("http://localhost:11434", None),
            ("http://api.localhost", None),
            ("http://10.1.2.3", None),
            ("http://172.20.0.1", None),
            ("http://172.32.0.1", Some("172.32.0.1")),
            ("http://192.168.0.9", None),
            ("http://169.254.1.1", None),
            ("http://100.64.0.1", None),
            ("http://100.128.0.1", Some("100.128.0.1")),
            ("http://[::1]:8080", None),
            ("http://[fd12::1]", None),
            ("http://[fe80::1]", None),
            ("http://gpu-box:8000", None),
            ("http://gpu.local", None),
            ("http://nas.home.arpa", None),
            ("http://svc.internal", None),
        ];
        for (url, expected) in table {
            assert_eq!(public_http_host(url), *expected, "{url}");
        }
    }

    #[test]
    fn model_refs_split_at_the_first_slash() {
        let r = ModelRef::parse("openrouter/qwen/qwen-2.5").expect("ref");
        assert_eq!(
            (r.provider.as_str(), r.model.as_str()),
            ("openrouter", "qwen/qwen-2.5")
        );
        for bad in ["gpt-4o", "/m", "openai/", "Open/m", "1x/m", "openai/ "] {
            assert_eq!(ModelRef::parse(bad), None, "{bad}");
        }
    }
}
