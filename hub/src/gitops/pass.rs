//! One planning pass, run on a blocking thread: resolve each app's revision,
//! render what is not cached, and write the assignments that changed.

use super::plan::plan_cluster;
use super::{BUNDLE_COMPRESSION_LEVEL, renderer_of};
use crate::clock::unix_now;
use crate::git::GitCache;
use crate::render::{self, RenderOptions};
use crate::store::{AppRecord, ClusterRecord, RepoRecord, RevisionRecord, Store};
use crate::tree::TreeLimits;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use switchyard_common::ClusterName;
use switchyard_common::bundle::Bundle;
use switchyard_common::selector::Selector;
use tracing::{debug, info, warn};

/// Key of a render: app, commit, and everything about the app that changes
/// the output (path, renderer, plugin command).
pub(super) type RenderKey = (String, String, String);

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
    rendered: Mutex<HashMap<RenderKey, Arc<Result<Rendered, String>>>>,
    /// Per-cluster digests of apps that use `${cluster.…}` variables.
    substituted: Mutex<HashMap<SubstituteKey, Result<String, String>>>,
}

pub(super) struct Planner {
    pub(super) store: Arc<dyn Store>,
    pub(super) git: Arc<GitCache>,
    pub(super) limits: TreeLimits,
    pub(super) plugin_timeout: Duration,
    pub(super) caches: Arc<Caches>,
    /// For the render-duration metric.
    pub(super) fleet: Arc<crate::fleet::Fleet>,
}

/// Where an app-wide error is filed in `AppRecord::errors`.
const ALL_CLUSTERS: &str = "*";

fn render_key(app: &AppRecord, commit: &str) -> RenderKey {
    (
        app.name.clone(),
        commit.to_owned(),
        format!(
            "{}|{}|{}",
            app.path,
            app.renderer,
            app.plugin_command.as_deref().unwrap_or("")
        ),
    )
}

impl Planner {
    /// Run the pass; returns the clusters whose assignment changed, with
    /// their new generation.
    pub(super) fn plan_all(&self, trigger: &str) -> super::Result<Vec<(ClusterName, u64)>> {
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
        for cluster in self.store.clusters()? {
            let plan = plan_cluster(&cluster, &apps, |app, cluster| {
                self.bundle_for(app, cluster)
            });
            for (app, error) in plan.errors {
                let app_errors = errors.entry(app).or_default();
                // A render failure is the same for every cluster: file it once.
                let shared = app_errors.get(ALL_CLUSTERS) == Some(&error);
                if !shared && error.starts_with("render: ") {
                    app_errors.insert(ALL_CLUSTERS.into(), error);
                } else if !shared {
                    app_errors.insert(cluster.name.to_string(), error);
                }
            }
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
                    info!(cluster = %cluster.name, generation = updated.generation, apps = updated.assignment.len(), "assignment changed");
                    changed.push((cluster.name.clone(), updated.generation));
                }
            }
        }

        if !changed.is_empty() {
            self.store.flush()?;
        }

        for (app, _) in &apps {
            let new_errors = errors.remove(&app.name).unwrap_or_default();
            if new_errors != app.errors {
                for (scope, error) in &new_errors {
                    warn!(app = %app.name, %scope, %error, "app cannot be planned; its last good bundle stays assigned");
                }
                self.store
                    .update_app(&app.name, false, &mut |a| a.errors = new_errors.clone())?;
            }
        }
        self.evict(&apps);
        Ok(changed)
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
        let commit = match self.git.resolve(&repo.name, &revision) {
            Ok(commit) => commit,
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
            author: format!("{} <{}>", commit.author_name, commit.author_email),
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

    fn rendered(&self, app: &AppRecord, commit: &str) -> Arc<Result<Rendered, String>> {
        let key = render_key(app, commit);
        if let Some(hit) = self.caches.rendered.lock().expect("cache lock").get(&key) {
            return hit.clone();
        }
        let started = std::time::Instant::now();
        let outcome = self.render(app, commit);
        crate::metrics::Metrics::observe(
            &self.fleet.metrics().render_seconds,
            crate::metrics::Outcome::of(&outcome),
            started.elapsed(),
        );
        match &outcome {
            Ok(r) => {
                info!(app = %app.name, %commit, objects = r.objects.len(), elapsed_ms = started.elapsed().as_millis() as u64, "rendered")
            }
            Err(e) => warn!(app = %app.name, %commit, error = %e, "render failed"),
        }
        let outcome = Arc::new(outcome);
        self.caches
            .rendered
            .lock()
            .expect("cache lock")
            .insert(key, outcome.clone());
        outcome
    }

    fn render(&self, app: &AppRecord, commit: &str) -> Result<Rendered, String> {
        let kind = renderer_of(app)?;
        let path = if app.path == "." {
            ""
        } else {
            app.path.as_str()
        };
        let files = self
            .git
            .read_dir(&app.repo, commit, path, &self.limits)
            .map_err(|e| format!("render: {e}"))?;
        let options = RenderOptions {
            limits: self.limits,
            plugin_timeout: self.plugin_timeout,
            default_namespace: app.namespace.clone(),
        };
        let objects =
            render::render(&kind, &files, &options).map_err(|e| format!("render: {e}"))?;
        let shared_digest = if render::needs_substitution(&objects) {
            None
        } else {
            Some(self.store_bundle(objects.clone())?)
        };
        Ok(Rendered {
            objects,
            shared_digest,
        })
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
        let rendered = self.rendered(app, commit);
        let rendered = match rendered.as_ref() {
            Ok(r) => r,
            Err(e) => return Err(e.clone()),
        };
        if let Some(digest) = &rendered.shared_digest {
            return Ok(digest.clone());
        }
        let key = (
            render_key(app, commit),
            cluster.name.to_string(),
            cluster.labels.clone(),
        );
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
        let live: HashSet<RenderKey> = apps
            .iter()
            .filter_map(|(a, _)| a.deployed.as_deref().map(|c| render_key(a, c)))
            .collect();
        self.caches
            .rendered
            .lock()
            .expect("cache lock")
            .retain(|k, _| live.contains(k));
        self.caches
            .substituted
            .lock()
            .expect("cache lock")
            .retain(|(k, _, _), _| live.contains(k));
    }
}
