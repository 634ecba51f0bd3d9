//! The plugin renderer: any program, started without a shell in a private copy of the app's files, printing YAML or JSON.

use super::process::{find_program, run};
use super::yaml::{Sourced, parse_objects};
use super::{RenderError, RenderOptions, write_tree};
use crate::tree::TreeFile;
use std::process::Command;

pub(super) fn render(
    command: &str,
    files: &[TreeFile],
    options: &RenderOptions,
) -> Result<Vec<Sourced>, RenderError> {
    let mut words = command.split_whitespace();
    let program = words.next().ok_or(RenderError::EmptyCommand)?;
    let path = std::env::var_os("PATH");
    // Resolved on the hub's PATH before the environment is cleared, and
    // never relative to the app's files (a repository cannot ship the
    // program the hub runs, only its inputs).
    let resolved = if program.contains('/') && !program.starts_with('/') {
        None
    } else {
        find_program(program, path.as_deref())
    }
    .ok_or_else(|| RenderError::ProgramNotFound(program.to_owned()))?;
    let dir = write_tree(files)?;
    let mut cmd = Command::new(&resolved);
    cmd.args(words)
        .current_dir(dir.path())
        .env_clear()
        .env("SWITCHYARD_APP_PATH", dir.path());
    for key in ["PATH", "HOME"] {
        if let Some(v) = std::env::var_os(key) {
            cmd.env(key, v);
        }
    }
    let output = run(cmd, program, options.limits.max_rendered_bytes)?;
    parse_objects("plugin output", &output.stdout, true)
}
