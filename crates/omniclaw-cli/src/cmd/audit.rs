//! The isolation audit shared by `ports`, `doctor` and `status`: every
//! instance, the port plan across them, and the live check of each row.

use std::collections::HashMap;

use serde_json::{json, Value};

use omniclaw_core::paths::Resolved;
use omniclaw_core::ports::{self, Plan};
use omniclaw_os::live::{self, PortState};
use omniclaw_os::profiles::Inventory;

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
}

impl Audit {
    pub fn run(ctx: &Ctx) -> Result<Audit, CliError> {
        let resolved = ctx.resolve()?;
        ctx.print_notes(&resolved);
        let inv = ctx.inventory(&resolved)?;
        let plan = ports::plan(&inv.instances(&ctx.env));
        let running: HashMap<String, u32> = inv
            .profiles
            .iter()
            .filter_map(|p| Some((p.label.clone(), live::running_pid(&p.state_dir)?)))
            .collect();
        let live = live::check(&plan.rows, &running);
        Ok(Audit {
            resolved,
            inv,
            plan,
            live,
            running,
        })
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
        self.plan.is_clean() && self.live_problems().next().is_none()
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
        out.extend(self.plan.errors.iter().map(|(name, e)| {
            json!({"kind": "portError", "message": format!("{name}: {e}"), "fix": e.to_string(), "profiles": [name]})
        }));
        out.extend(self.live_problems().map(|(r, s)| {
            json!({"kind": "portHeld", "message": held_message(r, s), "fix": held_fix(r, s), "profiles": [r.instance]})
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

pub fn held_fix(r: &ports::Row, s: &PortState) -> String {
    match s {
        PortState::Held { holder, .. } => format!(
            "stop {} (pid {}) or move {} with `{} config set {} <port>`",
            holder.name,
            holder.pid,
            r.instance,
            if r.instance == "default" {
                "omniclaw".to_string()
            } else {
                format!("omniclaw --profile {}", r.instance)
            },
            r.key
        ),
        _ => String::new(),
    }
}
