//! The dashboard's chat with a gateway's assistant: the view it shows and
//! the commands behind it.
//!
//! The page never talks to a gateway: every request goes through this
//! app's connection to the gateway ([`crate::link`], authenticated with the
//! token from the secret store), for embedded gateways and for those a
//! service or a terminal runs alike. What the page gets is data made here:
//! a transcript as [`Entry`]s, model text rendered by [`markdown`] into a
//! tree of known tags, tool calls with their arguments and results as
//! plain text, folded by the page. A run being written streams as
//! [`Update`]s ([`CHAT_EVENT`]), paced, for the one session the page shows.
//! Approvals are answered here too (`exec.approval.resolve`), and links
//! open in the system browser, never in the web view.

use std::collections::HashSet;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{json, Value};
use tauri::{AppHandle, State, Wry};

use crate::desktop::Desktop;
use crate::markdown::{self, Node};

/// Event carrying an [`Update`] of the run being written.
pub const CHAT_EVENT: &str = "omniclaw://chat";

/// The longest tool result shown; the rest is cut with a note.
const RESULT_CHARS: usize = 20_000;
/// Messages of a session shown when it opens.
const HISTORY_LIMIT: u64 = 200;

/// One thing in a conversation, as the page shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(
    tag = "kind",
    rename_all = "lowercase",
    rename_all_fields = "camelCase"
)]
pub enum Entry {
    /// What the user wrote (plain text).
    User { text: String },
    /// Model text, rendered from Markdown.
    Assistant { body: Vec<Node> },
    /// A tool call: its arguments as JSON text, its result once there.
    Tool {
        call_id: String,
        name: String,
        args: String,
        result: Option<String>,
        is_error: bool,
        running: bool,
    },
    /// How a run ended when it did not end well.
    Note { text: String, error: bool },
}

/// The run being written in a session, as far as it got.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Update {
    pub gateway: String,
    pub session_key: String,
    pub run_id: String,
    /// `running`, `final`, `error` or `aborted`.
    pub state: &'static str,
    pub entries: Vec<Entry>,
}

/// `text` cut to [`RESULT_CHARS`] characters with a note of what was left out.
fn clip(text: &str) -> String {
    let count = text.chars().count();
    if count <= RESULT_CHARS {
        return text.to_string();
    }
    let kept: String = text.chars().take(RESULT_CHARS).collect();
    format!("{kept}\n… ({} more characters)", count - RESULT_CHARS)
}

/// The text of a message's `content`: a string, or its text blocks.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter(|b| b["type"] == "text")
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn args_text(args: &Value) -> String {
    match args {
        Value::Null => String::new(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    }
}

/// The run id of a user message sent with `chat.send` (its
/// `idempotencyKey` is `<runId>:user`).
fn user_run(message: &Value) -> Option<&str> {
    message["idempotencyKey"].as_str()?.strip_suffix(":user")
}

/// A stored transcript as entries, up to the user message of the first run
/// in `live` (that run is shown from its live state instead).
pub fn from_history(messages: &[Value], live: &HashSet<String>) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    for m in messages {
        match m["role"].as_str() {
            Some("user") => {
                if user_run(m).is_some_and(|run| live.contains(run)) {
                    break;
                }
                out.push(Entry::User {
                    text: content_text(&m["content"]),
                });
            }
            Some("assistant") => {
                let mut text = String::new();
                let flush = |text: &mut String, out: &mut Vec<Entry>| {
                    if !text.trim().is_empty() {
                        out.push(Entry::Assistant {
                            body: markdown::render(text),
                        });
                    }
                    text.clear();
                };
                for block in m["content"].as_array().into_iter().flatten() {
                    match block["type"].as_str() {
                        Some("text") => {
                            if !text.is_empty() {
                                text.push_str("\n\n");
                            }
                            text.push_str(block["text"].as_str().unwrap_or_default());
                        }
                        Some("toolCall") => {
                            flush(&mut text, &mut out);
                            out.push(Entry::Tool {
                                call_id: block["id"].as_str().unwrap_or_default().to_string(),
                                name: block["name"].as_str().unwrap_or_default().to_string(),
                                args: args_text(&block["arguments"]),
                                result: None,
                                is_error: false,
                                running: false,
                            });
                        }
                        _ => {}
                    }
                }
                flush(&mut text, &mut out);
                match m["stopReason"].as_str() {
                    Some("error") => out.push(Entry::Note {
                        text: m["errorMessage"]
                            .as_str()
                            .unwrap_or("the reply failed")
                            .to_string(),
                        error: true,
                    }),
                    Some("aborted") => out.push(Entry::Note {
                        text: "Stopped.".into(),
                        error: false,
                    }),
                    _ => {}
                }
            }
            Some("toolResult") => {
                let id = m["toolCallId"].as_str().unwrap_or_default();
                let found = out.iter_mut().rev().find_map(|e| match e {
                    Entry::Tool {
                        call_id,
                        result,
                        is_error,
                        ..
                    } if call_id == id && result.is_none() => Some((result, is_error)),
                    _ => None,
                });
                if let Some((result, is_error)) = found {
                    *result = Some(clip(&content_text(&m["content"])));
                    *is_error = m["isError"] == true;
                }
            }
            _ => {}
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq)]
struct ToolState {
    call_id: String,
    name: String,
    args: Value,
    result: Option<String>,
    is_error: bool,
    done: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Item {
    Text {
        id: String,
        text: String,
    },
    /// An index into [`Live::tools`].
    Tool(usize),
}

/// A run as its events tell it: text items and tool calls in order, and
/// how it ended. Fed with the gateway's `agent`, `session.tool`,
/// `session.message` and `chat` events of the run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Live {
    pub key: String,
    user: Option<String>,
    items: Vec<Item>,
    tools: Vec<ToolState>,
    /// The cumulative text of `chat` deltas, for a run whose `agent`
    /// text events were not seen.
    chat_text: String,
    /// `final`, `error` or `aborted`, with the error's words.
    end: Option<(&'static str, Option<String>)>,
}

impl Live {
    pub fn new(key: &str, user: Option<String>) -> Live {
        Live {
            key: key.to_string(),
            user,
            ..Live::default()
        }
    }

    /// Whether the run ended.
    pub fn ended(&self) -> bool {
        self.end.is_some()
    }

    fn tool(&mut self, call_id: &str) -> &mut ToolState {
        let at = match self.tools.iter().position(|t| t.call_id == call_id) {
            Some(at) => at,
            None => {
                self.tools.push(ToolState {
                    call_id: call_id.to_string(),
                    name: String::new(),
                    args: Value::Null,
                    result: None,
                    is_error: false,
                    done: false,
                });
                self.items.push(Item::Tool(self.tools.len() - 1));
                self.tools.len() - 1
            }
        };
        &mut self.tools[at]
    }

    /// The user's message of this run (`session.message`, or what the
    /// app sent).
    pub fn on_user(&mut self, text: String) {
        self.user.get_or_insert(text);
    }

    /// A tool stream's `data` (`agent` stream `tool`, or `session.tool`).
    fn on_tool_data(&mut self, data: &Value) {
        let Some(call_id) = data["toolCallId"].as_str() else {
            return;
        };
        let tool = self.tool(call_id);
        if let Some(name) = data["name"].as_str() {
            tool.name = name.to_string();
        }
        match data["phase"].as_str() {
            Some("start") => tool.args = data["args"].clone(),
            Some("result") => {
                tool.result = Some(clip(&content_text(&data["result"]["content"])));
                tool.is_error = data["isError"] == true;
                tool.done = true;
            }
            _ => {}
        }
    }

    /// An `agent` event of this run.
    pub fn on_agent(&mut self, payload: &Value) {
        let data = &payload["data"];
        match payload["stream"].as_str() {
            Some("assistant") => {
                let id = data["itemId"].as_str().unwrap_or_default();
                let text = data["text"].as_str().unwrap_or_default().to_string();
                let found = self.items.iter_mut().find_map(|i| match i {
                    Item::Text { id: have, text } if have == id => Some(text),
                    _ => None,
                });
                match found {
                    Some(have) => *have = text,
                    None => self.items.push(Item::Text {
                        id: id.to_string(),
                        text,
                    }),
                }
            }
            Some("item") if data["kind"] == "tool" => {
                let Some(call_id) = data["toolCallId"].as_str() else {
                    return;
                };
                let tool = self.tool(call_id);
                if let Some(name) = data["name"].as_str() {
                    tool.name = name.to_string();
                }
                if data["phase"] == "end" {
                    tool.done = true;
                    tool.is_error = data["status"] == "failed";
                }
            }
            Some("tool") => self.on_tool_data(data),
            _ => {}
        }
    }

    /// A `session.tool` event of this run.
    pub fn on_session_tool(&mut self, payload: &Value) {
        self.on_tool_data(&payload["data"]);
    }

    /// A `chat` event of this run; `true` when it is the terminal one.
    pub fn on_chat(&mut self, payload: &Value) -> bool {
        let state = payload["state"].as_str().unwrap_or_default();
        let text = content_text(&payload["message"]["content"]);
        if !text.is_empty() {
            self.chat_text = text;
        }
        let end = match state {
            "final" => "final",
            "error" => "error",
            "aborted" => "aborted",
            _ => return false,
        };
        let why = payload["errorMessage"].as_str().map(str::to_string);
        self.end = Some((end, why));
        true
    }

    /// `running`, or how it ended.
    pub fn state(&self) -> &'static str {
        self.end.as_ref().map_or("running", |(s, _)| s)
    }

    /// The run as entries.
    pub fn entries(&self) -> Vec<Entry> {
        let mut out = Vec::new();
        if let Some(text) = &self.user {
            out.push(Entry::User { text: text.clone() });
        }
        let mut any_text = false;
        for item in &self.items {
            match item {
                Item::Text { text, .. } => {
                    if !text.trim().is_empty() {
                        any_text = true;
                        out.push(Entry::Assistant {
                            body: markdown::render(text),
                        });
                    }
                }
                Item::Tool(at) => {
                    let Some(t) = self.tools.get(*at) else {
                        continue;
                    };
                    out.push(Entry::Tool {
                        call_id: t.call_id.clone(),
                        name: t.name.clone(),
                        args: args_text(&t.args),
                        result: t.result.clone(),
                        is_error: t.is_error,
                        running: !t.done && self.end.is_none(),
                    });
                }
            }
        }
        if !any_text && !self.chat_text.trim().is_empty() {
            out.push(Entry::Assistant {
                body: markdown::render(&self.chat_text),
            });
        }
        match &self.end {
            Some(("error", why)) => out.push(Entry::Note {
                text: why.clone().unwrap_or_else(|| "the reply failed".into()),
                error: true,
            }),
            Some(("aborted", why)) => out.push(Entry::Note {
                text: match why {
                    Some(why) => format!("Stopped: {why}"),
                    None => "Stopped.".into(),
                },
                error: false,
            }),
            _ => {}
        }
        out
    }
}

/// The run and session an event belongs to: `(runId, sessionKey)`.
pub fn run_of(event: &str, payload: &Value) -> Option<(String, String)> {
    let run = payload["runId"].as_str()?;
    let key = payload["sessionKey"].as_str()?;
    matches!(event, "chat" | "agent" | "session.tool" | "session.message")
        .then(|| (run.to_string(), key.to_string()))
}

// ---- commands ------------------------------------------------------------

type Shared<'a> = State<'a, Arc<Desktop>>;

/// A session in the page's list.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    pub key: String,
    pub title: String,
    pub messages: u64,
    pub updated_at: Option<u64>,
    pub running: bool,
}

/// What the page shows for a session it opens.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Opened {
    pub gateway: String,
    pub session_key: String,
    pub sessions: Vec<SessionView>,
    pub entries: Vec<Entry>,
    /// Runs of this session being written now.
    pub live: Vec<Update>,
    pub model: Option<String>,
}

/// Characters of a session's last message shown beside its name.
const PREVIEW_CHARS: usize = 48;

/// `main — Two files were found…`: the session's label (else its key
/// without the `agent:<id>:` prefix), then its last message as plain
/// text, its Markdown marks dropped.
fn session_title(key: &str, label: Option<&str>, preview: Option<&str>) -> String {
    let name = label.map(str::to_string).unwrap_or_else(|| {
        match key
            .strip_prefix("agent:")
            .and_then(|rest| rest.split_once(':'))
        {
            Some((_, rest)) => rest.to_string(),
            None => key.to_string(),
        }
    });
    let plain = preview.map(markdown::plain_text).unwrap_or_default();
    // Whole words up to the limit (a single longer word is cut).
    let mut cut = String::new();
    let mut more = "";
    for word in plain.split_whitespace() {
        if !cut.is_empty() && cut.chars().count() + 1 + word.chars().count() > PREVIEW_CHARS {
            more = "…";
            break;
        }
        if !cut.is_empty() {
            cut.push(' ');
        }
        cut.push_str(word);
    }
    if cut.chars().count() > PREVIEW_CHARS {
        cut = cut.chars().take(PREVIEW_CHARS).collect();
        more = "…";
    }
    if cut.is_empty() {
        return name;
    }
    format!("{name} — {cut}{more}")
}

fn session_view(row: &Value) -> Option<SessionView> {
    let key = row["key"].as_str()?.to_string();
    Some(SessionView {
        title: session_title(
            &key,
            row["label"].as_str(),
            row["lastMessagePreview"].as_str(),
        ),
        messages: row["messageCount"].as_u64().unwrap_or(0),
        updated_at: row["updatedAt"].as_u64(),
        running: row["hasActiveRun"] == true,
        key,
    })
}

/// Opens session `key` (the main one when absent) of gateway `name`: its
/// history, the session list, and from now on its live updates.
#[tauri::command]
pub async fn chat_open(
    desktop: Shared<'_>,
    name: String,
    key: Option<String>,
) -> Result<Opened, String> {
    let client = desktop.links.client(&name)?;
    let key = key.unwrap_or_else(|| "main".into());
    let history = client
        .call(
            "chat.history",
            json!({"sessionKey": key, "limit": HISTORY_LIMIT}),
        )
        .await
        .map_err(|e| format!("{name}: {e}"))?;
    let key = history["sessionKey"].as_str().unwrap_or(&key).to_string();
    desktop.links.watch(Some((name.clone(), key.clone())));
    let list = client
        .call("sessions.list", json!({"limit": 50}))
        .await
        .map_err(|e| format!("{name}: {e}"))?;
    let mut sessions: Vec<SessionView> = list["sessions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(session_view)
        .collect();
    if !sessions.iter().any(|s| s.key == key) {
        sessions.insert(
            0,
            SessionView {
                key: key.clone(),
                title: key.clone(),
                messages: 0,
                updated_at: None,
                running: false,
            },
        );
    }
    let live = desktop.links.live_updates(&name, &key);
    let live_ids: HashSet<String> = live.iter().map(|u| u.run_id.clone()).collect();
    let messages = history["messages"].as_array().cloned().unwrap_or_default();
    Ok(Opened {
        entries: from_history(&messages, &live_ids),
        model: history["defaults"]["model"].as_str().map(|m| {
            match history["defaults"]["modelProvider"].as_str() {
                Some(p) => format!("{p}/{m}"),
                None => m.to_string(),
            }
        }),
        gateway: name,
        session_key: key,
        sessions,
        live,
    })
}

/// The page left the chat: no more live updates.
#[tauri::command]
pub fn chat_close(desktop: Shared<'_>) {
    desktop.links.watch(None);
}

/// Sends `text` to session `key` of gateway `name`; the run's id.
#[tauri::command]
pub async fn chat_send(
    desktop: Shared<'_>,
    name: String,
    key: String,
    text: String,
) -> Result<String, String> {
    if text.trim().is_empty() {
        return Err("Write a message first.".into());
    }
    let client = desktop.links.client(&name)?;
    let run = uuid::Uuid::new_v4().to_string();
    // Shown at once; the gateway's events fill in the rest.
    desktop.links.begin_run(&name, &run, &key, &text);
    let sent = client
        .call(
            "chat.send",
            json!({"sessionKey": key, "message": text, "idempotencyKey": run}),
        )
        .await;
    match sent {
        Ok(_) => Ok(run),
        Err(e) => {
            desktop.links.drop_run(&name, &run);
            Err(format!("{name} did not take the message: {e}"))
        }
    }
}

/// Stops the run going on in session `key` of gateway `name`.
#[tauri::command]
pub async fn chat_abort(desktop: Shared<'_>, name: String, key: String) -> Result<bool, String> {
    let client = desktop.links.client(&name)?;
    let answer = client
        .call("chat.abort", json!({"sessionKey": key}))
        .await
        .map_err(|e| format!("{name}: {e}"))?;
    Ok(answer["aborted"] == true)
}

/// Starts a new session on gateway `name`; its key.
#[tauri::command]
pub async fn chat_new_session(desktop: Shared<'_>, name: String) -> Result<String, String> {
    let client = desktop.links.client(&name)?;
    let created = client
        .call("sessions.create", json!({}))
        .await
        .map_err(|e| format!("{name}: {e}"))?;
    created["key"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("{name} made a session without a key"))
}

/// The gateway the tray's "Chat…" asked for, once.
#[tauri::command]
pub fn chat_target(desktop: Shared<'_>) -> Option<String> {
    desktop.links.take_target()
}

/// Answers approval `id` of gateway `name`: `allow-once`, `allow-always`
/// or `deny`. The first answer wins; a late one is refused with the reason.
#[tauri::command]
pub async fn resolve_approval(
    desktop: Shared<'_>,
    name: String,
    id: String,
    decision: String,
) -> Result<(), String> {
    if !matches!(decision.as_str(), "allow-once" | "allow-always" | "deny") {
        return Err(format!(
            "{decision:?} is not an answer: allow-once, allow-always or deny"
        ));
    }
    let client = desktop.links.client(&name)?;
    client
        .call(
            "exec.approval.resolve",
            json!({"id": id, "decision": decision}),
        )
        .await
        .map_err(|e| format!("{name}: {e}"))?;
    desktop.links.resolved(&name, &id);
    desktop.changed.notify_one();
    Ok(())
}

/// Opens a link of a reply in the system browser (never in the web view):
/// only `http`, `https` and `mailto` URLs.
#[tauri::command]
pub async fn open_link(_app: AppHandle<Wry>, url: String) -> Result<(), String> {
    let url = markdown::safe_link(&url)
        .ok_or_else(|| format!("{url:?} is not a web or mail link; it is not opened"))?;
    crate::tray::open_with_system(url).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_of(entry: &Entry) -> String {
        serde_json::to_string(entry).expect("serialisable")
    }

    #[test]
    fn a_transcript_folds_tool_results_into_their_calls() {
        let messages = vec![
            json!({"role": "user", "content": "list files", "idempotencyKey": "R1:user"}),
            json!({"role": "assistant", "content": [
                {"type": "text", "text": "Let me **look**."},
                {"type": "toolCall", "id": "c1", "name": "ls", "arguments": {"path": "."}}
            ], "stopReason": "toolUse"}),
            json!({"role": "toolResult", "toolCallId": "c1", "toolName": "ls", "content": [{"type": "text", "text": "a.txt\n<b>.txt"}], "isError": false}),
            json!({"role": "assistant", "content": [{"type": "text", "text": "Two files."}], "stopReason": "stop"}),
            json!({"role": "user", "content": "again", "idempotencyKey": "R2:user"}),
            json!({"role": "assistant", "content": [], "stopReason": "error", "errorMessage": "the daily budget is spent"}),
        ];
        let entries = from_history(&messages, &HashSet::new());
        assert_eq!(entries.len(), 6, "{entries:#?}");
        assert_eq!(
            entries[0],
            Entry::User {
                text: "list files".into()
            }
        );
        assert_eq!(
            entries[2],
            Entry::Tool {
                call_id: "c1".into(),
                name: "ls".into(),
                args: "{\n  \"path\": \".\"\n}".into(),
                result: Some("a.txt\n<b>.txt".into()),
                is_error: false,
                running: false,
            }
        );
        assert!(text_of(&entries[3]).contains("Two files."));
        assert_eq!(
            entries[5],
            Entry::Note {
                text: "the daily budget is spent".into(),
                error: true
            }
        );
        // A run still being written is left to its live state.
        let live: HashSet<String> = ["R2".to_string()].into();
        assert_eq!(from_history(&messages, &live).len(), 4);
    }

    #[test]
    fn a_live_run_follows_its_events() {
        let mut live = Live::new("agent:main:main", Some("hi".into()));
        let agent = |stream: &str, data: Value| json!({"runId": "R", "sessionKey": "agent:main:main", "stream": stream, "data": data});
        live.on_agent(&agent(
            "assistant",
            json!({"itemId": "s:0", "text": "Hel", "delta": "Hel"}),
        ));
        live.on_agent(&agent(
            "assistant",
            json!({"itemId": "s:0", "text": "Hello <script>x()</script>", "delta": "lo"}),
        ));
        live.on_agent(&agent(
            "item",
            json!({"kind": "tool", "phase": "start", "toolCallId": "c1", "name": "exec"}),
        ));
        live.on_agent(&agent("tool", json!({"phase": "start", "toolCallId": "c1", "name": "exec", "args": {"command": "ls"}})));
        let running = live.entries();
        assert!(
            matches!(
                &running[2],
                Entry::Tool {
                    running: true,
                    result: None,
                    ..
                }
            ),
            "{running:#?}"
        );
        live.on_session_tool(&json!({"data": {"phase": "result", "toolCallId": "c1", "name": "exec", "isError": true, "result": {"content": [{"type": "text", "text": "denied"}]}}}));
        live.on_agent(&agent(
            "assistant",
            json!({"itemId": "s:1", "text": "Done.", "delta": "Done."}),
        ));
        assert!(!live.on_chat(
            &json!({"state": "delta", "message": {"content": [{"type": "text", "text": "x"}]}})
        ));
        assert_eq!(live.state(), "running");
        assert!(live.on_chat(&json!({"state": "error", "errorMessage": "provider down"})));
        let entries = live.entries();
        assert_eq!(entries.len(), 5, "{entries:#?}");
        assert_eq!(entries[0], Entry::User { text: "hi".into() });
        // The script is text inside the paragraph, not an element.
        assert_eq!(
            serde_json::to_value(&entries[1]).expect("json"),
            json!({"kind": "assistant", "body": [{"tag": "p", "c": ["Hello <script>x()</script>"]}]})
        );
        assert_eq!(
            entries[2],
            Entry::Tool {
                call_id: "c1".into(),
                name: "exec".into(),
                args: "{\n  \"command\": \"ls\"\n}".into(),
                result: Some("denied".into()),
                is_error: true,
                running: false,
            }
        );
        assert_eq!(
            entries[4],
            Entry::Note {
                text: "provider down".into(),
                error: true
            }
        );
        assert_eq!(live.state(), "error");
    }

    #[test]
    fn a_run_seen_only_through_chat_deltas_still_shows_its_text() {
        let mut live = Live::new("k", None);
        live.on_chat(&json!({"state": "delta", "message": {"content": [{"type": "text", "text": "partial"}]}}));
        live.on_chat(&json!({"state": "aborted"}));
        let entries = live.entries();
        assert_eq!(entries.len(), 2, "{entries:#?}");
        assert_eq!(
            entries[1],
            Entry::Note {
                text: "Stopped.".into(),
                error: false
            }
        );
    }

    #[test]
    fn long_results_are_cut_with_a_note() {
        let long = "x".repeat(RESULT_CHARS + 5);
        let cut = clip(&long);
        assert!(
            cut.ends_with("… (5 more characters)"),
            "{}",
            &cut[cut.len() - 40..]
        );
        assert_eq!(clip("short"), "short");
    }

    #[test]
    fn sessions_are_named_by_label_or_key_with_their_last_words() {
        let cases = [
            ("agent:main:main", None, None, "main"),
            (
                "agent:main:main",
                None,
                Some("From here I can:\n\n- **read** and <b>write</b>"),
                "main — From here I can: read and <b>write</b>",
            ),
            (
                "agent:main:dash:1",
                Some("Plans"),
                Some("`ls`"),
                "Plans — ls",
            ),
            (
                "odd",
                None,
                Some(&"word ".repeat(20)),
                "odd — word word word word word word word word word…",
            ),
        ];
        for (key, label, preview, expected) in cases {
            assert_eq!(session_title(key, label, preview), expected, "{key}");
        }
    }

    #[test]
    fn events_name_their_run_and_session() {
        let p = json!({"runId": "R", "sessionKey": "agent:main:main"});
        assert_eq!(
            run_of("chat", &p),
            Some(("R".into(), "agent:main:main".into()))
        );
        assert_eq!(run_of("health", &p), None);
        assert_eq!(run_of("chat", &json!({"runId": "R"})), None);
    }
}
