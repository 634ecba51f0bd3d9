//! Reading the local bare repository: revisions, history and trees.

use gix::{ObjectId, objs::tree::EntryKind};

use super::{CommitInfo, Error, Result, TreeFile, TreeLimits, fetch::chain, paths};

/// How many symlinks one lookup may go through.
const MAX_LINK_DEPTH: usize = 8;

/// How deep directories may nest (the walk is recursive).
const MAX_TREE_DEPTH: usize = 128;

fn repo_err(name: &str) -> impl Fn(gix::Error) -> Error + '_ {
    move |e| Error::Repository {
        name: name.to_owned(),
        detail: chain(&e),
    }
}

/// `revision` to a commit id; see `GitCache::resolve`.
pub(super) fn resolve(repo: &gix::Repository, name: &str, revision: &str) -> Result<ObjectId> {
    let unknown = || Error::UnknownRevision {
        name: name.to_owned(),
        revision: revision.to_owned(),
    };
    if revision.is_empty() || revision.contains("..") || revision.contains('\0') {
        return Err(unknown());
    }
    let candidates: Vec<String> = if revision.starts_with("refs/") {
        vec![revision.to_owned()]
    } else {
        vec![
            format!("refs/heads/{revision}"),
            format!("refs/tags/{revision}"),
        ]
    };
    for full in &candidates {
        // An invalid ref name is simply not a ref.
        let Ok(Some(mut r)) = repo.try_find_reference(full.as_str()) else {
            continue;
        };
        let commit = r.peel_to_commit().map_err(repo_err(name))?;
        return Ok(commit.id);
    }
    let is_hex = revision.bytes().all(|b| b.is_ascii_hexdigit());
    if !is_hex || revision.len() < 4 || revision.len() > 40 {
        return Err(unknown());
    }
    let id = if revision.len() == 40 {
        let id = ObjectId::from_hex(revision.as_bytes()).map_err(|_| unknown())?;
        if !repo.has_object(id) {
            return Err(unknown());
        }
        id
    } else {
        let prefix = gix::hash::Prefix::from_hex(revision).map_err(|_| unknown())?;
        match repo.objects.lookup_prefix(prefix, None) {
            Ok(Some(Ok(id))) => id,
            Ok(Some(Err(()))) => {
                return Err(Error::AmbiguousRevision {
                    name: name.to_owned(),
                    revision: revision.to_owned(),
                });
            }
            Ok(None) => return Err(unknown()),
            Err(e) => return Err(repo_err(name)(e)),
        }
    };
    // A sha of a tag object peels to its commit; trees and blobs are not revisions.
    let object = repo.find_object(id).map_err(repo_err(name))?;
    match object.peel_to_kind(gix::objs::Kind::Commit) {
        Ok(commit) => Ok(commit.id),
        Err(_) => Err(unknown()),
    }
}

pub(super) fn commit_info(repo: &gix::Repository, name: &str, id: ObjectId) -> Result<CommitInfo> {
    let commit = repo
        .find_object(id)
        .map_err(repo_err(name))?
        .try_into_commit()
        .map_err(|e| Error::Repository {
            name: name.to_owned(),
            detail: e.to_string(),
        })?;
    let decoded = commit.decode().map_err(repo_err(name))?;
    let author = decoded.author().map_err(repo_err(name))?;
    let time = author.time().map(|t| t.seconds).unwrap_or(0).max(0) as u64;
    let summary = decoded.message().summary().to_string();
    Ok(CommitInfo {
        id: id.to_string(),
        author_name: author.name.to_string().trim().to_owned(),
        author_email: author.email.to_string().trim().to_owned(),
        time,
        summary,
    })
}

pub(super) fn log(
    repo: &gix::Repository,
    name: &str,
    tip: ObjectId,
    limit: usize,
) -> Result<Vec<CommitInfo>> {
    use gix::revision::walk::Sorting;
    use gix::traverse::commit::simple::CommitTimeOrder;
    let walk = repo
        .rev_walk([tip])
        .sorting(Sorting::ByCommitTime(CommitTimeOrder::NewestFirst))
        .all()
        .map_err(repo_err(name))?;
    let mut out = Vec::new();
    for info in walk.take(limit) {
        let info = info.map_err(repo_err(name))?;
        out.push(commit_info(repo, name, info.id)?);
    }
    Ok(out)
}

/// Whether `commit` is `tip` or one of its ancestors. The walk visits
/// each commit of `tip`'s history at most once; the history is as large as
/// the fetch limits let it be.
pub(super) fn is_ancestor(
    repo: &gix::Repository,
    name: &str,
    commit: ObjectId,
    tip: ObjectId,
) -> Result<bool> {
    if commit == tip {
        return Ok(true);
    }
    let walk = repo.rev_walk([tip]).all().map_err(repo_err(name))?;
    for info in walk {
        if info.map_err(repo_err(name))?.id == commit {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A tree entry, owned.
#[derive(Clone, Copy)]
struct Entry {
    kind: EntryKind,
    id: ObjectId,
}

struct Reader<'a> {
    repo: &'a gix::Repository,
    name: &'a str,
    commit: String,
    /// The base directory, for messages.
    base: String,
    base_tree: ObjectId,
    limits: &'a TreeLimits,
    files: Vec<TreeFile>,
    total: u64,
    /// Tree entries seen (files, links, directories), bounded so a tree of
    /// directories without files (a crafted "tree bomb") cannot run forever.
    visited: usize,
}

pub(super) fn read_dir(
    repo: &gix::Repository,
    name: &str,
    commit: ObjectId,
    base: &[String],
    limits: &TreeLimits,
) -> Result<Vec<TreeFile>> {
    let base_str = if base.is_empty() {
        ".".to_owned()
    } else {
        base.join("/")
    };
    let c = repo
        .find_object(commit)
        .map_err(repo_err(name))?
        .peel_to_commit()
        .map_err(repo_err(name))?;
    let root = c.tree_id().map_err(repo_err(name))?.detach();
    let mut reader = Reader {
        repo,
        name,
        commit: commit.to_string(),
        base: base_str.clone(),
        base_tree: root,
        limits,
        files: Vec::new(),
        total: 0,
        visited: 0,
    };
    let not_found = || Error::PathNotFound {
        path: base_str.clone(),
        commit: commit.to_string(),
    };
    let base_entry = reader
        .lookup(root, base, |_| not_found())?
        .ok_or_else(not_found)?;
    match base_entry.kind {
        EntryKind::Tree => {}
        EntryKind::Commit => {
            return Err(Error::Submodule {
                path: base_str.clone(),
            });
        }
        _ => {
            return Err(Error::NotADirectory {
                path: base_str,
                commit: commit.to_string(),
            });
        }
    }
    reader.base_tree = base_entry.id;
    reader.walk(base_entry.id, &mut Vec::new())?;
    let mut files = reader.files;
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// The regular file at `path` (from the root, normalized) at `commit`,
/// a symlink followed when its target stays inside the repository.
pub(super) fn read_file(
    repo: &gix::Repository,
    name: &str,
    commit: ObjectId,
    path: &[String],
    limits: &TreeLimits,
) -> Result<TreeFile> {
    let path_str = path.join("/");
    let c = repo
        .find_object(commit)
        .map_err(repo_err(name))?
        .peel_to_commit()
        .map_err(repo_err(name))?;
    let root = c.tree_id().map_err(repo_err(name))?.detach();
    let mut reader = Reader {
        repo,
        name,
        commit: commit.to_string(),
        base: ".".to_owned(),
        base_tree: root,
        limits,
        files: Vec::new(),
        total: 0,
        visited: 0,
    };
    let not_found = || Error::PathNotFound {
        path: path_str.clone(),
        commit: commit.to_string(),
    };
    let entry = reader
        .lookup(root, path, |_| not_found())?
        .ok_or_else(not_found)?;
    let entry = match entry.kind {
        EntryKind::Blob | EntryKind::BlobExecutable => entry,
        EntryKind::Link => reader.follow(path, entry)?,
        EntryKind::Commit => {
            return Err(Error::Submodule {
                path: path_str.clone(),
            });
        }
        EntryKind::Tree => {
            return Err(Error::NotAFile {
                path: path_str.clone(),
                commit: commit.to_string(),
            });
        }
    };
    reader.add(path, entry)?;
    Ok(reader.files.remove(0))
}

/// The object id (tree or blob, as Git stores it: links not followed) of
/// each of `paths` (from the root, normalized) at `commit`; `None` for a
/// path that does not exist. Cheap: only the trees along each path are read.
pub(super) fn object_ids(
    repo: &gix::Repository,
    name: &str,
    commit: ObjectId,
    paths: &[Vec<String>],
) -> Result<Vec<Option<String>>> {
    let c = repo
        .find_object(commit)
        .map_err(repo_err(name))?
        .peel_to_commit()
        .map_err(repo_err(name))?;
    let root = c.tree_id().map_err(repo_err(name))?.detach();
    let limits = TreeLimits::default();
    let reader = Reader {
        repo,
        name,
        commit: commit.to_string(),
        base: ".".to_owned(),
        base_tree: root,
        limits: &limits,
        files: Vec::new(),
        total: 0,
        visited: 0,
    };
    paths
        .iter()
        .map(|path| {
            // A file in the middle of the path: the path does not exist.
            match reader.lookup(root, path, |p| Error::PathNotFound {
                path: p.to_owned(),
                commit: commit.to_string(),
            }) {
                Ok(entry) => Ok(entry.map(|e| e.id.to_string())),
                Err(Error::PathNotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .collect()
}

impl Reader<'_> {
    fn err(&self) -> impl Fn(gix::Error) -> Error + '_ {
        repo_err(self.name)
    }

    fn entries(&self, tree: ObjectId) -> Result<Vec<(String, Entry)>> {
        let object = self.repo.find_object(tree).map_err(self.err())?;
        let tree = object.into_tree();
        let decoded = tree.decode().map_err(self.err())?;
        decoded
            .entries
            .iter()
            .map(|e| {
                let name = paths::entry_name(e.filename).ok_or_else(|| Error::Repository {
                    name: self.name.to_owned(),
                    detail: format!(
                        "tree entry name {:?} at commit {} is not a valid file name",
                        e.filename, self.commit
                    ),
                })?;
                Ok((
                    name.to_owned(),
                    Entry {
                        kind: e.mode.kind(),
                        id: e.oid.to_owned(),
                    },
                ))
            })
            .collect()
    }

    /// The entry at `path` under `tree` without following symlinks in the
    /// last component; `Ok(None)` if it does not exist. A non-directory in
    /// the middle of the path is reported with `through`.
    fn lookup(
        &self,
        tree: ObjectId,
        path: &[String],
        through: impl Fn(&str) -> Error,
    ) -> Result<Option<Entry>> {
        let mut current = Entry {
            kind: EntryKind::Tree,
            id: tree,
        };
        for (i, part) in path.iter().enumerate() {
            if current.kind != EntryKind::Tree {
                return Err(through(&path[..i].join("/")));
            }
            match self
                .entries(current.id)?
                .into_iter()
                .find(|(n, _)| n == part)
            {
                Some((_, e)) => current = e,
                None => return Ok(None),
            }
        }
        Ok(Some(current))
    }

    fn walk(&mut self, tree: ObjectId, prefix: &mut Vec<String>) -> Result<()> {
        if prefix.len() > MAX_TREE_DEPTH {
            return Err(Error::TooDeep {
                path: self.full(prefix),
                limit: MAX_TREE_DEPTH,
            });
        }
        let max_entries = self.limits.max_files.saturating_mul(2).saturating_add(64);
        for (name, entry) in self.entries(tree)? {
            prefix.push(name);
            self.visited += 1;
            if self.visited > max_entries {
                return Err(Error::TooManyEntries {
                    path: self.full(prefix),
                    limit: max_entries,
                });
            }
            match entry.kind {
                EntryKind::Tree => self.walk(entry.id, prefix)?,
                EntryKind::Blob | EntryKind::BlobExecutable => {
                    self.add(prefix, entry)?;
                }
                EntryKind::Link => {
                    let target = self.follow(prefix, entry)?;
                    self.add(prefix, target)?;
                }
                EntryKind::Commit => {
                    return Err(Error::Submodule {
                        path: self.full(prefix),
                    });
                }
            }
            prefix.pop();
        }
        Ok(())
    }

    /// `rel` as a path from the repository root, for messages.
    fn full(&self, rel: &[String]) -> String {
        if self.base == "." {
            rel.join("/")
        } else {
            format!("{}/{}", self.base, rel.join("/"))
        }
    }

    fn blob_size(&self, path: &[String], id: ObjectId) -> Result<u64> {
        let header = self.repo.find_header(id).map_err(self.err())?;
        if header.kind() != gix::objs::Kind::Blob {
            return Err(Error::Repository {
                name: self.name.to_owned(),
                detail: format!(
                    "{} at commit {} is a {}, not a blob",
                    self.full(path),
                    self.commit,
                    header.kind()
                ),
            });
        }
        Ok(header.size())
    }

    /// Follow the symlink at `link` to a blob inside the base directory.
    fn follow(&self, link: &[String], mut entry: Entry) -> Result<Entry> {
        let mut at: Vec<String> = link.to_vec();
        for _ in 0..MAX_LINK_DEPTH {
            let size = self.blob_size(&at, entry.id)?;
            if size > 4096 {
                return Err(Error::Symlink {
                    path: self.full(link),
                    reason: format!("target is {size} bytes long"),
                });
            }
            let data = self
                .repo
                .find_object(entry.id)
                .map_err(self.err())?
                .detach()
                .data;
            let target = String::from_utf8_lossy(&data).into_owned();
            let escapes = || Error::SymlinkEscapes {
                path: self.full(link),
                target: target.clone(),
                base: self.base.clone(),
            };
            let resolved = paths::resolve_link(&at, &target).ok_or_else(escapes)?;
            let dangling = || Error::Symlink {
                path: self.full(link),
                reason: format!("target {target:?} does not exist"),
            };
            let through = |dir: &str| Error::Symlink {
                path: self.full(link),
                reason: format!(
                    "target {target:?} goes through {}, which is not a directory",
                    self.full(&[dir.to_owned()])
                ),
            };
            let next = self
                .lookup(self.base_tree, &resolved, through)?
                .ok_or_else(dangling)?;
            match next.kind {
                EntryKind::Blob | EntryKind::BlobExecutable => return Ok(next),
                EntryKind::Link => {
                    at = resolved;
                    entry = next;
                }
                EntryKind::Tree => {
                    return Err(Error::Symlink {
                        path: self.full(link),
                        reason: format!(
                            "target {target:?} is a directory; only links to files are supported"
                        ),
                    });
                }
                EntryKind::Commit => {
                    return Err(Error::Submodule {
                        path: self.full(&resolved),
                    });
                }
            }
        }
        Err(Error::Symlink {
            path: self.full(link),
            reason: format!("more than {MAX_LINK_DEPTH} levels of symbolic links"),
        })
    }

    fn add(&mut self, path: &[String], entry: Entry) -> Result<()> {
        let rel = path.join("/");
        let count = self.files.len() + 1;
        if count > self.limits.max_files {
            return Err(Error::TooManyFiles {
                path: self.full(path),
                count,
                limit: self.limits.max_files,
            });
        }
        let size = self.blob_size(path, entry.id)?;
        if size > self.limits.max_file_bytes {
            return Err(Error::FileTooLarge {
                path: self.full(path),
                size,
                limit: self.limits.max_file_bytes,
            });
        }
        let total = self.total.saturating_add(size);
        if total > self.limits.max_total_bytes {
            return Err(Error::TotalTooLarge {
                path: self.full(path),
                total,
                limit: self.limits.max_total_bytes,
            });
        }
        let data = self
            .repo
            .find_object(entry.id)
            .map_err(self.err())?
            .detach()
            .data;
        self.total = total;
        self.files.push(TreeFile {
            path: rel,
            data,
            executable: entry.kind == EntryKind::BlobExecutable,
        });
        Ok(())
    }
}
