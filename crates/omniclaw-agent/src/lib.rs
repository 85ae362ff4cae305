//! The assistant a gateway runs: model providers, sessions, the agent loop,
//! tools and spend.
//!
//! This crate knows no protocol, no channel and no GUI: the gateway maps
//! protocol methods (`chat.send`, `agent`, `sessions.*`) and channels
//! (Telegram, the desktop chat) onto its API. It never reads the process
//! environment and never prints: keys come in through [`provider::KeySource`],
//! time through [`clock::Clock`], and children get the environment their
//! caller hands over.
//!
//! The seams are small traits with data in between:
//! - [`provider::Provider`] streams one completion as [`provider::ProviderEvent`]s;
//!   the OpenAI, Anthropic and Ollama wire formats stay inside their adapters;
//! - [`tool::Tool`] is one tool the model may call; every call passes one
//!   policy check first;
//! - [`session::SessionStore`] keeps transcripts (SQLite in the state dir);
//! - the loop is a function over them.

pub mod agent;
pub mod clock;
#[cfg(feature = "double")]
pub mod double;
pub mod fallover;
pub mod message;
pub mod net;
pub mod prompt;
pub mod provider;
pub mod run;
pub mod session;
pub mod spend;
pub mod store;
pub mod tool;
pub mod tools;
