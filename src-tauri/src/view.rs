//! What the app shows, gathered in one pass: the tray's [`Snapshot`] and the
//! dashboard's data ([`Dashboard`], the IPC DTO sent to the web UI),
//! pending Telegram pairing requests included (expired ones left out).
//!
//! Reads files (profiles, configs, lock files, log files) but never changes
//! anything; callers run it off the UI thread and compare the result with
//! the last one, so an unchanged view costs no redraw.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use omniclaw_core::paths::tilde;
use omniclaw_core::ports::{self, Conflict, Plan, Surface};
use omniclaw_core::profile::Profile;
use omniclaw_core::rescue::PAIRING_TTL_SECS;
use omniclaw_core::tray::{self, Action, Gateway, Owner, PairingRequest, Snapshot, Status};
use omniclaw_gateway::GatewayState;
use omniclaw_os::lock::{self, InstanceLock};
use omniclaw_os::profiles::{self, ConfigState, ProfileRecord};
use omniclaw_os::rescue::PairingStore;
use omniclaw_os::{logs, runtime};
use serde::Serialize;

use crate::desktop::{self, Desktop};

/// Lines of a gateway's log file shown on its card.
const LOG_LINES: usize = 20;
/// Bytes read from the end of a log file to find those lines.
const LOG_TAIL_BYTES: u64 = 16 * 1024;

/// Everything the tray and the dashboard show.
#[derive(Debug, Clone, PartialEq)]
pub struct View {
    pub snapshot: Snapshot,
    pub dashboard: Dashboard,
}

/// The dashboard's data, as the web UI receives it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Dashboard {
    pub version: &'static str,
    /// "About OmniClaw": the app's, the CLI's and each gateway's version,
    /// the tray's lines.
    pub about: Vec<String>,
    /// `none` (no gateway set up yet), `ok`, `warning` or `error`, like
    /// the tray icon.
    pub health: &'static str,
    pub gateways: Vec<Card>,
    /// The remote gateways (`omniclaw remote`), each marked remote.
    pub remotes: Vec<crate::remotes::Card>,
    /// Every surface of every profile and OpenClaw install.
    pub port_map: Vec<PortRow>,
    pub conflicts: Vec<ConflictView>,
    pub settings: SettingsView,
    /// Problems of the app itself (unreadable settings, profiles not listed).
    pub problems: Vec<String>,
}

/// One gateway's card.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Card {
    pub name: String,
    /// Its valid config names no model: the card offers the assistant wizard.
    pub no_model: bool,
    /// `stopped`, `starting`, `running` or `failed`.
    pub state: &'static str,
    /// `embedded`, `service` or `external` while running.
    pub owner: Option<&'static str>,
    /// The tray's wording: `running · embedded`, `failed: reason`.
    pub status: String,
    pub reason: Option<String>,
    pub base_port: Option<u16>,
    /// Where it really listens while running (flags may have moved it).
    pub listening: Option<String>,
    pub ports: Vec<PortRow>,
    pub conflicts: Vec<String>,
    pub last_error: Option<String>,
    pub config_problem: Option<String>,
    pub log: Vec<String>,
    pub actions: Vec<ActionView>,
    pub service_installed: bool,
    pub start_with_app: bool,
    pub config_path: String,
    pub state_dir: String,
    /// Telegram users waiting for access to its bot, oldest first.
    pub pairing: Vec<PairingView>,
    /// Where `{"source": "keychain"}` secrets of this profile live:
    /// `keychain` or `0600 file`.
    pub secrets: &'static str,
    /// The running gateway refused an edit and serves its last good config.
    pub refused: Option<RefusedView>,
    /// A last good config exists to roll back to.
    pub can_roll_back: bool,
    /// Its config asks for a gateway token ("Copy token" is offered).
    pub token: bool,
    /// The keychain refused (or could not be reached) when this app last
    /// needed one of its secrets: "keep them in a private file" is offered.
    pub keychain_problem: Option<String>,
    /// A folder that could not be opened, with its path to copy.
    pub unopened: Option<UnopenedView>,
    /// What the CLI said when it installed or uninstalled its service.
    pub service_notes: Vec<String>,
    /// Its assistant while it runs and the app is connected to it.
    pub assistant: Option<AssistantView>,
    /// Commands its assistant waits to run until someone answers.
    pub approvals: Vec<crate::link::Approval>,
    /// The app is connected to it: the chat can reach it.
    pub chat: bool,
}

/// A running gateway's assistant on its card.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AssistantView {
    /// `provider/model`, when one is configured.
    pub model: Option<String>,
    pub problem: Option<String>,
    pub active_runs: u64,
    pub spend: Option<SpendView>,
}

/// Today's spend against the daily cap.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpendView {
    /// `Today: 1,234 tokens · $0.0123 of $2.00`.
    pub label: String,
    pub tokens: u64,
    pub usd: f64,
    /// `budget.dailyUsd`, when set.
    pub cap: Option<f64>,
    /// Share of the cap spent, 0–100 (100 also past it).
    pub percent: u8,
    /// `under`, `near` (80 % or more) or `reached`.
    pub level: &'static str,
}

impl SpendView {
    fn of(spend: &omniclaw_core::tray::Spend) -> SpendView {
        use omniclaw_core::tray::BudgetLevel;
        let percent = match spend.cap {
            Some(0) => 100,
            Some(cap) => (u128::from(spend.usd) * 100 / u128::from(cap)).min(100) as u8,
            None => 0,
        };
        SpendView {
            label: spend.label(),
            tokens: spend.tokens,
            usd: spend.usd as f64 / 1e6,
            cap: spend.cap.map(|c| c as f64 / 1e6),
            percent,
            level: match spend.level() {
                BudgetLevel::Under => "under",
                BudgetLevel::Near => "near",
                BudgetLevel::Reached => "reached",
            },
        }
    }
}

/// An edit the running gateway refused: the keys and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RefusedView {
    pub keys: Vec<String>,
    pub reason: String,
}

/// A folder no file manager opened.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnopenedView {
    /// `logs` or `config`.
    pub folder: &'static str,
    pub path: String,
    pub why: String,
}

/// A pending pairing request on a card, with Approve / Deny buttons.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PairingView {
    pub code: String,
    pub who: String,
    pub user_id: u64,
    pub age_mins: u64,
    /// Whole minutes until the code expires (0 in its last minute).
    pub expires_in_mins: u64,
}

/// A button on a card: enabled exactly when the tray item is.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionView {
    pub action: &'static str,
    pub label: &'static str,
    pub enabled: bool,
    /// Why it is disabled.
    pub reason: Option<String>,
}

/// One surface in the port map.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PortRow {
    pub instance: String,
    pub foreign: bool,
    pub surface: String,
    pub range: String,
    pub start: u16,
    pub end: u16,
    pub bind: String,
    pub key: String,
    /// Part of a port conflict.
    pub conflict: bool,
}

/// One isolation problem with its fix.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConflictView {
    /// `Port conflict: rescue ↔ main`.
    pub label: String,
    /// The audit's full sentence.
    pub text: String,
    /// What to do, with the command where there is one.
    pub fix: String,
    /// The one-click fix, when it is a port move of a profile of ours.
    pub apply: Option<FixView>,
}

/// A port move the dashboard can apply.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FixView {
    pub profile: String,
    pub key: String,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SettingsView {
    pub autostart: bool,
    pub start_with_app: Vec<String>,
    pub file: String,
}

/// Gathers the view; `autostart` is whether the login entry exists.
pub fn gather(desktop: &Desktop, autostart: bool) -> View {
    let env = desktop.env();
    let mut problems = desktop.app_problems();
    let inventory = desktop::resolve(env, None)
        .map_err(|e| e.to_string())
        .and_then(|current| profiles::load(&current, env).map_err(|e| e.to_string()));
    let inventory = match inventory {
        Ok(inventory) => Some(inventory),
        Err(e) => {
            problems.push(format!("cannot list the profiles: {e}"));
            None
        }
    };
    // A profile in `gateway.mode: "remote"` runs no gateway here: it is
    // shown among the remote gateways, dialled at `gateway.remote.url`.
    let (configured, records): (Vec<&ProfileRecord>, Vec<&ProfileRecord>) = inventory
        .iter()
        .flat_map(|inv| inv.profiles.iter())
        .filter(|p| p.set_up)
        .partition(|p| omniclaw_gateway::profile::as_remote(p).is_some());
    desktop.remotes.set_configured(
        configured
            .iter()
            .filter_map(|p| omniclaw_gateway::profile::as_remote(p))
            .collect(),
    );
    let instances = inventory
        .as_ref()
        .map(|inv| inv.instances(env))
        .unwrap_or_default();
    let plan = ports::plan(&instances);
    let settings = desktop.settings();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());

    let mut gateways = Vec::new();
    let mut cards = Vec::new();
    for record in records {
        let mut gateway = gateway_of(desktop, record, &plan);
        match pairing_requests(&record.state_dir, now) {
            Ok(requests) => gateway.pairing = requests,
            Err(e) => problems.push(format!(
                "cannot list the pairing requests of {}: {e}",
                gateway.name
            )),
        }
        cards.push(card(
            desktop,
            record,
            &gateway,
            &plan,
            &settings.start_with_app,
        ));
        gateways.push(gateway);
    }
    if let Some(problem) = desktop.remotes.problem() {
        problems.push(problem);
    }
    let snapshot = Snapshot {
        gateways,
        conflicts: plan.conflicts.clone(),
        autostart,
        versions: desktop.versions(),
        remotes: crate::remotes::snapshot(desktop),
    };
    let menu = tray::menu(&snapshot);
    let dashboard = Dashboard {
        version: env!("CARGO_PKG_VERSION"),
        about: tray::about_lines(&snapshot),
        health: match menu.icon {
            tray::Icon::Idle => "none",
            tray::Icon::Ok => "ok",
            tray::Icon::Warning => "warning",
            tray::Icon::Error => "error",
        },
        gateways: cards,
        remotes: crate::remotes::cards(desktop, &snapshot.remotes),
        port_map: plan
            .rows
            .iter()
            .map(|row| port_row(row, &plan.conflicts))
            .collect(),
        conflicts: conflict_views(&plan, &instances, &snapshot, HeldNow::default()),
        settings: SettingsView {
            autostart,
            start_with_app: settings.start_with_app.iter().cloned().collect(),
            file: tilde(&crate::settings::path(desktop.home()), desktop.home()),
        },
        problems,
    };
    View {
        snapshot,
        dashboard,
    }
}

fn gateway_of(desktop: &Desktop, record: &ProfileRecord, plan: &Plan) -> Gateway {
    let name = record.label.clone();
    let base_port = plan
        .rows
        .iter()
        .find(|r| r.instance == name && r.surface == Surface::Gateway)
        .map(|r| r.range.start());
    let config_problem = match &record.config {
        ConfigState::Invalid { errors, .. } => Some(format!("config invalid: {errors}")),
        ConfigState::Unreadable(message) => Some(message.clone()),
        ConfigState::Missing | ConfigState::Valid { .. } => None,
    };
    let status = status_of(desktop, &name, &record.state_dir);
    let refused_edit = match (&status, desktop.refused(&name)) {
        (Status::Running(_), Some(why)) => refused(record, &why).keys,
        _ => Vec::new(),
    };
    let running = matches!(status, Status::Running(_));
    let spend = running
        .then(|| desktop.links.assistant(&name).and_then(|a| a.spend))
        .flatten();
    let approvals = if running {
        desktop
            .links
            .approvals(&name)
            .iter()
            .map(|a| a.wait())
            .collect()
    } else {
        Vec::new()
    };
    let rescue = record
        .config
        .value()
        .is_some_and(|v| omniclaw_channels::telegram::is_rescue(record.profile.name(), v))
        || record.profile.name().eq_ignore_ascii_case("rescue");
    // The running rescue's watch file, as `status` reads it; a stopped
    // one's is stale.
    let watch = if rescue && running {
        omniclaw_os::rescue::read_watched(&record.state_dir)
    } else {
        Vec::new()
    };
    let service_installed = service_installed(desktop.home(), &record.profile);
    let service_drift = if service_installed {
        desktop.service_drift(&name)
    } else {
        Vec::new()
    };
    Gateway {
        version: running.then(|| desktop.links.version(&name)).flatten(),
        service_drift,
        status,
        base_port,
        service_installed,
        config_problem,
        pairing: Vec::new(),
        refused_edit,
        spend,
        approvals,
        rescue,
        watch,
        name,
    }
}

/// The refused edit of a running gateway whose `reload.lastError` is
/// `why`: the keys from the config's own errors when the file does not
/// validate, else the keys the file changes against the last good config;
/// the reason without the refusal's header line.
fn refused(record: &ProfileRecord, why: &str) -> RefusedView {
    let mut keys: Vec<String> = Vec::new();
    let mut push = |k: &str| {
        if !k.is_empty() && !keys.iter().any(|have| have == k) {
            keys.push(k.to_string());
        }
    };
    match &record.config {
        ConfigState::Invalid { errors, .. } => {
            for d in errors.diagnostics() {
                push(&d.path);
            }
        }
        ConfigState::Valid { loaded, .. } => {
            let good = omniclaw_os::edit::last_good_path(&record.config_path);
            let good = profiles::read_text(&good)
                .ok()
                .flatten()
                .and_then(|t| omniclaw_core::config::parse(&t).ok())
                .map(|d| d.into_value());
            if let Some(good) = good {
                for change in omniclaw_core::reload::classify(&good, loaded.doc.value()).changes {
                    push(&change.path);
                }
            }
        }
        ConfigState::Missing | ConfigState::Unreadable(_) => {}
    }
    if keys.is_empty() {
        keys.push("its config".to_string());
    }
    // The first line only says the edit was refused (and names the file
    // with its full path); the lines after it say why.
    let mut lines: Vec<&str> = why.lines().collect();
    if lines.len() > 1 && lines[0].trim_end().ends_with(':') {
        lines.remove(0);
    }
    RefusedView {
        keys,
        reason: lines.join("\n"),
    }
}

/// The requests waiting in a profile's pairing store at `now`, expired ones
/// left out (the store is only read: the bot and the decisions prune it).
fn pairing_requests(state_dir: &Path, now: u64) -> Result<Vec<PairingRequest>, String> {
    let mut pairings = PairingStore::new(state_dir)
        .load()
        .map_err(|e| e.to_string())?;
    pairings.prune(now);
    Ok(pairings
        .pending
        .into_iter()
        .map(|p| PairingRequest {
            age_mins: now.saturating_sub(p.created) / 60,
            code: p.code,
            user_id: p.user_id,
            who: p.who,
        })
        .collect())
}

/// Who runs `name`: this app's host first, then the instance lock.
fn status_of(desktop: &Desktop, name: &str, state_dir: &Path) -> Status {
    match desktop.host().state(name) {
        GatewayState::Starting => return Status::Starting,
        GatewayState::Running => return Status::Running(Owner::Embedded),
        GatewayState::Failed { reason } => return Status::Failed { reason },
        GatewayState::Stopped => {}
    }
    match InstanceLock::probe(&state_dir.join("gateway.lock")) {
        Ok(Some(holder)) => match holder.owner {
            Some(lock::Owner::Service) => Status::Running(Owner::Service),
            Some(lock::Owner::Embedded) if holder.pid == std::process::id() => {
                Status::Running(Owner::Embedded)
            }
            _ => Status::Running(Owner::External),
        },
        _ => match desktop.start_failure(name) {
            Some(reason) => Status::Failed { reason },
            None => Status::Stopped,
        },
    }
}

/// Whether the platform's service registration for `profile` exists.
fn service_installed(home: &Path, profile: &Profile) -> bool {
    let names = omniclaw_core::profile::ServiceNames::for_profile(profile);
    if cfg!(target_os = "linux") {
        home.join(".config/systemd/user")
            .join(&names.systemd_unit)
            .is_file()
    } else if cfg!(target_os = "macos") {
        home.join("Library/LaunchAgents")
            .join(format!("{}.plist", names.launchd_label))
            .is_file()
    } else {
        false
    }
}

fn card(
    desktop: &Desktop,
    record: &ProfileRecord,
    gateway: &Gateway,
    plan: &Plan,
    start_with_app: &std::collections::BTreeSet<String>,
) -> Card {
    let name = &gateway.name;
    let running = matches!(gateway.status, Status::Running(_));
    let (state, owner, reason) = match &gateway.status {
        Status::Stopped => ("stopped", None, None),
        Status::Starting => ("starting", None, None),
        Status::Running(owner) => ("running", Some(owner.as_str()), None),
        Status::Failed { reason } => ("failed", None, Some(reason.clone())),
    };
    let listening = matches!(gateway.status, Status::Running(_))
        .then(|| runtime::read_live(&record.state_dir))
        .flatten()
        .map(|info| format!("{}:{}", info.bind, info.port));
    let service_action = if gateway.service_installed {
        Action::UninstallService
    } else {
        Action::InstallService
    };
    let actions = [Action::Start, Action::Stop, Action::Restart, service_action]
        .into_iter()
        .map(|action| {
            let route = tray::route(gateway, action);
            ActionView {
                action: action.as_str(),
                label: action.label(),
                enabled: route.is_ok(),
                reason: route.err().map(|e| e.to_string()),
            }
        })
        .collect();
    let mut log = desktop.activity(name);
    log.extend(log_tail(&record.state_dir.join("logs")));
    let refused = match (&gateway.status, desktop.refused(name)) {
        (Status::Running(_), Some(why)) => Some(refused(record, &why)),
        _ => None,
    };
    let token = match &record.config {
        ConfigState::Valid { loaded, .. } => {
            loaded.config.auth_mode() == omniclaw_core::config::AuthMode::Token
        }
        ConfigState::Missing => true,
        ConfigState::Invalid { .. } | ConfigState::Unreadable(_) => false,
    };
    let no_model = matches!(
        &record.config,
        ConfigState::Valid { loaded, .. }
            if omniclaw_onboard::configured_model(&loaded.config).is_none()
    );
    Card {
        name: name.clone(),
        no_model,
        state,
        owner,
        status: gateway.status.label(),
        reason,
        base_port: gateway.base_port,
        listening,
        ports: plan
            .rows
            .iter()
            .filter(|r| &r.instance == name)
            .map(|r| port_row(r, &plan.conflicts))
            .collect(),
        conflicts: plan
            .conflicts
            .iter()
            .filter(|c| {
                let (a, b) = c.instances();
                a == name || b == name
            })
            .map(|c| c.to_string())
            .collect(),
        last_error: desktop.last_error(name),
        // A refusal says the same, with the keys and what to do.
        config_problem: gateway.config_problem.clone().filter(|_| refused.is_none()),
        log,
        actions,
        service_installed: gateway.service_installed,
        start_with_app: start_with_app.contains(name),
        config_path: tilde(&record.config_path, desktop.home()),
        state_dir: tilde(&record.state_dir, desktop.home()),
        pairing: gateway
            .pairing
            .iter()
            .map(|p| PairingView {
                code: p.code.to_string(),
                who: p.who.clone(),
                user_id: p.user_id,
                age_mins: p.age_mins,
                expires_in_mins: (PAIRING_TTL_SECS / 60).saturating_sub(p.age_mins + 1),
            })
            .collect(),
        secrets: if omniclaw_os::secrets::uses_file(&record.state_dir) {
            "0600 file"
        } else {
            "keychain"
        },
        can_roll_back: omniclaw_os::edit::last_good_path(&record.config_path).is_file(),
        refused,
        token,
        keychain_problem: desktop.keychain_problem(name),
        unopened: desktop.unopened(name).map(|u| UnopenedView {
            folder: u.folder.as_str(),
            path: u.path,
            why: u.why,
        }),
        service_notes: desktop.service_notes(name),
        assistant: running
            .then(|| desktop.links.assistant(name))
            .flatten()
            .map(|a| AssistantView {
                model: a.model,
                problem: a.problem,
                active_runs: a.active_runs,
                spend: a.spend.as_ref().map(SpendView::of),
            }),
        approvals: if running {
            let mut list = desktop.links.approvals(name);
            for a in &mut list {
                // Where the command would run, under `~` like every path shown.
                a.cwd = tilde(std::path::Path::new(&a.cwd), desktop.home());
            }
            list
        } else {
            Vec::new()
        },
        chat: running && desktop.links.connected(name),
    }
}

fn port_row(row: &ports::Row, conflicts: &[Conflict]) -> PortRow {
    let conflict = conflicts.iter().any(|c| match c {
        Conflict::PortOverlap {
            a,
            a_surface,
            b,
            b_surface,
            ..
        } => {
            (a == &row.instance && a_surface == &row.surface)
                || (b == &row.instance && b_surface == &row.surface)
        }
        _ => false,
    });
    PortRow {
        instance: row.instance.clone(),
        foreign: row.foreign,
        surface: row.surface.to_string(),
        range: row.range.to_string(),
        start: row.range.start(),
        end: row.range.end(),
        bind: row.bind.to_string(),
        key: row.key.to_string(),
        conflict,
    }
}

/// Ports some process listens on, read from the OS tables once, and only
/// when a fix needs them (the view is gathered every second).
#[derive(Default)]
struct HeldNow(std::cell::OnceCell<std::collections::HashSet<u16>>);

impl HeldNow {
    #[cfg(test)]
    fn of(ports: &[u16]) -> Self {
        let held = Self::default();
        let _ = held.0.set(ports.iter().copied().collect());
        held
    }

    fn contains(&self, port: u16) -> bool {
        self.0
            .get_or_init(|| omniclaw_os::portowner::listening().into_keys().collect())
            .contains(&port)
    }
}

fn conflict_views(
    plan: &Plan,
    instances: &[ports::Instance],
    snapshot: &Snapshot,
    held: HeldNow,
) -> Vec<ConflictView> {
    plan.conflicts
        .iter()
        .map(|c| {
            let (a, b) = c.instances();
            let apply = match c {
                Conflict::PortOverlap {
                    b,
                    b_key,
                    suggestion: Some(port),
                    ..
                } if snapshot.gateways.iter().any(|g| &g.name == b) => Some(FixView {
                    profile: b.clone(),
                    key: b_key.to_string(),
                    port: clear_of_held(plan, instances, b, b_key, *port, &held),
                }),
                _ => None,
            };
            ConflictView {
                label: format!("{}: {b} ↔ {a}", tray::conflict_kind(c)),
                text: c.to_string(),
                fix: c.fix(),
                apply,
            }
        })
        .collect()
}

/// The plan's suggested value for `key` of `name` moved on, when another
/// process holds one of the ports it would place right now, to the next
/// place clear of every other instance and every held port: the edit would
/// refuse a held one, and a one-click fix that fails is no fix.
fn clear_of_held(
    plan: &Plan,
    instances: &[ports::Instance],
    name: &str,
    key: &ports::PortKey,
    suggestion: u16,
    held: &HeldNow,
) -> u16 {
    ports::free_place(plan, instances, name, key, suggestion, |p| held.contains(p))
        .unwrap_or(suggestion)
}

/// The last lines of the newest log file in a profile's logs folder,
/// rendered as `omniclaw logs` renders them (`time LEVEL message
/// key=value`). Only the end of the file is read: the view is gathered
/// every second.
fn log_tail(dir: &Path) -> Vec<String> {
    let Some(file) = logs::files(dir).pop() else {
        return Vec::new();
    };
    let Ok(mut f) = fs::File::open(&file) else {
        return Vec::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let from = len.saturating_sub(LOG_TAIL_BYTES);
    if f.seek(SeekFrom::Start(from)).is_err() {
        return Vec::new();
    }
    let mut bytes = Vec::new();
    if f.read_to_end(&mut bytes).is_err() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<&str> = text.lines().collect();
    if from > 0 && !lines.is_empty() {
        // Read from the middle of a line: that part is not a whole line.
        lines.remove(0);
    }
    lines[lines.len().saturating_sub(LOG_LINES)..]
        .iter()
        .map(|l| logs::render(l))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(content: &str, expected: &[&str]) {
        let dir = tempfile::tempdir().expect("temp dir");
        fs::write(dir.path().join("gateway.2026-01-31.log"), content).expect("write");
        assert_eq!(log_tail(dir.path()), expected, "{content:?}");
    }

    #[test]
    fn a_one_click_fix_of_another_key_skips_ports_held_right_now() {
        use omniclaw_core::ports::{Instance, PortInputs};
        let main = Instance::new("main", PortInputs::with_base(30_000));
        let mut rescue = Instance::new("rescue", PortInputs::with_base(31_000));
        rescue.ports.canvas_port = Some(30_004);
        let instances = vec![main.clone(), rescue.clone()];
        let plan = ports::plan(&instances);
        let snapshot = Snapshot {
            gateways: vec![Gateway::new("main", 30_000), Gateway::new("rescue", 31_000)],
            conflicts: plan.conflicts.clone(),
            ..Snapshot::default()
        };
        let fix = |held: &[u16]| -> u16 {
            let views = conflict_views(&plan, &instances, &snapshot, HeldNow::of(held));
            let fix = views
                .iter()
                .find_map(|c| c.apply.as_ref())
                .expect("the overlap has a one-click fix");
            assert_eq!(
                (fix.profile.as_str(), fix.key.as_str()),
                ("rescue", "canvasHost.port")
            );
            fix.port
        };
        let clear = |port: u16| {
            let mut moved = rescue.clone();
            moved.ports.canvas_port = Some(port);
            ports::plan(&[main.clone(), moved]).conflicts.is_empty()
        };
        let suggested = fix(&[]);
        assert!(clear(suggested), "{suggested}");
        let moved = fix(&[suggested]);
        assert!(
            moved != suggested && clear(moved),
            "{moved} after {suggested}"
        );
    }

    #[test]
    fn a_one_click_port_fix_skips_ports_held_right_now() {
        use omniclaw_core::ports::{Instance, PortInputs};
        let main = 30_000;
        let instances = vec![
            Instance::new("main", PortInputs::with_base(main)),
            Instance::new("rescue", PortInputs::with_base(main + 20)),
        ];
        let plan = ports::plan(&instances);
        let snapshot = Snapshot {
            gateways: vec![
                Gateway::new("main", main),
                Gateway::new("rescue", main + 20),
            ],
            conflicts: plan.conflicts.clone(),
            ..Snapshot::default()
        };
        let fixes = |held: &[u16]| -> Vec<u16> {
            conflict_views(&plan, &instances, &snapshot, HeldNow::of(held))
                .iter()
                .filter_map(|c| c.apply.as_ref())
                .inspect(|f| {
                    assert_eq!(
                        (f.profile.as_str(), f.key.as_str()),
                        ("rescue", "gateway.port")
                    )
                })
                .map(|f| f.port)
                .collect()
        };
        let free = fixes(&[]);
        assert!(
            !free.is_empty(),
            "the overlap has a fix: {:?}",
            plan.conflicts
        );
        let suggested = free[0];
        assert!(free.iter().all(|p| *p == suggested));
        assert!(suggested.abs_diff(main) > 110, "clear of main: {suggested}");
        // Another process listens on the moved canvas port: the fix goes on
        // to a base whose every port is free.
        let taken = suggested + 4;
        let moved = fixes(&[taken])[0];
        assert!(moved > suggested, "{moved} after {suggested}");
        let allocs = ports::allocate(&PortInputs::with_base(moved)).expect("allocates");
        assert!(
            allocs.iter().all(|a| !a.range.contains(taken)),
            "{moved} spans {taken}"
        );
        let rescue = Instance::new("rescue", PortInputs::with_base(moved));
        assert!(
            ports::plan(&[instances[0].clone(), rescue])
                .conflicts
                .is_empty(),
            "{moved} is clear of main"
        );
    }

    #[test]
    fn pairing_requests_leave_out_expired_ones() {
        use omniclaw_core::rescue::PairingCode;
        let dir = tempfile::tempdir().expect("temp dir");
        assert_eq!(pairing_requests(dir.path(), 10_000), Ok(Vec::new()));
        let store = PairingStore::new(dir.path());
        for (user, code, created) in [(5, "ABCDEFGH", 10_000), (6, "HGFEDCBA", 10_000 + 1_900)] {
            let code = PairingCode::parse(code).expect("code");
            store
                .update(|p| {
                    (
                        p.request(user, &format!("@u{user}"), 1, created, code),
                        true,
                    )
                })
                .expect("stored");
        }
        let at = |now: u64| -> Vec<(u64, u64)> {
            pairing_requests(dir.path(), now)
                .expect("readable")
                .iter()
                .map(|r| (r.user_id, r.age_mins))
                .collect()
        };
        assert_eq!(at(10_000 + 1_900), [(5, 31), (6, 0)]);
        assert_eq!(at(10_000 + 3_600), [(6, 28)]);
        std::fs::write(omniclaw_os::rescue::pairing_path(dir.path()), "{").expect("damage");
        let err = pairing_requests(dir.path(), 0).expect_err("damaged");
        assert!(err.contains("pairing.json is damaged"), "{err}");
    }

    #[test]
    fn log_tail_keeps_the_last_lines() {
        check("", &[]);
        check("one\ntwo\n", &["one", "two"]);
        // JSON lines read as `omniclaw logs` shows them.
        let json = r#"{"timestamp":"2026-01-31T10:00:00Z","level":"INFO","message":"gateway serving","target":"g","port":18789}"#;
        let shown = logs::render(json);
        assert!(!shown.contains("{\""), "{shown}");
        check(&format!("{json}\n"), &[shown.as_str()]);
        let many: String = (1..=30).map(|n| format!("line {n}\n")).collect();
        let last: Vec<String> = (11..=30).map(|n| format!("line {n}")).collect();
        let last: Vec<&str> = last.iter().map(String::as_str).collect();
        check(&many, &last);
        assert!(log_tail(Path::new("/nonexistent/logs")).is_empty());
    }
}
