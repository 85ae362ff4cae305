//! The dashboard's chat and what an assistant costs, end to end: the real
//! `omniclaw-desktop` under WebDriver in a private session, gateways whose
//! assistants talk to the provider double — one the app embeds, one run
//! from a terminal. The page reaches them only through the app.

use std::time::{Duration, Instant};

use omniclaw_agent::double::{Double, Reply};
use omniclaw_tests::desktop::*;
use omniclaw_tests::{GatewayProc, Home};
use serde_json::{json, Value};

/// `profile` set up on a free port (its token in its secrets file), its
/// assistant on `double`'s model `local/m1`, then `extra` keys.
fn assistant_profile(
    home: &Home,
    profile: &str,
    double: &Double,
    avoid: &[u16],
    extra: &str,
) -> u16 {
    let port = profile_on_free_port(home, profile, avoid);
    let path = format!(".omniclaw-{profile}/omniclaw.json");
    let text = home.read(&path);
    // $1000 / $2000 per million tokens: the double's usage of 10 in and
    // 5 out costs $0.02 a reply.
    let assistant = format!(
        r#"
  models: {{ providers: {{ local: {{
    baseUrl: "{}", api: "openai-completions",
    models: [{{ id: "m1", name: "Model one", cost: {{ input: 1000, output: 2000 }} }}],
  }} }} }},
  agents: {{ defaults: {{ model: "local/m1" }} }},
  {extra}
"#,
        double.base_url("openai-completions")
    );
    home.write(&path, &text.replacen('{', &format!("{{{assistant}"), 1));
    home.run(&["--profile", profile, "config", "validate"])
        .expect_code(0);
    port
}

/// Runs `script` (a function body) until it returns `true`.
fn wait_script(web: &WebDriver, what: &str, script: &str) {
    let start = Instant::now();
    let mut last = Ok(Value::Null);
    while start.elapsed() < PATIENCE {
        last = web.script(script);
        if last == Ok(Value::Bool(true)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("never saw {what}; last: {last:?}");
}

/// Types `text` into the chat and sends it.
fn send(web: &WebDriver, text: &str) {
    web.fill("[data-testid=chat-input]", text);
    web.click("[data-testid=chat-send]");
}

/// Picks `gateway` in the chat's gateway list.
fn pick_gateway(web: &WebDriver, gateway: &str) {
    wait_script(
        web,
        &format!("{gateway} among the chat's gateways"),
        &format!(
            "return [...document.querySelectorAll('#chat-gateway option')].some(o => o.value === {})",
            json!(gateway)
        ),
    );
    web.fill("[data-testid=chat-gateway]", gateway);
    wait_script(
        web,
        &format!("{gateway}'s session open"),
        &format!(
            "return document.getElementById('chat-gateway').value === {} && document.getElementById('chat-session').options.length > 0",
            json!(gateway)
        ),
    );
}

#[test]
fn the_dashboard_chats_with_embedded_and_terminal_run_gateways() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let double = rt.block_on(Double::start()).expect("double");
    let session = Session::start();
    let home = Home::new();
    let main = assistant_profile(&home, "main", &double, &[], "");
    let work = assistant_profile(&home, "work", &double, &[main], "");
    // `work` runs from a terminal, `main` is started by the app.
    let _terminal = GatewayProc::start(&home, &["--profile", "work", "gateway"]);
    // The system's opener, recording what it is asked to open.
    let opener = tempfile::tempdir().expect("opener dir");
    let opened = opener.path().join("opened");
    let script = opener.path().join("xdg-open");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$1\" >> '{}'\n",
            opened.display()
        ),
    )
    .expect("write the opener");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod the opener");
    let path = std::env::join_paths(std::iter::once(opener.path().to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .expect("PATH");
    let web = session.dashboard_with(&home, &[main, work], &[("PATH", path)]);
    web.wait_text("[data-testid=state-work]", "Running · external");
    web.click("[data-testid=start-main]");
    web.wait_text("[data-testid=state-main]", "Running · embedded");

    // The reply streams: it shows in pieces while the run goes on (one
    // SSE frame or two of 4 characters each per 60 ms).
    let words: Vec<String> = (1..=40).map(|n| format!("word{n}")).collect();
    let streamed = words.join(" ");
    double.push(
        Reply::text(format!(
            "{streamed} <script>document.title='pwned'</script> [the docs](https://example.com/docs?a=1) [bad](javascript:alert(1)) **bold end**"
        ))
        .chunked(200)
        .delayed(Duration::from_millis(60)),
    );
    web.click("[data-testid=chat-main]");
    pick_gateway(&web, "main");
    send(&web, "hello main");
    wait_script(
        &web,
        "part of the reply while it is written",
        "const run = document.querySelector('#chat-log .run[data-state=running]'); \
         return !!run && run.textContent.includes('word1 ') && !run.textContent.includes('word40');",
    );
    let log = web.wait_contains("[data-testid=chat-log]", "bold end", PATIENCE);
    assert!(
        log.contains("hello main") && log.contains("word40"),
        "{log}"
    );
    // Markdown is rendered, HTML in it is text: no element, no script run.
    assert!(
        log.contains("<script>document.title='pwned'</script>"),
        "the script shows as text:\n{log}"
    );
    let page = web
        .script(
            "return {scripts: document.querySelectorAll('#chat-log script').length, \
             strong: [...document.querySelectorAll('#chat-log strong')].map(e => e.textContent), \
             title: document.title}",
        )
        .expect("page state");
    assert_eq!(
        page,
        json!({"scripts": 0, "strong": ["bold end"], "title": "OmniClaw"})
    );

    // A link opens in the system's browser, never in the web view; a
    // script link is no link at all.
    let links = web
        .script("return [...document.querySelectorAll('#chat-log a')].map(a => [a.textContent, a.getAttribute('href')])")
        .expect("links");
    assert_eq!(
        links,
        json!([["the docs", null]]),
        "one link, no href to follow"
    );
    web.click("#chat-log a.link");
    // `click` clicks again when WebDriver answers with an error, which it
    // can do after the click went through (the log re-rendered under it on
    // a loaded machine): the opener may be asked more than once, but never
    // for anything else.
    wait_until("the opener to be asked", || {
        std::fs::read_to_string(&opened).is_ok_and(|t| t.ends_with('\n'))
    });
    let asked = std::fs::read_to_string(&opened).unwrap_or_default();
    assert!(
        asked.lines().all(|l| l == "https://example.com/docs?a=1"),
        "the opener was asked for {asked:?}"
    );
    let here = web.script("return location.href").expect("location");
    assert!(
        here.as_str().is_some_and(|u| !u.contains("example.com")),
        "the web view stayed on the app: {here}"
    );

    // A tool call shows folded, its result inside.
    double.push(Reply::tool_call(
        "read",
        json!({"path": "nothing-here.txt"}),
    ));
    double.push(Reply::text("The file is not there."));
    send(&web, "read the file");
    web.wait_contains("[data-testid=chat-log]", "The file is not there.", PATIENCE);
    let tool = web
        .script(
            "const t = document.querySelector('#chat-log details.tool'); \
             return t && {open: t.open, summary: t.querySelector('summary').textContent, \
             result: (t.querySelector('pre.result') || {}).textContent || null}",
        )
        .expect("tool state");
    assert_eq!(tool["open"], false, "folded: {tool}");
    assert!(
        tool["summary"]
            .as_str()
            .unwrap_or_default()
            .starts_with("read"),
        "{tool}"
    );
    assert!(tool["result"].is_string(), "the result is inside: {tool}");

    // The terminal-run gateway answers through the app too.
    double.push(Reply::text("work here"));
    pick_gateway(&web, "work");
    send(&web, "hello work");
    let log = web.wait_contains("[data-testid=chat-log]", "work here", PATIENCE);
    assert!(!log.contains("hello main"), "work's own session:\n{log}");
    let asked: Vec<String> = double
        .chats()
        .iter()
        .map(|c| c.body["messages"].to_string())
        .collect();
    assert!(
        asked.last().is_some_and(|m| m.contains("hello work")),
        "the model got work's message: {asked:?}"
    );

    // Closed and opened again from the tray's "Chat…": the history is
    // there and the chat goes on.
    let window = session.dashboard_window().expect("the dashboard window");
    session.close_window(&window);
    wait_until("the window to go", || session.dashboard_window().is_none());
    let tray = session.wait_for("main's Chat… item", |t| {
        t.find("main — ", "Chat…").is_some()
    });
    assert!(
        tray.enabled("main — ", "Chat…"),
        "main runs: its chat opens"
    );
    session.click_item("main — ", "Chat…");
    wait_until("the dashboard again", || {
        session.dashboard_window().is_some()
    });
    let again = session.dashboard_window().expect("the window");
    reattach(&web);
    wait_script(&web, "the chat page on main", "return document.body.dataset.page === 'chat' && document.getElementById('chat-gateway').value === 'main'");
    let log = web.wait_contains("[data-testid=chat-log]", "bold end", PATIENCE);
    assert!(log.contains("hello main"), "{log}");
    double.push(Reply::text("still here"));
    send(&web, "are you there?");
    web.wait_contains("[data-testid=chat-log]", "still here", PATIENCE);
    let _ = again;

    // Stop ends a run while it is written; the transcript says so.
    let slow: Vec<String> = (1..=60).map(|n| format!("slow{n}")).collect();
    double.push(
        Reply::text(slow.join(" "))
            .chunked(16)
            .delayed(Duration::from_millis(250)),
    );
    send(&web, "take your time");
    wait_script(
        &web,
        "Stop offered while the reply is written",
        "const run = document.querySelector('#chat-log .run[data-state=running]'); \
         return !!run && run.textContent.includes('slow1') && !document.getElementById('chat-stop').disabled;",
    );
    web.click("[data-testid=chat-stop]");
    let log = web.wait_contains("[data-testid=chat-log]", "Stopped", PATIENCE);
    assert!(!log.contains("slow60"), "stopped before the end:\n{log}");

    // A new session starts empty; the old one stays in the list.
    web.click("[data-testid=chat-new]");
    wait_script(
        &web,
        "a new, empty session",
        "return document.getElementById('chat-session').options.length >= 2 && \
         document.getElementById('chat-log').textContent.includes('No messages yet')",
    );
    double.push(Reply::text("fresh start"));
    send(&web, "new topic");
    let log = web.wait_contains("[data-testid=chat-log]", "fresh start", PATIENCE);
    assert!(!log.contains("hello main"), "a session of its own:\n{log}");
}

/// Switches the WebDriver session to the dashboard's newest window.
fn reattach(web: &WebDriver) {
    let start = Instant::now();
    loop {
        let handles = web.call("GET", "/window/handles", None);
        if let Ok(Value::Array(list)) = &handles {
            if let Some(Value::String(handle)) = list.last() {
                if web
                    .call("POST", "/window", Some(&json!({"handle": handle})))
                    .is_ok()
                    && web.script("return document.readyState === 'complete'")
                        == Ok(Value::Bool(true))
                {
                    return;
                }
            }
        }
        if start.elapsed() > PATIENCE {
            panic!("the reopened dashboard is not reachable: {handles:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `main` with an assistant on `double` whose commands ask first (and
/// `extra` keys), started from the dashboard of the app in `session`.
fn asking_main(session: &Session, double: &Double, extra: &str) -> (Home, Dashboard) {
    let home = Home::new();
    let main = assistant_profile(
        &home,
        "main",
        double,
        &[],
        &format!("tools: {{ exec: {{ mode: \"ask\", approvalTimeoutSeconds: 120 }} }},\n  {extra}"),
    );
    let web = session.dashboard(&home, &[main]);
    web.click("[data-testid=start-main]");
    web.wait_text("[data-testid=state-main]", "Running · embedded");
    (home, web)
}

#[test]
fn an_approval_is_denied_from_the_dashboard_and_spend_is_watched() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let double = rt.block_on(Double::start()).expect("double");
    let session = Session::start();
    let notifications = session.notifications();
    let (home, web) = asking_main(&session, &double, "budget: { dailyUsd: 0.05 },");

    // The model wants to run a command: the app tells, the chat asks.
    let ran = home.path().join("ran");
    let command = format!("touch {}", ran.display());
    double.push(Reply::tool_call("exec", json!({"command": command})));
    double.push(Reply::text("It was not allowed."));
    web.click("[data-testid=chat-main]");
    pick_gateway(&web, "main");
    send(&web, "make the file");
    let told = notifications.wait_for("the approval", |n| {
        n["summary"] == "main: a command waits for your approval"
    });
    assert!(
        told["body"].as_str().is_some_and(|b| b.contains(&command)),
        "the notification names the command: {told}"
    );
    let asks = web.wait_contains("[data-testid=chat-approvals]", &command, PATIENCE);
    assert!(asks.contains("Deny"), "{asks}");
    web.click("[data-testid^=deny-chat-]");
    web.wait_contains("[data-testid=chat-log]", "It was not allowed.", PATIENCE);
    assert!(!ran.exists(), "a denied command never runs");
    wait_until("the approval to leave the page", || {
        web.find("[data-testid^=deny-chat-]").is_err()
    });
    let last = double.chats().pop().expect("a model request").body["messages"].to_string();
    assert!(
        last.contains("denied"),
        "the model hears of the denial: {last}"
    );

    // Two model calls, $0.04 of $0.05: the card and the tray say so, and
    // 80 % is told once.
    web.click("#tab-gateways");
    web.wait_contains("[data-testid=spend-main]", "$0.04 of $0.05", PATIENCE);
    session.wait_for("today's spend in main's submenu", |t| {
        t.labels()
            .iter()
            .any(|l| l.starts_with("Today: ") && l.contains("$0.04 of $0.05"))
    });
    notifications.wait_for("80 % spent", |n| {
        n["summary"] == "main: 80 % of today's budget spent"
    });

    // One more reply spends the cap: told once, and the next run is refused.
    double.push(Reply::text("that was the last one"));
    web.click("[data-testid=chat-main]");
    send(&web, "one more");
    web.wait_contains("[data-testid=chat-log]", "that was the last one", PATIENCE);
    notifications.wait_for("the cap reached", |n| {
        n["summary"] == "main: today's budget is spent"
    });
    let calls = double.chats().len();
    send(&web, "and another?");
    web.wait_contains(
        "[data-testid=chat-log]",
        "the daily budget is spent",
        PATIENCE,
    );
    assert_eq!(double.chats().len(), calls, "no model call past the cap");
    web.click("#tab-gateways");
    web.wait_contains("[data-testid=spend-main]", "cap of $0.05 reached", PATIENCE);

    // Raised from the card: written through the validated edit and taken
    // by the running gateway, no restart.
    web.fill("[data-testid=cap-input-main]", "1");
    web.click("[data-testid=set-cap-main]");
    web.wait_contains("[data-testid=spend-main]", "$0.06 of $1.00", PATIENCE);
    let cap = home.run(&["--profile", "main", "config", "get", "budget.dailyUsd"]);
    assert_eq!(cap.stdout.trim(), "1");
    web.wait_text("[data-testid=state-main]", "Running · embedded");
    double.push(Reply::text("back in budget"));
    web.click("[data-testid=chat-main]");
    send(&web, "and now?");
    web.wait_contains("[data-testid=chat-log]", "back in budget", PATIENCE);

    let all = notifications.all();
    for summary in [
        "main: a command waits for your approval",
        "main: 80 % of today's budget spent",
        "main: today's budget is spent",
    ] {
        let times = all.iter().filter(|n| n["summary"] == summary).count();
        assert_eq!(times, 1, "{summary:?} told {times} times: {all:#?}");
    }
}

/// `tools.exec.allowlist` of `profile`'s config, as `config get` reads it.
fn allowlist(home: &Home, profile: &str) -> Value {
    let out = home.run(&[
        "--profile",
        profile,
        "config",
        "get",
        "tools.exec.allowlist",
    ]);
    serde_json::from_str(out.stdout.trim()).unwrap_or(Value::Null)
}

/// The model asks to `touch file`; the chat's approval is answered with
/// `decision` and the run ends. The command line.
fn answer_touch(
    web: &WebDriver,
    double: &Double,
    file: &std::path::Path,
    decision: &str,
) -> String {
    let command = format!("touch {}", file.display());
    let done = format!("Done after {decision}.");
    double.push(Reply::tool_call("exec", json!({"command": command})));
    double.push(Reply::text(done.clone()));
    send(web, &format!("touch it ({decision})"));
    web.wait_contains("[data-testid=chat-approvals]", &command, PATIENCE);
    web.click(&format!("[data-testid^={decision}-chat-]"));
    web.wait_contains("[data-testid=chat-log]", &done, PATIENCE);
    command
}

#[test]
fn an_approval_is_allowed_once_and_always_from_the_dashboard() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let double = rt.block_on(Double::start()).expect("double");
    let session = Session::start();
    let (home, web) = asking_main(&session, &double, "");
    web.click("[data-testid=chat-main]");
    pick_gateway(&web, "main");

    // Allow once: the command runs, and nothing is added to the allowlist.
    let once = home.path().join("once");
    answer_touch(&web, &double, &once, "allow-once");
    assert!(once.exists(), "an allowed command runs");
    wait_until("the approval to leave the page", || {
        web.find("[data-testid^=allow-once-chat-]").is_err()
    });
    assert_eq!(allowlist(&home, "main"), Value::Null, "once adds nothing");

    // Always: the command runs and its exact line joins the allowlist,
    // written through the validated edit.
    let always = home.path().join("always");
    let command = answer_touch(&web, &double, &always, "allow-always");
    assert!(always.exists(), "an always-allowed command runs");
    wait_until("the command line on the allowlist", || {
        allowlist(&home, "main") == json!([command])
    });
    home.run(&["--profile", "main", "config", "validate"])
        .expect_code(0);

    // The running gateway took the edit: the same line runs unasked.
    std::fs::remove_file(&always).expect("remove the file");
    std::thread::sleep(Duration::from_secs(3));
    double.push(Reply::tool_call("exec", json!({"command": command})));
    double.push(Reply::text("Made it unasked."));
    send(&web, "make it again");
    web.wait_contains("[data-testid=chat-log]", "Made it unasked.", PATIENCE);
    assert!(always.exists(), "the allowlisted command ran");
    assert!(
        web.find("[data-testid^=allow-once-chat-]").is_err(),
        "nothing was asked"
    );
}

/// The Chat page talks to a gateway the service manager runs (the
/// stand-in `systemctl` starts it with the service marker), as it does to
/// embedded and terminal-run ones: through the app's Rust side, with the
/// token from the secret store.
#[cfg(unix)]
#[test]
fn the_dashboard_chats_with_a_gateway_run_as_a_service() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let double = rt.block_on(Double::start()).expect("double");
    let session = Session::start();
    let home = Home::new();
    let main = assistant_profile(&home, "main", &double, &[], "");
    let fakebin = home.path().join("fakebin");
    std::fs::create_dir_all(&fakebin).expect("mkdir");
    omniclaw_tests::service::fake_systemctl(&fakebin);
    /// Ends the service's gateway however the test ends.
    struct Service(std::path::PathBuf);
    impl Drop for Service {
        fn drop(&mut self) {
            if let Ok(pid) = std::fs::read_to_string(self.0.join("main.pid")) {
                let _ = std::process::Command::new("kill")
                    .arg(pid.trim())
                    .stderr(std::process::Stdio::null())
                    .status();
            }
        }
    }
    let _service = Service(fakebin.clone());
    let path = format!("{}:/usr/bin:/bin", fakebin.display());
    let env = [
        ("PATH", path.as_str()),
        ("USER", "tester"),
        ("OMNICLAW_SERVICE_MANAGER", "systemd"),
    ];
    home.run_env(&["--profile", "main", "gateway", "install"], &env)
        .expect_code(0);
    let deadline = Instant::now() + PATIENCE;
    while home.run(&["--profile", "main", "health"]).code != 0 {
        assert!(
            Instant::now() < deadline,
            "the service's gateway never got healthy"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let vars: Vec<(&str, std::ffi::OsString)> =
        env.iter().map(|(k, v)| (*k, (*v).into())).collect();
    let web = session.dashboard_with(&home, &[main], &vars);
    web.wait_contains("[data-testid=state-main]", "service", PATIENCE);

    double.push(Reply::text("answered by the service's gateway"));
    web.click("[data-testid=chat-main]");
    pick_gateway(&web, "main");
    send(&web, "hello service");
    let log = web.wait_contains(
        "[data-testid=chat-log]",
        "answered by the service",
        PATIENCE,
    );
    assert!(log.contains("hello service"), "{log}");
    // The turn ran in the service's process, and is in its transcript.
    let sessions = home.run(&["--profile", "main", "sessions", "list", "--json"]);
    assert!(
        sessions.stdout.contains("answered by the service"),
        "{}",
        sessions.stdout
    );
}
