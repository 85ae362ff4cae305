//! A snapshot of environment variables, taken once at the edge.
//!
//! The core never reads the process environment; binaries capture it with
//! `EnvSnapshot::from_vars(std::env::vars())` and embedded gateways build one
//! of their own, so the tray's environment never leaks into a gateway.

use std::collections::BTreeMap;

pub const HOME: &str = "OMNICLAW_HOME";
pub const PROFILE: &str = "OMNICLAW_PROFILE";
pub const STATE_DIR: &str = "OMNICLAW_STATE_DIR";
pub const CONFIG_PATH: &str = "OMNICLAW_CONFIG_PATH";
pub const GATEWAY_PORT: &str = "OMNICLAW_GATEWAY_PORT";

/// Environment variables as plain data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvSnapshot {
    vars: BTreeMap<String, String>,
}

impl EnvSnapshot {
    pub fn from_vars<I, K, V>(vars: I) -> EnvSnapshot
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        EnvSnapshot {
            vars: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// The value of `name`; an empty value counts as unset, as shells treat it.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A copy with `name` set (tests and embedded gateways build snapshots this way).
    pub fn with(mut self, name: &str, value: &str) -> EnvSnapshot {
        self.vars.insert(name.to_string(), value.to_string());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_are_unset() {
        let env = EnvSnapshot::from_vars([("A", ""), ("B", "x")]);
        assert_eq!(env.get("A"), None);
        assert_eq!(env.get("B"), Some("x"));
        assert_eq!(env.get("C"), None);
        assert_eq!(env.with("C", "y").get("C"), Some("y"));
    }
}
