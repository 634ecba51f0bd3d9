//! The kustomize renderer: `kubectl kustomize` (or `kustomize build`) over the app's files in a private temporary directory.

use super::process::{find_program, run};
use super::yaml::{Sourced, parse_objects};
use super::{RenderError, RenderOptions, write_tree};
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
    let dir = write_tree(files)?;
    let name = program.file_name().map_or_else(
        || "kustomize".to_owned(),
        |n| n.to_string_lossy().into_owned(),
    );
    let mut command = Command::new(&program);
    command
        .args(args)
        .arg(dir.path())
        .current_dir(dir.path())
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
