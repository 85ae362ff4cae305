//! The tray menu as a pure model: `menu(&Snapshot) -> Menu`.
//!
//! The desktop shell gathers what it knows about every gateway (its state,
//! who runs it, its base port, whether a service is installed) and the
//! isolation audit into a [`Snapshot`]; this module decides every label,
//! every enabled flag, the icon, which actions go through the in-process
//! host and which through the service manager ([`route`]), and which
//! changes deserve a desktop notification ([`notices`]). Pending Telegram
//! pairing requests (`dmPolicy: pairing`) are listed with Approve / Deny
//! items and told once each. The shell only renders the result and carries
//! out clicks.
//!
//! This module must never do IO or know about any GUI toolkit: menu item ids
//! are the [`ItemId`] enum, turned into strings only at the shell's edge.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use crate::ports::Conflict;
use crate::rescue::PairingCode;

/// Who runs a gateway that is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// This desktop app, in-process.
    Embedded,
    /// The platform's service manager (systemd, launchd, Task Scheduler).
    Service,
    /// Someone else: `omniclaw gateway` in a terminal, or an unknown holder.
    External,
}

impl Owner {
    pub fn as_str(self) -> &'static str {
        match self {
            Owner::Embedded => "embedded",
            Owner::Service => "service",
            Owner::External => "external",
        }
    }
}

/// Where a gateway is, as the tray shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Stopped,
    /// Being started by this app.
    Starting,
    Running(Owner),
    /// The last start or run of this app's gateway failed.
    Failed {
        reason: String,
    },
}

impl Status {
    /// `stopped`, `starting`, `running · embedded`, `failed: reason`.
    pub fn label(&self) -> String {
        match self {
            Status::Stopped => "stopped".to_string(),
            Status::Starting => "starting".to_string(),
            Status::Running(owner) => format!("running · {}", owner.as_str()),
            Status::Failed { reason } => format!("failed: {}", first_line(reason, REASON_CHARS)),
        }
    }
}

/// One gateway profile as the shell sees it right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gateway {
    /// The profile's name (`main`, `rescue`, `default`).
    pub name: String,
    /// Its base port, when its config says (or implies) one.
    pub base_port: Option<u16>,
    pub status: Status,
    /// Whether a service registration exists for this profile.
    pub service_installed: bool,
    /// Why its config cannot start a gateway (invalid, unreadable), if so.
    pub config_problem: Option<String>,
    /// Telegram users waiting for access to its bot, oldest first.
    pub pairing: Vec<PairingRequest>,
    /// The config keys of an edit the running gateway refused (it serves
    /// its last good config meanwhile); empty when it refused none. An
    /// edit whose keys are unknown is `["its config"]`.
    pub refused_edit: Vec<String>,
    /// Today's tokens and spend of its assistant, while it runs and the
    /// app can read them.
    pub spend: Option<Spend>,
    /// Commands its assistant waits to run until an operator answers,
    /// oldest first.
    pub approvals: Vec<ApprovalWait>,
    /// Whether it is a rescue gateway (a `rescue` section, or the profile
    /// named `rescue`): its own stop or failure is told, as nothing watches
    /// its targets meanwhile.
    pub rescue: bool,
    /// The targets a running rescue gateway watches, as its watch last
    /// recorded them; empty otherwise.
    pub watch: Vec<Watched>,
    /// The version a running gateway's `hello-ok` reports.
    pub version: Option<String>,
    /// Why its installed service differs from what `gateway install`
    /// writes now (another binary, an older unit, a changed path); empty
    /// when it fits or there is none. See [`service_update`].
    pub service_drift: Vec<String>,
}

/// A target a rescue gateway watches, as its watch last recorded it
/// (`<state dir>/rescue/watch.json`, the file `status` reads too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    pub target: String,
    /// "main — down · rescue repairing (2/3)": see
    /// [`crate::heal::Watch::summary`].
    pub summary: String,
    /// The current or last outage.
    pub incident: Option<WatchedIncident>,
}

/// One outage of a watched target, in the words of
/// [`crate::heal::Incident`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedIncident {
    /// Tells one outage from the next.
    pub opened_ms: u64,
    /// "main is down: nothing listens on port 18789".
    pub headline: String,
    /// One line per rung tried, with its result.
    pub steps: Vec<String>,
    /// How it ended; `None` while it is open.
    pub outcome: Option<Ended>,
}

/// How an outage ended, with its lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    pub recovered: bool,
    pub lines: Vec<String>,
}

/// A command an assistant wants to run, waiting for an operator's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalWait {
    /// The gateway's approval id.
    pub id: String,
    /// The exact command line.
    pub command: String,
}

/// One millionth of a US dollar: spend compares exactly.
pub type MicroUsd = u64;

/// Today's use of a gateway's assistant against its daily cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spend {
    pub tokens: u64,
    pub usd: MicroUsd,
    /// `budget.dailyUsd`, when set.
    pub cap: Option<MicroUsd>,
    /// When the day's spend starts again from zero (local midnight), ms
    /// since the epoch: it names the day.
    pub resets_at_ms: u64,
}

/// How close today's spend is to the daily cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum BudgetLevel {
    Under,
    /// 80 % or more of the cap is spent.
    Near,
    /// The cap is spent: the assistant makes no model call until it resets.
    Reached,
}

/// Share of the cap from which a budget counts as nearly spent, in percent.
pub const BUDGET_NEAR_PERCENT: u64 = 80;

impl Spend {
    pub fn level(&self) -> BudgetLevel {
        match self.cap {
            None => BudgetLevel::Under,
            Some(cap) if self.usd >= cap => BudgetLevel::Reached,
            Some(cap)
                if u128::from(self.usd) * 100
                    >= u128::from(cap) * u128::from(BUDGET_NEAR_PERCENT) =>
            {
                BudgetLevel::Near
            }
            Some(_) => BudgetLevel::Under,
        }
    }

    /// `Today: 1,234 tokens · $0.0123 of $2.00`, or `… · cap of $2.00
    /// reached`, or `… (no daily cap)`.
    pub fn label(&self) -> String {
        let spent = format!(
            "Today: {} tokens · {}",
            crate::report::thousands(self.tokens),
            usd_text(self.usd)
        );
        match self.cap {
            Some(cap) if self.level() == BudgetLevel::Reached => {
                format!("{spent} · cap of {} reached", usd_text(cap))
            }
            Some(cap) => format!("{spent} of {}", usd_text(cap)),
            None => format!("{spent} (no daily cap)"),
        }
    }
}

/// `$2.00`, `$0.05`, `$0.0123` (four places for a fraction of a cent
/// below a dollar, so small spend shows).
pub fn usd_text(micros: MicroUsd) -> String {
    let dollars = micros as f64 / 1e6;
    if micros.is_multiple_of(10_000) || micros >= 1_000_000 {
        format!("${dollars:.2}")
    } else {
        format!("${dollars:.4}")
    }
}

/// A Telegram user waiting for the operator to let them in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairingRequest {
    pub code: PairingCode,
    pub user_id: u64,
    /// `@username` or the display name.
    pub who: String,
    /// Whole minutes since the request (whole, so a view changes once a minute).
    pub age_mins: u64,
}

impl Gateway {
    /// A stopped gateway with a base port, no service and a good config.
    pub fn new(name: impl Into<String>, base_port: u16) -> Gateway {
        Gateway {
            name: name.into(),
            base_port: Some(base_port),
            status: Status::Stopped,
            service_installed: false,
            config_problem: None,
            pairing: Vec::new(),
            refused_edit: Vec::new(),
            spend: None,
            approvals: Vec::new(),
            rescue: false,
            watch: Vec::new(),
            version: None,
            service_drift: Vec::new(),
        }
    }
}

/// The CLI the app runs gateway services with, as the app found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cli {
    /// Where it is.
    pub path: String,
    /// Its `--version`, or why it could not be read.
    pub version: Result<String, String>,
}

/// The versions beside the gateways': the app's own and its CLI's.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Versions {
    /// This app's version.
    pub app: String,
    /// The CLI installed with the app; `None` when none is beside it.
    pub cli: Option<Cli>,
}

impl Versions {
    /// The CLI's version, when it was read.
    pub fn cli_version(&self) -> Option<&str> {
        self.cli.as_ref().and_then(|c| c.version.as_deref().ok())
    }
}

/// How a gateway's service is brought in step with the installed
/// `omniclaw`, and why: the fixes `gateway status --deep` and `status` name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceUpdate {
    /// The unit differs from what `gateway install` writes now:
    /// `gateway install --force` rewrites it and restarts the service.
    Reinstall { why: String },
    /// The unit fits, but the service runs another version than the CLI
    /// (the package was upgraded under it): `gateway restart`.
    Restart { running: String, cli: String },
}

impl ServiceUpdate {
    /// The `omniclaw` arguments that carry it out for profile `name`.
    pub fn args(&self, name: &str) -> Vec<String> {
        let verb: &[&str] = match self {
            ServiceUpdate::Reinstall { .. } => &["install", "--force"],
            ServiceUpdate::Restart { .. } => &["restart"],
        };
        ["--profile", name, "gateway"]
            .into_iter()
            .chain(verb.iter().copied())
            .map(str::to_string)
            .collect()
    }

    /// Why, in a line: `its service differs: …` / `runs 0.0.9, omniclaw is 0.1.0`.
    pub fn why(&self) -> String {
        match self {
            ServiceUpdate::Reinstall { why } => format!("its service differs: {why}"),
            ServiceUpdate::Restart { running, cli } => {
                format!("its service runs OmniClaw {running}, omniclaw is {cli}")
            }
        }
    }
}

/// What brings `gateway`'s service in step with the installed CLI
/// (version `cli`), if anything: a unit that drifted is reinstalled, a
/// service that runs another version than the CLI is restarted.
pub fn service_update(gateway: &Gateway, cli: Option<&str>) -> Option<ServiceUpdate> {
    if !gateway.service_installed {
        return None;
    }
    if !gateway.service_drift.is_empty() {
        return Some(ServiceUpdate::Reinstall {
            why: gateway.service_drift.join("; "),
        });
    }
    let running = gateway
        .version
        .as_deref()
        .filter(|_| gateway.status == Status::Running(Owner::Service))?;
    let cli = cli.filter(|c| *c != running)?;
    Some(ServiceUpdate::Restart {
        running: running.to_string(),
        cli: cli.to_string(),
    })
}

/// Everything the menu is built from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// In display order.
    pub gateways: Vec<Gateway>,
    /// The isolation audit's findings.
    pub conflicts: Vec<Conflict>,
    /// Whether the app starts at login.
    pub autostart: bool,
    /// The app's and its CLI's versions.
    pub versions: Versions,
    /// The remote gateways (`omniclaw remote`), after the local ones.
    pub remotes: Vec<Remote>,
}

/// A gateway on another machine, as the app sees it: never started,
/// stopped or installed from here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    pub name: String,
    pub state: RemoteState,
    /// From its `hello-ok`, once connected.
    pub version: Option<String>,
    /// `health.ok`, once read.
    pub healthy: Option<bool>,
    /// The SSH tunnel to it; `None` for a remote dialled at its URL.
    pub tunnel: Option<TunnelView>,
}

/// Whether the app is connected to a remote gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteState {
    /// Not connected yet (or again): the tunnel or the connection is on its way.
    Connecting,
    /// Connected with its stored credentials.
    Running,
    /// The last attempt failed, and why.
    Unreachable { reason: String },
}

impl RemoteState {
    pub fn word(&self) -> &'static str {
        match self {
            RemoteState::Connecting => "connecting",
            RemoteState::Running => "running",
            RemoteState::Unreachable { .. } => "unreachable",
        }
    }
}

/// The SSH tunnel of a remote as the menu shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TunnelView {
    /// `ssh` runs and its local port answers.
    Up { pid: Option<u32> },
    /// `ssh` was started; its local port does not answer yet.
    Starting,
    /// `ssh` exited (or could not start): started again after a pause.
    Reconnecting { attempt: u32, reason: String },
    /// Another process (`omniclaw remote tunnel NAME`) keeps it up.
    KeptElsewhere,
    /// Nobody can keep it up (its keep lock cannot be taken), and why.
    Failed { reason: String },
}

impl TunnelView {
    /// `tunnel up (ssh pid 4242)`, `tunnel reconnecting (attempt 2): …`.
    pub fn label(&self) -> String {
        match self {
            TunnelView::Up { pid: Some(pid) } => format!("tunnel up (ssh pid {pid})"),
            TunnelView::Up { pid: None } => "tunnel up".to_string(),
            TunnelView::Starting => "tunnel starting".to_string(),
            TunnelView::Reconnecting { attempt, reason } => format!(
                "tunnel reconnecting (attempt {attempt}): {}",
                first_line(reason, REASON_CHARS)
            ),
            TunnelView::KeptElsewhere => "tunnel kept by `omniclaw remote tunnel`".to_string(),
            TunnelView::Failed { reason } => {
                format!("tunnel failed: {}", first_line(reason, REASON_CHARS))
            }
        }
    }
}

/// A lifecycle action on one gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Start,
    Stop,
    Restart,
    InstallService,
    UninstallService,
}

impl Action {
    pub const ALL: [Action; 5] = [
        Action::Start,
        Action::Stop,
        Action::Restart,
        Action::InstallService,
        Action::UninstallService,
    ];

    /// The id fragment (`start`, `install-service`); also the IPC name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Restart => "restart",
            Action::InstallService => "install-service",
            Action::UninstallService => "uninstall-service",
        }
    }

    /// The menu label.
    pub fn label(self) -> &'static str {
        match self {
            Action::Start => "Start",
            Action::Stop => "Stop",
            Action::Restart => "Restart",
            Action::InstallService => "Install as service",
            Action::UninstallService => "Uninstall service",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// Who carries out an allowed action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The gateway host inside this app.
    Host,
    /// The platform's service manager (through `omniclaw gateway install|start|stop…`).
    ServiceManager,
}

/// Why an action makes no sense for a gateway right now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{name} is already running ({owner}): it is never started twice", owner = owner.as_str())]
    AlreadyRunning { name: String, owner: Owner },
    #[error("{name} is starting: wait until it runs or fails")]
    Busy { name: String },
    #[error("{name} is not running")]
    NotRunning { name: String },
    #[error("{name} runs outside OmniClaw (a terminal or another program): stop it where it was started")]
    NotOurs { name: String },
    #[error("{name} cannot start: {problem}; fix its config (`{command} config validate` lists the problems)")]
    ConfigProblem {
        name: String,
        problem: String,
        command: String,
    },
    #[error("{name} already has a service: uninstall it first to reinstall")]
    ServiceInstalled { name: String },
    #[error("{name} has no service to uninstall")]
    NoService { name: String },
    #[error("{name} runs inside this app: stop it here before installing it as a service")]
    RunningEmbedded { name: String },
}

/// What a restart asked through the app's control socket does to
/// `gateway`: one that is not running (stopped, or failed) is started, as
/// `systemctl restart` starts a stopped unit. A rescue's watch restarts an
/// embedded target that failed this way; the tray's Restart item stays
/// disabled for it (see [`route`]), since Start is the item a person reads.
pub fn restart_request(gateway: &Gateway) -> Action {
    match gateway.status {
        Status::Stopped | Status::Failed { .. } => Action::Start,
        Status::Starting | Status::Running(_) => Action::Restart,
    }
}

/// Decides whether `action` makes sense for `gateway` and who carries it out.
/// Menu items and dashboard buttons are enabled exactly when this is `Ok`.
pub fn route(gateway: &Gateway, action: Action) -> Result<Via, Refusal> {
    let name = gateway.name.clone();
    let config_ok = || match &gateway.config_problem {
        None => Ok(()),
        Some(problem) => Err(Refusal::ConfigProblem {
            name: name.clone(),
            problem: first_line(problem, REASON_CHARS),
            command: command_of(&name),
        }),
    };
    match action {
        Action::Start => match &gateway.status {
            Status::Running(owner) => Err(Refusal::AlreadyRunning {
                name,
                owner: *owner,
            }),
            Status::Starting => Err(Refusal::Busy { name }),
            Status::Stopped | Status::Failed { .. } => {
                config_ok()?;
                Ok(if gateway.service_installed {
                    Via::ServiceManager
                } else {
                    Via::Host
                })
            }
        },
        Action::Stop => match &gateway.status {
            Status::Running(Owner::Embedded) | Status::Starting => Ok(Via::Host),
            Status::Running(Owner::Service) => Ok(Via::ServiceManager),
            Status::Running(Owner::External) => Err(Refusal::NotOurs { name }),
            Status::Stopped | Status::Failed { .. } => Err(Refusal::NotRunning { name }),
        },
        Action::Restart => match &gateway.status {
            Status::Running(Owner::Embedded) => config_ok().map(|()| Via::Host),
            Status::Running(Owner::Service) => Ok(Via::ServiceManager),
            Status::Running(Owner::External) => Err(Refusal::NotOurs { name }),
            Status::Starting => Err(Refusal::Busy { name }),
            Status::Stopped | Status::Failed { .. } => Err(Refusal::NotRunning { name }),
        },
        Action::InstallService => {
            if gateway.service_installed {
                return Err(Refusal::ServiceInstalled { name });
            }
            match &gateway.status {
                Status::Running(Owner::Embedded) | Status::Starting => {
                    Err(Refusal::RunningEmbedded { name })
                }
                Status::Running(Owner::External) => Err(Refusal::NotOurs { name }),
                _ => config_ok().map(|()| Via::ServiceManager),
            }
        }
        Action::UninstallService => {
            if gateway.service_installed {
                Ok(Via::ServiceManager)
            } else {
                Err(Refusal::NoService { name })
            }
        }
    }
}

/// The id of a menu item; [`fmt::Display`] and [`FromStr`] give its string
/// form (`start:main`, `quit`) for toolkits that key items by string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ItemId {
    /// A gateway's submenu (its label carries state and port).
    Gateway(String),
    /// A lifecycle action on a gateway.
    GatewayAction(Action, String),
    OpenLogs(String),
    OpenConfigFolder(String),
    /// The n-th isolation warning; opens the port map.
    Warning(usize),
    /// The submenu of pending pairing requests.
    PairingRequests,
    /// The disabled line naming a pending request of a gateway's bot.
    PairingRequest(String, PairingCode),
    ApprovePairing(String, PairingCode),
    DenyPairing(String, PairingCode),
    /// The line saying which edit a running gateway refused; opens the
    /// dashboard, where its card offers "Roll back".
    RefusedEdit(String),
    /// "Chat…": the dashboard's chat with this gateway's assistant.
    Chat(String),
    /// The disabled line with today's tokens and spend.
    Spend(String),
    /// The line saying commands wait for approval; opens the chat.
    Approvals(String),
    /// The disabled line with the watch of a target (rescue, target).
    Watched(String, String),
    /// A remote gateway's submenu (its label carries "remote" and its state).
    Remote(String),
    /// "Chat…" with a remote gateway's assistant.
    RemoteChat(String),
    /// "Logs…": the remote gateway's log, read with `logs.tail`.
    RemoteLogs(String),
    /// "Test connection": connects anew and tells how it went.
    RemoteTest(String),
    /// The disabled line with the remote's SSH tunnel.
    RemoteTunnel(String),
    /// The disabled line saying why the remote is unreachable.
    RemoteProblem(String),
    /// The disabled line shown while no profile exists.
    NoGateways,
    /// "Update service": reinstall or restart a service out of step.
    UpdateService(String),
    /// The disabled line saying why a service is out of step.
    ServiceDrift(String),
    /// The disabled line with the versions side by side.
    Versions,
    /// The "About OmniClaw" submenu and its lines.
    About,
    AboutApp,
    AboutCli,
    AboutGateway(String),
    SetUpRescue,
    OpenDashboard,
    StartAtLogin,
    Quit,
}

impl fmt::Display for ItemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ItemId::Gateway(name) => write!(f, "gateway:{name}"),
            ItemId::GatewayAction(action, name) => write!(f, "{}:{name}", action.as_str()),
            ItemId::OpenLogs(name) => write!(f, "open-logs:{name}"),
            ItemId::OpenConfigFolder(name) => write!(f, "open-config-folder:{name}"),
            ItemId::RefusedEdit(name) => write!(f, "refused-edit:{name}"),
            ItemId::Chat(name) => write!(f, "chat:{name}"),
            ItemId::Spend(name) => write!(f, "spend:{name}"),
            ItemId::Approvals(name) => write!(f, "approvals:{name}"),
            ItemId::Watched(rescue, target) => write!(f, "watched:{rescue}:{target}"),
            ItemId::Remote(name) => write!(f, "remote:{name}"),
            ItemId::RemoteChat(name) => write!(f, "remote-chat:{name}"),
            ItemId::RemoteLogs(name) => write!(f, "remote-logs:{name}"),
            ItemId::RemoteTest(name) => write!(f, "remote-test:{name}"),
            ItemId::RemoteTunnel(name) => write!(f, "remote-tunnel:{name}"),
            ItemId::RemoteProblem(name) => write!(f, "remote-problem:{name}"),
            ItemId::Warning(n) => write!(f, "warning:{n}"),
            ItemId::PairingRequests => f.write_str("pairing-requests"),
            ItemId::PairingRequest(name, code) => write!(f, "pairing:{name}:{code}"),
            ItemId::ApprovePairing(name, code) => write!(f, "approve-pairing:{name}:{code}"),
            ItemId::DenyPairing(name, code) => write!(f, "deny-pairing:{name}:{code}"),
            ItemId::NoGateways => f.write_str("no-gateways"),
            ItemId::UpdateService(name) => write!(f, "update-service:{name}"),
            ItemId::ServiceDrift(name) => write!(f, "service-drift:{name}"),
            ItemId::Versions => f.write_str("versions"),
            ItemId::About => f.write_str("about"),
            ItemId::AboutApp => f.write_str("about-app"),
            ItemId::AboutCli => f.write_str("about-cli"),
            ItemId::AboutGateway(name) => write!(f, "about-gateway:{name}"),
            ItemId::SetUpRescue => f.write_str("set-up-rescue"),
            ItemId::OpenDashboard => f.write_str("open-dashboard"),
            ItemId::StartAtLogin => f.write_str("start-at-login"),
            ItemId::Quit => f.write_str("quit"),
        }
    }
}

/// A string that is not a menu item id of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a tray menu item id")]
pub struct UnknownItem(pub String);

impl FromStr for ItemId {
    type Err = UnknownItem;

    fn from_str(s: &str) -> Result<ItemId, UnknownItem> {
        let unknown = || UnknownItem(s.to_string());
        let fixed = match s {
            "no-gateways" => Some(ItemId::NoGateways),
            "pairing-requests" => Some(ItemId::PairingRequests),
            "set-up-rescue" => Some(ItemId::SetUpRescue),
            "open-dashboard" => Some(ItemId::OpenDashboard),
            "start-at-login" => Some(ItemId::StartAtLogin),
            "quit" => Some(ItemId::Quit),
            "versions" => Some(ItemId::Versions),
            "about" => Some(ItemId::About),
            "about-app" => Some(ItemId::AboutApp),
            "about-cli" => Some(ItemId::AboutCli),
            _ => None,
        };
        if let Some(id) = fixed {
            return Ok(id);
        }
        let (kind, arg) = s.split_once(':').ok_or_else(unknown)?;
        if arg.is_empty() {
            return Err(unknown());
        }
        // `<kind>:<profile>:<code>`: neither a profile name nor a code has a ':'.
        let pairing = || -> Result<(String, PairingCode), UnknownItem> {
            let (name, code) = arg.split_once(':').ok_or_else(unknown)?;
            let parsed = PairingCode::parse(code).map_err(|_| unknown())?;
            if name.is_empty() || parsed.as_str() != code {
                return Err(unknown());
            }
            Ok((name.to_string(), parsed))
        };
        let name = arg.to_string();
        Ok(match kind {
            // `watched:<rescue>:<target>`: a profile name has no ':'.
            "watched" => {
                let (rescue, target) = arg.split_once(':').ok_or_else(unknown)?;
                if rescue.is_empty() || target.is_empty() || target.contains(':') {
                    return Err(unknown());
                }
                ItemId::Watched(rescue.to_string(), target.to_string())
            }
            "pairing" => {
                let (name, code) = pairing()?;
                ItemId::PairingRequest(name, code)
            }
            "approve-pairing" => {
                let (name, code) = pairing()?;
                ItemId::ApprovePairing(name, code)
            }
            "deny-pairing" => {
                let (name, code) = pairing()?;
                ItemId::DenyPairing(name, code)
            }
            "gateway" => ItemId::Gateway(name),
            "open-logs" => ItemId::OpenLogs(name),
            "open-config-folder" => ItemId::OpenConfigFolder(name),
            "refused-edit" => ItemId::RefusedEdit(name),
            "chat" => ItemId::Chat(name),
            "spend" => ItemId::Spend(name),
            "approvals" => ItemId::Approvals(name),
            "update-service" => ItemId::UpdateService(name),
            "service-drift" => ItemId::ServiceDrift(name),
            "about-gateway" => ItemId::AboutGateway(name),
            "remote" => ItemId::Remote(name),
            "remote-chat" => ItemId::RemoteChat(name),
            "remote-logs" => ItemId::RemoteLogs(name),
            "remote-test" => ItemId::RemoteTest(name),
            "remote-tunnel" => ItemId::RemoteTunnel(name),
            "remote-problem" => ItemId::RemoteProblem(name),
            "warning" => ItemId::Warning(arg.parse().map_err(|_| unknown())?),
            other => ItemId::GatewayAction(Action::parse(other).ok_or_else(unknown)?, name),
        })
    }
}

/// One entry of the menu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Action {
        id: ItemId,
        label: String,
        enabled: bool,
    },
    Check {
        id: ItemId,
        label: String,
        checked: bool,
    },
    Submenu {
        id: ItemId,
        label: String,
        items: Vec<Item>,
    },
    Separator,
}

impl Item {
    fn action(id: ItemId, label: impl Into<String>, enabled: bool) -> Item {
        Item::Action {
            id,
            label: label.into(),
            enabled,
        }
    }

    /// The item's id; separators have none.
    pub fn id(&self) -> Option<&ItemId> {
        match self {
            Item::Action { id, .. } | Item::Check { id, .. } | Item::Submenu { id, .. } => Some(id),
            Item::Separator => None,
        }
    }
}

/// Which tray icon variant to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icon {
    /// No gateway is set up yet: nothing to call healthy.
    Idle,
    /// Everything isolated, nothing failed.
    Ok,
    /// An isolation conflict or a config that cannot start.
    Warning,
    /// A gateway failed.
    Error,
}

/// The whole tray: icon, tooltip and menu items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Menu {
    pub icon: Icon,
    pub tooltip: String,
    pub items: Vec<Item>,
}

impl Menu {
    /// The ids of every item in menu order, depth first (separators as
    /// `None`). Two menus with the same shape can be updated in place.
    pub fn shape(&self) -> Vec<Option<ItemId>> {
        fn walk(items: &[Item], out: &mut Vec<Option<ItemId>>) {
            for item in items {
                out.push(item.id().cloned());
                if let Item::Submenu { items, .. } = item {
                    walk(items, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.items, &mut out);
        out
    }
}

/// Longest failure reason shown in a menu label, in characters.
const REASON_CHARS: usize = 80;

/// Builds the tray menu for `snapshot`.
pub fn menu(snapshot: &Snapshot) -> Menu {
    let mut items = Vec::new();
    for (n, label) in warnings(&snapshot.conflicts).into_iter().enumerate() {
        items.push(Item::action(
            ItemId::Warning(n),
            format!("⚠ {label} — fix…"),
            true,
        ));
    }
    if !items.is_empty() {
        items.push(Item::Separator);
    }
    if let Some(requests) = pairing_submenu(&snapshot.gateways) {
        items.push(requests);
        items.push(Item::Separator);
    }
    for gateway in &snapshot.gateways {
        items.push(gateway_submenu(gateway, &snapshot.versions));
    }
    // What each running rescue sees of its targets, at a glance.
    for gateway in &snapshot.gateways {
        for w in &gateway.watch {
            items.push(Item::action(
                ItemId::Watched(gateway.name.clone(), w.target.clone()),
                w.summary.clone(),
                false,
            ));
        }
    }
    for remote in &snapshot.remotes {
        items.push(remote_submenu(remote));
    }
    if snapshot.gateways.is_empty() {
        items.push(Item::action(
            ItemId::NoGateways,
            "No gateways set up yet",
            false,
        ));
    }
    items.push(Item::Separator);
    items.push(Item::action(
        ItemId::SetUpRescue,
        "Set up rescue bot…",
        true,
    ));
    items.push(Item::action(ItemId::OpenDashboard, "Open dashboard", true));
    items.push(Item::Check {
        id: ItemId::StartAtLogin,
        label: "Start at login".to_string(),
        checked: snapshot.autostart,
    });
    items.push(Item::Separator);
    items.push(Item::action(
        ItemId::Versions,
        versions_label(snapshot),
        false,
    ));
    items.push(about_submenu(snapshot));
    items.push(Item::Separator);
    items.push(Item::action(ItemId::Quit, "Quit", true));
    Menu {
        icon: icon(snapshot),
        tooltip: tooltip(snapshot),
        items,
    }
}

/// `Versions: app 0.1.0 · omniclaw 0.1.0 · main 0.0.9`: the app's, the
/// CLI's and each running gateway's version side by side.
pub fn versions_label(snapshot: &Snapshot) -> String {
    let versions = &snapshot.versions;
    let mut parts = vec![format!("app {}", versions.app)];
    parts.push(match &versions.cli {
        Some(Cli { version: Ok(v), .. }) => format!("omniclaw {v}"),
        Some(Cli {
            version: Err(_), ..
        }) => "omniclaw ?".to_string(),
        None => "omniclaw not found beside the app".to_string(),
    });
    for g in &snapshot.gateways {
        if let Some(v) = g.version.as_ref().filter(|_| running(g)) {
            parts.push(format!("{} {v}", g.name));
        }
    }
    format!("Versions: {}", parts.join(" · "))
}

fn running(gateway: &Gateway) -> bool {
    matches!(gateway.status, Status::Running(_))
}

/// What "About OmniClaw" says, a line each: the app's version, the CLI
/// beside it (path and version, or that there is none), and each
/// gateway's version (from its `hello-ok` while it runs). The tray's
/// submenu and the dashboard's About show these lines.
pub fn about_lines(snapshot: &Snapshot) -> Vec<String> {
    let versions = &snapshot.versions;
    let mut lines = vec![format!("OmniClaw app {}", versions.app)];
    lines.push(match &versions.cli {
        Some(Cli {
            path,
            version: Ok(v),
        }) => format!("omniclaw CLI {v} — {path}"),
        Some(Cli {
            path,
            version: Err(e),
        }) => format!("omniclaw CLI at {path}: {}", first_line(e, REASON_CHARS)),
        None => "omniclaw CLI: not found beside the app".to_string(),
    });
    // Every gateway, so the menu keeps its shape as they start and stop.
    for g in &snapshot.gateways {
        lines.push(match g.version.as_deref().filter(|_| running(g)) {
            Some(v) => format!("Gateway {} {v} ({})", g.name, g.status.label()),
            None if running(g) => {
                format!("Gateway {}: version unknown ({})", g.name, g.status.label())
            }
            None => format!("Gateway {}: {}", g.name, g.status.label()),
        });
    }
    lines
}

/// "About OmniClaw": [`about_lines`] as disabled items.
fn about_submenu(snapshot: &Snapshot) -> Item {
    let ids = [ItemId::AboutApp, ItemId::AboutCli].into_iter().chain(
        snapshot
            .gateways
            .iter()
            .map(|g| ItemId::AboutGateway(g.name.clone())),
    );
    Item::Submenu {
        id: ItemId::About,
        label: "About OmniClaw".to_string(),
        items: ids
            .zip(about_lines(snapshot))
            .map(|(id, line)| Item::action(id, line, false))
            .collect(),
    }
}

/// ` · v0.0.9 (app 0.1.0)` for a running gateway of another version than
/// the app; empty otherwise.
fn version_gap(gateway: &Gateway, versions: &Versions) -> String {
    match gateway.version.as_deref() {
        Some(v) if running(gateway) && v != versions.app => {
            format!(" · v{v} (app {})", versions.app)
        }
        _ => String::new(),
    }
}

/// The gateway's submenu label: `main — running · embedded — port 18789`.
pub fn gateway_label(gateway: &Gateway) -> String {
    let port = match gateway.base_port {
        Some(p) => format!("port {p}"),
        None => "no port".to_string(),
    };
    let status = match (&gateway.status, &gateway.config_problem) {
        (Status::Stopped, Some(_)) => "stopped (config invalid)".to_string(),
        (status @ Status::Running(_), _) if !gateway.refused_edit.is_empty() => {
            format!("{} (edit refused)", status.label())
        }
        (status, _) => status.label(),
    };
    format!("{} — {status} — {port}", gateway.name)
}

fn gateway_submenu(gateway: &Gateway, versions: &Versions) -> Item {
    let name = &gateway.name;
    let update = service_update(gateway, versions.cli_version());
    let mut items = Vec::new();
    if let Some(update) = &update {
        items.push(Item::action(
            ItemId::ServiceDrift(name.clone()),
            format!("⚠ {}", first_line(&update.why(), REASON_CHARS)),
            false,
        ));
    }
    if let Some(waiting) = approvals_label(gateway) {
        // First: the assistant is stopped until someone answers.
        items.push(Item::action(ItemId::Approvals(name.clone()), waiting, true));
    }
    if let Some(why) = refused_label(gateway) {
        // Then the reason for the orange icon.
        items.push(Item::action(ItemId::RefusedEdit(name.clone()), why, true));
    }
    if !items.is_empty() {
        items.push(Item::Separator);
    }
    items.push(Item::action(
        ItemId::Chat(name.clone()),
        "Chat…",
        matches!(gateway.status, Status::Running(_)),
    ));
    if let Some(spend) = gateway
        .spend
        .filter(|_| matches!(gateway.status, Status::Running(_)))
    {
        items.push(Item::action(
            ItemId::Spend(name.clone()),
            spend.label(),
            false,
        ));
    }
    items.push(Item::Separator);
    items.extend(
        [Action::Start, Action::Stop, Action::Restart]
            .into_iter()
            .map(|a| {
                Item::action(
                    ItemId::GatewayAction(a, name.clone()),
                    a.label(),
                    route(gateway, a).is_ok(),
                )
            }),
    );
    items.push(Item::Separator);
    // One service item: install when there is none, uninstall when there is.
    let service = if gateway.service_installed {
        Action::UninstallService
    } else {
        Action::InstallService
    };
    if update.is_some() {
        items.push(Item::action(
            ItemId::UpdateService(name.clone()),
            "Update service",
            true,
        ));
    }
    items.push(Item::action(
        ItemId::GatewayAction(service, name.clone()),
        service.label(),
        route(gateway, service).is_ok(),
    ));
    items.push(Item::Separator);
    items.push(Item::action(
        ItemId::OpenLogs(name.clone()),
        "Open logs",
        true,
    ));
    items.push(Item::action(
        ItemId::OpenConfigFolder(name.clone()),
        "Open config folder",
        true,
    ));
    Item::Submenu {
        id: ItemId::Gateway(name.clone()),
        label: format!(
            "{}{}",
            gateway_label(gateway),
            version_gap(gateway, versions)
        ),
        items,
    }
}

/// The remote's submenu label: `far — remote · running · v0.1.0`.
pub fn remote_label(remote: &Remote) -> String {
    format!("{} — {}", remote.name, remote_status(remote))
}

/// `remote · running · v0.1.0` (`· unhealthy` when its health says so):
/// the label without the name, as the dashboard's card shows it.
pub fn remote_status(remote: &Remote) -> String {
    let mut parts = vec!["remote", remote.state.word()];
    let version = remote.version.as_ref().map(|v| format!("v{v}"));
    if let Some(v) = &version {
        parts.push(v);
    }
    if remote.healthy == Some(false) {
        parts.push("unhealthy");
    }
    parts.join(" · ")
}

/// A remote's submenu: chat, logs and a connection test, its tunnel and
/// what went wrong; nothing that starts, stops or installs it.
fn remote_submenu(remote: &Remote) -> Item {
    let name = &remote.name;
    let running = remote.state == RemoteState::Running;
    let mut items = vec![
        Item::action(ItemId::RemoteChat(name.clone()), "Chat…", running),
        Item::action(ItemId::RemoteLogs(name.clone()), "Logs…", running),
        Item::action(ItemId::RemoteTest(name.clone()), "Test connection", true),
    ];
    if let Some(tunnel) = &remote.tunnel {
        items.push(Item::Separator);
        items.push(Item::action(
            ItemId::RemoteTunnel(name.clone()),
            tunnel.label(),
            false,
        ));
    }
    if let RemoteState::Unreachable { reason } = &remote.state {
        items.push(Item::action(
            ItemId::RemoteProblem(name.clone()),
            first_line(reason, REASON_CHARS),
            false,
        ));
    }
    Item::Submenu {
        id: ItemId::Remote(name.clone()),
        label: remote_label(remote),
        items,
    }
}

/// `⚠ Edit of gateway.port refused: runs on the last good config…` for a
/// running gateway that refused an edit; `None` otherwise.
pub fn refused_label(gateway: &Gateway) -> Option<String> {
    if gateway.refused_edit.is_empty() || !matches!(gateway.status, Status::Running(_)) {
        return None;
    }
    Some(format!(
        "⚠ Edit of {} refused: runs on the last good config…",
        gateway.refused_edit.join(", ")
    ))
}

/// `⚠ 2 commands wait for approval…` while the running gateway's
/// assistant waits for an operator; `None` otherwise.
pub fn approvals_label(gateway: &Gateway) -> Option<String> {
    if !matches!(gateway.status, Status::Running(_)) {
        return None;
    }
    match gateway.approvals.len() {
        0 => None,
        1 => Some("⚠ 1 command waits for approval…".to_string()),
        n => Some(format!("⚠ {n} commands wait for approval…")),
    }
}

/// `Pairing requests (N)`: per request a line saying who, on which
/// gateway's bot and since when, then Approve and Deny; `None` when nobody
/// waits.
fn pairing_submenu(gateways: &[Gateway]) -> Option<Item> {
    let mut items = Vec::new();
    for gateway in gateways {
        for request in &gateway.pairing {
            if !items.is_empty() {
                items.push(Item::Separator);
            }
            let name = &gateway.name;
            let code = &request.code;
            let age = match request.age_mins {
                0 => "just now".to_string(),
                n => format!("{n} min ago"),
            };
            items.push(Item::action(
                ItemId::PairingRequest(name.clone(), code.clone()),
                format!(
                    "{} on {name} — user {}, {age}",
                    request.who, request.user_id
                ),
                false,
            ));
            items.push(Item::action(
                ItemId::ApprovePairing(name.clone(), code.clone()),
                format!("Approve {} ({code})", request.who),
                true,
            ));
            items.push(Item::action(
                ItemId::DenyPairing(name.clone(), code.clone()),
                format!("Deny {} ({code})", request.who),
                true,
            ));
        }
    }
    if items.is_empty() {
        return None;
    }
    Some(Item::Submenu {
        id: ItemId::PairingRequests,
        label: format!("Pairing requests ({})", pairing_count(gateways)),
        items,
    })
}

fn pairing_count(gateways: &[Gateway]) -> usize {
    gateways.iter().map(|g| g.pairing.len()).sum()
}

/// One line per clashing pair and kind, `Port conflict: rescue ↔ main`
/// (the instance the fix moves first), in audit order.
pub fn warnings(conflicts: &[Conflict]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for conflict in conflicts {
        let (a, b) = conflict.instances();
        let label = format!("{}: {b} ↔ {a}", conflict_kind(conflict));
        if seen.insert(label.clone()) {
            out.push(label);
        }
    }
    out
}

/// `Port conflict`, `Shared path`, …
pub fn conflict_kind(conflict: &Conflict) -> &'static str {
    match conflict {
        Conflict::PortOverlap { .. } => "Port conflict",
        Conflict::SharedPath { .. } => "Shared path",
        Conflict::SharedCdpUrl { .. } => "Shared browser",
        Conflict::SharedBotToken { .. } => "Shared bot token",
    }
}

/// A running gateway whose assistant spent its daily cap.
fn capped(gateway: &Gateway) -> bool {
    matches!(gateway.status, Status::Running(_))
        && gateway
            .spend
            .is_some_and(|s| s.level() == BudgetLevel::Reached)
}

fn icon(snapshot: &Snapshot) -> Icon {
    let failed = snapshot
        .gateways
        .iter()
        .any(|g| matches!(g.status, Status::Failed { .. }));
    // A remote that cannot be reached is a warning, not an error: the
    // network between may be what failed, and nothing here can fix it.
    let uneasy = !snapshot.conflicts.is_empty()
        || snapshot
            .remotes
            .iter()
            .any(|r| matches!(r.state, RemoteState::Unreachable { .. }))
        || snapshot.gateways.iter().any(|g| {
            g.config_problem.is_some()
                || refused_label(g).is_some()
                || approvals_label(g).is_some()
                || capped(g)
                || service_update(g, snapshot.versions.cli_version()).is_some()
        });
    if failed {
        Icon::Error
    } else if uneasy {
        Icon::Warning
    } else if snapshot.gateways.is_empty() && snapshot.remotes.is_empty() {
        Icon::Idle
    } else {
        Icon::Ok
    }
}

fn tooltip(snapshot: &Snapshot) -> String {
    let running = snapshot
        .gateways
        .iter()
        .filter(|g| matches!(g.status, Status::Running(_)))
        .count();
    let failed = snapshot
        .gateways
        .iter()
        .filter(|g| matches!(g.status, Status::Failed { .. }))
        .count();
    let conflicts = warnings(&snapshot.conflicts).len();
    if snapshot.gateways.is_empty() {
        return "OmniClaw — no gateways set up yet".to_string();
    }
    let mut parts = vec![format!("{running} of {} running", snapshot.gateways.len())];
    if failed > 0 {
        parts.push(format!("{failed} failed"));
    }
    for g in &snapshot.gateways {
        if refused_label(g).is_some() {
            parts.push(format!(
                "{}: edit of {} refused",
                g.name,
                g.refused_edit.join(", ")
            ));
        }
    }
    for g in &snapshot.gateways {
        if approvals_label(g).is_some() {
            parts.push(format!("{}: waiting for approval", g.name));
        }
        if capped(g) {
            parts.push(format!("{}: daily budget reached", g.name));
        }
    }
    if conflicts > 0 {
        let s = if conflicts == 1 { "" } else { "s" };
        parts.push(format!("{conflicts} conflict{s}"));
    }
    let pairing = pairing_count(&snapshot.gateways);
    if pairing > 0 {
        let s = if pairing == 1 { "" } else { "s" };
        parts.push(format!("{pairing} pairing request{s}"));
    }
    format!("OmniClaw — {}", parts.join(", "))
}

/// Something worth a desktop notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A gateway went to `failed` (or failed again for another reason).
    Failed { name: String, reason: String },
    /// A rescue gateway that ran stopped (`reason: None`) or failed: its
    /// targets go unwatched until it runs again.
    RescueDown {
        name: String,
        reason: Option<String>,
    },
    /// An isolation conflict appeared.
    Conflict { label: String },
    /// A Telegram user asked for access to gateway `name`'s bot.
    PairingRequest {
        name: String,
        who: String,
        code: PairingCode,
    },
    /// Gateway `name`'s assistant waits for an operator before it runs
    /// `command`.
    Approval {
        name: String,
        id: String,
        command: String,
    },
    /// Gateway `name`'s assistant spent 80 % of its daily cap.
    BudgetNear { name: String, spend: Spend },
    /// Gateway `name`'s assistant spent its daily cap: it stops replying.
    BudgetReached { name: String, spend: Spend },
    /// Remote gateway `name` could not be reached (told once until it
    /// answers again).
    RemoteUnreachable { name: String, reason: String },
    /// Remote gateway `name`, told unreachable, answers again.
    RemoteBack { name: String },
    /// "Test connection" of a remote gateway: its summary, or why not.
    RemoteTested {
        name: String,
        outcome: Result<String, String>,
    },
    /// Rescue gateway `rescue` found its target down ("main is down: …").
    Outage {
        rescue: String,
        target: String,
        headline: String,
    },
    /// Rescue gateway `rescue` tried a rung of its ladder on `target`.
    Repair {
        rescue: String,
        target: String,
        step: String,
    },
    /// An outage of `target` ended: recovered, or the ladder stopped.
    OutageEnded {
        rescue: String,
        target: String,
        ended: Ended,
    },
    /// "Update service" of gateway `name` ran: what the CLI said, or its
    /// error in its own words.
    ServiceUpdated {
        name: String,
        result: Result<String, String>,
    },
}

impl Notice {
    /// Notification title.
    pub fn title(&self) -> String {
        match self {
            Notice::Failed { name, .. } => format!("Gateway {name} failed"),
            Notice::RescueDown { name, reason } => match reason {
                Some(_) => format!("Rescue gateway {name} failed"),
                None => format!("Rescue gateway {name} stopped"),
            },
            Notice::Conflict { .. } => "Isolation problem".to_string(),
            Notice::PairingRequest { name, who, .. } => format!("{name}: {who} asks for access"),
            Notice::Approval { name, .. } => format!("{name}: a command waits for your approval"),
            Notice::BudgetNear { name, .. } => {
                format!("{name}: {BUDGET_NEAR_PERCENT} % of today's budget spent")
            }
            Notice::BudgetReached { name, .. } => format!("{name}: today's budget is spent"),
            Notice::RemoteUnreachable { name, .. } => {
                format!("Remote gateway {name} is unreachable")
            }
            Notice::RemoteBack { name } => format!("Remote gateway {name} answers again"),
            Notice::RemoteTested { name, outcome } => match outcome {
                Ok(_) => format!("Remote gateway {name} answers"),
                Err(_) => format!("Remote gateway {name} does not answer"),
            },
            Notice::Outage { target, .. } => format!("{target} is down"),
            Notice::Repair { rescue, target, .. } => format!("Rescue {rescue} repairs {target}"),
            Notice::OutageEnded { target, ended, .. } if ended.recovered => {
                format!("{target} recovered")
            }
            Notice::OutageEnded { rescue, target, .. } => {
                format!("Rescue {rescue} stopped repairing {target}")
            }
            Notice::ServiceUpdated { name, result } => match result {
                Ok(_) => format!("Service of {name} updated"),
                Err(_) => format!("Service of {name} not updated"),
            },
        }
    }

    /// Notification body.
    pub fn body(&self) -> String {
        match self {
            Notice::Failed { reason, .. } => first_line(reason, 200),
            Notice::RescueDown { name, reason } => {
                let why = reason
                    .as_deref()
                    .map(|r| format!("{}. ", first_line(r, 200)))
                    .unwrap_or_default();
                format!("{why}Nothing watches or repairs its targets until it runs again: start {name} from the tray or the dashboard.")
            }
            Notice::Conflict { label } => format!("{label}. Open the port map to fix it."),
            Notice::PairingRequest { name, code, .. } => format!(
                "Pairing code {code}. Approve or deny it under \"Pairing requests\" in the tray menu or on {name}'s card in the dashboard."
            ),
            Notice::Approval { name, command, .. } => format!(
                "{}. Allow or deny it in the dashboard ({name}'s card or its chat); no answer in time is a deny.",
                first_line(command, 200)
            ),
            Notice::BudgetNear { name, spend } => format!(
                "{} of {} spent today. Raise the cap on {name}'s card in the dashboard if it needs more.",
                usd_text(spend.usd),
                spend.cap.map(usd_text).unwrap_or_default()
            ),
            Notice::BudgetReached { name, spend } => format!(
                "The cap of {} is reached: {name}'s assistant makes no model call until local midnight. Raise the cap on its card in the dashboard to go on today.",
                spend.cap.map(usd_text).unwrap_or_default()
            ),
            Notice::Outage {
                rescue, headline, ..
            } => format!(
                "{}. Rescue {rescue} repairs it as rescue.watch.actions allows and tells its Telegram operators each step.",
                first_line(headline, 200)
            ),
            Notice::RemoteTested { outcome, .. } => match outcome {
                Ok(line) | Err(line) => first_line(line, 200),
            },
            Notice::RemoteUnreachable { name, reason } => format!(
                "{}. The app keeps trying; `omniclaw remote test {name}` says what it finds.",
                first_line(reason, 200)
            ),
            Notice::RemoteBack { .. } => "Connected again.".to_string(),
            Notice::Repair { step, .. } => first_line(step, 200),
            Notice::OutageEnded { ended, .. } => ended.lines.join("\n"),
            Notice::ServiceUpdated { result, .. } => match result {
                Ok(said) | Err(said) => said.clone(),
            },
        }
    }
}

/// What changed from `before` to `after` that the user should hear about:
/// each failure, a rescue gateway that stopped, each new conflict and each
/// new pairing request once, never repeated while it lasts.
pub fn notices(before: &Snapshot, after: &Snapshot) -> Vec<Notice> {
    let mut out = Vec::new();
    for gateway in &after.gateways {
        let was = before
            .gateways
            .iter()
            .find(|g| g.name == gateway.name)
            .map(|g| &g.status);
        let name = gateway.name.clone();
        match &gateway.status {
            Status::Failed { reason } => {
                let already = matches!(was, Some(Status::Failed { reason: r }) if r == reason);
                if already {
                    continue;
                }
                out.push(if gateway.rescue {
                    Notice::RescueDown {
                        name,
                        reason: Some(reason.clone()),
                    }
                } else {
                    Notice::Failed {
                        name,
                        reason: reason.clone(),
                    }
                });
            }
            Status::Stopped if gateway.rescue => {
                if matches!(was, Some(Status::Running(_))) {
                    out.push(Notice::RescueDown { name, reason: None });
                }
            }
            _ => {}
        }
    }
    for gateway in &after.gateways {
        let was = before.gateways.iter().find(|g| g.name == gateway.name);
        for now in &gateway.watch {
            let prev = was.and_then(|g| g.watch.iter().find(|w| w.target == now.target));
            out.extend(watch_notices(&gateway.name, prev, now));
        }
    }
    let old: BTreeSet<String> = warnings(&before.conflicts).into_iter().collect();
    for label in warnings(&after.conflicts) {
        if !old.contains(&label) {
            out.push(Notice::Conflict { label });
        }
    }
    let waiting: BTreeSet<(&str, &PairingCode)> = before
        .gateways
        .iter()
        .flat_map(|g| g.pairing.iter().map(move |p| (g.name.as_str(), &p.code)))
        .collect();
    for gateway in &after.gateways {
        for request in &gateway.pairing {
            if !waiting.contains(&(gateway.name.as_str(), &request.code)) {
                out.push(Notice::PairingRequest {
                    name: gateway.name.clone(),
                    who: request.who.clone(),
                    code: request.code.clone(),
                });
            }
        }
    }
    let asked: BTreeSet<(&str, &str)> = before
        .gateways
        .iter()
        .flat_map(|g| {
            g.approvals
                .iter()
                .map(move |a| (g.name.as_str(), a.id.as_str()))
        })
        .collect();
    for gateway in &after.gateways {
        for wait in &gateway.approvals {
            if !asked.contains(&(gateway.name.as_str(), wait.id.as_str())) {
                out.push(Notice::Approval {
                    name: gateway.name.clone(),
                    id: wait.id.clone(),
                    command: wait.command.clone(),
                });
            }
        }
    }
    out
}

/// What changed in the watch of one target: an outage once, each rung
/// tried once, and how it ended once. A target first seen (the app or the
/// rescue just started) with an outage going on is told it; one that
/// already ended is old news.
fn watch_notices(rescue: &str, prev: Option<&Watched>, now: &Watched) -> Vec<Notice> {
    let Some(incident) = &now.incident else {
        return Vec::new();
    };
    let outage = || Notice::Outage {
        rescue: rescue.to_string(),
        target: now.target.clone(),
        headline: incident.headline.clone(),
    };
    let Some(prev) = prev else {
        return match incident.outcome {
            None => vec![outage()],
            Some(_) => Vec::new(),
        };
    };
    let seen = prev
        .incident
        .as_ref()
        .filter(|p| p.opened_ms == incident.opened_ms);
    let mut out = Vec::new();
    if seen.is_none() {
        out.push(outage());
    }
    let told = seen.map_or(0, |p| p.steps.len());
    out.extend(incident.steps.iter().skip(told).map(|step| Notice::Repair {
        rescue: rescue.to_string(),
        target: now.target.clone(),
        step: step.clone(),
    }));
    if let Some(ended) = &incident.outcome {
        if seen.is_none_or(|p| p.outcome.is_none()) {
            out.push(Notice::OutageEnded {
                rescue: rescue.to_string(),
                target: now.target.clone(),
                ended: ended.clone(),
            });
        }
    }
    out
}

/// The budget levels told per gateway: the day (its `resets_at_ms`), the
/// cap they were told against, and the highest level told.
pub type BudgetTold = std::collections::BTreeMap<String, (u64, Option<MicroUsd>, BudgetLevel)>;

/// The budget notices due for `snapshot` given what was told already:
/// once at 80 % of the cap and once when it is spent, per gateway and
/// day; a changed cap starts over. A gateway whose spend is unknown
/// for a while (restarted, reconnecting) is not told again. Returns the
/// notices and what has been told after them.
pub fn budget_notices(told: &BudgetTold, snapshot: &Snapshot) -> (Vec<Notice>, BudgetTold) {
    let mut out = Vec::new();
    let mut next = told.clone();
    for gateway in &snapshot.gateways {
        let Some(spend) = gateway.spend else {
            continue;
        };
        let level = spend.level();
        let before = match told.get(&gateway.name) {
            Some((day, cap, level)) if *day == spend.resets_at_ms && *cap == spend.cap => *level,
            _ => BudgetLevel::Under,
        };
        if level > before {
            let name = gateway.name.clone();
            out.push(match level {
                BudgetLevel::Reached => Notice::BudgetReached { name, spend },
                _ => Notice::BudgetNear { name, spend },
            });
        }
        next.insert(
            gateway.name.clone(),
            (spend.resets_at_ms, spend.cap, level.max(before)),
        );
    }
    (out, next)
}

/// The remote gateways told unreachable, by name.
pub type RemotesTold = BTreeSet<String>;

/// The remote notices due for `snapshot` given what was told already: a
/// remote that cannot be reached is told once, however often the app
/// retries in between (its state goes back to connecting at each try),
/// and told again only after it answered; one told unreachable that
/// answers again is told so. Returns the notices and what has been told
/// after them.
pub fn remote_notices(told: &RemotesTold, snapshot: &Snapshot) -> (Vec<Notice>, RemotesTold) {
    let mut out = Vec::new();
    let mut next = RemotesTold::new();
    for remote in &snapshot.remotes {
        let name = &remote.name;
        match &remote.state {
            RemoteState::Unreachable { reason } => {
                if !told.contains(name) {
                    out.push(Notice::RemoteUnreachable {
                        name: name.clone(),
                        reason: reason.clone(),
                    });
                }
                next.insert(name.clone());
            }
            RemoteState::Running => {
                if told.contains(name) {
                    out.push(Notice::RemoteBack { name: name.clone() });
                }
            }
            RemoteState::Connecting => {
                if told.contains(name) {
                    next.insert(name.clone());
                }
            }
        }
    }
    (out, next)
}

/// The first line of `text`, cut to `max` characters with an ellipsis.
fn first_line(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or("").trim();
    if line.chars().count() <= max {
        line.to_string()
    } else {
        let cut: String = line.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

fn command_of(name: &str) -> String {
    if name == "default" {
        "omniclaw".to_string()
    } else {
        format!("omniclaw --profile {name}")
    }
}

/// A plain-text picture of the menu, one item per line, for tests and logs:
/// `[id] label` with `(disabled)` / `[x]` marks, submenus indented.
impl fmt::Display for Menu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn walk(items: &[Item], depth: usize, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            let pad = "    ".repeat(depth);
            for item in items {
                match item {
                    Item::Separator => writeln!(f, "{pad}----")?,
                    Item::Action { id, label, enabled } => {
                        let off = if *enabled { "" } else { "  (disabled)" };
                        writeln!(f, "{pad}[{id}] {label}{off}")?;
                    }
                    Item::Check { id, label, checked } => {
                        let mark = if *checked { "x" } else { " " };
                        writeln!(f, "{pad}[{id}] [{mark}] {label}")?;
                    }
                    Item::Submenu { id, label, items } => {
                        writeln!(f, "{pad}[{id}] {label} >")?;
                        walk(items, depth + 1, f)?;
                    }
                }
            }
            Ok(())
        }
        writeln!(f, "icon: {:?}", self.icon)?;
        writeln!(f, "tooltip: {}", self.tooltip)?;
        walk(&self.items, 0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{PortKey, PortRange, Surface};

    fn gw(name: &str, port: u16, status: Status) -> Gateway {
        Gateway {
            status,
            ..Gateway::new(name, port)
        }
    }

    fn port_conflict(a: &str, b: &str) -> Conflict {
        Conflict::PortOverlap {
            a: a.to_string(),
            a_surface: Surface::CdpRange,
            a_range: PortRange::new(18800, 18899).expect("range"),
            b: b.to_string(),
            b_surface: Surface::Gateway,
            b_range: PortRange::single(18809),
            b_key: PortKey::GatewayPort,
            suggestion: Some(19009),
        }
    }

    fn snapshot(gateways: Vec<Gateway>, conflicts: Vec<Conflict>, autostart: bool) -> Snapshot {
        Snapshot {
            gateways,
            conflicts,
            autostart,
            versions: versions("0.1.0", Some(Ok("0.1.0"))),
            remotes: Vec::new(),
        }
    }

    fn versions(app: &str, cli: Option<Result<&str, &str>>) -> Versions {
        Versions {
            app: app.to_string(),
            cli: cli.map(|v| Cli {
                path: "/usr/bin/omniclaw".to_string(),
                version: v.map(str::to_string).map_err(str::to_string),
            }),
        }
    }

    fn main_and_rescue(main: Status, rescue: Status) -> Snapshot {
        snapshot(
            vec![gw("main", 18789, main), gw("rescue", 19789, rescue)],
            Vec::new(),
            false,
        )
    }

    #[test]
    fn a_restart_request_starts_a_gateway_that_is_not_running() {
        let check = |status: Status, expected: Action| {
            let g = gw("main", 18789, status.clone());
            assert_eq!(restart_request(&g), expected, "{status:?}");
        };
        check(Status::Stopped, Action::Start);
        check(
            Status::Failed {
                reason: "port 18789 is in use".into(),
            },
            Action::Start,
        );
        check(Status::Running(Owner::Embedded), Action::Restart);
        check(Status::Running(Owner::Service), Action::Restart);
        check(Status::Starting, Action::Restart);
    }

    #[test]
    fn both_stopped() {
        let s = main_and_rescue(Status::Stopped, Status::Stopped);
        insta::assert_snapshot!(menu(&s).to_string());
    }

    #[test]
    fn main_embedded_rescue_starting() {
        let s = main_and_rescue(Status::Running(Owner::Embedded), Status::Starting);
        insta::assert_snapshot!(menu(&s).to_string());
    }

    #[test]
    fn service_and_external_owners() {
        let mut s = main_and_rescue(
            Status::Running(Owner::Service),
            Status::Running(Owner::External),
        );
        s.gateways[0].service_installed = true;
        s.autostart = true;
        insta::assert_snapshot!(menu(&s).to_string());
    }

    fn service_gateway(version: &str, drift: &[&str]) -> Gateway {
        Gateway {
            service_installed: true,
            version: Some(version.to_string()),
            service_drift: drift.iter().map(|d| d.to_string()).collect(),
            ..gw("main", 18789, Status::Running(Owner::Service))
        }
    }

    #[test]
    fn a_service_out_of_step_is_reinstalled_or_restarted() {
        let check = |g: Gateway, cli: Option<&str>, expected: Option<ServiceUpdate>| {
            assert_eq!(service_update(&g, cli), expected, "{g:?} cli {cli:?}");
        };
        let drifted =
            "it runs /old/omniclaw but `gateway install` would now write /usr/bin/omniclaw";
        // A unit that drifted is rewritten, whatever runs.
        check(
            service_gateway("0.1.0", &[drifted]),
            Some("0.1.0"),
            Some(ServiceUpdate::Reinstall {
                why: drifted.to_string(),
            }),
        );
        check(
            Gateway {
                status: Status::Stopped,
                ..service_gateway("0.1.0", &[drifted, "another"])
            },
            None,
            Some(ServiceUpdate::Reinstall {
                why: format!("{drifted}; another"),
            }),
        );
        // A fitting unit whose gateway runs another version is restarted.
        check(
            service_gateway("0.0.9", &[]),
            Some("0.1.0"),
            Some(ServiceUpdate::Restart {
                running: "0.0.9".into(),
                cli: "0.1.0".into(),
            }),
        );
        // In step, or nothing to compare with, or not the service running it.
        check(service_gateway("0.1.0", &[]), Some("0.1.0"), None);
        check(service_gateway("0.0.9", &[]), None, None);
        check(
            Gateway {
                status: Status::Running(Owner::External),
                ..service_gateway("0.0.9", &[])
            },
            Some("0.1.0"),
            None,
        );
        // No service: nothing to update.
        check(
            Gateway {
                service_installed: false,
                ..service_gateway("0.0.9", &[drifted])
            },
            Some("0.1.0"),
            None,
        );
    }

    #[test]
    fn an_update_runs_the_clis_fix() {
        let reinstall = ServiceUpdate::Reinstall { why: "x".into() };
        assert_eq!(
            reinstall.args("main"),
            ["--profile", "main", "gateway", "install", "--force"]
        );
        let restart = ServiceUpdate::Restart {
            running: "0.0.9".into(),
            cli: "0.1.0".into(),
        };
        assert_eq!(
            restart.args("rescue"),
            ["--profile", "rescue", "gateway", "restart"]
        );
        assert_eq!(
            restart.why(),
            "its service runs OmniClaw 0.0.9, omniclaw is 0.1.0"
        );
    }

    #[test]
    fn versions_side_by_side() {
        let mut s = main_and_rescue(Status::Running(Owner::Embedded), Status::Stopped);
        s.gateways[0].version = Some("0.1.0".into());
        // A stopped gateway's last version is not shown.
        s.gateways[1].version = Some("0.0.1".into());
        assert_eq!(
            versions_label(&s),
            "Versions: app 0.1.0 · omniclaw 0.1.0 · main 0.1.0"
        );
        s.versions = versions("0.2.0", None);
        assert_eq!(
            versions_label(&s),
            "Versions: app 0.2.0 · omniclaw not found beside the app · main 0.1.0"
        );
        s.versions = versions("0.2.0", Some(Err("it did not answer")));
        assert_eq!(
            versions_label(&s),
            "Versions: app 0.2.0 · omniclaw ? · main 0.1.0"
        );
        // The gateway's label shows its version only where it differs.
        let m = menu(&s);
        let label = |id: &ItemId| match m.items.iter().find(|i| i.id() == Some(id)) {
            Some(Item::Submenu { label, .. }) => label.clone(),
            other => panic!("{id}: {other:?}"),
        };
        assert_eq!(
            label(&ItemId::Gateway("main".into())),
            "main — running · embedded — port 18789 · v0.1.0 (app 0.2.0)"
        );
        assert_eq!(
            label(&ItemId::Gateway("rescue".into())),
            "rescue — stopped — port 19789"
        );
    }

    #[test]
    fn a_service_out_of_step_offers_its_update() {
        let drifted = service_gateway(
            "0.1.0",
            &["it runs /home/u/old/omniclaw but `gateway install` would now write /usr/bin/omniclaw"],
        );
        let old = Gateway {
            name: "rescue".into(),
            base_port: Some(19789),
            ..service_gateway("0.0.9", &[])
        };
        let mut s = snapshot(vec![drifted, old], Vec::new(), false);
        s.versions = versions("0.1.0", Some(Ok("0.1.0")));
        let m = menu(&s);
        assert_eq!(m.icon, Icon::Warning);
        insta::assert_snapshot!(m.to_string());
    }

    #[test]
    fn failed_gateway_and_port_conflict() {
        let mut s = main_and_rescue(
            Status::Running(Owner::Embedded),
            Status::Failed {
                reason: "the gateway port 18809 is in use by pid 4242 (node)\nmore detail".into(),
            },
        );
        s.conflicts = vec![
            port_conflict("main", "rescue"),
            port_conflict("main", "rescue"),
        ];
        insta::assert_snapshot!(menu(&s).to_string());
    }

    #[test]
    fn invalid_config_and_no_port() {
        let mut s = main_and_rescue(Status::Stopped, Status::Stopped);
        s.gateways[1].config_problem = Some("gateway.port: expected an integer (3:13)".into());
        s.gateways[1].base_port = None;
        insta::assert_snapshot!(menu(&s).to_string());
    }

    fn request(code: &str, user_id: u64, age_mins: u64) -> PairingRequest {
        PairingRequest {
            code: PairingCode::parse(code).expect("a code"),
            user_id,
            who: format!("@user{user_id}"),
            age_mins,
        }
    }

    /// `rescue` running embedded with `requests` waiting on its bot.
    fn rescue_with(requests: Vec<PairingRequest>) -> Snapshot {
        let mut s = main_and_rescue(Status::Stopped, Status::Running(Owner::Embedded));
        s.gateways[1].pairing = requests;
        s
    }

    #[test]
    fn one_pairing_request() {
        let s = rescue_with(vec![request("K7M2P9QX", 5005, 0)]);
        insta::assert_snapshot!(menu(&s).to_string());
    }

    #[test]
    fn pairing_requests_of_two_bots_beside_a_conflict() {
        let mut s = rescue_with(vec![
            request("K7M2P9QX", 5005, 12),
            request("ABCDEFGH", 6006, 1),
        ]);
        s.gateways[0].pairing = vec![request("HGFEDCBA", 7007, 59)];
        s.conflicts.push(port_conflict("main", "rescue"));
        insta::assert_snapshot!(menu(&s).to_string());
    }

    #[test]
    fn a_refused_edit_says_why_the_icon_is_orange() {
        let mut s = main_and_rescue(Status::Running(Owner::Embedded), Status::Stopped);
        s.gateways[0].refused_edit = vec!["gateway.port".into()];
        insta::assert_snapshot!(menu(&s).to_string());
        // A stopped gateway serves nothing: its refusal is history.
        let mut stopped = main_and_rescue(Status::Stopped, Status::Stopped);
        stopped.gateways[0].refused_edit = vec!["gateway.port".into()];
        assert_eq!(menu(&stopped).icon, Icon::Ok);
        assert!(!menu(&stopped).to_string().contains("refused"));
    }

    #[test]
    fn no_gateways() {
        insta::assert_snapshot!(menu(&Snapshot::default()).to_string());
    }

    fn check_icon(s: Snapshot, expected: Icon) {
        assert_eq!(menu(&s).icon, expected, "{s:?}");
    }

    #[test]
    fn icon_follows_the_worst_state() {
        check_icon(main_and_rescue(Status::Stopped, Status::Stopped), Icon::Ok);
        check_icon(
            main_and_rescue(Status::Running(Owner::Service), Status::Starting),
            Icon::Ok,
        );
        let mut conflict = main_and_rescue(Status::Stopped, Status::Stopped);
        conflict.conflicts.push(port_conflict("main", "rescue"));
        check_icon(conflict.clone(), Icon::Warning);
        let mut invalid = main_and_rescue(Status::Stopped, Status::Stopped);
        invalid.gateways[0].config_problem = Some("bad".into());
        check_icon(invalid, Icon::Warning);
        conflict.gateways[0].status = Status::Failed { reason: "x".into() };
        check_icon(conflict, Icon::Error);
    }

    fn check_route(gateway: &Gateway, action: Action, expected: Result<Via, &str>) {
        let got = route(gateway, action).map_err(|e| e.to_string());
        assert_eq!(
            got,
            expected.map_err(str::to_string),
            "{action:?} on {gateway:?}"
        );
    }

    #[test]
    fn routes() {
        use Action::*;
        let stopped = gw("main", 1, Status::Stopped);
        let failed = gw(
            "main",
            1,
            Status::Failed {
                reason: "boom".into(),
            },
        );
        let embedded = gw("main", 1, Status::Running(Owner::Embedded));
        let starting = gw("main", 1, Status::Starting);
        let external = gw("main", 1, Status::Running(Owner::External));
        let service = Gateway {
            service_installed: true,
            ..gw("main", 1, Status::Running(Owner::Service))
        };
        let installed_stopped = Gateway {
            service_installed: true,
            ..stopped.clone()
        };
        let invalid = Gateway {
            config_problem: Some("gateway.port: expected an integer (3:13)".into()),
            ..stopped.clone()
        };
        let not_running = "main is not running";
        let not_ours = "main runs outside OmniClaw (a terminal or another program): stop it where it was started";
        let cases: Vec<(&Gateway, Action, Result<Via, &str>)> = vec![
            (&stopped, Start, Ok(Via::Host)),
            (&failed, Start, Ok(Via::Host)),
            (&installed_stopped, Start, Ok(Via::ServiceManager)),
            (&embedded, Start, Err("main is already running (embedded): it is never started twice")),
            (&external, Start, Err("main is already running (external): it is never started twice")),
            (&service, Start, Err("main is already running (service): it is never started twice")),
            (&starting, Start, Err("main is starting: wait until it runs or fails")),
            (&invalid, Start, Err("main cannot start: gateway.port: expected an integer (3:13); fix its config (`omniclaw --profile main config validate` lists the problems)")),
            (&stopped, Stop, Err(not_running)),
            (&failed, Stop, Err(not_running)),
            (&embedded, Stop, Ok(Via::Host)),
            (&starting, Stop, Ok(Via::Host)),
            (&service, Stop, Ok(Via::ServiceManager)),
            (&external, Stop, Err(not_ours)),
            (&embedded, Restart, Ok(Via::Host)),
            (&service, Restart, Ok(Via::ServiceManager)),
            (&external, Restart, Err(not_ours)),
            (&stopped, Restart, Err(not_running)),
            (&starting, Restart, Err("main is starting: wait until it runs or fails")),
            (&stopped, InstallService, Ok(Via::ServiceManager)),
            (&failed, InstallService, Ok(Via::ServiceManager)),
            (&embedded, InstallService, Err("main runs inside this app: stop it here before installing it as a service")),
            (&external, InstallService, Err(not_ours)),
            (&service, InstallService, Err("main already has a service: uninstall it first to reinstall")),
            (&invalid, InstallService, Err("main cannot start: gateway.port: expected an integer (3:13); fix its config (`omniclaw --profile main config validate` lists the problems)")),
            (&service, UninstallService, Ok(Via::ServiceManager)),
            (&installed_stopped, UninstallService, Ok(Via::ServiceManager)),
            (&stopped, UninstallService, Err("main has no service to uninstall")),
        ];
        for (gateway, action, expected) in cases {
            check_route(gateway, action, expected);
        }
    }

    fn check_id(text: &str, expected: Option<ItemId>) {
        assert_eq!(text.parse::<ItemId>().ok(), expected, "{text:?}");
        if let Some(id) = expected {
            assert_eq!(id.to_string(), text, "round trip of {id:?}");
        }
    }

    #[test]
    fn item_ids_round_trip() {
        let main = || "main".to_string();
        let code = || PairingCode::parse("K7M2P9QX").expect("a code");
        let cases = [
            (
                "start:main",
                Some(ItemId::GatewayAction(Action::Start, main())),
            ),
            (
                "stop:main",
                Some(ItemId::GatewayAction(Action::Stop, main())),
            ),
            (
                "restart:main",
                Some(ItemId::GatewayAction(Action::Restart, main())),
            ),
            (
                "install-service:main",
                Some(ItemId::GatewayAction(Action::InstallService, main())),
            ),
            (
                "uninstall-service:main",
                Some(ItemId::GatewayAction(Action::UninstallService, main())),
            ),
            ("gateway:main", Some(ItemId::Gateway(main()))),
            ("open-logs:main", Some(ItemId::OpenLogs(main()))),
            (
                "open-config-folder:main",
                Some(ItemId::OpenConfigFolder(main())),
            ),
            ("refused-edit:main", Some(ItemId::RefusedEdit(main()))),
            ("chat:main", Some(ItemId::Chat(main()))),
            ("spend:main", Some(ItemId::Spend(main()))),
            ("approvals:main", Some(ItemId::Approvals(main()))),
            ("update-service:main", Some(ItemId::UpdateService(main()))),
            ("service-drift:main", Some(ItemId::ServiceDrift(main()))),
            ("versions", Some(ItemId::Versions)),
            ("about", Some(ItemId::About)),
            ("about-app", Some(ItemId::AboutApp)),
            ("about-cli", Some(ItemId::AboutCli)),
            ("about-gateway:main", Some(ItemId::AboutGateway(main()))),
            ("update-service:", None),
            (
                "watched:rescue:main",
                Some(ItemId::Watched("rescue".into(), main())),
            ),
            ("remote:far", Some(ItemId::Remote("far".into()))),
            ("remote-chat:far", Some(ItemId::RemoteChat("far".into()))),
            ("remote-logs:far", Some(ItemId::RemoteLogs("far".into()))),
            ("remote-test:far", Some(ItemId::RemoteTest("far".into()))),
            (
                "remote-tunnel:far",
                Some(ItemId::RemoteTunnel("far".into())),
            ),
            (
                "remote-problem:far",
                Some(ItemId::RemoteProblem("far".into())),
            ),
            ("remote-logs:", None),
            ("watched:rescue", None),
            ("watched::main", None),
            ("watched:rescue:", None),
            ("chat:", None),
            ("warning:2", Some(ItemId::Warning(2))),
            ("pairing-requests", Some(ItemId::PairingRequests)),
            (
                "pairing:rescue:K7M2P9QX",
                Some(ItemId::PairingRequest("rescue".into(), code())),
            ),
            (
                "approve-pairing:rescue:K7M2P9QX",
                Some(ItemId::ApprovePairing("rescue".into(), code())),
            ),
            (
                "deny-pairing:rescue:K7M2P9QX",
                Some(ItemId::DenyPairing("rescue".into(), code())),
            ),
            ("approve-pairing:rescue", None),
            ("approve-pairing::K7M2P9QX", None),
            ("approve-pairing:rescue:k7m2p9qx", None),
            ("deny-pairing:rescue:K7M2", None),
            ("pairing:rescue:K7M2P9Q0", None),
            ("no-gateways", Some(ItemId::NoGateways)),
            ("set-up-rescue", Some(ItemId::SetUpRescue)),
            ("open-dashboard", Some(ItemId::OpenDashboard)),
            ("start-at-login", Some(ItemId::StartAtLogin)),
            ("quit", Some(ItemId::Quit)),
            ("warning:x", None),
            ("start:", None),
            ("launch:main", None),
            ("Quit", None),
            ("", None),
        ];
        for (text, expected) in cases {
            check_id(text, expected);
        }
    }

    #[test]
    fn ids_are_unique_in_every_menu() {
        let mut s = main_and_rescue(Status::Running(Owner::Embedded), Status::Stopped);
        s.conflicts.push(port_conflict("main", "rescue"));
        s.gateways[0].pairing = vec![request("K7M2P9QX", 5005, 3)];
        s.gateways[1].pairing = vec![request("K7M2P9QX", 5005, 3), request("ABCDEFGH", 6, 0)];
        for snapshot in [s, Snapshot::default()] {
            let ids: Vec<_> = menu(&snapshot).shape().into_iter().flatten().collect();
            let unique: BTreeSet<_> = ids.iter().collect();
            assert_eq!(unique.len(), ids.len(), "{ids:?}");
        }
    }

    fn remote(name: &str, state: RemoteState, tunnel: Option<TunnelView>) -> Remote {
        Remote {
            name: name.into(),
            state,
            version: None,
            healthy: None,
            tunnel,
        }
    }

    #[test]
    fn an_unreachable_remote_turns_the_icon_to_warning() {
        let far = |state| Snapshot {
            remotes: vec![remote("far", state, None)],
            ..Snapshot::default()
        };
        check_icon(far(RemoteState::Running), Icon::Ok);
        check_icon(far(RemoteState::Connecting), Icon::Ok);
        check_icon(
            far(RemoteState::Unreachable {
                reason: "connection refused".into(),
            }),
            Icon::Warning,
        );
        let mut failed = main_and_rescue(Status::Failed { reason: "x".into() }, Status::Stopped);
        failed.remotes = far(RemoteState::Unreachable { reason: "x".into() }).remotes;
        check_icon(failed, Icon::Error);
    }

    #[test]
    fn an_unreachable_remote_is_told_once_until_it_answers() {
        let at = |states: &[(&str, RemoteState)]| Snapshot {
            remotes: states
                .iter()
                .map(|(n, st)| remote(n, st.clone(), None))
                .collect(),
            ..Snapshot::default()
        };
        let down = |why: &str| RemoteState::Unreachable { reason: why.into() };
        let titles = |notices: &[Notice]| notices.iter().map(Notice::title).collect::<Vec<_>>();
        let mut told = RemotesTold::new();
        let mut said = Vec::new();
        // The app starts, retries with other reasons, connects, loses it.
        for snapshot in [
            at(&[
                ("far", RemoteState::Connecting),
                ("near", RemoteState::Running),
            ]),
            at(&[
                ("far", down("connection refused")),
                ("near", RemoteState::Running),
            ]),
            at(&[
                ("far", RemoteState::Connecting),
                ("near", RemoteState::Running),
            ]),
            at(&[("far", down("timed out")), ("near", RemoteState::Running)]),
            at(&[
                ("far", RemoteState::Running),
                ("near", RemoteState::Running),
            ]),
            at(&[
                ("far", RemoteState::Running),
                ("near", down("host key changed")),
            ]),
        ] {
            let (notices, next) = remote_notices(&told, &snapshot);
            said.extend(titles(&notices));
            told = next;
        }
        assert_eq!(
            said,
            [
                "Remote gateway far is unreachable",
                "Remote gateway far answers again",
                "Remote gateway near is unreachable",
            ]
        );
        let (notices, _) = remote_notices(&told, &at(&[("near", down("host key changed"))]));
        assert!(notices.is_empty(), "told already: {:?}", titles(&notices));
        // A removed remote is forgotten: added again and unreachable, told.
        let (_, forgot) = remote_notices(&told, &at(&[]));
        let (notices, _) = remote_notices(&forgot, &at(&[("near", down("refused"))]));
        assert_eq!(titles(&notices), ["Remote gateway near is unreachable"]);
        let body = notices[0].body();
        assert!(
            body.starts_with("refused. The app keeps trying")
                && body.contains("omniclaw remote test near"),
            "{body}"
        );
    }

    /// The labels of a submenu's items, separators as `---`, disabled
    /// items in brackets.
    fn submenu_labels(menu: &Menu, id: &ItemId) -> (String, Vec<String>) {
        let found = menu.items.iter().find(|i| i.id() == Some(id));
        let Some(Item::Submenu { label, items, .. }) = found else {
            panic!("no submenu {id:?} in {menu:?}");
        };
        let lines = items
            .iter()
            .map(|i| match i {
                Item::Action {
                    label,
                    enabled: true,
                    ..
                } => label.clone(),
                Item::Action { label, .. } => format!("[{label}]"),
                Item::Separator => "---".into(),
                other => format!("{other:?}"),
            })
            .collect();
        (label.clone(), lines)
    }

    #[test]
    fn remotes_have_their_own_entries_marked_remote() {
        let mut s = main_and_rescue(Status::Running(Owner::Embedded), Status::Stopped);
        let mut far = remote(
            "far",
            RemoteState::Running,
            Some(TunnelView::Up { pid: Some(4242) }),
        );
        far.version = Some("0.1.0".into());
        far.healthy = Some(true);
        let home = remote(
            "home",
            RemoteState::Unreachable {
                reason: "connection refused\nsecond line".into(),
            },
            None,
        );
        let vps = remote(
            "vps",
            RemoteState::Connecting,
            Some(TunnelView::Reconnecting {
                attempt: 2,
                reason: "ssh exited".into(),
            }),
        );
        s.remotes = vec![far, home, vps];
        let m = menu(&s);
        let cases = [
            (
                "far",
                "far — remote · running · v0.1.0",
                vec![
                    "Chat…",
                    "Logs…",
                    "Test connection",
                    "---",
                    "[tunnel up (ssh pid 4242)]",
                ],
            ),
            (
                "home",
                "home — remote · unreachable",
                vec![
                    "[Chat…]",
                    "[Logs…]",
                    "Test connection",
                    "[connection refused]",
                ],
            ),
            (
                "vps",
                "vps — remote · connecting",
                vec![
                    "[Chat…]",
                    "[Logs…]",
                    "Test connection",
                    "---",
                    "[tunnel reconnecting (attempt 2): ssh exited]",
                ],
            ),
        ];
        for (name, label, items) in cases {
            let (got_label, got_items) = submenu_labels(&m, &ItemId::Remote(name.into()));
            assert_eq!(got_label, label);
            assert_eq!(got_items, items, "{name}");
        }
        // After the local gateways and before the app's own items; no
        // lifecycle item names a remote.
        let at = |id: &ItemId| m.items.iter().position(|i| i.id() == Some(id));
        assert!(at(&ItemId::Gateway("rescue".into())) < at(&ItemId::Remote("far".into())));
        assert!(at(&ItemId::Remote("vps".into())) < at(&ItemId::SetUpRescue));
        assert!(!m.shape().iter().flatten().any(|id| matches!(
            id,
            ItemId::GatewayAction(_, n) | ItemId::OpenLogs(n) if ["far", "home", "vps"].contains(&n.as_str())
        )));
        // An unhealthy one says so.
        let mut sick = remote("far", RemoteState::Running, None);
        sick.healthy = Some(false);
        assert_eq!(remote_label(&sick), "far — remote · running · unhealthy");
        assert_eq!(
            TunnelView::KeptElsewhere.label(),
            "tunnel kept by `omniclaw remote tunnel`"
        );
        assert_eq!(
            TunnelView::Failed {
                reason: "cannot take the tunnel's lock".into()
            }
            .label(),
            "tunnel failed: cannot take the tunnel's lock"
        );
    }

    #[test]
    fn shape_ignores_labels_and_states() {
        let a = menu(&main_and_rescue(Status::Stopped, Status::Stopped));
        let b = menu(&main_and_rescue(
            Status::Running(Owner::Embedded),
            Status::Failed { reason: "x".into() },
        ));
        assert_eq!(a.shape(), b.shape());
        let mut installed = main_and_rescue(Status::Stopped, Status::Stopped);
        installed.gateways[0].service_installed = true;
        assert_ne!(a.shape(), menu(&installed).shape());
    }

    fn check_notices(before: &Snapshot, after: &Snapshot, expected: &[Notice]) {
        assert_eq!(notices(before, after), expected);
    }

    #[test]
    fn a_rescue_gateway_that_stops_or_fails_is_told_once() {
        let rescue = |status: Status| {
            let mut s = main_and_rescue(Status::Running(Owner::Service), status);
            s.gateways[1].rescue = true;
            s
        };
        let running = rescue(Status::Running(Owner::Embedded));
        let stopped = rescue(Status::Stopped);
        let failed = rescue(Status::Failed {
            reason: "port 19789 in use by nginx (pid 42)".into(),
        });
        let told_stop = Notice::RescueDown {
            name: "rescue".into(),
            reason: None,
        };
        check_notices(&running, &stopped, std::slice::from_ref(&told_stop));
        check_notices(&stopped, &stopped, &[]);
        // Never ran since the app looked: nothing stopped.
        check_notices(&Snapshot::default(), &stopped, &[]);
        check_notices(&rescue(Status::Starting), &stopped, &[]);
        let told_failure = Notice::RescueDown {
            name: "rescue".into(),
            reason: Some("port 19789 in use by nginx (pid 42)".into()),
        };
        check_notices(&running, &failed, std::slice::from_ref(&told_failure));
        check_notices(&failed, &failed, &[]);
        check_notices(&failed, &stopped, &[]);
        assert_eq!(told_stop.title(), "Rescue gateway rescue stopped");
        assert_eq!(told_failure.title(), "Rescue gateway rescue failed");
        assert_eq!(
            told_failure.body(),
            "port 19789 in use by nginx (pid 42). Nothing watches or repairs its targets until it runs again: start rescue from the tray or the dashboard."
        );
        // Another gateway stopping is no news; its failure is told as before.
        let mut main_stopped = running.clone();
        main_stopped.gateways[0].status = Status::Stopped;
        check_notices(&running, &main_stopped, &[]);
    }

    /// main and a running rescue watching it, its watch line `summary`
    /// and its outage `incident`.
    fn watching(summary: &str, incident: Option<WatchedIncident>) -> Snapshot {
        let mut s = main_and_rescue(Status::Stopped, Status::Running(Owner::Embedded));
        s.gateways[1].rescue = true;
        s.gateways[1].watch = vec![Watched {
            target: "main".into(),
            summary: summary.into(),
            incident,
        }];
        s
    }

    fn outage(opened_ms: u64, steps: &[&str], outcome: Option<Ended>) -> Option<WatchedIncident> {
        Some(WatchedIncident {
            opened_ms,
            headline: "main is down: nothing listens on port 18789".into(),
            steps: steps.iter().map(|s| (*s).to_string()).collect(),
            outcome,
        })
    }

    #[test]
    fn the_tray_shows_each_watched_target_on_its_own_line() {
        let s = watching("main — down · rescue repairing (2/3)", None);
        let menu = menu(&s);
        let line = menu
            .items
            .iter()
            .find(|i| i.id() == Some(&ItemId::Watched("rescue".into(), "main".into())))
            .expect("the watch line");
        assert_eq!(
            line,
            &Item::action(
                ItemId::Watched("rescue".into(), "main".into()),
                "main — down · rescue repairing (2/3)",
                false
            )
        );
        // After the gateways' submenus, so "main — " finds main's submenu first.
        let at = |id: &ItemId| menu.items.iter().position(|i| i.id() == Some(id));
        assert!(
            at(&ItemId::Gateway("rescue".into()))
                < at(&ItemId::Watched("rescue".into(), "main".into()))
        );
        let healthy = watching("main — healthy", None);
        assert_eq!(
            crate::tray::menu(&healthy).shape(),
            menu.shape(),
            "the same line, other words"
        );
        let unwatched = main_and_rescue(Status::Stopped, Status::Running(Owner::Embedded));
        assert!(!crate::tray::menu(&unwatched)
            .shape()
            .into_iter()
            .flatten()
            .any(|id| matches!(id, ItemId::Watched(..))));
    }

    #[test]
    fn an_outage_each_rung_and_the_recovery_are_told_once() {
        let step = "1. restart through the desktop app (+0 s) — checking…";
        let done = "1. restart through the desktop app (+0 s) — healthy";
        let recovered = Ended {
            recovered: true,
            lines: vec!["recovered (+1 s)".into()],
        };
        let healthy = watching("main — healthy", None);
        let failing = watching("main — failing (1/3 checks)", None);
        let down = watching("main — down · rescue repairing (0/3)", outage(5, &[], None));
        let repairing = watching(
            "main — down · rescue repairing (1/3)",
            outage(5, &[step], None),
        );
        let back = watching(
            "main — healthy",
            outage(5, &[done], Some(recovered.clone())),
        );
        let told_outage = Notice::Outage {
            rescue: "rescue".into(),
            target: "main".into(),
            headline: "main is down: nothing listens on port 18789".into(),
        };
        let told_step = Notice::Repair {
            rescue: "rescue".into(),
            target: "main".into(),
            step: step.into(),
        };
        let told_end = Notice::OutageEnded {
            rescue: "rescue".into(),
            target: "main".into(),
            ended: recovered.clone(),
        };
        check_notices(&healthy, &failing, &[]);
        check_notices(&failing, &down, std::slice::from_ref(&told_outage));
        check_notices(&down, &repairing, std::slice::from_ref(&told_step));
        check_notices(&repairing, &repairing, &[]);
        check_notices(&repairing, &back, std::slice::from_ref(&told_end));
        check_notices(&back, &back, &[]);
        // All between two looks: each told, in order.
        check_notices(
            &healthy,
            &back,
            &[
                told_outage.clone(),
                Notice::Repair {
                    rescue: "rescue".into(),
                    target: "main".into(),
                    step: done.into(),
                },
                told_end.clone(),
            ],
        );
        // The next outage is a new one.
        let again = watching("main — down", outage(99, &[], None));
        check_notices(&back, &again, std::slice::from_ref(&told_outage));
        // First seen (the app just started): an outage going on is told,
        // one that ended is old news.
        let started = Snapshot::default();
        check_notices(&started, &repairing, std::slice::from_ref(&told_outage));
        check_notices(&started, &back, &[]);

        assert_eq!(told_outage.title(), "main is down");
        assert_eq!(
            told_outage.body(),
            "main is down: nothing listens on port 18789. Rescue rescue repairs it as rescue.watch.actions allows and tells its Telegram operators each step."
        );
        assert_eq!(told_step.title(), "Rescue rescue repairs main");
        assert_eq!(told_step.body(), step);
        assert_eq!(told_end.title(), "main recovered");
        assert_eq!(told_end.body(), "recovered (+1 s)");
        let halted = Notice::OutageEnded {
            rescue: "rescue".into(),
            target: "main".into(),
            ended: Ended {
                recovered: false,
                lines: vec!["stopped trying: every allowed repair was tried".into()],
            },
        };
        assert_eq!(halted.title(), "Rescue rescue stopped repairing main");
    }

    #[test]
    fn each_failure_and_conflict_is_told_once() {
        let boom = || Status::Failed {
            reason: "boom".into(),
        };
        let ok = main_and_rescue(Status::Running(Owner::Embedded), Status::Stopped);
        let failed = main_and_rescue(boom(), Status::Stopped);
        let failed_again = main_and_rescue(
            Status::Failed {
                reason: "port 1 in use".into(),
            },
            Status::Stopped,
        );
        let mut clash = ok.clone();
        clash.conflicts.push(port_conflict("main", "rescue"));
        let told_failure = Notice::Failed {
            name: "main".into(),
            reason: "boom".into(),
        };
        let told_conflict = Notice::Conflict {
            label: "Port conflict: rescue ↔ main".into(),
        };
        check_notices(&ok, &failed, std::slice::from_ref(&told_failure));
        check_notices(
            &Snapshot::default(),
            &failed,
            std::slice::from_ref(&told_failure),
        );
        check_notices(&failed, &failed, &[]);
        check_notices(
            &failed,
            &failed_again,
            &[Notice::Failed {
                name: "main".into(),
                reason: "port 1 in use".into(),
            }],
        );
        check_notices(&failed, &ok, &[]);
        check_notices(&ok, &clash, std::slice::from_ref(&told_conflict));
        check_notices(&clash, &clash, &[]);
        check_notices(&clash, &ok, &[]);
        assert_eq!(told_failure.title(), "Gateway main failed");
        assert_eq!(
            told_conflict.body(),
            "Port conflict: rescue ↔ main. Open the port map to fix it."
        );
    }

    #[test]
    fn each_pairing_request_is_told_once() {
        let none = rescue_with(Vec::new());
        let one = rescue_with(vec![request("K7M2P9QX", 5005, 0)]);
        let older = rescue_with(vec![request("K7M2P9QX", 5005, 7)]);
        let two = rescue_with(vec![
            request("K7M2P9QX", 5005, 8),
            request("ABCDEFGH", 6006, 0),
        ]);
        let second_only = rescue_with(vec![request("ABCDEFGH", 6006, 1)]);
        let told = |code: &str, user: u64| Notice::PairingRequest {
            name: "rescue".into(),
            who: format!("@user{user}"),
            code: PairingCode::parse(code).expect("a code"),
        };
        check_notices(&none, &one, &[told("K7M2P9QX", 5005)]);
        check_notices(&Snapshot::default(), &one, &[told("K7M2P9QX", 5005)]);
        check_notices(&one, &older, &[]);
        check_notices(&older, &two, &[told("ABCDEFGH", 6006)]);
        check_notices(&two, &second_only, &[]);
        check_notices(&second_only, &none, &[]);
        // The same code on another profile's bot is another request.
        let mut elsewhere = one.clone();
        elsewhere.gateways[0].pairing = vec![request("K7M2P9QX", 5005, 0)];
        check_notices(
            &one,
            &elsewhere,
            &[Notice::PairingRequest {
                name: "main".into(),
                who: "@user5005".into(),
                code: PairingCode::parse("K7M2P9QX").expect("a code"),
            }],
        );
        let notice = told("K7M2P9QX", 5005);
        assert_eq!(notice.title(), "rescue: @user5005 asks for access");
        assert_eq!(
            notice.body(),
            "Pairing code K7M2P9QX. Approve or deny it under \"Pairing requests\" in the tray menu or on rescue's card in the dashboard."
        );
    }

    fn spend(usd: MicroUsd, cap: Option<MicroUsd>, day: u64) -> Spend {
        Spend {
            tokens: 1234,
            usd,
            cap,
            resets_at_ms: day,
        }
    }

    #[test]
    fn spend_is_labelled_against_the_cap() {
        let cases = [
            (
                spend(0, Some(2_000_000), 1),
                BudgetLevel::Under,
                "Today: 1,234 tokens · $0.00 of $2.00",
            ),
            (
                spend(12_300, Some(2_000_000), 1),
                BudgetLevel::Under,
                "Today: 1,234 tokens · $0.0123 of $2.00",
            ),
            (
                spend(1_599_999, Some(2_000_000), 1),
                BudgetLevel::Under,
                "Today: 1,234 tokens · $1.60 of $2.00",
            ),
            (
                spend(1_600_000, Some(2_000_000), 1),
                BudgetLevel::Near,
                "Today: 1,234 tokens · $1.60 of $2.00",
            ),
            (
                spend(2_000_000, Some(2_000_000), 1),
                BudgetLevel::Reached,
                "Today: 1,234 tokens · $2.00 · cap of $2.00 reached",
            ),
            (
                spend(2_500_000, None, 1),
                BudgetLevel::Under,
                "Today: 1,234 tokens · $2.50 (no daily cap)",
            ),
            (
                spend(40_000, Some(50_000), 1),
                BudgetLevel::Near,
                "Today: 1,234 tokens · $0.04 of $0.05",
            ),
            (
                spend(0, Some(0), 1),
                BudgetLevel::Reached,
                "Today: 1,234 tokens · $0.00 · cap of $0.00 reached",
            ),
        ];
        for (spend, level, label) in cases {
            assert_eq!(spend.level(), level, "{spend:?}");
            assert_eq!(spend.label(), label, "{spend:?}");
        }
    }

    #[test]
    fn a_running_assistant_shows_chat_spend_and_approvals() {
        let mut s = main_and_rescue(Status::Running(Owner::Service), Status::Stopped);
        s.gateways[0].spend = Some(spend(1_700_000, Some(2_000_000), 1));
        s.gateways[0].approvals = vec![
            ApprovalWait {
                id: "a1".into(),
                command: "rm -rf build".into(),
            },
            ApprovalWait {
                id: "a2".into(),
                command: "ls".into(),
            },
        ];
        // A stopped gateway's leftovers show nothing.
        s.gateways[1].spend = Some(spend(2_000_000, Some(2_000_000), 1));
        s.gateways[1].approvals = vec![ApprovalWait {
            id: "b1".into(),
            command: "ls".into(),
        }];
        let menu = menu(&s);
        assert_eq!(menu.icon, Icon::Warning, "someone must answer");
        insta::assert_snapshot!(menu.to_string());
        let mut capped = main_and_rescue(Status::Running(Owner::Embedded), Status::Stopped);
        capped.gateways[0].spend = Some(spend(2_000_000, Some(2_000_000), 1));
        assert_eq!(menu_icon(&capped), Icon::Warning, "the cap stops replies");
        capped.gateways[0].spend = Some(spend(1_000_000, Some(2_000_000), 1));
        assert_eq!(menu_icon(&capped), Icon::Ok);
    }

    fn menu_icon(s: &Snapshot) -> Icon {
        menu(s).icon
    }

    #[test]
    fn each_approval_is_told_once() {
        let wait = |id: &str| ApprovalWait {
            id: id.into(),
            command: format!("echo {id}"),
        };
        let mut one = main_and_rescue(Status::Running(Owner::Embedded), Status::Stopped);
        one.gateways[0].approvals = vec![wait("a1")];
        let mut two = one.clone();
        two.gateways[0].approvals.push(wait("a2"));
        let none = main_and_rescue(Status::Running(Owner::Embedded), Status::Stopped);
        let told = |id: &str| Notice::Approval {
            name: "main".into(),
            id: id.into(),
            command: format!("echo {id}"),
        };
        check_notices(&none, &one, &[told("a1")]);
        check_notices(&one, &one, &[]);
        check_notices(&one, &two, &[told("a2")]);
        check_notices(&two, &none, &[]);
        let notice = told("a1");
        assert_eq!(notice.title(), "main: a command waits for your approval");
        assert_eq!(
            notice.body(),
            "echo a1. Allow or deny it in the dashboard (main's card or its chat); no answer in time is a deny."
        );
    }

    #[test]
    fn the_budget_is_told_once_at_80_percent_and_once_when_spent() {
        let at = |usd: Option<MicroUsd>, cap: MicroUsd, day: u64| {
            let mut s = main_and_rescue(Status::Running(Owner::Embedded), Status::Stopped);
            s.gateways[0].spend = usd.map(|usd| spend(usd, Some(cap), day));
            s
        };
        let kinds = |notices: &[Notice]| -> Vec<&'static str> {
            notices
                .iter()
                .map(|n| match n {
                    Notice::BudgetNear { .. } => "near",
                    Notice::BudgetReached { .. } => "reached",
                    _ => "other",
                })
                .collect()
        };
        let cap = 2_000_000;
        let steps: [(Option<MicroUsd>, MicroUsd, u64, &[&str]); 11] = [
            (Some(100_000), cap, 1, &[]),
            (Some(1_700_000), cap, 1, &["near"]),
            (Some(1_800_000), cap, 1, &[]),
            // Reconnecting or restarted: unknown for a while, not told again.
            (None, cap, 1, &[]),
            (Some(1_900_000), cap, 1, &[]),
            (Some(2_000_000), cap, 1, &["reached"]),
            (Some(2_100_000), cap, 1, &[]),
            // The cap is raised: a new crossing is news again.
            (Some(2_100_000), 5_000_000, 1, &[]),
            (Some(4_500_000), 5_000_000, 1, &["near"]),
            // The next day starts over; a jump past the cap tells only that.
            (Some(100_000), 5_000_000, 2, &[]),
            (Some(6_000_000), 5_000_000, 2, &["reached"]),
        ];
        let mut told = BudgetTold::new();
        for (n, (usd, cap, day, expected)) in steps.iter().enumerate() {
            let (notices, next) = budget_notices(&told, &at(*usd, *cap, *day));
            assert_eq!(kinds(&notices), *expected, "step {n}");
            told = next;
        }
        let notice = Notice::BudgetNear {
            name: "main".into(),
            spend: spend(1_700_000, Some(cap), 1),
        };
        assert_eq!(notice.title(), "main: 80 % of today's budget spent");
        assert_eq!(
            notice.body(),
            "$1.70 of $2.00 spent today. Raise the cap on main's card in the dashboard if it needs more."
        );
        let notice = Notice::BudgetReached {
            name: "main".into(),
            spend: spend(2_000_000, Some(cap), 1),
        };
        assert_eq!(notice.title(), "main: today's budget is spent");
        assert!(
            notice.body().starts_with("The cap of $2.00 is reached"),
            "{}",
            notice.body()
        );
    }

    #[test]
    fn warnings_name_the_pair_once_per_kind() {
        let shared = Conflict::SharedBotToken {
            a: "main".into(),
            b: "rescue".into(),
        };
        let got = warnings(&[
            port_conflict("main", "rescue"),
            shared,
            port_conflict("main", "rescue"),
            port_conflict("main", "work"),
        ]);
        assert_eq!(
            got,
            [
                "Port conflict: rescue ↔ main",
                "Shared bot token: rescue ↔ main",
                "Port conflict: work ↔ main"
            ]
        );
    }

    #[test]
    fn long_reasons_are_cut_to_one_line() {
        let reason = format!("{}\nsecond line", "x".repeat(200));
        let label = Status::Failed { reason }.label();
        assert_eq!(label.chars().count(), "failed: ".len() + REASON_CHARS);
        assert!(label.ends_with('…'));
    }
}
