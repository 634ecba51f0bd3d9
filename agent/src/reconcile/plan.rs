//! The reconciler's decisions for one app, as pure functions of the desired
//! objects, what the cluster holds, what the app recorded and its options:
//! create, apply, leave alone (with the reason), prune, keep, release, and
//! what to do on a field-manager conflict. No I/O: the applier (engine.rs)
//! reads the cluster, asks these functions and executes what they return.
//!
//! The rules (docs/SECURITY.md, "What the agent deletes"):
//! - only a readable desired state prunes ([`plan_prunes`] is only asked
//!   when every desired object was resolved);
//! - Switchyard deletes only objects it created: the object carries
//!   [`CREATED_BY_ANNOTATION`] naming the app *and* the app's record holds
//!   the object's uid, written when the server answered 201 to our create;
//! - a pre-existing object is written only when the app opts in (adopt), and
//!   an adopted object is never deleted;
//! - Namespaces and CRDs are deleted only when the app allows it;
//! - an object labelled for another app is a conflict, never written;
//! - fields another field manager owns are taken over only when they were
//!   ours before (self-heal) or the app opts in (force-conflicts).

use super::cluster::{FieldConflict, ObjectRef};
use super::compare;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;
use switchyard_common::proto::{AssignmentItem, IgnoreRule, SyncStatus};

/// Label naming the app an object belongs to.
pub(crate) const APP_LABEL: &str = "switchyard.dev/app";
/// Written only on objects an app created (the server answered 201 to the
/// create), naming the app; with the uid in the app's record, the only
/// thing that lets prune or app deletion delete an object.
pub(crate) const CREATED_BY_ANNOTATION: &str = "switchyard.dev/created-by";
/// On a manifest: `"true"` lets the app adopt the object if it exists.
pub(crate) const ADOPT_ANNOTATION: &str = "switchyard.dev/adopt";

/// An app's policy, from its assignment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Options {
    pub(crate) prune: bool,
    pub(crate) self_heal: bool,
    pub(crate) adopt: bool,
    pub(crate) prune_namespaces: bool,
    pub(crate) prune_crds: bool,
    pub(crate) force_conflicts: bool,
    /// Fields left to others (`ignore`).
    pub(crate) ignore_differences: Arc<[IgnoreRule]>,
    /// An operator confirmed the prune of `Prune=confirm` objects for the
    /// commit being applied (`switchyard app sync APP --prune`).
    pub(crate) prune_confirmed: bool,
    /// Every object is pruned last (the app's `PruneLast=true`).
    pub(crate) prune_last: bool,
}

impl From<&AssignmentItem> for Options {
    fn from(item: &AssignmentItem) -> Self {
        Options {
            prune: item.prune,
            self_heal: item.self_heal,
            adopt: item.ownership.adopt,
            prune_namespaces: item.ownership.prune_namespaces,
            prune_crds: item.ownership.prune_crds,
            force_conflicts: item.ownership.force_conflicts,
            ignore_differences: item.ignore_differences.clone().into(),
            // A confirmation names the commit it was given for: it never
            // carries over to a later one.
            prune_confirmed: item.prune_confirmed.as_deref() == Some(item.commit.as_str()),
            prune_last: item.prune_last,
        }
    }
}

/// What the app recorded about one desired object.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Record {
    /// The app's desired state changed since its last pass (new bundle).
    pub(crate) new_desired: bool,
    /// The last write of this object failed: retried even without self-heal.
    pub(crate) retrying: bool,
}

/// What to do with one desired object.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    /// Absent: create it with the creation record in `body`, without force.
    Create { body: Value },
    /// Ours (created or adopted earlier), or adopted now: apply `body`.
    Apply { body: Value, adopting: bool },
    /// Ours and holding every desired field: nothing to write.
    InSync,
    /// Left as it is; reported with `sync` and `reason`. `ours` says
    /// whether the object still belongs to the app's inventory.
    Skip {
        sync: SyncStatus,
        reason: String,
        ours: bool,
    },
}

fn owner_app(live: &Value) -> Option<&str> {
    live["metadata"]["labels"][APP_LABEL].as_str()
}

fn created_by(live: &Value) -> Option<&str> {
    live["metadata"]["annotations"][CREATED_BY_ANNOTATION].as_str()
}

fn wants_adoption(body: &Value, options: &Options) -> bool {
    options.adopt || body["metadata"]["annotations"][ADOPT_ANNOTATION].as_str() == Some("true")
}

/// `body` with the creation record naming `app`.
pub(crate) fn with_creation_record(body: &Value, app: &str) -> Value {
    let mut body = body.clone();
    if let Some(metadata) = body.get_mut("metadata").and_then(Value::as_object_mut) {
        let annotations = metadata.entry("annotations").or_insert_with(|| json!({}));
        if let Some(map) = annotations.as_object_mut() {
            map.insert(CREATED_BY_ANNOTATION.into(), Value::String(app.to_owned()));
        }
    }
    body
}

/// Decide what to do with one desired object. `body` is the object as the
/// app applies it (with its marks, without a creation record); `live` the
/// object on the cluster, if any.
pub(crate) fn plan_object(
    app: &str,
    body: &Value,
    live: Option<&Value>,
    record: Record,
    options: &Options,
) -> Step {
    let may_write = record.new_desired || options.self_heal || record.retrying;
    let Some(live) = live else {
        if !may_write {
            return Step::Skip {
                sync: SyncStatus::OutOfSync,
                reason: "deleted outside Git; self-heal is off, so it stays deleted".into(),
                ours: true,
            };
        }
        return Step::Create {
            body: with_creation_record(body, app),
        };
    };
    // The app's ignore rules name fields that belong to someone else: an
    // apply of any existing object (ours, or adopted now) writes back
    // their live values, so adoption does not take them over either.
    let respect = |body: Value| {
        super::ignore::respect(&body, live, &options.ignore_differences).unwrap_or(body)
    };
    match owner_app(live) {
        Some(other) if other != app => Step::Skip {
            sync: SyncStatus::OutOfSync,
            reason: format!("conflict: belongs to app {other}; not touched"),
            ours: false,
        },
        Some(_) => {
            // Keep the creation record on objects we created: an apply
            // without it would make the server drop it.
            let body = if created_by(live) == Some(app) {
                with_creation_record(body, app)
            } else {
                body.clone()
            };
            let body = respect(body);
            if compare::is_applied(&body, live) {
                Step::InSync
            } else if !may_write {
                Step::Skip {
                    sync: SyncStatus::OutOfSync,
                    reason: format!(
                        "changed outside Git: {}",
                        compare::drift(&body, live).join("; ")
                    ),
                    ours: true,
                }
            } else {
                Step::Apply {
                    body,
                    adopting: false,
                }
            }
        }
        None if wants_adoption(body, options) => Step::Apply {
            body: respect(body.clone()),
            adopting: true,
        },
        None => Step::Skip {
            sync: SyncStatus::OutOfSync,
            reason: "exists and was not created by Switchyard; not adopted (set --adopt on the app, or annotate the manifest switchyard.dev/adopt: \"true\")".into(),
            ours: false,
        },
    }
}

/// What to do about the app's `--namespace` (the namespace its namespaced
/// objects default into) when the bundle does not list it itself. It goes
/// the way of every other object: created with the creation record, the
/// app's only if the server answered 201; one that was there before is
/// used as it is, never labelled, adopted or deleted.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AppNamespace {
    /// Absent: create it with the creation record in `body`.
    Create { body: Value },
    /// This app created it (its creation record is on it and the app
    /// recorded its uid): it stays in the app's inventory.
    Ours,
    /// It carries this app's creation record, but the app never recorded
    /// its uid (a create answered 200 whose undo failed, or a lost record):
    /// apply `body`, the identity only, so the server drops our fields.
    Withdraw { body: Value },
    /// Someone else's, or there before Switchyard: used, not touched.
    NotOurs,
    /// Absent, and the app does not create it (`--create-namespace=false`):
    /// the app fails, nothing is created.
    Missing,
}

/// Decide about the app's namespace. `body` is the Namespace as the app
/// would create it (with its marks, without a creation record); `live` the
/// Namespace on the cluster; `created_uid` the uid the app recorded when
/// its create was answered 201; `create` the app's `createNamespace`.
pub(crate) fn plan_app_namespace(
    app: &str,
    body: &Value,
    live: Option<&Value>,
    created_uid: Option<&str>,
    create: bool,
) -> AppNamespace {
    let Some(live) = live else {
        if !create {
            return AppNamespace::Missing;
        }
        return AppNamespace::Create {
            body: with_creation_record(body, app),
        };
    };
    let ours = created_by(live) == Some(app);
    let uid = live["metadata"]["uid"].as_str();
    match (ours, uid, created_uid) {
        (true, Some(uid), Some(recorded)) if uid == recorded && owner_app(live) == Some(app) => {
            AppNamespace::Ours
        }
        (true, _, _) => AppNamespace::Withdraw {
            body: identity_only(body),
        },
        _ => AppNamespace::NotOurs,
    }
}

/// What to do when our create found the object already there (the server
/// answered 200, not 201: someone created it between our read and our
/// write). The creation record we just wrote must not stay on it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FoundExisting {
    /// The app adopts it: apply `body` (no creation record) over it.
    Adopt { body: Value },
    /// Not adopted: apply `body`, which holds only the object's identity,
    /// so the server removes every field only our write set.
    Withdraw { body: Value },
}

pub(crate) fn plan_found_existing(body: &Value, options: &Options) -> FoundExisting {
    if wants_adoption(body, options) {
        return FoundExisting::Adopt { body: body.clone() };
    }
    FoundExisting::Withdraw {
        body: identity_only(body),
    }
}

/// An apply body naming only the object: applied by our field manager, it
/// makes the server drop every field only we set.
pub(crate) fn identity_only(body: &Value) -> Value {
    let mut metadata = serde_json::Map::new();
    for key in ["name", "namespace"] {
        if let Some(v) = body["metadata"].get(key) {
            metadata.insert(key.into(), v.clone());
        }
    }
    json!({
        "apiVersion": body["apiVersion"],
        "kind": body["kind"],
        "metadata": metadata,
    })
}

/// What to do after an apply was refused for fields other managers own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OnConflict {
    /// Apply again with force.
    Force,
    /// Leave the object; report this.
    Report(String),
}

/// Force only when the app opts in, or when every conflicting field is one
/// Switchyard applied before (`owned`: paths of our last successful apply),
/// which is self-heal of drift on our own fields.
pub(crate) fn plan_conflict(
    conflicts: &[FieldConflict],
    owned: Option<&BTreeSet<String>>,
    options: &Options,
) -> OnConflict {
    if options.force_conflicts {
        return OnConflict::Force;
    }
    let ours = |field: &str| owned.is_some_and(|o| o.iter().any(|p| covers(p, field)));
    if !conflicts.is_empty() && conflicts.iter().all(|c| ours(&c.field)) {
        return OnConflict::Force;
    }
    let list: Vec<String> = conflicts
        .iter()
        .map(|c| format!("{} (owned by {})", c.field, c.manager))
        .collect();
    OnConflict::Report(format!(
        "conflict: {} not overwritten; set --force-conflicts on the app to take them over",
        list.join(", ")
    ))
}

/// Whether our applied path `owned` (`.spec.containers`) covers the
/// conflicting server path `field` (`.spec.containers[name="web"].image`).
fn covers(owned: &str, field: &str) -> bool {
    field == owned
        || field
            .strip_prefix(owned)
            .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
}

/// The field paths an apply of `body` sets, as the server names them
/// (`.spec.replicas`), lists as one field: what we record as ours.
pub(crate) fn applied_fields(body: &Value) -> BTreeSet<String> {
    fn walk(value: &Value, path: &str, out: &mut BTreeSet<String>) {
        match value {
            Value::Object(map) if !map.is_empty() => {
                for (key, v) in map {
                    walk(v, &format!("{path}.{key}"), out);
                }
            }
            _ => {
                out.insert(path.to_owned());
            }
        }
    }
    let mut out = BTreeSet::new();
    if let Value::Object(map) = body {
        for (key, v) in map {
            if matches!(key.as_str(), "apiVersion" | "kind" | "status") {
                continue;
            }
            walk(v, &format!(".{key}"), &mut out);
        }
    }
    out
}

/// What to do with an object the app applied before and Git no longer has.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Prune {
    /// Delete it, on condition that it still has this uid.
    Delete { uid: String },
    /// It is gone, or no longer the app's: forget it.
    Gone,
    /// Leave it and keep reporting it (the app's policy forbids deleting).
    Keep(String),
    /// Leave it and forget it: it was never created by Switchyard.
    Release(String),
}

/// Decide whether an object that left Git is deleted. `created_uid` is the
/// uid the app recorded when its create was answered 201.
pub(crate) fn plan_prune(
    app: &str,
    reference: &ObjectRef,
    live: Option<&Value>,
    created_uid: Option<&str>,
    options: &Options,
) -> Prune {
    let Some(live) = live else {
        return Prune::Gone;
    };
    if owner_app(live) != Some(app) {
        return Prune::Gone;
    }
    if !options.prune {
        return Prune::Keep("removed from Git; prune is off, so it stays".into());
    }
    if let Some(option) = keep_option(live) {
        return Prune::Keep(format!(
            "removed from Git; its sync-options say {option}, so it stays"
        ));
    }
    if confirm_option(live) && !options.prune_confirmed {
        return Prune::Keep(format!(
            "removed from Git; its sync-options say Prune=confirm: prune waits for confirmation: switchyard app sync {app} --prune"
        ));
    }
    if reference.kind == "Namespace" && !options.prune_namespaces {
        return Prune::Keep(
            "removed from Git; a Namespace takes everything inside along, so it is pruned only with --prune-namespaces".into(),
        );
    }
    if reference.kind == "CustomResourceDefinition" && !options.prune_crds {
        return Prune::Keep(
            "removed from Git; a CustomResourceDefinition takes every object of its kind along, so it is pruned only with --prune-crds".into(),
        );
    }
    let uid = live["metadata"]["uid"].as_str();
    match (created_by(live), created_uid, uid) {
        (Some(by), Some(recorded), Some(uid)) if by == app && recorded == uid => Prune::Delete {
            uid: uid.to_owned(),
        },
        _ => Prune::Release(
            "removed from Git; not created by Switchyard (it existed before, or was adopted), so it is never deleted".into(),
        ),
    }
}

/// Annotations whose comma-separated sync options an object may carry:
/// Switchyard's own and Argo CD's, so repositories written for Argo CD keep
/// the objects they protect.
pub(crate) const SYNC_OPTIONS_ANNOTATIONS: [&str; 2] = [
    "switchyard.dev/sync-options",
    "argocd.argoproj.io/sync-options",
];

/// The sync option on the live object that forbids deleting it, if any:
/// `Prune=false` or `Delete=false`. Both keep the object when it leaves Git
/// and when its app is removed (Argo CD keeps `Prune=false` objects only
/// from prune; keeping them on app removal too never deletes more).
fn keep_option(live: &Value) -> Option<&'static str> {
    let options: Vec<&str> = sync_option_items(live).collect();
    ["Prune=false", "Delete=false"]
        .into_iter()
        .find(|keep| options.contains(keep))
}

/// Whether the live object asks for `PruneLast=true`: pruned in a final
/// implicit wave, once every other object of the app is healthy.
pub(crate) fn prune_last(live: &Value) -> bool {
    sync_option_items(live).any(|o| o == "PruneLast=true")
}

/// Whether the live object asks for `Prune=confirm`: deleted only once an
/// operator confirmed the prune for the commit being applied.
pub(crate) fn confirm_option(live: &Value) -> bool {
    sync_option_items(live).any(|o| o == "Prune=confirm")
}

fn sync_option_items(live: &Value) -> impl Iterator<Item = &str> {
    let annotations = live.pointer("/metadata/annotations");
    SYNC_OPTIONS_ANNOTATIONS
        .iter()
        .filter_map(move |name| annotations?.get(*name)?.as_str())
        .flat_map(|text| text.split(','))
        .map(str::trim)
}

/// The objects of the last inventory that left Git, or why nothing may be
/// pruned this pass: while any desired object's identity or kind is
/// unresolved (bad manifest, failed discovery), it could be any of them.
pub(crate) fn prune_candidates(
    previous: &BTreeSet<ObjectRef>,
    desired: &BTreeSet<ObjectRef>,
    unresolved: usize,
) -> Result<Vec<ObjectRef>, String> {
    if unresolved > 0 {
        return Err(format!(
            "prune skipped: {unresolved} object(s) of the bundle could not be resolved"
        ));
    }
    Ok(previous.difference(desired).cloned().collect())
}

/// The apps applied before that the assignment no longer lists. `assigned`
/// is `None` when the assignment cannot be read: then no app is unassigned.
/// An assigned app whose bundle cannot be read is still assigned.
pub(crate) fn unassigned<'a>(
    applied: impl IntoIterator<Item = &'a String>,
    assigned: Option<&BTreeSet<&str>>,
) -> Vec<String> {
    let Some(assigned) = assigned else {
        return Vec::new();
    };
    applied
        .into_iter()
        .filter(|app| !assigned.contains(app.as_str()))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> Options {
        Options {
            prune: true,
            ..Options::default()
        }
    }

    fn fresh() -> Record {
        Record {
            new_desired: true,
            retrying: false,
        }
    }

    fn cm(labels: Value, annotations: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "c", "namespace": "web", "uid": "u-1", "labels": labels, "annotations": annotations},
               "data": {"k": "v"}})
    }

    fn desired() -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "c", "namespace": "web", "labels": {APP_LABEL: "web"}},
               "data": {"k": "v"}})
    }

    fn reference(kind: &str) -> ObjectRef {
        ObjectRef {
            api_version: "v1".into(),
            kind: kind.into(),
            namespace: None,
            name: "c".into(),
        }
    }

    #[test]
    fn the_apps_namespace_is_the_apps_only_if_it_created_it() {
        let body = json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "web", "labels": {APP_LABEL: "web"}}});
        let live = |labels: Value, annotations: Value| {
            json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": "web", "uid": "u-1", "labels": labels, "annotations": annotations}})
        };
        // Absent, and the app does not create it: missing, nothing created.
        assert_eq!(
            plan_app_namespace("web", &body, None, None, false),
            AppNamespace::Missing
        );
        // Absent: created with the creation record.
        match plan_app_namespace("web", &body, None, None, true) {
            AppNamespace::Create { body } => assert_eq!(
                body["metadata"]["annotations"][CREATED_BY_ANNOTATION],
                "web"
            ),
            other => panic!("{other:?}"),
        }
        // There before: not touched, whatever the app recorded.
        let foreign = live(json!({"team": "other"}), json!({}));
        assert_eq!(
            plan_app_namespace("web", &body, Some(&foreign), None, true),
            AppNamespace::NotOurs
        );
        assert_eq!(
            plan_app_namespace("web", &body, Some(&foreign), Some("u-1"), true),
            AppNamespace::NotOurs
        );
        // Created by this app, the uid recorded: the app's.
        let created = live(
            json!({APP_LABEL: "web"}),
            json!({CREATED_BY_ANNOTATION: "web"}),
        );
        assert_eq!(
            plan_app_namespace("web", &body, Some(&created), Some("u-1"), true),
            AppNamespace::Ours
        );
        // Our record on it but not our uid (recreated by someone, or a
        // create answered 200): the record is withdrawn, nothing else.
        for recorded in [None, Some("u-0")] {
            match plan_app_namespace("web", &body, Some(&created), recorded, true) {
                AppNamespace::Withdraw { body } => {
                    assert_eq!(
                        body,
                        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "web"}})
                    )
                }
                other => panic!("{recorded:?}: {other:?}"),
            }
        }
        // Another app's: not touched.
        let other = live(
            json!({APP_LABEL: "shop"}),
            json!({CREATED_BY_ANNOTATION: "shop"}),
        );
        assert_eq!(
            plan_app_namespace("web", &body, Some(&other), Some("u-1"), true),
            AppNamespace::NotOurs
        );
    }

    #[test]
    fn an_unreadable_desired_state_prunes_nothing() {
        let apps = ["web".to_string(), "shop".to_string()];
        // Unreadable assignment: nothing unassigned.
        assert!(unassigned(&apps, None).is_empty());
        // Readable: only what it no longer lists (web's bundle may be
        // unreadable; it is still listed, so still assigned).
        let listed: BTreeSet<&str> = ["web"].into();
        assert_eq!(unassigned(&apps, Some(&listed)), ["shop"]);
        // A kind that failed discovery (or a malformed object) leaves the
        // desired set incomplete: no prune candidates at all.
        let a = reference("ConfigMap");
        let mut b = reference("Secret");
        b.name = "b".into();
        let previous: BTreeSet<ObjectRef> = [a.clone(), b.clone()].into();
        let desired: BTreeSet<ObjectRef> = [a.clone()].into();
        assert_eq!(prune_candidates(&previous, &desired, 0), Ok(vec![b]));
        assert!(prune_candidates(&previous, &desired, 1).is_err());
        assert!(prune_candidates(&previous, &BTreeSet::new(), 1).is_err());
    }

    #[test]
    fn an_absent_object_is_created_with_the_creation_record() {
        let step = plan_object("web", &desired(), None, fresh(), &options());
        let Step::Create { body } = step else {
            panic!("{step:?}")
        };
        assert_eq!(
            body["metadata"]["annotations"][CREATED_BY_ANNOTATION],
            "web"
        );
        // Deleted outside Git, self-heal off, same bundle: reported only.
        let old = Record::default();
        assert!(matches!(
            plan_object("web", &desired(), None, old, &options()),
            Step::Skip { ours: true, .. }
        ));
    }

    #[test]
    fn a_pre_existing_object_is_skipped_unless_adopted() {
        let live = cm(json!({}), json!({}));
        let step = plan_object("web", &desired(), Some(&live), fresh(), &options());
        assert!(
            matches!(&step, Step::Skip { ours: false, reason, .. } if reason.contains("not adopted")),
            "{step:?}"
        );
        let adopt = Options {
            adopt: true,
            ..options()
        };
        let step = plan_object("web", &desired(), Some(&live), fresh(), &adopt);
        let Step::Apply {
            body,
            adopting: true,
        } = step
        else {
            panic!("{step:?}")
        };
        // Adoption never writes a creation record.
        assert!(body["metadata"]["annotations"][CREATED_BY_ANNOTATION].is_null());
        // The manifest may opt in by itself.
        let mut annotated = desired();
        annotated["metadata"]["annotations"] = json!({ADOPT_ANNOTATION: "true"});
        assert!(matches!(
            plan_object("web", &annotated, Some(&live), fresh(), &options()),
            Step::Apply { adopting: true, .. }
        ));
    }

    #[test]
    fn adoption_leaves_the_fields_ignore_rules_name_as_they_are() {
        let mut live = cm(json!({}), json!({}));
        live["data"]["k"] = json!("theirs");
        let adopt = Options {
            adopt: true,
            ignore_differences: vec![IgnoreRule {
                group: String::new(),
                kind: "ConfigMap".into(),
                json_pointers: vec!["/data/k".into()],
                ..Default::default()
            }]
            .into(),
            ..options()
        };
        let step = plan_object("web", &desired(), Some(&live), fresh(), &adopt);
        let Step::Apply {
            body,
            adopting: true,
        } = step
        else {
            panic!("{step:?}")
        };
        assert_eq!(body["data"]["k"], "theirs", "{body}");
    }

    #[test]
    fn another_apps_object_is_a_conflict_and_left_alone() {
        let live = cm(json!({APP_LABEL: "shop"}), json!({}));
        for opts in [
            options(),
            Options {
                adopt: true,
                force_conflicts: true,
                ..options()
            },
        ] {
            let step = plan_object("web", &desired(), Some(&live), fresh(), &opts);
            assert!(
                matches!(&step, Step::Skip { ours: false, reason, .. } if reason.contains("belongs to app shop")),
                "{step:?}"
            );
        }
        let prune = plan_prune(
            "web",
            &reference("ConfigMap"),
            Some(&live),
            Some("u-1"),
            &options(),
        );
        assert_eq!(prune, Prune::Gone);
    }

    #[test]
    fn our_objects_keep_their_creation_record_and_no_op_when_applied() {
        let live = cm(
            json!({APP_LABEL: "web"}),
            json!({CREATED_BY_ANNOTATION: "web"}),
        );
        assert_eq!(
            plan_object("web", &desired(), Some(&live), fresh(), &options()),
            Step::InSync
        );
        let mut changed = desired();
        changed["data"]["k"] = json!("w");
        let step = plan_object("web", &changed, Some(&live), fresh(), &options());
        let Step::Apply {
            body,
            adopting: false,
        } = step
        else {
            panic!("{step:?}")
        };
        assert_eq!(
            body["metadata"]["annotations"][CREATED_BY_ANNOTATION],
            "web"
        );
        // Drift without self-heal on an unchanged bundle: reported only.
        let step = plan_object("web", &changed, Some(&live), Record::default(), &options());
        assert!(
            matches!(&step, Step::Skip { ours: true, reason, .. } if reason.contains("data.k")),
            "{step:?}"
        );
    }

    #[test]
    fn only_objects_we_created_are_pruned() {
        let created = cm(
            json!({APP_LABEL: "web"}),
            json!({CREATED_BY_ANNOTATION: "web"}),
        );
        let r = reference("ConfigMap");
        assert_eq!(
            plan_prune("web", &r, Some(&created), Some("u-1"), &options()),
            Prune::Delete { uid: "u-1".into() }
        );
        // Adopted (no creation record), or the record names another uid (the
        // name was deleted and created again by someone else), or the
        // annotation was copied onto an object the app never created.
        let adopted = cm(json!({APP_LABEL: "web"}), json!({}));
        for (live, uid) in [
            (&adopted, Some("u-1")),
            (&created, Some("u-other")),
            (&created, None),
        ] {
            assert!(
                matches!(
                    plan_prune("web", &r, Some(live), uid, &options()),
                    Prune::Release(_)
                ),
                "{live} {uid:?}"
            );
        }
        // Prune off: kept and reported.
        let off = Options::default();
        assert!(matches!(
            plan_prune("web", &r, Some(&created), Some("u-1"), &off),
            Prune::Keep(_)
        ));
        assert_eq!(
            plan_prune("web", &r, None, Some("u-1"), &options()),
            Prune::Gone
        );
    }

    #[test]
    fn sync_options_prune_false_and_delete_false_keep_the_object() {
        let r = reference("ConfigMap");
        for (annotation, value) in [
            ("argocd.argoproj.io/sync-options", "Prune=false"),
            (
                "argocd.argoproj.io/sync-options",
                "Replace=true, Delete=false",
            ),
            ("switchyard.dev/sync-options", "Prune=false"),
        ] {
            let live = cm(
                json!({APP_LABEL: "web"}),
                json!({CREATED_BY_ANNOTATION: "web", annotation: value}),
            );
            assert!(
                matches!(
                    plan_prune("web", &r, Some(&live), Some("u-1"), &options()),
                    Prune::Keep(m) if m.contains("sync-options say")
                ),
                "{annotation}: {value}"
            );
        }
        // Other options, or Prune=true, do not keep it.
        let live = cm(
            json!({APP_LABEL: "web"}),
            json!({CREATED_BY_ANNOTATION: "web", "argocd.argoproj.io/sync-options": "Prune=true,ServerSideApply=true"}),
        );
        assert_eq!(
            plan_prune("web", &r, Some(&live), Some("u-1"), &options()),
            Prune::Delete { uid: "u-1".into() }
        );
    }

    #[test]
    fn prune_confirm_waits_for_a_confirmation_of_the_commit() {
        let r = reference("ConfigMap");
        let live = cm(
            json!({APP_LABEL: "web"}),
            json!({CREATED_BY_ANNOTATION: "web", "argocd.argoproj.io/sync-options": "Prune=confirm"}),
        );
        let step = plan_prune("web", &r, Some(&live), Some("u-1"), &options());
        assert!(
            matches!(&step, Prune::Keep(m) if m.contains("switchyard app sync web --prune")),
            "{step:?}"
        );
        let confirmed = Options {
            prune_confirmed: true,
            ..options()
        };
        assert_eq!(
            plan_prune("web", &r, Some(&live), Some("u-1"), &confirmed),
            Prune::Delete { uid: "u-1".into() }
        );
        // A confirmation never deletes what is not ours.
        let adopted = cm(
            json!({APP_LABEL: "web"}),
            json!({"switchyard.dev/sync-options": "Prune=confirm"}),
        );
        assert!(matches!(
            plan_prune("web", &r, Some(&adopted), Some("u-1"), &confirmed),
            Prune::Release(_)
        ));
        // The confirmation is for one commit: a later one needs its own.
        let item = |confirmed: Option<&str>| AssignmentItem {
            app: "web".into(),
            commit: "c2".into(),
            digest: "sha256:00".into(),
            namespace: None,
            prune: true,
            self_heal: false,
            ownership: Default::default(),
            ignore_differences: Vec::new(),
            prune_confirmed: confirmed.map(str::to_owned),
            create_namespace: true,
            prune_last: false,
            sync_requested: 0,
        };
        assert!(!Options::from(&item(Some("c1"))).prune_confirmed);
        assert!(!Options::from(&item(None)).prune_confirmed);
        assert!(Options::from(&item(Some("c2"))).prune_confirmed);
    }

    #[test]
    fn prune_last_is_read_from_either_annotation() {
        for (annotation, value, last) in [
            ("argocd.argoproj.io/sync-options", "PruneLast=true", true),
            (
                "switchyard.dev/sync-options",
                "Replace=true, PruneLast=true",
                true,
            ),
            ("argocd.argoproj.io/sync-options", "PruneLast=false", false),
        ] {
            let live = cm(json!({APP_LABEL: "web"}), json!({annotation: value}));
            assert_eq!(prune_last(&live), last, "{annotation}: {value}");
        }
        assert!(!prune_last(&cm(json!({}), json!({}))));
    }

    #[test]
    fn namespaces_and_crds_are_pruned_only_when_allowed() {
        let created = cm(
            json!({APP_LABEL: "web"}),
            json!({CREATED_BY_ANNOTATION: "web"}),
        );
        for kind in ["Namespace", "CustomResourceDefinition"] {
            let r = reference(kind);
            assert!(
                matches!(plan_prune("web", &r, Some(&created), Some("u-1"), &options()), Prune::Keep(m) if m.contains("--prune-")),
                "{kind}"
            );
        }
        let allowed = Options {
            prune_namespaces: true,
            prune_crds: true,
            ..options()
        };
        for kind in ["Namespace", "CustomResourceDefinition"] {
            assert_eq!(
                plan_prune(
                    "web",
                    &reference(kind),
                    Some(&created),
                    Some("u-1"),
                    &allowed
                ),
                Prune::Delete { uid: "u-1".into() }
            );
        }
        // Allowed, but adopted: still never deleted.
        let adopted = cm(json!({APP_LABEL: "web"}), json!({}));
        assert!(matches!(
            plan_prune(
                "web",
                &reference("Namespace"),
                Some(&adopted),
                Some("u-1"),
                &allowed
            ),
            Prune::Release(_)
        ));
    }

    #[test]
    fn a_create_that_found_the_object_withdraws_or_adopts() {
        let body = with_creation_record(&desired(), "web");
        let FoundExisting::Withdraw { body: withdrawn } =
            plan_found_existing(&desired(), &options())
        else {
            panic!()
        };
        assert_eq!(
            withdrawn,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "web"}})
        );
        let adopt = Options {
            adopt: true,
            ..options()
        };
        let FoundExisting::Adopt { body: adopted } = plan_found_existing(&desired(), &adopt) else {
            panic!()
        };
        assert!(adopted["metadata"]["annotations"][CREATED_BY_ANNOTATION].is_null());
        assert!(body["metadata"]["annotations"][CREATED_BY_ANNOTATION] == "web");
    }

    #[test]
    fn conflicts_are_forced_only_on_our_fields_or_by_opt_in() {
        let conflict = |field: &str| FieldConflict {
            manager: "kubectl-edit".into(),
            field: field.into(),
        };
        let owned = applied_fields(&json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web"}, "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "web"}]}}}}));
        assert!(owned.contains(".spec.replicas"), "{owned:?}");
        assert!(owned.contains(".metadata.name"), "{owned:?}");
        assert!(!owned.contains(".kind"), "{owned:?}");
        // Drift on our own fields: self-heal forces.
        for field in [
            ".spec.replicas",
            ".spec.template.spec.containers[name=\"web\"].image",
        ] {
            assert_eq!(
                plan_conflict(&[conflict(field)], Some(&owned), &options()),
                OnConflict::Force,
                "{field}"
            );
        }
        // A field we never applied: reported with field and manager.
        let foreign = [conflict(".spec.replicas"), conflict(".spec.paused")];
        let OnConflict::Report(message) = plan_conflict(&foreign, Some(&owned), &options()) else {
            panic!()
        };
        assert!(
            message.contains(".spec.paused (owned by kubectl-edit)"),
            "{message}"
        );
        // Not a prefix match on names: `.spec.replicasX` is not `.spec.replicas`.
        assert!(matches!(
            plan_conflict(&[conflict(".spec.replicasX")], Some(&owned), &options()),
            OnConflict::Report(_)
        ));
        assert!(matches!(
            plan_conflict(&[conflict(".spec.replicas")], None, &options()),
            OnConflict::Report(_)
        ));
        let force = Options {
            force_conflicts: true,
            ..options()
        };
        assert_eq!(plan_conflict(&foreign, None, &force), OnConflict::Force);
    }
}
