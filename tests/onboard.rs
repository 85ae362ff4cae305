//! `onboard`: non-interactive with flags, through a pseudo-terminal, and
//! its failures (bad token, no network, a token another profile uses),
//! each leaving nothing behind. After onboarding the token is in the
//! keychain and in no file.
//!
//! Run inside `scripts/session.sh` (a real Secret Service).

use std::time::Duration;

use omniclaw_tests::botapi::BotApiDouble;
use omniclaw_tests::{free_base, omniclaw_bin, Home, Run};

const TOKEN: &str = "555555555:AAHonboard-token-for-tests_abcdefghij";
const OTHER: &str = "666666666:AAHanother-token-for-tests_abcdefghij";

fn onboard(home: &Home, profile: &str, extra: &[&str], token: &str) -> Run {
    onboard_env(home, profile, extra, token, &[])
}

/// [`onboard`] with extra environment variables.
fn onboard_env(
    home: &Home,
    profile: &str,
    extra: &[&str],
    token: &str,
    env: &[(&str, &str)],
) -> Run {
    let mut args = vec![
        "--profile",
        profile,
        "onboard",
        "--non-interactive",
        "--telegram-token-stdin",
    ];
    args.extend_from_slice(extra);
    home.run_stdin(&args, token, env)
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
    assert!(!home.all_text().contains(TOKEN), "the token reached a file");
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

    // Telegram out of reach: one sentence for people, with the way out
    // this command has; no error chain, no config key.
    let dead_port = free_base();
    let dead = format!("http://127.0.0.1:{dead_port}");
    let r = onboard(&home, "rescue", &["--api-root", &dead], TOKEN);
    r.expect_code(1).expect_output(&format!(
        "error: Can't reach Telegram (127.0.0.1:{dead_port} refused the connection): check the network, or give your own Bot API server with --api-root URL; nothing was changed"
    ));
    for internal in [
        "error sending request",
        "client error",
        "apiRoot",
        "os error",
    ] {
        assert!(!r.stderr.contains(internal), "{internal}: {}", r.stderr);
    }

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
    assert!(!home.all_text().contains(TOKEN));
    let _ = omniclaw_bin();
}

/// At the terminal, a Telegram out of reach is said in a sentence and
/// the user can give another Bot API server (or the token again) instead
/// of starting over.
#[test]
fn an_unreachable_telegram_lets_the_user_give_another_server() {
    use expectrl::{Expect, Session};
    let api = BotApiDouble::start();
    api.add_bot(TOKEN, "tty_rescue_bot");
    let home = Home::new();
    let before = home.snapshot();
    let dead_port = free_base();
    let mut cmd = home.cmd();
    let port = free_base().to_string();
    cmd.args([
        "--profile",
        "rescue",
        "onboard",
        "--api-root",
        &format!("http://127.0.0.1:{dead_port}"),
        "--port",
        &port,
    ]);
    let mut s = Session::spawn(cmd).expect("spawn in a pty");
    s.set_expect_timeout(Some(Duration::from_secs(30)));
    s.expect("BotFather token").expect("token prompt");
    s.send_line(TOKEN).expect("send");
    s.expect(format!(
        "Can't reach Telegram (127.0.0.1:{dead_port} refused the connection): check the network, or enter your own Bot API server below"
    ).as_str())
    .expect("said in a sentence");
    s.expect("Bot API server URL").expect("asked for a server");
    s.send_line("not a url").expect("send");
    s.expect("starts with https://").expect("refused");
    s.send_line(&api.url).expect("send");
    s.expect("@tty_rescue_bot")
        .expect("getMe through the other server");
    s.expect("send /start").expect("pairing step");
    // Ctrl+D at the next question cancels: nothing was written.
    api.push_message(31337, "/start");
    s.expect("Is that you").expect("who wrote");
    s.send(expectrl::ControlCode::EndOfTransmission)
        .expect("EOF");
    s.expect(expectrl::Eof).expect("ended");
    assert_eq!(home.snapshot(), before);
}

/// Without a desktop session (no OS keychain), onboarding keeps the
/// profile's secrets in its 0600 file as `setup` does, instead of asking
/// everything and then failing.
#[test]
fn onboarding_without_a_keychain_keeps_the_secrets_in_the_file() {
    let api = BotApiDouble::start();
    api.add_bot(TOKEN, "headless_rescue_bot");
    let home = Home::new();
    let port = free_base().to_string();
    let r = onboard_env(
        &home,
        "rescue",
        &[
            "--json",
            "--port",
            &port,
            "--api-root",
            &api.url,
            "--allow-from",
            "42",
        ],
        TOKEN,
        &[(
            "DBUS_SESSION_BUS_ADDRESS",
            "unix:path=/nonexistent/omniclaw-no-bus",
        )],
    );
    r.expect_code(0)
        .expect_output("no OS keychain is reachable (")
        .expect_output("keeps its secrets in ~/.omniclaw-rescue/secrets.json (mode 0600");
    assert_eq!(r.json()["keychainUnreachable"], true);
    let file = home.path().join(".omniclaw-rescue/secrets.json");
    omniclaw_tests::assert_mode(&file, 0o600);
    let stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("json");
    assert_eq!(stored["channels.telegram.botToken"], TOKEN);
    assert!(stored["gateway.auth.token"].is_string());
    let config = home.read(".omniclaw-rescue/omniclaw.json");
    assert!(!config.contains(TOKEN), "{config}");
    assert!(
        config.contains("keychain"),
        "the config refers to the store"
    );
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

/// A `systemctl` that runs the unit's `ExecStart` with its `Environment=`
/// lines in the background, the way systemd would, and reports it active
/// while it lives.
const RUNNING_SYSTEMCTL: &str = r#"#!/bin/sh
dir=$(dirname "$0")
alive() { [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; }
case "$*" in
  "--user show --property=Version") echo "Version=252" ;;
  "--user show "*)
    if alive; then
      printf 'LoadState=loaded\nActiveState=active\nSubState=running\nMainPID=%s\nResult=success\n' "$(cat "$dir/pid")"
    elif [ -f "$HOME/.config/systemd/user/$3" ]; then
      printf 'LoadState=loaded\nActiveState=inactive\nSubState=dead\nMainPID=0\nResult=success\n'
    else
      printf 'LoadState=not-found\nActiveState=inactive\nSubState=dead\nMainPID=0\nResult=success\n'
    fi ;;
  "--user enable --now "*|"--user start "*)
    alive && exit 0
    unit="$HOME/.config/systemd/user/$(echo "$*" | awk '{print $NF}')"
    (
      for line in $(grep '^Environment=' "$unit" | sed 's/^Environment="\(.*\)"$/\1/'); do export "$line"; done
      exec $(grep '^ExecStart=' "$unit" | cut -d= -f2-)
    ) >/dev/null 2>&1 &
    echo $! > "$dir/pid" ;;
  "--user disable --now "*|"--user stop "*)
    alive && kill "$(cat "$dir/pid")"
    rm -f "$dir/pid" ;;
esac
exit 0
"#;

/// Kills the gateway the fake service manager started.
struct ServiceGateway(std::path::PathBuf);

impl Drop for ServiceGateway {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.0.join("pid")) {
            let _ = std::process::Command::new("kill").arg(pid.trim()).status();
        }
    }
}

#[test]
fn installing_the_service_waits_until_the_bot_polls() {
    use std::os::unix::fs::PermissionsExt;
    let api = BotApiDouble::start();
    api.add_bot(TOKEN, "svc_rescue_bot");
    let home = Home::new();
    let bin = tempfile::tempdir().expect("fake bin dir");
    for (name, script) in [
        ("systemctl", RUNNING_SYSTEMCTL),
        ("loginctl", "#!/bin/sh\necho no\n"),
    ] {
        let p = bin.path().join(name);
        std::fs::write(&p, script).expect("write fake");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let _gateway = ServiceGateway(bin.path().to_path_buf());
    let port = free_base();
    let path = format!("{}:/usr/bin:/bin", bin.path().display());
    let port = port.to_string();
    let out = home.run_stdin(
        &[
            "--profile",
            "rescue",
            "onboard",
            "--non-interactive",
            "--telegram-token-stdin",
            "--install-service",
            "--port",
            &port,
            "--api-root",
            &api.url,
            "--allow-from",
            "42",
        ],
        TOKEN,
        &[("PATH", &path), ("OMNICLAW_SERVICE_MANAGER", "systemd")],
    );
    let stderr = &out.stderr;
    assert_eq!(out.code, 0, "{stderr}");
    assert!(
        stderr.contains("healthy") && stderr.contains("@svc_rescue_bot polls"),
        "{stderr}"
    );
    // Health said green only once the bot polled: the double saw it.
    assert!(api.calls("getUpdates") >= 1);
    let health = home.run(&["--profile", "rescue", "health"]);
    health.expect_code(0);
    assert!(!home.all_text().contains(TOKEN), "the token reached a file");
}
