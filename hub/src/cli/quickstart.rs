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
use switchyard_hub::fleet::{ClusterView, JoinInfo};
use switchyard_hub::paths;

/// The demo fleet: names and labels.
const CLUSTERS: [(&str, &str, &str); 3] = [
    ("edge-berlin", "env", "prod"),
    ("edge-lisbon", "env", "prod"),
    ("lab-1", "env", "staging"),
];

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
pub(crate) async fn run(dir: Option<PathBuf>, exit: bool) -> anyhow::Result<()> {
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
    let client = AdminClient::discover(Some(data_dir.clone()), None)?;

    for (name, key, value) in CLUSTERS {
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
        let mut join: Vec<String> = added
            .join_command
            .split_whitespace()
            .skip(1)
            .map(str::to_owned)
            .collect();
        join.extend(["--state-dir".into(), state_dir.display().to_string()]);
        let status = Command::new(&agent_bin)
            .args(&join)
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
        let run_args: Vec<String> = vec![
            "run".into(),
            "--dry-run".into(),
            "--state-dir".into(),
            state_dir.display().to_string(),
        ];
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
    println!();
    println!(
        "All {} agents enrolled and connected in {:.1}s. Logs: {}",
        CLUSTERS.len(),
        started.elapsed().as_secs_f64(),
        dir.display()
    );
    let data = data_dir.display();
    println!("\nTry next, in another terminal:");
    println!("  export SWITCHYARD_DATA_DIR={data}");
    println!("  target/debug/switchyard cluster list -o yaml");
    println!("  target/debug/switchyard cluster label lab-1 zone=basement");
    println!("  target/debug/switchyard cluster add shop-7 --label env=prod");
    println!("  target/debug/switchyard cluster remove lab-1");
    if exit {
        step("shutting down (--exit)");
        return Ok(());
    }
    println!("\nPress Ctrl-C to stop the hub and the agents.");
    let _ = tokio::signal::ctrl_c().await;
    step("shutting down");
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
