//! Reading Go's own test tables from the toolchain source on this machine, at test time.
//! Nothing of Go's is copied into the repository: the tables are parsed from
//! `$(go env GOROOT)/src/...` each run.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

/// GOROOT from the `go` on PATH. Fails loudly when Go is missing: these tests need it.
pub fn goroot() -> PathBuf {
    let out = Command::new("go").args(["env", "GOROOT"]).output().unwrap_or_else(|e| {
        panic!("the `go` toolchain is required for driftless-gotmpl's tests (Go's own tables and the oracle) but running `go env GOROOT` failed: {e}")
    });
    assert!(
        out.status.success(),
        "`go env GOROOT` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

pub fn read_go_source(rel: &str) -> String {
    let p = goroot().join("src").join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read Go's {}: {e}", p.display()))
}

/// Skips a Go string/rune/raw literal or comment starting at `i`; returns the index after it.
fn skip_atom(b: &[u8], i: usize) -> Option<usize> {
    match b[i] {
        b'"' | b'\'' => {
            let q = b[i];
            let mut j = i + 1;
            while j < b.len() && b[j] != q {
                if b[j] == b'\\' {
                    j += 1;
                }
                j += 1;
            }
            Some((j + 1).min(b.len()))
        }
        b'`' => {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'`' {
                j += 1;
            }
            Some((j + 1).min(b.len()))
        }
        b'/' if b.get(i + 1) == Some(&b'/') => {
            let mut j = i;
            while j < b.len() && b[j] != b'\n' {
                j += 1;
            }
            Some(j)
        }
        b'/' if b.get(i + 1) == Some(&b'*') => {
            let mut j = i + 2;
            while j + 1 < b.len() && !(b[j] == b'*' && b[j + 1] == b'/') {
                j += 1;
            }
            Some((j + 2).min(b.len()))
        }
        _ => None,
    }
}

/// The text of the composite literal that follows `header` (which ends with `{`), without
/// its outer braces.
pub fn literal_body<'a>(src: &'a str, header: &str) -> &'a str {
    let start = src
        .find(header)
        .unwrap_or_else(|| panic!("Go source has no `{header}`"))
        + header.len();
    let b = src.as_bytes();
    let mut depth = 1;
    let mut i = start;
    while i < b.len() {
        if let Some(j) = skip_atom(b, i) {
            i = j;
            continue;
        }
        match b[i] {
            b'{' | b'(' | b'[' => depth += 1,
            b'}' | b')' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return &src[start..i];
                }
            }
            _ => {}
        }
        i += 1;
    }
    panic!("unterminated literal after `{header}`")
}

/// Splits at top-level commas (outside brackets, strings and comments), trimming
/// whitespace and comments from each piece; empty pieces are dropped.
pub fn split_top(s: &str) -> Vec<String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    let mut i = 0;
    while i < b.len() {
        if let Some(j) = skip_atom(b, i) {
            if b[i] != b'/' {
                cur.push_str(&s[i..j]);
            }
            i = j;
            continue;
        }
        match b[i] {
            b'{' | b'(' | b'[' => depth += 1,
            b'}' | b')' | b']' => depth -= 1,
            b',' if depth == 0 => {
                let t = cur.trim().to_string();
                if !t.is_empty() {
                    out.push(t);
                }
                cur.clear();
                i += 1;
                continue;
            }
            _ => {}
        }
        let c = s[i..].chars().next().unwrap();
        cur.push(c);
        i += c.len_utf8();
    }
    let t = cur.trim().to_string();
    if !t.is_empty() {
        out.push(t);
    }
    out
}

/// The entries `{a, b, c}` of a slice literal, each split into its fields.
pub fn entries(body: &str) -> Vec<Vec<String>> {
    split_top(body)
        .into_iter()
        .filter_map(|e| {
            let e = e.trim();
            let inner = e.strip_prefix('{')?.strip_suffix('}')?;
            Some(split_top(inner))
        })
        .collect()
}

/// Go string literal ("…" or `…`) to its value; None if it is not valid UTF-8 text.
pub fn unquote(lit: &str) -> Option<String> {
    if let Some(r) = lit.strip_prefix('`') {
        return Some(r.strip_suffix('`')?.replace('\r', ""));
    }
    let body = lit.strip_prefix('"')?.strip_suffix('"')?;
    let mut out: Vec<u8> = Vec::new();
    let mut it = body.char_indices().peekable();
    while let Some((_, c)) = it.next() {
        if c != '\\' {
            let mut buf = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let (_, e) = it.next()?;
        let mut take = |n: usize| -> Option<u32> {
            let mut s = String::new();
            for _ in 0..n {
                s.push(it.next()?.1);
            }
            u32::from_str_radix(&s, 16).ok()
        };
        match e {
            'a' => out.push(7),
            'b' => out.push(8),
            'f' => out.push(12),
            'n' => out.push(b'\n'),
            'r' => out.push(b'\r'),
            't' => out.push(b'\t'),
            'v' => out.push(11),
            '\\' => out.push(b'\\'),
            '"' => out.push(b'"'),
            '\'' => out.push(b'\''),
            'x' => out.push(take(2)? as u8),
            'u' => out.extend_from_slice(char::from_u32(take(4)?)?.to_string().as_bytes()),
            'U' => out.extend_from_slice(char::from_u32(take(8)?)?.to_string().as_bytes()),
            '0'..='7' => {
                let a = it.next()?.1;
                let b2 = it.next()?.1;
                let v = u32::from_str_radix(&format!("{e}{a}{b2}"), 8).ok()?;
                out.push(v as u8);
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

/// Evaluates a Go string expression made of literals, named constants and `+`.
pub fn eval_string(expr: &str, names: &HashMap<String, String>) -> Option<String> {
    let mut out = String::new();
    for part in split_plus(expr) {
        let p = part.trim();
        if p.starts_with('"') || p.starts_with('`') {
            out.push_str(&unquote(p)?);
        } else if let Some(v) = names.get(p) {
            out.push_str(v);
        } else {
            return None;
        }
    }
    Some(out)
}

fn split_plus(s: &str) -> Vec<String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut i = 0;
    let mut depth = 0;
    while i < b.len() {
        if let Some(j) = skip_atom(b, i) {
            cur.push_str(&s[i..j]);
            i = j;
            continue;
        }
        match b[i] {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            b'+' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                i += 1;
                continue;
            }
            _ => {}
        }
        cur.push(b[i] as char);
        i += 1;
    }
    out.push(cur);
    out
}

/// `const NAME = "…"` string constants declared at the top level of a Go file.
pub fn string_consts(src: &str) -> HashMap<String, String> {
    let mut m = HashMap::new();
    for line in src.lines() {
        if let Some(rest) = line.strip_prefix("const ")
            && let Some((name, val)) = rest.split_once(" = ")
            && let Some(v) = unquote(val.trim())
        {
            m.insert(name.trim().to_string(), v);
        }
    }
    m
}

// ---- the Go oracle ----

fn fnv1a(data: &[u8], mut h: u64) -> u64 {
    for b in data {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// Builds the oracle once per source hash and returns its path.
pub fn oracle_binary() -> PathBuf {
    build_oracle("oracle", &["go.mod", "main.go"])
}

/// The oracle with Sprig v3.3.0 (its module comes through the Go module proxy/cache).
pub fn sprig_oracle_binary() -> PathBuf {
    build_oracle("oracle/sprig", &["go.mod", "go.sum", "main.go"])
}

fn build_oracle(dir: &str, files: &[&str]) -> PathBuf {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut h = 0xcbf29ce484222325;
    for f in files {
        let text = std::fs::read(src.join(f)).unwrap_or_else(|e| panic!("oracle source {f}: {e}"));
        h = fnv1a(f.as_bytes(), h);
        h = fnv1a(&text, h);
    }
    let version = Command::new("go").arg("version").output().unwrap_or_else(|e| {
        panic!("the `go` toolchain is required for the gotmpl differential oracle, but `go version` failed: {e}")
    });
    h = fnv1a(&version.stdout, h);
    let cache = std::env::var_os("DRIFTLESS_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/driftless")
        });
    let dir = cache.join("gotmpl-oracle").join(format!("{h:016x}"));
    let bin = dir.join("oracle");
    if !bin.exists() {
        std::fs::create_dir_all(&dir).expect("oracle cache dir");
        // Build to a temporary name first so a concurrent run never sees half a binary.
        let tmp = dir.join(format!("oracle.tmp{}", std::process::id()));
        let st = Command::new("go")
            .args(["build", "-o"])
            .arg(&tmp)
            .arg(".")
            .current_dir(&src)
            .env("GOFLAGS", "-mod=mod")
            .status()
            .expect("go build of the oracle");
        assert!(st.success(), "go build of the gotmpl oracle failed");
        std::fs::rename(&tmp, &bin).expect("install oracle");
    }
    bin
}
