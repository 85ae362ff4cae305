//! `omniclaw doctor`: the isolation checklist across all profiles, config
//! validity, secrets kept in plain text, and who holds the needed ports.
//! Exit 1 when any check fails (warnings alone keep exit 0).

use serde_json::json;

use omniclaw_core::config::SecretRef;
use omniclaw_core::paths;
use omniclaw_os::profiles::{ConfigState, ProfileRecord};
use omniclaw_os::secrets::{self, Scope, SecretError, SecretName, SecretStore};

use crate::cli::DoctorArgs;
use crate::ctx::Ctx;
use crate::out::{self, CmdResult, Outcome};

use super::audit::{self, Audit};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }

    fn mark(self) -> &'static str {
        match self {
            Status::Ok => "✓",
            Status::Warn => "!",
            Status::Fail => "✗",
        }
    }
}

struct Check {
    scope: String,
    name: &'static str,
    status: Status,
    message: String,
    fix: String,
}

pub fn run(ctx: &Ctx, _args: &DoctorArgs) -> CmdResult {
    let a = Audit::run(ctx)?;
    let home = &a.inv.home;
    let mut checks = Vec::new();
    for note in &a.resolved.notes {
        checks.push(Check {
            scope: a.resolved.profile.name().to_string(),
            name: "environment",
            status: Status::Warn,
            message: note.clone(),
            fix: String::new(),
        });
    }
    if let Some(o) = &a.ownership {
        checks.push(Check {
            scope: o.instance.clone(),
            name: "ownership",
            status: Status::Fail,
            message: o.message.clone(),
            fix: o.fix.clone(),
        });
    }
    for p in &a.inv.profiles {
        profile_checks(ctx, p, home, a.running.get(&p.label).copied(), &mut checks);
    }
    for f in &a.inv.foreign {
        if let Some(problem) = &f.problem {
            checks.push(Check {
                scope: f.label.clone(),
                name: "openclaw config",
                status: Status::Fail,
                message: problem.clone(),
                fix: "its ports could not be reserved; fix that file so OmniClaw can keep clear of them".into(),
            });
        }
    }
    // Who watches the watcher: a rescue that cannot look after a target.
    for r in super::watchers::problems(&a, &ctx.env, &ctx.store) {
        checks.push(Check {
            scope: r.profiles[0].clone(),
            name: "rescue",
            status: Status::Fail,
            message: r.message,
            fix: r.fix,
        });
    }
    let iso = "isolation".to_string();
    for c in &a.plan.conflicts {
        checks.push(Check {
            scope: iso.clone(),
            name: "conflict",
            status: Status::Fail,
            message: c.to_string(),
            fix: c.fix(),
        });
    }
    for e in &a.plan.errors {
        checks.push(Check {
            scope: iso.clone(),
            name: "ports",
            status: Status::Fail,
            message: e.to_string(),
            fix: e.fix(),
        });
    }
    for (r, s) in a.live_problems() {
        checks.push(Check {
            scope: iso.clone(),
            name: "port owner",
            status: Status::Fail,
            message: audit::held_message(r, s),
            fix: a.held_fix(r, s),
        });
    }
    // Gateways of other machines: a tunnel's local end is this machine's
    // port (blocked by another program, the tunnel cannot start).
    for e in a.elsewhere() {
        let (status, message, fix) = match e.blocked() {
            Some(p) => (Status::Warn, p.message, p.fix),
            None => (
                Status::Ok,
                match e.port {
                    Some(port) => format!(
                        "remote {}: its SSH tunnel's local port {port} is outside the plan ({})",
                        e.name,
                        e.now()
                    ),
                    None => format!(
                        "profile {} points at a gateway elsewhere (gateway.mode remote, {}): no port here",
                        e.name, e.target
                    ),
                },
                String::new(),
            ),
        };
        checks.push(Check {
            scope: iso.clone(),
            name: "remote",
            status,
            message,
            fix,
        });
    }
    if a.plan.conflicts.is_empty() && a.plan.errors.is_empty() && a.live_problems().next().is_none()
    {
        // Only what was compared: not a profile that is not set up, nor
        // one whose config could not be read (its own check says so).
        let n = a.compared();
        checks.push(Check {
            scope: iso,
            name: "isolation",
            status: Status::Ok,
            message: format!(
                "{n} instance{} isolated: no shared config, state dir, workspace, ports, CDP URL or bot token",
                if n == 1 { "" } else { "s" }
            ),
            fix: String::new(),
        });
    }

    let failed = checks.iter().any(|c| c.status == Status::Fail);
    if ctx.json {
        let list: Vec<_> = checks
            .iter()
            .map(|c| json!({"scope": c.scope, "check": c.name, "status": c.status.as_str(), "message": c.message, "fix": c.fix}))
            .collect();
        out::json(&json!({"ok": !failed, "checks": list}));
    } else {
        let mut scope = "";
        for c in &checks {
            if c.scope != scope {
                scope = &c.scope;
                println!("{scope}");
            }
            println!("  {} {}", c.status.mark(), c.message);
            if !c.fix.is_empty() {
                println!("    fix: {}", c.fix);
            }
        }
        let fails = checks.iter().filter(|c| c.status == Status::Fail).count();
        let warns = checks.iter().filter(|c| c.status == Status::Warn).count();
        println!(
            "\n{}",
            match (fails, warns) {
                (0, 0) => "All checks passed.".to_string(),
                (0, w) => format!("No failures, {w} warning{}.", if w == 1 { "" } else { "s" }),
                (f, w) => format!("{f} failed, {w} warning{}.", if w == 1 { "" } else { "s" }),
            }
        );
    }
    Ok(if failed {
        Outcome::Problem
    } else {
        Outcome::Ok
    })
}

fn profile_checks(
    ctx: &Ctx,
    p: &ProfileRecord,
    home: &std::path::Path,
    running: Option<u32>,
    out: &mut Vec<Check>,
) {
    let show = |path: &std::path::Path| paths::tilde(path, home);
    let cmd = if p.profile.is_default() {
        "omniclaw".to_string()
    } else {
        format!("omniclaw --profile {}", p.profile)
    };
    let mut push = |name, status, message: String, fix: String| {
        out.push(Check {
            scope: p.label.clone(),
            name,
            status,
            message,
            fix,
        })
    };
    match &p.config {
        ConfigState::Valid { loaded, .. } => {
            push(
                "config",
                Status::Ok,
                format!("config valid ({})", show(&p.config_path)),
                String::new(),
            );
            for warning in loaded.warnings() {
                push(
                    "config",
                    Status::Warn,
                    format!("config warning: {warning}"),
                    format!("`{cmd} config validate` lists every warning"),
                );
            }
            for (key, secret) in loaded.config.secrets() {
                if let SecretRef::Plain(_) = secret {
                    push(
                        "secrets",
                        Status::Warn,
                        format!("{key} is stored in plain text in {}", show(&p.config_path)),
                        format!(
                            "`{cmd} doctor --fix` moves it into the secret store (or put it in an environment variable: {cmd} config set {key} '\"${{VAR}}\"')"
                        ),
                    );
                }
            }
        }
        ConfigState::Invalid { errors, value, .. } => {
            let list: Vec<String> = errors
                .diagnostics()
                .iter()
                .map(|d| format!("      {d}"))
                .collect();
            // `config set` refuses a file that does not parse: only an
            // edit of the text helps there.
            let fix = match (value, errors.diagnostics().first()) {
                (None, Some(d)) => format!(
                    "edit {} at line {}, column {}; check with `{cmd} config validate`",
                    show(&p.config_path),
                    d.line,
                    d.col
                ),
                _ => format!("edit the keys listed, or `{cmd} config set PATH VALUE`; check with `{cmd} config validate`"),
            };
            push(
                "config",
                Status::Fail,
                format!(
                    "config {} is invalid; the gateway will refuse to start:\n{}",
                    show(&p.config_path),
                    list.join("\n")
                ),
                fix,
            );
        }
        ConfigState::Missing if !p.set_up => push(
            "config",
            Status::Warn,
            format!("not set up yet (no {})", show(&p.config_path)),
            format!("{cmd} setup"),
        ),
        ConfigState::Missing => push(
            "config",
            Status::Fail,
            format!("config {} is missing", show(&p.config_path)),
            format!("{cmd} setup"),
        ),
        ConfigState::Unreadable(msg) => {
            let shown = show(&p.config_path);
            let (message, fix) = match omniclaw_os::profiles::read_failure(&p.config_path) {
                Some(failure) => (
                    failure.what(&shown),
                    audit::unreadable_fix(&failure, &shown, &p.label),
                ),
                None => (
                    msg.clone(),
                    format!("check it again with `{cmd} config validate`"),
                ),
            };
            push("config", Status::Fail, message, fix)
        }
    }
    if p.set_up {
        let (status, message, fix) = secret_store(ctx, p, &show, &cmd);
        push("secret store", status, message, fix);
        let mode = dir_mode(&p.state_dir);
        match mode {
            Some(m) if m & 0o077 != 0 => push(
                "state dir",
                Status::Warn,
                format!(
                    "state dir {} is open to other users (mode {m:o})",
                    show(&p.state_dir)
                ),
                format!("chmod 700 {}", p.state_dir.display()),
            ),
            _ => push(
                "state dir",
                Status::Ok,
                format!("state dir {}", show(&p.state_dir)),
                String::new(),
            ),
        }
        if p.workspace.is_dir() {
            push(
                "workspace",
                Status::Ok,
                format!("workspace {}", show(&p.workspace)),
                String::new(),
            );
        } else {
            push(
                "workspace",
                Status::Warn,
                format!("workspace {} does not exist", show(&p.workspace)),
                format!("{cmd} setup (creates it)"),
            );
        }
    }
    if let Some(pid) = running {
        push(
            "gateway",
            Status::Ok,
            format!("gateway running (pid {pid})"),
            String::new(),
        );
    }
}

/// Where the profile's secrets live, and whether they can be reached: the
/// 0600 file (checked for its mode), or the OS keychain (asked for the
/// gateway token, so an unreachable keychain is never reported as fine).
fn secret_store(
    ctx: &Ctx,
    p: &ProfileRecord,
    show: &dyn Fn(&std::path::Path) -> String,
    cmd: &str,
) -> (Status, String, String) {
    let scope = Scope::new(p.profile.name(), p.state_dir.clone());
    let file = scope.secrets_file();
    if secrets::uses_file(&p.state_dir) {
        return match file_mode(&file) {
            Some(m) if m & 0o077 != 0 => (
                Status::Fail,
                format!(
                    "secrets in {} are readable by other users (mode {m:o})",
                    show(&file)
                ),
                format!("chmod 600 {}", file.display()),
            ),
            _ => (
                Status::Ok,
                format!("secrets in {} (mode 0600)", show(&file)),
                String::new(),
            ),
        };
    }
    let in_keychain = match &p.config {
        ConfigState::Valid { loaded, .. } => loaded
            .config
            .secrets()
            .iter()
            .any(|(_, r)| matches!(r, SecretRef::Keychain)),
        _ => false,
    };
    match ctx.store.get(&scope, SecretName::GatewayAuthToken) {
        Ok(_) => (
            Status::Ok,
            "secrets in the OS keychain".to_string(),
            String::new(),
        ),
        Err(SecretError::Unreachable { detail, .. }) if in_keychain => (
            Status::Fail,
            format!("no OS keychain is reachable ({detail}): the secrets this config keeps there cannot be read"),
            format!(
                "keep them in {} (mode 0600) instead: `{cmd} --secrets-file secrets set NAME` for each (the value is read from stdin)",
                show(&file)
            ),
        ),
        Err(SecretError::Unreachable { detail, .. }) => (
            Status::Warn,
            format!("no OS keychain is reachable ({detail}); this config keeps no secret there"),
            format!(
                "to store a secret, use {} (mode 0600): `{cmd} --secrets-file secrets set NAME`",
                show(&file)
            ),
        ),
        Err(e) => (Status::Fail, e.to_string(), String::new()),
    }
}

#[cfg(unix)]
fn file_mode(file: &std::path::Path) -> Option<u32> {
    dir_mode(file)
}

#[cfg(not(unix))]
fn file_mode(_file: &std::path::Path) -> Option<u32> {
    None
}

#[cfg(unix)]
fn dir_mode(dir: &std::path::Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(dir)
        .ok()
        .map(|m| m.permissions().mode() & 0o777)
}

#[cfg(not(unix))]
fn dir_mode(_dir: &std::path::Path) -> Option<u32> {
    None
}
