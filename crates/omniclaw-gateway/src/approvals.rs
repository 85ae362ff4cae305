//! Approvals: a tool call that needs a person's yes (an `exec` in `ask`
//! mode) waits here until an operator answers — over the protocol
//! (`exec.approval.*` for OpenClaw's Control UI and apps, `plugin.approval.*`
//! for `openclaw tui`, both under `operator.approvals`), from a Telegram
//! button, or in the desktop app, which speaks the protocol. The first
//! answer wins and the others are told; no answer in time is a deny.
//! "Allow always" adds the exact command line to `tools.exec.allowlist`
//! through the one config edit path.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use omniclaw_agent::tools::{Approval, ApprovalRequest, Approver};
use serde_json::{json, Value};
use tokio::sync::{broadcast, oneshot};

use crate::hub::Hub;
use crate::protocol::ErrorShape;

/// How long an approval waits for an answer before it is a deny.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

pub use omniclaw_core::approval::Decision;

/// What a channel (Telegram) or the app is told about approvals.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// A new approval: its id, the exact command, why it asks, where.
    Requested(Pending),
    /// Decided (by whom), or expired (`by` is `"timeout"`).
    Resolved {
        id: String,
        decision: Decision,
        by: String,
    },
}

/// A pending approval as every surface shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub id: String,
    pub command: String,
    pub argv: Vec<String>,
    pub cwd: String,
    pub session_key: String,
    /// Why it asks ("tools.exec.mode is ask").
    pub reason: String,
    pub created_at_ms: u64,
    pub expires_at_ms: u64,
}

impl Pending {
    /// The `exec.approval.requested` payload (OpenClaw's shape).
    pub fn exec_event(&self) -> Value {
        json!({
            "approvalKind": "exec",
            "id": self.id,
            "request": {
                "command": self.command,
                "commandArgv": self.argv,
                "cwd": self.cwd,
                "agentId": "main",
                "sessionKey": self.session_key,
                "security": "allowlist",
                "ask": "always",
                "warningText": self.reason,
            },
            "createdAtMs": self.created_at_ms,
            "expiresAtMs": self.expires_at_ms,
        })
    }

    /// The `plugin.approval.requested` payload, which `openclaw tui` shows
    /// and answers.
    pub fn plugin_event(&self) -> Value {
        json!({
            "id": self.id,
            "request": {
                "title": format!("Run: {}", self.command),
                "description": format!("{} — in {}", self.reason, self.cwd),
                "severity": "warning",
                "toolName": "exec",
                "allowedDecisions": ["allow-once", "allow-always", "deny"],
                "agentId": "main",
                "sessionKey": self.session_key,
            },
            "createdAtMs": self.created_at_ms,
            "expiresAtMs": self.expires_at_ms,
        })
    }
}

struct Waiting {
    pending: Pending,
    answer: oneshot::Sender<Decision>,
}

/// The approvals of one gateway.
pub struct Approvals {
    waiting: Mutex<HashMap<String, Waiting>>,
    hub: Arc<Hub>,
    notices: broadcast::Sender<Notice>,
    timeout: Mutex<Duration>,
}

fn now_ms() -> u64 {
    crate::conn::now_ms()
}

impl Approvals {
    pub(crate) fn new(hub: Arc<Hub>) -> Approvals {
        let (notices, _) = broadcast::channel(64);
        Approvals {
            waiting: Mutex::new(HashMap::new()),
            hub,
            notices,
            timeout: Mutex::new(DEFAULT_TIMEOUT),
        }
    }

    fn waiting(&self) -> MutexGuard<'_, HashMap<String, Waiting>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How long approvals asked from now on wait.
    pub fn set_timeout(&self, timeout: Duration) {
        *self.timeout.lock().unwrap_or_else(|p| p.into_inner()) = timeout;
    }

    /// Approvals being asked and decided, for channels that show them.
    pub fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.notices.subscribe()
    }

    /// The approvals waiting now.
    pub fn pending(&self) -> Vec<Pending> {
        let mut list: Vec<Pending> = self.waiting().values().map(|w| w.pending.clone()).collect();
        list.sort_by_key(|p| p.created_at_ms);
        list
    }

    /// Asks the operators and waits for the first answer; none in time is
    /// a deny (told to everyone as such).
    pub async fn ask(&self, request: &ApprovalRequest, reason: &str) -> Decision {
        let timeout = *self.timeout.lock().unwrap_or_else(|p| p.into_inner());
        let created = now_ms();
        let pending = Pending {
            id: uuid::Uuid::new_v4().to_string(),
            command: request.command.clone(),
            argv: request.argv.clone(),
            cwd: request.workdir.display().to_string(),
            session_key: request.session_key.clone(),
            reason: reason.to_string(),
            created_at_ms: created,
            expires_at_ms: created + u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        };
        let (tx, rx) = oneshot::channel();
        self.waiting().insert(
            pending.id.clone(),
            Waiting {
                pending: pending.clone(),
                answer: tx,
            },
        );
        self.hub
            .to_approvers("exec.approval.requested", &pending.exec_event());
        self.hub
            .to_approvers("plugin.approval.requested", &pending.plugin_event());
        let _ = self.notices.send(Notice::Requested(pending.clone()));
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(decision)) => decision,
            // Expired (or the gateway is stopping): a deny, told as such.
            _ => {
                if self.waiting().remove(&pending.id).is_some() {
                    self.announce(&pending, Decision::Deny, "timeout");
                }
                Decision::Deny
            }
        }
    }

    fn announce(&self, pending: &Pending, decision: Decision, by: &str) {
        let event = json!({
            "id": pending.id,
            "decision": decision.as_str(),
            "resolvedBy": by,
            "ts": now_ms(),
            "request": pending.exec_event()["request"],
        });
        self.hub.to_approvers("exec.approval.resolved", &event);
        self.hub.to_approvers("plugin.approval.resolved", &event);
        let _ = self.notices.send(Notice::Resolved {
            id: pending.id.clone(),
            decision,
            by: by.to_string(),
        });
    }

    /// An operator's answer: the first one decides; a later one, or one for
    /// an unknown or expired id, is refused.
    pub fn resolve(&self, id: &str, decision: Decision, by: &str) -> Result<Pending, ErrorShape> {
        let Some(waiting) = self.waiting().remove(id) else {
            return Err(ErrorShape::invalid_request(
                "unknown or expired approval id: it was answered already or timed out",
            )
            .with_details(json!({"reason": "APPROVAL_NOT_FOUND"})));
        };
        let _ = waiting.answer.send(decision);
        self.announce(&waiting.pending, decision, by);
        Ok(waiting.pending)
    }

    /// `exec.approval.resolve` / `plugin.approval.resolve`.
    pub fn resolve_params(
        &self,
        method: &str,
        params: &Value,
        by: &str,
    ) -> Result<Value, ErrorShape> {
        crate::assistant::check_params(
            method,
            params,
            &["id", "decision", "reviewer", "grantExpiresInDays"],
            &["id", "decision"],
        )?;
        let id = params["id"].as_str().unwrap_or_default();
        let decision = params["decision"]
            .as_str()
            .and_then(Decision::parse)
            .ok_or_else(|| ErrorShape::invalid_request("invalid decision"))?;
        let pending = self.resolve(id, decision, by)?;
        Ok(json!({"ok": true, "id": pending.id, "decision": decision.as_str()}))
    }

    /// `exec.approval.get`.
    pub fn get(&self, params: &Value) -> Result<Value, ErrorShape> {
        let id = params["id"].as_str().unwrap_or_default();
        self.waiting()
            .get(id)
            .map(|w| w.pending.exec_event())
            .ok_or_else(|| ErrorShape::invalid_request("unknown or expired approval id"))
    }
}

/// Puts a command line on `tools.exec.allowlist`; `Err` says why not.
pub(crate) type AllowAlways = Arc<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// The agent's `Approver` for one gateway: asks [`Approvals`]; "always"
/// also puts the exact command line on `tools.exec.allowlist`.
pub(crate) struct GatewayApprover {
    pub approvals: Arc<Approvals>,
    /// Adds a command line to the allowlist (the config edit path);
    /// `Err` says why it could not, the command still runs once.
    pub allow_always: AllowAlways,
}

#[async_trait]
impl Approver for GatewayApprover {
    async fn approve(&self, request: &ApprovalRequest) -> Approval {
        let reason = "tools.exec.mode is ask: every command waits for an operator's yes";
        match self.approvals.ask(request, reason).await {
            Decision::AllowOnce => Approval::Allow,
            Decision::AllowAlways => {
                let line = request.argv.join(" ");
                if let Err(why) = (self.allow_always)(&line) {
                    tracing::warn!(command = %line, reason = %why, "allowed, but not added to tools.exec.allowlist");
                }
                Approval::Allow
            }
            Decision::Deny => Approval::Deny(Some(
                "an operator denied this command (or nobody answered in time)".into(),
            )),
        }
    }
}

/// Adds `line` to `tools.exec.allowlist` of `target`'s config (an "allow
/// always" answer), through the one config edit path; nothing when it is
/// there already.
pub(crate) fn allow_always(target: &omniclaw_os::edit::Target, line: &str) -> Result<(), String> {
    omniclaw_os::edit::edit_config(target, &omniclaw_os::edit::Options::default(), |text| {
        let current: Vec<Value> = omniclaw_core::config::parse(text)
            .ok()
            .and_then(|doc| {
                doc.value()
                    .pointer("/tools/exec/allowlist")
                    .and_then(Value::as_array)
                    .cloned()
            })
            .unwrap_or_default();
        if current.iter().any(|v| v.as_str() == Some(line)) {
            return Ok(text.to_string());
        }
        let mut list = current;
        list.push(Value::String(line.to_string()));
        omniclaw_core::config::set(
            text,
            "tools.exec.allowlist",
            &Value::Array(list).to_string(),
        )
    })
    .map(drop)
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(command: &str) -> ApprovalRequest {
        ApprovalRequest {
            session_key: "agent:main:main".into(),
            command: command.into(),
            argv: command.split(' ').map(String::from).collect(),
            workdir: "/w".into(),
        }
    }

    #[tokio::test]
    async fn the_first_answer_wins_and_everyone_is_told() {
        let hub = Arc::new(Hub::default());
        let (op, mut op_rx) = hub.register(true, false, 1 << 20);
        hub.allow_approvals(op.id);
        let (_reader, mut reader_rx) = hub.register(true, false, 1 << 20);
        let approvals = Arc::new(Approvals::new(hub.clone()));
        let mut notices = approvals.subscribe();
        let asking = {
            let a = approvals.clone();
            tokio::spawn(async move { a.ask(&request("ls -l"), "asks").await })
        };
        let Notice::Requested(p) = notices.recv().await.expect("notice") else {
            panic!("a request first")
        };
        assert_eq!(p.command, "ls -l");
        assert_eq!(approvals.pending().len(), 1);
        approvals
            .resolve(&p.id, Decision::AllowOnce, "operator")
            .expect("first answer");
        assert!(
            approvals.resolve(&p.id, Decision::Deny, "late").is_err(),
            "a second answer is refused"
        );
        assert_eq!(asking.await.expect("join"), Decision::AllowOnce);
        let mut names = Vec::new();
        while let Some((crate::hub::Outbound::Event { name, .. }, _)) = op_rx.try_recv() {
            names.push(name);
        }
        assert_eq!(
            names,
            [
                "exec.approval.requested",
                "plugin.approval.requested",
                "exec.approval.resolved",
                "plugin.approval.resolved"
            ]
        );
        assert!(
            reader_rx.try_recv().is_none(),
            "no approvals scope, no approvals"
        );
    }

    #[tokio::test]
    async fn no_answer_in_time_is_a_deny() {
        let hub = Arc::new(Hub::default());
        let approvals = Arc::new(Approvals::new(hub));
        approvals.set_timeout(Duration::from_millis(50));
        let mut notices = approvals.subscribe();
        assert_eq!(
            approvals.ask(&request("rm x"), "asks").await,
            Decision::Deny
        );
        let _requested = notices.recv().await.expect("requested");
        assert!(matches!(
            notices.recv().await.expect("resolved"),
            Notice::Resolved { decision: Decision::Deny, ref by, .. } if by == "timeout"
        ));
        assert!(approvals.pending().is_empty());
    }
}
