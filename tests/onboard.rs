//! `onboard`: non-interactive with flags, through a pseudo-terminal, and
//! its failures (bad token, no network, a token another profile uses, a
//! refused API key, a provider out of reach), each leaving nothing behind.
//! After onboarding the bot token and the API key are in the keychain and
//! in no file; the assistant's model is set up against the provider
//! double, which also plays a local Ollama.
//!
//! Run inside `scripts/session.sh` (a real Secret Service).

use std::time::Duration;

use omniclaw_agent::double::{Double, Reply};
use omniclaw_gateway::client::Client;
use omniclaw_gateway::Auth;
use omniclaw_tests::botapi::BotApiDouble;
use omniclaw_tests::{free_base, omniclaw_bin, GatewayProc, Home, Run};
use serde_json::json;

const TOKEN: &str = "555555555:AAHonboard-token-for-tests_abcdefghij";
const OTHER: &str = "666666666:AAHanother-token-for-tests_abcdefghij";
const API_KEY: &str = "sk-onboard-black-box-key-0123456789abcdef";
const WRONG_KEY: &str = "sk-onboard-wrong-key-fedcba9876543210";

/// An address where nothing listens (no local Ollama to find).
fn nothing_at() -> String {
    format!("127.0.0.1:{}", free_base())
}

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

/// A base port, the Bot API double at `api` and operator 42.
fn operator_flags<'a>(port: &'a str, api: &'a str) -> Vec<&'a str> {
    vec!["--port", port, "--api-root", api, "--allow-from", "42"]
}

#[test]
fn non_interactive_onboarding_keeps_the_token_in_the_keychain_only() {
    let api = BotApiDouble::start();
    api.add_bot(TOKEN, "my_rescue_bot");
    let home = Home::new();
    let port = free_base().to_string();
    let r = onboard(&home, "rescue", &operator_flags(&port, &api.url), TOKEN);
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

/// `rescue.watch` of `home`'s rescue profile, as `config get` reads it: on
/// or off, and the rungs it may climb.
fn assert_watch(home: &Home, enabled: bool, actions: &[&str]) {
    let r = home.run(&[
        "--profile",
        "rescue",
        "--json",
        "config",
        "get",
        "rescue.watch",
    ]);
    let v: serde_json::Value = if r.code == 0 {
        let out: serde_json::Value = serde_json::from_str(&r.stdout).expect("config get --json");
        out["value"].clone()
    } else {
        serde_json::Value::Null
    };
    let text = &r.stdout;
    assert_eq!(v["enabled"].as_bool().unwrap_or(false), enabled, "{text}");
    let written: Vec<&str> = v["actions"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    assert_eq!(written, actions, "{text}");
}

/// Naming targets turns the watch on (restart only, unless
/// `--watch-rollback`); without targets it stays off, and
/// `--watch-rollback` alone is refused.
#[test]
fn onboarding_with_targets_turns_the_watch_on() {
    let api = BotApiDouble::start();
    api.add_bot(TOKEN, "watching_rescue_bot");
    let home = Home::new();
    home.setup_on_free_port("main");
    let port = free_base().to_string();
    let base = operator_flags(&port, &api.url);

    let alone: Vec<&str> = base.iter().copied().chain(["--watch-rollback"]).collect();
    let r = onboard(&home, "rescue", &alone, TOKEN);
    r.expect_code(2);
    assert!(
        r.stderr.contains("--watch-rollback") && r.stderr.contains("--target"),
        "{}",
        r.stderr
    );

    let plain: Vec<&str> = base.iter().copied().chain(["--target", "main"]).collect();
    onboard(&home, "rescue", &plain, TOKEN).expect_code(0);
    assert_watch(&home, true, &["restart"]);

    let both: Vec<&str> = plain.iter().copied().chain(["--watch-rollback"]).collect();
    onboard(&home, "rescue", &both, TOKEN).expect_code(0);
    assert_watch(&home, true, &["restart", "rollback"]);

    let other = Home::new();
    onboard(&other, "rescue", &base, TOKEN).expect_code(0);
    assert_watch(&other, false, &[]);
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
    ])
    .env("OLLAMA_HOST", nothing_at());
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
    s.expect("The bot will watch main").expect("the watch said");
    s.expect("Also roll a target back to its last good config")
        .expect("rollback asked");
    s.send_line("y").expect("send");
    // The rescue bot's assistant is optional: no model now.
    s.expect("Provider [1-5; empty: no model now]")
        .expect("the model step comes last");
    s.send_line("").expect("send");
    s.expect("Install the gateway as a service")
        .expect("service");
    s.send_line("n").expect("send");
    s.expect(Eof).expect("finished");
    let config = home.read(".omniclaw-rescue/omniclaw.json");
    assert!(
        config.contains("31337") && config.contains("main"),
        "{config}"
    );
    assert_watch(&home, true, &["restart", "rollback"]);
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

/// The provider double (on its own runtime, kept alive by the caller),
/// listing `models` with their USD per million input and output tokens,
/// and taking [`API_KEY`] only.
fn provider(models: &[(&str, Option<(f64, f64)>)]) -> (tokio::runtime::Runtime, Double) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let double = rt.block_on(Double::start()).expect("double");
    for (id, price) in models {
        double.list_model(id, *price);
    }
    double.require_key(API_KEY);
    (rt, double)
}

/// `onboard` with the model flags, against the provider double: the
/// answers of a main bot without Telegram, `key` on stdin.
fn onboard_model(home: &Home, base_url: &str, model: &str, extra: &[&str], key: &str) -> Run {
    let mut args = vec![
        "onboard",
        "--non-interactive",
        "--provider",
        "openai",
        "--api-key-stdin",
        "--base-url",
        base_url,
        "--model",
        model,
    ];
    args.extend_from_slice(extra);
    home.run_stdin(&args, key, &[("OLLAMA_HOST", &nothing_at())])
}

/// Where `secrets status` says the API key of `provider` is stored
/// (`None`: not stored); the key itself never appears in its answer.
fn key_stored(home: &Home, profile: &[&str], provider: &str) -> Option<String> {
    let name = format!("models.providers.{provider}.apiKey");
    let status = home.run(&[profile, &["secrets", "status", &name, "--json"]].concat());
    status.expect_code(0);
    assert!(!status.stdout.contains(API_KEY), "{}", status.stdout);
    let json = status.json();
    (json["secrets"][0]["stored"] == true).then(|| {
        json["store"]["kind"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    })
}

#[test]
fn the_model_flags_set_up_the_assistant_with_its_key_in_the_keychain_only() {
    let (rt, double) = provider(&[("double-mini", Some((1.0, 2.0))), ("double-max", None)]);
    double.push(Reply::text("Hello from the double.").usage(1000, 500));
    let home = Home::new();
    let port = free_base().to_string();
    let base = double.base_url("openai-completions");
    let r = onboard_model(&home, &base, "double-mini", &["--port", &port], API_KEY);
    r.expect_code(0)
        .expect_output("Set up profile default")
        .expect_output("model      openai/double-mini, its API key in the OS keychain")
        .expect_output("reply      \"Hello from the double.\"")
        .expect_output("1000 tokens in, 500 out, cost $0.002000");
    // The test message went to the model picked, with the key given.
    let chat = double.chats().pop().expect("the test message");
    assert_eq!(chat.body["model"], "double-mini");
    assert_eq!(
        chat.header("authorization"),
        Some(format!("Bearer {API_KEY}").as_str())
    );
    let config = home.read(".omniclaw/omniclaw.json");
    assert!(config.contains("openai/double-mini"), "{config}");
    assert!(config.contains(&base), "{config}");
    assert!(!home.all_text().contains(API_KEY), "the key reached a file");
    assert!(!r.stdout.contains(API_KEY) && !r.stderr.contains(API_KEY));
    assert_eq!(key_stored(&home, &[], "openai"), Some("keychain".into()));

    // A model the provider does not list is refused with the ones it has.
    let before = home.snapshot();
    let r = onboard_model(&home, &base, "double-mi", &[], API_KEY);
    r.expect_code(2).expect_output(
        "--model: openai lists no model \"double-mi\"; it has: double-mini, double-max; nothing was changed",
    );
    assert_eq!(home.snapshot(), before);

    // The gateway then answers with that model, the key from the keychain.
    double.push(Reply::text("Hello through the gateway."));
    let token = home.run(&["secrets", "get", "gateway.auth.token"]);
    token.expect_code(0);
    let _gateway = GatewayProc::start(&home, &["gateway"]);
    let done = rt.block_on(async {
        let client = Client::connect(
            &format!("ws://127.0.0.1:{port}"),
            Auth::Token(token.stdout.trim().into()),
            &["operator.write"],
        )
        .await
        .expect("connect");
        let run = json!({"message": "hi", "idempotencyKey": "after-onboarding"});
        client.call("agent", run).await.expect("agent");
        let wait = json!({"runId": "after-onboarding", "timeoutMs": 20_000});
        client.call("agent.wait", wait).await.expect("agent.wait")
    });
    assert_eq!(done["status"], "ok", "{done}");
    let chat = double.chats().pop().expect("the gateway's call");
    assert_eq!(chat.body["model"], "double-mini");
    assert_eq!(
        chat.header("authorization"),
        Some(format!("Bearer {API_KEY}").as_str())
    );
}

#[test]
fn a_refused_key_or_an_unreachable_provider_writes_nothing() {
    let (_rt, double) = provider(&[("double-mini", Some((1.0, 2.0)))]);
    let home = Home::new();
    let base = double.base_url("openai-completions");
    for existing in [false, true] {
        if existing {
            home.setup_on_free_port("main");
        }
        let before = home.snapshot();
        let r = onboard_model(&home, &base, "double-mini", &[], WRONG_KEY);
        r.expect_code(2)
            .expect_output("openai refused the API key (HTTP 401: Incorrect API key provided")
            .expect_output("nothing was changed");
        assert!(!r.stderr.contains("fedcba9876543210"), "{}", r.stderr);
        assert_eq!(home.snapshot(), before, "a refused key changed files");

        let dead = nothing_at();
        let r = onboard_model(&home, &format!("http://{dead}/v1"), "m", &[], API_KEY);
        r.expect_code(1).expect_output(&format!(
            "cannot reach openai at http://{dead}/v1 ({dead} refused the connection): check the base URL, the network, and that the server runs; nothing was changed"
        ));
        assert_eq!(
            home.snapshot(),
            before,
            "an unreachable provider changed files"
        );
    }
    assert!(
        double.chats().is_empty(),
        "no test message with a refused key"
    );
    // Nor did the key reach the store.
    assert_eq!(key_stored(&home, &[], "openai"), None);
}

/// Onboarding at a terminal: each step waits for its text, then sends
/// its line (if any); ends with the command.
fn talk(cmd: std::process::Command, steps: &[(&str, Option<&str>)]) {
    use expectrl::{Eof, Expect, Session};
    let mut s = Session::spawn(cmd).expect("spawn in a pty");
    s.set_expect_timeout(Some(Duration::from_secs(30)));
    for (text, line) in steps {
        s.expect(*text)
            .unwrap_or_else(|e| panic!("waiting for {text:?}: {e}"));
        if let Some(line) = line {
            s.send_line(line).expect("send");
        }
    }
    s.expect(Eof).expect("finished");
}

/// The last steps of a main bot's onboarding: no Telegram bot, no service.
const NO_BOT_NO_SERVICE: [(&str, Option<&str>); 2] = [
    ("BotFather token (input hidden; empty to skip", Some("")),
    ("Install the gateway as a service", Some("n")),
];

#[test]
fn at_the_terminal_a_model_is_picked_from_the_list() {
    let (_rt, double) = provider(&[("big", None), ("small", Some((0.5, 1.5)))]);
    double.push(Reply::text("Hi, I am small.").usage(20, 6));
    let home = Home::new();
    let port = free_base().to_string();
    let mut cmd = home.cmd();
    cmd.args(["onboard", "--port", &port])
        .env("OLLAMA_HOST", nothing_at());
    let base = double.base_url("openai-completions");
    let mut steps = vec![
        ("none found at http://", None),
        ("Provider [1-5; empty: no model now]", Some("5")),
        ("Base URL of the server", Some(base.as_str())),
        ("Its API", Some("")),
        ("Its name in the config", Some("lab")),
        ("API key of the server (input hidden", Some(API_KEY)),
        ("lab lists 2 model(s)", None),
        ("2) small", None),
        // Part of an id searches the list.
        ("Model [1-2", Some("sma")),
        ("2) small", None),
        ("Model [1-2", Some("2")),
        ("Hi, I am small.", None),
        ("20 tokens in, 6 out, cost $0.000019", None),
    ];
    steps.extend(NO_BOT_NO_SERVICE);
    steps.push(("model      lab/small", None));
    talk(cmd, &steps);
    let config = home.read(".omniclaw/omniclaw.json");
    assert!(config.contains("lab/small"), "{config}");
    assert!(!home.all_text().contains(API_KEY), "the key reached a file");
    let chat = double.chats().pop().expect("the test message");
    assert_eq!(chat.body["model"], "small");
    assert_eq!(key_stored(&home, &[], "lab"), Some("keychain".into()));
}

/// A local Ollama (here the double, where `OLLAMA_HOST` says, as Ollama's
/// own command reads it) is found by itself and offered first.
#[test]
fn a_running_ollama_is_found_by_itself() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let double = rt.block_on(Double::start()).expect("double");
    double.set_capabilities("llama3.1:8b", &["completion", "tools"]);
    double.set_context_length("llama3.1:8b", 131_072);
    double.push(Reply::text("Hello from llama.").usage(30, 6));
    let home = Home::new();
    let port = free_base().to_string();
    let ollama = double.addr().to_string();
    let mut cmd = home.cmd();
    cmd.args(["onboard", "--port", &port])
        .env("OLLAMA_HOST", &ollama);
    let found = format!("running at http://{ollama}, 1 model(s)");
    let mut steps = vec![
        (found.as_str(), None),
        ("empty: 4, the local Ollama", Some("")),
        ("ollama lists 1 model(s)", None),
        ("llama3.1:8b", None),
        ("Model [empty: 1]", Some("")),
        ("Hello from llama.", None),
        ("30 tokens in, 6 out, free: Ollama runs the model", None),
    ];
    steps.extend(NO_BOT_NO_SERVICE);
    talk(cmd, &steps);
    let config = home.read(".omniclaw/omniclaw.json");
    assert!(config.contains("ollama/llama3.1:8b"), "{config}");
    assert!(
        !config.contains("apiKey"),
        "a local Ollama needs no key: {config}"
    );
    let chat = double.chats().pop().expect("the test message");
    assert_eq!(chat.path, "/api/chat");

    // Without a terminal, `--provider ollama` finds it the same way.
    double.push(Reply::text("Hello again."));
    let port = free_base().to_string();
    let r = home.run_env(
        &[
            "--profile",
            "lab",
            "--json",
            "onboard",
            "--non-interactive",
            "--port",
            &port,
            "--provider",
            "ollama",
            "--model",
            "llama3.1:8b",
        ],
        &[("OLLAMA_HOST", &ollama)],
    );
    r.expect_code(0)
        .expect_output(&format!("Asking ollama at http://{ollama} for its models"));
    let json = r.json();
    assert_eq!(json["model"], "ollama/llama3.1:8b", "{json}");
    assert_eq!(json["test"]["reply"], "Hello again.", "{json}");
    assert_eq!(json["test"]["costUsd"], 0.0, "{json}");
}

/// Each secret from its own flag: the bot token on stdin, the API key from
/// a file; both on stdin is refused before anything is asked of anyone.
#[test]
fn a_rescue_bot_takes_its_token_on_stdin_and_the_key_from_a_file() {
    let (_rt, double) = provider(&[("claude-test", Some((3.0, 15.0)))]);
    double.push(Reply::text("Rescue here.").usage(100, 10));
    let api = BotApiDouble::start();
    api.add_bot(TOKEN, "keyed_rescue_bot");
    let home = Home::new();
    let key_file = home.write("anthropic.key", &format!("{API_KEY}\n"));
    let key_file = key_file.to_str().expect("utf-8 path");
    let port = free_base().to_string();
    let base = double.base_url("anthropic-messages");
    let model = [
        "--provider",
        "anthropic",
        "--base-url",
        base.as_str(),
        "--model",
        "claude-test",
    ];

    let before = home.snapshot();
    let both = [&["--api-key-stdin", "--api-root", &api.url][..], &model].concat();
    onboard(&home, "rescue", &both, TOKEN)
        .expect_code(2)
        .expect_output("stdin carries one secret: give the API key with --api-key-file PATH");
    assert_eq!(home.snapshot(), before);
    assert_eq!(api.calls("getMe"), 0, "refused before asking Telegram");

    let args = [
        &[
            "--port",
            &port,
            "--api-root",
            &api.url,
            "--allow-from",
            "42",
            "--api-key-file",
            key_file,
        ][..],
        &model,
    ]
    .concat();
    onboard(&home, "rescue", &args, TOKEN)
        .expect_code(0)
        .expect_output("model      anthropic/claude-test")
        .expect_output("reply      \"Rescue here.\"")
        .expect_output("100 tokens in, 10 out, cost $0.000450")
        .expect_output("@keyed_rescue_bot");
    let chat = double.chats().pop().expect("the test message");
    assert_eq!(chat.path, "/v1/messages");
    assert_eq!(chat.header("x-api-key"), Some(API_KEY));
    let config = home.read(".omniclaw-rescue/omniclaw.json");
    assert!(
        config.contains("anthropic/claude-test") && config.contains("42"),
        "{config}"
    );
    // The key file is the user's; no file onboarding wrote holds the key.
    std::fs::remove_file(key_file).expect("rm key file");
    assert!(!home.all_text().contains(API_KEY), "the key reached a file");
    assert!(!home.all_text().contains(TOKEN), "the token reached a file");
    assert_eq!(
        key_stored(&home, &["--profile", "rescue"], "anthropic"),
        Some("keychain".into())
    );
}

/// Onboarding a profile that has a model completes it: the new model is
/// the primary, the old one its first fallback, the rest of the config
/// (a comment, a hand-set key) kept.
#[test]
fn a_second_model_keeps_the_first_as_fallback() {
    let (_rt, double) = provider(&[("double-mini", None), ("double-max", None)]);
    double.push(Reply::text("One."));
    double.push(Reply::text("Two."));
    let home = Home::new();
    let port = free_base().to_string();
    let base = double.base_url("openai-completions");
    onboard_model(&home, &base, "double-mini", &["--port", &port], API_KEY)
        .expect_code(0)
        .expect_output("cost unknown: openai publishes no price for double-mini");
    let path = ".omniclaw/omniclaw.json";
    let config = home.read(path);
    home.write(path, &format!("// my notes\n{config}"));
    home.run(&["config", "set", "logging.level", "\"debug\""])
        .expect_code(0);

    onboard_model(&home, &base, "double-max", &[], API_KEY)
        .expect_code(0)
        .expect_output("Updated profile default")
        .expect_output(
            "model      openai/double-max (was openai/double-mini, now the first fallback)",
        );
    let config = home.read(path);
    assert!(config.starts_with("// my notes"), "{config}");
    let get = |key: &str| home.run(&["config", "get", key]).stdout;
    assert!(get("logging.level").contains("debug"));
    assert!(get("agents.defaults.model.primary").contains("openai/double-max"));
    assert!(get("agents.defaults.model.fallbacks").contains("openai/double-mini"));
    assert_eq!(get("gateway.port").trim(), port, "the port stays");
}
