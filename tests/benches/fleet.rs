//! Fleet scale: N simulated agents (`switchyard-loadgen`) against one real
//! `switchyard serve` on loopback, both release builds. Measures what
//! BENCHMARKS.md ("Fleet scale") lists: registration and enrollment rates,
//! hub memory per connected agent, hub CPU per status report, time for a
//! new commit to reach every agent, hub CPU per bundle served, bytes on the
//! wire per update, the reconnect storm after `kill -9` and restart, and
//! rustls's handshake rate as the physical reference.
//!
//! `cargo build --release --workspace --bins`, then
//! `SWITCHYARD_BENCH_AGENTS=10000 cargo bench -p switchyard-tests --bench fleet`.

use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use switchyard_tests::bench::{
    cpu_ticks, delta, env_or, load, require_binaries, rss_kib, spawn_loadgen, ticks_to_secs,
    unix_ms,
};
use switchyard_tests::fleet::TestHub;
use switchyard_tests::git_server::GitRepoBuilder;
use switchyard_tests::process::{binary, wait_until};

/// The app: this many ConfigMaps of a few hundred bytes each.
const OBJECTS: usize = 100;

fn main() {
    require_binaries(&["switchyard", "switchyard-loadgen"]);
    let agents: usize = env_or("SWITCHYARD_BENCH_AGENTS", 1000);
    let sockets: usize = env_or("SWITCHYARD_BENCH_SOCKETS", agents.div_ceil(500).max(1));
    let status_window = Duration::from_secs(env_or("SWITCHYARD_BENCH_STATUS_SECS", 30));
    // SWITCHYARD_BENCH_DIR keeps the hub's and the loadgen's logs for a look afterwards.
    let temp = tempfile::tempdir().expect("temp dir");
    let kept = std::env::var_os("SWITCHYARD_BENCH_DIR").map(PathBuf::from);
    let dir = kept.as_deref().unwrap_or(temp.path());
    println!(
        "fleet bench: {agents} agents on {sockets} UDP sockets; {}",
        load()
    );

    // Every simulated agent comes from 127.0.0.1: lift the per-IP limits.
    let hub = TestHub::start_with_env(
        dir,
        &switchyard_tests::fleet::ONE_IP_FLEET,
        &[("SWITCHYARD_LOG", "info".into())],
    );
    let source = GitRepoBuilder::new();
    write_app(&source, 1);
    let head = source.commit("first");
    let served = dir.join("served");
    let bare = source.publish(&served, "config");
    let url = format!("file://{}", bare.display());
    let out = hub.cli(&["repo", "add", "config", &url, "--interval", "1s"]);
    assert!(out.success(), "repo add: {}", out.stderr);
    assert!(
        wait_until(Duration::from_secs(30), || hub
            .cli_json(&["repo", "show", "config"])["head"]
            == head.as_str()),
        "repo never fetched"
    );
    let out = hub.cli(&[
        "app",
        "create",
        "fleet",
        "--repo",
        "config",
        "--path",
        "app",
        "--selector",
        "fleet=load",
    ]);
    assert!(out.success(), "app create: {}", out.stderr);
    let hub_pid = hub.process.pid();
    let rss_before = rss_kib(hub_pid);

    // Registration, enrollment, first connection and first bundle.
    let started = Instant::now();
    let hub_cpu0 = cpu_ticks(hub_pid);
    let drops0 = udp_rcvbuf_errors();
    let hub_drops0 = socket_drops(hub.quic_port());
    let (loadgen, events) = spawn_loadgen(&hub, agents, sockets, dir);
    let registered = events.wait("registered", Duration::from_secs(1800), |_| true);
    let enrolled = events.wait("enrolled", Duration::from_secs(1800), |_| true);
    let first = events.wait("digest_everywhere", Duration::from_secs(600), |_| true);
    let synced_after = started.elapsed();
    println!(
        "CPU from loadgen start to every agent synced: hub {:.2}s, loadgen {:.2}s, wall {:.2}s; UDP datagrams dropped for full receive buffers: {} ({} of them on the hub's socket)",
        ticks_to_secs(cpu_ticks(hub_pid) - hub_cpu0),
        ticks_to_secs(cpu_ticks(loadgen.pid())),
        synced_after.as_secs_f64(),
        udp_rcvbuf_errors() - drops0,
        socket_drops(hub.quic_port()) - hub_drops0
    );
    println!(
        "registered {agents} clusters through the admin API: {:.0}/s; enrolled over QUIC: {:.0}/s; all connected and holding the first bundle {:.1}s after loadgen start",
        registered["per_sec"].as_f64().unwrap_or(0.0),
        enrolled["per_sec"].as_f64().unwrap_or(0.0),
        synced_after.as_secs_f64()
    );

    // Memory with every agent connected, after first reports settle.
    std::thread::sleep(Duration::from_secs(5));
    let rss_connected = rss_kib(hub_pid);
    println!(
        "hub VmRSS: {} KiB before agents, {} KiB with {agents} connected: {:.1} KiB per agent",
        rss_before,
        rss_connected,
        (rss_connected.saturating_sub(rss_before)) as f64 / agents as f64
    );

    // Status reports: nothing else happens in this window.
    let cpu0 = cpu_ticks(hub_pid);
    let reports0 = events.last_progress()["reports"].as_u64().unwrap_or(0);
    std::thread::sleep(status_window);
    let cpu1 = cpu_ticks(hub_pid);
    let reports1 = events.last_progress()["reports"].as_u64().unwrap_or(0);
    let reports = reports1.saturating_sub(reports0).max(1);
    let cpu_s = ticks_to_secs(cpu1 - cpu0);
    println!(
        "steady state {}s: {} status reports, hub CPU {:.2}s = {:.0} µs per report (keep-alives included); {:.1}% of one core",
        status_window.as_secs(),
        reports,
        cpu_s,
        cpu_s * 1e6 / reports as f64,
        cpu_s * 100.0 / status_window.as_secs_f64()
    );

    // A commit that changes the app every cluster runs.
    let progress0 = events.last_progress();
    let cpu0 = cpu_ticks(hub_pid);
    write_app(&source, 2);
    source.commit("second");
    let t0 = unix_ms();
    source.publish(&served, "config");
    let old = first["digest"].as_str().unwrap_or_default().to_owned();
    let update = events.wait("digest_everywhere", Duration::from_secs(600), |e| {
        e["digest"].as_str() != Some(old.as_str())
    });
    let cpu1 = cpu_ticks(hub_pid);
    std::thread::sleep(Duration::from_secs(2));
    let progress1 = events.last_progress();
    let fetched = &update["fetched_at_ms"];
    let since = |q: &str| fetched[q].as_u64().unwrap_or(0).saturating_sub(t0) as f64 / 1000.0;
    println!(
        "commit to every agent (from the push; the repo is polled every 1s): first {:.2}s, p50 {:.2}s, p99 {:.2}s, max {:.2}s",
        since("min"),
        since("p50"),
        since("p99"),
        since("max")
    );
    let updates = delta(&progress0, &progress1, "updates").max(1);
    println!(
        "hub CPU from push to the last fetch: {:.2}s = {:.0} µs per agent updated (fetch, render, plan, notify, assignment, bundle, report); wire bytes per update per agent: {:.0}",
        ticks_to_secs(cpu1 - cpu0),
        ticks_to_secs(cpu1 - cpu0) * 1e6 / agents as f64,
        delta(&progress0, &progress1, "update_bytes") as f64 / updates as f64
    );

    // Reconnect storm.
    let connections0 = events.last_progress()["connections"].as_u64().unwrap_or(0);
    let mut hub = hub;
    let loadgen_cpu0 = cpu_ticks(loadgen.pid());
    let drops0 = udp_rcvbuf_errors();
    let killed = unix_ms();
    hub.kill9_and_restart();
    let restarted = unix_ms();
    let new_pid = hub.process.pid();
    let storm = events.wait("all_connected", Duration::from_secs(600), |e| {
        e["at_ms"].as_u64().unwrap_or(0) > killed
            && e["connections"].as_u64().unwrap_or(0) >= connections0 + agents as u64
    });
    println!(
        "CPU during the storm: restarted hub {:.2}s, loadgen {:.2}s, wall {:.2}s; UDP datagrams dropped for full receive buffers: {} ({} of them on the hub's socket)",
        ticks_to_secs(cpu_ticks(new_pid)),
        ticks_to_secs(cpu_ticks(loadgen.pid()) - loadgen_cpu0),
        (unix_ms() - restarted) as f64 / 1000.0,
        udp_rcvbuf_errors() - drops0,
        socket_drops(hub.quic_port())
    );
    let back = &storm["connected_at_ms"];
    let after = |q: &str| back[q].as_u64().unwrap_or(0).saturating_sub(restarted) as f64 / 1000.0;
    println!(
        "reconnect after kill -9 and restart (hub ready {:.2}s after the kill): every agent back {:.2}s after ready (p50 {:.2}s, p99 {:.2}s); {:.0} reconnections/s",
        (restarted - killed) as f64 / 1000.0,
        after("max"),
        after("p50"),
        after("p99"),
        agents as f64 / after("max").max(0.001)
    );

    let tls = std::process::Command::new(binary("switchyard-loadgen"))
        .args(["tls-bench", "--duration", "3s"])
        .output()
        .expect("tls-bench");
    let tls: Value = serde_json::from_slice(&tls.stdout).expect("tls-bench JSON");
    let per_core = tls["server_side_per_core_sec"].as_f64().unwrap_or(0.0);
    println!(
        "rustls reference: {:.0} full mutual-TLS 1.3 handshakes/s per core server side ({:.0} µs each; {:.0}/s both sides in one thread); enrollment at {:.1}% of it, reconnection at {:.1}%",
        per_core,
        tls["server_us_per_handshake"].as_f64().unwrap_or(0.0),
        tls["both_sides_per_sec"].as_f64().unwrap_or(0.0),
        enrolled["per_sec"].as_f64().unwrap_or(0.0) * 100.0 / per_core,
        agents as f64 / after("max").max(0.001) * 100.0 / per_core
    );
    println!(
        "errors seen by simulated agents: {}",
        events.last_progress()["errors"]
    );
    println!("{}", load());
    drop(loadgen);
}

/// The app's manifests at `version`: every object changes with it.
fn write_app(source: &GitRepoBuilder, version: usize) {
    let mut yaml = String::new();
    for i in 0..OBJECTS {
        yaml.push_str(&format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings-{i:03}\n  namespace: fleet\n  labels:\n    app.kubernetes.io/part-of: fleet\ndata:\n  version: \"{version}\"\n  endpoint: https://service-{i}.example.internal:8443/api\n  retries: \"5\"\n  description: setting {i} of the fleet-wide configuration, revision {version}\n"
        ));
    }
    source.write("app/settings.yaml", yaml);
}

/// UDP datagrams the kernel dropped for a full receive buffer, machine-wide
/// (`UdpRcvbufErrors` in /proc/net/snmp; other processes' UDP counts too).
fn udp_rcvbuf_errors() -> u64 {
    let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(name, _)| *name == "RcvbufErrors")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0)
}

/// Datagrams the kernel dropped on the UDP socket bound to `port` (the
/// hub's), since that socket was opened: the `drops` column of /proc/net/udp.
fn socket_drops(port: u16) -> u64 {
    ["/proc/net/udp", "/proc/net/udp6"]
        .iter()
        .flat_map(|path| {
            std::fs::read_to_string(path)
                .unwrap_or_default()
                .lines()
                .skip(1)
                .filter_map(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    let local_port = fields.get(1)?.rsplit(':').next()?;
                    (u16::from_str_radix(local_port, 16).ok()? == port)
                        .then(|| fields.last()?.parse::<u64>().ok())
                        .flatten()
                })
                .collect::<Vec<_>>()
        })
        .sum()
}
