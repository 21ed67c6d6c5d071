//! Behaviour a chart depends on, pinned: the value model's YAML/JSON typing, the
//! `missingkey` rules, caller functions (typed parameters, `include`-style calls), and
//! the limits that stop hostile templates. Expected strings are Go's outputs (the
//! differential oracle checks the same facts against Go at random).

use driftless_gotmpl::{
    ArgType, Error, ExecErrorKind, Func, FuncError, Limits, MissingKey, Templates, Value,
};
use serde_json::json;

fn run(t: &mut Templates, text: &str, data: &Value) -> Result<String, Error> {
    t.parse("t", text)?;
    t.execute("t", data)
}

fn render(text: &str, data: serde_json::Value) -> String {
    run(&mut Templates::new(), text, &Value::from_json(&data))
        .unwrap_or_else(|e| panic!("{text}: {e}"))
}

#[test]
fn json_numbers_are_float64_and_print_as_go_does() {
    let data = json!({"replicas": 3, "big": 1000000, "port": 8080, "ratio": 0.5, "tiny": 0.00001});
    assert_eq!(
        render(
            "{{.replicas}} {{.big}} {{.port}} {{.ratio}} {{.tiny}}",
            data.clone()
        ),
        "3 1e+06 8080 0.5 1e-05"
    );
    assert_eq!(
        render("{{printf \"%T %T\" .replicas .ratio}}", data),
        "float64 float64"
    );
}

#[test]
fn typed_yaml_numbers_stay_int() {
    let data = Value::from_json_typed(&json!({"big": 1000000, "ratio": 0.5}));
    let out = run(
        &mut Templates::new(),
        "{{.big}} {{printf \"%T %T\" .big .ratio}}",
        &data,
    )
    .unwrap();
    assert_eq!(out, "1000000 int float64");
}

#[test]
fn missing_keys_follow_the_missingkey_option() {
    let data = Value::from_json(&json!({"a": {"b": 1}, "n": null}));
    let mut t = Templates::new();
    assert_eq!(
        run(&mut t, "{{.x}}|{{.a.x}}|{{.x.y}}|{{.n}}", &data).unwrap(),
        "<no value>|<no value>|<no value>|<no value>"
    );

    let mut t = Templates::new();
    t.set_missing_key(MissingKey::Zero);
    assert_eq!(
        run(&mut t, "{{.x}}|{{.a.x}}", &data).unwrap(),
        "<no value>|<no value>"
    );
    let err = run(&mut t, "{{.x.y}}", &data).unwrap_err().to_string();
    assert_eq!(
        err,
        "template: t:1:4: executing \"t\" at <.x.y>: nil pointer evaluating interface {}.y"
    );

    let mut t = Templates::new();
    t.option("missingkey=error").unwrap();
    let err = run(&mut t, "{{.a.x}}", &data).unwrap_err().to_string();
    assert_eq!(
        err,
        "template: t:1:4: executing \"t\" at <.a.x>: map has no entry for key \"x\""
    );
    assert!(Templates::new().option("missingkey=maybe").is_err());
}

#[test]
fn caller_functions_have_go_signatures() {
    let mut t = Templates::new();
    t.add_func(
        "upper",
        Func::new(&[ArgType::String], None, |_, a| match &a[0] {
            Value::String(s) => Ok(Value::string(s.to_uppercase())),
            _ => Err(FuncError::from("unreachable: checked by the signature")),
        }),
    );
    let data = Value::from_json(&json!({"name": "web", "n": 3}));
    assert_eq!(
        run(&mut t, "{{upper .name}} {{.name | upper}}", &data).unwrap(),
        "WEB WEB"
    );
    let err = run(&mut t, "{{upper .n}}", &data).unwrap_err().to_string();
    assert_eq!(
        err,
        "template: t:1:8: executing \"t\" at <.n>: wrong type for value; expected string; got float64"
    );
    let err = run(&mut t, "{{upper 3}}", &data).unwrap_err().to_string();
    assert_eq!(
        err,
        "template: t:1:8: executing \"t\" at <3>: expected string; found 3"
    );
    let err = t.parse("u", "{{lower .name}}").unwrap_err().to_string();
    assert_eq!(err, "template: u:1: function \"lower\" not defined");
}

fn with_include() -> Templates {
    let mut t = Templates::new();
    t.add_func(
        "include",
        Func::new(&[ArgType::String, ArgType::Any], None, |call, a| {
            let Value::String(name) = &a[0] else {
                return Err("include: name".into());
            };
            call.execute_template(name, a[1].clone()).map(Value::string)
        }),
    );
    t
}

#[test]
fn functions_can_run_templates_of_the_set() {
    let mut t = with_include();
    t.parse("lib", "{{define \"labels\"}}app: {{.}}{{end}}")
        .unwrap();
    let out = run(
        &mut t,
        "{{include \"labels\" .name | printf \"%q\"}}",
        &Value::from_json(&json!({"name": "web"})),
    )
    .unwrap();
    assert_eq!(out, "\"app: web\"");
}

fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    // 2 MiB: a tokio worker's stack. Limits must trip before the stack runs out.
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .expect("thread")
        .join()
        .expect("no stack overflow")
}

fn limit_error(r: Result<String, Error>) -> String {
    match r {
        Err(Error::Exec(e)) if e.kind == ExecErrorKind::Limit => e.message,
        other => panic!("expected a limit error, got {other:?}"),
    }
}

#[test]
fn recursive_templates_stop_at_the_depth_limit() {
    let msg = on_small_stack(|| {
        let mut t = Templates::new();
        limit_error(run(
            &mut t,
            "{{define \"r\"}}x{{template \"r\" .}}{{end}}{{template \"r\" .}}",
            &Value::Missing,
        ))
    });
    assert!(
        msg.ends_with("exceeded maximum template depth (100)"),
        "{msg}"
    );
    let msg = on_small_stack(|| {
        let mut t = with_include();
        limit_error(run(
            &mut t,
            "{{define \"r\"}}{{include \"r\" .}}{{end}}{{include \"r\" .}}",
            &Value::Missing,
        ))
    });
    assert!(
        msg.contains("exceeded maximum template depth (100)"),
        "{msg}"
    );
    // Recursion with deep bodies trips the combined nesting cap first.
    let msg = on_small_stack(|| {
        let mut t = Templates::new();
        let deep = format!(
            "{{{{define \"r\"}}}}{}{{{{template \"r\" .}}}}{}{{{{end}}}}{{{{template \"r\" .}}}}",
            "{{if 1}}".repeat(99),
            "{{end}}".repeat(99)
        );
        limit_error(run(&mut t, &deep, &Value::Missing))
    });
    assert!(
        msg.ends_with("exceeded maximum nesting depth (300)"),
        "{msg}"
    );
}

#[test]
fn runaway_loops_and_output_stop_at_their_limits() {
    let mut t = Templates::new();
    let msg = limit_error(run(
        &mut t,
        "{{range 1000000000000}}{{end}}",
        &Value::Missing,
    ));
    assert!(
        msg.ends_with("execution exceeds the budget of 50000000 steps"),
        "{msg}"
    );

    let mut t = Templates::new();
    t.set_limits(Limits {
        max_output_bytes: 1 << 20,
        ..Limits::default()
    });
    let msg = limit_error(run(
        &mut t,
        "{{range 1000000}}0123456789{{end}}",
        &Value::Missing,
    ));
    assert!(
        msg.ends_with("output exceeds the limit of 1048576 bytes"),
        "{msg}"
    );
}

#[test]
fn deep_nesting_is_a_parse_error_not_a_crash() {
    let err = on_small_stack(|| {
        let text = format!("{{{{{}1{}}}}}", "(".repeat(100_000), ")".repeat(100_000));
        Templates::new()
            .parse("p", &text)
            .map(|_| ())
            .unwrap_err()
            .to_string()
    });
    assert_eq!(err, "template: p:1: max expression depth exceeded");
    let err = on_small_stack(|| {
        let text = format!(
            "{}{}",
            "{{if 1}}".repeat(100_000),
            "{{end}}".repeat(100_000)
        );
        Templates::new()
            .parse("p", &text)
            .map(|_| ())
            .unwrap_err()
            .to_string()
    });
    assert_eq!(err, "template: p:1: max nesting depth exceeded");
}

#[test]
fn sets_and_values_cross_threads() {
    // The engine renders on tokio workers: a parsed set is shared, values are sent.
    fn is_send_sync<T: Send + Sync>() {}
    is_send_sync::<Templates>();
    is_send_sync::<Value>();
    is_send_sync::<Error>();
}
