//! `browser status [--browser-profile NAME]`: what this profile's browser
//! control service reports — running, CDP range, each browser profile with
//! its CDP port.

use serde_json::{json, Value};

use omniclaw_gateway::browser::http_get;

use crate::cli::ConnectArgs;
use crate::ctx::Ctx;
use crate::out::{self, CliError, CmdResult, Outcome};

use super::target::{runtime, Target};

pub fn status(ctx: &Ctx, only: Option<&str>) -> CmdResult {
    let t = Target::load(ctx, &ConnectArgs::default())?;
    let r = &t.resolved;
    let b = &t.layout.browser;
    if !b.enabled {
        return Err(CliError::failed(format!(
            "the browser of profile {} is disabled (browser.enabled is false): enable it with `omniclaw{} config set browser.enabled true`",
            r.profile,
            r.profile.suffix().map_or(String::new(), |n| format!(" --profile {n}"))
        )));
    }
    let port = b.control_port;
    // The service wants the gateway's credentials with every request.
    let auth = t.auth.clone().map_err(CliError::usage)?;
    let rt = runtime()?;
    let fetch = |path: &'static str| {
        rt.block_on(http_get(port, path, &auth)).map_err(|e| {
            CliError::failed(format!(
                "the browser control service of profile {} is not reachable on 127.0.0.1:{port} ({e}): is its gateway running? start it with `omniclaw{} gateway`",
                r.profile,
                r.profile.suffix().map_or(String::new(), |n| format!(" --profile {n}"))
            ))
        })
    };
    let parse = |(code, body): (u16, Vec<u8>)| -> Result<Value, CliError> {
        if code != 200 {
            return Err(CliError::failed(format!(
                "the browser control service on port {port} answered HTTP {code}: {}",
                String::from_utf8_lossy(&body)
            )));
        }
        serde_json::from_slice(&body).map_err(|e| {
            CliError::failed(format!(
                "the browser control service on port {port} sent invalid JSON: {e}"
            ))
        })
    };
    let status = parse(fetch("/")?)?;
    let profiles = parse(fetch("/profiles")?)?;
    let mut list: Vec<Value> = profiles
        .get("profiles")
        .and_then(Value::as_array)
        .cloned()
        .or_else(|| profiles.as_array().cloned())
        .unwrap_or_default();
    if let Some(name) = only {
        list.retain(|p| p.get("name").and_then(Value::as_str) == Some(name));
        if list.is_empty() {
            return Err(CliError::usage(format!(
                "profile {} has no browser profile named {name:?}; `omniclaw browser status` lists them",
                r.profile
            )));
        }
    }
    if ctx.json {
        out::json(&json!({
            "ok": true,
            "profile": r.profile.name(),
            "controlPort": port,
            "cdpRange": [b.cdp_range.start(), b.cdp_range.end()],
            "status": status,
            "profiles": list,
        }));
    } else {
        println!(
            "browser control of profile {} on http://127.0.0.1:{port}",
            r.profile
        );
        println!("  CDP range  {}–{}", b.cdp_range.start(), b.cdp_range.end());
        if let Some(running) = status.get("running").and_then(Value::as_array) {
            println!(
                "  running    {}",
                if running.is_empty() {
                    "none".to_string()
                } else {
                    running
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            );
        }
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|p| {
                let field = |k: &str| {
                    p.get(k).map_or(String::new(), |v| {
                        v.as_str().map_or(v.to_string(), str::to_string)
                    })
                };
                vec![
                    field("name"),
                    field("cdpPort"),
                    field("running"),
                    field("source"),
                ]
            })
            .collect();
        if rows.is_empty() {
            println!("  no browser profiles yet");
        } else {
            print!(
                "{}",
                out::table(&["BROWSER PROFILE", "CDP PORT", "RUNNING", "SOURCE"], &rows)
            );
        }
    }
    Ok(Outcome::Ok)
}
