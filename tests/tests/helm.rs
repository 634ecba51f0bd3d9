//! The helm renderer end to end with the real binaries, a git daemon and the
//! fake API server: a chart from Git with values files (in the chart and
//! elsewhere in the repo), `--set`, a release name and per-cluster values
//! files; cluster name, labels and Kubernetes version reaching templates;
//! random functions stable across a hub restart and distinct per cluster;
//! a chart that reads nothing of clusters rendered once; `app manifests`
//! printing what a cluster receives; a broken template's file and line in
//! `app show`, `status` and the API.

use serde_json::Value;
use std::path::Path;
use std::time::Duration;
use switchyard_tests::fake_kube::FakeKube;
use switchyard_tests::fleet::{SOON, TestAgent, TestHub};
use switchyard_tests::git_server::{GitDaemon, GitRepoBuilder};
use switchyard_tests::process::wait_until;

const CHART: &str = "apiVersion: v2\nname: web\nversion: 0.1.0\n";

const VALUES: &str = "replicas: 1
image:
  repository: nginx
  tag: latest
greeting: hello
";

const HELPERS: &str = r#"{{- define "web.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
"#;

const DEPLOY: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-web
  labels:
    {{- include "web.labels" . | nindent 4 }}
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels:
      {{- include "web.labels" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "web.labels" . | nindent 8 }}
    spec:
      containers:
        - name: web
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
"#;

const SITE: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-site
data:
  cluster: {{ .Values.global.switchyard.cluster.name | quote }}
  env: {{ .Values.global.switchyard.cluster.labels.env | default "none" | quote }}
  kube: {{ .Capabilities.KubeVersion.Version | quote }}
  tier: {{ .Values.tier | default "standard" | quote }}
  greeting: {{ .Values.greeting | quote }}
  token: {{ randAlphaNum 16 | quote }}
  release-namespace: {{ .Release.Namespace | quote }}
"#;

const PLAIN: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}
data:
  values: {{ toJson .Values | quote }}
"#;

const BROKEN: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: broken
data:
  ok: "yes"
  bad: {{ .Values.missing.deeper }}
"#;

/// The chart repo: `charts/web` (reads the cluster), `charts/plain`
/// (reads nothing of it) and a values file outside the chart.
fn chart_repo() -> GitRepoBuilder {
    let source = GitRepoBuilder::new();
    source.write("charts/web/Chart.yaml", CHART);
    source.write("charts/web/values.yaml", VALUES);
    source.write("charts/web/templates/_helpers.tpl", HELPERS);
    source.write("charts/web/templates/deploy.yaml", DEPLOY);
    source.write("charts/web/templates/site.yaml", SITE);
    source.write("charts/web/values-prod.yaml", "replicas: 3\n");
    source.write("charts/web/values-gold.yaml", "tier: gold\nreplicas: 5\n");
    source.write("envs/more.yaml", "greeting: from-more\n");
    source.write(
        "charts/plain/Chart.yaml",
        "apiVersion: v2\nname: plain\nversion: 1.0.0\n",
    );
    source.write("charts/plain/values.yaml", "color: blue\n");
    source.write("charts/plain/templates/cm.yaml", PLAIN);
    source
}

/// `app manifests APP --cluster C -o json`, as objects by kind.
fn manifests(hub: &TestHub, app: &str, cluster: Option<&str>) -> Vec<Value> {
    let mut args = vec!["app", "manifests", app, "-o", "json"];
    if let Some(c) = cluster {
        args.extend(["--cluster", c]);
    }
    let out = hub.cli(&args);
    assert!(out.success(), "app manifests {args:?}: {}", out.stderr);
    let list: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(list["kind"], "List");
    list["items"].as_array().unwrap().clone()
}

fn object<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {objects:?}"))
}

fn assigned(hub: &TestHub, app: &str) -> u64 {
    hub.cli_json(&["app", "show", app])["assigned"]
        .as_u64()
        .unwrap_or_default()
}

/// How many renders of `app` the hub's log records.
fn renders(hub: &mut TestHub, app: &str) -> usize {
    hub.process
        .stderr_text()
        .lines()
        // The render's own line ("rendered app=…"), not "rendered
        // meanwhile; not run again", which is a render skipped.
        .filter(|l| l.contains(&format!(": rendered app={app} ")))
        .count()
}

fn start_kube_agent(
    dir: &Path,
    hub: &TestHub,
    fake: &FakeKube,
    name: &str,
    labels: &[&str],
) -> TestAgent {
    let kubeconfig = dir.join(format!("{name}.kubeconfig"));
    fake.write_kubeconfig(&kubeconfig).unwrap();
    hub.connect_kube_agent(dir, name, labels, &kubeconfig)
}

#[test]
fn a_chart_from_git_renders_per_cluster_with_values_set_and_release_name() {
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("served");
    let source = chart_repo();
    let head = source.commit("charts");
    source.publish(&served, "fleet");
    let daemon = GitDaemon::start(&served);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let fake = runtime.block_on(FakeKube::start());
    fake.create_object(serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "web"}
    }))
    .unwrap();

    let mut hub = TestHub::start(dir.path(), &[]);
    hub.cli_ok(&[
        "repo",
        "add",
        "fleet",
        &daemon.url("fleet.git"),
        "--interval",
        "1s",
    ]);
    assert!(
        hub.repo_reaches("fleet", &head),
        "first fetch never happened"
    );
    // berlin has an agent on a (fake) Kubernetes v1.30.0; lisbon and lab
    // have none, so no reported version.
    let mut berlin = start_kube_agent(
        dir.path(),
        &hub,
        &fake,
        "berlin",
        &["env=prod", "tier=gold"],
    );
    assert!(
        wait_until(SOON, || hub.cluster("berlin")["kubernetes_version"]
            == "v1.30.0"),
        "berlin never reported its version: {}",
        hub.cluster("berlin")
    );
    hub.add_cluster("lisbon", &["env=prod"]);
    hub.add_cluster("lab", &["env=staging"]);

    hub.cli_ok(&[
        "app",
        "create",
        "web",
        "--repo",
        "fleet",
        "--path",
        "charts/web",
        "--renderer",
        "helm",
        "--values",
        "values-prod.yaml",
        "--values",
        "../../envs/more.yaml",
        "--values-for",
        "tier=gold=values-gold.yaml",
        "--set",
        "image.tag=1.2.3",
        "--release-name",
        "shop",
        "--namespace",
        "web",
    ]);
    hub.cli_ok(&[
        "app",
        "create",
        "plain",
        "--repo",
        "fleet",
        "--path",
        "charts/plain",
        "--renderer",
        "helm",
    ]);
    assert!(
        wait_until(SOON, || assigned(&hub, "web") == 3
            && assigned(&hub, "plain") == 3),
        "apps never assigned: {}\n{}\nhub log:\n{}",
        hub.cli_json(&["app", "show", "web"]),
        hub.cli_json(&["app", "show", "plain"]),
        hub.process.stderr_text()
    );

    let shown = hub.cli_json(&["app", "show", "web"]);
    assert_eq!(shown["renderer"], "helm");
    assert_eq!(shown["helm"]["release_name"], "shop");
    assert_eq!(
        shown["helm"]["values_files"],
        serde_json::json!(["values-prod.yaml", "../../envs/more.yaml"])
    );

    // berlin: values files in order, its tier's file, --set last, its own
    // name, labels and Kubernetes version.
    let on_berlin = manifests(&hub, "web", Some("berlin"));
    assert_eq!(on_berlin.len(), 2, "{on_berlin:?}");
    let deploy = object(&on_berlin, "Deployment");
    assert_eq!(deploy["metadata"]["name"], "shop-web");
    assert_eq!(
        deploy["metadata"]["labels"]["app.kubernetes.io/instance"],
        "shop"
    );
    assert_eq!(deploy["spec"]["replicas"], 5);
    assert_eq!(
        deploy["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.2.3"
    );
    let site = &object(&on_berlin, "ConfigMap")["data"];
    assert_eq!(site["cluster"], "berlin");
    assert_eq!(site["env"], "prod");
    assert_eq!(site["tier"], "gold");
    assert_eq!(site["kube"], "v1.30.0");
    assert_eq!(site["greeting"], "from-more");
    assert_eq!(site["release-namespace"], "web");
    let berlin_token = site["token"].as_str().unwrap().to_owned();
    assert_eq!(berlin_token.len(), 16);

    // lisbon: no gold file, Helm's default version; lab: its own env.
    let on_lisbon = manifests(&hub, "web", Some("lisbon"));
    assert_eq!(object(&on_lisbon, "Deployment")["spec"]["replicas"], 3);
    let lisbon_site = &object(&on_lisbon, "ConfigMap")["data"];
    assert_eq!(lisbon_site["cluster"], "lisbon");
    assert_eq!(lisbon_site["tier"], "standard");
    assert_eq!(lisbon_site["kube"], "v1.36.0");
    assert_ne!(lisbon_site["token"], berlin_token.as_str());
    let on_lab = manifests(&hub, "web", Some("lab"));
    assert_eq!(object(&on_lab, "ConfigMap")["data"]["env"], "staging");

    // The clusters' bundles differ, so the cluster must be named.
    let out = hub.cli(&["app", "manifests", "web"]);
    assert!(!out.success());
    assert!(
        out.stderr.contains("choose one with --cluster"),
        "{}",
        out.stderr
    );

    // The chart that reads nothing of clusters: one render, one bundle,
    // printed without naming a cluster, in YAML by default.
    assert_eq!(
        renders(&mut hub, "plain"),
        1,
        "hub log:\n{}",
        hub.process.stderr_text()
    );
    let yaml = hub.cli_ok(&["app", "manifests", "plain"]);
    assert!(yaml.contains("kind: ConfigMap"), "{yaml}");
    assert!(yaml.contains("color"), "{yaml}");
    assert!(!yaml.contains("switchyard"), "{yaml}");

    // The agent applied what `app manifests` printed for berlin.
    assert!(
        wait_until(SOON, || fake
            .object("configmaps", Some("web"), "shop-site")
            .is_some()),
        "berlin never applied the chart; agent log:\n{}",
        berlin.process().stderr_text()
    );
    let applied = fake.object("configmaps", Some("web"), "shop-site").unwrap();
    assert_eq!(applied["data"]["token"], berlin_token.as_str());

    // A restarted hub renders again from scratch: byte-identical bundles,
    // so no cluster's assignment changes.
    let generations = |hub: &TestHub| -> Vec<Value> {
        ["berlin", "lisbon", "lab"]
            .iter()
            .map(|c| hub.cluster(c)["generation"].clone())
            .collect()
    };
    let before = generations(&hub);
    hub.kill9_and_restart();
    assert!(
        wait_until(SOON, || renders(&mut hub, "web") >= 3),
        "the restarted hub never rendered web again:\n{}",
        hub.process.stderr_text()
    );
    assert!(
        !wait_until(Duration::from_secs(3), || hub
            .process
            .stderr_text()
            .contains("planning pass changed assignments")),
        "a re-render changed an assignment:\n{}",
        hub.process.stderr_text()
    );
    assert_eq!(generations(&hub), before);
    assert_eq!(manifests(&hub, "web", Some("berlin")), on_berlin);
}

#[test]
fn a_broken_template_names_its_file_and_line_in_app_show_status_and_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("served");
    let source = chart_repo();
    let good = source.commit("charts");
    source.publish(&served, "fleet");
    let daemon = GitDaemon::start(&served);
    let hub = TestHub::start(dir.path(), &[]);
    hub.cli_ok(&[
        "repo",
        "add",
        "fleet",
        &daemon.url("fleet.git"),
        "--interval",
        "1s",
    ]);
    assert!(
        hub.repo_reaches("fleet", &good),
        "first fetch never happened"
    );
    hub.add_cluster("c1", &["env=prod"]);
    hub.cli_ok(&[
        "app",
        "create",
        "plain",
        "--repo",
        "fleet",
        "--path",
        "charts/plain",
        "--renderer",
        "helm",
    ]);
    assert!(
        wait_until(SOON, || assigned(&hub, "plain") == 1),
        "never assigned"
    );

    source.write("charts/plain/templates/broken.yaml", BROKEN);
    let bad = source.commit("a template that dereferences a missing value");
    source.publish(&served, "fleet");
    let error = || {
        hub.cli_json(&["app", "show", "plain"])["errors"]["*"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        wait_until(SOON, || error().contains(&bad[..7])),
        "no render error: {}",
        hub.cli_json(&["app", "show", "plain"])
    );
    let error = error();
    // Helm's own wording: the template's path inside the chart, line 7.
    assert!(
        error.contains("template: plain/templates/broken.yaml:7:"),
        "{error}"
    );
    assert!(
        error.contains("nil pointer evaluating interface {}.deeper"),
        "{error}"
    );

    // `status` (and its API) shows it on the cluster that kept the last
    // good bundle.
    let status = hub.cli_json(&["status", "plain"]);
    let row = &status[0];
    assert_eq!(row["cluster"], "c1");
    assert_eq!(row["desired_commit"], good.as_str());
    assert!(
        row["error"]
            .as_str()
            .unwrap_or_default()
            .contains("plain/templates/broken.yaml:7:"),
        "{status}"
    );
    let table = hub.cli_ok(&["status", "plain"]);
    assert!(table.contains("broken.yaml:7"), "{table}");
    let shown = hub.cli_ok(&["app", "show", "plain"]);
    assert!(shown.contains("plain/templates/broken.yaml:7:"), "{shown}");
}

const APP: &str = "apiVersion: switchyard.dev/v1
kind: App
metadata:
  name: web
spec:
  repo: fleet
  path: charts/web
  renderer: helm
  namespace: web
  helm:
    releaseName: shop
    valuesFiles: [values-prod.yaml]
    values:
      greeting: inline
    set: [image.tag=2.0.0]
    valuesFor:
      - selector: env=prod
        file: values-gold.yaml
";

#[test]
fn apply_and_export_carry_the_helm_block() {
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("served");
    let source = chart_repo();
    let head = source.commit("charts");
    source.publish(&served, "fleet");
    let daemon = GitDaemon::start(&served);
    let hub = TestHub::start(dir.path(), &[]);
    hub.cli_ok(&[
        "repo",
        "add",
        "fleet",
        &daemon.url("fleet.git"),
        "--interval",
        "1s",
    ]);
    assert!(
        hub.repo_reaches("fleet", &head),
        "first fetch never happened"
    );
    hub.add_cluster("c1", &["env=prod"]);

    // A helm block on another renderer is refused, with its line.
    let wrong = dir.path().join("wrong.yaml");
    std::fs::write(&wrong, APP.replace("renderer: helm", "renderer: directory")).unwrap();
    let out = hub.cli(&["apply", "-f", wrong.to_str().unwrap()]);
    assert!(!out.success());
    assert!(
        out.stderr.contains("spec.helm: helm settings"),
        "{}",
        out.stderr
    );

    let file = dir.path().join("app.yaml");
    std::fs::write(&file, APP).unwrap();
    hub.cli_ok(&["apply", "-f", file.to_str().unwrap()]);
    assert!(
        wait_until(SOON, || assigned(&hub, "web") == 1),
        "never assigned"
    );
    let objects = manifests(&hub, "web", Some("c1"));
    let deploy = object(&objects, "Deployment");
    assert_eq!(deploy["metadata"]["name"], "shop-web");
    assert_eq!(deploy["spec"]["replicas"], 5);
    assert_eq!(
        deploy["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:2.0.0"
    );
    let site = &object(&objects, "ConfigMap")["data"];
    assert_eq!(site["greeting"], "inline");
    assert_eq!(site["tier"], "gold");

    // Export gives the block back, and applying the export changes nothing.
    let exported = hub.cli_ok(&["export", "app"]);
    for line in [
        "  helm:",
        "    releaseName: shop",
        "    - values-prod.yaml",
        "      greeting: inline",
        "    - image.tag=2.0.0",
        "    - selector: env=prod",
    ] {
        assert!(exported.contains(line), "{line:?} not in:\n{exported}");
    }
    let again = dir.path().join("exported.yaml");
    std::fs::write(&again, &exported).unwrap();
    let out = hub.cli_ok(&["apply", "-f", again.to_str().unwrap()]);
    assert!(out.contains("app/web unchanged"), "{out}");
}

/// Render once, share the bundle, on a fleet of 1,000 clusters (by hand,
/// for BENCHMARKS.md, "Helm: one render shared by a fleet"):
/// `SWITCHYARD_HELM_SHARE_CLUSTERS=1000 cargo nextest run --workspace
/// -E 'test(renders_are_shared_across_a_fleet)' --run-ignored only --no-capture`.
/// Three apps over the same clusters (one in ten labelled tier=gold): a
/// chart that reads nothing of clusters (one render), the same chart with a
/// values file for the gold clusters (two renders), and a chart that reads
/// each cluster's name (one render per cluster). Prints, per app, the
/// renders the hub's log records and the time from `app create` until
/// every cluster is assigned the bundle.
#[test]
#[ignore = "registers 1,000 clusters; run by hand for BENCHMARKS.md"]
fn renders_are_shared_across_a_fleet() {
    let clusters: usize = std::env::var("SWITCHYARD_HELM_SHARE_CLUSTERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("served");
    let source = chart_repo();
    source.write("charts/plain/values-gold.yaml", "color: gold\n");
    let head = source.commit("charts");
    source.publish(&served, "fleet");
    let daemon = GitDaemon::start(&served);
    let mut hub = TestHub::start(dir.path(), &[]);
    hub.cli_ok(&["repo", "add", "fleet", &daemon.url("fleet.git")]);
    assert!(
        hub.repo_reaches("fleet", &head),
        "first fetch never happened"
    );
    let started = std::time::Instant::now();
    for i in 0..clusters {
        let tier = if i % 10 == 0 {
            "tier=gold"
        } else {
            "tier=standard"
        };
        hub.add_cluster(&format!("edge-{i:04}"), &["env=prod", tier]);
    }
    println!(
        "registered {clusters} clusters in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let cases: [(&str, &str, &[&str], usize); 3] = [
        ("shared", "charts/plain", &[], 1),
        (
            "tiered",
            "charts/plain",
            &["--values-for", "tier=gold=values-gold.yaml"],
            2,
        ),
        ("named", "charts/web", &[], clusters),
    ];
    let mut counted = Vec::new();
    for (app, path, extra, expected) in cases {
        let mut args = vec![
            "app",
            "create",
            app,
            "--repo",
            "fleet",
            "--path",
            path,
            "--renderer",
            "helm",
            "--namespace",
            "web",
        ];
        args.extend_from_slice(extra);
        let started = std::time::Instant::now();
        hub.cli_ok(&args);
        let all = wait_until(Duration::from_secs(600), || {
            assigned(&hub, app) == clusters as u64
        });
        let took = started.elapsed();
        assert!(
            all,
            "{app} never reached every cluster: {}",
            hub.cli_json(&["app", "show", app])
        );
        let rendered = renders(&mut hub, app);
        println!(
            "{app:8} {clusters} clusters: {rendered} render(s), every cluster assigned after {:.2}s",
            took.as_secs_f64()
        );
        counted.push((app, rendered, expected));
    }
    // The two bundles of `tiered` differ where the gold values say so.
    let gold = manifests(&hub, "tiered", Some("edge-0000"));
    let standard = manifests(&hub, "tiered", Some("edge-0001"));
    assert!(
        object(&gold, "ConfigMap")["data"]["values"]
            .as_str()
            .unwrap()
            .contains("gold")
    );
    assert!(
        object(&standard, "ConfigMap")["data"]["values"]
            .as_str()
            .unwrap()
            .contains("blue")
    );
    // The hub's log, to look into a count that is off.
    if let Ok(path) = std::env::var("SWITCHYARD_HELM_SHARE_LOG") {
        std::fs::write(path, hub.process.stderr_text()).unwrap();
    }
    // Every number printed first; then each must be what sharing promises.
    for (app, rendered, expected) in counted {
        assert_eq!(rendered, expected, "renders of {app}");
    }
}
