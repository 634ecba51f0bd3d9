//! Sync hooks and per-object sync options, as pure decisions: which objects
//! of a bundle are hooks (Argo CD's `argocd.argoproj.io/hook` and Helm's
//! `helm.sh/hook`), in which phase and order they run, what their delete
//! policy says after a run, whether a hook already ran for a commit, how far
//! a Job or Pod hook got, and what an object's sync options ask for.
//!
//! Hooks are kept out of the normal apply set: they are never compared,
//! never part of the app's inventory and never pruned as "removed from
//! Git". They run once per (app, commit); the engine records each run in
//! the app's applied state on disk, so a restart or a resync at the same
//! commit does not run them again.
//!
//! Annotations read (Argo CD's win over Helm's when both are set, as in
//! Argo CD):
//! - `argocd.argoproj.io/hook`: comma-separated `PreSync`, `Sync`,
//!   `PostSync`, `SyncFail`, `Skip` (the object is not applied at all).
//! - `helm.sh/hook`: `pre-install`/`pre-upgrade` run as PreSync,
//!   `post-install`/`post-upgrade` as PostSync; other Helm hooks (test,
//!   delete and rollback hooks) are unsupported: reported, never applied.
//! - order within a phase: the sync wave (`switchyard.dev/sync-wave`,
//!   `argocd.argoproj.io/sync-wave`), else `helm.sh/hook-weight`; default 0.
//! - `argocd.argoproj.io/hook-delete-policy` (`HookSucceeded`,
//!   `HookFailed`, `BeforeHookCreation`) or `helm.sh/hook-delete-policy`
//!   (`hook-succeeded`, `hook-failed`, `before-hook-creation`); none given
//!   means BeforeHookCreation, Argo CD's default.

use super::order;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;

/// Argo CD's hook annotation.
pub(crate) const ARGOCD_HOOK: &str = "argocd.argoproj.io/hook";
/// Helm's hook annotation.
pub(crate) const HELM_HOOK: &str = "helm.sh/hook";
/// Helm's order within a hook phase (Argo CD's is the sync wave).
pub(crate) const HELM_HOOK_WEIGHT: &str = "helm.sh/hook-weight";
/// Argo CD's hook delete policy annotation.
pub(crate) const ARGOCD_DELETE_POLICY: &str = "argocd.argoproj.io/hook-delete-policy";
/// Helm's hook delete policy annotation.
pub(crate) const HELM_DELETE_POLICY: &str = "helm.sh/hook-delete-policy";
/// Argo CD's compare options annotation (`IgnoreExtraneous`).
pub(crate) const COMPARE_OPTIONS: &str = "argocd.argoproj.io/compare-options";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HookError {
    #[error("{object}: unknown hook {value:?} in {annotation}")]
    UnknownHook {
        object: String,
        annotation: &'static str,
        value: String,
    },
    #[error("{object}: unknown hook delete policy {value:?} in {annotation}")]
    UnknownDeletePolicy {
        object: String,
        annotation: &'static str,
        value: String,
    },
    #[error("{object}: {annotation} must be an integer, got {value:?}")]
    InvalidWeight {
        object: String,
        annotation: &'static str,
        value: String,
    },
    #[error(transparent)]
    Wave(#[from] order::OrderError),
}

/// When a hook runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(crate) enum Phase {
    PreSync,
    Sync,
    PostSync,
    SyncFail,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::PreSync => "PreSync",
            Phase::Sync => "Sync",
            Phase::PostSync => "PostSync",
            Phase::SyncFail => "SyncFail",
        })
    }
}

/// When a hook object is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum DeletePolicy {
    /// After the hook succeeded.
    HookSucceeded,
    /// After the hook failed.
    HookFailed,
    /// Before the next run creates it again (the default).
    BeforeHookCreation,
}

/// A hook: the phases it runs in, its order and its delete policies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hook {
    pub(crate) phases: BTreeSet<Phase>,
    pub(crate) weight: i64,
    pub(crate) delete: BTreeSet<DeletePolicy>,
}

/// What an object of the bundle is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Role {
    /// Applied with the others, in its wave.
    Normal,
    /// A hook: run, not applied.
    Hook(Hook),
    /// `argocd.argoproj.io/hook: Skip`: never applied.
    Skip,
    /// A Helm hook Switchyard does not run (test, delete, rollback hooks):
    /// not applied, reported with this reason.
    Unsupported(String),
}

fn annotation<'a>(object: &'a Value, name: &str) -> Option<&'a str> {
    object.pointer("/metadata/annotations")?.get(name)?.as_str()
}

fn describe(object: &Value) -> String {
    format!(
        "{} {}",
        object["kind"].as_str().unwrap_or("object"),
        hook_name(object)
    )
}

/// The name a hook goes by: its name, or its `generateName` prefix.
pub(crate) fn hook_name(object: &Value) -> String {
    match object["metadata"]["name"].as_str() {
        Some(name) if !name.is_empty() => name.to_owned(),
        _ => object["metadata"]["generateName"]
            .as_str()
            .unwrap_or("")
            .to_owned(),
    }
}

fn items(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// What `object` is: a normal object, a hook, skipped or unsupported.
pub(crate) fn role(object: &Value) -> Result<Role, HookError> {
    let mut phases = BTreeSet::new();
    if let Some(text) = annotation(object, ARGOCD_HOOK) {
        for item in items(text) {
            phases.insert(match item {
                "PreSync" => Phase::PreSync,
                "Sync" => Phase::Sync,
                "PostSync" => Phase::PostSync,
                "SyncFail" => Phase::SyncFail,
                "Skip" => return Ok(Role::Skip),
                other => {
                    return Err(HookError::UnknownHook {
                        object: describe(object),
                        annotation: ARGOCD_HOOK,
                        value: other.to_owned(),
                    });
                }
            });
        }
    } else if let Some(text) = annotation(object, HELM_HOOK) {
        let mut unsupported = Vec::new();
        for item in items(text) {
            match item {
                "pre-install" | "pre-upgrade" => {
                    phases.insert(Phase::PreSync);
                }
                "post-install" | "post-upgrade" => {
                    phases.insert(Phase::PostSync);
                }
                other => unsupported.push(other),
            }
        }
        if phases.is_empty() && !unsupported.is_empty() {
            return Ok(Role::Unsupported(format!(
                "Helm hook {} is not supported (as in Argo CD); not applied",
                unsupported.join(",")
            )));
        }
    }
    if phases.is_empty() {
        return Ok(Role::Normal);
    }
    Ok(Role::Hook(Hook {
        phases,
        weight: weight(object)?,
        delete: delete_policies(object)?,
    }))
}

/// Order within a hook phase: the sync wave when one is set, else Helm's
/// hook weight, else 0.
fn weight(object: &Value) -> Result<i64, HookError> {
    let has_wave = [
        order::SYNC_WAVE_ANNOTATION,
        order::ARGOCD_SYNC_WAVE_ANNOTATION,
    ]
    .iter()
    .any(|name| annotation(object, name).is_some());
    if has_wave {
        return Ok(order::sync_wave(object)?);
    }
    match annotation(object, HELM_HOOK_WEIGHT) {
        None => Ok(0),
        Some(text) => text.trim().parse().map_err(|_| HookError::InvalidWeight {
            object: describe(object),
            annotation: HELM_HOOK_WEIGHT,
            value: text.to_owned(),
        }),
    }
}

fn delete_policies(object: &Value) -> Result<BTreeSet<DeletePolicy>, HookError> {
    let mut out = BTreeSet::new();
    let (name, text) = match (
        annotation(object, ARGOCD_DELETE_POLICY),
        annotation(object, HELM_DELETE_POLICY),
    ) {
        (Some(text), _) => (ARGOCD_DELETE_POLICY, text),
        (None, Some(text)) => (HELM_DELETE_POLICY, text),
        (None, None) => ("", ""),
    };
    for item in items(text) {
        out.insert(match item {
            "HookSucceeded" | "hook-succeeded" => DeletePolicy::HookSucceeded,
            "HookFailed" | "hook-failed" => DeletePolicy::HookFailed,
            "BeforeHookCreation" | "before-hook-creation" => DeletePolicy::BeforeHookCreation,
            other => {
                return Err(HookError::UnknownDeletePolicy {
                    object: describe(object),
                    annotation: if name == ARGOCD_DELETE_POLICY {
                        ARGOCD_DELETE_POLICY
                    } else {
                        HELM_DELETE_POLICY
                    },
                    value: other.to_owned(),
                });
            }
        });
    }
    if out.is_empty() {
        out.insert(DeletePolicy::BeforeHookCreation);
    }
    Ok(out)
}

/// The hooks of one phase as the engine runs them: groups of indices into
/// the bundle, by ascending weight; a group starts when the one before it
/// finished. Within a group, in bundle order.
pub(crate) fn run_order(hooks: &[(usize, Hook)], phase: Phase) -> Vec<Vec<usize>> {
    let mut of_phase: Vec<(i64, usize)> = hooks
        .iter()
        .filter(|(_, h)| h.phases.contains(&phase))
        .map(|(i, h)| (h.weight, *i))
        .collect();
    of_phase.sort();
    let mut groups: Vec<(i64, Vec<usize>)> = Vec::new();
    for (weight, index) in of_phase {
        match groups.last_mut() {
            Some((w, group)) if *w == weight => group.push(index),
            _ => groups.push((weight, vec![index])),
        }
    }
    groups.into_iter().map(|(_, g)| g).collect()
}

/// How far a hook run got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum RunState {
    Running,
    Succeeded,
    Failed(String),
}

/// The state of a hook object as the server returns it. A Job is done when
/// its `Complete` or `Failed` condition is True; a Pod when its phase is
/// Succeeded or Failed; any other kind succeeds once it was created (Argo
/// CD waits for its health; here `healthy` says it is).
pub(crate) fn run_state(live: &Value, healthy: bool) -> RunState {
    let condition = |kind: &str| {
        live["status"]["conditions"].as_array().and_then(|cs| {
            cs.iter()
                .find(|c| c["type"] == kind && c["status"] == "True")
        })
    };
    match (live["apiVersion"].as_str(), live["kind"].as_str()) {
        (Some("batch/v1"), Some("Job")) => {
            if let Some(c) = condition("Failed") {
                let why = c["message"]
                    .as_str()
                    .filter(|m| !m.is_empty())
                    .or(c["reason"].as_str())
                    .unwrap_or("job failed");
                RunState::Failed(format!("Job failed: {why}"))
            } else if condition("Complete").is_some() {
                RunState::Succeeded
            } else {
                RunState::Running
            }
        }
        (Some("v1"), Some("Pod")) => match live["status"]["phase"].as_str() {
            Some("Succeeded") => RunState::Succeeded,
            Some("Failed") => {
                let why = live["status"]["message"]
                    .as_str()
                    .or(live["status"]["reason"].as_str())
                    .unwrap_or("pod failed");
                RunState::Failed(format!("Pod failed: {why}"))
            }
            _ => RunState::Running,
        },
        _ if healthy => RunState::Succeeded,
        _ => RunState::Running,
    }
}

/// Whether a finished run's object is deleted now, by its delete policies.
pub(crate) fn delete_after(policies: &BTreeSet<DeletePolicy>, state: &RunState) -> bool {
    match state {
        RunState::Running => false,
        RunState::Succeeded => policies.contains(&DeletePolicy::HookSucceeded),
        RunState::Failed(_) => policies.contains(&DeletePolicy::HookFailed),
    }
}

/// Whether the object left by an earlier run is deleted before this run
/// creates the hook again.
pub(crate) fn delete_before(policies: &BTreeSet<DeletePolicy>) -> bool {
    policies.contains(&DeletePolicy::BeforeHookCreation)
}

/// The key a hook's objects are recorded under: kind, namespace and name
/// (or `generateName` prefix). The object one run left is found by it, so
/// BeforeHookCreation deletes it before the next run of any phase.
pub(crate) fn hook_key(object: &Value) -> String {
    format!(
        "{}/{}/{}",
        object["kind"].as_str().unwrap_or(""),
        object["metadata"]["namespace"].as_str().unwrap_or(""),
        hook_name(object)
    )
}

/// The key a hook run is recorded under: its phase and [`hook_key`], so
/// two hooks of one commit never share one.
pub(crate) fn run_key(object: &Value, phase: Phase) -> String {
    format!("{phase}/{}", hook_key(object))
}

/// Whether the hook object `live` may be deleted by `app`: only one this
/// agent created, which carries the app's creation record and the uid
/// recorded when the server answered the create (docs/SECURITY.md).
pub(crate) fn may_delete(app: &str, live: &Value, recorded_uid: &str) -> bool {
    live.pointer("/metadata/annotations")
        .and_then(|a| a.get(super::plan::CREATED_BY_ANNOTATION))
        .and_then(Value::as_str)
        == Some(app)
        && live["metadata"]["uid"].as_str() == Some(recorded_uid)
}

/// Sync options an object asks for, from `switchyard.dev/sync-options` and
/// `argocd.argoproj.io/sync-options` (comma separated), and Argo CD's
/// compare options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SyncOptions {
    /// `Replace=true`: written by replace (PUT) instead of apply.
    pub(crate) replace: bool,
    /// `Prune=false` or `Delete=false` (see `plan::keep_option`).
    pub(crate) keep: bool,
    /// `IgnoreExtraneous` compare option.
    pub(crate) ignore_extraneous: bool,
    /// Options not understood, as written: reported, never ignored silently.
    pub(crate) unknown: Vec<String>,
}

/// Options accepted here and read where they act (`Prune=confirm` by
/// `plan::plan_prune`, `PruneLast=true` by the engine's prune), or meaning
/// nothing more here: server-side apply is always on, dry runs are not part
/// of a pass, validation is the API server's, and an object's
/// `CreateNamespace` is the app's setting (docs/MIGRATING.md).
const ACCEPTED: &[&str] = &[
    "Prune=confirm",
    "ServerSideApply=true",
    "CreateNamespace=true",
    "PruneLast=true",
    "Validate=false",
    "Validate=true",
    "SkipDryRunOnMissingResource=true",
    "Prune=true",
    "Delete=true",
    "Replace=false",
    "PruneLast=false",
    "CreateNamespace=false",
];

/// The sync options of `object`.
pub(crate) fn sync_options(object: &Value) -> SyncOptions {
    let mut out = SyncOptions::default();
    for name in super::plan::SYNC_OPTIONS_ANNOTATIONS {
        let Some(text) = annotation(object, name) else {
            continue;
        };
        for item in items(text) {
            match item {
                "Replace=true" => out.replace = true,
                "Prune=false" | "Delete=false" => out.keep = true,
                known if ACCEPTED.contains(&known) => {}
                other => out.unknown.push(format!("{name}: {other}")),
            }
        }
    }
    if let Some(text) = annotation(object, COMPARE_OPTIONS) {
        for item in items(text) {
            match item {
                "IgnoreExtraneous" => out.ignore_extraneous = true,
                other => out.unknown.push(format!("{COMPARE_OPTIONS}: {other}")),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(annotations: Value) -> Value {
        json!({"apiVersion": "batch/v1", "kind": "Job",
               "metadata": {"name": "migrate", "annotations": annotations}})
    }

    fn hook(annotations: Value) -> Hook {
        match role(&object(annotations)).unwrap() {
            Role::Hook(h) => h,
            other => panic!("not a hook: {other:?}"),
        }
    }

    #[test]
    fn argo_hooks_phases_and_default_delete_policy() {
        assert_eq!(role(&object(json!({}))).unwrap(), Role::Normal);
        let h = hook(json!({ARGOCD_HOOK: "PreSync"}));
        assert_eq!(h.phases, [Phase::PreSync].into());
        assert_eq!(h.weight, 0);
        assert_eq!(h.delete, [DeletePolicy::BeforeHookCreation].into());
        let h = hook(json!({ARGOCD_HOOK: "PreSync, PostSync",
            ARGOCD_DELETE_POLICY: "HookSucceeded,HookFailed",
            order::ARGOCD_SYNC_WAVE_ANNOTATION: "-2"}));
        assert_eq!(h.phases, [Phase::PreSync, Phase::PostSync].into());
        assert_eq!(h.weight, -2);
        assert_eq!(
            h.delete,
            [DeletePolicy::HookSucceeded, DeletePolicy::HookFailed].into()
        );
        assert_eq!(
            hook(json!({ARGOCD_HOOK: "SyncFail"})).phases,
            [Phase::SyncFail].into()
        );
        assert_eq!(
            role(&object(json!({ARGOCD_HOOK: "Skip"}))).unwrap(),
            Role::Skip
        );
        assert!(matches!(
            role(&object(json!({ARGOCD_HOOK: "PreSink"}))),
            Err(HookError::UnknownHook { .. })
        ));
        assert!(matches!(
            role(&object(
                json!({ARGOCD_HOOK: "Sync", ARGOCD_DELETE_POLICY: "Never"})
            )),
            Err(HookError::UnknownDeletePolicy { .. })
        ));
    }

    #[test]
    fn helm_hooks_map_to_phases_and_others_are_unsupported() {
        let h = hook(json!({HELM_HOOK: "pre-install,pre-upgrade",
            HELM_HOOK_WEIGHT: "5", HELM_DELETE_POLICY: "hook-succeeded"}));
        assert_eq!(h.phases, [Phase::PreSync].into());
        assert_eq!(h.weight, 5);
        assert_eq!(h.delete, [DeletePolicy::HookSucceeded].into());
        assert_eq!(
            hook(json!({HELM_HOOK: "post-upgrade"})).phases,
            [Phase::PostSync].into()
        );
        match role(&object(json!({HELM_HOOK: "test"}))).unwrap() {
            Role::Unsupported(why) => assert!(why.contains("test"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            role(&object(
                json!({HELM_HOOK: "pre-install", HELM_HOOK_WEIGHT: "x"})
            )),
            Err(HookError::InvalidWeight { .. })
        ));
        // Argo CD's annotation wins over Helm's.
        assert_eq!(
            hook(json!({HELM_HOOK: "pre-install", ARGOCD_HOOK: "PostSync"})).phases,
            [Phase::PostSync].into()
        );
        // A sync wave wins over the hook weight.
        assert_eq!(
            hook(json!({HELM_HOOK: "pre-install", HELM_HOOK_WEIGHT: "5",
                order::ARGOCD_SYNC_WAVE_ANNOTATION: "1"}))
            .weight,
            1
        );
    }

    #[test]
    fn hooks_run_by_weight_within_their_phase() {
        let h = |phase: Phase, weight: i64| Hook {
            phases: [phase].into(),
            weight,
            delete: BTreeSet::new(),
        };
        let hooks = vec![
            (0, h(Phase::PreSync, 1)),
            (1, h(Phase::PostSync, 0)),
            (2, h(Phase::PreSync, -1)),
            (3, h(Phase::PreSync, 1)),
        ];
        assert_eq!(run_order(&hooks, Phase::PreSync), vec![vec![2], vec![0, 3]]);
        assert_eq!(run_order(&hooks, Phase::PostSync), vec![vec![1]]);
        assert!(run_order(&hooks, Phase::SyncFail).is_empty());
    }

    #[test]
    fn job_and_pod_run_states() {
        let job = |conditions: Value| json!({"apiVersion": "batch/v1", "kind": "Job", "status": {"conditions": conditions}});
        assert_eq!(run_state(&job(json!([])), false), RunState::Running);
        assert_eq!(
            run_state(&job(json!([{"type": "Complete", "status": "True"}])), false),
            RunState::Succeeded
        );
        assert_eq!(
            run_state(
                &job(
                    json!([{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}])
                ),
                false
            ),
            RunState::Failed("Job failed: BackoffLimitExceeded".into())
        );
        let pod =
            |phase: &str| json!({"apiVersion": "v1", "kind": "Pod", "status": {"phase": phase}});
        assert_eq!(run_state(&pod("Running"), true), RunState::Running);
        assert_eq!(run_state(&pod("Succeeded"), false), RunState::Succeeded);
        assert!(matches!(
            run_state(&pod("Failed"), false),
            RunState::Failed(_)
        ));
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap"});
        assert_eq!(run_state(&cm, true), RunState::Succeeded);
        assert_eq!(run_state(&cm, false), RunState::Running);
    }

    #[test]
    fn delete_policies_decide_after_and_before_a_run() {
        let ok = [DeletePolicy::HookSucceeded].into();
        assert!(delete_after(&ok, &RunState::Succeeded));
        assert!(!delete_after(&ok, &RunState::Failed("x".into())));
        assert!(!delete_after(&ok, &RunState::Running));
        let failed = [DeletePolicy::HookFailed].into();
        assert!(delete_after(&failed, &RunState::Failed("x".into())));
        assert!(!delete_before(&failed));
        assert!(delete_before(&[DeletePolicy::BeforeHookCreation].into()));
    }

    #[test]
    fn only_hook_objects_this_agent_created_may_be_deleted() {
        let live = |by: &str, uid: &str| json!({"metadata": {"uid": uid, "annotations": {super::super::plan::CREATED_BY_ANNOTATION: by}}});
        assert!(may_delete("web", &live("web", "u-1"), "u-1"));
        // Another object now has the name (another uid), or another app's.
        assert!(!may_delete("web", &live("web", "u-2"), "u-1"));
        assert!(!may_delete("web", &live("api", "u-1"), "u-1"));
        assert!(!may_delete(
            "web",
            &json!({"metadata": {"uid": "u-1"}}),
            "u-1"
        ));
    }

    #[test]
    fn generate_name_names_the_hook() {
        let j =
            json!({"kind": "Job", "metadata": {"generateName": "migrate-", "namespace": "web"}});
        assert_eq!(hook_name(&j), "migrate-");
        assert_eq!(run_key(&j, Phase::PreSync), "PreSync/Job/web/migrate-");
    }

    #[test]
    fn sync_options_are_read_from_both_annotations_and_unknown_ones_kept() {
        let o = sync_options(&object(json!({
            "argocd.argoproj.io/sync-options": "Replace=true, PruneLast=true,Validate=false,Frobnicate=yes",
            "switchyard.dev/sync-options": "Prune=confirm,CreateNamespace=true,ServerSideApply=true",
            COMPARE_OPTIONS: "IgnoreExtraneous",
        })));
        assert!(o.ignore_extraneous && o.replace && !o.keep);
        assert_eq!(
            o.unknown,
            vec!["argocd.argoproj.io/sync-options: Frobnicate=yes".to_owned()]
        );
        assert!(
            sync_options(&object(
                json!({"argocd.argoproj.io/sync-options": "Delete=false"})
            ))
            .keep
        );
        assert_eq!(sync_options(&object(json!({}))), SyncOptions::default());
    }
}
