//! Go's `fmt` for the value kinds templates see: `Sprint`, `Sprintln`, `Sprintf` with
//! verbs, flags, width and precision, argument indexes, and Go's error forms
//! (`%!d(string=x)`, `%!d(MISSING)`, `%!(EXTRA …)`), plus `strconv.Quote`.
//!
//! Floats: `%v` is strconv's shortest `'g'`, which switches to an exponent when the
//! decimal exponent is < -4 or >= 6 (so 1000000 prints `1e+06`; the ">= 21" rule belongs
//! to `encoding/json`, not to fmt). Decimal digits come from Rust's exact float
//! formatting, which rounds half to even as Go's strconv does.

use crate::value::Value;

#[derive(Clone, Copy, Default)]
struct Flags {
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    plus_v: bool,
    sharp_v: bool,
    wid: Option<usize>,
    prec: Option<usize>,
}

struct Printer {
    buf: String,
    f: Flags,
}

/// Go's `fmt.Sprint`: spaces between operands when neither side is a string.
pub fn sprint(args: &[Value]) -> String {
    let mut p = Printer {
        buf: String::new(),
        f: Flags::default(),
    };
    let mut prev_string = false;
    for (i, a) in args.iter().enumerate() {
        let is_string = matches!(a, Value::String(_));
        if i > 0 && !is_string && !prev_string {
            p.buf.push(' ');
        }
        p.print_arg(a, 'v');
        prev_string = is_string;
    }
    p.buf
}

/// Go's `fmt.Sprintln`: spaces between all operands and a newline.
pub fn sprintln(args: &[Value]) -> String {
    let mut p = Printer {
        buf: String::new(),
        f: Flags::default(),
    };
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            p.buf.push(' ');
        }
        p.print_arg(a, 'v');
    }
    p.buf.push('\n');
    p.buf
}

/// Go's `fmt.Sprintf`.
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut p = Printer {
        buf: String::new(),
        f: Flags::default(),
    };
    p.do_printf(format, args);
    p.buf
}

const TOO_LARGE: i64 = 1_000_000;

/// Parses a decimal number at `s[i..end]`: (value, present, new index).
fn parse_num(s: &[u8], mut i: usize, end: usize) -> (i64, bool, usize) {
    let start = i;
    let mut n: i64 = 0;
    while i < end && s[i].is_ascii_digit() {
        if n > TOO_LARGE {
            return (0, false, end);
        }
        n = n * 10 + (s[i] - b'0') as i64;
        i += 1;
    }
    (n, i > start, i)
}

impl Printer {
    fn do_printf(&mut self, format: &str, a: &[Value]) {
        let s = format.as_bytes();
        let end = s.len();
        let mut arg_num = 0usize;
        let mut after_index;
        let mut reordered = false;
        let mut i = 0;
        while i < end {
            let mut good_arg = true;
            let last = i;
            while i < end && s[i] != b'%' {
                i += 1;
            }
            if i > last {
                self.buf.push_str(&format[last..i]);
            }
            if i >= end {
                break;
            }
            i += 1;
            self.f = Flags::default();
            while i < end {
                match s[i] {
                    b'#' => self.f.sharp = true,
                    b'0' => self.f.zero = !self.f.minus,
                    b'+' => self.f.plus = true,
                    b'-' => {
                        self.f.minus = true;
                        self.f.zero = false;
                    }
                    b' ' => self.f.space = true,
                    _ => break,
                }
                i += 1;
            }
            // Argument index, then width.
            let (n, ni, found) =
                self.arg_number(arg_num, s, i, a.len(), &mut reordered, &mut good_arg);
            arg_num = n;
            i = ni;
            after_index = found;
            if i < end && s[i] == b'*' {
                i += 1;
                let (w, ok, n) = int_from_arg(a, arg_num);
                arg_num = n;
                if !ok {
                    self.buf.push_str("%!(BADWIDTH)");
                } else if w < 0 {
                    self.f.wid = Some((-w) as usize);
                    self.f.minus = true;
                    self.f.zero = false;
                } else {
                    self.f.wid = Some(w as usize);
                }
                after_index = false;
            } else {
                let (w, present, ni) = parse_num(s, i, end);
                i = ni;
                if present {
                    self.f.wid = Some(w as usize);
                    if after_index {
                        good_arg = false;
                    }
                }
            }
            // Precision.
            if i < end && s[i] == b'.' {
                i += 1;
                if after_index {
                    good_arg = false;
                }
                let (n, ni, found) =
                    self.arg_number(arg_num, s, i, a.len(), &mut reordered, &mut good_arg);
                arg_num = n;
                i = ni;
                after_index = found;
                if i < end && s[i] == b'*' {
                    i += 1;
                    let (pr, ok, n) = int_from_arg(a, arg_num);
                    arg_num = n;
                    if pr < 0 || !ok {
                        self.f.prec = None;
                    } else {
                        self.f.prec = Some(pr as usize);
                    }
                    // A negative precision is as bad as a missing one.
                    if pr < 0 || !ok {
                        self.buf.push_str("%!(BADPREC)");
                    }
                    after_index = false;
                } else {
                    let (pr, present, ni) = parse_num(s, i, end);
                    i = ni;
                    self.f.prec = Some(if present { pr as usize } else { 0 });
                }
            }
            if !after_index {
                let (n, ni, found) =
                    self.arg_number(arg_num, s, i, a.len(), &mut reordered, &mut good_arg);
                arg_num = n;
                i = ni;
                let _ = found;
            }
            if i >= end {
                self.buf.push_str("%!(NOVERB)");
                break;
            }
            let verb = format[i..].chars().next().unwrap_or('\u{fffd}');
            i += verb.len_utf8();
            if verb == '%' {
                self.buf.push('%');
                continue;
            }
            if !good_arg {
                self.buf.push_str("%!");
                self.buf.push(verb);
                self.buf.push_str("(BADINDEX)");
                continue;
            }
            if arg_num >= a.len() {
                self.buf.push_str("%!");
                self.buf.push(verb);
                self.buf.push_str("(MISSING)");
                continue;
            }
            if verb == 'v' {
                if self.f.sharp {
                    self.f.sharp = false;
                    self.f.sharp_v = true;
                }
                if self.f.plus {
                    self.f.plus = false;
                    self.f.plus_v = true;
                }
            }
            self.print_arg(&a[arg_num], verb);
            arg_num += 1;
        }
        if !reordered && arg_num < a.len() {
            self.f = Flags::default();
            self.buf.push_str("%!(EXTRA ");
            for (k, arg) in a[arg_num..].iter().enumerate() {
                if k > 0 {
                    self.buf.push_str(", ");
                }
                if arg.is_nil() {
                    self.buf.push_str("<nil>");
                } else {
                    self.buf.push_str(arg.type_name());
                    self.buf.push('=');
                    self.print_arg(arg, 'v');
                }
            }
            self.buf.push(')');
        }
    }

    fn arg_number(
        &mut self,
        arg_num: usize,
        s: &[u8],
        i: usize,
        num_args: usize,
        reordered: &mut bool,
        good: &mut bool,
    ) -> (usize, usize, bool) {
        if i >= s.len() || s[i] != b'[' {
            return (arg_num, i, false);
        }
        *reordered = true;
        let rest = &s[i..];
        let (index, wid, ok) = parse_arg_number(rest);
        if ok && index >= 0 && (index as usize) < num_args {
            return (index as usize, i + wid, true);
        }
        *good = false;
        (arg_num, i + wid, ok)
    }

    fn bad_verb(&mut self, verb: char, v: &Value) {
        self.buf.push_str("%!");
        self.buf.push(verb);
        self.buf.push('(');
        if v.is_nil() {
            self.buf.push_str("<nil>");
        } else {
            self.buf.push_str(v.type_name());
            self.buf.push('=');
            self.print_arg(v, 'v');
        }
        self.buf.push(')');
    }

    fn print_arg(&mut self, v: &Value, verb: char) {
        if v.is_nil() {
            match verb {
                'T' | 'v' => self.pad("<nil>"),
                _ => self.bad_verb(verb, v),
            }
            return;
        }
        if verb == 'T' {
            self.fmt_s(v.type_name());
            return;
        }
        self.print_value(v, verb);
    }

    fn print_value(&mut self, v: &Value, verb: char) {
        match v {
            Value::Missing | Value::Nil => {
                // A nil element inside a container.
                // Go writes these without padding.
                if self.f.sharp_v {
                    self.buf.push_str("interface {}(nil)");
                } else {
                    self.buf.push_str("<nil>");
                }
            }
            Value::Bool(b) => match verb {
                't' | 'v' => self.pad(if *b { "true" } else { "false" }),
                _ => self.bad_verb(verb, v),
            },
            Value::Int(i, _) => self.fmt_int(*i as u64, *i < 0, true, verb, v),
            Value::Uint(u, _) => self.fmt_int(*u, false, false, verb, v),
            Value::Float(x) => match verb {
                'v' => self.fmt_float(*x, 'g', None),
                'b' | 'g' | 'G' | 'x' | 'X' => self.fmt_float(*x, verb, None),
                'f' | 'e' | 'E' => self.fmt_float(*x, verb, Some(6)),
                'F' => self.fmt_float(*x, 'f', Some(6)),
                _ => self.bad_verb(verb, v),
            },
            Value::Complex(re, im) => match verb {
                'v' | 'b' | 'g' | 'G' | 'x' | 'X' | 'f' | 'F' | 'e' | 'E' => {
                    let old_plus = self.f.plus;
                    self.buf.push('(');
                    self.print_value(&Value::Float(*re), verb);
                    self.f.plus = true;
                    self.print_value(&Value::Float(*im), verb);
                    self.buf.push_str("i)");
                    self.f.plus = old_plus;
                }
                _ => self.bad_verb(verb, v),
            },
            Value::String(s) => match verb {
                'v' => {
                    if self.f.sharp_v {
                        self.fmt_q(s);
                    } else {
                        self.fmt_s(s);
                    }
                }
                's' => self.fmt_s(s),
                'x' => self.fmt_sx(s.as_bytes(), "0123456789abcdef"),
                'X' => self.fmt_sx(s.as_bytes(), "0123456789ABCDEF"),
                'q' => self.fmt_q(s),
                _ => self.bad_verb(verb, v),
            },
            Value::List(items) => {
                if self.f.sharp_v {
                    self.buf.push_str("[]interface {}{");
                    for (i, e) in items.iter().enumerate() {
                        if i > 0 {
                            self.buf.push_str(", ");
                        }
                        self.print_value(e, verb);
                    }
                    self.buf.push('}');
                } else {
                    self.buf.push('[');
                    for (i, e) in items.iter().enumerate() {
                        if i > 0 {
                            self.buf.push(' ');
                        }
                        self.print_value(e, verb);
                    }
                    self.buf.push(']');
                }
            }
            Value::Map(m) => {
                if self.f.sharp_v {
                    self.buf.push_str("map[string]interface {}{");
                } else {
                    self.buf.push_str("map[");
                }
                for (i, (k, e)) in m.iter().enumerate() {
                    if i > 0 {
                        self.buf.push_str(if self.f.sharp_v { ", " } else { " " });
                    }
                    self.print_value(&Value::string(k.as_str()), verb);
                    self.buf.push(':');
                    self.print_value(e, verb);
                }
                self.buf.push(if self.f.sharp_v { '}' } else { ']' });
            }
        }
    }

    // ---- padding ----

    fn write_padding(&mut self, n: usize) {
        let c = if self.f.zero { '0' } else { ' ' };
        for _ in 0..n {
            self.buf.push(c);
        }
    }

    fn pad(&mut self, s: &str) {
        let Some(w) = self.f.wid else {
            self.buf.push_str(s);
            return;
        };
        let n = s.chars().count();
        if n >= w {
            self.buf.push_str(s);
            return;
        }
        if self.f.minus {
            self.buf.push_str(s);
            let zero = self.f.zero;
            self.f.zero = false;
            self.write_padding(w - n);
            self.f.zero = zero;
        } else {
            self.write_padding(w - n);
            self.buf.push_str(s);
        }
    }

    // ---- strings ----

    fn truncate<'s>(&self, s: &'s str) -> &'s str {
        if let Some(p) = self.f.prec
            && let Some((i, _)) = s.char_indices().nth(p)
        {
            return &s[..i];
        }
        s
    }

    fn fmt_s(&mut self, s: &str) {
        let s = self.truncate(s);
        self.pad(s);
    }

    fn fmt_sx(&mut self, b: &[u8], digits: &str) {
        let d = digits.as_bytes();
        let mut len = b.len();
        if let Some(p) = self.f.prec
            && p < len
        {
            len = p;
        }
        let mut out = String::new();
        if len == 0 {
            // Go pads an empty hex string with spaces only.
            if let Some(w) = self.f.wid {
                for _ in 0..w {
                    self.buf.push(' ');
                }
            }
            return;
        }
        let upper = digits.starts_with("0123456789A");
        for (i, &c) in b[..len].iter().enumerate() {
            if self.f.space && i > 0 {
                out.push(' ');
            }
            if self.f.sharp && (self.f.space || i == 0) {
                out.push_str(if upper { "0X" } else { "0x" });
            }
            out.push(d[(c >> 4) as usize] as char);
            out.push(d[(c & 15) as usize] as char);
        }
        self.pad(&out);
    }

    fn fmt_q(&mut self, s: &str) {
        let s = self.truncate(s);
        if self.f.sharp && can_backquote(s) {
            self.pad(&format!("`{s}`"));
        } else {
            self.pad(&quote(s, self.f.plus));
        }
    }

    // ---- integers ----

    fn fmt_int(&mut self, u: u64, neg: bool, signed: bool, verb: char, v: &Value) {
        match verb {
            'v' => {
                if self.f.sharp_v && !signed {
                    let old = self.f.sharp;
                    self.f.sharp = true;
                    self.fmt_integer(u, neg, 16, 'v', false);
                    self.f.sharp = old;
                } else {
                    self.fmt_integer(u, neg, 10, verb, false);
                }
            }
            'd' => self.fmt_integer(u, neg, 10, verb, false),
            'b' => self.fmt_integer(u, neg, 2, verb, false),
            'o' | 'O' => self.fmt_integer(u, neg, 8, verb, false),
            'x' => self.fmt_integer(u, neg, 16, verb, false),
            'X' => self.fmt_integer(u, neg, 16, verb, true),
            'c' => {
                let r = if neg {
                    None
                } else {
                    u32::try_from(u).ok().and_then(char::from_u32)
                };
                let s = r.unwrap_or('\u{fffd}').to_string();
                self.pad(&s);
            }
            'q' => {
                // Go has no backquoted form for %#q of an integer.
                let r = if neg {
                    None
                } else {
                    u32::try_from(u).ok().and_then(char::from_u32)
                };
                self.pad(&quote_rune(r.unwrap_or('\u{fffd}'), self.f.plus));
            }
            'U' => self.fmt_unicode(u, neg),
            _ => self.bad_verb(verb, v),
        }
    }

    fn fmt_integer(&mut self, u: u64, neg: bool, base: u64, verb: char, upper: bool) {
        let mag = if neg { (u as i64).unsigned_abs() } else { u };
        let mut prec = 0usize;
        if let Some(p) = self.f.prec {
            prec = p;
            if p == 0 && mag == 0 {
                let zero = self.f.zero;
                self.f.zero = false;
                if let Some(w) = self.f.wid {
                    self.write_padding(w);
                }
                self.f.zero = zero;
                return;
            }
        } else if self.f.zero
            && !self.f.minus
            && let Some(w) = self.f.wid
        {
            prec = w;
            if neg || self.f.plus || self.f.space {
                prec = prec.saturating_sub(1);
            }
        }
        let digits: &[u8] = if upper {
            b"0123456789ABCDEF"
        } else {
            b"0123456789abcdef"
        };
        let mut d = Vec::new();
        let mut m = mag;
        loop {
            d.push(digits[(m % base) as usize]);
            m /= base;
            if m == 0 {
                break;
            }
        }
        while d.len() < prec {
            d.push(b'0');
        }
        if self.f.sharp {
            match base {
                2 => d.extend_from_slice(b"b0"),
                8 if d.last() != Some(&b'0') => d.push(b'0'),
                16 => {
                    d.push(if upper { b'X' } else { b'x' });
                    d.push(b'0');
                }
                _ => {}
            }
        }
        if verb == 'O' {
            d.extend_from_slice(b"o0");
        }
        if neg {
            d.push(b'-');
        } else if self.f.plus {
            d.push(b'+');
        } else if self.f.space {
            d.push(b' ');
        }
        d.reverse();
        let s = String::from_utf8(d).unwrap_or_default();
        let zero = self.f.zero;
        self.f.zero = false;
        self.pad(&s);
        self.f.zero = zero;
    }

    fn fmt_unicode(&mut self, u: u64, neg: bool) {
        let prec = self.f.prec.unwrap_or(4).max(4);
        let mut s = format!("U+{:0prec$X}", u, prec = prec);
        if neg {
            // Go formats the two's complement bits of a negative value.
            s = format!("U+{:0prec$X}", u, prec = prec);
        }
        if self.f.sharp
            && u <= 0x10FFFF
            && let Some(c) = char::from_u32(u as u32)
            && is_print(c)
        {
            s.push_str(" '");
            s.push(c);
            s.push('\'');
        }
        let zero = self.f.zero;
        self.f.zero = false;
        self.pad(&s);
        self.f.zero = zero;
    }

    // ---- floats ----

    fn fmt_float(&mut self, v: f64, verb: char, default_prec: Option<usize>) {
        let prec = self.f.prec.or(default_prec);
        let mut num = format_float(v, verb, prec);
        // A sign slot first, as Go does, so flags can act on it.
        if !(num.starts_with('-') || num.starts_with('+')) {
            num.insert(0, '+');
        }
        if self.f.space && num.starts_with('+') && !self.f.plus {
            num.replace_range(0..1, " ");
        }
        if num[1..].starts_with("Inf") || num[1..].starts_with("NaN") {
            let zero = self.f.zero;
            self.f.zero = false;
            if num[1..].starts_with("NaN") && !self.f.space && !self.f.plus {
                num.remove(0);
            }
            self.pad(&num);
            self.f.zero = zero;
            return;
        }
        if self.f.sharp && verb != 'b' {
            let mut digits: i64 = 0;
            if matches!(verb, 'v' | 'g' | 'G' | 'x') {
                digits = prec.map(|p| p as i64).unwrap_or(6);
            }
            let mut tail = String::new();
            let mut has_point = false;
            let mut saw_nonzero = false;
            let bytes: Vec<char> = num.chars().collect();
            let mut cut = bytes.len();
            for (i, &c) in bytes.iter().enumerate().skip(1) {
                match c {
                    '.' => has_point = true,
                    'p' | 'P' => {
                        tail = bytes[i..].iter().collect();
                        cut = i;
                        break;
                    }
                    'e' | 'E' if verb != 'x' && verb != 'X' => {
                        tail = bytes[i..].iter().collect();
                        cut = i;
                        break;
                    }
                    _ => {
                        if c != '0' {
                            saw_nonzero = true;
                        }
                        if saw_nonzero {
                            digits -= 1;
                        }
                    }
                }
            }
            let mut head: String = bytes[..cut].iter().collect();
            if !has_point {
                if head.len() == 2 && head.ends_with('0') {
                    digits -= 1;
                }
                head.push('.');
            }
            while digits > 0 {
                head.push('0');
                digits -= 1;
            }
            head.push_str(&tail);
            num = head;
        }
        if self.f.plus || !num.starts_with('+') {
            if self.f.zero
                && !self.f.minus
                && let Some(w) = self.f.wid
                && w > num.chars().count()
            {
                let sign = num.remove(0);
                self.buf.push(sign);
                let n = num.chars().count() + 1;
                self.write_padding(w - n);
                self.buf.push_str(&num);
                return;
            }
            self.pad(&num);
            return;
        }
        let rest = num[1..].to_string();
        self.pad(&rest);
    }
}

fn parse_arg_number(s: &[u8]) -> (i64, usize, bool) {
    if s.len() < 3 {
        return (0, 1, false);
    }
    for i in 1..s.len() {
        if s[i] == b']' {
            let (w, ok, ni) = parse_num(s, 1, i);
            if !ok || ni != i {
                return (0, i + 1, false);
            }
            return (w - 1, i + 1, true);
        }
    }
    (0, 1, false)
}

/// An int operand for `*` width/precision: (value, ok, next arg index).
fn int_from_arg(a: &[Value], arg_num: usize) -> (i64, bool, usize) {
    if arg_num >= a.len() {
        return (0, false, arg_num);
    }
    let (n, ok) = match &a[arg_num] {
        Value::Int(i, _) => (*i, true),
        Value::Uint(u, _) if *u <= i64::MAX as u64 => (*u as i64, true),
        _ => (0, false),
    };
    if ok && !(-TOO_LARGE..=TOO_LARGE).contains(&n) {
        return (0, false, arg_num + 1);
    }
    (n, ok, arg_num + 1)
}

// ---- float digits ----

/// Decimal digits of |v| with trailing zeros dropped, and the decimal point position
/// (value = 0.d1d2… × 10^dp). `sig` limits significant digits (rounded half to even).
fn decimal_digits(v: f64, sig: Option<usize>) -> (Vec<u8>, i64) {
    let a = v.abs();
    if a == 0.0 {
        return (Vec::new(), 0);
    }
    let s = match sig {
        None => format!("{a:e}"),
        Some(n) => format!("{:.*e}", n.saturating_sub(1), a),
    };
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    let mut d: Vec<u8> = mant.bytes().filter(u8::is_ascii_digit).collect();
    while d.last() == Some(&b'0') {
        d.pop();
    }
    if d.is_empty() {
        return (Vec::new(), 0);
    }
    (d, exp + 1)
}

fn fmt_e_digits(out: &mut String, d: &[u8], dp: i64, prec: usize, e: char) {
    out.push(if d.is_empty() { '0' } else { d[0] as char });
    if prec > 0 {
        out.push('.');
        for i in 1..=prec {
            out.push(if i < d.len() { d[i] as char } else { '0' });
        }
    }
    out.push(e);
    let exp = if d.is_empty() { 0 } else { dp - 1 };
    out.push(if exp < 0 { '-' } else { '+' });
    let a = exp.abs();
    if a < 10 {
        out.push('0');
    }
    out.push_str(&a.to_string());
}

fn fmt_f_digits(out: &mut String, d: &[u8], dp: i64, prec: usize) {
    if dp > 0 {
        for i in 0..dp as usize {
            out.push(if i < d.len() { d[i] as char } else { '0' });
        }
    } else {
        out.push('0');
    }
    if prec > 0 {
        out.push('.');
        for i in 0..prec as i64 {
            let j = dp + i;
            out.push(if j >= 0 && (j as usize) < d.len() {
                d[j as usize] as char
            } else {
                '0'
            });
        }
    }
}

/// strconv.FormatFloat(v, verb, prec, 64) for verbs e E f g G b x X; `None` = shortest.
pub(crate) fn format_float(v: f64, verb: char, prec: Option<usize>) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let mut out = String::new();
    if v.is_sign_negative() {
        out.push('-');
    }
    match verb {
        'e' | 'E' => {
            let (d, dp) = decimal_digits(v, prec.map(|p| p + 1));
            let p = prec.unwrap_or(d.len().saturating_sub(1));
            fmt_e_digits(&mut out, &d, dp, p, verb);
        }
        'f' | 'F' => match prec {
            Some(p) => out.push_str(&format!("{:.*}", p, v.abs())),
            None => {
                let (d, dp) = decimal_digits(v, None);
                let p = (d.len() as i64 - dp).max(0) as usize;
                fmt_f_digits(&mut out, &d, dp, p);
            }
        },
        'g' | 'G' => {
            let shortest = prec.is_none();
            let sig = prec.map(|p| p.max(1));
            let (d, dp) = decimal_digits(v, sig);
            let mut p = match sig {
                Some(p) => p,
                None => d.len(),
            };
            let mut eprec = p as i64;
            if eprec > d.len() as i64 && d.len() as i64 >= dp {
                eprec = d.len() as i64;
            }
            if shortest {
                eprec = 6;
            }
            let exp = dp - 1;
            let e = if verb == 'g' { 'e' } else { 'E' };
            if exp < -4 || exp >= eprec {
                if p > d.len() {
                    p = d.len();
                }
                fmt_e_digits(&mut out, &d, dp, p.saturating_sub(1), e);
            } else {
                if p as i64 > dp {
                    p = d.len();
                }
                fmt_f_digits(&mut out, &d, dp, (p as i64 - dp).max(0) as usize);
            }
        }
        'b' => {
            let bits = v.abs().to_bits();
            let mut exp = ((bits >> 52) & 0x7ff) as i64;
            let mut mant = bits & ((1 << 52) - 1);
            if exp == 0 {
                exp = 1;
            } else {
                mant |= 1 << 52;
            }
            exp -= 1023 + 52;
            out.push_str(&mant.to_string());
            out.push('p');
            if exp >= 0 {
                out.push('+');
            }
            out.push_str(&exp.to_string());
        }
        'x' | 'X' => {
            out.push_str(&hex_float(v.abs(), prec, verb == 'X'));
        }
        _ => {
            out.push('%');
            out.push(verb);
        }
    }
    out
}

/// Go's %x for floats: 0x1.hhhp±dd, shortest unless a precision is given.
fn hex_float(a: f64, prec: Option<usize>, upper: bool) -> String {
    let bits = a.to_bits();
    let mut exp = ((bits >> 52) & 0x7ff) as i64;
    let mut mant = bits & ((1 << 52) - 1);
    if a == 0.0 {
        exp = 0;
        mant = 0;
    } else if exp == 0 {
        // Subnormal: normalise so the leading bit is 1.
        exp = -1022;
        while mant & (1 << 52) == 0 {
            mant <<= 1;
            exp -= 1;
        }
        mant &= (1 << 52) - 1;
    } else {
        exp -= 1023;
    }
    // 52 fraction bits = 13 hex digits.
    let mut frac = mant;
    let mut lead: u64 = if a == 0.0 { 0 } else { 1 };
    let mut ndig = 13usize;
    if let Some(p) = prec
        && p < 13
    {
        let shift = 4 * (13 - p);
        let rem = frac & ((1u64 << shift) - 1);
        frac >>= shift;
        let half = 1u64 << (shift - 1);
        if rem > half || (rem == half && frac & 1 == 1) {
            frac += 1;
            if frac >> (4 * p) != 0 {
                frac = 0;
                lead += 1;
                if lead == 2 {
                    lead = 1;
                    exp += 1;
                }
            }
        }
        ndig = p;
    }
    let mut hex = String::new();
    for i in (0..ndig).rev() {
        let nib = (frac >> (4 * i)) & 15;
        hex.push(std::char::from_digit(nib as u32, 16).unwrap_or('0'));
    }
    if prec.is_none() {
        while hex.ends_with('0') {
            hex.pop();
        }
    } else if let Some(p) = prec {
        while hex.len() < p {
            hex.push('0');
        }
    }
    let mut s = format!("0x{lead}");
    if !hex.is_empty() {
        s.push('.');
        s.push_str(&hex);
    }
    s.push('p');
    s.push(if exp < 0 { '-' } else { '+' });
    let ae = exp.abs();
    if ae < 10 {
        s.push('0');
    }
    s.push_str(&ae.to_string());
    if upper { s.to_uppercase() } else { s }
}

// ---- quoting ----

/// An approximation of Go's unicode.IsPrint: exact for ASCII and Latin-1; elsewhere
/// control, space-separator, format and private-use characters are not printable.
/// (Unassigned code points count as printable here; Go would escape them.)
pub(crate) fn is_print(c: char) -> bool {
    if c.is_ascii() {
        return (' '..='~').contains(&c);
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(c,
        '\u{AD}' | '\u{600}'..='\u{605}' | '\u{61C}' | '\u{6DD}' | '\u{70F}' | '\u{8E2}'
        | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFB}' | '\u{FFFE}' | '\u{FFFF}' | '\u{E000}'..='\u{F8FF}'
        | '\u{F0000}'..='\u{10FFFF}' | '\u{E0001}' | '\u{E0020}'..='\u{E007F}'
        | '\u{110BD}' | '\u{110CD}' | '\u{13430}'..='\u{1343F}' | '\u{1BCA0}'..='\u{1BCA3}'
        | '\u{1D173}'..='\u{1D17A}')
}

fn push_escaped(out: &mut String, c: char, quote_char: char, ascii_only: bool) {
    if c == quote_char || c == '\\' {
        out.push('\\');
        out.push(c);
        return;
    }
    if (!ascii_only || c.is_ascii()) && is_print(c) {
        out.push(c);
        return;
    }
    match c {
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\x{:02x}", c as u32)),
        c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
        c => out.push_str(&format!("\\U{:08x}", c as u32)),
    }
}

/// strconv.Quote (or QuoteToASCII when `ascii_only`).
pub fn quote(s: &str, ascii_only: bool) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        push_escaped(&mut out, c, '"', ascii_only);
    }
    out.push('"');
    out
}

fn quote_rune(c: char, ascii_only: bool) -> String {
    let mut out = String::from("'");
    push_escaped(&mut out, c, '\'', ascii_only);
    out.push('\'');
    out
}

fn can_backquote(s: &str) -> bool {
    s.chars().all(|c| {
        c != '`'
            && c != '\u{feff}'
            && (c == '\t' || !(c.is_control() && (c as u32) < 0x80 || c == '\u{7f}'))
    })
}

/// Go's `%#U`: `U+0041 'A'`.
pub(crate) fn sharp_u(c: char) -> String {
    if is_print(c) {
        format!("U+{:04X} '{}'", c as u32, c)
    } else {
        format!("U+{:04X}", c as u32)
    }
}
