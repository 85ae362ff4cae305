//! The Telegram bots' rules. The rescue bot's: what an operator may type,
//! which commands change something (and so need a confirmation), the help
//! text, the commands its assistant may propose, the pairing-code rules and
//! the checks of the onboarding steps. Every bot's: the `dmPolicy` access
//! decision, who is an operator (approvals), which group messages are
//! answered, the assistant bot's own commands (`/new`, `/reset`, `/stop`)
//! and how a long reply or answer is cut for Telegram.
//!
//! Pure: text and numbers in, values out. Randomness and the clock are
//! handed in by the caller. This module never talks to Telegram, never
//! touches a file and never sees a secret value it would have to hide.

use std::fmt;

use crate::profile::Profile;

/// Telegram refuses a message longer than this many characters.
pub const MAX_MESSAGE_CHARS: usize = 4096;
/// How long a pairing code stays valid.
pub const PAIRING_TTL_SECS: u64 = 3600;
/// At most this many users wait for approval at once.
pub const MAX_PENDING: usize = 3;
/// Length of a pairing code.
pub const CODE_LEN: usize = 8;
/// Letters of a pairing code: no 0/O, 1/I/L, so it survives being read aloud.
pub const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
/// Lines `/logs` shows without a count, and the most it shows.
pub const DEFAULT_LOG_LINES: usize = 20;
pub const MAX_LOG_LINES: usize = 200;

/// One operator command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `/start` without a profile: Telegram's first message to a bot.
    Hello,
    Help,
    Status,
    Ports,
    Doctor,
    Logs {
        profile: Profile,
        lines: usize,
    },
    Start {
        profile: Profile,
    },
    Stop {
        profile: Profile,
    },
    Restart {
        profile: Profile,
    },
    ConfigGet {
        profile: Profile,
        path: String,
    },
    ConfigSet {
        profile: Profile,
        path: String,
        value: String,
    },
    Rollback {
        profile: Profile,
    },
    /// `/watch`: the watch's state of every target.
    Watch,
    /// `/watch off|on PROFILE`: pause or resume the watch of a target.
    WatchSet {
        profile: Profile,
        on: bool,
    },
    /// `/heal PROFILE`: the recovery ladder now.
    Heal {
        profile: Profile,
    },
}

impl Command {
    /// Whether the command changes a target; those ask for a confirmation first.
    pub fn mutates(&self) -> bool {
        matches!(
            self,
            Command::Start { .. }
                | Command::Stop { .. }
                | Command::Restart { .. }
                | Command::ConfigSet { .. }
                | Command::Rollback { .. }
        )
    }

    /// The profile the command acts on, if it names one.
    pub fn target(&self) -> Option<&Profile> {
        match self {
            Command::Logs { profile, .. }
            | Command::Start { profile }
            | Command::Stop { profile }
            | Command::Restart { profile }
            | Command::ConfigGet { profile, .. }
            | Command::ConfigSet { profile, .. }
            | Command::Rollback { profile }
            | Command::WatchSet { profile, .. }
            | Command::Heal { profile } => Some(profile),
            _ => None,
        }
    }

    /// The command as the audit log and the confirmation question show it.
    pub fn describe(&self) -> String {
        match self {
            Command::Hello => "/start".into(),
            Command::Help => "/help".into(),
            Command::Status => "/status".into(),
            Command::Ports => "/ports".into(),
            Command::Doctor => "/doctor".into(),
            Command::Logs { profile, lines } => format!("/logs {profile} {lines}"),
            Command::Start { profile } => format!("/start {profile}"),
            Command::Stop { profile } => format!("/stop {profile}"),
            Command::Restart { profile } => format!("/restart {profile}"),
            Command::ConfigGet { profile, path } => format!("/config {profile} get {path}"),
            Command::ConfigSet {
                profile,
                path,
                value,
            } => format!("/config {profile} set {path} {value}"),
            Command::Rollback { profile } => format!("/rollback {profile}"),
            Command::Watch => "/watch".into(),
            Command::WatchSet { profile, on } => {
                format!("/watch {} {profile}", if *on { "on" } else { "off" })
            }
            Command::Heal { profile } => format!("/heal {profile}"),
        }
    }
}

/// Why a message is not a command; the text is the reply the operator gets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("not a command: commands start with /, send /help for the list")]
    NotACommand,
    #[error("unknown command /{0}: send /help for the list")]
    Unknown(String),
    #[error("usage: {0}")]
    Usage(&'static str),
    #[error("{0}")]
    Profile(String),
}

const USAGE_LOGS: &str = "/logs <profile> [lines]";
const USAGE_START: &str = "/start <profile>";
const USAGE_STOP: &str = "/stop <profile>";
const USAGE_RESTART: &str = "/restart <profile>";
const USAGE_CONFIG: &str = "/config <profile> get <path>  or  /config <profile> set <path> <json5>";
const USAGE_ROLLBACK: &str = "/rollback <profile>";
const USAGE_WATCH: &str = "/watch  or  /watch off <profile>  or  /watch on <profile>";
const USAGE_HEAL: &str = "/heal <profile>";

/// Parses one message. `/cmd@botname` (how groups address a bot) is
/// accepted; arguments are separated by whitespace, except the value of
/// `/config … set`, which is the rest of the line as written.
pub fn parse(text: &str) -> Result<Command, ParseError> {
    let text = text.trim();
    let Some(rest) = text.strip_prefix('/') else {
        return Err(ParseError::NotACommand);
    };
    let (head, args) = rest
        .split_once(char::is_whitespace)
        .map_or((rest, ""), |(h, a)| (h, a.trim()));
    let name = head
        .split_once('@')
        .map_or(head, |(n, _)| n)
        .to_ascii_lowercase();
    let words: Vec<&str> = args.split_whitespace().collect();
    let profile = |usage: &'static str| -> Result<Profile, ParseError> {
        let raw = words.first().ok_or(ParseError::Usage(usage))?;
        Profile::parse(raw).map_err(|e| ParseError::Profile(e.to_string()))
    };
    let only_profile = |usage: &'static str| -> Result<Profile, ParseError> {
        if words.len() != 1 {
            return Err(ParseError::Usage(usage));
        }
        profile(usage)
    };
    let no_args = |c: Command| {
        if words.is_empty() {
            Ok(c)
        } else {
            Err(ParseError::Usage(match c {
                Command::Help => "/help",
                Command::Status => "/status",
                Command::Ports => "/ports",
                _ => "/doctor",
            }))
        }
    };
    match name.as_str() {
        "start" if words.is_empty() => Ok(Command::Hello),
        "start" => Ok(Command::Start {
            profile: only_profile(USAGE_START)?,
        }),
        "help" => no_args(Command::Help),
        "status" => no_args(Command::Status),
        "ports" => no_args(Command::Ports),
        "doctor" => no_args(Command::Doctor),
        "stop" => Ok(Command::Stop {
            profile: only_profile(USAGE_STOP)?,
        }),
        "restart" => Ok(Command::Restart {
            profile: only_profile(USAGE_RESTART)?,
        }),
        "rollback" => Ok(Command::Rollback {
            profile: only_profile(USAGE_ROLLBACK)?,
        }),
        "heal" => Ok(Command::Heal {
            profile: only_profile(USAGE_HEAL)?,
        }),
        "watch" => match words.as_slice() {
            [] => Ok(Command::Watch),
            [switch, raw] => {
                let on = match *switch {
                    "on" => true,
                    "off" => false,
                    _ => return Err(ParseError::Usage(USAGE_WATCH)),
                };
                let profile =
                    Profile::parse(raw).map_err(|e| ParseError::Profile(e.to_string()))?;
                Ok(Command::WatchSet { profile, on })
            }
            _ => Err(ParseError::Usage(USAGE_WATCH)),
        },
        "logs" => {
            let profile = profile(USAGE_LOGS)?;
            let lines = match words.get(1..) {
                Some([]) | None => DEFAULT_LOG_LINES,
                Some([n]) => match n.parse::<usize>() {
                    Ok(n) if (1..=MAX_LOG_LINES).contains(&n) => n,
                    _ => return Err(ParseError::Usage("/logs <profile> [lines], lines 1–200")),
                },
                Some(_) => return Err(ParseError::Usage(USAGE_LOGS)),
            };
            Ok(Command::Logs { profile, lines })
        }
        "config" => {
            let profile = profile(USAGE_CONFIG)?;
            match (words.get(1).copied(), words.get(2).copied()) {
                (Some("get"), Some(path)) if words.len() == 3 => Ok(Command::ConfigGet {
                    profile,
                    path: path.to_string(),
                }),
                (Some("set"), Some(path)) if words.len() >= 4 => {
                    // The value keeps its inner spacing: `{ a: 1 }` stays one JSON5 value.
                    let value = rest_after(args, 3);
                    Ok(Command::ConfigSet {
                        profile,
                        path: path.to_string(),
                        value: value.to_string(),
                    })
                }
                _ => Err(ParseError::Usage(USAGE_CONFIG)),
            }
        }
        other => Err(ParseError::Unknown(other.to_string())),
    }
}

/// `text` without its first `n` whitespace-separated words.
fn rest_after(text: &str, n: usize) -> &str {
    let mut rest = text.trim_start();
    for _ in 0..n {
        rest = rest
            .split_once(char::is_whitespace)
            .map_or("", |(_, r)| r)
            .trim_start();
    }
    rest.trim_end()
}

/// The targets as a list for people ("main, work"); `None` when there
/// are none.
pub fn target_names(targets: &[Profile]) -> Option<String> {
    (!targets.is_empty()).then(|| {
        targets
            .iter()
            .map(Profile::name)
            .collect::<Vec<_>>()
            .join(", ")
    })
}

/// The reply to `/help`.
pub fn help_text(targets: &[Profile]) -> String {
    let list = target_names(targets).unwrap_or_else(|| "none".to_string());
    format!(
        "Rescue commands (targets: {list})\n\
         /status — state of every target, with its config errors\n\
         /ports — the port plan of all profiles\n\
         /logs <profile> [lines] — the newest log lines (default {DEFAULT_LOG_LINES})\n\
         /start <profile>, /stop <profile>, /restart <profile>\n\
         /config <profile> get <path>\n\
         /config <profile> set <path> <json5> — validated, atomic, backed up\n\
         /rollback <profile> — restore the last known good config\n\
         /doctor — the isolation check across all profiles\n\
         /watch — the watch of every target; /watch off|on <profile> pauses or resumes it\n\
         /heal <profile> — run the recovery ladder now (restart, then rollback when allowed)\n\
         /help — this list\n\
         Commands that change something ask for a confirmation first."
    )
}

/// Cuts `text` into messages of at most `max` characters, at line breaks
/// where it can; a single longer line is cut at the limit.
pub fn split_reply(text: &str, max: usize) -> Vec<String> {
    let max = max.max(1);
    let mut out: Vec<String> = Vec::new();
    // The message being filled and its length in characters.
    let mut current: Option<(String, usize)> = None;
    for line in text.split('\n') {
        let len = line.chars().count();
        if let Some((buf, used)) = current.as_mut() {
            if *used + 1 + len <= max {
                buf.push('\n');
                buf.push_str(line);
                *used += 1 + len;
                continue;
            }
            out.extend(current.take().map(|(buf, _)| trim_blank_end(buf)));
        }
        if len == 0 && !out.is_empty() {
            // A blank line opening a message carries nothing.
            continue;
        }
        if len <= max {
            current = Some((line.to_string(), len));
        } else {
            let chars: Vec<char> = line.chars().collect();
            let mut chunks = chars.chunks(max).peekable();
            while let Some(chunk) = chunks.next() {
                let piece: String = chunk.iter().collect();
                if chunks.peek().is_some() {
                    out.push(piece);
                } else {
                    current = Some((piece, chunk.len()));
                }
            }
        }
    }
    out.extend(current.map(|(buf, _)| trim_blank_end(buf)));
    if out.is_empty() {
        out.push(String::new());
    }
    out
}

fn trim_blank_end(buf: String) -> String {
    let kept = buf.trim_end_matches('\n').len();
    let mut buf = buf;
    buf.truncate(kept);
    buf
}

/// A pairing code: [`CODE_LEN`] letters of [`CODE_ALPHABET`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PairingCode(String);

impl PairingCode {
    /// The code made from `random` bytes (one letter per byte; needs [`CODE_LEN`]).
    pub fn from_random(random: &[u8; CODE_LEN]) -> PairingCode {
        let n = CODE_ALPHABET.len();
        PairingCode(
            random
                .iter()
                .map(|b| char::from(CODE_ALPHABET[usize::from(*b) % n]))
                .collect(),
        )
    }

    /// Reads a code as an operator typed it (any case, spaces and dashes ignored).
    pub fn parse(raw: &str) -> Result<PairingCode, PairingError> {
        let code: String = raw
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let ok =
            code.chars().count() == CODE_LEN && code.bytes().all(|b| CODE_ALPHABET.contains(&b));
        if ok {
            Ok(PairingCode(code))
        } else {
            Err(PairingError::BadCode(raw.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PairingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A user waiting for approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub code: PairingCode,
    pub user_id: u64,
    /// `@username` or the display name, for the operator to recognise.
    pub who: String,
    pub chat_id: i64,
    /// Seconds since the Unix epoch.
    pub created: u64,
}

impl Pending {
    pub fn expired(&self, now: u64) -> bool {
        now >= self.created.saturating_add(PAIRING_TTL_SECS)
    }
}

/// Why a pairing action was refused; each says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairingError {
    #[error("{0:?} is not a pairing code: codes are {CODE_LEN} letters and digits, as the bot sent them")]
    BadCode(String),
    #[error("no pending pairing request has the code {0}: it expired (codes last 1 hour) or was handled; `pairing list` shows the pending ones")]
    UnknownCode(String),
}

/// What an unknown user's message leads to under `dmPolicy: pairing`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PairingOutcome {
    /// A new request; the user gets this code.
    Created(Pending),
    /// The user already waits; they get their code again.
    Existing(Pending),
    /// [`MAX_PENDING`] users already wait: the user is told to try later.
    Full,
}

/// Pending pairing requests and approved users: the state a pairing store keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pairings {
    pub pending: Vec<Pending>,
    /// User ids the operator approved, in approval order.
    pub approved: Vec<u64>,
}

impl Pairings {
    /// Drops expired requests; returns whether any was dropped.
    pub fn prune(&mut self, now: u64) -> bool {
        let before = self.pending.len();
        self.pending.retain(|p| !p.expired(now));
        before != self.pending.len()
    }

    /// An unknown user wrote: reuse their code, make a new one, or refuse when full.
    /// `code` is used only when a new request is made; a code already in use is
    /// never handed out twice (the caller draws again on `None`).
    pub fn request(
        &mut self,
        user_id: u64,
        who: &str,
        chat_id: i64,
        now: u64,
        code: PairingCode,
    ) -> Option<PairingOutcome> {
        self.prune(now);
        if let Some(p) = self.pending.iter().find(|p| p.user_id == user_id) {
            return Some(PairingOutcome::Existing(p.clone()));
        }
        if self.pending.len() >= MAX_PENDING {
            return Some(PairingOutcome::Full);
        }
        if self.pending.iter().any(|p| p.code == code) {
            return None;
        }
        let p = Pending {
            code,
            user_id,
            who: who.to_string(),
            chat_id,
            created: now,
        };
        self.pending.push(p.clone());
        Some(PairingOutcome::Created(p))
    }

    /// Approves a pending code: the user joins `approved`.
    pub fn approve(&mut self, code: &PairingCode, now: u64) -> Result<Pending, PairingError> {
        let p = self.take(code, now)?;
        if !self.approved.contains(&p.user_id) {
            self.approved.push(p.user_id);
        }
        Ok(p)
    }

    /// Denies a pending code: the request is dropped.
    pub fn deny(&mut self, code: &PairingCode, now: u64) -> Result<Pending, PairingError> {
        self.take(code, now)
    }

    fn take(&mut self, code: &PairingCode, now: u64) -> Result<Pending, PairingError> {
        self.prune(now);
        let at = self
            .pending
            .iter()
            .position(|p| &p.code == code)
            .ok_or_else(|| PairingError::UnknownCode(code.to_string()))?;
        Ok(self.pending.remove(at))
    }
}

/// Who may talk to the bot under each `dmPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Commands are executed.
    Operator,
    /// The user gets the pairing reply and nothing else.
    Pair,
    /// No reply at all.
    Ignore,
}

/// The access decision for a private message from `user_id`. Group chats
/// never reach here: the caller ignores them.
pub fn access(
    policy: crate::config::DmPolicy,
    allow_from: &[u64],
    approved: &[u64],
    user_id: u64,
) -> Access {
    use crate::config::DmPolicy;
    let known = allow_from.contains(&user_id);
    match policy {
        DmPolicy::Disabled => Access::Ignore,
        DmPolicy::Allowlist if known => Access::Operator,
        DmPolicy::Allowlist => Access::Ignore,
        DmPolicy::Pairing if known || approved.contains(&user_id) => Access::Operator,
        DmPolicy::Pairing => Access::Pair,
    }
}

/// Whether `user_id` may answer approvals (Allow once / Always / Deny) on
/// this bot: a user on `allowFrom` always; on a rescue bot also a user the
/// operator approved by pairing (they are its operators). A user who only
/// paired to chat with the main bot's assistant is not an operator.
pub fn is_operator(allow_from: &[u64], approved: &[u64], rescue_bot: bool, user_id: u64) -> bool {
    allow_from.contains(&user_id) || (rescue_bot && approved.contains(&user_id))
}

/// Whether a group message is answered: the group must be allowed
/// (`groups` names it or `"*"`, or no `groups` at all under
/// `groupPolicy: "open"`), the sender must be allowed in it by the
/// effective `groupPolicy` (`allowlist`: `groupAllowFrom`, else
/// `allowFrom`, plus the group's own `allowFrom`), and the bot must be
/// mentioned unless the group sets `requireMention: false`. These are
/// OpenClaw's rules, so a copied config behaves the same.
pub fn group_allowed(
    tg: &crate::config::Telegram,
    chat_id: i64,
    sender: u64,
    mentioned: bool,
) -> bool {
    use crate::config::GroupPolicy;
    let entry = tg
        .groups
        .get(&chat_id.to_string())
        .or_else(|| tg.groups.get("*"));
    let policy_default = tg.group_policy.unwrap_or(GroupPolicy::Allowlist);
    let entry = match entry {
        Some(e) => Some(e),
        None if tg.groups.is_empty() && policy_default == GroupPolicy::Open => None,
        None => return false,
    };
    if entry.is_some_and(|e| e.enabled == Some(false)) {
        return false;
    }
    let policy = entry.and_then(|e| e.group_policy).unwrap_or(policy_default);
    let sender_ok = match policy {
        GroupPolicy::Disabled => false,
        GroupPolicy::Open => true,
        GroupPolicy::Allowlist => {
            tg.group_allow_from
                .as_deref()
                .unwrap_or(&tg.allow_from)
                .contains(&sender)
                || entry.is_some_and(|e| e.allow_from.contains(&sender))
        }
    };
    let needs_mention = entry.and_then(|e| e.require_mention).unwrap_or(true);
    sender_ok && (mentioned || !needs_mention)
}

/// What a chat message to an assistant bot asks of the bot itself rather
/// than of the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatCommand {
    /// `/start` (Telegram's first message) and `/help`.
    Help,
    /// `/new`: a fresh session.
    New,
    /// `/reset`: the same, as OpenClaw words it.
    Reset,
    /// `/stop`: aborts the run going on (and the queued ones) of this chat.
    Stop,
}

/// Reads `/start`, `/help`, `/new`, `/reset` and `/stop` (also as
/// `/cmd@bot`, how groups address a bot) with nothing after them; anything
/// else is for the model.
pub fn chat_command(text: &str) -> Option<ChatCommand> {
    let text = text.trim();
    let rest = text.strip_prefix('/')?;
    if rest.contains(char::is_whitespace) {
        return None;
    }
    let name = rest.split_once('@').map_or(rest, |(n, _)| n);
    match name.to_ascii_lowercase().as_str() {
        "start" | "help" => Some(ChatCommand::Help),
        "new" => Some(ChatCommand::New),
        "reset" => Some(ChatCommand::Reset),
        "stop" => Some(ChatCommand::Stop),
        _ => None,
    }
}

/// The rescue command an assistant proposes (`action` one of `start`,
/// `stop`, `restart`, `rollback`, `config_set`), built through [`parse`]
/// so it is exactly the slash command an operator would type. Only
/// commands that change something are proposed; the others the assistant
/// runs itself.
pub fn proposal(
    action: &str,
    profile: &str,
    path: Option<&str>,
    value: Option<&str>,
) -> Result<Command, ParseError> {
    let line = match (action, path, value) {
        ("start" | "stop" | "restart" | "rollback", None, None) => format!("/{action} {profile}"),
        ("config_set", Some(path), Some(value)) => format!("/config {profile} set {path} {value}"),
        _ => {
            return Err(ParseError::Usage(
                "propose one of start, stop, restart, rollback (a profile) or config_set (a profile, a path and a JSON5 value)",
            ))
        }
    };
    let command = parse(&line)?;
    if command.mutates() {
        Ok(command)
    } else {
        Err(ParseError::Usage("only changes are proposed"))
    }
}

/// Cuts an answer into messages of at most `max` characters: at the last
/// paragraph break (a blank line) that fits when `paragraphs` is set, else
/// at the last line break, else at the last space, else at the limit.
/// Nothing is dropped but the whitespace at a cut.
pub fn split_answer(text: &str, max: usize, paragraphs: bool) -> Vec<String> {
    let max = max.max(1);
    let mut out = Vec::new();
    let mut rest = text.trim_matches('\n');
    while rest.chars().count() > max {
        // Byte offset of the character just past the limit.
        let limit = rest.char_indices().nth(max).map_or(rest.len(), |(i, _)| i);
        let window = &rest[..limit];
        let cut = paragraphs
            .then(|| window.rfind("\n\n"))
            .flatten()
            .filter(|&at| at > 0)
            .or_else(|| window.rfind('\n').filter(|&at| at > 0))
            .or_else(|| window.rfind(' ').filter(|&at| at > 0))
            .unwrap_or(limit);
        let piece = rest[..cut].trim_end();
        if !piece.is_empty() {
            out.push(piece.to_string());
        }
        rest = rest[cut..].trim_start_matches(['\n', ' ']);
    }
    if !rest.trim().is_empty() || out.is_empty() {
        out.push(rest.trim_end().to_string());
    }
    out
}

/// Why an onboarding answer is refused; the text says what to enter instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    #[error("this is not a bot token: BotFather's tokens look like 123456789:AA… (digits, a colon, 30 or more letters, digits, - or _); copy it again from the BotFather chat")]
    TokenShape,
    #[error("{0:?} is not a Telegram user id: it is a number (send /start to the bot and onboarding shows it, or ask @userinfobot)")]
    UserId(String),
    #[error("{0}")]
    Target(String),
    #[error("the rescue bot cannot operate on its own profile {0}: pick the gateways it should look after")]
    SelfTarget(String),
}

/// Checks the shape of a BotFather token (Telegram still has the last word).
pub fn check_token(token: &str) -> Result<(), StepError> {
    let (id, secret) = token.trim().split_once(':').ok_or(StepError::TokenShape)?;
    let id_ok = !id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit());
    let secret_ok = secret.len() >= 30
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if id_ok && secret_ok {
        Ok(())
    } else {
        Err(StepError::TokenShape)
    }
}

/// Reads a Telegram user id as typed.
pub fn parse_user_id(raw: &str) -> Result<u64, StepError> {
    match raw.trim().parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(StepError::UserId(raw.to_string())),
    }
}

/// Reads a comma- or space-separated list of Telegram user ids (a bot's
/// operators), each as [`parse_user_id`] reads one, without repeats; empty
/// is none (operators pair later).
pub fn parse_user_ids(raw: &str) -> Result<Vec<u64>, StepError> {
    let mut out = Vec::new();
    for word in raw
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| !w.is_empty())
    {
        let id = parse_user_id(word)?;
        if !out.contains(&id) {
            out.push(id);
        }
    }
    Ok(out)
}

/// Reads a comma- or space-separated list of target profiles; `own` (the
/// rescue profile itself) is refused.
pub fn parse_targets(raw: &str, own: &Profile) -> Result<Vec<Profile>, StepError> {
    let mut out: Vec<Profile> = Vec::new();
    for word in raw
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| !w.is_empty())
    {
        let p = Profile::parse(word).map_err(|e| StepError::Target(e.to_string()))?;
        if &p == own {
            return Err(StepError::SelfTarget(p.to_string()));
        }
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok(out)
}

/// The profiles a rescue gateway acts on: `rescue.targets` when set, else
/// every other known profile.
pub fn effective_targets(configured: &[Profile], known: &[Profile], own: &Profile) -> Vec<Profile> {
    let source = if configured.is_empty() {
        known
    } else {
        configured
    };
    let mut out: Vec<Profile> = Vec::new();
    for p in source {
        if p != own && !out.contains(p) {
            out.push(p.clone());
        }
    }
    out
}

/// What removing profile `gone` does to another profile's `rescue.targets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetsAfter {
    /// The list does not name it.
    Untouched,
    /// The list without it.
    Without(Vec<Profile>),
    /// It was the only target. An empty list means "every other profile",
    /// which would widen what that rescue bot may act on, so the name
    /// stays until the operator chooses new targets.
    OnlyTarget,
}

/// `rescue.targets` of a rescue profile once profile `gone` is removed.
pub fn targets_without(configured: &[Profile], gone: &Profile) -> TargetsAfter {
    if !configured.contains(gone) {
        return TargetsAfter::Untouched;
    }
    let rest: Vec<Profile> = configured.iter().filter(|p| *p != gone).cloned().collect();
    if rest.is_empty() {
        TargetsAfter::OnlyTarget
    } else {
        TargetsAfter::Without(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DmPolicy;

    fn p(name: &str) -> Profile {
        Profile::parse(name).expect("valid profile")
    }

    #[test]
    fn parses_commands() {
        fn check(input: &str, expected: Result<Command, ParseError>) {
            assert_eq!(parse(input), expected, "{input}");
        }
        check("/start", Ok(Command::Hello));
        check("/help@rescue_bot", Ok(Command::Help));
        check(" /STATUS ", Ok(Command::Status));
        check("/ports", Ok(Command::Ports));
        check("/doctor", Ok(Command::Doctor));
        check("/doctor now", Err(ParseError::Usage("/doctor")));
        check(
            "/logs main",
            Ok(Command::Logs {
                profile: p("main"),
                lines: DEFAULT_LOG_LINES,
            }),
        );
        check(
            "/logs main 5",
            Ok(Command::Logs {
                profile: p("main"),
                lines: 5,
            }),
        );
        check(
            "/logs main 0",
            Err(ParseError::Usage("/logs <profile> [lines], lines 1–200")),
        );
        check("/logs", Err(ParseError::Usage(USAGE_LOGS)));
        check("/start main", Ok(Command::Start { profile: p("main") }));
        check("/stop main", Ok(Command::Stop { profile: p("main") }));
        check("/stop main now", Err(ParseError::Usage(USAGE_STOP)));
        check("/restart main", Ok(Command::Restart { profile: p("main") }));
        check(
            "/rollback main",
            Ok(Command::Rollback { profile: p("main") }),
        );
        check(
            "/config main get gateway.port",
            Ok(Command::ConfigGet {
                profile: p("main"),
                path: "gateway.port".into(),
            }),
        );
        check(
            "/config main set browser.profiles.work { cdpPort: 18900 }",
            Ok(Command::ConfigSet {
                profile: p("main"),
                path: "browser.profiles.work".into(),
                value: "{ cdpPort: 18900 }".into(),
            }),
        );
        check(
            "/config main set gateway.port",
            Err(ParseError::Usage(USAGE_CONFIG)),
        );
        check("/config main drop x", Err(ParseError::Usage(USAGE_CONFIG)));
        check("/watch", Ok(Command::Watch));
        check(
            "/watch off main",
            Ok(Command::WatchSet {
                profile: p("main"),
                on: false,
            }),
        );
        check(
            "/watch on main",
            Ok(Command::WatchSet {
                profile: p("main"),
                on: true,
            }),
        );
        check("/watch pause main", Err(ParseError::Usage(USAGE_WATCH)));
        check("/watch main", Err(ParseError::Usage(USAGE_WATCH)));
        check("/heal main", Ok(Command::Heal { profile: p("main") }));
        check("/heal", Err(ParseError::Usage(USAGE_HEAL)));
        check("/nuke", Err(ParseError::Unknown("nuke".into())));
        check("hello", Err(ParseError::NotACommand));
        assert!(matches!(
            parse("/stop Bad!Name"),
            Err(ParseError::Profile(_))
        ));
    }

    #[test]
    fn only_changes_mutate() {
        fn check(input: &str, expected: bool) {
            assert_eq!(parse(input).expect("parses").mutates(), expected, "{input}");
        }
        check("/status", false);
        check("/logs main", false);
        check("/config main get gateway", false);
        check("/config main set gateway.port 18800", true);
        check("/start main", true);
        check("/stop main", true);
        check("/restart main", true);
        check("/rollback main", true);
        check("/start", false);
    }

    #[test]
    fn describe_round_trips() {
        for text in [
            "/status",
            "/logs main 7",
            "/config main set gateway.port 18800",
            "/rollback main",
        ] {
            let c = parse(text).expect("parses");
            assert_eq!(parse(&c.describe()).expect("parses again"), c);
        }
    }

    #[test]
    fn help_names_targets() {
        let h = help_text(&[p("main"), p("work")]);
        assert!(h.starts_with("Rescue commands (targets: main, work)"));
        for c in [
            "/status",
            "/ports",
            "/logs",
            "/restart",
            "/config",
            "/rollback",
            "/doctor",
        ] {
            assert!(h.contains(c), "{c}");
        }
        assert!(help_text(&[]).contains("targets: none"));
    }

    #[test]
    fn splits_replies() {
        fn check(text: &str, max: usize, expected: &[&str]) {
            assert_eq!(split_reply(text, max), expected, "{text:?} / {max}");
        }
        check("", 10, &[""]);
        check("short", 10, &["short"]);
        check("aaa\nbbb\nccc", 7, &["aaa\nbbb", "ccc"]);
        check("aaa\nbbb\nccc", 11, &["aaa\nbbb\nccc"]);
        check("abcdefghij", 4, &["abcd", "efgh", "ij"]);
        check("ab\n\ncd", 3, &["ab", "cd"]);
        check("ééé\nü", 4, &["ééé", "ü"]);
    }

    #[test]
    fn split_keeps_every_character_and_the_limit() {
        let text: String = (0..3000)
            .map(|i| format!("line {i} {}\n", "x".repeat(i % 50)))
            .collect();
        let parts = split_reply(&text, MAX_MESSAGE_CHARS);
        assert!(parts.len() > 1);
        assert!(parts.iter().all(|p| p.chars().count() <= MAX_MESSAGE_CHARS));
        assert_eq!(parts.join("\n").trim_end(), text.trim_end());
    }

    fn code(c: u8) -> PairingCode {
        PairingCode::from_random(&[c; CODE_LEN])
    }

    #[test]
    fn pairing_codes() {
        fn check(raw: &str, ok: bool) {
            assert_eq!(PairingCode::parse(raw).is_ok(), ok, "{raw}");
        }
        check("ABCD2345", true);
        check("abcd-2345", true);
        check("ABCD 2345", true);
        check("ABCD0345", false);
        check("ABC", false);
        assert_eq!(code(0).as_str(), "AAAAAAAA");
        assert_eq!(
            PairingCode::from_random(&[30, 31, 0, 1, 2, 3, 4, 5]).as_str(),
            "9AABCDEF"
        );
    }

    #[test]
    fn pairing_requests_expire_reuse_and_cap() {
        let mut s = Pairings::default();
        let Some(PairingOutcome::Created(first)) = s.request(1, "@a", 1, 100, code(0)) else {
            panic!("created");
        };
        assert_eq!(
            s.request(1, "@a", 1, 200, code(1)),
            Some(PairingOutcome::Existing(first.clone()))
        );
        assert_eq!(s.request(2, "@b", 2, 200, code(0)), None, "code in use");
        assert!(matches!(
            s.request(2, "@b", 2, 200, code(1)),
            Some(PairingOutcome::Created(_))
        ));
        assert!(matches!(
            s.request(3, "@c", 3, 200, code(2)),
            Some(PairingOutcome::Created(_))
        ));
        assert_eq!(
            s.request(4, "@d", 4, 200, code(3)),
            Some(PairingOutcome::Full)
        );
        // An hour after the first request it is gone and a slot is free.
        let later = 100 + PAIRING_TTL_SECS;
        assert!(matches!(
            s.request(4, "@d", 4, later, code(3)),
            Some(PairingOutcome::Created(_))
        ));
        assert_eq!(
            s.approve(&first.code, later),
            Err(PairingError::UnknownCode(first.code.to_string()))
        );
        let approved = s.approve(&code(1), later).expect("pending");
        assert_eq!(approved.user_id, 2);
        assert_eq!(s.approved, vec![2]);
        assert_eq!(s.deny(&code(2), later).map(|p| p.user_id), Ok(3));
        assert_eq!(s.pending.len(), 1);
    }

    #[test]
    fn access_by_policy() {
        fn check(policy: DmPolicy, user: u64, expected: Access) {
            assert_eq!(
                access(policy, &[10], &[20], user),
                expected,
                "{policy:?} {user}"
            );
        }
        check(DmPolicy::Pairing, 10, Access::Operator);
        check(DmPolicy::Pairing, 20, Access::Operator);
        check(DmPolicy::Pairing, 30, Access::Pair);
        check(DmPolicy::Allowlist, 10, Access::Operator);
        check(DmPolicy::Allowlist, 20, Access::Ignore);
        check(DmPolicy::Allowlist, 30, Access::Ignore);
        check(DmPolicy::Disabled, 10, Access::Ignore);
    }

    #[test]
    fn answers_are_cut_on_paragraphs_then_lines_then_spaces() {
        fn check(text: &str, max: usize, paragraphs: bool, expected: &[&str]) {
            assert_eq!(
                split_answer(text, max, paragraphs),
                expected,
                "{text:?} / {max}"
            );
        }
        check("", 10, true, &[""]);
        check("short", 10, true, &["short"]);
        check("aa\nbb\n\ncc dd", 9, true, &["aa\nbb", "cc dd"]);
        check("aa\nbb\n\ncc dd", 9, false, &["aa\nbb", "cc dd"]);
        check("one two three", 8, true, &["one two", "three"]);
        check("abcdefghij", 4, true, &["abcd", "efgh", "ij"]);
        check("éééé ü", 4, true, &["éééé", "ü"]);
        let long: String = (0..500)
            .map(|i| format!("paragraph {i} {}\n\n", "x".repeat(i % 40)))
            .collect();
        let parts = split_answer(&long, 4000, true);
        assert!(parts.len() > 1);
        assert!(parts.iter().all(|p| p.chars().count() <= 4000));
        assert!(
            parts.iter().all(|p| p.starts_with("paragraph")),
            "cut on paragraphs"
        );
        let words = |t: &str| t.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        assert_eq!(words(&parts.join("\n\n")), words(&long), "nothing lost");
    }

    #[test]
    fn chat_commands_and_proposals() {
        assert_eq!(chat_command("/stop"), Some(ChatCommand::Stop));
        assert_eq!(chat_command(" /NEW@main_bot "), Some(ChatCommand::New));
        assert_eq!(chat_command("/reset"), Some(ChatCommand::Reset));
        assert_eq!(chat_command("/start"), Some(ChatCommand::Help));
        assert_eq!(chat_command("/stop main"), None, "a rescue command");
        assert_eq!(chat_command("stop"), None);
        assert_eq!(
            proposal("rollback", "main", None, None),
            Ok(Command::Rollback { profile: p("main") })
        );
        assert_eq!(
            proposal("config_set", "main", Some("logging.level"), Some("'warn'")),
            Ok(Command::ConfigSet {
                profile: p("main"),
                path: "logging.level".into(),
                value: "'warn'".into()
            })
        );
        assert!(proposal("doctor", "main", None, None).is_err());
        assert!(proposal("rollback", "Bad!", None, None).is_err());
        assert!(proposal("config_set", "main", Some("x"), None).is_err());
    }

    #[test]
    fn operators_are_allow_from_and_on_a_rescue_bot_its_approved_users() {
        assert!(is_operator(&[1], &[2], false, 1));
        assert!(!is_operator(&[1], &[2], false, 2), "paired for chat only");
        assert!(is_operator(&[1], &[2], true, 2));
        assert!(!is_operator(&[1], &[2], true, 3));
    }

    #[test]
    fn groups_need_an_entry_an_allowed_sender_and_a_mention() {
        let tg = |text: &str| {
            crate::config::load(text)
                .expect("valid")
                .config
                .channels
                .telegram
        };
        let none = tg("{ channels: { telegram: { allowFrom: [1] } } }");
        assert!(
            !group_allowed(&none, -5, 1, true),
            "no groups: none allowed"
        );
        let open = tg("{ channels: { telegram: { groupPolicy: 'open' } } }");
        assert!(group_allowed(&open, -5, 9, true));
        assert!(!group_allowed(&open, -5, 9, false), "a mention is needed");
        let listed = tg(
            "{ channels: { telegram: { allowFrom: [1], groups: { '-5': {}, '-6': { requireMention: false, allowFrom: [7] }, '-8': { enabled: false } } } } }",
        );
        assert!(group_allowed(&listed, -5, 1, true));
        assert!(!group_allowed(&listed, -5, 2, true), "not on allowFrom");
        assert!(!group_allowed(&listed, -7, 1, true), "not listed");
        assert!(
            group_allowed(&listed, -6, 7, false),
            "its own allowFrom, no mention needed"
        );
        assert!(!group_allowed(&listed, -8, 1, true), "disabled");
        let star = tg(
            "{ channels: { telegram: { groupAllowFrom: [3], groups: { '*': { groupPolicy: 'allowlist' } } } } }",
        );
        assert!(group_allowed(&star, -9, 3, true));
        assert!(!group_allowed(&star, -9, 1, true));
        let off =
            tg("{ channels: { telegram: { groupPolicy: 'disabled', groups: { '*': {} } } } }");
        assert!(!group_allowed(&off, -9, 1, true));
    }

    #[test]
    fn onboarding_steps() {
        assert_eq!(
            check_token("123456:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef_-"),
            Ok(())
        );
        for bad in [
            "",
            "123456",
            ":abc",
            "12a:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef",
            "1:short",
        ] {
            assert_eq!(check_token(bad), Err(StepError::TokenShape), "{bad}");
        }
        assert_eq!(parse_user_id(" 42 "), Ok(42));
        assert_eq!(parse_user_id("0"), Err(StepError::UserId("0".into())));
        assert_eq!(parse_user_id("@me"), Err(StepError::UserId("@me".into())));
        assert_eq!(parse_user_ids(" 42, 7 42\n9"), Ok(vec![42, 7, 9]));
        assert_eq!(parse_user_ids("  "), Ok(vec![]));
        assert_eq!(
            parse_user_ids("42, @me"),
            Err(StepError::UserId("@me".into()))
        );
        assert_eq!(parse_user_ids("42,0"), Err(StepError::UserId("0".into())));
        let own = p("rescue");
        assert_eq!(
            parse_targets("main, work main", &own),
            Ok(vec![p("main"), p("work")])
        );
        assert_eq!(
            parse_targets("main rescue", &own),
            Err(StepError::SelfTarget("rescue".into()))
        );
        assert!(matches!(
            parse_targets("Bad!", &own),
            Err(StepError::Target(_))
        ));
    }

    #[test]
    fn a_removed_profile_leaves_the_targets_without_widening_them() {
        assert_eq!(
            targets_without(&[p("main"), p("work")], &p("work")),
            TargetsAfter::Without(vec![p("main")])
        );
        assert_eq!(
            targets_without(&[p("main")], &p("work")),
            TargetsAfter::Untouched
        );
        assert_eq!(targets_without(&[], &p("work")), TargetsAfter::Untouched);
        assert_eq!(
            targets_without(&[p("work")], &p("work")),
            TargetsAfter::OnlyTarget
        );
    }

    #[test]
    fn targets_default_to_every_other_profile() {
        let own = p("rescue");
        let known = [p("default"), p("rescue"), p("main")];
        assert_eq!(
            effective_targets(&[], &known, &own),
            vec![p("default"), p("main")]
        );
        assert_eq!(
            effective_targets(&[p("main")], &known, &own),
            vec![p("main")]
        );
    }
}
