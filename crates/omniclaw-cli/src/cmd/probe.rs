//! `gateway probe [--url U (--token T | --password P)]`: every known
//! profile's port and the given URL; identity is proven from the `hello-ok`
//! snapshot (profile, config path, state dir), not assumed from the port.

use serde_json::{json, Value};

use omniclaw_core::env::EnvSnapshot;
use omniclaw_core::paths::{Resolved, Source};
use omniclaw_gateway::client::RpcError;
use omniclaw_gateway::profile::{self, Overrides, PASSWORD_ENV, TOKEN_ENV};
use omniclaw_gateway::Auth;
use omniclaw_os::profiles::{ConfigState, ProfileRecord};

use crate::cli::ProbeArgs;
use crate::ctx::Ctx;
use crate::out::{self, CliError, CmdResult, Outcome};

use super::status::probe;
use super::target::{apply_live, credentials_of, runtime, ws_url};

pub const MULTIPLE_WARNING: &str = "multiple reachable gateways detected";

struct Row {
    target: String,
    url: String,
    /// `ok`, `unauthenticated` (a gateway answered but we hold no valid
    /// credentials), or `unreachable`.
    result: &'static str,
    detail: String,
    identity: Option<Value>,
}

pub fn run(ctx: &Ctx, args: &ProbeArgs) -> CmdResult {
    let explicit = match (&args.url, &args.token, &args.password) {
        (Some(_), None, None) => {
            return Err(CliError::usage(
                "--url needs --token or --password: stored credentials are never sent to an explicit URL",
            ))
        }
        (Some(url), token, password) => {
            if !(url.starts_with("ws://") || url.starts_with("wss://")) {
                return Err(CliError::usage(format!(
                    "--url {url} is not a gateway URL: use ws://HOST:PORT or wss://HOST:PORT"
                )));
            }
            let auth = match (token, password) {
                (Some(t), _) => Auth::Token(t.clone()),
                (None, Some(p)) => Auth::Password(p.clone()),
                (None, None) => Auth::None,
            };
            Some((url.clone(), auth))
        }
        (None, _, _) => None,
    };
    let current = ctx.resolve()?;
    ctx.print_notes(&current);
    let inv = ctx.inventory(&current)?;

    // (label, url, auth or why none)
    let mut targets: Vec<(String, String, Option<Auth>, String)> = Vec::new();
    for p in inv.profiles.iter().filter(|p| p.set_up || p.is_current) {
        let resolved = resolved_of(p, &current);
        let env = if p.is_current {
            ctx.env.clone()
        } else {
            // The shell's own token variables belong to the current profile.
            without(&ctx.env, &[TOKEN_ENV, PASSWORD_ENV])
        };
        let (cfg, value) = match &p.config {
            ConfigState::Valid { loaded, .. } => (Some(&loaded.config), Some(loaded.doc.value())),
            other => (None, other.value()),
        };
        let Ok(mut layout) = profile::layout(&resolved, cfg, value, &Overrides::default()) else {
            continue;
        };
        if let Some(live) = omniclaw_os::runtime::read_live(&p.state_dir) {
            apply_live(&mut layout, &live);
        }
        let auth = credentials_of(
            &resolved,
            &p.config,
            &Overrides::default(),
            &env,
            &ctx.store,
        );
        let (auth, why) = match auth {
            Ok(a) => (Some(a), String::new()),
            Err(e) => (None, e.to_string()),
        };
        targets.push((p.label.clone(), ws_url(layout.bind, layout.port), auth, why));
    }
    if let Some((url, auth)) = explicit {
        targets.push(("--url".into(), url, Some(auth), String::new()));
    }

    let rt = runtime()?;
    let rows: Vec<Row> = rt.block_on(async {
        let mut rows = Vec::new();
        for (target, url, auth, why) in targets {
            let row = match probe(&url, auth.clone().unwrap_or(Auth::None), "probe").await {
                Ok(reached) => Row {
                    target,
                    url,
                    result: "ok",
                    detail: format!("{:.1} ms", reached.millis),
                    identity: reached.hello.get("snapshot").map(|s| {
                        json!({
                            "profile": s.get("profile"),
                            "configPath": s.get("configPath"),
                            "stateDir": s.get("stateDir"),
                        })
                    }),
                },
                Err(e) => {
                    // A refused or timed-out connection is unreachable; any
                    // answer from a gateway (an auth error, a close with a
                    // code) means one listens there.
                    let answered =
                        !matches!(e, RpcError::Connect { .. } | RpcError::Timeout { .. });
                    Row {
                        target,
                        url,
                        result: if answered {
                            "unauthenticated"
                        } else {
                            "unreachable"
                        },
                        detail: if answered && auth.is_none() {
                            format!(
                                "a gateway answered; no credentials to prove its identity ({why})"
                            )
                        } else {
                            e.to_string()
                        },
                        identity: None,
                    }
                }
            };
            rows.push(row);
        }
        rows
    });

    let reachable = rows.iter().filter(|r| r.result != "unreachable").count();
    let multiple = reachable > 1;
    let note = "expected only for intentionally isolated profiles such as a rescue bot; otherwise stop the extra gateway";
    if ctx.json {
        let list: Vec<_> = rows
            .iter()
            .map(|r| json!({"target": r.target, "url": r.url, "result": r.result, "detail": r.detail, "identity": r.identity}))
            .collect();
        out::json(&json!({
            "ok": reachable > 0,
            "reachable": reachable,
            "targets": list,
            "warning": multiple.then(|| format!("{MULTIPLE_WARNING}: {note}")),
        }));
    } else {
        let table: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                let who = r.identity.as_ref().map_or(String::new(), |i| {
                    format!(
                        "profile {} · {}",
                        i["profile"].as_str().unwrap_or("?"),
                        i["configPath"].as_str().unwrap_or("?")
                    )
                });
                vec![
                    r.target.clone(),
                    r.url.clone(),
                    r.result.into(),
                    who,
                    r.detail.clone(),
                ]
            })
            .collect();
        if table.is_empty() {
            println!("No gateways known: run `omniclaw setup`, or probe one with --url.");
        } else {
            print!(
                "{}",
                out::table(&["TARGET", "URL", "RESULT", "IDENTITY", "DETAIL"], &table)
            );
        }
        if multiple {
            println!("\nwarning: {MULTIPLE_WARNING} ({reachable}): {note}.");
        }
    }
    Ok(if reachable > 0 {
        Outcome::Ok
    } else {
        Outcome::Problem
    })
}

/// The paths of another discovered profile, as `resolve` would give them.
fn resolved_of(p: &ProfileRecord, current: &Resolved) -> Resolved {
    if p.is_current {
        return current.clone();
    }
    Resolved {
        profile: p.profile.clone(),
        profile_source: Source::Flag,
        home: current.home.clone(),
        state_dir: p.state_dir.clone(),
        state_dir_source: Source::Marker,
        config_path: p.config_path.clone(),
        config_path_source: Source::Marker,
        env_port: None,
        notes: Vec::new(),
    }
}

fn without(env: &EnvSnapshot, names: &[&str]) -> EnvSnapshot {
    let mut e = env.clone();
    for n in names {
        e = e.with(n, "");
    }
    e
}
