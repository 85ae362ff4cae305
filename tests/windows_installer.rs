//! The Windows installer: the `omniclaw` CLI goes in beside the app and its
//! folder onto the user's PATH, and comes off again on removal, every other
//! PATH entry kept as it was. The hooks that do it
//! (`packaging/windows/hooks.nsh`, wired in `tauri.windows.conf.json`) are
//! built into a small installer with Debian's `makensis` and run under
//! Wine, installer and uninstaller both, against the registry Wine keeps.
//!
//! Ignored by a plain `cargo test`: it needs `makensis` and Wine, which
//! scripts/install-deps.sh installs; scripts/wine-test.sh runs it
//! (`cargo test --test windows_installer -- --ignored`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use omniclaw_tests::desktop::repo_root;
use omniclaw_tests::succeeded;
use serde_json::Value;

/// A Wine prefix: its registry and its `C:`.
struct Wine {
    prefix: PathBuf,
}

impl Wine {
    /// The prefix scripts/wine-test.sh uses (`WINEPREFIX`), made when
    /// missing.
    fn new() -> Wine {
        let prefix = std::env::var_os("WINEPREFIX")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join("target/wine-prefix"));
        let wine = Wine { prefix };
        if !wine.prefix.join("drive_c/windows/system32").is_dir() {
            std::fs::create_dir_all(&wine.prefix).expect("make the Wine prefix folder");
            let _ = wine.command("wineboot").arg("--init").output();
            let _ = wine.command("wineserver").arg("--wait").output();
        }
        wine
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("WINEPREFIX", &self.prefix).env("WINEDEBUG", "-all");
        cmd
    }

    /// `wine ARGS`, which must succeed.
    fn run(&self, args: &[&str]) -> Output {
        succeeded(format!("wine {args:?}"), self.wine(args))
    }

    /// `wine ARGS` and what it printed. Its output goes through files, not
    /// pipes: the helpers Wine starts beside a program (its services, its
    /// server) keep inherited pipes open for seconds after the program
    /// ends, and reading a pipe to its end would wait for them.
    fn wine(&self, args: &[&str]) -> Output {
        let dir = tempfile::tempdir().expect("temp dir");
        let (out, err) = (dir.path().join("out"), dir.path().join("err"));
        let file = |p: &Path| std::fs::File::create(p).expect("create an output file");
        let status = self
            .command("wine")
            .args(args)
            .stdin(Stdio::null())
            .stdout(file(&out))
            .stderr(file(&err))
            .status()
            .unwrap_or_else(|e| {
                panic!("run wine {args:?}: {e} (scripts/install-deps.sh installs Wine)")
            });
        Output {
            status,
            stdout: std::fs::read(&out).unwrap_or_default(),
            stderr: std::fs::read(&err).unwrap_or_default(),
        }
    }

    /// `%LOCALAPPDATA%` of the prefix's user, as Windows writes it.
    fn local_appdata(&self) -> String {
        let out = self.run(&["cmd", "/c", "echo", "%LOCALAPPDATA%"]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The user's PATH in the registry, as (type, value); `None` when it
    /// has none.
    fn user_path(&self) -> Option<(String, String)> {
        let out = self.wine(&["reg", "query", r"HKCU\Environment", "/v", "Path"]);
        if !out.status.success() {
            return None;
        }
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with("Path "))
            .unwrap_or_else(|| panic!("no Path line in:\n{text}"));
        // `    Path    REG_EXPAND_SZ    value`
        let rest = line.trim_start().strip_prefix("Path").expect("Path");
        let (kind, value) = rest
            .trim_start()
            .split_once("    ")
            .unwrap_or((rest.trim(), ""));
        Some((
            kind.to_string(),
            value.trim_end_matches(['\r', '\n']).to_string(),
        ))
    }

    /// Sets the user's PATH (as `REG_EXPAND_SZ`), or deletes it.
    fn set_user_path(&self, value: Option<&str>) {
        let key = r"HKCU\Environment";
        match value {
            Some(v) => {
                let add = [
                    "reg",
                    "add",
                    key,
                    "/v",
                    "Path",
                    "/t",
                    "REG_EXPAND_SZ",
                    "/d",
                    v,
                    "/f",
                ];
                self.run(&add);
            }
            None => {
                // Absent already is as good.
                let _ = self.wine(&["reg", "delete", key, "/v", "Path", "/f"]);
            }
        }
    }

    /// The Unix path of a `C:\…` path of the prefix.
    fn unix(&self, windows: &str) -> PathBuf {
        let rest = windows
            .strip_prefix("C:\\")
            .or_else(|| windows.strip_prefix("c:\\"))
            .unwrap_or_else(|| panic!("not on C: {windows}"));
        rest.split('\\')
            .fold(self.prefix.join("drive_c"), |p, part| p.join(part))
    }
}

/// The hooks `tauri.windows.conf.json` gives the installer. They take the
/// CLI from where scripts/package.sh stages it.
fn configured_hooks() -> PathBuf {
    let dir = repo_root().join("src-tauri");
    let text = std::fs::read_to_string(dir.join("tauri.windows.conf.json")).expect("read conf");
    let conf: Value = serde_json::from_str(&text).expect("the Windows conf is JSON");
    let hooks = conf["bundle"]["windows"]["nsis"]["installerHooks"]
        .as_str()
        .expect("installerHooks");
    let hooks = dir
        .join(hooks)
        .canonicalize()
        .unwrap_or_else(|e| panic!("{hooks}: {e}"));
    let text = std::fs::read_to_string(&hooks).expect("read the hooks");
    // Two folders up from the hooks is the repository.
    let root = repo_root().canonicalize().expect("repo root");
    let up = hooks.parent().and_then(Path::parent).and_then(Path::parent);
    assert!(
        up == Some(root.as_path()) && text.contains(r"\..\..\target\package\release\omniclaw.exe"),
        "the hooks take the CLI from target/package/release, where scripts/package.sh stages it"
    );
    hooks
}

/// Builds the test installer around `hooks`.
fn build_installer(hooks: &Path, out_dir: &Path) -> PathBuf {
    let cli = out_dir.join("omniclaw.exe");
    std::fs::write(&cli, b"stands in for the CLI").expect("write the CLI stand-in");
    let setup = out_dir.join("omniclaw-setup.exe");
    let out = Command::new("makensis")
        .arg("-V2")
        .arg(format!("-DOUT={}", setup.display()))
        .arg(format!("-DHOOKS={}", hooks.display()))
        .arg(format!("-DOMNICLAW_CLI={}", cli.display()))
        .arg(repo_root().join("testkit/nsis/installer.nsi"))
        .output()
        .unwrap_or_else(|e| panic!("run makensis: {e} (scripts/install-deps.sh installs nsis)"));
    succeeded("makensis", out);
    setup
}

#[test]
#[ignore = "needs makensis and Wine: scripts/wine-test.sh runs it"]
fn the_installer_puts_the_cli_on_the_path_and_takes_it_off_again() {
    let hooks = configured_hooks();
    let work = tempfile::tempdir().expect("temp dir");
    let setup = build_installer(&hooks, work.path());
    let wine = Wine::new();
    let setup = setup.to_string_lossy().into_owned();
    let dir = format!(r"{}\OmniClaw", wine.local_appdata());
    let uninstaller = format!(r"{dir}\uninstall.exe");
    let install = || {
        wine.run(&[&setup, "/S"]);
    };
    // `_?=` runs the uninstaller in place, so `wine` waits for it.
    let uninstall = |extra: &[&str]| {
        let mut args = vec![uninstaller.as_str(), "/S"];
        args.extend_from_slice(extra);
        let here = format!("_?={dir}");
        args.push(&here);
        wine.run(&args);
    };
    let expanded = |v: &str| Some(("REG_EXPAND_SZ".to_string(), v.to_string()));

    // Installed: the CLI beside the app, its folder last on the PATH, the
    // other entries (one with a variable to expand) as they were.
    let before = r"C:\keep\one;%USERPROFILE%\keep two";
    wine.set_user_path(Some(before));
    install();
    assert!(
        wine.unix(&format!(r"{dir}\omniclaw.exe")).is_file(),
        "the CLI is in {dir}"
    );
    let added = format!("{before};{dir}");
    assert_eq!(wine.user_path(), expanded(&added));
    // Installed again (a repair, an upgrade): on the PATH once.
    install();
    assert_eq!(wine.user_path(), expanded(&added));
    // An update's uninstall (/UPDATE) leaves it for the version to come.
    uninstall(&["/UPDATE"]);
    assert_eq!(wine.user_path(), expanded(&added));
    install();
    // Removed: the PATH is what it was, and the CLI is gone.
    uninstall(&[]);
    assert_eq!(wine.user_path(), expanded(before));
    assert!(!wine.unix(&format!(r"{dir}\omniclaw.exe")).exists());

    // The folder written another way (a trailing backslash, another case)
    // is taken off too; an empty entry and a trailing `;` stay.
    install();
    let upper = dir.to_uppercase();
    let odd = format!(r"{upper}\;C:\keep\one;;{dir};%USERPROFILE%\keep two;");
    wine.set_user_path(Some(&odd));
    uninstall(&[]);
    assert_eq!(
        wine.user_path(),
        expanded(r"C:\keep\one;;%USERPROFILE%\keep two;")
    );

    // No PATH of the user's own: one is made, and removed with the app.
    wine.set_user_path(None);
    install();
    assert_eq!(wine.user_path(), expanded(&dir));
    uninstall(&[]);
    assert_eq!(wine.user_path(), None);

    // A PATH longer than NSIS holds in a string would be cut if written
    // back: it is left alone, byte for byte.
    let long: String = (0..120)
        .map(|i| format!(r"C:\t{i:03}\x"))
        .collect::<Vec<_>>()
        .join(";");
    assert!(long.len() > 1024, "{}", long.len());
    wine.set_user_path(Some(&long));
    install();
    assert_eq!(wine.user_path(), expanded(&long));
    uninstall(&[]);
    assert_eq!(wine.user_path(), expanded(&long));

    // Nor is a PATH that is not text.
    wine.run(&[
        "reg",
        "add",
        r"HKCU\Environment",
        "/v",
        "Path",
        "/t",
        "REG_DWORD",
        "/d",
        "7",
        "/f",
    ]);
    install();
    assert_eq!(
        wine.user_path(),
        Some(("REG_DWORD".to_string(), "0x7".to_string()))
    );
    uninstall(&[]);
    wine.set_user_path(Some(before));
}

/// What the uninstaller says is left names what the code really creates.
#[test]
fn the_uninstaller_names_what_is_left_as_the_code_names_it() {
    use omniclaw_core::profile::{Profile, ServiceNames};
    let text = std::fs::read_to_string(configured_hooks()).expect("read hooks");
    // The hooks write a profile's name as NAME.
    let named = |profile: &str| {
        let parsed = Profile::parse(profile).expect("profile");
        let task = ServiceNames::for_profile(&parsed).windows_task;
        task.replace(&profile.to_lowercase(), profile)
    };
    assert_eq!(named("default"), "OmniClaw Gateway");
    for task in [named("default"), named("NAME")] {
        assert!(text.contains(&task), "the hooks name the task {task:?}");
    }
    assert!(text.contains(&format!(r#"schtasks /Delete /TN "{}" /F"#, named("NAME"))));
    assert!(text.contains(&format!(
        "ending in .{}",
        omniclaw_os::secrets::KEYRING_SERVICE
    )));
    assert!(text.contains("omniclaw --profile NAME remove"));
}
