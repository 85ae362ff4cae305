//! What people read: `health`, `status` and `gateway status` say in lines
//! what a gateway does (never a raw JSON payload), a refused edit by its
//! key, line and column, one profile when one is given, and exit 1 while a
//! channel does not poll.
//!
//! The profiles keep their secrets in their 0600 files (set up with no
//! session bus), so no keychain is needed.

use std::time::{Duration, Instant};

use omniclaw_tests::botapi::{onboard_rescue_at, BotApiDouble};
use omniclaw_tests::{free_base, GatewayProc, Home, Run};

const NO_BUS: (&str, &str) = (
    "DBUS_SESSION_BUS_ADDRESS",
    "unix:path=/nonexistent/omniclaw-no-bus",
);

const TOKEN: &str = "777777777:AAHoutput-token-for-tests_abcdefghij";

/// `--profile PROFILE setup`, secrets in the file; returns the base port
/// setup chose (a slot clear of other profiles and of held ports).
fn setup(home: &Home, profile: &str) -> u16 {
    let run = home.run_env(&["--profile", profile, "--json", "setup"], &[NO_BUS]);
    run.expect_code(0);
    let port = run.json()["port"].as_u64().expect("port");
    u16::try_from(port).expect("a port")
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    wait_for(what, Duration::from_secs(20), &mut cond);
}

fn wait_for(what: &str, within: Duration, cond: &mut dyn FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Asserts that a run printed no JSON object.
fn no_raw_json(what: &str, run: &Run) {
    for (stream, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        assert!(
            !text.contains("{\""),
            "`{what}` printed raw JSON on {stream}:\n{text}"
        );
    }
}

#[test]
fn a_refused_edit_is_said_in_words_naming_its_key() {
    let home = Home::new();
    let port = setup(&home, "main");
    setup(&home, "rescue");
    let _gw = GatewayProc::start(&home, &["--profile", "main", "gateway"]);
    home.run(&["--profile", "main", "health"])
        .expect_code(0)
        .expect_output("healthy (");

    // An edit by hand that does not validate.
    let config = home.read(".omniclaw-main/omniclaw.json");
    let broken = config.replace(&format!("\"port\": {port}"), "\"port\": \"x\"");
    assert_ne!(config, broken, "the config names its port:\n{config}");
    home.write(".omniclaw-main/omniclaw.json", &broken);
    wait_until("the gateway to refuse the edit", || {
        home.run(&["--profile", "main", "health", "--json"]).json()["health"]["reload"]["lastError"]
            .is_string()
    });
    // The key as `config validate` names it: `gateway.port: … (line:col)`.
    let validate = home.run(&["--profile", "main", "config", "validate"]);
    let key = validate
        .stdout
        .lines()
        .chain(validate.stderr.lines())
        .map(str::trim)
        .find(|l| l.starts_with("gateway.port: "))
        .unwrap_or_else(|| panic!("no gateway.port line: {validate:?}"))
        .to_string();
    assert!(key.ends_with(')') && key.contains(":"), "{key}");

    let health = home.run(&["--profile", "main", "health"]);
    health
        .expect_code(0)
        .expect_output("healthy, serving the last good config; an edit was refused")
        .expect_output(&format!("edit refused     {key}"))
        .expect_output("reload           hybrid, last applied")
        .expect_output(&format!("gateway          127.0.0.1:{port} listening"));
    assert!(
        health.stdout.starts_with("! gateway of profile main"),
        "{}",
        health.stdout
    );

    let status = home.run(&["status"]);
    status
        .expect_code(1)
        .expect_output(&format!(
            "main  running on the last good config; edit refused: {key}"
        ))
        .expect_output("fix: correct the key in ~/.omniclaw-main/omniclaw.json");
    assert!(status.stdout.contains("rescue"), "{}", status.stdout);
    let json = home.run(&["--json", "status"]).json();
    let main = json["profiles"]
        .as_array()
        .and_then(|all| all.iter().find(|p| p["profile"] == "main"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(main["configErrors"][0]["path"], "gateway.port", "{json}");

    let gateway_status = home.run(&["--profile", "main", "gateway", "status"]);
    gateway_status
        .expect_output("rpc           ok, healthy, serving the last good config")
        .expect_output(&format!("edit refused  {key}"));

    for (what, run) in [
        ("health", &health),
        ("status", &status),
        ("gateway status", &gateway_status),
        (
            "--profile main status",
            &home.run(&["--profile", "main", "status"]),
        ),
        ("ports", &home.run(&["ports"])),
        ("doctor", &home.run(&["doctor"])),
    ] {
        no_raw_json(what, run);
    }
}

#[test]
fn status_of_one_profile_shows_that_profile() {
    let home = Home::new();
    setup(&home, "main");
    setup(&home, "rescue");
    let one = home.run(&["--profile", "rescue", "status"]);
    one.expect_code(0).expect_output("rescue");
    assert!(
        !one.stdout.contains("~/.omniclaw-main"),
        "main shown:\n{}",
        one.stdout
    );
    let json = home
        .run(&["--profile", "rescue", "status", "--json"])
        .json();
    let names: Vec<&str> = json["profiles"]
        .as_array()
        .expect("profiles")
        .iter()
        .filter_map(|p| p["profile"].as_str())
        .collect();
    assert_eq!(names, ["rescue"]);
    let all = home.run(&["status"]);
    all.expect_code(0)
        .expect_output("~/.omniclaw-main")
        .expect_output("~/.omniclaw-rescue");
    home.run(&["--profile", "nobody", "status"])
        .expect_code(1)
        .expect_output(
            "profile nobody is not set up: `omniclaw --profile nobody setup` sets it up",
        );
}

#[test]
fn status_exits_1_while_a_channel_is_offline() {
    let api = BotApiDouble::start();
    api.add_bot(TOKEN, "output_rescue_bot");
    let home = Home::new();
    onboard_rescue_at(
        &home,
        &api,
        TOKEN,
        free_base(),
        true,
        &["--allow-from", "42"],
    );
    let _gw = GatewayProc::start(&home, &["--profile", "rescue", "gateway"]);
    wait_until("the bot to poll", || {
        let status = home.run(&["--profile", "rescue", "status"]);
        status.code == 0 && status.stdout.contains("Telegram running")
    });
    home.run(&["--profile", "rescue", "status"])
        .expect_output("Telegram running as @output_rescue_bot");

    api.set_down(true);
    // The poller notices at the end of its long poll.
    wait_for(
        "status to see the channel offline",
        Duration::from_secs(45),
        &mut || home.run(&["--profile", "rescue", "status"]).code == 1,
    );
    let status = home.run(&["--profile", "rescue", "status"]);
    status
        .expect_code(1)
        .expect_output("rescue  Telegram offline")
        .expect_output("`omniclaw --profile rescue logs` shows each attempt");
    no_raw_json("status", &status);
    assert!(!home
        .run(&["--profile", "rescue", "status", "--json"])
        .json()["ok"]
        .as_bool()
        .unwrap_or(true));

    api.set_down(false);
    wait_for(
        "the bot to poll again",
        Duration::from_secs(45),
        &mut || home.run(&["--profile", "rescue", "status"]).code == 0,
    );
}
