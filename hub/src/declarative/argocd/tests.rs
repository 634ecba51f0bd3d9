//! The import on Application and ApplicationSet files written in the style
//! of argoproj/argocd-example-apps (tests/fixtures/argocd).

use super::*;
use crate::declarative::parse;

const GUESTBOOK: &str = include_str!("../../../../tests/fixtures/argocd/guestbook.yaml");
const HELM: &str = include_str!("../../../../tests/fixtures/argocd/helm-guestbook.yaml");
const KUSTOMIZE_JSONNET: &str =
    include_str!("../../../../tests/fixtures/argocd/kustomize-and-jsonnet.yaml");
const APPSETS: &str = include_str!("../../../../tests/fixtures/argocd/appsets.yaml");
const UNSUPPORTED: &str = include_str!("../../../../tests/fixtures/argocd/unsupported.yaml");
const HELM_REPOSITORIES: &str =
    include_str!("../../../../tests/fixtures/argocd/helm-repositories.yaml");

/// A checkout of argocd-example-apps, as far as the import looks.
struct Example;

const EXAMPLE_FILES: [&str; 6] = [
    "guestbook/guestbook-ui-deployment.yaml",
    "helm-guestbook/Chart.yaml",
    "jsonnet-guestbook/guestbook-ui.jsonnet",
    "kustomize-guestbook/kustomization.yaml",
    "kustomize-guestbook/overlays/prod/kustomization.yaml",
    "README.md",
];

impl Checkout for Example {
    fn has_file(&self, path: &str) -> bool {
        EXAMPLE_FILES.contains(&path)
    }
    fn directories(&self) -> Vec<String> {
        let mut dirs: Vec<String> = EXAMPLE_FILES
            .iter()
            .filter_map(|f| f.rsplit_once('/').map(|(d, _)| d.to_owned()))
            .flat_map(|d| {
                let parts: Vec<&str> = d.split('/').collect();
                (1..=parts.len())
                    .map(|n| parts[..n].join("/"))
                    .collect::<Vec<_>>()
            })
            .collect();
        dirs.sort();
        dirs.dedup();
        dirs
    }
    fn files(&self) -> Vec<String> {
        EXAMPLE_FILES.iter().map(|f| f.to_string()).collect()
    }
    fn read(&self, _: &str) -> Option<String> {
        None
    }
}

fn input(label: &str, text: &str) -> (String, String) {
    (label.to_owned(), text.to_owned())
}

fn app<'a>(t: &'a Translation, name: &str) -> &'a AppSpec {
    t.documents
        .iter()
        .find_map(|d| match &d.spec {
            Spec::App(a) if d.name() == name => Some(a),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no app {name} in {:?}", t.documents))
}

/// The documents as `apply` would read them back: every one valid.
fn round_trip(t: &Translation) {
    let text = t
        .documents
        .iter()
        .map(|d| serde_saphyr::to_string(d).unwrap())
        .collect::<Vec<_>>()
        .join("---\n");
    let (parsed, problems) = parse("import", &text);
    assert!(problems.is_empty(), "{problems:?}\n{text}");
    let parsed: Vec<&Document> = parsed.iter().map(|s| &s.document).collect();
    assert_eq!(parsed, t.documents.iter().collect::<Vec<_>>(), "{text}");
}

#[test]
fn example_applications_become_one_repo_and_their_apps() {
    let t = translate(
        &[
            input("guestbook.yaml", GUESTBOOK),
            input("helm-guestbook.yaml", HELM),
            input("kustomize-and-jsonnet.yaml", KUSTOMIZE_JSONNET),
        ],
        Some(&Example),
    );
    assert!(t.untranslated.is_empty(), "{:?}", t.untranslated);
    let kinds: Vec<String> = t
        .documents
        .iter()
        .map(|d| format!("{}/{}", d.kind.noun(), d.name()))
        .collect();
    assert_eq!(
        kinds,
        [
            "repo/argocd-example-apps",
            "app/guestbook",
            "app/helm-guestbook",
            "app/jsonnet-guestbook",
            "app/kustomize-guestbook",
        ]
    );
    let g = app(&t, "guestbook");
    assert_eq!(
        (g.path.as_str(), g.renderer.as_str(), g.namespace.as_deref()),
        ("guestbook", "directory", Some("guestbook"))
    );
    assert_eq!(g.target.selector, "argocd-cluster=in-cluster");
    assert!(!g.manual && g.prune && g.self_heal);
    assert_eq!(g.directory.as_ref().and_then(|d| d.recurse), Some(false));
    // syncOptions: [CreateNamespace=true] translates; nothing is noted.
    assert!(g.create_namespace);
    assert!(
        !t.notes.iter().any(|n| n.contains("syncOptions")),
        "{:?}",
        t.notes
    );

    let h = app(&t, "helm-guestbook");
    let helm = h.helm.as_ref().unwrap();
    assert_eq!(h.renderer, "helm");
    assert_eq!(helm.release_name.as_deref(), Some("guestbook-prod"));
    assert_eq!(helm.values_files, ["values-production.yaml"]);
    assert_eq!(helm.set, ["replicaCount=2"]);
    assert_eq!(
        helm.values.as_ref().unwrap()["service"]["type"],
        "ClusterIP"
    );
    assert!(
        !h.manual && !h.prune,
        "automated: {{}} syncs without pruning"
    );

    let k = app(&t, "kustomize-guestbook");
    assert_eq!((k.renderer.as_str(), k.manual), ("kustomize", true));
    assert!(
        t.notes.iter().any(|n| n.contains("namePrefix")),
        "{:?}",
        t.notes
    );

    let j = app(&t, "jsonnet-guestbook");
    let jsonnet = &j.directory.as_ref().unwrap().jsonnet;
    assert_eq!(j.renderer, "directory");
    assert_eq!(
        jsonnet.tlas,
        [JsonnetArg {
            name: "replicas".into(),
            value: "2".into(),
            code: true
        }]
    );
    assert_eq!(jsonnet.ext_vars[0].name, "env");
    round_trip(&t);
}

#[test]
fn without_a_checkout_the_renderer_is_a_noted_guess() {
    let t = translate(
        &[input(
            "g.yaml",
            &GUESTBOOK.replace("path: guestbook", "path: helm-guestbook"),
        )],
        None,
    );
    assert_eq!(app(&t, "guestbook").renderer, "directory");
    assert!(
        t.notes.iter().any(|n| n.contains("--checkout")),
        "{:?}",
        t.notes
    );
    let detected = translate(
        &[input(
            "g.yaml",
            &GUESTBOOK.replace("path: guestbook", "path: helm-guestbook"),
        )],
        Some(&Example),
    );
    assert_eq!(app(&detected, "guestbook").renderer, "helm");
}

#[test]
fn application_sets_expand_list_cluster_and_git_generators() {
    let t = translate(&[input("appsets.yaml", APPSETS)], Some(&Example));
    assert!(t.untranslated.is_empty(), "{:?}", t.untranslated);
    let dev = app(&t, "engineering-dev-guestbook");
    assert_eq!(dev.path, "env-guestbook/dev");
    assert_eq!(dev.target.selector, "argocd-cluster=engineering-dev");
    assert_eq!(
        app(&t, "engineering-prod-guestbook").path,
        "env-guestbook/prod"
    );

    let fleet = app(&t, "guestbook-fleet");
    assert_eq!(fleet.target.group.as_deref(), Some("guestbook-fleet"));
    assert_eq!(fleet.target.selector, "");
    assert!(fleet.prune);
    let group = t
        .documents
        .iter()
        .find_map(|d| match &d.spec {
            Spec::ClusterGroup(g) => Some(g),
            _ => None,
        })
        .unwrap();
    assert_eq!(group.selector, "env=prod,region in (eu,us)");

    // `*-guestbook` at one level, helm-guestbook excluded.
    let dirs: Vec<&str> = t
        .documents
        .iter()
        .map(|d| d.name())
        .filter(|n| n.starts_with("dir-"))
        .collect();
    assert_eq!(dirs, ["dir-jsonnet-guestbook", "dir-kustomize-guestbook"]);
    assert_eq!(app(&t, "dir-kustomize-guestbook").renderer, "kustomize");
    assert_eq!(
        app(&t, "dir-jsonnet-guestbook").namespace.as_deref(),
        Some("jsonnet-guestbook")
    );
    round_trip(&t);

    let without = translate(&[input("appsets.yaml", APPSETS)], None);
    assert_eq!(without.untranslated.len(), 1, "{:?}", without.untranslated);
    assert!(without.untranslated[0].reason.contains("--checkout"));
}

#[test]
fn what_cannot_be_translated_is_listed_with_the_reason() {
    let t = translate(&[input("unsupported.yaml", UNSUPPORTED)], None);
    assert!(t.documents.is_empty(), "{:?}", t.documents);
    let listed: Vec<(String, String)> = t
        .untranslated
        .iter()
        .map(|u| (u.what.clone(), u.reason.clone()))
        .collect();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(
        listed[0].0.starts_with("ApplicationSet matrix")
            && listed[0].1.contains("matrix generator"),
        "{listed:?}"
    );
    assert_eq!(listed[1].0, "ConfigMap argocd-cm");
    assert!(
        t.untranslated[0]
            .origin
            .starts_with("unsupported.yaml: document 1")
    );
}

#[test]
fn charts_from_helm_repositories_become_chart_repos_and_chart_apps() {
    let t = translate(&[input("helm-repositories.yaml", HELM_REPOSITORIES)], None);
    let repos: Vec<(String, String, Option<String>, String)> = t
        .documents
        .iter()
        .filter_map(|d| match &d.spec {
            Spec::Repo(r) => Some((
                d.name().to_owned(),
                r.url.clone(),
                r.repo_type.clone(),
                r.branch.clone(),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        repos,
        [
            (
                "bitnamicharts".to_owned(),
                "oci://registry-1.docker.io/bitnamicharts".to_owned(),
                Some("oci".to_owned()),
                String::new()
            ),
            (
                "ingress-nginx".to_owned(),
                "https://kubernetes.github.io/ingress-nginx".to_owned(),
                Some("helm".to_owned()),
                String::new()
            ),
        ]
    );
    let ingress = app(&t, "ingress-nginx");
    assert_eq!(
        (
            ingress.repo.as_str(),
            ingress.renderer.as_str(),
            ingress.chart.as_deref(),
            ingress.chart_version.as_deref(),
            ingress.path.as_str(),
            ingress.revision.as_deref(),
            ingress.manual,
        ),
        (
            "ingress-nginx",
            "helm",
            Some("ingress-nginx"),
            Some("4.10.0"),
            ".",
            None,
            false
        )
    );
    let helm = ingress.helm.as_ref().expect("the helm block");
    assert_eq!(helm.release_name.as_deref(), Some("ingress"));
    assert_eq!(
        helm.values,
        Some(serde_json::json!({"controller": {"replicaCount": 2}}))
    );
    let nginx = app(&t, "nginx");
    assert_eq!(
        (nginx.repo.as_str(), nginx.chart_version.as_deref()),
        ("bitnamicharts", Some("18.x"))
    );
    // Values files would be read from a Git repo: listed, not dropped.
    assert_eq!(t.untranslated.len(), 1, "{:?}", t.untranslated);
    assert_eq!(t.untranslated[0].what, "Application podinfo");
    assert!(
        t.untranslated[0].reason.contains("valueFiles"),
        "{:?}",
        t.untranslated
    );
    round_trip(&t);
}

#[test]
fn templates_substitute_plain_and_go_placeholders() {
    let params: BTreeMap<String, String> = [("path.basename".to_owned(), "web".to_owned())].into();
    assert_eq!(
        substitute_text("x-{{path.basename}}-{{ path.basename }}", &params, false),
        "x-web-web"
    );
    assert_eq!(
        substitute_text("{{ .path.basename }}/{{.nope}}", &params, true),
        "web/{{.nope}}"
    );
    assert_eq!(
        unresolved(&Value::String("a{{.nope}}b".into())).as_deref(),
        Some("{{.nope}}")
    );
}

/// A checkout held in memory, file by file.
struct Files(Vec<(&'static str, &'static str)>);

impl Checkout for Files {
    fn has_file(&self, path: &str) -> bool {
        self.0.iter().any(|(p, _)| *p == path)
    }
    fn directories(&self) -> Vec<String> {
        Vec::new()
    }
    fn files(&self) -> Vec<String> {
        self.0.iter().map(|(p, _)| p.to_string()).collect()
    }
    fn read(&self, path: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(p, _)| *p == path)
            .map(|(_, t)| t.to_string())
    }
}

#[test]
fn git_file_generators_take_their_parameters_from_the_files() {
    let set = "\
apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: per-env
spec:
  generators:
  - git:
      repoURL: https://github.com/example/fleet.git
      revision: HEAD
      files:
      - path: 'envs/**/config.json'
  template:
    metadata:
      name: 'web-{{env.name}}'
    spec:
      project: default
      source:
        repoURL: https://github.com/example/fleet.git
        targetRevision: HEAD
        path: 'web/{{path.basename}}'
      destination:
        name: '{{env.cluster}}'
        namespace: web
";
    let checkout = Files(vec![
        (
            "envs/dev/config.json",
            r#"{"env": {"name": "dev", "cluster": "lab"}}"#,
        ),
        (
            "envs/prod/config.json",
            r#"{"env": {"name": "prod", "cluster": "paris"}}"#,
        ),
        ("envs/prod/README.md", "not a match"),
    ]);
    let t = translate(&[input("set.yaml", set)], Some(&checkout));
    assert!(t.untranslated.is_empty(), "{:?}", t.untranslated);
    let prod = app(&t, "web-prod");
    assert_eq!(prod.path, "web/prod");
    assert_eq!(prod.target.selector, "argocd-cluster=paris");
    assert_eq!(app(&t, "web-dev").target.selector, "argocd-cluster=lab");
    round_trip(&t);
}

#[test]
fn the_parent_of_an_app_of_apps_points_at_its_directory() {
    let parent = GUESTBOOK.replace("path: guestbook", "path: apps");
    let checkout = Files(vec![("apps/templates/guestbook.yaml", GUESTBOOK)]);
    let t = translate(&[input("root.yaml", &parent)], Some(&checkout));
    assert!(t.documents.is_empty(), "{:?}", t.documents);
    assert!(
        t.untranslated[0].reason.contains("an app of apps")
            && t.untranslated[0].reason.contains("-f CHECKOUT/apps"),
        "{:?}",
        t.untranslated
    );
}

#[test]
fn ignore_differences_carry_over_with_field_managers() {
    let with_rules = GUESTBOOK.replacen(
        "spec:\n",
        "spec:\n  ignoreDifferences:\n  - group: apps\n    kind: Deployment\n    jsonPointers:\n    - /spec/replicas\n  - kind: Service\n    jqPathExpressions:\n    - .spec.ports[].nodePort\n  - kind: Deployment\n    group: apps\n    managedFieldsManagers:\n    - kube-controller-manager\n",
        1,
    );
    let t = translate(&[input("g.yaml", &with_rules)], Some(&Example));
    assert!(t.untranslated.is_empty(), "{:?}", t.untranslated);
    let rules = &app(&t, "guestbook").ignore_differences;
    assert_eq!(rules.len(), 3, "{rules:?}");
    assert_eq!(
        (rules[0].group.as_str(), rules[0].kind.as_str()),
        ("apps", "Deployment")
    );
    assert_eq!(rules[0].json_pointers, ["/spec/replicas"]);
    assert_eq!(rules[1].jq_path_expressions, [".spec.ports[].nodePort"]);
    assert_eq!(
        rules[2].managed_fields_managers,
        ["kube-controller-manager"]
    );
    assert!(
        !t.notes.iter().any(|n| n.contains("managedFieldsManagers")),
        "{:?}",
        t.notes
    );
    round_trip(&t);
}

#[test]
fn app_level_sync_options_translate_or_are_listed_with_the_reason() {
    let guestbook = |options: &str| {
        GUESTBOOK.replacen("    syncOptions:\n    - CreateNamespace=true\n", options, 1)
    };
    // Argo CD's default: no CreateNamespace, no namespace created.
    let t = translate(&[input("g.yaml", &guestbook(""))], Some(&Example));
    assert!(!app(&t, "guestbook").create_namespace);
    round_trip(&t);
    let t = translate(
        &[input(
            "g.yaml",
            &guestbook(
                "    syncOptions:\n    - CreateNamespace=true\n    - ServerSideApply=true\n    - PrunePropagationPolicy=orphan\n    - Frobnicate=yes\n",
            ),
        )],
        Some(&Example),
    );
    assert!(app(&t, "guestbook").create_namespace);
    let noted = |what: &str| t.notes.iter().any(|n| n.contains(what));
    assert!(
        noted("\"PrunePropagationPolicy=orphan\" not translated: the agent deletes"),
        "{:?}",
        t.notes
    );
    assert!(
        noted("\"Frobnicate=yes\" not translated: unknown sync option"),
        "{:?}",
        t.notes
    );
    assert!(
        !noted("ServerSideApply") && !noted("CreateNamespace"),
        "{:?}",
        t.notes
    );
    round_trip(&t);
}
