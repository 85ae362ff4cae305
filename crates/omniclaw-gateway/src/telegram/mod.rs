//! The Telegram channel: a rescue bot on the Bot API.
//!
//! - [`api`] — the Bot API methods over `frankenstein`, with a configurable
//!   root (`channels.telegram.apiRoot`) and errors sorted by what to do.
//! - [`channel`] — the long-polling loop with its persisted offset, access
//!   control (`dmPolicy`), confirmations, the audit log and its state.
//! - [`exec`] — rescue commands carried out through the `omniclaw` binary.
//!
//! [`settings`] decides from a validated config whether a gateway runs the
//! channel and with what. The bot token is read from the secret store only
//! (the keychain, or the profile's secrets file); a plaintext or
//! `${VAR}` token is refused with the command that moves it. Nothing here
//! writes the token into a reply, a log line, a state file or an error.

pub mod api;
pub mod channel;
pub mod exec;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use omniclaw_core::config::{Config, SecretRef};
use omniclaw_core::profile::Profile;
use omniclaw_os::secrets::{Scope, SecretName, SecretStore};

pub use api::{ApiError, BotApi, Me, DEFAULT_API_ROOT};
pub use channel::{Channel, ChannelState, Settings};
pub use exec::Executor;
/// The Bot API types callers read updates with (onboarding waits for `/start`).
pub use frankenstein::types::ChatType;
pub use frankenstein::updates::UpdateContent;

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
        poll_timeout: POLL_TIMEOUT,
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

/// What a user is told when their pairing request is decided.
pub fn pairing_decision_text(approved: bool) -> &'static str {
    if approved {
        "Access approved: the operator let you in. Send /help to see the rescue commands."
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
        );
        match (got, expected) {
            (Ok(s), Ok(on)) => assert_eq!(s.is_some(), on, "{text}"),
            (Err(e), Err(part)) => assert!(e.contains(part), "{text}: {e}"),
            (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
        }
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
