//! `switchyard repo …`: add, list, show, update and remove config repos
//! (Git, Helm chart repositories and OCI registries).

use super::Target;
use super::apps::{print_fields, short, truncate};
use super::client::AdminClient;
use super::output::{OutputFormat, age, print_one, print_table};
use clap::Subcommand;
use std::time::Duration;
use switchyard_hub::gitops::{RepoRequest, RepoView};

#[derive(Debug, Subcommand)]
pub(crate) enum RepoCommand {
    /// Follow a Git repository (https, http, git, ssh or file URL) or,
    /// with --type helm, a Helm chart repository (https or http).
    Add {
        /// The repo's name: a DNS label (lowercase letters, digits, '-').
        #[arg(value_parser = super::new_repo_name)]
        name: String,
        /// Where to fetch from; credentials do not belong in it.
        url: String,
        /// Branch apps follow when they name no revision (default: main).
        #[arg(long)]
        branch: Option<String>,
        /// What the URL serves: `git`, `helm` for an HTTP chart repository
        /// (index.yaml; apps name a chart with --chart), or `oci` for
        /// charts in an OCI registry (oci://HOST/PATH).
        #[arg(long = "type", value_enum, default_value_t = RepoType::Git)]
        kind: RepoType,
        /// How often to fetch.
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        interval: Duration,
        /// User for HTTP basic authentication with the Git server.
        #[arg(long, requires = "password_file", help_heading = "Git server")]
        username: Option<String>,
        /// File holding the password or access token (read at every fetch; never stored).
        #[arg(long, requires = "username", help_heading = "Git server")]
        password_file: Option<String>,
        /// PEM file of CA certificates to trust for the Git server when it
        /// has a private CA (the hub's own CA is --server-ca-file or
        /// --ca-sha256, under Connection).
        #[arg(long, help_heading = "Git server")]
        ca_file: Option<String>,
        /// Speak to an OCI registry (--type oci) over http:// instead of
        /// https://, like `helm --plain-http`. Refused with --username
        /// unless the registry is on loopback (the password would cross
        /// the network in clear).
        #[arg(long, help_heading = "Git server")]
        plain_http: bool,
        /// File holding the secret this repo's push webhooks are signed with
        /// (default: the hub's DATA_DIR/webhook-secret).
        #[arg(long, help_heading = "Git server")]
        webhook_secret_file: Option<String>,
        /// Wait for the first fetch, showing its progress, and print the
        /// commit the branch resolved to.
        #[arg(long)]
        wait: bool,
        /// Give up waiting after this long (the repo stays registered).
        #[arg(long, default_value = "5m", value_parser = humantime::parse_duration, requires = "wait")]
        timeout: Duration,
        /// How to print the result: table, json or yaml.
        #[arg(short, long, default_value = "table")]
        output: OutputFormat,
    },
    /// List repos and how their fetches go.
    List {
        /// How to print the result: table, json or yaml.
        #[arg(short, long, default_value = "table")]
        output: OutputFormat,
    },
    /// Show one repo.
    Show {
        /// The repo's name.
        name: String,
        /// How to print the result: table, json or yaml.
        #[arg(short, long, default_value = "table")]
        output: OutputFormat,
    },
    /// Stop following a repo (refused while apps use it).
    Remove {
        /// The repo's name.
        name: String,
        /// How to print the result: table, json or yaml.
        #[arg(short, long, default_value = "table")]
        output: OutputFormat,
    },
}

/// What `repo add --type` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum RepoType {
    Git,
    Helm,
    Oci,
}

const REPO_HEADERS: [&str; 6] = ["NAME", "URL", "BRANCH", "HEAD", "LAST FETCH", "STATUS"];

fn repo_row(r: &RepoView) -> Vec<String> {
    vec![
        r.name.clone(),
        r.url.clone(),
        if r.kind == "helm" {
            "(charts)".into()
        } else {
            r.branch.clone()
        },
        short(&r.head),
        r.last_fetch.as_deref().map_or_else(|| "never".into(), age),
        match &r.error {
            Some(e) => format!("Error: {}", truncate(e, 60)),
            None if r.last_success.is_some() => "OK".into(),
            None => "Fetching".into(),
        },
    ]
}

pub(crate) async fn repo(command: RepoCommand, target: &Target) -> anyhow::Result<()> {
    match command {
        RepoCommand::Add {
            name,
            url,
            branch,
            kind,
            interval,
            username,
            password_file,
            ca_file,
            plain_http,
            webhook_secret_file,
            wait,
            timeout,
            output,
        } => {
            let absolute = |f: Option<String>| {
                f.map(|f| {
                    std::path::absolute(&f)
                        .map(|p| p.display().to_string())
                        .unwrap_or(f)
                })
            };
            // Refused before it leaves this machine: a credential in the
            // URL would be stored, logged and shown to every viewer.
            let url = match kind {
                RepoType::Oci => switchyard_hub::gitops::check_oci_url(&url)?,
                _ => switchyard_hub::gitops::check_url(&url)?,
            };
            let client = AdminClient::discover(target)?;
            let request = RepoRequest {
                name,
                url,
                branch,
                kind: Some(match kind {
                    RepoType::Helm => switchyard_hub::store::RepoKind::Helm,
                    RepoType::Git => switchyard_hub::store::RepoKind::Git,
                    RepoType::Oci => switchyard_hub::store::RepoKind::Oci,
                }),
                interval_secs: Some(interval.as_secs().max(1)),
                username,
                password_file: absolute(password_file),
                ca_file: absolute(ca_file),
                plain_http,
                webhook_secret_file: absolute(webhook_secret_file),
            };
            let repo: RepoView = client.post("/repos", &request).await?;
            if wait {
                let repo = super::progress::first_fetch(&client, &repo.name, timeout).await?;
                return if output == OutputFormat::Table {
                    super::progress::report_fetched(&repo)
                } else {
                    print_one(&repo, output)
                };
            }
            if output == OutputFormat::Table {
                println!(
                    "repo {} added; the hub fetches it now and every {}",
                    repo.name, repo.interval
                );
                println!(
                    "follow the first fetch with: switchyard repo show {} (or add with --wait)",
                    repo.name
                );
                Ok(())
            } else {
                print_one(&repo, output)
            }
        }
        RepoCommand::List { output } => {
            let client = AdminClient::discover(target)?;
            let repos: Vec<RepoView> = client.get("/repos").await?;
            if output != OutputFormat::Table {
                return print_one(&repos, output);
            }
            if repos.is_empty() {
                println!("No repos. Add one with: switchyard repo add NAME URL");
            } else {
                print_table(&REPO_HEADERS, repos.iter().map(repo_row));
            }
            Ok(())
        }
        RepoCommand::Show { name, output } => {
            let client = AdminClient::discover(target)?;
            let repo: RepoView = client.get(&format!("/repos/{name}")).await?;
            if output != OutputFormat::Table {
                return print_one(&repo, output);
            }
            print_fields(&[
                ("Name", repo.name.clone()),
                ("URL", repo.url.clone()),
                ("Type", repo.kind.clone()),
                (
                    "Branch",
                    Some(repo.branch.clone())
                        .filter(|b| !b.is_empty())
                        .unwrap_or_else(|| "-".into()),
                ),
                ("Interval", repo.interval.clone()),
                ("Head", repo.head.clone().unwrap_or_else(|| "-".into())),
                ("Refs", repo.refs.to_string()),
                (
                    "Last fetch",
                    repo.last_fetch.clone().unwrap_or_else(|| "never".into()),
                ),
                (
                    "Last success",
                    repo.last_success.clone().unwrap_or_else(|| "never".into()),
                ),
                (
                    "Username",
                    repo.username.clone().unwrap_or_else(|| "-".into()),
                ),
                (
                    "CA file",
                    repo.ca_file.clone().unwrap_or_else(|| "-".into()),
                ),
                (
                    "Plain HTTP",
                    if repo.plain_http { "yes" } else { "no" }.into(),
                ),
                (
                    "Fetching",
                    repo.fetching.as_ref().map_or_else(
                        || "no".into(),
                        |f| {
                            let of = f.total.map_or_else(String::new, |t| format!("/{t}"));
                            format!("{} {}{of} (since {})", f.stage, f.done, f.started_at)
                        },
                    ),
                ),
            ]);
            if let Some(e) = &repo.error {
                println!("Error:          {e}");
            }
            Ok(())
        }
        RepoCommand::Remove { name, output } => {
            let client = AdminClient::discover(target)?;
            let repo: RepoView = client.delete(&format!("/repos/{name}")).await?;
            if output == OutputFormat::Table {
                println!("repo {} removed", repo.name);
                Ok(())
            } else {
                print_one(&repo, output)
            }
        }
    }
}
