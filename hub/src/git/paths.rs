//! Pure path helpers: repository names, the directory asked for, tree entry
//! names, symlink targets, and credentials written into a URL.

use super::{Error, Result};

/// A repository name becomes a directory name: keep it boring. New names
/// follow the stricter DNS-label rule (`switchyard_common::validate_name`,
/// checked where repos are created); this only keeps the directory safe, so a
/// repo stored before that rule (`Bad_Name`) can still be fetched, shown and
/// deleted.
pub(super) fn validate_repo_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidName(name.to_owned()))
    }
}

/// The user information of `url` (`user` or `user:password` before the
/// host), if it has any.
fn userinfo(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    authority.rsplit_once('@').map(|(info, _)| info)
}

/// Whether `url` carries a secret: a password, or for anything but
/// `ssh://` a user name at all (forges take a token as the user name:
/// `https://<token>@host/…`). An `ssh://git@host/…` user is not a secret:
/// SSH needs it and authenticates with keys.
pub fn carries_credentials(url: &str) -> bool {
    match userinfo(url) {
        None => false,
        Some(info) => info.contains(':') || !url.trim_start().starts_with("ssh://"),
    }
}

/// `url` with its credentials, if it carries any (see
/// [`carries_credentials`]), replaced by `***`: fit for logs, answers and
/// exports.
pub fn redact_url(url: &str) -> String {
    if !carries_credentials(url) {
        return url.to_owned();
    }
    match (url.split_once("://"), userinfo(url)) {
        (Some((scheme, rest)), Some(info)) => {
            format!("{scheme}://***{}", &rest[info.len()..])
        }
        _ => url.to_owned(),
    }
}

/// The components of the directory `path` inside the repository: "" and "."
/// are the root, "a/./b/" is `["a", "b"]`. Absolute paths, `..`, backslashes
/// and NUL are refused.
pub(super) fn normalize_dir(path: &str) -> Result<Vec<String>> {
    let invalid = |reason: &str| Error::InvalidPath {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    if path.starts_with('/') {
        return Err(invalid("must be relative to the repository root"));
    }
    if path.contains('\\') || path.contains('\0') {
        return Err(invalid("must not contain '\\' or NUL"));
    }
    let mut out = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(invalid("must not contain '..'")),
            p => out.push(p.to_owned()),
        }
    }
    Ok(out)
}

/// A tree entry name as found in a (possibly hostile) tree object.
pub(super) fn entry_name(raw: &[u8]) -> Option<&str> {
    let name = std::str::from_utf8(raw).ok()?;
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.contains('/')
        || name.contains('\\')
        || name.contains('\0');
    (!bad).then_some(name)
}

/// Where a symlink at `link` (components relative to the base directory)
/// with `target` points, as components relative to the base directory, or
/// `None` if it leaves the base directory (absolute, or too many `..`).
pub(super) fn resolve_link(link: &[String], target: &str) -> Option<Vec<String>> {
    if target.starts_with('/') || target.contains('\\') || target.contains('\0') {
        return None;
    }
    // Start from the link's parent directory.
    let mut out: Vec<String> = link[..link.len().saturating_sub(1)].to_vec();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            p => out.push(p.to_owned()),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn repo_names() {
        for ok in ["a", "apps", "team-a.config_1", "A9"] {
            validate_repo_name(ok).unwrap();
        }
        for bad in ["", ".", "..", ".hidden", "a/b", "a b", "é", "../x", "a\\b"] {
            let e = validate_repo_name(bad).unwrap_err();
            assert!(e.to_string().starts_with("invalid repository name"), "{e}");
        }
    }

    #[test]
    fn credentials_in_urls_are_found_and_redacted() {
        for (url, carries, shown) in [
            (
                "https://user:tok@git.example.com/a.git",
                true,
                "https://***@git.example.com/a.git",
            ),
            (
                "https://ghp_token@github.com/o/r.git",
                true,
                "https://***@github.com/o/r.git",
            ),
            ("http://u:p@h:8080/r", true, "http://***@h:8080/r"),
            ("git://u@h/r.git", true, "git://***@h/r.git"),
            ("ssh://git@h/r.git", false, "ssh://git@h/r.git"),
            ("ssh://git:pw@h/r.git", true, "ssh://***@h/r.git"),
            (
                "https://h/path/with@sign.git",
                false,
                "https://h/path/with@sign.git",
            ),
            ("https://h/r.git", false, "https://h/r.git"),
            ("file:///srv/r.git", false, "file:///srv/r.git"),
            // The last '@' ends the user information; '@' in a password is legal.
            ("https://u:p@ss@h/r", true, "https://***@h/r"),
        ] {
            assert_eq!(carries_credentials(url), carries, "{url}");
            assert_eq!(redact_url(url), shown, "{url}");
            assert!(!redact_url(url).contains("tok"), "{url}");
        }
    }

    #[test]
    fn dir_normalization() {
        assert_eq!(normalize_dir("").unwrap(), v(&[]));
        assert_eq!(normalize_dir(".").unwrap(), v(&[]));
        assert_eq!(normalize_dir("./").unwrap(), v(&[]));
        assert_eq!(normalize_dir("apps/web").unwrap(), v(&["apps", "web"]));
        assert_eq!(normalize_dir("apps//./web/").unwrap(), v(&["apps", "web"]));
        for bad in ["/etc", "..", "a/../b", "a/..", "a\\b", "a\0"] {
            let e = normalize_dir(bad).unwrap_err();
            assert!(e.to_string().starts_with("invalid path"), "{bad}: {e}");
        }
        assert!(
            normalize_dir("a/../b")
                .unwrap_err()
                .to_string()
                .contains("'..'")
        );
    }

    #[test]
    fn entry_names() {
        assert_eq!(entry_name(b"deploy.yaml"), Some("deploy.yaml"));
        assert_eq!(entry_name(b".hidden"), Some(".hidden"));
        for bad in [&b""[..], b".", b"..", b"a/b", b"a\\b", b"\xff", b"a\0"] {
            assert_eq!(entry_name(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn link_resolution() {
        // base/x/link -> y  ==> x/y
        assert_eq!(resolve_link(&v(&["x", "link"]), "y"), Some(v(&["x", "y"])));
        assert_eq!(
            resolve_link(&v(&["x", "link"]), "../y/./z"),
            Some(v(&["y", "z"]))
        );
        assert_eq!(resolve_link(&v(&["link"]), "a//b/"), Some(v(&["a", "b"])));
        // Leaving the base directory, even to come back, is refused.
        assert_eq!(resolve_link(&v(&["link"]), "../base/a"), None);
        assert_eq!(resolve_link(&v(&["x", "link"]), "../../a"), None);
        assert_eq!(resolve_link(&v(&["link"]), "/etc/passwd"), None);
        // Pointing at the base directory itself stays inside (a directory).
        assert_eq!(resolve_link(&v(&["x", "link"]), ".."), Some(v(&[])));
    }
}
