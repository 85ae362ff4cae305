//! Who is connected, and which frames reach whom.
//!
//! Each authenticated connection registers here with what it may receive:
//! operator read (chat and agent events), the `tool-events` cap (tool
//! streams of the runs it asked for), a `sessions.subscribe`
//! (`sessions.changed`, `session.message`, `session.tool`) and per-key
//! message subscriptions. Runs and methods hand their frames to the hub;
//! the connection's own task writes them in order with its frame `seq`.
//! The hub lives as long as the gateway's config loop, across rebinds.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde_json::Value;
use tokio::sync::mpsc;

use crate::protocol::ErrorShape;

/// A frame for one connection that is not the answer to the request it is
/// handling now.
#[derive(Debug, Clone)]
pub(crate) enum Outbound {
    Event {
        name: &'static str,
        payload: Value,
    },
    /// A later answer to an earlier request (`agent`'s final result).
    Res {
        id: Value,
        result: Result<Value, ErrorShape>,
    },
}

/// What a connection is registered with.
struct Conn {
    tx: mpsc::UnboundedSender<Outbound>,
    /// Holds `operator.read` (or a scope that implies it).
    read: bool,
    /// Advertised the `tool-events` cap.
    tool_events: bool,
    /// Holds `operator.approvals` (or admin): gets approval requests.
    approvals: bool,
    /// Called `sessions.subscribe`.
    sessions: bool,
    /// Keys of `sessions.messages.subscribe`.
    message_keys: HashSet<String>,
    /// Runs it started (or joined as a caller of the same session), whose
    /// tool stream it gets.
    runs: HashSet<String>,
}

/// The registry of connections of one gateway.
#[derive(Default)]
pub(crate) struct Hub {
    conns: RwLock<HashMap<u64, Conn>>,
    next: AtomicU64,
}

/// A connection's place in the hub; dropping it unregisters.
pub(crate) struct Registration {
    hub: Arc<Hub>,
    pub id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.hub.write().remove(&self.id);
    }
}

impl Hub {
    fn read(&self) -> RwLockReadGuard<'_, HashMap<u64, Conn>> {
        self.conns.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<u64, Conn>> {
        self.conns.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a connection; its frames arrive on the returned receiver.
    pub fn register(
        self: &Arc<Self>,
        read: bool,
        tool_events: bool,
    ) -> (Registration, mpsc::UnboundedReceiver<Outbound>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.write().insert(
            id,
            Conn {
                tx,
                read,
                tool_events,
                approvals: false,
                sessions: false,
                message_keys: HashSet::new(),
                runs: HashSet::new(),
            },
        );
        (
            Registration {
                hub: self.clone(),
                id,
            },
            rx,
        )
    }

    /// `conn` may answer approvals, so it is told of them.
    pub fn allow_approvals(&self, conn: u64) {
        if let Some(c) = self.write().get_mut(&conn) {
            c.approvals = true;
        }
    }

    /// Approval requests and their outcome: the connections that may answer.
    pub fn to_approvers(&self, name: &'static str, payload: &Value) {
        for c in self.read().values().filter(|c| c.approvals) {
            let _ = c.tx.send(Outbound::Event {
                name,
                payload: payload.clone(),
            });
        }
    }

    pub fn subscribe_sessions(&self, conn: u64) {
        if let Some(c) = self.write().get_mut(&conn) {
            c.sessions = true;
        }
    }

    pub fn subscribe_messages(&self, conn: u64, key: &str, on: bool) {
        if let Some(c) = self.write().get_mut(&conn) {
            if on {
                c.message_keys.insert(key.to_string());
            } else {
                c.message_keys.remove(key);
            }
        }
    }

    /// `conn` gets the tool stream of `run_id`.
    pub fn join_run(&self, conn: u64, run_id: &str) {
        if let Some(c) = self.write().get_mut(&conn) {
            c.runs.insert(run_id.to_string());
        }
    }

    /// Forgets a finished run.
    pub fn end_run(&self, run_id: &str) {
        for c in self.write().values_mut() {
            c.runs.remove(run_id);
        }
    }

    /// A later `res` to request `id` of `conn`.
    pub fn reply(&self, conn: u64, id: Value, result: Result<Value, ErrorShape>) {
        if let Some(c) = self.read().get(&conn) {
            let _ = c.tx.send(Outbound::Res { id, result });
        }
    }

    /// `chat` and non-tool `agent` events: every operator connection.
    pub fn to_readers(&self, name: &'static str, payload: &Value) {
        for c in self.read().values().filter(|c| c.read) {
            let _ = c.tx.send(Outbound::Event {
                name,
                payload: payload.clone(),
            });
        }
    }

    /// `sessions.changed`: the `sessions.subscribe` subscribers.
    pub fn to_session_subscribers(&self, name: &'static str, payload: &Value) {
        for c in self.read().values().filter(|c| c.read && c.sessions) {
            let _ = c.tx.send(Outbound::Event {
                name,
                payload: payload.clone(),
            });
        }
    }

    /// `session.message`: the subscribers of every session and those of
    /// this key.
    pub fn to_message_subscribers(&self, key: &str, payload: &Value) {
        for c in self
            .read()
            .values()
            .filter(|c| c.read && (c.sessions || c.message_keys.contains(key)))
        {
            let _ = c.tx.send(Outbound::Event {
                name: "session.message",
                payload: payload.clone(),
            });
        }
    }

    /// A tool event of `run_id`: as `agent` to the connections registered
    /// for the run that have the `tool-events` cap, as `session.tool` to the
    /// other session subscribers.
    pub fn tool_event(&self, run_id: &str, agent_payload: &Value, session_payload: &Value) {
        for c in self.read().values().filter(|c| c.read) {
            let (name, payload) = if c.tool_events && c.runs.contains(run_id) {
                ("agent", agent_payload)
            } else if c.sessions {
                ("session.tool", session_payload)
            } else {
                continue;
            };
            let _ = c.tx.send(Outbound::Event {
                name,
                payload: payload.clone(),
            });
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.read().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names(rx: &mut mpsc::UnboundedReceiver<Outbound>) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(o) = rx.try_recv() {
            out.push(match o {
                Outbound::Event { name, .. } => name.to_string(),
                Outbound::Res { id, .. } => format!("res {id}"),
            });
        }
        out
    }

    #[test]
    fn frames_reach_only_who_may_and_asked_to_see_them() {
        let hub = Arc::new(Hub::default());
        let (tui, mut tui_rx) = hub.register(true, true);
        let (watcher, mut watcher_rx) = hub.register(true, false);
        let (_probe, mut probe_rx) = hub.register(false, true);
        hub.subscribe_sessions(watcher.id);
        hub.join_run(tui.id, "R1");

        hub.to_readers("chat", &json!({}));
        hub.tool_event("R1", &json!({"stream": "tool"}), &json!({}));
        hub.to_session_subscribers("sessions.changed", &json!({}));
        hub.to_message_subscribers("agent:main:main", &json!({}));
        hub.reply(tui.id, json!("a1"), Ok(json!({})));

        assert_eq!(names(&mut tui_rx), ["chat", "agent", "res \"a1\""]);
        assert_eq!(
            names(&mut watcher_rx),
            [
                "chat",
                "session.tool",
                "sessions.changed",
                "session.message"
            ]
        );
        assert!(names(&mut probe_rx).is_empty(), "no read scope, no events");

        hub.end_run("R1");
        hub.tool_event("R1", &json!({}), &json!({}));
        assert!(
            names(&mut tui_rx).is_empty(),
            "a finished run's tools reach nobody"
        );
        drop(watcher);
        assert_eq!(hub.len(), 2);
    }
}
