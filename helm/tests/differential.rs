//! Differential test against real Helm: random templates and values from a small
//! grammar (proptest strategies, fixed seeds) render to the same text in
//! Switchyard and in Helm, or fail in both. Seeds of past disagreements are kept
//! in tests/differential-seeds.txt and always run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use switchyard_helm::{RenderOptions, Value, render_files};

/// Random cases per run, besides the kept seeds.
const CASES: u64 = 300;

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
        "the Helm oracle is not installed: set SWITCHYARD_HELM_ORACLE to a python with helm-python-sdk==0.2.2, or run from the \
         workspace root: python3 -m venv target/helm-oracle && target/helm-oracle/bin/pip install helm-python-sdk==0.2.2"
    );
    p
}

fn scalar() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        (-3i64..300).prop_map(|i| serde_json::json!(i)),
        prop_oneof![Just(0.5f64), Just(2.25), Just(-1.5), Just(1e6), Just(1e-5)]
            .prop_map(|f| serde_json::json!(f)),
        prop_oneof![
            Just(""),
            Just("a"),
            Just("hello world"),
            Just("yes"),
            Just("1"),
            Just("x: y"),
            Just("multi\nline")
        ]
        .prop_map(|s| serde_json::json!(s)),
        any::<bool>().prop_map(|b| serde_json::json!(b)),
        Just(serde_json::Value::Null),
    ]
}

fn data() -> impl Strategy<Value = serde_json::Value> {
    scalar().prop_recursive(2, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(
                prop_oneof![Just("k"), Just("z"), Just("b1"), Just("b10")].prop_map(String::from),
                inner,
                0..3
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn values() -> impl Strategy<Value = serde_json::Value> {
    (data(), data(), data()).prop_map(|(a, b, c)| serde_json::json!({"a": a, "b": b, "c": c}))
}

fn operand() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(".Values.a".to_string()),
        Just(".Values.b".to_string()),
        Just(".Values.c".to_string()),
        Just(".Values.a.k".to_string()),
        Just(".Values.missing".to_string()),
        Just("$".to_string()).prop_map(|_| "$.Values.b".to_string()),
        Just("1".to_string()),
        Just("2.5".to_string()),
        Just("\"s\"".to_string()),
        Just("true".to_string()),
        Just("0".to_string()),
    ]
}

fn expr() -> impl Strategy<Value = String> {
    operand().prop_recursive(3, 16, 3, |inner| {
        let unary = prop_oneof![
            Just("len"),
            Just("not"),
            Just("quote"),
            Just("toJson"),
            Just("toYaml"),
            Just("empty"),
            Just("upper"),
            Just("int"),
            Just("toString"),
            Just("first"),
            Just("kindOf"),
            Just("typeOf"),
            Just("b64enc"),
            Just("squote"),
            Just("float64"),
        ];
        let binary = prop_oneof![
            Just("eq"),
            Just("ne"),
            Just("lt"),
            Just("ge"),
            Just("and"),
            Just("or"),
            Just("default"),
            Just("add"),
            Just("index"),
            Just("mul"),
            Just("hasKey"),
            Just("coalesce"),
            Just("max"),
            Just("list"),
            Just("dict"),
            Just("cat"),
        ];
        prop_oneof![
            (unary, inner.clone()).prop_map(|(f, a)| format!("({f} {a})")),
            (binary, inner.clone(), inner.clone()).prop_map(|(f, a, b)| format!("({f} {a} {b})")),
            (
                inner.clone(),
                prop_oneof![
                    Just("quote"),
                    Just("default \"d\""),
                    Just("toJson"),
                    Just("len"),
                    Just("printf \"%v\"")
                ]
            )
                .prop_map(|(a, f)| format!("({a} | {f})")),
            (inner.clone(), inner.clone())
                .prop_map(|(a, b)| format!("(printf \"%v-%s-%d\" {a} {b} 3)")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("(ternary {a} {b} true)")),
        ]
    })
}

fn element() -> impl Strategy<Value = String> {
    let ltrim = prop_oneof![Just(""), Just("- ")];
    let rtrim = prop_oneof![Just(""), Just(" -")];
    prop_oneof![
        prop_oneof![Just("x"), Just(" "), Just("\n"), Just("  y\n")].prop_map(String::from),
        (ltrim, expr(), rtrim).prop_map(|(l, e, r)| format!("{{{{{l}{e}{r}}}}}")),
        (expr(), expr()).prop_map(|(c, e)| format!(
            "{{{{ if {c} }}}}[{{{{ {e} }}}}]{{{{ else }}}}<else>{{{{ end }}}}"
        )),
        expr().prop_map(|e| format!(
            "{{{{ range $i, $v := {e} }}}}{{{{ $i }}}}={{{{ $v }}}};{{{{ else }}}}none{{{{ end }}}}"
        )),
        expr().prop_map(|e| format!("{{{{ with {e} }}}}<{{{{ . }}}}>{{{{ end }}}}")),
        (expr(), expr())
            .prop_map(|(a, b)| format!("{{{{ $x := {a} }}}}{{{{ $x = {b} }}}}{{{{ $x }}}}")),
        expr().prop_map(|e| format!("k:{{{{- include \"d\" {e} | nindent 2 }}}}\n")),
        expr().prop_map(|e| format!("{{{{ toYaml {e} | indent 2 }}}}")),
        expr().prop_map(|e| format!("{{{{ range $k, $v := {e} }}}}{{{{ $k }}}}:{{{{ $v | toJson }}}},{{{{ end }}}}")),
        expr().prop_map(|e| format!("{{{{ with {e} }}}}{{{{ . | quote }}}}{{{{ else }}}}empty{{{{ end }}}}")),
        expr().prop_map(|e| format!("{{{{ tpl \"{{{{ .Values.a }}}}-{{{{ .Release.Name }}}}\" $ }}}}{{{{ {e} | toString | upper }}}}")),
    ]
}

fn template() -> impl Strategy<Value = String> {
    // A named template for the `include` element, defined in the same file.
    prop::collection::vec(element(), 1..6).prop_map(|v| {
        format!(
            "{{{{- define \"d\" }}}}v: {{{{ toYaml . | nindent 2 }}}}{{{{ end -}}}}{}",
            v.concat()
        )
    })
}

/// The case for one seed: a template and values.
fn case_for(seed: u64) -> (String, serde_json::Value) {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &bytes),
    );
    let t = template()
        .new_tree(&mut runner)
        .expect("template")
        .current();
    let v = values().new_tree(&mut runner).expect("values").current();
    (t, v)
}

const ORACLE: &str = r#"
import json, sys
from helm_python import Chart
req = json.load(open(sys.argv[1]))
out = []
for c in req:
    try:
        r = Chart.load(c["dir"]).render(values=c["values"], name="rel")
        out.append({"ok": r})
    except Exception as e:
        out.append({"error": "%s: %s" % (type(e).__name__, e)})
json.dump(out, open(sys.argv[2], "w"))
"#;

/// The location ("c/templates/t.yaml:1:5") and the last message part of an error,
/// in Go's one-line form or Helm v4's multi-line form.
fn error_parts(e: &str) -> (String, String) {
    let re = regex::Regex::new(r"c/templates/t\.yaml:\d+(:\d+)?").expect("static regex");
    let loc = re
        .find(e)
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    let msg = match e.rsplit_once(">:") {
        Some((_, m)) => m.trim().to_string(),
        None => e.rsplit(": ").next().unwrap_or(e).trim().to_string(),
    };
    (loc, msg)
}

#[test]
fn random_templates_render_like_helm() {
    let kept: Vec<u64> = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/differential-seeds.txt"),
    )
    .unwrap_or_default()
    .lines()
    .filter_map(|l| l.split('#').next().and_then(|s| s.trim().parse().ok()))
    .collect();
    let mut seeds = kept.clone();
    // DIFF_CASES and DIFF_BASE widen a run when hunting for disagreements.
    let n: u64 = std::env::var("DIFF_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CASES);
    let base: u64 = std::env::var("DIFF_BASE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    seeds.extend(base..base + n);
    let tmp = std::env::temp_dir().join(format!("switchyard-helm-diff-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let mut req = Vec::new();
    let mut cases = Vec::new();
    for &seed in &seeds {
        let (t, v) = case_for(seed);
        let dir = tmp.join(format!("c{seed}"));
        std::fs::create_dir_all(dir.join("templates")).unwrap();
        std::fs::write(
            dir.join("Chart.yaml"),
            "apiVersion: v2\nname: c\nversion: 0.1.0\n",
        )
        .unwrap();
        std::fs::write(dir.join("templates/t.yaml"), &t).unwrap();
        req.push(serde_json::json!({"dir": dir.to_string_lossy(), "values": v}));
        cases.push((seed, t, v));
    }
    std::fs::write(tmp.join("oracle.py"), ORACLE).unwrap();
    std::fs::write(tmp.join("req.json"), serde_json::to_string(&req).unwrap()).unwrap();
    let status = Command::new(oracle_python())
        .arg(tmp.join("oracle.py"))
        .arg(tmp.join("req.json"))
        .arg(tmp.join("out.json"))
        .status()
        .unwrap();
    assert!(status.success(), "the Helm oracle failed: {status}");
    let out: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(tmp.join("out.json")).unwrap()).unwrap();
    let _ = std::fs::remove_dir_all(&tmp);
    let mut disagreements = Vec::new();
    let (mut ok_both, mut err_both) = (0, 0);
    for ((seed, t, v), h) in cases.iter().zip(out.iter()) {
        let mut files = BTreeMap::new();
        files.insert(
            "Chart.yaml".to_string(),
            b"apiVersion: v2\nname: c\nversion: 0.1.0\n".to_vec(),
        );
        files.insert("templates/t.yaml".to_string(), t.as_bytes().to_vec());
        let opts = RenderOptions {
            release_name: "rel".into(),
            values: vec![Value::from_json(v)],
            ..RenderOptions::default()
        };
        let ours = render_files(&files, &opts);
        match (h.get("ok"), &ours) {
            (Some(hm), Ok(om)) => {
                let ht = hm.get("c/templates/t.yaml").and_then(|x| x.as_str()).unwrap_or("");
                let ot = om.get("c/templates/t.yaml").map(String::as_str).unwrap_or("");
                if ht == ot {
                    ok_both += 1;
                } else {
                    disagreements.push(format!("seed {seed}: output differs\n template: {t}\n values: {v}\n helm: {ht:?}\n ours: {ot:?}"));
                }
            }
            (None, Err(e)) => {
                // Helm v4 reformats some errors; compare where and what: "FILE:LINE:COL" and the final message.
                let helm_err = h["error"].as_str().unwrap_or("");
                let (hl, hm) = error_parts(helm_err);
                let (ol, om) = error_parts(&e.to_string());
                if hl == ol && hm == om {
                    err_both += 1;
                } else {
                    disagreements.push(format!("seed {seed}: both failed differently\n template: {t}\n values: {v}\n helm: {helm_err}\n ours: {e}"));
                }
            }
            (Some(hm), Err(e)) => disagreements.push(format!("seed {seed}: we failed, helm rendered\n template: {t}\n values: {v}\n helm: {hm}\n ours: {e}")),
            (None, Ok(om)) => disagreements.push(format!("seed {seed}: helm failed, we rendered\n template: {t}\n values: {v}\n helm: {}\n ours: {om:?}", h["error"])),
        }
    }
    eprintln!(
        "differential: {} cases, {ok_both} rendered equal, {err_both} failed in both, {} disagreements",
        cases.len(),
        disagreements.len()
    );
    assert!(
        disagreements.is_empty(),
        "{} disagreements with Helm (add their seeds to tests/differential-seeds.txt once fixed):\n\n{}",
        disagreements.len(),
        disagreements.join("\n\n")
    );
}
