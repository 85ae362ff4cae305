//! The one description of what `omniclaw.json` may contain.
//!
//! A small static tree of node kinds. Validation, path lookup, secret
//! redaction and the exported JSON Schema all walk this tree, so adding a key
//! here is the whole change for all four.

use serde_json::{json, Map, Value};

use super::model::{
    AuthMode, BindMode, BreakPreference, ChunkMode, CommandText, DmPolicy, DmScope, ExecMode,
    GatewayMode, GroupPolicy, LogLevel, ModelsMode, ProviderApi, ReloadMode, SecretSource,
    StreamingMode, WatchAction,
};

/// One place in the config tree.
#[derive(Debug)]
pub(crate) struct Node {
    pub kind: Kind,
    pub doc: &'static str,
}

/// A named member of an object node.
#[derive(Debug)]
pub(crate) struct Field {
    pub name: &'static str,
    pub node: Node,
}

#[derive(Debug)]
pub(crate) enum Kind {
    /// Fixed keys; anything else is an unknown key.
    Object(&'static [Field]),
    /// User-chosen keys following `names`, each holding `value`. `what`
    /// names one entry.
    Map {
        what: &'static str,
        names: Names,
        value: &'static Node,
    },
    Array {
        item: &'static Node,
        unique: bool,
    },
    Bool,
    /// A TCP port, 1–65535.
    Port,
    /// A whole number, at least `min`.
    Count {
        min: u64,
    },
    /// An amount of US dollars: a number, 0 or more.
    Usd,
    Text(Text),
    /// Either a string of `text`, or an object of `fields` (OpenClaw's
    /// `agents.defaults.model`: `"p/m"` or `{primary, fallbacks}`).
    TextOr {
        text: Text,
        fields: &'static [Field],
    },
    /// An object of `fields`, or OpenClaw's legacy scalar forms of it: a
    /// boolean or any string (`channels.telegram.streaming: true` or
    /// `"partial"`, which OpenClaw's doctor migrates into the object; they
    /// are read as it does, with a warning). `names` are the strings that
    /// name something; others are read as OpenClaw reads them.
    LegacyOr {
        names: &'static [&'static str],
        fields: &'static [Field],
    },
    /// A string of `text`, or `false` for none (OpenClaw's
    /// `streaming.progress.label`).
    TextOrFalse(Text),
    /// A URL with one of these schemes (lower case).
    Url(&'static [&'static str]),
    /// One of these strings.
    Enum(&'static [&'static str]),
    /// A string (plaintext or `"${ENV}"`) or `{"source": "keychain"}`.
    Secret,
    /// A positive integer, or a string of digits.
    TelegramUserId,
    /// A gateway profile name (`default` included), as `--profile` takes it.
    ProfileName,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Text {
    /// Any string (only `$schema`, which OmniClaw ignores).
    Any,
    /// A filesystem path; `~` stands for the home directory.
    Path,
    /// An IP address or host name.
    Host,
    /// Any non-empty string (a model id, a tool name, a command line).
    Plain,
    /// A model reference `provider/model`: the provider id, a `/`, and the
    /// provider's model id (which may contain more `/`).
    ModelRef,
}

/// The rule for the user-chosen keys of a [`Kind::Map`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Names {
    /// `browser.profiles`.
    BrowserProfile,
    /// `models.providers`, `budget.perProvider`: the provider id pattern of
    /// OpenClaw's secret references, so an id is always a plain path segment.
    ProviderId,
    /// HTTP header names (`headers`).
    Header,
    /// `channels.telegram.groups`: a group's chat id (negative digits) or `*`.
    TelegramChat,
}

impl Names {
    pub(crate) fn pattern(self) -> &'static str {
        match self {
            Names::BrowserProfile => BROWSER_PROFILE_PATTERN,
            Names::ProviderId => PROVIDER_ID_PATTERN,
            Names::Header => HEADER_PATTERN,
            Names::TelegramChat => TELEGRAM_CHAT_PATTERN,
        }
    }

    pub(crate) fn accepts(self, name: &str) -> bool {
        match self {
            Names::BrowserProfile => is_browser_profile_name(name),
            Names::ProviderId => is_provider_id(name),
            Names::Header => {
                !name.is_empty()
                    && name.len() <= 128
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            }
            Names::TelegramChat => {
                name == "*"
                    || name
                        .strip_prefix('-')
                        .unwrap_or(name)
                        .parse::<u64>()
                        .is_ok_and(|n| n > 0)
            }
        }
    }

    /// The rule in words, for error messages.
    pub(crate) fn rule(self) -> &'static str {
        match self {
            Names::BrowserProfile => {
                "use 1–64 lower-case letters, digits, `-` or `_`, starting with a letter or digit"
            }
            Names::ProviderId => {
                "use 1–64 lower-case letters, digits, `-` or `_`, starting with a letter (like \"openai\" or \"local-llm\")"
            }
            Names::Header => "use 1–128 letters, digits, `-` or `_` (like \"X-Title\")",
            Names::TelegramChat => {
                "use the group's numeric chat id (like \"-1001234567890\"; the bot's log and `/whoami` show it) or \"*\" for every group"
            }
        }
    }
}

/// `browser.profiles` keys: `^[a-z0-9][a-z0-9_-]{0,63}$`.
pub(crate) const BROWSER_PROFILE_PATTERN: &str = "^[a-z0-9][a-z0-9_-]{0,63}$";
/// `models.providers` keys: OpenClaw's provider id pattern.
pub(crate) const PROVIDER_ID_PATTERN: &str = "^[a-z][a-z0-9_-]{0,63}$";
/// Header names in `headers`.
pub(crate) const HEADER_PATTERN: &str = "^[A-Za-z0-9_-]{1,128}$";
/// `channels.telegram.groups` keys: a chat id or `*`.
pub(crate) const TELEGRAM_CHAT_PATTERN: &str = "^(-?[1-9][0-9]{0,19}|\\*)$";
/// `provider/model`.
pub(crate) const MODEL_REF_PATTERN: &str = "^[a-z][a-z0-9_-]{0,63}/.+$";
/// Gateway profile names are case-insensitive (see `profile`).
pub(crate) const PROFILE_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$";

const fn node(kind: Kind, doc: &'static str) -> Node {
    Node { kind, doc }
}

const fn field(name: &'static str, kind: Kind, doc: &'static str) -> Field {
    Field {
        name,
        node: node(kind, doc),
    }
}

const HTTP: &[&str] = &["http", "https"];
const WS: &[&str] = &["ws", "wss"];
const HTTP_OR_WS: &[&str] = &["http", "https", "ws", "wss"];

const GATEWAY: &[Field] = &[
    field(
        "mode",
        Kind::Enum(GatewayMode::NAMES),
        "\"local\" runs a gateway here (default); \"remote\" points clients at gateway.remote.url.",
    ),
    field(
        "port",
        Kind::Port,
        "Base port of the gateway WebSocket + HTTP server. The browser control (base + 2), canvas (base + 4) and CDP ports derive from it.",
    ),
    field(
        "bind",
        Kind::Enum(BindMode::NAMES),
        "Where the gateway listens: \"loopback\" (default), \"lan\" (all interfaces) or \"custom\" (gateway.customBindHost).",
    ),
    field(
        "customBindHost",
        Kind::Text(Text::Host),
        "IP address or host name to listen on when gateway.bind is \"custom\".",
    ),
    field(
        "auth",
        Kind::Object(GATEWAY_AUTH),
        "How clients authenticate to the gateway.",
    ),
    field(
        "remote",
        Kind::Object(GATEWAY_REMOTE),
        "The gateway clients use when gateway.mode is \"remote\".",
    ),
    field(
        "reload",
        Kind::Object(GATEWAY_RELOAD),
        "What happens when this file changes while the gateway runs.",
    ),
];

const GATEWAY_AUTH: &[Field] = &[
    field(
        "mode",
        Kind::Enum(AuthMode::NAMES),
        "\"token\" (default), \"password\", or \"none\" (loopback only).",
    ),
    field(
        "token",
        Kind::Secret,
        "Shared token clients present when gateway.auth.mode is \"token\".",
    ),
    field(
        "password",
        Kind::Secret,
        "Password clients present when gateway.auth.mode is \"password\".",
    ),
];

const GATEWAY_REMOTE: &[Field] = &[
    field(
        "url",
        Kind::Url(WS),
        "WebSocket URL (ws:// or wss://) of the remote gateway.",
    ),
    field("token", Kind::Secret, "Token for the remote gateway."),
];

const GATEWAY_RELOAD: &[Field] = &[field(
    "mode",
    Kind::Enum(ReloadMode::NAMES),
    "\"hybrid\" (default) hot-applies what it can and restarts for the rest; \"off\" only warns.",
)];

const AGENTS: &[Field] = &[field(
    "defaults",
    Kind::Object(AGENT_DEFAULTS),
    "Defaults for every agent of this gateway.",
)];

const AGENT_DEFAULTS: &[Field] = &[
    field(
        "workspace",
        Kind::Text(Text::Path),
        "Workspace root of this gateway; keep it unique per instance. `~` is the home directory.",
    ),
    field(
        "model",
        Kind::TextOr {
            text: Text::ModelRef,
            fields: MODEL_CHAIN,
        },
        "The assistant's model as \"provider/model\" (a models.providers id, then one of its model ids), or {primary, fallbacks} to fall over to other models when one fails.",
    ),
    field(
        "bootstrapMaxChars",
        Kind::Count { min: 1 },
        "Most characters of each workspace file (AGENTS.md, SOUL.md, ...) put into the system prompt. Default: 20000.",
    ),
    field(
        "bootstrapTotalMaxChars",
        Kind::Count { min: 1 },
        "Most characters of all workspace files together in the system prompt. Default: 60000 (and never more than a quarter of the model's context window).",
    ),
    field(
        "timeoutSeconds",
        Kind::Count { min: 0 },
        "Longest time one assistant run may take, in seconds; 0 means no limit. Default: 600.",
    ),
];

const MODEL_CHAIN: &[Field] = &[
    field(
        "primary",
        Kind::Text(Text::ModelRef),
        "The model tried first, as \"provider/model\".",
    ),
    field(
        "fallbacks",
        Kind::Array {
            item: &node(Kind::Text(Text::ModelRef), "A model as \"provider/model\"."),
            unique: true,
        },
        "Models tried in order when the one before fails (rate limit, server error, timeout).",
    ),
];

const MODELS: &[Field] = &[
    field(
        "mode",
        Kind::Enum(ModelsMode::NAMES),
        "Accepted for OpenClaw compatibility; OmniClaw has no bundled model catalog, so both values mean: the providers listed here.",
    ),
    field(
        "providers",
        Kind::Map {
            what: "model provider",
            names: Names::ProviderId,
            value: &node(
                Kind::Object(PROVIDER),
                "A model provider: where it is, which API it speaks, its key and its models.",
            ),
        },
        "Model providers by id. \"openai\", \"anthropic\", \"ollama\" and \"openrouter\" have a known base URL; any other id needs baseUrl and models.",
    ),
];

const PROVIDER: &[Field] = &[
    field(
        "baseUrl",
        Kind::Url(HTTP),
        "Base URL of the provider's API (like \"https://api.openai.com/v1\"). Plain http:// only to loopback or private-network hosts: the API key would travel in clear.",
    ),
    field(
        "api",
        Kind::Enum(ProviderApi::NAMES),
        "The wire format the provider speaks. Default: \"openai-completions\" (or the known provider's own).",
    ),
    field(
        "apiKey",
        Kind::Secret,
        "The provider's API key: {\"source\": \"keychain\"} or \"${ENV_VAR}\". Local servers need none.",
    ),
    field(
        "timeoutSeconds",
        Kind::Count { min: 1 },
        "Seconds to wait for the connection and for each next piece of a streamed answer. Default: 120.",
    ),
    field(
        "maxTokens",
        Kind::Count { min: 1 },
        "Most tokens a model of this provider may generate per call, unless the model sets its own.",
    ),
    field(
        "headers",
        Kind::Map {
            what: "header",
            names: Names::Header,
            value: &node(
                Kind::Secret,
                "A header value; treated as a secret (it often carries a token).",
            ),
        },
        "Extra HTTP headers sent with every request to this provider.",
    ),
    field(
        "models",
        Kind::Array {
            item: &node(Kind::Object(MODEL), "One model of this provider."),
            unique: false,
        },
        "The models this provider serves; a reference to a model not listed here is refused.",
    ),
];

const MODEL: &[Field] = &[
    field(
        "id",
        Kind::Text(Text::Plain),
        "The provider's model id (like \"gpt-4o\" or \"llama3.1:8b\"). Required.",
    ),
    field("name", Kind::Text(Text::Plain), "A readable name. Required."),
    field(
        "contextWindow",
        Kind::Count { min: 1 },
        "The model's context window in tokens: history is cut to fit, and Ollama is told it (num_ctx).",
    ),
    field(
        "maxTokens",
        Kind::Count { min: 1 },
        "Most tokens this model may generate per call.",
    ),
    field(
        "cost",
        Kind::Object(COST),
        "Price in US dollars per million tokens; what each call cost is counted against budget.",
    ),
];

const COST: &[Field] = &[
    field("input", Kind::Usd, "USD per million input tokens."),
    field("output", Kind::Usd, "USD per million output tokens."),
    field(
        "cacheRead",
        Kind::Usd,
        "USD per million tokens read from the prompt cache.",
    ),
    field(
        "cacheWrite",
        Kind::Usd,
        "USD per million tokens written to the prompt cache.",
    ),
];

const SESSION: &[Field] = &[
    field(
        "dmScope",
        Kind::Enum(DmScope::NAMES),
        "Which session a direct message lands in: \"main\" (default: every DM shares the owner's main session), \"per-peer\", \"per-channel-peer\" or \"per-account-channel-peer\".",
    ),
    field(
        "retentionDays",
        Kind::Count { min: 1 },
        "OmniClaw's own key (OpenClaw has none): days a session's transcript is kept after its last message.",
    ),
];

const TOOLS: &[Field] = &[
    field(
        "allow",
        Kind::Array {
            item: &node(Kind::Text(Text::Plain), "A tool name (like \"read\")."),
            unique: true,
        },
        "Tools the assistant may call; empty or unset allows every tool not denied.",
    ),
    field(
        "deny",
        Kind::Array {
            item: &node(Kind::Text(Text::Plain), "A tool name (like \"exec\")."),
            unique: true,
        },
        "Tools the assistant may never call; deny wins over allow.",
    ),
    field(
        "exec",
        Kind::Object(EXEC),
        "The exec tool (runs commands on this host).",
    ),
    field("web", Kind::Object(WEB), "Web tools."),
];

const EXEC: &[Field] = &[
    field(
        "mode",
        Kind::Enum(ExecMode::NAMES),
        "\"deny\" (default: no commands), \"allowlist\" (only tools.exec.allowlist), \"ask\" (each command asks the owner first) or \"full\".",
    ),
    field(
        "allowlist",
        Kind::Array {
            item: &node(
                Kind::Text(Text::Plain),
                "A program name (allowed with any arguments) or, with spaces, one exact command line.",
            ),
            unique: true,
        },
        "OmniClaw's own key (OpenClaw has none): commands allowed when tools.exec.mode is \"allowlist\". A bare program name allows it with any arguments; an entry with spaces is one exact command line.",
    ),
    field(
        "timeoutSeconds",
        Kind::Count { min: 1 },
        "Seconds before a command is killed.",
    ),
    field(
        "maxOutputChars",
        Kind::Count { min: 1 },
        "OmniClaw's own key (OpenClaw has none): most characters of a command's output handed back to the model.",
    ),
    field(
        "approvalTimeoutSeconds",
        Kind::Count { min: 1 },
        "OmniClaw's own key (OpenClaw has none): how long a command in ask mode waits for an operator's answer before it is denied (default 120).",
    ),
];

const WEB: &[Field] = &[field(
    "fetch",
    Kind::Object(WEB_FETCH),
    "The web_fetch tool.",
)];

const WEB_FETCH: &[Field] = &[
    field("enabled", Kind::Bool, "Offer web_fetch. Default: true."),
    field(
        "maxChars",
        Kind::Count { min: 1 },
        "Most characters of a fetched page handed back to the model.",
    ),
    field(
        "maxResponseBytes",
        Kind::Count { min: 1 },
        "Most bytes downloaded per fetch.",
    ),
    field(
        "timeoutSeconds",
        Kind::Count { min: 1 },
        "Seconds before a fetch gives up.",
    ),
    field(
        "maxRedirects",
        Kind::Count { min: 0 },
        "Most redirects followed. Default: 3.",
    ),
    field(
        "userAgent",
        Kind::Text(Text::Plain),
        "User-Agent header of fetch requests.",
    ),
    field(
        "ssrfPolicy",
        Kind::Object(SSRF_POLICY),
        "Which addresses web_fetch may reach; private networks are refused by default.",
    ),
];

const SSRF_POLICY: &[Field] = &[
    field(
        "dangerouslyAllowPrivateNetwork",
        Kind::Bool,
        "Allow loopback and private-network addresses (the host's own services, the LAN).",
    ),
    field(
        "allowRfc2544BenchmarkRange",
        Kind::Bool,
        "Allow 198.18.0.0/15 (used by some proxies).",
    ),
    field(
        "allowIpv6UniqueLocalRange",
        Kind::Bool,
        "Allow fc00::/7 addresses.",
    ),
    field(
        "allowedHostnames",
        Kind::Array {
            item: &node(Kind::Text(Text::Plain), "A host name."),
            unique: true,
        },
        "Host names allowed even when they resolve to a private address.",
    ),
    field(
        "blockedHostnames",
        Kind::Array {
            item: &node(Kind::Text(Text::Plain), "A host name."),
            unique: true,
        },
        "Host names never fetched.",
    ),
];

const BUDGET: &[Field] = &[
    field(
        "dailyUsd",
        Kind::Usd,
        "OmniClaw's own key (OpenClaw has none): most US dollars all model calls of this gateway may cost per local day; a call past it is refused until local midnight.",
    ),
    field(
        "perProvider",
        Kind::Map {
            what: "model provider",
            names: Names::ProviderId,
            value: &node(
                Kind::Object(BUDGET_PROVIDER),
                "The daily cap of one provider.",
            ),
        },
        "OmniClaw's own key (OpenClaw has none): daily caps per models.providers id.",
    ),
];

const BUDGET_PROVIDER: &[Field] = &[field(
    "dailyUsd",
    Kind::Usd,
    "OmniClaw's own key (OpenClaw has none): most US dollars this provider's calls may cost per local day.",
)];

const BROWSER: &[Field] = &[
    field(
        "enabled",
        Kind::Bool,
        "Run the browser control service.",
    ),
    field(
        "controlPort",
        Kind::Port,
        "Port of the browser control service (loopback only). Default: gateway port + 2.",
    ),
    field(
        "cdpPortRangeStart",
        Kind::Port,
        "First of the 100 ports browser profiles get their CDP port from. Default: control port + 9.",
    ),
    field(
        "cdpUrl",
        Kind::Url(HTTP_OR_WS),
        "Chrome DevTools endpoint of an already running browser. Never share it between instances.",
    ),
    field(
        "profiles",
        Kind::Map {
            what: "browser profile",
            names: Names::BrowserProfile,
            value: &node(
                Kind::Object(BROWSER_PROFILE),
                "A browser profile: a pinned CDP port or a remote CDP URL.",
            ),
        },
        "Browser profiles by name (lower-case letters, digits, `-` and `_`).",
    ),
];

const BROWSER_PROFILE: &[Field] = &[
    field(
        "cdpPort",
        Kind::Port,
        "Pinned CDP port of this profile; keep it unique per instance.",
    ),
    field(
        "cdpUrl",
        Kind::Url(HTTP_OR_WS),
        "CDP URL of a remote Chrome for this profile.",
    ),
];

const CANVAS_HOST: &[Field] = &[
    field("enabled", Kind::Bool, "Run the canvas host."),
    field(
        "port",
        Kind::Port,
        "Port of the canvas host. Default: gateway port + 4.",
    ),
    field(
        "root",
        Kind::Text(Text::Path),
        "Directory the canvas host serves. Default: <workspace>/canvas.",
    ),
];

const CHANNELS: &[Field] = &[field(
    "telegram",
    Kind::Object(TELEGRAM),
    "The Telegram bot of this gateway.",
)];

const TELEGRAM: &[Field] = &[
    field("enabled", Kind::Bool, "Run the Telegram channel."),
    field(
        "botToken",
        Kind::Secret,
        "Bot token from @BotFather. Each gateway needs its own bot.",
    ),
    field(
        "dmPolicy",
        Kind::Enum(DmPolicy::NAMES),
        "Who may talk to the bot: \"pairing\" (default; unknown users get a code to approve), \"allowlist\" (only allowFrom) or \"disabled\".",
    ),
    field(
        "allowFrom",
        Kind::Array {
            item: &node(Kind::TelegramUserId, "A numeric Telegram user id."),
            unique: false,
        },
        "Telegram user ids allowed to talk to the bot.",
    ),
    field(
        "apiRoot",
        Kind::Url(HTTP),
        "Root URL of the Bot API (default https://api.telegram.org).",
    ),
    field(
        "webhookUrl",
        Kind::Url(HTTP),
        "Public URL Telegram posts updates to (webhook mode). Without it the bot long-polls.",
    ),
    field(
        "webhookPort",
        Kind::Port,
        "Local port of the webhook listener (loopback).",
    ),
    field(
        "streaming",
        Kind::LegacyOr {
            names: StreamingMode::NAMES,
            fields: TELEGRAM_STREAMING,
        },
        "How an answer shows while it is written and where it is cut (OpenClaw's key): { mode, chunkMode, preview, progress, block }. OpenClaw's legacy forms are read as its doctor migrates them, with a warning: true is { mode: \"partial\" }, false { mode: \"off\" }, a string { mode: that string } (\"partial\" when it names no mode).",
    ),
    field(
        "streamMode",
        Kind::Text(Text::Any),
        "OpenClaw's legacy key for streaming.mode, read as it when streaming names no mode (\"partial\" for a string that names none), with a warning: move it to streaming.mode.",
    ),
    field(
        "chunkMode",
        Kind::Enum(ChunkMode::NAMES),
        "OpenClaw's legacy key for streaming.chunkMode, read as it when streaming has none, with a warning: move it to streaming.chunkMode.",
    ),
    field(
        "blockStreaming",
        Kind::Bool,
        "OpenClaw's legacy key for streaming.block.enabled, read as it when that is unset, with a warning: move it there.",
    ),
    field(
        "blockStreamingCoalesce",
        Kind::Object(STREAMING_COALESCE),
        "OpenClaw's legacy key for streaming.block.coalesce, read as it when that is unset, with a warning: move it there.",
    ),
    field(
        "draftChunk",
        Kind::Object(STREAMING_CHUNK),
        "OpenClaw's legacy key for streaming.preview.chunk, read as it when that is unset, with a warning: move it there.",
    ),
    field(
        "textChunkLimit",
        Kind::Count { min: 1 },
        "Longest reply message in characters (default 4000; Telegram's own limit of 4096 caps it); longer answers are cut on paragraph or line breaks.",
    ),
    field(
        "groupPolicy",
        Kind::Enum(GroupPolicy::NAMES),
        "Who may address the bot in a group: \"allowlist\" (default: groupAllowFrom, else allowFrom), \"open\" (any member of an allowed group) or \"disabled\".",
    ),
    field(
        "groupAllowFrom",
        Kind::Array {
            item: &node(Kind::TelegramUserId, "A numeric Telegram user id."),
            unique: false,
        },
        "Telegram user ids who may address the bot in allowed groups (default: allowFrom).",
    ),
    field(
        "groups",
        Kind::Map {
            what: "group",
            names: Names::TelegramChat,
            value: &node(Kind::Object(TELEGRAM_GROUP), "One group's settings."),
        },
        "Groups the bot answers in, by chat id (\"*\" for every group); no entry, no answer.",
    ),
];

const TELEGRAM_STREAMING: &[Field] = &[
    field(
        "mode",
        Kind::Enum(StreamingMode::NAMES),
        "\"progress\" (default, as in OpenClaw: one status message while the run lasts, the answer sent when done), \"partial\" (the answer edited into one message as it is written), \"block\" (the same, a paragraph at a time) or \"off\" (the answer sent when done).",
    ),
    field(
        "chunkMode",
        Kind::Enum(ChunkMode::NAMES),
        "Where a long answer is cut: \"length\" (default, as in OpenClaw: at the limit, on the last line break before it, else a space) or \"newline\" (on the last paragraph break before it, else a line break).",
    ),
    field(
        "preview",
        Kind::Object(TELEGRAM_STREAMING_PREVIEW),
        "The message edited while the answer is written (partial and block modes).",
    ),
    field(
        "progress",
        Kind::Object(TELEGRAM_STREAMING_PROGRESS),
        "The status message of progress mode.",
    ),
    field(
        "block",
        Kind::Object(TELEGRAM_STREAMING_BLOCK),
        "Block replies: the answer sent as separate messages, a finished block at a time, while it is written.",
    ),
];

const TELEGRAM_STREAMING_BLOCK: &[Field] = &[
    field(
        "enabled",
        Kind::Bool,
        "Send finished blocks of the answer as their own messages while it is written (default false); the edited preview or status is then not shown, so the answer does not stream twice.",
    ),
    field(
        "coalesce",
        Kind::Object(STREAMING_COALESCE),
        "When finished blocks are sent: merged until minChars, at once from maxChars, else after idleMs without new text.",
    ),
];

const STREAMING_COALESCE: &[Field] = &[
    field(
        "minChars",
        Kind::Count { min: 1 },
        "No block message shorter than this, except the last (default 800).",
    ),
    field(
        "maxChars",
        Kind::Count { min: 1 },
        "Longest block message; more is sent at once, cut there (default 1200, at most textChunkLimit).",
    ),
    field(
        "idleMs",
        Kind::Count { min: 0 },
        "Milliseconds without new text before merged blocks of at least minChars are sent (default 1000).",
    ),
];

const STREAMING_CHUNK: &[Field] = &[
    field(
        "minChars",
        Kind::Count { min: 1 },
        "Characters a block-mode preview grows by at least per edit (default 200).",
    ),
    field(
        "maxChars",
        Kind::Count { min: 1 },
        "Characters after which a block-mode preview grows even with no break to cut at (default 800, at most textChunkLimit).",
    ),
    field(
        "breakPreference",
        Kind::Enum(BreakPreference::NAMES),
        "Where a block-mode preview is cut: \"paragraph\" (default), \"newline\" or \"sentence\".",
    ),
];

const TELEGRAM_STREAMING_PREVIEW: &[Field] = &[
    field(
        "toolProgress",
        Kind::Bool,
        "Show a line per tool call in the edited message (default true).",
    ),
    field(
        "chunk",
        Kind::Object(STREAMING_CHUNK),
        "How a block-mode preview grows: { minChars, maxChars, breakPreference }.",
    ),
    field(
        "commandText",
        Kind::Enum(CommandText::NAMES),
        "An exec tool line in the edited message shows its command line (\"raw\") or only that a command runs (\"status\", default).",
    ),
];

const TELEGRAM_STREAMING_PROGRESS: &[Field] = &[
    field(
        "toolProgress",
        Kind::Bool,
        "Show a line per tool call in the status message (default: preview.toolProgress, else false).",
    ),
    field(
        "label",
        Kind::TextOrFalse(Text::Any),
        "The status message's first line (default \"Working on it…\", or one of labels); \"auto\" picks from labels; false shows none.",
    ),
    field(
        "labels",
        Kind::Array {
            item: &node(Kind::Text(Text::Plain), "A status line."),
            unique: false,
        },
        "Status lines to pick one from per answer, when label is unset or \"auto\".",
    ),
    field(
        "maxLines",
        Kind::Count { min: 1 },
        "The newest tool lines the status message shows (default 8).",
    ),
    field(
        "maxLineChars",
        Kind::Count { min: 1 },
        "Longest tool line in characters, longer ones shortened with … (default 120).",
    ),
    field(
        "commandText",
        Kind::Enum(CommandText::NAMES),
        "An exec tool line in the status shows its command line (\"raw\") or only that a command runs (\"status\", default).",
    ),
    field(
        "commentary",
        Kind::Bool,
        "Show what the model wrote before each tool call as a 💬 line in the status (default false).",
    ),
    field(
        "narration",
        Kind::Bool,
        "OpenClaw's filler lines written by a utility model; accepted, no effect in OmniClaw, which has no utility model (default true).",
    ),
];

const TELEGRAM_GROUP: &[Field] = &[
    field(
        "requireMention",
        Kind::Bool,
        "Answer only when the bot is mentioned (@name) or replied to (default true).",
    ),
    field("enabled", Kind::Bool, "false ignores this group."),
    field(
        "allowFrom",
        Kind::Array {
            item: &node(Kind::TelegramUserId, "A numeric Telegram user id."),
            unique: false,
        },
        "Who may address the bot in this group (beside groupAllowFrom).",
    ),
    field(
        "groupPolicy",
        Kind::Enum(GroupPolicy::NAMES),
        "This group's own groupPolicy.",
    ),
];

const RESCUE: &[Field] = &[
    field(
        "targets",
        Kind::Array {
            item: &node(
                Kind::ProfileName,
                "A profile name; `default` is the unsuffixed one. It must be a profile on this machine.",
            ),
            unique: true,
        },
        "Profiles this (rescue) gateway may operate on.",
    ),
    field(
        "watch",
        Kind::Object(RESCUE_WATCH),
        "OmniClaw's own key (OpenClaw has none): the rescue gateway watches its targets and repairs a target that is down by a recovery ladder.",
    ),
];

const RESCUE_WATCH: &[Field] = &[
    field(
        "enabled",
        Kind::Bool,
        "OmniClaw's own key (OpenClaw has none): watch the targets and repair them. Default: false, so no profile starts repairing by itself.",
    ),
    field(
        "intervalSeconds",
        Kind::Count { min: 1 },
        "OmniClaw's own key (OpenClaw has none): seconds between two checks of a target. Default: 10.",
    ),
    field(
        "failAfter",
        Kind::Count { min: 1 },
        "OmniClaw's own key (OpenClaw has none): consecutive failed checks after which a target is down. Default: 3.",
    ),
    field(
        "actions",
        Kind::Array {
            item: &node(
                Kind::Enum(WatchAction::NAMES),
                "\"restart\": start or restart the target through its owner; \"rollback\": restore its last good config, then restart.",
            ),
            unique: true,
        },
        "OmniClaw's own key (OpenClaw has none): which repairs the rescue may make. Default: [\"restart\"].",
    ),
    field(
        "maxRepairsPerHour",
        Kind::Count { min: 1 },
        "OmniClaw's own key (OpenClaw has none): most repairs of one target in any hour; after them the rescue only reports until a person acts. Default: 3.",
    ),
];

const LOGGING: &[Field] = &[field(
    "level",
    Kind::Enum(LogLevel::NAMES),
    "Log level: \"trace\", \"debug\", \"info\" (default), \"warn\" or \"error\".",
)];

const ROOT_FIELDS: &[Field] = &[
    field(
        "$schema",
        Kind::Text(Text::Any),
        "Where editors find this schema; OmniClaw ignores it.",
    ),
    field("gateway", Kind::Object(GATEWAY), "The gateway server."),
    field("agents", Kind::Object(AGENTS), "Agent settings."),
    field(
        "browser",
        Kind::Object(BROWSER),
        "The browser control service and its CDP ports.",
    ),
    field(
        "canvasHost",
        Kind::Object(CANVAS_HOST),
        "The canvas host (serves <workspace>/canvas over HTTP).",
    ),
    field("channels", Kind::Object(CHANNELS), "Messaging channels."),
    field("rescue", Kind::Object(RESCUE), "Rescue-bot settings."),
    field("logging", Kind::Object(LOGGING), "Logging."),
    field(
        "models",
        Kind::Object(MODELS),
        "Model providers the assistant calls.",
    ),
    field(
        "session",
        Kind::Object(SESSION),
        "How conversations map to sessions, and how long they are kept.",
    ),
    field(
        "tools",
        Kind::Object(TOOLS),
        "Which tools the assistant may call, and their limits.",
    ),
    field(
        "budget",
        Kind::Object(BUDGET),
        "OmniClaw's own key (OpenClaw has none): daily spending caps on model calls.",
    ),
];

/// The root of the tree: the whole `omniclaw.json`.
pub(crate) static ROOT: Node = node(
    Kind::Object(ROOT_FIELDS),
    "OmniClaw gateway config (omniclaw.json, JSON5).",
);

/// `secret` object form: `{"source": "keychain"}`.
pub(crate) const SECRET_SOURCES: &[&str] = SecretSource::NAMES;

/// `^[a-z][a-z0-9_-]{0,63}$`.
/// A `models.providers` id: `^[a-z][a-z0-9_-]{0,63}$`.
pub fn is_provider_id(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_lowercase()) && is_browser_profile_name(name)
}

pub(crate) fn is_browser_profile_name(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    first_ok
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Whether `text` is exactly `${NAME}` with NAME in `[A-Z_][A-Z0-9_]*`;
/// returns NAME.
pub(crate) fn env_ref(text: &str) -> Option<&str> {
    let name = text.strip_prefix("${")?.strip_suffix('}')?;
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_uppercase() || c == '_');
    (first_ok && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
        .then_some(name)
}

/// The closest of `candidates` to `name`, when it is close enough to be a
/// likely typo (case is ignored; a swap of two letters counts as one edit).
pub(crate) fn nearest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let wanted: Vec<char> = name.to_lowercase().chars().collect();
    let limit = (wanted.len() / 3).clamp(1, 3);
    let mut best: Option<(usize, &'a str)> = None;
    for candidate in candidates {
        let have: Vec<char> = candidate.to_lowercase().chars().collect();
        let distance = edit_distance(&wanted, &have);
        if distance <= limit && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

/// Optimal string alignment distance (Levenshtein plus adjacent swaps).
fn edit_distance(a: &[char], b: &[char]) -> usize {
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    for i in 0..=a.len() {
        d[i * width] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(width) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = best;
        }
    }
    d[a.len() * width + b.len()]
}

/// The JSON Schema (draft 2020-12) of `omniclaw.json`, for editors: point a
/// config at it with `"$schema"`. Generated from the same tree validation
/// uses; `additionalProperties` is `false` on every object.
pub fn json_schema() -> Value {
    let mut schema = node_schema(&ROOT);
    if let Value::Object(map) = &mut schema {
        let mut top = Map::new();
        top.insert(
            "$schema".into(),
            json!("https://json-schema.org/draft/2020-12/schema"),
        );
        top.insert("title".into(), json!("omniclaw.json"));
        top.extend(std::mem::take(map));
        *map = top;
    }
    schema
}

fn node_schema(node: &Node) -> Value {
    let mut schema = match &node.kind {
        Kind::Object(fields) => object_schema(fields),
        Kind::Map { names, value, .. } => json!({
            "type": "object",
            "patternProperties": { names.pattern(): node_schema(value) },
            "additionalProperties": false,
        }),
        Kind::Array { item, unique } => {
            let mut array = json!({ "type": "array", "items": node_schema(item) });
            if *unique {
                array["uniqueItems"] = json!(true);
            }
            array
        }
        Kind::Bool => json!({ "type": "boolean" }),
        Kind::Port => json!({ "type": "integer", "minimum": 1, "maximum": 65535 }),
        Kind::Count { min } => json!({ "type": "integer", "minimum": min }),
        Kind::Usd => json!({ "type": "number", "minimum": 0 }),
        Kind::Text(text) => text_schema(*text),
        Kind::TextOrFalse(text) => json!({
            "oneOf": [text_schema(*text), { "const": false }],
        }),
        Kind::TextOr { text, fields } => json!({
            "oneOf": [text_schema(*text), object_schema(fields)],
        }),
        Kind::LegacyOr { names, fields } => json!({
            "oneOf": [
                object_schema(fields),
                { "type": "boolean", "deprecated": true },
                { "type": "string", "examples": names, "deprecated": true },
            ],
        }),
        Kind::Url(schemes) => json!({
            "type": "string",
            "format": "uri",
            "pattern": format!("^({})://[^/?#\\s]+", schemes.join("|")),
        }),
        Kind::Enum(names) => json!({ "type": "string", "enum": names }),
        Kind::Secret => json!({
            "oneOf": [
                { "type": "string", "minLength": 1 },
                {
                    "type": "object",
                    "properties": { "source": { "type": "string", "enum": SECRET_SOURCES } },
                    "required": ["source"],
                    "additionalProperties": false,
                },
            ],
        }),
        Kind::TelegramUserId => json!({
            "oneOf": [
                { "type": "integer", "minimum": 1 },
                { "type": "string", "pattern": "^[1-9][0-9]*$" },
            ],
        }),
        Kind::ProfileName => json!({ "type": "string", "pattern": PROFILE_PATTERN }),
    };
    schema["description"] = json!(node.doc);
    schema
}

fn object_schema(fields: &'static [Field]) -> Value {
    let properties: Map<String, Value> = fields
        .iter()
        .map(|f| (f.name.to_string(), node_schema(&f.node)))
        .collect();
    json!({ "type": "object", "properties": properties, "additionalProperties": false })
}

fn text_schema(text: Text) -> Value {
    match text {
        Text::Any => json!({ "type": "string" }),
        Text::Path | Text::Host | Text::Plain => json!({ "type": "string", "minLength": 1 }),
        Text::ModelRef => json!({ "type": "string", "pattern": MODEL_REF_PATTERN }),
    }
}

/// Every dotted path the schema knows, with `<name>` for map entries and
/// `[]` for array items, in schema order.
#[cfg(test)]
pub(crate) fn all_paths() -> Vec<(String, &'static Node)> {
    fn walk(node: &'static Node, at: String, out: &mut Vec<(String, &'static Node)>) {
        let join = |name: &str| {
            if at.is_empty() {
                name.to_string()
            } else {
                format!("{at}.{name}")
            }
        };
        match &node.kind {
            Kind::Object(fields) | Kind::TextOr { fields, .. } | Kind::LegacyOr { fields, .. } => {
                for f in fields.iter() {
                    let path = join(f.name);
                    out.push((path.clone(), &f.node));
                    walk(&f.node, path, out);
                }
            }
            Kind::Map { value, .. } => {
                let path = join("<name>");
                out.push((path.clone(), value));
                walk(value, path, out);
            }
            Kind::Array { item, .. } => walk(item, format!("{at}[]"), out),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&ROOT, String::new(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<T: PartialEq + std::fmt::Debug>(input: &str, got: T, expected: T) {
        assert_eq!(got, expected, "input: {input}");
    }

    #[test]
    fn nearest_suggests_only_likely_typos() {
        let keys = ["mode", "port", "bind", "customBindHost", "auth"];
        let table: &[(&str, Option<&str>)] = &[
            ("prot", Some("port")),
            ("Port", Some("port")),
            ("bnid", Some("bind")),
            ("customBindhost", Some("customBindHost")),
            ("custombindhst", Some("customBindHost")),
            ("ath", Some("auth")),
            ("zzz", None),
            ("listen", None),
        ];
        for (name, expected) in table {
            check(name, nearest(name, keys), *expected);
        }
    }

    #[test]
    fn browser_profile_names() {
        let table: &[(&str, bool)] = &[
            ("work", true),
            ("0", true),
            ("a_b-c", true),
            ("Work", false),
            ("-work", false),
            ("", false),
            ("wörk", false),
            (&"a".repeat(64), true),
            (&"a".repeat(65), false),
        ];
        for (name, expected) in table {
            check(name, is_browser_profile_name(name), *expected);
        }
    }

    #[test]
    fn env_refs() {
        let table: &[(&str, Option<&str>)] = &[
            ("${TOKEN}", Some("TOKEN")),
            ("${_A1}", Some("_A1")),
            ("${token}", None),
            ("${1A}", None),
            ("${}", None),
            ("$TOKEN", None),
            ("x${TOKEN}", None),
            ("${TOKEN}x", None),
        ];
        for (text, expected) in table {
            check(text, env_ref(text), *expected);
        }
    }

    #[test]
    fn schema_knows_every_documented_key() {
        let paths: Vec<String> = all_paths().into_iter().map(|(p, _)| p).collect();
        let expected = [
            "$schema",
            "gateway",
            "gateway.mode",
            "gateway.port",
            "gateway.bind",
            "gateway.customBindHost",
            "gateway.auth",
            "gateway.auth.mode",
            "gateway.auth.token",
            "gateway.auth.password",
            "gateway.remote",
            "gateway.remote.url",
            "gateway.remote.token",
            "gateway.reload",
            "gateway.reload.mode",
            "agents",
            "agents.defaults",
            "agents.defaults.workspace",
            "agents.defaults.model",
            "agents.defaults.model.primary",
            "agents.defaults.model.fallbacks",
            "agents.defaults.bootstrapMaxChars",
            "agents.defaults.bootstrapTotalMaxChars",
            "agents.defaults.timeoutSeconds",
            "browser",
            "browser.enabled",
            "browser.controlPort",
            "browser.cdpPortRangeStart",
            "browser.cdpUrl",
            "browser.profiles",
            "browser.profiles.<name>",
            "browser.profiles.<name>.cdpPort",
            "browser.profiles.<name>.cdpUrl",
            "canvasHost",
            "canvasHost.enabled",
            "canvasHost.port",
            "canvasHost.root",
            "channels",
            "channels.telegram",
            "channels.telegram.enabled",
            "channels.telegram.botToken",
            "channels.telegram.dmPolicy",
            "channels.telegram.allowFrom",
            "channels.telegram.apiRoot",
            "channels.telegram.webhookUrl",
            "channels.telegram.webhookPort",
            "channels.telegram.streaming",
            "channels.telegram.streaming.mode",
            "channels.telegram.streaming.chunkMode",
            "channels.telegram.streaming.preview",
            "channels.telegram.streaming.preview.toolProgress",
            "channels.telegram.streaming.preview.chunk",
            "channels.telegram.streaming.preview.chunk.minChars",
            "channels.telegram.streaming.preview.chunk.maxChars",
            "channels.telegram.streaming.preview.chunk.breakPreference",
            "channels.telegram.streaming.preview.commandText",
            "channels.telegram.streaming.progress",
            "channels.telegram.streaming.progress.toolProgress",
            "channels.telegram.streaming.progress.label",
            "channels.telegram.streaming.progress.labels",
            "channels.telegram.streaming.progress.maxLines",
            "channels.telegram.streaming.progress.maxLineChars",
            "channels.telegram.streaming.progress.commandText",
            "channels.telegram.streaming.progress.commentary",
            "channels.telegram.streaming.progress.narration",
            "channels.telegram.streaming.block",
            "channels.telegram.streaming.block.enabled",
            "channels.telegram.streaming.block.coalesce",
            "channels.telegram.streaming.block.coalesce.minChars",
            "channels.telegram.streaming.block.coalesce.maxChars",
            "channels.telegram.streaming.block.coalesce.idleMs",
            "channels.telegram.streamMode",
            "channels.telegram.chunkMode",
            "channels.telegram.blockStreaming",
            "channels.telegram.blockStreamingCoalesce",
            "channels.telegram.blockStreamingCoalesce.minChars",
            "channels.telegram.blockStreamingCoalesce.maxChars",
            "channels.telegram.blockStreamingCoalesce.idleMs",
            "channels.telegram.draftChunk",
            "channels.telegram.draftChunk.minChars",
            "channels.telegram.draftChunk.maxChars",
            "channels.telegram.draftChunk.breakPreference",
            "channels.telegram.textChunkLimit",
            "channels.telegram.groupPolicy",
            "channels.telegram.groupAllowFrom",
            "channels.telegram.groups",
            "channels.telegram.groups.<name>",
            "channels.telegram.groups.<name>.requireMention",
            "channels.telegram.groups.<name>.enabled",
            "channels.telegram.groups.<name>.allowFrom",
            "channels.telegram.groups.<name>.groupPolicy",
            "rescue",
            "rescue.targets",
            "rescue.watch",
            "rescue.watch.enabled",
            "rescue.watch.intervalSeconds",
            "rescue.watch.failAfter",
            "rescue.watch.actions",
            "rescue.watch.maxRepairsPerHour",
            "logging",
            "logging.level",
            "models",
            "models.mode",
            "models.providers",
            "models.providers.<name>",
            "models.providers.<name>.baseUrl",
            "models.providers.<name>.api",
            "models.providers.<name>.apiKey",
            "models.providers.<name>.timeoutSeconds",
            "models.providers.<name>.maxTokens",
            "models.providers.<name>.headers",
            "models.providers.<name>.headers.<name>",
            "models.providers.<name>.models",
            "models.providers.<name>.models[].id",
            "models.providers.<name>.models[].name",
            "models.providers.<name>.models[].contextWindow",
            "models.providers.<name>.models[].maxTokens",
            "models.providers.<name>.models[].cost",
            "models.providers.<name>.models[].cost.input",
            "models.providers.<name>.models[].cost.output",
            "models.providers.<name>.models[].cost.cacheRead",
            "models.providers.<name>.models[].cost.cacheWrite",
            "session",
            "session.dmScope",
            "session.retentionDays",
            "tools",
            "tools.allow",
            "tools.deny",
            "tools.exec",
            "tools.exec.mode",
            "tools.exec.allowlist",
            "tools.exec.timeoutSeconds",
            "tools.exec.maxOutputChars",
            "tools.exec.approvalTimeoutSeconds",
            "tools.web",
            "tools.web.fetch",
            "tools.web.fetch.enabled",
            "tools.web.fetch.maxChars",
            "tools.web.fetch.maxResponseBytes",
            "tools.web.fetch.timeoutSeconds",
            "tools.web.fetch.maxRedirects",
            "tools.web.fetch.userAgent",
            "tools.web.fetch.ssrfPolicy",
            "tools.web.fetch.ssrfPolicy.dangerouslyAllowPrivateNetwork",
            "tools.web.fetch.ssrfPolicy.allowRfc2544BenchmarkRange",
            "tools.web.fetch.ssrfPolicy.allowIpv6UniqueLocalRange",
            "tools.web.fetch.ssrfPolicy.allowedHostnames",
            "tools.web.fetch.ssrfPolicy.blockedHostnames",
            "budget",
            "budget.dailyUsd",
            "budget.perProvider",
            "budget.perProvider.<name>",
            "budget.perProvider.<name>.dailyUsd",
        ];
        assert_eq!(paths, expected);
    }

    #[test]
    fn json_schema_mentions_every_key_with_closed_objects() {
        let schema = json_schema();
        let text = serde_json::to_string(&schema).expect("serializes");
        let reparsed: Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(reparsed, schema);
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        for (path, _) in all_paths() {
            let mut at = &schema;
            for part in path.split('.') {
                // A string-or-object: its keys are in the object branch.
                if let Some(branches) = at["oneOf"].as_array() {
                    at = branches
                        .iter()
                        .find(|b| b["type"] == "object")
                        .expect("an object branch");
                }
                let (part, item) = match part.strip_suffix("[]") {
                    Some(p) => (p, true),
                    None => (part, false),
                };
                at = if part == "<name>" {
                    let patterns = at["patternProperties"].as_object().expect("a map");
                    patterns.values().next().expect("one pattern")
                } else {
                    &at["properties"][part]
                };
                if item {
                    at = &at["items"];
                }
                assert!(at.is_object(), "{path}: {part} missing from schema");
                assert!(at["description"].is_string(), "{path}: no description");
            }
        }
        fn closed(value: &Value, at: &str) {
            match value {
                Value::Object(map) => {
                    if map.get("type") == Some(&json!("object")) {
                        check(at, map.get("additionalProperties"), Some(&json!(false)));
                    }
                    for (k, v) in map {
                        closed(v, &format!("{at}/{k}"));
                    }
                }
                Value::Array(items) => items.iter().for_each(|v| closed(v, at)),
                _ => {}
            }
        }
        closed(&schema, "");
        check(
            "port",
            &schema["properties"]["gateway"]["properties"]["port"],
            &json!({
                "type": "integer",
                "minimum": 1,
                "maximum": 65535,
                "description": GATEWAY[1].node.doc,
            }),
        );
        check(
            "bind",
            &schema["properties"]["gateway"]["properties"]["bind"]["enum"],
            &json!(["loopback", "lan", "custom"]),
        );
    }

    #[test]
    fn json_schema_snapshot() {
        let text = serde_json::to_string_pretty(&json_schema()).expect("serializes");
        insta::assert_snapshot!("omniclaw_json_schema", text);
    }
}
