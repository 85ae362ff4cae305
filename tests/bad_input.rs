//! Bad input gets a clear error, the right exit code, and changes nothing.

use omniclaw_tests::Home;

/// Runs `args` in a home prepared with a main profile and checks the exit
/// code, a fragment of the message, and that no file changed.
fn check(args: &[&str], env: &[(&str, &str)], code: i32, fragment: &str) {
    let home = Home::new();
    home.run(&["--profile", "main", "setup"]).expect_code(0);
    let before = home.snapshot();
    home.run_env(args, env)
        .expect_code(code)
        .expect_output(fragment);
    assert_eq!(before, home.snapshot(), "{args:?} changed files");
}

#[test]
fn profile_names() {
    check(
        &["--profile", "-x", "setup"],
        &[],
        2,
        "profile name \"-x\" is invalid",
    );
    check(
        &["--profile", "a b", "setup"],
        &[],
        2,
        "profile name \"a b\" is invalid",
    );
    let long = "a".repeat(65);
    check(
        &["--profile", &long, "setup"],
        &[],
        2,
        "is 65 characters long",
    );
    check(&["--profile", "", "setup"], &[], 2, "profile name is empty");
    check(
        &["--profile"],
        &[],
        2,
        "a value is required for '--profile <NAME>'",
    );
    // `--profile` without a name: the next word is not taken as one.
    check(
        &["--profile", "setup"],
        &[],
        2,
        "error: --profile needs a profile name before the command: `omniclaw --profile NAME setup`",
    );
    check(
        &["--profile", "--json", "ports"],
        &[],
        2,
        "--profile needs a profile name before the command: `omniclaw --profile NAME --json ports`",
    );
    // A profile may still be named like a command when a command follows.
    let home = Home::new();
    home.run(&["--profile", "setup", "setup", "--secrets-file"])
        .expect_code(0)
        .expect_output("Set up profile setup");
    check(
        &["setup"],
        &[("OMNICLAW_PROFILE", "a/b")],
        2,
        "OMNICLAW_PROFILE: profile name \"a/b\" is invalid",
    );
}

#[test]
fn ports() {
    check(
        &["--profile", "x", "setup", "--port", "0"],
        &[],
        2,
        "port 0 is not allowed",
    );
    check(
        &["--profile", "x", "setup", "--port", "65536"],
        &[],
        2,
        "65536 is not a port",
    );
    check(
        &["--profile", "x", "setup", "--port", "abc"],
        &[],
        2,
        "\"abc\" is not a port",
    );
    check(
        &["--profile", "x", "setup", "--port", "65500"],
        &[],
        2,
        "base port 65500 leaves no room: the CDP range would end at 65610; choose a base of 65425 or lower",
    );
    check(
        &["--profile", "x", "setup"],
        &[("OMNICLAW_PROFILE", "x"), ("OMNICLAW_GATEWAY_PORT", "x1")],
        2,
        "OMNICLAW_GATEWAY_PORT=\"x1\" is not a port",
    );
    check(
        &[
            "--profile",
            "main",
            "config",
            "set",
            "gateway.port",
            "70000",
        ],
        &[],
        2,
        "gateway.port: expected an integer 1–65535, got 70000",
    );
}

#[test]
fn rescue_watch_and_targets() {
    let home = Home::new();
    home.run(&["--profile", "main", "setup"]).expect_code(0);
    home.run(&["--profile", "rescue", "setup"]).expect_code(0);
    let cases: &[(&str, &str, &str)] = &[
        (
            "rescue.watch.intervalSeconds",
            "0",
            "rescue.watch.intervalSeconds: expected a whole number, 1 or more, got 0 (",
        ),
        (
            "rescue.watch.intervalSeconds",
            "-5",
            "rescue.watch.intervalSeconds: expected a whole number, 1 or more, got -5 (",
        ),
        (
            "rescue.watch.failAfter",
            "0",
            "rescue.watch.failAfter: expected a whole number, 1 or more, got 0 (",
        ),
        (
            "rescue.watch.maxRepairsPerHour",
            "0",
            "rescue.watch.maxRepairsPerHour: expected a whole number, 1 or more, got 0 (",
        ),
        (
            "rescue.watch.actions",
            "['restart', 'reboot']",
            "rescue.watch.actions[1]: invalid value \"reboot\": expected one of \"restart\", \"rollback\" (",
        ),
        (
            "rescue.targets",
            "['main', 'ghost']",
            "rescue.targets[1]: no profile \"ghost\" on this machine (profiles: main, rescue); set it up first (`omniclaw --profile ghost setup`) or leave it out (",
        ),
    ];
    for (key, value, fragment) in cases {
        let before = home.snapshot();
        home.config_set("rescue", key, value)
            .expect_code(2)
            .expect_output(fragment);
        assert_eq!(before, home.snapshot(), "{key} = {value} changed files");
    }
    // The same keys with values that work are written.
    home.config_set("rescue", "rescue.targets", "['main']")
        .expect_code(0);
    home.config_set(
        "rescue",
        "rescue.watch",
        "{ enabled: true, intervalSeconds: 5, failAfter: 2, actions: ['restart', 'rollback'] }",
    )
    .expect_code(0);
    home.run(&["--profile", "rescue", "config", "validate"])
        .expect_code(0);
}

#[test]
fn config_files() {
    let cases: &[(&str, &str)] = &[
        ("{ gateway: { port: 18789 ", "syntax error"),
        (
            "{ gateway: { prot: 18789 } }",
            "gateway.prot: unknown key \"prot\"; did you mean \"port\"?",
        ),
        (
            "{ gateway: { auth: { mode: \"token\", tokn: 1 } } }",
            "gateway.auth.tokn: unknown key",
        ),
        (
            "{ browser: { profiles: { work: { cdpPrt: 1 } } } }",
            "browser.profiles.work.cdpPrt: unknown key",
        ),
        (
            "{ gateway: { port: \"18789\" } }",
            "gateway.port: expected an integer 1–65535",
        ),
        ("{ gateway: { bind: \"everywhere\" } }", "gateway.bind:"),
        ("{ extra: 1 }", "extra: unknown key"),
        // A streaming mode OpenClaw refuses too (its legacy scalar forms are
        // read, with a warning; see below).
        (
            "{ channels: { telegram: { streaming: { mode: \"fast\" } } } }",
            "channels.telegram.streaming.mode: invalid value \"fast\": expected one of \"off\", \"partial\", \"block\", \"progress\"",
        ),
        (
            "{ channels: { telegram: { streaming: 1 } } }",
            "channels.telegram.streaming: expected an object { mode, chunkMode, preview, progress, block }",
        ),
    ];
    for (text, fragment) in cases {
        let home = Home::new();
        home.run(&["--profile", "main", "setup"]).expect_code(0);
        home.write(".omniclaw-main/omniclaw.json", text);
        let before = home.snapshot();
        home.run(&["--profile", "main", "config", "validate"])
            .expect_code(1)
            .expect_output(fragment);
        // Setup refuses to touch it, and names the way out.
        home.run(&["--profile", "main", "setup"])
            .expect_code(1)
            .expect_output("is invalid, so setup leaves it untouched")
            .expect_output("doctor");
        // Diagnostics still run on it.
        let doctor = home.run(&["doctor"]);
        doctor.expect_code(1).expect_output(fragment);
        let ports = home.run(&["ports"]);
        if *fragment == "syntax error" {
            // `config set` refuses a file that does not parse: the fix is an edit.
            doctor
                .expect_output("fix: edit ~/.omniclaw-main/omniclaw.json at line 1, column 12;")
                .expect_output("`omniclaw --profile main config validate`");
            ports
                .expect_code(1)
                .expect_output("main: ports unknown — ~/.omniclaw-main/omniclaw.json does not parse: syntax error")
                .expect_output("fix: edit ~/.omniclaw-main/omniclaw.json at 1:12, then `omniclaw --profile main config validate`");
            assert!(!ports.stdout.contains("No conflicts"), "{}", ports.stdout);
            let json = home.run(&["ports", "--json"]);
            json.expect_code(1);
            let v = json.json();
            assert_eq!(v["ok"], false);
            assert_eq!(v["problems"][0]["kind"], "portsUnknown");
            assert_eq!(v["problems"][0]["profiles"][0], "main");
        } else {
            // It parsed: its ports are known and compared.
            ports.expect_code(0).expect_output("No conflicts.");
        }
        assert_eq!(before, home.snapshot(), "{text}");
    }
}

#[test]
fn every_error_is_reported_with_line_and_column() {
    let home = Home::new();
    home.run(&["--profile", "main", "setup"]).expect_code(0);
    home.write(
        ".omniclaw-main/omniclaw.json",
        "{\n  // comment\n  gateway: { port: 0, bind: 'lan', },\n  logging: { level: 'loud' },\n  nope: true,\n}\n",
    );
    let run = home.run(&["--profile", "main", "config", "validate", "--json"]);
    run.expect_code(1);
    let v = run.json();
    let errors = v["errors"].as_array().expect("errors");
    let paths: Vec<&str> = errors.iter().filter_map(|e| e["path"].as_str()).collect();
    assert_eq!(paths, ["gateway.port", "logging.level", "nope"]);
    assert_eq!(errors[0]["line"], 3);
    assert_eq!(errors[2]["line"], 5);
    let text = home.run(&["--profile", "main", "config", "validate"]);
    text.expect_output("gateway.port:").expect_output("(3:");
}

#[test]
fn config_that_is_a_directory() {
    let home = Home::new();
    std::fs::create_dir_all(home.path().join(".omniclaw-main/omniclaw.json")).expect("mkdir");
    let before = home.snapshot();
    home.run(&["--profile", "main", "setup"])
        .expect_code(1)
        .expect_output("is a directory, not a config file");
    home.run(&["--profile", "main", "config", "validate"])
        .expect_code(1)
        .expect_output("is a directory");
    assert_eq!(before, home.snapshot());
}

#[cfg(unix)]
#[test]
fn unreadable_config() {
    use std::os::unix::fs::PermissionsExt;
    let home = Home::new();
    home.run(&["--profile", "main", "setup"]).expect_code(0);
    let p = home.path().join(".omniclaw-main/omniclaw.json");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o000)).expect("chmod");
    if std::fs::read(&p).is_ok() {
        eprintln!("skipped: running with privileges that read any file (root)");
        return;
    }
    home.run(&["--profile", "main", "setup"])
        .expect_code(1)
        .expect_output("permission denied");
}

/// Configs that cannot be read whoever runs the tests (root included):
/// every command names the file and the way out, and changes nothing.
#[cfg(unix)]
#[test]
fn configs_that_cannot_be_read() {
    /// Turns the config at the path into an unreadable one.
    type Make = dyn Fn(&std::path::Path);
    let cases: &[(&str, &Make, &str)] = &[
        (
            "a symbolic link that loops",
            &|p| std::os::unix::fs::symlink("omniclaw.json", p).expect("symlink"),
            "is a symbolic link that cannot be followed",
        ),
        (
            "bytes that are not UTF-8",
            &|p| std::fs::write(p, b"{ gateway: { port: 19020 } } \xff\xfe").expect("write"),
            "is not UTF-8 text (invalid byte at offset 29)",
        ),
    ];
    for (what, make, fragment) in cases {
        let home = Home::new();
        home.run(&["--profile", "main", "setup", "--secrets-file"])
            .expect_code(0);
        let p = home.path().join(".omniclaw-main/omniclaw.json");
        std::fs::remove_file(&p).expect("rm");
        make(&p);
        let before = home.snapshot();
        let file = p.display().to_string();
        home.run(&["--profile", "main", "setup"])
            .expect_code(1)
            .expect_output(&file)
            .expect_output(fragment)
            .expect_output("setup changed nothing");
        home.run(&["--profile", "main", "config", "validate"])
            .expect_code(1)
            .expect_output(&file)
            .expect_output(fragment);
        // The reports show the home as `~`, as everywhere else.
        home.run(&["ports"])
            .expect_code(1)
            .expect_output(&format!(
                "main: ports unknown — ~/.omniclaw-main/omniclaw.json {fragment}"
            ))
            .expect_output("`omniclaw --profile main config validate`");
        home.run(&["doctor"])
            .expect_code(1)
            .expect_output(&format!("✗ ~/.omniclaw-main/omniclaw.json {fragment}"))
            .expect_output("then `omniclaw --profile main config validate`");
        assert_eq!(before, home.snapshot(), "{what}");
    }
}

#[test]
fn state_dir_that_cannot_be_created() {
    for flags in [&["setup"][..], &["--secrets-file", "setup"][..]] {
        let home = Home::new();
        home.write("blocker", "a file where a directory should be");
        let before = home.snapshot();
        home.run_env(
            flags,
            &[
                ("OMNICLAW_PROFILE", "e"),
                ("OMNICLAW_STATE_DIR", "~/blocker/state"),
            ],
        )
        .expect_code(1)
        .expect_output("cannot create the state dir ~/blocker/state: ")
        .expect_output(
            "point OMNICLAW_STATE_DIR at a writable directory, or drop it to use ~/.omniclaw-e",
        );
        assert_eq!(before, home.snapshot(), "{flags:?}");
        // No token was stored for it anywhere: with the dir possible now,
        // its store holds nothing.
        std::fs::remove_file(home.path().join("blocker")).expect("rm");
        let st = home.run_env(
            &["secrets", "status", "gateway.auth.token", "--json"],
            &[
                ("OMNICLAW_PROFILE", "e"),
                ("OMNICLAW_STATE_DIR", "~/blocker/state"),
            ],
        );
        assert_eq!(
            st.json()["secrets"][0]["stored"],
            false,
            "{flags:?}: {st:?}"
        );
        assert!(!home.path().join("blocker/state").exists());

        let before = home.snapshot();
        home.run_env(flags, &[("OMNICLAW_STATE_DIR", "/proc/omniclaw-nope")])
            .expect_code(1)
            .expect_output("cannot create the state dir /proc/omniclaw-nope: ")
            .expect_output(
                "point OMNICLAW_STATE_DIR at a writable directory, or drop it to use ~/.omniclaw",
            );
        assert_eq!(before, home.snapshot(), "{flags:?}");
    }
}

#[test]
fn bases_whose_ports_pass_65535() {
    let home = Home::new();
    home.run(&["--profile", "a", "setup", "--secrets-file"])
        .expect_code(0);
    let before = home.snapshot();
    home.run(&["--profile", "a", "config", "set", "gateway.port", "65500"])
        .expect_code(2)
        .expect_output("gateway.port: base port 65500 leaves no room: the CDP range would end at 65610; choose a base of 65425 or lower (");
    assert_eq!(before, home.snapshot(), "a refused edit writes nothing");
    // Browser off: the canvas is the farthest port and fits.
    home.run(&[
        "--profile",
        "a",
        "config",
        "set",
        "browser.enabled",
        "false",
    ])
    .expect_code(0);
    home.run(&["--profile", "a", "config", "set", "gateway.port", "65500"])
        .expect_code(0);
    home.run(&["--profile", "a", "config", "validate"])
        .expect_code(0);
    home.run(&["--profile", "a", "config", "unset", "browser.enabled"])
        .expect_code(2)
        .expect_output("gateway.port: base port 65500 leaves no room");

    // Written by hand: validate, ports and doctor say so, with a fix that works.
    let cfg = home.read(".omniclaw-a/omniclaw.json");
    home.write(
        ".omniclaw-a/omniclaw.json",
        &cfg.replace("\"enabled\": false", "\"enabled\": true"),
    );
    home.run(&["--profile", "a", "config", "validate"])
        .expect_code(1)
        .expect_output("gateway.port: base port 65500 leaves no room: the CDP range would end at 65610; choose a base of 65425 or lower (");
    let fix = "fix: move a to base 65425: omniclaw --profile a config set gateway.port 65425";
    let ports = home.run(&["ports"]);
    ports
        .expect_code(1)
        .expect_output("a: base port 65500 leaves no room")
        .expect_output(fix);
    assert!(
        !ports.stdout.contains("65511"),
        "no clipped CDP range row:\n{}",
        ports.stdout
    );
    let json = home.run(&["ports", "--json"]);
    json.expect_code(1);
    assert_eq!(
        json.json()["problems"][0]["fix"],
        "move a to base 65425: omniclaw --profile a config set gateway.port 65425"
    );
    home.run(&["doctor"]).expect_code(1).expect_output(fix);
    home.shell("omniclaw --profile a config set gateway.port 65425")
        .expect_code(0);
    home.run(&["ports"]).expect_code(0);
}

#[test]
fn setup_refusing_a_collision_gives_setup_commands() {
    let home = Home::new();
    home.run(&[
        "--profile",
        "a",
        "setup",
        "--port",
        "19020",
        "--secrets-file",
    ])
    .expect_code(0);
    let before = home.snapshot();
    let run = home.run(&["--profile", "b", "setup", "--port", "19020"]);
    run.expect_code(2)
        .expect_output("b base 19020 collides with a's base 19020")
        .expect_output("a free base port is ");
    assert!(
        !run.stderr.contains("config set"),
        "b has no config yet:\n{}",
        run.stderr
    );
    // Every fix names the same free base, as a setup command that works.
    let free = run
        .stderr
        .split("a free base port is ")
        .nth(1)
        .and_then(|t| t.split(':').next())
        .expect("hint")
        .to_string();
    let fix = format!("fix: move b to base {free}: omniclaw --profile b setup --port {free}");
    assert_eq!(run.stderr.matches(&fix).count(), 4, "{}", run.stderr);
    assert_eq!(before, home.snapshot());
    home.shell(&format!(
        "omniclaw --profile b --secrets-file setup --port {free}"
    ))
    .expect_code(0);
    home.run(&["ports"]).expect_code(0);
}

#[test]
fn two_profiles_pointed_at_one_state_dir() {
    let home = Home::new();
    home.run(&["--profile", "main", "setup"]).expect_code(0);
    let before = home.snapshot();
    home.run_env(
        &["setup"],
        &[
            ("OMNICLAW_PROFILE", "rescue"),
            ("OMNICLAW_STATE_DIR", "~/.omniclaw-main"),
        ],
    )
    .expect_code(2)
    .expect_output("the state dir ~/.omniclaw-main belongs to profile main")
    .expect_output("unset OMNICLAW_STATE_DIR");
    // Same config file for two profiles.
    home.run_env(
        &["setup"],
        &[
            ("OMNICLAW_PROFILE", "rescue"),
            ("OMNICLAW_CONFIG_PATH", "~/.omniclaw-main/omniclaw.json"),
        ],
    )
    .expect_code(2)
    .expect_output("is already used by profile main")
    .expect_output("unset OMNICLAW_CONFIG_PATH or point it at a file of this profile's own");
    assert_eq!(before, home.snapshot());
}

/// What `setup` refuses, the diagnostics report and the gateway refuses to
/// run: profile c on profile b's state dir (and so on b's config and secrets).
#[test]
fn diagnostics_and_the_gateway_catch_another_profiles_state_dir() {
    let home = Home::new();
    home.run(&["--profile", "b", "--secrets-file", "setup"])
        .expect_code(0);
    let shared = [
        ("OMNICLAW_PROFILE", "c"),
        ("OMNICLAW_STATE_DIR", "~/.omniclaw-b"),
    ];
    let before = home.snapshot();
    let owned = "the state dir ~/.omniclaw-b belongs to profile b (see its profile.json), not to c";
    let fix = "unset OMNICLAW_STATE_DIR or point it at a directory of this profile's own";
    home.run_env(&["doctor"], &shared)
        .expect_code(1)
        .expect_output(&format!("✗ {owned}"))
        .expect_output(fix);
    home.run_env(&["ports"], &shared)
        .expect_code(1)
        .expect_output(owned)
        .expect_output(fix);
    let json = home.run_env(&["ports", "--json"], &shared);
    json.expect_code(1);
    let problems = json.json()["problems"].clone();
    assert!(
        problems.as_array().is_some_and(|p| p
            .iter()
            .any(|p| p["kind"] == "ownership" && p["profiles"][0] == "c")),
        "{problems}"
    );
    home.run_env(&["gateway"], &shared)
        .expect_code(2)
        .expect_output(&format!("refusing to start: {owned}"))
        .expect_output(fix);
    assert_eq!(before, home.snapshot(), "nothing was written for c");
}

#[test]
fn inherited_state_dir_does_not_redirect_an_explicit_profile() {
    let home = Home::new();
    home.run(&["--profile", "main", "setup"]).expect_code(0);
    let run = home.run_env(
        &["--profile", "rescue", "setup", "--json"],
        &[("OMNICLAW_STATE_DIR", "~/.omniclaw-main")],
    );
    run.expect_code(0)
        .expect_output("ignoring inherited OMNICLAW_STATE_DIR");
    assert_eq!(
        run.json()["stateDir"],
        home.path()
            .join(".omniclaw-rescue")
            .to_string_lossy()
            .as_ref()
    );
}

#[test]
fn a_capped_gateway_with_an_unpriced_model_is_valid_with_a_warning() {
    let home = Home::new();
    home.run(&["--profile", "main", "setup"]).expect_code(0);
    let path = ".omniclaw-main/omniclaw.json";
    let text = std::fs::read_to_string(home.path().join(path)).expect("config");
    let extra = "models: { providers: { ollama: {} } },\n  agents: { defaults: { model: 'ollama/llama3.1:8b' } },\n  budget: { dailyUsd: 1 },\n";
    let capped = text.replacen('{', &format!("{{\n  {extra}"), 1);
    home.write(path, &capped);
    home.run(&["--profile", "main", "config", "validate"])
        .expect_code(0)
        .expect_output("valid, 1 warning")
        .expect_output("warning: agents.defaults.model: \"ollama/llama3.1:8b\" has no cost");
    let json = home.run(&["--profile", "main", "config", "validate", "--json"]);
    json.expect_code(0);
    let v = json.json();
    assert_eq!(v["ok"], true);
    assert_eq!(v["warnings"][0]["path"], "agents.defaults.model");
    home.run(&["doctor"])
        .expect_output("config warning: agents.defaults.model:");
}

#[test]
fn openclaw_s_legacy_streaming_forms_are_read_with_a_warning() {
    let home = Home::new();
    home.run(&["--profile", "main", "setup"]).expect_code(0);
    let path = ".omniclaw-main/omniclaw.json";
    let text = std::fs::read_to_string(home.path().join(path)).expect("config");
    let legacy = text.replacen(
        '{',
        "{\n  channels: { telegram: { enabled: false, streaming: true } },\n",
        1,
    );
    home.write(path, &legacy);
    home.run(&["--profile", "main", "config", "validate"])
        .expect_code(0)
        .expect_output("valid, 1 warning")
        .expect_output(
            "warning: channels.telegram.streaming: `streaming: true` is OpenClaw's legacy form, read as { mode: \"partial\" }",
        );
    home.run(&["doctor"])
        .expect_output("config warning: channels.telegram.streaming:");
}
