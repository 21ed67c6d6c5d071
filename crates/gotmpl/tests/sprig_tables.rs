//! Sprig v3.3.0's own tests, read at test time from the Go module cache (the module the
//! sprig oracle downloads; never copied here): every `runt(template, expected)` whose
//! arguments are literals, or literal `tests := map[string]string{…}` tables run through
//! `runt`. Cases calling Sprig functions this crate does not have yet are skipped and
//! counted per function; cases needing Go data (`runtv`) are skipped.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Command;

use driftless_gotmpl::{Templates, Value};

fn sprig_dir() -> PathBuf {
    // Building the sprig oracle makes sure the module is in the cache.
    common::sprig_oracle_binary();
    let out = Command::new("go")
        .args(["env", "GOMODCACHE"])
        .output()
        .expect("go env GOMODCACHE");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
        .join("github.com/!masterminds/sprig/v3@v3.3.0")
}

/// (file, template, expected) for every literal `runt` case.
fn cases(src: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut vars: HashMap<String, String> = HashMap::new();
    let mut table: Vec<(String, String)> = Vec::new();
    let lines: Vec<&str> = src.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        if line.starts_with("func ") {
            vars.clear();
            table.clear();
        }
        // `tpl := "…"` / `tpl = "…"`.
        for op in [" := ", " = "] {
            if let Some((name, val)) = line.split_once(op)
                && !name.contains(' ')
            {
                // A value built by Go code makes the name unknown from here on.
                match common::eval_string(val, &vars) {
                    Some(v) => vars.insert(name.to_string(), v),
                    None => vars.remove(name),
                };
            }
        }
        // `tests := map[string]string{` … `}`.
        if line.ends_with("map[string]string{") {
            let mut body = String::new();
            i += 1;
            while i < lines.len() && lines[i].trim() != "}" {
                body.push_str(lines[i]);
                body.push('\n');
                i += 1;
            }
            table = common::split_top(&body)
                .iter()
                .filter_map(|kv| {
                    let (k, v) = split_colon(kv)?;
                    Some((
                        common::eval_string(k, &vars)?,
                        common::eval_string(v, &vars)?,
                    ))
                })
                .collect();
        }
        if let Some(pos) = line.find("runt(") {
            let expect_error = line.contains("assert.Error") || line.contains("err == nil");
            let args = &line[pos + 5..];
            let inner = args.rsplit_once(')').map(|(a, _)| a).unwrap_or(args);
            let inner = inner.trim_end_matches(')');
            let parts = common::split_top(inner);
            if parts.len() == 2 && !expect_error {
                let (t, e) = (
                    common::eval_string(&parts[0], &vars),
                    common::eval_string(&parts[1], &vars),
                );
                match (t, e) {
                    (Some(t), Some(e)) => out.push((t, e)),
                    _ if parts[0] == "tpl" && parts[1] == "expect" => {
                        out.extend(table.iter().cloned())
                    }
                    _ => {}
                }
            }
        }
        i += 1;
    }
    out
}

/// Splits `"key": "value"` at the colon outside string literals.
fn split_colon(kv: &str) -> Option<(&str, &str)> {
    let b = kv.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'`' => {
                i += 1;
                while i < b.len() && b[i] != b'`' {
                    i += 1;
                }
            }
            b':' => return Some((kv[..i].trim(), kv[i + 1..].trim())),
            _ => {}
        }
        i += 1;
    }
    None
}

#[test]
fn sprig_own_tests() {
    let dir = sprig_dir();
    let mut pass = 0;
    let mut fail = Vec::new();
    let mut missing: BTreeMap<String, usize> = BTreeMap::new();
    let mut total = 0;
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("sprig module dir")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    files.sort();
    for f in files {
        let name = f
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        if !name.ends_with("_test.go") || name.contains("windows") {
            continue;
        }
        let src = std::fs::read_to_string(&f).expect("read sprig test");
        for (tpl, expect) in cases(&src) {
            total += 1;
            let mut t = Templates::new();
            driftless_gotmpl::sprig::add_to(&mut t);
            let data = Value::map(Default::default());
            match t.parse("test", &tpl) {
                Err(e) => {
                    let msg = e.to_string();
                    if let Some(f) = msg
                        .split("function \"")
                        .nth(1)
                        .and_then(|r| r.split('"').next())
                    {
                        *missing.entry(f.to_string()).or_default() += 1;
                    } else {
                        fail.push(format!("{name}: {tpl:?}: parse error {msg}"));
                    }
                }
                Ok(t) => match t.execute("test", &data) {
                    Ok(out) if out == expect => pass += 1,
                    Ok(out) => fail.push(format!("{name}: {tpl:?}: want {expect:?} got {out:?}")),
                    Err(e) => fail.push(format!("{name}: {tpl:?}: error {e}")),
                },
            }
        }
    }
    let skipped: usize = missing.values().sum();
    println!(
        "== Sprig's own tests: {total} literal runt cases: {pass} passed, {} failed, {skipped} skipped (they call Sprig functions not implemented yet)",
        fail.len()
    );
    println!(
        "   not implemented yet (cases): {}",
        missing
            .iter()
            .map(|(k, v)| format!("{k} ({v})"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for f in &fail {
        println!("   FAIL {f}");
    }
    assert!(
        total > 50,
        "found only {total} Sprig cases: did the test files change shape?"
    );
    let applicable = pass + fail.len();
    assert!(
        pass as f64 >= 0.98 * applicable as f64,
        "Sprig's tests: {pass}/{applicable} applicable cases pass"
    );
}
