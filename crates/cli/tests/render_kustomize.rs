//! `driftless render` on a kustomization prints exactly what the real `kustomize build`
//! prints (the binary from testenv), through the CLI a user runs.

use std::path::{Path, PathBuf};
use std::process::Command;

fn kustomize() -> PathBuf {
    let dir = std::env::var_os("DRIFTLESS_TESTENV_BIN").expect(
        "DRIFTLESS_TESTENV_BIN must name testenv's bin dir (run scripts/test, or testenv/build)",
    );
    PathBuf::from(dir).join("kustomize")
}

fn stdout_of(command: &mut Command) -> (bool, String) {
    let output = command.output().expect("run");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn render_of_kustomizations_matches_kustomize_build_byte_for_byte() {
    let cases = Path::new(env!("CARGO_MANIFEST_DIR")).join("../kustomize/tests/cases");
    let mut names: Vec<_> = std::fs::read_dir(&cases)
        .expect("the kustomize differential cases")
        .map(|e| e.expect("entry").path())
        .filter(|p| !p.join("expect-error").exists())
        .collect();
    names.sort();
    // Every fourth case keeps the run short; the kustomize crate's own suite runs them all.
    let picked: Vec<_> = names.iter().step_by(4).collect();
    assert!(
        picked.len() >= 40,
        "expected many cases, found {}",
        picked.len()
    );
    let mut mismatches = Vec::new();
    for case in picked {
        let sub = std::fs::read_to_string(case.join("build-dir")).unwrap_or_else(|_| ".".into());
        let dir = case.join(sub.trim());
        let (ok_real, real) = stdout_of(Command::new(kustomize()).arg("build").arg(&dir));
        let (ok_ours, ours) = stdout_of(
            Command::new(env!("CARGO_BIN_EXE_driftless"))
                .arg("render")
                .arg(&dir),
        );
        assert!(ok_real, "kustomize failed on {}", dir.display());
        if !ok_ours || ours != real {
            mismatches.push(dir.display().to_string());
        }
    }
    assert!(
        mismatches.is_empty(),
        "driftless render differs from kustomize build for: {mismatches:#?}"
    );
}

#[test]
fn unsupported_kustomize_fields_fail_naming_the_field_and_render_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("kustomization.yaml"),
        "resources: []\nhelmCharts:\n  - name: x\n",
    )
    .expect("write");
    let output = Command::new(env!("CARGO_BIN_EXE_driftless"))
        .arg("render")
        .arg(dir.path())
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        output.stdout.is_empty(),
        "nothing may be printed on failure"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("field helmCharts is not supported"),
        "{stderr}"
    );
}
