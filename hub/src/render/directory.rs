//! The directory renderer, as Argo CD's directory source: every YAML and JSON file of the app and every `*.jsonnet` file evaluated (`*.libsonnet` only imported), selected by the app's recursion, include and exclude settings.

use super::source::Selection;
use super::yaml::{Sourced, parse_objects};
use super::{RenderError, RenderOptions, jsonnet};
use crate::tree::TreeFile;

pub(super) fn render(
    files: &[TreeFile],
    options: &RenderOptions,
) -> Result<Vec<Sourced>, RenderError> {
    let selection = Selection::new(&options.directory).map_err(|e| RenderError::File {
        path: "(directory settings)".into(),
        message: e.to_string(),
    })?;
    let mut manifests: Vec<&TreeFile> = files
        .iter()
        .filter(|f| selection.selects(&f.path))
        .collect();
    // Sorted so errors and output order do not depend on the Git reader.
    manifests.sort_by(|a, b| a.path.cmp(&b.path));
    // Every jsonnet file is evaluated in one evaluator thread, up front;
    // their objects are placed in path order with the rest.
    let jsonnet_paths: Vec<String> = manifests
        .iter()
        .filter(|f| f.path.ends_with(".jsonnet"))
        .map(|f| f.path.clone())
        .collect();
    let mut evaluated = if jsonnet_paths.is_empty() {
        Vec::new()
    } else {
        jsonnet::render_files(files, options, jsonnet_paths)?
    }
    .into_iter();
    let mut out = Vec::new();
    for f in manifests {
        if f.path.ends_with(".jsonnet") {
            let objects = evaluated.next().unwrap_or_default();
            out.extend(jsonnet::sourced(&f.path, objects));
        } else {
            // JSON is YAML, so one parser reads both, with the same errors.
            out.extend(parse_objects(&f.path, &f.data, false)?);
        }
    }
    Ok(out)
}
