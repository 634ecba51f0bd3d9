//! The directory renderer: every YAML and JSON file of the app, as kubectl apply -R would read them.

use super::RenderError;
use super::yaml::{Sourced, parse_objects};
use crate::tree::TreeFile;

fn is_manifest(path: &str) -> bool {
    [".yaml", ".yml", ".json"]
        .iter()
        .any(|ext| path.len() > ext.len() && path.ends_with(ext))
}

pub(super) fn render(files: &[TreeFile]) -> Result<Vec<Sourced>, RenderError> {
    let mut manifests: Vec<&TreeFile> = files.iter().filter(|f| is_manifest(&f.path)).collect();
    // Sorted so errors and output order do not depend on the Git reader.
    manifests.sort_by(|a, b| a.path.cmp(&b.path));
    let mut out = Vec::new();
    for f in manifests {
        // JSON is YAML, so one parser reads both, with the same errors.
        out.extend(parse_objects(&f.path, &f.data, false)?);
    }
    Ok(out)
}
