//! The `omniclaw` binary's own surface: version, the command list a user
//! sees in `--help`, and usage errors. Having this test in the CLI package
//! also makes `cargo test --workspace` build the `omniclaw` binary that the
//! black-box tests in the workspace's `tests/` run.

use std::process::Command;

fn omniclaw(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_omniclaw"))
        .args(args)
        .env("HOME", env!("CARGO_TARGET_TMPDIR"))
        .output()
        .expect("run omniclaw");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn version_is_the_package_version() {
    let (code, stdout, _) = omniclaw(&["--version"]);
    assert_eq!(code, 0);
    // The first line is what scripts read; the app's and the running
    // gateways' versions follow it.
    assert_eq!(
        stdout.lines().next(),
        Some(format!("omniclaw {}", env!("CARGO_PKG_VERSION")).as_str())
    );
}

#[test]
fn help_lists_every_command() {
    let (code, stdout, _) = omniclaw(&["--help"]);
    assert_eq!(code, 0);
    for command in [
        "setup", "config", "ports", "doctor", "gateway", "status", "health", "browser", "secrets",
        "logs", "onboard", "pairing",
    ] {
        assert!(
            stdout.lines().any(|l| l.trim_start().starts_with(command)),
            "`omniclaw --help` does not list `{command}`:\n{stdout}"
        );
    }
}

#[test]
fn an_unknown_command_is_a_usage_error_that_names_it() {
    let (code, _, stderr) = omniclaw(&["gatewya"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("gatewya"), "{stderr}");
}
