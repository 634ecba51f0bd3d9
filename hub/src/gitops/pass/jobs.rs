//! A render job, run outside the planning lock: reuse a render whose inputs
//! did not change, gather a Helm chart's values and archive, run the
//! render in the worker and file its outcome for the next pass.

use super::*;

/// The history event naming the dependency versions a commit rendered with.
pub(in crate::gitops) const DEPENDENCIES_EVENT: &str = "dependencies";

impl Planner {
    /// Run one render (outside the planning lock) and cache its outcome.
    pub(in crate::gitops) fn render_job(&self, job: RenderJob) {
        // A pass may have asked for this render while an equal one was
        // finishing (for Helm: one that has since told what the chart
        // reads, under which key this cluster's render is filed).
        if let Some(key) = self.filed_key(&job)
            && self
                .caches
                .rendered
                .lock()
                .expect("cache lock")
                .contains_key(&key)
        {
            debug!(app = %job.app, commit = %job.commit, "rendered meanwhile; not run again");
            return;
        }
        if self.reuse(&job) {
            return;
        }
        let started = std::time::Instant::now();
        let subject = render_subject(&job.app, &job.commit);
        let (outcome, uses, read) = match self.render(&job) {
            Ok((rendered, uses, read)) => (Ok(rendered), uses, read),
            Err(failure) => (
                Err(Failure {
                    message: format!("{subject} {}", failure.message),
                    ..failure
                }),
                None,
                None,
            ),
        };
        crate::metrics::Metrics::observe(
            &self.fleet.metrics().render_seconds,
            crate::metrics::Outcome::of(&outcome),
            started.elapsed(),
        );
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match &outcome {
            Ok(r) => {
                info!(app = %job.app, commit = %job.commit, objects = r.objects.len(), elapsed_ms, "rendered")
            }
            Err(e) => {
                warn!(app = %job.app, commit = %job.commit, error = %e.message, remembered = e.remember, elapsed_ms, "render failed")
            }
        }
        // A Helm render that has told what the chart reads of clusters is
        // filed under its cluster variant, which the next pass looks up.
        let key = match (&job.helm, uses) {
            (Some(helm), Some(uses)) => {
                self.caches
                    .helm_uses
                    .lock()
                    .expect("cache lock")
                    .insert(helm.prefix.clone(), uses);
                (
                    helm.prefix.0.clone(),
                    helm.prefix.1.clone(),
                    format!(
                        "{}|cluster={}",
                        helm.prefix.2,
                        uses.cluster_key(&helm.cluster)
                    ),
                )
            }
            _ => job.key.clone(),
        };
        let outcome = Arc::new(outcome);
        if let (Some(read), Ok(_)) = (read, outcome.as_ref()) {
            self.caches.reusable.lock().expect("cache lock").insert(
                (job.key.0.clone(), job.key.2.clone()),
                Reusable {
                    paths: read.0,
                    ids: read.1,
                    commit: job.commit.clone(),
                    outcome: outcome.clone(),
                },
            );
        }
        self.caches
            .rendered
            .lock()
            .expect("cache lock")
            .insert(key, outcome);
    }

    /// File the app's last render under `job` when every path it read has
    /// the same Git object at `job`'s commit: an unrelated commit neither
    /// runs the renderer nor changes the bundle. Helm renders are keyed per
    /// cluster and not reused.
    fn reuse(&self, job: &RenderJob) -> bool {
        if job.helm.is_some() {
            return false;
        }
        let reusable = self.caches.reusable.lock().expect("cache lock");
        let Some(last) = reusable.get(&(job.key.0.clone(), job.key.2.clone())) else {
            return false;
        };
        let (paths, ids, outcome, from) = (
            last.paths.clone(),
            last.ids.clone(),
            last.outcome.clone(),
            last.commit.clone(),
        );
        drop(reusable);
        match self.git.object_ids(&job.repo, &job.commit, &paths) {
            Ok(now) if now == ids => {
                debug!(app = %job.app, commit = %job.commit, %from, paths = paths.len(), "inputs unchanged; render reused");
                self.caches
                    .rendered
                    .lock()
                    .expect("cache lock")
                    .insert(job.key.clone(), outcome);
                true
            }
            _ => false,
        }
    }

    /// The key a job's outcome is filed under, if known before it runs:
    /// its own, or for a Helm job the cluster variant's once the chart's
    /// uses are known.
    fn filed_key(&self, job: &RenderJob) -> Option<RenderKey> {
        let Some(helm) = &job.helm else {
            return Some(job.key.clone());
        };
        let uses = *self
            .caches
            .helm_uses
            .lock()
            .expect("cache lock")
            .get(&helm.prefix)?;
        Some((
            helm.prefix.0.clone(),
            helm.prefix.1.clone(),
            format!(
                "{}|cluster={}",
                helm.prefix.2,
                uses.cluster_key(&helm.cluster)
            ),
        ))
    }

    /// Values documents and the rest of a Helm render's input, read at the
    /// job's commit.
    fn helm_input(&self, job: &RenderJob, helm: &HelmJob) -> Result<HelmInput, String> {
        let mut values = Vec::new();
        for file in helm.settings.values_files.iter().chain(&helm.values_for) {
            let path = helm::values_path(&job.path, file)?;
            let read = self
                .git
                .read_file(&job.repo, &job.commit, &path, &self.limits)
                .map_err(|e| format!("values file {file}: {e}"))?;
            let text = String::from_utf8(read.data)
                .map_err(|_| format!("values file {file}: not UTF-8"))?;
            values.push(ValuesDocument { source: path, text });
        }
        if let Some(inline) = &helm.settings.values {
            values.push(ValuesDocument {
                source: "(inline values)".into(),
                text: inline.to_string(),
            });
        }
        // `now` is the commit's time (a chart version's publication):
        // the same commit renders the same.
        let time = match &job.chart {
            Some(chart) => self.chart_entry(job, chart).map(|e| e.created_unix())?,
            None => self
                .git
                .resolve(&job.repo, &job.commit)
                .map(|c| c.time)
                .map_err(|e| e.to_string())?,
        };
        let now_unix = i64::try_from(time).unwrap_or(i64::MAX);
        Ok(HelmInput {
            release_name: helm.release_name.clone(),
            namespace: helm.namespace.clone(),
            values,
            set: helm.settings.set.clone(),
            app: job.app.clone(),
            now_unix,
            cluster: Some(helm.cluster.clone()),
        })
    }

    /// Run the render; with its outcome, the paths it read and their Git
    /// objects when nothing else (a remote base) went into it.
    #[allow(clippy::type_complexity)]
    fn render(
        &self,
        job: &RenderJob,
    ) -> Result<
        (
            Rendered,
            Option<HelmUses>,
            Option<(Vec<String>, Vec<Option<String>>)>,
        ),
        Failure,
    > {
        let kept = |message: String| Failure {
            message,
            remember: true,
        };
        let kind = job
            .renderer
            .clone()
            .map_err(|e| kept(format!("failed: {e}")))?;
        let mut files = match &job.chart {
            Some(chart) => vec![self.chart_archive(job, chart)?],
            None => self
                .git
                .read_dir(&job.repo, &job.commit, &job.path, &self.limits)
                .map_err(|e| kept(format!("failed: {e}")))?,
        };
        let resolved = if matches!(kind, RendererKind::Helm) {
            let deps = self.chart_dependencies(job, &files)?;
            files.extend(deps.files);
            deps.resolved
        } else {
            Vec::new()
        };
        let helm = match &job.helm {
            Some(helm) => Some(
                self.helm_input(job, helm)
                    .map_err(|e| kept(format!("failed: {e}")))?,
            ),
            None => None,
        };
        let inputs = match &kind {
            RendererKind::Kustomize => inputs::gather_kustomize(
                &self.git,
                &job.repo,
                &job.commit,
                &job.path,
                &files,
                &self.limits,
            ),
            RendererKind::Directory | RendererKind::Jsonnet => inputs::gather_libs(
                &self.git,
                &job.repo,
                &job.commit,
                &job.path,
                &files,
                &job.directory.jsonnet.libs,
                &self.limits,
            ),
            // A plugin may read anything of its directory only; Helm reads
            // its values files by their own settings.
            _ => Ok(inputs::Inputs {
                paths: vec![job.path.clone()],
                ..inputs::Inputs::default()
            }),
        }
        .map_err(|e| kept(format!("failed: {e}")))?;
        let read = if inputs.remote || job.helm.is_some() {
            None
        } else {
            self.git
                .object_ids(&job.repo, &job.commit, &inputs.paths)
                .ok()
                .map(|ids| (inputs.paths.clone(), ids))
        };
        let request = wire::Request {
            kind,
            max_rendered_bytes: self.limits.max_rendered_bytes,
            helm,
            directory: job.directory.clone(),
            files,
            repo: render::RepoContext {
                app_path: job.path.clone(),
                files: inputs.files,
            },
        };
        let output = sandbox::render_in_worker(&self.worker, request, &self.render_limits)
            .map_err(|e| Failure {
                remember: !matches!(e, SandboxError::Io { .. }),
                message: e.to_string(),
            })?;
        let (objects, uses) = (output.objects, output.helm_uses);
        self.record_dependencies(job, &resolved);
        let not_kept = |message: String| Failure {
            message: format!("failed: {message}"),
            remember: false,
        };
        let shared_digest = if render::needs_substitution(&objects) {
            None
        } else {
            Some(self.store_bundle(objects.clone()).map_err(not_kept)?)
        };
        Ok((
            Rendered {
                objects,
                shared_digest,
            },
            uses,
            read,
        ))
    }

    /// The dependencies of a Helm job's chart that it does not vendor,
    /// fetched (hub side: the render worker has no network) as the commit's
    /// history entry pinned them, else as Chart.lock or the ranges say.
    fn chart_dependencies(
        &self,
        job: &RenderJob,
        files: &[crate::tree::TreeFile],
    ) -> Result<crate::gitops::charts::Dependencies, Failure> {
        use crate::charts::deps;
        let failed = |message: String, remember: bool| Failure {
            message: format!("failed: {message}"),
            remember,
        };
        let meta = match (&job.chart, files) {
            (Some(_), [archive, ..]) => {
                // Read for its Chart.yaml and Chart.lock, under Helm's limits.
                let unpacked = switchyard_helm::helm::chart::archive_files(&archive.data)
                    .map_err(|e| failed(e.to_string(), true))?;
                deps::ChartMeta::of(unpacked.iter().map(|(p, d)| (p.as_str(), d.as_slice())))
            }
            _ => deps::ChartMeta::of(files.iter().map(|f| (f.path.as_str(), f.data.as_slice()))),
        };
        // Nothing to fetch: no store reads either.
        if meta.missing().map_or(true, |m| m.is_empty()) {
            return meta
                .missing()
                .map(|_| Default::default())
                .map_err(|e| failed(e.to_string(), true));
        }
        let repos = self
            .store
            .repos()
            .map_err(|e| failed(e.to_string(), false))?;
        let pins = self
            .store
            .revisions(&job.app)
            .map_err(|e| failed(e.to_string(), false))?
            .iter()
            .rev()
            .find(|r| r.commit == job.commit && r.event == DEPENDENCIES_EVENT)
            .map(|r| deps::parse_history_summary(&r.summary))
            .unwrap_or_default();
        let home = crate::gitops::charts::ChartHome {
            git: match job.chart {
                Some(_) => None,
                None => Some((self.git.as_ref(), &job.repo, &job.commit, &job.path)),
            },
        };
        crate::gitops::charts::dependencies(
            &meta,
            &home,
            &repos,
            &pins,
            &self.chart_cache,
            &self.limits,
        )
        .map_err(|e| failed(e.to_string(), e.is_lasting()))
    }

    /// Note in the app's history, once per commit, which dependency
    /// versions (and archive digests) its render used: later renders of
    /// the commit (another cluster, a restarted hub, a rollback) use them.
    fn record_dependencies(&self, job: &RenderJob, resolved: &[crate::charts::deps::Resolved]) {
        if resolved.is_empty() {
            return;
        }
        let summary = crate::charts::deps::history_summary(resolved);
        let _one_at_a_time = self.caches.dependency_notes.lock().expect("cache lock");
        let Ok(history) = self.store.revisions(&job.app) else {
            return;
        };
        if history
            .iter()
            .any(|r| r.commit == job.commit && r.event == DEPENDENCIES_EVENT)
        {
            return;
        }
        let record = RevisionRecord {
            commit: job.commit.clone(),
            at: unix_now(),
            event: DEPENDENCIES_EVENT.into(),
            trigger: "render".into(),
            author: String::new(),
            summary,
            committed_at: history
                .iter()
                .find(|r| r.commit == job.commit)
                .map_or(0, |r| r.committed_at),
            deployed: false,
        };
        if let Err(e) = self.store.append_revision(&job.app, &record) {
            warn!(app = %job.app, error = %e, "recording the chart's dependencies");
        }
    }

    /// The index entry of a chart job's version, if the index still has it.
    fn chart_entry(&self, job: &RenderJob, chart: &str) -> Result<crate::charts::Entry, String> {
        let repo = self
            .store
            .repo(&job.repo)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("repo {} not found", job.repo))?;
        crate::gitops::charts::entry(&repo, chart, &job.commit)
    }

    /// A chart job's archive, as the one file the helm renderer unpacks (in
    /// the render worker, under Helm's size limits).
    fn chart_archive(
        &self,
        job: &RenderJob,
        chart: &str,
    ) -> Result<crate::tree::TreeFile, Failure> {
        let repo = self
            .store
            .repo(&job.repo)
            .ok()
            .flatten()
            .ok_or_else(|| Failure {
                message: format!("failed: repo {} not found", job.repo),
                remember: false,
            })?;
        crate::gitops::charts::archive(&repo, chart, &job.commit, &self.chart_cache)
            .map(|data| {
                let version = crate::charts::split_id(&job.commit).map_or("", |(v, _)| v);
                crate::tree::TreeFile {
                    path: format!("{chart}-{version}.tgz"),
                    data,
                    executable: false,
                }
            })
            .map_err(|(message, remember)| Failure {
                message: format!("failed: {message}"),
                remember,
            })
    }
}
