//! A running `omniclaw gateway` against what a local attacker can do from
//! outside the process: read the environment of the browsers it starts,
//! hold its descriptors with idle connections, and catch it with a low
//! open-file limit.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use omniclaw_tests::{free_base, omniclaw_bin, GatewayProc as Gateway, Home};

/// A strong token (a LAN bind would accept it too).
const TOKEN: &str = "3f9c2a7be1d04c58a6f2e9b07d1c4a3e85b2f6d9c0e7a4b1";

/// `sh -c "exec LINE"` in `home` with `omniclaw` on PATH and `env` added.
fn sh(home: &Home, line: &str, env: &[(&str, &str)]) -> std::process::Command {
    let mut c = home.shell_cmd(&format!("exec {line}"));
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

/// One HTTP/1.1 request on loopback `port`; the status and the body.
fn http(port: u16, head: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    s.write_all(head.as_bytes()).expect("write");
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, body.to_string())
}

fn fake_chromium(dir: &Path) {
    std::fs::create_dir_all(dir).expect("mkdir");
    let exe = dir.join("chromium");
    // Writes what it inherited where the test looks, then fails to start.
    std::fs::write(
        &exe,
        "#!/bin/sh\n/usr/bin/env > \"$HOME/chromium.env\"\nexit 3\n",
    )
    .expect("write");
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[test]
fn browsers_get_a_minimal_environment_without_the_gateway_token_or_env_secrets() {
    let home = Home::new();
    let base = free_base();
    fake_chromium(&home.path().join("fakebin"));
    home.write(
        ".omniclaw-main/omniclaw.json",
        "{ gateway: { remote: { token: '${REMOTE_SECRET}' } } }",
    );
    let path = format!(
        "{}:{}:{}",
        home.path().join("fakebin").display(),
        omniclaw_bin().parent().expect("bin dir").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let gw = Gateway::spawn(sh(
        &home,
        &format!("omniclaw --profile main gateway --port {base}"),
        &[
            ("PATH", &path),
            ("OMNICLAW_GATEWAY_TOKEN", TOKEN),
            ("REMOTE_SECRET", "remote-secret-value"),
            ("UNRELATED_API_KEY", "unrelated-value"),
        ],
    ))
    .expect("gateway starts");
    let control = base + 2;
    let (status, body) = http(
        control,
        &format!(
            "POST /start?profile=default HTTP/1.1\r\nHost: 127.0.0.1:{control}\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_eq!(status, 500, "the fake browser exits at once: {body}");
    drop(gw);
    let seen = std::fs::read_to_string(home.path().join("chromium.env"))
        .expect("the fake browser ran and wrote its environment");
    for secret in [TOKEN, "remote-secret-value", "unrelated-value"] {
        assert!(
            !seen.contains(secret),
            "the browser inherited {secret}:\n{seen}"
        );
    }
    for var in [
        "OMNICLAW_GATEWAY_TOKEN",
        "OMNICLAW_PROFILE",
        "REMOTE_SECRET",
    ] {
        assert!(!seen.contains(var), "the browser inherited {var}:\n{seen}");
    }
    assert!(
        seen.contains(&format!("HOME={}\n", home.path().display())),
        "{seen}"
    );
    assert!(seen.contains(&format!("PATH={path}\n")), "{seen}");
}

/// `(soft, hard)` "Max open files" of process `pid`.
fn open_file_limits(pid: u32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let line = text
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("open files line");
    let nums: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (nums[0], nums[1])
}

#[test]
fn the_gateway_lifts_its_soft_open_file_limit_to_the_hard_one() {
    let home = Home::new();
    let base = free_base();
    let gw = Gateway::spawn(sh(
        &home,
        &format!("omniclaw --profile main gateway --port {base} --token {TOKEN}"),
        &[],
    ))
    .expect("gateway starts");
    let (soft, hard) = open_file_limits(gw.pid());
    let (_, own_hard) = open_file_limits(std::process::id());
    assert_eq!((soft, hard), (own_hard, own_hard));
    drop(gw);

    // Started with a soft limit below the hard one, as systemd and login
    // shells do.
    if own_hard > 600 {
        let gw = Gateway::spawn(sh(
            &home,
            &format!(
                "sh -c 'ulimit -Sn 512 && exec omniclaw --profile main gateway --port {base} --token {TOKEN}'"
            ),
            &[],
        ))
        .expect("gateway starts");
        assert_eq!(open_file_limits(gw.pid()), (own_hard, own_hard));
    }
}

#[test]
fn idle_canvas_connections_beyond_the_open_file_limit_leave_health_working() {
    let (soft, hard) = open_file_limits(std::process::id());
    assert!(
        soft >= 2048 && hard >= 1024,
        "this test opens 1100 connections: raise `ulimit -n` (soft {soft}, hard {hard})"
    );
    let home = Home::new();
    let base = free_base();
    // 1024 soft and hard: the gateway cannot lift it.
    let gw = Gateway::spawn(sh(
        &home,
        &format!(
            "sh -c 'ulimit -n 1024 && exec omniclaw --profile main gateway --port {base} --token {TOKEN}'"
        ),
        &[],
    ))
    .expect("gateway starts");
    let canvas = base + 4;
    let idle: Vec<TcpStream> = (0..1100)
        .filter_map(|_| {
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], canvas));
            TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()
        })
        .collect();
    assert!(idle.len() >= 1024, "only {} connections opened", idle.len());
    let r = home.run(&["--profile", "main", "health", "--token", TOKEN]);
    r.expect_code(0);
    drop(idle);
    drop(gw);
}
