//! Dependencies a chart declares in Chart.yaml (or a v1 chart's
//! requirements.yaml) without vendoring them in its charts/ directory:
//! what `helm dependency build` (which Argo CD runs) would fetch.
//!
//! The decisions are pure functions here: which dependencies are missing,
//! where each one's repository is ([`locate`]), which version Chart.lock
//! or an earlier render pinned, how the pins are written in an app's
//! history. [`fetch`] downloads one dependency through the same code,
//! limits and digest cache as a chart repository's own charts; the
//! gitops engine decides which repository's credentials go with it.

use super::{Entry, Source};
use std::collections::BTreeMap;

/// Why a chart's dependencies could not be had.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{file}: {detail}")]
    File { file: &'static str, detail: String },
    #[error("dependency {name} (repository {repository:?}): {detail}")]
    Dependency {
        name: String,
        repository: String,
        detail: String,
        /// Whether the same inputs would fail again (a version the index
        /// lacks), as opposed to a network failure worth retrying.
        lasting: bool,
    },
}

impl Error {
    /// Whether trying again without a change cannot help.
    pub fn is_lasting(&self) -> bool {
        match self {
            Error::File { .. } => true,
            Error::Dependency { lasting, .. } => *lasting,
        }
    }
}

/// One dependency as Chart.yaml (or Chart.lock) names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    pub name: String,
    /// A version range in Chart.yaml, a version in Chart.lock.
    pub version: String,
    pub repository: String,
}

/// The files of a chart that say what it depends on, and the paths of all
/// its files (relative to the chart), to tell what is vendored.
#[derive(Debug, Default, Clone)]
pub struct ChartMeta {
    pub chart_yaml: Vec<u8>,
    pub requirements_yaml: Option<Vec<u8>>,
    pub lock: Option<Vec<u8>>,
    pub paths: Vec<String>,
}

impl ChartMeta {
    /// From a chart's files (path relative to the chart → contents).
    pub fn of<'a>(files: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Self {
        let mut meta = ChartMeta::default();
        let mut requirements_lock = None;
        for (path, data) in files {
            match path {
                "Chart.yaml" => meta.chart_yaml = data.to_vec(),
                "requirements.yaml" => meta.requirements_yaml = Some(data.to_vec()),
                "Chart.lock" => meta.lock = Some(data.to_vec()),
                "requirements.lock" => requirements_lock = Some(data.to_vec()),
                _ => {}
            }
            meta.paths.push(path.to_owned());
        }
        if meta.lock.is_none() {
            meta.lock = requirements_lock;
        }
        meta
    }

    /// The declared dependencies that charts/ does not hold.
    pub fn missing(&self) -> Result<Vec<Declared>, Error> {
        let chart_yaml = parse_yaml("Chart.yaml", &self.chart_yaml)?;
        let api_version = text(chart_yaml.get("apiVersion"));
        // As Helm's loader: a v1 chart's requirements.yaml replaces the list.
        let list = match (&self.requirements_yaml, api_version.as_str()) {
            (Some(req), "v1" | "") => parse_yaml("requirements.yaml", req)?
                .get("dependencies")
                .cloned(),
            _ => chart_yaml.get("dependencies").cloned(),
        };
        Ok(declared_list(list.as_ref())
            .into_iter()
            .filter(|d| !is_vendored(&d.name, self.paths.iter().map(String::as_str)))
            .collect())
    }

    /// Chart.lock's (or requirements.lock's) entries, empty without one.
    pub fn locked(&self) -> Result<Vec<Declared>, Error> {
        let Some(lock) = &self.lock else {
            return Ok(Vec::new());
        };
        let lock = parse_yaml("Chart.lock", lock)?;
        Ok(declared_list(lock.get("dependencies")))
    }
}

fn parse_yaml(
    file: &'static str,
    data: &[u8],
) -> Result<serde_json::Map<String, serde_json::Value>, Error> {
    let text = std::str::from_utf8(data).map_err(|_| Error::File {
        file,
        detail: "not UTF-8".into(),
    })?;
    let value = switchyard_helm::yaml::parse(text).map_err(|e| Error::File {
        file,
        detail: e.to_string(),
    })?;
    match switchyard_helm::yaml::to_canonical_json(&value) {
        serde_json::Value::Object(m) => Ok(m),
        serde_json::Value::Null => Ok(serde_json::Map::new()),
        _ => Err(Error::File {
            file,
            detail: "not a mapping".into(),
        }),
    }
}

/// A scalar as text (`version: 1.2` is a number to YAML).
fn text(v: Option<&serde_json::Value>) -> String {
    match v {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Null) | None => String::new(),
        Some(v) => v.to_string(),
    }
}

fn declared_list(list: Option<&serde_json::Value>) -> Vec<Declared> {
    let Some(serde_json::Value::Array(list)) = list else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|d| {
            let name = text(d.get("name"));
            (!name.is_empty()).then(|| Declared {
                name,
                version: text(d.get("version")).trim().to_owned(),
                repository: text(d.get("repository")).trim().to_owned(),
            })
        })
        .collect()
}

/// Whether charts/ holds chart `name`: a directory of that name, or an
/// archive `NAME-VERSION.tgz` as `helm dependency build` names it.
pub fn is_vendored<'a>(name: &str, mut paths: impl Iterator<Item = &'a str>) -> bool {
    paths.any(|p| {
        let Some(rest) = p.strip_prefix("charts/") else {
            return false;
        };
        match rest.split_once('/') {
            Some((dir, inner)) => dir == name && !inner.is_empty(),
            None => [".tgz", ".tar.gz"].iter().any(|ext| {
                rest.strip_suffix(ext)
                    .and_then(|stem| stem.strip_prefix(name))
                    .and_then(|v| v.strip_prefix('-'))
                    .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit() || c == 'v'))
            }),
        }
    })
}

/// Where a dependency's chart is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// `file://…`: a directory of the same Git repository at the same
    /// commit (repository-relative path).
    File(String),
    /// `https://…` (or `http://`): a chart repository's index.yaml.
    Http(String),
    /// `oci://host/path`: the chart is `host/path/NAME`.
    Oci(String),
    /// `@name` or `alias:name`: a repository by name (Helm's `helm repo
    /// add` name; here a `switchyard repo add` name).
    Named(String),
}

/// Where `repository` points for a chart in `chart_dir` (repository-relative;
/// `None` for a chart from a chart repository, which has no neighbours).
pub fn locate(repository: &str, chart_dir: Option<&str>) -> Result<Location, String> {
    if repository.is_empty() {
        return Err(
            "not in the chart's charts/ directory, and no repository to fetch it from".into(),
        );
    }
    if let Some(rel) = repository.strip_prefix("file://") {
        let Some(dir) = chart_dir else {
            return Err(
                "a file:// dependency of a chart from a chart repository must be packaged in it"
                    .into(),
            );
        };
        if rel.starts_with('/') {
            return Err("an absolute file:// path is outside the Git repository".into());
        }
        return join_inside(dir, rel).map(Location::File);
    }
    if let Some(name) = repository
        .strip_prefix('@')
        .or_else(|| repository.strip_prefix("alias:"))
    {
        return Ok(Location::Named(name.to_owned()));
    }
    if repository.starts_with("oci://") {
        return Ok(Location::Oci(repository.trim_end_matches('/').to_owned()));
    }
    if repository.starts_with("https://") || repository.starts_with("http://") {
        return Ok(Location::Http(repository.to_owned()));
    }
    Err("unsupported repository (https://, oci://, file://, @name or alias:name)".into())
}

/// `dir/rel` with `.` and `..` resolved, refused if it leaves the repository.
fn join_inside(dir: &str, rel: &str) -> Result<String, String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in dir.split('/').chain(rel.split('/')) {
        match part {
            "" | "." => {}
            ".." => {
                parts
                    .pop()
                    .ok_or_else(|| format!("file://{rel} leaves the Git repository"))?;
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// Whether two repository URLs name the same repository (a trailing `/`
/// aside, as Helm compares them).
pub fn same_url(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// The version Chart.lock pins for `dep`, if it lists it.
pub fn lock_version<'a>(dep: &Declared, locked: &'a [Declared]) -> Option<&'a str> {
    locked
        .iter()
        .find(|l| l.name == dep.name && same_url(&l.repository, &dep.repository))
        .map(|l| l.version.as_str())
}

/// One dependency as fetched: enough to fetch exactly it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub name: String,
    pub version: String,
    pub digest: String,
}

/// How an app's history names the dependencies a commit rendered with:
/// `dependencies: NAME VERSION@sha256:DIGEST, …`.
pub fn history_summary(resolved: &[Resolved]) -> String {
    let list: Vec<String> = resolved
        .iter()
        .map(|r| format!("{} {}@sha256:{}", r.name, r.version, r.digest))
        .collect();
    format!("dependencies: {}", list.join(", "))
}

/// The pins of a [`history_summary`]: name → (version, digest).
pub fn parse_history_summary(summary: &str) -> BTreeMap<String, (String, String)> {
    let Some(list) = summary.strip_prefix("dependencies: ") else {
        return BTreeMap::new();
    };
    list.split(", ")
        .filter_map(|item| {
            let (name, id) = item.split_once(' ')?;
            let (version, digest) = super::split_id(id)?;
            Some((name.to_owned(), (version.to_owned(), digest.to_owned())))
        })
        .collect()
}

/// How to get one dependency: from a repository's refs already at hand
/// (a `repo add`ed repository's last fetch), else by reading its index.
pub struct Fetch<'a> {
    pub dep: &'a Declared,
    pub source: Source,
    /// `true` for an OCI registry.
    pub oci: bool,
    pub known_refs: Option<&'a BTreeMap<String, String>>,
    /// Chart.lock's version.
    pub locked: Option<&'a str>,
    /// An earlier render's exact choice (version, digest).
    pub pinned: Option<(&'a str, &'a str)>,
}

/// Fetch one dependency's archive: the pinned one (from the cache by
/// digest, else downloaded and checked), else the version Chart.lock
/// names, else the highest its range allows.
pub fn fetch(cache: &std::path::Path, f: &Fetch<'_>) -> Result<(Resolved, Vec<u8>), Error> {
    let name = &f.dep.name;
    let error = |e: super::Error| {
        let lasting = !matches!(
            e,
            super::Error::Http { .. } | super::Error::Status { .. } | super::Error::Cache { .. }
        );
        Error::Dependency {
            name: name.clone(),
            repository: f.dep.repository.clone(),
            detail: e.to_string(),
            lasting,
        }
    };
    if let Some((version, digest)) = f.pinned
        && let Some(data) = super::cached_archive(cache, digest)
    {
        let resolved = Resolved {
            name: name.clone(),
            version: version.to_owned(),
            digest: digest.to_owned(),
        };
        return Ok((resolved, data));
    }
    let fetched;
    let refs = match f.known_refs {
        Some(refs) if !super::entries(refs, name).is_empty() => refs,
        _ => {
            fetched = if f.oci {
                super::fetch_oci(&f.source, std::slice::from_ref(name), &BTreeMap::new())
            } else {
                super::fetch_index(&f.source)
            }
            .map_err(error)?;
            &fetched
        }
    };
    let entry: Entry = match f.pinned {
        Some((version, digest)) => super::find(refs, name, &format!("{version}@sha256:{digest}"))
            .ok_or_else(|| {
            error(super::Error::Gone {
                chart: name.clone(),
                version: version.to_owned(),
            })
        })?,
        None => {
            let range = f.locked.unwrap_or(&f.dep.version);
            super::resolve(refs, name, Some(range)).map_err(error)?
        }
    };
    let data = super::archive(cache, &f.source, name, &entry).map_err(error)?;
    let resolved = Resolved {
        name: name.clone(),
        version: entry.version.clone(),
        digest: entry.digest.clone(),
    };
    Ok((resolved, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(chart_yaml: &str, lock: Option<&str>, paths: &[&str]) -> ChartMeta {
        let mut files: Vec<(&str, &[u8])> = vec![("Chart.yaml", chart_yaml.as_bytes())];
        if let Some(lock) = lock {
            files.push(("Chart.lock", lock.as_bytes()));
        }
        for p in paths {
            files.push((p, b""));
        }
        ChartMeta::of(files)
    }

    const CHART: &str = "apiVersion: v2\nname: web\nversion: 1.0.0\ndependencies:\n\
        - {name: redis, version: ^1.0, repository: 'https://charts.example.com/'}\n\
        - {name: common, version: 2.x, repository: 'oci://r.example.com/charts'}\n\
        - {name: lib, version: 0.1.0, repository: 'file://../lib'}\n\
        - {name: vendored, version: 1.2, repository: 'https://x.example.com'}\n\
        - {name: packed, version: 1.2, repository: '@stable'}\n";

    #[test]
    fn only_what_charts_does_not_hold_is_missing() {
        let m = meta(
            CHART,
            None,
            &[
                "charts/vendored/Chart.yaml",
                "charts/packed-1.2.0.tgz",
                "charts/redis-extra-1.0.0.tgz",
                "templates/x.yaml",
            ],
        );
        let missing: Vec<String> = m.missing().unwrap().into_iter().map(|d| d.name).collect();
        assert_eq!(missing, ["redis", "common", "lib"]);
        let redis = &m.missing().unwrap()[0];
        assert_eq!(redis.version, "^1.0");
        // `version: 1.2` is a YAML number; it stays the text written.
        let all = meta(CHART, None, &[]).missing().unwrap();
        assert_eq!(all[3].version, "1.2");
    }

    #[test]
    fn a_v1_charts_requirements_yaml_lists_its_dependencies() {
        let m = ChartMeta::of([
            (
                "Chart.yaml",
                b"apiVersion: v1\nname: old\nversion: 1.0.0\n".as_slice(),
            ),
            (
                "requirements.yaml",
                b"dependencies:\n- {name: redis, version: 1.0.0, repository: '@stable'}\n"
                    .as_slice(),
            ),
        ]);
        assert_eq!(m.missing().unwrap()[0].repository, "@stable");
    }

    #[test]
    fn chart_lock_pins_by_name_and_repository() {
        let m = meta(
            CHART,
            Some(
                "dependencies:\n- {name: redis, version: 1.0.3, repository: 'https://charts.example.com'}\n\
                 digest: sha256:abc\ngenerated: '2024-01-01T00:00:00Z'\n",
            ),
            &[],
        );
        let locked = m.locked().unwrap();
        let missing = m.missing().unwrap();
        assert_eq!(lock_version(&missing[0], &locked), Some("1.0.3"));
        assert_eq!(lock_version(&missing[1], &locked), None);
        assert!(meta("name: [", None, &[]).missing().is_err());
    }

    #[test]
    fn repositories_are_located_without_leaving_the_git_repository() {
        let dir = Some("charts/web");
        assert_eq!(
            locate("file://../lib", dir),
            Ok(Location::File("charts/lib".into()))
        );
        assert_eq!(
            locate("file://./sub/", dir),
            Ok(Location::File("charts/web/sub".into()))
        );
        assert!(locate("file://../../../etc", dir).is_err());
        assert!(locate("file:///etc/charts", dir).is_err());
        assert!(locate("file://../lib", None).is_err());
        assert_eq!(
            locate("oci://r.example.com/charts/", dir),
            Ok(Location::Oci("oci://r.example.com/charts".into()))
        );
        assert_eq!(
            locate("https://charts.example.com", dir),
            Ok(Location::Http("https://charts.example.com".into()))
        );
        assert_eq!(locate("@stable", dir), Ok(Location::Named("stable".into())));
        assert_eq!(
            locate("alias:stable", dir),
            Ok(Location::Named("stable".into()))
        );
        assert!(locate("", dir).is_err());
        assert!(locate("git+ssh://x", dir).is_err());
    }

    #[test]
    fn history_summaries_round_trip() {
        let d = "a".repeat(64);
        let resolved = vec![
            Resolved {
                name: "redis".into(),
                version: "1.0.3".into(),
                digest: d.clone(),
            },
            Resolved {
                name: "common".into(),
                version: "2.1.0+build.1".into(),
                digest: d.clone(),
            },
        ];
        let summary = history_summary(&resolved);
        assert_eq!(
            summary,
            format!("dependencies: redis 1.0.3@sha256:{d}, common 2.1.0+build.1@sha256:{d}")
        );
        let pins = parse_history_summary(&summary);
        assert_eq!(pins["common"], ("2.1.0+build.1".to_owned(), d.clone()));
        assert!(parse_history_summary("chart web 1.0.0").is_empty());
    }
}
