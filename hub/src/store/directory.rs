//! An app's directory settings, as Argo CD's `spec.source.directory` has them: which files of a directory app are read (recursion, include and exclude globs) and what its jsonnet files are evaluated with. Kept with the app's record; the render engine decides with them (`render::source`).

use serde::{Deserialize, Serialize};

/// How a directory (or jsonnet) app's files are selected and evaluated.
/// The default is what Switchyard always did: every manifest, recursively.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DirectorySettings {
    /// Read subdirectories too. Absent means yes (Switchyard's default);
    /// Argo CD's default is no, and `import argocd` writes it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurse: Option<bool>,
    /// Globs over the path relative to the app (`*` crosses `/`, braces
    /// allowed, as Argo CD matches): when any is given, a file must match one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    /// Globs as `include`: a file matching one is skipped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    #[serde(default, skip_serializing_if = "JsonnetSettings::is_empty")]
    pub jsonnet: JsonnetSettings,
}

/// What every jsonnet file of the app is evaluated with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JsonnetSettings {
    /// Top-level arguments (`--tla-str`, or `--tla-code` when `code`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tlas: Vec<JsonnetArg>,
    /// External variables (`--ext-str`, or `--ext-code` when `code`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ext_vars: Vec<JsonnetArg>,
    /// Library directories (`-J`), relative to the repository's root and
    /// read at the app's commit; searched after the importing file's own
    /// directory and the app's `lib` and `vendor`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub libs: Vec<String>,
}

impl DirectorySettings {
    /// Whether this is the default (nothing to store).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

impl JsonnetSettings {
    pub fn is_empty(&self) -> bool {
        self.tlas.is_empty() && self.ext_vars.is_empty() && self.libs.is_empty()
    }
}

/// One top-level argument or external variable.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonnetArg {
    pub name: String,
    pub value: String,
    /// `value` is jsonnet code, not a string.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub code: bool,
}

impl JsonnetArg {
    /// `name=value` as the CLI takes it.
    pub fn parse(text: &str, code: bool) -> Result<Self, String> {
        let (name, value) = text
            .split_once('=')
            .ok_or_else(|| format!("{text:?}: expected NAME=VALUE"))?;
        let arg = Self {
            name: name.to_owned(),
            value: value.to_owned(),
            code,
        };
        arg.validate()?;
        Ok(arg)
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        // jsonnet allows any string as an external variable's name; names
        // are kept printable so they show plainly in `app show`.
        if self.name.is_empty()
            || self.name.len() > 253
            || !self.name.chars().all(|c| c.is_ascii_graphic())
        {
            return Err(format!(
                "{:?}: a name is 1 to 253 printable ASCII characters",
                self.name
            ));
        }
        Ok(())
    }
}
