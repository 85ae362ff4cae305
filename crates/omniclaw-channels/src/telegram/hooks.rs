//! What the channel needs of the gateway it runs in, as two small traits
//! the gateway implements (this crate cannot name the gateway's types: the
//! gateway depends on it): the assistant — submit a turn and follow its
//! events, abort a session's runs, reset a session, look up how a run
//! ended — and the approvals desk — hear of approvals asked and decided,
//! answer one.

use omniclaw_agent::run::RunEvent;
use omniclaw_agent::session::{RunOutcome, SessionKey};
use tokio::sync::mpsc::UnboundedReceiver;

/// One message for the assistant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    pub key: SessionKey,
    /// Derived from the update, so a retried update is the same run.
    pub run_id: String,
    pub message: String,
    /// The sender is an operator (`allowFrom`): only they see `MEMORY.md`
    /// in the main session.
    pub sender_is_owner: bool,
}

/// What became of a submitted turn.
pub enum Submitted {
    /// It runs (or waits behind the session's earlier turns); its events
    /// follow, the last being [`RunEvent::Ended`].
    Started(UnboundedReceiver<RunEvent>),
    /// A run with this id is going on already (this process started it
    /// before the channel restarted): its outcome comes later.
    InFlight,
    /// A run with this id ended before: its outcome.
    Done(RunOutcome),
}

/// The gateway's assistant as a channel uses it.
pub trait Assistant: Send + Sync {
    /// Whether a model is configured: without one free text gets a hint,
    /// not a run.
    fn has_model(&self) -> bool;
    fn submit(&self, turn: Turn) -> Result<Submitted, String>;
    /// How `run_id` ended; `None` while it runs or when it is unknown.
    fn outcome(&self, run_id: &str) -> Result<Option<RunOutcome>, String>;
    /// Aborts the queued and running turns of `key`; returns their run ids.
    fn abort(&self, key: &SessionKey) -> Vec<String>;
    /// Starts `key` afresh (`/new` when `new`, else `/reset`).
    fn reset(&self, key: &SessionKey, new: bool) -> Result<(), String>;
}

pub use omniclaw_core::approval::Decision;

/// A tool call waiting for an operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    pub id: String,
    /// The exact command line.
    pub command: String,
    pub cwd: String,
    pub session_key: String,
    /// Why it asks.
    pub reason: String,
    pub expires_at_ms: u64,
}

/// What the approvals desk tells a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Asked(Ask),
    /// `by` is who answered, or `timeout`.
    Decided {
        id: String,
        decision: Decision,
        by: String,
    },
}

/// The gateway's approvals as a channel uses them.
pub trait Approvals: Send + Sync {
    /// Approvals asked and decided from now on.
    fn subscribe(&self) -> UnboundedReceiver<Notice>;
    /// Answers approval `id`; the first answer wins, a later one is `Err`.
    fn resolve(&self, id: &str, decision: Decision, by: &str) -> Result<(), String>;
}
