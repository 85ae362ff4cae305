//! Who is connected, and which frames reach whom.
//!
//! Each authenticated connection registers here with what it may receive:
//! operator read (chat and agent events), the `tool-events` cap (tool
//! streams of the runs it asked for), a `sessions.subscribe`
//! (`sessions.changed`, `session.message`, `session.tool`) and per-key
//! message subscriptions. Runs and methods hand their frames to the hub;
//! the connection's own task writes them in order with its frame `seq`.
//! The hub lives as long as the gateway's config loop, across rebinds.
//!
//! An event is encoded once and shared by every connection it goes to. A
//! connection that reads more slowly than runs write (its queue holds more
//! than its `maxBufferedBytes`) has streaming text dropped, as OpenClaw's
//! `dropIfSlow` does: `chat` deltas and `agent` assistant events carry the
//! whole text so far, so the next one (or the final) makes up for it, and
//! the connection's frame `seq` skips the dropped ones so the client sees
//! the gap. Everything else (finals, errors, tool events, answers) is
//! always queued.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde_json::value::RawValue;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::protocol::ErrorShape;

/// A frame for one connection that is not the answer to the request it is
/// handling now.
#[derive(Debug, Clone)]
pub(crate) enum Outbound {
    Event {
        name: &'static str,
        payload: Arc<RawValue>,
        /// Events dropped for this connection just before this one.
        dropped_before: u64,
    },
    /// A later answer to an earlier request (`agent`'s final result).
    Res {
        id: Value,
        result: Result<Value, ErrorShape>,
    },
}

/// What a connection's queue holds, shared by the hub (which fills it) and
/// the connection's task (which empties it).
#[derive(Default)]
struct Backlog {
    /// Payload bytes queued and not yet handed to the socket.
    bytes: AtomicUsize,
    /// Events dropped since the last one queued.
    dropped: AtomicU64,
}

/// The receiving end of a connection's frames.
pub(crate) struct Queue {
    rx: mpsc::UnboundedReceiver<Outbound>,
    backlog: Arc<Backlog>,
}

impl Queue {
    /// The next frame, and how many events were dropped before it.
    pub async fn recv(&mut self) -> Option<(Outbound, u64)> {
        let out = self.rx.recv().await?;
        Some(self.took(out))
    }

    /// A frame already queued, if there is one.
    pub fn try_recv(&mut self) -> Option<(Outbound, u64)> {
        let out = self.rx.try_recv().ok()?;
        Some(self.took(out))
    }

    fn took(&self, out: Outbound) -> (Outbound, u64) {
        let mut dropped = 0;
        if let Outbound::Event {
            payload,
            dropped_before,
            ..
        } = &out
        {
            self.backlog
                .bytes
                .fetch_sub(payload.get().len(), Ordering::Relaxed);
            dropped = *dropped_before;
        }
        (out, dropped)
    }
}

/// What a connection is registered with.
struct Conn {
    tx: mpsc::UnboundedSender<Outbound>,
    backlog: Arc<Backlog>,
    /// Queued bytes above which streaming text is dropped.
    max_backlog: usize,
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

    /// Registers a connection; its frames arrive on the returned queue.
    /// Streaming text is dropped while more than `max_backlog` bytes wait.
    pub fn register(
        self: &Arc<Self>,
        read: bool,
        tool_events: bool,
        max_backlog: usize,
    ) -> (Registration, Queue) {
        let (tx, rx) = mpsc::unbounded_channel();
        let backlog = Arc::new(Backlog::default());
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.write().insert(
            id,
            Conn {
                tx,
                backlog: backlog.clone(),
                max_backlog,
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
            Queue { rx, backlog },
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
        let payload = encode(payload);
        for c in self.read().values().filter(|c| c.approvals) {
            c.event(name, &payload, false);
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
        let droppable = streaming_text(name, payload);
        let payload = encode(payload);
        for c in self.read().values().filter(|c| c.read) {
            c.event(name, &payload, droppable);
        }
    }

    /// Whether any connection gets `sessions.changed`: a payload nobody
    /// receives (a session row read from the store) is not built.
    pub fn has_session_subscribers(&self) -> bool {
        self.read().values().any(|c| c.read && c.sessions)
    }

    /// Whether any connection gets `key`'s `session.message`.
    pub fn has_message_subscribers(&self, key: &str) -> bool {
        self.read()
            .values()
            .any(|c| c.read && (c.sessions || c.message_keys.contains(key)))
    }

    /// `sessions.changed`: the `sessions.subscribe` subscribers.
    pub fn to_session_subscribers(&self, name: &'static str, payload: &Value) {
        let payload = encode(payload);
        for c in self.read().values().filter(|c| c.read && c.sessions) {
            c.event(name, &payload, false);
        }
    }

    /// `session.message`: the subscribers of every session and those of
    /// this key.
    pub fn to_message_subscribers(&self, key: &str, payload: &Value) {
        let payload = encode(payload);
        for c in self
            .read()
            .values()
            .filter(|c| c.read && (c.sessions || c.message_keys.contains(key)))
        {
            c.event("session.message", &payload, false);
        }
    }

    /// A tool event of `run_id`: as `agent` to the connections registered
    /// for the run that have the `tool-events` cap, as `session.tool` to the
    /// other session subscribers.
    pub fn tool_event(&self, run_id: &str, agent_payload: &Value, session_payload: &Value) {
        let agent_payload = encode(agent_payload);
        let session_payload = encode(session_payload);
        for c in self.read().values().filter(|c| c.read) {
            let (name, payload) = if c.tool_events && c.runs.contains(run_id) {
                ("agent", &agent_payload)
            } else if c.sessions {
                ("session.tool", &session_payload)
            } else {
                continue;
            };
            c.event(name, payload, false);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.read().len()
    }
}

impl Conn {
    /// Queues an event, or drops it when it is streaming text and the
    /// connection is behind.
    fn event(&self, name: &'static str, payload: &Arc<RawValue>, droppable: bool) {
        let len = payload.get().len();
        if droppable && self.backlog.bytes.load(Ordering::Relaxed) + len > self.max_backlog {
            self.backlog.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.backlog.bytes.fetch_add(len, Ordering::Relaxed);
        let sent = self.tx.send(Outbound::Event {
            name,
            payload: payload.clone(),
            dropped_before: self.backlog.dropped.swap(0, Ordering::Relaxed),
        });
        if sent.is_err() {
            // The connection is closing; nothing waits for this frame.
            self.backlog.bytes.fetch_sub(len, Ordering::Relaxed);
        }
    }
}

/// Text that the next event of the same run repeats: a `chat` delta, an
/// `agent` assistant event.
fn streaming_text(name: &str, payload: &Value) -> bool {
    match name {
        "chat" => payload["state"] == "delta",
        "agent" => payload["stream"] == "assistant",
        _ => false,
    }
}

/// A payload encoded once for every connection it goes to.
fn encode(payload: &Value) -> Arc<RawValue> {
    // A `Value` always encodes (its keys are strings).
    serde_json::value::to_raw_value(payload)
        .map(Arc::from)
        .unwrap_or_else(|_| Arc::from(RawValue::NULL.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ROOMY: usize = 1 << 20;

    fn names(rx: &mut Queue) -> Vec<String> {
        let mut out = Vec::new();
        while let Some((o, _)) = rx.try_recv() {
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
        let (tui, mut tui_rx) = hub.register(true, true, ROOMY);
        let (watcher, mut watcher_rx) = hub.register(true, false, ROOMY);
        let (_probe, mut probe_rx) = hub.register(false, true, ROOMY);
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

    #[test]
    fn a_slow_reader_loses_streaming_text_only_and_sees_the_gap() {
        let hub = Arc::new(Hub::default());
        let delta = |n: usize| json!({"runId": "R1", "state": "delta", "message": "x".repeat(n)});
        let one = encode(&delta(100)).get().len();
        // Room for two deltas.
        let (_slow, mut slow) = hub.register(true, false, 2 * one);
        let (_fast, mut fast) = hub.register(true, false, ROOMY);
        for _ in 0..5 {
            hub.to_readers("chat", &delta(100));
        }
        hub.to_readers("chat", &json!({"runId": "R1", "state": "final"}));
        hub.to_readers("agent", &json!({"runId": "R1", "stream": "lifecycle"}));

        let mut got = Vec::new();
        while let Some((Outbound::Event { name, payload, .. }, gap)) = slow.try_recv() {
            let p: Value = serde_json::from_str(payload.get()).expect("json");
            got.push((name, p["state"].as_str().unwrap_or("-").to_string(), gap));
        }
        assert_eq!(
            got,
            [
                ("chat", "delta".to_string(), 0),
                ("chat", "delta".to_string(), 0),
                ("chat", "final".to_string(), 3),
                ("agent", "-".to_string(), 0),
            ],
            "three deltas dropped, the final and the rest kept, the gap told once"
        );
        assert_eq!(
            names(&mut fast).len(),
            7,
            "a reader that keeps up loses nothing"
        );

        // Once read, the queue has room again.
        hub.to_readers("chat", &delta(100));
        assert!(matches!(slow.try_recv(), Some((Outbound::Event { .. }, 0))));
    }
}
