//! `omniclaw [--profile P] onboard [--non-interactive …]`: set a profile up
//! with its Telegram bot — port, BotFather token (checked with `getMe`,
//! refused when another profile uses it), the operator, the targets — then
//! write everything and optionally install the service.
//!
//! Every answer is collected and checked before anything is written, so a
//! cancel (Ctrl+C, EOF) or a refused answer leaves no file and no keychain
//! entry behind. Writing then goes: `setup` (state dir, config, port), the
//! token into the secret store, the telegram settings into the config in
//! one atomic write; if that last write fails the stored token is removed
//! again. The token is read from stdin or a hidden prompt, never argv,
//! and never written into a file or printed.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::time::{Duration, Instant};

use omniclaw_core::config;
use omniclaw_core::profile::Profile;
use omniclaw_core::rescue::{check_token, parse_targets, parse_user_id};
use omniclaw_gateway::telegram::{ApiError, BotApi, ChatType, UpdateContent, DEFAULT_API_ROOT};
use omniclaw_os::profiles::{self, ConfigState};
use omniclaw_os::secrets::{fingerprint, SecretName, SecretStore};

use crate::cli::{InstallArgs, OnboardArgs, SetupArgs};
use crate::ctx::Ctx;
use crate::out::{CliError, CmdResult};

use super::setup::command;

/// How long the operator step waits for a `/start`.
const PAIR_WAIT: Duration = Duration::from_secs(300);

/// Everything onboarding writes, decided before anything is written.
struct Plan {
    port: Option<u16>,
    telegram: Option<Telegram>,
    install_service: bool,
}

struct Telegram {
    token: String,
    username: String,
    api_root: Option<String>,
    allow_from: Vec<u64>,
    targets: Vec<Profile>,
}

fn cancelled() -> CliError {
    CliError::failed("onboarding cancelled; nothing was changed")
}

/// Line-based prompts on the terminal; EOF cancels.
struct Prompt {
    lines: std::io::Lines<std::io::StdinLock<'static>>,
}

impl Prompt {
    fn ask(&mut self, question: &str) -> Result<String, CliError> {
        eprint!("{question}");
        let _ = std::io::stderr().flush();
        match self.lines.next() {
            Some(Ok(line)) => Ok(line.trim().to_string()),
            _ => Err(cancelled()),
        }
    }

    fn yes(&mut self, question: &str, default: bool) -> Result<bool, CliError> {
        let hint = if default { "[Y/n]" } else { "[y/N]" };
        loop {
            let a = self
                .ask(&format!("{question} {hint} "))?
                .to_ascii_lowercase();
            match a.as_str() {
                "" => return Ok(default),
                "y" | "yes" => return Ok(true),
                "n" | "no" => return Ok(false),
                _ => eprintln!("  answer y or n"),
            }
        }
    }
}

pub fn run(ctx: &Ctx, args: &OnboardArgs) -> CmdResult {
    let resolved = ctx.resolve()?;
    ctx.print_notes(&resolved);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failed(format!("cannot start the async runtime: {e}")))?;
    let api_root = args
        .api_root
        .clone()
        .or_else(|| configured_api_root(&resolved.config_path));
    let plan = if args.non_interactive || !std::io::stdin().is_terminal() {
        non_interactive(ctx, &resolved, args, api_root, &runtime)?
    } else {
        interactive(ctx, &resolved, args, api_root, &runtime)?
    };
    finish(ctx, &resolved, plan)
}

fn configured_api_root(path: &std::path::Path) -> Option<String> {
    match profiles::read_config(path) {
        ConfigState::Valid { loaded, .. } => loaded.config.channels.telegram.api_root.clone(),
        _ => None,
    }
}

fn non_interactive(
    ctx: &Ctx,
    resolved: &omniclaw_core::paths::Resolved,
    args: &OnboardArgs,
    api_root: Option<String>,
    runtime: &tokio::runtime::Runtime,
) -> Result<Plan, CliError> {
    let own = resolved.profile.clone();
    let targets = parse_targets(&args.targets.join(","), &own).map_err(CliError::usage)?;
    let telegram = if args.telegram_token_stdin {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| CliError::failed(format!("cannot read the token from stdin: {e}")))?;
        let token = text.trim().to_string();
        let username = check_bot(ctx, resolved, &token, api_root.as_deref(), runtime)?;
        Some(Telegram {
            token,
            username,
            api_root,
            allow_from: args.allow_from.clone(),
            targets,
        })
    } else {
        if !args.allow_from.is_empty() || !args.targets.is_empty() {
            return Err(CliError::usage(
                "--allow-from and --target configure the Telegram bot: give its token with --telegram-token-stdin",
            ));
        }
        None
    };
    Ok(Plan {
        port: args.port,
        telegram,
        install_service: args.install_service,
    })
}

fn interactive(
    ctx: &Ctx,
    resolved: &omniclaw_core::paths::Resolved,
    args: &OnboardArgs,
    api_root: Option<String>,
    runtime: &tokio::runtime::Runtime,
) -> Result<Plan, CliError> {
    let mut prompt = Prompt {
        lines: std::io::stdin().lock().lines(),
    };
    let own = resolved.profile.clone();
    let cli = command(resolved);
    eprintln!(
        "Onboarding profile {own} ({}). Ctrl+C cancels; nothing is written until the end.",
        resolved.display(&resolved.config_path)
    );

    // 1. Port.
    let port = match args.port {
        Some(p) => Some(p),
        None => loop {
            let a = prompt.ask("Base port [auto: a free slot]: ")?;
            if a.is_empty() {
                break None;
            }
            match a.parse::<u16>() {
                Ok(p) if p >= 1024 => break Some(p),
                _ => eprintln!("  a port is a number from 1024 to 65535"),
            }
        },
    };

    // 2. Token.
    let mut telegram = None;
    loop {
        let token = rpassword::prompt_password(
            "BotFather token (input hidden; empty to skip the Telegram bot): ",
        )
        .map_err(|_| cancelled())?;
        let token = token.trim().to_string();
        if token.is_empty() {
            break;
        }
        match check_bot(ctx, resolved, &token, api_root.as_deref(), runtime) {
            Ok(username) => {
                eprintln!("  ✓ the token belongs to @{username}");
                telegram = Some((token, username));
                break;
            }
            Err(e) => eprintln!("  ✗ {}", e.message()),
        }
    }
    let Some((token, username)) = telegram else {
        return Ok(Plan {
            port,
            telegram: None,
            install_service: args.install_service,
        });
    };

    // 3. Operator.
    let mut allow_from = args.allow_from.clone();
    if allow_from.is_empty() {
        eprintln!("Operator: send /start to @{username} from your Telegram account now. Waiting up to 5 minutes…");
        match wait_for_start(&token, api_root.as_deref(), runtime)? {
            Some((id, who)) => {
                if prompt.yes(&format!("  {who} (user id {id}) wrote. Is that you?"), true)? {
                    allow_from.push(id);
                }
            }
            None => eprintln!("  nobody wrote; you can approve the operator later with `{cli} pairing approve CODE`"),
        }
        if allow_from.is_empty() {
            loop {
                let a = prompt.ask("Operator's Telegram user id [empty: pair later]: ")?;
                if a.is_empty() {
                    break;
                }
                match parse_user_id(&a) {
                    Ok(id) => {
                        allow_from.push(id);
                        break;
                    }
                    Err(e) => eprintln!("  {e}"),
                }
            }
        }
    }

    // 4. Targets.
    let targets = if args.targets.is_empty() {
        loop {
            let a = prompt
                .ask("Profiles the bot may act on, comma-separated [every other profile]: ")?;
            match parse_targets(&a, &own) {
                Ok(t) => break t,
                Err(e) => eprintln!("  {e}"),
            }
        }
    } else {
        parse_targets(&args.targets.join(","), &own).map_err(CliError::usage)?
    };

    // 5. Service.
    let install_service = args.install_service
        || prompt.yes("Install the gateway as a service and start it?", false)?;
    Ok(Plan {
        port,
        telegram: Some(Telegram {
            token,
            username,
            api_root,
            allow_from,
            targets,
        }),
        install_service,
    })
}

/// Checks the token's shape, that no other profile uses it, and asks
/// Telegram (`getMe`). Returns the bot's username.
fn check_bot(
    ctx: &Ctx,
    resolved: &omniclaw_core::paths::Resolved,
    token: &str,
    api_root: Option<&str>,
    runtime: &tokio::runtime::Runtime,
) -> Result<String, CliError> {
    if token.is_empty() {
        return Err(CliError::usage("no token on stdin: pipe the BotFather token in, e.g. `printf %s \"$TOKEN\" | omniclaw --profile rescue onboard --non-interactive --telegram-token-stdin`"));
    }
    check_token(token).map_err(CliError::usage)?;
    let mine = fingerprint(token);
    let inv = ctx.inventory(resolved)?;
    for p in inv.profiles.iter().filter(|p| !p.is_current) {
        let scope = omniclaw_os::secrets::Scope::new(p.profile.name(), p.state_dir.clone());
        if let Ok(Some(other)) = ctx.store.get(&scope, SecretName::TelegramBotToken) {
            if fingerprint(&other) == mine {
                return Err(CliError::usage(format!(
                    "profile {} already uses this bot token (fingerprint {mine}): two gateways polling one bot steal each other's updates; create a new bot with @BotFather for {}",
                    p.profile, resolved.profile
                )));
            }
        }
    }
    let root = api_root.unwrap_or(DEFAULT_API_ROOT);
    let api = BotApi::new(root, token, Duration::from_secs(10)).map_err(CliError::failed)?;
    match runtime.block_on(api.get_me()) {
        Ok(me) => Ok(me.username),
        Err(ApiError::Unauthorized) => Err(CliError::usage(
            "Telegram refused this token (401 unauthorized): copy the token again from @BotFather (/mybots → API Token), or revoke and create a new one",
        )),
        Err(e @ ApiError::Network { .. }) => Err(CliError::failed(format!(
            "{e}\nnothing was changed; run onboard again when the network is back"
        ))),
        Err(e) => Err(CliError::failed(e)),
    }
}

/// Waits for a private message to the bot; returns who wrote.
fn wait_for_start(
    token: &str,
    api_root: Option<&str>,
    runtime: &tokio::runtime::Runtime,
) -> Result<Option<(u64, String)>, CliError> {
    let api = BotApi::new(
        api_root.unwrap_or(DEFAULT_API_ROOT),
        token,
        Duration::from_secs(25),
    )
    .map_err(CliError::failed)?;
    runtime.block_on(async {
        api.delete_webhook().await.map_err(CliError::failed)?;
        let deadline = Instant::now() + PAIR_WAIT;
        let mut offset = 0i64;
        while Instant::now() < deadline {
            let updates = match api.get_updates(offset, Duration::from_secs(20)).await {
                Ok(u) => u,
                Err(e @ ApiError::Conflict) => {
                    return Err(CliError::failed(format!(
                        "{e}; stop the gateway that runs this bot while onboarding"
                    )))
                }
                Err(e) => return Err(CliError::failed(e)),
            };
            for u in updates {
                offset = i64::from(u.update_id) + 1;
                if let UpdateContent::Message(m) = u.content {
                    if m.chat.type_field == ChatType::Private {
                        if let Some(from) = m.from.as_deref() {
                            let who = from
                                .username
                                .as_ref()
                                .map_or_else(|| from.first_name.clone(), |n| format!("@{n}"));
                            // Confirm what was read so the gateway does not handle it again.
                            let _ = api.get_updates(offset, Duration::ZERO).await;
                            return Ok(Some((from.id, who)));
                        }
                    }
                }
            }
        }
        Ok(None)
    })
}

/// Writes the plan: setup, the token, the telegram config, the service.
fn finish(ctx: &Ctx, resolved: &omniclaw_core::paths::Resolved, plan: Plan) -> CmdResult {
    let cli = command(resolved);
    let outcome = super::setup::run(
        ctx,
        &SetupArgs {
            port: plan.port,
            workspace: None,
        },
    )?;
    if let Some(tg) = &plan.telegram {
        let scope = Ctx::scope(resolved);
        ctx.prepare_store(resolved)?;
        ctx.store
            .set(&scope, SecretName::TelegramBotToken, &tg.token)
            .map_err(|e| CliError::failed(format!("cannot store the bot token: {e}; the profile is set up without its bot, run onboard again")))?;
        if let Err(e) = write_telegram(resolved, tg) {
            let _ = ctx.store.remove(&scope, SecretName::TelegramBotToken);
            return Err(e);
        }
        eprintln!(
            "Telegram bot @{} configured: token in the {} (fingerprint {}), {}",
            tg.username,
            ctx.store.mode(&scope),
            fingerprint(&tg.token),
            if tg.allow_from.is_empty() {
                format!("operators pair with a code (`{cli} pairing approve CODE`)")
            } else {
                format!(
                    "operators: {}",
                    tg.allow_from
                        .iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        );
    }
    if plan.install_service {
        super::service::install(
            ctx,
            &InstallArgs {
                port: None,
                force: false,
                dry_run: false,
                binary: None,
            },
        )?;
        super::service::start(ctx)?;
    } else {
        eprintln!("Start the gateway with `{cli} gateway` or install it as a service with `{cli} gateway install`.");
    }
    Ok(outcome)
}

fn write_telegram(
    resolved: &omniclaw_core::paths::Resolved,
    tg: &Telegram,
) -> Result<(), CliError> {
    let text = std::fs::read_to_string(&resolved.config_path).map_err(|e| {
        CliError::failed(format!(
            "cannot read {}: {e}",
            resolved.config_path.display()
        ))
    })?;
    let ids: Vec<String> = tg.allow_from.iter().map(u64::to_string).collect();
    let mut edits: Vec<(&str, String)> = vec![
        ("channels.telegram.enabled", "true".into()),
        (
            "channels.telegram.botToken",
            "{ source: 'keychain' }".into(),
        ),
        // The allowlist first: `dmPolicy: allowlist` is refused without one.
        (
            "channels.telegram.allowFrom",
            format!("[{}]", ids.join(", ")),
        ),
        (
            "channels.telegram.dmPolicy",
            if tg.allow_from.is_empty() {
                "'pairing'"
            } else {
                "'allowlist'"
            }
            .into(),
        ),
    ];
    if let Some(root) = &tg.api_root {
        edits.push((
            "channels.telegram.apiRoot",
            serde_json::Value::from(root.as_str()).to_string(),
        ));
    }
    if !tg.targets.is_empty() {
        let names: Vec<String> = tg
            .targets
            .iter()
            .map(|p| serde_json::Value::from(p.name()).to_string())
            .collect();
        edits.push(("rescue.targets", format!("[{}]", names.join(", "))));
    }
    let mut next = text;
    for (path, value) in &edits {
        next = config::set(&next, path, value)
            .map_err(|e| CliError::failed(format!("internal: cannot set {path}: {e}")))?;
    }
    omniclaw_os::fsx::atomic_write(&resolved.config_path, next.as_bytes()).map_err(|e| {
        CliError::failed(format!(
            "cannot write {}: {e}",
            resolved.config_path.display()
        ))
    })
}
