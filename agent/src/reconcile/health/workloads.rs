//! Health of workloads: Deployment, StatefulSet, DaemonSet, ReplicaSet and
//! Pod, as Argo CD's gitops-engine judges them.

use super::fields::{
    array, boolean, conditions, find, generations, healthy, int, progressing, spec_replicas,
    status_int, string,
};
use super::{Assessment, Check, Health};
use serde_json::Value;

pub(super) fn deployment(object: &Value) -> Check {
    if boolean(object, "/spec/paused")? == Some(true) {
        return Ok(Assessment::new(Health::Suspended, "deployment is paused"));
    }
    let (generation, observed) = generations(object)?;
    if observed < generation {
        return progressing("waiting for rollout to be observed");
    }
    let conditions = conditions(object)?;
    if let Some(c) = find(&conditions, "Progressing")
        && c.reason == "ProgressDeadlineExceeded"
    {
        let message = if c.message.is_empty() {
            "deployment exceeded its progress deadline"
        } else {
            c.message
        };
        return Ok(Assessment::new(Health::Degraded, message));
    }
    let wanted = spec_replicas(object)?;
    let replicas = status_int(object, "replicas")?;
    let updated = status_int(object, "updatedReplicas")?;
    let available = status_int(object, "availableReplicas")?;
    if updated < wanted {
        return progressing(format!("{updated} of {wanted} replicas updated"));
    }
    if replicas > updated {
        return progressing(format!(
            "{} old replicas pending termination",
            replicas - updated
        ));
    }
    if available < updated {
        return progressing(format!(
            "{available} of {updated} updated replicas available"
        ));
    }
    healthy()
}

pub(super) fn stateful_set(object: &Value) -> Check {
    let (generation, observed) = generations(object)?;
    // Argo CD also treats a never-observed StatefulSet (observedGeneration 0)
    // as not yet seen by its controller.
    if observed == 0 || observed < generation {
        return progressing("waiting for rollout to be observed");
    }
    let wanted = spec_replicas(object)?;
    let ready = status_int(object, "readyReplicas")?;
    if ready < wanted {
        return progressing(format!("{ready} of {wanted} pods ready"));
    }
    let strategy = string(object, "/spec/updateStrategy/type")?.unwrap_or("RollingUpdate");
    if strategy == "OnDelete" {
        // Pods are replaced only when someone deletes them, so a pending
        // revision is not a rollout in progress.
        return Ok(Assessment::new(
            Health::Healthy,
            format!("{ready} pods ready (update strategy OnDelete)"),
        ));
    }
    let updated = status_int(object, "updatedReplicas")?;
    if strategy == "RollingUpdate"
        && let Some(partition) = int(object, "/spec/updateStrategy/rollingUpdate/partition")?
    {
        // Only ordinals >= partition are updated; the rest keep the old
        // revision on purpose, so the revisions legitimately differ.
        let target = (wanted - partition).max(0);
        if updated < target {
            return progressing(format!(
                "partitioned rollout: {updated} of {target} pods updated"
            ));
        }
        return healthy();
    }
    let current = string(object, "/status/currentRevision")?.unwrap_or_default();
    let update = string(object, "/status/updateRevision")?.unwrap_or_default();
    if current != update {
        return progressing(format!(
            "{updated} pods at revision {update}, rollout in progress"
        ));
    }
    healthy()
}

pub(super) fn daemon_set(object: &Value) -> Check {
    let (generation, observed) = generations(object)?;
    if observed < generation {
        return progressing("waiting for rollout to be observed");
    }
    let desired = status_int(object, "desiredNumberScheduled")?;
    let updated = status_int(object, "updatedNumberScheduled")?;
    let available = status_int(object, "numberAvailable")?;
    if string(object, "/spec/updateStrategy/type")? == Some("OnDelete") {
        return Ok(Assessment::new(
            Health::Healthy,
            format!("{updated} of {desired} pods updated (update strategy OnDelete)"),
        ));
    }
    if updated < desired {
        return progressing(format!("{updated} of {desired} pods updated"));
    }
    if available < desired {
        return progressing(format!("{available} of {desired} pods available"));
    }
    healthy()
}

pub(super) fn replica_set(object: &Value) -> Check {
    let (generation, observed) = generations(object)?;
    if observed < generation {
        return progressing("waiting for rollout to be observed");
    }
    let conditions = conditions(object)?;
    if let Some(c) = find(&conditions, "ReplicaFailure")
        && c.status == "True"
    {
        let message = if c.message.is_empty() {
            c.reason
        } else {
            c.message
        };
        return Ok(Assessment::new(Health::Degraded, message));
    }
    let wanted = spec_replicas(object)?;
    // Argo CD counts available rather than ready replicas: available is ready
    // for minReadySeconds, the stricter of the two.
    let available = status_int(object, "availableReplicas")?;
    if available < wanted {
        return progressing(format!("{available} of {wanted} replicas available"));
    }
    healthy()
}

/// Container waiting reasons that will not resolve by themselves. Argo CD
/// uses the same shape: `Err*`, `*Error`, `*BackOff`.
fn is_bad_waiting_reason(reason: &str) -> bool {
    reason.starts_with("Err") || reason.ends_with("Error") || reason.ends_with("BackOff")
}

pub(super) fn pod(object: &Value) -> Check {
    let restart_policy = string(object, "/spec/restartPolicy")?.unwrap_or("Always");
    let phase = string(object, "/status/phase")?.unwrap_or_default();
    let pod_message = string(object, "/status/message")?.unwrap_or_default();
    let statuses = array(object, "/status/containerStatuses")?;
    let init_statuses = array(object, "/status/initContainerStatuses")?;

    // Only for long-running pods: a run-to-completion pod (a hook) stuck in
    // ImagePullBackOff may still recover and run, and Argo CD does not want
    // to fail it early.
    if restart_policy == "Always" {
        let mut messages = Vec::new();
        for (i, status) in init_statuses.iter().chain(statuses).enumerate() {
            let reason = string(status, "/state/waiting/reason")
                .map_err(|e| format!("container status {i}: {e}"))?;
            if let Some(reason) = reason.filter(|r| is_bad_waiting_reason(r)) {
                let name = string(status, "/name").ok().flatten().unwrap_or("?");
                let message = string(status, "/state/waiting/message").ok().flatten();
                messages.push(match message {
                    Some(m) if !m.is_empty() => format!("container {name}: {reason}: {m}"),
                    _ => format!("container {name}: {reason}"),
                });
            }
        }
        if !messages.is_empty() {
            return Ok(Assessment::new(Health::Degraded, messages.join("; ")));
        }
    }

    match phase {
        "Pending" => progressing(if pod_message.is_empty() {
            "pod is pending"
        } else {
            pod_message
        }),
        "Succeeded" => Ok(Assessment::new(Health::Healthy, pod_message)),
        "Failed" => {
            if !pod_message.is_empty() {
                return Ok(Assessment::new(Health::Degraded, pod_message));
            }
            for status in init_statuses.iter().chain(statuses) {
                if let Some(message) = terminated_message(status) {
                    return Ok(Assessment::new(Health::Degraded, message));
                }
            }
            let reason = string(object, "/status/reason")?.unwrap_or("pod failed");
            Ok(Assessment::new(Health::Degraded, reason))
        }
        "Running" => {
            if restart_policy != "Always" {
                // Run-to-completion pods are healthy only once they succeed.
                return progressing(pod_message);
            }
            if pod_ready(object, statuses)? {
                return Ok(Assessment::new(Health::Healthy, pod_message));
            }
            // Not ready after a container already died once: crashing rather
            // than starting.
            if statuses.iter().any(|s| {
                s.pointer("/lastState/terminated")
                    .is_some_and(Value::is_object)
            }) {
                let message = if pod_message.is_empty() {
                    "pod is not ready and a container has restarted"
                } else {
                    pod_message
                };
                return Ok(Assessment::new(Health::Degraded, message));
            }
            progressing(if pod_message.is_empty() {
                "pod is not ready"
            } else {
                pod_message
            })
        }
        "" => progressing("pod has no phase yet"),
        other => Ok(Assessment::new(
            Health::Unknown,
            format!("pod phase {other}"),
        )),
    }
}

/// The `Ready` condition when present; otherwise every container ready.
fn pod_ready(object: &Value, statuses: &[Value]) -> Result<bool, String> {
    let conditions = conditions(object)?;
    if let Some(c) = find(&conditions, "Ready") {
        return Ok(c.status == "True");
    }
    Ok(!statuses.is_empty()
        && statuses
            .iter()
            .all(|s| s.get("ready").and_then(Value::as_bool) == Some(true)))
}

fn terminated_message(status: &Value) -> Option<String> {
    let terminated = status.pointer("/state/terminated")?;
    if let Some(message) = terminated.get("message").and_then(Value::as_str)
        && !message.is_empty()
    {
        return Some(message.to_owned());
    }
    if terminated.get("reason").and_then(Value::as_str) == Some("OOMKilled") {
        return Some("OOMKilled".to_owned());
    }
    let code = terminated.get("exitCode").and_then(Value::as_i64)?;
    (code != 0).then(|| {
        let name = status.get("name").and_then(Value::as_str).unwrap_or("?");
        format!("container {name} failed with exit code {code}")
    })
}

#[cfg(test)]
mod tests {
    use super::super::assess;
    use super::super::test_support::*;
    use super::*;
    use serde_json::json;

    #[test]
    fn deployment_healthy() {
        let d = deploy(json!({"replicas": 3}), ready_deploy_status());
        assert_eq!(assess(&d), Assessment::bare(Health::Healthy));
    }

    #[test]
    fn deployment_paused_is_suspended() {
        let d = deploy(json!({"replicas": 3, "paused": true}), json!({}));
        assert_eq!(health(d), Health::Suspended);
    }

    #[test]
    fn deployment_generation_not_observed() {
        let mut status = ready_deploy_status();
        status["observedGeneration"] = json!(1);
        let d = deploy(json!({"replicas": 3}), status);
        assert_eq!(health(d.clone()), Health::Progressing);
        assert_eq!(message(d), "waiting for rollout to be observed");
    }

    #[test]
    fn deployment_deadline_exceeded_is_degraded() {
        let mut status = ready_deploy_status();
        status["updatedReplicas"] = json!(1);
        status["conditions"] = json!([{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet \"web-1\" has timed out progressing."}]);
        let d = deploy(json!({"replicas": 3}), status);
        assert_eq!(health(d.clone()), Health::Degraded);
        assert!(message(d).contains("timed out"));
    }

    #[test]
    fn deployment_rollout_steps() {
        let mut status = ready_deploy_status();
        status["updatedReplicas"] = json!(1);
        let d = deploy(json!({"replicas": 3}), status);
        assert_eq!(health(d.clone()), Health::Progressing);
        assert_eq!(message(d), "1 of 3 replicas updated");

        let mut status = ready_deploy_status();
        status["replicas"] = json!(4);
        let d = deploy(json!({"replicas": 3}), status);
        assert_eq!(message(d), "1 old replicas pending termination");

        let mut status = ready_deploy_status();
        status["availableReplicas"] = json!(2);
        let d = deploy(json!({"replicas": 3}), status);
        assert_eq!(health(d.clone()), Health::Progressing);
        assert_eq!(message(d), "2 of 3 updated replicas available");
    }

    #[test]
    fn deployment_replicas_default_to_one() {
        let d = deploy(json!({}), json!({"observedGeneration": 2}));
        assert_eq!(message(d), "0 of 1 replicas updated");
        let d = deploy(
            json!({}),
            json!({"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1}),
        );
        assert_eq!(health(d), Health::Healthy);
    }

    #[test]
    fn deployment_scaled_to_zero_is_healthy() {
        let d = deploy(json!({"replicas": 0}), json!({"observedGeneration": 2}));
        assert_eq!(health(d), Health::Healthy);
    }

    #[test]
    fn deployment_without_status_is_progressing() {
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x", "generation": 1}, "spec": {}});
        assert_eq!(health(d), Health::Progressing);
    }

    fn sts(spec: Value, status: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "generation": 1}, "spec": spec, "status": status})
    }

    #[test]
    fn stateful_set_rules() {
        let done = json!({"observedGeneration": 1, "replicas": 3, "readyReplicas": 3, "updatedReplicas": 3, "currentRevision": "db-1", "updateRevision": "db-1"});
        assert_eq!(
            health(sts(json!({"replicas": 3}), done.clone())),
            Health::Healthy
        );

        // never observed
        assert_eq!(
            health(sts(json!({"replicas": 3}), json!({}))),
            Health::Progressing
        );

        let mut s = done.clone();
        s["readyReplicas"] = json!(2);
        assert_eq!(message(sts(json!({"replicas": 3}), s)), "2 of 3 pods ready");

        let mut s = done.clone();
        s["updateRevision"] = json!("db-2");
        s["updatedReplicas"] = json!(1);
        assert_eq!(
            health(sts(json!({"replicas": 3}), s.clone())),
            Health::Progressing
        );
        // OnDelete: a pending revision waits for someone to delete pods.
        assert_eq!(
            health(sts(
                json!({"replicas": 3, "updateStrategy": {"type": "OnDelete"}}),
                s.clone()
            )),
            Health::Healthy
        );
        // Partitioned: only ordinals >= 2 are to be updated (1 pod).
        let spec = json!({"replicas": 3, "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}});
        assert_eq!(health(sts(spec.clone(), s.clone())), Health::Healthy);
        let mut s2 = s.clone();
        s2["updatedReplicas"] = json!(0);
        assert_eq!(health(sts(spec, s2)), Health::Progressing);
    }

    fn ds(spec: Value, status: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent", "generation": 4}, "spec": spec, "status": status})
    }

    #[test]
    fn daemon_set_rules() {
        let done = json!({"observedGeneration": 4, "desiredNumberScheduled": 5, "updatedNumberScheduled": 5, "numberAvailable": 5});
        assert_eq!(health(ds(json!({}), done.clone())), Health::Healthy);
        let mut s = done.clone();
        s["observedGeneration"] = json!(3);
        assert_eq!(health(ds(json!({}), s)), Health::Progressing);
        let mut s = done.clone();
        s["updatedNumberScheduled"] = json!(2);
        assert_eq!(message(ds(json!({}), s.clone())), "2 of 5 pods updated");
        assert_eq!(
            health(ds(json!({"updateStrategy": {"type": "OnDelete"}}), s)),
            Health::Healthy
        );
        let mut s = done;
        s["numberAvailable"] = json!(4);
        assert_eq!(message(ds(json!({}), s)), "4 of 5 pods available");
    }

    #[test]
    fn replica_set_rules() {
        let rs = |status: Value| json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "rs", "generation": 1}, "spec": {"replicas": 2}, "status": status});
        assert_eq!(
            health(rs(json!({"observedGeneration": 1, "availableReplicas": 2}))),
            Health::Healthy
        );
        assert_eq!(
            health(rs(json!({"observedGeneration": 1, "availableReplicas": 1}))),
            Health::Progressing
        );
        let failed = rs(
            json!({"observedGeneration": 1, "availableReplicas": 0, "conditions": [
                {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": "pods \"rs-\" is forbidden: exceeded quota"}
            ]}),
        );
        assert_eq!(health(failed.clone()), Health::Degraded);
        assert!(message(failed).contains("exceeded quota"));
    }

    fn pod_with(restart: Option<&str>, status: Value) -> Value {
        let mut p = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "app"}]}, "status": status});
        if let Some(r) = restart {
            p["spec"]["restartPolicy"] = json!(r);
        }
        p
    }

    #[test]
    fn pod_phases() {
        assert_eq!(
            health(pod_with(None, json!({"phase": "Succeeded"}))),
            Health::Healthy
        );
        assert_eq!(
            health(pod_with(None, json!({"phase": "Pending"}))),
            Health::Progressing
        );
        assert_eq!(health(pod_with(None, json!({}))), Health::Progressing);
        assert_eq!(
            health(pod_with(None, json!({"phase": "Weird"}))),
            Health::Unknown
        );
        let failed = pod_with(
            Some("Never"),
            json!({"phase": "Failed", "message": "evicted: low memory"}),
        );
        assert_eq!(health(failed.clone()), Health::Degraded);
        assert_eq!(message(failed), "evicted: low memory");
        let failed = pod_with(
            Some("Never"),
            json!({"phase": "Failed", "containerStatuses": [
                {"name": "app", "state": {"terminated": {"exitCode": 3}}}
            ]}),
        );
        assert_eq!(message(failed), "container app failed with exit code 3");
        let oom = pod_with(
            Some("Never"),
            json!({"phase": "Failed", "containerStatuses": [
                {"name": "app", "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}
            ]}),
        );
        assert_eq!(message(oom), "OOMKilled");
    }

    #[test]
    fn pod_running_readiness() {
        let ready = pod_with(
            None,
            json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}),
        );
        assert_eq!(health(ready), Health::Healthy);
        let all_containers_ready = pod_with(
            None,
            json!({"phase": "Running", "containerStatuses": [{"name": "app", "ready": true}]}),
        );
        assert_eq!(health(all_containers_ready), Health::Healthy);
        let not_ready = pod_with(
            None,
            json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}], "containerStatuses": [{"name": "app", "ready": false}]}),
        );
        assert_eq!(health(not_ready), Health::Progressing);
        let restarted = pod_with(
            None,
            json!({"phase": "Running", "containerStatuses": [{"name": "app", "ready": false, "lastState": {"terminated": {"exitCode": 1}}}]}),
        );
        assert_eq!(health(restarted), Health::Degraded);
        // Run-to-completion pods running are still on their way.
        let job_pod = pod_with(
            Some("OnFailure"),
            json!({"phase": "Running", "containerStatuses": [{"name": "app", "ready": true}]}),
        );
        assert_eq!(health(job_pod), Health::Progressing);
    }

    #[test]
    fn pod_bad_waiting_reasons_are_degraded() {
        for reason in [
            "CrashLoopBackOff",
            "ImagePullBackOff",
            "ErrImagePull",
            "CreateContainerConfigError",
            "InvalidImageName",
        ] {
            let reason_is_bad = is_bad_waiting_reason(reason);
            let p = pod_with(
                None,
                json!({"phase": "Pending", "containerStatuses": [
                    {"name": "app", "ready": false, "state": {"waiting": {"reason": reason, "message": "details"}}}
                ]}),
            );
            let a = assess(&p);
            if reason_is_bad {
                assert_eq!(a.health, Health::Degraded, "{reason}");
                assert_eq!(
                    a.message.unwrap(),
                    format!("container app: {reason}: details")
                );
            } else {
                assert_eq!(a.health, Health::Progressing, "{reason}");
            }
        }
        // Init containers count too.
        let p = pod_with(
            None,
            json!({"phase": "Pending", "initContainerStatuses": [
                {"name": "init", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
            ]}),
        );
        assert_eq!(message(p), "container init: CrashLoopBackOff");
        // ContainerCreating is normal.
        let p = pod_with(
            None,
            json!({"phase": "Pending", "containerStatuses": [
                {"name": "app", "state": {"waiting": {"reason": "ContainerCreating"}}}
            ]}),
        );
        assert_eq!(health(p), Health::Progressing);
        // Hook-like pods are not failed early.
        let p = pod_with(
            Some("Never"),
            json!({"phase": "Pending", "containerStatuses": [
                {"name": "app", "state": {"waiting": {"reason": "ImagePullBackOff"}}}
            ]}),
        );
        assert_eq!(health(p), Health::Progressing);
    }
}
