//! The Telegram Bot API methods the bots use, over reqwest (rustls), with a
//! configurable API root so a local double can stand in for Telegram.
//!
//! Errors are sorted into what the poller acts on: a bad token (401),
//! another poller (409), flood control (429), the network, anything else.
//! No error message carries the token: it is part of every URL, and URLs
//! are stripped before an error is kept.

use std::fmt;
use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::types::{BotUser, Sent, Update};
use omniclaw_agent::clock::{Clock as _, SystemClock};
use omniclaw_core::advice::{host_of, NetFailure};

/// Telegram's own API root.
pub const DEFAULT_API_ROOT: &str = "https://api.telegram.org";

/// What went wrong talking to the Bot API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("unauthorized token: Telegram refused the bot token (401); get a new one from @BotFather and store it with `secrets set channels.telegram.botToken`")]
    Unauthorized,
    #[error("another poller uses this bot token (409): stop the other gateway or bot using it, or give this profile its own bot")]
    Conflict,
    #[error("Telegram asks to wait {0} s (flood control)")]
    RetryAfter(u64),
    /// `reason` is the whole error chain, for the log; people see what
    /// `failure` says.
    #[error("cannot reach the Telegram Bot API at {root} ({}); check the network (or channels.telegram.apiRoot)", failure.describe(host_of(root)))]
    Network {
        root: String,
        failure: NetFailure,
        reason: String,
    },
    #[error("Telegram refused {method}: {description} ({code})")]
    Refused {
        method: &'static str,
        code: u64,
        description: String,
    },
}

impl ApiError {
    /// Telegram could not read the formatting ("can't parse entities"):
    /// the same text goes again as plain text.
    pub fn is_parse_error(&self) -> bool {
        matches!(self, ApiError::Refused { code: 400, description, .. }
            if description.contains("can't parse entities"))
    }

    /// An edit that changes nothing, which Telegram refuses as such.
    pub fn is_not_modified(&self) -> bool {
        matches!(self, ApiError::Refused { code: 400, description, .. }
            if description.contains("message is not modified"))
    }
}

/// The bot's own account, from `getMe`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Me {
    pub id: u64,
    pub username: String,
}

/// An inline keyboard button: label and callback data.
pub type Button = (String, String);

/// Every Bot API reply: `ok` with a `result`, or an error code, a
/// description and, under flood control, `parameters.retry_after`.
#[derive(Deserialize)]
struct Reply<T> {
    ok: bool,
    result: Option<T>,
    error_code: Option<u64>,
    description: Option<String>,
    parameters: Option<ReplyParameters>,
}

#[derive(Deserialize)]
struct ReplyParameters {
    retry_after: Option<u64>,
}

/// A Bot API client for one token.
#[derive(Clone)]
pub struct BotApi {
    client: reqwest::Client,
    root: String,
    /// `{root}/bot{token}`: holds the token, so it is never printed.
    base: String,
}

// The token is in the client's URL; never print it.
impl fmt::Debug for BotApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BotApi").field("root", &self.root).finish()
    }
}

impl BotApi {
    /// A client for `token` at `root` (`https://api.telegram.org` or a
    /// double's address). Requests may take `poll` longer than usual (the
    /// long-poll timeout).
    pub fn new(root: &str, token: &str, poll: Duration) -> Result<BotApi, ApiError> {
        let root = root.trim_end_matches('/').to_string();
        let client = omniclaw_agent::net::client_builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(poll + Duration::from_secs(15))
            .build()
            .map_err(|e| ApiError::Network {
                root: root.clone(),
                failure: net_failure(&e),
                reason: e.without_url().to_string(),
            })?;
        let base = format!("{root}/bot{token}");
        Ok(BotApi { client, root, base })
    }

    pub fn root(&self) -> &str {
        &self.root
    }

    /// Calls `method` with `params` and reads its `result`.
    async fn call<T: DeserializeOwned>(
        &self,
        method: &'static str,
        params: &Value,
    ) -> Result<T, ApiError> {
        let response = self
            .client
            .post(format!("{}/{method}", self.base))
            .header(CONTENT_TYPE, "application/json")
            .body(params.to_string())
            .send()
            .await
            .map_err(|e| self.network(e))?;
        let status = response.status();
        // Used only for a 429 that is not the Bot API's JSON (a proxy's).
        let retry_after = (status == StatusCode::TOO_MANY_REQUESTS)
            .then(|| omniclaw_agent::net::retry_after(response.headers(), SystemClock.now_ms()))
            .flatten()
            .map(|wait| wait.as_secs() + u64::from(wait.subsec_nanos() > 0));
        let bytes = response.bytes().await.map_err(|e| self.network(e))?;
        match serde_json::from_slice::<Reply<T>>(&bytes) {
            Ok(Reply {
                ok: true,
                result: Some(result),
                ..
            }) => Ok(result),
            Ok(reply) => Err(self.sort(
                method,
                reply.error_code.unwrap_or(u64::from(status.as_u16())),
                reply
                    .description
                    .unwrap_or_else(|| "a reply without a result".into()),
                reply.parameters.and_then(|p| p.retry_after),
            )),
            // Not the Bot API speaking (a proxy's page, a cut body): the
            // status says what it can.
            Err(e) => match status {
                StatusCode::UNAUTHORIZED | StatusCode::CONFLICT | StatusCode::TOO_MANY_REQUESTS => {
                    Err(self.sort(
                        method,
                        u64::from(status.as_u16()),
                        String::new(),
                        retry_after,
                    ))
                }
                _ => Err(ApiError::Network {
                    root: self.root.clone(),
                    failure: NetFailure::Other,
                    reason: format!(
                        "{method}: HTTP {status} with a body that is not a Bot API reply ({e})"
                    ),
                }),
            },
        }
    }

    fn sort(
        &self,
        method: &'static str,
        code: u64,
        description: String,
        retry_after: Option<u64>,
    ) -> ApiError {
        match code {
            401 | 404 if method == "getMe" => ApiError::Unauthorized,
            401 => ApiError::Unauthorized,
            409 => ApiError::Conflict,
            429 => ApiError::RetryAfter(retry_after.map_or(5, |s| s.max(1))),
            code => ApiError::Refused {
                method,
                code,
                description,
            },
        }
    }

    fn network(&self, e: reqwest::Error) -> ApiError {
        // The URL holds the token.
        let e = e.without_url();
        ApiError::Network {
            root: self.root.clone(),
            failure: net_failure(&e),
            reason: error_chain(&e),
        }
    }

    pub async fn get_me(&self) -> Result<Me, ApiError> {
        let me: BotUser = self.call("getMe", &json!({})).await?;
        Ok(Me {
            id: me.id,
            username: me.username.unwrap_or_default(),
        })
    }

    pub async fn delete_webhook(&self) -> Result<(), ApiError> {
        self.call::<bool>("deleteWebhook", &json!({})).await?;
        Ok(())
    }

    /// Updates from `offset` on, waiting up to `timeout` for the first one.
    pub async fn get_updates(
        &self,
        offset: i64,
        timeout: Duration,
    ) -> Result<Vec<Update>, ApiError> {
        let list: Vec<Box<RawValue>> = self
            .call(
                "getUpdates",
                &json!({
                    "offset": offset,
                    "timeout": timeout.as_secs(),
                    "allowed_updates": ["message", "callback_query"],
                }),
            )
            .await?;
        Update::parse_all(&list).map_err(|e| ApiError::Refused {
            method: "getUpdates",
            code: 200,
            description: format!("an update without an update_id: {e}"),
        })
    }

    /// Sends `text` to `chat_id`, as a reply to `reply_to` when given, with
    /// an inline keyboard when `buttons` is not empty. Returns the message id.
    pub async fn send_message(
        &self,
        chat_id: i64,
        text: &str,
        reply_to: Option<i32>,
        buttons: &[Button],
    ) -> Result<i32, ApiError> {
        self.send(chat_id, text, false, reply_to, buttons).await
    }

    /// Sends `html` (Telegram's HTML); when Telegram cannot parse it, sends
    /// `plain` instead, so formatting never costs the message.
    pub async fn send_html(
        &self,
        chat_id: i64,
        html: &str,
        plain: &str,
        reply_to: Option<i32>,
        buttons: &[Button],
    ) -> Result<i32, ApiError> {
        match self.send(chat_id, html, true, reply_to, buttons).await {
            Err(e) if e.is_parse_error() => {
                tracing::warn!(error = %e, "telegram refused the formatting; sent as plain text");
                self.send(chat_id, plain, false, reply_to, buttons).await
            }
            other => other,
        }
    }

    async fn send(
        &self,
        chat_id: i64,
        text: &str,
        html: bool,
        reply_to: Option<i32>,
        buttons: &[Button],
    ) -> Result<i32, ApiError> {
        let mut params = json!({"chat_id": chat_id, "text": text});
        if html {
            params["parse_mode"] = json!("HTML");
        }
        if let Some(id) = reply_to {
            params["reply_parameters"] =
                json!({"message_id": id, "allow_sending_without_reply": true});
        }
        if let Some(markup) = keyboard(buttons) {
            params["reply_markup"] = markup;
        }
        let sent: Sent = self.call("sendMessage", &params).await?;
        Ok(sent.message_id)
    }

    /// Replaces the text of a message the bot sent (its buttons go unless
    /// `buttons` names new ones). An edit that changes nothing is fine.
    pub async fn edit_message(
        &self,
        chat_id: i64,
        message_id: i32,
        text: &str,
        buttons: &[Button],
    ) -> Result<(), ApiError> {
        self.edit(chat_id, message_id, text, false, buttons).await
    }

    /// [`edit_message`](Self::edit_message) with Telegram's HTML, falling
    /// back to `plain` when Telegram cannot parse it.
    pub async fn edit_html(
        &self,
        chat_id: i64,
        message_id: i32,
        html: &str,
        plain: &str,
    ) -> Result<(), ApiError> {
        match self.edit(chat_id, message_id, html, true, &[]).await {
            Err(e) if e.is_parse_error() => {
                tracing::warn!(error = %e, "telegram refused the formatting; edited as plain text");
                self.edit(chat_id, message_id, plain, false, &[]).await
            }
            other => other,
        }
    }

    async fn edit(
        &self,
        chat_id: i64,
        message_id: i32,
        text: &str,
        html: bool,
        buttons: &[Button],
    ) -> Result<(), ApiError> {
        let mut params = json!({"chat_id": chat_id, "message_id": message_id, "text": text});
        if html {
            params["parse_mode"] = json!("HTML");
        }
        if let Some(markup) = keyboard(buttons) {
            params["reply_markup"] = markup;
        }
        // The edited message, or `true` for an inline message's.
        match self.call::<IgnoredResult>("editMessageText", &params).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_modified() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Shows "typing…" in `chat_id` (Telegram keeps it up to 5 s).
    pub async fn typing(&self, chat_id: i64) -> Result<(), ApiError> {
        self.call::<bool>(
            "sendChatAction",
            &json!({"chat_id": chat_id, "action": "typing"}),
        )
        .await?;
        Ok(())
    }

    /// Deletes a message the bot sent.
    pub async fn delete_message(&self, chat_id: i64, message_id: i32) -> Result<(), ApiError> {
        self.call::<bool>(
            "deleteMessage",
            &json!({"chat_id": chat_id, "message_id": message_id}),
        )
        .await?;
        Ok(())
    }

    pub async fn answer_callback(&self, id: &str, text: &str) -> Result<(), ApiError> {
        self.call::<bool>(
            "answerCallbackQuery",
            &json!({"callback_query_id": id, "text": text}),
        )
        .await?;
        Ok(())
    }
}

/// A result whose content does not matter.
type IgnoredResult = serde::de::IgnoredAny;

/// One row of inline buttons, or none.
fn keyboard(buttons: &[Button]) -> Option<Value> {
    (!buttons.is_empty()).then(|| {
        let row: Vec<Value> = buttons
            .iter()
            .map(|(label, data)| json!({"text": label, "callback_data": data}))
            .collect();
        json!({ "inline_keyboard": [row] })
    })
}

/// What a transport failure was, for people: the causes are searched for
/// an I/O error kind and reqwest's timeout flag, then for the resolver's
/// and the TLS layer's own words (hyper-util calls a failed lookup "dns
/// error"; rustls speaks of certificates, handshakes and corrupt messages).
fn net_failure(e: &(dyn std::error::Error + 'static)) -> NetFailure {
    let mut words = String::new();
    let mut cause = Some(e);
    while let Some(err) = cause {
        if err
            .downcast_ref::<reqwest::Error>()
            .is_some_and(reqwest::Error::is_timeout)
        {
            return NetFailure::Timeout;
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return NetFailure::Refused,
                std::io::ErrorKind::TimedOut => return NetFailure::Timeout,
                _ => {}
            }
        }
        words.push_str(&err.to_string().to_ascii_lowercase());
        words.push('\n');
        cause = err.source();
    }
    NetFailure::of_text(&words)
}

/// The error with its causes ("connection refused" sits a few levels down).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error with a message and an optional cause, as the HTTP stack
    /// nests them.
    #[derive(Debug)]
    struct Layer(
        &'static str,
        Option<Box<dyn std::error::Error + Send + Sync>>,
    );

    impl fmt::Display for Layer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    fn chain(top: &'static str, cause: impl std::error::Error + Send + Sync + 'static) -> Layer {
        Layer(
            "error sending request",
            Some(Box::new(Layer(top, Some(Box::new(cause))))),
        )
    }

    #[test]
    fn transport_failures_are_sorted_for_people() {
        let io = |kind| std::io::Error::new(kind, "os error");
        let cases = [
            (
                chain("client error (Connect)", Layer("dns error", Some(Box::new(Layer("failed to lookup address information: Temporary failure in name resolution", None))))),
                NetFailure::Dns,
            ),
            (
                chain("client error (Connect)", io(std::io::ErrorKind::ConnectionRefused)),
                NetFailure::Refused,
            ),
            (
                chain("client error (Connect)", io(std::io::ErrorKind::TimedOut)),
                NetFailure::Timeout,
            ),
            (
                chain("client error (Connect)", Layer("operation timed out", None)),
                NetFailure::Timeout,
            ),
            (
                chain("client error (Connect)", Layer("invalid peer certificate: UnknownIssuer", None)),
                NetFailure::Tls,
            ),
            (
                chain("client error (Connect)", Layer("received corrupt message of type InvalidContentType", None)),
                NetFailure::Tls,
            ),
            (
                chain("client error (SendRequest)", Layer("connection closed before message completed", None)),
                NetFailure::Other,
            ),
        ];
        for (e, want) in cases {
            assert_eq!(net_failure(&e), want, "{}", error_chain(&e));
        }
    }

    /// A server that answers every method with `status`, `headers` and
    /// `body`, as Telegram or a proxy in front of it might.
    async fn answering(
        status: u16,
        headers: &'static [(&'static str, &'static str)],
        body: &'static str,
    ) -> String {
        use axum::response::IntoResponse;
        let app = axum::Router::new().fallback(move || async move {
            let mut r = (
                axum::http::StatusCode::from_u16(status).expect("a status"),
                body,
            )
                .into_response();
            for (k, v) in headers {
                r.headers_mut()
                    .insert(*k, v.parse().expect("a header value"));
            }
            r
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    const TOKEN: &str = "123456:SECRET-token-part";

    async fn send_to(root: &str) -> Result<i32, ApiError> {
        let api = BotApi::new(root, TOKEN, Duration::from_secs(1)).expect("a client");
        api.send_message(1, "hi", None, &[]).await
    }

    #[tokio::test]
    async fn replies_are_sorted_by_the_bot_apis_words_or_else_by_the_status() {
        let flood = answering(
            429,
            &[],
            r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}"#,
        )
        .await;
        assert_eq!(send_to(&flood).await, Err(ApiError::RetryAfter(7)));

        let proxy_flood = answering(429, &[("retry-after", "3")], "<html>slow down</html>").await;
        assert_eq!(send_to(&proxy_flood).await, Err(ApiError::RetryAfter(3)));

        let bad_token = answering(
            401,
            &[],
            r#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#,
        )
        .await;
        assert_eq!(send_to(&bad_token).await, Err(ApiError::Unauthorized));

        let not_found = answering(
            404,
            &[],
            r#"{"ok":false,"error_code":404,"description":"Not Found"}"#,
        )
        .await;
        let api = BotApi::new(&not_found, TOKEN, Duration::from_secs(1)).expect("a client");
        assert_eq!(api.get_me().await, Err(ApiError::Unauthorized));

        let refused = answering(
            400,
            &[],
            r#"{"ok":false,"error_code":400,"description":"Bad Request: can't parse entities"}"#,
        )
        .await;
        let e = send_to(&refused).await.expect_err("refused");
        assert!(e.is_parse_error(), "{e:?}");

        let gateway_page = answering(502, &[], "<html>Bad Gateway</html>").await;
        match send_to(&gateway_page).await {
            Err(ApiError::Network { reason, .. }) => {
                assert!(reason.contains("sendMessage: HTTP 502"), "{reason}");
            }
            other => panic!("a proxy's page is not the Bot API: {other:?}"),
        }

        let sent = answering(
            200,
            &[],
            r#"{"ok":true,"result":{"message_id":41,"date":1,"chat":{"id":1,"type":"private"},"text":"hi"}}"#,
        )
        .await;
        assert_eq!(send_to(&sent).await, Ok(41));
    }

    #[tokio::test]
    async fn no_error_carries_the_token() {
        // A port nobody listens on: the client's error names the URL,
        // which holds the token, unless it is stripped.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let e = send_to(&format!("http://127.0.0.1:{port}"))
            .await
            .expect_err("nobody listens");
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(
            matches!(
                e,
                ApiError::Network {
                    failure: NetFailure::Refused,
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn people_see_the_failure_not_the_chain() {
        let e = ApiError::Network {
            root: "https://api.telegram.org".into(),
            failure: NetFailure::Dns,
            reason: "error sending request: dns error: failed to lookup address".into(),
        };
        assert_eq!(
            e.to_string(),
            "cannot reach the Telegram Bot API at https://api.telegram.org (DNS lookup for api.telegram.org failed); check the network (or channels.telegram.apiRoot)"
        );
    }
}
