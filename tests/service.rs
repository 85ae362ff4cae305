//! Gateways as services, black-box: the manual's `gateway install` commands
//! verbatim against a fake `systemctl` on PATH (so no test reaches the real
//! user's service manager), `--dry-run` of every manual command on every
//! platform, refusals that change nothing, `status --deep`, `stop` of a
//! terminal-run gateway, `systemd-analyze verify` on generated units, and,
//! where a user systemd manager runs, a real unit installed, started,
//! probed and removed.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use omniclaw_tests::{free_base, port_is_free, Home, Run};

const FAKE_SYSTEMCTL: &str = r#"#!/bin/sh
dir=$(dirname "$0")
echo "systemctl $*" >> "$dir/calls.log"
case "$*" in
  "--user show --property=Version") echo "Version=252" ;;
  "--user show "*) if [ ! -f "$HOME/.config/systemd/user/$3" ]; then
      printf 'LoadState=not-found\nActiveState=inactive\nSubState=dead\nMainPID=0\nResult=success\n'
    elif [ -f "$dir/active" ]; then
      printf 'LoadState=loaded\nActiveState=active\nSubState=running\nMainPID=4242\nResult=success\n'
    else
      printf 'LoadState=loaded\nActiveState=inactive\nSubState=dead\nMainPID=0\nResult=success\n'
    fi ;;
  "--user enable --now "*|"--user start "*|"--user restart "*) touch "$dir/active" ;;
  "--user disable --now "*|"--user stop "*) rm -f "$dir/active" ;;
esac
exit 0
"#;

const FAKE_LOGINCTL: &str = r#"#!/bin/sh
echo "loginctl $*" >> "$(dirname "$0")/calls.log"
echo no
"#;

/// A home with a fake `systemctl` and `loginctl` that log their arguments.
struct Fixture {
    home: Home,
    bin: PathBuf,
    /// Held by a test's first fixture; a second one in the same test
    /// (`another`) runs under it.
    _ports: Option<std::sync::MutexGuard<'static, ()>>,
}

impl Fixture {
    /// Stores `token` as PROFILE's gateway token in its secret store.
    fn set_token(&self, profile: &str, token: &str) -> Run {
        self.home.run_stdin(
            &["--profile", profile, "secrets", "set", "gateway.auth.token"],
            token,
            &[],
        )
    }

    /// `omniclaw --profile PROFILE --json gateway status --deep`, parsed.
    fn deep_status_json(&self, profile: &str) -> serde_json::Value {
        self.run(&[
            "--profile",
            profile,
            "--json",
            "gateway",
            "status",
            "--deep",
        ])
        .json()
    }

    /// A rescue profile on a free base port that serves the gateway alone
    /// (no browser, no canvas) with a plain token; returns the port.
    fn gateway_only_rescue(&self) -> u16 {
        let port = free_base();
        self.config(
            ".omniclaw-rescue",
            &format!("{{gateway: {{port: {port}, auth: {{token: 't'}}}}, browser: {{enabled: false}}, canvasHost: {{enabled: false}}}}\n"),
        );
        port
    }

    fn new() -> Fixture {
        Fixture::with(Some(omniclaw_tests::well_known_ports()))
    }

    /// A second fixture for a test that holds one already.
    fn another(&self) -> Fixture {
        Fixture::with(None)
    }

    fn with(_ports: Option<std::sync::MutexGuard<'static, ()>>) -> Fixture {
        let home = Home::new();
        let bin = home.path().join("fakebin");
        std::fs::create_dir_all(&bin).expect("mkdir");
        for (name, script) in [("systemctl", FAKE_SYSTEMCTL), ("loginctl", FAKE_LOGINCTL)] {
            let p = bin.join(name);
            std::fs::write(&p, script).expect("write fake");
            make_executable(&p);
        }
        Fixture { home, bin, _ports }
    }

    fn path_var(&self) -> String {
        format!("{}:/usr/bin:/bin", self.bin.display())
    }

    /// Runs omniclaw with the fake manager first on PATH.
    fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    fn run_env(&self, args: &[&str], extra: &[(&str, &str)]) -> Run {
        let path = self.path_var();
        let mut env: Vec<(&str, &str)> = vec![
            ("PATH", &path),
            ("USER", "tester"),
            ("OMNICLAW_SERVICE_MANAGER", "systemd"),
        ];
        env.extend_from_slice(extra);
        self.home.run_env(args, &env)
    }

    /// The commands the fake manager received since the last call, then forgets them.
    fn calls(&self) -> Vec<String> {
        let log = self.bin.join("calls.log");
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        text.lines().map(str::to_string).collect()
    }

    /// Every file of the home except the fake manager's own log and state.
    fn files(&self) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
        self.home
            .snapshot()
            .into_iter()
            .filter(|(p, _)| !p.starts_with(&self.bin))
            .collect()
    }

    /// Runs a command line as the manual writes it, with the fake manager
    /// first on PATH (then `omniclaw`'s directory).
    fn shell(&self, line: &str) -> Run {
        let bin = omniclaw_tests::omniclaw_bin();
        self.shell_on(line, bin.parent().expect("bin dir"))
    }

    /// Runs a command line with the fake manager, then `dir`, on PATH.
    fn shell_on(&self, line: &str, dir: &Path) -> Run {
        let out = self
            .home
            .shell_cmd(line)
            .env(
                "PATH",
                format!("{}:{}:/usr/bin:/bin", self.bin.display(), dir.display()),
            )
            .env("USER", "tester")
            .env("OMNICLAW_SERVICE_MANAGER", "systemd")
            .output()
            .expect("run sh");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Replaces a fake manager program with `script`.
    fn fake(&self, name: &str, script: &str) {
        let p = self.bin.join(name);
        std::fs::write(&p, script).expect("write fake");
        make_executable(&p);
    }

    fn config(&self, profile_dir: &str, body: &str) {
        self.home
            .write(&format!("{profile_dir}/omniclaw.json"), body);
    }

    fn unit(&self, name: &str) -> PathBuf {
        self.home.path().join(".config/systemd/user").join(name)
    }
}

#[cfg(unix)]
fn make_executable(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[cfg(not(unix))]
fn make_executable(_p: &Path) {}

fn main_and_rescue(f: &Fixture) {
    f.config(
        ".omniclaw-main",
        "{gateway: {port: 18789, auth: {token: 'main-secret'}}}\n",
    );
    f.config(
        ".omniclaw-rescue",
        "{gateway: {port: 19789, auth: {token: 'rescue-secret'}}}\n",
    );
}

#[test]
fn manual_install_commands_verbatim() {
    let f = Fixture::new();
    main_and_rescue(&f);
    let bin = omniclaw_tests::omniclaw_bin();

    f.run(&["--profile", "main", "gateway", "install"])
        .expect_code(0)
        .expect_output("Installed systemd user unit omniclaw-gateway-main.service for profile main")
        .expect_output("running (pid 4242)")
        .expect_output("loginctl enable-linger tester");
    assert_eq!(
        f.calls(),
        [
            "systemctl --user show --property=Version",
            "loginctl show-user tester --property=Linger --value",
            "systemctl --user daemon-reload",
            "systemctl --user enable --now omniclaw-gateway-main.service",
            "systemctl --user show omniclaw-gateway-main.service --property=LoadState,ActiveState,SubState,MainPID,Result",
        ]
    );
    let unit = std::fs::read_to_string(f.unit("omniclaw-gateway-main.service")).expect("unit");
    assert!(unit.contains(&format!("ExecStart={} gateway --port 18789", bin.display())));
    assert!(unit.contains("Environment=\"OMNICLAW_PROFILE=main\""));
    assert!(unit.contains("Environment=\"OMNICLAW_SERVICE=1\""));
    assert!(
        !unit.contains("main-secret"),
        "no secret in a unit:\n{unit}"
    );

    f.run(&["--profile", "rescue", "gateway", "install"])
        .expect_code(0);
    let unit = std::fs::read_to_string(f.unit("omniclaw-gateway-rescue.service")).expect("unit");
    assert!(unit.contains("Environment=\"OMNICLAW_GATEWAY_PORT=19789\""));
    assert!(!unit.contains("rescue-secret"));
    f.calls();

    // `install --port 19789` with the port it already has: nothing changes.
    let before = f.files();
    f.run(&[
        "--profile",
        "rescue",
        "gateway",
        "install",
        "--port",
        "19789",
    ])
    .expect_code(0)
    .expect_output("Already installed:");
    assert_eq!(before, f.files());

    // A new port changes the unit: refused without --force, done with it.
    f.calls();
    let before = f.files();
    f.run(&[
        "--profile",
        "rescue",
        "gateway",
        "install",
        "--port",
        "19989",
    ])
    .expect_code(2)
    .expect_output("pass --force");
    assert_eq!(before, f.files(), "a refused install changes nothing");
    assert_eq!(f.calls(), Vec::<String>::new(), "and runs nothing");
    f.run(&[
        "--profile",
        "rescue",
        "gateway",
        "install",
        "--port",
        "19989",
        "--force",
    ])
    .expect_code(0)
    .expect_output("Replaced systemd user unit");
    assert!(f
        .home
        .read(".omniclaw-rescue/omniclaw.json")
        .contains("19989"));
    assert!(
        std::fs::read_to_string(f.unit("omniclaw-gateway-rescue.service"))
            .expect("unit")
            .contains("--port 19989")
    );
    assert!(f
        .calls()
        .contains(&"systemctl --user restart omniclaw-gateway-rescue.service".to_string()));

    // Status shows the service through the manager.
    let st = f
        .run(&["--profile", "rescue", "--json", "gateway", "status"])
        .json();
    assert_eq!(st["service"]["installed"], true);
    assert_eq!(st["service"]["active"], true);
    assert_eq!(st["service"]["mainPid"], 4242);
    assert_eq!(st["service"]["port"], 19989);

    // start / stop / restart go through the service.
    f.calls();
    f.run(&["--profile", "rescue", "gateway", "stop"])
        .expect_code(0);
    f.run(&["--profile", "rescue", "gateway", "start"])
        .expect_code(0);
    f.run(&["--profile", "rescue", "gateway", "restart"])
        .expect_code(0);
    let calls = f.calls();
    for wanted in [
        "systemctl --user stop omniclaw-gateway-rescue.service",
        "systemctl --user start omniclaw-gateway-rescue.service",
        "systemctl --user restart omniclaw-gateway-rescue.service",
    ] {
        assert!(
            calls.contains(&wanted.to_string()),
            "{wanted} missing in {calls:?}"
        );
    }

    // Uninstall.
    f.run(&["--profile", "rescue", "gateway", "uninstall"])
        .expect_code(0)
        .expect_output("Removed systemd user unit omniclaw-gateway-rescue.service");
    assert!(!f.unit("omniclaw-gateway-rescue.service").exists());
    assert_eq!(
        f.calls(),
        [
            "systemctl --user disable --now omniclaw-gateway-rescue.service",
            "systemctl --user daemon-reload",
            "systemctl --user reset-failed omniclaw-gateway-rescue.service",
        ]
    );
    f.run(&["--profile", "rescue", "gateway", "uninstall"])
        .expect_code(0)
        .expect_output("nothing to remove");
}

#[test]
fn dry_run_of_every_manual_command_on_every_platform() {
    let f = Fixture::new();
    main_and_rescue(&f);
    f.config(
        ".omniclaw",
        "{gateway: {port: 20789, auth: {token: 'd'}}}\n",
    );
    // A token the keychain holds (the session's Secret Service).
    f.config(
        ".omniclaw-kc",
        "{gateway: {port: 21789, auth: {token: {source: 'keychain'}}}}\n",
    );
    let kc_token = "kc-token-5f0e9d2a7c41b38e";
    f.home
        .run_stdin(
            &["--profile", "kc", "secrets", "set", "gateway.auth.token"],
            kc_token,
            &[],
        )
        .expect_code(0);
    let before = f.files();
    let commands: [&[&str]; 5] = [
        &["--profile", "kc", "gateway", "install", "--dry-run"],
        &["gateway", "install", "--dry-run"],
        &["--profile", "main", "gateway", "install", "--dry-run"],
        &["--profile", "rescue", "gateway", "install", "--dry-run"],
        &[
            "--profile",
            "rescue",
            "gateway",
            "install",
            "--port",
            "19989",
            "--dry-run",
        ],
    ];
    for platform in ["systemd", "launchd", "schtasks"] {
        for args in commands {
            let mut with_json = vec!["--json"];
            with_json.extend_from_slice(args);
            let r = f.run_env(&with_json, &[("OMNICLAW_SERVICE_MANAGER", platform)]);
            r.expect_code(0);
            let v = r.json();
            assert_eq!(v["dryRun"], true);
            assert_eq!(v["platform"], platform);
            let files = v["files"].as_array().expect("files");
            assert!(!files.is_empty());
            let all: String = files
                .iter()
                .filter_map(|f| f["contents"].as_str())
                .collect();
            assert!(all.contains("OMNICLAW_SERVICE"), "{platform} {args:?}");
            for secret in ["main-secret", "rescue-secret", kc_token] {
                assert!(
                    !all.contains(secret),
                    "{secret} in {platform} {args:?}:\n{all}"
                );
            }
            assert!(!v["commands"].as_array().expect("commands").is_empty());
            let port_change = args.contains(&"19989");
            assert_eq!(v["configChange"].is_object(), port_change, "{args:?}");
            if port_change {
                assert!(all.contains("19989"));
            }
        }
        // Text form: the file and the commands.
        f.run_env(
            &["--profile", "rescue", "gateway", "install", "--dry-run"],
            &[("OMNICLAW_SERVICE_MANAGER", platform)],
        )
        .expect_code(0)
        .expect_output("Would write")
        .expect_output("Would run:");
        f.run_env(
            &["--profile", "rescue", "gateway", "uninstall", "--dry-run"],
            &[("OMNICLAW_SERVICE_MANAGER", platform)],
        )
        .expect_code(0)
        .expect_output("Would run:");
    }
    let launchd = f
        .run_env(
            &[
                "--json",
                "--profile",
                "rescue",
                "gateway",
                "install",
                "--dry-run",
            ],
            &[("OMNICLAW_SERVICE_MANAGER", "launchd")],
        )
        .json();
    assert_eq!(
        launchd["files"][0]["path"],
        f.home
            .path()
            .join("Library/LaunchAgents/ai.omniclaw.rescue.plist")
            .display()
            .to_string()
    );
    assert_eq!(
        launchd["commands"]
            .as_array()
            .and_then(|c| c.last())
            .and_then(|c| c[1].as_str()),
        Some("bootstrap")
    );
    assert_eq!(f.calls(), Vec::<String>::new(), "a dry run runs nothing");
    assert_eq!(before, f.files(), "a dry run writes nothing");
}

#[test]
fn refusals_say_why_and_change_nothing() {
    let f = Fixture::new();
    main_and_rescue(&f);
    let check =
        |setup: &dyn Fn(), args: &[&str], env: &[(&str, &str)], code: i32, fragment: &str| {
            setup();
            f.calls();
            let before = f.files();
            f.run_env(args, env)
                .expect_code(code)
                .expect_output(fragment);
            assert_eq!(before, f.files(), "{args:?} changed files");
            let calls = f.calls();
            assert!(
                calls.iter().all(|c| c.contains("show")),
                "{args:?} ran {calls:?}"
            );
        };
    let rescue = ["--profile", "rescue", "gateway", "install"];
    let nothing = || {};
    check(
        &|| {
            f.config(
                ".omniclaw-rescue",
                "{gateway: {port: 'x', auth: {token: 't'}}}",
            )
        },
        &rescue,
        &[],
        1,
        "the config ~/.omniclaw-rescue/omniclaw.json is invalid",
    );
    check(
        &|| f.config(".omniclaw-rescue", "{gateway: {port: 19789, auth: {token: '${GW_TOKEN}'}}}"),
        &rescue,
        &[("GW_TOKEN", "abc")],
        1,
        "gateway.auth.token refers to the environment variable GW_TOKEN, which a service does not inherit",
    );
    check(
        &|| {
            f.config(
                ".omniclaw-rescue",
                "{gateway: {port: 19789, auth: {token: {source: 'keychain'}}}}",
            )
        },
        &rescue,
        &[
            ("XDG_RUNTIME_DIR", "/nonexistent"),
            ("DBUS_SESSION_BUS_ADDRESS", ""),
        ],
        1,
        "a service can read it only while a login session keyring exists",
    );
    check(
        &|| {
            f.config(
                ".omniclaw-rescue",
                "{gateway: {port: 19789, auth: {token: 't'}}}",
            )
        },
        &[
            "--profile",
            "rescue",
            "gateway",
            "install",
            "--port",
            "18800",
        ],
        &[],
        2,
        "its ports collide with other instances",
    );
    check(
        &nothing,
        &[
            "--profile",
            "rescue",
            "gateway",
            "install",
            "--binary",
            "/nonexistent/omniclaw",
        ],
        &[],
        2,
        "the binary /nonexistent/omniclaw does not exist",
    );
    check(
        &nothing,
        &["--profile", "newbie", "gateway", "install"],
        &[],
        1,
        "run `omniclaw --profile newbie setup` first",
    );
    check(
        &nothing,
        &rescue,
        &[("OMNICLAW_SERVICE_MANAGER", "none")],
        1,
        "no service manager: OMNICLAW_SERVICE_MANAGER=none",
    );
    // A keychain reference the store cannot answer: no session bus where
    // the variable points.
    check(
        &|| {
            f.config(
                ".omniclaw-rescue",
                "{gateway: {port: 19789, auth: {token: {source: 'keychain'}}}}",
            )
        },
        &["--profile", "rescue", "gateway", "install", "--dry-run"],
        &[("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")],
        1,
        "gateway.auth.token refers to the OS keychain, which cannot be read now",
    );
    // The session's keychain is reachable but holds no token for the profile.
    check(
        &nothing,
        &rescue,
        &[],
        1,
        "gateway.auth.token refers to the OS keychain, which holds no value for it",
    );
    check(
        &nothing,
        &rescue,
        &[],
        1,
        "store it with `omniclaw --profile rescue secrets set gateway.auth.token`",
    );
    // The same reference with a secrets file (headless machines): the
    // service reads the file, and an empty file is refused the same way.
    check(
        &|| {
            f.home.write(".omniclaw-rescue/secrets.json", "{}");
            make_private(&f.home.path().join(".omniclaw-rescue/secrets.json"));
        },
        &["--profile", "rescue", "gateway", "install", "--dry-run"],
        &[
            ("XDG_RUNTIME_DIR", "/nonexistent"),
            ("DBUS_SESSION_BUS_ADDRESS", ""),
        ],
        1,
        "gateway.auth.token refers to the secrets file",
    );
    // Once the file holds it, install goes ahead without a session.
    f.set_token("rescue", "file-token-0123456789")
        .expect_code(0);
    f.run_env(
        &["--profile", "rescue", "gateway", "install", "--dry-run"],
        &[
            ("XDG_RUNTIME_DIR", "/nonexistent"),
            ("DBUS_SESSION_BUS_ADDRESS", ""),
        ],
    )
    .expect_code(0);
    std::fs::remove_file(f.home.path().join(".omniclaw-rescue/secrets.json")).expect("rm");

    // Exit codes: a clash in the saved config is a problem found (1); a bad
    // --port on the command line is bad input (2).
    let plain = || {
        f.config(
            ".omniclaw-rescue",
            "{gateway: {port: 19789, auth: {token: 't'}}}",
        )
    };
    check(
        &|| {
            f.config(
                ".omniclaw-rescue",
                "{gateway: {port: 18795, auth: {token: 't'}}}",
            )
        },
        &rescue,
        &[],
        1,
        "its ports collide with other instances",
    );
    check(
        &plain,
        &["--profile", "rescue", "gateway", "install", "--port", "1"],
        &[],
        2,
        "port 1 is privileged (below 1024) and a user service cannot bind it",
    );
    check(
        &nothing,
        &rescue,
        &[("OMNICLAW_SERVICE_MANAGER", "bogus")],
        2,
        "OMNICLAW_SERVICE_MANAGER=\"bogus\" is not a service manager: use systemd, launchd, schtasks or none",
    );
    // A port another process listens on right now.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let busy_port = busy.local_addr().expect("addr").port().to_string();
    let held = format!(
        "port {busy_port} (base) is held by pid {}",
        std::process::id()
    );
    for fragment in [held.as_str(), "a free base port is "] {
        check(
            &nothing,
            &[
                "--profile",
                "rescue",
                "gateway",
                "install",
                "--port",
                &busy_port,
            ],
            &[],
            2,
            fragment,
        );
    }
    drop(busy);

    // No user bus: the message says how to get one, for this user; nothing written.
    let nobus = f.another();
    main_and_rescue(&nobus);
    nobus.fake(
        "systemctl",
        "#!/bin/sh\necho 'Failed to connect to bus: No medium found' >&2\nexit 1\n",
    );
    let before = nobus.files();
    nobus
        .run(&rescue)
        .expect_code(1)
        .expect_output("`machinectl shell tester@`")
        .expect_output("`loginctl enable-linger tester`");
    assert_eq!(before, nobus.files());
    // A missing manager program.
    let r = Home::new();
    r.write(
        ".omniclaw-rescue/omniclaw.json",
        "{gateway: {port: 19789, auth: {token: 't'}}}",
    );
    r.run_env(
        &rescue,
        &[
            ("PATH", "/nonexistent"),
            ("OMNICLAW_SERVICE_MANAGER", "systemd"),
        ],
    )
    .expect_code(1)
    .expect_output("`systemctl` was not found");
}

#[cfg(unix)]
fn make_private(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

#[cfg(not(unix))]
fn make_private(_p: &Path) {}

#[test]
fn start_without_a_service_says_how_to_run_it() {
    let f = Fixture::new();
    main_and_rescue(&f);
    f.run(&["--profile", "rescue", "gateway", "start"])
        .expect_code(1)
        .expect_output("run it in the foreground with `omniclaw --profile rescue gateway`")
        .expect_output("`omniclaw --profile rescue gateway install`");
    f.run(&["--profile", "rescue", "gateway", "restart"])
        .expect_code(1)
        .expect_output("has no gateway service installed");
    f.run(&["--profile", "rescue", "gateway", "stop"])
        .expect_code(0)
        .expect_output("profile rescue is not running");
    assert_eq!(f.calls(), Vec::<String>::new());
}

#[test]
fn status_deep_finds_stale_and_foreign_services() {
    let f = Fixture::new();
    main_and_rescue(&f);
    f.run(&["--profile", "rescue", "gateway", "install"])
        .expect_code(0);
    // The config moves on without the unit: port drift.
    f.config(
        ".omniclaw-rescue",
        "{gateway: {port: 19889, auth: {token: 't'}}}\n",
    );
    // A unit of a profile whose state dir is gone, with a binary that is gone.
    let gone = f.home.path().join(".omniclaw-gone");
    f.home.write(
        ".config/systemd/user/omniclaw-gateway-gone.service",
        &format!(
            "[Service]\nExecStart=/nonexistent/omniclaw gateway --port 21789\nEnvironment=\"OMNICLAW_PROFILE=gone\"\nEnvironment=\"OMNICLAW_STATE_DIR={}\"\nEnvironment=\"OMNICLAW_SERVICE=1\"\n",
            gone.display()
        ),
    );
    // OpenClaw's own gateway unit.
    f.home.write(
        ".config/systemd/user/openclaw-gateway.service",
        "[Service]\nExecStart=/usr/bin/openclaw gateway\n",
    );
    f.home.write(
        ".config/systemd/user/unrelated.service",
        "[Service]\nExecStart=/bin/true\n",
    );

    let r = f.run(&[
        "--profile",
        "rescue",
        "--json",
        "gateway",
        "status",
        "--deep",
    ]);
    r.expect_code(1);
    let v = r.json();
    let services = v["services"].as_array().expect("services");
    let by_name = |n: &str| {
        services
            .iter()
            .find(|s| s["name"] == n)
            .unwrap_or_else(|| panic!("{n} missing in {services:?}"))
    };
    assert_eq!(services.len(), 3, "{services:?}");
    let rescue = by_name("omniclaw-gateway-rescue.service");
    assert_eq!(
        rescue["stale"][0],
        "it runs port 19789 but the config says gateway.port 19889"
    );
    assert!(rescue["fix"]
        .as_str()
        .is_some_and(|s| s.contains("omniclaw --profile rescue gateway install --force")));
    let gone_row = by_name("omniclaw-gateway-gone.service");
    let reasons: Vec<&str> = gone_row["stale"]
        .as_array()
        .expect("stale")
        .iter()
        .filter_map(|s| s.as_str())
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("is gone (profile removed)")),
        "{reasons:?}"
    );
    assert!(reasons
        .iter()
        .any(|r| r.contains("/nonexistent/omniclaw it runs does not exist")));
    let foreign = by_name("openclaw-gateway.service");
    assert_eq!(foreign["owner"], "openclaw");
    assert!(foreign["cleanup"]
        .as_str()
        .is_some_and(|s| s.contains("systemctl --user disable --now openclaw-gateway.service")));
    assert_eq!(v["service"]["stale"][0], rescue["stale"][0]);

    // Text form.
    f.run(&["--profile", "rescue", "gateway", "status", "--deep"])
        .expect_code(1)
        .expect_output("OpenClaw gateway (not managed by OmniClaw)")
        .expect_output("stale: its state dir");
}

#[cfg(unix)]
#[test]
fn stop_ends_a_gateway_run_from_a_terminal_and_nothing_else() {
    let f = Fixture::new();
    let port = f.gateway_only_rescue();
    let mut cmd = f.home.cmd();
    cmd.args(["--profile", "rescue", "gateway"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn gateway");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut ready = false;
    while Instant::now() < deadline {
        match lines.next() {
            Some(Ok(l)) if l.contains("Press Ctrl+C to stop.") => {
                ready = true;
                break;
            }
            Some(Ok(_)) => {}
            _ => break,
        }
    }
    assert!(ready, "gateway did not start");
    std::thread::spawn(move || for _ in lines.by_ref() {});

    // start refuses a second copy; restart points at the terminal.
    f.run(&["--profile", "rescue", "gateway", "start"])
        .expect_code(0)
        .expect_output("already running");
    f.run(&["--profile", "rescue", "gateway", "restart"])
        .expect_code(1)
        .expect_output("runs from a terminal");

    let started = Instant::now();
    f.run(&["--profile", "rescue", "gateway", "stop"])
        .expect_code(0)
        .expect_output(&format!("(pid {}, sent SIGTERM)", child.id()));
    let status = child.wait().expect("wait");
    assert!(status.success(), "graceful exit after SIGTERM: {status:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(port_is_free(port), "port released");
    f.run(&["--profile", "rescue", "gateway", "stop"])
        .expect_code(0)
        .expect_output("not running");
}

/// `<state dir>/stop-intent.json` of the rescue profile, parsed, if any.
fn stop_intent(f: &Fixture) -> Option<serde_json::Value> {
    let text =
        std::fs::read_to_string(f.home.path().join(".omniclaw-rescue/stop-intent.json")).ok()?;
    Some(serde_json::from_str(&text).expect("stop intent is JSON"))
}

fn runtime_record(f: &Fixture) -> serde_json::Value {
    serde_json::from_str(&f.home.read(".omniclaw-rescue/gateway.json")).expect("gateway.json")
}

fn terminal_gateway(f: &Fixture) -> omniclaw_tests::GatewayProc {
    let mut cmd = f.home.cmd();
    cmd.args(["--profile", "rescue", "gateway"]);
    omniclaw_tests::GatewayProc::spawn(cmd)
        .unwrap_or_else(|r| panic!("gateway did not start: {r:?}"))
}

#[test]
fn every_stop_path_records_that_the_stop_was_on_purpose() {
    let f = Fixture::new();
    f.gateway_only_rescue();

    // `gateway stop` of a terminal-run gateway: by the CLI, naming it.
    let gw = terminal_gateway(&f);
    assert_eq!(stop_intent(&f), None);
    let pid = gw.pid();
    f.run(&["--profile", "rescue", "gateway", "stop"])
        .expect_code(0);
    let intent = stop_intent(&f).expect("recorded");
    assert_eq!(intent["by"], "cli", "{intent}");
    assert_eq!(intent["owner"], "cli", "{intent}");
    assert_eq!(intent["pid"], pid, "{intent}");
    assert!(intent["atMs"].as_u64().is_some_and(|t| t > 0), "{intent}");
    // The runtime record stays, marked stopped: its owner is still known.
    let record = runtime_record(&f);
    assert_eq!(record["owner"], "cli", "{record}");
    assert_eq!(record["pid"], pid, "{record}");
    assert!(record["stoppedMs"].as_u64().is_some(), "{record}");
    drop(gw);

    // Starting again clears it; Ctrl+C (SIGINT) records its own.
    let gw = terminal_gateway(&f);
    assert_eq!(stop_intent(&f), None, "a start clears the stop");
    assert!(runtime_record(&f).get("stoppedMs").is_none());
    gw.signal("INT");
    assert_eq!(stop_intent(&f).expect("recorded")["by"], "ctrl-c");

    // SIGTERM from elsewhere (a kill, a service manager).
    let gw = terminal_gateway(&f);
    gw.signal("TERM");
    assert_eq!(stop_intent(&f).expect("recorded")["by"], "signal");

    // The rescue bot's /stop runs `gateway stop --by rescue`; the SIGTERM
    // it sends does not overwrite that record.
    let gw = terminal_gateway(&f);
    f.run(&["--profile", "rescue", "gateway", "stop", "--by", "rescue"])
        .expect_code(0);
    assert_eq!(stop_intent(&f).expect("recorded")["by"], "rescue");
    drop(gw);
    f.run(&["--profile", "rescue", "gateway", "stop", "--by", "someone"])
        .expect_code(2)
        .expect_output("--by");

    // A killed gateway records nothing: the watch may repair it, and its
    // record still names who ran it.
    let gw = terminal_gateway(&f);
    let pid = gw.pid();
    gw.kill9();
    assert_eq!(stop_intent(&f), None);
    let record = runtime_record(&f);
    assert_eq!(
        (record["owner"].clone(), record["pid"].clone()),
        ("cli".into(), pid.into())
    );
    assert!(record.get("stoppedMs").is_none(), "{record}");

    // The service's stop through the CLI, and its removal.
    f.run(&["--profile", "rescue", "gateway", "install"])
        .expect_code(0);
    f.calls();
    f.run(&["--profile", "rescue", "gateway", "stop"])
        .expect_code(0);
    assert_eq!(
        f.calls(),
        ["systemctl --user stop omniclaw-gateway-rescue.service"]
    );
    assert_eq!(stop_intent(&f).expect("recorded")["by"], "cli");
    std::fs::remove_file(f.home.path().join(".omniclaw-rescue/stop-intent.json")).expect("rm");
    f.run(&["--profile", "rescue", "gateway", "uninstall"])
        .expect_code(0);
    assert_eq!(stop_intent(&f).expect("recorded")["by"], "cli");
}

#[test]
fn systemd_analyze_verifies_generated_units() {
    let Ok(version) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("skipped: systemd-analyze is not installed (package systemd)");
        return;
    };
    assert!(version.status.success());
    let f = Fixture::new();
    // A home with a space and a `%` exercises quoting and specifier escapes.
    let home = f.home.path().join("50% my home");
    std::fs::create_dir_all(home.join(".omniclaw-rescue")).expect("mkdir");
    std::fs::create_dir_all(home.join(".omniclaw")).expect("mkdir");
    std::fs::write(
        home.join(".omniclaw-rescue/omniclaw.json"),
        "{gateway: {port: 19789, auth: {token: 't'}}}",
    )
    .expect("write");
    std::fs::write(
        home.join(".omniclaw/omniclaw.json"),
        "{gateway: {port: 18789, auth: {token: 't'}}}",
    )
    .expect("write");
    let runtime = tempfile::tempdir().expect("runtime dir");
    let units = tempfile::tempdir().expect("unit dir");
    let home_s = home.display().to_string();
    for profile in [None, Some("rescue")] {
        let mut args = vec!["--json"];
        if let Some(p) = profile {
            args.extend(["--profile", p]);
        }
        args.extend(["gateway", "install", "--dry-run"]);
        let r = f.run_env(&args, &[("HOME", &home_s)]);
        r.expect_code(0);
        let v = r.json();
        let file = &v["files"][0];
        let path = PathBuf::from(file["path"].as_str().expect("path"));
        let name = path.file_name().expect("file name");
        let target = units.path().join(name);
        std::fs::write(&target, file["contents"].as_str().expect("contents")).expect("write unit");
        let out = Command::new("systemd-analyze")
            .args(["verify", "--user"])
            .arg(&target)
            .env("XDG_RUNTIME_DIR", runtime.path())
            .env("HOME", &home)
            .output()
            .expect("run systemd-analyze");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.trim().is_empty(),
            "systemd-analyze verify {}: {:?}\n{stderr}\n{}",
            target.display(),
            out.status,
            file["contents"].as_str().unwrap_or_default()
        );
    }
}

/// Installs, starts, probes and removes a real unit, where this user's
/// systemd manager runs; skipped (with the reason) elsewhere.
#[test]
fn real_user_systemd_round_trip() {
    let probe = Command::new("systemctl")
        .args(["--user", "show", "--property=Version"])
        .output();
    match probe {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            eprintln!(
                "skipped: no user systemd manager here ({})",
                String::from_utf8_lossy(&o.stderr).trim()
            );
            return;
        }
        Err(e) => {
            eprintln!("skipped: systemctl is not available ({e})");
            return;
        }
    }
    // The real manager reads units from the real home: use it for the unit
    // only, with a uniquely named profile whose state lives in a temp dir.
    let Some(real_home) = std::env::var_os("HOME") else {
        eprintln!("skipped: HOME is not set");
        return;
    };
    let profile = format!("svctest{}", std::process::id());
    let state = tempfile::tempdir().expect("state dir");
    let port = free_base();
    std::fs::write(
        state.path().join("omniclaw.json"),
        format!("{{gateway: {{port: {port}, auth: {{token: 't'}}}}, browser: {{enabled: false}}, canvasHost: {{enabled: false}}}}"),
    )
    .expect("config");
    let home = Home::new();
    let real_home = real_home.to_string_lossy().into_owned();
    let state_s = state.path().display().to_string();
    let env = [
        ("HOME", real_home.as_str()),
        ("OMNICLAW_PROFILE", profile.as_str()),
        ("OMNICLAW_STATE_DIR", state_s.as_str()),
    ];
    struct Cleanup<'a>(&'a Home, [(&'a str, &'a str); 3]);
    impl Drop for Cleanup<'_> {
        fn drop(&mut self) {
            let _ = self.0.run_env(&["gateway", "uninstall"], &self.1);
        }
    }
    let _cleanup = Cleanup(&home, env);
    home.run_env(&["gateway", "install"], &env).expect_code(0);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut status = home.run_env(&["--json", "gateway", "status"], &env);
    while Instant::now() < deadline && status.json()["rpc"]["ok"] != true {
        std::thread::sleep(Duration::from_millis(200));
        status = home.run_env(&["--json", "gateway", "status"], &env);
    }
    let v = status.json();
    assert_eq!(v["rpc"]["ok"], true, "{v}");
    assert_eq!(v["running"]["owner"], "service", "{v}");
    assert_eq!(v["service"]["active"], true, "{v}");
    home.run_env(&["gateway", "uninstall"], &env).expect_code(0);
}

#[cfg(unix)]
#[test]
fn install_refuses_a_profile_running_outside_its_service() {
    let f = Fixture::new();
    f.gateway_only_rescue();
    let gateway = omniclaw_tests::GatewayProc::start(&f.home, &["--profile", "rescue", "gateway"]);
    f.calls();
    let config = f.home.read(".omniclaw-rescue/omniclaw.json");
    for line in [
        "omniclaw --profile rescue gateway install",
        "omniclaw --profile rescue gateway install --force",
    ] {
        f.shell(line)
            .expect_code(1)
            .expect_output(&format!(
                "it is already running from a terminal (pid {}, cli)",
                gateway.pid()
            ))
            .expect_output(
                "stop it first: `omniclaw --profile rescue gateway stop`, then install again",
            );
    }
    // (The running gateway writes its own state files meanwhile.)
    assert!(!f.home.path().join(".config").exists(), "no unit written");
    assert_eq!(config, f.home.read(".omniclaw-rescue/omniclaw.json"));
    assert_eq!(f.calls(), Vec::<String>::new(), "nothing run");
    // Stopped, it installs.
    f.shell("omniclaw --profile rescue gateway stop")
        .expect_code(0);
    drop(gateway);
    f.shell("omniclaw --profile rescue gateway install")
        .expect_code(0)
        .expect_output("Installed systemd user unit omniclaw-gateway-rescue.service");
}

#[test]
fn a_failed_enable_is_undone_on_both_sides() {
    let f = Fixture::new();
    main_and_rescue(&f);
    f.fake(
        "systemctl",
        &FAKE_SYSTEMCTL.replace(
            "  \"--user enable --now \"*|",
            "  \"--user enable --now \"*) echo 'Failed to enable unit: Unit file omniclaw-gateway-rescue.service is masked.' >&2; exit 1 ;;\n  ",
        ),
    );
    f.calls();
    let before = f.files();
    let r = f.run(&[
        "--profile",
        "rescue",
        "gateway",
        "install",
        "--port",
        "19989",
    ]);
    r.expect_code(1)
        .expect_output("`systemctl --user enable --now omniclaw-gateway-rescue.service` failed (exit 1): Failed to enable unit")
        .expect_output("see why with `journalctl --user -u omniclaw-gateway-rescue.service")
        .expect_output("undone: the service files and the config were put back as they were");
    assert!(!r.stdout.contains("could not undo") && !r.stderr.contains("could not undo"));
    assert_eq!(
        before,
        f.files(),
        "the unit is gone and the config is as it was"
    );
    assert_eq!(
        f.calls(),
        [
            "systemctl --user show --property=Version",
            "loginctl show-user tester --property=Linger --value",
            "systemctl --user daemon-reload",
            "systemctl --user enable --now omniclaw-gateway-rescue.service",
            "systemctl --user disable --now omniclaw-gateway-rescue.service",
            "systemctl --user daemon-reload",
            "systemctl --user reset-failed omniclaw-gateway-rescue.service",
        ]
    );
}

#[test]
fn a_failed_undo_step_is_reported() {
    let f = Fixture::new();
    main_and_rescue(&f);
    // enable fails, and so does every daemon-reload after the first.
    f.fake(
        "systemctl",
        &FAKE_SYSTEMCTL.replace(
            "  \"--user enable --now \"*|",
            "  \"--user daemon-reload\") if [ -f \"$dir/reloaded\" ]; then echo 'Failed to reload daemon: Access denied' >&2; exit 1; fi; touch \"$dir/reloaded\" ;;\n  \"--user enable --now \"*) echo 'Failed to enable unit: boom' >&2; exit 1 ;;\n  ",
        ),
    );
    let before = f.files();
    f.run(&["--profile", "rescue", "gateway", "install"])
        .expect_code(1)
        .expect_output("could not undo everything:")
        .expect_output("`systemctl --user daemon-reload` was denied")
        .expect_output("`omniclaw --profile rescue gateway uninstall` removes what is left");
    assert_eq!(before, f.files(), "the files are put back all the same");
}

const FAKE_SCHTASKS_GONE: &str = r#"#!/bin/sh
echo "schtasks $*" >> "$(dirname "$0")/calls.log"
case "$1" in
  /End) echo "ERROR: The system cannot find the file specified." >&2; exit 1 ;;
  /Delete) echo "ERROR: The system cannot find the file specified." >&2; exit 1 ;;
esac
exit 0
"#;

#[test]
fn uninstall_of_a_task_deleted_already_removes_its_files() {
    let f = Fixture::new();
    main_and_rescue(&f);
    f.fake("schtasks", FAKE_SCHTASKS_GONE);
    let dir = "AppData/Local/OmniClaw/services";
    let xml = f
        .home
        .write(&format!("{dir}/omniclaw-gateway-rescue.xml"), "<Task/>");
    let cmd = f.home.write(
        &format!("{dir}/omniclaw-gateway-rescue.cmd"),
        "@echo off\r\nset \"OMNICLAW_SERVICE=1\"\r\n",
    );
    f.run_env(
        &["--profile", "rescue", "gateway", "uninstall"],
        &[("OMNICLAW_SERVICE_MANAGER", "schtasks")],
    )
    .expect_code(0)
    .expect_output("Removed scheduled task OmniClaw Gateway (rescue)");
    assert!(!xml.exists() && !cmd.exists());
    assert_eq!(
        f.calls(),
        [
            "schtasks /End /TN OmniClaw Gateway (rescue)",
            "schtasks /Delete /TN OmniClaw Gateway (rescue) /F",
        ]
    );
    // Any other failure of /Delete still stops the uninstall, files kept.
    f.fake(
        "schtasks",
        "#!/bin/sh\ncase \"$1\" in /Delete) echo 'ERROR: Access is denied.' >&2; exit 1 ;; esac\nexit 0\n",
    );
    let xml = f
        .home
        .write(&format!("{dir}/omniclaw-gateway-rescue.xml"), "<Task/>");
    f.run_env(
        &["--profile", "rescue", "gateway", "uninstall"],
        &[("OMNICLAW_SERVICE_MANAGER", "schtasks")],
    )
    .expect_code(1)
    .expect_output("a task for another user needs an administrator");
    assert!(xml.exists());
}

#[test]
fn uninstall_of_a_unit_systemd_no_longer_knows_removes_its_file() {
    let f = Fixture::new();
    main_and_rescue(&f);
    f.fake(
        "systemctl",
        &FAKE_SYSTEMCTL.replace(
            "  \"--user disable --now \"*|",
            "  \"--user disable --now \"*) echo \"Failed to disable unit: Unit file $4 does not exist.\" >&2; exit 1 ;;\n  ",
        ),
    );
    let unit = f.home.write(
        ".config/systemd/user/omniclaw-gateway-rescue.service",
        "[Service]\nExecStart=/bin/true\n",
    );
    f.run(&["--profile", "rescue", "gateway", "uninstall"])
        .expect_code(0)
        .expect_output("Removed systemd user unit omniclaw-gateway-rescue.service");
    assert!(!unit.exists());
}

/// The manual's commands as a user types them: `setup` (which stores a
/// keychain reference and the token in the session's keychain), then
/// `gateway install` for the default, main and rescue profiles, and
/// `install --port 19789`, against the fake manager.
#[test]
fn manual_setup_then_install_as_typed() {
    let f = Fixture::new();
    f.shell("omniclaw --profile main setup").expect_code(0);
    f.shell("omniclaw --profile rescue setup").expect_code(0);
    assert!(f
        .home
        .read(".omniclaw-main/omniclaw.json")
        .contains("keychain"));
    f.calls();
    f.shell("omniclaw --profile main gateway install")
        .expect_code(0)
        .expect_output(
            "Installed systemd user unit omniclaw-gateway-main.service for profile main",
        );
    f.shell("omniclaw --profile rescue gateway install")
        .expect_code(0)
        .expect_output(
            "Installed systemd user unit omniclaw-gateway-rescue.service for profile rescue",
        );
    let rescue_port = f
        .run(&[
            "--profile",
            "rescue",
            "--json",
            "config",
            "get",
            "gateway.port",
        ])
        .json()["value"]
        .to_string();
    f.shell(&format!(
        "omniclaw --profile rescue gateway install --port {rescue_port}"
    ))
    .expect_code(0)
    .expect_output("Already installed:");
    // The plain form of the rescue guide: the default profile.
    f.shell("omniclaw setup").expect_code(0);
    f.shell("omniclaw gateway install")
        .expect_code(0)
        .expect_output("Installed systemd user unit omniclaw-gateway.service for profile default");
    let calls = f.calls();
    for unit in [
        "omniclaw-gateway-main.service",
        "omniclaw-gateway-rescue.service",
        "omniclaw-gateway.service",
    ] {
        assert!(
            calls.contains(&format!("systemctl --user enable --now {unit}")),
            "{unit} in {calls:?}"
        );
        let text = std::fs::read_to_string(f.unit(unit)).expect("unit");
        assert!(
            text.contains("Environment=\"OMNICLAW_SERVICE=1\""),
            "{text}"
        );
    }
    // Gateway tokens are in the keychain only: no unit mentions a value.
    let units = f.home.all_text();
    assert!(!units.contains("OMNICLAW_GATEWAY_TOKEN"));
    // Nor the tokens themselves: no 48-hex word of any service file has the
    // fingerprint of a stored token.
    let service_files: String = f
        .files()
        .into_iter()
        .filter(|(p, _)| p.starts_with(f.home.path().join(".config/systemd")))
        .map(|(_, bytes)| String::from_utf8_lossy(&bytes).into_owned())
        .collect();
    for profile in ["main", "rescue", "default"] {
        let status = f
            .run(&["--profile", profile, "--json", "secrets", "status"])
            .json();
        let stored = status["secrets"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["name"] == "gateway.auth.token"))
            .and_then(|s| s["fingerprint"].as_str())
            .unwrap_or_else(|| panic!("no stored token for {profile}: {status}"))
            .to_string();
        for word in hex_words(&service_files, 48) {
            assert_ne!(
                fingerprint(word),
                stored,
                "the token of {profile} is in a unit"
            );
        }
    }
}

/// Runs of at least `len` lowercase hex digits in `text`.
fn hex_words(text: &str, len: usize) -> Vec<&str> {
    text.split(|c: char| !matches!(c, '0'..='9' | 'a'..='f'))
        .filter(|w| w.len() >= len)
        .collect()
}

/// `secrets status`'s fingerprint of `secret`: `sha256:` and 12 hex digits.
fn fingerprint(secret: &str) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), secret.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("sha256sum");
    format!("sha256:{}", &String::from_utf8_lossy(&out.stdout)[..12])
}

/// Lingering starts a user's services at boot, before any login; a service
/// whose secrets are in the keychain still waits for the login that opens
/// it, so linger is suggested only for secrets it reads without a session.
#[test]
fn linger_advice_depends_on_where_the_secrets_are() {
    let f = Fixture::new();
    f.config(
        ".omniclaw-rescue",
        "{gateway: {port: 19789, auth: {token: {source: 'keychain'}}}}\n",
    );
    f.set_token("rescue", "keychain-token-0123456789")
        .expect_code(0);
    let r = f.run(&["--profile", "rescue", "gateway", "install"]);
    r.expect_code(0)
        .expect_output("lingering is off for tester: the gateway starts when you log in, when the keychain opens (gateway.auth.token in it)")
        .expect_output("`omniclaw --profile rescue --secrets-file secrets set gateway.auth.token`");
    assert!(
        !r.stdout
            .contains("to keep it running without a session: loginctl enable-linger"),
        "{}",
        r.stdout
    );
    f.run(&["--profile", "rescue", "gateway", "uninstall"])
        .expect_code(0);

    // The same profile with its own secrets file: linger is the advice.
    f.home
        .run_stdin(
            &[
                "--profile",
                "rescue",
                "--secrets-file",
                "secrets",
                "set",
                "gateway.auth.token",
            ],
            "file-token-0123456789",
            &[],
        )
        .expect_code(0);
    let r = f.run(&["--profile", "rescue", "gateway", "install"]);
    r.expect_code(0).expect_output(
        "lingering is off for tester: the gateway starts when you log in and stops when your last session ends; to keep it running without a session: loginctl enable-linger tester",
    );
    assert!(!r.stdout.contains("keychain opens"), "{}", r.stdout);
}

#[test]
fn a_failed_service_names_its_unit() {
    let f = Fixture::new();
    main_and_rescue(&f);
    f.fake(
        "systemctl",
        &FAKE_SYSTEMCTL.replace(
            "    elif [ -f \"$dir/active\" ]; then",
            "    elif [ -f \"$dir/failed\" ]; then\n      printf 'LoadState=loaded\\nActiveState=failed\\nSubState=failed\\nMainPID=0\\nResult=exit-code\\n'\n    elif [ -f \"$dir/active\" ]; then",
        ),
    );
    f.run(&["--profile", "rescue", "gateway", "install"])
        .expect_code(0);
    std::fs::write(f.bin.join("failed"), "").expect("mark failed");
    let wanted = "failed: exit-code (see `journalctl --user -u omniclaw-gateway-rescue.service`)";
    let r = f.run(&["--profile", "rescue", "gateway", "status"]);
    r.expect_output(wanted);
    assert!(!r.stdout.contains("UNIT"), "{}", r.stdout);
    let v = f.deep_status_json("rescue");
    assert_eq!(v["service"]["state"], wanted, "{v}");
    assert_eq!(v["services"][0]["state"], wanted, "{v}");
}

#[test]
fn status_refuses_an_unknown_service_manager() {
    let f = Fixture::new();
    main_and_rescue(&f);
    let bogus = [("OMNICLAW_SERVICE_MANAGER", "bogus")];
    for args in [
        &["--profile", "rescue", "gateway", "status"][..],
        &["--profile", "rescue", "gateway", "status", "--deep"],
        &["--profile", "rescue", "--json", "gateway", "status"],
        &[
            "--profile",
            "rescue",
            "--json",
            "gateway",
            "status",
            "--deep",
        ],
    ] {
        let wanted = "OMNICLAW_SERVICE_MANAGER=\"bogus\" is not a service manager: use systemd, launchd, schtasks or none";
        let r = f.run_env(args, &bogus);
        r.expect_code(2);
        if args.contains(&"--json") {
            let v = r.json();
            assert_eq!(v["error"]["kind"], "usage", "{args:?}");
            assert!(
                v["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(wanted)),
                "{v}"
            );
        } else {
            r.expect_output(wanted);
        }
    }
}

#[test]
fn status_deep_warns_once_and_needs_no_setup() {
    let f = Fixture::new();
    // Nothing set up, nothing running: nothing to probe, nothing wrong.
    for args in [&["gateway", "status"][..], &["gateway", "status", "--deep"]] {
        let r = f.run(args);
        r.expect_code(0).expect_output("rpc      not probed");
        assert!(!r.stdout.contains("cannot authenticate"), "{}", r.stdout);
    }
    let v = f.run(&["--json", "gateway", "status", "--deep"]);
    v.expect_code(0);
    assert_eq!(v.json()["warnings"], serde_json::json!([]));

    // A stale unit of the current profile: one warning.
    main_and_rescue(&f);
    f.run(&["--profile", "rescue", "gateway", "install"])
        .expect_code(0);
    f.config(
        ".omniclaw-rescue",
        "{gateway: {port: 19889, auth: {token: 't'}}}\n",
    );
    let r = f.run(&["--profile", "rescue", "gateway", "status", "--deep"]);
    r.expect_code(1);
    assert_eq!(
        r.stdout
            .matches("warning: the systemd user unit omniclaw-gateway-rescue.service is stale")
            .count(),
        1,
        "{}",
        r.stdout
    );
    let v = f.deep_status_json("rescue");
    assert_eq!(v["warnings"].as_array().map(Vec::len), Some(1), "{v}");
}

/// The stale reasons of one row of `--json gateway status --deep`.
fn stale_of(row: &serde_json::Value) -> Vec<String> {
    row["stale"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

#[cfg(unix)]
#[test]
fn status_deep_flags_a_unit_written_for_another_binary() {
    let f = Fixture::new();
    main_and_rescue(&f);
    let bin = omniclaw_tests::omniclaw_bin();
    // Run as a symlink on PATH, as `~/.local/bin/omniclaw` into a build
    // folder: the unit runs the symlink, not the folder it points into.
    let link_dir = f.home.path().join(".local/bin");
    std::fs::create_dir_all(&link_dir).expect("mkdir");
    let link = link_dir.join("omniclaw");
    std::os::unix::fs::symlink(&bin, &link).expect("symlink");
    let via_link = |line: &str| f.shell_on(line, &link_dir);
    via_link("omniclaw --profile rescue gateway install").expect_code(0);
    let unit_path = f.unit("omniclaw-gateway-rescue.service");
    let unit = std::fs::read_to_string(&unit_path).expect("unit");
    assert!(
        unit.contains(&format!(
            "ExecStart={} gateway --port 19789",
            link.display()
        )),
        "{unit}"
    );
    assert!(
        unit.contains(&format!("ConditionPathExists={}\n", link.display())),
        "{unit}"
    );
    assert!(unit.contains("LimitNOFILE=65536"), "{unit}");

    // Fresh: nothing differs from what install would write now.
    let r = via_link("omniclaw --profile rescue --json gateway status --deep");
    let v = r.json();
    assert_eq!(stale_of(&v["service"]), Vec::<String>::new(), "{v}");
    let row = v["services"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["profile"] == "rescue"))
        .cloned()
        .expect("rescue row");
    assert_eq!(stale_of(&row), Vec::<String>::new(), "{v}");

    // Written by an older build (still present) for both profiles.
    let old = f.home.path().join("old-build/omniclaw");
    f.home.write("old-build/omniclaw", "#!/bin/sh\n");
    make_executable(&old);
    f.run(&["--profile", "main", "gateway", "install"])
        .expect_code(0);
    for name in [
        "omniclaw-gateway-rescue.service",
        "omniclaw-gateway-main.service",
    ] {
        let path = f.unit(name);
        let text = std::fs::read_to_string(&path).expect("unit");
        let text = text
            .replace(&link.display().to_string(), &old.display().to_string())
            .replace(&bin.display().to_string(), &old.display().to_string());
        std::fs::write(&path, text).expect("rewrite unit");
    }
    let r = via_link("omniclaw --profile rescue --json gateway status --deep");
    r.expect_code(1);
    let v = r.json();
    let differs = format!(
        "it runs {} but `gateway install` would now write {}",
        old.display(),
        link.display()
    );
    assert_eq!(
        stale_of(&v["service"]),
        std::slice::from_ref(&differs),
        "{v}"
    );
    let rows = v["services"].as_array().expect("services");
    for (profile, cmd) in [
        ("rescue", "omniclaw --profile rescue"),
        ("main", "omniclaw --profile main"),
    ] {
        let row = rows
            .iter()
            .find(|s| s["profile"] == profile)
            .unwrap_or_else(|| panic!("{profile} row in {v}"));
        assert_eq!(stale_of(row), std::slice::from_ref(&differs), "{v}");
        assert!(
            row["fix"]
                .as_str()
                .is_some_and(|s| s.contains(&format!("`{cmd} gateway install --force`"))),
            "{row}"
        );
    }
    // The text form says it once per unit, with the fix.
    let r = via_link("omniclaw --profile rescue gateway status --deep");
    r.expect_code(1)
        .expect_output(&differs)
        .expect_output("fix: `omniclaw --profile main gateway install --force`");
    // Without --deep, the binary is not compared.
    let v = via_link("omniclaw --profile rescue --json gateway status").json();
    assert_eq!(stale_of(&v["service"]), Vec::<String>::new(), "{v}");

    // The fix it names puts the unit right.
    via_link("omniclaw --profile rescue gateway install --force").expect_code(0);
    let v = via_link("omniclaw --profile rescue --json gateway status --deep").json();
    assert_eq!(stale_of(&v["service"]), Vec::<String>::new(), "{v}");

    // A unit an older OmniClaw wrote, without the condition on its binary.
    let text = std::fs::read_to_string(&unit_path).expect("unit");
    let older: String = text
        .lines()
        .filter(|l| !l.starts_with("ConditionPathExists="))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&unit_path, older).expect("rewrite unit");
    let r = via_link("omniclaw --profile rescue --json gateway status --deep");
    r.expect_code(1);
    let v = r.json();
    assert_eq!(
        stale_of(&v["service"]),
        ["its file differs from what `gateway install` writes now (an older OmniClaw wrote it, or it was edited)"],
        "{v}"
    );
    via_link("omniclaw --profile rescue gateway install --force").expect_code(0);
    let v = via_link("omniclaw --profile rescue --json gateway status --deep").json();
    assert_eq!(stale_of(&v["service"]), Vec::<String>::new(), "{v}");
}

const FAKE_LAUNCHCTL: &str = r#"#!/bin/sh
dir=$(dirname "$0")
echo "launchctl $*" >> "$dir/calls.log"
case "$1" in
  bootstrap)
    if [ -f "$dir/eio" ]; then
      [ "$(cat "$dir/eio")" = once ] && rm -f "$dir/eio"
      echo "Bootstrap failed: 5: Input/output error" >&2
      exit 5
    fi ;;
  print) case "$2" in */*/*) printf '\tstate = running\n\tpid = 777\n' ;; esac ;;
esac
exit 0
"#;

#[test]
fn launchd_bootstrap_is_retried_after_a_bootout() {
    let f = Fixture::new();
    main_and_rescue(&f);
    f.fake("launchctl", FAKE_LAUNCHCTL);
    let launchd = [("OMNICLAW_SERVICE_MANAGER", "launchd")];
    let bootstraps = |calls: &[String]| {
        calls
            .iter()
            .filter(|c| c.starts_with("launchctl bootstrap"))
            .count()
    };
    // The first bootstrap hits launchd still unloading: tried again.
    std::fs::write(f.bin.join("eio"), "once").expect("eio");
    f.run_env(&["--profile", "rescue", "gateway", "install"], &launchd)
        .expect_code(0)
        .expect_output("Installed launchd agent ai.omniclaw.rescue");
    assert_eq!(bootstraps(&f.calls()), 2);
    f.run_env(&["--profile", "rescue", "gateway", "uninstall"], &launchd)
        .expect_code(0);

    // It never passes: the hint, and the install is undone.
    std::fs::write(f.bin.join("eio"), "always").expect("eio");
    f.calls();
    let before = f.files();
    let r = f.run_env(&["--profile", "rescue", "gateway", "install"], &launchd);
    r.expect_code(1)
        .expect_output("still failed after 4 tries (Bootstrap failed: 5: Input/output error)")
        .expect_output("see the agent with `launchctl print gui/")
        .expect_output("/ai.omniclaw.rescue`, and try again in a few seconds")
        .expect_output("then: `omniclaw --profile rescue gateway install`")
        .expect_output("undone: the service files and the config were put back as they were");
    assert_eq!(before, f.files());
    let calls = f.calls();
    assert_eq!(bootstraps(&calls), 4, "{calls:?}");
    let last = calls.last().map(String::as_str).unwrap_or_default();
    assert!(
        last.starts_with("launchctl bootout gui/") && last.ends_with("/ai.omniclaw.rescue"),
        "the undo unloads it: {calls:?}"
    );
}

#[cfg(unix)]
#[test]
fn a_gateway_under_a_foreign_service_gets_advice_that_works() {
    let f = Fixture::new();
    f.gateway_only_rescue();
    let mut cmd = f.home.cmd();
    cmd.args(["--profile", "rescue", "gateway"])
        .env("OMNICLAW_SERVICE", "1");
    let gateway = omniclaw_tests::GatewayProc::spawn(cmd)
        .unwrap_or_else(|r| panic!("gateway did not start: {r:?}"));
    let r = f.run(&["--profile", "rescue", "gateway", "install"]);
    r.expect_code(1)
        .expect_output(&format!(
            "it is already running under a service this profile did not install here (pid {}, service)",
            gateway.pid()
        ))
        .expect_output("stop it with the service manager that runs it (`omniclaw gateway status --deep` lists");
    assert!(
        !r.stdout.contains("gateway stop`") && !r.stderr.contains("gateway stop`"),
        "`gateway stop` cannot stop it: {r:?}"
    );
    f.run(&["--profile", "rescue", "gateway", "stop"])
        .expect_code(1)
        .expect_output(
            "stop it with the service manager that runs it (`omniclaw gateway status --deep`",
        );
}

#[test]
fn install_help_shows_binary() {
    let home = Home::new();
    home.run(&["gateway", "install", "--help"])
        .expect_code(0)
        .expect_output("--binary <PATH>")
        .expect_output("The `omniclaw` binary the service runs");
}

#[test]
fn without_user_variables_the_no_bus_message_names_the_os_user() {
    let f = Fixture::new();
    main_and_rescue(&f);
    f.fake(
        "systemctl",
        "#!/bin/sh\necho 'Failed to connect to bus: No medium found' >&2\nexit 1\n",
    );
    let me = Command::new("id").arg("-un").output().expect("id -un");
    let me = String::from_utf8_lossy(&me.stdout).trim().to_string();
    let mut cmd = f.home.cmd();
    cmd.args(["--profile", "rescue", "gateway", "install"])
        .env("PATH", f.path_var())
        .env("OMNICLAW_SERVICE_MANAGER", "systemd")
        .env_remove("USER")
        .env_remove("LOGNAME");
    let out = cmd.output().expect("run");
    let r = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    r.expect_code(1)
        .expect_output(&format!("`loginctl enable-linger {me}`"))
        .expect_output(&format!("`machinectl shell {me}@`"));
    assert!(!r.stderr.contains("$USER"), "{}", r.stderr);
}

/// Every `base N` and `--port N` of a refusal for a clash names one port.
#[test]
fn a_clash_names_one_free_base() {
    let f = Fixture::new();
    main_and_rescue(&f);
    let r = f.run(&[
        "--profile",
        "rescue",
        "gateway",
        "install",
        "--port",
        "18790",
    ]);
    r.expect_code(2)
        .expect_output("its ports collide with other instances")
        .expect_output("a free base port is ");
    let text = format!("{}{}", r.stdout, r.stderr);
    let mut bases: Vec<&str> = ["base ", "--port "]
        .iter()
        .flat_map(|marker| {
            text.match_indices(marker)
                .map(|(i, m)| &text[i + m.len()..])
        })
        .map(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap_or("")
        })
        .filter(|n| !n.is_empty() && *n != "18790")
        .collect();
    bases.sort();
    bases.dedup();
    assert_eq!(bases.len(), 1, "{bases:?} in {text}");
}

/// A dry run shows the unit even when the install would refuse, with the
/// reason, and ends with the install's own exit code.
#[test]
fn a_dry_run_shows_the_unit_and_why_the_install_would_refuse() {
    let f = Fixture::new();
    f.gateway_only_rescue();
    let gateway = omniclaw_tests::GatewayProc::start(&f.home, &["--profile", "rescue", "gateway"]);
    f.calls();
    let dry = ["--profile", "rescue", "gateway", "install", "--dry-run"];
    f.run(&dry)
        .expect_code(1)
        .expect_output("Would write ~/.config/systemd/user/omniclaw-gateway-rescue.service:")
        .expect_output("ExecStart=")
        .expect_output("Would run:")
        .expect_output("The install would refuse, as it is now:")
        .expect_output(&format!(
            "it is already running from a terminal (pid {}, cli)",
            gateway.pid()
        ));
    let mut json_args = vec!["--json"];
    json_args.extend(dry);
    let v = f.run(&json_args).json();
    assert_eq!(v["ok"], false, "{v}");
    assert!(v["wouldRefuse"][0]
        .as_str()
        .is_some_and(|r| r.contains("already running from a terminal")));
    assert!(v["files"][0]["contents"]
        .as_str()
        .is_some_and(|c| c.contains("ExecStart=")));
    // Bad input on the command line stays bad input (exit 2), unit shown.
    f.run(&[
        "--profile",
        "rescue",
        "gateway",
        "install",
        "--dry-run",
        "--port",
        "1",
    ])
    .expect_code(2)
    .expect_output("Would write ~/.config/systemd/user/omniclaw-gateway-rescue.service:")
    .expect_output("port 1 is privileged");
    assert!(!f.home.path().join(".config").exists(), "no unit written");
    assert!(
        f.calls().iter().all(|c| c.contains("show")),
        "a dry run ran the manager"
    );
}

/// `--profile X remove`: refused while X runs; then its service goes
/// through the service manager, its keychain entries through the store,
/// its name from other profiles' rescue.targets through the config edit
/// path (not when it is the only target), and its state dir moves to a
/// backup beside it, whose path is said; the workspace stays.
#[test]
fn remove_takes_a_profile_off_and_keeps_a_backup() {
    let f = Fixture::new();
    // Setup picks the slots: four random bases could land within one
    // another's CDP range.
    let setup = |profile: &str| {
        f.run(&["--profile", profile, "setup"]).expect_code(0);
    };
    for p in ["rescue", "main", "watch", "solo"] {
        setup(p);
    }
    f.run(&["--profile", "rescue", "gateway", "install"])
        .expect_code(0);
    for (p, targets) in [("watch", "['rescue', 'main']"), ("solo", "['rescue']")] {
        f.run(&["--profile", p, "config", "set", "rescue.targets", targets])
            .expect_code(0);
    }
    let unit = f.unit("omniclaw-gateway-rescue.service");
    assert!(unit.is_file());
    let token_stored = |f: &Fixture| {
        f.run(&[
            "--profile",
            "rescue",
            "--json",
            "secrets",
            "status",
            "gateway.auth.token",
        ])
        .json()["secrets"][0]["stored"]
            .clone()
    };
    assert_eq!(token_stored(&f), true);

    // Refused while it runs; nothing changes.
    let gateway = omniclaw_tests::GatewayProc::start(&f.home, &["--profile", "rescue", "gateway"]);
    f.calls();
    let watch_before = f.home.read(".omniclaw-watch/omniclaw.json");
    f.run(&["--profile", "rescue", "remove"])
        .expect_code(1)
        .expect_output(&format!(
            "profile rescue is running (pid {}, cli), so it is not removed; nothing was changed: stop it first (`omniclaw --profile rescue gateway stop`)",
            gateway.pid()
        ));
    assert!(unit.is_file());
    assert_eq!(token_stored(&f), true);
    assert_eq!(watch_before, f.home.read(".omniclaw-watch/omniclaw.json"));
    assert_eq!(f.calls(), Vec::<String>::new(), "the manager was not asked");
    drop(gateway);

    // Not given a profile: nothing is removed by accident.
    f.run(&["remove"])
        .expect_code(2)
        .expect_output("name the profile to remove");

    let removed = f.run(&["--profile", "rescue", "--json", "remove"]);
    removed.expect_code(0);
    let v = removed.json();
    assert_eq!(v["service"]["name"], "omniclaw-gateway-rescue.service");
    let calls = f.calls();
    assert!(
        calls.contains(
            &"systemctl --user disable --now omniclaw-gateway-rescue.service".to_string()
        ),
        "{calls:?}"
    );
    assert!(!unit.exists(), "the unit file is removed");
    assert_eq!(
        v["secrets"],
        serde_json::json!({"store": "keychain", "removed": ["gateway.auth.token"]})
    );
    assert_eq!(token_stored(&f), false, "the keychain entry is removed");
    assert_eq!(
        v["rescueTargets"],
        serde_json::json!([{"profile": "watch", "targets": ["main"]}])
    );
    let watch = f.run(&[
        "--profile",
        "watch",
        "--json",
        "config",
        "get",
        "rescue.targets",
    ]);
    assert_eq!(
        watch.json()["value"],
        serde_json::json!(["main"]),
        "{}",
        watch.stdout
    );
    assert!(
        f.home
            .path()
            .join(".omniclaw-watch/omniclaw.json.bak")
            .is_file(),
        "edited through the config edit path (it keeps a .bak)"
    );
    let solo = f.home.read(".omniclaw-solo/omniclaw.json");
    assert!(solo.contains("rescue"), "its only target stays: {solo}");
    assert!(
        v["notes"]
            .to_string()
            .contains("rescue.targets of profile solo still names rescue"),
        "{v}"
    );
    let backup = std::path::PathBuf::from(v["backup"]["stateDir"].as_str().expect("backup"));
    assert_eq!(backup.parent(), Some(f.home.path()), "beside the state dir");
    assert!(backup
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with(".omniclaw-rescue.removed-")));
    assert!(backup.join("omniclaw.json").is_file(), "the config is kept");
    assert!(!f.home.path().join(".omniclaw-rescue").exists());
    assert!(
        f.home.path().join(".omniclaw/workspace-rescue").is_dir(),
        "the workspace is never touched"
    );
    let status = f.run(&["--json", "status"]).json();
    assert!(
        !status["profiles"].to_string().contains("\"rescue\""),
        "{status}"
    );

    // In words, for a profile without a service.
    f.run(&["--profile", "solo", "remove"])
        .expect_code(0)
        .expect_output("✓ Removed profile solo")
        .expect_output("service    none was installed")
        .expect_output("backup     ~/.omniclaw-solo.removed-")
        .expect_output("workspace  ~/.omniclaw/workspace-solo left as it is");
}
