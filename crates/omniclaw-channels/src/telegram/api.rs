//! The Telegram Bot API methods the rescue bot uses, over `frankenstein`
//! (reqwest + rustls), with a configurable API root so a local double can
//! stand in for Telegram.
//!
//! Errors are sorted into what the poller acts on: a bad token (401),
//! another poller (409), flood control (429), the network, anything else.
//! No error message carries the token: it is part of every URL, and URLs
//! are stripped before an error is kept.

use std::fmt;
use std::time::Duration;

use frankenstein::client_reqwest::Bot;
use frankenstein::methods::{
    AnswerCallbackQueryParams, DeleteWebhookParams, GetUpdatesParams, SendMessageParams,
};
use frankenstein::types::{
    AllowedUpdate, InlineKeyboardButton, InlineKeyboardMarkup, ReplyMarkup, ReplyParameters,
};
use frankenstein::updates::Update;
use frankenstein::AsyncTelegramApi;
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

/// The bot's own account, from `getMe`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Me {
    pub id: u64,
    pub username: String,
}

/// An inline keyboard button: label and callback data.
pub type Button = (String, String);

/// A Bot API client for one token.
#[derive(Clone)]
pub struct BotApi {
    bot: Bot,
    root: String,
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
        let client = frankenstein::reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(poll + Duration::from_secs(15))
            .build()
            .map_err(|e| ApiError::Network {
                root: root.clone(),
                failure: net_failure(&e),
                reason: e.without_url().to_string(),
            })?;
        let bot = Bot::builder()
            .api_url(format!("{root}/bot{token}"))
            .client(client)
            .build();
        Ok(BotApi { bot, root })
    }

    pub fn root(&self) -> &str {
        &self.root
    }

    fn sort(&self, method: &'static str, e: frankenstein::Error) -> ApiError {
        match e {
            frankenstein::Error::Api(r) => match r.error_code {
                401 | 404 if method == "getMe" => ApiError::Unauthorized,
                401 => ApiError::Unauthorized,
                409 => ApiError::Conflict,
                429 => ApiError::RetryAfter(
                    r.parameters
                        .and_then(|p| p.retry_after)
                        .map_or(5, |s| u64::from(s).max(1)),
                ),
                code => ApiError::Refused {
                    method,
                    code,
                    description: r.description,
                },
            },
            frankenstein::Error::HttpReqwest(e) => ApiError::Network {
                root: self.root.clone(),
                failure: net_failure(&e),
                reason: error_chain(&e),
            },
            other => ApiError::Network {
                root: self.root.clone(),
                failure: net_failure(&other),
                reason: other.to_string(),
            },
        }
    }

    pub async fn get_me(&self) -> Result<Me, ApiError> {
        let me = self
            .bot
            .get_me()
            .await
            .map_err(|e| self.sort("getMe", e))?
            .result;
        Ok(Me {
            id: me.id,
            username: me.username.unwrap_or_default(),
        })
    }

    pub async fn delete_webhook(&self) -> Result<(), ApiError> {
        let params = DeleteWebhookParams::builder().build();
        self.bot
            .delete_webhook(&params)
            .await
            .map_err(|e| self.sort("deleteWebhook", e))?;
        Ok(())
    }

    /// Updates from `offset` on, waiting up to `timeout` for the first one.
    pub async fn get_updates(
        &self,
        offset: i64,
        timeout: Duration,
    ) -> Result<Vec<Update>, ApiError> {
        let params = GetUpdatesParams::builder()
            .offset(offset)
            .timeout(u32::try_from(timeout.as_secs()).unwrap_or(u32::MAX))
            .allowed_updates(vec![AllowedUpdate::Message, AllowedUpdate::CallbackQuery])
            .build();
        Ok(self
            .bot
            .get_updates(&params)
            .await
            .map_err(|e| self.sort("getUpdates", e))?
            .result)
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
        let reply = reply_to.map(|id| {
            ReplyParameters::builder()
                .message_id(id)
                .allow_sending_without_reply(true)
                .build()
        });
        let markup = (!buttons.is_empty()).then(|| {
            ReplyMarkup::InlineKeyboardMarkup(
                InlineKeyboardMarkup::builder()
                    .inline_keyboard(vec![buttons
                        .iter()
                        .map(|(label, data)| {
                            InlineKeyboardButton::builder()
                                .text(label.clone())
                                .callback_data(data.clone())
                                .build()
                        })
                        .collect()])
                    .build(),
            )
        });
        let params = SendMessageParams::builder()
            .chat_id(chat_id)
            .text(text)
            .maybe_reply_parameters(reply)
            .maybe_reply_markup(markup)
            .build();
        Ok(self
            .bot
            .send_message(&params)
            .await
            .map_err(|e| self.sort("sendMessage", e))?
            .result
            .message_id)
    }

    pub async fn answer_callback(&self, id: &str, text: &str) -> Result<(), ApiError> {
        let params = AnswerCallbackQueryParams::builder()
            .callback_query_id(id)
            .text(text)
            .build();
        self.bot
            .answer_callback_query(&params)
            .await
            .map_err(|e| self.sort("answerCallbackQuery", e))?;
        Ok(())
    }
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
            .downcast_ref::<frankenstein::reqwest::Error>()
            .is_some_and(frankenstein::reqwest::Error::is_timeout)
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
