//! The reconcile loop: runs whenever the desired state changes, a watched
//! object changes (drift, seen by the live view's watches), a periodic
//! resync is due, or a retry after an error is due; it never exits on API
//! errors. It works from the cached assignment, so it keeps enforcing while
//! the hub is unreachable. A resync reads from the live view, so it costs
//! no request per object.

use super::cluster::Cluster;
use super::engine::{self, AppliedState, Marks, Mode};
use super::plan;
use crate::backoff::Backoff;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use switchyard_common::proto::{AppStatus, AssignmentItem, Health, SyncStatus};
use tokio::sync::watch;
use tracing::{Instrument, debug, info, info_span, warn};

/// Everything the agent should run: each assigned app with its objects.
///
/// Only a readable desired state may delete anything (docs/SECURITY.md,
/// "What the agent deletes"): an assignment the agent cannot read leaves
/// every app it applied before Unknown, and a bundle it cannot read leaves
/// that app Unknown; neither is ever taken as "unassigned".
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Desired {
    pub(crate) generation: u64,
    /// The assigned apps, or why the assignment cannot be read (then
    /// nothing is enforced or pruned until the hub sends a fresh one).
    pub(crate) apps: Result<Vec<DesiredApp>, String>,
}

/// One assigned app: its objects, or why its bundle cannot be read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DesiredApp {
    pub(crate) item: AssignmentItem,
    pub(crate) objects: Result<BundleObjects, String>,
}

impl DesiredApp {
    /// The app's objects, decoded for one pass or preview, or why they
    /// cannot be read.
    pub(crate) fn decode(&self) -> Result<Vec<Value>, String> {
        self.objects
            .as_ref()
            .map_err(Clone::clone)
            .and_then(BundleObjects::decode)
    }
}

/// An app's objects as the loop keeps them between passes: the bundle as
/// the cache holds it (zstd-compressed canonical JSON), decoded and checked
/// against its digest again for the one app a pass or a preview works on,
/// and dropped after. Parsed `serde_json::Value`s take tens of times the
/// memory of the compressed bundle, and an agent holds every assigned app
/// for its whole life: kept parsed, 10,000 objects took 60 MB of heap
/// (BENCHMARKS.md, "Agent memory, session 11").
#[derive(Clone, PartialEq)]
pub(crate) struct BundleObjects {
    digest: String,
    compressed: Arc<[u8]>,
}

impl std::fmt::Debug for BundleObjects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BundleObjects")
            .field("digest", &self.digest)
            .field("compressed_bytes", &self.compressed.len())
            .finish()
    }
}

impl BundleObjects {
    /// The bundle `digest` as compressed bytes, checked once here so that
    /// a damaged one is refused when it is handed over, not in a pass.
    pub(crate) fn new(
        digest: &str,
        compressed: Vec<u8>,
    ) -> Result<BundleObjects, switchyard_common::bundle::BundleError> {
        let objects = BundleObjects {
            digest: digest.to_owned(),
            compressed: compressed.into(),
        };
        objects.decode_checked()?;
        Ok(objects)
    }

    fn decode_checked(&self) -> Result<Vec<Value>, switchyard_common::bundle::BundleError> {
        switchyard_common::bundle::Bundle::decode(
            &self.compressed,
            &self.digest,
            crate::cache::MAX_BUNDLE_BYTES,
        )
        .map(|b| b.objects)
    }

    /// The objects, or why they cannot be read (the bytes were checked when
    /// handed over, so only memory damage would fail here: then the app is
    /// Unknown and nothing of it is pruned, as for a damaged cache).
    pub(crate) fn decode(&self) -> Result<Vec<Value>, String> {
        self.decode_checked()
            .map_err(|e| format!("the bundle in memory does not decode ({e})"))
    }
}

/// The status of an app whose desired state cannot be read: Unknown, with
/// the reason, and nothing done to its objects.
fn unknown_status(app: &str, commit: &str, digest: &str, reason: &str) -> AppStatus {
    AppStatus {
        app: app.to_owned(),
        commit: commit.to_owned(),
        digest: digest.to_owned(),
        sync: SyncStatus::Unknown,
        health: Health::Unknown,
        resources: Vec::new(),
        last_error: Some(format!(
            "desired state unreadable, nothing applied or pruned: {reason}"
        )),
        observed_at: crate::clock::unix_now(),
    }
}

/// Settings of the loop.
pub(crate) struct RunnerOptions {
    pub(crate) state_dir: PathBuf,
    /// CA fingerprint of the hub, written on every object.
    pub(crate) hub: String,
    pub(crate) mode: Mode,
    pub(crate) resync: Duration,
    /// Objects of one phase applied at once, at most.
    pub(crate) apply_concurrency: usize,
    /// How long a hook may run before it counts as failed.
    pub(crate) hook_timeout: Duration,
    /// How long one pass waits for a wave to become healthy.
    pub(crate) wave_wait: Duration,
}

/// Handles to a running loop.
pub(crate) struct Runner {
    pub(crate) desired: watch::Sender<Option<Arc<Desired>>>,
    pub(crate) statuses: watch::Receiver<Vec<AppStatus>>,
    /// Answers `switchyard app diff` from the loop's inputs.
    pub(crate) previewer: Previewer,
}

/// What a sync of one app would change, from what the loop works with:
/// the desired state it was handed, the applied state of its last pass,
/// and the cluster's live view. Reads only; never waits for a pass.
#[derive(Clone)]
pub(crate) struct Previewer {
    cluster: Arc<Cluster>,
    hub: String,
    desired: watch::Receiver<Option<Arc<Desired>>>,
    applied: watch::Receiver<Arc<AppliedStates>>,
}

/// What each app last applied. Shared, so handing the loop's copy to the
/// previewer copies pointers, not every app's inventory.
type AppliedStates = BTreeMap<String, Arc<AppliedState>>;

impl Previewer {
    /// The preview of `app`, or why there is none.
    pub(crate) async fn preview(&self, app: &str) -> Result<engine::Preview, String> {
        let desired = self.desired.borrow().clone();
        let Some(desired) = desired else {
            return Err("the agent has no assignment yet".into());
        };
        let apps = desired
            .apps
            .as_ref()
            .map_err(|why| format!("the assignment is unreadable: {why}"))?;
        let Some(desired_app) = apps.iter().find(|a| a.item.app == app) else {
            return Err(format!("app {app} is not assigned to this cluster"));
        };
        let objects = desired_app
            .decode()
            .map_err(|why| format!("the app's bundle is unreadable: {why}"))?;
        let previous = self.applied.borrow().get(app).cloned();
        let marks = Marks {
            app,
            hub: &self.hub,
        };
        Ok(engine::preview_app(
            &self.cluster,
            &desired_app.item,
            &objects,
            previous.as_deref(),
            &marks,
        )
        .await)
    }
}

fn applied_file(state_dir: &std::path::Path) -> PathBuf {
    state_dir.join("cache").join("applied.json")
}

fn load_applied(options: &RunnerOptions) -> AppliedStates {
    let path = applied_file(&options.state_dir);
    let states: BTreeMap<String, AppliedState> = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            warn!(path = %path.display(), error = %e, "ignoring unreadable applied state; prune will not know earlier objects");
            BTreeMap::new()
        }),
        Err(_) => BTreeMap::new(),
    };
    states
        .into_iter()
        .map(|(app, s)| (app, Arc::new(s)))
        .collect()
}

/// Whether `applied` is on disk now.
fn save_applied(options: &RunnerOptions, applied: &AppliedStates) -> bool {
    let path = applied_file(&options.state_dir);
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let plain: BTreeMap<&String, &AppliedState> =
        applied.iter().map(|(app, s)| (app, &**s)).collect();
    let json = serde_json::to_vec_pretty(&plain).expect("applied state serializes");
    match switchyard_certs::write_private_file(&path, &json) {
        Ok(()) => true,
        Err(e) => {
            warn!(path = %path.display(), error = %e, "cannot save applied state; retrying after the next pass");
            false
        }
    }
}

/// Statuses equal but for when they were observed: no need to report again.
fn same_statuses(a: &[AppStatus], b: &[AppStatus]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same_facts(y))
}

/// Start the loop on `cluster`.
pub(crate) fn spawn(cluster: Arc<Cluster>, options: RunnerOptions) -> Runner {
    let (desired_tx, desired_rx) = watch::channel(None);
    let (status_tx, status_rx) = watch::channel(Vec::new());
    let applied = load_applied(&options);
    let (applied_tx, applied_rx) = watch::channel(Arc::new(applied.clone()));
    let previewer = Previewer {
        cluster: cluster.clone(),
        hub: options.hub.clone(),
        desired: desired_rx.clone(),
        applied: applied_rx,
    };
    tokio::spawn(
        run(cluster, options, applied, desired_rx, status_tx, applied_tx)
            .instrument(info_span!("reconciler")),
    );
    Runner {
        desired: desired_tx,
        statuses: status_rx,
        previewer,
    }
}

async fn run(
    cluster: Arc<Cluster>,
    options: RunnerOptions,
    mut applied: AppliedStates,
    mut desired: watch::Receiver<Option<Arc<Desired>>>,
    statuses: watch::Sender<Vec<AppStatus>>,
    applied_out: watch::Sender<Arc<AppliedStates>>,
) {
    let mut drift = cluster.live().changes();
    let mut resync = tokio::time::interval(options.resync);
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    let mut retry_in: Option<Duration> = None;
    let mut last_printed: Option<Arc<Desired>> = None;
    let mut unsaved = false;
    loop {
        let retry = async {
            match retry_in {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        let reason = tokio::select! {
            changed = desired.changed() => {
                if changed.is_err() {
                    return;
                }
                "desired state changed"
            }
            Ok(()) = drift.changed() => {
                // Let a burst of events (a rollout) settle into one pass.
                tokio::time::sleep(Duration::from_millis(300)).await;
                drift.borrow_and_update();
                "watched object changed"
            }
            _ = resync.tick() => "periodic resync",
            () = retry => "retry after error",
        };
        let Some(state) = desired.borrow_and_update().clone() else {
            continue;
        };
        debug!(reason, generation = state.generation, "reconciling");
        let started = tokio::time::Instant::now();
        let mut reports = Vec::new();
        let mut failed = false;
        let mut plan = Vec::new();
        let mut writes = 0;
        let apps = match &state.apps {
            Ok(apps) => apps.as_slice(),
            Err(why) => {
                // The assignment itself is unreadable: every app applied
                // before is Unknown, none is unassigned, nothing is pruned.
                warn!(reason = %why, "assignment unreadable; enforcing and pruning nothing until the hub sends one");
                for (app, previous) in &applied {
                    reports.push(unknown_status(app, "", &previous.digest, why));
                }
                &[]
            }
        };
        // The field managers ignore rules leave fields to: the live view
        // keeps their managedFields entries, which say which fields.
        cluster.live().keep_managers(
            apps.iter()
                .flat_map(|a| &a.item.ignore_differences)
                .flat_map(|r| r.managed_fields_managers.iter().cloned())
                .collect(),
        );
        for desired_app in apps {
            let item = &desired_app.item;
            // Decoded for this app only, and dropped after it.
            let decoded = desired_app.decode();
            let objects = match &decoded {
                Ok(objects) => objects.as_slice(),
                Err(why) => {
                    warn!(app = %item.app, reason = %why, "bundle unreadable; app not enforced and nothing of it pruned");
                    reports.push(unknown_status(&item.app, &item.commit, &item.digest, why));
                    continue;
                }
            };
            let marks = Marks {
                app: &item.app,
                hub: &options.hub,
            };
            let outcome = engine::reconcile_app(
                &cluster,
                item,
                objects,
                applied.get(&item.app).map(|s| &**s),
                &marks,
                options.mode,
                engine::Settings {
                    concurrency: options.apply_concurrency,
                    hook_timeout: options.hook_timeout,
                    wave_wait: options.wave_wait,
                },
            )
            .await;
            failed |= outcome.retry;
            writes += outcome.writes;
            if let Some(state) = outcome.applied {
                applied.insert(item.app.clone(), Arc::new(state));
            }
            if !outcome.plan.is_empty() {
                plan.push(format!("app {}:", item.app));
                plan.extend(outcome.plan);
            }
            reports.push(outcome.status);
        }
        // Only an assignment the agent could read says an app is gone: an
        // app whose bundle is unreadable is still assigned.
        let assigned: Option<BTreeSet<&str>> = state
            .apps
            .as_ref()
            .ok()
            .map(|apps| apps.iter().map(|a| a.item.app.as_str()).collect());
        for app in plan::unassigned(applied.keys(), assigned.as_ref()) {
            let previous = applied.get(&app).cloned().unwrap_or_default();
            match engine::remove_app(&cluster, &app, &previous, options.mode).await {
                Ok(deleted) => {
                    info!(%app, deleted, "app no longer assigned");
                    if options.mode == Mode::Apply {
                        applied.remove(&app);
                    } else if deleted > 0 {
                        plan.push(format!(
                            "app {app}: unassigned; would prune {deleted} objects"
                        ));
                    }
                }
                Err(e) => {
                    failed = true;
                    warn!(%app, error = %e, "cannot prune an unassigned app; retrying");
                }
            }
        }
        debug!(
            reason,
            writes,
            live_objects = cluster.live().len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "pass done"
        );
        if options.mode == Mode::Apply {
            // Written when it changed (or the last write failed): a no-op
            // pass writes nothing to the disk (edge boxes run on flash).
            let changed = applied_out.send_if_modified(|current| {
                if **current == applied {
                    false
                } else {
                    *current = Arc::new(applied.clone());
                    true
                }
            });
            if changed || unsaved {
                unsaved = !save_applied(&options, &applied);
            }
        } else if last_printed.as_ref() != Some(&state) {
            print_plan(state.generation, &plan);
            last_printed = Some(state.clone());
        }
        statuses.send_if_modified(|current| {
            if same_statuses(current, &reports) {
                false
            } else {
                *current = reports;
                true
            }
        });
        retry_in = if failed {
            let delay = backoff.next_delay(rand::random::<f64>());
            info!(?delay, "some objects failed; retrying");
            Some(delay)
        } else {
            backoff.reset();
            None
        };
    }
}

fn print_plan(generation: u64, plan: &[String]) {
    use std::io::Write;
    let mut out = format!("dry-run plan for assignment generation {generation}:\n");
    if plan.is_empty() {
        out.push_str("  nothing to change\n");
    }
    for line in plan {
        for l in line.lines() {
            out.push_str("  ");
            out.push_str(l);
            out.push('\n');
        }
    }
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_common::proto::ResourceStatus;

    fn status(observed_at: u64, message: &str) -> AppStatus {
        AppStatus {
            app: "web".into(),
            commit: "c1".into(),
            digest: "sha256:d".into(),
            sync: SyncStatus::Synced,
            health: Health::Healthy,
            resources: vec![ResourceStatus {
                group: String::new(),
                kind: "ConfigMap".into(),
                namespace: Some("web".into()),
                name: "config".into(),
                sync: SyncStatus::Synced,
                health: Health::Healthy,
                message: Some(message.into()),
            }],
            last_error: None,
            observed_at,
        }
    }

    #[test]
    fn statuses_differing_only_in_time_are_not_reported_again() {
        assert!(same_statuses(&[status(1, "ok")], &[status(2, "ok")]));
        assert!(!same_statuses(&[status(1, "ok")], &[status(1, "changed")]));
        assert!(!same_statuses(&[status(1, "ok")], &[]));
        let mut other = status(1, "ok");
        other.health = Health::Degraded;
        assert!(!same_statuses(&[status(1, "ok")], &[other]));
    }
}
