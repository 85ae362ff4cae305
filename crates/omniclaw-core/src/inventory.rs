//! From config documents to the instances the port plan and audit compare.
//!
//! Reading works on the raw JSON value, leniently, so that an OmniClaw
//! profile with an invalid config and a real OpenClaw install (whose schema
//! is far larger than ours) still join the plan with the ports they would
//! use. Strict validation is `config`'s job, not this one's.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::env::EnvSnapshot;
use crate::paths::{self, Resolved, DEFAULT_GATEWAY_PORT};
use crate::ports::{BindScope, Instance, PortInputs};

/// Paths of one instance, as resolved by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstancePaths {
    pub config_path: PathBuf,
    pub state_dir: PathBuf,
    pub workspace: PathBuf,
}

/// The port inputs a config value asks for. Keys with the wrong type are
/// ignored here (validation reports them); a missing base port falls back
/// to `default_base`.
pub fn port_inputs(value: &Value, default_base: u16) -> PortInputs {
    let port = |path: &[&str]| get(value, path).and_then(as_port);
    let flag =
        |path: &[&str], default: bool| get(value, path).and_then(Value::as_bool).unwrap_or(default);
    let base = port(&["gateway", "port"]).unwrap_or(default_base);
    let mut inputs = PortInputs::with_base(base);
    inputs.bind = match get(value, &["gateway", "bind"]).and_then(Value::as_str) {
        Some("lan") => BindScope::Lan,
        Some("custom") => BindScope::Custom(
            get(value, &["gateway", "customBindHost"])
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        ),
        _ => BindScope::Loopback,
    };
    inputs.browser_enabled = flag(&["browser", "enabled"], true);
    inputs.control_port = port(&["browser", "controlPort"]);
    inputs.cdp_range_start = port(&["browser", "cdpPortRangeStart"]);
    inputs.pinned_cdp = browser_profiles(value)
        .filter_map(|(name, p)| Some((name.clone(), p.get("cdpPort").and_then(as_port)?)))
        .collect();
    inputs.canvas_enabled = flag(&["canvasHost", "enabled"], true);
    inputs.canvas_port = port(&["canvasHost", "port"]);
    let telegram_on = flag(&["channels", "telegram", "enabled"], true);
    let webhook = get(value, &["channels", "telegram", "webhookUrl"]).is_some();
    inputs.telegram_webhook_port = if telegram_on && webhook {
        port(&["channels", "telegram", "webhookPort"])
    } else {
        None
    };
    inputs
}

/// Where a running gateway really listens (from its runtime file), which
/// flags may have moved away from what its config says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LivePorts {
    pub base: u16,
    /// `None`: it runs without browser control.
    pub control: Option<u16>,
    /// `None`: it runs without a canvas host.
    pub canvas: Option<u16>,
    /// The first port of its CDP range.
    pub cdp_start: Option<u16>,
}

/// Plans a running instance where it runs: its live ports replace the ones
/// its config asks for (pinned CDP ports and the webhook stay as
/// configured: flags cannot move them).
pub fn apply_live(inputs: &mut PortInputs, live: &LivePorts) {
    // A port where the live base puts it anyway stays derived, so reports
    // say the base placed it.
    let derived = |port: Option<u16>, from: u16, offset: u16| {
        port.filter(|p| from.checked_add(offset) != Some(*p))
    };
    inputs.base = live.base;
    inputs.browser_enabled = live.control.is_some();
    inputs.control_port = derived(live.control, live.base, 2);
    let control = live.control.unwrap_or(live.base.saturating_add(2));
    inputs.cdp_range_start = derived(live.cdp_start, control, 9);
    inputs.canvas_enabled = live.canvas.is_some();
    inputs.canvas_port = derived(live.canvas, live.base, 4);
}

/// Builds the plan's view of an OmniClaw profile (`foreign: false`) or a
/// real OpenClaw install (`foreign: true`). `value` is `None` when the
/// config could not be read or parsed: the instance then joins with its
/// paths only, so shared paths are still found.
pub fn instance(
    name: &str,
    foreign: bool,
    value: Option<&Value>,
    paths: &InstancePaths,
    env: &EnvSnapshot,
) -> Instance {
    let empty = Value::Null;
    let v = value.unwrap_or(&empty);
    let mut ports = port_inputs(v, DEFAULT_GATEWAY_PORT);
    if value.is_none() {
        // Unknown ports: reserve nothing rather than guess.
        ports.browser_enabled = false;
        ports.canvas_enabled = false;
    }
    let mut cdp_urls = Vec::new();
    if let Some(url) = get(v, &["browser", "cdpUrl"]).and_then(Value::as_str) {
        cdp_urls.push(("browser.cdpUrl".to_string(), url.to_string()));
    }
    for (pname, p) in browser_profiles(v) {
        if let Some(url) = p.get("cdpUrl").and_then(Value::as_str) {
            cdp_urls.push((format!("browser.profiles.{pname}.cdpUrl"), url.to_string()));
        }
    }
    // A profile in `gateway.mode: "remote"` runs no gateway here: its
    // gateway's ports are another machine's, never this machine's plan.
    let remote = get(v, &["gateway", "mode"]).and_then(Value::as_str) == Some("remote");
    if remote {
        ports.browser_enabled = false;
        ports.canvas_enabled = false;
    }
    Instance {
        name: name.to_string(),
        foreign,
        ports,
        has_ports: value.is_some() && !remote,
        config_path: Some(paths.config_path.clone()),
        state_dir: Some(paths.state_dir.clone()),
        workspace: Some(paths.workspace.clone()),
        cdp_urls,
        bot_token_fingerprint: get(v, &["channels", "telegram", "botToken"])
            .and_then(|t| token_identity(t, env))
            .map(|id| fingerprint(&id)),
    }
}

/// The plan's view of the profile `resolved` with the config `value`,
/// named `name` in reports: its workspace from the config (else the
/// profile's default), its own config path and state dir. Commands that
/// weigh a config before writing it (setup, onboarding, every edit) judge
/// the candidate through this.
pub fn for_profile(name: &str, resolved: &Resolved, value: &Value, env: &EnvSnapshot) -> Instance {
    let (workspace, _) = resolved.workspace(configured_workspace(value));
    instance(
        name,
        false,
        Some(value),
        &InstancePaths {
            config_path: resolved.config_path.clone(),
            state_dir: resolved.state_dir.clone(),
            workspace,
        },
        env,
    )
}

/// The workspace a raw config value names, if any (`agents.defaults.workspace`).
pub fn configured_workspace(value: &Value) -> Option<&str> {
    get(value, &["agents", "defaults", "workspace"]).and_then(Value::as_str)
}

/// The workspace of a real OpenClaw install: its configured one, else
/// `<install dir>/workspace`.
pub fn foreign_workspace(value: Option<&Value>, install_dir: &Path, home: &Path) -> PathBuf {
    match value.and_then(configured_workspace) {
        Some(raw) => paths::normalize(&paths::expand_home(raw, home, Some(install_dir))),
        None => install_dir.join("workspace"),
    }
}

/// What identifies a bot token without holding it: the plaintext itself,
/// or the resolved value of an `${ENV}` reference (else the reference).
/// Keychain references are compared by the keychain layer instead.
fn token_identity(token: &Value, env: &EnvSnapshot) -> Option<String> {
    let s = token.as_str()?;
    if s.is_empty() {
        return None;
    }
    match s.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
        Some(var) => Some(
            env.get(var)
                .map_or_else(|| format!("env:{var}"), str::to_string),
        ),
        None => Some(s.to_string()),
    }
}

/// A short, non-reversible fingerprint of a secret (FNV-1a 64, hex). Used
/// only to notice that two profiles share a token, never shown.
pub fn fingerprint(secret: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in secret.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn browser_profiles(v: &Value) -> impl Iterator<Item = (&String, &Value)> {
    get(v, &["browser", "profiles"])
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
}

fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

fn as_port(v: &Value) -> Option<u16> {
    v.as_u64()
        .and_then(|n| u16::try_from(n).ok())
        .filter(|p| *p != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn paths(name: &str) -> InstancePaths {
        InstancePaths {
            config_path: PathBuf::from(format!("/h/.omniclaw-{name}/omniclaw.json")),
            state_dir: PathBuf::from(format!("/h/.omniclaw-{name}")),
            workspace: PathBuf::from(format!("/h/.omniclaw/workspace-{name}")),
        }
    }

    #[test]
    fn reads_ports_leniently() {
        let v = json!({
            "gateway": {"port": 19001, "bind": "lan"},
            "browser": {"controlPort": 20000, "cdpPortRangeStart": 21000,
                        "profiles": {"work": {"cdpPort": 22000, "cdpUrl": "http://127.0.0.1:9222"}, "bad": {"cdpPort": "x"}}},
            "canvasHost": {"port": 23000},
            "channels": {"telegram": {"webhookUrl": "https://x/y", "webhookPort": 24000}}
        });
        let p = port_inputs(&v, 1);
        assert_eq!(p.base, 19001);
        assert_eq!(p.bind, BindScope::Lan);
        assert_eq!(p.control_port, Some(20000));
        assert_eq!(p.cdp_range_start, Some(21000));
        assert_eq!(p.pinned_cdp, vec![("work".to_string(), 22000)]);
        assert_eq!(p.canvas_port, Some(23000));
        assert_eq!(p.telegram_webhook_port, Some(24000));
        assert!(p.browser_enabled && p.canvas_enabled);

        let p = port_inputs(
            &json!({"gateway": {"port": "19001"}, "browser": {"enabled": false}}),
            18789,
        );
        assert_eq!(p.base, 18789, "a wrong type falls back to the default");
        assert!(!p.browser_enabled);
        assert_eq!(p.telegram_webhook_port, None);
    }

    #[test]
    fn instance_collects_urls_and_token_identity() {
        let env = EnvSnapshot::from_vars([("TG", "123:abc")]);
        let a = instance(
            "main",
            false,
            Some(
                &json!({"browser": {"cdpUrl": "http://h:1"}, "channels": {"telegram": {"botToken": "123:abc"}}}),
            ),
            &paths("main"),
            &env,
        );
        let b = instance(
            "rescue",
            false,
            Some(&json!({"channels": {"telegram": {"botToken": "${TG}"}}})),
            &paths("rescue"),
            &env,
        );
        assert_eq!(
            a.cdp_urls,
            vec![("browser.cdpUrl".to_string(), "http://h:1".to_string())]
        );
        assert!(a.bot_token_fingerprint.is_some());
        assert_eq!(
            a.bot_token_fingerprint, b.bot_token_fingerprint,
            "env ref resolves to the same token"
        );
        assert_ne!(a.bot_token_fingerprint.as_deref(), Some("123:abc"));
        let unknown = instance("x", false, None, &paths("x"), &env);
        assert!(!unknown.has_ports);
    }

    #[test]
    fn a_profile_in_remote_mode_plans_no_port_here() {
        let env = EnvSnapshot::default();
        let remote = json!({"gateway": {"mode": "remote", "port": 18789, "remote": {"url": "wss://gw.example.com"}}});
        let local = json!({"gateway": {"mode": "local", "port": 18789}});
        let far = instance("far", false, Some(&remote), &paths("far"), &env);
        let main = instance("main", false, Some(&local), &paths("main"), &env);
        assert!(!far.has_ports && !far.ports.browser_enabled && !far.ports.canvas_enabled);
        assert!(main.has_ports);
        let plan = crate::ports::plan(&[main, far]);
        assert!(
            plan.conflicts.is_empty(),
            "the remote-mode profile's port is another machine's: {:?}",
            plan.conflicts
        );
    }

    #[test]
    fn foreign_workspace_defaults_inside_install() {
        let home = Path::new("/h");
        let dir = Path::new("/h/.openclaw");
        assert_eq!(
            foreign_workspace(None, dir, home),
            PathBuf::from("/h/.openclaw/workspace")
        );
        let v = json!({"agents": {"defaults": {"workspace": "~/ws"}}});
        assert_eq!(
            foreign_workspace(Some(&v), dir, home),
            PathBuf::from("/h/ws")
        );
    }
}
