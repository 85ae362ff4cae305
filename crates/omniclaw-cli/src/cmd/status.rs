//! `status` (every profile), `gateway status` (this profile, with an RPC
//! probe) and `health` (this profile's `health` method).

use std::path::Path;
use std::time::Instant;

use serde_json::{json, Value};

use omniclaw_gateway::client::{Client, RpcError};
use omniclaw_gateway::Auth;
use omniclaw_os::lock::InstanceLock;
use omniclaw_os::profiles::ConfigState;

use crate::cli::{ConnectArgs, GatewayStatusArgs};
use crate::ctx::Ctx;
use crate::out::{self, CliError, CmdResult, Outcome};

use super::audit::Audit;
use super::ports::print_problems;
use super::target::{runtime, Target};

pub struct Reached {
    pub hello: Value,
    pub health: Option<Value>,
    pub millis: f64,
}

impl Reached {
    fn snapshot(&self, key: &str) -> Option<&str> {
        self.hello
            .pointer(&format!("/snapshot/{key}"))
            .and_then(Value::as_str)
    }
}

/// Connects to `url`, reads `hello-ok`, and calls `health`.
pub async fn probe(url: &str, auth: Auth, mode: &str) -> Result<Reached, RpcError> {
    let start = Instant::now();
    let mut opts = omniclaw_gateway::client::ConnectOptions::new(auth, &["operator.read"]);
    opts.mode = mode.to_string();
    opts.timeout = std::time::Duration::from_secs(3);
    let client = Client::connect_with(url, opts).await?;
    let health = client.call("health", json!({})).await.ok();
    let hello = client.hello().clone();
    client.close().await;
    Ok(Reached {
        hello,
        health,
        millis: start.elapsed().as_secs_f64() * 1000.0,
    })
}

/// `gateway status`: this profile's gateway, whether it runs, and whether the
/// one answering on its port is really it.
pub fn gateway_status(ctx: &Ctx, args: &GatewayStatusArgs) -> CmdResult {
    let conn = &args.conn;
    let t = Target::load(ctx, conn)?;
    let r = &t.resolved;
    // The service manager's view: a profile under its service is started
    // and stopped through it, never as a second copy. Asked first, so a bad
    // OMNICLAW_SERVICE_MANAGER is refused before anything is probed.
    let service = super::service::status_section(ctx, r)?;
    let deep = match args.deep {
        true => Some(super::service::deep_section(ctx, r)?),
        false => None,
    };
    let holder = InstanceLock::probe(&r.lock_path()).ok().flatten();
    let url = t.url();
    // A profile that was never set up and is not running has nothing to
    // probe, and no credentials to probe with (given ones are used).
    let unset = matches!(t.config, ConfigState::Missing) && holder.is_none() && t.auth.is_err();
    let probe = match &t.auth {
        Ok(auth) => Some(runtime()?.block_on(probe(&url, auth.clone(), "cli"))),
        Err(_) => None,
    };
    let mut warnings = Vec::new();
    if let Some(Ok(reached)) = &probe {
        let cfg = reached.snapshot("configPath").map(Path::new);
        let state = reached.snapshot("stateDir").map(Path::new);
        if cfg != Some(r.config_path.as_path()) || state != Some(r.state_dir.as_path()) {
            warnings.push(format!(
                "the gateway on port {} serves config {} and state dir {}, not what this shell resolves ({} and {}): another profile, or a different OMNICLAW_STATE_DIR/OMNICLAW_CONFIG_PATH",
                t.layout.port,
                cfg.map_or("?".into(), |p| r.display(p)),
                state.map_or("?".into(), |p| r.display(p)),
                r.display(&r.config_path),
                r.display(&r.state_dir),
            ));
        }
    }
    match &t.auth {
        Err(e) if !unset => warnings.push(format!("cannot authenticate to probe it: {e}")),
        _ => {}
    }
    let reachable = matches!(probe, Some(Ok(_)));
    warnings.extend(service.warnings.iter().cloned());
    if let Some(d) = &deep {
        warnings.extend(d.warnings.iter().cloned());
    }
    // Not running is a problem for a set-up profile, not for one never set up.
    let ok = (reachable || unset) && warnings.is_empty();
    let config_state = config_word(&t.config);
    if ctx.json {
        out::json(&json!({
            "ok": ok,
            "profile": r.profile.name(),
            "configPath": r.config_path,
            "stateDir": r.state_dir,
            "config": config_state,
            "running": holder.as_ref().map(|h| json!({"pid": h.pid, "owner": h.owner.map(|o| o.as_str())})),
            "port": t.layout.port,
            "url": url,
            "rpc": probe.as_ref().map(|p| match p {
                Ok(reached) => json!({"ok": true, "millis": reached.millis, "health": reached.health, "server": reached.hello.get("server")}),
                Err(e) => json!({"ok": false, "error": e.to_string()}),
            }),
            "service": service.json,
            "services": deep.as_ref().map(|d| &d.json),
            "warnings": warnings,
        }));
    } else {
        println!("profile {}", r.profile);
        println!("  config   {} ({config_state})", r.display(&r.config_path));
        match &holder {
            Some(h) => println!(
                "  state    running (pid {}, {})",
                h.pid,
                h.owner.map_or("unknown owner", |o| o.as_str())
            ),
            None => println!("  state    not running"),
        }
        println!("  port     {} ({url})", t.layout.port);
        if unset {
            println!(
                "  rpc      not probed: the profile is not set up (`{} setup` sets it up)",
                super::setup::command(r)
            );
        }
        if let Some(p) = &probe {
            match p {
                Ok(reached) => println!(
                    "  rpc      ok, health {} ({:.1} ms)",
                    if reached.health.as_ref().and_then(|h| h.get("ok")) == Some(&json!(true)) {
                        "ok"
                    } else {
                        "not ok"
                    },
                    reached.millis
                ),
                Err(e) => println!("  rpc      {e}"),
            }
        }
        for line in &service.lines {
            println!("{line}");
        }
        if let Some(d) = &deep {
            for line in &d.lines {
                println!("{line}");
            }
        }
        for w in &warnings {
            println!("warning: {w}");
        }
    }
    Ok(if ok { Outcome::Ok } else { Outcome::Problem })
}

/// `health`: the running gateway's `health` payload; exit 1 unless it says ok.
pub fn health(ctx: &Ctx, conn: &ConnectArgs) -> CmdResult {
    let t = Target::load(ctx, conn)?;
    let auth = t.auth.clone().map_err(CliError::usage)?;
    let url = t.url();
    let reached = runtime()?.block_on(probe(&url, auth, "cli")).map_err(|e| {
        CliError::failed(format!(
            "gateway of profile {} at {url}: {e}",
            t.resolved.profile
        ))
    })?;
    let health = reached.health.unwrap_or(Value::Null);
    let ok = health.get("ok") == Some(&json!(true));
    if ctx.json {
        out::json(
            &json!({"ok": ok, "profile": t.resolved.profile.name(), "url": url, "health": health}),
        );
    } else {
        println!(
            "{} gateway of profile {} at {url}: {} ({:.1} ms)",
            if ok { "✓" } else { "✗" },
            t.resolved.profile,
            if ok { "healthy" } else { "unhealthy" },
            reached.millis
        );
        if let Some(obj) = health.as_object() {
            for (k, v) in obj.iter().filter(|(k, _)| k.as_str() != "ok") {
                println!("  {k}: {v}");
            }
        }
    }
    Ok(if ok { Outcome::Ok } else { Outcome::Problem })
}

/// `status`: every profile at a glance, then the conflicts.
pub fn run(ctx: &Ctx) -> CmdResult {
    let a = Audit::run(ctx)?;
    let mut rows = Vec::new();
    let mut list = Vec::new();
    let mut bad_config = false;
    let mut channels = Vec::new();
    for p in &a.inv.profiles {
        let base = a
            .plan
            .rows
            .iter()
            .find(|r| r.instance == p.label && r.surface == omniclaw_core::ports::Surface::Gateway)
            .map(|r| r.range.start());
        let holder = InstanceLock::probe(&p.state_dir.join("gateway.lock"))
            .ok()
            .flatten();
        // A running gateway may listen elsewhere than its config says; the
        // plan has it where it runs.
        let moved = p.moved();
        let state = match &holder {
            Some(h) => format!(
                "running · {} (pid {})",
                h.owner.map_or("unknown", |o| o.as_str()),
                h.pid
            ),
            None => "stopped".to_string(),
        };
        // The channel state file is the running gateway's; a stopped one's is stale.
        let telegram = holder
            .as_ref()
            .and_then(|_| omniclaw_os::rescue::read_channel_status(&p.state_dir));
        if let Some(summary) = telegram.as_ref().and_then(|t| t["summary"].as_str()) {
            channels.push(format!("{}: Telegram {summary}", p.label));
        }
        let config = config_word(&p.config);
        bad_config |= matches!(
            p.config,
            ConfigState::Invalid { .. } | ConfigState::Unreadable(_)
        );
        rows.push(vec![
            p.label.clone(),
            state.clone(),
            match (base, moved) {
                (Some(_), Some((live, configured))) => format!("{live} (config: {configured})"),
                (Some(b), None) => b.to_string(),
                (None, _) => "–".into(),
            },
            config.to_string(),
            omniclaw_core::paths::tilde(&p.state_dir, &a.inv.home),
        ]);
        list.push(json!({
            "profile": p.label,
            "current": p.is_current,
            "running": holder.as_ref().map(|h| json!({"pid": h.pid, "owner": h.owner.map(|o| o.as_str())})),
            "port": base,
            "configuredPort": moved.map(|(_, configured)| configured),
            "config": config,
            "configPath": p.config_path,
            "stateDir": p.state_dir,
            "workspace": p.workspace,
            // Where `{"source": "keychain"}` references of this profile lead.
            "secrets": if omniclaw_os::secrets::uses_file(&p.state_dir) { "file" } else { "keychain" },
            "telegram": telegram,
        }));
    }
    for f in &a.inv.foreign {
        let base = a
            .plan
            .rows
            .iter()
            .find(|r| r.instance == f.label && r.surface == omniclaw_core::ports::Surface::Gateway)
            .map(|r| r.range.start());
        rows.push(vec![
            f.label.clone(),
            "openclaw (not managed)".into(),
            base.map_or("–".into(), |b| b.to_string()),
            if f.problem.is_some() {
                "unreadable"
            } else {
                "foreign"
            }
            .into(),
            omniclaw_core::paths::tilde(&f.dir, &a.inv.home),
        ]);
        list.push(
            json!({"profile": f.label, "foreign": true, "port": base, "configPath": f.config_path}),
        );
    }
    let ok = a.is_clean() && !bad_config;
    if ctx.json {
        out::json(&json!({"ok": ok, "profiles": list, "problems": a.problems_json()}));
    } else {
        if rows.is_empty() {
            println!("No profiles yet: run `omniclaw setup` or `omniclaw --profile NAME setup`.");
        } else {
            print!(
                "{}",
                out::table(&["PROFILE", "STATE", "PORT", "CONFIG", "STATE DIR"], &rows)
            );
        }
        for line in &channels {
            println!("{line}");
        }
        if print_problems(&a) == 0 && !bad_config {
            println!("\nNo conflicts.");
        } else if bad_config {
            println!("\nAn invalid config keeps its gateway from starting: `omniclaw doctor` lists the keys.");
        }
    }
    Ok(if ok { Outcome::Ok } else { Outcome::Problem })
}

fn config_word(state: &ConfigState) -> &'static str {
    match state {
        ConfigState::Valid { .. } => "valid",
        ConfigState::Invalid { .. } => "invalid",
        ConfigState::Missing => "missing",
        ConfigState::Unreadable(_) => "unreadable",
    }
}
