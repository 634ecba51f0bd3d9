//! Every Kubernetes manifest under `deploy/` is a valid, typed object, with
//! no field the typed object would drop (a typo like `contaners` or
//! `readOnlyRootFileSystem` is silently ignored by `kubectl apply` and by
//! k8s-openapi), and the objects refer to each other consistently: service
//! accounts, ConfigMaps, Secrets and their keys, volume claims, Service
//! selectors and ports, probe ports, RBAC role references. The flags the
//! manifests and the systemd unit pass to the binaries exist, and the
//! Dockerfiles build and start the right binaries.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, Namespace, PersistentVolumeClaim, PodTemplateSpec, Secret, Service,
    ServiceAccount,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;
use switchyard_tests::process::{binary, run};

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// One typed object, as k8s-openapi deserialized it.
enum Typed {
    /// Checked, with nothing else to look at (Namespace, ServiceAccount).
    Plain,
    ClusterRole(ClusterRole),
    ClusterRoleBinding(ClusterRoleBinding),
    Role(Role),
    RoleBinding(RoleBinding),
    ConfigMap(ConfigMap),
    Secret(Secret),
    Service(Service),
    Deployment(Deployment),
    StatefulSet(StatefulSet),
    Job(Job),
    PersistentVolumeClaim(PersistentVolumeClaim),
    NetworkPolicy(NetworkPolicy),
}

/// A manifest document: where it came from and what it is.
struct Object {
    /// `path/relative/to/root.yaml#N` (N counts documents from 1).
    origin: String,
    kind: String,
    name: String,
    namespace: Option<String>,
    typed: Typed,
}

impl Object {
    fn id(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} ({} {ns}/{})", self.origin, self.kind, self.name),
            None => format!("{} ({} {})", self.origin, self.kind, self.name),
        }
    }
}

/// Deserialize `value` as `T`, serialize it back, and require that nothing in
/// `value` was lost on the way (k8s-openapi ignores unknown fields).
fn typed<T: DeserializeOwned + Serialize>(value: &Value) -> Result<T, Vec<String>> {
    let object: T = serde_path_to_error::deserialize(value.clone()).map_err(|e| {
        let path = e.path().to_string();
        vec![format!("`{path}`: {}", e.into_inner())]
    })?;
    let back = serde_json::to_value(&object).map_err(|e| vec![e.to_string()])?;
    let mut lost = Vec::new();
    compare(value, &back, &mut Vec::new(), &mut lost);
    if lost.is_empty() {
        Ok(object)
    } else {
        Err(lost)
    }
}

/// Every key path and scalar of `original` must be in `back`.
fn compare(original: &Value, back: &Value, path: &mut Vec<String>, out: &mut Vec<String>) {
    let shown = |path: &[String]| {
        if path.is_empty() {
            "the document".to_owned()
        } else {
            path.join(".")
        }
    };
    match (original, back) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                path.push(key.clone());
                match b.get(key) {
                    Some(kept) => compare(value, kept, path, out),
                    None => out.push(format!(
                        "unknown or misplaced field `{}` (the typed object drops it)",
                        shown(path)
                    )),
                }
                path.pop();
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, value) in a.iter().enumerate() {
                path.push(i.to_string());
                match b.get(i) {
                    Some(kept) => compare(value, kept, path, out),
                    None => out.push(format!("`{}` dropped by the typed object", shown(path))),
                }
                path.pop();
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(format!(
            "`{}` is {a} in the file but {b} in the typed object",
            shown(path)
        )),
    }
}

fn parse_typed(value: &Value, api_version: &str, kind: &str) -> Result<Typed, Vec<String>> {
    Ok(match (api_version, kind) {
        ("v1", "Namespace") => typed::<Namespace>(value).map(|_| Typed::Plain)?,
        ("v1", "ServiceAccount") => typed::<ServiceAccount>(value).map(|_| Typed::Plain)?,
        ("v1", "ConfigMap") => Typed::ConfigMap(typed(value)?),
        ("v1", "Secret") => Typed::Secret(typed(value)?),
        ("v1", "Service") => Typed::Service(typed(value)?),
        ("v1", "PersistentVolumeClaim") => Typed::PersistentVolumeClaim(typed(value)?),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => Typed::ClusterRole(typed(value)?),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
            Typed::ClusterRoleBinding(typed(value)?)
        }
        ("rbac.authorization.k8s.io/v1", "Role") => Typed::Role(typed(value)?),
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => Typed::RoleBinding(typed(value)?),
        ("apps/v1", "Deployment") => Typed::Deployment(typed(value)?),
        ("apps/v1", "StatefulSet") => Typed::StatefulSet(typed(value)?),
        ("batch/v1", "Job") => Typed::Job(typed(value)?),
        ("networking.k8s.io/v1", "NetworkPolicy") => Typed::NetworkPolicy(typed(value)?),
        (api_version, kind) => {
            return Err(vec![format!(
                "unknown apiVersion/kind {api_version}/{kind} (add it to the test's match if it is meant to be there)"
            )]);
        }
    })
}

fn is_cluster_scoped(kind: &str) -> bool {
    matches!(kind, "Namespace" | "ClusterRole" | "ClusterRoleBinding")
}

/// All `*.yaml`/`*.yml` files under `dir`, sorted.
fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            yaml_files(&path, out)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            out.push(path);
        }
    }
    Ok(())
}

fn is_kustomization(path: &Path) -> bool {
    matches!(
        path.file_name().and_then(|n| n.to_str()),
        Some("kustomization.yaml" | "kustomization.yml" | "Kustomization")
    )
}

/// Check every manifest under `root`; the number of objects on success,
/// every problem found (each naming its file) otherwise.
fn check_dir(root: &Path) -> Result<usize, Vec<String>> {
    let mut errors = Vec::new();
    let mut files = Vec::new();
    if let Err(e) = yaml_files(root, &mut files) {
        return Err(vec![format!("walking {}: {e}", root.display())]);
    }
    let mut objects = Vec::new();
    for path in &files {
        let rel = path
            .strip_prefix(root)
            .unwrap_or(path)
            .display()
            .to_string();
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) => {
                errors.push(format!("{rel}: {e}"));
                continue;
            }
        };
        let docs: Vec<Value> = match serde_saphyr::from_multiple(&text) {
            Ok(docs) => docs,
            Err(e) => {
                errors.push(format!("{rel}: invalid YAML: {e}"));
                continue;
            }
        };
        if is_kustomization(path) {
            check_kustomization(path, &rel, &docs, &mut errors);
            continue;
        }
        let mut any = false;
        for (i, doc) in docs.iter().enumerate() {
            let origin = format!("{rel}#{}", i + 1);
            if doc.is_null() {
                continue;
            }
            any = true;
            let field = |name: &str| doc.get(name).and_then(Value::as_str).unwrap_or("");
            let (api_version, kind) = (field("apiVersion"), field("kind"));
            let metadata = |name: &str| {
                doc.get("metadata")
                    .and_then(|m| m.get(name))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            };
            let name = metadata("name").unwrap_or_default();
            let namespace = metadata("namespace");
            if api_version.is_empty() || kind.is_empty() {
                errors.push(format!("{origin}: no apiVersion or kind"));
                continue;
            }
            let typed = match parse_typed(doc, api_version, kind) {
                Ok(typed) => typed,
                Err(problems) => {
                    for p in problems {
                        errors.push(format!("{origin} ({kind} {name}): {p}"));
                    }
                    continue;
                }
            };
            if name.is_empty() {
                errors.push(format!("{origin} ({kind}): no metadata.name"));
            }
            match (is_cluster_scoped(kind), &namespace) {
                (true, Some(_)) => errors.push(format!(
                    "{origin} ({kind} {name}): a cluster-scoped object has a namespace"
                )),
                (false, None) => errors.push(format!(
                    "{origin} ({kind} {name}): no metadata.namespace (the manifests must not depend on kubectl's current namespace)"
                )),
                _ => {}
            }
            objects.push(Object {
                origin,
                kind: kind.to_owned(),
                name,
                namespace,
                typed,
            });
        }
        if !any {
            errors.push(format!("{rel}: no Kubernetes object in the file"));
        }
    }
    check_references(&objects, &mut errors);
    if errors.is_empty() {
        Ok(objects.len())
    } else {
        Err(errors)
    }
}

fn check_kustomization(path: &Path, rel: &str, docs: &[Value], errors: &mut Vec<String>) {
    let [doc] = docs else {
        errors.push(format!("{rel}: a kustomization is one document"));
        return;
    };
    if doc.get("kind").and_then(Value::as_str) != Some("Kustomization") {
        errors.push(format!("{rel}: kind is not Kustomization"));
    }
    let dir = path.parent().expect("a file has a parent");
    let resources = doc.get("resources").and_then(Value::as_array);
    if resources.is_none_or(Vec::is_empty) {
        errors.push(format!("{rel}: no resources"));
    }
    for resource in resources.into_iter().flatten() {
        match resource.as_str() {
            Some(r) if dir.join(r).exists() => {}
            Some(r) => errors.push(format!("{rel}: resource {r} does not exist")),
            None => errors.push(format!("{rel}: resource {resource} is not a path")),
        }
    }
}

/// A pod template of a workload, with what it can mount besides its volumes.
struct Workload<'a> {
    object: &'a Object,
    template: &'a PodTemplateSpec,
    claim_templates: Vec<String>,
}

fn workloads(objects: &[Object]) -> Vec<Workload<'_>> {
    objects
        .iter()
        .filter_map(|object| {
            let (template, claim_templates) = match &object.typed {
                Typed::Deployment(d) => (&d.spec.as_ref()?.template, Vec::new()),
                Typed::StatefulSet(s) => {
                    let spec = s.spec.as_ref()?;
                    let claims = spec
                        .volume_claim_templates
                        .iter()
                        .flatten()
                        .filter_map(|c| c.metadata.name.clone())
                        .collect();
                    (&spec.template, claims)
                }
                Typed::Job(j) => (&j.spec.as_ref()?.template, Vec::new()),
                _ => return None,
            };
            Some(Workload {
                object,
                template,
                claim_templates,
            })
        })
        .collect()
}

fn labels_match(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn template_labels(w: &Workload<'_>) -> BTreeMap<String, String> {
    w.template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default()
}

fn all_containers<'a>(w: &Workload<'a>) -> Vec<&'a Container> {
    w.template
        .spec
        .as_ref()
        .map(|spec| {
            spec.init_containers
                .iter()
                .flatten()
                .chain(&spec.containers)
                .collect()
        })
        .unwrap_or_default()
}

/// `$(VAR)` references in a container's command and args (`$$(…)` escapes).
fn variable_references(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == b'$' && bytes[i + 1] == b'$' {
            i += 2;
        } else if bytes[i] == b'$' && bytes[i + 1] == b'(' {
            if let Some(end) = text[i + 2..].find(')') {
                out.push(text[i + 2..i + 2 + end].to_owned());
                i += 2 + end + 1;
            } else {
                i += 2;
            }
        } else {
            i += 1;
        }
    }
    out
}

fn check_references(objects: &[Object], errors: &mut Vec<String>) {
    // (kind, namespace, name) of everything declared, and the keys of
    // ConfigMaps and Secrets.
    let mut declared: BTreeSet<(String, String, String)> = BTreeSet::new();
    let mut keys: BTreeMap<(String, String, String), BTreeSet<String>> = BTreeMap::new();
    for o in objects {
        let id = (
            o.kind.clone(),
            o.namespace.clone().unwrap_or_default(),
            o.name.clone(),
        );
        if !declared.insert(id.clone()) {
            errors.push(format!("{}: declared twice", o.id()));
        }
        match &o.typed {
            Typed::ConfigMap(cm) => {
                let data = cm.data.iter().flatten().map(|(k, _)| k);
                let binary = cm.binary_data.iter().flatten().map(|(k, _)| k);
                keys.insert(id, data.chain(binary).cloned().collect());
            }
            Typed::Secret(s) => {
                let data = s.data.iter().flatten().map(|(k, _)| k);
                let string_data = s.string_data.iter().flatten().map(|(k, _)| k);
                keys.insert(id, data.chain(string_data).cloned().collect());
            }
            _ => {}
        }
    }
    let has = |kind: &str, ns: &str, name: &str| {
        declared.contains(&(kind.to_owned(), ns.to_owned(), name.to_owned()))
    };
    let has_key = |kind: &str, ns: &str, name: &str, key: &str| {
        keys.get(&(kind.to_owned(), ns.to_owned(), name.to_owned()))
            .is_some_and(|k| k.contains(key))
    };

    // Namespaced objects live in declared namespaces, except Roles and
    // RoleBindings, which grant rights in the cluster owner's namespaces.
    for o in objects {
        if let Some(ns) = &o.namespace
            && !matches!(o.kind.as_str(), "Role" | "RoleBinding")
            && !has("Namespace", "", ns)
        {
            errors.push(format!("{}: namespace {ns} is not declared", o.id()));
        }
    }

    let workloads = workloads(objects);
    for w in &workloads {
        let id = w.object.id();
        let ns = w.object.namespace.as_deref().unwrap_or("");
        let Some(spec) = &w.template.spec else {
            errors.push(format!("{id}: pod template without spec"));
            continue;
        };
        if spec.containers.is_empty() {
            errors.push(format!("{id}: the pod has no containers"));
        }
        let labels = template_labels(w);
        let selector = match &w.object.typed {
            Typed::Deployment(d) => d.spec.as_ref().map(|s| &s.selector),
            Typed::StatefulSet(s) => s.spec.as_ref().map(|s| &s.selector),
            _ => None,
        };
        if let Some(selector) = selector
            && !labels_match(
                selector.match_labels.as_ref().unwrap_or(&BTreeMap::new()),
                &labels,
            )
        {
            errors.push(format!(
                "{id}: selector does not match the pod template's labels"
            ));
        }
        if let Typed::StatefulSet(s) = &w.object.typed
            && let Some(service) = s.spec.as_ref().and_then(|s| s.service_name.as_deref())
            && !has("Service", ns, service)
        {
            errors.push(format!("{id}: serviceName {service} is not declared"));
        }
        if let Some(sa) = &spec.service_account_name
            && !has("ServiceAccount", ns, sa)
        {
            errors.push(format!("{id}: serviceAccountName {sa} is not declared"));
        }
        let mut volumes: BTreeSet<String> = w.claim_templates.iter().cloned().collect();
        for volume in spec.volumes.iter().flatten() {
            volumes.insert(volume.name.clone());
            if let Some(cm) = &volume.config_map
                && cm.optional != Some(true)
                && !has("ConfigMap", ns, &cm.name)
            {
                errors.push(format!(
                    "{id}: volume {} uses ConfigMap {}, which is not declared",
                    volume.name, cm.name
                ));
            }
            if let Some(secret) = &volume.secret
                && secret.optional != Some(true)
                && let Some(name) = &secret.secret_name
                && !has("Secret", ns, name)
            {
                errors.push(format!(
                    "{id}: volume {} uses Secret {name}, which is not declared",
                    volume.name
                ));
            }
            if let Some(pvc) = &volume.persistent_volume_claim
                && !has("PersistentVolumeClaim", ns, &pvc.claim_name)
            {
                errors.push(format!(
                    "{id}: volume {} uses PersistentVolumeClaim {}, which is not declared",
                    volume.name, pvc.claim_name
                ));
            }
        }
        for container in all_containers(w) {
            let cid = format!("{id} container {}", container.name);
            let mut variables: BTreeSet<String> = BTreeSet::new();
            for env in container.env.iter().flatten() {
                variables.insert(env.name.clone());
                let Some(from) = &env.value_from else {
                    continue;
                };
                if let Some(r) = &from.config_map_key_ref
                    && r.optional != Some(true)
                    && !has_key("ConfigMap", ns, &r.name, &r.key)
                {
                    errors.push(format!(
                        "{cid}: env {} needs key {} of ConfigMap {}, which is not declared",
                        env.name, r.key, r.name
                    ));
                }
                if let Some(r) = &from.secret_key_ref
                    && r.optional != Some(true)
                    && !has_key("Secret", ns, &r.name, &r.key)
                {
                    errors.push(format!(
                        "{cid}: env {} needs key {} of Secret {}, which is not declared",
                        env.name, r.key, r.name
                    ));
                }
            }
            for from in container.env_from.iter().flatten() {
                let prefix = from.prefix.clone().unwrap_or_default();
                let (kind, name, optional) = match (&from.config_map_ref, &from.secret_ref) {
                    (Some(r), _) => ("ConfigMap", r.name.clone(), r.optional),
                    (_, Some(r)) => ("Secret", r.name.clone(), r.optional),
                    _ => continue,
                };
                match keys.get(&(kind.to_owned(), ns.to_owned(), name.clone())) {
                    Some(k) => variables.extend(k.iter().map(|k| format!("{prefix}{k}"))),
                    None if optional == Some(true) => {}
                    None => errors.push(format!(
                        "{cid}: envFrom {kind} {name}, which is not declared"
                    )),
                }
            }
            for text in container.command.iter().chain(&container.args).flatten() {
                for var in variable_references(text) {
                    if !variables.contains(&var) {
                        errors.push(format!(
                            "{cid}: $({var}) is not an environment variable of the container (Kubernetes would pass it verbatim)"
                        ));
                    }
                }
            }
            for mount in container.volume_mounts.iter().flatten() {
                if !volumes.contains(&mount.name) {
                    errors.push(format!(
                        "{cid}: mounts volume {}, which the pod does not have",
                        mount.name
                    ));
                }
            }
            let ports = container.ports.as_deref().unwrap_or_default();
            let probes = [
                ("readinessProbe", &container.readiness_probe),
                ("livenessProbe", &container.liveness_probe),
                ("startupProbe", &container.startup_probe),
            ];
            for (what, probe) in probes {
                let Some(probe) = probe else { continue };
                let port = match (&probe.http_get, &probe.tcp_socket, &probe.grpc) {
                    (Some(h), _, _) => h.port.clone(),
                    (_, Some(t), _) => t.port.clone(),
                    (_, _, Some(g)) => IntOrString::Int(g.port),
                    _ => continue,
                };
                let found = ports.iter().any(|p| match &port {
                    IntOrString::Int(n) => p.container_port == *n,
                    IntOrString::String(s) => p.name.as_deref() == Some(s),
                });
                if !found {
                    errors.push(format!(
                        "{cid}: {what} port {port:?} is not a port of the container"
                    ));
                }
            }
        }
    }

    for o in objects {
        let id = o.id();
        let ns = o.namespace.as_deref().unwrap_or("");
        match &o.typed {
            Typed::Service(service) => {
                let Some(spec) = &service.spec else {
                    errors.push(format!("{id}: no spec"));
                    continue;
                };
                let selector = spec.selector.clone().unwrap_or_default();
                let targets: Vec<_> = workloads
                    .iter()
                    .filter(|w| w.object.namespace.as_deref() == Some(ns))
                    .filter(|w| labels_match(&selector, &template_labels(w)))
                    .collect();
                if targets.is_empty() {
                    errors.push(format!(
                        "{id}: selector {selector:?} matches no workload's pod template"
                    ));
                    continue;
                }
                for port in spec.ports.iter().flatten() {
                    let protocol = port.protocol.as_deref().unwrap_or("TCP");
                    let target = port
                        .target_port
                        .clone()
                        .unwrap_or(IntOrString::Int(port.port));
                    let found = targets.iter().flat_map(|w| all_containers(w)).any(|c| {
                        c.ports.iter().flatten().any(|p| {
                            p.protocol.as_deref().unwrap_or("TCP") == protocol
                                && match &target {
                                    IntOrString::Int(n) => p.container_port == *n,
                                    IntOrString::String(s) => p.name.as_deref() == Some(s),
                                }
                        })
                    });
                    if !found {
                        errors.push(format!(
                            "{id}: port {} targets {target:?}/{protocol}, which no selected container exposes",
                            port.port
                        ));
                    }
                }
            }
            Typed::NetworkPolicy(policy) => {
                let selector = policy
                    .spec
                    .as_ref()
                    .and_then(|s| s.pod_selector.as_ref())
                    .and_then(|s| s.match_labels.clone())
                    .unwrap_or_default();
                let selects = workloads.iter().any(|w| {
                    w.object.namespace.as_deref() == Some(ns)
                        && labels_match(&selector, &template_labels(w))
                });
                if !selects {
                    errors.push(format!(
                        "{id}: podSelector {selector:?} matches no workload's pod template"
                    ));
                }
            }
            Typed::ClusterRole(ClusterRole { rules, .. }) | Typed::Role(Role { rules, .. })
                if rules.as_ref().is_none_or(Vec::is_empty) =>
            {
                errors.push(format!("{id}: no rules"));
            }
            Typed::PersistentVolumeClaim(pvc) => {
                let spec = pvc.spec.as_ref();
                let storage = spec
                    .and_then(|s| s.resources.as_ref())
                    .and_then(|r| r.requests.as_ref())
                    .and_then(|r| r.get("storage"));
                if storage.is_none() {
                    errors.push(format!("{id}: no storage request"));
                }
                if spec
                    .and_then(|s| s.access_modes.as_ref())
                    .is_none_or(Vec::is_empty)
                {
                    errors.push(format!("{id}: no accessModes"));
                }
            }
            Typed::ClusterRoleBinding(b) => {
                check_binding(&id, ns, &b.role_ref, b.subjects.as_deref(), &has, errors);
            }
            Typed::RoleBinding(b) => {
                check_binding(&id, ns, &b.role_ref, b.subjects.as_deref(), &has, errors);
            }
            _ => {}
        }
    }
}

fn check_binding(
    id: &str,
    namespace: &str,
    role_ref: &k8s_openapi::api::rbac::v1::RoleRef,
    subjects: Option<&[k8s_openapi::api::rbac::v1::Subject]>,
    has: &dyn Fn(&str, &str, &str) -> bool,
    errors: &mut Vec<String>,
) {
    let role_ns = if role_ref.kind == "ClusterRole" {
        ""
    } else {
        namespace
    };
    if !has(&role_ref.kind, role_ns, &role_ref.name) {
        errors.push(format!(
            "{id}: roleRef {} {} is not declared",
            role_ref.kind, role_ref.name
        ));
    }
    let subjects = subjects.unwrap_or_default();
    if subjects.is_empty() {
        errors.push(format!("{id}: no subjects"));
    }
    for subject in subjects {
        if subject.kind != "ServiceAccount" {
            continue;
        }
        let ns = subject.namespace.as_deref().unwrap_or(namespace);
        if !has("ServiceAccount", ns, &subject.name) {
            errors.push(format!(
                "{id}: subject ServiceAccount {ns}/{} is not declared",
                subject.name
            ));
        }
    }
}

#[test]
fn deploy_manifests_are_valid_typed_objects() {
    match check_dir(&deploy_dir()) {
        Ok(count) => assert!(count > 10, "only {count} objects under deploy/"),
        Err(errors) => panic!("deploy/ manifests:\n  {}", errors.join("\n  ")),
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// Copy deploy/ into a temporary directory, replace `from` by `to` (exactly
/// once) in `file`, and return what `check_dir` says about the copy.
fn check_broken(file: &str, from: &str, to: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&deploy_dir(), dir.path());
    let path = dir.path().join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        text.matches(from).count(),
        1,
        "{from:?} must occur exactly once in {file}"
    );
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    match check_dir(dir.path()) {
        Ok(count) => panic!("{file} with {from:?} -> {to:?} passed ({count} objects)"),
        Err(errors) => errors,
    }
}

#[test]
fn broken_manifests_are_reported_with_their_file() {
    let cases = [
        // a misspelt required field
        (
            "agent/deployment.yaml",
            "      containers:",
            "      contaners:",
            "spec.template.spec.contaners",
        ),
        // a misspelt optional field, which Kubernetes would silently ignore
        (
            "hub/statefulset.yaml",
            "            readOnlyRootFilesystem: true",
            "            readOnlyRootFileSystem: true",
            "readOnlyRootFileSystem",
        ),
        // a field at the wrong level
        (
            "agent/join-job.yaml",
            "      restartPolicy: Never",
            "      restartPolicy: Never\n      replicas: 1",
            "template.spec.replicas",
        ),
        // a value of the wrong type
        (
            "agent/state-pvc.yaml",
            "      storage: 1Gi",
            "      storage: [1Gi]",
            "`spec.resources.requests.storage`: invalid type",
        ),
        // a kind the test does not know
        (
            "hub/configmap.yaml",
            "kind: ConfigMap",
            "kind: ConfigMapp",
            "ConfigMapp",
        ),
        // broken YAML
        (
            "agent/serviceaccount.yaml",
            "  name: switchyard-agent\n",
            "  name: [switchyard-agent\n",
            "invalid YAML",
        ),
        // a dangling ConfigMap reference
        (
            "hub/statefulset.yaml",
            "                  key: SWITCHYARD_PUBLIC_NAME",
            "                  key: SWITCHYARD_PUBLIC_NAM",
            "SWITCHYARD_PUBLIC_NAM of ConfigMap",
        ),
        // a dangling volume claim
        (
            "agent/deployment.yaml",
            "claimName: switchyard-agent-state",
            "claimName: switchyard-agent-sate",
            "PersistentVolumeClaim switchyard-agent-sate",
        ),
        // a dangling service account
        (
            "agent/deployment.yaml",
            "serviceAccountName: switchyard-agent",
            "serviceAccountName: switchyard-agnet",
            "serviceAccountName switchyard-agnet",
        ),
        // a Service targeting a port no container has
        (
            "hub/services.yaml",
            "      protocol: UDP\n      port: 7700\n      targetPort: quic",
            "      protocol: UDP\n      port: 7700\n      targetPort: quick",
            "targets String(\"quick\")",
        ),
        // a Service selecting nothing
        (
            "hub/services.yaml",
            "  type: ClusterIP\n  selector:\n    app.kubernetes.io/name: switchyard-hub",
            "  type: ClusterIP\n  selector:\n    app.kubernetes.io/name: switchyard-hubb",
            "matches no workload",
        ),
        // an argument variable no env var defines
        (
            "agent/join-job.yaml",
            "- $(CA_SHA256)",
            "- $(CA_SHA)",
            "$(CA_SHA)",
        ),
        // a binding to a role that does not exist
        (
            "agent/rbac.yaml",
            "  kind: ClusterRole\n  name: switchyard-agent",
            "  kind: ClusterRole\n  name: switchyard-agents",
            "roleRef ClusterRole switchyard-agents",
        ),
        // a kustomization naming a missing file
        (
            "hub/kustomization.yaml",
            "  - services.yaml",
            "  - service.yaml",
            "resource service.yaml does not exist",
        ),
    ];
    for (file, from, to, expected) in cases {
        let errors = check_broken(file, from, to);
        assert!(
            errors
                .iter()
                .any(|e| e.contains(file) && e.contains(expected)),
            "{file} with {from:?} -> {to:?}: expected an error naming the file and {expected:?}, got:\n  {}",
            errors.join("\n  ")
        );
    }
}

/// `(binary, subcommand, flags)` of every container in the manifests.
fn container_invocations(root: &Path) -> Vec<(String, String, String, Vec<String>)> {
    let mut files = Vec::new();
    yaml_files(root, &mut files).unwrap();
    let mut out = Vec::new();
    for path in files.iter().filter(|p| !is_kustomization(p)) {
        let text = std::fs::read_to_string(path).unwrap();
        for doc in serde_saphyr::from_multiple::<Value>(&text).unwrap() {
            let spec = match doc.get("kind").and_then(Value::as_str) {
                Some("Deployment" | "StatefulSet" | "Job") => &doc["spec"]["template"]["spec"],
                _ => continue,
            };
            for key in ["initContainers", "containers"] {
                for c in spec[key].as_array().into_iter().flatten() {
                    let image = c["image"].as_str().unwrap_or_default();
                    let repository = image.rsplit_once(':').map_or(image, |(r, _)| r);
                    let binary = repository.rsplit('/').next().unwrap_or_default();
                    let args: Vec<String> = c["args"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|a| a.as_str().map(str::to_owned))
                        .collect();
                    let Some((subcommand, rest)) = args.split_first() else {
                        continue;
                    };
                    let flags = rest.iter().filter(|a| a.starts_with("--")).cloned();
                    out.push((
                        path.display().to_string(),
                        binary.to_owned(),
                        subcommand.clone(),
                        flags.collect(),
                    ));
                }
            }
        }
    }
    out
}

fn help_of(binary_name: &str, subcommand: &str) -> String {
    let out = run(
        &binary(binary_name),
        &[subcommand.to_owned(), "--help".to_owned()],
        &[],
        Duration::from_secs(20),
    );
    assert!(
        out.success(),
        "{binary_name} {subcommand} --help failed: {}",
        out.stderr
    );
    out.stdout
}

#[test]
fn manifests_and_systemd_unit_pass_flags_the_binaries_have() {
    let mut invocations = container_invocations(&deploy_dir());
    let images: BTreeSet<_> = invocations.iter().map(|i| i.1.clone()).collect();
    assert_eq!(
        images,
        BTreeSet::from(["switchyard".to_owned(), "switchyard-agent".to_owned()]),
        "the workloads run the hub and agent images"
    );
    let unit = std::fs::read_to_string(deploy_dir().join("switchyard-hub.service")).unwrap();
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("the unit has ExecStart");
    let mut words = exec.split_whitespace();
    assert_eq!(words.next(), Some("/usr/local/bin/switchyard"));
    let subcommand = words.next().expect("a subcommand").to_owned();
    let flags = words.filter(|w| w.starts_with("--")).map(str::to_owned);
    invocations.push((
        "switchyard-hub.service".to_owned(),
        "switchyard".to_owned(),
        subcommand,
        flags.collect(),
    ));
    for (file, binary_name, subcommand, flags) in invocations {
        let help = help_of(&binary_name, &subcommand);
        for flag in flags {
            let flag = flag.split('=').next().unwrap_or_default();
            assert!(
                help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}\n")),
                "{file}: `{binary_name} {subcommand}` has no flag {flag}:\n{help}"
            );
        }
    }
}

#[test]
fn dockerfiles_build_and_start_the_right_binaries() {
    let docker = deploy_dir().join("docker");
    // The agent ships with the `edge` profile (release plus panic = "abort",
    // Cargo.toml), which cargo puts in target/edge.
    let cases = [
        (
            "Dockerfile.hub",
            "switchyard-hub",
            "switchyard",
            "FROM debian:bookworm-slim",
            ("--release", "release"),
        ),
        (
            "Dockerfile.agent",
            "switchyard-agent",
            "switchyard-agent",
            "FROM gcr.io/distroless/cc-debian12:nonroot",
            ("--profile edge", "edge"),
        ),
    ];
    for (file, package, bin, runtime, (profile_flag, profile_dir)) in cases {
        let text = std::fs::read_to_string(docker.join(file))
            .unwrap_or_else(|e| panic!("deploy/docker/{file}: {e}"));
        for needle in [
            "FROM rust:1.95-bookworm AS build".to_owned(),
            format!("cargo build {profile_flag} --locked -p {package}"),
            format!("target/{profile_dir}/{bin} "),
            runtime.to_owned(),
            format!("ENTRYPOINT [\"/usr/local/bin/{bin}\"]"),
            "USER 65532:65532".to_owned(),
            "LABEL org.opencontainers.image.title".to_owned(),
        ] {
            assert!(
                text.contains(&needle),
                "deploy/docker/{file} lacks {needle}"
            );
        }
        assert!(
            docker.join(format!("{file}.dockerignore")).exists(),
            "deploy/docker/{file}.dockerignore keeps target/ out of the build context"
        );
    }
    let hub = std::fs::read_to_string(docker.join("Dockerfile.hub")).unwrap();
    assert!(
        hub.contains("git ca-certificates"),
        "the hub image installs git (file:// repos) and CA certificates"
    );
}
