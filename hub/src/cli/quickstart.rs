//! `switchyard quickstart`: a hub on the embedded store and local agents in
//! dry-run, enrolled and connected, in one command; then a commit, the diff
//! each cluster receives and the result per cluster, with every command it
//! stands for printed.

use super::client::AdminClient;
use super::output::print_table;
use super::{CLUSTER_HEADERS, cluster_row};
use anyhow::{Context, bail};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use switchyard_common::bundle::{Bundle, DIGEST_PREFIX};
use switchyard_common::proto::Assignment;
use switchyard_hub::api::AddClusterRequest;
use switchyard_hub::fleet::{ClusterView, JoinInfo, StatusView};
use switchyard_hub::gitops::{AppRequest, AppView, RepoRequest, RepoView};
use switchyard_hub::paths;

/// The demo fleet: names and labels.
const CLUSTERS: [(&str, &str, &str); 3] = [
    ("edge-berlin", "env", "prod"),
    ("edge-lisbon", "env", "prod"),
    ("lab-1", "env", "staging"),
];

/// The sample config repo: a web app for production and a probe everywhere.
const WEB: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
    cluster: ${cluster.name}
spec:
  replicas: REPLICAS
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        ports: [{containerPort: 80}]
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 80}]
";

const PROBE: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: probe
data:
  target: https://status.example.com
  interval: 30s
";

/// Run git in `dir` with a fixed identity and no user or system config.
fn git(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Quickstart")
        .env("GIT_AUTHOR_EMAIL", "quickstart@switchyard.dev")
        .env("GIT_COMMITTER_NAME", "Quickstart")
        .env("GIT_COMMITTER_EMAIL", "quickstart@switchyard.dev")
        .output()
        .context("running git (is it installed?)")?;
    if !out.status.success() {
        bail!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn write_web(repo: &Path, replicas: u32) -> anyhow::Result<()> {
    let dir = repo.join("apps/web");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("web.yaml"),
        WEB.replace("REPLICAS", &replicas.to_string()),
    )?;
    Ok(())
}

/// Wait until every (app, cluster) row reports `commit` for the apps in
/// `apps`, printing the status table when done.
async fn wait_converged(
    client: &AdminClient,
    apps: &[&str],
    commit: &str,
    expected_rows: usize,
) -> anyhow::Result<Vec<StatusView>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows: Vec<StatusView> = client.get("/status").await?;
        let relevant: Vec<&StatusView> = rows
            .iter()
            .filter(|r| apps.contains(&r.app.as_str()))
            .collect();
        let done = relevant.len() == expected_rows
            && relevant
                .iter()
                .all(|r| r.applied_commit.as_deref() == Some(commit));
        if done {
            return Ok(rows);
        }
        let apps_now: Vec<AppView> = client.get("/apps").await?;
        if let Some((app, error)) = apps_now
            .iter()
            .find_map(|a| a.errors.values().next().map(|e| (&a.name, e)))
        {
            bail!("app {app} failed: {error}");
        }
        if Instant::now() >= deadline {
            bail!("the fleet did not converge on {commit} within 30s");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Child processes, stopped in reverse order when dropped.
struct Children(Vec<(String, Child)>);

impl Drop for Children {
    fn drop(&mut self) {
        for (_, child) in self.0.iter_mut().rev() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for (name, child) in self.0.iter_mut().rev() {
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if let Ok(None) = child.try_wait() {
                eprintln!("{name} did not stop in time; killing it");
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

fn sibling_binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the switchyard binary")?;
    let path = exe.with_file_name(name);
    if !path.exists() {
        bail!(
            "{} not found next to {}; build both binaries with `cargo build --workspace --bins`",
            name,
            exe.display()
        );
    }
    Ok(path)
}

fn spawn_logged(program: &Path, args: &[String], log: &Path) -> anyhow::Result<Child> {
    let out = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let err = out.try_clone()?;
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .with_context(|| format!("starting {}", program.display()))
}

/// Styles of the quickstart's output; anstream drops them when stdout is
/// not a terminal or NO_COLOR is set.
mod style {
    use anstyle::{AnsiColor, Style};
    pub(super) const STEP: Style = Style::new().bold();
    pub(super) const COMMAND: Style =
        Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Cyan)));
    pub(super) const REMOVED: Style =
        Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Red)));
    pub(super) const ADDED: Style =
        Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Green)));
    pub(super) const DIM: Style = Style::new().dimmed();
}

fn step(text: &str) {
    anstream::println!(
        "{}==> {text}{}",
        style::STEP.render(),
        style::STEP.render_reset()
    );
}

/// A command the quickstart ran (or did through the admin API) as a user
/// would type it.
fn command(text: &str) {
    anstream::println!(
        "    {}$ {text}{}",
        style::COMMAND.render(),
        style::COMMAND.render_reset()
    );
}

/// What the dry-run agent of one cluster held: per app, its commit and objects.
type Held = BTreeMap<String, (String, Vec<Value>)>;

/// Read what a cluster's agent holds from its cache (assignment and the
/// bundles it names): exactly what the hub sent that cluster.
fn held_by(state_dir: &Path) -> anyhow::Result<Held> {
    let cache = state_dir.join("cache");
    let file = cache.join("assignment.json");
    let assignment: Assignment = serde_json::from_slice(
        &std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?,
    )
    .with_context(|| format!("reading {}", file.display()))?;
    let mut held = Held::new();
    for item in assignment.items {
        let hex = item.digest.trim_start_matches(DIGEST_PREFIX);
        let path = cache.join("bundles").join(format!("{hex}.zst"));
        let compressed =
            std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let mut bundle = Bundle::decode(&compressed, &item.digest, 256 << 20)
            .with_context(|| format!("decoding {}", path.display()))?;
        // The agent puts objects that name no namespace into the app's.
        for object in &mut bundle.objects {
            if object["metadata"]["namespace"].is_null()
                && let (Some(ns), Some(metadata)) =
                    (&item.namespace, object["metadata"].as_object_mut())
            {
                metadata.insert("namespace".into(), Value::String(ns.clone()));
            }
        }
        held.insert(item.app, (item.commit, bundle.objects));
    }
    Ok(held)
}

/// `Kind namespace/name` of an object.
fn object_name(object: &Value) -> String {
    let ns = object["metadata"]["namespace"]
        .as_str()
        .map(|n| format!("{n}/"))
        .unwrap_or_default();
    format!(
        "{} {ns}{}",
        object["kind"].as_str().unwrap_or("?"),
        object["metadata"]["name"].as_str().unwrap_or("?")
    )
}

/// One line of a change: removed, added, or unchanged context.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Line {
    Removed(String),
    Added(String),
    Same(String),
}

/// How the objects of one app changed between two bundles: per object that
/// differs, its name and the changed lines of its YAML with one line of
/// context (a removed or added object shows whole).
fn object_changes(before: &[Value], after: &[Value]) -> Vec<(String, Vec<Line>)> {
    let index = |objects: &[Value]| -> BTreeMap<String, String> {
        objects
            .iter()
            .map(|o| {
                (
                    object_name(o),
                    serde_saphyr::to_string(o).unwrap_or_default(),
                )
            })
            .collect()
    };
    let (old, new) = (index(before), index(after));
    let names: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    let mut changes = Vec::new();
    for name in names {
        let old_text = old.get(name).map_or("", String::as_str);
        let new_text = new.get(name).map_or("", String::as_str);
        if old_text == new_text {
            continue;
        }
        let diff = similar::TextDiff::from_lines(old_text, new_text);
        let mut lines = Vec::new();
        for hunk in diff.unified_diff().context_radius(1).iter_hunks() {
            for change in hunk.iter_changes() {
                let text = change.value().trim_end_matches('\n').to_owned();
                lines.push(match change.tag() {
                    similar::ChangeTag::Delete => Line::Removed(text),
                    similar::ChangeTag::Insert => Line::Added(text),
                    similar::ChangeTag::Equal => Line::Same(text),
                });
            }
        }
        changes.push((name.clone(), lines));
    }
    changes
}

/// The MESSAGE of a dry-run row: how many objects were planned, and which.
fn planned_message(row: &StatusView) -> String {
    if row.sync != "Planned" {
        return row.message.clone().unwrap_or_default();
    }
    let names: Vec<String> = row
        .resources
        .iter()
        .map(|r| format!("{} {}", r.kind, r.name))
        .collect();
    format!(
        "dry-run: {} object{} planned ({})",
        names.len(),
        if names.len() == 1 { "" } else { "s" },
        names.join(", ")
    )
}

fn print_status(rows: &[StatusView]) {
    print_table(
        &["APP", "CLUSTER", "SYNC", "HEALTH", "REVISION", "MESSAGE"],
        rows.iter().map(|r| {
            vec![
                r.app.clone(),
                r.cluster.clone(),
                r.sync.clone(),
                r.health.clone(),
                r.applied_commit
                    .as_deref()
                    .unwrap_or("-")
                    .chars()
                    .take(8)
                    .collect(),
                planned_message(r),
            ]
        }),
    );
}

/// One cluster's result of a commit, per app: what changed for it.
fn cluster_result(name: &str, before: &Held, after: &Held) -> String {
    let apps: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    let mut parts = Vec::new();
    for app in apps {
        let part = match (before.get(app), after.get(app)) {
            (Some((_, old)), Some((commit, new))) => {
                let changed = object_changes(old, new).len();
                if changed == 0 {
                    format!(
                        "{app}: same objects at {}, nothing to apply",
                        &commit[..8.min(commit.len())]
                    )
                } else {
                    format!(
                        "{app}: {changed} object{} changed at {}",
                        if changed == 1 { "" } else { "s" },
                        &commit[..8.min(commit.len())]
                    )
                }
            }
            (None, Some(_)) => format!("{app}: newly assigned"),
            (Some(_), None) => format!("{app}: no longer assigned"),
            (None, None) => continue,
        };
        parts.push(part);
    }
    format!("{name:<13}{}", parts.join("; "))
}

/// `switchyard quickstart`'s flags.
#[derive(Debug, clap::Args)]
pub(crate) struct QuickstartArgs {
    /// Directory for the hub's data, the agents' state and the logs, kept
    /// afterwards [default: a new directory under the system temp dir,
    /// removed at the end unless --keep].
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep the temporary directory at the end (a --dir is always kept).
    #[arg(long)]
    keep: bool,
    /// Stop everything once the journey is done instead of waiting for Ctrl-C.
    #[arg(long)]
    exit: bool,
    /// Let the first agent apply to this cluster instead of a dry-run.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
}

/// Run the quickstart. A temporary directory is removed at the end unless
/// --keep; after a failure it is kept, since its logs say what went wrong.
pub(crate) async fn run(args: QuickstartArgs) -> anyhow::Result<()> {
    let (dir, temporary) = match &args.dir {
        Some(dir) => (dir.clone(), None),
        None => {
            let temp = tempfile::Builder::new()
                .prefix("switchyard-quickstart-")
                .tempdir()
                .context("creating a temporary directory")?;
            (temp.path().to_owned(), Some(temp))
        }
    };
    let outcome = journey(&args, &dir).await;
    match temporary {
        Some(temp) if outcome.is_ok() && !args.keep => {
            let path = temp.path().display().to_string();
            temp.close().with_context(|| format!("removing {path}"))?;
            println!("Removed {path} (pass --keep to keep it).");
        }
        Some(temp) => {
            let path = temp.keep();
            println!("Kept {}.", path.display());
        }
        None => {}
    }
    outcome.map_err(|e| {
        e.context(format!(
            "the quickstart failed; its logs are in {}",
            dir.display()
        ))
    })
}

async fn journey(args: &QuickstartArgs, dir: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let data_dir = dir.join("hub");
    if paths::endpoint_file(&data_dir).exists() {
        bail!(
            "{} already holds a quickstart; pass another --dir or remove it",
            dir.display()
        );
    }
    let switchyard = std::env::current_exe()?;
    let agent_bin = sibling_binary("switchyard-agent")?;
    // Children are stopped when this is dropped, before the caller removes
    // the directory they write to.
    let mut children = Children(Vec::new());

    step(&format!(
        "starting a hub on the embedded sled store in {}",
        data_dir.display()
    ));
    let hub_args: Vec<String> = [
        "serve",
        "--data-dir",
        &data_dir.display().to_string(),
        "--quic-listen",
        "127.0.0.1:0",
        "--http-listen",
        "127.0.0.1:0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    command(&format!("switchyard {} &", hub_args.join(" ")));
    let hub = spawn_logged(&switchyard, &hub_args, &dir.join("hub.log"))?;
    let hub_pid = hub.id();
    children.0.push(("hub".into(), hub));
    wait_for(Duration::from_secs(20), "the hub to listen", || {
        std::fs::read(paths::endpoint_file(&data_dir))
            .ok()
            .and_then(|b| serde_json::from_slice::<paths::Endpoints>(&b).ok())
            .is_some_and(|e| e.pid == hub_pid)
    })
    .await?;
    command(&format!(
        "export SWITCHYARD_DATA_DIR={}",
        data_dir.display()
    ));
    let client = AdminClient::discover(&super::Target {
        data_dir: Some(data_dir.clone()),
        ..super::Target::default()
    })?;

    let repo_dir = dir.join("config");
    step(&format!(
        "creating a sample config repo in {}",
        repo_dir.display()
    ));
    std::fs::create_dir_all(repo_dir.join("apps/probe"))?;
    git(&repo_dir, &["init", "-q", "-b", "main"])?;
    write_web(&repo_dir, 1)?;
    std::fs::write(repo_dir.join("apps/probe/probe.yaml"), PROBE)?;
    git(&repo_dir, &["add", "-A"])?;
    git(
        &repo_dir,
        &["commit", "-q", "-m", "web (1 replica) and probe"],
    )?;
    command(&format!("cd {} && git init -b main", repo_dir.display()));
    command("git add -A && git commit -m 'web (1 replica) and probe'");
    let first = git(&repo_dir, &["rev-parse", "HEAD"])?;

    step("following the repo");
    let _: RepoView = client
        .post(
            "/repos",
            &RepoRequest {
                name: "config".into(),
                url: format!("file://{}", repo_dir.display()),
                branch: Some("main".into()),
                interval_secs: Some(2),
                username: None,
                password_file: None,
                ca_file: None,
                plain_http: false,
                webhook_secret_file: None,
                kind: None,
            },
        )
        .await?;
    command(&format!(
        "switchyard repo add config file://{} --interval 2s --wait",
        repo_dir.display()
    ));
    wait_for_async(
        Duration::from_secs(20),
        "the first fetch of the repo",
        || async {
            client
                .get::<RepoView>("/repos/config")
                .await
                .is_ok_and(|r| r.head.as_deref() == Some(first.as_str()))
        },
    )
    .await?;

    for (index, (name, key, value)) in CLUSTERS.into_iter().enumerate() {
        step(&format!(
            "registering cluster {name} ({key}={value}) and enrolling its agent"
        ));
        command(&format!(
            "switchyard cluster add {name} --label {key}={value}"
        ));
        let added: JoinInfo = client
            .post(
                "/clusters",
                &AddClusterRequest {
                    name: name.into(),
                    labels: [(key.to_string(), value.to_string())].into(),
                    token_ttl_secs: Some(600),
                },
            )
            .await?;
        let state_dir = dir.join(format!("agent-{name}"));
        // The printed command: `SWITCHYARD_JOIN_TOKEN=… switchyard-agent join …`.
        let mut join: Vec<String> = added
            .join_command
            .split_whitespace()
            .skip_while(|word| *word != "switchyard-agent")
            .skip(1)
            .map(str::to_owned)
            .collect();
        join.extend(["--state-dir".into(), state_dir.display().to_string()]);
        command(&format!(
            "SWITCHYARD_JOIN_TOKEN=… switchyard-agent {}",
            join.join(" ")
        ));
        let status = Command::new(&agent_bin)
            .args(&join)
            .env("SWITCHYARD_JOIN_TOKEN", &added.token)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join(format!("join-{name}.log")))?)
            .status()
            .context("running switchyard-agent join")?;
        if !status.success() {
            bail!(
                "enrolling {name} failed; see {}",
                dir.join(format!("join-{name}.log")).display()
            );
        }
        let mut run_args: Vec<String> = vec![
            "run".into(),
            "--state-dir".into(),
            state_dir.display().to_string(),
        ];
        // With a kubeconfig, the first agent applies to that cluster for real.
        match (&args.kubeconfig, index) {
            (Some(kubeconfig), 0) => {
                run_args.extend(["--kubeconfig".into(), kubeconfig.display().to_string()]);
            }
            _ => run_args.push("--dry-run".into()),
        }
        command(&format!("switchyard-agent {} &", run_args.join(" ")));
        let agent = spawn_logged(
            &agent_bin,
            &run_args,
            &dir.join(format!("agent-{name}.log")),
        )?;
        children.0.push((format!("agent {name}"), agent));
    }

    step("waiting for every agent to connect");
    command("switchyard cluster list");
    let mut clusters: Vec<ClusterView> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        clusters = client.get("/clusters").await.unwrap_or(clusters);
        if clusters.iter().filter(|c| c.connected).count() == CLUSTERS.len() {
            break;
        }
        if Instant::now() >= deadline {
            print_table(&CLUSTER_HEADERS, clusters.iter().map(cluster_row));
            bail!("not every agent connected within 30s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    print_table(&CLUSTER_HEADERS, clusters.iter().map(cluster_row));
    println!(
        "\nAll {} agents enrolled and connected in {:.1}s.\n",
        CLUSTERS.len(),
        started.elapsed().as_secs_f64()
    );

    step("creating app web for env=prod and app probe for every cluster");
    for (name, path, selector) in [("web", "apps/web", "env=prod"), ("probe", "apps/probe", "")] {
        let selector_flag = if selector.is_empty() {
            String::new()
        } else {
            format!(" --selector {selector}")
        };
        command(&format!(
            "switchyard app create {name} --repo config --path {path}{selector_flag} --namespace demo --prune"
        ));
        let app: AppView = client
            .post(
                "/apps",
                &AppRequest {
                    name: Some(name.into()),
                    repo: Some("config".into()),
                    path: Some(path.into()),
                    selector: Some(selector.into()),
                    namespace: Some("demo".into()),
                    prune: Some(true),
                    ..AppRequest::default()
                },
            )
            .await?;
        let mut targets = app.target_names().to_vec();
        targets.sort();
        let why = if selector.is_empty() {
            "no selector: every cluster".to_owned()
        } else {
            selector.to_owned()
        };
        anstream::println!(
            "      {}-> {} ({why}){}",
            style::DIM.render(),
            targets.join(", "),
            style::DIM.render_reset()
        );
    }
    step("waiting for every agent to report the first commit");
    command("switchyard status");
    let rows = wait_converged(&client, &["web", "probe"], &first, 5).await?;
    print_status(&rows);
    println!();
    let mut before = BTreeMap::new();
    for (name, _, _) in CLUSTERS {
        before.insert(name, held_by(&dir.join(format!("agent-{name}")))?);
    }

    step("committing 'scale web to 2 replicas' to the config repo");
    write_web(&repo_dir, 2)?;
    git(
        &repo_dir,
        &["commit", "-q", "-am", "scale web to 2 replicas"],
    )?;
    command("sed -i 's/replicas: 1/replicas: 2/' apps/web/web.yaml");
    command("git commit -am 'scale web to 2 replicas'");
    let second = git(&repo_dir, &["rev-parse", "HEAD"])?;
    step("waiting for the hub to fetch it and every agent to report it");
    command("switchyard status");
    let rows = wait_converged(&client, &["web", "probe"], &second, 5).await?;
    print_status(&rows);
    println!();

    step("what each cluster received");
    let mut results = Vec::new();
    for (name, key, value) in CLUSTERS {
        let after = held_by(&dir.join(format!("agent-{name}")))?;
        let old = &before[name];
        println!("{name} ({key}={value}):");
        let mut any = false;
        for (app, (_, new_objects)) in &after {
            let old_objects = old.get(app).map_or(&[][..], |(_, o)| o.as_slice());
            for (object, lines) in object_changes(old_objects, new_objects) {
                any = true;
                println!("  {app}: {object}");
                for line in lines {
                    match line {
                        Line::Removed(text) => anstream::println!(
                            "    {}- {text}{}",
                            style::REMOVED.render(),
                            style::REMOVED.render_reset()
                        ),
                        Line::Added(text) => anstream::println!(
                            "    {}+ {text}{}",
                            style::ADDED.render(),
                            style::ADDED.render_reset()
                        ),
                        Line::Same(text) => println!("      {text}"),
                    }
                }
            }
        }
        if !any {
            println!("  no object changed");
        }
        results.push(cluster_result(name, old, &after));
    }
    println!();
    step("result per cluster");
    for line in &results {
        println!("  {line}");
    }
    println!();
    println!(
        "web moved to {} on the env=prod clusters only; lab-1 is not targeted by web and its probe \
         did not change. The whole journey took {:.1}s.",
        &second[..8],
        started.elapsed().as_secs_f64()
    );
    println!("Hub data, agent state and logs: {}", dir.display());
    if args.exit {
        step("shutting down (--exit)");
        return Ok(());
    }
    let data = data_dir.display();
    let me = switchyard.display();
    println!("\nTry next, in another terminal, while this one runs:");
    println!("  export SWITCHYARD_DATA_DIR={data}");
    println!("  {me} status");
    println!("  {me} app history web");
    println!("  {me} app rollback web        # back to 1 replica, pinned");
    println!("  {me} cluster label lab-1 env=prod   # lab-1 gets web too");
    println!("  {me} cluster list -o yaml");
    println!("\nPress Ctrl-C to stop the hub and the agents.");
    let _ = tokio::signal::ctrl_c().await;
    step("shutting down");
    Ok(())
}

async fn wait_for_async<F, Fut>(timeout: Duration, what: &str, mut ready: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !ready().await {
        if Instant::now() >= deadline {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

async fn wait_for(
    timeout: Duration,
    what: &str,
    mut ready: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while !ready() {
        if Instant::now() >= deadline {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}
