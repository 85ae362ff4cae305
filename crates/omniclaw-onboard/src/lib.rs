//! Onboarding a profile — a main bot, a rescue bot, any other — the steps
//! both the `omniclaw onboard` command and the desktop app's wizards take:
//! the port plan (derived ports and conflicts, a collision-free
//! suggestion), the assistant's model ([`model`]: provider, key, model
//! list, a priced test message), the Telegram bot, optional for a main bot
//! (its token's shape, no other profile using it — compared by fingerprint
//! — and `getMe`), the operator (the first private message to the bot),
//! the rescue bot's targets, then [`write()`] that carries out every answer
//! at once, and [`wait_healthy`] that tells when the started gateway
//! answers `health` and its bot polls.
//!
//! Nothing is written before [`write()`], and [`write()`] checks everything
//! again first; when one of its steps fails it removes what this run
//! created (directories, secrets, the config, the marker) and restores what
//! it replaced, so a refused or cancelled onboarding leaves no file and no
//! keychain entry behind. A profile that exists is completed through the
//! config edit path: its config gains the answers and keeps the rest. The
//! bot token and the API key go into the secret store only; the config
//! refers to them. This module never prints and never reads the process
//! environment: callers hand in the environment snapshot and the secret
//! store.

pub mod model;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use omniclaw_core::advice::{self, host_of, NetFailure};
use omniclaw_core::config::{self, SecretRef};
use omniclaw_core::env::EnvSnapshot;
use omniclaw_core::inventory;
use omniclaw_core::paths::{self, Resolved};
use omniclaw_core::ports::{self, Instance};
use omniclaw_core::profile::Profile;
use omniclaw_core::rescue::{check_token, StepError};
use omniclaw_os::discovery::{self, Marker};
use omniclaw_os::lock::InstanceLock;
use omniclaw_os::portowner::{self, Holder};
use omniclaw_os::profiles::{self, ConfigState, Inventory};
use omniclaw_os::secrets::{self, fingerprint, SecretName, SecretStore};
use omniclaw_os::{edit, fsx, runtime};

use omniclaw_channels::telegram::{ApiError, BotApi, ChatType, UpdateContent};
use omniclaw_gateway::client::{Client, ConnectOptions};
use omniclaw_gateway::profile::{self, Overrides};
use omniclaw_gateway::Auth;

pub use model::{
    closest, configured_model, detect_ollama, list_models, model_plan, ollama_url, pick_model,
    probe_providers, test_message, KeyNeed, LocalOllama, ModelAnswers, ModelError, ModelInfo,
    ModelPlan, ProviderDraft, ProviderKind, ProviderOffer, TestReply, OLLAMA_URL,
};

/// How long the operator step waits for a message by default.
pub const PAIR_WAIT: Duration = Duration::from_secs(300);
/// How long a started gateway gets to become healthy by default.
pub const HEALTH_WAIT: Duration = Duration::from_secs(60);
/// The config's reference to the secret store.
pub const KEYCHAIN_REF: &str = "{\"source\": \"keychain\"}";

/// Why an onboarding step refused; each says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OnboardError {
    #[error("the config {path} is invalid, so onboarding leaves it untouched:\n{errors}\nfix these keys (or run `{command} doctor`), then onboard again")]
    ConfigInvalid {
        path: String,
        errors: String,
        command: String,
    },
    #[error("{0}\nonboarding changed nothing; fix the file, then onboard again")]
    ConfigUnreadable(String),
    #[error("{0}")]
    Ownership(String),
    #[error("profile {profile} would collide with other instances:\n{conflicts}{}", suggestion.map_or(String::new(), |p| format!("\na free base port is {p}")))]
    Ports {
        profile: String,
        conflicts: String,
        suggestion: Option<u16>,
    },
    #[error("no free base port is left for profile {0}: remove unused profiles or give a port")]
    NoFreePort(String),
    #[error(transparent)]
    Step(#[from] StepError),
    #[error("profile {other} already uses this bot token (fingerprint {fingerprint}): two gateways polling one bot steal each other's updates; create a new bot with @BotFather for {profile}")]
    TokenInUse {
        other: String,
        fingerprint: String,
        profile: String,
    },
    #[error("Telegram refused this token (401 unauthorized): copy the token again from @BotFather (/mybots → API Token), or revoke and create a new one")]
    Unauthorized,
    /// The Bot API could not be reached; `what` says how, for people
    /// ("DNS lookup for api.telegram.org failed"), and each surface words
    /// the way out its own way (`advice::telegram_unreachable`).
    #[error(
        "{}; nothing was changed",
        advice::telegram_unreachable(what, "use your own Bot API server")
    )]
    Offline { what: String, failure: NetFailure },
    #[error("{0}")]
    Telegram(String),
    /// A model step refused: a wrong key, an unreachable server, …
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The config edit path refused the answers (the file changed
    /// meanwhile into something they no longer fit).
    #[error("{0}")]
    ConfigEdit(String),
    #[error("onboarding cancelled; nothing was changed")]
    Cancelled,
    /// `reason` is the store's own error, which carries its fix.
    #[error("cannot keep the secrets of profile {profile}: {reason}; nothing was changed")]
    Store { profile: String, reason: String },
    #[error(
        "cannot write {path}: {reason}; nothing was changed (fix the permissions of its folder)"
    )]
    Write { path: String, reason: String },
    #[error("internal: {0}")]
    Internal(String),
}

impl OnboardError {
    /// A wrong answer (as opposed to a failure of the machine or network).
    pub fn is_usage(&self) -> bool {
        match self {
            OnboardError::Model(e) => e.is_usage(),
            e => matches!(
                e,
                OnboardError::Ownership(_)
                    | OnboardError::Ports { .. }
                    | OnboardError::Step(_)
                    | OnboardError::TokenInUse { .. }
                    | OnboardError::Unauthorized
            ),
        }
    }
}

/// `omniclaw` or `omniclaw --profile NAME`, for hints.
pub fn command(resolved: &Resolved) -> String {
    match resolved.profile.suffix() {
        None => "omniclaw".to_string(),
        Some(name) => format!("omniclaw --profile {name}"),
    }
}

/// Where onboarding can keep the profile's secrets, found out before the
/// first question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreCheck {
    /// The profile's store takes secrets now.
    Ready,
    /// No OS keychain can be reached at all (no session bus, no Secret
    /// Service): a headless machine. The profile's secrets then go to its
    /// 0600 secrets file, as `setup` does; `why` says what was missing.
    Unreachable { why: String },
}

/// Checks the profile's secret store before anything is asked: it takes
/// a secret now ([`StoreCheck::Ready`]), or no keychain exists to ask
/// ([`StoreCheck::Unreachable`]: use the 0600 file). A keychain that
/// answers but refuses (locked, no default collection) is an error that
/// says how to unlock it or choose the file; nothing is left behind.
pub fn check_store(
    resolved: &Resolved,
    store: &dyn SecretStore,
) -> Result<StoreCheck, OnboardError> {
    match store.probe(&profile::scope(resolved)) {
        Ok(()) => Ok(StoreCheck::Ready),
        Err(secrets::SecretError::Unreachable { detail, .. }) => {
            Ok(StoreCheck::Unreachable { why: detail })
        }
        Err(e) => Err(OnboardError::Store {
            profile: resolved.profile.to_string(),
            reason: e.to_string(),
        }),
    }
}

/// One surface of the planned gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRow {
    pub surface: String,
    pub range: String,
    pub key: String,
    /// Another instance or a running process takes one of its ports.
    pub conflict: bool,
}

/// One reason the planned ports cannot be used, with its fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortConflict {
    pub text: String,
    pub fix: String,
}

/// Step 1: where the profile's gateway would listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortPlan {
    pub profile: String,
    /// The profile has a valid config already: onboarding adds to it.
    pub exists: bool,
    pub base: u16,
    /// A collision-free base port (the first free slot from the profile's
    /// preferred one).
    pub suggested: Option<u16>,
    pub rows: Vec<PortRow>,
    pub conflicts: Vec<PortConflict>,
    pub config_path: PathBuf,
    pub state_dir: PathBuf,
    /// The other profiles, which the rescue bot may act on.
    pub others: Vec<String>,
    /// The Telegram Bot API root the profile's config names, if any.
    pub api_root: Option<String>,
    /// The primary model the profile's config names (`openai/gpt-4o`);
    /// `None`: the assistant has no model yet.
    pub model: Option<String>,
    /// A rescue bot ([`is_rescue`]): its onboarding asks for the
    /// operator and the targets; a main bot's makes Telegram optional.
    pub rescue: bool,
}

/// Whether a profile is a rescue bot: it is named `rescue`, or its config
/// names the profiles it looks after (`rescue.targets`).
pub fn is_rescue(profile: &Profile, config: Option<&config::Config>) -> bool {
    profile.name() == "rescue" || config.is_some_and(|c| !c.rescue.targets.is_empty())
}

/// What a config on disk says, for planning.
struct Existing {
    text: String,
    config: config::Config,
}

fn existing(resolved: &Resolved) -> Result<Option<Existing>, OnboardError> {
    match profiles::read_config(&resolved.config_path) {
        ConfigState::Missing => Ok(None),
        ConfigState::Valid { text, loaded } => Ok(Some(Existing {
            text,
            config: loaded.config,
        })),
        ConfigState::Invalid { errors, .. } => Err(OnboardError::ConfigInvalid {
            path: resolved.display(&resolved.config_path),
            errors: errors.to_string(),
            command: command(resolved),
        }),
        ConfigState::Unreadable(message) => Err(OnboardError::ConfigUnreadable(message)),
    }
}

fn inventory_of(resolved: &Resolved, env: &EnvSnapshot) -> Result<Inventory, OnboardError> {
    profiles::load(resolved, env).map_err(|e| OnboardError::Internal(e.to_string()))
}

/// Refuses a state dir or config path that belongs to another profile.
fn check_ownership(resolved: &Resolved, inv: &Inventory) -> Result<(), OnboardError> {
    match profiles::ownership_problem(resolved, inv) {
        Some(problem) => Err(OnboardError::Ownership(format!(
            "{problem}: choose another profile name"
        ))),
        None => Ok(()),
    }
}

/// The first base port from the profile's preferred one whose derived
/// ports collide with no other instance, no listening process and no
/// remote gateway's tunnel.
fn free_base(
    profile: &Profile,
    others: &[Instance],
    listening: &std::collections::HashMap<u16, Holder>,
    tunnels: &[u16],
) -> Option<u16> {
    ports::free_base(others, ports::preferred_base(profile), |p| {
        listening.contains_key(&p) || tunnels.contains(&p)
    })
    .ok()
}

/// Step 1: the profile's ports for base `port` (default: the configured
/// one, else a free slot), every derived port and every conflict — with
/// other profiles, OpenClaw installs and processes listening right now.
pub fn plan_ports(
    resolved: &Resolved,
    env: &EnvSnapshot,
    port: Option<u16>,
) -> Result<PortPlan, OnboardError> {
    let inv = inventory_of(resolved, env)?;
    check_ownership(resolved, &inv)?;
    let current = inv.current().map(|c| c.label.clone());
    let others: Vec<Instance> = inv
        .instances(env)
        .into_iter()
        .filter(|i| Some(&i.name) != current.as_ref())
        .collect();
    let existing = existing(resolved)?;
    let listening = portowner::listening();
    let tunnels = omniclaw_os::remote::tunnel_ports(&resolved.home);
    let suggested = free_base(&resolved.profile, &others, &listening, &tunnels);
    let base = match port
        .or(resolved.env_port)
        .or_else(|| existing.as_ref().and_then(|e| e.config.gateway_port()))
    {
        Some(p) => p,
        None => suggested.ok_or_else(|| OnboardError::NoFreePort(resolved.profile.to_string()))?,
    };
    let text = base_text(existing.as_ref().map(|e| e.text.as_str()), base)?;
    let value = config::parse(&text)
        .map_err(|e| OnboardError::Internal(format!("the planned config does not parse: {e}")))?
        .into_value();
    let mut candidate = inventory::for_profile(resolved.profile.name(), resolved, &value, env);
    candidate.ports.base = base;
    let allocations = ports::allocate(&candidate.ports).map_err(|e| OnboardError::Ports {
        profile: resolved.profile.to_string(),
        conflicts: format!("  - {e}"),
        suggestion: suggested,
    })?;
    let mut all = others.clone();
    all.push(candidate.clone());
    let plan = ports::plan(&all);
    let mut conflicts: Vec<PortConflict> = plan
        .conflicts
        .iter()
        .filter(|c| {
            let (a, b) = c.instances();
            a == candidate.name || b == candidate.name
        })
        .map(|c| PortConflict {
            text: c.to_string(),
            fix: c.fix(),
        })
        .collect();
    // Ports this profile's own running gateway holds are no conflict.
    let own_pid = InstanceLock::probe(&resolved.lock_path())
        .ok()
        .flatten()
        .map(|h| h.pid);
    let mut rows = Vec::new();
    for a in &allocations {
        let mut conflict = plan.rows.iter().any(|r| {
            r.instance != candidate.name && r.range.overlaps(&a.range) && {
                plan.conflicts.iter().any(|c| {
                    let (x, y) = c.instances();
                    (x == candidate.name && y == r.instance)
                        || (y == candidate.name && x == r.instance)
                })
            }
        });
        // The CDP range binds lazily; a listener inside it is only a
        // problem for the surfaces that bind at start.
        if a.surface != ports::Surface::CdpRange {
            for port in a.range.start()..=a.range.end() {
                if let Some(holder) = listening.get(&port) {
                    if Some(holder.pid) == own_pid {
                        continue;
                    }
                    conflict = true;
                    conflicts.push(PortConflict {
                        text: format!(
                            "port {port} ({} of {}) is in use by {holder}",
                            a.surface, resolved.profile
                        ),
                        fix: match suggested {
                            Some(p) if p != base => {
                                format!("stop that process, or use the free base port {p}")
                            }
                            _ => "stop that process, or choose another base port".to_string(),
                        },
                    });
                }
            }
        }
        rows.push(PortRow {
            surface: a.surface.to_string(),
            range: a.range.to_string(),
            key: a.key.to_string(),
            conflict,
        });
    }
    Ok(PortPlan {
        profile: resolved.profile.name().to_string(),
        exists: existing.is_some(),
        base,
        suggested,
        rows,
        conflicts,
        config_path: resolved.config_path.clone(),
        state_dir: resolved.state_dir.clone(),
        others: inv
            .profiles
            .iter()
            .filter(|p| !p.is_current && p.set_up)
            .map(|p| p.profile.name().to_string())
            .collect(),
        rescue: is_rescue(&resolved.profile, existing.as_ref().map(|e| &e.config)),
        model: existing.as_ref().and_then(|e| configured_model(&e.config)),
        api_root: existing.and_then(|e| e.config.channels.telegram.api_root.clone()),
    })
}

/// The config with its base port: the existing text with `gateway.port`
/// changed when it differs, or the initial config with the gateway token
/// kept in the secret store.
fn base_text(existing: Option<&str>, base: u16) -> Result<String, OnboardError> {
    let (start, edits) = base_edits(existing, base)?;
    apply(&start, &edits).map_err(|e| OnboardError::Internal(e.to_string()))
}

/// [`base_text`] as a text to start from and the edits that make it:
/// the existing text changes only through edits.
fn base_edits(
    existing: Option<&str>,
    base: u16,
) -> Result<(String, Vec<(String, String)>), OnboardError> {
    match existing {
        None => {
            let text = config::set(
                &config::initial(base, None),
                &SecretName::GatewayAuthToken.path(),
                KEYCHAIN_REF,
            )
            .map_err(|e| OnboardError::Internal(e.to_string()))?;
            Ok((text, Vec::new()))
        }
        Some(text) => {
            let current = config::load(text)
                .ok()
                .and_then(|l| l.config.gateway_port());
            let edits = if current == Some(base) {
                Vec::new()
            } else {
                vec![("gateway.port".to_string(), base.to_string())]
            };
            Ok((text.to_string(), edits))
        }
    }
}

/// `edits` (path, JSON5 value) applied in order, each validated whole.
fn apply(text: &str, edits: &[(String, String)]) -> Result<String, config::EditError> {
    edits
        .iter()
        .try_fold(text.to_string(), |text, (path, value)| {
            config::set(&text, path, value)
        })
}

/// Step 2, offline half: the token's shape, and that no other profile's
/// store holds the same token (compared by fingerprint, never shown).
pub fn check_token_unused(
    resolved: &Resolved,
    env: &EnvSnapshot,
    store: &dyn SecretStore,
    token: &str,
) -> Result<(), OnboardError> {
    check_token(token)?;
    let mine = fingerprint(token.trim());
    let inv = inventory_of(resolved, env)?;
    // A token written into another config (plaintext or `${VAR}`), an
    // OpenClaw install's among them.
    let current = inv.current().map(|c| c.label.clone());
    let in_config = inventory::fingerprint(token.trim());
    if let Some(other) = inv.instances(env).into_iter().find(|i| {
        Some(&i.name) != current.as_ref()
            && i.bot_token_fingerprint.as_deref() == Some(in_config.as_str())
    }) {
        return Err(OnboardError::TokenInUse {
            other: other.name,
            fingerprint: mine,
            profile: resolved.profile.to_string(),
        });
    }
    for p in inv.profiles.iter().filter(|p| !p.is_current) {
        let scope = secrets::Scope::new(p.profile.name(), p.state_dir.clone());
        if let Ok(Some(other)) = store.get(&scope, SecretName::TelegramBotToken) {
            if fingerprint(&other) == mine {
                return Err(OnboardError::TokenInUse {
                    other: p.profile.to_string(),
                    fingerprint: mine,
                    profile: resolved.profile.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// Step 2, online half: asks Telegram (`getMe`) whose token this is.
/// Returns the bot's username.
pub async fn get_me(token: &str, api_root: &str) -> Result<String, OnboardError> {
    let api = BotApi::new(api_root, token.trim(), Duration::from_secs(10)).map_err(api_error)?;
    match api.get_me().await {
        Ok(me) => Ok(me.username),
        Err(e) => Err(api_error(e)),
    }
}

fn api_error(e: ApiError) -> OnboardError {
    match e {
        ApiError::Unauthorized => OnboardError::Unauthorized,
        ApiError::Network { root, failure, .. } => OnboardError::Offline {
            what: failure.describe(host_of(&root)),
            failure,
        },
        e @ ApiError::Conflict => OnboardError::Telegram(format!(
            "{e}; stop the gateway that runs this bot while onboarding"
        )),
        e => OnboardError::Telegram(e.to_string()),
    }
}

/// Who wrote to the bot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    pub id: u64,
    /// `@username`, else the first name.
    pub who: String,
}

/// Step 3: waits for the first private message to the bot (the operator's
/// `/start`) for up to `within`; `Ok(None)` when nobody wrote in time.
/// Resolving `cancel` ends the wait with [`OnboardError::Cancelled`]. The
/// message is confirmed, so the gateway does not answer it again.
pub async fn wait_for_operator(
    token: &str,
    api_root: &str,
    within: Duration,
    cancel: impl Future<Output = ()>,
) -> Result<Option<Operator>, OnboardError> {
    let api = BotApi::new(api_root, token.trim(), Duration::from_secs(25)).map_err(api_error)?;
    let wait = async {
        api.delete_webhook().await.map_err(api_error)?;
        let deadline = Instant::now() + within;
        let mut offset = 0i64;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let poll = left.min(Duration::from_secs(20));
            let updates = api.get_updates(offset, poll).await.map_err(api_error)?;
            for u in updates {
                offset = u.update_id + 1;
                let UpdateContent::Message(m) = u.content else {
                    continue;
                };
                if m.chat.type_field != ChatType::Private {
                    continue;
                }
                if let Some(from) = m.from.as_deref() {
                    let who = from
                        .username
                        .as_ref()
                        .map_or_else(|| from.first_name.clone(), |n| format!("@{n}"));
                    // Confirm what was read so the gateway does not handle it again.
                    let _ = api.get_updates(offset, Duration::ZERO).await;
                    return Ok(Some(Operator { id: from.id, who }));
                }
            }
        }
    };
    tokio::select! {
        r = wait => r,
        () = cancel => Err(OnboardError::Cancelled),
    }
}

/// The answers about the Telegram bot.
#[derive(Clone)]
pub struct TelegramAnswers {
    pub token: String,
    pub username: String,
    /// `channels.telegram.apiRoot`, when not Telegram's own.
    pub api_root: Option<String>,
    pub allow_from: Vec<u64>,
    pub targets: Vec<Profile>,
    /// Turn the rescue's watch on (`rescue.watch.enabled`): of `targets`,
    /// or of every other profile when `targets` is empty.
    pub watch: bool,
    /// The watch may roll a target back to its last good config
    /// (`"rollback"` added to `rescue.watch.actions`).
    pub watch_rollback: bool,
}

// The token must never reach a log line.
impl std::fmt::Debug for TelegramAnswers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelegramAnswers")
            .field("token", &fingerprint(&self.token))
            .field("username", &self.username)
            .field("api_root", &self.api_root)
            .field("allow_from", &self.allow_from)
            .field("targets", &self.targets)
            .field("watch", &self.watch)
            .field("watch_rollback", &self.watch_rollback)
            .finish()
    }
}

/// Every answer, checked, ready to be written.
#[derive(Debug, Clone, Default)]
pub struct Answers {
    pub port: Option<u16>,
    pub telegram: Option<TelegramAnswers>,
    /// The assistant's model; `None` leaves the config's models alone.
    pub model: Option<ModelAnswers>,
}

/// What [`write()`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The profile was new.
    pub created: bool,
    pub base: u16,
    pub rows: Vec<PortRow>,
    pub workspace: PathBuf,
    /// A gateway token was generated into the store.
    pub token_generated: bool,
    /// Where the secrets went ("the OS keychain", "the secrets file …").
    pub store: String,
    /// What the model step changed, when there was one.
    pub model: Option<ModelPlan>,
}

/// The telegram keys of the answers, as (path, JSON5 value) edits.
fn telegram_edits(tg: &TelegramAnswers) -> Vec<(&'static str, String)> {
    let ids: Vec<String> = tg.allow_from.iter().map(u64::to_string).collect();
    let mut edits: Vec<(&'static str, String)> = vec![
        ("channels.telegram.enabled", "true".into()),
        ("channels.telegram.botToken", KEYCHAIN_REF.into()),
        // The allowlist first: `dmPolicy: allowlist` is refused without one.
        (
            "channels.telegram.allowFrom",
            format!("[{}]", ids.join(", ")),
        ),
        (
            "channels.telegram.dmPolicy",
            if tg.allow_from.is_empty() {
                "\"pairing\""
            } else {
                "\"allowlist\""
            }
            .into(),
        ),
    ];
    if let Some(root) = &tg.api_root {
        edits.push(("channels.telegram.apiRoot", json!(root).to_string()));
    }
    if !tg.targets.is_empty() {
        let names: Vec<Value> = tg.targets.iter().map(|p| json!(p.name())).collect();
        edits.push(("rescue.targets", Value::Array(names).to_string()));
    }
    // Only a watch asked for is turned on: a profile onboarded without it
    // never starts repairing by itself.
    if tg.watch {
        edits.push(("rescue.watch.enabled", "true".into()));
        let actions = if tg.watch_rollback {
            r#"["restart", "rollback"]"#
        } else {
            r#"["restart"]"#
        };
        edits.push(("rescue.watch.actions", actions.into()));
    }
    edits
}

/// What one [`write()`] changed, to undo it when a later step fails.
#[derive(Default)]
struct Undo {
    /// Directories this run created, in creation order.
    dirs: Vec<PathBuf>,
    /// Secrets this run set, with the value each replaced.
    secrets: Vec<(SecretName, Option<String>)>,
    /// The config this run wrote, with the text it replaced.
    config: Option<(PathBuf, Option<String>)>,
}

impl Undo {
    fn mkdir(&mut self, dir: &Path, private: bool) -> Result<(), OnboardError> {
        if dir.is_dir() {
            return Ok(());
        }
        // Record the outermost missing ancestor: removing it removes the rest.
        let mut top = dir.to_path_buf();
        while let Some(parent) = top.parent() {
            if parent.exists() {
                break;
            }
            top = parent.to_path_buf();
        }
        let made = if private {
            fsx::create_private_dir(dir)
        } else {
            std::fs::create_dir_all(dir)
        };
        made.map_err(|e| OnboardError::Write {
            path: dir.display().to_string(),
            reason: e.to_string(),
        })?;
        self.dirs.push(top);
        Ok(())
    }

    fn rollback(self, store: &dyn SecretStore, scope: &secrets::Scope) {
        if let Some((path, previous)) = self.config {
            match previous {
                Some(text) => {
                    let _ = fsx::atomic_write(&path, text.as_bytes());
                }
                None => {
                    let _ = std::fs::remove_file(&path);
                    let _ = std::fs::remove_file(fsx::backup_path(&path));
                }
            }
        }
        for (name, previous) in self.secrets.into_iter().rev() {
            let _ = match previous {
                Some(value) => store.set(scope, name, &value),
                None => store.remove(scope, name).map(|_| ()),
            };
        }
        for dir in self.dirs.into_iter().rev() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Step 5: checks every answer again, then writes: the state dir, the
/// gateway token, the bot token and the API key into `store`, the config
/// (a new one atomically; an existing one through the config edit path,
/// which adds the answers and keeps the rest; the previous text kept as
/// `.bak`), the workspace and the ownership marker. When a step fails, what
/// this run did is undone and the error says what to do; nothing is left
/// half-made.
pub fn write(
    resolved: &Resolved,
    env: &EnvSnapshot,
    store: &dyn SecretStore,
    answers: &Answers,
) -> Result<Written, OnboardError> {
    let plan = plan_ports(resolved, env, answers.port)?;
    if !plan.conflicts.is_empty() {
        let lines: Vec<String> = plan
            .conflicts
            .iter()
            .map(|c| format!("  - {}\n    fix: {}", c.text, c.fix))
            .collect();
        return Err(OnboardError::Ports {
            profile: resolved.profile.to_string(),
            conflicts: lines.join("\n"),
            // Said once: a live conflict's fix may name the free port already.
            suggestion: plan.suggested.filter(|p| {
                *p != plan.base
                    && !plan
                        .conflicts
                        .iter()
                        .any(|c| c.fix.contains(&format!("free base port {p}")))
            }),
        });
    }
    if let Some(tg) = &answers.telegram {
        check_token_unused(resolved, env, store, &tg.token)?;
    }
    let previous = existing(resolved)?;
    let previous_text = previous.as_ref().map(|e| e.text.as_str());
    let model = answers
        .model
        .as_ref()
        .map(|m| model_plan(previous_text, m))
        .transpose()?;
    let (start, mut edits) = base_edits(previous_text, plan.base)?;
    if let Some(tg) = &answers.telegram {
        edits.extend(
            telegram_edits(tg)
                .into_iter()
                .map(|(path, value)| (path.to_string(), value)),
        );
    }
    if let Some(m) = &model {
        edits.extend(m.edits.iter().cloned());
    }
    let text = apply(&start, &edits).map_err(|e| {
        OnboardError::Internal(format!("the config onboarding produced is invalid: {e}"))
    })?;
    let loaded = config::load(&text).map_err(|e| {
        OnboardError::Internal(format!("the config onboarding produced is invalid:\n{e}"))
    })?;
    let (workspace, _) = resolved.workspace(loaded.config.workspace());
    let scope = profile::scope(resolved);
    let mut undo = Undo::default();
    let mut secrets: Vec<(SecretName, &str)> = Vec::new();
    if let Some(tg) = &answers.telegram {
        secrets.push((SecretName::TelegramBotToken, tg.token.trim()));
    }
    if let (Some(name), Some(key)) = (
        model.as_ref().and_then(|m| m.secret),
        answers
            .model
            .as_ref()
            .and_then(|m| m.provider.key.as_deref()),
    ) {
        secrets.push((name, key));
    }
    let config = if previous.is_some() {
        ConfigWrite::Edit(&edits)
    } else {
        ConfigWrite::New(&text)
    };
    let result = write_steps(
        resolved,
        env,
        store,
        &scope,
        &secrets,
        config,
        &loaded.config,
        &workspace,
        &mut undo,
    );
    match result {
        Ok(token_generated) => Ok(Written {
            created: previous.is_none(),
            base: plan.base,
            rows: plan.rows,
            workspace,
            token_generated,
            store: store.mode(&scope).to_string(),
            model,
        }),
        Err(e) => {
            undo.rollback(store, &scope);
            Err(e)
        }
    }
}

/// How [`write_steps`] writes the config.
enum ConfigWrite<'a> {
    /// A new profile's whole text.
    New(&'a str),
    /// An existing config gains these edits, applied to the file as it is
    /// under its lock.
    Edit(&'a [(String, String)]),
}

#[allow(clippy::too_many_arguments)]
fn write_steps(
    resolved: &Resolved,
    env: &EnvSnapshot,
    store: &dyn SecretStore,
    scope: &secrets::Scope,
    new_secrets: &[(SecretName, &str)],
    write: ConfigWrite,
    config: &config::Config,
    workspace: &Path,
    undo: &mut Undo,
) -> Result<bool, OnboardError> {
    let store_error = |e: secrets::SecretError| OnboardError::Store {
        profile: resolved.profile.to_string(),
        reason: e.to_string(),
    };
    // The state dir first: a secrets file lives in it.
    undo.mkdir(&resolved.state_dir, true)?;
    undo.mkdir(&resolved.logs_dir(), true)?;

    let wants_token = config.auth_mode() == config::AuthMode::Token
        && config.gateway.auth.token == Some(SecretRef::Keychain);
    let mut token_generated = false;
    if wants_token
        && store
            .get(scope, SecretName::GatewayAuthToken)
            .map_err(store_error)?
            .is_none()
    {
        let token = secrets::generate_token().map_err(|e| {
            OnboardError::Internal(format!("the OS random number generator failed: {e}"))
        })?;
        store
            .set(scope, SecretName::GatewayAuthToken, &token)
            .map_err(store_error)?;
        undo.secrets.push((SecretName::GatewayAuthToken, None));
        token_generated = true;
    }
    for (name, value) in new_secrets {
        let before = store.get(scope, *name).map_err(store_error)?;
        store.set(scope, *name, value).map_err(store_error)?;
        undo.secrets.push((*name, before));
    }

    // Named profiles keep their workspace in the default profile's state
    // dir (~/.omniclaw/workspace-NAME): create that one private too.
    let default_state = paths::default_state_dir(&resolved.home, &Profile::Default);
    if workspace.parent() == Some(default_state.as_path()) {
        undo.mkdir(&default_state, true)?;
    }
    undo.mkdir(workspace, false)?;

    let config_path = resolved.display(&resolved.config_path);
    match write {
        ConfigWrite::New(text) => {
            if let Some(parent) = resolved.config_path.parent() {
                undo.mkdir(parent, false)?;
            }
            // Only where no config appeared meanwhile: one made by another
            // writer is refused, not lost.
            fsx::replace_if_unchanged(
                &resolved.config_path,
                None,
                text.as_bytes(),
                fsx::Options::with_backup(),
            )
            .map_err(|e| OnboardError::Write {
                path: config_path,
                reason: e.to_string(),
            })?;
            undo.config = Some((resolved.config_path.clone(), None));
        }
        ConfigWrite::Edit(edits) => {
            let target = edit::Target {
                resolved: resolved.clone(),
                env: env.clone(),
            };
            let mut before = None;
            let edited = edit::edit_config(&target, &edit::Options::default(), |current| {
                before = Some(current.to_string());
                apply(current, edits)
            })
            .map_err(|e| match e {
                edit::EditError::Io { detail, .. } => OnboardError::Write {
                    path: config_path,
                    reason: detail,
                },
                e => OnboardError::ConfigEdit(e.to_string()),
            })?;
            if edited.changed {
                undo.config = Some((resolved.config_path.clone(), before));
            }
        }
    }
    let marker = Marker {
        profile: resolved.profile.name().to_string(),
        config_path: resolved.config_path.clone(),
    };
    if discovery::read_marker(&resolved.state_dir).as_ref() != Some(&marker) {
        discovery::write_marker(&resolved.state_dir, &marker).map_err(|e| OnboardError::Write {
            path: resolved.marker_path().display().to_string(),
            reason: e.to_string(),
        })?;
    }
    Ok(token_generated)
}

/// How to reach a profile's gateway: its URL, base port and credentials.
#[derive(Clone)]
pub struct Endpoint {
    pub profile: String,
    pub url: String,
    pub port: u16,
    pub auth: Auth,
    /// The config enables the Telegram channel: health waits for it to poll.
    pub telegram: bool,
    /// `omniclaw --profile NAME`, for hints.
    pub command: String,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("profile", &self.profile)
            .field("url", &self.url)
            .field("telegram", &self.telegram)
            .finish_non_exhaustive()
    }
}

/// The endpoint of `resolved`'s gateway from its config on disk (and where
/// it really listens, when it runs).
pub fn endpoint(
    resolved: &Resolved,
    env: &EnvSnapshot,
    store: &dyn SecretStore,
) -> Result<Endpoint, String> {
    let (config, value) = match profiles::read_config(&resolved.config_path) {
        ConfigState::Valid { loaded, .. } => (loaded.config, loaded.doc.value().clone()),
        ConfigState::Missing => {
            return Err(format!(
                "{} does not exist: onboard the profile first",
                resolved.display(&resolved.config_path)
            ))
        }
        ConfigState::Invalid { errors, .. } => {
            return Err(format!(
                "the config {} is invalid:\n{errors}",
                resolved.display(&resolved.config_path)
            ))
        }
        ConfigState::Unreadable(message) => return Err(message),
    };
    let overrides = Overrides::default();
    let layout = profile::layout(resolved, Some(&config), Some(&value), &overrides)
        .map_err(|e| e.to_string())?;
    let auth = profile::credentials(resolved, &config, &overrides, env, store)
        .map_err(|e| e.to_string())?;
    let (bind, port) = match runtime::read_live(&resolved.state_dir) {
        Some(live) => (live.bind.parse().unwrap_or(layout.bind), live.port),
        None => (layout.bind, layout.port),
    };
    let host = match bind {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => "127.0.0.1".to_string(),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => "127.0.0.1".to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        std::net::IpAddr::V4(ip) => ip.to_string(),
    };
    Ok(Endpoint {
        profile: resolved.profile.name().to_string(),
        url: format!("ws://{host}:{port}"),
        port,
        auth,
        telegram: omniclaw_channels::telegram::enabled(&value),
        command: command(resolved),
    })
}

/// A green health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthy {
    /// `@username` of the polling bot, when the profile has one.
    pub bot: Option<String>,
}

/// Why a started gateway did not become healthy; each says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HealthError {
    #[error("the gateway of profile {profile} does not answer on port {port} after {secs} s ({reason}); {fix}")]
    Unreachable {
        profile: String,
        port: u16,
        secs: u64,
        reason: String,
        fix: String,
    },
    #[error("the gateway of profile {profile} answers but is not healthy: {reason}; see `{command} health` and `{command} logs`")]
    Unhealthy {
        profile: String,
        reason: String,
        command: String,
    },
    #[error("the gateway of profile {profile} runs, but its Telegram bot does not poll: {summary}; {fix}")]
    Telegram {
        profile: String,
        summary: String,
        fix: String,
    },
}

/// One look at the gateway: `health`, then the Telegram channel.
enum Look {
    Green(Healthy),
    /// Not yet; keep trying until the deadline, then report this.
    NotYet(HealthError),
    /// Trying again will not help.
    Failed(HealthError),
}

async fn look(endpoint: &Endpoint, secs: u64) -> Look {
    let mut opts = ConnectOptions::new(endpoint.auth.clone(), &["operator.read"]);
    opts.timeout = Duration::from_secs(3);
    let client = match Client::connect_with(&endpoint.url, opts).await {
        Ok(c) => c,
        Err(e) => {
            let fix = match portowner::holder(endpoint.port) {
                Some(holder) if holder.pid != std::process::id() => format!(
                    "port {} is held by {holder}: stop it, or move this profile with `{} config set gateway.port N`",
                    endpoint.port, endpoint.command
                ),
                _ => format!(
                    "start it (`{} gateway`) and see `{} logs` for why it stopped",
                    endpoint.command, endpoint.command
                ),
            };
            return Look::NotYet(HealthError::Unreachable {
                profile: endpoint.profile.clone(),
                port: endpoint.port,
                secs,
                reason: e.to_string(),
                fix,
            });
        }
    };
    let health = client.call("health", json!({})).await;
    let channels = if endpoint.telegram {
        client.call("channels.status", json!({})).await.ok()
    } else {
        None
    };
    client.close().await;
    let unhealthy = |reason: String| HealthError::Unhealthy {
        profile: endpoint.profile.clone(),
        reason,
        command: endpoint.command.clone(),
    };
    match health {
        Ok(h) if h.get("ok") == Some(&Value::Bool(true)) => {}
        Ok(h) => {
            let reason = h
                .pointer("/reload/error")
                .and_then(Value::as_str)
                .map_or_else(|| format!("health says {h}"), str::to_string);
            return Look::NotYet(unhealthy(reason));
        }
        Err(e) => return Look::NotYet(unhealthy(format!("the health call failed: {e}"))),
    }
    if !endpoint.telegram {
        return Look::Green(Healthy { bot: None });
    }
    let tg = channels
        .as_ref()
        .and_then(|c| c.pointer("/channels/telegram"))
        .cloned()
        .unwrap_or(Value::Null);
    let telegram = |summary: String, fix: String| HealthError::Telegram {
        profile: endpoint.profile.clone(),
        summary,
        fix,
    };
    let summary = tg["summary"]
        .as_str()
        .unwrap_or("the channel has not started")
        .to_string();
    match tg["state"].as_str() {
        Some("running") => Look::Green(Healthy {
            bot: tg["bot"].as_str().map(str::to_string),
        }),
        Some("unauthorized") => Look::Failed(telegram(
            summary,
            "Telegram refused the bot token: get a new one from @BotFather and onboard again"
                .into(),
        )),
        Some("conflict") => Look::NotYet(telegram(
            summary,
            "stop the other program polling this bot, or give this profile its own bot".into(),
        )),
        Some("offline") => Look::NotYet(telegram(summary, "the bot keeps retrying".into())),
        _ => Look::NotYet(telegram(
            summary,
            format!("see `{} logs`", endpoint.command),
        )),
    }
}

/// Waits up to `within` until the gateway at `endpoint` answers `health`
/// with ok and, when the profile has a Telegram bot, the bot polls. Returns
/// the last reason it was not green when time runs out (or at once when
/// waiting cannot help, like a refused bot token).
/// Waits until the gateway at `endpoint`, which runs already (a service, a
/// terminal), serves the config whose text hashes to `config_hash`: it
/// applies an edited file by itself, so nothing starts a second one. A
/// refused edit or one not picked up in `within` is an error saying which.
pub async fn wait_applied(
    endpoint: &Endpoint,
    config_hash: &str,
    within: Duration,
) -> Result<(), HealthError> {
    let start = Instant::now();
    loop {
        let mut opts = ConnectOptions::new(endpoint.auth.clone(), &["operator.read"]);
        opts.timeout = Duration::from_secs(3);
        let reload = match Client::connect_with(&endpoint.url, opts).await {
            Ok(client) => {
                let health = client.call("health", json!({})).await;
                client.close().await;
                health.ok().and_then(|h| h.get("reload").cloned())
            }
            Err(_) => None,
        };
        let served = reload
            .as_ref()
            .and_then(|r| r.get("configHash"))
            .and_then(Value::as_str);
        if served == Some(config_hash) {
            return Ok(());
        }
        if start.elapsed() >= within {
            let why = reload
                .as_ref()
                .and_then(|r| r.get("lastError").or_else(|| r.get("error")))
                .and_then(Value::as_str)
                .map_or_else(
                    || "it has not picked up the new file".to_string(),
                    |e| format!("it refused the new file: {e}"),
                );
            return Err(HealthError::Unhealthy {
                profile: endpoint.profile.clone(),
                reason: format!(
                    "it runs outside the app and still serves its previous config after {} s; {why}",
                    within.as_secs()
                ),
                command: endpoint.command.clone(),
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

pub async fn wait_healthy(endpoint: &Endpoint, within: Duration) -> Result<Healthy, HealthError> {
    let start = Instant::now();
    loop {
        let secs = start.elapsed().as_secs();
        match look(endpoint, secs).await {
            Look::Green(h) => return Ok(h),
            Look::Failed(e) => return Err(e),
            Look::NotYet(e) if start.elapsed() >= within => return Err(e),
            Look::NotYet(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use omniclaw_os::secrets::MemoryStore;

    const TOKEN: &str = "555555555:AAHonboard-token-for-tests_abcdefghij";
    const OTHER_TOKEN: &str = "555555556:AAHonboard-token-for-tests_klmnopqrst";
    const THIRD_TOKEN: &str = "555555557:AAHonboard-token-for-tests_uvwxyzabcd";
    const FOURTH_TOKEN: &str = "555555558:AAHonboard-token-for-tests_efghijklmn";
    const SPARE: &str = "666666666:AAHanother-token-for-tests_abcdefghij";

    fn home() -> (tempfile::TempDir, EnvSnapshot) {
        let dir = tempfile::tempdir().expect("temp home");
        let env = EnvSnapshot::default().with("HOME", dir.path().to_string_lossy().as_ref());
        (dir, env)
    }

    fn resolve(env: &EnvSnapshot, profile: &str) -> Resolved {
        paths::resolve(paths::Inputs {
            profile_flag: Some(profile),
            env,
            cwd: None,
        })
        .expect("resolves")
    }

    fn files(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                out.push(e.path());
                if e.path().is_dir() {
                    stack.push(e.path());
                }
            }
        }
        out.sort();
        out
    }

    fn answers(port: u16, token: &str) -> Answers {
        Answers {
            port: Some(port),
            telegram: Some(TelegramAnswers {
                token: token.to_string(),
                username: "rescue_bot".into(),
                api_root: Some("http://127.0.0.1:9".into()),
                allow_from: vec![42],
                targets: vec![Profile::parse("main").expect("profile")],
                watch: true,
                watch_rollback: false,
            }),
            model: None,
        }
    }

    /// A store that fails `set` for one secret, as a locked keychain would.
    struct Refusing {
        inner: MemoryStore,
        refuse: SecretName,
    }

    impl SecretStore for Refusing {
        fn get(
            &self,
            scope: &secrets::Scope,
            name: SecretName,
        ) -> Result<Option<String>, secrets::SecretError> {
            self.inner.get(scope, name)
        }
        fn set(
            &self,
            scope: &secrets::Scope,
            name: SecretName,
            value: &str,
        ) -> Result<(), secrets::SecretError> {
            if name == self.refuse {
                return Err(secrets::SecretError::Keychain {
                    account: scope.account(name),
                    detail: "the keychain is locked".into(),
                });
            }
            self.inner.set(scope, name, value)
        }
        fn remove(
            &self,
            scope: &secrets::Scope,
            name: SecretName,
        ) -> Result<bool, secrets::SecretError> {
            self.inner.remove(scope, name)
        }
        fn mode(&self, scope: &secrets::Scope) -> secrets::StoreMode {
            self.inner.mode(scope)
        }
    }

    // The tests plan ports below Linux's ephemeral range (32768–60999),
    // where other tests' listeners on port 0 land: the plan checks live
    // listeners too.

    #[test]
    fn writing_puts_the_token_in_the_store_only() {
        let (dir, env) = home();
        let store = MemoryStore::default();
        let rescue = resolve(&env, "rescue");
        let port = 24000;
        let written = write(&rescue, &env, &store, &answers(port, TOKEN)).expect("written");
        assert!(written.created);
        assert_eq!(written.base, port);
        let scope = profile::scope(&rescue);
        assert_eq!(
            store
                .get(&scope, SecretName::TelegramBotToken)
                .expect("get"),
            Some(TOKEN.to_string())
        );
        let config = std::fs::read_to_string(&rescue.config_path).expect("config");
        assert!(
            config.contains("keychain") && config.contains("allowlist"),
            "{config}"
        );
        assert!(config.contains("\"main\""), "{config}");
        for f in files(dir.path()).iter().filter(|f| f.is_file()) {
            let text = String::from_utf8_lossy(&std::fs::read(f).expect("read")).into_owned();
            assert!(!text.contains(TOKEN), "the token reached {}", f.display());
        }
        assert_eq!(
            discovery::read_marker(&rescue.state_dir).map(|m| m.profile),
            Some("rescue".to_string())
        );
    }

    #[test]
    fn targets_turn_the_watch_on_and_rollback_is_asked_for() {
        use omniclaw_core::config::WatchAction;
        let (_dir, env) = home();
        let store = MemoryStore::default();
        let watch = |name: &str, answers: &Answers| {
            let p = resolve(&env, name);
            write(&p, &env, &store, answers).expect("written");
            let text = std::fs::read_to_string(&p.config_path).expect("config");
            config::load(&text).expect("valid").config.rescue_watch()
        };
        let plain = watch("rescue", &answers(24700, TOKEN));
        assert!(plain.enabled);
        assert_eq!(plain.actions, vec![WatchAction::Restart]);

        let mut rollback = answers(24900, OTHER_TOKEN);
        if let Some(tg) = rollback.telegram.as_mut() {
            tg.watch_rollback = true;
        }
        let both = watch("keeper", &rollback);
        assert!(both.enabled);
        assert_eq!(
            both.actions,
            vec![WatchAction::Restart, WatchAction::Rollback]
        );

        // No watch asked for: nothing starts repairing by itself.
        let mut none = answers(25100, THIRD_TOKEN);
        if let Some(tg) = none.telegram.as_mut() {
            tg.targets.clear();
            tg.watch = false;
        }
        assert!(!watch("rescue2", &none).enabled);

        // Every other profile (no target named) watched, rollback allowed.
        let mut every = answers(25300, FOURTH_TOKEN);
        if let Some(tg) = every.telegram.as_mut() {
            tg.targets.clear();
            tg.watch_rollback = true;
        }
        let all = watch("rescue3", &every);
        assert!(all.enabled);
        assert_eq!(
            all.actions,
            vec![WatchAction::Restart, WatchAction::Rollback]
        );
        let p = resolve(&env, "rescue3");
        let text = std::fs::read_to_string(&p.config_path).expect("config");
        let loaded = config::load(&text).expect("valid");
        let targets = loaded.config.rescue_targets();
        assert!(targets.is_empty(), "every other profile: {targets:?}");
    }

    #[test]
    fn a_failed_write_leaves_nothing_behind() {
        let (dir, env) = home();
        let store = Refusing {
            inner: MemoryStore::default(),
            refuse: SecretName::TelegramBotToken,
        };
        let rescue = resolve(&env, "rescue");
        let err = write(&rescue, &env, &store, &answers(24200, TOKEN)).expect_err("refused");
        assert!(matches!(err, OnboardError::Store { .. }), "{err}");
        assert!(err.to_string().contains("nothing was changed"), "{err}");
        assert_eq!(
            files(dir.path()),
            Vec::<PathBuf>::new(),
            "files left behind"
        );
        let scope = profile::scope(&rescue);
        assert_eq!(
            store
                .get(&scope, SecretName::GatewayAuthToken)
                .expect("get"),
            None,
            "the generated gateway token was removed again"
        );
    }

    #[test]
    fn a_failed_write_keeps_what_was_there() {
        let (_dir, env) = home();
        let memory = MemoryStore::default();
        let rescue = resolve(&env, "rescue");
        write(&rescue, &env, &memory, &on_port(24400)).expect("set up without a bot");
        let before = std::fs::read_to_string(&rescue.config_path).expect("config");
        let scope = profile::scope(&rescue);
        let gateway_token = memory
            .get(&scope, SecretName::GatewayAuthToken)
            .expect("get");
        assert!(gateway_token.is_some());
        let store = Refusing {
            inner: memory,
            refuse: SecretName::TelegramBotToken,
        };
        write(&rescue, &env, &store, &answers(24400, TOKEN)).expect_err("refused");
        assert_eq!(
            std::fs::read_to_string(&rescue.config_path).expect("config"),
            before
        );
        assert!(rescue.state_dir.is_dir(), "the existing state dir stays");
        assert_eq!(
            store
                .get(&scope, SecretName::GatewayAuthToken)
                .expect("get"),
            gateway_token
        );
    }

    /// A profile on `port`, without a bot or a model.
    fn on_port(port: u16) -> Answers {
        Answers {
            port: Some(port),
            ..Answers::default()
        }
    }

    const API_KEY: &str = "sk-onboard-api-key-0123456789abcdef";

    fn model_answers(model: &str) -> ModelAnswers {
        ModelAnswers {
            provider: ProviderDraft::new(
                ProviderKind::OpenAi,
                None,
                Some("http://127.0.0.1:9/v1"),
                None,
                Some(API_KEY.into()),
            )
            .expect("draft"),
            model: ModelInfo {
                id: model.into(),
                name: model.into(),
                context_window: None,
                cost: None,
            },
        }
    }

    fn api_key_name() -> SecretName {
        SecretName::parse("models.providers.openai.apiKey").expect("name")
    }

    #[test]
    fn a_model_is_written_with_its_key_in_the_store_only() {
        let (dir, env) = home();
        let store = MemoryStore::default();
        let main = resolve(&env, "main");
        let written = write(
            &main,
            &env,
            &store,
            &Answers {
                port: Some(26000),
                telegram: None,
                model: Some(model_answers("gpt-4o-mini")),
            },
        )
        .expect("written");
        let plan = written.model.expect("a model plan");
        assert_eq!(plan.model_ref, "openai/gpt-4o-mini");
        let scope = profile::scope(&main);
        assert_eq!(
            store.get(&scope, api_key_name()).expect("get"),
            Some(API_KEY.to_string())
        );
        let text = std::fs::read_to_string(&main.config_path).expect("config");
        let loaded = config::load(&text).expect("valid");
        assert_eq!(
            configured_model(&loaded.config).as_deref(),
            Some("openai/gpt-4o-mini")
        );
        for f in files(dir.path()).iter().filter(|f| f.is_file()) {
            let text = String::from_utf8_lossy(&std::fs::read(f).expect("read")).into_owned();
            assert!(!text.contains(API_KEY), "the key reached {}", f.display());
        }
        let plan = plan_ports(&main, &env, None).expect("plan");
        assert_eq!(plan.model.as_deref(), Some("openai/gpt-4o-mini"));
        assert!(!plan.rescue);
    }

    #[test]
    fn an_existing_profile_gains_a_model_and_keeps_what_it_has() {
        let (_dir, env) = home();
        let store = MemoryStore::default();
        let main = resolve(&env, "main");
        write(&main, &env, &store, &on_port(26200)).expect("set up");
        let text = std::fs::read_to_string(&main.config_path).expect("config");
        let text = config::set(&text, "logging.level", "\"debug\"").expect("set");
        let text = format!("// my own notes\n{text}");
        std::fs::write(&main.config_path, &text).expect("hand edit");
        assert_eq!(plan_ports(&main, &env, None).expect("plan").model, None);

        let written = write(
            &main,
            &env,
            &store,
            &Answers {
                model: Some(model_answers("gpt-4o")),
                ..Answers::default()
            },
        )
        .expect("completed");
        assert!(!written.created);
        assert_eq!(written.base, 26200, "the port stays");
        let after = std::fs::read_to_string(&main.config_path).expect("config");
        assert!(after.starts_with("// my own notes"), "{after}");
        let loaded = config::load(&after).expect("valid");
        assert_eq!(loaded.config.logging.level, Some(config::LogLevel::Debug));
        assert_eq!(
            configured_model(&loaded.config).as_deref(),
            Some("openai/gpt-4o")
        );
        assert_eq!(
            std::fs::read_to_string(fsx::backup_path(&main.config_path)).expect("bak"),
            text,
            "the previous text is the .bak"
        );

        // A store that refuses the key: the config stays as it was.
        let refusing = Refusing {
            inner: store,
            refuse: SecretName::parse("models.providers.anthropic.apiKey").expect("name"),
        };
        let err = write(
            &main,
            &env,
            &refusing,
            &Answers {
                model: Some(ModelAnswers {
                    provider: ProviderDraft::new(
                        ProviderKind::Anthropic,
                        None,
                        None,
                        None,
                        Some(API_KEY.into()),
                    )
                    .expect("draft"),
                    ..model_answers("claude")
                }),
                ..Answers::default()
            },
        )
        .expect_err("refused");
        assert!(matches!(err, OnboardError::Store { .. }), "{err}");
        assert_eq!(
            std::fs::read_to_string(&main.config_path).expect("config"),
            after
        );
        let scope = profile::scope(&main);
        assert_eq!(
            refusing.get(&scope, api_key_name()).expect("get"),
            Some(API_KEY.to_string()),
            "the key stored before stays"
        );
    }

    #[test]
    fn a_rescue_profile_is_known_by_its_name_or_its_targets() {
        let (_dir, env) = home();
        let store = MemoryStore::default();
        assert!(
            plan_ports(&resolve(&env, "rescue"), &env, Some(26400))
                .expect("plan")
                .rescue
        );
        let watcher = resolve(&env, "watcher");
        assert!(
            !plan_ports(&watcher, &env, Some(26600))
                .expect("plan")
                .rescue
        );
        write(&watcher, &env, &store, &answers(26600, TOKEN)).expect("written");
        assert!(
            plan_ports(&watcher, &env, None).expect("plan").rescue,
            "its config names targets"
        );
    }

    #[test]
    fn a_token_another_profile_uses_is_refused_by_fingerprint() {
        let (_dir, env) = home();
        let store = MemoryStore::default();
        let rescue = resolve(&env, "rescue");
        write(&rescue, &env, &store, &answers(24600, TOKEN)).expect("written");
        let work = resolve(&env, "work");
        let err =
            check_token_unused(&work, &env, &store, &format!(" {TOKEN}\n")).expect_err("refused");
        match &err {
            OnboardError::TokenInUse {
                other, fingerprint, ..
            } => {
                assert_eq!(other, "rescue");
                assert_eq!(fingerprint, &secrets::fingerprint(TOKEN));
            }
            other => panic!("wrong error: {other}"),
        }
        assert!(!err.to_string().contains(TOKEN));
        // write checks again: a stale answer cannot slip through.
        let before = files(work.home.as_path());
        write(&work, &env, &store, &answers(24800, TOKEN)).expect_err("refused");
        assert_eq!(files(work.home.as_path()), before);
        // A token another config holds in plain text is found too.
        let lab = resolve(&env, "lab");
        write(&lab, &env, &store, &on_port(25200)).expect("lab");
        let text = std::fs::read_to_string(&lab.config_path).expect("config");
        let text = config::set(
            &text,
            "channels.telegram.botToken",
            &json!(SPARE).to_string(),
        )
        .expect("set");
        std::fs::write(&lab.config_path, text).expect("write");
        assert!(matches!(
            check_token_unused(&work, &env, &store, SPARE),
            Err(OnboardError::TokenInUse { other, .. }) if other == "lab"
        ));
        // Its own token may be given again (onboarding once more).
        check_token_unused(&rescue, &env, &store, TOKEN).expect("own token");
        assert!(matches!(
            check_token_unused(&work, &env, &store, "nope"),
            Err(OnboardError::Step(StepError::TokenShape))
        ));
    }

    #[test]
    fn the_port_plan_names_derived_ports_conflicts_and_a_free_slot() {
        let (_dir, env) = home();
        let store = MemoryStore::default();
        let main = resolve(&env, "main");
        write(&main, &env, &store, &on_port(25000)).expect("main");
        let rescue = resolve(&env, "rescue");
        let plan = plan_ports(&rescue, &env, Some(25020)).expect("plan");
        assert!(!plan.exists);
        assert_eq!(plan.base, 25020);
        assert_eq!(plan.others, vec!["main".to_string()]);
        let surfaces: Vec<&str> = plan.rows.iter().map(|r| r.surface.as_str()).collect();
        assert_eq!(
            surfaces,
            vec!["base", "browser control", "canvas", "CDP range"]
        );
        assert!(
            !plan.conflicts.is_empty(),
            "25020 overlaps main's CDP range"
        );
        assert!(plan.rows.iter().any(|r| r.conflict));
        let free = plan.suggested.expect("a free slot");
        let clean = plan_ports(&rescue, &env, Some(free)).expect("plan");
        assert!(clean.conflicts.is_empty(), "{:?}", clean.conflicts);
        assert!(clean.rows.iter().all(|r| !r.conflict));
        // The refusal at write time names the free port.
        let err = write(&rescue, &env, &store, &on_port(25020)).expect_err("collides");
        assert!(
            err.to_string()
                .contains(&format!("free base port is {free}")),
            "{err}"
        );
        assert!(!rescue.state_dir.exists());
    }

    #[test]
    fn a_state_dir_of_another_profile_is_refused() {
        let (dir, env) = home();
        let rescue = resolve(&env, "rescue");
        std::fs::create_dir_all(&rescue.state_dir).expect("mkdir");
        discovery::write_marker(
            &rescue.state_dir,
            &Marker {
                profile: "main".into(),
                config_path: dir.path().join(".omniclaw-main/omniclaw.json"),
            },
        )
        .expect("marker");
        let err = plan_ports(&rescue, &env, None).expect_err("refused");
        assert!(err.to_string().contains("belongs to profile main"), "{err}");
        assert!(err.is_usage());
    }

    /// A store whose probe fails as `error` says.
    struct Probe(fn() -> secrets::SecretError);

    impl SecretStore for Probe {
        fn get(
            &self,
            _: &secrets::Scope,
            _: SecretName,
        ) -> Result<Option<String>, secrets::SecretError> {
            Ok(None)
        }
        fn set(
            &self,
            _: &secrets::Scope,
            _: SecretName,
            _: &str,
        ) -> Result<(), secrets::SecretError> {
            Err((self.0)())
        }
        fn remove(&self, _: &secrets::Scope, _: SecretName) -> Result<bool, secrets::SecretError> {
            Ok(false)
        }
        fn mode(&self, _: &secrets::Scope) -> secrets::StoreMode {
            secrets::StoreMode::Keychain
        }
        fn probe(&self, _: &secrets::Scope) -> Result<(), secrets::SecretError> {
            Err((self.0)())
        }
    }

    #[test]
    fn the_store_is_checked_before_any_question() {
        let (_dir, env) = home();
        let rescue = resolve(&env, "rescue");
        assert_eq!(
            check_store(&rescue, &MemoryStore::default()),
            Ok(StoreCheck::Ready)
        );
        let headless = Probe(|| secrets::SecretError::Unreachable {
            detail: "no session bus".into(),
            command: "omniclaw --profile rescue".into(),
            name: SecretName::GatewayAuthToken,
        });
        assert_eq!(
            check_store(&rescue, &headless),
            Ok(StoreCheck::Unreachable {
                why: "no session bus".into()
            })
        );
        let locked = Probe(|| secrets::SecretError::Refused {
            account: "rescue/.probe@x".into(),
            detail: "the login keyring is locked".into(),
            command: "omniclaw --profile rescue".into(),
        });
        let err = check_store(&rescue, &locked).expect_err("refused");
        let text = err.to_string();
        assert!(
            text.contains("the login keyring is locked") && text.contains("nothing was changed"),
            "{text}"
        );
        assert!(!err.is_usage());
    }

    /// A Bot API root that cannot be reached is said in a sentence that
    /// names how it failed, never the error chain of the HTTP stack.
    #[tokio::test]
    async fn an_unreachable_bot_api_is_one_sentence() {
        // Nothing listens on the port a just-closed listener had.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = closed.local_addr().expect("addr").port();
        drop(closed);
        let refused = get_me(TOKEN, &format!("http://127.0.0.1:{port}"))
            .await
            .expect_err("refused");
        assert!(
            matches!(
                refused,
                OnboardError::Offline {
                    failure: NetFailure::Refused,
                    ..
                }
            ),
            "{refused:?}"
        );
        assert_eq!(
            refused.to_string(),
            format!("Can't reach Telegram (127.0.0.1:{port} refused the connection): check the network, or use your own Bot API server; nothing was changed")
        );
        // A server that speaks plain text where TLS was expected.
        let plain = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let at = plain.local_addr().expect("addr");
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            while let Ok((mut s, _)) = plain.accept().await {
                let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
            }
        });
        let tls = get_me(TOKEN, &format!("https://{at}"))
            .await
            .expect_err("tls");
        assert!(
            matches!(
                tls,
                OnboardError::Offline {
                    failure: NetFailure::Tls,
                    ..
                }
            ),
            "{tls:?}"
        );
        // A name that never resolves (RFC 6761 reserves `.invalid`).
        let dns = get_me(TOKEN, "https://api.telegram.invalid")
            .await
            .expect_err("dns");
        assert_eq!(
            dns.to_string(),
            "Can't reach Telegram (DNS lookup for api.telegram.invalid failed): check the network, or use your own Bot API server; nothing was changed"
        );
        for e in [&refused, &tls, &dns] {
            let text = e.to_string();
            assert!(
                !text.contains("error sending request") && !text.contains("apiRoot"),
                "{text}"
            );
        }
    }

    #[tokio::test]
    async fn waiting_for_the_operator_can_be_cancelled() {
        // Nothing listens on port 9 of loopback: the wait would fail or hang
        // on the network; the cancel wins either way or the error is offline.
        let result = wait_for_operator(TOKEN, "http://127.0.0.1:9", PAIR_WAIT, async {}).await;
        assert!(
            matches!(
                result,
                Err(OnboardError::Cancelled) | Err(OnboardError::Offline { .. })
            ),
            "{result:?}"
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let root = format!("http://{}", listener.local_addr().expect("addr"));
        // A server that accepts and never answers: only the cancel ends the wait.
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let wait = tokio::spawn(async move {
            wait_for_operator(TOKEN, &root, PAIR_WAIT, async {
                let _ = rx.await;
            })
            .await
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!wait.is_finished(), "the wait ended on its own");
        tx.send(()).expect("send");
        let result = wait.await.expect("joined");
        assert_eq!(result, Err(OnboardError::Cancelled));
    }
}
