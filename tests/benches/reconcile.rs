//! The agent's reconciler against the fake Kubernetes API server with its
//! per-request latency on, side by side with `kubectl apply --server-side`
//! of the same manifests: first sync of 1,000 objects (time, requests), a
//! no-op resync (requests per object), a drift repair (time from the
//! out-of-band change to the repair), then nine more apps (10,000 objects
//! across 10 apps) and the agent's resident memory with them.
//!
//! Uses the real release binaries: build them first with
//! `cargo build --release --workspace --bins`, then
//! `cargo bench -p switchyard-tests --bench reconcile`.

use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use switchyard_tests::fake_kube::{DEFAULT_LATENCY, FakeKube, RecordedRequest};
use switchyard_tests::fleet::{SOON, TestAgent, TestHub};
use switchyard_tests::git_server::GitRepoBuilder;
use switchyard_tests::process::wait_until;

const CONFIGMAPS: usize = 400;
const DEPLOYMENTS: usize = 300;
const SERVICES: usize = 300;
const OBJECTS: usize = CONFIGMAPS + DEPLOYMENTS + SERVICES;
const PER_FILE: usize = 20;
/// Apps of [`OBJECTS`] objects each: `app-0` alone first, then the rest.
const APPS: usize = 10;
/// The fake's per-request latency, for the agent and for kubectl.
const LATENCY: Duration = DEFAULT_LATENCY;
/// The namespace of kubectl's objects and of the first app.
const NAMESPACE: &str = "bench-0";
const SYNC_TIMEOUT: Duration = Duration::from_secs(300);
const NOOP_WINDOW: Duration = Duration::from_secs(5);
const IDLE: Duration = Duration::from_secs(30);
const KUBECTL_RUNS: usize = 3;
const KUBECTL_TIMEOUT: Duration = Duration::from_secs(600);
/// Above this for one first + repeated apply, kubectl runs once.
const KUBECTL_SLOW: Duration = Duration::from_secs(60);

/// One manifest; `namespace` is written into it when given.
fn manifest(i: usize, namespace: Option<&str>) -> String {
    let ns = namespace
        .map(|n| format!("  namespace: {n}\n"))
        .unwrap_or_default();
    if i < CONFIGMAPS {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config-{i}\n{ns}  labels:\n    app: web-{i}\ndata:\n  web.conf: |\n    listen 8080\n    log_level info\n    upstream api-{i}.svc\n  mode: production\n"
        )
    } else if i < CONFIGMAPS + DEPLOYMENTS {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web-{i}\n{ns}  labels:\n    app: web-{i}\nspec:\n  replicas: 2\n  selector:\n    matchLabels:\n      app: web-{i}\n  template:\n    metadata:\n      labels:\n        app: web-{i}\n    spec:\n      containers:\n      - name: web\n        image: registry.example/web:1.{i}\n        args: [\"--port\", \"8080\"]\n        ports:\n        - containerPort: 8080\n          name: http\n        env:\n        - name: MODE\n          value: production\n        resources:\n          requests: {{cpu: 100m, memory: 128Mi}}\n          limits: {{cpu: \"1\", memory: 512Mi}}\n        readinessProbe:\n          httpGet: {{path: /healthz, port: http}}\n          periodSeconds: 10\n"
        )
    } else {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: web-{i}\n{ns}  labels:\n    app: web-{i}\nspec:\n  selector:\n    app: web-{i}\n  ports:\n  - port: 80\n    targetPort: http\n"
        )
    }
}

/// The 1,000 manifests as 50 files of 20 documents: (file name, contents).
fn manifest_files(namespace: Option<&str>) -> Vec<(String, String)> {
    (0..OBJECTS / PER_FILE)
        .map(|f| {
            let text: String = (f * PER_FILE..(f + 1) * PER_FILE)
                .map(|i| format!("---\n{}", manifest(i, namespace)))
                .collect();
            (format!("part-{f:03}.yaml"), text)
        })
        .collect()
}

fn counts_in(fake: &FakeKube, namespace: &str) -> (usize, usize, usize) {
    (
        fake.objects("configmaps", Some(namespace)).len(),
        fake.objects("deployments", Some(namespace)).len(),
        fake.objects("services", Some(namespace)).len(),
    )
}

fn counts(fake: &FakeKube) -> (usize, usize, usize) {
    counts_in(fake, NAMESPACE)
}

fn all_present_in(fake: &FakeKube, namespace: &str) -> bool {
    counts_in(fake, namespace) == (CONFIGMAPS, DEPLOYMENTS, SERVICES)
}

fn all_present(fake: &FakeKube) -> bool {
    all_present_in(fake, NAMESPACE)
}

/// (VmRSS, VmHWM) in KiB.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// What a request is: `GET object`, `GET list`, `GET watch`, `GET discovery`
/// or the method of a write.
fn shape(r: &RecordedRequest) -> String {
    if r.method != "GET" {
        return r.method.clone();
    }
    if r.is_watch() {
        return "GET watch".to_owned();
    }
    let parts: Vec<&str> = r.path.trim_matches('/').split('/').collect();
    // What follows /api/v1 or /apis/GROUP/VERSION.
    let rest = match parts.first() {
        Some(&"api") if parts.len() > 2 => &parts[2..],
        Some(&"apis") if parts.len() > 3 => &parts[3..],
        _ => return "GET discovery".to_owned(),
    };
    match rest {
        [_resource] | ["namespaces", _, _resource] => "GET list",
        _ => "GET object",
    }
    .to_owned()
}

/// Count of requests per shape.
fn histogram(requests: &[RecordedRequest]) -> Vec<(String, usize)> {
    let mut map = std::collections::BTreeMap::<String, usize>::new();
    for r in requests {
        *map.entry(shape(r)).or_default() += 1;
    }
    map.into_iter().collect()
}

/// The agent's "pass done" log lines in `log` (debug level): (writes, elapsed_ms).
fn passes(log: &str) -> Vec<(u64, u64)> {
    let field = |line: &str, key: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .and_then(|v| v.trim_matches(|c: char| !c.is_ascii_digit()).parse().ok())
    };
    log.lines()
        .filter(|l| l.contains("pass done"))
        .filter_map(|l| Some((field(l, "writes=")?, field(l, "elapsed_ms=")?)))
        .collect()
}

/// The release binaries `binary()` will look for, or a clear exit.
fn require_binaries() {
    let exe = std::env::current_exe().expect("bench executable path");
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .expect("bench executable lives in target/<profile>/deps");
    let missing: Vec<PathBuf> = ["switchyard", "switchyard-agent"]
        .iter()
        .map(|b| profile.join(b))
        .filter(|p| !p.exists())
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "missing {missing:?}: build the release binaries first with \
             `cargo build --release --workspace --bins`"
        );
        std::process::exit(2);
    }
}

fn kubectl(kubeconfig: &Path, cache: &Path, args: &[&str]) -> (Duration, String) {
    // A file, not a pipe: a chatty kubectl cannot block on a full pipe.
    let stderr_file = cache.with_extension("stderr");
    let started = Instant::now();
    let mut child = Command::new("kubectl")
        .args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(cache)
        .env_remove("KUBECONFIG")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&stderr_file).expect("kubectl stderr file"))
        .spawn()
        .expect("running kubectl");
    let deadline = started + KUBECTL_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().expect("waiting for kubectl") {
            let elapsed = started.elapsed();
            let stderr = std::fs::read_to_string(&stderr_file).unwrap_or_default();
            assert!(status.success(), "kubectl {args:?} failed: {stderr}");
            return (elapsed, stderr);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("kubectl {args:?} did not finish in {KUBECTL_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

struct KubectlRun {
    first: Duration,
    first_writes: usize,
    first_requests: usize,
    /// The paths of the first apply's reads (discovery).
    first_reads: Vec<String>,
    again: Duration,
    again_writes: usize,
    again_histogram: Vec<(String, usize)>,
    throttled: bool,
}

fn kubectl_run(runtime: &tokio::runtime::Runtime, dir: &Path, manifests: &Path) -> KubectlRun {
    let fake = runtime.block_on(FakeKube::start());
    fake.set_latency(LATENCY);
    let kubeconfig = dir.join("kubeconfig-kubectl");
    fake.write_kubeconfig(&kubeconfig).unwrap();
    let cache = dir.join("kubectl-cache");
    fake.create_object(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}),
    )
    .expect("namespace for kubectl");
    fake.clear_requests();
    let apply = [
        "apply",
        "--server-side",
        "--force-conflicts",
        "--validate=false",
        "-f",
        manifests.to_str().unwrap(),
    ];
    let (first, err1) = kubectl(&kubeconfig, &cache, &apply);
    assert!(all_present(&fake), "kubectl applied {:?}", counts(&fake));
    let first_writes = fake.writes().len();
    let first_requests = fake.requests().len();
    let first_reads = fake
        .requests()
        .into_iter()
        .filter(|r| !r.is_write())
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    fake.clear_requests();
    let (again, err2) = kubectl(&kubeconfig, &cache, &apply);
    let requests = fake.requests();
    let again_writes = fake.writes().len();
    let throttled = err1.contains("throttling") || err2.contains("throttling");
    runtime.block_on(fake.shutdown());
    let _ = std::fs::remove_dir_all(&cache);
    KubectlRun {
        first,
        first_writes,
        first_requests,
        first_reads,
        again,
        again_writes,
        again_histogram: histogram(&requests),
        throttled,
    }
}

fn main() {
    require_binaries();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");

    // kubectl first: needs only the fake and the manifests.
    let kubectl_version = Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_owned()
        });
    let manifests = dir.join("kubectl-manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    for (name, text) in manifest_files(Some(NAMESPACE)) {
        std::fs::write(manifests.join(name), text).unwrap();
    }
    let mut kubectl_runs = Vec::new();
    match &kubectl_version {
        Some(v) => {
            eprintln!("kubectl: {v}");
            for r in 0..KUBECTL_RUNS {
                let run = kubectl_run(&runtime, dir, &manifests);
                eprintln!(
                    "kubectl run {}: first apply {:.0} ms ({} writes), again {:.0} ms ({} writes)",
                    r + 1,
                    ms(run.first),
                    run.first_writes,
                    ms(run.again),
                    run.again_writes
                );
                let slow = run.first + run.again > KUBECTL_SLOW;
                kubectl_runs.push(run);
                if slow {
                    eprintln!("kubectl is slow here: one run only");
                    break;
                }
            }
        }
        None => eprintln!("kubectl not found: skipping the kubectl comparison"),
    }

    // The agent: hub, config repo, one enrolled agent applying to a fake.
    let fake = runtime.block_on(FakeKube::start());
    fake.set_latency(LATENCY);
    let kubeconfig = dir.join("kubeconfig");
    fake.write_kubeconfig(&kubeconfig).unwrap();
    let source = GitRepoBuilder::new();
    for app in 0..APPS {
        for (name, text) in manifest_files(None) {
            source.write(&format!("app-{app}/{name}"), &text);
        }
    }
    let head = source.commit("10 apps of 1,000 objects");
    let served = source.publish(&dir.join("served"), "fleet");
    let hub = TestHub::start(dir, &[]);
    let url = format!("file://{}", served.display());
    let out = hub.cli(&["repo", "add", "fleet", &url, "--interval", "1s"]);
    assert!(out.success(), "repo add: {}", out.stderr);
    assert!(
        wait_until(SOON, || hub.cli_json(&["repo", "show", "fleet"])["head"]
            == head.as_str()),
        "repo never fetched"
    );
    let mut agent = TestAgent::new(dir, "edge");
    let joined = agent.join(&hub.add_cluster("edge", &["env=bench"]));
    assert!(joined.success(), "join: {}", joined.stderr);
    agent.start_applying(&kubeconfig);
    assert!(
        hub.wait_connected("edge", true),
        "agent never connected: {}",
        agent.process().stderr_text()
    );
    let pid = agent.process().pid();
    std::thread::sleep(Duration::from_secs(2));
    let (rss_idle, _) = memory(pid);
    let create = |app: usize| {
        let name = format!("app-{app}");
        let namespace = format!("bench-{app}");
        let out = hub.cli(&[
            "app",
            "create",
            &name,
            "--repo",
            "fleet",
            "--path",
            &name,
            "--namespace",
            &namespace,
            "--selector",
            "env=bench",
            "--self-heal",
        ]);
        assert!(out.success(), "app create {name}: {}", out.stderr);
    };

    fake.clear_requests();
    let log_before = agent.process().stderr_text().len();
    let started = Instant::now();
    create(0);
    let mut rss_peak_polled = 0;
    let synced = wait_until(SYNC_TIMEOUT, || {
        rss_peak_polled = rss_peak_polled.max(memory(pid).0);
        all_present(&fake)
    });
    let first_sync = started.elapsed();
    assert!(
        synced,
        "first sync incomplete after {SYNC_TIMEOUT:?}: {:?}; agent log:\n{}",
        counts(&fake),
        agent.process().stderr_text()
    );
    let writes_at_sync = fake.writes().len();
    let high_water = fake.in_flight_high_water();
    let (rss_synced, _) = memory(pid);
    // Let the first pass finish and the next resyncs run.
    std::thread::sleep(Duration::from_secs(3));
    let writes_settled = fake.writes().len();
    let first_requests = fake.requests();
    let log = agent.process().stderr_text();
    let first_passes = passes(&log[log_before..]);

    // No-op resyncs.
    fake.clear_requests();
    let log_before = agent.process().stderr_text().len();
    std::thread::sleep(NOOP_WINDOW);
    let noop_requests = fake.requests();
    let log = agent.process().stderr_text();
    let noop_passes = passes(&log[log_before..]);
    let noop_writes = noop_requests.iter().filter(|r| r.is_write()).count();
    let noop_non_watch = noop_requests.iter().filter(|r| !r.is_watch()).count();

    // Drift: one ConfigMap changed out of band, repaired from the watch.
    fake.clear_requests();
    fake.patch_out_of_band(
        "configmaps",
        Some(NAMESPACE),
        "config-7",
        json!({"data": {"mode": "drifted"}}),
    )
    .expect("out-of-band change");
    let drift_started = Instant::now();
    let repaired = wait_until(SOON, || {
        fake.object("configmaps", Some(NAMESPACE), "config-7")
            .is_some_and(|o| o["data"]["mode"] == "production")
    });
    let drift_repair = drift_started.elapsed();
    assert!(repaired, "drift not repaired in {SOON:?}");
    std::thread::sleep(Duration::from_millis(500));
    let drift_requests = fake.requests();

    // Nine more apps: 10,000 objects across 10 apps.
    fake.clear_requests();
    let started = Instant::now();
    for app in 1..APPS {
        create(app);
    }
    let mut rss_peak_10k = 0;
    let all_synced = wait_until(SYNC_TIMEOUT, || {
        rss_peak_10k = rss_peak_10k.max(memory(pid).0);
        (1..APPS).all(|a| all_present_in(&fake, &format!("bench-{a}")))
    });
    let sync_9k = started.elapsed();
    assert!(
        all_synced,
        "nine more apps incomplete after {SYNC_TIMEOUT:?}; agent log tail:\n{}",
        agent
            .process()
            .stderr_text()
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let writes_9k = fake.writes().len();
    let (rss_10k, _) = memory(pid);
    std::thread::sleep(Duration::from_secs(3));
    fake.clear_requests();
    let log_before = agent.process().stderr_text().len();
    std::thread::sleep(NOOP_WINDOW);
    let noop_10k = fake.requests().iter().filter(|r| !r.is_watch()).count();
    let log = agent.process().stderr_text();
    let noop_10k_passes = passes(&log[log_before..]);

    // The rest of the idle time, sampling memory every 5 s.
    let mut rss_series = vec![memory(pid).0];
    let idle_end = Instant::now() + IDLE.saturating_sub(NOOP_WINDOW);
    while Instant::now() < idle_end {
        std::thread::sleep(Duration::from_secs(5).min(idle_end - Instant::now()));
        rss_series.push(memory(pid).0);
    }
    let (rss_after_idle, hwm) = memory(pid);
    let alive = agent.process().is_running();

    // Report.
    println!("fake API server latency: {LATENCY:?} per request");
    println!(
        "agent: app-0 of {OBJECTS} objects ({CONFIGMAPS} ConfigMaps, {DEPLOYMENTS} Deployments, {SERVICES} Services) in namespace {NAMESPACE}"
    );
    println!(
        "  first sync (app create -> all {OBJECTS} in the fake): {:.0} ms; writes when complete {writes_at_sync}, 3 s later {writes_settled}; most requests in flight at once {high_water}",
        ms(first_sync)
    );
    println!(
        "  requests in the first sync + 3 s: {:?}",
        histogram(&first_requests)
    );
    println!("  passes in the first sync + 3 s (writes, elapsed_ms): {first_passes:?}");
    println!(
        "  no-op window {NOOP_WINDOW:?}: {} passes (writes, elapsed_ms) {:?}; {noop_writes} writes; {noop_non_watch} requests other than watches; all requests {:?}",
        noop_passes.len(),
        noop_passes,
        histogram(&noop_requests)
    );
    println!(
        "  requests per object per no-op pass: {:.4}",
        noop_non_watch as f64 / (noop_passes.len().max(1) * OBJECTS) as f64
    );
    println!(
        "  drift repair (out-of-band change -> repaired, polled every 50 ms): {:.0} ms; requests {:?}",
        ms(drift_repair),
        histogram(&drift_requests)
    );
    println!(
        "agent: apps app-1..app-{} ({} more objects; {} in all across {APPS} apps)",
        APPS - 1,
        OBJECTS * (APPS - 1),
        OBJECTS * APPS
    );
    println!(
        "  their sync (first app create -> all present): {:.0} ms; {writes_9k} writes",
        ms(sync_9k)
    );
    println!(
        "  no-op window {NOOP_WINDOW:?} at {} objects: {} passes (writes, elapsed_ms) {:?}; {noop_10k} requests other than watches",
        OBJECTS * APPS,
        noop_10k_passes.len(),
        noop_10k_passes
    );
    println!(
        "  agent VmRSS: idle before any app {}; 1,000 objects: highest polled during the sync {}, right after {}; 10,000 objects: highest polled {}, right after {}, after {IDLE:?} idle {} (VmHWM {}); still running: {alive}",
        mib(rss_idle),
        mib(rss_peak_polled),
        mib(rss_synced),
        mib(rss_peak_10k),
        mib(rss_10k),
        mib(rss_after_idle),
        mib(hwm)
    );
    println!(
        "  agent VmRSS every 5 s from the end of the 10,000-object no-op window: {:?}",
        rss_series.iter().map(|k| mib(*k)).collect::<Vec<_>>()
    );
    if !kubectl_runs.is_empty() {
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let first = median(kubectl_runs.iter().map(|r| ms(r.first)).collect());
        let again = median(kubectl_runs.iter().map(|r| ms(r.again)).collect());
        let last = kubectl_runs.last().unwrap();
        println!(
            "kubectl apply --server-side ({}), median of {} (each: {:?}):",
            kubectl_version.as_deref().unwrap_or("?"),
            kubectl_runs.len(),
            kubectl_runs
                .iter()
                .map(|r| format!("{:.0}/{:.0} ms", ms(r.first), ms(r.again)))
                .collect::<Vec<_>>()
        );
        println!(
            "  first apply {first:.0} ms ({} writes, {} requests); again {again:.0} ms ({} writes; {:?}); client-side throttling reported: {}",
            last.first_writes,
            last.first_requests,
            last.again_writes,
            last.again_histogram,
            kubectl_runs.iter().any(|r| r.throttled)
        );
        println!(
            "  kubectl's reads in its first apply: {:?}",
            last.first_reads
        );
        println!(
            "  agent first sync / kubectl first apply: {:.2}",
            ms(first_sync) / first
        );
    }

    agent.stop();
    drop(hub);
    runtime.block_on(fake.shutdown());
}
