//! The Telegram channel: a gateway's assistant on the Bot API, or a rescue
//! bot whose slash commands operate on other gateways (and whose assistant
//! may only read them and propose changes).
//!
//! - [`api`] — the Bot API methods over reqwest, with a configurable
//!   root (`channels.telegram.apiRoot`) and errors sorted by what to do.
//! - [`channel`] — long polling into the durable [`inbox`], access control
//!   (`dmPolicy`, groups), the assistant's replies (typing, previews per
//!   `streaming.mode`, parts of 4000 characters, Markdown as Telegram HTML
//!   via [`format`]), confirmations, approvals, the audit log and its state.
//! - [`hooks`] — what the channel needs of its gateway (the assistant, the
//!   approvals), as traits the gateway implements.
//! - [`exec`] — rescue commands carried out through the `omniclaw` binary;
//!   [`tools`] — the rescue assistant's tools over the same commands.
//!
//! A gateway is a rescue bot when its config has a `rescue` section (the
//! rescue bot's onboarding writes `rescue.targets`) or its profile is
//! named `rescue`; any other gateway's bot is its assistant.
//!
//! [`settings`] decides from a validated config whether a gateway runs the
//! channel and with what. [`decide_pairing`] approves or denies a pending
//! pairing request and tells the user, for the CLI and the desktop alike. The bot token is read from the secret store only
//! (the keychain, or the profile's secrets file); a plaintext or
//! `${VAR}` token is refused with the command that moves it. Nothing here
//! writes the token into a reply, a log line, a state file or an error.

pub mod api;
pub mod channel;
pub mod exec;
pub mod format;
pub mod heal;
pub mod hooks;
pub mod inbox;
pub mod tools;
pub mod types;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use omniclaw_core::config::{Config, SecretRef};
use omniclaw_core::env::ChildEnv;
use omniclaw_core::paths::Resolved;
use omniclaw_core::profile::Profile;
use omniclaw_core::rescue::{PairingCode, PairingError, Pending};
use omniclaw_os::profiles::{self, ConfigState};
use omniclaw_os::rescue::{PairingStore, StateError};
use omniclaw_os::secrets::{Scope, SecretName, SecretStore};

pub use api::{ApiError, BotApi, Me, DEFAULT_API_ROOT};
pub use channel::{Channel, ChannelState, Hooks, Role, Settings, Streaming};
pub use exec::{Executor, SecretSource};
pub use hooks::{Approvals, Ask, Assistant, Decision, Notice, Submitted, Turn};
/// The Bot API types callers read updates with (onboarding waits for `/start`).
pub use types::{ChatType, Update, UpdateContent};

/// Long-poll timeout of `getUpdates`.
pub const POLL_TIMEOUT: Duration = Duration::from_secs(25);

/// Whether the config turns the channel on: a `channels.telegram` section
/// whose `enabled` is not `false`.
pub fn enabled(value: &Value) -> bool {
    value
        .pointer("/channels/telegram")
        .filter(|v| v.is_object())
        .is_some_and(|tg| tg.get("enabled").and_then(Value::as_bool) != Some(false))
}

/// Whether a config makes its gateway a rescue bot: a `rescue` section,
/// or the profile named `rescue` (as the manual sets it up).
pub fn is_rescue(profile: &str, value: &Value) -> bool {
    value.get("rescue").is_some_and(Value::is_object) || profile.eq_ignore_ascii_case("rescue")
}

/// The rescue assistant's tools for a rescue gateway (its `omniclaw`
/// binary, targets and child environment); `None` for any other gateway.
pub fn rescue_tools(
    profile: &str,
    state_dir: &Path,
    config: &Config,
    value: &Value,
    program: PathBuf,
    child_env: ChildEnv,
    secrets: std::sync::Arc<dyn SecretSource>,
) -> Option<(Vec<std::sync::Arc<dyn omniclaw_agent::tool::Tool>>, String)> {
    if !is_rescue(profile, value) {
        return None;
    }
    let own = Profile::parse(profile).ok()?;
    let targets = config.rescue_targets().to_vec();
    let prompt = tools::base_prompt(&targets);
    let exec = Executor {
        program,
        own,
        targets,
        secrets,
        env: child_env,
    };
    Some((tools::rescue_tools(exec, state_dir.to_path_buf()), prompt))
}

/// The channel settings of a gateway, `Ok(None)` when telegram is off.
/// `Err` says why it cannot run (the token missing or not in the keychain,
/// webhook mode), naming the key and the fix.
pub fn settings(
    profile: &str,
    state_dir: &Path,
    config: &Config,
    value: &Value,
    store: &dyn SecretStore,
    program: PathBuf,
    child_env: ChildEnv,
) -> Result<Option<Settings>, String> {
    if !enabled(value) {
        return Ok(None);
    }
    let own = Profile::parse(profile).map_err(|e| e.to_string())?;
    let cli = match own.suffix() {
        Some(n) => format!("omniclaw --profile {n}"),
        None => "omniclaw".to_string(),
    };
    let tg = &config.channels.telegram;
    if tg.webhook_url.is_some() {
        return Err(format!(
            "channels.telegram.webhookUrl is set, but this gateway receives updates by long polling only: remove it with `{cli} config unset channels.telegram.webhookUrl`"
        ));
    }
    match tg.bot_token.as_ref() {
        None | Some(SecretRef::Keychain) => {}
        Some(SecretRef::Plain(_)) | Some(SecretRef::Env(_)) => {
            return Err(format!(
                "channels.telegram.botToken must come from the keychain: run `{cli} doctor --fix` (moves a plaintext token) or `{cli} secrets set channels.telegram.botToken`"
            ))
        }
    }
    let scope = Scope::new(own.name(), state_dir.to_path_buf());
    let token = match store.get(&scope, SecretName::TelegramBotToken) {
        Ok(Some(t)) => t,
        Ok(None) => {
            return Err(format!(
                "no Telegram bot token for profile {own} in the {}: store it with `{cli} secrets set channels.telegram.botToken` (or run `{cli} onboard`)",
                store.mode(&scope)
            ))
        }
        Err(e) => return Err(format!("cannot read the Telegram bot token of profile {own}: {e}")),
    };
    Ok(Some(Settings {
        profile: own,
        state_dir: state_dir.to_path_buf(),
        api_root: tg
            .api_root
            .clone()
            .unwrap_or_else(|| DEFAULT_API_ROOT.to_string()),
        token,
        policy: config.dm_policy(),
        allow_from: tg.allow_from.clone(),
        targets: config.rescue_targets().to_vec(),
        program,
        child_env,
        poll_timeout: POLL_TIMEOUT,
        role: if is_rescue(profile, value) {
            Role::Rescue
        } else {
            Role::Assistant
        },
        streaming: Streaming::from_config(tg),
        dm_scope: config.session.dm_scope,
        telegram: tg.clone(),
        watch: config.rescue_watch(),
    }))
}

/// Tells a Telegram user what the operator decided about their pairing
/// request (their private chat has their user id). Sent by whoever decides
/// (the CLI, the dashboard), so the user hears it at once whether or not the
/// gateway is running; Telegram keeps the message for them either way.
pub async fn tell_pairing_decision(
    settings: &Settings,
    user_id: i64,
    approved: bool,
) -> Result<(), ApiError> {
    let api = BotApi::new(&settings.api_root, &settings.token, Duration::ZERO)?;
    api.send_message(user_id, pairing_decision_text(approved), None, &[])
        .await
        .map(|_| ())
}

/// What deciding a pairing request did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairingDecision {
    /// The request as it was pending: who, their user id, the code.
    pub request: Pending,
    pub approved: bool,
    /// Whether the user was told through the bot; `Err` says why not. The
    /// decision stands either way.
    pub told: Result<(), String>,
}

/// Why a pairing request could not be decided; nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    /// The pairing store could not be read or written.
    #[error(transparent)]
    Store(#[from] StateError),
    /// No pending request has the code.
    #[error(transparent)]
    Refused(#[from] PairingError),
}

/// Approves or denies the pending pairing request `code` of the profile
/// `resolved` (its pairing store, under the store's lock), then tells the
/// user through the profile's bot, its token from `store`. `now` is seconds
/// since the Unix epoch; expired requests count as gone.
pub async fn decide_pairing(
    resolved: &Resolved,
    store: &dyn SecretStore,
    code: &PairingCode,
    approve: bool,
    now: u64,
) -> Result<PairingDecision, DecideError> {
    let pairings = PairingStore::new(&resolved.state_dir);
    let request = pairings.update(|p| {
        let r = if approve {
            p.approve(code, now)
        } else {
            p.deny(code, now)
        };
        let changed = r.is_ok();
        (r, changed)
    })??;
    let told = match pairing_settings(resolved, store) {
        Ok(settings) => match i64::try_from(request.user_id) {
            Ok(chat) => tell_pairing_decision(&settings, chat, approve)
                .await
                .map_err(|e| e.to_string()),
            Err(_) => Err(format!(
                "user id {} is not a Telegram user id",
                request.user_id
            )),
        },
        Err(why) => Err(why),
    };
    Ok(PairingDecision {
        request,
        approved: approve,
        told,
    })
}

/// The channel settings of `resolved` for telling a user, or why there are none.
fn pairing_settings(resolved: &Resolved, store: &dyn SecretStore) -> Result<Settings, String> {
    let config = resolved.display(&resolved.config_path);
    let ConfigState::Valid { loaded, .. } = profiles::read_config(&resolved.config_path) else {
        let cli = match resolved.profile.suffix() {
            Some(name) => format!("omniclaw --profile {name}"),
            None => "omniclaw".to_string(),
        };
        return Err(format!(
            "the config {config} is missing or invalid, so the bot's settings are unknown (`{cli} config validate`)"
        ));
    };
    settings(
        resolved.profile.name(),
        &resolved.state_dir,
        &loaded.config,
        loaded.doc.value(),
        store,
        default_program(),
        // Only tells a user; runs no command.
        ChildEnv::default(),
    )?
    .ok_or_else(|| format!("the Telegram channel is off in {config}"))
}

/// What a user is told when their pairing request is decided.
pub fn pairing_decision_text(approved: bool) -> &'static str {
    if approved {
        "Access approved: the operator let you in. Send /help to see what this bot does."
    } else {
        "Access denied: the operator declined your pairing request."
    }
}

/// The `omniclaw` binary: this executable when it is `omniclaw`, else the
/// `omniclaw` next to it (the desktop app ships both side by side).
pub fn default_program() -> PathBuf {
    let name = format!("omniclaw{}", std::env::consts::EXE_SUFFIX);
    match std::env::current_exe() {
        Ok(exe) if exe.file_name().and_then(|n| n.to_str()) == Some(name.as_str()) => exe,
        Ok(exe) => exe.with_file_name(&name),
        Err(_) => PathBuf::from(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use omniclaw_os::secrets::MemoryStore;

    fn check(text: &str, with_token: bool, expected: Result<bool, &str>) {
        let loaded = omniclaw_core::config::load(text).expect("valid config");
        let dir = tempfile::tempdir().expect("tempdir");
        let store = MemoryStore::default();
        if with_token {
            store
                .set(
                    &Scope::new("rescue", dir.path().to_path_buf()),
                    SecretName::TelegramBotToken,
                    "1:abc",
                )
                .expect("stored");
        }
        let got = settings(
            "rescue",
            dir.path(),
            &loaded.config,
            loaded.doc.value(),
            &store,
            PathBuf::from("omniclaw"),
            ChildEnv::default(),
        );
        match (got, expected) {
            (Ok(s), Ok(on)) => assert_eq!(s.is_some(), on, "{text}"),
            (Err(e), Err(part)) => assert!(e.contains(part), "{text}: {e}"),
            (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
        }
    }

    fn decide(
        resolved: &Resolved,
        code: &PairingCode,
        approve: bool,
    ) -> Result<PairingDecision, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime
            .block_on(decide_pairing(
                resolved,
                &MemoryStore::default(),
                code,
                approve,
                1_000,
            ))
            .map_err(|e| e.to_string())
    }

    fn code(text: &str) -> PairingCode {
        PairingCode::parse(text).expect("a code")
    }

    #[test]
    fn a_decision_stands_even_when_the_user_cannot_be_told() {
        let home = tempfile::tempdir().expect("tempdir");
        let env = omniclaw_core::env::EnvSnapshot::default()
            .with("HOME", home.path().to_str().expect("utf-8 path"));
        let resolved = omniclaw_core::paths::resolve(omniclaw_core::paths::Inputs {
            profile_flag: Some("rescue"),
            env: &env,
            cwd: None,
        })
        .expect("resolves");
        let store = PairingStore::new(&resolved.state_dir);
        for (user, text) in [(5005, "ABCDEFGH"), (6006, "HGFEDCBA")] {
            store
                .update(|p| {
                    (
                        p.request(user, &format!("@user{user}"), user as i64, 900, code(text)),
                        true,
                    )
                })
                .expect("request stored");
        }

        // No config: approved all the same, with the reason the user was not told.
        let approved = decide(&resolved, &code("abcd-efgh"), true).expect("approved");
        assert_eq!(
            (approved.request.user_id, approved.request.who.as_str()),
            (5005, "@user5005")
        );
        assert!(approved.approved);
        let why = approved.told.expect_err("nobody to tell through");
        assert!(
            why.contains("omniclaw --profile rescue config validate"),
            "{why}"
        );
        let after = store.load().expect("load");
        assert_eq!(after.approved, [5005]);
        assert_eq!(after.pending.len(), 1);

        // A handled code is refused and changes nothing.
        let again = decide(&resolved, &code("ABCDEFGH"), false).expect_err("handled");
        assert!(
            again.contains("no pending pairing request has the code ABCDEFGH"),
            "{again}"
        );
        assert_eq!(store.load().expect("load"), after);

        // Telegram off: denied, and the reason names the config.
        std::fs::create_dir_all(&resolved.state_dir).expect("state dir");
        std::fs::write(
            &resolved.config_path,
            "{ channels: { telegram: { enabled: false } } }",
        )
        .expect("config");
        let denied = decide(&resolved, &code("HGFEDCBA"), false).expect("denied");
        assert!(!denied.approved);
        let why = denied.told.expect_err("the channel is off");
        assert!(
            why.contains("the Telegram channel is off in ~/.omniclaw-rescue/omniclaw.json"),
            "{why}"
        );
        let last = store.load().expect("load");
        assert!(last.pending.is_empty());
        assert_eq!(last.approved, [5005]);
    }

    #[test]
    fn telegram_runs_only_when_configured_and_keyed() {
        check("{}", false, Ok(false));
        check(
            "{ channels: { telegram: { enabled: false } } }",
            true,
            Ok(false),
        );
        check("{ channels: { telegram: {} } }", true, Ok(true));
        check(
            "{ channels: { telegram: { botToken: { source: 'keychain' } } } }",
            true,
            Ok(true),
        );
        check(
            "{ channels: { telegram: {} } }",
            false,
            Err("secrets set channels.telegram.botToken"),
        );
        check(
            "{ channels: { telegram: { botToken: '1:plain' } } }",
            true,
            Err("must come from the keychain"),
        );
        check(
            "{ channels: { telegram: { webhookUrl: 'https://x.example/hook' } } }",
            true,
            Err("long polling only"),
        );
    }
}
