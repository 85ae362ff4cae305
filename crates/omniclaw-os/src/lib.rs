//! OmniClaw's adapters to the operating system.
//!
//! Atomic file writes, profile discovery on disk, the per-profile instance
//! lock and the lookup of which process holds a port. Each piece is small and
//! carries out a plan the pure core made; none of it decides policy.
//!
//! This crate must never hold business rules (those live in
//! `omniclaw-core`) and never print: it returns typed errors that say what
//! failed, on which path, and what to do.

pub mod desktopctl;
pub mod discovery;
pub mod edit;
pub mod executable;
pub mod fsx;
pub mod intent;
pub mod limits;
pub mod live;
pub mod lock;
pub mod logs;
pub mod portowner;
pub mod profiles;
pub mod remote;
pub mod rescue;
pub mod runtime;
pub mod secrets;
pub mod service;
pub mod version;
pub mod watch;
