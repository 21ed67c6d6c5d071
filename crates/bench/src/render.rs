//! Scenario 5: a Kustomize tree of 50 overlays over four shared bases, built overlay by
//! overlay with `driftless render` and with `kustomize build` (one process each, as a
//! CI job or Argo CD's repo-server runs it). The outputs must be byte-identical.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use driftless_bench::Figure;
use serde_json::{Value, json};
use tokio::process::Command;

const OVERLAYS: usize = 50;

fn put(path: &Path, text: &str) -> Result<()> {
    std::fs::create_dir_all(path.parent().context("a parent folder")?)?;
    std::fs::write(path, text)?;
    Ok(())
}

/// Four bases (Deployments, Services, a ConfigMap generator), 50 overlays that patch,
/// prefix, relabel and retag them: 20 resources and a generated ConfigMap each.
fn tree(root: &Path) -> Result<()> {
    for b in 0..4 {
        let base = root.join(format!("base-{b}"));
        let mut resources = String::new();
        for r in 0..5 {
            let name = format!("svc{b}{r}");
            let text = if r % 2 == 0 {
                format!(
                    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: 2\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n        - name: app\n          image: registry.example.com/{name}:1.0.0\n          env:\n            - {{name: MODE, value: standard}}\n"
                )
            } else {
                format!(
                    "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  selector: {{app: {name}}}\n  ports:\n    - {{port: 80, targetPort: 8080}}\n"
                )
            };
            put(&base.join(format!("{name}.yaml")), &text)?;
            resources.push_str(&format!("  - {name}.yaml\n"));
        }
        put(
            &base.join("kustomization.yaml"),
            &format!(
                "resources:\n{resources}configMapGenerator:\n  - name: base-{b}-env\n    literals: [TIER=base{b}]\n"
            ),
        )?;
    }
    for o in 0..OVERLAYS {
        let text = format!(
            "resources: [../../base-0, ../../base-1, ../../base-2, ../../base-3]\nnamespace: env-{o}\nnamePrefix: e{o}-\nlabels:\n  - pairs: {{env: e{o}}}\n    includeSelectors: false\nimages:\n  - name: registry.example.com/svc00\n    newTag: \"2.{o}.0\"\nconfigMapGenerator:\n  - name: overlay-env\n    literals: [ENV=e{o}, REPLICAS=\"{o}\"]\npatches:\n  - target: {{kind: Deployment}}\n    patch: |-\n      - op: replace\n        path: /spec/replicas\n        value: {}\n",
            1 + o % 4
        );
        put(
            &root.join(format!("overlays/e{o}/kustomization.yaml")),
            &text,
        )?;
    }
    Ok(())
}

async fn build_all(root: &Path, program: &Path, verb: &str) -> Result<(f64, Vec<Vec<u8>>)> {
    let start = Instant::now();
    let mut outputs = Vec::with_capacity(OVERLAYS);
    for o in 0..OVERLAYS {
        let dir = root.join(format!("overlays/e{o}"));
        let output = Command::new(program).arg(verb).arg(&dir).output().await?;
        if !output.status.success() {
            bail!(
                "{} {verb} {}: {}",
                program.display(),
                dir.display(),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        outputs.push(output.stdout);
    }
    Ok((start.elapsed().as_secs_f64(), outputs))
}

pub async fn compare(
    root: &Path,
    driftless: &Path,
    kustomize: &Path,
    runs: usize,
) -> Result<Value> {
    if !kustomize.is_file() {
        bail!("{} is missing: run testenv/build", kustomize.display());
    }
    tree(root)?;
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let (t, a) = build_all(root, driftless, "render").await?;
        ours.push(t);
        let (t, b) = build_all(root, kustomize, "build").await?;
        theirs.push(t);
        if let Some(o) = (0..OVERLAYS).find(|&o| a[o] != b[o]) {
            bail!("overlay e{o}: driftless render and kustomize build disagree");
        }
    }
    let _ = std::fs::remove_dir_all(root);
    Ok(json!({
        "overlays": OVERLAYS,
        "resources_per_overlay": 25,
        "driftless_s": Figure::of(&ours).map(|f| f.to_json()),
        "kustomize_s": Figure::of(&theirs).map(|f| f.to_json()),
        "identical_output": true,
    }))
}
