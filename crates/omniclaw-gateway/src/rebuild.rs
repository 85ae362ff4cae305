//! The [`Rebuild`] of a gateway that runs a profile: the one implementation
//! the CLI (`omniclaw gateway`) and the desktop app's embedded gateways share.
//!
//! Each edit of the profile's config is built into a spec exactly the way
//! the gateway was built at start (same flags, environment snapshot and
//! secret store, through [`profile::spec_for`]); each applied config sets
//! the level of the gateway's own logger, hands every secret it runs with
//! to that logger's redactor, and publishes where the gateway really
//! listens in `<state dir>/gateway.json` for `status`, `probe` and the tray;
//! the first config served clears the stop recorded in
//! `<state dir>/stop-intent.json` (the gateway runs again).
//! The Telegram channel reads its bot token from the same secret store.
//!
//! Never reads the process environment: the caller captured it once.

use std::sync::Arc;

use omniclaw_core::config::{self, SecretRef};
use omniclaw_core::env::EnvSnapshot;
use omniclaw_core::paths::Resolved;
use omniclaw_os::intent;
use omniclaw_os::lock::Owner;
use omniclaw_os::logs::Logger;
use omniclaw_os::runtime::{self, RuntimeInfo};
use omniclaw_os::secrets::{SecretName, SecretStore};

use crate::profile::{self, Overrides};
use crate::reload::{Candidate, Rebuild};
use crate::server::Addrs;
use crate::spec::{Auth, GatewaySpec};
use omniclaw_channels::telegram;

/// What a config with no file runs on: the defaults.
pub const EMPTY_CONFIG: &str = "{}\n";

/// A validated config text with the spec built from it.
pub fn candidate(text: &str, spec: GatewaySpec) -> Result<Candidate, String> {
    let loaded = config::load(text).map_err(|e| e.to_string())?;
    Ok(Candidate {
        spec,
        config: loaded.config,
        value: loaded.doc.into_value(),
        text: text.to_string(),
    })
}

/// Rebuilds the gateway of one profile; see the module docs.
pub struct ProfileRebuild {
    resolved: Resolved,
    overrides: Overrides,
    env: EnvSnapshot,
    store: Arc<dyn SecretStore>,
    logger: Logger,
    owner: Owner,
    /// Called once, when the gateway first serves (see [`Self::on_ready`]).
    ready: std::sync::Mutex<Option<Ready>>,
    /// Whether it has served a config yet: the first one clears the
    /// recorded stop intent.
    served: std::sync::atomic::AtomicBool,
}

/// What runs once a gateway serves its first config.
pub type Ready = Box<dyn FnOnce(&Candidate, &Addrs) + Send>;

impl ProfileRebuild {
    /// `logger` is the gateway's own (its profile's `<state dir>/logs/`);
    /// `owner` is what the runtime file says runs it.
    pub fn new(
        resolved: Resolved,
        overrides: Overrides,
        env: EnvSnapshot,
        store: Arc<dyn SecretStore>,
        logger: Logger,
        owner: Owner,
    ) -> ProfileRebuild {
        ProfileRebuild {
            resolved,
            overrides,
            env,
            store,
            logger,
            owner,
            ready: std::sync::Mutex::new(None),
            served: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Runs `ready` once the gateway serves its first config: listening,
    /// its config watched, where it listens published (the CLI says
    /// "listening" then, so a script may edit the config at once).
    pub fn on_ready(&self, ready: Ready) {
        *self.ready.lock().unwrap_or_else(|p| p.into_inner()) = Some(ready);
    }

    pub fn resolved(&self) -> &Resolved {
        &self.resolved
    }

    /// The gateway's logger (its dispatch routes this gateway's events).
    pub fn logger(&self) -> &Logger {
        &self.logger
    }

    /// Hands every secret `c` runs with to the logger's redactor: the
    /// gateway's credentials and every secret reference of its config.
    pub fn redact(&self, c: &Candidate) {
        let mut secrets = Vec::new();
        match &c.spec.auth {
            Auth::Token(s) | Auth::Password(s) => secrets.push(s.clone()),
            Auth::None => {}
        }
        let scope = profile::scope(&self.resolved);
        for (path, r) in c.config.secrets() {
            let value = match r {
                SecretRef::Plain(s) => Some(s.clone()),
                SecretRef::Env(var) => self.env.get(var).map(str::to_string),
                SecretRef::Keychain => SecretName::parse(&path)
                    .ok()
                    .and_then(|n| self.store.get(&scope, n).ok().flatten()),
            };
            secrets.extend(value);
        }
        self.logger.redactor.set(secrets);
    }

    /// Tells `status`, `probe`, `browser status` and the tray where this
    /// gateway really listens (flags or a reload may have moved it).
    fn publish(&self, spec: &GatewaySpec, addrs: &Addrs) {
        let info = RuntimeInfo {
            pid: std::process::id(),
            owner: self.owner.as_str().to_string(),
            bind: addrs.gateway.ip().to_string(),
            port: addrs.gateway.port(),
            control_port: addrs.browser_control.map(|a| a.port()),
            canvas_port: addrs.canvas.map(|a| a.port()),
            cdp_range: spec.browser.enabled.then(|| {
                (
                    *spec.browser.cdp_range.start(),
                    *spec.browser.cdp_range.end(),
                )
            }),
            config_path: self.resolved.config_path.clone(),
            started_ms: now_ms(),
        };
        if let Err(e) = runtime::write(&self.resolved.state_dir, &info) {
            tracing::warn!(
                file = %self.resolved.state_dir.join(runtime::FILE).display(),
                error = %e,
                "cannot write the runtime file; `status` will show the configured ports"
            );
        }
    }
}

impl Rebuild for ProfileRebuild {
    fn build(&self, text: &str) -> Result<Candidate, String> {
        let loaded = config::load(text).map_err(|e| e.to_string())?;
        // Allowed but worth a look (OpenClaw's legacy keys, read as its
        // doctor migrates them; a capped model without a price).
        for warning in loaded.warnings() {
            tracing::warn!(path = %warning.path, "config: {}", warning.message);
        }
        let spec = profile::spec_for(
            &self.resolved,
            Some(&loaded.config),
            Some(loaded.doc.value()),
            &self.overrides,
            &self.env,
            self.store.as_ref(),
        )
        .map_err(|e| e.to_string())?;
        Ok(Candidate {
            spec,
            config: loaded.config,
            value: loaded.doc.into_value(),
            text: text.to_string(),
        })
    }

    fn secrets(&self) -> Option<Arc<dyn crate::assistant::SecretResolver>> {
        Some(Arc::new(ProfileSecrets {
            scope: profile::scope(&self.resolved),
            env: self.env.clone(),
            store: self.store.clone(),
        }))
    }

    fn known_secrets(&self) -> Arc<dyn telegram::SecretSource> {
        Arc::new(KnownSecrets {
            resolved: self.resolved.clone(),
            env: self.env.clone(),
            store: self.store.clone(),
        })
    }

    fn edit_target(&self) -> Option<omniclaw_os::edit::Target> {
        Some(omniclaw_os::edit::Target {
            resolved: self.resolved.clone(),
            env: self.env.clone(),
        })
    }

    fn applied(&self, c: &Candidate, addrs: &Addrs) {
        self.logger.set_level(c.config.log_level().as_str());
        self.redact(c);
        self.publish(&c.spec, addrs);
        if !self.served.swap(true, std::sync::atomic::Ordering::SeqCst) {
            // It runs again: a stop recorded before no longer holds the
            // rescue's watch back. Only at the first config, so a reload
            // never forgets a stop asked for meanwhile.
            if let Err(e) = intent::clear(&self.resolved.state_dir) {
                tracing::warn!(
                    file = %self.resolved.state_dir.join(intent::FILE).display(),
                    error = %e,
                    "cannot clear the recorded stop; the rescue's watch will not repair this gateway until it is removed"
                );
            }
        }
        let ready = self.ready.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(ready) = ready {
            ready(c, addrs);
        }
    }

    fn telegram(&self, c: &Candidate) -> Result<Option<telegram::Settings>, String> {
        telegram::settings(
            &c.spec.profile,
            &c.spec.state_dir,
            &c.config,
            &c.value,
            self.store.as_ref(),
            telegram::default_program(),
            c.spec.child_env.clone(),
        )
    }
}

/// The profile's secrets as the assistant reads them: plaintext from the
/// config, `${VAR}` from the environment snapshot, store references from
/// the profile's secret store (read at each call: a rotated key applies at
/// once).
struct ProfileSecrets {
    scope: omniclaw_os::secrets::Scope,
    env: EnvSnapshot,
    store: Arc<dyn SecretStore>,
}

impl crate::assistant::SecretResolver for ProfileSecrets {
    fn resolve(&self, path: &str, secret: &SecretRef) -> Result<Option<String>, String> {
        match secret {
            SecretRef::Plain(v) => Ok(Some(v.clone())),
            SecretRef::Env(var) => self.env.get(var).map(|v| Some(v.to_string())).ok_or_else(|| {
                format!("{path} refers to ${{{var}}}, which is not set in the gateway's environment")
            }),
            SecretRef::Keychain => {
                let name = SecretName::parse(path).map_err(|e| e.to_string())?;
                match self.store.get(&self.scope, name) {
                    Ok(Some(v)) => Ok(Some(v)),
                    Ok(None) => Err(format!(
                        "{path} is not stored: store it with `{} secrets set {path}`",
                        self.scope.command()
                    )),
                    Err(e) => Err(e.to_string()),
                }
            }
        }
    }
}

/// The secret values of every profile under this one's home (its own
/// included), read at each use so a rotated token is masked at once.
struct KnownSecrets {
    resolved: Resolved,
    env: EnvSnapshot,
    store: Arc<dyn SecretStore>,
}

impl telegram::SecretSource for KnownSecrets {
    fn values(&self) -> Vec<String> {
        omniclaw_os::secrets::known_values(&self.resolved, &self.env, self.store.as_ref())
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
