//! kustomize's own test suite, replayed against the native engine.
//!
//! The `krusty` tests of `sigs.k8s.io/kustomize/api` each write a small tree and build it.
//! `krusty-harness/` (a Go helper with its own go.mod) runs those tests at test time with
//! a recording stand-in for their harness, so every build becomes a case on disk: the
//! tree, the folder built, and what `kustomize build` prints for it (or its error). The
//! dump is cached in `$DRIFTLESS_CACHE_DIR/krusty/<key>/` (default `~/.cache/driftless`),
//! keyed by the module version and the helper's sources; nothing of kustomize is kept in
//! this repository.
//!
//! Every case whose test passes under kustomize is built here and classed as identical,
//! different (the dangerous class: we would apply something else), refused (kustomize
//! builds, we fail), or, for cases kustomize itself fails, agreed refusals or wrong builds.
//! Expected outputs are those of `kustomize build` with no flags, as driftless takes none;
//! a case that only builds with a flag (plugins, helm, `--load-restrictor none`) is
//! skipped and counted by reason.
//!
//! Go is required: without it (or without network for a first module download) the test
//! fails, it never skips. The floors below only move up.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::DirTree;
use sha2::Digest;

/// Cases built byte-identical to kustomize; raise it when a fix lands, never lower it.
const IDENTICAL_FLOOR: usize = 230;
/// Cases we build differently from kustomize; lower it when a fix lands.
const DIFFERENT_CEILING: usize = 0;
/// Cases kustomize refuses and we build anyway; lower it when a fix lands.
const BUILT_WHERE_KUSTOMIZE_REFUSES_CEILING: usize = 0;

const API_MODULE: &str = "sigs.k8s.io/kustomize/api";

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The version a go.mod requires for the kustomize api module.
fn required_version(go_mod: &Path) -> String {
    let text = std::fs::read_to_string(go_mod)
        .unwrap_or_else(|e| panic!("reading {}: {e}", go_mod.display()));
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let first = words.next()?;
            let (module, version) = if first == "require" {
                (words.next()?, words.next()?)
            } else {
                (first, words.next()?)
            };
            (module == API_MODULE).then(|| version.to_owned())
        })
        .next()
        .unwrap_or_else(|| panic!("{} does not require {API_MODULE}", go_mod.display()))
}

fn cache_root() -> PathBuf {
    if let Some(d) = std::env::var_os("DRIFTLESS_CACHE_DIR") {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").expect("HOME or DRIFTLESS_CACHE_DIR must be set");
    Path::new(&home).join(".cache/driftless")
}

/// The dump for this module version and helper, made now if the cache lacks it.
fn dump() -> PathBuf {
    let harness = manifest_dir().join("krusty-harness");
    let version = required_version(&harness.join("go.mod"));
    let pinned = required_version(&manifest_dir().join("../../testenv/peers/go.mod"));
    assert_eq!(
        version, pinned,
        "krusty-harness/go.mod must require the {API_MODULE} version testenv pins"
    );
    let mut h = sha2::Sha256::new();
    h.update(version.as_bytes());
    for f in [
        "go.mod",
        "go.sum",
        "main.go",
        "tools.go",
        "recorder/harness.go",
        "recorder/plugintestenv.go",
    ] {
        let data = std::fs::read(harness.join(f)).unwrap_or_else(|e| panic!("reading {f}: {e}"));
        h.update(f.as_bytes());
        h.update((data.len() as u64).to_le_bytes());
        h.update(&data);
    }
    let key: String = h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let dir = cache_root().join("krusty").join(&key);
    if dir.join("module").exists() {
        return dir;
    }
    let tmp = cache_root()
        .join("krusty")
        .join(format!("{key}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(tmp.parent().expect("has a parent")).expect("create cache dir");
    eprintln!(
        "krusty: dumping the {API_MODULE}@{version} krusty tests into {} (go test, about a minute)",
        dir.display()
    );
    let status = Command::new("go")
        .args(["run", ".", "-out"])
        .arg(&tmp)
        .current_dir(&harness)
        .env("GOWORK", "off")
        .status()
        .unwrap_or_else(|e| {
            panic!("krusty: the Go toolchain is required to run kustomize's test suite (`go` on PATH): {e}")
        });
    assert!(
        status.success(),
        "krusty: krusty-harness failed ({status}); see its output above"
    );
    if std::fs::rename(&tmp, &dir).is_err() {
        // Another run finished the same dump first; theirs is as good as ours.
        let _ = std::fs::remove_dir_all(&tmp);
        assert!(
            dir.join("module").exists(),
            "krusty: could not store the dump"
        );
    }
    dir
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Identical,
    Different,
    Refused,
    BothRefuse,
    BuiltWhereKustomizeRefuses,
    Panicked,
    Skipped,
    NotPassingUnderKustomize,
}

struct Case {
    name: String,
    outcome: Outcome,
    detail: String,
}

fn flag(meta: &serde_json::Value, key: &str) -> bool {
    meta.get(key).and_then(serde_json::Value::as_bool) == Some(true)
}

fn first_lines(s: &str, n: usize) -> String {
    s.lines().take(n).collect::<Vec<_>>().join("\n")
}

fn run_case(dir: &Path, name: &str) -> Case {
    let meta: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("meta.json")).expect("meta.json in every case"),
    )
    .expect("meta.json is JSON");
    let status = std::fs::read_to_string(dir.join("test-status")).unwrap_or_default();
    let case = |outcome, detail: String| Case {
        name: name.to_owned(),
        outcome,
        detail,
    };
    if status.trim() != "passed" {
        return case(
            Outcome::NotPassingUnderKustomize,
            format!("its test {} here", status.trim()),
        );
    }
    if let Some(why) = meta.get("unrecordable").and_then(|v| v.as_str()) {
        return case(Outcome::Skipped, format!("tree not recordable: {why}"));
    }
    let expected = std::fs::read_to_string(dir.join("expected.yaml")).ok();
    let expected_err = std::fs::read_to_string(dir.join("expected.err")).ok();
    // The dump holds what `kustomize build` prints with no flags. A test that built with
    // more enabled, and that plain build fails, needs a flag driftless does not take.
    if expected.is_none() && !flag(&meta, "expectError") {
        for (key, why) in [
            (
                "loadRestrictionsNone",
                "needs --load-restrictor LoadRestrictionsNone",
            ),
            (
                "helmEnabled",
                "needs plugins or helm (--enable-alpha-plugins / --enable-helm)",
            ),
            (
                "pluginsEnabled",
                "needs plugins or helm (--enable-alpha-plugins / --enable-helm)",
            ),
        ] {
            if flag(&meta, key) {
                return case(Outcome::Skipped, why.to_owned());
            }
        }
    }
    let build_dir = meta.get("dir").and_then(|v| v.as_str()).unwrap_or_default();
    let tree = DirTree(dir.join("tree"));
    let ours = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        driftless_kustomize::build(&tree, build_dir).map(|b| b.to_yaml())
    }));
    match (ours, expected, expected_err) {
        (Err(_), _, _) => case(Outcome::Panicked, "driftless panicked".to_owned()),
        (Ok(Ok(mine)), Some(theirs), _) if mine == theirs => {
            case(Outcome::Identical, String::new())
        }
        (Ok(Ok(mine)), Some(theirs), _) => {
            let diff = similar::TextDiff::from_lines(&theirs, &mine)
                .unified_diff()
                .header("kustomize", "driftless")
                .to_string();
            case(Outcome::Different, first_lines(&diff, 30))
        }
        (Ok(Err(e)), Some(_), _) => case(Outcome::Refused, e.to_string()),
        (Ok(Err(_)), None, _) => case(Outcome::BothRefuse, String::new()),
        (Ok(Ok(mine)), None, err) => case(
            Outcome::BuiltWhereKustomizeRefuses,
            format!(
                "kustomize: {}\ndriftless built:\n{}",
                err.unwrap_or_default(),
                first_lines(&mine, 10)
            ),
        ),
    }
}

#[test]
fn krusty_suite_against_the_native_engine() {
    let dump = dump();
    let cases_dir = dump.join("cases");
    let mut names: Vec<String> = std::fs::read_dir(&cases_dir)
        .expect("cases folder in the dump")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(
        names.len() > 100,
        "krusty: only {} cases dumped",
        names.len()
    );

    // KRUSTY_ONLY=substring: build just the matching cases and print what we make of them
    // (for debugging; the floors are not checked then).
    if let Some(only) = std::env::var_os("KRUSTY_ONLY") {
        let only = only.to_string_lossy().into_owned();
        for n in names.iter().filter(|n| n.contains(&only)) {
            let dir = cases_dir.join(n);
            let meta: serde_json::Value =
                serde_json::from_slice(&std::fs::read(dir.join("meta.json")).expect("meta"))
                    .expect("meta.json is JSON");
            let build_dir = meta.get("dir").and_then(|v| v.as_str()).unwrap_or_default();
            let out = driftless_kustomize::build(&DirTree(dir.join("tree")), build_dir)
                .map(|b| b.to_yaml());
            match out {
                Ok(y) => eprintln!("== {n} ({})\n{y}", dir.display()),
                Err(e) => eprintln!("== {n} ({})\nerror: {e}", dir.display()),
            }
            let c = run_case(&dir, n);
            eprintln!("-> {:?}\n{}", c.outcome, c.detail);
        }
        return;
    }

    let cases: Vec<Case> = names
        .iter()
        .map(|n| run_case(&cases_dir.join(n), n))
        .collect();
    let mut by: BTreeMap<Outcome, Vec<&Case>> = BTreeMap::new();
    for c in &cases {
        by.entry(c.outcome).or_default().push(c);
    }
    let count = |o| by.get(&o).map_or(0, Vec::len);

    let verbose = std::env::var_os("KRUSTY_VERBOSE").is_some();
    let mut report = String::new();
    for (o, list) in &by {
        if matches!(o, Outcome::Identical | Outcome::BothRefuse) {
            continue;
        }
        report.push_str(&format!("\n== {o:?} ({})\n", list.len()));
        for c in list {
            report.push_str(&format!("  {}", c.name));
            if matches!(o, Outcome::Skipped | Outcome::NotPassingUnderKustomize) || !verbose {
                report.push_str(&format!(": {}\n", first_lines(&c.detail, 1)));
            } else {
                report.push_str(&format!("\n{}\n", c.detail));
            }
        }
    }
    let mut skipped: BTreeMap<&str, usize> = BTreeMap::new();
    for c in by.get(&Outcome::Skipped).into_iter().flatten() {
        *skipped.entry(c.detail.as_str()).or_default() += 1;
    }
    let replayed = count(Outcome::Identical)
        + count(Outcome::Different)
        + count(Outcome::Refused)
        + count(Outcome::Panicked);
    let summary = format!(
        "krusty ({}): {} cases; {} pass under kustomize, {} skipped {:?}; of the {} kustomize builds: \
         {} identical, {} different, {} refused by us, {} panicked; of the {} it refuses: {} refused \
         by us too, {} built by us",
        dump.display(),
        cases.len(),
        cases.len() - count(Outcome::NotPassingUnderKustomize),
        count(Outcome::Skipped),
        skipped,
        replayed,
        count(Outcome::Identical),
        count(Outcome::Different),
        count(Outcome::Refused),
        count(Outcome::Panicked),
        count(Outcome::BothRefuse) + count(Outcome::BuiltWhereKustomizeRefuses),
        count(Outcome::BothRefuse),
        count(Outcome::BuiltWhereKustomizeRefuses),
    );
    eprintln!("{report}\n{summary}");
    assert!(
        count(Outcome::Identical) >= IDENTICAL_FLOOR,
        "krusty: identical fell below the floor {IDENTICAL_FLOOR}: {summary}"
    );
    // The ceiling is a ratchet and reads the same at zero as above it.
    #[allow(clippy::absurd_extreme_comparisons)]
    let within_ceiling = count(Outcome::Different) <= DIFFERENT_CEILING;
    assert!(
        within_ceiling,
        "krusty: different rose above the ceiling {DIFFERENT_CEILING}: {summary}"
    );
    #[allow(clippy::absurd_extreme_comparisons)]
    let within_refusal_ceiling =
        count(Outcome::BuiltWhereKustomizeRefuses) <= BUILT_WHERE_KUSTOMIZE_REFUSES_CEILING;
    assert!(
        within_refusal_ceiling,
        "krusty: builds where kustomize refuses rose above the ceiling \
         {BUILT_WHERE_KUSTOMIZE_REFUSES_CEILING}: {summary}"
    );
    assert_eq!(
        count(Outcome::Panicked),
        0,
        "krusty: driftless panicked: {summary}"
    );
}
