//! Hot reload of a running gateway, observed from outside: edits saved in
//! place, by rename and by delete + recreate are applied; an invalid edit is
//! refused while the gateway keeps answering; a port change moves it; and
//! `config rollback` restores the last known good config.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use omniclaw_gateway::client::Client;
use omniclaw_gateway::Auth;
use omniclaw_tests::{free_base, GatewayProc as Gateway, Home};
use serde_json::Value;

/// Stores `token` as main's gateway token (read from stdin, as users do).
fn set_token(home: &Home, token: &str) {
    home.run_stdin(
        &["--profile", "main", "secrets", "set", "gateway.auth.token"],
        token,
        &[],
    )
    .expect_code(0);
}

const CONFIG: &str = ".omniclaw-main/omniclaw.json";

/// One way an editor saves a file.
type Save<'a> = dyn Fn(&str) + 'a;

/// `health --json` of main, once it satisfies `want` (or panics after 10 s).
fn health_until(home: &Home, what: &str, want: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = Value::Null;
    while Instant::now() < deadline {
        let r = home.run(&["--profile", "main", "health", "--json"]);
        if r.code == 0 {
            last = r.json();
            if want(&last) {
                return last;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("gateway never showed {what}; last health: {last}");
}

fn hash(home: &Home) -> Value {
    health_until(home, "a reload status", |v| {
        v["health"]["reload"]["configHash"].is_string()
    })["health"]["reload"]["configHash"]
        .clone()
}

fn with_level(text: &str, level: &str) -> String {
    let end = text.rfind('}').expect("object");
    format!(
        "{},\n  \"logging\": {{ \"level\": \"{level}\" }}\n}}\n",
        text[..end].trim_end()
    )
}

#[test]
fn edits_by_write_rename_and_recreate_are_applied_in_place() {
    let home = Home::new();
    home.setup_on_free_port("main");
    let original = home.read(CONFIG);
    let _gw = Gateway::start(&home, &["--profile", "main", "gateway"]);
    let pid_before = home
        .run(&["--profile", "main", "gateway", "status", "--json"])
        .json()["running"]["pid"]
        .clone();

    let path = home.path().join(CONFIG);
    let edits: [(&str, &Save); 3] = [
        ("write in place", &|t| {
            std::fs::write(&path, t).expect("write")
        }),
        ("rename over", &|t| {
            let tmp = path.with_file_name(".omniclaw.json.swp");
            std::fs::write(&tmp, t).expect("write tmp");
            std::fs::rename(&tmp, &path).expect("rename");
        }),
        ("delete + recreate", &|t| {
            std::fs::remove_file(&path).expect("rm");
            std::thread::sleep(Duration::from_millis(20));
            std::fs::write(&path, t).expect("recreate");
        }),
    ];
    for (i, (how, edit)) in edits.iter().enumerate() {
        let before = hash(&home);
        let level = ["debug", "warn", "trace"][i];
        edit(&with_level(&original, level));
        let v = health_until(&home, how, |v| {
            v["health"]["reload"]["configHash"] != before
                && v["health"]["reload"]["lastError"].is_null()
        });
        assert_eq!(v["health"]["ok"], true, "{how}");
    }
    // Hot changes never restarted the process.
    let status = home
        .run(&["--profile", "main", "gateway", "status", "--json"])
        .json();
    assert_eq!(status["running"]["pid"], pid_before);
    let logs = home.run(&["--profile", "main", "logs", "--lines", "200"]);
    assert!(
        logs.stdout.contains("config applied in place"),
        "{}",
        logs.stdout
    );
}

#[test]
fn invalid_edit_keeps_serving_and_rollback_restores_the_last_good_config() {
    let home = Home::new();
    home.setup_on_free_port("main");
    let good = home.read(CONFIG);
    set_token(&home, "reload-test-token");
    let _gw = Gateway::start(&home, &["--profile", "main", "gateway"]);
    let good_hash = hash(&home);
    // A client that stays connected through the bad edit and the rollback.
    let port = home.run(&["--profile", "main", "config", "get", "gateway.port"]);
    let url = format!("ws://127.0.0.1:{}", port.stdout.trim());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let client = rt
        .block_on(Client::connect(
            &url,
            Auth::Token("reload-test-token".into()),
            &["operator.read"],
        ))
        .expect("client connects");

    // After 10 s of healthy running the config becomes the last good one.
    let last_good = home.path().join(".omniclaw-main/omniclaw.json.last-good");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !last_good.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        std::fs::read_to_string(&last_good).expect("last-good"),
        good
    );

    let bad = good.replace(
        "\"bind\": \"loopback\",",
        "\"bind\": \"loopback\", \"bogus\": 1,",
    );
    assert_ne!(bad, good);
    home.write(CONFIG, &bad);
    let v = health_until(&home, "the refusal", |v| {
        v["health"]["reload"]["lastError"].is_string()
    });
    let err = v["health"]["reload"]["lastError"]
        .as_str()
        .unwrap_or_default();
    assert!(err.contains("gateway.bogus: unknown key"), "{err}");
    assert_eq!(
        v["health"]["reload"]["configHash"], good_hash,
        "still serving the good config"
    );
    assert_eq!(v["health"]["ok"], true);
    let on_same_connection = rt
        .block_on(client.call("health", serde_json::json!({})))
        .expect("the connected client is still served after the refused edit");
    assert_eq!(on_same_connection["reload"]["configHash"], good_hash);

    home.run(&["--profile", "main", "config", "rollback"])
        .expect_code(0)
        .expect_output("restored the last known good config");
    assert_eq!(home.read(CONFIG), good);
    let rejected: Vec<_> = std::fs::read_dir(home.path().join(".omniclaw-main"))
        .expect("dir")
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("omniclaw.json.rejected.")
        })
        .collect();
    assert_eq!(rejected.len(), 1);
    assert_eq!(
        std::fs::read_to_string(rejected[0].path()).expect("rejected"),
        bad
    );
    health_until(&home, "the refusal cleared", |v| {
        v["health"]["reload"]["lastError"].is_null()
    });
    rt.block_on(client.call("health", serde_json::json!({})))
        .expect("still connected after the rollback");
    home.run(&["--profile", "main", "config", "rollback"])
        .expect_code(0)
        .expect_output("already is the last known good config");
}

#[test]
fn a_port_change_moves_the_gateway() {
    let home = Home::new();
    let (a, b) = (free_base(), free_base());
    home.run(&["--profile", "main", "setup", "--port", &a.to_string()])
        .expect_code(0);
    let _gw = Gateway::start(&home, &["--profile", "main", "gateway"]);
    health_until(&home, "port a", |v| {
        v["health"]["surfaces"]["gateway"]["port"] == a
    });
    home.config_set("main", "gateway.port", &b.to_string())
        .expect_code(0);
    health_until(&home, "port b", |v| {
        v["health"]["surfaces"]["gateway"]["port"] == b
    });
    assert!(
        TcpListener::bind(("127.0.0.1", a)).is_ok(),
        "the old port is released"
    );
}
