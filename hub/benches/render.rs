//! Timings of the render pipeline: a 1,000-object directory app rendered once, then substituted, canonicalized and digested for 1,000 clusters.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use switchyard_common::bundle::Bundle;
use switchyard_hub::render::{RenderOptions, RendererKind, needs_substitution, render, substitute};
use switchyard_hub::tree::TreeFile;

const OBJECTS: usize = 1_000;
const PER_FILE: usize = 20;
const CLUSTERS: usize = 1_000;

/// A realistic mix: Deployments (about 60 lines of YAML each) and their
/// Services and ConfigMaps; some strings use cluster variables.
fn app() -> Vec<TreeFile> {
    let mut files = Vec::new();
    let mut text = String::new();
    for i in 0..OBJECTS {
        let doc = match i % 3 {
            0 => format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web-{i}\n  namespace: team-{ns}\n  labels:\n    app: web-{i}\n    cluster: ${{cluster.name}}\nspec:\n  replicas: 3\n  selector:\n    matchLabels:\n      app: web-{i}\n  template:\n    metadata:\n      labels:\n        app: web-{i}\n    spec:\n      containers:\n      - name: web\n        image: registry.example/web:1.{i}\n        args: [\"--region\", \"${{cluster.labels.region}}\", \"--port\", \"8080\"]\n        ports:\n        - containerPort: 8080\n          name: http\n        env:\n        - name: CLUSTER\n          value: ${{cluster.name}}\n        - name: MODE\n          value: production\n        resources:\n          requests: {{cpu: 100m, memory: 128Mi}}\n          limits: {{cpu: \"1\", memory: 512Mi}}\n        readinessProbe:\n          httpGet: {{path: /healthz, port: http}}\n          periodSeconds: 10\n        volumeMounts:\n        - name: config\n          mountPath: /etc/web\n      volumes:\n      - name: config\n        configMap:\n          name: web-{i}\n          defaultMode: 0644\n",
                ns = i % 10
            ),
            1 => format!(
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: web-{i}\n  namespace: team-{ns}\nspec:\n  selector:\n    app: web-{i}\n  ports:\n  - port: 80\n    targetPort: http\n",
                ns = i % 10
            ),
            _ => format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-{i}\n  namespace: team-{ns}\ndata:\n  web.conf: |\n    listen 8080\n    log_level info\n    upstream api-{i}.svc\n  script.sh: |\n    echo ${{HOME}} $1\n",
                ns = i % 10
            ),
        };
        text.push_str("---\n");
        text.push_str(&doc);
        if (i + 1) % PER_FILE == 0 {
            files.push(TreeFile {
                path: format!("manifests/part-{:03}.yaml", i / PER_FILE),
                data: std::mem::take(&mut text).into_bytes(),
                executable: false,
            });
        }
    }
    files
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let files = app();
    let bytes: usize = files.iter().map(|f| f.data.len()).sum();
    let options = RenderOptions::default();

    let runs = 5;
    let mut best = Duration::MAX;
    let mut objects = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        objects = render(&RendererKind::Directory, &files, &options).expect("render");
        best = best.min(start.elapsed());
    }
    assert_eq!(objects.len(), OBJECTS);
    println!(
        "render directory: {} files, {} KiB YAML, {} objects: best of {runs} {:.1} ms",
        files.len(),
        bytes / 1024,
        objects.len(),
        ms(best)
    );

    let start = Instant::now();
    let shared = Bundle::new(objects.clone()).encode(3).expect("encode");
    println!(
        "one bundle (canonicalize + digest + zstd 3): {:.1} ms, {} KiB canonical, {} KiB compressed",
        ms(start.elapsed()),
        shared.canonical_len / 1024,
        shared.compressed.len() / 1024
    );

    assert!(needs_substitution(&objects));
    let mut substitute_time = Duration::ZERO;
    let mut digest_time = Duration::ZERO;
    let mut digests = std::collections::HashSet::new();
    let total = Instant::now();
    for c in 0..CLUSTERS {
        let labels = BTreeMap::from([("region".to_owned(), format!("region-{}", c % 7))]);
        let start = Instant::now();
        let specialised =
            substitute(&objects, &format!("cluster-{c}"), &labels).expect("substitute");
        substitute_time += start.elapsed();
        let start = Instant::now();
        digests.insert(Bundle::new(specialised).digest());
        digest_time += start.elapsed();
    }
    let total = total.elapsed();
    assert_eq!(digests.len(), CLUSTERS);
    println!(
        "{CLUSTERS} clusters: substitute {:.0} ms + canonicalize/digest {:.0} ms = {:.0} ms total ({:.2} ms per cluster)",
        ms(substitute_time),
        ms(digest_time),
        ms(total),
        ms(total) / CLUSTERS as f64
    );
}
