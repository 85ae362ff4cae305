//! Approvals over the protocol: an `exec` in ask mode waits for an
//! operator; the first answer wins, a deny or no answer in time keeps the
//! command from running, "allow always" puts the exact command line on the
//! allowlist (so the next run asks no more), and only a client holding
//! `operator.approvals` may answer.

use std::time::Duration;

use omniclaw_agent::double::{Double, Reply};
use omniclaw_gateway::client::{Client, RpcError};
use omniclaw_gateway::Auth;
use omniclaw_tests::chat::{ProviderConf, Rig, TOKEN};
use serde_json::{json, Value};
use tokio::sync::broadcast;

async fn connect(port: u16, scopes: &[&str]) -> Client {
    Client::connect(
        &format!("ws://127.0.0.1:{port}"),
        Auth::Token(TOKEN.into()),
        scopes,
    )
    .await
    .expect("connect")
}

/// The next event named `name` (10 s at most).
async fn next(events: &mut broadcast::Receiver<Value>, name: &str) -> Value {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let ev = events.recv().await.expect("events");
            if ev["event"] == name {
                return ev["payload"].clone();
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {name} event"))
}

/// Sends a message whose model answer asks to run `command`, then says "done".
async fn ask_to_run(client: &Client, double: &Double, command: &str) -> String {
    double.push(Reply::tool_call("exec", json!({"command": command})));
    double.push(Reply::text("done"));
    let run = uuid::Uuid::new_v4().to_string();
    client
        .call(
            "chat.send",
            json!({"sessionKey": "main", "message": format!("run {command}"), "idempotencyKey": run}),
        )
        .await
        .expect("chat.send");
    run
}

/// What the model was told the command did (the tool result of the last
/// request the double saw).
fn tool_result(double: &Double) -> String {
    let last = double.chats().pop().expect("a model request");
    let messages = last.body["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    messages
        .iter()
        .rev()
        .find(|m| m["role"] == "tool")
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_string()
}

#[test]
fn an_operator_approves_denies_or_lets_it_time_out_and_always_sticks() {
    // main with `tools.exec.mode: ask` and a short approval timeout.
    let rig = Rig::running(
        "main",
        &[ProviderConf::new("local", "openai-completions", "m1")],
        &["local/m1"],
        &[("tools.exec", "{ mode: 'ask', approvalTimeoutSeconds: 3 }")],
    );
    let (double, home, port) = (&*rig.double, &rig.home, rig.assistant.port);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let client = connect(port, &["operator.write", "operator.approvals"]).await;
        let writer = connect(port, &["operator.write"]).await;
        let mut events = client.events();

        // Allowed once: the command runs, its output goes back to the model.
        ask_to_run(&client, double, "echo approved-run").await;
        let asked = next(&mut events, "exec.approval.requested").await;
        assert_eq!(asked["request"]["command"], "echo approved-run");
        let tui = next(&mut events, "plugin.approval.requested").await;
        assert_eq!(
            tui["id"], asked["id"],
            "openclaw tui sees the same approval"
        );
        let listed = client
            .call("exec.approval.list", json!({}))
            .await
            .expect("list");
        assert_eq!(listed[0]["id"], asked["id"]);
        // A client without operator.approvals cannot answer.
        let refused = writer
            .call(
                "exec.approval.resolve",
                json!({"id": asked["id"], "decision": "allow-once"}),
            )
            .await
            .expect_err("missing scope");
        assert!(
            matches!(refused, RpcError::Remote { ref code, .. } if code == "FORBIDDEN"),
            "{refused:?}"
        );
        client
            .call(
                "plugin.approval.resolve",
                json!({"id": asked["id"], "decision": "allow-once"}),
            )
            .await
            .expect("resolve");
        let again = client
            .call(
                "exec.approval.resolve",
                json!({"id": asked["id"], "decision": "deny"}),
            )
            .await
            .expect_err("the first answer won");
        assert!(again.to_string().contains("unknown or expired"), "{again}");
        let resolved = next(&mut events, "exec.approval.resolved").await;
        assert_eq!(resolved["decision"], "allow-once");
        wait_final(&mut events).await;
        assert!(
            tool_result(double).contains("approved-run"),
            "{}",
            tool_result(double)
        );

        // Denied: it does not run.
        ask_to_run(&client, double, "echo denied-run").await;
        let asked = next(&mut events, "exec.approval.requested").await;
        client
            .call(
                "exec.approval.resolve",
                json!({"id": asked["id"], "decision": "deny"}),
            )
            .await
            .expect("deny");
        wait_final(&mut events).await;
        let told = tool_result(double);
        assert!(
            told.contains("denied") && !told.contains("denied-run\n"),
            "{told}"
        );

        // Nobody answers: denied after approvalTimeoutSeconds.
        ask_to_run(&client, double, "echo late-run").await;
        next(&mut events, "exec.approval.requested").await;
        let expired = next(&mut events, "exec.approval.resolved").await;
        assert_eq!(expired["decision"], "deny");
        assert_eq!(expired["resolvedBy"], "timeout");
        wait_final(&mut events).await;
        assert!(tool_result(double).contains("denied"));

        // Always: runs now, is on the allowlist, and the next run asks no more.
        ask_to_run(&client, double, "echo always-run").await;
        let asked = next(&mut events, "exec.approval.requested").await;
        client
            .call(
                "exec.approval.resolve",
                json!({"id": asked["id"], "decision": "allow-always"}),
            )
            .await
            .expect("always");
        wait_final(&mut events).await;
        assert!(tool_result(double).contains("always-run"));
        let config = home.read(".omniclaw-main/omniclaw.json");
        assert!(config.contains("\"echo always-run\""), "{config}");
        // The gateway picks the edit up by its hot reload.
        tokio::time::sleep(Duration::from_millis(800)).await;
        ask_to_run(&client, double, "echo always-run").await;
        wait_final(&mut events).await;
        assert!(tool_result(double).contains("always-run"));
        assert!(
            client
                .call("exec.approval.list", json!({}))
                .await
                .expect("list")
                == json!([]),
            "nothing was asked the second time"
        );
        client.close().await;
        writer.close().await;
    });
}

/// Waits for the terminal `chat` event of the run going on.
async fn wait_final(events: &mut broadcast::Receiver<Value>) {
    tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            let ev = events.recv().await.expect("events");
            if ev["event"] == "chat" && ev["payload"]["state"] != "delta" {
                return;
            }
        }
    })
    .await
    .expect("the run ends");
}
