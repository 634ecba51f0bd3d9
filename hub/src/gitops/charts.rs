//! Apps from chart repositories, as the rest of the engine sees them: a
//! chart version resolved from the repo's index is a commit (id
//! `VERSION@sha256:DIGEST`), and its archive is the tree rendered.

use super::repos::chart_source;
use crate::charts::{self, Entry};
use crate::git::{self, CommitInfo};
use crate::store::RepoRecord;
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
