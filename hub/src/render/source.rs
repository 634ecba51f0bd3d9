//! An app's directory settings, as Argo CD's `spec.source.directory` has them: which files of a directory app are read (recursion, include and exclude globs) and what jsonnet files are evaluated with (top-level arguments, external variables, library paths).
//!
//! Pure data and the decisions over it (which file is selected, whether a
//! setting is valid); the renderers apply them.

pub use crate::store::{DirectorySettings, JsonnetArg, JsonnetSettings};
use globset::{Glob, GlobSet, GlobSetBuilder};

/// Why directory settings were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("glob {glob:?}: {message}")]
    Glob { glob: String, message: String },
    #[error("jsonnet argument {0}")]
    Arg(String),
    #[error("jsonnet library path {path:?}: {message}")]
    Lib { path: String, message: String },
    #[error("{name:?} is given twice as a jsonnet {what}")]
    Duplicate { name: String, what: &'static str },
}

impl DirectorySettings {
    /// Check every glob, name and path, so that a bad setting is refused
    /// when the app is created, not at its first render.
    pub fn validate(&self) -> Result<(), SettingsError> {
        Selection::new(self)?;
        for (args, what) in [
            (&self.jsonnet.tlas, "top-level argument"),
            (&self.jsonnet.ext_vars, "external variable"),
        ] {
            let mut seen = std::collections::HashSet::new();
            for a in args {
                a.validate().map_err(SettingsError::Arg)?;
                if !seen.insert(a.name.as_str()) {
                    return Err(SettingsError::Duplicate {
                        name: a.name.clone(),
                        what,
                    });
                }
            }
        }
        for lib in &self.jsonnet.libs {
            lib_path(lib).map_err(|message| SettingsError::Lib {
                path: lib.clone(),
                message,
            })?;
        }
        Ok(())
    }
}

/// A library path as a repository-relative directory: `.` and `..` resolved
/// without leaving the repository, `""` for its root, a leading `/` allowed
/// (Argo CD writes them either way).
pub fn lib_path(path: &str) -> Result<String, String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts
                    .pop()
                    .ok_or_else(|| "leaves the repository".to_owned())?;
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// The files a directory app reads, decided from its settings.
pub(crate) struct Selection {
    recurse: bool,
    include: Option<GlobSet>,
    exclude: Option<GlobSet>,
}

fn glob_set(globs: &[String]) -> Result<Option<GlobSet>, SettingsError> {
    if globs.is_empty() {
        return Ok(None);
    }
    let mut builder = GlobSetBuilder::new();
    for g in globs {
        // Argo CD matches against the path relative to the app, where its
        // `*` also crosses `/`: globset's default.
        let glob = Glob::new(g.trim_start_matches("./")).map_err(|e| SettingsError::Glob {
            glob: g.clone(),
            message: e.kind().to_string(),
        })?;
        builder.add(glob);
    }
    builder.build().map(Some).map_err(|e| SettingsError::Glob {
        glob: globs.join(", "),
        message: e.to_string(),
    })
}

/// Suffixes of the files a directory app renders; `*.libsonnet` is only
/// ever imported.
const MANIFEST_SUFFIXES: [&str; 4] = [".yaml", ".yml", ".json", ".jsonnet"];

impl Selection {
    pub(crate) fn new(settings: &DirectorySettings) -> Result<Self, SettingsError> {
        Ok(Self {
            recurse: settings.recurse.unwrap_or(true),
            include: glob_set(&settings.include)?,
            exclude: glob_set(&settings.exclude)?,
        })
    }

    /// Whether the file at `path` (relative to the app) is rendered.
    pub(crate) fn selects(&self, path: &str) -> bool {
        let manifest = MANIFEST_SUFFIXES
            .iter()
            .any(|ext| path.len() > ext.len() && path.ends_with(ext));
        if !manifest || (!self.recurse && path.contains('/')) {
            return false;
        }
        if self.exclude.as_ref().is_some_and(|g| g.is_match(path)) {
            return false;
        }
        self.include.as_ref().is_none_or(|g| g.is_match(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(recurse: Option<bool>, include: &[&str], exclude: &[&str]) -> Selection {
        Selection::new(&DirectorySettings {
            recurse,
            include: include.iter().map(|s| s.to_string()).collect(),
            exclude: exclude.iter().map(|s| s.to_string()).collect(),
            jsonnet: JsonnetSettings::default(),
        })
        .unwrap()
    }

    #[test]
    fn manifests_and_jsonnet_are_selected_libsonnet_is_not() {
        let all = settings(None, &[], &[]);
        for p in ["a.yaml", "a.yml", "a.json", "x/a.jsonnet"] {
            assert!(all.selects(p), "{p}");
        }
        for p in ["params.libsonnet", "README.md", ".yaml", "Chart.lock"] {
            assert!(!all.selects(p), "{p}");
        }
    }

    #[test]
    fn recursion_include_and_exclude_decide_like_argo_cd() {
        let flat = settings(Some(false), &[], &[]);
        assert!(flat.selects("a.yaml"));
        assert!(!flat.selects("sub/a.yaml"));
        let globs = settings(None, &["*.yaml", "{one,two}.json"], &["*-test.yaml"]);
        assert!(
            globs.selects("sub/deep/a.yaml"),
            "* crosses / as in Argo CD"
        );
        assert!(globs.selects("one.json"));
        assert!(!globs.selects("three.json"));
        assert!(!globs.selects("sub/web-test.yaml"));
        assert!(!globs.selects("main.jsonnet"));
    }

    #[test]
    fn bad_settings_are_refused_with_the_reason() {
        let bad_glob = DirectorySettings {
            include: vec!["a[".into()],
            ..Default::default()
        };
        assert!(matches!(
            bad_glob.validate(),
            Err(SettingsError::Glob { .. })
        ));
        let escape = DirectorySettings {
            jsonnet: JsonnetSettings {
                libs: vec!["vendor/../../etc".into()],
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(matches!(escape.validate(), Err(SettingsError::Lib { .. })));
        let twice = DirectorySettings {
            jsonnet: JsonnetSettings {
                tlas: vec![
                    JsonnetArg::parse("a=1", false).unwrap(),
                    JsonnetArg::parse("a=2", true).unwrap(),
                ],
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(matches!(
            twice.validate(),
            Err(SettingsError::Duplicate { .. })
        ));
        assert!(JsonnetArg::parse("novalue", false).is_err());
        assert_eq!(lib_path("/vendor/./k8s/").unwrap(), "vendor/k8s");
    }
}
