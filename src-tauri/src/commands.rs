//! The commands the dashboard calls (`window.__TAURI__.core.invoke`).
//!
//! Thin: each parses its arguments into core types and hands over to
//! [`Desktop`]; errors come back as the message to show. Every command that
//! changes something wakes the refresher, which pushes the new state to the
//! dashboard as an event, so the UI never polls.

use std::sync::Arc;

use omniclaw_core::heal::StopBy;
use omniclaw_core::tray::Action;
use serde::Serialize;
use tauri::{AppHandle, State, Wry};

use crate::desktop::Desktop;
use crate::refresh;
use crate::tray::{self, Folder};
use crate::view::Dashboard;
use crate::window::PendingPage;

type Shared<'a> = State<'a, Arc<Desktop>>;

/// The dashboard's data right now.
#[tauri::command]
pub async fn dashboard(app: AppHandle<Wry>, desktop: Shared<'_>) -> Result<Dashboard, String> {
    refresh::current(&app, desktop.inner())
        .await
        .map(|view| view.dashboard)
        .ok_or_else(|| "could not read the gateways' state".to_string())
}

/// Start, stop, restart, install or uninstall the service of gateway `name`.
#[tauri::command]
pub async fn gateway_action(
    desktop: Shared<'_>,
    name: String,
    action: String,
) -> Result<(), String> {
    let action = Action::parse(&action).ok_or_else(|| {
        format!("{action:?} is not a gateway action: use start, stop, restart, install-service or uninstall-service")
    })?;
    desktop
        .act(&name, action, Some(StopBy::Dashboard))
        .await
        .map_err(|e| e.to_string())
}

/// The newest lines of remote gateway `name`'s log (`logs.tail`).
#[tauri::command]
pub async fn remote_logs(desktop: Shared<'_>, name: String) -> Result<Vec<String>, String> {
    crate::remotes::logs(desktop.inner(), &name).await
}

/// Connects to remote gateway `name` anew: its summary, or why not.
#[tauri::command]
pub async fn remote_test(desktop: Shared<'_>, name: String) -> Result<String, String> {
    crate::remotes::test(desktop.inner(), &name).await
}

/// The remote whose log the tray's "Logs…" asked for, once.
#[tauri::command]
pub fn remote_logs_target(desktop: Shared<'_>) -> Option<String> {
    desktop.remotes.take_logs_target()
}

/// Turns "Start at login" on or off.
#[tauri::command]
pub fn set_autostart(app: AppHandle<Wry>, desktop: Shared<'_>, on: bool) -> Result<(), String> {
    let result = tray::set_autostart(&app, on);
    desktop.changed.notify_one();
    result
}

/// Marks gateway `name` to start (or not) when the app starts.
#[tauri::command]
pub fn set_start_with_app(desktop: Shared<'_>, name: String, on: bool) -> Result<(), String> {
    desktop
        .set_start_with_app(&name, on)
        .map_err(|e| e.to_string())
}

/// Applies a port conflict's suggested fix: `key` of `profile` set to `port`.
#[tauri::command]
pub fn apply_fix(
    desktop: Shared<'_>,
    profile: String,
    key: String,
    port: u16,
) -> Result<(), String> {
    desktop
        .apply_fix(&profile, &key, port)
        .map_err(|e| e.to_string())
}

/// What the dashboard shows after a pairing decision.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PairingOutcome {
    pub who: String,
    pub user_id: u64,
    pub approved: bool,
    /// Why the user was not told through the bot, when they were not (the
    /// decision stands).
    pub not_told: Option<String>,
}

/// Approves (`approve`) or denies the pending pairing request `code` of
/// gateway `name`'s bot, and tells the user through the bot.
#[tauri::command]
pub async fn decide_pairing(
    desktop: Shared<'_>,
    name: String,
    code: String,
    approve: bool,
) -> Result<PairingOutcome, String> {
    let decision = desktop
        .decide_pairing(&name, &code, approve)
        .await
        .map_err(|e| e.to_string())?;
    Ok(PairingOutcome {
        who: decision.request.who,
        user_id: decision.request.user_id,
        approved: decision.approved,
        not_told: decision.told.err(),
    })
}

/// Opens gateway `name`'s `logs` or `config` folder. `Some(path)`: no
/// file manager opened it; the card shows the path to copy.
#[tauri::command]
pub async fn open_folder(
    desktop: Shared<'_>,
    name: String,
    folder: String,
) -> Result<Option<String>, String> {
    let folder = match folder.as_str() {
        "logs" => Folder::Logs,
        "config" => Folder::Config,
        other => return Err(format!("{other:?} is not a folder: use logs or config")),
    };
    tray::try_open_folder(&desktop, &name, folder).await
}

/// Forgets a note on gateway `name`'s card (`folder`, `service`).
#[tauri::command]
pub fn dismiss(desktop: Shared<'_>, name: String, what: String) {
    desktop.dismiss(&name, &what);
}

/// "Copy token": gateway `name`'s token onto the clipboard, from the
/// Rust side; the page never sees it. Off the main thread: the keychain
/// may take its time to answer.
#[tauri::command]
pub async fn copy_token(desktop: Shared<'_>, name: String) -> Result<(), String> {
    off_main("copying the token", &desktop, move |d| {
        d.copy_token(&name).map_err(|e| e.to_string())
    })
    .await
}

/// Runs `f` on the blocking pool: keychain reads and file writes never
/// hold the main thread (a sync command would run on it).
async fn off_main<T: Send + 'static>(
    what: &str,
    desktop: &Shared<'_>,
    f: impl FnOnce(&Desktop) -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    let desktop = Arc::clone(desktop.inner());
    tauri::async_runtime::spawn_blocking(move || f(&desktop))
        .await
        .map_err(|e| format!("{what} did not finish: {e}"))?
}

/// Copies a folder path shown on a card.
#[tauri::command]
pub fn copy_path(desktop: Shared<'_>, path: String) -> Result<(), String> {
    desktop.copy_text(path)
}

/// "Roll back": restores gateway `name`'s last good config.
#[tauri::command]
pub async fn roll_back(desktop: Shared<'_>, name: String) -> Result<String, String> {
    off_main("rolling back", &desktop, move |d| {
        d.roll_back(&name).map_err(|e| e.to_string())
    })
    .await
}

/// "Keep this profile's secrets in a private file" on a card.
#[tauri::command]
pub async fn use_secrets_file(desktop: Shared<'_>, name: String) -> Result<String, String> {
    desktop
        .use_secrets_file(&name)
        .await
        .map_err(|e| e.to_string())
}

/// Creates a profile with a collision-free base port (`omniclaw [--profile
/// NAME] setup`); an empty name is the default profile.
#[tauri::command]
pub async fn setup_profile(desktop: Shared<'_>, name: String) -> Result<String, String> {
    let name = name.trim();
    let mut args = Vec::new();
    if !name.is_empty() && name != "default" {
        args.extend(["--profile".to_string(), name.to_string()]);
    }
    args.push("setup".into());
    let output = desktop.run_cli(args).await?;
    desktop.changed.notify_one();
    Ok(output.trim().to_string())
}

/// The page a freshly opened dashboard should show (asked once, at load).
#[tauri::command]
pub fn initial_page(pending: State<'_, PendingPage>) -> Option<String> {
    pending.take()
}

/// "Raise the cap" on a card: `budget.dailyUsd` of gateway `name` set to
/// `usd` (validated edit; a running gateway applies it without a restart).
#[tauri::command]
pub async fn set_daily_cap(desktop: Shared<'_>, name: String, usd: f64) -> Result<String, String> {
    off_main("setting the daily cap", &desktop, move |d| {
        d.set_daily_cap(&name, usd).map_err(|e| e.to_string())
    })
    .await
}
