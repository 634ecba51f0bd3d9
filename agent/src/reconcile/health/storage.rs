//! Health of storage objects: PersistentVolumeClaim.

use super::fields::{healthy, progressing, string};
use super::{Assessment, Check, Health};
use serde_json::Value;

pub(super) fn pvc(object: &Value) -> Check {
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

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use serde_json::json;

    #[test]
    fn pvc_phases() {
        let pvc = |phase: Value| json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"}, "status": {"phase": phase}});
        assert_eq!(health(pvc(json!("Bound"))), Health::Healthy);
        assert_eq!(health(pvc(json!("Pending"))), Health::Progressing);
        assert_eq!(health(pvc(json!("Lost"))), Health::Degraded);
        assert_eq!(health(pvc(json!(null))), Health::Progressing);
        assert_eq!(health(pvc(json!(3))), Health::Unknown);
    }
}
