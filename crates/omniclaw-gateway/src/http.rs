//! HTTP on the base port: the WebSocket upgrade and the probes.
//!
//! `/healthz` (and `/health`) say the process is live; `/readyz` says every
//! enabled surface is serving, and answers 503 with the failing ones
//! otherwise. Answers match the real peer's probe answers.

use std::net::SocketAddr;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Extension;
use axum::{Json, Router};
use serde_json::json;

use crate::listen::Pending;
use crate::server::AppState;

pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/healthz", get(live))
        .route("/health", get(live))
        .route("/readyz", get(ready))
        .fallback(not_found)
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}

pub(crate) async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "Not Found",
    )
        .into_response()
}

async fn root(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(pending): Extension<Pending>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if let (Ok(_), Some(what)) = (&upgrade, crate::guard::web_page(&headers)) {
        return (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!(
                "Forbidden: this gateway does not accept WebSocket connections from web pages ({what}); connect from a program (the omniclaw CLI, the desktop app, an OpenClaw client)\n"
            ),
        )
            .into_response();
    }
    match upgrade {
        Ok(ws) => crate::conn::upgrade(ws, state, peer, pending),
        Err(_) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!(
                "OmniClaw gateway (profile {}): connect with the OpenClaw gateway protocol v4 over WebSocket on this URL.\n",
                state.shared.spec.profile
            ),
        )
            .into_response(),
    }
}

async fn live() -> Response {
    Json(json!({"ok": true, "status": "live"})).into_response()
}

async fn ready(State(state): State<AppState>) -> Response {
    let failing: Vec<&str> = state.shared.failing().iter().map(|s| s.key()).collect();
    let ready = failing.is_empty();
    let body = json!({
        "ready": ready,
        "failing": failing,
        "uptimeMs": state.shared.uptime_ms(),
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;

    async fn check(res: Response, expected: (u16, &str, &str)) {
        let status = res.status().as_u16();
        let ct = res
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = to_bytes(res.into_body(), 1 << 16).await.expect("body");
        assert_eq!(
            (
                status,
                ct.as_str(),
                std::str::from_utf8(&body).expect("utf8")
            ),
            expected
        );
    }

    #[tokio::test]
    async fn probe_answers_match_the_real_peer() {
        check(
            live().await,
            (200, "application/json", r#"{"ok":true,"status":"live"}"#),
        )
        .await;
        check(
            not_found().await,
            (404, "text/plain; charset=utf-8", "Not Found"),
        )
        .await;
    }
}
