//! The tools the model may call, safe by default, and the registry that
//! builds the set from the settings.
//!
//! - [`fs`]: `read`, `write`, `edit`, `ls`, confined to the workspace;
//! - [`web`]: `web_fetch`, public http(s) only ([`ssrf`] says what public is);
//! - [`exec`]: `exec`, off unless `tools.exec.mode` says otherwise, no shell.
//!
//! [`ToolRegistry::call`] is the one door: it checks `tools.allow` /
//! `tools.deny` before any tool runs, and every refusal or failure comes
//! back as a [`ToolOutput`] error that says which rule refused and what
//! would allow it — never a panic, never the end of the run.

pub mod exec;
pub mod fs;
pub mod ssrf;
pub mod web;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::provider::ToolSpec;
use crate::tool::{Tool, ToolContext, ToolOutput, ToolPolicy};

pub use exec::{Approval, ApprovalRequest, Approver, ExecMode, ExecSettings};
pub use fs::FsSettings;
pub use ssrf::{NameResolver, SsrfPolicy, SystemResolver};
pub use web::WebFetchSettings;

/// Reads a tool's arguments; a mismatch is an error the model can fix.
pub(crate) fn parse_args<T: DeserializeOwned>(tool: &str, args: Value) -> Result<T, ToolOutput> {
    let args = match args {
        // Some models send the arguments object as a JSON string.
        Value::String(s) => serde_json::from_str(&s).unwrap_or(Value::String(s)),
        Value::Null => Value::Object(serde_json::Map::new()),
        v => v,
    };
    serde_json::from_value(args)
        .map_err(|e| ToolOutput::error(format!("invalid arguments for {tool}: {e}")))
}

/// Everything the tools are configured by (`tools.*`).
#[derive(Debug, Clone, Default)]
pub struct ToolSettings {
    pub policy: ToolPolicy,
    pub fs: FsSettings,
    pub exec: ExecSettings,
    pub web_fetch: WebFetchSettings,
}

/// A setting no tool can work with.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ToolConfigError(pub String);

/// The tools of one agent, built from its settings.
pub struct ToolRegistry {
    tools: Vec<Arc<dyn Tool>>,
    policy: ToolPolicy,
    /// Known tools left out, and why (a model that calls one anyway is told).
    off: BTreeMap<String, String>,
}

impl std::fmt::Debug for ToolRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolRegistry")
            .field("tools", &self.names())
            .field("off", &self.off)
            .finish()
    }
}

impl ToolRegistry {
    /// Builds the set: the file tools, `web_fetch` unless disabled, `exec`
    /// unless its mode is `deny`, minus what `tools.allow` / `tools.deny`
    /// leave out.
    pub fn build(settings: ToolSettings) -> Result<ToolRegistry, ToolConfigError> {
        settings.exec.check().map_err(ToolConfigError)?;
        let mut candidates: Vec<Arc<dyn Tool>> = vec![
            Arc::new(fs::ReadTool::new(settings.fs.clone())),
            Arc::new(fs::WriteTool::new(settings.fs.clone())),
            Arc::new(fs::EditTool::new(settings.fs.clone())),
            Arc::new(fs::LsTool::new(settings.fs.clone())),
        ];
        let mut off = BTreeMap::new();
        if settings.web_fetch.enabled {
            candidates.push(Arc::new(
                web::WebFetchTool::new(settings.web_fetch).map_err(ToolConfigError)?,
            ));
        } else {
            off.insert(
                "web_fetch".to_string(),
                "web_fetch is off (tools.web.fetch.enabled is false)".to_string(),
            );
        }
        if settings.exec.mode == ExecMode::Deny {
            off.insert(
                "exec".to_string(),
                "exec is off (tools.exec.mode is deny): no command runs; the user can set tools.exec.mode \
                 to allowlist, ask or full"
                    .to_string(),
            );
        } else {
            candidates.push(Arc::new(exec::ExecTool::new(settings.exec)));
        }
        let mut tools = Vec::new();
        for tool in candidates {
            let name = tool.spec().name;
            match settings.policy.check(&name) {
                Ok(()) => tools.push(tool),
                Err(why) => {
                    off.insert(name, why);
                }
            }
        }
        Ok(ToolRegistry {
            tools,
            policy: settings.policy,
            off,
        })
    }

    /// What the model is offered.
    pub fn specs(&self) -> Vec<ToolSpec> {
        self.tools.iter().map(|t| t.spec()).collect()
    }

    pub fn names(&self) -> Vec<String> {
        self.tools.iter().map(|t| t.spec().name).collect()
    }

    pub fn get(&self, name: &str) -> Option<Arc<dyn Tool>> {
        self.tools.iter().find(|t| t.spec().name == name).cloned()
    }

    /// Runs one call through the policy; an unknown, denied or disabled
    /// tool is an error result that says so.
    pub async fn call(&self, name: &str, args: Value, ctx: &ToolContext) -> ToolOutput {
        if let Err(why) = self.policy.check(name) {
            return ToolOutput::error(why);
        }
        if let Some(why) = self.off.get(name) {
            return ToolOutput::error(why.clone());
        }
        match self.get(name) {
            Some(tool) => tool.call(args, ctx).await,
            None => ToolOutput::error(format!(
                "there is no tool named {name:?}; the tools are: {}",
                self.names().join(", ")
            )),
        }
    }
}

#[cfg(test)]
mod tests;
