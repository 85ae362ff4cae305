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
        home.run(&["doctor"]).expect_code(1).expect_output(fragment);
        home.run(&["ports"]);
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

#[test]
fn state_dir_that_cannot_be_created() {
    let home = Home::new();
    home.write("blocker", "a file where a directory should be");
    let before = home.snapshot();
    home.run_env(&["setup"], &[("OMNICLAW_STATE_DIR", "~/blocker/state")])
        .expect_code(1)
        .expect_output("cannot create the state dir")
        .expect_output("blocker/state");
    assert_eq!(before, home.snapshot());
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
    .expect_output("is already used by profile main");
    assert_eq!(before, home.snapshot());
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
