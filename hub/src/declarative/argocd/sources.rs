//! An Application's source as a Switchyard app: which renderer, the
//! directory and jsonnet settings, and the Helm block.

use super::*;

/// The renderer Argo CD would use for `source`, with its settings: the
/// source's own block if it has one, else what the checkout holds at
/// `path` (a chart, a kustomization), else a directory.
#[allow(clippy::type_complexity)]
pub(super) fn renderer_of(
    source: &Value,
    path: &str,
    checkout: Option<&dyn Checkout>,
    notes: &mut Vec<String>,
    shared: &mut Vec<String>,
) -> Result<(String, Option<HelmSpec>, Option<DirectorySettings>), String> {
    let block = |k: &str| source.get(k).filter(|v| !v.is_null());
    let in_dir = |file: &str| {
        if path == "." {
            file.to_owned()
        } else {
            format!("{path}/{file}")
        }
    };
    let detected = checkout.map(|c| {
        if c.has_file(&in_dir("Chart.yaml")) {
            "helm"
        } else if ["kustomization.yaml", "kustomization.yml", "Kustomization"]
            .iter()
            .any(|f| c.has_file(&in_dir(f)))
        {
            "kustomize"
        } else {
            "directory"
        }
    });
    if let Some(helm) = block("helm") {
        return Ok(("helm".into(), Some(helm_spec(helm, notes)?), None));
    }
    if let Some(k) = block("kustomize") {
        let fields: Vec<&String> = k
            .as_object()
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        if !fields.is_empty() {
            notes.push(format!(
                "kustomize overrides {fields:?} not translated: put them in the kustomization"
            ));
        }
        return Ok(("kustomize".into(), None, None));
    }
    if let Some(d) = block("directory") {
        return Ok(("directory".into(), None, Some(directory_settings(d)?)));
    }
    match detected {
        Some("helm") => Ok(("helm".into(), None, None)),
        Some("kustomize") => Ok(("kustomize".into(), None, None)),
        Some(_) => Ok(("directory".into(), None, Some(argo_directory_default()))),
        None => {
            shared.push("no helm, kustomize or directory block and no --checkout: rendered as a directory; pass --checkout DIR to detect charts and kustomizations as Argo CD does".into());
            Ok(("directory".into(), None, Some(argo_directory_default())))
        }
    }
}

/// Argo CD reads a directory source's top level only.
pub(super) fn argo_directory_default() -> DirectorySettings {
    DirectorySettings {
        recurse: Some(false),
        ..DirectorySettings::default()
    }
}

pub(super) fn directory_settings(d: &Value) -> Result<DirectorySettings, String> {
    let globs = |k: &str| -> Vec<String> {
        d[k].as_str()
            .filter(|g| !g.is_empty())
            .map(|g| vec![g.to_owned()])
            .unwrap_or_default()
    };
    let args = |k: &str| -> Vec<JsonnetArg> {
        d["jsonnet"][k]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| {
                Some(JsonnetArg {
                    name: a["name"].as_str()?.to_owned(),
                    value: a["value"].as_str().unwrap_or_default().to_owned(),
                    code: a["code"].as_bool().unwrap_or(false),
                })
            })
            .collect()
    };
    let settings = DirectorySettings {
        recurse: Some(d["recurse"].as_bool().unwrap_or(false)),
        include: globs("include"),
        exclude: globs("exclude"),
        jsonnet: JsonnetSettings {
            tlas: args("tlas"),
            ext_vars: args("extVars"),
            libs: d["jsonnet"]["libs"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|l| l.as_str().map(str::to_owned))
                .collect(),
        },
    };
    settings
        .validate()
        .map_err(|e| format!("spec.source.directory: {e}"))?;
    Ok(settings)
}

pub(super) fn helm_spec(helm: &Value, notes: &mut Vec<String>) -> Result<HelmSpec, String> {
    let mut spec = HelmSpec {
        release_name: helm["releaseName"].as_str().map(str::to_owned),
        values_files: helm["valueFiles"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        ..HelmSpec::default()
    };
    let mut values = match &helm["valuesObject"] {
        Value::Object(_) => Some(helm["valuesObject"].clone()),
        _ => None,
    };
    if let Some(text) = helm["values"].as_str().filter(|t| !t.trim().is_empty()) {
        let parsed: Value = serde_saphyr::from_str(text)
            .map_err(|e| format!("spec.source.helm.values is not YAML: {e}"))?;
        // Argo CD: valuesObject wins over values.
        let mut merged = parsed;
        if let Some(o) = &values {
            merge(&mut merged, o);
        }
        values = Some(merged);
    }
    spec.values = values.filter(|v| v.as_object().is_some_and(|m| !m.is_empty()));
    for p in helm["parameters"].as_array().into_iter().flatten() {
        let (Some(name), Some(value)) = (p["name"].as_str(), p["value"].as_str()) else {
            continue;
        };
        spec.set.push(format!("{name}={value}"));
    }
    for field in [
        "fileParameters",
        "skipCrds",
        "ignoreMissingValueFiles",
        "passCredentials",
        "version",
        "namespace",
        "kubeVersion",
        "apiVersions",
    ] {
        if helm.get(field).is_some_and(|v| !v.is_null()) {
            notes.push(format!("helm.{field} not translated"));
        }
    }
    Ok(spec)
}

/// An Application source that names a chart of a Helm repository: the
/// chart repository (`helm` for an http(s) index, `oci` for a registry),
/// the chart, its version range and the Helm block.
pub(super) struct ChartSource {
    pub(super) url: String,
    pub(super) repo_type: &'static str,
    pub(super) chart: String,
    /// `targetRevision`: a version or a range (Argo CD and Switchyard both
    /// read it with Helm's semver rules); `None` (empty, `*`): the latest
    /// stable version.
    pub(super) version: Option<String>,
    pub(super) helm: Option<HelmSpec>,
}

pub(super) fn chart_source(
    url: &str,
    chart: &str,
    source: &Value,
    notes: &mut Vec<String>,
) -> Result<ChartSource, String> {
    let (url, repo_type) = if url.starts_with("https://") || url.starts_with("http://") {
        (url.trim_end_matches('/').to_owned(), "helm")
    } else if url.starts_with("oci://") {
        (url.trim_end_matches('/').to_owned(), "oci")
    } else {
        // Argo CD writes OCI Helm repositories without a scheme (and marks
        // them `enableOCI` in the repository secret).
        notes.push(format!(
            "repoURL {url:?} has no scheme: read as the OCI registry oci://{url}"
        ));
        (format!("oci://{}", url.trim_end_matches('/')), "oci")
    };
    let version = source["targetRevision"]
        .as_str()
        .map(str::trim)
        .filter(|v| !v.is_empty() && *v != "*" && *v != "HEAD")
        .map(str::to_owned);
    let helm = match &source["helm"] {
        Value::Null => None,
        block => {
            let spec = helm_spec(block, notes)?;
            if !spec.values_files.is_empty() {
                return Err(format!(
                    "spec.source.helm.valueFiles {:?}: values files of a chart from a Helm repository are not supported (they would be read from a Git repo); put the values in helm.values",
                    spec.values_files
                ));
            }
            Some(spec)
        }
    };
    Ok(ChartSource {
        url,
        repo_type,
        chart: chart.to_owned(),
        version,
        helm,
    })
}
