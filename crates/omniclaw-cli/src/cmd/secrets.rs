//! `omniclaw [--profile P] [--secrets-file] secrets set|status|rm NAME`.
//!
//! Values come from stdin or a hidden prompt, never from argv (argv is
//! visible to every user through `ps`). `status` shows present / missing
//! and a fingerprint, never a value. `get NAME` is the one way a value
//! comes out: one secret, asked for by name, printed to its caller alone
//! (a terminal, or a pipe such as `$(omniclaw secrets get …)`), so a
//! client can be given the gateway token; no log, rescue reply or other
//! output ever carries it. `set` points an unset config key at the
//! store, so the stored secret is used without further edits.

use std::io::{IsTerminal, Read};

use serde_json::json;

use omniclaw_core::config::{self, SecretRef};
use omniclaw_core::paths::Resolved;
use omniclaw_os::edit;
use omniclaw_os::profiles::{self, ConfigState};
use omniclaw_os::secrets::{self, SecretName, SecretStore};

use crate::cli::{SecretsCommand, StoreChoice};
use crate::ctx::Ctx;
use crate::out::{self, CliError, CmdResult, Outcome};

use super::setup::command;

/// The config value that refers to the profile's keychain entry.
pub const KEYCHAIN_REF: &str = "{\"source\": \"keychain\"}";

pub fn run(ctx: &Ctx, cmd: SecretsCommand) -> CmdResult {
    match cmd {
        SecretsCommand::Set { name } => set(ctx, &name),
        SecretsCommand::Get { name } => get(ctx, &name),
        SecretsCommand::Status { name } => status(ctx, name.as_deref()),
        SecretsCommand::Rm { name } => rm(ctx, &name),
        SecretsCommand::Move { to } => move_to(ctx, to),
    }
}

fn name_of(raw: &str) -> Result<SecretName, CliError> {
    SecretName::parse(raw).map_err(CliError::usage)
}

/// The secret from a hidden prompt on a terminal, else all of stdin
/// without its final line break.
fn read_value(name: SecretName) -> Result<String, CliError> {
    read_secret(
        &name.to_string(),
        &format!("printf %s \"$TOKEN\" | omniclaw secrets set {name}"),
    )
}

/// A single-line secret called `what`, from a hidden prompt on a terminal,
/// else all of stdin without its final line break; `example` is the
/// command that pipes it in, shown when none came.
pub fn read_secret(what: &str, example: &str) -> Result<String, CliError> {
    let value = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("{what} (input hidden): ")).map_err(|e| {
            CliError::failed(format!("cannot read the value from the terminal: {e}"))
        })?
    } else {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| CliError::failed(format!("cannot read the value from stdin: {e}")))?;
        let trimmed = text.strip_suffix('\n').unwrap_or(&text);
        trimmed.strip_suffix('\r').unwrap_or(trimmed).to_string()
    };
    if value.is_empty() {
        return Err(CliError::usage(format!(
            "no value for {what}: pipe it in (e.g. `{example}`) or type it at the prompt; values are never taken from the command line"
        )));
    }
    if value.contains('\n') {
        return Err(CliError::usage(format!(
            "the value for {what} spans several lines: give a single-line secret"
        )));
    }
    Ok(value)
}

/// How the config refers to `name`, if it is valid and sets it.
fn configured(resolved: &Resolved, name: SecretName) -> Option<SecretRef> {
    match profiles::read_config(&resolved.config_path) {
        ConfigState::Valid { loaded, .. } => config::secret_refs(loaded.doc.value())
            .into_iter()
            .find(|(p, _)| *p == name.path())
            .map(|(_, r)| r),
        _ => None,
    }
}

/// How the config refers to a secret, saying where a store reference
/// really leads: `{"source": "keychain"}` names the profile's secret store,
/// which is its 0600 file when it has one.
pub fn ref_label(r: &SecretRef, mode: &secrets::StoreMode) -> String {
    match (r, mode) {
        (SecretRef::Keychain, secrets::StoreMode::Keychain) => "store: keychain".into(),
        (SecretRef::Keychain, secrets::StoreMode::File(_)) => "store: 0600 file".into(),
        (SecretRef::Keychain, secrets::StoreMode::Memory) => "store: memory".into(),
        (other, _) => other.to_string(),
    }
}

fn set(ctx: &Ctx, raw: &str) -> CmdResult {
    let name = name_of(raw)?;
    let resolved = ctx.resolve()?;
    ctx.print_notes(&resolved);
    let value = read_value(name)?;
    let scope = Ctx::scope(&resolved);
    ctx.prepare_store(&resolved)?;
    ctx.store
        .set(&scope, name, &value)
        .map_err(CliError::failed)?;
    let mut notes = Vec::new();
    let mut linked = false;
    match configured(&resolved, name) {
        None if resolved.config_path.is_file() => {
            let target = ctx.edit_target(&resolved);
            let edited = edit::edit_config(&target, &edit::Options::default(), |text| {
                config::set(text, &name.path(), KEYCHAIN_REF)
            });
            match edited {
                Ok(e) => linked = e.changed,
                // An invalid config is left for the user to fix; the secret
                // is stored all the same.
                Err(edit::EditError::Invalid { .. } | edit::EditError::Conflicts { .. }) => {}
                Err(e) => {
                    return Err(CliError::failed(format!(
                        "the secret is stored, but the config could not be pointed at it: {e}; run `{} config set {name} '{KEYCHAIN_REF}'`",
                        command(&resolved)
                    )))
                }
            }
        }
        None => {}
        Some(SecretRef::Keychain) => {}
        Some(SecretRef::Env(var)) => notes.push(format!(
            "the config reads {name} from ${{{var}}}; to use the stored one: {} config set {name} '{KEYCHAIN_REF}'",
            command(&resolved)
        )),
        Some(SecretRef::Plain(_)) => notes.push(format!(
            "the config still holds {name} in plain text; `{} doctor --fix` replaces it with a reference to the store",
            command(&resolved)
        )),
    }
    let mode = ctx.store.mode(&scope);
    if ctx.json {
        out::json(&json!({
            "ok": true,
            "profile": resolved.profile.name(),
            "name": name.path(),
            "store": mode.kind(),
            "fingerprint": secrets::fingerprint(&value),
            "configLinked": linked,
            "notes": notes,
        }));
    } else {
        println!(
            "Stored {name} of profile {} in the {mode} ({})",
            resolved.profile,
            secrets::fingerprint(&value)
        );
        if linked {
            println!(
                "  {} now refers to it: {name}: {KEYCHAIN_REF}",
                resolved.display(&resolved.config_path)
            );
        }
        for n in &notes {
            println!("  note: {n}");
        }
    }
    Ok(Outcome::Ok)
}

/// `secrets get NAME`: the value of one secret, on stdout with a line
/// break (`--json`: `{"name", "value"}` and nothing else). Not stored is a
/// problem (exit 1) that says where it was looked for and how to store it.
fn get(ctx: &Ctx, raw: &str) -> CmdResult {
    let name = name_of(raw)?;
    let resolved = ctx.resolve()?;
    ctx.print_notes(&resolved);
    let scope = Ctx::scope(&resolved);
    let value = ctx.store.get(&scope, name).map_err(CliError::failed)?;
    let Some(value) = value else {
        let mut why = format!(
            "profile {} has no {name} in the {}: store one with `{} secrets set {name}`",
            resolved.profile,
            ctx.store.mode(&scope),
            command(&resolved)
        );
        match configured(&resolved, name) {
            Some(SecretRef::Env(var)) => why.push_str(&format!(
                " (its config reads {name} from ${{{var}}}, which this command does not print)"
            )),
            Some(SecretRef::Plain(_)) => why.push_str(&format!(
                " (its config holds {name} in plain text; `{} doctor --fix` moves it into the store)",
                command(&resolved)
            )),
            _ => {}
        }
        return Err(CliError::failed(why));
    };
    if ctx.json {
        out::json(&json!({"name": name.path(), "value": value}));
    } else {
        println!("{value}");
    }
    Ok(Outcome::Ok)
}

fn status(ctx: &Ctx, only: Option<&str>) -> CmdResult {
    let only = only.map(name_of).transpose()?;
    let resolved = ctx.resolve()?;
    // The fixed secrets and the API key of every provider the config names.
    let names: Vec<SecretName> = match only {
        Some(name) => vec![name],
        None => SecretName::known(profiles::read_config(&resolved.config_path).value()),
    };
    ctx.print_notes(&resolved);
    let scope = Ctx::scope(&resolved);
    let mode = ctx.store.mode(&scope);
    let mut rows = Vec::new();
    let mut problem = false;
    for name in names {
        let stored = ctx.store.get(&scope, name).map_err(CliError::failed)?;
        let refers = configured(&resolved, name);
        if refers == Some(SecretRef::Keychain) && stored.is_none() {
            problem = true;
        }
        rows.push((name, refers, stored.as_deref().map(secrets::fingerprint)));
    }
    if ctx.json {
        let list: Vec<_> = rows
            .iter()
            .map(|(n, r, fp)| {
                json!({
                    "name": n.path(),
                    "configured": r.as_ref().map(|r| ref_label(r, &mode)),
                    "stored": fp.is_some(),
                    "fingerprint": fp,
                })
            })
            .collect();
        let path = match &mode {
            secrets::StoreMode::File(p) => Some(p.clone()),
            _ => None,
        };
        out::json(&json!({
            "ok": !problem,
            "profile": resolved.profile.name(),
            "store": {"kind": mode.kind(), "path": path},
            "secrets": list,
        }));
    } else {
        let place = match &mode {
            secrets::StoreMode::File(p) => format!("0600 file {}", resolved.display(p)),
            other => other.to_string(),
        };
        println!("Secrets of profile {} ({place})", resolved.profile);
        let table: Vec<Vec<String>> = rows
            .iter()
            .map(|(n, r, fp)| {
                vec![
                    n.path().to_string(),
                    r.as_ref()
                        .map_or("unset".to_string(), |r| ref_label(r, &mode)),
                    fp.as_ref()
                        .map_or("missing".to_string(), |f| format!("present ({f})")),
                ]
            })
            .collect();
        print!("{}", out::table(&["SECRET", "CONFIG", "STORED"], &table));
        if problem {
            println!(
                "a secret the config refers to is missing: `{} secrets set NAME`",
                command(&resolved)
            );
        }
    }
    Ok(if problem {
        Outcome::Problem
    } else {
        Outcome::Ok
    })
}

fn rm(ctx: &Ctx, raw: &str) -> CmdResult {
    let name = name_of(raw)?;
    let resolved = ctx.resolve()?;
    ctx.print_notes(&resolved);
    let scope = Ctx::scope(&resolved);
    let removed = ctx.store.remove(&scope, name).map_err(CliError::failed)?;
    let still_referenced = configured(&resolved, name) == Some(SecretRef::Keychain);
    if ctx.json {
        out::json(&json!({
            "ok": true,
            "profile": resolved.profile.name(),
            "name": name.path(),
            "removed": removed,
        }));
    } else {
        if removed {
            println!("Removed {name} of profile {}", resolved.profile);
        } else {
            println!("{name} of profile {} was not stored", resolved.profile);
        }
        if still_referenced {
            println!(
                "  note: the config still refers to it; store a new one with `{} secrets set {name}`",
                command(&resolved)
            );
        }
    }
    Ok(Outcome::Ok)
}

fn move_to(ctx: &Ctx, to: StoreChoice) -> CmdResult {
    let resolved = ctx.resolve()?;
    ctx.print_notes(&resolved);
    let scope = Ctx::scope(&resolved);
    let dest = match to {
        StoreChoice::File => secrets::Destination::File,
        StoreChoice::Keychain => secrets::Destination::Keychain,
    };
    if dest == secrets::Destination::File {
        omniclaw_os::fsx::create_private_dir(&resolved.state_dir).map_err(|e| {
            CliError::failed(format!(
                "cannot create the state dir {}: {e}; nothing was moved",
                resolved.display(&resolved.state_dir)
            ))
        })?;
    }
    let config = profiles::read_config(&resolved.config_path);
    let names = SecretName::known(config.value());
    let moved = ctx
        .store
        .move_to(&scope, &names, dest)
        .map_err(|e| match e {
            secrets::MoveError::AlreadyThere { .. } => CliError::usage(e),
            _ => CliError::failed(e),
        })?;
    let now = ctx.store.mode(&scope);
    let running = omniclaw_os::live::running_pid(&resolved.state_dir);
    let mut notes = Vec::new();
    if let Some(pid) = running {
        notes.push(format!(
            "the running gateway (pid {pid}) keeps serving: the values did not change, and it reads them from the {now} from now on; no restart is needed"
        ));
    }
    if dest == secrets::Destination::Keychain {
        notes.push(format!(
            "a service reads its secrets when it starts, and a user service reaches the keychain only inside a login session: run `{} gateway install` again to check that it still can",
            command(&resolved)
        ));
    }
    if ctx.json {
        out::json(&json!({
            "ok": moved.leftovers.is_empty(),
            "profile": resolved.profile.name(),
            "store": now.kind(),
            "moved": moved.names.iter().map(|n| n.path()).collect::<Vec<_>>(),
            "leftovers": moved.leftovers,
            "notes": notes,
        }));
    } else {
        let n = moved.names.len();
        println!(
            "Moved {n} secret{} of profile {} to the {now}",
            if n == 1 { "" } else { "s" },
            resolved.profile
        );
        for name in &moved.names {
            println!("  {name}");
        }
        for l in &moved.leftovers {
            println!("  warning: {l}");
        }
        for note in &notes {
            println!("  note: {note}");
        }
    }
    Ok(if moved.leftovers.is_empty() {
        Outcome::Ok
    } else {
        Outcome::Problem
    })
}
