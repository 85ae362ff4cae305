//! The gateway as users run it: the manual's commands verbatim, main and
//! rescue side by side, clean failures, signals, stale locks, and the real
//! OpenClaw client talking to it.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use omniclaw_tests::{free_base, port_is_free, GatewayProc as Gateway, Home, Run};

/// Tests that use the manual's fixed ports (18789, 19001) take turns.
static FIXED_PORTS: Mutex<()> = Mutex::new(());

fn gateway_cmd(home: &Home, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut c = home.cmd();
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

/// `omniclaw ARGS...` as a gateway that must refuse to start; what it said.
fn refused(home: &Home, args: &[&str], what: &str) -> Run {
    Gateway::spawn(gateway_cmd(home, args, &[]))
        .err()
        .unwrap_or_else(|| panic!("{what}: not refused"))
}

fn sh_cmd(home: &Home, line: &str, env: &[(&str, &str)]) -> Command {
    // exec: the signal goes to the gateway, not to the shell.
    let mut c = home.shell_cmd(&format!("exec {line}"));
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

#[test]
fn manual_main_and_rescue_side_by_side() {
    let _fixed = FIXED_PORTS.lock().unwrap_or_else(|e| e.into_inner());
    if !port_is_free(18789) || !port_is_free(19001) {
        eprintln!("skipped: 18789 or 19001 is in use on this machine");
        return;
    }
    let home = Home::new();
    home.shell("omniclaw --profile main setup").expect_code(0);
    home.shell("omniclaw --profile rescue setup").expect_code(0);
    // Each profile reads its token from its own variable.
    home.config_set("main", "gateway.auth.token", "\"${MAIN_TOKEN}\"")
        .expect_code(0);
    home.config_set("rescue", "gateway.auth.token", "\"${RESCUE_TOKEN}\"")
        .expect_code(0);
    let tokens = [
        ("MAIN_TOKEN", "main-secret-token-1"),
        ("RESCUE_TOKEN", "rescue-secret-token-2"),
    ];

    let main = Gateway::spawn(sh_cmd(
        &home,
        "omniclaw --profile main gateway --port 18789",
        &tokens,
    ))
    .unwrap_or_else(|r| panic!("main did not start: {r:?}"));
    let rescue = Gateway::spawn(sh_cmd(
        &home,
        "omniclaw --profile rescue gateway --port 19001",
        &tokens,
    ))
    .unwrap_or_else(|r| panic!("rescue did not start: {r:?}"));
    assert!(
        main.output.contains("ws://127.0.0.1:18789"),
        "{}",
        main.output
    );
    assert!(
        main.output.contains("http://127.0.0.1:18791"),
        "{}",
        main.output
    );
    assert!(
        main.output.contains("http://127.0.0.1:18793/"),
        "{}",
        main.output
    );
    assert!(
        rescue.output.contains("ws://127.0.0.1:19001"),
        "{}",
        rescue.output
    );
    for out in [&main.output, &rescue.output] {
        assert!(
            !out.contains("secret-token"),
            "a token reached the terminal: {out}"
        );
    }

    // The quick checks of the manual.
    home.run_env(&["--profile", "main", "status"], &tokens)
        .expect_code(0)
        .expect_output("running");
    home.run_env(&["--profile", "rescue", "status"], &tokens)
        .expect_code(0);
    let browser = home.run_env(
        &["--profile", "rescue", "browser", "status", "--json"],
        &tokens,
    );
    browser.expect_code(0);
    assert_eq!(browser.json()["controlPort"], 19003);

    // Each answers as itself; probe proves identity, and two isolated
    // profiles answering is what they are for: no warning.
    let probe = home.run_env(&["gateway", "probe", "--json"], &tokens);
    probe.expect_code(0);
    let v = probe.json();
    assert_eq!(v["reachable"], 2);
    let targets = v["targets"].as_array().cloned().unwrap_or_default();
    for (name, port) in [("main", 18789), ("rescue", 19001)] {
        let t = targets
            .iter()
            .find(|t| t["target"] == name)
            .expect("target");
        assert_eq!(t["result"], "ok", "{t}");
        assert_eq!(t["url"], format!("ws://127.0.0.1:{port}"));
        assert_eq!(t["identity"]["profile"], name);
        let cfg = home.path().join(format!(".omniclaw-{name}/omniclaw.json"));
        assert_eq!(t["identity"]["configPath"], cfg.to_string_lossy().as_ref());
    }
    assert_eq!(v["warning"], serde_json::Value::Null, "{v}");
    let text = home.run_env(&["gateway", "probe"], &tokens);
    assert!(!text.stdout.contains("warning"), "{}", text.stdout);
    home.run_env(&["--profile", "rescue", "health"], &tokens)
        .expect_code(0)
        .expect_output("healthy");
    let gs = home.run_env(
        &["--profile", "main", "gateway", "status", "--json"],
        &tokens,
    );
    gs.expect_code(0);
    assert_eq!(gs.json()["running"]["pid"], main.pid());

    // A second copy of a running profile is refused, naming the first.
    let again = Gateway::spawn(sh_cmd(
        &home,
        "omniclaw --profile main gateway --port 18789",
        &tokens,
    ))
    .err()
    .expect("second start must fail");
    again
        .expect_code(1)
        .expect_output(&format!("already running (pid {}, cli)", main.pid()));

    // SIGTERM: clients get `shutdown`, listeners close, the process exits in time.
    let took = main.signal("TERM");
    assert!(took < Duration::from_secs(3), "main took {took:?} to stop");
    let took = rescue.signal("INT");
    assert!(
        took < Duration::from_secs(3),
        "rescue took {took:?} to stop"
    );
    for p in [18789, 18791, 18793, 19001, 19003, 19005] {
        assert!(port_is_free(p), "port {p} still bound after shutdown");
    }
}

#[test]
fn manual_env_example_runs_without_setup() {
    let _fixed = FIXED_PORTS.lock().unwrap_or_else(|e| e.into_inner());
    if !port_is_free(18789) {
        eprintln!("skipped: 18789 is in use on this machine");
        return;
    }
    let home = Home::new();
    let line = "OMNICLAW_CONFIG_PATH=~/.omniclaw/main.json \\\nOMNICLAW_STATE_DIR=~/.omniclaw-main \\\nomniclaw gateway --port 18789";
    let mut cmd = home.shell_cmd(&format!("cd && {line}"));
    cmd.env("OMNICLAW_GATEWAY_TOKEN", "env-example-token");
    let gw = Gateway::spawn(cmd).unwrap_or_else(|r| panic!("did not start: {r:?}"));
    assert!(gw.output.contains("profile main"), "{}", gw.output);
    assert!(gw.output.contains("~/.omniclaw/main.json"), "{}", gw.output);
    assert!(gw.output.contains("~/.omniclaw-main"), "{}", gw.output);
    assert!(home.path().join(".omniclaw-main").is_dir());
    let s = home.run_env(
        &["gateway", "status", "--json"],
        &[
            ("OMNICLAW_CONFIG_PATH", "~/.omniclaw/main.json"),
            ("OMNICLAW_STATE_DIR", "~/.omniclaw-main"),
            ("OMNICLAW_GATEWAY_TOKEN", "env-example-token"),
        ],
    );
    s.expect_code(0);
    assert_eq!(s.json()["rpc"]["ok"], true);
}

#[test]
fn a_taken_port_fails_cleanly_and_binds_nothing() {
    let home = Home::new();
    home.run(&["--profile", "main", "setup"]).expect_code(0);
    let base = free_base();
    let canvas = TcpListener::bind(("127.0.0.1", base + 4)).expect("hold the canvas port");
    let err = Gateway::spawn(gateway_cmd(
        &home,
        &[
            "--profile",
            "main",
            "gateway",
            "--port",
            &base.to_string(),
            "--token",
            "t0k",
        ],
        &[],
    ))
    .err()
    .expect("start must fail");
    err.expect_code(1)
        .expect_output(&format!("port {} for the canvas", base + 4))
        .expect_output(&format!("pid {}", std::process::id()));
    assert!(port_is_free(base), "gateway port left bound");
    assert!(port_is_free(base + 2), "browser control port left bound");
    drop(canvas);
}

#[test]
fn kill_9_leaves_a_lock_that_the_next_start_takes_over() {
    let home = Home::new();
    home.run(&["--profile", "main", "setup"]).expect_code(0);
    let base = free_base().to_string();
    let args = [
        "--profile",
        "main",
        "gateway",
        "--port",
        base.as_str(),
        "--token",
        "t0k",
    ];
    let first = Gateway::spawn(gateway_cmd(&home, &args, &[])).unwrap_or_else(|r| panic!("{r:?}"));
    first.signal("KILL");
    let lock = home.read(".omniclaw-main/gateway.lock");
    assert!(!lock.is_empty(), "the killed gateway left its pid behind");
    let second = Gateway::spawn(gateway_cmd(&home, &args, &[]))
        .unwrap_or_else(|r| panic!("stale lock not recovered: {r:?}"));
    let status = home.run_env(
        &["--profile", "main", "gateway", "status", "--json"],
        &[("OMNICLAW_GATEWAY_TOKEN", "t0k")],
    );
    assert_eq!(status.json()["running"]["pid"], second.pid());
}

#[test]
fn refuses_to_start_without_a_secret_or_with_an_invalid_config() {
    let home = Home::new();
    home.run(&["--profile", "main", "setup"]).expect_code(0);
    // setup generated a token into the keychain; without it the gateway refuses.
    home.run(&["--profile", "main", "secrets", "rm", "gateway.auth.token"])
        .expect_code(0);
    let base = free_base().to_string();
    let r = refused(
        &home,
        &["--profile", "main", "gateway", "--port", &base],
        "no token",
    );
    r.expect_code(2)
        .expect_output("holds no token for profile main")
        .expect_output("secrets set gateway.auth.token")
        .expect_output("--token")
        .expect_output("OMNICLAW_GATEWAY_TOKEN");
    let cfg = home.read(".omniclaw-main/omniclaw.json");
    assert!(
        cfg.contains("\"source\": \"keychain\"") && !cfg.contains("\"token\": \""),
        "the config refers to the keychain and holds no secret: {cfg}"
    );

    home.write(
        ".omniclaw-main/omniclaw.json",
        "{ gateway: { port: 0, bogus: 1 } }",
    );
    let r = refused(
        &home,
        &[
            "--profile",
            "main",
            "gateway",
            "--port",
            &base,
            "--token",
            "t",
        ],
        "invalid config",
    );
    r.expect_code(1)
        .expect_output("refusing to start")
        .expect_output("gateway.port:")
        .expect_output("gateway.bogus: unknown key");
    assert!(port_is_free(base.parse().expect("port")));

    // A LAN bind without auth is refused before anything binds.
    home.write(
        ".omniclaw-main/omniclaw.json",
        "{ gateway: { bind: 'lan', auth: { mode: 'none' } } }",
    );
    let r = refused(
        &home,
        &["--profile", "main", "gateway", "--port", &base],
        "insecure bind",
    );
    r.expect_code(1).expect_output("without authentication");

    // A LAN bind with a trivial token is refused before anything binds,
    // and says why and what to use instead.
    home.write(".omniclaw-main/omniclaw.json", "{}");
    for token in ["x", "   "] {
        let r = refused(
            &home,
            &[
                "--profile",
                "main",
                "gateway",
                "--port",
                &base,
                "--bind",
                "lan",
                "--token",
                token,
            ],
            "weak token on a LAN bind",
        );
        r.expect_code(2)
            .expect_output("gateway.auth.token is too weak for a gateway bound to 0.0.0.0")
            .expect_output("fewer than 16")
            .expect_output("Anyone who can reach that address can try tokens")
            .expect_output("openssl rand -hex 24");
        assert!(port_is_free(base.parse().expect("port")));
    }
}

/// `gateway probe` warns only about a reachable gateway that is not a
/// known, isolated profile of this machine.
#[test]
fn probe_warns_only_about_gateways_that_are_not_isolated_profiles() {
    let home = Home::new();
    let no_bus = (
        "DBUS_SESSION_BUS_ADDRESS",
        "unix:path=/nonexistent/omniclaw-no-bus",
    );
    for profile in ["main", "rescue"] {
        let port = free_base().to_string();
        home.run_env(&["--profile", profile, "setup", "--port", &port], &[no_bus])
            .expect_code(0);
    }
    let _main = Gateway::start(&home, &["--profile", "main", "gateway"]);
    let _rescue = Gateway::start(&home, &["--profile", "rescue", "gateway"]);
    let probe = home.run(&["gateway", "probe", "--json"]);
    probe.expect_code(0);
    assert_eq!(probe.json()["reachable"], 2);
    assert_eq!(
        probe.json()["warning"],
        serde_json::Value::Null,
        "{}",
        probe.stdout
    );

    // A gateway of no profile here (its state dir is not one a profile has).
    let stray_port = free_base();
    let elsewhere = home.path().join("elsewhere");
    let _stray = Gateway::spawn(gateway_cmd(
        &home,
        &[
            "gateway",
            "--port",
            &stray_port.to_string(),
            "--token",
            "stray-token-for-the-probe-test",
        ],
        &[("OMNICLAW_STATE_DIR", &elsewhere.to_string_lossy())],
    ))
    .unwrap_or_else(|r| panic!("the stray gateway did not start: {r:?}"));
    let url = format!("ws://127.0.0.1:{stray_port}");
    let args = [
        "gateway",
        "probe",
        "--url",
        url.as_str(),
        "--token",
        "stray-token-for-the-probe-test",
    ];
    let text = home.run(&args);
    text.expect_code(0)
        .expect_output("warning: multiple reachable gateways detected (3), not all of them isolated profiles of this machine:")
        .expect_output(&format!("  - --url ({url}): not a profile of this machine"));
    assert!(!text.stdout.contains("  - main"), "{}", text.stdout);
    let mut json_args = vec!["--json"];
    json_args.extend(args);
    let v = home.run(&json_args).json();
    let unexpected: Vec<&str> = v["unexpected"]
        .as_array()
        .expect("unexpected")
        .iter()
        .filter_map(|u| u["target"].as_str())
        .collect();
    assert_eq!(unexpected, ["--url"]);
}

#[test]
fn url_without_credentials_is_a_usage_error() {
    let home = Home::new();
    home.run(&["gateway", "probe", "--url", "ws://127.0.0.1:1"])
        .expect_code(2)
        .expect_output("--url needs --token or --password: stored credentials are never sent to an explicit URL");
}

/// The real OpenClaw CLI (installed by scripts/test.sh) calls `health` and
/// `status` on an OmniClaw gateway.
#[test]
fn real_openclaw_client_calls_health_and_status() {
    let launcher = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".tools/openclaw/bin/openclaw");
    if !launcher.exists() {
        assert!(
            std::env::var("CI").is_err(),
            "{} is missing: scripts/test.sh installs it (scripts/install-openclaw.sh)",
            launcher.display()
        );
        eprintln!("skipped: the real OpenClaw CLI is not installed (scripts/install-openclaw.sh .tools/openclaw)");
        return;
    }
    let home = Home::new();
    home.run(&["--profile", "main", "setup"]).expect_code(0);
    let base = free_base();
    let args = [
        "--profile",
        "main",
        "gateway",
        "--port",
        &base.to_string(),
        "--token",
        "compat-token",
    ];
    let _gw = Gateway::spawn(gateway_cmd(&home, &args, &[])).unwrap_or_else(|r| panic!("{r:?}"));
    let peer_home = tempfile::tempdir().expect("peer home");
    let url = format!("ws://127.0.0.1:{base}");
    let call = |method: &str, token: &str| {
        let out = Command::new(&launcher)
            .args([
                "gateway", "call", method, "--url", &url, "--token", token, "--json",
            ])
            .env("HOME", peer_home.path())
            .output()
            .expect("run openclaw");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = call("health", "compat-token");
    assert_eq!(
        code, 0,
        "openclaw gateway call health failed:\n{stdout}\n{stderr}"
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("health JSON");
    assert_eq!(v["ok"], true, "{v}");
    let (code, stdout, stderr) = call("status", "compat-token");
    assert_eq!(
        code, 0,
        "openclaw gateway call status failed:\n{stdout}\n{stderr}"
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("status JSON");
    assert_eq!(v["profile"], "main", "{v}");
    let (code, stdout, _) = call("health", "wrong-token");
    assert_ne!(code, 0);
    assert!(stdout.contains("AUTH_TOKEN_MISMATCH"), "{stdout}");
}
