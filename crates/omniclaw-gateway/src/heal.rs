//! The rescue's probe of a target: one check of another profile's gateway
//! as the core's [`heal`] judges it, made the way `gateway probe` and
//! `gateway status` make it — the protocol's `connect` with the target's
//! own credentials, then `health`, and the answer's config path and state
//! dir compared with the target's, so an answer from another process on
//! the port is never health.
//!
//! [`observe`] gathers what the OS and the files say (the port's holder,
//! the instance lock, the config's errors, `gateway.json`, a recorded
//! stop, the log's tail) and the protocol's answer; [`judge`] turns them
//! into a [`Check`] without IO, so every case is a table test.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde_json::{json, Value};

use omniclaw_channels::telegram::heal::{Probe, Prober};
use omniclaw_core::config::Config;
use omniclaw_core::env::EnvSnapshot;
use omniclaw_core::heal::{Check, Facts, Failure, Unknown};
use omniclaw_core::paths::{self, Inputs, Resolved};
use omniclaw_core::profile::Profile;
use omniclaw_core::report;
use omniclaw_os::intent;
use omniclaw_os::lock::InstanceLock;
use omniclaw_os::logs;
use omniclaw_os::portowner::{self, Holder};
use omniclaw_os::profiles::{self, ConfigState};
use omniclaw_os::runtime;
use omniclaw_os::secrets::SecretStore;

use crate::client::{Client, ConnectOptions, RpcError};
use crate::profile::{self, Overrides, SpecError};
use crate::Auth;

/// How long one probe may wait for the handshake and `health`.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// Log lines carried in a report.
const LOG_TAIL: usize = 5;

/// What the protocol said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// `hello-ok` and `health`: whose config and state dir it serves, and
    /// the edit its last reload refused, if any.
    Served {
        config_path: Option<String>,
        state_dir: Option<String>,
        refused: Vec<String>,
    },
    /// The gateway refused the credentials.
    Refused,
    /// No answer in time.
    Timeout,
    /// Nothing to connect to.
    NoConnection,
    /// Something else (a closed socket, a frame that is not the protocol).
    Other(String),
}

/// Everything one check saw of a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub port: u16,
    pub config_path: String,
    pub state_dir: String,
    /// The pid holding its instance lock.
    pub lock_pid: Option<u32>,
    /// Who listens on its port.
    pub port_holder: Option<Holder>,
    /// The config's errors as `path: message (line:col)`; empty when valid.
    pub config_errors: Vec<String>,
    /// Why there are no credentials to present.
    pub no_auth: Option<Unknown>,
    pub answer: Answer,
    /// The previous check could not authenticate: a timeout now is the
    /// slowed answer to a wrong token.
    pub was_refused: bool,
    /// The pid of the last gateway, when it died without a clean stop.
    pub died_pid: Option<u32>,
}

/// The check, from what was seen.
pub fn judge(seen: &Seen) -> Check {
    let port = seen.port;
    // The protocol proved whose gateway answers: nothing else to ask.
    if let Some(check) = served_ours(seen) {
        return check;
    }
    let Some(holder) = &seen.port_holder else {
        return Check::Failed(down_without_listener(seen));
    };
    if seen.lock_pid != Some(holder.pid) {
        return Check::Failed(Failure::PortTaken {
            port,
            pid: holder.pid,
            name: holder.name.clone(),
        });
    }
    if let Some(why) = &seen.no_auth {
        return Check::Unknown(why.clone());
    }
    match &seen.answer {
        // Not ours: `served_ours` took our own answers.
        Answer::Served {
            config_path,
            state_dir,
            ..
        } => Check::Failed(Failure::NotOurIdentity {
            port,
            detail: format!(
                "it serves config {} and state dir {}",
                config_path.as_deref().unwrap_or("?"),
                state_dir.as_deref().unwrap_or("?")
            ),
        }),
        Answer::Refused => Check::Unknown(Unknown::WrongToken),
        Answer::Timeout if seen.was_refused => Check::Unknown(Unknown::SlowedWrongToken),
        Answer::Timeout => Check::Failed(Failure::NotOurIdentity {
            port,
            detail: format!("no answer within {} s", PROBE_TIMEOUT.as_secs()),
        }),
        Answer::NoConnection => Check::Failed(down_without_listener(seen)),
        Answer::Other(detail) => Check::Failed(Failure::NotOurIdentity {
            port,
            detail: detail.clone(),
        }),
    }
}

/// The check when the answer came from the target itself (its config path
/// and state dir), `None` otherwise.
fn served_ours(seen: &Seen) -> Option<Check> {
    let Answer::Served {
        config_path,
        state_dir,
        refused,
    } = &seen.answer
    else {
        return None;
    };
    let ours = config_path.as_deref() == Some(seen.config_path.as_str())
        && state_dir.as_deref() == Some(seen.state_dir.as_str());
    if !ours {
        return None;
    }
    Some(if !seen.config_errors.is_empty() {
        Check::RunningOnLastGood {
            refused: seen.config_errors.clone(),
        }
    } else if !refused.is_empty() {
        Check::RunningOnLastGood {
            refused: refused.clone(),
        }
    } else {
        Check::Healthy
    })
}

/// Nothing (of ours) answers: the config's errors first (they say what
/// to fix), then a process that died, then the bare fact.
fn down_without_listener(seen: &Seen) -> Failure {
    if !seen.config_errors.is_empty() {
        return Failure::ConfigInvalid {
            errors: seen.config_errors.clone(),
        };
    }
    match (seen.lock_pid, seen.died_pid) {
        (None, Some(pid)) => Failure::ProcessGone { pid },
        _ => Failure::NotListening { port: seen.port },
    }
}

/// What the prober remembers of a target between checks.
#[derive(Debug, Clone, Default)]
struct Memory {
    refused: bool,
    /// The credentials read last, with the config's modification time
    /// then: a secret store is not read again at every check.
    auth: Option<(Option<u64>, Auth)>,
    /// When it was last seen healthy (ms since the epoch).
    healthy_ms: Option<u64>,
}

/// Probes targets with the rescue gateway's environment (its child
/// environment: no `OMNICLAW_*` of the rescue's own) and secret store.
pub struct TargetProber {
    env: EnvSnapshot,
    store: Arc<dyn SecretStore>,
    memory: Mutex<HashMap<Profile, Memory>>,
}

impl TargetProber {
    pub fn new(env: EnvSnapshot, store: Arc<dyn SecretStore>) -> TargetProber {
        TargetProber {
            env,
            store,
            memory: Mutex::new(HashMap::new()),
        }
    }

    fn remember(&self, target: &Profile) -> Memory {
        self.memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(target)
            .cloned()
            .unwrap_or_default()
    }

    fn store_memory(&self, target: &Profile, memory: Memory) {
        self.memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(target.clone(), memory);
    }
}

#[async_trait]
impl Prober for TargetProber {
    async fn probe(&self, target: &Profile) -> Probe {
        let resolved = match paths::resolve(Inputs {
            profile_flag: Some(target.name()),
            env: &self.env,
            cwd: None,
        }) {
            Ok(r) => r,
            Err(e) => {
                return Probe {
                    check: Check::Failed(Failure::ConfigInvalid {
                        errors: vec![e.to_string()],
                    }),
                    facts: Facts::default(),
                }
            }
        };
        let memory = self.remember(target);
        let (seen, resolved, auth) =
            observe(resolved, &self.env, self.store.clone(), &memory).await;
        let check = judge(&seen);
        let quiet = matches!(check, Check::Healthy | Check::RunningOnLastGood { .. });
        let facts = facts_of(&resolved, &memory, !quiet);
        let now = now_ms();
        let refused = matches!(check, Check::Unknown(_));
        self.store_memory(
            target,
            Memory {
                refused,
                // A refused token is read again from the store next time.
                auth: auth.filter(|_| !refused),
                healthy_ms: match check {
                    Check::Healthy => Some(now),
                    _ => memory.healthy_ms,
                },
            },
        );
        Probe { check, facts }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Milliseconds since the epoch `path` was last modified.
fn modified_ms(path: &Path) -> Option<u64> {
    let t = std::fs::metadata(path).ok()?.modified().ok()?;
    u64::try_from(t.duration_since(UNIX_EPOCH).ok()?.as_millis()).ok()
}

/// Who runs it, a stop on purpose, whether its config changed since it
/// stopped or last ran healthy, and (`with_log`) its log's last lines.
fn facts_of(resolved: &Resolved, memory: &Memory, with_log: bool) -> Facts {
    let state_dir = &resolved.state_dir;
    let last = runtime::read_last(state_dir);
    let config_ms = modified_ms(&resolved.config_path);
    let changed_after = |at: Option<u64>| matches!((config_ms, at), (Some(c), Some(a)) if c > a);
    let exit = runtime::read_exit(state_dir);
    let stopped_ms = exit
        .map(|e| e.at_ms)
        .or_else(|| last.as_ref().and_then(|l| l.stopped_ms));
    let started_ms = last.as_ref().map(|l| l.info.started_ms);
    // The secrets file, when the profile keeps its secrets in one (a
    // keychain entry's change cannot be seen from here).
    let secrets_ms = modified_ms(&state_dir.join(omniclaw_os::secrets::FILE_NAME));
    let secrets_after = |at: Option<u64>| matches!((secrets_ms, at), (Some(c), Some(a)) if c > a);
    let since_stop = stopped_ms.or(started_ms);
    Facts {
        owner: intent::last_owner(state_dir),
        stopped_on_purpose: intent::read(state_dir).map(|i| i.by),
        exit_code: exit.map(|e| e.code),
        changed_since_stop: changed_after(since_stop) || secrets_after(since_stop),
        config_changed_since_healthy: changed_after(memory.healthy_ms.or(started_ms)),
        log_tail: match with_log {
            true => logs::tail(&resolved.logs_dir(), LOG_TAIL)
                .map(|lines| lines.iter().map(|l| logs::render(l)).collect())
                .unwrap_or_default(),
            false => Vec::new(),
        },
    }
}

/// Reads the files, asks the gateway on the target's port, and looks up
/// the port's holder unless the target itself answered. Returns the
/// credentials used, to be used again while the config is unchanged.
async fn observe(
    resolved: Resolved,
    env: &EnvSnapshot,
    store: Arc<dyn SecretStore>,
    memory: &Memory,
) -> (Seen, Resolved, Option<(Option<u64>, Auth)>) {
    let env = env.clone();
    let target = resolved.clone();
    let cached = memory.auth.clone();
    let files = tokio::task::spawn_blocking(move || {
        let resolved = target;
        let config = profiles::read_config(&resolved.config_path);
        let (cfg, value) = match &config {
            ConfigState::Valid { loaded, .. } => (Some(&loaded.config), Some(loaded.doc.value())),
            other => (None, other.value()),
        };
        let mut port = profile::layout(&resolved, cfg, value, &Overrides::default())
            .map(|l| (l.bind, l.port))
            .map_err(|e| e.to_string());
        // Where it listens now; else, when the config cannot say (it is
        // invalid), where it listened last — never the default ports,
        // which another gateway may hold.
        let live = runtime::read_live(&resolved.state_dir).or_else(|| match &config {
            ConfigState::Valid { .. } | ConfigState::Missing => None,
            _ => runtime::read_last(&resolved.state_dir).map(|l| l.info),
        });
        if let Some(live) = &live {
            if let Ok(ip) = live.bind.parse() {
                port = Ok((ip, live.port));
            }
        }
        let config_errors = match &config {
            ConfigState::Invalid { errors, .. } => errors
                .diagnostics()
                .iter()
                .map(ToString::to_string)
                .collect(),
            ConfigState::Unreadable(why) => vec![why.clone()],
            _ => Vec::new(),
        };
        let config_ms = modified_ms(&resolved.config_path);
        let auth = match cached {
            Some((at, auth)) if at == config_ms => Ok(auth),
            _ => credentials(&resolved, &config, &env, store.as_ref()),
        }
        .map(|auth| (config_ms, auth));
        let lock_pid = InstanceLock::probe(&resolved.lock_path())
            .ok()
            .flatten()
            .map(|h| h.pid);
        let died_pid = runtime::read_last(&resolved.state_dir)
            .filter(|l| l.stopped_ms.is_none())
            .map(|l| l.info.pid);
        (resolved, port, config_errors, auth, lock_pid, died_pid)
    })
    .await;
    let (resolved, port, config_errors, auth, lock_pid, died_pid) = match files {
        Ok(read) => read,
        Err(e) => {
            let why = format!("reading its files failed: {e}");
            (
                resolved,
                Err(why),
                Vec::new(),
                Err(Unknown::KeychainUnreadable {
                    detail: String::new(),
                }),
                None,
                None,
            )
        }
    };
    let (bind, port) = match port {
        Ok(bp) => bp,
        Err(e) => {
            let seen = Seen {
                port: 0,
                config_path: resolved.config_path.display().to_string(),
                state_dir: resolved.state_dir.display().to_string(),
                lock_pid,
                port_holder: None,
                config_errors: vec![e],
                no_auth: None,
                answer: Answer::NoConnection,
                was_refused: memory.refused,
                died_pid,
            };
            return (seen, resolved, None);
        }
    };
    let (no_auth, answer, used) = match auth {
        Err(why) => (Some(why), Answer::NoConnection, None),
        Ok((at, auth)) => {
            let answer = ask(&ws_url(bind, port), auth.clone()).await;
            (None, answer, Some((at, auth)))
        }
    };
    let mut seen = Seen {
        port,
        config_path: resolved.config_path.display().to_string(),
        state_dir: resolved.state_dir.display().to_string(),
        lock_pid,
        port_holder: None,
        config_errors,
        no_auth,
        answer,
        was_refused: memory.refused,
        died_pid,
    };
    // Only an answer that is not the target's own needs to know who
    // listens (a scan of the OS's sockets, the costly part of a check).
    if served_ours(&seen).is_none() {
        seen.port_holder = tokio::task::spawn_blocking(move || portowner::holder(port))
            .await
            .ok()
            .flatten();
    }
    (seen, resolved, used)
}

/// The target's credentials; an invalid config cannot say where its
/// secret is, so the one `setup` put in the store is tried, as `status`
/// does.
fn credentials(
    resolved: &Resolved,
    config: &ConfigState,
    env: &EnvSnapshot,
    store: &dyn SecretStore,
) -> Result<Auth, Unknown> {
    let mut fallback = Config::default();
    if !matches!(config, ConfigState::Valid { .. }) {
        fallback.gateway.auth.token = Some(omniclaw_core::config::SecretRef::Keychain);
    }
    let cfg = match config {
        ConfigState::Valid { loaded, .. } => &loaded.config,
        _ => &fallback,
    };
    profile::credentials(resolved, cfg, &Overrides::default(), env, store).map_err(|e| match e {
        SpecError::Store { .. } => Unknown::KeychainUnreadable {
            detail: e.to_string(),
        },
        other => Unknown::KeychainUnreadable {
            detail: other.to_string(),
        },
    })
}

/// `ws://HOST:PORT`; a wildcard bind is reached on loopback.
fn ws_url(bind: IpAddr, port: u16) -> String {
    let host = match bind {
        b if b.is_unspecified() => "127.0.0.1".to_string(),
        IpAddr::V6(b) => format!("[{b}]"),
        IpAddr::V4(b) => b.to_string(),
    };
    format!("ws://{host}:{port}")
}

/// `connect` then `health`, as `gateway probe` does.
async fn ask(url: &str, auth: Auth) -> Answer {
    let mut opts = ConnectOptions::new(auth, &["operator.read"]);
    opts.mode = "probe".into();
    opts.timeout = PROBE_TIMEOUT;
    let client = match Client::connect_with(url, opts).await {
        Ok(c) => c,
        Err(e) => return answer_of(&e),
    };
    let health = client.call("health", json!({})).await.ok();
    let hello = client.hello().clone();
    client.close().await;
    let snapshot = |key: &str| {
        hello
            .pointer(&format!("/snapshot/{key}"))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let refused = health
        .as_ref()
        .and_then(|h| h.pointer("/reload/lastError"))
        .and_then(Value::as_str)
        .map(report::refusal_lines)
        .unwrap_or_default();
    Answer::Served {
        config_path: snapshot("configPath"),
        state_dir: snapshot("stateDir"),
        refused,
    }
}

fn answer_of(e: &RpcError) -> Answer {
    match e {
        RpcError::Remote {
            message, details, ..
        } => {
            let code = details
                .as_ref()
                .and_then(|d| d.get("code"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            if code.starts_with("AUTH_") || message.starts_with("unauthorized") {
                Answer::Refused
            } else {
                Answer::Other(e.to_string())
            }
        }
        RpcError::Timeout { .. } => Answer::Timeout,
        RpcError::Connect { .. } => Answer::NoConnection,
        RpcError::Closed { .. } | RpcError::Protocol(_) => Answer::Other(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen() -> Seen {
        Seen {
            port: 18789,
            config_path: "/h/.omniclaw/omniclaw.json".into(),
            state_dir: "/h/.omniclaw".into(),
            lock_pid: Some(42),
            port_holder: Some(Holder {
                pid: 42,
                name: "omniclaw".into(),
            }),
            config_errors: Vec::new(),
            no_auth: None,
            answer: Answer::Served {
                config_path: Some("/h/.omniclaw/omniclaw.json".into()),
                state_dir: Some("/h/.omniclaw".into()),
                refused: Vec::new(),
            },
            was_refused: false,
            died_pid: None,
        }
    }

    fn check(change: impl FnOnce(&mut Seen), expected: Check) {
        let mut s = seen();
        change(&mut s);
        assert_eq!(judge(&s), expected, "{s:?}");
    }

    #[test]
    fn identity_is_proven_and_another_process_on_the_port_is_not_health() {
        check(|_| {}, Check::Healthy);
        // The protocol proved it: whose socket it is was not even looked up.
        check(|s| s.port_holder = None, Check::Healthy);
        check(
            |s| {
                // It accepts the connection and never speaks the protocol.
                s.answer = Answer::Timeout;
                s.port_holder = Some(Holder {
                    pid: 7,
                    name: "python3".into(),
                })
            },
            Check::Failed(Failure::PortTaken {
                port: 18789,
                pid: 7,
                name: "python3".into(),
            }),
        );
        // Another gateway answering with its own files.
        check(
            |s| {
                s.answer = Answer::Served {
                    config_path: Some("/h/.omniclaw-x/omniclaw.json".into()),
                    state_dir: Some("/h/.omniclaw-x".into()),
                    refused: Vec::new(),
                }
            },
            Check::Failed(Failure::NotOurIdentity {
                port: 18789,
                detail:
                    "it serves config /h/.omniclaw-x/omniclaw.json and state dir /h/.omniclaw-x"
                        .into(),
            }),
        );
    }

    #[test]
    fn credentials_that_do_not_work_are_unknown_never_down() {
        check(
            |s| s.answer = Answer::Refused,
            Check::Unknown(Unknown::WrongToken),
        );
        check(
            |s| {
                s.answer = Answer::Timeout;
                s.was_refused = true;
            },
            Check::Unknown(Unknown::SlowedWrongToken),
        );
        let locked = Unknown::KeychainUnreadable {
            detail: "the keychain is locked".into(),
        };
        let no_auth = Some(locked.clone());
        check(
            |s| {
                s.no_auth = no_auth;
                s.answer = Answer::NoConnection;
            },
            Check::Unknown(locked),
        );
        // A hung gateway that never refused us is not healthy.
        check(
            |s| s.answer = Answer::Timeout,
            Check::Failed(Failure::NotOurIdentity {
                port: 18789,
                detail: "no answer within 3 s".into(),
            }),
        );
    }

    #[test]
    fn an_invalid_file_is_down_when_nothing_serves_and_last_good_when_it_does() {
        let errors = vec!["gateway.port: expected a number (3:12)".to_string()];
        check(
            |s| s.config_errors = errors.clone(),
            Check::RunningOnLastGood {
                refused: errors.clone(),
            },
        );
        check(
            |s| {
                s.config_errors = errors.clone();
                s.port_holder = None;
                s.lock_pid = None;
                s.answer = Answer::NoConnection;
            },
            Check::Failed(Failure::ConfigInvalid {
                errors: errors.clone(),
            }),
        );
        check(
            |s| {
                s.port_holder = None;
                s.lock_pid = None;
                s.answer = Answer::NoConnection;
                s.died_pid = Some(41);
            },
            Check::Failed(Failure::ProcessGone { pid: 41 }),
        );
        check(
            |s| {
                s.port_holder = None;
                s.lock_pid = None;
                s.answer = Answer::NoConnection;
            },
            Check::Failed(Failure::NotListening { port: 18789 }),
        );
    }

    /// Profile main in `home` with `config`.
    fn main_in(home: &Path, config: &str) -> (EnvSnapshot, Resolved) {
        let env = EnvSnapshot::from_vars([("HOME", home.to_str().expect("utf-8"))]);
        let resolved = paths::resolve(Inputs {
            profile_flag: Some("main"),
            env: &env,
            cwd: None,
        })
        .expect("resolves");
        std::fs::create_dir_all(&resolved.state_dir).expect("state dir");
        std::fs::write(&resolved.config_path, config).expect("config");
        (env, resolved)
    }

    #[test]
    fn a_service_that_exited_on_bad_input_says_so_until_its_config_changes() {
        let home = tempfile::tempdir().expect("tempdir");
        let (_, resolved) = main_in(home.path(), "{}\n");
        let facts = facts_of(&resolved, &Memory::default(), true);
        assert_eq!((facts.exit_code, facts.changed_since_stop), (None, false));
        let later = modified_ms(&resolved.config_path).expect("mtime") + 1;
        runtime::record_exit(
            &resolved.state_dir,
            runtime::Exit {
                code: 2,
                at_ms: later,
            },
        )
        .expect("record");
        let facts = facts_of(&resolved, &Memory::default(), true);
        assert_eq!(
            (facts.exit_code, facts.changed_since_stop),
            (Some(2), false)
        );
        // An edit after it stopped.
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(&resolved.config_path, "{logging: {level: 'debug'}}\n").expect("edit");
        let facts = facts_of(&resolved, &Memory::default(), true);
        assert_eq!((facts.exit_code, facts.changed_since_stop), (Some(2), true));
    }

    #[tokio::test]
    async fn an_invalid_config_is_probed_where_the_target_last_listened() {
        let home = tempfile::tempdir().expect("tempdir");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (env, resolved) = main_in(home.path(), "{ gateway: { port: 'not a port' } }\n");
        let last = runtime::RuntimeInfo {
            pid: 1,
            owner: "service".into(),
            bind: "127.0.0.1".into(),
            port,
            control_port: None,
            canvas_port: None,
            cdp_range: None,
            config_path: resolved.config_path.clone(),
            started_ms: 1,
        };
        runtime::write(&resolved.state_dir, &last).expect("gateway.json");
        let store: Arc<dyn SecretStore> = Arc::new(omniclaw_os::secrets::MemoryStore::default());
        let prober = TargetProber::new(env, store);
        let probe = prober
            .probe(&Profile::parse("main").expect("profile"))
            .await;
        match probe.check {
            Check::Failed(Failure::PortTaken { port: p, pid, .. }) => {
                assert_eq!((p, pid), (port, std::process::id()));
            }
            other => panic!("expected the last port's holder, got {other:?}"),
        }
        drop(listener);
    }

    #[tokio::test]
    async fn a_listener_that_is_not_the_target_is_named_by_pid_and_name() {
        let home = tempfile::tempdir().expect("tempdir");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let config = format!("{{\"gateway\": {{\"port\": {port}}}}}\n");
        let (env, _) = main_in(home.path(), &config);
        let store: Arc<dyn SecretStore> = Arc::new(omniclaw_os::secrets::MemoryStore::default());
        let prober = TargetProber::new(env, store);
        let main = Profile::parse("main").expect("profile");
        let probe = prober.probe(&main).await;
        let me = Holder {
            pid: std::process::id(),
            name: String::new(),
        };
        match probe.check {
            Check::Failed(Failure::PortTaken { port: p, pid, name }) => {
                assert_eq!((p, pid), (port, me.pid));
                assert!(!name.is_empty());
            }
            other => panic!("expected the port's holder, got {other:?}"),
        }
        drop(listener);
        let probe = prober.probe(&main).await;
        assert_eq!(
            probe.check,
            Check::Failed(Failure::NotListening { port }),
            "nothing listens now"
        );
        assert_eq!(probe.facts.owner, None);
    }
}
