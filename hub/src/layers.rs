//! The hub's layers, lowest first, and a test that every module imports
//! only from layers below its own (docs/ARCHITECTURE.md, "Hub layers").
//!
//! The test reads the source: every `crate::name` path outside a comment
//! names the top-level module it reaches into. A module in the same layer
//! or above is an upward import and fails the test, as does a module the
//! table does not place.

use std::collections::BTreeMap;
use std::path::Path;

/// Top-level modules by layer, lowest first. A module may use any module
/// of a lower layer, and none of its own layer or above.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "values and helpers",
        &[
            "bundle_frames",
            "clock",
            "connection_ids",
            "https",
            "metrics",
            "paths",
            "registry",
            "roles",
            "secrets",
            "tree",
        ],
    ),
    ("durable state", &["store"]),
    (
        "engines over values: Git, chart repositories, rendering, status reports",
        &["charts", "git", "render", "status_reports"],
    ),
    (
        "services over the store and the engines",
        &["auth", "backup", "limits", "sign_in"],
    ),
    (
        "sign-in with an OpenID provider, over the authenticator",
        &["oidc"],
    ),
    ("web sessions over the authenticator", &["sessions"]),
    ("fleet rules", &["fleet"]),
    ("gitops engine", &["gitops"]),
    ("declarative documents", &["declarative"]),
    (
        "transports: QUIC for agents, HTTP for admins and their browsers",
        &["agents", "api"],
    ),
    ("the web UI, over the admin API's views", &["web"]),
    ("the server that wires them", &["server"]),
    ("configuration of the server", &["config"]),
];

/// Files that are not a layer: the crate root, the binary's own code (the
/// CLI, a client of the API), and this test.
const OUTSIDE: &[&str] = &["lib.rs", "main.rs", "cli", "layers.rs"];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
}

/// The top-level modules a source text names after `crate::`, outside
/// comments; `crate::{a, b::c}` names `a` and `b`.
fn crate_paths(source: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut found = Vec::new();
    for line in source.lines() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                // Only the first level of the group: `{a, b::{c, d}}` -> a, b.
                let mut depth = 0;
                let mut item_start = true;
                for (i, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => item_start = true,
                        c if item_start && !c.is_whitespace() => {
                            found.push(ident(&group[i..]));
                            item_start = false;
                        }
                        _ => {}
                    }
                }
            } else {
                found.push(ident(rest));
            }
        }
    }
    found.retain(|m| !m.is_empty());
    found
}

/// Every `.rs` file under `dir`, with the top-level module it belongs to.
fn sources(src: &Path, dir: &Path, out: &mut Vec<(String, std::path::PathBuf)>) {
    for entry in std::fs::read_dir(dir).expect("reading the source dir") {
        let path = entry.expect("reading the source dir").path();
        let relative = path.strip_prefix(src).expect("under src");
        let top = relative
            .components()
            .next()
            .expect("a file under src")
            .as_os_str()
            .to_string_lossy()
            .into_owned();
        if OUTSIDE.contains(&top.as_str()) {
            continue;
        }
        if path.is_dir() {
            sources(src, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push((top.trim_end_matches(".rs").to_owned(), path));
        }
    }
}

/// `module -> [what it uses that is not below it]`, for every module.
fn upward_imports(src: &Path) -> BTreeMap<String, Vec<String>> {
    let mut files = Vec::new();
    sources(src, src, &mut files);
    let mut wrong: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (module, path) in files {
        let source = std::fs::read_to_string(&path).expect("reading a source file");
        let Some(own) = layer_of(&module) else {
            wrong
                .entry(module)
                .or_default()
                .push("(not placed in LAYERS)".into());
            continue;
        };
        for used in crate_paths(&source) {
            let below = layer_of(&used).is_some_and(|layer| layer < own);
            // Re-exports at the crate root (`crate::unix_now`) are values
            // of the lowest layer.
            let root_value = layer_of(&used).is_none() && !module_exists(src, &used);
            if used != module && !below && !root_value {
                let entry = wrong.entry(module.clone()).or_default();
                let what = format!("{used} ({})", path.display());
                if !entry.contains(&what) {
                    entry.push(what);
                }
            }
        }
    }
    wrong
}

fn module_exists(src: &Path, name: &str) -> bool {
    src.join(format!("{name}.rs")).exists() || src.join(name).is_dir()
}

#[test]
fn the_hub_imports_downward_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let wrong = upward_imports(&src);
    assert!(
        wrong.is_empty(),
        "imports that are not from a lower layer (see LAYERS in hub/src/layers.rs):\n{wrong:#?}"
    );
}

#[test]
fn every_module_of_the_crate_root_is_placed_once() {
    let root = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs"))
        .expect("reading lib.rs");
    let declared: Vec<&str> = root
        .lines()
        .filter_map(|l| {
            l.trim()
                .trim_start_matches("pub ")
                .strip_prefix("mod ")
                .and_then(|m| m.strip_suffix(';'))
        })
        .filter(|m| *m != "layers")
        .collect();
    assert!(declared.len() > 10, "{declared:?}");
    for module in &declared {
        let placed = LAYERS
            .iter()
            .filter(|(_, modules)| modules.contains(module))
            .count();
        assert_eq!(
            placed, 1,
            "module {module} is placed {placed} times in LAYERS"
        );
    }
    for (_, modules) in LAYERS {
        for module in *modules {
            assert!(
                declared.contains(module),
                "LAYERS names {module}, which lib.rs does not declare"
            );
        }
    }
}

#[test]
fn crate_paths_are_read_from_uses_groups_and_expressions_not_comments() {
    let source = "use crate::store::{self, Store};\n\
                  use crate::{fleet::Fleet, gitops::{self, GitOps}};\n\
                  // crate::server in a comment\n\
                  /// [`crate::api`] in a doc comment\n\
                  let x = crate::clock::unix_now(); let y = crate::paths::x();\n";
    assert_eq!(
        crate_paths(source),
        ["store", "fleet", "gitops", "clock", "paths"]
    );
}

#[test]
fn an_upward_import_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::write(src.join("store.rs"), "use crate::auth::Role;\n").unwrap();
    std::fs::create_dir(src.join("fleet")).unwrap();
    std::fs::write(
        src.join("fleet/mod.rs"),
        "use crate::{store, agents::send};\nuse crate::clock::rfc3339;\n",
    )
    .unwrap();
    std::fs::write(src.join("clock.rs"), "").unwrap();
    let wrong = upward_imports(src);
    assert_eq!(wrong.len(), 2, "{wrong:#?}");
    assert!(wrong["store"][0].starts_with("auth "), "{wrong:#?}");
    assert_eq!(wrong["fleet"].len(), 1, "{wrong:#?}");
    assert!(wrong["fleet"][0].starts_with("agents "), "{wrong:#?}");
}
