//! The assistant of one gateway, over the protocol: `chat.*`, `agent`,
//! `agent.wait`, `sessions.*`, `models.list`, `agents.list` and the events
//! the real OpenClaw clients (`openclaw agent`, `openclaw tui`, the Control
//! UI) read — `chat`, `agent`, `session.message`, `sessions.changed`,
//! `session.tool` — in the shapes of `openclaw-chat-protocol.md`.
//!
//! The agent (`omniclaw-agent`) runs the turns; this module maps requests
//! onto it and its run events onto protocol events. It lives as long as the
//! gateway's config loop: a reload reconfigures it (runs going on keep their
//! setup), a rebind does not touch it, so no edit aborts a running turn.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use omniclaw_agent::agent::{Agent, Setup, Submitted, BASE_PROMPT};
use omniclaw_agent::clock::{local_day, Clock, Millis, SystemClock};
use omniclaw_agent::message::{Message, StopReason};
use omniclaw_agent::provider::{self, KeySource};
use omniclaw_agent::run::{RunEvent, RunRequest};
use omniclaw_agent::session::{
    Begin, RunOutcome, RunStatus, SessionKey, SessionStore, StoredMessage,
};
use omniclaw_agent::store::{ListQuery, ResetReason, SessionInfo, SqliteStore, StoreSettings};
use omniclaw_agent::tools::{ToolRegistry, ToolSettings};
use omniclaw_core::config::{AgentConfig, Config, SecretRef};
use serde_json::{json, Map, Value};
use tokio::sync::watch;

use crate::hub::Hub;
use crate::protocol::ErrorShape;
use crate::spec::GatewaySpec;

/// The one agent id a gateway runs.
pub const AGENT_ID: &str = "main";
/// Chat deltas after the first go out at most this often (OpenClaw's
/// `LIVE_TEXT_PACING_MS`); text is never lost, only batched.
const PACING: Duration = Duration::from_millis(75);
/// Runs ended this long ago are forgotten by the live table (the store
/// still answers for them).
const KEEP_ENDED: Duration = Duration::from_secs(300);
/// `chat.history`'s default and largest page.
const HISTORY_DEFAULT: usize = 200;
const HISTORY_MAX: usize = 1000;

/// Reads a secret of the profile the gateway runs (a provider's API key):
/// the caller knows the secret store and the environment snapshot.
pub trait SecretResolver: Send + Sync {
    /// The value `secret` at config `path` refers to; `None` when unset.
    fn resolve(&self, path: &str, secret: &SecretRef) -> Result<Option<String>, String>;
}

/// Provider keys, read at each call (a rotated key applies at once).
struct Keys {
    resolver: Arc<dyn SecretResolver>,
    refs: BTreeMap<String, SecretRef>,
}

impl KeySource for Keys {
    fn api_key(&self, provider: &str) -> Result<Option<String>, String> {
        match self.refs.get(provider) {
            Some(r) => self
                .resolver
                .resolve(&format!("models.providers.{provider}.apiKey"), r),
            None => Ok(None),
        }
    }
}

/// What the assistant is built from at each applied config.
pub struct Parts {
    pub config: AgentConfig,
    pub setup: Setup,
}

/// The tools and the prompt of a rescue bot's assistant.
pub struct RescueTools {
    pub tools: Vec<Arc<dyn omniclaw_agent::tool::Tool>>,
    pub prompt: String,
}

/// Builds the agent's setup from a validated config and the gateway's spec.
pub fn parts(
    config: &Config,
    spec: &GatewaySpec,
    resolver: Arc<dyn SecretResolver>,
    approver: Option<Arc<dyn omniclaw_agent::tools::Approver>>,
    rescue: Option<RescueTools>,
) -> Result<Parts, String> {
    let agent = config.agent();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let keys = Arc::new(Keys {
        resolver: resolver.clone(),
        refs: agent
            .providers
            .iter()
            .filter_map(|p| Some((p.id.clone(), p.api_key.clone()?)))
            .collect(),
    });
    let headers = |p: &omniclaw_core::config::ProviderConfig| -> Vec<(String, String)> {
        p.headers
            .iter()
            .filter_map(|(name, r)| {
                let path = format!("models.providers.{}.headers.{name}", p.id);
                Some((name.clone(), resolver.resolve(&path, r).ok()??))
            })
            .collect()
    };
    let providers =
        provider::build_all(&agent.providers, keys, clock, headers).map_err(|e| e.to_string())?;
    let mut tool_settings = ToolSettings::from_config(&agent.tools);
    tool_settings.exec.approver = approver;
    let registry = ToolRegistry::build(tool_settings).map_err(|e| e.to_string())?;
    let child_env: BTreeMap<OsString, OsString> = spec
        .child_env
        .iter()
        .map(|(k, v)| (OsString::from(k), OsString::from(v)))
        .collect();
    // A rescue bot's assistant gets the rescue operations and nothing else:
    // no workspace files, no fetch, no exec.
    let (tools, base_prompt) = match rescue {
        Some(r) => (r.tools, r.prompt),
        None => (registry.tools(), BASE_PROMPT.to_string()),
    };
    Ok(Parts {
        setup: Setup {
            config: agent.clone(),
            providers,
            tools,
            workspace: spec.workspace.clone(),
            child_env,
            base_prompt,
        },
        config: agent,
    })
}

/// A turn that came from a channel: whose it is, and where its run
/// events go besides the protocol's clients.
struct ChannelTurn {
    owner: bool,
    tap: tokio::sync::mpsc::UnboundedSender<RunEvent>,
}

/// What became of a channel's turn.
pub enum ChannelAccepted {
    /// Queued; its run events follow (the last is `RunEvent::Ended`).
    Started(tokio::sync::mpsc::UnboundedReceiver<RunEvent>),
    /// A run with this id is going on.
    InFlight,
    /// A run with this id ended before.
    Done(RunOutcome),
}

/// A run the gateway has accepted and not yet forgotten.
struct LiveRun {
    key: SessionKey,
    started_at: Millis,
    message: String,
    done: watch::Receiver<Option<Ended>>,
    ended_at: Option<Instant>,
}

/// The live table: runs by id, and the ended ones in the order they
/// ended, so forgetting them costs nothing per accepted turn (a scan of the
/// whole table on every `chat.send` showed in the turn's profile).
#[derive(Default)]
struct Runs {
    by_id: HashMap<String, LiveRun>,
    ended: std::collections::VecDeque<(Instant, String)>,
}

impl Runs {
    /// Marks `run_id` ended now.
    fn end(&mut self, run_id: &str) {
        if let Some(r) = self.by_id.get_mut(run_id) {
            let now = Instant::now();
            r.ended_at = Some(now);
            self.ended.push_back((now, run_id.to_string()));
        }
    }

    /// Forgets the runs that ended `KEEP_ENDED` ago or more.
    fn forget_old(&mut self, now: Instant) {
        while let Some((at, _)) = self.ended.front() {
            if now.duration_since(*at) < KEEP_ENDED {
                break;
            }
            if let Some((_, id)) = self.ended.pop_front() {
                self.by_id.remove(&id);
            }
        }
    }
}

impl std::ops::Deref for Runs {
    type Target = HashMap<String, LiveRun>;
    fn deref(&self) -> &Self::Target {
        &self.by_id
    }
}

/// How a run ended, as `agent` and `agent.wait` report it.
#[derive(Debug, Clone)]
struct Ended {
    outcome: RunOutcome,
}

/// The assistant of one gateway.
pub struct Assistant {
    agent: Agent,
    store: Arc<SqliteStore>,
    hub: Arc<Hub>,
    clock: Arc<dyn Clock>,
    config: RwLock<AgentConfig>,
    runs: Mutex<Runs>,
    /// `summary()` of a moment ago: `health` is polled often, the day's
    /// spend changes only when a run ends.
    summary: Mutex<Option<(Instant, Value)>>,
    /// Prunes transcripts past `session.retentionDays` every hour.
    pruner: tokio::task::JoinHandle<()>,
}

impl Drop for Assistant {
    fn drop(&mut self) {
        self.pruner.abort();
    }
}

/// How often old transcripts are looked for (the store prunes at open too).
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// How long a computed [`Assistant::summary`] is reused.
const SUMMARY_TTL: Duration = Duration::from_secs(1);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `<state dir>/agent/sessions.sqlite`.
pub fn store_path(state_dir: &std::path::Path) -> PathBuf {
    state_dir.join("agent").join("sessions.sqlite")
}

fn store_error(e: impl std::fmt::Display) -> ErrorShape {
    ErrorShape::unavailable(e.to_string())
}

impl Assistant {
    /// Opens the session store in `state_dir` and starts the agent.
    pub(crate) fn open(
        state_dir: &std::path::Path,
        parts: Parts,
        hub: Arc<Hub>,
    ) -> Result<Assistant, String> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let settings = StoreSettings {
            retention_days: parts
                .config
                .retention_days
                .and_then(|d| u32::try_from(d).ok()),
        };
        let store = Arc::new(
            SqliteStore::open(store_path(state_dir), settings, clock.clone())
                .map_err(|e| e.to_string())?,
        );
        let agent = Agent::new(
            parts.setup,
            store.clone() as Arc<dyn SessionStore>,
            clock.clone(),
        );
        let pruned = store.clone();
        let pruner = tokio::spawn(async move {
            let mut every = tokio::time::interval(PRUNE_EVERY);
            every.tick().await;
            loop {
                every.tick().await;
                let store = pruned.clone();
                match tokio::task::spawn_blocking(move || store.prune()).await {
                    Ok(Ok(0)) => {}
                    Ok(Ok(n)) => tracing::info!(
                        sessions = n,
                        "old transcripts pruned (session.retentionDays)"
                    ),
                    Ok(Err(e)) => tracing::warn!(error = %e, "pruning old transcripts failed"),
                    Err(_) => {}
                }
            }
        });
        Ok(Assistant {
            agent,
            store,
            hub,
            clock,
            config: RwLock::new(parts.config),
            runs: Mutex::default(),
            summary: Mutex::new(None),
            pruner,
        })
    }

    /// Runs started from now on use the new config; running ones finish
    /// with theirs.
    pub fn reconfigure(&self, parts: Parts) {
        self.store.set_settings(StoreSettings {
            retention_days: parts
                .config
                .retention_days
                .and_then(|d| u32::try_from(d).ok()),
        });
        self.agent.reconfigure(parts.setup);
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = parts.config;
        // The `health` sent for this reload must carry the new cap.
        self.invalidate_summary();
    }

    /// Aborts every queued or running turn (the gateway stops).
    pub fn abort_all(&self) {
        let keys: Vec<SessionKey> = lock(&self.runs)
            .values()
            .filter(|r| r.ended_at.is_none())
            .map(|r| r.key.clone())
            .collect();
        for key in keys {
            self.agent.abort(&key, None);
        }
    }

    fn config(&self) -> AgentConfig {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// What `health` and `status` say of the assistant: its model, the
    /// runs going on, today's tokens and spend against the cap.
    pub fn summary(&self) -> Value {
        let mut cached = lock(&self.summary);
        if let Some((at, v)) = cached.as_ref() {
            if at.elapsed() < SUMMARY_TTL {
                return v.clone();
            }
        }
        let config = self.config();
        let running = lock(&self.runs)
            .values()
            .filter(|r| r.ended_at.is_none())
            .count();
        let v = json!({
            "model": config.model_chain.first().map(ToString::to_string),
            "fallbacks": config.model_chain.iter().skip(1).map(ToString::to_string).collect::<Vec<_>>(),
            "activeRuns": running,
            "today": self.spend_today(),
        });
        *cached = Some((Instant::now(), v.clone()));
        v
    }

    /// Forgets the cached summary (a run ended: its spend counts now).
    fn invalidate_summary(&self) {
        *lock(&self.summary) = None;
    }

    /// Today's tokens and spend (since local midnight) against the cap.
    pub fn spend_today(&self) -> Value {
        let now = self.clock.now_ms();
        let (start, next) = local_day(self.clock.as_ref(), now);
        let cap = self.config().budget.daily_usd;
        match self.store.spend_since(start) {
            Ok(spend) => json!({
                "tokens": spend.tokens,
                "usd": round_usd(spend.usd),
                "dailyUsd": cap,
                "resetsAtMs": next,
                "byProvider": spend.by_provider.iter().map(|(k, v)| (k.clone(), json!(round_usd(*v)))).collect::<Map<_, _>>(),
            }),
            Err(e) => json!({"error": e.to_string(), "dailyUsd": cap}),
        }
    }

    /// The first model of the chain, as `provider/model`.
    fn default_model(&self) -> Option<(String, String)> {
        self.config()
            .model_chain
            .first()
            .map(|m| (m.provider.clone(), m.model.clone()))
    }

    fn session_defaults(&self) -> Value {
        let config = self.config();
        let chain = config.model_chain.first();
        let window = chain
            .and_then(|m| config.provider(&m.provider)?.model(&m.model))
            .and_then(|m| m.context_window);
        json!({
            "modelProvider": chain.map(|m| m.provider.clone()),
            "model": chain.map(|m| m.model.clone()),
            "contextTokens": window,
            "contextWindow": window,
            "thinkingLevels": ["off"],
            "thinkingOptions": ["off"],
            "thinkingDefault": "off",
        })
    }

    /// `hello-ok.snapshot.sessionDefaults`.
    pub fn hello_defaults(&self) -> Value {
        json!({
            "defaultAgentId": AGENT_ID,
            "modelConfigured": !self.config().model_chain.is_empty(),
            "mainKey": "main",
            "mainSessionKey": SessionKey::main(AGENT_ID).as_str(),
            "scope": "per-sender",
        })
    }

    /// A session key a client sent, canonical (`main` → `agent:main:main`).
    pub fn canonical_key(
        &self,
        raw: Option<&Value>,
        method: &str,
    ) -> Result<SessionKey, ErrorShape> {
        self.key(raw, method)
    }

    fn key(&self, raw: Option<&Value>, method: &str) -> Result<SessionKey, ErrorShape> {
        let raw = match raw {
            None | Some(Value::Null) => "main",
            Some(Value::String(s)) => s.as_str(),
            Some(_) => {
                return Err(ErrorShape::invalid_request(format!(
                    "invalid {method} params: at /sessionKey: must be string"
                )))
            }
        };
        SessionKey::parse(raw, AGENT_ID)
            .map_err(|e| ErrorShape::invalid_request(format!("invalid {method} params: {e}")))
    }

    fn row(&self, info: &SessionInfo) -> Value {
        let running = self.active_runs(&info.key);
        let (provider, model) = self.default_model().unzip();
        json!({
            "key": info.key.as_str(),
            "sessionId": info.session_id,
            "kind": "direct",
            "label": info.label,
            "displayName": info.label.clone().unwrap_or_else(|| info.key.as_str().to_string()),
            "lastMessagePreview": info.last_message_preview,
            "chatType": "direct",
            "createdAt": info.created_at,
            "updatedAt": info.updated_at,
            "lastInteractionAt": info.updated_at,
            "archived": false,
            "pinned": false,
            "unread": false,
            "thinkingLevel": "off",
            "verboseLevel": "off",
            "modelProvider": provider,
            "model": model,
            "inputTokens": info.tokens_in,
            "outputTokens": info.tokens_out,
            "totalTokens": info.tokens_in + info.tokens_out,
            "spendUsd": round_usd(info.spend_usd),
            "messageCount": info.message_count,
            "status": if running.is_empty() { info.last_run_status.map_or("idle", RunStatus::as_str) } else { "running" },
            "hasActiveRun": !running.is_empty(),
            "activeRunIds": running,
            "abortedLastRun": matches!(info.last_run_status, Some(RunStatus::Aborted | RunStatus::Interrupted)),
            "interrupted": info.interrupted,
            "lastRunId": info.last_run_id,
            "visibility": "shared",
        })
    }

    /// A session's row, or a synthesized one for a key never used.
    fn row_of(&self, key: &SessionKey) -> Result<Value, ErrorShape> {
        Ok(match self.store.get(key).map_err(store_error)? {
            Some(info) => self.row(&info),
            None => json!({
                "key": key.as_str(), "kind": "direct", "chatType": "direct",
                "hasActiveRun": false, "status": "idle", "visibility": "shared",
                "messageCount": 0, "inputTokens": 0, "outputTokens": 0, "totalTokens": 0,
            }),
        })
    }

    fn active_runs(&self, key: &SessionKey) -> Vec<String> {
        let mut ids: Vec<String> = lock(&self.runs)
            .iter()
            .filter(|(_, r)| &r.key == key && r.ended_at.is_none())
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    }

    fn sessions_changed(&self, key: &SessionKey, extra: Value) {
        if !self.hub.has_session_subscribers() {
            return;
        }
        let mut payload = json!({
            "sessionKey": key.as_str(),
            "agentId": AGENT_ID,
            "ts": now_ms(),
        });
        merge(&mut payload, extra);
        if let Ok(row) = self.row_of(key) {
            payload["session"] = row;
        }
        self.hub
            .to_session_subscribers("sessions.changed", &payload);
    }

    // ---- chat.send / agent ----------------------------------------------

    /// Accepts a turn: `Ok(Accepted)` once it is queued; a repeated id
    /// answers for the run it names.
    fn accept(
        self: &Arc<Self>,
        key: SessionKey,
        run_id: &str,
        message: &str,
        timeout: Option<Duration>,
        caller: Option<u64>,
        channel: Option<ChannelTurn>,
    ) -> Result<Accepted, ErrorShape> {
        let (owner, tap) = match channel {
            Some(c) => (c.owner, Some(c.tap)),
            None => (true, None),
        };
        if let Some(live) = lock(&self.runs).get(run_id) {
            if live.message != message || live.key != key {
                return Err(conflict());
            }
            return Ok(match live.done.borrow().clone() {
                None => Accepted::InFlight,
                Some(ended) => Accepted::Done(ended.outcome),
            });
        }
        if let Some(record) = self.store.run(run_id).map_err(store_error)? {
            if record.input != message || record.key != key {
                return Err(conflict());
            }
            return Ok(match record.outcome {
                Some(outcome) => Accepted::Done(outcome),
                None => Accepted::InFlight,
            });
        }
        if self.config().model_chain.is_empty() {
            return Err(ErrorShape::unavailable(
                "this gateway has no model: set agents.defaults.model and a provider under models.providers (`omniclaw onboard` sets one up)",
            ));
        }
        let request = RunRequest {
            session_key: key.clone(),
            run_id: run_id.to_string(),
            message: message.to_string(),
            sender_is_owner: owner,
            timeout,
        };
        let handle = match self.agent.submit(request) {
            Ok(Submitted::Queued(h)) => h,
            Ok(Submitted::InFlight) => return Ok(Accepted::InFlight),
            Err(e) => return Err(ErrorShape::invalid_request(e.to_string())),
        };
        let (tx, rx) = watch::channel(None);
        {
            let mut runs = lock(&self.runs);
            runs.forget_old(Instant::now());
            runs.by_id.insert(
                run_id.to_string(),
                LiveRun {
                    key: key.clone(),
                    started_at: self.clock.now_ms(),
                    message: message.to_string(),
                    done: rx.clone(),
                    ended_at: None,
                },
            );
        }
        if let Some(conn) = caller {
            self.hub.join_run(conn, run_id);
        }
        let me = self.clone();
        let run_id = run_id.to_string();
        tokio::spawn(async move {
            let mut events = handle.events;
            let mut emit = Emitter::new(&me, &run_id, key);
            let mut flush_at: Option<tokio::time::Instant> = None;
            loop {
                let ev = tokio::select! {
                    ev = events.recv() => ev,
                    () = sleep_until(flush_at) => {
                        flush_at = None;
                        emit.flush_text();
                        continue;
                    }
                };
                let Some(ev) = ev else { break };
                if let Some(tap) = &tap {
                    let _ = tap.send(ev.clone());
                }
                if let Some(ended) = emit.on(ev) {
                    let _ = tx.send(Some(ended));
                    break;
                }
                flush_at = emit
                    .pending_since
                    .map(|at| tokio::time::Instant::from_std(at + PACING));
            }
            if tx.borrow().is_none() {
                // The run's task ended without its last event (it panicked):
                // say so rather than leave clients waiting.
                let outcome = RunOutcome {
                    status: RunStatus::Error,
                    text: emit.text.clone(),
                    usage: Default::default(),
                    provider: None,
                    model: None,
                    error: Some("the run stopped unexpectedly".into()),
                    started_at: emit.started_at,
                    ended_at: me.clock.now_ms(),
                };
                let ended = emit.ended(outcome, StopReason::Error);
                let _ = tx.send(Some(ended));
            }
            me.hub.end_run(&run_id);
            lock(&me.runs).end(&run_id);
            me.invalidate_summary();
        });
        Ok(Accepted::Started(rx))
    }

    /// A channel's turn (a Telegram message): accepted like `chat.send`,
    /// its run events also handed to the channel, which replies with them.
    pub fn channel_turn(
        self: &Arc<Self>,
        key: SessionKey,
        run_id: &str,
        message: &str,
        owner: bool,
    ) -> Result<ChannelAccepted, ErrorShape> {
        let (tap, events) = tokio::sync::mpsc::unbounded_channel();
        Ok(
            match self.accept(
                key,
                run_id,
                message,
                None,
                None,
                Some(ChannelTurn { owner, tap }),
            )? {
                Accepted::Started(_) => ChannelAccepted::Started(events),
                Accepted::InFlight => ChannelAccepted::InFlight,
                Accepted::Done(outcome) => ChannelAccepted::Done(outcome),
            },
        )
    }

    /// How `run_id` ended: `None` while it runs or when no run has that id.
    pub fn run_outcome(&self, run_id: &str) -> Result<Option<RunOutcome>, ErrorShape> {
        if let Some(live) = lock(&self.runs).get(run_id) {
            return Ok(live.done.borrow().clone().map(|e| e.outcome));
        }
        Ok(self
            .store
            .run(run_id)
            .map_err(store_error)?
            .and_then(|r| r.outcome))
    }

    /// Whether a model is configured (a channel answers free text with a
    /// hint otherwise).
    pub fn has_model(&self) -> bool {
        !self.config().model_chain.is_empty()
    }

    /// Aborts the queued and running turns of `key` (a channel's `/stop`).
    pub fn abort_session(&self, key: &SessionKey) -> Vec<String> {
        self.agent.abort(key, None)
    }

    /// Starts `key` afresh (a channel's `/new` or `/reset`).
    pub fn reset_session(&self, key: &SessionKey, new: bool) -> Result<(), ErrorShape> {
        let reason = if new {
            ResetReason::New
        } else {
            ResetReason::Reset
        };
        self.reset(key, reason).map(drop)
    }

    /// `chat.send`.
    pub fn chat_send(self: &Arc<Self>, conn: u64, params: &Value) -> Result<Value, ErrorShape> {
        check_params(
            "chat.send",
            params,
            CHAT_SEND_KEYS,
            &["sessionKey", "message", "idempotencyKey"],
        )?;
        let key = self.key(params.get("sessionKey"), "chat.send")?;
        let run_id = non_empty(params, "idempotencyKey", "chat.send")?;
        let message = sanitize(
            params.get("message").and_then(Value::as_str).unwrap_or(""),
            "chat.send",
        )?;
        if message.trim().is_empty() {
            return Err(ErrorShape::invalid_request(
                "message or attachment required",
            ));
        }
        let command = message.trim().to_ascii_lowercase();
        if command == "/stop" {
            let ids = self.agent.abort(&key, None);
            return Ok(json!({"ok": true, "aborted": !ids.is_empty(), "runIds": ids}));
        }
        if command == "/new" || command == "/reset" {
            let reason = if command == "/new" {
                ResetReason::New
            } else {
                ResetReason::Reset
            };
            self.reset(&key, reason)?;
            return Ok(json!({"runId": run_id, "status": "ok"}));
        }
        let timeout = params
            .get("timeoutMs")
            .and_then(Value::as_u64)
            .map(Duration::from_millis);
        Ok(
            match self.accept(key, &run_id, &message, timeout, Some(conn), None)? {
                Accepted::Started(_) => json!({"runId": run_id, "status": "started"}),
                Accepted::InFlight => json!({"runId": run_id, "status": "in_flight"}),
                Accepted::Done(outcome) => replay(&run_id, &outcome),
            },
        )
    }

    /// `agent`: the accepted answer now; the final one later on the same id
    /// through the hub.
    pub fn agent(
        self: &Arc<Self>,
        conn: u64,
        id: &Value,
        params: &Value,
    ) -> Result<Value, ErrorShape> {
        check_params("agent", params, AGENT_KEYS, &["message", "idempotencyKey"])?;
        if let Some(agent) = params.get("agentId").and_then(Value::as_str) {
            if !agent.eq_ignore_ascii_case(AGENT_ID) {
                return Err(ErrorShape::invalid_request(format!(
                    "invalid agent params: unknown agent id \"{agent}\""
                )));
            }
        }
        let key_param = params.get("sessionKey").or_else(|| {
            params
                .get("to")
                .filter(|t| t.as_str().is_some_and(|s| s.starts_with("agent:")))
        });
        let key = self.key(key_param, "agent")?;
        let run_id = non_empty(params, "idempotencyKey", "agent")?;
        let message = sanitize(
            params.get("message").and_then(Value::as_str).unwrap_or(""),
            "agent",
        )?;
        let command = message.trim().to_ascii_lowercase();
        if command == "/new" || command == "/reset" {
            let reason = if command == "/new" {
                ResetReason::New
            } else {
                ResetReason::Reset
            };
            let info = self.reset(&key, reason)?;
            let done = json!({
                "runId": run_id, "status": "ok", "summary": "completed",
                "result": {"payloads": [{"text": format!("Session {} reset.", key)}],
                           "meta": {"durationMs": 0, "agentMeta": {"sessionId": info.session_id}}},
            });
            self.hub.reply(conn, id.clone(), Ok(done));
            return Ok(
                json!({"runId": run_id, "sessionKey": key.as_str(), "agentId": AGENT_ID, "status": "accepted", "acceptedAt": now_ms()}),
            );
        }
        let timeout = params
            .get("timeout")
            .and_then(Value::as_u64)
            .map(Duration::from_secs);
        let accepted = json!({"runId": run_id, "sessionKey": key.as_str(), "agentId": AGENT_ID, "status": "accepted", "acceptedAt": now_ms()});
        match self.accept(key, &run_id, &message, timeout, Some(conn), None)? {
            Accepted::Started(mut done) => {
                let me = self.clone();
                let id = id.clone();
                tokio::spawn(async move {
                    let ended = loop {
                        if let Some(e) = done.borrow_and_update().clone() {
                            break Some(e);
                        }
                        if done.changed().await.is_err() {
                            break done.borrow().clone();
                        }
                    };
                    if let Some(ended) = ended {
                        let session_id = me.session_id_of(&run_id);
                        me.hub
                            .reply(conn, id, agent_final(&run_id, &ended.outcome, session_id));
                    }
                });
                Ok(accepted)
            }
            Accepted::InFlight => Ok(json!({"runId": run_id, "status": "in_flight"})),
            Accepted::Done(outcome) => {
                let session_id = self.session_id_of(&run_id);
                self.hub
                    .reply(conn, id.clone(), agent_final(&run_id, &outcome, session_id));
                Ok(accepted)
            }
        }
    }

    /// The session id of the session `run_id` ran in.
    fn session_id_of(&self, run_id: &str) -> Option<String> {
        self.store.run(run_id).ok().flatten().map(|r| r.session_id)
    }

    /// `agent.wait`.
    pub async fn agent_wait(&self, params: &Value) -> Result<Value, ErrorShape> {
        check_params("agent.wait", params, &["runId", "timeoutMs"], &["runId"])?;
        let run_id = non_empty(params, "runId", "agent.wait")?;
        let wait = Duration::from_millis(
            params
                .get("timeoutMs")
                .and_then(Value::as_u64)
                .unwrap_or(30_000),
        );
        let live = lock(&self.runs)
            .get(&run_id)
            .map(|r| (r.done.clone(), r.started_at));
        if let Some((mut done, started_at)) = live {
            let waited = tokio::time::timeout(wait, async {
                loop {
                    if let Some(e) = done.borrow_and_update().clone() {
                        return Some(e);
                    }
                    if done.changed().await.is_err() {
                        return done.borrow().clone();
                    }
                }
            })
            .await;
            return Ok(match waited {
                Ok(Some(ended)) => wait_answer(&run_id, &ended.outcome),
                _ => json!({"runId": run_id, "status": "timeout", "startedAt": started_at}),
            });
        }
        match self.store.run(&run_id).map_err(store_error)? {
            Some(record) => Ok(match record.outcome {
                Some(outcome) => wait_answer(&run_id, &outcome),
                None => {
                    json!({"runId": run_id, "status": "pending", "startedAt": record.started_at})
                }
            }),
            None => Err(ErrorShape::invalid_request("agent run was not found")),
        }
    }

    /// `chat.abort`.
    pub fn chat_abort(&self, params: &Value) -> Result<Value, ErrorShape> {
        check_params(
            "chat.abort",
            params,
            &["sessionKey", "agentId", "runId", "preserveSideRuns"],
            &["sessionKey"],
        )?;
        let key = self.key(params.get("sessionKey"), "chat.abort")?;
        let run_id = params.get("runId").and_then(Value::as_str);
        if let Some(id) = run_id {
            if let Some(live) = lock(&self.runs).get(id) {
                if live.key != key {
                    return Err(ErrorShape::invalid_request(
                        "runId does not match sessionKey",
                    ));
                }
            }
        }
        let ids = self.agent.abort(&key, run_id);
        Ok(json!({"ok": true, "aborted": !ids.is_empty(), "runIds": ids}))
    }

    // ---- history and sessions --------------------------------------------

    /// `chat.history`.
    pub fn chat_history(&self, params: &Value) -> Result<Value, ErrorShape> {
        check_params("chat.history", params, CHAT_HISTORY_KEYS, &["sessionKey"])?;
        let key = self.key(params.get("sessionKey"), "chat.history")?;
        let limit = bounded(
            params,
            "limit",
            HISTORY_DEFAULT,
            HISTORY_MAX,
            "chat.history",
        )?;
        let offset = bounded(params, "offset", 0, usize::MAX, "chat.history")?;
        let page = self
            .store
            .history_page(&key, limit, offset)
            .map_err(store_error)?;
        let messages: Vec<Value> = page.messages.iter().map(display).collect();
        let mut out = json!({
            "sessionKey": key.as_str(),
            "messages": messages,
            "pendingInputs": {"items": [], "total": 0},
            "defaults": self.session_defaults(),
            "sessionInfo": self.row_of(&key)?,
            "thinkingLevel": "off",
            "verboseLevel": "off",
            "totalMessages": page.total,
            "offset": page.offset,
            "hasMore": page.has_more,
        });
        if let Some(id) = page.session_id {
            out["sessionId"] = json!(id);
        }
        if let Some(run) = self.active_runs(&key).first() {
            out["inFlightRun"] = json!({"runId": run});
        }
        Ok(out)
    }

    /// `sessions.list` (also the list of a non-empty `sessions.subscribe`).
    pub fn sessions_list(&self, params: &Value) -> Result<Value, ErrorShape> {
        let limit = bounded(params, "limit", 100, 10_000, "sessions.list")?;
        let offset = bounded(params, "offset", 0, usize::MAX, "sessions.list")?;
        let page = self
            .store
            .list(&ListQuery {
                limit,
                offset,
                agent_id: None,
            })
            .map_err(store_error)?;
        let rows: Vec<Value> = page.sessions.iter().map(|s| self.row(s)).collect();
        let next = offset + rows.len();
        let has_more = (next as u64) < page.total;
        Ok(json!({
            "ts": now_ms(),
            "path": self.store.path(),
            "count": rows.len(),
            "totalCount": page.total,
            "limitApplied": limit,
            "offset": offset,
            "nextOffset": if has_more { json!(next) } else { Value::Null },
            "hasMore": has_more,
            "owners": [],
            "defaults": self.session_defaults(),
            "sessions": rows,
        }))
    }

    /// `sessions.describe`.
    pub fn sessions_describe(&self, params: &Value) -> Result<Value, ErrorShape> {
        let key = self.key(params.get("key"), "sessions.describe")?;
        Ok(match self.store.get(&key).map_err(store_error)? {
            Some(info) => json!({"session": self.row(&info)}),
            None => json!({"session": null}),
        })
    }

    /// `sessions.create`.
    pub fn sessions_create(
        self: &Arc<Self>,
        conn: u64,
        params: &Value,
    ) -> Result<Value, ErrorShape> {
        let key = match params.get("key") {
            Some(k) => self.key(Some(k), "sessions.create")?,
            None => SessionKey::parse(&format!("dashboard:{}", uuid::Uuid::new_v4()), AGENT_ID)
                .map_err(ErrorShape::invalid_request)?,
        };
        let label = params.get("label").and_then(Value::as_str);
        let existed = self.store.get(&key).map_err(store_error)?.is_some();
        let info = if existed {
            self.store
                .reset(&key, ResetReason::New)
                .map_err(store_error)?
        } else {
            self.store.create(&key, label).map_err(store_error)?
        };
        self.sessions_changed(
            &key,
            json!({"reason": if existed { "new" } else { "create" }}),
        );
        let mut out = json!({"ok": true, "key": key.as_str(), "sessionId": info.session_id, "entry": self.row(&info), "runStarted": false});
        if let Some(message) = params
            .get("message")
            .and_then(Value::as_str)
            .filter(|m| !m.trim().is_empty())
        {
            let run_id = uuid::Uuid::new_v4().to_string();
            let ack = self.chat_send(
                conn,
                &json!({"sessionKey": key.as_str(), "message": message, "idempotencyKey": run_id}),
            )?;
            merge(&mut out, ack);
            out["runStarted"] = json!(true);
        }
        Ok(out)
    }

    /// `sessions.send`: `chat.send` on a session that must exist (an
    /// agent's main session is made on the way).
    pub fn sessions_send(self: &Arc<Self>, conn: u64, params: &Value) -> Result<Value, ErrorShape> {
        let key = self.key(params.get("key"), "sessions.send")?;
        if !key.is_main() && self.store.get(&key).map_err(store_error)?.is_none() {
            return Err(ErrorShape::invalid_request(format!(
                "session not found: {key}"
            )));
        }
        let run_id = params
            .get("idempotencyKey")
            .and_then(Value::as_str)
            .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_string);
        let ack = self.chat_send(
            conn,
            &json!({"sessionKey": key.as_str(), "message": params.get("message").cloned().unwrap_or(Value::Null), "idempotencyKey": run_id}),
        )?;
        self.sessions_changed(&key, json!({"reason": "send"}));
        Ok(ack)
    }

    /// `sessions.patch`: the label (other settings have nothing to apply here).
    pub fn sessions_patch(&self, params: &Value) -> Result<Value, ErrorShape> {
        let key = self.key(params.get("key"), "sessions.patch")?;
        if let Some(label) = params.get("label") {
            let label = label.as_str();
            if self.store.get(&key).map_err(store_error)?.is_none() {
                self.store.create(&key, label).map_err(store_error)?;
            } else {
                self.store.set_label(&key, label).map_err(store_error)?;
            }
        }
        self.sessions_changed(&key, json!({"reason": "patch"}));
        let (provider, model) = self.default_model().unzip();
        Ok(json!({
            "ok": true,
            "path": self.store.path(),
            "key": key.as_str(),
            "entry": self.row_of(&key)?,
            "resolved": {"modelProvider": provider, "model": model, "thinkingLevel": "off"},
        }))
    }

    fn reset(&self, key: &SessionKey, reason: ResetReason) -> Result<SessionInfo, ErrorShape> {
        self.agent.abort(key, None);
        let info = if self.store.get(key).map_err(store_error)?.is_some() {
            self.store.reset(key, reason).map_err(store_error)?
        } else {
            self.store.create(key, None).map_err(store_error)?
        };
        self.sessions_changed(key, json!({"reason": reason.as_str()}));
        Ok(info)
    }

    /// `sessions.reset`: a new start, same session id.
    pub fn sessions_reset(&self, params: &Value) -> Result<Value, ErrorShape> {
        let key = self.key(params.get("key"), "sessions.reset")?;
        let reason = match params.get("reason").and_then(Value::as_str) {
            Some("new") => ResetReason::New,
            _ => ResetReason::Reset,
        };
        let info = self.reset(&key, reason)?;
        Ok(json!({"ok": true, "key": key.as_str(), "entry": self.row(&info), "resolved": {}}))
    }

    /// `sessions.delete`.
    pub fn sessions_delete(&self, params: &Value) -> Result<Value, ErrorShape> {
        let key = self.key(params.get("key"), "sessions.delete")?;
        self.agent.abort(&key, None);
        let session_id = self
            .store
            .get(&key)
            .map_err(store_error)?
            .map(|i| i.session_id);
        let deleted = self.store.delete(&key).map_err(store_error)?;
        if deleted {
            self.hub.to_session_subscribers(
                "sessions.changed",
                &json!({"sessionKey": key.as_str(), "agentId": AGENT_ID, "sessionId": session_id, "reason": "delete", "ts": now_ms()}),
            );
        }
        Ok(json!({"ok": true, "key": key.as_str(), "deleted": deleted, "archived": []}))
    }

    /// `models.list`.
    pub fn models_list(&self) -> Value {
        let config = self.config();
        let mut models = Vec::new();
        for p in &config.providers {
            for m in &p.models {
                models.push(json!({
                    "id": m.id,
                    "name": m.name,
                    "provider": p.id,
                    "contextWindow": m.context_window,
                    "available": true,
                    "supportsTools": true,
                    "input": ["text"],
                }));
            }
        }
        json!({"models": models})
    }

    /// `agents.list`.
    pub fn agents_list(&self, workspace: &std::path::Path) -> Value {
        let config = self.config();
        let mut chain = config.model_chain.iter().map(ToString::to_string);
        json!({
            "defaultId": AGENT_ID,
            "ownership": "sole",
            "mainKey": "main",
            "scope": "per-sender",
            "agents": [{
                "id": AGENT_ID,
                "name": "Main",
                "workspace": workspace,
                "model": {"primary": chain.next(), "fallbacks": chain.collect::<Vec<_>>()},
                "kind": "agent",
                "thinkingDefault": "off",
            }],
        })
    }

    /// `omniclaw sessions export`: OpenClaw's transcript JSON lines.
    pub fn export(&self, key: &SessionKey, cwd: &str) -> Result<Option<String>, ErrorShape> {
        let mut out = Vec::new();
        let found = self.store.export(key, cwd, &mut out).map_err(store_error)?;
        Ok(found.then(|| String::from_utf8_lossy(&out).into_owned()))
    }
}

/// What became of an accepted turn.
enum Accepted {
    Started(watch::Receiver<Option<Ended>>),
    InFlight,
    Done(RunOutcome),
}

fn conflict() -> ErrorShape {
    ErrorShape::invalid_request(
        "This message ID was already used for different input; send it again with a new idempotencyKey",
    )
    .with_details(json!({"reason": "chat-request-conflict"}))
}

/// The `chat.send` answer for a run that already ended.
fn replay(run_id: &str, outcome: &RunOutcome) -> Value {
    match outcome.status {
        RunStatus::Ok => json!({"runId": run_id, "status": "ok"}),
        RunStatus::Error => json!({"runId": run_id, "status": "error", "summary": outcome.error}),
        RunStatus::Aborted | RunStatus::Interrupted => json!({
            "runId": run_id, "status": "timeout", "summary": "aborted",
            "stopReason": outcome.status.as_str(), "endedAt": outcome.ended_at,
        }),
    }
}

/// The second `res` of `agent`.
fn agent_final(
    run_id: &str,
    outcome: &RunOutcome,
    session_id: Option<String>,
) -> Result<Value, ErrorShape> {
    let meta = json!({
        "durationMs": (outcome.ended_at - outcome.started_at).max(0),
        "agentMeta": {
            "sessionId": session_id,
            "provider": outcome.provider,
            "model": outcome.model,
            "usage": outcome.usage,
        },
        "aborted": matches!(outcome.status, RunStatus::Aborted | RunStatus::Interrupted),
        "error": outcome.error,
    });
    match outcome.status {
        RunStatus::Ok => Ok(json!({
            "runId": run_id, "status": "ok", "summary": "completed",
            "result": {"payloads": [{"text": outcome.text}], "meta": meta},
        })),
        RunStatus::Aborted | RunStatus::Interrupted => Ok(json!({
            "runId": run_id, "status": "timeout", "summary": "aborted",
            "stopReason": outcome.status.as_str(),
            "result": {"payloads": if outcome.text.is_empty() { json!([]) } else { json!([{"text": outcome.text}]) }, "meta": meta},
        })),
        RunStatus::Error => {
            let message = outcome
                .error
                .clone()
                .unwrap_or_else(|| "the run failed".into());
            Err(ErrorShape::unavailable(message.clone())
                .with_details(json!({"runId": run_id, "status": "error", "summary": message})))
        }
    }
}

fn wait_answer(run_id: &str, outcome: &RunOutcome) -> Value {
    let status = match outcome.status {
        RunStatus::Ok => "ok",
        RunStatus::Error => "error",
        RunStatus::Aborted | RunStatus::Interrupted => "timeout",
    };
    json!({
        "runId": run_id, "status": status,
        "startedAt": outcome.started_at, "endedAt": outcome.ended_at,
        "error": outcome.error,
        "stopReason": (outcome.status != RunStatus::Ok).then(|| outcome.status.as_str()),
    })
}

/// A stored message as clients display it: the transcript shape plus
/// `__openclaw: {id, seq}`.
fn display(m: &StoredMessage) -> Value {
    let mut v = serde_json::to_value(&m.message).unwrap_or(Value::Null);
    if let Some(obj) = v.as_object_mut() {
        obj.insert("__openclaw".into(), json!({"id": m.id, "seq": m.seq}));
    }
    v
}

/// Turns one run's events into protocol events.
struct Emitter {
    assistant: Arc<Assistant>,
    run_id: String,
    key: SessionKey,
    /// The `agent` event sequence of this run (starts at 1).
    seq: u64,
    started_at: Millis,
    stream: String,
    item: u32,
    /// The whole visible text of the run.
    text: String,
    /// Where the current assistant item's text starts in `text`.
    item_start: usize,
    /// The text clients were last sent in a `chat` delta.
    sent: String,
    /// A delta is waiting for the pacing interval since this instant.
    pending_since: Option<Instant>,
    last_sent_at: Option<Instant>,
    last_seq_for_text: u64,
    /// The session's id, once the run stored its user message.
    session_id: Option<String>,
}

impl Emitter {
    fn new(assistant: &Arc<Assistant>, run_id: &str, key: SessionKey) -> Emitter {
        Emitter {
            assistant: assistant.clone(),
            run_id: run_id.to_string(),
            key,
            seq: 0,
            started_at: assistant.clock.now_ms(),
            stream: uuid::Uuid::new_v4().simple().to_string()[..8].to_string(),
            item: 0,
            text: String::new(),
            item_start: 0,
            sent: String::new(),
            pending_since: None,
            last_sent_at: None,
            last_seq_for_text: 0,
            session_id: None,
        }
    }

    fn hub(&self) -> &Hub {
        &self.assistant.hub
    }

    /// An `agent` event of stream `stream`; returns its seq.
    fn agent_event(&mut self, stream: &str, data: Value) -> (u64, Value) {
        self.seq += 1;
        let payload = json!({
            "runId": self.run_id,
            "seq": self.seq,
            "stream": stream,
            "ts": now_ms(),
            "sessionKey": self.key.as_str(),
            "agentId": AGENT_ID,
            "data": data,
        });
        (self.seq, payload)
    }

    fn lifecycle(&mut self, data: Value) -> u64 {
        let (seq, payload) = self.agent_event("lifecycle", data);
        self.hub().to_readers("agent", &payload);
        seq
    }

    fn chat(&self, seq: u64, state: &str, extra: Value) {
        let mut payload = json!({
            "runId": self.run_id,
            "sessionKey": self.key.as_str(),
            "agentId": AGENT_ID,
            "seq": seq,
            "state": state,
        });
        merge(&mut payload, extra);
        self.hub().to_readers("chat", &payload);
    }

    fn message_value(&self) -> Value {
        json!({
            "role": "assistant",
            "content": [{"type": "text", "text": self.text}],
            "timestamp": now_ms(),
        })
    }

    /// Sends the text clients have not seen as one `chat` delta.
    fn flush_text(&mut self) {
        self.pending_since = None;
        if self.text == self.sent {
            return;
        }
        let (delta, replace) = match self.text.strip_prefix(self.sent.as_str()) {
            Some(rest) => (rest.to_string(), false),
            None => (self.text.clone(), true),
        };
        let mut extra = json!({"deltaText": delta, "message": self.message_value()});
        if replace {
            extra["replace"] = json!(true);
        }
        self.chat(self.last_seq_for_text, "delta", extra);
        self.sent = self.text.clone();
        self.last_sent_at = Some(Instant::now());
    }

    fn session_message(&self, message: &Value, seq: u64, id: &str) {
        if !self.hub().has_message_subscribers(self.key.as_str()) {
            return;
        }
        let payload = json!({
            "sessionKey": self.key.as_str(),
            "agentId": AGENT_ID,
            "message": message,
            "messageId": id,
            "messageSeq": seq,
            "sessionId": self.session_id,
            "runId": self.run_id,
            "senderIsOwner": true,
            "updatedAt": now_ms(),
            "kind": "direct",
        });
        self.hub()
            .to_message_subscribers(self.key.as_str(), &payload);
    }

    /// Handles one event; `Some` once the run ended.
    fn on(&mut self, ev: RunEvent) -> Option<Ended> {
        match ev {
            RunEvent::Started {
                started_at,
                session_id,
                message_seq,
                message_id,
            } => {
                self.started_at = started_at;
                self.session_id = Some(session_id);
                let run = lock(&self.assistant.runs)
                    .get(&self.run_id)
                    .map(|r| r.message.clone());
                let user = json!({
                    "role": "user",
                    "content": run.unwrap_or_default(),
                    "timestamp": started_at,
                    "idempotencyKey": format!("{}:user", self.run_id),
                    "__openclaw": {"id": message_id, "seq": message_seq},
                });
                self.session_message(&user, message_seq, &message_id);
                self.assistant
                    .sessions_changed(&self.key, json!({"reason": "agent.run.started"}));
                self.lifecycle(json!({"phase": "start", "startedAt": started_at}));
                self.assistant
                    .sessions_changed(&self.key, json!({"phase": "start", "runId": self.run_id}));
                None
            }
            RunEvent::Duplicate(begin) => {
                // Answered before submitting; only a race gets here.
                let outcome = match begin {
                    Begin::Done(o) => o,
                    _ => RunOutcome {
                        status: RunStatus::Error,
                        text: String::new(),
                        usage: Default::default(),
                        provider: None,
                        model: None,
                        error: Some("this run id is in use".into()),
                        started_at: self.started_at,
                        ended_at: now_ms_i64(),
                    },
                };
                Some(Ended { outcome })
            }
            RunEvent::ModelChosen {
                provider, model, ..
            } => {
                self.lifecycle(json!({"phase": "model", "provider": provider, "model": model}));
                None
            }
            RunEvent::ModelSkipped { .. } | RunEvent::Usage { .. } => None,
            RunEvent::TextDelta { delta, text } => {
                self.text = text;
                let item_text = self
                    .text
                    .get(self.item_start..)
                    .unwrap_or_default()
                    .trim_start_matches("\n\n")
                    .to_string();
                let (seq, payload) = self.agent_event(
                    "assistant",
                    json!({"itemId": format!("{}:{}", self.stream, self.item), "text": item_text, "delta": delta}),
                );
                self.hub().to_readers("agent", &payload);
                self.last_seq_for_text = seq;
                let due = self.last_sent_at.is_none_or(|at| at.elapsed() >= PACING);
                if due {
                    self.flush_text();
                } else if self.pending_since.is_none() {
                    self.pending_since = self.last_sent_at;
                }
                None
            }
            RunEvent::ToolStart {
                call_id,
                name,
                args,
            } => {
                self.flush_text();
                let (_, item) = self.agent_event(
                    "item",
                    json!({"itemId": format!("tool:{call_id}"), "kind": "tool", "phase": "start", "title": name, "status": "running", "name": name, "toolCallId": call_id, "startedAt": now_ms()}),
                );
                self.hub().to_readers("agent", &item);
                let data =
                    json!({"phase": "start", "name": name, "toolCallId": call_id, "args": args});
                let (_, tool) = self.agent_event("tool", data.clone());
                let session_tool =
                    json!({"sessionKey": self.key.as_str(), "runId": self.run_id, "data": data});
                self.hub().tool_event(&self.run_id, &tool, &session_tool);
                // Text after the tool round is a new item.
                self.item += 1;
                self.item_start = self.text.len();
                None
            }
            RunEvent::ToolResult {
                call_id,
                name,
                text,
                is_error,
            } => {
                let data = json!({"phase": "result", "name": name, "toolCallId": call_id, "isError": is_error, "result": {"content": [{"type": "text", "text": text}]}});
                let (_, tool) = self.agent_event("tool", data.clone());
                let session_tool =
                    json!({"sessionKey": self.key.as_str(), "runId": self.run_id, "data": data});
                self.hub().tool_event(&self.run_id, &tool, &session_tool);
                let (_, item) = self.agent_event(
                    "item",
                    json!({"itemId": format!("tool:{call_id}"), "kind": "tool", "phase": "end", "title": name, "status": if is_error { "failed" } else { "completed" }, "name": name, "toolCallId": call_id, "endedAt": now_ms()}),
                );
                self.hub().to_readers("agent", &item);
                None
            }
            RunEvent::MessageStored { seq, id, message } => {
                let mut value = serde_json::to_value(&message).unwrap_or(Value::Null);
                if let Some(obj) = value.as_object_mut() {
                    obj.insert(
                        "__openclaw".into(),
                        json!({"id": id, "seq": seq, "runId": self.run_id}),
                    );
                }
                if let Message::Assistant(_) | Message::ToolResult(_) = message {
                    self.session_message(&value, seq, &id);
                }
                None
            }
            RunEvent::Ended {
                outcome,
                stop_reason,
            } => Some(self.ended(outcome, stop_reason)),
        }
    }

    /// The terminal events: lifecycle end or error, exactly one terminal
    /// `chat`, the session's change.
    fn ended(&mut self, outcome: RunOutcome, stop_reason: StopReason) -> Ended {
        self.flush_text();
        let aborted = matches!(outcome.status, RunStatus::Aborted | RunStatus::Interrupted);
        let timed_out = aborted
            && outcome
                .error
                .as_deref()
                .is_some_and(|e| e.contains("timed out"));
        let phase = if outcome.status == RunStatus::Error {
            "error"
        } else {
            "end"
        };
        let seq = self.lifecycle(json!({
            "phase": phase,
            "startedAt": outcome.started_at,
            "endedAt": outcome.ended_at,
            "aborted": aborted,
            "stopReason": stop_reason.as_str(),
            "error": outcome.error,
        }));
        let usage = serde_json::to_value(&outcome.usage).unwrap_or(Value::Null);
        let message = (!outcome.text.is_empty()).then(|| {
            json!({"role": "assistant", "content": [{"type": "text", "text": outcome.text}], "timestamp": outcome.ended_at})
        });
        match outcome.status {
            RunStatus::Ok => self.chat(
                seq,
                "final",
                json!({"stopReason": stop_reason.as_str(), "message": message, "usage": usage}),
            ),
            RunStatus::Error => self.chat(
                seq,
                "error",
                json!({"errorMessage": outcome.error, "errorKind": error_kind(outcome.error.as_deref()), "message": message, "usage": usage}),
            ),
            RunStatus::Aborted | RunStatus::Interrupted => self.chat(
                seq,
                "aborted",
                json!({"stopReason": if timed_out { "timeout" } else { "rpc" }, "message": message, "errorMessage": outcome.error}),
            ),
        }
        self.assistant.sessions_changed(
            &self.key,
            json!({"phase": if phase == "error" { "error" } else { "end" }, "runId": self.run_id}),
        );
        Ended { outcome }
    }
}

fn error_kind(error: Option<&str>) -> &'static str {
    match error {
        Some(e) if e.contains("timed out") || e.contains("did not answer") => "timeout",
        Some(e) if e.contains("429") || e.contains("rate limit") => "rate_limit",
        _ => "unknown",
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn now_ms() -> u64 {
    crate::conn::now_ms()
}

fn now_ms_i64() -> Millis {
    i64::try_from(now_ms()).unwrap_or(i64::MAX)
}

fn round_usd(usd: f64) -> f64 {
    (usd * 1e6).round() / 1e6
}

/// Adds `extra`'s fields to `base` (both objects).
fn merge(base: &mut Value, extra: Value) {
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        for (k, v) in e {
            if !v.is_null() {
                b.insert(k, v);
            }
        }
    }
}

// ---- strict params -------------------------------------------------------

const CHAT_SEND_KEYS: &[&str] = &[
    "sessionKey",
    "message",
    "idempotencyKey",
    "agentId",
    "sessionId",
    "thinking",
    "deliver",
    "timeoutMs",
    "attachments",
    "queueMode",
    "fastMode",
    "fastAutoOnSeconds",
    "replyToId",
    "mentions",
    "workContext",
    "intent",
    "expectedLeafEntryId",
    "expectedSessionRoutingContract",
    "expectedPermissionMode",
    "expectedToolOverrides",
    "toolBindings",
    "originatingChannel",
    "originatingTo",
    "originatingAccountId",
    "originatingThreadId",
    "systemInputProvenance",
    "systemProvenanceReceipt",
    "suppressCommandInterpretation",
];

const AGENT_KEYS: &[&str] = &[
    "message",
    "idempotencyKey",
    "agentId",
    "provider",
    "model",
    "to",
    "replyTo",
    "sessionId",
    "sessionKey",
    "expectedExistingSessionId",
    "thinking",
    "deliver",
    "attachments",
    "channel",
    "replyChannel",
    "accountId",
    "replyAccountId",
    "threadId",
    "groupId",
    "groupChannel",
    "groupSpace",
    "timeout",
    "bestEffortDeliver",
    "lane",
    "cwd",
    "extraSystemPrompt",
    "promptMode",
    "bootstrapContextMode",
    "label",
    "inputProvenance",
    "internalEvents",
    "voiceWakeTrigger",
];

const CHAT_HISTORY_KEYS: &[&str] = &[
    "sessionKey",
    "agentId",
    "limit",
    "maxBytes",
    "offset",
    "cursor",
    "messageId",
    "sessionId",
    "pendingBefore",
    "inputRunIds",
    "maxChars",
];

/// Refuses params that are not an object, miss a required key or carry a
/// key the method does not know, as the real peer's schemas do.
pub(crate) fn check_params(
    method: &str,
    params: &Value,
    known: &[&str],
    required: &[&str],
) -> Result<(), ErrorShape> {
    let Some(map) = params.as_object() else {
        return Err(ErrorShape::invalid_request(format!(
            "invalid {method} params: must be object"
        )));
    };
    for key in required {
        if !map.contains_key(*key) {
            return Err(ErrorShape::invalid_request(format!(
                "invalid {method} params: must have required property '{key}'"
            )));
        }
    }
    if let Some(extra) = map.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(ErrorShape::invalid_request(format!(
            "invalid {method} params: at root: unexpected property '{extra}'"
        )));
    }
    Ok(())
}

fn non_empty(params: &Value, key: &str, method: &str) -> Result<String, ErrorShape> {
    match params.get(key).and_then(Value::as_str) {
        Some(s) if !s.is_empty() => Ok(s.to_string()),
        _ => Err(ErrorShape::invalid_request(format!(
            "invalid {method} params: at /{key}: must be non-empty string"
        ))),
    }
}

fn bounded(
    params: &Value,
    key: &str,
    default: usize,
    max: usize,
    method: &str,
) -> Result<usize, ErrorShape> {
    match params.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .map(|n| n.min(max))
            .ok_or_else(|| {
                ErrorShape::invalid_request(format!(
                    "invalid {method} params: at /{key}: must be integer >= 0"
                ))
            }),
    }
}

/// The message as OpenClaw takes it: a NUL byte is refused, other C0
/// controls but tab and line breaks are dropped.
fn sanitize(message: &str, method: &str) -> Result<String, ErrorShape> {
    if message.contains('\0') {
        return Err(ErrorShape::invalid_request(format!(
            "invalid {method} params: message must not contain null bytes"
        )));
    }
    Ok(message
        .chars()
        .filter(|c| u32::from(*c) >= 0x20 || matches!(c, '\t' | '\n' | '\r'))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_checked_like_the_peer_schemas() {
        let check =
            |p: Value| check_params("chat.abort", &p, &["sessionKey", "runId"], &["sessionKey"]);
        assert!(check(json!({"sessionKey": "main"})).is_ok());
        let missing = check(json!({})).expect_err("required");
        assert!(missing
            .message
            .contains("must have required property 'sessionKey'"));
        let extra =
            check(json!({"sessionKey": "main", "preserveSideRuns": true})).expect_err("unknown");
        assert!(extra.message.contains("invalid chat.abort params"));
        assert!(extra.message.to_lowercase().contains("preservesideruns"));
        assert!(check(json!([])).is_err());
    }

    #[test]
    fn messages_are_sanitized_as_openclaw_does() {
        assert_eq!(
            sanitize("a\u{7}b\tc\nd", "chat.send").expect("ok"),
            "ab\tc\nd"
        );
        assert!(sanitize("a\0b", "chat.send").is_err());
        assert_eq!(sanitize("héllo ✓", "chat.send").expect("ok"), "héllo ✓");
    }

    #[test]
    fn a_finished_run_is_replayed_by_its_status() {
        let outcome = |status| RunOutcome {
            status,
            text: "hi".into(),
            usage: Default::default(),
            provider: None,
            model: None,
            error: None,
            started_at: 1,
            ended_at: 2,
        };
        assert_eq!(replay("R", &outcome(RunStatus::Ok))["status"], "ok");
        assert_eq!(
            replay("R", &outcome(RunStatus::Aborted))["summary"],
            "aborted"
        );
        let fin = agent_final("R", &outcome(RunStatus::Ok), None).expect("ok");
        assert_eq!(fin["result"]["payloads"][0]["text"], "hi");
        assert!(agent_final("R", &outcome(RunStatus::Error), None).is_err());
    }
}
