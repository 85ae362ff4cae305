//! `omniclaw [--profile P] pairing list|approve CODE|deny CODE`: the
//! Telegram users waiting for access to this profile's bot (`dmPolicy:
//! pairing`). Approving adds the user to the approved list the running bot
//! reads on every message; nothing restarts.
//!
//! It changes the pairing store in the state dir (under its lock); a bad or
//! unknown code changes nothing. After a decision the user is told through
//! the profile's bot (approved: "send /help"; denied: declined). The
//! decision stands even when that message cannot be sent; the command then
//! says why, and exits 0. The decision itself is
//! `omniclaw_channels::telegram::decide_pairing`, which the desktop app's tray
//! and dashboard use too.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;

use omniclaw_channels::telegram;
use omniclaw_core::paths::Resolved;
use omniclaw_core::rescue::{PairingCode, PAIRING_TTL_SECS};
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
        PairingCommand::Approve { code } => decide(ctx, &resolved, &code, true),
        PairingCommand::Deny { code } => decide(ctx, &resolved, &code, false),
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

fn decide(ctx: &Ctx, resolved: &Resolved, raw: &str, approve: bool) -> CmdResult {
    let code = PairingCode::parse(raw).map_err(CliError::usage)?;
    let runtime = super::target::runtime()?;
    let decision = runtime
        .block_on(telegram::decide_pairing(
            resolved,
            &ctx.store,
            &code,
            approve,
            now(),
        ))
        .map_err(CliError::failed)?;
    let pending = &decision.request;
    let verb = if approve { "approved" } else { "denied" };
    if ctx.json {
        out::json(&json!({
            "ok": true,
            "code": code.as_str(),
            "userId": pending.user_id,
            "who": pending.who,
            "result": verb,
            "told": decision.told.is_ok(),
            "toldError": decision.told.as_ref().err(),
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
    match &decision.told {
        Ok(()) => println!("told {} through the bot", pending.who),
        Err(why) => eprintln!(
            "warning: the decision stands, but {} was not told: {why}",
            pending.who
        ),
    }
    Ok(Outcome::Ok)
}
