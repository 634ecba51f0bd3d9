//! Running an app's sync hooks; the decisions are `reconcile::hooks`.
//! Each hook is created (POST, so `generateName` works, never applied),
//! watched to completion within a bounded wait, and deleted as its delete
//! policy says, only ever when this agent created it (creation record and
//! recorded uid, uid precondition on the delete). Every run is recorded per
//! (app, commit) in the app's applied state on disk, so a restart or a
//! resync at the same commit never runs a hook twice.

use super::*;
use crate::reconcile::hooks::{self as decide, Hook, Phase, RunState};

/// How long one pass waits for a deleted hook object to be gone before the
/// next run creates it again under the same name.
const GONE_WAIT: Duration = Duration::from_secs(30);
/// Between two reads of a hook object or wave object being waited for.
const POLL: Duration = Duration::from_millis(300);

/// The hook runs of an app, kept in its applied state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct HookRecord {
    /// The commit whose hooks `runs` are.
    pub(crate) commit: String,
    /// Each run at `commit`, by `hooks::run_key`.
    #[serde(default)]
    pub(crate) runs: BTreeMap<String, HookRun>,
    /// Hook objects this agent created and has not deleted, by
    /// `hooks::hook_key`: what BeforeHookCreation deletes.
    #[serde(default)]
    pub(crate) objects: BTreeMap<String, CreatedHook>,
}

/// One run of one hook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct HookRun {
    pub(crate) phase: Phase,
    /// The object, by the name the server gave it.
    pub(crate) object: ObjectRef,
    pub(crate) uid: String,
    pub(crate) state: RunState,
    /// Unix seconds of its creation: `--hook-timeout` counts from here,
    /// across passes and restarts.
    #[serde(default)]
    pub(crate) started_at: u64,
}

/// Why the hooks of a phase did not all succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Stop {
    /// A hook failed: the sync fails.
    Failed(String),
    /// A hook is still running after this pass's wait: the next pass
    /// looks again.
    Waiting(String),
}

/// A hook object this agent created: the only kind it may delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CreatedHook {
    pub(crate) object: ObjectRef,
    pub(crate) uid: String,
}

/// Runs the hooks of one app in one pass.
pub(super) struct Hooks<'a> {
    pub(super) cluster: &'a Cluster,
    pub(super) item: &'a AssignmentItem,
    pub(super) marks: &'a Marks<'a>,
    /// The whole bundle; hooks index into it.
    pub(super) objects: &'a [Value],
    pub(super) hooks: Vec<(usize, Hook)>,
    pub(super) record: HookRecord,
    /// How long a hook may run, over every pass, before it counts as failed.
    pub(super) timeout: Duration,
    /// How long one pass waits for running hooks before it ends.
    pub(super) wait: Duration,
}

impl Hooks<'_> {
    /// Whether any hook runs in `phase`.
    pub(super) fn any(&self, phase: Phase) -> bool {
        self.hooks.iter().any(|(_, h)| h.phases.contains(&phase))
    }

    /// Run the hooks of `phase` whose weight `select` accepts, group by
    /// group in ascending weight; a group starts when the one before it
    /// succeeded. Hooks that already ran at this commit are not run again.
    /// `Err` names the first hook that failed and why, or those still running.
    pub(super) async fn run(
        &mut self,
        phase: Phase,
        select: impl Fn(i64) -> bool,
        pass: &mut Pass,
    ) -> Result<(), Stop> {
        for group in decide::run_order(&self.hooks, phase) {
            let weight = self.weight(group[0]);
            if !select(weight) {
                continue;
            }
            self.run_group(phase, &group, pass).await?;
        }
        Ok(())
    }

    fn weight(&self, index: usize) -> i64 {
        self.hooks
            .iter()
            .find(|(i, _)| *i == index)
            .map_or(0, |(_, h)| h.weight)
    }

    fn hook(&self, index: usize) -> Hook {
        self.hooks
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, h)| h.clone())
            .expect("hook indices come from the hook list")
    }

    async fn run_group(
        &mut self,
        phase: Phase,
        group: &[usize],
        pass: &mut Pass,
    ) -> Result<(), Stop> {
        let mut watching = Vec::new();
        let mut failed = None;
        let mut not_started = Vec::new();
        for &index in group {
            let object = &self.objects[index];
            let key = decide::run_key(object, phase);
            let name = format!("{phase} hook {}", describe_hook(object));
            match self.record.runs.get(&key).map(|r| &r.state) {
                Some(RunState::Succeeded) => continue,
                Some(RunState::Failed(why)) => {
                    failed.get_or_insert(format!("{name} failed: {why}"));
                    continue;
                }
                Some(RunState::Running) => watching.push((index, key)),
                None => match self.start(index, phase, &key, pass).await {
                    Ok(()) => watching.push((index, key)),
                    // A server error that may pass: not a failed hook;
                    // the next pass tries to start it again.
                    Err((why, true)) => {
                        warn!(app = %self.item.app, hook = %name, %why, "hook not started; trying again");
                        pass.retry = true;
                        not_started.push(format!("{name} not started yet ({why})"));
                    }
                    Err((why, false)) => {
                        warn!(app = %self.item.app, hook = %name, %why, "hook not started");
                        failed.get_or_insert(format!("{name} failed: {why}"));
                    }
                },
            }
        }
        // One deadline for the group: they run side by side.
        let deadline = tokio::time::Instant::now() + self.wait;
        let mut running = not_started;
        for (index, key) in watching {
            let Some(run) = self.record.runs.get(&key).cloned() else {
                continue;
            };
            let object = &self.objects[index];
            let name = format!("{phase} hook {}", describe_hook(object));
            let mut state = match self.cluster.kind(&run.object).await {
                Ok(kind) => self.watch(&kind, &run, deadline).await,
                Err(e) => RunState::Failed(format!("kind not resolved: {e}")),
            };
            if state == RunState::Running
                && unix_now() >= run.started_at.saturating_add(self.timeout.as_secs())
            {
                state = RunState::Failed(format!(
                    "did not finish within {} (--hook-timeout)",
                    humantime::format_duration(self.timeout)
                ));
            }
            if state == RunState::Running {
                running.push(format!("{name} ({})", run.object.name));
                continue;
            }
            info!(app = %self.item.app, hook = %name, object = %run.object, ?state, "hook finished");
            if let RunState::Failed(why) = &state {
                failed.get_or_insert(format!("{name} failed: {why}"));
            }
            if decide::delete_after(&self.hook(index).delete, &state)
                && let Some(created) = self.record.objects.remove(&decide::hook_key(object))
                && let Err(e) = self.delete(&created, false, pass).await
            {
                pass.errors
                    .push(format!("deleting {name} ({}): {e}", created.object));
            }
            if let Some(run) = self.record.runs.get_mut(&key) {
                run.state = state;
            }
        }
        if let Some(why) = failed {
            return Err(Stop::Failed(why));
        }
        if !running.is_empty() {
            return Err(Stop::Waiting(format!("{} running", running.join(", "))));
        }
        Ok(())
    }

    /// Create the hook of `index` for a run of `phase`, after deleting the
    /// object an earlier run left when its policy says BeforeHookCreation.
    /// `Err` says why, and whether the error may go away by itself.
    async fn start(
        &mut self,
        index: usize,
        phase: Phase,
        key: &str,
        pass: &mut Pass,
    ) -> Result<(), (String, bool)> {
        let object = &self.objects[index];
        let hook = self.hook(index);
        let probe = ObjectRef {
            api_version: object["apiVersion"].as_str().unwrap_or("").to_owned(),
            kind: object["kind"].as_str().unwrap_or("").to_owned(),
            namespace: None,
            name: String::new(),
        };
        let kind = self
            .cluster
            .kind(&probe)
            .await
            .map_err(|e| (format!("kind not resolved: {e}"), e.is_transient()))?;
        let hook_key = decide::hook_key(object);
        if decide::delete_before(&hook.delete)
            && let Some(old) = self.record.objects.get(&hook_key).cloned()
        {
            self.delete(&old, true, pass).await.map_err(|e| {
                (
                    format!("deleting the previous run's {}: {e}", old.object),
                    e.is_transient(),
                )
            })?;
            self.record.objects.remove(&hook_key);
        }
        let body = plan::with_creation_record(
            &decorate(object, self.marks, &kind, self.item.namespace.as_deref()),
            self.marks.app,
        );
        let namespace = body["metadata"]["namespace"].as_str();
        let created = self
            .cluster
            .create(&kind, namespace, &body)
            .await
            .map_err(|e| (format!("cannot create it: {e}"), e.is_transient()))?;
        pass.writes += 1;
        let reference =
            ObjectRef::of(&created).map_err(|e| (format!("the server's answer: {e}"), false))?;
        let uid = created["metadata"]["uid"]
            .as_str()
            .ok_or(("the server's answer has no uid".to_owned(), false))?
            .to_owned();
        info!(app = %self.item.app, %phase, object = %reference, "hook created");
        self.record.objects.insert(
            hook_key,
            CreatedHook {
                object: reference.clone(),
                uid: uid.clone(),
            },
        );
        self.record.runs.insert(
            key.to_owned(),
            HookRun {
                phase,
                object: reference,
                uid,
                state: RunState::Running,
                started_at: unix_now(),
            },
        );
        Ok(())
    }

    /// Watch a hook object until it succeeded or failed, at most until
    /// `deadline` (then it is still Running).
    async fn watch(&self, kind: &Kind, run: &HookRun, deadline: tokio::time::Instant) -> RunState {
        loop {
            match self.cluster.get(kind, &run.object).await {
                Ok(Some(live)) if live["metadata"]["uid"].as_str() != Some(run.uid.as_str()) => {
                    return RunState::Failed("replaced by another object of its name".into());
                }
                Ok(Some(live)) => {
                    let healthy = health::assess(&live).health == health::Health::Healthy;
                    match decide::run_state(&live, healthy) {
                        RunState::Running => {}
                        done => return done,
                    }
                }
                Ok(None) => return RunState::Failed("deleted before it finished".into()),
                Err(e) if !e.is_transient() => {
                    return RunState::Failed(format!("cannot read it: {e}"));
                }
                Err(_) => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return RunState::Running;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Delete a hook object this agent created, if it is still that object
    /// and carries our creation record; with `wait`, until it is gone.
    async fn delete(
        &self,
        created: &CreatedHook,
        wait: bool,
        pass: &mut Pass,
    ) -> Result<(), ClusterError> {
        let kind = self.cluster.kind(&created.object).await?;
        let Some(live) = self.cluster.get(&kind, &created.object).await? else {
            return Ok(());
        };
        if !decide::may_delete(self.marks.app, &live, &created.uid) {
            // Not the object we created: never deleted, just forgotten.
            return Ok(());
        }
        self.cluster
            .delete(&kind, &created.object, &created.uid)
            .await?;
        pass.writes += 1;
        info!(app = %self.item.app, object = %created.object, "hook object deleted");
        if !wait {
            return Ok(());
        }
        let deadline = tokio::time::Instant::now() + GONE_WAIT;
        loop {
            match self.cluster.get(&kind, &created.object).await? {
                Some(live) if live["metadata"]["uid"].as_str() == Some(created.uid.as_str()) => {}
                _ => return Ok(()),
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ClusterError::Api(format!(
                    "{} still there {} after its deletion",
                    created.object,
                    humantime::format_duration(GONE_WAIT)
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// One status row per hook run at this commit.
    pub(super) fn rows(&self) -> Vec<ResourceStatus> {
        self.record
            .runs
            .values()
            .map(|run| {
                let (health, message) = match &run.state {
                    RunState::Running => {
                        (Health::Progressing, format!("{} hook: Running", run.phase))
                    }
                    RunState::Succeeded => {
                        (Health::Healthy, format!("{} hook: Succeeded", run.phase))
                    }
                    RunState::Failed(why) => (
                        Health::Degraded,
                        format!("{} hook: Failed: {why}", run.phase),
                    ),
                };
                row(&run.object, SyncStatus::Synced, health, Some(message))
            })
            .collect()
    }
}

/// `Job migrate-` (a `generateName` prefix) or `Job migrate`.
fn describe_hook(object: &Value) -> String {
    format!(
        "{} {}",
        object["kind"].as_str().unwrap_or("object"),
        decide::hook_name(object)
    )
}

/// Wait (bounded) until none of `objects` is Progressing, Degraded or
/// Missing: a wave starts when the one before it is healthy. `Err` names
/// what is still not healthy.
pub(super) async fn wait_healthy(
    cluster: &Cluster,
    objects: &[ObjectRef],
    wait: Duration,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let mut waiting = Vec::new();
        for reference in objects {
            let health = match cluster.kind(reference).await {
                Ok(kind) => match cluster.get(&kind, reference).await {
                    Ok(Some(live)) => health::assess(&live).health,
                    Ok(None) => health::Health::Missing,
                    Err(_) => health::Health::Unknown,
                },
                Err(_) => health::Health::Unknown,
            };
            if gates(health) {
                waiting.push(format!("{reference} is {health:?}"));
            }
        }
        if waiting.is_empty() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(waiting.join(", "));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Whether an object of this health holds back the next wave.
pub(super) fn gates(health: health::Health) -> bool {
    matches!(
        health,
        health::Health::Progressing | health::Health::Degraded | health::Health::Missing
    )
}
