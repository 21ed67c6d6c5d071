//! Differential suite: every tree under tests/cases is built by the real `kustomize build`
//! and by driftless; stdout must be byte-identical, and cases marked `expect-error` must
//! fail in both. All mismatches are reported at the end, each with a unified diff.
//!
//! Layout of a case: tests/cases/<name>/ holds the tree; the kustomization to build is in
//! the directory named by the file `build-dir` (default: the case root).

mod common;

use std::path::Path;
use std::process::Command;

use common::{DirTree, kustomize_bin};

#[test]
fn kustomize_and_driftless_agree_on_every_case() {
    let bin = kustomize_bin();
    let cases_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut names: Vec<String> = std::fs::read_dir(&cases_dir)
        .expect("tests/cases exists")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no cases found");
    let mut failures = Vec::new();
    let mut passed = 0;
    for name in &names {
        let root = cases_dir.join(name);
        let dir = std::fs::read_to_string(root.join("build-dir"))
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        let expect_error = root.join("expect-error").exists();
        let out = Command::new(&bin)
            .arg("build")
            .arg(if dir.is_empty() {
                root.clone()
            } else {
                root.join(&dir)
            })
            .output()
            .expect("run kustomize");
        let tree = DirTree(root.clone());
        let ours = driftless_kustomize::build(&tree, &dir);
        let theirs_ok = out.status.success();
        let theirs = String::from_utf8_lossy(&out.stdout).into_owned();
        let problem = match (&ours, theirs_ok, expect_error) {
            (Err(_), false, true) => None,
            (_, _, true) => Some(format!(
                "expected both to fail; kustomize ok={theirs_ok}, driftless ok={}",
                ours.is_ok()
            )),
            (Ok(b), true, false) => {
                let mine = b.to_yaml();
                if mine == theirs {
                    None
                } else {
                    let diff = similar::TextDiff::from_lines(&theirs, &mine)
                        .unified_diff()
                        .header("kustomize", "driftless")
                        .to_string();
                    Some(format!("output differs:\n{diff}"))
                }
            }
            (Err(e), true, false) => Some(format!("driftless failed: {e}")),
            (_, false, false) => Some(format!(
                "kustomize failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )),
        };
        match problem {
            None => passed += 1,
            Some(p) => failures.push(format!("=== case {name}: {p}")),
        }
    }
    eprintln!("{passed} of {} cases agree", names.len());
    assert!(
        failures.is_empty(),
        "{} of {} cases disagree:\n{}",
        failures.len(),
        names.len(),
        failures.join("\n")
    );
}
