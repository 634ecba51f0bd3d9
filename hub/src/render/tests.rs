//! Tests of the renderers and of substitution, on small trees built in code.

use super::*;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

fn file(path: &str, data: &str) -> TreeFile {
    TreeFile {
        path: path.to_owned(),
        data: data.as_bytes().to_vec(),
        executable: false,
    }
}

fn opts() -> RenderOptions {
    RenderOptions::default()
}

fn dir(files: &[TreeFile]) -> Result<Vec<Value>, RenderError> {
    render(&RendererKind::Directory, files, &opts())
}

fn err(r: Result<Vec<Value>, RenderError>) -> String {
    match r {
        Ok(v) => panic!("expected an error, rendered {v:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn directory_reads_yaml_and_json_recursively() {
    let files = [
        file(
            "b/svc.yml",
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n",
        ),
        file(
            "a.yaml",
            "---\n# only a comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: one\n---\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: two\n",
        ),
        file(
            "c/d/x.json",
            r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"}}"#,
        ),
        file("README.md", "not yaml: [\n"),
        file(".yaml", "ignored: true\n"),
    ];
    let objects = dir(&files).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = objects
        .iter()
        .filter_map(|o| o["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names, ["one", "two", "web", "s"]);
}

#[test]
fn yaml_like_kubectl_octal_and_booleans() {
    let files = [file(
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: m\nmode: 0644\nquoted: \"0644\"\nflag: yes\nplain: 0.5\n",
    )];
    let o = &dir(&files).unwrap_or_else(|e| panic!("{e}"))[0];
    assert_eq!(o["mode"], json!(420));
    assert_eq!(o["quoted"], json!("0644"));
    assert_eq!(o["flag"], json!(true));
    assert_eq!(o["plain"], json!(0.5));
}

#[test]
fn yaml_errors_carry_file_line_and_column() {
    let files = [file(
        "apps/web/deploy.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: m\ndata:\n  a: [1, 2\n",
    )];
    let message = err(dir(&files));
    assert!(message.starts_with("apps/web/deploy.yaml:"), "{message}");
    let mut parts = message.splitn(4, ':');
    let (_, line, column) = (parts.next(), parts.next(), parts.next());
    assert!(
        line.is_some_and(|l| l.parse::<u64>().is_ok_and(|l| l >= 6)),
        "{message}"
    );
    assert!(
        column.is_some_and(|c| c.parse::<u64>().is_ok()),
        "{message}"
    );

    let dup = [file(
        "d.yaml",
        "apiVersion: v1\nkind: A\nkind: B\nmetadata: {name: x}\n",
    )];
    assert!(
        err(dir(&dup)).starts_with("d.yaml:3:"),
        "{}",
        err(dir(&dup))
    );
}

#[test]
fn objects_need_api_version_kind_and_name() {
    let cases = [
        (
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n",
            "missing metadata.name",
        ),
        (
            "kind: ConfigMap\nmetadata: {name: a}\n",
            "missing apiVersion",
        ),
        ("apiVersion: v1\nmetadata: {name: a}\n", "missing kind"),
        (
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: 5}\n",
            "metadata.name must be a string",
        ),
        ("- a\n- b\n", "expected a mapping, found a sequence"),
        ("just text\n", "expected a mapping, found a string"),
        (
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [a.yaml]\n",
            "use the kustomize renderer",
        ),
    ];
    for (text, needle) in cases {
        let files = [
            file(
                "ok.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n",
            ),
            file(
                "x/bad.yaml",
                &format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: first}}\n---\n{text}"),
            ),
        ];
        let message = err(dir(&files));
        assert!(
            // Line 5: where the second document's content starts.
            message.starts_with("x/bad.yaml:5: document 2: "),
            "{message}"
        );
        assert!(message.contains(needle), "{message}");
    }
}

#[test]
fn generate_name_is_accepted_on_hooks_only() {
    let hooks = [file(
        "hooks.yaml",
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  generateName: migrate-\n  annotations: {argocd.argoproj.io/hook: PreSync}\n---\napiVersion: batch/v1\nkind: Job\nmetadata:\n  generateName: migrate-\n  annotations: {helm.sh/hook: post-install}\n",
    )];
    let objects = dir(&hooks).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(objects.len(), 2);
    assert_eq!(objects[0]["metadata"]["generateName"], "migrate-");
    let plain = [file(
        "job.yaml",
        "apiVersion: batch/v1\nkind: Job\nmetadata: {generateName: migrate-}\n",
    )];
    let message = err(dir(&plain));
    assert!(
        message.contains("generateName without metadata.name is allowed only on hooks"),
        "{message}"
    );
}

#[test]
fn list_kinds_are_flattened() {
    let files = [file(
        "list.yaml",
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a}\n- apiVersion: v1\n  kind: ConfigMapList\n  items:\n  - apiVersion: v1\n    kind: ConfigMap\n    metadata: {name: b}\n",
    )];
    let objects = dir(&files).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(objects.len(), 2);
    assert_eq!(objects[1]["metadata"]["name"], "b");
    let bad = [file(
        "l.yaml",
        "apiVersion: v1\nkind: List\nitems:\n- {kind: X}\n",
    )];
    let message = err(dir(&bad));
    assert!(
        message.contains("document 1: item 0: missing apiVersion"),
        "{message}"
    );
}

#[test]
fn big_files_fit_the_raised_budgets() {
    let mut text = String::new();
    for i in 0..3000 {
        text.push_str(&format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{i}\ndata:\n  k: v\n"
        ));
    }
    let objects = dir(&[file("many.yaml", &text)]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(objects.len(), 3000);
}

#[test]
fn rendered_size_is_bounded() {
    let files = [file(
        "cm.yaml",
        &format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: a}}\ndata: {{k: {}}}\n",
            "x".repeat(2000)
        ),
    )];
    let mut options = opts();
    options.limits.max_rendered_bytes = 1000;
    let r = render(&RendererKind::Directory, &files, &options);
    assert!(
        matches!(r, Err(RenderError::TooLarge { limit: 1000 })),
        "{r:?}"
    );
}

#[test]
fn renderer_kind_names_and_serde() {
    for name in ["directory", "kustomize", "jsonnet", "plugin", "helm"] {
        let kind: RendererKind = name.parse().unwrap_or(RendererKind::Directory);
        assert_eq!(kind.to_string(), name);
    }
    assert!("helm3".parse::<RendererKind>().is_err());
    let kind = RendererKind::Plugin {
        command: "tool --flag".into(),
    };
    let text = serde_json::to_string(&kind).unwrap_or_default();
    assert_eq!(text, r#"{"type":"plugin","command":"tool --flag"}"#);
    assert_eq!(serde_json::from_str::<RendererKind>(&text).ok(), Some(kind));
    assert_eq!(
        serde_json::from_str::<RendererKind>(r#"{"type":"directory"}"#).ok(),
        Some(RendererKind::Directory)
    );
}

// ---- jsonnet ----

fn jsonnet(files: &[TreeFile]) -> Result<Vec<Value>, RenderError> {
    render(&RendererKind::Jsonnet, files, &opts())
}

#[test]
fn jsonnet_outputs_objects_arrays_and_objects_of_objects() {
    let cm =
        |n: &str| format!("{{apiVersion: 'v1', kind: 'ConfigMap', metadata: {{name: '{n}'}}}}");
    for (main, count) in [
        (cm("one"), 1),
        (format!("[{}, {}, null]", cm("a"), cm("b")), 2),
        (
            format!(
                "{{web: {{cm: {}, more: [{}]}}, db: {}}}",
                cm("a"),
                cm("b"),
                cm("c")
            ),
            3,
        ),
        (
            format!(
                "{{apiVersion: 'v1', kind: 'List', items: [{}, {}]}}",
                cm("a"),
                cm("b")
            ),
            2,
        ),
    ] {
        let objects =
            jsonnet(&[file("main.jsonnet", &main)]).unwrap_or_else(|e| panic!("{main}: {e}"));
        assert_eq!(objects.len(), count, "{main}");
    }
}

#[test]
fn jsonnet_imports_stay_inside_the_app() {
    let files = [
        file(
            "main.jsonnet",
            "local lib = import 'lib/util.libsonnet'; local k = import 'k.libsonnet'; [lib.cm('a'), k.cm('b'), {apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'c'}, data: {t: importstr 'data/t.txt'}}]",
        ),
        file(
            "lib/util.libsonnet",
            "local h = import 'helpers/h.libsonnet'; { cm(n):: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: h.prefix + n } } }",
        ),
        file("lib/helpers/h.libsonnet", "{ prefix: 'p-' }"),
        file(
            "vendor/k.libsonnet",
            "{ cm(n):: (import '../lib/util.libsonnet').cm(n) }",
        ),
        file("data/t.txt", "hello"),
    ];
    let objects = jsonnet(&files).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = objects
        .iter()
        .filter_map(|o| o["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names, ["p-a", "p-b", "c"]);
    assert_eq!(objects[2]["data"]["t"], "hello");

    for escape in ["/etc/passwd", "../outside.libsonnet", "lib/../../x.jsonnet"] {
        let files = [file("main.jsonnet", &format!("importstr '{escape}'"))];
        let message = err(jsonnet(&files));
        assert!(
            message.starts_with("main.jsonnet") && message.contains("can't resolve"),
            "{message}"
        );
    }
}

#[test]
fn jsonnet_errors_name_file_and_line() {
    let files = [
        file("main.jsonnet", "local l = import 'l.libsonnet';\n[l.f()]\n"),
        file("l.libsonnet", "{\n  f():: error 'boom',\n}\n"),
    ];
    let message = err(jsonnet(&files));
    assert!(message.starts_with("l.libsonnet:2:"), "{message}");
    assert!(message.contains("boom"), "{message}");

    let syntax = [file("main.jsonnet", "{\n  a: ,\n}\n")];
    let message = err(jsonnet(&syntax));
    assert!(message.starts_with("main.jsonnet:2:"), "{message}");

    let not_objects = [file("main.jsonnet", "{a: 1}")];
    let message = err(jsonnet(&not_objects));
    assert!(message.contains("output $.a"), "{message}");

    let no_entry = [file("params.libsonnet", "{}"), file("README.md", "x")];
    assert_eq!(
        err(jsonnet(&no_entry)),
        "the jsonnet renderer needs main.jsonnet or other *.jsonnet files at the app's path; none found"
    );
}

// ---- plugin ----

fn script(body: &str) -> (tempfile::TempDir, String) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("plugin.sh");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("{e}"));
    let command = path.to_string_lossy().into_owned();
    (dir, command)
}

fn plugin(
    command: &str,
    files: &[TreeFile],
    options: &RenderOptions,
) -> Result<Vec<Value>, RenderError> {
    render(
        &RendererKind::Plugin {
            command: command.to_owned(),
        },
        files,
        options,
    )
}

#[test]
fn plugin_runs_in_a_copy_of_the_app_with_a_clean_environment() {
    let (_keep, command) = script(
        "set -e\ntest \"$PWD\" = \"$SWITCHYARD_APP_PATH\"\ntest -z \"$SECRET_FROM_HUB\"\necho '[{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"'\"$1\"'\"}}]'\necho ---\ncat sub/obj.yaml",
    );
    let files = [file(
        "sub/obj.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n",
    )];
    let objects =
        plugin(&format!("{command}   from-arg"), &files, &opts()).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = objects
        .iter()
        .filter_map(|o| o["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names, ["from-arg", "s"]);
}

#[test]
fn plugin_failures_and_output_limits() {
    let (_a, failing) = script("echo 'went wrong' >&2\nexit 3");
    let message = err(plugin(&failing, &[], &opts()));
    assert!(
        message.contains("exit status: 3") && message.contains("went wrong"),
        "{message}"
    );

    // Timeouts are the worker's: tests/tests/render_limits.rs.
    let (_c, chatty) = script("yes 'x: y'");
    let mut options = opts();
    options.limits.max_rendered_bytes = 64 * 1024;
    let started = std::time::Instant::now();
    let r = plugin(&chatty, &[], &options);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        matches!(r, Err(RenderError::OutputLimit { limit: 65536, .. })),
        "{r:?}"
    );

    let (_d, bad_yaml) = script("printf 'apiVersion: v1\\nkind: [\\n'");
    let message = err(plugin(&bad_yaml, &[], &opts()));
    assert!(message.starts_with("plugin output:"), "{message}");

    assert!(matches!(
        plugin("  ", &[], &opts()),
        Err(RenderError::EmptyCommand)
    ));
    assert!(matches!(
        plugin("switchyard-no-such-program-xyz", &[], &opts()),
        Err(RenderError::ProgramNotFound(_))
    ));
    assert!(matches!(
        plugin("./relative.sh", &[], &opts()),
        Err(RenderError::ProgramNotFound(_))
    ));
}

#[test]
fn tree_paths_cannot_escape_the_temporary_directory() {
    let (_keep, command) = script("true");
    for path in ["../x.yaml", "/etc/x.yaml", "a/../../x"] {
        let r = plugin(&command, &[file(path, "")], &opts());
        assert!(
            matches!(r, Err(RenderError::InvalidPath(_))),
            "{path}: {r:?}"
        );
    }
}

// ---- kustomize ----

#[test]
fn kustomize_without_tools_says_what_is_needed() {
    let empty = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let r = kustomize::render_with_path(&[], &opts(), Some(empty.path().as_os_str()))
        .map(|objects| objects.into_iter().map(|o| o.value).collect());
    assert_eq!(
        err(r),
        "the kustomize renderer needs kubectl or kustomize on the hub's PATH"
    );
    assert!(matches!(
        kustomize::render_with_path(&[], &opts(), None),
        Err(RenderError::KustomizeMissing)
    ));
}

fn kustomize_tree() -> Vec<TreeFile> {
    vec![
        file(
            "kustomization.yaml",
            "namePrefix: dev-\ncommonLabels:\n  team: a\nresources:\n- base/cm.yaml\nconfigMapGenerator:\n- name: gen\n  literals: [k=v]\n",
        ),
        file(
            "base/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  mode: \"0644\"\n",
        ),
    ]
}

#[test]
fn kustomize_with_a_fake_binary_on_path() {
    use std::os::unix::fs::PermissionsExt;
    let bin = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let fake = bin.path().join("kustomize");
    // Prints its arguments' directory listing as a ConfigMap, so the test
    // sees both the `build DIR` call and the written tree.
    std::fs::write(
        &fake,
        "#!/bin/sh\nPATH=/usr/bin:/bin\ntest \"$1\" = build || exit 9\ncd \"$2\" || exit 8\necho 'apiVersion: v1'\necho 'kind: ConfigMap'\necho 'metadata: {name: fake}'\necho \"data: {files: '$(find . -type f | sort | tr '\\n' ' ')'}\"\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("{e}"));
    // Only the fake's directory is searched: kubectl, if installed, would
    // otherwise be chosen first.
    let only_fake = bin.path().as_os_str().to_owned();
    let objects = kustomize::render_with_path(&kustomize_tree(), &opts(), Some(&only_fake))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        objects[0].value["data"]["files"],
        "./base/cm.yaml ./kustomization.yaml "
    );
}

#[test]
fn kustomize_with_the_real_tool_when_present() {
    let path = std::env::var_os("PATH");
    let tool = process::find_program("kubectl", path.as_deref())
        .or_else(|| process::find_program("kustomize", path.as_deref()));
    if tool.is_none() {
        eprintln!("skipped: neither kubectl nor kustomize is on PATH");
        return;
    }
    let objects = render(&RendererKind::Kustomize, &kustomize_tree(), &opts())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut names: Vec<&str> = objects
        .iter()
        .filter_map(|o| o["metadata"]["name"].as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(names.len(), 2, "{objects:?}");
    assert_eq!(names[0], "dev-cm");
    assert!(names[1].starts_with("dev-gen-"), "{names:?}");
    assert!(
        objects
            .iter()
            .all(|o| o["metadata"]["labels"]["team"] == "a")
    );

    let broken = [file("kustomization.yaml", "resources:\n- missing.yaml\n")];
    let message = err(render(&RendererKind::Kustomize, &broken, &opts()));
    assert!(message.contains("missing.yaml"), "{message}");
}

// ---- substitution ----

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn substitution_replaces_values_not_keys() {
    let objects = vec![json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cm-${cluster.name}", "namespace": "ns"},
        "data": {
            "${cluster.name}": "key stays",
            "region": "${cluster.labels.switchyard.dev/region}",
            "both": "${cluster.name}/${cluster.labels.env}!",
            "list": ["${cluster.labels.env}", 5, null],
            "escaped": "$${cluster.name} and $${cluster.labels.x}",
            "shell": "echo ${HOME} $${HOME} $5",
        }
    })];
    assert!(needs_substitution(&objects));
    let out = substitute(
        &objects,
        "edge-1",
        &labels(&[("env", "prod"), ("switchyard.dev/region", "eu")]),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let d = &out[0]["data"];
    assert_eq!(out[0]["metadata"]["name"], "cm-edge-1");
    assert_eq!(d["${cluster.name}"], "key stays");
    assert_eq!(d["region"], "eu");
    assert_eq!(d["both"], "edge-1/prod!");
    assert_eq!(d["list"], json!(["prod", 5, null]));
    assert_eq!(d["escaped"], "${cluster.name} and ${cluster.labels.x}");
    assert_eq!(d["shell"], "echo ${HOME} $${HOME} $5");
}

#[test]
fn substitution_errors_name_variable_and_object() {
    let obj = |s: &str| {
        vec![
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "a"}, "spec": {"x": s}}),
        ]
    };
    let l = labels(&[]);
    assert_eq!(
        substitute(&obj("${cluster.region}"), "c", &l).map_err(|e| e.to_string()),
        Err("unknown variable ${cluster.region} in Deployment/a/web: use ${cluster.name} or ${cluster.labels.KEY} (write $${...} for a literal ${...})".to_owned())
    );
    assert_eq!(
        substitute(&obj("${cluster.labels.env}"), "c", &l),
        Err(SubstituteError::MissingLabel {
            label: "env".into(),
            object: "Deployment/a/web".into()
        })
    );
    assert!(matches!(
        substitute(&obj("x ${cluster.name"), "c", &l),
        Err(SubstituteError::Unterminated { .. })
    ));
    assert!(matches!(
        substitute(&obj("${cluster.labels.}"), "c", &l),
        Err(SubstituteError::UnknownVariable { .. })
    ));
}

#[test]
fn without_variables_substitution_is_the_identity() {
    let objects = vec![
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"s": "${HOME} $${x} ${cluster"}}),
    ];
    assert!(!needs_substitution(&objects));
    assert_eq!(substitute(&objects, "c", &labels(&[])), Ok(objects));
}

fn helm_render(files: &[TreeFile], input: HelmInput) -> Result<Vec<Value>, RenderError> {
    let options = RenderOptions {
        helm: Some(input),
        ..opts()
    };
    render(&RendererKind::Helm, files, &options)
}

fn web_chart() -> Vec<TreeFile> {
    vec![
        file("Chart.yaml", "apiVersion: v2\nname: web\nversion: 1.0.0\n"),
        file("values.yaml", "image:\n  tag: latest\nreplicas: 1\n"),
        file(
            "templates/deploy.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\n  namespace: {{ .Release.Namespace }}\n  annotations:\n    token: {{ randAlphaNum 12 | quote }}\nspec:\n  replicas: {{ .Values.replicas }}\n  template:\n    spec:\n      containers:\n        - name: web\n          image: \"nginx:{{ .Values.image.tag }}\"\n",
        ),
        file(
            "crds/thing.yaml",
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: things.example.com\n",
        ),
        file(
            "templates/NOTES.txt",
            "Thanks for installing {{ .Release.Name }}\n",
        ),
    ]
}

#[test]
fn helm_renders_values_in_order_then_set_with_crds_first() {
    let input = HelmInput {
        release_name: "web".into(),
        namespace: "prod".into(),
        values: vec![
            ValuesDocument {
                source: "values-prod.yaml".into(),
                text: "replicas: 3\nimage:\n  tag: \"1.0\"\n".into(),
            },
            ValuesDocument {
                source: "more.yaml".into(),
                text: "replicas: 5\n".into(),
            },
        ],
        set: vec!["image.tag=1.2.3".into()],
        app: "web".into(),
        ..HelmInput::default()
    };
    let objects = helm_render(&web_chart(), input).unwrap();
    assert_eq!(objects.len(), 2, "{objects:?}");
    assert_eq!(objects[0]["kind"], "CustomResourceDefinition");
    let deploy = &objects[1];
    assert_eq!(deploy["metadata"]["name"], "web");
    assert_eq!(deploy["metadata"]["namespace"], "prod");
    assert_eq!(deploy["spec"]["replicas"], 5);
    assert_eq!(
        deploy["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.2.3"
    );
}

fn cluster(name: &str, env: &str, kube: Option<&str>) -> ClusterFacts {
    ClusterFacts {
        name: name.into(),
        labels: BTreeMap::from([("env".to_owned(), env.to_owned())]),
        kube_version: kube.map(str::to_owned),
    }
}

#[test]
fn helm_random_functions_are_seeded_per_app_and_cluster() {
    let token = |app: &str, on: &str| {
        let input = HelmInput {
            release_name: "web".into(),
            namespace: "default".into(),
            app: app.into(),
            cluster: Some(cluster(on, "prod", None)),
            ..HelmInput::default()
        };
        let options = RenderOptions {
            helm: Some(input),
            ..opts()
        };
        let (objects, uses) =
            render_with_uses(&RendererKind::Helm, &web_chart(), &options).unwrap();
        let uses = uses.unwrap();
        assert!(
            uses.random && !uses.cluster_values && !uses.capabilities,
            "{uses:?}"
        );
        objects[1]["metadata"]["annotations"]["token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(token("a", "c1"), token("a", "c1"));
    assert_ne!(token("a", "c1"), token("b", "c1"));
    assert_ne!(token("a", "c1"), token("a", "c2"));
    assert_eq!(token("a", "c1").len(), 12);
}

fn cluster_chart() -> Vec<TreeFile> {
    vec![
        file("Chart.yaml", "apiVersion: v2\nname: site\nversion: 1.0.0\n"),
        file(
            "templates/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: site\ndata:\n  cluster: {{ .Values.global.switchyard.cluster.name }}\n  env: {{ .Values.global.switchyard.cluster.labels.env | default \"none\" }}\n  kube: {{ .Capabilities.KubeVersion.Version }}\n",
        ),
    ]
}

#[test]
fn helm_charts_see_the_cluster_only_where_they_name_it() {
    let run = |files: &[TreeFile], on: ClusterFacts| {
        let options = RenderOptions {
            helm: Some(HelmInput {
                release_name: "site".into(),
                namespace: "default".into(),
                app: "site".into(),
                cluster: Some(on),
                ..HelmInput::default()
            }),
            ..opts()
        };
        let (objects, uses) = render_with_uses(&RendererKind::Helm, files, &options).unwrap();
        (objects, uses.unwrap())
    };
    let (objects, uses) = run(&cluster_chart(), cluster("edge-1", "prod", Some("v1.31.4")));
    assert_eq!(
        objects[0]["data"],
        json!({"cluster": "edge-1", "env": "prod", "kube": "v1.31.4"})
    );
    assert!(
        uses.cluster_values && uses.capabilities && !uses.random,
        "{uses:?}"
    );
    let a = uses.cluster_key(&cluster("edge-1", "prod", Some("v1.31.4")));
    let b = uses.cluster_key(&cluster("edge-1", "dev", Some("v1.31.4")));
    let c = uses.cluster_key(&cluster("edge-1", "prod", Some("v1.30.0")));
    assert!(a != b && a != c && b != c, "{a} {b} {c}");
    // Without a reported version, Helm's default.
    let (objects, _) = run(&cluster_chart(), cluster("edge-1", "prod", None));
    assert_eq!(objects[0]["data"]["kube"], "v1.36.0");
    // A chart that names none of it renders alike everywhere: one key.
    let plain = [
        file(
            "Chart.yaml",
            "apiVersion: v2\nname: plain\nversion: 1.0.0\n",
        ),
        file(
            "templates/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: plain\ndata:\n  all: {{ toJson .Values | quote }}\n",
        ),
    ];
    let (objects, uses) = run(&plain, cluster("edge-1", "prod", Some("v1.31.4")));
    assert_eq!(uses, HelmUses::default());
    assert_eq!(objects[0]["data"]["all"], "{}");
    assert_eq!(
        uses.cluster_key(&cluster("a", "prod", None)),
        uses.cluster_key(&cluster("b", "dev", Some("v1.2.3")))
    );
}

#[test]
fn helm_errors_name_the_chart_file_and_line() {
    let mut files = web_chart();
    files.push(file(
        "templates/broken.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: {{ .Values.missing.deeper }}\n",
    ));
    let message = err(helm_render(&files, HelmInput::default()));
    assert!(
        message.contains("web/templates/broken.yaml:6:"),
        "{message}"
    );
    let message = err(helm_render(
        &web_chart(),
        HelmInput {
            values: vec![ValuesDocument {
                source: "bad.yaml".into(),
                text: "- a list\n".into(),
            }],
            ..HelmInput::default()
        },
    ));
    assert_eq!(message, "bad.yaml: values must be a mapping");
}

#[test]
fn two_files_defining_one_object_fail_the_render_naming_both() {
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n";
    let files = [
        file("a.yaml", cm),
        file(
            "b/more.yaml",
            &format!("apiVersion: v1\nkind: Secret\nmetadata:\n  name: settings\n---\n{cm}"),
        ),
    ];
    assert_eq!(
        err(dir(&files)),
        "ConfigMap settings is defined twice: at a.yaml:1 (document 1) and at \
         b/more.yaml:6 (document 2); an object may be defined once per app"
    );
    // Once, it renders; a Secret of the same name is another object.
    assert_eq!(dir(&files[1..]).map(|o| o.len()).ok(), Some(2));
}

#[test]
fn an_objects_default_namespace_makes_it_the_same_object() {
    let files = [
        file(
            "a.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: m\n",
        ),
        file(
            "b.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: m\n  namespace: shop\n",
        ),
    ];
    assert!(dir(&files).is_ok());
    let options = RenderOptions {
        default_namespace: Some("shop".into()),
        ..opts()
    };
    let e = render(&RendererKind::Directory, &files, &options).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("ConfigMap m in namespace shop is defined twice: at a.yaml:1"),
        "{e}"
    );
}

// ---- directory apps as Argo CD has them ----

/// argoproj/argocd-example-apps' jsonnet-guestbook: no main.jsonnet, a
/// `*.jsonnet` file importing `params.libsonnet`.
fn jsonnet_guestbook() -> Vec<TreeFile> {
    vec![
        file(
            "params.libsonnet",
            "{\n  containerPort: 80,\n  image: \"gcr.io/heptio-images/ks-guestbook-demo:0.2\",\n  name: \"jsonnet-guestbook-ui\",\n  replicas: 1,\n  servicePort: 80,\n  type: \"LoadBalancer\",\n}\n",
        ),
        file(
            "guestbook-ui.jsonnet",
            r#"local params = import 'params.libsonnet';

[
   {
      "apiVersion": "v1",
      "kind": "Service",
      "metadata": {
         "name": params.name
      },
      "spec": {
         "ports": [
            {
               "port": params.servicePort,
               "targetPort": params.containerPort
            }
         ],
         "selector": {
            "app": params.name
         },
         "type": params.type
      }
   },
   {
      "apiVersion": "apps/v1",
      "kind": "Deployment",
      "metadata": {
         "name": params.name
      },
      "spec": {
         "replicas": params.replicas,
         "revisionHistoryLimit": 3,
         "selector": {
            "matchLabels": {
               "app": params.name
            },
         },
         "template": {
            "metadata": {
               "labels": {
                  "app": params.name
               }
            },
            "spec": {
               "containers": [
                  {
                     "image": params.image,
                     "name": params.name,
                     "ports": [
                     {
                        "containerPort": params.containerPort
                     }
                     ]
                  }
               ]
            }
         }
      }
   }
]
"#,
        ),
    ]
}

fn names(objects: &[Value]) -> Vec<String> {
    objects
        .iter()
        .map(|o| {
            format!(
                "{}/{}",
                o["kind"].as_str().unwrap_or("?"),
                o["metadata"]["name"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

#[test]
fn a_jsonnet_app_without_main_renders_every_jsonnet_file_like_argo_cd() {
    for kind in [RendererKind::Jsonnet, RendererKind::Directory] {
        let objects =
            render(&kind, &jsonnet_guestbook(), &opts()).unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(
            names(&objects),
            [
                "Service/jsonnet-guestbook-ui",
                "Deployment/jsonnet-guestbook-ui"
            ],
            "{kind}"
        );
        assert_eq!(objects[1]["spec"]["replicas"], 1);
    }
}

fn cm_yaml(name: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n")
}

#[test]
fn directory_apps_mix_yaml_json_and_jsonnet_and_honour_selection() {
    let files = vec![
        file("a.yaml", &cm_yaml("a")),
        file(
            "b.json",
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"b"}}"#,
        ),
        file("c.jsonnet", "(import 'lib.libsonnet').cm('c')"),
        file(
            "lib.libsonnet",
            "{ cm(n):: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: n } } }",
        ),
        file("sub/d.yaml", &cm_yaml("d")),
        file("sub/d-test.yaml", &cm_yaml("d-test")),
    ];
    let with = |d: DirectorySettings| RenderOptions {
        directory: d,
        ..opts()
    };
    let all = render(&RendererKind::Directory, &files, &opts()).unwrap();
    assert_eq!(
        names(&all),
        [
            "ConfigMap/a",
            "ConfigMap/b",
            "ConfigMap/c",
            "ConfigMap/d-test",
            "ConfigMap/d"
        ]
    );
    let flat = with(DirectorySettings {
        recurse: Some(false),
        ..Default::default()
    });
    let top = render(&RendererKind::Directory, &files, &flat).unwrap();
    assert_eq!(names(&top), ["ConfigMap/a", "ConfigMap/b", "ConfigMap/c"]);
    let globs = with(DirectorySettings {
        include: vec!["*.yaml".into()],
        exclude: vec!["*-test.yaml".into()],
        ..Default::default()
    });
    let picked = render(&RendererKind::Directory, &files, &globs).unwrap();
    assert_eq!(names(&picked), ["ConfigMap/a", "ConfigMap/d"]);
}

#[test]
fn jsonnet_arguments_variables_and_library_paths_reach_every_file() {
    let files = vec![
        file(
            "app.jsonnet",
            "local k = import 'k8s.libsonnet';\nfunction(name, replicas=1) k.cm(name + '-' + std.extVar('env'), replicas)",
        ),
        file(
            "other.jsonnet",
            "function(name, replicas=1) { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'o-' + name }, data: { n: std.toString(replicas) } }",
        ),
    ];
    let options = RenderOptions {
        directory: DirectorySettings {
            jsonnet: JsonnetSettings {
                tlas: vec![
                    JsonnetArg::parse("name=web", false).unwrap(),
                    JsonnetArg::parse("replicas=1+2", true).unwrap(),
                ],
                ext_vars: vec![JsonnetArg::parse("env=prod", false).unwrap()],
                libs: vec!["/vendor/k".into()],
            },
            ..Default::default()
        },
        repo: RepoContext {
            app_path: "apps/web".into(),
            files: vec![file(
                "vendor/k/k8s.libsonnet",
                "{ cm(n, r):: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: n }, data: { n: std.toString(r) } } }",
            )],
        },
        ..opts()
    };
    let objects =
        render(&RendererKind::Directory, &files, &options).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(names(&objects), ["ConfigMap/web-prod", "ConfigMap/o-web"]);
    assert_eq!(objects[0]["data"]["n"], "3");
    // Without the library path the import is not found: the library is
    // reachable only through the setting.
    let mut without = options.clone();
    without.directory.jsonnet.libs.clear();
    let message = err(render(&RendererKind::Directory, &files, &without));
    assert!(message.contains("k8s.libsonnet"), "{message}");
    // A missing external variable is jsonnet's error, naming the file.
    let mut no_ext = options.clone();
    no_ext.directory.jsonnet.ext_vars.clear();
    let message = err(render(&RendererKind::Directory, &files, &no_ext));
    assert!(
        message.starts_with("app.jsonnet") && message.contains("env"),
        "{message}"
    );
}
