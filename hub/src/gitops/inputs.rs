//! What of its repository an app's render reads besides the app's own directory: the bases, components and files its kustomizations name anywhere in the repository, and its jsonnet library directories.
//!
//! Deciding what a kustomization names is a pure function
//! ([`kustomization_refs`]); [`gather`] walks them through Git at one
//! commit, bounded in directories, files and bytes, and never outside the
//! repository. The paths it read are what [`Inputs::paths`] names, so a
//! later commit whose Git objects at those paths are the same renders the
//! same: the planner reuses the render instead of running it again.

use crate::git::{self, GitCache};
use crate::tree::{TreeFile, TreeLimits};
use serde_json::Value;
use std::collections::BTreeSet;

/// Most directories one app's kustomizations may pull in (the app's own
/// included): a chain of bases deeper than this is a mistake or an attack.
pub(super) const MAX_DIRECTORIES: usize = 64;

/// Kustomization file names, in the order kustomize looks for them.
const KUSTOMIZATION_FILES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// Fields of a kustomization that name local files or directories, each a
/// string or a list of strings. Generators' `files`/`envs` and patches'
/// `path` are handled apart.
const PATH_LISTS: [&str; 9] = [
    "resources",
    "bases",
    "components",
    "crds",
    "patchesStrategicMerge",
    "configurations",
    "transformers",
    "generators",
    "validators",
];

/// Why an app's repository inputs could not be gathered.
#[derive(Debug, thiserror::Error)]
pub(super) enum Error {
    #[error("{file}: {reference:?} leaves the repository")]
    Escapes { file: String, reference: String },
    #[error("{file}: not a valid kustomization: {message}")]
    Invalid { file: String, message: String },
    #[error("{file}: {reference:?}: {source}")]
    Missing {
        file: String,
        reference: String,
        #[source]
        source: Box<git::Error>,
    },
    #[error("the kustomizations name more than {MAX_DIRECTORIES} directories")]
    TooManyDirectories,
    #[error(
        "the kustomizations read more than {limit} {what} in all (the limit of one app's files)"
    )]
    TooMuch { what: &'static str, limit: u64 },
}

type Result<T, E = Error> = std::result::Result<T, E>;

/// What one kustomization names, resolved against the repository.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Refs {
    /// Repository-relative paths (normalized), files or directories.
    pub(super) local: BTreeSet<String>,
    /// Whether it names a remote base (a URL): then the render depends on
    /// more than the repository, and is never reused across commits.
    pub(super) remote: bool,
}

/// Whether a kustomize reference is remote: a URL or a `host/org/repo`
/// Git reference, which kustomize fetches itself.
fn is_remote(reference: &str) -> bool {
    reference.contains("://")
        || reference.starts_with("git@")
        || reference.starts_with("github.com/")
        || reference.starts_with("gitlab.com/")
        || reference.starts_with("bitbucket.org/")
        || reference.contains("?ref=")
}

/// `dir/reference`, `.` and `..` resolved; `None` if it climbs out of the
/// repository or is absolute.
pub(super) fn resolve(dir: &str, reference: &str) -> Option<String> {
    if reference.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in dir.split('/').chain(reference.split('/')) {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// The local files and directories the kustomization `file` (in `dir`,
/// repository-relative) names. A reference that leaves the repository is
/// an error, in any string of the file that reads as a relative path, so
/// that a field this list does not know cannot reach the hub's disk
/// through the render's temporary copy either.
pub(super) fn kustomization_refs(dir: &str, file: &str, text: &str) -> Result<Refs> {
    let shown = if dir.is_empty() {
        file.to_owned()
    } else {
        format!("{dir}/{file}")
    };
    let doc: Value = serde_saphyr::from_str(text).map_err(|e| Error::Invalid {
        file: shown.clone(),
        message: e.to_string(),
    })?;
    let mut refs = Refs::default();
    let mut named = Vec::new();
    let Value::Object(map) = &doc else {
        return Err(Error::Invalid {
            file: shown,
            message: "not a mapping".into(),
        });
    };
    let strings = |v: &Value, out: &mut Vec<String>| match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => {
            out.extend(items.iter().filter_map(|i| i.as_str().map(str::to_owned)))
        }
        _ => {}
    };
    for field in PATH_LISTS {
        if let Some(v) = map.get(field) {
            strings(v, &mut named);
        }
    }
    for field in ["patches", "patchesJson6902", "replacements"] {
        for item in map
            .get(field)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(p) = item.get("path").and_then(Value::as_str) {
                named.push(p.to_owned());
            }
        }
    }
    for field in ["configMapGenerator", "secretGenerator"] {
        for item in map
            .get(field)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let mut files = Vec::new();
            for key in ["files", "envs", "env"] {
                if let Some(v) = item.get(key) {
                    strings(v, &mut files);
                }
            }
            // `key=path` names `path`.
            named.extend(
                files
                    .into_iter()
                    .map(|f| f.split_once('=').map_or(f.clone(), |(_, p)| p.to_owned())),
            );
        }
    }
    if let Some(p) = map
        .get("openapi")
        .and_then(|o| o.get("path"))
        .and_then(Value::as_str)
    {
        named.push(p.to_owned());
    }
    for reference in named {
        // An inline patch or resource (YAML text) names no file.
        if reference.contains('\n') || reference.trim().is_empty() {
            continue;
        }
        if is_remote(&reference) {
            refs.remote = true;
            continue;
        }
        let resolved = resolve(dir, &reference).ok_or_else(|| Error::Escapes {
            file: shown.clone(),
            reference: reference.clone(),
        })?;
        refs.local.insert(resolved);
    }
    check_strings(&doc, dir, &shown)?;
    Ok(refs)
}

/// Every string in `value` that reads as a relative path climbing with
/// `..` must stay inside the repository.
fn check_strings(value: &Value, dir: &str, shown: &str) -> Result<()> {
    match value {
        Value::String(s) => {
            let path_like = !s.contains(char::is_whitespace) && !is_remote(s);
            if path_like && s.split('/').any(|p| p == "..") && resolve(dir, s).is_none() {
                return Err(Error::Escapes {
                    file: shown.to_owned(),
                    reference: s.clone(),
                });
            }
            Ok(())
        }
        Value::Array(items) => items.iter().try_for_each(|v| check_strings(v, dir, shown)),
        Value::Object(map) => map.values().try_for_each(|v| check_strings(v, dir, shown)),
        _ => Ok(()),
    }
}

/// An app's inputs from the rest of its repository.
#[derive(Debug, Default)]
pub(super) struct Inputs {
    /// Files outside the app's directory, repository-relative.
    pub(super) files: Vec<TreeFile>,
    /// Every path (directory or file) the render reads, the app's own
    /// directory first: the same Git objects there, the same render.
    pub(super) paths: Vec<String>,
    /// Whether the render also reads something outside the repository.
    pub(super) remote: bool,
}

/// Whether `path` is `dir` or inside it (`""` is the root).
fn within(path: &str, dir: &str) -> bool {
    dir.is_empty()
        || path == dir
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The kustomization of the directory whose files (relative to it) are
/// `files`, if it has one.
fn kustomization_of(files: &[TreeFile]) -> Option<&TreeFile> {
    KUSTOMIZATION_FILES
        .iter()
        .find_map(|name| files.iter().find(|f| f.path == *name))
}

/// Walk the kustomizations from the app's directory (`app_path`, whose
/// files are `app_files`) at `commit`: every local directory or file they
/// name, transitively, read within `limits` counted over all of them.
pub(super) fn gather_kustomize(
    git: &GitCache,
    repo: &str,
    commit: &str,
    app_path: &str,
    app_files: &[TreeFile],
    limits: &TreeLimits,
) -> Result<Inputs> {
    let mut inputs = Inputs {
        paths: vec![app_path.to_owned()],
        ..Inputs::default()
    };
    let mut budget = Budget::new(limits);
    budget.take(app_files)?;
    // Directories read (their whole trees), and a queue of kustomization
    // directories still to look into, with their files.
    let mut dirs: Vec<String> = vec![app_path.to_owned()];
    let mut queue: Vec<(String, Vec<TreeFile>)> = vec![(app_path.to_owned(), app_files.to_vec())];
    while let Some((dir, files)) = queue.pop() {
        let Some(k) = kustomization_of(&files) else {
            continue;
        };
        let text = String::from_utf8_lossy(&k.data);
        let refs = kustomization_refs(&dir, &k.path, &text)?;
        inputs.remote |= refs.remote;
        let shown = if dir.is_empty() {
            k.path.clone()
        } else {
            format!("{dir}/{}", k.path)
        };
        for path in refs.local {
            if dirs.iter().any(|d| within(&path, d)) {
                continue;
            }
            let missing = |source| Error::Missing {
                file: shown.clone(),
                reference: path.clone(),
                source: Box::new(source),
            };
            match git.read_dir(repo, commit, &path, limits) {
                Ok(found) => {
                    if dirs.len() >= MAX_DIRECTORIES {
                        return Err(Error::TooManyDirectories);
                    }
                    budget.take(&found)?;
                    // A directory that contains one already read replaces it.
                    dirs.retain(|d| !within(d, &path));
                    inputs.files.retain(|f| !within(&f.path, &path));
                    inputs.paths.retain(|p| p == app_path || !within(p, &path));
                    inputs.files.extend(found.iter().map(|f| TreeFile {
                        path: join(&path, &f.path),
                        data: f.data.clone(),
                        executable: f.executable,
                    }));
                    dirs.push(path.clone());
                    inputs.paths.push(path.clone());
                    queue.push((path, found));
                }
                Err(git::Error::NotADirectory { .. }) => {
                    let file = git
                        .read_file(repo, commit, &path, limits)
                        .map_err(missing)?;
                    budget.take(std::slice::from_ref(&file))?;
                    inputs.paths.push(path.clone());
                    inputs.files.push(file);
                }
                Err(e) => return Err(missing(e)),
            }
        }
    }
    // The app's own files are sent apart, in the app's directory.
    inputs.files.retain(|f| !within(&f.path, app_path));
    inputs.files.sort_by(|a, b| a.path.cmp(&b.path));
    inputs.files.dedup_by(|a, b| a.path == b.path);
    Ok(inputs)
}

/// The jsonnet library directories `libs` (repository-relative) at
/// `commit`, within `limits` counted with the app's own files.
pub(super) fn gather_libs(
    git: &GitCache,
    repo: &str,
    commit: &str,
    app_path: &str,
    app_files: &[TreeFile],
    libs: &[String],
    limits: &TreeLimits,
) -> Result<Inputs> {
    let mut inputs = Inputs {
        paths: vec![app_path.to_owned()],
        ..Inputs::default()
    };
    let mut budget = Budget::new(limits);
    budget.take(app_files)?;
    for lib in libs {
        let path = crate::render::lib_path(lib).map_err(|_| Error::Escapes {
            file: "jsonnet.libs".into(),
            reference: lib.clone(),
        })?;
        if inputs.paths.iter().any(|d| within(&path, d)) {
            continue;
        }
        let found = git
            .read_dir(repo, commit, &path, limits)
            .map_err(|source| Error::Missing {
                file: "jsonnet.libs".into(),
                reference: lib.clone(),
                source: Box::new(source),
            })?;
        budget.take(&found)?;
        inputs.files.extend(found.into_iter().map(|f| TreeFile {
            path: join(&path, &f.path),
            ..f
        }));
        inputs.paths.push(path);
    }
    Ok(inputs)
}

fn join(dir: &str, path: &str) -> String {
    if dir.is_empty() {
        path.to_owned()
    } else {
        format!("{dir}/{path}")
    }
}

/// The limits of one app's files, counted over everything a render reads.
struct Budget {
    files: u64,
    bytes: u64,
    max_files: u64,
    max_bytes: u64,
}

impl Budget {
    fn new(limits: &TreeLimits) -> Self {
        Self {
            files: 0,
            bytes: 0,
            max_files: limits.max_files as u64,
            max_bytes: limits.max_total_bytes,
        }
    }

    fn take(&mut self, files: &[TreeFile]) -> Result<()> {
        self.files += files.len() as u64;
        self.bytes += files.iter().map(|f| f.data.len() as u64).sum::<u64>();
        if self.files > self.max_files {
            return Err(Error::TooMuch {
                what: "files",
                limit: self.max_files,
            });
        }
        if self.bytes > self.max_bytes {
            return Err(Error::TooMuch {
                what: "bytes",
                limit: self.max_bytes,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(refs: &Refs) -> Vec<&str> {
        refs.local.iter().map(String::as_str).collect()
    }

    #[test]
    fn bases_components_patches_and_generator_files_are_named() {
        let text = "\
resources:
- ../../base
- extra.yaml
- https://github.com/org/repo//deploy?ref=v1
components: [../../components/tls]
patches:
- path: replicas.yaml
- patch: |-
    - op: replace
      path: /spec/replicas
      value: 3
configMapGenerator:
- name: cfg
  files: [app.properties, key=../../common/key.txt]
";
        let refs = kustomization_refs("overlays/prod", "kustomization.yaml", text).unwrap();
        assert_eq!(
            local(&refs),
            [
                "base",
                "common/key.txt",
                "components/tls",
                "overlays/prod/app.properties",
                "overlays/prod/extra.yaml",
                "overlays/prod/replicas.yaml",
            ]
        );
        assert!(refs.remote);
    }

    #[test]
    fn references_leaving_the_repository_are_refused() {
        for text in [
            "resources: [../../../outside]",
            "bases: [/etc]",
            "components:\n- ../../../../etc/passwd\n",
            // A field the walk does not know is still checked.
            "helmGlobals:\n  chartHome: ../../../charts\n",
        ] {
            let e = kustomization_refs("overlays/prod", "kustomization.yaml", text).unwrap_err();
            assert!(matches!(e, Error::Escapes { .. }), "{text}: {e}");
        }
        let refs = kustomization_refs("", "kustomization.yaml", "resources: [a/../b]").unwrap();
        assert_eq!(local(&refs), ["b"]);
    }

    #[test]
    fn within_compares_whole_components() {
        assert!(within("base/x.yaml", "base"));
        assert!(within("base", "base"));
        assert!(!within("base2/x.yaml", "base"));
        assert!(within("anything", ""));
    }
}
