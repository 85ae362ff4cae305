//! Sessions: OpenClaw's session keys and the transcript store.
//!
//! Keys are canonical `agent:<agentId>:<rest>` (`agent:main:main` is the
//! owner's main session; DMs get `agent:<a>:<channel>:direct:<peer>` by
//! `session.dmScope`). The store keeps every message of every session; the
//! loop only needs [`SessionStore`]'s run methods, the gateway the rest.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use omniclaw_core::config::DmScope;

use crate::clock::Millis;
use crate::message::{Message, Usage, UserMessage};

/// A canonical session key: `agent:<agentId>:<rest>`, lower case.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct SessionKey(String);

/// The default agent id and main key (`agent:main:main`).
pub const DEFAULT_AGENT: &str = "main";
pub const MAIN_KEY: &str = "main";

impl SessionKey {
    /// The main session of `agent`.
    pub fn main(agent: &str) -> SessionKey {
        SessionKey(format!("agent:{agent}:{MAIN_KEY}"))
    }

    /// Canonicalises a key a client sent, as OpenClaw does: `main` → the
    /// agent's main session, a bare key `x` → `agent:<agent>:x`, an
    /// `agent:<id>:<rest>` key lower-cased. Refuses an empty key, an empty or
    /// `:`-led rest and an agent id outside `^[a-z0-9][a-z0-9_-]{0,63}$`.
    pub fn parse(raw: &str, agent: &str) -> Result<SessionKey, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err("a session key must not be empty".into());
        }
        if raw.len() > 512 {
            return Err("a session key has at most 512 characters".into());
        }
        let lower = raw.to_lowercase();
        if let Some(rest) = lower.strip_prefix("agent:") {
            let (id, rest) = rest.split_once(':').ok_or_else(|| {
                format!(
                    "session key {raw:?} has no part after the agent id (agent:<agentId>:<key>)"
                )
            })?;
            if !is_agent_id(id) {
                return Err(format!(
                    "session key {raw:?}: agent id {id:?} must match ^[a-z0-9][a-z0-9_-]{{0,63}}$"
                ));
            }
            if rest.is_empty() || rest.starts_with(':') {
                return Err(format!(
                    "session key {raw:?} has an empty key after the agent id"
                ));
            }
            return Ok(SessionKey(lower));
        }
        if lower == MAIN_KEY {
            return Ok(SessionKey::main(agent));
        }
        if lower.starts_with(':') {
            return Err(format!("session key {raw:?} must not start with ':'"));
        }
        Ok(SessionKey(format!("agent:{agent}:{lower}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The agent id part.
    pub fn agent_id(&self) -> &str {
        self.0
            .strip_prefix("agent:")
            .and_then(|r| r.split(':').next())
            .unwrap_or(DEFAULT_AGENT)
    }

    /// Whether this is an agent's main session (where `MEMORY.md` is loaded).
    pub fn is_main(&self) -> bool {
        self.0 == SessionKey::main(self.agent_id()).0
    }
}

impl fmt::Display for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who wrote a direct message to a channel (Telegram, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DmSender<'a> {
    /// The channel's name (`telegram`).
    pub channel: &'a str,
    /// The bot account, for `per-account-channel-peer` (`default` if none).
    pub account: Option<&'a str>,
    /// The sender's id on the channel.
    pub peer: &'a str,
    /// The owner of the gateway (an operator), whose main session this is.
    pub is_owner: bool,
}

/// `session.dmScope` when the config sets none: the main session while
/// only the owner may write, one session per sender as soon as more may
/// (OpenClaw's advice), so two people never read each other's turns.
pub fn default_dm_scope(configured: Option<DmScope>, senders_allowed: usize) -> DmScope {
    configured.unwrap_or(if senders_allowed > 1 {
        DmScope::PerChannelPeer
    } else {
        DmScope::Main
    })
}

/// The session a direct message belongs to, by `session.dmScope`:
/// `main` → the agent's main session, `per-peer` → `agent:<a>:direct:<peer>`,
/// `per-channel-peer` → `agent:<a>:<channel>:direct:<peer>`,
/// `per-account-channel-peer` → `agent:<a>:<channel>:<account>:direct:<peer>`.
/// A sender who is not the owner never shares the owner's main session:
/// under `main` they get their own per-channel session.
pub fn dm_session(scope: DmScope, agent: &str, sender: &DmSender<'_>) -> SessionKey {
    let clean = |s: &str| -> String {
        s.trim()
            .to_lowercase()
            .chars()
            .map(|c| {
                if c == ':' || c.is_whitespace() {
                    '-'
                } else {
                    c
                }
            })
            .collect()
    };
    let (channel, peer) = (clean(sender.channel), clean(sender.peer));
    let scope = match scope {
        DmScope::Main if !sender.is_owner => DmScope::PerChannelPeer,
        other => other,
    };
    SessionKey(match scope {
        DmScope::Main => return SessionKey::main(agent),
        DmScope::PerPeer => format!("agent:{agent}:direct:{peer}"),
        DmScope::PerChannelPeer => format!("agent:{agent}:{channel}:direct:{peer}"),
        DmScope::PerAccountChannelPeer => format!(
            "agent:{agent}:{channel}:{}:direct:{peer}",
            clean(sender.account.unwrap_or("default"))
        ),
    })
}

fn is_agent_id(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && id.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// What [`SessionStore::begin_run`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum Begin {
    /// The user message is stored (durably); run the turn.
    Started {
        session_id: String,
        message_seq: u64,
        /// The stored user message's entry id.
        message_id: String,
    },
    /// A run with this id is still going (a retried send): do nothing.
    InFlight,
    /// A run with this id already ended: replay its outcome.
    Done(RunOutcome),
    /// The id was used before for a different message.
    Conflict,
}

/// How a run ended, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    pub status: RunStatus,
    /// The final visible text (empty when nothing was said).
    pub text: String,
    pub usage: Usage,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub error: Option<String>,
    pub started_at: Millis,
    pub ended_at: Millis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Ok,
    Error,
    /// Aborted by a client, `/stop` or a timeout.
    Aborted,
    /// Cut by a kill or a restart: found unfinished when the store opened.
    Interrupted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Ok => "ok",
            RunStatus::Error => "error",
            RunStatus::Aborted => "aborted",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

/// A stored message with its place in the session.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMessage {
    /// Entry id (UUID v4).
    pub id: String,
    /// 1-based position in the session.
    pub seq: u64,
    pub run_id: Option<String>,
    pub message: Message,
}

/// What was spent since a moment: the usage of every stored assistant
/// message (each provider call is one), whatever became of its run — a call
/// cut by a kill was paid for all the same.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Spend {
    pub usd: f64,
    pub tokens: u64,
    /// USD per provider id.
    pub by_provider: std::collections::BTreeMap<String, f64>,
}

/// Where an appended message was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// 1-based position in the session.
    pub seq: u64,
    /// Entry id (UUID v4): clients match live rows to stored ones by it.
    pub id: String,
}

/// Errors of the store. They name the database file and the fix.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Message(String),
    #[error("cannot open the session store {}: {detail}", path.display())]
    Open { path: PathBuf, detail: String },
    #[error(
        "the session store {} has schema version {found}, newer than this OmniClaw reads (up to {supported}); \
         it was left untouched: upgrade OmniClaw, or move the file away to start with an empty store",
        path.display()
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error(
        "{} is not a session store (not an SQLite database, or damaged: {detail}); \
         move it away and an empty store is created in its place",
        path.display()
    )]
    NotADatabase { path: PathBuf, detail: String },
    #[error(
        "the disk holding the session store {} is full: nothing of this call was stored; free space on that disk",
        path.display()
    )]
    DiskFull { path: PathBuf },
    #[error(
        "the session store {} is open in another process (a gateway of this profile is running); \
         stop it, or use its sessions methods instead",
        path.display()
    )]
    Locked { path: PathBuf },
    #[error("session store {} is open read-only here (its gateway runs and owns it): change sessions through the gateway", path.display())]
    ReadOnly { path: PathBuf },
    #[error("session store {}: {detail}", path.display())]
    Sqlite { path: PathBuf, detail: String },
    #[error("session store {}: a stored entry cannot be read ({detail}); export the session to look at it, or delete it", path.display())]
    Corrupt { path: PathBuf, detail: String },
    #[error("run {run_id} is not known to the session store (begin_run first)")]
    UnknownRun { run_id: String },
    #[error("run {run_id} belongs to session {actual}, not {asked}")]
    WrongSession {
        run_id: String,
        asked: String,
        actual: String,
    },
    #[error("run {run_id} already ended ({}); nothing more can be added to it", status.as_str())]
    RunEnded { run_id: String, status: RunStatus },
    #[error("session {key} has a run in progress ({run_id}); abort it first")]
    RunInFlight { key: String, run_id: String },
}

/// The transcripts of one gateway.
///
/// Runs are serialized per session key by the caller; the store guarantees
/// that a completed message is stored exactly once and that a run cut by a
/// kill is marked interrupted when the store opens next.
pub trait SessionStore: Send + Sync {
    /// Stores the user message that starts run `run_id` in `key` (creating
    /// the session), unless the id was seen before.
    fn begin_run(
        &self,
        key: &SessionKey,
        run_id: &str,
        user: &UserMessage,
    ) -> Result<Begin, StoreError>;
    /// Appends an assistant or tool-result message of a running run.
    fn append(
        &self,
        key: &SessionKey,
        run_id: &str,
        message: &Message,
    ) -> Result<Appended, StoreError>;
    /// Records how the run ended (and its usage, for spend).
    fn finish_run(
        &self,
        key: &SessionKey,
        run_id: &str,
        outcome: &RunOutcome,
    ) -> Result<(), StoreError>;
    /// The last `limit` messages of the session's active history, oldest
    /// first (after the last reset).
    fn history(&self, key: &SessionKey, limit: usize) -> Result<Vec<StoredMessage>, StoreError>;
    /// What every session spent since `since` (epoch ms): the budget's input.
    fn spend_since(&self, since: Millis) -> Result<Spend, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_messages_get_their_session_by_dm_scope_and_strangers_never_the_owners() {
        let owner = DmSender {
            channel: "telegram",
            account: None,
            peer: "123",
            is_owner: true,
        };
        let other = DmSender {
            peer: "456",
            is_owner: false,
            ..owner
        };
        let key = |scope, s: &DmSender<'_>| dm_session(scope, "main", s).to_string();
        assert_eq!(key(DmScope::Main, &owner), "agent:main:main");
        assert_eq!(key(DmScope::Main, &other), "agent:main:telegram:direct:456");
        assert_eq!(key(DmScope::PerPeer, &owner), "agent:main:direct:123");
        assert_eq!(
            key(DmScope::PerChannelPeer, &owner),
            "agent:main:telegram:direct:123"
        );
        assert_eq!(
            key(DmScope::PerAccountChannelPeer, &other),
            "agent:main:telegram:default:direct:456"
        );
        for scope in [
            DmScope::Main,
            DmScope::PerPeer,
            DmScope::PerChannelPeer,
            DmScope::PerAccountChannelPeer,
        ] {
            assert_ne!(key(scope, &owner), key(scope, &other), "{scope:?}");
            assert!(SessionKey::parse(&key(scope, &other), "main").is_ok());
        }
        assert_eq!(default_dm_scope(None, 1), DmScope::Main);
        assert_eq!(default_dm_scope(None, 2), DmScope::PerChannelPeer);
        assert_eq!(default_dm_scope(Some(DmScope::Main), 5), DmScope::Main);
    }

    #[test]
    fn keys_are_canonicalised_as_openclaw_does() {
        let ok = |raw: &str| SessionKey::parse(raw, "main").map(|k| k.to_string());
        assert_eq!(ok("main").as_deref(), Ok("agent:main:main"));
        assert_eq!(ok("Agent:Main:MAIN").as_deref(), Ok("agent:main:main"));
        assert_eq!(ok("work").as_deref(), Ok("agent:main:work"));
        assert_eq!(
            ok("agent:main:telegram:direct:123").as_deref(),
            Ok("agent:main:telegram:direct:123")
        );
        for bad in [
            "",
            "agent:main",
            "agent:main:",
            "agent:main::x",
            "agent:-x:main",
            ":x",
        ] {
            assert!(ok(bad).is_err(), "{bad:?} must be refused");
        }
        let k = SessionKey::parse("agent:ops:main", "main").expect("key");
        assert_eq!(k.agent_id(), "ops");
        assert!(k.is_main());
        assert!(!SessionKey::parse("work", "main").expect("key").is_main());
    }
}
