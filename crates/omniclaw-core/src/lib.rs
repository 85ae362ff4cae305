//! The pure domain of OmniClaw.
//!
//! Profiles and the paths they resolve to, the config model and its strict
//! validation, the port plan and the isolation audit. Everything here takes
//! values and returns values or plans; adapters in `omniclaw-os` and the
//! binaries carry them out.
//!
//! This crate must never do IO: no filesystem, no network, no environment
//! reads, no clock, no tokio, no GUI. It can fail only on bad input, and then
//! it says what is wrong, where, and how to fix it.
#![forbid(unsafe_code)]

pub mod advice;
pub mod approval;
pub mod config;
pub mod env;
pub mod executable;
pub mod heal;
pub mod inventory;
pub mod paths;
pub mod ports;
pub mod profile;
pub mod reload;
pub mod remote;
pub mod remotes;
pub mod report;
pub mod rescue;
pub mod service;
pub mod tray;
pub mod tunnel;
