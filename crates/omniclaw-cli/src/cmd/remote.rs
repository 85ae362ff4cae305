//! `remote add|list|remove|test|tunnel`: gateways on other machines.
//!
//! A remote is reached directly at its URL or through an SSH tunnel
//! (`ssh -N -L 127.0.0.1:L:127.0.0.1:R`, host key checked against the
//! remote's own known-hosts file). Its token or password goes from stdin
//! into the secret store under the remote's name, never into a file
//! unless the user keeps secrets in files. Everything `add` is given is
//! checked before anything is written: a refused add leaves no trace.
//! Commands that talk to a remote ([`reach`]) use a tunnel another process
//! keeps up (`remote tunnel`, the app) or open a short-lived one of their
//! own; a busy local port is an error, never silently replaced.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use omniclaw_core::remote::{parse_ssh, parse_url};
use omniclaw_core::remotes::{self, Kind, Locals, Remote, SshTunnel};
use omniclaw_core::tunnel::TunnelState;
use omniclaw_gateway::client::RpcError;
use omniclaw_gateway::Auth;
use omniclaw_os::remote::{
    self as store, HostKey, SshLaunch, Supervisor, SystemClock, Tunnel, TunnelSpec,
};
use omniclaw_os::secrets::{FileStore, SecretName, SecretStore};

use crate::cli::{RemoteAddArgs, RemoteCommand};
use crate::ctx::Ctx;
use crate::out::{self, CliError, CmdResult, Outcome};

use super::secrets::read_secret;
use super::status::probe;
use super::target::runtime;

pub fn run(ctx: &Ctx, cmd: RemoteCommand) -> CmdResult {
    match cmd {
        RemoteCommand::Add(args) => add(ctx, &args),
        RemoteCommand::List => list(ctx),
        RemoteCommand::Remove { name } => remove(ctx, &name),
        RemoteCommand::Test { name } => test(ctx, &name),
        RemoteCommand::Tunnel { name } => keep_up(ctx, &name),
    }
}

/// The OmniClaw home (`OMNICLAW_HOME`, else `HOME`), where remotes are kept.
fn home(ctx: &Ctx) -> Result<std::path::PathBuf, CliError> {
    Ok(ctx.resolve()?.home)
}

fn load(home: &Path) -> Result<remotes::Remotes, CliError> {
    store::load(home).map_err(CliError::failed)
}

fn find(home: &Path, name: &str) -> Result<Remote, CliError> {
    let name = remotes::parse_name(name).map_err(CliError::usage)?;
    load(home)?
        .get(&name)
        .cloned()
        .ok_or_else(|| CliError::usage(remotes::RemoteError::Unknown { name }))
}

/// The local profiles and the ports they plan.
fn locals(ctx: &Ctx) -> Result<Locals, CliError> {
    let current = ctx.resolve()?;
    let inv = ctx.inventory(&current)?;
    let plan = omniclaw_core::ports::plan(&inv.instances(&ctx.env));
    let profiles = inv
        .profiles
        .iter()
        .filter(|p| p.set_up)
        .map(|p| p.profile.name().to_string())
        .collect();
    Ok(Locals::from_plan(profiles, &plan))
}

fn add(ctx: &Ctx, args: &RemoteAddArgs) -> CmdResult {
    let name = remotes::parse_name(&args.name).map_err(CliError::usage)?;
    let current = ctx.resolve()?;
    let home = current.home.clone();
    let locals = locals(ctx)?;
    let existing = load(&home)?;
    existing
        .check_new(&name, &locals)
        .map_err(CliError::usage)?;

    // Everything checked before anything is read from stdin or written.
    let pending = match (&args.url, &args.ssh) {
        (Some(url), None) => Pending::Direct(parse_url(url).map_err(CliError::usage)?),
        (None, Some(raw)) => {
            let target = parse_ssh(raw).map_err(CliError::usage)?;
            let remote_port = args.remote_port.ok_or_else(|| {
                CliError::usage(format!(
                    "--ssh {raw} needs --remote-port N: the port the gateway listens on at {}'s loopback",
                    target.host
                ))
            })?;
            let fingerprint = args
                .host_key_fingerprint
                .as_deref()
                .map(remotes::parse_fingerprint)
                .transpose()
                .map_err(CliError::usage)?;
            let identity = match &args.identity_file {
                Some(p) if !p.is_file() => {
                    return Err(CliError::usage(format!(
                        "--identity-file {} is not a file: give the path of the private key ssh logs in with",
                        p.display()
                    )))
                }
                Some(p) => Some(std::path::absolute(p).unwrap_or_else(|_| p.clone())),
                None => None,
            };
            let local_port = match args.local_port {
                Some(p) => p,
                None => free_local_port(&existing, &locals)?,
            };
            existing
                .check_local_port(local_port, &locals)
                .map_err(CliError::usage)?;
            if std::net::TcpListener::bind(("127.0.0.1", local_port)).is_err() {
                return Err(CliError::usage(format!(
                    "--local-port {local_port} is in use by another program on 127.0.0.1: give another --local-port"
                )));
            }
            Pending::Ssh {
                tunnel: SshTunnel {
                    target,
                    remote_port,
                    local_port,
                    host_key: String::new(),
                    identity,
                },
                fingerprint,
            }
        }
        _ => {
            return Err(CliError::usage(
                "give either --url ws(s)://HOST:PORT or --ssh USER@HOST[:PORT] --remote-port N",
            ))
        }
    };

    let (secret_name, secret) = credential(&name, args)?;

    let kind = match pending {
        Pending::Direct(target) => Kind::Direct(target),
        Pending::Ssh {
            mut tunnel,
            fingerprint,
        } => {
            let keys = store::scan(&tunnel.target).map_err(CliError::failed)?;
            let accepted = accept_key(&tunnel.target.to_string(), &keys, fingerprint.as_deref())?;
            tunnel.host_key = accepted[0].fingerprint.clone();
            store::write_known_hosts(&home, &name, &accepted).map_err(|e| {
                let _ = store::remove_dir(&home, &name);
                CliError::failed(format!(
                    "cannot write {}: {e}",
                    store::known_hosts(&home, &name).display()
                ))
            })?;
            Kind::Ssh(tunnel)
        }
    };
    let remote = Remote {
        name: name.clone(),
        kind,
    };

    let undo = |home: &Path| {
        let _ = store::remove_dir(home, &name);
    };
    let scope = store::scope(&home, &name);
    let file_mode = ctx.secrets_file || omniclaw_os::secrets::uses_file(&current.state_dir);
    let stored = (|| {
        if file_mode {
            omniclaw_os::fsx::create_private_dir(&scope.state_dir).map_err(|e| {
                CliError::failed(format!("cannot create {}: {e}", scope.state_dir.display()))
            })?;
            FileStore::create(&scope).map_err(CliError::failed)?;
        }
        ctx.store
            .set(&scope, secret_name, &secret)
            .map_err(CliError::failed)
    })();
    if let Err(e) = stored {
        undo(&home);
        return Err(e);
    }
    let locals_again = locals.clone();
    let saved = store::update(&home, |r| r.add(remote.clone(), &locals_again));
    if let Err(e) = saved {
        let _ = ctx.store.remove(&scope, secret_name);
        undo(&home);
        return Err(match e {
            store::StoreError::Remote(e) => CliError::usage(e),
            other => CliError::failed(other),
        });
    }
    let mode = ctx.store.mode(&scope);
    if ctx.json {
        out::json(&json!({
            "ok": true,
            "remote": remote_json(&remote),
            "secret": {"name": secret_name.path(), "store": mode.kind()},
        }));
    } else {
        println!("Added the remote gateway {name}: {}", remote.target());
        if let Kind::Ssh(t) = &remote.kind {
            println!(
                "  tunnel: 127.0.0.1:{} → {}:127.0.0.1:{}, host key {}",
                t.local_port, t.target.host, t.remote_port, t.host_key
            );
        }
        println!("  {} kept in the {mode}", secret_name.path());
        println!("Check it with `omniclaw remote test {name}`.");
    }
    Ok(Outcome::Ok)
}

/// A remote checked but not yet asked for its host key.
enum Pending {
    Direct(omniclaw_core::remote::WsTarget),
    Ssh {
        tunnel: SshTunnel,
        fingerprint: Option<String>,
    },
}

/// The token or password, from stdin (or a hidden prompt on a terminal).
fn credential(name: &str, args: &RemoteAddArgs) -> Result<(SecretName, String), CliError> {
    let interactive = std::io::stdin().is_terminal();
    if !(args.token_stdin || args.password_stdin || interactive) {
        return Err(CliError::usage(format!(
            "give the remote gateway's token on stdin: `printf %s \"$TOKEN\" | omniclaw remote add {name} … --token-stdin` (or its password with --password-stdin); it goes to the secret store, never on the command line"
        )));
    }
    let (secret_name, flag) = if args.password_stdin {
        (SecretName::GatewayAuthPassword, "--password-stdin")
    } else {
        (SecretName::GatewayAuthToken, "--token-stdin")
    };
    let value = read_secret(
        &format!("the token of the remote gateway {name}"),
        &format!("printf %s \"$TOKEN\" | omniclaw remote add {name} … {flag}"),
    )?;
    Ok((secret_name, value))
}

/// The host keys to trust: those matching `--host-key-fingerprint`, else
/// the ones the user accepts on the terminal.
fn accept_key(
    target: &str,
    keys: &[HostKey],
    fingerprint: Option<&str>,
) -> Result<Vec<HostKey>, CliError> {
    let offered: Vec<String> = keys
        .iter()
        .map(|k| format!("{} {}", k.key_type, k.fingerprint))
        .collect();
    if let Some(fp) = fingerprint {
        let matching: Vec<HostKey> = keys
            .iter()
            .filter(|k| k.fingerprint == fp)
            .cloned()
            .collect();
        if matching.is_empty() {
            return Err(CliError::usage(format!(
                "the host key of {target} does not match --host-key-fingerprint {fp}: the server offers {}; nothing was added. Check the fingerprint on the server (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`)",
                offered.join(", ")
            )));
        }
        return Ok(matching);
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::usage(format!(
            "the host key of {target} needs your approval: it offers {}. Compare with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the server, then run the command again with --host-key-fingerprint SHA256:…; nothing was added",
            offered.join(", ")
        )));
    }
    let key = keys
        .iter()
        .find(|k| k.key_type == "ssh-ed25519")
        .unwrap_or(&keys[0]);
    eprintln!(
        "The SSH server {target} offers the host key {} {}.",
        key.key_type, key.fingerprint
    );
    eprintln!("Compare it with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the server.");
    eprint!("Trust this key for this remote? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| CliError::failed(format!("cannot read the answer: {e}")))?;
    if matches!(answer.trim(), "y" | "Y" | "yes" | "Yes") {
        Ok(vec![key.clone()])
    } else {
        Err(CliError::usage(format!(
            "the host key of {target} was not accepted; nothing was added"
        )))
    }
}

/// A loopback port no local profile plans, no tunnel takes and no process holds.
fn free_local_port(existing: &remotes::Remotes, locals: &Locals) -> Result<u16, CliError> {
    let taken: Vec<u16> = existing.tunnel_ports().iter().map(|(p, _)| *p).collect();
    for _ in 0..100 {
        let port = std::net::TcpListener::bind(("127.0.0.1", 0))
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|e| CliError::failed(format!("cannot find a free local port: {e}")))?;
        let planned = locals.ports.iter().any(|(r, _)| r.contains(port));
        if !planned && !taken.contains(&port) {
            return Ok(port);
        }
    }
    Err(CliError::failed(
        "cannot find a free local port for the tunnel: give one with --local-port",
    ))
}

fn remote_json(r: &Remote) -> Value {
    let mut v = json!({
        "name": r.name,
        "kind": r.kind_word(),
        "target": r.target(),
        "url": r.dial_url(),
        "localPort": r.local_port(),
    });
    if let Kind::Ssh(t) = &r.kind {
        v["ssh"] = json!(t.target.to_string());
        v["remotePort"] = json!(t.remote_port);
        v["hostKey"] = json!(t.host_key);
    }
    v
}

/// How a remote answered.
pub struct Probed {
    pub remote: Remote,
    /// `running`, `unauthenticated`, `unreachable` or `tunnel failed`.
    pub state: &'static str,
    pub version: Option<String>,
    pub healthy: Option<bool>,
    /// The profile the gateway serves, from `hello-ok`.
    pub profile: Option<String>,
    pub detail: String,
    /// Whose tunnel carried it: `own` (opened for this command), `kept`
    /// (another process keeps it up), or none for a direct remote.
    pub via: Option<&'static str>,
    /// A profile in `gateway.mode: "remote"` rather than a `remote add`.
    pub configured: bool,
}

impl Probed {
    pub fn ok(&self) -> bool {
        self.state == "running"
    }

    pub fn to_json(&self) -> Value {
        let mut v = remote_json(&self.remote);
        v["remote"] = json!(true);
        v["state"] = json!(self.state);
        v["version"] = json!(self.version);
        v["healthy"] = json!(self.healthy);
        v["profile"] = json!(self.profile);
        v["detail"] = json!(self.detail);
        v["tunnel"] = json!(self.via);
        if self.configured {
            v["kind"] = json!(CONFIGURED);
        }
        v
    }

    /// `url`, `ssh`, or `gateway.mode` for a profile pointing elsewhere.
    pub fn kind_word(&self) -> &'static str {
        if self.configured {
            CONFIGURED
        } else {
            self.remote.kind_word()
        }
    }

    /// `running · v0.1.0 · healthy`, for tables.
    pub fn summary(&self) -> String {
        let mut parts = vec![self.state.to_string()];
        if let Some(v) = &self.version {
            parts.push(format!("v{v}"));
        }
        match self.healthy {
            Some(true) => parts.push("healthy".into()),
            Some(false) => parts.push("unhealthy".into()),
            None => {}
        }
        parts.join(" · ")
    }
}

/// The URL to dial `remote` at, and the tunnel this command opened for it
/// (dropped, and so closed, when the caller is done).
pub fn reach(home: &Path, remote: &Remote) -> Result<(String, Option<Tunnel>), store::TunnelError> {
    match &remote.kind {
        Kind::Direct(_) => Ok((remote.dial_url(), None)),
        Kind::Ssh(_) if store::kept_elsewhere(home, &remote.name) => Ok((remote.dial_url(), None)),
        Kind::Ssh(t) => {
            let tunnel = Tunnel::open(&TunnelSpec::new(home, &remote.name, t))?;
            Ok((remote.dial_url(), Some(tunnel)))
        }
    }
}

/// The stored credentials of a remote.
fn auth_of(ctx: &Ctx, home: &Path, name: &str) -> Result<Auth, String> {
    omniclaw_gateway::profile::remote_auth(&ctx.store, home, name)
}

/// Reaches `remote` (through a tunnel for SSH) and proves its identity with
/// the stored token, as `gateway probe` does.
pub fn probe_remote(ctx: &Ctx, home: &Path, remote: &Remote) -> Probed {
    probe_with(home, remote, auth_of(ctx, home, &remote.name))
}

/// How long `remote remove` waits for the process keeping a tunnel up
/// to close it once the remote left remotes.json.
const LET_GO: Duration = Duration::from_secs(10);

/// How often `remote tunnel` looks whether its remote is still listed.
const FOLLOW_FILE: Duration = Duration::from_millis(500);

/// The kind word of a profile whose `gateway.mode` is `"remote"`.
const CONFIGURED: &str = "gateway.mode";

/// The profiles in `gateway.mode: "remote"` (OpenClaw's way to point a
/// profile at a gateway elsewhere), as remotes named by their profile:
/// dialed at `gateway.remote.url` with `gateway.remote.token`.
pub fn configured(
    ctx: &Ctx,
    inv: &omniclaw_os::profiles::Inventory,
    current: &omniclaw_core::paths::Resolved,
) -> Vec<(Remote, Result<Auth, String>)> {
    let mut out = Vec::new();
    for p in &inv.profiles {
        let Some(remote) = omniclaw_gateway::profile::as_remote(p) else {
            continue;
        };
        let omniclaw_os::profiles::ConfigState::Valid { loaded, .. } = &p.config else {
            continue;
        };
        let resolved = super::target::resolved_of(p, current);
        let auth = omniclaw_gateway::profile::credentials(
            &resolved,
            &loaded.config,
            &omniclaw_gateway::profile::Overrides::default(),
            &ctx.env,
            &ctx.store,
        )
        .map_err(|e| e.to_string());
        out.push((remote, auth));
    }
    out
}

/// Reaches `remote` with `auth`; see [`probe_remote`].
fn probe_with(home: &Path, remote: &Remote, auth: Result<Auth, String>) -> Probed {
    let mut probed = Probed {
        remote: remote.clone(),
        state: "unreachable",
        version: None,
        healthy: None,
        profile: None,
        detail: String::new(),
        via: None,
        configured: false,
    };
    let kept = matches!(remote.kind, Kind::Ssh(_)) && store::kept_elsewhere(home, &remote.name);
    let (url, tunnel) = match reach(home, remote) {
        Ok(r) => r,
        Err(e) => {
            probed.state = "tunnel failed";
            probed.detail = e.to_string();
            return probed;
        }
    };
    probed.via = match (&tunnel, kept) {
        (Some(_), _) => Some("own"),
        (None, true) => Some("kept"),
        (None, false) => None,
    };
    let auth = match auth {
        Ok(a) => a,
        Err(why) => {
            probed.detail = why;
            Auth::None
        }
    };
    let reached = runtime().map_err(|e| e.to_string()).and_then(|rt| {
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(10), probe(&url, auth, "probe"))
                .await
                .map_err(|_| format!("no answer from {url} within 10 s"))?
                .map_err(|e| match e {
                    RpcError::Connect { .. } | RpcError::Timeout { .. } => e.to_string(),
                    other => format!("answered, but: {other}"),
                })
        })
    });
    drop(tunnel);
    match reached {
        Ok(r) => {
            probed.state = "running";
            probed.version = omniclaw_os::version::from_hello(&r.hello);
            probed.profile = r
                .hello
                .pointer("/snapshot/profile")
                .and_then(Value::as_str)
                .map(str::to_string);
            probed.healthy = r.health.as_ref().map(|h| h.get("ok") == Some(&json!(true)));
            probed.detail = format!("{:.1} ms", r.millis);
        }
        Err(e) => {
            if e.starts_with("answered") {
                probed.state = "unauthenticated";
            }
            probed.detail = if probed.detail.is_empty() {
                e
            } else {
                format!("{}; {e}", probed.detail)
            };
        }
    }
    probed
}

/// Every remote, probed: the profiles in `gateway.mode: "remote"`
/// (`configured`, see [`configured`]), then those of `remote add`.
pub fn probe_all(
    ctx: &Ctx,
    home: &Path,
    configured: Vec<(Remote, Result<Auth, String>)>,
) -> Result<Vec<Probed>, CliError> {
    let mut out = probe_configured(home, configured);
    out.extend(load(home)?.list.iter().map(|r| probe_remote(ctx, home, r)));
    Ok(out)
}

/// The profiles in `gateway.mode: "remote"`, probed.
pub fn probe_configured(
    home: &Path,
    configured: Vec<(Remote, Result<Auth, String>)>,
) -> Vec<Probed> {
    configured
        .into_iter()
        .map(|(r, auth)| Probed {
            configured: true,
            ..probe_with(home, &r, auth)
        })
        .collect()
}

fn list(ctx: &Ctx) -> CmdResult {
    let home = home(ctx)?;
    let probed = probe_all(ctx, &home, Vec::new())?;
    if ctx.json {
        out::json(&json!({
            "ok": true,
            "remotes": probed.iter().map(Probed::to_json).collect::<Vec<_>>(),
        }));
        return Ok(Outcome::Ok);
    }
    if probed.is_empty() {
        println!("No remote gateways: add one with `omniclaw remote add NAME --url wss://HOST:PORT --token-stdin` or `--ssh USER@HOST --remote-port N`.");
        return Ok(Outcome::Ok);
    }
    print!("{}", table(&probed));
    Ok(Outcome::Ok)
}

/// The remotes as a table: name, kind, target, the tunnel's local port, state.
pub fn table(probed: &[Probed]) -> String {
    let rows: Vec<Vec<String>> = probed
        .iter()
        .map(|p| {
            vec![
                p.remote.name.clone(),
                p.kind_word().to_string(),
                p.remote.target(),
                p.remote.local_port().map_or("–".into(), |l| l.to_string()),
                p.summary(),
            ]
        })
        .collect();
    out::table(&["REMOTE", "KIND", "TARGET", "LOCAL PORT", "STATE"], &rows)
}

fn remove(ctx: &Ctx, raw: &str) -> CmdResult {
    let home = home(ctx)?;
    let remote = find(&home, raw)?;
    let mut unlisted = false;
    if store::kept_elsewhere(&home, &remote.name) {
        // The keeper (the app, `remote tunnel`) follows remotes.json: the
        // entry goes first, and it closes the tunnel and lets go.
        let at = store::update(&home, |r| {
            let at = r.list.iter().position(|x| x.name == remote.name);
            r.remove(&remote.name).map(|_| at)
        })
        .map_err(CliError::failed)?;
        unlisted = true;
        let deadline = Instant::now() + LET_GO;
        while store::kept_elsewhere(&home, &remote.name) {
            if Instant::now() >= deadline {
                // Put back as it was: nothing is half removed.
                let back = remote.clone();
                store::update(&home, move |r| {
                    r.list
                        .insert(at.unwrap_or(r.list.len()).min(r.list.len()), back);
                    Ok(())
                })
                .map_err(CliError::failed)?;
                return Err(CliError::failed(format!(
                    "another process keeps the tunnel of {} up and did not close it within {} s (an older `omniclaw remote tunnel {}`?): stop it, then remove the remote",
                    remote.name,
                    LET_GO.as_secs(),
                    remote.name
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let scope = store::scope(&home, &remote.name);
    // Secrets first: while the directory is there, a file store is found.
    for n in [
        SecretName::GatewayAuthToken,
        SecretName::GatewayAuthPassword,
    ] {
        ctx.store.remove(&scope, n).map_err(|e| {
            CliError::failed(format!(
                "{e}; the remote {} is kept, run the command again",
                remote.name
            ))
        })?;
    }
    store::remove_dir(&home, &remote.name).map_err(|e| {
        CliError::failed(format!(
            "cannot remove {}: {e}",
            store::dir(&home, &remote.name).display()
        ))
    })?;
    if !unlisted {
        store::update(&home, |r| r.remove(&remote.name)).map_err(CliError::failed)?;
    }
    if ctx.json {
        out::json(&json!({"ok": true, "removed": remote.name}));
    } else {
        println!(
            "Removed the remote gateway {}: its entry, its secret and its known-hosts file.",
            remote.name
        );
    }
    Ok(Outcome::Ok)
}

fn test(ctx: &Ctx, raw: &str) -> CmdResult {
    let home = home(ctx)?;
    let remote = find(&home, raw)?;
    let p = probe_remote(ctx, &home, &remote);
    if p.state == "tunnel failed" {
        return Err(CliError::failed(format!("{}: {}", remote.name, p.detail)));
    }
    if ctx.json {
        out::json(&json!({"ok": p.ok(), "remote": p.to_json()}));
    } else {
        println!("{}: {}", remote.name, p.summary());
        println!("  target:  {}", remote.target());
        let via = match p.via {
            Some("own") => " (through a tunnel opened for this test, now closed)",
            Some(_) => " (through the tunnel another process keeps up)",
            None => "",
        };
        println!("  url:     {}{via}", remote.dial_url());
        if let Some(profile) = &p.profile {
            println!("  profile: {profile} (there)");
        }
        if let Some(v) = &p.version {
            println!("  version: OmniClaw gateway {v}");
        }
        println!("  detail:  {}", p.detail);
    }
    Ok(if p.ok() {
        Outcome::Ok
    } else {
        Outcome::Problem
    })
}

/// `remote tunnel NAME`: keeps the tunnel up until stopped.
fn keep_up(ctx: &Ctx, raw: &str) -> CmdResult {
    let home = home(ctx)?;
    let remote = find(&home, raw)?;
    let Kind::Ssh(t) = &remote.kind else {
        return Err(CliError::usage(format!(
            "{} is reached at its URL ({}), not through a tunnel: nothing to keep up",
            remote.name,
            remote.dial_url()
        )));
    };
    let _keep = match store::try_keep(&home, &remote.name) {
        Ok(Some(lock)) => lock,
        Ok(None) => {
            return Err(CliError::failed(format!(
                "another process keeps the tunnel of {} up already (the app, or another `omniclaw remote tunnel {}`)",
                remote.name, remote.name
            )))
        }
        Err(e) => return Err(CliError::failed(format!("cannot take the tunnel's lock: {e}"))),
    };
    if std::net::TcpListener::bind(("127.0.0.1", t.local_port)).is_err() {
        return Err(CliError::failed(store::TunnelError::PortBusy {
            port: t.local_port,
        }));
    }
    let rt = runtime()?;
    let spec = TunnelSpec::new(&home, &remote.name, t);
    let mut sup = Supervisor::start(SshLaunch(spec), SystemClock::new());
    println!(
        "Keeping the tunnel of {} up: 127.0.0.1:{} → {} port {}.",
        remote.name, t.local_port, t.target, t.remote_port
    );
    println!("Press Ctrl+C to stop.");
    let mut gone = false;
    let mut checked = Instant::now();
    rt.block_on(async {
        let stop = stopped();
        tokio::pin!(stop);
        let mut shown = String::new();
        loop {
            sup.poll();
            let pid = sup.pid().map_or("?".into(), |p| p.to_string());
            let line = match sup.state() {
                TunnelState::Up { .. } => format!("tunnel up (ssh pid {pid})"),
                TunnelState::Starting { .. } => format!("starting ssh (pid {pid})"),
                TunnelState::Waiting {
                    reason, failures, ..
                } => format!("ssh exited: {reason}; starting it again (attempt {failures})"),
            };
            if line != shown {
                println!("{line}");
                let _ = std::io::stdout().flush();
                shown = line;
            }
            // Removed (`remote remove`) or changed: this tunnel is done.
            if checked.elapsed() >= FOLLOW_FILE {
                checked = Instant::now();
                let current = store::load(&home).ok();
                let still = current
                    .as_ref()
                    .and_then(|r| r.get(&remote.name))
                    .is_some_and(|r| r == &remote);
                if current.is_some() && !still {
                    gone = true;
                    break;
                }
            }
            tokio::select! {
                _ = &mut stop => break,
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    });
    // Dropping the supervisor ends its ssh: no tunnel outlives the command.
    drop(sup);
    if gone {
        println!(
            "The remote {} was removed or changed in remotes.json: stopped its tunnel.",
            remote.name
        );
    } else {
        println!("Stopped the tunnel of {}.", remote.name);
    }
    Ok(Outcome::Ok)
}

/// Resolves on Ctrl+C or, on Unix, SIGTERM (a service manager, `kill`).
async fn stopped() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
