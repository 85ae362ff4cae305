//! The dashboard's rescue-bot wizard: one command per step of
//! `omniclaw_onboard` (the same steps `omniclaw onboard` takes).
//!
//! Nothing is written before [`onboard_finish`]: until then the checked
//! answers — the bot token among them — live only in this process's
//! memory ([`Wizard`]), and [`onboard_cancel`] forgets them. Long waits
//! (`getMe`, the operator's `/start`, health) are async and run off the UI
//! thread; the `/start` wait ends early on [`onboard_stop_wait`] or
//! [`onboard_cancel`]. Finishing reports each stage as a
//! [`PROGRESS_EVENT`] so the page can show progress: token stored, config
//! written, gateway started, health green.

use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use serde_json::json;
use tauri::{AppHandle, Emitter, State, Wry};
use tokio::sync::oneshot;

use omniclaw_channels::telegram::DEFAULT_API_ROOT;
use omniclaw_core::paths::Resolved;
use omniclaw_core::profile::Profile;
use omniclaw_core::tray::Action;
use omniclaw_gateway::GatewayState;
use omniclaw_onboard as onboard;
use omniclaw_onboard::{Answers, PortPlan, TelegramAnswers};
use omniclaw_os::secrets::Routed;

use crate::desktop::{self, ActionError, Desktop};
use crate::{tray, window};

/// Event carrying one finishing stage: `{step, state, detail}`.
pub const PROGRESS_EVENT: &str = "omniclaw://onboarding";

type Shared<'a> = State<'a, Arc<Desktop>>;

/// The bot the wizard checked: kept in memory until finish or cancel.
struct Draft {
    profile: String,
    token: String,
    username: String,
    api_root: Option<String>,
}

/// The wizard's state between steps. Managed by Tauri.
#[derive(Default)]
pub struct Wizard {
    draft: Mutex<Option<Draft>>,
    /// Ends the running `/start` wait.
    waiting: Mutex<Option<oneshot::Sender<()>>>,
}

fn guard<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Both mutexes hold plain data; a panic elsewhere cannot tear it.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Wizard {
    fn stop_waiting(&self) {
        if let Some(stop) = guard(&self.waiting).take() {
            let _ = stop.send(());
        }
    }
}

/// Where secrets go: a profile's secrets file when it has one (or when
/// `file` asks for one), else the OS keychain (what the rest of the app
/// reads them from).
pub(crate) fn store_for(file: bool) -> Routed {
    Routed::system(file)
}

fn store() -> Routed {
    store_for(false)
}

/// A step that failed, as the page shows it: the message and what kind of
/// help the page offers with it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepFailure {
    message: String,
    /// `offline` (the Bot API server field is offered), `keychain` (the
    /// private file is offered) or `other`.
    kind: &'static str,
}

impl StepFailure {
    fn other(message: impl Into<String>) -> StepFailure {
        StepFailure {
            message: message.into(),
            kind: "other",
        }
    }
}

impl From<String> for StepFailure {
    fn from(message: String) -> StepFailure {
        StepFailure::other(message)
    }
}

/// Why a wizard's write failed. Nothing was written (write undoes its
/// steps): a keychain that would not keep the secrets is answered with the
/// profile's private file, one click away, instead of a command to type —
/// saying why and where that file is.
pub(crate) fn write_failure(
    e: &onboard::OnboardError,
    file: bool,
    resolved: &Resolved,
    name: &str,
) -> StepFailure {
    let keychain = matches!(e, onboard::OnboardError::Store { .. })
        && !file
        && !omniclaw_os::secrets::uses_file(&resolved.state_dir);
    if !keychain {
        return StepFailure::other(e.to_string());
    }
    StepFailure {
        message: format!(
            "The keychain did not keep the secrets of profile {name}: it refused them (it is locked, or it has no default collection to keep them in) or cannot be reached. Nothing was written. They can go into the profile's private file {} instead, readable by you only (0600).",
            resolved.display(&resolved.state_dir.join(omniclaw_os::secrets::FILE_NAME))
        ),
        kind: "keychain",
    }
}

/// The words the wizard uses for an onboarding error: no error chain, no
/// config key, for the two failures a newcomer meets first.
fn step_failure(e: onboard::OnboardError) -> StepFailure {
    match e {
        onboard::OnboardError::Offline { what, .. } => StepFailure {
            message: omniclaw_core::advice::telegram_unreachable(
                &what,
                "enter your own Bot API server below",
            ),
            kind: "offline",
        },
        other => StepFailure::other(other.to_string()),
    }
}

fn resolved(desktop: &Desktop, name: &str) -> Result<omniclaw_core::paths::Resolved, String> {
    desktop::resolve(desktop.env(), Some(name)).map_err(|e| e.to_string())
}

async fn blocking<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    tauri::async_runtime::spawn_blocking(f)
        .await
        .map_err(|e| format!("{what} did not finish: {e}"))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PortRowView {
    surface: String,
    range: String,
    key: String,
    conflict: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConflictView {
    text: String,
    fix: String,
}

/// Step 1 as the page shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanView {
    profile: String,
    exists: bool,
    base: u16,
    suggested: Option<u16>,
    rows: Vec<PortRowView>,
    conflicts: Vec<ConflictView>,
    config_path: String,
    others: Vec<String>,
    api_root: Option<String>,
}

impl From<PortPlan> for PlanView {
    fn from(p: PortPlan) -> PlanView {
        PlanView {
            profile: p.profile,
            exists: p.exists,
            base: p.base,
            suggested: p.suggested,
            rows: p
                .rows
                .into_iter()
                .map(|r| PortRowView {
                    surface: r.surface,
                    range: r.range,
                    key: r.key,
                    conflict: r.conflict,
                })
                .collect(),
            conflicts: p
                .conflicts
                .into_iter()
                .map(|c| ConflictView {
                    text: c.text,
                    fix: c.fix,
                })
                .collect(),
            config_path: p.config_path.display().to_string(),
            others: p.others,
            api_root: p.api_root,
        }
    }
}

/// Step 1: the ports profile `name` would use with base `port` (default:
/// its configured one, else a free slot), and every conflict.
#[tauri::command]
pub async fn onboard_plan(
    desktop: Shared<'_>,
    name: String,
    port: Option<u16>,
) -> Result<PlanView, String> {
    let resolved = resolved(&desktop, &name)?;
    let shown = resolved.display(&resolved.config_path);
    let env = desktop.env().clone();
    let mut view = blocking("planning the ports", move || {
        onboard::plan_ports(&resolved, &env, port)
    })
    .await?
    .map(PlanView::from)
    .map_err(|e| e.to_string())?;
    view.config_path = shown;
    Ok(view)
}

/// Step 2: checks the token (shape, not used by another profile, `getMe`)
/// and keeps it in memory for the next steps. Returns the bot's username.
#[tauri::command]
pub async fn onboard_check_token(
    desktop: Shared<'_>,
    wizard: State<'_, Wizard>,
    name: String,
    token: String,
    api_root: Option<String>,
) -> Result<String, StepFailure> {
    let resolved = resolved(&desktop, &name)?;
    let env = desktop.env().clone();
    let token = token.trim().to_string();
    let checked = token.clone();
    let configured = blocking("checking the token", move || {
        onboard::check_token_unused(&resolved, &env, &store(), &checked)?;
        Ok::<_, onboard::OnboardError>(
            onboard::plan_ports(&resolved, &env, None)
                .ok()
                .and_then(|p| p.api_root),
        )
    })
    .await?
    .map_err(|e| StepFailure::other(e.to_string()))?;
    let api_root = api_root
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty())
        .or(configured);
    let root = api_root.as_deref().unwrap_or(DEFAULT_API_ROOT);
    let username = onboard::get_me(&token, root).await.map_err(step_failure)?;
    *guard(&wizard.draft) = Some(Draft {
        profile: name,
        token,
        username: username.clone(),
        api_root,
    });
    Ok(username)
}

/// Who wrote to the bot.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OperatorView {
    id: u64,
    who: String,
}

/// Step 3: waits for the operator's `/start` to the checked bot; `null`
/// when nobody wrote within five minutes.
#[tauri::command]
pub async fn onboard_wait_operator(
    wizard: State<'_, Wizard>,
) -> Result<Option<OperatorView>, String> {
    let (token, root) = {
        let draft = guard(&wizard.draft);
        let d = draft.as_ref().ok_or("check the bot token first (step 2)")?;
        (
            d.token.clone(),
            d.api_root
                .clone()
                .unwrap_or_else(|| DEFAULT_API_ROOT.to_string()),
        )
    };
    wizard.stop_waiting();
    let (stop, stopped) = oneshot::channel::<()>();
    *guard(&wizard.waiting) = Some(stop);
    let result = onboard::wait_for_operator(&token, &root, onboard::PAIR_WAIT, async {
        let _ = stopped.await;
    })
    .await;
    result
        .map(|o| {
            o.map(|o| OperatorView {
                id: o.id,
                who: o.who,
            })
        })
        .map_err(|e| e.to_string())
}

/// Ends a running `/start` wait (it then fails with "cancelled").
#[tauri::command]
pub fn onboard_stop_wait(wizard: State<'_, Wizard>) {
    wizard.stop_waiting();
}

/// Forgets every answer. Nothing was written, so nothing is left behind.
#[tauri::command]
pub fn onboard_cancel(wizard: State<'_, Wizard>) {
    forget(&wizard);
}

/// Ends any wait and forgets the checked bot.
pub(crate) fn forget(wizard: &Wizard) {
    wizard.stop_waiting();
    guard(&wizard.draft).take();
}

/// The bot checked for profile `name`, as answers for a main bot: no
/// operator yet, so chats pair with a code.
pub(crate) fn telegram_draft(wizard: &Wizard, name: &str) -> Option<TelegramAnswers> {
    let draft = guard(&wizard.draft);
    let d = draft.as_ref().filter(|d| d.profile == name)?;
    Some(TelegramAnswers {
        token: d.token.clone(),
        username: d.username.clone(),
        api_root: d.api_root.clone(),
        allow_from: Vec::new(),
        targets: Vec::new(),
        watch: false,
        watch_rollback: false,
    })
}

/// What finishing asks for.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FinishArgs {
    name: String,
    port: Option<u16>,
    allow_from: Vec<u64>,
    targets: Vec<String>,
    /// The rescue's watch may roll a target back (`"rollback"` in
    /// `rescue.watch.actions`).
    #[serde(default)]
    watch_rollback: bool,
    install_service: bool,
    start_at_login: bool,
    start_with_app: bool,
    /// Keep the profile's secrets in its 0600 file instead of the keychain
    /// (offered when the keychain refused them).
    #[serde(default)]
    secrets_file: bool,
}

/// The result of a green finish.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FinishView {
    profile: String,
    port: u16,
    bot: Option<String>,
    store: String,
}

fn progress(app: &AppHandle<Wry>, step: &str, state: &str, detail: &str) {
    let _ = app.emit_to(
        window::MAIN,
        PROGRESS_EVENT,
        json!({"step": step, "state": state, "detail": detail}),
    );
}

/// Step 5: writes everything (token into the secret store, config, marker),
/// starts the gateway — in the app, or as a service when asked — and waits
/// until its health is green and its bot polls. Each stage is reported as
/// a [`PROGRESS_EVENT`]; a failure names the stage, the reason and the fix.
#[tauri::command]
pub async fn onboard_finish(
    app: AppHandle<Wry>,
    desktop: Shared<'_>,
    wizard: State<'_, Wizard>,
    args: FinishArgs,
) -> Result<FinishView, StepFailure> {
    let name = args.name.clone();
    let resolved = resolved(&desktop, &name)?;
    let targets = args
        .targets
        .iter()
        .map(|t| Profile::parse(t).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let telegram = {
        let draft = guard(&wizard.draft);
        let d = draft
            .as_ref()
            .filter(|d| d.profile == name)
            .ok_or_else(|| format!("check the bot token of profile {name} first (step 2)"))?;
        TelegramAnswers {
            token: d.token.clone(),
            username: d.username.clone(),
            api_root: d.api_root.clone(),
            allow_from: args.allow_from.clone(),
            targets,
            // The rescue bot the wizard sets up watches what it looks
            // after: the targets ticked, or every other profile.
            watch: true,
            watch_rollback: args.watch_rollback,
        }
    };
    let answers = Answers {
        port: args.port,
        telegram: Some(telegram),
        model: None,
    };

    progress(&app, "write", "running", "");
    let env = desktop.env().clone();
    let for_write = resolved.clone();
    let file = args.secrets_file;
    let written = blocking("writing the profile", move || {
        onboard::write(&for_write, &env, &store_for(file), &answers)
    })
    .await?
    .map_err(|e| {
        let failure = write_failure(&e, file, &resolved, &name);
        let said = match failure.kind {
            "keychain" => "the keychain did not keep the secrets",
            _ => failure.message.as_str(),
        };
        progress(&app, "write", "failed", said);
        failure
    })?;
    progress(
        &app,
        "write",
        "done",
        &format!(
            "token in the {}, config written to {}",
            written.store,
            resolved.display(&resolved.config_path)
        ),
    );
    desktop.changed.notify_one();

    progress(&app, "start", "running", "");
    let started = start(desktop.inner(), &name, args.install_service).await;
    if let Err(message) = started {
        progress(&app, "start", "failed", &message);
        return Err(message.into());
    }
    progress(
        &app,
        "start",
        "done",
        if args.install_service {
            "running as a service"
        } else {
            "running in the app"
        },
    );

    progress(&app, "health", "running", "");
    let env = desktop.env().clone();
    let for_endpoint = resolved.clone();
    let endpoint = blocking("reading the gateway's address", move || {
        onboard::endpoint(&for_endpoint, &env, &store())
    })
    .await?
    .inspect_err(|m| progress(&app, "health", "failed", m))?;
    let healthy = onboard::wait_healthy(&endpoint, onboard::HEALTH_WAIT)
        .await
        .map_err(|e| {
            let message = e.to_string();
            progress(&app, "health", "failed", &message);
            message
        })?;
    progress(
        &app,
        "health",
        "done",
        &format!(
            "the gateway answers on port {}{}",
            endpoint.port,
            healthy
                .bot
                .as_ref()
                .map_or(String::new(), |b| format!(" and {b} polls"))
        ),
    );

    let mut extras = Vec::new();
    if args.start_with_app {
        if let Err(e) = desktop.set_start_with_app(&name, true) {
            extras.push(e.to_string());
        }
    }
    if args.start_at_login {
        if let Err(e) = tray::set_autostart(&app, true) {
            extras.push(e);
        }
    }
    // Done: the token is in the store and the config refers to it, so the
    // wizard forgets its copy. (Kept until now so a failed start or health
    // check can be fixed — another port — and finished again.)
    guard(&wizard.draft).take();
    desktop.changed.notify_one();
    if !extras.is_empty() {
        return Err(format!("the rescue bot runs, but: {}", extras.join("; ")).into());
    }
    Ok(FinishView {
        profile: name,
        port: written.base,
        bot: healthy.bot,
        store: written.store,
    })
}

/// Starts `name` through the app's own start path: embedded, or installed
/// and started as a service. A gateway already running in the app is
/// restarted so it reads the new config.
pub(crate) async fn start(desktop: &Arc<Desktop>, name: &str, service: bool) -> Result<(), String> {
    if service {
        if desktop.host().state(name) == GatewayState::Running {
            desktop
                .act(name, Action::Stop, None)
                .await
                .map_err(|e| e.to_string())?;
        }
        desktop
            .act(name, Action::InstallService, None)
            .await
            .map_err(|e| e.to_string())?;
    }
    let action = if desktop.host().state(name) == GatewayState::Running {
        Action::Restart
    } else {
        Action::Start
    };
    match desktop.act(name, action, None).await {
        // Installing a service starts it: a refused start means it runs.
        Err(ActionError::Refused(_)) if service => Ok(()),
        other => other.map_err(|e| e.to_string()),
    }
}
