//! The Telegram channel of one gateway: long polling, access control,
//! confirmations, replies, the audit log — and its state for `status`.
//!
//! Start: `deleteWebhook` (long polling and a webhook exclude each other),
//! then `getMe` (a bad token shows as "unauthorized token" and nothing
//! else is tried until the token changes or a slow recheck succeeds).
//! Then `getUpdates` with a timeout, from the offset persisted in the state
//! dir. Each update is handled completely — access decided, command run,
//! reply sent — and only then is `update_id + 1` written, so a restart
//! or a kill resumes at the first update not yet handled. A 409 means
//! another poller holds the token; network errors back off with jitter
//! and recover by themselves.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use frankenstein::types::{ChatType, MaybeInaccessibleMessage, User};
use frankenstein::updates::{Update, UpdateContent};
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use omniclaw_core::config::DmPolicy;
use omniclaw_core::env::ChildEnv;
use omniclaw_core::profile::Profile;
use omniclaw_core::rescue::{
    self, Access, Command, PairingCode, PairingOutcome, CODE_LEN, MAX_MESSAGE_CHARS,
};
use omniclaw_os::rescue::{
    append_audit, read_offset, write_channel_status, write_offset, AuditEntry, PairingStore,
};

use super::api::{ApiError, BotApi, Button};
use super::exec::Executor;

/// How long a confirmation question stays answerable.
const CONFIRM_TTL: Duration = Duration::from_secs(300);
/// Longest wait between retries after network errors.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How often a refused token is checked again.
const UNAUTHORIZED_RECHECK: Duration = Duration::from_secs(300);

/// What the channel runs with; built from the config and the keychain.
#[derive(Clone, PartialEq, Eq)]
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
            .finish_non_exhaustive()
    }
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

/// A running channel. Dropping it stops the poller.
pub struct Channel {
    state: watch::Receiver<ChannelState>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
    settings: Settings,
}

impl Channel {
    /// Starts polling with `settings`. Must run inside a Tokio runtime.
    pub fn start(settings: Settings) -> Channel {
        let (state_tx, state) = watch::channel(ChannelState::Starting);
        let (stop, stop_rx) = watch::channel(false);
        let poller = Poller {
            settings: settings.clone(),
            state: state_tx,
            stop: stop_rx,
            confirms: HashMap::new(),
        };
        let task = tokio::spawn(poller.run());
        Channel {
            state,
            stop,
            task: Some(task),
            settings,
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// A receiver of the state, for status reporting.
    pub fn state(&self) -> watch::Receiver<ChannelState> {
        self.state.clone()
    }

    /// Stops after the update being handled; gives up waiting after `grace`.
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

struct Poller {
    settings: Settings,
    state: watch::Sender<ChannelState>,
    stop: watch::Receiver<bool>,
    /// The open confirmation question per operator.
    confirms: HashMap<u64, Confirm>,
}

/// Who sent an update, for replies and the audit log.
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

impl Poller {
    fn set(&self, s: ChannelState) {
        if *self.state.borrow() == s {
            return;
        }
        if let Err(e) = write_channel_status(&self.settings.state_dir, &s.to_json()) {
            tracing::warn!(error = %e, "cannot record the telegram channel state");
        }
        self.state.send_replace(s);
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
        let Some(bot) = self.introduce(&api).await else {
            self.set(ChannelState::Stopped);
            return;
        };
        let mut offset = match read_offset(&self.settings.state_dir) {
            Ok(o) => o.unwrap_or(0),
            Err(e) => {
                self.set(ChannelState::Failed {
                    reason: e.to_string(),
                });
                return;
            }
        };
        self.set(ChannelState::Running { bot: bot.clone() });
        tracing::info!(bot = %bot, offset, "telegram channel polling");
        let mut failures = 0u32;
        loop {
            if self.stopping() {
                break;
            }
            let polled = tokio::select! {
                r = api.get_updates(offset, self.settings.poll_timeout) => r,
                _ = self.stop.wait_for(|s| *s) => break,
            };
            match polled {
                Ok(updates) => {
                    failures = 0;
                    self.set(ChannelState::Running { bot: bot.clone() });
                    for update in updates {
                        let id = i64::from(update.update_id);
                        if id < offset {
                            // Telegram never sends these; a double might. Handled already.
                            continue;
                        }
                        self.handle(&api, update).await;
                        offset = id + 1;
                        if let Err(e) = write_offset(&self.settings.state_dir, offset) {
                            tracing::error!(error = %e, "cannot persist the telegram offset; stopping the channel so no update is handled twice");
                            self.set(ChannelState::Failed {
                                reason: e.to_string(),
                            });
                            return;
                        }
                        if self.stopping() {
                            break;
                        }
                    }
                }
                Err(e) => {
                    let wait = self.on_error(&e, failures);
                    failures = failures.saturating_add(1);
                    if !self.pause(wait).await {
                        break;
                    }
                }
            }
        }
        self.set(ChannelState::Stopped);
    }

    /// `deleteWebhook` and `getMe`, retried until they work or the channel
    /// stops. Returns the bot's username.
    async fn introduce(&mut self, api: &BotApi) -> Option<String> {
        let mut failures = 0u32;
        loop {
            let result = match api.delete_webhook().await {
                Ok(()) => api.get_me().await,
                Err(e) => Err(e),
            };
            match result {
                Ok(me) => return Some(me.username),
                Err(e) => {
                    let wait = self.on_error(&e, failures);
                    failures = failures.saturating_add(1);
                    if !self.pause(wait).await {
                        return None;
                    }
                }
            }
        }
    }

    /// Shows `e` in the state and says how long to wait before trying again.
    fn on_error(&self, e: &ApiError, failures: u32) -> Duration {
        match e {
            ApiError::Unauthorized => {
                tracing::error!(error = %e, "telegram channel");
                self.set(ChannelState::Unauthorized);
                UNAUTHORIZED_RECHECK
            }
            ApiError::Conflict => {
                tracing::warn!(error = %e, "telegram channel");
                self.set(ChannelState::Conflict);
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
                self.set(ChannelState::Offline {
                    reason: other.to_string(),
                    retry_in: wait,
                });
                wait
            }
        }
    }

    async fn handle(&mut self, api: &BotApi, update: Update) {
        match update.content {
            UpdateContent::Message(m) => {
                if m.chat.type_field != ChatType::Private {
                    return;
                }
                let (Some(from), Some(text)) = (m.from.as_deref(), m.text.as_deref()) else {
                    return;
                };
                let sender = Sender::of(from);
                self.on_message(api, &sender, m.chat.id, m.message_id, text)
                    .await;
            }
            UpdateContent::CallbackQuery(q) => {
                let sender = Sender::of(&q.from);
                let chat_id = match &q.message {
                    Some(MaybeInaccessibleMessage::Message(m)) => Some(m.chat.id),
                    Some(MaybeInaccessibleMessage::InaccessibleMessage(m)) => Some(m.chat.id),
                    None => None,
                };
                let data = q.data.clone().unwrap_or_default();
                self.on_callback(api, &sender, &q.id, chat_id, &data).await;
            }
            _ => {}
        }
    }

    fn access(&self, user: u64) -> Access {
        let approved = if self.settings.policy == DmPolicy::Pairing {
            PairingStore::new(&self.settings.state_dir)
                .load()
                .map(|p| p.approved)
                .unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "cannot read the pairing store");
                    Vec::new()
                })
        } else {
            Vec::new()
        };
        rescue::access(
            self.settings.policy,
            &self.settings.allow_from,
            &approved,
            user,
        )
    }

    fn executor(&self) -> Executor {
        Executor {
            program: self.settings.program.clone(),
            own: self.settings.profile.clone(),
            targets: self.settings.targets.clone(),
            secrets: vec![self.settings.token.clone()],
            env: self.settings.child_env.clone(),
        }
    }

    fn audit(&self, sender: &Sender, command: &str, result: &str) {
        let entry = AuditEntry {
            ts_ms: now_ms(),
            user_id: sender.id,
            who: sender.who.clone(),
            command: command.to_string(),
            result: result.to_string(),
        };
        if let Err(e) = append_audit(&self.settings.state_dir, &entry) {
            tracing::error!(error = %e, "cannot append to the rescue audit log");
        }
    }

    async fn on_message(
        &mut self,
        api: &BotApi,
        sender: &Sender,
        chat_id: i64,
        message_id: i32,
        text: &str,
    ) {
        match self.access(sender.id) {
            Access::Ignore => {}
            Access::Pair => {
                let reply = self.pairing_reply(sender, chat_id);
                self.reply(api, chat_id, Some(message_id), &reply, &[])
                    .await;
            }
            Access::Operator => {
                let answer = text.trim().to_ascii_lowercase();
                if matches!(answer.as_str(), "yes" | "y" | "no" | "n") {
                    if let Some(c) = self.confirms.remove(&sender.id) {
                        let yes = answer.starts_with('y');
                        self.confirmed(api, sender, c, yes).await;
                        return;
                    }
                }
                match rescue::parse(text) {
                    Err(e) => {
                        let reply = e.to_string();
                        self.audit(sender, text.trim(), &format!("refused: {reply}"));
                        self.reply(api, chat_id, Some(message_id), &reply, &[])
                            .await;
                    }
                    Ok(cmd) => self.on_command(api, sender, chat_id, message_id, cmd).await,
                }
            }
        }
    }

    async fn on_command(
        &mut self,
        api: &BotApi,
        sender: &Sender,
        chat_id: i64,
        message_id: i32,
        cmd: Command,
    ) {
        let exec = self.executor();
        if let Some(why) = exec.refuse(&cmd) {
            self.audit(sender, &cmd.describe(), &format!("refused: {why}"));
            self.reply(api, chat_id, Some(message_id), &why, &[]).await;
            return;
        }
        if cmd.mutates() {
            let nonce = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
            let question = format!(
                "{}?\nThis changes the target. Confirm with the button or reply yes / no.",
                cmd.describe()
            );
            let buttons: Vec<Button> = vec![
                ("Yes, do it".into(), format!("y:{nonce}")),
                ("Cancel".into(), format!("n:{nonce}")),
            ];
            self.audit(sender, &cmd.describe(), "asked for confirmation");
            self.confirms.insert(
                sender.id,
                Confirm {
                    nonce,
                    command: cmd,
                    chat_id,
                    asked: Instant::now(),
                },
            );
            self.reply(api, chat_id, Some(message_id), &question, &buttons)
                .await;
            return;
        }
        let done = exec.run(&cmd).await;
        self.audit(
            sender,
            &cmd.describe(),
            if done.ok { "ok" } else { "failed" },
        );
        self.reply(api, chat_id, Some(message_id), &done.reply, &[])
            .await;
    }

    async fn on_callback(
        &mut self,
        api: &BotApi,
        sender: &Sender,
        id: &str,
        chat_id: Option<i64>,
        data: &str,
    ) {
        if self.access(sender.id) != Access::Operator {
            self.answer(api, id, "Not allowed.").await;
            return;
        }
        let (yes, nonce) = match data.split_once(':') {
            Some(("y", n)) => (true, n),
            Some(("n", n)) => (false, n),
            _ => {
                self.answer(api, id, "Unknown button.").await;
                return;
            }
        };
        let open = self
            .confirms
            .get(&sender.id)
            .is_some_and(|c| c.nonce == nonce);
        let Some(c) = open.then(|| self.confirms.remove(&sender.id)).flatten() else {
            self.answer(api, id, "This question expired; send the command again.")
                .await;
            if let Some(chat) = chat_id {
                self.reply(
                    api,
                    chat,
                    None,
                    "That confirmation expired or was already answered; send the command again.",
                    &[],
                )
                .await;
            }
            return;
        };
        self.answer(api, id, if yes { "Running…" } else { "Cancelled." })
            .await;
        self.confirmed(api, sender, c, yes).await;
    }

    async fn confirmed(&mut self, api: &BotApi, sender: &Sender, c: Confirm, yes: bool) {
        let what = c.command.describe();
        if c.asked.elapsed() > CONFIRM_TTL {
            self.audit(sender, &what, "expired");
            self.reply(
                api,
                c.chat_id,
                None,
                &format!("{what}: the confirmation expired; send the command again."),
                &[],
            )
            .await;
            return;
        }
        if !yes {
            self.audit(sender, &what, "cancelled");
            self.reply(
                api,
                c.chat_id,
                None,
                &format!("{what}: cancelled, nothing changed."),
                &[],
            )
            .await;
            return;
        }
        let done = self.executor().run(&c.command).await;
        self.audit(sender, &what, if done.ok { "ok" } else { "failed" });
        self.reply(api, c.chat_id, None, &done.reply, &[]).await;
    }

    /// The one reply an unknown user gets under `dmPolicy: pairing`.
    fn pairing_reply(&self, sender: &Sender, chat_id: i64) -> String {
        let store = PairingStore::new(&self.settings.state_dir);
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
                    return "This bot is private and cannot take pairing requests right now."
                        .into();
                }
            }
        }
        let profile = &self.settings.profile;
        let cli = match profile.suffix() {
            Some(n) => format!("omniclaw --profile {n}"),
            None => "omniclaw".to_string(),
        };
        match outcome {
            Some(PairingOutcome::Created(p)) | Some(PairingOutcome::Existing(p)) => {
                self.audit(sender, "pairing request", &format!("code {} sent", p.code));
                format!(
                    "This bot is private. Your pairing code: {}\nAsk the operator to approve it within an hour:\n{cli} pairing approve {}\n(your Telegram user id: {})",
                    p.code, p.code, sender.id
                )
            }
            Some(PairingOutcome::Full) => {
                self.audit(sender, "pairing request", "refused: too many pending");
                "This bot is private, and too many pairing requests are waiting; try again later."
                    .into()
            }
            None => "This bot is private; try again in a moment.".into(),
        }
    }

    async fn answer(&self, api: &BotApi, id: &str, text: &str) {
        if let Err(e) = api.answer_callback(id, text).await {
            tracing::warn!(error = %e, "answerCallbackQuery failed");
        }
    }

    /// Sends `text` in parts of at most 4096 characters; each part is
    /// retried on network errors a few times (the command already ran, so
    /// the update is not handled again).
    async fn reply(
        &mut self,
        api: &BotApi,
        chat_id: i64,
        reply_to: Option<i32>,
        text: &str,
        buttons: &[Button],
    ) {
        let parts = rescue::split_reply(text, MAX_MESSAGE_CHARS);
        let last = parts.len() - 1;
        for (i, part) in parts.iter().enumerate() {
            let to = if i == 0 { reply_to } else { None };
            let keys = if i == last { buttons } else { &[] };
            let mut failures = 0u32;
            loop {
                match api.send_message(chat_id, part, to, keys).await {
                    Ok(_) => break,
                    Err(ApiError::RetryAfter(s)) if failures < 5 => {
                        failures += 1;
                        if !self.pause(Duration::from_secs(s)).await {
                            return;
                        }
                    }
                    Err(e @ ApiError::Network { .. }) if failures < 5 => {
                        let wait = backoff(failures);
                        failures += 1;
                        tracing::warn!(error = %e, "sendMessage failed; retrying");
                        if !self.pause(wait).await {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot send a telegram reply");
                        break;
                    }
                }
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
}
