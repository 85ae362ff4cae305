//! One authenticated protocol connection per running gateway, from the
//! app's Rust side: what the app knows of a gateway while it runs.
//!
//! Each connection follows the gateway's pushes instead of polling:
//! `health` (a refused config edit, `reload.lastError`; the assistant's
//! model and today's spend against `budget.dailyUsd`), the approvals its
//! assistant waits for (`exec.approval.requested|resolved`; the
//! connection holds `operator.approvals`), and the runs of its assistant
//! (`chat`, `agent`, `session.message`, `session.tool`), kept as
//! [`Live`] runs for the dashboard's chat, which sends through the same
//! connection. A run's end asks `health` again, so the spend it added
//! shows at once. Works alike for gateways this app embeds and for those
//! a service or a terminal runs: the address comes from the gateway's
//! runtime file, the credentials from its config and the secret store.
//! Remote gateways ([`crate::remotes`]) are followed the same way while
//! they can be dialled, at their URL (an SSH tunnel's local end) with the
//! credentials `omniclaw remote add` stored; what this connection knows
//! (connected, version, `health.ok`, why it failed) is their state.
//! The web view never connects to a gateway.
//!
//! A connection ends when its gateway no longer runs ([`follow`] is told
//! the running set after every gathering) and is made again when it
//! restarts, on whatever port it then uses.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use omniclaw_core::tray::{ApprovalWait, MicroUsd, Spend};
use omniclaw_gateway::client::{Client, ConnectOptions};
use serde::Serialize;
use serde_json::{json, Value};
use tauri::{AppHandle, Emitter, Wry};
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use crate::chat::{self, Live, Update};
use crate::desktop::Desktop;
use crate::window;

/// Pause before connecting again after a gateway closed or refused us.
const RETRY: Duration = Duration::from_secs(1);
/// Live chat updates reach the page at most this often (the gateway paces
/// its own deltas alike).
const PACING: Duration = Duration::from_millis(75);
/// Events that may wait for the connection's task before it lags.
const EVENT_BUFFER: usize = 1024;
/// What the app may do on a gateway: read, chat, answer approvals.
const SCOPES: &[&str] = &["operator.read", "operator.write", "operator.approvals"];

/// The assistant of a running gateway, from its `health`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Assistant {
    /// `provider/model` of the first model, when one is configured.
    pub model: Option<String>,
    /// Why it does not run, when it does not.
    pub problem: Option<String>,
    pub active_runs: u64,
    pub spend: Option<Spend>,
}

/// An approval its assistant waits for.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    pub id: String,
    pub command: String,
    pub cwd: String,
    pub session_key: String,
    pub reason: String,
    pub expires_at_ms: u64,
}

impl Approval {
    /// From an `exec.approval.requested` payload (or a list item).
    fn parse(v: &Value) -> Option<Approval> {
        let request = &v["request"];
        Some(Approval {
            id: v["id"].as_str()?.to_string(),
            command: request["command"].as_str()?.to_string(),
            cwd: request["cwd"].as_str().unwrap_or_default().to_string(),
            session_key: request["sessionKey"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            reason: request["warningText"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            expires_at_ms: v["expiresAtMs"].as_u64().unwrap_or(0),
        })
    }

    pub fn wait(&self) -> ApprovalWait {
        ApprovalWait {
            id: self.id.clone(),
            command: self.command.clone(),
        }
    }
}

fn micros(usd: f64) -> MicroUsd {
    if usd.is_finite() && usd > 0.0 {
        // Spend and caps are small; the cast saturates on the absurd.
        (usd * 1e6).round() as MicroUsd
    } else {
        0
    }
}

/// The `assistant` object of a `health` payload; `None` when the gateway
/// runs no assistant.
pub fn assistant_of(health: &Value) -> Option<Assistant> {
    let a = health.get("assistant").filter(|a| a.is_object())?;
    let today = &a["today"];
    let spend = (today.is_object() && today.get("error").is_none()).then(|| Spend {
        tokens: today["tokens"].as_u64().unwrap_or(0),
        usd: micros(today["usd"].as_f64().unwrap_or(0.0)),
        cap: today["dailyUsd"].as_f64().map(micros),
        resets_at_ms: today["resetsAtMs"].as_u64().unwrap_or(0),
    });
    Some(Assistant {
        model: a["model"].as_str().map(str::to_string),
        problem: a["problem"].as_str().map(str::to_string),
        active_runs: a["activeRuns"].as_u64().unwrap_or(0),
        spend,
    })
}

/// `reload.lastError` of a `health` payload.
fn last_error(health: &Value) -> Option<String> {
    health
        .pointer("/reload/lastError")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// Everything the connections know, shared with the view and the
/// commands.
#[derive(Default)]
pub struct Links {
    /// The task of each running gateway's connection.
    followers: Mutex<HashMap<String, tauri::async_runtime::JoinHandle<()>>>,
    clients: Mutex<HashMap<String, Arc<Client>>>,
    assistants: Mutex<HashMap<String, Assistant>>,
    approvals: Mutex<HashMap<String, Vec<Approval>>>,
    /// Runs being written, per gateway and run id.
    runs: Mutex<HashMap<String, HashMap<String, Live>>>,
    /// The session the page shows: `(gateway, canonical key)`.
    watching: Mutex<Option<(String, String)>>,
    /// The gateway the tray's "Chat…" asked for.
    target: Mutex<Option<String>>,
    /// `health.ok` of each connected gateway.
    healthy: Mutex<HashMap<String, bool>>,
    /// Why the last connection attempt to a gateway failed, until one works.
    failures: Mutex<HashMap<String, String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every mutex here holds plain data; a panic elsewhere cannot tear it.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Sets (or, with `None`, removes) `name`'s value in `map`; whether it
/// changed, so the caller wakes the refresher only then.
pub fn replace<T: Clone + PartialEq>(
    map: &Mutex<HashMap<String, T>>,
    name: &str,
    next: Option<T>,
) -> bool {
    let mut all = lock(map);
    match next {
        Some(v) => all.insert(name.to_string(), v.clone()) != Some(v),
        None => all.remove(name).is_some(),
    }
}

impl Links {
    /// The connection to `name`, or why there is none.
    pub fn client(&self, name: &str) -> Result<Arc<Client>, String> {
        lock(&self.clients).get(name).cloned().ok_or_else(|| {
            format!(
                "the app is not connected to {name}: start it, or wait a moment if it is starting"
            )
        })
    }

    /// The version `name`'s `hello-ok` reported, while connected.
    pub fn version(&self, name: &str) -> Option<String> {
        lock(&self.clients)
            .get(name)
            .and_then(|c| omniclaw_os::version::from_hello(c.hello()))
    }

    /// Whether the app is connected to `name`.
    pub fn connected(&self, name: &str) -> bool {
        lock(&self.clients).contains_key(name)
    }

    /// `health.ok` of `name`, once read.
    pub fn healthy(&self, name: &str) -> Option<bool> {
        lock(&self.healthy).get(name).copied()
    }

    /// Why the app could not connect to `name` the last time it tried.
    pub fn failure(&self, name: &str) -> Option<String> {
        lock(&self.failures).get(name).cloned()
    }

    fn set_failure(&self, desktop: &Desktop, name: &str, why: Option<String>) {
        if replace(&self.failures, name, why) {
            desktop.changed.notify_one();
        }
    }

    pub fn assistant(&self, name: &str) -> Option<Assistant> {
        lock(&self.assistants).get(name).cloned()
    }

    pub fn approvals(&self, name: &str) -> Vec<Approval> {
        lock(&self.approvals).get(name).cloned().unwrap_or_default()
    }

    /// Forgets approval `id` of `name` (answered from here).
    pub fn resolved(&self, name: &str, id: &str) {
        if let Some(list) = lock(&self.approvals).get_mut(name) {
            list.retain(|a| a.id != id);
        }
    }

    pub fn watch(&self, session: Option<(String, String)>) {
        *lock(&self.watching) = session;
    }

    fn watched(&self, name: &str, key: &str) -> bool {
        lock(&self.watching)
            .as_ref()
            .is_some_and(|(n, k)| n == name && k == key)
    }

    /// "Chat…" in the tray: the page opens on `name`.
    pub fn set_target(&self, name: &str) {
        *lock(&self.target) = Some(name.to_string());
    }

    pub fn take_target(&self) -> Option<String> {
        lock(&self.target).take()
    }

    /// A message the app sends: its run shows at once.
    pub fn begin_run(&self, name: &str, run: &str, key: &str, text: &str) {
        let canonical = canonical_key(key);
        lock(&self.runs)
            .entry(name.to_string())
            .or_default()
            .insert(
                run.to_string(),
                Live::new(&canonical, Some(text.to_string())),
            );
    }

    /// A run the gateway did not take.
    pub fn drop_run(&self, name: &str, run: &str) {
        if let Some(runs) = lock(&self.runs).get_mut(name) {
            runs.remove(run);
        }
    }

    /// The runs of session `key` of `name` being written now.
    pub fn live_updates(&self, name: &str, key: &str) -> Vec<Update> {
        lock(&self.runs)
            .get(name)
            .into_iter()
            .flat_map(|runs| runs.iter())
            .filter(|(_, live)| live.key == key && !live.ended())
            .map(|(run, live)| update(name, run, live))
            .collect()
    }

    fn set_assistant(&self, desktop: &Desktop, name: &str, next: Option<Assistant>) {
        if replace(&self.assistants, name, next) {
            desktop.changed.notify_one();
        }
    }

    fn set_approvals(&self, desktop: &Desktop, name: &str, list: Vec<Approval>) {
        let mut all = lock(&self.approvals);
        let changed = all.get(name).is_none_or(|have| have != &list);
        all.insert(name.to_string(), list);
        drop(all);
        if changed {
            desktop.changed.notify_one();
        }
    }

    /// Everything of a gateway that stopped.
    fn forget(&self, name: &str) {
        lock(&self.clients).remove(name);
        lock(&self.healthy).remove(name);
        lock(&self.failures).remove(name);
        lock(&self.assistants).remove(name);
        lock(&self.approvals).remove(name);
        lock(&self.runs).remove(name);
    }
}

/// `main` → `agent:main:main`, as the gateway canonicalises keys (the
/// page sends the canonical key it was given; this covers a bare one).
fn canonical_key(key: &str) -> String {
    let key = key.trim().to_lowercase();
    if key.starts_with("agent:") {
        key
    } else {
        format!("agent:main:{key}")
    }
}

fn update(name: &str, run: &str, live: &Live) -> Update {
    Update {
        gateway: name.to_string(),
        session_key: live.key.clone(),
        run_id: run.to_string(),
        state: live.state(),
        entries: live.entries(),
    }
}

/// Starts a connection for each gateway in `running` that has none and
/// ends those whose gateway stopped (forgetting what they knew).
pub fn follow(app: &AppHandle<Wry>, desktop: &Arc<Desktop>, running: &BTreeSet<String>) {
    let links = &desktop.links;
    let mut followers = lock(&links.followers);
    let gone: Vec<String> = followers
        .keys()
        .filter(|name| !running.contains(*name))
        .cloned()
        .collect();
    for name in gone {
        if let Some(task) = followers.remove(&name) {
            task.abort();
        }
        links.forget(&name);
        desktop.set_refused(&name, None);
    }
    for name in running {
        if !followers.contains_key(name) {
            let task = tauri::async_runtime::spawn(follow_one(
                app.clone(),
                Arc::clone(desktop),
                name.clone(),
            ));
            followers.insert(name.clone(), task);
        }
    }
}

async fn connect(desktop: &Arc<Desktop>, name: &str) -> Option<Arc<Client>> {
    let me = Arc::clone(desktop);
    let who = name.to_string();
    let endpoint =
        tauri::async_runtime::spawn_blocking(move || crate::desktop::endpoint(&me, &who)).await;
    let (url, auth) = match endpoint {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => {
            desktop
                .links
                .set_failure(desktop, name, Some(e.to_string()));
            return None;
        }
        Err(_) => return None,
    };
    let mut opts = ConnectOptions::new(auth, SCOPES);
    opts.timeout = Duration::from_secs(10);
    opts.mode = "ui".into();
    opts.caps = vec!["tool-events".into()];
    opts.event_buffer = EVENT_BUFFER;
    match Client::connect_with(&url, opts).await {
        Ok(client) => {
            desktop.links.set_failure(desktop, name, None);
            Some(Arc::new(client))
        }
        Err(e) => {
            desktop
                .links
                .set_failure(desktop, name, Some(format!("{url}: {e}")));
            None
        }
    }
}

/// Reads `health` and records what it says.
async fn read_health(desktop: &Arc<Desktop>, name: &str, client: &Client) {
    if let Ok(health) = client.call("health", json!({})).await {
        take_health(desktop, name, &health);
    }
}

fn take_health(desktop: &Desktop, name: &str, health: &Value) {
    let ok = health.get("ok") == Some(&json!(true));
    if lock(&desktop.links.healthy).insert(name.to_string(), ok) != Some(ok) {
        desktop.changed.notify_one();
    }
    desktop.set_refused(name, last_error(health));
    desktop
        .links
        .set_assistant(desktop, name, assistant_of(health));
}

async fn read_approvals(desktop: &Desktop, name: &str, client: &Client) {
    if let Ok(list) = client.call("exec.approval.list", json!({})).await {
        let list = list
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Approval::parse)
            .collect();
        desktop.links.set_approvals(desktop, name, list);
    }
}

async fn follow_one(app: AppHandle<Wry>, desktop: Arc<Desktop>, name: String) {
    loop {
        if let Some(client) = connect(&desktop, &name).await {
            let events = client.events();
            lock(&desktop.links.clients).insert(name.clone(), Arc::clone(&client));
            // Its version (from `hello-ok`) reaches the tray at once.
            desktop.changed.notify_one();
            read_health(&desktop, &name, &client).await;
            read_approvals(&desktop, &name, &client).await;
            // `session.message` and `session.tool` of every session.
            let _ = client.call("sessions.subscribe", json!({})).await;
            serve(&app, &desktop, &name, &client, events).await;
            lock(&desktop.links.clients).remove(&name);
            lock(&desktop.links.healthy).remove(&name);
            desktop.changed.notify_one();
            // Approvals cannot be answered without the connection.
            desktop.links.set_approvals(&desktop, &name, Vec::new());
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// Handles the gateway's events until the connection ends.
async fn serve(
    app: &AppHandle<Wry>,
    desktop: &Arc<Desktop>,
    name: &str,
    client: &Arc<Client>,
    mut events: tokio::sync::broadcast::Receiver<Value>,
) {
    let links = &desktop.links;
    // Runs of the watched session with news for the page since the last send.
    let mut dirty: BTreeSet<String> = BTreeSet::new();
    let mut due: Option<Instant> = None;
    loop {
        let wait = async {
            match due {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            event = events.recv() => match event {
                Ok(frame) => {
                    let event = frame["event"].as_str().unwrap_or_default();
                    let payload = &frame["payload"];
                    match event {
                        "health" => take_health(desktop, name, payload),
                        "exec.approval.requested" => {
                            if let Some(a) = Approval::parse(payload) {
                                let mut list = links.approvals(name);
                                list.retain(|have| have.id != a.id);
                                list.push(a);
                                links.set_approvals(desktop, name, list);
                            }
                        }
                        "exec.approval.resolved" => {
                            let id = payload["id"].as_str().unwrap_or_default();
                            let mut list = links.approvals(name);
                            list.retain(|a| a.id != id);
                            links.set_approvals(desktop, name, list);
                        }
                        _ => {
                            if let Some((run, ended)) = on_run_event(links, name, event, payload) {
                                if ended {
                                    // Its spend counts now.
                                    let (me, who, c) = (Arc::clone(desktop), name.to_string(), Arc::clone(client));
                                    tauri::async_runtime::spawn(async move { read_health(&me, &who, &c).await });
                                    send_updates(app, links, name, std::slice::from_ref(&run));
                                    dirty.remove(&run);
                                    if let Some(runs) = lock(&links.runs).get_mut(name) {
                                        runs.remove(&run);
                                    }
                                } else if watched_run(links, name, &run) {
                                    dirty.insert(run);
                                    due.get_or_insert_with(|| Instant::now() + PACING);
                                }
                            }
                        }
                    }
                }
                // Too slow for once: what was missed is read again; runs
                // that may have missed their end are forgotten (the page
                // reads their stored messages).
                Err(RecvError::Lagged(_)) => {
                    lock(&links.runs).remove(name);
                    dirty.clear();
                    read_health(desktop, name, client).await;
                    read_approvals(desktop, name, client).await;
                }
                Err(RecvError::Closed) => break,
            },
            () = wait => {
                let runs: Vec<String> = std::mem::take(&mut dirty).into_iter().collect();
                send_updates(app, links, name, &runs);
                due = None;
            }
            _ = client.closed() => break,
        }
    }
}

fn watched_run(links: &Links, name: &str, run: &str) -> bool {
    let key = lock(&links.runs)
        .get(name)
        .and_then(|runs| runs.get(run))
        .map(|l| l.key.clone());
    key.is_some_and(|k| links.watched(name, &k))
}

/// Feeds a run's event to its [`Live`] (made when the run is new to us);
/// `(run, ended)` when it was a run's event.
fn on_run_event(links: &Links, name: &str, event: &str, payload: &Value) -> Option<(String, bool)> {
    let (run, key) = chat::run_of(event, payload)?;
    let mut all = lock(&links.runs);
    let runs = all.entry(name.to_string()).or_default();
    let live = runs
        .entry(run.clone())
        .or_insert_with(|| Live::new(&key, None));
    let mut ended = false;
    match event {
        "chat" => ended = live.on_chat(payload),
        "agent" => live.on_agent(payload),
        "session.tool" => live.on_session_tool(payload),
        "session.message" if payload["message"]["role"] == "user" => {
            let text = &payload["message"]["content"];
            live.on_user(text.as_str().unwrap_or_default().to_string());
        }
        _ => {}
    }
    Some((run, ended))
}

/// Sends the page the state of `runs` of the session it shows.
fn send_updates(app: &AppHandle<Wry>, links: &Links, name: &str, runs: &[String]) {
    let updates: Vec<Update> = {
        let all = lock(&links.runs);
        let Some(have) = all.get(name) else {
            return;
        };
        runs.iter()
            .filter_map(|run| Some((run, have.get(run)?)))
            .filter(|(_, live)| links.watched(name, &live.key))
            .map(|(run, live)| update(name, run, live))
            .collect()
    };
    for u in updates {
        // No window: nobody to tell.
        let _ = app.emit_to(window::MAIN, chat::CHAT_EVENT, &u);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_read_from_the_reload_report() {
        let cases = [
            (
                json!({"reload": {"lastError": "invalid config"}}),
                Some("invalid config"),
            ),
            (json!({"reload": {"lastError": null}}), None),
            (json!({"ok": true}), None),
        ];
        for (health, expected) in cases {
            assert_eq!(last_error(&health).as_deref(), expected, "{health}");
        }
    }

    #[test]
    fn the_assistant_is_read_from_health() {
        let health = json!({"assistant": {
            "model": "local/m1", "activeRuns": 1,
            "today": {"tokens": 1234, "usd": 0.0123, "dailyUsd": 2.0, "resetsAtMs": 99}
        }});
        assert_eq!(
            assistant_of(&health),
            Some(Assistant {
                model: Some("local/m1".into()),
                problem: None,
                active_runs: 1,
                spend: Some(Spend {
                    tokens: 1234,
                    usd: 12_300,
                    cap: Some(2_000_000),
                    resets_at_ms: 99
                }),
            })
        );
        let no_cap = json!({"assistant": {"model": null, "today": {"tokens": 0, "usd": 0, "dailyUsd": null, "resetsAtMs": 5}}});
        assert_eq!(
            assistant_of(&no_cap).and_then(|a| a.spend).map(|s| s.cap),
            Some(None)
        );
        let broken = json!({"assistant": {"problem": "no model", "today": {"error": "store", "dailyUsd": 1}}});
        let a = assistant_of(&broken).expect("an assistant");
        assert_eq!((a.problem.as_deref(), a.spend), (Some("no model"), None));
        assert_eq!(assistant_of(&json!({"ok": true})), None);
        assert_eq!(assistant_of(&json!({"assistant": null})), None);
    }

    #[test]
    fn approvals_are_read_from_their_events() {
        let event = json!({"id": "a1", "request": {"command": "rm -rf x", "cwd": "/w", "sessionKey": "agent:main:main", "warningText": "ask"}, "expiresAtMs": 7});
        let a = Approval::parse(&event).expect("an approval");
        assert_eq!(
            (a.id.as_str(), a.command.as_str(), a.expires_at_ms),
            ("a1", "rm -rf x", 7)
        );
        assert_eq!(Approval::parse(&json!({"id": "a1"})), None);
    }

    #[test]
    fn keys_are_canonical_like_the_gateway_makes_them() {
        assert_eq!(canonical_key("main"), "agent:main:main");
        assert_eq!(
            canonical_key("agent:main:dashboard:x"),
            "agent:main:dashboard:x"
        );
    }
}
