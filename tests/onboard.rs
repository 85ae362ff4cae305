//! `onboard`: non-interactive with flags, through a pseudo-terminal, and
//! its failures (bad token, no network, a token another profile uses),
//! each leaving nothing behind. After onboarding the token is in the
//! keychain and in no file.
//!
//! Run inside `scripts/session.sh` (a real Secret Service).

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use omniclaw_tests::botapi::BotApiDouble;
use omniclaw_tests::{free_base, omniclaw_bin, Home, Run};

const TOKEN: &str = "555555555:AAHonboard-token-for-tests_abcdefghij";
const OTHER: &str = "666666666:AAHanother-token-for-tests_abcdefghij";

fn onboard(home: &Home, profile: &str, extra: &[&str], token: &str) -> Run {
    let mut c = home.cmd();
    c.args([
        "--profile",
        profile,
        "onboard",
        "--non-interactive",
        "--telegram-token-stdin",
    ])
    .args(extra)
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(token.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Every file under the home, as text (lossy).
fn all_text(home: &Home) -> String {
    home.snapshot()
        .values()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn non_interactive_onboarding_keeps_the_token_in_the_keychain_only() {
    let api = BotApiDouble::start();
    api.add_bot(TOKEN, "my_rescue_bot");
    let home = Home::new();
    let port = free_base().to_string();
    let r = onboard(
        &home,
        "rescue",
        &[
            "--port",
            &port,
            "--api-root",
            &api.url,
            "--allow-from",
            "42",
        ],
        TOKEN,
    );
    r.expect_code(0);
    assert!(r.stderr.contains("@my_rescue_bot"), "{}", r.stderr);
    let config = home.read(".omniclaw-rescue/omniclaw.json");
    assert!(
        config.contains("\"source\": \"keychain\"") || config.contains("source: 'keychain'"),
        "{config}"
    );
    assert!(
        config.contains("allowlist") && config.contains("42"),
        "{config}"
    );
    assert!(!all_text(&home).contains(TOKEN), "the token reached a file");
    let status = home.run(&[
        "--profile",
        "rescue",
        "secrets",
        "status",
        "channels.telegram.botToken",
        "--json",
    ]);
    assert!(status.stdout.contains("keychain"), "{}", status.stdout);
    assert!(!status.stdout.contains(TOKEN));
    assert!(api.calls("getMe") >= 1);

    // The same token for another profile is refused, by fingerprint.
    let before = home.snapshot();
    let r = onboard(&home, "work", &["--api-root", &api.url], TOKEN);
    r.expect_code(2);
    assert!(
        r.stderr.contains("already uses this bot token"),
        "{}",
        r.stderr
    );
    assert_eq!(home.snapshot(), before);
}

#[test]
fn failures_explain_and_change_nothing() {
    let api = BotApiDouble::start();
    api.add_bot(TOKEN, "my_rescue_bot");
    let home = Home::new();
    let before = home.snapshot();

    let r = onboard(&home, "rescue", &["--api-root", &api.url], "not-a-token");
    r.expect_code(2);
    assert!(r.stderr.contains("BotFather"), "{}", r.stderr);

    let r = onboard(&home, "rescue", &["--api-root", &api.url], OTHER);
    r.expect_code(2);
    assert!(r.stderr.contains("401"), "{}", r.stderr);

    let dead = format!("http://127.0.0.1:{}", free_base());
    let r = onboard(&home, "rescue", &["--api-root", &dead], TOKEN);
    r.expect_code(1);
    assert!(
        r.stderr.contains("cannot reach") && r.stderr.contains("nothing was changed"),
        "{}",
        r.stderr
    );

    let r = onboard(&home, "rescue", &["--api-root", &api.url], "");
    r.expect_code(2);
    assert_eq!(
        home.snapshot(),
        before,
        "a failed onboarding left files behind"
    );
}

#[test]
fn the_manual_commands_work_verbatim() {
    let home = Home::new();
    let r = home.shell("omniclaw onboard --non-interactive < /dev/null");
    r.expect_code(0);
    assert!(home.path().join(".omniclaw/omniclaw.json").exists());
    home.shell("omniclaw gateway install --dry-run")
        .expect_code(0);
}

#[test]
fn onboarding_through_a_terminal() {
    use expectrl::{Eof, Expect, Regex, Session};
    let api = BotApiDouble::start();
    api.add_bot(TOKEN, "tty_rescue_bot");
    let home = Home::new();
    let mut cmd = home.cmd();
    let port = free_base().to_string();
    cmd.args([
        "--profile",
        "rescue",
        "onboard",
        "--api-root",
        &api.url,
        "--port",
        &port,
    ]);
    let mut s = Session::spawn(cmd).expect("spawn in a pty");
    s.set_expect_timeout(Some(Duration::from_secs(30)));
    s.expect("BotFather token").expect("token prompt");
    s.send_line("bad").expect("send");
    s.expect("this is not a bot token").expect("shape refused");
    s.expect("BotFather token").expect("asked again");
    s.send_line(TOKEN).expect("send");
    s.expect("@tty_rescue_bot").expect("getMe shown");
    s.expect("send /start").expect("pairing step");
    api.push_message(31337, "/start");
    s.expect(Regex("user31337.*31337.*Is that you"))
        .expect("who wrote");
    s.send_line("y").expect("send");
    s.expect("Profiles the bot may act on").expect("targets");
    s.send_line("main").expect("send");
    s.expect("Install the gateway as a service")
        .expect("service");
    s.send_line("n").expect("send");
    s.expect(Eof).expect("finished");
    let config = home.read(".omniclaw-rescue/omniclaw.json");
    assert!(
        config.contains("31337") && config.contains("main"),
        "{config}"
    );
    assert!(!all_text(&home).contains(TOKEN));
    let _ = omniclaw_bin();
}

#[test]
fn cancelling_at_a_prompt_leaves_nothing() {
    use expectrl::{Eof, Expect, Session};
    let api = BotApiDouble::start();
    api.add_bot(TOKEN, "tty_rescue_bot");
    let home = Home::new();
    let before = home.snapshot();
    let mut cmd = home.cmd();
    cmd.args(["--profile", "rescue", "onboard", "--api-root", &api.url]);
    let mut s = Session::spawn(cmd).expect("spawn in a pty");
    s.set_expect_timeout(Some(Duration::from_secs(30)));
    s.expect("Base port").expect("port prompt");
    s.send(expectrl::ControlCode::EndOfTransmission)
        .expect("EOF");
    s.expect(Eof).expect("ended");
    assert_eq!(home.snapshot(), before);
}
