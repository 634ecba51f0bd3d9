//! Health of networking objects: Service and Ingress.

use super::Check;
use super::fields::{array, healthy, progressing, string};
use serde_json::Value;

fn has_load_balancer_ingress(object: &Value) -> Result<bool, String> {
    Ok(!array(object, "/status/loadBalancer/ingress")?.is_empty())
}

pub(super) fn service(object: &Value) -> Check {
    if string(object, "/spec/type")? == Some("LoadBalancer") && !has_load_balancer_ingress(object)?
    {
        return progressing("waiting for the load balancer");
    }
    healthy()
}

pub(super) fn ingress(object: &Value) -> Check {
    // Argo CD waits for the controller to publish an address; without one the
    // ingress may not be served yet.
    if !has_load_balancer_ingress(object)? {
        return progressing("waiting for the ingress controller to assign an address");
    }
    healthy()
}

#[cfg(test)]
mod tests {
    use super::super::Health;
    use super::super::test_support::*;
    use super::*;
    use serde_json::json;

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
}
