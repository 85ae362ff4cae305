//! Human output as data: a marked headline, then one labelled line per fact.
//!
//! `health`, `gateway status` and `status` (and the desktop app's cards)
//! say what they found as a [`Report`]: the reload state, an edit the
//! gateway refused, each surface, the service. A new fact — spend today,
//! open sessions, a watched target — is one more [`Report::line`]. There is
//! one renderer, so every command lays facts out the same way, and none
//! hands a wire payload to people: [`health`] reads the gateway's `health`
//! payload into lines.

use serde_json::Value;

use crate::config::ConfigErrors;

/// How a report or a fact stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mark {
    Ok,
    Warn,
    Fail,
}

impl Mark {
    /// `✓`, `!` or `✗`, as `doctor` marks its checks.
    pub fn symbol(self) -> &'static str {
        match self {
            Mark::Ok => "✓",
            Mark::Warn => "!",
            Mark::Fail => "✗",
        }
    }
}

/// One fact: a short label and what it says (several lines allowed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    pub label: String,
    pub text: String,
}

/// A headline and the facts under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub mark: Mark,
    pub headline: String,
    pub facts: Vec<Fact>,
}

impl Report {
    pub fn new(mark: Mark, headline: impl Into<String>) -> Report {
        Report {
            mark,
            headline: headline.into(),
            facts: Vec::new(),
        }
    }

    /// Adds a fact; an empty text adds nothing.
    pub fn line(&mut self, label: impl Into<String>, text: impl Into<String>) -> &mut Report {
        let text = text.into();
        if !text.is_empty() {
            self.facts.push(Fact {
                label: label.into(),
                text,
            });
        }
        self
    }

    /// The text for a terminal: `✓ headline`, then each fact indented with
    /// its label padded to the widest one; a fact's further lines start
    /// under its first.
    pub fn render(&self) -> String {
        let width = self
            .facts
            .iter()
            .map(|f| f.label.chars().count())
            .max()
            .unwrap_or(0);
        let mut out = format!("{} {}\n", self.mark.symbol(), self.headline);
        for f in &self.facts {
            let mut lines = f.text.lines();
            let first = lines.next().unwrap_or_default();
            let pad = width - f.label.chars().count();
            out.push_str(&format!("  {}{}  {first}\n", f.label, " ".repeat(pad)));
            for more in lines {
                out.push_str(&format!("  {}  {more}\n", " ".repeat(width)));
            }
        }
        out
    }
}

/// The lines that say why an edit was refused, from the gateway's
/// `reload.lastError`: the detail under its first line when there is one
/// (`gateway.port: expected an integer … (6:13)`, one per key), else the
/// one line it is.
pub fn refusal_lines(last_error: &str) -> Vec<String> {
    let lines: Vec<String> = last_error
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    match lines.split_first() {
        Some((head, [])) => vec![head.clone()],
        Some((_, rest)) => rest.to_vec(),
        None => Vec::new(),
    }
}

/// What a profile's config on disk that does not validate means, naming
/// every refused key with its position: a running gateway keeps serving
/// the last config it validated ("running on the last good config; edit
/// refused: gateway.port: expected an integer … (6:13)"), a stopped one
/// cannot start.
pub fn invalid_config(running: bool, errors: &ConfigErrors) -> String {
    let keys: Vec<String> = errors
        .diagnostics()
        .iter()
        .map(ToString::to_string)
        .collect();
    let keys = keys.join("; ");
    if running {
        format!("running on the last good config; edit refused: {keys}")
    } else {
        format!("config invalid, so its gateway cannot start: {keys}")
    }
}

/// "3 s ago", "2 min ago", "5 h ago", "2 days ago".
pub fn ago(millis: u64) -> String {
    let secs = millis / 1000;
    match secs {
        0..=59 => format!("{secs} s ago"),
        60..=3599 => format!("{} min ago", secs / 60),
        3600..=86_399 => format!("{} h ago", secs / 3600),
        _ => match secs / 86_400 {
            1 => "1 day ago".to_string(),
            d => format!("{d} days ago"),
        },
    }
}

/// The `health` payload a gateway sent, for people: a headline naming
/// `who` ("gateway of profile main at ws://…") and how long the call took,
/// then the reload state, a refused edit and the surfaces. `now_ms` (the
/// caller's clock) turns "last applied" into an age.
pub fn health(who: &str, millis: f64, payload: &Value, now_ms: u64) -> Report {
    let ok = payload.get("ok") == Some(&Value::Bool(true));
    let reload = payload.get("reload").unwrap_or(&Value::Null);
    let refused = reload
        .get("lastError")
        .and_then(Value::as_str)
        .map(refusal_lines)
        .unwrap_or_default();
    let surfaces = payload.get("surfaces").unwrap_or(&Value::Null);
    let down: Vec<&str> = [
        ("gateway", "gateway"),
        ("browserControl", "browser control"),
        ("canvas", "canvas"),
    ]
    .into_iter()
    .filter(|(key, _)| {
        let s = &surfaces[*key];
        s["enabled"] != Value::Bool(false) && s["listening"] == Value::Bool(false)
    })
    .map(|(_, name)| name)
    .collect();
    let (mark, state) = match (ok, refused.is_empty()) {
        (true, true) => (Mark::Ok, "healthy".to_string()),
        (true, false) => (
            Mark::Warn,
            "healthy, serving the last good config; an edit was refused".to_string(),
        ),
        (false, _) if !down.is_empty() => (
            Mark::Fail,
            format!("unhealthy: {} not listening", down.join(", ")),
        ),
        (false, _) => (Mark::Fail, "unhealthy".to_string()),
    };
    let mut r = Report::new(mark, format!("{who}: {state} ({millis:.1} ms)"));
    r.line("reload", reload_text(reload, now_ms));
    r.line("edit refused", refused.join("\n"));
    if let Some(pending) = reload.get("pending").and_then(Value::as_array) {
        let keys: Vec<&str> = pending.iter().filter_map(Value::as_str).collect();
        if !keys.is_empty() {
            r.line(
                "not applied",
                format!(
                    "{} (gateway.reload.mode is off: restart the gateway to apply)",
                    keys.join(", ")
                ),
            );
        }
    }
    r.line("gateway", surface_text(&surfaces["gateway"], "bind"));
    let browser = &surfaces["browserControl"];
    let mut browser_text = surface_text(browser, "");
    if let (Some(a), Some(b)) = (
        browser
            .pointer("/cdpPortRange/start")
            .and_then(Value::as_u64),
        browser.pointer("/cdpPortRange/end").and_then(Value::as_u64),
    ) {
        if browser["enabled"] != Value::Bool(false) {
            browser_text.push_str(&format!(" · CDP ports {a}–{b}"));
        }
    }
    r.line("browser control", browser_text);
    let canvas = &surfaces["canvas"];
    let mut canvas_text = surface_text(canvas, "");
    if let Some(root) = canvas["root"].as_str() {
        if canvas["enabled"] != Value::Bool(false) {
            canvas_text.push_str(&format!(" · serving {root}"));
        }
    }
    r.line("canvas", canvas_text);
    if let Some(a) = payload.get("assistant").filter(|a| a.is_object()) {
        assistant_lines(&mut r, a);
    }
    if let Some(channels) = payload.get("channels").and_then(Value::as_object) {
        for (name, c) in channels {
            let text = c["summary"]
                .as_str()
                .map(str::to_string)
                .or_else(|| c["state"].as_str().map(str::to_string))
                .unwrap_or_else(|| "no summary".to_string());
            r.line(name.as_str(), text);
        }
    }
    r
}

/// The assistant's lines of `health` (the `assistant` object a gateway
/// reports): its model, runs going on, today's tokens and spend.
pub fn assistant_lines(r: &mut Report, a: &Value) {
    if let Some(problem) = a["problem"].as_str() {
        r.line("assistant", format!("off: {problem}"));
        return;
    }
    let model = match a["model"].as_str() {
        Some(m) => {
            let fallbacks: Vec<&str> = a["fallbacks"]
                .as_array()
                .map(|f| f.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if fallbacks.is_empty() {
                m.to_string()
            } else {
                format!("{m} (then {})", fallbacks.join(", "))
            }
        }
        None => "no model: set agents.defaults.model".to_string(),
    };
    let runs = a["activeRuns"].as_u64().unwrap_or(0);
    let running = match runs {
        0 => String::new(),
        1 => " · 1 reply being written".to_string(),
        n => format!(" · {n} replies being written"),
    };
    r.line("assistant", format!("{model}{running}"));
    if let Some(today) = a.get("today").filter(|t| t.is_object()) {
        r.line("spend today", spend_text(today));
    }
}

/// "1,234 tokens · $0.0123 of $2.00 (resets at local midnight)".
pub fn spend_text(today: &Value) -> String {
    if let Some(e) = today["error"].as_str() {
        return format!("unknown ({e})");
    }
    let tokens = today["tokens"].as_u64().unwrap_or(0);
    let usd = today["usd"].as_f64().unwrap_or(0.0);
    let cap = today["dailyUsd"].as_f64();
    let spent = format!("{} tokens · ${usd:.4}", thousands(tokens));
    match cap {
        Some(cap) if usd >= cap => format!(
            "{spent} — the daily cap of ${cap:.2} is reached: new replies wait until local midnight (raise budget.dailyUsd to go on)"
        ),
        Some(cap) => format!("{spent} of ${cap:.2} (the cap resets at local midnight)"),
        None => format!("{spent} (no daily cap: budget.dailyUsd)"),
    }
}

pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// "hybrid, last applied 12 s ago".
fn reload_text(reload: &Value, now_ms: u64) -> String {
    let mut parts = Vec::new();
    if let Some(mode) = reload["mode"].as_str() {
        parts.push(match mode {
            "off" => "off (edits are only reported)".to_string(),
            other => other.to_string(),
        });
    }
    if let Some(at) = reload["lastAppliedMs"].as_u64() {
        parts.push(format!("last applied {}", ago(now_ms.saturating_sub(at))));
    }
    parts.join(", ")
}

/// "127.0.0.1:18789 listening", "off", or "port 18791 not listening".
fn surface_text(s: &Value, bind_key: &str) -> String {
    if s.is_null() {
        return String::new();
    }
    if s["enabled"] == Value::Bool(false) {
        return "off".to_string();
    }
    let port = s["port"]
        .as_u64()
        .map_or("?".to_string(), |p| p.to_string());
    let at = match s.get(bind_key).and_then(Value::as_str) {
        Some(bind) if bind.contains(':') => format!("[{bind}]:{port}"),
        Some(bind) => format!("{bind}:{port}"),
        None => format!("port {port}"),
    };
    match s["listening"].as_bool() {
        Some(true) => format!("{at} listening"),
        Some(false) => format!("{at} not listening"),
        None => at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn payload(last_error: Value, ok: bool) -> Value {
        json!({
            "ok": ok,
            "reload": {"mode": "hybrid", "configHash": "abc", "lastAppliedMs": 1_000, "lastError": last_error, "pending": []},
            "ts": 61_000,
            "durationMs": 0,
            "profile": "main",
            "surfaces": {
                "gateway": {"bind": "127.0.0.1", "port": 18789, "listening": true},
                "browserControl": {"enabled": true, "port": 18791, "listening": ok, "cdpPortRange": {"start": 18800, "end": 18899}},
                "canvas": {"enabled": false, "port": 18793, "listening": false, "root": "/w/canvas"},
            },
            "channels": {},
            "channelOrder": [],
            "channelLabels": {},
        })
    }

    #[test]
    fn the_assistant_is_two_lines_its_model_and_todays_spend() {
        let mut p = payload(Value::Null, true);
        p["assistant"] = json!({
            "model": "openai/gpt-4o-mini", "fallbacks": ["local/llama"], "activeRuns": 2,
            "today": {"tokens": 12345, "usd": 0.5, "dailyUsd": 2.0, "resetsAtMs": 0},
        });
        let text = health("gateway", 1.0, &p, 61_000).render();
        assert!(
            text.contains("openai/gpt-4o-mini (then local/llama) · 2 replies being written"),
            "{text}"
        );
        assert!(text.contains("12,345 tokens · $0.5000 of $2.00"), "{text}");
        assert!(!text.contains("{\""), "{text}");
        p["assistant"]["today"]["usd"] = json!(2.5);
        let capped = health("gateway", 1.0, &p, 61_000).render();
        assert!(
            capped.contains("the daily cap of $2.00 is reached"),
            "{capped}"
        );
        p["assistant"] = json!({"problem": "the session store is newer"});
        assert!(health("gateway", 1.0, &p, 61_000)
            .render()
            .contains("off: the session store is newer"));
    }

    #[test]
    fn facts_line_up_under_one_headline() {
        let mut r = Report::new(Mark::Ok, "all good");
        r.line("a", "one")
            .line("longer", "two\nthree")
            .line("skip", "");
        assert_eq!(
            r.render(),
            "✓ all good\n  a       one\n  longer  two\n          three\n"
        );
    }

    #[test]
    fn a_healthy_gateway_reads_as_lines() {
        let r = health(
            "gateway of profile main at ws://x",
            1.25,
            &payload(Value::Null, true),
            13_000,
        );
        assert_eq!(
            r.render(),
            "✓ gateway of profile main at ws://x: healthy (1.2 ms)\n\
             \x20 reload           hybrid, last applied 12 s ago\n\
             \x20 gateway          127.0.0.1:18789 listening\n\
             \x20 browser control  port 18791 listening · CDP ports 18800–18899\n\
             \x20 canvas           off\n"
        );
    }

    #[test]
    fn a_refused_edit_is_named_in_the_headline_and_by_key() {
        let err = json!("invalid config /s/omniclaw.json, edit refused:\ngateway.port: expected an integer 1–65535, got \"x\" (6:13)\nlogging.level: unknown value (9:3)");
        let r = health("gw", 2.0, &payload(err, true), 1_000);
        assert_eq!(r.mark, Mark::Warn);
        let text = r.render();
        assert!(
            text.starts_with("! gw: healthy, serving the last good config; an edit was refused"),
            "{text}"
        );
        assert!(
            text.contains("  edit refused     gateway.port: expected an integer 1–65535, got \"x\" (6:13)\n                   logging.level: unknown value (9:3)\n"),
            "{text}"
        );
        assert!(!text.contains("{\""), "{text}");
    }

    #[test]
    fn an_unhealthy_gateway_names_what_is_down() {
        let r = health("gw", 2.0, &payload(Value::Null, false), 1_000);
        assert_eq!(r.mark, Mark::Fail);
        assert_eq!(
            r.headline,
            "gw: unhealthy: browser control not listening (2.0 ms)"
        );
    }

    #[test]
    fn an_invalid_config_names_its_keys() {
        let errors = match crate::config::load("{gateway: {port: 'x'}, logging: {level: 'loud'}}") {
            Err(e) => e,
            Ok(_) => panic!("the config is invalid"),
        };
        let running = invalid_config(true, &errors);
        assert!(
            running.starts_with("running on the last good config; edit refused: gateway.port: "),
            "{running}"
        );
        assert!(running.contains("(1:"), "{running}");
        assert!(running.contains("; logging.level: "), "{running}");
        assert!(invalid_config(false, &errors)
            .starts_with("config invalid, so its gateway cannot start: gateway.port: "));
    }

    #[test]
    fn refusals_keep_their_detail() {
        assert_eq!(
            refusal_lines("the config /c was removed; restore it"),
            vec!["the config /c was removed; restore it"]
        );
        assert_eq!(
            refusal_lines(
                "would collide, refused:\nrescue base 18800 lies in main's CDP range (fix: x)\n"
            ),
            vec!["rescue base 18800 lies in main's CDP range (fix: x)"]
        );
        assert!(refusal_lines("").is_empty());
    }

    #[test]
    fn ages_read_naturally() {
        assert_eq!(ago(999), "0 s ago");
        assert_eq!(ago(61_000), "1 min ago");
        assert_eq!(ago(7_200_000), "2 h ago");
        assert_eq!(ago(86_400_000), "1 day ago");
        assert_eq!(ago(3 * 86_400_000), "3 days ago");
    }
}
