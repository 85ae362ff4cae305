//! The methods a connected client can call, and the `hello-ok` payload.
//!
//! Payloads follow the real peer's shapes where the captures show them, and
//! carry only fields this gateway can fill truthfully. Nothing returned here
//! contains a plaintext secret: config text and values are redacted.

use std::borrow::Cow;
use std::io::{Read, Seek, SeekFrom};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use omniclaw_core::config;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::conn::{now_ms, Caller};
use crate::protocol::{ErrorShape, EVENTS, METHODS, PROTOCOL_VERSION};
use crate::server::Shared;
use crate::VERSION;

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// What a method answers. Most build a `Value`; `health`, the method
/// clients poll, is written to the wire straight from its struct.
pub(crate) enum Payload<'a> {
    Value(Value),
    Health(Health<'a>),
}

impl Serialize for Payload<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Payload::Value(v) => v.serialize(s),
            Payload::Health(h) => h.serialize(s),
        }
    }
}

pub(crate) async fn call<'a>(
    shared: &'a Arc<Shared>,
    me: &Caller<'_>,
    id: &Value,
    method: &str,
    params: Value,
) -> Result<Payload<'a>, ErrorShape> {
    if let Some(value) = chat_call(shared, me, id, method, &params).await {
        return value.map(Payload::Value);
    }
    let value = match method {
        "health" => return Ok(Payload::Health(health(shared))),
        "status" => status(shared),
        "system-presence" => json!([presence(shared)]),
        "gateway.identity.get" => identity(shared),
        "config.get" => config_get(shared).await?,
        "config.patch" => config_patch(shared, &params).await?,
        "logs.tail" => {
            let query = LogQuery::from_params(&params)?;
            let dir = shared.spec.logs_dir();
            tokio::task::spawn_blocking(move || tail_logs(&dir, &query))
                .await
                .map_err(|e| ErrorShape::unavailable(format!("logs.tail failed: {e}")))??
        }
        "channels.status" => channels_status(shared).await?,
        other => return Err(ErrorShape::unknown_method(other)),
    };
    Ok(Payload::Value(value))
}

/// The assistant's methods; `None` for any other method.
async fn chat_call(
    shared: &Arc<Shared>,
    me: &Caller<'_>,
    id: &Value,
    method: &str,
    params: &Value,
) -> Option<Result<Value, ErrorShape>> {
    const CHAT: &[&str] = &[
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
    if !CHAT.contains(&method) {
        return None;
    }
    // Asked of every gateway, with or without an assistant.
    match method {
        "question.list" => return Some(Ok(json!({"questions": []}))),
        "plugin.approval.list" => {
            let list: Vec<Value> = shared
                .live
                .approvals
                .pending()
                .iter()
                .map(|p| p.plugin_event())
                .collect();
            return Some(Ok(Value::Array(list)));
        }
        "exec.approval.list" => {
            let list: Vec<Value> = shared
                .live
                .approvals
                .pending()
                .iter()
                .map(|p| p.exec_event())
                .collect();
            return Some(Ok(Value::Array(list)));
        }
        "exec.approval.get" => return Some(shared.live.approvals.get(params)),
        "exec.approval.resolve" | "plugin.approval.resolve" => {
            return Some(
                shared
                    .live
                    .approvals
                    .resolve_params(method, params, "operator"),
            )
        }
        "commands.list" => {
            return Some(Ok(json!({"commands": [
                {"name": "new", "description": "Start a new session (the transcript so far is kept)", "scope": "text"},
                {"name": "reset", "description": "Reset this session", "scope": "text"},
                {"name": "stop", "description": "Stop the reply being written", "scope": "text"},
            ]})))
        }
        _ => {}
    }
    let Some(a) = shared.live.assistant() else {
        let why = shared
            .live
            .assistant_problem()
            .unwrap_or_else(|| "this gateway runs no assistant".to_string());
        return Some(Err(ErrorShape::unavailable(why)));
    };
    let hub = &shared.live.hub;
    Some(match method {
        "chat.send" => a.chat_send(me.conn, params),
        "chat.history" => a.chat_history(params),
        "chat.abort" => a.chat_abort(params),
        "agent" => a.agent(me.conn, id, params),
        "agent.wait" => a.agent_wait(params).await,
        "sessions.list" => a.sessions_list(params),
        "sessions.subscribe" => {
            hub.subscribe_sessions(me.conn);
            if params.as_object().is_some_and(|m| !m.is_empty()) {
                a.sessions_list(params)
                    .map(|list| json!({"subscribed": true, "list": list}))
            } else {
                Ok(json!({"subscribed": true}))
            }
        }
        "sessions.messages.subscribe" | "sessions.messages.unsubscribe" => {
            let on = method == "sessions.messages.subscribe";
            a.canonical_key(params.get("key"), method).map(|key| {
                hub.subscribe_messages(me.conn, key.as_str(), on);
                json!({"subscribed": on, "key": key.as_str()})
            })
        }
        "sessions.describe" => a.sessions_describe(params),
        "sessions.create" => a.sessions_create(me.conn, params),
        "sessions.send" => a.sessions_send(me.conn, params),
        "sessions.patch" => a.sessions_patch(params),
        "sessions.reset" => a.sessions_reset(params),
        "sessions.delete" => a.sessions_delete(params),
        "models.list" => Ok(a.models_list()),
        "agents.list" => Ok(a.agents_list(&shared.spec.workspace)),
        _ => return None,
    })
}

pub(crate) fn hello_ok(shared: &Shared, conn_id: &str, role: &str, scopes: &[String]) -> Value {
    let spec = &shared.spec;
    json!({
        "type": "hello-ok",
        "protocol": PROTOCOL_VERSION,
        "server": {
            "version": VERSION,
            "bootId": shared.boot_id,
            "connId": conn_id,
        },
        "features": {"methods": METHODS, "events": EVENTS},
        "snapshot": {
            "presence": [presence(shared)],
            "health": health(shared),
            "stateVersion": {
                "presence": 1,
                "health": shared.health_version.load(Ordering::Relaxed),
            },
            "uptimeMs": shared.uptime_ms(),
            "sessionDefaults": shared.live.assistant().map(|a| a.hello_defaults()),
            "profile": spec.profile,
            "configPath": path_str(&spec.config_path),
            "stateDir": path_str(&spec.state_dir),
            "workspace": path_str(&spec.workspace),
        },
        "auth": {"method": shared.live.auth().mode(), "role": role, "scopes": scopes},
        "policy": {
            "maxPayload": spec.limits.max_payload,
            "maxBufferedBytes": spec.limits.max_buffered_bytes,
            "tickIntervalMs": u64::try_from(spec.limits.tick_interval.as_millis()).unwrap_or(u64::MAX),
        },
    })
}

/// The `surfaces` object of `health` and `status`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Surfaces<'a> {
    gateway: GatewaySurface,
    browser_control: BrowserSurface,
    canvas: CanvasSurface<'a>,
}

#[derive(Serialize)]
struct GatewaySurface {
    bind: IpAddr,
    port: u16,
    listening: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BrowserSurface {
    enabled: bool,
    port: u16,
    listening: bool,
    cdp_port_range: PortRange,
}

#[derive(Serialize)]
struct PortRange {
    start: u16,
    end: u16,
}

#[derive(Serialize)]
struct CanvasSurface<'a> {
    enabled: bool,
    port: u16,
    listening: bool,
    root: Cow<'a, str>,
}

fn surfaces(shared: &Shared) -> Surfaces<'_> {
    let spec = &shared.spec;
    let a = &shared.addrs;
    Surfaces {
        gateway: GatewaySurface {
            bind: spec.bind,
            port: a.gateway.port(),
            listening: shared.gateway_up.load(Ordering::Relaxed),
        },
        browser_control: BrowserSurface {
            enabled: spec.browser.enabled,
            port: a
                .browser_control
                .map(|s| s.port())
                .unwrap_or(spec.browser.control_port),
            listening: shared.control_up.load(Ordering::Relaxed),
            cdp_port_range: PortRange {
                start: *spec.browser.cdp_range.start(),
                end: *spec.browser.cdp_range.end(),
            },
        },
        canvas: CanvasSurface {
            enabled: spec.canvas.enabled,
            port: a.canvas.map(|s| s.port()).unwrap_or(spec.canvas.port),
            listening: shared.canvas_up.load(Ordering::Relaxed),
            root: spec.canvas.root.to_string_lossy(),
        },
    }
}

/// The `health` payload (also the `health` event's and the `hello-ok`
/// snapshot's), in the real peer's field order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Health<'a> {
    ok: bool,
    reload: Value,
    ts: u64,
    duration_ms: u64,
    profile: &'a str,
    surfaces: Surfaces<'a>,
    channels: EmptyObject,
    channel_order: [&'static str; 0],
    channel_labels: EmptyObject,
    /// The assistant's model, runs and today's spend (`None`: it runs none).
    #[serde(skip_serializing_if = "Option::is_none")]
    assistant: Option<Value>,
}

/// `{}`.
struct EmptyObject;

impl Serialize for EmptyObject {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_map(Some(0))?.end()
    }
}

pub(crate) fn health(shared: &Shared) -> Health<'_> {
    let t0 = Instant::now();
    let ok = shared.failing().is_empty();
    let surfaces = surfaces(shared);
    let reload = shared.live.report();
    Health {
        ok,
        reload,
        ts: now_ms(),
        duration_ms: u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX),
        profile: &shared.spec.profile,
        surfaces,
        channels: EmptyObject,
        channel_order: [],
        channel_labels: EmptyObject,
        assistant: Some(assistant_summary(shared)).filter(|v| !v.is_null()),
    }
}

fn host_name() -> Option<&'static str> {
    static HOST: OnceLock<Option<String>> = OnceLock::new();
    HOST.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    })
    .as_deref()
}

fn presence(shared: &Shared) -> Value {
    let mut m = Map::new();
    let host = host_name();
    if let Some(h) = host {
        m.insert("host".into(), Value::from(h));
    }
    m.insert("version".into(), Value::from(VERSION));
    m.insert("platform".into(), Value::from(std::env::consts::OS));
    m.insert("mode".into(), Value::from("gateway"));
    m.insert("reason".into(), Value::from("self"));
    m.insert("instanceId".into(), Value::from(shared.boot_id.clone()));
    m.insert(
        "text".into(),
        Value::from(format!(
            "Gateway: {} · app {VERSION} · mode gateway · reason self",
            host.unwrap_or("this host")
        )),
    );
    m.insert("ts".into(), Value::from(now_ms()));
    Value::Object(m)
}

fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn status(shared: &Shared) -> Value {
    let spec = &shared.spec;
    let mut v = json!({
        "runtimeVersion": VERSION,
        "pid": std::process::id(),
        "profile": spec.profile,
        "configPath": path_str(&spec.config_path),
        "stateDir": path_str(&spec.state_dir),
        "workspace": path_str(&spec.workspace),
        "uptimeMs": shared.uptime_ms(),
        "auth": {"mode": shared.live.auth().mode()},
        "reload": shared.live.report(),
        "surfaces": surfaces(shared),
        "ready": shared.failing().is_empty(),
        "connections": shared.connections.load(Ordering::Relaxed),
        "channelSummary": [],
        "queuedSystemEvents": [],
    });
    if let Some(tg) = shared.live.telegram() {
        v["channelSummary"] = json!([format!("Telegram: {}", tg.summary())]);
        v["telegram"] = tg.to_json();
    }
    if let Some(rss) = rss_bytes() {
        v["processMemory"] = json!({"rssBytes": rss});
    }
    v["assistant"] = assistant_summary(shared);
    v
}

/// The assistant's part of `health` and `status`.
fn assistant_summary(shared: &Shared) -> Value {
    match (shared.live.assistant(), shared.live.assistant_problem()) {
        (Some(a), problem) => {
            let mut v = a.summary();
            if let Some(p) = problem {
                v["problem"] = json!(p);
            }
            v
        }
        (None, Some(p)) => json!({"problem": p}),
        (None, None) => Value::Null,
    }
}

fn identity(shared: &Shared) -> Value {
    let spec = &shared.spec;
    json!({
        "profile": spec.profile,
        "configPath": path_str(&spec.config_path),
        "stateDir": path_str(&spec.state_dir),
        "workspace": path_str(&spec.workspace),
        "bootId": shared.boot_id,
        "version": VERSION,
        "pid": std::process::id(),
        "port": shared.addrs.gateway.port(),
    })
}

async fn read_config(path: &Path) -> Result<Option<String>, ErrorShape> {
    match tokio::fs::read_to_string(path).await {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ErrorShape::unavailable(format!(
            "cannot read config {}: {e}; check its permissions",
            path.display()
        ))),
    }
}

/// Every plaintext string that redaction replaced, longest first.
fn secrets_in(original: &Value, redacted: &Value, out: &mut Vec<String>) {
    match (original, redacted) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, va) in a {
                if let Some(vb) = b.get(k) {
                    secrets_in(va, vb, out);
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (va, vb) in a.iter().zip(b) {
                secrets_in(va, vb, out);
            }
        }
        (Value::String(s), other) if other != original && !s.is_empty() => out.push(s.clone()),
        _ => {}
    }
}

/// The config text with every plaintext secret replaced by the redaction marker.
pub(crate) fn redact_text(text: &str, original: &Value) -> String {
    let redacted = config::redacted(original);
    let mut secrets = Vec::new();
    secrets_in(original, &redacted, &mut secrets);
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = text.to_string();
    for s in secrets {
        out = out.replace(&s, config::REDACTED);
        // The secret may sit in the text in escaped form.
        let escaped = Value::from(s.as_str()).to_string();
        let inner = &escaped[1..escaped.len() - 1];
        if inner != s {
            out = out.replace(inner, config::REDACTED);
        }
    }
    out
}

async fn config_get(shared: &Shared) -> Result<Value, ErrorShape> {
    let path = &shared.spec.config_path;
    let Some(text) = read_config(path).await? else {
        return Ok(json!({
            "path": path_str(path),
            "exists": false,
            "raw": null,
            "hash": null,
            "valid": true,
            "config": {},
            "issues": [],
        }));
    };
    let hash = config::hash(&text);
    match config::parse(&text) {
        Err(errors) => Ok(json!({
            "path": path_str(path),
            "exists": true,
            // Unparsable text cannot be redacted reliably, so it is not shown.
            "raw": null,
            "hash": hash,
            "valid": false,
            "config": null,
            "issues": errors.diagnostics().iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        })),
        Ok(doc) => {
            let issues: Vec<String> = match config::validate(&doc) {
                Ok(_) => Vec::new(),
                Err(errors) => errors.diagnostics().iter().map(|d| d.to_string()).collect(),
            };
            Ok(json!({
                "path": path_str(path),
                "exists": true,
                "raw": redact_text(&text, doc.value()),
                "hash": hash,
                "valid": issues.is_empty(),
                "config": config::redacted(doc.value()),
                "issues": issues,
            }))
        }
    }
}

/// Drops patch entries that carry the redaction marker: a client that got
/// redacted config and sends it back means "keep the secret as it is".
fn strip_redacted(patch: &mut Value) {
    if let Value::Object(m) = patch {
        m.retain(|_, v| v.as_str() != Some(config::REDACTED));
        for v in m.values_mut() {
            strip_redacted(v);
        }
    }
}

async fn config_patch(shared: &Shared, params: &Value) -> Result<Value, ErrorShape> {
    let path = shared.spec.config_path.clone();
    let mut patch = match params.get("raw") {
        Some(Value::String(raw)) => config::parse(raw)
            .map(|doc| doc.into_value())
            .map_err(|e| {
                ErrorShape::invalid_request(format!(
                    "invalid config.patch params: raw is not valid JSON5: {e}"
                ))
            })?,
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) | None => {
            return Err(ErrorShape::invalid_request(
                "invalid config.patch params: raw must be a JSON5 merge patch (text or object), e.g. {\"raw\": \"{ gateway: { port: 19001 } }\", \"baseHash\": \"<hash from config.get>\"}",
            ))
        }
    };
    if !patch.is_object() {
        return Err(ErrorShape::invalid_request(
            "invalid config.patch params: raw must be an object (a JSON merge patch)",
        ));
    }
    strip_redacted(&mut patch);
    let base_hash = params.get("baseHash").and_then(Value::as_str);

    let _serialized = shared.config_lock.lock().await;
    let current = read_config(&path).await?;
    if current.is_some() && base_hash.is_none() {
        return Err(ErrorShape::invalid_request(
            "config base hash required: run config.get and pass its hash as baseHash",
        )
        .with_details(json!({"code": "CONFIG_BASE_HASH_REQUIRED"})));
    }
    let options = omniclaw_os::edit::Options {
        force: false,
        base_hash: base_hash.map(str::to_string),
        create: true,
    };
    let target = shared.live.edit_target();
    let write_path = path.clone();
    let edited = tokio::task::spawn_blocking(move || {
        let change = |text: &str| config::merge_patch(text, &patch);
        match &target {
            Some(t) => omniclaw_os::edit::edit_config(t, &options, change),
            None => omniclaw_os::edit::edit_file(&write_path, &options, change),
        }
    })
    .await
    .map_err(|e| ErrorShape::unavailable(format!("config.patch failed: {e}")))?
    .map_err(|e| patch_refused(&path, base_hash, e))?;
    let next = edited.text;
    let shown = config::parse(&next)
        .map(|doc| config::redacted(doc.value()))
        .unwrap_or(Value::Null);
    Ok(json!({
        "ok": true,
        "path": path_str(&path),
        "hash": config::hash(&next),
        "config": shown,
    }))
}

/// A refused `config.patch` as the protocol's error: the code says which
/// rule refused it, the message names the key and the fix.
fn patch_refused(
    path: &Path,
    base_hash: Option<&str>,
    e: omniclaw_os::edit::EditError,
) -> ErrorShape {
    use omniclaw_os::edit::EditError;
    match e {
        EditError::Stale { current, .. } => ErrorShape::invalid_request(format!(
            "config changed since last load ({} was modified): run config.get again and retry with the new hash",
            path.display()
        ))
        .with_details(json!({
            "code": "CONFIG_BASE_HASH_MISMATCH",
            "baseHash": base_hash,
            "currentHash": current,
        })),
        EditError::Invalid { reason, .. } => ErrorShape::invalid_request(format!(
            "config.patch refused, {} left unchanged: {reason}",
            path.display()
        ))
        .with_details(json!({"code": "INVALID_CONFIG"})),
        e @ EditError::PlaintextSecret { .. } => ErrorShape::invalid_request(format!("config.patch refused: {e}"))
            .with_details(json!({"code": "PLAINTEXT_SECRET"})),
        EditError::Conflicts { file, profile, clashes } => ErrorShape::invalid_request(format!(
            "config.patch refused, {file} left unchanged: profile {profile} would collide:\n{}",
            omniclaw_os::edit::list(&clashes)
        ))
        .with_details(json!({"code": "CONFIG_CONFLICT"})),
        e @ (EditError::Missing { .. } | EditError::Unreadable(_) | EditError::Io { .. }) => {
            ErrorShape::unavailable(format!("config.patch failed: {e}"))
        }
    }
}

async fn channels_status(shared: &Shared) -> Result<Value, ErrorShape> {
    let text = read_config(&shared.spec.config_path).await?;
    let value = text
        .as_deref()
        .and_then(|t| config::parse(t).ok())
        .map(|d| d.into_value())
        .unwrap_or(Value::Null);
    let mut order = Vec::new();
    let mut labels = Map::new();
    let mut channels = Map::new();
    if let Some(tg) = value
        .pointer("/channels/telegram")
        .filter(|v| v.is_object())
    {
        order.push("telegram");
        labels.insert("telegram".into(), Value::from("Telegram"));
        let mut entry = json!({
            "configured": true,
            "enabled": tg.get("enabled").and_then(Value::as_bool).unwrap_or(true),
            "running": false,
        });
        if let (Some(state), Some(map)) = (shared.live.telegram(), entry.as_object_mut()) {
            if let Value::Object(fields) = state.to_json() {
                map.extend(fields);
            }
        }
        // Pending pairing requests, for the tray and the dashboard.
        if let Ok(p) = omniclaw_os::rescue::PairingStore::new(&shared.spec.state_dir).load() {
            entry["pendingPairings"] = json!(p
                .pending
                .iter()
                .map(|r| json!({"code": r.code.as_str(), "userId": r.user_id, "who": r.who, "created": r.created}))
                .collect::<Vec<_>>());
        }
        channels.insert("telegram".into(), entry);
    }
    Ok(json!({
        "ts": now_ms(),
        "channelOrder": order,
        "channelLabels": labels,
        "channels": channels,
    }))
}

/// Parameters of `logs.tail`, with the real peer's defaults and caps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogQuery {
    pub cursor: Option<u64>,
    pub limit: usize,
    pub max_bytes: u64,
}

const LOG_LIMIT_DEFAULT: usize = 500;
const LOG_LIMIT_MAX: usize = 5000;
const LOG_BYTES_DEFAULT: u64 = 250_000;
const LOG_BYTES_MAX: u64 = 1_000_000;

impl LogQuery {
    pub fn from_params(params: &Value) -> Result<LogQuery, ErrorShape> {
        let num = |k: &str| -> Result<Option<u64>, ErrorShape> {
            match params.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v.as_u64().map(Some).ok_or_else(|| {
                    ErrorShape::invalid_request(format!(
                        "invalid logs.tail params: {k} must be a non-negative integer"
                    ))
                }),
            }
        };
        let limit = num("limit")?.map_or(LOG_LIMIT_DEFAULT, |n| {
            usize::try_from(n)
                .unwrap_or(LOG_LIMIT_MAX)
                .clamp(1, LOG_LIMIT_MAX)
        });
        let max_bytes = num("maxBytes")?.map_or(LOG_BYTES_DEFAULT, |n| n.clamp(1, LOG_BYTES_MAX));
        Ok(LogQuery {
            cursor: num("cursor")?,
            limit,
            max_bytes,
        })
    }
}

/// The newest regular file in `dir`, by modification time then name.
fn newest_log(dir: &Path) -> Option<PathBuf> {
    let entries = std::fs::read_dir(dir).ok()?;
    entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            meta.is_file()
                .then(|| (meta.modified().ok(), e.file_name(), e.path()))
        })
        .max_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)))
        .map(|(_, _, p)| p)
}

pub(crate) fn tail_logs(dir: &Path, q: &LogQuery) -> Result<Value, ErrorShape> {
    let Some(file) = newest_log(dir) else {
        return Ok(json!({
            "file": null, "cursor": 0, "size": 0, "lines": [], "truncated": false, "reset": false,
        }));
    };
    let io_err = |e: std::io::Error| {
        ErrorShape::unavailable(format!("cannot read log file {}: {e}", file.display()))
    };
    let mut f = std::fs::File::open(&file).map_err(io_err)?;
    let size = f.metadata().map_err(io_err)?.len();
    let reset = q.cursor.is_some_and(|c| c > size);
    let from = match q.cursor {
        Some(c) if c <= size => c,
        _ => size.saturating_sub(q.max_bytes),
    };
    let start = from.max(size.saturating_sub(q.max_bytes));
    let mut truncated = start > from || ((q.cursor.is_none() || reset) && start > 0);
    f.seek(SeekFrom::Start(start)).map_err(io_err)?;
    let mut buf = Vec::new();
    f.take(size - start).read_to_end(&mut buf).map_err(io_err)?;
    let text = String::from_utf8_lossy(&buf);
    let mut lines: Vec<&str> = text.split('\n').collect();
    if lines.last() == Some(&"") {
        lines.pop();
    }
    // Starting in the middle of the file means the first line is partial.
    let jumped = start > 0 && q.cursor != Some(start);
    if jumped && !lines.is_empty() {
        lines.remove(0);
    }
    if lines.len() > q.limit {
        lines.drain(..lines.len() - q.limit);
        truncated = true;
    }
    Ok(json!({
        "file": path_str(&file),
        "cursor": size,
        "size": size,
        "lines": lines,
        "truncated": truncated,
        "reset": reset,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_query(params: Value, expected: Result<(Option<u64>, usize, u64), &str>) {
        let got = LogQuery::from_params(&params)
            .map(|q| (q.cursor, q.limit, q.max_bytes))
            .map_err(|e| e.message);
        assert_eq!(got, expected.map_err(str::to_string), "{params}");
    }

    #[test]
    fn log_query_defaults_and_caps() {
        check_query(json!({}), Ok((None, 500, 250_000)));
        check_query(Value::Null, Ok((None, 500, 250_000)));
        check_query(
            json!({"cursor": 10, "limit": 99999, "maxBytes": 0}),
            Ok((Some(10), 5000, 1)),
        );
        check_query(
            json!({"limit": -1}),
            Err("invalid logs.tail params: limit must be a non-negative integer"),
        );
    }

    fn check_tail(content: &str, q: LogQuery, expected: (Vec<&str>, u64, bool, bool)) {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("old.log"), "old\n").expect("write");
        // Make sure the newer file has a later mtime even on coarse clocks.
        let newer = dir.path().join("gateway.log");
        std::fs::write(&newer, content).expect("write");
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&newer)
            .and_then(|f| f.set_modified(later))
            .expect("mtime");
        let v = tail_logs(dir.path(), &q).expect("tail");
        let lines: Vec<&str> = v["lines"]
            .as_array()
            .expect("lines")
            .iter()
            .map(|l| l.as_str().expect("str"))
            .collect();
        assert_eq!(
            (
                lines,
                v["cursor"].as_u64().expect("cursor"),
                v["truncated"].as_bool().expect("t"),
                v["reset"].as_bool().expect("r")
            ),
            expected,
            "{q:?}"
        );
        assert!(v["file"].as_str().expect("file").ends_with("gateway.log"));
    }

    fn q(cursor: Option<u64>, limit: usize, max_bytes: u64) -> LogQuery {
        LogQuery {
            cursor,
            limit,
            max_bytes,
        }
    }

    #[test]
    fn tail_reads_the_newest_file() {
        let text = "a1\nb2\nc3\n";
        check_tail(
            text,
            q(None, 500, 1000),
            (vec!["a1", "b2", "c3"], 9, false, false),
        );
        check_tail(text, q(None, 2, 1000), (vec!["b2", "c3"], 9, true, false));
        check_tail(text, q(None, 500, 4), (vec!["c3"], 9, true, false));
        check_tail(
            text,
            q(Some(3), 500, 1000),
            (vec!["b2", "c3"], 9, false, false),
        );
        check_tail(text, q(Some(9), 500, 1000), (vec![], 9, false, false));
        check_tail(
            text,
            q(Some(50), 500, 1000),
            (vec!["a1", "b2", "c3"], 9, false, true),
        );
        check_tail(text, q(Some(0), 500, 4), (vec!["c3"], 9, true, false));
    }

    #[test]
    fn tail_without_logs_is_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        let v = tail_logs(&dir.path().join("missing"), &q(None, 10, 10)).expect("tail");
        assert_eq!(v["lines"], json!([]));
        assert_eq!(v["file"], Value::Null);
    }

    #[test]
    fn health_is_written_in_the_wire_order() {
        let health = Health {
            ok: true,
            reload: json!({"mode": "hybrid"}),
            ts: 7,
            duration_ms: 0,
            profile: "main",
            surfaces: Surfaces {
                gateway: GatewaySurface {
                    bind: IpAddr::from([127, 0, 0, 1]),
                    port: 18789,
                    listening: true,
                },
                browser_control: BrowserSurface {
                    enabled: true,
                    port: 18791,
                    listening: false,
                    cdp_port_range: PortRange {
                        start: 18800,
                        end: 18899,
                    },
                },
                canvas: CanvasSurface {
                    enabled: false,
                    port: 18793,
                    listening: false,
                    root: Cow::Borrowed("/w/canvas \"x\""),
                },
            },
            channels: EmptyObject,
            channel_order: [],
            channel_labels: EmptyObject,
            assistant: None,
        };
        let expected = json!({
            "ok": true,
            "reload": {"mode": "hybrid"},
            "ts": 7,
            "durationMs": 0,
            "profile": "main",
            "surfaces": {
                "gateway": {"bind": "127.0.0.1", "port": 18789, "listening": true},
                "browserControl": {
                    "enabled": true, "port": 18791, "listening": false,
                    "cdpPortRange": {"start": 18800, "end": 18899},
                },
                "canvas": {"enabled": false, "port": 18793, "listening": false, "root": "/w/canvas \"x\""},
            },
            "channels": {},
            "channelOrder": [],
            "channelLabels": {},
        });
        // Same text, not only the same value: the order is part of the shape.
        assert_eq!(
            serde_json::to_string(&Payload::Health(health)).expect("encode"),
            expected.to_string()
        );
    }

    #[test]
    fn redacted_patch_values_are_dropped() {
        let mut p = json!({"gateway": {"auth": {"token": config::REDACTED, "mode": "token"}}});
        strip_redacted(&mut p);
        assert_eq!(p, json!({"gateway": {"auth": {"mode": "token"}}}));
    }
}
