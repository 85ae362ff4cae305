//! The isolation audit shared by `ports`, `doctor` and `status`: every
//! instance, the port plan across them, and the live check of each row.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{json, Value};

use omniclaw_core::paths::{self, Resolved};
use omniclaw_core::ports::{self, Instance, Plan, PortKey};
use omniclaw_os::live::{self, PortState};
use omniclaw_os::portowner::{self, Holder};
use omniclaw_os::profiles::{self, ConfigState, Inventory};

use crate::ctx::Ctx;
use crate::out::CliError;

use super::setup;

pub struct Audit {
    pub resolved: Resolved,
    pub inv: Inventory,
    pub plan: Plan,
    /// One entry per `plan.rows` row.
    pub live: Vec<PortState>,
    /// Running gateways by instance name.
    pub running: HashMap<String, u32>,
    /// Instances set up (or installed) whose ports could not be read, so
    /// the plan could not compare them.
    pub unknown: Vec<Unknown>,
    /// The state dir or config this shell's profile would use belongs to
    /// another profile.
    pub ownership: Option<Unknown>,
    /// What the plan compared, in its order.
    instances: Vec<Instance>,
    /// Every TCP port a process listens on right now.
    listening: HashMap<u16, Holder>,
}

/// An instance whose config exists but could not be read or parsed: its
/// ports are unknown and isolation cannot be checked.
pub struct Unknown {
    pub instance: String,
    pub message: String,
    pub fix: String,
}

/// A gateway on another machine as this one sees it: the local end of a
/// remote's SSH tunnel (the only port of it on this machine), or a profile
/// in `gateway.mode: "remote"` (none).
pub struct Elsewhere {
    pub name: String,
    /// `ssh tunnel` or `gateway.mode remote`.
    pub kind: &'static str,
    /// The tunnel's local port.
    pub port: Option<u16>,
    /// Where the gateway is.
    pub target: String,
    /// Who holds the tunnel's port now, when someone does.
    pub holder: Option<Holder>,
}

impl Elsewhere {
    /// Another program than `ssh` on the tunnel's port: the tunnel cannot
    /// start there.
    pub fn blocked(&self) -> Option<Problem> {
        let holder = self.holder.as_ref().filter(|h| h.name != "ssh")?;
        let port = self.port?;
        Some(Problem {
            kind: "tunnel port",
            message: format!(
                "port {port}, the local end of the remote gateway {}'s SSH tunnel, is held by {holder}: the tunnel cannot listen there",
                self.name
            ),
            fix: format!(
                "stop pid {}, or give the remote another port: `omniclaw remote remove {}` and add it again with --local-port",
                holder.pid, self.name
            ),
            profiles: Vec::new(),
        })
    }

    /// `free`, `listening (pid N)`, or who blocks it; `–` with no port.
    pub fn now(&self) -> String {
        match (self.port, &self.holder) {
            (None, _) => "–".into(),
            (Some(_), None) => "free".into(),
            (Some(_), Some(h)) if h.name == "ssh" => format!("listening (pid {}, ssh)", h.pid),
            (Some(_), Some(h)) => format!("held by {h}"),
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "kind": self.kind,
            "port": self.port,
            "target": self.target,
            "holder": self.holder.as_ref().map(|h| json!({"pid": h.pid, "process": h.name})),
        })
    }
}

impl Audit {
    /// The gateways of other machines that touch this one: the remotes'
    /// tunnels, then the profiles in remote mode. A remotes file that
    /// cannot be read gives none (`remote list` says what is wrong).
    pub fn elsewhere(&self) -> Vec<Elsewhere> {
        let mut out = Vec::new();
        if let Ok(remotes) = omniclaw_os::remote::load(&self.inv.home) {
            for r in &remotes.list {
                let Some(port) = r.local_port() else {
                    continue;
                };
                out.push(Elsewhere {
                    name: r.name.clone(),
                    kind: "ssh tunnel",
                    port: Some(port),
                    target: r.target(),
                    holder: self.listening.get(&port).cloned(),
                });
            }
        }
        for p in &self.inv.profiles {
            if let ConfigState::Valid { loaded, .. } = &p.config {
                if let Some(far) = omniclaw_gateway::profile::remote_of(&loaded.config) {
                    out.push(Elsewhere {
                        name: p.label.clone(),
                        kind: "gateway.mode remote",
                        port: None,
                        target: far.url,
                        holder: None,
                    });
                }
            }
        }
        out
    }

    pub fn run(ctx: &Ctx) -> Result<Audit, CliError> {
        // Who listens where comes from the OS's socket tables, a read of
        // its own: it runs beside loading the inventory.
        let listening = std::thread::spawn(portowner::listening);
        let resolved = ctx.resolve()?;
        ctx.print_notes(&resolved);
        let inv = ctx.inventory(&resolved)?;
        let instances = inv.instances(&ctx.env);
        let plan = ports::plan(&instances);
        let running: HashMap<String, u32> = inv
            .profiles
            .iter()
            .filter_map(|p| {
                let pid = p.live.as_ref().map(|l| l.pid);
                Some((
                    p.label.clone(),
                    pid.or_else(|| live::running_pid(&p.state_dir))?,
                ))
            })
            .collect();
        let listening = listening
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        let live = live::check_with(&plan.rows, &running, &listening);
        let unknown = unknown_ports(&inv);
        let ownership = ownership(&resolved, &inv);
        Ok(Audit {
            resolved,
            inv,
            plan,
            live,
            running,
            unknown,
            ownership,
            instances,
            listening,
        })
    }

    /// Profiles whose gateway runs on another base port than their config
    /// names, as (profile, running on, config says).
    pub fn moved(&self) -> Vec<(&str, u16, u16)> {
        self.inv
            .profiles
            .iter()
            .filter_map(|p| {
                let (live, configured) = p.moved()?;
                Some((p.label.as_str(), live, configured))
            })
            .collect()
    }

    /// Stop the holder of a row's port, or move the row's instance to a
    /// place clear of every instance and of every port held right now.
    pub fn held_fix(&self, r: &ports::Row, s: &PortState) -> String {
        held_fix(r, s, self.free_place(r))
    }

    /// A value of the row's key that puts what the key places clear of
    /// every other instance and every held port: a new base from the
    /// profile's preferred one, another key from where it is now.
    fn free_place(&self, r: &ports::Row) -> Option<u16> {
        let from = if r.key == PortKey::GatewayPort {
            self.inv
                .profiles
                .iter()
                .find(|p| p.label == r.instance)
                .map_or(ports::DEFAULT_BASE, |p| ports::preferred_base(&p.profile))
        } else {
            let me = self.instances.iter().find(|i| i.name == r.instance)?;
            r.key.value_in(&me.ports)?
        };
        ports::free_place(
            &self.plan,
            &self.instances,
            &r.instance,
            &r.key,
            from,
            |p| self.listening.contains_key(&p),
        )
    }

    /// How many instances the plan compared: those whose ports are known.
    pub fn compared(&self) -> usize {
        let profiles = self
            .inv
            .profiles
            .iter()
            .filter(|p| p.config.value().is_some())
            .count();
        profiles
            + self
                .inv
                .foreign
                .iter()
                .filter(|f| f.value.is_some())
                .count()
    }

    /// Rows whose ports another process holds.
    pub fn live_problems(&self) -> impl Iterator<Item = (&ports::Row, &PortState)> {
        self.plan
            .rows
            .iter()
            .zip(&self.live)
            .filter(|(_, s)| s.is_problem())
    }

    pub fn is_clean(&self) -> bool {
        self.plan.is_clean()
            && self.unknown.is_empty()
            && self.ownership.is_none()
            && self.live_problems().next().is_none()
    }

    /// Port rows for JSON output, serialized straight from the plan: a
    /// `Value` tree of every row (maps hashing each key, dropped again
    /// afterwards) cost more than the plan itself over a thousand profiles.
    pub fn rows_out(&self) -> Vec<RowOut<'_>> {
        self.plan
            .rows
            .iter()
            .zip(&self.live)
            .map(|(r, s)| RowOut {
                profile: &r.instance,
                foreign: r.foreign,
                surface: Shown(&r.surface),
                start: r.range.start(),
                end: r.range.end(),
                bind: Shown(&r.bind),
                key: Shown(&r.key),
                live: match s {
                    PortState::Free => LiveOut::Free,
                    PortState::Listening { pid } => LiveOut::Listening { pid: *pid },
                    PortState::Held { port, holder } => LiveOut::Held {
                        port: *port,
                        pid: holder.pid,
                        process: &holder.name,
                    },
                },
            })
            .collect()
    }

    /// Conflicts, broken port settings, ownership, unknown ports and live
    /// holders, each with its fix and the instances it concerns: what
    /// `ports`, `status` and their `--json` report.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out: Vec<Problem> = self
            .plan
            .conflicts
            .iter()
            .map(|c| {
                let (a, b) = c.instances();
                Problem {
                    kind: conflict_kind(c),
                    message: c.to_string(),
                    fix: c.fix(),
                    profiles: vec![a.to_string(), b.to_string()],
                }
            })
            .collect();
        out.extend(self.plan.errors.iter().map(|e| Problem {
            kind: "portError",
            message: e.to_string(),
            fix: e.fix(),
            profiles: vec![e.instance.clone()],
        }));
        let known = |kind, u: &Unknown| Problem {
            kind,
            message: u.message.clone(),
            fix: u.fix.clone(),
            profiles: vec![u.instance.clone()],
        };
        out.extend(self.ownership.iter().map(|u| known("ownership", u)));
        out.extend(self.unknown.iter().map(|u| known("portsUnknown", u)));
        out.extend(self.live_problems().map(|(r, s)| Problem {
            kind: "portHeld",
            message: held_message(r, s),
            fix: self.held_fix(r, s),
            profiles: vec![r.instance.clone()],
        }));
        out
    }

    /// [`Audit::problems`] as JSON.
    pub fn problems_json(&self) -> Vec<Value> {
        self.problems().iter().map(Problem::to_json).collect()
    }
}

/// One thing the audit found wrong, with its fix.
pub struct Problem {
    pub kind: &'static str,
    pub message: String,
    pub fix: String,
    /// The instances it concerns, by label.
    pub profiles: Vec<String>,
}

impl Problem {
    /// Whether it concerns the instance `label`.
    pub fn concerns(&self, label: &str) -> bool {
        self.profiles.iter().any(|p| p == label)
    }

    pub fn to_json(&self) -> Value {
        json!({"kind": self.kind, "message": self.message, "fix": self.fix, "profiles": self.profiles})
    }
}

/// One row of `ports --json`, its fields in output order.
#[derive(Serialize)]
pub struct RowOut<'a> {
    profile: &'a str,
    foreign: bool,
    surface: Shown<'a, ports::Surface>,
    start: u16,
    end: u16,
    bind: Shown<'a, ports::BindScope>,
    key: Shown<'a, PortKey>,
    live: LiveOut<'a>,
}

/// Who holds a row's ports right now: `{"state": "free"}`,
/// `{"state": "listening", "pid": …}` or `{"state": "held", "port": …,
/// "pid": …, "process": …}`.
#[derive(Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
enum LiveOut<'a> {
    Free,
    Listening {
        pid: u32,
    },
    Held {
        port: u16,
        pid: u32,
        process: &'a str,
    },
}

/// A value serialized as the string it displays as.
struct Shown<'a, T>(&'a T);

impl<T: std::fmt::Display> Serialize for Shown<'_, T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self.0)
    }
}

fn conflict_kind(c: &ports::Conflict) -> &'static str {
    match c {
        ports::Conflict::PortOverlap { .. } => "portOverlap",
        ports::Conflict::SharedPath { .. } => "sharedPath",
        ports::Conflict::SharedCdpUrl { .. } => "sharedCdpUrl",
        ports::Conflict::SharedBotToken { .. } => "sharedBotToken",
    }
}

pub fn held_message(r: &ports::Row, s: &PortState) -> String {
    match s {
        PortState::Held { port, holder } => format!(
            "{}'s {} port {port} is held by {holder}",
            r.instance, r.surface
        ),
        other => format!("{}'s {} {}: {other}", r.instance, r.surface, r.range),
    }
}

/// Stop the holder, or move the instance to `free` (a value of the row's
/// key clear of every instance and of the ports held right now).
fn held_fix(r: &ports::Row, s: &PortState, free: Option<u16>) -> String {
    let PortState::Held { holder, .. } = s else {
        return String::new();
    };
    let stop = format!("stop {} (pid {})", holder.name, holder.pid);
    match free {
        Some(port) => format!(
            "{stop} or move {} with `{} config set {} {port}`",
            r.instance,
            command_of(&r.instance),
            r.key
        ),
        None => format!("{stop}: no free place is left to move {} to", r.instance),
    }
}

/// `omniclaw` or `omniclaw --profile NAME`, for fixes.
pub fn command_of(instance: &str) -> String {
    if instance == "default" {
        "omniclaw".to_string()
    } else {
        format!("omniclaw --profile {instance}")
    }
}

/// The current profile's state dir or config, when another profile owns
/// it: the same refusal as `setup`'s, with the same fix.
fn ownership(resolved: &Resolved, inv: &Inventory) -> Option<Unknown> {
    profiles::ownership_problem(resolved, inv).map(|problem| Unknown {
        instance: resolved.profile.name().to_string(),
        message: problem,
        fix: setup::redirect_fix(resolved),
    })
}

/// What to do about a profile's config that cannot be read, then the
/// command that checks it again.
pub fn unreadable_fix(failure: &profiles::ReadFailure, shown: &str, label: &str) -> String {
    let cmd = command_of(label);
    let validate = format!("`{cmd} config validate`");
    match failure {
        profiles::ReadFailure::IsDir => {
            format!("move the directory {shown} away, then `{cmd} setup` writes the config")
        }
        profiles::ReadFailure::Denied => {
            format!("make it readable by this user (`chmod u+r {shown}`), then {validate}")
        }
        profiles::ReadFailure::BrokenLink(_) => format!(
            "point the link {shown} at the config file or remove it (then `{cmd} setup` writes one), then {validate}"
        ),
        profiles::ReadFailure::Other(_) => {
            format!("make {shown} a file this user can read, then {validate}")
        }
        profiles::ReadFailure::NotUtf8 { .. } => format!(
            "save {shown} as UTF-8 text (or move it away and run `{cmd} setup`), then {validate}"
        ),
    }
}

/// Profiles whose config exists but cannot be read or does not parse, and
/// OpenClaw installs whose config could not be used.
fn unknown_ports(inv: &Inventory) -> Vec<Unknown> {
    let mut out = Vec::new();
    for p in &inv.profiles {
        let validate = format!("`{} config validate`", command_of(&p.label));
        let shown = paths::tilde(&p.config_path, &inv.home);
        let (reason, fix) = match &p.config {
            ConfigState::Unreadable(msg) => match profiles::read_failure(&p.config_path) {
                Some(failure) => (
                    failure.what(&shown),
                    unreadable_fix(&failure, &shown, &p.label),
                ),
                // Readable again since it was loaded: look once more.
                None => (msg.clone(), validate.clone()),
            },
            ConfigState::Invalid {
                errors,
                value: None,
                ..
            } => {
                let at = errors
                    .diagnostics()
                    .first()
                    .map(|d| format!(" at {}:{}", d.line, d.col))
                    .unwrap_or_default();
                (
                    format!("{shown} does not parse: {errors}"),
                    format!("edit {shown}{at}, then {validate}"),
                )
            }
            _ => continue,
        };
        out.push(Unknown {
            instance: p.label.clone(),
            message: format!("{}: ports unknown — {reason}", p.label),
            fix,
        });
    }
    for f in &inv.foreign {
        if let Some(problem) = &f.problem {
            out.push(Unknown {
                instance: f.label.clone(),
                message: format!("{}: ports unknown — {problem}", f.label),
                fix: format!(
                    "fix {} so OmniClaw can keep clear of its ports",
                    paths::tilde(&f.config_path, &inv.home)
                ),
            });
        }
    }
    out
}
