//! Health of custom resources (anything without a rule of its own), by
//! their conditions, kstatus style.

use super::fields::{Condition, conditions, find, healthy, int, progressing};
use super::{Assessment, Check, Health};
use serde_json::Value;

pub(super) fn generic(object: &Value) -> Check {
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
    use super::super::test_support::*;
    use super::*;
    use serde_json::json;

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
