//! Helm chart rendering without Helm: Go's text/template semantics
//! ([`template`]), Sprig's functions ([`sprig`]) and Helm's chart model and
//! built-ins ([`helm`]), each a layer usable and testable on its own.

pub mod gofmt;
pub mod template;
pub mod value;

pub use value::Value;

/// Deepest nesting of data structures printed, copied or serialized; deeper data
/// (for example a map that `set` made contain itself) is cut off there.
pub const MAX_DATA_DEPTH: usize = 200;

pub mod helm;
pub mod json;
pub mod semver_compat;
pub mod sprig;
pub mod yaml;

pub use helm::{Chart, Error, RenderOptions, render, render_files, split_manifests};
