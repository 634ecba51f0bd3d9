//! Prunes: an object that left Git, or every object of an app that is no
//! longer assigned, deleted only when `plan` allows it (created by
//! Switchyard, prune allowed for its kind) and with a uid precondition,
//! in reverse apply order.

use super::*;

/// Decide and execute the prune of one object that left Git. With
/// `defer_last`, an object marked `PruneLast=true` that would be deleted is
/// not: it is returned as deferred, for the final implicit wave.
#[allow(clippy::too_many_arguments)]
pub(super) async fn prune_one(
    cluster: &Cluster,
    reference: &ObjectRef,
    app: &str,
    previous: &AppliedState,
    options: &Options,
    mode: Mode,
    defer_last: bool,
    pass: &mut Pass,
) -> bool {
    match prune_object(cluster, reference, app, previous, options, mode, defer_last).await {
        Ok(Pruned::Deferred) => return true,
        Ok(Pruned::Deleted(line)) => {
            pass.writes += usize::from(mode == Mode::Apply);
            pass.plan.push(line);
        }
        Ok(Pruned::Gone) => {}
        Ok(Pruned::Released(line)) => pass.plan.push(line),
        Ok(Pruned::Kept(r)) => {
            pass.extraneous |= r.sync != SyncStatus::Synced;
            pass.inventory.insert(reference.clone());
            pass.rows.push(r);
        }
        Err(e) => {
            pass.retry |= e.is_transient();
            pass.inventory.insert(reference.clone());
            pass.errors.push(format!("pruning {reference}: {e}"));
        }
    }
    false
}

pub(super) enum Pruned {
    /// `PruneLast=true`, to be deleted in the final wave.
    Deferred,
    Deleted(String),
    Gone,
    Kept(ResourceStatus),
    Released(String),
}

pub(super) async fn prune_object(
    cluster: &Cluster,
    reference: &ObjectRef,
    app: &str,
    previous: &AppliedState,
    options: &Options,
    mode: Mode,
    defer_last: bool,
) -> Result<Pruned, ClusterError> {
    let kind = match cluster.kind(reference).await {
        Ok(kind) => kind,
        // Its kind is gone (CRD deleted): so is the object.
        Err(ClusterError::UnknownKind(_)) => return Ok(Pruned::Gone),
        Err(e) => return Err(e),
    };
    let live = cluster.get(&kind, reference).await?;
    let created = previous.created.get(reference).map(String::as_str);
    match plan::plan_prune(app, reference, live.as_ref(), created, options) {
        Prune::Gone => Ok(Pruned::Gone),
        Prune::Keep(reason) => {
            let health = live.as_ref().map_or(Health::Unknown, |l| assessed(l).0);
            // Argo CD's compare option: an extraneous object that says
            // IgnoreExtraneous does not make its app OutOfSync.
            let ignored = live
                .as_ref()
                .is_some_and(|l| crate::reconcile::hooks::sync_options(l).ignore_extraneous);
            let (sync, reason) = if ignored {
                (
                    SyncStatus::Synced,
                    format!("{reason} (IgnoreExtraneous: does not make the app OutOfSync)"),
                )
            } else {
                (SyncStatus::OutOfSync, reason)
            };
            Ok(Pruned::Kept(row(reference, sync, health, Some(reason))))
        }
        Prune::Release(reason) => {
            info!(%app, object = %reference, %reason, "left in place and forgotten");
            Ok(Pruned::Released(format!("leave {reference}: {reason}")))
        }
        Prune::Delete { .. }
            if defer_last
                && (options.prune_last || live.as_ref().is_some_and(plan::prune_last)) =>
        {
            Ok(Pruned::Deferred)
        }
        Prune::Delete { uid } => {
            if mode == Mode::Apply {
                cluster.delete(&kind, reference, &uid).await?;
                info!(%app, object = %reference, "pruned");
            }
            Ok(Pruned::Deleted(format!("prune {reference}")))
        }
    }
}

/// Dependents first; namespaces and CRDs, which take their contents along, last.
pub(super) fn in_prune_order(refs: Vec<ObjectRef>) -> Vec<ObjectRef> {
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

/// Delete what an app created, when it is no longer assigned and its last
/// policy allowed pruning; everything else of it stays.
pub(crate) async fn remove_app(
    cluster: &Cluster,
    app: &str,
    previous: &AppliedState,
    mode: Mode,
) -> Result<usize, ClusterError> {
    if !previous.prune {
        info!(%app, objects = previous.inventory.len(), "app unassigned; prune is off, so its objects stay");
        return Ok(0);
    }
    let options = previous.options();
    let mut deleted = 0;
    for reference in &in_prune_order(previous.inventory.iter().cloned().collect()) {
        match prune_object(cluster, reference, app, previous, &options, mode, false).await? {
            Pruned::Deleted(_) => deleted += 1,
            Pruned::Kept(r) => {
                info!(%app, object = %reference, reason = r.message.as_deref().unwrap_or_default(), "app unassigned; left in place");
            }
            Pruned::Gone | Pruned::Released(_) | Pruned::Deferred => {}
        }
    }
    Ok(deleted)
}
