//! Plain-scalar resolution with the rules `kubectl apply -f` uses.
//!
//! kubectl turns YAML into JSON with `sigs.k8s.io/yaml`, which decodes with go-yaml v2
//! (v1.6.0 uses `go.yaml.in/yaml/v2` v2.4.2; older releases a fork of v2.4.0). Its
//! `resolve.go` decides a plain scalar's type like this, and so do we:
//!
//! - a fixed table: `y Y yes Yes YES true True TRUE on On ON` are true, `n N no No NO
//!   false False FALSE off Off OFF` are false, `"" ~ null Null NULL` are null,
//!   `.nan .NaN .NAN`, `.inf .Inf .INF`, `+.inf …`, `-.inf …` are floats, `<<` is a merge key;
//! - a scalar starting with `.` is a float when Go's `ParseFloat` accepts it (`.5`);
//! - a scalar starting with a digit or a sign: a `YYYY-` timestamp stays a string (v2 keeps
//!   timestamps as strings when decoding into `interface{}`); otherwise, with every `_`
//!   removed, Go's `ParseInt(s, 0, 64)` (so `0755` is octal, `0x1F` hex, `0o17`, `0b101`),
//!   then `ParseUint(s, 0, 64)`, then the float pattern
//!   `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$` (so `1e3` and `1.` are floats);
//! - everything else is a string. Base-60 numbers (`1:20`) are strings.

/// What a scalar resolved to, before it becomes JSON.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    /// Above `i64::MAX`, up to `u64::MAX`.
    Uint(u64),
    Float(f64),
    Str,
    /// The `<<` merge key.
    Merge,
}

/// Resolves an untagged plain scalar.
pub(crate) fn resolve_plain(s: &str) -> Scalar {
    match s {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Scalar::Bool(true);
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Scalar::Bool(false);
        }
        "" | "~" | "null" | "Null" | "NULL" => return Scalar::Null,
        ".nan" | ".NaN" | ".NAN" => return Scalar::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Scalar::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Scalar::Float(f64::NEG_INFINITY),
        "<<" => return Scalar::Merge,
        _ => {}
    }
    let first = s.as_bytes()[0];
    if first == b'.' {
        if is_dot_float(s)
            && let Some(f) = go_parse_float(s)
        {
            return Scalar::Float(f);
        }
        return Scalar::Str;
    }
    if !(first.is_ascii_digit() || first == b'+' || first == b'-') {
        return Scalar::Str;
    }
    if looks_like_timestamp(s) {
        return Scalar::Str;
    }
    let plain: String = s.chars().filter(|&c| c != '_').collect();
    if let Some(i) = go_parse_int(&plain) {
        return Scalar::Int(i);
    }
    if let Some(u) = go_parse_uint(&plain) {
        return Scalar::Uint(u);
    }
    if is_yaml_style_float(&plain)
        && let Some(f) = go_parse_float(&plain)
    {
        return Scalar::Float(f);
    }
    Scalar::Str
}

/// Go's `strconv.ParseFloat` on text already known to be decimal: out-of-range values
/// (`1e400`) are an error there, so the scalar stays a string.
fn go_parse_float(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// `^\.[0-9]+([eE][-+]?[0-9]+)?$`: what Go's `ParseFloat` accepts after a leading dot
/// (no underscores: Go allows them only with a base prefix).
fn is_dot_float(s: &str) -> bool {
    let b = &s.as_bytes()[1..];
    let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 {
        return false;
    }
    let rest = &b[digits..];
    if rest.is_empty() {
        return true;
    }
    if rest[0] != b'e' && rest[0] != b'E' {
        return false;
    }
    let mut exp = &rest[1..];
    if let Some((b'+' | b'-', tail)) = exp.split_first() {
        exp = tail;
    }
    !exp.is_empty() && exp.iter().all(u8::is_ascii_digit)
}

/// go-yaml v2.4's `yamlStyleFloat`: `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn is_yaml_style_float(s: &str) -> bool {
    let mut b = s.as_bytes();
    if let Some((b'+' | b'-', tail)) = b.split_first() {
        b = tail;
    }
    let (mantissa, exp) = match b.iter().position(|&c| c == b'e' || c == b'E') {
        Some(i) => (&b[..i], Some(&b[i + 1..])),
        None => (b, None),
    };
    let mantissa_ok = match mantissa.iter().position(|&c| c == b'.') {
        // `.5`: at least one digit after the dot.
        Some(0) => mantissa.len() > 1 && mantissa[1..].iter().all(u8::is_ascii_digit),
        // `1.` or `1.5`: digits, a dot, maybe digits.
        Some(dot) => {
            mantissa[..dot].iter().all(u8::is_ascii_digit)
                && mantissa[dot + 1..].iter().all(u8::is_ascii_digit)
        }
        None => !mantissa.is_empty() && mantissa.iter().all(u8::is_ascii_digit),
    };
    let exp_ok = match exp {
        None => true,
        Some(e) => {
            let digits = match e.split_first() {
                Some((b'+' | b'-', tail)) => tail,
                _ => e,
            };
            !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
        }
    };
    mantissa_ok && exp_ok
}

/// go-yaml v2's timestamp pre-check plus the shapes of its accepted layouts
/// (`2006-1-2`, `2006-1-2T15:4:5.999999999Z07:00`, with `t` or a space). Such values stay
/// strings when decoded into `interface{}`, so all this changes is that they are never
/// read as numbers, and that the emitter quotes them as go-yaml does.
pub(crate) fn looks_like_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() > 5 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-'
}

/// Go's `strconv.ParseInt(s, 0, 64)`: optional sign, then `0x`, `0o`, `0b` or a leading
/// `0` (octal) prefix, or decimal.
fn go_parse_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'+' => (false, &s[1..]),
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    let magnitude = go_parse_uint_body(body)?;
    if neg {
        if magnitude <= i64::MAX as u64 {
            Some(-(magnitude as i64))
        } else if magnitude == i64::MAX as u64 + 1 {
            Some(i64::MIN)
        } else {
            None
        }
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// Go's `strconv.ParseUint(s, 0, 64)`: no sign allowed.
fn go_parse_uint(s: &str) -> Option<u64> {
    go_parse_uint_body(s)
}

fn go_parse_uint_body(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.is_empty() {
        return None;
    }
    let (radix, digits) = if b.len() >= 2 && b[0] == b'0' {
        match b[1] {
            b'x' | b'X' => (16, &s[2..]),
            b'o' | b'O' => (8, &s[2..]),
            b'b' | b'B' => (2, &s[2..]),
            _ => (8, &s[1..]),
        }
    } else {
        (10, s)
    };
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 32)`, which sigs.k8s.io/yaml uses to turn a
/// float map key into a string: shortest float32 digits, `%e` form when the exponent is
/// below -4 or at least 6 (`1e+06`, two-digit exponent minimum).
pub(crate) fn go_format_float_key(f: f64) -> String {
    if f.is_nan() {
        return ".nan".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf" } else { "-.inf" }.to_owned();
    }
    // Past float32's range the cast gives an infinity, which Go prints `+Inf` and
    // sigs.k8s.io/yaml then spells as YAML does.
    let f = f as f32;
    if f.is_infinite() {
        return if f > 0.0 { ".inf" } else { "-.inf" }.to_owned();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "1.2345e6".
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci
        .split_once('e')
        .expect("`{:e}` always prints an exponent");
    let exp: i32 = exp.parse().expect("`{:e}` prints a decimal exponent");
    let neg = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if neg { "-" } else { "" };
    if !(-4..6).contains(&exp) {
        let mut out = format!("{sign}{}", &digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let esign = if exp < 0 { '-' } else { '+' };
        out.push_str(&format!("e{esign}{:02}", exp.abs()));
        return out;
    }
    // Plain decimal notation with the point after `exp + 1` digits.
    let point = exp + 1;
    let mut out = sign.to_owned();
    if point <= 0 {
        out.push_str("0.");
        out.push_str(&"0".repeat(point.unsigned_abs() as usize));
        out.push_str(&digits);
    } else {
        let point = point as usize;
        if digits.len() <= point {
            out.push_str(&digits);
            out.push_str(&"0".repeat(point - digits.len()));
        } else {
            out.push_str(&digits[..point]);
            out.push('.');
            out.push_str(&digits[point..]);
        }
    }
    out
}

/// go-yaml v2 quotes base-60-looking strings (`1:20`) on output for other parsers'
/// sake: `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`.
pub(crate) fn is_base60_float(s: &str) -> bool {
    let mut b = s.as_bytes();
    if let Some((b'+' | b'-', tail)) = b.split_first() {
        b = tail;
    }
    if b.first().is_none_or(|c| !c.is_ascii_digit()) {
        return false;
    }
    let head = b
        .iter()
        .take_while(|c| c.is_ascii_digit() || **c == b'_')
        .count();
    let mut rest = &b[head..];
    let mut groups = 0;
    while let Some((b':', tail)) = rest.split_first() {
        let n = tail.iter().take_while(|c| c.is_ascii_digit()).count();
        let ok = match n {
            1 => true,
            2 => tail[0] <= b'5',
            _ => false,
        };
        if !ok {
            return false;
        }
        groups += 1;
        rest = &tail[n..];
    }
    if groups == 0 {
        return false;
    }
    match rest.split_first() {
        None => true,
        Some((b'.', tail)) => tail.iter().all(|c| c.is_ascii_digit() || *c == b'_'),
        Some(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each row is a fact of go-yaml v2.4 `resolve.go` (the fork sigs.k8s.io/yaml uses for
    /// `kubectl apply -f`), pinned here.
    #[test]
    fn plain_scalars_resolve_like_go_yaml_v2() {
        use Scalar::*;
        let table: &[(&str, Scalar)] = &[
            // resolveMapList: YAML 1.1 booleans, including the single letters.
            ("yes", Bool(true)),
            ("Yes", Bool(true)),
            ("YES", Bool(true)),
            ("y", Bool(true)),
            ("Y", Bool(true)),
            ("on", Bool(true)),
            ("ON", Bool(true)),
            ("true", Bool(true)),
            ("no", Bool(false)),
            ("n", Bool(false)),
            ("off", Bool(false)),
            ("False", Bool(false)),
            // Only the listed spellings: mixed case is a string.
            ("yEs", Str),
            ("tRUE", Str),
            // Nulls.
            ("~", Null),
            ("null", Null),
            ("NULL", Null),
            ("", Null),
            ("nil", Str),
            // ParseInt(s, 0, 64) after removing underscores.
            ("0", Int(0)),
            ("-0", Int(0)),
            ("42", Int(42)),
            ("+42", Int(42)),
            ("-42", Int(-42)),
            ("0755", Int(0o755)),
            ("0x1F", Int(31)),
            ("-0x1F", Int(-31)),
            ("0o17", Int(15)),
            ("0b101", Int(5)),
            ("1_000", Int(1000)),
            ("9223372036854775807", Int(i64::MAX)),
            ("-9223372036854775808", Int(i64::MIN)),
            // ParseUint for the range above int64.
            ("18446744073709551615", Uint(u64::MAX)),
            // Beyond uint64 the float pattern matches: a float, as kubectl sends it.
            ("18446744073709551616", Float(18446744073709551616.0)),
            ("-9223372036854775809", Float(-9223372036854775809.0)),
            // "08" is not octal, but matches the float pattern.
            ("08", Float(8.0)),
            // Floats per yamlStyleFloat (v2.4: the exponent sign is optional).
            ("1.5", Float(1.5)),
            ("-1.5", Float(-1.5)),
            ("1e+3", Float(1000.0)),
            ("1.5E-2", Float(0.015)),
            ("1e3", Float(1000.0)),
            ("1.", Float(1.0)),
            ("+.5", Float(0.5)),
            // Out of float64's range ParseFloat fails: a string.
            ("1e400", Str),
            (".5", Float(0.5)),
            (".5e3", Float(500.0)),
            (".", Str),
            (".inf", Float(f64::INFINITY)),
            ("-.Inf", Float(f64::NEG_INFINITY)),
            // Timestamps stay strings when decoded into interface{}.
            ("2001-12-14", Str),
            ("2001-12-14T21:59:43.10Z", Str),
            // No base-60 numbers.
            ("1:20", Str),
            ("<<", Merge),
            ("0x", Str),
            ("1.2.3", Str),
            ("-", Str),
            ("+", Str),
            ("12abc", Str),
            ("v1", Str),
        ];
        for (input, want) in table {
            let got = resolve_plain(input);
            let same = match (&got, want) {
                (Float(a), Float(b)) => a == b || (a.is_nan() && b.is_nan()),
                (a, b) => a == b,
            };
            assert!(same, "{input:?}: got {got:?}, want {want:?}");
        }
        assert!(matches!(resolve_plain(".NaN"), Float(f) if f.is_nan()));
    }

    /// sigs.k8s.io/yaml formats float keys with `strconv.FormatFloat(f, 'g', -1, 32)`.
    #[test]
    fn float_keys_format_like_go_g32() {
        for (f, want) in [
            (1.5, "1.5"),
            (1000.0, "1000"),
            (123456.0, "123456"),
            (1e6, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (f64::INFINITY, ".inf"),
            // Beyond float32's range (found by the fuzzer: `9E53:` as a key panicked).
            (9e53, ".inf"),
            (-9e53, "-.inf"),
        ] {
            assert_eq!(go_format_float_key(f), want, "{f}");
        }
    }

    #[test]
    fn base60_lookalikes() {
        assert!(is_base60_float("1:20"));
        assert!(is_base60_float("190:20:30.15"));
        assert!(!is_base60_float("1:70"));
        assert!(!is_base60_float("a:1"));
        assert!(!is_base60_float("120"));
    }
}
