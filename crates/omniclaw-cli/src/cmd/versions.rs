//! Versions side by side: this `omniclaw`, the desktop app installed
//! beside it, and each running gateway's, as its `hello-ok` says. A
//! gateway that runs another version than this CLI (a package upgraded
//! under a running service, an old terminal left open) is flagged with the
//! restart that brings it in step; an app beside the CLI at another
//! version, with the reinstall.

use std::path::PathBuf;

use serde_json::{json, Value};

use omniclaw_os::lock::{InstanceLock, Owner};
use omniclaw_os::version;

use crate::ctx::Ctx;
use crate::out::CliError;

use super::audit::command_of;
use super::target::{runtime, Target};

/// This `omniclaw`'s version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The desktop app beside this CLI (a package installs both in one
/// directory; a build puts both in one target folder).
pub struct App {
    pub path: PathBuf,
    /// Its version, or why it could not be read.
    pub version: Result<String, String>,
}

/// A running gateway and the version it reports.
pub struct Running {
    pub profile: String,
    pub owner: Option<Owner>,
    pub pid: u32,
    /// From its `hello-ok`, or why it could not be asked.
    pub version: Result<String, String>,
}

impl Running {
    /// What brings this gateway to `VERSION`, when it runs another one.
    pub fn out_of_step(&self) -> Option<String> {
        self.gap()
            .map(|(what, fix)| format!("the gateway of profile {} {what}: {fix}", self.profile))
    }

    /// `(what differs, the fix)` when this gateway runs another version.
    pub fn gap(&self) -> Option<(String, String)> {
        let version = self.version.as_ref().ok()?;
        (version != VERSION).then(|| {
            (
                format!("runs OmniClaw {version}, this omniclaw is {VERSION}"),
                restart_fix(&self.profile, self.owner),
            )
        })
    }

    fn json(&self) -> Value {
        json!({
            "profile": self.profile,
            "owner": self.owner.map(Owner::as_str),
            "pid": self.pid,
            "version": self.version.as_ref().ok(),
            "error": self.version.as_ref().err(),
            "inStep": self.version.as_ref().ok().map(|v| v == VERSION),
        })
    }
}

impl App {
    /// What brings the app to `VERSION`, when it is another one.
    pub fn out_of_step(&self) -> Option<String> {
        self.gap().map(|(what, fix)| format!("{what}: {fix}"))
    }

    /// `(what differs, the fix)` when the app is another version.
    pub fn gap(&self) -> Option<(String, String)> {
        let version = self.version.as_ref().ok()?;
        (version != VERSION).then(|| {
            (
                format!(
                    "the desktop app {} is {version}, this omniclaw is {VERSION}",
                    self.path.display()
                ),
                "install both from one package (or build both: `cargo build -p omniclaw-cli -p omniclaw-desktop`)".to_string(),
            )
        })
    }
}

/// How a gateway run by `owner` is restarted onto the installed binary.
fn restart_fix(profile: &str, owner: Option<Owner>) -> String {
    let cmd = command_of(profile);
    match owner {
        Some(Owner::Service) => format!("restart it: `{cmd} gateway restart`"),
        Some(Owner::Embedded) => format!(
            "restart it from the tray (its submenu's Restart) or `{cmd} gateway restart`; an app older than this omniclaw is restarted by quitting and starting it"
        ),
        Some(Owner::Cli) | None => format!(
            "stop it (Ctrl+C in its terminal, or `{cmd} gateway stop`) and start it again: `{cmd} gateway`"
        ),
    }
}

/// `omniclaw X · app Y`, with the running gateway's first when given: the
/// versions side by side, as `status` and `gateway status` show them.
pub fn side_by_side(gateway: Option<&str>, app: Option<&App>) -> String {
    let mut parts = Vec::new();
    if let Some(g) = gateway {
        parts.push(format!("gateway {g}"));
    }
    parts.push(format!("omniclaw {VERSION}"));
    parts.push(match app {
        Some(a) => format!("app {}", a.version.as_deref().unwrap_or("?")),
        None => "app not installed beside omniclaw".into(),
    });
    parts.join(" · ")
}

/// The desktop app installed with this `omniclaw`, if there is one (see
/// [`omniclaw_os::executable::beside`]).
pub fn app(ctx: &Ctx) -> Option<App> {
    let path_var = ctx.env.get("PATH").map(std::ffi::OsStr::new);
    let path = omniclaw_os::executable::beside("omniclaw-desktop", path_var, ctx.cwd.as_deref())?;
    Some(App {
        version: version::of_program(&path, "omniclaw-desktop"),
        path,
    })
}

/// Every profile whose gateway runs now, asked for its version.
pub fn running(ctx: &Ctx) -> Result<Vec<Running>, CliError> {
    let current = ctx.resolve()?;
    let inv = ctx.inventory(&current)?;
    let mut out = Vec::new();
    for p in &inv.profiles {
        let Some(holder) = InstanceLock::probe(&p.state_dir.join("gateway.lock"))
            .ok()
            .flatten()
        else {
            continue;
        };
        let version = match ctx
            .resolve_profile(&p.label)
            .and_then(|r| Target::for_resolved(ctx, r, &Default::default()))
        {
            Ok(t) => ask_version(&t),
            Err(e) => Err(e.to_string()),
        };
        out.push(Running {
            profile: p.label.clone(),
            owner: holder.owner,
            pid: holder.pid,
            version,
        });
    }
    Ok(out)
}

/// The version a gateway's `hello-ok` reports.
pub fn ask_version(t: &Target) -> Result<String, String> {
    let auth = t.auth.clone().map_err(|e| e.to_string())?;
    let reached = runtime()
        .map_err(|e| e.to_string())?
        .block_on(super::status::probe(&t.url(), auth, "cli"))
        .map_err(|e| e.to_string())?;
    version::from_hello(&reached.hello).ok_or_else(|| "its hello-ok names no version".into())
}

/// `omniclaw --version`: this CLI's version first (the line scripts read),
/// then the app beside it and every running gateway, each flagged when out
/// of step. Exit 1 when anything is.
pub fn print(ctx: &Ctx) -> Result<bool, CliError> {
    let app = app(ctx);
    let running = running(ctx)?;
    let mut problems: Vec<String> = app.iter().filter_map(App::out_of_step).collect();
    problems.extend(running.iter().filter_map(Running::out_of_step));
    if ctx.json {
        crate::out::json(&json!({
            "ok": problems.is_empty(),
            "omniclaw": VERSION,
            "app": app.as_ref().map(|a| json!({
                "path": a.path,
                "version": a.version.as_ref().ok(),
                "error": a.version.as_ref().err(),
            })),
            "gateways": running.iter().map(Running::json).collect::<Vec<_>>(),
            "problems": problems,
        }));
        return Ok(problems.is_empty());
    }
    println!("omniclaw {VERSION}");
    match &app {
        Some(a) => match &a.version {
            Ok(v) => println!("  app      {v} ({})", a.path.display()),
            Err(e) => println!("  app      ? ({e})"),
        },
        None => println!("  app      not installed beside this omniclaw"),
    }
    for r in &running {
        let owner = r.owner.map_or("unknown owner", Owner::as_str);
        match &r.version {
            Ok(v) => println!(
                "  gateway  {v} (profile {}, {owner}, pid {})",
                r.profile, r.pid
            ),
            Err(e) => println!(
                "  gateway  ? (profile {}, {owner}, pid {}: {e})",
                r.profile, r.pid
            ),
        }
    }
    for p in &problems {
        println!("warning: {p}");
    }
    Ok(problems.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running(owner: Option<Owner>, version: &str) -> Running {
        Running {
            profile: "rescue".into(),
            owner,
            pid: 7,
            version: Ok(version.into()),
        }
    }

    #[test]
    fn a_gateway_in_step_says_nothing() {
        assert_eq!(running(Some(Owner::Service), VERSION).out_of_step(), None);
        let unknown = Running {
            version: Err("refused".into()),
            ..running(None, VERSION)
        };
        assert_eq!(unknown.out_of_step(), None, "unknown is not out of step");
    }

    #[test]
    fn each_owner_gets_its_own_restart() {
        let cases = [
            (
                Some(Owner::Service),
                "`omniclaw --profile rescue gateway restart`",
            ),
            (Some(Owner::Embedded), "from the tray"),
            (Some(Owner::Cli), "Ctrl+C in its terminal"),
            (None, "`omniclaw --profile rescue gateway`"),
        ];
        for (owner, fix) in cases {
            let said = running(owner, "0.0.1").out_of_step().expect("out of step");
            assert!(
                said.starts_with(
                    "the gateway of profile rescue runs OmniClaw 0.0.1, this omniclaw is"
                ),
                "{said}"
            );
            assert!(said.contains(fix), "{owner:?}: {said}");
        }
    }
}
