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

impl ToolSettings {
    /// The settings `tools.*` of a validated config describe (every key
    /// unset takes OpenClaw's default).
    pub fn from_config(tools: &omniclaw_core::config::Tools) -> ToolSettings {
        let fetch = &tools.web_fetch;
        let web_default = WebFetchSettings::default();
        let exec_default = ExecSettings::default();
        let size = |n: Option<u64>, default: usize| {
            n.and_then(|n| usize::try_from(n).ok()).unwrap_or(default)
        };
        ToolSettings {
            policy: ToolPolicy {
                allow: tools.allow.clone(),
                deny: tools.deny.clone(),
            },
            fs: FsSettings::default(),
            exec: ExecSettings {
                mode: ExecMode::parse(tools.exec.mode().as_str()).unwrap_or(ExecMode::Deny),
                allowlist: tools.exec.allowlist.clone(),
                timeout: tools
                    .exec
                    .timeout_seconds
                    .map_or(exec_default.timeout, std::time::Duration::from_secs),
                max_output_chars: size(tools.exec.max_output_chars, exec_default.max_output_chars),
                approver: None,
            },
            web_fetch: WebFetchSettings {
                enabled: fetch.enabled(),
                max_chars: size(fetch.max_chars, web_default.max_chars),
                max_response_bytes: size(fetch.max_response_bytes, web_default.max_response_bytes),
                timeout: fetch
                    .timeout_seconds
                    .map_or(web_default.timeout, std::time::Duration::from_secs),
                max_redirects: fetch
                    .max_redirects
                    .and_then(|n| u32::try_from(n).ok())
                    .unwrap_or(web_default.max_redirects),
                user_agent: fetch.user_agent.clone().unwrap_or(web_default.user_agent),
                ssrf: SsrfPolicy {
                    dangerously_allow_private_network: fetch
                        .ssrf_policy
                        .dangerously_allow_private_network,
                    allow_rfc2544_benchmark_range: fetch.ssrf_policy.allow_rfc2544_benchmark_range,
                    allow_ipv6_unique_local_range: fetch.ssrf_policy.allow_ipv6_unique_local_range,
                    allowed_hostnames: fetch.ssrf_policy.allowed_hostnames.clone(),
                    blocked_hostnames: fetch.ssrf_policy.blocked_hostnames.clone(),
                },
                resolver: web_default.resolver,
            },
        }
    }
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

    /// Every tool offered, for the loop (which checks the policy again).
    pub fn tools(&self) -> Vec<Arc<dyn Tool>> {
        self.tools.clone()
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
