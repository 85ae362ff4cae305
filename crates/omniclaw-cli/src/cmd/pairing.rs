//! `omniclaw [--profile P] pairing list|approve CODE|deny CODE`: the
//! Telegram users waiting for access to this profile's bot (`dmPolicy:
//! pairing`). Approving adds the user to the approved list the running bot
//! reads on every message; nothing restarts.
//!
//! It changes the pairing store in the state dir (under its lock); a bad or
//! unknown code changes nothing. After a decision the user is told through
//! the profile's bot (approved: "send /help"; denied: declined). The
//! decision stands even when that message cannot be sent; the command then
//! says why, and exits 0.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;

use omniclaw_core::paths::Resolved;
use omniclaw_core::rescue::{PairingCode, PAIRING_TTL_SECS};
use omniclaw_gateway::telegram;
use omniclaw_os::profiles::{self, ConfigState};
use omniclaw_os::rescue::PairingStore;

use crate::cli::PairingCommand;
use crate::ctx::Ctx;
use crate::out::{self, CliError, CmdResult, Outcome};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub fn run(ctx: &Ctx, cmd: PairingCommand) -> CmdResult {
    let resolved = ctx.resolve()?;
    let store = PairingStore::new(&resolved.state_dir);
    match cmd {
        PairingCommand::List => list(ctx, &store),
        PairingCommand::Approve { code } => decide(ctx, &resolved, &store, &code, true),
        PairingCommand::Deny { code } => decide(ctx, &resolved, &store, &code, false),
    }
}

fn list(ctx: &Ctx, store: &PairingStore) -> CmdResult {
    let now = now();
    let mut pairings = store.load().map_err(CliError::failed)?;
    pairings.prune(now);
    if ctx.json {
        out::json(&json!({
            "pending": pairings.pending.iter().map(|p| json!({
                "code": p.code.as_str(),
                "userId": p.user_id,
                "who": p.who,
                "created": p.created,
                "expiresInSecs": (p.created + PAIRING_TTL_SECS).saturating_sub(now),
            })).collect::<Vec<_>>(),
            "approved": pairings.approved,
        }));
        return Ok(Outcome::Ok);
    }
    if pairings.pending.is_empty() {
        println!("no pending pairing requests");
    } else {
        let rows: Vec<Vec<String>> = pairings
            .pending
            .iter()
            .map(|p| {
                vec![
                    p.code.to_string(),
                    p.who.clone(),
                    p.user_id.to_string(),
                    format!("{} min", now.saturating_sub(p.created) / 60),
                ]
            })
            .collect();
        print!("{}", out::table(&["CODE", "FROM", "USER ID", "AGE"], &rows));
    }
    if !pairings.approved.is_empty() {
        let ids: Vec<String> = pairings.approved.iter().map(u64::to_string).collect();
        println!("approved users: {}", ids.join(", "));
    }
    Ok(Outcome::Ok)
}

fn decide(
    ctx: &Ctx,
    resolved: &Resolved,
    store: &PairingStore,
    raw: &str,
    approve: bool,
) -> CmdResult {
    let code = PairingCode::parse(raw).map_err(CliError::usage)?;
    let now = now();
    let result = store
        .update(|p| {
            let r = if approve {
                p.approve(&code, now)
            } else {
                p.deny(&code, now)
            };
            let changed = r.is_ok();
            (r, changed)
        })
        .map_err(CliError::failed)?;
    let pending = result.map_err(CliError::failed)?;
    let verb = if approve { "approved" } else { "denied" };
    let told = tell(ctx, resolved, pending.user_id, approve);
    if ctx.json {
        out::json(&json!({
            "ok": true,
            "code": code.as_str(),
            "userId": pending.user_id,
            "who": pending.who,
            "result": verb,
            "told": told.is_ok(),
            "toldError": told.as_ref().err(),
        }));
        return Ok(Outcome::Ok);
    }
    if approve {
        println!(
            "approved {} (user id {}): they can send commands to the bot now",
            pending.who, pending.user_id
        );
    } else {
        println!("denied {} (user id {})", pending.who, pending.user_id);
    }
    match told {
        Ok(()) => println!("told {} through the bot", pending.who),
        Err(why) => eprintln!(
            "warning: the decision stands, but {} was not told: {why}",
            pending.who
        ),
    }
    Ok(Outcome::Ok)
}

/// Sends the user the decision through this profile's bot.
fn tell(ctx: &Ctx, resolved: &Resolved, user_id: u64, approved: bool) -> Result<(), String> {
    let chat = i64::try_from(user_id)
        .map_err(|_| format!("user id {user_id} is not a Telegram user id"))?;
    let ConfigState::Valid { loaded, .. } = profiles::read_config(&resolved.config_path) else {
        return Err(format!(
            "the config {} is missing or invalid, so the bot's settings are unknown (`{} config validate`)",
            resolved.display(&resolved.config_path),
            super::setup::command(resolved)
        ));
    };
    let settings = telegram::settings(
        resolved.profile.name(),
        &resolved.state_dir,
        &loaded.config,
        loaded.doc.value(),
        &ctx.store,
        telegram::default_program(),
    )?
    .ok_or_else(|| {
        format!(
            "the Telegram channel is off in {}",
            resolved.display(&resolved.config_path)
        )
    })?;
    let runtime = super::target::runtime().map_err(|e| e.to_string())?;
    runtime
        .block_on(telegram::tell_pairing_decision(&settings, chat, approved))
        .map_err(|e| e.to_string())
}
