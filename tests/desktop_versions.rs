//! Versions in the desktop app, and its login item: the tray's versions
//! line and "About OmniClaw" (the app's, the CLI's beside it and each
//! running gateway's from its `hello-ok`), "Update service" for a service
//! whose unit differs from what `gateway install` writes now, and the
//! autostart entry pointing at the path the app was started by. The real
//! app in a private D-Bus session and X display, its tray read and clicked
//! over D-Bus; services run by a stand-in `systemctl`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use omniclaw_tests::desktop::*;
use omniclaw_tests::service::fake_systemctl;

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `dir` first on `PATH`.
fn path_with(dir: &Path) -> OsString {
    let mut dirs = vec![dir.to_path_buf()];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs).expect("PATH")
}

/// Stops main's service gateway the stand-in started, whatever happens.
struct StopService {
    systemctl: PathBuf,
    home: PathBuf,
}

impl Drop for StopService {
    fn drop(&mut self) {
        let _ = std::process::Command::new(&self.systemctl)
            .args(["--user", "stop", "omniclaw-gateway-main.service"])
            .env("HOME", &self.home)
            .status();
    }
}

/// A stand-in `systemctl` first on `PATH` for `home`, stopping main's
/// service gateway when dropped.
struct Services {
    // First: stops the gateway while the stand-in in `tools` is still there.
    _stop: StopService,
    tools: tempfile::TempDir,
    path: OsString,
}

impl Services {
    fn new(home: &omniclaw_tests::Home) -> Services {
        let tools = tempfile::tempdir().expect("tools dir");
        let systemctl = fake_systemctl(tools.path());
        Services {
            path: path_with(tools.path()),
            _stop: StopService {
                systemctl,
                home: home.path().to_path_buf(),
            },
            tools,
        }
    }

    /// `gateway install --binary bin` of main; waits until it listens.
    fn install_main(&self, home: &omniclaw_tests::Home, bin: &Path, port: u16) {
        let path = self.path.to_str().expect("utf-8 PATH");
        home.run_env(
            &[
                "--profile",
                "main",
                "gateway",
                "install",
                "--binary",
                bin.to_str().expect("utf-8"),
            ],
            &[("PATH", path)],
        )
        .expect_code(0);
        wait_until("main's service gateway to listen", || listening(port));
    }

    /// Whether the service manager was asked to restart main's service.
    fn restarted_main(&self) -> bool {
        std::fs::read_to_string(self.tools.path().join("calls.log"))
            .is_ok_and(|c| c.contains("systemctl --user restart omniclaw-gateway-main.service"))
    }
}

#[test]
fn about_and_versions_show_and_a_drifted_service_is_updated() {
    let session = Session::start();
    let notifications = session.notifications();
    let (home, main, _rescue) = two_profiles();
    let services = Services::new(&home);

    // A service installed by an older build, elsewhere: its unit runs
    // another binary than `gateway install` from the app's CLI writes now.
    let old = tempfile::tempdir().expect("old build dir");
    let old_bin = old.path().join("omniclaw");
    std::os::unix::fs::symlink(omniclaw_tests::omniclaw_bin(), &old_bin).expect("old binary");
    services.install_main(&home, &old_bin, main);
    let unit = home
        .path()
        .join(".config/systemd/user/omniclaw-gateway-main.service");
    let text = std::fs::read_to_string(&unit).expect("the unit");
    assert!(text.contains(&old_bin.display().to_string()), "{text}");

    let _app = session.launch_with(&home, &desktop_bin(), &[("PATH", &services.path)]);
    let main_prefix = "main — ";
    let tray = session.wait_for("main's service, its version and its update", |t| {
        t.has(&label("main", "running · service", main))
            && t.has(&format!(
                "Versions: app {VERSION} · omniclaw {VERSION} · main {VERSION}"
            ))
            && t.find(main_prefix, "Update service").is_some()
    });
    // The reason, in the words of `gateway status --deep`.
    let why = tray
        .labels()
        .into_iter()
        .find(|l| l.starts_with("⚠ its service differs: it runs"))
        .unwrap_or_else(|| panic!("no reason line:\n{}", tray.labels().join("\n")));
    assert!(why.contains(&old_bin.display().to_string()), "{why}");
    // About: the app, the CLI beside it with its path, each gateway.
    let cli = desktop_bin().with_file_name("omniclaw");
    for line in [
        format!("OmniClaw app {VERSION}"),
        format!("omniclaw CLI {VERSION} — {}", cli.display()),
        format!("Gateway main {VERSION} (running · service)"),
        "Gateway rescue: stopped".to_string(),
    ] {
        assert!(
            tray.find("About OmniClaw", &line).is_some(),
            "About lacks {line:?}:\n{}",
            tray.labels().join("\n")
        );
    }
    // Nothing to update on a profile without a service.
    assert!(tray.find("rescue — ", "Update service").is_none());

    session.click_item(main_prefix, "Update service");
    wait_until("the unit rewritten for the app's CLI", || {
        std::fs::read_to_string(&unit).is_ok_and(|t| {
            t.contains(&cli.display().to_string()) && !t.contains(&old_bin.display().to_string())
        })
    });
    let shown = notifications.wait_for("the update's result", |n| {
        n["summary"] == "Service of main updated"
    });
    assert!(
        shown["body"]
            .as_str()
            .is_some_and(|b| b.contains("omniclaw-gateway-main")),
        "the CLI's words: {shown}"
    );
    assert!(
        services.restarted_main(),
        "the service restarted onto the new unit"
    );
    let tray = session.wait_for("the update gone", |t| {
        t.find(main_prefix, "Update service").is_none()
            && t.has(&label("main", "running · service", main))
    });
    assert!(!tray.has_prefix("⚠"), "{}", tray.labels().join("\n"));
}

#[test]
fn a_service_running_another_version_than_the_cli_is_restarted() {
    use std::os::unix::fs::PermissionsExt;
    let session = Session::start();
    let notifications = session.notifications();
    let (home, main, _rescue) = two_profiles();
    let services = Services::new(&home);
    // The app and a newer CLI side by side, as a package upgrade leaves
    // them under a service still running the old gateway: the CLI says it
    // is 9.9.9 and otherwise is the real one.
    let links = tempfile::tempdir().expect("links dir");
    let app = links.path().join("omniclaw-desktop");
    std::os::unix::fs::symlink(desktop_bin(), &app).expect("symlink the app");
    let cli = links.path().join("omniclaw");
    std::fs::write(
        &cli,
        format!(
            "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'omniclaw 9.9.9'; exit 0; fi\nexec '{}' \"$@\"\n",
            omniclaw_tests::omniclaw_bin().display()
        ),
    )
    .expect("the newer CLI");
    std::fs::set_permissions(&cli, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    // Its unit fits: installed for that CLI.
    services.install_main(&home, &cli, main);

    let _app = session.launch_with(&home, &app, &[("PATH", &services.path)]);
    let main_prefix = "main — ";
    let tray = session.wait_for("main out of step with the CLI", |t| {
        t.has(&format!(
            "Versions: app {VERSION} · omniclaw 9.9.9 · main {VERSION}"
        )) && t.find(main_prefix, "Update service").is_some()
    });
    let reason = format!("⚠ its service runs OmniClaw {VERSION}, omniclaw is 9.9.9");
    assert!(
        tray.find(main_prefix, &reason).is_some(),
        "{reason:?} missing:\n{}",
        tray.labels().join("\n")
    );
    assert!(
        tray.find(
            "About OmniClaw",
            &format!("omniclaw CLI 9.9.9 — {}", cli.display())
        )
        .is_some(),
        "the CLI beside the path the app was started by:\n{}",
        tray.labels().join("\n")
    );

    session.click_item(main_prefix, "Update service");
    notifications.wait_for("the restart's result", |n| {
        n["summary"] == "Service of main updated"
    });
    assert!(
        services.restarted_main(),
        "restarted through the service manager"
    );
}

#[test]
fn the_login_item_starts_the_app_by_the_path_it_was_started_by() {
    let session = Session::start();
    let (home, _main, _rescue) = two_profiles();
    // The app reached through a symlink, as from ~/.local/bin.
    let links = tempfile::tempdir().expect("links dir");
    let link = links.path().join("omniclaw-desktop");
    std::os::unix::fs::symlink(desktop_bin(), &link).expect("symlink the app");
    let _app = session.launch_from(&home, &link);

    // No CLI beside the link: the one beside the app's build is used.
    let cli = desktop_bin().with_file_name("omniclaw");
    let tray = session.wait_for("About", |t| {
        t.find(
            "About OmniClaw",
            &format!("omniclaw CLI {VERSION} — {}", cli.display()),
        )
        .is_some()
    });
    assert!(
        tray.has(&format!("Versions: app {VERSION} · omniclaw {VERSION}")),
        "{}",
        tray.labels().join("\n")
    );

    session.click_item("", "Start at login");
    let entry = home.path().join(".config/autostart/OmniClaw.desktop");
    wait_until("the autostart entry", || entry.is_file());
    let text = std::fs::read_to_string(&entry).expect("entry");
    let exec = text
        .lines()
        .find_map(|l| l.strip_prefix("Exec="))
        .unwrap_or_else(|| panic!("no Exec= line:\n{text}"));
    assert_eq!(
        exec.trim_end(),
        format!("{} --hidden", link.display()),
        "the symlink, not its resolved build folder"
    );
    session.wait_for("Start at login checked", |t| {
        t.find("", "Start at login")
            .is_some_and(|i| i["toggleState"] == 1)
    });
    session.click_item("", "Start at login");
    wait_until("the autostart entry removed", || !entry.exists());
}

#[test]
fn the_dashboard_about_shows_the_versions_side_by_side() {
    let session = Session::start();
    let (home, main, rescue) = two_profiles();
    let web = session.dashboard(&home, &[main, rescue]);
    web.click("#tab-settings");
    let cli = desktop_bin().with_file_name("omniclaw");
    let about = web.wait_contains(
        "[data-testid=about]",
        &format!("omniclaw CLI {VERSION} — {}", cli.display()),
        PATIENCE,
    );
    for line in [
        format!("OmniClaw app {VERSION}"),
        "Gateway main: stopped".to_string(),
        "Gateway rescue: stopped".to_string(),
    ] {
        assert!(
            about.contains(&line),
            "{line:?} missing from About:\n{about}"
        );
    }
}
