//! The chat shape OpenAI's API and Ollama's native one share: a `system`
//! message, then `user`, `assistant` (with `tool_calls`) and `tool`
//! messages, and tools as `{type: "function", function}`. They differ only
//! in how a call and a result are written, which each adapter passes in.

use serde_json::{json, Value};

use super::{CompletionRequest, ToolSpec};
use crate::message::{AssistantBlock, Message, ToolCall, ToolResultMessage};

/// How one API writes what differs.
pub(crate) struct Shape {
    pub call: fn(&ToolCall) -> Value,
    pub result: fn(&ToolResultMessage) -> Value,
    /// The `content` of an assistant turn that only calls tools.
    pub no_text: Value,
}

/// The messages of `request` in this shape; assistant turns that said
/// nothing are left out.
pub(crate) fn messages(request: &CompletionRequest, shape: &Shape) -> Vec<Value> {
    let mut out = Vec::new();
    if !request.system.is_empty() {
        out.push(json!({"role": "system", "content": request.system}));
    }
    for m in &request.messages {
        match m {
            Message::User(u) => out.push(json!({"role": "user", "content": u.content})),
            Message::Assistant(a) => {
                let text = a.text();
                let calls: Vec<Value> = a
                    .content
                    .iter()
                    .filter_map(|b| match b {
                        AssistantBlock::ToolCall(c) => Some((shape.call)(c)),
                        AssistantBlock::Text { .. } => None,
                    })
                    .collect();
                if text.is_empty() && calls.is_empty() {
                    continue;
                }
                let content = if text.is_empty() {
                    shape.no_text.clone()
                } else {
                    json!(text)
                };
                let mut msg = json!({"role": "assistant", "content": content});
                if !calls.is_empty() {
                    msg["tool_calls"] = json!(calls);
                }
                out.push(msg);
            }
            Message::ToolResult(r) => out.push((shape.result)(r)),
        }
    }
    out
}

/// Tools as `[{type: "function", function: {name, description, parameters}}]`.
pub(crate) fn function_tools(tools: &[ToolSpec]) -> Value {
    json!(tools
        .iter()
        .map(|t| json!({
            "type": "function",
            "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
        }))
        .collect::<Vec<_>>())
}

/// `authorization: Bearer <key>` when there is a key.
pub(crate) fn bearer(key: Option<&str>) -> Vec<(&'static str, String)> {
    key.map(|k| ("authorization", format!("Bearer {k}")))
        .into_iter()
        .collect()
}
