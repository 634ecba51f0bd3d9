//! Engine properties that need no oracle: bounded execution (fuel, output size,
//! call depth), deterministic random and time functions, `--set`, manifest
//! splitting, and no panic on arbitrary templates.

use std::collections::BTreeMap;

use proptest::prelude::*;
use switchyard_helm::template::Limits;
use switchyard_helm::{Error, RenderOptions, render_files, split_manifests};

fn chart(templates: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
    let mut f = BTreeMap::new();
    f.insert(
        "Chart.yaml".to_string(),
        b"apiVersion: v2\nname: c\nversion: 0.1.0\n".to_vec(),
    );
    f.insert("values.yaml".to_string(), b"n: 3\nname: x\n".to_vec());
    for (p, t) in templates {
        f.insert(format!("templates/{p}"), t.as_bytes().to_vec());
    }
    f
}

fn render(
    templates: &[(&str, &str)],
    opts: &RenderOptions,
) -> Result<BTreeMap<String, String>, Error> {
    render_files(&chart(templates), opts)
}

#[test]
fn endless_range_runs_out_of_fuel() {
    let opts = RenderOptions {
        limits: Limits {
            fuel: 10_000,
            ..Limits::default()
        },
        ..RenderOptions::default()
    };
    let r = render(
        &[("a.yaml", "{{ range until 1000000 }}{{ . }}{{ end }}")],
        &opts,
    );
    assert!(
        matches!(&r, Err(Error::Limit(m)) if m.contains("step budget")),
        "{r:?}"
    );
}

#[test]
fn output_is_bounded() {
    let opts = RenderOptions {
        limits: Limits {
            max_output: 1000,
            ..Limits::default()
        },
        ..RenderOptions::default()
    };
    let r = render(
        &[("a.yaml", "{{ range until 1000 }}0123456789{{ end }}")],
        &opts,
    );
    assert!(
        matches!(&r, Err(Error::Limit(m)) if m.contains("output exceeded 1000 bytes")),
        "{r:?}"
    );
    // The same template within the limit renders.
    let ok = render(
        &[("a.yaml", "{{ range until 10 }}0123456789{{ end }}")],
        &opts,
    )
    .unwrap();
    assert_eq!(ok["c/templates/a.yaml"].len(), 100);
}

#[test]
fn include_recursion_is_bounded() {
    let t = r#"{{- define "loop" }}{{ include "loop" . }}{{ end -}}{{ include "loop" . }}"#;
    let r = render(&[("a.yaml", t)], &RenderOptions::default());
    assert!(
        matches!(&r, Err(Error::Limit(m)) if m.contains("nested deeper than")),
        "{r:?}"
    );
    let t = r#"{{- define "loop" }}{{ tpl "{{ include \"loop\" . }}" . }}{{ end -}}{{ include "loop" . }}"#;
    let r = render(&[("a.yaml", t)], &RenderOptions::default());
    assert!(matches!(&r, Err(Error::Limit(_))), "{r:?}");
}

#[test]
fn random_and_time_functions_are_deterministic_per_seed_and_call_site() {
    let t = "a: {{ randAlphaNum 16 }}\nb: {{ randAlphaNum 16 }}\nc: {{ uuidv4 }}\nd: {{ now | date \"2006-01-02T15:04:05Z07:00\" }}\ne: {{ range until 2 }}{{ randNumeric 4 }} {{ end }}\n";
    let opts = RenderOptions {
        seed: b"app/cluster-1".to_vec(),
        now_unix: 1_700_000_000,
        ..RenderOptions::default()
    };
    let one = render(&[("a.yaml", t)], &opts).unwrap();
    let two = render(&[("a.yaml", t)], &opts).unwrap();
    assert_eq!(one, two, "the same inputs render byte-identically");
    let text = &one["c/templates/a.yaml"];
    let lines: Vec<&str> = text.lines().collect();
    assert_ne!(lines[0][3..], lines[1][3..], "two call sites differ");
    assert_eq!(lines[0].len(), 3 + 16);
    assert!(
        lines[2][3..].chars().nth(14) == Some('4'),
        "a version-4 uuid: {}",
        lines[2]
    );
    assert_eq!(lines[3], "d: 2023-11-14T22:13:20Z");
    let iterations: Vec<&str> = lines[4][3..].split_whitespace().collect();
    assert_ne!(
        iterations[0], iterations[1],
        "each run of a call site differs"
    );
    let other = RenderOptions {
        seed: b"app/cluster-2".to_vec(),
        ..opts.clone()
    };
    let three = render(&[("a.yaml", t)], &other).unwrap();
    assert_ne!(one, three, "another seed gives other values");
}

#[test]
fn relative_time_functions_measure_from_the_fixed_now() {
    let opts = RenderOptions {
        now_unix: 1_700_000_000,
        ..RenderOptions::default()
    };
    let t = r#"{{ ago (int64 1699996399) }} {{ ago (toDate "2006-01-02" "2023-11-13") }} {{ ago now }} {{ ago "x" }} {{ durationRound (toDate "2006-01-02" "2020-01-01") }} {{ durationRound (now | dateModify "48h") }} {{ now | dateModify "-1.5h" | date "15:04" }}"#;
    let r = render(&[("a.yaml", t)], &opts).unwrap();
    // 2023-11-14T22:13:20Z is now.
    assert_eq!(
        r["c/templates/a.yaml"],
        "1h0m1s 46h13m20s 0s 0s 3y 2d 20:43"
    );
    let later = RenderOptions {
        now_unix: 1_700_000_000 + 3600,
        ..opts
    };
    let r = render(&[("a.yaml", "{{ ago (int64 1699996399) }}")], &later).unwrap();
    assert_eq!(r["c/templates/a.yaml"], "2h0m1s");
}

#[test]
fn key_generation_is_charged_to_the_step_budget() {
    let opts = RenderOptions {
        limits: Limits {
            fuel: 1_000_000,
            ..Limits::default()
        },
        ..RenderOptions::default()
    };
    // One 2048-bit CA fits in a million steps, ten do not.
    render(&[("a.yaml", "{{ (genCA \"x\" 1).Cert | len }}")], &opts).unwrap();
    let e = render(
        &[(
            "a.yaml",
            "{{ range until 10 }}{{ (genCA \"x\" 1).Cert | len }}{{ end }}",
        )],
        &opts,
    )
    .unwrap_err();
    assert!(e.to_string().contains("step budget"), "{e}");
}

#[test]
fn set_values_override_files_and_are_typed() {
    let opts = RenderOptions {
        values: vec![switchyard_helm::Value::from_json(
            &serde_json::json!({"n": 5, "name": "file"}),
        )],
        set: vec!["name=cli,list[1]=b,nested.k=true".into(), "n=7".into()],
        ..RenderOptions::default()
    };
    let r = render(&[("a.yaml", "{{ .Values.name }} {{ printf \"%T\" .Values.n }} {{ .Values.n }} {{ .Values.list }} {{ .Values.nested.k }}")], &opts).unwrap();
    assert_eq!(r["c/templates/a.yaml"], "cli int64 7 [<nil> b] true");
}

#[test]
fn manifests_split_in_install_order() {
    let r = render(
        &[
            ("a.yaml", "kind: Deployment\nmetadata: {name: d}\n---\n# nothing\n---\nkind: Service\nmetadata: {name: s}\n"),
            ("b.yaml", "kind: Namespace\nmetadata: {name: n}\n"),
            ("NOTES.txt", "notes"),
        ],
        &RenderOptions::default(),
    )
    .unwrap();
    let m = split_manifests(&r).unwrap();
    let kinds: Vec<&str> = m.iter().map(|m| m.kind.as_str()).collect();
    assert_eq!(kinds, ["Namespace", "Service", "Deployment"]);
}

#[test]
fn errors_name_the_file_line_and_column() {
    let r = render(
        &[("a.yaml", "x: 1\ny: {{ .Values.nope.deeper }}\n")],
        &RenderOptions::default(),
    );
    let e = r.unwrap_err().to_string();
    assert_eq!(
        e,
        "template: c/templates/a.yaml:2:13: executing \"c/templates/a.yaml\" at <.Values.nope.deeper>: nil pointer evaluating interface {}.deeper"
    );
    let r = render(
        &[("a.yaml", "x: {{ required \"need it\" .Values.nope }}\n")],
        &RenderOptions::default(),
    );
    assert_eq!(
        r.unwrap_err().to_string(),
        "execution error at (c/templates/a.yaml:1:6): need it"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    /// Arbitrary text never panics the engine: it renders or fails with an error.
    #[test]
    fn arbitrary_templates_never_panic(src in "(\\{\\{-? ?|-? ?\\}\\}|[ .$a-z0-9|()\"'`=:,\\-\\n]|if |else |end|range |with |define \"x\"|template \"x\"|include \"x\" \\.|block \"b\" \\.|\\.Values\\.n|\\$x := |printf \"%v\" |default |toYaml |tpl |/\\*|\\*/){0,40}") {
        let opts = RenderOptions { limits: Limits { fuel: 20_000, max_output: 1 << 16, max_depth: 20 }, ..RenderOptions::default() };
        let _ = render(&[("a.yaml", &src)], &opts);
    }
}

fn tgz(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    for (path, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        // Written raw so the test can name paths tar's own checks would refuse.
        h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap()
}

#[test]
fn subchart_archives_load_and_hostile_paths_are_refused() {
    let sub = tgz(&[
        (
            "sub/Chart.yaml",
            b"apiVersion: v2\nname: sub\nversion: 1.0.0\n",
        ),
        ("sub/values.yaml", b"msg: hi\n"),
        ("sub/templates/a.yaml", b"msg: {{ .Values.msg }}\n"),
    ]);
    let mut files = chart(&[]);
    files.insert("charts/sub-1.0.0.tgz".into(), sub);
    let r = render_files(&files, &RenderOptions::default()).unwrap();
    assert_eq!(r["c/charts/sub/templates/a.yaml"], "msg: hi\n");

    let evil = tgz(&[
        (
            "sub/Chart.yaml",
            b"apiVersion: v2\nname: sub\nversion: 1.0.0\n",
        ),
        ("sub/../../etc/x", b"x"),
    ]);
    let mut files = chart(&[]);
    files.insert("charts/evil.tgz".into(), evil);
    let e = render_files(&files, &RenderOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("illegally contains path"), "{e}");
}
