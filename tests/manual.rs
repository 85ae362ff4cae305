//! The manual's commands, run verbatim against a temporary home.

use omniclaw_tests::{free_base, GatewayProc, Home};

#[test]
fn profiles_setup_as_in_the_manual() {
    let _ports = omniclaw_tests::well_known_ports();
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
    let _ports = omniclaw_tests::well_known_ports();
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
    let _ports = omniclaw_tests::well_known_ports();
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
    let _ports = omniclaw_tests::well_known_ports();
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
    let _ports = omniclaw_tests::well_known_ports();
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
    let _ports = omniclaw_tests::well_known_ports();
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
    let _ports = omniclaw_tests::well_known_ports();
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

/// The text of `docs/multiple-gateways.md` or `README.md`.
fn doc(rel: &str) -> String {
    std::fs::read_to_string(omniclaw_tests::desktop::repo_root().join(rel))
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The fenced code blocks of `text` under the heading `heading`, up to the
/// next heading of the same level or higher.
fn blocks_under(text: &str, heading: &str) -> Vec<String> {
    let level = heading.chars().take_while(|c| *c == '#').count();
    let start = text
        .find(&format!("{heading}\n"))
        .unwrap_or_else(|| panic!("no heading {heading:?}"));
    let mut section = Vec::new();
    for line in text[start..].lines().skip(1) {
        let hashes = line.chars().take_while(|c| *c == '#').count();
        if hashes > 0 && hashes <= level && line.chars().nth(hashes) == Some(' ') {
            break;
        }
        section.push(line);
    }
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in section {
        match (&mut current, line.starts_with("```")) {
            (None, true) => current = Some(Vec::new()),
            (Some(b), true) => {
                blocks.push(b.join("\n"));
                current = None;
            }
            (Some(b), false) => b.push(line),
            (None, false) => {}
        }
    }
    blocks
}

/// The commands of a code block: continuation lines joined, comments and
/// blank lines dropped.
fn commands(block: &str) -> Vec<String> {
    let joined = block.replace("\\\n", " ");
    joined
        .lines()
        .map(|l| l.split(" # ").next().unwrap_or(l).trim().to_string())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// Every command of the manual the product grew from is still in it, word
/// for word, and beside them what they need to work: the real spacing the
/// CDP ranges ask for, the command that checks it, the config the env
/// example runs on, and the layout it recommends.
#[test]
fn the_manual_keeps_its_commands_and_says_what_they_need() {
    let manual = doc("docs/multiple-gateways.md");
    for line in [
        "omniclaw --profile main setup",
        "omniclaw --profile main gateway --port 18789",
        "omniclaw --profile rescue setup",
        "omniclaw --profile rescue gateway --port 19001",
        "omniclaw --profile main gateway install",
        "omniclaw --profile rescue gateway install",
        "omniclaw onboard",
        "omniclaw gateway install",
        "omniclaw --profile rescue onboard",
        "OMNICLAW_CONFIG_PATH=~/.omniclaw/main.json \\\nOMNICLAW_STATE_DIR=~/.omniclaw-main \\\nomniclaw gateway --port 18789",
        "OMNICLAW_CONFIG_PATH=~/.omniclaw/rescue.json \\\nOMNICLAW_STATE_DIR=~/.omniclaw-rescue \\\nomniclaw gateway --port 19001",
        "omniclaw --profile main status",
        "omniclaw --profile rescue status",
        "omniclaw --profile rescue browser status",
        "Port spacing: leave at least 20 ports between base ports so the derived browser/canvas/CDP ports never collide.",
    ] {
        assert!(manual.contains(line), "the manual lost {line:?}");
    }
    // Beside "leave 20 ports": the 111 the CDP ranges need, and the check.
    let spacing = manual
        .find("leave at least 20 ports")
        .expect("the spacing rule");
    let next = &manual[spacing..spacing + 800.min(manual.len() - spacing)];
    assert!(next.contains("at least 111 apart"), "{next}");
    assert!(next.contains("`omniclaw ports`"), "{next}");
    // The recommended layout: main on the default profile, rescue named.
    assert!(
        manual.contains("main bot on the default profile") && manual.contains("`--profile rescue`"),
        "the manual does not say which layout it recommends"
    );
    // The env example shows the command that creates its configs first.
    let env = blocks_under(&manual, "## Manual env example");
    let first = commands(env.first().expect("a block"));
    assert!(
        first
            .iter()
            .all(|c| c.ends_with("omniclaw setup --port 18789")
                || c.ends_with("omniclaw setup --port 19001")),
        "{first:?}"
    );
}

/// The manual's env example, run as it is written: its setup block, then
/// its two gateways, which start on their ports.
#[test]
fn the_manual_env_example_runs_as_written() {
    let _ports = omniclaw_tests::well_known_ports();
    if !omniclaw_tests::port_is_free(18789) || !omniclaw_tests::port_is_free(19001) {
        eprintln!("skipped: 18789 or 19001 is in use on this machine");
        return;
    }
    let manual = doc("docs/multiple-gateways.md");
    let blocks = blocks_under(&manual, "## Manual env example");
    assert_eq!(blocks.len(), 2, "a setup block, then the gateways");
    let home = Home::new();
    for c in commands(&blocks[0]) {
        home.shell(&format!(
            "DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent/omniclaw-no-bus {c}"
        ))
        .expect_code(0);
    }
    let mut running = Vec::new();
    for c in commands(&blocks[1]) {
        // Its own process group: dropping it stops the shell and the gateway.
        let gw = GatewayProc::spawn(home.shell_cmd(&c))
            .unwrap_or_else(|r| panic!("`{c}` did not start: {r:?}"));
        running.push(gw);
    }
    assert!(running[0].output.contains("ws://127.0.0.1:18789"));
    assert!(running[1].output.contains("ws://127.0.0.1:19001"));
    home.run(&["--profile", "main", "health"]).expect_code(0);
    home.run(&["--profile", "rescue", "health"]).expect_code(0);
}

/// The README's tour, command by command in a fresh home: the main bot on
/// the default profile, the rescue bot on `--profile rescue`, each command
/// exiting 0.
#[test]
fn the_readme_tour_runs_as_written() {
    let readme = doc("README.md");
    let blocks = blocks_under(&readme, "## A 60-second tour");
    let tour = commands(blocks.first().expect("the tour's first block"));
    assert_eq!(
        tour.first().map(String::as_str),
        Some("omniclaw setup"),
        "the main bot is on the default profile"
    );
    assert_eq!(
        tour.get(1).map(String::as_str),
        Some("omniclaw --profile rescue setup")
    );
    let _ports = omniclaw_tests::well_known_ports();
    let home = Home::new();
    for c in &tour {
        home.shell(&format!(
            "DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent/omniclaw-no-bus {c}"
        ))
        .expect_code(0);
    }
    assert!(home.path().join(".omniclaw/omniclaw.json").is_file());
    assert!(home.path().join("omniclaw.schema.json").is_file());
}
