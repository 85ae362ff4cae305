//! The isolation audit across profiles and real OpenClaw installs, as
//! `ports` and `doctor` report it.

use omniclaw_tests::Home;

fn two_profiles() -> Home {
    let home = Home::new();
    home.run(&["--profile", "main", "setup"]).expect_code(0);
    home.run(&["--profile", "rescue", "setup"]).expect_code(0);
    home
}

/// The port in the fix `ports` prints for a held port of main's `key`.
fn fix_port(stdout: &str, key: &str) -> u16 {
    let prefix = format!("or move main with `omniclaw --profile main config set {key} ");
    let fix = stdout
        .split(&prefix)
        .nth(1)
        .and_then(|t| t.split('`').next())
        .unwrap_or_else(|| panic!("no fix with a port for {key}:\n{stdout}"));
    fix.parse()
        .unwrap_or_else(|_| panic!("not a port: {fix:?}"))
}

#[test]
fn openclaw_installs_reserve_their_ports() {
    let home = Home::new();
    // A real OpenClaw gateway on the default port, and one moved by config.
    home.write(
        ".openclaw/openclaw.json",
        "{ // real peer\n  gateway: { mode: 'local' },\n}\n",
    );
    home.write(
        ".openclaw-work/openclaw.json",
        "{\"gateway\": {\"port\": 19789}}",
    );
    let main = home.run(&["--profile", "main", "setup", "--json"]);
    main.expect_code(0);
    let rescue = home.run(&["--profile", "rescue", "setup", "--json"]);
    rescue.expect_code(0);
    let (m, r) = (main.json()["port"].as_u64(), rescue.json()["port"].as_u64());
    let (m, r) = (m.expect("port"), r.expect("port"));
    for (name, port) in [("main", m), ("rescue", r)] {
        for taken in [18789u64, 19789] {
            assert!(
                port + 110 < taken || port > taken + 110,
                "{name} at {port} keeps clear of the OpenClaw gateway at {taken} and its derived ports"
            );
        }
    }
    let ports = home.run(&["ports", "--json"]);
    ports.expect_code(0);
    let rows = ports.json()["rows"].as_array().cloned().unwrap_or_default();
    assert!(rows.iter().any(|r| r["profile"] == "openclaw:.openclaw"
        && r["start"] == 18789
        && r["foreign"] == true));
    assert!(rows
        .iter()
        .any(|r| r["profile"] == "openclaw:.openclaw-work" && r["start"] == 19789));

    // An explicit clash with the OpenClaw install is refused, naming it.
    home.run(&["--profile", "third", "setup", "--port", "18790"])
        .expect_code(2)
        .expect_output("openclaw:.openclaw");
}

#[test]
fn conflicts_from_edited_configs_fail_ports_and_doctor() {
    let home = two_profiles();
    // Twenty ports apart, as the rule of thumb says: still a collision.
    home.write(
        ".omniclaw-rescue/omniclaw.json",
        "{ gateway: { port: 18809 } }",
    );
    let run = home.run(&["ports"]);
    run.expect_code(1)
        .expect_output("rescue base 18809 lies in main's CDP range 18800–18899")
        .expect_output("fix: move rescue to base");
    let json = home.run(&["ports", "--json"]);
    json.expect_code(1);
    let v = json.json();
    assert_eq!(v["ok"], false);
    assert!(v["problems"]
        .as_array()
        .is_some_and(|p| p.iter().any(|p| p["kind"] == "portOverlap")));
    home.run(&["doctor"])
        .expect_code(1)
        .expect_output("lies in main's CDP range");
    let doctor = home.run(&["doctor", "--json"]);
    doctor.expect_code(1);
    assert_eq!(doctor.json()["ok"], false);
}

#[test]
fn shared_workspace_token_and_cdp_url_are_reported() {
    let home = two_profiles();
    home.write(
        ".omniclaw-main/omniclaw.json",
        "{ gateway: { port: 18789 }, agents: { defaults: { workspace: '~/shared' } },\n  browser: { cdpUrl: 'http://127.0.0.1:9222' },\n  channels: { telegram: { botToken: '${TG_TOKEN}' } } }",
    );
    home.write(
        ".omniclaw-rescue/omniclaw.json",
        "{ gateway: { port: 19789 }, agents: { defaults: { workspace: '~/shared' } },\n  browser: { cdpUrl: 'http://127.0.0.1:9222' },\n  channels: { telegram: { botToken: '${TG_TOKEN}' } } }",
    );
    let run = home.run_env(&["doctor"], &[("TG_TOKEN", "123456:secret-value")]);
    run.expect_code(1)
        .expect_output("workspace")
        .expect_output("http://127.0.0.1:9222")
        .expect_output("bot token");
    assert!(!run.stdout.contains("secret-value") && !run.stderr.contains("secret-value"));
}

#[test]
fn a_port_held_by_another_process_is_named() {
    let home = Home::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    if port > 65000 {
        eprintln!("skipped: the OS gave port {port}, too high for a base port");
        return;
    }
    home.run(&["--profile", "main", "setup", "--port", &port.to_string()])
        .expect_code(0);
    let pid = std::process::id();
    let run = home.run(&["ports"]);
    run.expect_code(1)
        .expect_output(&format!("main's base port {port} is held by pid {pid}"));
    // The fix names a real base, clear of the held port: running it clears
    // the problem while the port is still held.
    let free = fix_port(&run.stdout, "gateway.port");
    assert!(
        !(free..=free + 110).contains(&port),
        "{free} covers the held {port}"
    );
    home.run(&["doctor"])
        .expect_code(1)
        .expect_output(&format!("pid {pid}"));
    let run = home.run(&["ports", "--json"]);
    let v = run.json();
    let row = v["rows"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["start"] == port).cloned());
    let row = row.expect("row of the base port");
    assert_eq!(row["live"]["state"], "held");
    assert_eq!(row["live"]["pid"], pid);
    home.shell(&format!(
        "omniclaw --profile main config set gateway.port {free}"
    ))
    .expect_code(0);
    home.run(&["ports"]).expect_code(0);
    drop(listener);
    home.run(&["ports"]).expect_code(0);
}

#[test]
fn instances_whose_ports_are_unknown_fail_ports() {
    let home = two_profiles();
    home.write(".omniclaw-m/omniclaw.json", "{ gateway: { port: 18789 ");
    home.write(".openclaw-x/openclaw.json", "{ gateway: ");
    let run = home.run(&["ports"]);
    run.expect_code(1)
        .expect_output(
            "m: ports unknown — ~/.omniclaw-m/omniclaw.json does not parse: syntax error",
        )
        .expect_output("fix: edit ~/.omniclaw-m/omniclaw.json at 1:")
        .expect_output("openclaw:.openclaw-x: ports unknown — ")
        .expect_output(
            "fix: fix ~/.openclaw-x/openclaw.json so OmniClaw can keep clear of its ports",
        );
    assert!(!run.stdout.contains("No conflicts"), "{}", run.stdout);
    let json = home.run(&["ports", "--json"]);
    json.expect_code(1);
    let v = json.json();
    let unknown: Vec<&str> = v["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .filter(|p| p["kind"] == "portsUnknown")
        .filter_map(|p| p["profiles"][0].as_str())
        .collect();
    assert_eq!(unknown, ["m", "openclaw:.openclaw-x"]);

    // A config that is a directory is not dropped either.
    std::fs::remove_file(home.path().join(".omniclaw-m/omniclaw.json")).expect("rm");
    std::fs::create_dir(home.path().join(".omniclaw-m/omniclaw.json")).expect("mkdir");
    home.run(&["ports"])
        .expect_code(1)
        .expect_output("m: ports unknown — ")
        .expect_output("is a directory, not a config file");
}

#[test]
fn doctor_counts_only_what_it_compared() {
    let home = two_profiles();
    // The default profile is not set up, and the OpenClaw install cannot be
    // read: neither is counted as isolated.
    home.write(".openclaw-x/openclaw.json", "{ gateway: ");
    let run = home.run(&["doctor"]);
    run.expect_code(1).expect_output("2 instances isolated");
    std::fs::remove_dir_all(home.path().join(".openclaw-x")).expect("rm");
    home.run(&["doctor"])
        .expect_code(0)
        .expect_output("2 instances isolated");
    // A profile asked about but not set up is listed, not counted.
    home.run(&["--profile", "later", "doctor"])
        .expect_code(0)
        .expect_output("not set up yet")
        .expect_output("2 instances isolated");
}

#[test]
fn setup_skips_ports_other_processes_hold() {
    let home = Home::new();
    // Hold the default base of main: setup must pick another one.
    let Ok(listener) = std::net::TcpListener::bind("127.0.0.1:18789") else {
        eprintln!("skipped: port 18789 is in use on this machine");
        return;
    };
    let run = home.run(&["--profile", "main", "setup", "--json"]);
    run.expect_code(0);
    let port = run.json()["port"].as_u64().expect("port");
    assert!(!(18789 - 110..=18789).contains(&port), "picked {port}");
    drop(listener);
}

/// Configs that cannot be read, ours or an OpenClaw install's: each is
/// reported with a fix that fits it, and none is skipped.
#[test]
fn unreadable_configs_get_fixes_that_fit_them() {
    let home = Home::new();
    std::fs::create_dir_all(home.path().join(".omniclaw-d/omniclaw.json")).expect("mkdir");
    let ports = home.run(&["ports"]);
    ports
        .expect_code(1)
        .expect_output("No ports to show: no instance's config could be read.")
        .expect_output("d: ports unknown — ~/.omniclaw-d/omniclaw.json is a directory, not a config file")
        .expect_output("fix: move the directory ~/.omniclaw-d/omniclaw.json away, then `omniclaw --profile d setup` writes the config");
    assert!(
        !ports.stdout.contains("No profiles yet"),
        "{}",
        ports.stdout
    );
    home.run(&["doctor"])
        .expect_code(1)
        .expect_output("✗ ~/.omniclaw-d/omniclaw.json is a directory, not a config file")
        .expect_output("fix: move the directory ~/.omniclaw-d/omniclaw.json away");

    // The same under an OpenClaw install is reported too, and an OpenClaw
    // file is never one to "run setup again" for.
    std::fs::create_dir_all(home.path().join(".openclaw-d/openclaw.json")).expect("mkdir");
    let bytes = b"{ gateway: { port: 19020 } } \xff\xfe";
    std::fs::create_dir_all(home.path().join(".openclaw-e")).expect("mkdir");
    std::fs::write(home.path().join(".openclaw-e/openclaw.json"), bytes).expect("write");
    let ports = home.run(&["ports"]);
    ports
        .expect_code(1)
        .expect_output("openclaw:.openclaw-d: ports unknown — ~/.openclaw-d/openclaw.json is a directory, not a config file")
        .expect_output("openclaw:.openclaw-e: ports unknown — ~/.openclaw-e/openclaw.json is not UTF-8 text (invalid byte at offset 29)")
        .expect_output("fix: fix ~/.openclaw-e/openclaw.json so OmniClaw can keep clear of its ports");
    assert!(!ports.stdout.contains("setup again"), "{}", ports.stdout);
}

#[test]
fn a_held_port_of_another_key_moves_only_that_key() {
    let home = Home::new();
    let base = home.setup_on_free_port("main");
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = free.local_addr().expect("addr").port();
    drop(free);
    home.config_set("main", "canvasHost.port", &port.to_string())
        .expect_code(0);
    // Now another process listens on main's canvas port.
    let Ok(_listener) = std::net::TcpListener::bind(("127.0.0.1", port)) else {
        eprintln!("skipped: port {port} was taken between two binds");
        return;
    };
    let pid = std::process::id();
    let run = home.run(&["ports"]);
    run.expect_code(1)
        .expect_output(&format!("main's canvas port {port} is held by pid {pid}"));
    // The fix moves the canvas alone, to a port nothing holds.
    let moved = fix_port(&run.stdout, "canvasHost.port");
    assert_ne!(moved, port);
    home.shell(&format!(
        "omniclaw --profile main config set canvasHost.port {moved}"
    ))
    .expect_code(0);
    home.run(&["ports"]).expect_code(0);
    home.run(&["--profile", "main", "config", "get", "gateway.port"])
        .expect_code(0)
        .expect_output(&base.to_string());
}
