//! A remote gateway in the desktop app, end to end: a real OmniClaw
//! gateway (its assistant on the provider double) behind a real `sshd`,
//! added with `omniclaw remote add --ssh`; the real `omniclaw-desktop` in a
//! private session keeps its tunnel up, shows it in the tray (read over
//! D-Bus) as running with its version, starts `ssh` again when it is
//! killed, stops it on Quit, and shows a remote card on the dashboard
//! (WebDriver) whose Chat and Logs go through the app.
//!
//! Skipped where `sshd` cannot run (see `omniclaw_tests::sshd`).

use std::time::{Duration, Instant};

use omniclaw_tests::chat::{Reply, Rig, TOKEN as FAR_TOKEN};
use omniclaw_tests::desktop::*;
use omniclaw_tests::sshd::Sshd;
use omniclaw_tests::Home;
use serde_json::json;

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The pid in the tray's `tunnel up (ssh pid N)` line, once it shows one
/// other than `not` while the remote shows running with its version.
fn tunnel_up(session: &Session, not: Option<u32>) -> u32 {
    let running = format!("far — remote · running · v{VERSION}");
    let pid = |tray: &Tray| {
        tray.labels()
            .iter()
            .filter_map(|l| l.strip_prefix("tunnel up (ssh pid "))
            .filter_map(|l| l.trim_end_matches(')').parse::<u32>().ok())
            .next()
    };
    let tray = session.wait_for("the remote running through a new tunnel", |t| {
        t.has(&running) && pid(t).is_some_and(|p| Some(p) != not)
    });
    pid(&tray).expect("a pid")
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

#[test]
fn a_remote_gateway_in_the_tray_and_the_dashboard() {
    let Some(sshd) = Sshd::start_or_skip() else {
        return;
    };
    let rig = Rig::one("openai-completions", &[]);
    let home = Home::new();
    // The token in the remote's secrets file: the app's session has no keychain.
    let local_port = sshd.add_remote(
        &home,
        &["--secrets-file"],
        "far",
        rig.assistant.port,
        FAR_TOKEN,
    );
    let session = Session::start();

    // The tray: its own entry marked remote, running with its version, no
    // Start / Stop / Install for it, the app's tunnel up.
    let notifications = session.notifications();
    let mut app = session.launch(&home);
    let first = tunnel_up(&session, None);
    assert!(
        children_of(app.0.id()).iter().any(|c| c == "ssh"),
        "the tunnel's ssh is the app's child"
    );
    let tray = session.layout().expect("the tray");
    let parent = format!("far — remote · running · v{VERSION}");
    for item in ["Chat…", "Logs…", "Test connection"] {
        assert!(tray.enabled(&parent, item), "{item} of far");
    }
    for item in ["Start", "Stop", "Restart", "Install as service"] {
        assert!(
            tray.find(&parent, item).is_none(),
            "{item} offered for a remote"
        );
    }
    // "Test connection" connects anew and tells how it went.
    session.click_item(&parent, "Test connection");
    let told = notifications.wait_for("the connection test", |n| {
        n["summary"] == "Remote gateway far answers"
    });
    let body = told["body"].as_str().unwrap_or_default();
    assert!(
        body.starts_with(&format!("running · v{VERSION} · healthy (")),
        "{told}"
    );
    // The CLI uses the app's tunnel instead of opening its own.
    home.run(&["remote", "test", "far"])
        .expect_code(0)
        .expect_output("the tunnel another process keeps up");
    home.run(&["remote", "tunnel", "far"])
        .expect_code(1)
        .expect_output("another process keeps the tunnel of far up already");

    // ssh killed: the app starts it again and the remote runs again.
    let start = Instant::now();
    assert!(std::process::Command::new("kill")
        .args(["-KILL", &first.to_string()])
        .status()
        .expect("kill")
        .success());
    let second = tunnel_up(&session, Some(first));
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "back after {:?}",
        start.elapsed()
    );

    // A remote added while the app runs gets its tunnel; one removed loses
    // it.
    let near_port = sshd.add_remote(
        &home,
        &["--secrets-file"],
        "near",
        rig.assistant.port,
        FAR_TOKEN,
    );
    session.wait_for("the added remote running", |t| {
        t.has(&format!("near — remote · running · v{VERSION}"))
    });
    // `remote remove` while the app keeps the tunnel: the app follows
    // remotes.json, closes it and lets go; then the rest goes.
    home.run(&["--secrets-file", "remote", "remove", "near"])
        .expect_code(0)
        .expect_output("Removed the remote gateway near");
    assert!(
        !home.path().join(".omniclaw/remotes/near").exists(),
        "near's directory is gone"
    );
    session.wait_for("the removed remote gone", |t| {
        !t.has_prefix("near — ") && t.has_prefix("far — remote · running")
    });
    wait_until("the removed remote's tunnel to close", || {
        omniclaw_tests::port_is_free(near_port)
    });

    // Quit: no ssh outlives the app, the tunnel's port is free.
    session.click_item("", "Quit");
    let status = wait_exit(&mut app.0, PATIENCE).expect("the app quits");
    assert!(status.success(), "quit: {status:?}");
    wait_until("the app's ssh to end", || !alive(second));
    assert!(
        omniclaw_tests::port_is_free(local_port),
        "the tunnel outlived the app"
    );

    // A saved local port another program holds is the tunnel's error,
    // never replaced by another; once it is free the tunnel comes up on it.
    let held = std::net::TcpListener::bind(("127.0.0.1", local_port)).expect("hold the port");
    let web = session.dashboard(&home, &[local_port, rig.assistant.port]);
    let busy = format!("127.0.0.1:{local_port} is in use by another program");
    session.wait_for("the busy port as the tunnel's error", |t| {
        t.labels()
            .iter()
            .any(|l| l.starts_with("tunnel reconnecting (attempt ") && l.contains(&busy))
            && t.has_prefix("far — remote · unreachable")
    });
    drop(held);

    // The dashboard: a card marked remote; chat and logs through the app.
    let shown = Instant::now();
    while web.text("[data-testid=remote-state-far]").as_deref() != Ok("Running") {
        // No local profile yet: the app opens on the assistant wizard
        // once its page has loaded.
        if web.text("[data-testid=remote-card-far]").as_deref() == Ok("") {
            web.click("#tab-gateways");
        }
        assert!(
            shown.elapsed() < PATIENCE,
            "far never showed running; its card: {:?}",
            web.text("[data-testid=remote-card-far]")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        web.eventually_text("[data-testid=remote-badge-far]"),
        "remote"
    );
    assert_eq!(
        web.eventually_text("[data-testid=remote-version-far]"),
        format!("v{VERSION}")
    );
    let tunnel = web.eventually_text("[data-testid=remote-tunnel-far]");
    let dashboard_ssh: u32 = tunnel
        .strip_prefix("tunnel up (ssh pid ")
        .and_then(|rest| rest.trim_end_matches(')').parse().ok())
        .unwrap_or_else(|| panic!("no tunnel pid: {tunnel}"));
    let listed = home.run(&["remote", "list", "--json"]).json();
    assert_eq!(
        listed["remotes"][0]["localPort"], local_port,
        "the saved port stays"
    );

    web.click("[data-testid=remote-test-far]");
    web.wait_contains(
        "#toast",
        &format!("far: running · v{VERSION} · healthy"),
        PATIENCE,
    );

    rig.double.push(Reply::text("Hello from the far side."));
    web.click("[data-testid=remote-chat-far]");
    let picked = Instant::now();
    loop {
        let value = web
            .script("return document.getElementById('chat-gateway').value")
            .expect("chat gateway");
        if value == json!("far")
            && web
                .script("return document.getElementById('chat-session').options.length > 0")
                .expect("sessions")
                == json!(true)
        {
            break;
        }
        assert!(
            picked.elapsed() < PATIENCE,
            "the chat never opened far; it shows {:?}, the tray:\n{}",
            web.text("#page-chat"),
            session
                .layout()
                .map(|t| t.labels().join("\n"))
                .unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    web.fill("[data-testid=chat-input]", "hello far");
    web.click("[data-testid=chat-send]");
    let log = web.wait_contains(
        "[data-testid=chat-log]",
        "Hello from the far side.",
        PATIENCE,
    );
    assert!(log.contains("hello far"), "{log}");

    // The tray's Logs… opens the dashboard on far's log (logs.tail);
    // the card's button reads it again.
    session.click_item(&format!("far — remote · running · v{VERSION}"), "Logs…");
    let lines = web.eventually_text("[data-testid=remote-log-far]");
    assert!(
        !lines.trim().is_empty() && !lines.contains("Nothing logged yet"),
        "logs.tail read nothing: {lines}"
    );
    assert_eq!(
        web.text("[data-testid=remote-logs-far]").as_deref(),
        Ok("Read log again")
    );
    web.click("[data-testid=remote-logs-far]");
    web.wait_contains(
        "[data-testid=remote-log-far]",
        lines.lines().next().unwrap_or_default(),
        PATIENCE,
    );

    // The driver kills the app outright: its ssh ends with it all the same.
    drop(web);
    wait_until("the killed app's ssh to end", || !alive(dashboard_ssh));
}

/// A profile in `gateway.mode: "remote"` (OpenClaw's way to point a
/// profile at a gateway elsewhere) shows among the remote gateways, dialled
/// at `gateway.remote.url` with its `gateway.remote.token`, never as a
/// local gateway to start.
#[test]
fn a_profile_in_remote_mode_shows_as_a_remote_gateway() {
    // The machine over there (loopback here; a tailnet address in life).
    let (_there, far, far_port, token) = omniclaw_tests::over_there();

    let home = Home::new();
    home.write(
        ".omniclaw-laptop/omniclaw.json",
        &format!(
            r#"{{"gateway": {{"mode": "remote", "remote": {{"url": "ws://127.0.0.1:{far_port}", "token": {{"source": "keychain"}}}}}}}}"#
        ),
    );
    home.run_stdin(
        &[
            "--profile",
            "laptop",
            "--secrets-file",
            "secrets",
            "set",
            "gateway.remote.token",
        ],
        &token,
        &[],
    )
    .expect_code(0);

    let session = Session::start();
    let notifications = session.notifications();
    let _app = session.launch(&home);
    let running = format!("laptop — remote · running · v{VERSION}");
    let tray = session.wait_for("the remote-mode profile running as a remote", |t| {
        t.has(&running)
    });
    for item in ["Chat…", "Logs…", "Test connection"] {
        assert!(tray.enabled(&running, item), "{item} of laptop");
    }
    assert!(
        tray.labels()
            .iter()
            .all(|l| !l.starts_with("laptop — stopped") && !l.starts_with("laptop — running —")),
        "the remote-mode profile shows as a local gateway too:\n{}",
        tray.labels().join("\n")
    );
    for item in ["Start", "Install as service"] {
        assert!(
            tray.find(&running, item).is_none(),
            "{item} offered for a profile in remote mode"
        );
    }
    assert_eq!(session.icon_badge(), OK_GREEN, "the ok icon while it runs");

    // The machine over there goes away: the tray says so, its icon turns
    // to the warning one, and one notification tells it, however often
    // the app retries.
    drop(far);
    session.wait_for("the remote unreachable", |t| {
        t.has_prefix("laptop — remote · unreachable")
    });
    let told = notifications.wait_for("the remote unreachable", |n| {
        n["summary"] == "Remote gateway laptop is unreachable"
    });
    let body = told["body"].as_str().unwrap_or_default();
    assert!(
        body.contains("omniclaw remote test laptop"),
        "the notice says what to run: {told}"
    );
    let start = Instant::now();
    while session.icon_badge() != WARNING_ORANGE {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the icon never turned to warning: {:?}",
            session.icon_badge()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Several retries later, still one notice.
    std::thread::sleep(Duration::from_secs(6));
    let unreachable = notifications
        .all()
        .iter()
        .filter(|n| n["summary"] == "Remote gateway laptop is unreachable")
        .count();
    assert_eq!(unreachable, 1, "{:?}", notifications.all());
}

/// The badges of `icons/tray-ok.png` and `icons/tray-warning.png`.
const OK_GREEN: (u8, u8, u8) = (46, 204, 113);
const WARNING_ORANGE: (u8, u8, u8) = (245, 166, 35);
