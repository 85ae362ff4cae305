//! Versions side by side: `omniclaw --version`, `status` and `gateway
//! status` show this CLI's, the app's beside it and each running gateway's
//! (from its `hello-ok`); an app of another version is flagged with the fix.

use std::path::{Path, PathBuf};
use std::process::Command;

use omniclaw_tests::{omniclaw_bin, GatewayProc, Home};

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn desktop_bin() -> PathBuf {
    omniclaw_bin().with_file_name(format!("omniclaw-desktop{}", std::env::consts::EXE_SUFFIX))
}

#[test]
fn the_cli_the_app_and_a_running_gateway_show_their_versions_side_by_side() {
    let home = Home::new();
    home.setup_file_secrets_on_free_port("main");
    let gw = GatewayProc::start(&home, &["--profile", "main", "gateway"]);

    let shown = home.run(&["--version"]);
    shown.expect_code(0);
    let lines: Vec<&str> = shown.stdout.lines().collect();
    assert_eq!(
        lines.first(),
        Some(&format!("omniclaw {VERSION}").as_str()),
        "{}",
        shown.stdout
    );
    let app = format!("  app      {VERSION} ({})", desktop_bin().display());
    assert!(lines.contains(&app.as_str()), "{app}: {}", shown.stdout);
    let gateway = format!("  gateway  {VERSION} (profile main, cli, pid {})", gw.pid());
    assert!(
        lines.contains(&gateway.as_str()),
        "{gateway}: {}",
        shown.stdout
    );

    let json = home.run(&["--version", "--json"]);
    json.expect_code(0);
    let v = json.json();
    assert_eq!(v["omniclaw"], VERSION);
    assert_eq!(v["app"]["version"], VERSION);
    assert_eq!(v["gateways"][0]["profile"], "main");
    assert_eq!(v["gateways"][0]["version"], VERSION);
    assert_eq!(v["gateways"][0]["inStep"], true);

    let status = home.run(&["status"]);
    assert!(
        status
            .stdout
            .contains(&format!("(pid {}) · {VERSION}", gw.pid())),
        "{}",
        status.stdout
    );
    assert!(
        status
            .stdout
            .contains(&format!("Versions: omniclaw {VERSION} · app {VERSION}")),
        "{}",
        status.stdout
    );
    let json = home.run(&["status", "--json"]).json();
    assert_eq!(json["profiles"][0]["running"]["version"], VERSION, "{json}");

    let gateway_status = home.run(&["--profile", "main", "gateway", "status"]);
    gateway_status.expect_code(0);
    assert!(
        gateway_status.stdout.contains(&format!(
            "gateway {VERSION} · omniclaw {VERSION} · app {VERSION}"
        )),
        "{}",
        gateway_status.stdout
    );
}

/// `omniclaw` in a directory of its own, beside `app_script` as its app.
fn cli_beside(dir: &Path, app_script: &str) -> PathBuf {
    let cli = dir.join(format!("omniclaw{}", std::env::consts::EXE_SUFFIX));
    if std::fs::hard_link(omniclaw_bin(), &cli).is_err() {
        std::fs::copy(omniclaw_bin(), &cli).expect("copy omniclaw");
    }
    let app = dir.join("omniclaw-desktop");
    std::fs::write(&app, app_script).expect("write the app stand-in");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&app, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    cli
}

/// `omniclaw --version` of an `omniclaw` in `dir` beside `app_script`:
/// its exit code and what it printed.
fn version_beside(home: &Home, dir: &Path, app_script: &str) -> (Option<i32>, String) {
    let out = Command::new(cli_beside(dir, app_script))
        .arg("--version")
        .env("HOME", home.path())
        .output()
        .expect("run omniclaw --version");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[cfg(unix)]
#[test]
fn an_app_of_another_version_beside_the_cli_is_flagged_with_the_fix() {
    let home = Home::new();
    let dir = tempfile::tempdir().expect("a directory for the install");
    let (code, text) = version_beside(
        &home,
        dir.path(),
        "#!/bin/sh\necho 'omniclaw-desktop 0.0.9'\n",
    );
    assert_eq!(code, Some(1), "{text}");
    assert!(text.starts_with(&format!("omniclaw {VERSION}\n")), "{text}");
    assert!(text.contains("  app      0.0.9 ("), "{text}");
    assert!(
        text.contains(&format!(
            "warning: the desktop app {} is 0.0.9, this omniclaw is {VERSION}: install both from one package",
            dir.path().join("omniclaw-desktop").display()
        )),
        "{text}"
    );

    // An app that does not answer `--version` is shown as unknown, not as
    // out of step.
    let dir = tempfile::tempdir().expect("a directory for the install");
    let (code, text) = version_beside(&home, dir.path(), "#!/bin/sh\nexit 3\n");
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("  app      ? ("), "{text}");
}

#[test]
fn the_app_says_its_version_without_a_display() {
    let out = Command::new(desktop_bin())
        .arg("--version")
        .env_clear()
        .output()
        .expect("run omniclaw-desktop --version");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("omniclaw-desktop {VERSION}\n")
    );
}
