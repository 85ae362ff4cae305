//! What a config edit means for a running gateway: which keys changed, and
//! whether each can be applied in place ("hot") or needs that gateway to
//! restart.
//!
//! Pure: two config values in, a [`Plan`] out. Hot keys are the ones a
//! running gateway can take without rebinding anything: the auth secret in
//! the same mode, telegram settings, allowlists, logging, the reload mode
//! itself, rescue targets, the remote client settings and the assistant's
//! settings (models, model chain, bootstrap limits, run timeout, sessions,
//! tools, budget: the next run reads them). Everything that
//! decides a listener (port, bind, auth mode, browser and canvas ports,
//! paths) restarts. A key this module does not know restarts too: a
//! restart is always correct, only slower.
//!
//! This module never reads files or judges validity: the caller validated
//! both values.

use std::fmt;

use serde_json::Value;

/// How one changed key is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Apply {
    Hot,
    Restart,
}

impl fmt::Display for Apply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Apply::Hot => "hot",
            Apply::Restart => "restart",
        })
    }
}

/// One changed key path and how it applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Dotted path of the changed value (`gateway.port`,
    /// `channels.telegram.allowFrom`); arrays count as one value.
    pub path: String,
    pub apply: Apply,
}

/// Every change between two configs, in key order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub changes: Vec<Change>,
}

impl Plan {
    /// Nothing that matters changed (comments or formatting only).
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Whether applying this plan needs a restart of the gateway.
    pub fn needs_restart(&self) -> bool {
        self.changes.iter().any(|c| c.apply == Apply::Restart)
    }

    /// The paths that force a restart.
    pub fn restart_paths(&self) -> Vec<&str> {
        self.changes
            .iter()
            .filter(|c| c.apply == Apply::Restart)
            .map(|c| c.path.as_str())
            .collect()
    }

    /// `gateway.port (restart), logging.level (hot)`.
    pub fn summary(&self) -> String {
        self.changes
            .iter()
            .map(|c| format!("{} ({})", c.path, c.apply))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Key prefixes that apply hot; a prefix matches itself and its children.
const HOT: &[&str] = &[
    "gateway.auth.token",
    "gateway.auth.password",
    "gateway.reload",
    "gateway.remote",
    "channels.telegram",
    "logging",
    "rescue",
    "models",
    // Not the workspace: the canvas host serves from it, so it rebinds.
    "agents.defaults.model",
    "agents.defaults.bootstrapMaxChars",
    "agents.defaults.bootstrapTotalMaxChars",
    "agents.defaults.timeoutSeconds",
    "session",
    "tools",
    "budget",
];

/// How a change at `path` applies.
pub fn apply_of(path: &str) -> Apply {
    let hot = HOT.iter().any(|p| {
        path == *p
            || path
                .strip_prefix(p)
                .is_some_and(|rest| rest.starts_with('.'))
    });
    if hot {
        Apply::Hot
    } else {
        Apply::Restart
    }
}

/// Compares two validated config values.
pub fn classify(old: &Value, new: &Value) -> Plan {
    let mut paths = Vec::new();
    diff("", old, new, &mut paths);
    Plan {
        changes: paths
            .into_iter()
            .map(|path| Change {
                apply: apply_of(&path),
                path,
            })
            .collect(),
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

fn diff(prefix: &str, old: &Value, new: &Value, out: &mut Vec<String>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            let null = Value::Null;
            for k in keys {
                diff(
                    &join(prefix, k),
                    a.get(k).unwrap_or(&null),
                    b.get(k).unwrap_or(&null),
                    out,
                );
            }
        }
        // A key added or removed as a whole object: report its leaves.
        (Value::Object(a), Value::Null) if !a.is_empty() => {
            diff(prefix, old, &Value::Object(Default::default()), out)
        }
        (Value::Null, Value::Object(b)) if !b.is_empty() => {
            diff(prefix, &Value::Object(Default::default()), new, out)
        }
        (a, b) if a != b && !prefix.is_empty() => out.push(prefix.to_string()),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(old: Value, new: Value, expected: &[(&str, Apply)]) {
        let plan = classify(&old, &new);
        let got: Vec<(&str, Apply)> = plan
            .changes
            .iter()
            .map(|c| (c.path.as_str(), c.apply))
            .collect();
        assert_eq!(got, expected, "{old} -> {new}");
    }

    #[test]
    fn classification_by_key_path() {
        use Apply::{Hot, Restart};
        let base = json!({"gateway": {"port": 18789, "auth": {"mode": "token", "token": {"source": "keychain"}}}});
        check(base.clone(), base.clone(), &[]);
        check(
            base.clone(),
            json!({"gateway": {"port": 19001, "auth": {"mode": "token", "token": {"source": "keychain"}}}}),
            &[("gateway.port", Restart)],
        );
        check(
            json!({"gateway": {"auth": {"token": "a"}}}),
            json!({"gateway": {"auth": {"token": "b"}}}),
            &[("gateway.auth.token", Hot)],
        );
        check(
            json!({"gateway": {"auth": {"password": "a"}}}),
            json!({"gateway": {"auth": {"password": "b"}}}),
            &[("gateway.auth.password", Hot)],
        );
        check(
            json!({"gateway": {"auth": {"mode": "token"}}}),
            json!({"gateway": {"auth": {"mode": "password"}}}),
            &[("gateway.auth.mode", Restart)],
        );
        check(
            json!({}),
            json!({"gateway": {"bind": "lan"}}),
            &[("gateway.bind", Restart)],
        );
        check(
            json!({}),
            json!({"gateway": {"reload": {"mode": "off"}}}),
            &[("gateway.reload.mode", Hot)],
        );
        check(
            json!({}),
            json!({"logging": {"level": "debug"}}),
            &[("logging.level", Hot)],
        );
        check(
            json!({"channels": {"telegram": {"allowFrom": [1]}}}),
            json!({"channels": {"telegram": {"allowFrom": [1, 2], "dmPolicy": "allowlist"}}}),
            &[
                ("channels.telegram.allowFrom", Hot),
                ("channels.telegram.dmPolicy", Hot),
            ],
        );
        check(
            json!({}),
            json!({"browser": {"controlPort": 20000}}),
            &[("browser.controlPort", Restart)],
        );
        check(
            json!({"browser": {"profiles": {"w": {"cdpPort": 20500}}}}),
            json!({}),
            &[("browser.profiles.w.cdpPort", Restart)],
        );
        check(
            json!({}),
            json!({"canvasHost": {"port": 21000}}),
            &[("canvasHost.port", Restart)],
        );
        check(
            json!({}),
            json!({"agents": {"defaults": {"workspace": "~/w"}}}),
            &[("agents.defaults.workspace", Restart)],
        );
        check(
            json!({}),
            json!({"rescue": {"targets": ["main"]}}),
            &[("rescue.targets", Hot)],
        );
        check(
            json!({"rescue": {"watch": {"enabled": false}}}),
            json!({"rescue": {"watch": {"enabled": true, "intervalSeconds": 5, "actions": ["restart", "rollback"]}}}),
            &[
                ("rescue.watch.actions", Hot),
                ("rescue.watch.enabled", Hot),
                ("rescue.watch.intervalSeconds", Hot),
            ],
        );
    }

    #[test]
    fn the_assistants_settings_apply_hot() {
        use Apply::{Hot, Restart};
        check(
            json!({"models": {"providers": {"openai": {"apiKey": "${A}"}}}}),
            json!({"models": {"providers": {"openai": {"apiKey": "${B}", "models": [{"id": "m", "name": "M"}]}}},
                   "agents": {"defaults": {"model": {"primary": "openai/m", "fallbacks": ["openai/n"]},
                              "bootstrapMaxChars": 100, "bootstrapTotalMaxChars": 1000,
                              "timeoutSeconds": 60, "workspace": "~/w"}},
                   "session": {"dmScope": "per-peer", "retentionDays": 30},
                   "tools": {"deny": ["exec"], "exec": {"mode": "ask"}, "web": {"fetch": {"enabled": false}}},
                   "budget": {"dailyUsd": 1, "perProvider": {"openai": {"dailyUsd": 0.5}}}}),
            &[
                ("agents.defaults.bootstrapMaxChars", Hot),
                ("agents.defaults.bootstrapTotalMaxChars", Hot),
                ("agents.defaults.model.fallbacks", Hot),
                ("agents.defaults.model.primary", Hot),
                ("agents.defaults.timeoutSeconds", Hot),
                ("agents.defaults.workspace", Restart),
                ("budget.dailyUsd", Hot),
                ("budget.perProvider.openai.dailyUsd", Hot),
                ("models.providers.openai.apiKey", Hot),
                ("models.providers.openai.models", Hot),
                ("session.dmScope", Hot),
                ("session.retentionDays", Hot),
                ("tools.deny", Hot),
                ("tools.exec.mode", Hot),
                ("tools.web.fetch.enabled", Hot),
            ],
        );
        // A model given as a string, then as an object: one changed value.
        check(
            json!({"agents": {"defaults": {"model": "openai/m"}}}),
            json!({"agents": {"defaults": {"model": {"primary": "openai/m"}}}}),
            &[("agents.defaults.model", Hot)],
        );
    }

    #[test]
    fn prefixes_match_whole_segments() {
        assert_eq!(apply_of("logging"), Apply::Hot);
        assert_eq!(apply_of("loggingExtra"), Apply::Restart);
        assert_eq!(apply_of("gateway.auth.tokenish"), Apply::Restart);
    }

    #[test]
    fn plan_helpers() {
        let plan = classify(
            &json!({"gateway": {"port": 1}, "logging": {"level": "info"}}),
            &json!({"gateway": {"port": 2}, "logging": {"level": "debug"}}),
        );
        assert!(plan.needs_restart());
        assert_eq!(plan.restart_paths(), vec!["gateway.port"]);
        assert_eq!(
            plan.summary(),
            "gateway.port (restart), logging.level (hot)"
        );
        assert!(!classify(&json!({}), &json!({"logging": {}})).needs_restart());
    }
}
