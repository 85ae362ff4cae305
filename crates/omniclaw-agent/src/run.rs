//! One run: a user message in, the model's answer (with tool rounds) out.
//!
//! A state machine you can read: `Pending → Streaming → (ToolCalls →
//! Streaming)* → Done | Failed | Aborted`, each transition one match arm in
//! [`Run::drive`]. The [`RunEvent`]s the gateway turns into `chat` /
//! `agent` / `session.message` events are emitted by those arms, nowhere
//! else.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use omniclaw_core::config::{ModelDef, ModelRef};
use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use crate::agent::Setup;
use crate::clock::{Clock, Millis};
use crate::fallover::Cooldowns;
use crate::message::{
    AssistantBlock, AssistantMessage, Message, StopReason, TextBlock, ToolCall, ToolResultMessage,
    Usage, UserMessage,
};
use crate::prompt::{self, Limits};
use crate::provider::{CompletionRequest, Provider, ProviderError, ProviderEvent, ToolSpec};
use crate::session::{Begin, RunOutcome, RunStatus, SessionKey, SessionStore};
use crate::spend;
use crate::tool::{ToolContext, ToolOutput, ToolPolicy};

/// How many messages of history are read before cutting to the window.
pub const HISTORY_LIMIT: usize = 400;
/// Tool rounds a run may take before it stops.
pub const MAX_TOOL_ROUNDS: u32 = 16;
/// Tokens kept free for the answer when a model states no `maxTokens`.
const DEFAULT_ANSWER_TOKENS: u32 = 4096;

/// What the gateway asks for.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub session_key: SessionKey,
    /// The client's idempotency key.
    pub run_id: String,
    pub message: String,
    /// Whether the sender is the owner: only the owner's main session gets
    /// `MEMORY.md`.
    pub sender_is_owner: bool,
    /// Overrides `agents.defaults.timeoutSeconds` (`Some(ZERO)`: no limit).
    pub timeout: Option<Duration>,
}

/// What happens in a run, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEvent {
    /// The user message is stored at `message_seq`; the run begins.
    Started {
        started_at: Millis,
        /// The session's id (UUIDv7, kept across resets).
        session_id: String,
        message_seq: u64,
        /// The stored user message's entry id.
        message_id: String,
    },
    /// The run id was used before: nothing runs (`InFlight`, a finished
    /// run's outcome to replay, or a different message under the same id).
    Duplicate(Begin),
    /// A model is being called.
    ModelChosen {
        provider: String,
        model: String,
        api: String,
    },
    /// A model of the chain was passed over: cooling down, over its
    /// provider's budget, or it failed (the reason says which).
    ModelSkipped {
        provider: String,
        model: String,
        reason: String,
    },
    /// New visible text: `delta`, and the whole text of the run so far
    /// (assistant messages joined by a blank line).
    TextDelta { delta: String, text: String },
    ToolStart {
        call_id: String,
        name: String,
        args: Value,
    },
    ToolResult {
        call_id: String,
        name: String,
        text: String,
        is_error: bool,
    },
    /// A message of the run was stored at `seq`.
    MessageStored {
        seq: u64,
        /// Its entry id.
        id: String,
        message: Message,
    },
    /// One call's usage, and the run's so far.
    Usage { call: Usage, run: Usage },
    /// The run ended (always the last event).
    Ended {
        outcome: RunOutcome,
        stop_reason: StopReason,
    },
}

/// The states of a run.
#[derive(Debug)]
enum State {
    Pending,
    Streaming,
    ToolCalls(Vec<ToolCall>),
    Done,
    Failed(String),
    Aborted,
}

/// What one model call came to.
enum Call {
    Answered(AssistantMessage),
    /// Cancelled: what was said so far.
    Aborted(AssistantMessage),
    Failed {
        error: String,
        partial: Option<AssistantMessage>,
    },
}

/// The tools a setup offers the model (those its policy allows), and their
/// estimated tokens.
pub(crate) struct Offered {
    pub specs: Arc<[ToolSpec]>,
    pub tokens: usize,
}

impl Offered {
    pub fn of(setup: &Setup) -> Offered {
        let policy = ToolPolicy {
            allow: setup.config.tools.allow.clone(),
            deny: setup.config.tools.deny.clone(),
        };
        let specs: Arc<[ToolSpec]> = setup
            .tools
            .iter()
            .map(|t| t.spec())
            .filter(|s| policy.check(&s.name).is_ok())
            .collect();
        let tokens = specs
            .iter()
            .map(|t| prompt::text_tokens(&format!("{}{}{}", t.name, t.description, t.parameters)))
            .sum();
        Offered { specs, tokens }
    }
}

/// Everything a run needs, handed in by the agent.
pub(crate) struct Deps {
    pub setup: Arc<Setup>,
    pub offered: Arc<Offered>,
    pub store: Arc<dyn SessionStore>,
    pub clock: Arc<dyn Clock>,
    pub cooldowns: Arc<Cooldowns>,
}

pub(crate) struct Run {
    deps: Deps,
    request: RunRequest,
    events: UnboundedSender<RunEvent>,
    cancel: CancellationToken,
    timed_out: Arc<AtomicBool>,
    started_at: Millis,
    system: String,
    /// Shared with the request of a model call, which sends it whole.
    history: Arc<Vec<Message>>,
    text: String,
    usage: Usage,
    rounds: u32,
    answered_by: Option<ModelRef>,
    stop_reason: StopReason,
}

impl Run {
    pub fn new(
        deps: Deps,
        request: RunRequest,
        events: UnboundedSender<RunEvent>,
        cancel: CancellationToken,
    ) -> Run {
        let started_at = deps.clock.now_ms();
        Run {
            deps,
            request,
            events,
            cancel,
            timed_out: Arc::new(AtomicBool::new(false)),
            started_at,
            system: String::new(),
            history: Arc::default(),
            text: String::new(),
            usage: Usage::default(),
            rounds: 0,
            answered_by: None,
            stop_reason: StopReason::Stop,
        }
    }

    fn emit(&self, event: RunEvent) {
        // A gateway that stopped listening does not stop the run: the
        // transcript is still written.
        let _ = self.events.send(event);
    }

    /// Runs to the end; the last event is [`RunEvent::Ended`].
    pub async fn drive(mut self) -> RunOutcome {
        let user = UserMessage {
            content: self.request.message.clone(),
            timestamp: self.started_at,
            idempotency_key: Some(format!("{}:user", self.request.run_id)),
        };
        let begin =
            self.deps
                .store
                .begin_run(&self.request.session_key, &self.request.run_id, &user);
        match begin {
            Ok(Begin::Started {
                session_id,
                message_seq,
                message_id,
            }) => self.emit(RunEvent::Started {
                started_at: self.started_at,
                session_id,
                message_seq,
                message_id,
            }),
            Ok(other) => {
                let outcome = match &other {
                    Begin::Done(outcome) => outcome.clone(),
                    _ => self.outcome(RunStatus::Error, Some("this run id was used before".into())),
                };
                self.emit(RunEvent::Duplicate(other));
                return outcome;
            }
            Err(e) => {
                let outcome = self.outcome(
                    RunStatus::Error,
                    Some(format!("the message cannot be stored: {e}")),
                );
                self.emit(RunEvent::Ended {
                    outcome: outcome.clone(),
                    stop_reason: StopReason::Error,
                });
                return outcome;
            }
        }
        let _timer = self.arm_timeout();
        let mut state = State::Pending;
        loop {
            state = match state {
                // An abort (or the timeout) between steps: no further call.
                State::Pending | State::Streaming | State::ToolCalls(_)
                    if self.cancel.is_cancelled() =>
                {
                    State::Aborted
                }
                State::Pending => self.prepare().await,
                State::Streaming => self.stream().await,
                State::ToolCalls(calls) => self.run_tools(calls).await,
                State::Done => return self.end(RunStatus::Ok, None),
                State::Failed(error) => return self.end(RunStatus::Error, Some(error)),
                State::Aborted => {
                    let why = if self.timed_out.load(Ordering::SeqCst) {
                        let secs = self.timeout().map_or(0.0, |d| d.as_secs_f64());
                        format!("timed out after {secs} s")
                    } else {
                        "aborted".to_string()
                    };
                    return self.end(RunStatus::Aborted, Some(why));
                }
            };
        }
    }

    fn timeout(&self) -> Option<Duration> {
        let t = self
            .request
            .timeout
            .unwrap_or(Duration::from_secs(self.deps.setup.config.timeout_seconds));
        (!t.is_zero()).then_some(t)
    }

    /// Cancels the run when its time is up; dropped with the run.
    fn arm_timeout(&self) -> Option<tokio_util::sync::DropGuard> {
        let after = self.timeout()?;
        let cancel = self.cancel.clone();
        let flag = self.timed_out.clone();
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = stopped.cancelled() => {}
                _ = tokio::time::sleep(after) => {
                    flag.store(true, Ordering::SeqCst);
                    cancel.cancel();
                }
            }
        });
        Some(stop.drop_guard())
    }

    /// `Pending → Streaming`: history and system prompt.
    async fn prepare(&mut self) -> State {
        let setup = self.deps.setup.clone();
        let key = &self.request.session_key;
        match self.deps.store.history(key, HISTORY_LIMIT) {
            Ok(stored) => self.history = Arc::new(stored.into_iter().map(|s| s.message).collect()),
            Err(e) => return State::Failed(format!("the history cannot be read: {e}")),
        }
        let with_memory = self.request.sender_is_owner && key.is_main();
        let files = prompt::read_files(&setup.workspace, with_memory);
        let window = setup
            .config
            .model_chain
            .first()
            .and_then(|m| self.model_def(m))
            .and_then(|d| d.context_window)
            .and_then(|w| u32::try_from(w).ok())
            .unwrap_or(prompt::DEFAULT_CONTEXT_WINDOW);
        let limits = Limits::new(
            setup.config.bootstrap_max_chars,
            setup.config.bootstrap_total_max_chars,
            window,
        );
        let base = format!(
            "{}\nYour workspace is {}.",
            setup.base_prompt.trim_end(),
            setup.workspace.display()
        );
        self.system = prompt::system_prompt(&base, &files, limits);
        if setup.config.model_chain.is_empty() {
            return State::Failed(
                "no model is configured: set agents.defaults.model to \"provider/model\"".into(),
            );
        }
        State::Streaming
    }

    /// `Streaming → ToolCalls | Done | Failed | Aborted`: one model call
    /// (falling over along the chain), its message stored.
    async fn stream(&mut self) -> State {
        match self.call_model().await {
            Call::Answered(message) => {
                self.stop_reason = message.stop_reason;
                let calls: Vec<ToolCall> = message.tool_calls().cloned().collect();
                if let Err(state) = self.store(Message::Assistant(message)) {
                    return state;
                }
                if calls.is_empty() {
                    return State::Done;
                }
                if self.rounds >= MAX_TOOL_ROUNDS {
                    return State::Failed(format!(
                        "the model asked for tools {MAX_TOOL_ROUNDS} rounds in a row; stopped there"
                    ));
                }
                State::ToolCalls(calls)
            }
            Call::Aborted(partial) => {
                self.stop_reason = StopReason::Aborted;
                match self.store(Message::Assistant(partial)) {
                    Ok(()) => State::Aborted,
                    Err(state) => state,
                }
            }
            Call::Failed { error, partial } => {
                self.stop_reason = StopReason::Error;
                let message = partial.unwrap_or_else(|| self.assistant(Vec::new(), None));
                let message = AssistantMessage {
                    stop_reason: StopReason::Error,
                    error_message: Some(error.clone()),
                    ..message
                };
                match self.store(Message::Assistant(message)) {
                    Ok(()) => State::Failed(error),
                    Err(state) => state,
                }
            }
        }
    }

    /// `ToolCalls → Streaming | Aborted`: each call through the policy,
    /// then the tool; refusals and failures go back as tool errors.
    async fn run_tools(&mut self, calls: Vec<ToolCall>) -> State {
        self.rounds += 1;
        let setup = self.deps.setup.clone();
        let policy = ToolPolicy {
            allow: setup.config.tools.allow.clone(),
            deny: setup.config.tools.deny.clone(),
        };
        let ctx = ToolContext {
            workspace: setup.workspace.clone(),
            session_key: self.request.session_key.to_string(),
            cancel: self.cancel.clone(),
            child_env: setup.child_env.clone(),
        };
        for call in calls {
            self.emit(RunEvent::ToolStart {
                call_id: call.id.clone(),
                name: call.name.clone(),
                args: call.arguments.clone(),
            });
            let aborted = self.cancel.is_cancelled();
            let output = if aborted {
                ToolOutput::error("the run was aborted before this tool ran")
            } else {
                self.call_tool(&setup, &policy, &call, &ctx).await
            };
            self.emit(RunEvent::ToolResult {
                call_id: call.id.clone(),
                name: call.name.clone(),
                text: output.text.clone(),
                is_error: output.is_error,
            });
            let result = Message::ToolResult(ToolResultMessage {
                tool_call_id: call.id,
                tool_name: call.name,
                content: vec![TextBlock { text: output.text }],
                is_error: output.is_error,
                timestamp: self.deps.clock.now_ms(),
            });
            if let Err(state) = self.store(result) {
                return state;
            }
        }
        if self.cancel.is_cancelled() {
            self.stop_reason = StopReason::Aborted;
            return State::Aborted;
        }
        State::Streaming
    }

    /// The one door every tool call passes.
    async fn call_tool(
        &self,
        setup: &Setup,
        policy: &ToolPolicy,
        call: &ToolCall,
        ctx: &ToolContext,
    ) -> ToolOutput {
        if let Err(why) = policy.check(&call.name) {
            return ToolOutput::error(why);
        }
        let Some(tool) = setup.tools.iter().find(|t| t.spec().name == call.name) else {
            let names: Vec<String> = setup.tools.iter().map(|t| t.spec().name).collect();
            return ToolOutput::error(format!(
                "there is no tool named {}; the tools are: {}",
                call.name,
                names.join(", ")
            ));
        };
        if !call.arguments.is_object() {
            return ToolOutput::error(format!(
                "the arguments of {} are not a JSON object: {}",
                call.name, call.arguments
            ));
        }
        tokio::select! {
            // A tool that ignores the token is dropped all the same.
            _ = self.cancel.cancelled() => ToolOutput::error("the run was aborted while the tool ran"),
            out = tool.call(call.arguments.clone(), ctx) => out,
        }
    }

    /// One model call: the chain in cooldown order, each candidate checked
    /// against the budget, falling over on errors that allow it as long as
    /// nothing was said yet.
    async fn call_model(&mut self) -> Call {
        let setup = self.deps.setup.clone();
        let now = self.deps.clock.now_ms();
        let mut failures = Vec::new();
        for candidate in self.deps.cooldowns.order(&setup.config.model_chain, now) {
            let m = candidate.model;
            let skip = |run: &Run, reason: String| {
                run.emit(RunEvent::ModelSkipped {
                    provider: m.provider.clone(),
                    model: m.model.clone(),
                    reason,
                })
            };
            if let Some(until) = candidate.cooling_until {
                skip(
                    self,
                    format!(
                        "{} is cooling down after an error until {}",
                        m.provider,
                        spend::local_time(self.deps.clock.as_ref(), until)
                    ),
                );
                continue;
            }
            let (Some(provider), Some(def)) =
                (setup.providers.get(&m.provider), self.model_def(&m))
            else {
                skip(self, format!("{m} is not configured"));
                continue;
            };
            match spend::check(
                &setup.config.budget,
                &m.provider,
                self.deps.store.as_ref(),
                self.deps.clock.as_ref(),
            ) {
                Ok(()) => {}
                Err(e) if e.is_per_provider() => {
                    skip(self, e.to_string());
                    failures.push(e.to_string());
                    continue;
                }
                Err(e) => {
                    return Call::Failed {
                        error: e.to_string(),
                        partial: None,
                    }
                }
            }
            self.emit(RunEvent::ModelChosen {
                provider: m.provider.clone(),
                model: m.model.clone(),
                api: provider.api().to_string(),
            });
            let request = self.completion(&m, &def);
            match self.stream_one(provider.as_ref(), &m, &def, request).await {
                Ok(message) => {
                    self.deps.cooldowns.succeeded(&m.provider);
                    self.answered_by = Some(m);
                    return Call::Answered(message);
                }
                Err(Failure::Aborted(partial)) => {
                    self.answered_by = Some(m);
                    return Call::Aborted(partial);
                }
                Err(Failure::Provider { error, partial }) => {
                    if error.falls_over() {
                        let now = self.deps.clock.now_ms();
                        self.deps.cooldowns.failed(&m.provider, &error, now);
                    }
                    if error.falls_over() && partial.is_none() {
                        skip(self, error.to_string());
                        failures.push(error.to_string());
                        continue;
                    }
                    self.answered_by = Some(m);
                    return Call::Failed {
                        error: error.to_string(),
                        partial,
                    };
                }
            }
        }
        Call::Failed {
            error: match failures.as_slice() {
                [] => "no model of agents.defaults.model could be called".to_string(),
                [one] => one.clone(),
                many => format!("every model failed: {}", many.join("; ")),
            },
            partial: None,
        }
    }

    fn model_def(&self, m: &ModelRef) -> Option<ModelDef> {
        self.deps
            .setup
            .config
            .provider(&m.provider)
            .and_then(|p| p.model(&m.model))
    }

    /// The request for `m`: the system prompt, the history cut to its
    /// window, the tools the policy lets it see.
    fn completion(&self, m: &ModelRef, def: &ModelDef) -> CompletionRequest {
        let window = def.context_window.and_then(|w| u32::try_from(w).ok());
        let max_tokens = def.max_tokens.and_then(|n| u32::try_from(n).ok());
        let w = window.unwrap_or(prompt::DEFAULT_CONTEXT_WINDOW);
        let answer = max_tokens.unwrap_or(DEFAULT_ANSWER_TOKENS).min(w / 4);
        let fixed = prompt::text_tokens(&self.system) + self.deps.offered.tokens;
        let budget = usize::try_from(w.saturating_sub(answer))
            .unwrap_or(usize::MAX)
            .saturating_sub(fixed);
        CompletionRequest {
            model: m.model.clone(),
            system: self.system.clone(),
            messages: prompt::fit_history(&self.history, budget),
            tools: self.deps.offered.specs.clone(),
            max_tokens,
            context_window: window,
        }
    }

    /// Streams one call into an assistant message, emitting its text.
    async fn stream_one(
        &mut self,
        provider: &dyn Provider,
        m: &ModelRef,
        def: &ModelDef,
        request: CompletionRequest,
    ) -> Result<AssistantMessage, Failure> {
        let mut acc = Accumulated::default();
        let started = tokio::select! {
            _ = self.cancel.cancelled() => Err(ProviderError::Aborted),
            s = provider.stream(request, self.cancel.clone()) => s,
        };
        let mut stream = match started {
            Ok(s) => s,
            Err(ProviderError::Aborted) => {
                return Err(Failure::Aborted(AssistantMessage {
                    stop_reason: StopReason::Aborted,
                    ..self.message_of(acc, m, provider)
                }))
            }
            Err(error) => {
                return Err(Failure::Provider {
                    error,
                    partial: None,
                })
            }
        };
        let mut stop = None;
        loop {
            let next = tokio::select! {
                _ = self.cancel.cancelled() => Some(Err(ProviderError::Aborted)),
                n = stream.next() => n,
            };
            match next {
                None => break,
                Some(Ok(ProviderEvent::TextDelta(piece))) => self.add_text(&mut acc, &piece),
                Some(Ok(ProviderEvent::ToolCallDelta {
                    index,
                    id,
                    name,
                    arguments,
                })) => {
                    let call = acc.calls.entry(index).or_default();
                    if let Some(id) = id {
                        call.id = id;
                    }
                    if let Some(name) = name {
                        call.name.push_str(&name);
                    }
                    call.arguments.push_str(&arguments);
                }
                Some(Ok(ProviderEvent::Usage(counts))) => acc.tokens = Some(counts),
                Some(Ok(ProviderEvent::Done(reason))) => stop = Some(reason),
                Some(Err(ProviderError::Aborted)) => {
                    drop(stream);
                    let message = self.priced(acc, m, def, provider);
                    return Err(Failure::Aborted(AssistantMessage {
                        stop_reason: StopReason::Aborted,
                        ..message
                    }));
                }
                Some(Err(error)) => {
                    let said = !acc.text.is_empty() || !acc.calls.is_empty();
                    let partial = said.then(|| self.priced(acc, m, def, provider));
                    return Err(Failure::Provider { error, partial });
                }
            }
        }
        let Some(stop) = stop else {
            let said = !acc.text.is_empty() || !acc.calls.is_empty();
            let partial = said.then(|| self.priced(acc, m, def, provider));
            return Err(Failure::Provider {
                error: ProviderError::Cut {
                    provider: m.provider.clone(),
                    detail: "the answer ended without its end".into(),
                },
                partial,
            });
        };
        let message = self.priced(acc, m, def, provider);
        Ok(AssistantMessage {
            stop_reason: stop,
            ..message
        })
    }

    fn add_text(&mut self, acc: &mut Accumulated, piece: &str) {
        if piece.is_empty() {
            return;
        }
        // Each assistant message's text is joined to the run's by a blank line.
        let delta = if acc.text.is_empty() && !self.text.is_empty() {
            format!("\n\n{piece}")
        } else {
            piece.to_string()
        };
        acc.text.push_str(piece);
        self.text.push_str(&delta);
        self.emit(RunEvent::TextDelta {
            delta,
            text: self.text.clone(),
        });
    }

    /// The message of a call with its usage priced and added to the run's.
    fn priced(
        &mut self,
        acc: Accumulated,
        m: &ModelRef,
        def: &ModelDef,
        provider: &dyn Provider,
    ) -> AssistantMessage {
        let usage = spend::price(acc.tokens.unwrap_or_default(), def.cost.as_ref());
        self.usage.add(&usage);
        self.emit(RunEvent::Usage {
            call: usage.clone(),
            run: self.usage.clone(),
        });
        AssistantMessage {
            usage,
            ..self.message_of(acc, m, provider)
        }
    }

    fn message_of(
        &self,
        acc: Accumulated,
        m: &ModelRef,
        provider: &dyn Provider,
    ) -> AssistantMessage {
        let mut blocks = Vec::new();
        if !acc.text.is_empty() {
            blocks.push(AssistantBlock::Text { text: acc.text });
        }
        for (i, call) in acc.calls {
            let arguments = if call.arguments.trim().is_empty() {
                Value::Object(Default::default())
            } else {
                // A malformed argument text is kept as text: the tool door
                // refuses it and tells the model.
                serde_json::from_str(&call.arguments).unwrap_or(Value::String(call.arguments))
            };
            let id = if call.id.is_empty() {
                format!("call_{i}")
            } else {
                call.id
            };
            blocks.push(AssistantBlock::ToolCall(ToolCall {
                id,
                name: call.name,
                arguments,
            }));
        }
        AssistantMessage {
            content: blocks,
            api: provider.api().to_string(),
            provider: m.provider.clone(),
            model: m.model.clone(),
            usage: Usage::default(),
            stop_reason: StopReason::Stop,
            error_message: None,
            timestamp: self.deps.clock.now_ms(),
        }
    }

    /// An assistant message of the answering model (for failures with
    /// nothing said).
    fn assistant(&self, content: Vec<AssistantBlock>, error: Option<String>) -> AssistantMessage {
        let (provider, model) = self
            .answered_by
            .as_ref()
            .map(|m| (m.provider.clone(), m.model.clone()))
            .unwrap_or_default();
        let api = self
            .deps
            .setup
            .providers
            .get(&provider)
            .map(|p| p.api().to_string())
            .unwrap_or_default();
        AssistantMessage {
            content,
            api,
            provider,
            model,
            usage: Usage::default(),
            stop_reason: StopReason::Error,
            error_message: error,
            timestamp: self.deps.clock.now_ms(),
        }
    }

    /// Appends a message of the run; a store that fails ends the run.
    fn store(&mut self, message: Message) -> Result<(), State> {
        match self
            .deps
            .store
            .append(&self.request.session_key, &self.request.run_id, &message)
        {
            Ok(stored) => {
                self.emit(RunEvent::MessageStored {
                    seq: stored.seq,
                    id: stored.id,
                    message: message.clone(),
                });
                Arc::make_mut(&mut self.history).push(message);
                Ok(())
            }
            Err(e) => Err(State::Failed(format!(
                "the transcript cannot be written: {e}"
            ))),
        }
    }

    fn outcome(&self, status: RunStatus, error: Option<String>) -> RunOutcome {
        RunOutcome {
            status,
            text: self.text.clone(),
            usage: self.usage.clone(),
            provider: self.answered_by.as_ref().map(|m| m.provider.clone()),
            model: self.answered_by.as_ref().map(|m| m.model.clone()),
            error,
            started_at: self.started_at,
            ended_at: self.deps.clock.now_ms(),
        }
    }

    /// The terminal arms: records the outcome and says so.
    fn end(self, status: RunStatus, error: Option<String>) -> RunOutcome {
        let outcome = self.outcome(status, error);
        let stop_reason = match status {
            RunStatus::Ok => self.stop_reason,
            RunStatus::Aborted => StopReason::Aborted,
            RunStatus::Error | RunStatus::Interrupted => StopReason::Error,
        };
        let outcome = match self.deps.store.finish_run(
            &self.request.session_key,
            &self.request.run_id,
            &outcome,
        ) {
            Ok(()) => outcome,
            Err(e) => RunOutcome {
                status: RunStatus::Error,
                error: Some(format!("the run's end cannot be stored: {e}")),
                ..outcome
            },
        };
        self.emit(RunEvent::Ended {
            outcome: outcome.clone(),
            stop_reason,
        });
        outcome
    }
}

/// Why one call did not answer.
enum Failure {
    Aborted(AssistantMessage),
    Provider {
        error: ProviderError,
        /// What was said before it failed (then no fallback is tried).
        partial: Option<AssistantMessage>,
    },
}

/// What a call streamed so far.
#[derive(Default)]
struct Accumulated {
    text: String,
    calls: BTreeMap<usize, PartialCall>,
    tokens: Option<crate::provider::TokenCounts>,
}

#[derive(Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}
