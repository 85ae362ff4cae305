//! A local double of the Telegram Bot API for the tests, on a loopback
//! port: `getMe`, `deleteWebhook`, `getUpdates` (long poll with offset,
//! limit and timeout; a newer poll ends an older one with 409, as Telegram
//! does), `sendMessage` (4096-character limit), `editMessageText` (with
//! Telegram's "message is not modified"), `deleteMessage`,
//! `sendChatAction`, `answerCallbackQuery`; 401 for an unknown token.
//! Tests queue updates and read back every reply and what it says now.
//!
//! Text with `parse_mode: HTML` is read as Telegram reads it: only its
//! tags (`b`, `i`, `u`, `s`, `code`, `pre`, `a`, `blockquote`, …), balanced,
//! else 400 "can't parse entities"; the 4096-character limit counts the
//! text shown, not the markup. A test can make it refuse all HTML, and
//! can put a chat under flood control: the next edit there gets 429 with
//! `retry_after`, and so does every request to that chat until then.
//!
//! A gateway reaches it through `channels.telegram.apiRoot`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::Notify;

/// One `sendMessage` the double answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub token: String,
    pub chat_id: i64,
    pub text: String,
    /// `reply_parameters.message_id` (the pushed message's id = its update id).
    pub reply_to: Option<i64>,
    /// Inline keyboard buttons as (label, callback data).
    pub buttons: Vec<(String, String)>,
    /// The message id the double gave it.
    pub message_id: i64,
    /// `parse_mode` (`HTML` for formatted answers).
    pub parse_mode: Option<String>,
    /// When the double received it (benchmarks measure up to here).
    pub at: Instant,
}

#[derive(Default)]
struct Inner {
    /// token → bot username.
    bots: HashMap<String, String>,
    next_update: i64,
    next_message: i64,
    /// Queued updates not yet confirmed by an offset.
    queue: Vec<(i64, Value)>,
    /// Per token: the newest poll's number; an older poll still waiting gets 409.
    poll_gen: HashMap<String, u64>,
    sent: Vec<Sent>,
    answered: Vec<(String, String)>,
    calls: Vec<String>,
    /// A `sendMessage` replying to this message id is held without an answer.
    freeze_reply_to: Option<i64>,
    held: Vec<Sent>,
    /// Answer every method with a 502 (a network failure on the way).
    down: bool,
    /// Every `editMessageText` as (message id, new text), in order.
    edits: Vec<(i64, String)>,
    /// Messages removed by `deleteMessage`.
    deleted: Vec<i64>,
    /// Every call as (method, chat id, when), in order.
    log: Vec<(String, i64, Instant)>,
    /// The next `editMessageText` gets 429 with this `retry_after`.
    flood_next_edit: Option<u64>,
    /// Per chat, until when flood control refuses every request.
    flood_until: HashMap<i64, Instant>,
    /// Each 429 given to an edit, as (chat id, when, retry_after).
    floods: Vec<(i64, Instant, Duration)>,
    /// Refuse any text with `parse_mode: HTML` as unparsable.
    refuse_html: bool,
}

/// Checks `html` as Telegram's HTML parse mode does; `Ok` is the text it
/// shows, `Err` the error description.
pub fn parse_html(html: &str) -> Result<String, String> {
    const TAGS: &[&str] = &[
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "a",
        "code",
        "pre",
        "blockquote",
        "tg-emoji",
    ];
    let mut shown = String::new();
    let mut open: Vec<String> = Vec::new();
    let mut rest = html;
    while !rest.is_empty() {
        let at = html.len() - rest.len();
        if let Some(tail) = rest.strip_prefix('<') {
            let end = tail.find('>').ok_or_else(|| {
                format!("Can't parse entities: unclosed start tag at byte offset {at}")
            })?;
            let tag = &tail[..end];
            rest = &tail[end + 1..];
            if let Some(name) = tag.strip_prefix('/') {
                let name = name.trim().to_ascii_lowercase();
                match open.pop() {
                    Some(o) if o == name => {}
                    Some(o) => {
                        return Err(format!(
                            "Can't parse entities: unmatched end tag at byte offset {at}, expected \"</{o}>\", found \"</{name}>\""
                        ))
                    }
                    None => {
                        return Err(format!(
                            "Can't parse entities: unexpected end tag at byte offset {at}"
                        ))
                    }
                }
                continue;
            }
            let name = tag
                .split(|c: char| c.is_whitespace())
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase();
            if !TAGS.contains(&name.as_str()) {
                return Err(format!(
                    "Can't parse entities: unsupported start tag \"{name}\" at byte offset {at}"
                ));
            }
            if name == "a" && !tag.contains("href=") {
                return Err(format!(
                    "Can't parse entities: a link without href at byte offset {at}"
                ));
            }
            open.push(name);
        } else if let Some(tail) = rest.strip_prefix('&') {
            let known = [("lt;", '<'), ("gt;", '>'), ("amp;", '&'), ("quot;", '"')];
            match known.iter().find(|(e, _)| tail.starts_with(e)) {
                Some((e, c)) => {
                    shown.push(*c);
                    rest = &tail[e.len()..];
                }
                None => {
                    shown.push('&');
                    rest = tail;
                }
            }
        } else {
            let next = rest.find(['<', '&']).unwrap_or(rest.len());
            shown.push_str(&rest[..next]);
            rest = &rest[next..];
        }
    }
    match open.pop() {
        Some(o) => Err(format!(
            "Can't parse entities: can't find end tag corresponding to start tag \"{o}\""
        )),
        None => Ok(shown),
    }
}

/// The text a message shows (its HTML read as Telegram does), or the
/// description of the 400 Telegram answers.
fn shown_text(g: &Inner, params: &Value) -> Result<String, String> {
    let text = params["text"].as_str().unwrap_or_default();
    if params["parse_mode"].as_str() != Some("HTML") {
        return Ok(text.to_string());
    }
    if g.refuse_html {
        return Err(
            "Bad Request: can't parse entities: Unsupported start tag \"b\" at byte offset 0"
                .to_string(),
        );
    }
    parse_html(text).map_err(|why| format!("Bad Request: {}", why.replacen("Can't", "can't", 1)))
}

/// 429 for a chat under flood control, with the seconds left.
fn flood(g: &Inner, chat_id: i64) -> Option<Response> {
    let until = *g.flood_until.get(&chat_id)?;
    let left = until.saturating_duration_since(Instant::now());
    (!left.is_zero()).then(|| too_many(left.as_secs_f64().ceil() as u64))
}

fn too_many(secs: u64) -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        Json(json!({"ok": false, "error_code": 429,
            "description": format!("Too Many Requests: retry after {secs}"),
            "parameters": {"retry_after": secs}})),
    )
        .into_response()
}

/// The running double. Dropping it stops the server.
pub struct BotApiDouble {
    inner: Arc<Mutex<Inner>>,
    notify: Arc<Notify>,
    /// The API root to put in `channels.telegram.apiRoot`.
    pub url: String,
    _runtime: tokio::runtime::Runtime,
}

fn error(code: u16, description: &str) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
    (
        status,
        Json(json!({"ok": false, "error_code": code, "description": description})),
    )
        .into_response()
}

fn ok(result: Value) -> Response {
    Json(json!({"ok": true, "result": result})).into_response()
}

fn user(id: i64, name: &str) -> Value {
    json!({"id": id, "is_bot": false, "first_name": name, "username": name})
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_secs())
}

type Shared = (Arc<Mutex<Inner>>, Arc<Notify>);

async fn method(
    State((inner, notify)): State<Shared>,
    Path((bot, name)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let params: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let Some(token) = bot.strip_prefix("bot").map(str::to_string) else {
        return error(404, "Not Found");
    };
    {
        let mut g = lock(&inner);
        g.calls.push(name.clone());
        let chat_id = params["chat_id"].as_i64().unwrap_or_default();
        g.log.push((name.clone(), chat_id, Instant::now()));
        if g.down {
            return error(502, "Bad Gateway");
        }
        if !g.bots.contains_key(&token) {
            return error(401, "Unauthorized");
        }
        if matches!(
            name.as_str(),
            "sendMessage" | "editMessageText" | "deleteMessage"
        ) {
            if let Some(refused) = flood(&g, chat_id) {
                return refused;
            }
        }
        if name == "editMessageText" {
            if let Some(secs) = g.flood_next_edit.take() {
                let now = Instant::now();
                let wait = Duration::from_secs(secs);
                g.flood_until.insert(chat_id, now + wait);
                g.floods.push((chat_id, now, wait));
                return too_many(secs);
            }
        }
    }
    match name.as_str() {
        "getMe" => {
            let g = lock(&inner);
            let username = g.bots.get(&token).cloned().unwrap_or_default();
            ok(json!({"id": 424242, "is_bot": true, "first_name": "Rescue", "username": username}))
        }
        "deleteWebhook" => ok(json!(true)),
        "getUpdates" => get_updates(&inner, &notify, &token, &params).await,
        "sendMessage" => send_message(&inner, &token, &params).await,
        "editMessageText" => edit_message(&inner, &params),
        "deleteMessage" => {
            let mut g = lock(&inner);
            let id = params["message_id"].as_i64().unwrap_or_default();
            if !g.sent.iter().any(|s| s.message_id == id) || g.deleted.contains(&id) {
                return error(400, "Bad Request: message to delete not found");
            }
            g.deleted.push(id);
            ok(json!(true))
        }
        "sendChatAction" => ok(json!(true)),
        "answerCallbackQuery" => {
            let mut g = lock(&inner);
            let id = params["callback_query_id"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let text = params["text"].as_str().unwrap_or_default().to_string();
            g.answered.push((id, text));
            ok(json!(true))
        }
        _ => error(404, "Not Found: method not found"),
    }
}

async fn get_updates(
    inner: &Arc<Mutex<Inner>>,
    notify: &Arc<Notify>,
    token: &str,
    params: &Value,
) -> Response {
    let offset = params["offset"].as_i64().unwrap_or(0);
    let limit = params["limit"].as_u64().map_or(100, |l| l.clamp(1, 100)) as usize;
    let timeout = Duration::from_secs(params["timeout"].as_u64().unwrap_or(0));
    let generation = {
        let mut g = lock(inner);
        // An offset confirms every update before it: Telegram forgets them.
        g.queue.retain(|(id, _)| *id >= offset);
        let gen = g.poll_gen.entry(token.to_string()).or_insert(0);
        *gen += 1;
        *gen
    };
    // Wake the older poll of this token so it can answer 409.
    notify.notify_waiters();
    let deadline = Instant::now() + timeout;
    loop {
        let wake = notify.notified();
        {
            let g = lock(inner);
            if g.poll_gen.get(token).copied() != Some(generation) {
                return error(
                    409,
                    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
                );
            }
            let ready: Vec<Value> = g
                .queue
                .iter()
                .filter(|(id, _)| *id >= offset)
                .take(limit)
                .map(|(_, u)| u.clone())
                .collect();
            if !ready.is_empty() || Instant::now() >= deadline {
                return ok(Value::Array(ready));
            }
        }
        let _ =
            tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), wake).await;
    }
}

async fn send_message(inner: &Arc<Mutex<Inner>>, token: &str, params: &Value) -> Response {
    let chat_id = params["chat_id"].as_i64().unwrap_or_default();
    let text = params["text"].as_str().unwrap_or_default().to_string();
    let shown = match shown_text(&lock(inner), params) {
        Ok(shown) => shown,
        Err(why) => return error(400, &why),
    };
    if shown.chars().count() > 4096 {
        return error(400, "Bad Request: message is too long");
    }
    if shown.trim().is_empty() {
        return error(400, "Bad Request: message text is empty");
    }
    let buttons = params["reply_markup"]["inline_keyboard"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter_map(Value::as_array)
                .flatten()
                .map(|b| {
                    (
                        b["text"].as_str().unwrap_or_default().to_string(),
                        b["callback_data"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let mut sent = Sent {
        token: token.to_string(),
        chat_id,
        text: text.clone(),
        reply_to: params["reply_parameters"]["message_id"].as_i64(),
        buttons,
        message_id: 0,
        parse_mode: params["parse_mode"].as_str().map(str::to_string),
        at: Instant::now(),
    };
    let message_id = {
        let mut g = lock(inner);
        if sent.reply_to.is_some() && sent.reply_to == g.freeze_reply_to {
            g.held.push(sent);
            None
        } else {
            g.next_message += 1;
            sent.message_id = 1_000_000 + g.next_message;
            g.sent.push(sent);
            Some(1_000_000 + g.next_message)
        }
    };
    let Some(message_id) = message_id else {
        // Held: the sender never learns whether it went out.
        return std::future::pending::<Response>().await;
    };
    ok(json!({
        "message_id": message_id,
        "date": now(),
        "chat": {"id": chat_id, "type": "private", "first_name": "op"},
        "text": text,
    }))
}

fn edit_message(inner: &Arc<Mutex<Inner>>, params: &Value) -> Response {
    let id = params["message_id"].as_i64().unwrap_or_default();
    let text = params["text"].as_str().unwrap_or_default().to_string();
    let mut g = lock(inner);
    let shown = match shown_text(&g, params) {
        Ok(shown) => shown,
        Err(why) => return error(400, &why),
    };
    if shown.chars().count() > 4096 {
        return error(400, "Bad Request: MESSAGE_TOO_LONG");
    }
    if shown.trim().is_empty() {
        return error(400, "Bad Request: message text is empty");
    }
    if !g.sent.iter().any(|s| s.message_id == id) || g.deleted.contains(&id) {
        return error(400, "Bad Request: message to edit not found");
    }
    if current_text(&g, id).as_deref() == Some(text.as_str()) {
        return error(
            400,
            "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message",
        );
    }
    g.edits.push((id, text.clone()));
    ok(
        json!({"message_id": id, "date": now(), "chat": {"id": params["chat_id"], "type": "private"}, "text": text}),
    )
}

/// What message `id` shows now: its newest edit, else its text.
fn current_text(g: &Inner, id: i64) -> Option<String> {
    g.edits
        .iter()
        .rev()
        .find(|(m, _)| *m == id)
        .map(|(_, t)| t.clone())
        .or_else(|| {
            g.sent
                .iter()
                .find(|s| s.message_id == id)
                .map(|s| s.text.clone())
        })
}

fn lock(inner: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    inner
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl BotApiDouble {
    /// Starts the double on a free loopback port.
    pub fn start() -> BotApiDouble {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime for the Bot API double");
        let inner = Arc::new(Mutex::new(Inner::default()));
        let notify = Arc::new(Notify::new());
        let app = Router::new()
            .route("/{bot}/{method}", post(method))
            .with_state((inner.clone(), notify.clone()));
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind the Bot API double");
        let addr = listener.local_addr().expect("local addr");
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        BotApiDouble {
            inner,
            notify,
            url: format!("http://{addr}"),
            _runtime: runtime,
        }
    }

    fn g(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    /// Accepts `token` as the token of a bot called `username`.
    pub fn add_bot(&self, token: &str, username: &str) {
        self.g()
            .bots
            .insert(token.to_string(), username.to_string());
    }

    fn push(&self, make: impl FnOnce(i64) -> Value) -> i64 {
        let id = {
            let mut g = self.g();
            g.next_update += 1;
            let id = g.next_update;
            g.queue.push((id, make(id)));
            id
        };
        self.notify.notify_waiters();
        id
    }

    /// A private message from `user_id` (chat id = user id). Its message id
    /// equals the returned update id.
    pub fn push_message(&self, user_id: i64, text: &str) -> i64 {
        let name = format!("user{user_id}");
        self.push(|id| {
            json!({"update_id": id, "message": {
                "message_id": id, "from": user(user_id, &name),
                "chat": {"id": user_id, "type": "private", "first_name": name},
                "date": now(), "text": text}})
        })
    }

    /// A photo (no text) from `user_id`, privately.
    pub fn push_photo(&self, user_id: i64) -> i64 {
        let name = format!("user{user_id}");
        self.push(|id| {
            json!({"update_id": id, "message": {
                "message_id": id, "from": user(user_id, &name),
                "chat": {"id": user_id, "type": "private", "first_name": name},
                "date": now(),
                "photo": [{"file_id": "f1", "file_unique_id": "u1", "width": 90, "height": 90}]}})
        })
    }

    /// A message in a group chat.
    pub fn push_group_message(&self, user_id: i64, group_id: i64, text: &str) -> i64 {
        let name = format!("user{user_id}");
        self.push(|id| {
            json!({"update_id": id, "message": {
                "message_id": id, "from": user(user_id, &name),
                "chat": {"id": group_id, "type": "group", "title": "ops"},
                "date": now(), "text": text}})
        })
    }

    /// A press of an inline button carrying `data`.
    pub fn push_callback(&self, user_id: i64, data: &str) -> i64 {
        let name = format!("user{user_id}");
        self.push(|id| {
            json!({"update_id": id, "callback_query": {
                "id": format!("cb{id}"), "from": user(user_id, &name), "chat_instance": "1",
                "data": data,
                "message": {"message_id": 1, "date": now(),
                    "chat": {"id": user_id, "type": "private", "first_name": name}, "text": "?"}}})
        })
    }

    /// Every answered `sendMessage`, in order.
    pub fn sent(&self) -> Vec<Sent> {
        self.g().sent.clone()
    }

    /// Replies whose `reply_to` is `message_id`.
    pub fn replies_to(&self, message_id: i64) -> Vec<Sent> {
        self.g()
            .sent
            .iter()
            .filter(|s| s.reply_to == Some(message_id))
            .cloned()
            .collect()
    }

    /// Messages sent to `chat_id` after the first `skip`.
    pub fn sent_to(&self, chat_id: i64) -> Vec<Sent> {
        self.g()
            .sent
            .iter()
            .filter(|s| s.chat_id == chat_id)
            .cloned()
            .collect()
    }

    /// What message `message_id` shows now (its newest edit); `None` when
    /// it was deleted or never sent.
    pub fn text_now(&self, message_id: i64) -> Option<String> {
        let g = self.g();
        if g.deleted.contains(&message_id) {
            return None;
        }
        current_text(&g, message_id)
    }

    /// The messages sent to `chat_id` that still show, with their current
    /// text, in the order they were sent.
    pub fn shown_in(&self, chat_id: i64) -> Vec<Sent> {
        let g = self.g();
        g.sent
            .iter()
            .filter(|s| s.chat_id == chat_id && !g.deleted.contains(&s.message_id))
            .map(|s| Sent {
                text: current_text(&g, s.message_id).unwrap_or_default(),
                ..s.clone()
            })
            .collect()
    }

    /// Every `editMessageText` of `message_id`, in order.
    pub fn edits_of(&self, message_id: i64) -> Vec<String> {
        self.g()
            .edits
            .iter()
            .filter(|(m, _)| *m == message_id)
            .map(|(_, t)| t.clone())
            .collect()
    }

    /// `answerCallbackQuery` calls as (id, text).
    pub fn answered(&self) -> Vec<(String, String)> {
        self.g().answered.clone()
    }

    /// How often `method` was called.
    pub fn calls(&self, method: &str) -> usize {
        self.g().calls.iter().filter(|c| *c == method).count()
    }

    /// Updates queued and not yet confirmed by an offset.
    pub fn unconfirmed(&self) -> usize {
        self.g().queue.len()
    }

    /// Holds, without an answer, the `sendMessage` replying to `message_id`.
    pub fn freeze_reply_to(&self, message_id: Option<i64>) {
        self.g().freeze_reply_to = message_id;
    }

    /// `sendMessage` calls held by [`freeze_reply_to`](Self::freeze_reply_to).
    pub fn held(&self) -> Vec<Sent> {
        self.g().held.clone()
    }

    /// The next `editMessageText` gets 429 with `retry_after: secs`, and
    /// every request to that chat after it too, until `secs` have passed.
    pub fn flood_next_edit(&self, secs: u64) {
        self.g().flood_next_edit = Some(secs);
    }

    /// Each 429 an edit got (see [`flood_next_edit`](Self::flood_next_edit)),
    /// as (chat id, when, retry_after).
    pub fn floods(&self) -> Vec<(i64, Instant, Duration)> {
        self.g().floods.clone()
    }

    /// Every call of `method` as (chat id, when), in order.
    pub fn calls_at(&self, method: &str) -> Vec<(i64, Instant)> {
        self.g()
            .log
            .iter()
            .filter(|(m, _, _)| m == method)
            .map(|(_, chat, at)| (*chat, *at))
            .collect()
    }

    /// While set, any text with `parse_mode: HTML` is refused with 400
    /// "can't parse entities", as Telegram refuses HTML it cannot read.
    pub fn refuse_html(&self, refuse: bool) {
        self.g().refuse_html = refuse;
    }

    /// While down, every method answers 502 (Telegram unreachable).
    pub fn set_down(&self, down: bool) {
        self.g().down = down;
        self.notify.notify_waiters();
    }

    /// Waits until `cond` holds on the sent messages, or panics after `timeout`.
    pub fn wait_sent(
        &self,
        timeout: Duration,
        what: &str,
        cond: impl Fn(&[Sent]) -> bool,
    ) -> Vec<Sent> {
        let deadline = Instant::now() + timeout;
        loop {
            let sent = self.sent();
            if cond(&sent) {
                return sent;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; sent so far:\n{:#?}",
                sent.iter().rev().take(5).collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the first reply to `message_id`.
    pub fn wait_reply(&self, message_id: i64, timeout: Duration) -> Sent {
        self.wait_sent(timeout, &format!("a reply to message {message_id}"), |s| {
            s.iter().any(|m| m.reply_to == Some(message_id))
        });
        self.replies_to(message_id).remove(0)
    }
}

/// Onboards the `rescue` profile of `home` against `api` without questions
/// (`onboard --non-interactive`, the token on stdin, a free base port), with
/// `extra` flags such as `--allow-from ID` or `--target main`.
pub fn onboard_rescue(home: &crate::Home, api: &BotApiDouble, token: &str, extra: &[&str]) {
    onboard_rescue_at(home, api, token, crate::free_base(), false, extra);
}

/// [`onboard_rescue`] on base port `port`, keeping the secrets in the
/// profile's secrets file when `secrets_file` is set (for a test bus
/// without a keychain).
pub fn onboard_rescue_at(
    home: &crate::Home,
    api: &BotApiDouble,
    token: &str,
    port: u16,
    secrets_file: bool,
    extra: &[&str],
) {
    let port = port.to_string();
    let mut args = vec!["--profile", "rescue"];
    if secrets_file {
        args.push("--secrets-file");
    }
    args.extend([
        "onboard",
        "--non-interactive",
        "--telegram-token-stdin",
        "--port",
        &port,
        "--api-root",
        &api.url,
    ]);
    args.extend_from_slice(extra);
    home.run_stdin(&args, token, &[]).expect_code(0);
}

/// Writes the `main` profile of `home` (set up on `port`) as a bot on
/// `api` with token `token` whose assistant's model is `m1` of an
/// OpenAI-style provider at `provider_base` (the provider double):
/// `owner` on `allowFrom` under `dm_policy`, `telegram_extra` more of
/// `channels.telegram` and `extra` more of the top level (JSON5 entries,
/// each ending in a comma). The token goes to the profile's secret store.
#[allow(clippy::too_many_arguments)]
pub fn assistant_bot(
    home: &crate::Home,
    port: u16,
    api: &BotApiDouble,
    token: &str,
    provider_base: &str,
    owner: i64,
    dm_policy: &str,
    telegram_extra: &str,
    extra: &str,
) {
    home.write(
        ".omniclaw-main/omniclaw.json",
        &format!(
            r#"{{
  gateway: {{ port: {port}, auth: {{ token: {{ source: "keychain" }} }} }},
  models: {{ providers: {{ local: {{
    baseUrl: "{provider_base}", api: "openai-completions",
    models: [{{ id: "m1", name: "Model one" }}],
  }} }} }},
  agents: {{ defaults: {{ model: "local/m1" }} }},
  channels: {{ telegram: {{
    botToken: {{ source: "keychain" }}, apiRoot: "{root}",
    dmPolicy: "{dm_policy}", allowFrom: [{owner}],
    {telegram_extra}
  }} }},
  {extra}
}}
"#,
            root = api.url,
        ),
    );
    home.run_stdin(
        &[
            "--profile",
            "main",
            "secrets",
            "set",
            "channels.telegram.botToken",
        ],
        token,
        &[],
    )
    .expect_code(0);
}
