//! `switchyard app diff` on the agent: what a sync of one app would change,
//! from the same inputs and decisions a reconcile pass uses (`plan`, with
//! the app's ignore rules and the owned-field comparison) against the live
//! view only: it writes nothing and reads no object from the API server.
//! The report is bounded (`DIFF_MAX_OBJECTS`, `DIFF_MAX_BYTES`) and says
//! when it was cut.

use super::*;
use switchyard_common::proto::{Change, DIFF_MAX_BYTES, DIFF_MAX_OBJECTS, ObjectDiff};

/// What the preview found: the changes (bounded), whether it was cut, and
/// what it could not compare.
#[derive(Debug, Default)]
pub(crate) struct Preview {
    pub(crate) objects: Vec<ObjectDiff>,
    pub(crate) truncated: bool,
    pub(crate) problems: Vec<String>,
}

/// Collects object diffs up to the report's bounds.
struct Budget {
    objects: Vec<ObjectDiff>,
    bytes: usize,
    max_objects: usize,
    max_bytes: usize,
    truncated: bool,
}

impl Budget {
    fn new(max_objects: usize, max_bytes: usize) -> Budget {
        Budget {
            objects: Vec::new(),
            bytes: 0,
            max_objects,
            max_bytes,
            truncated: false,
        }
    }

    fn full(&self) -> bool {
        self.truncated
    }

    /// Take `object` if it fits; one that does not fit whole is cut at a
    /// line (when some room is left) and the budget is then full.
    fn push(&mut self, mut object: ObjectDiff) {
        if self.truncated {
            return;
        }
        if self.objects.len() >= self.max_objects {
            self.truncated = true;
            return;
        }
        let room = self.max_bytes - self.bytes;
        if object.diff.len() > room {
            self.truncated = true;
            let mut cut = room.saturating_sub(64);
            while !object.diff.is_char_boundary(cut) {
                cut -= 1;
            }
            let Some(line_end) = object.diff[..cut].rfind('\n') else {
                return;
            };
            object.diff.truncate(line_end + 1);
            object
                .diff
                .push_str("... (diff cut: the report's size limit)\n");
        }
        self.bytes += object.diff.len();
        self.objects.push(object);
    }
}

/// `live/apps/v1/Deployment/web/web` and the same under `desired/`.
fn file_names(reference: &ObjectRef) -> (String, String) {
    let path = match &reference.namespace {
        Some(ns) => format!(
            "{}/{}/{ns}/{}",
            reference.api_version, reference.kind, reference.name
        ),
        None => format!(
            "{}/{}/{}",
            reference.api_version, reference.kind, reference.name
        ),
    };
    (format!("live/{path}"), format!("desired/{path}"))
}

fn object_diff(reference: &ObjectRef, change: Change, diff: String) -> ObjectDiff {
    ObjectDiff {
        api_version: reference.api_version.clone(),
        kind: reference.kind.clone(),
        namespace: reference.namespace.clone(),
        name: reference.name.clone(),
        change,
        diff,
    }
}

/// The diff of one desired object (`body`, decorated) against its live
/// object as `plan` would sync it: `None` when a sync leaves it as it is.
fn desired_change(
    app: &str,
    reference: &ObjectRef,
    body: &Value,
    live: Option<&Value>,
    options: &Options,
) -> Option<ObjectDiff> {
    // As for a new desired state: what a sync would write, whatever the
    // self-heal setting.
    let record = Record {
        new_desired: true,
        retrying: false,
    };
    let (old_name, new_name) = file_names(reference);
    let (change, text) = match plan::plan_object(app, body, live, record, options) {
        // The creation record is bookkeeping, not content: show the object.
        Step::Create { .. } => (
            Change::Create,
            compare::diff_named(body, None, &old_name, &new_name),
        ),
        Step::Apply { body, .. } => (
            Change::Update,
            compare::diff_named(&body, live, &old_name, &new_name),
        ),
        // In sync, or an object a sync does not touch (another app's, or
        // not adopted): the status report says why.
        Step::InSync | Step::Skip { .. } => return None,
    };
    (!text.is_empty()).then(|| object_diff(reference, change, text))
}

/// What the live view knows of `reference`; `Err` when it cannot say.
fn from_view(cluster: &Cluster, reference: &ObjectRef) -> Result<Option<Arc<Value>>, String> {
    match cluster.live().lookup(reference) {
        Seen::Present(object) => Ok(Some(object)),
        Seen::Absent => Ok(None),
        Seen::NotReady => Err(format!(
            "{reference}: the live view of its kind is not synced yet; left out"
        )),
    }
}

/// What a sync of `item` (with `bundle`, after `previous`) would change.
pub(crate) async fn preview_app(
    cluster: &Cluster,
    item: &AssignmentItem,
    bundle: &[Value],
    previous: Option<&AppliedState>,
    marks: &Marks<'_>,
) -> Preview {
    preview_bounded(
        cluster,
        item,
        bundle,
        previous,
        marks,
        Budget::new(DIFF_MAX_OBJECTS, DIFF_MAX_BYTES),
    )
    .await
}

async fn preview_bounded(
    cluster: &Cluster,
    item: &AssignmentItem,
    bundle: &[Value],
    previous: Option<&AppliedState>,
    marks: &Marks<'_>,
    mut budget: Budget,
) -> Preview {
    let options = Options::from(item);
    let mut problems = Vec::new();
    // Hooks run once per commit and are not part of the compared state,
    // as in Argo CD's diff.
    let objects = match split(bundle) {
        Ok(split) => split.normal,
        Err(e) => {
            return Preview {
                problems: vec![e.to_string()],
                ..Preview::default()
            };
        }
    };
    let mut desired = BTreeSet::new();
    let mut unresolved = 0;
    if let Some(ns) = &item.namespace
        && !lists_namespace(&objects, ns)
    {
        let reference = ObjectRef {
            api_version: "v1".into(),
            kind: "Namespace".into(),
            namespace: None,
            name: ns.clone(),
        };
        desired.insert(reference.clone());
        match from_view(cluster, &reference) {
            Ok(None) => {
                let body =
                    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
                let (old_name, new_name) = file_names(&reference);
                let text = compare::diff_named(&body, None, &old_name, &new_name);
                budget.push(object_diff(&reference, Change::Create, text));
            }
            Ok(Some(_)) => {}
            Err(why) => problems.push(why),
        }
    }
    for (index, object) in objects.iter().enumerate() {
        let reference = match ObjectRef::of(object) {
            Ok(r) => r,
            Err(e) => {
                unresolved += 1;
                problems.push(format!("object {index}: {e}"));
                continue;
            }
        };
        // Discovery is cached per kind: no request per object.
        let kind = match cluster.kind(&reference).await {
            Ok(k) => k,
            Err(e) => {
                unresolved += 1;
                problems.push(format!("{reference}: {e}"));
                continue;
            }
        };
        let body = decorate(object, marks, &kind, item.namespace.as_deref());
        let reference = ObjectRef::of(&body).expect("decorated objects keep their identity");
        desired.insert(reference.clone());
        if budget.full() {
            // Still resolved, so prune candidates stay right; no more text.
            continue;
        }
        match from_view(cluster, &reference) {
            Ok(live) => {
                if let Some(diff) =
                    desired_change(marks.app, &reference, &body, live.as_deref(), &options)
                {
                    budget.push(diff);
                }
            }
            Err(why) => problems.push(why),
        }
    }
    if let Some(previous) = previous {
        match plan::prune_candidates(&previous.inventory, &desired, unresolved) {
            Ok(gone) => {
                for reference in in_prune_order(gone) {
                    if budget.full() {
                        break;
                    }
                    let live = match from_view(cluster, &reference) {
                        Ok(live) => live,
                        Err(why) => {
                            problems.push(why);
                            continue;
                        }
                    };
                    let created = previous.created.get(&reference).map(String::as_str);
                    let decision =
                        plan::plan_prune(marks.app, &reference, live.as_deref(), created, &options);
                    if let (Prune::Delete { .. }, Some(live)) = (decision, live) {
                        let (old_name, new_name) = file_names(&reference);
                        let text = compare::removal(&live, &old_name, &new_name);
                        budget.push(object_diff(&reference, Change::Delete, text));
                    }
                }
            }
            Err(why) => problems.push(why),
        }
    }
    Preview {
        objects: budget.objects,
        truncated: budget.truncated,
        problems,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(namespace: Option<&str>) -> ObjectRef {
        ObjectRef {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            namespace: namespace.map(str::to_owned),
            name: "web".into(),
        }
    }

    fn options() -> Options {
        Options {
            prune: true,
            ..Options::default()
        }
    }

    fn one(text: &str) -> ObjectDiff {
        object_diff(&reference(Some("web")), Change::Update, text.to_owned())
    }

    /// A live Deployment of app `web` that Switchyard applied: it owns
    /// replicas, the container's image, and the container list by name.
    fn live(replicas: i64, image: &str, extra_container: bool) -> Value {
        let mut containers = vec![json!({"name": "web", "image": image,
            "terminationMessagePath": "/dev/termination-log"})];
        if extra_container {
            containers.push(json!({"name": "istio-proxy", "image": "proxy:1"}));
        }
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {
                "name": "web", "namespace": "web",
                "labels": {APP_LABEL: "web"},
                "uid": "u1", "resourceVersion": "9",
                "managedFields": [{"manager": crate::reconcile::cluster::FIELD_MANAGER, "operation": "Apply",
                    "fieldsV1": {"f:metadata": {"f:labels": {"f:switchyard.dev/app": {}}},
                        "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
                            "k:{\"name\":\"web\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}}}],
            },
            "spec": {"replicas": replicas, "revisionHistoryLimit": 10,
                "template": {"spec": {"containers": containers}}},
            "status": {"readyReplicas": replicas},
        })
    }

    fn desired(replicas: i64, image: &str) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "web", "labels": {APP_LABEL: "web"}},
            "spec": {"replicas": replicas,
                "template": {"spec": {"containers": [{"name": "web", "image": image}]}}},
        })
    }

    fn changed_lines(diff: &str) -> Vec<&str> {
        diff.lines()
            .skip(2)
            .filter(|l| l.starts_with('+') || l.starts_with('-'))
            .collect()
    }

    #[test]
    fn a_changed_field_is_shown_with_the_objects_path() {
        let r = reference(Some("web"));
        let d = desired_change(
            "web",
            &r,
            &desired(2, "web:1"),
            Some(&live(5, "web:1", false)),
            &options(),
        )
        .expect("a difference");
        assert_eq!(d.change, Change::Update);
        assert!(
            d.diff.starts_with(
                "--- live/apps/v1/Deployment/web/web\n+++ desired/apps/v1/Deployment/web/web\n"
            ),
            "{}",
            d.diff
        );
        assert_eq!(
            changed_lines(&d.diff),
            vec!["-  replicas: 5", "+  replicas: 2"],
            "{}",
            d.diff
        );
        // Defaults and status are not part of it.
        for noise in ["revisionHistoryLimit", "terminationMessagePath", "status"] {
            assert!(!d.diff.contains(noise), "{noise} in {}", d.diff);
        }
    }

    #[test]
    fn an_injected_container_switchyard_does_not_own_is_no_difference() {
        let r = reference(Some("web"));
        assert_eq!(
            desired_change(
                "web",
                &r,
                &desired(2, "web:1"),
                Some(&live(2, "web:1", true)),
                &options()
            ),
            None
        );
        // While a real change next to it still shows, without the sidecar.
        let d = desired_change(
            "web",
            &r,
            &desired(2, "web:2"),
            Some(&live(2, "web:1", true)),
            &options(),
        )
        .expect("a difference");
        assert!(!d.diff.contains("istio-proxy"), "{}", d.diff);
        let changed = changed_lines(&d.diff);
        assert_eq!(changed.len(), 2, "{}", d.diff);
        assert!(changed[0].starts_with('-') && changed[0].contains("web:1"));
        assert!(changed[1].starts_with('+') && changed[1].contains("web:2"));
    }

    #[test]
    fn an_ignored_field_is_no_difference() {
        use switchyard_common::proto::IgnoreRule;
        let r = reference(Some("web"));
        let mut options = options();
        options.ignore_differences = vec![IgnoreRule {
            group: "apps".into(),
            kind: "Deployment".into(),
            json_pointers: vec!["/spec/replicas".into()],
            ..IgnoreRule::default()
        }]
        .into();
        assert_eq!(
            desired_change(
                "web",
                &r,
                &desired(2, "web:1"),
                Some(&live(5, "web:1", false)),
                &options
            ),
            None
        );
        // Without the rule the same pair differs.
        assert!(
            desired_change(
                "web",
                &r,
                &desired(2, "web:1"),
                Some(&live(5, "web:1", false)),
                &self::options()
            )
            .is_some()
        );
    }

    #[test]
    fn a_missing_object_is_all_added() {
        let r = reference(Some("web"));
        let d = desired_change("web", &r, &desired(2, "web:1"), None, &options()).unwrap();
        assert_eq!(d.change, Change::Create);
        let body: Vec<&str> = d.diff.lines().skip(3).collect();
        assert!(!body.is_empty());
        assert!(body.iter().all(|l| l.starts_with('+')), "{}", d.diff);
        // The creation record is bookkeeping, not shown.
        assert!(!d.diff.contains(plan::CREATED_BY_ANNOTATION), "{}", d.diff);
    }

    #[test]
    fn secret_values_are_masked() {
        let r = ObjectRef {
            api_version: "v1".into(),
            kind: "Secret".into(),
            namespace: Some("web".into()),
            name: "db".into(),
        };
        let body = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "db", "namespace": "web", "labels": {APP_LABEL: "web"}},
            "stringData": {"password": "new-secret", "user": "admin"}});
        let live = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "db", "namespace": "web", "labels": {APP_LABEL: "web"}},
            // "old-secret" and "admin", base64
            "data": {"password": "b2xkLXNlY3JldA==", "user": "YWRtaW4="}});
        let d = desired_change("web", &r, &body, Some(&live), &options()).expect("a difference");
        for hidden in [
            "new-secret",
            "old-secret",
            "b2xkLXNlY3JldA==",
            "YWRtaW4=",
            "admin",
        ] {
            assert!(!d.diff.contains(hidden), "{hidden} in:\n{}", d.diff);
        }
        assert!(
            d.diff.contains("+  password: (redacted, changed)"),
            "{}",
            d.diff
        );
        assert!(d.diff.contains("-  password: (redacted)"), "{}", d.diff);
        // An unchanged value is masked too and not a change.
        assert!(d.diff.contains("   user: (redacted)"), "{}", d.diff);
        let created = desired_change("web", &r, &body, None, &options()).unwrap();
        assert!(!created.diff.contains("new-secret"), "{}", created.diff);
    }

    #[test]
    fn the_report_is_cut_by_count_and_by_bytes_and_says_so() {
        let mut budget = Budget::new(2, 1000);
        budget.push(one("a\n"));
        budget.push(one("b\n"));
        assert!(!budget.truncated);
        budget.push(one("c\n"));
        assert!(budget.truncated);
        assert_eq!(budget.objects.len(), 2);

        let mut budget = Budget::new(10, 300);
        budget.push(one(&"x\n".repeat(50)));
        let long = "y\n".repeat(500);
        budget.push(one(&long));
        assert!(budget.truncated);
        assert_eq!(budget.objects.len(), 2);
        let cut = &budget.objects[1].diff;
        assert!(
            cut.ends_with("... (diff cut: the report's size limit)\n"),
            "{cut}"
        );
        assert!(budget.bytes <= 300, "{}", budget.bytes);
        // Full: nothing more is taken.
        budget.push(one("z\n"));
        assert_eq!(budget.objects.len(), 2);
    }

    #[test]
    fn file_names_leave_out_a_missing_namespace() {
        assert_eq!(
            file_names(&reference(None)),
            (
                "live/apps/v1/Deployment/web".to_owned(),
                "desired/apps/v1/Deployment/web".to_owned()
            )
        );
    }
}
