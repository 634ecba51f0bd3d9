//! Manifest text to objects, with errors that name the file: the parser itself is `switchyard_common::manifest`.

use super::RenderError;
use serde_json::Value;
use switchyard_common::manifest::{self, ManifestError};

pub(super) use manifest::flatten;

/// A rendered object and where it came from (`path:line (document N)`),
/// for errors about more than one object.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Sourced {
    pub(super) origin: String,
    pub(super) value: Value,
}

/// Parse `text` (from `path`) into checked objects; see
/// [`manifest::parse_objects`].
pub(super) fn parse_objects(
    path: &str,
    text: &[u8],
    arrays: bool,
) -> Result<Vec<Sourced>, RenderError> {
    let located = manifest::parse_located(text, arrays).map_err(|e| match e {
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
    })?;
    Ok(located
        .into_iter()
        .map(|o| Sourced {
            origin: format!("{path}:{} (document {})", o.line, o.document),
            value: o.value,
        })
        .collect())
}
