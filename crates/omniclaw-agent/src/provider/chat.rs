//! The chat shape OpenAI's API and Ollama's native one share: a `system`
//! message, then `user`, `assistant` (with `tool_calls`) and `tool`
//! messages, and tools as `{type: "function", function}`. They differ only
//! in how a call and a result are written, which each adapter passes in.
//!
//! A turn's body holds the whole history, so it is written straight from
//! the request by `Serialize` impls that borrow it: no `Value` tree of it is
//! built, hashed into maps and dropped again on every call.

use serde::ser::{SerializeSeq, Serializer};
use serde::Serialize;
use serde_json::Value;

use super::{CompletionRequest, ToolSpec};
use crate::message::{Message, ToolCall, ToolResultMessage};

/// How one API writes what differs.
pub(crate) struct Shape {
    pub call: fn(&ToolCall) -> Value,
    pub result: fn(&ToolResultMessage) -> Value,
    /// The `content` of an assistant turn that only calls tools.
    pub no_text: Value,
}

/// The messages of `request` in `shape`; assistant turns that said nothing
/// are left out.
pub(crate) struct Messages<'a> {
    request: &'a CompletionRequest,
    shape: &'a Shape,
}

impl<'a> Messages<'a> {
    pub fn new(request: &'a CompletionRequest, shape: &'a Shape) -> Messages<'a> {
        Messages { request, shape }
    }
}

/// A `system` or `user` message.
#[derive(Serialize)]
struct Said<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Serialize)]
struct Replied<'a> {
    role: &'static str,
    content: Content<'a>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<Value>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Content<'a> {
    Text(String),
    NoText(&'a Value),
}

impl Serialize for Messages<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(None)?;
        if !self.request.system.is_empty() {
            seq.serialize_element(&Said {
                role: "system",
                content: &self.request.system,
            })?;
        }
        for m in self.request.messages.iter() {
            match m {
                Message::User(u) => seq.serialize_element(&Said {
                    role: "user",
                    content: &u.content,
                })?,
                Message::Assistant(a) => {
                    let text = a.text();
                    let tool_calls: Vec<Value> = a.tool_calls().map(self.shape.call).collect();
                    if text.is_empty() && tool_calls.is_empty() {
                        continue;
                    }
                    let content = if text.is_empty() {
                        Content::NoText(&self.shape.no_text)
                    } else {
                        Content::Text(text)
                    };
                    seq.serialize_element(&Replied {
                        role: "assistant",
                        content,
                        tool_calls,
                    })?;
                }
                Message::ToolResult(r) => seq.serialize_element(&(self.shape.result)(r))?,
            }
        }
        seq.end()
    }
}

/// Tools as `[{type: "function", function: {name, description, parameters}}]`.
pub(crate) struct FunctionTools<'a>(pub &'a [ToolSpec]);

#[derive(Serialize)]
struct FunctionTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: Function<'a>,
}

#[derive(Serialize)]
struct Function<'a> {
    name: &'a str,
    description: &'a str,
    parameters: &'a Value,
}

impl Serialize for FunctionTools<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|t| FunctionTool {
            kind: "function",
            function: Function {
                name: &t.name,
                description: &t.description,
                parameters: &t.parameters,
            },
        }))
    }
}

/// The tools of `request`, when it offers any.
pub(crate) fn function_tools(request: &CompletionRequest) -> Option<FunctionTools<'_>> {
    (!request.tools.is_empty()).then_some(FunctionTools(&request.tools))
}

/// `authorization: Bearer <key>` when there is a key.
pub(crate) fn bearer(key: Option<&str>) -> Vec<(&'static str, String)> {
    key.map(|k| ("authorization", format!("Bearer {k}")))
        .into_iter()
        .collect()
}
