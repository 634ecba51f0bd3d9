//! Manifests the end-to-end tests deploy: a Deployment and a ConfigMap for
//! an app called `web`, and a CustomResourceDefinition with one custom
//! resource, for tests of ordering and unknown kinds.

/// The Deployment `web` (nginx) with `replicas` replicas.
pub fn web_deployment(replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.27
"
    )
}

/// The ConfigMap `web-config`.
pub const WEB_CONFIG: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
data:
  greeting: hello
";

/// The CustomResourceDefinition of `widgets.example.com` (namespaced).
pub const WIDGET_CRD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
";

/// A Widget `gizmo`, which exists only once [`WIDGET_CRD`] is established.
pub const WIDGET: &str = "apiVersion: example.com/v1
kind: Widget
metadata:
  name: gizmo
spec:
  size: 3
";
