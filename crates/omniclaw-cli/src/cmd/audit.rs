//! The isolation audit shared by `ports`, `doctor` and `status`: every
//! instance, the port plan across them, and the live check of each row.

use std::collections::HashMap;

use serde_json::{json, Value};

use omniclaw_core::paths::{self, Resolved};
use omniclaw_core::ports::{self, Instance, Plan, PortKey};
use omniclaw_os::live::{self, PortState};
use omniclaw_os::portowner::{self, Holder};
use omniclaw_os::profiles::{ConfigState, Inventory};

use crate::ctx::Ctx;
use crate::out::CliError;

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

impl Audit {
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
            .filter_map(|p| Some((p.label.clone(), live::running_pid(&p.state_dir)?)))
            .collect();
        let listening = listening
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        let live = live::check_with(&plan.rows, &running, &listening);
        let unknown = unknown_ports(&inv);
        Ok(Audit {
            resolved,
            inv,
            plan,
            live,
            running,
            unknown,
            instances,
            listening,
        })
    }

    /// Stop the holder of a row's port, or move the row's instance to a
    /// place clear of every instance and of every port held right now.
    pub fn held_fix(&self, r: &ports::Row, s: &PortState) -> String {
        held_fix(r, s, self.free_place(r))
    }

    /// A value of the row's key that puts what the key places clear of
    /// every other instance and every held port.
    fn free_place(&self, r: &ports::Row) -> Option<u16> {
        let held = |p: u16| self.listening.contains_key(&p);
        let others: Vec<Instance> = self
            .instances
            .iter()
            .filter(|i| i.name != r.instance)
            .cloned()
            .collect();
        let me = self.instances.iter().find(|i| i.name == r.instance)?;
        if r.key == PortKey::GatewayPort {
            let preferred = self
                .inv
                .profiles
                .iter()
                .find(|p| p.label == r.instance)
                .map_or(ports::DEFAULT_BASE, |p| ports::preferred_base(&p.profile));
            return ports::free_base(&others, preferred, held).ok();
        }
        // Everything the key places, from its value to its farthest port.
        let from = r.key.value_in(&me.ports)?;
        let mine = |row: &&ports::Row| row.instance == r.instance && row.key == r.key;
        let len = self
            .plan
            .rows
            .iter()
            .filter(mine)
            .map(|row| u32::from(row.range.end()).saturating_sub(u32::from(from)) + 1)
            .max()
            .unwrap_or(1);
        let mut taken: Vec<(u32, u32)> = self
            .plan
            .rows
            .iter()
            .filter(|row| !mine(row))
            .map(|row| (u32::from(row.range.start()), u32::from(row.range.end())))
            .chain(self.listening.keys().map(|&p| (u32::from(p), u32::from(p))))
            .collect();
        taken.sort_unstable();
        first_gap(&taken, u32::from(from), len)
            .or_else(|| first_gap(&taken, 1024, len))
            .and_then(|p| u16::try_from(p).ok())
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
        self.plan.is_clean() && self.unknown.is_empty() && self.live_problems().next().is_none()
    }

    /// Port rows as JSON.
    pub fn rows_json(&self) -> Vec<Value> {
        self.plan
            .rows
            .iter()
            .zip(&self.live)
            .map(|(r, s)| {
                let live = match s {
                    PortState::Free => json!({"state": "free"}),
                    PortState::Listening { pid } => json!({"state": "listening", "pid": pid}),
                    PortState::Held { port, holder } => {
                        json!({"state": "held", "port": port, "pid": holder.pid, "process": holder.name})
                    }
                };
                json!({
                    "profile": r.instance,
                    "foreign": r.foreign,
                    "surface": r.surface.to_string(),
                    "start": r.range.start(),
                    "end": r.range.end(),
                    "bind": r.bind.to_string(),
                    "key": r.key.to_string(),
                    "live": live,
                })
            })
            .collect()
    }

    /// Conflicts, broken port settings and live holders, as JSON problems.
    pub fn problems_json(&self) -> Vec<Value> {
        let mut out: Vec<Value> = self
            .plan
            .conflicts
            .iter()
            .map(|c| {
                let (a, b) = c.instances();
                json!({"kind": conflict_kind(c), "message": c.to_string(), "fix": c.fix(), "profiles": [a, b]})
            })
            .collect();
        out.extend(self.plan.errors.iter().map(|e| {
            json!({"kind": "portError", "message": e.to_string(), "fix": e.fix(), "profiles": [e.instance]})
        }));
        out.extend(self.unknown.iter().map(|u| {
            json!({"kind": "portsUnknown", "message": u.message, "fix": u.fix, "profiles": [u.instance]})
        }));
        out.extend(self.live_problems().map(|(r, s)| {
            json!({"kind": "portHeld", "message": held_message(r, s), "fix": self.held_fix(r, s), "profiles": [r.instance]})
        }));
        out
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

/// The lowest start at or above `from` of `len` ports that touch no range
/// of `taken` (sorted by start) and end at 65535 at the latest.
fn first_gap(taken: &[(u32, u32)], from: u32, len: u32) -> Option<u32> {
    let mut start = from;
    for &(s, e) in taken {
        if e < start {
            continue;
        }
        if s >= start + len {
            break;
        }
        start = e + 1;
    }
    (start + len - 1 <= u32::from(u16::MAX)).then_some(start)
}

/// Profiles whose config exists but cannot be read or does not parse, and
/// OpenClaw installs whose config could not be used.
fn unknown_ports(inv: &Inventory) -> Vec<Unknown> {
    let mut out = Vec::new();
    for p in &inv.profiles {
        let validate = format!("`{} config validate`", command_of(&p.label));
        let shown = paths::tilde(&p.config_path, &inv.home);
        let (reason, fix) = match &p.config {
            ConfigState::Unreadable(msg) => (msg.clone(), format!("fix it, then {validate}")),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps() {
        let taken = [(10, 19), (15, 25), (30, 30), (40, 49)];
        assert_eq!(first_gap(&taken, 1, 5), Some(1));
        assert_eq!(first_gap(&taken, 8, 5), Some(31));
        assert_eq!(first_gap(&taken, 20, 4), Some(26));
        assert_eq!(first_gap(&taken, 20, 5), Some(31));
        assert_eq!(first_gap(&taken, 20, 10), Some(50));
        assert_eq!(first_gap(&[(65530, 65535)], 65500, 31), None);
        assert_eq!(first_gap(&[(65530, 65535)], 65500, 30), Some(65500));
    }
}
