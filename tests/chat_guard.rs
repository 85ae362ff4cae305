//! What the assistant must refuse or keep to itself, black-box: the API key
//! in no file, log line, payload or child environment; config mistakes
//! refused naming the key; a missing key, a tool path outside the
//! workspace, a private fetch (directly and through a redirect), a command
//! not allowed — each a clear error, nothing written; a session store from
//! a newer version reported and left as it was.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use omniclaw_tests::chat::{
    leaked, send_params, text_of, Conn, Key, ProviderConf, Reply, Rig, TOKEN,
};
use omniclaw_tests::Home;
use serde_json::{json, Value};

/// Tool events of `run_id` seen by a `tool-events` caller: for each call,
/// its arguments, whether it failed, and its result text.
fn tool_results(c: &Conn, run_id: &str) -> Vec<(String, Value, bool, String)> {
    let events: Vec<Value> = c
        .events("agent")
        .into_iter()
        .filter(|p| p["runId"] == run_id && p["stream"] == "tool")
        .map(|p| p["data"].clone())
        .collect();
    let mut starts: BTreeMap<String, (String, Value)> = BTreeMap::new();
    let mut out = Vec::new();
    for d in events {
        let id = d["toolCallId"].as_str().unwrap_or_default().to_string();
        match d["phase"].as_str() {
            Some("start") => {
                starts.insert(
                    id,
                    (
                        d["name"].as_str().unwrap_or_default().into(),
                        d["args"].clone(),
                    ),
                );
            }
            Some("result") => {
                let (name, args) = starts.remove(&id).unwrap_or_default();
                out.push((
                    name,
                    args,
                    d["isError"] == true,
                    d["result"]["content"][0]["text"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                ));
            }
            _ => {}
        }
    }
    out
}

/// Checks every text for 8-character pieces of each key.
fn assert_no_key(texts: &[(&str, String)], keys: &[&str]) {
    for (what, text) in texts {
        for key in keys {
            if let Some(piece) = leaked(text, key, 8) {
                panic!("{piece:?} of a provider key is in {what}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_key_is_in_no_file_log_payload_or_child_environment() {
    // One key in the keychain of the test session, one in a variable.
    let stored = "sk-omni-K7wQ2zR9mX4vB8nT1pL6";
    let from_env = "sk-envv-H3jD5sF0gA9kP2uY7cE4";
    let Rig {
        assistant: a,
        home,
        double,
        ..
    } = Rig::wire(
        "guard",
        &[
            ProviderConf::new("dbl", "openai-completions", "m1").key(Key::Keychain(stored.into())),
            ProviderConf::new("envdbl", "anthropic-messages", "m2")
                .key(Key::Env("GUARD_PROVIDER_KEY".into(), from_env.into())),
        ],
        &["dbl/m1", "envdbl/m2"],
        &[
            ("tools.exec.mode", "\"full\""),
            ("logging.level", "\"trace\""),
        ],
    );
    let store = home.run(&["--profile", "guard", "secrets", "status", "--json"]);
    assert_eq!(
        store.json()["store"]["kind"],
        "keychain",
        "run under scripts/session.sh: this test needs the session's keychain"
    );
    let gw = a.start(&home);
    let caller = a.operator(&["tool-events"]).await;
    let watcher = a.operator(&[]).await;
    watcher.ok("sessions.subscribe", json!({})).await;

    // A tool prints its environment (through the stored key's provider).
    double.push(Reply::tool_call("exec", json!({"command": "env"})));
    double.push(Reply::text("listed"));
    caller
        .ok("chat.send", send_params("main", "show your env", "E1"))
        .await;
    assert_eq!(caller.terminal("E1").await["state"], "final");
    // The first provider refuses its key (and echoes it); the one keyed by
    // the variable takes over and runs the same tool.
    double.push(Reply::unauthorized());
    double.push(Reply::tool_call("exec", json!({"command": "env"})));
    double.push(Reply::text("listed again"));
    caller
        .ok("chat.send", send_params("main", "once more", "E2"))
        .await;
    assert_eq!(caller.terminal("E2").await["state"], "final");
    // The second refuses too: the run fails, telling the fix.
    double.push(Reply::unauthorized());
    caller
        .ok("chat.send", send_params("main", "and again", "E3"))
        .await;
    let end = caller.terminal("E3").await;
    assert_eq!(end["state"], "error", "{end}");
    assert!(
        end["errorMessage"]
            .as_str()
            .unwrap_or_default()
            .contains("secrets set models.providers.envdbl.apiKey"),
        "{end}"
    );

    // Both keys were really used.
    let chats = double.chats();
    let auth: Vec<String> = chats
        .iter()
        .map(|r| {
            r.header("authorization")
                .or(r.header("x-api-key"))
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert!(auth.contains(&format!("Bearer {stored}")), "{auth:?}");
    assert!(auth.contains(&from_env.to_string()), "{auth:?}");
    // The tool ran and printed an environment, without either key.
    let results = tool_results(&caller, "E1")
        .into_iter()
        .chain(tool_results(&caller, "E2"))
        .collect::<Vec<_>>();
    assert_eq!(results.len(), 2, "{results:?}");
    for (name, _, failed, text) in &results {
        assert_eq!(name, "exec");
        assert!(!failed, "{text}");
        assert!(text.contains("PATH="), "not an environment: {text}");
        assert!(!text.contains("GUARD_PROVIDER_KEY"), "{text}");
    }

    // Nowhere: request bodies, frames, the transcript, files, logs, output.
    let h = caller
        .ok("chat.history", json!({"sessionKey": "main"}))
        .await;
    let mut texts: Vec<(&str, String)> = vec![
        (
            "a request body",
            chats.iter().map(|r| r.body.to_string()).collect(),
        ),
        (
            "a frame the caller saw",
            caller.frames().iter().map(Value::to_string).collect(),
        ),
        (
            "a frame the watcher saw",
            watcher.frames().iter().map(Value::to_string).collect(),
        ),
        ("the history", h.to_string()),
    ];
    for args in [
        vec!["--profile", "guard", "health", "--json", "--token", TOKEN],
        vec!["--profile", "guard", "config", "get", "models", "--json"],
        vec!["--profile", "guard", "logs", "-n", "500"],
        vec!["--profile", "guard", "secrets", "status", "--json"],
        vec!["--profile", "guard", "doctor"],
    ] {
        let run = home.run(&args);
        texts.push((
            "a command's output",
            format!("{}{}", run.stdout, run.stderr),
        ));
    }
    drop(caller);
    drop(watcher);
    // What it printed on its terminal (a service's journal) at the most
    // verbose log level.
    texts.push(("the gateway's output", gw.printed()));
    gw.signal("TERM");
    texts.push(("a file under the home", home.all_text()));
    assert!(
        home.all_text().contains("show your env"),
        "the transcript is not under the home"
    );
    assert_no_key(&texts, &[stored, from_env]);
}

#[test]
fn assistant_config_mistakes_are_refused_naming_the_key_and_nothing_is_written() {
    let home = Home::new();
    let port = omniclaw_tests::free_base().to_string();
    home.run(&["--profile", "bad", "setup", "--port", &port])
        .expect_code(0);
    home.config_set(
        "bad",
        "models.providers.dbl",
        "{ baseUrl: 'http://127.0.0.1:9/v1', api: 'openai-completions', models: [{ id: 'm1', name: 'M1' }] }",
    )
    .expect_code(0);
    let before = home.snapshot();
    for (path, value, says) in [
        (
            "agents.defaults.model",
            "\"nope/m1\"",
            "agents.defaults.model: \"nope/m1\" names provider \"nope\", which models.providers does not define",
        ),
        (
            "agents.defaults.model",
            "\"justamodel\"",
            "agents.defaults.model: expected \"provider/model\"",
        ),
        (
            "agents.defaults.model",
            "{ primary: \"dbl/\" }",
            "agents.defaults.model.primary: expected \"provider/model\"",
        ),
        (
            "agents.defaults.model",
            "\"dbl/m9\"",
            "names model \"m9\", which models.providers.dbl.models does not list",
        ),
        (
            "models.providers.dbl.api",
            "\"openai-foo\"",
            "models.providers.dbl.api: invalid value \"openai-foo\"",
        ),
        (
            "models.providers.dbl.baseUrl",
            "\"not a url\"",
            "models.providers.dbl.baseUrl: expected an http:// or https:// URL",
        ),
        (
            "models.providers.dbl.baseUrl",
            "\"http://8.8.8.8/v1\"",
            "models.providers.dbl.baseUrl: \"http://8.8.8.8/v1\" is plain http:// to 8.8.8.8",
        ),
        (
            "models.providers.dbl.apiKey",
            "\"sk-plain-5566778899\"",
            "models.providers.dbl.apiKey would hold a secret in plain text",
        ),
        (
            "models.providers.other",
            "{ api: 'ollama' }",
            "models.providers.other.baseUrl: required",
        ),
        (
            "tools.exec.mode",
            "\"sometimes\"",
            "tools.exec.mode: invalid value \"sometimes\"",
        ),
        (
            "budget.dailyUsd",
            "-1",
            "budget.dailyUsd: expected an amount in US dollars",
        ),
    ] {
        let run = home.run(&["--profile", "bad", "config", "set", "--", path, value]);
        run.expect_code(2).expect_output(says);
        assert!(
            !run.stderr.contains("sk-plain-5566778899"),
            "the refusal repeats the secret: {}",
            run.stderr
        );
        assert_eq!(home.snapshot(), before, "{path} = {value} changed a file");
    }

    // The same mistakes made by hand: validate lists each with its place,
    // and the gateway refuses to start, naming them.
    let cfg = format!(
        "{{ gateway: {{ port: {port}, auth: {{ mode: 'token', token: {{ source: 'keychain' }} }} }},\n  \
         models: {{ providers: {{ dbl: {{ baseUrl: 'http://8.8.8.8/v1', api: 'openai-foo', models: [{{ id: 'm1', name: 'M1' }}] }} }} }},\n  \
         agents: {{ defaults: {{ model: 'nope/m1' }} }},\n}}\n"
    );
    home.write(".omniclaw-bad/omniclaw.json", &cfg);
    let before = home.snapshot();
    home.run(&["--profile", "bad", "config", "validate"])
        .expect_code(1)
        .expect_output("models.providers.dbl.baseUrl:")
        .expect_output("models.providers.dbl.api: invalid value \"openai-foo\"")
        .expect_output("agents.defaults.model: \"nope/m1\" names provider \"nope\"");
    let gw = home.run(&["--profile", "bad", "gateway", "--token", TOKEN]);
    assert_ne!(gw.code, 0, "started with an invalid config: {gw:?}");
    gw.expect_output("models.providers.dbl.api");
    assert_eq!(home.snapshot(), before, "a refused start wrote a file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_key_fails_the_call_naming_the_secret_and_nothing_is_sent() {
    let Rig {
        assistant: a,
        home,
        double,
        ..
    } = Rig::wire(
        "nokey",
        &[ProviderConf::new("dbl", "openai-completions", "m1").key(Key::Missing)],
        &["dbl/m1"],
        &[],
    );
    let _gw = a.start(&home);
    let c = a.operator(&[]).await;
    c.ok("chat.send", send_params("main", "hello", "N1")).await;
    let end = c.terminal("N1").await;
    assert_eq!(end["state"], "error", "{end}");
    let message = end["errorMessage"].as_str().unwrap_or_default();
    assert!(
        message.contains("models.providers.dbl.apiKey is not stored"),
        "{message}"
    );
    assert!(
        message.contains("omniclaw --profile nokey secrets set models.providers.dbl.apiKey"),
        "{message}"
    );
    assert!(
        !message.contains("HTTP 401"),
        "no request was made, yet: {message}"
    );
    assert!(
        double.chats().is_empty(),
        "a request went out without its key"
    );
}

/// A web server on loopback: `/secret` (never to be fetched) and
/// `/redirect` (to `/secret` by its loopback address); the paths it served.
async fn private_server() -> (u16, Arc<Mutex<Vec<String>>>) {
    use axum::response::{IntoResponse, Redirect};
    use axum::routing::get;
    let hits = Arc::new(Mutex::new(Vec::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (h1, h2) = (hits.clone(), hits.clone());
    let app = axum::Router::new()
        .route(
            "/secret",
            get(move || async move {
                h1.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push("/secret".into());
                "INTERNAL-ONLY-7731".into_response()
            }),
        )
        .route(
            "/redirect",
            get(move || async move {
                h2.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push("/redirect".into());
                Redirect::temporary(&format!("http://127.0.0.1:{port}/secret")).into_response()
            }),
        );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (port, hits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_refuse_paths_outside_the_workspace_private_fetches_and_commands_not_allowed() {
    let Rig {
        assistant: a,
        home,
        double,
        ..
    } = Rig::wire(
        "tools",
        &[ProviderConf::new("dbl", "openai-completions", "m1")],
        &["dbl/m1"],
        &[
            ("tools.exec.mode", "\"allowlist\""),
            ("tools.exec.allowlist", "[\"echo\"]"),
            // The redirector is trusted by name; where it sends is not.
            (
                "tools.web.fetch.ssrfPolicy.allowedHostnames",
                "[\"localhost\"]",
            ),
        ],
    );
    let _gw = a.start(&home);
    let c = a.operator(&["tool-events"]).await;
    let identity = c.ok("gateway.identity.get", json!({})).await;
    let workspace = std::path::PathBuf::from(identity["workspace"].as_str().expect("workspace"));
    std::fs::create_dir_all(&workspace).expect("workspace");
    home.write("outside.txt", "TOP-SECRET-OUTSIDE-0042");
    #[cfg(unix)]
    std::os::unix::fs::symlink(home.path().join("outside.txt"), workspace.join("link.txt"))
        .expect("symlink");
    let (port, hits) = private_server().await;

    let outside = home.path().join("outside.txt");
    double.push(
        Reply::tool_call("read", json!({"path": "../../outside.txt"}))
            .and_call("read", json!({"path": outside.to_string_lossy()}))
            .and_call("read", json!({"path": "link.txt"}))
            .and_call("write", json!({"path": "../escaped.txt", "content": "x"}))
            .and_call(
                "web_fetch",
                json!({"url": format!("http://127.0.0.1:{port}/secret")}),
            )
            .and_call(
                "web_fetch",
                json!({"url": format!("http://localhost:{port}/redirect")}),
            )
            .and_call("exec", json!({"command": "touch pwned"}))
            .and_call("exec", json!({"command": "echo allowed-ok"})),
    );
    double.push(Reply::text("done"));
    c.ok("chat.send", send_params("main", "try everything", "G1"))
        .await;
    assert_eq!(c.terminal("G1").await["state"], "final");

    let results = tool_results(&c, "G1");
    assert_eq!(results.len(), 8, "{results:?}");
    let by_args = |args: Value| {
        results
            .iter()
            .find(|r| r.1 == args)
            .unwrap_or_else(|| panic!("no result for {args}: {results:?}"))
            .clone()
    };
    let refused = |args: Value, says: &[&str]| {
        let (name, _, failed, text) = by_args(args.clone());
        assert!(failed, "{name} {args} was not refused: {text}");
        for s in says {
            assert!(text.contains(s), "{name} {args}: {text:?} lacks {s:?}");
        }
    };
    refused(json!({"path": "../../outside.txt"}), &["workspace"]);
    refused(json!({"path": outside.to_string_lossy()}), &["workspace"]);
    refused(json!({"path": "link.txt"}), &["workspace"]);
    refused(
        json!({"path": "../escaped.txt", "content": "x"}),
        &["workspace"],
    );
    refused(
        json!({"url": format!("http://127.0.0.1:{port}/secret")}),
        &["web_fetch refused 127.0.0.1", "loopback"],
    );
    refused(
        json!({"url": format!("http://localhost:{port}/redirect")}),
        &["web_fetch refused 127.0.0.1", "redirect"],
    );
    refused(json!({"command": "touch pwned"}), &["tools.exec.allowlist"]);
    let (_, _, failed, text) = by_args(json!({"command": "echo allowed-ok"}));
    assert!(!failed && text.contains("allowed-ok"), "{text}");

    // Nothing was read, fetched or written.
    assert_eq!(
        *hits.lock().unwrap_or_else(|p| p.into_inner()),
        ["/redirect"],
        "the private page was fetched"
    );
    let sent: String = double.chats().iter().map(|r| r.body.to_string()).collect();
    assert!(
        !sent.contains("TOP-SECRET-OUTSIDE"),
        "a file outside reached the model"
    );
    assert!(
        !sent.contains("INTERNAL-ONLY"),
        "a private page reached the model"
    );
    assert!(!home.path().join(".omniclaw/escaped.txt").exists());
    assert!(!workspace.join("pwned").exists());
    assert!(!workspace
        .parent()
        .map(|p| p.join("escaped.txt").exists())
        .unwrap_or(false));
    let h = c.ok("chat.history", json!({"sessionKey": "main"})).await;
    assert!(text_of(history_of_last(&h)).contains("done"));
}

fn history_of_last(h: &Value) -> &Value {
    h["messages"]
        .as_array()
        .and_then(|m| m.last())
        .unwrap_or(&Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_store_from_a_newer_version_is_reported_and_left_untouched() {
    let Rig {
        assistant: a,
        home,
        double,
        ..
    } = Rig::wire(
        "newer",
        &[ProviderConf::new("dbl", "openai-completions", "m1")],
        &["dbl/m1"],
        &[],
    );
    let db = a.state_dir(&home).join("agent").join("sessions.sqlite");
    std::fs::create_dir_all(db.parent().expect("agent dir")).expect("agent dir");
    {
        let conn = rusqlite::Connection::open(&db).expect("sqlite");
        conn.execute_batch(
            "CREATE TABLE from_the_future (x); INSERT INTO from_the_future VALUES (42); PRAGMA user_version = 999;",
        )
        .expect("write the newer store");
    }
    let bytes = std::fs::read(&db).expect("read");

    let gw = a.start(&home);
    let c = a.operator(&[]).await;
    for method in ["health", "status"] {
        let v = c.ok(method, json!({})).await;
        let problem = v["assistant"]["problem"].as_str().unwrap_or_default();
        assert!(problem.contains("schema version 999"), "{method}: {v}");
        assert!(
            problem.contains("newer than this OmniClaw reads"),
            "{problem}"
        );
        assert!(problem.contains("left untouched"), "{problem}");
    }
    let cli = home.run(&["--profile", "newer", "health", "--json", "--token", TOKEN]);
    assert!(cli.stdout.contains("schema version 999"), "{}", cli.stdout);
    let res = c.call("chat.send", send_params("main", "hi", "V1")).await;
    assert_eq!(res["ok"], false, "{res}");
    assert!(
        res["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("schema version 999"),
        "{res}"
    );
    let res = c.call("chat.history", json!({"sessionKey": "main"})).await;
    assert_eq!(res["ok"], false, "{res}");
    drop(c);
    let printed = gw.printed();
    gw.signal("TERM");
    assert!(printed.contains("schema version 999"), "{printed}");
    assert_eq!(
        std::fs::read(&db).expect("read"),
        bytes,
        "the newer store was changed"
    );
    for leftover in ["sessions.sqlite-wal", "sessions.sqlite-journal"] {
        assert!(
            !db.with_file_name(leftover).exists(),
            "{leftover} was created"
        );
    }
    assert!(double.chats().is_empty());
}
