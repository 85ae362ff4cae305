//! `omniclaw [--profile P] setup [--port N] [--workspace DIR]`.
//!
//! Creates the state dir (0700), a valid config with a collision-free base
//! port, the workspace and the ownership marker. Every check runs before the
//! first write; a second run with the same arguments changes nothing; an
//! existing invalid config is never touched.

use std::path::{Path, PathBuf};

use serde_json::json;

use omniclaw_core::config;
use omniclaw_core::inventory;
use omniclaw_core::paths::{self, Resolved};
use omniclaw_core::ports::{self, Instance};
use omniclaw_core::profile::Profile;
use omniclaw_os::discovery::{self, Marker};
use omniclaw_os::fsx;
use omniclaw_os::portowner;
use omniclaw_os::profiles::{self, ConfigState, Inventory};
use omniclaw_os::secrets::{self, SecretName, SecretStore};

use crate::cli::SetupArgs;
use crate::ctx::Ctx;
use crate::out::{self, CliError, CmdResult, Outcome};

use super::secrets::KEYCHAIN_REF;

pub fn run(ctx: &Ctx, args: &SetupArgs) -> CmdResult {
    let resolved = ctx.resolve()?;
    ctx.print_notes(&resolved);
    let inv = ctx.inventory(&resolved)?;
    check_ownership(&resolved, &inv)?;

    let workspace_arg = args
        .workspace
        .as_deref()
        .map(|w| workspace_value(w, &resolved, ctx.cwd.as_deref()))
        .transpose()?;
    let explicit_port = args.port.or(resolved.env_port);
    let others: Vec<Instance> = inv
        .instances(&ctx.env)
        .into_iter()
        .filter(|i| Some(i.name.as_str()) != inv.current().map(|c| c.label.as_str()))
        .collect();

    let read = profiles::read_config(&resolved.config_path);
    let read_before = read.text().map(str::to_owned);
    let (text, created) = match read {
        ConfigState::Unreadable(msg) => {
            return Err(CliError::failed(format!(
                "{msg}\nsetup changed nothing; run `{} doctor` after fixing it",
                command(&resolved)
            )))
        }
        ConfigState::Invalid { errors, .. } => {
            return Err(CliError::failed(format!(
                "the config {} is invalid, so setup leaves it untouched:\n{errors}\nfix these keys (or run `{} doctor`), then run setup again",
                resolved.display(&resolved.config_path),
                command(&resolved)
            )))
        }
        ConfigState::Missing => {
            if let Some(p) = explicit_port {
                // The new config keeps every default surface: they must fit.
                let from = if args.port.is_some() {
                    "--port"
                } else {
                    "OMNICLAW_GATEWAY_PORT"
                };
                ports::allocate(&ports::PortInputs::with_base(p))
                    .map_err(|e| CliError::usage(format!("{from} {p}: {e}")))?;
            }
            let port = match explicit_port {
                Some(p) => p,
                None => free_base(&resolved, &others)?,
            };
            let ws = workspace_arg.as_deref();
            // The gateway token lives in the secret store; the config only refers to it.
            let text = config::set(
                &config::initial(port, ws),
                &SecretName::GatewayAuthToken.path(),
                KEYCHAIN_REF,
            )
            .map_err(|e| CliError::failed(format!("internal: {e}")))?;
            (text, true)
        }
        ConfigState::Valid { text, .. } => {
            // Idempotent: only what the flags ask to change is changed.
            let mut text = text;
            let current_port = config::load(&text)
                .ok()
                .and_then(|l| l.config.gateway_port());
            if let Some(p) = args.port.filter(|p| Some(*p) != current_port) {
                text = config::set(&text, "gateway.port", &p.to_string()).map_err(CliError::usage)?;
            }
            if let Some(ws) = &workspace_arg {
                let current = config::parse(&text)
                    .ok()
                    .and_then(|d| inventory::configured_workspace(d.value()).map(str::to_owned));
                if current.as_deref() != Some(ws.as_str()) {
                    text = config::set(&text, "agents.defaults.workspace", &json!(ws).to_string())
                        .map_err(CliError::usage)?;
                }
            }
            (text, false)
        }
    };

    // Check the result as a whole against every other instance before writing.
    let loaded = config::load(&text).map_err(|e| {
        CliError::failed(format!(
            "internal: the config setup produced is invalid:\n{e}"
        ))
    })?;
    let value = loaded.doc.value();
    let (workspace, _) = resolved.workspace(inventory::configured_workspace(value));
    let mut candidate = inventory::for_profile(resolved.profile.name(), &resolved, value, &ctx.env);
    if let Some(p) = explicit_port {
        candidate.ports.base = p;
    }
    let allocations = ports::allocate(&candidate.ports).map_err(CliError::usage)?;
    let mut all = others.clone();
    all.push(candidate.clone());
    let plan = ports::plan(&all);
    let mine: Vec<_> = plan
        .conflicts
        .iter()
        .filter(|c| {
            let (a, b) = c.instances();
            a == candidate.name || b == candidate.name
        })
        .collect();
    if !mine.is_empty() {
        // One free base for every fix and the hint, clear of every instance
        // and of the ports processes hold right now.
        let listening = portowner::listening();
        let tunnels = omniclaw_os::remote::tunnel_ports(&resolved.home);
        let free = ports::free_base(&others, candidate.ports.base, |p| {
            listening.contains_key(&p) || tunnels.contains(&p)
        })
        .ok();
        let lines: Vec<String> = mine
            .iter()
            .map(|c| {
                format!(
                    "  - {c}\n    fix: {}",
                    setup_fix(c, &resolved, created, free)
                )
            })
            .collect();
        let hint = match free {
            Some(p) if !created || explicit_port.is_some() => {
                format!(
                    "\na free base port is {p}: `{} setup --port {p}`",
                    command(&resolved)
                )
            }
            _ => String::new(),
        };
        return Err(CliError::usage(format!(
            "profile {} would collide with other instances; setup changed nothing:\n{}{hint}",
            resolved.profile,
            lines.join("\n")
        )));
    }

    // The state dir comes first: the secrets file lives in it, and a dir
    // that cannot be created must be named as such, not as a secret store
    // failure. Then the token: a refused keychain stops setup before any
    // file is written, and the dirs made just now are removed again.
    let made = make_state_dir(&resolved)?;
    let token = match ensure_token(ctx, &resolved, &loaded.config, created) {
        Ok(token) => token,
        Err(e) => {
            remove_made(&made);
            return Err(e);
        }
    };
    let token_generated = matches!(token, Token::Generated | Token::InFile { .. });

    // All checks passed: write.
    let changed = write_all(
        &resolved,
        &text,
        read_before.as_deref(),
        created,
        &workspace,
    )? || token_generated;

    let rows: Vec<serde_json::Value> = allocations
        .iter()
        .map(|a| json!({"surface": a.surface.to_string(), "start": a.range.start(), "end": a.range.end(), "key": a.key.to_string()}))
        .collect();
    if ctx.json {
        out::json(&json!({
            "ok": true,
            "profile": resolved.profile.name(),
            "created": created,
            "changed": changed,
            "stateDir": resolved.state_dir,
            "configPath": resolved.config_path,
            "workspace": workspace,
            "port": candidate.ports.base,
            "ports": rows,
            "secretStore": ctx.store.mode(&Ctx::scope(&resolved)).kind(),
            "tokenGenerated": token_generated,
            "secretsMoved": matches!(token, Token::Moved { .. }),
            "keychainUnreachable": matches!(token, Token::InFile { .. }),
        }));
    } else {
        let verb = match (created, changed) {
            (true, _) => "Set up",
            (false, true) => "Updated",
            (false, false) => "Already set up:",
        };
        println!("{verb} profile {}", resolved.profile);
        println!("  state dir  {}", resolved.display(&resolved.state_dir));
        println!("  config     {}", resolved.display(&resolved.config_path));
        println!("  workspace  {}", resolved.display(&workspace));
        let ports: Vec<String> = allocations
            .iter()
            .map(|a| format!("{} {}", a.surface, a.range))
            .collect();
        println!("  ports      {}", ports.join(" · "));
        match &token {
            Token::Kept => {}
            Token::Generated => println!(
                "  token      generated into the {} (`{} secrets status` shows its fingerprint)",
                ctx.store.mode(&Ctx::scope(&resolved)),
                env_command(&resolved)
            ),
            Token::Moved { count, leftovers } => {
                println!(
                    "  secrets    {count} moved from the OS keychain into {} (mode 0600); the gateway token is unchanged",
                    resolved.display(&Ctx::scope(&resolved).secrets_file())
                );
                for l in leftovers {
                    println!("  warning: {l}");
                }
            }
            Token::InFile { why } => println!(
                "  token      generated into {} (mode 0600, readable by this user only): no OS keychain is reachable ({why}); this profile keeps its secrets there from now on",
                resolved.display(&Ctx::scope(&resolved).secrets_file())
            ),
        }
        println!("Start it:    {} gateway", env_command(&resolved));
    }
    Ok(Outcome::Ok)
}

/// What setup did about the gateway token.
#[derive(Debug, PartialEq, Eq)]
enum Token {
    /// Not needed, or already stored.
    Kept,
    /// Generated into the profile's store.
    Generated,
    /// Generated into the profile's 0600 secrets file because no OS
    /// keychain is reachable (`why`).
    InFile { why: String },
    /// The profile's secrets moved from the keychain into its 0600 file
    /// (`--secrets-file setup` of a set-up profile).
    Moved {
        count: usize,
        leftovers: Vec<String>,
    },
}

/// Generates the gateway token (48 hex characters from the OS CSPRNG) into
/// the secret store when the config refers to the store for it and the
/// store holds none yet. When no OS keychain is reachable at all (a
/// headless machine, where services run) the token goes to the profile's
/// 0600 secrets file instead, which every later command then uses; a
/// keychain that answers but refuses stays an error.
fn ensure_token(
    ctx: &Ctx,
    resolved: &Resolved,
    config: &config::Config,
    created: bool,
) -> Result<Token, CliError> {
    let wants = config.auth_mode() == config::AuthMode::Token
        && config.gateway.auth.token == Some(config::SecretRef::Keychain);
    if !wants {
        return Ok(Token::Kept);
    }
    let scope = Ctx::scope(resolved);
    let fail = |e: secrets::SecretError| {
        CliError::failed(format!(
            "cannot store the gateway token of profile {}, so setup changed nothing: {e}",
            resolved.profile
        ))
    };
    let generate = || {
        secrets::generate_token()
            .map_err(|e| CliError::failed(format!("the OS random number generator failed: {e}")))
    };
    let unreachable = match ctx.store.get(&scope, SecretName::GatewayAuthToken) {
        Ok(Some(_)) => return Ok(Token::Kept),
        // `--secrets-file` on a profile that keeps its secrets in the
        // keychain: move them (a new token would lock its clients out).
        Ok(None) if ctx.secrets_file && !created && !secrets::uses_file(&scope.state_dir) => {
            return move_to_file(resolved, &scope);
        }
        Ok(None) => {
            let token = generate()?;
            ctx.prepare_store(resolved)?;
            match ctx.store.set(&scope, SecretName::GatewayAuthToken, &token) {
                Ok(()) => return Ok(Token::Generated),
                Err(secrets::SecretError::Unreachable { detail, .. }) => detail,
                Err(e) => return Err(fail(e)),
            }
        }
        Err(secrets::SecretError::Unreachable { detail, .. }) => detail,
        Err(e) => return Err(fail(e)),
    };
    let token = generate()?;
    secrets::FileStore
        .set(&scope, SecretName::GatewayAuthToken, &token)
        .map_err(fail)?;
    Ok(Token::InFile { why: unreachable })
}

/// Moves a set-up profile's secrets from the keychain into its 0600 file
/// (`--secrets-file setup` on it): its clients keep their token. A
/// keychain that cannot be read now refuses, since what it holds is
/// unknown; a machine without any keychain has nothing to move.
fn move_to_file(resolved: &Resolved, scope: &secrets::Scope) -> Result<Token, CliError> {
    let keychain = secrets::Routed::system(false);
    let config = profiles::read_config(&resolved.config_path);
    let names = SecretName::known(config.value());
    let moved = keychain.move_to(scope, &names, secrets::Destination::File);
    let no_keychain = matches!(&moved, Err(secrets::MoveError::Source { source, .. })
        if matches!(**source, secrets::SecretError::Unreachable { .. }));
    match moved {
        Ok(moved) if !moved.names.is_empty() => Ok(Token::Moved {
            count: moved.names.len(),
            leftovers: moved.leftovers,
        }),
        // Nothing in the keychain, or no keychain at all: a new token.
        Ok(_) => generate_into_file(scope),
        Err(_) if no_keychain => generate_into_file(scope),
        Err(e) => {
            let cmd = command(resolved);
            Err(CliError::failed(format!(
                "profile {} keeps its secrets in the OS keychain and they must move with it, so setup changed nothing: {e}\n\
                 unlock the keychain, then `{cmd} secrets move --to file` (clients keep their token); \
                 or give the profile a new gateway token in the file, which its clients must then use: \
                 `{cmd} --secrets-file secrets set gateway.auth.token`",
                resolved.profile
            )))
        }
    }
}

/// A new gateway token, into the profile's 0600 file.
fn generate_into_file(scope: &secrets::Scope) -> Result<Token, CliError> {
    let token = secrets::generate_token()
        .map_err(|e| CliError::failed(format!("the OS random number generator failed: {e}")))?;
    secrets::FileStore
        .set(scope, SecretName::GatewayAuthToken, &token)
        .map_err(CliError::failed)?;
    Ok(Token::Generated)
}

/// Creates the state dir (0700) and returns the dirs that did not exist
/// before, deepest last, so a later refusal can remove them again.
fn make_state_dir(resolved: &Resolved) -> Result<Vec<PathBuf>, CliError> {
    let state = &resolved.state_dir;
    let mut missing = Vec::new();
    let mut dir = Some(state.as_path());
    while let Some(d) = dir {
        if std::fs::symlink_metadata(d).is_ok() {
            break;
        }
        missing.push(d.to_path_buf());
        dir = d.parent();
    }
    missing.reverse();
    fsx::create_private_dir(state).map_err(|e| {
        remove_made(&missing);
        let fix = match resolved.state_dir_source {
            paths::Source::Env(var) => format!(
                "point {var} at a writable directory, or drop it to use {}",
                resolved.display(&paths::default_state_dir(&resolved.home, &resolved.profile))
            ),
            _ => "fix the permissions of its parent, or choose another dir with OMNICLAW_STATE_DIR"
                .to_string(),
        };
        CliError::failed(format!(
            "cannot create the state dir {}: {e}; {fix}; setup changed nothing",
            resolved.display(state)
        ))
    })?;
    Ok(missing)
}

/// Removes dirs `make_state_dir` created, deepest first; a dir that is no
/// longer empty is left alone.
fn remove_made(made: &[PathBuf]) {
    for dir in made.iter().rev() {
        // Best effort: what cannot be removed was not ours to remove.
        let _ = std::fs::remove_dir(dir);
    }
}

/// The fix of a conflict as setup words it: a profile without a config yet
/// moves with `setup --port` (or `--workspace`), which `config set` cannot
/// do; every base port offered is `free`.
fn setup_fix(c: &ports::Conflict, resolved: &Resolved, created: bool, free: Option<u16>) -> String {
    let cmd = command(resolved);
    match c {
        ports::Conflict::PortOverlap {
            b,
            b_key: ports::PortKey::GatewayPort,
            ..
        } => match free {
            Some(base) if created => format!("move {b} to base {base}: {cmd} setup --port {base}"),
            Some(base) => format!("move {b} to base {base}: {cmd} config set gateway.port {base}"),
            None => c.fix(),
        },
        ports::Conflict::SharedPath {
            kind: ports::PathKind::Workspace,
            b,
            ..
        } if created => format!(
            "give {b} its own workspace: {cmd} setup --workspace {}",
            resolved.display(&resolved.workspace(None).0)
        ),
        _ => c.fix(),
    }
}

/// `omniclaw` or `omniclaw --profile NAME`, for hints.
pub fn command(resolved: &Resolved) -> String {
    match resolved.profile.suffix() {
        None => "omniclaw".to_string(),
        Some(name) => format!("omniclaw --profile {name}"),
    }
}

/// The command this shell runs the profile with: `command` with the
/// `OMNICLAW_*` variables that placed its files in front, so a hint such as
/// `… setup` writes where this run looked (`OMNICLAW_CONFIG_PATH=~/a.json
/// OMNICLAW_STATE_DIR=~/.omniclaw-a omniclaw setup`).
pub fn env_command(resolved: &Resolved) -> String {
    let mut words = Vec::new();
    if resolved.profile_source == paths::Source::Env(omniclaw_core::env::PROFILE) {
        words.push(format!(
            "{}={}",
            omniclaw_core::env::PROFILE,
            resolved.profile.name()
        ));
    }
    for (source, path) in [
        (resolved.state_dir_source, &resolved.state_dir),
        (resolved.config_path_source, &resolved.config_path),
    ] {
        if let paths::Source::Env(var) = source {
            words.push(format!("{var}={}", shell_word(&resolved.display(path))));
        }
    }
    if words.is_empty() {
        return command(resolved);
    }
    // The variables apply to the profile they name or to the one the state
    // dir's marker names: a `--profile` flag is kept only when this run had one.
    words.push(match resolved.profile_source {
        paths::Source::Flag => command(resolved),
        _ => "omniclaw".to_string(),
    });
    words.join(" ")
}

/// `word` as the shell reads it back: as is when it holds only safe
/// characters (`~/` stays expandable), single-quoted otherwise.
fn shell_word(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "/._-+:,@%=".contains(c);
    let quote = |w: &str| format!("'{}'", w.replace('\'', "'\\''"));
    match word.strip_prefix("~/") {
        Some(rest) if rest.chars().all(safe) => word.to_string(),
        Some(rest) => format!("~/{}", quote(rest)),
        None if !word.is_empty() && word.chars().all(safe) => word.to_string(),
        None => quote(word),
    }
}

/// Refuses a state dir or config path that belongs to another profile.
fn check_ownership(resolved: &Resolved, inv: &Inventory) -> Result<(), CliError> {
    match profiles::ownership_problem(resolved, inv) {
        Some(problem) => Err(CliError::usage(format!(
            "{problem}: {}",
            redirect_fix(resolved)
        ))),
        None => Ok(()),
    }
}

/// How to point this shell at a state dir and config of the profile's own.
pub fn redirect_fix(resolved: &Resolved) -> String {
    let mut fixes = Vec::new();
    if resolved.state_dir_source != paths::Source::Default {
        fixes.push("unset OMNICLAW_STATE_DIR or point it at a directory of this profile's own");
    }
    if resolved.config_path_source != paths::Source::Default {
        fixes.push("unset OMNICLAW_CONFIG_PATH or point it at a file of this profile's own");
    }
    if fixes.is_empty() {
        format!("choose another profile name than {}", resolved.profile)
    } else {
        fixes.join("; ")
    }
}

/// A free base port for a new profile: `main` and the default profile
/// prefer 18789, `rescue` 19789; ports held right now by another process
/// are skipped too, and the local ports of remote gateways' tunnels.
fn free_base(resolved: &Resolved, others: &[Instance]) -> Result<u16, CliError> {
    let listening = portowner::listening();
    let tunnels = omniclaw_os::remote::tunnel_ports(&resolved.home);
    ports::free_base(others, ports::preferred_base(&resolved.profile), |p| {
        listening.contains_key(&p) || tunnels.contains(&p)
    })
    .map_err(|e| {
        CliError::failed(match e {
            ports::NoFreeBase::NoSlot => {
                "no free base port is left for this profile: remove unused profiles or give --port"
            }
            ports::NoFreeBase::AllHeld => {
                "could not find a base port whose derived ports are all free: give one with --port"
            }
        })
    })
}

/// The value written to `agents.defaults.workspace` for `--workspace DIR`:
/// absolute, shown with `~` when under home.
fn workspace_value(
    raw: &Path,
    resolved: &Resolved,
    cwd: Option<&Path>,
) -> Result<String, CliError> {
    let s = raw.to_string_lossy();
    if s.trim().is_empty() {
        return Err(CliError::usage("--workspace is empty: give a directory"));
    }
    let p = paths::expand_home(&s, &resolved.home, cwd);
    if p.is_relative() {
        return Err(CliError::usage(format!(
            "--workspace {s} is relative and the working directory is unknown: give an absolute path"
        )));
    }
    Ok(paths::tilde(&paths::normalize(&p), &resolved.home))
}

/// Creates the dirs and writes config and marker. Returns whether anything changed.
fn write_all(
    resolved: &Resolved,
    text: &str,
    read_before: Option<&str>,
    created: bool,
    workspace: &PathBuf,
) -> Result<bool, CliError> {
    let mut changed = false;
    let state = &resolved.state_dir;
    if !state.is_dir() {
        changed = true;
    }
    fsx::create_private_dir(state).map_err(|e| {
        CliError::failed(format!(
            "cannot create the state dir {}: {e}; fix the permissions of its parent or choose another dir with OMNICLAW_STATE_DIR",
            resolved.display(state)
        ))
    })?;
    let logs = resolved.logs_dir();
    fsx::create_private_dir(&logs)
        .map_err(|e| CliError::failed(format!("cannot create {}: {e}", resolved.display(&logs))))?;
    if !workspace.is_dir() {
        changed = true;
        // Named profiles keep their workspace in the default profile's state
        // dir (~/.omniclaw/workspace-NAME): create that one private too.
        let default_state = paths::default_state_dir(&resolved.home, &Profile::Default);
        if workspace.parent() == Some(default_state.as_path()) {
            fsx::create_private_dir(&default_state).map_err(|e| {
                CliError::failed(format!(
                    "cannot create {}: {e}",
                    resolved.display(&default_state)
                ))
            })?;
        }
        std::fs::create_dir_all(workspace).map_err(|e| {
            CliError::failed(format!(
                "cannot create the workspace {}: {e}; give another with --workspace",
                resolved.display(workspace)
            ))
        })?;
    }
    if created || read_before != Some(text) {
        changed = true;
        if let Some(parent) = resolved.config_path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| {
                CliError::failed(format!("cannot create {}: {e}", resolved.display(parent)))
            })?;
        }
        // Only onto the text the checks ran on (none for a new profile): an
        // edit made meanwhile is refused, not lost.
        fsx::replace_if_unchanged(
            &resolved.config_path,
            read_before.map(str::as_bytes),
            text.as_bytes(),
            fsx::Options::with_backup(),
        )
        .map_err(|e| {
            CliError::failed(format!(
                "cannot write the config {}: {e}",
                resolved.display(&resolved.config_path)
            ))
        })?;
    }
    let marker = Marker {
        profile: resolved.profile.name().to_string(),
        config_path: resolved.config_path.clone(),
    };
    if discovery::read_marker(state).as_ref() != Some(&marker) {
        changed = true;
        discovery::write_marker(state, &marker).map_err(|e| {
            CliError::failed(format!(
                "cannot write {}: {e}",
                resolved.display(&resolved.marker_path())
            ))
        })?;
    }
    Ok(changed)
}
