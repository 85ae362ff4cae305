//! The package a user installs. `scripts/package.sh --profile dev` builds
//! the .deb and the .rpm; the .deb is installed with `dpkg -i` when `CI` is
//! set (a throwaway machine) and unpacked with `dpkg-deb -x` otherwise
//! (this machine is left alone). The installed `omniclaw` and app are then
//! used as a user would, and the package is removed again.
//!
//! Ignored by a plain `cargo test`: it builds packages and installs one, so
//! scripts/test.sh runs it alone, after every other test
//! (`cargo test --test package -- --ignored`). Run inside
//! `scripts/session.sh` (the app's tray, the keychain).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use omniclaw_tests::desktop::{repo_root, Session};
use omniclaw_tests::Home;

const PACKAGE: &str = "omniclaw";

/// Runs `cmd`, which must succeed; returns what it printed.
fn ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    omniclaw_tests::succeeded(format!("{cmd:?}"), out)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The .deb and the .rpm `scripts/package.sh` built, in that order.
fn build_packages() -> (PathBuf, PathBuf) {
    let out = ok(Command::new(repo_root().join("scripts/package.sh"))
        .args(["--profile", "dev", "--bundles", "deb,rpm"])
        .current_dir(repo_root()));
    let built: Vec<PathBuf> = text(&out.stdout).lines().map(PathBuf::from).collect();
    let find = |ext: &str| {
        built
            .iter()
            .find(|p| p.extension().is_some_and(|e| e == ext))
            .unwrap_or_else(|| panic!("no .{ext} among {built:?}"))
            .clone()
    };
    (find("deb"), find("rpm"))
}

/// What a package holds: its files and its directories, as absolute paths.
struct Contents {
    files: Vec<PathBuf>,
    dirs: Vec<PathBuf>,
}

fn deb_contents(deb: &Path) -> Contents {
    let listing = text(&ok(Command::new("dpkg-deb").arg("--contents").arg(deb)).stdout);
    let mut contents = Contents {
        files: Vec::new(),
        dirs: Vec::new(),
    };
    for line in listing.lines() {
        let mode = line.split_whitespace().next().unwrap_or_default();
        let path = line
            .split_whitespace()
            .nth(5)
            .unwrap_or_else(|| panic!("a dpkg-deb --contents line: {line}"));
        // `./usr/bin/…` or `usr/bin/…`, whichever the archiver wrote.
        let relative = path.trim_start_matches("./").trim_matches('/');
        if relative.is_empty() || relative == "." {
            continue;
        }
        let path = Path::new("/").join(relative);
        if mode.starts_with('d') {
            contents.dirs.push(path);
        } else {
            contents.files.push(path);
        }
    }
    contents
}

/// Every entry of the package's directories under `root`, as they are now.
fn entries_beside(root: &Path, contents: &Contents) -> BTreeSet<PathBuf> {
    let mut seen = BTreeSet::new();
    for dir in &contents.dirs {
        let at = root.join(dir.strip_prefix("/").unwrap_or(dir));
        if let Ok(read) = std::fs::read_dir(&at) {
            seen.extend(read.flatten().map(|e| e.path()));
        }
    }
    seen
}

/// The package installed for real, or unpacked into a directory.
struct Installed {
    /// Where `/` of the package is.
    root: PathBuf,
    by_dpkg: bool,
    _unpacked: Option<tempfile::TempDir>,
}

impl Installed {
    fn new(deb: &Path) -> Installed {
        if std::env::var_os("CI").is_some() {
            let status = Command::new("dpkg")
                .args(["--status", PACKAGE])
                .output()
                .expect("dpkg runs");
            assert!(
                !status.status.success() || text(&status.stdout).contains("Status: deinstall"),
                "a package {PACKAGE} is installed already; remove it (`dpkg -r {PACKAGE}`) before this test"
            );
            ok(Command::new("dpkg").arg("--install").arg(deb));
            Installed {
                root: PathBuf::from("/"),
                by_dpkg: true,
                _unpacked: None,
            }
        } else {
            let dir = tempfile::tempdir().expect("a directory to unpack into");
            ok(Command::new("dpkg-deb").arg("-x").arg(deb).arg(dir.path()));
            Installed {
                root: dir.path().to_path_buf(),
                by_dpkg: false,
                _unpacked: Some(dir),
            }
        }
    }

    fn bin_dir(&self) -> PathBuf {
        self.root.join("usr/bin")
    }

    /// Removes the package as `dpkg -r` does; returns what its removal
    /// script said. Unpacked, its files go and its script is run by hand.
    fn remove(&self, deb: &Path, contents: &Contents) -> String {
        if self.by_dpkg {
            let out = ok(Command::new("dpkg").args(["--remove", PACKAGE]));
            return text(&out.stderr) + &text(&out.stdout);
        }
        for file in &contents.files {
            std::fs::remove_file(self.root.join(file.strip_prefix("/").unwrap_or(file)))
                .unwrap_or_else(|e| panic!("remove {}: {e}", file.display()));
        }
        // Deepest first; a directory something else uses stays, as with dpkg.
        let mut dirs = contents.dirs.clone();
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for dir in dirs {
            let _ = std::fs::remove_dir(self.root.join(dir.strip_prefix("/").unwrap_or(&dir)));
        }
        let control = tempfile::tempdir().expect("a directory for the control files");
        ok(Command::new("dpkg-deb")
            .arg("--control")
            .arg(deb)
            .arg(control.path()));
        let out = ok(Command::new(control.path().join("postrm")).arg("remove"));
        text(&out.stderr) + &text(&out.stdout)
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        // A failed test must not leave the package on the machine.
        if self.by_dpkg && std::thread::panicking() {
            let _ = Command::new("dpkg").args(["--remove", PACKAGE]).output();
        }
    }
}

/// The first word of the unit's `ExecStart=`, unquoted.
fn exec_start_program(unit: &str) -> String {
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap_or_else(|| panic!("no ExecStart= in:\n{unit}"));
    match line.strip_prefix('"') {
        Some(quoted) => quoted.split('"').next().unwrap_or_default().to_string(),
        None => line.split(' ').next().unwrap_or_default().to_string(),
    }
}

#[test]
#[ignore = "builds and installs a package: scripts/test.sh runs it alone"]
fn the_installed_package_runs_the_app_and_its_services_and_leaves_user_data_when_removed() {
    let (deb, rpm) = build_packages();

    // What is in the packages.
    let contents = deb_contents(&deb);
    for file in [
        "/usr/bin/omniclaw",
        "/usr/bin/omniclaw-desktop",
        "/usr/share/applications/omniclaw.desktop",
        "/usr/share/doc/omniclaw/copyright",
    ] {
        assert!(
            contents.files.contains(&PathBuf::from(file)),
            "{file} is not in {}",
            deb.display()
        );
    }
    for size in [
        "16x16", "24x24", "32x32", "48x48", "64x64", "128x128", "256x256", "512x512",
    ] {
        let icon = PathBuf::from(format!(
            "/usr/share/icons/hicolor/{size}/apps/omniclaw-desktop.png"
        ));
        assert!(contents.files.contains(&icon), "no {size} icon");
    }
    let control = text(&ok(Command::new("dpkg-deb").arg("--field").arg(&deb)).stdout);
    for field in [
        "Package: omniclaw",
        "libwebkit2gtk-4.1-0",
        "libayatana-appindicator3-1",
    ] {
        assert!(
            control.contains(field),
            "{field} not in the control file:\n{control}"
        );
    }
    let rpm_files = text(&ok(Command::new("rpm").arg("-qlp").arg(&rpm)).stdout);
    for file in [
        "/usr/bin/omniclaw",
        "/usr/bin/omniclaw-desktop",
        "/usr/share/applications/omniclaw.desktop",
        "/usr/share/licenses/omniclaw/LICENSE",
        "/usr/share/icons/hicolor/256x256/apps/omniclaw-desktop.png",
    ] {
        assert!(
            rpm_files.lines().any(|l| l == file),
            "{file} not in the rpm:\n{rpm_files}"
        );
    }

    let home = Home::new();
    let before = entries_beside(Path::new("/"), &contents);
    let installed = Installed::new(&deb);
    let bin_dir = installed.bin_dir();
    let cli = bin_dir.join("omniclaw");
    let path = format!("{}:/usr/bin:/bin", bin_dir.display());

    // `omniclaw` is on the PATH, in its version.
    let version = ok(Command::new("sh")
        .args(["-c", "command -v omniclaw && omniclaw --version"])
        .env("PATH", &path)
        .env("HOME", home.path()));
    let said = text(&version.stdout);
    let mut lines = said.lines();
    assert_eq!(lines.next(), Some(cli.to_str().expect("utf-8 path")));
    assert_eq!(
        lines.next(),
        Some(format!("omniclaw {}", env!("CARGO_PKG_VERSION")).as_str())
    );

    // The installed app shows its tray.
    let session = Session::start();
    let app = session.launch_from(&home, &bin_dir.join("omniclaw-desktop"));
    drop(app);

    // A service installed from it runs the installed CLI.
    let port = home.setup_on_free_port("main");
    let fakebin = home.path().join("fakebin");
    std::fs::create_dir_all(&fakebin).expect("mkdir fakebin");
    let systemctl = omniclaw_tests::service::fake_systemctl_running(&fakebin, &cli);
    let _service = omniclaw_tests::service::stop_on_drop(&fakebin);
    let service_path = format!("{}:{path}", fakebin.display());
    ok(Command::new(&cli)
        .args(["--profile", "main", "gateway", "install"])
        .env("HOME", home.path())
        .env("PATH", &service_path)
        .env("USER", "tester")
        .env("OMNICLAW_SERVICE_MANAGER", "systemd")
        .current_dir(home.path()));
    let unit_path = home
        .path()
        .join(".config/systemd/user/omniclaw-gateway-main.service");
    let unit = std::fs::read_to_string(&unit_path).expect("the unit `gateway install` wrote");
    assert_eq!(
        exec_start_program(&unit),
        cli.display().to_string(),
        "{unit}"
    );
    assert!(
        unit.contains(&format!("ConditionPathExists={}\n", cli.display())),
        "{unit}"
    );
    assert!(
        !omniclaw_tests::port_is_free(port),
        "the service's gateway listens on {port}"
    );
    ok(Command::new(&systemctl)
        .args(["--user", "stop", "omniclaw-gateway-main.service"])
        .env("HOME", home.path()));

    // Removed: its own files are gone, nothing else, and what the user
    // made is still there, with the way to remove it.
    let said = installed.remove(&deb, &contents);
    for file in &contents.files {
        let at = installed.root.join(file.strip_prefix("/").unwrap_or(file));
        assert!(!at.exists(), "{} is still there", at.display());
    }
    if installed.by_dpkg {
        assert_eq!(
            entries_beside(Path::new("/"), &contents),
            before,
            "removing the package changed more than its own files"
        );
    }
    assert!(unit_path.is_file(), "the user's service was removed");
    assert!(
        home.path().join(".omniclaw-main").is_dir(),
        "the profile was removed"
    );
    for hint in [
        "left in place",
        "omniclaw --profile NAME remove",
        "secret-tool clear service omniclaw",
        "systemctl --user disable --now 'omniclaw-gateway-*.service'",
    ] {
        assert!(
            said.contains(hint),
            "{hint} not in what the removal said:\n{said}"
        );
    }
}
