//! Follows the `health` of every running gateway over the gateway
//! protocol, so the app knows when one refused an edit of its config and
//! serves its last good one (`health.reload.lastError`).
//!
//! One task per running gateway keeps a single authenticated connection
//! open and listens to the `health` events the gateway pushes on every
//! change: no polling, and the refusal shows the moment it happens. The
//! connection comes from the app's Rust side, never from the web view;
//! the credentials are read once per connection. A task ends when its
//! gateway no longer runs ([`follow`] is told the running set after every
//! gathering) and reconnects when its gateway restarts on another port.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use omniclaw_gateway::client::{Client, ConnectOptions};
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;

use crate::desktop::Desktop;

/// Pause before connecting again after a gateway closed or refused us.
const RETRY: Duration = Duration::from_secs(1);

/// Starts a follower for each gateway in `running` that has none and ends
/// those whose gateway stopped (forgetting their refusal).
pub fn follow(desktop: &Arc<Desktop>, running: &BTreeSet<String>) {
    let mut followers = desktop.followers.lock().unwrap_or_else(|p| p.into_inner());
    let gone: Vec<String> = followers
        .keys()
        .filter(|name| !running.contains(*name))
        .cloned()
        .collect();
    for name in gone {
        if let Some(task) = followers.remove(&name) {
            task.abort();
        }
        desktop.set_refused(&name, None);
    }
    for name in running {
        if !followers.contains_key(name) {
            let task = tauri::async_runtime::spawn(follow_one(Arc::clone(desktop), name.clone()));
            followers.insert(name.clone(), task);
        }
    }
}

/// `reload.lastError` of a `health` payload.
fn last_error(health: &Value) -> Option<String> {
    health
        .pointer("/reload/lastError")
        .and_then(Value::as_str)
        .map(str::to_string)
}

async fn follow_one(desktop: Arc<Desktop>, name: String) {
    loop {
        let me = Arc::clone(&desktop);
        let who = name.clone();
        let endpoint =
            tauri::async_runtime::spawn_blocking(move || crate::desktop::endpoint(&me, &who)).await;
        if let Ok(Ok((url, auth))) = endpoint {
            let mut opts = ConnectOptions::new(auth, &["operator.read"]);
            opts.timeout = Duration::from_secs(5);
            if let Ok(client) = Client::connect_with(&url, opts).await {
                let mut events = client.events();
                if let Ok(health) = client.call("health", json!({})).await {
                    desktop.set_refused(&name, last_error(&health));
                }
                loop {
                    tokio::select! {
                        event = events.recv() => match event {
                            Ok(frame) if frame["event"] == "health" => {
                                desktop.set_refused(&name, last_error(&frame["payload"]));
                            }
                            Ok(_) | Err(RecvError::Lagged(_)) => {}
                            Err(RecvError::Closed) => break,
                        },
                        _ = client.closed() => break,
                    }
                }
            }
        }
        tokio::time::sleep(RETRY).await;
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
}
