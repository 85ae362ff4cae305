//! `gateway probe [--url U (--token T | --password P)]`: every known
//! profile's port and the given URL; identity is proven from the `hello-ok`
//! snapshot (profile, config path, state dir), not assumed from the port.
//! Several gateways answering is expected for isolated profiles (a rescue
//! bot beside main): only a reachable gateway that is not a known,
//! isolated profile of this machine is warned about.

use serde_json::{json, Value};

use omniclaw_core::env::EnvSnapshot;
use omniclaw_gateway::client::RpcError;
use omniclaw_gateway::profile::{self, Overrides, PASSWORD_ENV, TOKEN_ENV};
use omniclaw_gateway::Auth;
use omniclaw_os::profiles::ConfigState;

use crate::cli::ProbeArgs;
use crate::ctx::Ctx;
use crate::out::{self, CliError, CmdResult, Outcome};

use super::status::probe;
use super::target::{apply_live, credentials_of, resolved_of, runtime, ws_url};

pub const MULTIPLE_WARNING: &str = "multiple reachable gateways detected";

struct Row {
    target: String,
    url: String,
    /// The config path of the profile probed (`None` for `--url`).
    expected: Option<std::path::PathBuf>,
    /// The profile shares no port or path with another instance.
    isolated: bool,
    /// `ok`, `unauthenticated` (a gateway answered but we hold no valid
    /// credentials), or `unreachable`.
    result: &'static str,
    detail: String,
    identity: Option<Value>,
    /// A remote gateway (`omniclaw remote add`): known, so never a stranger.
    remote: bool,
    /// The gateway's version from `hello-ok`.
    version: Option<String>,
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

    // Profiles the port plan finds in a conflict are not isolated.
    let plan = omniclaw_core::ports::plan(&inv.instances(&ctx.env));
    let conflicted: std::collections::HashSet<&str> = plan
        .conflicts
        .iter()
        .flat_map(|c| {
            let (a, b) = c.instances();
            [a, b]
        })
        .collect();
    let mut targets: Vec<ProbeTarget> = Vec::new();
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
        // A profile in remote mode is probed at its remote URL, below.
        if cfg.and_then(profile::remote_of).is_some() {
            continue;
        }
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
        targets.push(ProbeTarget {
            label: p.label.clone(),
            url: ws_url(layout.bind, layout.port),
            auth,
            why,
            expected: Some(p.config_path.clone()),
            isolated: !conflicted.contains(p.label.as_str()),
        });
    }
    if let Some((url, auth)) = explicit {
        targets.push(ProbeTarget {
            label: "--url".into(),
            url,
            auth: Some(auth),
            why: String::new(),
            expected: None,
            isolated: false,
        });
    }

    let rt = runtime()?;
    let rows: Vec<Row> = rt.block_on(async {
        let mut rows = Vec::new();
        for ProbeTarget {
            label: target,
            url,
            auth,
            why,
            expected,
            isolated,
        } in targets
        {
            let row = match probe(&url, auth.clone().unwrap_or(Auth::None), "probe").await {
                Ok(reached) => Row {
                    target,
                    url,
                    expected,
                    isolated,
                    result: "ok",
                    detail: format!("{:.1} ms", reached.millis),
                    identity: reached.hello.get("snapshot").map(|s| {
                        json!({
                            "profile": s.get("profile"),
                            "configPath": s.get("configPath"),
                            "stateDir": s.get("stateDir"),
                        })
                    }),
                    remote: false,
                    version: omniclaw_os::version::from_hello(&reached.hello),
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
                        expected,
                        isolated,
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
                        remote: false,
                        version: None,
                    }
                }
            };
            rows.push(row);
        }
        rows
    });
    let mut rows = rows;
    let configured = super::remote::configured(ctx, &inv, &current);
    let remotes = super::remote::probe_all(ctx, &inv.home, configured).unwrap_or_else(|e| {
        // The local gateways are probed all the same.
        eprintln!("warning: {e}");
        Vec::new()
    });
    for p in remotes {
        rows.push(Row {
            target: if p.configured {
                format!("{} (gateway.mode remote)", p.remote.name)
            } else {
                format!("remote {}", p.remote.name)
            },
            url: p.remote.dial_url(),
            expected: None,
            isolated: true,
            result: match p.state {
                "running" => "ok",
                "unauthenticated" => "unauthenticated",
                _ => "unreachable",
            },
            identity: p
                .profile
                .as_ref()
                .map(|profile| json!({"profile": profile})),
            detail: p.detail,
            remote: true,
            version: p.version,
        });
    }

    let reachable = rows.iter().filter(|r| r.result != "unreachable").count();
    let strangers: Vec<(&Row, String)> = rows
        .iter()
        .filter_map(|r| Some((r, unexpected(r)?)))
        .collect();
    let multiple = reachable > 1 && !strangers.is_empty();
    let note = "expected only for intentionally isolated profiles such as a rescue bot; otherwise stop the extra gateway";
    let named: Vec<String> = strangers
        .iter()
        .map(|(r, why)| format!("{} ({}): {why}", r.target, r.url))
        .collect();
    if ctx.json {
        let list: Vec<_> = rows
            .iter()
            .map(|r| json!({"target": r.target, "url": r.url, "result": r.result, "detail": r.detail, "identity": r.identity, "remote": r.remote, "version": r.version}))
            .collect();
        out::json(&json!({
            "ok": reachable > 0,
            "reachable": reachable,
            "targets": list,
            "warning": multiple.then(|| format!("{MULTIPLE_WARNING}: {}; {note}", named.join("; "))),
            "unexpected": strangers.iter().map(|(r, why)| json!({"target": r.target, "url": r.url, "why": why})).collect::<Vec<_>>(),
        }));
    } else {
        let table: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                let who = r.identity.as_ref().map_or(String::new(), |i| {
                    let profile = i["profile"].as_str().unwrap_or("?");
                    match (r.remote, &r.version) {
                        (true, Some(v)) => format!("profile {profile} · remote · v{v}"),
                        (true, None) => format!("profile {profile} · remote"),
                        (false, _) => format!(
                            "profile {profile} · {}",
                            i["configPath"].as_str().unwrap_or("?")
                        ),
                    }
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
            println!(
                "\nwarning: {MULTIPLE_WARNING} ({reachable}), not all of them isolated profiles of this machine:"
            );
            for n in &named {
                println!("  - {n}");
            }
            println!("  {note}.");
        }
    }
    Ok(if reachable > 0 {
        Outcome::Ok
    } else {
        Outcome::Problem
    })
}

/// A gateway to probe: a known profile's, or `--url`.
struct ProbeTarget {
    label: String,
    url: String,
    auth: Option<Auth>,
    /// Why there are no credentials, when there are none.
    why: String,
    expected: Option<std::path::PathBuf>,
    isolated: bool,
}

/// Why a reachable gateway is not a known, isolated profile of this
/// machine; `None` when it is one (or did not answer).
fn unexpected(r: &Row) -> Option<String> {
    if r.result == "unreachable" || r.remote {
        return None;
    }
    let Some(expected) = &r.expected else {
        return Some("not a profile of this machine".into());
    };
    let served = r
        .identity
        .as_ref()
        .and_then(|i| i["configPath"].as_str())
        .map(std::path::Path::new);
    match served {
        None => Some("answered without proving which gateway it is".into()),
        Some(p) if p != expected.as_path() => Some(format!(
            "the gateway there serves {}, not {}'s config",
            p.display(),
            r.target
        )),
        Some(_) if !r.isolated => Some(format!(
            "{} shares ports or paths with another instance (`omniclaw doctor` names them)",
            r.target
        )),
        Some(_) => None,
    }
}

fn without(env: &EnvSnapshot, names: &[&str]) -> EnvSnapshot {
    let mut e = env.clone();
    for n in names {
        e = e.with(n, "");
    }
    e
}
