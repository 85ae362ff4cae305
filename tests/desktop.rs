//! The desktop app end to end: the real `omniclaw-desktop` in a private
//! D-Bus session and X display, its tray read and clicked over D-Bus
//! (`com.canonical.dbusmenu` `GetLayout` / `Event`) the way a desktop's tray
//! host does it, with a temporary home holding a `main` and a `rescue`
//! profile. Each test owns its bus, so single-instance checks and tray
//! registrations never meet another test's app.

use std::net::TcpListener;
use std::process::Stdio;
use std::time::{Duration, Instant};

use omniclaw_tests::desktop::*;

#[test]
fn tray_shows_starts_warns_and_quits() {
    let session = Session::start();
    let (home, main, rescue) = two_profiles();

    let started = Instant::now();
    let mut app = session.launch(&home);
    eprintln!(
        "cold start to tray registered on D-Bus: {:?}",
        started.elapsed()
    );

    // Every profile with its state and base port, and the fixed items.
    let tray = session.wait_for("both profiles stopped", |t| {
        t.has(&label("main", "stopped", main)) && t.has(&label("rescue", "stopped", rescue))
    });
    for fixed in [
        "Set up assistant…",
        "Set up rescue bot…",
        "Open dashboard",
        "Start at login",
        "Quit",
    ] {
        assert!(
            tray.has(fixed),
            "{fixed:?} missing:\n{}",
            tray.labels().join("\n")
        );
    }
    let main_prefix = "main — ";
    for (item, enabled) in [
        ("Start", true),
        ("Stop", false),
        ("Restart", false),
        ("Install as service", true),
        ("Open logs", true),
        ("Open config folder", true),
    ] {
        assert_eq!(tray.enabled(main_prefix, item), enabled, "main's {item}");
    }
    assert!(!tray.has_prefix("⚠"), "no warning while isolated");

    // Start main from the tray: its port listens and its label changes.
    session.click_item(main_prefix, "Start");
    wait_until("main's base port to listen", || listening(main));
    let tray = session.wait_for("main running embedded", |t| {
        t.has(&label("main", "running · embedded", main))
    });
    assert!(
        !tray.enabled(main_prefix, "Start"),
        "Start is disabled while running"
    );
    assert!(
        tray.enabled(main_prefix, "Stop"),
        "Stop is enabled while running"
    );
    // The CLI sees who runs it.
    let status = home.run(&["--profile", "main", "gateway", "status"]);
    assert!(
        status.stdout.contains("embedded") || status.stderr.contains("embedded"),
        "gateway status names the embedded owner:\n{}{}",
        status.stdout,
        status.stderr
    );
    // ... and a second start from the CLI is refused by the instance lock.
    home.run(&["--profile", "main", "gateway"])
        .expect_code(1)
        .expect_output("already running");

    // A gateway run from a terminal shows as external and is never started twice.
    let mut external = Proc(
        home.cmd()
            .args(["--profile", "rescue", "gateway"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rescue from the CLI"),
    );
    wait_until("rescue's port to listen", || listening(rescue));
    let tray = session.wait_for("rescue running external", |t| {
        t.has(&label("rescue", "running · external", rescue))
    });
    let rescue_prefix = "rescue — ";
    assert!(
        !tray.enabled(rescue_prefix, "Start"),
        "an external gateway cannot be started again"
    );
    assert!(
        !tray.enabled(rescue_prefix, "Stop"),
        "an external gateway is stopped where it runs"
    );
    let _ = external.0.kill();
    let _ = external.0.wait();
    session.wait_for("rescue stopped again", |t| {
        t.has(&label("rescue", "stopped", rescue))
    });

    // A second launch hands over to the first and exits.
    let mut second = session.desktop(&home).spawn().expect("start a second app");
    let status = wait_exit(&mut second, PATIENCE).expect("the second instance exits");
    assert!(
        status.success(),
        "second instance: {status:?} {}",
        stderr_of(&mut second)
    );
    assert!(
        app.0.try_wait().expect("try_wait").is_none(),
        "the first instance keeps running"
    );

    // Start at login, from the tray.
    let tray = session.layout().expect("layout");
    assert_eq!(
        tray.find("", "Start at login").expect("item")["toggleState"],
        0
    );
    session.click_item("", "Start at login");
    let entry = home.path().join(".config/autostart/OmniClaw.desktop");
    wait_until("the autostart entry", || entry.is_file());
    assert!(std::fs::read_to_string(&entry)
        .expect("entry")
        .contains("--hidden"));
    session.wait_for("Start at login checked", |t| {
        t.find("", "Start at login")
            .is_some_and(|i| i["toggleState"] == 1)
    });

    // Move rescue into main's CDP range: the warning appears.
    let clash = main + 20;
    // (`config set` refuses a conflict unless forced.)
    home.run(&[
        "--profile",
        "rescue",
        "config",
        "set",
        "gateway.port",
        &clash.to_string(),
        "--force",
    ])
    .expect_code(0);
    let tray = session.wait_for("the port conflict warning", |t| {
        t.has("⚠ Port conflict: rescue ↔ main — fix…")
    });
    assert!(tray.has(&label("rescue", "stopped", clash)));

    // Quit stops the embedded gateway and frees every one of its ports.
    session.click_item("", "Quit");
    let status = wait_exit(&mut app.0, PATIENCE).expect("the app quits");
    assert!(status.success(), "quit: {status:?}");
    for port in [main, main + 2, main + 4] {
        assert!(
            TcpListener::bind(("127.0.0.1", port)).is_ok(),
            "port {port} is free after Quit"
        );
    }
    stopped_on_purpose(&home, "main", "app-quit");
}

/// The stop of `profile`'s embedded gateway was recorded as on purpose,
/// `by` the path that stopped it, and its runtime file, marked stopped,
/// still names the app as its last owner (a rescue's watch reads both).
fn stopped_on_purpose(home: &omniclaw_tests::Home, profile: &str, by: &str) {
    let dir = format!(".omniclaw-{profile}");
    let intent: serde_json::Value =
        serde_json::from_str(&home.read(&format!("{dir}/stop-intent.json")))
            .expect("stop-intent.json is JSON");
    assert_eq!(intent["by"], by, "{intent}");
    assert_eq!(intent["owner"], "embedded", "{intent}");
    assert!(intent["pid"].as_u64().is_some(), "{intent}");
    let record: serde_json::Value =
        serde_json::from_str(&home.read(&format!("{dir}/gateway.json")))
            .expect("gateway.json is JSON");
    assert_eq!(record["owner"], "embedded", "{record}");
    assert_eq!(record["pid"], intent["pid"], "{record}");
    assert!(record["stoppedMs"].as_u64().is_some(), "{record}");
}

#[test]
fn marked_gateways_start_with_the_app_and_stay_single() {
    let session = Session::start();
    let (home, main, rescue) = two_profiles();
    home.write(".omniclaw/desktop.json", r#"{"startWithApp": ["rescue"]}"#);
    let notifications = session.notifications();

    let mut app = session.launch(&home);
    wait_until("rescue to listen", || listening(rescue));
    session.wait_for("rescue running embedded, main stopped", |t| {
        t.has(&label("rescue", "running · embedded", rescue))
            && t.has(&label("main", "stopped", main))
    });
    assert!(!listening(main), "main is not marked and stays stopped");

    // Stop from the tray frees the ports but keeps the app.
    session.click_item("rescue — ", "Stop");
    wait_until("rescue's port to close", || !listening(rescue));
    session.wait_for("rescue stopped", |t| {
        t.has(&label("rescue", "stopped", rescue))
    });
    stopped_on_purpose(&home, "rescue", "tray");
    // Nothing watches main now: the app says so.
    let told = notifications.wait_for("about the rescue stopping", |n| {
        n["summary"] == "Rescue gateway rescue stopped"
    });
    assert!(
        told["body"]
            .as_str()
            .is_some_and(|b| b.contains("Nothing watches or repairs its targets")),
        "{told}"
    );
    assert!(
        app.0.try_wait().expect("try_wait").is_none(),
        "the app keeps running"
    );
}

#[test]
fn a_failure_and_a_conflict_are_each_notified_once() {
    let session = Session::start();
    let notifications = session.notifications();
    let (home, main, rescue) = two_profiles();
    let _app = session.launch(&home);
    session.wait_for("both profiles stopped", |t| {
        t.has(&label("main", "stopped", main)) && t.has(&label("rescue", "stopped", rescue))
    });
    assert!(
        notifications.all().is_empty(),
        "nothing to tell yet: {:#?}",
        notifications.all()
    );

    // Another program holds main's port: starting main fails, once.
    let holder = TcpListener::bind(("127.0.0.1", main)).expect("hold main's port");
    session.click_item("main — ", "Start");
    let failed = notifications.wait_for("about main failing", |n| {
        n["summary"] == "Gateway main failed"
    });
    let body = failed["body"].as_str().unwrap_or_default();
    assert!(
        body.contains(&main.to_string()),
        "the reason names the port: {body}"
    );

    // A port conflict appears: one notification naming both profiles.
    home.run(&[
        "--profile",
        "rescue",
        "config",
        "set",
        "gateway.port",
        &main.to_string(),
        "--force",
    ])
    .expect_code(0);
    let conflict = notifications.wait_for("about the conflict", |n| {
        n["summary"] == "Isolation problem"
    });
    let body = conflict["body"].as_str().unwrap_or_default();
    assert!(
        body.contains("rescue") && body.contains("main"),
        "the conflict names both profiles: {body}"
    );

    // While both last, nothing is repeated (several refreshes pass).
    std::thread::sleep(Duration::from_secs(3));
    let all = notifications.all();
    for n in &all {
        let same = all.iter().filter(|m| *m == n).count();
        assert_eq!(same, 1, "{n} was shown {same} times: {all:#?}");
    }
    drop(holder);
}

/// The app's WebKit helpers (its web and network processes); other
/// children, such as the `omniclaw --version` the app reads the CLI's
/// version with, are not web helpers.
fn web_helpers(pid: u32) -> Vec<String> {
    children_of(pid)
        .into_iter()
        .filter(|c| c.starts_with("WebKit"))
        .collect()
}

#[test]
fn a_closed_dashboard_ends_its_web_helpers_and_opens_again() {
    let session = Session::start();
    let (home, main, _rescue) = two_profiles();
    let app = session.launch(&home);
    let pid = app.0.id();
    session.wait_for("the menu", |t| t.has("Open dashboard"));
    assert!(
        web_helpers(pid).is_empty(),
        "no web view before the dashboard opens: {:?}",
        children_of(pid)
    );

    session.click_item("", "Open dashboard");
    wait_until("the dashboard window", || {
        session.dashboard_window().is_some()
    });
    wait_until("the web view's network process", || {
        children_of(pid)
            .iter()
            .any(|c| c.starts_with("WebKitNetwork"))
    });
    let window = session.dashboard_window().expect("the window");
    session.close_window(&window);
    wait_until("the window to go", || session.dashboard_window().is_none());
    // Closed: every web helper ends, the app and its tray stay.
    wait_until("the web helpers to end", || web_helpers(pid).is_empty());
    assert!(
        session
            .layout()
            .is_ok_and(|t| t.has(&label("main", "stopped", main))),
        "the tray keeps working"
    );

    // Open again: WebKit starts its helpers anew and the page loads.
    session.click_item("", "Open dashboard");
    wait_until("the dashboard window again", || {
        session.dashboard_window().is_some()
    });
    wait_until("a new web view with its network process", || {
        let children = children_of(pid);
        children.iter().any(|c| c.starts_with("WebKitNetwork"))
            && children.iter().any(|c| c.starts_with("WebKitWeb"))
    });
    drop(app);
}

#[test]
fn a_broken_config_shows_as_such_and_cannot_start() {
    let session = Session::start();
    let (home, main, _rescue) = two_profiles();
    let config = home.path().join(".omniclaw-main/omniclaw.json");
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(&config, text.replace("\"bind\"", "\"bnid\"")).expect("break config");

    let _app = session.launch(&home);
    let tray = session.wait_for("main with an invalid config", |t| {
        t.has(&label("main", "stopped (config invalid)", main))
    });
    assert!(
        !tray.enabled("main — ", "Start"),
        "an invalid config cannot start"
    );
    assert!(
        !tray.enabled("main — ", "Install as service"),
        "an invalid config is not installed as a service"
    );
    assert!(tray.enabled("rescue — ", "Start"), "rescue is not affected");
    // Fixing the file by hand brings Start back without restarting the app.
    std::fs::write(&config, text).expect("repair config");
    let tray = session.wait_for("main startable again", |t| {
        t.has(&label("main", "stopped", main))
    });
    assert!(tray.enabled("main — ", "Start"));
}

#[test]
fn dashboard_cards_show_state_and_buttons_start_and_stop() {
    let session = Session::start();
    let (home, main, rescue) = two_profiles();
    let web = session.dashboard(&home, &[main, rescue]);

    // The cards show each gateway's state, port and where its secrets live.
    web.wait_text("[data-testid=state-main]", "Stopped");
    web.wait_text("[data-testid=secrets-main]", "0600 file");
    web.wait_text("[data-testid=state-rescue]", "Stopped");
    let card = web.eventually_text("[data-testid=card-main]");
    assert!(
        card.contains(&main.to_string()),
        "main's card shows its port:\n{card}"
    );
    assert!(
        card.contains("~/.omniclaw-main/omniclaw.json")
            && !card.contains(&home.path().display().to_string()),
        "main's card shows its config path under ~:\n{card}"
    );

    // Start from the card: the port listens and the card says who runs it.
    web.click("[data-testid=start-main]");
    wait_until("main's port to listen", || listening(main));
    web.wait_text("[data-testid=state-main]", "Running · embedded");

    // Stop from the card: the port is freed.
    web.click("[data-testid=stop-main]");
    wait_until("main's port to close", || !listening(main));
    web.wait_text("[data-testid=state-main]", "Stopped");
    stopped_on_purpose(&home, "main", "dashboard");
    // Starting it again forgets the stop.
    web.click("[data-testid=start-main]");
    web.wait_text("[data-testid=state-main]", "Running · embedded");
    wait_until("the stop forgotten", || {
        !home.path().join(".omniclaw-main/stop-intent.json").exists()
    });
    web.click("[data-testid=stop-main]");
    web.wait_text("[data-testid=state-main]", "Stopped");

    // A conflict shows on the port map with its fix one click away.
    let clash = main + 20;
    home.run(&[
        "--profile",
        "rescue",
        "config",
        "set",
        "gateway.port",
        &clash.to_string(),
        "--force",
    ])
    .expect_code(0);
    web.click("#tab-ports");
    web.click("[data-testid=fix-rescue]");
    let start = Instant::now();
    // What the app said about the click, for a failure's message: an error
    // toast shows for 10 s only.
    let mut said = String::new();
    let moved = loop {
        let port = home.run(&["--profile", "rescue", "config", "get", "gateway.port"]);
        let port: u16 = port.stdout.trim().parse().unwrap_or(clash);
        if port != clash || start.elapsed() > PATIENCE {
            break port;
        }
        if let Ok(serde_json::Value::String(text)) =
            web.script("return document.getElementById('toast').textContent")
        {
            if !text.is_empty() {
                said = text;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        moved.abs_diff(main) >= 111,
        "rescue moved clear of main {main}: {moved}; the app said: {said:?}"
    );
    let start = Instant::now();
    let mut text = web.eventually_text("[data-testid=conflicts]");
    while start.elapsed() < PATIENCE && !text.contains("No conflicts") {
        std::thread::sleep(Duration::from_millis(100));
        text = web.eventually_text("[data-testid=conflicts]");
    }
    assert!(
        text.contains("No conflicts"),
        "port map after the fix:\n{text}"
    );
    assert!(
        home.path()
            .join(".omniclaw-rescue/omniclaw.json.bak")
            .is_file(),
        "the previous config is kept"
    );
}

/// The pairing code in a bot reply: the one word of 8 capitals and digits.
fn pairing_code_in(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .find(|w| {
            w.len() == 8
                && w.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        })
        .unwrap_or_else(|| panic!("no pairing code in {text:?}"))
        .to_string()
}

#[test]
fn pairing_requests_are_told_once_and_decided_from_the_tray_and_the_dashboard() {
    use omniclaw_tests::botapi::{onboard_rescue_at, BotApiDouble};
    const TOKEN: &str = "555666777:AAHpairing-desktop-token_abcdefghijk";
    let (first, second): (i64, i64) = (5005, 6006);
    let api = BotApiDouble::start();
    api.add_bot(TOKEN, "pairing_desktop_bot");
    let session = Session::start();
    let notifications = session.notifications();
    let home = omniclaw_tests::Home::new();
    let rescue = free_base(&[]);
    // No allowlist: strangers get pairing codes (`dmPolicy: pairing`).
    onboard_rescue_at(&home, &api, TOKEN, rescue, true, &[]);

    let mut app = session.launch(&home);
    let tray = session.wait_for("rescue stopped", |t| {
        t.has(&label("rescue", "stopped", rescue))
    });
    assert!(!tray.has_prefix("Pairing requests"), "nobody waits yet");
    session.click_item("rescue — ", "Start");
    wait_until("rescue's port to listen", || listening(rescue));

    // Two strangers write to the embedded rescue bot: each gets a code.
    let asked = api.push_message(first, "/status");
    let code = pairing_code_in(&api.wait_reply(asked, PATIENCE).text);
    let asked = api.push_message(second, "hello");
    let second_code = pairing_code_in(&api.wait_reply(asked, PATIENCE).text);

    // The tray lists both with Approve and Deny; each is notified once.
    let approve = format!("Approve @user{first} ({code})");
    let tray = session.wait_for("both pairing requests", |t| {
        t.has("Pairing requests (2)") && t.has(&approve)
    });
    assert!(
        tray.has_prefix(&format!("@user{first} on rescue — user {first}, ")),
        "the request says who and where:\n{}",
        tray.labels().join("\n")
    );
    assert!(tray.has(&format!("Deny @user{second} ({second_code})")));
    let told = notifications.wait_for("about the first request", |n| {
        n["summary"] == format!("rescue: @user{first} asks for access")
    });
    assert!(
        told["body"].as_str().unwrap_or_default().contains(&code),
        "the notification names the code: {told}"
    );
    notifications.wait_for("about the second request", |n| {
        n["summary"] == format!("rescue: @user{second} asks for access")
    });

    // Approve from the tray: the store says so and the user hears it.
    session.click_item("Pairing requests", &approve);
    api.wait_sent(PATIENCE, "the approval message", |s| {
        s.iter()
            .any(|m| m.chat_id == first && m.text.contains("Access approved"))
    });
    session.wait_for("only the second request left", |t| {
        t.has("Pairing requests (1)") && !t.has(&approve)
    });
    let list = home.run(&["--profile", "rescue", "pairing", "list", "--json"]);
    list.expect_code(0);
    assert_eq!(list.json()["approved"], serde_json::json!([first]));
    assert_eq!(list.json()["pending"][0]["code"], second_code.as_str());
    // The approved user is an operator now.
    let asked = api.push_message(first, "/help");
    assert!(api
        .wait_reply(asked, PATIENCE)
        .text
        .contains("Rescue commands"));
    let all = notifications.all();
    for n in &all {
        let same = all.iter().filter(|m| *m == n).count();
        assert_eq!(same, 1, "{n} was shown {same} times: {all:#?}");
    }

    // Deny the second from the dashboard (the request outlives the app).
    session.click_item("", "Quit");
    let status = wait_exit(&mut app.0, PATIENCE).expect("the app quits");
    assert!(status.success(), "quit: {status:?}");
    let web = session.dashboard(&home, &[rescue]);
    let row = format!("[data-testid=pairing-rescue-{second_code}]");
    let text = web.eventually_text(&row);
    assert!(
        text.contains(&format!("@user{second}")) && text.contains(&second_code),
        "the card lists the request:\n{text}"
    );
    web.click(&format!("[data-testid=deny-rescue-{second_code}]"));
    // The toast shows for a few seconds once the user was told.
    web.wait_contains(
        "#toast",
        &format!("Denied @user{second}: they were told through the bot."),
        PATIENCE,
    );
    api.wait_sent(PATIENCE, "the denial message", |s| {
        s.iter()
            .any(|m| m.chat_id == second && m.text.contains("Access denied"))
    });
    wait_until("the request to leave the card", || {
        web.find("[data-testid=pairing-rescue]").is_err()
    });
    let list = home.run(&["--profile", "rescue", "pairing", "list", "--json"]);
    assert_eq!(list.json()["pending"], serde_json::json!([]));
    assert_eq!(list.json()["approved"], serde_json::json!([first]));
}

/// Opens a card's collapsed "Log" section so its lines are visible.
fn open_log(web: &WebDriver, name: &str) {
    let opened = web.script(&format!(
        "const d = document.querySelector('[data-testid=card-{name}] details.log'); if (!d) return false; d.open = true; return true;"
    ));
    assert_eq!(opened, Ok(serde_json::json!(true)), "{name}'s log section");
}

#[test]
fn the_log_panel_reads_like_omniclaw_logs() {
    let session = Session::start();
    let (home, main, rescue) = two_profiles();
    let web = session.dashboard(&home, &[main, rescue]);
    web.click("[data-testid=start-main]");
    wait_until("main's port to listen", || listening(main));
    // The line `omniclaw logs` shows for the gateway's start, as it shows it.
    let start = Instant::now();
    let serving = loop {
        let logs = home.run(&["--profile", "main", "logs", "-n", "200"]);
        if let Some(line) = logs.stdout.lines().find(|l| l.contains("gateway serving")) {
            break line.to_string();
        }
        assert!(start.elapsed() < PATIENCE, "no start line in the logs");
        std::thread::sleep(Duration::from_millis(100));
    };
    let panel = {
        let start = Instant::now();
        loop {
            open_log(&web, "main");
            let text = web.text("[data-testid=log-main]").unwrap_or_default();
            if text.contains(&serving) || start.elapsed() > PATIENCE {
                break text;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    assert!(
        panel.contains(&serving),
        "the panel shows {serving:?} as `omniclaw logs` does:\n{panel}"
    );
    assert!(
        !panel.contains("{\""),
        "no raw JSON line in the panel:\n{panel}"
    );
}

#[test]
fn a_refused_edit_is_named_on_the_card_and_in_the_tray_and_rolled_back() {
    let session = Session::start();
    let (home, main, rescue) = two_profiles();
    let web = session.dashboard(&home, &[main, rescue]);
    web.click("[data-testid=start-main]");
    wait_until("main's port to listen", || listening(main));
    // A gateway saves its config as last good after 10 s of serving it.
    let last_good = home.path().join(".omniclaw-main/omniclaw.json.last-good");
    let start = Instant::now();
    while !last_good.is_file() {
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "no last good config"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let good = std::fs::read_to_string(&last_good).expect("last good");

    // A hand edit the gateway refuses: it keeps serving the good config.
    let config = ".omniclaw-main/omniclaw.json";
    home.write(
        config,
        &good.replacen(&format!("\"port\": {main}"), "\"port\": \"not a port\"", 1),
    );
    assert_ne!(home.read(config), good, "the edit changed the port key");
    let refused = web.wait_contains(
        "[data-testid=refused-main]",
        "gateway.port",
        Duration::from_secs(60),
    );
    assert!(
        refused.contains("Runs on its last good config")
            && refused.contains("the edit of gateway.port was refused"),
        "the card says so:\n{refused}"
    );
    assert!(listening(main), "main keeps serving");
    // The tray says why its icon turned orange.
    let tray = session.wait_for("main's refused edit", |t| {
        t.has(&label("main", "running · embedded (edit refused)", main))
    });
    assert!(
        tray.find(
            "main — ",
            "⚠ Edit of gateway.port refused: runs on the last good config…"
        )
        .is_some(),
        "the submenu names the refused key:\n{}",
        tray.labels().join("\n")
    );

    // Roll back: the last good config is restored, the gateway takes it
    // up again and the card and the tray turn healthy.
    web.click("[data-testid=roll-back-main]");
    wait_until("the config to be the last good one", || {
        home.read(config) == good
    });
    wait_until("the refusal to leave the card", || {
        web.find("[data-testid=refused-main]").is_err()
    });
    session.wait_for("main running without a refusal", |t| {
        t.has(&label("main", "running · embedded", main))
    });
    home.run(&["--profile", "main", "health"]).expect_code(0);
    let rejected = std::fs::read_dir(home.path().join(".omniclaw-main"))
        .expect("state dir")
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("omniclaw.json.rejected.")
        })
        .count();
    assert_eq!(rejected, 1, "the refused text is kept");
}

#[test]
fn copy_token_puts_the_gateway_token_on_the_clipboard_and_nowhere_else() {
    let session = Session::start();
    let (home, main, rescue) = two_profiles();
    let secrets: serde_json::Value =
        serde_json::from_str(&home.read(".omniclaw-main/secrets.json")).expect("secrets file");
    let token = secrets["gateway.auth.token"]
        .as_str()
        .expect("main's gateway token")
        .to_string();
    let web = session.dashboard(&home, &[main, rescue]);
    web.wait_text("[data-testid=secrets-main]", "0600 file");
    web.click("[data-testid=copy-token-main]");
    web.wait_contains(
        "#toast",
        "Copied the gateway token of main to the clipboard.",
        PATIENCE,
    );
    let start = Instant::now();
    let mut pasted = session.clipboard();
    while pasted.as_deref() != Some(token.as_str()) && start.elapsed() < PATIENCE {
        std::thread::sleep(Duration::from_millis(200));
        pasted = session.clipboard();
    }
    assert!(
        pasted.as_deref() == Some(token.as_str()),
        "the clipboard holds main's token (it holds {} characters)",
        pasted.map_or(0, |p| p.len())
    );
    assert!(!web.source().contains(&token), "the token reached the page");
    for dir in [".omniclaw-main/logs"] {
        let logs = home.path().join(dir);
        for entry in std::fs::read_dir(&logs).into_iter().flatten().flatten() {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            assert!(
                !text.contains(&token),
                "the token reached {:?}",
                entry.path()
            );
        }
    }
}

#[test]
fn a_card_offers_a_private_file_when_the_keychain_cannot_serve_its_secrets() {
    // No Secret Service on this bus: a profile whose config points at the
    // keychain cannot read its token there.
    let session = Session::without_activation();
    let (home, main, rescue) = two_profiles();
    std::fs::remove_file(home.path().join(".omniclaw-main/secrets.json")).expect("rm secrets");
    let web = session.dashboard(&home, &[main, rescue]);
    web.wait_text("[data-testid=secrets-main]", "keychain");
    web.click("[data-testid=start-main]");
    let offer = web.wait_contains(
        "[data-testid=keychain-main]",
        "The keychain did not give out this profile's secrets",
        PATIENCE,
    );
    let alerts = web
        .script("return [...document.querySelectorAll('[data-testid=card-main] .error')].map((e) => e.textContent).join('\\n');")
        .expect("the card's error boxes");
    let alerts = alerts.as_str().unwrap_or_default();
    assert!(
        !alerts.contains("--secrets-file") && !alerts.contains("secrets move"),
        "the card offers a button, not a command in a red box:\n{alerts}"
    );
    assert!(offer.contains("Keep this profile's secrets in a private file"));
    web.click("[data-testid=secrets-file-main]");
    web.wait_text("[data-testid=secrets-main]", "0600 file");
    assert!(
        home.path().join(".omniclaw-main/secrets.json").is_file(),
        "the private file exists"
    );
    web.click("[data-testid=start-main]");
    wait_until("main's port to listen", || listening(main));
    web.wait_text("[data-testid=state-main]", "Running · embedded");
}

/// A directory holding only `tools` (links to the system's), for a PATH
/// without the rest: no `xdg-open`, no service manager.
fn path_with_only(tools: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("bin dir");
    for tool in tools {
        let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|d| d.join(tool))
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("{tool} is on PATH"));
        std::os::unix::fs::symlink(found, dir.path().join(tool)).expect("link");
    }
    dir
}

#[test]
fn open_logs_without_a_file_manager_shows_the_path_to_copy() {
    let session = Session::start();
    let (home, main, rescue) = two_profiles();
    let bin = path_with_only(&["WebKitWebDriver"]);
    let web = session.dashboard_with(
        &home,
        &[main, rescue],
        &[("PATH", bin.path().as_os_str().to_os_string())],
    );
    web.click("[data-testid=open-logs-main]");
    let logs = home.path().join(".omniclaw-main/logs");
    let shown = web.wait_contains(
        "[data-testid=unopened-main]",
        "No file manager opened the log folder",
        PATIENCE,
    );
    assert!(shown.contains("xdg-open"), "it says why: {shown}");
    let value = web
        .property("[data-testid=unopened-path-main]", "value")
        .expect("the path field");
    assert_eq!(value, serde_json::json!(logs.display().to_string()));
    let readonly = web
        .property("[data-testid=unopened-path-main]", "readOnly")
        .expect("readOnly");
    assert_eq!(
        readonly,
        serde_json::json!(true),
        "selectable, not editable"
    );
}

/// A `systemctl` that accepts every user-unit command (the service
/// manager of a desktop session) and a `loginctl` that says lingering is off.
const FAKE_SYSTEMCTL: &str = r#"#!/bin/sh
case "$*" in
  "--user show --property=Version") echo "Version=252" ;;
  "--user show "*) if [ -f "$HOME/.config/systemd/user/$3" ] && [ -f "$HOME/.active" ]; then
      printf 'LoadState=loaded\nActiveState=active\nSubState=running\nMainPID=4242\nResult=success\n'
    else
      printf 'LoadState=not-found\nActiveState=inactive\nSubState=dead\nMainPID=0\nResult=success\n'
    fi ;;
  "--user enable --now "*) : > "$HOME/.active" ;;
esac
exit 0
"#;
const FAKE_LOGINCTL: &str = "#!/bin/sh\necho no\n";

#[test]
fn install_as_service_shows_what_the_cli_advises() {
    use std::os::unix::fs::PermissionsExt;
    let session = Session::start();
    let (home, main, rescue) = two_profiles();
    let bin = path_with_only(&["WebKitWebDriver", "id"]);
    for (name, script) in [("systemctl", FAKE_SYSTEMCTL), ("loginctl", FAKE_LOGINCTL)] {
        let path = bin.path().join(name);
        std::fs::write(&path, script).expect("fake tool");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let web = session.dashboard_with(
        &home,
        &[main, rescue],
        &[("PATH", bin.path().as_os_str().to_os_string())],
    );
    web.click("[data-testid=install-service-main]");
    // Installed: the CLI's advice stands on the card, not only in the log.
    let notes = web.wait_contains(
        "[data-testid=service-notes-main]",
        "lingering is off",
        PATIENCE,
    );
    assert!(
        notes.contains("loginctl enable-linger"),
        "the card gives the CLI's advice:\n{notes}"
    );
    assert!(home
        .path()
        .join(".config/systemd/user/omniclaw-gateway-main.service")
        .is_file());
}

#[test]
fn a_failed_install_shows_every_line_the_cli_said() {
    let session = Session::start();
    let (home, main, rescue) = two_profiles();
    // What the CLI says for this install on its own, in the environment
    // the app gives it (the session's bus, no runtime dir of its own).
    let cli = home
        .cmd()
        .args(["--profile", "main", "gateway", "install"])
        .env_remove("XDG_RUNTIME_DIR")
        .env("DBUS_SESSION_BUS_ADDRESS", &session.bus)
        .output()
        .expect("run omniclaw");
    if cli.status.success() {
        // A user service manager runs here: nothing fails to show.
        home.run(&["--profile", "main", "gateway", "uninstall"])
            .expect_code(0);
        return;
    }
    let said: Vec<String> = String::from_utf8_lossy(&[cli.stdout, cli.stderr].concat())
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    assert!(!said.is_empty(), "the CLI says why");
    let web = session.dashboard(&home, &[main, rescue]);
    web.click("[data-testid=install-service-main]");
    web.wait_until_text("[data-testid=card-main] .error", "the CLI's lines", |t| {
        said.iter().all(|line| t.contains(line.as_str()))
    });
}

#[test]
fn with_no_gateway_nothing_looks_healthy() {
    let session = Session::start();
    let home = omniclaw_tests::Home::new();
    let web = session.dashboard(&home, &[]);
    web.wait_text("[data-testid=health]", "No gateways yet");
    // A first start opens the assistant wizard; the gateways are a tab away.
    web.wait_contains("[data-testid=as-plan]", "New profile default", PATIENCE);
    web.click("#tab-gateways");
    let cards = web.eventually_text("[data-testid=cards]");
    assert!(cards.contains("Set up assistant"), "{cards}");
    assert!(cards.contains("omniclaw setup"), "{cards}");
    assert!(!cards.contains("--profile main"), "{cards}");
    let tray = session.wait_for("the empty menu", |t| t.has("No gateways set up yet"));
    assert!(!tray.has_prefix("⚠"));
    // The ok icon's badge is a green dot at (48, 48) of 64×64.
    let (red, green, _) = session.icon_badge();
    assert!(
        !(green > 150 && red < 100),
        "no green dot with zero gateways (pixel g={green} r={red})"
    );
}
