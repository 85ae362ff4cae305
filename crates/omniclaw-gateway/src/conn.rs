//! One WebSocket connection: challenge, `connect` handshake, then requests
//! and events until either side closes or the gateway stops.
//!
//! Every refusal sends the error `res` first and then the close frame with
//! the code the real peer uses, so clients show the same message.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures_util::stream::{self, StreamExt};
use futures_util::{FutureExt, SinkExt};
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, watch};

use crate::auth::{verify, Client, Verdict};
use crate::hub::Outbound;
use crate::listen::Pending;
use crate::methods;
use crate::protocol::{
    self, close, first_request_must_be_connect, parse_frame, ErrorShape, Inbound, Refusal,
};
use crate::server::{AppState, Broadcast, Shared};

/// The smallest hard frame limit handed to the WebSocket layer.
const MIN_HARD_LIMIT: usize = 64 * 1024;
/// Requests answered from one wake-up before the replies are flushed and
/// stops and events get their turn.
const MAX_BURST: usize = 32;
/// Replies collect in the write buffer up to this many bytes before they
/// are written; a flush writes them earlier (see the request loop).
const WRITE_BATCH: usize = 16 * 1024;
/// How long a close handshake may take before the socket is dropped.
const CLOSE_WAIT: Duration = Duration::from_millis(500);

pub(crate) fn upgrade(
    ws: WebSocketUpgrade,
    state: AppState,
    peer: SocketAddr,
    pending: Pending,
) -> Response {
    let limits = &state.shared.spec.limits;
    // The WebSocket layer cuts at twice the advertised limit; between the two
    // the connection reads the frame and closes with 1009 itself.
    let hard = limits.max_payload.saturating_mul(2).max(MIN_HARD_LIMIT);
    let max_buffered = limits.max_buffered_bytes.max(1);
    ws.read_buffer_size(4096)
        .write_buffer_size(WRITE_BATCH.min(max_buffered / 2))
        .max_write_buffer_size(max_buffered)
        .max_message_size(hard)
        .max_frame_size(hard)
        .on_upgrade(move |socket| run(socket, state, peer, pending))
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
    /// The frame's bytes as received, not copied.
    Text(Utf8Bytes),
    Skip,
    Gone,
    TooBig,
}

fn classify(msg: Option<Result<Message, axum::Error>>) -> Read {
    match msg {
        None | Some(Ok(Message::Close(_))) => Read::Gone,
        Some(Ok(Message::Text(t))) => Read::Text(t),
        Some(Ok(Message::Binary(b))) => match Utf8Bytes::try_from(b) {
            Ok(s) => Read::Text(s),
            // Not text and so not JSON: same answer as malformed JSON.
            Err(_) => Read::Text(Utf8Bytes::from("")),
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

async fn run(mut socket: WebSocket, state: AppState, peer: SocketAddr, pending: Pending) {
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
    let auth = shared.live.auth();
    match verify(&auth, &connect.auth) {
        Verdict::Accepted => {}
        Verdict::Refused { refusal, counts } => {
            if counts {
                // Slowed down, not refused unchecked: the next attempt with
                // the right credentials is let in at once.
                let client = Client::of(peer.ip());
                let failure = crate::auth::lock(&shared.limiter).fail(client, Instant::now());
                crate::auth::log_failure("gateway", client, auth.mode(), &failure);
                tokio::select! {
                    () = tokio::time::sleep(failure.delay) => {}
                    _ = stopping.changed() => {}
                }
            }
            return refuse(&mut socket, &id, &refusal).await;
        }
    }
    // Authenticated: no longer counted against the surface's cap on
    // connections that have not authenticated.
    pending.authenticated();

    let scopes = protocol::granted_scopes(&connect);
    // Registered for events and later answers before `hello-ok` goes out,
    // so nothing emitted after the client's first request is missed.
    let (registration, mut outbound) = shared.live.hub.register(
        protocol::allows(&scopes, protocol::Scope::Read),
        connect.caps.iter().any(|c| c == "tool-events"),
        shared.spec.limits.max_buffered_bytes,
    );
    if protocol::allows(&scopes, protocol::Scope::Approvals) {
        shared.live.hub.allow_approvals(registration.id);
    }
    let me = Caller {
        conn: registration.id,
        scopes: &scopes,
    };
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

    // The event and stop futures live across requests (inside the streams)
    // instead of being made anew for every frame, which would register and
    // unregister their waiters each time.
    let mut events = std::pin::pin!(event_stream(shared.events.subscribe()));
    let mut stops = std::pin::pin!(stop_stream(stopping));
    loop {
        tokio::select! {
            // Stops and events first: requests must not starve them.
            biased;
            _ = stops.next() => {
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
            ev = events.next() => match ev {
                Some(Ok(Broadcast::Tick)) => {
                    seq += 1;
                    if !send(&mut socket, protocol::event("tick", json!({"ts": now_ms()}), Some(seq))).await {
                        return;
                    }
                }
                Some(Ok(Broadcast::Health)) => {
                    seq += 1;
                    if !send(&mut socket, protocol::event("health", methods::health(&shared), Some(seq))).await {
                        return;
                    }
                }
                Some(Err(RecvError::Lagged(_))) => continue,
                Some(Err(RecvError::Closed)) | None => return,
            },
            out = outbound.recv() => {
                // Frames already queued behind this one (a run's `agent`
                // event and its `chat` delta) go out in one write.
                let mut out = out;
                for queued in 1.. {
                    let frame = match out {
                        Some((Outbound::Event { name, payload, .. }, dropped)) => {
                            // Dropped events keep their numbers: the gap says so.
                            seq += 1 + dropped;
                            protocol::event(name, &*payload, Some(seq))
                        }
                        Some((Outbound::Res { id, result: Ok(payload) }, _)) => protocol::res_ok(&id, payload),
                        Some((Outbound::Res { id, result: Err(e) }, _)) => protocol::res_err(&id, &e),
                        None => return,
                    };
                    if socket.feed(Message::Text(frame.into())).await.is_err() {
                        return;
                    }
                    if queued == MAX_BURST {
                        break;
                    }
                    match outbound.try_recv() {
                        Some(next) => out = Some(next),
                        None => break,
                    }
                }
                if socket.flush().await.is_err() {
                    return;
                }
            },
            msg = socket.recv() => {
                // Requests already received are answered before the flush,
                // so a burst goes out in few writes; a reply to a lone
                // request is flushed at once.
                let mut msg = msg;
                for answered in 1.. {
                    match answer(&mut socket, &shared, &me, msg).await {
                        Step::End => return,
                        Step::Skip => {}
                        Step::Reply(text) => {
                            if socket.feed(Message::Text(text.into())).await.is_err() {
                                return;
                            }
                        }
                    }
                    if answered == MAX_BURST {
                        break;
                    }
                    match socket.recv().now_or_never() {
                        Some(next) => msg = next,
                        None => break,
                    }
                }
                if socket.flush().await.is_err() {
                    return;
                }
            }
        }
    }
}

/// What became of one inbound frame.
enum Step {
    /// Send this frame.
    Reply(String),
    /// Nothing to answer.
    Skip,
    /// The connection is over (closed by the peer, or closed here).
    End,
}

/// Who is asking: the connection's place in the hub and its scopes.
pub(crate) struct Caller<'a> {
    pub conn: u64,
    pub scopes: &'a [String],
}

async fn answer(
    socket: &mut WebSocket,
    shared: &Arc<Shared>,
    me: &Caller<'_>,
    msg: Option<Result<Message, axum::Error>>,
) -> Step {
    let max = shared.spec.limits.max_payload;
    let text = match classify(msg) {
        Read::Text(t) => t,
        Read::Skip => return Step::Skip,
        Read::Gone => return Step::End,
        Read::TooBig => {
            too_big(socket, max).await;
            return Step::End;
        }
    };
    if text.len() > max {
        too_big(socket, max).await;
        return Step::End;
    }
    match parse_frame(&text) {
        Err(_) => {
            close_with(socket, close::NORMAL, "").await;
            Step::End
        }
        Ok(Inbound::Req { id, method, params }) => {
            Step::Reply(match dispatch(shared, me, &id, &method, params).await {
                Ok(payload) => protocol::res_ok(&id, payload),
                Err(e) => protocol::res_err(&id, &e),
            })
        }
        Ok(Inbound::Other { id: Some(id) }) => Step::Reply(protocol::res_err(
            &id,
            &ErrorShape::invalid_request(
                "invalid request frame: expected {\"type\":\"req\",\"id\",\"method\",\"params\"}",
            ),
        )),
        Ok(Inbound::Other { id: None }) => Step::Skip,
    }
}

/// Gateway-wide events, one `recv` at a time, its waiter kept between polls.
fn event_stream(
    rx: broadcast::Receiver<Broadcast>,
) -> impl futures_util::Stream<Item = Result<Broadcast, RecvError>> {
    stream::unfold(rx, |mut rx| async move {
        let ev = rx.recv().await;
        Some((ev, rx))
    })
}

/// Yields once the gateway starts stopping (or its stop sender is gone).
fn stop_stream(rx: watch::Receiver<bool>) -> impl futures_util::Stream<Item = ()> {
    stream::unfold(rx, |mut rx| async move {
        // Err means the sender is gone: stop as well.
        let _ = rx.changed().await;
        Some(((), rx))
    })
}

async fn dispatch<'a>(
    shared: &'a Arc<Shared>,
    me: &Caller<'_>,
    id: &Value,
    method: &str,
    params: Value,
) -> Result<methods::Payload<'a>, ErrorShape> {
    if method == "connect" {
        return Err(ErrorShape::invalid_request(
            "invalid request: connect already completed on this connection",
        ));
    }
    let needed = protocol::required_scope_for(method, &params);
    if !protocol::allows(me.scopes, needed) {
        return Err(ErrorShape::missing_scope(needed));
    }
    methods::call(shared, me, id, method, params).await
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
            Read::Text("".into()),
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

    type Client = tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >;

    async fn next_json(ws: &mut Client) -> Value {
        loop {
            let msg = ws.next().await.expect("open").expect("frame");
            if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
                return serde_json::from_str(t.as_str()).expect("JSON");
            }
        }
    }

    /// The answer to each of `n` requests sent in one burst, in order,
    /// skipping events.
    async fn answers(ws: &mut Client, n: usize) -> Vec<(String, bool)> {
        let mut out = Vec::new();
        while out.len() < n {
            let frame = next_json(ws).await;
            if frame["type"] == "res" {
                let id = frame["id"].as_str().expect("id").to_string();
                out.push((id, frame["ok"] == true));
            }
        }
        out
    }

    #[tokio::test]
    async fn a_burst_of_requests_is_answered_in_order() {
        use tokio_tungstenite::tungstenite::Message as Frame;

        let dir = tempfile::tempdir().expect("tempdir");
        let mut spec = crate::GatewaySpec::new(
            "main",
            dir.path().join("omniclaw.json"),
            dir.path().to_path_buf(),
            dir.path().join("workspace"),
            0,
        );
        spec.browser.enabled = false;
        spec.canvas.enabled = false;
        let bound = crate::Gateway::bind(spec).expect("bind");
        let url = format!("ws://{}", bound.addrs().gateway);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(bound.serve(async {
            let _ = stopped.await;
        }));

        let run = async {
            let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
                .await
                .expect("connect");
            assert_eq!(next_json(&mut ws).await["event"], "connect.challenge");
            let connect = json!({"type": "req", "id": "c", "method": "connect", "params": {
                "minProtocol": 4, "maxProtocol": 4,
                "client": {"id": "cli", "version": "1", "platform": "linux", "mode": "cli"},
                "scopes": ["operator.read"],
            }});
            ws.send(Frame::text(connect.to_string()))
                .await
                .expect("send");
            assert_eq!(answers(&mut ws, 1).await, [("c".to_string(), true)]);

            // More requests than one wake-up answers, every tenth not a request
            // (an error answer), all written before any answer is read.
            let n = MAX_BURST * 3 + 5;
            for i in 0..n {
                let frame = if i % 10 == 9 {
                    format!(r#"{{"type":"nope","id":"{i}"}}"#)
                } else {
                    format!(r#"{{"type":"req","id":"{i}","method":"health"}}"#)
                };
                ws.feed(Frame::text(frame)).await.expect("feed");
            }
            ws.flush().await.expect("flush");
            let expected: Vec<(String, bool)> =
                (0..n).map(|i| (i.to_string(), i % 10 != 9)).collect();
            assert_eq!(answers(&mut ws, n).await, expected);

            // A lone request after the burst is answered without waiting for more.
            ws.send(Frame::text(
                r#"{"type":"req","id":"last","method":"status"}"#,
            ))
            .await
            .expect("send");
            assert_eq!(answers(&mut ws, 1).await, [("last".to_string(), true)]);
        };
        tokio::time::timeout(Duration::from_secs(20), run)
            .await
            .expect("every request answered within 20 s");
        let _ = stop.send(());
        server.await.expect("server task").expect("served");
    }

    #[test]
    fn now_is_after_2020() {
        assert!(now_ms() > 1_577_836_800_000);
    }
}
