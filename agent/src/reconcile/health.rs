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

use serde_json::Value;

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
type Check = Result<Assessment, String>;

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

// ---- field readers: absent or null is None, a wrong type is an error ----

fn field_name(pointer: &str) -> String {
    pointer.trim_start_matches('/').replace('/', ".")
}

fn string<'a>(object: &'a Value, pointer: &str) -> Result<Option<&'a str>, String> {
    match object.pointer(pointer) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("{} is not a string", field_name(pointer))),
    }
}

fn int(object: &Value, pointer: &str) -> Result<Option<i64>, String> {
    match object.pointer(pointer) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| format!("{} is not an integer", field_name(pointer))),
    }
}

fn boolean(object: &Value, pointer: &str) -> Result<Option<bool>, String> {
    match object.pointer(pointer) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(format!("{} is not a boolean", field_name(pointer))),
    }
}

fn array<'a>(object: &'a Value, pointer: &str) -> Result<&'a [Value], String> {
    match object.pointer(pointer) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(format!("{} is not a list", field_name(pointer))),
    }
}

/// One entry of `status.conditions`.
struct Condition<'a> {
    type_: &'a str,
    status: &'a str,
    reason: &'a str,
    message: &'a str,
    observed_generation: Option<i64>,
}

fn conditions(object: &Value) -> Result<Vec<Condition<'_>>, String> {
    array(object, "/status/conditions")?
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let what = |field: &str| format!("status.conditions[{i}].{field}");
            let text = |field: &str| match c.get(field) {
                None | Some(Value::Null) => Ok(""),
                Some(Value::String(s)) => Ok(s.as_str()),
                Some(_) => Err(format!("{} is not a string", what(field))),
            };
            if !c.is_object() {
                return Err(format!("status.conditions[{i}] is not an object"));
            }
            Ok(Condition {
                type_: text("type")?,
                status: text("status")?,
                reason: text("reason")?,
                message: text("message")?,
                observed_generation: match c.get("observedGeneration") {
                    None | Some(Value::Null) => None,
                    Some(v) => Some(v.as_i64().ok_or_else(|| {
                        format!("{} is not an integer", what("observedGeneration"))
                    })?),
                },
            })
        })
        .collect()
}

fn find<'c, 'a>(conditions: &'c [Condition<'a>], type_: &str) -> Option<&'c Condition<'a>> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// `metadata.generation` and `status.observedGeneration`, both defaulting to
/// 0 as in the typed Go structs Argo CD reads.
fn generations(object: &Value) -> Result<(i64, i64), String> {
    Ok((
        int(object, "/metadata/generation")?.unwrap_or(0),
        int(object, "/status/observedGeneration")?.unwrap_or(0),
    ))
}

/// `spec.replicas`, which the API server defaults to 1.
fn spec_replicas(object: &Value) -> Result<i64, String> {
    Ok(int(object, "/spec/replicas")?.unwrap_or(1))
}

fn status_int(object: &Value, field: &str) -> Result<i64, String> {
    Ok(int(object, &format!("/status/{field}"))?.unwrap_or(0))
}

fn progressing(message: impl Into<String>) -> Check {
    Ok(Assessment::new(Health::Progressing, message))
}

fn healthy() -> Check {
    Ok(Assessment::bare(Health::Healthy))
}

// ---- workloads ----

fn deployment(object: &Value) -> Check {
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

fn stateful_set(object: &Value) -> Check {
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

fn daemon_set(object: &Value) -> Check {
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

fn replica_set(object: &Value) -> Check {
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

fn pod(object: &Value) -> Check {
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

fn job(object: &Value) -> Check {
    let conditions = conditions(object)?;
    if let Some(c) = find(&conditions, "Failed")
        && c.status == "True"
    {
        let message = if c.message.is_empty() {
            c.reason
        } else {
            c.message
        };
        return Ok(Assessment::new(Health::Degraded, message));
    }
    if let Some(c) = find(&conditions, "Complete")
        && c.status == "True"
    {
        return Ok(Assessment::new(Health::Healthy, c.message));
    }
    let suspended_condition = find(&conditions, "Suspended").is_some_and(|c| c.status == "True");
    if suspended_condition || boolean(object, "/spec/suspend")? == Some(true) {
        return Ok(Assessment::new(Health::Suspended, "job is suspended"));
    }
    progressing("job is running")
}

fn cron_job(object: &Value) -> Check {
    if boolean(object, "/spec/suspend")? == Some(true) {
        return Ok(Assessment::new(Health::Suspended, "cron job is suspended"));
    }
    // The health of each run belongs to its Job.
    healthy()
}

fn pvc(object: &Value) -> Check {
    match string(object, "/status/phase")? {
        Some("Bound") => healthy(),
        Some("Pending") | None => progressing("waiting for the claim to be bound"),
        Some("Lost") => Ok(Assessment::new(
            Health::Degraded,
            "the claim lost its volume",
        )),
        Some(other) => Ok(Assessment::new(
            Health::Unknown,
            format!("claim phase {other}"),
        )),
    }
}

fn has_load_balancer_ingress(object: &Value) -> Result<bool, String> {
    Ok(!array(object, "/status/loadBalancer/ingress")?.is_empty())
}

fn service(object: &Value) -> Check {
    if string(object, "/spec/type")? == Some("LoadBalancer") && !has_load_balancer_ingress(object)?
    {
        return progressing("waiting for the load balancer");
    }
    healthy()
}

fn ingress(object: &Value) -> Check {
    // Argo CD waits for the controller to publish an address; without one the
    // ingress may not be served yet.
    if !has_load_balancer_ingress(object)? {
        return progressing("waiting for the ingress controller to assign an address");
    }
    healthy()
}

fn namespace(object: &Value) -> Check {
    if string(object, "/status/phase")? == Some("Terminating") {
        return progressing("namespace is terminating");
    }
    healthy()
}

fn crd(object: &Value) -> Check {
    let conditions = conditions(object)?;
    if let Some(c) = find(&conditions, "NamesAccepted")
        && c.status == "False"
    {
        // A names conflict with another CRD never resolves by waiting.
        return Ok(Assessment::new(Health::Degraded, c.message));
    }
    match find(&conditions, "Established") {
        Some(c) if c.status == "True" => healthy(),
        _ => progressing("waiting for the definition to be established"),
    }
}

fn api_service(object: &Value) -> Check {
    let conditions = conditions(object)?;
    match find(&conditions, "Available") {
        Some(c) if c.status == "True" => healthy(),
        // Argo CD: an unavailable aggregated API is usually its backing
        // service still starting, so Progressing rather than Degraded.
        Some(c) => progressing(format!("{}: {}", c.reason, c.message)),
        None => progressing("waiting for the API service to be available"),
    }
}

fn hpa(object: &Value) -> Check {
    const DEGRADED: &[(&str, &str)] = &[
        ("AbleToScale", "FailedGetScale"),
        ("AbleToScale", "FailedUpdateScale"),
        ("ScalingActive", "FailedGetResourceMetric"),
        ("ScalingActive", "InvalidSelector"),
    ];
    // Same walk as Argo CD: the first decisive condition wins.
    for c in conditions(object)? {
        if DEGRADED.contains(&(c.type_, c.reason)) {
            return Ok(Assessment::new(Health::Degraded, c.message));
        }
        if matches!(c.type_, "AbleToScale" | "ScalingLimited") && c.status == "True" {
            return Ok(Assessment::new(Health::Healthy, c.message));
        }
    }
    progressing("waiting to autoscale")
}

// ---- custom resources ----

fn generic(object: &Value) -> Check {
    let status = match object.get("status") {
        None | Some(Value::Null) => return healthy(),
        Some(status) => status,
    };
    if !status.is_object() {
        return Err("status is not an object".into());
    }
    let generation = int(object, "/metadata/generation")?;
    if let (Some(generation), Some(observed)) =
        (generation, int(object, "/status/observedGeneration")?)
        && observed < generation
    {
        return progressing("waiting for the controller to observe the latest generation");
    }
    let conditions = conditions(object)?;
    if let Some(c) = find(&conditions, "Stalled")
        && c.status == "True"
    {
        return Ok(Assessment::new(Health::Degraded, condition_text(c)));
    }
    if let Some(c) = find(&conditions, "Reconciling")
        && c.status == "True"
    {
        return progressing(condition_text(c));
    }
    let Some(c) = find(&conditions, "Ready").or_else(|| find(&conditions, "Available")) else {
        return Ok(Assessment::new(
            Health::Unknown,
            "no Ready or Available condition",
        ));
    };
    // A condition written for an older generation says nothing about the
    // current spec.
    if let (Some(generation), Some(observed)) = (generation, c.observed_generation)
        && observed < generation
    {
        return progressing(format!("{} condition is for an older generation", c.type_));
    }
    match c.status {
        "True" => Ok(Assessment::new(Health::Healthy, c.message)),
        "False" => Ok(Assessment::new(Health::Degraded, condition_text(c))),
        _ => progressing(condition_text(c)),
    }
}

fn condition_text(c: &Condition<'_>) -> String {
    match (c.reason.is_empty(), c.message.is_empty()) {
        (_, false) if !c.reason.is_empty() => format!("{}: {}", c.reason, c.message),
        (_, false) => c.message.to_owned(),
        (false, true) => c.reason.to_owned(),
        (true, true) => format!("{} is {}", c.type_, c.status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn health(object: Value) -> Health {
        assess(&object).health
    }

    fn message(object: Value) -> String {
        assess(&object).message.unwrap_or_default()
    }

    fn deploy(spec: Value, status: Value) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "generation": 2},
            "spec": spec, "status": status,
        })
    }

    fn ready_deploy_status() -> Value {
        json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3})
    }

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

    fn job_with(spec: Value, conditions: Value) -> Value {
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"}, "spec": spec, "status": {"conditions": conditions}})
    }

    #[test]
    fn job_rules() {
        assert_eq!(health(job_with(json!({}), json!([]))), Health::Progressing);
        assert_eq!(
            health(job_with(
                json!({}),
                json!([{"type": "Complete", "status": "True"}])
            )),
            Health::Healthy
        );
        let failed = job_with(
            json!({}),
            json!([{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]),
        );
        assert_eq!(health(failed.clone()), Health::Degraded);
        assert_eq!(
            message(failed),
            "Job has reached the specified backoff limit"
        );
        assert_eq!(
            health(job_with(json!({"suspend": true}), json!([]))),
            Health::Suspended
        );
        assert_eq!(
            health(job_with(
                json!({}),
                json!([{"type": "Suspended", "status": "True"}])
            )),
            Health::Suspended
        );
        // A condition that is not True does not count.
        assert_eq!(
            health(job_with(
                json!({}),
                json!([{"type": "Failed", "status": "False"}])
            )),
            Health::Progressing
        );
    }

    #[test]
    fn cron_job_rules() {
        let cj = |spec: Value| json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"}, "spec": spec, "status": {}});
        assert_eq!(
            health(cj(json!({"schedule": "* * * * *"}))),
            Health::Healthy
        );
        assert_eq!(health(cj(json!({"suspend": true}))), Health::Suspended);
    }

    #[test]
    fn pvc_phases() {
        let pvc = |phase: Value| json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"}, "status": {"phase": phase}});
        assert_eq!(health(pvc(json!("Bound"))), Health::Healthy);
        assert_eq!(health(pvc(json!("Pending"))), Health::Progressing);
        assert_eq!(health(pvc(json!("Lost"))), Health::Degraded);
        assert_eq!(health(pvc(json!(null))), Health::Progressing);
        assert_eq!(health(pvc(json!(3))), Health::Unknown);
    }

    #[test]
    fn service_and_ingress() {
        let svc = |ty: &str, status: Value| json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"type": ty}, "status": status});
        assert_eq!(health(svc("ClusterIP", json!({}))), Health::Healthy);
        assert_eq!(
            health(svc("LoadBalancer", json!({"loadBalancer": {}}))),
            Health::Progressing
        );
        assert_eq!(
            health(svc(
                "LoadBalancer",
                json!({"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}})
            )),
            Health::Healthy
        );
        let ing = |status: Value| json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "i"}, "status": status});
        assert_eq!(health(ing(json!({}))), Health::Progressing);
        assert_eq!(
            health(ing(
                json!({"loadBalancer": {"ingress": [{"hostname": "lb"}]}})
            )),
            Health::Healthy
        );
    }

    #[test]
    fn namespace_and_crd() {
        let ns = |phase: &str| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}, "status": {"phase": phase}});
        assert_eq!(health(ns("Active")), Health::Healthy);
        assert_eq!(health(ns("Terminating")), Health::Progressing);

        let crd = |conditions: Value| json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "widgets.example.com"}, "status": {"conditions": conditions}});
        assert_eq!(
            health(crd(json!([{"type": "Established", "status": "True"}]))),
            Health::Healthy
        );
        assert_eq!(
            health(crd(json!([{"type": "Established", "status": "False"}]))),
            Health::Progressing
        );
        assert_eq!(health(crd(json!([]))), Health::Progressing);
        assert_eq!(
            health(crd(
                json!([{"type": "NamesAccepted", "status": "False", "message": "conflict"}])
            )),
            Health::Degraded
        );
    }

    #[test]
    fn api_service_and_hpa() {
        let api = |conditions: Value| json!({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": "v1beta1.metrics.k8s.io"}, "status": {"conditions": conditions}});
        assert_eq!(
            health(api(json!([{"type": "Available", "status": "True"}]))),
            Health::Healthy
        );
        assert_eq!(
            health(api(
                json!([{"type": "Available", "status": "False", "reason": "MissingEndpoints"}])
            )),
            Health::Progressing
        );
        let hpa = |conditions: Value| json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h"}, "status": {"conditions": conditions}});
        assert_eq!(
            health(hpa(json!([{"type": "AbleToScale", "status": "True"}]))),
            Health::Healthy
        );
        assert_eq!(
            health(hpa(
                json!([{"type": "ScalingActive", "status": "False", "reason": "FailedGetResourceMetric"}])
            )),
            Health::Degraded
        );
        assert_eq!(health(hpa(json!([]))), Health::Progressing);
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

    fn cr(status: Value) -> Value {
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "generation": 3}, "status": status})
    }

    #[test]
    fn custom_resources_by_conditions() {
        let c = |ty: &str, st: &str| json!({"conditions": [{"type": ty, "status": st, "reason": "R", "message": "m"}]});
        assert_eq!(health(cr(c("Ready", "True"))), Health::Healthy);
        assert_eq!(health(cr(c("Ready", "False"))), Health::Degraded);
        assert_eq!(message(cr(c("Ready", "False"))), "R: m");
        assert_eq!(health(cr(c("Ready", "Unknown"))), Health::Progressing);
        assert_eq!(health(cr(c("Available", "True"))), Health::Healthy);
        assert_eq!(health(cr(c("Available", "False"))), Health::Degraded);
        assert_eq!(health(cr(c("Stalled", "True"))), Health::Degraded);
        assert_eq!(health(cr(c("Reconciling", "True"))), Health::Progressing);
        assert_eq!(health(cr(c("Synced", "True"))), Health::Unknown);
        assert_eq!(health(cr(json!({"phase": "Running"}))), Health::Unknown);
        // No status at all: a configuration-only resource.
        let no_status = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {}});
        assert_eq!(health(no_status), Health::Healthy);
        assert_eq!(health(cr(json!("bad"))), Health::Unknown);
    }

    #[test]
    fn custom_resource_ready_beats_available() {
        let status = json!({"conditions": [
            {"type": "Available", "status": "True"},
            {"type": "Ready", "status": "False", "message": "broken"},
        ]});
        assert_eq!(health(cr(status)), Health::Degraded);
    }

    #[test]
    fn custom_resource_stale_generation_is_progressing() {
        let status =
            json!({"observedGeneration": 2, "conditions": [{"type": "Ready", "status": "True"}]});
        assert_eq!(health(cr(status)), Health::Progressing);
        let status =
            json!({"conditions": [{"type": "Ready", "status": "True", "observedGeneration": 2}]});
        assert_eq!(health(cr(status)), Health::Progressing);
        let status =
            json!({"conditions": [{"type": "Ready", "status": "True", "observedGeneration": 3}]});
        assert_eq!(health(cr(status)), Health::Healthy);
    }

    #[test]
    fn custom_kind_named_like_core_kind_uses_conditions() {
        let knative = json!({"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": "s"},
            "status": {"conditions": [{"type": "Ready", "status": "False", "message": "revision failed"}]}});
        assert_eq!(health(knative), Health::Degraded);
    }
}
