//! Command-line parsing and dispatch for `switchyard`.

mod apps;
mod backup;
mod client;
mod declare;
mod groups;
mod output;
mod progress;
mod quickstart;
mod status;
mod tokens;
mod wait;

pub(crate) use wait::Exit;

use clap::{Args, Parser, Subcommand};
use client::AdminClient;
use output::{OutputFormat, age, print_one, print_table};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use switchyard_hub::api::{AddClusterRequest, LabelRequest, TokenRequest};
use switchyard_hub::config::{LogFormat, ServeSettings};
use switchyard_hub::fleet::{ClusterView, JoinInfo};
use switchyard_hub::server::Hub;

#[derive(Debug, Parser)]
#[command(
    name = "switchyard",
    version,
    about = "GitOps for fleets of Kubernetes clusters: the hub and its admin CLI"
)]
pub(crate) struct Cli {
    /// Where the hub is: global, so it may stand before or after the subcommand.
    #[command(flatten)]
    target: Target,
    #[command(subcommand)]
    command: Command,
}

/// How admin commands find the hub.
#[derive(Debug, Clone, Args)]
pub(crate) struct Target {
    /// The hub's data dir; admin commands read the hub's address and admin
    /// token from it when run on the hub's machine.
    #[arg(long, env = "SWITCHYARD_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// Admin API URL of a remote hub, https://HOST:PORT (use with SWITCHYARD_TOKEN).
    #[arg(long, env = "SWITCHYARD_SERVER", global = true)]
    server: Option<String>,
    /// Trust the hub whose certificate is signed by the CA in this PEM file
    /// (the hub's DATA_DIR/ca/ca.pem). Not `--ca-file`: `repo add` has that
    /// for the Git server's CA.
    #[arg(
        long,
        env = "SWITCHYARD_CA_FILE",
        global = true,
        conflicts_with = "ca_sha256"
    )]
    server_ca_file: Option<PathBuf>,
    /// Trust the hub that presents the CA with this SHA-256 fingerprint (the
    /// --ca-sha256 of its join commands).
    #[arg(long, env = "SWITCHYARD_CA_SHA256", global = true)]
    ca_sha256: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the hub.
    Serve(ServeArgs),
    /// Register, inspect and remove clusters.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Follow Git repositories.
    #[command(subcommand)]
    Repo(apps::RepoCommand),
    /// Deploy directories of repos to clusters.
    #[command(subcommand)]
    App(apps::AppCommand),
    /// Named label selectors that apps target by name.
    #[command(subcommand)]
    Group(groups::GroupCommand),
    /// Make the hub's repos, apps and cluster groups match YAML documents
    /// (apiVersion switchyard.dev/v1), like `kubectl apply`.
    Apply {
        /// File, directory (its *.yaml and *.yml files, sorted) or - for
        /// stdin (repeatable).
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<String>,
        /// Check everything and print what would change, changing nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print the hub's repos, apps and cluster groups as documents `apply` takes.
    Export {
        /// Only these kinds: repo, app, clustergroup.
        kinds: Vec<String>,
        #[arg(short, long, default_value = "yaml")]
        output: declare::ExportFormat,
    },
    /// Bearer tokens with roles for the admin API (admin only).
    #[command(subcommand)]
    Token(tokens::TokenCommand),
    /// Every change made through the admin API, refused ones included (admin only).
    Audit {
        /// Only entries since this long ago (1h, 2d) or this UTC time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// At most this many entries, the newest ones (default 100).
        #[arg(long)]
        limit: Option<usize>,
        #[arg(short, long, default_value = "table")]
        output: OutputFormat,
    },
    /// Save a consistent snapshot of the running hub (store, CA, secrets) to FILE (admin only).
    Backup {
        file: PathBuf,
        #[arg(short, long, default_value = "table")]
        output: OutputFormat,
    },
    /// Restore a backup into a new, empty --data-dir (run it where the new hub will run).
    Restore {
        file: PathBuf,
        #[arg(short, long, default_value = "table")]
        output: OutputFormat,
    },
    /// Sync and health of every app on every cluster it targets (coloured
    /// on a terminal unless NO_COLOR is set).
    Status {
        /// Only this app.
        app: Option<String>,
        #[arg(short, long, default_value = "table")]
        output: OutputFormat,
        /// Keep asking and print again whenever something changes (Ctrl-C stops).
        #[arg(short, long)]
        watch: bool,
        /// How often --watch asks the hub.
        #[arg(long, default_value = "2s", value_parser = humantime::parse_duration, requires = "watch")]
        interval: Duration,
    },
    /// The whole GitOps journey locally: hub, sample repo, three agents, two apps, a commit.
    Quickstart {
        /// Directory for the hub's data, the agents' state and the logs
        /// (default: a new directory under the system temp dir).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Stop everything once the journey is done instead of waiting for Ctrl-C.
        #[arg(long)]
        exit: bool,
        /// Let the first agent apply to this cluster instead of a dry-run.
        #[arg(long)]
        kubeconfig: Option<PathBuf>,
    },
    /// Render one app read from stdin, under these limits (the hub starts it).
    #[command(hide = true)]
    RenderWorker {
        /// Address space limit (RLIMIT_AS) in bytes.
        #[arg(long)]
        memory_bytes: u64,
        /// CPU time limit (RLIMIT_CPU) in seconds.
        #[arg(long)]
        cpu_seconds: u64,
    },
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Settings as a YAML file (keys are the flags' names: quic-listen,
    /// public-names, …); flags and environment variables override it.
    #[arg(long, env = "SWITCHYARD_CONFIG")]
    config: Option<PathBuf>,
    /// UDP address for agent connections (QUIC) [default: 0.0.0.0:7700].
    #[arg(long, env = "SWITCHYARD_QUIC_LISTEN")]
    quic_listen: Option<SocketAddr>,
    /// TCP address for the admin API (HTTPS with the hub's certificate)
    /// [default: 127.0.0.1:7701].
    #[arg(long, env = "SWITCHYARD_HTTP_LISTEN")]
    http_listen: Option<SocketAddr>,
    /// Serve the admin API over plain HTTP instead of HTTPS; refused unless
    /// --http-listen is a loopback address.
    #[arg(long, env = "SWITCHYARD_HTTP_INSECURE", num_args = 0..=1, default_missing_value = "true")]
    http_insecure: Option<bool>,
    /// Host name or IP agents use to reach this hub (repeatable, or
    /// comma-separated in the environment variable); the first one goes
    /// into join commands.
    #[arg(
        long = "public-name",
        env = "SWITCHYARD_PUBLIC_NAME",
        value_delimiter = ','
    )]
    public_names: Vec<String>,
    /// Lifetime of cluster certificates; agents renew at two thirds of it
    /// [default: 7d].
    #[arg(long, env = "SWITCHYARD_CERT_TTL", value_parser = humantime::parse_duration)]
    cert_ttl: Option<Duration>,
    /// How often agents report when nothing changes [default: 30s].
    #[arg(long, env = "SWITCHYARD_HEARTBEAT", value_parser = humantime::parse_duration)]
    heartbeat: Option<Duration>,
    /// Log format [default: text].
    #[arg(long, env = "SWITCHYARD_LOG_FORMAT")]
    log_format: Option<LogFormat>,
    /// Agent connections (handshakes included) one source IP may hold at
    /// once [default: 256].
    #[arg(long, env = "SWITCHYARD_MAX_CONNECTIONS_PER_IP")]
    max_connections_per_ip: Option<u32>,
    /// Request streams an agent may have open at once on its connection
    /// [default: 16].
    #[arg(long, env = "SWITCHYARD_MAX_STREAMS_PER_CONNECTION")]
    max_streams_per_connection: Option<u32>,
    /// Time an agent has to open its first stream and to send each whole
    /// request [default: 10s].
    #[arg(long, env = "SWITCHYARD_REQUEST_TIMEOUT", value_parser = humantime::parse_duration)]
    request_timeout: Option<Duration>,
    /// Time an agent has to read each whole reply before its connection is
    /// closed [default: 30s].
    #[arg(long, env = "SWITCHYARD_REPLY_TIMEOUT", value_parser = humantime::parse_duration)]
    reply_timeout: Option<Duration>,
    /// A connection silent for this long is closed; at least 10s, agents
    /// keep alive every 5s [default: 60s].
    #[arg(long, env = "SWITCHYARD_IDLE_TIMEOUT", value_parser = humantime::parse_duration)]
    idle_timeout: Option<Duration>,
    /// Enrollment attempts per minute from one IP once its burst is spent
    /// [default: 20].
    #[arg(long, env = "SWITCHYARD_ENROLL_PER_MINUTE")]
    enroll_per_minute: Option<u32>,
    /// Enrollment attempts one IP may make at once [default: 10].
    #[arg(long, env = "SWITCHYARD_ENROLL_BURST")]
    enroll_burst: Option<u32>,
    /// Largest pack one Git fetch may receive, in bytes; a larger one is
    /// stopped as it arrives and the repo keeps its previous state
    /// [default: 536870912, 512 MiB].
    #[arg(long, env = "SWITCHYARD_GIT_MAX_PACK_BYTES")]
    git_max_pack_bytes: Option<u64>,
    /// Most objects one fetched pack may hold (checked from its header,
    /// before any is decoded) [default: 1000000].
    #[arg(long, env = "SWITCHYARD_GIT_MAX_OBJECTS")]
    git_max_objects: Option<u64>,
    /// Largest single Git object, and largest allocation decoding a pack
    /// may make, in bytes [default: 104857600, 100 MiB].
    #[arg(long, env = "SWITCHYARD_GIT_MAX_OBJECT_BYTES")]
    git_max_object_bytes: Option<u64>,
    /// Longest one render may run (wall clock, and CPU time of the render
    /// worker and of each program it starts) [default: 60s].
    #[arg(long, env = "SWITCHYARD_RENDER_TIMEOUT", value_parser = humantime::parse_duration)]
    render_timeout: Option<Duration>,
    /// Address space (MiB) of the render worker and of each program it
    /// starts; kubectl kustomize needs about 800 [default: 2048].
    #[arg(long, env = "SWITCHYARD_RENDER_MEMORY_MIB")]
    render_memory_mib: Option<u64>,
    /// Renders that may run at once [default: 4].
    #[arg(long, env = "SWITCHYARD_RENDER_CONCURRENCY")]
    render_concurrency: Option<usize>,
}

#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// Register a cluster and print the command that enrolls its agent.
    Add {
        name: String,
        /// Label as K=V (repeatable).
        #[arg(long = "label", value_parser = parse_label)]
        labels: Vec<(String, String)>,
        /// How long the bootstrap token stays valid.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        token_ttl: Duration,
        #[arg(short, long, default_value = "table")]
        output: OutputFormat,
    },
    /// List clusters.
    List {
        #[arg(short, long, default_value = "table")]
        output: OutputFormat,
    },
    /// Show one cluster.
    Show {
        name: String,
        #[arg(short, long, default_value = "table")]
        output: OutputFormat,
    },
    /// Remove a cluster: revoke its certificate and disconnect its agent.
    Remove {
        name: String,
        #[arg(short, long, default_value = "table")]
        output: OutputFormat,
    },
    /// Mint a new single-use join command for an existing cluster (its agent
    /// lost its identity, or the first token expired).
    Token {
        name: String,
        /// How long the bootstrap token stays valid.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        token_ttl: Duration,
        #[arg(short, long, default_value = "table")]
        output: OutputFormat,
    },
    /// Set labels (K=V) and remove them (K-), like `kubectl label`.
    Label {
        name: String,
        #[arg(required = true)]
        changes: Vec<String>,
        #[arg(short, long, default_value = "table")]
        output: OutputFormat,
    },
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("label {s:?} is not K=V"))?;
    switchyard_hub::fleet::validate_label(k, v).map_err(|e| e.to_string())?;
    Ok((k.to_owned(), v.to_owned()))
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SWITCHYARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if format == LogFormat::Json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Run the render worker if that is what was asked: synchronously, before
/// any async runtime starts its threads.
pub(crate) fn render_worker(cli: &Cli) -> Option<std::process::ExitCode> {
    let Command::RenderWorker {
        memory_bytes,
        cpu_seconds,
    } = cli.command
    else {
        return None;
    };
    use switchyard_hub::render::worker;
    let limits = worker::WorkerLimits {
        memory_bytes,
        cpu_seconds,
    };
    use switchyard_hub::render::reaper;
    let outcome = worker::apply_limits(limits)
        .map_err(anyhow::Error::from)
        .and_then(|()| reaper::become_subreaper().map_err(anyhow::Error::from))
        .and_then(|()| {
            reaper::exit_when_orphaned(std::time::Duration::from_millis(250))
                .map_err(|e| anyhow::anyhow!("starting the orphan watch: {e}"))
        })
        .and_then(|()| {
            let served = worker::serve(&mut std::io::stdin().lock(), &mut std::io::stdout().lock())
                .map_err(anyhow::Error::from);
            // Nothing a render started outlives it, in its group or not
            // (the worker is their subreaper, so they are all below it).
            reaper::kill_descendants(rustix::process::getpid());
            served
        });
    Some(match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    })
}

pub(crate) async fn run(cli: Cli) -> anyhow::Result<()> {
    let target = &cli.target;
    match cli.command {
        Command::Serve(args) => serve(args, target).await,
        Command::Cluster(command) => cluster(command, target).await,
        Command::Repo(command) => apps::repo(command, target).await,
        Command::App(command) => apps::app(command, target).await,
        Command::Group(command) => groups::group(command, target).await,
        Command::Apply { files, dry_run } => declare::apply(&files, dry_run, target).await,
        Command::Export { kinds, output } => declare::export(&kinds, output, target).await,
        Command::Token(command) => tokens::token(command, target).await,
        Command::Audit {
            since,
            limit,
            output,
        } => tokens::audit(since, limit, target, output).await,
        Command::Status {
            app,
            output,
            watch,
            interval,
        } => status::status(app, target, output, watch.then_some(interval)).await,
        Command::Backup { file, output } => backup::take(&file, target, output).await,
        Command::Restore { file, output } => backup::restore(&file, target, output),
        Command::Quickstart {
            dir,
            exit,
            kubeconfig,
        } => quickstart::run(dir, exit, kubeconfig).await,
        Command::RenderWorker { .. } => {
            anyhow::bail!("render-worker is handled before the runtime starts")
        }
    }
}

async fn serve(args: ServeArgs, target: &Target) -> anyhow::Result<()> {
    // Flags and environment variables (clap puts the flag first), then the
    // file, then the defaults.
    let command_line = ServeSettings {
        data_dir: target.data_dir.clone(),
        quic_listen: args.quic_listen,
        http_listen: args.http_listen,
        http_insecure: args.http_insecure,
        public_names: Some(args.public_names).filter(|n| !n.is_empty()),
        cert_ttl: args.cert_ttl,
        heartbeat: args.heartbeat,
        log_format: args.log_format,
        max_connections_per_ip: args.max_connections_per_ip,
        max_streams_per_connection: args.max_streams_per_connection,
        request_timeout: args.request_timeout,
        reply_timeout: args.reply_timeout,
        idle_timeout: args.idle_timeout,
        enroll_per_minute: args.enroll_per_minute,
        enroll_burst: args.enroll_burst,
        git_max_pack_bytes: args.git_max_pack_bytes,
        git_max_objects: args.git_max_objects,
        git_max_object_bytes: args.git_max_object_bytes,
        render_timeout: args.render_timeout,
        render_memory_mib: args.render_memory_mib,
        render_concurrency: args.render_concurrency,
    };
    let file = match &args.config {
        Some(path) => ServeSettings::load(path)?,
        None => ServeSettings::default(),
    };
    let (config, log_format) = command_line.or(file).resolve();
    init_logging(log_format);
    if let Some(path) = &args.config {
        tracing::info!(config = %path.display(), "settings read");
    }
    let hub = Hub::start(config).await?;
    hub.run(shutdown_signal()).await
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
}

pub(crate) fn cluster_row(c: &ClusterView) -> Vec<String> {
    let labels = if c.labels.is_empty() {
        "<none>".to_owned()
    } else {
        c.labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let status = match (c.state.as_str(), c.connected) {
        ("pending", _) => "Pending",
        (_, true) => "Connected",
        _ => "Disconnected",
    };
    vec![
        c.name.clone(),
        labels,
        status.to_owned(),
        c.last_seen
            .as_deref()
            .map_or_else(|| "never".to_owned(), age),
        c.agent_version.clone().unwrap_or_else(|| "-".into()),
        c.kubernetes_version.clone().unwrap_or_else(|| {
            if c.agent_version.is_some() {
                "none"
            } else {
                "-"
            }
            .into()
        }),
        c.cert_expires.clone().unwrap_or_else(|| "-".into()),
    ]
}

pub(crate) const CLUSTER_HEADERS: [&str; 7] = [
    "NAME",
    "LABELS",
    "STATUS",
    "LAST SEEN",
    "AGENT",
    "KUBERNETES",
    "CERT EXPIRES",
];

async fn cluster(command: ClusterCommand, target: &Target) -> anyhow::Result<()> {
    match command {
        ClusterCommand::Add {
            name,
            labels,
            token_ttl,
            output,
        } => {
            let client = AdminClient::discover(target)?;
            let request = AddClusterRequest {
                name,
                labels: labels.into_iter().collect(),
                token_ttl_secs: Some(token_ttl.as_secs().max(1)),
            };
            let added: JoinInfo = client.post("/clusters", &request).await?;
            print_join(&added, "registered", output)
        }
        ClusterCommand::Token {
            name,
            token_ttl,
            output,
        } => {
            let client = AdminClient::discover(target)?;
            let request = TokenRequest {
                token_ttl_secs: Some(token_ttl.as_secs().max(1)),
            };
            let info: JoinInfo = client
                .post(&format!("/clusters/{name}/tokens"), &request)
                .await?;
            print_join(&info, "has a new bootstrap token", output)
        }
        ClusterCommand::List { output } => {
            let client = AdminClient::discover(target)?;
            let clusters: Vec<ClusterView> = client.get("/clusters").await?;
            match output {
                OutputFormat::Table => {
                    if clusters.is_empty() {
                        println!("No clusters. Register one with: switchyard cluster add NAME");
                        return Ok(());
                    }
                    print_table(&CLUSTER_HEADERS, clusters.iter().map(cluster_row));
                    Ok(())
                }
                _ => print_one(&clusters, output),
            }
        }
        ClusterCommand::Show { name, output } => {
            let client = AdminClient::discover(target)?;
            let cluster: ClusterView = client.get(&format!("/clusters/{name}")).await?;
            show_cluster(&cluster, output)
        }
        ClusterCommand::Remove { name, output } => {
            let client = AdminClient::discover(target)?;
            let removed: ClusterView = client.delete(&format!("/clusters/{name}")).await?;
            if output == OutputFormat::Table {
                println!(
                    "cluster {} removed; its certificate is revoked and its agent disconnected",
                    removed.name
                );
                Ok(())
            } else {
                print_one(&removed, output)
            }
        }
        ClusterCommand::Label {
            name,
            changes,
            output,
        } => {
            let mut request = LabelRequest::default();
            for change in changes {
                if let Some(key) = change.strip_suffix('-').filter(|_| !change.contains('=')) {
                    request.remove.push(key.to_owned());
                } else {
                    let (k, v) = parse_label(&change).map_err(anyhow::Error::msg)?;
                    request.set.insert(k, v);
                }
            }
            let client = AdminClient::discover(target)?;
            let cluster: ClusterView = client
                .patch(&format!("/clusters/{name}/labels"), &request)
                .await?;
            if output == OutputFormat::Table {
                println!("cluster {} labeled", cluster.name);
                Ok(())
            } else {
                print_one(&cluster, output)
            }
        }
    }
}

fn print_join(info: &JoinInfo, what: &str, output: OutputFormat) -> anyhow::Result<()> {
    if output != OutputFormat::Table {
        return print_one(info, output);
    }
    println!(
        "cluster {} {what}; the token is single-use and expires at {}.",
        info.cluster.name, info.token_expires
    );
    println!("Run this where the cluster's agent runs to enroll it:\n");
    println!("  {}\n", info.join_command);
    println!(
        "(or write the token to a file only you can read and pass --token-file FILE \
         instead of SWITCHYARD_JOIN_TOKEN; never --token, which every local user can read)"
    );
    Ok(())
}

fn show_cluster(cluster: &ClusterView, output: OutputFormat) -> anyhow::Result<()> {
    if output != OutputFormat::Table {
        return print_one(cluster, output);
    }
    let row = cluster_row(cluster);
    let mut fields: BTreeMap<usize, (&str, String)> = BTreeMap::new();
    for (i, (h, v)) in CLUSTER_HEADERS.iter().zip(row).enumerate() {
        fields.insert(i, (h, v));
    }
    for (_, (h, v)) in fields {
        println!("{:<14}{v}", format!("{}:", titlecase(h)));
    }
    println!(
        "{:<14}{}",
        "Enrolled:",
        cluster.enrolled_at.as_deref().unwrap_or("-")
    );
    println!("{:<14}{}", "Created:", cluster.created_at);
    println!("{:<14}{}", "Generation:", cluster.generation);
    Ok(())
}

fn titlecase(header: &str) -> String {
    let lower = header.to_lowercase();
    let mut chars = lower.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}
