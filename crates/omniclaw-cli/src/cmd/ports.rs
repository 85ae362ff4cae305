//! `omniclaw ports`: the port plan of every profile and OpenClaw install,
//! one row per instance and surface; exit 1 on any conflict.

use serde::Serialize;
use serde_json::{json, Value};

use crate::ctx::Ctx;
use crate::out::{self, CmdResult, Outcome};

use super::audit::{self, Audit, Elsewhere, RowOut};

/// `ports --json`: the rows and the problems, in this order.
#[derive(Serialize)]
struct Report<'a> {
    ok: bool,
    rows: Vec<RowOut<'a>>,
    problems: Vec<Value>,
    /// Gateways running on other ports than their config says.
    moved: Vec<Value>,
    /// Gateways of other machines: their tunnels' local ends, and the
    /// profiles in remote mode (no port here).
    remotes: Vec<Value>,
}

pub fn run(ctx: &Ctx) -> CmdResult {
    let a = Audit::run(ctx)?;
    let elsewhere = a.elsewhere();
    let blocked: Vec<audit::Problem> = elsewhere.iter().filter_map(Elsewhere::blocked).collect();
    let clean = a.is_clean() && blocked.is_empty();
    if ctx.json {
        let report = Report {
            ok: clean,
            rows: a.rows_out(),
            problems: {
                let mut all = a.problems_json();
                all.extend(blocked.iter().map(audit::Problem::to_json));
                all
            },
            moved: a
                .moved()
                .into_iter()
                .map(|(name, live, configured)| {
                    json!({"profile": name, "runningOn": live, "configured": configured})
                })
                .collect(),
            remotes: elsewhere.iter().map(Elsewhere::to_json).collect(),
        };
        // Serializing these types cannot fail; `out::json` keeps the output
        // valid JSON anyway.
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => out::json(&json!({"ok": false, "error": {"message": e.to_string()}})),
        }
    } else {
        let rows: Vec<Vec<String>> = a
            .plan
            .rows
            .iter()
            .zip(&a.live)
            .map(|(r, s)| {
                vec![
                    r.instance.clone(),
                    r.surface.to_string(),
                    r.range.to_string(),
                    r.bind.to_string(),
                    r.key.to_string(),
                    s.to_string(),
                ]
            })
            .collect();
        if rows.is_empty() && a.unknown.is_empty() {
            println!("No profiles yet: run `omniclaw setup` or `omniclaw --profile NAME setup`.");
        } else if rows.is_empty() {
            println!("No ports to show: no instance's config could be read.");
        } else {
            print!(
                "{}",
                out::table(
                    &["PROFILE", "SURFACE", "PORTS", "BIND", "SET BY", "NOW"],
                    &rows
                )
            );
        }
        for (name, live, configured) in a.moved() {
            println!(
                "note: {name} is running on {live}, config says {configured}: planned where it runs (its next start without --port uses {configured})"
            );
        }
        if !elsewhere.is_empty() {
            let rows: Vec<Vec<String>> = elsewhere
                .iter()
                .map(|e| {
                    vec![
                        e.name.clone(),
                        e.kind.to_string(),
                        e.port.map_or("– (none here)".into(), |p| p.to_string()),
                        e.target.clone(),
                        e.now(),
                    ]
                })
                .collect();
            println!(
                "\nGateways elsewhere (outside this machine's plan but for a tunnel's local port):"
            );
            print!(
                "{}",
                out::table(&["REMOTE", "KIND", "LOCAL PORT", "TARGET", "NOW"], &rows)
            );
        }
        let mut all = a.problems();
        all.extend(blocked);
        let problems = print_list(&all);
        if problems == 0 {
            println!("\nNo conflicts.");
        }
    }
    // The process ends right after this command: freeing every parsed
    // config one by one would only add to its run time (about a tenth of
    // it over a thousand profiles); the OS takes the memory back at once.
    std::mem::forget(a);
    Ok(if clean { Outcome::Ok } else { Outcome::Problem })
}

/// Prints problems with their fixes under a count; returns how many.
pub fn print_list(problems: &[audit::Problem]) -> usize {
    if !problems.is_empty() {
        println!(
            "\n{} problem{}:",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" }
        );
        for p in problems {
            println!("  ✗ {}", p.message);
            if !p.fix.is_empty() {
                println!("    fix: {}", p.fix);
            }
        }
    }
    problems.len()
}
