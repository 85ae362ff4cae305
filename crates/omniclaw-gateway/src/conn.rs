//! One WebSocket connection: challenge, `connect` handshake, then requests
//! and events until either side closes or the gateway stops.
//!
//! Every refusal sends the error `res` first and then the close frame with
//! the code the real peer uses, so clients show the same message.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;

use crate::auth::{rate_limited, verify, Verdict};
use crate::methods;
use crate::protocol::{
    self, close, first_request_must_be_connect, parse_frame, ErrorShape, Inbound, Refusal,
};
use crate::server::{AppState, Broadcast, Shared};

/// The smallest hard frame limit handed to the WebSocket layer.
const MIN_HARD_LIMIT: usize = 64 * 1024;
/// How long a close handshake may take before the socket is dropped.
const CLOSE_WAIT: Duration = Duration::from_millis(500);

pub(crate) fn upgrade(ws: WebSocketUpgrade, state: AppState, peer: SocketAddr) -> Response {
    let limits = &state.shared.spec.limits;
    // The WebSocket layer cuts at twice the advertised limit; between the two
    // the connection reads the frame and closes with 1009 itself.
    let hard = limits.max_payload.saturating_mul(2).max(MIN_HARD_LIMIT);
    ws.read_buffer_size(4096)
        .write_buffer_size(0)
        .max_write_buffer_size(limits.max_buffered_bytes.max(1))
        .max_message_size(hard)
        .max_frame_size(hard)
        .on_upgrade(move |socket| run(socket, state, peer))
}

struct Counted(Arc<Shared>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[derive(Debug, PartialEq, Eq)]
enum Read {
    Text(String),
    Skip,
    Gone,
    TooBig,
}

fn classify(msg: Option<Result<Message, axum::Error>>) -> Read {
    match msg {
        None | Some(Ok(Message::Close(_))) => Read::Gone,
        Some(Ok(Message::Text(t))) => Read::Text(t.as_str().to_owned()),
        Some(Ok(Message::Binary(b))) => match String::from_utf8(b.to_vec()) {
            Ok(s) => Read::Text(s),
            // Not text and so not JSON: same answer as malformed JSON.
            Err(_) => Read::Text(String::new()),
        },
        Some(Ok(Message::Ping(_) | Message::Pong(_))) => Read::Skip,
        Some(Err(e)) => {
            let inner = e.into_inner();
            match inner.downcast_ref::<tokio_tungstenite::tungstenite::Error>() {
                Some(tokio_tungstenite::tungstenite::Error::Capacity(_)) => Read::TooBig,
                _ => Read::Gone,
            }
        }
    }
}

async fn send(socket: &mut WebSocket, text: String) -> bool {
    socket.send(Message::Text(text.into())).await.is_ok()
}

async fn close_with(socket: &mut WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: protocol::truncate_reason(reason).into(),
    };
    if socket.send(Message::Close(Some(frame))).await.is_err() {
        return;
    }
    // Wait for the peer's close so our frame is not lost to a reset.
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        while let Some(Ok(m)) = socket.recv().await {
            if matches!(m, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

async fn refuse(socket: &mut WebSocket, id: &Value, refusal: &Refusal) {
    if send(socket, protocol::res_err(id, &refusal.error)).await {
        close_with(socket, refusal.close_code, &refusal.reason()).await;
    }
}

async fn too_big(socket: &mut WebSocket, max: usize) {
    close_with(
        socket,
        close::MESSAGE_TOO_BIG,
        &format!("frame exceeds maxPayload ({max} bytes)"),
    )
    .await;
}

async fn run(mut socket: WebSocket, state: AppState, peer: SocketAddr) {
    let AppState { shared, tracker } = state;
    // Held until the connection ends; the graceful stop waits for all of them.
    let _tracker = tracker;
    shared.connections.fetch_add(1, Ordering::Relaxed);
    let _counted = Counted(shared.clone());
    let mut stopping = shared.stopping.clone();
    if *stopping.borrow() {
        close_with(&mut socket, close::GOING_AWAY, "gateway stopping").await;
        return;
    }
    let limits = &shared.spec.limits;
    let nonce = uuid::Uuid::new_v4().to_string();
    let challenge = protocol::event(
        "connect.challenge",
        json!({"nonce": nonce, "ts": now_ms()}),
        None,
    );
    if !send(&mut socket, challenge).await {
        return;
    }

    let deadline = tokio::time::Instant::now() + limits.handshake_timeout;
    let (id, params) = loop {
        let read = tokio::select! {
            r = tokio::time::timeout_at(deadline, socket.recv()) => match r {
                Ok(msg) => classify(msg),
                Err(_) => {
                    let ms = limits.handshake_timeout.as_millis();
                    close_with(&mut socket, close::POLICY_VIOLATION, &format!("handshake timeout: no connect request within {ms} ms")).await;
                    return;
                }
            },
            _ = stopping.changed() => {
                close_with(&mut socket, close::GOING_AWAY, "gateway stopping").await;
                return;
            }
        };
        let text = match read {
            Read::Text(t) => t,
            Read::Skip => continue,
            Read::Gone => return,
            Read::TooBig => return too_big(&mut socket, limits.max_payload).await,
        };
        if text.len() > limits.max_payload {
            return too_big(&mut socket, limits.max_payload).await;
        }
        match parse_frame(&text) {
            // The real peer closes normally, without a reason, on bytes that are not JSON.
            Err(_) => return close_with(&mut socket, close::NORMAL, "").await,
            Ok(Inbound::Req { id, method, params }) if method == "connect" => break (id, params),
            Ok(Inbound::Req { id, .. }) | Ok(Inbound::Other { id: Some(id) }) => {
                return refuse(&mut socket, &id, &first_request_must_be_connect()).await
            }
            Ok(Inbound::Other { id: None }) => {
                return refuse(&mut socket, &Value::Null, &first_request_must_be_connect()).await
            }
        }
    };

    let connect = match protocol::check_connect(&params) {
        Ok(c) => c,
        Err(refusal) => return refuse(&mut socket, &id, &refusal).await,
    };
    let ip = peer.ip();
    let verdict = {
        let now = Instant::now();
        let mut limiter = match shared.limiter.lock() {
            Ok(l) => l,
            // A panic while holding the limiter leaves plain data behind; keep using it.
            Err(poisoned) => poisoned.into_inner(),
        };
        match limiter.check(ip, now) {
            Err(wait) => Err(rate_limited(ip, wait)),
            Ok(()) => match verify(&shared.live.auth(), &connect.auth) {
                Verdict::Accepted => {
                    limiter.reset(ip);
                    Ok(())
                }
                Verdict::Refused { refusal, counts } => {
                    if counts {
                        limiter.record_failure(ip, now);
                    }
                    Err(refusal)
                }
            },
        }
    };
    if let Err(refusal) = verdict {
        return refuse(&mut socket, &id, &refusal).await;
    }

    let scopes = protocol::granted_scopes(&connect);
    let conn_id = uuid::Uuid::new_v4().to_string();
    let hello = methods::hello_ok(&shared, &conn_id, &connect.role, &scopes);
    if !send(&mut socket, protocol::res_ok(&id, hello)).await {
        return;
    }
    let mut seq: u64 = 1;
    if !send(
        &mut socket,
        protocol::event("health", methods::health(&shared), Some(seq)),
    )
    .await
    {
        return;
    }

    let mut events = shared.events.subscribe();
    loop {
        tokio::select! {
            msg = socket.recv() => {
                let text = match classify(msg) {
                    Read::Text(t) => t,
                    Read::Skip => continue,
                    Read::Gone => return,
                    Read::TooBig => return too_big(&mut socket, limits.max_payload).await,
                };
                if text.len() > limits.max_payload {
                    return too_big(&mut socket, limits.max_payload).await;
                }
                let reply = match parse_frame(&text) {
                    Err(_) => return close_with(&mut socket, close::NORMAL, "").await,
                    Ok(Inbound::Req { id, method, params }) => {
                        match dispatch(&shared, &scopes, &method, params).await {
                            Ok(payload) => protocol::res_ok(&id, payload),
                            Err(e) => protocol::res_err(&id, &e),
                        }
                    }
                    Ok(Inbound::Other { id: Some(id) }) => protocol::res_err(
                        &id,
                        &ErrorShape::invalid_request("invalid request frame: expected {\"type\":\"req\",\"id\",\"method\",\"params\"}"),
                    ),
                    Ok(Inbound::Other { id: None }) => continue,
                };
                if !send(&mut socket, reply).await {
                    return;
                }
            }
            ev = events.recv() => match ev {
                Ok(Broadcast::Tick) => {
                    seq += 1;
                    if !send(&mut socket, protocol::event("tick", json!({"ts": now_ms()}), Some(seq))).await {
                        return;
                    }
                }
                Ok(Broadcast::Health) => {
                    seq += 1;
                    if !send(&mut socket, protocol::event("health", methods::health(&shared), Some(seq))).await {
                        return;
                    }
                }
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return,
            },
            _ = stopping.changed() => {
                seq += 1;
                let ev = protocol::event(
                    "shutdown",
                    json!({"reason": "gateway stopping", "restartExpectedMs": null}),
                    Some(seq),
                );
                if send(&mut socket, ev).await {
                    close_with(&mut socket, close::GOING_AWAY, "gateway stopping").await;
                }
                return;
            }
        }
    }
}

async fn dispatch(
    shared: &Arc<Shared>,
    scopes: &[String],
    method: &str,
    params: Value,
) -> Result<Value, ErrorShape> {
    if method == "connect" {
        return Err(ErrorShape::invalid_request(
            "invalid request: connect already completed on this connection",
        ));
    }
    let needed = protocol::required_scope(method);
    if !protocol::allows(scopes, needed) {
        return Err(ErrorShape::missing_scope(needed));
    }
    methods::call(shared, method, params).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(msg: Option<Result<Message, axum::Error>>, expected: Read) {
        assert_eq!(classify(msg), expected);
    }

    #[test]
    fn frames_are_classified() {
        check(None, Read::Gone);
        check(Some(Ok(Message::Close(None))), Read::Gone);
        check(Some(Ok(Message::Ping(Default::default()))), Read::Skip);
        check(
            Some(Ok(Message::Text("{}".into()))),
            Read::Text("{}".into()),
        );
        check(
            Some(Ok(Message::Binary(vec![b'{', b'}'].into()))),
            Read::Text("{}".into()),
        );
        check(
            Some(Ok(Message::Binary(vec![0xff].into()))),
            Read::Text(String::new()),
        );
        check(
            Some(Err(axum::Error::new(
                tokio_tungstenite::tungstenite::Error::Capacity(
                    tokio_tungstenite::tungstenite::error::CapacityError::MessageTooLong {
                        size: 2,
                        max_size: 1,
                    },
                ),
            ))),
            Read::TooBig,
        );
    }

    #[test]
    fn now_is_after_2020() {
        assert!(now_ms() > 1_577_836_800_000);
    }
}
