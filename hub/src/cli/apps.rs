//! `switchyard app …`: create, change, show, sync, roll back and wait for
//! apps. The flags `app create` and `app update` share are in `app_flags`.

use super::Target;
use super::app_flags::{AppFields, OwnershipFlags, either};
use super::client::AdminClient;
use super::output::{OutputFormat, age, print_one, print_table};
use clap::Subcommand;
use std::collections::BTreeMap;
use std::time::Duration;
use switchyard_hub::api::{RollbackRequest, SyncRequest};
use switchyard_hub::fleet::AppDiffView;
use switchyard_hub::gitops::{AppView, ManifestsView, RevisionView};
use switchyard_hub::render::JsonnetArg;

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
    /// List apps, with how many clusters each targets and runs (`app show`
    /// names them).
    List {
        /// How to print the result: table, json or yaml.
        #[arg(short, long, default_value = "table")]
        output: OutputFormat,
        /// Also name every targeted and running cluster of each app
        /// (`target_clusters`, `running` in -o json): large at fleet scale.
        #[arg(long)]
        cluster_names: bool,
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
    /// What a sync would change on the cluster(s), desired against live,
    /// as a unified diff per object (objects to create all added, objects
    /// prune would delete all removed; Secret values masked). The agents
    /// compute it against their live view. Exit codes, as `kubectl diff`:
    /// 0 no differences, 1 differences, 3 no such app (or not assigned to
    /// --cluster), 5 refused, 6 a cluster asked gave no diff (not connected,
    /// no answer in time) or the hub could not be asked.
    Diff {
        /// The app's name.
        name: String,
        /// Only this cluster; without it, every connected cluster the app
        /// is assigned to (clusters not connected are listed, not asked).
        #[arg(long)]
        cluster: Option<String>,
        /// How long the hub waits for each agent's answer (1s to 60s).
        #[arg(long, default_value = "10s", value_parser = diff_timeout)]
        timeout: Duration,
        /// `diff` (unified diffs, coloured on a terminal) or `json` (the
        /// API's answer).
        #[arg(short, long, default_value = "diff", value_parser = ["diff", "json"])]
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
        /// Confirm the prune of objects marked Prune=confirm that left Git,
        /// for the commit this sync deploys (a later commit needs a new
        /// confirmation).
        #[arg(long)]
        prune: bool,
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
        format!("{}/{}", a.assigned, a.target_count),
        status,
    ]
}

/// What the clusters run: `1a4b1917 on edge-berlin, edge-lisbon; 6861ad80 on lab-1`.
/// Without the names (a list's view), the counts: `1a4b1917 on 2 clusters`.
fn running_text(app: &AppView) -> String {
    if app.running_counts.is_empty() {
        return "-".into();
    }
    app.running_counts
        .iter()
        .map(|(commit, count)| {
            let on = match app.running.as_ref().and_then(|r| r.get(commit)) {
                Some(clusters) => clusters.join(", "),
                None if *count == 1 => "1 cluster".to_owned(),
                None => format!("{count} clusters"),
            };
            format!("{} on {on}", short(&Some(commit.clone())))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

pub(super) fn print_fields(fields: &[(&str, String)]) {
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

/// The app's `ignoreDifferences`, one `group/kind[ name] pointers` per rule.
fn ignored_text(app: &AppView) -> String {
    if app.ignore_differences.is_empty() {
        return "-".into();
    }
    app.ignore_differences
        .iter()
        .map(|rule| {
            let group = if rule.group.is_empty() {
                "core"
            } else {
                &rule.group
            };
            let mut text = format!("{group}/{}", rule.kind);
            if let Some(namespace) = &rule.namespace {
                text.push_str(&format!(" {namespace}/"));
                text.push_str(rule.name.as_deref().unwrap_or("*"));
            } else if let Some(name) = &rule.name {
                text.push_str(&format!(" {name}"));
            }
            let managers = rule
                .managed_fields_managers
                .iter()
                .map(|m| format!("manager:{m}"));
            let fields: Vec<String> = rule
                .json_pointers
                .iter()
                .chain(&rule.jq_path_expressions)
                .cloned()
                .chain(managers)
                .collect();
            format!("{text} {}", fields.join(","))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// One hook run as an agent reported it: a row of the app's status whose
/// message the agent writes as `PHASE hook: STATE` or `PHASE hook: Failed:
/// WHY` (agent/src/reconcile/engine/hooks.rs, `Hooks::rows`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
struct HookRow {
    cluster: String,
    phase: String,
    kind: String,
    namespace: Option<String>,
    /// The name the API server gave the hook object.
    name: String,
    /// `Running`, `Succeeded` or `Failed`.
    state: String,
    /// Why it failed.
    message: Option<String>,
}

/// The hook runs among the status rows of an app, per cluster.
fn hook_rows(statuses: &[switchyard_hub::fleet::StatusView]) -> Vec<HookRow> {
    let mut out = Vec::new();
    for status in statuses {
        for row in &status.resources {
            let Some(message) = row.message.as_deref() else {
                continue;
            };
            let Some((phase, rest)) = message.split_once(" hook: ") else {
                continue;
            };
            if !matches!(phase, "PreSync" | "Sync" | "PostSync" | "SyncFail") {
                continue;
            }
            let (state, why) = match rest.split_once(": ") {
                Some((state, why)) => (state, Some(why.to_owned())),
                None => (rest, None),
            };
            if !matches!(state, "Running" | "Succeeded" | "Failed") {
                continue;
            }
            out.push(HookRow {
                cluster: status.cluster.clone(),
                phase: phase.to_owned(),
                kind: row.kind.clone(),
                namespace: row.namespace.clone(),
                name: row.name.clone(),
                state: state.to_owned(),
                message: why,
            });
        }
    }
    out
}

fn show_hooks(hooks: &[HookRow]) {
    if hooks.is_empty() {
        return;
    }
    println!("\nHooks (this commit):");
    print_table(
        &["CLUSTER", "PHASE", "OBJECT", "STATE", "MESSAGE"],
        hooks.iter().map(|h| {
            vec![
                h.cluster.clone(),
                h.phase.clone(),
                match &h.namespace {
                    Some(ns) => format!("{} {ns}/{}", h.kind, h.name),
                    None => format!("{} {}", h.kind, h.name),
                },
                h.state.clone(),
                h.message.clone().unwrap_or_else(|| "-".into()),
            ]
        }),
    );
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
        ("Ignored", ignored_text(app)),
        ("Create ns", app.create_namespace.to_string()),
        ("Prune last", app.prune_last.to_string()),
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
            app.target_count,
            app.target_names().join(", ")
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
            let mut request = fields.into_request(Some(name), None, None, Vec::new())?;
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
            // (and --ignore-field-manager the app's rules by manager).
            let (helm, directory, rules) = if fields.helm.given()
                || fields.directory.given()
                || fields.changes_field_managers()
            {
                let app: AppView = client.get(&format!("/apps/{name}")).await?;
                (app.helm, app.directory, app.ignore_differences)
            } else {
                (None, None, Vec::new())
            };
            let mut request = fields.into_request(None, helm, directory, rules)?;
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
        AppCommand::List {
            output,
            cluster_names,
        } => {
            let client = AdminClient::discover(target)?;
            let path = if cluster_names {
                "/apps?clusters=names"
            } else {
                "/apps"
            };
            let apps: Vec<AppView> = client.get(path).await?;
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
            let statuses: Vec<switchyard_hub::fleet::StatusView> =
                client.get(&format!("/status?app={name}")).await?;
            let hooks = hook_rows(&statuses);
            if output != OutputFormat::Table {
                let mut value = serde_json::to_value(&app)?;
                value["hooks"] = serde_json::to_value(&hooks)?;
                return print_one(&value, output);
            }
            show_app(&app);
            show_hooks(&hooks);
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
        AppCommand::Diff {
            name,
            cluster,
            timeout,
            output,
        } => diff(target, &name, cluster.as_deref(), timeout, &output).await,
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
            prune,
            output,
        } => {
            let client = AdminClient::discover(target)?;
            let request = SyncRequest {
                revision,
                allow_unreachable,
                reason,
                prune,
            };
            let app: AppView = client.post(&format!("/apps/{name}/sync"), &request).await?;
            let what = if prune {
                format!(
                    "synced, prune confirmed for commit {}",
                    short(&app.prune_confirmed)
                )
            } else {
                "synced".to_owned()
            };
            report_app(&app, &what, output)
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
            app.target_count
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
    if app.target_count == 0 {
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
            app.name, app.target_count
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

/// `--timeout` of `app diff`: whole seconds the hub accepts.
fn diff_timeout(text: &str) -> Result<Duration, String> {
    let wait = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if !(1..=60).contains(&wait.as_secs()) || wait.subsec_nanos() != 0 {
        return Err("a whole number of seconds from 1s to 60s".into());
    }
    Ok(wait)
}

/// `switchyard app diff`: ask the hub, print, and exit like `kubectl diff`.
async fn diff(
    target: &Target,
    name: &str,
    cluster: Option<&str>,
    timeout: Duration,
    output: &str,
) -> anyhow::Result<()> {
    use super::exit::{code, code_of, exit};
    let client = AdminClient::discover(target)?;
    let mut path = format!("/apps/{name}/diff?timeout={}", timeout.as_secs());
    if let Some(c) = cluster {
        path.push_str(&format!("&cluster={c}"));
    }
    let view: AppDiffView = match client.get_waiting(&path, timeout).await {
        Ok(view) => view,
        Err(e) => {
            // 1 means "differences" here: a failure must not look like one.
            let failed = code_of(&e);
            let code = if failed == code::FAILED {
                code::INCOMPLETE
            } else {
                failed
            };
            return Err(exit(code, format!("{e:#}")));
        }
    };
    if output == "json" {
        println!("{}", serde_json::to_string_pretty(&view)?);
    } else {
        use std::io::IsTerminal;
        print!(
            "{}",
            diff_text(&view, cluster.is_none(), std::io::stdout().is_terminal())
        );
    }
    if view.failed() {
        let failed: Vec<&str> = view
            .clusters
            .iter()
            .filter(|c| c.error.is_some() && !c.skipped)
            .map(|c| c.cluster.as_str())
            .collect();
        return Err(exit(
            code::INCOMPLETE,
            format!("no complete diff from {}", failed.join(", ")),
        ));
    }
    if view.differs() {
        return Err(exit(1, String::new()));
    }
    Ok(())
}

/// The diffs as text: one section per cluster when several were asked,
/// `+`/`-` lines green/red when `colour`.
fn diff_text(view: &AppDiffView, headed: bool, colour: bool) -> String {
    use anstyle::{AnsiColor, Style};
    let paint = |line: &str, style: Style| {
        if colour {
            format!("{style}{line}{style:#}\n")
        } else {
            format!("{line}\n")
        }
    };
    let added = Style::new().fg_color(Some(AnsiColor::Green.into()));
    let removed = Style::new().fg_color(Some(AnsiColor::Red.into()));
    let bold = Style::new().bold();
    let mut out = String::new();
    if headed && view.clusters.is_empty() {
        out.push_str(&format!("app {} is assigned to no cluster\n", view.app));
    }
    for cluster in &view.clusters {
        if headed {
            let state = match (&cluster.error, cluster.skipped, cluster.objects.len()) {
                (Some(e), true, _) => format!("skipped: {e}"),
                (Some(e), false, 0) => format!("no diff: {e}"),
                (Some(e), false, n) => format!("{n} object(s) differ; incomplete: {e}"),
                (None, _, 0) => "no differences".to_owned(),
                (None, _, n) => format!("{n} object(s) differ"),
            };
            out.push_str(&paint(
                &format!("=== cluster {}: {state}", cluster.cluster),
                bold,
            ));
        } else if let Some(e) = &cluster.error {
            out.push_str(&format!("cluster {}: {e}\n", cluster.cluster));
        }
        for object in &cluster.objects {
            for line in object.diff.lines() {
                let style = if line.starts_with("+++") || line.starts_with("---") {
                    bold
                } else if line.starts_with('+') {
                    added
                } else if line.starts_with('-') {
                    removed
                } else {
                    Style::new()
                };
                out.push_str(&paint(line, style));
            }
        }
        if cluster.truncated {
            out.push_str(&format!(
                "... cluster {}: more objects differ than one report holds\n",
                cluster.cluster
            ));
        }
    }
    if view.more_clusters > 0 {
        out.push_str(&format!(
            "... {} more cluster(s) of the app not asked (at most {} at once, OutOfSync first); name one with --cluster\n",
            view.more_clusters,
            switchyard_hub::fleet::MAX_CLUSTERS_PER_DIFF
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_runs_are_read_from_the_status_rows() {
        let statuses: Vec<switchyard_hub::fleet::StatusView> = serde_json::from_value(serde_json::json!([{
            "app": "web", "cluster": "edge", "sync": "OutOfSync", "health": "Degraded",
            "desired_commit": "abc", "connected": true,
            "resources": [
                {"group": "batch", "kind": "Job", "namespace": "web", "name": "migrate",
                 "sync": "Synced", "health": "Degraded",
                 "message": "PreSync hook: Failed: Job failed: BackoffLimitExceeded"},
                {"group": "batch", "kind": "Job", "namespace": "web", "name": "cleanup-x2b4z",
                 "sync": "Synced", "health": "Progressing", "message": "SyncFail hook: Running"},
                {"group": "apps", "kind": "Deployment", "namespace": "web", "name": "web",
                 "sync": "Synced", "health": "Healthy", "message": "a hook: of another kind"},
                {"group": "", "kind": "ConfigMap", "namespace": "web", "name": "c",
                 "sync": "Synced", "health": "Healthy", "message": null}
            ]
        }]))
        .unwrap();
        let hooks = hook_rows(&statuses);
        assert_eq!(hooks.len(), 2, "{hooks:?}");
        assert_eq!(
            (
                hooks[0].phase.as_str(),
                hooks[0].state.as_str(),
                hooks[0].name.as_str()
            ),
            ("PreSync", "Failed", "migrate")
        );
        assert_eq!(
            hooks[0].message.as_deref(),
            Some("Job failed: BackoffLimitExceeded")
        );
        assert_eq!(
            (
                hooks[1].phase.as_str(),
                hooks[1].state.as_str(),
                hooks[1].message.as_deref()
            ),
            ("SyncFail", "Running", None)
        );
        assert_eq!(hooks[1].cluster, "edge");
    }

    #[test]
    fn diff_text_heads_clusters_and_colours_only_when_asked() {
        use switchyard_hub::fleet::{ClusterDiffView, ObjectDiffView};
        let view = AppDiffView {
            app: "web".into(),
            clusters: vec![
                ClusterDiffView {
                    cluster: "edge-1".into(),
                    objects: vec![ObjectDiffView {
                        api_version: "v1".into(),
                        kind: "ConfigMap".into(),
                        namespace: Some("web".into()),
                        name: "c".into(),
                        change: "update".into(),
                        diff: "--- live/v1/ConfigMap/web/c\n+++ desired/v1/ConfigMap/web/c\n@@ -1 +1 @@\n-a: 1\n+a: 2\n".into(),
                    }],
                    truncated: true,
                    error: None,
                    skipped: false,
                },
                ClusterDiffView {
                    cluster: "edge-2".into(),
                    objects: Vec::new(),
                    truncated: false,
                    error: Some("the agent is not connected".into()),
                    skipped: true,
                },
            ],
            more_clusters: 0,
        };
        assert!(view.differs() && !view.failed());
        let plain = diff_text(&view, true, false);
        assert_eq!(
            plain,
            "=== cluster edge-1: 1 object(s) differ\n\
             --- live/v1/ConfigMap/web/c\n\
             +++ desired/v1/ConfigMap/web/c\n\
             @@ -1 +1 @@\n\
             -a: 1\n\
             +a: 2\n\
             ... cluster edge-1: more objects differ than one report holds\n\
             === cluster edge-2: skipped: the agent is not connected\n"
        );
        let coloured = diff_text(&view, true, true);
        assert!(
            coloured.contains("\u{1b}[32m+a: 2\u{1b}[0m"),
            "{coloured:?}"
        );
        assert!(
            coloured.contains("\u{1b}[31m-a: 1\u{1b}[0m"),
            "{coloured:?}"
        );
    }

    #[test]
    fn diff_timeouts_are_whole_seconds_the_hub_accepts() {
        assert_eq!(diff_timeout("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(diff_timeout("1m"), Ok(Duration::from_secs(60)));
        for bad in ["0s", "61s", "1500ms", "soon"] {
            assert!(diff_timeout(bad).is_err(), "{bad}");
        }
    }
}
