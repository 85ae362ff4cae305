//! Gateways embedded in the desktop app behave like the ones `omniclaw
//! gateway` runs: the CLI starts, stops and restarts them through the app's
//! control socket (so the tray follows), edits of their config hot-apply or
//! move them, their lines land in their own profile's log files, and an
//! embedded rescue gateway runs its Telegram channel and can stop an
//! embedded `main`.
//!
//! The real `omniclaw-desktop` in a private D-Bus session and X display,
//! its tray read and clicked over D-Bus; a temporary home whose profiles
//! keep their secrets in secrets files (a bare test bus has no keychain).

use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

use omniclaw_tests::botapi::{onboard_rescue_at, BotApiDouble};
use omniclaw_tests::desktop::*;
use omniclaw_tests::Home;

const MAIN: &str = "main — ";

fn socket(home: &Home) -> PathBuf {
    home.path().join(".omniclaw").join("desktop.sock")
}

/// Clicks main's Start in the tray and waits until it serves embedded.
fn start_main_from_tray(session: &Session, port: u16) {
    session.wait_for("main stopped", |t| t.has(&label("main", "stopped", port)));
    session.click_item(MAIN, "Start");
    wait_until("main's base port to listen", || listening(port));
    session.wait_for("main running embedded", |t| {
        t.has(&label("main", "running · embedded", port))
    });
}

/// `startedMs` of main's runtime file, which the gateway writes anew on
/// every (re)start once it serves; `None` while there is none.
fn started_ms(home: &Home) -> Option<u64> {
    let text = std::fs::read_to_string(home.path().join(".omniclaw-main/gateway.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["startedMs"].as_u64()
}

/// Waits until `omniclaw --profile main logs` shows `fragment`; returns the output.
fn wait_logs(home: &Home, fragment: &str) -> String {
    let start = Instant::now();
    loop {
        let run = home.run(&["--profile", "main", "logs", "-n", "200"]);
        if run.stdout.contains(fragment) {
            return run.stdout.clone();
        }
        assert!(
            start.elapsed() < PATIENCE,
            "`omniclaw --profile main logs` never showed {fragment:?}:\n{}{}",
            run.stdout,
            run.stderr
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn quit(session: &Session, app: &mut Child) {
    session.click_item("", "Quit");
    let status = wait_exit(app, PATIENCE).expect("the app quits");
    assert!(status.success(), "quit: {status:?}");
}

#[test]
fn the_cli_stops_starts_and_restarts_a_gateway_the_app_runs() {
    let session = Session::start();
    let (home, main, _rescue) = two_profiles();
    let mut app = session.launch(&home);
    wait_until("the control socket", || socket(&home).exists());
    start_main_from_tray(&session, main);

    // `gateway stop` asks the app: the port is freed and the tray follows.
    home.run(&["--profile", "main", "gateway", "stop"])
        .expect_code(0)
        .expect_output("stopped profile main in the desktop app");
    wait_until("main's port to be freed", || !listening(main));
    session.wait_for("main stopped again", |t| {
        t.has(&label("main", "stopped", main))
    });
    home.run(&["--profile", "main", "gateway", "stop"])
        .expect_code(0)
        .expect_output("not running");

    // No service is installed: `gateway start` starts it inside the app.
    home.run(&["--profile", "main", "gateway", "start"])
        .expect_code(0)
        .expect_output("started profile main in the desktop app");
    wait_until("main's port to listen again", || listening(main));
    session.wait_for("main running embedded again", |t| {
        t.has(&label("main", "running · embedded", main))
    });
    let status = home.run(&["--profile", "main", "gateway", "status"]);
    assert!(
        status.stdout.contains("embedded") || status.stderr.contains("embedded"),
        "the CLI-started gateway runs in the app:\n{}{}",
        status.stdout,
        status.stderr
    );

    // `gateway restart` restarts it in the app (a new start time), JSON too.
    wait_until("main's runtime file", || started_ms(&home).is_some());
    let before = started_ms(&home);
    let run = home.run(&["--profile", "main", "--json", "gateway", "restart"]);
    run.expect_code(0);
    let v = run.json();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["action"], "restart", "{v}");
    assert!(
        v["message"]
            .as_str()
            .is_some_and(|m| m.contains("restarted profile main in the desktop app")),
        "{v}"
    );
    wait_until("main's port to listen after the restart", || {
        listening(main)
    });
    wait_until(
        "the runtime file written anew by the restarted gateway",
        || started_ms(&home) > before,
    );
    session.wait_for("main running embedded after the restart", |t| {
        t.has(&label("main", "running · embedded", main))
    });

    // Quit removes the socket; the CLI then says what to do instead.
    quit(&session, &mut app.0);
    assert!(!socket(&home).exists(), "the socket is removed on quit");
    assert!(!listening(main), "quit stops embedded gateways");
    home.run(&["--profile", "main", "gateway", "start"])
        .expect_code(1)
        .expect_output("gateway install");
}

#[test]
fn a_killed_apps_socket_is_replaced_by_the_next_app() {
    let session = Session::start();
    let (home, main, _rescue) = two_profiles();
    let app = session.launch(&home);
    wait_until("the control socket", || socket(&home).exists());
    // SIGKILL: no chance to remove the socket file.
    drop(app);
    assert!(
        socket(&home).exists(),
        "a killed app leaves its socket file"
    );
    home.run(&["--profile", "main", "gateway", "start"])
        .expect_code(1)
        .expect_output("gateway install");

    let session = Session::start();
    let mut app = session.launch(&home);
    home.run(&["--profile", "main", "gateway", "start"])
        .expect_code(0)
        .expect_output("started profile main in the desktop app");
    wait_until("main's port to listen", || listening(main));
    quit(&session, &mut app.0);
}

#[test]
fn config_edits_hot_apply_or_move_the_embedded_gateway_and_it_logs_to_its_profile() {
    let session = Session::start();
    let (home, main, rescue) = two_profiles();
    let mut app = session.launch(&home);
    start_main_from_tray(&session, main);

    // Its lines are in main's own log files, which `logs` shows.
    wait_logs(&home, "gateway serving");
    assert!(
        logs_lack(&home, ".omniclaw-rescue/logs", "gateway serving"),
        "main's lines landed in rescue's logs"
    );

    // A hot key applies in place: same port, a line in main's log.
    home.config_set("main", "logging.level", "\"debug\"")
        .expect_code(0);
    wait_logs(&home, "config applied in place");
    assert!(listening(main), "a hot edit keeps the port");

    // An invalid edit is refused and main keeps serving.
    let config = ".omniclaw-main/omniclaw.json";
    let good = home.read(config);
    home.write(config, "{ gateway: { port: \"not a port\" } }\n");
    wait_logs(&home, "edit refused");
    assert!(listening(main), "an invalid edit keeps main serving");
    session.wait_for("main still running", |t| {
        t.has_prefix("main — running · embedded")
    });
    home.write(config, &good);

    // A port change restarts only main, on the new port.
    let moved = free_base(&[main, rescue]);
    home.config_set("main", "gateway.port", &moved.to_string())
        .expect_code(0);
    wait_until("main on its new port", || listening(moved));
    wait_until("main's old port to be freed", || !listening(main));
    session.wait_for("the tray shows the new port", |t| {
        t.has(&label("main", "running · embedded", moved))
    });
    wait_logs(&home, "gateway restarted with the new config");
    let status = home.run(&["--profile", "main", "--json", "status"]);
    assert!(
        status.stdout.contains(&moved.to_string()),
        "status follows the move:\n{}",
        status.stdout
    );
    quit(&session, &mut app.0);
}

/// Whether no log file under `rel` has a line containing `fragment`.
fn logs_lack(home: &Home, rel: &str, fragment: &str) -> bool {
    let dir = home.path().join(rel);
    std::fs::read_dir(dir)
        .map(|entries| {
            entries.filter_map(Result::ok).all(|e| {
                std::fs::read_to_string(e.path())
                    .map(|t| !t.contains(fragment))
                    .unwrap_or(true)
            })
        })
        .unwrap_or(true)
}

const TOKEN: &str = "987654321:AAHembedded-rescue-token_abcdefghij";
const OPERATOR: i64 = 4242;

#[test]
fn an_embedded_rescue_bot_answers_and_stops_an_embedded_main() {
    let api = BotApiDouble::start();
    api.add_bot(TOKEN, "embedded_rescue_bot");
    let session = Session::start();
    let home = Home::new();
    let main = free_base(&[]);
    let rescue = free_base(&[main]);
    home.run(&[
        "--profile",
        "main",
        "--secrets-file",
        "setup",
        "--port",
        &main.to_string(),
    ])
    .expect_code(0);
    let operator = OPERATOR.to_string();
    onboard_rescue_at(
        &home,
        &api,
        TOKEN,
        rescue,
        true,
        &["--allow-from", &operator, "--target", "main"],
    );
    // The watch (on since onboarding named a target) is not what this test
    // is about, and it counts the bot's messages.
    home.config_set("rescue", "rescue.watch.enabled", "false")
        .expect_code(0);

    let mut app = session.launch(&home);
    start_main_from_tray(&session, main);
    session.wait_for("rescue stopped", |t| {
        t.has(&label("rescue", "stopped", rescue))
    });
    session.click_item("rescue — ", "Start");
    wait_until("rescue's port to listen", || listening(rescue));

    // The embedded rescue gateway polls: it answers /status.
    let id = api.push_message(OPERATOR, "/status");
    let reply = api.wait_reply(id, PATIENCE);
    assert!(reply.text.contains("main"), "{}", reply.text);

    // /stop main reaches the app through the CLI and its socket.
    let before = api.sent().len();
    let id = api.push_message(OPERATOR, "/stop main");
    let question = api.wait_reply(id, PATIENCE);
    assert!(question.text.contains("Confirm"), "{}", question.text);
    let yes = question
        .buttons
        .iter()
        .find(|(l, _)| l.starts_with("Yes"))
        .expect("a Yes button")
        .1
        .clone();
    api.push_callback(OPERATOR, &yes);
    let sent = api.wait_sent(PATIENCE, "the result of /stop main", |s| {
        s.len() >= before + 2
    });
    let result = &sent[before + 1].text;
    assert!(
        result.contains("stopped profile main in the desktop app"),
        "{result}"
    );
    wait_until("main's port to be freed", || !listening(main));
    session.wait_for("main stopped in the tray", |t| {
        t.has(&label("main", "stopped", main))
    });
    assert!(listening(rescue), "the rescue gateway keeps running");
    quit(&session, &mut app.0);
}
