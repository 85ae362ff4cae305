//! `omniclaw [--profile P] sessions list|show KEY|reset KEY|delete KEY|export KEY`.
//!
//! The assistant's transcripts in `<state dir>/agent/sessions.sqlite`. While
//! the profile's gateway runs it owns the store: reads open it read-only
//! beside the gateway, changes (`reset`, `delete`) go through the gateway's
//! `sessions.reset` / `sessions.delete`, so a run going on is stopped first
//! and clients see the change. Keys are OpenClaw's: `main` is
//! `agent:main:main`, a bare `work` is `agent:main:work`.

use std::sync::Arc;

use serde_json::{json, Value};

use omniclaw_agent::clock::SystemClock;
use omniclaw_agent::session::{SessionKey, StoreError};
use omniclaw_agent::store::{ListQuery, ResetReason, SessionInfo, SqliteStore, StoreSettings};
use omniclaw_gateway::assistant::{store_path, AGENT_ID};
use omniclaw_gateway::client::Client;
use omniclaw_os::live;

use crate::cli::{ConnectArgs, SessionsCommand};
use crate::ctx::Ctx;
use crate::out::{self, CliError, CmdResult, Outcome};

use super::setup::command;
use super::target::{runtime, Target};

pub fn run(ctx: &Ctx, cmd: SessionsCommand) -> CmdResult {
    match cmd {
        SessionsCommand::List { limit } => list(ctx, limit),
        SessionsCommand::Show { key, limit } => show(ctx, &key, limit),
        SessionsCommand::Reset { key } => change(ctx, &key, Change::Reset),
        SessionsCommand::Delete { key } => change(ctx, &key, Change::Delete),
        SessionsCommand::Export { key } => export(ctx, &key),
    }
}

fn key_of(raw: &str) -> Result<SessionKey, CliError> {
    SessionKey::parse(raw, AGENT_ID).map_err(|e| {
        CliError::usage(format!(
            "{e}; a session key looks like `main`, `work` or `agent:main:telegram:direct:123`"
        ))
    })
}

/// The profile's store for reading: its own when no gateway runs, a
/// read-only view beside the running one otherwise. `None`: no session yet.
fn reader(ctx: &Ctx) -> Result<(omniclaw_core::paths::Resolved, Option<SqliteStore>), CliError> {
    let resolved = ctx.resolve()?;
    ctx.print_notes(&resolved);
    let path = store_path(&resolved.state_dir);
    let clock = Arc::new(SystemClock);
    let store = match SqliteStore::open(&path, StoreSettings::default(), clock.clone()) {
        _ if !path.exists() => None,
        Ok(store) => Some(store),
        Err(StoreError::Locked { .. }) => {
            SqliteStore::open_read_only(&path, clock).map_err(CliError::failed)?
        }
        Err(e) => return Err(CliError::failed(e)),
    };
    Ok((resolved, store))
}

fn list(ctx: &Ctx, limit: usize) -> CmdResult {
    let (resolved, store) = reader(ctx)?;
    let page = match &store {
        Some(s) => Some(
            s.list(&ListQuery {
                limit,
                offset: 0,
                agent_id: None,
            })
            .map_err(CliError::failed)?,
        ),
        None => None,
    };
    let sessions = page.as_ref().map(|p| p.sessions.as_slice()).unwrap_or(&[]);
    if ctx.json {
        out::json(&json!({
            "ok": true,
            "profile": resolved.profile.name(),
            "total": page.as_ref().map_or(0, |p| p.total),
            "sessions": sessions.iter().map(row_json).collect::<Vec<_>>(),
        }));
        return Ok(Outcome::Ok);
    }
    if sessions.is_empty() {
        println!(
            "No sessions of profile {} yet: chat with its gateway (`openclaw tui`, Telegram or the app) to start one.",
            resolved.profile
        );
        return Ok(Outcome::Ok);
    }
    let rows: Vec<Vec<String>> = sessions
        .iter()
        .map(|s| {
            vec![
                s.key.to_string(),
                s.message_count.to_string(),
                format!("{}", s.tokens_in + s.tokens_out),
                format!("${:.4}", s.spend_usd),
                status_word(s),
                s.last_message_preview.clone().unwrap_or_default(),
            ]
        })
        .collect();
    print!(
        "{}",
        out::table(
            &[
                "SESSION",
                "MESSAGES",
                "TOKENS",
                "SPEND",
                "LAST RUN",
                "LAST MESSAGE"
            ],
            &rows
        )
    );
    if let Some(p) = &page {
        if p.total > sessions.len() as u64 {
            println!("({} of {}; --limit N shows more)", sessions.len(), p.total);
        }
    }
    Ok(Outcome::Ok)
}

fn status_word(s: &SessionInfo) -> String {
    if s.running {
        "running".into()
    } else if s.interrupted {
        "interrupted".into()
    } else {
        s.last_run_status.map_or("–", |r| r.as_str()).to_string()
    }
}

fn row_json(s: &SessionInfo) -> Value {
    json!({
        "key": s.key.as_str(),
        "sessionId": s.session_id,
        "label": s.label,
        "createdAt": s.created_at,
        "updatedAt": s.updated_at,
        "messages": s.message_count,
        "inputTokens": s.tokens_in,
        "outputTokens": s.tokens_out,
        "spendUsd": s.spend_usd,
        "lastMessagePreview": s.last_message_preview,
        "lastRunId": s.last_run_id,
        "lastRunStatus": s.last_run_status.map(|r| r.as_str()),
        "running": s.running,
        "interrupted": s.interrupted,
    })
}

fn missing(resolved: &omniclaw_core::paths::Resolved, key: &SessionKey) -> CliError {
    CliError::failed(format!(
        "profile {} has no session {key}: `{} sessions list` shows the ones it has",
        resolved.profile,
        command(resolved)
    ))
}

fn show(ctx: &Ctx, raw: &str, limit: usize) -> CmdResult {
    let key = key_of(raw)?;
    let (resolved, store) = reader(ctx)?;
    let Some(store) = store else {
        return Err(missing(&resolved, &key));
    };
    let Some(info) = store.get(&key).map_err(CliError::failed)? else {
        return Err(missing(&resolved, &key));
    };
    let page = store
        .history_page(&key, limit, 0)
        .map_err(CliError::failed)?;
    if ctx.json {
        out::json(&json!({
            "ok": true,
            "session": row_json(&info),
            "messages": page.messages.iter().map(|m| json!({"seq": m.seq, "id": m.id, "runId": m.run_id, "message": m.message})).collect::<Vec<_>>(),
            "hasMore": page.has_more,
        }));
        return Ok(Outcome::Ok);
    }
    println!(
        "{key} · session {} · {} messages · {} tokens · ${:.4}",
        info.session_id,
        info.message_count,
        info.tokens_in + info.tokens_out,
        info.spend_usd
    );
    if page.has_more {
        println!(
            "(the last {} messages; --limit N shows more)",
            page.messages.len()
        );
    }
    for m in &page.messages {
        println!("{}", render(&m.message));
    }
    Ok(Outcome::Ok)
}

/// One message as a reader wants it: who spoke, then what (tool calls and
/// results folded to one line each).
fn render(message: &omniclaw_agent::message::Message) -> String {
    use omniclaw_agent::message::{AssistantBlock, Message};
    match message {
        Message::User(u) => format!("\nyou: {}", u.content),
        Message::Assistant(a) => {
            let mut lines = Vec::new();
            let text = a.text();
            if !text.is_empty() {
                lines.push(format!("\nassistant ({}): {text}", a.model));
            }
            for b in &a.content {
                if let AssistantBlock::ToolCall(c) = b {
                    lines.push(format!("  ↳ {} {}", c.name, c.arguments));
                }
            }
            if let Some(e) = &a.error_message {
                lines.push(format!("  ✗ {e}"));
            }
            lines.join("\n")
        }
        Message::ToolResult(r) => {
            let text = r.text();
            let first = text.lines().next().unwrap_or("");
            let more = if text.lines().count() > 1 { " …" } else { "" };
            format!(
                "  {} {}: {first}{more}",
                if r.is_error { "✗" } else { "✓" },
                r.tool_name
            )
        }
    }
}

fn export(ctx: &Ctx, raw: &str) -> CmdResult {
    let key = key_of(raw)?;
    let (resolved, store) = reader(ctx)?;
    let Some(store) = store else {
        return Err(missing(&resolved, &key));
    };
    let cwd = resolved.display(&resolved.state_dir);
    let mut lines = Vec::new();
    let found = store
        .export(&key, &cwd, &mut lines)
        .map_err(CliError::failed)?;
    if !found {
        return Err(missing(&resolved, &key));
    }
    // Printed as one text, so a reader that stops early (`| head`) ends
    // the command quietly like every other output.
    print!("{}", String::from_utf8_lossy(&lines));
    Ok(Outcome::Ok)
}

#[derive(Clone, Copy)]
enum Change {
    Reset,
    Delete,
}

impl Change {
    fn method(self) -> &'static str {
        match self {
            Change::Reset => "sessions.reset",
            Change::Delete => "sessions.delete",
        }
    }
}

fn change(ctx: &Ctx, raw: &str, what: Change) -> CmdResult {
    let key = key_of(raw)?;
    let resolved = ctx.resolve()?;
    let done = if live::running_pid(&resolved.state_dir).is_some() {
        through_gateway(ctx, &key, what)?
    } else {
        let path = store_path(&resolved.state_dir);
        if !path.exists() {
            return Err(missing(&resolved, &key));
        }
        let store = SqliteStore::open(&path, StoreSettings::default(), Arc::new(SystemClock))
            .map_err(CliError::failed)?;
        if store.get(&key).map_err(CliError::failed)?.is_none() {
            return Err(missing(&resolved, &key));
        }
        match what {
            Change::Reset => {
                store
                    .reset(&key, ResetReason::Reset)
                    .map_err(CliError::failed)?;
                true
            }
            Change::Delete => store.delete(&key).map_err(CliError::failed)?,
        }
    };
    if ctx.json {
        out::json(&json!({"ok": true, "key": key.as_str(), "changed": done}));
    } else {
        match what {
            Change::Reset => println!(
                "{key}: reset (its transcript so far stays in the store; the next message starts afresh)"
            ),
            Change::Delete if done => println!("{key}: deleted with its transcript"),
            Change::Delete => println!("{key}: there was no such session"),
        }
    }
    Ok(Outcome::Ok)
}

/// A change made by the running gateway (it owns the store, and stops a
/// run of the session first).
fn through_gateway(ctx: &Ctx, key: &SessionKey, what: Change) -> Result<bool, CliError> {
    let target = Target::load(ctx, &ConnectArgs::default())?;
    let auth = target.auth.clone().map_err(CliError::usage)?;
    let url = target.url();
    let reply = runtime()?
        .block_on(async {
            let client = Client::connect(&url, auth, &["operator.admin"]).await?;
            let r = client
                .call(what.method(), json!({"key": key.as_str()}))
                .await;
            client.close().await;
            r
        })
        .map_err(|e| {
            CliError::failed(format!(
                "the gateway of profile {} at {url} refused {}: {e}",
                target.resolved.profile,
                what.method()
            ))
        })?;
    Ok(match what {
        Change::Reset => true,
        Change::Delete => reply["deleted"] == json!(true),
    })
}
