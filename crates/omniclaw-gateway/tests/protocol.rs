//! Protocol conformance against the captured behaviour of the real peer:
//! every error case with its code and close code, scopes, limits, events.

mod common;

use std::time::Duration;

use common::*;
use futures_util::SinkExt;
use omniclaw_gateway::client::{Client, ConnectOptions, RpcError};
use omniclaw_gateway::Auth;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn challenge_then_hello_ok_with_identity_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = spec(dir.path(), "main");
    let (config_path, state_dir) = (s.config_path.clone(), s.state_dir.clone());
    let gw = start(s);
    let (mut ws, challenge) = raw(gw.addrs.gateway).await;
    assert_eq!(challenge["type"], "event");
    assert_eq!(challenge["event"], "connect.challenge");
    assert_eq!(
        challenge["payload"]["nonce"].as_str().expect("nonce").len(),
        36
    );
    assert!(challenge["payload"]["ts"].as_u64().expect("ts") > 0);
    assert!(challenge.get("seq").is_none());

    send_json(
        &mut ws,
        &connect_req(connect_params(
            json!({"token": TOKEN}),
            &["operator.read"],
            "cli",
        )),
    )
    .await;
    let res = recv_json(&mut ws).await;
    assert_eq!(
        (res["type"].clone(), res["id"].clone(), res["ok"].clone()),
        (json!("res"), json!("1"), json!(true))
    );
    let p = &res["payload"];
    assert_eq!(p["type"], "hello-ok");
    assert_eq!(p["protocol"], 4);
    assert_eq!(p["server"]["connId"].as_str().expect("connId").len(), 36);
    assert!(p["server"]["version"].is_string());
    let methods: Vec<&str> = p["features"]["methods"]
        .as_array()
        .expect("methods")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for m in [
        "health",
        "status",
        "config.get",
        "config.patch",
        "logs.tail",
        "channels.status",
        "gateway.identity.get",
    ] {
        assert!(methods.contains(&m), "{m} advertised");
    }
    let events = &p["features"]["events"];
    for e in ["connect.challenge", "tick", "health", "shutdown"] {
        assert!(
            events.as_array().expect("events").contains(&json!(e)),
            "{e}"
        );
    }
    let snap = &p["snapshot"];
    assert_eq!(snap["configPath"], config_path.to_string_lossy().as_ref());
    assert_eq!(snap["stateDir"], state_dir.to_string_lossy().as_ref());
    assert_eq!(snap["profile"], "main");
    assert!(snap["uptimeMs"].is_u64());
    assert_eq!(snap["health"]["ok"], true);
    assert_eq!(
        p["auth"],
        json!({"method": "token", "role": "operator", "scopes": ["operator.read"]})
    );
    assert_eq!(p["policy"]["maxPayload"], 1024 * 1024);
    assert!(p["policy"]["maxBufferedBytes"].is_u64());
    assert_eq!(p["policy"]["tickIntervalMs"], 30000);

    let health = recv_json(&mut ws).await;
    assert_eq!(health["event"], "health");
    assert_eq!(health["seq"], 1);
    assert_eq!(health["payload"]["ok"], true);
    gw.stop().await;
}

/// One captured error case: what is sent after the challenge, and what comes back.
async fn check_refusal(frame: &str, expected_error: Option<Value>, expected_close: (u16, &str)) {
    let dir = tempfile::tempdir().expect("tempdir");
    let gw = start(spec(dir.path(), "main"));
    let (mut ws, _) = raw(gw.addrs.gateway).await;
    ws.send(Message::text(frame.to_string()))
        .await
        .expect("send");
    if let Some(expected) = expected_error {
        let res = recv_json(&mut ws).await;
        assert_eq!(res["ok"], false, "{res}");
        assert_eq!(res["error"], expected, "for {frame}");
    }
    let (code, reason) = recv_close(&mut ws).await;
    assert_eq!((code, reason.as_str()), expected_close, "for {frame}");
    gw.stop().await;
}

fn connect_frame(params: Value) -> String {
    connect_req(params).to_string()
}

#[tokio::test]
async fn wrong_token() {
    check_refusal(
        &connect_frame(connect_params(json!({"token": "nope"}), &["operator.read"], "cli")),
        Some(json!({"code":"INVALID_REQUEST","message":"unauthorized: gateway token mismatch (use this gateway's gateway.auth.token or pair the device)","details":{"code":"AUTH_TOKEN_MISMATCH","authReason":"token_mismatch","canRetryWithDeviceToken":false,"recommendedNextStep":"update_auth_credentials"}})),
        (1008, "unauthorized: gateway token mismatch (use this gateway's gateway.auth.token or pair the device)"),
    )
    .await;
}

#[tokio::test]
async fn no_auth() {
    let mut params = connect_params(json!({}), &["operator.read"], "cli");
    params.as_object_mut().expect("obj").remove("auth");
    check_refusal(
        &connect_frame(params),
        Some(json!({"code":"NOT_PAIRED","message":"device identity required","details":{"code":"DEVICE_IDENTITY_REQUIRED"}})),
        (1008, "device identity required"),
    )
    .await;
}

#[tokio::test]
async fn request_before_connect() {
    check_refusal(
        r#"{"type":"req","id":"1","method":"health","params":{}}"#,
        Some(json!({"code":"INVALID_REQUEST","message":"invalid handshake: first request must be connect"})),
        (1008, "invalid handshake: first request must be connect"),
    )
    .await;
}

#[tokio::test]
async fn protocol_5_to_5() {
    let mut params = connect_params(json!({"token": TOKEN}), &["operator.read"], "cli");
    params["minProtocol"] = json!(5);
    params["maxProtocol"] = json!(5);
    check_refusal(
        &connect_frame(params),
        Some(json!({"code":"INVALID_REQUEST","message":"protocol mismatch","details":{"code":"PROTOCOL_MISMATCH","clientMinProtocol":5,"clientMaxProtocol":5,"expectedProtocol":4,"minimumProbeProtocol":3}})),
        (1002, "protocol mismatch"),
    )
    .await;
}

#[tokio::test]
async fn malformed_json() {
    check_refusal("{this is not json", None, (1000, "")).await;
}

#[tokio::test]
async fn connect_missing_client() {
    let mut params = connect_params(json!({"token": TOKEN}), &["operator.read"], "cli");
    params.as_object_mut().expect("obj").remove("client");
    check_refusal(
        &connect_frame(params),
        Some(json!({"code":"INVALID_REQUEST","message":"invalid connect params: must have required property 'client'"})),
        (1008, "invalid connect params: must have required property 'client'"),
    )
    .await;
}

#[tokio::test]
async fn oversized_frame_closes_with_1009() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = spec(dir.path(), "main");
    s.limits.max_payload = 64 * 1024;
    let gw = start(s);
    // Before the handshake, just above the limit.
    let (mut ws, _) = raw(gw.addrs.gateway).await;
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(64 * 1024));
    ws.send(Message::text(big)).await.expect("send");
    assert_eq!(recv_close(&mut ws).await.0, 1009);
    // After the handshake, far above the limit.
    let (mut ws, _) = raw_connected(gw.addrs.gateway, &["operator.read"], "cli").await;
    let huge = format!(
        "{{\"type\":\"req\",\"id\":\"2\",\"method\":\"health\",\"params\":{{\"pad\":\"{}\"}}}}",
        "x".repeat(512 * 1024)
    );
    let _ = ws.send(Message::text(huge)).await;
    assert_eq!(recv_close(&mut ws).await.0, 1009);
    gw.stop().await;
}

#[tokio::test]
async fn slow_handshake_is_closed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = spec(dir.path(), "main");
    s.limits.handshake_timeout = Duration::from_millis(300);
    let gw = start(s);
    let (mut ws, _) = raw(gw.addrs.gateway).await;
    let t0 = std::time::Instant::now();
    let (code, reason) = recv_close(&mut ws).await;
    assert_eq!(code, 1008);
    assert!(reason.contains("handshake timeout"), "{reason}");
    assert!(t0.elapsed() < Duration::from_secs(3));
    gw.stop().await;
}

#[tokio::test]
async fn scopes_like_the_real_peer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gw = start(spec(dir.path(), "main"));
    let url = gw.url();

    let read = Client::connect(&url, Auth::Token(TOKEN.into()), &["operator.read"])
        .await
        .expect("read client");
    assert!(read.call("status", json!({})).await.is_ok());
    let err = read
        .call("no.such.method", json!({}))
        .await
        .expect_err("forbidden");
    assert_eq!(
        err,
        RpcError::Remote {
            code: "FORBIDDEN".into(),
            message: "missing scope: operator.admin".into(),
            details: Some(
                json!({"code":"MISSING_SCOPE","missingScope":"operator.admin","requiredScopes":["operator.admin"]})
            ),
        }
    );
    let err = read
        .call("config.patch", json!({"raw": "{}"}))
        .await
        .expect_err("admin only");
    assert!(matches!(err, RpcError::Remote { ref code, .. } if code == "FORBIDDEN"));

    let admin = Client::connect(&url, Auth::Token(TOKEN.into()), &["operator.admin"])
        .await
        .expect("admin client");
    assert_eq!(admin.hello()["auth"]["scopes"], json!(["operator.admin"]));
    assert!(
        admin.call("config.get", json!({})).await.is_ok(),
        "admin implies read"
    );
    match admin.call("no.such.method", json!({})).await {
        Err(RpcError::Remote { code, message, .. }) => {
            assert_eq!(
                (code.as_str(), message.as_str()),
                ("INVALID_REQUEST", "unknown method: no.such.method")
            )
        }
        other => panic!("unexpected {other:?}"),
    }

    // A probe gets no scopes: health works, everything else is read-gated.
    let mut opts = ConnectOptions::new(Auth::Token(TOKEN.into()), &["operator.read"]);
    opts.mode = "probe".into();
    let probe = Client::connect_with(&url, opts).await.expect("probe");
    assert_eq!(probe.hello()["auth"]["scopes"], json!([]));
    assert!(probe.call("health", Value::Null).await.is_ok());
    for m in ["status", "system-presence", "config.get"] {
        match probe.call(m, json!({})).await {
            Err(RpcError::Remote { message, .. }) => {
                assert_eq!(message, "missing scope: operator.read")
            }
            other => panic!("{m}: unexpected {other:?}"),
        }
    }
    gw.stop().await;
}

#[tokio::test]
async fn tick_events_and_shutdown_event_on_stop() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = spec(dir.path(), "main");
    s.limits.tick_interval = Duration::from_millis(100);
    let gw = start(s);
    let client = Client::connect(&gw.url(), Auth::Token(TOKEN.into()), &["operator.read"])
        .await
        .expect("connect");
    assert_eq!(client.hello()["policy"]["tickIntervalMs"], 100);
    let mut events = client.events();
    let tick = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            let ev = events.recv().await.expect("event");
            if ev["event"] == "tick" {
                return ev;
            }
        }
    })
    .await
    .expect("tick in time");
    assert!(tick["payload"]["ts"].is_u64());
    assert!(tick["seq"].as_u64().expect("seq") >= 2, "health was seq 1");

    let t0 = std::time::Instant::now();
    gw.stop().await;
    assert!(t0.elapsed() < Duration::from_secs(2));
    let shutdown = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            let ev = events.recv().await.expect("event");
            if ev["event"] == "shutdown" {
                return ev;
            }
        }
    })
    .await
    .expect("shutdown event");
    assert_eq!(shutdown["payload"]["reason"], "gateway stopping");
    assert_eq!(
        client.closed().await,
        (Some(1001), "gateway stopping".to_string())
    );
}

#[tokio::test]
async fn password_auth_and_probes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = spec(dir.path(), "main");
    s.auth = Auth::Password("hunter2-long-password".into());
    let gw = start(s);
    let ok = Client::connect(
        &gw.url(),
        Auth::Password("hunter2-long-password".into()),
        &["operator.read"],
    )
    .await
    .expect("password accepted");
    assert_eq!(ok.hello()["auth"]["method"], "password");
    match Client::connect(&gw.url(), Auth::Password("bad".into()), &["operator.read"]).await {
        Err(RpcError::Remote { details, .. }) => {
            assert_eq!(details.expect("d")["code"], "AUTH_PASSWORD_MISMATCH")
        }
        other => panic!("unexpected {:?}", other.err()),
    }
    let (status, head, body) = http(gw.addrs.gateway, "GET", "/healthz").await;
    assert_eq!(status, 200);
    assert!(head.contains("content-type: application/json"), "{head}");
    assert_eq!(body, r#"{"ok":true,"status":"live"}"#);
    let (status, _, body) = http(gw.addrs.gateway, "GET", "/readyz").await;
    assert_eq!(status, 200);
    let ready: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(ready["ready"], true);
    assert_eq!(ready["failing"], json!([]));
    let (status, _, body) = http(gw.addrs.gateway, "GET", "/v1/models").await;
    assert_eq!((status, body.as_str()), (404, "Not Found"));
    gw.stop().await;
}
