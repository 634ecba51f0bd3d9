//! `switchyard repo …` and `switchyard app …`.

use super::Target;
use super::client::AdminClient;
use super::output::{OutputFormat, age, print_one, print_table};
use clap::{Args, Subcommand};
use std::collections::BTreeMap;
use std::time::Duration;
use switchyard_hub::api::{RollbackRequest, SyncRequest};
use switchyard_hub::gitops::{
    AppRequest, AppView, ManifestsView, RepoRequest, RepoView, RevisionView,
};
use switchyard_hub::render::{DirectorySettings, JsonnetArg};
use switchyard_hub::store::HelmSettings;

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
        /// What the URL serves: `git`, or `helm` for an HTTP chart
        /// repository (index.yaml; apps name a chart with --chart).
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

/// Fields shared by `app create` and `app update`.
#[derive(Debug, Args)]
pub(crate) struct AppFields {
    /// Repo the manifests live in.
    #[arg(long, help_heading = "Source")]
    repo: Option<String>,
    /// Directory inside the repo.
    #[arg(long, help_heading = "Source")]
    path: Option<String>,
    /// Branch, tag or commit (default: the repo's branch).
    #[arg(long, help_heading = "Source")]
    revision: Option<String>,
    /// Chart to deploy from a chart repository (`repo add --type helm`).
    #[arg(long, help_heading = "Source")]
    chart: Option<String>,
    /// Chart version or range (`^6.0`, `~6.1`, `>=6, <7`, `6.1.0`;
    /// Helm's rules). Default: the latest stable version.
    #[arg(long, requires = "chart", help_heading = "Source")]
    chart_version: Option<String>,
    /// Target clusters by label: K=V (repeatable, all must match) or any
    /// Kubernetes selector such as 'env in (prod,staging),!canary'.
    #[arg(long = "selector", help_heading = "Target")]
    selectors: Vec<String>,
    /// Target the clusters of this cluster group (and of --selector, if
    /// given, both); an empty value stops targeting a group.
    #[arg(long, help_heading = "Target")]
    group: Option<String>,
    /// Namespace for namespaced objects that name none.
    #[arg(long, help_heading = "Target")]
    namespace: Option<String>,
    /// How manifests are produced.
    #[arg(long, value_parser = ["directory", "kustomize", "jsonnet", "plugin", "helm"], help_heading = "Source")]
    renderer: Option<String>,
    /// Command the plugin renderer runs in a copy of the app's directory.
    #[arg(long, help_heading = "Source")]
    plugin_command: Option<String>,
    #[command(flatten)]
    helm: HelmFlags,
    /// Boxed: the largest group of flags, and most apps use none of them.
    #[command(flatten)]
    directory: Box<DirectoryFlags>,
}

/// Settings of directory and jsonnet apps, as Argo CD's directory source
/// has them. On `app update`, each flag given replaces that setting (all
/// its values); an empty value (`--include ''`) clears it.
#[derive(Debug, Args)]
pub(crate) struct DirectoryFlags {
    /// Read subdirectories too (the default; Argo CD's is --no-recurse).
    #[arg(long, help_heading = "Directory", conflicts_with = "no_recurse")]
    recurse: bool,
    /// Read only the files at the app's path, not its subdirectories.
    #[arg(long, help_heading = "Directory")]
    no_recurse: bool,
    /// Render only files matching this glob, relative to the app's path
    /// (repeatable; `*` crosses `/`, braces allowed: '{a,b}.yaml').
    #[arg(long, value_name = "GLOB", help_heading = "Directory")]
    include: Vec<String>,
    /// Skip files matching this glob (repeatable).
    #[arg(long, value_name = "GLOB", help_heading = "Directory")]
    exclude: Vec<String>,
    /// A jsonnet top-level argument, a string (repeatable).
    #[arg(long, value_name = "NAME=VALUE", help_heading = "Directory")]
    jsonnet_tla: Vec<String>,
    /// A jsonnet top-level argument, jsonnet code (repeatable).
    #[arg(long, value_name = "NAME=CODE", help_heading = "Directory")]
    jsonnet_tla_code: Vec<String>,
    /// A jsonnet external variable (std.extVar), a string (repeatable).
    #[arg(long, value_name = "NAME=VALUE", help_heading = "Directory")]
    jsonnet_ext_str: Vec<String>,
    /// A jsonnet external variable, jsonnet code (repeatable).
    #[arg(long, value_name = "NAME=CODE", help_heading = "Directory")]
    jsonnet_ext_code: Vec<String>,
    /// A jsonnet library directory (-J), relative to the repository's root
    /// and read at the app's commit (repeatable).
    #[arg(long, value_name = "DIR", help_heading = "Directory")]
    jsonnet_lib_path: Vec<String>,
}

/// A repeated flag's values: `None` when not given, empty for a single
/// empty value (which clears the setting).
fn given(values: &[String]) -> Option<Vec<String>> {
    match values {
        [] => None,
        [only] if only.is_empty() => Some(Vec::new()),
        _ => Some(values.to_vec()),
    }
}

impl DirectoryFlags {
    fn given(&self) -> bool {
        self.recurse
            || self.no_recurse
            || !self.include.is_empty()
            || !self.exclude.is_empty()
            || !self.jsonnet_tla.is_empty()
            || !self.jsonnet_tla_code.is_empty()
            || !self.jsonnet_ext_str.is_empty()
            || !self.jsonnet_ext_code.is_empty()
            || !self.jsonnet_lib_path.is_empty()
    }

    /// `base` with the flags given applied.
    fn apply(self, mut base: DirectorySettings) -> anyhow::Result<DirectorySettings> {
        if self.recurse || self.no_recurse {
            base.recurse = Some(self.recurse);
        }
        if let Some(v) = given(&self.include) {
            base.include = v;
        }
        if let Some(v) = given(&self.exclude) {
            base.exclude = v;
        }
        let args =
            |strings: &[String], code: &[String]| -> anyhow::Result<Option<Vec<JsonnetArg>>> {
                let (strings, code) = (given(strings), given(code));
                if strings.is_none() && code.is_none() {
                    return Ok(None);
                }
                let mut out = Vec::new();
                for (values, is_code) in [(strings, false), (code, true)] {
                    for v in values.unwrap_or_default() {
                        out.push(JsonnetArg::parse(&v, is_code).map_err(anyhow::Error::msg)?);
                    }
                }
                Ok(Some(out))
            };
        if let Some(v) = args(&self.jsonnet_tla, &self.jsonnet_tla_code)? {
            base.jsonnet.tlas = v;
        }
        if let Some(v) = args(&self.jsonnet_ext_str, &self.jsonnet_ext_code)? {
            base.jsonnet.ext_vars = v;
        }
        if let Some(v) = given(&self.jsonnet_lib_path) {
            base.jsonnet.libs = v;
        }
        Ok(base)
    }
}

/// The helm renderer's settings, as `helm template` takes them. On
/// `app update`, each flag given replaces that setting (all its values).
#[derive(Debug, Args)]
pub(crate) struct HelmFlags {
    /// Values file (repeatable, later wins): a path relative to the chart's
    /// directory (`..` may climb; a leading `/` starts at the repo's root),
    /// read at the same commit.
    #[arg(long = "values", value_name = "FILE")]
    values: Vec<String>,
    /// KEY=VALUE as `helm --set` takes it (repeatable), applied last.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// `.Release.Name` (default: the app's name).
    #[arg(long)]
    release_name: Option<String>,
    /// SELECTOR=FILE: a values file for the clusters the label selector
    /// matches (repeatable), applied after --values, e.g. 'env=prod=values-prod.yaml'.
    #[arg(long = "values-for", value_name = "SELECTOR=FILE")]
    values_for: Vec<String>,
}

impl HelmFlags {
    fn given(&self) -> bool {
        !self.values.is_empty()
            || !self.set.is_empty()
            || self.release_name.is_some()
            || !self.values_for.is_empty()
    }

    /// `base` with the flags given applied.
    fn apply(self, mut base: HelmSettings) -> anyhow::Result<HelmSettings> {
        if !self.values.is_empty() {
            base.values_files = self.values;
        }
        if !self.set.is_empty() {
            base.set = self.set;
        }
        if let Some(r) = self.release_name {
            base.release_name = Some(r).filter(|r| !r.is_empty());
        }
        if !self.values_for.is_empty() {
            base.values_for = self
                .values_for
                .iter()
                .map(|v| switchyard_hub::gitops::parse_values_for(v))
                .collect::<Result<_, _>>()
                .map_err(anyhow::Error::msg)?;
        }
        Ok(base)
    }
}

/// What the app may do to objects it did not create (docs/SECURITY.md,
/// "What the agent deletes"); shared by `app create` and `app update`.
#[derive(Debug, Args)]
pub(crate) struct OwnershipFlags {
    /// Write to objects that exist already and belong to no app; adopted
    /// objects are still never deleted.
    #[arg(long, help_heading = "Ownership", conflicts_with = "no_adopt")]
    adopt: bool,
    /// Turn --adopt off (app update).
    #[arg(long, help_heading = "Ownership")]
    no_adopt: bool,
    /// Let prune and app deletion delete Namespaces the app created (and
    /// with them everything inside).
    #[arg(
        long,
        help_heading = "Ownership",
        conflicts_with = "no_prune_namespaces"
    )]
    prune_namespaces: bool,
    /// Turn --prune-namespaces off (app update).
    #[arg(long, help_heading = "Ownership")]
    no_prune_namespaces: bool,
    /// Let prune and app deletion delete CustomResourceDefinitions the app
    /// created (and with them every object of their kinds).
    #[arg(long, help_heading = "Ownership", conflicts_with = "no_prune_crds")]
    prune_crds: bool,
    /// Turn --prune-crds off (app update).
    #[arg(long, help_heading = "Ownership")]
    no_prune_crds: bool,
    /// Take over fields other field managers own instead of reporting the
    /// conflict.
    #[arg(
        long,
        help_heading = "Ownership",
        conflicts_with = "no_force_conflicts"
    )]
    force_conflicts: bool,
    /// Turn --force-conflicts off (app update).
    #[arg(long, help_heading = "Ownership")]
    no_force_conflicts: bool,
}

impl OwnershipFlags {
    /// Set what was given; leave the rest to the hub (off on create,
    /// unchanged on update).
    fn fill(&self, request: &mut AppRequest) {
        request.adopt = either(self.adopt, self.no_adopt);
        request.prune_namespaces = either(self.prune_namespaces, self.no_prune_namespaces);
        request.prune_crds = either(self.prune_crds, self.no_prune_crds);
        request.force_conflicts = either(self.force_conflicts, self.no_force_conflicts);
    }
}

impl AppFields {
    /// The request, with the helm flags applied to `helm` (the app's
    /// current settings on update).
    fn into_request(
        self,
        name: Option<String>,
        helm: Option<HelmSettings>,
        directory: Option<DirectorySettings>,
    ) -> anyhow::Result<AppRequest> {
        let helm = if self.helm.given() {
            Some(self.helm.apply(helm.unwrap_or_default())?)
        } else {
            None
        };
        let directory = if self.directory.given() {
            Some((*self.directory).apply(directory.unwrap_or_default())?)
        } else {
            None
        };
        Ok(AppRequest {
            name,
            repo: self.repo,
            path: self.path,
            revision: self.revision,
            chart: self.chart,
            chart_version: self.chart_version,
            selector: (!self.selectors.is_empty()).then(|| self.selectors.join(",")),
            group: self.group,
            namespace: self.namespace,
            renderer: self.renderer,
            plugin_command: self.plugin_command,
            helm,
            directory,
            ..AppRequest::default()
        })
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum AppCommand {
    /// Deploy a directory of a repo to the clusters a selector picks.
    Create {
        /// The app's name: a DNS label (lowercase letters, digits, '-').
        #[arg(value_parser = super::new_app_name)]
        name: String,
        #[command(flatten)]
        fields: AppFields,
        /// Deploy new commits only after `switchyard app sync`.
        #[arg(long, help_heading = "Sync")]
        manual: bool,
        /// Delete objects removed from Git.
        #[arg(long, help_heading = "Sync")]
        prune: bool,
        /// Undo changes made to deployed objects outside Git.
        #[arg(long, help_heading = "Sync")]
        self_heal: bool,
        #[command(flatten)]
        ownership: OwnershipFlags,
        /// How to print the result: table, json or yaml.
        #[arg(short, long, default_value = "table")]
        output: OutputFormat,
    },
    /// Change an app; flags not given keep their value.
    Update {
        /// The app's name.
        name: String,
        #[command(flatten)]
        fields: AppFields,
        /// Deploy new commits only after `switchyard app sync`.
        #[arg(long, conflicts_with = "auto", help_heading = "Sync")]
        manual: bool,
        /// Deploy new commits automatically again.
        #[arg(long, help_heading = "Sync")]
        auto: bool,
        /// Delete objects removed from Git.
        #[arg(long, conflicts_with = "no_prune", help_heading = "Sync")]
        prune: bool,
        /// Stop deleting objects removed from Git.
        #[arg(long, help_heading = "Sync")]
        no_prune: bool,
        /// Undo changes made to deployed objects outside Git.
        #[arg(long, conflicts_with = "no_self_heal", help_heading = "Sync")]
        self_heal: bool,
        /// Stop undoing changes made outside Git.
        #[arg(long, help_heading = "Sync")]
        no_self_heal: bool,
        #[command(flatten)]
        ownership: OwnershipFlags,
        /// How to print the result: table, json or yaml.
        #[arg(short, long, default_value = "table")]
        output: OutputFormat,
    },
    /// Delete an app: clusters stop being assigned it.
    Delete {
        /// The app's name.
        name: String,
        /// How to print the result: table, json or yaml.
        #[arg(short, long, default_value = "table")]
        output: OutputFormat,
    },
    /// List apps.
    List {
        /// How to print the result: table, json or yaml.
        #[arg(short, long, default_value = "table")]
        output: OutputFormat,
    },
    /// Show one app.
    Show {
        /// The app's name.
        name: String,
        /// How to print the result: table, json or yaml.
        #[arg(short, long, default_value = "table")]
        output: OutputFormat,
    },
    /// Print exactly the objects a cluster receives for the app (its
    /// bundle, whatever the renderer), without touching the cluster.
    Manifests {
        /// The app's name.
        name: String,
        /// The cluster whose bundle to print; needed only when clusters
        /// receive different bundles.
        #[arg(long)]
        cluster: Option<String>,
        /// `yaml` (documents separated by `---`) or `json` (a v1 List).
        #[arg(short, long, default_value = "yaml", value_parser = ["yaml", "json"])]
        output: String,
    },
    /// Wait until the app is synced and/or healthy on every cluster it
    /// targets (both when neither flag is given). Exit codes: 0 reached,
    /// 1 the app failed (render error, or Degraded when --healthy), 2 usage,
    /// 3 no such app, 4 timed out, 5 refused by the hub.
    Wait {
        /// The app's name.
        name: String,
        /// Every targeted cluster applied the deployed commit.
        #[arg(long)]
        synced: bool,
        /// Every targeted cluster reports the app Healthy at the deployed commit.
        #[arg(long)]
        healthy: bool,
        /// Give up after this long (exit code 4).
        #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
        timeout: Duration,
    },
    /// Every commit the app resolved to or was synced or rolled back to,
    /// newest first (-o json and yaml: oldest first).
    History {
        /// The app's name.
        name: String,
        /// How to print the result: table, json or yaml.
        #[arg(short, long, default_value = "table")]
        output: OutputFormat,
    },
    /// Approve the latest commit (or --revision) and resume following the revision.
    Sync {
        /// The app's name.
        name: String,
        /// A commit, branch or tag in the history of the app's revision.
        #[arg(long)]
        revision: Option<String>,
        /// Admin only: deploy --revision even if it is not in the history
        /// of the app's revision (recorded in the audit log with --reason).
        #[arg(long, requires_all = ["revision", "reason"])]
        allow_unreachable: bool,
        /// Why --allow-unreachable is needed, for the audit log.
        #[arg(long, requires = "allow_unreachable")]
        reason: Option<String>,
        /// How to print the result: table, json or yaml.
        #[arg(short, long, default_value = "table")]
        output: OutputFormat,
    },
    /// Pin the app to an earlier commit from its history (default: the one before).
    Rollback {
        /// The app's name.
        name: String,
        /// The commit to go back to (a prefix of one in `app history`).
        #[arg(long)]
        to: Option<String>,
        /// How to print the result: table, json or yaml.
        #[arg(short, long, default_value = "table")]
        output: OutputFormat,
    },
}

/// A commit by its first digits; a chart version (`6.1.0@sha256:…`) by
/// its version.
/// What `repo add --type` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum RepoType {
    Git,
    Helm,
    Oci,
}

pub(crate) fn short(sha: &Option<String>) -> String {
    sha.as_deref().map_or_else(
        || "-".into(),
        |s| match s.split_once("@sha256:") {
            Some((version, _)) => version.to_owned(),
            None => s.chars().take(8).collect(),
        },
    )
}

pub(crate) fn truncate(text: &str, max: usize) -> String {
    let first_line = text.lines().next().unwrap_or_default();
    if first_line.chars().count() > max {
        format!("{}…", first_line.chars().take(max - 1).collect::<String>())
    } else {
        first_line.to_owned()
    }
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

const APP_HEADERS: [&str; 8] = [
    "NAME", "REPO", "PATH", "TARGET", "POLICY", "DEPLOYED", "CLUSTERS", "STATUS",
];

/// `group/edge`, `env=prod`, `group/edge,env=prod` or `<all>`.
fn target_text(a: &AppView) -> String {
    let parts: Vec<String> = a
        .group
        .iter()
        .map(|g| format!("group/{g}"))
        .chain((!a.selector.is_empty()).then(|| a.selector.clone()))
        .collect();
    if parts.is_empty() {
        "<all>".into()
    } else {
        parts.join(",")
    }
}

fn app_row(a: &AppView) -> Vec<String> {
    let mut policy = a.sync_policy.clone();
    if a.pinned {
        policy.push_str(" (pinned)");
    }
    let status = if let Some(e) = a.errors.values().next() {
        format!("Error: {}", truncate(e, 50))
    } else if let Some(p) = &a.pending {
        format!("Pending {}", short(&Some(p.clone())))
    } else if a.deployed.is_none() {
        "Waiting".into()
    } else {
        "OK".into()
    };
    vec![
        a.name.clone(),
        a.repo.clone(),
        a.path.clone(),
        target_text(a),
        policy,
        short(&a.deployed),
        format!("{}/{}", a.assigned, a.target_clusters.len()),
        status,
    ]
}

/// What the clusters run: `1a4b1917 on edge-berlin, edge-lisbon; 6861ad80 on lab-1`.
fn running_text(app: &AppView) -> String {
    if app.running.is_empty() {
        return "-".into();
    }
    app.running
        .iter()
        .map(|(commit, clusters)| {
            format!(
                "{} on {}",
                short(&Some(commit.clone())),
                clusters.join(", ")
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn print_fields(fields: &[(&str, String)]) {
    for (name, value) in fields {
        println!("{:<16}{value}", format!("{name}:"));
    }
}

/// The app's ownership opt-ins, or `-` when none is on.
fn ownership_text(app: &AppView) -> String {
    let on: Vec<&str> = [
        (app.adopt, "adopt"),
        (app.prune_namespaces, "prune-namespaces"),
        (app.prune_crds, "prune-crds"),
        (app.force_conflicts, "force-conflicts"),
    ]
    .into_iter()
    .filter_map(|(set, name)| set.then_some(name))
    .collect();
    if on.is_empty() {
        "-".into()
    } else {
        on.join(", ")
    }
}

fn show_app(app: &AppView) {
    let mut fields = vec![
        ("Name", app.name.clone()),
        ("Repo", app.repo.clone()),
        ("Path", app.path.clone()),
        ("Revision", app.revision.clone()),
    ];
    if let Some(chart) = &app.chart {
        // The chart, the range asked for and the version it resolved to.
        fields.truncate(2);
        fields.push(("Chart", chart.clone()));
        fields.push(("Chart version", app.revision.clone()));
        fields.push((
            "Resolved",
            app.latest
                .as_deref()
                .and_then(|l| l.split_once("@sha256:"))
                .map_or_else(|| "-".into(), |(v, d)| format!("{v} (sha256:{d})")),
        ));
    }
    fields.extend([
        ("Target", target_text(app)),
        ("Renderer", app.renderer.clone()),
        (
            "Namespace",
            app.namespace.clone().unwrap_or_else(|| "-".into()),
        ),
        ("Sync policy", app_row(app)[4].clone()),
        ("Prune", app.prune.to_string()),
        ("Self-heal", app.self_heal.to_string()),
        ("Ownership", ownership_text(app)),
        ("Latest", app.latest.clone().unwrap_or_else(|| "-".into())),
        (
            "Deployed",
            app.deployed.clone().unwrap_or_else(|| "-".into()),
        ),
        ("Running", running_text(app)),
        ("Pending", app.pending.clone().unwrap_or_else(|| "-".into())),
    ]);
    if let Some(failed) = &app.failed_commit {
        fields.push((
            "Failed",
            format!(
                "{failed} did not render (the error is below); its clusters keep what they run"
            ),
        ));
    }
    fields.extend([(
        "Clusters",
        format!(
            "{} of {} assigned: {}",
            app.assigned,
            app.target_clusters.len(),
            app.target_clusters.join(", ")
        ),
    )]);
    if let Some(command) = &app.plugin_command {
        fields.push(("Plugin", command.clone()));
    }
    if let Some(helm) = &app.helm {
        fields.push((
            "Release",
            helm.release_name
                .clone()
                .unwrap_or_else(|| app.name.clone()),
        ));
        if !helm.values_files.is_empty() {
            fields.push(("Values files", helm.values_files.join(", ")));
        }
        for v in &helm.values_for {
            fields.push(("Values for", format!("{} -> {}", v.selector, v.file)));
        }
        if let Some(values) = &helm.values {
            fields.push(("Values", values.to_string()));
        }
        if !helm.set.is_empty() {
            fields.push(("Set", helm.set.join(", ")));
        }
    }
    if let Some(d) = &app.directory {
        if let Some(recurse) = d.recurse {
            fields.push(("Recurse", if recurse { "yes" } else { "no" }.into()));
        }
        if !d.include.is_empty() {
            fields.push(("Include", d.include.join(", ")));
        }
        if !d.exclude.is_empty() {
            fields.push(("Exclude", d.exclude.join(", ")));
        }
        let arg = |a: &JsonnetArg| {
            format!(
                "{}={}{}",
                a.name,
                a.value,
                if a.code { " (code)" } else { "" }
            )
        };
        for a in &d.jsonnet.tlas {
            fields.push(("Jsonnet TLA", arg(a)));
        }
        for a in &d.jsonnet.ext_vars {
            fields.push(("Jsonnet ext var", arg(a)));
        }
        if !d.jsonnet.libs.is_empty() {
            fields.push(("Jsonnet libs", d.jsonnet.libs.join(", ")));
        }
    }
    print_fields(&fields);
    for (scope, error) in &app.errors {
        let scope = if scope == "*" { "all clusters" } else { scope };
        println!("Error ({scope}): {error}");
    }
    // One line per warning, with every cluster it concerns.
    let mut warnings: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (cluster, warning) in &app.warnings {
        warnings.entry(warning).or_default().push(cluster);
    }
    for (warning, clusters) in warnings {
        println!("Warning ({}): {warning}", clusters.join(", "));
    }
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

fn either(yes: bool, no: bool) -> Option<bool> {
    match (yes, no) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    }
}

/// Objects as `kubectl get -o yaml|json` prints several: YAML documents
/// separated by `---`, or one JSON `List`.
fn manifests_text(objects: &[serde_json::Value], format: &str) -> anyhow::Result<String> {
    if format == "json" {
        let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": objects});
        return Ok(format!("{}\n", serde_json::to_string_pretty(&list)?));
    }
    let mut out = String::new();
    for (i, object) in objects.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&serde_saphyr::to_string(object)?);
    }
    Ok(out)
}

pub(crate) async fn app(command: AppCommand, target: &Target) -> anyhow::Result<()> {
    match command {
        AppCommand::Create {
            name,
            fields,
            manual,
            prune,
            self_heal,
            ownership,
            output,
        } => {
            let client = AdminClient::discover(target)?;
            let mut request = fields.into_request(Some(name), None, None)?;
            request.manual = Some(manual);
            request.prune = Some(prune);
            request.self_heal = Some(self_heal);
            ownership.fill(&mut request);
            let app: AppView = client.post("/apps", &request).await?;
            report_app(&app, "created", output)
        }
        AppCommand::Update {
            name,
            fields,
            manual,
            auto,
            prune,
            no_prune,
            self_heal,
            no_self_heal,
            ownership,
            output,
        } => {
            let client = AdminClient::discover(target)?;
            // The helm and directory flags given change those settings
            // and keep the rest.
            let (helm, directory) = if fields.helm.given() || fields.directory.given() {
                let app: AppView = client.get(&format!("/apps/{name}")).await?;
                (app.helm, app.directory)
            } else {
                (None, None)
            };
            let mut request = fields.into_request(None, helm, directory)?;
            request.manual = either(manual, auto);
            request.prune = either(prune, no_prune);
            request.self_heal = either(self_heal, no_self_heal);
            ownership.fill(&mut request);
            let app: AppView = client.patch(&format!("/apps/{name}"), &request).await?;
            report_app(&app, "updated", output)
        }
        AppCommand::Delete { name, output } => {
            let client = AdminClient::discover(target)?;
            let app: AppView = client.delete(&format!("/apps/{name}")).await?;
            if output == OutputFormat::Table {
                println!(
                    "app {} deleted; its clusters are no longer assigned it",
                    app.name
                );
                Ok(())
            } else {
                print_one(&app, output)
            }
        }
        AppCommand::List { output } => {
            let client = AdminClient::discover(target)?;
            let apps: Vec<AppView> = client.get("/apps").await?;
            if output != OutputFormat::Table {
                return print_one(&apps, output);
            }
            if apps.is_empty() {
                println!("No apps. Create one with: switchyard app create NAME --repo R --path P");
            } else {
                print_table(&APP_HEADERS, apps.iter().map(app_row));
            }
            Ok(())
        }
        AppCommand::Show { name, output } => {
            let client = AdminClient::discover(target)?;
            let app: AppView = client.get(&format!("/apps/{name}")).await?;
            if output != OutputFormat::Table {
                return print_one(&app, output);
            }
            show_app(&app);
            Ok(())
        }
        AppCommand::Manifests {
            name,
            cluster,
            output,
        } => {
            let client = AdminClient::discover(target)?;
            let path = match &cluster {
                Some(c) => format!("/apps/{name}/manifests?cluster={c}"),
                None => format!("/apps/{name}/manifests"),
            };
            let view: ManifestsView = client.get(&path).await?;
            print!("{}", manifests_text(&view.objects, &output)?);
            Ok(())
        }
        AppCommand::Wait {
            name,
            synced,
            healthy,
            timeout,
        } => {
            let want = if synced || healthy {
                super::wait::Want { synced, healthy }
            } else {
                super::wait::Want {
                    synced: true,
                    healthy: true,
                }
            };
            super::wait::wait(&name, want, timeout, target).await
        }
        AppCommand::History { name, output } => {
            let client = AdminClient::discover(target)?;
            let history: Vec<RevisionView> = client.get(&format!("/apps/{name}/history")).await?;
            if output != OutputFormat::Table {
                return print_one(&history, output);
            }
            // Newest first, like `git log`, as the API answers.
            print_table(
                &["COMMIT", "EVENT", "TRIGGER", "WHEN", "AUTHOR", "SUMMARY"],
                history.iter().map(|r| {
                    vec![
                        short(&Some(r.commit.clone())),
                        r.event.clone(),
                        r.trigger.clone(),
                        age(&r.at),
                        r.author.clone(),
                        truncate(&r.summary, 60),
                    ]
                }),
            );
            Ok(())
        }
        AppCommand::Sync {
            name,
            revision,
            allow_unreachable,
            reason,
            output,
        } => {
            let client = AdminClient::discover(target)?;
            let request = SyncRequest {
                revision,
                allow_unreachable,
                reason,
            };
            let app: AppView = client.post(&format!("/apps/{name}/sync"), &request).await?;
            report_app(&app, "synced", output)
        }
        AppCommand::Rollback { name, to, output } => {
            let client = AdminClient::discover(target)?;
            let app: AppView = client
                .post(&format!("/apps/{name}/rollback"), &RollbackRequest { to })
                .await?;
            report_app(&app, "rolled back and pinned", output)
        }
    }
}

fn report_app(app: &AppView, what: &str, output: OutputFormat) -> anyhow::Result<()> {
    if output == OutputFormat::Table {
        println!(
            "app {} {what}: deployed {} to {} of {} targeted clusters",
            app.name,
            short(&app.deployed),
            app.assigned,
            app.target_clusters.len()
        );
        if let Some(p) = &app.pending {
            println!(
                "pending commit {} waits for: switchyard app sync {}",
                short(&Some(p.clone())),
                app.name
            );
        }
    } else {
        print_one(app, output)?;
    }
    // Where the app goes is news when it is created or changed, not at every sync.
    if matches!(what, "created" | "updated") {
        for warning in targeting_warnings(app) {
            eprintln!("warning: {warning}");
        }
    }
    app_errors(app, what)
}

/// What a user should know about where an app goes: nowhere, or everywhere
/// without having said so.
pub(crate) fn targeting_warnings(app: &AppView) -> Vec<String> {
    let mut warnings = Vec::new();
    if app.target_clusters.is_empty() {
        let by = match (&app.group, app.selector.is_empty()) {
            (Some(group), true) => format!("group {group}"),
            (Some(group), false) => format!("group {group} with selector {}", app.selector),
            (None, false) => format!("selector {}", app.selector),
            (None, true) => "it".into(),
        };
        warnings.push(format!(
            "app {} targets no cluster: {by} matches none (see `switchyard cluster list`); \
             it deploys nowhere until a cluster matches",
            app.name
        ));
    } else if app.group.is_none() && app.selector.is_empty() {
        warnings.push(format!(
            "app {} has no --selector or --group, so it goes to every cluster: the {} there \
             are now and every cluster added later",
            app.name,
            app.target_clusters.len()
        ));
    }
    warnings
}

/// An app the hub accepted but cannot deploy (its revision does not
/// resolve, its render failed) is a failure of the command: exit code 1.
fn app_errors(app: &AppView, what: &str) -> anyhow::Result<()> {
    // Waiting for a repo's first fetch passes by itself: a note, not a failure.
    let (waiting, failures): (Vec<_>, Vec<_>) = app
        .errors
        .iter()
        .partition(|(_, error)| error.starts_with("waiting for "));
    for (_, note) in waiting {
        eprintln!("note: app {}: {note}", app.name);
    }
    if failures.is_empty() {
        return Ok(());
    }
    let errors: Vec<String> = failures
        .into_iter()
        .map(|(scope, error)| {
            let scope = if scope == "*" { "all clusters" } else { scope };
            format!("  {scope}: {error}")
        })
        .collect();
    Err(super::exit::exit(
        super::exit::code::FAILED,
        format!(
            "app {} {what}, but it cannot deploy:\n{}",
            app.name,
            errors.join("\n")
        ),
    ))
}
