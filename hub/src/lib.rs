//! The Switchyard hub: durable fleet state, the certificate authority, the
//! QUIC endpoint agents dial, and the HTTP admin API the CLI talks to.

mod agents;
pub mod api;
pub mod auth;
pub mod backup;
mod bundle_frames;
pub mod charts;
mod clock;
pub mod config;
mod connection_ids;
pub mod declarative;
pub mod fleet;
pub mod git;
pub mod gitops;
mod https;
pub mod limits;
pub mod metrics;
pub mod oidc;
pub mod paths;
mod registry;
pub mod render;
mod roles;
mod secrets;
pub mod server;
pub mod sessions;
pub mod sign_in;
pub mod status_reports;
pub mod store;
pub mod tree;
pub mod web;

#[cfg(test)]
mod layers;

pub use clock::{rfc3339, unix_now};
