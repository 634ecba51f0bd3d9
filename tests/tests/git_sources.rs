//! The hub's Git layer (`switchyard_hub::git`) against real servers: the git
//! CLI over file://, `git daemon` over git://, and `git http-backend` behind
//! lighttpd over HTTPS with basic auth and a private CA. Only tracked refs
//! are mirrored, and fetches stop at their size limits.

use std::path::Path;
use std::time::Instant;

use switchyard_hub::git::{
    Credentials, Error, FetchLimits, FetchProgress, GitCache, RepoSpec, TreeLimits,
};
use switchyard_tests::git_server::{GitDaemon, GitHttpServer, GitRepoBuilder};
use tempfile::TempDir;

const USER: &str = "deployer";

/// Every branch and tag of the sample repository.
const TRACKED: [&str; 4] = ["main", "feature", "v1", "light"];
const PASS: &str = "s3cret-pass";

fn init() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Deterministic incompressible bytes, so the first pack is clearly larger
/// than an incremental one.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A work repository with a typical layout, committed, tagged and published
/// as `base/<name>.git`. Returns the first commit.
fn sample_repo(base: &Path, name: &str) -> (GitRepoBuilder, String) {
    let b = GitRepoBuilder::new();
    b.write("README.md", "# sample\n")
        .write("data/a-small.txt", "small\n")
        .write("data/big.bin", noise(200 * 1024))
        .write("apps/web/deploy.yaml", "kind: Deployment\n")
        .write("apps/web/config/nested/values.yaml", "replicas: 2\n")
        .write("apps/web/run.sh", "#!/bin/sh\necho hi\n")
        .make_executable("apps/web/run.sh")
        .symlink("apps/web/values-link.yaml", "config/nested/values.yaml")
        .symlink("apps/web/chain-link.yaml", "values-link.yaml")
        .write("apps/evil/ok.yaml", "a: 1\n")
        .symlink("apps/evil/escape", "../../README.md")
        .symlink("apps/abs/escape", "/etc/passwd")
        .write("apps/abs/ok.yaml", "b: 2\n");
    let c1 = b.commit("first commit");
    b.tag("v1").lightweight_tag("light").branch("feature");
    b.publish(base, name);
    (b, c1)
}

fn progress_sink() -> (
    std::sync::Arc<std::sync::Mutex<Vec<FetchProgress>>>,
    impl Fn(FetchProgress),
) {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = seen.clone();
    (seen, move |p| s.lock().unwrap().push(p))
}

/// First fetch, new commit, incremental fetch, no-op fetch; branch deletion
/// is pruned. Returns (first, incremental) durations.
fn first_and_incremental(label: &str, base: &Path, spec: &RepoSpec) {
    let (b, c1) = sample_repo(base, "sample");
    let data = TempDir::new().unwrap();
    let cache = GitCache::new(data.path().join("repos"));

    let (seen, sink) = progress_sink();
    let t = Instant::now();
    let first = cache.fetch("sample", spec, &sink).expect("first fetch");
    let first_time = t.elapsed();
    assert_eq!(first.refs.get("refs/heads/main"), Some(&c1), "{first:?}");
    assert_eq!(first.refs.get("refs/heads/feature"), Some(&c1));
    assert_eq!(
        first.refs.get("refs/tags/v1"),
        Some(&c1),
        "annotated tag peeled"
    );
    assert_eq!(first.refs.get("refs/tags/light"), Some(&c1));
    assert!(
        first.bytes_received > 200 * 1024,
        "{}",
        first.bytes_received
    );
    {
        let seen = seen.lock().unwrap();
        let stages: std::collections::BTreeSet<&str> =
            seen.iter().map(|p| p.stage.as_str()).collect();
        eprintln!(
            "{label}: progress stages {stages:?}, last {:?}",
            seen.last()
        );
        assert!(stages.contains("connecting"), "{stages:?}");
        assert!(
            seen.iter().any(|p| p.done > 0),
            "some progress counted: {seen:?}"
        );
    }
    assert!(data.path().join("repos/sample.git").is_dir());
    assert!(!data.path().join("repos/sample.git.partial").exists());

    b.write("apps/web/new.yaml", "new: true\n");
    let c2 = b.commit("second commit");
    b.git(&["branch", "-D", "feature"]);
    b.publish(base, "sample");

    let t = Instant::now();
    let second = cache
        .fetch("sample", spec, &|_| {})
        .expect("incremental fetch");
    let second_time = t.elapsed();
    assert_eq!(second.refs.get("refs/heads/main"), Some(&c2), "{second:?}");
    assert_eq!(second.refs.get("refs/tags/v1"), Some(&c1));
    assert!(
        !second.refs.contains_key("refs/heads/feature"),
        "deleted branch pruned: {second:?}"
    );
    assert!(
        second.bytes_received > 0 && second.bytes_received < first.bytes_received / 10,
        "incremental {} vs first {}",
        second.bytes_received,
        first.bytes_received
    );
    assert_eq!(cache.resolve("sample", "main").unwrap().id, c2);
    assert!(matches!(
        cache.resolve("sample", "feature"),
        Err(Error::UnknownRevision { .. })
    ));

    let third = cache.fetch("sample", spec, &|_| {}).expect("no-op fetch");
    assert_eq!(third.bytes_received, 0);
    assert_eq!(third.refs, second.refs);
    eprintln!(
        "{label}: first fetch {first_time:?} ({} bytes), incremental {second_time:?} ({} bytes)",
        first.bytes_received, second.bytes_received
    );
}

#[test]
fn file_url_first_and_incremental_fetch() {
    init();
    let base = TempDir::new().unwrap();
    let spec =
        RepoSpec::new(format!("file://{}/sample.git", base.path().display())).tracking(TRACKED);
    first_and_incremental("file://", base.path(), &spec);
}

#[test]
fn git_daemon_first_and_incremental_fetch() {
    init();
    let base = TempDir::new().unwrap();
    let daemon = GitDaemon::start(base.path());
    let spec = RepoSpec::new(daemon.url("sample.git")).tracking(TRACKED);
    first_and_incremental("git://", base.path(), &spec);
}

fn https_spec(server: &GitHttpServer, repo: &str, password: &str) -> RepoSpec {
    RepoSpec {
        url: server.url(repo),
        credentials: Some(Credentials {
            username: USER.to_owned(),
            password: password.to_owned(),
        }),
        ca_file: Some(server.ca_pem_path()),
        ..RepoSpec::new(server.url(repo)).tracking(TRACKED)
    }
}

#[test]
fn https_basic_auth_private_ca_first_and_incremental_fetch() {
    init();
    let base = TempDir::new().unwrap();
    let server = GitHttpServer::start(base.path(), Some((USER, PASS)));
    let spec = https_spec(&server, "sample.git", PASS);
    let r = std::panic::catch_unwind(|| first_and_incremental("https", base.path(), &spec));
    if let Err(e) = r {
        eprintln!("lighttpd logs:\n{}", server.logs());
        std::panic::resume_unwind(e);
    }
}

#[test]
fn https_errors_are_actionable() {
    init();
    let base = TempDir::new().unwrap();
    sample_repo(base.path(), "sample");
    let server = GitHttpServer::start(base.path(), Some((USER, PASS)));
    let data = TempDir::new().unwrap();
    let cache = GitCache::new(data.path().join("repos"));

    let err = cache
        .fetch("wrong", &https_spec(&server, "sample.git", "nope"), &|_| {})
        .unwrap_err();
    assert!(
        matches!(err, Error::AuthenticationFailed { .. }),
        "wrong password: {err:?}"
    );
    assert!(err.to_string().contains("authentication failed"), "{err}");
    assert!(!data.path().join("repos/wrong.git").exists());

    let mut anonymous = https_spec(&server, "sample.git", PASS);
    anonymous.credentials = None;
    let err = cache.fetch("anon", &anonymous, &|_| {}).unwrap_err();
    assert!(
        matches!(err, Error::AuthenticationRequired { .. }),
        "no credentials: {err:?}"
    );

    let mut untrusted = https_spec(&server, "sample.git", PASS);
    untrusted.ca_file = None;
    let err = cache.fetch("untrusted", &untrusted, &|_| {}).unwrap_err();
    assert!(
        matches!(err, Error::TlsUntrusted { .. }),
        "no CA file: {err:?}"
    );
    assert!(err.to_string().contains("ca_file"), "{err}");

    let err = cache
        .fetch(
            "missing",
            &https_spec(&server, "nothing.git", PASS),
            &|_| {},
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::RepositoryNotFound { .. }),
        "missing repository: {err:?}"
    );

    let mut bad_ca = https_spec(&server, "sample.git", PASS);
    bad_ca.ca_file = Some(data.path().join("no-such-ca.pem"));
    let err = cache.fetch("badca", &bad_ca, &|_| {}).unwrap_err();
    assert!(matches!(err, Error::CaFile { .. }), "{err:?}");
}

#[test]
fn unreachable_and_missing_repositories() {
    init();
    let base = TempDir::new().unwrap();
    sample_repo(base.path(), "sample");
    let data = TempDir::new().unwrap();
    let cache = GitCache::new(data.path().join("repos"));

    let mut daemon = GitDaemon::start(base.path());
    let err = cache
        .fetch(
            "gone",
            &RepoSpec::new(daemon.url("nothing.git")).tracking(TRACKED),
            &|_| {},
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::RepositoryNotFound { .. }),
        "git daemon, missing repository: {err:?}"
    );
    let url = daemon.url("sample.git");
    daemon.stop();
    let err = cache
        .fetch("down", &RepoSpec::new(url).tracking(TRACKED), &|_| {})
        .unwrap_err();
    assert!(
        matches!(err, Error::Unreachable { .. }),
        "stopped daemon: {err:?}"
    );
    assert!(err.to_string().starts_with("cannot reach"), "{err}");

    let port = switchyard_tests::git_server::free_port();
    let err = cache
        .fetch(
            "down",
            &RepoSpec::new(format!("https://127.0.0.1:{port}/git/x.git")).tracking(TRACKED),
            &|_| {},
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::Unreachable { .. }),
        "nothing listening: {err:?}"
    );

    let err = cache
        .fetch(
            "nofile",
            &RepoSpec::new(format!("file://{}/nothing.git", base.path().display()))
                .tracking(TRACKED),
            &|_| {},
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::RepositoryNotFound { .. }),
        "file://, missing repository: {err:?}"
    );

    let err = cache
        .fetch(
            "../escape",
            &RepoSpec::new("file:///x").tracking(TRACKED),
            &|_| {},
        )
        .unwrap_err();
    assert!(matches!(err, Error::InvalidName(_)), "{err:?}");
}

/// A cache with the sample repository fetched over file://.
fn fetched() -> (TempDir, TempDir, GitRepoBuilder, GitCache, String) {
    init();
    let base = TempDir::new().unwrap();
    let (b, c1) = sample_repo(base.path(), "sample");
    let data = TempDir::new().unwrap();
    let cache = GitCache::new(data.path().join("repos"));
    let spec =
        RepoSpec::new(format!("file://{}/sample.git", base.path().display())).tracking(TRACKED);
    cache.fetch("sample", &spec, &|_| {}).expect("fetch");
    (base, data, b, cache, c1)
}

#[test]
fn resolve_branches_tags_and_shas() {
    let (base, _data, b, cache, c1) = fetched();
    b.write("x", "x");
    let c2 = b.commit("second");
    b.publish(base.path(), "sample");
    let spec =
        RepoSpec::new(format!("file://{}/sample.git", base.path().display())).tracking(TRACKED);
    cache.fetch("sample", &spec, &|_| {}).unwrap();

    let main = cache.resolve("sample", "main").unwrap();
    assert_eq!(main.id, c2);
    assert_eq!(main.summary, "second");
    assert_eq!(main.author_name, "Switchyard Test");
    assert_eq!(main.author_email, "test@switchyard.invalid");
    assert_eq!(main.time, 1_700_000_060);
    assert_eq!(cache.resolve("sample", "refs/heads/main").unwrap().id, c2);
    assert_eq!(cache.resolve("sample", "feature").unwrap().id, c1);
    assert_eq!(
        cache.resolve("sample", "v1").unwrap().id,
        c1,
        "annotated tag"
    );
    assert_eq!(cache.resolve("sample", "light").unwrap().id, c1);
    assert_eq!(cache.resolve("sample", &c1).unwrap().id, c1, "full sha");
    assert_eq!(
        cache.resolve("sample", &c1[..7]).unwrap().id,
        c1,
        "short sha"
    );
    assert_eq!(
        cache.resolve("sample", &c1[..7].to_uppercase()).unwrap().id,
        c1
    );

    for unknown in [
        "nope",
        "0000000",
        &"0".repeat(40),
        "",
        "main..feature",
        "v1^{tree}",
    ] {
        let err = cache.resolve("sample", unknown).unwrap_err();
        assert!(
            matches!(err, Error::UnknownRevision { .. }),
            "{unknown:?}: {err:?}"
        );
        assert!(err.to_string().contains("unknown revision"), "{err}");
    }
    // A tree's sha is not a revision.
    let tree = b.git(&["rev-parse", "HEAD^{tree}"]);
    assert!(matches!(
        cache.resolve("sample", &tree),
        Err(Error::UnknownRevision { .. })
    ));
    assert!(matches!(
        cache.resolve("never-fetched", "main"),
        Err(Error::NotFetched(_))
    ));
}

#[test]
fn log_is_newest_first_and_bounded() {
    let (base, _data, b, cache, c1) = fetched();
    let mut ids = vec![c1];
    for i in 2..=5 {
        b.write("counter", i.to_string());
        ids.push(b.commit(&format!("commit {i}")));
    }
    b.publish(base.path(), "sample");
    let spec =
        RepoSpec::new(format!("file://{}/sample.git", base.path().display())).tracking(TRACKED);
    cache.fetch("sample", &spec, &|_| {}).unwrap();

    let log = cache.log("sample", "main", 100).unwrap();
    let got: Vec<&str> = log.iter().map(|c| c.id.as_str()).collect();
    let want: Vec<&str> = ids.iter().rev().map(String::as_str).collect();
    assert_eq!(got, want);
    assert_eq!(log[0].summary, "commit 5");
    assert!(log.windows(2).all(|w| w[0].time >= w[1].time));

    let log = cache.log("sample", "main", 2).unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(log[1].id, ids[3]);
    let log = cache.log("sample", "v1", 10).unwrap();
    assert_eq!(log.len(), 1);
    assert!(matches!(
        cache.log("sample", "nope", 10),
        Err(Error::UnknownRevision { .. })
    ));
}

#[test]
fn read_dir_returns_nested_files_with_relative_paths() {
    let (_base, _data, _b, cache, c1) = fetched();
    let limits = TreeLimits::default();
    for path in ["apps/web", "apps/web/", "./apps/web", "apps//web"] {
        let files = cache.read_dir("sample", &c1, path, &limits).unwrap();
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "chain-link.yaml",
                "config/nested/values.yaml",
                "deploy.yaml",
                "run.sh",
                "values-link.yaml"
            ],
            "{path}"
        );
        let by = |p: &str| files.iter().find(|f| f.path == p).unwrap();
        assert_eq!(by("deploy.yaml").data, b"kind: Deployment\n");
        assert!(by("run.sh").executable);
        assert!(!by("deploy.yaml").executable);
        // Symlinks inside the path resolve to their target's content.
        assert_eq!(by("values-link.yaml").data, b"replicas: 2\n");
        assert_eq!(by("chain-link.yaml").data, b"replicas: 2\n");
    }
    // Revisions work too.
    let files = cache
        .read_dir("sample", "v1", "apps/web/config", &limits)
        .unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].path, "nested/values.yaml");
}

#[test]
fn read_dir_refuses_escapes_and_bad_paths() {
    let (_base, _data, _b, cache, c1) = fetched();
    let limits = TreeLimits::default();

    // The whole repository contains escaping links, so "" fails on one.
    let err = cache.read_dir("sample", &c1, "", &limits).unwrap_err();
    assert!(matches!(err, Error::SymlinkEscapes { .. }), "{err:?}");
    let err = cache
        .read_dir("sample", &c1, "apps/evil", &limits)
        .unwrap_err();
    assert!(matches!(err, Error::SymlinkEscapes { .. }), "{err:?}");
    assert!(err.to_string().contains("apps/evil/escape"), "{err}");
    let err = cache
        .read_dir("sample", &c1, "apps/abs", &limits)
        .unwrap_err();
    assert!(matches!(err, Error::SymlinkEscapes { .. }), "{err:?}");
    assert!(err.to_string().contains("/etc/passwd"), "{err}");
    // A link from a subdirectory to a sibling of the base is an escape.
    let err = cache
        .read_dir("sample", &c1, "apps/web/config", &limits)
        .map(|f| f.len());
    assert_eq!(err.unwrap(), 1);

    for bad in ["../x", "apps/../README.md", "/apps", "apps/web/.."] {
        let err = cache.read_dir("sample", &c1, bad, &limits).unwrap_err();
        assert!(matches!(err, Error::InvalidPath { .. }), "{bad}: {err:?}");
    }
    let err = cache
        .read_dir("sample", &c1, "apps/nope", &limits)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("path apps/nope not found at commit {c1}")
    );
    let err = cache
        .read_dir("sample", &c1, "README.md", &limits)
        .unwrap_err();
    assert!(matches!(err, Error::NotADirectory { .. }), "{err:?}");
    let err = cache
        .read_dir("sample", "nope", "apps/web", &limits)
        .unwrap_err();
    assert!(matches!(err, Error::UnknownRevision { .. }), "{err:?}");
}

#[test]
fn read_dir_enforces_limits_naming_the_file() {
    let (_base, _data, _b, cache, c1) = fetched();
    let limits = TreeLimits {
        max_file_bytes: 100 * 1024,
        ..TreeLimits::default()
    };
    // big.bin is 200 KiB; a-small.txt comes first and fits.
    let err = cache.read_dir("sample", &c1, "data", &limits).unwrap_err();
    assert!(matches!(err, Error::FileTooLarge { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("data/big.bin") && msg.contains("102400"),
        "{msg}"
    );
    let files = cache.read_dir("sample", &c1, "apps/web", &limits).unwrap();
    assert_eq!(files.len(), 5);

    let limits = TreeLimits {
        max_files: 3,
        ..TreeLimits::default()
    };
    let err = cache
        .read_dir("sample", &c1, "apps/web", &limits)
        .unwrap_err();
    assert!(
        matches!(err, Error::TooManyFiles { limit: 3, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("apps/web/"), "{err}");

    let limits = TreeLimits {
        max_total_bytes: 40,
        ..TreeLimits::default()
    };
    let err = cache
        .read_dir("sample", &c1, "apps/web", &limits)
        .unwrap_err();
    assert!(
        matches!(err, Error::TotalTooLarge { limit: 40, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("apps/web/"), "{err}");
}

#[test]
fn read_dir_refuses_submodules_and_remove_forgets() {
    let (base, _data, b, cache, c1) = fetched();
    b.git(&[
        "update-index",
        "--add",
        "--cacheinfo",
        &format!("160000,{c1},apps/web/vendored"),
    ]);
    // Not `commit()`, whose `git add -A` would drop the gitlink.
    b.git(&["commit", "-q", "-m", "add a submodule"]);
    let c2 = b.head();
    b.publish(base.path(), "sample");
    let spec =
        RepoSpec::new(format!("file://{}/sample.git", base.path().display())).tracking(TRACKED);
    cache.fetch("sample", &spec, &|_| {}).unwrap();
    let err = cache
        .read_dir("sample", &c2, "apps/web", &TreeLimits::default())
        .unwrap_err();
    assert!(matches!(err, Error::Submodule { .. }), "{err:?}");
    assert!(err.to_string().contains("apps/web/vendored"), "{err}");

    cache.remove("sample").unwrap();
    cache.remove("sample").unwrap();
    assert!(matches!(
        cache.resolve("sample", "main"),
        Err(Error::NotFetched(_))
    ));
}

/// A "tree bomb": directories of directories, no files, each level ten
/// references to the level below (10^6 entries unbounded).
#[test]
fn read_dir_stops_at_tree_bombs() {
    let (base, _data, b, cache, _c1) = fetched();
    let scratch = TempDir::new().unwrap();
    let hash_tree = |bytes: &[u8]| {
        let p = scratch.path().join("tree");
        std::fs::write(&p, bytes).unwrap();
        b.git(&["hash-object", "-w", "-t", "tree", p.to_str().unwrap()])
    };
    let mut tree = hash_tree(b"");
    for _ in 0..6 {
        let raw: Vec<u8> = (0..10u8)
            .flat_map(|i| {
                let mut e = format!("40000 d{i}\0").into_bytes();
                e.extend((0..20).map(|j| u8::from_str_radix(&tree[2 * j..2 * j + 2], 16).unwrap()));
                e
            })
            .collect();
        tree = hash_tree(&raw);
    }
    let bomb = b.git(&["commit-tree", &tree, "-m", "bomb"]);
    b.git(&["update-ref", "refs/heads/bomb", &bomb]);
    b.publish(base.path(), "sample");
    let spec = RepoSpec::new(format!("file://{}/sample.git", base.path().display()))
        .tracking(["main", "bomb"]);
    cache.fetch("sample", &spec, &|_| {}).unwrap();

    let started = Instant::now();
    let err = cache
        .read_dir("sample", "bomb", "", &TreeLimits::default())
        .unwrap_err();
    assert!(matches!(err, Error::TooManyEntries { .. }), "{err:?}");
    assert!(started.elapsed().as_secs() < 10);
}

/// An empty remote fetches to no refs; a leftover half-made first fetch (a
/// crash) is discarded and redone.
#[test]
fn empty_remote_and_leftover_partial_fetch() {
    init();
    let base = TempDir::new().unwrap();
    let b = GitRepoBuilder::new();
    let bare = base.path().join("empty.git");
    std::fs::create_dir_all(&bare).unwrap();
    b.git(&["init", "-q", "--bare", bare.to_str().unwrap()]);
    let data = TempDir::new().unwrap();
    let cache = GitCache::new(data.path().join("repos"));
    let spec = RepoSpec::new(format!("file://{}", bare.display())).tracking(TRACKED);
    let r = cache.fetch("empty", &spec, &|_| {}).expect("fetch empty");
    assert!(r.refs.is_empty(), "{r:?}");
    assert_eq!(r.bytes_received, 0);

    let (_b, c1) = sample_repo(base.path(), "sample");
    let partial = data.path().join("repos/sample.git.partial");
    std::fs::create_dir_all(partial.join("objects")).unwrap();
    std::fs::write(partial.join("HEAD"), "garbage").unwrap();
    let spec =
        RepoSpec::new(format!("file://{}/sample.git", base.path().display())).tracking(TRACKED);
    let r = cache
        .fetch("sample", &spec, &|_| {})
        .expect("fetch over leftovers");
    assert_eq!(r.refs.get("refs/heads/main"), Some(&c1));
    assert!(!partial.exists());
}

/// Only the tracked branches and tags reach the hub: a branch nobody
/// follows, and the commits only it has, are never fetched, and a ref that
/// stops being tracked is pruned.
#[test]
fn only_tracked_refs_are_mirrored() {
    init();
    let base = TempDir::new().unwrap();
    let (b, c1) = sample_repo(base.path(), "sample");
    b.checkout("feature");
    b.write("unreviewed.yaml", "kind: Secret\n");
    let unreviewed = b.commit("not reviewed");
    b.checkout("main");
    b.publish(base.path(), "sample");
    let data = TempDir::new().unwrap();
    let cache = GitCache::new(data.path().join("repos"));
    let url = format!("file://{}/sample.git", base.path().display());

    let r = cache
        .fetch(
            "sample",
            &RepoSpec::new(&url).tracking(["main", "v1"]),
            &|_| {},
        )
        .unwrap();
    let names: Vec<&str> = r.refs.keys().map(String::as_str).collect();
    assert_eq!(names, ["refs/heads/main", "refs/tags/v1"], "{r:?}");
    for absent in ["feature", "light", unreviewed.as_str(), &unreviewed[..8]] {
        assert!(
            matches!(
                cache.resolve("sample", absent),
                Err(Error::UnknownRevision { .. })
            ),
            "{absent} was mirrored"
        );
    }
    assert_eq!(cache.resolve("sample", "v1").unwrap().id, c1);

    // A commit pin fetches nothing itself; the tag stops being tracked and goes.
    let r = cache
        .fetch(
            "sample",
            &RepoSpec::new(&url).tracking(["main", &c1]),
            &|_| {},
        )
        .unwrap();
    assert_eq!(r.refs.keys().collect::<Vec<_>>(), ["refs/heads/main"]);
    assert_eq!(cache.resolve("sample", &c1).unwrap().id, c1);

    // Tracking nothing fetches nothing.
    let err = cache
        .fetch("sample", &RepoSpec::new(url), &|_| {})
        .unwrap_err();
    assert!(err.to_string().contains("nothing to fetch"), "{err}");
}

/// History reachability, for `app sync --revision`.
#[test]
fn ancestry_follows_history_not_branches() {
    let (base, _data, b, cache, c1) = fetched();
    b.write("x", "x");
    let c2 = b.commit("second");
    b.checkout("feature");
    b.write("y", "y");
    let side = b.commit("side");
    b.checkout("main");
    b.publish(base.path(), "sample");
    let spec =
        RepoSpec::new(format!("file://{}/sample.git", base.path().display())).tracking(TRACKED);
    cache.fetch("sample", &spec, &|_| {}).unwrap();
    assert!(cache.is_ancestor("sample", &c1, "main").unwrap());
    assert!(cache.is_ancestor("sample", &c2, "main").unwrap());
    assert!(cache.is_ancestor("sample", "v1", "main").unwrap());
    assert!(!cache.is_ancestor("sample", &side, "main").unwrap());
    assert!(!cache.is_ancestor("sample", &c2, "v1").unwrap());
    assert!(cache.is_ancestor("sample", &c1, "feature").unwrap());
}

/// A pack over a limit is stopped while it arrives, with an error naming
/// the limit and its flag; the repository keeps its previous refs and
/// objects. Over file:// and git://.
fn limits_stop_fetches(label: &str, base: &Path, url: &str) {
    let (b, c1) = sample_repo(base, "sample");
    let data = TempDir::new().unwrap();
    let cache = GitCache::new(data.path().join("repos"));
    let spec = |limits: FetchLimits| RepoSpec {
        limits,
        ..RepoSpec::new(url).tracking(["main"])
    };
    let defaults = FetchLimits::default();

    // The first fetch, over the pack limit: nothing is left behind.
    let small = FetchLimits {
        max_pack_bytes: 100 * 1024,
        ..defaults
    };
    let err = cache.fetch("sample", &spec(small), &|_| {}).unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooLarge {
                flag: "max-pack-bytes",
                ..
            }
        ),
        "{label}: {err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("--git-max-pack-bytes") && text.contains("102400"),
        "{label}: {text}"
    );
    assert!(!data.path().join("repos/sample.git").exists());
    assert!(matches!(
        cache.resolve("sample", "main"),
        Err(Error::NotFetched(_))
    ));

    let r = cache.fetch("sample", &spec(defaults), &|_| {}).unwrap();
    assert_eq!(r.refs.get("refs/heads/main"), Some(&c1));

    // A later commit too large: the previous state stays.
    b.write("data/bigger.bin", noise(300 * 1024));
    b.commit("too big");
    b.publish(base, "sample");
    let err = cache.fetch("sample", &spec(small), &|_| {}).unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{label}: {err:?}");
    assert!(
        err.to_string().contains("the previous fetch is kept"),
        "{err}"
    );
    assert_eq!(cache.resolve("sample", "main").unwrap().id, c1, "{label}");

    // Too many objects, announced by the pack's header.
    let few = FetchLimits {
        max_objects: 2,
        ..defaults
    };
    let err = cache.fetch("sample", &spec(few), &|_| {}).unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooLarge {
                flag: "max-objects",
                ..
            }
        ),
        "{label}: {err:?}"
    );
    assert!(err.to_string().contains("--git-max-objects"), "{err}");
    assert_eq!(cache.resolve("sample", "main").unwrap().id, c1, "{label}");

    // One object too large to decode.
    let tiny_objects = FetchLimits {
        max_object_bytes: 64 * 1024,
        ..defaults
    };
    let err = cache
        .fetch("sample", &spec(tiny_objects), &|_| {})
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooLarge {
                flag: "max-object-bytes",
                ..
            }
        ),
        "{label}: {err:?}"
    );
    assert_eq!(cache.resolve("sample", "main").unwrap().id, c1, "{label}");

    // Within the limits, the same fetch goes through.
    let r = cache.fetch("sample", &spec(defaults), &|_| {}).unwrap();
    assert_ne!(r.refs.get("refs/heads/main"), Some(&c1), "{label}");
}

#[test]
fn file_url_fetches_stop_at_their_limits() {
    init();
    let base = TempDir::new().unwrap();
    let url = format!("file://{}/sample.git", base.path().display());
    limits_stop_fetches("file://", base.path(), &url);
}

#[test]
fn git_daemon_fetches_stop_at_their_limits() {
    init();
    let base = TempDir::new().unwrap();
    let daemon = GitDaemon::start(base.path());
    limits_stop_fetches("git://", base.path(), &daemon.url("sample.git"));
}
