//! Test support for Switchyard's end-to-end tests: the real binaries as
//! processes, raw protocol peers, and the fake Kubernetes API server.

pub mod bench;
pub mod chart_server;
pub mod cluster;
pub mod fake_kube;
pub mod fleet;
pub mod git_server;
mod lighttpd;
pub mod manifests;
pub mod netns;
pub mod oidc_provider;
pub mod process;
pub mod raw;
pub mod relay;
