//! The child of `exec` sees only the environment it is handed, not the
//! gateway's. In a test binary of its own: setting a variable while other
//! tests' threads read the environment would be a race.
#![cfg(unix)]

use std::collections::BTreeMap;
use std::ffi::OsString;

use omniclaw_agent::tool::{Tool, ToolContext};
use omniclaw_agent::tools::exec::{ExecMode, ExecSettings, ExecTool};
use serde_json::json;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn the_child_sees_only_the_environment_it_is_given() {
    // A secret in the gateway's own environment.
    std::env::set_var("OMNICLAW_TEST_SECRET_TOKEN", "hunter2-do-not-leak");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child_env = BTreeMap::new();
    child_env.insert(
        OsString::from("PATH"),
        OsString::from("/usr/local/bin:/usr/bin:/bin"),
    );
    child_env.insert(OsString::from("GIVEN_TO_CHILD"), OsString::from("yes"));
    let ctx = ToolContext {
        workspace: dir.path().to_path_buf(),
        session_key: "agent:main:main".into(),
        cancel: CancellationToken::new(),
        child_env,
    };
    let exec = ExecTool::new(ExecSettings {
        mode: ExecMode::Full,
        ..ExecSettings::default()
    });
    let out = exec.call(json!({"command": "env"}), &ctx).await;
    assert!(!out.is_error, "{out:?}");
    let mut vars: Vec<&str> = out.text.lines().collect();
    vars.sort();
    assert_eq!(
        vars,
        ["GIVEN_TO_CHILD=yes", "PATH=/usr/local/bin:/usr/bin:/bin"]
    );
    assert!(!out.text.contains("hunter2"));
    assert_eq!(
        std::env::var("OMNICLAW_TEST_SECRET_TOKEN").as_deref(),
        Ok("hunter2-do-not-leak"),
        "the secret was there to leak"
    );
}
