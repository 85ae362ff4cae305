//! The Telegram channel's hooks into this gateway: its assistant (turns,
//! `/stop`, `/new`, how a run ended) and its approvals (asked and decided,
//! answered from a button). The channel crate names them as traits; they
//! are read through [`Live`] at each call, so a reload that brings or
//! changes the assistant needs no new channel.

use std::sync::Arc;

use omniclaw_agent::session::{RunOutcome, SessionKey};
use omniclaw_channels::telegram::{self, Hooks};
use tokio::sync::{broadcast, mpsc};

use omniclaw_core::env::EnvSnapshot;
use omniclaw_os::secrets::{Routed, SecretStore};

use crate::approvals::{self, Approvals};
use crate::assistant::ChannelAccepted;
use crate::heal::TargetProber;
use crate::reload::Live;

/// The hooks a channel of the gateway `live` runs with: a rescue bot's
/// watch probes its targets with the environment its commands run with.
pub(crate) fn hooks(
    live: &Arc<Live>,
    settings: &telegram::Settings,
    secrets: Arc<dyn telegram::SecretSource>,
) -> Hooks {
    let env = EnvSnapshot::from_vars(settings.child_env.iter());
    let store: Arc<dyn SecretStore> = Arc::new(Routed::system(false));
    Hooks {
        assistant: Some(Arc::new(LiveAssistant(live.clone()))),
        approvals: Some(Arc::new(LiveApprovals(live.approvals()))),
        secrets: Some(secrets),
        prober: Some(Arc::new(TargetProber::new(env, store))),
    }
}

struct LiveAssistant(Arc<Live>);

const NO_ASSISTANT: &str = "the assistant is not running (see `omniclaw status`)";

impl telegram::Assistant for LiveAssistant {
    fn has_model(&self) -> bool {
        self.0.assistant().is_some_and(|a| a.has_model())
    }

    fn submit(&self, turn: telegram::Turn) -> Result<telegram::Submitted, String> {
        let a = self.0.assistant().ok_or(NO_ASSISTANT)?;
        match a.channel_turn(turn.key, &turn.run_id, &turn.message, turn.sender_is_owner) {
            Ok(ChannelAccepted::Started(events)) => Ok(telegram::Submitted::Started(events)),
            Ok(ChannelAccepted::InFlight) => Ok(telegram::Submitted::InFlight),
            Ok(ChannelAccepted::Done(outcome)) => Ok(telegram::Submitted::Done(outcome)),
            Err(e) => Err(e.message),
        }
    }

    fn outcome(&self, run_id: &str) -> Result<Option<RunOutcome>, String> {
        let a = self.0.assistant().ok_or(NO_ASSISTANT)?;
        a.run_outcome(run_id).map_err(|e| e.message)
    }

    fn abort(&self, key: &SessionKey) -> Vec<String> {
        self.0
            .assistant()
            .map(|a| a.abort_session(key))
            .unwrap_or_default()
    }

    fn reset(&self, key: &SessionKey, new: bool) -> Result<(), String> {
        let a = self.0.assistant().ok_or(NO_ASSISTANT)?;
        a.reset_session(key, new).map_err(|e| e.message)
    }
}

struct LiveApprovals(Arc<Approvals>);

impl telegram::Approvals for LiveApprovals {
    fn subscribe(&self) -> mpsc::UnboundedReceiver<telegram::Notice> {
        let mut notices = self.0.subscribe();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let notice = match notices.recv().await {
                    Ok(approvals::Notice::Requested(p)) => telegram::Notice::Asked(telegram::Ask {
                        id: p.id,
                        command: p.command,
                        cwd: p.cwd,
                        session_key: p.session_key,
                        reason: p.reason,
                        expires_at_ms: p.expires_at_ms,
                    }),
                    Ok(approvals::Notice::Resolved { id, decision, by }) => {
                        telegram::Notice::Decided { id, decision, by }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "the telegram channel missed approval notices");
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                };
                if tx.send(notice).is_err() {
                    break;
                }
            }
        });
        rx
    }

    fn resolve(&self, id: &str, decision: telegram::Decision, by: &str) -> Result<(), String> {
        self.0
            .resolve(id, decision, by)
            .map(drop)
            .map_err(|e| e.message)
    }
}
