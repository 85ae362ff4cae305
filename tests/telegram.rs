//! The Telegram channel against the local Bot API double: exactly-once
//! handling across kill -9, the startup checks (401, 409), access control
//! with pairing, confirmations, replies cut at 4096 characters, recovery
//! from network errors without a restart.
//!
//! Run inside `scripts/session.sh` (the token lives in the real keychain).

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use omniclaw_tests::botapi::{onboard_rescue, BotApiDouble};
use omniclaw_tests::{GatewayProc, Home};

const TOKEN: &str = "123456789:AAHfake-token-for-tests_abcdefghijklmn";
const OPERATOR: i64 = 7007;

/// A home with a `rescue` profile onboarded against `api` (operator
/// [`OPERATOR`] on the allowlist when `allow` is set).
fn onboarded(api: &BotApiDouble, allow: bool) -> Home {
    let home = Home::new();
    let op = OPERATOR.to_string();
    let extra: &[&str] = if allow { &["--allow-from", &op] } else { &[] };
    onboard_rescue(&home, api, TOKEN, extra);
    home
}

fn start(home: &Home) -> GatewayProc {
    GatewayProc::start(home, &["--profile", "rescue", "gateway"])
}

fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn channel_summary(home: &Home) -> String {
    let status = home.run(&["--profile", "rescue", "status", "--json"]);
    status.json()["profiles"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["profile"] == "rescue")
        .and_then(|p| p["telegram"]["summary"].as_str())
        .unwrap_or_default()
        .to_string()
}

#[test]
fn every_update_is_handled_exactly_once_across_kill_9() {
    let api = BotApiDouble::start();
    api.add_bot(TOKEN, "rescue_test_bot");
    let home = onboarded(&api, true);
    let ids: Vec<i64> = (0..1000)
        .map(|_| api.push_message(OPERATOR, "/help"))
        .collect();
    let gw = start(&home);

    // Let a few hundred through, then hold the reply to an update ahead of
    // the bot: it is killed while that update is in hand (its batch fetched,
    // earlier updates confirmed one by one, this one not yet).
    api.wait_sent(Duration::from_secs(60), "300 replies", |s| s.len() >= 300);
    let handled = api.sent().len() as i64;
    let victim = ids[(handled as usize + 40).min(ids.len() - 1)];
    api.freeze_reply_to(Some(victim));
    wait_until("the held reply", Duration::from_secs(60), || {
        !api.held().is_empty()
    });
    gw.signal("KILL");
    api.freeze_reply_to(None);

    let _gw = start(&home);
    api.wait_sent(Duration::from_secs(120), "1000 replies", |s| {
        s.len() >= 1000
    });
    // Anything pending would show up within a poll round.
    std::thread::sleep(Duration::from_millis(500));
    let mut per_id: BTreeMap<i64, usize> = BTreeMap::new();
    for s in api.sent() {
        *per_id.entry(s.reply_to.expect("a reply")).or_default() += 1;
    }
    let wrong: Vec<(i64, usize)> = ids
        .iter()
        .map(|id| (*id, per_id.get(id).copied().unwrap_or(0)))
        .filter(|(_, n)| *n != 1)
        .collect();
    assert!(
        wrong.is_empty(),
        "updates not answered exactly once: {wrong:?}"
    );
    assert_eq!(api.sent().len(), 1000);
    assert!(
        api.calls("deleteWebhook") >= 2,
        "deleteWebhook at each start"
    );
    assert!(api.calls("getMe") >= 2, "getMe at each start");
}

#[test]
fn a_bad_token_shows_as_unauthorized_and_a_second_poller_as_conflict() {
    let api = BotApiDouble::start();
    api.add_bot(TOKEN, "rescue_test_bot");
    let home = onboarded(&api, true);
    // Telegram revokes the token after onboarding.
    let revoked = BotApiDouble::start();
    home.run(&[
        "--profile",
        "rescue",
        "config",
        "set",
        "channels.telegram.apiRoot",
        &format!("{:?}", revoked.url),
    ])
    .expect_code(0);
    let gw = start(&home);
    wait_until("unauthorized token", Duration::from_secs(20), || {
        channel_summary(&home) == "unauthorized token"
    });
    let health = home.run(&["--profile", "rescue", "health", "--json"]);
    assert!(!health.stdout.contains(TOKEN) && !health.stderr.contains(TOKEN));
    drop(gw);

    // Back to the real double, with another poller on the same token.
    home.run(&[
        "--profile",
        "rescue",
        "config",
        "set",
        "channels.telegram.apiRoot",
        &format!("{:?}", api.url),
    ])
    .expect_code(0);
    let _gw = start(&home);
    wait_until("running", Duration::from_secs(20), || {
        channel_summary(&home).starts_with("running as @rescue_test_bot")
    });
    let url = format!("{}/bot{TOKEN}/getUpdates", api.url);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poller = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = http_post(&url, r#"{"timeout":1}"#);
            }
        })
    };
    wait_until("conflict", Duration::from_secs(30), || {
        channel_summary(&home) == "another poller uses this bot token"
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    poller.join().expect("poller");
    // Alone again, it recovers by itself.
    wait_until("running again", Duration::from_secs(30), || {
        channel_summary(&home).starts_with("running")
    });
    let id = api.push_message(OPERATOR, "/help");
    assert!(api
        .wait_reply(id, Duration::from_secs(20))
        .text
        .contains("Rescue commands"));
}

/// A minimal HTTP/1.1 POST of a JSON body; returns the response text.
fn http_post(url: &str, body: &str) -> std::io::Result<String> {
    use std::io::Read;
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = rest.split_once('/').expect("path");
    let mut s = std::net::TcpStream::connect(host)?;
    write!(
        s,
        "POST /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

#[test]
fn strangers_get_a_pairing_code_and_nothing_else_until_approved() {
    let api = BotApiDouble::start();
    api.add_bot(TOKEN, "rescue_test_bot");
    let home = onboarded(&api, false);
    let _gw = start(&home);
    let stranger = 5005;

    let first = api.push_message(stranger, "/status");
    let reply = api.wait_reply(first, Duration::from_secs(20));
    assert!(reply.text.contains("pairing code"), "{}", reply.text);
    assert!(!reply.text.contains("Rescue commands"));
    let code = reply
        .text
        .split_whitespace()
        .find(|w| {
            w.len() == 8
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() && !c.is_ascii_lowercase())
        })
        .expect("a code in the reply")
        .to_string();
    // Asking again gives the same code, not a second request.
    let again = api.push_message(stranger, "/help");
    assert!(api
        .wait_reply(again, Duration::from_secs(20))
        .text
        .contains(&code));
    // Group messages are ignored, even from the operator-to-be.
    let group = api.push_group_message(stranger, -100, "/help");

    let list = home.run(&["--profile", "rescue", "pairing", "list", "--json"]);
    list.expect_code(0);
    assert_eq!(list.json()["pending"][0]["code"], code.as_str());
    assert_eq!(list.json()["pending"][0]["userId"], stranger);

    home.run(&["--profile", "rescue", "pairing", "approve", "BAD"])
        .expect_code(2);
    home.run(&[
        "--profile",
        "rescue",
        "pairing",
        "approve",
        &code.to_lowercase(),
    ])
    .expect_code(0)
    .expect_output("approved")
    .expect_output("through the bot");
    // The user hears it from the bot at once, without writing again.
    let told = api.wait_sent(Duration::from_secs(20), "the approval message", |s| {
        s.iter()
            .any(|m| m.chat_id == stranger && m.text.contains("Access approved"))
    });
    assert_eq!(
        told.iter()
            .filter(|m| m.chat_id == stranger && m.reply_to.is_none())
            .count(),
        1,
        "exactly one unprompted message: {told:#?}"
    );
    home.run(&["--profile", "rescue", "pairing", "deny", &code])
        .expect_code(1);

    let after = api.push_message(stranger, "/help");
    assert!(api
        .wait_reply(after, Duration::from_secs(20))
        .text
        .contains("Rescue commands"));
    assert!(
        api.replies_to(group).is_empty(),
        "a group message got a reply"
    );

    // At most three wait at once.
    for (n, user) in [6001, 6002, 6003, 6004].into_iter().enumerate() {
        let id = api.push_message(user, "hi");
        let text = api.wait_reply(id, Duration::from_secs(20)).text;
        if n < 3 {
            assert!(text.contains("pairing code"), "{text}");
        } else {
            assert!(text.contains("too many pairing requests"), "{text}");
        }
    }
    // Denying one of them tells that user, and only that user.
    let list = home.run(&["--profile", "rescue", "pairing", "list", "--json"]);
    let pending = list.json()["pending"].clone();
    let first = pending
        .as_array()
        .and_then(|p| p.iter().find(|p| p["userId"] == 6001))
        .expect("6001 is pending")
        .clone();
    home.run(&[
        "--profile",
        "rescue",
        "pairing",
        "deny",
        first["code"].as_str().expect("code"),
    ])
    .expect_code(0)
    .expect_output("denied");
    api.wait_sent(Duration::from_secs(20), "the denial message", |s| {
        s.iter()
            .any(|m| m.chat_id == 6001 && m.text.contains("Access denied"))
    });
    assert!(!api
        .sent_to(6002)
        .iter()
        .any(|m| m.text.contains("Access denied")));
}

#[test]
fn allowlist_ignores_strangers_and_changes_apply_without_a_restart() {
    let api = BotApiDouble::start();
    api.add_bot(TOKEN, "rescue_test_bot");
    let home = onboarded(&api, true);
    let _gw = start(&home);
    let stranger = api.push_message(5005, "/help");
    let op = api.push_message(OPERATOR, "/help");
    api.wait_reply(op, Duration::from_secs(20));
    assert!(api.replies_to(stranger).is_empty());

    // Hot reload: the stranger joins the allowlist.
    home.run(&[
        "--profile",
        "rescue",
        "config",
        "set",
        "channels.telegram.allowFrom",
        &format!("[{OPERATOR}, 5005]"),
    ])
    .expect_code(0);
    wait_until("the new allowlist", Duration::from_secs(20), || {
        let id = api.push_message(5005, "/help");
        std::thread::sleep(Duration::from_millis(700));
        !api.replies_to(id).is_empty()
    });
}

#[test]
fn mutating_commands_wait_for_confirmation_and_everything_is_audited() {
    let api = BotApiDouble::start();
    api.add_bot(TOKEN, "rescue_test_bot");
    let home = onboarded(&api, true);
    home.setup_on_free_port("main");
    let _gw = start(&home);

    let ask = api.push_message(OPERATOR, "/config main set logging.level 'debug'");
    let question = api.wait_reply(ask, Duration::from_secs(20));
    assert!(question.text.contains("Confirm"), "{}", question.text);
    let (_, yes) = question
        .buttons
        .iter()
        .find(|(l, _)| l.starts_with("Yes"))
        .expect("a yes button")
        .clone();
    let (_, no) = question
        .buttons
        .iter()
        .find(|(l, _)| l == "Cancel")
        .expect("a cancel button")
        .clone();
    assert!(
        !home.read(".omniclaw-main/omniclaw.json").contains("debug"),
        "changed before confirmation"
    );

    api.push_callback(OPERATOR, &yes);
    api.wait_sent(Duration::from_secs(30), "the result", |s| {
        s.iter()
            .any(|m| m.text.contains("config set logging.level"))
    });
    assert!(home.read(".omniclaw-main/omniclaw.json").contains("debug"));
    assert!(api.answered().iter().any(|(_, t)| t.starts_with("Running")));
    // The same button again: expired.
    api.push_callback(OPERATOR, &no);
    api.wait_sent(Duration::from_secs(20), "expiry note", |s| {
        s.iter().any(|m| m.text.contains("expired"))
    });

    // A reply "no" cancels.
    let ask = api.push_message(OPERATOR, "/rollback main");
    api.wait_reply(ask, Duration::from_secs(20));
    api.push_message(OPERATOR, "no");
    api.wait_sent(Duration::from_secs(20), "cancel", |s| {
        s.iter()
            .any(|m| m.text.contains("cancelled, nothing changed"))
    });

    let audit = home.read(".omniclaw-rescue/rescue/audit.jsonl");
    let lines: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let results: Vec<(String, String)> = lines
        .iter()
        .map(|l| {
            (
                l["command"].as_str().unwrap_or_default().to_string(),
                l["result"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert!(
        results.contains(&(
            "/config main set logging.level 'debug'".into(),
            "asked for confirmation".into()
        )),
        "{results:?}"
    );
    assert!(
        results.contains(&("/config main set logging.level 'debug'".into(), "ok".into())),
        "{results:?}"
    );
    assert!(
        results.contains(&("/rollback main".into(), "cancelled".into())),
        "{results:?}"
    );
    assert!(lines
        .iter()
        .all(|l| l["userId"] == OPERATOR && l["ts"].as_u64().is_some()));
    assert!(!audit.contains(TOKEN));
}

#[test]
fn long_replies_are_cut_at_4096_characters_on_line_breaks() {
    let api = BotApiDouble::start();
    api.add_bot(TOKEN, "rescue_test_bot");
    let home = onboarded(&api, true);
    home.setup_on_free_port("main");
    let mut log = String::new();
    for i in 0..200 {
        log.push_str(&format!(
            "{{\"timestamp\":\"2025-01-01T00:00:00Z\",\"level\":\"INFO\",\"fields\":{{\"message\":\"line {i:03} {}\"}},\"target\":\"t\"}}\n",
            "x".repeat(120)
        ));
    }
    home.write(".omniclaw-main/logs/gateway.2025-01-01.log", &log);
    let _gw = start(&home);
    let id = api.push_message(OPERATOR, "/logs main 200");
    api.wait_reply(id, Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(1));
    let parts: Vec<String> = api.sent_to(OPERATOR).into_iter().map(|s| s.text).collect();
    assert!(parts.len() >= 6, "{} parts", parts.len());
    assert!(parts.iter().all(|p| p.chars().count() <= 4096));
    let all = parts.join("\n");
    for i in [0, 99, 199] {
        assert!(all.contains(&format!("line {i:03}")), "line {i} missing");
    }
    // Cut on line breaks: no log line is split across two messages.
    assert_eq!(
        all.matches("line ").count(),
        200 + all.matches("config line").count()
    );
}

#[test]
fn network_errors_back_off_and_recover_without_a_restart() {
    let api = BotApiDouble::start();
    api.add_bot(TOKEN, "rescue_test_bot");
    let home = onboarded(&api, true);
    let _gw = start(&home);
    wait_until("running", Duration::from_secs(20), || {
        channel_summary(&home).starts_with("running")
    });
    api.set_down(true);
    wait_until("offline", Duration::from_secs(40), || {
        channel_summary(&home).starts_with("offline")
    });
    let id = api.push_message(OPERATOR, "/help");
    api.set_down(false);
    assert!(api
        .wait_reply(id, Duration::from_secs(40))
        .text
        .contains("Rescue commands"));
    assert!(channel_summary(&home).starts_with("running"));
}
