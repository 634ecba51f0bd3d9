//! Health of cluster-level API objects: Namespace, CustomResourceDefinition,
//! APIService, and HorizontalPodAutoscaler.

use super::fields::{conditions, find, healthy, progressing, string};
use super::{Assessment, Check, Health};
use serde_json::Value;

pub(super) fn namespace(object: &Value) -> Check {
    if string(object, "/status/phase")? == Some("Terminating") {
        return progressing("namespace is terminating");
    }
    healthy()
}

pub(super) fn crd(object: &Value) -> Check {
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

pub(super) fn api_service(object: &Value) -> Check {
    let conditions = conditions(object)?;
    match find(&conditions, "Available") {
        Some(c) if c.status == "True" => healthy(),
        // Argo CD: an unavailable aggregated API is usually its backing
        // service still starting, so Progressing rather than Degraded.
        Some(c) => progressing(format!("{}: {}", c.reason, c.message)),
        None => progressing("waiting for the API service to be available"),
    }
}

pub(super) fn hpa(object: &Value) -> Check {
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

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use serde_json::json;

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
}
