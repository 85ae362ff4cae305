//! The typed config: plain structs and enums, built only from a document that
//! validated, plus the obvious accessors (with defaults) the rest of OmniClaw
//! reads settings through.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use super::agent::{self, AgentModel, Budget, Models, Session, Tools};
use super::schema;
use crate::profile::Profile;

/// Declares a config enum with its JSON spellings in one place; the schema
/// takes `NAMES` from here, so the two cannot disagree.
macro_rules! config_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every accepted spelling, in schema order.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

config_enum! {
    /// `gateway.mode`.
    GatewayMode { Local = "local", Remote = "remote" }
}

config_enum! {
    /// `gateway.bind`.
    BindMode { Loopback = "loopback", Lan = "lan", Custom = "custom" }
}

config_enum! {
    /// `gateway.auth.mode`.
    AuthMode { Token = "token", Password = "password", None = "none" }
}

config_enum! {
    /// `gateway.reload.mode`.
    ReloadMode { Hybrid = "hybrid", Off = "off" }
}

config_enum! {
    /// An item of `rescue.watch.actions`: a rung of the recovery ladder
    /// the rescue may climb.
    WatchAction { Restart = "restart", Rollback = "rollback" }
}

config_enum! {
    /// `channels.telegram.dmPolicy`.
    DmPolicy { Pairing = "pairing", Allowlist = "allowlist", Disabled = "disabled" }
}

config_enum! {
    /// `channels.telegram.streaming.mode` (OpenClaw's modes).
    StreamingMode { Off = "off", Partial = "partial", Block = "block", Progress = "progress" }
}

config_enum! {
    /// `channels.telegram.streaming.chunkMode`.
    ChunkMode { Length = "length", Newline = "newline" }
}

config_enum! {
    /// `channels.telegram.streaming.preview.commandText` and
    /// `progress.commandText`: an exec line shows its command (`raw`) or only
    /// that a command runs (`status`, OpenClaw's default).
    CommandText { Raw = "raw", Status = "status" }
}

config_enum! {
    /// `channels.telegram.streaming.preview.chunk.breakPreference`.
    BreakPreference { Paragraph = "paragraph", Newline = "newline", Sentence = "sentence" }
}

config_enum! {
    /// `channels.telegram.groupPolicy`.
    GroupPolicy { Open = "open", Disabled = "disabled", Allowlist = "allowlist" }
}

config_enum! {
    /// `logging.level`.
    LogLevel { Trace = "trace", Debug = "debug", Info = "info", Warn = "warn", Error = "error" }
}

config_enum! {
    /// `models.providers.<id>.api`: the wire formats OmniClaw speaks.
    ProviderApi {
        OpenaiCompletions = "openai-completions",
        AnthropicMessages = "anthropic-messages",
        Ollama = "ollama",
    }
}

config_enum! {
    /// `models.mode` (OpenClaw's; no effect without a bundled catalog).
    ModelsMode { Merge = "merge", Replace = "replace" }
}

config_enum! {
    /// `session.dmScope`.
    DmScope {
        Main = "main",
        PerPeer = "per-peer",
        PerChannelPeer = "per-channel-peer",
        PerAccountChannelPeer = "per-account-channel-peer",
    }
}

config_enum! {
    /// `tools.exec.mode`.
    ExecMode { Deny = "deny", Allowlist = "allowlist", Ask = "ask", Full = "full" }
}

config_enum! {
    /// The `source` of a secret given as an object.
    SecretSource { Keychain = "keychain" }
}

/// Where a secret comes from. The config never has to hold the secret itself.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// The secret written into the config (accepted; `doctor` flags it).
    Plain(String),
    /// `"${NAME}"`: read from the environment variable NAME (stored without
    /// the `${}`).
    Env(String),
    /// `{"source": "keychain"}`: the OS keychain entry of this profile.
    Keychain,
}

impl SecretRef {
    pub fn is_plaintext(&self) -> bool {
        matches!(self, SecretRef::Plain(_))
    }

    /// Reads a validated secret value (a string or `{"source": "keychain"}`).
    pub(crate) fn from_value(value: &Value) -> Option<SecretRef> {
        match value {
            Value::String(text) => Some(match schema::env_ref(text) {
                Some(name) => SecretRef::Env(name.to_string()),
                None => SecretRef::Plain(text.clone()),
            }),
            Value::Object(_) => Some(SecretRef::Keychain),
            _ => None,
        }
    }
}

/// Never prints a plaintext secret.
impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Plain(_) => f.write_str("Plain(<redacted>)"),
            SecretRef::Env(name) => f.debug_tuple("Env").field(name).finish(),
            SecretRef::Keychain => f.write_str("Keychain"),
        }
    }
}

/// How a secret is configured, for status output: never the plaintext.
impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Plain(_) => f.write_str("plaintext in config"),
            SecretRef::Env(name) => write!(f, "${{{name}}}"),
            SecretRef::Keychain => f.write_str("keychain"),
        }
    }
}

/// A validated `omniclaw.json`. Unset keys are `None` (or empty); the
/// accessors on [`Config`] apply the documented defaults.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    pub gateway: Gateway,
    pub agents: Agents,
    pub browser: Browser,
    pub canvas_host: CanvasHost,
    pub channels: Channels,
    pub rescue: Rescue,
    pub logging: Logging,
    pub models: Models,
    pub session: Session,
    pub tools: Tools,
    pub budget: Budget,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Gateway {
    pub mode: Option<GatewayMode>,
    pub port: Option<u16>,
    pub bind: Option<BindMode>,
    pub custom_bind_host: Option<String>,
    pub auth: GatewayAuth,
    pub remote: GatewayRemote,
    pub reload: GatewayReload,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct GatewayAuth {
    pub mode: Option<AuthMode>,
    pub token: Option<SecretRef>,
    pub password: Option<SecretRef>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct GatewayRemote {
    pub url: Option<String>,
    pub token: Option<SecretRef>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct GatewayReload {
    pub mode: Option<ReloadMode>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Agents {
    pub defaults: AgentDefaults,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentDefaults {
    /// As written: may start with `~`; `paths` expands it.
    pub workspace: Option<String>,
    pub model: AgentModel,
    pub bootstrap_max_chars: Option<u64>,
    pub bootstrap_total_max_chars: Option<u64>,
    pub timeout_seconds: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Browser {
    pub enabled: Option<bool>,
    pub control_port: Option<u16>,
    pub cdp_port_range_start: Option<u16>,
    pub cdp_url: Option<String>,
    pub profiles: BTreeMap<String, BrowserProfile>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct BrowserProfile {
    pub cdp_port: Option<u16>,
    pub cdp_url: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CanvasHost {
    pub enabled: Option<bool>,
    pub port: Option<u16>,
    pub root: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Channels {
    pub telegram: Telegram,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Telegram {
    pub enabled: Option<bool>,
    pub bot_token: Option<SecretRef>,
    pub dm_policy: Option<DmPolicy>,
    /// Numeric Telegram user ids (numeric strings in the file are read too).
    pub allow_from: Vec<u64>,
    pub api_root: Option<String>,
    pub webhook_url: Option<String>,
    pub webhook_port: Option<u16>,
    pub streaming: TelegramStreaming,
    pub text_chunk_limit: Option<u64>,
    pub group_policy: Option<GroupPolicy>,
    pub group_allow_from: Option<Vec<u64>>,
    /// By chat id (`*` for every group).
    pub groups: BTreeMap<String, TelegramGroup>,
}

/// `channels.telegram.streaming`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TelegramStreaming {
    pub mode: Option<StreamingMode>,
    pub chunk_mode: Option<ChunkMode>,
    pub preview_tool_progress: Option<bool>,
    pub progress_tool_progress: Option<bool>,
    /// `progress.label`: `Some(None)` is `false` (no label line).
    pub progress_label: Option<Option<String>>,
    pub progress_labels: Vec<String>,
    pub progress_max_lines: Option<u64>,
    pub progress_max_line_chars: Option<u64>,
    pub preview_command_text: Option<CommandText>,
    pub progress_command_text: Option<CommandText>,
    pub progress_commentary: Option<bool>,
    pub progress_narration: Option<bool>,
    /// `streaming.preview.chunk`, else OpenClaw's legacy `draftChunk`.
    pub preview_chunk: StreamingChunk,
    /// `streaming.block.enabled`, else OpenClaw's legacy `blockStreaming`.
    pub block_enabled: Option<bool>,
    /// `streaming.block.coalesce`, else OpenClaw's legacy
    /// `blockStreamingCoalesce`.
    pub block_coalesce: Coalesce,
}

/// `streaming.preview.chunk` (OpenClaw's `BlockStreamingChunk`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamingChunk {
    pub min_chars: Option<u64>,
    pub max_chars: Option<u64>,
    pub break_preference: Option<BreakPreference>,
}

/// `streaming.block.coalesce` (OpenClaw's `BlockStreamingCoalesce`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coalesce {
    pub min_chars: Option<u64>,
    pub max_chars: Option<u64>,
    pub idle_ms: Option<u64>,
}

/// The streaming mode `channels.telegram.streaming` and OpenClaw's legacy
/// `channels.telegram.streamMode` ask for, read as OpenClaw's doctor
/// migrates them: `streaming.mode` first; else a mode named by a scalar
/// `streaming: "block"`, then by `streamMode`; else `streaming: true` is
/// "partial" and `false` "off"; any other legacy form (a string naming no
/// mode, `streamMode` beside an object without a mode) is "partial".
/// `None` without any of them: the default applies ("progress").
pub fn streaming_mode(
    streaming: Option<&Value>,
    stream_mode: Option<&Value>,
) -> Option<StreamingMode> {
    let named = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .and_then(|s| StreamingMode::parse(&s.trim().to_ascii_lowercase()))
    };
    if let Some(Value::Object(object)) = streaming {
        if let Some(mode) = object.get("mode") {
            return named(Some(mode));
        }
    }
    let legacy =
        matches!(streaming, Some(Value::String(_) | Value::Bool(_))) || stream_mode.is_some();
    if !legacy {
        return None;
    }
    named(streaming)
        .or_else(|| named(stream_mode))
        .or(match streaming {
            Some(Value::Bool(false)) => Some(StreamingMode::Off),
            _ => Some(StreamingMode::Partial),
        })
}

/// `channels.telegram.groups.<chatId>`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TelegramGroup {
    pub require_mention: Option<bool>,
    pub enabled: Option<bool>,
    pub allow_from: Vec<u64>,
    pub group_policy: Option<GroupPolicy>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rescue {
    pub targets: Vec<Profile>,
    pub watch: Watch,
}

/// `rescue.watch` as written; [`Config::rescue_watch`] applies the defaults.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Watch {
    pub enabled: Option<bool>,
    pub interval_seconds: Option<u64>,
    pub fail_after: Option<u32>,
    pub actions: Option<Vec<WatchAction>>,
    pub max_repairs_per_hour: Option<u32>,
}

/// The rescue's watch with every default applied: what the watcher runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchSettings {
    pub enabled: bool,
    /// Seconds between two checks of a target, at least 1.
    pub interval_seconds: u64,
    /// Consecutive failed checks that make a target down, at least 1.
    pub fail_after: u32,
    /// The rungs the rescue may climb, in schema order, without repeats.
    pub actions: Vec<WatchAction>,
    /// Repairs of one target in any hour, at least 1.
    pub max_repairs_per_hour: u32,
}

impl WatchSettings {
    pub const DEFAULT_INTERVAL_SECONDS: u64 = 10;
    pub const DEFAULT_FAIL_AFTER: u32 = 3;
    pub const DEFAULT_MAX_REPAIRS_PER_HOUR: u32 = 3;

    pub fn allows(&self, action: WatchAction) -> bool {
        self.actions.contains(&action)
    }
}

impl Default for WatchSettings {
    fn default() -> Self {
        WatchSettings {
            enabled: false,
            interval_seconds: Self::DEFAULT_INTERVAL_SECONDS,
            fail_after: Self::DEFAULT_FAIL_AFTER,
            actions: vec![WatchAction::Restart],
            max_repairs_per_hour: Self::DEFAULT_MAX_REPAIRS_PER_HOUR,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Logging {
    pub level: Option<LogLevel>,
}

impl Config {
    /// `gateway.port`; the base-port precedence (flag > env > config >
    /// default) lives in `paths`.
    pub fn gateway_port(&self) -> Option<u16> {
        self.gateway.port
    }

    pub fn gateway_mode(&self) -> GatewayMode {
        self.gateway.mode.unwrap_or(GatewayMode::Local)
    }

    pub fn bind(&self) -> BindMode {
        self.gateway.bind.unwrap_or(BindMode::Loopback)
    }

    pub fn custom_bind_host(&self) -> Option<&str> {
        self.gateway.custom_bind_host.as_deref()
    }

    pub fn auth_mode(&self) -> AuthMode {
        self.gateway.auth.mode.unwrap_or(AuthMode::Token)
    }

    pub fn reload_mode(&self) -> ReloadMode {
        self.gateway.reload.mode.unwrap_or(ReloadMode::Hybrid)
    }

    /// `agents.defaults.workspace` as written (`~` not expanded).
    pub fn workspace(&self) -> Option<&str> {
        self.agents.defaults.workspace.as_deref()
    }

    pub fn browser_control_port(&self) -> Option<u16> {
        self.browser.control_port
    }

    pub fn cdp_port_range_start(&self) -> Option<u16> {
        self.browser.cdp_port_range_start
    }

    pub fn canvas_port(&self) -> Option<u16> {
        self.canvas_host.port
    }

    pub fn telegram_bot_token(&self) -> Option<&SecretRef> {
        self.channels.telegram.bot_token.as_ref()
    }

    pub fn dm_policy(&self) -> DmPolicy {
        self.channels
            .telegram
            .dm_policy
            .unwrap_or(DmPolicy::Pairing)
    }

    pub fn rescue_targets(&self) -> &[Profile] {
        &self.rescue.targets
    }

    /// `rescue.watch` with its defaults: off, every 10 s, down after 3
    /// failed checks, restart only, at most 3 repairs an hour.
    pub fn rescue_watch(&self) -> WatchSettings {
        let watch = &self.rescue.watch;
        let defaults = WatchSettings::default();
        WatchSettings {
            enabled: watch.enabled.unwrap_or(defaults.enabled),
            interval_seconds: watch.interval_seconds.unwrap_or(defaults.interval_seconds),
            fail_after: watch.fail_after.unwrap_or(defaults.fail_after),
            actions: watch.actions.clone().unwrap_or(defaults.actions),
            max_repairs_per_hour: watch
                .max_repairs_per_hour
                .unwrap_or(defaults.max_repairs_per_hour),
        }
    }

    pub fn log_level(&self) -> LogLevel {
        self.logging.level.unwrap_or(LogLevel::Info)
    }

    /// Every secret that is set, with its dotted path: the fixed ones in
    /// schema order, then each model provider's key and headers.
    pub fn secrets(&self) -> Vec<(String, &SecretRef)> {
        [
            ("gateway.auth.token", &self.gateway.auth.token),
            ("gateway.auth.password", &self.gateway.auth.password),
            ("gateway.remote.token", &self.gateway.remote.token),
            (
                "channels.telegram.botToken",
                &self.channels.telegram.bot_token,
            ),
        ]
        .into_iter()
        .filter_map(|(path, secret)| secret.as_ref().map(|s| (path.to_string(), s)))
        .chain(self.provider_secrets())
        .collect()
    }

    /// Builds the model from a value that passed validation. Anything that
    /// does not fit is left unset: validation already refused it.
    pub(crate) fn from_validated(root: &Value) -> Config {
        let at = |path: &[&str]| path.iter().try_fold(root, |v, key| v.get(key));
        let text = |path: &[&str]| at(path).and_then(Value::as_str).map(str::to_string);
        let port = |path: &[&str]| {
            at(path)
                .and_then(Value::as_u64)
                .and_then(|p| u16::try_from(p).ok())
        };
        let flag = |path: &[&str]| at(path).and_then(Value::as_bool);
        let secret = |path: &[&str]| at(path).and_then(SecretRef::from_value);
        let choice = |path: &[&str]| at(path).and_then(Value::as_str);
        // A count past u32 is clamped: nobody means four billion checks.
        let count = |path: &[&str]| {
            at(path)
                .and_then(Value::as_u64)
                .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
        };

        let profiles = at(&["browser", "profiles"])
            .and_then(Value::as_object)
            .map(|map| {
                map.iter()
                    .map(|(name, p)| {
                        let profile = BrowserProfile {
                            cdp_port: p
                                .get("cdpPort")
                                .and_then(Value::as_u64)
                                .and_then(|n| u16::try_from(n).ok()),
                            cdp_url: p.get("cdpUrl").and_then(Value::as_str).map(str::to_string),
                        };
                        (name.clone(), profile)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let allow_from = at(&["channels", "telegram", "allowFrom"])
            .and_then(Value::as_array)
            .map(|ids| ids.iter().filter_map(telegram_user_id).collect())
            .unwrap_or_default();
        let targets = at(&["rescue", "targets"])
            .and_then(Value::as_array)
            .map(|names| {
                names
                    .iter()
                    .filter_map(Value::as_str)
                    .filter_map(|name| Profile::parse(name).ok())
                    .collect()
            })
            .unwrap_or_default();

        let mut config = Config {
            gateway: Gateway {
                mode: choice(&["gateway", "mode"]).and_then(GatewayMode::parse),
                port: port(&["gateway", "port"]),
                bind: choice(&["gateway", "bind"]).and_then(BindMode::parse),
                custom_bind_host: text(&["gateway", "customBindHost"]),
                auth: GatewayAuth {
                    mode: choice(&["gateway", "auth", "mode"]).and_then(AuthMode::parse),
                    token: secret(&["gateway", "auth", "token"]),
                    password: secret(&["gateway", "auth", "password"]),
                },
                remote: GatewayRemote {
                    url: text(&["gateway", "remote", "url"]),
                    token: secret(&["gateway", "remote", "token"]),
                },
                reload: GatewayReload {
                    mode: choice(&["gateway", "reload", "mode"]).and_then(ReloadMode::parse),
                },
            },
            agents: Agents {
                defaults: AgentDefaults {
                    workspace: text(&["agents", "defaults", "workspace"]),
                    ..AgentDefaults::default()
                },
            },
            browser: Browser {
                enabled: flag(&["browser", "enabled"]),
                control_port: port(&["browser", "controlPort"]),
                cdp_port_range_start: port(&["browser", "cdpPortRangeStart"]),
                cdp_url: text(&["browser", "cdpUrl"]),
                profiles,
            },
            canvas_host: CanvasHost {
                enabled: flag(&["canvasHost", "enabled"]),
                port: port(&["canvasHost", "port"]),
                root: text(&["canvasHost", "root"]),
            },
            channels: Channels {
                telegram: Telegram {
                    enabled: flag(&["channels", "telegram", "enabled"]),
                    bot_token: secret(&["channels", "telegram", "botToken"]),
                    dm_policy: choice(&["channels", "telegram", "dmPolicy"])
                        .and_then(DmPolicy::parse),
                    allow_from,
                    api_root: text(&["channels", "telegram", "apiRoot"]),
                    webhook_url: text(&["channels", "telegram", "webhookUrl"]),
                    webhook_port: port(&["channels", "telegram", "webhookPort"]),
                    streaming: TelegramStreaming {
                        mode: streaming_mode(
                            at(&["channels", "telegram", "streaming"]),
                            at(&["channels", "telegram", "streamMode"]),
                        ),
                        // The nested key wins over OpenClaw's legacy flat one.
                        chunk_mode: choice(&["channels", "telegram", "streaming", "chunkMode"])
                            .or_else(|| choice(&["channels", "telegram", "chunkMode"]))
                            .and_then(ChunkMode::parse),
                        preview_tool_progress: flag(&[
                            "channels",
                            "telegram",
                            "streaming",
                            "preview",
                            "toolProgress",
                        ]),
                        progress_tool_progress: flag(&[
                            "channels",
                            "telegram",
                            "streaming",
                            "progress",
                            "toolProgress",
                        ]),
                        progress_label: match at(&[
                            "channels",
                            "telegram",
                            "streaming",
                            "progress",
                            "label",
                        ]) {
                            Some(Value::Bool(false)) => Some(None),
                            Some(Value::String(s)) => Some(Some(s.clone())),
                            _ => None,
                        },
                        progress_labels: at(&[
                            "channels",
                            "telegram",
                            "streaming",
                            "progress",
                            "labels",
                        ])
                        .and_then(Value::as_array)
                        .map(|l| {
                            l.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_string)
                                .collect()
                        })
                        .unwrap_or_default(),
                        progress_max_lines: at(&[
                            "channels",
                            "telegram",
                            "streaming",
                            "progress",
                            "maxLines",
                        ])
                        .and_then(Value::as_u64),
                        progress_max_line_chars: at(&[
                            "channels",
                            "telegram",
                            "streaming",
                            "progress",
                            "maxLineChars",
                        ])
                        .and_then(Value::as_u64),
                        preview_command_text: choice(&[
                            "channels",
                            "telegram",
                            "streaming",
                            "preview",
                            "commandText",
                        ])
                        .and_then(CommandText::parse),
                        progress_command_text: choice(&[
                            "channels",
                            "telegram",
                            "streaming",
                            "progress",
                            "commandText",
                        ])
                        .and_then(CommandText::parse),
                        progress_commentary: flag(&[
                            "channels",
                            "telegram",
                            "streaming",
                            "progress",
                            "commentary",
                        ]),
                        progress_narration: flag(&[
                            "channels",
                            "telegram",
                            "streaming",
                            "progress",
                            "narration",
                        ]),
                        // As OpenClaw's doctor: a legacy flat key counts
                        // only where the nested one is unset.
                        preview_chunk: at(&[
                            "channels",
                            "telegram",
                            "streaming",
                            "preview",
                            "chunk",
                        ])
                        .or_else(|| at(&["channels", "telegram", "draftChunk"]))
                        .map(|c| StreamingChunk {
                            min_chars: c.get("minChars").and_then(Value::as_u64),
                            max_chars: c.get("maxChars").and_then(Value::as_u64),
                            break_preference: c
                                .get("breakPreference")
                                .and_then(Value::as_str)
                                .and_then(BreakPreference::parse),
                        })
                        .unwrap_or_default(),
                        block_enabled: flag(&[
                            "channels",
                            "telegram",
                            "streaming",
                            "block",
                            "enabled",
                        ])
                        .or_else(|| flag(&["channels", "telegram", "blockStreaming"])),
                        block_coalesce: at(&[
                            "channels",
                            "telegram",
                            "streaming",
                            "block",
                            "coalesce",
                        ])
                        .or_else(|| at(&["channels", "telegram", "blockStreamingCoalesce"]))
                        .map(|c| Coalesce {
                            min_chars: c.get("minChars").and_then(Value::as_u64),
                            max_chars: c.get("maxChars").and_then(Value::as_u64),
                            idle_ms: c.get("idleMs").and_then(Value::as_u64),
                        })
                        .unwrap_or_default(),
                    },
                    text_chunk_limit: at(&["channels", "telegram", "textChunkLimit"])
                        .and_then(Value::as_u64),
                    group_policy: choice(&["channels", "telegram", "groupPolicy"])
                        .and_then(GroupPolicy::parse),
                    group_allow_from: at(&["channels", "telegram", "groupAllowFrom"])
                        .and_then(Value::as_array)
                        .map(|ids| ids.iter().filter_map(telegram_user_id).collect()),
                    groups: at(&["channels", "telegram", "groups"])
                        .and_then(Value::as_object)
                        .map(|map| {
                            map.iter()
                                .map(|(id, g)| {
                                    let group = TelegramGroup {
                                        require_mention: g
                                            .get("requireMention")
                                            .and_then(Value::as_bool),
                                        enabled: g.get("enabled").and_then(Value::as_bool),
                                        allow_from: g
                                            .get("allowFrom")
                                            .and_then(Value::as_array)
                                            .map(|ids| {
                                                ids.iter().filter_map(telegram_user_id).collect()
                                            })
                                            .unwrap_or_default(),
                                        group_policy: g
                                            .get("groupPolicy")
                                            .and_then(Value::as_str)
                                            .and_then(GroupPolicy::parse),
                                    };
                                    (id.clone(), group)
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                },
            },
            rescue: Rescue {
                targets,
                watch: Watch {
                    enabled: flag(&["rescue", "watch", "enabled"]),
                    interval_seconds: at(&["rescue", "watch", "intervalSeconds"])
                        .and_then(Value::as_u64),
                    fail_after: count(&["rescue", "watch", "failAfter"]),
                    actions: at(&["rescue", "watch", "actions"])
                        .and_then(Value::as_array)
                        .map(|items| {
                            items
                                .iter()
                                .filter_map(Value::as_str)
                                .filter_map(WatchAction::parse)
                                .collect()
                        }),
                    max_repairs_per_hour: count(&["rescue", "watch", "maxRepairsPerHour"]),
                },
            },
            logging: Logging {
                level: choice(&["logging", "level"]).and_then(LogLevel::parse),
            },
            ..Config::default()
        };
        agent::sections_from(root, &mut config);
        config
    }
}

/// A Telegram user id: a positive integer, or a string of digits.
pub(crate) fn telegram_user_id(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64().filter(|&id| id > 0),
        Value::String(s) if !s.starts_with('0') && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().ok()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check<T: PartialEq + fmt::Debug>(input: &str, got: T, expected: T) {
        assert_eq!(got, expected, "input: {input}");
    }

    #[test]
    fn enums_round_trip_their_names() {
        for name in BindMode::NAMES {
            check(
                name,
                BindMode::parse(name).map(BindMode::as_str),
                Some(*name),
            );
        }
        check("LAN", BindMode::parse("LAN"), None);
        check("none", AuthMode::parse("none"), Some(AuthMode::None));
        check(
            "warn",
            LogLevel::parse("warn").map(|l| l.to_string()),
            Some("warn".into()),
        );
        check(
            "names",
            DmPolicy::NAMES,
            &["pairing", "allowlist", "disabled"][..],
        );
    }

    #[test]
    fn secret_debug_and_display_never_show_plaintext() {
        let table = [
            (
                SecretRef::Plain("123:ABC".into()),
                "Plain(<redacted>)",
                "plaintext in config",
            ),
            (SecretRef::Env("BOT".into()), "Env(\"BOT\")", "${BOT}"),
            (SecretRef::Keychain, "Keychain", "keychain"),
        ];
        for (secret, debug, display) in table {
            check(debug, format!("{secret:?}"), debug.to_string());
            check(display, secret.to_string(), display.to_string());
        }
        let config = Config {
            channels: Channels {
                telegram: Telegram {
                    bot_token: Some(SecretRef::Plain("123:SECRET".into())),
                    ..Telegram::default()
                },
            },
            ..Config::default()
        };
        assert!(!format!("{config:?}").contains("SECRET"));
    }

    #[test]
    fn streaming_modes_are_read_as_openclaw_migrates_them() {
        use StreamingMode::{Block, Off, Partial, Progress};
        fn check(
            streaming: Option<Value>,
            stream_mode: Option<Value>,
            expected: Option<StreamingMode>,
        ) {
            assert_eq!(
                streaming_mode(streaming.as_ref(), stream_mode.as_ref()),
                expected,
                "{streaming:?} / {stream_mode:?}"
            );
        }
        // Nothing set: the default ("progress") applies.
        check(None, None, None);
        check(Some(json!({"chunkMode": "length"})), None, None);
        // The object's mode wins over everything.
        check(
            Some(json!({"mode": "block"})),
            Some(json!("off")),
            Some(Block),
        );
        check(Some(json!({"mode": "progress"})), None, Some(Progress));
        // OpenClaw's legacy forms.
        check(Some(json!(true)), None, Some(Partial));
        check(Some(json!(false)), None, Some(Off));
        check(Some(json!("block")), None, Some(Block));
        check(Some(json!(" Progress ")), None, Some(Progress));
        check(Some(json!("fast")), None, Some(Partial));
        check(Some(json!("fast")), Some(json!("off")), Some(Off));
        check(Some(json!(false)), Some(json!("block")), Some(Block));
        check(Some(json!(true)), Some(json!("nonsense")), Some(Partial));
        check(None, Some(json!("off")), Some(Off));
        check(None, Some(json!("nonsense")), Some(Partial));
        check(
            Some(json!({"chunkMode": "newline"})),
            Some(json!("block")),
            Some(Block),
        );
    }

    #[test]
    fn openclaws_block_chunk_and_command_keys_are_read_nested_first() {
        fn read(telegram: Value) -> TelegramStreaming {
            Config::from_validated(&json!({ "channels": { "telegram": telegram } }))
                .channels
                .telegram
                .streaming
        }
        let nested = read(json!({
            "streaming": {
                "block": { "enabled": true, "coalesce": { "minChars": 10, "idleMs": 0 } },
                "preview": { "chunk": { "maxChars": 500, "breakPreference": "newline" }, "commandText": "raw" },
                "progress": { "commandText": "status", "commentary": true, "narration": false }
            },
            "blockStreaming": false,
            "blockStreamingCoalesce": { "maxChars": 99 },
            "draftChunk": { "minChars": 7 }
        }));
        check("nested enabled", nested.block_enabled, Some(true));
        check(
            "nested coalesce",
            nested.block_coalesce,
            Coalesce {
                min_chars: Some(10),
                max_chars: None,
                idle_ms: Some(0),
            },
        );
        check(
            "nested chunk",
            nested.preview_chunk,
            StreamingChunk {
                min_chars: None,
                max_chars: Some(500),
                break_preference: Some(BreakPreference::Newline),
            },
        );
        check(
            "preview commandText",
            nested.preview_command_text,
            Some(CommandText::Raw),
        );
        check(
            "progress commandText",
            nested.progress_command_text,
            Some(CommandText::Status),
        );
        check("commentary", nested.progress_commentary, Some(true));
        check("narration", nested.progress_narration, Some(false));
        // The legacy flat keys where the nested ones are unset.
        let legacy = read(json!({
            "blockStreaming": true,
            "blockStreamingCoalesce": { "maxChars": 99 },
            "draftChunk": { "minChars": 7 }
        }));
        check("legacy enabled", legacy.block_enabled, Some(true));
        check("legacy coalesce", legacy.block_coalesce.max_chars, Some(99));
        check("legacy chunk", legacy.preview_chunk.min_chars, Some(7));
        check("unset", read(json!({})), TelegramStreaming::default());
    }

    #[test]
    fn secret_refs_from_values() {
        let table = [
            (json!("abc"), Some(SecretRef::Plain("abc".into()))),
            (
                json!("${TG_TOKEN}"),
                Some(SecretRef::Env("TG_TOKEN".into())),
            ),
            (json!({"source": "keychain"}), Some(SecretRef::Keychain)),
            (json!(5), None),
        ];
        for (value, expected) in table {
            check(&value.to_string(), SecretRef::from_value(&value), expected);
        }
    }

    #[test]
    fn telegram_user_ids() {
        let table = [
            (json!(123), Some(123)),
            (json!("456"), Some(456)),
            (json!(0), None),
            (json!(-5), None),
            (json!(1.5), None),
            (json!("012"), None),
            (json!("@bob"), None),
            (json!(""), None),
        ];
        for (value, expected) in table {
            check(&value.to_string(), telegram_user_id(&value), expected);
        }
    }

    #[test]
    fn defaults_and_accessors() {
        let empty = Config::default();
        check("bind", empty.bind(), BindMode::Loopback);
        check("mode", empty.gateway_mode(), GatewayMode::Local);
        check("auth", empty.auth_mode(), AuthMode::Token);
        check("reload", empty.reload_mode(), ReloadMode::Hybrid);
        check("dm", empty.dm_policy(), DmPolicy::Pairing);
        check("log", empty.log_level(), LogLevel::Info);
        check("secrets", empty.secrets().len(), 0);

        let config = Config::from_validated(&json!({
            "gateway": {
                "port": 19001, "bind": "custom", "customBindHost": "10.0.0.2",
                "auth": { "mode": "password", "password": "${GW_PASS}" },
                "remote": { "token": { "source": "keychain" } },
            },
            "agents": { "defaults": { "workspace": "~/.omniclaw/workspace-rescue" } },
            "browser": { "controlPort": 19003, "profiles": { "work": { "cdpPort": 19020 } } },
            "canvasHost": { "port": 19005 },
            "channels": { "telegram": { "botToken": "1:x", "allowFrom": [5, "6"] } },
            "rescue": { "targets": ["main", "default"] },
        }));
        check("port", config.gateway_port(), Some(19001));
        check("bind", config.bind(), BindMode::Custom);
        check("host", config.custom_bind_host(), Some("10.0.0.2"));
        check("auth", config.auth_mode(), AuthMode::Password);
        check(
            "ws",
            config.workspace(),
            Some("~/.omniclaw/workspace-rescue"),
        );
        check("control", config.browser_control_port(), Some(19003));
        check("canvas", config.canvas_port(), Some(19005));
        check(
            "profile",
            config.browser.profiles.get("work").and_then(|p| p.cdp_port),
            Some(19020),
        );
        check(
            "allow",
            config.channels.telegram.allow_from.clone(),
            vec![5, 6],
        );
        check(
            "targets",
            config
                .rescue_targets()
                .iter()
                .map(Profile::name)
                .collect::<Vec<_>>(),
            vec!["main", "default"],
        );
        check(
            "secrets",
            config.secrets(),
            vec![
                (
                    "gateway.auth.password".to_string(),
                    &SecretRef::Env("GW_PASS".into()),
                ),
                ("gateway.remote.token".to_string(), &SecretRef::Keychain),
                (
                    "channels.telegram.botToken".to_string(),
                    &SecretRef::Plain("1:x".into()),
                ),
            ],
        );
    }

    #[test]
    fn the_rescue_watch_has_its_defaults_and_takes_each_key() {
        check(
            "defaults",
            Config::default().rescue_watch(),
            WatchSettings {
                enabled: false,
                interval_seconds: 10,
                fail_after: 3,
                actions: vec![WatchAction::Restart],
                max_repairs_per_hour: 3,
            },
        );
        let set = Config::from_validated(&json!({
            "rescue": { "watch": {
                "enabled": true, "intervalSeconds": 30, "failAfter": 1,
                "actions": ["restart", "rollback"], "maxRepairsPerHour": 5,
            } },
        }));
        let watch = set.rescue_watch();
        check(
            "set",
            watch.clone(),
            WatchSettings {
                enabled: true,
                interval_seconds: 30,
                fail_after: 1,
                actions: vec![WatchAction::Restart, WatchAction::Rollback],
                max_repairs_per_hour: 5,
            },
        );
        check(
            "rollback allowed",
            watch.allows(WatchAction::Rollback),
            true,
        );
        // An empty list allows no repair at all: the rescue only reports.
        let none = Config::from_validated(&json!({ "rescue": { "watch": { "actions": [] } } }));
        check("none", none.rescue_watch().actions, vec![]);
        check(
            "no restart",
            none.rescue_watch().allows(WatchAction::Restart),
            false,
        );
    }

    #[test]
    fn secrets_cover_every_secret_in_the_schema() {
        let in_schema: Vec<String> = schema::all_paths()
            .into_iter()
            .filter(|(_, node)| matches!(node.kind, schema::Kind::Secret))
            .map(|(path, _)| path)
            .collect();
        let every = Config::from_validated(&json!({
            "gateway": {
                "auth": { "token": "a", "password": "b" },
                "remote": { "token": "c" },
            },
            "channels": { "telegram": { "botToken": "d" } },
            "models": { "providers": { "p": { "apiKey": "e", "headers": { "X-Org": "f" } } } },
        }));
        let listed: Vec<String> = every
            .secrets()
            .into_iter()
            .map(|(p, _)| {
                // The schema names map entries `<name>`.
                p.replace(".p.", ".<name>.").replace(".X-Org", ".<name>")
            })
            .collect();
        assert_eq!(listed, in_schema);
    }
}
