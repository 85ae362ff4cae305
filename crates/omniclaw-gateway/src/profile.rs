//! From a resolved profile and its config to the [`GatewaySpec`] that runs it.
//!
//! Pure: the caller resolves paths, reads the config and captures the
//! environment; this module decides ports, bind address and credentials by
//! the precedence flag > environment > config > default. Both the CLI host
//! and the tray build their gateways through it, so they cannot disagree.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use serde_json::Value;

use omniclaw_core::config::{AuthMode, BindMode, Config, GatewayMode, SecretRef};
use omniclaw_core::env::{ChildEnv, EnvSnapshot};
use omniclaw_core::inventory;
use omniclaw_core::paths::{self, Resolved};
use omniclaw_core::ports::{self, PortError, Surface as PlanSurface};
use omniclaw_core::remote::{parse_url, WsTarget};
use omniclaw_os::secrets::{Scope, SecretName, SecretStore, StoreMode};

use crate::spec::{Auth, GatewaySpec};

/// The stored credentials of the remote gateway `name` (its token, else its
/// password, from its own scope of `store`): what `omniclaw remote` and
/// the desktop app present to it.
pub fn remote_auth(
    store: &dyn SecretStore,
    home: &std::path::Path,
    name: &str,
) -> Result<Auth, String> {
    let scope = omniclaw_os::remote::scope(home, name);
    let get = |n| store.get(&scope, n).map_err(|e| e.to_string());
    if let Some(t) = get(SecretName::GatewayAuthToken)? {
        return Ok(Auth::Token(t));
    }
    if let Some(p) = get(SecretName::GatewayAuthPassword)? {
        return Ok(Auth::Password(p));
    }
    Err(format!(
        "no token stored for the remote {name}: add it again with `omniclaw remote remove {name}` and `omniclaw remote add {name} … --token-stdin`"
    ))
}

/// Environment variable holding the gateway token when no flag gives one.
pub const TOKEN_ENV: &str = "OMNICLAW_GATEWAY_TOKEN";
/// Environment variable holding the gateway password when no flag gives one.
pub const PASSWORD_ENV: &str = "OMNICLAW_GATEWAY_PASSWORD";

/// What the command line says, on top of the config.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub port: Option<u16>,
    pub bind: Option<BindMode>,
    pub token: Option<String>,
    pub password: Option<String>,
}

/// Why a profile's gateway cannot be described; each names the key and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error(transparent)]
    Ports(#[from] PortError),
    #[error("no gateway {mode} for profile {profile}: pass --{mode} on the command line, set {var}, or point gateway.auth.{mode} at an environment variable: {command} config set gateway.auth.{mode} '\"${{MY_SECRET}}\"'")]
    NoSecret {
        profile: String,
        mode: &'static str,
        var: &'static str,
        command: String,
    },
    #[error("gateway.auth.{mode} refers to the environment variable {var}, which is not set: set it, or pass --{mode}")]
    EnvUnset { mode: &'static str, var: String },
    #[error("gateway.auth.{mode} refers to the {store}, which holds no {mode} for profile {profile}: store one with `{command} secrets set gateway.auth.{mode}` (or pass --{mode}, or set {env})")]
    KeychainMissing {
        mode: &'static str,
        env: &'static str,
        profile: String,
        store: String,
        command: String,
    },
    #[error("cannot read gateway.auth.{mode} of profile {profile}: {reason}")]
    Store {
        mode: &'static str,
        profile: String,
        reason: String,
    },
    #[error("gateway.bind is custom but gateway.customBindHost {host:?} is not an IP address: set it to an address of this machine, e.g. 192.168.1.10")]
    CustomHost { host: String },
    #[error("profile {profile} has gateway.mode \"remote\": its gateway runs at {url}, not on this machine, so none is started here. `{command} gateway probe` checks it; to run one here instead: `{command} config set gateway.mode '\"local\"'`")]
    RemoteMode {
        profile: String,
        url: String,
        command: String,
    },
    #[error("cannot read gateway.remote.token of profile {profile}: {reason}")]
    RemoteToken { profile: String, reason: String },
}

/// Builds the spec of `resolved`'s gateway. `config` is `None` when the
/// profile has no config file yet (defaults apply); `value` is the raw
/// config value the port inputs are read from.
pub fn spec_for(
    resolved: &Resolved,
    config: Option<&Config>,
    value: Option<&Value>,
    overrides: &Overrides,
    env: &EnvSnapshot,
    store: &dyn SecretStore,
) -> Result<GatewaySpec, SpecError> {
    if let Some(c) = config.filter(|c| c.gateway_mode() == GatewayMode::Remote) {
        return Err(SpecError::RemoteMode {
            profile: resolved.profile.name().to_string(),
            url: c.gateway.remote.url.clone().unwrap_or_default(),
            command: command_of(resolved),
        });
    }
    let mut spec = layout(resolved, config, value, overrides)?;
    let default_config = Config::default();
    spec.auth = credentials(
        resolved,
        config.unwrap_or(&default_config),
        overrides,
        env,
        store,
    )?;
    spec.child_env = child_env(config.unwrap_or(&default_config), env);
    Ok(spec)
}

/// The environment the gateway's children get from `env`: the minimal one,
/// without the gateway's credential variables and without any variable a
/// `${VAR}` secret reference of `config` reads.
pub fn child_env(config: &Config, env: &EnvSnapshot) -> ChildEnv {
    let secrets = config.secrets();
    let named = secrets.iter().filter_map(|(_, r)| match r {
        SecretRef::Env(var) => Some(var.as_str()),
        _ => None,
    });
    ChildEnv::minimal(env, named)
}

/// The spec without credentials (`Auth::None`): ports, bind, paths. For
/// commands that look at a gateway rather than run it.
pub fn layout(
    resolved: &Resolved,
    config: Option<&Config>,
    value: Option<&Value>,
    overrides: &Overrides,
) -> Result<GatewaySpec, SpecError> {
    let default_config = Config::default();
    let config = config.unwrap_or(&default_config);
    let empty = Value::Null;
    let (base, _) = resolved.base_port(overrides.port, config.gateway_port());
    let mut inputs = inventory::port_inputs(value.unwrap_or(&empty), base);
    inputs.base = base;
    let allocations = ports::allocate(&inputs)?;
    let (workspace, _) = resolved.workspace(config.workspace());

    let mut spec = GatewaySpec::new(
        resolved.profile.name(),
        resolved.config_path.clone(),
        resolved.state_dir.clone(),
        workspace.clone(),
        base,
    );
    spec.bind = bind_address(overrides.bind.unwrap_or(config.bind()), config)?;

    spec.browser.enabled = inputs.browser_enabled;
    spec.canvas.enabled = inputs.canvas_enabled;
    for a in &allocations {
        match &a.surface {
            PlanSurface::BrowserControl => spec.browser.control_port = a.range.start(),
            PlanSurface::CdpRange => spec.browser.cdp_range = a.range.start()..=a.range.end(),
            PlanSurface::Canvas => spec.canvas.port = a.range.start(),
            _ => {}
        }
    }
    spec.browser.profiles = config
        .browser
        .profiles
        .iter()
        .filter(|(_, p)| p.cdp_url.is_none())
        .map(|(name, p)| (name.clone(), p.cdp_port))
        .collect::<BTreeMap<_, _>>();
    if let Some(root) = config.canvas_host.root.as_deref() {
        spec.canvas.root = paths::expand_home(root, &resolved.home, Some(&workspace));
    }
    Ok(spec)
}

fn bind_address(mode: BindMode, config: &Config) -> Result<IpAddr, SpecError> {
    Ok(match mode {
        BindMode::Loopback => IpAddr::V4(Ipv4Addr::LOCALHOST),
        BindMode::Lan => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        BindMode::Custom => {
            let host = config.custom_bind_host().unwrap_or_default();
            host.parse().map_err(|_| SpecError::CustomHost {
                host: host.to_string(),
            })?
        }
    })
}

/// The gateway a profile in `gateway.mode: "remote"` points at, from
/// `gateway.remote.url`; `None` for a profile that runs its own gateway
/// (or whose URL validation refuses).
pub fn remote_of(config: &Config) -> Option<WsTarget> {
    if config.gateway_mode() != GatewayMode::Remote {
        return None;
    }
    parse_url(config.gateway.remote.url.as_deref()?).ok()
}

/// A profile in `gateway.mode: "remote"` as a remote gateway, named by its
/// label and dialled at its `gateway.remote.url`; `None` for any other.
pub fn as_remote(
    p: &omniclaw_os::profiles::ProfileRecord,
) -> Option<omniclaw_core::remotes::Remote> {
    let omniclaw_os::profiles::ConfigState::Valid { loaded, .. } = &p.config else {
        return None;
    };
    Some(omniclaw_core::remotes::Remote {
        name: p.label.clone(),
        kind: omniclaw_core::remotes::Kind::Direct(remote_of(&loaded.config)?),
    })
}

/// The credentials given on the command line, which win over any other.
fn given(overrides: &Overrides) -> Option<Auth> {
    match (&overrides.token, &overrides.password) {
        (Some(t), _) => Some(Auth::Token(t.clone())),
        (None, Some(p)) => Some(Auth::Password(p.clone())),
        (None, None) => None,
    }
}

/// The credentials a profile in remote mode presents to its gateway (after
/// the command line's): `gateway.remote.token` (plaintext, `${VAR}` or the
/// secret store), else none.
fn remote_credentials(
    resolved: &Resolved,
    config: &Config,
    env: &EnvSnapshot,
    store: &dyn SecretStore,
) -> Result<Auth, SpecError> {
    let fail = |reason: String| SpecError::RemoteToken {
        profile: resolved.profile.name().to_string(),
        reason,
    };
    match &config.gateway.remote.token {
        None => Ok(Auth::None),
        Some(SecretRef::Plain(t)) => Ok(Auth::Token(t.clone())),
        Some(SecretRef::Env(var)) => {
            env.get(var)
                .map(|v| Auth::Token(v.to_string()))
                .ok_or_else(|| {
                    fail(format!(
                        "it refers to ${{{var}}}, which is not set: set it, or pass --token"
                    ))
                })
        }
        Some(SecretRef::Keychain) => {
            let scope = scope(resolved);
            match store.get(&scope, SecretName::GatewayRemoteToken) {
                Ok(Some(t)) => Ok(Auth::Token(t)),
                Ok(None) => Err(fail(format!(
                    "the {} holds none: store it with `{} secrets set gateway.remote.token` (or pass --token)",
                    store.mode(&scope),
                    command_of(resolved)
                ))),
                Err(e) => Err(fail(e.to_string())),
            }
        }
    }
}

/// The secret store scope of a resolved profile.
pub fn scope(resolved: &Resolved) -> Scope {
    Scope::new(resolved.profile.name(), resolved.state_dir.clone())
}

fn command_of(resolved: &Resolved) -> String {
    match resolved.profile.suffix() {
        None => "omniclaw".to_string(),
        Some(n) => format!("omniclaw --profile {n}"),
    }
}

/// Credentials, by precedence: `--token`/`--password`, then
/// `OMNICLAW_GATEWAY_TOKEN`/`_PASSWORD`, then the config's reference
/// (plaintext, `${VAR}`, or the profile's entry in `store`). A flag also
/// selects the mode. A profile in `gateway.mode: "remote"` presents
/// `gateway.remote.token` to its gateway elsewhere.
pub fn credentials(
    resolved: &Resolved,
    config: &Config,
    overrides: &Overrides,
    env: &EnvSnapshot,
    store: &dyn SecretStore,
) -> Result<Auth, SpecError> {
    if let Some(given) = given(overrides) {
        return Ok(given);
    }
    if remote_of(config).is_some() {
        return remote_credentials(resolved, config, env, store);
    }
    let (mode, var, configured) = match config.auth_mode() {
        AuthMode::None => return Ok(Auth::None),
        AuthMode::Token => ("token", TOKEN_ENV, config.gateway.auth.token.as_ref()),
        AuthMode::Password => (
            "password",
            PASSWORD_ENV,
            config.gateway.auth.password.as_ref(),
        ),
    };
    let wrap = |s: String| {
        if mode == "token" {
            Auth::Token(s)
        } else {
            Auth::Password(s)
        }
    };
    if let Some(v) = env.get(var) {
        return Ok(wrap(v.to_string()));
    }
    match configured {
        Some(SecretRef::Plain(s)) => Ok(wrap(s.clone())),
        Some(SecretRef::Env(name)) => {
            env.get(name)
                .map(|v| wrap(v.to_string()))
                .ok_or_else(|| SpecError::EnvUnset {
                    mode,
                    var: name.clone(),
                })
        }
        Some(SecretRef::Keychain) => {
            let name = if mode == "token" {
                SecretName::GatewayAuthToken
            } else {
                SecretName::GatewayAuthPassword
            };
            let scope = scope(resolved);
            match store.get(&scope, name) {
                Ok(Some(v)) => Ok(wrap(v)),
                Ok(None) => Err(SpecError::KeychainMissing {
                    mode,
                    env: var,
                    profile: resolved.profile.name().to_string(),
                    store: store.mode(&scope).to_string(),
                    // The secrets file is used only with the flag until it exists.
                    command: match store.mode(&scope) {
                        StoreMode::File(_) => format!("{} --secrets-file", command_of(resolved)),
                        _ => command_of(resolved),
                    },
                }),
                Err(e) => Err(SpecError::Store {
                    mode,
                    profile: resolved.profile.name().to_string(),
                    reason: e.to_string(),
                }),
            }
        }
        None => Err(SpecError::NoSecret {
            profile: resolved.profile.name().to_string(),
            mode,
            var,
            command: command_of(resolved),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use omniclaw_core::config;
    use omniclaw_os::secrets::MemoryStore;
    use std::path::{Path, PathBuf};

    fn resolved(profile: Option<&str>, env: &EnvSnapshot) -> Resolved {
        paths::resolve(paths::Inputs {
            profile_flag: profile,
            env,
            cwd: Some(Path::new("/")),
        })
        .expect("resolves")
    }

    fn build(
        text: &str,
        overrides: Overrides,
        vars: &[(&str, &str)],
    ) -> Result<GatewaySpec, SpecError> {
        let env = EnvSnapshot::from_vars(vars.iter().copied().chain([("HOME", "/h")]));
        let r = resolved(Some("main"), &env);
        let loaded = config::load(text).expect("valid config");
        let store = MemoryStore::default();
        store
            .set(&scope(&r), SecretName::GatewayAuthPassword, "stored-pw")
            .expect("set");
        spec_for(
            &r,
            Some(&loaded.config),
            Some(loaded.doc.value()),
            &overrides,
            &env,
            &store,
        )
    }

    fn token(t: &str) -> Overrides {
        Overrides {
            token: Some(t.into()),
            ..Overrides::default()
        }
    }

    #[test]
    fn a_profile_in_remote_mode_is_not_run_here_and_presents_the_remote_token() {
        let text = "{ gateway: { mode: 'remote', remote: { url: 'wss://gw.example.com', token: { source: 'keychain' } } } }";
        let err = build(text, Overrides::default(), &[]).expect_err("refused");
        assert_eq!(
            err.to_string(),
            "profile main has gateway.mode \"remote\": its gateway runs at wss://gw.example.com, not on this machine, so none is started here. `omniclaw --profile main gateway probe` checks it; to run one here instead: `omniclaw --profile main config set gateway.mode '\"local\"'`"
        );

        let env = EnvSnapshot::from_vars([("HOME", "/h"), ("FAR", "far-token")]);
        let r = resolved(Some("main"), &env);
        let store = MemoryStore::default();
        let cfg = config::load(text).expect("valid").config;
        assert_eq!(
            remote_of(&cfg).map(|t| t.url),
            Some("wss://gw.example.com/".to_string())
        );
        let missing = super::credentials(&r, &cfg, &Overrides::default(), &env, &store)
            .expect_err("nothing stored");
        assert!(
            missing.to_string().contains(
                "`omniclaw --profile main secrets set gateway.remote.token` (or pass --token)"
            ),
            "{missing}"
        );
        store
            .set(&scope(&r), SecretName::GatewayRemoteToken, "stored")
            .expect("set");
        let got = super::credentials(&r, &cfg, &Overrides::default(), &env, &store);
        assert_eq!(got, Ok(Auth::Token("stored".into())));
        let got = super::credentials(&r, &cfg, &token("flag"), &env, &store);
        assert_eq!(got, Ok(Auth::Token("flag".into())));

        let by_env = config::load(
            "{ gateway: { mode: 'remote', remote: { url: 'ws://127.0.0.1:1', token: '${FAR}' } } }",
        )
        .expect("valid")
        .config;
        let got = super::credentials(&r, &by_env, &Overrides::default(), &env, &store);
        assert_eq!(got, Ok(Auth::Token("far-token".into())));

        let local = config::load("{ gateway: { remote: { url: 'wss://gw.example.com' } } }")
            .expect("valid")
            .config;
        assert_eq!(remote_of(&local), None, "mode local runs its own gateway");
    }

    #[test]
    fn ports_and_paths_follow_the_config() {
        let s = build(
            "{ gateway: { port: 19001 }, browser: { controlPort: 20000, profiles: { work: { cdpPort: 20500 } } }, canvasHost: { port: 21000 } }",
            token("t"),
            &[],
        )
        .expect("spec");
        assert_eq!(s.port, 19001);
        assert_eq!(s.browser.control_port, 20000);
        assert_eq!(s.browser.cdp_range, 20009..=20108);
        assert_eq!(s.browser.profiles.get("work"), Some(&Some(20500)));
        assert_eq!(s.canvas.port, 21000);
        assert_eq!(s.state_dir, PathBuf::from("/h/.omniclaw-main"));
        assert_eq!(s.workspace, PathBuf::from("/h/.omniclaw/workspace-main"));
        assert_eq!(
            s.canvas.root,
            PathBuf::from("/h/.omniclaw/workspace-main/canvas")
        );
        assert_eq!(s.bind, IpAddr::V4(Ipv4Addr::LOCALHOST));
    }

    #[test]
    fn flag_beats_env_beats_config() {
        let o = Overrides {
            port: Some(19001),
            ..token("t")
        };
        let s = build(
            "{ gateway: { port: 18789 } }",
            o,
            &[
                ("OMNICLAW_PROFILE", "main"),
                ("OMNICLAW_GATEWAY_PORT", "18000"),
            ],
        )
        .expect("spec");
        assert_eq!(s.port, 19001);
        assert_eq!(s.canvas.port, 19005);
        let s = build(
            "{ gateway: { port: 18789 } }",
            token("t"),
            &[
                ("OMNICLAW_PROFILE", "main"),
                ("OMNICLAW_GATEWAY_PORT", "18000"),
            ],
        )
        .expect("spec");
        assert_eq!(s.port, 18000);
    }

    #[test]
    fn credentials() {
        let cfg = "{ gateway: { auth: { mode: 'token', token: '${MY_TOKEN}' } } }";
        assert_eq!(
            build(cfg, Overrides::default(), &[("MY_TOKEN", "abc")]).map(|s| s.auth),
            Ok(Auth::Token("abc".into()))
        );
        assert_eq!(
            build(
                cfg,
                Overrides::default(),
                &[("MY_TOKEN", "abc"), ("OMNICLAW_GATEWAY_TOKEN", "envtok")]
            )
            .map(|s| s.auth),
            Ok(Auth::Token("envtok".into()))
        );
        assert_eq!(
            build(cfg, token("flag"), &[("MY_TOKEN", "abc")]).map(|s| s.auth),
            Ok(Auth::Token("flag".into()))
        );
        let err = build(cfg, Overrides::default(), &[]).expect_err("unset var");
        assert!(
            err.to_string().contains("MY_TOKEN, which is not set"),
            "{err}"
        );
        let err = build("{}", Overrides::default(), &[]).expect_err("no secret");
        let msg = err.to_string();
        assert!(
            msg.contains("no gateway token for profile main")
                && msg.contains("--token")
                && msg.contains("OMNICLAW_GATEWAY_TOKEN"),
            "{msg}"
        );
        let pw = build(
            "{ gateway: { auth: { mode: 'password' } } }",
            Overrides::default(),
            &[("OMNICLAW_GATEWAY_PASSWORD", "pw")],
        );
        assert_eq!(pw.map(|s| s.auth), Ok(Auth::Password("pw".into())));
        assert_eq!(
            build(
                "{ gateway: { auth: { mode: 'none' } } }",
                Overrides::default(),
                &[]
            )
            .map(|s| s.auth),
            Ok(Auth::None)
        );
        let kc = build(
            "{ gateway: { auth: { token: { source: 'keychain' } } } }",
            Overrides::default(),
            &[],
        )
        .expect_err("keychain");
        assert!(
            kc.to_string()
                .contains("omniclaw --profile main secrets set gateway.auth.token"),
            "{kc}"
        );
        let stored = build(
            "{ gateway: { auth: { mode: 'password', password: { source: 'keychain' } } } }",
            Overrides::default(),
            &[],
        );
        assert_eq!(
            stored.map(|s| s.auth),
            Ok(Auth::Password("stored-pw".into()))
        );
    }

    #[test]
    fn bind_modes() {
        let s = build("{ gateway: { bind: 'lan' } }", token("t"), &[]).expect("spec");
        assert_eq!(s.bind, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let s = build(
            "{ gateway: { bind: 'custom', customBindHost: '10.1.2.3' } }",
            token("t"),
            &[],
        )
        .expect("spec");
        assert_eq!(s.bind, "10.1.2.3".parse::<IpAddr>().expect("ip"));
        let o = Overrides {
            bind: Some(BindMode::Loopback),
            ..token("t")
        };
        let s = build("{ gateway: { bind: 'lan' } }", o, &[]).expect("spec");
        assert_eq!(s.bind, IpAddr::V4(Ipv4Addr::LOCALHOST));
    }

    #[test]
    fn overflowing_base_is_refused() {
        let o = Overrides {
            port: Some(65500),
            ..token("t")
        };
        let err = build("{}", o, &[]).expect_err("overflow");
        assert!(
            err.to_string().contains("choose a base of 65425 or lower"),
            "{err}"
        );
    }
}
