//! The helm renderer: a chart rendered in-process by the `switchyard-helm` engine (in the render worker), CRDs first, then Helm's install order.

use super::yaml::{Sourced, parse_objects};
use super::{RenderError, RenderOptions};
use crate::tree::TreeFile;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use switchyard_helm::{Chart, Value as HelmValue};

/// Everything a Helm render needs besides the chart's files: what
/// `helm template` would be given on its command line, and the cluster
/// the render is for. Built by the planner, carried to the worker in the
/// request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HelmInput {
    pub release_name: String,
    pub namespace: String,
    /// Values documents in order, later ones winning, as `-f` gives them.
    pub values: Vec<ValuesDocument>,
    /// `--set` strings, applied after every values document.
    pub set: Vec<String>,
    /// The app's name: with the cluster's, it seeds the random functions.
    pub app: String,
    /// What `now` returns, in Unix seconds (the planner gives the commit's time).
    pub now_unix: i64,
    /// The cluster rendered for; only what the chart can reach of it is
    /// used (see [`HelmUses`]).
    pub cluster: Option<ClusterFacts>,
}

/// What a chart may learn about the cluster it is rendered for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ClusterFacts {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// As the agent reports it (`v1.30.2`); `None` gives Helm's default.
    pub kube_version: Option<String>,
}

/// One values document: where it came from (for messages) and its YAML.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ValuesDocument {
    pub source: String,
    pub text: String,
}

/// Which cluster-dependent inputs a chart can reach, judged from its text:
/// a chart none of whose files or values mentions `switchyard`,
/// `Capabilities` or a random function renders the same for every
/// cluster, so the hub renders it once. Templates cannot name a field or
/// function without writing it, so only text built at render time (for
/// `tpl`) escapes this; such a chart gets no cluster values and
/// app-wide random values, which is still deterministic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelmUses {
    /// `.Values.global.switchyard.cluster` is set.
    pub cluster_values: bool,
    /// `.Capabilities` follows the cluster's reported Kubernetes version.
    pub capabilities: bool,
    /// Random functions are seeded per cluster.
    pub random: bool,
}

/// Functions that draw from the seeded generator (a name here also covers
/// the names it starts: `randAlpha` covers `randAlphaNum`, `genCA` covers
/// `genCAWithKey`).
const RANDOM_FUNCTIONS: &[&str] = &[
    "randAlpha",
    "randNumeric",
    "randAscii",
    "randInt",
    "randBytes",
    "uuidv4",
    "shuffle",
    "bcrypt",
    "htpasswd",
    "encryptAES",
    "genPrivateKey",
    "genCA",
    "genSelfSignedCert",
    "genSignedCert",
];

impl HelmUses {
    fn of_text(&mut self, text: &[u8]) {
        let has = |needle: &str| text.windows(needle.len()).any(|w| w == needle.as_bytes());
        self.cluster_values |= has("switchyard");
        self.capabilities |= has("Capabilities");
        self.random |= RANDOM_FUNCTIONS.iter().any(|f| has(f));
    }

    fn of_chart(&mut self, chart: &Chart) {
        for (_, src) in &chart.templates {
            self.of_text(src.as_bytes());
        }
        for data in chart.files.values() {
            self.of_text(data);
        }
        self.of_text(
            switchyard_helm::yaml::to_canonical_json(&chart.values)
                .to_string()
                .as_bytes(),
        );
        for sub in &chart.subcharts {
            self.of_chart(sub);
        }
    }

    /// What a cluster's bundle depends on beyond the app's settings: two
    /// clusters with the same key get the same render.
    pub fn cluster_key(&self, cluster: &ClusterFacts) -> String {
        let mut key = String::new();
        if self.cluster_values || self.random {
            key.push_str(&format!("name={}", cluster.name));
        }
        if self.cluster_values {
            let labels = serde_json::to_string(&cluster.labels).unwrap_or_default();
            key.push_str(&format!(";labels={labels}"));
        }
        if self.capabilities {
            let version = cluster.kube_version.as_deref().unwrap_or("default");
            key.push_str(&format!(";kube={version}"));
        }
        key
    }
}

/// The values document Switchyard adds for a cluster:
/// `global.switchyard.cluster.{name,labels}`.
pub fn cluster_values(cluster: &ClusterFacts) -> ValuesDocument {
    let doc = serde_json::json!({
        "global": {"switchyard": {"cluster": {"name": cluster.name, "labels": cluster.labels}}}
    });
    ValuesDocument {
        source: "(cluster values)".into(),
        text: doc.to_string(),
    }
}

/// Seed of the random functions: the app, and the cluster when the chart
/// uses them (they are then per cluster, as the cluster's own values are).
fn seed(input: &HelmInput, uses: &HelmUses) -> Vec<u8> {
    let cluster = match (&input.cluster, uses.random) {
        (Some(c), true) => c.name.as_str(),
        _ => "",
    };
    format!("switchyard/{}/{cluster}", input.app).into_bytes()
}

/// Render the chart whose files (relative to the chart's directory) are
/// `files` with `input`; also says which cluster inputs the chart reached.
pub(super) fn render(
    files: &[TreeFile],
    input: Option<&HelmInput>,
    options: &RenderOptions,
) -> Result<(Vec<Sourced>, HelmUses), RenderError> {
    let default = HelmInput::default();
    let input = input.unwrap_or(&default);
    // A chart from a chart repository arrives as its archive, unpacked here
    // (in the worker) under Helm's size limits, followed by the dependencies
    // the hub fetched for it (`charts/NAME-VERSION.tgz`).
    let chart = match files {
        [archive, deps @ ..]
            if archive.path.ends_with(".tgz")
                && !archive.path.starts_with("charts/")
                && deps.iter().all(|d| d.path.starts_with("charts/")) =>
        {
            let extra: BTreeMap<String, Vec<u8>> = deps
                .iter()
                .map(|f| (f.path.clone(), f.data.clone()))
                .collect();
            Chart::load_archive_with(&archive.data, &extra).map_err(engine_error)?
        }
        _ => {
            let tree: BTreeMap<String, Vec<u8>> = files
                .iter()
                .map(|f| (f.path.clone(), f.data.clone()))
                .collect();
            Chart::load(&tree).map_err(engine_error)?
        }
    };
    let mut uses = HelmUses::default();
    uses.of_chart(&chart);
    for doc in &input.values {
        uses.of_text(doc.text.as_bytes());
    }
    for set in &input.set {
        uses.of_text(set.as_bytes());
    }
    let mut values = Vec::with_capacity(input.values.len() + 1);
    for doc in &input.values {
        values.push(parse_values(doc)?);
    }
    if let (Some(cluster), true) = (&input.cluster, uses.cluster_values) {
        values.push(parse_values(&cluster_values(cluster))?);
    }
    let mut engine_options = switchyard_helm::RenderOptions {
        release_name: input.release_name.clone(),
        namespace: input.namespace.clone(),
        values,
        set: input.set.clone(),
        seed: seed(input, &uses),
        now_unix: input.now_unix,
        ..Default::default()
    };
    if uses.capabilities
        && let Some(version) = input.cluster.as_ref().and_then(|c| c.kube_version.as_ref())
    {
        engine_options.kube_version = version.clone();
    }
    // The engine's own output bound; the JSON size is checked again by
    // `render` once the objects exist.
    engine_options.limits.max_output = usize::try_from(options.limits.max_rendered_bytes)
        .unwrap_or(usize::MAX)
        .min(engine_options.limits.max_output.max(1));
    let rendered = switchyard_helm::render(&chart, &engine_options).map_err(engine_error)?;
    let manifests = switchyard_helm::split_manifests(&rendered).map_err(engine_error)?;
    let mut objects = Vec::new();
    // CRDs are installed before anything that may use them, as `helm
    // install` does; they are not templates.
    for (path, data) in crds(&chart) {
        objects.extend(parse_objects(&path, &data, false)?);
    }
    for m in manifests {
        objects.extend(parse_objects(&m.path, m.text.as_bytes(), false)?);
    }
    Ok((objects, uses))
}

/// The CRD files of `chart` and its subcharts (`crds/*.yaml`, `.yml`,
/// `.json`), with the paths Helm names them by.
fn crds(chart: &Chart) -> Vec<(String, std::rc::Rc<[u8]>)> {
    let mut out = Vec::new();
    let manifest = |p: &str| [".yaml", ".yml", ".json"].iter().any(|e| p.ends_with(e));
    for (path, data) in chart.crds() {
        if manifest(&path) {
            out.push((format!("{}/{path}", chart.full_path), data));
        }
    }
    for sub in &chart.subcharts {
        out.extend(crds(sub));
    }
    out
}

fn parse_values(doc: &ValuesDocument) -> Result<HelmValue, RenderError> {
    let file_error = |message: String| RenderError::File {
        path: doc.source.clone(),
        message,
    };
    match switchyard_helm::yaml::parse(&doc.text) {
        Ok(v @ HelmValue::Map(_)) => Ok(v),
        Ok(HelmValue::Nil) => Ok(HelmValue::empty_map()),
        Ok(_) => Err(file_error("values must be a mapping".into())),
        Err(e) => Err(file_error(format!("not valid YAML: {e}"))),
    }
}

/// The engine's messages are Helm's own (`template: web/templates/x.yaml:3:7: …`,
/// `parse error at (web/templates/x.yaml:3): …`): they already name the file.
fn engine_error(e: switchyard_helm::Error) -> RenderError {
    RenderError::Helm(e.to_string())
}
