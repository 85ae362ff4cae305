use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::{header, StatusCode};
use axum::response::{Html, Redirect};
use axum::routing::get;
use axum::Router;
use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use super::*;

/// Answers from a table, as a DNS server that lies would.
struct Table(Vec<(&'static str, Vec<IpAddr>)>);

impl NameResolver for Table {
    fn lookup(&self, host: &str) -> BoxFuture<'static, io::Result<Vec<IpAddr>>> {
        let found = self
            .0
            .iter()
            .find(|(h, _)| *h == host)
            .map(|(_, a)| a.clone());
        let host = host.to_string();
        Box::pin(async move {
            found.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{host}: unknown")))
        })
    }
}

const PAGE: &str = r#"<!doctype html><html><head><title>Weather</title>
<style>body { color: red }</style><script>var stolen = "SCRIPT-BODY";</script></head>
<body><h1>Forecast</h1><p>Sunny <b>all</b> day, see <a href="/more">details</a>.</p></body></html>"#;

/// A local server playing a public site; `/secret` counts the requests
/// that reached it.
struct Site {
    port: u16,
    secret_hits: Arc<AtomicUsize>,
}

async fn site() -> Site {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let secret_hits = Arc::new(AtomicUsize::new(0));
    let hits = secret_hits.clone();
    let app =
        Router::new()
            .route("/page", get(|| async { Html(PAGE) }))
            .route(
                "/to-loopback",
                get(move || async move {
                    Redirect::temporary(&format!("http://127.0.0.1:{port}/secret"))
                }),
            )
            .route(
                "/to-rebind",
                get(move || async move {
                    Redirect::temporary(&format!("http://rebind.example:{port}/secret"))
                }),
            )
            .route("/to-page", get(|| async { Redirect::permanent("/page") }))
            .route("/loop", get(|| async { Redirect::temporary("/loop") }))
            .route(
                "/secret",
                get(move || {
                    hits.fetch_add(1, Ordering::SeqCst);
                    async { "TOP SECRET control plane" }
                }),
            )
            .route("/big", get(|| async { "0123456789".repeat(10_000) }))
            .route(
                "/bin",
                get(|| async {
                    (
                        [(header::CONTENT_TYPE, "application/octet-stream")],
                        vec![0u8; 64],
                    )
                }),
            )
            .route(
                "/missing",
                get(|| async { (StatusCode::NOT_FOUND, "no such page") }),
            )
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(20)).await;
                    "late"
                }),
            );
    tokio::spawn(async move { axum::serve(listener, app).await });
    Site { port, secret_hits }
}

fn loopback() -> Vec<IpAddr> {
    vec![IpAddr::from([127, 0, 0, 1])]
}

/// The tool as a gateway would build it, with `public.example` (the local
/// site) trusted by name so that the first hop gets through.
fn fetcher(change: impl FnOnce(&mut WebFetchSettings)) -> WebFetchTool {
    let mut settings = WebFetchSettings {
        ssrf: SsrfPolicy {
            allowed_hostnames: vec!["public.example".into()],
            ..SsrfPolicy::default()
        },
        resolver: Arc::new(Table(vec![
            ("public.example", loopback()),
            ("rebind.example", loopback()),
            (
                "mixed.example",
                vec![
                    IpAddr::from([93, 184, 216, 34]),
                    IpAddr::from([127, 0, 0, 1]),
                ],
            ),
        ])),
        ..WebFetchSettings::default()
    };
    change(&mut settings);
    WebFetchTool::new(settings).expect("tool")
}

fn ctx() -> ToolContext {
    ToolContext {
        workspace: std::env::temp_dir(),
        session_key: "agent:main:main".into(),
        cancel: CancellationToken::new(),
        child_env: BTreeMap::new(),
    }
}

async fn fetch(tool: &WebFetchTool, url: &str) -> ToolOutput {
    tool.call(json!({ "url": url }), &ctx()).await
}

fn assert_refused(out: &ToolOutput, words: &[&str]) {
    assert!(out.is_error, "expected a refusal: {out:?}");
    for w in words {
        assert!(out.text.contains(w), "{:?} should say {w:?}", out.text);
    }
    assert!(!out.text.contains("TOP SECRET"), "{}", out.text);
}

#[tokio::test]
async fn loopback_addresses_are_refused_before_any_connection() {
    let site = site().await;
    let tool = fetcher(|_| {});
    let port = site.port;
    assert_refused(
        &fetch(&tool, &format!("http://127.0.0.1:{port}/secret")).await,
        &[
            "127.0.0.1 is a loopback address (127.0.0.0/8)",
            "tools.web.fetch.ssrfPolicy.allowedHostnames",
        ],
    );
    assert_refused(
        &fetch(&tool, &format!("http://[::1]:{port}/secret")).await,
        &["the loopback address (::1)"],
    );
    // 2130706433 is 127.0.0.1 written as one number.
    assert_refused(
        &fetch(&tool, &format!("http://2130706433:{port}/secret")).await,
        &["loopback"],
    );
    assert_refused(
        &fetch(&tool, &format!("http://localhost:{port}/secret")).await,
        &["names this machine"],
    );
    assert_eq!(site.secret_hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_redirect_to_loopback_is_refused_on_its_hop() {
    let site = site().await;
    let tool = fetcher(|_| {});
    let port = site.port;
    let out = fetch(&tool, &format!("http://public.example:{port}/to-loopback")).await;
    assert_refused(
        &out,
        &[
            "127.0.0.1 is a loopback address",
            &format!("(redirect 1 from http://public.example:{port}/to-loopback)"),
        ],
    );
    let out = fetch(&tool, &format!("http://public.example:{port}/to-rebind")).await;
    assert_refused(
        &out,
        &["rebind.example resolves to 127.0.0.1", "(redirect 1 from"],
    );
    assert_eq!(site.secret_hits.load(Ordering::SeqCst), 0);
    // A redirect that stays on the trusted host is followed.
    let out = fetch(&tool, &format!("http://public.example:{port}/to-page")).await;
    assert!(!out.is_error, "{out:?}");
    assert!(
        out.text
            .contains(&format!("URL: http://public.example:{port}/page")),
        "{}",
        out.text
    );
}

#[tokio::test]
async fn a_name_that_resolves_to_loopback_is_refused() {
    let site = site().await;
    let tool = fetcher(|_| {});
    let port = site.port;
    assert_refused(
        &fetch(&tool, &format!("http://rebind.example:{port}/secret")).await,
        &["rebind.example resolves to 127.0.0.1, a loopback address"],
    );
    // One bad address in the answer spoils it all.
    assert_refused(
        &fetch(&tool, &format!("http://mixed.example:{port}/secret")).await,
        &["mixed.example resolves to 127.0.0.1"],
    );
    assert_eq!(site.secret_hits.load(Ordering::SeqCst), 0);
    // With the private network allowed, the same fetch goes through.
    let open = fetcher(|s| s.ssrf.dangerously_allow_private_network = true);
    let out = fetch(&open, &format!("http://rebind.example:{port}/secret")).await;
    assert!(out.text.contains("TOP SECRET"), "{out:?}");
    assert_eq!(site.secret_hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn html_is_reduced_to_readable_text() {
    let site = site().await;
    let tool = fetcher(|_| {});
    let url = format!("http://public.example:{}/page", site.port);
    let out = fetch(&tool, &url).await;
    assert!(!out.is_error, "{out:?}");
    assert!(
        out.text
            .starts_with(&format!("URL: {url}\nStatus: 200\nContent-Type: text/html")),
        "{}",
        out.text
    );
    assert!(out.text.contains("# Forecast"), "{}", out.text);
    assert!(out.text.contains("Sunny **all** day"), "{}", out.text);
    for hidden in ["SCRIPT-BODY", "color: red", "<p>"] {
        assert!(
            !out.text.contains(hidden),
            "{hidden} leaked into {}",
            out.text
        );
    }
    let plain = tool
        .call(json!({"url": url, "extractMode": "text"}), &ctx())
        .await;
    assert!(plain.text.contains("Sunny all day"), "{}", plain.text);
}

#[tokio::test]
async fn size_and_length_caps_hold() {
    let site = site().await;
    let port = site.port;
    let small = fetcher(|s| s.max_response_bytes = 1000);
    let out = fetch(&small, &format!("http://public.example:{port}/big")).await;
    assert!(!out.is_error, "{out:?}");
    assert!(out
        .text
        .contains("download stopped at 1000 bytes (tools.web.fetch.maxResponseBytes)"));
    let body = out.text.split("instructions.)\n\n").nth(1).expect("body");
    assert_eq!(body.len(), 1000);
    let tool = fetcher(|_| {});
    let out = tool
        .call(
            json!({"url": format!("http://public.example:{port}/big"), "maxChars": 150}),
            &ctx(),
        )
        .await;
    assert!(
        out.text
            .contains("[truncated: 99850 more characters; maxChars is 150]"),
        "{}",
        out.text
    );
    let out = fetch(&tool, &format!("http://public.example:{port}/loop")).await;
    assert_refused(
        &out,
        &["redirects more than 3 times (tools.web.fetch.maxRedirects)"],
    );
}

#[tokio::test]
async fn what_is_not_a_text_page_over_http_is_refused_with_a_reason() {
    let site = site().await;
    let port = site.port;
    let tool = fetcher(|_| {});
    assert_refused(
        &fetch(&tool, "file:///etc/passwd").await,
        &["only http and https"],
    );
    assert_refused(&fetch(&tool, "not a url").await, &["is not a URL"]);
    assert_refused(
        &fetch(&tool, &format!("http://public.example:{port}/bin")).await,
        &["application/octet-stream, not text"],
    );
    let out = fetch(&tool, &format!("http://public.example:{port}/missing")).await;
    assert!(out.is_error && out.text.starts_with("HTTP 404"), "{out:?}");
    assert!(out.text.contains("no such page"));
    let blocked = fetcher(|s| s.ssrf.blocked_hostnames = vec!["*.example".into()]);
    assert_refused(
        &fetch(&blocked, &format!("http://public.example:{port}/page")).await,
        &["blockedHostnames (*.example)"],
    );
}

#[tokio::test]
async fn a_slow_site_is_given_up_on_and_a_cancel_stops_at_once() {
    let site = site().await;
    let url = format!("http://public.example:{}/slow", site.port);
    let quick = fetcher(|s| s.timeout = Duration::from_secs(1));
    let started = std::time::Instant::now();
    let out = fetch(&quick, &url).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_refused(&out, &["after 1 s (tools.web.fetch.timeoutSeconds)"]);

    let tool = fetcher(|_| {});
    let ctx = ctx();
    let cancel = ctx.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        cancel.cancel();
    });
    let started = std::time::Instant::now();
    let out = tool.call(json!({ "url": url }), &ctx).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_refused(&out, &["the run was aborted"]);
}

#[test]
fn settings_that_cannot_work_are_named() {
    let bad = WebFetchSettings {
        max_chars: 10,
        ..WebFetchSettings::default()
    };
    assert!(bad
        .check()
        .expect_err("bad")
        .contains("tools.web.fetch.maxChars"));
    let bad = WebFetchSettings {
        user_agent: "two\nlines".into(),
        ..WebFetchSettings::default()
    };
    assert!(bad.check().expect_err("bad").contains("userAgent"));
    let _: SocketAddr = "127.0.0.1:1".parse().expect("addr");
}
