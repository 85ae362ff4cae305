//! What the model is sent: the system prompt with the workspace's bootstrap
//! files, and the history cut to the model's context window.
//!
//! Bootstrap files are OpenClaw's: `AGENTS.md`, `SOUL.md`, `TOOLS.md`,
//! `IDENTITY.md`, `USER.md`, and `MEMORY.md` only in the owner's main
//! session (it holds what the owner told the assistant to remember; other
//! senders must not read it). Like OpenClaw, each file is cut at
//! `bootstrapMaxChars` keeping its head (75%) and tail (25%) around a
//! marker, all of them together at `bootstrapTotalMaxChars`; OmniClaw also
//! keeps them within a quarter of the model's context window. Missing
//! files are left out.

use std::path::Path;
use std::sync::Arc;

use crate::message::{Message, StopReason};

/// The bootstrap files, in the order they are put into the prompt.
pub const BOOTSTRAP_FILES: &[&str] =
    &["AGENTS.md", "SOUL.md", "TOOLS.md", "IDENTITY.md", "USER.md"];
/// Only in the owner's main session.
pub const MEMORY_FILE: &str = "MEMORY.md";
/// Assumed when a model states no `contextWindow`.
pub const DEFAULT_CONTEXT_WINDOW: u32 = 32_768;
/// A file's budget below which it is left out rather than cut to nothing
/// (OpenClaw's figure).
const MIN_FILE_BUDGET: usize = 64;

/// How much of the bootstrap files goes into the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub per_file: usize,
    pub total: usize,
}

impl Limits {
    /// The configured limits, the total also held to a quarter of the
    /// context window (at about four characters a token, `window` tokens
    /// are `4 * window` characters; a quarter of that is `window`).
    pub fn new(per_file: usize, total: usize, context_window: u32) -> Limits {
        let share = usize::try_from(context_window).unwrap_or(usize::MAX);
        Limits {
            per_file,
            total: total.min(share),
        }
    }
}

/// Reads the bootstrap files of `workspace` (MEMORY.md too when
/// `with_memory`); unreadable or missing files are left out.
///
/// Read in place rather than through `tokio::fs`: a handful of small files
/// cost a few syscalls each, less than the blocking pool's round trip that
/// `tokio::fs` pays per file, and this is on every turn's way to the model.
pub fn read_files(workspace: &Path, with_memory: bool) -> Vec<(String, String)> {
    let mut names: Vec<&str> = BOOTSTRAP_FILES.to_vec();
    if with_memory {
        names.push(MEMORY_FILE);
    }
    let mut out = Vec::new();
    for name in names {
        if let Ok(text) = std::fs::read_to_string(workspace.join(name)) {
            out.push((name.to_string(), text));
        }
    }
    out
}

/// The system prompt: `base`, then the bootstrap files as OpenClaw's
/// "Project Context" section.
pub fn system_prompt(base: &str, files: &[(String, String)], limits: Limits) -> String {
    let mut out = base.trim_end().to_string();
    let mut remaining = limits.total;
    let mut sections = Vec::new();
    for (name, text) in files {
        if remaining < MIN_FILE_BUDGET {
            break;
        }
        let cut = cut_file(name, text, limits.per_file.min(remaining));
        if cut.is_empty() {
            continue;
        }
        remaining -= cut.chars().count().min(remaining);
        sections.push((name, cut));
    }
    if sections.is_empty() {
        return out;
    }
    out.push_str("\n\n# Project Context\n\nThe workspace files below are the user's; follow them unless higher-priority instructions override.\n");
    for (name, text) in sections {
        out.push_str(&format!("\n## {name}\n\n{text}\n"));
    }
    out
}

/// `text` cut to `max` characters: its head and tail around a marker that
/// says so (OpenClaw's shape), or whole when it fits.
pub fn cut_file(name: &str, text: &str, max: usize) -> String {
    let text = text.trim_end();
    let len = text.chars().count();
    if len <= max {
        return text.to_string();
    }
    let marker = |head: usize, tail: usize| {
        format!("\n[...truncated, read {name} for full content...]\n…(truncated {name}: kept {head}+{tail} chars of {len})…\n")
    };
    let room = max.saturating_sub(marker(len, len).chars().count());
    let head = room * 3 / 4;
    let tail = room - head;
    if room == 0 {
        return text.chars().take(max).collect();
    }
    let start: String = text.chars().take(head).collect();
    let end: String = text.chars().skip(len - tail).collect();
    format!("{start}{}{end}", marker(head, tail))
}

/// The history the model is sent: at most `budget` tokens (estimated at
/// four characters a token), oldest turns out first. A turn is a user
/// message with everything after it up to the next one, so a tool call is
/// never separated from its result; the newest turn always stays. Failed
/// calls that said nothing are left out.
///
/// The result shares `messages` when nothing is left out (the usual case),
/// so a turn does not copy its whole history to send it.
pub fn fit_history(messages: &Arc<Vec<Message>>, budget: usize) -> Arc<Vec<Message>> {
    let kept: Vec<usize> = (0..messages.len())
        .filter(|&i| !is_empty_failure(&messages[i]))
        .collect();
    // Turns as ranges of `kept`.
    let mut turns: Vec<(usize, usize)> = Vec::new();
    for (k, &i) in kept.iter().enumerate() {
        match (&messages[i], turns.last_mut()) {
            (Message::User(_), _) | (_, None) => turns.push((k, k + 1)),
            (_, Some(turn)) => turn.1 = k + 1,
        }
    }
    // A history must start with a user turn (Anthropic refuses otherwise).
    let lead = turns
        .iter()
        .take_while(|&&(start, _)| !matches!(messages[kept[start]], Message::User(_)))
        .count();
    let turns = &turns[lead..];
    let sizes: Vec<usize> = turns
        .iter()
        .map(|&(start, end)| kept[start..end].iter().map(|&i| tokens(&messages[i])).sum())
        .collect();
    let mut total: usize = sizes.iter().sum();
    let mut first = 0;
    while total > budget && first + 1 < turns.len() {
        total -= sizes[first];
        first += 1;
    }
    let from = turns.get(first).map_or(kept.len(), |&(start, _)| start);
    let chosen = &kept[from..];
    if chosen.len() == messages.len() {
        return messages.clone();
    }
    Arc::new(chosen.iter().map(|&i| messages[i].clone()).collect())
}

/// Estimated tokens of a message (four characters a token, plus a little
/// for the framing).
pub fn tokens(m: &Message) -> usize {
    let chars = match m {
        Message::User(u) => u.content.chars().count(),
        Message::Assistant(a) => a
            .content
            .iter()
            .map(|b| match b {
                crate::message::AssistantBlock::Text { text } => text.chars().count(),
                crate::message::AssistantBlock::ToolCall(c) => {
                    c.name.len() + c.arguments.to_string().chars().count()
                }
            })
            .sum(),
        Message::ToolResult(r) => r.content.iter().map(|b| b.text.chars().count()).sum(),
    };
    chars / 4 + 4
}

/// Estimated tokens of a text.
pub fn text_tokens(text: &str) -> usize {
    text.chars().count() / 4 + 1
}

fn is_empty_failure(m: &Message) -> bool {
    matches!(m, Message::Assistant(a) if a.content.is_empty() && a.stop_reason == StopReason::Error)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::message::{
        AssistantBlock, AssistantMessage, TextBlock, ToolCall, ToolResultMessage, Usage,
        UserMessage,
    };

    fn user(text: &str) -> Message {
        Message::User(UserMessage {
            content: text.into(),
            timestamp: 0,
            idempotency_key: None,
        })
    }

    fn assistant(blocks: Vec<AssistantBlock>, stop: StopReason) -> Message {
        Message::Assistant(AssistantMessage {
            content: blocks,
            api: "openai-completions".into(),
            provider: "p".into(),
            model: "m".into(),
            usage: Usage::default(),
            stop_reason: stop,
            error_message: None,
            timestamp: 0,
        })
    }

    fn said(text: &str) -> Message {
        assistant(
            vec![AssistantBlock::Text { text: text.into() }],
            StopReason::Stop,
        )
    }

    fn call(id: &str) -> Message {
        assistant(
            vec![AssistantBlock::ToolCall(ToolCall {
                id: id.into(),
                name: "read".into(),
                arguments: json!({"path": "x"}),
            })],
            StopReason::ToolUse,
        )
    }

    fn result(id: &str, text: &str) -> Message {
        Message::ToolResult(ToolResultMessage {
            tool_call_id: id.into(),
            tool_name: "read".into(),
            content: vec![TextBlock { text: text.into() }],
            is_error: false,
            timestamp: 0,
        })
    }

    fn shape(messages: &[Message]) -> Vec<String> {
        messages
            .iter()
            .map(|m| match m {
                Message::User(u) => format!("u:{}", u.content),
                Message::Assistant(a) => match a.tool_calls().next() {
                    Some(c) => format!("call:{}", c.id),
                    None => format!("a:{}", a.text()),
                },
                Message::ToolResult(r) => format!("r:{}", r.tool_call_id),
            })
            .collect()
    }

    #[test]
    fn history_drops_oldest_turns_and_keeps_calls_with_results() {
        let big = "x".repeat(400);
        let history = vec![
            user("one"),
            call("c1"),
            result("c1", &big),
            said("done one"),
            user("two"),
            said(&big),
            user("three"),
            call("c2"),
            result("c2", "small"),
        ];
        let shared = Arc::new(history.clone());
        let all = fit_history(&shared, 10_000);
        assert_eq!(all.len(), 9);
        assert!(
            Arc::ptr_eq(&all, &shared),
            "nothing left out: the history is shared, not copied"
        );
        // Room for the last turn and the one before, not the first.
        let cut = fit_history(&Arc::new(history.clone()), 130);
        assert_eq!(
            shape(&cut),
            ["u:two", &format!("a:{big}"), "u:three", "call:c2", "r:c2"]
        );
        // Too small for anything: the newest turn stays whole.
        let tiny = fit_history(&Arc::new(history), 1);
        assert_eq!(shape(&tiny), ["u:three", "call:c2", "r:c2"]);
    }

    #[test]
    fn failed_calls_that_said_nothing_are_left_out() {
        let failed = assistant(Vec::new(), StopReason::Error);
        let history = vec![call("orphan"), user("hi"), failed, said("hello")];
        let shared = Arc::new(history);
        let fitted = fit_history(&shared, 1000);
        assert_eq!(shape(&fitted), ["u:hi", "a:hello"]);
        assert_eq!(shared.len(), 4, "the run's history keeps every message");
    }

    #[test]
    fn files_are_cut_head_and_tail_around_a_marker() {
        let text: String = (0..200)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        assert_eq!(cut_file("SOUL.md", &text, 500), text);
        let cut = cut_file("SOUL.md", &text, 150);
        assert!(cut.chars().count() <= 150, "{}", cut.chars().count());
        assert!(cut.starts_with("abcdefg"), "{cut}");
        assert!(
            cut.contains("[...truncated, read SOUL.md for full content...]"),
            "{cut}"
        );
        assert!(cut.ends_with(&text[text.len() - 3..]), "{cut}");
        // Cut by characters, not bytes.
        let wide = "é".repeat(300);
        assert!(cut_file("USER.md", &wide, 200).chars().count() <= 200);
    }

    #[test]
    fn the_prompt_holds_each_file_within_the_limits() {
        let files = vec![
            ("AGENTS.md".to_string(), "Be brief.".to_string()),
            ("SOUL.md".to_string(), "s".repeat(5000)),
            ("USER.md".to_string(), "Likes tea.".to_string()),
        ];
        let prompt = system_prompt(
            "You are the assistant.",
            &files,
            Limits::new(1000, 1100, 100_000),
        );
        assert!(
            prompt.starts_with("You are the assistant.\n\n# Project Context"),
            "{prompt}"
        );
        assert!(prompt.contains("## AGENTS.md\n\nBe brief.\n"));
        assert!(prompt.contains("[...truncated, read SOUL.md"));
        assert!(
            prompt.contains("## USER.md\n\nLikes tea."),
            "the total leaves room for it"
        );
        // The total runs out: later files are left out.
        let tight = system_prompt("B", &files, Limits::new(1000, 1000, 100_000));
        assert!(!tight.contains("USER.md"), "{tight}");
        // A small context window holds the total to a quarter of it.
        assert_eq!(Limits::new(20_000, 60_000, 8_192).total, 8_192);
        assert_eq!(system_prompt("B", &[], Limits::new(1, 1, 1)), "B");
    }
}
