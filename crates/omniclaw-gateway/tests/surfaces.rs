//! The surfaces around the control plane: port clashes, two gateways in one
//! host, the canvas host, and the browser control service with a real
//! Chromium when one is installed.

mod common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

use common::*;
use omniclaw_gateway::client::Client;
use omniclaw_gateway::{Auth, Gateway, GatewayState, Host, StartError, Surface};
use serde_json::{json, Value};

#[tokio::test]
async fn a_taken_port_fails_cleanly_and_leaves_nothing_bound() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blocker = TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken = blocker.local_addr().expect("addr").port();
    for surface in [Surface::Gateway, Surface::BrowserControl, Surface::Canvas] {
        let mut s = spec(dir.path(), "main");
        s.port = free_port();
        s.browser.control_port = free_port();
        s.canvas.port = free_port();
        match surface {
            Surface::Gateway => s.port = taken,
            Surface::BrowserControl => s.browser.control_port = taken,
            Surface::Canvas => s.canvas.port = taken,
        }
        let err = Gateway::bind(s.clone()).expect_err("port is taken");
        match &err {
            StartError::PortInUse {
                port,
                surface: got,
                holder,
            } => {
                assert_eq!((*port, *got), (taken, surface));
                let h = holder.as_ref().expect("holder found");
                assert_eq!(h.pid, std::process::id());
            }
            other => panic!("unexpected {other}"),
        }
        let msg = err.to_string();
        assert!(
            msg.contains(&taken.to_string()) && msg.contains(&surface.to_string()),
            "{msg}"
        );
        // Every other port is free again.
        for port in [s.port, s.browser.control_port, s.canvas.port] {
            if port != taken {
                TcpListener::bind(("127.0.0.1", port)).expect("released");
            }
        }
    }
}

#[tokio::test]
async fn non_loopback_without_auth_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = spec(dir.path(), "main");
    s.auth = Auth::None;
    s.bind = "0.0.0.0".parse().expect("ip");
    let err = Gateway::bind(s).expect_err("refused");
    assert!(matches!(err, StartError::InsecureBind { .. }), "{err}");
}

#[tokio::test]
async fn main_and_rescue_side_by_side_in_one_host() {
    let dir = tempfile::tempdir().expect("tempdir");
    let host = Host::new();
    let main = host.start("main", spec(dir.path(), "main")).expect("main");
    // A fixed port outside the ephemeral range: once released, no other
    // test's port-0 listener can land on it and fake an answer.
    let mut rescue_spec = spec(dir.path(), "rescue");
    rescue_spec.port = free_fixed_port();
    let rescue = host.start("rescue", rescue_spec).expect("rescue");
    for (addrs, profile) in [(main, "main"), (rescue, "rescue")] {
        let c = Client::connect(
            &format!("ws://{}", addrs.gateway),
            Auth::Token(TOKEN.into()),
            &["operator.read"],
        )
        .await
        .expect("connect");
        assert_eq!(c.hello()["snapshot"]["profile"], profile);
        let state_dir = c.hello()["snapshot"]["stateDir"]
            .as_str()
            .expect("dir")
            .to_string();
        assert!(
            state_dir.ends_with(&format!("state-{profile}")),
            "{state_dir}"
        );
    }
    let mut rescue_state = host.subscribe("rescue");
    host.stop("rescue").await.expect("stop rescue");
    assert_eq!(*rescue_state.borrow_and_update(), GatewayState::Stopped);
    assert_eq!(host.state("main"), GatewayState::Running);
    assert_eq!(http(main.gateway, "GET", "/healthz").await.0, 200);
    assert!(tokio::net::TcpStream::connect(rescue.gateway)
        .await
        .is_err());
    let again = host.restart("rescue").await.expect("restart");
    assert_eq!(http(again.gateway, "GET", "/readyz").await.0, 200);
    host.shutdown_all().await;
    assert_eq!(host.state("main"), GatewayState::Stopped);
}

#[tokio::test]
async fn canvas_serves_the_workspace_canvas_and_nothing_else() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = spec(dir.path(), "main");
    let root = s.canvas.root.clone();
    std::fs::create_dir_all(root.join("app")).expect("mkdir");
    std::fs::write(root.join("index.html"), "<h1>canvas</h1>").expect("write");
    std::fs::write(root.join("app/main.js"), "console.log(1)").expect("write");
    std::fs::write(root.join("app/style.css"), "p{}").expect("write");
    std::fs::write(dir.path().join("secret.txt"), "top secret").expect("write");
    #[cfg(unix)]
    std::os::unix::fs::symlink(dir.path().join("secret.txt"), root.join("leak.txt"))
        .expect("symlink");
    let gw = start(s);
    let canvas = gw.addrs.canvas.expect("canvas enabled");

    let (status, head, body) = http(canvas, "GET", "/").await;
    assert_eq!((status, body.as_str()), (200, "<h1>canvas</h1>"));
    assert!(
        head.contains("content-type: text/html; charset=utf-8"),
        "{head}"
    );
    let (status, head, _) = http(canvas, "GET", "/app/main.js").await;
    assert_eq!(status, 200);
    assert!(head.contains("content-type: text/javascript"), "{head}");
    let (_, head, _) = http(canvas, "GET", "/app/style.css").await;
    assert!(head.contains("content-type: text/css"), "{head}");
    let (status, _, body) = http(canvas, "GET", "/missing.html").await;
    assert_eq!(status, 404);
    assert!(body.contains("/missing.html"), "{body}");

    for path in [
        "/../secret.txt",
        "/app/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/app/%2E%2E/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/..%5csecret.txt",
        "/leak.txt",
    ] {
        let (status, _, body) = http(canvas, "GET", path).await;
        assert!(status == 403 || status == 404, "{path}: {status}");
        assert!(!body.contains("top secret"), "{path} leaked");
    }
    // Absolute paths are taken relative to the root.
    let (status, _, body) = http(
        canvas,
        "GET",
        &format!("/{}", dir.path().join("secret.txt").display()),
    )
    .await;
    assert_eq!(status, 404);
    assert!(!body.contains("top secret"));
    gw.stop().await;
}

#[tokio::test]
async fn browser_control_lists_profiles_with_persisted_ports() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = spec(dir.path(), "main");
    s.browser.cdp_range = 40100..=40199;
    s.browser.profiles.insert("work".into(), None);
    s.browser.profiles.insert("pinned".into(), Some(40500));
    let state = s.state_dir.clone();
    let gw = start(s);
    let ctl = gw.addrs.browser_control.expect("control enabled");
    assert!(ctl.ip().is_loopback());

    let (status, _, body) = control(ctl, "GET", "/").await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["enabled"], true);
    assert_eq!(v["running"], json!([]));
    assert_eq!(v["cdpPortRange"], json!({"start": 40100, "end": 40199}));

    let (status, _, body) = control(ctl, "GET", "/profiles").await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).expect("json");
    let ports: Vec<(String, u64)> = v["profiles"]
        .as_array()
        .expect("profiles")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().expect("name").into(),
                p["cdpPort"].as_u64().expect("port"),
            )
        })
        .collect();
    assert_eq!(
        ports,
        vec![("pinned".into(), 40500), ("work".into(), 40100)]
    );
    let saved = std::fs::read_to_string(state.join("browser/profiles.json")).expect("persisted");
    assert!(saved.contains("40100"), "{saved}");

    let (status, _, body) = control(ctl, "POST", "/stop?profile=work").await;
    assert_eq!(status, 404, "{body}");
    let (status, _, _) = control(ctl, "POST", "/start?profile=Bad%20Name").await;
    assert_eq!(status, 400);
    gw.stop().await;
}

#[tokio::test]
async fn real_chromium_starts_answers_cdp_and_stops() {
    let chromium = PathBuf::from("/usr/bin/chromium");
    if !chromium.exists() {
        eprintln!("note: /usr/bin/chromium not found; skipping the real-browser test");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = spec(dir.path(), "main");
    let cdp = free_port();
    s.browser.cdp_range = cdp..=cdp;
    s.browser.executable = chromium;
    // Chromium wants a home, a PATH and a locale: this process's, minimally.
    s.child_env = omniclaw_core::env::ChildEnv::minimal(
        &omniclaw_core::env::EnvSnapshot::from_vars(std::env::vars()),
        [],
    );
    s.limits.browser_start_timeout = Duration::from_secs(40);
    let gw = start(s.clone());
    let ctl = gw.addrs.browser_control.expect("control");

    let (status, _, body) = control(ctl, "POST", "/start?profile=default").await;
    assert_eq!(status, 200, "{body}");
    let started: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(started["cdpPort"], cdp);
    assert!(
        started["version"]["Browser"]
            .as_str()
            .unwrap_or_default()
            .contains("Chrome"),
        "{started}"
    );
    let pid = started["pid"].as_u64().expect("pid");
    assert!(s.state_dir.join("browser/default/user-data").is_dir());

    let v = omniclaw_gateway::browser::cdp_version(cdp)
        .await
        .expect("CDP answers");
    assert!(v["webSocketDebuggerUrl"]
        .as_str()
        .expect("ws url")
        .contains(&cdp.to_string()));
    let (_, _, body) = control(ctl, "GET", "/").await;
    assert!(body.contains("\"default\""), "{body}");

    let (status, _, body) = control(ctl, "POST", "/stop?profile=default").await;
    assert_eq!(status, 200, "{body}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        omniclaw_gateway::browser::cdp_version(cdp).await.is_err(),
        "CDP gone"
    );
    assert!(!PathBuf::from(format!("/proc/{pid}")).exists() || proc_is_zombie(pid));

    // Started again, then stopped by the gateway's own shutdown.
    let (status, _, body) = control(ctl, "POST", "/start?profile=default").await;
    assert_eq!(status, 200, "{body}");
    gw.stop().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        omniclaw_gateway::browser::cdp_version(cdp).await.is_err(),
        "stopped on shutdown"
    );
}

fn proc_is_zombie(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.contains(") Z "))
        .unwrap_or(true)
}
