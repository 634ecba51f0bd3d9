//! The web UI on the loadgen's connected fleet: a release `switchyard
//! serve`, 100 apps from one Git repo, N simulated agents
//! (`switchyard-loadgen`) that hold every app's bundle and report on their
//! heartbeat. Measures what issue #20 item 4 asks (BENCHMARKS.md, "Web UI
//! at fleet scale", "With the loadgen's connected fleet"): every page's time
//! and bytes over HTTPS with a signed-in session as a browser sends it, the
//! JSON lists' sizes, and what the pages' event stream (`GET /events`)
//! sends in steady state and while a commit to one app spreads.
//!
//! `cargo build --release --workspace --bins`, then
//! `SWITCHYARD_BENCH_AGENTS=10000 cargo bench -p switchyard-tests --bench web_fleet`.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchyard_tests::bench::{
    cpu_ticks, env_or, load, require_binaries, rss_kib, spawn_loadgen, ticks_to_secs, unix_ms,
};
use switchyard_tests::fleet::TestHub;
use switchyard_tests::git_server::GitRepoBuilder;
use switchyard_tests::process::wait_until;

/// ConfigMaps per app.
const OBJECTS: usize = 4;
/// Times each page is requested in steady state.
const RUNS: usize = 5;
/// The app the commit changes, and the cluster whose page is timed (the
/// last one when the fleet is smaller).
const CHANGED: usize = 42;

fn main() {
    require_binaries(&["switchyard", "switchyard-loadgen"]);
    let agents: usize = env_or("SWITCHYARD_BENCH_AGENTS", 1000);
    let apps: usize = env_or("SWITCHYARD_BENCH_APPS", 100);
    let changed_app = CHANGED.min(apps.max(1) - 1);
    let sockets: usize = env_or("SWITCHYARD_BENCH_SOCKETS", agents.div_ceil(500).max(1));
    // Long enough to hold one heartbeat (30 s) and one rewrite of unchanged
    // reports (LAST_SEEN_RESOLUTION, 60 s) of every agent.
    let steady = Duration::from_secs(env_or("SWITCHYARD_BENCH_STEADY_SECS", 65));
    // SWITCHYARD_BENCH_DIR keeps the hub's and the loadgen's logs for a look afterwards.
    let temp = tempfile::tempdir().expect("temp dir");
    let kept = std::env::var_os("SWITCHYARD_BENCH_DIR").map(PathBuf::from);
    let dir = kept.as_deref().unwrap_or(temp.path());
    println!(
        "web fleet bench: {agents} agents on {sockets} UDP sockets, {apps} apps; {}",
        load()
    );

    let hub = TestHub::start_with_env(
        dir,
        &switchyard_tests::fleet::ONE_IP_FLEET,
        &[("SWITCHYARD_LOG", "info".into())],
    );
    let source = GitRepoBuilder::new();
    for app in 0..apps {
        write_app(&source, app, 1);
    }
    let head = source.commit("first");
    let served = dir.join("served");
    let bare = source.publish(&served, "config");
    let url = format!("file://{}", bare.display());
    let out = hub.cli(&["repo", "add", "config", &url, "--interval", "1s"]);
    assert!(out.success(), "repo add: {}", out.stderr);
    assert!(
        wait_until(Duration::from_secs(60), || hub
            .cli_json(&["repo", "show", "config"])["head"]
            == head.as_str()),
        "repo never fetched"
    );
    let documents = dir.join("apps.yaml");
    std::fs::write(&documents, app_documents(apps)).expect("write apps.yaml");
    let out = hub.cli(&["apply", "-f", &documents.display().to_string()]);
    assert!(out.success(), "apply: {}{}", out.stdout, out.stderr);
    let hub_pid = hub.process.pid();

    let started = Instant::now();
    let (loadgen, events) = spawn_loadgen(&hub, agents, sockets, dir);
    events.wait("enrolled", Duration::from_secs(1800), |_| true);
    // Every app's bundle on every agent, and every agent has reported.
    let mut first = BTreeSet::new();
    let synced = wait_until(Duration::from_secs(1200), || {
        let all = events.all();
        first = everywhere(&all);
        first.len() >= apps
            && all
                .iter()
                .rev()
                .find(|e| e["event"] == "progress")
                .is_some_and(|p| p["synced"].as_u64() == Some(agents as u64))
    });
    assert!(
        synced,
        "not every agent holds every app: {} digests everywhere; last: {}",
        first.len(),
        events.last_progress()
    );
    println!(
        "{agents} agents enrolled, connected, holding {apps} bundles each and reported {:.1}s after loadgen start; hub VmRSS {} KiB",
        started.elapsed().as_secs_f64(),
        rss_kib(hub_pid)
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let web = Web::sign_in(&hub).await;
        let stream = Stream::open(&web).await;

        // Steady state: reports flowing, nothing else changes.
        let cpu0 = cpu_ticks(hub_pid);
        let reports0 = events.last_progress()["reports"].as_u64().unwrap_or(0);
        let window = Instant::now();
        let seen0 = stream.seen();
        let changed = format!("app-{changed_app:02}");
        let cluster = format!("lg-{:05}", CHANGED.min(agents.max(1) - 1));
        let pages = [
            "/".to_owned(),
            "/clusters".into(),
            "/clusters?selector=fleet%3Dload&page=2".into(),
            format!("/clusters/{cluster}"),
            "/apps".into(),
            format!("/apps/{changed}"),
            format!("/apps/{changed}?page=3"),
            "/repos".into(),
            "/audit".into(),
            "/tokens".into(),
        ];
        println!(
            "steady state, pages over HTTPS with a session ({RUNS} runs each; bytes = body, no compression):"
        );
        let mut sizes = BTreeMap::new();
        for path in &pages {
            let mut times = Vec::new();
            let mut bytes = 0;
            for _ in 0..RUNS {
                let (took, size) = web.get(path, Auth::Session).await;
                times.push(took);
                bytes = size;
            }
            sizes.insert(path.clone(), bytes);
            println!("{}", row(path, &mut times, bytes));
        }
        for path in ["/api/v1/apps", "/api/v1/clusters"] {
            let mut times = Vec::new();
            let mut bytes = 0;
            for _ in 0..2 {
                let (took, size) = web.get(path, Auth::Bearer).await;
                times.push(took);
                bytes = size;
            }
            println!("{} (bearer token)", row(path, &mut times, bytes));
        }
        tokio::time::sleep(steady.saturating_sub(window.elapsed())).await;
        let elapsed = window.elapsed().as_secs_f64();
        let seen1 = stream.seen();
        let reports = events.last_progress()["reports"]
            .as_u64()
            .unwrap_or(0)
            .saturating_sub(reports0);
        println!(
            "steady {elapsed:.0}s: {reports} status reports, hub CPU {:.1}% of one core (pages included); event stream: {}",
            ticks_to_secs(cpu_ticks(hub_pid) - cpu0) * 100.0 / elapsed,
            seen1.since(&seen0, elapsed, &changed, "")
        );

        // One app changes; time its page and the overview while it spreads.
        let cpu0 = cpu_ticks(hub_pid);
        let seen0 = stream.seen();
        write_app(&source, changed_app, 2);
        let second = source.commit("second");
        let pushed = Instant::now();
        let t0 = unix_ms();
        source.publish(&served, "config");
        let mut overview = Vec::new();
        let mut app_page = Vec::new();
        let mut update = None;
        let deadline = pushed + Duration::from_secs(600);
        while update.is_none() && Instant::now() < deadline {
            overview.push(web.get("/", Auth::Session).await.0);
            app_page.push(web.get(&format!("/apps/{changed}"), Auth::Session).await.0);
            update = events
                .all()
                .into_iter()
                .find(|e| {
                    e["event"] == "digest_everywhere"
                        && e["digest"].as_str().is_some_and(|d| !first.contains(d))
                });
        }
        let update = update.expect("the changed app's new bundle never reached every agent");
        let spread = pushed.elapsed().as_secs_f64();
        // The reports after the last agents' fetches.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let elapsed = pushed.elapsed().as_secs_f64();
        let seen1 = stream.seen();
        let fetched = &update["fetched_at_ms"];
        let since = |q: &str| fetched[q].as_u64().unwrap_or(0).saturating_sub(t0) as f64 / 1000.0;
        println!(
            "commit to {changed} (repo polled every 1s): on every agent {spread:.1}s after the push (p50 {:.1}s, max {:.1}s); hub CPU {:.1}% of one core",
            since("p50"),
            since("max"),
            ticks_to_secs(cpu_ticks(hub_pid) - cpu0) * 100.0 / elapsed
        );
        println!(
            "{}",
            row("/ while it spreads", &mut overview, sizes["/"])
        );
        let app_path = format!("/apps/{changed}");
        println!(
            "{}",
            row(
                &format!("{app_path} while it spreads"),
                &mut app_page,
                sizes[&app_path]
            )
        );
        println!(
            "event stream from the push to 3s after the last fetch ({elapsed:.1}s): {}",
            seen1.since(&seen0, elapsed, &changed, &second)
        );
        let total = stream.seen();
        println!(
            "event stream in all: {} bytes, {} events, {} resyncs, {} streams opened",
            total.bytes,
            total.kinds.values().sum::<u64>(),
            total.resyncs,
            total.opened
        );
    });
    println!(
        "errors seen by simulated agents: {}; hub VmRSS {} KiB",
        events.last_progress()["errors"],
        rss_kib(hub_pid)
    );
    println!("{}", load());
    drop(loadgen);
}

/// Digests every agent holds, from the loadgen's events.
fn everywhere(events: &[Value]) -> BTreeSet<String> {
    events
        .iter()
        .filter(|e| e["event"] == "digest_everywhere")
        .filter_map(|e| e["digest"].as_str().map(str::to_owned))
        .collect()
}

/// App `app`'s manifests at `version`, under `app-NN/`: content differs
/// from app to app, so every app has its own bundle.
fn write_app(source: &GitRepoBuilder, app: usize, version: usize) {
    let mut yaml = String::new();
    for i in 0..OBJECTS {
        yaml.push_str(&format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-{app:02}-settings-{i}\n  namespace: apps\ndata:\n  app: app-{app:02}\n  version: \"{version}\"\n  endpoint: https://service-{app}-{i}.example.internal:8443/api\n"
        ));
    }
    source.write(&format!("app-{app:02}/settings.yaml"), yaml);
}

/// `switchyard apply -f` documents: apps app-00… on every `fleet=load` cluster.
fn app_documents(apps: usize) -> String {
    (0..apps)
        .map(|app| {
            format!(
                "apiVersion: switchyard.dev/v1\nkind: App\nmetadata:\n  name: app-{app:02}\nspec:\n  repo: config\n  path: app-{app:02}\n  target:\n    selector: fleet=load\n"
            )
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

/// One printed line: median and max of `times`, and the page's bytes.
fn row(what: &str, times: &mut [Duration], bytes: usize) -> String {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "  {what:48} median {:>7.1} ms  max {:>7.1} ms  ({} runs)  {:>9} bytes",
        times.get(times.len() / 2).copied().map_or(0.0, ms),
        times.last().copied().map_or(0.0, ms),
        times.len(),
        bytes
    )
}

enum Auth {
    /// The cookie a browser sends after signing in.
    Session,
    /// `Authorization: Bearer` with the admin token, as the CLI sends.
    Bearer,
}

/// An HTTPS client of the hub's admin listener, signed in as admin.
struct Web {
    client: reqwest::Client,
    base: String,
    cookie: String,
    token: String,
}

impl Web {
    async fn sign_in(hub: &TestHub) -> Web {
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(hub.admin_tls())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("HTTP client");
        let base = hub.admin_url();
        let token = std::fs::read_to_string(hub.data_dir().join("admin-token"))
            .expect("admin-token")
            .trim()
            .to_owned();
        let answer = client
            .post(format!("{base}/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={token}&next=%2F"))
            .send()
            .await
            .expect("POST /login");
        assert_eq!(answer.status(), 303, "sign-in");
        let cookie = answer
            .headers()
            .get(reqwest::header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .expect("session cookie")
            .to_owned();
        Web {
            client,
            base,
            cookie,
            token,
        }
    }

    /// GET `path` to its last byte: the wall time and the body's bytes.
    async fn get(&self, path: &str, auth: Auth) -> (Duration, usize) {
        let request = self.client.get(format!("{}{path}", self.base));
        let request = match auth {
            Auth::Session => request.header("cookie", &self.cookie),
            Auth::Bearer => request.bearer_auth(&self.token),
        };
        let at = Instant::now();
        let answer = request.send().await.expect("GET");
        assert_eq!(answer.status(), 200, "{path}");
        let body = answer.bytes().await.expect("body");
        (at.elapsed(), body.len())
    }
}

/// What the event stream has sent so far.
#[derive(Clone, Default)]
struct Seen {
    bytes: u64,
    /// Events by SSE event name.
    kinds: BTreeMap<String, u64>,
    /// `app_status` events by app.
    apps: BTreeMap<String, u64>,
    /// `app_status` events by the commit they name.
    commits: BTreeMap<String, u64>,
    /// `resync` events: each is a page reload in the browser, and a new stream.
    resyncs: u64,
    /// Streams opened.
    opened: u64,
}

impl Seen {
    /// What was sent between `before` and this, in `secs` seconds.
    fn since(&self, before: &Seen, secs: f64, changed: &str, commit: &str) -> String {
        let bytes = self.bytes - before.bytes;
        let kinds: BTreeMap<&String, u64> = self
            .kinds
            .iter()
            .map(|(k, n)| (k, n - before.kinds.get(k).copied().unwrap_or(0)))
            .filter(|(_, n)| *n > 0)
            .collect();
        let count: u64 = kinds.values().sum();
        let of_app = |app: &str| {
            self.apps.get(app).copied().unwrap_or(0) - before.apps.get(app).copied().unwrap_or(0)
        };
        let at_commit = self.commits.get(commit).copied().unwrap_or(0)
            - before.commits.get(commit).copied().unwrap_or(0);
        let statuses = kinds
            .iter()
            .find(|(k, _)| k.as_str() == "app_status")
            .map_or(0, |(_, n)| *n);
        format!(
            "{count} events ({kinds:?}), {bytes} bytes = {:.0} bytes/event, {:.0} bytes/s; app_status events of {changed}: {}, of other apps: {}, at the new commit: {at_commit}; resyncs (page reloads): {}",
            bytes as f64 / count.max(1) as f64,
            bytes as f64 / secs.max(0.001),
            of_app(changed),
            statuses - of_app(changed),
            self.resyncs - before.resyncs
        )
    }
}

/// `GET /events` read in the background, counted; opened again after it
/// ends (as the page does after a `resync`, once it has reloaded).
struct Stream {
    seen: Arc<Mutex<Seen>>,
}

/// Streams opened at most, so a hub that ends every stream at once
/// cannot keep the bench busy for ever.
const MAX_STREAMS: u64 = 10_000;

impl Stream {
    async fn open(web: &Web) -> Stream {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let counts = seen.clone();
        let client = web.client.clone();
        let url = format!("{}/events", web.base);
        let cookie = web.cookie.clone();
        let (first, opened) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let mut first = Some(first);
            for _ in 0..MAX_STREAMS {
                let answer = client
                    .get(&url)
                    .header("cookie", &cookie)
                    .header("accept", "text/event-stream")
                    .send()
                    .await
                    .expect("GET /events");
                assert_eq!(answer.status(), 200, "/events");
                counts.lock().expect("counts").opened += 1;
                if let Some(first) = first.take() {
                    let _ = first.send(());
                }
                read_events(answer, &counts).await;
            }
        });
        opened.await.expect("the event stream opens");
        Stream { seen }
    }

    fn seen(&self) -> Seen {
        self.seen.lock().expect("counts").clone()
    }
}

/// Count one stream's events and bytes into `counts` until it ends.
async fn read_events(mut answer: reqwest::Response, counts: &Mutex<Seen>) {
    let mut line = Vec::new();
    let mut kind = String::new();
    while let Ok(Some(chunk)) = answer.chunk().await {
        let mut seen = counts.lock().expect("counts");
        seen.bytes += chunk.len() as u64;
        for &b in chunk.iter() {
            if b != b'\n' {
                line.push(b);
                continue;
            }
            let text = String::from_utf8_lossy(&line);
            if let Some(name) = text.strip_prefix("event:") {
                kind = name.trim().to_owned();
                *seen.kinds.entry(kind.clone()).or_default() += 1;
                if kind == "resync" {
                    seen.resyncs += 1;
                }
            } else if let Some(data) = text.strip_prefix("data:")
                && kind == "app_status"
            {
                let event = serde_json::from_str::<Value>(data.trim()).unwrap_or_default();
                let field = |name: &str| event[name].as_str().unwrap_or_default().to_owned();
                *seen.apps.entry(field("app")).or_default() += 1;
                *seen.commits.entry(field("commit")).or_default() += 1;
            }
            line.clear();
        }
    }
}
