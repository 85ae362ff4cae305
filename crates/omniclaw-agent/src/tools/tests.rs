use std::collections::BTreeMap;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::*;

fn ctx(dir: &std::path::Path) -> ToolContext {
    ToolContext {
        workspace: dir.to_path_buf(),
        session_key: "agent:main:main".into(),
        cancel: CancellationToken::new(),
        child_env: BTreeMap::new(),
    }
}

#[tokio::test]
async fn the_default_set_is_the_file_tools_and_web_fetch_and_exec_says_why_it_is_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = ToolRegistry::build(ToolSettings::default()).expect("build");
    assert_eq!(
        registry.names(),
        ["read", "write", "edit", "ls", "web_fetch"]
    );
    let specs = registry.specs();
    assert_eq!(specs[0].parameters["required"], json!(["path"]));
    let out = registry
        .call("exec", json!({"command": "ls"}), &ctx(dir.path()))
        .await;
    assert!(
        out.is_error && out.text.contains("tools.exec.mode is deny"),
        "{out:?}"
    );
    let out = registry.call("browser", json!({}), &ctx(dir.path())).await;
    assert!(out.is_error);
    assert!(
        out.text
            .contains("no tool named \"browser\"; the tools are: read, write"),
        "{}",
        out.text
    );
    let out = registry
        .call("read", json!({"file": "x"}), &ctx(dir.path()))
        .await;
    assert!(
        out.text
            .contains("invalid arguments for read: missing field `path`"),
        "{}",
        out.text
    );
    // Arguments sent as a JSON string are read all the same.
    std::fs::write(dir.path().join("a.txt"), "hi").expect("write");
    let out = registry
        .call("read", json!("{\"path\": \"a.txt\"}"), &ctx(dir.path()))
        .await;
    assert_eq!(out, ToolOutput::ok("hi"));
}

#[tokio::test]
async fn allow_and_deny_shape_the_set_and_every_call_passes_the_policy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = ToolRegistry::build(ToolSettings {
        policy: ToolPolicy {
            allow: vec!["read".into(), "ls".into(), "exec".into()],
            deny: vec!["exec".into()],
        },
        exec: ExecSettings {
            mode: ExecMode::Full,
            ..ExecSettings::default()
        },
        ..ToolSettings::default()
    })
    .expect("build");
    assert_eq!(registry.names(), ["read", "ls"]);
    let out = registry
        .call("exec", json!({"command": "true"}), &ctx(dir.path()))
        .await;
    assert!(
        out.is_error && out.text.contains("denied by tools.deny"),
        "{out:?}"
    );
    let out = registry
        .call(
            "write",
            json!({"path": "x", "content": "y"}),
            &ctx(dir.path()),
        )
        .await;
    assert!(
        out.is_error && out.text.contains("not in tools.allow"),
        "{out:?}"
    );
    assert!(!dir.path().join("x").exists());
    let off = ToolRegistry::build(ToolSettings {
        web_fetch: WebFetchSettings {
            enabled: false,
            ..WebFetchSettings::default()
        },
        ..ToolSettings::default()
    })
    .expect("build");
    assert!(off.get("web_fetch").is_none());
    let out = off
        .call(
            "web_fetch",
            json!({"url": "https://example.com"}),
            &ctx(dir.path()),
        )
        .await;
    assert!(
        out.text.contains("tools.web.fetch.enabled is false"),
        "{out:?}"
    );
}

#[test]
fn settings_that_cannot_work_stop_the_build_with_the_key() {
    let err = ToolRegistry::build(ToolSettings {
        exec: ExecSettings {
            mode: ExecMode::Allowlist,
            allowlist: vec!["\"unclosed".into()],
            ..ExecSettings::default()
        },
        ..ToolSettings::default()
    })
    .expect_err("bad allowlist");
    assert!(err.to_string().contains("tools.exec.allowlist[0]"), "{err}");
    let err = ToolRegistry::build(ToolSettings {
        web_fetch: WebFetchSettings {
            max_response_bytes: 0,
            ..WebFetchSettings::default()
        },
        ..ToolSettings::default()
    })
    .expect_err("bad cap");
    assert!(
        err.to_string().contains("tools.web.fetch.maxResponseBytes"),
        "{err}"
    );
}
