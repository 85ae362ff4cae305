//! What the assistant's tests share: a small in-memory `SessionStore`, an
//! agent wired to the provider double, and a way to run a message to its
//! end and collect what happened; the wall clock and a finished run's
//! outcome for the store's tests and benchmark.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use omniclaw_agent::agent::{Agent, Setup, Submitted, BASE_PROMPT};
use omniclaw_agent::clock::{ManualClock, Millis};
use omniclaw_agent::double::Double;
use omniclaw_agent::message::{Message, UserMessage};
use omniclaw_agent::provider::ToolSpec;
use omniclaw_agent::provider::{self, KeySource};
use omniclaw_agent::run::{RunEvent, RunRequest};
use omniclaw_agent::session::{
    Appended, Begin, RunOutcome, SessionKey, SessionStore, Spend, StoreError, StoredMessage,
};
use omniclaw_agent::tool::{Tool, ToolContext, ToolOutput};
use omniclaw_core::config::{self, AgentConfig};
use serde_json::{json, Value};

/// 2026-12-05T22:00:00Z.
pub const NOW: Millis = 1_796_508_000_000;
pub const KEY: &str = "sk-live-0123456789abcdef";
pub const APIS: [&str; 3] = ["openai-completions", "anthropic-messages", "ollama"];

/// Transcripts in memory: runs, messages, and spend from stored usage.
#[derive(Default)]
pub struct MemStore {
    inner: Mutex<Mem>,
}

#[derive(Default)]
struct Mem {
    sessions: HashMap<String, Vec<StoredMessage>>,
    runs: HashMap<String, Option<RunOutcome>>,
    /// Spend already made today by earlier runs (provider → USD).
    earlier: BTreeMap<String, f64>,
}

impl Mem {
    fn push(&mut self, key: &SessionKey, run_id: &str, message: Message) -> u64 {
        let session = self.sessions.entry(key.to_string()).or_default();
        let seq = session.len() as u64 + 1;
        session.push(StoredMessage {
            id: format!("m{seq}"),
            seq,
            run_id: Some(run_id.into()),
            message,
        });
        seq
    }
}

impl MemStore {
    pub fn messages(&self, key: &str) -> Vec<Message> {
        let m = self.inner.lock().expect("lock");
        m.sessions
            .get(key)
            .map(|s| s.iter().map(|x| x.message.clone()).collect())
            .unwrap_or_default()
    }

    /// Spend that earlier runs made today.
    pub fn spent_earlier(&self, provider: &str, usd: f64) {
        self.inner
            .lock()
            .expect("lock")
            .earlier
            .insert(provider.into(), usd);
    }
}

impl SessionStore for MemStore {
    fn begin_run(
        &self,
        key: &SessionKey,
        run_id: &str,
        user: &UserMessage,
    ) -> Result<Begin, StoreError> {
        let mut m = self.inner.lock().expect("lock");
        match m.runs.get(run_id) {
            Some(None) => return Ok(Begin::InFlight),
            Some(Some(outcome)) => return Ok(Begin::Done(outcome.clone())),
            None => {}
        }
        m.runs.insert(run_id.into(), None);
        let seq = m.push(key, run_id, Message::User(user.clone()));
        Ok(Begin::Started {
            session_id: "s1".into(),
            message_seq: seq,
            message_id: format!("m{seq}"),
        })
    }

    fn append(
        &self,
        key: &SessionKey,
        run_id: &str,
        message: &Message,
    ) -> Result<Appended, StoreError> {
        let seq = self
            .inner
            .lock()
            .expect("lock")
            .push(key, run_id, message.clone());
        Ok(Appended {
            seq,
            id: format!("m{seq}"),
        })
    }

    fn finish_run(
        &self,
        _key: &SessionKey,
        run_id: &str,
        outcome: &RunOutcome,
    ) -> Result<(), StoreError> {
        self.inner
            .lock()
            .expect("lock")
            .runs
            .insert(run_id.into(), Some(outcome.clone()));
        Ok(())
    }

    fn history(&self, key: &SessionKey, limit: usize) -> Result<Vec<StoredMessage>, StoreError> {
        let m = self.inner.lock().expect("lock");
        let all = m.sessions.get(key.as_str()).cloned().unwrap_or_default();
        Ok(all[all.len().saturating_sub(limit)..].to_vec())
    }

    fn spend_since(&self, since: Millis) -> Result<Spend, StoreError> {
        let m = self.inner.lock().expect("lock");
        let mut spend = Spend::default();
        for (p, usd) in &m.earlier {
            spend.usd += usd;
            *spend.by_provider.entry(p.clone()).or_default() += usd;
        }
        for message in m.sessions.values().flatten() {
            if let Message::Assistant(a) = &message.message {
                if a.timestamp >= since {
                    spend.usd += a.usage.cost.total;
                    spend.tokens += a.usage.total_tokens;
                    *spend.by_provider.entry(a.provider.clone()).or_default() += a.usage.cost.total;
                }
            }
        }
        Ok(spend)
    }
}

/// Keys by provider id.
pub struct Keys(pub HashMap<String, String>);

impl KeySource for Keys {
    fn api_key(&self, provider: &str) -> Result<Option<String>, String> {
        Ok(self.0.get(provider).cloned())
    }
}

/// A tool that computes `a * b`, and says what it was called with.
pub struct Calc;

#[async_trait]
impl Tool for Calc {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "calc".into(),
            description: "Multiplies a and b.".into(),
            parameters: json!({"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}}),
        }
    }

    async fn call(&self, args: Value, _ctx: &ToolContext) -> ToolOutput {
        match (args["a"].as_f64(), args["b"].as_f64()) {
            (Some(a), Some(b)) => ToolOutput::ok(format!("{}", a * b)),
            _ => ToolOutput::error(format!("calc needs numbers a and b, got {args}")),
        }
    }
}

/// A tool that never ends unless cancelled (it ignores the token, so only
/// the loop's own cancellation can stop it).
pub struct Sleepy;

#[async_trait]
impl Tool for Sleepy {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "sleepy".into(),
            description: "Waits.".into(),
            parameters: json!({"type": "object"}),
        }
    }

    async fn call(&self, _args: Value, _ctx: &ToolContext) -> ToolOutput {
        std::future::pending().await
    }
}

/// An agent and everything behind it.
pub struct Rig {
    pub agent: Agent,
    pub store: Arc<MemStore>,
    pub clock: Arc<ManualClock>,
    pub workspace: tempfile::TempDir,
    pub config: AgentConfig,
}

/// Builds the assistant config from JSON5 `text` (validated like a real one).
pub fn agent_config(text: &str) -> AgentConfig {
    match config::load(text) {
        Ok(loaded) => loaded.config.agent(),
        Err(e) => panic!("{text}\n{e}"),
    }
}

/// One provider `p` of `api` at the double with models m1 (priced) and m2.
pub fn one_provider(double: &Double, api: &str, extra: &str) -> String {
    format!(
        "{{ models: {{ providers: {{ p: {{ baseUrl: '{}', api: '{api}', apiKey: '${{P_KEY}}', timeoutSeconds: 2, models: [{{ id: 'm1', name: 'M1', contextWindow: 8192, cost: {{ input: 1000, output: 2000 }} }}, {{ id: 'm2', name: 'M2' }}] }} }} }}, agents: {{ defaults: {{ model: 'p/m1' }} }}, {extra} }}",
        double.base_url(api)
    )
}

pub fn rig(text: &str, tools: Vec<Arc<dyn Tool>>) -> Rig {
    let config = agent_config(text);
    let clock = Arc::new(ManualClock::new(NOW, 2 * 3600));
    let workspace = tempfile::tempdir().expect("workspace");
    let store = Arc::new(MemStore::default());
    let setup = setup(&config, &clock, tools, workspace.path());
    let agent = Agent::new(setup, store.clone(), clock.clone());
    Rig {
        agent,
        store,
        clock,
        workspace,
        config,
    }
}

/// The setup of `config` (every provider's key is [`KEY`]) with `tools`.
pub fn setup(
    config: &AgentConfig,
    clock: &Arc<ManualClock>,
    tools: Vec<Arc<dyn Tool>>,
    workspace: &std::path::Path,
) -> Setup {
    let keys: HashMap<String, String> = config
        .providers
        .iter()
        .map(|p| (p.id.clone(), KEY.to_string()))
        .collect();
    let providers = provider::build_all(
        &config.providers,
        Arc::new(Keys(keys)),
        clock.clone(),
        |_| Vec::new(),
    )
    .expect("providers");
    Setup {
        config: config.clone(),
        providers,
        tools,
        workspace: workspace.to_path_buf(),
        child_env: BTreeMap::new(),
        base_prompt: BASE_PROMPT.into(),
    }
}

pub fn request(run_id: &str, message: &str) -> RunRequest {
    RunRequest {
        session_key: SessionKey::main("main"),
        run_id: run_id.into(),
        message: message.into(),
        sender_is_owner: true,
        timeout: None,
    }
}

/// Runs to the end (at most 20 s) and returns every event.
pub async fn run(rig: &Rig, request: RunRequest) -> Vec<RunEvent> {
    let Submitted::Queued(mut handle) = rig.agent.submit(request).expect("submitted") else {
        panic!("in flight");
    };
    collect(&mut handle.events).await
}

pub async fn collect(events: &mut tokio::sync::mpsc::UnboundedReceiver<RunEvent>) -> Vec<RunEvent> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while let Ok(Some(e)) = tokio::time::timeout_at(deadline, events.recv()).await {
        let end = matches!(e, RunEvent::Ended { .. } | RunEvent::Duplicate(_));
        out.push(e);
        if end {
            return out;
        }
    }
    panic!("the run did not end: {out:#?}");
}

pub fn outcome(events: &[RunEvent]) -> RunOutcome {
    match events.last() {
        Some(RunEvent::Ended { outcome, .. }) => outcome.clone(),
        other => panic!("no end: {other:?}"),
    }
}

pub fn skipped(events: &[RunEvent]) -> Vec<(String, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            RunEvent::ModelSkipped {
                provider, reason, ..
            } => Some((provider.clone(), reason.clone())),
            _ => None,
        })
        .collect()
}

pub fn chosen(events: &[RunEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            RunEvent::ModelChosen {
                provider, model, ..
            } => Some(format!("{provider}/{model}")),
            _ => None,
        })
        .collect()
}

pub fn workspace_path(rig: &Rig) -> PathBuf {
    rig.workspace.path().to_path_buf()
}

/// The wall clock, in UTC (the day boundary does not matter here).
pub struct SystemClock;

impl omniclaw_agent::clock::Clock for SystemClock {
    fn now_ms(&self) -> Millis {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as Millis)
            .unwrap_or(0)
    }

    fn utc_offset_secs(&self, _at: Millis) -> i32 {
        0
    }
}

/// A run that ended well, saying `text`.
pub fn ok_outcome(text: &str) -> omniclaw_agent::session::RunOutcome {
    omniclaw_agent::session::RunOutcome {
        status: omniclaw_agent::session::RunStatus::Ok,
        text: text.into(),
        usage: Default::default(),
        provider: None,
        model: None,
        error: None,
        started_at: 0,
        ended_at: 0,
    }
}
