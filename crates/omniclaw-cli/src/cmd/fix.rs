//! `omniclaw doctor --fix [--yes]`: repairs what `doctor` can repair, after
//! listing every change and (without `--yes`) asking on a terminal.
//!
//! Per profile: unknown keys are removed, plaintext secrets move into the
//! secret store (the config then refers to it), and for each port conflict
//! between two profiles the one set up last moves to the suggested free
//! base port. Everything is planned in memory and checked first; a config
//! is only written when its new text validates. Before a config is
//! rewritten its previous text is kept as `omniclaw.json.bak`, with the
//! moved secrets replaced by the redaction marker (they are in the store
//! now: a backup must not keep them on disk).

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::time::SystemTime;

use serde_json::{json, Map, Value};

use omniclaw_core::config;
use omniclaw_core::ports::{self, Instance};
use omniclaw_os::fsx;
use omniclaw_os::profiles::{ConfigState, ProfileRecord};
use omniclaw_os::secrets::{Scope, SecretName, SecretStore};

use crate::ctx::Ctx;
use crate::out::{self, CliError, CmdResult, Outcome};

/// The planned repair of one profile's config.
struct Repair {
    label: String,
    config_path: PathBuf,
    scope: Scope,
    original: String,
    /// The merge patch that removes keys, replaces secrets and moves the port.
    patch: Map<String, Value>,
    /// Secrets to store before the config stops holding them.
    secrets: Vec<(SecretName, String)>,
    changes: Vec<String>,
}

fn insert_path(patch: &mut Map<String, Value>, path: &str, value: Value) {
    let mut parts: Vec<&str> = path.split('.').collect();
    let Some(last) = parts.pop() else { return };
    let mut node = patch;
    for p in parts {
        let entry = node
            .entry(p.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        let Value::Object(m) = entry else { return };
        node = m;
    }
    node.insert(last.to_string(), value);
}

/// When a profile was set up: its ownership marker's (else its config's) mtime.
fn set_up_at(p: &ProfileRecord) -> SystemTime {
    let at = |path: PathBuf| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    at(p.state_dir.join(omniclaw_core::paths::MARKER_FILE))
        .or_else(|| at(p.config_path.clone()))
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

fn plan_repair(p: &ProfileRecord) -> Option<Repair> {
    let (text, doc) = match &p.config {
        ConfigState::Valid { text, loaded } => (text.clone(), loaded.doc.clone()),
        ConfigState::Invalid { text, .. } => (text.clone(), config::parse(text).ok()?),
        _ => return None,
    };
    let mut r = Repair {
        label: p.label.clone(),
        config_path: p.config_path.clone(),
        scope: Scope::new(p.profile.name(), p.state_dir.clone()),
        original: text,
        patch: Map::new(),
        secrets: Vec::new(),
        changes: Vec::new(),
    };
    if let Err(errors) = config::validate(&doc) {
        for d in errors.diagnostics() {
            if d.message.starts_with("unknown key") {
                insert_path(&mut r.patch, &d.path, Value::Null);
                r.changes
                    .push(format!("remove unknown key {} (line {})", d.path, d.line));
            }
        }
    }
    for name in SecretName::known(Some(doc.value())) {
        let pointer = format!("/{}", name.path().replace('.', "/"));
        if let Some(Value::String(s)) = doc.value().pointer(&pointer) {
            let is_env = s.starts_with("${") && s.ends_with('}');
            if !is_env && !s.is_empty() {
                r.secrets.push((name, s.clone()));
                insert_path(&mut r.patch, &name.path(), json!({"source": "keychain"}));
                r.changes
                    .push(format!("move {name} from plain text into the secret store"));
            }
        }
    }
    Some(r)
}

pub fn run(ctx: &Ctx, yes: bool) -> CmdResult {
    let resolved = ctx.resolve()?;
    ctx.print_notes(&resolved);
    let inv = ctx.inventory(&resolved)?;
    let mut repairs: Vec<Repair> = inv.profiles.iter().filter_map(plan_repair).collect();

    // Port conflicts between our profiles: move the one set up last, one at a time.
    let mut instances: Vec<Instance> = inv.instances(&ctx.env);
    let set_up: Vec<(String, SystemTime)> = inv
        .profiles
        .iter()
        .map(|p| (p.label.clone(), set_up_at(p)))
        .collect();
    let when = |name: &str| set_up.iter().find(|(l, _)| l == name).map(|(_, t)| *t);
    let mut unresolved = Vec::new();
    for _ in 0..instances.len() {
        let plan = ports::plan(&instances);
        let Some((mover, other)) = plan.conflicts.iter().find_map(|c| {
            let (a, b) = c.instances();
            let (ta, tb) = (when(a)?, when(b)?);
            Some(if ta >= tb {
                (a.to_string(), b.to_string())
            } else {
                (b.to_string(), a.to_string())
            })
        }) else {
            break;
        };
        let Some(idx) = instances.iter().position(|i| i.name == mover) else {
            break;
        };
        let others: Vec<Instance> = instances
            .iter()
            .filter(|i| i.name != mover)
            .cloned()
            .collect();
        let current = instances[idx].ports.base;
        let Some(base) = ports::suggest_base(&others, current) else {
            unresolved.push(format!("no free base port for {mover}"));
            break;
        };
        if base == current {
            unresolved.push(format!(
                "{mover} ↔ {other}: not a port overlap, fix by hand (`doctor` says how)"
            ));
            break;
        }
        instances[idx].ports.base = base;
        match repairs.iter_mut().find(|r| r.label == mover) {
            Some(r) => {
                insert_path(&mut r.patch, "gateway.port", json!(base));
                r.changes.push(format!(
                    "move base port {current} → {base} (set up after {other}, whose ports it overlaps)"
                ));
            }
            None => {
                unresolved.push(format!(
                    "{mover}: its config cannot be edited; give it --port {base} by hand"
                ));
                break;
            }
        }
    }

    // Check every new text before asking or writing anything.
    let mut planned: Vec<(Repair, String)> = Vec::new();
    for r in repairs.into_iter().filter(|r| !r.changes.is_empty()) {
        match config::merge_patch(&r.original, &Value::Object(r.patch.clone())) {
            Ok(next) => planned.push((r, next)),
            Err(e) => unresolved.push(format!(
                "{}: the config would still be invalid after the automatic fixes, left unchanged:\n{e}",
                r.label
            )),
        }
    }

    let list: Vec<Value> = planned
        .iter()
        .map(|(r, _)| json!({"profile": r.label, "config": r.config_path, "changes": r.changes}))
        .collect();
    if !ctx.json {
        if planned.is_empty() {
            println!("Nothing to fix automatically.");
        }
        for (r, _) in &planned {
            println!("{} ({})", r.label, r.config_path.display());
            for c in &r.changes {
                println!("  - {c}");
            }
        }
        for u in &unresolved {
            println!("not fixed: {u}");
        }
    }
    if planned.is_empty() {
        if ctx.json {
            out::json(
                &json!({"ok": unresolved.is_empty(), "applied": false, "changes": list, "unresolved": unresolved}),
            );
        }
        return Ok(if unresolved.is_empty() {
            Outcome::Ok
        } else {
            Outcome::Problem
        });
    }
    if !yes {
        if !std::io::stdin().is_terminal() || ctx.json {
            return Err(CliError::usage(
                "doctor --fix changes files: confirm with --yes (there is no terminal to ask on); nothing was changed",
            ));
        }
        print!("Apply these changes (a backup of each config is kept as .bak)? [y/N] ");
        let _ = std::io::stdout().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            println!("Nothing was changed.");
            return Ok(Outcome::Problem);
        }
    }

    for (r, next) in &planned {
        // Secrets first: if the store is out of reach, this config keeps them.
        for (name, value) in &r.secrets {
            ctx.store.set(&r.scope, *name, value).map_err(|e| {
                CliError::failed(format!(
                    "{}: {e}; {} left unchanged",
                    r.label,
                    r.config_path.display()
                ))
            })?;
        }
        let mut backup = r.original.clone();
        for (_, value) in &r.secrets {
            backup = backup.replace(value.as_str(), config::REDACTED);
        }
        // Under the config's lock, and only onto the text the fixes were
        // planned on; the backup carries the redaction marker, not the secrets.
        fsx::update(&r.config_path, fsx::Options::default(), |current| {
            if current != Some(r.original.as_bytes()) {
                return Err(fsx::Changed.to_string());
            }
            let bak = fsx::backup_path(&r.config_path);
            fsx::atomic_replace(&bak, backup.as_bytes())
                .map_err(|e| format!("cannot write the backup {}: {e}", bak.display()))?;
            Ok((Some(next.as_bytes().to_vec()), ()))
        })
        .map_err(|e| CliError::failed(format!("cannot write {}: {e}", r.config_path.display())))?;
    }
    if ctx.json {
        out::json(
            &json!({"ok": unresolved.is_empty(), "applied": true, "changes": list, "unresolved": unresolved}),
        );
    } else {
        println!("Applied. Check with `omniclaw doctor`.");
    }
    Ok(if unresolved.is_empty() {
        Outcome::Ok
    } else {
        Outcome::Problem
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(paths: &[(&str, Value)], expected: Value) {
        let mut m = Map::new();
        for (p, v) in paths {
            insert_path(&mut m, p, v.clone());
        }
        assert_eq!(Value::Object(m), expected);
    }

    #[test]
    fn patches_nest_by_dotted_path() {
        check(&[("a.b", Value::Null)], json!({"a": {"b": null}}));
        check(
            &[
                ("gateway.port", json!(1)),
                ("gateway.auth.token", json!({"source": "keychain"})),
            ],
            json!({"gateway": {"port": 1, "auth": {"token": {"source": "keychain"}}}}),
        );
    }
}
