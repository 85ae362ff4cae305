//! Strict validation of a parsed config against the schema tree, reporting
//! every problem at once, in document order; then the checks that span
//! several keys.

use std::collections::HashMap;
use std::net::IpAddr;

use serde_json::Value;

use super::agent;
use super::document::{ConfigErrors, Diagnostic, Document, Pos};
use super::model::{telegram_user_id, Config};
use super::path::{render, Segment};
use super::schema::{self, Field, Kind, Names, Node, Text, ROOT};
use crate::inventory;
use crate::ports;
use crate::profile::Profile;

/// Checks a document against the schema and builds the typed [`Config`].
/// All problems are returned together, sorted by position.
pub fn validate(doc: &Document) -> Result<Config, ConfigErrors> {
    let mut validator = Validator {
        doc,
        diagnostics: Vec::new(),
    };
    let mut at = Vec::new();
    validator.node(&ROOT, doc.value(), &mut at);
    validator.cross_checks();
    let mut diagnostics = validator.diagnostics;
    if diagnostics.is_empty() {
        return Ok(Config::from_validated(doc.value()));
    }
    diagnostics.sort_by_key(|d| (d.line, d.col));
    Err(ConfigErrors(diagnostics))
}

/// What a valid config allows but probably does not mean, sorted by
/// position: shown beside "valid", never a reason to refuse. Meaningful
/// only for a document that [`validate`] accepted.
pub fn warnings(doc: &Document) -> Vec<Diagnostic> {
    let mut found = agent::cross_checks(doc).warnings;
    found.extend(legacy_warnings(doc));
    found.sort_by_key(|d| (d.line, d.col));
    found
}

/// OpenClaw's legacy Telegram streaming keys, each with how it is read
/// (as OpenClaw's doctor migrates it) and what to write instead.
fn legacy_warnings(doc: &Document) -> Vec<Diagnostic> {
    const AT: &str = "channels.telegram";
    let mut found = Vec::new();
    let Some(tg) = doc.value().pointer("/channels/telegram") else {
        return found;
    };
    let streaming = tg.get("streaming");
    let stream_mode = tg.get("streamMode");
    let read =
        super::model::streaming_mode(streaming, stream_mode).map_or("progress", |m| m.as_str());
    let nested_mode = streaming.and_then(|s| s.get("mode")).is_some();
    let fix = "(what `openclaw doctor --fix` writes)";
    match streaming {
        Some(Value::Bool(b)) => found.push(Diagnostic::new(
            format!("{AT}.streaming"),
            format!(
                "`streaming: {b}` is OpenClaw's legacy form, read as {{ mode: {read:?} }}: write `streaming: {{ mode: {read:?} }}` {fix}"
            ),
            doc.value_pos(&format!("{AT}.streaming")),
        )),
        Some(Value::String(s)) => {
            let names = super::model::StreamingMode::NAMES;
            let odd = if names.contains(&s.trim().to_ascii_lowercase().as_str()) {
                String::new()
            } else {
                format!(
                    " ({s:?} names no mode: {}; OpenClaw reads it as \"partial\")",
                    names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ")
                )
            };
            found.push(Diagnostic::new(
                format!("{AT}.streaming"),
                format!(
                    "`streaming: {s:?}` is OpenClaw's legacy form, read as {{ mode: {read:?} }}{odd}: write `streaming: {{ mode: {read:?} }}` {fix}"
                ),
                doc.value_pos(&format!("{AT}.streaming")),
            ));
        }
        _ => {}
    }
    if let Some(v) = stream_mode {
        let message = if nested_mode {
            format!("{AT}.streamMode is OpenClaw's legacy key and is ignored: streaming.mode is set; remove it {fix}")
        } else {
            format!(
                "{AT}.streamMode ({}) is OpenClaw's legacy key, read as streaming.mode {read:?}: move it there {fix}",
                shown(v)
            )
        };
        found.push(Diagnostic::new(
            format!("{AT}.streamMode"),
            message,
            doc.key_pos(&format!("{AT}.streamMode")),
        ));
    }
    // The flat keys OpenClaw's doctor moves under `streaming`, each only
    // where the nested key is unset.
    for (legacy, nested) in [
        ("chunkMode", &["chunkMode"][..]),
        ("blockStreaming", &["block", "enabled"][..]),
        ("blockStreamingCoalesce", &["block", "coalesce"][..]),
        ("draftChunk", &["preview", "chunk"][..]),
    ] {
        if tg.get(legacy).is_none() {
            continue;
        }
        let new_key = format!("streaming.{}", nested.join("."));
        let is_set = nested
            .iter()
            .try_fold(streaming.unwrap_or(&Value::Null), |v, k| v.get(k))
            .is_some();
        let message = if is_set {
            format!("{AT}.{legacy} is OpenClaw's legacy key and is ignored: {new_key} is set; remove it {fix}")
        } else {
            format!(
                "{AT}.{legacy} is OpenClaw's legacy key, read as {new_key}: move it there {fix}"
            )
        };
        found.push(Diagnostic::new(
            format!("{AT}.{legacy}"),
            message,
            doc.key_pos(&format!("{AT}.{legacy}")),
        ));
    }
    found
}

/// The `rescue.targets` entries that name no profile in `known` — the
/// profiles on this machine, which the caller lists (the core never looks):
/// one error each, at the entry. A rescue cannot watch or repair a profile
/// that does not exist; the entries the schema already refused are left to
/// [`validate`].
pub fn unknown_targets(doc: &Document, known: &[Profile]) -> Vec<Diagnostic> {
    let Some(entries) = doc
        .value()
        .get("rescue")
        .and_then(|r| r.get("targets"))
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    let mut names: Vec<&str> = known.iter().map(Profile::name).collect();
    names.sort_unstable();
    names.dedup();
    let listed = if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    };
    entries
        .iter()
        .enumerate()
        .filter_map(|(i, entry)| {
            let profile = Profile::parse(entry.as_str()?).ok()?;
            if known.contains(&profile) {
                return None;
            }
            let path = format!("rescue.targets[{i}]");
            let hint = match schema::nearest(profile.name(), names.iter().copied()) {
                Some(near) => format!("did you mean \"{near}\"? "),
                None => String::new(),
            };
            let message = format!(
                "no profile \"{profile}\" on this machine (profiles: {listed}); {hint}set it up first (`omniclaw --profile {profile} setup`) or leave it out"
            );
            let pos = doc.value_pos(&path);
            Some(Diagnostic::new(path, message, pos))
        })
        .collect()
}

struct Validator<'d> {
    doc: &'d Document,
    diagnostics: Vec<Diagnostic>,
}

impl Validator<'_> {
    fn at_value(&mut self, at: &[Segment], message: String) {
        let path = render(at);
        let pos = self.doc.value_pos(&path);
        self.diagnostics.push(Diagnostic::new(path, message, pos));
    }

    fn at_key(&mut self, at: &[Segment], message: String) {
        let path = render(at);
        let pos = self.doc.key_pos(&path);
        self.diagnostics.push(Diagnostic::new(path, message, pos));
    }

    fn node(&mut self, node: &'static Node, value: &Value, at: &mut Vec<Segment>) {
        match &node.kind {
            Kind::Object(fields) => self.object(fields, value, at),
            Kind::Map {
                what,
                names,
                value: entry,
            } => self.map(what, *names, entry, value, at),
            Kind::Array { item, unique } => self.array(item, *unique, value, at),
            Kind::Bool => {
                if !value.is_boolean() {
                    self.at_value(at, format!("expected true or false, got {}", shown(value)));
                }
            }
            Kind::Port => {
                if port(value).is_none() {
                    self.at_value(
                        at,
                        format!("expected an integer 1–65535, got {}", shown(value)),
                    );
                }
            }
            Kind::Count { min } => {
                if value.as_u64().is_none_or(|n| n < *min) {
                    let what = match min {
                        0 => "a whole number, 0 or more".to_string(),
                        1 => "a whole number, 1 or more".to_string(),
                        n => format!("a whole number, {n} or more"),
                    };
                    self.at_value(at, format!("expected {what}, got {}", shown(value)));
                }
            }
            Kind::Usd => {
                if value.as_f64().is_none_or(|n| n < 0.0) {
                    self.at_value(
                        at,
                        format!(
                            "expected an amount in US dollars (a number, 0 or more, like 2.5), got {}",
                            shown(value)
                        ),
                    );
                }
            }
            Kind::Text(text) => self.text(*text, value, at),
            Kind::TextOrFalse(text) => match value {
                Value::Bool(false) => {}
                Value::String(_) => self.text(*text, value, at),
                _ => self.at_value(
                    at,
                    format!("expected a string or false, got {}", shown(value)),
                ),
            },
            Kind::TextOr { text, fields } => match value {
                Value::Object(_) => self.object(fields, value, at),
                Value::String(_) => self.text(*text, value, at),
                _ => {
                    let names: Vec<&str> = fields.iter().map(|f| f.name).collect();
                    self.at_value(
                        at,
                        format!(
                            "expected \"provider/model\" or an object {{ {} }}, got {}",
                            names.join(", "),
                            shown(value)
                        ),
                    );
                }
            },
            Kind::LegacyOr { names, fields } => match value {
                Value::Object(_) => self.object(fields, value, at),
                // OpenClaw's legacy forms: read, with a warning (see
                // `legacy_warnings`).
                Value::Bool(_) | Value::String(_) => {}
                _ => {
                    let keys: Vec<&str> = fields.iter().map(|f| f.name).collect();
                    let names: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
                    self.at_value(
                        at,
                        format!(
                            "expected an object {{ {} }} (OpenClaw's legacy true, false or a mode name {} are read too), got {}",
                            keys.join(", "),
                            names.join(", "),
                            shown(value)
                        ),
                    );
                }
            },
            Kind::Url(schemes) => self.url(schemes, value, at),
            Kind::Enum(names) => self.choice(names, value, at),
            Kind::Secret => self.secret(value, at),
            Kind::TelegramUserId => {
                if telegram_user_id(value).is_none() {
                    let hint = match value.as_str() {
                        Some(s) if s.starts_with('@') => {
                            "; usernames are not accepted: ask the user to message the bot and use the numeric id it reports"
                        }
                        _ => "",
                    };
                    self.at_value(
                        at,
                        format!(
                            "expected a Telegram user id (a positive integer like 123456789), got {}{hint}",
                            shown(value)
                        ),
                    );
                }
            }
            Kind::ProfileName => match value.as_str() {
                Some(name) => {
                    if let Err(err) = Profile::parse(name) {
                        self.at_value(at, err.to_string());
                    }
                }
                None => self.at_value(
                    at,
                    format!(
                        "expected a profile name like \"main\", got {}",
                        shown(value)
                    ),
                ),
            },
        }
    }

    fn object(&mut self, fields: &'static [Field], value: &Value, at: &mut Vec<Segment>) {
        let Value::Object(map) = value else {
            let what = if at.is_empty() {
                "the config must be an object `{ ... }`"
            } else {
                "expected an object `{ ... }`"
            };
            self.at_value(at, format!("{what}, got {}", shown(value)));
            return;
        };
        for (key, child) in map {
            at.push(Segment::Key(key.clone()));
            match fields.iter().find(|f| f.name == key) {
                Some(field) => self.node(&field.node, child, at),
                None => {
                    let names = fields.iter().map(|f| f.name);
                    let message = match schema::nearest(key, names.clone()) {
                        Some(near) => format!("unknown key {key:?}; did you mean {near:?}?"),
                        None => format!(
                            "unknown key {key:?}; known keys here: {}",
                            names.collect::<Vec<_>>().join(", ")
                        ),
                    };
                    self.at_key(at, message);
                }
            }
            at.pop();
        }
    }

    fn map(
        &mut self,
        what: &str,
        names: Names,
        entry: &'static Node,
        value: &Value,
        at: &mut Vec<Segment>,
    ) {
        let Value::Object(map) = value else {
            self.at_value(
                at,
                format!(
                    "expected an object of {what}s by name, got {}",
                    shown(value)
                ),
            );
            return;
        };
        for (name, child) in map {
            at.push(Segment::Key(name.clone()));
            if names.accepts(name) {
                self.node(entry, child, at);
            } else {
                self.at_key(
                    at,
                    format!("invalid {what} name {name:?}: {}", names.rule()),
                );
            }
            at.pop();
        }
    }

    fn array(&mut self, item: &'static Node, unique: bool, value: &Value, at: &mut Vec<Segment>) {
        let Value::Array(items) = value else {
            self.at_value(
                at,
                format!("expected an array `[ ... ]`, got {}", shown(value)),
            );
            return;
        };
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (i, child) in items.iter().enumerate() {
            at.push(Segment::Index(i));
            let before = self.diagnostics.len();
            self.node(item, child, at);
            let valid = self.diagnostics.len() == before;
            if unique && valid {
                if let Some(text) = child.as_str() {
                    let key = text.to_ascii_lowercase();
                    match seen.get(&key) {
                        Some(first) => self.at_value(
                            at,
                            format!("{text:?} is listed twice (also at [{first}]); keep one"),
                        ),
                        None => {
                            seen.insert(key, i);
                        }
                    }
                }
            }
            at.pop();
        }
    }

    fn text(&mut self, text: Text, value: &Value, at: &[Segment]) {
        let Some(s) = value.as_str() else {
            let what = match text {
                Text::Any => "a string",
                Text::Path => "a path string",
                Text::Host => "an IP address or host name as a string",
                Text::Plain => "a string",
                Text::ModelRef => "\"provider/model\" as a string",
            };
            self.at_value(at, format!("expected {what}, got {}", shown(value)));
            return;
        };
        match text {
            Text::Any => {}
            _ if s.trim().is_empty() => self.at_value(at, empty_message()),
            Text::Path | Text::Plain => {}
            Text::ModelRef => {
                if agent::ModelRef::parse(s).is_none() {
                    self.at_value(
                        at,
                        format!(
                            "expected \"provider/model\" (a models.providers id, a `/`, then the model id, like \"openai/gpt-4o\"), got {}",
                            shown(value)
                        ),
                    );
                }
            }
            Text::Host => {
                if !is_host(s) {
                    self.at_value(
                        at,
                        format!(
                            "expected an IP address or host name (like \"192.168.1.10\"), got {}",
                            shown(value)
                        ),
                    );
                }
            }
        }
    }

    fn url(&mut self, schemes: &[&str], value: &Value, at: &[Segment]) {
        let expected = url_phrase(schemes);
        match value.as_str() {
            None => self.at_value(at, format!("expected {expected}, got {}", shown(value))),
            Some(s) if s.trim().is_empty() => self.at_value(at, empty_message()),
            Some(s) => {
                if let Some(problem) = url_problem(s, schemes) {
                    self.at_value(at, problem);
                }
            }
        }
    }

    fn choice(&mut self, names: &[&str], value: &Value, at: &[Segment]) {
        let allowed = names
            .iter()
            .map(|n| format!("{n:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        match value.as_str() {
            Some(s) if names.contains(&s) => {}
            Some(s) => {
                let hint = schema::nearest(s, names.iter().copied())
                    .map(|near| format!("; did you mean {near:?}?"))
                    .unwrap_or_default();
                self.at_value(
                    at,
                    format!("invalid value {s:?}: expected one of {allowed}{hint}"),
                );
            }
            None => self.at_value(
                at,
                format!("expected one of {allowed}, got {}", shown(value)),
            ),
        }
    }

    fn secret(&mut self, value: &Value, at: &mut Vec<Segment>) {
        const FORMS: &str = "a string, an env reference \"${NAME}\" or {\"source\": \"keychain\"}";
        match value {
            Value::String(s) if s.is_empty() => self.at_value(
                at,
                format!("must not be empty: set {FORMS}, or remove the key"),
            ),
            Value::String(s) if s.contains("${") && schema::env_ref(s).is_none() => {
                self.at_value(
                    at,
                    "malformed env reference: write exactly \"${NAME}\" with NAME made of A–Z, 0–9 and _ (like \"${TELEGRAM_BOT_TOKEN}\")"
                        .to_string(),
                );
            }
            Value::String(_) => {}
            Value::Object(map) => {
                for (key, child) in map {
                    at.push(Segment::Key(key.clone()));
                    if key == "source" {
                        self.choice(schema::SECRET_SOURCES, child, at);
                    } else {
                        let message = match schema::nearest(key, ["source"]) {
                            Some(near) => format!("unknown key {key:?}; did you mean {near:?}?"),
                            None => format!(
                                "unknown key {key:?}; a secret object is exactly {{\"source\": \"keychain\"}}"
                            ),
                        };
                        self.at_key(at, message);
                    }
                    at.pop();
                }
                if !map.contains_key("source") {
                    self.at_value(
                        at,
                        "missing \"source\": write {\"source\": \"keychain\"}".to_string(),
                    );
                }
            }
            // The value itself is not shown: it may be a secret.
            other => self.at_value(at, format!("expected {FORMS}, got {}", kind_name(other))),
        }
    }

    /// Checks that involve more than one key.
    fn cross_checks(&mut self) {
        let root = self.doc.value();
        let text = |path: &[&str]| -> Option<&str> {
            path.iter()
                .try_fold(root, |v, key| v.get(key))
                .and_then(Value::as_str)
        };
        let present = |path: &[&str]| path.iter().try_fold(root, |v, key| v.get(key)).is_some();
        let mut found: Vec<Diagnostic> = Vec::new();
        let doc = self.doc;
        let diag = |path: &str, message: &str, pos: Pos| Diagnostic::new(path, message, pos);

        if text(&["gateway", "bind"]) == Some("custom") && !present(&["gateway", "customBindHost"])
        {
            found.push(diag(
                "gateway.customBindHost",
                "required when gateway.bind is \"custom\": set the IP address or host name to listen on",
                doc.key_pos("gateway.bind"),
            ));
        }
        if text(&["gateway", "mode"]) == Some("remote") && !present(&["gateway", "remote", "url"]) {
            found.push(diag(
                "gateway.remote.url",
                "required when gateway.mode is \"remote\": set the ws:// or wss:// URL of the remote gateway",
                doc.key_pos("gateway.mode"),
            ));
        }
        // Past its type (a ws:// or wss:// URL), the rules a careful client
        // keeps: those of `omniclaw remote add --url`.
        if let Some(url) = text(&["gateway", "remote", "url"])
            .filter(|u| u.starts_with("ws://") || u.starts_with("wss://"))
        {
            if let Err(e) = crate::remote::parse_url(url) {
                found.push(diag(
                    "gateway.remote.url",
                    &remote_url_message(&e),
                    doc.value_pos("gateway.remote.url"),
                ));
            }
        }
        if text(&["channels", "telegram", "dmPolicy"]) == Some("allowlist") {
            let allow = root
                .get("channels")
                .and_then(|c| c.get("telegram"))
                .and_then(|t| t.get("allowFrom"));
            let pos = match allow {
                Some(_) => doc.value_pos("channels.telegram.allowFrom"),
                None => doc.key_pos("channels.telegram.dmPolicy"),
            };
            // A non-array allowFrom already has its own type error.
            let missing_or_empty = match allow {
                None => true,
                Some(Value::Array(ids)) => ids.is_empty(),
                Some(_) => false,
            };
            if missing_or_empty {
                found.push(diag(
                    "channels.telegram.allowFrom",
                    "must list at least one Telegram user id when channels.telegram.dmPolicy is \"allowlist\", or nobody can talk to the bot",
                    pos,
                ));
            }
        }
        if let Some(profiles) = root
            .get("browser")
            .and_then(|b| b.get("profiles"))
            .and_then(Value::as_object)
        {
            for (name, profile) in profiles {
                let Some(fields) = profile.as_object() else {
                    continue;
                };
                if schema::is_browser_profile_name(name)
                    && !fields.contains_key("cdpPort")
                    && !fields.contains_key("cdpUrl")
                {
                    let path = render(&[
                        Segment::Key("browser".into()),
                        Segment::Key("profiles".into()),
                        Segment::Key(name.clone()),
                    ]);
                    let pos = doc.key_pos(&path);
                    found.push(diag(
                        &path,
                        "set \"cdpPort\" or \"cdpUrl\" for this browser profile",
                        pos,
                    ));
                }
            }
        }
        // The ports the config places must fit, by the very rule the gateway
        // allocates them with (enabled surfaces, explicit overrides). Keys
        // with a wrong type are left to the schema errors above.
        for error in ports::derive(&inventory::port_inputs(root, ports::DEFAULT_BASE)).errors {
            let path = error.key().to_string();
            found.push(diag(&path, &error.to_string(), doc.value_pos(&path)));
        }
        found.extend(agent::cross_checks(doc).errors);
        self.diagnostics.extend(found);
    }
}

fn empty_message() -> String {
    "must not be empty: set a value or remove the key".to_string()
}

fn port(value: &Value) -> Option<u16> {
    value
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .filter(|&p| p > 0)
}

/// A value as shown in a message: strings quoted (and cut when long),
/// containers by kind.
fn shown(value: &Value) -> String {
    match value {
        Value::String(s) if s.chars().count() > 40 => {
            let cut: String = s.chars().take(37).collect();
            format!("{:?}", format!("{cut}..."))
        }
        Value::String(s) => format!("{s:?}"),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".to_string(),
        Value::Array(_) | Value::Object(_) => kind_name(value).to_string(),
    }
}

fn kind_name(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "a string",
        Value::Number(_) => "a number",
        Value::Bool(_) => "a boolean",
        Value::Null => "null",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// "an http:// or https:// URL".
fn url_phrase(schemes: &[&str]) -> String {
    let spelled: Vec<String> = schemes.iter().map(|s| format!("{s}://")).collect();
    let list = match spelled.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    };
    let article = if schemes.first().is_some_and(|s| s.starts_with('h')) {
        "an"
    } else {
        "a"
    };
    format!("{article} {list} URL")
}

/// What is wrong with `text` as a URL of one of `schemes`, if anything.
/// Deliberately small: scheme, a host, an optional valid port, no spaces.
fn url_problem(text: &str, schemes: &[&str]) -> Option<String> {
    let shown = shown(&Value::String(text.to_string()));
    let expected = url_phrase(schemes);
    let wrong = || Some(format!("expected {expected}, got {shown}"));
    let Some((scheme, rest)) = text.split_once("://") else {
        return wrong();
    };
    if !schemes.contains(&scheme) {
        return wrong();
    }
    if text.chars().any(char::is_whitespace) {
        return Some(format!("{shown} contains spaces: expected {expected}"));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = match host_port.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((host, after)) if host.parse::<std::net::Ipv6Addr>().is_ok() => match after {
                "" => (host, None),
                _ => match after.strip_prefix(':') {
                    Some(p) => (host, Some(p)),
                    None => return Some(format!("{shown} has a malformed host")),
                },
            },
            _ => return Some(format!("{shown} has a malformed IPv6 host")),
        },
        None => match host_port.rsplit_once(':') {
            Some((host, p)) => (host, Some(p)),
            None => (host_port, None),
        },
    };
    if host.is_empty() {
        return Some(format!(
            "{shown} has no host: write it like \"{}://127.0.0.1:18800\"",
            schemes.first().copied().unwrap_or("https")
        ));
    }
    if !host.contains(':') && !is_host(host) {
        return Some(format!("{shown} has an invalid host {host:?}"));
    }
    if let Some(p) = port {
        if p.parse::<u16>().ok().filter(|&n| n > 0).is_none() {
            return Some(format!("{shown} has an invalid port {p:?}: use 1–65535"));
        }
    }
    None
}

/// An IP address or a DNS host name.
fn is_host(text: &str) -> bool {
    if text.parse::<IpAddr>().is_ok() {
        return true;
    }
    let name = text.strip_suffix('.').unwrap_or(text);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// Why `gateway.remote.url` is refused, said for the config file: the
/// rules of `omniclaw remote add --url`, with the fixes a file takes.
fn remote_url_message(e: &crate::remote::UrlError) -> String {
    use crate::remote::UrlError;
    const TOKEN: &str =
        "gateway.remote.token holds the token (`omniclaw secrets set gateway.remote.token`)";
    match e {
        UrlError::Unparsable { reason, .. } => {
            format!("not a URL ({reason}): give ws://HOST:PORT or wss://HOST:PORT")
        }
        UrlError::Scheme { scheme, .. } => {
            format!("the scheme {scheme} is not a gateway's: give ws:// or wss://")
        }
        UrlError::UserInfo { .. } => {
            format!("carries a user name or password: remove it; {TOKEN}")
        }
        UrlError::Query { .. } => format!("has a query (?...): remove it; {TOKEN}"),
        UrlError::Fragment { .. } => "has a fragment (#...): remove it".to_string(),
        UrlError::NoHost { .. } => "names no host: give ws://HOST:PORT".to_string(),
        UrlError::PlainToPublic { host, .. } => format!(
            "would send the token unencrypted to {host}, which is not a loopback, private, link-local or tailnet address: use wss://, or a tailnet name (*.ts.net) or address"
        ),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::parse;

    /// Validates `text` and compares every diagnostic line (or "ok").
    pub(crate) fn check(text: &str, expected: &[&str]) {
        let doc = parse(text).unwrap_or_else(|e| panic!("{text}\ndoes not parse: {e}"));
        let got: Vec<String> = match validate(&doc) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
        };
        assert_eq!(got, expected, "input:\n{text}");
    }

    #[test]
    fn telegram_streaming_takes_openclaw_s_forms_and_refuses_what_it_refuses() {
        // (config, errors, warnings)
        let table: &[(&str, &[&str], &[&str])] = &[
            ("{ channels: { telegram: { streaming: { mode: 'block', chunkMode: 'newline' } } } }", &[], &[]),
            (
                "{ channels: { telegram: { streaming: true } } }",
                &[],
                &["channels.telegram.streaming: `streaming: true` is OpenClaw's legacy form, read as { mode: \"partial\" }: write `streaming: { mode: \"partial\" }` (what `openclaw doctor --fix` writes) (1:38)"],
            ),
            (
                "{ channels: { telegram: { streaming: false } } }",
                &[],
                &["channels.telegram.streaming: `streaming: false` is OpenClaw's legacy form, read as { mode: \"off\" }: write `streaming: { mode: \"off\" }` (what `openclaw doctor --fix` writes) (1:38)"],
            ),
            (
                "{ channels: { telegram: { streaming: 'block' } } }",
                &[],
                &["channels.telegram.streaming: `streaming: \"block\"` is OpenClaw's legacy form, read as { mode: \"block\" }: write `streaming: { mode: \"block\" }` (what `openclaw doctor --fix` writes) (1:38)"],
            ),
            (
                "{ channels: { telegram: { streaming: 'fast' } } }",
                &[],
                &["channels.telegram.streaming: `streaming: \"fast\"` is OpenClaw's legacy form, read as { mode: \"partial\" } (\"fast\" names no mode: \"off\", \"partial\", \"block\", \"progress\"; OpenClaw reads it as \"partial\"): write `streaming: { mode: \"partial\" }` (what `openclaw doctor --fix` writes) (1:38)"],
            ),
            (
                "{ channels: { telegram: { streamMode: 'off', chunkMode: 'newline' } } }",
                &[],
                &[
                    "channels.telegram.streamMode: channels.telegram.streamMode (\"off\") is OpenClaw's legacy key, read as streaming.mode \"off\": move it there (what `openclaw doctor --fix` writes) (1:27)",
                    "channels.telegram.chunkMode: channels.telegram.chunkMode is OpenClaw's legacy key, read as streaming.chunkMode: move it there (what `openclaw doctor --fix` writes) (1:46)",
                ],
            ),
            (
                "{ channels: { telegram: { streaming: { mode: 'block' }, streamMode: 'off' } } }",
                &[],
                &["channels.telegram.streamMode: channels.telegram.streamMode is OpenClaw's legacy key and is ignored: streaming.mode is set; remove it (what `openclaw doctor --fix` writes) (1:57)"],
            ),
            // What OpenClaw refuses too.
            (
                "{ channels: { telegram: { streaming: { mode: 'fast' } } } }",
                &["channels.telegram.streaming.mode: invalid value \"fast\": expected one of \"off\", \"partial\", \"block\", \"progress\" (1:46)"],
                &[],
            ),
            (
                "{ channels: { telegram: { streaming: 5 } } }",
                &["channels.telegram.streaming: expected an object { mode, chunkMode, preview, progress, block } (OpenClaw's legacy true, false or a mode name \"off\", \"partial\", \"block\", \"progress\" are read too), got 5 (1:38)"],
                &[],
            ),
            (
                "{ channels: { telegram: { streaming: { progress: { label: false, labels: ['a'], maxLines: 3, maxLineChars: 80 } } } } }",
                &[],
                &[],
            ),
            (
                "{ channels: { telegram: { streaming: { progress: { label: 5, maxLines: 0 } } } } }",
                &[
                    "channels.telegram.streaming.progress.label: expected a string or false, got 5 (1:59)",
                    "channels.telegram.streaming.progress.maxLines: expected a whole number, 1 or more, got 0 (1:72)",
                ],
                &[],
            ),
            // OpenClaw's block, chunk, commandText, commentary and narration keys.
            (
                "{ channels: { telegram: { streaming: { block: { enabled: true, coalesce: { minChars: 1, maxChars: 900, idleMs: 0 } }, preview: { chunk: { minChars: 200, maxChars: 800, breakPreference: 'sentence' }, commandText: 'raw' }, progress: { commandText: 'status', commentary: true, narration: false } } } } }",
                &[],
                &[],
            ),
            (
                "{ channels: { telegram: { streaming: { block: { enabled: 'yes', coalesce: { minChars: 0, maxChars: 1.5, idleMs: -1, gapMs: 3 } } } } } }",
                &[
                    "channels.telegram.streaming.block.enabled: expected true or false, got \"yes\" (1:58)",
                    "channels.telegram.streaming.block.coalesce.minChars: expected a whole number, 1 or more, got 0 (1:87)",
                    "channels.telegram.streaming.block.coalesce.maxChars: expected a whole number, 1 or more, got 1.5 (1:100)",
                    "channels.telegram.streaming.block.coalesce.idleMs: expected a whole number, 0 or more, got -1 (1:113)",
                    "channels.telegram.streaming.block.coalesce.gapMs: unknown key \"gapMs\"; known keys here: minChars, maxChars, idleMs (1:117)",
                ],
                &[],
            ),
            (
                "{ channels: { telegram: { streaming: { preview: { chunk: { minChars: 0, breakPreference: 'word' }, commandText: 'full' }, progress: { commandText: 'none', commentary: 1, narration: 'on' } } } } }",
                &[
                    "channels.telegram.streaming.preview.chunk.minChars: expected a whole number, 1 or more, got 0 (1:70)",
                    "channels.telegram.streaming.preview.chunk.breakPreference: invalid value \"word\": expected one of \"paragraph\", \"newline\", \"sentence\" (1:90)",
                    "channels.telegram.streaming.preview.commandText: invalid value \"full\": expected one of \"raw\", \"status\" (1:113)",
                    "channels.telegram.streaming.progress.commandText: invalid value \"none\": expected one of \"raw\", \"status\" (1:148)",
                    "channels.telegram.streaming.progress.commentary: expected true or false, got 1 (1:168)",
                    "channels.telegram.streaming.progress.narration: expected true or false, got \"on\" (1:182)",
                ],
                &[],
            ),
            // The legacy flat keys, read as OpenClaw's doctor moves them.
            (
                "{ channels: { telegram: { blockStreaming: true, blockStreamingCoalesce: { minChars: 10 }, draftChunk: { maxChars: 500 } } } }",
                &[],
                &[
                    "channels.telegram.blockStreaming: channels.telegram.blockStreaming is OpenClaw's legacy key, read as streaming.block.enabled: move it there (what `openclaw doctor --fix` writes) (1:27)",
                    "channels.telegram.blockStreamingCoalesce: channels.telegram.blockStreamingCoalesce is OpenClaw's legacy key, read as streaming.block.coalesce: move it there (what `openclaw doctor --fix` writes) (1:49)",
                    "channels.telegram.draftChunk: channels.telegram.draftChunk is OpenClaw's legacy key, read as streaming.preview.chunk: move it there (what `openclaw doctor --fix` writes) (1:91)",
                ],
            ),
            (
                "{ channels: { telegram: { streaming: { block: { enabled: false } }, blockStreaming: true } } }",
                &[],
                &["channels.telegram.blockStreaming: channels.telegram.blockStreaming is OpenClaw's legacy key and is ignored: streaming.block.enabled is set; remove it (what `openclaw doctor --fix` writes) (1:69)"],
            ),
            (
                "{ channels: { telegram: { blockStreaming: 'on', draftChunk: { breakPreference: 'word' } } } }",
                &[
                    "channels.telegram.blockStreaming: expected true or false, got \"on\" (1:43)",
                    "channels.telegram.draftChunk.breakPreference: invalid value \"word\": expected one of \"paragraph\", \"newline\", \"sentence\" (1:80)",
                ],
                &[],
            ),
            (
                "{ channels: { telegram: { chunkMode: 'paragraph' } } }",
                &["channels.telegram.chunkMode: invalid value \"paragraph\": expected one of \"length\", \"newline\" (1:38)"],
                &[],
            ),
        ];
        for (text, errors, warns) in table {
            check(text, errors);
            if errors.is_empty() {
                let doc = parse(text).expect("parses");
                let got: Vec<String> = warnings(&doc).iter().map(ToString::to_string).collect();
                assert_eq!(&got, warns, "{text}");
            }
        }
    }

    #[test]
    fn valid_configs_pass() {
        let table = [
            "{}",
            "{ $schema: './omniclaw.schema.json' }",
            "{ gateway: { mode: 'local', port: 18789, bind: 'loopback', auth: { mode: 'token', token: { source: 'keychain' } } } }",
            "{ gateway: { bind: 'custom', customBindHost: '192.168.1.10' } }",
            "{ gateway: { bind: 'custom', customBindHost: 'my-host.local' } }",
            "{ gateway: { mode: 'remote', remote: { url: 'wss://gw.example.com:443/ws', token: '${GW_TOKEN}' } } }",
            "{ gateway: { port: 0xFFFF, reload: { mode: 'off' } }, browser: { enabled: false }, canvasHost: { enabled: false } }",
            "{ gateway: { port: 65425 } }",
            "{ agents: { defaults: { workspace: '~/.omniclaw/workspace-rescue' } } }",
            "{ browser: { enabled: true, controlPort: 18791, cdpPortRangeStart: 18800, cdpUrl: 'http://127.0.0.1:9222' } }",
            "{ browser: { profiles: { work: { cdpPort: 18850 }, remote_1: { cdpUrl: 'ws://[::1]:9222/devtools' } } } }",
            "{ canvasHost: { enabled: false, port: 18793, root: '~/canvas' } }",
            "{ channels: { telegram: { enabled: true, botToken: '123:ABC', dmPolicy: 'allowlist', allowFrom: [123456789, '42'] } } }",
            "{ channels: { telegram: { apiRoot: 'http://127.0.0.1:8081', webhookUrl: 'https://bot.example.com/hook', webhookPort: 8443 } } }",
            "{ rescue: { targets: ['main', 'default', 'Bot-2'] } }",
            "{ logging: { level: 'debug' } }",
            "{ browser: { cdpPortRangeStart: 65436 } }",
        ];
        for text in table {
            check(text, &[]);
        }
    }

    #[test]
    fn unknown_keys_at_every_depth() {
        let table: &[(&str, &[&str])] = &[
            ("{ gatewya: {} }", &["gatewya: unknown key \"gatewya\"; did you mean \"gateway\"? (1:3)"]),
            (
                "{\n  gateway: { prot: 1 },\n}",
                &["gateway.prot: unknown key \"prot\"; did you mean \"port\"? (2:14)"],
            ),
            (
                "{\n  gateway: {\n    auth: {\n      mdoe: 'token',\n    },\n  },\n}",
                &["gateway.auth.mdoe: unknown key \"mdoe\"; did you mean \"mode\"? (4:7)"],
            ),
            (
                "{ browser: { profiles: { work: { cdpPort: 18850, color: 'red' } } } }",
                &["browser.profiles.work.color: unknown key \"color\"; known keys here: cdpPort, cdpUrl (1:50)"],
            ),
            (
                "{ logging: { lvl: 'info', file: 'x' } }",
                &[
                    "logging.lvl: unknown key \"lvl\"; known keys here: level (1:14)",
                    "logging.file: unknown key \"file\"; known keys here: level (1:27)",
                ],
            ),
            (
                "{ 'a.b': 1 }",
                &["[\"a.b\"]: unknown key \"a.b\"; known keys here: $schema, gateway, agents, browser, canvasHost, channels, rescue, logging, models, session, tools, budget (1:3)"],
            ),
        ];
        for (text, expected) in table {
            check(text, expected);
        }
    }

    #[test]
    fn ports_are_integers_from_1_to_65535() {
        let table: &[(&str, &str)] = &[
            ("0", "0"),
            ("65536", "65536"),
            ("-1", "-1"),
            ("1.5", "1.5"),
            ("'abc'", "\"abc\""),
            ("'18789'", "\"18789\""),
            ("true", "true"),
            ("null", "null"),
            ("[1]", "an array"),
            ("1.0", "1.0"),
        ];
        for (raw, shown) in table {
            let text = format!("{{\n  gateway: {{\n    port: {raw},\n  }},\n}}");
            let expected = format!("gateway.port: expected an integer 1–65535, got {shown} (3:11)");
            check(&text, &[&expected]);
        }
        check(
            "{ browser: { controlPort: 70000, profiles: { w: { cdpPort: 0 } } }, canvasHost: { port: -4 }, channels: { telegram: { webhookPort: 'x' } } }",
            &[
                "browser.controlPort: expected an integer 1–65535, got 70000 (1:27)",
                "browser.profiles.w.cdpPort: expected an integer 1–65535, got 0 (1:60)",
                "canvasHost.port: expected an integer 1–65535, got -4 (1:89)",
                "channels.telegram.webhookPort: expected an integer 1–65535, got \"x\" (1:132)",
            ],
        );
    }

    #[test]
    fn wrong_types() {
        let table: &[(&str, &[&str])] = &[
            ("[]", &["the config must be an object `{ ... }`, got an array (1:1)"]),
            ("{ gateway: 5 }", &["gateway: expected an object `{ ... }`, got 5 (1:12)"]),
            ("{ browser: { enabled: 'yes' } }", &["browser.enabled: expected true or false, got \"yes\" (1:23)"]),
            ("{ browser: { profiles: [] } }", &["browser.profiles: expected an object of browser profiles by name, got an array (1:24)"]),
            ("{ agents: { defaults: { workspace: 7 } } }", &["agents.defaults.workspace: expected a path string, got 7 (1:36)"]),
            ("{ rescue: { targets: 'main' } }", &["rescue.targets: expected an array `[ ... ]`, got \"main\" (1:22)"]),
            ("{ $schema: false }", &["$schema: expected a string, got false (1:12)"]),
            ("{ gateway: { auth: { token: 12345 } } }", &["gateway.auth.token: expected a string, an env reference \"${NAME}\" or {\"source\": \"keychain\"}, got a number (1:29)"]),
        ];
        for (text, expected) in table {
            check(text, expected);
        }
    }

    #[test]
    fn bad_enum_values_list_the_allowed_ones() {
        let table: &[(&str, &[&str])] = &[
            ("{ gateway: { bind: 'lan2' } }", &["gateway.bind: invalid value \"lan2\": expected one of \"loopback\", \"lan\", \"custom\"; did you mean \"lan\"? (1:20)"]),
            ("{ gateway: { mode: 'cloud' } }", &["gateway.mode: invalid value \"cloud\": expected one of \"local\", \"remote\" (1:20)"]),
            ("{ gateway: { auth: { mode: 1 } } }", &["gateway.auth.mode: expected one of \"token\", \"password\", \"none\", got 1 (1:28)"]),
            ("{ gateway: { reload: { mode: 'Hybrid' } } }", &["gateway.reload.mode: invalid value \"Hybrid\": expected one of \"hybrid\", \"off\"; did you mean \"hybrid\"? (1:30)"]),
            ("{ channels: { telegram: { dmPolicy: 'open' } } }", &["channels.telegram.dmPolicy: invalid value \"open\": expected one of \"pairing\", \"allowlist\", \"disabled\" (1:37)"]),
            ("{ logging: { level: 'verbose' } }", &["logging.level: invalid value \"verbose\": expected one of \"trace\", \"debug\", \"info\", \"warn\", \"error\" (1:21)"]),
        ];
        for (text, expected) in table {
            check(text, expected);
        }
    }

    #[test]
    fn the_rescue_watch_refuses_what_cannot_work() {
        let table: &[(&str, &[&str])] = &[
            ("{ rescue: { watch: { enabled: true, intervalSeconds: 5, failAfter: 1, actions: ['restart', 'rollback'], maxRepairsPerHour: 10 } } }", &[]),
            ("{ rescue: { watch: { actions: [] } } }", &[]),
            ("{ rescue: { watch: { intervalSeconds: 0 } } }", &["rescue.watch.intervalSeconds: expected a whole number, 1 or more, got 0 (1:39)"]),
            ("{ rescue: { watch: { intervalSeconds: -5 } } }", &["rescue.watch.intervalSeconds: expected a whole number, 1 or more, got -5 (1:39)"]),
            ("{ rescue: { watch: { intervalSeconds: 2.5 } } }", &["rescue.watch.intervalSeconds: expected a whole number, 1 or more, got 2.5 (1:39)"]),
            ("{ rescue: { watch: { failAfter: 0 } } }", &["rescue.watch.failAfter: expected a whole number, 1 or more, got 0 (1:33)"]),
            ("{ rescue: { watch: { maxRepairsPerHour: 0 } } }", &["rescue.watch.maxRepairsPerHour: expected a whole number, 1 or more, got 0 (1:41)"]),
            ("{ rescue: { watch: { actions: ['restart', 'reboot'] } } }", &["rescue.watch.actions[1]: invalid value \"reboot\": expected one of \"restart\", \"rollback\" (1:43)"]),
            ("{ rescue: { watch: { actions: ['restart', 'restart'] } } }", &["rescue.watch.actions[1]: \"restart\" is listed twice (also at [0]); keep one (1:43)"]),
            ("{ rescue: { watch: { actions: 'restart' } } }", &["rescue.watch.actions: expected an array `[ ... ]`, got \"restart\" (1:31)"]),
            ("{ rescue: { watch: { enabled: 'yes' } } }", &["rescue.watch.enabled: expected true or false, got \"yes\" (1:31)"]),
            ("{ rescue: { watch: { every: 5 } } }", &["rescue.watch.every: unknown key \"every\"; known keys here: enabled, intervalSeconds, failAfter, actions, maxRepairsPerHour (1:22)"]),
        ];
        for (text, expected) in table {
            check(text, expected);
        }
    }

    #[test]
    fn targets_must_be_profiles_on_this_machine() {
        let known: Vec<Profile> = ["main", "rescue", "default"]
            .iter()
            .map(|n| Profile::parse(n).expect("valid"))
            .collect();
        let table: &[(&str, &[&str])] = &[
            ("{}", &[]),
            ("{ rescue: { targets: ['main', 'Default'] } }", &[]),
            ("{ rescue: { targets: ['main', 'mian', 'ghost'] } }", &[
                "rescue.targets[1]: no profile \"mian\" on this machine (profiles: default, main, rescue); did you mean \"main\"? set it up first (`omniclaw --profile mian setup`) or leave it out (1:31)",
                "rescue.targets[2]: no profile \"ghost\" on this machine (profiles: default, main, rescue); set it up first (`omniclaw --profile ghost setup`) or leave it out (1:39)",
            ]),
            // A bad name is the schema's error, not this one's.
            ("{ rescue: { targets: ['-bad', 7] } }", &[]),
            ("{ rescue: { targets: 'main' } }", &[]),
        ];
        for (text, expected) in table {
            let doc = parse(text).expect("parses");
            let got: Vec<String> = unknown_targets(&doc, &known)
                .iter()
                .map(ToString::to_string)
                .collect();
            assert_eq!(got, *expected, "input: {text}");
        }
        let doc = parse("{ rescue: { targets: ['main'] } }").expect("parses");
        assert_eq!(
            unknown_targets(&doc, &[])[0].message,
            "no profile \"main\" on this machine (profiles: none); set it up first (`omniclaw --profile main setup`) or leave it out"
        );
    }

    #[test]
    fn empty_strings_and_bad_strings() {
        let table: &[(&str, &[&str])] = &[
            ("{ agents: { defaults: { workspace: '' } } }", &["agents.defaults.workspace: must not be empty: set a value or remove the key (1:36)"]),
            ("{ canvasHost: { root: '  ' } }", &["canvasHost.root: must not be empty: set a value or remove the key (1:23)"]),
            ("{ gateway: { bind: 'custom', customBindHost: '' } }", &["gateway.customBindHost: must not be empty: set a value or remove the key (1:46)"]),
            ("{ gateway: { bind: 'custom', customBindHost: 'not a host' } }", &["gateway.customBindHost: expected an IP address or host name (like \"192.168.1.10\"), got \"not a host\" (1:46)"]),
            ("{ channels: { telegram: { botToken: '' } } }", &["channels.telegram.botToken: must not be empty: set a string, an env reference \"${NAME}\" or {\"source\": \"keychain\"}, or remove the key (1:37)"]),
            ("{ channels: { telegram: { botToken: '${bot_token}' } } }", &["channels.telegram.botToken: malformed env reference: write exactly \"${NAME}\" with NAME made of A–Z, 0–9 and _ (like \"${TELEGRAM_BOT_TOKEN}\") (1:37)"]),
            ("{ gateway: { auth: { token: { source: 'vault' } } } }", &["gateway.auth.token.source: invalid value \"vault\": expected one of \"keychain\" (1:39)"]),
            ("{ gateway: { auth: { token: { sorce: 'keychain' } } } }", &[
                "gateway.auth.token: missing \"source\": write {\"source\": \"keychain\"} (1:29)",
                "gateway.auth.token.sorce: unknown key \"sorce\"; did you mean \"source\"? (1:31)",
            ]),
            ("{ rescue: { targets: ['main', '-bad', 'MAIN', ''] } }", &[
                "rescue.targets[1]: profile name \"-bad\" is invalid: it must start with a letter or digit and contain only letters, digits, `-` and `_` (for example `rescue` or `bot-2`) (1:31)",
                "rescue.targets[2]: \"MAIN\" is listed twice (also at [0]); keep one (1:39)",
                "rescue.targets[3]: profile name is empty: give a name like `main` or `rescue`, or leave --profile out for the default profile (1:47)",
            ]),
            ("{ channels: { telegram: { allowFrom: [1, 0, -2, '@bob', 'x1', 2.5] } } }", &[
                "channels.telegram.allowFrom[1]: expected a Telegram user id (a positive integer like 123456789), got 0 (1:42)",
                "channels.telegram.allowFrom[2]: expected a Telegram user id (a positive integer like 123456789), got -2 (1:45)",
                "channels.telegram.allowFrom[3]: expected a Telegram user id (a positive integer like 123456789), got \"@bob\"; usernames are not accepted: ask the user to message the bot and use the numeric id it reports (1:49)",
                "channels.telegram.allowFrom[4]: expected a Telegram user id (a positive integer like 123456789), got \"x1\" (1:57)",
                "channels.telegram.allowFrom[5]: expected a Telegram user id (a positive integer like 123456789), got 2.5 (1:63)",
            ]),
            ("{ browser: { profiles: { Work: { cdpPort: 1 } } } }", &["browser.profiles.Work: invalid browser profile name \"Work\": use 1–64 lower-case letters, digits, `-` or `_`, starting with a letter or digit (1:26)"]),
        ];
        for (text, expected) in table {
            check(text, expected);
        }
    }

    #[test]
    fn urls_need_the_right_scheme_and_a_host() {
        let table: &[(&str, &str, Option<&str>)] = &[
            (
                "channels.telegram.apiRoot",
                "https://api.telegram.org",
                None,
            ),
            (
                "channels.telegram.apiRoot",
                "http://127.0.0.1:8081/bot",
                None,
            ),
            (
                "channels.telegram.apiRoot",
                "ftp://x",
                Some("expected an http:// or https:// URL, got \"ftp://x\""),
            ),
            (
                "channels.telegram.apiRoot",
                "api.telegram.org",
                Some("expected an http:// or https:// URL, got \"api.telegram.org\""),
            ),
            (
                "channels.telegram.apiRoot",
                "HTTP://x",
                Some("expected an http:// or https:// URL, got \"HTTP://x\""),
            ),
            (
                "channels.telegram.webhookUrl",
                "https:///hook",
                Some("\"https:///hook\" has no host: write it like \"http://127.0.0.1:18800\""),
            ),
            (
                "channels.telegram.webhookUrl",
                "https://h:0/",
                Some("\"https://h:0/\" has an invalid port \"0\": use 1–65535"),
            ),
            (
                "channels.telegram.webhookUrl",
                "https://h:99999",
                Some("\"https://h:99999\" has an invalid port \"99999\": use 1–65535"),
            ),
            (
                "channels.telegram.webhookUrl",
                "https://a b",
                Some("\"https://a b\" contains spaces: expected an http:// or https:// URL"),
            ),
            (
                "browser.cdpUrl",
                "ws://127.0.0.1:9222/devtools/browser/x",
                None,
            ),
            ("browser.cdpUrl", "wss://user:pw@host:9222", None),
            ("browser.cdpUrl", "ws://[::1]:9222", None),
            (
                "browser.cdpUrl",
                "ws://[nope]:9222",
                Some("\"ws://[nope]:9222\" has a malformed IPv6 host"),
            ),
            (
                "browser.cdpUrl",
                "tcp://x",
                Some("expected an http://, https://, ws:// or wss:// URL, got \"tcp://x\""),
            ),
            (
                "browser.cdpUrl",
                "http://bad_host!:1",
                Some("\"http://bad_host!:1\" has an invalid host \"bad_host!\""),
            ),
            ("gateway.remote.url", "wss://gw.example.com", None),
            ("gateway.remote.url", "ws://192.168.1.20:18789", None),
            ("gateway.remote.url", "ws://box.tail1234.ts.net:18789", None),
            (
                "gateway.remote.url",
                "ws://gw.example.com:18789",
                Some("would send the token unencrypted to gw.example.com, which is not a loopback, private, link-local or tailnet address: use wss://, or a tailnet name (*.ts.net) or address"),
            ),
            (
                "gateway.remote.url",
                "wss://me:pw@gw.example.com",
                Some("carries a user name or password: remove it; gateway.remote.token holds the token (`omniclaw secrets set gateway.remote.token`)"),
            ),
            (
                "gateway.remote.url",
                "wss://gw.example.com/?token=x",
                Some("has a query (?...): remove it; gateway.remote.token holds the token (`omniclaw secrets set gateway.remote.token`)"),
            ),
            (
                "gateway.remote.url",
                "wss://gw.example.com/#x",
                Some("has a fragment (#...): remove it"),
            ),
            (
                "gateway.remote.url",
                "https://gw.example.com",
                Some("expected a ws:// or wss:// URL, got \"https://gw.example.com\""),
            ),
        ];
        for (path, url, expected) in table {
            let mut value = serde_json::json!(url);
            for part in path.split('.').rev() {
                value = serde_json::json!({ part: value });
            }
            let doc = parse(&value.to_string()).expect("parses");
            let got = validate(&doc).err().map(|e| {
                e.0.into_iter()
                    .map(|d| d.message)
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            assert_eq!(got.as_deref(), *expected, "{path} = {url}");
        }
    }

    #[test]
    fn cross_field_checks() {
        let table: &[(&str, &[&str])] = &[
            (
                "{\n  gateway: {\n    bind: 'custom',\n  },\n}",
                &["gateway.customBindHost: required when gateway.bind is \"custom\": set the IP address or host name to listen on (3:5)"],
            ),
            (
                "{\n  gateway: { mode: 'remote' },\n}",
                &["gateway.remote.url: required when gateway.mode is \"remote\": set the ws:// or wss:// URL of the remote gateway (2:14)"],
            ),
            (
                "{ channels: { telegram: { dmPolicy: 'allowlist' } } }",
                &["channels.telegram.allowFrom: must list at least one Telegram user id when channels.telegram.dmPolicy is \"allowlist\", or nobody can talk to the bot (1:27)"],
            ),
            (
                "{ channels: { telegram: { dmPolicy: 'allowlist', allowFrom: [] } } }",
                &["channels.telegram.allowFrom: must list at least one Telegram user id when channels.telegram.dmPolicy is \"allowlist\", or nobody can talk to the bot (1:61)"],
            ),
            (
                "{ channels: { telegram: { dmPolicy: 'allowlist', allowFrom: 5 } } }",
                &["channels.telegram.allowFrom: expected an array `[ ... ]`, got 5 (1:61)"],
            ),
            (
                "{ channels: { telegram: { dmPolicy: 'pairing', allowFrom: [] } } }",
                &[],
            ),
            (
                "{ browser: { profiles: { work: {} } } }",
                &["browser.profiles.work: set \"cdpPort\" or \"cdpUrl\" for this browser profile (1:26)"],
            ),
            (
                "{ browser: { cdpPortRangeStart: 65500 } }",
                &["browser.cdpPortRangeStart: browser.cdpPortRangeStart 65500 leaves no room: the CDP range would end at 65599; choose a browser.cdpPortRangeStart of 65436 or lower (1:33)"],
            ),
            (
                "{\n  gateway: { port: 65500 },\n}",
                &["gateway.port: base port 65500 leaves no room: the CDP range would end at 65610; choose a base of 65425 or lower (2:20)"],
            ),
            (
                "{ gateway: { port: 65500 }, browser: { enabled: false }, canvasHost: { enabled: false } }",
                &[],
            ),
            (
                "{ gateway: { port: 65500 }, browser: { enabled: false } }",
                &[],
            ),
            (
                "{ gateway: { port: 65533 }, browser: { enabled: false } }",
                &["gateway.port: base port 65533 leaves no room: the canvas would be at port 65537; choose a base of 65531 or lower (1:20)"],
            ),
            (
                "{ gateway: { port: 65500 }, browser: { controlPort: 20000 }, canvasHost: { port: 20200 } }",
                &[],
            ),
            (
                "{ browser: { controlPort: 65500 } }",
                &["browser.controlPort: browser.controlPort 65500 leaves no room: the CDP range would end at 65608; choose a browser.controlPort of 65427 or lower (1:27)"],
            ),
            (
                "{ gateway: { port: 20000 }, canvasHost: { port: 20000 } }",
                &["canvasHost.port: the canvas 20000 collides with the base 20000 of the same instance; change canvasHost.port so the canvas stays clear of 20000 (1:49)"],
            ),
        ];
        for (text, expected) in table {
            check(text, expected);
        }
    }

    #[test]
    fn several_errors_are_all_reported_in_document_order() {
        let text = r#"// main gateway
{
  logging: { level: "loud" },
  gateway: {
    bind: "custom",
    port: 65536,
    auth: { mode: "tokn", extra: true },
  },
  browser: {
    profiles: {
      work: { cdpPort: "x", colour: "red" },
    },
  },
  channels: {
    telegram: { dmPolicy: "allowlist", allowFrom: [] },
  },
  unknown: 1,
}
"#;
        check(
            text,
            &[
                "logging.level: invalid value \"loud\": expected one of \"trace\", \"debug\", \"info\", \"warn\", \"error\" (3:21)",
                "gateway.customBindHost: required when gateway.bind is \"custom\": set the IP address or host name to listen on (5:5)",
                "gateway.port: expected an integer 1–65535, got 65536 (6:11)",
                "gateway.auth.mode: invalid value \"tokn\": expected one of \"token\", \"password\", \"none\"; did you mean \"token\"? (7:19)",
                "gateway.auth.extra: unknown key \"extra\"; known keys here: mode, token, password (7:27)",
                "browser.profiles.work.cdpPort: expected an integer 1–65535, got \"x\" (11:24)",
                "browser.profiles.work.colour: unknown key \"colour\"; known keys here: cdpPort, cdpUrl (11:29)",
                "channels.telegram.allowFrom: must list at least one Telegram user id when channels.telegram.dmPolicy is \"allowlist\", or nobody can talk to the bot (15:51)",
                "unknown: unknown key \"unknown\"; known keys here: $schema, gateway, agents, browser, canvasHost, channels, rescue, logging, models, session, tools, budget (17:3)",
            ],
        );
    }

    #[test]
    fn error_list_snapshot() {
        let text = "{\n  gateway: { port: 0, bind: 'wan' },\n  channels: { telegram: { botToken: 42, allowFrom: ['@me'] } },\n}\n";
        let errors = validate(&parse(text).expect("parses")).expect_err("invalid");
        insta::assert_snapshot!("several_errors", errors.to_string());
    }

    #[test]
    fn hosts() {
        let table: &[(&str, bool)] = &[
            ("127.0.0.1", true),
            ("::1", true),
            ("fe80::1", true),
            ("my-host.local", true),
            ("my-host.local.", true),
            ("localhost", true),
            ("-bad", false),
            ("a..b", false),
            ("with space", false),
            ("", false),
            ("[::1]", false),
        ];
        for (text, expected) in table {
            assert_eq!(is_host(text), *expected, "{text}");
        }
    }
}
