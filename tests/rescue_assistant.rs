//! The rescue bot's assistant, against the Bot API double and the provider
//! double, with `main`'s config broken: its tools read the real
//! diagnostics, and a change it proposes runs only after the operator
//! confirms it — then it is done and audited like the slash command.
//!
//! Run inside `scripts/session.sh` (the token lives in the real keychain).

use std::time::Duration;

use omniclaw_agent::double::{Double, Reply};
use omniclaw_tests::botapi::{onboard_rescue, BotApiDouble};
use omniclaw_tests::{GatewayProc, Home};
use serde_json::json;

const TOKEN: &str = "777000222:AAHrescue-assistant-token_abcdefghij";
const OPERATOR: i64 = 4343;
const WAIT: Duration = Duration::from_secs(60);
const BROKEN: &str = "{ gateway: { port: \"not a port\" }, bogus: 1 }\n";

struct Bench {
    api: BotApiDouble,
    double: Double,
    home: Home,
    good: String,
    _gw: GatewayProc,
    _rt: tokio::runtime::Runtime,
}

impl Bench {
    /// A rescue bot with a model, targeting a `main` whose config is broken
    /// (its last good version kept beside it).
    fn new() -> Bench {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let double = rt.block_on(Double::start()).expect("provider double");
        let api = BotApiDouble::start();
        api.add_bot(TOKEN, "rescue_assistant_bot");
        let home = Home::new();
        home.setup_on_free_port("main");
        let op = OPERATOR.to_string();
        onboard_rescue(
            &home,
            &api,
            TOKEN,
            &["--allow-from", &op, "--target", "main"],
        );
        // Onboarding with a target turns the watch on; these tests are of
        // the commands an operator types, and they count the bot's messages.
        home.config_set("rescue", "rescue.watch.enabled", "false")
            .expect_code(0);
        home.config_set(
            "rescue",
            "models.providers",
            &format!(
                "{{ local: {{ baseUrl: {:?}, api: 'openai-completions', models: [{{ id: 'm1', name: 'Model one' }}] }} }}",
                double.base_url("openai-completions")
            ),
        )
        .expect_code(0);
        home.config_set("rescue", "agents.defaults.model", "'local/m1'")
            .expect_code(0);
        let good = home.read(".omniclaw-main/omniclaw.json");
        home.write(".omniclaw-main/omniclaw.json.last-good", &good);
        home.write(".omniclaw-main/omniclaw.json", BROKEN);
        let gw = GatewayProc::start(&home, &["--profile", "rescue", "gateway"]);
        Bench {
            api,
            double,
            home,
            good,
            _gw: gw,
            _rt: rt,
        }
    }

    /// What the assistant's tools told the model, over all its requests.
    fn tool_results(&self) -> Vec<String> {
        let last = self.double.chats().pop().expect("a model request");
        last.body["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter(|m| m["role"] == "tool")
            .filter_map(|m| m["content"].as_str().map(str::to_string))
            .collect()
    }

    /// The assistant's answer to `message_id` (not the progress status
    /// shown while its tools run).
    fn answer(&self, message_id: i64) -> String {
        let found = self.api.wait_sent(WAIT, "the answer", |_| {
            self.api
                .shown_in(OPERATOR)
                .iter()
                .any(|m| m.reply_to == Some(message_id) && !m.text.starts_with('⏳'))
        });
        drop(found);
        self.api
            .shown_in(OPERATOR)
            .into_iter()
            .find(|m| m.reply_to == Some(message_id) && !m.text.starts_with('⏳'))
            .expect("found")
            .text
    }

    fn audit(&self) -> String {
        self.home.read(".omniclaw-rescue/rescue/audit.jsonl")
    }
}

#[test]
fn what_is_wrong_with_main_is_answered_from_its_real_validation_error() {
    let b = Bench::new();
    let real = b.home.run(&["--profile", "main", "config", "validate"]);
    real.expect_code(1);
    b.double.push(Reply::tool_call("rescue_status", json!({})));
    b.double.push(Reply::tool_call(
        "rescue_config_get",
        json!({"profile": "main", "path": "gateway"}),
    ));
    b.double.push(Reply::text(
        "main's config is invalid: gateway.port is not a port.",
    ));
    let asked = b.api.push_message(OPERATOR, "what is wrong with main?");
    let reply = b.answer(asked);
    assert!(reply.contains("gateway.port"), "{reply}");

    // The model was told main's real validation errors by its tools.
    let told = b.tool_results().join("\n");
    assert!(told.contains("gateway.port"), "{told}");
    assert!(told.contains("bogus"), "the unknown key too: {told}");
    // It was offered the rescue operations and nothing else.
    let offered: Vec<String> = b.double.chats()[0].body["tools"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|t| t["function"]["name"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        offered,
        [
            "rescue_status",
            "rescue_ports",
            "rescue_logs",
            "rescue_config_get",
            "rescue_doctor",
            "rescue_propose"
        ]
    );
    // Reading changed nothing, and every read is audited as the assistant's.
    assert_eq!(b.home.read(".omniclaw-main/omniclaw.json"), BROKEN);
    let audit = b.audit();
    for read in ["/status", "/config main get gateway"] {
        assert!(
            audit
                .lines()
                .any(|l| l.contains(&format!("\"{read}\"")) && l.contains("assistant (")),
            "{read} not audited: {audit}"
        );
    }
}

#[test]
fn a_rollback_the_model_proposes_runs_only_once_confirmed_and_is_audited() {
    let b = Bench::new();
    b.double.push(Reply::tool_call(
        "rescue_propose",
        json!({"action": "rollback", "profile": "main"}),
    ));
    b.double.push(Reply::text(
        "I proposed rolling main back to its last good config.",
    ));
    let asked = b.api.push_message(OPERATOR, "please fix main");
    let answer = b.answer(asked);
    assert!(answer.contains("proposed"), "{answer}");
    let question = b
        .api
        .wait_sent(WAIT, "the confirmation question", |s| {
            s.iter().any(|m| !m.buttons.is_empty())
        })
        .into_iter()
        .find(|m| !m.buttons.is_empty())
        .expect("found");
    assert!(
        question
            .text
            .contains("The assistant proposes: /rollback main"),
        "{}",
        question.text
    );
    assert!(
        b.tool_results()
            .iter()
            .any(|t| t.contains("Nothing has changed")),
        "the model is told it changed nothing"
    );
    // Nothing happens until the operator says yes.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(b.home.read(".omniclaw-main/omniclaw.json"), BROKEN);
    assert!(
        b.audit()
            .contains("proposed by the assistant; asked for confirmation"),
        "{}",
        b.audit()
    );
    assert!(!b.audit().contains("\"ok\""), "{}", b.audit());

    let yes = question
        .buttons
        .iter()
        .find(|(l, _)| l.starts_with("Yes"))
        .expect("a yes button")
        .1
        .clone();
    let before = b.api.sent().len();
    b.api.push_callback(OPERATOR, &yes);
    let sent = b.api.wait_sent(WAIT, "the result", |s| s.len() > before);
    assert!(sent[before].text.contains('✓'), "{}", sent[before].text);
    assert_eq!(b.home.read(".omniclaw-main/omniclaw.json"), b.good);
    let audit = b.audit();
    let line = audit
        .lines()
        .rev()
        .find(|l| l.contains("/rollback main"))
        .expect("audited");
    assert!(line.contains("\"ok\""), "{audit}");
}

/// A target's bot token written into its log, its provider key under a key
/// whose name says nothing of a secret: the rescue tools mask both by
/// value, so neither reaches the model nor the operator's chat.
#[test]
fn a_target_s_secrets_never_reach_the_model_or_telegram() {
    const MAIN_TOKEN: &str = "888111333:AAHmain-bot-token_never-for-the-model";
    const MAIN_KEY: &str = "sk-main-provider-key-never-for-the-model";
    let b = Bench::new();
    b.home
        .run_stdin(
            &[
                "--profile",
                "main",
                "secrets",
                "set",
                "channels.telegram.botToken",
            ],
            MAIN_TOKEN,
            &[],
        )
        .expect_code(0);
    b.home.write(
        ".omniclaw-main/logs/gateway.2026-01-01.log",
        &format!(
            "{}\n",
            json!({
                "timestamp": "2026-01-01T00:00:00.000000Z",
                "level": "ERROR",
                "message": format!("getUpdates failed: https://api.telegram.org/bot{MAIN_TOKEN}/getUpdates"),
                "target": "omniclaw_channels::telegram",
            })
        ),
    );
    b.home.write(
        ".omniclaw-main/omniclaw.json",
        &format!(
            "{{ gateway: {{ port: \"not a port\" }}, models: {{ providers: {{ p: {{ apiKey: {MAIN_KEY:?} }} }} }}, logging: {{ level: {MAIN_KEY:?} }} }}\n"
        ),
    );
    b.double.push(Reply::tool_call(
        "rescue_logs",
        json!({"profile": "main", "lines": 20}),
    ));
    b.double.push(Reply::tool_call(
        "rescue_config_get",
        json!({"profile": "main", "path": "logging"}),
    ));
    b.double.push(Reply::tool_call("rescue_doctor", json!({})));
    b.double.push(Reply::text("main cannot reach Telegram."));
    let asked = b.api.push_message(OPERATOR, "why is main down?");
    let reply = b.answer(asked);
    assert!(reply.contains("cannot reach"), "{reply}");

    // The tools did read the log line and the value, masked.
    let told = b.tool_results().join("\n");
    assert!(told.contains("getUpdates failed"), "{told}");
    assert!(told.contains("<redacted>"), "{told}");
    // Nothing of either secret went to the model, in any request.
    let requests: String = b
        .double
        .chats()
        .iter()
        .map(|r| r.body.to_string())
        .collect();
    let (_, half) = MAIN_TOKEN.split_once(':').expect("a bot token");
    for secret in [half, MAIN_KEY] {
        assert_eq!(
            omniclaw_tests::chat::leaked(&requests, secret, 12),
            None,
            "a fragment of {secret} reached the model"
        );
    }

    // The operator's own slash commands show them masked too.
    let logs = b.api.push_message(OPERATOR, "/logs main 20");
    let shown = b.api.wait_reply(logs, WAIT).text;
    assert!(shown.contains("getUpdates failed"), "{shown}");
    let value = b.api.push_message(OPERATOR, "/config main get logging");
    let shown_value = b.api.wait_reply(value, WAIT).text;
    assert!(shown_value.contains("<redacted>"), "{shown_value}");
    let all: String = b
        .api
        .sent()
        .iter()
        .map(|m| m.text.clone())
        .collect::<Vec<_>>()
        .join("\n");
    for secret in [half, MAIN_KEY] {
        assert_eq!(
            omniclaw_tests::chat::leaked(&all, secret, 12),
            None,
            "a fragment of {secret} was sent to Telegram"
        );
    }
}
