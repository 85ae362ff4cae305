//! The channels people talk to a gateway through: today the Telegram bot
//! (its Bot API client, the long-polling channel with access control and
//! the rescue commands it carries out).
//!
//! A channel knows no protocol and serves nothing: the gateway runs it for
//! the life of its config and hands it the settings; what the channel says
//! and does is decided here and in the core's rules.

pub mod telegram;
