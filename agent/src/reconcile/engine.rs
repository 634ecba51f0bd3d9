//! One reconcile of one app: decide per object whether to write, apply in
//! phases, prune what left Git, and assess what is running.
//!
//! Decide-then-act, per object: the live object is read, compared with what
//! we would apply (`compare::is_applied`) and only then written, so a no-op
//! reconcile sends no write to the API server.

use super::cluster::{Cluster, Error as ClusterError, Kind, ObjectRef};
use super::{compare, health, order};
use crate::clock::unix_now;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;
use switchyard_common::proto::{AppStatus, AssignmentItem, Health, ResourceStatus, SyncStatus};
use tracing::{debug, info, warn};

/// Label naming the app an object belongs to; prune only ever touches
/// objects that carry it with the app's name.
pub(crate) const APP_LABEL: &str = "switchyard.dev/app";
/// Conventional label marking objects managed by a tool.
pub(crate) const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Annotation naming the hub (its CA fingerprint) the object came from.
pub(crate) const HUB_ANNOTATION: &str = "switchyard.dev/hub";

/// How long to wait for a CRD to be Established before applying its objects.
const CRD_ESTABLISH_TIMEOUT: Duration = Duration::from_secs(30);

/// What an app last applied, kept on disk between reconciles and restarts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AppliedState {
    pub(crate) digest: String,
    pub(crate) prune: bool,
    pub(crate) inventory: BTreeSet<ObjectRef>,
    /// Objects of this digest not applied yet (errors): retried on every
    /// pass even without self-heal, since the cluster never had them right.
    #[serde(default)]
    pub(crate) failed: BTreeSet<ObjectRef>,
}

/// Write to the cluster, or only say what would be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Apply,
    DryRun,
}

/// The result of reconciling one app.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) status: AppStatus,
    /// State to remember; `None` leaves the previous one.
    pub(crate) applied: Option<AppliedState>,
    /// Dry-run plan lines (create, update with diff, prune).
    pub(crate) plan: Vec<String>,
    pub(crate) writes: usize,
    /// Some failure may go away by itself (server errors, timeouts).
    pub(crate) retry: bool,
}

/// Labels and annotations every object of an app gets.
pub(crate) struct Marks<'a> {
    pub(crate) app: &'a str,
    pub(crate) hub: &'a str,
}

/// The object as we apply it: with the app's marks and its namespace.
fn decorate(
    object: &Value,
    marks: &Marks<'_>,
    kind: &Kind,
    default_namespace: Option<&str>,
) -> Value {
    let mut body = object.clone();
    let metadata = body
        .as_object_mut()
        .expect("bundle objects are JSON objects")
        .entry("metadata")
        .or_insert_with(|| json!({}));
    if !metadata.is_object() {
        *metadata = json!({});
    }
    let metadata = metadata.as_object_mut().expect("metadata is an object");
    if kind.namespaced {
        if !metadata.get("namespace").is_some_and(Value::is_string) {
            metadata.insert(
                "namespace".into(),
                Value::String(default_namespace.unwrap_or("default").to_owned()),
            );
        }
    } else {
        metadata.remove("namespace");
    }
    for (field, key, value) in [
        ("labels", APP_LABEL, marks.app),
        ("labels", MANAGED_BY_LABEL, "switchyard"),
        ("annotations", HUB_ANNOTATION, marks.hub),
    ] {
        let map = metadata.entry(field).or_insert_with(|| json!({}));
        if !map.is_object() {
            *map = json!({});
        }
        map.as_object_mut()
            .expect("labels are an object")
            .insert(key.into(), Value::String(value.into()));
    }
    body
}

fn owner_app(live: &Value) -> Option<&str> {
    live["metadata"]["labels"][APP_LABEL].as_str()
}

fn row(
    object: &ObjectRef,
    sync: SyncStatus,
    health: Health,
    message: Option<String>,
) -> ResourceStatus {
    ResourceStatus {
        group: object.group(),
        kind: object.kind.clone(),
        namespace: object.namespace.clone(),
        name: object.name.clone(),
        sync,
        health,
        message,
    }
}

fn assessed(live: &Value) -> (Health, Option<String>) {
    let a = health::assess(live);
    (a.health.into(), a.message)
}

/// Wait (bounded) until a CustomResourceDefinition is Established.
async fn wait_established(cluster: &Cluster, kind: &Kind, crd: &ObjectRef) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + CRD_ESTABLISH_TIMEOUT;
    loop {
        if let Ok(Some(live)) = cluster.get(kind, crd).await {
            let established = live["status"]["conditions"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Established" && c["status"] == "True")
            });
            if established {
                return Ok(());
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "CustomResourceDefinition {} not Established after {:?}",
                crd.name, CRD_ESTABLISH_TIMEOUT
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Make sure the app's default namespace exists (objects default into it).
async fn ensure_namespace(
    cluster: &Cluster,
    namespace: &str,
    mode: Mode,
    writes: &mut usize,
) -> Result<(), ClusterError> {
    let reference = ObjectRef {
        api_version: "v1".into(),
        kind: "Namespace".into(),
        namespace: None,
        name: namespace.to_owned(),
    };
    let kind = cluster.kind(&reference).await?;
    if cluster.get(&kind, &reference).await?.is_some() || mode == Mode::DryRun {
        return Ok(());
    }
    let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": {MANAGED_BY_LABEL: "switchyard"}}});
    cluster.apply(&kind, &reference, &body).await?;
    *writes += 1;
    info!(%namespace, "created the app's namespace");
    Ok(())
}

/// Reconcile one assigned app against the cluster.
pub(crate) async fn reconcile_app(
    cluster: &Cluster,
    item: &AssignmentItem,
    objects: &[Value],
    previous: Option<&AppliedState>,
    marks: &Marks<'_>,
    mode: Mode,
) -> Outcome {
    let new_desired = previous.is_none_or(|p| p.digest != item.digest);
    let mut rows = Vec::new();
    let mut plan = Vec::new();
    let mut writes = 0;
    let mut retry = false;
    let mut errors: Vec<String> = Vec::new();
    let mut inventory = BTreeSet::new();
    let mut failed = BTreeSet::new();

    if let Some(ns) = &item.namespace
        && let Err(e) = ensure_namespace(cluster, ns, mode, &mut writes).await
    {
        retry |= e.is_transient();
        errors.push(format!("namespace {ns}: {e}"));
    }

    let phases = match order::phases(objects) {
        Ok(p) => p,
        Err(e) => {
            return Outcome {
                status: app_status(item, Vec::new(), vec![e.to_string()], false),
                applied: None,
                plan,
                writes,
                retry: false,
            };
        }
    };
    for phase in phases {
        for index in phase {
            let object = &objects[index];
            let reference = match ObjectRef::of(object) {
                Ok(r) => r,
                Err(e) => {
                    errors.push(format!("object {index}: {e}"));
                    continue;
                }
            };
            let kind = match cluster.kind(&reference).await {
                Ok(k) => k,
                Err(e) => {
                    retry |= e.is_transient() || matches!(e, ClusterError::UnknownKind(_));
                    failed.insert(reference.clone());
                    errors.push(format!("{reference}: {e}"));
                    rows.push(row(
                        &reference,
                        SyncStatus::OutOfSync,
                        Health::Missing,
                        Some(e.to_string()),
                    ));
                    continue;
                }
            };
            let body = decorate(object, marks, &kind, item.namespace.as_deref());
            let reference = ObjectRef::of(&body).expect("decorated objects keep their identity");
            inventory.insert(reference.clone());
            let retrying = previous.is_some_and(|p| p.failed.contains(&reference));
            let may_write = new_desired || item.self_heal || retrying;
            let result =
                sync_object(cluster, &kind, &reference, &body, marks, may_write, mode).await;
            match result {
                Ok(synced) => {
                    writes += usize::from(synced.wrote);
                    if let Some(line) = synced.plan {
                        plan.push(line);
                    }
                    rows.push(synced.row);
                    if reference.kind == "CustomResourceDefinition"
                        && synced.wrote
                        && let Err(e) = wait_established(cluster, &kind, &reference).await
                    {
                        retry = true;
                        errors.push(e);
                    }
                }
                Err(e) => {
                    retry |= e.is_transient();
                    failed.insert(reference.clone());
                    warn!(app = %item.app, object = %reference, error = %e, "cannot apply");
                    errors.push(format!("{reference}: {e}"));
                    rows.push(row(
                        &reference,
                        SyncStatus::OutOfSync,
                        Health::Unknown,
                        Some(e.to_string()),
                    ));
                }
            }
        }
    }

    // What the previous apply left that Git no longer has.
    let mut extraneous = false;
    if let Some(previous) = previous {
        let gone: Vec<ObjectRef> = previous.inventory.difference(&inventory).cloned().collect();
        for reference in &in_prune_order(gone) {
            match prune_object(cluster, reference, marks, item.prune, mode).await {
                Ok(Pruned::Deleted(line)) => {
                    writes += usize::from(mode == Mode::Apply);
                    plan.push(line);
                }
                Ok(Pruned::Gone) => {}
                Ok(Pruned::Kept(r)) => {
                    extraneous = true;
                    inventory.insert(reference.clone());
                    rows.push(r);
                }
                Err(e) => {
                    retry |= e.is_transient();
                    inventory.insert(reference.clone());
                    errors.push(format!("pruning {reference}: {e}"));
                }
            }
        }
    }

    let status = app_status(item, rows, errors.clone(), extraneous);
    let applied = (mode == Mode::Apply).then(|| AppliedState {
        digest: item.digest.clone(),
        prune: item.prune,
        inventory,
        failed,
    });
    if writes > 0 {
        info!(app = %item.app, writes, sync = ?status.sync, health = ?status.health, "reconciled");
    } else {
        debug!(app = %item.app, sync = ?status.sync, health = ?status.health, "reconciled without writes");
    }
    Outcome {
        status,
        applied,
        plan,
        writes,
        retry,
    }
}

/// The outcome of syncing one object.
struct Synced {
    row: ResourceStatus,
    wrote: bool,
    plan: Option<String>,
}

async fn sync_object(
    cluster: &Cluster,
    kind: &Kind,
    reference: &ObjectRef,
    body: &Value,
    marks: &Marks<'_>,
    may_write: bool,
    mode: Mode,
) -> Result<Synced, ClusterError> {
    let live = cluster.get(kind, reference).await?;
    if let Some(live) = &live
        && let Some(owner) = owner_app(live)
        && owner != marks.app
    {
        return Ok(Synced {
            row: row(
                reference,
                SyncStatus::OutOfSync,
                Health::Unknown,
                Some(format!("belongs to app {owner}; not touched")),
            ),
            wrote: false,
            plan: None,
        });
    }
    let matches = live.as_ref().is_some_and(|l| compare::is_applied(body, l));
    if matches {
        let (health, message) = assessed(live.as_ref().expect("matched a live object"));
        return Ok(Synced {
            row: row(reference, SyncStatus::Synced, health, message),
            wrote: false,
            plan: None,
        });
    }
    if !may_write {
        // Changed or deleted outside Git, and self-heal is off: report only.
        let (health, message) = match &live {
            Some(l) => {
                let (h, _) = assessed(l);
                (
                    h,
                    format!(
                        "changed outside Git: {}",
                        compare::drift(body, l).join("; ")
                    ),
                )
            }
            None => {
                let missing = health::missing();
                (
                    missing.health.into(),
                    format!(
                        "deleted outside Git: {}",
                        missing.message.unwrap_or_default()
                    ),
                )
            }
        };
        return Ok(Synced {
            row: row(reference, SyncStatus::OutOfSync, health, Some(message)),
            wrote: false,
            plan: None,
        });
    }
    if mode == Mode::DryRun {
        let verb = if live.is_some() { "update" } else { "create" };
        let diff = compare::diff(body, live.as_ref());
        return Ok(Synced {
            row: row(
                reference,
                SyncStatus::OutOfSync,
                Health::Missing,
                Some(format!("would {verb}")),
            ),
            wrote: false,
            plan: Some(format!("{verb} {reference}\n{diff}")),
        });
    }
    let applied = match cluster.apply(kind, reference, body).await {
        Ok(applied) => applied,
        Err(ClusterError::UnknownKind(_)) => {
            cluster.forget_kind(reference);
            return Err(ClusterError::UnknownKind(reference.to_string()));
        }
        Err(e) => return Err(e),
    };
    let (health, message) = assessed(&applied);
    Ok(Synced {
        row: row(reference, SyncStatus::Synced, health, message),
        wrote: true,
        plan: None,
    })
}

enum Pruned {
    Deleted(String),
    Gone,
    Kept(ResourceStatus),
}

async fn prune_object(
    cluster: &Cluster,
    reference: &ObjectRef,
    marks: &Marks<'_>,
    prune: bool,
    mode: Mode,
) -> Result<Pruned, ClusterError> {
    let kind = match cluster.kind(reference).await {
        Ok(kind) => kind,
        // Its kind is gone (CRD deleted): so is the object.
        Err(ClusterError::UnknownKind(_)) => return Ok(Pruned::Gone),
        Err(e) => return Err(e),
    };
    let Some(live) = cluster.get(&kind, reference).await? else {
        return Ok(Pruned::Gone);
    };
    if owner_app(&live) != Some(marks.app) {
        // Not ours (any more): never touched.
        return Ok(Pruned::Gone);
    }
    if !prune {
        let (health, _) = assessed(&live);
        return Ok(Pruned::Kept(row(
            reference,
            SyncStatus::OutOfSync,
            health,
            Some("removed from Git; prune is off, so it stays".into()),
        )));
    }
    if mode == Mode::Apply {
        cluster.delete(&kind, reference).await?;
        info!(app = %marks.app, object = %reference, "pruned");
    }
    Ok(Pruned::Deleted(format!("prune {reference}")))
}

/// Dependents first; namespaces and CRDs, which take their contents along, last.
fn in_prune_order(refs: Vec<ObjectRef>) -> Vec<ObjectRef> {
    let stubs: Vec<Value> = refs
        .iter()
        .map(|r| json!({"apiVersion": r.api_version, "kind": r.kind, "metadata": {"name": r.name, "namespace": r.namespace}}))
        .collect();
    match order::prune_order(&stubs) {
        Ok(order) => order.into_iter().map(|i| refs[i].clone()).collect(),
        // Stubs carry no sync-wave annotation, so ordering cannot fail.
        Err(_) => refs,
    }
}

/// Delete everything an app applied, when it is no longer assigned and its
/// last policy allowed pruning; otherwise leave its objects alone.
pub(crate) async fn remove_app(
    cluster: &Cluster,
    app: &str,
    previous: &AppliedState,
    marks: &Marks<'_>,
    mode: Mode,
) -> Result<usize, ClusterError> {
    if !previous.prune {
        info!(%app, objects = previous.inventory.len(), "app unassigned; prune is off, so its objects stay");
        return Ok(0);
    }
    let mut deleted = 0;
    for reference in &in_prune_order(previous.inventory.iter().cloned().collect()) {
        if let Pruned::Deleted(_) = prune_object(cluster, reference, marks, true, mode).await? {
            deleted += 1;
        }
    }
    Ok(deleted)
}

fn app_status(
    item: &AssignmentItem,
    resources: Vec<ResourceStatus>,
    errors: Vec<String>,
    extraneous: bool,
) -> AppStatus {
    let synced =
        errors.is_empty() && !extraneous && resources.iter().all(|r| r.sync == SyncStatus::Synced);
    let health = health::aggregate(resources.iter().map(|r| health::Health::from(r.health)));
    AppStatus {
        app: item.app.clone(),
        commit: item.commit.clone(),
        digest: item.digest.clone(),
        sync: if synced {
            SyncStatus::Synced
        } else {
            SyncStatus::OutOfSync
        },
        health: health.into(),
        resources,
        last_error: errors.first().cloned(),
        observed_at: unix_now(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::ApiResource;

    fn kind(namespaced: bool) -> Kind {
        Kind {
            resource: ApiResource {
                group: "apps".into(),
                version: "v1".into(),
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                plural: "deployments".into(),
            },
            namespaced,
        }
    }

    #[test]
    fn objects_get_the_apps_marks_and_namespace() {
        let marks = Marks {
            app: "web",
            hub: "abcd",
        };
        let object = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"tier": "front"}}});
        let body = decorate(&object, &marks, &kind(true), Some("shop"));
        assert_eq!(body["metadata"]["namespace"], "shop");
        assert_eq!(body["metadata"]["labels"]["tier"], "front");
        assert_eq!(body["metadata"]["labels"][APP_LABEL], "web");
        assert_eq!(body["metadata"]["labels"][MANAGED_BY_LABEL], "switchyard");
        assert_eq!(body["metadata"]["annotations"][HUB_ANNOTATION], "abcd");
        // An explicit namespace wins; cluster-scoped objects lose theirs.
        let explicit = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "ops"}});
        assert_eq!(
            decorate(&explicit, &marks, &kind(true), Some("shop"))["metadata"]["namespace"],
            "ops"
        );
        assert!(
            decorate(&explicit, &marks, &kind(false), Some("shop"))["metadata"]
                .get("namespace")
                .is_none()
        );
        // No default namespace: "default", like kubectl.
        assert_eq!(
            decorate(&object, &marks, &kind(true), None)["metadata"]["namespace"],
            "default"
        );
    }
}
