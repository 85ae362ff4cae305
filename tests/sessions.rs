//! `omniclaw sessions`: the assistant's conversations of a profile, read
//! while its gateway runs (beside it, read-only) and after it stopped, reset
//! and deleted through the running gateway or the store itself.

use std::time::Duration;

use omniclaw_agent::double::Reply;
use omniclaw_gateway::client::Client;
use omniclaw_gateway::Auth;
use omniclaw_tests::chat::{ProviderConf, Rig, TOKEN};
use serde_json::{json, Value};

/// Sends `message` to session `key` and waits for its final `chat` event.
async fn chat(port: u16, key: &str, message: &str) -> Value {
    let client = Client::connect(
        &format!("ws://127.0.0.1:{port}"),
        Auth::Token(TOKEN.into()),
        &["operator.write"],
    )
    .await
    .expect("connect");
    let mut events = client.events();
    let run = uuid::Uuid::new_v4().to_string();
    let ack = client
        .call(
            "chat.send",
            json!({"sessionKey": key, "message": message, "idempotencyKey": run}),
        )
        .await
        .expect("chat.send");
    assert_eq!(ack["status"], "started", "{ack}");
    let done = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let ev = events.recv().await.expect("events");
            if ev["event"] == "chat"
                && ev["payload"]["runId"] == run.as_str()
                && ev["payload"]["state"] != "delta"
            {
                return ev["payload"].clone();
            }
        }
    })
    .await
    .expect("a final chat event");
    client.close().await;
    done
}

#[test]
fn sessions_are_listed_shown_exported_reset_and_deleted() {
    let rig = Rig::wire(
        "main",
        &[ProviderConf::new("local", "openai-completions", "m1")
            .model_extra("cost: { input: 1, output: 2 }")],
        &["local/m1"],
        &[],
    );
    rig.double.push(Reply::text("Hello, main."));
    rig.double.push(Reply::text("Hello, work."));
    let (home, port) = (&rig.home, rig.assistant.port);
    // The CLI reaches the running gateway with the profile's own token.
    home.run_stdin(
        &["--profile", "main", "secrets", "set", "gateway.auth.token"],
        TOKEN,
        &[],
    )
    .expect_code(0);
    home.run(&["--profile", "main", "sessions", "list"])
        .expect_code(0)
        .expect_output("No sessions of profile main yet");

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let gw = rig.assistant.start(home);
    assert_eq!(rt.block_on(chat(port, "main", "hi"))["state"], "final");
    assert_eq!(rt.block_on(chat(port, "work", "and you"))["state"], "final");

    // Read beside the running gateway.
    let list = home.run(&["--profile", "main", "sessions", "list", "--json"]);
    list.expect_code(0);
    let keys: Vec<String> = list.json()["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|s| s["key"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(keys.contains(&"agent:main:main".to_string()), "{keys:?}");
    assert!(keys.contains(&"agent:main:work".to_string()), "{keys:?}");
    home.run(&["--profile", "main", "sessions", "show", "work"])
        .expect_code(0)
        .expect_output("you: and you")
        .expect_output("assistant (m1): Hello, work.");
    let export = home.run(&["--profile", "main", "sessions", "export", "main"]);
    export.expect_code(0);
    let lines: Vec<Value> = export
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines[0]["type"], "session");
    assert_eq!(lines[1]["message"]["role"], "user");
    assert_eq!(lines[2]["message"]["content"][0]["text"], "Hello, main.");
    assert_eq!(lines[2]["parentId"], lines[1]["id"], "entries are chained");

    // Changes go through the running gateway.
    home.run(&["--profile", "main", "sessions", "reset", "main"])
        .expect_code(0)
        .expect_output("agent:main:main: reset");
    let after = home.run(&["--profile", "main", "sessions", "show", "main", "--json"]);
    assert_eq!(
        after.json()["messages"],
        json!([]),
        "the active history starts afresh"
    );
    drop(gw);

    // And with the gateway stopped, on the store itself.
    home.run(&["--profile", "main", "sessions", "delete", "work"])
        .expect_code(0)
        .expect_output("deleted");
    home.run(&["--profile", "main", "sessions", "show", "work"])
        .expect_code(1)
        .expect_output("has no session agent:main:work");
    home.run(&["--profile", "main", "sessions", "show", "agent:bad key"])
        .expect_code(2);
    assert_eq!(rig.double.chats().len(), 2, "two turns, two model calls");
}
