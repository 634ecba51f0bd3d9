//! Render time of a large chart: Switchyard's Helm engine against real Helm
//! (v4.2.3 through PyPI's helm-python-sdk) on the same chart in the same run.
//!
//! The chart is generated: an umbrella chart with `TEMPLATES` templates
//! (Deployments, Services and ConfigMaps written the way `helm create` and
//! popular charts write them: helpers through `include | nindent`, `toYaml`,
//! `range` over values, `tpl` of a value, `if`/`with`) and three subcharts
//! with `SUB_TEMPLATES` templates each, reading globals. Both engines render
//! the chart already in memory (Switchyard from its file map, Helm from a
//! loaded chart), so neither pays for disk reads; both parse every template on
//! every render, as `helm template` does. Before timing, the two outputs are
//! compared object by object (YAML parsed, canonical form): a benchmark of
//! two engines that disagree would measure nothing.
//!
//! `SWITCHYARD_HELM_ORACLE=target/test-env/venv/bin/python cargo bench -p switchyard-helm --bench large_chart`
//! (`./test --install-only` makes that venv). Without the oracle it times
//! Switchyard alone and says so.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use switchyard_helm::helm::manifests::split_documents;
use switchyard_helm::{RenderOptions, render_files};

const TEMPLATES: usize = 300;
const SUB_TEMPLATES: usize = 30;
const SUBCHARTS: [&str; 3] = ["cache", "queue", "metrics"];
const ROUNDS: usize = 15;

const HELPERS: &str = r#"{{- define "big.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- define "big.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}
{{- define "big.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- define "big.selectorLabels" -}}
app.kubernetes.io/name: {{ include "big.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}
{{- define "big.labels" -}}
helm.sh/chart: {{ include "big.chart" . }}
{{ include "big.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}
"#;

const DEPLOYMENT: &str = r#"{{- if .Values.components.cINDEX.enabled }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "big.fullname" . }}-cINDEX
  labels:
    {{- include "big.labels" . | nindent 4 }}
    component: cINDEX
spec:
  replicas: {{ .Values.components.cINDEX.replicas | default 1 }}
  selector:
    matchLabels:
      {{- include "big.selectorLabels" . | nindent 6 }}
      component: cINDEX
  template:
    metadata:
      annotations:
        checksum/config: {{ printf "%s-%d" .Release.Name INDEX | sha256sum | trunc 16 }}
      labels:
        {{- include "big.selectorLabels" . | nindent 8 }}
        component: cINDEX
    spec:
      containers:
        - name: main
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
          args:
          {{- range $i, $a := .Values.components.cINDEX.args }}
            - {{ $a | quote }}
          {{- end }}
          env:
          {{- range $k, $v := .Values.env }}
            - name: {{ $k | upper }}
              value: {{ tpl (toString $v) $ | quote }}
          {{- end }}
          resources:
            {{- toYaml .Values.resources | nindent 12 }}
{{- end }}
"#;

const SERVICE: &str = r#"apiVersion: v1
kind: Service
metadata:
  name: {{ include "big.fullname" . }}-cINDEX
  labels:
    {{- include "big.labels" . | nindent 4 }}
spec:
  type: {{ .Values.service.type }}
  ports:
  {{- range .Values.service.ports }}
    - name: {{ .name }}
      port: {{ .port }}
      targetPort: {{ .target | default .port }}
  {{- end }}
  selector:
    {{- include "big.selectorLabels" . | nindent 4 }}
    component: cINDEX
"#;

const CONFIGMAP: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "big.fullname" . }}-cINDEX
  labels:
    {{- include "big.labels" . | nindent 4 }}
data:
  {{- with .Values.config }}
  settings.yaml: |
    {{- toYaml . | nindent 4 }}
  {{- end }}
  index: {{ INDEX | quote }}
  {{- if semverCompare ">=1.20-0" .Capabilities.KubeVersion.Version }}
  modern: "true"
  {{- end }}
"#;

const SUB_TEMPLATE: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-SUB-INDEX
  labels:
    region: {{ .Values.global.region | quote }}
    team: {{ .Values.team | default "platform" }}
data:
  {{- range $k, $v := .Values.settings }}
  {{ $k }}: {{ $v | toString | quote }}
  {{- end }}
  global: {{ .Values.global.domain | printf "%s.%s" "SUB" }}
"#;

fn generate() -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut put = |path: String, text: String| {
        files.insert(path, text.into_bytes());
    };
    put(
        "Chart.yaml".into(),
        "apiVersion: v2\nname: big\nversion: 1.2.3\nappVersion: \"4.5.6\"\n".into(),
    );
    let mut values = String::from(
        "image: {repository: registry.example.com/big, tag: \"\"}\n\
         service:\n  type: ClusterIP\n  ports:\n  - {name: http, port: 80, target: 8080}\n  - {name: metrics, port: 9090}\n\
         resources: {limits: {cpu: 500m, memory: 256Mi}, requests: {cpu: 100m, memory: 128Mi}}\n\
         env: {LOG_LEVEL: info, RELEASE: \"{{ .Release.Name }}\", REGION: eu-1}\n\
         commonLabels: {team: shop, tier: backend}\n\
         config: {retries: 3, endpoints: [a, b, c], nested: {x: 1, y: [1, 2]}}\n\
         global: {region: eu-central, domain: example.com}\n\
         components:\n",
    );
    for i in 0..TEMPLATES / 3 {
        let _ = writeln!(
            values,
            "  c{i}: {{enabled: {}, replicas: {}, args: [--port=8080, --id={i}]}}",
            i % 7 != 0,
            1 + i % 3
        );
    }
    for sub in SUBCHARTS {
        let _ = writeln!(
            values,
            "{sub}:\n  team: {sub}-team\n  settings: {{a: 1, b: two, c: true}}"
        );
    }
    put("values.yaml".into(), values);
    put("templates/_helpers.tpl".into(), HELPERS.into());
    for i in 0..TEMPLATES / 3 {
        let index = i.to_string();
        put(
            format!("templates/deployment-{i}.yaml"),
            DEPLOYMENT.replace("INDEX", &index),
        );
        put(
            format!("templates/service-{i}.yaml"),
            SERVICE.replace("INDEX", &index),
        );
        put(
            format!("templates/configmap-{i}.yaml"),
            CONFIGMAP.replace("INDEX", &index),
        );
    }
    for sub in SUBCHARTS {
        put(
            format!("charts/{sub}/Chart.yaml"),
            format!("apiVersion: v2\nname: {sub}\nversion: 0.1.0\n"),
        );
        put(
            format!("charts/{sub}/values.yaml"),
            "team: default\nsettings: {}\n".into(),
        );
        for i in 0..SUB_TEMPLATES {
            put(
                format!("charts/{sub}/templates/cm-{i}.yaml"),
                SUB_TEMPLATE
                    .replace("SUB", sub)
                    .replace("INDEX", &i.to_string()),
            );
        }
    }
    files
}

fn write_chart(dir: &Path, files: &BTreeMap<String, Vec<u8>>) {
    for (path, bytes) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().expect("a file has a parent")).expect("mkdir");
        std::fs::write(path, bytes).expect("write chart file");
    }
}

/// Every object of a render, canonical, sorted: what both engines must agree on.
fn objects(rendered: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    for text in rendered.values() {
        for doc in split_documents(text) {
            let v = switchyard_helm::yaml::parse(&doc).expect("rendered YAML parses");
            if !v.is_nil() {
                out.push(switchyard_helm::yaml::to_canonical_json(&v).to_string());
            }
        }
    }
    out.sort();
    out
}

const ORACLE: &str = r#"
import json, sys, time
from helm_python import Chart
chart = Chart.load(sys.argv[1])
rounds = int(sys.argv[2])
times = []
out = None
for _ in range(rounds + 1):
    t = time.perf_counter()
    out = chart.render(values={}, name="rel", namespace="default")
    times.append(time.perf_counter() - t)
json.dump({"times": times[1:], "last": out}, open(sys.argv[3], "w"))
"#;

fn oracle_python() -> Option<PathBuf> {
    let p = PathBuf::from(std::env::var_os("SWITCHYARD_HELM_ORACLE")?);
    p.exists().then_some(p)
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this once, quickly.
    let quick = !std::env::args().any(|a| a == "--bench");
    let rounds = if quick { 1 } else { ROUNDS };
    let files = generate();
    let templates = files.keys().filter(|k| k.contains("templates/")).count();
    let options = RenderOptions {
        release_name: "rel".into(),
        ..Default::default()
    };
    let ours = render_files(&files, &options).expect("Switchyard renders the chart");
    let mut our_times = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        let rendered = render_files(&files, &options).expect("render");
        our_times.push(started.elapsed());
        assert_eq!(rendered.len(), ours.len());
    }
    let our_median = median(our_times);
    println!(
        "chart: {templates} template files ({} rendered), {} objects",
        ours.len(),
        objects(&ours).len()
    );
    println!("switchyard: median {our_median:?} over {rounds} renders");

    let Some(python) = oracle_python() else {
        println!("helm: skipped (set SWITCHYARD_HELM_ORACLE to a python with helm-python-sdk)");
        return;
    };
    let dir = tempfile_dir();
    write_chart(&dir.join("big"), &files);
    let script = dir.join("oracle.py");
    std::fs::write(&script, ORACLE).expect("write oracle script");
    let result = dir.join("result.json");
    let status = Command::new(&python)
        .arg(&script)
        .arg(dir.join("big"))
        .arg(rounds.to_string())
        .arg(&result)
        .status()
        .expect("run the Helm oracle");
    assert!(status.success(), "the Helm oracle failed");
    let answer: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&result).expect("oracle result")).expect("json");
    let theirs: BTreeMap<String, String> = answer["last"]
        .as_object()
        .expect("Helm's render is a map of files")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
        .collect();
    assert_eq!(
        objects(&ours),
        objects(&theirs),
        "Switchyard and Helm render the chart differently"
    );
    let helm_times: Vec<Duration> = answer["times"]
        .as_array()
        .expect("times")
        .iter()
        .map(|t| Duration::from_secs_f64(t.as_f64().expect("seconds")))
        .collect();
    let helm_median = median(helm_times);
    println!("helm v4 (helm-python-sdk): median {helm_median:?} over {rounds} renders");
    println!(
        "switchyard / helm: {:.2}",
        our_median.as_secs_f64() / helm_median.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A fresh directory under the system's temp dir (no tempfile dependency in this crate).
fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("switchyard-helm-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
