//! Differential test against real Helm (v4.2.3 through PyPI's helm-python-sdk):
//! every chart under tests/charts with every values case in tests/cases renders
//! to the same objects (YAML parsed, canonical form) or fails in both.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use switchyard_helm::helm::manifests::split_documents;
use switchyard_helm::{RenderOptions, Value, render_files};

const INSTALL: &str = "python3 -m venv target/helm-oracle && target/helm-oracle/bin/pip install helm-python-sdk==0.2.2";

/// The oracle's python: $SWITCHYARD_HELM_ORACLE, else target/helm-oracle/bin/python in the workspace.
fn oracle_python() -> PathBuf {
    if let Ok(p) = std::env::var("SWITCHYARD_HELM_ORACLE") {
        return PathBuf::from(p);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf();
    let p = root.join("target/helm-oracle/bin/python");
    assert!(
        p.exists(),
        "the Helm oracle is not installed: set SWITCHYARD_HELM_ORACLE to a python with helm-python-sdk==0.2.2, \
         or run from the workspace root: {INSTALL}"
    );
    p
}

const ORACLE: &str = r#"
import json, sys
from helm_python import Chart
req = json.load(open(sys.argv[1]))
out = []
for c in req:
    try:
        ch = Chart.load(c["dir"])
        r = ch.render(values=c["values"], name=c["release"], namespace=c["namespace"])
        out.append({"ok": r})
    except Exception as e:
        out.append({"error": "%s: %s" % (type(e).__name__, e)})
json.dump(out, open(sys.argv[2], "w"))
"#;

#[derive(Clone)]
struct Case {
    chart: String,
    name: String,
    values: serde_json::Value,
    release: String,
    namespace: String,
    /// A text both errors must contain (for `required`/`fail` messages).
    error_contains: Option<String>,
}

fn charts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/charts")
}

fn load_cases() -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/cases")
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        let chart = p.file_stem().unwrap().to_string_lossy().to_string();
        assert!(
            charts_dir().join(&chart).is_dir(),
            "cases for a missing chart {chart}"
        );
        let j: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        for c in j.as_array().expect("a list of cases") {
            out.push(Case {
                chart: chart.clone(),
                name: c["name"].as_str().expect("name").to_string(),
                values: c.get("values").cloned().unwrap_or(serde_json::json!({})),
                release: c
                    .get("release")
                    .and_then(|v| v.as_str())
                    .unwrap_or("rel")
                    .to_string(),
                namespace: c
                    .get("namespace")
                    .and_then(|v| v.as_str())
                    .unwrap_or("default")
                    .to_string(),
                error_contains: c
                    .get("error_contains")
                    .and_then(|v| v.as_str())
                    .map(str::to_string),
            });
        }
    }
    out
}

fn read_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p
                    .strip_prefix(base)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn run_oracle(cases: &[Case]) -> Vec<Result<BTreeMap<String, String>, String>> {
    let py = oracle_python();
    let tmp = std::env::temp_dir().join(format!("switchyard-helm-oracle-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let script = tmp.join("oracle.py");
    std::fs::write(&script, ORACLE).unwrap();
    let req: Vec<serde_json::Value> = cases
        .iter()
        .map(|c| {
            serde_json::json!({
                "dir": charts_dir().join(&c.chart).to_string_lossy(),
                "values": c.values,
                "release": c.release,
                "namespace": c.namespace,
            })
        })
        .collect();
    let req_path = tmp.join("req.json");
    let out_path = tmp.join("out.json");
    std::fs::write(&req_path, serde_json::to_string(&req).unwrap()).unwrap();
    let status = Command::new(&py)
        .arg(&script)
        .arg(&req_path)
        .arg(&out_path)
        .status()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run the Helm oracle {}: {e}; install it with: {INSTALL}",
                py.display()
            )
        });
    assert!(
        status.success(),
        "the Helm oracle failed ({status}); is helm-python-sdk==0.2.2 installed in {}? {INSTALL}",
        py.display()
    );
    let out: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&out_path).unwrap()).unwrap();
    let _ = std::fs::remove_dir_all(&tmp);
    out.into_iter()
        .map(|o| match o.get("ok") {
            Some(m) => Ok(m
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect()),
            None => Err(o["error"].as_str().unwrap_or("").to_string()),
        })
        .collect()
}

fn ours(case: &Case) -> Result<BTreeMap<String, String>, String> {
    let files = read_tree(&charts_dir().join(&case.chart));
    let opts = RenderOptions {
        release_name: case.release.clone(),
        namespace: case.namespace.clone(),
        values: vec![Value::from_json(&case.values)],
        ..RenderOptions::default()
    };
    render_files(&files, &opts).map_err(|e| e.to_string())
}

/// Documents of one rendered file, parsed into canonical JSON.
fn objects(text: &str) -> Result<Vec<serde_json::Value>, String> {
    let mut out = Vec::new();
    for d in split_documents(text) {
        let v = switchyard_helm::yaml::parse(&d).map_err(|e| format!("{e} in:\n{d}"))?;
        if !v.is_nil() {
            out.push(switchyard_helm::yaml::to_canonical_json(&v));
        }
    }
    Ok(out)
}

fn compare(
    case: &Case,
    helm: &Result<BTreeMap<String, String>, String>,
    ours: &Result<BTreeMap<String, String>, String>,
) -> Result<bool, String> {
    match (helm, ours) {
        (Err(h), Err(o)) => match &case.error_contains {
            Some(want) if h.contains(want.as_str()) && o.contains(want.as_str()) => Ok(true),
            Some(want) => Err(format!(
                "both failed, but not both with {want:?}:\n helm: {h}\n ours: {o}"
            )),
            None => Err(format!(
                "both failed, but the case expects a render:\n helm: {h}\n ours: {o}"
            )),
        },
        (Err(h), Ok(_)) => Err(format!("helm failed but we rendered: {h}")),
        (Ok(_), Err(o)) => Err(format!("we failed but helm rendered: {o}")),
        (Ok(h), Ok(o)) => {
            if case.error_contains.is_some() {
                return Err("an error was expected but both rendered".into());
            }
            let hk: Vec<&String> = h.keys().collect();
            let ok: Vec<&String> = o.keys().collect();
            if hk != ok {
                return Err(format!(
                    "different templates:\n helm: {hk:?}\n ours: {ok:?}"
                ));
            }
            let mut identical = true;
            for (k, ht) in h {
                let ot = &o[k];
                if ht == ot {
                    continue;
                }
                identical = false;
                if k.ends_with("NOTES.txt") {
                    return Err(format!(
                        "{k}: NOTES.txt differs:\n--- helm\n{ht}\n--- ours\n{ot}"
                    ));
                }
                let first_diff = ht
                    .lines()
                    .zip(ot.lines())
                    .find(|(a, b)| a != b)
                    .map(|(a, b)| format!("\n first differing line:\n helm: {a}\n ours: {b}"))
                    .unwrap_or_default();
                let ho = objects(ht)
                    .map_err(|e| format!("{k}: helm's output does not parse: {e}{first_diff}"))?;
                let oo = objects(ot)
                    .map_err(|e| format!("{k}: our output does not parse: {e}{first_diff}"))?;
                if ho != oo {
                    return Err(format!(
                        "{k}: objects differ{first_diff}\n--- helm\n{ht}\n--- ours\n{ot}"
                    ));
                }
            }
            Ok(identical)
        }
    }
}

#[test]
fn corpus_renders_like_helm() {
    let cases = load_cases();
    let helm = run_oracle(&cases);
    let mut failures = Vec::new();
    let mut identical = 0;
    let mut documents = 0;
    for (c, h) in cases.iter().zip(helm.iter()) {
        let o = ours(c);
        if let Ok(h) = h {
            documents += h.values().map(|t| split_documents(t).len()).sum::<usize>();
        }
        match compare(c, h, &o) {
            Ok(true) => identical += 1,
            Ok(false) => {}
            Err(e) => failures.push(format!("{}/{}: {e}", c.chart, c.name)),
        }
    }
    eprintln!(
        "helm oracle: {} cases ({} documents from helm), {} equal ({} byte-identical), {} different",
        cases.len(),
        documents,
        cases.len() - failures.len(),
        identical,
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from Helm:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
    assert!(
        cases.len() >= 70,
        "the corpus should have many cases, has {}",
        cases.len()
    );
}
