//! Go's `strconv` number formatting, reproduced from its documented behaviour, so decrypted
//! numbers print exactly as sops (a Go program) prints them.

/// Shortest round-trip decimal digits of `|f|` and the decimal point position: `0.DIGITS × 10^dp`.
fn shortest(f: f64) -> (String, i32) {
    let s = format!("{:e}", f.abs());
    let (mantissa, exp) = s.split_once('e').expect("{:e} always has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if digits == "0" {
        return (digits, 1);
    }
    (digits, exp + 1)
}

fn sign(f: f64) -> &'static str {
    if f.is_sign_negative() { "-" } else { "" }
}

fn special(f: f64) -> Option<&'static str> {
    if f.is_nan() {
        Some("NaN")
    } else if f == f64::INFINITY {
        Some("+Inf")
    } else if f == f64::NEG_INFINITY {
        Some("-Inf")
    } else {
        None
    }
}

/// `strconv.FormatFloat(f, 'f', -1, 64)`.
pub(crate) fn format_f(f: f64) -> String {
    if let Some(s) = special(f) {
        return s.to_string();
    }
    let (digits, dp) = shortest(f);
    let mut out = String::from(sign(f));
    if f == 0.0 {
        out.push('0');
        return out;
    }
    let n = digits.len() as i32;
    if dp <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-dp) as usize));
        out.push_str(&digits);
    } else if dp >= n {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (dp - n) as usize));
    } else {
        out.push_str(&digits[..dp as usize]);
        out.push('.');
        out.push_str(&digits[dp as usize..]);
    }
    out
}

/// `strconv.FormatFloat(f, 'e', -1, 64)`.
pub(crate) fn format_e(f: f64) -> String {
    if let Some(s) = special(f) {
        return s.to_string();
    }
    let (digits, dp) = shortest(f);
    let mut out = String::from(sign(f));
    out.push_str(&digits[..1]);
    if digits.len() > 1 {
        out.push('.');
        out.push_str(&digits[1..]);
    }
    let exp = if f == 0.0 { 0 } else { dp - 1 };
    out.push('e');
    out.push(if exp < 0 { '-' } else { '+' });
    let abs = exp.unsigned_abs();
    if abs < 10 {
        out.push('0');
    }
    out.push_str(&abs.to_string());
    out
}

/// `strconv.FormatFloat(f, 'g', -1, 64)`.
pub(crate) fn format_g(f: f64) -> String {
    if let Some(s) = special(f) {
        return s.to_string();
    }
    if f == 0.0 {
        return format!("{}0", sign(f));
    }
    let (_, dp) = shortest(f);
    let exp = dp - 1;
    if !(-4..6).contains(&exp) {
        format_e(f)
    } else {
        format_f(f)
    }
}

/// How Go's `encoding/json` writes a float64.
pub(crate) fn format_json(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let mut s = format_e(f);
        // Go shortens a two-digit negative exponent with a leading zero: e-07 -> e-7.
        let b = s.as_bytes();
        let n = b.len();
        if n >= 4 && b[n - 4] == b'e' && b[n - 3] == b'-' && b[n - 2] == b'0' {
            s.remove(n - 2);
        }
        s
    } else {
        format_f(f)
    }
}

/// How go-yaml v3 writes a float64.
pub(crate) fn format_yaml(f: f64) -> String {
    match format_g(f).as_str() {
        "+Inf" => ".inf".to_string(),
        "-Inf" => "-.inf".to_string(),
        "NaN" => ".nan".to_string(),
        s => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_float_forms() {
        assert_eq!(format_f(1000000.0), "1000000");
        assert_eq!(format_f(0.00001), "0.00001");
        assert_eq!(format_f(3.0), "3");
        assert_eq!(format_f(-1.25), "-1.25");
        assert_eq!(format_g(1000000.0), "1e+06");
        assert_eq!(format_g(123456.0), "123456");
        assert_eq!(format_g(0.00001), "1e-05");
        assert_eq!(format_g(0.0001), "0.0001");
        assert_eq!(format_g(1.5), "1.5");
        assert_eq!(format_g(1e21), "1e+21");
        assert_eq!(format_g(1.2345e-300), "1.2345e-300");
        assert_eq!(format_json(1e-7), "1e-7");
        assert_eq!(format_json(1e21), "1e+21");
        assert_eq!(format_json(12345678901234567890.0), "12345678901234567000");
        assert_eq!(format_json(0.5), "0.5");
        assert_eq!(format_yaml(f64::NEG_INFINITY), "-.inf");
    }
}
