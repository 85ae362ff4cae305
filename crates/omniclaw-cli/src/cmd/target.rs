//! The gateway a command talks to: this profile's, resolved from its config,
//! with the URL to reach it and the credentials to present.

use std::net::IpAddr;

use omniclaw_core::paths::{Resolved, Source};
use omniclaw_gateway::profile::{self, Overrides, SpecError};
use omniclaw_gateway::{Auth, GatewaySpec};
use omniclaw_os::profiles::{self, ConfigState, ProfileRecord};
use omniclaw_os::runtime::{self, RuntimeInfo};

use crate::cli::ConnectArgs;
use crate::ctx::Ctx;
use crate::out::CliError;

pub struct Target {
    pub resolved: Resolved,
    pub config: ConfigState,
    /// Ports, bind and paths (credentials left out).
    pub layout: GatewaySpec,
    /// The credentials to present, or why there are none.
    pub auth: Result<Auth, SpecError>,
    /// Where the gateway runs when the profile is in `gateway.mode:
    /// "remote"`: its clients dial `gateway.remote.url` instead.
    pub remote: Option<omniclaw_core::remote::WsTarget>,
}

impl Target {
    /// Resolves this profile's gateway. Works on an invalid config as far as
    /// its ports can be read, so `status` can still reach a running gateway.
    pub fn load(ctx: &Ctx, conn: &ConnectArgs) -> Result<Target, CliError> {
        let resolved = ctx.resolve()?;
        ctx.print_notes(&resolved);
        let overrides = Overrides {
            token: conn.token.clone(),
            password: conn.password.clone(),
            ..Overrides::default()
        };
        Target::for_resolved(ctx, resolved, &overrides)
    }

    /// [`Target::load`] of an already resolved profile.
    pub fn for_resolved(
        ctx: &Ctx,
        resolved: Resolved,
        overrides: &Overrides,
    ) -> Result<Target, CliError> {
        let config = profiles::read_config(&resolved.config_path);
        let (cfg, value) = match &config {
            ConfigState::Valid { loaded, .. } => (Some(&loaded.config), Some(loaded.doc.value())),
            other => (None, other.value()),
        };
        let mut layout =
            profile::layout(&resolved, cfg, value, overrides).map_err(CliError::usage)?;
        if let Some(live) = runtime::read_live(&resolved.state_dir) {
            apply_live(&mut layout, &live);
        }
        let remote = cfg.and_then(profile::remote_of);
        let auth = credentials_of(&resolved, &config, overrides, &ctx.env, &ctx.store);
        Ok(Target {
            resolved,
            config,
            layout,
            auth,
            remote,
        })
    }

    /// `ws://HOST:PORT` of the gateway; a wildcard bind is reached on
    /// loopback; a profile in remote mode, at `gateway.remote.url`.
    pub fn url(&self) -> String {
        match &self.remote {
            Some(far) => far.url.clone(),
            None => ws_url(self.layout.bind, self.layout.port),
        }
    }
}

/// The credentials to present to a profile's gateway. An invalid config
/// cannot say where its secret is; a running gateway still serves its last
/// good config, whose token `setup` put in the store, so that is tried.
pub fn credentials_of(
    resolved: &omniclaw_core::paths::Resolved,
    config: &ConfigState,
    overrides: &Overrides,
    env: &omniclaw_core::env::EnvSnapshot,
    store: &dyn omniclaw_os::secrets::SecretStore,
) -> Result<Auth, SpecError> {
    let mut fallback = omniclaw_core::config::Config::default();
    if matches!(config, ConfigState::Invalid { .. }) {
        fallback.gateway.auth.token = Some(omniclaw_core::config::SecretRef::Keychain);
    }
    let cfg = match config {
        ConfigState::Valid { loaded, .. } => &loaded.config,
        _ => &fallback,
    };
    profile::credentials(resolved, cfg, overrides, env, store)
}

/// The paths of another discovered profile, as `resolve` would give them.
pub fn resolved_of(p: &ProfileRecord, current: &Resolved) -> Resolved {
    if p.is_current {
        return current.clone();
    }
    Resolved {
        profile: p.profile.clone(),
        profile_source: Source::Flag,
        home: current.home.clone(),
        state_dir: p.state_dir.clone(),
        state_dir_source: Source::Marker,
        config_path: p.config_path.clone(),
        config_path_source: Source::Marker,
        env_port: None,
        notes: Vec::new(),
    }
}

/// Where the running gateway really listens wins over its config.
pub fn apply_live(layout: &mut GatewaySpec, live: &RuntimeInfo) {
    layout.port = live.port;
    if let Ok(ip) = live.bind.parse() {
        layout.bind = ip;
    }
    layout.browser.enabled = live.control_port.is_some();
    if let Some(p) = live.control_port {
        layout.browser.control_port = p;
    }
    if let Some((a, b)) = live.cdp_range {
        layout.browser.cdp_range = a..=b;
    }
    layout.canvas.enabled = live.canvas_port.is_some();
    if let Some(p) = live.canvas_port {
        layout.canvas.port = p;
    }
}

/// `ws://` URL for a listener on `bind:port`; wildcard binds are reached on loopback.
pub fn ws_url(bind: IpAddr, port: u16) -> String {
    let host = if bind.is_unspecified() {
        "127.0.0.1".to_string()
    } else if bind.is_ipv6() {
        format!("[{bind}]")
    } else {
        bind.to_string()
    };
    format!("ws://{host}:{port}")
}

/// A current-thread runtime for commands that talk to a gateway.
pub fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failed(format!("cannot start the async runtime: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            ws_url("127.0.0.1".parse().expect("ip"), 1),
            "ws://127.0.0.1:1"
        );
        assert_eq!(
            ws_url("0.0.0.0".parse().expect("ip"), 2),
            "ws://127.0.0.1:2"
        );
        assert_eq!(ws_url("::1".parse().expect("ip"), 3), "ws://[::1]:3");
        assert_eq!(
            ws_url("10.0.0.5".parse().expect("ip"), 4),
            "ws://10.0.0.5:4"
        );
    }
}
