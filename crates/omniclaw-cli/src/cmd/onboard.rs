//! `omniclaw [--profile P] onboard [--non-interactive …]`: set a profile up
//! with its Telegram bot — port, BotFather token (checked with `getMe`,
//! refused when another profile uses it), the operator, the targets — then
//! write everything and optionally install the service and wait until it
//! is healthy.
//!
//! The steps are `omniclaw_onboard`'s, shared with the desktop
//! app's wizard; this module asks the questions and prints. Every answer is
//! collected and checked before anything is written, so a cancel (Ctrl+C,
//! EOF) or a refused answer leaves no file and no keychain entry behind; a
//! write that fails half-way is undone. The token is read from stdin or a
//! hidden prompt, never argv, and never written into a file or printed.
//!
//! With `--install-service` onboarding ends only once the service's
//! gateway answers `health` and its bot polls (or says why not, exit 1):
//! a user who asked for a running bot learns at once whether they have
//! one. Without it nothing is started; the command to start it is printed.

use std::io::{BufRead, IsTerminal, Read, Write};

use serde_json::json;

use omniclaw_channels::telegram::DEFAULT_API_ROOT;
use omniclaw_core::advice;
use omniclaw_core::paths::Resolved;
use omniclaw_core::rescue::{parse_targets, parse_user_id};
use omniclaw_onboard as onboard;
use omniclaw_onboard::{
    Answers, OnboardError, Operator, PortPlan, StoreCheck, TelegramAnswers, HEALTH_WAIT, PAIR_WAIT,
};
use omniclaw_os::secrets::{fingerprint, Routed};

use crate::cli::{InstallArgs, OnboardArgs};
use crate::ctx::Ctx;
use crate::out::{self, CliError, CmdResult, Outcome};

use super::setup::command;

fn cancelled() -> CliError {
    CliError::failed("onboarding cancelled; nothing was changed")
}

/// A refused answer is a usage error (exit 2), anything else a failure.
/// An unreachable Bot API names the flag that points elsewhere.
fn cli_error(e: OnboardError) -> CliError {
    if let OnboardError::Offline { what, .. } = &e {
        return CliError::failed(format!(
            "{}; nothing was changed",
            advice::telegram_unreachable(what, "give your own Bot API server with --api-root URL")
        ));
    }
    if e.is_usage() {
        CliError::usage(e)
    } else {
        CliError::failed(e)
    }
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

/// Everything onboarding does, decided before anything is written.
struct Plan {
    answers: Answers,
    install_service: bool,
}

pub fn run(ctx: &Ctx, args: &OnboardArgs) -> CmdResult {
    let resolved = ctx.resolve()?;
    ctx.print_notes(&resolved);
    // The secret store first: a keychain that refuses is said before the
    // first question, not after the last; with no keychain at all (a
    // headless machine) the profile keeps its secrets in its 0600 file,
    // as `setup` does.
    let file_store;
    let (store, headless) = match onboard::check_store(&resolved, &ctx.store).map_err(cli_error)? {
        StoreCheck::Ready => (&ctx.store, None),
        StoreCheck::Unreachable { why } => {
            file_store = Routed::system(true);
            (&file_store, Some(why))
        }
    };
    if let Some(why) = &headless {
        eprintln!(
            "note: no OS keychain is reachable ({why}): profile {} keeps its secrets in {} (mode 0600, readable by this user only)",
            resolved.profile,
            resolved.display(&Ctx::scope(&resolved).secrets_file())
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failed(format!("cannot start the async runtime: {e}")))?;
    let asked = Asked {
        ctx,
        store,
        resolved: &resolved,
        args,
        runtime: &runtime,
    };
    let plan = if args.non_interactive || !std::io::stdin().is_terminal() {
        non_interactive(&asked)?
    } else {
        interactive(&asked)?
    };
    finish(&asked, plan, headless.is_some())
}

/// What every step of one onboarding run works with.
struct Asked<'a> {
    ctx: &'a Ctx,
    /// The profile's secret store for this run (its 0600 file when no
    /// keychain is reachable).
    store: &'a Routed,
    resolved: &'a Resolved,
    args: &'a OnboardArgs,
    runtime: &'a tokio::runtime::Runtime,
}

/// The Bot API root: the flag, else the one the profile's config names.
fn api_root(ctx: &Ctx, resolved: &Resolved, args: &OnboardArgs) -> Option<String> {
    args.api_root.clone().or_else(|| {
        onboard::plan_ports(resolved, &ctx.env, None)
            .ok()
            .and_then(|p| p.api_root)
    })
}

fn non_interactive(a: &Asked) -> Result<Plan, CliError> {
    let (ctx, resolved, args) = (a.ctx, a.resolved, a.args);
    let own = resolved.profile.clone();
    let targets = parse_targets(&args.targets.join(","), &own).map_err(CliError::usage)?;
    let telegram = if args.telegram_token_stdin {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| CliError::failed(format!("cannot read the token from stdin: {e}")))?;
        let token = text.trim().to_string();
        if token.is_empty() {
            return Err(CliError::usage("no token on stdin: pipe the BotFather token in, e.g. `printf %s \"$TOKEN\" | omniclaw --profile rescue onboard --non-interactive --telegram-token-stdin`"));
        }
        let api_root = api_root(ctx, resolved, args);
        let username = check_bot(a, &token, api_root.as_deref()).map_err(cli_error)?;
        Some(TelegramAnswers {
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
        answers: Answers {
            port: args.port,
            telegram,
        },
        install_service: args.install_service,
    })
}

/// Prints the derived ports of a plan and its conflicts.
fn show_plan(plan: &PortPlan) {
    let ports: Vec<String> = plan
        .rows
        .iter()
        .map(|r| {
            format!(
                "{} {}{}",
                r.surface,
                r.range,
                if r.conflict { " (taken)" } else { "" }
            )
        })
        .collect();
    eprintln!("  ports: {}", ports.join(" · "));
    for c in &plan.conflicts {
        eprintln!("  ✗ {}\n    fix: {}", c.text, c.fix);
    }
}

fn interactive(a: &Asked) -> Result<Plan, CliError> {
    let (ctx, resolved, args, runtime) = (a.ctx, a.resolved, a.args, a.runtime);
    let mut prompt = Prompt {
        lines: std::io::stdin().lock().lines(),
    };
    let own = resolved.profile.clone();
    let cli = command(resolved);
    eprintln!(
        "Onboarding profile {own} ({}). Ctrl+C cancels; nothing is written until the end.",
        resolved.display(&resolved.config_path)
    );

    // 1. Port: derived ports and conflicts shown before going on.
    let port = loop {
        let asked = match args.port {
            Some(p) => Some(p),
            None => {
                let a = prompt.ask("Base port [auto: a free slot]: ")?;
                if a.is_empty() {
                    None
                } else {
                    match a.parse::<u16>() {
                        Ok(p) if p >= 1024 => Some(p),
                        _ => {
                            eprintln!("  a port is a number from 1024 to 65535");
                            continue;
                        }
                    }
                }
            }
        };
        let plan = onboard::plan_ports(resolved, &ctx.env, asked).map_err(cli_error)?;
        show_plan(&plan);
        if plan.conflicts.is_empty() {
            break asked;
        }
        if args.port.is_some() {
            return Err(CliError::usage(format!(
                "--port {} collides with other instances{}",
                plan.base,
                plan.suggested
                    .map_or(String::new(), |p| format!(": a free base port is {p}"))
            )));
        }
        if let Some(p) = plan.suggested {
            eprintln!("  a free base port is {p}");
        }
    };
    let mut api_root = api_root(ctx, resolved, args);

    // 2. Token. When Telegram cannot be reached, another Bot API server
    // can be given, or the token again (empty there skips the bot).
    let mut telegram = None;
    'token: loop {
        let token = rpassword::prompt_password(
            "BotFather token (input hidden; empty to skip the Telegram bot): ",
        )
        .map_err(|_| cancelled())?;
        let token = token.trim().to_string();
        if token.is_empty() {
            break;
        }
        loop {
            match check_bot(a, &token, api_root.as_deref()) {
                Ok(username) => {
                    eprintln!("  ✓ the token belongs to @{username}");
                    telegram = Some((token, username));
                    break 'token;
                }
                Err(OnboardError::Offline { what, .. }) => {
                    eprintln!(
                        "  ✗ {}",
                        advice::telegram_unreachable(&what, "enter your own Bot API server below")
                    );
                    let root = loop {
                        let answer = prompt.ask(
                            "Bot API server URL [empty: try again; `-`: give the token again]: ",
                        )?;
                        match answer.as_str() {
                            "" => break None,
                            "-" => continue 'token,
                            url if url.starts_with("http://") || url.starts_with("https://") => {
                                break Some(url.trim_end_matches('/').to_string())
                            }
                            _ => eprintln!(
                                "  a Bot API server URL starts with https:// (or http://)"
                            ),
                        }
                    };
                    if root.is_some() {
                        api_root = root;
                    }
                }
                Err(e) => {
                    eprintln!("  ✗ {}", cli_error(e).message());
                    continue 'token;
                }
            }
        }
    }
    let Some((token, username)) = telegram else {
        return Ok(Plan {
            answers: Answers {
                port,
                telegram: None,
            },
            install_service: args.install_service,
        });
    };

    // 3. Operator.
    let mut allow_from = args.allow_from.clone();
    if allow_from.is_empty() {
        eprintln!("Operator: send /start to @{username} from your Telegram account now. Waiting up to 5 minutes…");
        let root = api_root.as_deref().unwrap_or(DEFAULT_API_ROOT);
        // Ctrl+C ends the process (nothing is written yet), so no cancel here.
        let waited = runtime.block_on(onboard::wait_for_operator(
            &token,
            root,
            PAIR_WAIT,
            std::future::pending(),
        ));
        match waited.map_err(cli_error)? {
            Some(Operator { id, who }) => {
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
        || prompt.yes(
            "Install the gateway as a service, start it and wait until it is healthy?",
            false,
        )?;
    Ok(Plan {
        answers: Answers {
            port,
            telegram: Some(TelegramAnswers {
                token,
                username,
                api_root,
                allow_from,
                targets,
            }),
        },
        install_service,
    })
}

/// The token's shape, that no other profile uses it, and `getMe`.
/// Returns the bot's username.
fn check_bot(a: &Asked, token: &str, api_root: Option<&str>) -> Result<String, OnboardError> {
    onboard::check_token_unused(a.resolved, &a.ctx.env, a.store, token)?;
    a.runtime
        .block_on(onboard::get_me(token, api_root.unwrap_or(DEFAULT_API_ROOT)))
}

/// Writes the plan, then installs, starts and checks the service if asked.
fn finish(a: &Asked, plan: Plan, headless: bool) -> CmdResult {
    let (ctx, resolved, runtime) = (a.ctx, a.resolved, a.runtime);
    let cli = command(resolved);
    let written = onboard::write(resolved, &ctx.env, a.store, &plan.answers).map_err(cli_error)?;
    let tg = plan.answers.telegram.as_ref();
    let operators = tg.map(|t| {
        if t.allow_from.is_empty() {
            format!("operators pair with a code (`{cli} pairing approve CODE`)")
        } else {
            format!(
                "operators: {}",
                t.allow_from
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    });
    if !ctx.json {
        println!(
            "{} profile {}",
            if written.created { "Set up" } else { "Updated" },
            resolved.profile
        );
        println!("  state dir  {}", resolved.display(&resolved.state_dir));
        println!("  config     {}", resolved.display(&resolved.config_path));
        println!("  workspace  {}", resolved.display(&written.workspace));
        let ports: Vec<String> = written
            .rows
            .iter()
            .map(|r| format!("{} {}", r.surface, r.range))
            .collect();
        println!("  ports      {}", ports.join(" · "));
        if written.token_generated {
            println!("  token      generated into the {}", written.store);
        }
    }
    if let (Some(t), Some(operators)) = (tg, &operators) {
        eprintln!(
            "Telegram bot @{} configured: token in the {} (fingerprint {}), {operators}",
            t.username,
            written.store,
            fingerprint(&t.token)
        );
    }
    let mut healthy = None;
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
        eprintln!(
            "Waiting for the service's gateway to be healthy{} (up to {} s)…",
            if tg.is_some() {
                " and its bot to poll"
            } else {
                ""
            },
            HEALTH_WAIT.as_secs()
        );
        let endpoint = onboard::endpoint(resolved, &ctx.env, a.store).map_err(|e| {
            CliError::failed(format!(
                "the service was started but cannot be checked: {e}"
            ))
        })?;
        let h = runtime
            .block_on(onboard::wait_healthy(&endpoint, HEALTH_WAIT))
            .map_err(|e| {
                CliError::failed(format!(
                    "{e}\nthe profile is set up and its service installed; fix this, then check with `{cli} health`"
                ))
            })?;
        eprintln!(
            "✓ healthy: the gateway answers on port {}{}",
            endpoint.port,
            h.bot
                .as_ref()
                .map_or(String::new(), |b| format!(" and {b} polls"))
        );
        healthy = Some(h);
    } else if !ctx.json {
        eprintln!("Start the gateway with `{cli} gateway` or install it as a service with `{cli} gateway install`.");
    }
    if ctx.json {
        out::json(&json!({
            "ok": true,
            "profile": resolved.profile.name(),
            "created": written.created,
            "stateDir": resolved.state_dir,
            "configPath": resolved.config_path,
            "workspace": written.workspace,
            "port": written.base,
            "secretStore": written.store,
            "keychainUnreachable": headless,
            "bot": tg.map(|t| format!("@{}", t.username)),
            "serviceInstalled": plan.install_service,
            "healthy": healthy.is_some(),
        }));
    }
    Ok(Outcome::Ok)
}
