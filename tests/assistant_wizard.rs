//! The dashboard's assistant wizard end to end: the real `omniclaw-desktop`
//! driven over WebDriver in a private desktop session with its own unlocked
//! keychain, against the provider double (which also plays the local
//! Ollama). A first start with no profile opens the wizard; a key the
//! provider refuses is explained and nothing is written; a good key fetches
//! the models, the test message shows the model's reply (as text) and its
//! cost, and finishing creates the main gateway — its key in the keychain
//! and in no file — which then answers in the Chat page.

use std::path::Path;
use std::time::{Duration, Instant};

use omniclaw_agent::double::{Double, Reply};
use omniclaw_tests::botapi::BotApiDouble;
use omniclaw_tests::desktop::*;
use omniclaw_tests::{GatewayProc, Home, Run};

const API_KEY: &str = "sk-wizard-good-key-0123456789";
const WRONG_KEY: &str = "sk-wizard-wrong-key-9876543210";
const BOT_TOKEN: &str = "777777777:AAHassistant-token-for-tests_abcdefgh";

/// `omniclaw ARGS` in `home`, on the session's bus (its keychain).
fn cli(home: &Home, session: &Session, args: &[&str]) -> Run {
    home.run_env(args, &[("DBUS_SESSION_BUS_ADDRESS", &session.bus)])
}

/// Whether the keychain holds the default profile's OpenAI key:
/// `"stored": true` or `"stored": false`.
fn key_status(home: &Home, session: &Session) -> String {
    let status = cli(
        home,
        session,
        &[
            "secrets",
            "status",
            "models.providers.openai.apiKey",
            "--json",
        ],
    );
    ["\"stored\": true", "\"stored\": false"]
        .into_iter()
        .find(|s| status.stdout.contains(s))
        .unwrap_or_else(|| panic!("no key status:\n{}{}", status.stdout, status.stderr))
        .to_string()
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() && !path.is_symlink() {
            found.extend(files_containing(&path, needle));
        } else if let Ok(bytes) = std::fs::read(&path) {
            if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

/// Waits until finishing reports success, or panics with its error.
fn wait_finished(web: &WebDriver) -> String {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(90) {
        let error = web.text("[data-testid=as-error]").unwrap_or_default();
        assert!(error.is_empty(), "finishing failed: {error}");
        let done = web.text("[data-testid=as-done]").unwrap_or_default();
        if done.contains("runs on port") {
            return done;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("finishing never ended");
}

/// The provider double listing two models and taking only [`API_KEY`].
fn provider(rt: &tokio::runtime::Runtime) -> Double {
    let double = rt.block_on(Double::start()).expect("double");
    double.list_model("double-mini", Some((1.0, 2.0)));
    double.list_model("double-max", None);
    double.require_key(API_KEY);
    double
}

/// Picks OpenAI in the wizard, at the double's address.
fn choose_openai(web: &WebDriver, double: &Double) {
    web.click("[data-testid=as-provider-openai]");
    web.fill(
        "[data-testid=as-base-url]",
        &double.base_url("openai-completions"),
    );
}

/// Step 3 with the right key: the models are fetched, `double-mini` is
/// picked and the test message sent; the reply as the page shows it.
fn pick_and_test(web: &WebDriver, double: &Double) -> String {
    web.fill("[data-testid=as-key]", API_KEY);
    web.click("[data-testid=as-fetch]");
    let models = web.wait_contains("[data-testid=as-model]", "double-max", PATIENCE);
    assert!(models.contains("double-mini"), "{models}");
    web.fill("[data-testid=as-model]", "double-mini");
    double.push(Reply::text("<b>Hello</b> from the double.").usage(1000, 500));
    web.click("[data-testid=as-test]");
    web.wait_contains("[data-testid=as-reply-text]", "from the double.", PATIENCE)
}

/// The finished wizard's "Chat" opens `profile`'s chat, and its gateway
/// answers with the model the wizard chose.
fn chat_after_finish(web: &WebDriver, double: &Double, profile: &str) {
    web.click("[data-testid=as-chat]");
    let start = Instant::now();
    let opened = format!(
        "return document.getElementById('chat-gateway').value === '{profile}' && document.getElementById('chat-session').options.length > 0"
    );
    while web.script(&opened) != Ok(serde_json::Value::Bool(true)) {
        assert!(
            start.elapsed() < PATIENCE,
            "the chat never opened {profile}: {:?}",
            web.script("return [document.getElementById('chat-gateway').value, [...document.querySelectorAll('#chat-gateway option')].map(o => o.value), document.getElementById('chat-session').options.length, document.getElementById('page-chat').innerText]")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let answer = format!("{profile} answers.");
    double.push(Reply::text(answer.clone()));
    let hello = format!("hello {profile}");
    web.fill("[data-testid=chat-input]", &hello);
    web.click("[data-testid=chat-send]");
    web.wait_contains("[data-testid=chat-log]", &answer, PATIENCE);
    let asked = double.chats().pop().expect("the gateway's call");
    assert_eq!(asked.body["model"], "double-mini");
    assert!(asked.body["messages"].to_string().contains(&hello));
}

#[test]
fn a_first_start_sets_up_the_main_assistant_from_the_gui() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let double = provider(&rt);
    let session = Session::start();
    let _keyring = session.keyring();
    let api = BotApiDouble::start();
    api.add_bot(BOT_TOKEN, "wizard_main_bot");
    let home = Home::new();
    let ollama = format!("http://{}", double.addr());
    let web = session.dashboard_with(
        &home,
        &[double.addr().port()],
        &[("OLLAMA_HOST", ollama.into())],
    );

    // No profile: the app opens on the wizard, planning the default
    // profile on a free port, and finds the local Ollama by itself.
    let plan = web.wait_contains("[data-testid=as-plan]", "New profile default", PATIENCE);
    assert!(plan.contains("base port"), "{plan}");
    assert_eq!(
        web.script("return document.getElementById('page-assistant').hidden"),
        Ok(serde_json::Value::Bool(false)),
        "the wizard is not the page shown on a first start"
    );
    web.wait_contains(
        "[data-testid=as-providers]",
        "runs on this machine",
        PATIENCE,
    );

    // A key the provider refuses: its reason is shown, nothing is written.
    choose_openai(&web, &double);
    web.fill("[data-testid=as-key]", WRONG_KEY);
    web.click("[data-testid=as-fetch]");
    let refused = web.wait_contains(
        "[data-testid=as-error]",
        "refused the API key (HTTP 401",
        PATIENCE,
    );
    assert!(
        refused.contains("Incorrect API key provided"),
        "the provider's reason is missing: {refused}"
    );
    // (`~/.omniclaw` itself may hold the app's settings.)
    assert!(
        !home.path().join(".omniclaw/omniclaw.json").exists(),
        "a refused key wrote a config"
    );
    assert_eq!(key_status(&home, &session), "\"stored\": false");

    // The right key: the models are fetched, one is picked and tested.
    let reply = pick_and_test(&web, &double);
    assert_eq!(reply, "<b>Hello</b> from the double.", "shown as text");
    // $1 and $2 per million: 1000 tokens in and 500 out cost $0.002.
    let cost = web.wait_contains("[data-testid=as-cost]", "cost", PATIENCE);
    assert!(cost.contains("$0.0020"), "{cost}");
    assert_eq!(
        double.chats().pop().expect("the test message").body["model"],
        "double-mini"
    );
    assert!(
        !home.path().join(".omniclaw/omniclaw.json").exists(),
        "the test message wrote a config"
    );

    // The optional Telegram bot, checked against the Bot API double.
    web.click("#as-advanced summary");
    web.fill("[data-testid=as-api-root]", &api.url);
    web.fill("[data-testid=as-token]", BOT_TOKEN);
    web.click("[data-testid=as-check]");
    web.wait_contains("[data-testid=as-bot]", "@wizard_main_bot", PATIENCE);

    // Operators, checked as the CLI checks a user id: a bad one is named
    // and nothing is written.
    web.fill("[data-testid=as-operators]", "5005, @someone");
    web.click("[data-testid=as-finish]");
    let said = web.wait_contains(
        "[data-testid=as-error]",
        "is not a Telegram user id",
        PATIENCE,
    );
    assert!(
        said.contains("Operators") && said.contains("@someone"),
        "{said}"
    );
    assert!(!home.path().join(".omniclaw/omniclaw.json").exists());
    web.fill("[data-testid=as-operators]", "5005, 6006 5005");

    // Finish: the default profile runs with the model and its bot polls,
    // the key and the bot token in the keychain and in no file.
    web.click("[data-testid=as-finish]");
    let done = wait_finished(&web);
    assert!(done.contains("openai/double-mini"), "{done}");
    assert!(done.contains("@wizard_main_bot"), "{done}");
    assert_eq!(
        files_containing(home.path(), BOT_TOKEN),
        Vec::<String>::new(),
        "the bot token is in a file"
    );
    assert!(done.contains("keychain"), "{done}");
    let config = home.read(".omniclaw/omniclaw.json");
    assert!(config.contains("openai/double-mini"), "{config}");
    // The operators may use the bot; nobody else gets past the allowlist.
    let telegram = cli(&home, &session, &["config", "get", "channels.telegram"]);
    let telegram: serde_json::Value =
        serde_json::from_str(telegram.stdout.trim()).expect("channels.telegram");
    assert_eq!(telegram["allowFrom"], serde_json::json!([5005, 6006]));
    assert_eq!(telegram["dmPolicy"], "allowlist");
    assert_eq!(key_status(&home, &session), "\"stored\": true");
    assert_eq!(
        files_containing(home.path(), API_KEY),
        Vec::<String>::new(),
        "the API key is in a file"
    );

    // The new gateway answers in the Chat page.
    chat_after_finish(&web, &double, "default");

    // A gateway without a model is offered the wizard on its card; one
    // with a model is not.
    let work = free_base(&[double.addr().port()]);
    cli(
        &home,
        &session,
        &[
            "--profile",
            "work",
            "--secrets-file",
            "setup",
            "--port",
            &work.to_string(),
        ],
    )
    .expect_code(0);
    web.click("#tab-gateways");
    web.wait_contains(
        "[data-testid=set-up-assistant-work]",
        "Set up assistant",
        PATIENCE,
    );
    assert!(
        web.text("[data-testid=set-up-assistant-default]").is_err(),
        "the main gateway has a model but is offered the wizard"
    );
    web.click("[data-testid=set-up-assistant-work]");
    wait_until("the wizard on profile work", || {
        web.script("return document.getElementById('page-assistant').hidden === false && document.getElementById('as-name').value === 'work'")
            == Ok(serde_json::Value::Bool(true))
    });
    web.wait_contains("[data-testid=as-plan]", "Profile work exists", PATIENCE);

    // Work runs from a terminal: Finish writes the file, the running
    // gateway applies it by itself, and the app starts no second one.
    let mut cmd = home.cmd();
    cmd.args(["--profile", "work", "gateway"])
        .env("DBUS_SESSION_BUS_ADDRESS", &session.bus);
    let terminal = GatewayProc::spawn(cmd).unwrap_or_else(|r| panic!("work did not start: {r:?}"));
    choose_openai(&web, &double);
    pick_and_test(&web, &double);
    web.click("[data-testid=as-finish]");
    let done = wait_finished(&web);
    assert!(done.contains("openai/double-mini"), "{done}");
    let status = cli(&home, &session, &["--profile", "work", "gateway", "status"]);
    let said = format!("{}{}", status.stdout, status.stderr);
    assert!(
        said.contains(&terminal.pid().to_string()) && !said.contains("embedded"),
        "work still runs from its terminal, and only there:\n{said}"
    );
    chat_after_finish(&web, &double, "work");
    drop(terminal);

    // "Set up assistant…" in the tray opens it too.
    web.click("#tab-gateways");
    session.wait_for("the assistant item", |t| t.has("Set up assistant…"));
    session.click_item("", "Set up assistant…");
    wait_until("the wizard from the tray", || {
        web.script("return document.getElementById('page-assistant').hidden === false")
            == Ok(serde_json::Value::Bool(true))
    });
}

#[test]
fn a_keychain_that_refuses_the_key_offers_the_profiles_private_file() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let double = provider(&rt);
    let session = Session::start();
    // A Secret Service that answers but stores nothing (no default
    // collection), as on a desktop that never made a login keyring.
    let _keyring = session.keyring_without_default();
    let home = Home::new();
    let web = session.dashboard(&home, &[double.addr().port()]);
    web.wait_contains("[data-testid=as-plan]", "New profile default", PATIENCE);
    // A port of its own: the first-start test plans the default one.
    let port = free_base(&[double.addr().port(), 18789]);
    web.fill("[data-testid=as-port]", &port.to_string());
    web.wait_contains("[data-testid=as-plan]", &port.to_string(), PATIENCE);
    choose_openai(&web, &double);
    pick_and_test(&web, &double);

    // Finish: refused by the keychain, said why and where the file would
    // be, nothing written, the file one click away.
    web.click("[data-testid=as-finish]");
    let said = web.wait_contains(
        "[data-testid=as-error]",
        "The keychain did not keep the secrets",
        Duration::from_secs(60),
    );
    assert!(
        said.contains("~/.omniclaw/secrets.json") && said.contains("0600"),
        "where and how private the file is: {said}"
    );
    assert!(
        !said.contains("--secrets-file"),
        "a button, not a command: {said}"
    );
    assert!(
        !home.path().join(".omniclaw/omniclaw.json").exists(),
        "nothing written"
    );
    web.click("[data-testid=as-use-file]");
    let done = wait_finished(&web);
    assert!(done.contains("secrets file"), "{done}");
    let file = home.path().join(".omniclaw/secrets.json");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&file)
            .expect("the secrets file")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "private to the user");
    assert_eq!(
        files_containing(home.path(), API_KEY),
        vec![file.display().to_string()],
        "the key is in the private file and nowhere else"
    );
    chat_after_finish(&web, &double, "default");
}
