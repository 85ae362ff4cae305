//! Every rescue command, sent through the Bot API double to a rescue
//! gateway, against a `main` profile whose config is broken and whose
//! gateway is down — the situation a rescue bot exists for.
//!
//! Run inside `scripts/session.sh` (the token lives in the real keychain).

use std::time::Duration;

use omniclaw_tests::botapi::{onboard_rescue, BotApiDouble};
use omniclaw_tests::{GatewayProc, Home};

const TOKEN: &str = "987654321:AAHrescue-token-for-tests_abcdefghijk";
const OPERATOR: i64 = 4242;
const WAIT: Duration = Duration::from_secs(60);

struct Bench {
    api: BotApiDouble,
    home: Home,
    _gw: GatewayProc,
}

impl Bench {
    fn new() -> Bench {
        let api = BotApiDouble::start();
        api.add_bot(TOKEN, "rescue_cmd_bot");
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
        // main's config: a good last-good version, then a broken edit.
        let good = home.read(".omniclaw-main/omniclaw.json");
        home.write(".omniclaw-main/omniclaw.json.last-good", &good);
        home.write(
            ".omniclaw-main/omniclaw.json",
            "{ gateway: { port: \"not a port\" }, bogus: 1 }\n",
        );
        let gw = GatewayProc::start(&home, &["--profile", "rescue", "gateway"]);
        Bench { api, home, _gw: gw }
    }

    /// Sends `text` and returns the reply (every part, joined).
    fn ask(&self, text: &str) -> String {
        let id = self.api.push_message(OPERATOR, text);
        self.api.wait_reply(id, WAIT);
        std::thread::sleep(Duration::from_millis(300));
        let first = self.api.replies_to(id);
        first
            .iter()
            .map(|s| s.text.clone())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Sends a mutating command, confirms it with the inline button, and
    /// returns the result message.
    fn confirm(&self, text: &str) -> String {
        let before = self.api.sent().len();
        let id = self.api.push_message(OPERATOR, text);
        let q = self.api.wait_reply(id, WAIT);
        assert!(q.text.contains("Confirm"), "{text}: {}", q.text);
        let yes = q
            .buttons
            .iter()
            .find(|(l, _)| l.starts_with("Yes"))
            .expect("yes")
            .1
            .clone();
        self.api.push_callback(OPERATOR, &yes);
        let sent = self
            .api
            .wait_sent(WAIT, "the result", |s| s.len() >= before + 2);
        sent[before + 1].text.clone()
    }
}

#[test]
fn every_command_works_while_main_is_broken_and_down() {
    let b = Bench::new();
    let help = b.ask("/help");
    assert!(help.contains("targets: main"), "{help}");

    let status = b.ask("/status");
    assert!(
        status.contains("omniclaw --profile main gateway status"),
        "{status}"
    );

    let ports = b.ask("/ports");
    assert!(
        ports.contains("main") && ports.contains("rescue"),
        "{ports}"
    );

    let doctor = b.ask("/doctor");
    assert!(doctor.contains("main"), "{doctor}");
    assert!(
        doctor.contains("invalid") || doctor.contains("gateway.port"),
        "{doctor}"
    );

    let logs = b.ask("/logs main 5");
    assert!(logs.contains("omniclaw --profile main logs -n 5"), "{logs}");

    let get = b.ask("/config main get gateway.auth.token");
    assert!(!get.contains(TOKEN));
    let got_port = b.ask("/config main get gateway.port");
    assert!(got_port.contains("not a port"), "{got_port}");

    // Not a target: refused without asking.
    let other = b.ask("/stop work");
    assert!(other.contains("not a rescue target"), "{other}");
    let own = b.ask("/restart rescue");
    assert!(own.contains("own profile"), "{own}");

    // Starting a broken main is refused with the reason.
    let start = b.confirm("/start main");
    assert!(start.contains("✗"), "{start}");

    // Rollback restores the last good config; then main is valid.
    let rollback = b.confirm("/rollback main");
    assert!(rollback.contains("✓"), "{rollback}");
    assert!(!b
        .home
        .read(".omniclaw-main/omniclaw.json")
        .contains("not a port"));
    b.home
        .run(&["--profile", "main", "config", "validate"])
        .expect_code(0);

    // A bad set is refused and changes nothing; a good one is written with a backup.
    let before = b.home.read(".omniclaw-main/omniclaw.json");
    let bad = b.confirm("/config main set gateway.port 'x'");
    assert!(bad.contains("✗"), "{bad}");
    assert_eq!(b.home.read(".omniclaw-main/omniclaw.json"), before);
    let good = b.confirm("/config main set logging.level 'warn'");
    assert!(good.contains("✓"), "{good}");
    assert!(b.home.read(".omniclaw-main/omniclaw.json").contains("warn"));
    assert_eq!(b.home.read(".omniclaw-main/omniclaw.json.bak"), before);

    // Stop and restart of a main that is not running: explained, not crashed.
    let stop = b.confirm("/stop main");
    assert!(!stop.is_empty());
    let restart = b.confirm("/restart main");
    assert!(!restart.is_empty());

    let audit = b.home.read(".omniclaw-rescue/rescue/audit.jsonl");
    for cmd in [
        "/status",
        "/ports",
        "/doctor",
        "/logs main 5",
        "/rollback main",
        "/stop main",
    ] {
        assert!(
            audit.contains(&format!("\"command\":\"{cmd}\"")),
            "{cmd} not audited:\n{audit}"
        );
    }
    for s in b.api.sent() {
        assert!(!s.text.contains(TOKEN), "a reply carries the token");
    }
}
