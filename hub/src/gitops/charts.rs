//! Apps from chart repositories, as the rest of the engine sees them: a
//! chart version resolved from the repo's index is a commit (id
//! `VERSION@sha256:DIGEST`), and its archive is the tree rendered; and the
//! dependencies of any chart that are not vendored in it.

use super::repos::chart_source;
use crate::charts::{self, Entry, deps};
use crate::git::{self, CommitInfo, GitCache};
use crate::store::{RepoKind, RepoRecord};
use crate::tree::{TreeFile, TreeLimits};
use std::collections::BTreeMap;
use std::path::Path;

/// The version of `chart` that `range` picks in the repo's latest index,
/// as a commit.
pub(super) fn resolve(
    repo: &RepoRecord,
    chart: &str,
    range: Option<&str>,
) -> Result<Result<CommitInfo, git::Error>, charts::Error> {
    let entry = charts::resolve(&repo.fetch.refs, chart, range)?;
    Ok(Ok(commit_of(repo, chart, &entry)))
}

/// A listed version as the history records it.
pub(super) fn commit_of(repo: &RepoRecord, chart: &str, entry: &Entry) -> CommitInfo {
    CommitInfo {
        id: entry.id(),
        author_name: format!("index.yaml of repo {}", repo.name),
        author_email: String::new(),
        time: entry.created_unix(),
        summary: format!("chart {chart} {}", entry.version),
    }
}

/// The history's author of a commit (chart versions have no e-mail).
pub(super) fn author(commit: &CommitInfo) -> String {
    if commit.author_email.is_empty() {
        commit.author_name.clone()
    } else {
        format!("{} <{}>", commit.author_name, commit.author_email)
    }
}

/// The index entry of the version `id` names.
pub(super) fn entry(repo: &RepoRecord, chart: &str, id: &str) -> Result<Entry, String> {
    charts::find(&repo.fetch.refs, chart, id).ok_or_else(|| {
        let version = charts::split_id(id).map_or(id, |(v, _)| v);
        charts::Error::Gone {
            chart: chart.to_owned(),
            version: version.to_owned(),
        }
        .to_string()
    })
}

/// The archive of version `id`: from the cache by digest (so a rollback
/// works after the index dropped the version), else downloaded and
/// verified. The error says whether it is worth remembering: a digest
/// mismatch is (the same archive would be refused again), a network
/// failure is not.
pub(super) fn archive(
    repo: &RepoRecord,
    chart: &str,
    id: &str,
    cache: &Path,
) -> Result<Vec<u8>, (String, bool)> {
    let (_, digest) =
        charts::split_id(id).ok_or_else(|| (format!("{id:?} names no chart version"), true))?;
    if let Some(data) = charts::cached_archive(cache, digest) {
        return Ok(data);
    }
    let entry = entry(repo, chart, id).map_err(|e| (e, false))?;
    let source = chart_source(repo).map_err(|e| (e.to_string(), false))?;
    charts::archive(cache, &source, chart, &entry).map_err(|e| {
        let remember = matches!(e, charts::Error::Digest { .. });
        (e.to_string(), remember)
    })
}

/// A chart's dependencies as the render gets them: files to add to the
/// chart (`charts/NAME-VERSION.tgz`, or a `file://` chart's directory as
/// `charts/NAME/…`), and the versions fetched from repositories.
#[derive(Debug, Default)]
pub(super) struct Dependencies {
    pub(super) files: Vec<TreeFile>,
    pub(super) resolved: Vec<deps::Resolved>,
}

/// Where the chart being rendered lives: a directory of a Git repository
/// at a commit (its `file://` dependencies are read there), or a chart
/// repository (which has none).
pub(super) struct ChartHome<'a> {
    pub(super) git: Option<(&'a GitCache, &'a str, &'a str, &'a str)>,
}

/// Fetch every dependency `meta` declares and charts/ lacks, as `helm
/// dependency build` would: Chart.lock's versions, else `pins` (an
/// earlier render of the same commit), else each range's highest version.
/// A repository whose URL (or `@name`) is a `repo add`ed one is reached
/// with its credentials and CA; any other anonymously. The error names
/// the dependency and its repository, and says whether it is lasting.
pub(super) fn dependencies(
    meta: &deps::ChartMeta,
    home: &ChartHome<'_>,
    repos: &[RepoRecord],
    pins: &BTreeMap<String, (String, String)>,
    cache: &Path,
    limits: &TreeLimits,
) -> Result<Dependencies, deps::Error> {
    let missing = meta.missing()?;
    let locked = meta.locked()?;
    let mut out = Dependencies::default();
    for dep in &missing {
        let failed = |detail: String, lasting: bool| deps::Error::Dependency {
            name: dep.name.clone(),
            repository: dep.repository.clone(),
            detail,
            lasting,
        };
        let chart_dir = home.git.map(|(_, _, _, dir)| dir);
        let location = deps::locate(&dep.repository, chart_dir).map_err(|e| failed(e, true))?;
        let (repo, url, oci) = match &location {
            deps::Location::File(dir) => {
                let (git, repo, commit, _) = home.git.expect("located in Git");
                let files = git
                    .read_dir(repo, commit, dir, limits)
                    .map_err(|e| failed(format!("{dir}: {e}"), true))?;
                if !files.iter().any(|f| f.path == "Chart.yaml") {
                    return Err(failed(format!("{dir}/Chart.yaml does not exist"), true));
                }
                out.files.extend(files.into_iter().map(|f| TreeFile {
                    path: format!("charts/{}/{}", dep.name, f.path),
                    ..f
                }));
                continue;
            }
            deps::Location::Named(name) => {
                let repo = repos
                    .iter()
                    .find(|r| &r.name == name && r.kind != RepoKind::Git)
                    .ok_or_else(|| {
                        failed(
                            format!(
                                "no chart repository named {name}: add it with \
                                 `switchyard repo add {name} URL --type helm` (or `--type oci`)"
                            ),
                            true,
                        )
                    })?;
                (Some(repo), repo.url.clone(), repo.kind == RepoKind::Oci)
            }
            deps::Location::Http(url) | deps::Location::Oci(url) => {
                let oci = matches!(location, deps::Location::Oci(_));
                let repo = repos.iter().find(|r| {
                    r.kind == if oci { RepoKind::Oci } else { RepoKind::Helm }
                        && deps::same_url(&r.url, url)
                });
                (repo, url.clone(), oci)
            }
        };
        let source = match repo {
            Some(repo) => chart_source(repo).map_err(|e| failed(e.to_string(), false))?,
            None => charts::Source {
                url: url.clone(),
                credentials: None,
                ca_file: None,
                plain_http: false,
            },
        };
        let pinned = pins.get(&dep.name).map(|(v, d)| (v.as_str(), d.as_str()));
        let (resolved, data) = deps::fetch(
            cache,
            &deps::Fetch {
                dep,
                source,
                oci,
                known_refs: repo.map(|r| &r.fetch.refs),
                locked: deps::lock_version(dep, &locked),
                pinned,
            },
        )?;
        out.files.push(TreeFile {
            path: format!("charts/{}-{}.tgz", dep.name, resolved.version),
            data,
            executable: false,
        });
        out.resolved.push(resolved);
    }
    Ok(out)
}
