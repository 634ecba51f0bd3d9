//! Manifest text to objects, with errors that name the file: the parser itself is `switchyard_common::manifest`.

use super::RenderError;
use serde_json::Value;
use switchyard_common::manifest::{self, ManifestError};

pub(super) use manifest::flatten;

/// Parse `text` (from `path`) into checked objects; see
/// [`manifest::parse_objects`].
pub(super) fn parse_objects(
    path: &str,
    text: &[u8],
    arrays: bool,
) -> Result<Vec<Value>, RenderError> {
    manifest::parse_objects(text, arrays).map_err(|e| match e {
        ManifestError::NotUtf8(e) => RenderError::File {
            path: path.to_owned(),
            message: format!("not UTF-8: {e}"),
        },
        ManifestError::Yaml {
            line,
            column,
            message,
        } => RenderError::Yaml {
            path: path.to_owned(),
            line,
            column,
            message,
        },
        ManifestError::InvalidObject {
            line,
            document,
            message,
        } => RenderError::InvalidObject {
            path: format!("{path}:{line}"),
            document,
            message,
        },
    })
}
