//! The dashboard's rescue-bot wizard end to end: the real `omniclaw-desktop`
//! driven over WebDriver in a private desktop session with its own
//! unlocked keychain, against the Telegram Bot API double. A cancel half-way
//! leaves nothing behind; a bad token is explained; the operator's `/start`
//! is shown; finishing stores the token in the keychain (and nowhere on
//! disk), writes the config, starts the gateway in the app and reports
//! success only once its health is green and its bot polls.

use std::time::{Duration, Instant};

use omniclaw_tests::botapi::BotApiDouble;
use omniclaw_tests::desktop::*;
use omniclaw_tests::{Home, Run};

const TOKEN: &str = "777777777:AAHwizard-token-for-tests_abcdefghijk";
const SPARE: &str = "888888888:AAHspare-token-for-tests_abcdefghijkl";
const UNKNOWN: &str = "999999999:AAHunknown-token-for-tests_abcdefghij";

/// `omniclaw ARGS` in `home`, on the session's bus (its keychain).
fn cli(home: &Home, session: &Session, args: &[&str]) -> Run {
    home.run_env(args, &[("DBUS_SESSION_BUS_ADDRESS", &session.bus)])
}

/// Waits until the finish step reports success, or panics with its error.
fn wait_finished(web: &WebDriver) -> String {
    let start = Instant::now();
    // Health may take up to the wizard's own bound (60 s) to go green.
    while start.elapsed() < Duration::from_secs(90) {
        let done = web.text("[data-testid=wz-done]").unwrap_or_default();
        if !done.is_empty() {
            return done;
        }
        let error = web.text("[data-testid=wz-error]").unwrap_or_default();
        assert!(
            error.is_empty(),
            "finishing failed: {error}\nprogress:\n{}",
            web.text("[data-testid=wz-progress]").unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "finishing never ended; progress:\n{}",
        web.text("[data-testid=wz-progress]").unwrap_or_default()
    );
}

#[test]
fn the_wizard_sets_up_a_rescue_bot_and_a_cancel_leaves_nothing() {
    let session = Session::start();
    let _keyring = session.keyring();
    let api = BotApiDouble::start();
    api.add_bot(TOKEN, "wizard_rescue_bot");
    api.add_bot(SPARE, "spare_bot");
    let home = Home::new();
    let main = free_base(&[]);
    cli(
        &home,
        &session,
        &[
            "--profile",
            "main",
            "--secrets-file",
            "setup",
            "--port",
            &main.to_string(),
        ],
    )
    .expect_code(0);
    let rescue = free_base(&[main]);
    let web = session.dashboard(&home, &[main, rescue]);
    web.click("#tab-setup");

    // A cancel half-way, while the wizard waits for the operator: no
    // profile dir, no keychain entry.
    web.fill("#wz-name", "spare");
    web.wait_contains(
        "[data-testid=wz-plan]",
        "No conflicts: profile spare",
        PATIENCE,
    );
    web.click("[data-testid=wz-next]");
    web.click("#wz-advanced summary");
    web.fill("#wz-api-root", &api.url);
    web.fill("[data-testid=wz-token]", SPARE);
    web.click("[data-testid=wz-check]");
    web.wait_contains("[data-testid=wz-bot]", "@spare_bot", PATIENCE);
    web.click("[data-testid=wz-next]");
    web.wait_contains(
        "[data-testid=wz-wait]",
        "Waiting for your /start to @spare_bot",
        PATIENCE,
    );
    web.click("[data-testid=wz-cancel]");
    web.wait_contains("#wz-steps [aria-current=step]", "Profile", PATIENCE);
    assert!(
        !home.path().join(".omniclaw-spare").exists(),
        "a cancelled wizard left the profile dir behind"
    );
    let status = cli(
        &home,
        &session,
        &[
            "--profile",
            "spare",
            "secrets",
            "status",
            "channels.telegram.botToken",
            "--json",
        ],
    );
    assert!(
        status.stdout.contains("\"stored\": false"),
        "a cancelled wizard left the token in the keychain:\n{}",
        status.stdout
    );
    assert!(
        !home.path().join(".omniclaw-spare").exists(),
        "asking about the profile created it"
    );

    // Step 1: the ports are planned live: main's port collides, a free one does not.
    web.fill("#wz-name", "rescue");
    web.fill("#wz-port", &(main + 2).to_string());
    let plan = web.wait_contains("[data-testid=wz-plan]", "taken", PATIENCE);
    assert!(plan.contains("collides"), "{plan}");
    web.wait_contains("[data-testid=wz-use-free]", "Use the free port", PATIENCE);
    web.fill("#wz-port", &rescue.to_string());
    let plan = web.wait_contains(
        "[data-testid=wz-plan]",
        "No conflicts: profile rescue",
        PATIENCE,
    );
    for derived in [rescue + 2, rescue + 4] {
        assert!(
            plan.contains(&derived.to_string()),
            "derived port {derived} missing:\n{plan}"
        );
    }
    web.click("[data-testid=wz-next]");

    // Step 2: no network, a malformed token, then one Telegram refuses: each
    // is explained.
    let dead = free_base(&[&[main, rescue][..], &web.driver_ports].concat());
    web.fill("#wz-api-root", &format!("http://127.0.0.1:{dead}"));
    web.fill("[data-testid=wz-token]", TOKEN);
    web.click("[data-testid=wz-check]");
    let offline = web.wait_contains("[data-testid=wz-error]", "Can't reach Telegram", PATIENCE);
    assert_eq!(
        offline,
        format!("Can't reach Telegram (127.0.0.1:{dead} refused the connection): check the network, or enter your own Bot API server below")
    );
    web.fill("#wz-api-root", &api.url);
    web.fill("[data-testid=wz-token]", "12345:nope");
    web.click("[data-testid=wz-check]");
    web.wait_contains("[data-testid=wz-error]", "not a bot token", PATIENCE);
    web.fill("[data-testid=wz-token]", UNKNOWN);
    web.click("[data-testid=wz-check]");
    web.wait_contains("[data-testid=wz-error]", "401", PATIENCE);
    web.fill("[data-testid=wz-token]", TOKEN);
    web.click("[data-testid=wz-check]");
    web.wait_contains("[data-testid=wz-bot]", "@wizard_rescue_bot", PATIENCE);
    web.click("[data-testid=wz-next]");

    // Step 3: the wizard waits, then shows who wrote.
    web.wait_contains(
        "[data-testid=wz-wait]",
        "Waiting for your /start to @wizard_rescue_bot",
        PATIENCE,
    );
    api.push_message(31337, "/start");
    let who = web.wait_contains("[data-testid=wz-who]", "user31337", PATIENCE);
    assert!(who.contains("31337"), "{who}");
    web.click("[data-testid=wz-me]");

    // Step 4: every other profile is offered, all chosen; the watch may
    // also roll back.
    let targets = web.wait_contains("[data-testid=wz-targets]", "main", PATIENCE);
    assert!(!targets.contains("rescue"), "{targets}");
    web.click("[data-testid=wz-rollback]");
    web.click("[data-testid=wz-next]");

    // Step 5: finish; success only once health is green.
    let summary = web.wait_contains("[data-testid=wz-summary]", "@wizard_rescue_bot", PATIENCE);
    assert!(summary.contains("31337"), "{summary}");
    // A port taken since step 1 is explained at finish, and nothing is written.
    let squatter = std::net::TcpListener::bind(("127.0.0.1", rescue)).expect("take the port");
    web.click("[data-testid=wz-next]");
    let taken = web.wait_contains("[data-testid=wz-error]", "in use", PATIENCE);
    assert!(
        taken.contains(&rescue.to_string()) && taken.contains("fix"),
        "{taken}"
    );
    assert!(!home.path().join(".omniclaw-rescue").exists());
    drop(squatter);
    web.click("[data-testid=wz-next]");
    let done = wait_finished(&web);
    assert!(done.contains("@wizard_rescue_bot"), "{done}");
    let progress = web.eventually_text("[data-testid=wz-progress]");
    assert!(progress.contains("polls"), "{progress}");

    // The gateway runs, healthy, with its bot polling the double.
    assert!(
        listening(rescue),
        "the rescue gateway does not listen on {rescue}"
    );
    cli(&home, &session, &["--profile", "rescue", "health"]).expect_code(0);
    assert!(api.calls("getUpdates") >= 2);
    // The token is in the keychain and in no file under the home.
    let status = cli(
        &home,
        &session,
        &[
            "--profile",
            "rescue",
            "secrets",
            "status",
            "channels.telegram.botToken",
            "--json",
        ],
    );
    assert!(
        status.stdout.contains("\"stored\": true") && status.stdout.contains("keychain"),
        "{}",
        status.stdout
    );
    assert!(!status.stdout.contains(TOKEN));
    assert!(!home.all_text().contains(TOKEN), "the token reached a file");
    let config = home.read(".omniclaw-rescue/omniclaw.json");
    assert!(
        config.contains("31337") && config.contains("allowlist") && config.contains(&api.url),
        "{config}"
    );
    let settings = home.read(".omniclaw/desktop.json");
    assert!(
        settings.contains("rescue"),
        "start with the app: {settings}"
    );
    // Every other profile chosen: no target named, the watch on for all
    // of them, rollback allowed as ticked.
    let get = |key: &str| {
        cli(
            &home,
            &session,
            &["--profile", "rescue", "config", "get", key],
        )
    };
    assert_eq!(get("rescue.watch.enabled").stdout.trim(), "true");
    let actions = get("rescue.watch.actions").stdout;
    assert!(
        actions.contains("restart") && actions.contains("rollback"),
        "{actions}"
    );
    assert!(!config.contains("targets"), "{config}");
    let start = std::time::Instant::now();
    loop {
        let status = cli(&home, &session, &["status"]).stdout;
        if status.contains("watch: main — ") {
            break;
        }
        assert!(start.elapsed() < PATIENCE, "main is not watched:\n{status}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// Opens the wizard of a home without profiles and goes on to the token
/// step with `api_root` as the Bot API server.
fn at_token_step(web: &WebDriver, api_root: &str) {
    web.click("#tab-setup");
    web.wait_contains(
        "[data-testid=wz-plan]",
        "No conflicts: profile rescue",
        PATIENCE,
    );
    web.click("[data-testid=wz-next]");
    web.click("#wz-advanced summary");
    web.fill("#wz-api-root", api_root);
}

#[test]
fn an_unreachable_telegram_is_said_plainly_and_the_user_can_go_back() {
    let session = Session::start();
    let home = Home::new();
    let web = session.dashboard(&home, &[]);
    // `.invalid` never resolves: the lookup fails as it does offline.
    at_token_step(&web, "http://api.telegram.invalid");
    web.script("document.getElementById('wz-advanced').open = false; return true;")
        .expect("close the advanced section");
    web.fill("[data-testid=wz-token]", TOKEN);
    web.click("[data-testid=wz-check]");
    let said = web.wait_contains(
        "[data-testid=wz-error]",
        "Can't reach Telegram",
        Duration::from_secs(60),
    );
    assert_eq!(
        said,
        "Can't reach Telegram (DNS lookup for api.telegram.invalid failed): check the network, or enter your own Bot API server below"
    );
    // The field it points at is open and ready.
    assert_eq!(
        web.property("#wz-advanced", "open"),
        Ok(serde_json::json!(true)),
        "the Bot API server field is offered"
    );
    // And the way back works.
    web.click("[data-testid=wz-back]");
    web.wait_contains("#wz-steps [aria-current=step]", "Profile", PATIENCE);
    assert!(!home.path().join(".omniclaw-rescue").exists());
}

#[test]
fn the_first_step_follows_the_profiles_and_offers_one_way_out() {
    let session = Session::start();
    let home = Home::new();
    // The manual's layout: the main bot on the default profile.
    let main = free_base(&[]);
    home.run(&["--secrets-file", "setup", "--port", &main.to_string()])
        .expect_code(0);
    let web = session.dashboard(&home, &[main]);
    web.click("#tab-setup");
    let plan = web.wait_contains(
        "[data-testid=wz-plan]",
        "No conflicts: profile rescue",
        PATIENCE,
    );
    assert_eq!(
        web.property("#wz-name", "value"),
        Ok(serde_json::json!("rescue")),
        "the rescue bot is suggested the profile rescue"
    );
    assert!(
        !plan.contains("false"),
        "a stray literal in the plan:\n{plan}"
    );

    // Set up elsewhere while the wizard is open: the step follows.
    home.run(&["--profile", "rescue", "--secrets-file", "setup"])
        .expect_code(0);
    web.wait_contains("[data-testid=wz-plan]", "Profile rescue exists", PATIENCE);

    // A base in main's ranges: the conflicts are named, one free port offered.
    web.fill("#wz-port", &(main + 2).to_string());
    let plan = web.wait_contains("[data-testid=wz-plan]", "taken", PATIENCE);
    let offer = web.eventually_text("[data-testid=wz-use-free]");
    let suggested: String = offer.chars().filter(char::is_ascii_digit).collect();
    assert!(
        offer.starts_with("Use the free port ") && !suggested.is_empty(),
        "{offer}"
    );
    assert!(
        !plan.contains(&suggested),
        "the free port is offered once, by its button:\n{plan}\n{offer}"
    );

    // A wrong entry, then the way out: the free port fills in and fits.
    web.fill("#wz-port", "80");
    web.wait_contains("[data-testid=wz-plan]", "1024 to 65535", PATIENCE);
    web.click("[data-testid=wz-use-free]");
    web.wait_contains(
        "[data-testid=wz-plan]",
        "No conflicts: profile rescue",
        PATIENCE,
    );
    assert_eq!(
        web.property("#wz-port", "value"),
        Ok(serde_json::json!(suggested))
    );
}

#[test]
fn a_keychain_without_a_default_collection_offers_a_private_file() {
    let session = Session::start();
    let _keyring = session.keyring_without_default();
    let api = BotApiDouble::start();
    api.add_bot(TOKEN, "wizard_rescue_bot");
    let home = Home::new();
    let web = session.dashboard(&home, &[]);
    at_token_step(&web, &api.url);
    web.fill("[data-testid=wz-token]", TOKEN);
    web.click("[data-testid=wz-check]");
    web.wait_contains("[data-testid=wz-bot]", "@wizard_rescue_bot", PATIENCE);
    web.click("[data-testid=wz-next]");
    web.click("[data-testid=wz-skip]");
    web.click("[data-testid=wz-next]");
    web.wait_contains("[data-testid=wz-summary]", "@wizard_rescue_bot", PATIENCE);
    web.click("[data-testid=wz-next]");
    let said = web.wait_contains(
        "[data-testid=wz-error]",
        "The keychain did not keep the secrets",
        Duration::from_secs(60),
    );
    assert!(
        !said.contains("--secrets-file") && !said.contains("secrets move"),
        "a button, not a command: {said}"
    );
    assert!(
        !home.path().join(".omniclaw-rescue").exists(),
        "nothing written"
    );
    web.click("[data-testid=wz-use-file]");
    let done = wait_finished(&web);
    assert!(done.contains("secrets file"), "{done}");
    assert!(home.path().join(".omniclaw-rescue/secrets.json").is_file());
    let status = cli(
        &home,
        &session,
        &["--profile", "rescue", "secrets", "status", "--json"],
    );
    assert!(status.stdout.contains("file"), "{}", status.stdout);
}
