//! Each method over a real connection: payload shapes, redaction, the
//! config patch's hash check and atomic write, log tailing.

mod common;

use common::*;
use omniclaw_gateway::client::{Client, RpcError};
use omniclaw_gateway::Auth;
use serde_json::{json, Value};

const CONFIG: &str = "// main gateway\n{\n  gateway: { port: 18789, auth: { mode: \"token\", token: \"plain-secret-abcdef123456\" } },\n  channels: { telegram: { enabled: true, botToken: \"123456:tg-secret-token-xyz\" } },\n}\n";

async fn admin(url: &str) -> Client {
    Client::connect(url, Auth::Token(TOKEN.into()), &["operator.admin"])
        .await
        .expect("admin connects")
}

#[tokio::test]
async fn health_status_identity_presence_channels() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = spec(dir.path(), "rescue");
    std::fs::create_dir_all(&s.state_dir).expect("mkdir");
    std::fs::write(&s.config_path, CONFIG).expect("config");
    let gw = start(s.clone());
    let c = Client::connect(&gw.url(), Auth::Token(TOKEN.into()), &["operator.read"])
        .await
        .expect("connect");

    let health = c.call("health", json!({})).await.expect("health");
    assert_eq!(health["ok"], true);
    assert_eq!(health["profile"], "rescue");
    assert_eq!(
        health["surfaces"]["gateway"]["port"],
        gw.addrs.gateway.port()
    );
    assert_eq!(health["surfaces"]["canvas"]["listening"], true);
    assert_eq!(health["channels"], json!({}));

    let status = c.call("status", json!({})).await.expect("status");
    assert_eq!(status["profile"], "rescue");
    assert_eq!(status["pid"], std::process::id());
    assert_eq!(
        status["configPath"],
        s.config_path.to_string_lossy().as_ref()
    );
    assert_eq!(status["auth"], json!({"mode": "token"}));
    assert_eq!(status["connections"], 1);
    assert!(!status.to_string().contains(TOKEN), "no secret in status");

    let id = c
        .call("gateway.identity.get", json!({}))
        .await
        .expect("identity");
    assert_eq!(id["stateDir"], s.state_dir.to_string_lossy().as_ref());
    assert_eq!(id["bootId"], c.hello()["server"]["bootId"]);

    let presence = c
        .call("system-presence", json!({}))
        .await
        .expect("presence");
    assert_eq!(presence[0]["mode"], "gateway");
    assert_eq!(presence[0]["reason"], "self");

    let ch = c
        .call("channels.status", json!({}))
        .await
        .expect("channels");
    assert_eq!(ch["channelOrder"], json!(["telegram"]));
    assert_eq!(ch["channels"]["telegram"]["configured"], true);
    assert!(!ch.to_string().contains("tg-secret"), "{ch}");
    gw.stop().await;
}

#[tokio::test]
async fn config_get_is_redacted_and_hashed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = spec(dir.path(), "main");
    let gw = start(s.clone());
    let c = admin(&gw.url()).await;

    let missing = c.call("config.get", json!({})).await.expect("get");
    assert_eq!(missing["exists"], false);
    assert_eq!(missing["path"], s.config_path.to_string_lossy().as_ref());

    std::fs::create_dir_all(&s.state_dir).expect("mkdir");
    std::fs::write(&s.config_path, CONFIG).expect("config");
    let got = c.call("config.get", json!({})).await.expect("get");
    assert_eq!(got["exists"], true);
    assert_eq!(got["valid"], true, "{got}");
    assert_eq!(got["hash"], omniclaw_core::config::hash(CONFIG));
    let text = got.to_string();
    assert!(!text.contains("plain-secret"), "token leaked: {text}");
    assert!(!text.contains("tg-secret"), "bot token leaked: {text}");
    let raw = got["raw"].as_str().expect("raw");
    assert!(
        raw.starts_with("// main gateway"),
        "raw keeps comments: {raw}"
    );
    assert!(raw.contains(omniclaw_core::config::REDACTED));
    assert_eq!(got["config"]["gateway"]["port"], 18789);
    gw.stop().await;
}

#[tokio::test]
async fn config_patch_checks_hash_validates_and_writes_atomically() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = spec(dir.path(), "main");
    std::fs::create_dir_all(&s.state_dir).expect("mkdir");
    std::fs::write(&s.config_path, CONFIG).expect("config");
    let gw = start(s.clone());
    let c = admin(&gw.url()).await;
    let hash = c.call("config.get", json!({})).await.expect("get")["hash"].clone();

    let remote_msg = |r: Result<Value, RpcError>| match r {
        Err(RpcError::Remote {
            message, details, ..
        }) => (message, details),
        other => panic!("expected a refusal, got {other:?}"),
    };

    // No base hash.
    let (msg, _) = remote_msg(
        c.call(
            "config.patch",
            json!({"raw": "{ gateway: { port: 19001 } }"}),
        )
        .await,
    );
    assert!(msg.contains("baseHash"), "{msg}");
    // Stale base hash.
    let (msg, details) = remote_msg(
        c.call(
            "config.patch",
            json!({"raw": "{ gateway: { port: 19001 } }", "baseHash": "0000"}),
        )
        .await,
    );
    assert!(msg.contains("config changed since last load"), "{msg}");
    assert_eq!(details.expect("d")["code"], "CONFIG_BASE_HASH_MISMATCH");
    // Invalid result: refused, file untouched.
    let (msg, _) = remote_msg(
        c.call(
            "config.patch",
            json!({"raw": "{ gateway: { port: 0 } }", "baseHash": hash}),
        )
        .await,
    );
    assert!(msg.contains("gateway.port"), "{msg}");
    assert_eq!(
        std::fs::read_to_string(&s.config_path).expect("read"),
        CONFIG
    );

    // A valid patch, JSON5 text, with a redacted secret sent back unchanged.
    let patched = c
        .call(
            "config.patch",
            json!({
                "raw": format!("{{ gateway: {{ port: 19001, auth: {{ token: '{}' }} }} }}", omniclaw_core::config::REDACTED),
                "baseHash": hash,
            }),
        )
        .await
        .expect("patch applies");
    assert_eq!(patched["ok"], true);
    let on_disk = std::fs::read_to_string(&s.config_path).expect("read");
    assert!(on_disk.contains("19001"), "{on_disk}");
    assert!(
        on_disk.contains("plain-secret-abcdef123456"),
        "secret kept: {on_disk}"
    );
    assert!(
        on_disk.contains("// main gateway"),
        "comments kept: {on_disk}"
    );
    assert_eq!(patched["hash"], omniclaw_core::config::hash(&on_disk));
    assert_eq!(patched["config"]["gateway"]["port"], 19001);
    assert!(!patched.to_string().contains("plain-secret"));
    let bak = std::fs::read_to_string(omniclaw_os::fsx::backup_path(&s.config_path)).expect("bak");
    assert_eq!(bak, CONFIG);

    // Object form, next hash.
    let next = c
        .call(
            "config.patch",
            json!({"raw": {"logging": {"level": "debug"}}, "baseHash": patched["hash"]}),
        )
        .await
        .expect("object patch");
    assert_eq!(next["config"]["logging"]["level"], "debug");
    gw.stop().await;
}

#[tokio::test]
async fn logs_tail_reads_the_newest_log_with_a_cursor() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = spec(dir.path(), "main");
    let logs = s.logs_dir();
    std::fs::create_dir_all(&logs).expect("mkdir");
    std::fs::write(logs.join("gateway.log"), "one\ntwo\nthree\n").expect("write");
    let gw = start(s);
    let c = Client::connect(&gw.url(), Auth::Token(TOKEN.into()), &["operator.read"])
        .await
        .expect("connect");
    let first = c
        .call("logs.tail", json!({"limit": 2}))
        .await
        .expect("tail");
    assert_eq!(first["lines"], json!(["two", "three"]));
    assert_eq!(first["truncated"], true);
    let cursor = first["cursor"].as_u64().expect("cursor");
    std::fs::OpenOptions::new()
        .append(true)
        .open(logs.join("gateway.log"))
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"four\n"))
        .expect("append");
    let next = c
        .call("logs.tail", json!({"cursor": cursor}))
        .await
        .expect("tail");
    assert_eq!(next["lines"], json!(["four"]));
    assert_eq!(next["reset"], false);
    let bad = c
        .call("logs.tail", json!({"limit": "x"}))
        .await
        .expect_err("bad params");
    assert!(
        bad.to_string()
            .contains("limit must be a non-negative integer"),
        "{bad}"
    );
    gw.stop().await;
}
