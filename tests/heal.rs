//! The rescue's watch, end to end: a rescue gateway with
//! `rescue.watch.enabled: true` checking a `main` profile every second,
//! telling its operator through the Bot API double.
//!
//! Every profile keeps its secrets in its secrets file: the watch is what
//! is tested here, the keychain has tests of its own.

use std::time::{Duration, Instant};

use omniclaw_os::desktopctl::{self, Op, Reply, Request};
use omniclaw_tests::botapi::{onboard_rescue_at, BotApiDouble, Sent};
use omniclaw_tests::desktop::{self, Session};
use omniclaw_tests::{GatewayProc, Home};

const TOKEN: &str = "987654321:AAHwatch-token-for-tests_abcdefghijkl";
const OPERATOR: i64 = 4343;
const WAIT: Duration = Duration::from_secs(60);

struct Bench {
    api: BotApiDouble,
    home: Home,
    main_port: u16,
    rescue_port: u16,
    rescue: Option<GatewayProc>,
}

impl Bench {
    /// `main` set up (not running) and a rescue bot onboarded to watch it
    /// every second, down after one failed check.
    fn new() -> Bench {
        let b = Bench::set_up();
        b.home
            .config_set("rescue", "rescue.watch.failAfter", "1")
            .expect_code(0);
        b
    }

    /// `main` set up (not running) and a rescue bot onboarded to watch it
    /// every second, down after the default number of failed checks; both
    /// keep their secrets in their secrets files.
    fn set_up() -> Bench {
        let api = BotApiDouble::start();
        api.add_bot(TOKEN, "watch_bot");
        let home = Home::new();
        let main_port = desktop::profile_on_free_port(&home, "main", &[]);
        let op = OPERATOR.to_string();
        // Each profile's browser CDP range spans 100 ports above its base.
        let rescue_port = loop {
            let p = omniclaw_tests::free_base();
            if p.abs_diff(main_port) > 300 {
                break p;
            }
        };
        onboard_rescue_at(
            &home,
            &api,
            TOKEN,
            rescue_port,
            true,
            &["--allow-from", &op, "--target", "main"],
        );
        for (key, value) in [
            ("rescue.watch.enabled", "true"),
            ("rescue.watch.intervalSeconds", "1"),
        ] {
            home.config_set("rescue", key, value).expect_code(0);
        }
        Bench {
            api,
            home,
            main_port,
            rescue_port,
            rescue: None,
        }
    }

    fn start_rescue(&mut self) {
        self.rescue = Some(GatewayProc::start(
            &self.home,
            &["--profile", "rescue", "gateway"],
        ));
    }

    fn to_operator(&self) -> Vec<Sent> {
        self.api.sent_to(OPERATOR)
    }

    /// Waits for a message to the operator that contains `what` (as sent
    /// or as edited since); returns its text now.
    fn wait_told(&self, what: &str) -> String {
        let now = |m: &Sent| self.api.text_now(m.message_id).unwrap_or_default();
        let sent = self.api.wait_sent(WAIT, what, |s| {
            s.iter()
                .any(|m| m.chat_id == OPERATOR && now(m).contains(what))
        });
        sent.iter()
            .filter(|m| m.chat_id == OPERATOR)
            .map(now)
            .find(|t| t.contains(what))
            .expect("found")
    }

    /// main's outage was told in one message, edited as it moved on.
    fn assert_one_incident(&self) {
        let incidents: Vec<Sent> = self
            .to_operator()
            .into_iter()
            .filter(|m| m.text.starts_with("main is down"))
            .collect();
        assert_eq!(
            incidents.len(),
            1,
            "one message per incident: {incidents:?}"
        );
    }

    /// The watch line `status` shows for main.
    fn status_line(&self) -> String {
        let run = self.home.run(&["status"]);
        run.stdout
            .lines()
            .find(|l| l.contains("watch: main"))
            .unwrap_or_default()
            .to_string()
    }

    /// Waits until `status` shows main's watch line with `what`.
    fn wait_status(&self, what: &str) {
        let deadline = Instant::now() + WAIT;
        while !self.status_line().contains(what) {
            assert!(Instant::now() < deadline, "status: {}", self.status_line());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until the audit log holds `what` (it is written just after
    /// the message goes out); returns it.
    fn wait_audit(&self, what: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let audit = self.audit();
            if audit.contains(what) {
                return audit;
            }
            assert!(Instant::now() < deadline, "audit: {audit}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn audit(&self) -> String {
        std::fs::read_to_string(self.home.path().join(".omniclaw-rescue/rescue/audit.jsonl"))
            .unwrap_or_default()
    }
}

/// Waits `d` of watching (several checks at one a second).
fn watch_for(d: Duration) {
    let end = Instant::now() + d;
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn another_process_on_the_port_is_down_and_the_report_names_it() {
    let mut b = Bench::new();
    let squatter = std::net::TcpListener::bind(("127.0.0.1", b.main_port)).expect("bind");
    b.start_rescue();
    let told = b.wait_told("is held by another process");
    let me = std::process::id();
    assert!(told.contains(&format!("port {} ", b.main_port)), "{}", told);
    assert!(told.contains(&format!("(pid {me})")), "{}", told);
    // main never ran: nobody is known to restart it.
    assert!(told.contains("nobody is known to run it"), "{}", told);
    b.wait_audit("\"who\":\"watch\"");
    drop(squatter);
}

/// The watch needs no Telegram: with the Bot API out of reach it watches,
/// audits and shows main's outage; the report waits and reaches the
/// operator, once and up to date, when Telegram is back.
#[test]
fn the_watch_runs_while_telegram_is_unreachable_and_reports_once_it_is_back() {
    let mut b = Bench::new();
    b.api.set_down(true);
    b.start_rescue();
    b.wait_audit("watch: report main");
    b.wait_status("main — down");
    assert!(b.to_operator().is_empty(), "{:?}", b.to_operator());
    b.api.set_down(false);
    let told = b.wait_told("nobody is known to run it");
    assert!(told.starts_with("main is down"), "{told}");
    watch_for(Duration::from_secs(3));
    b.assert_one_incident();
}

#[test]
fn a_terminal_run_target_that_dies_is_reported_not_restarted() {
    let mut b = Bench::new();
    let main = GatewayProc::start(&b.home, &["--profile", "main", "gateway"]);
    b.start_rescue();
    // Healthy first: nothing said.
    b.wait_status("main — healthy");
    assert!(b.to_operator().is_empty(), "{:?}", b.to_operator());
    main.kill9();
    let told = b.wait_told("runs from a terminal");
    assert!(told.starts_with("main is down"), "{}", told);
    watch_for(Duration::from_secs(4));
    let port_free = std::net::TcpListener::bind(("127.0.0.1", b.main_port)).is_ok();
    assert!(port_free, "main was not started behind the user's back");
    b.assert_one_incident();
    assert!(
        b.status_line().contains("run from a terminal, reported"),
        "{}",
        b.status_line()
    );
}

#[test]
fn a_target_stopped_on_purpose_is_not_repaired_nor_reported_as_down() {
    let mut b = Bench::new();
    let _main = GatewayProc::start(&b.home, &["--profile", "main", "gateway"]);
    b.start_rescue();
    b.wait_status("main — healthy");
    b.home
        .run(&["--profile", "main", "gateway", "stop"])
        .expect_code(0);
    b.wait_status("stopped on purpose (cli)");
    watch_for(Duration::from_secs(3));
    assert!(b.to_operator().is_empty(), "{:?}", b.to_operator());
    assert!(!b.audit().contains("restart main"), "{}", b.audit());
}

#[test]
fn watch_commands_show_pause_and_resume() {
    let mut b = Bench::new();
    b.start_rescue();
    let id = b.api.push_message(OPERATOR, "/watch");
    let shown = b.api.wait_reply(id, WAIT).text;
    assert!(shown.contains("watching every 1 s"), "{shown}");
    let id = b.api.push_message(OPERATOR, "/watch off main");
    let paused = b.api.wait_reply(id, WAIT).text;
    assert!(paused.contains("paused"), "{paused}");
    b.wait_status("watch paused");
    let id = b.api.push_message(OPERATOR, "/watch on main");
    let resumed = b.api.wait_reply(id, WAIT).text;
    assert!(resumed.contains("watching main again"), "{resumed}");
    b.wait_audit("/watch off main");
    b.wait_audit("/watch on main");
}

// ---- a target embedded in the desktop app ----------------------------------

/// Asks the desktop app of `home` to `op` main, as `omniclaw gateway` does.
fn ask_app(home: &Home, op: Op) -> Reply {
    let socket = desktopctl::socket_path(home.path());
    desktopctl::call(&socket, &Request::new(op, "main"), desktopctl::REPLY_WAIT)
        .expect("the app answers on its control socket")
}

/// The desktop app runs main and the rescue; main's gateway ends without
/// anyone meaning it (a stop that records no intent, as its failure inside
/// the app would leave it) and its start fails because another process took
/// its port meanwhile; that process lets the port go. Nothing in the app
/// starts main again: the rescue does, through the app's control socket,
/// and tells its operator in one message that ends in "recovered"; the
/// app's tray shows main's watch line and the app notifies the outage, the
/// rung and the recovery once each.
#[cfg(unix)]
#[test]
fn an_embedded_target_whose_port_was_taken_at_restart_is_restarted_through_the_app() {
    let b = Bench::set_up();
    let session = Session::start();
    let notifications = session.notifications();
    b.home.write(
        ".omniclaw/desktop.json",
        r#"{"startWithApp": ["main", "rescue"]}"#,
    );
    let mut app = session.launch(&b.home);
    desktop::wait_until("main and the rescue to listen", || {
        desktop::listening(b.main_port) && desktop::listening(b.rescue_port)
    });
    b.wait_status("main — healthy");
    // The tray shows what the rescue sees of main, as `status` does.
    session.wait_for("main's watch line", |t| t.has("main — healthy"));

    let stopped = ask_app(&b.home, Op::Stop);
    assert!(stopped.ok, "{stopped:?}");
    let squatter = std::net::TcpListener::bind(("127.0.0.1", b.main_port)).expect("take the port");
    let start = ask_app(&b.home, Op::Start);
    assert!(!start.ok, "main cannot start on a taken port: {start:?}");
    drop(squatter);
    session.wait_for("main failed in the tray", |t| t.has_prefix("main — failed"));

    let done = b.wait_told("recovered");
    assert!(done.starts_with("main is down"), "{done}");
    assert!(done.contains("restart through the desktop app"), "{done}");
    assert!(
        done.contains("restart: started profile main in the desktop app"),
        "{done}"
    );
    let last = done.lines().last().unwrap_or_default();
    assert!(last.starts_with("recovered"), "ends recovered: {done}");
    desktop::wait_until("main to listen again", || desktop::listening(b.main_port));
    session.wait_for("main running in the app again", |t| {
        t.has(&desktop::label("main", "running · embedded", b.main_port))
    });
    b.wait_status("main — healthy");
    session.wait_for("main's watch line healthy again", |t| {
        t.has("main — healthy")
    });
    // The app told the outage, the rung and the recovery, each once.
    let told = |summary: &str| {
        notifications.wait_for(summary, |n| n["summary"] == summary);
    };
    told("main is down");
    told("Rescue rescue repairs main");
    told("main recovered");
    watch_for(Duration::from_secs(3));
    b.assert_one_incident();
    let shown = notifications.all();
    for summary in [
        "main is down",
        "Rescue rescue repairs main",
        "main recovered",
    ] {
        let times = shown.iter().filter(|n| n["summary"] == summary).count();
        assert_eq!(times, 1, "{summary}: {shown:#?}");
    }
    let repair = shown
        .iter()
        .find(|n| n["summary"] == "Rescue rescue repairs main")
        .expect("told");
    assert!(
        repair["body"]
            .as_str()
            .is_some_and(|b| b.starts_with("1. restart through the desktop app")),
        "{repair}"
    );
    let audit = b.wait_audit("recovered");
    for step in [
        "\"command\":\"watch: restart main (Embedded)\",\"result\":\"ok\"",
        "\"command\":\"watch: report main\",\"result\":\"1. restart through the desktop app",
        "\"command\":\"watch: report main\",\"result\":\"recovered",
    ] {
        assert!(audit.contains(step), "{step}: {audit}");
    }
    session.click_item("", "Quit");
    desktop::wait_exit(&mut app.0, desktop::PATIENCE).expect("the app quits");
}

// ---- a target run as a service ------------------------------------------------

/// main installed as a service behind the fake manager, running; a rescue
/// watching it with `actions`. Ends main's gateway when dropped.
struct ServiceBench {
    b: Bench,
    fakebin: std::path::PathBuf,
}

impl ServiceBench {
    fn new(actions: &str) -> ServiceBench {
        let b = Bench::new();
        let fakebin = b.home.path().join("fakebin");
        std::fs::create_dir_all(&fakebin).expect("mkdir");
        omniclaw_tests::service::fake_systemctl(&fakebin);
        let s = ServiceBench { b, fakebin };
        s.run(&["--profile", "main", "gateway", "install"])
            .expect_code(0);
        s.b.home
            .config_set("rescue", "rescue.watch.actions", actions)
            .expect_code(0);
        s
    }

    fn env(&self) -> Vec<(String, String)> {
        vec![
            (
                "PATH".into(),
                format!("{}:/usr/bin:/bin", self.fakebin.display()),
            ),
            ("USER".into(), "tester".into()),
            ("OMNICLAW_SERVICE_MANAGER".into(), "systemd".into()),
        ]
    }

    fn run(&self, args: &[&str]) -> omniclaw_tests::Run {
        let env = self.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.b.home.run_env(args, &env)
    }

    fn start_rescue(&mut self) {
        let mut cmd = self.b.home.cmd();
        cmd.args(["--profile", "rescue", "gateway"]);
        for (k, v) in self.env() {
            cmd.env(k, v);
        }
        self.b.rescue = Some(GatewayProc::spawn(cmd).expect("rescue starts"));
    }

    fn calls(&self) -> String {
        std::fs::read_to_string(self.fakebin.join("calls.log")).unwrap_or_default()
    }

    fn main_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.fakebin.join("main.pid"))
            .ok()
            .and_then(|p| p.trim().parse().ok())
    }

    /// Kills main's service process as a crash would (no stop recorded).
    fn crash_main(&self) {
        if let Some(pid) = self.main_pid() {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .stderr(std::process::Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while !omniclaw_tests::port_is_free(self.b.main_port) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = std::fs::remove_file(self.fakebin.join("main.pid"));
        }
    }

    /// main's config edited into an invalid one.
    fn break_config(&self) -> String {
        // The gateway keeps a config as the last good one after 10 s on it.
        let good = self
            .b
            .home
            .path()
            .join(".omniclaw-main/omniclaw.json.last-good");
        let deadline = Instant::now() + WAIT;
        while !good.is_file() {
            assert!(Instant::now() < deadline, "main saved no last good config");
            std::thread::sleep(Duration::from_millis(200));
        }
        let file = self.b.home.path().join(".omniclaw-main/omniclaw.json");
        let good = std::fs::read_to_string(&file).expect("main's config");
        let port = self.b.main_port.to_string();
        assert_eq!(good.matches(&port).count(), 1, "{good}");
        std::fs::write(&file, good.replace(&port, "\"not a port\"")).expect("edit");
        good
    }
}

impl Drop for ServiceBench {
    fn drop(&mut self) {
        self.crash_main();
    }
}

#[cfg(unix)]
#[test]
fn a_running_service_whose_file_was_broken_is_reported_not_touched() {
    let mut s = ServiceBench::new("['restart', 'rollback']");
    s.start_rescue();
    s.b.wait_status("main — healthy");
    let pid = s.main_pid();
    s.break_config();
    let told = s.b.wait_told("runs on its last good config");
    assert!(told.contains("gateway.port"), "{}", told);
    assert!(told.contains("got \"not a port\" ("), "line:col: {}", told);
    watch_for(Duration::from_secs(3));
    assert_eq!(s.main_pid(), pid, "not restarted");
    assert!(!s.calls().contains("restart"), "{}", s.calls());
    let file = s.b.home.read(".omniclaw-main/omniclaw.json");
    assert!(file.contains("not a port"), "not rolled back: {file}");
    assert!(!s.b.audit().contains("rollback main"), "{}", s.b.audit());
}

#[test]
fn a_broken_and_crashed_service_is_rolled_back_and_restarted_when_allowed() {
    let mut s = ServiceBench::new("['restart', 'rollback']");
    s.start_rescue();
    s.b.wait_status("main — healthy");
    s.break_config();
    s.b.wait_told("runs on its last good config");
    s.crash_main();
    let done = s.b.wait_told("recovered");
    assert!(
        done.starts_with("main is down: its config is invalid"),
        "{}",
        done
    );
    assert!(done.contains("keys rolled back: gateway.port"), "{}", done);
    assert!(
        s.calls()
            .contains("systemctl --user restart omniclaw-gateway-main.service"),
        "{}",
        s.calls()
    );
    let file = s.b.home.read(".omniclaw-main/omniclaw.json");
    assert!(!file.contains("not a port"), "rolled back: {file}");
    s.b.wait_status("main — healthy");
    let audit = s.b.wait_audit("watch: rollback main");
    assert!(audit.contains("watch: restart main (Service)"), "{audit}");
}

#[test]
fn without_rollback_a_broken_service_is_only_reported_with_its_errors() {
    let mut s = ServiceBench::new("['restart']");
    s.start_rescue();
    s.b.wait_status("main — healthy");
    s.break_config();
    s.b.wait_told("runs on its last good config");
    let restarts_before = s.calls().matches("restart").count();
    s.crash_main();
    let told = s.b.wait_told("does not allow \"rollback\"");
    assert!(told.contains("gateway.port: "), "{}", told);
    assert!(told.contains("got \"not a port\" ("), "line:col: {}", told);
    watch_for(Duration::from_secs(3));
    assert_eq!(
        s.calls().matches("restart").count(),
        restarts_before,
        "{}",
        s.calls()
    );
    let file = s.b.home.read(".omniclaw-main/omniclaw.json");
    assert!(file.contains("not a port"), "nothing changed: {file}");
}

#[test]
fn a_service_that_exited_on_bad_input_with_nothing_changed_is_reported_not_restarted() {
    let mut s = ServiceBench::new("['restart', 'rollback']");
    // Its token gone from the store, main's next start exits 2.
    s.run(&["--profile", "main", "secrets", "rm", "gateway.auth.token"])
        .expect_code(0);
    s.crash_main();
    // As the manager starts it again (on boot, or its own retry).
    std::process::Command::new(s.fakebin.join("systemctl"))
        .args(["--user", "start", "omniclaw-gateway-main.service"])
        .env("HOME", s.b.home.path())
        .status()
        .expect("fake systemctl");
    let exit = s.b.home.path().join(".omniclaw-main/last-exit.json");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !exit.is_file() {
        assert!(
            Instant::now() < deadline,
            "main's start did not fail: {}",
            s.calls()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(s
        .b
        .home
        .read(".omniclaw-main/last-exit.json")
        .contains("\"code\": 2"));
    let calls_before = s.calls();
    s.start_rescue();
    let told = s.b.wait_told("exited with code 2 (bad input)");
    assert!(told.starts_with("main is down"), "{told}");
    watch_for(Duration::from_secs(3));
    assert_eq!(
        s.calls(),
        calls_before,
        "the manager was not asked to start it"
    );
    assert!(!s.b.audit().contains("restart main"), "{}", s.b.audit());
}

#[test]
fn a_rotated_token_is_unknown_never_a_repair() {
    let mut b = Bench::new();
    // Slow to call main down: its restart below is not an outage.
    b.home
        .config_set("rescue", "rescue.watch.failAfter", "30")
        .expect_code(0);
    let main = GatewayProc::start(&b.home, &["--profile", "main", "gateway"]);
    b.start_rescue();
    b.wait_status("main — healthy");
    // main restarted on a new token; the rescue still holds the old one.
    b.home
        .run_stdin(
            &["--profile", "main", "secrets", "set", "gateway.auth.token"],
            "rotated-token-9f8e7d6c5b4a39281706",
            &[],
        )
        .expect_code(0);
    drop(main);
    let _main = GatewayProc::start(&b.home, &["--profile", "main", "gateway"]);
    let told = b.wait_told("cannot tell whether it is healthy");
    assert!(told.contains("refused the rescue's token"), "{told}");
    // It reads the store again and finds the new token.
    b.wait_status("main — healthy");
    watch_for(Duration::from_secs(3));
    assert_eq!(b.to_operator().len(), 1, "said once: {:?}", b.to_operator());
    assert!(!b.audit().contains("restart main"), "{}", b.audit());
}

/// Who watches the watcher: `status` and `doctor` flag a rescue whose
/// target names no profile, and one that shares a port, the gateway token
/// or the Telegram bot with its target, each with its fix.
#[test]
fn status_and_doctor_flag_a_rescue_that_cannot_look_after_its_target() {
    let home = Home::new();
    let main_port = home.setup_file_secrets_on_free_port("main");
    home.setup_file_secrets_on_free_port("rescue");
    home.config_set("rescue", "rescue.targets", "['main']")
        .expect_code(0);
    let clean = home.run(&["status"]);
    assert!(
        !clean.stdout.contains("rescue rescue shares"),
        "{}",
        clean.stdout
    );
    assert!(
        !clean.stdout.contains("no profile here"),
        "{}",
        clean.stdout
    );

    // The same gateway token and bot token in both stores, and the
    // rescue's base port inside main's derived ports (written by hand:
    // `config set` refuses the overlap).
    let secret = |profile: &str, name: &str, value: &str| {
        home.run_stdin(&["--profile", profile, "secrets", "set", name], value, &[])
            .expect_code(0);
    };
    let gateway = "shared-gateway-token-0123456789abcdef";
    let bot = "123456789:AAHshared-bot-token-for-tests_abcdefg";
    for profile in ["main", "rescue"] {
        secret(profile, "gateway.auth.token", gateway);
        secret(profile, "channels.telegram.botToken", bot);
    }
    let config = home.read(".omniclaw-rescue/omniclaw.json");
    let port = port_in(&config);
    home.write(
        ".omniclaw-rescue/omniclaw.json",
        &config.replace(
            &format!("\"port\": {port}"),
            &format!("\"port\": {}", main_port + 2),
        ),
    );

    let status = home.run(&["status"]);
    status.expect_code(1);
    for said in [
        "rescue rescue shares its gateway token with its target main",
        "openssl rand -hex 32 | omniclaw --profile rescue secrets set gateway.auth.token",
        "rescue rescue shares its Telegram bot token with its target main",
        "@BotFather",
        "rescue rescue is not isolated from its target main (rescue ",
    ] {
        assert!(status.stdout.contains(said), "{said}: {}", status.stdout);
    }
    let doctor = home.run(&["doctor", "--json"]);
    doctor.expect_code(1);
    let checks = doctor.json()["checks"].clone();
    let rescue: Vec<&serde_json::Value> = checks
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["check"] == "rescue")
        .collect();
    assert!(rescue.len() >= 3, "{checks}");
    assert!(
        rescue
            .iter()
            .all(|c| c["status"] == "fail" && c["fix"] != ""),
        "{checks}"
    );
    assert!(
        rescue
            .iter()
            .any(|c| c["message"].as_str().unwrap_or("").contains("CDP range")),
        "a derived port overlap: {checks}"
    );

    // main gone: the rescue's target names no profile.
    std::fs::remove_dir_all(home.path().join(".omniclaw-main")).expect("remove main");
    let status = home.run(&["status"]);
    status.expect_code(1);
    assert!(
        status
            .stdout
            .contains("rescue's rescue.targets names main, which is no profile here"),
        "{}",
        status.stdout
    );
    assert!(
        status.stdout.contains("omniclaw --profile main setup")
            && status
                .stdout
                .contains("omniclaw --profile rescue config set rescue.targets '[]'"),
        "{}",
        status.stdout
    );
    let doctor = home.run(&["doctor"]);
    doctor.expect_code(1);
    assert!(
        doctor.stdout.contains("which is no profile here"),
        "{}",
        doctor.stdout
    );
}

/// The `gateway.port` a config written by `setup` names.
fn port_in(config: &str) -> u16 {
    let at = config.find("\"port\": ").expect("gateway.port") + "\"port\": ".len();
    config[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .expect("a port")
}
