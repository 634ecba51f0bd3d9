//! Health of live Kubernetes objects, following Argo CD's gitops-engine checks.
//!
//! `assess` looks at one object as the API server returns it (with `status`)
//! and never fails: a field of the wrong type yields `Unknown` with a message
//! naming the field, so one odd object cannot stop a reconcile.
//!
//! Kinds are matched on API group and kind together, so that a custom
//! resource that happens to be called `Service` (Knative) is judged by its
//! conditions rather than as a core Service.
//!
//! Rules, in the order they are tried:
//! 1. `metadata.deletionTimestamp` set: Progressing (Argo: "pending deletion").
//! 2. Built-in kinds with their own rules (Deployment, StatefulSet, DaemonSet,
//!    ReplicaSet, Pod, Job, CronJob, PersistentVolumeClaim, Service, Ingress,
//!    Namespace, CustomResourceDefinition, APIService, HorizontalPodAutoscaler).
//! 3. Built-in kinds without status semantics (ConfigMap, Secret, RBAC, ...):
//!    Healthy.
//! 4. Anything else (custom resources) by its conditions, kstatus style:
//!    `status.observedGeneration` behind `metadata.generation` is
//!    Progressing; `Stalled=True` is Degraded; `Reconciling=True` is
//!    Progressing; then `Ready` (or, without it, `Available`): True is
//!    Healthy, False Degraded, Unknown Progressing. An object without
//!    `status` is Healthy (a configuration-only resource); one with a status
//!    but no condition we understand is Unknown.
//!
//! The rules live by family: `workloads` (Deployment, StatefulSet,
//! DaemonSet, ReplicaSet, Pod), `batch` (Job, CronJob), `storage`
//! (PersistentVolumeClaim), `networking` (Service, Ingress), `platform`
//! (Namespace, CustomResourceDefinition, APIService,
//! HorizontalPodAutoscaler), `custom` (anything else, by its conditions);
//! `fields` reads typed fields and conditions for all of them.

mod batch;
mod custom;
mod fields;
mod networking;
mod platform;
mod storage;
mod workloads;

use batch::{cron_job, job};
use custom::generic;
use fields::string;
use networking::{ingress, service};
use platform::{api_service, crd, hpa, namespace};
use serde_json::Value;
use storage::pvc;
use workloads::{daemon_set, deployment, pod, replica_set, stateful_set};

/// Health of one object, or of a set of objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Health {
    Healthy,
    Progressing,
    Degraded,
    Missing,
    Suspended,
    Unknown,
}

impl From<Health> for switchyard_common::proto::Health {
    fn from(health: Health) -> Self {
        use switchyard_common::proto::Health as Proto;
        match health {
            Health::Healthy => Proto::Healthy,
            Health::Progressing => Proto::Progressing,
            Health::Degraded => Proto::Degraded,
            Health::Missing => Proto::Missing,
            Health::Suspended => Proto::Suspended,
            Health::Unknown => Proto::Unknown,
        }
    }
}

impl From<switchyard_common::proto::Health> for Health {
    fn from(health: switchyard_common::proto::Health) -> Self {
        use switchyard_common::proto::Health as Proto;
        match health {
            Proto::Healthy => Health::Healthy,
            Proto::Progressing => Health::Progressing,
            Proto::Degraded => Health::Degraded,
            Proto::Missing => Health::Missing,
            Proto::Suspended => Health::Suspended,
            Proto::Unknown => Health::Unknown,
        }
    }
}

/// The health of one object and, when there is something to say, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Assessment {
    pub(crate) health: Health,
    pub(crate) message: Option<String>,
}

impl Assessment {
    fn new(health: Health, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            health,
            message: (!message.is_empty()).then_some(message),
        }
    }

    fn bare(health: Health) -> Self {
        Self {
            health,
            message: None,
        }
    }
}

/// The assessment of an object that should exist but does not; the caller
/// decides absence, since only it has asked the API server.
pub(crate) fn missing() -> Assessment {
    Assessment::new(Health::Missing, "object does not exist")
}

/// Rank for aggregation: higher is worse. Unknown is handled separately.
fn severity(health: Health) -> u8 {
    match health {
        Health::Healthy | Health::Unknown => 0,
        Health::Suspended => 1,
        Health::Progressing => 2,
        Health::Missing => 3,
        Health::Degraded => 4,
    }
}

/// Health of a set of objects (an app): the worst member wins, in the order
/// Degraded > Missing > Progressing > Suspended > Healthy, as in Argo CD's
/// application health.
///
/// Unknown means "we cannot judge this object" (a custom resource whose
/// status we do not understand), not "something is wrong", so it is left
/// out: it neither makes an app unhealthy nor hides a worse member. Only when
/// every member is Unknown is the set Unknown. An empty set is Healthy, as
/// there is nothing that could be unhealthy.
pub(crate) fn aggregate(healths: impl IntoIterator<Item = Health>) -> Health {
    let mut worst: Option<Health> = None;
    let mut any_unknown = false;
    for health in healths {
        if health == Health::Unknown {
            any_unknown = true;
            continue;
        }
        if worst.is_none_or(|w| severity(health) > severity(w)) {
            worst = Some(health);
        }
    }
    match worst {
        Some(health) => health,
        None if any_unknown => Health::Unknown,
        None => Health::Healthy,
    }
}

/// Health of a live object as returned by the API server.
pub(crate) fn assess(object: &Value) -> Assessment {
    match assess_inner(object) {
        Ok(assessment) => assessment,
        Err(message) => Assessment::new(Health::Unknown, message),
    }
}

/// An error message about an unexpected field; it becomes Unknown.
pub(super) type Check = Result<Assessment, String>;

fn assess_inner(object: &Value) -> Check {
    if !object.is_object() {
        return Err("not a Kubernetes object (not a JSON object)".into());
    }
    if object
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
    {
        return Ok(Assessment::new(Health::Progressing, "pending deletion"));
    }
    let kind = string(object, "/kind")?.unwrap_or_default();
    let api_version = string(object, "/apiVersion")?.unwrap_or_default();
    // "apps/v1" -> "apps"; "v1" -> "" (core).
    let group = api_version.rsplit_once('/').map_or("", |(group, _)| group);
    match (group, kind) {
        ("apps" | "extensions", "Deployment") => deployment(object),
        ("apps", "StatefulSet") => stateful_set(object),
        ("apps" | "extensions", "DaemonSet") => daemon_set(object),
        ("apps" | "extensions", "ReplicaSet") => replica_set(object),
        ("", "Pod") => pod(object),
        ("batch", "Job") => job(object),
        ("batch", "CronJob") => cron_job(object),
        ("", "PersistentVolumeClaim") => pvc(object),
        ("", "Service") => service(object),
        ("networking.k8s.io" | "extensions", "Ingress") => ingress(object),
        ("", "Namespace") => namespace(object),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd(object),
        ("apiregistration.k8s.io", "APIService") => api_service(object),
        ("autoscaling", "HorizontalPodAutoscaler") => hpa(object),
        (group, kind) if is_stateless_kind(group, kind) => Ok(Assessment::bare(Health::Healthy)),
        _ => generic(object),
    }
}

/// Built-in kinds whose status, if any, says nothing about health.
fn is_stateless_kind(group: &str, kind: &str) -> bool {
    matches!(
        (group, kind),
        (
            "",
            "ConfigMap"
                | "Secret"
                | "ServiceAccount"
                | "Endpoints"
                | "LimitRange"
                | "ResourceQuota"
                | "PersistentVolume"
                | "ReplicationController"
                | "PodTemplate"
        ) | (
            "rbac.authorization.k8s.io",
            "Role" | "RoleBinding" | "ClusterRole" | "ClusterRoleBinding"
        ) | ("networking.k8s.io", "NetworkPolicy" | "IngressClass")
            | ("policy", "PodDisruptionBudget" | "PodSecurityPolicy")
            | ("storage.k8s.io", "StorageClass" | "CSIDriver")
            | ("scheduling.k8s.io", "PriorityClass")
            | ("node.k8s.io", "RuntimeClass")
            | ("coordination.k8s.io", "Lease")
            | ("discovery.k8s.io", "EndpointSlice")
            | (
                "admissionregistration.k8s.io",
                "MutatingWebhookConfiguration"
                    | "ValidatingWebhookConfiguration"
                    | "ValidatingAdmissionPolicy"
                    | "ValidatingAdmissionPolicyBinding"
            )
    )
}

/// Shared by the health rules' unit tests.
#[cfg(test)]
mod test_support {
    use super::*;
    use serde_json::json;

    pub(super) fn health(object: Value) -> Health {
        assess(&object).health
    }

    pub(super) fn message(object: Value) -> String {
        assess(&object).message.unwrap_or_default()
    }

    pub(super) fn deploy(spec: Value, status: Value) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "generation": 2},
            "spec": spec, "status": status,
        })
    }

    pub(super) fn ready_deploy_status() -> Value {
        json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3})
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;
    use serde_json::json;

    #[test]
    fn proto_mapping_is_one_to_one() {
        use switchyard_common::proto::Health as P;
        let pairs = [
            (Health::Healthy, P::Healthy),
            (Health::Progressing, P::Progressing),
            (Health::Degraded, P::Degraded),
            (Health::Missing, P::Missing),
            (Health::Suspended, P::Suspended),
            (Health::Unknown, P::Unknown),
        ];
        for (ours, theirs) in pairs {
            assert_eq!(P::from(ours), theirs);
            assert_eq!(Health::from(theirs), ours);
        }
    }

    #[test]
    fn aggregate_worst_wins() {
        use Health::*;
        assert_eq!(aggregate([]), Healthy);
        assert_eq!(aggregate([Healthy, Healthy]), Healthy);
        assert_eq!(aggregate([Healthy, Suspended]), Suspended);
        assert_eq!(aggregate([Suspended, Progressing]), Progressing);
        assert_eq!(aggregate([Progressing, Missing, Healthy]), Missing);
        assert_eq!(aggregate([Missing, Degraded, Progressing]), Degraded);
        assert_eq!(aggregate([Degraded, Healthy]), Degraded);
    }

    #[test]
    fn aggregate_ignores_unknown_unless_all_unknown() {
        use Health::*;
        assert_eq!(aggregate([Unknown, Healthy]), Healthy);
        assert_eq!(aggregate([Healthy, Unknown]), Healthy);
        assert_eq!(aggregate([Unknown, Progressing]), Progressing);
        assert_eq!(aggregate([Unknown, Unknown]), Unknown);
        assert_eq!(aggregate([Unknown]), Unknown);
    }

    #[test]
    fn missing_is_missing() {
        assert_eq!(missing().health, Health::Missing);
        assert!(missing().message.is_some());
    }

    #[test]
    fn wrong_types_are_unknown_with_message() {
        let d = deploy(json!({"replicas": "three"}), ready_deploy_status());
        let a = assess(&d);
        assert_eq!(a.health, Health::Unknown);
        assert_eq!(
            a.message.as_deref(),
            Some("spec.replicas is not an integer")
        );

        let d = deploy(
            json!({}),
            json!({"observedGeneration": 2, "conditions": "nope"}),
        );
        assert_eq!(message(d), "status.conditions is not a list");

        let d = deploy(
            json!({}),
            json!({"observedGeneration": 2, "conditions": [{"type": 5}]}),
        );
        assert_eq!(message(d), "status.conditions[0].type is not a string");

        assert_eq!(health(json!("a string")), Health::Unknown);
        assert_eq!(health(json!(null)), Health::Unknown);
        assert_eq!(health(json!({"kind": 7})), Health::Unknown);
    }

    #[test]
    fn deletion_pending_is_progressing() {
        let d = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "deletionTimestamp": "2024-01-01T00:00:00Z"}});
        assert_eq!(assess(&d).message.as_deref(), Some("pending deletion"));
        assert_eq!(health(d), Health::Progressing);
    }

    #[test]
    fn stateless_kinds_are_healthy() {
        for (api_version, kind) in [
            ("v1", "ConfigMap"),
            ("v1", "Secret"),
            ("v1", "ServiceAccount"),
            ("rbac.authorization.k8s.io/v1", "ClusterRole"),
            ("rbac.authorization.k8s.io/v1", "RoleBinding"),
            ("networking.k8s.io/v1", "NetworkPolicy"),
        ] {
            let o = json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}, "status": {"something": 1}});
            assert_eq!(health(o), Health::Healthy, "{kind}");
        }
    }
}
