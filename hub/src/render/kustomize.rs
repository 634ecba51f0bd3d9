//! The kustomize renderer: `kubectl kustomize` (or `kustomize build`) over the app's files in a private temporary directory, placed at the app's path among the other files of its repository the kustomizations name (bases, components), so `overlays/prod` over `../../base` builds as it does in a checkout.

use super::process::{find_program, run};
use super::yaml::{Sourced, parse_objects};
use super::{RenderError, RenderOptions, safe_relative, write_tree};
use crate::tree::TreeFile;
use std::ffi::OsStr;
use std::process::Command;

pub(super) fn render(
    files: &[TreeFile],
    options: &RenderOptions,
) -> Result<Vec<Sourced>, RenderError> {
    let path = std::env::var_os("PATH");
    render_with_path(files, options, path.as_deref())
}

/// `render` with the PATH to search given, so tests need not change the
/// process environment.
pub(super) fn render_with_path(
    files: &[TreeFile],
    options: &RenderOptions,
    path: Option<&OsStr>,
) -> Result<Vec<Sourced>, RenderError> {
    // kubectl embeds kustomize and is what most hubs already have.
    let (program, args): (_, &[&str]) = if let Some(p) = find_program("kubectl", path) {
        (p, &["kustomize"])
    } else if let Some(p) = find_program("kustomize", path) {
        (p, &["build"])
    } else {
        return Err(RenderError::KustomizeMissing);
    };
    // The repository's files first, the app's own at its path over them.
    let app = match options.repo.app_path.as_str() {
        "" | "." => std::path::PathBuf::new(),
        path => safe_relative(path)?,
    };
    let mut tree: Vec<TreeFile> = options.repo.files.clone();
    tree.extend(files.iter().map(|f| TreeFile {
        path: app.join(&f.path).to_string_lossy().into_owned(),
        data: f.data.clone(),
        executable: f.executable,
    }));
    let dir = write_tree(&tree)?;
    let root = dir.path().join(&app);
    std::fs::create_dir_all(&root).map_err(|source| RenderError::Io {
        context: format!("creating {}", root.display()),
        source,
    })?;
    let name = program.file_name().map_or_else(
        || "kustomize".to_owned(),
        |n| n.to_string_lossy().into_owned(),
    );
    let mut command = Command::new(&program);
    command
        .args(args)
        .arg(&root)
        .current_dir(&root)
        // Nothing of the hub's environment (credentials included) reaches
        // kustomize's generators, plugins or remote-base fetches.
        .env_clear()
        .env("HOME", dir.path());
    if let Some(path) = path {
        command.env("PATH", path);
    }
    let output = run(
        command,
        &format!("{name} {}", args.join(" ")),
        options.limits.max_rendered_bytes,
    )?;
    parse_objects("kustomize output", &output.stdout, true)
}
