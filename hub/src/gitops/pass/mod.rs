//! One planning pass, run on a blocking thread under the planning lock:
//! resolve each app's revision, plan every cluster from the renders at hand,
//! write the assignments that changed, and name the renders still missing.
//! The renders themselves run outside the lock ([`Planner::render_job`],
//! started by `renders`).

use super::plan::{plan_cluster, shared_objects};
use super::{BUNDLE_COMPRESSION_LEVEL, helm, inputs, renderer_of};

mod jobs;
use crate::clock::unix_now;
use crate::git::GitCache;
use crate::render::sandbox::{self, RenderLimits, SandboxError, Worker};
use crate::render::{
    self, ClusterFacts, HelmInput, HelmUses, ObjectKey, RendererKind, ValuesDocument, wire,
};
use crate::store::{
    AppRecord, ClusterRecord, HelmSettings, RenderFailure, RepoKind, RepoRecord, RevisionRecord,
    Store,
};
use crate::tree::TreeLimits;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use switchyard_common::ClusterName;
use switchyard_common::bundle::Bundle;
use switchyard_common::selector::Selector;
use tracing::{debug, info, warn};

/// Key of a render: app, commit, and everything that changes the output or
/// whether it can be had (path, renderer, plugin command, limits; for
/// Helm also its settings, the cluster's values files and what the chart
/// reads of the cluster: see [`Planner::helm_key`]).
pub(super) type RenderKey = (String, String, String);

/// A render a pass found missing, with all it needs to run on its own.
pub(super) struct RenderJob {
    pub(super) key: RenderKey,
    pub(super) app: String,
    repo: String,
    path: String,
    commit: String,
    /// The chart, when the repo is a chart repository.
    chart: Option<String>,
    renderer: Result<RendererKind, String>,
    helm: Option<HelmJob>,
    directory: render::DirectorySettings,
}

/// What a Helm render adds to a job: the app's settings, the cluster it
/// renders for, and the key under which what the chart reads of clusters
/// is remembered.
struct HelmJob {
    settings: HelmSettings,
    release_name: String,
    namespace: String,
    /// `values_for` files this cluster gets, in order.
    values_for: Vec<String>,
    cluster: ClusterFacts,
    prefix: RenderKey,
}

/// Why an app has no render: the message shown, and whether it is kept in
/// the store so that neither the next pass nor a restarted hub runs the
/// same render again. The hub's own troubles (a worker that cannot start,
/// a store write) are not kept: they are tried again after a restart.
#[derive(Debug, Clone)]
pub(super) struct Failure {
    message: String,
    remember: bool,
}

/// What bundle_for says while an app's render is still running: the
/// cluster keeps its last bundle and the app's errors stay as they are.
const PENDING: &str = "render pending";

/// Rendered objects of one app at one commit.
pub(super) struct Rendered {
    objects: Vec<Value>,
    /// The digest every cluster shares when the app uses no variable.
    shared_digest: Option<String>,
}

type SubstituteKey = (RenderKey, String, BTreeMap<String, String>);

/// Work kept between passes, so a pass only does what changed.
#[derive(Default)]
pub(super) struct Caches {
    rendered: Mutex<HashMap<RenderKey, Arc<Result<Rendered, Failure>>>>,
    /// Per-cluster digests of apps that use `${cluster.…}` variables.
    substituted: Mutex<HashMap<SubstituteKey, Result<String, String>>>,
    /// What each Helm chart (app, commit, settings and values files)
    /// reads of the cluster it is rendered for.
    helm_uses: Mutex<HashMap<RenderKey, HelmUses>>,
    /// The objects of each assigned bundle, by digest, to find objects two
    /// apps bring to one cluster.
    bundle_objects: Mutex<HashMap<String, Arc<Vec<ObjectKey>>>>,
    /// App -> cluster -> objects it shares there with another app, as the
    /// last pass found them.
    shared: Mutex<HashMap<String, BTreeMap<String, String>>>,
    /// The latest successful render of each (app, settings) with the Git
    /// objects of every path it read: a later commit with the same objects
    /// there takes this render instead of running one.
    reusable: Mutex<HashMap<(String, String), Reusable>>,
    /// Held while a render notes its chart's dependencies in the app's
    /// history, so that renders for several clusters note them once.
    dependency_notes: Mutex<()>,
}

/// A render and what it read (see [`Caches::reusable`]).
struct Reusable {
    paths: Vec<String>,
    ids: Vec<Option<String>>,
    commit: String,
    outcome: Arc<Result<Rendered, Failure>>,
}

impl Caches {
    /// Per cluster, the objects `app` shares there with another app (a
    /// warning naming the other app), as the last planning pass found them.
    pub(super) fn shared_objects(&self, app: &str) -> BTreeMap<String, String> {
        self.shared
            .lock()
            .expect("cache lock")
            .get(app)
            .cloned()
            .unwrap_or_default()
    }

    /// Forget every render of `app`, so that the next pass renders it again.
    pub(super) fn forget(&self, app: &str) {
        self.rendered
            .lock()
            .expect("cache lock")
            .retain(|k, _| k.0 != app);
        self.substituted
            .lock()
            .expect("cache lock")
            .retain(|(k, _, _), _| k.0 != app);
        self.helm_uses
            .lock()
            .expect("cache lock")
            .retain(|k, _| k.0 != app);
        self.reusable
            .lock()
            .expect("cache lock")
            .retain(|k, _| k.0 != app);
    }
}

pub(super) struct Planner {
    pub(super) store: Arc<dyn Store>,
    pub(super) git: Arc<GitCache>,
    pub(super) chart_cache: std::path::PathBuf,
    pub(super) limits: TreeLimits,
    pub(super) render_limits: RenderLimits,
    pub(super) worker: Arc<Worker>,
    pub(super) caches: Arc<Caches>,
    /// For the render-duration metric.
    pub(super) fleet: Arc<crate::fleet::Fleet>,
    /// Renders this pass found missing.
    pub(super) wanted: Mutex<HashMap<RenderKey, RenderJob>>,
}

/// What a pass did: clusters whose assignment changed (with their new
/// generation), and the renders it could not do without.
pub(super) struct PassOutcome {
    pub(super) changed: Vec<(ClusterName, u64)>,
    pub(super) wanted: Vec<RenderJob>,
}

/// Where an app-wide error is filed in `AppRecord::errors`.
const ALL_CLUSTERS: &str = "*";

/// The settings part of a render's key: raising a limit tries a failed
/// render again.
fn render_settings(app: &AppRecord, limits: &TreeLimits, render: &RenderLimits) -> String {
    let helm = if app.renderer == "helm" {
        helm::settings_key(app)
    } else {
        String::new()
    };
    // Directory settings are JSON, empty when default (so keys, and the
    // failures remembered under them, stay as they were before them).
    let directory = app
        .directory
        .as_ref()
        .filter(|d| !d.is_default())
        .and_then(|d| serde_json::to_string(d).ok())
        .map(|d| format!("|directory={d}"))
        .unwrap_or_default();
    format!(
        "{}{}|{}|{}|timeout={}ms|memory={}|output={}|files={}/{}/{}{directory}{helm}",
        app.chart
            .as_ref()
            .map(|c| format!("chart={c}|"))
            .unwrap_or_default(),
        app.path,
        app.renderer,
        app.plugin_command.as_deref().unwrap_or(""),
        render.timeout.as_millis(),
        render.memory_bytes,
        limits.max_rendered_bytes,
        limits.max_files,
        limits.max_file_bytes,
        limits.max_total_bytes,
    )
}

/// What one planning pass did to the fleet, for its one INFO line: per
/// cluster lines are DEBUG, since at 10,000 clusters one commit gave 20,000
/// INFO lines.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct PassSummary {
    /// Clusters planned.
    clusters: usize,
    /// Clusters whose assignment changed (each is notified).
    changed: usize,
    /// Of those, clusters that gained or lost apps (the rest changed commits).
    membership_changed: usize,
}

impl PassSummary {
    /// Count one planned cluster: its number of apps before and, when its
    /// assignment changed, after.
    fn cluster(&mut self, apps_before: usize, apps_after: Option<usize>) {
        self.clusters += 1;
        if let Some(after) = apps_after {
            self.changed += 1;
            if after != apps_before {
                self.membership_changed += 1;
            }
        }
    }

    fn log(&self, trigger: &str, apps: usize) {
        if self.changed > 0 {
            info!(
                trigger,
                apps,
                clusters = self.clusters,
                changed = self.changed,
                membership_changed = self.membership_changed,
                "planning pass changed assignments"
            );
        } else {
            debug!(
                trigger,
                apps,
                clusters = self.clusters,
                "planning pass: no change"
            );
        }
    }
}

/// Whether `key` is one of the renders of the app at `base`: for Helm apps
/// there is one per cluster variant, each keyed from `base`'s settings.
fn belongs(key: &RenderKey, base: &RenderKey) -> bool {
    key.0 == base.0
        && key.1 == base.1
        && (key.2 == base.2
            || key
                .2
                .strip_prefix(base.2.as_str())
                .is_some_and(|rest| rest.starts_with("|values-for=")))
}

/// Whether `error`, as filed in an app's errors, is a failed render (of
/// the app's deployed commit: the only one the planner renders).
pub(super) fn is_render_error(error: &str) -> bool {
    error.starts_with("render of app ")
}

/// `render of app web at commit 1a2b3c4`, the start of every render error
/// (`at chart version 6.1.0` for a chart from a chart repository).
fn render_subject(app: &str, commit: &str) -> String {
    if let Some((version, _)) = crate::charts::split_id(commit) {
        return format!("render of app {app} at chart version {version}");
    }
    let short = commit.get(..7).unwrap_or(commit);
    format!("render of app {app} at commit {short}")
}

impl Planner {
    fn render_key(&self, app: &AppRecord, commit: &str) -> RenderKey {
        (
            app.name.clone(),
            commit.to_owned(),
            render_settings(app, &self.limits, &self.render_limits),
        )
    }

    /// Run the pass.
    pub(super) fn plan_all(&self, trigger: &str) -> super::Result<PassOutcome> {
        let repos: HashMap<String, RepoRecord> = self
            .store
            .repos()?
            .into_iter()
            .map(|r| (r.name.clone(), r))
            .collect();
        let groups = self
            .store
            .groups()?
            .into_iter()
            .map(|g| (g.name.clone(), g))
            .collect();
        let mut apps = Vec::new();
        let mut errors: HashMap<String, BTreeMap<String, String>> = HashMap::new();
        for app in self.store.apps()? {
            let app_errors = errors.entry(app.name.clone()).or_default();
            let (app, error) = self.resolve(app, &repos, trigger);
            if let Some(error) = error {
                app_errors.insert(ALL_CLUSTERS.into(), error);
            }
            match super::groups::target_selector(&app, &groups) {
                Ok(selector) => apps.push((app, selector)),
                Err(e) => {
                    app_errors.insert(ALL_CLUSTERS.into(), e);
                }
            }
        }

        let mut changed = Vec::new();
        let mut summary = PassSummary::default();
        // Apps whose render is still to come: their errors stay as they are.
        let mut pending = HashSet::new();
        // Objects shared between apps, per app and cluster; clusters with
        // the same bundles share the answer.
        let mut shared: HashMap<String, BTreeMap<String, String>> = HashMap::new();
        let mut shared_by_bundles: HashMap<Vec<(String, String)>, BTreeMap<String, String>> =
            HashMap::new();
        let mut live_digests = HashSet::new();
        for cluster in self.store.clusters()? {
            let plan = plan_cluster(&cluster, &apps, |app, cluster| {
                self.bundle_for(app, cluster)
            });
            live_digests.extend(plan.items.iter().map(|i| i.digest.clone()));
            if plan.items.len() > 1 {
                let bundles: Vec<(String, String)> = plan
                    .items
                    .iter()
                    .map(|i| (i.app.clone(), i.digest.clone()))
                    .collect();
                let found = shared_by_bundles.entry(bundles).or_insert_with(|| {
                    let known = self.caches.bundle_objects.lock().expect("cache lock");
                    shared_objects(&plan.items, |digest| known.get(digest).cloned())
                });
                for (app, warning) in found.iter() {
                    shared
                        .entry(app.clone())
                        .or_default()
                        .insert(cluster.name.to_string(), warning.clone());
                }
            }
            for (app, error) in plan.errors {
                if error == PENDING {
                    pending.insert(app);
                    continue;
                }
                let app_errors = errors.entry(app).or_default();
                // A render failure is the same for every cluster: file it once.
                let shared = app_errors.get(ALL_CLUSTERS) == Some(&error);
                if !shared && is_render_error(&error) {
                    app_errors.insert(ALL_CLUSTERS.into(), error);
                } else if !shared {
                    app_errors.insert(cluster.name.to_string(), error);
                }
            }
            let apps_before = cluster.assignment.len();
            let mut apps_after = None;
            if plan.items != cluster.assignment {
                let items = plan.items;
                // Not flushed one by one: one flush below covers the whole
                // fleet before any agent is told (10,000 flushes took minutes).
                let updated = self.store.update_cluster(&cluster.name, false, &mut |c| {
                    c.assignment = items.clone();
                    c.generation += 1;
                })?;
                if let Some(updated) = updated {
                    self.fleet.refresh_gauges(&updated.name);
                    debug!(cluster = %cluster.name, generation = updated.generation, apps = updated.assignment.len(), "assignment changed");
                    apps_after = Some(updated.assignment.len());
                    changed.push((cluster.name.clone(), updated.generation));
                }
            }
            summary.cluster(apps_before, apps_after);
        }
        summary.log(trigger, apps.len());

        if !changed.is_empty() {
            self.store.flush()?;
        }

        for (app, _) in &apps {
            let new_errors = if pending.contains(&app.name) {
                app.errors.clone()
            } else {
                errors.remove(&app.name).unwrap_or_default()
            };
            let failure = self.failure_to_keep(app);
            if new_errors != app.errors || failure != app.render_failure {
                for (scope, error) in &new_errors {
                    warn!(app = %app.name, %scope, %error, "app cannot be planned; its last good bundle stays assigned");
                }
                // A remembered failure is written durably: it is what keeps
                // a restarted hub from running the same render again.
                let durable = failure != app.render_failure;
                self.store.update_app(&app.name, durable, &mut |a| {
                    a.errors = new_errors.clone();
                    a.render_failure = failure.clone();
                })?;
            }
        }
        self.evict(&apps);
        self.caches
            .bundle_objects
            .lock()
            .expect("cache lock")
            .retain(|digest, _| live_digests.contains(digest));
        let mut last = self.caches.shared.lock().expect("cache lock");
        for (app, clusters) in &shared {
            if last.get(app) != Some(clusters) {
                let (cluster, warning) = clusters.iter().next().expect("a cluster");
                warn!(app = %app, clusters = clusters.len(), example = %cluster, %warning, "objects shared with another app");
            }
        }
        *last = shared;
        drop(last);
        let wanted = std::mem::take(&mut *self.wanted.lock().expect("wanted lock"));
        Ok(PassOutcome {
            changed,
            wanted: wanted.into_values().collect(),
        })
    }

    /// The failure the app's record should keep: that of its deployed
    /// commit's render, if it failed in a way worth remembering; the one
    /// it has while that render has not run in this hub yet; else none.
    fn failure_to_keep(&self, app: &AppRecord) -> Option<RenderFailure> {
        let commit = app.deployed.as_deref()?;
        let base = self.render_key(app, commit);
        let cache = self.caches.rendered.lock().expect("cache lock");
        // A Helm app has a render per cluster variant: the first failing
        // one (in key order, so the choice is stable) is kept.
        let mut cached: Vec<_> = cache.iter().filter(|(k, _)| belongs(k, &base)).collect();
        cached.sort_by(|a, b| a.0.cmp(b.0));
        let failed = cached.iter().find_map(|(k, r)| match r.as_ref() {
            Err(failure) if failure.remember => Some(RenderFailure {
                commit: k.1.clone(),
                settings: k.2.clone(),
                error: failure.message.clone(),
            }),
            _ => None,
        });
        match failed {
            Some(f) => Some(f),
            None if !cached.is_empty() => None,
            None => app.render_failure.clone(),
        }
    }

    /// Resolve the app's revision; record a new commit in its history and
    /// deploy it when the app is automatic and not pinned. Returns the app as
    /// it now is and, if resolving failed, why.
    fn resolve(
        &self,
        app: AppRecord,
        repos: &HashMap<String, RepoRecord>,
        trigger: &str,
    ) -> (AppRecord, Option<String>) {
        let Some(repo) = repos.get(&app.repo) else {
            let error = format!("repo {} not found", app.repo);
            return (app, Some(error));
        };
        if repo.fetch.last_success.is_none() {
            let error = match &repo.fetch.error {
                Some(e) => format!("repo {} cannot be fetched: {e}", repo.name),
                None => format!("waiting for the first fetch of repo {}", repo.name),
            };
            return (app, Some(error));
        }
        let revision = app.revision.clone().unwrap_or_else(|| repo.branch.clone());
        let resolved = match (&repo.kind, &app.chart) {
            (RepoKind::Oci, Some(chart)) if !repo.fetch.tracked.contains(chart) => Err(format!(
                "waiting for the next fetch of repo {}, the first to ask for chart {chart}",
                repo.name
            )),
            (RepoKind::Helm | RepoKind::Oci, Some(chart)) => {
                super::charts::resolve(repo, chart, app.chart_version.as_deref())
                    .map_err(|e| e.to_string())
            }
            (RepoKind::Helm | RepoKind::Oci, None) => Err(format!(
                "repo {} is a chart repository and the app names no chart",
                repo.name
            )),
            (RepoKind::Git, _) => Ok(self.git.resolve(&repo.name, &revision)),
        };
        let resolved = match resolved {
            Ok(resolved) => resolved,
            Err(error) => return (app, Some(error)),
        };
        let commit = match resolved {
            Ok(commit) => commit,
            // Only tracked revisions are fetched: one no fetch has asked
            // for yet (the app was just created or moved to it) arrives with
            // the next fetch, so it is waited for, not an error.
            Err(_) if !repo.fetch.tracked.contains(&revision) => {
                let error = format!(
                    "waiting for the next fetch of repo {}, the first to ask for revision {revision}",
                    repo.name
                );
                return (app, Some(error));
            }
            Err(e) => {
                let error = format!("revision {revision}: {e}");
                return (app, Some(error));
            }
        };
        if app.latest.as_deref() == Some(commit.id.as_str())
            && (app.manual || app.pinned || app.deployed.is_some())
        {
            return (app, None);
        }
        let deploy = !app.manual && !app.pinned;
        let record = RevisionRecord {
            commit: commit.id.clone(),
            at: unix_now(),
            event: "new-commit".into(),
            trigger: trigger.into(),
            author: super::charts::author(&commit),
            summary: commit.summary.clone(),
            committed_at: commit.time,
            deployed: deploy,
        };
        if let Err(e) = self.store.append_revision(&app.name, &record) {
            let error = format!("recording the new commit: {e}");
            return (app, Some(error));
        }
        let id = commit.id.clone();
        match self.store.update_app(&app.name, true, &mut |a| {
            a.latest = Some(id.clone());
            if deploy {
                a.deployed = Some(id.clone());
            }
        }) {
            Ok(Some(updated)) => {
                info!(app = %updated.name, commit = %commit.id, deploy, summary = %commit.summary, "new commit");
                (updated, None)
            }
            Ok(None) => (app, Some("app was deleted".into())),
            Err(e) => (app, Some(format!("recording the new commit: {e}"))),
        }
    }

    /// The app's render at `commit` if this hub has it (or remembers it
    /// failing); else the render is noted as wanted and `None` returned.
    fn rendered(
        &self,
        app: &AppRecord,
        commit: &str,
        cluster: &ClusterRecord,
    ) -> Option<Arc<Result<Rendered, Failure>>> {
        let (key, helm) = if app.renderer == "helm" {
            match self.helm_key(app, commit, cluster) {
                Ok((key, job)) => (key, Some(job)),
                Err(message) => {
                    return Some(Arc::new(Err(Failure {
                        message,
                        remember: false,
                    })));
                }
            }
        } else {
            (self.render_key(app, commit), None)
        };
        let mut cache = self.caches.rendered.lock().expect("cache lock");
        if let Some(hit) = cache.get(&key) {
            return Some(hit.clone());
        }
        if let Some(failure) = &app.render_failure
            && failure.commit == key.1
            && failure.settings == key.2
        {
            debug!(app = %app.name, %commit, "render failed before; not run again");
            let remembered = Arc::new(Err(Failure {
                message: failure.error.clone(),
                remember: true,
            }));
            cache.insert(key, remembered.clone());
            return Some(remembered);
        }
        drop(cache);
        self.wanted
            .lock()
            .expect("wanted lock")
            .entry(key.clone())
            .or_insert_with(|| RenderJob {
                key,
                app: app.name.clone(),
                repo: app.repo.clone(),
                path: if app.path == "." {
                    String::new()
                } else {
                    app.path.clone()
                },
                commit: commit.to_owned(),
                chart: app.chart.clone(),
                renderer: renderer_of(app),
                helm,
                directory: app.directory.clone().unwrap_or_default(),
            });
        None
    }

    /// A Helm render's key for `cluster`: the app's settings, the indices
    /// of the `values_for` files the cluster gets, and, once a render has
    /// told what the chart reads of clusters, just that of this cluster (so
    /// clusters alike in what the chart reads share one render). Until
    /// then the key ends in `?`: one render runs for the first such
    /// cluster, and tells.
    fn helm_key(
        &self,
        app: &AppRecord,
        commit: &str,
        cluster: &ClusterRecord,
    ) -> Result<(RenderKey, HelmJob), String> {
        let settings = app.helm.clone().unwrap_or_default();
        let matched = helm::values_for(&settings, cluster)?;
        let (mut prefix, mut files) = (self.render_key(app, commit), Vec::new());
        prefix.2.push_str("|values-for=");
        for (n, (i, file)) in matched.into_iter().enumerate() {
            if n > 0 {
                prefix.2.push(',');
            }
            prefix.2.push_str(&i.to_string());
            files.push(file.to_owned());
        }
        let facts = helm::facts(cluster);
        let variant = match self
            .caches
            .helm_uses
            .lock()
            .expect("cache lock")
            .get(&prefix)
        {
            Some(uses) => uses.cluster_key(&facts),
            None => "?".to_owned(),
        };
        let key = (
            prefix.0.clone(),
            prefix.1.clone(),
            format!("{}|cluster={variant}", prefix.2),
        );
        let job = HelmJob {
            release_name: helm::release_name(app),
            namespace: app.namespace.clone().unwrap_or_else(|| "default".into()),
            settings,
            values_for: files,
            cluster: facts,
            prefix,
        };
        Ok((key, job))
    }

    fn store_bundle(&self, objects: Vec<Value>) -> Result<String, String> {
        let encoded = Bundle::new(objects)
            .encode(BUNDLE_COMPRESSION_LEVEL)
            .map_err(|e| format!("encoding the bundle: {e}"))?;
        self.store
            .put_bundle(&encoded.digest, &encoded.compressed)
            .map_err(|e| format!("storing the bundle: {e}"))?;
        debug!(digest = %encoded.digest, bytes = encoded.compressed.len(), "bundle stored");
        Ok(encoded.digest)
    }

    fn bundle_for(&self, app: &AppRecord, cluster: &ClusterRecord) -> Result<String, String> {
        let commit = app.deployed.as_deref().unwrap_or_default();
        let Some(rendered) = self.rendered(app, commit, cluster) else {
            return Err(PENDING.to_owned());
        };
        let rendered = match rendered.as_ref() {
            Ok(r) => r,
            Err(e) => return Err(e.message.clone()),
        };
        let outcome = self.bundle_digest(app, commit, cluster, rendered);
        if let Ok(digest) = &outcome {
            // The rendered objects stand for the bundle's: substitution
            // rarely renames an object, and two apps alike either way.
            let mut known = self.caches.bundle_objects.lock().expect("cache lock");
            if !known.contains_key(digest) {
                let keys = rendered
                    .objects
                    .iter()
                    .map(|o| ObjectKey::of(o, app.namespace.as_deref()))
                    .collect();
                known.insert(digest.clone(), Arc::new(keys));
            }
        }
        outcome
    }

    /// The digest of `cluster`'s bundle of `rendered`: the shared one, or
    /// one with the cluster's variables substituted (cached).
    fn bundle_digest(
        &self,
        app: &AppRecord,
        commit: &str,
        cluster: &ClusterRecord,
        rendered: &Rendered,
    ) -> Result<String, String> {
        if let Some(digest) = &rendered.shared_digest {
            return Ok(digest.clone());
        }
        // Keyed by the render the objects came from (a Helm app's differs
        // per cluster variant).
        let render_key = if app.renderer == "helm" {
            self.helm_key(app, commit, cluster)?.0
        } else {
            self.render_key(app, commit)
        };
        let key = (render_key, cluster.name.to_string(), cluster.labels.clone());
        if let Some(hit) = self
            .caches
            .substituted
            .lock()
            .expect("cache lock")
            .get(&key)
        {
            return hit.clone();
        }
        let outcome = render::substitute(&rendered.objects, cluster.name.as_str(), &cluster.labels)
            .map_err(|e| format!("substitution for cluster {}: {e}", cluster.name))
            .and_then(|objects| self.store_bundle(objects));
        self.caches
            .substituted
            .lock()
            .expect("cache lock")
            .insert(key, outcome.clone());
        outcome
    }

    /// Forget renders no app deploys any more.
    fn evict(&self, apps: &[(AppRecord, Selector)]) {
        let live: HashMap<(String, String), RenderKey> = apps
            .iter()
            .filter_map(|(a, _)| {
                let key = self.render_key(a, a.deployed.as_deref()?);
                Some(((key.0.clone(), key.1.clone()), key))
            })
            .collect();
        let is_live = |k: &RenderKey| {
            live.get(&(k.0.clone(), k.1.clone()))
                .is_some_and(|base| belongs(k, base))
        };
        self.caches
            .rendered
            .lock()
            .expect("cache lock")
            .retain(|k, _| is_live(k));
        self.caches
            .substituted
            .lock()
            .expect("cache lock")
            .retain(|(k, _, _), _| is_live(k));
        self.caches
            .helm_uses
            .lock()
            .expect("cache lock")
            .retain(|k, _| is_live(k));
        // Kept across commits (that is their use), but only for apps with
        // these settings still.
        self.caches
            .reusable
            .lock()
            .expect("cache lock")
            .retain(|(app, settings), _| {
                live.iter()
                    .any(|((a, _), key)| a == app && key.2 == *settings)
            });
    }
}

#[cfg(test)]
mod tests {
    use super::PassSummary;

    #[test]
    fn a_pass_is_summed_up_over_its_clusters() {
        let mut summary = PassSummary::default();
        summary.cluster(2, None);
        summary.cluster(2, Some(2));
        summary.cluster(1, Some(2));
        summary.cluster(0, Some(1));
        assert_eq!(
            summary,
            PassSummary {
                clusters: 4,
                changed: 3,
                membership_changed: 2,
            }
        );
    }
}
