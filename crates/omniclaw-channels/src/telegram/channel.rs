//! The Telegram channel of one gateway: long polling into a durable inbox,
//! access control, the assistant's replies, confirmations, approvals, the
//! audit log — and its state for `status`.
//!
//! Start: `deleteWebhook` (long polling and a webhook exclude each other),
//! then `getMe` (a bad token shows as "unauthorized token" and nothing
//! else is tried until the token changes or a slow recheck succeeds).
//! Then `getUpdates` with a timeout, from the offset kept in the inbox.
//! Each batch is stored in the inbox in the same transaction that moves
//! the offset past it, and only then handled, beside the polling: an
//! update that takes long (a model's answer, a rescue command) never holds
//! up the next, so `/stop` and an approval's button get through while a
//! run goes on. Messages of one chat are answered in order (one lane per
//! chat); control updates (`/stop`, `/new`, `/reset`, buttons, yes/no,
//! pairing replies) are handled at once. An update is marked handled when
//! its reply is out; after a restart or a kill the ones not marked are
//! handled again, and their delivery records (run id, preview message,
//! parts sent) make sure a message gets at most one complete answer.
//! A 409 means another poller holds the token; network errors back off
//! with jitter and recover by themselves.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::types::{ChatType, Message, Update, UpdateContent, User};
use omniclaw_agent::run::RunEvent;
use omniclaw_agent::session::{dm_session, DmSender, RunOutcome, RunStatus, SessionKey};
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};

use omniclaw_core::config::{
    BreakPreference, DmPolicy, DmScope, StreamingMode, Telegram, WatchSettings,
};
use omniclaw_core::env::ChildEnv;
use omniclaw_core::profile::Profile;
use omniclaw_core::rescue::{
    self, Access, ChatCommand, Command, PairingCode, PairingOutcome, CODE_LEN, MAX_MESSAGE_CHARS,
};
use omniclaw_os::rescue::{append_audit, write_channel_status, AuditEntry, PairingStore};

use super::api::{ApiError, BotApi, Button, Me};
use super::exec::{Executor, SecretSource};
use super::format;
use super::heal::{
    self, CliRepairs, OtherProfiles, Parts, Prober, Sent, SystemClock, Tell, Watcher,
};
use super::hooks::{Approvals, Assistant, Decision, Notice, Submitted, Turn};
use super::inbox::{Delivery, Inbox};
use super::tools::{proposed, PROPOSE};

/// How long a confirmation question stays answerable.
const CONFIRM_TTL: Duration = Duration::from_secs(300);
/// Longest wait between retries after network errors.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How often a refused token is checked again.
const UNAUTHORIZED_RECHECK: Duration = Duration::from_secs(300);
/// Telegram shows "typing…" for 5 s; it is sent again before that.
const TYPING_EVERY: Duration = Duration::from_secs(4);
/// A preview is edited at most this often (Telegram's limits on edits).
const EDIT_EVERY: Duration = Duration::from_millis(1000);
/// A partial preview appears once the answer has this many characters,
/// or after [`FIRST_PREVIEW_AFTER`]: a short quick answer comes as one
/// message, not as a preview edited a moment later.
const MIN_PREVIEW_CHARS: usize = 40;
const FIRST_PREVIEW_AFTER: Duration = Duration::from_millis(1000);
/// The progress status appears when a tool starts or the run lasts this long.
const STATUS_AFTER: Duration = Duration::from_millis(2000);
/// Sends are tried again this often on flood control and network errors.
const SEND_TRIES: u32 = 5;

/// Which bot this is: the assistant of a gateway, or a rescue bot whose
/// slash commands operate on other gateways.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Assistant,
    Rescue,
}

/// `channels.telegram.streaming` and the cut of long answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Streaming {
    pub mode: StreamingMode,
    /// Cut on paragraph breaks first (`chunkMode: newline`, the default).
    pub paragraphs: bool,
    /// Characters per message (`textChunkLimit`, at most 4096).
    pub limit: usize,
    /// Tool lines in the edited preview (partial, block).
    pub preview_tools: bool,
    /// Tool lines in the progress status.
    pub progress_tools: bool,
    /// The progress status's first line (`progress.label`, `labels`).
    pub label: Label,
    /// The newest tool lines the status shows (`progress.maxLines`).
    pub max_lines: usize,
    /// Longest tool line of the status (`progress.maxLineChars`).
    pub max_line_chars: usize,
    /// Exec lines in the preview show their command (`preview.commandText:
    /// raw`).
    pub preview_commands: bool,
    /// Exec lines in the status show their command (`progress.commandText:
    /// raw`).
    pub progress_commands: bool,
    /// What the model wrote before a tool call, as a status line
    /// (`progress.commentary`).
    pub commentary: bool,
    /// How a block-mode preview grows (`preview.chunk`).
    pub preview_chunk: Chunking,
    /// Block replies (`block.enabled`): finished paragraphs sent as their
    /// own messages while the answer is written, merged by these rules.
    pub block: Option<Coalescing>,
}

/// `streaming.preview.chunk`, resolved: how a block-mode preview grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunking {
    /// The preview grows by at least this many characters an edit.
    pub min_chars: usize,
    /// ... and by this many, cut anywhere, when no break comes sooner.
    pub max_chars: usize,
    pub breaks: BreakPreference,
}

/// `streaming.block.coalesce`, resolved as OpenClaw resolves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coalescing {
    /// No block message shorter, except the last part of the answer.
    pub min_chars: usize,
    /// No block message longer; as much as this is sent at once.
    pub max_chars: usize,
    /// Merged paragraphs of at least `min_chars` go after this long
    /// without new text.
    pub idle: Duration,
}

/// One line of what a run did, for the preview and the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Activity {
    /// A tool call; `command` is an exec call's command line.
    Tool {
        name: String,
        command: Option<String>,
    },
    /// What the model wrote before a tool call (commentary).
    Said(String),
}

impl Activity {
    /// The tool line, with the command when `commands` (commandText raw);
    /// `None` for commentary.
    fn tool_line(&self, commands: bool) -> Option<String> {
        match self {
            Activity::Tool {
                name,
                command: Some(c),
            } if commands => Some(format!("🔧 {name}: {c}")),
            Activity::Tool { name, .. } => Some(format!("🔧 {name}")),
            Activity::Said(_) => None,
        }
    }
}

/// Where the finished part of `text` ends: after its last break of the
/// preferred kind, `None` when it has none.
pub fn last_break(text: &str, breaks: BreakPreference) -> Option<usize> {
    match breaks {
        BreakPreference::Paragraph => text.rfind("\n\n"),
        BreakPreference::Newline => text.rfind('\n'),
        BreakPreference::Sentence => {
            let end = text
                .char_indices()
                .zip(text.chars().skip(1))
                .filter(|((_, c), next)| matches!(c, '.' | '!' | '?') && next.is_whitespace())
                .map(|((i, c), _)| i + c.len_utf8())
                .last();
            end.max(text.rfind('\n'))
        }
    }
}

/// The byte index `n` characters into `text` (its end when shorter).
fn after_chars(text: &str, n: usize) -> usize {
    text.char_indices().nth(n).map_or(text.len(), |(i, _)| i)
}

impl Chunking {
    /// How much of `text` a block-mode preview shows, given that `shown`
    /// bytes show now: up to the last break once that adds `min_chars`,
    /// else `max_chars` more when the text ran that far without a break.
    pub fn grow(&self, text: &str, shown: usize) -> usize {
        let rest = &text[shown..];
        if let Some(cut) = break_after_text(rest, self.breaks) {
            if rest[..cut].chars().count() >= self.min_chars {
                return shown + cut;
            }
        }
        if rest.chars().count() > self.max_chars {
            let within = &rest[..after_chars(rest, self.max_chars)];
            return shown + break_after_text(within, self.breaks).unwrap_or(within.len());
        }
        shown
    }
}

/// [`last_break`], when some text comes before it.
fn break_after_text(text: &str, breaks: BreakPreference) -> Option<usize> {
    last_break(text, breaks).filter(|&at| !text[..at].trim().is_empty())
}

impl Coalescing {
    /// The next block message to send out of `pending` (the answer after
    /// what was sent): its end, when finished paragraphs amount to
    /// `max_chars` (then cut at the last paragraph end within, else at
    /// `max_chars`), or to `min_chars` and the run went quiet (`idle`).
    /// `None`: nothing to send yet (the rest goes with the final answer).
    pub fn next_block(&self, pending: &str, idle: bool) -> Option<usize> {
        let finished = break_after_text(pending, BreakPreference::Paragraph)?;
        let size = pending[..finished].chars().count();
        if size > self.max_chars {
            let within = &pending[..after_chars(pending, self.max_chars)];
            return Some(
                break_after_text(within, BreakPreference::Paragraph).unwrap_or(within.len()),
            );
        }
        (size >= self.min_chars && (idle || size == self.max_chars)).then_some(finished)
    }
}

/// The progress status's first line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Label {
    /// `label: false`: none.
    Off,
    /// A fixed line (the default, or `label: "…"`).
    Fixed(String),
    /// One of these per answer (`labels`, with `label` unset or "auto").
    Pick(Vec<String>),
}

/// The status line when the config names none.
const DEFAULT_LABEL: &str = "Working on it…";

impl Streaming {
    /// The progress status: its label (picked by `seed` among several) and
    /// the newest tool lines, each at most `max_line_chars`; `None` when
    /// that is nothing.
    fn status(&self, activity: &[Activity], seed: u64) -> Option<String> {
        let label = match &self.label {
            Label::Off => None,
            Label::Fixed(l) => Some(l.clone()),
            Label::Pick(ls) => usize::try_from(seed)
                .ok()
                .and_then(|n| ls.get(n % ls.len().max(1)))
                .cloned(),
        };
        let mut lines: Vec<String> = label.map(|l| format!("⏳ {l}")).into_iter().collect();
        let shown: Vec<String> = activity
            .iter()
            .filter_map(|a| match a {
                Activity::Said(said) if self.commentary => Some(format!("💬 {said}")),
                Activity::Said(_) => None,
                tool if self.progress_tools => tool.tool_line(self.progress_commands),
                _ => None,
            })
            .collect();
        let skip = shown.len().saturating_sub(self.max_lines);
        lines.extend(shown[skip..].iter().map(|line| {
            if line.chars().count() <= self.max_line_chars {
                line.clone()
            } else {
                let kept: String = line
                    .chars()
                    .take(self.max_line_chars.saturating_sub(1))
                    .collect();
                format!("{kept}…")
            }
        }));
        (!lines.is_empty()).then(|| lines.join("\n"))
    }
}

impl Streaming {
    pub fn from_config(tg: &Telegram) -> Streaming {
        use omniclaw_core::config::{ChunkMode, CommandText};
        let limit = tg
            .text_chunk_limit
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(4000)
            .clamp(1, MAX_MESSAGE_CHARS);
        Streaming {
            mode: tg.streaming.mode.unwrap_or(StreamingMode::Progress),
            // OpenClaw's default is "length": the last line break that fits.
            paragraphs: tg.streaming.chunk_mode == Some(ChunkMode::Newline),
            limit,
            preview_tools: tg.streaming.preview_tool_progress.unwrap_or(true),
            // As OpenClaw: progress.toolProgress, else preview.toolProgress.
            progress_tools: tg
                .streaming
                .progress_tool_progress
                .or(tg.streaming.preview_tool_progress)
                .unwrap_or(false),
            // As OpenClaw: false shows none, a label other than "auto" is
            // that line, else one of labels, else the default.
            label: match &tg.streaming.progress_label {
                Some(None) => Label::Off,
                Some(Some(l)) if !l.trim().is_empty() && !l.trim().eq_ignore_ascii_case("auto") => {
                    Label::Fixed(l.trim().to_string())
                }
                _ if !tg.streaming.progress_labels.is_empty() => {
                    Label::Pick(tg.streaming.progress_labels.clone())
                }
                _ => Label::Fixed(DEFAULT_LABEL.to_string()),
            },
            max_lines: tg
                .streaming
                .progress_max_lines
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(8),
            max_line_chars: tg
                .streaming
                .progress_max_line_chars
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(120),
            preview_commands: tg.streaming.preview_command_text == Some(CommandText::Raw),
            progress_commands: tg.streaming.progress_command_text == Some(CommandText::Raw),
            commentary: tg.streaming.progress_commentary.unwrap_or(false),
            preview_chunk: {
                // OpenClaw's draft chunk defaults, capped by the limit.
                let c = &tg.streaming.preview_chunk;
                let max = size(c.max_chars, 800).min(limit);
                Chunking {
                    min_chars: size(c.min_chars, 200).min(max),
                    max_chars: max,
                    breaks: c.break_preference.unwrap_or(BreakPreference::Paragraph),
                }
            },
            block: (tg.streaming.block_enabled == Some(true)).then(|| {
                // As OpenClaw: at most its block chunk size (1200) and the
                // limit; at least 800 unless set; idle 1 s, at most 5 s.
                let c = &tg.streaming.block_coalesce;
                let max = size(c.max_chars, limit).min(1200).min(limit);
                Coalescing {
                    min_chars: size(c.min_chars, 800).min(max),
                    max_chars: max,
                    idle: Duration::from_millis(c.idle_ms.unwrap_or(1000).min(5000)),
                }
            }),
        }
    }
}

/// A configured size, else `default`.
fn size(n: Option<u64>, default: usize) -> usize {
    n.and_then(|n| usize::try_from(n).ok())
        .unwrap_or(default)
        .max(1)
}

/// What the channel runs with; built from the config and the keychain.
#[derive(Clone, PartialEq)]
pub struct Settings {
    pub profile: Profile,
    pub state_dir: PathBuf,
    pub api_root: String,
    pub token: String,
    pub policy: DmPolicy,
    pub allow_from: Vec<u64>,
    /// `rescue.targets`; empty means every other profile.
    pub targets: Vec<Profile>,
    /// The `omniclaw` binary rescue commands run.
    pub program: PathBuf,
    /// The whole environment rescue commands run with.
    pub child_env: ChildEnv,
    /// Long-poll timeout of `getUpdates`.
    pub poll_timeout: Duration,
    pub role: Role,
    pub streaming: Streaming,
    /// `session.dmScope` as configured.
    pub dm_scope: Option<DmScope>,
    /// The whole `channels.telegram` section (group rules).
    pub telegram: Telegram,
    /// `rescue.watch.*` (a rescue bot watches `targets` when enabled).
    pub watch: WatchSettings,
}

impl Settings {
    /// Whether `other` differs from these in `rescue.watch.*` alone: that
    /// applies to the running watch without a new channel.
    pub fn same_but_watch(&self, other: &Settings) -> bool {
        let mut a = self.clone();
        a.watch = other.watch.clone();
        &a == other
    }
}

// The token never reaches a log line.
impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("profile", &self.profile)
            .field("api_root", &self.api_root)
            .field("token", &"<redacted>")
            .field("policy", &self.policy)
            .field("allow_from", &self.allow_from)
            .field("targets", &self.targets)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// What a channel is handed besides its settings: the gateway's assistant
/// and approvals, when it has them, and the secret values a rescue bot
/// masks in what it reads about other gateways (besides its own token).
#[derive(Clone, Default)]
pub struct Hooks {
    pub assistant: Option<Arc<dyn Assistant>>,
    pub approvals: Option<Arc<dyn Approvals>>,
    pub secrets: Option<Arc<dyn SecretSource>>,
    /// Checks the rescue's targets, for its watch.
    pub prober: Option<Arc<dyn Prober>>,
}

/// Where the channel is; shown by `status`, `channels.status` and the tray.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelState {
    Starting,
    Running { bot: String },
    Unauthorized,
    Conflict,
    Offline { reason: String, retry_in: Duration },
    Failed { reason: String },
    Stopped,
}

impl ChannelState {
    /// One word for machines.
    pub fn word(&self) -> &'static str {
        match self {
            ChannelState::Starting => "starting",
            ChannelState::Running { .. } => "running",
            ChannelState::Unauthorized => "unauthorized",
            ChannelState::Conflict => "conflict",
            ChannelState::Offline { .. } => "offline",
            ChannelState::Failed { .. } => "failed",
            ChannelState::Stopped => "stopped",
        }
    }

    /// A line for people.
    pub fn summary(&self) -> String {
        match self {
            ChannelState::Starting => "starting".into(),
            ChannelState::Running { bot } => format!("running as @{bot}"),
            ChannelState::Unauthorized => "unauthorized token".into(),
            ChannelState::Conflict => "another poller uses this bot token".into(),
            ChannelState::Offline { reason, retry_in } => {
                format!(
                    "offline: {reason} (retrying in {} s)",
                    retry_in.as_secs().max(1)
                )
            }
            ChannelState::Failed { reason } => format!("failed: {reason}"),
            ChannelState::Stopped => "stopped".into(),
        }
    }

    /// The `channels.status` entry fields.
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "state": self.word(),
            "running": matches!(self, ChannelState::Running { .. }),
            "summary": self.summary(),
        });
        if let ChannelState::Running { bot } = self {
            v["bot"] = json!(format!("@{bot}"));
        }
        if let ChannelState::Failed { reason } | ChannelState::Offline { reason, .. } = self {
            v["lastError"] = json!(reason);
        }
        v
    }
}

/// A running channel. Dropping it stops the poller and what it started.
pub struct Channel {
    state: watch::Receiver<ChannelState>,
    stop: watch::Sender<bool>,
    rewatch: watch::Sender<(WatchSettings, Vec<Profile>)>,
    task: Option<JoinHandle<()>>,
    settings: Settings,
}

impl Channel {
    /// Starts polling with `settings`. Must run inside a Tokio runtime.
    pub fn start(settings: Settings, hooks: Hooks) -> Channel {
        let (state_tx, state) = watch::channel(ChannelState::Starting);
        let (stop, stop_rx) = watch::channel(false);
        let (rewatch, rewatch_rx) =
            watch::channel((settings.watch.clone(), settings.targets.clone()));
        let poller = Poller {
            settings: settings.clone(),
            hooks,
            state: state_tx,
            stop: stop_rx,
            rewatch: rewatch_rx,
        };
        let task = tokio::spawn(poller.run());
        Channel {
            state,
            stop,
            rewatch,
            task: Some(task),
            settings,
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Applies `settings` when they differ in `rescue.watch.*` alone (the
    /// watch keeps its state and budget); `false` when they differ in more
    /// and need a new channel.
    pub fn rewatch(&mut self, settings: &Settings) -> bool {
        if !self.settings.same_but_watch(settings) {
            return false;
        }
        self.settings.watch = settings.watch.clone();
        let _ = self
            .rewatch
            .send((settings.watch.clone(), settings.targets.clone()));
        true
    }

    /// A receiver of the state, for status reporting.
    pub fn state(&self) -> watch::Receiver<ChannelState> {
        self.state.clone()
    }

    /// Stops polling, lets the replies in hand finish for up to `grace`,
    /// then drops the rest: the inbox has them, and the next start finishes
    /// them.
    pub async fn stop(mut self, grace: Duration) {
        let _ = self.stop.send(true);
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(grace, &mut task).await.is_err() {
                task.abort();
            }
        }
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

struct Confirm {
    nonce: String,
    command: Command,
    chat_id: i64,
    asked: Instant,
}

/// Who sent an update, for replies and the audit log.
#[derive(Debug, Clone)]
struct Sender {
    id: u64,
    who: String,
}

impl Sender {
    fn of(u: &User) -> Sender {
        let who = match &u.username {
            Some(name) => format!("@{name}"),
            None => u.first_name.clone(),
        };
        Sender { id: u.id, who }
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A random fraction in [0, 1) for backoff jitter.
fn jitter() -> f64 {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    f64::from(u16::from_le_bytes([bytes[0], bytes[1]])) / 65536.0
}

/// Doubling backoff from 1 s to [`MAX_BACKOFF`], each wait between 75 % and 125 %.
fn backoff(failures: u32) -> Duration {
    let base = Duration::from_secs(1u64 << failures.min(6)).min(MAX_BACKOFF);
    base.mul_f64(0.75 + 0.5 * jitter())
}

struct Poller {
    settings: Settings,
    hooks: Hooks,
    state: watch::Sender<ChannelState>,
    stop: watch::Receiver<bool>,
    rewatch: watch::Receiver<(WatchSettings, Vec<Profile>)>,
}

/// Work for a chat's lane, done in the order it came.
enum Job {
    /// A message for the assistant.
    Turn(TurnJob),
    /// A rescue command (it may take a while: it runs `omniclaw`).
    Rescue {
        update_id: i64,
        sender: Sender,
        chat_id: i64,
        message_id: i32,
        command: Command,
    },
}

struct TurnJob {
    update_id: i64,
    sender: Sender,
    chat_id: i64,
    message_id: i32,
    key: SessionKey,
    text: String,
    owner: bool,
    /// `/stop`s of this chat when it was queued: a later one drops it.
    stops_seen: u64,
}

/// An approval question sent to an operator: (chat, message, its text).
type Prompt = (i64, i32, String);

/// What every task of the channel shares.
struct Shared {
    settings: Settings,
    hooks: Hooks,
    api: BotApi,
    inbox: Inbox,
    bot: Me,
    /// The open confirmation question per operator.
    confirms: Mutex<HashMap<u64, Confirm>>,
    /// Approval prompts sent, by approval id.
    prompts: Mutex<HashMap<String, Vec<Prompt>>>,
    /// `/stop`s per chat, so that turns queued before one are dropped.
    stops: Mutex<HashMap<i64, u64>>,
    /// Per chat, until when Telegram's flood control holds it (a 429's
    /// `retry_after`): no message is sent, edited or deleted there before.
    flood: Mutex<HashMap<i64, Instant>>,
    /// A rescue bot's watch of its targets (when it has a prober).
    watcher: Option<Arc<tokio::sync::Mutex<Watcher>>>,
}

/// Until when flood control holds `chat`, while it does.
fn flood_until(s: &Shared, chat: i64) -> Option<Instant> {
    lock(&s.flood)
        .get(&chat)
        .copied()
        .filter(|until| *until > Instant::now())
}

/// Records a 429 for `chat`: nothing goes there for `secs` seconds.
fn flooded(s: &Shared, chat: i64, secs: u64) -> Instant {
    let until = Instant::now() + Duration::from_secs(secs.max(1));
    lock(&s.flood).insert(chat, until);
    tracing::warn!(
        chat,
        secs,
        "Telegram's flood control: waiting before the next message"
    );
    until
}

/// Waits out flood control on `chat`, if any.
async fn wait_flood(s: &Shared, chat: i64) {
    if let Some(until) = flood_until(s, chat) {
        tokio::time::sleep_until(tokio::time::Instant::from_std(until)).await;
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Poller {
    fn set(&self, s: ChannelState) {
        set_state(&self.state, &self.settings, s);
    }

    /// Sleeps `d` unless asked to stop; `false` when stopping.
    async fn pause(&mut self, d: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(d) => true,
            _ = self.stop.wait_for(|s| *s) => false,
        }
    }

    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    async fn run(mut self) {
        let api = match BotApi::new(
            &self.settings.api_root,
            &self.settings.token,
            self.settings.poll_timeout,
        ) {
            Ok(a) => a,
            Err(e) => {
                self.set(ChannelState::Failed {
                    reason: e.to_string(),
                });
                return;
            }
        };
        // A rescue's watch needs no Telegram: it starts before the bot
        // reaches it, repairs and audits as usual, and its reports wait
        // for the operators' chats (`Operators`).
        let operators = Arc::new(Operators::default());
        let watcher = match self.settings.role {
            Role::Rescue => self.hooks.prober.clone(),
            Role::Assistant => None,
        }
        .map(|prober| {
            Arc::new(tokio::sync::Mutex::new(watcher(
                &self.settings,
                self.hooks.secrets.as_ref(),
                prober,
                operators.clone(),
            )))
        });
        let mut tasks = JoinSet::new();
        if let Some(w) = &watcher {
            tasks.spawn(heal::run(
                w.clone(),
                self.rewatch.clone(),
                self.stop.clone(),
            ));
        }
        let Some(bot) = self.introduce(&api).await else {
            self.set(ChannelState::Stopped);
            return;
        };
        let inbox = {
            let dir = self.settings.state_dir.clone();
            match tokio::task::spawn_blocking(move || Inbox::open(&dir)).await {
                Ok(Ok(i)) => i,
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "the telegram inbox cannot be opened");
                    self.set(ChannelState::Failed {
                        reason: e.to_string(),
                    });
                    return;
                }
                Err(e) => {
                    self.set(ChannelState::Failed {
                        reason: e.to_string(),
                    });
                    return;
                }
            }
        };
        let mut offset = match inbox.offset() {
            Ok(o) => o,
            Err(e) => {
                self.set(ChannelState::Failed {
                    reason: e.to_string(),
                });
                return;
            }
        };
        let shared = Arc::new(Shared {
            settings: self.settings.clone(),
            hooks: self.hooks.clone(),
            api: api.clone(),
            inbox,
            bot: bot.clone(),
            confirms: Mutex::new(HashMap::new()),
            prompts: Mutex::new(HashMap::new()),
            stops: Mutex::new(HashMap::new()),
            flood: Mutex::new(HashMap::new()),
            watcher,
        });
        operators.reached(Arc::downgrade(&shared)).await;
        let mut lanes: HashMap<i64, mpsc::UnboundedSender<Job>> = HashMap::new();
        if let Some(approvals) = &self.hooks.approvals {
            tasks.spawn(watch_approvals(shared.clone(), approvals.subscribe()));
        }
        // What a previous run left unhandled goes first, in order.
        match shared.inbox.open_updates() {
            Ok(open) => {
                if !open.is_empty() {
                    tracing::info!(
                        updates = open.len(),
                        "telegram updates left from before are handled again"
                    );
                }
                for stored in open {
                    match Update::parse(&stored.body) {
                        Ok(update) => dispatch(&shared, &mut tasks, &mut lanes, update),
                        Err(e) => {
                            tracing::warn!(update = stored.update_id, error = %e, "a stored telegram update cannot be read; skipped");
                            let _ = shared.inbox.handled(stored.update_id, "unreadable");
                        }
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot read the telegram inbox"),
        }
        self.set(ChannelState::Running {
            bot: bot.username.clone(),
        });
        tracing::info!(bot = %bot.username, offset, "telegram channel polling");
        let mut failures = 0u32;
        loop {
            if self.stopping() {
                break;
            }
            // Finished tasks are reaped so the set does not grow.
            while tasks.try_join_next().is_some() {}
            let polled = tokio::select! {
                r = api.get_updates(offset, self.settings.poll_timeout) => r,
                _ = self.stop.wait_for(|s| *s) => break,
            };
            match polled {
                Ok(updates) => {
                    failures = 0;
                    self.set(ChannelState::Running {
                        bot: bot.username.clone(),
                    });
                    let batch: Vec<(i64, String)> = updates
                        .iter()
                        .filter(|u| u.update_id >= offset)
                        .map(|u| (u.update_id, u.raw.clone()))
                        .collect();
                    if batch.is_empty() {
                        continue;
                    }
                    let fresh = match shared.inbox.store(&batch) {
                        Ok(f) => f,
                        Err(e) => {
                            tracing::error!(error = %e, "cannot store telegram updates; stopping the channel so none is lost");
                            self.set(ChannelState::Failed {
                                reason: e.to_string(),
                            });
                            return;
                        }
                    };
                    offset = shared.inbox.offset().unwrap_or(offset);
                    for update in updates {
                        if fresh.contains(&update.update_id) {
                            dispatch(&shared, &mut tasks, &mut lanes, update);
                        }
                    }
                }
                Err(e) => {
                    let wait = on_error(&self.state, &self.settings, &e, failures);
                    failures = failures.saturating_add(1);
                    if !self.pause(wait).await {
                        break;
                    }
                }
            }
        }
        // The lanes finish what they hold; the caller's grace bounds it.
        drop(lanes);
        self.set(ChannelState::Stopped);
        while tasks.join_next().await.is_some() {}
    }

    /// `deleteWebhook` and `getMe`, retried until they work or the channel
    /// stops.
    async fn introduce(&mut self, api: &BotApi) -> Option<Me> {
        let mut failures = 0u32;
        loop {
            let result = match api.delete_webhook().await {
                Ok(()) => api.get_me().await,
                Err(e) => Err(e),
            };
            match result {
                Ok(me) => return Some(me),
                Err(e) => {
                    let wait = on_error(&self.state, &self.settings, &e, failures);
                    failures = failures.saturating_add(1);
                    if !self.pause(wait).await {
                        return None;
                    }
                }
            }
        }
    }
}

fn set_state(state: &watch::Sender<ChannelState>, settings: &Settings, s: ChannelState) {
    if *state.borrow() == s {
        return;
    }
    if let Err(e) = write_channel_status(&settings.state_dir, &s.to_json()) {
        tracing::warn!(error = %e, "cannot record the telegram channel state");
    }
    state.send_replace(s);
}

/// Shows `e` in the state and says how long to wait before trying again.
fn on_error(
    state: &watch::Sender<ChannelState>,
    settings: &Settings,
    e: &ApiError,
    failures: u32,
) -> Duration {
    match e {
        ApiError::Unauthorized => {
            tracing::error!(error = %e, "telegram channel");
            set_state(state, settings, ChannelState::Unauthorized);
            UNAUTHORIZED_RECHECK
        }
        ApiError::Conflict => {
            tracing::warn!(error = %e, "telegram channel");
            set_state(state, settings, ChannelState::Conflict);
            backoff(failures.max(2))
        }
        ApiError::RetryAfter(s) => Duration::from_secs(*s),
        other => {
            let wait = backoff(failures);
            // The log keeps the whole chain for whoever digs; status shows the sentence.
            let detail = match other {
                ApiError::Network { reason, .. } => reason.as_str(),
                _ => "",
            };
            tracing::warn!(error = %other, detail, retry_in_ms = wait.as_millis() as u64, "telegram channel");
            set_state(
                state,
                settings,
                ChannelState::Offline {
                    reason: other.to_string(),
                    retry_in: wait,
                },
            );
            wait
        }
    }
}

/// Routes one update: control at once, the rest to its chat's lane.
fn dispatch(
    shared: &Arc<Shared>,
    tasks: &mut JoinSet<()>,
    lanes: &mut HashMap<i64, mpsc::UnboundedSender<Job>>,
    update: Update,
) {
    let update_id = update.update_id;
    let mut lane = |chat: i64, job: Job| {
        let tx = lanes.entry(chat).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tasks.spawn(run_lane(shared.clone(), rx));
            tx
        });
        if let Err(e) = tx.send(job) {
            // The lane ended (it panicked): a new one takes the job.
            let (tx2, rx) = mpsc::unbounded_channel();
            tasks.spawn(run_lane(shared.clone(), rx));
            let _ = tx2.send(e.0);
            lanes.insert(chat, tx2);
        }
    };
    match update.content {
        UpdateContent::Message(m) => match route(shared, update_id, &m) {
            Route::Done(result) => {
                let _ = shared.inbox.handled(update_id, result);
            }
            Route::Now(work) => {
                let s = shared.clone();
                tasks.spawn(async move {
                    let result = work.run(&s).await;
                    let _ = s.inbox.handled(update_id, result);
                });
            }
            Route::Lane(chat, job) => lane(chat, job),
        },
        UpdateContent::CallbackQuery(q) => {
            let s = shared.clone();
            tasks.spawn(async move {
                let sender = Sender::of(&q.from);
                let chat_id = q.message.as_ref().map(|m| m.chat.id);
                let data = q.data.clone().unwrap_or_default();
                on_callback(&s, &sender, &q.id, chat_id, &data).await;
                let _ = s.inbox.handled(update_id, "button");
            });
        }
        UpdateContent::Other => {
            let _ = shared.inbox.handled(update_id, "ignored");
        }
    }
}

/// Where a message goes.
enum Route {
    /// Nothing to do (ignored), with the word recorded.
    Done(&'static str),
    /// Handled at once, beside the lanes.
    Now(Now),
    /// Queued on the chat's lane.
    Lane(i64, Job),
}

/// Quick work that must not wait behind a running turn.
enum Now {
    Reply {
        chat_id: i64,
        message_id: i32,
        text: String,
        result: &'static str,
    },
    Pairing {
        sender: Sender,
        chat_id: i64,
        message_id: i32,
    },
    Stop {
        chat_id: i64,
        message_id: i32,
        key: SessionKey,
    },
    Reset {
        chat_id: i64,
        message_id: i32,
        key: SessionKey,
        new: bool,
    },
    Answer {
        sender: Sender,
        yes: bool,
    },
    Refused {
        sender: Sender,
        chat_id: i64,
        message_id: i32,
        text: String,
        reply: String,
    },
}

impl Now {
    async fn run(self, s: &Arc<Shared>) -> &'static str {
        match self {
            Now::Reply {
                chat_id,
                message_id,
                text,
                result,
            } => {
                reply(s, chat_id, Some(message_id), &text, &[]).await;
                result
            }
            Now::Pairing {
                sender,
                chat_id,
                message_id,
            } => {
                let text = pairing_reply(s, &sender, chat_id);
                reply(s, chat_id, Some(message_id), &text, &[]).await;
                "pairing reply"
            }
            Now::Stop {
                chat_id,
                message_id,
                key,
            } => {
                *lock(&s.stops).entry(chat_id).or_default() += 1;
                let aborted = s
                    .hooks
                    .assistant
                    .as_ref()
                    .map_or(0, |a| a.abort(&key).len());
                let text = if aborted > 0 {
                    "Stopped."
                } else {
                    "Nothing to stop: no answer is being written."
                };
                reply(s, chat_id, Some(message_id), text, &[]).await;
                "stop"
            }
            Now::Reset {
                chat_id,
                message_id,
                key,
                new,
            } => {
                *lock(&s.stops).entry(chat_id).or_default() += 1;
                let text = match &s.hooks.assistant {
                    Some(a) => {
                        a.abort(&key);
                        match a.reset(&key, new) {
                            Ok(()) => "New session started: the assistant has forgotten this conversation.".to_string(),
                            Err(e) => format!("The session could not be reset: {e}"),
                        }
                    }
                    None => "This bot runs no assistant.".to_string(),
                };
                reply(s, chat_id, Some(message_id), &text, &[]).await;
                "reset"
            }
            Now::Answer { sender, yes } => {
                let open = lock(&s.confirms).remove(&sender.id);
                if let Some(c) = open {
                    confirmed(s, &sender, c, yes).await;
                }
                "confirmation answer"
            }
            Now::Refused {
                sender,
                chat_id,
                message_id,
                text,
                reply: answer,
            } => {
                audit(s, &sender, &text, &format!("refused: {answer}"));
                reply(s, chat_id, Some(message_id), &answer, &[]).await;
                "refused"
            }
        }
    }
}

/// The user's own words of a message, when it has any.
fn text_of(m: &Message) -> Option<&str> {
    m.text.as_deref().filter(|t| !t.trim().is_empty())
}

/// A message the assistant cannot read: a photo, a voice note, a file…
fn is_media(m: &Message) -> bool {
    m.photo.is_some()
        || m.document.is_some()
        || m.voice.is_some()
        || m.audio.is_some()
        || m.video.is_some()
        || m.video_note.is_some()
        || m.sticker.is_some()
        || m.animation.is_some()
        || m.location.is_some()
        || m.contact.is_some()
}

const MEDIA_REPLY: &str = "I can only read text. Send your question as a message (describe the picture, paste the text of the file).";

fn access(s: &Shared, user: u64) -> Access {
    let approved = approved_users(s);
    rescue::access(s.settings.policy, &s.settings.allow_from, &approved, user)
}

fn approved_users(s: &Shared) -> Vec<u64> {
    if s.settings.policy != DmPolicy::Pairing {
        return Vec::new();
    }
    PairingStore::new(&s.settings.state_dir)
        .load()
        .map(|p| p.approved)
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot read the pairing store");
            Vec::new()
        })
}

fn is_operator(s: &Shared, user: u64) -> bool {
    let rescue_bot = s.settings.role == Role::Rescue;
    let approved = if rescue_bot {
        approved_users(s)
    } else {
        Vec::new()
    };
    rescue::is_operator(&s.settings.allow_from, &approved, rescue_bot, user)
}

/// The session of a private chat with `sender`.
fn dm_key(s: &Shared, sender: &Sender, owner: bool) -> SessionKey {
    let scope =
        omniclaw_agent::session::default_dm_scope(s.settings.dm_scope, s.settings.allow_from.len());
    let peer = sender.id.to_string();
    dm_session(
        scope,
        omniclaw_agent::session::DEFAULT_AGENT,
        &DmSender {
            channel: "telegram",
            account: None,
            peer: &peer,
            is_owner: owner,
        },
    )
}

fn has_model(s: &Shared) -> bool {
    s.hooks.assistant.as_ref().is_some_and(|a| a.has_model())
}

fn route(s: &Arc<Shared>, update_id: i64, m: &Message) -> Route {
    let Some(from) = m.from.as_deref() else {
        return Route::Done("no sender");
    };
    let sender = Sender::of(from);
    let chat_id = m.chat.id;
    let message_id = m.message_id;
    if m.chat.type_field != ChatType::Private {
        return route_group(s, update_id, m, sender);
    }
    match access(s, sender.id) {
        Access::Ignore => return Route::Done("ignored: not allowed"),
        Access::Pair => {
            return Route::Now(Now::Pairing {
                sender,
                chat_id,
                message_id,
            })
        }
        Access::Operator => {}
    }
    let Some(text) = text_of(m) else {
        if is_media(m) {
            return Route::Now(Now::Reply {
                chat_id,
                message_id,
                text: MEDIA_REPLY.into(),
                result: "media",
            });
        }
        return Route::Done("ignored: no text");
    };
    let owner = s.settings.allow_from.contains(&sender.id);
    let key = dm_key(s, &sender, owner);
    if let Some(cmd) = rescue::chat_command(text) {
        match (cmd, s.settings.role) {
            (ChatCommand::Stop, _) => {
                return Route::Now(Now::Stop {
                    chat_id,
                    message_id,
                    key,
                })
            }
            (ChatCommand::New | ChatCommand::Reset, _) => {
                return Route::Now(Now::Reset {
                    chat_id,
                    message_id,
                    key,
                    new: cmd == ChatCommand::New,
                })
            }
            (ChatCommand::Help, Role::Assistant) => {
                return Route::Now(Now::Reply {
                    chat_id,
                    message_id,
                    text: assistant_help(has_model(s)),
                    result: "help",
                })
            }
            // The rescue bot's /start and /help are its commands' help.
            (ChatCommand::Help, Role::Rescue) => {}
        }
    }
    let turn = |text: &str| {
        Route::Lane(
            chat_id,
            Job::Turn(TurnJob {
                update_id,
                sender: sender.clone(),
                chat_id,
                message_id,
                key: key.clone(),
                text: text.to_string(),
                owner,
                stops_seen: lock(&s.stops).get(&chat_id).copied().unwrap_or(0),
            }),
        )
    };
    match s.settings.role {
        Role::Assistant => turn(text),
        Role::Rescue => {
            let answer = text.trim().to_ascii_lowercase();
            if matches!(answer.as_str(), "yes" | "y" | "no" | "n")
                && lock(&s.confirms).contains_key(&sender.id)
            {
                return Route::Now(Now::Answer {
                    sender,
                    yes: answer.starts_with('y'),
                });
            }
            match rescue::parse(text) {
                Ok(command) => Route::Lane(
                    chat_id,
                    Job::Rescue {
                        update_id,
                        sender,
                        chat_id,
                        message_id,
                        command,
                    },
                ),
                // Free text is for the rescue assistant, when it has a model.
                Err(rescue::ParseError::NotACommand) if has_model(s) => turn(text),
                Err(e) => Route::Now(Now::Refused {
                    sender,
                    chat_id,
                    message_id,
                    text: text.trim().to_string(),
                    reply: e.to_string(),
                }),
            }
        }
    }
}

/// Group messages: only the assistant bot answers, and only where the
/// group rules allow it and it is addressed.
fn route_group(s: &Arc<Shared>, update_id: i64, m: &Message, sender: Sender) -> Route {
    if s.settings.role == Role::Rescue {
        return Route::Done("ignored: group");
    }
    let Some(text) = text_of(m) else {
        return Route::Done("ignored: group message without text");
    };
    let handle = format!("@{}", s.bot.username.to_lowercase());
    let mentioned = text.to_lowercase().contains(&handle)
        || m.reply_to_message
            .as_deref()
            .and_then(|r| r.from.as_deref())
            .is_some_and(|u| u.id == s.bot.id);
    if !rescue::group_allowed(&s.settings.telegram, m.chat.id, sender.id, mentioned) {
        return Route::Done("ignored: group not allowed or bot not addressed");
    }
    let key = match SessionKey::parse(
        &format!("agent:main:telegram:group:{}", m.chat.id),
        omniclaw_agent::session::DEFAULT_AGENT,
    ) {
        Ok(k) => k,
        Err(_) => return Route::Done("ignored: group"),
    };
    let chat_id = m.chat.id;
    let message_id = m.message_id;
    // The bot's handle is how it was addressed, not part of the question.
    let clean = remove_handle(text, &s.bot.username);
    match rescue::chat_command(&clean).or_else(|| rescue::chat_command(text)) {
        Some(ChatCommand::Stop) => Route::Now(Now::Stop {
            chat_id,
            message_id,
            key,
        }),
        Some(cmd @ (ChatCommand::New | ChatCommand::Reset)) => Route::Now(Now::Reset {
            chat_id,
            message_id,
            key,
            new: cmd == ChatCommand::New,
        }),
        Some(ChatCommand::Help) => Route::Now(Now::Reply {
            chat_id,
            message_id,
            text: assistant_help(has_model(s)),
            result: "help",
        }),
        None => Route::Lane(
            chat_id,
            Job::Turn(TurnJob {
                update_id,
                owner: s.settings.allow_from.contains(&sender.id),
                sender,
                chat_id,
                message_id,
                key,
                text: clean,
                stops_seen: lock(&s.stops).get(&chat_id).copied().unwrap_or(0),
            }),
        ),
    }
}

fn remove_handle(text: &str, username: &str) -> String {
    let handle = format!("@{username}");
    let mut out = String::new();
    let lower = text.to_lowercase();
    let needle = handle.to_lowercase();
    let mut at = 0;
    while let Some(found) = lower[at..].find(&needle) {
        out.push_str(&text[at..at + found]);
        at += found + needle.len();
    }
    out.push_str(&text[at..]);
    out.trim().to_string()
}

fn assistant_help(has_model: bool) -> String {
    let mut text = String::from(
        "Write to me and the assistant answers.\n/new or /reset — start a new conversation\n/stop — stop the answer being written",
    );
    if !has_model {
        text.push_str("\n\nNo model is set up yet, so there is nobody to answer: the operator sets one with `omniclaw onboard` (or agents.defaults.model).");
    }
    text
}

/// A chat's lane: its jobs one after the other.
async fn run_lane(s: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Job>) {
    while let Some(job) = rx.recv().await {
        match job {
            Job::Turn(turn) => {
                let stops = lock(&s.stops).get(&turn.chat_id).copied().unwrap_or(0);
                let result = if stops > turn.stops_seen {
                    "dropped by /stop"
                } else {
                    answer_turn(&s, &turn).await
                };
                let _ = s.inbox.handled(turn.update_id, result);
            }
            Job::Rescue {
                update_id,
                sender,
                chat_id,
                message_id,
                command,
            } => {
                on_command(&s, &sender, chat_id, message_id, command).await;
                let _ = s.inbox.handled(update_id, "rescue command");
            }
        }
    }
}

// ---- the assistant's answer -------------------------------------------------

/// What a turn's reply shows while the run lasts.
struct Live {
    text: String,
    activity: Vec<Activity>,
    /// The part of `text` already turned into commentary.
    said: usize,
    /// The part of `text` a block-mode preview shows.
    shown: usize,
    /// When merged block replies go if no text comes meanwhile.
    block_due: Option<tokio::time::Instant>,
    started: Instant,
    last_edit: Option<Instant>,
    /// Previews are off after a failure.
    previews_off: bool,
    /// `rescue_propose` calls by call id, and those that were accepted.
    proposing: HashMap<String, Value>,
    proposals: Vec<Value>,
}

fn base_run_id(s: &Shared, update_id: i64) -> String {
    format!("tg:{}:{update_id}", s.bot.id)
}

/// Answers one message through the assistant and records each step in
/// the inbox; a turn left by a kill is finished, marked interrupted or
/// asked again, by what its record says.
async fn answer_turn(s: &Arc<Shared>, job: &TurnJob) -> &'static str {
    let Some(assistant) = s.hooks.assistant.clone().filter(|a| a.has_model()) else {
        reply(
            s,
            job.chat_id,
            Some(job.message_id),
            "No model is set up for this assistant yet: the operator sets one with `omniclaw onboard` (or agents.defaults.model and models.providers).",
            &[],
        )
        .await;
        return "no model";
    };
    let stored = s.inbox.get(job.update_id).ok().flatten();
    let mut rec = stored
        .and_then(|st| st.delivery)
        .unwrap_or_else(|| Delivery {
            run_id: base_run_id(s, job.update_id),
            attempt: 1,
            chat_id: job.chat_id,
            reply_to: job.message_id,
            session_key: job.key.to_string(),
            ..Delivery::default()
        });
    if rec.finished {
        return "answered";
    }
    loop {
        save(s, job.update_id, &rec);
        let turn = Turn {
            key: job.key.clone(),
            run_id: rec.run_id.clone(),
            message: job.text.clone(),
            sender_is_owner: job.owner,
        };
        let outcome = match assistant.submit(turn) {
            Err(why) => {
                reply(
                    s,
                    job.chat_id,
                    Some(job.message_id),
                    &format!("The assistant cannot take this message: {why}"),
                    &[],
                )
                .await;
                return "refused";
            }
            Ok(Submitted::Started(events)) => {
                // Nothing of an earlier attempt is visible any more.
                clear_status(s, &mut rec, job.update_id).await;
                stream(s, job, &mut rec, events).await
            }
            Ok(Submitted::InFlight) => wait_outcome(assistant.as_ref(), &rec.run_id).await,
            Ok(Submitted::Done(outcome)) => Some((outcome, Vec::new())),
        };
        let Some((outcome, proposals)) = outcome else {
            return "channel stopped";
        };
        if outcome.status == RunStatus::Interrupted {
            if rec.preview_has_answer || rec.parts_sent > 0 || rec.block_chars > 0 {
                mark_interrupted(s, job, &mut rec).await;
                return "interrupted";
            }
            // Nothing of it was seen: the model is asked again.
            clear_status(s, &mut rec, job.update_id).await;
            rec.attempt += 1;
            rec.run_id = format!("{}:{}", base_run_id(s, job.update_id), rec.attempt);
            tracing::info!(run = %rec.run_id, "a turn cut by a restart is asked again (nothing of it was sent)");
            continue;
        }
        finish(s, job, &mut rec, &outcome).await;
        for args in proposals {
            propose(s, job, &args).await;
        }
        return match outcome.status {
            RunStatus::Ok => "answered",
            RunStatus::Error => "failed",
            _ => "stopped",
        };
    }
}

fn save(s: &Shared, update_id: i64, rec: &Delivery) {
    if let Err(e) = s.inbox.save_delivery(update_id, rec) {
        tracing::error!(error = %e, "cannot record how far a telegram reply got");
    }
}

/// Waits for a run this process started before the channel restarted.
async fn wait_outcome(assistant: &dyn Assistant, run_id: &str) -> Option<(RunOutcome, Vec<Value>)> {
    loop {
        match assistant.outcome(run_id) {
            Ok(Some(o)) => return Some((o, Vec::new())),
            Ok(None) => tokio::time::sleep(Duration::from_millis(200)).await,
            Err(e) => {
                tracing::warn!(error = %e, run = run_id, "cannot read how a run ended");
                return None;
            }
        }
    }
}

/// Deletes a status message (progress mode) that shows no answer.
async fn clear_status(s: &Shared, rec: &mut Delivery, update_id: i64) {
    if rec.preview_has_answer {
        return;
    }
    if let Some(id) = rec.preview.take() {
        wait_flood(s, rec.chat_id).await;
        if let Err(e) = s.api.delete_message(rec.chat_id, id).await {
            tracing::warn!(error = %e, "cannot delete the status message");
        }
        save(s, update_id, rec);
    }
}

/// Follows a run: typing while it lasts, the preview or status message per
/// `streaming.mode`. Returns the outcome and the accepted proposals.
async fn stream(
    s: &Arc<Shared>,
    job: &TurnJob,
    rec: &mut Delivery,
    mut events: mpsc::UnboundedReceiver<RunEvent>,
) -> Option<(RunOutcome, Vec<Value>)> {
    let mut live = Live {
        text: String::new(),
        activity: Vec::new(),
        said: 0,
        shown: 0,
        block_due: None,
        started: Instant::now(),
        last_edit: None,
        // Block replies replace the preview: the answer streams once.
        previews_off: s.settings.streaming.mode == StreamingMode::Off
            || s.settings.streaming.block.is_some(),
        proposing: HashMap::new(),
        proposals: Vec::new(),
    };
    let mut typing = tokio::time::interval(TYPING_EVERY);
    let mut due: Option<tokio::time::Instant> = None;
    if s.settings.streaming.mode == StreamingMode::Progress && !live.previews_off {
        due = Some(tokio::time::Instant::now() + STATUS_AFTER);
    }
    let outcome = loop {
        tokio::select! {
            ev = events.recv() => match ev {
                None => break RunOutcome {
                    status: RunStatus::Error,
                    text: live.text.clone(),
                    usage: Default::default(),
                    provider: None,
                    model: None,
                    error: Some("the run stopped unexpectedly".into()),
                    started_at: 0,
                    ended_at: 0,
                },
                Some(RunEvent::Ended { outcome, .. }) => break outcome,
                Some(RunEvent::Duplicate(begin)) => {
                    if let omniclaw_agent::session::Begin::Done(o) = begin {
                        break o;
                    }
                }
                Some(RunEvent::TextDelta { text, .. }) => {
                    live.text = text;
                    due = preview(s, rec, job, &mut live, false).await.or(due);
                    if let Some(block) = s.settings.streaming.block {
                        send_blocks(s, job, rec, &live.text, &block, block.idle.is_zero()).await;
                        live.block_due = Some(tokio::time::Instant::now() + block.idle);
                    }
                }
                Some(RunEvent::ToolStart { call_id, name, args }) => {
                    if name == PROPOSE {
                        live.proposing.insert(call_id, args.clone());
                    }
                    if let Some(said) = live.text.get(live.said..) {
                        let said = said.split_whitespace().collect::<Vec<_>>().join(" ");
                        if !said.is_empty() {
                            live.activity.push(Activity::Said(said));
                        }
                    }
                    live.said = live.text.len();
                    let command = (name == "exec")
                        .then(|| args.get("command").and_then(Value::as_str))
                        .flatten()
                        .map(str::to_string);
                    live.activity.push(Activity::Tool { name, command });
                    due = preview(s, rec, job, &mut live, true).await.or(due);
                }
                Some(RunEvent::ToolResult { call_id, name, is_error, .. }) => {
                    if name == PROPOSE && !is_error {
                        if let Some(args) = live.proposing.remove(&call_id) {
                            live.proposals.push(args);
                        }
                    }
                }
                Some(_) => {}
            },
            _ = typing.tick() => {
                if let Err(e) = s.api.typing(job.chat_id).await {
                    tracing::debug!(error = %e, "sendChatAction failed");
                }
            }
            () = sleep_until(due) => {
                due = preview(s, rec, job, &mut live, true).await;
            }
            () = sleep_until(live.block_due) => {
                live.block_due = None;
                if let Some(block) = s.settings.streaming.block {
                    send_blocks(s, job, rec, &live.text, &block, true).await;
                }
            }
        }
    };
    Some((outcome, live.proposals))
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Sends or edits the preview (partial, block) or status (progress)
/// message when it is due; returns when to look again if an edit was held
/// back by the throttle.
async fn preview(
    s: &Shared,
    rec: &mut Delivery,
    job: &TurnJob,
    live: &mut Live,
    forced: bool,
) -> Option<tokio::time::Instant> {
    if live.previews_off {
        return None;
    }
    let streaming = &s.settings.streaming;
    let tools = |show: bool| -> String {
        if !show {
            return String::new();
        }
        let lines: Vec<String> = live
            .activity
            .iter()
            .filter_map(|a| a.tool_line(streaming.preview_commands))
            .collect();
        lines[lines.len().saturating_sub(5)..].join("\n")
    };
    let (text, has_answer) = match streaming.mode {
        StreamingMode::Off => return None,
        StreamingMode::Progress => {
            if !forced && live.started.elapsed() < STATUS_AFTER {
                return None;
            }
            let seed = u64::try_from(job.update_id).unwrap_or_default();
            (streaming.status(&live.activity, seed)?, false)
        }
        StreamingMode::Partial | StreamingMode::Block => {
            let shown = if streaming.mode == StreamingMode::Block {
                live.shown = streaming.preview_chunk.grow(&live.text, live.shown);
                &live.text[..live.shown]
            } else {
                live.text.as_str()
            };
            // The preview is plain text: the first message of the answer
            // as it will read, without its formatting.
            let first = format::parts(shown, streaming.limit, streaming.paragraphs)
                .into_iter()
                .next()
                .map(|part| part.plain)
                .unwrap_or_default();
            if rec.preview.is_none()
                && first.chars().count() < MIN_PREVIEW_CHARS
                && live.started.elapsed() < FIRST_PREVIEW_AFTER
                && !forced
            {
                return Some(tokio::time::Instant::from_std(
                    live.started + FIRST_PREVIEW_AFTER,
                ));
            }
            let lines = tools(streaming.preview_tools);
            let text = match (first.is_empty(), lines.is_empty()) {
                (true, true) => return None,
                (true, false) => lines,
                (false, true) => format!("{first} …"),
                (false, false) => format!("{first} …\n\n{lines}"),
            };
            let answer = !first.is_empty();
            (text, answer)
        }
    };
    let now = Instant::now();
    if let Some(until) = flood_until(s, job.chat_id) {
        return Some(tokio::time::Instant::from_std(until));
    }
    if let Some(last) = live.last_edit {
        if now.duration_since(last) < EDIT_EVERY {
            return Some(tokio::time::Instant::from_std(last + EDIT_EVERY));
        }
    }
    let sent = match rec.preview {
        None => s
            .api
            .send_message(job.chat_id, &text, Some(job.message_id), &[])
            .await
            .map(Some),
        Some(id) => s
            .api
            .edit_message(job.chat_id, id, &text, &[])
            .await
            .map(|()| None),
    };
    live.last_edit = Some(Instant::now());
    match sent {
        Ok(new_id) => {
            if new_id.is_some() {
                rec.preview = new_id;
            }
            rec.preview_has_answer |= has_answer;
            rec.preview_text = text;
            save(s, job.update_id, rec);
            None
        }
        Err(ApiError::RetryAfter(secs)) => Some(tokio::time::Instant::from_std(flooded(
            s,
            job.chat_id,
            secs,
        ))),
        Err(e) => {
            tracing::warn!(error = %e, "the live preview stopped; the answer comes when it is done");
            live.previews_off = true;
            None
        }
    }
}

/// Block replies: each finished block of the answer that is due (see
/// [`Coalescing::next_block`]) sent as its own message and recorded, so
/// that the final answer and a restart send only the rest.
async fn send_blocks(
    s: &Shared,
    job: &TurnJob,
    rec: &mut Delivery,
    text: &str,
    block: &Coalescing,
    idle: bool,
) {
    while let Some(end) = text
        .get(rec.block_chars..)
        .and_then(|pending| block.next_block(pending, idle))
    {
        let piece = &text[rec.block_chars..rec.block_chars + end];
        let to = (rec.block_chars == 0).then_some(job.message_id);
        for part in format::parts(piece.trim(), s.settings.streaming.limit, true) {
            send_retrying(s, job.chat_id, Some(&part.html), &part.plain, to, &[]).await;
        }
        rec.block_chars += end;
        save(s, job.update_id, rec);
    }
}

/// The final answer: the preview edited into its first part (or the status
/// message removed), the rest sent as new messages, each recorded.
async fn finish(s: &Shared, job: &TurnJob, rec: &mut Delivery, outcome: &RunOutcome) {
    let text = match outcome.status {
        RunStatus::Ok if outcome.text.trim().is_empty() => {
            "(The assistant finished without an answer.)".to_string()
        }
        RunStatus::Ok => outcome.text.clone(),
        RunStatus::Error => {
            let why = outcome.error.as_deref().unwrap_or("the run failed");
            if outcome.text.trim().is_empty() {
                format!("⚠️ The assistant could not answer: {why}")
            } else {
                format!("{}\n\n⚠️ The answer stopped: {why}", outcome.text)
            }
        }
        RunStatus::Aborted | RunStatus::Interrupted => {
            let why = outcome.error.as_deref().unwrap_or("aborted");
            let note = if why.contains("timed out") {
                format!("(stopped: {why})")
            } else {
                "(stopped)".to_string()
            };
            if outcome.text.trim().is_empty() {
                if why.contains("timed out") {
                    format!("⚠️ The assistant {why}.")
                } else {
                    // `/stop` said so already.
                    clear_status(s, rec, job.update_id).await;
                    rec.finished = true;
                    save(s, job.update_id, rec);
                    return;
                }
            } else {
                format!("{}\n\n{note}", outcome.text)
            }
        }
    };
    let streaming = &s.settings.streaming;
    // After block replies only the rest is left to send.
    let rest = match text.get(rec.block_chars..) {
        Some(rest) if rec.block_chars > 0 => rest.trim(),
        _ => text.as_str(),
    };
    if rest.is_empty() {
        rec.finished = true;
        save(s, job.update_id, rec);
        return;
    }
    let parts = format::parts(rest, streaming.limit, streaming.paragraphs);
    if rec.parts_sent == 0 {
        if let Some(id) = rec.preview {
            if rec.preview_has_answer {
                let first = &parts[0];
                let mut tries = 0;
                let edited = loop {
                    wait_flood(s, job.chat_id).await;
                    match s
                        .api
                        .edit_html(job.chat_id, id, &first.html, &first.plain)
                        .await
                    {
                        Err(ApiError::RetryAfter(secs)) if tries < SEND_TRIES => {
                            tries += 1;
                            flooded(s, job.chat_id, secs);
                        }
                        other => break other,
                    }
                };
                match edited {
                    Ok(()) => {
                        rec.parts_sent = 1;
                        save(s, job.update_id, rec);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot finish the preview in place; the answer is sent anew");
                        let _ = s.api.delete_message(job.chat_id, id).await;
                        rec.preview = None;
                        rec.preview_has_answer = false;
                        save(s, job.update_id, rec);
                    }
                }
            } else {
                clear_status(s, rec, job.update_id).await;
            }
        }
    }
    while rec.parts_sent < parts.len() {
        let part = &parts[rec.parts_sent];
        let to = (rec.parts_sent == 0 && rec.block_chars == 0).then_some(job.message_id);
        send_retrying(s, job.chat_id, Some(&part.html), &part.plain, to, &[]).await;
        rec.parts_sent += 1;
        save(s, job.update_id, rec);
    }
    rec.finished = true;
    save(s, job.update_id, rec);
}

const INTERRUPTED: &str = "⚠️ Interrupted: the gateway restarted before this answer was complete. Send your message again for a full answer.";

/// A reply cut by a kill: what was shown stays, marked as cut.
async fn mark_interrupted(s: &Shared, job: &TurnJob, rec: &mut Delivery) {
    let marked = match rec.preview {
        Some(id) if rec.preview_has_answer && rec.parts_sent == 0 => {
            let text = format!(
                "{}\n\n{INTERRUPTED}",
                rec.preview_text.trim_end_matches(" …")
            );
            wait_flood(s, job.chat_id).await;
            s.api
                .edit_message(job.chat_id, id, &text, &[])
                .await
                .is_ok()
        }
        _ => false,
    };
    if !marked {
        reply(s, job.chat_id, Some(job.message_id), INTERRUPTED, &[]).await;
    }
    rec.finished = true;
    save(s, job.update_id, rec);
}

/// A change the rescue assistant proposed: asked like the slash command.
async fn propose(s: &Arc<Shared>, job: &TurnJob, args: &Value) {
    let exec = executor(s);
    match proposed(args, &exec) {
        Ok(command) => {
            ask_confirmation(s, &job.sender, job.chat_id, None, command, true).await;
        }
        Err(why) => tracing::warn!(reason = %why, "a proposal the tool accepted is refused now"),
    }
}

// ---- rescue commands and confirmations --------------------------------------

fn executor(s: &Shared) -> Executor {
    Executor {
        program: s.settings.program.clone(),
        own: s.settings.profile.clone(),
        targets: s.settings.targets.clone(),
        secrets: masked_secrets(&s.settings, s.hooks.secrets.as_ref()),
        env: s.settings.child_env.clone(),
    }
}

/// What command output is masked with: the bot's own token and every
/// secret the gateway knows.
fn masked_secrets(
    settings: &Settings,
    known: Option<&Arc<dyn SecretSource>>,
) -> Arc<dyn SecretSource> {
    let own: Arc<dyn SecretSource> = Arc::new(vec![settings.token.clone()]);
    Arc::new(known.cloned().into_iter().chain([own]).collect::<Vec<_>>())
}

fn audit(s: &Shared, sender: &Sender, command: &str, result: &str) {
    let entry = AuditEntry {
        ts_ms: now_ms(),
        user_id: sender.id,
        who: sender.who.clone(),
        command: command.to_string(),
        result: result.to_string(),
    };
    if let Err(e) = append_audit(&s.settings.state_dir, &entry) {
        tracing::error!(error = %e, "cannot append to the rescue audit log");
    }
}

async fn on_command(s: &Arc<Shared>, sender: &Sender, chat_id: i64, message_id: i32, cmd: Command) {
    let exec = executor(s);
    if let Some(why) = exec.refuse(&cmd) {
        audit(s, sender, &cmd.describe(), &format!("refused: {why}"));
        reply(s, chat_id, Some(message_id), &why, &[]).await;
        return;
    }
    if let Some(w) = &s.watcher {
        let done = match &cmd {
            Command::Watch => Some(Ok(w.lock().await.summary())),
            Command::WatchSet { profile, on } => Some(
                w.lock()
                    .await
                    .pause(profile, !on)
                    .map(|()| match on {
                        true => format!("watching {profile} again"),
                        false => format!("the watch of {profile} is paused: nothing is checked or repaired until /watch on {profile}"),
                    }),
            ),
            Command::Heal { profile } => Some(w.lock().await.heal_now(profile).await),
            _ => None,
        };
        if let Some(done) = done {
            let (result, text) = match done {
                Ok(text) => ("ok".to_string(), text),
                Err(why) => (format!("refused: {why}"), why),
            };
            audit(s, sender, &cmd.describe(), &result);
            reply(s, chat_id, Some(message_id), &text, &[]).await;
            return;
        }
    }
    if cmd.mutates() {
        ask_confirmation(s, sender, chat_id, Some(message_id), cmd, false).await;
        return;
    }
    let done = exec.run(&cmd).await;
    let mut text = done.reply;
    if matches!(cmd, Command::Hello | Command::Help) && has_model(s) {
        text.push_str("\n\nOr just ask in your own words (\"why is main down?\"): the rescue assistant reads the diagnostics and proposes fixes, which you confirm.\n/stop — stop its answer · /new — start afresh");
    }
    audit(
        s,
        sender,
        &cmd.describe(),
        if done.ok { "ok" } else { "failed" },
    );
    reply(s, chat_id, Some(message_id), &text, &[]).await;
}

async fn ask_confirmation(
    s: &Shared,
    sender: &Sender,
    chat_id: i64,
    reply_to: Option<i32>,
    cmd: Command,
    by_assistant: bool,
) {
    let nonce = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
    let question = if by_assistant {
        format!(
            "The assistant proposes: {}\nThis changes the target and runs only if you confirm. Confirm with the button or reply yes / no.",
            cmd.describe()
        )
    } else {
        format!(
            "{}?\nThis changes the target. Confirm with the button or reply yes / no.",
            cmd.describe()
        )
    };
    let buttons: Vec<Button> = vec![
        ("Yes, do it".into(), format!("y:{nonce}")),
        ("Cancel".into(), format!("n:{nonce}")),
    ];
    audit(
        s,
        sender,
        &cmd.describe(),
        if by_assistant {
            "proposed by the assistant; asked for confirmation"
        } else {
            "asked for confirmation"
        },
    );
    lock(&s.confirms).insert(
        sender.id,
        Confirm {
            nonce,
            command: cmd,
            chat_id,
            asked: Instant::now(),
        },
    );
    reply(s, chat_id, reply_to, &question, &buttons).await;
}

async fn on_callback(s: &Arc<Shared>, sender: &Sender, id: &str, chat_id: Option<i64>, data: &str) {
    if let Some(rest) = data.strip_prefix("ap:") {
        on_approval_button(s, sender, id, rest).await;
        return;
    }
    if access(s, sender.id) != Access::Operator || s.settings.role != Role::Rescue {
        answer(s, id, "Not allowed.").await;
        return;
    }
    let (yes, nonce) = match data.split_once(':') {
        Some(("y", n)) => (true, n),
        Some(("n", n)) => (false, n),
        _ => {
            answer(s, id, "Unknown button.").await;
            return;
        }
    };
    let open = {
        let mut confirms = lock(&s.confirms);
        let matches = confirms.get(&sender.id).is_some_and(|c| c.nonce == nonce);
        matches.then(|| confirms.remove(&sender.id)).flatten()
    };
    let Some(c) = open else {
        answer(s, id, "This question expired; send the command again.").await;
        if let Some(chat) = chat_id {
            reply(
                s,
                chat,
                None,
                "That confirmation expired or was already answered; send the command again.",
                &[],
            )
            .await;
        }
        return;
    };
    answer(s, id, if yes { "Running…" } else { "Cancelled." }).await;
    confirmed(s, sender, c, yes).await;
}

async fn confirmed(s: &Arc<Shared>, sender: &Sender, c: Confirm, yes: bool) {
    let what = c.command.describe();
    if c.asked.elapsed() > CONFIRM_TTL {
        audit(s, sender, &what, "expired");
        reply(
            s,
            c.chat_id,
            None,
            &format!("{what}: the confirmation expired; send the command again."),
            &[],
        )
        .await;
        return;
    }
    if !yes {
        audit(s, sender, &what, "cancelled");
        reply(
            s,
            c.chat_id,
            None,
            &format!("{what}: cancelled, nothing changed."),
            &[],
        )
        .await;
        return;
    }
    let done = executor(s).run(&c.command).await;
    audit(s, sender, &what, if done.ok { "ok" } else { "failed" });
    reply(s, c.chat_id, None, &done.reply, &[]).await;
}

// ---- the watch ----------------------------------------------------------------

/// A rescue bot's watcher: its targets through `prober`, repairs through
/// the `omniclaw` CLI and the desktop app, reports to the operators.
fn watcher(
    settings: &Settings,
    known: Option<&Arc<dyn SecretSource>>,
    prober: Arc<dyn Prober>,
    operators: Arc<Operators>,
) -> Watcher {
    let exec = Executor {
        program: settings.program.clone(),
        own: settings.profile.clone(),
        targets: settings.targets.clone(),
        secrets: masked_secrets(settings, known),
        env: settings.child_env.clone(),
    };
    let home = settings
        .child_env
        .get("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    Watcher::new(
        &settings.state_dir,
        settings.watch.clone(),
        &settings.targets,
        Parts {
            clock: Arc::new(SystemClock),
            profiles: Arc::new(OtherProfiles {
                home: home.clone(),
                own: settings.profile.clone(),
            }),
            prober,
            repairs: Arc::new(CliRepairs { exec, home }),
            tell: operators,
        },
    )
}

/// The operators' chats, once the bot reached Telegram. Until then each
/// report is kept (its latest text, edits included) under a placeholder
/// [`Sent`] in chat [`QUEUED`], and sent when the bot gets through; edits
/// of a placeholder then go to the messages sent for it.
#[derive(Default)]
struct Operators(tokio::sync::Mutex<Reach>);

#[derive(Default)]
struct Reach {
    /// The running channel; nothing before it reached Telegram or once
    /// it stopped.
    shared: std::sync::Weak<Shared>,
    /// Reports made before: the latest text of placeholder `-(i + 1)`.
    queued: Vec<String>,
    /// What each placeholder became once sent.
    delivered: HashMap<i32, Sent>,
}

/// The chat of a queued report's placeholder: no Telegram chat has id 0.
const QUEUED: i64 = 0;

impl Operators {
    /// The bot reached Telegram: what waited is sent now, in order.
    async fn reached(&self, shared: std::sync::Weak<Shared>) {
        let mut r = self.0.lock().await;
        r.shared = shared;
        let Some(s) = r.shared.upgrade() else {
            return;
        };
        let queued = std::mem::take(&mut r.queued);
        if !queued.is_empty() {
            tracing::info!(
                reports = queued.len(),
                "telegram reached: the watch's reports made before are sent"
            );
        }
        for (i, text) in queued.iter().enumerate() {
            let sent = send_to_operators(&s, text).await;
            r.delivered.insert(placeholder(i), sent);
        }
    }
}

fn placeholder(i: usize) -> i32 {
    -(i32::try_from(i).unwrap_or(i32::MAX - 1) + 1)
}

async fn send_to_operators(s: &Shared, text: &str) -> Sent {
    let mut sent = Vec::new();
    for chat in operator_chats(s) {
        match s.api.send_message(chat, text, None, &[]).await {
            Ok(mid) => sent.push((chat, mid)),
            Err(e) => {
                tracing::warn!(error = %e, chat, "cannot tell an operator of an incident")
            }
        }
    }
    sent
}

#[async_trait::async_trait]
impl Tell for Operators {
    async fn send(&self, text: &str) -> Sent {
        let mut r = self.0.lock().await;
        match r.shared.upgrade() {
            Some(s) => send_to_operators(&s, text).await,
            None => {
                r.queued.push(text.to_string());
                vec![(QUEUED, placeholder(r.queued.len() - 1))]
            }
        }
    }

    async fn edit(&self, sent: &Sent, text: &str) {
        let mut r = self.0.lock().await;
        let real = match sent.as_slice() {
            [(QUEUED, mid)] => match r.delivered.get(mid) {
                Some(real) => real.clone(),
                None => {
                    let i = usize::try_from(-i64::from(*mid) - 1).unwrap_or(usize::MAX);
                    if let Some(queued) = r.queued.get_mut(i) {
                        *queued = text.to_string();
                    }
                    return;
                }
            },
            _ => sent.clone(),
        };
        let Some(s) = r.shared.upgrade() else {
            return;
        };
        drop(r);
        for (chat, mid) in &real {
            if let Err(e) = s.api.edit_message(*chat, *mid, text, &[]).await {
                if !e.is_not_modified() {
                    tracing::warn!(error = %e, "cannot update an incident message");
                }
            }
        }
    }
}

// ---- approvals ---------------------------------------------------------------

/// The operators' private chats (a user's chat with the bot has their id).
fn operator_chats(s: &Shared) -> Vec<i64> {
    let mut users = s.settings.allow_from.clone();
    if s.settings.role == Role::Rescue {
        users.extend(approved_users(s));
    }
    users.sort_unstable();
    users.dedup();
    users
        .into_iter()
        .filter_map(|u| i64::try_from(u).ok())
        .collect()
}

/// Tells the operators of each approval asked (with its buttons) and
/// updates their messages once it is decided, by whomever.
async fn watch_approvals(s: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Notice>) {
    while let Some(notice) = rx.recv().await {
        match notice {
            Notice::Asked(ask) => {
                let secs = ask.expires_at_ms.saturating_sub(now_ms()) / 1000;
                let text = format!(
                    "Approval needed: the assistant wants to run\n\n{}\n\nin {}\nWhy it asks: {}\nSession: {}\nNo answer within {secs} s is a deny.",
                    ask.command, ask.cwd, ask.reason, ask.session_key
                );
                let buttons: Vec<Button> = vec![
                    ("Allow once".into(), format!("ap:o:{}", ask.id)),
                    ("Always".into(), format!("ap:a:{}", ask.id)),
                    ("Deny".into(), format!("ap:d:{}", ask.id)),
                ];
                for chat in operator_chats(&s) {
                    match s.api.send_message(chat, &text, None, &buttons).await {
                        Ok(mid) => lock(&s.prompts).entry(ask.id.clone()).or_default().push((
                            chat,
                            mid,
                            text.clone(),
                        )),
                        Err(e) => {
                            tracing::warn!(error = %e, chat, "cannot ask an operator on telegram")
                        }
                    }
                }
            }
            Notice::Decided { id, decision, by } => {
                let sent = lock(&s.prompts).remove(&id).unwrap_or_default();
                let how = if by == "timeout" {
                    "Denied: nobody answered in time.".to_string()
                } else {
                    format!("Decided: {} by {by}.", decision.words())
                };
                for (chat, mid, text) in sent {
                    if let Err(e) = s
                        .api
                        .edit_message(chat, mid, &format!("{text}\n\n{how}"), &[])
                        .await
                    {
                        tracing::warn!(error = %e, "cannot update an approval message");
                    }
                }
            }
        }
    }
}

async fn on_approval_button(s: &Shared, sender: &Sender, callback_id: &str, data: &str) {
    let Some(approvals) = &s.hooks.approvals else {
        answer(s, callback_id, "This approval is no longer open.").await;
        return;
    };
    if !is_operator(s, sender.id) {
        tracing::warn!(
            user = sender.id,
            "an approval button pressed by someone who is not an operator"
        );
        answer(
            s,
            callback_id,
            "Only an operator can answer approvals (a user on channels.telegram.allowFrom).",
        )
        .await;
        return;
    }
    let (decision, id) = match data.split_once(':') {
        Some(("o", id)) => (Decision::AllowOnce, id),
        Some(("a", id)) => (Decision::AllowAlways, id),
        Some(("d", id)) => (Decision::Deny, id),
        _ => {
            answer(s, callback_id, "Unknown button.").await;
            return;
        }
    };
    let by = format!("telegram:{}", sender.who);
    match approvals.resolve(id, decision, &by) {
        Ok(()) => {
            let words = match decision {
                Decision::AllowOnce => "Allowed once.",
                Decision::AllowAlways => "Allowed, and added to the allowlist.",
                Decision::Deny => "Denied.",
            };
            answer(s, callback_id, words).await;
        }
        Err(_) => {
            answer(
                s,
                callback_id,
                "This approval was answered already or has expired.",
            )
            .await
        }
    }
}

// ---- replies ---------------------------------------------------------------

/// The one reply an unknown user gets under `dmPolicy: pairing`.
fn pairing_reply(s: &Shared, sender: &Sender, chat_id: i64) -> String {
    let store = PairingStore::new(&s.settings.state_dir);
    let now = now_secs();
    let mut outcome = None;
    for _ in 0..8 {
        let mut random = [0u8; CODE_LEN];
        random.copy_from_slice(&uuid::Uuid::new_v4().into_bytes()[..CODE_LEN]);
        let code = PairingCode::from_random(&random);
        match store.update(|p| {
            let o = p.request(sender.id, &sender.who, chat_id, now, code);
            let changed = matches!(o, Some(PairingOutcome::Created(_)));
            (o, changed)
        }) {
            Ok(Some(o)) => {
                outcome = Some(o);
                break;
            }
            Ok(None) => continue,
            Err(e) => {
                tracing::error!(error = %e, "cannot record a pairing request");
                return "This bot is private and cannot take pairing requests right now.".into();
            }
        }
    }
    let profile = &s.settings.profile;
    let cli = match profile.suffix() {
        Some(n) => format!("omniclaw --profile {n}"),
        None => "omniclaw".to_string(),
    };
    match outcome {
        Some(PairingOutcome::Created(p)) | Some(PairingOutcome::Existing(p)) => {
            audit(
                s,
                sender,
                "pairing request",
                &format!("code {} sent", p.code),
            );
            format!(
                "This bot is private. Your pairing code: {}\nAsk the operator to approve it within an hour:\n{cli} pairing approve {}\n(your Telegram user id: {})",
                p.code, p.code, sender.id
            )
        }
        Some(PairingOutcome::Full) => {
            audit(s, sender, "pairing request", "refused: too many pending");
            "This bot is private, and too many pairing requests are waiting; try again later."
                .into()
        }
        None => "This bot is private; try again in a moment.".into(),
    }
}

async fn answer(s: &Shared, id: &str, text: &str) {
    if let Err(e) = s.api.answer_callback(id, text).await {
        tracing::warn!(error = %e, "answerCallbackQuery failed");
    }
}

/// Sends `text` in parts of at most 4096 characters, cut on line breaks;
/// each part is retried on flood control and network errors a few times
/// (the command already ran, so the update is not handled again).
async fn reply(s: &Shared, chat_id: i64, reply_to: Option<i32>, text: &str, buttons: &[Button]) {
    let parts = rescue::split_reply(text, MAX_MESSAGE_CHARS);
    let last = parts.len() - 1;
    for (i, part) in parts.iter().enumerate() {
        let to = if i == 0 { reply_to } else { None };
        let keys = if i == last { buttons } else { &[] };
        send_retrying(s, chat_id, None, part, to, keys).await;
    }
}

/// Sends one message (as HTML with `text` as its plain fallback when
/// `html` is given), tried again a few times on flood control and network
/// errors; a failure after that is logged, and the reply goes on.
async fn send_retrying(
    s: &Shared,
    chat_id: i64,
    html: Option<&str>,
    text: &str,
    reply_to: Option<i32>,
    buttons: &[Button],
) {
    let mut failures = 0u32;
    loop {
        wait_flood(s, chat_id).await;
        let sent = match html {
            Some(html) => {
                s.api
                    .send_html(chat_id, html, text, reply_to, buttons)
                    .await
            }
            None => s.api.send_message(chat_id, text, reply_to, buttons).await,
        };
        match sent {
            Ok(_) => return,
            Err(ApiError::RetryAfter(secs)) if failures < SEND_TRIES => {
                failures += 1;
                flooded(s, chat_id, secs);
            }
            Err(e @ ApiError::Network { .. }) if failures < SEND_TRIES => {
                let wait = backoff(failures);
                failures += 1;
                tracing::warn!(error = %e, "sendMessage failed; retrying");
                tokio::time::sleep(wait).await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot send a telegram message");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        for (failures, base) in [(0u32, 1.0f64), (1, 2.0), (3, 8.0), (10, 60.0)] {
            let d = backoff(failures).as_secs_f64();
            assert!(d >= base * 0.75 && d <= base * 1.25, "{failures}: {d}");
        }
    }

    #[test]
    fn states_read_as_the_issue_names_them() {
        fn check(s: ChannelState, summary: &str) {
            assert_eq!(s.summary(), summary);
            assert_eq!(s.to_json()["summary"], json!(summary));
        }
        check(ChannelState::Unauthorized, "unauthorized token");
        check(ChannelState::Conflict, "another poller uses this bot token");
        check(
            ChannelState::Running {
                bot: "rescue_bot".into(),
            },
            "running as @rescue_bot",
        );
        assert_eq!(
            ChannelState::Running { bot: "b".into() }.to_json()["running"],
            json!(true)
        );
    }

    #[test]
    fn the_handle_is_taken_out_of_a_group_question() {
        assert_eq!(
            remove_handle("@Main_Bot what time is it?", "main_bot"),
            "what time is it?"
        );
        assert_eq!(remove_handle("hey @main_bot, hi", "main_bot"), "hey , hi");
        assert_eq!(remove_handle("no mention", "main_bot"), "no mention");
    }

    #[test]
    fn the_progress_status_follows_openclaws_progress_keys() {
        let streaming = |progress: &str| {
            let text = format!(
                "{{ channels: {{ telegram: {{ streaming: {{ progress: {{ toolProgress: true, {progress} }} }} }} }} }}"
            );
            Streaming::from_config(
                &omniclaw_core::config::load(&text)
                    .expect("valid")
                    .config
                    .channels
                    .telegram,
            )
        };
        let tools: Vec<Activity> = (1..=10)
            .map(|i| Activity::Tool {
                name: format!("tool{i}"),
                command: None,
            })
            .collect();
        fn check(s: &Streaming, tools: &[Activity], seed: u64, expected: Option<&str>) {
            assert_eq!(s.status(tools, seed).as_deref(), expected, "{s:?}");
        }
        // Defaults: OpenClaw's 8 newest lines.
        let d = streaming("");
        check(&d, &tools[..1], 0, Some("⏳ Working on it…\n🔧 tool1"));
        let eight = d.status(&tools, 0).expect("shown");
        assert_eq!(eight.lines().count(), 9);
        assert!(eight.ends_with(
            "🔧 tool3\n🔧 tool4\n🔧 tool5\n🔧 tool6\n🔧 tool7\n🔧 tool8\n🔧 tool9\n🔧 tool10"
        ));
        check(
            &streaming("label: 'Thinking', maxLines: 2"),
            &tools,
            0,
            Some("⏳ Thinking\n🔧 tool9\n🔧 tool10"),
        );
        check(
            &streaming("label: false, maxLines: 1, maxLineChars: 5"),
            &tools,
            0,
            Some("🔧 to…"),
        );
        check(&streaming("label: false"), &[], 0, None);
        let pick = streaming("label: 'auto', labels: ['One', 'Two']");
        check(&pick, &[], 0, Some("⏳ One"));
        check(&pick, &[], 3, Some("⏳ Two"));
        check(&streaming("labels: ['Only']"), &[], 7, Some("⏳ Only"));
        // commandText and commentary.
        let run = [
            Activity::Said("I will list the files first.".into()),
            Activity::Tool {
                name: "exec".into(),
                command: Some("ls -la /tmp".into()),
            },
            Activity::Tool {
                name: "read".into(),
                command: None,
            },
        ];
        check(
            &streaming("label: false"),
            &run,
            0,
            Some("🔧 exec\n🔧 read"),
        );
        check(
            &streaming("label: false, commandText: 'raw'"),
            &run,
            0,
            Some("🔧 exec: ls -la /tmp\n🔧 read"),
        );
        check(
            &streaming("label: false, commandText: 'status', commentary: true, narration: true"),
            &run,
            0,
            Some("💬 I will list the files first.\n🔧 exec\n🔧 read"),
        );
    }

    #[test]
    fn finished_parts_end_at_the_preferred_break() {
        use BreakPreference::{Newline, Paragraph, Sentence};
        let text = "One. Two!\nThree\n\nFour? Fi";
        for (breaks, expected) in [
            (Paragraph, Some("One. Two!\nThree")),
            (Newline, Some("One. Two!\nThree\n")),
            (Sentence, Some("One. Two!\nThree\n\nFour?")),
        ] {
            assert_eq!(
                last_break(text, breaks).map(|at| &text[..at]),
                expected,
                "{breaks:?}"
            );
        }
        assert_eq!(last_break("no break", Sentence), None);
        assert_eq!(
            last_break("é.", Sentence),
            None,
            "a sentence ends before a space"
        );
    }

    #[test]
    fn a_block_preview_grows_by_preview_chunk() {
        let chunk = |min_chars, max_chars| Chunking {
            min_chars,
            max_chars,
            breaks: BreakPreference::Paragraph,
        };
        let text = "aaaa\n\nbbbb\n\ncc";
        // (chunking, shown now, shown next)
        for (c, shown, expected) in [
            (chunk(1, 800), 0, "aaaa\n\nbbbb"),
            (chunk(5, 800), 0, "aaaa\n\nbbbb"),
            (chunk(11, 800), 0, ""),
            (chunk(1, 800), 4, "aaaa\n\nbbbb"),
            (chunk(7, 800), 4, "aaaa"),
            // No break for max_chars: cut there.
            (chunk(1, 3), 12, "aaaa\n\nbbbb\n\n"),
        ] {
            let grown = c.grow(text, shown);
            assert_eq!(&text[..grown], expected, "{c:?} from {shown}");
        }
        let unbroken = "aaaa\n\nbbbbbbbb";
        assert_eq!(&unbroken[..chunk(1, 3).grow(unbroken, 6)], "aaaa\n\nbbb");
        let long = "x".repeat(10);
        assert_eq!(chunk(1, 4).grow(&long, 0), 4);
        assert_eq!(chunk(1, 40).grow(&long, 0), 0);
    }

    #[test]
    fn block_replies_are_merged_by_coalesce() {
        let c = |min_chars, max_chars| Coalescing {
            min_chars,
            max_chars,
            idle: Duration::ZERO,
        };
        let para = "p".repeat(10);
        let two = format!("{para}\n\n{para}\n\nmore");
        // (coalescing, pending text, idle, block sent)
        for (co, pending, idle, expected) in [
            // Nothing finished yet.
            (c(1, 100), "writing", true, None),
            // Finished paragraphs wait for the run to go quiet...
            (c(1, 100), two.as_str(), false, None),
            (c(1, 100), two.as_str(), true, Some(22)),
            // ... and for min_chars.
            (c(30, 100), two.as_str(), true, None),
            (c(22, 100), two.as_str(), true, Some(22)),
            // max_chars sends at once, cut at a paragraph end within.
            (c(1, 15), two.as_str(), false, Some(10)),
            (c(1, 22), two.as_str(), false, Some(22)),
            (c(1, 5), two.as_str(), false, Some(5)),
        ] {
            assert_eq!(
                co.next_block(pending, idle),
                expected,
                "{co:?} {pending:?} idle {idle}"
            );
        }
    }

    #[test]
    fn streaming_follows_openclaws_defaults() {
        let tg = |text: &str| {
            omniclaw_core::config::load(text)
                .expect("valid")
                .config
                .channels
                .telegram
        };
        let d = Streaming::from_config(&tg("{}"));
        assert_eq!(d.mode, StreamingMode::Progress);
        assert!(!d.paragraphs && d.preview_tools && !d.progress_tools);
        assert_eq!(d.limit, 4000);
        assert!(!d.preview_commands && !d.progress_commands && !d.commentary);
        assert_eq!(d.block, None, "block replies are off unless enabled");
        assert_eq!(
            d.preview_chunk,
            Chunking {
                min_chars: 200,
                max_chars: 800,
                breaks: BreakPreference::Paragraph
            }
        );
        let block = |text: &str| Streaming::from_config(&tg(text)).block;
        assert_eq!(
            block("{ channels: { telegram: { streaming: { block: { enabled: true } } } } }"),
            Some(Coalescing {
                min_chars: 800,
                max_chars: 1200,
                idle: Duration::from_secs(1)
            })
        );
        assert_eq!(
            block("{ channels: { telegram: { blockStreaming: true, blockStreamingCoalesce: { minChars: 5000, maxChars: 3000, idleMs: 9000 }, textChunkLimit: 1000 } } }"),
            Some(Coalescing {
                min_chars: 1000,
                max_chars: 1000,
                idle: Duration::from_secs(5)
            }),
            "capped by the limit and OpenClaw's bounds"
        );
        assert_eq!(
            block("{ channels: { telegram: { streaming: { block: { enabled: false } }, blockStreaming: true } } }"),
            None,
            "the nested key wins"
        );
        let chunk = Streaming::from_config(&tg(
            "{ channels: { telegram: { draftChunk: { minChars: 900, maxChars: 9000, breakPreference: 'sentence' }, textChunkLimit: 600 } } }",
        ))
        .preview_chunk;
        assert_eq!(
            chunk,
            Chunking {
                min_chars: 600,
                max_chars: 600,
                breaks: BreakPreference::Sentence
            }
        );
        let set = Streaming::from_config(&tg(
            "{ channels: { telegram: { streaming: { mode: 'partial', chunkMode: 'newline', preview: { toolProgress: false } }, textChunkLimit: 9000 } } }",
        ));
        assert_eq!(set.mode, StreamingMode::Partial);
        assert!(set.paragraphs && !set.preview_tools);
        assert_eq!(set.limit, 4096, "Telegram's own limit caps it");
        // Progress lines follow the preview's setting unless set.
        let tools = Streaming::from_config(&tg(
            "{ channels: { telegram: { streaming: { preview: { toolProgress: true } } } } }",
        ));
        assert!(tools.progress_tools);
        // OpenClaw's legacy forms, as its doctor migrates them.
        for (text, mode) in [
            (
                "{ channels: { telegram: { streaming: 'block' } } }",
                StreamingMode::Block,
            ),
            (
                "{ channels: { telegram: { streaming: true } } }",
                StreamingMode::Partial,
            ),
            (
                "{ channels: { telegram: { streaming: false } } }",
                StreamingMode::Off,
            ),
            (
                "{ channels: { telegram: { streaming: 'fast' } } }",
                StreamingMode::Partial,
            ),
            (
                "{ channels: { telegram: { streamMode: 'block', chunkMode: 'newline' } } }",
                StreamingMode::Block,
            ),
        ] {
            let s = Streaming::from_config(&tg(text));
            assert_eq!(s.mode, mode, "{text}");
        }
        assert!(
            Streaming::from_config(&tg("{ channels: { telegram: { chunkMode: 'newline' } } }"))
                .paragraphs
        );
        let refused = omniclaw_core::config::load(
            "{ channels: { telegram: { streaming: { mode: 'fast' } } } }",
        )
        .expect_err("not a mode");
        assert!(
            refused
                .to_string()
                .contains("channels.telegram.streaming.mode"),
            "{refused}"
        );
    }
}
