//! The OpenClaw gateway protocol, version 4: frames, error shapes, close
//! codes, scopes and the checks on a `connect` request.
//!
//! Pure: values in, values out. Messages and codes match what the real peer
//! sends, so OpenClaw clients react to them the way they do at home.

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde::Serialize;
use serde_json::{json, Map, Value};

/// The protocol this gateway speaks.
pub const PROTOCOL_VERSION: u64 = 4;
/// Oldest protocol a probe may announce and still be understood.
pub const MINIMUM_PROBE_PROTOCOL: u64 = 3;

/// WebSocket close codes used by the gateway.
pub mod close {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const PROTOCOL_ERROR: u16 = 1002;
    pub const POLICY_VIOLATION: u16 = 1008;
    pub const MESSAGE_TOO_BIG: u16 = 1009;
}

/// Scope names.
pub const SCOPE_READ: &str = "operator.read";
pub const SCOPE_WRITE: &str = "operator.write";
pub const SCOPE_ADMIN: &str = "operator.admin";
pub const SCOPE_APPROVALS: &str = "operator.approvals";
pub const SCOPE_QUESTIONS: &str = "operator.questions";

/// Methods this gateway implements, as advertised in `hello-ok.features.methods`.
pub const METHODS: &[&str] = &[
    "health",
    "status",
    "system-presence",
    "config.get",
    "config.patch",
    "logs.tail",
    "channels.status",
    "gateway.identity.get",
    "chat.send",
    "chat.history",
    "chat.abort",
    "agent",
    "agent.wait",
    "sessions.list",
    "sessions.subscribe",
    "sessions.messages.subscribe",
    "sessions.messages.unsubscribe",
    "sessions.describe",
    "sessions.create",
    "sessions.send",
    "sessions.patch",
    "sessions.reset",
    "sessions.delete",
    "models.list",
    "agents.list",
    "commands.list",
    "question.list",
    "plugin.approval.list",
    "plugin.approval.resolve",
    "exec.approval.list",
    "exec.approval.get",
    "exec.approval.resolve",
];

/// Events this gateway emits, as advertised in `hello-ok.features.events`.
pub const EVENTS: &[&str] = &[
    "connect.challenge",
    "tick",
    "health",
    "shutdown",
    "chat",
    "agent",
    "session.message",
    "sessions.changed",
    "session.tool",
    "exec.approval.requested",
    "exec.approval.resolved",
    "plugin.approval.requested",
    "plugin.approval.resolved",
];

/// The scope a method needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Any authenticated connection (`health`).
    None,
    Read,
    Write,
    Admin,
    Approvals,
    Questions,
}

impl Scope {
    pub fn name(self) -> Option<&'static str> {
        match self {
            Scope::None => None,
            Scope::Read => Some(SCOPE_READ),
            Scope::Write => Some(SCOPE_WRITE),
            Scope::Admin => Some(SCOPE_ADMIN),
            Scope::Approvals => Some(SCOPE_APPROVALS),
            Scope::Questions => Some(SCOPE_QUESTIONS),
        }
    }
}

/// Which scope `method` needs. Unknown methods need admin, like the real
/// peer: a read-only client learns nothing about what else exists.
pub fn required_scope(method: &str) -> Scope {
    match method {
        "health" => Scope::None,
        "status"
        | "system-presence"
        | "config.get"
        | "logs.tail"
        | "channels.status"
        | "gateway.identity.get"
        | "chat.history"
        | "sessions.list"
        | "sessions.subscribe"
        | "sessions.messages.subscribe"
        | "sessions.messages.unsubscribe"
        | "sessions.describe"
        | "models.list"
        | "agents.list"
        | "commands.list" => Scope::Read,
        "chat.send" | "chat.abort" | "agent" | "agent.wait" | "sessions.create"
        | "sessions.send" | "sessions.patch" => Scope::Write,
        "question.list" => Scope::Questions,
        "plugin.approval.list"
        | "plugin.approval.resolve"
        | "exec.approval.list"
        | "exec.approval.get"
        | "exec.approval.resolve" => Scope::Approvals,
        _ => Scope::Admin,
    }
}

/// The scope `method` needs for these `params`: `agent` with `/new` or
/// `/reset` needs admin, as with the real peer.
pub fn required_scope_for(method: &str, params: &Value) -> Scope {
    if method == "agent" {
        let message = params.get("message").and_then(Value::as_str).unwrap_or("");
        let word = message.split_whitespace().next().unwrap_or("");
        if word.eq_ignore_ascii_case("/new") || word.eq_ignore_ascii_case("/reset") {
            return Scope::Admin;
        }
    }
    required_scope(method)
}

/// Whether `granted` covers `needed`: admin covers every scope, write
/// covers read.
pub fn allows(granted: &[String], needed: Scope) -> bool {
    let has = |s: &str| granted.iter().any(|g| g == s);
    match needed {
        Scope::None => true,
        Scope::Read => has(SCOPE_READ) || has(SCOPE_WRITE) || has(SCOPE_ADMIN),
        Scope::Write => has(SCOPE_WRITE) || has(SCOPE_ADMIN),
        Scope::Admin => has(SCOPE_ADMIN),
        Scope::Approvals => has(SCOPE_APPROVALS) || has(SCOPE_ADMIN),
        Scope::Questions => has(SCOPE_QUESTIONS) || has(SCOPE_ADMIN),
    }
}

/// An `error` object of a `res` frame.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorShape {
    pub code: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl ErrorShape {
    pub fn invalid_request(message: impl Into<String>) -> ErrorShape {
        ErrorShape {
            code: "INVALID_REQUEST",
            message: message.into(),
            details: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> ErrorShape {
        self.details = Some(details);
        self
    }

    pub fn missing_scope(scope: Scope) -> ErrorShape {
        let name = scope.name().unwrap_or(SCOPE_READ);
        ErrorShape {
            code: "FORBIDDEN",
            message: format!("missing scope: {name}"),
            details: Some(json!({
                "code": "MISSING_SCOPE",
                "missingScope": name,
                "requiredScopes": [name],
            })),
        }
    }

    pub fn unknown_method(method: &str) -> ErrorShape {
        ErrorShape::invalid_request(format!("unknown method: {method}"))
    }

    pub fn unavailable(message: impl Into<String>) -> ErrorShape {
        ErrorShape {
            code: "UNAVAILABLE",
            message: message.into(),
            details: None,
        }
    }

    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("code".into(), Value::from(self.code));
        m.insert("message".into(), Value::from(self.message.clone()));
        if let Some(d) = &self.details {
            m.insert("details".into(), d.clone());
        }
        Value::Object(m)
    }
}

/// A `res` frame with a payload.
pub fn res_ok(id: &Value, payload: impl Serialize) -> String {
    let frame = ResOk {
        kind: "res",
        id,
        ok: true,
        payload,
    };
    // Payloads are values and wire structs with string keys: encoding cannot
    // fail. Should one ever not encode, the caller still gets an answer.
    serde_json::to_string(&frame).unwrap_or_else(|e| {
        res_err(
            id,
            &ErrorShape::unavailable(format!("cannot encode the answer: {e}")),
        )
    })
}

/// A `res` frame with an error.
pub fn res_err(id: &Value, error: &ErrorShape) -> String {
    json!({"type": "res", "id": id, "ok": false, "error": error.to_value()}).to_string()
}

/// An `event` frame; `seq` is absent on `connect.challenge`.
pub fn event(name: &str, payload: impl Serialize, seq: Option<u64>) -> String {
    let frame = EventFrame {
        kind: "event",
        event: name,
        payload,
        seq,
    };
    serde_json::to_string(&frame).unwrap_or_else(|e| {
        let fallback = EventFrame {
            kind: "event",
            event: name,
            payload: json!({"error": format!("cannot encode the {name} event: {e}")}),
            seq,
        };
        serde_json::to_string(&fallback).unwrap_or_default()
    })
}

// The frames as written on the wire, field order included; serialized
// straight into the output without building a `Value` first.
#[derive(Serialize)]
struct ResOk<'a, P> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a Value,
    ok: bool,
    payload: P,
}

#[derive(Serialize)]
struct EventFrame<'a, P> {
    #[serde(rename = "type")]
    kind: &'static str,
    event: &'a str,
    payload: P,
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
}

/// An inbound frame, as far as the server cares.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    Req {
        id: Value,
        method: String,
        params: Value,
    },
    /// Valid JSON that is not a request; `id` when it carried one.
    Other { id: Option<Value> },
}

/// Parses a text frame. `Err` means the text was not JSON at all.
///
/// An object is read field by field (the last of duplicate keys wins, as
/// in a `Value`), without building a map of the whole frame first.
pub fn parse_frame(text: &str) -> Result<Inbound, serde_json::Error> {
    if !text.trim_start().starts_with('{') {
        // Valid JSON that is not an object carries no request.
        let _: Value = serde_json::from_str(text)?;
        return Ok(Inbound::Other { id: None });
    }
    let fields: Fields = serde_json::from_str(text)?;
    let id = fields.id.filter(|i| i.is_string() || i.is_number());
    let is_req = fields.kind.as_ref().and_then(Value::as_str) == Some("req");
    match (is_req, id, fields.method) {
        (true, Some(id), Some(Value::String(method))) => Ok(Inbound::Req {
            id,
            method,
            params: fields.params.unwrap_or(Value::Null),
        }),
        (_, id, _) => Ok(Inbound::Other { id }),
    }
}

/// The top-level fields of an object frame that the server reads.
#[derive(Default)]
struct Fields {
    kind: Option<Value>,
    id: Option<Value>,
    method: Option<Value>,
    params: Option<Value>,
}

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Fields, D::Error> {
        d.deserialize_map(FieldsVisitor)
    }
}

struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Fields;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
        let mut out = Fields::default();
        while let Some(key) = map.next_key::<Key>()? {
            let value: Value = map.next_value()?;
            match key {
                Key::Type => out.kind = Some(value),
                Key::Id => out.id = Some(value),
                Key::Method => out.method = Some(value),
                Key::Params => out.params = Some(value),
                Key::Other => {}
            }
        }
        Ok(out)
    }
}

/// A key of an object frame; keys the server does not read are `Other`.
enum Key {
    Type,
    Id,
    Method,
    Params,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object key")
            }

            fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
                Ok(match key {
                    "type" => Key::Type,
                    "id" => Key::Id,
                    "method" => Key::Method,
                    "params" => Key::Params,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

/// Credentials a client presented in `connect.params.auth`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Presented {
    pub token: Option<String>,
    pub password: Option<String>,
}

/// A `connect` request that passed the schema and protocol checks.
#[derive(Debug, Clone, PartialEq)]
pub struct Connect {
    pub client_id: String,
    pub client_mode: String,
    pub role: String,
    pub scopes: Vec<String>,
    /// What the client can take (`tool-events`, …).
    pub caps: Vec<String>,
    pub auth: Presented,
}

/// A refused `connect`: the error to send and the close code that follows.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub error: ErrorShape,
    pub close_code: u16,
}

impl Refusal {
    pub fn policy(error: ErrorShape) -> Refusal {
        Refusal {
            error,
            close_code: close::POLICY_VIOLATION,
        }
    }

    /// The close reason: the error message, cut to the 123 bytes a close frame holds.
    pub fn reason(&self) -> String {
        truncate_reason(&self.error.message)
    }
}

/// Cuts `s` to at most 123 bytes on a char boundary (the close-frame limit).
pub fn truncate_reason(s: &str) -> String {
    if s.len() <= 123 {
        return s.to_string();
    }
    let mut end = 123;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

fn invalid_params(msg: &str) -> Refusal {
    Refusal::policy(ErrorShape::invalid_request(format!(
        "invalid connect params: {msg}"
    )))
}

fn required(name: &str) -> String {
    format!("must have required property '{name}'")
}

/// The first frame of a connection: must be `connect`.
pub fn first_request_must_be_connect() -> Refusal {
    Refusal::policy(ErrorShape::invalid_request(
        "invalid handshake: first request must be connect",
    ))
}

/// Validates `connect` params the way the real peer's schema does, then the
/// protocol range.
pub fn check_connect(params: &Value) -> Result<Connect, Refusal> {
    let Some(p) = params.as_object() else {
        return Err(invalid_params("must be object"));
    };
    for key in ["minProtocol", "maxProtocol", "client"] {
        if !p.contains_key(key) {
            return Err(invalid_params(&required(key)));
        }
    }
    let proto = |key: &str| -> Result<u64, Refusal> {
        p.get(key)
            .and_then(Value::as_u64)
            .filter(|n| *n >= 1)
            .ok_or_else(|| invalid_params(&format!("at /{key}: must be integer >= 1")))
    };
    let (min, max) = (proto("minProtocol")?, proto("maxProtocol")?);
    let Some(client) = p.get("client").and_then(Value::as_object) else {
        return Err(invalid_params("at /client: must be object"));
    };
    for key in ["id", "version", "platform", "mode"] {
        match client.get(key) {
            None => return Err(invalid_params(&format!("at /client: {}", required(key)))),
            Some(Value::String(s)) if !s.is_empty() => {}
            Some(_) => {
                return Err(invalid_params(&format!(
                    "at /client/{key}: must be non-empty string"
                )))
            }
        }
    }
    let role = match p.get("role") {
        None => "operator".to_string(),
        Some(Value::String(r)) => r.clone(),
        Some(_) => return Err(invalid_params("at /role: must be string")),
    };
    let scopes = match p.get("scopes") {
        None => Vec::new(),
        Some(Value::Array(items)) => {
            let mut out: Vec<String> = Vec::new();
            for item in items {
                let Some(s) = item.as_str() else {
                    return Err(invalid_params("at /scopes: must be array of strings"));
                };
                if !out.iter().any(|o| o == s) {
                    out.push(s.to_string());
                }
            }
            out
        }
        Some(_) => return Err(invalid_params("at /scopes: must be array")),
    };
    let caps = match p.get("caps") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|c| c.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| invalid_params("at /caps: must be array of strings"))?,
        Some(_) => return Err(invalid_params("at /caps: must be array")),
    };
    let auth = match p.get("auth") {
        None | Some(Value::Null) => Presented::default(),
        Some(Value::Object(a)) => {
            let field = |k: &str| a.get(k).and_then(Value::as_str).map(str::to_string);
            Presented {
                token: field("token"),
                password: field("password"),
            }
        }
        Some(_) => return Err(invalid_params("at /auth: must be object")),
    };
    if min > PROTOCOL_VERSION || max < PROTOCOL_VERSION {
        return Err(Refusal {
            error: ErrorShape::invalid_request("protocol mismatch").with_details(json!({
                "code": "PROTOCOL_MISMATCH",
                "clientMinProtocol": min,
                "clientMaxProtocol": max,
                "expectedProtocol": PROTOCOL_VERSION,
                "minimumProbeProtocol": MINIMUM_PROBE_PROTOCOL,
            })),
            close_code: close::PROTOCOL_ERROR,
        });
    }
    if role != "operator" {
        return Err(invalid_params(&format!(
            "at /role: unsupported role {role:?}; this gateway accepts operator clients"
        )));
    }
    let str_of = |k: &str| {
        client
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    Ok(Connect {
        client_id: str_of("id"),
        client_mode: str_of("mode"),
        role,
        scopes,
        caps,
        auth,
    })
}

/// The scopes a connection gets. Probes are granted none: they may only
/// call `health` and read the `hello-ok` snapshot, as with the real peer.
pub fn granted_scopes(connect: &Connect) -> Vec<String> {
    if connect.client_mode == "probe" {
        Vec::new()
    } else {
        connect.scopes.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(params: Value, expected: Result<(&str, Vec<&str>), (&str, u16)>) {
        let got = check_connect(&params)
            .map(|c| {
                let scopes = granted_scopes(&c);
                (c.client_mode, scopes)
            })
            .map_err(|r| (r.error.message.clone(), r.close_code));
        let expected = expected
            .map(|(m, s)| (m.to_string(), s.into_iter().map(String::from).collect()))
            .map_err(|(m, c)| (m.to_string(), c));
        assert_eq!(got, expected, "params: {params}");
    }

    fn client(mode: &str) -> Value {
        json!({"id": "cli", "version": "1", "platform": "linux", "mode": mode})
    }

    #[test]
    fn connect_params_like_the_real_peer() {
        check(
            json!({"minProtocol": 4, "maxProtocol": 4, "client": client("cli"), "scopes": ["operator.read"]}),
            Ok(("cli", vec!["operator.read"])),
        );
        check(
            json!({"minProtocol": 3, "maxProtocol": 4, "client": client("probe"), "scopes": ["operator.read"]}),
            Ok(("probe", vec![])),
        );
        check(
            json!({"minProtocol": 4, "maxProtocol": 4}),
            Err((
                "invalid connect params: must have required property 'client'",
                1008,
            )),
        );
        check(
            json!({"maxProtocol": 4, "client": client("cli")}),
            Err((
                "invalid connect params: must have required property 'minProtocol'",
                1008,
            )),
        );
        check(
            json!({"minProtocol": 5, "maxProtocol": 5, "client": client("cli")}),
            Err(("protocol mismatch", 1002)),
        );
        check(
            json!({"minProtocol": 1, "maxProtocol": 3, "client": client("cli")}),
            Err(("protocol mismatch", 1002)),
        );
        check(
            json!({"minProtocol": 4, "maxProtocol": 4, "client": {"id": "cli"}}),
            Err((
                "invalid connect params: at /client: must have required property 'version'",
                1008,
            )),
        );
        check(
            json!("nope"),
            Err(("invalid connect params: must be object", 1008)),
        );
        check(
            json!({"minProtocol": 4, "maxProtocol": 4, "client": client("cli"), "role": "node"}),
            Err((
                "invalid connect params: at /role: unsupported role \"node\"; this gateway accepts operator clients",
                1008,
            )),
        );
    }

    #[test]
    fn protocol_mismatch_details_match_capture() {
        let r =
            check_connect(&json!({"minProtocol": 5, "maxProtocol": 5, "client": client("cli")}))
                .expect_err("mismatch");
        assert_eq!(
            r.error.to_value(),
            json!({"code":"INVALID_REQUEST","message":"protocol mismatch","details":{"code":"PROTOCOL_MISMATCH","clientMinProtocol":5,"clientMaxProtocol":5,"expectedProtocol":4,"minimumProbeProtocol":3}})
        );
    }

    #[test]
    fn scopes_gate_methods() {
        let table: &[(&[&str], &str, bool)] = &[
            (&[], "health", true),
            (&[], "status", false),
            (&["operator.read"], "status", true),
            (&["operator.read"], "config.get", true),
            (&["operator.read"], "config.patch", false),
            (&["operator.admin"], "config.patch", true),
            (&["operator.admin"], "logs.tail", true),
            (&["operator.read"], "no.such.method", false),
        ];
        for (granted, method, ok) in table {
            let granted: Vec<String> = granted.iter().map(|s| s.to_string()).collect();
            assert_eq!(
                allows(&granted, required_scope(method)),
                *ok,
                "{granted:?} {method}"
            );
        }
    }

    #[test]
    fn missing_scope_shape_matches_capture() {
        assert_eq!(
            res_err(&json!("4"), &ErrorShape::missing_scope(Scope::Admin)),
            r#"{"type":"res","id":"4","ok":false,"error":{"code":"FORBIDDEN","message":"missing scope: operator.admin","details":{"code":"MISSING_SCOPE","missingScope":"operator.admin","requiredScopes":["operator.admin"]}}}"#
        );
    }

    #[test]
    fn frames_parse() {
        let table: &[(&str, Option<Inbound>)] = &[
            (
                r#"{"type":"req","id":"2","method":"health"}"#,
                Some(Inbound::Req {
                    id: json!("2"),
                    method: "health".into(),
                    params: Value::Null,
                }),
            ),
            (
                r#"{"type":"event","id":"1"}"#,
                Some(Inbound::Other {
                    id: Some(json!("1")),
                }),
            ),
            (
                r#"{"type":"req","method":"x"}"#,
                Some(Inbound::Other { id: None }),
            ),
            (
                r#"{"params":{"a":1},"method":"status","id":7,"type":"req","extra":[1,{"b":null}]}"#,
                Some(Inbound::Req {
                    id: json!(7),
                    method: "status".into(),
                    params: json!({"a": 1}),
                }),
            ),
            (
                r#"{"type":"req","id":"1","id":"2","method":"health","method":"status"}"#,
                Some(Inbound::Req {
                    id: json!("2"),
                    method: "status".into(),
                    params: Value::Null,
                }),
            ),
            (
                r#" {"\u0074ype":"req","id":"3","method":"health"}"#,
                Some(Inbound::Req {
                    id: json!("3"),
                    method: "health".into(),
                    params: Value::Null,
                }),
            ),
            (
                r#"{"type":"req","id":true,"method":"health"}"#,
                Some(Inbound::Other { id: None }),
            ),
            (
                r#"{"type":"req","id":"4","method":5}"#,
                Some(Inbound::Other {
                    id: Some(json!("4")),
                }),
            ),
            (r#"["type","req"]"#, Some(Inbound::Other { id: None })),
            ("42", Some(Inbound::Other { id: None })),
            ("{not json", None),
            (r#"{"type":"req"} x"#, None),
            (r#"[1,"#, None),
            (r#"{"type":"req","x":"\ud800"}"#, None),
        ];
        for (text, expected) in table {
            assert_eq!(parse_frame(text).ok(), *expected, "{text}");
        }
    }

    #[test]
    fn answers_keep_the_field_order_of_the_real_peer() {
        assert_eq!(
            res_ok(&json!("9"), json!({"b": 1, "a": [true]})),
            r#"{"type":"res","id":"9","ok":true,"payload":{"b":1,"a":[true]}}"#
        );
        assert_eq!(
            res_ok(&json!(3), Value::Null),
            r#"{"type":"res","id":3,"ok":true,"payload":null}"#
        );
    }

    #[test]
    fn events_carry_seq_except_the_challenge() {
        assert_eq!(
            event("tick", json!({"ts": 1}), Some(3)),
            r#"{"type":"event","event":"tick","payload":{"ts":1},"seq":3}"#
        );
        assert!(!event("connect.challenge", json!({}), None).contains("seq"));
    }

    #[test]
    fn close_reasons_fit_a_frame() {
        let long = "é".repeat(100);
        let cut = truncate_reason(&long);
        assert!(cut.len() <= 123 && long.starts_with(&cut));
        assert_eq!(truncate_reason("short"), "short");
    }
}
