//! The built `omniclaw-desktop` outside a graphical session: it refuses with
//! a clear message, exit code 1, and leaves the home directory untouched.
//! (Its life inside a session is tested end to end in the workspace's
//! `tests/desktop.rs`, which also relies on this test making cargo build the
//! binary.)

use std::path::Path;
use std::process::Command;

/// Every file under `dir`, relative, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path.clone());
            }
            out.push(
                path.strip_prefix(dir)
                    .expect("inside")
                    .display()
                    .to_string(),
            );
        }
    }
    out.sort();
    out
}

#[test]
fn without_a_display_it_refuses_and_changes_nothing() {
    let home = tempfile::tempdir().expect("temp home");
    std::fs::create_dir(home.path().join(".omniclaw-main")).expect("profile dir");
    let before = files(home.path());
    let out = Command::new(env!("CARGO_BIN_EXE_omniclaw-desktop"))
        .env_clear()
        .env("HOME", home.path())
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .arg("--hidden")
        .output()
        .expect("run omniclaw-desktop");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if cfg!(all(unix, not(target_os = "macos"))) {
        assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
        assert!(stderr.contains("no graphical session"), "stderr: {stderr}");
        assert!(
            stderr.contains("omniclaw [--profile NAME] gateway"),
            "stderr: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "stderr: {stderr}");
    }
    assert_eq!(files(home.path()), before, "nothing written to the home");
}
