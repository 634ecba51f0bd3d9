//! `switchyard-agent`: enrolls a cluster with its hub and keeps it connected.

mod backoff;
mod cache;
mod clock;
mod enroll;
mod hub_link;
mod reconcile;
mod session;
mod state;

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use switchyard_process::{LogFormat, init_logging, shutdown_signal};

#[derive(Debug, Parser)]
#[command(
    name = "switchyard-agent",
    version,
    about = "The Switchyard agent: dials the hub and applies what it assigns"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Enroll this cluster with a hub (the command `switchyard cluster add` prints).
    Join {
        /// The hub's agent address, HOST:PORT.
        #[arg(long)]
        hub: String,
        /// The single-use bootstrap token. Prefer --token-file or the
        /// SWITCHYARD_JOIN_TOKEN variable: a command line is readable by
        /// every local user (in /proc) while the token is good.
        #[arg(long, env = "SWITCHYARD_JOIN_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// A file holding the bootstrap token (surrounding whitespace ignored).
        #[arg(long, conflicts_with = "token")]
        token_file: Option<PathBuf>,
        /// SHA-256 fingerprint of the hub's CA certificate.
        #[arg(long)]
        ca_sha256: String,
        /// Where the agent keeps its identity (key written 0600).
        #[arg(long, env = "SWITCHYARD_AGENT_STATE_DIR", default_value_os_t = state::default_state_dir())]
        state_dir: PathBuf,
    },
    /// Stay connected to the hub and follow its assignment.
    Run {
        /// Where `join` stored the agent's identity; the agent caches its
        /// assignment and bundles there too.
        #[arg(long, env = "SWITCHYARD_AGENT_STATE_DIR", default_value_os_t = state::default_state_dir())]
        state_dir: PathBuf,
        /// Print what would be applied instead of touching a cluster (with
        /// --kubeconfig: the plan against that cluster, with diffs).
        #[arg(long)]
        dry_run: bool,
        /// Kubeconfig of the cluster to apply to (default: in-cluster, then
        /// $KUBECONFIG and ~/.kube/config).
        #[arg(long, env = "KUBECONFIG")]
        kubeconfig: Option<PathBuf>,
        /// How often to check every applied object even without events.
        #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
        resync_interval: Duration,
        /// Objects of one sync wave and phase applied at once, at most
        /// (waves and phases still go one after the other).
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
        apply_concurrency: u16,
        /// How long a sync hook (a Job or Pod with argocd.argoproj.io/hook
        /// or helm.sh/hook) may run before it counts as failed, which fails
        /// the sync and runs the SyncFail hooks.
        #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
        hook_timeout: Duration,
        /// How long one pass waits for a sync wave to become healthy (the
        /// next wave and the PostSync hooks start only then) or for running
        /// hooks to finish; after that the pass ends, reports, and the next
        /// pass looks again.
        #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
        wave_wait: Duration,
        /// How long each watch request of the live view lasts before it is
        /// renewed (from the last resourceVersion seen, or by listing again
        /// when the server answers 410 Gone).
        #[arg(long, default_value = "290s", value_parser = humantime::parse_duration)]
        watch_timeout: Duration,
        /// Longest wait between reconnection attempts.
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        max_backoff: Duration,
        /// Log format.
        #[arg(long, default_value = "text", value_parser = ["text", "json"])]
        log_format: String,
    },
}

/// The agent's `--log-format` (`text` or `json`, checked by clap).
fn parse_log_format(format: &str) -> LogFormat {
    if format == "json" {
        LogFormat::Json
    } else {
        LogFormat::Text
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Join {
            hub,
            token,
            token_file,
            ca_sha256,
            state_dir,
        } => {
            init_logging(LogFormat::Text);
            let token = enroll::bootstrap_token(token, token_file.as_deref())?;
            let state = state::StateDir::new(state_dir);
            let cluster = enroll::join(
                enroll::JoinRequest {
                    hub,
                    token,
                    ca_sha256,
                },
                &state,
            )
            .await?;
            println!(
                "enrolled as cluster {cluster}; identity stored in {}",
                state.root().display()
            );
            println!(
                "start the agent with: switchyard-agent run --state-dir {}",
                state.root().display()
            );
            Ok(())
        }
        Command::Run {
            state_dir,
            dry_run,
            kubeconfig,
            resync_interval,
            apply_concurrency,
            hook_timeout,
            wave_wait,
            watch_timeout,
            max_backoff,
            log_format,
        } => {
            init_logging(parse_log_format(&log_format));
            let state = state::StateDir::new(state_dir);
            let identity = state.load()?;
            // Dry-run without a kubeconfig needs no cluster: it prints what it would apply.
            let cluster = if dry_run && kubeconfig.is_none() {
                None
            } else {
                let cluster = reconcile::Cluster::connect(kubeconfig.as_deref(), watch_timeout)
                    .await
                    .context("connecting to the Kubernetes API server")?;
                Some(Arc::new(cluster))
            };
            let kubernetes_version = match &cluster {
                Some(cluster) => match cluster.version().await {
                    Ok(version) => Some(version),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read the API server's version; will keep trying to apply");
                        None
                    }
                },
                None => None,
            };
            let runner = cluster.map(|cluster| {
                reconcile::spawn(
                    cluster,
                    reconcile::RunnerOptions {
                        state_dir: state.root().to_owned(),
                        hub: identity.enrollment.ca_sha256.chars().take(16).collect(),
                        mode: if dry_run {
                            reconcile::Mode::DryRun
                        } else {
                            reconcile::Mode::Apply
                        },
                        resync: resync_interval,
                        apply_concurrency: usize::from(apply_concurrency),
                        hook_timeout,
                        wave_wait,
                    },
                )
            });
            session::run(
                state,
                session::RunOptions {
                    dry_run,
                    runner,
                    kubernetes_version,
                    max_backoff,
                },
                shutdown_signal(),
            )
            .await
        }
    }
}

// mimalloc instead of glibc's allocator: every pass parses and drops each
// app's objects and every watch event is parsed and re-encoded, and glibc
// kept the freed memory in its per-thread arenas: 98 MiB resident for a
// 39 MiB heap peak at 10,000 objects (BENCHMARKS.md, "Agent memory,
// session 11"). mimalloc gives freed pages back to the system.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
