//! `omniclaw [--profile P] onboard [--non-interactive …]`: set a profile up,
//! or complete one that exists — the port, the assistant's model (provider,
//! API key, the model the key may use, a test message with its real reply
//! and cost) and a Telegram bot: optional for a main bot, with the operator
//! and the targets for a rescue bot (which may add a model too) — then
//! write everything and optionally install the service and wait until it
//! is healthy.
//!
//! The steps are `omniclaw_onboard`'s, shared with the desktop app's
//! wizards; this module asks the questions and prints. Every answer is
//! collected and checked before anything is written, so a cancel (Ctrl+C,
//! EOF) or a refused answer leaves no file and no keychain entry behind; a
//! write that fails half-way is undone. A profile that exists keeps what
//! its config has: the answers are added through the config edit path.
//! Secrets (the bot token, the API key) are read from a hidden prompt,
//! stdin (one of them) or a file, never argv, and never written into a
//! file or printed.
//!
//! With `--install-service` onboarding ends only once the service's
//! gateway answers `health` and its bot polls (or says why not, exit 1):
//! a user who asked for a running bot learns at once whether they have
//! one. Without it nothing is started; the command to start it is printed.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::Path;

use serde_json::json;

use omniclaw_channels::telegram::DEFAULT_API_ROOT;
use omniclaw_core::advice;
use omniclaw_core::config::ProviderApi;
use omniclaw_core::paths::Resolved;
use omniclaw_core::rescue::{parse_targets, parse_user_id};
use omniclaw_onboard as onboard;
use omniclaw_onboard::{
    Answers, KeyNeed, ModelAnswers, ModelError, ModelInfo, OnboardError, Operator, PortPlan,
    ProviderDraft, ProviderKind, ProviderOffer, StoreCheck, TelegramAnswers, TestReply,
    HEALTH_WAIT, PAIR_WAIT,
};
use omniclaw_os::secrets::{fingerprint, Routed};

use crate::cli::{InstallArgs, OnboardArgs};
use crate::ctx::Ctx;
use crate::out::{self, CliError, CmdResult, Outcome};

use super::setup::command;

/// Models shown at once when picking one; the rest are found by searching.
const SHOWN_MODELS: usize = 40;

fn cancelled() -> CliError {
    CliError::failed("onboarding cancelled; nothing was changed")
}

/// A refused answer is a usage error (exit 2), anything else a failure.
/// An unreachable Bot API names the flag that points elsewhere; a model
/// step's refusal, the flag that gave the answer.
fn cli_error(e: OnboardError) -> CliError {
    match e {
        OnboardError::Offline { what, .. } => CliError::failed(format!(
            "{}; nothing was changed",
            advice::telegram_unreachable(&what, "give your own Bot API server with --api-root URL")
        )),
        OnboardError::Model(m) => model_error(m),
        e if e.is_usage() => CliError::usage(e),
        e => CliError::failed(e),
    }
}

/// A model step's refusal with the flag it concerns.
fn model_error(e: ModelError) -> CliError {
    let text = match &e {
        ModelError::KeyMissing { .. } => {
            format!("{e}: pipe it in with --api-key-stdin, or give --api-key-file PATH")
        }
        ModelError::BadId(_) => format!("--provider-id: {e}"),
        ModelError::BadBaseUrl { .. } => format!("--base-url: {e}"),
        ModelError::BadApi { .. } => format!("--api: {e}"),
        ModelError::UnknownModel { .. } => format!("--model: {e}"),
        ModelError::ProviderClash { .. } => format!("{e} (--provider-id ID)"),
        _ => e.to_string(),
    };
    let text = format!("{text}; nothing was changed");
    if e.is_usage() {
        CliError::usage(text)
    } else {
        CliError::failed(text)
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

    /// A secret, not echoed.
    fn hidden(&mut self, question: &str) -> Result<String, CliError> {
        rpassword::prompt_password(question)
            .map(|s| s.trim().to_string())
            .map_err(|_| cancelled())
    }
}

/// Everything onboarding does, decided before anything is written.
struct Plan {
    answers: Answers,
    install_service: bool,
    /// The model's answer to the test message.
    test: Option<TestReply>,
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

/// The first line of a secret's file (`--api-key-file`,
/// `--telegram-token-file`).
fn secret_file(path: &Path, flag: &str, what: &str) -> Result<String, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        CliError::usage(format!(
            "{flag}: cannot read {what} from {}: {e}",
            path.display()
        ))
    })?;
    let line = text.lines().next().unwrap_or_default().trim().to_string();
    if line.is_empty() {
        return Err(CliError::usage(format!(
            "{flag}: {} holds no {what}: put it on the file's first line",
            path.display()
        )));
    }
    Ok(line)
}

/// The secrets the flags name: one from stdin at most, the others from
/// their files. Returns the bot token and the API key.
fn flag_secrets(args: &OnboardArgs) -> Result<(Option<String>, Option<String>), CliError> {
    if args.telegram_token_stdin && args.api_key_stdin {
        return Err(CliError::usage(
            "stdin carries one secret: give the API key with --api-key-file PATH (or the bot token with --telegram-token-file PATH)",
        ));
    }
    let mut stdin = String::new();
    if args.telegram_token_stdin || args.api_key_stdin {
        std::io::stdin()
            .read_to_string(&mut stdin)
            .map_err(|e| CliError::failed(format!("cannot read stdin: {e}")))?;
    }
    let stdin = stdin.trim().to_string();
    let token = if args.telegram_token_stdin {
        if stdin.is_empty() {
            return Err(CliError::usage("no token on stdin: pipe the BotFather token in, e.g. `printf %s \"$TOKEN\" | omniclaw --profile rescue onboard --non-interactive --telegram-token-stdin`"));
        }
        Some(stdin.clone())
    } else {
        match &args.telegram_token_file {
            Some(p) => Some(secret_file(p, "--telegram-token-file", "the bot token")?),
            None => None,
        }
    };
    let key = if args.api_key_stdin {
        if stdin.is_empty() {
            return Err(CliError::usage("no API key on stdin: pipe it in, e.g. `printf %s \"$OPENAI_API_KEY\" | omniclaw onboard --non-interactive --provider openai --api-key-stdin --model gpt-4o-mini`"));
        }
        Some(stdin)
    } else {
        match &args.api_key_file {
            Some(p) => Some(secret_file(p, "--api-key-file", "the API key")?),
            None => None,
        }
    };
    Ok((token, key))
}

fn non_interactive(a: &Asked) -> Result<Plan, CliError> {
    let (ctx, resolved, args) = (a.ctx, a.resolved, a.args);
    let own = resolved.profile.clone();
    let targets = parse_targets(&args.targets.join(","), &own).map_err(CliError::usage)?;
    if args.watch_rollback && targets.is_empty() {
        return Err(CliError::usage(
            "--watch-rollback is for the watch of the targets: name them with --target PROFILE",
        ));
    }
    let (token, key) = flag_secrets(args)?;
    let model = model_from_flags(a, key)?;
    let telegram = match token {
        Some(token) => {
            let api_root = api_root(ctx, resolved, args);
            let username = check_bot(a, &token, api_root.as_deref()).map_err(cli_error)?;
            Some(TelegramAnswers {
                token,
                username,
                api_root,
                allow_from: args.allow_from.clone(),
                // Targets named on purpose are watched.
                watch: !targets.is_empty(),
                targets,
                watch_rollback: args.watch_rollback,
            })
        }
        None => {
            if !args.allow_from.is_empty() || !args.targets.is_empty() {
                return Err(CliError::usage(
                    "--allow-from and --target configure the Telegram bot: give its token with --telegram-token-stdin or --telegram-token-file PATH",
                ));
            }
            None
        }
    };
    let (model, test) = model.unzip();
    Ok(Plan {
        answers: Answers {
            port: args.port,
            telegram,
            model,
        },
        install_service: args.install_service,
        test,
    })
}

/// The model the flags name, listed and tested; `None` without
/// `--provider`.
fn model_from_flags(
    a: &Asked,
    key: Option<String>,
) -> Result<Option<(ModelAnswers, TestReply)>, CliError> {
    let args = a.args;
    let Some(kind) = args.provider else {
        if args.model.is_some()
            || args.base_url.is_some()
            || args.api.is_some()
            || args.provider_id.is_some()
            || key.is_some()
        {
            return Err(CliError::usage(
                "--model, --base-url, --api, --provider-id and the API key set up the assistant's model: name its provider with --provider openai|anthropic|openrouter|ollama|custom",
            ));
        }
        return Ok(None);
    };
    let draft = draft_from_flags(a, kind, key).map_err(model_error)?;
    eprintln!("Asking {} at {} for its models…", draft.id, draft.base_url);
    let models = a
        .runtime
        .block_on(onboard::list_models(&draft))
        .map_err(model_error)?;
    let Some(wanted) = &args.model else {
        return Err(CliError::usage(format!(
            "--model is missing: say which model of {} to use; it lists: {}; nothing was changed",
            draft.id,
            onboard::closest(&models, "", 10).join(", ")
        )));
    };
    let model = models
        .iter()
        .find(|m| m.id == *wanted)
        .cloned()
        .ok_or_else(|| {
            model_error(ModelError::UnknownModel {
                provider: draft.id.clone(),
                model: wanted.clone(),
                listed: onboard::closest(&models, wanted, 10),
            })
        })?;
    let answers = ModelAnswers {
        provider: draft,
        model,
    };
    let reply = send_test(a, &answers).map_err(model_error)?;
    Ok(Some((answers, reply)))
}

/// Where to look for a local Ollama: `--ollama-url`, else `OLLAMA_HOST`
/// as Ollama reads it, else its default address.
fn ollama_url(a: &Asked) -> String {
    match &a.args.ollama_url {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => onboard::ollama_url(a.ctx.env.get("OLLAMA_HOST")),
    }
}

/// The provider the flags describe (`--base-url`, for Ollama the local
/// one's address by default, `--api`, `--provider-id`).
fn draft_from_flags(
    a: &Asked,
    kind: ProviderKind,
    key: Option<String>,
) -> Result<ProviderDraft, ModelError> {
    let args = a.args;
    let base_url = args
        .base_url
        .clone()
        .or_else(|| (kind == ProviderKind::Ollama).then(|| ollama_url(a)));
    ProviderDraft::new(
        kind,
        args.provider_id.as_deref(),
        base_url.as_deref(),
        args.api,
        key,
    )
}

/// Sends the test message and says what came back.
fn send_test(a: &Asked, answers: &ModelAnswers) -> Result<TestReply, ModelError> {
    eprintln!("Sending a test message to {}…", answers.model_ref());
    let reply = a
        .runtime
        .block_on(onboard::test_message(&answers.provider, &answers.model))?;
    eprintln!(
        "  ✓ {} answered in {:.1} s: {}",
        answers.model_ref(),
        reply.elapsed.as_secs_f64(),
        quoted(&reply.text)
    );
    eprintln!("    {}", spent(answers, &reply));
    Ok(reply)
}

/// The reply on one line, in quotes.
fn quoted(text: &str) -> String {
    format!(
        "\"{}\"",
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    )
}

/// Tokens and cost of the test message.
fn spent(answers: &ModelAnswers, reply: &TestReply) -> String {
    let tokens = format!(
        "{} tokens in, {} out",
        reply.input_tokens, reply.output_tokens
    );
    match reply.cost_usd {
        // Ollama runs the model on this machine (or one of the user's own).
        Some(usd) if usd == 0.0 && answers.provider.kind == ProviderKind::Ollama => {
            format!("{tokens}, free: Ollama runs the model on your own machine")
        }
        Some(usd) => format!("{tokens}, cost ${usd:.6}"),
        None => format!(
            "{tokens}, cost unknown: {} publishes no price for {} (set models.providers.{}.models[].cost to count its spend)",
            answers.provider.id, answers.model.id, answers.provider.id
        ),
    }
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
    let (resolved, args) = (a.resolved, a.args);
    let mut prompt = Prompt {
        lines: std::io::stdin().lock().lines(),
    };
    let own = resolved.profile.clone();
    eprintln!(
        "Onboarding profile {own} ({}). Ctrl+C cancels; nothing is written until the end.",
        resolved.display(&resolved.config_path)
    );

    // 1. Port: derived ports and conflicts shown before going on.
    let (port, plan) = ask_port(a, &mut prompt)?;
    let mut api_root = api_root(a.ctx, resolved, args);

    // A main bot is there for its assistant: the model first, Telegram
    // optional. A rescue bot is there for its Telegram bot: the model is
    // an extra at the end.
    let mut model = None;
    if !plan.rescue {
        model = ask_model(a, &mut prompt, plan.model.as_deref())?;
    }
    let mut telegram = None;
    if let Some((token, username)) = ask_token(a, &mut prompt, &mut api_root)? {
        let allow_from = ask_operator(a, &mut prompt, &token, &username, api_root.as_deref())?;
        let targets = if plan.rescue {
            ask_targets(a, &mut prompt)?
        } else {
            parse_targets(&args.targets.join(","), &own).map_err(CliError::usage)?
        };
        let watch_rollback = !targets.is_empty()
            && (args.watch_rollback || ask_watch_rollback(&mut prompt, &targets)?);
        telegram = Some(TelegramAnswers {
            token,
            username,
            api_root,
            allow_from,
            watch: !targets.is_empty(),
            targets,
            watch_rollback,
        });
    }
    if plan.rescue {
        model = ask_model(a, &mut prompt, plan.model.as_deref())?;
    }

    // Last: the service.
    let install_service = args.install_service
        || prompt.yes(
            "Install the gateway as a service, start it and wait until it is healthy?",
            false,
        )?;
    let (model, test) = model.unzip();
    Ok(Plan {
        answers: Answers {
            port,
            telegram,
            model,
        },
        install_service,
        test,
    })
}

/// Step 1: the base port (the flag's, or asked), shown with its derived
/// ports until it collides with nothing.
fn ask_port(a: &Asked, prompt: &mut Prompt) -> Result<(Option<u16>, PortPlan), CliError> {
    let (ctx, resolved, args) = (a.ctx, a.resolved, a.args);
    let first = onboard::plan_ports(resolved, &ctx.env, args.port).map_err(cli_error)?;
    let question = if first.exists {
        format!("Base port [{}]: ", first.base)
    } else {
        "Base port [auto: a free slot]: ".to_string()
    };
    loop {
        let asked = match args.port {
            Some(p) => Some(p),
            None => {
                let a = prompt.ask(&question)?;
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
            return Ok((asked, plan));
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
    }
}

/// The model step: a provider (a local Ollama found by itself), its key,
/// the model, the test message. `None`: no model now. Answers given as
/// flags are taken as they are; one that fails ends onboarding.
fn ask_model(
    a: &Asked,
    prompt: &mut Prompt,
    configured: Option<&str>,
) -> Result<Option<(ModelAnswers, TestReply)>, CliError> {
    let (args, cli) = (a.args, command(a.resolved));
    if let Some(current) = configured {
        if args.provider.is_none()
            && !prompt.yes(
                &format!("The assistant uses {current}. Set up another model (it becomes the primary, {current} the first fallback)?"),
                false,
            )?
        {
            return Ok(None);
        }
    }
    let ollama_url = ollama_url(a);
    loop {
        let kind = match args.provider {
            Some(kind) => kind,
            None => match ask_provider(a, prompt, &ollama_url)? {
                Some(kind) => kind,
                None => {
                    eprintln!("  no model for now; `{cli} onboard` adds one later");
                    return Ok(None);
                }
            },
        };
        let draft = match ask_draft(a, prompt, kind, &ollama_url) {
            Ok(d) => d,
            Err(e) if args.provider.is_some() => return Err(e),
            Err(e) => {
                eprintln!("  ✗ {}", e.message());
                continue;
            }
        };
        eprintln!("Asking {} at {} for its models…", draft.id, draft.base_url);
        let models = match a.runtime.block_on(onboard::list_models(&draft)) {
            Ok(m) => m,
            Err(e) if args.provider.is_some() => return Err(model_error(e)),
            Err(e) => {
                eprintln!("  ✗ {e}");
                continue;
            }
        };
        eprintln!("  ✓ {} lists {} model(s)", draft.id, models.len());
        loop {
            let model = match &args.model {
                Some(id) => onboard::pick_model(&draft, &models, id).map_err(model_error)?,
                None => ask_pick(prompt, &draft, &models)?,
            };
            let answers = ModelAnswers {
                provider: draft.clone(),
                model,
            };
            match send_test(a, &answers) {
                Ok(reply) => return Ok(Some((answers, reply))),
                Err(e) if args.model.is_some() => return Err(model_error(e)),
                Err(e) => {
                    eprintln!("  ✗ {e}");
                    if !prompt.yes("Choose another model?", true)? {
                        break;
                    }
                }
            }
        }
        if args.provider.is_some() {
            return Err(CliError::failed(
                "no model of the provider given with --provider answered; nothing was changed",
            ));
        }
    }
}

/// Which provider; `None`: no model now.
fn ask_provider(
    a: &Asked,
    prompt: &mut Prompt,
    ollama_url: &str,
) -> Result<Option<ProviderKind>, CliError> {
    let offers = a.runtime.block_on(onboard::probe_providers(ollama_url));
    eprintln!("The assistant's model, from:");
    for (i, offer) in offers.iter().enumerate() {
        let note = match (&offer.kind, &offer.running) {
            (ProviderKind::Ollama, Some(o)) => {
                format!(" — running at {}, {} model(s)", o.base_url, o.models.len())
            }
            (ProviderKind::Ollama, None) => format!(" — none found at {ollama_url}"),
            _ => String::new(),
        };
        eprintln!("  {}) {}{note}", i + 1, offer.kind.label());
    }
    let local = ProviderOffer::suggested(&offers) == Some(ProviderKind::Ollama);
    let question = if local {
        "Provider [1-5; empty: 4, the local Ollama; `-`: no model now]: "
    } else {
        "Provider [1-5; empty: no model now]: "
    };
    loop {
        let answer = prompt.ask(question)?;
        match answer.as_str() {
            "" if local => return Ok(Some(ProviderKind::Ollama)),
            "" | "-" => return Ok(None),
            n => {
                let kind = n
                    .parse::<usize>()
                    .ok()
                    .and_then(|n| n.checked_sub(1))
                    .and_then(|i| ProviderKind::ALL.get(i).copied())
                    .or_else(|| ProviderKind::parse(n));
                match kind {
                    Some(k) => return Ok(Some(k)),
                    None => eprintln!("  answer a number from 1 to 5"),
                }
            }
        }
    }
}

/// The provider's base URL, API, id and key, checked offline.
fn ask_draft(
    a: &Asked,
    prompt: &mut Prompt,
    kind: ProviderKind,
    ollama_url: &str,
) -> Result<ProviderDraft, CliError> {
    let args = a.args;
    let mut base_url = args.base_url.clone();
    let mut api = args.api;
    let mut id = args.provider_id.clone();
    match kind {
        ProviderKind::Custom => {
            if base_url.is_none() {
                base_url =
                    Some(prompt.ask("Base URL of the server (like http://127.0.0.1:8000/v1): ")?);
            }
            if api.is_none() {
                let answer = prompt.ask(&format!(
                    "Its API [{}; empty: openai-completions]: ",
                    ProviderApi::NAMES.join(", ")
                ))?;
                if !answer.is_empty() {
                    api = Some(ProviderApi::parse(&answer).ok_or_else(|| {
                        CliError::usage(format!(
                            "{answer:?} is not an API: use one of {}",
                            ProviderApi::NAMES.join(", ")
                        ))
                    })?);
                }
            }
            if id.is_none() {
                let answer =
                    prompt.ask("Its name in the config (models.providers.NAME) [custom]: ")?;
                id = Some(answer).filter(|s| !s.is_empty());
            }
        }
        ProviderKind::Ollama if base_url.is_none() => base_url = Some(ollama_url.to_string()),
        _ => {}
    }
    let key = match &args.api_key_file {
        Some(p) => Some(secret_file(p, "--api-key-file", "the API key")?),
        None => match (kind.key_need(), kind) {
            (KeyNeed::Required, _) => Some(prompt.hidden(&format!(
                "{} API key (input hidden{}): ",
                kind.label(),
                kind.key_page()
                    .map_or(String::new(), |p| format!("; create one at {p}"))
            ))?),
            (KeyNeed::Optional, ProviderKind::Custom) => {
                Some(prompt.hidden("API key of the server (input hidden; empty: none): ")?)
            }
            (KeyNeed::Optional, _) => None,
        },
    };
    ProviderDraft::new(kind, id.as_deref(), base_url.as_deref(), api, key).map_err(model_error)
}

/// Shows the models and asks for one: a number, an id, or part of an id
/// to search.
fn ask_pick(
    prompt: &mut Prompt,
    draft: &ProviderDraft,
    models: &[ModelInfo],
) -> Result<ModelInfo, CliError> {
    let all: Vec<(usize, &ModelInfo)> = models.iter().enumerate().collect();
    show_models(&all);
    loop {
        let question = if models.len() == 1 {
            "Model [empty: 1]: ".to_string()
        } else {
            format!(
                "Model [1-{}, an id, or part of one to search]: ",
                models.len()
            )
        };
        let answer = prompt.ask(&question)?;
        let answer = if answer.is_empty() && models.len() == 1 {
            "1".to_string()
        } else {
            answer
        };
        if answer.is_empty() {
            continue;
        }
        match onboard::pick_model(draft, models, &answer) {
            Ok(m) => return Ok(m),
            Err(_) => {
                let wanted = answer.to_ascii_lowercase();
                let matches: Vec<(usize, &ModelInfo)> = models
                    .iter()
                    .enumerate()
                    .filter(|(_, m)| m.id.to_ascii_lowercase().contains(&wanted))
                    .collect();
                if matches.is_empty() {
                    eprintln!("  no model id of {} contains {answer:?}", draft.id);
                } else {
                    show_models(&matches);
                }
            }
        }
    }
}

/// Numbered model lines (numbers of the whole list), at most
/// [`SHOWN_MODELS`].
fn show_models(models: &[(usize, &ModelInfo)]) {
    for (i, m) in models.iter().take(SHOWN_MODELS) {
        let mut line = format!("  {:>3}) {}", i + 1, m.id);
        if m.name != m.id {
            line.push_str(&format!(" — {}", m.name));
        }
        if let Some(n) = m.context_window {
            line.push_str(&format!(" · {n} tokens"));
        }
        if let Some(c) = m.cost {
            line.push_str(&format!(" · ${}/${} per 1M tokens", c.input, c.output));
        }
        eprintln!("{line}");
    }
    if models.len() > SHOWN_MODELS {
        eprintln!(
            "  … and {} more: type part of an id to search",
            models.len() - SHOWN_MODELS
        );
    }
}

/// The bot token (`--telegram-token-file`, or a hidden prompt where empty
/// skips the bot), checked with `getMe`. When Telegram cannot be reached,
/// another Bot API server can be given, or the token again.
fn ask_token(
    a: &Asked,
    prompt: &mut Prompt,
    api_root: &mut Option<String>,
) -> Result<Option<(String, String)>, CliError> {
    if let Some(p) = &a.args.telegram_token_file {
        let token = secret_file(p, "--telegram-token-file", "the bot token")?;
        let username = check_bot(a, &token, api_root.as_deref()).map_err(cli_error)?;
        eprintln!("  ✓ the token belongs to @{username}");
        return Ok(Some((token, username)));
    }
    'token: loop {
        let token =
            prompt.hidden("BotFather token (input hidden; empty to skip the Telegram bot): ")?;
        if token.is_empty() {
            return Ok(None);
        }
        loop {
            match check_bot(a, &token, api_root.as_deref()) {
                Ok(username) => {
                    eprintln!("  ✓ the token belongs to @{username}");
                    return Ok(Some((token, username)));
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
                        *api_root = root;
                    }
                }
                Err(e) => {
                    eprintln!("  ✗ {}", cli_error(e).message());
                    continue 'token;
                }
            }
        }
    }
}

/// The operator: who wrote `/start` to the bot, or a user id.
fn ask_operator(
    a: &Asked,
    prompt: &mut Prompt,
    token: &str,
    username: &str,
    api_root: Option<&str>,
) -> Result<Vec<u64>, CliError> {
    let mut allow_from = a.args.allow_from.clone();
    if !allow_from.is_empty() {
        return Ok(allow_from);
    }
    let cli = command(a.resolved);
    eprintln!("Operator: send /start to @{username} from your Telegram account now. Waiting up to 5 minutes…");
    let root = api_root.unwrap_or(DEFAULT_API_ROOT);
    // Ctrl+C ends the process (nothing is written yet), so no cancel here.
    let waited = a.runtime.block_on(onboard::wait_for_operator(
        token,
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
        None => eprintln!(
            "  nobody wrote; you can approve the operator later with `{cli} pairing approve CODE`"
        ),
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
    Ok(allow_from)
}

/// The profiles a rescue bot may act on.
fn ask_targets(
    a: &Asked,
    prompt: &mut Prompt,
) -> Result<Vec<omniclaw_core::profile::Profile>, CliError> {
    let own = &a.resolved.profile;
    if !a.args.targets.is_empty() {
        return parse_targets(&a.args.targets.join(","), own).map_err(CliError::usage);
    }
    loop {
        let answer =
            prompt.ask("Profiles the bot may act on, comma-separated [every other profile]: ")?;
        match parse_targets(&answer, own) {
            Ok(t) => return Ok(t),
            Err(e) => eprintln!("  {e}"),
        }
    }
}

/// Whether the watch of `targets` (turned on with them) may roll one back
/// to its last good config; restarting is always allowed.
fn ask_watch_rollback(
    prompt: &mut Prompt,
    targets: &[omniclaw_core::profile::Profile],
) -> Result<bool, CliError> {
    let names: Vec<&str> = targets.iter().map(|p| p.name()).collect();
    eprintln!(
        "The bot will watch {} and restart a target that went down (rescue.watch).",
        names.join(", ")
    );
    prompt.yes(
        "Also roll a target back to its last good config when a bad edit brought it down?",
        false,
    )
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
    let model = plan.answers.model.as_ref();
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
        if let (Some(m), Some(p)) = (model, &written.model) {
            let key = if m.provider.key.is_some() {
                format!(", its API key in the {}", written.store)
            } else {
                String::new()
            };
            let was = p.replaced.as_ref().map_or(String::new(), |old| {
                format!(" (was {old}, now the first fallback)")
            });
            println!("  model      {}{was}{key}", p.model_ref);
        }
        if let (Some(m), Some(r)) = (model, &plan.test) {
            println!("  reply      {}", quoted(&r.text));
            println!("             {}", spent(m, r));
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
            "model": written.model.as_ref().map(|p| p.model_ref.clone()),
            "replacedModel": written.model.as_ref().and_then(|p| p.replaced.clone()),
            "test": plan.test.as_ref().map(|r| json!({
                "reply": r.text,
                "inputTokens": r.input_tokens,
                "outputTokens": r.output_tokens,
                "costUsd": r.cost_usd,
            })),
            "serviceInstalled": plan.install_service,
            "healthy": healthy.is_some(),
        }));
    }
    Ok(Outcome::Ok)
}
