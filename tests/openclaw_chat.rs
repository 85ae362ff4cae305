//! The real OpenClaw clients chat with an OmniClaw gateway whose assistant
//! is pointed at the provider double: `openclaw agent --message` (JSON and
//! plain output, a failure's exit code) and `openclaw tui` in a
//! pseudo-terminal (a streamed reply, the history after a gateway restart).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use omniclaw_tests::chat::{text_of, Assistant, Reply, Rig, TOKEN};
use serde_json::{json, Value};

/// The OpenClaw launcher, or `None` (and the test is skipped) where it is
/// not installed; CI installs it, so there a missing one fails.
fn openclaw() -> Option<PathBuf> {
    let launcher = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".tools/openclaw/bin/openclaw");
    if launcher.exists() {
        return Some(launcher);
    }
    assert!(
        std::env::var("CI").is_err(),
        "{} is missing: scripts/test.sh installs it (scripts/install-openclaw.sh)",
        launcher.display()
    );
    eprintln!("skipped: the real OpenClaw CLI is not installed (scripts/install-openclaw.sh .tools/openclaw)");
    None
}

/// `openclaw ARGS...` as a remote client of the gateway at `port`, with a
/// home of its own.
fn openclaw_cmd(
    launcher: &PathBuf,
    peer_home: &std::path::Path,
    port: u16,
    args: &[&str],
) -> Command {
    let mut c = Command::new(launcher);
    c.args(args)
        .env("HOME", peer_home)
        .env("OPENCLAW_GATEWAY_URL", format!("ws://127.0.0.1:{port}"))
        .env("OPENCLAW_GATEWAY_TOKEN", TOKEN)
        .current_dir(peer_home);
    c
}

fn history(a: &Assistant) -> Vec<Value> {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let c = a.operator(&[]).await;
        let h = c.ok("chat.history", json!({"sessionKey": "main"})).await;
        h["messages"].as_array().cloned().unwrap_or_default()
    })
}

#[test]
fn openclaw_agent_prints_the_reply_and_exits_0() {
    let Some(launcher) = openclaw() else { return };
    let r = Rig::one("openai-completions", &[]);
    let (a, double) = (&r.assistant, &r.double);
    let peer = tempfile::tempdir().expect("peer home");

    // `openclaw agent --message M [--json]`: exit code, stdout, stderr.
    let agent = |message: &str, json: bool| {
        let mut args = vec!["agent", "--message", message];
        if json {
            args.push("--json");
        }
        let out = openclaw_cmd(&launcher, peer.path(), a.port, &args)
            .output()
            .expect("run openclaw agent");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    double.push(Reply::text("Hello from the provider double.").chunked(64));
    let (code, stdout, stderr) = agent("hi there", true);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(v["status"], "ok", "{v}");
    assert_eq!(
        v["result"]["payloads"][0]["text"],
        "Hello from the provider double."
    );
    assert_eq!(v["result"]["meta"]["agentMeta"]["provider"], "dbl");

    double.push(Reply::text("A plain answer."));
    let (code, stdout, stderr) = agent("and plainly?", false);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert_eq!(stdout.trim(), "A plain answer.");

    // A failed run is a failure for the client too, with our message.
    double.push(Reply::unauthorized());
    let (code, stdout, stderr) = agent("fail please", false);
    assert_ne!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        format!("{stdout}{stderr}").contains("secrets set models.providers.dbl.apiKey"),
        "{stdout}\n{stderr}"
    );

    // The turns are in the gateway's transcript, in order.
    let messages = history(a);
    let texts: Vec<String> = messages.iter().map(text_of).collect();
    assert_eq!(
        texts[..4],
        [
            "hi there",
            "Hello from the provider double.",
            "and plainly?",
            "A plain answer."
        ],
        "{texts:?}"
    );
    assert_eq!(texts.get(4).map(String::as_str), Some("fail please"));
    assert_eq!(double.chats().len(), 3);
}

#[test]
fn openclaw_tui_shows_the_streamed_reply_and_the_history_after_a_restart() {
    use expectrl::{Expect, Session};
    let Some(launcher) = openclaw() else { return };
    let mut r = Rig::one("openai-completions", &[]);
    let peer = tempfile::tempdir().expect("peer home");
    let port = r.assistant.port;
    let tui = || {
        let mut cmd = openclaw_cmd(&launcher, peer.path(), port, &["tui"]);
        cmd.env("TERM", "xterm-256color");
        let mut s = Session::spawn(cmd).expect("spawn openclaw tui in a pty");
        // Node takes seconds to start on a busy machine.
        s.set_expect_timeout(Some(Duration::from_secs(90)));
        s
    };

    let reply = "alpha bravo charlie delta echo foxtrot golf hotel";
    // About three seconds of streaming, in pieces.
    r.double.push(
        Reply::text(reply)
            .chunked(150)
            .delayed(Duration::from_millis(200)),
    );
    let mut s = tui();
    s.expect("gateway connected | idle")
        .expect("the TUI connected");
    s.send("hello tui").expect("type");
    std::thread::sleep(Duration::from_millis(300));
    s.send("\r").expect("enter");
    s.expect("alpha").expect("the reply's first words");
    let first = Instant::now();
    s.expect("hotel").expect("the reply's last word");
    let streamed = first.elapsed();
    assert!(
        streamed >= Duration::from_millis(500),
        "the reply appeared at once ({streamed:?}), not as it streamed"
    );
    s.expect("| idle").expect("the run ended");
    drop(s);
    let messages = history(&r.assistant);
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(text_of(&messages[0]), "hello tui");
    assert_eq!(text_of(&messages[1]), reply);

    // The gateway restarts; a new TUI shows the conversation from its store.
    r.take_gateway().signal("TERM");
    r.start();
    let mut s = tui();
    s.expect("hello tui").expect("the earlier message");
    s.expect(reply).expect("the earlier reply");
    drop(s);
    assert_eq!(r.double.chats().len(), 1);
}
