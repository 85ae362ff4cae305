//! The manual's commands, run verbatim against a temporary home.

use omniclaw_tests::{free_base, GatewayProc, Home};

#[test]
fn profiles_setup_as_in_the_manual() {
    let home = Home::new();
    home.shell("omniclaw --profile main setup")
        .expect_code(0)
        .expect_output("Set up profile main");
    home.shell("omniclaw --profile rescue setup")
        .expect_code(0)
        .expect_output("Set up profile rescue");

    let h = home.path();
    for (dir, port) in [(".omniclaw-main", 18789), (".omniclaw-rescue", 19789)] {
        let cfg = h.join(dir).join("omniclaw.json");
        assert!(cfg.is_file(), "{} exists", cfg.display());
        let got = home.run(&["--profile", &dir[10..], "config", "get", "gateway.port"]);
        got.expect_code(0);
        assert_eq!(got.stdout.trim(), port.to_string());
    }
    assert!(h.join(".omniclaw/workspace-main").is_dir());
    assert!(h.join(".omniclaw/workspace-rescue").is_dir());
    for dir in [".omniclaw-main", ".omniclaw-rescue", ".omniclaw"] {
        omniclaw_tests::assert_mode(&h.join(dir), 0o700);
    }

    // A second run changes nothing.
    let before = home.snapshot();
    home.shell("omniclaw --profile rescue setup")
        .expect_code(0)
        .expect_output("Already set up");
    assert_eq!(before, home.snapshot());

    // The quick checks' isolation side: no conflicts, all checks pass.
    let ports = home.run(&["ports", "--json"]);
    ports.expect_code(0);
    let v = ports.json();
    assert_eq!(v["ok"], true);
    assert_eq!(
        v["rows"].as_array().map(Vec::len),
        Some(8),
        "4 surfaces x 2 profiles"
    );
    home.run(&["doctor"])
        .expect_code(0)
        .expect_output("All checks passed.");
}

#[test]
fn env_example_resolves_to_its_own_paths() {
    let home = Home::new();
    let main = home.shell(
        "OMNICLAW_CONFIG_PATH=~/.omniclaw/main.json \\\nOMNICLAW_STATE_DIR=~/.omniclaw-main \\\nomniclaw setup --json",
    );
    main.expect_code(0);
    let rescue = home.shell(
        "OMNICLAW_CONFIG_PATH=~/.omniclaw/rescue.json \\\nOMNICLAW_STATE_DIR=~/.omniclaw-rescue \\\nomniclaw setup --port 19001 --json",
    );
    rescue.expect_code(0);
    let h = home.path();
    let (m, r) = (main.json(), rescue.json());
    assert_eq!(m["profile"], "main");
    assert_eq!(
        m["stateDir"],
        h.join(".omniclaw-main").to_string_lossy().as_ref()
    );
    assert_eq!(
        m["configPath"],
        h.join(".omniclaw/main.json").to_string_lossy().as_ref()
    );
    assert_eq!(
        m["workspace"],
        h.join(".omniclaw/workspace-main")
            .to_string_lossy()
            .as_ref()
    );
    assert_eq!(r["profile"], "rescue");
    assert_eq!(
        r["stateDir"],
        h.join(".omniclaw-rescue").to_string_lossy().as_ref()
    );
    assert_eq!(
        r["configPath"],
        h.join(".omniclaw/rescue.json").to_string_lossy().as_ref()
    );
    assert_eq!(r["port"], 19001);
    assert!(h.join(".omniclaw/main.json").is_file());
    assert!(
        !h.join(".omniclaw-main/omniclaw.json").exists(),
        "the config went where the variable said"
    );

    // Later commands find the config again through the state dir's marker.
    let got = home.run(&["--profile", "rescue", "config", "get", "gateway.port"]);
    assert_eq!(got.stdout.trim(), "19001");
    home.run(&["ports"])
        .expect_code(0)
        .expect_output("No conflicts.");
}

/// The env example run on a profile set up by name: its config is not at
/// the path the variables name yet, and the hint is a command that writes
/// it there (the variables kept), after which the same line starts.
#[test]
fn env_example_without_its_config_points_at_a_setup_with_the_same_variables() {
    let home = Home::new();
    home.shell("omniclaw --profile main setup").expect_code(0);
    let vars =
        "OMNICLAW_CONFIG_PATH=~/.omniclaw/main.json \\\nOMNICLAW_STATE_DIR=~/.omniclaw-main \\\n";
    let run = home.shell(&format!("{vars}omniclaw gateway --port 18789"));
    let setup = "OMNICLAW_STATE_DIR=~/.omniclaw-main OMNICLAW_CONFIG_PATH=~/.omniclaw/main.json omniclaw setup";
    run.expect_code(2)
        .expect_output(&format!("(`{setup}` writes one)"))
        .expect_output(&format!(
            "no gateway token for profile main: there is no config at ~/.omniclaw/main.json yet: `{setup}` writes one and generates the token"
        ));
    assert!(
        !run.stderr.contains("--profile main"),
        "a --profile command ignores the variables: {}",
        run.stderr
    );
    home.shell(setup)
        .expect_code(0)
        .expect_output("Start it:    OMNICLAW_STATE_DIR=~/.omniclaw-main OMNICLAW_CONFIG_PATH=~/.omniclaw/main.json omniclaw gateway");
    assert!(home.path().join(".omniclaw/main.json").is_file());
    let cmd = home.shell_cmd(&format!(
        "{vars}exec omniclaw gateway --port {}",
        free_base()
    ));
    let gw = GatewayProc::spawn(cmd).unwrap_or_else(|r| panic!("gateway did not start: {r:?}"));
    assert!(
        gw.output.contains("config           ~/.omniclaw/main.json"),
        "{}",
        gw.output
    );
}

#[test]
fn rescue_guide_port_spacing_of_twenty_is_refused_with_the_real_overlap() {
    let home = Home::new();
    home.run(&["--profile", "main", "setup"]).expect_code(0);
    let before = home.snapshot();
    // "leave at least 20 ports": 18809 still lies in main's CDP range.
    home.run(&["--profile", "rescue", "setup", "--port", "18809"])
        .expect_code(2)
        .expect_output("rescue base 18809 lies in main's CDP range 18800–18899")
        .expect_output("setup changed nothing");
    assert_eq!(before, home.snapshot());
    home.run(&["--profile", "rescue", "setup", "--port", "19789"])
        .expect_code(0);
}

/// `omniclaw --profile main setup`, verbatim, on a machine where no OS
/// keychain can be reached (no session bus): the token goes to the
/// profile's 0600 secrets file, and the gateway and `health` then run
/// without any flag.
#[test]
fn setup_without_a_keychain_keeps_the_token_in_the_secrets_file() {
    let home = Home::new();
    let no_bus = "DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent/omniclaw-no-bus";
    home.shell(&format!("{no_bus} omniclaw --profile main setup"))
        .expect_code(0)
        .expect_output("Set up profile main")
        .expect_output("token      generated into ~/.omniclaw-main/secrets.json (mode 0600, readable by this user only): no OS keychain is reachable (");
    let file = home.path().join(".omniclaw-main/secrets.json");
    omniclaw_tests::assert_mode(&file, 0o600);
    let secrets: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("json");
    let token = secrets["gateway.auth.token"]
        .as_str()
        .expect("token")
        .to_string();
    assert_eq!(token.len(), 48);
    let config = home.read(".omniclaw-main/omniclaw.json");
    assert!(!config.contains(&token), "the token reached the config");
    assert!(
        config.contains("keychain"),
        "the config refers to the store"
    );

    home.shell(&format!("{no_bus} omniclaw --profile main doctor"))
        .expect_code(0)
        .expect_output("✓ secrets in ~/.omniclaw-main/secrets.json (mode 0600)");
    let mut cmd = home.shell_cmd(&format!("{no_bus} exec omniclaw --profile main gateway"));
    cmd.env(
        "DBUS_SESSION_BUS_ADDRESS",
        "unix:path=/nonexistent/omniclaw-no-bus",
    );
    let _gw = GatewayProc::spawn(cmd).unwrap_or_else(|r| panic!("gateway did not start: {r:?}"));
    home.shell(&format!("{no_bus} omniclaw --profile main health"))
        .expect_code(0);
}

/// Without a keychain, `doctor` does not claim the keychain holds a
/// profile's secrets.
#[test]
fn doctor_tells_an_unreachable_keychain() {
    let home = Home::new();
    // The config setup writes, keeping the token in the keychain, whether
    // or not a keychain is reachable while this test runs.
    home.write(
        ".omniclaw-main/omniclaw.json",
        &format!(
            "{{ gateway: {{ port: {}, auth: {{ token: {{ source: 'keychain' }} }} }} }}",
            free_base()
        ),
    );
    let run = home.run_env(
        &["--profile", "main", "doctor"],
        &[(
            "DBUS_SESSION_BUS_ADDRESS",
            "unix:path=/nonexistent/omniclaw-no-bus",
        )],
    );
    run.expect_code(1)
        .expect_output("✗ no OS keychain is reachable (")
        .expect_output("--secrets-file secrets set NAME");
    assert!(
        !run.stdout.contains("secrets in the OS keychain"),
        "{}",
        run.stdout
    );
}

/// A reader that stops early (`omniclaw ports | head -3`) ends the command
/// quietly, whatever the command prints.
#[test]
fn a_closed_stdout_ends_quietly() {
    let home = Home::new();
    home.run(&["--profile", "main", "setup", "--secrets-file"])
        .expect_code(0);
    for args in [
        &["ports"][..],
        &["ports", "--json"],
        &["doctor"],
        &["config", "schema"],
    ] {
        // The reading end is closed before the command runs: its first
        // write fails.
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let out = home
            .cmd()
            .args(args)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(stderr, "", "{args:?}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    }
    // And through a shell pipe, as typed.
    let run = home.shell("omniclaw ports | head -1; omniclaw config schema | head -1");
    run.expect_code(0);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}
