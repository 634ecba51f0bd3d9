//! Making the cluster match the assigned bundles and keeping it that way:
//! pure decisions (health, order, comparison) and the kube-rs I/O around them.

mod cluster;
mod compare;
mod engine;
mod health;
mod hooks;
mod ignore;
mod live;
mod order;
mod plan;
mod runner;

pub(crate) use cluster::Cluster;
pub(crate) use engine::Mode;
pub(crate) use runner::{
    BundleObjects, Desired, DesiredApp, Previewer, Runner, RunnerOptions, spawn,
};
