//! The OmniClaw gateway server.
//!
//! One gateway is three listeners owned by one profile: the control plane on
//! the base port (HTTP probes plus the OpenClaw gateway protocol, version 4,
//! over WebSocket), the browser control service on loopback, and the canvas
//! host serving `<workspace>/canvas`. [`Gateway::bind`] takes every port
//! first and fails cleanly (naming port, surface and holder) before anything
//! serves; [`Bound::serve`] then runs until the shutdown future resolves.
//! [`Host`] supervises any number of gateways in one process, and
//! [`client::Client`] speaks the same protocol from the other side.
//!
//! This crate never resolves profiles or reads the process environment: the
//! caller computes a [`GatewaySpec`] (with `omniclaw-core`) and hands it in.
//! It never writes a secret into a payload, a log line or a file.

pub mod approvals;
pub mod assistant;
pub mod auth;
pub mod browser;
pub mod canvas;
pub mod client;
mod conn;
mod error;
pub mod guard;
pub mod heal;
pub mod host;
mod http;
mod hub;
mod listen;
mod methods;
pub mod profile;
pub mod protocol;
pub mod rebuild;
pub mod reload;
mod server;
mod spec;
mod telegram;

pub use error::{RunError, StartError, Surface};
pub use host::{GatewayState, Host, HostError};
pub use server::{run, Addrs, Bound, Gateway, ServeError};
pub use spec::{Auth, BrowserSpec, CanvasSpec, GatewaySpec, Limits};

/// The version this gateway reports in `hello-ok` and `status`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
