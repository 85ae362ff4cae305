//! The one config edit path, observed from outside: an edit that would
//! collide with another profile or a held port is refused (unless forced),
//! a running gateway never moves into a known conflict, no writer puts a
//! plaintext secret into a config, concurrent edits are all kept, and a
//! killed edit never leaves an empty backup or temp files behind. Plus the
//! port plan of a gateway that runs where its config does not say.

use std::process::Stdio;
use std::time::{Duration, Instant};

use omniclaw_gateway::client::Client;
use omniclaw_gateway::Auth;
use omniclaw_tests::{free_base, GatewayProc as Gateway, Home};
use serde_json::{json, Value};

/// main and rescue on free bases far apart; returns (main, rescue).
fn two_profiles(home: &Home) -> (u16, u16) {
    let main = home.setup_on_free_port("main");
    let mut rescue = free_base();
    while rescue.abs_diff(main) < 300 {
        rescue = free_base();
    }
    home.run(&[
        "--profile",
        "rescue",
        "setup",
        "--port",
        &rescue.to_string(),
    ])
    .expect_code(0);
    (main, rescue)
}

#[test]
fn an_edit_into_another_profiles_ports_is_refused_unless_forced() {
    let home = Home::new();
    let (main, _) = two_profiles(&home);
    let before = home.snapshot();
    // Into main's CDP range (main + 11 ..= main + 110).
    let into = (main + 11).to_string();
    let r = home.config_set("rescue", "gateway.port", &into);
    r.expect_code(2)
        .expect_output(&format!("rescue base {into} lies in main's CDP range"))
        .expect_output("--profile rescue config set gateway.port")
        .expect_output("--force");
    assert_eq!(home.snapshot(), before, "a refused edit changes no file");

    // JSON callers get the same refusal on stderr and exit 2.
    home.run(&[
        "--profile",
        "rescue",
        "--json",
        "config",
        "set",
        "gateway.port",
        &into,
    ])
    .expect_code(2);

    // An edit of an unrelated key is not held back by anything.
    home.config_set("rescue", "logging.level", "\"debug\"")
        .expect_code(0);

    // --force writes it, and says what it wrote anyway.
    home.run(&[
        "--profile",
        "rescue",
        "config",
        "set",
        "gateway.port",
        &into,
        "--force",
    ])
    .expect_code(0)
    .expect_output("written with --force although rescue base");
    home.run(&["ports"]).expect_code(1);
}

#[test]
fn an_edit_onto_a_port_another_process_holds_is_refused() {
    let home = Home::new();
    two_profiles(&home);
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let held = squatter.local_addr().expect("addr").port();
    let r = home.config_set("rescue", "gateway.port", &held.to_string());
    r.expect_code(2).expect_output(&format!(
        "port {held} is held by pid {}",
        std::process::id()
    ));
}

#[test]
fn no_writer_puts_a_plaintext_secret_into_a_config() {
    let home = Home::new();
    home.setup_on_free_port("main");
    let before = home.snapshot();
    home.config_set("main", "gateway.auth.token", "\"hunter2-hunter2\"")
        .expect_code(2)
        .expect_output("omniclaw --profile main secrets set gateway.auth.token");
    home.config_set("main", "channels.telegram", "{botToken: \"123:AAAA\"}")
        .expect_code(2)
        .expect_output("secrets set channels.telegram.botToken");
    assert_eq!(home.snapshot(), before);
    assert!(!home.all_text().contains("hunter2-hunter2"));
    // References are fine.
    home.config_set("main", "gateway.auth.token", "\"${MY_TOKEN}\"")
        .expect_code(0);
}

#[test]
fn a_hand_written_plaintext_secret_still_loads_and_doctor_flags_it() {
    let home = Home::new();
    let port = home.setup_on_free_port("main");
    home.write(
        ".omniclaw-main/omniclaw.json",
        &format!("{{ gateway: {{ port: {port}, auth: {{ token: 'typed-by-hand-123' }} }} }}\n"),
    );
    let _gw = Gateway::start(&home, &["--profile", "main", "gateway"]);
    home.run(&["--profile", "main", "health"]).expect_code(0);
    let doctor = home.run(&["doctor"]);
    doctor.expect_output("gateway.auth.token is stored in plain text");
    assert!(!doctor.stdout.contains("typed-by-hand-123"));
    // An edit of another key keeps the file's own plaintext (doctor --fix moves it).
    home.config_set("main", "logging.level", "\"warn\"")
        .expect_code(0);
}

/// `config.get` then `config.patch` over the protocol, as the dashboard and
/// OpenClaw clients do.
async fn patch(port: u16, token: &str, raw: Value) -> Result<Value, String> {
    let url = format!("ws://127.0.0.1:{port}");
    let client = Client::connect(&url, Auth::Token(token.into()), &["operator.admin"])
        .await
        .map_err(|e| e.to_string())?;
    let got = client
        .call("config.get", json!({}))
        .await
        .map_err(|e| e.to_string())?;
    let result = client
        .call("config.patch", json!({"raw": raw, "baseHash": got["hash"]}))
        .await
        .map_err(|e| format!("{e:?}"));
    client.close().await;
    result
}

#[test]
fn config_patch_goes_through_the_same_checks() {
    let home = Home::new();
    let (main, rescue) = two_profiles(&home);
    home.run_stdin(
        &[
            "--profile",
            "rescue",
            "secrets",
            "set",
            "gateway.auth.token",
        ],
        "patch-token-0123456789",
        &[],
    )
    .expect_code(0);
    let _gw = Gateway::start(&home, &["--profile", "rescue", "gateway"]);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let into = main + 11;
    let refused = rt
        .block_on(patch(
            rescue,
            "patch-token-0123456789",
            json!({"gateway": {"port": into}}),
        ))
        .expect_err("refused");
    assert!(refused.contains("CONFIG_CONFLICT"), "{refused}");
    assert!(refused.contains("main's CDP range"), "{refused}");
    let secret = rt
        .block_on(patch(
            rescue,
            "patch-token-0123456789",
            json!({"channels": {"telegram": {"botToken": "123:plain"}}}),
        ))
        .expect_err("refused");
    assert!(secret.contains("PLAINTEXT_SECRET"), "{secret}");
    assert!(!home
        .read(".omniclaw-rescue/omniclaw.json")
        .contains("123:plain"));
    rt.block_on(patch(
        rescue,
        "patch-token-0123456789",
        json!({"logging": {"level": "debug"}}),
    ))
    .expect("an unrelated patch applies");
}

/// `health --json` of rescue once `want` holds (10 s at most).
fn health_until(home: &Home, want: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = Value::Null;
    while Instant::now() < deadline {
        let r = home.run(&["--profile", "rescue", "health", "--json"]);
        if !r.stdout.is_empty() {
            last = r.json();
            if want(&last) {
                return last;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("never saw the wanted health; last: {last}");
}

#[test]
fn a_running_gateway_never_moves_into_a_known_conflict() {
    let home = Home::new();
    let (main, rescue) = two_profiles(&home);
    let _gw = Gateway::start(&home, &["--profile", "rescue", "gateway"]);
    // Edited by hand (no OmniClaw writer checks a text editor).
    let path = ".omniclaw-rescue/omniclaw.json";
    let text = home.read(path);
    let into = main + 11;
    home.write(
        path,
        &text.replace(&format!("port\": {rescue}"), &format!("port\": {into}")),
    );
    assert!(home.read(path).contains(&into.to_string()), "edited");
    let h = health_until(&home, |v| v["health"]["reload"]["lastError"].is_string());
    let why = h["health"]["reload"]["lastError"]
        .as_str()
        .unwrap_or_default();
    assert!(why.contains("main's CDP range"), "{why}");
    assert!(omniclaw_tests::port_is_free(into), "it did not move there");
    assert!(
        !omniclaw_tests::port_is_free(rescue),
        "still serving on {rescue}"
    );
    let logs = home.run(&["--profile", "rescue", "logs", "-n", "50"]);
    assert!(
        logs.stdout
            .lines()
            .any(|l| l.contains("WARN") && l.contains("refused")),
        "the refusal is a warning:\n{}",
        logs.stdout
    );
}

#[test]
fn four_writers_of_fifty_edits_each_lose_nothing() {
    let home = Home::new();
    home.setup_on_free_port("main");
    std::thread::scope(|scope| {
        for w in 0..4u16 {
            let home = &home;
            scope.spawn(move || {
                for i in 0..50u16 {
                    let url = format!("\"http://127.0.0.1:{}\"", 9000 + w * 100 + i);
                    home.config_set("main", &format!("browser.profiles.w{w}.cdpUrl"), &url)
                        .expect_code(0);
                }
            });
        }
    });
    let text = home.read(".omniclaw-main/omniclaw.json");
    for w in 0..4u16 {
        let last = format!("http://127.0.0.1:{}", 9000 + w * 100 + 49);
        assert!(
            text.contains(&last),
            "writer {w}'s last value is lost:\n{text}"
        );
    }
    home.run(&["--profile", "main", "config", "validate"])
        .expect_code(0);
}

#[test]
fn concurrent_secret_writers_keep_every_secret() {
    let home = Home::new();
    home.run(&["--secrets-file", "--profile", "main", "setup"])
        .expect_code(0);
    let names = [
        "gateway.auth.password",
        "gateway.remote.token",
        "channels.telegram.botToken",
    ];
    std::thread::scope(|scope| {
        for (n, name) in names.iter().enumerate() {
            let home = &home;
            scope.spawn(move || {
                for i in 0..20 {
                    home.run_stdin(
                        &["--profile", "main", "secrets", "set", name],
                        &format!("{n}:value-{i}"),
                        &[],
                    )
                    .expect_code(0);
                }
            });
        }
    });
    let file: Value =
        serde_json::from_str(&home.read(".omniclaw-main/secrets.json")).expect("json");
    for (n, name) in names.iter().enumerate() {
        assert_eq!(file[*name], format!("{n}:value-19"), "{file}");
    }
    assert!(
        file["gateway.auth.token"].is_string(),
        "setup's token survived"
    );
}

#[test]
fn a_killed_edit_leaves_a_whole_backup_and_no_temp_files() {
    let home = Home::new();
    home.setup_on_free_port("main");
    let dir = home.path().join(".omniclaw-main");
    for i in 0..300u32 {
        let mut cmd = home.cmd();
        cmd.args(["--profile", "main", "config", "set", "logging.level"])
            .arg(if i % 2 == 0 { "\"debug\"" } else { "\"info\"" })
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().expect("spawn");
        std::thread::sleep(Duration::from_micros(u64::from(i % 30) * 500));
        let _ = child.kill();
        let _ = child.wait();
        let bak = dir.join("omniclaw.json.bak");
        if let Ok(text) = std::fs::read_to_string(&bak) {
            assert!(
                text.contains("gateway"),
                "run {i}: the backup is not a whole config: {text:?}"
            );
        }
        home.run(&["--profile", "main", "config", "validate"])
            .expect_code(0);
    }
    home.config_set("main", "logging.level", "\"warn\"")
        .expect_code(0);
    let temps: Vec<String> = std::fs::read_dir(&dir)
        .expect("ls")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(temps.is_empty(), "temp files left behind: {temps:?}");
}

#[test]
fn the_plan_has_a_gateway_where_it_runs() {
    let home = Home::new();
    home.run(&["--profile", "rescue", "setup"]).expect_code(0);
    let configured = home.run(&["--profile", "rescue", "config", "get", "gateway.port"]);
    let configured: u16 = configured.stdout.trim().parse().expect("port");
    // Where a new profile would look first (18789), so the free-slot picker
    // has to step over where rescue really runs.
    let live = (18809..18889)
        .find(|&p| {
            [p, p + 2, p + 4]
                .iter()
                .all(|&q| omniclaw_tests::port_is_free(q))
        })
        .expect("a free port near 18789");
    let _gw = Gateway::start(
        &home,
        &[
            "--profile",
            "rescue",
            "gateway",
            "--port",
            &live.to_string(),
        ],
    );
    let ports = home.run(&["ports", "--json"]);
    ports.expect_code(0);
    let report = ports.json();
    let gateway_row = report["rows"]
        .as_array()
        .and_then(|rows| {
            rows.iter()
                .find(|r| r["profile"] == "rescue" && r["surface"] == "base")
        })
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(gateway_row["start"], live, "{report}");
    assert_eq!(
        report["moved"],
        json!([{"profile": "rescue", "runningOn": live, "configured": configured}])
    );
    assert!(
        report["problems"].as_array().is_some_and(Vec::is_empty),
        "its own ports are not squatters: {report}"
    );
    home.run(&["ports"]).expect_code(0).expect_output(&format!(
        "rescue is running on {live}, config says {configured}"
    ));
    home.run(&["status"])
        .expect_output(&format!("{live} (config: {configured})"));

    // A new profile keeps clear of where rescue really runs.
    let third = home.run(&["--profile", "third", "setup", "--json"]);
    third.expect_code(0);
    let port = third.json()["port"].as_u64().expect("port") as u16;
    assert!(
        port > live + 110 || port + 110 < live,
        "third at {port} overlaps rescue running at {live}"
    );
}
