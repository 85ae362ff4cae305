//! The manual's commands, run verbatim against a temporary home.

use omniclaw_tests::Home;

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
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for dir in [".omniclaw-main", ".omniclaw-rescue", ".omniclaw"] {
            let mode = std::fs::metadata(h.join(dir))
                .expect("meta")
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o700, "{dir} is private");
        }
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
