//! A snapshot of environment variables, taken once at the edge.
//!
//! The core never reads the process environment; binaries capture it with
//! `EnvSnapshot::from_vars(std::env::vars())` and embedded gateways build one
//! of their own, so the tray's environment never leaks into a gateway.
//! [`ChildEnv`] is the one rule for what a process a gateway starts
//! (a browser, a rescue command, a tool) may inherit from such a snapshot.

use std::collections::BTreeMap;
use std::fmt;

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

    /// Every variable, empty ones included, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// A copy with `name` set (tests and embedded gateways build snapshots this way).
    pub fn with(mut self, name: &str, value: &str) -> EnvSnapshot {
        self.vars.insert(name.to_string(), value.to_string());
        self
    }
}

/// Variables a child process may inherit (see [`ChildEnv::minimal`]), besides
/// every `LC_*`: what a program needs to find executables, its home and
/// user, the desktop session it reaches the keychain through (D-Bus, the
/// runtime dir, the display), its locale, time zone and temp dir; the
/// Windows system folders every program expects; and the two `omniclaw`
/// settings a rescue command needs to act on the same profiles the same
/// way (`OMNICLAW_HOME`, `OMNICLAW_SERVICE_MANAGER`). Nothing that says
/// which profile the parent is, and no credential.
pub const CHILD_VARS: &[&str] = &[
    "HOME",
    "PATH",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TMPDIR",
    "XDG_RUNTIME_DIR",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "XDG_CACHE_HOME",
    "DBUS_SESSION_BUS_ADDRESS",
    "DISPLAY",
    "WAYLAND_DISPLAY",
    "XAUTHORITY",
    "SYSTEMROOT",
    "WINDIR",
    "USERPROFILE",
    "APPDATA",
    "LOCALAPPDATA",
    "PROGRAMDATA",
    "TEMP",
    "TMP",
    "PATHEXT",
    "COMSPEC",
    HOME,
    "OMNICLAW_SERVICE_MANAGER",
];

/// Variables that hold a gateway credential; never passed to a child.
pub const CREDENTIAL_VARS: &[&str] = &["OMNICLAW_GATEWAY_TOKEN", "OMNICLAW_GATEWAY_PASSWORD"];

/// Whether a child may inherit the variable `name`: one of [`CHILD_VARS`]
/// or a `LC_*` locale variable (without case, as Windows compares names).
/// Credentials and `${VAR}` secrets are taken out by [`ChildEnv::minimal`].
pub fn inheritable(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    CHILD_VARS.contains(&upper.as_str()) || upper.starts_with("LC_")
}

/// The explicit, complete environment of a process a gateway starts.
///
/// Every child launcher (the browser control, rescue commands, tools) sets
/// its command's environment to exactly this ([`ChildEnv::apply`]) instead
/// of letting it inherit the parent's, so a secret the parent was given
/// through the environment never reaches a child.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ChildEnv {
    vars: BTreeMap<String, String>,
}

impl ChildEnv {
    /// The variables of `parent` named in [`CHILD_VARS`] or starting with
    /// `LC_`, except the credential variables ([`CREDENTIAL_VARS`]) and
    /// every name in `secret_vars` (the variables the config's `${VAR}`
    /// references read secrets from), which are left out even when listed.
    /// Names compare without case, as Windows treats them.
    pub fn minimal<'a>(
        parent: &EnvSnapshot,
        secret_vars: impl IntoIterator<Item = &'a str>,
    ) -> ChildEnv {
        let denied: Vec<String> = secret_vars
            .into_iter()
            .chain(CREDENTIAL_VARS.iter().copied())
            .map(str::to_ascii_uppercase)
            .collect();
        let vars = parent
            .iter()
            .filter(|(name, _)| inheritable(name) && !denied.contains(&name.to_ascii_uppercase()))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ChildEnv { vars }
    }

    /// The value of `name` as the child sees it.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// Every variable, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Makes `cmd`'s environment exactly these variables: nothing of the
    /// calling process is inherited. (A `tokio::process::Command` hands its
    /// `std` command out through `as_std_mut`.)
    pub fn apply(&self, cmd: &mut std::process::Command) {
        cmd.env_clear().envs(&self.vars);
    }
}

// Values never reach a log line through `{:?}`: the names are enough.
impl fmt::Debug for ChildEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.vars.keys()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_gets_only_what_it_needs_and_never_a_secret() {
        let parent = EnvSnapshot::from_vars([
            ("HOME", "/home/u"),
            ("PATH", "/usr/bin"),
            ("LANG", "de_DE.UTF-8"),
            ("LC_TIME", "C"),
            ("DBUS_SESSION_BUS_ADDRESS", "unix:path=/run/user/1000/bus"),
            ("XDG_RUNTIME_DIR", "/run/user/1000"),
            ("OMNICLAW_HOME", "/srv/oc"),
            ("OMNICLAW_GATEWAY_TOKEN", "tok"),
            ("OMNICLAW_GATEWAY_PASSWORD", "pw"),
            ("OMNICLAW_PROFILE", "rescue"),
            ("OMNICLAW_STATE_DIR", "/s"),
            ("OMNICLAW_SERVICE", "1"),
            ("MY_TOKEN", "s3cret"),
            ("AWS_SECRET_ACCESS_KEY", "k"),
            ("TZ", "Europe/Berlin"),
        ]);
        let child = ChildEnv::minimal(&parent, ["MY_TOKEN", "tz"]);
        let names: Vec<&str> = child.iter().map(|(k, _)| k).collect();
        assert_eq!(
            names,
            [
                "DBUS_SESSION_BUS_ADDRESS",
                "HOME",
                "LANG",
                "LC_TIME",
                "OMNICLAW_HOME",
                "PATH",
                "XDG_RUNTIME_DIR"
            ],
            "a secret-named TZ is left out too"
        );
        assert_eq!(child.get("HOME"), Some("/home/u"));
        let shown = format!("{child:?}");
        assert!(!shown.contains("/home/u"), "{shown}");
    }

    #[test]
    fn empty_values_are_unset() {
        let env = EnvSnapshot::from_vars([("A", ""), ("B", "x")]);
        assert_eq!(env.get("A"), None);
        assert_eq!(env.get("B"), Some("x"));
        assert_eq!(env.get("C"), None);
        assert_eq!(env.with("C", "y").get("C"), Some("y"));
    }
}
