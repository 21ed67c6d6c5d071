//! Differential test of the Sprig functions implemented so far against Sprig v3.3.0
//! itself (the Go program in `oracle/sprig/`): generated calls with well- and ill-typed
//! arguments must give byte-identical output or fail where Sprig fails.
//! `DRIFTLESS_GOTMPL_SPRIG_CASES` (default 2000) and `DRIFTLESS_GOTMPL_SEED` apply.

mod common;

use std::io::Write as _;
use std::process::{Command, Stdio};

use driftless_gotmpl::{Templates, Value};
use serde_json::json;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e3779b97f4a7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[self.below(v.len())]
    }
}

const STRS: &[&str] = &[
    "\"hello world\"",
    "\"  padded  \"",
    "\"\"",
    "\"$5.00$\"",
    "\"a\\nb\\nc\"",
    "\"Ünïcode ß straße\"",
    "\"snake_case word\"",
    "\"x-y z\"",
    "\"aGVsbG8=\"",
    "\"aGVsbG8\"",
    "\"!!\"",
    "\"tab\\there\"",
    ".s",
    ".name",
    ".multi",
    "\"héllo\"",
    "\"ǆemo title\"",
    "\"abc\"",
];
const INTS: &[&str] = &["0", "1", "2", "3", "-1", "-3", "10", ".n", "(len .list)"];
const ANYS: &[&str] = &[
    ".s",
    ".n",
    ".f",
    ".list",
    ".map",
    ".nil",
    ".missing",
    "1",
    "1.5",
    "true",
    "false",
    "\"\"",
    "\"x\"",
    "0",
    ".empty",
    "(list 1 \"a\")",
    "(dict \"k\" 1)",
];

fn arg(r: &mut Rng, kind: char) -> String {
    // Now and then a wrong type, to compare Go's argument errors.
    if r.below(12) == 0 {
        return r.pick(ANYS).to_string();
    }
    match kind {
        's' => r.pick(STRS).to_string(),
        'i' => r.pick(INTS).to_string(),
        'b' => r.pick(&["true", "false", ".t"]).to_string(),
        'm' => r
            .pick(&[".map", "(dict \"a\" 1 \"b\" \"x\")", ".empty"])
            .to_string(),
        _ => r.pick(ANYS).to_string(),
    }
}

/// name, then the parameter kinds: s string, i int, b bool, m map, a any, * variadic any.
const FUNCS: &[(&str, &str)] = &[
    ("trim", "s"),
    ("trimAll", "ss"),
    ("trimPrefix", "ss"),
    ("trimSuffix", "ss"),
    ("upper", "s"),
    ("lower", "s"),
    ("title", "s"),
    ("repeat", "is"),
    ("substr", "iis"),
    ("trunc", "is"),
    ("nospace", "s"),
    ("contains", "ss"),
    ("hasPrefix", "ss"),
    ("hasSuffix", "ss"),
    ("quote", "*"),
    ("squote", "*"),
    ("cat", "*"),
    ("indent", "is"),
    ("nindent", "is"),
    ("replace", "sss"),
    ("plural", "ssi"),
    ("toString", "a"),
    ("default", "a*"),
    ("empty", "a"),
    ("coalesce", "*"),
    ("ternary", "aab"),
    ("list", "*"),
    ("join", "sa"),
    ("splitList", "ss"),
    ("sortAlpha", "a"),
    ("dict", "*"),
    ("get", "ms"),
    ("hasKey", "ms"),
    ("b64enc", "s"),
    ("b64dec", "s"),
    ("first", "l"),
    ("last", "l"),
    ("rest", "l"),
    ("initial", "l"),
    ("append", "la"),
    ("push", "la"),
    ("prepend", "la"),
    ("concat", "ll"),
    ("reverse", "l"),
    ("uniq", "l"),
    ("without", "la"),
    ("has", "al"),
    ("compact", "l"),
    ("until", "i"),
];

fn call(r: &mut Rng) -> String {
    let (name, kinds) = FUNCS[r.below(FUNCS.len())];
    let mut s = name.to_string();
    for k in kinds.chars() {
        if k == '*' {
            for _ in 0..r.below(4) {
                s.push(' ');
                s.push_str(&arg(r, 'a'));
            }
        } else {
            s.push(' ');
            s.push_str(&arg(r, k));
        }
    }
    s
}

fn gen_template(r: &mut Rng) -> String {
    let mut t = String::new();
    for _ in 0..1 + r.below(3) {
        let c = call(r);
        let piped = match r.below(5) {
            0 => format!("{{{{{c} | printf \"%v|%T\"}}}}"),
            1 => format!("{{{{{c} | toString | upper}}}}"),
            2 => format!("{{{{{} | {c}}}}}", r.pick(STRS)),
            _ => format!("{{{{{c}}}}}"),
        };
        t.push_str(&piped);
        t.push('\n');
    }
    t
}

#[test]
fn sprig_functions_match_sprig() {
    let n: usize = std::env::var("DRIFTLESS_GOTMPL_SPRIG_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let seed: u64 = std::env::var("DRIFTLESS_GOTMPL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20261202);
    println!("gotmpl sprig oracle: {n} cases, seed {seed}");
    let bin = common::sprig_oracle_binary();
    let data = json!({"s": " Web Server ", "name": "nginx", "multi": "line1\nline2", "n": 2, "f": 1.5, "t": true,
        "list": ["b", "a", null, 3], "dup": [1, 1.0, "1", [1], [1], {"a": 1}, {"a": 1}], "map": {"a": 1, "b": "x"}, "nil": null, "empty": ""});
    let mut r = Rng(seed);
    let templates: Vec<String> = (0..n).map(|_| gen_template(&mut r)).collect();
    let mut input = Vec::new();
    for t in &templates {
        let line = json!({"templates": [{"name": "main", "text": t}], "exec": "main", "data": data, "typed": true, "missingkey": ""});
        serde_json::to_writer(&mut input, &line).expect("encode");
        input.push(b'\n');
    }
    let mut child = Command::new(&bin)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start sprig oracle");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("oracle output");
    writer.join().expect("writer").expect("write");
    assert!(out.status.success(), "sprig oracle failed");
    let results: Vec<serde_json::Value> = out
        .stdout
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("json"))
        .collect();
    assert_eq!(results.len(), n);

    let value = Value::from_json_typed(&data);
    let (mut same, mut both_err, mut same_msg, mut unsupported) = (0, 0, 0, 0);
    let mut bad = Vec::new();
    let mut msgs = Vec::new();
    for (t, g) in templates.iter().zip(&results) {
        let mut set = Templates::new();
        driftless_gotmpl::sprig::add_to(&mut set);
        let ours = set
            .parse("main", t)
            .map_err(|e| e.to_string())
            .and_then(|s| s.execute("main", &value).map_err(|e| e.to_string()));
        let (go_out, go_err) = (g["out"].as_str().unwrap_or_default(), g["err"].as_str());
        match (go_err, ours) {
            (None, Ok(o)) if o == go_out => same += 1,
            (Some(_), Err(oe)) if oe.contains("(not supported)") => unsupported += 1,
            (Some(ge), Err(oe)) => {
                both_err += 1;
                if ge == oe {
                    same_msg += 1;
                } else {
                    msgs.push(format!("{t:?}\n    go:   {ge}\n    ours: {oe}"));
                }
            }
            (None, Err(oe)) if oe.contains("(not supported)") => unsupported += 1,
            (ge, o) => bad.push(format!(
                "{t:?}\n    go:   {go_out:?} {ge:?}\n    ours: {o:?}"
            )),
        }
    }
    println!(
        "gotmpl sprig oracle: {n} cases: {same} identical outputs, {both_err} errors on both sides ({same_msg} identical messages), {unsupported} refused as unsupported, {} mismatches",
        bad.len()
    );
    for m in msgs.iter().take(10) {
        println!("  message differs: {m}");
    }
    for b in bad.iter().take(20) {
        println!("  MISMATCH {b}");
    }
    assert!(
        bad.is_empty(),
        "{} of {n} Sprig cases differ (seed {seed})",
        bad.len()
    );
}
