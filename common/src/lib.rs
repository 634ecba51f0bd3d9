//! Switchyard's wire protocol and shared domain types: codecs and rules only, no I/O.
//!
//! This crate is to Switchyard what `quinn-proto` is to quinn: the hub and the
//! agent both speak through it, and it never touches a socket or a clock.

pub mod bundle;
#[cfg(feature = "manifest")]
pub mod manifest;
mod names;
pub mod proto;
pub mod selector;
#[cfg(feature = "webhook")]
pub mod webhook;

pub use names::{ClusterName, NameError};

/// An error and all its sources on one line (`a: b: c`), for logs and for
/// messages sent to a peer, where `Display` alone would drop the cause.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// ALPN protocol identifier negotiated on every QUIC connection between agent and hub.
pub const ALPN: &[u8] = b"switchyard/1";
