//! `switchyard-loadgen`: many simulated agents with real QUIC, real mutual TLS
//! and the real protocol against a running `switchyard serve`, for the scale
//! benchmarks (BENCHMARKS.md) and the small-N end-to-end test.
//!
//! Output is one JSON object per line on stdout (see `stats.rs`), so a
//! benchmark driver can time milestones against its own clock.

mod enroll;
mod link;
mod sim;
mod stats;
mod tls_bench;

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

// Ten thousand agents verifying a bundle at the same moment each create and
// drop a zstd decoder; with glibc's allocator that churn (malloc_consolidate)
// took 40% of the machine during the commit phase of the 10,000-agent bench,
// CPU the hub under test then lacked. One process simulating a fleet is not
// how a real agent allocates, so the harness gets an allocator built for it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "switchyard-loadgen", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Register, enroll and run N simulated agents against a hub on this machine.
    Run(RunArgs),
    /// TLS 1.3 handshakes per second with rustls (ring) and the hub's key
    /// types, client and server in one thread, as the physical reference.
    TlsBench {
        /// How long to run.
        #[arg(long, default_value = "3s", value_parser = humantime_duration)]
        duration: Duration,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// The hub's data dir (its hub.json and admin-token are read).
    #[arg(long)]
    hub_dir: PathBuf,
    /// Number of simulated agents.
    #[arg(long, default_value_t = 100)]
    agents: usize,
    /// Cluster names are PREFIX-00000, PREFIX-00001, …
    #[arg(long, default_value = "lg")]
    prefix: String,
    /// Label every cluster with KEY=VALUE (repeatable).
    #[arg(long = "label", value_parser = parse_label)]
    labels: Vec<(String, String)>,
    /// UDP sockets (quinn endpoints) the agents share.
    #[arg(long, default_value_t = 8)]
    sockets: usize,
    /// Cluster registrations and enrollments in flight at once.
    #[arg(long, default_value_t = 32)]
    enroll_concurrency: usize,
    /// Heartbeat status report interval; by default the hub's (from Welcome).
    #[arg(long, value_parser = humantime_duration)]
    report_interval: Option<Duration>,
    /// Spread the agents' first connections over this window.
    #[arg(long, default_value = "0s", value_parser = humantime_duration)]
    ramp: Duration,
    /// Stop after this long, whatever happens.
    #[arg(long, default_value = "1h", value_parser = humantime_duration)]
    duration: Duration,
    /// Exit 0 as soon as every agent holds a non-empty assignment, has
    /// fetched and verified all its bundles and reported them.
    #[arg(long)]
    exit_when_synced: bool,
    /// Print a progress line this often.
    #[arg(long, default_value = "1s", value_parser = humantime_duration)]
    progress_interval: Duration,
}

fn humantime_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{text:?}: {e}"))
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("label {text:?} must be KEY=VALUE"))
}

fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "switchyard_loadgen=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::TlsBench { duration } => {
            tls_bench::run(duration)?;
            Ok(())
        }
        Command::Run(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(run(args))
        }
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.agents > 0, "--agents must be at least 1");
    anyhow::ensure!(args.sockets > 0, "--sockets must be at least 1");
    let hub = enroll::HubInfo::discover(&args.hub_dir)?;
    let stats = Arc::new(stats::Stats::new(args.agents));
    let endpoints = (0..args.sockets)
        .map(|_| link::client_endpoint(hub.agent_addr))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let deadline = tokio::time::Instant::now() + args.duration;

    let enrolled = tokio::time::timeout_at(
        deadline,
        enroll::enroll_all(
            &hub,
            &endpoints,
            &args.prefix,
            &args.labels,
            args.agents,
            args.enroll_concurrency,
        ),
    )
    .await
    .context("--duration ran out while enrolling")??;

    let settings = Arc::new(sim::Settings {
        hub_addr: hub.agent_addr,
        server_name: hub.server_name.clone(),
        report_interval: args.report_interval,
    });
    let ramp_step = args
        .ramp
        .checked_div(args.agents as u32)
        .unwrap_or_default();
    let mut tasks = tokio::task::JoinSet::new();
    for (index, identity) in enrolled.into_iter().enumerate() {
        let endpoint = endpoints[index % endpoints.len()].clone();
        let settings = settings.clone();
        let stats = stats.clone();
        let start = tokio::time::Instant::now() + ramp_step * index as u32;
        tasks.spawn(async move {
            tokio::time::sleep_until(start).await;
            sim::run_agent(index, identity, endpoint, settings, stats).await;
        });
    }

    let progress = stats::print_progress(stats.clone(), args.progress_interval);
    tokio::pin!(progress);
    let outcome = tokio::select! {
        () = tokio::time::sleep_until(deadline) => {
            stats::emit(&serde_json::json!({"event": "duration_over"}));
            if args.exit_when_synced {
                Err(anyhow::anyhow!(
                    "not every agent was synced within --duration: {}",
                    stats.synced_count()
                ))
            } else {
                Ok(())
            }
        }
        () = stats.wait_all_synced(), if args.exit_when_synced => {
            stats::emit(&stats.synced_summary());
            Ok(())
        }
        () = &mut progress => Ok(()),
        _ = tokio::signal::ctrl_c() => Ok(()),
    };
    tasks.abort_all();
    for endpoint in &endpoints {
        endpoint.close(
            switchyard_common::proto::close_code::NORMAL.into(),
            b"load generator stopping",
        );
    }
    outcome
}
