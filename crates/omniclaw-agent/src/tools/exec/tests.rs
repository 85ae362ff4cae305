use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::*;

struct Ws {
    dir: tempfile::TempDir,
}

impl Ws {
    fn new() -> Ws {
        Ws {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn ctx(&self) -> ToolContext {
        let mut child_env = BTreeMap::new();
        child_env.insert(
            OsString::from("PATH"),
            OsString::from("/usr/local/bin:/usr/bin:/bin"),
        );
        child_env.insert(OsString::from("GIVEN_TO_CHILD"), OsString::from("yes"));
        ToolContext {
            workspace: self.dir.path().to_path_buf(),
            session_key: "agent:main:main".into(),
            cancel: CancellationToken::new(),
            child_env,
        }
    }
}

fn tool(mode: ExecMode, allowlist: &[&str]) -> ExecTool {
    ExecTool::new(ExecSettings {
        mode,
        allowlist: allowlist.iter().map(|s| s.to_string()).collect(),
        ..ExecSettings::default()
    })
}

async fn run(t: &ExecTool, ws: &Ws, args: Value) -> ToolOutput {
    t.call(args, &ws.ctx()).await
}

/// Whether `pid` still runs (a zombie waiting for its reaper does not).
#[cfg(target_os = "linux")]
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            stat.rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next())
                != Some("Z")
        }
        Err(_) => false,
    }
}

/// The pid a child wrote into `file`, waiting for it to appear.
#[cfg(target_os = "linux")]
async fn pid_in(file: &Path) -> i32 {
    for _ in 0..200 {
        if let Ok(text) = std::fs::read_to_string(file) {
            if let Ok(pid) = text.trim().parse() {
                return pid;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{} never got a pid", file.display());
}

/// Waits a little for `pid` to be gone; fails naming what should have
/// killed it.
#[cfg(target_os = "linux")]
async fn assert_dies(pid: i32, killer: &str) {
    for _ in 0..100 {
        if !alive(pid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the background child {pid} outlived {killer}");
}

#[test]
fn the_mode_decides_what_runs() {
    let argv = |s: &str| shell_words::split(s).expect("split");
    let settings = |mode, list: &[&str]| ExecSettings {
        mode,
        allowlist: list.iter().map(|s| s.to_string()).collect(),
        ..ExecSettings::default()
    };
    let deny = gate(&ExecSettings::default(), &argv("ls"));
    assert!(
        matches!(&deny, Gate::Refuse(why) if why.contains("tools.exec.mode is deny")),
        "{deny:?}"
    );
    let list = settings(ExecMode::Allowlist, &["ls", "git status --short"]);
    assert_eq!(
        gate(&list, &argv("ls -la /tmp")),
        Gate::Run,
        "a bare name allows any arguments"
    );
    assert_eq!(
        gate(&list, &argv("git  status   --short")),
        Gate::Run,
        "compared word by word"
    );
    let refused = gate(&list, &argv("git push"));
    assert!(
        matches!(&refused, Gate::Refuse(why) if why.contains("not in tools.exec.allowlist (ls, git status --short)")),
        "{refused:?}"
    );
    assert!(
        matches!(gate(&list, &argv("./ls")), Gate::Refuse(_)),
        "a path is not the bare name"
    );
    let ask = settings(ExecMode::Ask, &["ls"]);
    assert_eq!(gate(&ask, &argv("ls")), Gate::Run);
    assert_eq!(gate(&ask, &argv("rm -rf x")), Gate::Ask);
    assert_eq!(
        gate(&settings(ExecMode::Full, &[]), &argv("rm -rf x")),
        Gate::Run
    );
}

#[test]
fn settings_that_cannot_work_are_named() {
    let bad = ExecSettings {
        allowlist: vec!["ls".into(), "echo 'open".into()],
        ..ExecSettings::default()
    };
    let err = bad.check().expect_err("bad");
    assert!(err.contains("tools.exec.allowlist[1]"), "{err}");
    let zero = ExecSettings {
        timeout: Duration::ZERO,
        ..ExecSettings::default()
    };
    assert!(zero.check().expect_err("zero").contains("timeoutSeconds"));
    assert_eq!(ExecMode::parse("ask"), Some(ExecMode::Ask));
    assert_eq!(ExecMode::parse("sometimes"), None);
}

#[cfg(unix)]
#[tokio::test]
async fn a_command_not_allowed_does_not_run() {
    let ws = Ws::new();
    let marker = ws.dir.path().join("ran");
    let t = tool(ExecMode::Allowlist, &["echo"]);
    let out = run(
        &t,
        &ws,
        json!({"command": format!("touch {}", marker.display())}),
    )
    .await;
    assert!(out.is_error);
    assert!(
        out.text
            .contains("\"touch\" is not in tools.exec.allowlist (echo)"),
        "{}",
        out.text
    );
    assert!(!marker.exists());
    let out = run(
        &tool(ExecMode::Deny, &[]),
        &ws,
        json!({"command": "echo hi"}),
    )
    .await;
    assert!(
        out.is_error && out.text.contains("tools.exec.mode is deny"),
        "{out:?}"
    );
    let out = run(&t, &ws, json!({"command": "echo hi there"})).await;
    assert_eq!(out, ToolOutput::ok("hi there\n"));
}

struct Counting {
    answer: Approval,
    asked: AtomicUsize,
}

#[async_trait]
impl Approver for Counting {
    async fn approve(&self, request: &ApprovalRequest) -> Approval {
        assert_eq!(request.argv, ["echo", "approved"]);
        assert_eq!(request.session_key, "agent:main:main");
        self.asked.fetch_add(1, Ordering::SeqCst);
        self.answer.clone()
    }
}

#[cfg(unix)]
#[tokio::test]
async fn ask_mode_runs_only_what_the_approver_allows_and_no_approver_is_a_no() {
    let ws = Ws::new();
    let out = run(
        &tool(ExecMode::Ask, &[]),
        &ws,
        json!({"command": "echo approved"}),
    )
    .await;
    assert!(out.is_error);
    assert!(out.text.contains("nobody can approve here"), "{}", out.text);

    let with = |answer| {
        let approver = Arc::new(Counting {
            answer,
            asked: AtomicUsize::new(0),
        });
        let t = ExecTool::new(ExecSettings {
            mode: ExecMode::Ask,
            allowlist: vec!["true".into()],
            approver: Some(approver.clone()),
            ..ExecSettings::default()
        });
        (t, approver)
    };
    let (t, approver) = with(Approval::Allow);
    assert_eq!(
        run(&t, &ws, json!({"command": "echo approved"})).await,
        ToolOutput::ok("approved\n")
    );
    assert_eq!(approver.asked.load(Ordering::SeqCst), 1);
    // What the allowlist names runs without asking.
    assert!(!run(&t, &ws, json!({"command": "true"})).await.is_error);
    assert_eq!(approver.asked.load(Ordering::SeqCst), 1);

    let (t, _) = with(Approval::Deny(Some("not now".into())));
    let out = run(&t, &ws, json!({"command": "echo approved"})).await;
    assert!(out.is_error);
    assert!(
        out.text.contains("did not approve") && out.text.contains("not now"),
        "{}",
        out.text
    );
}

#[cfg(unix)]
#[tokio::test]
async fn extra_variables_need_full_mode() {
    let ws = Ws::new();
    let out = run(
        &tool(ExecMode::Full, &[]),
        &ws,
        json!({"command": "env", "env": {"EXTRA": "1"}}),
    )
    .await;
    assert!(out.text.contains("EXTRA=1"), "{}", out.text);
    let out = run(
        &tool(ExecMode::Allowlist, &["env"]),
        &ws,
        json!({"command": "env", "env": {"LD_PRELOAD": "/tmp/x.so"}}),
    )
    .await;
    assert!(
        out.is_error && out.text.contains("env needs tools.exec.mode full"),
        "{out:?}"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn no_shell_interprets_the_command() {
    let ws = Ws::new();
    let out = run(
        &tool(ExecMode::Full, &[]),
        &ws,
        json!({"command": "echo $HOME '|' cat > out.txt; rm -rf *"}),
    )
    .await;
    assert_eq!(out.text, "$HOME | cat > out.txt; rm -rf *\n");
    assert!(!ws.dir.path().join("out.txt").exists());
    let out = run(
        &tool(ExecMode::Full, &[]),
        &ws,
        json!({"command": "echo 'open"}),
    )
    .await;
    assert!(
        out.is_error && out.text.contains("close its quotes"),
        "{out:?}"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn it_runs_in_the_workspace_and_reports_failures() {
    let ws = Ws::new();
    std::fs::create_dir(ws.dir.path().join("sub")).expect("dir");
    let full = tool(ExecMode::Full, &[]);
    let out = run(&full, &ws, json!({"command": "pwd", "workdir": "sub"})).await;
    let expected = ws.dir.path().join("sub").canonicalize().expect("canonical");
    assert_eq!(out.text.trim_end(), expected.to_string_lossy());
    let out = run(&full, &ws, json!({"command": "pwd", "workdir": "../"})).await;
    assert!(
        out.is_error && out.text.contains("contains \"..\""),
        "{out:?}"
    );
    let out = run(
        &full,
        &ws,
        json!({"command": "sh -c 'echo oops >&2; exit 3'"}),
    )
    .await;
    assert!(out.is_error);
    assert_eq!(out.text, "oops\n[exit code 3]");
    let out = run(&full, &ws, json!({"command": "no-such-program-here"})).await;
    assert!(
        out.is_error && out.text.contains("was not found on the PATH"),
        "{out:?}"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn output_is_capped_at_max_output_chars() {
    let ws = Ws::new();
    let t = ExecTool::new(ExecSettings {
        mode: ExecMode::Full,
        max_output_chars: 1000,
        ..ExecSettings::default()
    });
    let out = run(&t, &ws, json!({"command": "seq 1 100000"})).await;
    assert!(
        !out.is_error,
        "{}",
        &out.text[out.text.len().saturating_sub(200)..]
    );
    let (shown, note) = out.text.split_once("[output truncated").expect("a note");
    let all: String = (1..=100_000).map(|i| format!("{i}\n")).collect();
    assert_eq!(
        shown.trim_end_matches('\n'),
        all[..1000].trim_end_matches('\n')
    );
    assert!(note.contains("tools.exec.maxOutputChars"), "{note}");
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_timeout_kills_the_command_and_its_children() {
    let ws = Ws::new();
    let pidfile = ws.dir.path().join("bg.pid");
    let t = tool(ExecMode::Full, &[]);
    let started = Instant::now();
    let out = run(
        &t,
        &ws,
        json!({
            "command": format!("sh -c 'sleep 60 & echo $! > {}; echo waiting; wait'", pidfile.display()),
            "timeoutSeconds": 1
        }),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    assert!(out.is_error);
    assert!(out.text.starts_with("waiting\n"), "{}", out.text);
    assert!(
        out.text
            .contains("ran longer than 1 s (tools.exec.timeoutSeconds)"),
        "{}",
        out.text
    );
    let bg = pid_in(&pidfile).await;
    assert_dies(bg, "the timeout").await;
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_cancelled_run_kills_the_command_and_its_children() {
    let ws = Ws::new();
    let pidfile = ws.dir.path().join("bg.pid");
    let ctx = ws.ctx();
    let cancel = ctx.cancel.clone();
    let t = tool(ExecMode::Full, &[]);
    let call = t.call(
        json!({"command": format!("sh -c 'sleep 60 & echo $! > {}; wait'", pidfile.display())}),
        &ctx,
    );
    let bg = {
        let pidfile = pidfile.clone();
        async move {
            let pid = pid_in(&pidfile).await;
            cancel.cancel();
            pid
        }
    };
    let started = Instant::now();
    let (out, bg) = tokio::join!(call, bg);
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(
        out.is_error && out.text.contains("the run was aborted"),
        "{out:?}"
    );
    assert_dies(bg, "the cancel").await;
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn children_left_running_when_the_command_exits_are_killed() {
    let ws = Ws::new();
    let pidfile = ws.dir.path().join("bg.pid");
    let started = Instant::now();
    let out = run(
        &tool(ExecMode::Full, &[]),
        &ws,
        json!({"command": format!("sh -c 'sleep 60 & echo $! > {}; echo started'", pidfile.display())}),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "waited {:?} for the child",
        started.elapsed()
    );
    assert_eq!(out, ToolOutput::ok("started\n"));
    let bg = pid_in(&pidfile).await;
    assert_dies(bg, "the call").await;
}
