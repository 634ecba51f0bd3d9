//! The planner's Helm decisions, as pure functions: where values files are, which per-cluster files a cluster gets, and how that keys a render.

use crate::render::ClusterFacts;
use crate::store::{AppRecord, ClusterRecord, HelmSettings};
use switchyard_common::selector::Selector;

/// A values file's path from the repository's root: `file` relative to the
/// chart's directory `chart_dir`, where `..` climbs (never above the
/// root) and a leading `/` starts at the root.
pub(crate) fn values_path(chart_dir: &str, file: &str) -> Result<String, String> {
    let (base, rest) = match file.strip_prefix('/') {
        Some(rest) => ("", rest),
        None => (chart_dir, file),
    };
    if file.is_empty() || file.contains('\\') || file.contains('\0') {
        return Err(format!("values file {file:?}: not a valid path"));
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in base.split('/').chain(rest.split('/')) {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(format!(
                        "values file {file:?}: climbs above the repository's root"
                    ));
                }
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err(format!("values file {file:?}: not a file"));
    }
    Ok(parts.join("/"))
}

/// The `values_for` files whose selector matches `cluster`'s labels, in
/// the app's order, with their indices (which key the render).
pub(crate) fn values_for<'a>(
    settings: &'a HelmSettings,
    cluster: &ClusterRecord,
) -> Result<Vec<(usize, &'a str)>, String> {
    let mut out = Vec::new();
    for (i, entry) in settings.values_for.iter().enumerate() {
        let selector = Selector::parse(&entry.selector)
            .map_err(|e| format!("valuesFor selector {:?}: {e}", entry.selector))?;
        if selector.matches(&cluster.labels) {
            out.push((i, entry.file.as_str()));
        }
    }
    Ok(out)
}

/// What a chart may learn of `cluster`.
pub(crate) fn facts(cluster: &ClusterRecord) -> ClusterFacts {
    ClusterFacts {
        name: cluster.name.to_string(),
        labels: cluster.labels.clone(),
        kube_version: cluster.kubernetes_version.clone(),
    }
}

/// The part of a render's settings key that Helm's settings add: a
/// changed value, file list, release name or namespace renders again.
pub(crate) fn settings_key(app: &AppRecord) -> String {
    let settings = serde_json::to_string(&app.helm.clone().unwrap_or_default()).unwrap_or_default();
    format!(
        "|helm={settings}|namespace={}",
        app.namespace.as_deref().unwrap_or("")
    )
}

/// `.Release.Name`: the one set, else the app's name.
pub(crate) fn release_name(app: &AppRecord) -> String {
    app.helm
        .as_ref()
        .and_then(|h| h.release_name.clone())
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| app.name.clone())
}

/// Check an app's Helm settings (for create, update and `apply`).
pub fn validate(renderer: &str, path: &str, settings: Option<&HelmSettings>) -> Result<(), String> {
    let Some(settings) = settings else {
        return Ok(());
    };
    if renderer != "helm" {
        return Err(format!(
            "helm settings (values, set, release name) need the helm renderer, not {renderer}"
        ));
    }
    let dir = if path == "." { "" } else { path };
    for file in settings
        .values_files
        .iter()
        .chain(settings.values_for.iter().map(|v| &v.file))
    {
        values_path(dir, file)?;
    }
    for entry in &settings.values_for {
        Selector::parse(&entry.selector)
            .map_err(|e| format!("valuesFor selector {:?}: {e}", entry.selector))?;
    }
    if let Some(values) = &settings.values
        && !values.is_object()
    {
        return Err("inline values must be a mapping".into());
    }
    if let Some(release) = &settings.release_name
        && switchyard_common::ClusterName::new(release.clone()).is_err()
    {
        return Err(format!("release name {release:?} is not a DNS label"));
    }
    for set in &settings.set {
        if !set.contains('=') {
            return Err(format!("--set {set:?}: expected KEY=VALUE"));
        }
    }
    Ok(())
}

/// Parse `selector=file` (the selector may itself contain `=`: the file is
/// after the last one).
pub fn parse_values_for(text: &str) -> Result<crate::store::ValuesFor, String> {
    let (selector, file) = text
        .rsplit_once('=')
        .filter(|(s, f)| !s.is_empty() && !f.is_empty())
        .ok_or_else(|| format!("--values-for {text:?}: expected SELECTOR=FILE"))?;
    Ok(crate::store::ValuesFor {
        selector: selector.to_owned(),
        file: file.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ValuesFor;
    use std::collections::BTreeMap;

    #[test]
    fn values_files_are_found_from_the_chart_or_the_root() {
        assert_eq!(
            values_path("charts/web", "values-prod.yaml").unwrap(),
            "charts/web/values-prod.yaml"
        );
        assert_eq!(
            values_path("charts/web", "../../envs/prod.yaml").unwrap(),
            "envs/prod.yaml"
        );
        assert_eq!(
            values_path("charts/web", "/envs/prod.yaml").unwrap(),
            "envs/prod.yaml"
        );
        assert_eq!(values_path("", "./v.yaml").unwrap(), "v.yaml");
        for bad in ["../../../x.yaml", "", "../../..", "/", "a\\b"] {
            assert!(values_path("charts/web", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn values_for_picks_files_by_selector_in_order() {
        let settings = HelmSettings {
            values_for: vec![
                ValuesFor {
                    selector: "env=prod".into(),
                    file: "prod.yaml".into(),
                },
                ValuesFor {
                    selector: "region in (eu, us)".into(),
                    file: "region.yaml".into(),
                },
                ValuesFor {
                    selector: "env=dev".into(),
                    file: "dev.yaml".into(),
                },
            ],
            ..HelmSettings::default()
        };
        let mut cluster = crate::store::ClusterRecord::new(
            switchyard_common::ClusterName::new("c1".to_owned()).unwrap(),
            BTreeMap::from([
                ("env".to_owned(), "prod".to_owned()),
                ("region".to_owned(), "eu".to_owned()),
            ]),
            0,
        );
        assert_eq!(
            values_for(&settings, &cluster).unwrap(),
            vec![(0, "prod.yaml"), (1, "region.yaml")]
        );
        cluster.labels.clear();
        assert!(values_for(&settings, &cluster).unwrap().is_empty());
    }

    #[test]
    fn values_for_flags_split_at_the_last_equals_sign() {
        let v = parse_values_for("env=prod=values-prod.yaml").unwrap();
        assert_eq!(
            (v.selector.as_str(), v.file.as_str()),
            ("env=prod", "values-prod.yaml")
        );
        assert!(parse_values_for("nofile").is_err());
        assert!(parse_values_for("env=prod=").is_err());
    }
}
