//! The one description of what `omniclaw.json` may contain.
//!
//! A small static tree of node kinds. Validation, path lookup, secret
//! redaction and the exported JSON Schema all walk this tree, so adding a key
//! here is the whole change for all four.

use serde_json::{json, Map, Value};

use super::model::{AuthMode, BindMode, DmPolicy, GatewayMode, LogLevel, ReloadMode, SecretSource};

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
    /// User-chosen keys following [`is_browser_profile_name`], each holding
    /// `value` (only `browser.profiles` today). `what` names one entry.
    Map {
        what: &'static str,
        value: &'static Node,
    },
    Array {
        item: &'static Node,
        unique: bool,
    },
    Bool,
    /// A TCP port, 1–65535.
    Port,
    Text(Text),
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
}

/// `browser.profiles` keys: `^[a-z0-9][a-z0-9_-]{0,63}$`.
pub(crate) const BROWSER_PROFILE_PATTERN: &str = "^[a-z0-9][a-z0-9_-]{0,63}$";
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

const AGENT_DEFAULTS: &[Field] = &[field(
    "workspace",
    Kind::Text(Text::Path),
    "Workspace root of this gateway; keep it unique per instance. `~` is the home directory.",
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
];

const RESCUE: &[Field] = &[field(
    "targets",
    Kind::Array {
        item: &node(
            Kind::ProfileName,
            "A profile name; `default` is the unsuffixed one.",
        ),
        unique: true,
    },
    "Profiles this (rescue) gateway may operate on.",
)];

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
];

/// The root of the tree: the whole `omniclaw.json`.
pub(crate) static ROOT: Node = node(
    Kind::Object(ROOT_FIELDS),
    "OmniClaw gateway config (omniclaw.json, JSON5).",
);

/// `secret` object form: `{"source": "keychain"}`.
pub(crate) const SECRET_SOURCES: &[&str] = SecretSource::NAMES;

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
        Kind::Object(fields) => {
            let properties: Map<String, Value> = fields
                .iter()
                .map(|f| (f.name.to_string(), node_schema(&f.node)))
                .collect();
            json!({ "type": "object", "properties": properties, "additionalProperties": false })
        }
        Kind::Map { value, .. } => json!({
            "type": "object",
            "patternProperties": { BROWSER_PROFILE_PATTERN: node_schema(value) },
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
        Kind::Text(Text::Any) => json!({ "type": "string" }),
        Kind::Text(Text::Path | Text::Host) => json!({ "type": "string", "minLength": 1 }),
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
            Kind::Object(fields) => {
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
            "rescue",
            "rescue.targets",
            "logging",
            "logging.level",
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
                at = if part == "<name>" {
                    &at["patternProperties"][BROWSER_PROFILE_PATTERN]
                } else {
                    &at["properties"][part]
                };
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
