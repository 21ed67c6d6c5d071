//! Differential test against the real Go engine: a seeded generator makes templates ×
//! values, the Go program in `oracle/` renders them with Go's text/template, and this
//! crate must produce byte-identical output (or fail where Go fails).
//!
//! - `DRIFTLESS_GOTMPL_ORACLE_CASES` sets the number of cases (default 2000; the full run
//!   uses 10000 or more), `DRIFTLESS_GOTMPL_SEED` the seed (printed either way).
//! - The oracle is built with `go build` into `$DRIFTLESS_CACHE_DIR` (default
//!   `~/.cache/driftless`)`/gotmpl-oracle/<hash of its sources>/oracle`.
//! - Without `go` the test fails, saying so: it never silently skips.

mod common;

use std::io::Write as _;
use std::process::{Command, Stdio};

use driftless_gotmpl::{Error, ExecErrorKind, Limits, MissingKey, Templates, Value};
use serde_json::json;

/// splitmix64: small, seedable, good enough for a generator.
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
    fn chance(&mut self, pct: usize) -> bool {
        self.below(100) < pct
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}

const KEYS: &[&str] = &[
    "a", "b", "c", "name", "list", "map", "n", "f", "s", "empty", "nil", "t",
];

fn gen_scalar(r: &mut Rng) -> serde_json::Value {
    match r.below(12) {
        0 => json!(r.below(200) as i64 - 50),
        1 => json!(*r.pick(&[0, 1, -1, 3, 42, 1000000, 123456789, 9007199254740993i64])),
        2 => json!(*r.pick(&[
            0.5, 1.5, -2.25, 0.1, 1e6, 1e21, 1e-7, 3.0, 100000.0, 2.5e-5, 123456.789
        ])),
        3 => json!(r.chance(50)),
        4 => serde_json::Value::Null,
        5 => json!(""),
        6 => json!(*r.pick(&[
            "x",
            "hello world",
            "a<b>&c",
            "quote\"d",
            "it's",
            "tab\there",
            "new\nline",
            "ünïcødé",
            "日本",
            "%d",
            "{{x}}",
            "  spaced  ",
            "a=b&c d"
        ])),
        _ => json!(*r.pick(&["web", "db", "nginx", "v1.2.3", "true", "10", "3.5", "null"])),
    }
}

fn gen_value(r: &mut Rng, depth: usize) -> serde_json::Value {
    if depth > 2 || r.chance(55) {
        return gen_scalar(r);
    }
    if r.chance(50) {
        let n = r.below(4);
        serde_json::Value::Array((0..n).map(|_| gen_value(r, depth + 1)).collect())
    } else {
        let n = r.below(4);
        let mut m = serde_json::Map::new();
        for _ in 0..n {
            m.insert(r.pick(KEYS).to_string(), gen_value(r, depth + 1));
        }
        serde_json::Value::Object(m)
    }
}

fn gen_data(r: &mut Rng) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for k in KEYS {
        if r.chance(75) {
            let v = match *k {
                "list" => {
                    serde_json::Value::Array((0..r.below(5)).map(|_| gen_value(r, 1)).collect())
                }
                "map" => {
                    let mut mm = serde_json::Map::new();
                    for _ in 0..r.below(5) {
                        mm.insert(r.pick(KEYS).to_string(), gen_value(r, 1));
                    }
                    serde_json::Value::Object(mm)
                }
                "n" => json!(r.below(6) as i64 - 1),
                "f" => json!(*r.pick(&[0.0, 1.5, 2.0, -3.25, 1e6, 1e-5])),
                "s" => gen_scalar(r),
                "empty" => {
                    json!(*r.pick(&[json!(""), json!([]), json!({}), json!(0), json!(false)]))
                }
                "nil" => serde_json::Value::Null,
                "t" => json!(true),
                _ => gen_value(r, 0),
            };
            m.insert(k.to_string(), v);
        }
    }
    serde_json::Value::Object(m)
}

struct Gen<'r> {
    r: &'r mut Rng,
    typed: bool,
    vars: Vec<String>,
    in_range: bool,
    defines: Vec<String>,
}

const FORMATS: &[&str] = &[
    "%v",
    "%d",
    "%s",
    "%q",
    "%x",
    "%X",
    "%t",
    "%f",
    "%.2f",
    "%e",
    "%g",
    "%G",
    "%E",
    "%5d",
    "%-5d|",
    "%05d",
    "%+d",
    "% d",
    "%o",
    "%b",
    "%c",
    "%U",
    "%#x",
    "%#o",
    "%#v",
    "%T",
    "%8.3f",
    "%-8s|",
    "%.1s",
    "%10.4g",
    "%%",
    "%v %v",
    "%d-%s",
    "%[2]v %[1]v",
    "%*d",
    "%.*f",
    "%!",
    "%z",
    "%#q",
    "%+q",
    "%x %X",
    "% x",
    "%#U",
    "%6.2e",
    "%.0f",
    "%.3g",
    "%+.1e",
    "%#g",
    "%v%",
    "%-+6d|",
    "%08.3f",
    "%+v",
    "%.10v",
];

impl Gen<'_> {
    fn field(&mut self) -> String {
        let mut s = String::new();
        for _ in 0..1 + self.r.below(2) {
            s.push('.');
            s.push_str(KEYS[self.r.below(KEYS.len())]);
        }
        s
    }

    fn literal(&mut self) -> String {
        match self.r.below(10) {
            0 => (self.r.below(20) as i64 - 5).to_string(),
            1 => self
                .r
                .pick(&[
                    "1.5", "0.1", "1e3", "2.0", "-0.5", "1e21", "0x1F", "0o17", "0b101", "1_000",
                    "'a'", "'\\n'",
                ])
                .to_string(),
            2 => self.r.pick(&["true", "false"]).to_string(),
            3 => self
                .r
                .pick(&[
                    "\"x\"", "\"\"", "\"a b\"", "`raw`", "\"<&>\"", "\"ü\"", "\"\\t\"",
                ])
                .to_string(),
            4 => "nil".to_string(),
            _ => self.r.below(4).to_string(),
        }
    }

    fn operand(&mut self, depth: usize) -> String {
        match self.r.below(12) {
            0..=2 => self.field(),
            3 => ".".into(),
            4 => {
                if let Some(v) = self.vars.last().cloned()
                    && self.r.chance(70)
                {
                    if self.r.chance(30) {
                        format!("{v}{}", self.field())
                    } else {
                        v
                    }
                } else {
                    "$".into()
                }
            }
            5 => format!("${}", self.field()),
            6 | 7 if depth < 3 => format!("({})", self.pipeline(depth + 1)),
            _ => {
                let l = self.literal();
                if l == "nil" && self.r.chance(70) {
                    "0".into()
                } else {
                    l
                }
            }
        }
    }

    fn call(&mut self, depth: usize) -> String {
        let f = *self.r.pick(&[
            "and", "or", "not", "len", "index", "slice", "print", "printf", "println", "eq", "ne",
            "lt", "le", "gt", "ge", "html", "js", "urlquery",
        ]);
        let nargs = match f {
            "not" | "len" => 1,
            "ne" | "lt" | "le" | "gt" | "ge" => 2,
            "printf" => 0,
            "index" => 1 + self.r.below(3),
            "slice" => 1 + self.r.below(3),
            _ => 1 + self.r.below(3),
        };
        let mut s = f.to_string();
        if matches!(f, "eq" | "ne" | "lt" | "le" | "gt" | "ge") && self.r.chance(70) {
            // Mostly comparable operands, so that most cases get past the comparison.
            let ints: &[&str] = if self.typed {
                &["1", "0", "3", ".n", "(len .list)", "(len .map)", "$.n"]
            } else {
                &["1", "0", "3", "(len .list)", "(len .map)"]
            };
            let floats: &[&str] = if self.typed {
                &["1.5", ".f", "0.0"]
            } else {
                &["1.5", ".f", "0.0", ".n", "2.0"]
            };
            let strs: &[&str] = &[
                "\"a\"",
                "\"web\"",
                "(print .name)",
                "(printf \"%v\" .s)",
                "\"\"",
            ];
            let pool = match self.r.below(3) {
                0 => ints,
                1 => floats,
                _ => strs,
            };
            for _ in 0..if f == "eq" { 1 + self.r.below(3) } else { 2 } {
                s.push(' ');
                s.push_str(pool[self.r.below(pool.len())]);
            }
            return s;
        }
        if f == "printf" {
            s.push(' ');
            s.push_str(&format!("{:?}", self.r.pick(FORMATS)));
            for _ in 0..self.r.below(4) {
                s.push(' ');
                s.push_str(&self.operand(depth));
            }
            return s;
        }
        for i in 0..nargs {
            s.push(' ');
            if (f == "index" || f == "slice") && i > 0 && self.r.chance(70) {
                s.push_str(if self.r.chance(60) {
                    ["0", "1", "2", "-1", "5"][self.r.below(5)]
                } else {
                    ["\"a\"", "\"name\"", "\"zz\""][self.r.below(3)]
                });
            } else {
                s.push_str(&self.operand(depth));
            }
        }
        s
    }

    fn command(&mut self, depth: usize) -> String {
        if self.r.chance(55) {
            self.call(depth)
        } else {
            self.operand(depth)
        }
    }

    fn pipeline(&mut self, depth: usize) -> String {
        let mut s = self.command(depth);
        if self.r.chance(20) {
            let f = *self.r.pick(&[
                "print",
                "html",
                "js",
                "urlquery",
                "len",
                "not",
                "printf \"%v\"",
                "and 1",
                "or 0",
                "eq 1",
                "index .list",
                "println",
            ]);
            s = format!("{s} | {f}");
        }
        s
    }

    fn action(&mut self) -> String {
        let (l, r) = (
            if self.r.chance(15) { "{{- " } else { "{{" },
            if self.r.chance(15) { " -}}" } else { "}}" },
        );
        let body = if self.r.chance(12) {
            let v = format!("$v{}", self.vars.len());
            let p = self.pipeline(0);
            self.vars.push(v.clone());
            format!("{v} := {p}")
        } else if self.r.chance(5) && !self.vars.is_empty() {
            let v = self.vars[self.r.below(self.vars.len())].clone();
            format!("{v} = {}", self.pipeline(0))
        } else {
            self.pipeline(0)
        };
        format!("{l}{body}{r}")
    }

    fn text(&mut self) -> String {
        self.r
            .pick(&["x", " ", "\n", "a b ", "  \n  ", "-", ":", "<", "é", "\t"])
            .to_string()
    }

    fn list(&mut self, depth: usize, n: usize) -> String {
        let mut s = String::new();
        for _ in 0..n {
            s.push_str(&self.item(depth));
        }
        s
    }

    fn item(&mut self, depth: usize) -> String {
        let k = self.r.below(if depth > 2 { 4 } else { 12 });
        match k {
            0 | 1 => self.text(),
            2 | 3 => self.action(),
            4 => {
                let p = self.pipeline(0);
                let mark = self.vars.len();
                let n = 1 + self.r.below(3);
                let body = self.list(depth + 1, n);
                self.vars.truncate(mark);
                let els = if self.r.chance(50) {
                    if self.r.chance(40) {
                        let p2 = self.pipeline(0);
                        format!("{{{{else if {p2}}}}}{}", self.list(depth + 1, 1))
                    } else {
                        format!("{{{{else}}}}{}", self.list(depth + 1, 2))
                    }
                } else {
                    String::new()
                };
                format!("{{{{if {p}}}}}{body}{els}{{{{end}}}}")
            }
            5 => {
                let p = if self.r.chance(50) {
                    self.field()
                } else {
                    self.pipeline(0)
                };
                let mark = self.vars.len();
                let n = 1 + self.r.below(3);
                let body = self.list(depth + 1, n);
                self.vars.truncate(mark);
                let els = if self.r.chance(40) {
                    format!("{{{{else}}}}{}", self.list(depth + 1, 1))
                } else {
                    String::new()
                };
                format!("{{{{with {p}}}}}{body}{els}{{{{end}}}}")
            }
            6 | 7 => {
                let src = match self.r.below(7) {
                    0 | 1 => ".list".to_string(),
                    2 | 3 => ".map".to_string(),
                    4 => self.r.below(4).to_string(),
                    5 => (if self.typed { ".n" } else { "$.list" }).to_string(),
                    // Not arbitrary fields: Go itself takes minutes over `range 123456789`.
                    _ => self
                        .r
                        .pick(&[
                            ".empty",
                            ".nil",
                            ".t",
                            ".f",
                            ".missing",
                            ".map.list",
                            ".list.x",
                        ])
                        .to_string(),
                };
                let mark = self.vars.len();
                let decl = match self.r.below(3) {
                    0 => String::new(),
                    1 => {
                        let v = format!("$v{}", self.vars.len());
                        self.vars.push(v.clone());
                        format!("{v} := ")
                    }
                    _ => {
                        let (a, b) = (
                            format!("$v{}", self.vars.len()),
                            format!("$v{}", self.vars.len() + 1),
                        );
                        self.vars.push(a.clone());
                        self.vars.push(b.clone());
                        format!("{a}, {b} := ")
                    }
                };
                let was = self.in_range;
                self.in_range = true;
                let n = 1 + self.r.below(3);
                let body = self.list(depth + 1, n);
                self.in_range = was;
                self.vars.truncate(mark);
                let els = if self.r.chance(40) {
                    format!("{{{{else}}}}{}", self.list(depth + 1, 1))
                } else {
                    String::new()
                };
                format!("{{{{range {decl}{src}}}}}{body}{els}{{{{end}}}}")
            }
            8 if self.in_range => (if self.r.chance(50) {
                "{{break}}"
            } else {
                "{{continue}}"
            })
            .to_string(),
            9 if !self.defines.is_empty() => {
                let name = self.defines[self.r.below(self.defines.len())].clone();
                let arg = if self.r.chance(80) {
                    format!(" {}", self.operand(2))
                } else {
                    String::new()
                };
                format!("{{{{template {name:?}{arg}}}}}")
            }
            10 => match self.r.below(6) {
                0 => "{{/* c */}}".to_string(),
                1 => "{{- /* trimmed */ -}}".to_string(),
                2 => {
                    // else-with chains (Go 1.23+).
                    let (a, b) = (self.field(), self.field());
                    let x = self.list(depth + 1, 1);
                    let y = self.list(depth + 1, 1);
                    format!(
                        "{{{{with {a}}}}}{x}{{{{else with {b}}}}}{y}{{{{else}}}}none{{{{end}}}}"
                    )
                }
                3 => {
                    let p = self.field();
                    format!("{{{{({p}).{}}}}}", KEYS[self.r.below(KEYS.len())])
                }
                4 => format!("{{{{(index .list {}).name}}}}", self.r.below(3)),
                _ => format!(
                    "{{{{block {:?} {}}}}}[{}]{{{{end}}}}",
                    format!("blk{}", self.r.below(3)),
                    self.operand(2),
                    self.text()
                ),
            },
            _ => self.action(),
        }
    }
}

struct Case {
    templates: Vec<(String, String)>,
    data: serde_json::Value,
    typed: bool,
    missing: &'static str,
}

fn gen_case(r: &mut Rng) -> Case {
    let typed = r.chance(50);
    let mut g = Gen {
        r,
        typed,
        vars: Vec::new(),
        in_range: false,
        defines: Vec::new(),
    };
    let mut templates = Vec::new();
    let mut main = String::new();
    if g.r.chance(30) {
        // A define in the same text, used by the main body.
        let body = g.list(2, 2);
        g.vars.clear();
        main.push_str(&format!("{{{{define \"part\"}}}}{body}{{{{end}}}}"));
        g.defines.push("part".into());
    }
    if g.r.chance(30) {
        // Formatting: printf/print/println over data and literals, which rarely fail.
        for _ in 0..1 + g.r.below(4) {
            let f = FORMATS[g.r.below(FORMATS.len())];
            let mut a = format!("{{{{printf {f:?}");
            for _ in 0..g.r.below(4) {
                let o = if g.r.chance(60) {
                    g.field()
                } else {
                    g.literal()
                };
                a.push(' ');
                a.push_str(if o == "nil" { "$.nil" } else { &o });
            }
            a.push_str("}}|");
            main.push_str(&a);
            if g.r.chance(40) {
                let w = *g.r.pick(&["print", "println"]);
                let (x, y) = (g.field(), g.literal());
                main.push_str(&format!("{{{{{w} {x} {y} .s \"z\" 1 2}}}}"));
            }
        }
    } else {
        let n = 1 + g.r.below(4);
        let body = g.list(0, n);
        main.push_str(&body);
    }
    if g.r.chance(15) {
        // Mutations: a few characters deleted, duplicated or inserted, to compare the
        // lexer's and parser's errors (and their line numbers) with Go's.
        let mut chars: Vec<char> = main.chars().collect();
        for _ in 0..1 + g.r.below(3) {
            if chars.is_empty() {
                break;
            }
            let at = g.r.below(chars.len());
            match g.r.below(3) {
                0 => {
                    chars.remove(at);
                }
                1 => chars.insert(at, chars[at]),
                _ => chars.insert(
                    at,
                    *g.r.pick(&[
                        '{', '}', '(', ')', '"', '`', '\'', '$', '.', '-', ' ', '\n', '|', ':',
                        '=', ',', '/', '*', '@', '1', 'x', 'é',
                    ]),
                ),
            }
        }
        main = chars.into_iter().collect();
    }
    templates.push(("main".to_string(), main));
    if g.r.chance(20) {
        // A second file of the same set, defining what the first may call.
        templates.push((
            "lib".to_string(),
            "{{define \"part\"}}<{{.}}>{{end}}{{define \"blk1\"}}lib{{end}}".to_string(),
        ));
    }
    let missing =
        *g.r.pick(&["", "", "", "", "zero", "zero", "zero", "zero", "error", ""]);
    let data = gen_data(g.r);
    Case {
        templates,
        data,
        typed,
        missing,
    }
}

fn ours(c: &Case) -> Result<String, Error> {
    let mut t = Templates::new();
    // Smaller caps than the defaults keep runaway cases (range over 123456789) quick;
    // where they stop a case Go completes, the case counts as "stopped by limits".
    t.set_limits(Limits {
        max_steps: 2_000_000,
        max_output_bytes: 4 << 20,
        ..Limits::default()
    });
    t.set_missing_key(match c.missing {
        "zero" => MissingKey::Zero,
        "error" => MissingKey::Error,
        _ => MissingKey::Default,
    });
    for (name, text) in &c.templates {
        t.parse(name, text)?;
    }
    let data = if c.typed {
        Value::from_json_typed(&c.data)
    } else {
        Value::from_json(&c.data)
    };
    t.execute("main", &data)
}

#[test]
fn differential_against_go() {
    let n: usize = std::env::var("DRIFTLESS_GOTMPL_ORACLE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let seed: u64 = std::env::var("DRIFTLESS_GOTMPL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20261202);
    println!(
        "gotmpl oracle: {n} cases, seed {seed} (DRIFTLESS_GOTMPL_SEED / DRIFTLESS_GOTMPL_ORACLE_CASES)"
    );
    let bin = common::oracle_binary();
    let mut r = Rng(seed);
    let cases: Vec<Case> = (0..n).map(|_| gen_case(&mut r)).collect();
    let mut input = Vec::new();
    for c in &cases {
        let line = json!({
            "templates": c.templates.iter().map(|(n, t)| json!({"name": n, "text": t})).collect::<Vec<_>>(),
            "exec": "main",
            "data": c.data,
            "typed": c.typed,
            "missingkey": c.missing,
        });
        serde_json::to_writer(&mut input, &line).expect("encode case");
        input.push(b'\n');
    }
    let mut child = Command::new(&bin)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start oracle");
    let mut stdin = child.stdin.take().expect("oracle stdin");
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("oracle output");
    writer
        .join()
        .expect("writer thread")
        .expect("write to oracle");
    assert!(out.status.success(), "oracle failed");
    let results: Vec<serde_json::Value> = out
        .stdout
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("oracle json"))
        .collect();
    assert_eq!(results.len(), cases.len());

    let (mut same_out, mut both_err, mut same_msg, mut parse_err) = (0, 0, 0, 0);
    let mut mismatches = Vec::new();
    let mut msg_diffs = Vec::new();
    let mut unsupported = Vec::new();
    let mut limited = 0;
    for (c, g) in cases.iter().zip(&results) {
        let go_err = g["err"].as_str();
        let go_out = g["out"].as_str().unwrap_or_default();
        let ours = match ours(c) {
            Err(Error::Exec(e)) if e.kind == ExecErrorKind::Limit => {
                limited += 1;
                continue;
            }
            r => r.map_err(|e| e.to_string()),
        };
        match (go_err, ours) {
            (None, Ok(o)) if o == go_out => same_out += 1,
            // Known limit, as below; Go goes on with broken text and may fail later.
            (Some(_), Err(oe)) if oe.contains("(not supported)") => unsupported.push(oe),
            (Some(ge), Err(oe)) => {
                both_err += 1;
                if g["parse_err"].as_bool() == Some(true) {
                    parse_err += 1;
                }
                if ge == oe || ge.starts_with("panic") {
                    same_msg += 1;
                } else {
                    msg_diffs.push(format!(
                        "{:?}\n    data {} typed={} missingkey={:?}\n    go:   {ge}\n    ours: {oe}",
                        c.templates[0].1, c.data, c.typed, c.missing
                    ));
                }
            }
            // Known limit: Go strings are bytes; cutting a UTF-8 character is refused here.
            (None, Err(oe)) if oe.contains("(not supported)") => unsupported.push(oe),
            (ge, o) => mismatches.push(format!(
                "template {:?}\n    data {} typed={} missingkey={:?}\n    go:   {:?} {:?}\n    ours: {:?}",
                c.templates[0].1, c.data, c.typed, c.missing, go_out, ge, o
            )),
        }
    }
    println!(
        "gotmpl oracle: {} cases: {} identical outputs, {} errors on both sides ({} at parse; {} with identical messages), {} refused as unsupported, {} stopped by our limits, {} mismatches",
        n,
        same_out,
        both_err,
        parse_err,
        same_msg,
        unsupported.len(),
        limited,
        mismatches.len()
    );
    for u in &unsupported {
        println!("  UNSUPPORTED (Go succeeds): {u}");
    }
    for d in msg_diffs.iter().take(15) {
        println!("  message differs: {d}");
    }
    for m in mismatches.iter().take(30) {
        println!("  MISMATCH {m}");
    }
    assert!(
        mismatches.is_empty(),
        "{} of {n} cases differ from Go (seed {seed})",
        mismatches.len()
    );
    assert!(
        msg_diffs.is_empty(),
        "{} of {n} error messages differ from Go's (seed {seed})",
        msg_diffs.len()
    );
}
