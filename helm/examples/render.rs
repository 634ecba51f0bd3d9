//! Renders a chart directory and prints each template's output: `cargo run -p switchyard-helm --example render -- DIR [RELEASE] [VALUES.json]`.

use std::collections::BTreeMap;
use std::path::Path;

fn read_tree(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            read_tree(base, &p, out)?;
        } else if let Ok(rel) = p.strip_prefix(base) {
            out.insert(rel.to_string_lossy().replace('\\', "/"), std::fs::read(&p)?);
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let dir = Path::new(
        args.get(1)
            .ok_or("usage: render DIR [RELEASE] [VALUES.json] [REPEAT]")?,
    );
    let mut files = BTreeMap::new();
    read_tree(dir, dir, &mut files)?;
    let mut opts = switchyard_helm::RenderOptions {
        release_name: args.get(2).cloned().unwrap_or_else(|| "rel".into()),
        ..Default::default()
    };
    if let Some(v) = args.get(3) {
        let j: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(v)?)?;
        opts.values.push(switchyard_helm::Value::from_json(&j));
    }
    let repeat: usize = args.get(4).and_then(|r| r.parse().ok()).unwrap_or(1);
    let start = std::time::Instant::now();
    let mut out = BTreeMap::new();
    for _ in 0..repeat {
        out = switchyard_helm::render_files(&files, &opts)?;
    }
    let took = start.elapsed();
    if repeat > 1 {
        println!(
            "{} renders of {} templates: {:?} each",
            repeat,
            out.len(),
            took / repeat as u32
        );
        return Ok(());
    }
    for (k, v) in out {
        println!("# {k}\n{v}");
    }
    Ok(())
}
