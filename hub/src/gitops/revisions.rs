//! Which commit an admin deploys: an app's history, `sync` (approve the
//! latest or a given commit) and `rollback` (pin an earlier one). The
//! automatic choice of each new commit is made by the planning pass
//! (`pass.rs`, `resolve`).

use super::{AppView, Error, GitOps, Planned, Result, RevisionView};
use crate::clock::rfc3339;
use crate::clock::unix_now;
use crate::git::CommitInfo;
use crate::store::{AppRecord, RepoKind, RevisionRecord};
use tracing::{info, warn};

impl GitOps {
    /// An app's deployed revisions, newest first (like `git log`).
    pub fn history(&self, name: &str) -> Result<Vec<RevisionView>> {
        self.load_app(name)?;
        // The store keeps them in the order they were made.
        Ok(self
            .store
            .revisions(name)?
            .into_iter()
            .rev()
            .map(|r| RevisionView {
                commit: r.commit,
                at: rfc3339(r.at),
                event: r.event,
                trigger: r.trigger,
                author: r.author,
                summary: r.summary,
                committed_at: rfc3339(r.committed_at),
            })
            .collect())
    }

    async fn resolve_commit(&self, app: &AppRecord, revision: &str) -> Result<CommitInfo> {
        let repo = self
            .store
            .repo(&app.repo)?
            .ok_or_else(|| Error::RepoNotFound(app.repo.clone()))?;
        if repo.fetch.last_success.is_none() {
            return Err(Error::NotFetched(repo.name));
        }
        if let (RepoKind::Helm | RepoKind::Oci, Some(chart)) = (repo.kind, &app.chart) {
            return resolve_chart_version(&repo, chart, revision);
        }
        let git = self.git.clone();
        let (repo, revision) = (repo.name, revision.to_owned());
        tokio::task::spawn_blocking(move || git.resolve(&repo, &revision))
            .await
            .map_err(Error::Task)?
            .map_err(Error::Git)
    }

    /// Approve a commit: the latest one, or `revision`. Resumes following
    /// the app's revision after a rollback.
    ///
    /// An explicit `revision` must be the app's tracked revision (its
    /// revision, or the repo's branch) or in its history, so that whoever
    /// may sync cannot deploy a branch nobody reviewed; `override_reason`
    /// (an admin's `--allow-unreachable`, checked by the caller) lifts that.
    ///
    /// `confirm_prune` records the operator's confirmation of the prune of
    /// `Prune=confirm` objects for the commit deployed: the agents delete
    /// them only while they apply that commit.
    pub async fn sync(
        &self,
        name: &str,
        revision: Option<&str>,
        override_reason: Option<&str>,
        confirm_prune: bool,
    ) -> Result<AppView> {
        let writing = self.planning.lock().await;
        let app = self.load_app(name)?;
        let tracked = match &app.revision {
            Some(r) => r.clone(),
            None if app.chart.is_some() => app
                .chart_version
                .clone()
                .unwrap_or_else(|| "latest stable".into()),
            None => self
                .store
                .repo(&app.repo)?
                .map(|r| r.branch)
                .unwrap_or_default(),
        };
        let (target, event) = match revision {
            Some(revision) => {
                let target = self.resolve_commit(&app, revision).await?;
                let reachable = self.is_ancestor(&app, &target.id, &tracked).await?;
                match (reachable, override_reason) {
                    (true, _) => (target, "sync".to_owned()),
                    (false, None) => {
                        return Err(Error::Unreachable {
                            app: app.name.clone(),
                            commit: target.id,
                            tracked,
                        });
                    }
                    (false, Some(reason)) => {
                        warn!(app = %app.name, commit = %target.id, %tracked, %reason, "deploying a commit outside the tracked revision (admin override)");
                        (target, format!("sync outside {tracked}: {reason}"))
                    }
                }
            }
            None if app.chart.is_some() => (self.latest_chart(&app)?, "sync".to_owned()),
            None => (
                self.resolve_commit(&app, &tracked).await?,
                "sync".to_owned(),
            ),
        };
        // An explicit older commit on an automatic app would be replaced by
        // the next new commit at once; it stays pinned until a plain sync.
        let pinned = revision.is_some() && app.latest.as_deref() != Some(target.id.as_str());
        let (event, confirmed) = if confirm_prune {
            (format!("{event} --prune"), Some(target.id.as_str()))
        } else {
            (event, None)
        };
        self.deploy(writing, &app, &target, &event, pinned, confirmed)
            .await
    }

    /// The version of a chart app's range in the repo's latest index.
    fn latest_chart(&self, app: &AppRecord) -> Result<CommitInfo> {
        let repo = self
            .store
            .repo(&app.repo)?
            .ok_or_else(|| Error::RepoNotFound(app.repo.clone()))?;
        if repo.fetch.last_success.is_none() {
            return Err(Error::NotFetched(repo.name));
        }
        let chart = app.chart.as_deref().unwrap_or_default();
        let entry = crate::charts::resolve(&repo.fetch.refs, chart, app.chart_version.as_deref())?;
        Ok(super::charts::commit_of(&repo, chart, &entry))
    }

    /// Whether `commit` is `tracked`'s commit or in its history.
    async fn is_ancestor(&self, app: &AppRecord, commit: &str, tracked: &str) -> Result<bool> {
        // A chart version is "reachable" when the app's range allows it.
        if app.chart.is_some() {
            let version = crate::charts::split_id(commit).map_or(commit, |(v, _)| v);
            return Ok(match &app.chart_version {
                Some(range) => {
                    switchyard_helm::semver_compat::compare(range, version).unwrap_or(false)
                }
                None => true,
            });
        }
        let git = self.git.clone();
        let (repo, commit, tracked) = (app.repo.clone(), commit.to_owned(), tracked.to_owned());
        tokio::task::spawn_blocking(move || git.is_ancestor(&repo, &commit, &tracked))
            .await
            .map_err(Error::Task)?
            .map_err(Error::Git)
    }

    /// Pin the app to an earlier deployed commit from its history.
    pub async fn rollback(&self, name: &str, to: Option<&str>) -> Result<AppView> {
        let writing = self.planning.lock().await;
        let app = self.load_app(name)?;
        let history = self.store.revisions(name)?;
        let commit = match to {
            // Any commit the app has seen; a prefix must be long enough to be unambiguous.
            Some(to) => history
                .iter()
                .rev()
                .find(|r| {
                    r.commit == to
                        || (to.len() >= 7 && r.commit.starts_with(to))
                        // A chart version by its version alone.
                        || crate::charts::split_id(&r.commit).is_some_and(|(v, _)| v == to)
                })
                .map(|r| r.commit.clone())
                .ok_or_else(|| Error::NotInHistory {
                    app: name.to_owned(),
                    commit: to.to_owned(),
                })?,
            // The commit deployed before the current one.
            None => history
                .iter()
                .rev()
                .filter(|r| r.deployed)
                .map(|r| &r.commit)
                .find(|c| Some(*c) != app.deployed.as_ref())
                .cloned()
                .ok_or_else(|| Error::NothingToRollBack(name.to_owned()))?,
        };
        let target = self.resolve_commit(&app, &commit).await?;
        self.deploy(writing, &app, &target, "rollback", true, None)
            .await
    }

    /// Record an admin's deploy of `target`. `writing` is the planning lock,
    /// held since `app` was read: a pass that read the app before this
    /// write would otherwise decide on the old record and could deploy a
    /// new commit over an acknowledged rollback (and the response would
    /// show the pass's commit, not the rollback's).
    async fn deploy(
        &self,
        writing: tokio::sync::MutexGuard<'_, Planned>,
        app: &AppRecord,
        target: &CommitInfo,
        event: &str,
        pinned: bool,
        prune_confirmed: Option<&str>,
    ) -> Result<AppView> {
        self.store.append_revision(
            &app.name,
            &RevisionRecord {
                commit: target.id.clone(),
                at: unix_now(),
                event: event.into(),
                trigger: "admin".into(),
                author: super::charts::author(target),
                summary: target.summary.clone(),
                committed_at: target.time,
                deployed: true,
            },
        )?;
        let commit = target.id.clone();
        // An admin's deploy is also how a remembered render failure is
        // tried again (after the limits were raised, say).
        self.store
            .update_app(&app.name, true, &mut |a| {
                a.deployed = Some(commit.clone());
                a.pinned = pinned;
                // A confirmation is for one commit: any deploy replaces it.
                a.prune_confirmed = prune_confirmed.map(str::to_owned);
                // An explicit sync also repairs drift where self-heal is
                // off: the agents write every object once more.
                a.sync_requests += 1;
                a.render_failure = None;
            })?
            .ok_or_else(|| Error::AppNotFound(app.name.clone()))?;
        self.caches.forget(&app.name);
        info!(app = %app.name, commit = %target.id, event, pinned, "app deployed");
        self.fleet.publish(crate::fleet::FleetEvent::App {
            app: app.name.clone(),
        });
        drop(writing);
        self.reconcile("admin").await?;
        self.app(&app.name)
    }
}

/// A chart version named by `sync --revision` or `rollback`: its history
/// id (`VERSION@sha256:DIGEST`, kept even when the index dropped it, for
/// its archive is cached by digest) or a version the index lists.
fn resolve_chart_version(
    repo: &crate::store::RepoRecord,
    chart: &str,
    revision: &str,
) -> Result<CommitInfo> {
    let listed = crate::charts::entries(&repo.fetch.refs, chart);
    if let Some(e) = listed
        .iter()
        .find(|e| e.id() == revision || e.version == revision)
    {
        return Ok(super::charts::commit_of(repo, chart, e));
    }
    if let Some((version, digest)) = crate::charts::split_id(revision) {
        return Ok(CommitInfo {
            id: revision.to_owned(),
            author_name: format!("index.yaml of repo {}", repo.name),
            author_email: String::new(),
            time: 0,
            summary: format!("chart {chart} {version} (sha256:{digest})"),
        });
    }
    Err(crate::charts::Error::Gone {
        chart: chart.to_owned(),
        version: revision.to_owned(),
    }
    .into())
}
