//! The assistant over the protocol, black-box: the built `omniclaw gateway`
//! pointed at the provider double, driven by a protocol client that keeps
//! every frame. Streaming, idempotency, abort, timeout, tool rounds in each
//! provider API, fallover, a refused key, the budget, sessions, strict
//! params and scopes, and a kill -9 in the middle of 200 streamed turns.

use std::time::{Duration, Instant};

use omniclaw_tests::chat::{
    is_event, is_res, is_terminal, send_params, text_of, Conn, Key, ProviderConf, Reply, Rig, TOKEN,
};
use serde_json::{json, Value};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Lets frames in flight arrive, then proves the connection is still
/// answering (its answers come after the events queued before them).
async fn settle(c: &Conn) {
    tokio::time::sleep(ms(150)).await;
    c.ok("health", json!({})).await;
}

fn terminals(c: &Conn, run_id: &str) -> Vec<Value> {
    c.chats(run_id).into_iter().filter(is_terminal).collect()
}

fn history_of(history: &Value) -> Vec<Value> {
    history["messages"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_is_acked_then_streamed_cumulatively_and_ends_once() {
    let r = Rig::one("openai-completions", &[]);
    let (double, c) = (&r.double, r.operator(&[]).await);

    let answer = "The quick brown fox jumps over the lazy dog, and then it does it again.";
    double.push(Reply::text(answer).chunked(120).delayed(ms(40)));
    let id = c
        .send("chat.send", send_params("main", "hello there", "R1"))
        .await;
    let (ack_at, ack) = c.wait_from(0, "the ack", |f| is_res(f, &id)).await;
    assert_eq!(ack["ok"], true, "{ack}");
    assert_eq!(ack["payload"]["runId"], "R1");
    assert_eq!(ack["payload"]["status"], "started");
    let end = c.terminal("R1").await;
    settle(&c).await;

    // Nothing of the run came before its ack.
    let frames = c.frames();
    let first_event = frames
        .iter()
        .position(|f| f["type"] == "event" && f["payload"]["runId"] == "R1")
        .expect("events of R1");
    assert!(first_event > ack_at, "an event of R1 came before its ack");

    // Deltas carry the whole text so far; deltaText is what was added.
    let chats = c.chats("R1");
    let deltas: Vec<&Value> = chats.iter().filter(|p| p["state"] == "delta").collect();
    assert!(deltas.len() >= 2, "not streamed: {chats:?}");
    let mut so_far = String::new();
    let mut last_seq = 0;
    for d in &deltas {
        assert_ne!(d["replace"], true, "{d}");
        so_far.push_str(d["deltaText"].as_str().expect("deltaText"));
        assert_eq!(text_of(&d["message"]), so_far, "cumulative message");
        assert_eq!(d["message"]["role"], "assistant");
        let seq = d["seq"].as_u64().expect("seq");
        assert!(seq >= last_seq, "seq went back: {d}");
        last_seq = seq;
    }
    assert!(answer.starts_with(&so_far));
    assert_eq!(end["state"], "final", "{end}");
    assert_eq!(text_of(&end["message"]), answer);
    assert_eq!(end["sessionKey"], "agent:main:main");
    assert_eq!(terminals(&c, "R1").len(), 1, "{chats:?}");
    assert!(
        is_terminal(chats.last().expect("chats")),
        "the terminal is last"
    );

    // The agent stream: lifecycle start first, end last.
    let agent: Vec<Value> = c
        .events("agent")
        .into_iter()
        .filter(|p| p["runId"] == "R1")
        .collect();
    let phases: Vec<&str> = agent
        .iter()
        .filter(|p| p["stream"] == "lifecycle")
        .filter_map(|p| p["data"]["phase"].as_str())
        .collect();
    assert_eq!(phases.first(), Some(&"start"), "{phases:?}");
    assert_eq!(phases.last(), Some(&"end"), "{phases:?}");

    // The transcript: the user message, then the answer, with ids and seqs.
    let h = c.ok("chat.history", json!({"sessionKey": "main"})).await;
    let messages = history_of(&h);
    assert_eq!(messages.len(), 2, "{h}");
    assert_eq!(messages[0]["role"], "user");
    assert_eq!(text_of(&messages[0]), "hello there");
    assert_eq!(messages[0]["idempotencyKey"], "R1:user");
    assert_eq!(messages[1]["role"], "assistant");
    assert_eq!(text_of(&messages[1]), answer);
    let ids: Vec<&str> = messages
        .iter()
        .map(|m| m["__openclaw"]["id"].as_str().expect("__openclaw.id"))
        .collect();
    assert!(
        ids.iter().all(|id| !id.is_empty()) && ids[0] != ids[1],
        "{ids:?}"
    );
    let seqs: Vec<u64> = messages
        .iter()
        .map(|m| m["__openclaw"]["seq"].as_u64().expect("__openclaw.seq"))
        .collect();
    assert!(seqs[0] < seqs[1], "{seqs:?}");
    assert_eq!(h["sessionKey"], "agent:main:main");
    assert_eq!(double.chats().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_idempotency_key_is_in_flight_then_replayed_and_other_text_conflicts() {
    let r = Rig::one("openai-completions", &[]);
    let (double, c) = (&r.double, r.operator(&[]).await);

    double.push(Reply::text("slow and steady").chunked(60).delayed(ms(150)));
    let first = c.ok("chat.send", send_params("main", "once", "K1")).await;
    assert_eq!(first["status"], "started");
    let again = c.ok("chat.send", send_params("main", "once", "K1")).await;
    assert_eq!(again, json!({"runId": "K1", "status": "in_flight"}));
    let other = c
        .call("chat.send", send_params("main", "something else", "K1"))
        .await;
    assert_eq!(other["ok"], false, "{other}");
    assert_eq!(other["error"]["code"], "INVALID_REQUEST");
    assert_eq!(
        other["error"]["details"]["reason"], "chat-request-conflict",
        "{other}"
    );
    assert_eq!(c.terminal("K1").await["state"], "final");

    let replay = c.ok("chat.send", send_params("main", "once", "K1")).await;
    assert_eq!(replay["runId"], "K1");
    assert_eq!(replay["status"], "ok", "{replay}");
    let conflict = c
        .call("chat.send", send_params("main", "something else", "K1"))
        .await;
    assert_eq!(
        conflict["error"]["details"]["reason"],
        "chat-request-conflict"
    );
    settle(&c).await;
    assert_eq!(double.chats().len(), 1, "the model was asked once");
    assert_eq!(terminals(&c, "K1").len(), 1);
    let h = c.ok("chat.history", json!({"sessionKey": "main"})).await;
    assert_eq!(history_of(&h).len(), 2, "stored once: {h}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_abort_stops_a_streaming_run_with_one_aborted_event_and_keeps_the_partial_text() {
    let r = Rig::one("openai-completions", &[]);
    let (double, c) = (&r.double, r.operator(&[]).await);

    let answer = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen";
    double.push(Reply::text(answer).chunked(50).delayed(ms(120)));
    c.ok("chat.send", send_params("main", "count slowly", "A1"))
        .await;
    c.wait("a first delta", |f| {
        is_event(f, "chat") && f["payload"]["runId"] == "A1" && f["payload"]["state"] == "delta"
    })
    .await;
    let aborted = c
        .ok("chat.abort", json!({"sessionKey": "main", "runId": "A1"}))
        .await;
    assert_eq!(aborted["ok"], true);
    assert_eq!(aborted["aborted"], true);
    assert_eq!(aborted["runIds"], json!(["A1"]));
    let end = c.terminal("A1").await;
    assert_eq!(end["state"], "aborted", "{end}");
    assert_eq!(end["stopReason"], "rpc");
    let partial = text_of(&end["message"]);
    assert!(!partial.is_empty(), "{end}");
    assert!(
        answer.starts_with(&partial) && partial.len() < answer.len(),
        "{partial:?}"
    );
    settle(&c).await;
    assert_eq!(terminals(&c, "A1").len(), 1);

    // The partial answer is in the transcript, marked aborted.
    let h = c.ok("chat.history", json!({"sessionKey": "main"})).await;
    let messages = history_of(&h);
    let last = messages.last().expect("messages");
    assert_eq!(last["role"], "assistant");
    assert_eq!(last["stopReason"], "aborted", "{last}");
    assert_eq!(text_of(last), partial);

    // Nothing is left to abort; the model was asked once.
    let none = c
        .ok("chat.abort", json!({"sessionKey": "main", "runId": "A1"}))
        .await;
    assert_eq!(none["aborted"], false);
    assert_eq!(none["runIds"], json!([]));
    assert_eq!(double.chats().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_past_the_timeout_ends_aborted_with_stop_reason_timeout() {
    let r = Rig::one(
        "openai-completions",
        &[("agents.defaults.timeoutSeconds", "1")],
    );
    let (double, c) = (&r.double, r.operator(&[]).await);

    // A model that never answers.
    double.push(Reply::hang());
    let t0 = Instant::now();
    c.ok("chat.send", send_params("main", "hello?", "T1")).await;
    let end = c.terminal("T1").await;
    assert_eq!(end["state"], "aborted", "{end}");
    assert_eq!(end["stopReason"], "timeout", "{end}");
    assert!(t0.elapsed() >= ms(900), "ended early: {:?}", t0.elapsed());

    // A model still streaming when the time is up: the part said is kept.
    let answer = "a b c d e f g h i j k l m n o p q r s t u v w x y z ".repeat(4);
    double.push(Reply::text(answer.clone()).chunked(40).delayed(ms(100)));
    c.ok("chat.send", send_params("main", "the alphabet", "T2"))
        .await;
    let end = c.terminal("T2").await;
    assert_eq!(end["state"], "aborted", "{end}");
    assert_eq!(end["stopReason"], "timeout");
    let partial = text_of(&end["message"]);
    assert!(!partial.is_empty() && answer.starts_with(&partial) && partial.len() < answer.len());
    settle(&c).await;
    assert_eq!(terminals(&c, "T1").len(), 1);
    assert_eq!(terminals(&c, "T2").len(), 1);
    let waited = c
        .ok("agent.wait", json!({"runId": "T2", "timeoutMs": 1000}))
        .await;
    assert_eq!(waited["status"], "timeout", "{waited}");
}

/// One tool round trip (`ls` in the workspace) in the API `api`: the tool
/// call's arguments split across deltas and body chunks, its result back to
/// the model, the events to whom they belong.
async fn tool_round_trip(api: &str) {
    let r = Rig::one(api, &[]);
    let double = &r.double;
    let caller = r.operator(&["tool-events"]).await;
    let watcher = r.operator(&[]).await;
    let bystander = r.operator(&["tool-events"]).await;
    watcher.ok("sessions.subscribe", json!({})).await;

    let identity = caller.ok("gateway.identity.get", json!({})).await;
    let workspace = std::path::PathBuf::from(identity["workspace"].as_str().expect("workspace"));
    std::fs::create_dir_all(&workspace).expect("workspace");
    let file = format!("notes-{api}.md");
    std::fs::write(workspace.join(&file), "remember the milk").expect("file");

    double.push(Reply::tool_call("ls", json!({"path": "."})).chunked(7));
    double.push(Reply::text("The workspace holds your notes.").chunked(9));
    caller
        .ok(
            "chat.send",
            send_params("main", "what is in my workspace?", "W1"),
        )
        .await;
    let end = caller.terminal("W1").await;
    assert_eq!(end["state"], "final", "{api}: {end}");
    assert_eq!(text_of(&end["message"]), "The workspace holds your notes.");
    settle(&caller).await;
    settle(&watcher).await;
    settle(&bystander).await;

    // The model got the listing back as the tool's result.
    let chats = double.chats();
    assert_eq!(chats.len(), 2, "{api}");
    assert!(
        !chats[0].body.to_string().contains(&file),
        "{api}: the first call already knew the file"
    );
    assert!(
        chats[1].body.to_string().contains(&file),
        "{api}: the listing did not reach the model: {}",
        chats[1].body
    );

    let of_run = |c: &Conn, stream: &str| -> Vec<Value> {
        c.events("agent")
            .into_iter()
            .filter(|p| p["runId"] == "W1" && p["stream"] == stream)
            .collect()
    };
    // The caller, which advertised tool-events, sees the tool stream.
    let tools = of_run(&caller, "tool");
    let phases: Vec<&str> = tools
        .iter()
        .filter_map(|p| p["data"]["phase"].as_str())
        .collect();
    assert_eq!(phases, ["start", "result"], "{api}: {tools:?}");
    assert_eq!(tools[0]["data"]["name"], "ls");
    assert_eq!(tools[0]["data"]["args"], json!({"path": "."}), "{api}");
    assert_eq!(tools[1]["data"]["isError"], false);
    assert!(
        tools[1]["data"]["result"].to_string().contains(&file),
        "{api}: {}",
        tools[1]
    );
    // Items go to every operator connection; the tool stream to no other.
    for c in [&caller, &watcher, &bystander] {
        let items = of_run(c, "item");
        let item_phases: Vec<&str> = items
            .iter()
            .filter_map(|p| p["data"]["phase"].as_str())
            .collect();
        assert_eq!(item_phases, ["start", "end"], "{api}: {items:?}");
        assert_eq!(items[1]["data"]["status"], "completed");
    }
    assert!(of_run(&watcher, "tool").is_empty(), "{api}");
    assert!(of_run(&bystander, "tool").is_empty(), "{api}");
    // Session subscribers get the tool stream as session.tool.
    let session_tools = watcher.events("session.tool");
    assert_eq!(session_tools.len(), 2, "{api}: {session_tools:?}");
    assert!(bystander.events("session.tool").is_empty());

    // The transcript has the whole round.
    let h = caller
        .ok("chat.history", json!({"sessionKey": "main"}))
        .await;
    let messages = history_of(&h);
    let roles: Vec<&str> = messages
        .iter()
        .map(|m| m["role"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(
        roles,
        ["user", "assistant", "toolResult", "assistant"],
        "{api}: {h}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_round_trip_in_openai_completions() {
    tool_round_trip("openai-completions").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_round_trip_in_anthropic_messages() {
    tool_round_trip("anthropic-messages").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_round_trip_in_ollama() {
    tool_round_trip("ollama").await;
}

/// The final `res` of an `agent` request (the second on its id).
async fn agent_turn(c: &Conn, session: &str, message: &str, run_id: &str) -> Value {
    let id = c
        .send(
            "agent",
            json!({"message": message, "sessionKey": session, "idempotencyKey": run_id}),
        )
        .await;
    let (at, accepted) = c.wait_from(0, "agent accepted", |f| is_res(f, &id)).await;
    assert_eq!(accepted["ok"], true, "{accepted}");
    assert_eq!(accepted["payload"]["status"], "accepted", "{accepted}");
    c.wait_from(at + 1, "the agent final", |f| is_res(f, &id))
        .await
        .1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fallover_to_the_fallback_after_429_500_and_a_server_that_never_answers() {
    for (what, failure) in [
        ("429", Reply::rate_limited("30")),
        ("500", Reply::server_error()),
        ("hang", Reply::hang()),
    ] {
        let r = Rig::running(
            "chat",
            &[
                ProviderConf::new("first", "openai-completions", "ma").extra("timeoutSeconds: 1"),
                ProviderConf::new("second", "openai-completions", "mb"),
            ],
            &["first/ma", "second/mb"],
            &[],
        );
        let (double, c) = (&r.double, r.operator(&[]).await);
        double.push(failure);
        double.push(Reply::text("the fallback answers"));
        let fin = agent_turn(&c, "main", "hello", "F1").await;
        assert_eq!(fin["ok"], true, "{what}: {fin}");
        let p = &fin["payload"];
        assert_eq!(p["status"], "ok", "{what}: {p}");
        assert_eq!(p["result"]["payloads"][0]["text"], "the fallback answers");
        assert_eq!(
            p["result"]["meta"]["agentMeta"]["provider"], "second",
            "{what}"
        );
        let models: Vec<String> = double
            .chats()
            .iter()
            .map(|r| r.body["model"].as_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(models, ["ma", "mb"], "{what}");

        // The failed provider cools down: the next turn goes straight to
        // the fallback (a 429's retry-after is 30 s here).
        let fin = agent_turn(&c, "main", "again", "F2").await;
        assert_eq!(fin["payload"]["status"], "ok", "{what}: {fin}");
        let models: Vec<String> = double
            .chats()
            .iter()
            .map(|r| r.body["model"].as_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(models, ["ma", "mb", "mb"], "{what}");
        let waited = c.ok("agent.wait", json!({"runId": "F2"})).await;
        assert_eq!(waited["status"], "ok");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_key_is_an_error_naming_the_fix_without_a_fragment_of_the_key() {
    let key = "sk-live-Qz81x7Vb0pLm4f9c2b7a1e";
    let r = Rig::running(
        "chat",
        &[ProviderConf::new("dbl", "openai-completions", "m1")
            .key(Key::Env("DBL_API_KEY".into(), key.into()))],
        &["dbl/m1"],
        &[],
    );
    let (double, c) = (&r.double, r.operator(&["tool-events"]).await);
    c.ok("sessions.subscribe", json!({})).await;
    double.push(Reply::unauthorized());
    c.ok("chat.send", send_params("main", "hi", "U1")).await;
    let end = c.terminal("U1").await;
    assert_eq!(end["state"], "error", "{end}");
    let message = end["errorMessage"].as_str().expect("errorMessage");
    assert!(
        message.contains("secrets set models.providers.dbl.apiKey"),
        "{message}"
    );
    assert!(message.contains("401"), "{message}");
    // The key did reach the provider (which echoed it back).
    assert_eq!(
        double.chats()[0].header("authorization"),
        Some(format!("Bearer {key}").as_str())
    );
    settle(&c).await;
    let seen: String = c.frames().iter().map(Value::to_string).collect();
    let h = c.ok("chat.history", json!({"sessionKey": "main"})).await;
    for (what, text) in [("frames", seen), ("history", h.to_string())] {
        if let Some(f) = omniclaw_tests::chat::leaked(&text, key, 6) {
            panic!("{f:?} of the key is in the {what}");
        }
    }
    assert!(h
        .to_string()
        .contains("secrets set models.providers.dbl.apiKey"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_budget_stops_the_next_run_before_it_reaches_the_model() {
    let r = Rig::running(
        "chat",
        &[ProviderConf::new("dbl", "openai-completions", "m1")
            .model_extra("cost: { input: 1000, output: 1000 }")],
        &["dbl/m1"],
        &[("budget.dailyUsd", "0.001")],
    );
    let (double, c) = (&r.double, r.operator(&[]).await);

    double.push(Reply::text("that one was expensive").usage(10, 5));
    c.ok("chat.send", send_params("main", "first", "B1")).await;
    assert_eq!(c.terminal("B1").await["state"], "final");
    // 15 tokens at $1000 per million: $0.015 spent against $0.001.
    let health = c.ok("health", json!({})).await;
    let today = &health["assistant"]["today"];
    assert_eq!(today["tokens"], 15, "{health}");
    assert!(
        (today["usd"].as_f64().unwrap_or(0.0) - 0.015).abs() < 1e-9,
        "{today}"
    );
    assert_eq!(today["dailyUsd"], 0.001);
    let resets = today["resetsAtMs"].as_u64().expect("resetsAtMs");
    assert!(resets > now_ms(), "{today}");

    let ack = c.ok("chat.send", send_params("main", "second", "B2")).await;
    assert_eq!(ack["status"], "started");
    let end = c.terminal("B2").await;
    assert_eq!(end["state"], "error", "{end}");
    let message = end["errorMessage"].as_str().expect("errorMessage");
    assert!(message.contains("budget.dailyUsd"), "{message}");
    assert!(message.contains("resets at local midnight"), "{message}");
    assert_eq!(double.chats().len(), 1, "no request past the cap");
    // The refusal is in the transcript too, after the user's message.
    let h = c.ok("chat.history", json!({"sessionKey": "main"})).await;
    let last = history_of(&h).last().cloned().expect("messages");
    assert!(last.to_string().contains("budget.dailyUsd"), "{last}");
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_listed_reset_and_deleted() {
    let r = Rig::one("openai-completions", &[]);
    let (double, c) = (&r.double, r.operator(&[]).await);
    c.ok("sessions.subscribe", json!({})).await;

    double.push(Reply::text("noted"));
    c.ok("chat.send", send_params("work", "a note for work", "S1"))
        .await;
    let end = c.terminal("S1").await;
    assert_eq!(end["sessionKey"], "agent:main:work");
    let list = c.ok("sessions.list", json!({})).await;
    let rows = list["sessions"].as_array().cloned().unwrap_or_default();
    let work = rows
        .iter()
        .find(|r| r["key"] == "agent:main:work")
        .unwrap_or_else(|| panic!("{list}"));
    assert_eq!(work["messageCount"], 2, "{work}");
    assert_eq!(work["hasActiveRun"], false);
    assert_eq!(work["lastRunId"], "S1");
    let session_id = work["sessionId"].as_str().expect("sessionId").to_string();

    // A reset keeps the session id and starts the transcript anew.
    let reset = c.ok("sessions.reset", json!({"key": "work"})).await;
    assert_eq!(reset["key"], "agent:main:work");
    assert_eq!(reset["entry"]["sessionId"], session_id.as_str());
    c.wait("sessions.changed reset", |f| {
        is_event(f, "sessions.changed") && f["payload"]["reason"] == "reset"
    })
    .await;
    let h = c.ok("chat.history", json!({"sessionKey": "work"})).await;
    assert!(
        !h.to_string().contains("a note for work"),
        "the reset session still shows the old turn: {h}"
    );
    assert_eq!(h["sessionId"], session_id.as_str());

    // A delete removes it.
    let deleted = c.ok("sessions.delete", json!({"key": "work"})).await;
    assert_eq!(deleted["deleted"], true, "{deleted}");
    c.wait("sessions.changed delete", |f| {
        is_event(f, "sessions.changed") && f["payload"]["reason"] == "delete"
    })
    .await;
    let list = c.ok("sessions.list", json!({})).await;
    assert!(
        !list.to_string().contains("agent:main:work"),
        "still listed: {list}"
    );
    let h = c.ok("chat.history", json!({"sessionKey": "work"})).await;
    assert_eq!(history_of(&h).len(), 0, "{h}");
    let again = c.ok("sessions.delete", json!({"key": "work"})).await;
    assert_eq!(again["deleted"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn params_are_strict_and_scopes_are_enforced() {
    let r = Rig::one("openai-completions", &[]);
    let (double, c) = (&r.double, r.operator(&[]).await);

    let mut unknown = send_params("main", "hi", "P1");
    unknown["bogusKey"] = json!(true);
    let res = c.call("chat.send", unknown).await;
    assert_eq!(res["error"]["code"], "INVALID_REQUEST", "{res}");
    let message = res["error"]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("invalid chat.send params"), "{message}");
    assert!(message.contains("bogusKey"), "{message}");
    let res = c
        .call("chat.send", json!({"sessionKey": "main", "message": "hi"}))
        .await;
    assert!(
        res["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("'idempotencyKey'"),
        "{res}"
    );
    let res = c
        .call("chat.abort", json!({"sessionKey": "main", "nope": 1}))
        .await;
    assert!(
        res["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("invalid chat.abort params"),
        "{res}"
    );

    // operator.read may read, not send or abort.
    let reader = Conn::connect(r.assistant.port, TOKEN, &["operator.read"], &[])
        .await
        .expect("read-only connect");
    for (method, params) in [
        ("chat.send", send_params("main", "hi", "P2")),
        ("chat.abort", json!({"sessionKey": "main"})),
        ("agent", json!({"message": "hi", "idempotencyKey": "P3"})),
    ] {
        let res = reader.call(method, params).await;
        assert_eq!(res["ok"], false, "{method}: {res}");
        assert_eq!(res["error"]["code"], "FORBIDDEN", "{method}: {res}");
        assert_eq!(
            res["error"]["message"], "missing scope: operator.write",
            "{method}"
        );
    }
    reader
        .ok("chat.history", json!({"sessionKey": "main"}))
        .await;
    reader.ok("sessions.list", json!({})).await;
    // operator.write may send, not reset or delete sessions.
    let writer = Conn::connect(r.assistant.port, TOKEN, &["operator.write"], &[])
        .await
        .expect("write connect");
    for method in ["sessions.reset", "sessions.delete"] {
        let res = writer.call(method, json!({"key": "main"})).await;
        assert_eq!(res["error"]["code"], "FORBIDDEN", "{method}: {res}");
        assert_eq!(res["error"]["message"], "missing scope: operator.admin");
    }
    assert!(
        double.chats().is_empty(),
        "a refused request reached the model"
    );
}

/// A seed that differs from run to run, printed so a failure can be
/// replayed.
fn seed() -> u64 {
    if let Some(s) = std::env::var("CHAT_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return s;
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64 ^ d.as_secs())
        .unwrap_or(7)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_nine_during_200_streamed_turns_keeps_each_finished_message_once_and_marks_the_cut_turn(
) {
    const TURNS: usize = 200;
    let seed = seed();
    // The cut turn, somewhere in the middle.
    let cut = 20 + (seed % 160) as usize;
    eprintln!("kill -9 during turn {cut} of {TURNS} (CHAT_KILL_SEED={seed})");
    let mut r = Rig::one("openai-completions", &[]);
    let mut c = r.operator(&[]).await;
    let answer = |i: usize| format!("answer {i}: the double streams this in small pieces.");

    let mut cursor = 0;
    for i in 1..=TURNS {
        let run = format!("turn-{i}");
        if i == cut {
            // Slow enough that the kill lands in the middle of it.
            r.double
                .push(Reply::text(answer(i)).chunked(64).delayed(ms(150)));
        } else {
            r.double
                .push(Reply::text(answer(i)).chunked(256).delayed(ms(1)));
        }
        let id = c
            .send("chat.send", send_params("main", &format!("turn {i}"), &run))
            .await;
        let (at, ack) = c.wait_from(cursor, "the ack", |f| is_res(f, &id)).await;
        assert_eq!(ack["payload"]["status"], "started", "{ack}");
        if i == cut {
            c.wait_from(at, "the cut turn's first delta", |f| {
                is_event(f, "chat") && f["payload"]["runId"] == run.as_str()
            })
            .await;
            r.take_gateway().kill9();
            r.start();
            c = r.operator(&[]).await;
            cursor = 0;
            continue;
        }
        let (end_at, end) = c
            .wait_from(at, "the end of the turn", |f| {
                is_event(f, "chat")
                    && f["payload"]["runId"] == run.as_str()
                    && is_terminal(&f["payload"])
            })
            .await;
        assert_eq!(end["payload"]["state"], "final", "turn {i}: {end}");
        assert_eq!(text_of(&end["payload"]["message"]), answer(i));
        cursor = end_at + 1;
    }

    // The store opened again (the gateway answers with it) and holds every
    // finished message exactly once, in order; the cut turn is marked.
    let health = c.ok("health", json!({})).await;
    assert!(health["assistant"]["problem"].is_null(), "{health}");
    let h = c
        .ok("chat.history", json!({"sessionKey": "main", "limit": 1000}))
        .await;
    let messages = history_of(&h);
    assert_eq!(messages.len(), 2 * TURNS, "{} messages", messages.len());
    for i in 1..=TURNS {
        let user = &messages[2 * (i - 1)];
        let reply = &messages[2 * (i - 1) + 1];
        assert_eq!(user["role"], "user");
        assert_eq!(text_of(user), format!("turn {i}"));
        assert_eq!(reply["role"], "assistant");
        if i == cut {
            assert!(
                text_of(reply).contains("interrupted"),
                "turn {i} is not marked: {reply}"
            );
            assert_eq!(reply["stopReason"], "aborted", "{reply}");
        } else {
            assert_eq!(text_of(reply), answer(i), "turn {i}");
            assert_eq!(reply["stopReason"], "stop");
        }
    }
    let seqs: Vec<u64> = messages
        .iter()
        .filter_map(|m| m["__openclaw"]["seq"].as_u64())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "seqs out of order");

    // The cut run is known as interrupted; resending its id replays that.
    let cut_run = format!("turn-{cut}");
    let waited = c
        .ok("agent.wait", json!({"runId": cut_run, "timeoutMs": 100}))
        .await;
    assert_eq!(waited["stopReason"], "interrupted", "{waited}");
    let replay = c
        .ok(
            "chat.send",
            send_params("main", &format!("turn {cut}"), &cut_run),
        )
        .await;
    assert_eq!(replay["stopReason"], "interrupted", "{replay}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_connects_the_moment_the_port_opens_finds_the_assistant() {
    for attempt in 0..5 {
        let r = Rig::wire(
            "early",
            &[ProviderConf::new("dbl", "openai-completions", "m1")],
            &["dbl/m1"],
            &[],
        );
        let port = r.assistant.port;
        let mut cmd = r.home.cmd();
        cmd.args(["--profile", "early", "gateway", "--token", TOKEN])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let mut gw = cmd.spawn().expect("spawn the gateway");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the gateway never listened");
            std::thread::sleep(ms(1));
        }
        let c = r.operator(&[]).await;
        let history = c.call("chat.history", json!({"sessionKey": "main"})).await;
        let send = c
            .call("chat.send", send_params("main", "first!", "early-1"))
            .await;
        let _ = gw.kill();
        let _ = gw.wait();
        assert_eq!(history["ok"], true, "attempt {attempt}: {history}");
        assert_eq!(send["ok"], true, "attempt {attempt}: {send}");
    }
}
