//! Dotted config paths (`gateway.auth.mode`, `browser.profiles.work.cdpPort`,
//! `channels.telegram.allowFrom[2]`, `["odd.key"]`), their lookup in a
//! document, and secret redaction for everything shown to a user.

use serde_json::{Map, Value};

use super::document::Document;
use super::model::SecretRef;
use super::schema::{self, Kind, Node, ROOT};

/// What plaintext secrets are replaced with in any output.
pub const REDACTED: &str = "__OMNICLAW_REDACTED__";

/// A config path that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("empty config path: use a dotted path like `gateway.port`")]
    Empty,
    #[error("config path {path:?} is malformed: {reason}")]
    Malformed { path: String, reason: String },
    #[error("unknown config path {path:?}: {parent} has no key {key:?}{hint}")]
    UnknownKey {
        path: String,
        parent: String,
        key: String,
        /// "; did you mean ..." or the list of known keys.
        hint: String,
    },
    #[error("config path {path:?}: {name:?} is not a valid {what} name: {rule}")]
    BadName {
        path: String,
        what: &'static str,
        name: String,
        rule: &'static str,
    },
    #[error("config path {path:?} goes into {parent}, which holds a single value, not {wanted}")]
    NotAContainer {
        path: String,
        parent: String,
        wanted: &'static str,
    },
}

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    Key(String),
    Index(usize),
}

/// Parses `a.b[2]["c.d"]` into segments.
pub(crate) fn parse_path(path: &str) -> Result<Vec<Segment>, PathError> {
    if path.is_empty() {
        return Err(PathError::Empty);
    }
    let malformed = |reason: &str| PathError::Malformed {
        path: path.to_string(),
        reason: reason.to_string(),
    };
    let mut segments = Vec::new();
    let mut rest = path;
    let mut first = true;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('[') {
            if let Some(quoted) = after.strip_prefix('"') {
                let end = closing_quote(quoted)
                    .ok_or_else(|| malformed("a quoted key is missing its closing `\"`"))?;
                let literal = &after[..end + 2];
                let key: String = serde_json::from_str(literal)
                    .map_err(|_| malformed("a quoted key is not a valid JSON string"))?;
                let tail = &after[end + 2..];
                rest = tail
                    .strip_prefix(']')
                    .ok_or_else(|| malformed("expected `]` after a quoted key"))?;
                segments.push(Segment::Key(key));
            } else {
                let close = after
                    .find(']')
                    .ok_or_else(|| malformed("a `[` is missing its `]`"))?;
                let index = after[..close]
                    .parse::<usize>()
                    .map_err(|_| malformed("write array items as `[N]` with N a number from 0"))?;
                segments.push(Segment::Index(index));
                rest = &after[close + 1..];
            }
        } else {
            let body = if first {
                rest
            } else {
                rest.strip_prefix('.')
                    .ok_or_else(|| malformed("expected `.` or `[` between parts"))?
            };
            let end = body.find(['.', '[', ']']).unwrap_or(body.len());
            if end == 0 {
                return Err(malformed("a part between dots is empty"));
            }
            segments.push(Segment::Key(body[..end].to_string()));
            rest = &body[end..];
        }
        first = false;
    }
    Ok(segments)
}

/// Byte index (in `s`) of the first unescaped `"`.
fn closing_quote(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some(i),
            _ => {}
        }
    }
    None
}

/// The canonical spelling of a path, as diagnostics show it.
pub(crate) fn render(segments: &[Segment]) -> String {
    let mut out = String::new();
    for segment in segments {
        match segment {
            Segment::Key(key) if is_plain_key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Key(key) => {
                out.push('[');
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(']');
            }
            Segment::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
    out
}

fn is_plain_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '$' | '-'))
}

/// The schema node a path names, or why the schema has no such path.
pub(crate) fn schema_node(segments: &[Segment]) -> Result<&'static Node, PathError> {
    let mut node: &'static Node = &ROOT;
    for (i, segment) in segments.iter().enumerate() {
        let parent = if i == 0 {
            "the config".to_string()
        } else {
            render(&segments[..i])
        };
        let whole = || render(segments);
        node = match (&node.kind, segment) {
            (Kind::Object(fields), Segment::Key(key)) => {
                match fields.iter().find(|f| f.name == key) {
                    Some(field) => &field.node,
                    None => {
                        let names = fields.iter().map(|f| f.name);
                        let hint = match schema::nearest(key, names.clone()) {
                            Some(near) => format!("; did you mean {near:?}?"),
                            None => {
                                format!("; known keys: {}", names.collect::<Vec<_>>().join(", "))
                            }
                        };
                        return Err(PathError::UnknownKey {
                            path: whole(),
                            parent,
                            key: key.clone(),
                            hint,
                        });
                    }
                }
            }
            (Kind::TextOr { fields, .. } | Kind::LegacyOr { fields, .. }, Segment::Key(key)) => {
                match fields.iter().find(|f| f.name == key) {
                    Some(field) => &field.node,
                    None => {
                        let names = fields.iter().map(|f| f.name);
                        return Err(PathError::UnknownKey {
                            path: whole(),
                            parent,
                            key: key.clone(),
                            hint: format!("; known keys: {}", names.collect::<Vec<_>>().join(", ")),
                        });
                    }
                }
            }
            (Kind::Map { what, names, value }, Segment::Key(key)) => {
                if !names.accepts(key) {
                    return Err(PathError::BadName {
                        path: whole(),
                        what,
                        name: key.clone(),
                        rule: names.rule(),
                    });
                }
                value
            }
            (Kind::Array { item, .. }, Segment::Index(_)) => item,
            (Kind::Object(_) | Kind::Map { .. }, Segment::Index(_)) => {
                return Err(PathError::NotAContainer {
                    path: whole(),
                    parent,
                    wanted: "an array",
                })
            }
            (Kind::Array { .. }, Segment::Key(_)) => {
                return Err(PathError::Malformed {
                    path: whole(),
                    reason: format!("{parent} is an array: address its items as `{parent}[N]`"),
                })
            }
            (_, Segment::Key(_)) => {
                return Err(PathError::NotAContainer {
                    path: whole(),
                    parent,
                    wanted: "an object",
                })
            }
            (_, Segment::Index(_)) => {
                return Err(PathError::NotAContainer {
                    path: whole(),
                    parent,
                    wanted: "an array",
                })
            }
        };
    }
    Ok(node)
}

/// The value at `path` in the document, with plaintext secrets redacted;
/// `Ok(None)` when the path is valid but not set. A path the schema does not
/// know is an error that suggests the nearest key.
pub fn get(doc: &Document, path: &str) -> Result<Option<Value>, PathError> {
    let segments = parse_path(path)?;
    let node = schema_node(&segments)?;
    Ok(lookup(doc.value(), &segments).map(|value| redact(Some(node), false, value)))
}

/// Like [`get`] but with secrets as written. For code that needs the value
/// itself (never for output).
pub fn get_raw(doc: &Document, path: &str) -> Result<Option<Value>, PathError> {
    let segments = parse_path(path)?;
    schema_node(&segments)?;
    Ok(lookup(doc.value(), &segments).cloned())
}

pub(crate) fn lookup<'v>(root: &'v Value, segments: &[Segment]) -> Option<&'v Value> {
    segments
        .iter()
        .try_fold(root, |value, segment| match segment {
            Segment::Key(key) => value.as_object()?.get(key),
            Segment::Index(i) => value.as_array()?.get(*i),
        })
}

/// A copy of a whole config value with every plaintext secret replaced by
/// [`REDACTED`]. Env references (`"${NAME}"`) and `{"source": "keychain"}`
/// are kept: they are not secret. Keys the schema does not know are redacted
/// when their name suggests a secret (token, password, secret, key), so an
/// invalid config can be shown safely too.
pub fn redacted(value: &Value) -> Value {
    redact(Some(&ROOT), false, value)
}

/// Every secret a config value sets, by dotted path (`gateway.auth.token`,
/// `models.providers.openai.apiKey`), in document order: wherever the schema
/// has a secret, whatever its map keys. Values of the wrong shape are left
/// out (validation reports them).
pub fn secret_refs(value: &Value) -> Vec<(String, SecretRef)> {
    let mut out = Vec::new();
    collect_secrets(&ROOT, value, &mut String::new(), &mut out);
    out
}

/// The secrets a config value holds in plain text, by dotted path.
pub fn plaintext_secrets(value: &Value) -> Vec<(String, String)> {
    secret_refs(value)
        .into_iter()
        .filter_map(|(path, r)| match r {
            SecretRef::Plain(text) => Some((path, text)),
            _ => None,
        })
        .collect()
}

fn collect_secrets(
    node: &'static Node,
    value: &Value,
    path: &mut String,
    out: &mut Vec<(String, SecretRef)>,
) {
    let mut descend = |key: &str, child: &'static Node, v: &Value| {
        let len = path.len();
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
        collect_secrets(child, v, path, out);
        path.truncate(len);
    };
    match (&node.kind, value) {
        (Kind::Secret, v) => {
            if let Some(r) = SecretRef::from_value(v) {
                out.push((path.clone(), r));
            }
        }
        (Kind::Object(fields), Value::Object(map)) => {
            for (k, v) in map {
                if let Some(f) = fields.iter().find(|f| f.name == k) {
                    descend(k, &f.node, v);
                }
            }
        }
        (Kind::Map { value: child, .. }, Value::Object(map)) => {
            for (k, v) in map {
                descend(k, child, v);
            }
        }
        _ => {}
    }
}

fn redact(node: Option<&'static Node>, secret_like: bool, value: &Value) -> Value {
    let kind = node.map(|n| &n.kind);
    match (kind, value) {
        (Some(Kind::Secret), Value::String(text)) if schema::env_ref(text).is_some() => {
            value.clone()
        }
        (Some(Kind::Secret), Value::Object(map)) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let keep = k == "source" && v.is_string();
                    let v = if keep {
                        v.clone()
                    } else {
                        redact(None, true, v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        (Some(Kind::Secret), Value::Null) => Value::Null,
        (Some(Kind::Secret), _) => Value::String(REDACTED.to_string()),
        (_, Value::Object(map)) => {
            let child = |key: &str| -> Option<&'static Node> {
                match kind? {
                    Kind::Object(fields)
                    | Kind::TextOr { fields, .. }
                    | Kind::LegacyOr { fields, .. } => {
                        fields.iter().find(|f| f.name == key).map(|f| &f.node)
                    }
                    Kind::Map { value, .. } => Some(value),
                    _ => None,
                }
            };
            let out: Map<String, Value> = map
                .iter()
                .map(|(k, v)| {
                    let node = child(k);
                    let secretish = node.is_none() && (secret_like || looks_secret(k));
                    (k.clone(), redact(node, secretish, v))
                })
                .collect();
            Value::Object(out)
        }
        (_, Value::Array(items)) => {
            let item = match kind {
                Some(Kind::Array { item, .. }) => Some(*item),
                _ => None,
            };
            Value::Array(items.iter().map(|v| redact(item, secret_like, v)).collect())
        }
        (None, Value::String(_) | Value::Number(_)) if secret_like => {
            Value::String(REDACTED.to_string())
        }
        _ => value.clone(),
    }
}

fn looks_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["token", "password", "secret", "apikey", "api_key", "key"]
        .iter()
        .any(|word| key.contains(word))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;
    use serde_json::json;

    fn check<T: PartialEq + std::fmt::Debug>(input: &str, got: T, expected: T) {
        assert_eq!(got, expected, "input: {input}");
    }

    #[test]
    fn paths_parse_and_render_canonically() {
        use Segment::{Index, Key};
        let key = |k: &str| Key(k.to_string());
        type Case<'a> = (&'a str, Result<Vec<Segment>, &'a str>, &'a str);
        let table: Vec<Case> = vec![
            ("gateway.port", Ok(vec![key("gateway"), key("port")]), "gateway.port"),
            (
                "channels.telegram.allowFrom[2]",
                Ok(vec![key("channels"), key("telegram"), key("allowFrom"), Index(2)]),
                "channels.telegram.allowFrom[2]",
            ),
            ("[\"a.b\"].c", Ok(vec![key("a.b"), key("c")]), "[\"a.b\"].c"),
            ("a[\"x\\\"y\"]", Ok(vec![key("a"), key("x\"y")]), "a[\"x\\\"y\"]"),
            ("$schema", Ok(vec![key("$schema")]), "$schema"),
            ("", Err("empty config path: use a dotted path like `gateway.port`"), ""),
            ("a..b", Err("config path \"a..b\" is malformed: a part between dots is empty"), ""),
            (".a", Err("config path \".a\" is malformed: a part between dots is empty"), ""),
            ("a.", Err("config path \"a.\" is malformed: a part between dots is empty"), ""),
            ("a[x]", Err("config path \"a[x]\" is malformed: write array items as `[N]` with N a number from 0"), ""),
            ("a[1", Err("config path \"a[1\" is malformed: a `[` is missing its `]`"), ""),
            ("a[0]b", Err("config path \"a[0]b\" is malformed: expected `.` or `[` between parts"), ""),
            ("a]", Err("config path \"a]\" is malformed: expected `.` or `[` between parts"), ""),
        ];
        for (path, expected, canonical) in table {
            let got = parse_path(path).map_err(|e| e.to_string());
            check(path, got.clone(), expected.map_err(str::to_string));
            if let Ok(segments) = got {
                check(path, render(&segments), canonical.to_string());
            }
        }
    }

    #[test]
    fn schema_paths_resolve_or_suggest() {
        let table: &[(&str, Result<(), &str>)] = &[
            ("gateway.port", Ok(())),
            ("browser.profiles.work.cdpPort", Ok(())),
            ("channels.telegram.allowFrom[3]", Ok(())),
            ("rescue.targets[0]", Ok(())),
            ("gateway.prot", Err("unknown config path \"gateway.prot\": gateway has no key \"prot\"; did you mean \"port\"?")),
            ("gatewya", Err("unknown config path \"gatewya\": the config has no key \"gatewya\"; did you mean \"gateway\"?")),
            ("logging.zzz", Err("unknown config path \"logging.zzz\": logging has no key \"zzz\"; known keys: level")),
            ("browser.profiles.work.cdpprot", Err("unknown config path \"browser.profiles.work.cdpprot\": browser.profiles.work has no key \"cdpprot\"; did you mean \"cdpPort\"?")),
            ("browser.profiles.Work", Err("config path \"browser.profiles.Work\": \"Work\" is not a valid browser profile name: use 1–64 lower-case letters, digits, `-` or `_`, starting with a letter or digit")),
            ("gateway.port.x", Err("config path \"gateway.port.x\" goes into gateway.port, which holds a single value, not an object")),
            ("gateway[0]", Err("config path \"gateway[0]\" goes into gateway, which holds a single value, not an array")),
            ("rescue.targets.x", Err("config path \"rescue.targets.x\" is malformed: rescue.targets is an array: address its items as `rescue.targets[N]`")),
        ];
        for (path, expected) in table {
            let got = parse_path(path)
                .and_then(|s| schema_node(&s).map(|_| ()))
                .map_err(|e| e.to_string());
            check(path, got, expected.map_err(str::to_string));
        }
    }

    #[test]
    fn get_reads_values_and_redacts_secrets() {
        let doc = parse(
            "{ gateway: { port: 19001, auth: { token: 'hunter2' } },
               browser: { profiles: { work: { cdpPort: 19020 } } },
               channels: { telegram: { botToken: '${TG}', allowFrom: [5, '6'] } } }",
        )
        .expect("parses");
        let table: &[(&str, Result<Option<Value>, &str>)] = &[
            ("gateway.port", Ok(Some(json!(19001)))),
            ("gateway.bind", Ok(None)),
            ("gateway.auth.token", Ok(Some(json!(REDACTED)))),
            ("gateway.auth", Ok(Some(json!({"token": REDACTED})))),
            ("channels.telegram.botToken", Ok(Some(json!("${TG}")))),
            ("channels.telegram.allowFrom[1]", Ok(Some(json!("6")))),
            ("channels.telegram.allowFrom[9]", Ok(None)),
            ("browser.profiles.work.cdpPort", Ok(Some(json!(19020)))),
            ("browser.profiles.home.cdpPort", Ok(None)),
            ("gateway.prot", Err("unknown config path \"gateway.prot\": gateway has no key \"prot\"; did you mean \"port\"?")),
        ];
        for (path, expected) in table {
            let got = get(&doc, path).map_err(|e| e.to_string());
            check(path, got, expected.clone().map_err(str::to_string));
        }
        check(
            "raw",
            get_raw(&doc, "gateway.auth.token"),
            Ok(Some(json!("hunter2"))),
        );
    }

    #[test]
    fn redaction_keeps_references_and_hides_plaintext() {
        let table = [
            (
                json!({"gateway": {"auth": {"token": "abc", "password": "${PW}"}, "port": 1}}),
                json!({"gateway": {"auth": {"token": REDACTED, "password": "${PW}"}, "port": 1}}),
            ),
            (
                json!({"gateway": {"remote": {"token": {"source": "keychain"}}}}),
                json!({"gateway": {"remote": {"token": {"source": "keychain"}}}}),
            ),
            (
                json!({"channels": {"telegram": {"botToken": "1:AA", "allowFrom": [1]}}}),
                json!({"channels": {"telegram": {"botToken": REDACTED, "allowFrom": [1]}}}),
            ),
            (
                json!({"channels": {"telegram": {"botToken": 12345}}}),
                json!({"channels": {"telegram": {"botToken": REDACTED}}}),
            ),
            (
                json!({"gateway": {"auth": {"token": {"source": "keychain", "value": "x"}}}}),
                json!({"gateway": {"auth": {"token": {"source": "keychain", "value": REDACTED}}}}),
            ),
            (
                json!({"gateway": {"auth": {"tokenn": "abc"}}, "extra": {"apiKey": "k", "name": "n"}}),
                json!({"gateway": {"auth": {"tokenn": REDACTED}}, "extra": {"apiKey": REDACTED, "name": "n"}}),
            ),
            (
                json!({"mySecrets": {"a": "x", "b": ["y"]}}),
                json!({"mySecrets": {"a": REDACTED, "b": [REDACTED]}}),
            ),
            (
                json!({"gateway": {"auth": {"mode": "token"}}}),
                json!({"gateway": {"auth": {"mode": "token"}}}),
            ),
        ];
        for (input, expected) in table {
            check(&input.to_string(), redacted(&input), expected);
        }
    }

    #[test]
    fn secret_refs_find_every_secret_by_path() {
        let value = json!({
            "gateway": {"auth": {"token": "abc", "password": "${PW}"}, "remote": {"token": {"source": "keychain"}}},
            "channels": {"telegram": {"botToken": "1:AA", "allowFrom": [1]}},
            "extra": {"apiKey": "not a schema secret"},
        });
        let refs: Vec<(String, String)> = secret_refs(&value)
            .into_iter()
            .map(|(p, r)| (p, format!("{r:?}")))
            .collect();
        assert_eq!(
            refs.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
            [
                "gateway.auth.token",
                "gateway.auth.password",
                "gateway.remote.token",
                "channels.telegram.botToken"
            ]
        );
        assert_eq!(
            plaintext_secrets(&value),
            [
                ("gateway.auth.token".to_string(), "abc".to_string()),
                ("channels.telegram.botToken".to_string(), "1:AA".to_string())
            ]
        );
    }
}
