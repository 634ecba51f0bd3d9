//! Crash consistency: the real hub and the real agent killed with SIGKILL at
//! random moments (seeded; the seed is printed, set SWITCHYARD_CRASH_SEED to
//! replay) during heavy writes, restarted each time, and checked: every
//! acknowledged write is still there and the state opens cleanly.
//!
//! "Acknowledged" means the CLI (and so the admin API) returned success, or
//! the agent's join command did. Status reports are not in the ledger: the
//! hub does not wait for the disk before StatusAccepted, by design, because
//! agents report again on every connection (checked at the end instead).

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchyard_common::bundle::Bundle;
use switchyard_tests::fleet::{SOON, TestAgent, TestHub, add_demo_app, join_args};
use switchyard_tests::process::wait_until;

const KILLS: usize = 20;

fn seed() -> u64 {
    let seed = std::env::var("SWITCHYARD_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("crash seed {seed} (replay with SWITCHYARD_CRASH_SEED={seed})");
    seed
}

/// Writes the hub acknowledged, recorded only after the command succeeded.
#[derive(Default, Clone)]
struct Ledger {
    /// Cluster added with label `wave=N`.
    added: BTreeMap<String, String>,
    /// Clusters whose agent's `join` succeeded.
    enrolled: Vec<String>,
    /// Highest acknowledged `round` label of cluster `steady-1`.
    round: u64,
    /// (event, commit) of acknowledged syncs and rollbacks, in order. A
    /// sync's commit is the one its answer showed deployed: the commit it
    /// deployed, or a newer one a planning pass deployed right after it
    /// (the app follows its branch again after a sync).
    deploys: Vec<(String, String)>,
    /// Commands that failed (the hub was down or went down mid-request).
    failed: usize,
}

/// The workload: one thread doing random acknowledged writes until told to stop.
fn workload(
    dir: &Path,
    data_dir: &Path,
    seed: u64,
    ledger: &Mutex<Ledger>,
    stop: &AtomicBool,
) -> usize {
    let hub = Cli(data_dir.to_owned());
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    let mut next_cluster = 0;
    let mut next_round = 1;
    let mut tokens: Vec<(String, Vec<String>)> = Vec::new();
    let mut ops = 0;
    while !stop.load(Ordering::SeqCst) {
        ops += 1;
        let choice = rng.random_range(0..10);
        let ok = match choice {
            // Register a cluster.
            0..=3 => {
                let name = format!("crash-{next_cluster}");
                next_cluster += 1;
                let wave = format!("{}", rng.random_range(0..1000));
                match hub.json(&["cluster", "add", &name, "--label", &format!("wave={wave}")]) {
                    Some(added) => {
                        tokens.push((name.clone(), join_args(&added)));
                        ledger.lock().unwrap().added.insert(name, wave);
                        true
                    }
                    None => false,
                }
            }
            // Enroll an agent for a registered cluster.
            4 | 5 => match tokens.pop() {
                Some((name, args)) => {
                    let agent = TestAgent::new(dir, &name);
                    let ok = agent.join(&args).success();
                    if ok {
                        ledger.lock().unwrap().enrolled.push(name);
                    }
                    ok
                }
                None => true,
            },
            // Relabel a running agent's cluster.
            6 => {
                let round = next_round;
                next_round += 1;
                let ok = hub
                    .run(&["cluster", "label", "steady-1", &format!("round={round}")])
                    .is_some();
                if ok {
                    ledger.lock().unwrap().round = round;
                }
                ok
            }
            // Roll back to a commit from the history, or sync to the latest.
            _ => {
                let history = hub.json(&["app", "history", "demo"]);
                let commits: Vec<String> = history
                    .as_ref()
                    .and_then(Value::as_array)
                    .map(|h| {
                        h.iter()
                            .filter_map(|r| r["commit"].as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                if commits.is_empty() {
                    false
                } else if rng.random_bool(0.5) {
                    let to = &commits[rng.random_range(0..commits.len())];
                    match hub.json(&["app", "rollback", "demo", "--to", to]) {
                        Some(app) => {
                            // A planning pass running at the same time must
                            // not deploy a new commit over the rollback.
                            assert_eq!(
                                (app["deployed"].as_str(), &app["pinned"]),
                                (Some(to.as_str()), &Value::Bool(true)),
                                "rollback --to {to} answered {app}"
                            );
                            ledger
                                .lock()
                                .unwrap()
                                .deploys
                                .push(("rollback".into(), to.to_owned()));
                            true
                        }
                        None => false,
                    }
                } else {
                    match hub.json(&["app", "sync", "demo"]) {
                        Some(app) => {
                            let deployed = app["deployed"].as_str().unwrap_or_default();
                            ledger
                                .lock()
                                .unwrap()
                                .deploys
                                .push(("sync".into(), deployed.to_owned()));
                            true
                        }
                        None => false,
                    }
                }
            }
        };
        if !ok {
            ledger.lock().unwrap().failed += 1;
            // The hub is down or restarting; do not spin.
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    ops
}

/// The CLI against a hub found through its data dir (it follows restarts).
struct Cli(std::path::PathBuf);

impl Cli {
    fn run(&self, args: &[&str]) -> Option<String> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let out = switchyard_tests::process::run(
            &switchyard_tests::process::binary("switchyard"),
            &args,
            &[("SWITCHYARD_DATA_DIR", self.0.display().to_string())],
            SOON,
        );
        out.success().then_some(out.stdout)
    }

    fn json(&self, args: &[&str]) -> Option<Value> {
        let mut args = args.to_vec();
        args.extend(["-o", "json"]);
        self.run(&args)
            .and_then(|stdout| serde_json::from_str(&stdout).ok())
    }
}

/// Every acknowledged write in `ledger` is in the hub now.
fn check(hub: &TestHub, ledger: &Ledger, kill: usize) {
    let clusters = hub.cli_json(&["cluster", "list"]);
    let clusters: BTreeMap<String, &Value> = clusters
        .as_array()
        .expect("cluster list")
        .iter()
        .map(|c| (c["name"].as_str().unwrap().to_owned(), c))
        .collect();
    for (name, wave) in &ledger.added {
        let cluster = clusters
            .get(name)
            .unwrap_or_else(|| panic!("after kill {kill}: acknowledged cluster {name} is gone"));
        assert_eq!(
            cluster["labels"]["wave"],
            wave.as_str(),
            "after kill {kill}: label of {name}"
        );
    }
    for name in &ledger.enrolled {
        assert_eq!(
            clusters[name]["state"], "enrolled",
            "after kill {kill}: acknowledged enrollment of {name} is gone"
        );
    }
    let round: u64 = clusters["steady-1"]["labels"]["round"]
        .as_str()
        .map_or(0, |r| r.parse().unwrap());
    assert!(
        round >= ledger.round,
        "after kill {kill}: label round={round} is older than the acknowledged {}",
        ledger.round
    );
    let history = hub.cli_json(&["app", "history", "demo"]);
    // The history lists newest first; the ledger oldest first.
    let events: Vec<(String, String)> = history
        .as_array()
        .expect("history")
        .iter()
        .rev()
        .map(|r| {
            (
                r["event"].as_str().unwrap().to_owned(),
                r["commit"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    // Acknowledged deploys appear in the history in the order they were made.
    let mut from = 0;
    for deploy in &ledger.deploys {
        let found = events[from..].iter().position(|e| {
            e == deploy || deploy.0 == "sync" && e.0 == "new-commit" && e.1 == deploy.1
        });
        match found {
            Some(at) => from += at + 1,
            None => {
                // What each hub process said it deployed, to tell a lost
                // write from a write that was never made.
                let mut logs: Vec<_> = std::fs::read_dir(hub.dir.join("logs"))
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.to_string_lossy().contains("hub"))
                    .collect();
                logs.sort();
                for log in logs {
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    for line in text.lines().filter(|l| l.contains("app deployed")) {
                        eprintln!("{}: {line}", log.display());
                    }
                }
                panic!(
                    "after kill {kill}: acknowledged {deploy:?} missing from the history {events:?}"
                )
            }
        }
    }
}

#[test]
fn acknowledged_writes_survive_sigkill_of_the_hub() {
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();

    let mut hub = TestHub::start(dir.path(), &[]);
    let mut agents = Vec::new();
    for name in ["steady-1", "steady-2"] {
        let mut agent = TestAgent::new(dir.path(), name);
        assert!(
            agent
                .join(&hub.add_cluster(name, &["role=steady"]))
                .success()
        );
        agent.start();
        agents.push(agent);
    }
    let source = add_demo_app(&hub, dir.path(), "role=steady");

    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (dir, data_dir) = (dir.path().to_owned(), hub.data_dir());
        let (ledger, stop) = (ledger.clone(), stop.clone());
        std::thread::spawn(move || workload(&dir, &data_dir, seed, &ledger, &stop))
    };
    let started = Instant::now();
    let mut commits = 0;
    for kill in 1..=KILLS {
        // New commits reach the hub through its 1 s poll, so they race the kill too.
        if rng.random_bool(0.5) {
            source.write("demo/extra.yaml", format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndata:\n  kill: \"{kill}\"\n"
            ));
            source.commit(&format!("before kill {kill}"));
            source.publish(&dir.path().join("served"), "demo");
            commits += 1;
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(100..900)));
        hub.kill9_and_restart();
        let snapshot = ledger.lock().unwrap().clone();
        check(&hub, &snapshot, kill);
    }
    stop.store(true, Ordering::SeqCst);
    let ops = writer.join().expect("workload thread");
    let ledger = ledger.lock().unwrap().clone();
    hub.kill9_and_restart();
    check(&hub, &ledger, KILLS + 1);

    // After the storm: the running agents reconnect, get the deployed
    // revision and report it (status reports are re-sent on every connection).
    let deployed = hub.cli_json(&["app", "show", "demo"])["deployed"]
        .as_str()
        .unwrap()
        .to_owned();
    for name in ["steady-1", "steady-2"] {
        assert!(
            wait_until(SOON, || {
                let status = hub.cli_json(&["status", "demo"]);
                status.as_array().is_some_and(|rows| {
                    rows.iter()
                        .any(|r| r["cluster"] == name && r["applied_commit"] == deployed.as_str())
                })
            }),
            "{name} never reported {deployed} after the last restart: {}",
            hub.cli_json(&["status", "demo"])
        );
    }
    // An agent enrolled during the storm gets in with its certificate.
    if let Some(name) = ledger.enrolled.last() {
        let mut agent = TestAgent::new(dir.path(), name);
        agent.start();
        assert!(
            hub.wait_connected(name, true),
            "{name}'s acknowledged enrollment does not let it in:\n{}",
            agent.process().stderr_text()
        );
    }
    eprintln!(
        "{KILLS} SIGKILLs of the hub in {:?}: {ops} operations, {} clusters added, {} enrolled, round label {}, {} syncs/rollbacks acknowledged, {commits} commits pushed, {} commands failed while the hub was down or dying; all acknowledged writes present after every restart",
        started.elapsed(),
        ledger.added.len(),
        ledger.enrolled.len(),
        ledger.round,
        ledger.deploys.len(),
        ledger.failed
    );
    assert!(
        ledger.added.len() >= KILLS && !ledger.deploys.is_empty() && !ledger.enrolled.is_empty(),
        "the workload did too little to test anything"
    );
}

/// What a killed agent left in its cache: the assignment whole or absent,
/// every bundle whole; temporary files are allowed (the next start sweeps
/// them) and counted.
fn inspect_cache(state_dir: &Path) -> (Option<u64>, usize) {
    let cache = state_dir.join("cache");
    let mut temporary = 0;
    let generation = match std::fs::read(cache.join("assignment.json")) {
        Ok(bytes) => {
            let assignment: Value = serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("assignment.json is torn ({e})"));
            Some(assignment["generation"].as_u64().expect("generation"))
        }
        Err(_) => None,
    };
    for dir in [cache.clone(), cache.join("bundles")] {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".tmp") {
                temporary += 1;
            } else if let Some(hex) = name.strip_suffix(".zst") {
                let bytes = std::fs::read(entry.path()).unwrap();
                Bundle::decode(&bytes, &format!("sha256:{hex}"), 1 << 30)
                    .unwrap_or_else(|e| panic!("bundle {name} is torn: {e}"));
            }
        }
    }
    (generation, temporary)
}

#[test]
fn the_agent_cache_is_whole_after_sigkill_mid_write() {
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), &[]);
    let mut agent = TestAgent::new(dir.path(), "edge-1");
    assert!(
        agent
            .join(&hub.add_cluster("edge-1", &["role=edge"]))
            .success()
    );
    agent.start();
    let source = add_demo_app(&hub, dir.path(), "role=edge");
    // Big enough that writing a bundle takes a while: 64 ConfigMaps.
    let write_round = |round: usize| {
        let mut yaml = String::new();
        for i in 0..64 {
            yaml.push_str(&format!(
                "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bulk-{i}\ndata:\n  round: \"{round}\"\n  filler: \"{}\"\n",
                format!("{round}-{i}-").repeat(64)
            ));
        }
        source.write("demo/bulk.yaml", yaml);
        source.commit(&format!("round {round}"));
        source.publish(&dir.path().join("served"), "demo");
    };
    let started = Instant::now();
    let mut temporary_seen = 0;
    let mut cached_seen = 0;
    for kill in 1..=KILLS {
        write_round(kill);
        // The hub polls every second, then notifies; the agent fetches the
        // bundle and writes the cache. Every other kill lands somewhere in
        // that window; the others the moment the agent logs the bundle
        // fetched, while it writes the assignment after it.
        if kill % 2 == 0 {
            std::thread::sleep(Duration::from_millis(rng.random_range(200..1600)));
        } else {
            let fetched = |p: &mut switchyard_tests::process::Process| {
                p.stderr_text().matches("bundle fetched").count()
            };
            let before = fetched(agent.process());
            let deadline = Instant::now() + SOON;
            while fetched(agent.process()) == before && Instant::now() < deadline {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        agent.process().kill9();
        let (generation, temporary) = inspect_cache(&agent.state_dir);
        temporary_seen += temporary;
        cached_seen += usize::from(generation.is_some());
        agent.start();
        assert!(
            agent.process().wait_for_log("agent starting", SOON),
            "the agent did not start after kill {kill}:\n{}",
            agent.process().stderr_text()
        );
        let log = agent.process().stderr_text();
        assert!(
            !log.contains("ignoring the cached assignment"),
            "kill {kill} left an unreadable cache:\n{log}"
        );
        if generation.is_some() {
            assert!(
                log.contains("loaded the cached assignment"),
                "kill {kill}: the cache was not loaded:\n{log}"
            );
        }
    }
    // The agent converges on the last commit and its cache holds it.
    let deployed = source.head();
    assert!(
        wait_until(SOON, || hub.cli_json(&["app", "show", "demo"])["deployed"]
            == deployed.as_str()),
        "the hub never deployed the last commit"
    );
    assert!(
        wait_until(SOON, || {
            hub.cli_json(&["status", "demo"])
                .as_array()
                .is_some_and(|rows| {
                    rows.iter()
                        .any(|r| r["applied_commit"] == deployed.as_str())
                })
        }),
        "edge-1 never reported the last commit"
    );
    let (generation, _) = inspect_cache(&agent.state_dir);
    assert_eq!(
        generation,
        hub.cluster("edge-1")["generation"].as_u64(),
        "the cache holds the current assignment"
    );
    eprintln!(
        "{KILLS} SIGKILLs of the agent in {:?}: cache whole every time ({cached_seen} with an assignment, {temporary_seen} temporary files of interrupted writes swept)",
        started.elapsed()
    );
}
