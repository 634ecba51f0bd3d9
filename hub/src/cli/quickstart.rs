//! `switchyard quickstart`: a hub on the embedded store and local agents in
//! dry-run, enrolled and connected, in one command.

use super::client::AdminClient;
use super::output::print_table;
use super::{CLUSTER_HEADERS, cluster_row};
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
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
                r.message.clone().unwrap_or_default(),
            ]
        }),
    );
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

fn step(text: &str) {
    println!("==> {text}");
}

/// Run the quickstart in `dir` (a new temporary directory when `None`).
pub(crate) async fn run(
    dir: Option<PathBuf>,
    exit: bool,
    kubeconfig: Option<PathBuf>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let dir = match dir {
        Some(dir) => dir,
        None => std::env::temp_dir().join(format!("switchyard-quickstart-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let data_dir = dir.join("hub");
    if paths::endpoint_file(&data_dir).exists() {
        bail!(
            "{} already holds a quickstart; pass another --dir or remove it",
            dir.display()
        );
    }
    let switchyard = std::env::current_exe()?;
    let agent_bin = sibling_binary("switchyard-agent")?;
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
    let client = AdminClient::discover(&super::Target {
        data_dir: Some(data_dir.clone()),
        server: None,
        server_ca_file: None,
        ca_sha256: None,
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
    let first = git(&repo_dir, &["rev-parse", "HEAD"])?;
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
                webhook_secret_file: None,
            },
        )
        .await?;
    println!(
        "    switchyard repo add config file://{} --interval 2s",
        repo_dir.display()
    );
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
        println!("    {}", added.join_command);
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
        match (&kubeconfig, index) {
            (Some(kubeconfig), 0) => {
                run_args.extend(["--kubeconfig".into(), kubeconfig.display().to_string()]);
                println!(
                    "    {name} applies to the cluster of {}",
                    kubeconfig.display()
                );
            }
            _ => run_args.push("--dry-run".into()),
        }
        let agent = spawn_logged(
            &agent_bin,
            &run_args,
            &dir.join(format!("agent-{name}.log")),
        )?;
        children.0.push((format!("agent {name}"), agent));
    }

    step("waiting for every agent to connect");
    let mut clusters: Vec<ClusterView> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        clusters = client.get("/clusters").await.unwrap_or(clusters);
        if clusters.iter().filter(|c| c.connected).count() == CLUSTERS.len() {
            break;
        }
        if Instant::now() >= deadline {
            print_table(&CLUSTER_HEADERS, clusters.iter().map(cluster_row));
            bail!(
                "not every agent connected within 30s; logs are in {}",
                dir.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!();
    print_table(&CLUSTER_HEADERS, clusters.iter().map(cluster_row));
    println!(
        "\nAll {} agents enrolled and connected in {:.1}s.\n",
        CLUSTERS.len(),
        started.elapsed().as_secs_f64()
    );

    step("creating app web for env=prod and app probe for every cluster");
    for (name, path, selector) in [("web", "apps/web", "env=prod"), ("probe", "apps/probe", "")] {
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
        println!(
            "    switchyard app create {name} --repo config --path {path}{} --namespace demo --prune  ->  {} clusters",
            if selector.is_empty() {
                String::new()
            } else {
                format!(" --selector {selector}")
            },
            app.target_clusters.len()
        );
    }
    step("waiting for every agent to report the first commit");
    let rows = wait_converged(&client, &["web", "probe"], &first, 5).await?;
    print_status(&rows);
    println!();

    step("committing 'scale web to 2 replicas' to the config repo");
    write_web(&repo_dir, 2)?;
    git(
        &repo_dir,
        &["commit", "-q", "-am", "scale web to 2 replicas"],
    )?;
    let second = git(&repo_dir, &["rev-parse", "HEAD"])?;
    step("waiting for the change to reach the prod clusters");
    let rows = wait_converged(&client, &["web"], &second, 2).await?;
    print_status(&rows);
    println!();
    println!(
        "web moved to {} on the env=prod clusters only; lab-1 never got it. The whole journey took {:.1}s.",
        &second[..8],
        started.elapsed().as_secs_f64()
    );
    println!("Hub data, agent state and logs: {}", dir.display());
    let data = data_dir.display();
    println!("\nTry next, in another terminal:");
    println!("  export SWITCHYARD_DATA_DIR={data}");
    println!("  target/debug/switchyard status");
    println!("  target/debug/switchyard app history web");
    println!("  target/debug/switchyard app rollback web        # back to 1 replica, pinned");
    println!("  target/debug/switchyard cluster label lab-1 env=prod   # lab-1 gets web too");
    println!("  target/debug/switchyard cluster list -o yaml");
    if exit {
        step("shutting down (--exit)");
        return Ok(());
    }
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
