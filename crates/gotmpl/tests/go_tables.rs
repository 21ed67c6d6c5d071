//! Go's own text/template test tables, read from the Go toolchain on this machine at test
//! time (never copied here) and run against this crate: `execTests` and `cmpTests` from
//! exec_test.go, `parseTests` and `errorTests` from parse/parse_test.go, `lexTests` and
//! `lexPosTests` from parse/lex_test.go. Cases that need Go features chart templates
//! cannot reach (methods, pointers, Go func values, channels, iterators, non-string map
//! keys, struct printing) are skipped with the reason printed.

mod common;

use std::collections::{BTreeMap, HashMap};

use driftless_gotmpl::{ArgType, Func, FuncError, IntType, Templates, UintType, Value};

#[derive(Default)]
struct Tally {
    pass: usize,
    fail: Vec<String>,
    skip: BTreeMap<String, Vec<String>>,
}

impl Tally {
    fn skip(&mut self, reason: &str, name: &str) {
        self.skip
            .entry(reason.to_string())
            .or_default()
            .push(name.to_string());
    }

    fn report(&self, what: &str) -> (usize, usize) {
        let skipped: usize = self.skip.values().map(Vec::len).sum();
        let applicable = self.pass + self.fail.len();
        println!(
            "== {what}: {} passed, {} failed, {} skipped ({} applicable)",
            self.pass,
            self.fail.len(),
            skipped,
            applicable
        );
        for (r, names) in &self.skip {
            println!("   skipped ({}): {r}: {}", names.len(), names.join(", "));
        }
        for f in &self.fail {
            println!("   FAIL {f}");
        }
        (self.pass, applicable)
    }
}

fn assert_rate(what: &str, pass: usize, applicable: usize) {
    let rate = pass as f64 / applicable.max(1) as f64;
    assert!(
        rate >= 0.98,
        "{what}: {pass}/{applicable} = {:.1}% < 98%",
        rate * 100.0
    );
}

fn s(v: &str) -> Value {
    Value::string(v)
}

fn int(i: i64) -> Value {
    Value::int(i)
}

fn list(v: Vec<Value>) -> Value {
    Value::list(v)
}

fn map(kv: &[(&str, Value)]) -> Value {
    Value::map(kv.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
}

/// The parts of exec_test.go's `tVal` that a chart's data can express.
fn t_val() -> Value {
    map(&[
        ("True", Value::Bool(true)),
        ("I", int(17)),
        ("U16", Value::Uint(16, UintType::Uint16)),
        ("X", s("x")),
        ("S", s("xyz")),
        ("FloatZero", Value::Float(0.0)),
        ("ComplexZero", Value::Complex(0.0, 0.0)),
        ("U", map(&[("V", s("v"))])),
        ("SI", list(vec![int(3), int(4), int(5)])),
        ("SIEmpty", list(vec![])),
        ("SB", list(vec![Value::Bool(true), Value::Bool(false)])),
        ("AI", list(vec![int(3), int(4), int(5)])),
        (
            "MSI",
            map(&[("one", int(1)), ("two", int(2)), ("three", int(3))]),
        ),
        ("MSIone", map(&[("one", int(1))])),
        ("MSIEmpty", map(&[])),
        (
            "SMSI",
            list(vec![
                map(&[("one", int(1)), ("two", int(2))]),
                map(&[("eleven", int(11)), ("twelve", int(12))]),
            ]),
        ),
        ("Empty0", Value::Nil),
        ("Empty1", int(3)),
        ("Empty2", s("empty2")),
        ("Empty3", list(vec![int(7), int(8)])),
    ])
}

/// The function map of exec_test.go's testExecute, re-expressed with our signatures.
fn test_funcs(t: &mut Templates) {
    use ArgType::{Any, Int, String as Str};
    let str_arg = |v: &Value| match v {
        Value::String(s) => s.to_string(),
        _ => std::string::String::new(),
    };
    t.add_func(
        "add",
        Func::new(&[], Some(Int), |_, a| {
            Ok(int(a
                .iter()
                .map(|v| if let Value::Int(i, _) = v { *i } else { 0 })
                .sum()))
        }),
    );
    t.add_func(
        "dddArg",
        Func::new(&[Int], Some(Str), |_, a| Ok(s(&format!("{:?}", a.len())))),
    );
    t.add_func(
        "die",
        Func::new(&[], None, |_, _| Err(FuncError::from("die"))),
    );
    t.add_func("echo", Func::new(&[Any], None, |_, a| Ok(a[0].clone())));
    t.add_func(
        "makemap",
        Func::new(&[], Some(Str), move |_, a| {
            if a.len() % 2 != 0 {
                return Err("bad makemap".into());
            }
            let mut m = BTreeMap::new();
            for kv in a.chunks(2) {
                m.insert(str_arg(&kv[0]), kv[1].clone());
            }
            Ok(Value::map(m))
        }),
    );
    t.add_func(
        "mapOfThree",
        Func::new(&[], None, |_, _| Ok(map(&[("three", int(3))]))),
    );
    t.add_func(
        "oneArg",
        Func::new(&[Str], None, move |_, a| {
            Ok(s(&format!("oneArg={}", str_arg(&a[0]))))
        }),
    );
    t.add_func("returnInt", Func::new(&[], None, |_, _| Ok(int(7))));
    t.add_func(
        "twoArgs",
        Func::new(&[Str, Str], None, move |_, a| {
            Ok(s(&format!("twoArgs={}{}", str_arg(&a[0]), str_arg(&a[1]))))
        }),
    );
    t.add_func(
        "typeOf",
        Func::new(&[Any], None, |_, a| {
            Ok(s(&driftless_gotmpl::fmt::sprintf("%T", &a)))
        }),
    );
    t.add_func(
        "valueString",
        Func::new(&[Str], None, |_, _| Ok(s("value is ignored"))),
    );
    t.add_func("zeroArgs", Func::new(&[], None, |_, _| Ok(s("zeroArgs"))));
}

/// Why a case cannot apply to chart data, judged from the identifiers it uses.
fn skip_reason(name: &str, input: &str, data: &str) -> Option<&'static str> {
    let uses = |ids: &[&str]| {
        ids.iter().any(|id| {
            input.match_indices(id).any(|(i, _)| {
                let before = input[..i].chars().last();
                let after = input[i + id.len()..].chars().next();
                !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
                    && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
            })
        })
    };
    let reasons: &[(&[&str], &str)] = &[
        (
            &[
                "Method0",
                "Method1",
                "Method2",
                "Method3",
                "MAdd",
                "MyError",
                "GetU",
                "TrueFalse",
                "Copy",
            ],
            "Go methods",
        ),
        (
            &["V0", "V1", "V2", "W0", "W1", "W2", "Str", "Err"],
            "Go String()/Error() methods",
        ),
        (
            &["PI", "PS", "PSI", "NIL", "UPI", "EmptyUPI", "PAI"],
            "Go pointers",
        ),
        (
            &[
                "BinaryFunc",
                "VariadicFunc",
                "VariadicFuncInt",
                "NilOKFunc",
                "ErrFunc",
                "PanicFunc",
                "TooFewReturnCountFunc",
                "TooManyReturnCountFunc",
                "InvalidReturnTypeFunc",
            ],
            "Go func values (call)",
        ),
        (
            &[
                "MXI", "MII", "MI32S", "MI64S", "MUI32S", "MUI64S", "MI8S", "MUI8S",
            ],
            "maps with non-string keys",
        ),
        (
            &[
                "NonEmptyInterface",
                "NonEmptyInterfacePtS",
                "NonEmptyInterfaceNil",
                "NonEmptyInterfaceTypedNil",
            ],
            "non-empty Go interfaces",
        ),
        (&["Empty4", "Tmpl"], "Go structs"),
        (&["SICap"], "slice capacity beyond length"),
        (&["unexported"], "unexported struct fields"),
        (&["count"], "Go channels"),
        (
            &["stringer", "vfunc"],
            "Go interface/struct-typed function parameters",
        ),
    ];
    for (ids, why) in reasons {
        if uses(ids) {
            return Some(why);
        }
    }
    if data.starts_with("fVal") {
        return Some("Go iterator functions (iter.Seq)");
    }
    // index of a missing key in map[string]int yields int's zero (0); map[string]any
    // yields no value. Chart maps are map[string]any.
    if matches!(name, "map[NO]" | "map[``]") {
        return Some("zero value of a typed map element (map[string]int)");
    }
    None
}

/// The case's data, as a value; Err names what cannot be mapped.
fn map_data(expr: &str) -> Result<Value, String> {
    let e = expr.trim();
    let typed_int = |ty: &str, n: &str| -> Option<Value> {
        let v: i64 = n.parse().ok()?;
        Some(match ty {
            "int" => int(v),
            "int8" => Value::Int(v, IntType::Int8),
            "int16" => Value::Int(v, IntType::Int16),
            "int32" => Value::Int(v, IntType::Int32),
            "int64" => Value::Int(v, IntType::Int64),
            "uint" => Value::Uint(v as u64, UintType::Uint),
            "uint8" => Value::Uint(v as u64, UintType::Uint8),
            "uint16" => Value::Uint(v as u64, UintType::Uint16),
            "uint32" => Value::Uint(v as u64, UintType::Uint32),
            "uint64" => Value::Uint(v as u64, UintType::Uint64),
            "uintptr" => Value::Uint(v as u64, UintType::Uintptr),
            _ => return None,
        })
    };
    if e == "tVal" {
        return Ok(t_val());
    }
    // The zero T: the cases using it never look at their data.
    if e == "T{}" {
        return Ok(map(&[]));
    }
    // Complex constants such as `16.2 - 17i`.
    if let Some(im) = e.strip_suffix('i')
        && let Some((re, im)) = im.rsplit_once(" - ").or_else(|| im.rsplit_once(" + "))
        && let (Ok(re), Ok(imv)) = (re.trim().parse::<f64>(), im.trim().parse::<f64>())
    {
        let neg = e.contains(" - ");
        return Ok(Value::Complex(re, if neg { -imv } else { imv }));
    }
    if e == "nil" {
        return Ok(Value::Missing);
    }
    if e == "true" || e == "false" {
        return Ok(Value::Bool(e == "true"));
    }
    if let Ok(i) = e.parse::<i64>() {
        return Ok(int(i));
    }
    if e.contains('.')
        && !e.contains(['(', '{', '"'])
        && let Ok(f) = e.parse::<f64>()
    {
        return Ok(Value::Float(f));
    }
    if e.starts_with('"') || e.starts_with('`') {
        return common::unquote(e)
            .map(|v| s(&v))
            .ok_or_else(|| format!("data {e}"));
    }
    if e.starts_with('\'') && e.ends_with('\'') && e.chars().count() == 3 {
        return Ok(Value::Int(
            e.chars().nth(1).unwrap_or('\0') as i64,
            IntType::Int32,
        ));
    }
    if let Some((ty, rest)) = e.split_once('(')
        && let Some(n) = rest.strip_suffix(')')
        && let Some(v) = typed_int(ty, n)
    {
        return Ok(v);
    }
    if let Some(body) = e.strip_prefix("[]int{").and_then(|b| b.strip_suffix('}')) {
        return Ok(list(
            common::split_top(body)
                .iter()
                .map(|x| int(x.trim().parse().unwrap_or(0)))
                .collect(),
        ));
    }
    for prefix in ["map[string]int{", "map[string]string{"] {
        if let Some(body) = e.strip_prefix(prefix).and_then(|b| b.strip_suffix('}')) {
            let mut m = BTreeMap::new();
            for kv in common::split_top(body) {
                let (k, v) = kv.split_once(':').ok_or(format!("data {e}"))?;
                let k = common::unquote(k.trim()).ok_or(format!("data {e}"))?;
                let v = map_data(v.trim())?;
                m.insert(k, v);
            }
            return Ok(Value::map(m));
        }
    }
    Err(format!("Go data not expressible as chart values: {e}"))
}

/// Go's `rangeTestData[T]()` helper: "T0T1T2T3T4".
fn range_test_data(ty: &str) -> String {
    (0..5).map(|i| format!("{ty}{i}")).collect()
}

fn eval_expected(expr: &str, names: &HashMap<String, String>) -> Option<String> {
    if let Some(ty) = expr
        .strip_prefix("rangeTestData[")
        .and_then(|r| r.strip_suffix("]()"))
    {
        return Some(range_test_data(ty));
    }
    common::eval_string(expr, names)
}

#[test]
fn go_exec_tests() {
    let src = common::read_go_source("text/template/exec_test.go");
    let mut names = common::string_consts(&src);
    // exec_test.go computes these with Sprintf for the platform's int size (64-bit here).
    names.insert("bigInt".into(), format!("0x{:x}", i64::MAX));
    names.insert("bigUint".into(), format!("0x{:x}", 1u64 << 63));
    let body = common::literal_body(&src, "var execTests = []execTest{");
    let cases = common::entries(body);
    assert!(
        cases.len() > 300,
        "found only {} execTests: did the table move?",
        cases.len()
    );
    let mut tally = Tally::default();
    for c in &cases {
        assert_eq!(c.len(), 5, "execTest with {} fields: {c:?}", c.len());
        let Some(name) = common::unquote(&c[0]) else {
            tally.skip("name not a literal", &c[0]);
            continue;
        };
        let (Some(input), Some(output)) =
            (eval_expected(&c[1], &names), eval_expected(&c[2], &names))
        else {
            tally.skip("input/output built by Go code", &name);
            continue;
        };
        if let Some(why) = skip_reason(&name, &input, &c[3]) {
            tally.skip(why, &name);
            continue;
        }
        let data = match map_data(&c[3]) {
            Ok(d) => d,
            Err(why) => {
                tally.skip(&why, &name);
                continue;
            }
        };
        let ok = c[4].trim() == "true";
        let mut t = Templates::new();
        test_funcs(&mut t);
        let got = t
            .parse(&name, &input)
            .map_err(|e| e.to_string())
            .and_then(|t| t.execute(&name, &data).map_err(|e| e.to_string()));
        match (ok, got) {
            (true, Ok(out)) if out == output => tally.pass += 1,
            (true, Ok(out)) => tally
                .fail
                .push(format!("{name}: {input:?} want {output:?} got {out:?}")),
            (true, Err(e)) => tally
                .fail
                .push(format!("{name}: {input:?} unexpected error: {e}")),
            (false, Err(_)) => tally.pass += 1,
            (false, Ok(out)) => tally
                .fail
                .push(format!("{name}: {input:?} expected an error, got {out:?}")),
        }
    }
    let (pass, applicable) = tally.report("Go execTests");
    assert_rate("execTests", pass, applicable);
}

#[test]
fn go_comparison_tests() {
    let src = common::read_go_source("text/template/exec_test.go");
    let body = common::literal_body(&src, "var cmpTests = []cmpTest{");
    let data = map(&[
        ("Uthree", Value::Uint(3, UintType::Uint)),
        ("Ufour", Value::Uint(4, UintType::Uint)),
        ("NegOne", int(-1)),
        ("Three", int(3)),
    ]);
    let mut tally = Tally::default();
    for c in common::entries(body) {
        let (Some(expr), Some(truth)) = (common::unquote(&c[0]), common::unquote(&c[1])) else {
            continue;
        };
        let ok = c[2].trim() == "true";
        if [
            "Ptr",
            "NilPtr",
            "NonNilMap",
            "Map",
            "V1",
            "V2",
            "Iface1",
            "NilIface",
        ]
        .iter()
        .any(|f| expr.contains(&format!(".{f}")))
        {
            tally.skip(
                "Go pointers, int-keyed maps, structs and interfaces of the test's struct",
                &expr,
            );
            continue;
        }
        let text = format!("{{{{if {expr}}}}}true{{{{else}}}}false{{{{end}}}}");
        let mut t = Templates::new();
        let got = t
            .parse("empty", &text)
            .map_err(|e| e.to_string())
            .and_then(|t| t.execute("empty", &data).map_err(|e| e.to_string()));
        match (ok, got) {
            (true, Ok(out)) if out == truth => tally.pass += 1,
            (false, Err(_)) => tally.pass += 1,
            (_, got) => tally
                .fail
                .push(format!("{expr}: want ok={ok} {truth:?}, got {got:?}")),
        }
    }
    let (pass, applicable) = tally.report("Go cmpTests");
    assert_rate("cmpTests", pass, applicable);
}

fn parse_with_builtins(name: &str, input: &str) -> Result<Templates, String> {
    let mut t = Templates::new();
    // parse_test.go's `builtins`: printf and contains.
    t.add_func(
        "printf",
        Func::new(&[ArgType::String], Some(ArgType::Any), |_, _| {
            Ok(Value::Missing)
        }),
    );
    t.add_func(
        "contains",
        Func::new(&[ArgType::String, ArgType::String], None, |_, _| {
            Ok(Value::Missing)
        }),
    );
    t.parse(name, input).map_err(|e| e.to_string())?;
    Ok(t)
}

#[test]
fn go_parse_tests() {
    let src = common::read_go_source("text/template/parse/parse_test.go");
    let mut tally = Tally::default();
    for c in common::entries(common::literal_body(&src, "var parseTests = []parseTest{")) {
        let (Some(name), Some(input), Some(result)) = (
            common::unquote(&c[0]),
            common::unquote(&c[1]),
            common::unquote(&c[3]),
        ) else {
            tally.skip("fields built by Go code", &c[0]);
            continue;
        };
        let ok = c[2].trim() == "noError";
        // parse_test.go lowers Go's paren limit to 3 in init(); ours is a setting.
        let got = if name.starts_with("paren nesting") {
            let mut t = Templates::new();
            t.add_func(
                "printf",
                Func::new(&[ArgType::String], Some(ArgType::Any), |_, _| {
                    Ok(Value::Missing)
                }),
            );
            let limits = driftless_gotmpl::Limits {
                max_paren_depth: 3,
                ..Default::default()
            };
            t.set_limits(limits);
            match t.parse("test", &input) {
                Ok(_) => Ok(t),
                Err(e) => Err(e.to_string()),
            }
        } else {
            parse_with_builtins(&name, &input)
        };
        let tree_name = if name.starts_with("paren nesting") {
            "test"
        } else {
            &name
        };
        match (ok, got) {
            (true, Ok(t)) => {
                let tree = t.tree_string(tree_name, true).unwrap_or_default();
                if tree == result {
                    tally.pass += 1;
                } else {
                    tally
                        .fail
                        .push(format!("{name}: {input:?} want {result:?} got {tree:?}"));
                }
            }
            (false, Err(e)) => {
                // Error results that look like messages must match.
                if result.starts_with("template:") && !e.contains(&result) {
                    tally
                        .fail
                        .push(format!("{name}: {input:?} want error {result:?} got {e:?}"));
                } else {
                    tally.pass += 1;
                }
            }
            (true, Err(e)) => tally
                .fail
                .push(format!("{name}: {input:?} unexpected error {e}")),
            (false, Ok(_)) => tally
                .fail
                .push(format!("{name}: {input:?} expected an error")),
        }
    }
    let (pass, applicable) = tally.report("Go parseTests");
    assert_rate("parseTests", pass, applicable);

    let mut tally = Tally::default();
    for c in common::entries(common::literal_body(&src, "var errorTests = []parseTest{")) {
        let (Some(name), Some(input), Some(result)) = (
            common::unquote(&c[0]),
            common::unquote(&c[1]),
            common::unquote(&c[3]),
        ) else {
            tally.skip("fields built by Go code", &c[0]);
            continue;
        };
        let mut t = Templates::new();
        match t.parse(&name, &input) {
            Err(e) if e.to_string().contains(&result) => tally.pass += 1,
            Err(e) => tally
                .fail
                .push(format!("{name}: {input:?} want {result:?} in {e}")),
            Ok(_) => tally
                .fail
                .push(format!("{name}: {input:?} expected error {result:?}")),
        }
    }
    let (pass, applicable) = tally.report("Go parse errorTests");
    assert_rate("errorTests", pass, applicable);
}

/// Go's lex item constructors as `(kind, text)`, from the `mkItem` shorthands of lex_test.go.
fn lex_item(expr: &str, vars: &HashMap<String, (String, String)>) -> Option<(String, String)> {
    let e = expr.trim();
    if let Some(v) = vars.get(e) {
        return Some(v.clone());
    }
    let inner = e.strip_prefix("mkItem(")?.strip_suffix(')')?;
    let parts = common::split_top(inner);
    let names: HashMap<String, String> = vars
        .iter()
        .filter(|(_, (k, _))| k == "string")
        .map(|(n, (_, v))| (n.clone(), v.clone()))
        .collect();
    Some((
        parts[0].trim().to_string(),
        common::eval_string(&parts[1], &names)?,
    ))
}

#[test]
fn go_lex_tests() {
    let src = common::read_go_source("text/template/parse/lex_test.go");
    // The shorthand items: `tDot = mkItem(itemDot, ".")` and string vars like `raw`.
    let mut vars: HashMap<String, (String, String)> = HashMap::new();
    let decls = common::literal_body(&src, "var (\n\ttDot");
    let decls = format!("tDot{decls}");
    for line in decls.lines() {
        let Some((name, val)) = line.split_once('=') else {
            continue;
        };
        let (name, val) = (name.trim(), val.trim());
        let strings: HashMap<String, String> = vars
            .iter()
            .filter(|(_, (k, _))| k == "string")
            .map(|(n, (_, v))| (n.clone(), v.clone()))
            .collect();
        if let Some(item) = lex_item(val, &vars) {
            vars.insert(name.to_string(), item);
        } else if let Some(v) = common::eval_string(val, &strings) {
            vars.insert(name.to_string(), ("string".into(), v));
        }
    }
    let strings: HashMap<String, String> = vars
        .iter()
        .filter(|(_, (k, _))| k == "string")
        .map(|(n, (_, v))| (n.clone(), v.clone()))
        .collect();
    let mut tally = Tally::default();
    for c in common::entries(common::literal_body(&src, "var lexTests = []lexTest{")) {
        let (Some(name), Some(input)) =
            (common::unquote(&c[0]), common::eval_string(&c[1], &strings))
        else {
            continue;
        };
        let items_src = c[2]
            .trim()
            .strip_prefix("[]item{")
            .and_then(|x| x.strip_suffix('}'))
            .unwrap_or("");
        let want: Option<Vec<(String, String)>> = common::split_top(items_src)
            .iter()
            .map(|i| lex_item(i, &vars))
            .collect();
        let Some(want) = want else {
            tally.skip("items built by Go code", &name);
            continue;
        };
        let got: Vec<(String, String)> = driftless_gotmpl::testing::lex(&input, "", "")
            .into_iter()
            .map(|(k, _, v, _)| (k.to_string(), v))
            .collect();
        let want: Vec<(String, String)> = want
            .into_iter()
            .map(|(k, v)| {
                if k == "itemEOF" {
                    (k, String::new())
                } else {
                    (k, v)
                }
            })
            .collect();
        if got == want {
            tally.pass += 1;
        } else {
            tally.fail.push(format!(
                "{name}: {input:?}\n      want {want:?}\n      got  {got:?}"
            ));
        }
    }
    for c in common::entries(common::literal_body(&src, "var lexPosTests = []lexTest{")) {
        let (Some(name), Some(input)) = (common::unquote(&c[0]), common::unquote(&c[1])) else {
            continue;
        };
        let items_src = c[2]
            .trim()
            .strip_prefix("[]item{")
            .and_then(|x| x.strip_suffix('}'))
            .unwrap_or("");
        let want: Option<Vec<(String, usize, String, usize)>> = common::entries(items_src)
            .iter()
            .map(|f| {
                Some((
                    f[0].clone(),
                    f[1].parse().ok()?,
                    common::unquote(&f[2])?,
                    f[3].parse().ok()?,
                ))
            })
            .collect();
        let Some(want) = want else {
            tally.skip("items built by Go code", &name);
            continue;
        };
        let got: Vec<(String, usize, String, usize)> =
            driftless_gotmpl::testing::lex(&input, "", "")
                .into_iter()
                .map(|(k, p, v, l)| (k.to_string(), p, v, l))
                .collect();
        if got == want {
            tally.pass += 1;
        } else {
            tally.fail.push(format!(
                "pos {name}: {input:?}\n      want {want:?}\n      got  {got:?}"
            ));
        }
    }
    let (pass, applicable) = tally.report("Go lexTests + lexPosTests");
    assert_rate("lexTests", pass, applicable);
}
