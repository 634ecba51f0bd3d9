//! Switchyard's wire protocol and shared domain types: codecs and rules only, no I/O.
//!
//! This crate is to Switchyard what `quinn-proto` is to quinn: the hub and the
//! agent both speak through it, and it never touches a socket or a clock.

pub mod bundle;
mod names;
pub mod proto;
pub mod selector;

pub use names::{ClusterName, NameError};

/// ALPN protocol identifier negotiated on every QUIC connection between agent and hub.
pub const ALPN: &[u8] = b"switchyard/1";
