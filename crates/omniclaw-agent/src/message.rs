//! Transcript messages, in OpenClaw's shapes (they are a format: transcripts
//! are exported as OpenClaw's transcript JSON lines and sent to clients as
//! they are stored).
//!
//! - user: `{role:"user", content:"…", timestamp, idempotencyKey:"<runId>:user"}`
//! - assistant: `{role:"assistant", content:[{type:"text",text}|{type:"toolCall",id,name,arguments}],
//!   api, provider, model, usage, stopReason, errorMessage?, timestamp}`
//! - toolResult: `{role:"toolResult", toolCallId, toolName, content:[{type:"text",text}], isError, timestamp}`

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::Millis;

/// One transcript message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "camelCase")]
pub enum Message {
    User(UserMessage),
    Assistant(AssistantMessage),
    ToolResult(ToolResultMessage),
}

impl Message {
    pub fn timestamp(&self) -> Millis {
        match self {
            Message::User(m) => m.timestamp,
            Message::Assistant(m) => m.timestamp,
            Message::ToolResult(m) => m.timestamp,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserMessage {
    pub content: String,
    pub timestamp: Millis,
    /// `<runId>:user`: clients match their optimistic rows by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssistantMessage {
    pub content: Vec<AssistantBlock>,
    /// The wire format spoken: `openai-completions`, `anthropic-messages`, `ollama`.
    pub api: String,
    /// The configured provider id (`models.providers.<id>`).
    pub provider: String,
    pub model: String,
    pub usage: Usage,
    pub stop_reason: StopReason,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    pub timestamp: Millis,
}

impl AssistantMessage {
    /// The visible text: every text block joined.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for b in &self.content {
            if let AssistantBlock::Text { text } = b {
                out.push_str(text);
            }
        }
        out
    }

    /// The tool calls the model asked for, in order.
    pub fn tool_calls(&self) -> impl Iterator<Item = &ToolCall> {
        self.content.iter().filter_map(|b| match b {
            AssistantBlock::ToolCall(c) => Some(c),
            AssistantBlock::Text { .. } => None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum AssistantBlock {
    Text {
        text: String,
    },
    #[serde(rename = "toolCall")]
    ToolCall(ToolCall),
}

/// A call the model asked for. `arguments` is the parsed JSON object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolResultMessage {
    pub tool_call_id: String,
    pub tool_name: String,
    pub content: Vec<TextBlock>,
    pub is_error: bool,
    pub timestamp: Millis,
}

impl ToolResultMessage {
    pub fn text(&self) -> String {
        self.content.iter().map(|b| b.text.as_str()).collect()
    }
}

/// `{type:"text", text}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "text")]
pub struct TextBlock {
    pub text: String,
}

/// Why the model stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StopReason {
    Stop,
    Length,
    ToolUse,
    Error,
    Aborted,
}

impl StopReason {
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Stop => "stop",
            StopReason::Length => "length",
            StopReason::ToolUse => "toolUse",
            StopReason::Error => "error",
            StopReason::Aborted => "aborted",
        }
    }
}

/// Tokens of one provider call and what they cost (USD, from the model's
/// `cost` per million tokens; zero when the model has no `cost`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub input: u64,
    pub output: u64,
    #[serde(default)]
    pub cache_read: u64,
    #[serde(default)]
    pub cache_write: u64,
    pub total_tokens: u64,
    pub cost: Cost,
}

impl Usage {
    /// Adds another call's usage (a turn with tool rounds makes several).
    pub fn add(&mut self, other: &Usage) {
        self.input += other.input;
        self.output += other.output;
        self.cache_read += other.cache_read;
        self.cache_write += other.cache_write;
        self.total_tokens += other.total_tokens;
        self.cost.input += other.cost.input;
        self.cost.output += other.cost.output;
        self.cost.cache_read += other.cost.cache_read;
        self.cost.cache_write += other.cost.cache_write;
        self.cost.total += other.cost.total;
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cost {
    pub input: f64,
    pub output: f64,
    #[serde(default)]
    pub cache_read: f64,
    #[serde(default)]
    pub cache_write: f64,
    pub total: f64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_serialize_in_openclaw_shapes() {
        let user = Message::User(UserMessage {
            content: "hi".into(),
            timestamp: 5,
            idempotency_key: Some("R1:user".into()),
        });
        assert_eq!(
            serde_json::to_value(&user).expect("json"),
            json!({"role": "user", "content": "hi", "timestamp": 5, "idempotencyKey": "R1:user"})
        );
        let assistant = Message::Assistant(AssistantMessage {
            content: vec![
                AssistantBlock::Text {
                    text: "Let me compute.".into(),
                },
                AssistantBlock::ToolCall(ToolCall {
                    id: "call_1".into(),
                    name: "calc".into(),
                    arguments: json!({"expr": "6*7"}),
                }),
            ],
            api: "openai-completions".into(),
            provider: "openai".into(),
            model: "gpt-x".into(),
            usage: Usage::default(),
            stop_reason: StopReason::ToolUse,
            error_message: None,
            timestamp: 6,
        });
        let v = serde_json::to_value(&assistant).expect("json");
        assert_eq!(v["role"], "assistant");
        assert_eq!(
            v["content"][1],
            json!({"type": "toolCall", "id": "call_1", "name": "calc", "arguments": {"expr": "6*7"}})
        );
        assert_eq!(v["stopReason"], "toolUse");
        assert_eq!(v["usage"]["totalTokens"], 0);
        let result = Message::ToolResult(ToolResultMessage {
            tool_call_id: "call_1".into(),
            tool_name: "calc".into(),
            content: vec![TextBlock { text: "42".into() }],
            is_error: false,
            timestamp: 7,
        });
        assert_eq!(
            serde_json::to_value(&result).expect("json"),
            json!({"role": "toolResult", "toolCallId": "call_1", "toolName": "calc",
                   "content": [{"type": "text", "text": "42"}], "isError": false, "timestamp": 7})
        );
        for m in [user, assistant, result] {
            let back: Message =
                serde_json::from_value(serde_json::to_value(&m).expect("json")).expect("parse");
            assert_eq!(back, m);
        }
    }
}
