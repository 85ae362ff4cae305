//! Tools the model may call (OpenClaw's names: `read`, `write`, `edit`, `ls`,
//! `web_fetch`, `exec`).
//!
//! Every call goes through one door: the loop asks the [`ToolPolicy`] (allow
//! / deny, and later approval) before [`Tool::call`] runs, and a refusal or a
//! failure goes back to the model as a tool error; a tool never ends the run.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

use async_trait::async_trait;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::provider::ToolSpec;

/// What a tool call has to work with.
#[derive(Debug, Clone)]
pub struct ToolContext {
    /// The workspace (`agents.defaults.workspace`); file tools never leave it.
    pub workspace: PathBuf,
    /// The session the call belongs to (for logs and approvals).
    pub session_key: String,
    /// Cancelled when the run is aborted or times out: a tool stops at once.
    pub cancel: CancellationToken,
    /// The whole environment a child process gets (no gateway token, no
    /// provider key): the caller builds it, tools never read the process
    /// environment.
    pub child_env: BTreeMap<OsString, OsString>,
}

/// What a tool gives back to the model.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutput {
    pub text: String,
    pub is_error: bool,
}

impl ToolOutput {
    pub fn ok(text: impl Into<String>) -> ToolOutput {
        ToolOutput {
            text: text.into(),
            is_error: false,
        }
    }

    pub fn error(text: impl Into<String>) -> ToolOutput {
        ToolOutput {
            text: text.into(),
            is_error: true,
        }
    }
}

/// One tool.
#[async_trait]
pub trait Tool: Send + Sync {
    /// Name, description and argument schema, as the model sees them.
    fn spec(&self) -> ToolSpec;
    /// Runs the call. Bad arguments, refusals and failures are
    /// `ToolOutput::error` with a message the model (and the user) can act on.
    async fn call(&self, args: Value, ctx: &ToolContext) -> ToolOutput;
}

/// `tools.allow` / `tools.deny` (OpenClaw's keys): names or `group:*`-free
/// plain names; deny wins; an empty allow list allows every tool not denied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolPolicy {
    pub allow: Vec<String>,
    pub deny: Vec<String>,
}

impl ToolPolicy {
    /// Whether the model may call `name`; `Err` says why not.
    pub fn check(&self, name: &str) -> Result<(), String> {
        if self.deny.iter().any(|d| d == name || d == "*") {
            return Err(format!("the tool {name} is denied by tools.deny"));
        }
        if !self.allow.is_empty() && !self.allow.iter().any(|a| a == name || a == "*") {
            return Err(format!(
                "the tool {name} is not in tools.allow ({})",
                self.allow.join(", ")
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_wins_over_allow() {
        let p = ToolPolicy {
            allow: vec!["read".into(), "exec".into()],
            deny: vec!["exec".into()],
        };
        assert!(p.check("read").is_ok());
        assert!(p.check("exec").expect_err("denied").contains("tools.deny"));
        assert!(p
            .check("write")
            .expect_err("not allowed")
            .contains("tools.allow"));
        assert!(ToolPolicy::default().check("write").is_ok());
    }
}
