//! `status` (every profile, or the one given), `gateway status` (this
//! profile, with an RPC probe) and `health` (this profile's `health`
//! method). Text output is a `Report` of the core: a headline and one line
//! per fact, never a wire payload.

use std::path::Path;
use std::time::Instant;

use serde_json::{json, Value};

use omniclaw_core::paths::Source;
use omniclaw_core::report::{self, Mark, Report};
use omniclaw_gateway::client::{Client, RpcError};
use omniclaw_gateway::profile::SpecError;
use omniclaw_gateway::Auth;
use omniclaw_os::lock::InstanceLock;
use omniclaw_os::profiles::ConfigState;

use crate::cli::{ConnectArgs, GatewayStatusArgs};
use crate::ctx::Ctx;
use crate::out::{self, CliError, CmdResult, Outcome};

use super::audit::{command_of, Audit, Problem};
use super::ports::print_list;
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

/// The caller's clock, for "last applied 12 s ago".
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Why there are no credentials to present. A store that cannot be read
/// right now (a locked keychain) is a problem that may pass (exit 1); a
/// secret that is not stored or a bad reference is bad input (exit 2).
fn auth_error(e: &SpecError) -> CliError {
    match e {
        SpecError::Store { .. } => CliError::failed(e),
        other => CliError::usage(other),
    }
}

/// Whether the health payload says ok.
fn healthy(health: Option<&Value>) -> bool {
    health.and_then(|h| h.get("ok")) == Some(&json!(true))
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
    let service = super::service::status_section(ctx, r, args.deep)?;
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
    // A remote gateway serves its own machine's paths.
    if let Some(Ok(reached)) = probe.as_ref().filter(|_| t.remote.is_none()) {
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
    let app = super::versions::app(ctx);
    warnings.extend(app.as_ref().and_then(super::versions::App::out_of_step));
    let version = match &probe {
        Some(Ok(reached)) => omniclaw_os::version::from_hello(&reached.hello),
        _ => None,
    };
    if let (Some(v), Some(h)) = (&version, &holder) {
        let running = super::versions::Running {
            profile: r.profile.name().to_string(),
            owner: h.owner,
            pid: h.pid,
            version: Ok(v.clone()),
        };
        warnings.extend(running.out_of_step());
    }
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
            "port": t.remote.is_none().then_some(t.layout.port),
            "remote": t.remote.is_some(),
            "url": url,
            "rpc": probe.as_ref().map(|p| match p {
                Ok(reached) => json!({"ok": true, "millis": reached.millis, "health": reached.health, "server": reached.hello.get("server")}),
                Err(e) => json!({"ok": false, "error": e.to_string()}),
            }),
            "service": service.json,
            "services": deep.as_ref().map(|d| &d.json),
            "warnings": warnings,
        }));
        return Ok(if ok { Outcome::Ok } else { Outcome::Problem });
    }
    let state = match &holder {
        Some(h) => format!(
            "running (pid {}, {})",
            h.pid,
            h.owner.map_or("unknown owner", |o| o.as_str())
        ),
        None if unset => "not set up".to_string(),
        None if t.remote.is_some() => "remote (gateway.mode), not run here".to_string(),
        None => "not running".to_string(),
    };
    let mark = match (ok, reachable) {
        (true, _) => Mark::Ok,
        (false, true) => Mark::Warn,
        (false, false) => Mark::Fail,
    };
    let mut rep = Report::new(mark, format!("profile {}: {state}", r.profile));
    rep.line(
        "config",
        format!("{} ({config_state})", r.display(&r.config_path)),
    );
    match &t.remote {
        Some(_) => rep.line("url", format!("{url} (gateway.remote.url)")),
        None => rep.line("port", format!("{} ({url})", t.layout.port)),
    };
    if unset {
        rep.line(
            "rpc",
            format!(
                "not probed: the profile is not set up (`{} setup` sets it up)",
                super::setup::command(r)
            ),
        );
    }
    let mut refused = Vec::new();
    if let Some(p) = &probe {
        match p {
            Ok(reached) => {
                let health = reached.health.as_ref();
                let last_error = health
                    .and_then(|h| h.pointer("/reload/lastError"))
                    .and_then(Value::as_str);
                refused = last_error.map(report::refusal_lines).unwrap_or_default();
                rep.line(
                    "rpc",
                    format!(
                        "ok, {} ({:.1} ms)",
                        match (healthy(health), refused.is_empty()) {
                            (true, true) => "healthy",
                            (true, false) => "healthy, serving the last good config",
                            (false, _) => "unhealthy (`health` says why)",
                        },
                        reached.millis
                    ),
                );
                // Seven letters, as the widest other label: the
                // column stays where scripts and people expect it.
                rep.line(
                    "version",
                    super::versions::side_by_side(
                        Some(version.as_deref().unwrap_or("?")),
                        app.as_ref(),
                    ),
                );
            }
            Err(e) => {
                rep.line("rpc", e.to_string());
            }
        }
    }
    // The config on disk names the keys even when no gateway answers.
    if let (Some(_), ConfigState::Invalid { errors, .. }) = (&holder, &t.config) {
        refused = errors
            .diagnostics()
            .iter()
            .map(ToString::to_string)
            .collect();
    }
    if !refused.is_empty() {
        rep.mark = rep.mark.max(Mark::Warn);
    }
    rep.line("edit refused", refused.join("\n"));
    for line in &service.lines {
        rep.line("service", line.as_str());
    }
    print!("{}", rep.render());
    if let Some(d) = &deep {
        for line in &d.lines {
            println!("{line}");
        }
    }
    for w in &warnings {
        println!("warning: {w}");
    }
    Ok(if ok { Outcome::Ok } else { Outcome::Problem })
}

/// `health`: the running gateway's `health` payload; exit 1 unless it says ok.
pub fn health(ctx: &Ctx, conn: &ConnectArgs) -> CmdResult {
    let t = Target::load(ctx, conn)?;
    let auth = t.auth.clone().map_err(|e| auth_error(&e))?;
    let url = t.url();
    let reached = runtime()?.block_on(probe(&url, auth, "cli")).map_err(|e| {
        CliError::failed(format!(
            "gateway of profile {} at {url}: {e}",
            t.resolved.profile
        ))
    })?;
    let health = reached.health.unwrap_or(Value::Null);
    let ok = healthy(Some(&health));
    if ctx.json {
        out::json(
            &json!({"ok": ok, "profile": t.resolved.profile.name(), "url": url, "health": health}),
        );
    } else {
        let who = format!("gateway of profile {} at {url}", t.resolved.profile);
        print!(
            "{}",
            report::health(&who, reached.millis, &health, now_ms()).render()
        );
    }
    Ok(if ok { Outcome::Ok } else { Outcome::Problem })
}

/// `status`: every profile at a glance (or, when a profile is given with
/// `--profile`, `OMNICLAW_PROFILE` or a state dir variable, that one), then
/// what needs attention: a config that does not validate (naming its keys;
/// a running gateway keeps its last good one), a Telegram channel that
/// does not poll, conflicts. Exit 1 when any of that is found.
pub fn run(ctx: &Ctx) -> CmdResult {
    let a = Audit::run(ctx)?;
    let only = match a.inv.current() {
        _ if a.resolved.profile_source == Source::Default => None,
        Some(c) if c.set_up => Some(c.label.clone()),
        _ => return not_set_up(ctx, &a),
    };
    let shown = |label: &str| only.as_deref().is_none_or(|o| o == label);
    // Each running gateway's version, from its hello-ok.
    let versions: std::collections::HashMap<String, super::versions::Running> =
        super::versions::running(ctx)
            .unwrap_or_default()
            .into_iter()
            .map(|r| (r.profile.clone(), r))
            .collect();
    let mut rows = Vec::new();
    let mut list = Vec::new();
    // What needs attention, by profile: (label, text, fix).
    let mut notes: Vec<(String, String, String)> = Vec::new();
    let mut infos: Vec<(String, String)> = Vec::new();
    for p in a.inv.profiles.iter().filter(|p| shown(&p.label)) {
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
        // plan has it where it runs. An invalid config says no port.
        let moved = p.moved().filter(|_| p.config.is_valid());
        let version = holder
            .as_ref()
            .and_then(|_| versions.get(&p.label))
            .and_then(|r| r.version.as_ref().ok());
        let state = match &holder {
            Some(h) => format!(
                "running · {} (pid {}){}",
                h.owner.map_or("unknown", |o| o.as_str()),
                h.pid,
                version.map_or(String::new(), |v| format!(" · {v}"))
            ),
            None if remote_mode(&p.config) => "remote (gateway.mode): see below".to_string(),
            None => "stopped".to_string(),
        };
        if let Some((what, fix)) = holder
            .as_ref()
            .and_then(|_| versions.get(&p.label))
            .and_then(super::versions::Running::gap)
        {
            notes.push((p.label.clone(), what, fix));
        }
        // The channel state file is the running gateway's; a stopped one's is stale.
        let telegram = holder
            .as_ref()
            .and_then(|_| omniclaw_os::rescue::read_channel_status(&p.state_dir));
        if let Some(t) = &telegram {
            let summary = t["summary"].as_str().unwrap_or("no state");
            match t["state"].as_str() {
                Some("running" | "starting" | "stopped") => {
                    infos.push((p.label.clone(), format!("Telegram {summary}")));
                }
                _ => notes.push((
                    p.label.clone(),
                    format!("Telegram {summary}"),
                    format!("`{} logs` shows each attempt", command_of(&p.label)),
                )),
            }
        }
        // A running rescue's watch: one line per target it watches
        // ("main — down · rescue repairing (2/3)").
        let watch = holder
            .as_ref()
            .and_then(|_| omniclaw_os::rescue::read_watch_state(&p.state_dir));
        for w in watch.iter().flat_map(omniclaw_os::rescue::watched_of) {
            infos.push((p.label.clone(), format!("watch: {}", w.summary)));
        }
        let spend = spend_today(&p.state_dir, &p.config);
        if let Some(s) = &spend {
            infos.push((
                p.label.clone(),
                format!("assistant today: {}", report::spend_text(s)),
            ));
        }
        let config = config_word(&p.config);
        let refused = match &p.config {
            ConfigState::Invalid { errors, .. } => {
                let file = omniclaw_core::paths::tilde(&p.config_path, &a.inv.home);
                let cmd = command_of(&p.label);
                let good = omniclaw_gateway::reload::last_good_path(&p.config_path).is_file();
                let fix = format!(
                    "correct {} in {file} (`{cmd} config validate` lists {}){}",
                    if errors.diagnostics().len() == 1 {
                        "the key"
                    } else {
                        "the keys"
                    },
                    if errors.diagnostics().len() == 1 {
                        "it"
                    } else {
                        "them"
                    },
                    if good {
                        format!(", or go back to the last good config: `{cmd} config rollback`")
                    } else {
                        String::new()
                    }
                );
                notes.push((
                    p.label.clone(),
                    report::invalid_config(holder.is_some(), errors),
                    fix,
                ));
                Some(errors.diagnostics())
            }
            ConfigState::Unreadable(_) => {
                // The audit's unknown-ports problem says why, with its fix.
                None
            }
            _ => None,
        };
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
            "running": holder.as_ref().map(|h| json!({"pid": h.pid, "owner": h.owner.map(|o| o.as_str()), "version": version})),
            "port": base,
            "configuredPort": moved.map(|(_, configured)| configured),
            "config": config,
            "configPath": p.config_path,
            "stateDir": p.state_dir,
            "workspace": p.workspace,
            // Where `{"source": "keychain"}` references of this profile lead.
            "secrets": if omniclaw_os::secrets::uses_file(&p.state_dir) { "file" } else { "keychain" },
            "telegram": telegram,
            "watch": watch,
            "spendToday": spend,
            // The keys its config on disk fails on: for a running gateway,
            // the edit it refused.
            "configErrors": refused.map(|d| d.iter().map(|d| json!({"path": d.path, "message": d.message, "line": d.line, "col": d.col})).collect::<Vec<_>>()),
        }));
    }
    if only.is_none() {
        for f in &a.inv.foreign {
            let base = a
                .plan
                .rows
                .iter()
                .find(|r| {
                    r.instance == f.label && r.surface == omniclaw_core::ports::Surface::Gateway
                })
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
    }
    let mut problems = a.problems();
    problems.extend(super::watchers::problems(&a, &ctx.env, &ctx.store));
    let problems: Vec<Problem> = problems
        .into_iter()
        .filter(|p| only.as_deref().is_none_or(|o| p.concerns(o)))
        .collect();
    let app = super::versions::app(ctx);
    if let Some((what, fix)) = app.as_ref().and_then(super::versions::App::gap) {
        notes.push(("app".into(), what, fix));
    }
    // Remote gateways are listed, marked remote; they live elsewhere, so
    // one that is down is shown, not counted as a problem of this machine.
    // A remotes file that cannot be read is one, and hides no profile.
    let configured: Vec<_> = super::remote::configured(ctx, &a.inv, &a.resolved)
        .into_iter()
        .filter(|(r, _)| shown(&r.name))
        .collect();
    let remotes = if only.is_none() {
        super::remote::probe_all(ctx, &a.inv.home, configured).unwrap_or_else(|e| {
            notes.push((
                "remotes".into(),
                e.message().to_string(),
                "`omniclaw remote list` shows the same error".into(),
            ));
            Vec::new()
        })
    } else {
        super::remote::probe_configured(&a.inv.home, configured)
    };
    let ok = problems.is_empty() && notes.is_empty();
    if ctx.json {
        out::json(&json!({
            "ok": ok,
            "versions": {
                "omniclaw": super::versions::VERSION,
                "app": app.as_ref().and_then(|a| a.version.as_ref().ok()),
            },
            "profiles": list,
            "remotes": remotes.iter().map(super::remote::Probed::to_json).collect::<Vec<_>>(),
            "attention": notes.iter().map(|(p, text, fix)| json!({"profile": p, "message": text, "fix": fix})).collect::<Vec<_>>(),
            "problems": problems.iter().map(Problem::to_json).collect::<Vec<_>>(),
        }));
        return Ok(if ok { Outcome::Ok } else { Outcome::Problem });
    }
    if rows.is_empty() {
        println!("No profiles yet: run `omniclaw setup` or `omniclaw --profile NAME setup`.");
    } else {
        print!(
            "{}",
            out::table(&["PROFILE", "STATE", "PORT", "CONFIG", "STATE DIR"], &rows)
        );
    }
    if !remotes.is_empty() {
        println!();
        print!("{}", super::remote::table(&remotes));
    }
    if !infos.is_empty() || !notes.is_empty() {
        let n = notes.len();
        let mut rep = if n == 0 {
            Report::new(Mark::Ok, "Going on")
        } else {
            Report::new(
                Mark::Warn,
                format!("{n} thing{} to look at:", if n == 1 { "" } else { "s" }),
            )
        };
        for (label, text) in &infos {
            rep.line(label.as_str(), text.as_str());
        }
        for (label, text, fix) in &notes {
            rep.line(label.as_str(), format!("{text}\nfix: {fix}"));
        }
        print!("\n{}", rep.render());
    }
    if print_list(&problems) == 0 && notes.is_empty() && !rows.is_empty() {
        println!("\nNo conflicts.");
    }
    println!(
        "\nVersions: {}",
        super::versions::side_by_side(None, app.as_ref())
    );
    Ok(if ok { Outcome::Ok } else { Outcome::Problem })
}

/// Today's tokens and spend of a profile's assistant (since local
/// midnight), read from its session store beside a running gateway; `None`
/// when it has no store yet.
fn spend_today(state_dir: &std::path::Path, config: &ConfigState) -> Option<serde_json::Value> {
    use omniclaw_agent::clock::{local_day, Clock, SystemClock};
    use omniclaw_agent::session::SessionStore;
    let clock = std::sync::Arc::new(SystemClock);
    let path = omniclaw_gateway::assistant::store_path(state_dir);
    let store = omniclaw_agent::store::SqliteStore::open_read_only(&path, clock.clone()).ok()??;
    let (start, next) = local_day(clock.as_ref(), clock.now_ms());
    let cap = match config {
        ConfigState::Valid { loaded, .. } => loaded.config.agent().budget.daily_usd,
        _ => None,
    };
    Some(match store.spend_since(start) {
        Ok(s) => {
            json!({"tokens": s.tokens, "usd": (s.usd * 1e6).round() / 1e6, "dailyUsd": cap, "resetsAtMs": next})
        }
        Err(e) => json!({"error": e.to_string(), "dailyUsd": cap}),
    })
}

/// `status` of a profile that is given but not set up.
fn not_set_up(ctx: &Ctx, a: &Audit) -> CmdResult {
    let r = &a.resolved;
    let cmd = super::setup::command(r);
    let message = format!(
        "profile {} is not set up: `{cmd} setup` sets it up (`omniclaw status` shows every profile)",
        r.profile
    );
    if ctx.json {
        out::json(
            &json!({"ok": false, "profiles": [], "attention": [{"profile": r.profile.name(), "message": message}], "problems": []}),
        );
    } else {
        println!("{message}");
    }
    Ok(Outcome::Problem)
}

/// Whether this profile points at a gateway elsewhere (`gateway.mode: "remote"`).
fn remote_mode(config: &ConfigState) -> bool {
    matches!(config, ConfigState::Valid { loaded, .. } if omniclaw_gateway::profile::remote_of(&loaded.config).is_some())
}

fn config_word(state: &ConfigState) -> &'static str {
    match state {
        ConfigState::Valid { .. } => "valid",
        ConfigState::Invalid { .. } => "invalid",
        ConfigState::Missing => "missing",
        ConfigState::Unreadable(_) => "unreadable",
    }
}
