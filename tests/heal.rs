//! The rescue's watch, end to end: a rescue gateway with
//! `rescue.watch.enabled: true` checking a `main` profile every second,
//! telling its operator through the Bot API double.
//!
//! Run inside `scripts/session.sh` (the tokens live in the real keychain).

use std::time::{Duration, Instant};

use omniclaw_tests::botapi::{onboard_rescue, BotApiDouble, Sent};
use omniclaw_tests::{GatewayProc, Home};

const TOKEN: &str = "987654321:AAHwatch-token-for-tests_abcdefghijkl";
const OPERATOR: i64 = 4343;
const WAIT: Duration = Duration::from_secs(60);

struct Bench {
    api: BotApiDouble,
    home: Home,
    main_port: u16,
    rescue: Option<GatewayProc>,
}

impl Bench {
    /// `main` set up (not running) and a rescue bot onboarded to watch it
    /// every second, down after one failed check.
    fn new() -> Bench {
        let api = BotApiDouble::start();
        api.add_bot(TOKEN, "watch_bot");
        let home = Home::new();
        let main_port = home.setup_on_free_port("main");
        let op = OPERATOR.to_string();
        onboard_rescue(
            &home,
            &api,
            TOKEN,
            &["--allow-from", &op, "--target", "main"],
        );
        for (key, value) in [
            ("rescue.watch.enabled", "true"),
            ("rescue.watch.intervalSeconds", "1"),
            ("rescue.watch.failAfter", "1"),
        ] {
            home.config_set("rescue", key, value).expect_code(0);
        }
        Bench {
            api,
            home,
            main_port,
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

    /// Waits for a message to the operator that contains `what`.
    fn wait_told(&self, what: &str) -> Sent {
        self.api
            .wait_sent(WAIT, what, |s| {
                s.iter()
                    .any(|m| m.chat_id == OPERATOR && m.text.contains(what))
            })
            .into_iter()
            .find(|m| m.chat_id == OPERATOR && m.text.contains(what))
            .expect("found")
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
    assert!(
        told.text.contains(&format!("port {} ", b.main_port)),
        "{}",
        told.text
    );
    assert!(told.text.contains(&format!("(pid {me})")), "{}", told.text);
    // main never ran: nobody is known to restart it.
    assert!(
        told.text.contains("nobody is known to run it"),
        "{}",
        told.text
    );
    assert!(b.audit().contains("\"who\":\"watch\""), "{}", b.audit());
    drop(squatter);
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
    assert!(told.text.starts_with("main is down"), "{}", told.text);
    watch_for(Duration::from_secs(4));
    let port_free = std::net::TcpListener::bind(("127.0.0.1", b.main_port)).is_ok();
    assert!(port_free, "main was not started behind the user's back");
    let incidents: Vec<_> = b
        .to_operator()
        .into_iter()
        .filter(|m| m.text.starts_with("main is down"))
        .collect();
    assert_eq!(incidents.len(), 1, "one message per incident");
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
    let audit = b.audit();
    assert!(audit.contains("/watch off main"), "{audit}");
    assert!(audit.contains("/watch on main"), "{audit}");
}
