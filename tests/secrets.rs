//! Secrets in the OS keychain (the real Secret Service of the test session),
//! the headless `--secrets-file` mode, and the guarantee that no secret
//! reaches a file under the home or any command's output.

use std::process::Command;
use std::sync::{RwLock, RwLockReadGuard};
use std::time::Duration;

use omniclaw_tests::desktop::{python, repo_root};
use omniclaw_tests::{free_base, GatewayProc as Gateway, Home, Run};

/// The session's login keyring: tests share it, and the one that locks it
/// has it to itself meanwhile.
static KEYCHAIN: RwLock<()> = RwLock::new(());

fn keychain() -> RwLockReadGuard<'static, ()> {
    KEYCHAIN.read().unwrap_or_else(|e| e.into_inner())
}

fn setup(home: &Home, profile: &str, port: u16) {
    home.run(&["--profile", profile, "setup", "--port", &port.to_string()])
        .expect_code(0);
}

#[test]
fn setup_puts_a_generated_token_in_the_keychain_and_the_plain_gateway_command_starts() {
    let _keychain = keychain();
    let home = Home::new();
    let base = free_base();
    setup(&home, "main", base);
    let cfg = home.read(".omniclaw-main/omniclaw.json");
    assert!(cfg.contains("\"source\": \"keychain\""), "{cfg}");

    let st = home.run(&["--profile", "main", "secrets", "status", "--json"]);
    st.expect_code(0);
    let v = st.json();
    assert_eq!(v["store"]["kind"], "keychain");
    let token = &v["secrets"][0];
    assert_eq!(token["name"], "gateway.auth.token");
    assert_eq!(token["stored"], true);
    assert!(token["fingerprint"]
        .as_str()
        .is_some_and(|f| f.starts_with("sha256:")));

    // No flag, no variable: the token comes from the keychain.
    let _gw = Gateway::start(&home, &["--profile", "main", "gateway"]);
    home.run(&["--profile", "main", "health"]).expect_code(0);
    home.run(&["--profile", "main", "gateway", "status"])
        .expect_code(0)
        .expect_output("rpc      ok");
    let probe = home.run(&["gateway", "probe", "--json"]);
    assert!(probe.stdout.contains("\"main\""), "{}", probe.stdout);

    // A second setup keeps the token (idempotent).
    home.run(&["--profile", "main", "setup"]).expect_code(0);
    let again = home
        .run(&["--profile", "main", "secrets", "status", "--json"])
        .json();
    assert_eq!(again["secrets"][0]["fingerprint"], token["fingerprint"]);
}

#[test]
fn secrets_are_set_from_stdin_shown_by_fingerprint_and_removed() {
    let _keychain = keychain();
    let home = Home::new();
    setup(&home, "main", free_base());
    let value = "pw-from-stdin-7f3a9c";
    let set = home.run_stdin(
        &[
            "--profile",
            "main",
            "secrets",
            "set",
            "gateway.auth.password",
        ],
        &format!("{value}\n"),
        &[],
    );
    set.expect_code(0)
        .expect_output("Stored gateway.auth.password");
    let st = home.run(&[
        "--profile",
        "main",
        "secrets",
        "status",
        "gateway.auth.password",
    ]);
    st.expect_code(0).expect_output("present (sha256:");
    for r in [&set, &st] {
        assert!(!r.stdout.contains(value) && !r.stderr.contains(value));
    }
    // The config now refers to the store.
    let cfg = home.read(".omniclaw-main/omniclaw.json");
    assert!(
        cfg.contains("\"password\": {") && !cfg.contains(value),
        "{cfg}"
    );

    // Values never come from argv; unknown names and empty input are usage errors.
    home.run(&[
        "--profile",
        "main",
        "secrets",
        "set",
        "gateway.auth.password",
        value,
    ])
    .expect_code(2);
    home.run_stdin(
        &["--profile", "main", "secrets", "set", "gateway.port"],
        "x",
        &[],
    )
    .expect_code(2)
    .expect_output("gateway.port is not a secret name");
    home.run_stdin(
        &[
            "--profile",
            "main",
            "secrets",
            "set",
            "gateway.remote.token",
        ],
        "",
        &[],
    )
    .expect_code(2)
    .expect_output("no value for gateway.remote.token");

    home.run(&[
        "--profile",
        "main",
        "secrets",
        "rm",
        "gateway.auth.password",
    ])
    .expect_code(0)
    .expect_output("Removed gateway.auth.password");
    // Referenced but missing: status says so and exits 1.
    home.run(&[
        "--profile",
        "main",
        "secrets",
        "status",
        "gateway.auth.password",
    ])
    .expect_code(1)
    .expect_output("missing");
}

#[test]
fn without_a_keychain_commands_say_so_and_the_secrets_file_mode_works() {
    let _keychain = keychain();
    let home = Home::new();
    let no_bus = [(
        "DBUS_SESSION_BUS_ADDRESS",
        "unix:path=/nonexistent/omniclaw-test-bus",
    )];
    let port = free_base().to_string();
    // Setup keeps the token in the 0600 file and says why.
    home.run_env(&["--profile", "main", "setup", "--port", &port], &no_bus)
        .expect_code(0)
        .expect_output("no OS keychain is reachable")
        .expect_output("secrets.json (mode 0600");

    home.run_env(
        &[
            "--profile",
            "main",
            "--secrets-file",
            "setup",
            "--port",
            &port,
        ],
        &no_bus,
    )
    .expect_code(0);
    let file = home.path().join(".omniclaw-main/secrets.json");
    omniclaw_tests::assert_mode(&file, 0o600);
    // Once the file exists the profile keeps using it, flag or not.
    let st = home.run_env(
        &["--profile", "main", "secrets", "status", "--json"],
        &no_bus,
    );
    st.expect_code(0);
    assert_eq!(st.json()["store"]["kind"], "file");
    assert_eq!(st.json()["secrets"][0]["stored"], true);
    home.run_env(&["--profile", "main", "doctor"], &no_bus)
        .expect_output("secrets in ~/.omniclaw-main/secrets.json (mode 0600");
    {
        let _gw = Gateway::start(&home, &["--profile", "main", "gateway"]);
        home.run_env(&["--profile", "main", "health"], &no_bus)
            .expect_code(0);
    }

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        home.run_env(&["--profile", "main", "secrets", "status"], &no_bus)
            .expect_code(1)
            .expect_output("mode 644")
            .expect_output("chmod 600");
    }
}

#[test]
fn no_secret_reaches_a_file_or_any_output() {
    let _keychain = keychain();
    let home = Home::new();
    let main_port = free_base();
    // Two free ports can land in each other's CDP range (100 ports above base + 11).
    let rescue_port = std::iter::repeat_with(free_base)
        .find(|p| p.abs_diff(main_port) > 120)
        .expect("a second free base");
    setup(&home, "main", main_port);
    setup(&home, "rescue", rescue_port);
    let known = [
        ("main", "gateway.auth.token", "main-known-token-5d1e8a2b"),
        (
            "rescue",
            "gateway.auth.token",
            "rescue-known-token-9c4f7e10",
        ),
        (
            "rescue",
            "channels.telegram.botToken",
            "123456:rescue-known-bot-token",
        ),
    ];
    let mut outputs: Vec<(String, Run)> = Vec::new();
    for (profile, name, value) in known {
        let r = home.run_stdin(&["--profile", profile, "secrets", "set", name], value, &[]);
        r.expect_code(0);
        outputs.push((format!("secrets set {profile} {name}"), r));
    }
    {
        let _main = Gateway::start(&home, &["--profile", "main", "gateway"]);
        let _rescue = Gateway::start(&home, &["--profile", "rescue", "gateway"]);
        // An edit makes the gateways log a reload.
        home.config_set("main", "logging.level", "\"debug\"")
            .expect_code(0);
        std::thread::sleep(Duration::from_millis(800));
        let commands: &[&[&str]] = &[
            &["status"],
            &["--profile", "main", "health"],
            &["--profile", "rescue", "health"],
            &["--profile", "main", "gateway", "status"],
            &["--profile", "rescue", "gateway", "status"],
            &["gateway", "probe"],
            &["--profile", "main", "config", "get", "gateway.auth.token"],
            &[
                "--profile",
                "rescue",
                "config",
                "get",
                "channels.telegram.botToken",
            ],
            &["--profile", "rescue", "config", "get", "channels"],
            &["doctor"],
            &["ports"],
            &["--profile", "main", "secrets", "status"],
            &["--profile", "rescue", "secrets", "status"],
            &["--profile", "main", "logs"],
            &["--profile", "rescue", "logs"],
        ];
        for args in commands {
            for json in [false, true] {
                let mut a: Vec<&str> = args.to_vec();
                if json {
                    a.push("--json");
                }
                outputs.push((a.join(" "), home.run(&a)));
            }
        }
        assert_eq!(
            outputs
                .iter()
                .find(|(c, _)| c == "--profile main health")
                .map(|(_, r)| r.code),
            Some(0)
        );
    }
    let files = home.snapshot();
    assert!(
        files
            .keys()
            .any(|p| p.to_string_lossy().contains("/logs/gateway.")),
        "the gateways wrote logs"
    );
    for (_, _, value) in known {
        for (cmd, r) in &outputs {
            assert!(
                !r.stdout.contains(value) && !r.stderr.contains(value),
                "`{cmd}` printed a secret:\n{}\n{}",
                r.stdout,
                r.stderr
            );
        }
        for (path, bytes) in &files {
            assert!(
                !String::from_utf8_lossy(bytes).contains(value),
                "{} holds a secret",
                path.display()
            );
        }
    }
}

#[test]
fn doctor_fix_removes_unknown_keys_moves_plaintext_secrets_and_resolves_a_port_clash() {
    let _keychain = keychain();
    let home = Home::new();
    let base = free_base();
    setup(&home, "main", base);
    // rescue is set up later and then edited into main's CDP range, with a
    // plaintext bot token and an unknown key.
    std::thread::sleep(Duration::from_millis(20));
    setup(&home, "rescue", free_base());
    let bot = "654321:plaintext-bot-token-known";
    let clash = base + 20;
    home.write(
        ".omniclaw-rescue/omniclaw.json",
        &format!(
            "// rescue\n{{\n  gateway: {{ port: {clash}, auth: {{ mode: 'token', token: {{ source: 'keychain' }} }}, colour: 'red' }},\n  channels: {{ telegram: {{ botToken: '{bot}' }} }},\n}}\n"
        ),
    );
    home.run(&["doctor"]).expect_code(1);

    // Without --yes and without a terminal: refused, nothing changed.
    let before = home.snapshot();
    home.run(&["doctor", "--fix"])
        .expect_code(2)
        .expect_output("confirm with --yes")
        .expect_output("remove unknown key gateway.colour")
        .expect_output("move channels.telegram.botToken from plain text into the secret store")
        .expect_output(&format!("move base port {clash}"));
    assert_eq!(home.snapshot(), before);

    let fixed = home.run(&["doctor", "--fix", "--yes"]);
    fixed.expect_code(0).expect_output("Applied.");
    let cfg = home.read(".omniclaw-rescue/omniclaw.json");
    assert!(!cfg.contains("colour") && !cfg.contains(bot), "{cfg}");
    assert!(cfg.contains("// rescue"), "comments survive: {cfg}");
    let bak = home.read(".omniclaw-rescue/omniclaw.json.bak");
    assert!(
        bak.contains("colour") && !bak.contains(bot),
        "backup without the secret: {bak}"
    );
    let st = home.run(&[
        "--profile",
        "rescue",
        "secrets",
        "status",
        "channels.telegram.botToken",
        "--json",
    ]);
    assert_eq!(st.json()["secrets"][0]["stored"], true);
    assert!(
        home.read(".omniclaw-main/omniclaw.json")
            .contains(&format!("\"port\": {base}")),
        "main, set up first, keeps its port"
    );
    home.run(&["ports"]).expect_code(0);
    home.run(&["doctor", "--fix", "--yes"])
        .expect_code(0)
        .expect_output("Nothing to fix automatically.");
    for (path, bytes) in home.snapshot() {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(bot),
            "{} holds the bot token",
            path.display()
        );
    }
}

/// Locks or unlocks the session's login keyring over D-Bus, as a screen
/// lock or a login would (gnome-keyring's own unlock call: the Secret
/// Service's `Unlock` needs a prompt, which a test session cannot answer).
fn login_keyring(action: &str) {
    const SCRIPT: &str = r#"
import sys, dbus
bus = dbus.SessionBus()
svc = bus.get_object("org.freedesktop.secrets", "/org/freedesktop/secrets")
login = dbus.ObjectPath("/org/freedesktop/secrets/collection/login")
service = dbus.Interface(svc, "org.freedesktop.Secret.Service")
if sys.argv[1] == "lock":
    service.Lock([login])
else:
    _, session = service.OpenSession("plain", dbus.String("", variant_level=1))
    secret = (session, dbus.ByteArray(b""), dbus.ByteArray(sys.argv[2].encode()), "text/plain")
    dbus.Interface(svc, "org.gnome.keyring.InternalUnsupportedGuiltRiddenInterface").UnlockWithMasterPassword(login, secret)
"#;
    let out = Command::new(python())
        .args(["-c", SCRIPT, action, &session_password()])
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{action} the login keyring: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The password `scripts/session.sh` gave the login keyring.
fn session_password() -> String {
    let script =
        std::fs::read_to_string(repo_root().join("scripts/session.sh")).expect("session.sh");
    script
        .lines()
        .find(|l| l.contains("gnome-keyring-daemon --unlock"))
        .and_then(|l| l.split('\'').nth(1))
        .expect("scripts/session.sh pipes the keyring password into gnome-keyring-daemon")
        .to_string()
}

/// Unlocks the login keyring when dropped, so a failing test leaves it as
/// it found it.
struct Unlock;

impl Drop for Unlock {
    fn drop(&mut self) {
        login_keyring("unlock");
    }
}

#[test]
fn a_locked_keychain_is_an_error_not_a_reason_for_a_file() {
    let _only_me = KEYCHAIN.write().unwrap_or_else(|e| e.into_inner());
    let home = Home::new();
    let port = free_base().to_string();
    let setup = ["--profile", "k", "setup", "--port", port.as_str()];
    {
        login_keyring("lock");
        let _unlock = Unlock;
        let before = home.snapshot();
        home.run(&setup)
            .expect_code(1)
            .expect_output("the OS keychain answered but refused k/gateway.auth.token@")
            .expect_output("the login keyring is locked")
            .expect_output("gnome-keyring-daemon --unlock")
            .expect_output("`omniclaw --profile k --secrets-file setup`");
        assert_eq!(before, home.snapshot(), "setup wrote nothing");
        assert!(!home.path().join(".omniclaw-k/secrets.json").exists());
    }
    let done = home.run(&["--profile", "k", "setup", "--port", &port, "--json"]);
    done.expect_code(0);
    assert_eq!(done.json()["secretStore"], "keychain");
    assert_eq!(done.json()["tokenGenerated"], true);
    assert!(!home.path().join(".omniclaw-k/secrets.json").exists());
}

/// A gateway whose store cannot be reached right now exits 1, so a service
/// retries; a secret that is simply not stored is bad input (exit 2), which
/// a service does not retry.
#[test]
fn a_gateway_tells_an_unreachable_store_from_a_missing_secret() {
    let _keychain = keychain();
    let home = Home::new();
    setup(&home, "k", free_base());
    let no_bus = [(
        "DBUS_SESSION_BUS_ADDRESS",
        "unix:path=/nonexistent/omniclaw-test-bus",
    )];
    home.run_env(&["--profile", "k", "gateway"], &no_bus)
        .expect_code(1)
        .expect_output("no OS keychain is reachable")
        .expect_output("`omniclaw --profile k --secrets-file secrets set gateway.auth.token`");
    home.run(&["--profile", "k", "secrets", "rm", "gateway.auth.token"])
        .expect_code(0);
    home.run(&["--profile", "k", "gateway"])
        .expect_code(2)
        .expect_output("holds no token for profile k: store one with `omniclaw --profile k secrets set gateway.auth.token`");
    // In the file store, the fix names the file store.
    home.run(&["--profile", "k", "--secrets-file", "gateway"])
        .expect_code(2)
        .expect_output(
            "store one with `omniclaw --profile k --secrets-file secrets set gateway.auth.token`",
        );
}

/// The fingerprint of `name` in `profile`'s store, as `secrets status` shows it.
fn fingerprint(home: &Home, profile: &str, name: &str) -> serde_json::Value {
    let st = home.run(&["--profile", profile, "secrets", "status", name, "--json"]);
    st.json()["secrets"][0]["fingerprint"].clone()
}

#[test]
fn secrets_file_setup_of_a_keychain_profile_moves_its_token_and_clients_keep_working() {
    let _keychain = keychain();
    let home = Home::new();
    setup(&home, "main", free_base());
    let before = fingerprint(&home, "main", "gateway.auth.token");
    assert!(before.is_string());
    let _gw = Gateway::start(&home, &["--profile", "main", "gateway"]);
    home.run(&["--profile", "main", "health"]).expect_code(0);

    // Doctor's advice for a keychain that will not stay open.
    home.run(&["--profile", "main", "--secrets-file", "setup"])
        .expect_code(0)
        .expect_output("moved from the OS keychain into ~/.omniclaw-main/secrets.json")
        .expect_output("the gateway token is unchanged");
    assert_eq!(fingerprint(&home, "main", "gateway.auth.token"), before);
    // The running gateway still takes the token every command now reads from the file.
    home.run(&["--profile", "main", "health"]).expect_code(0);
    let status = home.run(&["--profile", "main", "secrets", "status"]);
    status
        .expect_code(0)
        .expect_output("store: 0600 file")
        .expect_output("(0600 file ~/.omniclaw-main/secrets.json)");
    assert!(
        !status.stdout.contains("store: keychain"),
        "{}",
        status.stdout
    );
    let all = home.run(&["status", "--json"]).json();
    assert_eq!(all["profiles"][0]["secrets"], "file", "{all}");

    // And back, keeping the value; the keychain copy was removed on the way out.
    home.run(&["--profile", "main", "secrets", "move", "--to", "keychain"])
        .expect_code(0)
        .expect_output("Moved 1 secret of profile main to the OS keychain")
        .expect_output("no restart is needed");
    assert!(!home.path().join(".omniclaw-main/secrets.json").exists());
    assert_eq!(fingerprint(&home, "main", "gateway.auth.token"), before);
    home.run(&["--profile", "main", "health"]).expect_code(0);
    home.run(&["--profile", "main", "secrets", "status"])
        .expect_output("store: keychain");
    home.run(&["--profile", "main", "secrets", "move", "--to", "keychain"])
        .expect_code(2)
        .expect_output("already in the OS keychain");
}

#[test]
fn a_move_refuses_while_its_source_cannot_be_read() {
    let home = Home::new();
    home.run(&[
        "--profile",
        "main",
        "--secrets-file",
        "setup",
        "--port",
        &free_base().to_string(),
    ])
    .expect_code(0);
    let file = home.path().join(".omniclaw-main/secrets.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let before = home.snapshot();
        home.run(&["--profile", "main", "secrets", "move", "--to", "keychain"])
            .expect_code(1)
            .expect_output("nothing was moved")
            .expect_output("chmod 600");
        assert_eq!(before, home.snapshot());
    }
}

#[test]
fn secrets_file_setup_refuses_while_the_keychain_holding_the_token_is_locked() {
    let _only_me = KEYCHAIN.write().unwrap_or_else(|e| e.into_inner());
    let home = Home::new();
    setup(&home, "k", free_base());
    login_keyring("lock");
    let _unlock = Unlock;
    let before = home.snapshot();
    home.run(&["--profile", "k", "--secrets-file", "setup"])
        .expect_code(1)
        .expect_output("they must move with it, so setup changed nothing")
        .expect_output("`omniclaw --profile k secrets move --to file`")
        .expect_output("`omniclaw --profile k --secrets-file secrets set gateway.auth.token`");
    assert_eq!(before, home.snapshot(), "no new token was made");
}

/// `secrets get NAME` prints the one secret asked for — the token a client
/// such as the OpenClaw CLI needs — and nothing else prints it.
#[test]
fn secrets_get_prints_the_one_secret_asked_for() {
    let _keychain = keychain();
    let home = Home::new();
    setup(&home, "main", free_base());
    let got = home.run(&["--profile", "main", "secrets", "get", "gateway.auth.token"]);
    got.expect_code(0);
    let token = got.stdout.trim_end_matches('\n').to_string();
    assert_eq!(token.len(), 48, "{got:?}");
    assert!(token.chars().all(|c| c.is_ascii_hexdigit()), "{token}");
    assert_eq!(got.stdout, format!("{token}\n"), "one line, the value");

    let json = home
        .run(&[
            "--profile",
            "main",
            "--json",
            "secrets",
            "get",
            "gateway.auth.token",
        ])
        .json();
    assert_eq!(
        json,
        serde_json::json!({"name": "gateway.auth.token", "value": token})
    );

    // It is the token the gateway wants: a client given it gets in.
    let _gw = Gateway::start(&home, &["--profile", "main", "gateway"]);
    home.run(&["--profile", "main", "health", "--token", &token])
        .expect_code(0);

    // A secret that is not stored, and a name that is not a secret.
    home.run(&["--profile", "main", "secrets", "get", "gateway.remote.token"])
        .expect_code(1)
        .expect_output("profile main has no gateway.remote.token in the OS keychain: store one with `omniclaw --profile main secrets set gateway.remote.token`");
    home.run(&["--profile", "main", "secrets", "get", "gateway.port"])
        .expect_code(2)
        .expect_output("gateway.port is not a secret name");

    // Nothing else prints it: every other output, and every file.
    for args in [
        &["status"][..],
        &["--json", "status"],
        &["--profile", "main", "health"],
        &["--profile", "main", "--json", "health"],
        &["--profile", "main", "gateway", "status"],
        &["--profile", "main", "--json", "gateway", "status"],
        &["--profile", "main", "secrets", "status"],
        &["--profile", "main", "--json", "secrets", "status"],
        &["--profile", "main", "config", "get", "gateway.auth.token"],
        &["--profile", "main", "logs"],
        &["doctor"],
        &["ports"],
        &["gateway", "probe"],
    ] {
        let run = home.run(args);
        assert!(
            !run.stdout.contains(&token) && !run.stderr.contains(&token),
            "`{}` printed the token",
            args.join(" ")
        );
    }
    assert!(
        !home.all_text().contains(&token),
        "the token reached a file"
    );
}

/// A locked keychain is a problem that may pass (exit 1), and the message
/// speaks of the lock, not of a dialog nobody saw.
#[test]
fn health_with_a_locked_keychain_exits_1_and_names_the_lock() {
    let _only_me = KEYCHAIN.write().unwrap_or_else(|e| e.into_inner());
    let home = Home::new();
    setup(&home, "k", free_base());
    login_keyring("lock");
    let _unlock = Unlock;
    let health = home.run(&["--profile", "k", "health"]);
    health
        .expect_code(1)
        .expect_output("the login keyring is locked")
        .expect_output("gnome-keyring-daemon --unlock");
    assert!(
        !health.stderr.contains("prompt") && !health.stdout.contains("prompt"),
        "{health:?}"
    );
}

/// Onboarding checks the secret store before its first question: a locked
/// keychain is said at once, nothing is asked and nothing written.
#[test]
fn onboarding_with_a_locked_keychain_stops_before_the_first_question() {
    use expectrl::{Eof, Expect, Session};
    let _only_me = KEYCHAIN.write().unwrap_or_else(|e| e.into_inner());
    let home = Home::new();
    login_keyring("lock");
    let _unlock = Unlock;
    let before = home.snapshot();
    let mut cmd = home.cmd();
    cmd.args(["--profile", "rescue", "onboard"]);
    let mut s = Session::spawn(cmd).expect("spawn in a pty");
    s.set_expect_timeout(Some(Duration::from_secs(30)));
    let said = s
        .expect("the login keyring is locked")
        .expect("said at once");
    let before_text = String::from_utf8_lossy(said.before()).into_owned();
    let rest = s.expect(Eof).expect("ended");
    let all = format!("{before_text}{}", String::from_utf8_lossy(rest.as_bytes()));
    assert!(!all.contains("Base port"), "asked a question first:\n{all}");
    assert!(all.contains("nothing was changed"), "{all}");
    assert_eq!(before, home.snapshot(), "onboarding wrote something");
}
