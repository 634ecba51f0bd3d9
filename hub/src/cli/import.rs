//! `switchyard import argocd -f FILE|DIR|-`: Argo CD manifests read from files (a directory recursively; a directory holding a `Chart.yaml`, such as an app-of-apps chart, rendered with its values first), translated by `switchyard_hub::declarative::argocd`, and printed as documents `apply` takes or applied at once.

use super::Target;
use super::declare;
use anyhow::{Context, bail};
use std::io::Read;
use std::path::{Path, PathBuf};
use switchyard_hub::declarative::argocd::{self, Checkout};
use switchyard_hub::render::{HelmInput, RenderOptions, RendererKind};
use switchyard_hub::tree::TreeFile;

/// Most files a directory given to `-f` or `--checkout` may hold: a
/// repository of manifests, not a disk.
const MAX_FILES: usize = 100_000;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum ImportCommand {
    /// Argo CD Application and ApplicationSet manifests as Repo, App and
    /// ClusterGroup documents (printed, or applied with --apply).
    Argocd {
        /// File, directory (recursively: its *.yaml, *.yml and *.json
        /// files; one holding a Chart.yaml is rendered with its values, as
        /// an app-of-apps chart) or - for stdin (repeatable).
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<String>,
        /// A checkout of the repository the apps deploy from: picks each
        /// app's renderer as Argo CD does (Chart.yaml: helm, a
        /// kustomization: kustomize, else directory) and expands Git
        /// generators.
        #[arg(long, value_name = "DIR")]
        checkout: Option<PathBuf>,
        /// Create or update the documents on the hub (as `apply -f`).
        #[arg(long)]
        apply: bool,
        /// With --apply: check everything and print what would change.
        #[arg(long, requires = "apply")]
        dry_run: bool,
        #[command(flatten)]
        target: Target,
    },
}

/// Every file under `dir` (relative, `/`-separated, sorted), `.git` left
/// out, at most [`MAX_FILES`].
fn walk(dir: &Path) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let (mut files, mut dirs) = (Vec::new(), Vec::new());
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let entries = std::fs::read_dir(dir.join(&rel))
            .with_context(|| format!("reading directory {}", dir.join(&rel).display()))?;
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            if name == ".git" {
                continue;
            }
            let path = rel.join(&name);
            let text = path.to_string_lossy().replace('\\', "/");
            // Symlinks are not followed: a link out of the tree is not read.
            let kind = entry.file_type()?;
            if kind.is_dir() {
                dirs.push(text);
                stack.push(path);
            } else if kind.is_file() {
                files.push(text);
            }
            if files.len() + dirs.len() > MAX_FILES {
                bail!("{} holds more than {MAX_FILES} entries", dir.display());
            }
        }
    }
    files.sort();
    dirs.sort();
    Ok((files, dirs))
}

/// A checkout on disk.
struct DiskCheckout {
    root: PathBuf,
    files: Vec<String>,
    dirs: Vec<String>,
}

impl Checkout for DiskCheckout {
    fn has_file(&self, path: &str) -> bool {
        self.files.binary_search(&path.to_owned()).is_ok()
    }
    fn directories(&self) -> Vec<String> {
        self.dirs.clone()
    }
    fn files(&self) -> Vec<String> {
        self.files.clone()
    }
    fn read(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(self.root.join(path)).ok()
    }
}

/// The objects of the chart in `dir`, rendered with its own values (the
/// way an app-of-apps chart is), as one JSON list.
fn render_chart(dir: &Path, files: &[String]) -> anyhow::Result<String> {
    let mut tree = Vec::new();
    for f in files {
        let data = std::fs::read(dir.join(f)).with_context(|| format!("reading {f}"))?;
        tree.push(TreeFile {
            path: f.clone(),
            data,
            executable: false,
        });
    }
    let release = dir
        .file_name()
        .map_or_else(|| "apps".to_owned(), |n| n.to_string_lossy().into_owned());
    let options = RenderOptions {
        helm: Some(HelmInput {
            release_name: release.clone(),
            namespace: "argocd".into(),
            app: release,
            ..HelmInput::default()
        }),
        ..RenderOptions::default()
    };
    let objects = switchyard_hub::render::render(&RendererKind::Helm, &tree, &options)
        .with_context(|| format!("rendering the chart in {}", dir.display()))?;
    Ok(serde_json::to_string(&serde_json::json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": objects,
    }))?)
}

/// Read `-f` arguments as (label, text) pairs.
fn read_inputs(files: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    let mut inputs = Vec::new();
    for file in files {
        if file == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading stdin")?;
            inputs.push(("<stdin>".to_owned(), text));
            continue;
        }
        let path = Path::new(file);
        if !path.is_dir() {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {file}"))?;
            inputs.push((file.clone(), text));
            continue;
        }
        let (found, _) = walk(path)?;
        // Charts first: their files are theirs, not manifests.
        let charts: Vec<&str> = found
            .iter()
            .filter_map(|f| {
                (f == "Chart.yaml")
                    .then_some("")
                    .or_else(|| f.strip_suffix("/Chart.yaml"))
            })
            .collect();
        for chart in &charts {
            let prefix = if chart.is_empty() {
                String::new()
            } else {
                format!("{chart}/")
            };
            let chart_files: Vec<String> = found
                .iter()
                .filter_map(|f| f.strip_prefix(&prefix).map(str::to_owned))
                .collect();
            let dir = path.join(chart);
            inputs.push((
                format!("{} (chart rendered)", dir.display()),
                render_chart(&dir, &chart_files)?,
            ));
        }
        let in_chart = |f: &str| {
            charts
                .iter()
                .any(|c| c.is_empty() || f.starts_with(&format!("{c}/")))
        };
        let mut any = !charts.is_empty();
        for f in &found {
            let manifest = [".yaml", ".yml", ".json"].iter().any(|x| f.ends_with(x));
            if !manifest || in_chart(f) {
                continue;
            }
            let p = path.join(f);
            let text =
                std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
            inputs.push((p.display().to_string(), text));
            any = true;
        }
        if !any {
            bail!("{file} holds no *.yaml, *.yml or *.json file");
        }
    }
    Ok(inputs)
}

pub(crate) async fn import(command: ImportCommand, before: &super::Before) -> anyhow::Result<()> {
    let ImportCommand::Argocd {
        files,
        checkout,
        apply,
        dry_run,
        target,
    } = command;
    let inputs = read_inputs(&files)?;
    let checkout = match checkout {
        Some(root) => {
            let (files, dirs) = walk(&root)?;
            Some(DiskCheckout { root, files, dirs })
        }
        None => None,
    };
    let translation = argocd::translate(&inputs, checkout.as_ref().map(|c| c as &dyn Checkout));
    for note in &translation.notes {
        eprintln!("note: {note}");
    }
    for u in &translation.untranslated {
        eprintln!("not translated: {}: {}: {}", u.origin, u.what, u.reason);
    }
    if translation.documents.is_empty() {
        bail!(
            "nothing translated from {} ({} not translated)",
            files.join(", "),
            translation.untranslated.len()
        );
    }
    let text = translation
        .documents
        .iter()
        .map(serde_saphyr::to_string)
        .collect::<Result<Vec<_>, _>>()?
        .join("---\n");
    let apps = translation
        .documents
        .iter()
        .filter(|d| d.kind == switchyard_hub::declarative::Kind::App)
        .count();
    eprintln!(
        "translated {} documents ({apps} apps); {} not translated",
        translation.documents.len(),
        translation.untranslated.len()
    );
    if !apply {
        print!("{text}");
        return Ok(());
    }
    let target = target.with_before(before)?;
    declare::apply_texts(
        vec![("<import argocd>".to_owned(), text)],
        "the import",
        dry_run,
        &target,
    )
    .await
}
