//! What the benches under tests/benches share: finding the release
//! binaries beside the bench, settings from the environment, the process
//! counters they report (CPU, memory, load), and the JSON event lines of a
//! running `switchyard-loadgen`.

use crate::process::wait_until;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Path of binary `name` in the profile dir the bench runs from
/// (target/release when the bench is target/release/deps/NAME-HASH).
pub fn binary_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("bench path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/release/deps")
        .join(name)
}

/// Exit with a hint when a release binary the bench runs is missing.
pub fn require_binaries(names: &[&str]) {
    for name in names {
        let path = binary_path(name);
        if !path.exists() {
            eprintln!(
                "{} is missing: run `cargo build --release --workspace --bins` first",
                path.display()
            );
            std::process::exit(2);
        }
    }
}

/// Environment variable `name` parsed, or `default`.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A process's resident memory in KiB (0 when it cannot be read).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// utime + stime of a process, in clock ticks.
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at ")".
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after ")".
    field(11) + field(12)
}

pub fn ticks_to_secs(ticks: u64) -> f64 {
    // Linux reports these in USER_HZ, which is 100 on every supported arch.
    ticks as f64 / 100.0
}

/// "load average …" from /proc/loadavg, for the bench's output.
pub fn load() -> String {
    format!(
        "load average {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    )
}

/// Start `switchyard-loadgen run` with `agents` simulated agents labelled
/// `fleet=load` on `sockets` UDP sockets against `hub` for up to two hours
/// (`SWITCHYARD_BENCH_LOADGEN_LOG` sets its log filter, default `warn`),
/// logs under `dir/logs`; with its event stream.
pub fn spawn_loadgen(
    hub: &crate::fleet::TestHub,
    agents: usize,
    sockets: usize,
    dir: &Path,
) -> (crate::process::Process, LoadgenEvents) {
    let loadgen = crate::process::Process::spawn(
        &crate::process::binary("switchyard-loadgen"),
        &[
            "run".into(),
            "--hub-dir".into(),
            hub.data_dir().display().to_string(),
            "--agents".into(),
            agents.to_string(),
            "--label".into(),
            "fleet=load".into(),
            "--sockets".into(),
            sockets.to_string(),
            "--duration".into(),
            "2h".into(),
        ],
        &[(
            "RUST_LOG",
            std::env::var("SWITCHYARD_BENCH_LOADGEN_LOG").unwrap_or_else(|_| "warn".into()),
        )],
        &dir.join("logs"),
        "loadgen",
    );
    let events = LoadgenEvents {
        file: loadgen.stdout.clone(),
    };
    (loadgen, events)
}

/// The JSON event lines a `switchyard-loadgen run` wrote to its stdout file.
pub struct LoadgenEvents {
    pub file: PathBuf,
}

impl LoadgenEvents {
    pub fn all(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.file)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The first event named `name` that satisfies `accept`, waiting up to `timeout`.
    pub fn wait(&self, name: &str, timeout: Duration, accept: impl Fn(&Value) -> bool) -> Value {
        let mut found = None;
        let ok = wait_until(timeout, || {
            found = self
                .all()
                .into_iter()
                .find(|e| e["event"] == name && accept(e));
            found.is_some()
        });
        assert!(
            ok,
            "no {name} event within {timeout:?}; last: {}",
            self.last_progress()
        );
        found.expect("found")
    }

    pub fn last_progress(&self) -> Value {
        self.all()
            .into_iter()
            .rev()
            .find(|e| e["event"] == "progress")
            .unwrap_or(Value::Null)
    }
}

/// `after[field] - before[field]` of two progress events.
pub fn delta(before: &Value, after: &Value, field: &str) -> u64 {
    after[field]
        .as_u64()
        .unwrap_or(0)
        .saturating_sub(before[field].as_u64().unwrap_or(0))
}
