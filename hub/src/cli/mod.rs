//! Command-line parsing and dispatch for `switchyard`.

mod app_flags;
mod apps;
mod backup;
mod client;
mod declare;
mod exit;
mod groups;
mod import;
mod login;
mod output;
mod progress;
mod quickstart;
mod repos;
mod status;
mod tokens;
mod wait;

pub(crate) use exit::code_of;

use clap::{Args, Parser, Subcommand};
use client::AdminClient;
use output::{OutputFormat, age, print_one, print_table};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use switchyard_common::{NameError, NameKind, validate_name};
use switchyard_hub::api::{AddClusterRequest, LabelRequest, TokenRequest};
use switchyard_hub::config::{LogFormat, ServeSettings};
use switchyard_hub::fleet::{ClusterView, JoinInfo};
use switchyard_hub::server::Hub;

#[derive(Debug, Parser)]
#[command(
    name = "switchyard",
    version,
    about = "GitOps for fleets of Kubernetes clusters: the hub and its admin CLI",
    after_help = "The client commands find the hub through the Connection flags \
                  (--data-dir, --server, --server-ca-file, --ca-sha256); see their --help."
)]
pub(crate) struct Cli {
    /// The connection flags may also stand before the subcommand, like
    /// kubectl's; hidden here because they belong to the client commands.
    #[command(flatten)]
    before: Before,
    #[command(subcommand)]
    command: Command,
}

/// The connection flags given before the subcommand: no environment
/// variables (the subcommand's own flags read those), hidden from help.
#[derive(Debug, Clone, Default, Args)]
struct Before {
    #[arg(long = "data-dir", id = "before_data_dir", hide = true)]
    data_dir: Option<PathBuf>,
    #[arg(long = "server", id = "before_server", hide = true)]
    server: Option<String>,
    #[arg(long = "server-ca-file", id = "before_server_ca_file", hide = true)]
    server_ca_file: Option<PathBuf>,
    #[arg(long = "ca-sha256", id = "before_ca_sha256", hide = true)]
    ca_sha256: Option<String>,
}

impl Before {
    /// The flags given, by name, for refusing them where they mean nothing.
    fn given(&self) -> Vec<&'static str> {
        [
            (self.data_dir.is_some(), "--data-dir"),
            (self.server.is_some(), "--server"),
            (self.server_ca_file.is_some(), "--server-ca-file"),
            (self.ca_sha256.is_some(), "--ca-sha256"),
        ]
        .into_iter()
        .filter_map(|(given, name)| given.then_some(name))
        .collect()
    }
}

/// How admin commands find the hub.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Connection")]
pub(crate) struct Target {
    /// The hub's data dir; admin commands read the hub's address and admin
    /// token from it when run on the hub's machine [default:
    /// $XDG_DATA_HOME/switchyard or ~/.local/share/switchyard].
    #[arg(long, env = "SWITCHYARD_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// Admin API URL of a remote hub, https://HOST:PORT (use with SWITCHYARD_TOKEN).
    #[arg(long, env = "SWITCHYARD_SERVER", global = true)]
    server: Option<String>,
    /// Trust the hub whose certificate is signed by the CA in this PEM file
    /// (the hub's DATA_DIR/ca/ca.pem).
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

/// Merge one connection flag given before the subcommand with the
/// subcommand's own (flag or environment variable): either one, and the
/// same value if both.
fn merge<T: PartialEq + std::fmt::Debug>(
    flag: &str,
    before: Option<T>,
    after: Option<T>,
) -> anyhow::Result<Option<T>> {
    match (before, after) {
        (Some(b), Some(a)) if a != b => anyhow::bail!(
            "{flag} is given twice with different values ({b:?} before the subcommand, \
             {a:?} after it or from its environment variable); give it once"
        ),
        (b, a) => Ok(a.or(b)),
    }
}

impl Target {
    fn with_before(self, before: &Before) -> anyhow::Result<Target> {
        let before = before.clone();
        Ok(Target {
            data_dir: merge("--data-dir", before.data_dir, self.data_dir)?,
            server: merge("--server", before.server, self.server)?,
            server_ca_file: merge(
                "--server-ca-file",
                before.server_ca_file,
                self.server_ca_file,
            )?,
            ca_sha256: merge("--ca-sha256", before.ca_sha256, self.ca_sha256)?,
        })
    }
}

/// A group of client subcommands with the connection flags, which apply to
/// every subcommand of the group.
#[derive(Debug, Args)]
pub(crate) struct Client<C: Subcommand> {
    #[command(flatten)]
    target: Target,
    #[command(subcommand)]
    command: C,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the hub.
    Serve(ServeArgs),
    /// Register, inspect and remove clusters.
    Cluster(Client<ClusterCommand>),
    /// Follow Git repositories.
    Repo(Client<repos::RepoCommand>),
    /// Deploy directories of repos to clusters.
    App(Client<apps::AppCommand>),
    /// Named label selectors that apps target by name.
    Group(Client<groups::GroupCommand>),
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
        #[command(flatten)]
        target: Target,
    },
    /// Translate another tool's manifests into documents `apply` takes.
    #[command(subcommand)]
    Import(Box<import::ImportCommand>),
    /// Print the hub's repos, apps and cluster groups as documents `apply` takes.
    Export {
        /// Only these kinds: repo, app, clustergroup.
        kinds: Vec<String>,
        /// Document format.
        #[arg(short, long, default_value = "yaml")]
        output: declare::ExportFormat,
        #[command(flatten)]
        target: Target,
    },
    /// Bearer tokens with roles for the admin API (admin only).
    Token(Client<tokens::TokenCommand>),
    /// Sign in to a hub with its OpenID provider (device flow) and keep the
    /// token in ~/.config/switchyard/config.yaml (or $SWITCHYARD_CLIENT_CONFIG).
    Login {
        #[command(flatten)]
        target: Target,
    },
    /// Forget the stored sign-in of --server (or of the current context).
    Logout {
        #[command(flatten)]
        target: Target,
    },
    /// Every change made through the admin API, refused ones included (admin only).
    Audit {
        /// Only entries since this long ago (1h, 2d) or this UTC time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// At most this many entries, the newest ones [default: 100].
        #[arg(long)]
        limit: Option<usize>,
        /// How to print the result: table, json or yaml.
        #[arg(short, long, default_value = "table")]
        output: OutputFormat,
        #[command(flatten)]
        target: Target,
    },
    /// Save a consistent snapshot of the running hub (store, CA, secrets) to FILE (admin only).
    Backup {
        /// Where to write the backup (created 0600).
        file: PathBuf,
        /// How to print the result: table, json or yaml.
        #[arg(short, long, default_value = "table")]
        output: OutputFormat,
        #[command(flatten)]
        target: Target,
    },
    /// Restore a backup into a new, empty --data-dir (run it where the new hub will run).
    Restore {
        /// A file `switchyard backup` wrote.
        file: PathBuf,
        /// The new hub's data dir; must not exist or be empty.
        #[arg(long, env = "SWITCHYARD_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// How to print the result: table, json or yaml.
        #[arg(short, long, default_value = "table")]
        output: OutputFormat,
    },
    /// Sync and health of every app on every cluster it targets (coloured
    /// on a terminal unless NO_COLOR is set).
    Status {
        /// Only this app (an error if there is no such app).
        app: Option<String>,
        /// How to print the result: table, json or yaml.
        #[arg(short, long, default_value = "table")]
        output: OutputFormat,
        /// Keep asking and print again whenever something changes (Ctrl-C stops).
        #[arg(short, long)]
        watch: bool,
        /// How often --watch asks the hub.
        #[arg(long, default_value = "2s", value_parser = humantime::parse_duration, requires = "watch")]
        interval: Duration,
        #[command(flatten)]
        target: Target,
    },
    /// The whole GitOps journey locally: hub, sample repo, three agents, two apps, a commit.
    Quickstart(quickstart::QuickstartArgs),
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
    /// Where the hub keeps its store, CA, secrets and discovery file
    /// [default: $XDG_DATA_HOME/switchyard or ~/.local/share/switchyard].
    #[arg(long, env = "SWITCHYARD_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Settings as a YAML file (keys are the flags' names: quic-listen,
    /// public-names, …); flags and environment variables override it.
    #[arg(long, env = "SWITCHYARD_CONFIG")]
    config: Option<PathBuf>,
    /// UDP address for agent connections (QUIC) [default: 0.0.0.0:7700].
    #[arg(help_heading = "Listen", long, env = "SWITCHYARD_QUIC_LISTEN")]
    quic_listen: Option<SocketAddr>,
    /// TCP address for the admin API (HTTPS with the hub's certificate)
    /// [default: 127.0.0.1:7701].
    #[arg(help_heading = "Listen", long, env = "SWITCHYARD_HTTP_LISTEN")]
    http_listen: Option<SocketAddr>,
    /// Serve the admin API over plain HTTP instead of HTTPS; refused unless
    /// --http-listen is a loopback address.
    #[arg(help_heading = "Listen", long, env = "SWITCHYARD_HTTP_INSECURE", num_args = 0..=1, default_missing_value = "true")]
    http_insecure: Option<bool>,
    /// Host name or IP agents use to reach this hub (repeatable, or
    /// comma-separated in the environment variable); the first one goes
    /// into join commands.
    #[arg(
        help_heading = "Listen",
        long = "public-name",
        env = "SWITCHYARD_PUBLIC_NAME",
        value_delimiter = ','
    )]
    public_names: Vec<String>,
    /// Lifetime of cluster certificates; agents renew at two thirds of it
    /// [default: 7d].
    #[arg(help_heading = "Agents", long, env = "SWITCHYARD_CERT_TTL", value_parser = humantime::parse_duration)]
    cert_ttl: Option<Duration>,
    /// How often agents report when nothing changes [default: 30s].
    #[arg(help_heading = "Agents", long, env = "SWITCHYARD_HEARTBEAT", value_parser = humantime::parse_duration)]
    heartbeat: Option<Duration>,
    /// Log format [default: text].
    #[arg(long, env = "SWITCHYARD_LOG_FORMAT")]
    log_format: Option<LogFormat>,
    /// Agent connections (handshakes included) one source IP may hold at
    /// once [default: 256].
    #[arg(
        help_heading = "Agent connection limits",
        long,
        env = "SWITCHYARD_MAX_CONNECTIONS_PER_IP"
    )]
    max_connections_per_ip: Option<u32>,
    /// Request streams an agent may have open at once on its connection
    /// [default: 16].
    #[arg(
        help_heading = "Agent connection limits",
        long,
        env = "SWITCHYARD_MAX_STREAMS_PER_CONNECTION"
    )]
    max_streams_per_connection: Option<u32>,
    /// Time an agent has to open its first stream and to send each whole
    /// request [default: 10s].
    #[arg(help_heading = "Agent connection limits", long, env = "SWITCHYARD_REQUEST_TIMEOUT", value_parser = humantime::parse_duration)]
    request_timeout: Option<Duration>,
    /// Time an agent has to read each whole reply before its connection is
    /// closed [default: 30s].
    #[arg(help_heading = "Agent connection limits", long, env = "SWITCHYARD_REPLY_TIMEOUT", value_parser = humantime::parse_duration)]
    reply_timeout: Option<Duration>,
    /// A connection silent for this long is closed; at least 10s, agents
    /// keep alive every 5s [default: 60s].
    #[arg(help_heading = "Agent connection limits", long, env = "SWITCHYARD_IDLE_TIMEOUT", value_parser = humantime::parse_duration)]
    idle_timeout: Option<Duration>,
    /// Enrollment attempts per minute from one IP once its burst is spent
    /// [default: 20].
    #[arg(
        help_heading = "Agent connection limits",
        long,
        env = "SWITCHYARD_ENROLL_PER_MINUTE"
    )]
    enroll_per_minute: Option<u32>,
    /// Enrollment attempts one IP may make at once [default: 10].
    #[arg(
        help_heading = "Agent connection limits",
        long,
        env = "SWITCHYARD_ENROLL_BURST"
    )]
    enroll_burst: Option<u32>,
    /// Largest pack one Git fetch may receive, in bytes; a larger one is
    /// stopped as it arrives and the repo keeps its previous state
    /// [default: 536870912, 512 MiB].
    #[arg(
        help_heading = "Git limits",
        long,
        env = "SWITCHYARD_GIT_MAX_PACK_BYTES"
    )]
    git_max_pack_bytes: Option<u64>,
    /// Most objects one fetched pack may hold (checked from its header,
    /// before any is decoded) [default: 1000000].
    #[arg(help_heading = "Git limits", long, env = "SWITCHYARD_GIT_MAX_OBJECTS")]
    git_max_objects: Option<u64>,
    /// Largest single Git object, and largest allocation decoding a pack
    /// may make, in bytes [default: 104857600, 100 MiB].
    #[arg(
        help_heading = "Git limits",
        long,
        env = "SWITCHYARD_GIT_MAX_OBJECT_BYTES"
    )]
    git_max_object_bytes: Option<u64>,
    /// Longest a Git fetch may wait for its remote (or the `ssh` /
    /// `git-upload-pack` process it runs) to send or accept data before it
    /// is stopped [default: 60s].
    #[arg(help_heading = "Git limits", long, env = "SWITCHYARD_GIT_STALL_TIMEOUT", value_parser = humantime::parse_duration)]
    git_stall_timeout: Option<Duration>,
    /// Longest one render may run (wall clock, and CPU time of the render
    /// worker and of each program it starts) [default: 60s].
    #[arg(help_heading = "Render limits", long, env = "SWITCHYARD_RENDER_TIMEOUT", value_parser = humantime::parse_duration)]
    render_timeout: Option<Duration>,
    /// Address space (MiB) of the render worker and of each program it
    /// starts; kubectl kustomize needs about 800 [default: 2048].
    #[arg(
        help_heading = "Render limits",
        long,
        env = "SWITCHYARD_RENDER_MEMORY_MIB"
    )]
    render_memory_mib: Option<u64>,
    /// Renders that may run at once [default: 4].
    #[arg(
        help_heading = "Render limits",
        long,
        env = "SWITCHYARD_RENDER_CONCURRENCY"
    )]
    render_concurrency: Option<usize>,
    /// Issuer URL of the OpenID Connect provider for single sign-on
    /// (https://, or http:// on a loopback address); enables browser
    /// sign-in, `switchyard login` and provider-issued bearer tokens.
    #[arg(
        help_heading = "Single sign-on (OIDC)",
        long,
        env = "SWITCHYARD_OIDC_ISSUER"
    )]
    oidc_issuer: Option<String>,
    /// Client id of the hub at the provider (a confidential client whose
    /// redirect URI is https://HUB:7701/auth/oidc/callback).
    #[arg(
        help_heading = "Single sign-on (OIDC)",
        long,
        env = "SWITCHYARD_OIDC_CLIENT_ID"
    )]
    oidc_client_id: Option<String>,
    /// File holding the hub client's secret (read at start).
    #[arg(
        help_heading = "Single sign-on (OIDC)",
        long,
        env = "SWITCHYARD_OIDC_CLIENT_SECRET_FILE"
    )]
    oidc_client_secret_file: Option<PathBuf>,
    /// Public client `switchyard login` uses for the device authorization
    /// flow [default: the --oidc-client-id].
    #[arg(
        help_heading = "Single sign-on (OIDC)",
        long,
        env = "SWITCHYARD_OIDC_CLI_CLIENT_ID"
    )]
    oidc_cli_client_id: Option<String>,
    /// Roles by provider group, e.g. 'ops-admins=admin,devs=operator,*=viewer';
    /// the highest role of any matching rule wins, `*` matches everyone,
    /// and a user no rule matches is refused.
    #[arg(
        help_heading = "Single sign-on (OIDC)",
        long,
        env = "SWITCHYARD_OIDC_ROLE_MAP"
    )]
    oidc_role_map: Option<String>,
    /// Token claim that lists the user's groups [default: groups].
    #[arg(
        help_heading = "Single sign-on (OIDC)",
        long,
        env = "SWITCHYARD_OIDC_GROUPS_CLAIM"
    )]
    oidc_groups_claim: Option<String>,
    /// PEM file of the private CA that signs the provider's certificate
    /// [default: the system's roots].
    #[arg(
        help_heading = "Single sign-on (OIDC)",
        long,
        env = "SWITCHYARD_OIDC_CA_FILE"
    )]
    oidc_ca_file: Option<PathBuf>,
    /// Scopes asked for at sign-in, space-separated
    /// [default: openid profile email groups].
    #[arg(
        help_heading = "Single sign-on (OIDC)",
        long,
        env = "SWITCHYARD_OIDC_SCOPES"
    )]
    oidc_scopes: Option<String>,
    /// Redirect URI registered at the provider [default: from the request,
    /// SCHEME://HOST/auth/oidc/callback].
    #[arg(
        help_heading = "Single sign-on (OIDC)",
        long,
        env = "SWITCHYARD_OIDC_REDIRECT_URI"
    )]
    oidc_redirect_uri: Option<String>,
}

#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// Register a cluster and print the command that enrolls its agent.
    Add {
        /// The cluster's name: a DNS label (lowercase letters, digits, '-').
        #[arg(value_parser = new_cluster_name)]
        name: String,
        /// Label as K=V (repeatable).
        #[arg(long = "label", value_parser = parse_label)]
        labels: Vec<(String, String)>,
        /// How long the bootstrap token stays valid.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        token_ttl: Duration,
        /// How to print the result: table, json or yaml.
        #[arg(short, long, default_value = "table")]
        output: OutputFormat,
    },
    /// List clusters.
    List {
        /// How to print the result: table, json or yaml.
        #[arg(short, long, default_value = "table")]
        output: OutputFormat,
    },
    /// Show one cluster.
    Show {
        /// The cluster's name.
        name: String,
        /// How to print the result: table, json or yaml.
        #[arg(short, long, default_value = "table")]
        output: OutputFormat,
    },
    /// Remove a cluster: revoke its certificate and disconnect its agent.
    Remove {
        /// The cluster's name.
        name: String,
        /// How to print the result: table, json or yaml.
        #[arg(short, long, default_value = "table")]
        output: OutputFormat,
    },
    /// Mint a new single-use join command for an existing cluster (its agent
    /// lost its identity, or the first token expired).
    Token {
        /// The cluster's name.
        name: String,
        /// How long the bootstrap token stays valid.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        token_ttl: Duration,
        /// How to print the result: table, json or yaml.
        #[arg(short, long, default_value = "table")]
        output: OutputFormat,
    },
    /// Set labels (K=V) and remove them (K-), like `kubectl label`.
    Label {
        /// The cluster's name.
        name: String,
        /// K=V sets label K, K- removes it.
        #[arg(required = true)]
        changes: Vec<String>,
        /// How to print the result: table, json or yaml.
        #[arg(short, long, default_value = "table")]
        output: OutputFormat,
    },
}

/// The names creating commands take, checked by the rule the hub applies
/// (`validate_name`) before any request is sent.
pub(crate) fn new_cluster_name(s: &str) -> Result<String, NameError> {
    validate_name(NameKind::Cluster, s).map(|()| s.to_owned())
}

pub(crate) fn new_repo_name(s: &str) -> Result<String, NameError> {
    validate_name(NameKind::Repo, s).map(|()| s.to_owned())
}

pub(crate) fn new_app_name(s: &str) -> Result<String, NameError> {
    validate_name(NameKind::App, s).map(|()| s.to_owned())
}

pub(crate) fn new_group_name(s: &str) -> Result<String, NameError> {
    validate_name(NameKind::Group, s).map(|()| s.to_owned())
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("label {s:?} is not K=V"))?;
    switchyard_hub::fleet::validate_label(k, v).map_err(|e| e.to_string())?;
    Ok((k.to_owned(), v.to_owned()))
}

fn init_logging(format: LogFormat) {
    switchyard_process::init_logging(match format {
        LogFormat::Json => switchyard_process::LogFormat::Json,
        LogFormat::Text => switchyard_process::LogFormat::Text,
    });
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
    let before = &cli.before;
    // Connection flags before a command that does not talk to a hub would be
    // silently ignored: refuse them instead.
    let refuse = |command: &str, allowed: &[&str]| -> anyhow::Result<()> {
        let ignored: Vec<&str> = before
            .given()
            .into_iter()
            .filter(|flag| !allowed.contains(flag))
            .collect();
        if ignored.is_empty() {
            Ok(())
        } else {
            Err(exit::exit(
                exit::code::USAGE,
                format!(
                    "{} {} not an option of `switchyard {command}` (only of the client commands)",
                    ignored.join(", "),
                    if ignored.len() == 1 { "is" } else { "are" }
                ),
            ))
        }
    };
    match cli.command {
        Command::Serve(mut args) => {
            refuse("serve", &["--data-dir"])?;
            args.data_dir = merge("--data-dir", before.data_dir.clone(), args.data_dir)?;
            serve(args).await
        }
        Command::Cluster(c) => cluster(c.command, &c.target.with_before(before)?).await,
        Command::Repo(c) => repos::repo(c.command, &c.target.with_before(before)?).await,
        Command::App(c) => apps::app(c.command, &c.target.with_before(before)?).await,
        Command::Group(c) => groups::group(c.command, &c.target.with_before(before)?).await,
        Command::Apply {
            files,
            dry_run,
            target,
        } => declare::apply(&files, dry_run, &target.with_before(before)?).await,
        Command::Import(c) => import::import(*c, before).await,
        Command::Export {
            kinds,
            output,
            target,
        } => declare::export(&kinds, output, &target.with_before(before)?).await,
        Command::Token(c) => tokens::token(c.command, &c.target.with_before(before)?).await,
        Command::Login { target } => login::login(&target.with_before(before)?).await,
        Command::Logout { target } => login::logout(&target.with_before(before)?),
        Command::Audit {
            since,
            limit,
            output,
            target,
        } => tokens::audit(since, limit, &target.with_before(before)?, output).await,
        Command::Status {
            app,
            output,
            watch,
            interval,
            target,
        } => {
            let target = target.with_before(before)?;
            status::status(app, &target, output, watch.then_some(interval)).await
        }
        Command::Backup {
            file,
            output,
            target,
        } => backup::take(&file, &target.with_before(before)?, output).await,
        Command::Restore {
            file,
            data_dir,
            output,
        } => {
            refuse("restore", &["--data-dir"])?;
            let data_dir = merge("--data-dir", before.data_dir.clone(), data_dir)?;
            backup::restore(&file, data_dir, output)
        }
        Command::Quickstart(args) => {
            refuse("quickstart", &[])?;
            quickstart::run(args).await
        }
        Command::RenderWorker { .. } => {
            anyhow::bail!("render-worker is handled before the runtime starts")
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    // Flags and environment variables (clap puts the flag first), then the
    // file, then the defaults.
    let command_line = ServeSettings {
        data_dir: args.data_dir,
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
        git_stall_timeout: args.git_stall_timeout,
        render_timeout: args.render_timeout,
        render_memory_mib: args.render_memory_mib,
        render_concurrency: args.render_concurrency,
        oidc_issuer: args.oidc_issuer,
        oidc_client_id: args.oidc_client_id,
        oidc_client_secret_file: args.oidc_client_secret_file,
        oidc_cli_client_id: args.oidc_cli_client_id,
        oidc_role_map: args.oidc_role_map,
        oidc_groups_claim: args.oidc_groups_claim,
        oidc_ca_file: args.oidc_ca_file,
        oidc_scopes: args.oidc_scopes,
        oidc_redirect_uri: args.oidc_redirect_uri,
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

pub(crate) use switchyard_process::shutdown_signal;

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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every command with its path, after clap has propagated global flags.
    fn commands() -> Vec<(String, clap::Command)> {
        fn walk(command: &clap::Command, path: &str, out: &mut Vec<(String, clap::Command)>) {
            for sub in command.get_subcommands() {
                let path = format!("{path} {}", sub.get_name()).trim().to_owned();
                out.push((path.clone(), sub.clone()));
                walk(sub, &path, out);
            }
        }
        let mut cli = Cli::command();
        cli.build();
        let mut out = Vec::new();
        walk(&cli, "", &mut out);
        out
    }

    fn long_flags(command: &clap::Command) -> Vec<&str> {
        command
            .get_arguments()
            .filter(|a| !a.is_hide_set())
            .filter_map(|a| a.get_long())
            .collect()
    }

    #[test]
    fn every_argument_is_described() {
        Cli::command().debug_assert();
        let mut bare = Vec::new();
        for (path, command) in commands() {
            for arg in command.get_arguments() {
                let builtin = matches!(arg.get_id().as_str(), "help" | "version");
                if !builtin && !arg.is_hide_set() && arg.get_help().is_none() {
                    bare.push(format!("{path}: {}", arg.get_id()));
                }
            }
        }
        assert!(bare.is_empty(), "arguments without help: {bare:#?}");
    }

    #[test]
    fn connection_flags_are_on_client_commands_only() {
        const CONNECTION: [&str; 4] = ["data-dir", "server", "server-ca-file", "ca-sha256"];
        let not_clients = ["serve", "quickstart", "render-worker", "restore"];
        let commands = commands();
        let mut clients = 0;
        // clap's generated `help` subcommands take no flags.
        for (path, command) in commands
            .iter()
            .filter(|(p, _)| !p.split(' ').any(|w| w == "help"))
        {
            let flags = long_flags(command);
            let top = path.split(' ').next().unwrap_or_default();
            if not_clients.contains(&top) {
                for flag in &CONNECTION[1..] {
                    assert!(!flags.contains(flag), "{path} has --{flag}");
                }
            } else if command.get_subcommands().next().is_none() {
                clients += 1;
                for flag in CONNECTION {
                    assert!(flags.contains(&flag), "{path} lacks --{flag}");
                    let arg = command
                        .get_arguments()
                        .find(|a| a.get_long() == Some(flag))
                        .unwrap();
                    assert_eq!(
                        arg.get_help_heading(),
                        Some("Connection"),
                        "{path} --{flag}"
                    );
                }
            }
        }
        assert!(clients > 30, "only {clients} client commands found");
        let quickstart = &commands.iter().find(|(p, _)| p == "quickstart").unwrap().1;
        assert!(!long_flags(quickstart).contains(&"data-dir"));
    }

    #[test]
    fn connection_flags_before_the_subcommand_still_work() {
        let cli = Cli::try_parse_from([
            "switchyard",
            "--server",
            "https://hub:7701",
            "cluster",
            "list",
        ])
        .unwrap();
        let Command::Cluster(client) = cli.command else {
            panic!("not cluster");
        };
        let target = client.target.with_before(&cli.before).unwrap();
        assert_eq!(target.server.as_deref(), Some("https://hub:7701"));
        // The same flag twice with different values is refused, not guessed.
        let before = Before {
            server: Some("https://a".into()),
            ..Before::default()
        };
        let after = Target {
            server: Some("https://b".into()),
            ..Target::default()
        };
        assert!(after.with_before(&before).is_err());
    }
}
