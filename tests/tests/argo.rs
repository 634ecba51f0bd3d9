//! Argo CD repositories end to end with the real binaries and a git daemon:
//! the layouts of argoproj/argocd-example-apps (a plain directory, a jsonnet
//! app without `main.jsonnet`, a kustomize overlay over a base elsewhere in
//! the repository) render unchanged; directory settings (recursion, globs,
//! jsonnet arguments and library paths) from the CLI and from `apply -f`;
//! a commit that touches nothing an app reads neither re-renders it nor
//! changes its objects, one that touches its base does; kustomize
//! references and symlinks leaving the repository are refused.

use serde_json::Value;
use std::path::Path;
use switchyard_tests::fleet::{SOON, TestHub};
use switchyard_tests::git_server::{GitDaemon, GitRepoBuilder};
use switchyard_tests::process::wait_until;

fn ok(hub: &TestHub, args: &[&str]) -> String {
    let out = hub.cli(args);
    assert!(
        out.success(),
        "switchyard {args:?}:\n{}{}",
        out.stdout,
        out.stderr
    );
    out.stdout
}

const GUESTBOOK_DEPLOY: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: guestbook-ui
spec:
  replicas: 1
  revisionHistoryLimit: 3
  selector:
    matchLabels:
      app: guestbook-ui
  template:
    metadata:
      labels:
        app: guestbook-ui
    spec:
      containers:
      - image: gcr.io/heptio-images/ks-guestbook-demo:0.2
        name: guestbook-ui
        ports:
        - containerPort: 80
";

const GUESTBOOK_SVC: &str = "apiVersion: v1
kind: Service
metadata:
  name: guestbook-ui
spec:
  ports:
  - port: 80
    targetPort: 80
  selector:
    app: guestbook-ui
";

const JSONNET_PARAMS: &str = "{
  containerPort: 80,
  image: \"gcr.io/heptio-images/ks-guestbook-demo:0.2\",
  name: \"jsonnet-guestbook-ui\",
  replicas: 1,
  servicePort: 80,
  type: \"LoadBalancer\",
}
";

const JSONNET_UI: &str = "local params = import 'params.libsonnet';

[
  {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: params.name },
    spec: {
      ports: [{ port: params.servicePort, targetPort: params.containerPort }],
      selector: { app: params.name },
      type: params.type,
    },
  },
  {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: params.name },
    spec: {
      replicas: params.replicas,
      selector: { matchLabels: { app: params.name } },
      template: {
        metadata: { labels: { app: params.name } },
        spec: { containers: [{ image: params.image, name: params.name }] },
      },
    },
  },
]
";

/// A repository in the style of argocd-example-apps, plus a kustomize
/// base with overlays and a jsonnet app that takes arguments.
fn argo_repo() -> GitRepoBuilder {
    let r = GitRepoBuilder::new();
    r.write("README.md", "# example apps\n");
    r.write("guestbook/guestbook-ui-deployment.yaml", GUESTBOOK_DEPLOY);
    r.write("guestbook/guestbook-ui-svc.yaml", GUESTBOOK_SVC);
    r.write("jsonnet-guestbook/params.libsonnet", JSONNET_PARAMS);
    r.write("jsonnet-guestbook/guestbook-ui.jsonnet", JSONNET_UI);
    r.write(
        "kustomize-guestbook/base/kustomization.yaml",
        "resources:\n- guestbook-ui-deployment.yaml\n- guestbook-ui-svc.yaml\n",
    );
    r.write(
        "kustomize-guestbook/base/guestbook-ui-deployment.yaml",
        GUESTBOOK_DEPLOY,
    );
    r.write(
        "kustomize-guestbook/base/guestbook-ui-svc.yaml",
        GUESTBOOK_SVC,
    );
    r.write(
        "kustomize-guestbook/overlays/prod/kustomization.yaml",
        "namePrefix: prod-\nresources:\n- ../../base\ncomponents:\n- ../../../components/labels\npatches:\n- path: replicas.yaml\n",
    );
    r.write(
        "kustomize-guestbook/overlays/prod/replicas.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: guestbook-ui\nspec:\n  replicas: 3\n",
    );
    r.write(
        "components/labels/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nlabels:\n- pairs:\n    team: shop\n",
    );
    r.write(
        "helm-guestbook/Chart.yaml",
        "apiVersion: v2\nname: helm-guestbook\nversion: 0.1.0\n",
    );
    r.write("helm-guestbook/values.yaml", "replicaCount: 1\n");
    r.write("helm-guestbook/values-production.yaml", "replicaCount: 3\n");
    r.write(
        "helm-guestbook/templates/deployment.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}-helm-guestbook\nspec:\n  replicas: {{ .Values.replicaCount }}\n",
    );
    // A directory app with jsonnet arguments, a library elsewhere in the
    // repository, and files the globs and recursion leave out.
    r.write(
        "tla/app.jsonnet",
        "local k = import 'k.libsonnet';\nfunction(name, replicas=1) k.cm(name + '-' + std.extVar('env'), replicas)\n",
    );
    r.write("tla/skip-test.yaml", "not: [valid");
    r.write("tla/sub/nested.yaml", "not: [valid");
    r.write(
        "libs/k/k.libsonnet",
        "{ cm(n, r):: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: n }, data: { replicas: std.toString(r) } } }\n",
    );
    r
}

/// `app manifests APP --cluster C -o json`, as `Kind/name` sorted, and the
/// objects.
fn manifests(hub: &TestHub, app: &str) -> (Vec<String>, Vec<Value>) {
    let out = hub.cli(&["app", "manifests", app, "--cluster", "paris", "-o", "json"]);
    if !out.success() {
        return (vec![format!("error: {}", out.stderr)], Vec::new());
    }
    let list: Value = serde_json::from_str(&out.stdout).unwrap();
    let items = list["items"].as_array().cloned().unwrap_or_default();
    let mut names: Vec<String> = items
        .iter()
        .map(|o| {
            format!(
                "{}/{}",
                o["kind"].as_str().unwrap_or("?"),
                o["metadata"]["name"].as_str().unwrap_or("?")
            )
        })
        .collect();
    names.sort();
    (names, items)
}

fn deployed(hub: &TestHub, app: &str) -> String {
    hub.cli_json(&["app", "show", app])["deployed"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn errors(hub: &TestHub, app: &str) -> String {
    hub.cli_json(&["app", "show", app])["errors"].to_string()
}

/// How many renders of `app` the hub's log records.
fn renders(hub: &mut TestHub, app: &str) -> usize {
    hub.process
        .stderr_text()
        .lines()
        .filter(|l| l.contains(": rendered app=") && l.contains(&format!("app={app} ")))
        .count()
}

fn start(dir: &Path, source: &GitRepoBuilder) -> (TestHub, GitDaemon, String) {
    start_labelled(dir, source, &["env=prod"])
}

fn start_labelled(
    dir: &Path,
    source: &GitRepoBuilder,
    labels: &[&str],
) -> (TestHub, GitDaemon, String) {
    let served = dir.join("served");
    let head = source.commit("example apps");
    source.publish(&served, "examples");
    let daemon = GitDaemon::start(&served);
    let hub = TestHub::start(dir, &[]);
    ok(
        &hub,
        &[
            "repo",
            "add",
            "examples",
            &daemon.url("examples.git"),
            "--interval",
            "1s",
        ],
    );
    assert!(
        hub.repo_reaches("examples", &head),
        "first fetch never happened"
    );
    hub.add_cluster("paris", labels);
    (hub, daemon, head)
}

#[test]
fn argo_cd_example_layouts_render_and_unrelated_commits_do_not_re_render() {
    assert!(
        which("kubectl").is_some(),
        "this test needs kubectl (the kustomize renderer) on PATH"
    );
    let dir = tempfile::tempdir().unwrap();
    let source = argo_repo();
    let (mut hub, _daemon, head) = start(dir.path(), &source);
    let create = |name: &str, path: &str, extra: &[&str]| {
        let mut args = vec!["app", "create", name, "--repo", "examples", "--path", path];
        args.extend(extra);
        ok(&hub, &args);
    };
    create("guestbook", "guestbook", &[]);
    create(
        "jsonnet-guestbook",
        "jsonnet-guestbook",
        &["--renderer", "jsonnet"],
    );
    create(
        "kustomize-prod",
        "kustomize-guestbook/overlays/prod",
        &["--renderer", "kustomize"],
    );
    create(
        "tla",
        "tla",
        &[
            "--no-recurse",
            "--exclude",
            "*-test.yaml",
            "--jsonnet-tla",
            "name=web",
            "--jsonnet-tla-code",
            "replicas=1+2",
            "--jsonnet-ext-str",
            "env=prod",
            "--jsonnet-lib-path",
            "libs/k",
        ],
    );

    let expect = [
        (
            "guestbook",
            vec!["Deployment/guestbook-ui", "Service/guestbook-ui"],
        ),
        (
            "jsonnet-guestbook",
            vec![
                "Deployment/jsonnet-guestbook-ui",
                "Service/jsonnet-guestbook-ui",
            ],
        ),
        (
            "kustomize-prod",
            vec!["Deployment/prod-guestbook-ui", "Service/prod-guestbook-ui"],
        ),
        ("tla", vec!["ConfigMap/web-prod"]),
    ];
    for (app, names) in &expect {
        assert!(
            wait_until(SOON, || manifests(&hub, app).0 == *names),
            "{app}: {:?}; errors {}",
            manifests(&hub, app).0,
            errors(&hub, app)
        );
    }
    let (_, prod) = manifests(&hub, "kustomize-prod");
    let deploy = prod.iter().find(|o| o["kind"] == "Deployment").unwrap();
    assert_eq!(deploy["spec"]["replicas"], 3, "the overlay's patch");
    assert_eq!(
        deploy["metadata"]["labels"]["team"], "shop",
        "the component"
    );
    let (_, tla) = manifests(&hub, "tla");
    assert_eq!(tla[0]["data"]["replicas"], "3", "the code TLA");

    // `app show` and the API carry the settings.
    let shown = ok(&hub, &["app", "show", "tla"]);
    for line in [
        "Recurse",
        "Exclude",
        "*-test.yaml",
        "name=web",
        "replicas=1+2 (code)",
        "env=prod",
        "libs/k",
    ] {
        assert!(shown.contains(line), "{line} missing from:\n{shown}");
    }
    let json = hub.cli_json(&["app", "show", "tla"]);
    assert_eq!(json["directory"]["recurse"], false, "{json}");

    // A commit that touches nothing the apps read: each app follows it,
    // no render runs again and the objects stay the same.
    let before: Vec<usize> = expect.iter().map(|(a, _)| renders(&mut hub, a)).collect();
    assert!(before.iter().all(|&n| n == 1), "renders so far: {before:?}");
    let (_, prod_before) = manifests(&hub, "kustomize-prod");
    source.write("README.md", "# example apps, now documented\n");
    source.write(
        "kustomize-guestbook/overlays/staging/kustomization.yaml",
        "resources:\n- ../../base\n",
    );
    let unrelated = source.commit("docs and a new overlay");
    source.publish(&dir.path().join("served"), "examples");
    for (app, _) in &expect {
        assert!(
            wait_until(SOON, || deployed(&hub, app) == unrelated),
            "{app} never followed the unrelated commit"
        );
    }
    let after: Vec<usize> = expect.iter().map(|(a, _)| renders(&mut hub, a)).collect();
    let log = hub.process.stderr_text();
    let render_lines: Vec<&str> = log.lines().filter(|l| l.contains("render")).collect();
    assert_eq!(
        after,
        before,
        "an unrelated commit re-rendered an app:\n{}",
        render_lines.join("\n")
    );
    assert_eq!(manifests(&hub, "kustomize-prod").1, prod_before);

    // A commit that changes the base the overlay reads renders it again,
    // with the change; the apps that do not read it stay as they were.
    source.write(
        "kustomize-guestbook/base/guestbook-ui-svc.yaml",
        GUESTBOOK_SVC.replace("port: 80\n", "port: 8080\n"),
    );
    let base_change = source.commit("service port 8080");
    source.publish(&dir.path().join("served"), "examples");
    assert!(
        wait_until(SOON, || deployed(&hub, "kustomize-prod") == base_change
            && manifests(&hub, "kustomize-prod").1 != prod_before),
        "the base's change never reached the overlay"
    );
    let (_, prod_after) = manifests(&hub, "kustomize-prod");
    let svc = prod_after.iter().find(|o| o["kind"] == "Service").unwrap();
    assert_eq!(svc["spec"]["ports"][0]["port"], 8080);
    assert_eq!(renders(&mut hub, "kustomize-prod"), 2);
    assert!(
        wait_until(SOON, || deployed(&hub, "guestbook") == base_change),
        "guestbook never followed"
    );
    assert_eq!(renders(&mut hub, "guestbook"), 1);
    assert_ne!(head, base_change);
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(program))
            .find(|p| p.is_file())
    })
}

#[test]
fn kustomize_references_and_symlinks_leaving_the_repository_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let source = GitRepoBuilder::new();
    source.write(
        "apps/climb/kustomization.yaml",
        "resources:\n- ../../../outside\n",
    );
    source.write("apps/absolute/kustomization.yaml", "resources:\n- /etc\n");
    source.write(
        "apps/link/kustomization.yaml",
        "configMapGenerator:\n- name: stolen\n  files:\n  - passwd\n",
    );
    source.symlink("apps/link/passwd", "/etc/passwd");
    source.write(
        "apps/link-base/kustomization.yaml",
        "resources:\n- ../../base\n",
    );
    source.write(
        "base/kustomization.yaml",
        "configMapGenerator:\n- name: stolen\n  files:\n  - passwd\n",
    );
    source.symlink("base/passwd", "../../../../../../etc/passwd");
    let (hub, _daemon, _) = start(dir.path(), &source);
    for (app, want) in [
        ("climb", "leaves the repository"),
        ("absolute", "leaves the repository"),
        ("link", "outside"),
        ("link-base", "outside"),
    ] {
        // The create itself says the app cannot deploy (exit 1).
        let out = hub.cli(&[
            "app",
            "create",
            app,
            "--repo",
            "examples",
            "--path",
            &format!("apps/{app}"),
            "--renderer",
            "kustomize",
        ]);
        assert!(out.stderr.contains(want), "{app}: {}", out.stderr);
        assert!(
            wait_until(SOON, || errors(&hub, app).contains(want)),
            "{app}: {}",
            errors(&hub, app)
        );
        let (names, _) = manifests(&hub, app);
        assert!(
            names.iter().all(|n| !n.contains("ConfigMap")),
            "{app} rendered {names:?}"
        );
    }
}

#[test]
fn directory_settings_round_trip_through_apply_and_export() {
    let dir = tempfile::tempdir().unwrap();
    let source = argo_repo();
    let (hub, _daemon, _) = start(dir.path(), &source);
    let doc = "\
apiVersion: switchyard.dev/v1
kind: App
metadata:
  name: tla
spec:
  repo: examples
  path: tla
  directory:
    recurse: false
    exclude:
    - '*-test.yaml'
    jsonnet:
      tlas:
      - name: name
        value: web
      - name: replicas
        value: '1+2'
        code: true
      extVars:
      - name: env
        value: prod
      libs:
      - libs/k
";
    let file = dir.path().join("tla.yaml");
    std::fs::write(&file, doc).unwrap();
    ok(&hub, &["apply", "-f", file.to_str().unwrap()]);
    assert!(
        wait_until(SOON, || manifests(&hub, "tla").0 == ["ConfigMap/web-prod"]),
        "{:?} {}",
        manifests(&hub, "tla").0,
        errors(&hub, "tla")
    );
    let exported = ok(&hub, &["export", "app"]);
    for line in [
        "  directory:",
        "    recurse: false",
        "    - \"*-test.yaml\"",
        "      - name: replicas",
        "        code: true",
        "      extVars:",
        "      - libs/k",
    ] {
        assert!(
            exported.contains(line),
            "{line:?} missing from:\n{exported}"
        );
    }
    // Applying the export again changes nothing.
    let again = dir.path().join("again.yaml");
    std::fs::write(&again, &exported).unwrap();
    let out = ok(&hub, &["apply", "-f", again.to_str().unwrap()]);
    assert!(out.contains("app/tla unchanged"), "{out}");

    // `app update` changes the flags given and keeps the rest; an empty
    // value clears a list.
    // Without the exclusion the broken test file is read again: the
    // update says the app cannot deploy, and why.
    let out = hub.cli(&["app", "update", "tla", "--recurse", "--exclude", ""]);
    assert!(out.stderr.contains("skip-test.yaml:1:6"), "{}", out.stderr);
    let json = hub.cli_json(&["app", "show", "tla"]);
    assert_eq!(json["directory"]["recurse"], true, "{json}");
    assert!(json["directory"].get("exclude").is_none(), "{json}");
    assert_eq!(json["directory"]["jsonnet"]["libs"][0], "libs/k", "{json}");
    // Directory settings belong to directory and jsonnet apps only.
    let out = hub.cli(&["app", "update", "tla", "--renderer", "kustomize"]);
    assert!(!out.success());
    assert!(out.stderr.contains("directory settings"), "{}", out.stderr);

    // A bad glob is refused with the line it is on.
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, doc.replace("'*-test.yaml'", "'a['")).unwrap();
    let out = hub.cli(&["apply", "-f", bad.to_str().unwrap()]);
    assert!(!out.success());
    assert!(
        out.stderr.contains("spec.directory") && out.stderr.contains("glob"),
        "{}",
        out.stderr
    );
}

/// The app-of-apps chart of tests/fixtures/argocd/apps (as in
/// argocd-example-apps), its repoURL pointed at `url`, in `dir`.
fn app_of_apps(dir: &Path, url: &str) -> std::path::PathBuf {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/argocd/apps");
    let apps = dir.join("apps");
    std::fs::create_dir_all(apps.join("templates")).unwrap();
    for f in [
        "Chart.yaml",
        "values.yaml",
        "templates/guestbook.yaml",
        "templates/helm-guestbook.yaml",
        "templates/jsonnet-guestbook.yaml",
        "templates/kustomize-guestbook.yaml",
    ] {
        let text = std::fs::read_to_string(fixtures.join(f)).unwrap();
        let text = text.replace("https://github.com/argoproj/argocd-example-apps.git", url);
        std::fs::write(apps.join(f), text).unwrap();
    }
    apps
}

#[test]
fn an_app_of_apps_imports_and_deploys_in_one_command() {
    let dir = tempfile::tempdir().unwrap();
    let source = argo_repo();
    let (hub, daemon, _) = start_labelled(dir.path(), &source, &["argocd-cluster=in-cluster"]);
    let apps = app_of_apps(dir.path(), &daemon.url("examples.git"));
    let checkout = source.path();

    // Printed: the documents, and on stderr what was assumed.
    let out = hub.cli(&[
        "import",
        "argocd",
        "-f",
        apps.to_str().unwrap(),
        "--checkout",
        checkout.to_str().unwrap(),
    ]);
    assert!(out.success(), "{}{}", out.stdout, out.stderr);
    for line in [
        "kind: Repo",
        "  name: examples",
        "  name: helm-guestbook",
        "  renderer: helm",
        "  renderer: kustomize",
        "    selector: argocd-cluster=in-cluster",
    ] {
        assert!(
            out.stdout.contains(line),
            "{line:?} missing from:\n{}",
            out.stdout
        );
    }
    assert!(
        out.stderr
            .contains("translated 5 documents (4 apps); 0 not translated"),
        "{}",
        out.stderr
    );

    // Applied: every app renders what Argo CD would have deployed.
    let out = hub.cli(&[
        "import",
        "argocd",
        "-f",
        apps.to_str().unwrap(),
        "--checkout",
        checkout.to_str().unwrap(),
        "--apply",
    ]);
    assert!(out.success(), "{}{}", out.stdout, out.stderr);
    for line in [
        "repo/examples configured",
        "app/guestbook created",
        "app/helm-guestbook created",
        "app/jsonnet-guestbook created",
        "app/kustomize-guestbook created",
    ] {
        assert!(
            out.stdout.contains(line),
            "{line:?} missing from:\n{}",
            out.stdout
        );
    }
    for (app, names) in [
        (
            "guestbook",
            vec!["Deployment/guestbook-ui", "Service/guestbook-ui"],
        ),
        (
            "helm-guestbook",
            vec!["Deployment/helm-guestbook-helm-guestbook"],
        ),
        (
            "jsonnet-guestbook",
            vec![
                "Deployment/jsonnet-guestbook-ui",
                "Service/jsonnet-guestbook-ui",
            ],
        ),
        (
            "kustomize-guestbook",
            vec!["Deployment/prod-guestbook-ui", "Service/prod-guestbook-ui"],
        ),
    ] {
        assert!(
            wait_until(SOON, || manifests(&hub, app).0 == names),
            "{app}: {:?}; errors {}",
            manifests(&hub, app).0,
            errors(&hub, app)
        );
    }
    // Manual until Argo CD's automated policy says otherwise: the fixture's
    // apps are automated with prune.
    let shown = hub.cli_json(&["app", "show", "guestbook"]);
    assert_eq!(shown["sync_policy"], "automatic", "{shown}");
    assert_eq!(shown["prune"], true, "{shown}");

    // Nothing translatable: listed with reasons, exit 1.
    let unsupported =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/argocd/unsupported.yaml");
    let out = hub.cli(&["import", "argocd", "-f", unsupported.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    for line in [
        "the matrix generator is not supported",
        "ConfigMap argocd-cm: not an Argo CD Application or ApplicationSet",
        "nothing translated",
    ] {
        assert!(
            out.stderr.contains(line),
            "{line:?} missing from:\n{}",
            out.stderr
        );
    }
}

/// Application-level `syncOptions` and field-manager ignore rules: what
/// translates is in the documents (`createNamespace`, Argo CD's default
/// false without `CreateNamespace=true`; `managedFieldsManagers`), the rest
/// is listed with the reason, and `--apply` gives the apps those settings.
#[test]
fn import_translates_app_level_sync_options_and_field_manager_rules() {
    let dir = tempfile::tempdir().unwrap();
    let source = argo_repo();
    let (hub, daemon, _) = start_labelled(dir.path(), &source, &["argocd-cluster=in-cluster"]);
    let url = daemon.url("examples.git");
    let file = dir.path().join("apps.yaml");
    std::fs::write(
        &file,
        format!(
            "\
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: guestbook
  namespace: argocd
spec:
  project: default
  source:
    repoURL: {url}
    targetRevision: HEAD
    path: guestbook
  destination:
    server: https://kubernetes.default.svc
    namespace: guestbook
  ignoreDifferences:
  - group: apps
    kind: Deployment
    managedFieldsManagers:
    - kube-controller-manager
  syncPolicy:
    automated:
      prune: true
    syncOptions:
    - CreateNamespace=true
    - ServerSideApply=true
    - PruneLast=true
    - PrunePropagationPolicy=foreground
---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: plain
  namespace: argocd
spec:
  project: default
  source:
    repoURL: {url}
    targetRevision: HEAD
    path: guestbook
  destination:
    server: https://kubernetes.default.svc
    namespace: plain
"
        ),
    )
    .unwrap();
    let checkout = source.path();
    let args = [
        "import",
        "argocd",
        "-f",
        file.to_str().unwrap(),
        "--checkout",
        checkout.to_str().unwrap(),
    ];
    let out = hub.cli(&args);
    assert!(out.success(), "{}{}", out.stdout, out.stderr);
    for line in [
        "    managedFieldsManagers:\n    - kube-controller-manager",
        "  createNamespace: false",
        "  pruneLast: true",
    ] {
        assert!(
            out.stdout.contains(line),
            "{line:?} missing from:\n{}",
            out.stdout
        );
    }
    assert_eq!(
        out.stdout.matches("createNamespace: false").count(),
        1,
        "{}",
        out.stdout
    );
    let note = "\"PrunePropagationPolicy=foreground\" not translated: the agent deletes";
    assert!(
        out.stderr.contains(note),
        "{note:?} missing from:\n{}",
        out.stderr
    );
    assert!(!out.stderr.contains("ServerSideApply"), "{}", out.stderr);
    assert!(!out.stderr.contains("PruneLast"), "{}", out.stderr);
    assert!(!out.stderr.contains("CreateNamespace"), "{}", out.stderr);

    let mut apply = args.to_vec();
    apply.push("--apply");
    let out = hub.cli(&apply);
    assert!(out.success(), "{}{}", out.stdout, out.stderr);
    let guestbook = hub.cli_json(&["app", "show", "guestbook"]);
    assert_eq!(guestbook["create_namespace"], true, "{guestbook}");
    assert_eq!(guestbook["prune_last"], true, "{guestbook}");
    assert_eq!(
        guestbook["ignore_differences"][0]["managedFieldsManagers"],
        serde_json::json!(["kube-controller-manager"]),
        "{guestbook}"
    );
    let plain = hub.cli_json(&["app", "show", "plain"]);
    assert_eq!(plain["create_namespace"], false, "{plain}");
}
