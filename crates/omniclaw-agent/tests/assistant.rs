//! The assistant against the provider double, for each API: chat, tool
//! rounds, fallover with cooldowns, abort, timeouts, cut streams, bad keys,
//! budgets, Ollama's context size and tool probe.

mod support;

use std::sync::Arc;
use std::time::Duration;

use omniclaw_agent::agent::Submitted;
use omniclaw_agent::double::{Double, Reply};
use omniclaw_agent::message::{Message, StopReason};
use omniclaw_agent::run::RunEvent;
use omniclaw_agent::session::{RunStatus, SessionKey};
use serde_json::json;
use support::*;

fn assistant_messages(rig: &Rig) -> Vec<omniclaw_agent::message::AssistantMessage> {
    rig.store
        .messages("agent:main:main")
        .into_iter()
        .filter_map(|m| match m {
            Message::Assistant(a) => Some(a),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn chat_streams_text_split_at_any_byte() {
    let text = "Grüße aus Zürich — 你好, 世界! 🎉 Done.";
    for api in APIS {
        let double = Double::start().await.expect("double");
        let rig = rig(&one_provider(&double, api, ""), Vec::new());
        // Three bytes a chunk: cuts inside characters and across data: lines.
        double.push(Reply::text(text).chunked(3).usage(1000, 500));
        let events = run(&rig, request("R1", "hi")).await;
        let out = outcome(&events);
        assert_eq!(out.status, RunStatus::Ok, "{api}: {events:#?}");
        assert_eq!(out.text, text, "{api}");
        assert_eq!(chosen(&events), ["p/m1"], "{api}");
        assert!(
            matches!(
                events.first(),
                Some(RunEvent::Started { message_seq: 1, .. })
            ),
            "{api}"
        );
        let last_delta = events.iter().rev().find_map(|e| match e {
            RunEvent::TextDelta { text, .. } => Some(text.clone()),
            _ => None,
        });
        assert_eq!(
            last_delta.as_deref(),
            Some(text),
            "{api}: the cumulative text"
        );
        // Priced at 1000 / 2000 USD per million tokens.
        assert!(
            (out.usage.cost.total - 2.0).abs() < 1e-9,
            "{api}: {:?}",
            out.usage
        );
        assert_eq!((out.usage.input, out.usage.output), (1000, 500), "{api}");
        let stored = assistant_messages(&rig);
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].text(), text);
        assert_eq!(stored[0].stop_reason, StopReason::Stop);
        assert_eq!(stored[0].api, api);
        let sent = &double.chats()[0];
        assert_eq!(sent.body["model"], "m1", "{api}");
        assert_eq!(sent.body["stream"], true, "{api}");
        match api {
            "openai-completions" => {
                assert_eq!(
                    sent.header("authorization"),
                    Some(format!("Bearer {KEY}").as_str())
                );
                assert_eq!(sent.body["stream_options"]["include_usage"], true);
                assert_eq!(sent.body["messages"][0]["role"], "system");
                assert_eq!(
                    sent.body["messages"][1],
                    json!({"role": "user", "content": "hi"})
                );
            }
            "anthropic-messages" => {
                assert_eq!(sent.header("x-api-key"), Some(KEY));
                assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
                assert!(sent.body["system"]
                    .as_str()
                    .is_some_and(|s| s.contains("OmniClaw")));
                assert_eq!(sent.body["messages"][0]["content"][0]["text"], "hi");
                assert!(sent.body["max_tokens"].as_u64().is_some());
            }
            _ => {
                assert_eq!(sent.path, "/api/chat");
                assert_eq!(sent.body["messages"][1]["content"], "hi");
            }
        }
    }
}

#[tokio::test]
async fn a_tool_round_trip_with_arguments_split_across_chunks() {
    for api in APIS {
        let double = Double::start().await.expect("double");
        let rig = rig(&one_provider(&double, api, ""), vec![Arc::new(Calc)]);
        double.push(
            Reply::tool_call("calc", json!({"a": 6, "b": 7}))
                .with_text("Let me compute.")
                .chunked(7),
        );
        double.push(Reply::text("6*7 = 42.").chunked(2));
        let events = run(&rig, request("R1", "what is 6*7?")).await;
        let out = outcome(&events);
        assert_eq!(out.status, RunStatus::Ok, "{api}: {events:#?}");
        assert_eq!(out.text, "Let me compute.\n\n6*7 = 42.", "{api}");
        let tool_events: Vec<&RunEvent> = events
            .iter()
            .filter(|e| matches!(e, RunEvent::ToolStart { .. } | RunEvent::ToolResult { .. }))
            .collect();
        match tool_events.as_slice() {
            [RunEvent::ToolStart { name, args, .. }, RunEvent::ToolResult { text, is_error, .. }] =>
            {
                assert_eq!(name, "calc");
                assert_eq!(
                    args,
                    &json!({"a": 6, "b": 7}),
                    "{api}: arguments joined from their pieces"
                );
                assert_eq!((text.as_str(), *is_error), ("42", false));
            }
            other => panic!("{api}: {other:#?}"),
        }
        let kinds: Vec<&str> = rig
            .store
            .messages("agent:main:main")
            .iter()
            .map(|m| match m {
                Message::User(_) => "user",
                Message::Assistant(_) => "assistant",
                Message::ToolResult(_) => "toolResult",
            })
            .collect();
        assert_eq!(
            kinds,
            ["user", "assistant", "toolResult", "assistant"],
            "{api}"
        );
        let chats = double.chats();
        assert_eq!(chats.len(), 2);
        let first = &chats[0].body;
        let second = &chats[1].body;
        match api {
            "openai-completions" => {
                assert_eq!(first["tools"][0]["function"]["name"], "calc");
                let msgs = second["messages"].as_array().expect("messages");
                let call = &msgs[2];
                assert_eq!(call["tool_calls"][0]["function"]["name"], "calc");
                let args: serde_json::Value = serde_json::from_str(
                    call["tool_calls"][0]["function"]["arguments"]
                        .as_str()
                        .expect("text"),
                )
                .expect("json");
                assert_eq!(args, json!({"a": 6, "b": 7}));
                assert_eq!(msgs[3]["role"], "tool");
                assert_eq!(msgs[3]["tool_call_id"], call["tool_calls"][0]["id"]);
                assert_eq!(msgs[3]["content"], "42");
            }
            "anthropic-messages" => {
                assert_eq!(first["tools"][0]["name"], "calc");
                assert!(first["tools"][0]["input_schema"].is_object());
                let msgs = second["messages"].as_array().expect("messages");
                assert_eq!(msgs[1]["role"], "assistant");
                let tool_use = &msgs[1]["content"][1];
                assert_eq!(tool_use["type"], "tool_use");
                assert_eq!(tool_use["input"], json!({"a": 6, "b": 7}));
                assert_eq!(msgs[2]["role"], "user");
                assert_eq!(msgs[2]["content"][0]["type"], "tool_result");
                assert_eq!(msgs[2]["content"][0]["tool_use_id"], tool_use["id"]);
                assert_eq!(msgs[2]["content"][0]["content"], "42");
            }
            _ => {
                assert_eq!(first["tools"][0]["function"]["name"], "calc");
                let msgs = second["messages"].as_array().expect("messages");
                assert_eq!(
                    msgs[2]["tool_calls"][0]["function"]["arguments"],
                    json!({"a": 6, "b": 7})
                );
                assert_eq!(
                    msgs[3],
                    json!({"role": "tool", "content": "42", "tool_name": "calc"})
                );
            }
        }
    }
}

#[tokio::test]
async fn a_refused_or_unknown_tool_goes_back_to_the_model_as_an_error() {
    let double = Double::start().await.expect("double");
    let api = "openai-completions";
    let rig = rig(
        &one_provider(&double, api, "tools: { deny: ['calc'] }"),
        vec![Arc::new(Calc)],
    );
    double.push(Reply::tool_call("calc", json!({"a": 1, "b": 2})).and_call("nope", json!({})));
    double.push(Reply::text("Sorry."));
    let events = run(&rig, request("R1", "go")).await;
    assert_eq!(outcome(&events).status, RunStatus::Ok);
    let results: Vec<(String, bool)> = events
        .iter()
        .filter_map(|e| match e {
            RunEvent::ToolResult { text, is_error, .. } => Some((text.clone(), *is_error)),
            _ => None,
        })
        .collect();
    assert_eq!(results.len(), 2);
    assert!(
        results[0].1 && results[0].0.contains("tools.deny"),
        "{results:?}"
    );
    assert!(
        results[1].1 && results[1].0.contains("no tool named nope"),
        "{results:?}"
    );
    // A denied tool is not even offered.
    assert!(double.chats()[0].body.get("tools").is_none());
}

#[tokio::test]
async fn a_new_setup_changes_the_tools_offered_from_the_next_run() {
    let double = Double::start().await.expect("double");
    let api = "openai-completions";
    let text = one_provider(&double, api, "");
    let rig = rig(&text, vec![Arc::new(Calc)]);
    let offered = |i: usize| -> Vec<String> {
        double.chats()[i].body["tools"]
            .as_array()
            .map(|tools| {
                tools
                    .iter()
                    .map(|t| {
                        t["function"]["name"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string()
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let reconfigure = |extra: &str| {
        let config = agent_config(&one_provider(&double, api, extra));
        rig.agent.reconfigure(setup(
            &config,
            &rig.clock,
            vec![Arc::new(Calc)],
            rig.workspace.path(),
        ));
    };
    for (i, (extra, expected)) in [
        ("", vec!["calc"]),
        ("tools: { deny: ['calc'] }", vec![]),
        ("tools: { allow: ['calc'] }", vec!["calc"]),
    ]
    .into_iter()
    .enumerate()
    {
        if i > 0 {
            reconfigure(extra);
        }
        double.push(Reply::text("ok"));
        let events = run(&rig, request(&format!("R{i}"), "go")).await;
        assert_eq!(outcome(&events).status, RunStatus::Ok, "{extra}");
        assert_eq!(offered(i), expected, "{extra}");
    }
}

/// Two providers at the double, a then b.
fn two_providers(double: &Double, api: &str, extra: &str) -> String {
    let url = double.base_url(api);
    format!(
        "{{ models: {{ providers: {{ a: {{ baseUrl: '{url}', api: '{api}', timeoutSeconds: 1, models: [{{ id: 'ma', name: 'A' }}] }}, b: {{ baseUrl: '{url}', api: '{api}', models: [{{ id: 'mb', name: 'B' }}] }} }} }}, agents: {{ defaults: {{ model: {{ primary: 'a/ma', fallbacks: ['b/mb'] }} }} }}, {extra} }}"
    )
}

#[tokio::test]
async fn fallover_after_429_5xx_and_timeout_with_the_cooldown_honoured() {
    let cases: [(Reply, &str, i64); 3] = [
        (Reply::rate_limited("45"), "HTTP 429", 45_000),
        (Reply::server_error(), "HTTP 500", 30_000),
        (Reply::hang(), "did not answer within 1 s", 30_000),
    ];
    for api in APIS {
        for (failure, why, cooldown_ms) in cases.clone() {
            let double = Double::start().await.expect("double");
            let rig = rig(&two_providers(&double, api, ""), Vec::new());
            double.push(failure);
            double.push(Reply::text("from b"));
            let events = run(&rig, request("R1", "hi")).await;
            let out = outcome(&events);
            assert_eq!(
                (out.status, out.text.as_str()),
                (RunStatus::Ok, "from b"),
                "{api} {why}: {events:#?}"
            );
            assert_eq!(out.provider.as_deref(), Some("b"));
            assert_eq!(chosen(&events), ["a/ma", "b/mb"], "{api} {why}");
            let skips = skipped(&events);
            assert_eq!(skips.len(), 1, "{api} {why}: {skips:?}");
            assert!(
                skips[0].0 == "a" && skips[0].1.contains(why),
                "{api}: {skips:?}"
            );
            // While a cools down it is skipped without a request.
            rig.clock.advance(cooldown_ms - 1_000);
            double.push(Reply::text("b again"));
            let events = run(&rig, request("R2", "again")).await;
            assert_eq!(outcome(&events).text, "b again", "{api} {why}");
            assert_eq!(chosen(&events), ["b/mb"], "{api} {why}");
            assert!(
                skipped(&events)[0].1.contains("cooling down"),
                "{api}: {events:#?}"
            );
            assert_eq!(double.chats().len(), 3, "{api} {why}: a was not asked");
            // Once the cooldown is over, a is first again.
            rig.clock.advance(1_000);
            double.push(Reply::text("a is back"));
            let events = run(&rig, request("R3", "and now?")).await;
            assert_eq!(
                outcome(&events).provider.as_deref(),
                Some("a"),
                "{api} {why}"
            );
            assert_eq!(chosen(&events), ["a/ma"]);
        }
    }
}

#[tokio::test]
async fn a_wrong_key_does_not_leak_into_the_error() {
    for api in APIS {
        let double = Double::start().await.expect("double");
        let rig = rig(&one_provider(&double, api, ""), Vec::new());
        double.push(Reply::unauthorized());
        let events = run(&rig, request("R1", "hi")).await;
        let out = outcome(&events);
        assert_eq!(out.status, RunStatus::Error, "{api}");
        let error = out.error.expect("error");
        assert!(
            error.contains("refused the API key (HTTP 401)"),
            "{api}: {error}"
        );
        assert!(
            error.contains("Incorrect API key provided"),
            "{api}: {error}"
        );
        assert!(
            !error.contains("0123456789"),
            "{api}: the key leaked: {error}"
        );
        assert!(
            !format!("{events:?}").contains("0123456789"),
            "{api}: the key leaked into an event"
        );
        assert_eq!(assistant_messages(&rig)[0].stop_reason, StopReason::Error);
    }
}

#[tokio::test]
async fn a_never_answering_server_times_out_and_a_cut_stream_is_told_apart() {
    for api in APIS {
        let double = Double::start().await.expect("double");
        let rig = rig(&one_provider(&double, api, ""), Vec::new());
        double.push(Reply::hang());
        let started = std::time::Instant::now();
        let out = outcome(&run(&rig, request("R1", "hi")).await);
        assert_eq!(out.status, RunStatus::Error, "{api}");
        assert!(
            out.error
                .as_deref()
                .is_some_and(|e| e.contains("did not answer within 2 s")),
            "{api}: {out:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(10));

        // Headers and some text, then silence.
        double.push(
            Reply::text("slow and then nothing at all")
                .chunked(8)
                .delayed(Duration::from_millis(2500)),
        );
        let out = outcome(&run(&rig, request("R2", "hi")).await);
        assert!(
            out.error
                .as_deref()
                .is_some_and(|e| e.contains("did not answer within 2 s")),
            "{api}: {out:?}"
        );

        // The body ends before the end marker.
        double.push(Reply::cut(
            "This answer is cut short in the middle of its stream",
            700,
        ));
        let events = run(&rig, request("R3", "hi")).await;
        let out = outcome(&events);
        assert_eq!(out.status, RunStatus::Error, "{api}");
        assert!(
            out.error
                .as_deref()
                .is_some_and(|e| e.contains("cut the stream")),
            "{api}: {out:?}"
        );
        let last = assistant_messages(&rig).pop().expect("stored");
        assert_eq!(last.stop_reason, StopReason::Error);
        assert!(!last.text().is_empty(), "{api}: the partial text is kept");
        assert!(last.error_message.is_some());
    }
}

#[tokio::test]
async fn abort_mid_stream_stops_at_once_and_keeps_the_partial_text() {
    for api in APIS {
        let double = Double::start().await.expect("double");
        let rig = rig(&one_provider(&double, api, ""), Vec::new());
        let long = "word ".repeat(400);
        double.push(
            Reply::text(long.clone())
                .chunked(40)
                .delayed(Duration::from_millis(30)),
        );
        let Ok(Submitted::Queued(mut handle)) = rig.agent.submit(request("R1", "talk")) else {
            panic!("not queued");
        };
        // Wait for the first words, then abort.
        loop {
            match handle.events.recv().await {
                Some(RunEvent::TextDelta { .. }) => break,
                Some(_) => continue,
                None => panic!("{api}: ended early"),
            }
        }
        let at = std::time::Instant::now();
        assert_eq!(rig.agent.abort(&SessionKey::main("main"), None), ["R1"]);
        let events = collect(&mut handle.events).await;
        assert!(
            at.elapsed() < Duration::from_millis(500),
            "{api}: took {:?}",
            at.elapsed()
        );
        let out = outcome(&events);
        assert_eq!(out.status, RunStatus::Aborted, "{api}");
        assert!(matches!(
            events.last(),
            Some(RunEvent::Ended {
                stop_reason: StopReason::Aborted,
                ..
            })
        ));
        let stored = assistant_messages(&rig);
        assert_eq!(stored[0].stop_reason, StopReason::Aborted, "{api}");
        let partial = stored[0].text();
        assert!(
            !partial.is_empty() && partial.len() < long.len(),
            "{api}: {} of {}",
            partial.len(),
            long.len()
        );
        assert!(!rig.agent.is_active("R1"));
    }
}

#[tokio::test]
async fn abort_stops_a_running_tool() {
    let double = Double::start().await.expect("double");
    let rig = rig(
        &one_provider(&double, "openai-completions", ""),
        vec![Arc::new(Sleepy)],
    );
    double.push(Reply::tool_call("sleepy", json!({})));
    let Ok(Submitted::Queued(mut handle)) = rig.agent.submit(request("R1", "wait")) else {
        panic!("not queued");
    };
    loop {
        if let Some(RunEvent::ToolStart { .. }) = handle.events.recv().await {
            break;
        }
    }
    handle.abort();
    let events = collect(&mut handle.events).await;
    assert_eq!(outcome(&events).status, RunStatus::Aborted);
    let result = events.iter().find_map(|e| match e {
        RunEvent::ToolResult { text, is_error, .. } => Some((text.clone(), *is_error)),
        _ => None,
    });
    assert_eq!(
        result,
        Some(("the run was aborted while the tool ran".to_string(), true))
    );
    assert_eq!(double.chats().len(), 1, "no model call after an abort");
}

#[tokio::test]
async fn a_run_past_its_timeout_is_aborted() {
    let double = Double::start().await.expect("double");
    let rig = rig(&one_provider(&double, "anthropic-messages", ""), Vec::new());
    double.push(
        Reply::text("x".repeat(200))
            .chunked(10)
            .delayed(Duration::from_millis(100)),
    );
    let mut req = request("R1", "hi");
    req.timeout = Some(Duration::from_millis(400));
    let out = outcome(&run(&rig, req).await);
    assert_eq!(out.status, RunStatus::Aborted);
    assert_eq!(out.error.as_deref(), Some("timed out after 0.4 s"));
    assert_eq!(assistant_messages(&rig)[0].stop_reason, StopReason::Aborted);
}

#[tokio::test]
async fn the_budget_refuses_a_call_before_it_happens() {
    for api in APIS {
        let double = Double::start().await.expect("double");
        let rig = rig(
            &one_provider(&double, api, "budget: { dailyUsd: 1 }"),
            Vec::new(),
        );
        rig.store.spent_earlier("p", 1.5);
        let out = outcome(&run(&rig, request("R1", "hi")).await);
        assert_eq!(out.status, RunStatus::Error);
        assert_eq!(
            out.error.as_deref(),
            Some("the daily budget is spent: budget.dailyUsd is $1.00 and $1.50 was spent today; it resets at local midnight (2026-12-07 00:00 (UTC+02:00)). Raise budget.dailyUsd to go on today"),
            "{api}"
        );
        assert!(double.chats().is_empty(), "{api}: no call past the cap");
    }
}

#[tokio::test]
async fn a_tool_round_is_stopped_by_the_cap() {
    for api in APIS {
        let double = Double::start().await.expect("double");
        // m1 costs 1000 USD per million input tokens: 1000 tokens are $1.
        let rig = rig(
            &one_provider(&double, api, "budget: { dailyUsd: 0.5 }"),
            vec![Arc::new(Calc)],
        );
        double.push(Reply::tool_call("calc", json!({"a": 2, "b": 3})).usage(1000, 0));
        double.push(Reply::text("never asked"));
        let events = run(&rig, request("R1", "compute")).await;
        let out = outcome(&events);
        assert_eq!(out.status, RunStatus::Error, "{api}");
        assert!(
            out.error
                .as_deref()
                .is_some_and(|e| e.contains("budget.dailyUsd is $0.50 and $1.00 was spent")),
            "{api}: {out:?}"
        );
        assert_eq!(
            double.chats().len(),
            1,
            "{api}: the second call was refused"
        );
        assert!(events
            .iter()
            .any(|e| matches!(e, RunEvent::ToolResult { text, .. } if text == "6")));
    }
}

#[tokio::test]
async fn a_provider_over_its_own_cap_falls_over_to_the_next() {
    let double = Double::start().await.expect("double");
    let api = "ollama";
    let rig = rig(
        &two_providers(
            &double,
            api,
            "budget: { perProvider: { a: { dailyUsd: 2 } } }",
        ),
        Vec::new(),
    );
    rig.store.spent_earlier("a", 2.0);
    double.push(Reply::text("from b"));
    let events = run(&rig, request("R1", "hi")).await;
    assert_eq!(outcome(&events).provider.as_deref(), Some("b"));
    let skips = skipped(&events);
    assert!(
        skips[0]
            .1
            .contains("budget.perProvider.a.dailyUsd is $2.00"),
        "{skips:?}"
    );
    assert_eq!(double.chats().len(), 1);
}

#[tokio::test]
async fn an_empty_message_never_reaches_a_model() {
    let double = Double::start().await.expect("double");
    let rig = rig(&one_provider(&double, "openai-completions", ""), Vec::new());
    assert!(rig.agent.submit(request("R1", "  \n")).is_err());
    assert!(double.requests().is_empty());
}

#[tokio::test]
async fn ollama_gets_num_ctx_and_tools_only_when_the_model_can_call_them() {
    let double = Double::start().await.expect("double");
    let text = format!(
        "{{ models: {{ providers: {{ ollama: {{ baseUrl: '{}/v1', models: [{{ id: 'tooly', name: 'T', contextWindow: 16384 }}, {{ id: 'plain', name: 'P' }}] }} }} }}, agents: {{ defaults: {{ model: {{ primary: 'ollama/plain', fallbacks: ['ollama/tooly'] }} }} }} }}",
        double.base_url("ollama")
    );
    let rig = rig(&text, vec![Arc::new(Calc)]);
    double.set_capabilities("plain", &["completion"]);
    double.push(Reply::text("one"));
    double.push(Reply::text("two"));
    for id in ["R1", "R2"] {
        assert_eq!(
            outcome(&run(&rig, request(id, "hi")).await).status,
            RunStatus::Ok
        );
    }
    let shows: Vec<_> = double
        .requests()
        .into_iter()
        .filter(|r| r.path == "/api/show")
        .collect();
    assert_eq!(shows.len(), 1, "the probe is cached");
    assert_eq!(shows[0].body["model"], "plain");
    for chat in double.chats() {
        assert!(
            chat.body.get("tools").is_none(),
            "a model without tools is sent none"
        );
        assert!(
            chat.body["options"].get("num_ctx").is_none(),
            "no window, no num_ctx"
        );
    }
    // The model with a window and tools.
    let rig = support::rig(
        &text.replace(
            "primary: 'ollama/plain', fallbacks: ['ollama/tooly']",
            "primary: 'ollama/tooly'",
        ),
        vec![Arc::new(Calc)],
    );
    double.push(Reply::text("three"));
    assert_eq!(
        outcome(&run(&rig, request("R3", "hi")).await).status,
        RunStatus::Ok
    );
    let last = double.chats().pop().expect("chat");
    assert_eq!(last.body["model"], "tooly");
    assert_eq!(last.body["options"]["num_ctx"], 16384);
    assert_eq!(last.body["tools"][0]["function"]["name"], "calc");
}

#[tokio::test]
async fn memory_is_read_only_in_the_owners_main_session() {
    let double = Double::start().await.expect("double");
    let rig = rig(&one_provider(&double, "anthropic-messages", ""), Vec::new());
    let ws = workspace_path(&rig);
    std::fs::write(ws.join("SOUL.md"), "Speak like a pirate.").expect("soul");
    std::fs::write(ws.join("MEMORY.md"), "The owner's locker code is 4711.").expect("memory");
    let mut stranger = request("R1", "hi");
    stranger.sender_is_owner = false;
    let mut other_session = request("R2", "hi");
    other_session.session_key = SessionKey::parse("work", "main").expect("key");
    for r in [stranger, other_session, request("R3", "hi")] {
        assert_eq!(outcome(&run(&rig, r).await).status, RunStatus::Ok);
    }
    let systems: Vec<String> = double
        .chats()
        .iter()
        .map(|c| c.body["system"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(systems
        .iter()
        .all(|s| s.contains("## SOUL.md\n\nSpeak like a pirate.")));
    assert!(!systems[0].contains("4711"), "not for a stranger");
    assert!(!systems[1].contains("4711"), "not outside the main session");
    assert!(systems[2].contains("## MEMORY.md\n\nThe owner's locker code is 4711."));
}

#[tokio::test]
async fn runs_of_one_session_run_one_after_the_other() {
    let double = Double::start().await.expect("double");
    let rig = rig(&one_provider(&double, "openai-completions", ""), Vec::new());
    double.push(
        Reply::text("first answer")
            .chunked(4)
            .delayed(Duration::from_millis(40)),
    );
    double.push(Reply::text("second answer"));
    let Ok(Submitted::Queued(mut one)) = rig.agent.submit(request("R1", "one")) else {
        panic!()
    };
    let Ok(Submitted::Queued(mut two)) = rig.agent.submit(request("R2", "two")) else {
        panic!()
    };
    assert!(matches!(
        rig.agent.submit(request("R1", "one")),
        Ok(Submitted::InFlight)
    ));
    let first = collect(&mut one.events).await;
    let second = collect(&mut two.events).await;
    assert_eq!(outcome(&first).text, "first answer");
    assert_eq!(outcome(&second).text, "second answer");
    // The second's user message was stored after the first run's answer.
    assert!(
        matches!(
            second.first(),
            Some(RunEvent::Started { message_seq: 3, .. })
        ),
        "{second:#?}"
    );
    // The second call saw the first exchange.
    let msgs = double.chats()[1].body["messages"]
        .as_array()
        .expect("messages")
        .len();
    assert_eq!(msgs, 4, "system, one, first answer, two");
    // A finished id is replayed, not run again.
    let replay = run(&rig, request("R1", "one")).await;
    assert!(matches!(replay.as_slice(), [RunEvent::Duplicate(_)]));
}

#[tokio::test]
async fn a_queued_run_aborted_before_its_turn_calls_no_model() {
    let double = Double::start().await.expect("double");
    let rig = rig(&one_provider(&double, "openai-completions", ""), Vec::new());
    double.push(
        Reply::text("busy answering")
            .chunked(4)
            .delayed(Duration::from_millis(40)),
    );
    let Ok(Submitted::Queued(mut one)) = rig.agent.submit(request("R1", "one")) else {
        panic!()
    };
    let Ok(Submitted::Queued(mut two)) = rig.agent.submit(request("R2", "two")) else {
        panic!()
    };
    assert_eq!(
        rig.agent.abort(&SessionKey::main("main"), Some("R2")),
        ["R2"]
    );
    assert_eq!(
        outcome(&collect(&mut one.events).await).status,
        RunStatus::Ok
    );
    assert_eq!(
        outcome(&collect(&mut two.events).await).status,
        RunStatus::Aborted
    );
    assert_eq!(double.chats().len(), 1, "the aborted run asked no model");
}
