//! The Bot API's update types, as far as the bots read them.
//!
//! Only the fields the channel and onboarding use are parsed; the rest of
//! each update is skipped, and an update of a kind the bots do not handle
//! (an edited message, a poll, a reaction…) is [`UpdateContent::Other`]
//! rather than an error. Every update keeps its JSON as Telegram sent it,
//! for the durable inbox, so nothing Telegram said is lost to the
//! narrower types.

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;

/// One update from `getUpdates`.
#[derive(Debug, Clone)]
pub struct Update {
    pub update_id: i64,
    pub content: UpdateContent,
    /// The update's JSON as Telegram sent it.
    pub raw: String,
}

/// What an update carries.
#[derive(Debug, Clone)]
pub enum UpdateContent {
    Message(Box<Message>),
    CallbackQuery(Box<CallbackQuery>),
    /// A kind of update the bots do not handle, or one whose fields could
    /// not be read (logged when parsed).
    Other,
}

#[derive(Deserialize)]
struct Fields {
    update_id: i64,
    message: Option<Box<Message>>,
    callback_query: Option<Box<CallbackQuery>>,
}

#[derive(Deserialize)]
struct IdOnly {
    update_id: i64,
}

impl Update {
    /// Parses one update. An update whose `update_id` can be read is
    /// never an error: if the fields the bots use do not read (a type
    /// Telegram changed), it is [`UpdateContent::Other`], so the poller
    /// still moves past it.
    pub fn parse(raw: &str) -> Result<Update, serde_json::Error> {
        let content = match serde_json::from_str::<Fields>(raw) {
            Ok(Fields {
                update_id,
                message,
                callback_query,
            }) => {
                let content = match (message, callback_query) {
                    (Some(m), _) => UpdateContent::Message(m),
                    (None, Some(q)) => UpdateContent::CallbackQuery(q),
                    (None, None) => UpdateContent::Other,
                };
                return Ok(Update {
                    update_id,
                    content,
                    raw: raw.to_owned(),
                });
            }
            Err(e) => e,
        };
        let IdOnly { update_id } = serde_json::from_str(raw)?;
        tracing::warn!(update = update_id, error = %content, "a telegram update's fields cannot be read; it is skipped");
        Ok(Update {
            update_id,
            content: UpdateContent::Other,
            raw: raw.to_owned(),
        })
    }

    /// The updates of a `getUpdates` result.
    pub(crate) fn parse_all(list: &[Box<RawValue>]) -> Result<Vec<Update>, serde_json::Error> {
        list.iter().map(|raw| Update::parse(raw.get())).collect()
    }
}

/// A message, with what the bots read of it.
#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    pub message_id: i32,
    pub from: Option<Box<User>>,
    pub chat: Chat,
    pub text: Option<String>,
    pub reply_to_message: Option<Box<Message>>,
    // What only says the message is not text: present or not.
    pub photo: Option<IgnoredAny>,
    pub document: Option<IgnoredAny>,
    pub voice: Option<IgnoredAny>,
    pub audio: Option<IgnoredAny>,
    pub video: Option<IgnoredAny>,
    pub video_note: Option<IgnoredAny>,
    pub sticker: Option<IgnoredAny>,
    pub animation: Option<IgnoredAny>,
    pub location: Option<IgnoredAny>,
    pub contact: Option<IgnoredAny>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct User {
    pub id: u64,
    pub first_name: String,
    pub username: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Chat {
    pub id: i64,
    #[serde(rename = "type")]
    pub type_field: ChatType,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatType {
    Private,
    Group,
    Supergroup,
    Channel,
    #[serde(other)]
    Other,
}

/// A press of an inline button.
#[derive(Debug, Clone, Deserialize)]
pub struct CallbackQuery {
    pub id: String,
    pub from: User,
    /// The message the button was on (its chat is all the bots read; an
    /// old message Telegram no longer shows still names its chat).
    pub message: Option<ButtonMessage>,
    pub data: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ButtonMessage {
    pub chat: Chat,
}

/// The bot's own account, as `getMe` gives it.
#[derive(Debug, Deserialize)]
pub(crate) struct BotUser {
    pub id: u64,
    pub username: Option<String>,
}

/// A sent or edited message: its id is all the bots keep. (An edit of an
/// inline message answers `true` instead; the bots edit only chat
/// messages.)
#[derive(Debug, Deserialize)]
pub(crate) struct Sent {
    pub message_id: i32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_text_message_reads_with_its_sender_and_chat() {
        let u = Update::parse(
            r#"{"update_id":7,"message":{"message_id":3,"date":1,
                "from":{"id":42,"is_bot":false,"first_name":"Ann","username":"ann"},
                "chat":{"id":42,"type":"private","first_name":"Ann"},
                "text":"hello","entities":[]}}"#,
        )
        .expect("parses");
        assert_eq!(u.update_id, 7);
        let UpdateContent::Message(m) = &u.content else {
            panic!("a message: {u:?}");
        };
        assert_eq!(m.message_id, 3);
        assert_eq!(m.text.as_deref(), Some("hello"));
        assert_eq!(m.chat.type_field, ChatType::Private);
        let from = m.from.as_deref().expect("a sender");
        assert_eq!((from.id, from.username.as_deref()), (42, Some("ann")));
        assert!(m.photo.is_none());
        assert!(u.raw.contains("\"entities\":[]"), "kept as sent: {}", u.raw);
    }

    #[test]
    fn media_replies_and_buttons_read() {
        let photo = Update::parse(
            r#"{"update_id":8,"message":{"message_id":4,"date":1,
                "from":{"id":42,"is_bot":false,"first_name":"Ann"},
                "chat":{"id":-100,"type":"supergroup","title":"T"},
                "photo":[{"file_id":"x","width":1,"height":1}],
                "reply_to_message":{"message_id":2,"date":1,
                    "from":{"id":9,"is_bot":true,"first_name":"Bot"},
                    "chat":{"id":-100,"type":"supergroup"}}}}"#,
        )
        .expect("parses");
        let UpdateContent::Message(m) = &photo.content else {
            panic!("a message: {photo:?}");
        };
        assert!(m.photo.is_some() && m.text.is_none());
        assert_eq!(m.chat.type_field, ChatType::Supergroup);
        let replied = m.reply_to_message.as_deref().expect("a reply");
        assert_eq!(replied.from.as_deref().map(|u| u.id), Some(9));

        let button = Update::parse(
            r#"{"update_id":9,"callback_query":{"id":"q1","chat_instance":"c",
                "from":{"id":42,"is_bot":false,"first_name":"Ann"},
                "message":{"message_id":5,"date":0,"chat":{"id":42,"type":"private"}},
                "data":"ok:1"}}"#,
        )
        .expect("parses");
        let UpdateContent::CallbackQuery(q) = &button.content else {
            panic!("a button: {button:?}");
        };
        assert_eq!(q.id, "q1");
        assert_eq!(q.data.as_deref(), Some("ok:1"));
        assert_eq!(q.message.as_ref().map(|m| m.chat.id), Some(42));
    }

    #[test]
    fn other_kinds_and_unreadable_fields_are_skipped_not_errors() {
        let edited = Update::parse(
            r#"{"update_id":10,"edited_message":{"message_id":1,"date":1,"chat":{"id":1,"type":"private"}}}"#,
        )
        .expect("parses");
        assert!(matches!(edited.content, UpdateContent::Other));
        let odd_chat = Update::parse(
            r#"{"update_id":11,"message":{"message_id":1,"date":1,"chat":{"id":1,"type":"forum_thing"}}}"#,
        )
        .expect("parses");
        let UpdateContent::Message(m) = &odd_chat.content else {
            panic!("a message: {odd_chat:?}");
        };
        assert_eq!(m.chat.type_field, ChatType::Other);
        let changed = Update::parse(r#"{"update_id":12,"message":{"message_id":"one"}}"#)
            .expect("still an update");
        assert_eq!(changed.update_id, 12);
        assert!(matches!(changed.content, UpdateContent::Other));
        assert!(Update::parse(r#"{"message":{}}"#).is_err());
    }
}
