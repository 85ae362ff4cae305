//! `omniclaw [--profile P] gateway [run] [--port N] [--bind MODE] [--token T | --password P]`:
//! one gateway in the foreground, until SIGINT or SIGTERM.
//!
//! Everything that can be refused is refused before a port is bound: an
//! invalid config, missing credentials, ports past 65535, a profile already
//! running. Binding is all or nothing (the gateway crate's job); on a signal
//! clients get a `shutdown` event and every listener closes.

use std::path::PathBuf;
use std::sync::Arc;

use omniclaw_core::config::BindMode;
use omniclaw_core::heal::StopBy;
use omniclaw_core::paths::Resolved;
use omniclaw_core::service::SERVICE_MARKER;
use omniclaw_gateway::profile::{self, Overrides, SpecError};
use omniclaw_gateway::rebuild::{self, ProfileRebuild};
use omniclaw_gateway::reload::{self, Candidate};
use omniclaw_gateway::{Addrs, Gateway, GatewaySpec, StartError};
use omniclaw_os::fsx;
use omniclaw_os::intent::{self, StopIntent};
use omniclaw_os::lock::{InstanceLock, LockError, Owner};
use omniclaw_os::logs;
use omniclaw_os::profiles::{self, ConfigState};
use omniclaw_os::runtime;
use omniclaw_os::secrets::Routed;

use crate::cli::RunArgs;
use crate::ctx::Ctx;
use crate::out::{CliError, CmdResult, Outcome};

use super::setup::{command, env_command, redirect_fix};
use super::target::ws_url;

pub fn run(ctx: &Ctx, args: &RunArgs) -> CmdResult {
    let resolved = ctx.resolve()?;
    ctx.print_notes(&resolved);
    let result = serve(ctx, args, &resolved);
    // A service's failed run is recorded: the rescue's watch does not
    // restart one that stopped on bad input (exit 2) with nothing changed.
    if let (Err(e), Some(_)) = (&result, ctx.env.get(SERVICE_MARKER)) {
        let exit = runtime::Exit {
            code: i32::from(e.exit_code()),
            at_ms: intent::now_ms(),
        };
        if let Err(io) = runtime::record_exit(&resolved.state_dir, exit) {
            eprintln!(
                "warning: cannot record the exit in {}: {io}",
                resolved.display(&resolved.state_dir.join(runtime::EXIT_FILE))
            );
        }
    }
    result
}

/// Runs the gateway of `resolved` until it is stopped.
fn serve(ctx: &Ctx, args: &RunArgs, resolved: &Resolved) -> CmdResult {
    let resolved = resolved.clone();
    let inv = ctx.inventory(&resolved)?;
    // Another profile's config and state dir are never run as this one's.
    if let Some(problem) = profiles::ownership_problem(&resolved, &inv) {
        return Err(CliError::usage(format!(
            "refusing to start: {problem}: {}",
            redirect_fix(&resolved)
        )));
    }
    let state = profiles::read_config(&resolved.config_path);
    let (config, value) = match &state {
        ConfigState::Valid { loaded, .. } => (Some(&loaded.config), Some(loaded.doc.value())),
        ConfigState::Missing => {
            eprintln!(
                "note: no config at {}; running with defaults (`{} setup` writes one)",
                resolved.display(&resolved.config_path),
                env_command(&resolved)
            );
            (None, None)
        }
        ConfigState::Invalid { errors, .. } => {
            return Err(CliError::failed(format!(
                "refusing to start: the config {} is invalid:\n{errors}\nfix these keys (`{} config validate` shows them again)",
                resolved.display(&resolved.config_path),
                command(&resolved)
            )))
        }
        ConfigState::Unreadable(msg) => return Err(CliError::failed(msg)),
    };
    let overrides = Overrides {
        port: args.port,
        bind: args.bind.as_deref().and_then(BindMode::parse),
        token: args.token.clone(),
        password: args.password.clone(),
    };
    let spec = profile::spec_for(&resolved, config, value, &overrides, &ctx.env, &ctx.store)
        .map_err(|e| match e {
            // The secret store could not be read right now (no keychain yet
            // at login, a locked one, an unreadable file): a problem that
            // may pass, so a service retries; everything else is bad input.
            SpecError::Store { .. } => CliError::failed(e),
            // Without a config the defaults ask for a token nobody made yet:
            // setup writes the config and generates one.
            SpecError::NoSecret { mode, var, .. } if config.is_none() => CliError::usage(format!(
                "no gateway {mode} for profile {}: there is no config at {} yet: `{} setup` writes one and generates the {mode} (or pass --{mode}, or set {var})",
                resolved.profile,
                resolved.display(&resolved.config_path),
                env_command(&resolved)
            )),
            e => CliError::usage(with_env_command(e, &resolved)),
        })?;

    // A weak secret on a network bind is bad input: refused before the
    // lock, and a service does not retry it (exit 2).
    Gateway::check(&spec).map_err(|e| match e {
        StartError::WeakSecret { .. } => CliError::usage(e),
        other => CliError::failed(other),
    })?;

    let conflicts = warn_conflicts(ctx, &inv);

    fsx::create_private_dir(&resolved.state_dir).map_err(|e| {
        CliError::failed(format!(
            "cannot create the state dir {}: {e}",
            resolved.display(&resolved.state_dir)
        ))
    })?;
    // Set in the environment of service units: the gateway then reports its owner as `service`.
    let owner = if ctx.env.get(SERVICE_MARKER).is_some() {
        Owner::Service
    } else {
        Owner::Cli
    };
    let lock = InstanceLock::acquire(&resolved.lock_path(), owner).map_err(|e| match e {
        LockError::AlreadyRunning { .. } => {
            CliError::failed(format!("profile {}: {e}", resolved.profile))
        }
        other => CliError::failed(other),
    })?;

    let level = config.map_or("info", |c| c.log_level().as_str());
    let logger = logs::terminal_logger(&resolved.logs_dir(), level).map_err(CliError::failed)?;
    // Only this process's gateway logs here: the first subscriber wins.
    let _ = tracing::dispatcher::set_global_default(logger.dispatch.clone());
    // A service's stderr is not where people look: the log says it too.
    for c in &conflicts {
        tracing::warn!(conflict = %c, fix = %c.fix(), "starting in a conflict with another instance");
    }
    let text = state
        .text()
        .map_or_else(|| rebuild::EMPTY_CONFIG.to_string(), str::to_string);
    let first = rebuild::candidate(&text, spec).map_err(CliError::failed)?;
    let rebuild = Arc::new(ProfileRebuild::new(
        resolved.clone(),
        overrides,
        ctx.env.clone(),
        Arc::new(Routed::system(ctx.secrets_file)),
        logger,
        owner,
    ));
    rebuild.redact(&first);

    // Each client holds a descriptor; a soft limit of 1024 would end the
    // gateway at about a thousand of them.
    if let Some(files) = omniclaw_os::limits::raise_open_files() {
        if files.now > files.before {
            tracing::debug!(
                before = files.before,
                now = files.now,
                "open-file limit raised"
            );
        } else if files.now < 4096 {
            tracing::warn!(limit = files.now, "the open-file limit is low: the gateway can hold about this many connections; raise it (LimitNOFILE= in a systemd unit, `ulimit -n` in a shell)");
        }
    }

    // One worker thread runs the gateway's tasks: a gateway serves a
    // handful of clients, and handing each turn's work between two workers
    // cost more CPU and latency than running it side by side saved
    // (docs/benchmarks.md). Slow work (files, logs, the store's pruning,
    // HTML) goes to the blocking pool. A multi-thread runtime with one
    // worker rather than a current-thread one: a task woken by the running
    // one runs next, so a delta goes out before the rest of the reply is
    // read. `TOKIO_WORKER_THREADS` still sets another count.
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        runtime.worker_threads(1);
    }
    let runtime = runtime
        .enable_all()
        .build()
        .map_err(|e| CliError::failed(format!("cannot start the async runtime: {e}")))?;
    let result = runtime.block_on(async {
        // Listening before anything is said: a SIGTERM or Ctrl+C that comes
        // while the gateway starts still stops it cleanly, on the record.
        let stop = StopSignals::listen();
        let bound = Gateway::bind(first.spec.clone()).map_err(CliError::failed)?;
        // Said once it serves, watches its config and has published where
        // it listens: a script that waits for the line finds it in
        // `status` / `ports` and may edit the config at once.
        let json = ctx.json;
        let shown = resolved.clone();
        rebuild.on_ready(Box::new(move |c: &Candidate, addrs: &Addrs| {
            print_surfaces(json, &shown, &c.spec, addrs);
        }));
        reload::serve_reloading(
            bound,
            first,
            rebuild,
            reload::Options::default(),
            shutdown_signal(stop, resolved.state_dir.clone(), owner),
        )
        .await
        .map_err(CliError::failed)
    });
    // A clean stop keeps the record with the time it stopped, a failed run
    // leaves it as it was: either way the rescue's watch knows who ran it.
    if result.is_ok() {
        let stopped =
            runtime::mark_stopped(&resolved.state_dir, std::process::id(), intent::now_ms());
        if let Err(e) = stopped {
            tracing::warn!(file = %resolved.state_dir.join(runtime::FILE).display(), error = %e, "cannot mark the runtime file stopped");
        }
    }
    drop(lock);
    result?;
    if !ctx.json {
        eprintln!("gateway of profile {} stopped", resolved.profile);
    }
    Ok(Outcome::Ok)
}

/// The error with its fix spelled for this shell: the `OMNICLAW_*`
/// variables that placed the profile's files stay in front of the command.
fn with_env_command(e: SpecError, resolved: &Resolved) -> SpecError {
    let respell = |cmd: String| match cmd.strip_prefix(&command(resolved)) {
        Some(rest) => format!("{}{rest}", env_command(resolved)),
        None => cmd,
    };
    match e {
        SpecError::NoSecret {
            profile,
            mode,
            var,
            command,
        } => SpecError::NoSecret {
            profile,
            mode,
            var,
            command: respell(command),
        },
        SpecError::KeychainMissing {
            mode,
            env,
            profile,
            store,
            command,
        } => SpecError::KeychainMissing {
            mode,
            env,
            profile,
            store,
            command: respell(command),
        },
        other => other,
    }
}

/// Prints the isolation conflicts this profile is part of and returns
/// them; starting goes on (a clash that matters shows up as a port in use).
fn warn_conflicts(ctx: &Ctx, inv: &profiles::Inventory) -> Vec<omniclaw_core::ports::Conflict> {
    let Some(me) = inv.current().map(|c| c.label.clone()) else {
        return Vec::new();
    };
    let plan = omniclaw_core::ports::plan(&inv.instances(&ctx.env));
    let mine: Vec<_> = plan
        .conflicts
        .into_iter()
        .filter(|c| {
            let (a, b) = c.instances();
            a == me || b == me
        })
        .collect();
    for c in &mine {
        eprintln!("warning: {c}\n  fix: {}", c.fix());
    }
    mine
}

fn print_surfaces(
    json: bool,
    resolved: &omniclaw_core::paths::Resolved,
    spec: &GatewaySpec,
    addrs: &Addrs,
) {
    let url = ws_url(addrs.gateway.ip(), addrs.gateway.port());
    if json {
        let v = serde_json::json!({
            "event": "listening",
            "profile": resolved.profile.name(),
            "pid": std::process::id(),
            "gateway": url,
            "browserControl": addrs.browser_control.map(|a| format!("http://{a}")),
            "canvas": addrs.canvas.map(|a| format!("http://{a}/")),
            "cdpRange": spec.browser.enabled.then(|| [*spec.browser.cdp_range.start(), *spec.browser.cdp_range.end()]),
            "configPath": resolved.config_path,
            "stateDir": resolved.state_dir,
        });
        println!("{v}");
        return;
    }
    println!(
        "omniclaw gateway · profile {} · pid {}",
        resolved.profile,
        std::process::id()
    );
    println!("  gateway          {url}  (HTTP /healthz, /readyz)");
    if let Some(a) = addrs.browser_control {
        println!("  browser control  http://{a}");
        println!(
            "  CDP ports        {}–{}",
            spec.browser.cdp_range.start(),
            spec.browser.cdp_range.end()
        );
    }
    if let Some(a) = addrs.canvas {
        println!(
            "  canvas           http://{a}/  (serving {})",
            resolved.display(&spec.canvas.root)
        );
    }
    println!(
        "  config           {}",
        resolved.display(&resolved.config_path)
    );
    println!(
        "  state dir        {}",
        resolved.display(&resolved.state_dir)
    );
    println!("Press Ctrl+C to stop.");
}

/// Resolves on SIGINT (Ctrl+C) or SIGTERM, saying in the log which one
/// stopped the gateway (a service manager's stop or restart sends SIGTERM),
/// and recording the stop as on purpose in the state dir, so the rescue's
/// watch does not restart it.
async fn shutdown_signal(stop: StopSignals, state_dir: PathBuf, owner: Owner) {
    let by = stop.wait().await;
    let intent = StopIntent {
        by,
        owner: Some(owner.as_str().to_string()),
        pid: Some(std::process::id()),
        at_ms: intent::now_ms(),
    };
    // Ctrl+C is the person at this terminal: theirs is the record. A
    // SIGTERM keeps the record of whoever sent it (`gateway stop`, `/stop`).
    let recorded = match by {
        StopBy::CtrlC => intent::record(&state_dir, &intent),
        _ => intent::record_unless_present(&state_dir, &intent).map(|_| ()),
    };
    if let Err(e) = recorded {
        tracing::warn!(file = %state_dir.join(intent::FILE).display(), error = %e, "cannot record the stop; the rescue's watch may restart this gateway");
    }
}

/// The signals that stop a gateway, caught from the moment they are
/// listened to (a signal handler installed on first poll would leave the
/// start-up to SIGTERM's default: dying without a record).
struct StopSignals {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
    #[cfg(windows)]
    ctrl_c: Option<tokio::signal::windows::CtrlC>,
}

impl StopSignals {
    /// Installs the handlers now; needs the runtime.
    #[cfg(unix)]
    fn listen() -> StopSignals {
        use tokio::signal::unix::{signal, SignalKind};
        StopSignals {
            interrupt: signal(SignalKind::interrupt()).ok(),
            terminate: signal(SignalKind::terminate()).ok(),
        }
    }

    #[cfg(windows)]
    fn listen() -> StopSignals {
        StopSignals {
            ctrl_c: tokio::signal::windows::ctrl_c().ok(),
        }
    }

    #[cfg(not(any(unix, windows)))]
    fn listen() -> StopSignals {
        StopSignals {}
    }

    #[cfg(unix)]
    async fn wait(self) -> StopBy {
        let StopSignals {
            interrupt,
            terminate,
        } = self;
        let interrupted = async {
            match interrupt {
                Some(mut s) => {
                    s.recv().await;
                }
                None => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        };
        let terminated = async {
            match terminate {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = interrupted => {
                tracing::info!(signal = "SIGINT", "stop asked (Ctrl+C)");
                StopBy::CtrlC
            }
            () = terminated => {
                tracing::info!(signal = "SIGTERM", "stop asked (a service manager or `gateway stop`)");
                StopBy::Signal
            }
        }
    }

    #[cfg(not(unix))]
    async fn wait(self) -> StopBy {
        #[cfg(windows)]
        if let Some(mut c) = self.ctrl_c {
            c.recv().await;
            tracing::info!("stop asked (Ctrl+C)");
            return StopBy::CtrlC;
        }
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("stop asked (Ctrl+C)");
        StopBy::CtrlC
    }
}
